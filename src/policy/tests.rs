//! Tests of the shipped packs and of evaluation as a scan uses it.

use super::*;

fn builtin() -> PolicySet {
    match PolicySet::builtin() {
        Ok(set) => set,
        Err(problems) => {
            let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            panic!("built-in packs do not load:\n{}", text.join("\n"))
        }
    }
}

#[test]
fn shipped_packs_load_and_pass_their_tests() {
    let set = builtin();
    let policies = set.policies();
    let baseline = policies.iter().filter(|p| p.pack == "baseline").count();
    assert!(baseline >= 28, "baseline has {baseline} policies");
    assert!(set.run_tests().iter().all(|r| r.passed()));
    // Reading a cluster can then leave status out, most of a workload's bytes.
    assert!(!set.reads_live_status());
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A Deployment as the API server returns it: defaults filled in, status and
/// managedFields present. Hardened except for what the assertions name.
fn live_deployment() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "9f2c1a4e-0d7b-4a8e-9c1e-2f7f6b1d3a55",
            "resourceVersion": "48213",
            "generation": 2,
            "creationTimestamp": "2025-05-02T09:14:11Z",
            "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "shop"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "managedFields": [{
                "manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
                "time": "2025-05-02T09:14:11Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}
            }]
        },
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app.kubernetes.io/name": "web"}},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "web",
                        "image": "ghcr.io/example/web:2.4.1",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "web",
                    "serviceAccount": "web",
                    "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {
            "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2025-05-02T09:15:01Z",
                            "lastTransitionTime": "2025-05-02T09:15:01Z", "reason": "MinimumReplicasAvailable",
                            "message": "Deployment has minimum availability."}]
        }
    })
}

fn shop_context() -> Context {
    let mut ctx = Context::new(day(2025, 6, 1));
    ctx.inventory.insert(
        "prod".into(),
        HashMap::from([
            ("NetworkPolicy".to_string(), vec![serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": "shop"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})]),
            ("PodDisruptionBudget".to_string(), vec![serde_json::json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}})]),
        ]),
    );
    ctx
}

fn ids(e: &Evaluation) -> Vec<&str> {
    e.results.iter().map(|v| v.policy.as_str()).collect()
}

#[test]
fn hardened_live_deployment_only_lacks_a_digest() {
    let set = builtin();
    let live = live_deployment();
    let facts = AuditFacts::default();
    let subject = Subject {
        app: "shop",
        cluster: "prod",
        state: State::Live,
        object: &live,
        desired: Some(&live),
        audit: &facts,
    };
    let eval = set.evaluate(&[subject], &shop_context());
    assert_eq!(
        ids(&eval),
        ["image-pinned-by-digest"],
        "{:#?}",
        eval.results
    );
    let v = &eval.results[0];
    assert_eq!(
        (v.group.as_str(), v.kind.as_str(), v.namespace.as_deref()),
        ("apps", "Deployment", Some("shop"))
    );
    assert!(
        v.message.contains("ghcr.io/example/web:2.4.1"),
        "{}",
        v.message
    );
}

#[test]
fn insecure_cronjob_is_checked_through_its_job_template() {
    let set = builtin();
    let cron = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "default"},
        "spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Allow", "suspend": false,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": {
                "metadata": {"creationTimestamp": null},
                "spec": {
                    "hostNetwork": true,
                    "containers": [{"name": "backup", "image": "backup", "imagePullPolicy": "Always",
                        "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI"}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "initContainers": [{"name": "prep", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                        "securityContext": {"privileged": true}, "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "volumes": [{"name": "host", "hostPath": {"path": "/", "type": ""}}],
                    "restartPolicy": "OnFailure", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30}}}}}
    });
    let facts = AuditFacts::default();
    let subject = Subject {
        app: "ops",
        cluster: "prod",
        state: State::Desired,
        object: &cron,
        desired: None,
        audit: &facts,
    };
    let eval = set.evaluate(&[subject], &Context::new(day(2025, 6, 1)));
    let got = ids(&eval);
    for want in [
        "no-privileged",
        "no-host-network",
        "no-host-path",
        "no-latest-tag",
        "no-credential-literals",
        "no-default-namespace",
        "drop-all-capabilities",
        "network-policy-coverage",
    ] {
        assert!(got.contains(&want), "{want} missing from {got:?}");
    }
    // Probes and replicas do not apply to batch workloads.
    assert!(
        !got.contains(&"liveness-probe") && !got.contains(&"min-replicas"),
        "{got:?}"
    );
    let privileged = eval
        .results
        .iter()
        .find(|v| v.policy == "no-privileged")
        .expect("reported");
    assert_eq!(privileged.message, "privileged container(s): prep");
    assert!(eval.results.iter().all(|v| !v.error), "{:#?}", eval.results);
}

