//! Policy evaluation throughput: 10,000 objects as a scan of a large cluster produces them
//! (API-server defaults, status and managedFields included) against the built-in packs.

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, Criterion};
use plumbline::policy::{AuditFacts, Context, PolicySet, State, Subject};
use serde_json::{json, Value};

const OBJECTS: usize = 10_000;

fn deployment(i: usize) -> Value {
    let ns = format!("team-{}", i % 50);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": format!("svc-{i}"),
            "namespace": ns,
            "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "resourceVersion": "123456",
            "generation": 3,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": format!("svc-{i}"), "app.kubernetes.io/instance": "shop"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "managedFields": [{
                "manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
                "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}
            }]
        },
        "spec": {
            "replicas": 1 + i % 3,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": format!("svc-{i}")}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": format!("svc-{i}")}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": if i.is_multiple_of(7) { "registry.example.com/app:latest".to_string() } else { format!("registry.example.com/app:1.{i}") },
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }, {
                        "name": "proxy",
                        "image": "envoyproxy/envoy:v1.31.0",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "initContainers": [{
                        "name": "migrate", "image": "registry.example.com/migrate:2",
                        "imagePullPolicy": "IfNotPresent", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "default",
                    "serviceAccount": "default",
                    "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {
            "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
        }
    })
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("team-{}", i % 50)},
        "spec": {"type": if i.is_multiple_of(10) { "NodePort" } else { "ClusterIP" }, "clusterIP": "10.0.0.1",
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                 "selector": {"app": format!("svc-{i}")}, "sessionAffinity": "None"}
    })
}

fn config_map(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cfg-{i}"), "namespace": format!("team-{}", i % 50)},
        "data": {"app.properties": "a=1\nb=2\n"}
    })
}

/// 60% Deployments, 20% Services, 20% ConfigMaps.
fn objects() -> Vec<Value> {
    (0..OBJECTS)
        .map(|i| match i % 5 {
            0 => service(i),
            1 => config_map(i),
            _ => deployment(i),
        })
        .collect()
}

fn context() -> Context {
    let mut ctx = Context::new(chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default());
    let netpols: Vec<Value> = (0..25)
        .map(|n| {
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": format!("team-{n}")},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
        })
        .collect();
    let pdbs: Vec<Value> = (0..200)
        .map(|n| {
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": format!("svc-{n}"), "namespace": format!("team-{}", n % 50)},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": format!("svc-{n}")}}}})
        })
        .collect();
    ctx.inventory.insert(
        "prod".to_string(),
        HashMap::from([
            ("NetworkPolicy".to_string(), netpols),
            ("PodDisruptionBudget".to_string(), pdbs),
        ]),
    );
    ctx
}

fn bench(c: &mut Criterion) {
    let set = match PolicySet::builtin() {
        Ok(set) => set,
        Err(problems) => panic!("built-in packs: {problems:?}"),
    };
    let objects = objects();
    let facts = AuditFacts::default();
    let subjects: Vec<Subject<'_>> = objects
        .iter()
        .map(|o| Subject {
            app: "shop",
            cluster: "prod",
            state: State::Live,
            object: o,
            desired: Some(o),
            audit: &facts,
        })
        .collect();
    let ctx = context();

    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    group.bench_function("evaluate_10k_objects", |b| {
        b.iter(|| set.evaluate(&subjects, &ctx))
    });
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    if let Ok(pool) = single {
        group.bench_function("evaluate_10k_objects_one_thread", |b| {
            b.iter(|| pool.install(|| set.evaluate(&subjects, &ctx)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