#[test]
fn gitops_pack_reports_drift_unmanaged_objects_and_secrets_in_git() {
    let set = builtin();
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db", "namespace": "shop"}, "data": {"password": "aHVudGVyMg=="}});
    let live_cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hotfix", "namespace": "shop", "uid": "1", "resourceVersion": "7",
            "creationTimestamp": "2025-05-30T10:00:00Z"}, "data": {"x": "1"}});
    let live = live_deployment();
    let tracked_in_sync = AuditFacts::default();
    let untracked = AuditFacts {
        tracked: false,
        ..AuditFacts::default()
    };
    let drifted = AuditFacts {
        drift: Drift {
            status: "modified".into(),
            open_hours: 30.0,
        },
        ..AuditFacts::default()
    };
    let subjects = [
        Subject {
            app: "shop",
            cluster: "prod",
            state: State::Desired,
            object: &secret,
            desired: None,
            audit: &tracked_in_sync,
        },
        Subject {
            app: "",
            cluster: "prod",
            state: State::Live,
            object: &live_cm,
            desired: None,
            audit: &untracked,
        },
        Subject {
            app: "shop",
            cluster: "prod",
            state: State::Live,
            object: &live,
            desired: Some(&live),
            audit: &drifted,
        },
    ];
    let eval = set.evaluate(&subjects, &shop_context());
    let gitops: Vec<(&str, &str)> = eval
        .results
        .iter()
        .filter(|v| {
            ["secret-in-git", "unmanaged-component", "drift-sla-exceeded"]
                .contains(&v.policy.as_str())
        })
        .map(|v| (v.policy.as_str(), v.name.as_str()))
        .collect();
    assert_eq!(
        gitops,
        [
            ("secret-in-git", "db"),
            ("unmanaged-component", "hotfix"),
            ("drift-sla-exceeded", "web")
        ]
    );
    let drift = eval
        .results
        .iter()
        .find(|v| v.policy == "drift-sla-exceeded")
        .expect("reported");
    assert_eq!(drift.severity, Severity::High);
    assert_eq!(drift.message, "modified for 30h, past the 24h drift SLA");
    // A longer SLA makes the same drift acceptable.
    let mut lenient = shop_context();
    lenient.drift_sla = std::time::Duration::from_secs(48 * 3600);
    assert!(!ids(&set.evaluate(&subjects[2..], &lenient)).contains(&"drift-sla-exceeded"));
}

#[test]
fn waivers_mark_violations_and_expired_ones_are_reported() {
    let set = builtin();
    let mut live = live_deployment();
    live["metadata"]["annotations"]["plumbline.dev/waive"] =
        "min-replicas, image-pinned-by-digest".into();
    live["metadata"]["annotations"]["plumbline.dev/waive-reason"] =
        "internal registry, tags immutable".into();
    live["spec"]["template"]["spec"]["containers"][0]["image"] =
        "ghcr.io/example/web:latest".into();
    live["spec"]["template"]["spec"]["hostNetwork"] = true.into();
    let mut ctx = shop_context();
    let waiver = |policy: &str, expires| crate::config::Waiver {
        policy: policy.into(),
        kind: Some("Deployment".into()),
        namespace: Some("sh*".into()),
        name: None,
        reason: "migration in progress".into(),
        approved_by: "security@example.com".into(),
        expires,
    };
    ctx.waivers = vec![
        waiver("no-latest-tag", Some(day(2025, 6, 1))),
        waiver("no-host-*", Some(day(2025, 5, 31))),
    ];
    let facts = AuditFacts::default();
    let subject = Subject {
        app: "shop",
        cluster: "prod",
        state: State::Live,
        object: &live,
        desired: None,
        audit: &facts,
    };
    let eval = set.evaluate(&[subject], &ctx);
    let by_id = |id: &str| eval.results.iter().find(|v| v.policy == id).expect(id);

    let latest = by_id("no-latest-tag");
    assert!(latest.waived);
    let w = latest.waiver.as_ref().expect("waiver");
    assert_eq!(
        (w.source, w.approved_by.as_deref()),
        (WaiverSource::Config, Some("security@example.com"))
    );

    let digest = by_id("image-pinned-by-digest");
    assert!(digest.waived);
    assert_eq!(
        digest.waiver.as_ref().map(|w| w.source),
        Some(WaiverSource::Annotation)
    );

    // Expired on 2025-05-31: no longer applies, and is reported with what it would cover.
    assert!(!by_id("no-host-network").waived);
    assert_eq!(eval.expired_waivers.len(), 1);
    assert_eq!(eval.expired_waivers[0].policy, "no-host-*");
    assert_eq!(eval.expired_waivers[0].would_cover, 1);
}

const CUSTOM: &str = r#"apiVersion: plumbline.dev/v1
kind: PolicyPack
metadata: {name: custom}
policies:
  - id: replicas-declared
    title: replicas must be declared
    severity: low
    match: {kinds: [apps/Deployment], namespaces: ["team-*"], labels: {tier: web}, state: desired}
    expression: "object.spec.replicas > 0"
    message: replicas missing
    controls: {soc2: [A1.2]}
    tests:
      pass: [{kind: Deployment, spec: {replicas: 2}}]
      fail: [{kind: Deployment, spec: {replicas: 0}}]
"#;

fn files(packs: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    packs
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect()
}

#[test]
fn evaluation_errors_are_reported_not_fatal() {
    let set = PolicySet::from_files(&files(&[("custom.yaml", CUSTOM)])).expect("loads");
    let missing = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "team-x", "labels": {"tier": "web"}}, "spec": {}});
    let other_ns = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "b", "namespace": "ops", "labels": {"tier": "web"}}, "spec": {}});
    let facts = AuditFacts::default();
    let subject = |o| Subject {
        app: "a",
        cluster: "c",
        state: State::Desired,
        object: o,
        desired: None,
        audit: &facts,
    };
    let eval = set.evaluate(
        &[subject(&missing), subject(&other_ns)],
        &Context::new(day(2025, 1, 1)),
    );
    assert_eq!(eval.results.len(), 1);
    assert!(eval.results[0].error);
    assert!(
        eval.results[0]
            .message
            .starts_with("evaluation error: no such key: replicas"),
        "{}",
        eval.results[0].message
    );
    let live = Subject {
        state: State::Live,
        ..subject(&missing)
    };
    assert!(set
        .evaluate(&[live], &Context::new(day(2025, 1, 1)))
        .results
        .is_empty());
}

#[test]
fn load_rejects_duplicates_and_policies_failing_their_tests() {
    let problems =
        PolicySet::from_files(&files(&[("a.yaml", CUSTOM), ("b.yaml", CUSTOM)])).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        "b.yaml:5: policy `replicas-declared`: duplicate id, first defined at a.yaml:5"
    );

    let typo = CUSTOM.replace("object.spec.replicas > 0", "object.spec.replica > 0");
    let problems = PolicySet::from_files(&files(&[("t.yaml", &typo)])).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].starts_with("t.yaml:13: policy `replicas-declared` fails its own pass test #1: evaluation error: no such key: replica"), "{text:?}");

    let bad_cel = CUSTOM.replace("object.spec.replicas > 0", "object.spec.replicas >");
    let problems = PolicySet::from_files(&files(&[("c.yaml", &bad_cel)])).unwrap_err();
    assert_eq!(problems[0].line, 9, "{problems:?}");
    assert!(
        problems[0].message.contains("expression: invalid CEL"),
        "{problems:?}"
    );
}

#[test]
fn directories_load_in_name_order_and_tests_can_be_listed() {
    let dir = std::env::temp_dir().join(format!("plumbline-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let second = CUSTOM.replace("replicas-declared", "replicas-declared-too");
    std::fs::write(dir.join("b.yml"), &second).expect("write");
    std::fs::write(dir.join("a.yaml"), CUSTOM).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a pack").expect("write");
    let loaded = PolicySet::load(std::slice::from_ref(&dir));
    let reports = PolicySet::test_paths(std::slice::from_ref(&dir));
    std::fs::remove_dir_all(&dir).ok();
    let ids: Vec<String> = loaded
        .expect("loads")
        .policies()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["replicas-declared", "replicas-declared-too"]);
    let reports = reports.expect("tests run");
    assert!(reports.iter().all(|r| r.passed() && r.outcomes.len() == 2));
    assert!(PolicySet::load(&[PathBuf::from("does/not/exist.yaml")]).is_err());
}

/// The objects of the drift fidelity corpus: as written in Git and as API servers return
/// them (managedFields, defaults, status).
fn fidelity_objects() -> Vec<(serde_json::Value, serde_json::Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fidelity");
    let read = |path: PathBuf| -> serde_json::Value {
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        serde_yaml::from_str(&text).expect("fixture is YAML")
    };
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    cases
        .into_iter()
        .map(|case| {
            (
                read(case.join("desired.yaml")),
                read(case.join("live.yaml")),
            )
        })
        .collect()
}

#[test]
fn converting_only_what_policies_read_changes_no_result() {
    let pruned = builtin();
    let whole = PolicySet {
        engine: builtin().engine.reading_whole(),
    };
    let objects = fidelity_objects();
    assert!(objects.len() > 80);
    let tracked = AuditFacts::default();
    let drifted = AuditFacts {
        tracked: false,
        managed_namespace: true,
        drift: Drift {
            status: "modified".into(),
            open_hours: 30.0,
        },
    };
    let mut subjects = Vec::new();
    for (desired, live) in &objects {
        for audit in [&tracked, &drifted] {
            subjects.push(Subject {
                app: "shop",
                cluster: "prod",
                state: State::Desired,
                object: desired,
                desired: None,
                audit,
            });
            subjects.push(Subject {
                app: "shop",
                cluster: "prod",
                state: State::Live,
                object: live,
                desired: Some(desired),
                audit,
            });
        }
    }
    let ctx = shop_context();
    let got = pruned.evaluate(&subjects, &ctx);
    assert_eq!(got, whole.evaluate(&subjects, &ctx));
    let mut checked: Vec<&str> = ids(&got);
    checked.sort();
    checked.dedup();
    assert!(checked.len() >= 25, "{checked:?}");
}
