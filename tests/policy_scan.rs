//! Compliance policies in a scan, through the real binary: the built-in packs on desired and
//! live objects, waivers from the configuration and from annotations, an expired waiver, the
//! drift SLA over two scans, unmanaged components, and the policy commands.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use serde_json::{json, Value};
use support::{copy_dir, Workspace};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    plumbline.dev/waive: no-latest-tag
    plumbline.dev/waive-reason: the release pipeline pins the digest at admission
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:latest
          securityContext:
            privileged: true
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - {port: 80, targetPort: 8080}
";

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: web-db
type: Opaque
data:
  password: aHVudGVyMg==
";

/// The Deployment as the API server returns it, scaled to 3 by hand.
const LIVE_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  uid: 0f0e0d0c-1111-4222-8333-444455556666
  resourceVersion: "9001"
  generation: 2
  creationTimestamp: "2026-11-01T10:00:00Z"
  labels: {app.kubernetes.io/instance: web}
  annotations:
    deployment.kubernetes.io/revision: "1"
    plumbline.dev/waive: no-latest-tag
    plumbline.dev/waive-reason: the release pipeline pins the digest at admission
  managedFields:
  - apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        f:replicas: {}
    manager: kubectl-edit
    operation: Update
    time: "2026-11-02T09:00:00Z"
spec:
  progressDeadlineSeconds: 600
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      creationTimestamp: null
      labels: {app: web}
    spec:
      containers:
      - image: nginx:latest
        imagePullPolicy: Always
        name: web
        resources: {}
        securityContext:
          privileged: true
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status:
  observedGeneration: 2
  replicas: 3
  readyReplicas: 3
"#;

const LIVE_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: web
  uid: 1a2b3c4d-0000-4000-8000-000000000001
  resourceVersion: "9002"
  creationTimestamp: "2026-11-01T10:00:00Z"
  labels: {app.kubernetes.io/instance: web}
spec:
  clusterIP: 10.96.12.34
  clusterIPs: [10.96.12.34]
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - nodePort: 31080
    port: 80
    protocol: TCP
    targetPort: 8080
  selector: {app: web}
  sessionAffinity: None
  type: NodePort
status:
  loadBalancer: {}
"#;

const LIVE_SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: web-db
  namespace: web
  uid: 1a2b3c4d-0000-4000-8000-000000000002
  resourceVersion: "9003"
  creationTimestamp: "2026-11-01T10:00:00Z"
  labels: {app.kubernetes.io/instance: web}
type: Opaque
data:
  password: aHVudGVyMg==
"#;

/// A ConfigMap someone created by hand in the app's namespace, and the one Kubernetes puts
/// in every namespace.
const LIVE_UNMANAGED: &str = r#"apiVersion: v1
kind: ConfigMapList
items:
- metadata:
    name: hotfix
    namespace: web
    uid: 1a2b3c4d-0000-4000-8000-000000000003
    resourceVersion: "9004"
    creationTimestamp: "2026-11-03T02:00:00Z"
  data: {FEATURE_X: "on"}
- metadata:
    name: kube-root-ca.crt
    namespace: web
    uid: 1a2b3c4d-0000-4000-8000-000000000004
    resourceVersion: "12"
    creationTimestamp: "2026-11-01T09:00:00Z"
    annotations:
      kubernetes.io/description: Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints.
  data: {ca.crt: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
"#;

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.repo_with(
        "Ana Ruiz",
        "ana@example.com",
        "web app",
        vec![
            ("apps/web/deployment.yaml".into(), DEPLOYMENT.into()),
            ("apps/web/service.yaml".into(), SERVICE.into()),
            ("apps/web/secret.yaml".into(), SECRET.into()),
        ],
    );
    ws.write("live/deployment.yaml", LIVE_DEPLOYMENT);
    ws.write("live/service.yaml", LIVE_SERVICE);
    ws.write("live/secret.yaml", LIVE_SECRET);
    ws.write("live/configmaps.yaml", LIVE_UNMANAGED);
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &ws.path("policies"),
    );
    ws.write(
        "plumbline.yaml",
        "sources: [{name: gitops, url: repo}]
clusters: [{name: prod, snapshot: live}]
apps: [{name: web, source: gitops, path: apps/web, cluster: prod, namespace: web}]
policies: [policies/]
drift_sla: 0s
waivers:
  - {policy: no-nodeport-service, kind: Service, namespace: web, name: web, reason: on-prem load balancer forwards to the node port, approved_by: Dee Park, expires: 2099-12-31}
  - {policy: no-privileged, kind: Deployment, name: web, reason: legacy init, approved_by: Bo Chen, expires: 2020-01-31}
",
    );
    ws
}

fn results<'a>(scan: &'a Value, policy: &str) -> Vec<&'a Value> {
    scan["policy_results"]
        .as_array()
        .expect("policy_results")
        .iter()
        .filter(|r| r["policy"] == policy)
        .collect()
}

fn states(results: &[&Value]) -> Vec<(String, bool)> {
    let mut states: Vec<(String, bool)> = results
        .iter()
        .map(|r| {
            (
                r["state"].as_str().unwrap_or_default().to_string(),
                r["waived"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    states.sort();
    states
}

#[test]
fn policies_run_on_desired_and_live_state_with_waivers() {
    let ws = workspace();
    let (code, scan) = ws.scan_json(&[]);
    assert_eq!(code, 0, "{scan:#}");

    let privileged = results(&scan, "no-privileged");
    assert_eq!(
        states(&privileged),
        [("desired".into(), false), ("live".into(), false)],
        "an expired waiver does not apply"
    );
    assert_eq!(privileged[0]["severity"], "critical");
    assert_eq!(privileged[0]["kind"], "Deployment");
    assert_eq!(privileged[0]["namespace"], "web");
    assert_eq!(privileged[0]["app"], "web");
    assert_eq!(
        scan["expired_waivers"],
        json!([{"policy": "no-privileged", "kind": "Deployment", "namespace": null, "name": "web",
                "reason": "legacy init", "approved_by": "Bo Chen", "expires": "2020-01-31",
                "would_cover": 2}])
    );
    assert_eq!(
        states(&results(&scan, "no-latest-tag")),
        [("desired".into(), true), ("live".into(), true)],
        "the annotation waives it on both sides"
    );
    assert_eq!(
        states(&results(&scan, "no-nodeport-service")),
        [("desired".into(), true), ("live".into(), true)]
    );
    assert_eq!(
        states(&results(&scan, "secret-in-git")),
        [("desired".into(), false)]
    );
    let unmanaged = results(&scan, "unmanaged-component");
    assert_eq!(unmanaged.len(), 1, "{unmanaged:#?}");
    assert_eq!(unmanaged[0]["name"], "hotfix");
    assert_eq!(unmanaged[0]["app"], Value::Null);
    assert!(
        results(&scan, "drift-sla-exceeded").is_empty(),
        "drift first seen now is within any SLA"
    );
    let unwaived = scan["policy_results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["waived"] == false)
        .count();
    assert_eq!(scan["summary"]["policy_violations"], unwaived);

    // The second scan finds the same drift still open: past a zero SLA.
    let (_, second) = ws.scan_json(&[]);
    let sla = results(&second, "drift-sla-exceeded");
    assert_eq!(
        states(&sla),
        [("desired".into(), false), ("live".into(), false)]
    );
    assert_eq!(sla[0]["severity"], "high");
    assert_eq!(sla[0]["kind"], "Deployment");

    // Stored whole: the report of the scan is the scan.
    let report = ws.run(&["report", "--format", "json"]);
    let stored: Value = serde_json::from_slice(&report.stdout).expect("report json");
    assert_eq!(stored["policy_results"], second["policy_results"]);
    assert_eq!(stored["expired_waivers"], second["expired_waivers"]);
}

#[test]
fn policies_command_lists_and_tests_the_packs() {
    let ws = workspace();
    let listed = ws.run(&["policies", "--format", "json"]);
    assert_eq!(listed.status.code(), Some(0));
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.len() >= 31, "{ids:?}");
    let privileged = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["id"] == "no-privileged")
        .expect("no-privileged");
    assert!(privileged["controls"]["soc2"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert!(privileged["controls"]["cis"][0]["id"].is_string());

    let tested = ws.run(&["policies", "test"]);
    let text = String::from_utf8_lossy(&tested.stdout);
    assert_eq!(tested.status.code(), Some(0), "{text}");
    assert!(text.contains("0 policies failing"), "{text}");
}

#[test]
fn a_policy_failing_its_own_test_is_a_configuration_error() {
    let ws = workspace();
    ws.write(
        "policies/team.yaml",
        "apiVersion: plumbline.dev/v1
kind: PolicyPack
metadata: {name: team}
policies:
  - id: team-label
    title: Workloads carry a team label
    severity: low
    match: {kinds: [Deployment]}
    expression: \"has(object.metadata.labels) && 'team' in object.metadata.lables\"
    message: no team label
    controls: {soc2: [CC8.1]}
    tests:
      pass: [{kind: Deployment, metadata: {name: a, labels: {team: x}}}]
      fail: [{kind: Deployment, metadata: {name: b}}]
",
    );
    let check = ws.run(&["check-config"]);
    assert_eq!(check.status.code(), Some(2));
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("team.yaml:"), "{text}");
    assert!(text.contains("team-label"), "{text}");
    let (code, _) = {
        let output = ws.run(&["scan", "--format", "json"]);
        (output.status.code(), output)
    };
    assert_eq!(code, Some(2), "nothing is scanned with a broken pack");
}

const AVAILABILITY_PACK: &str = r#"apiVersion: plumbline.dev/v1
kind: PolicyPack
metadata: {name: availability}
policies:
  - id: three-replicas-available
    title: At least three replicas of a Deployment are available
    severity: medium
    match: {kinds: [Deployment], state: live}
    expression: "object.?status.?availableReplicas.orValue(0) >= 3"
    messageExpression: "string(object.?status.?availableReplicas.orValue(0)) + ' replicas available, at least 3 needed'"
    controls: {soc2: [A1.2]}
    tests:
      pass: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: a}, spec: {replicas: 3}, status: {availableReplicas: 3}}]
      fail: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: a}, spec: {replicas: 2}, status: {availableReplicas: 2}}]
"#;

#[test]
fn a_live_policy_reads_status_through_the_api_as_from_a_snapshot() {
    let server = apiserver::ApiServer::builder().start();
    server.seed("apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n");
    let manifest = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
";
    server.seed(manifest);
    let ws = Workspace::new();
    ws.repo_with(
        "Ana Ruiz",
        "ana@example.com",
        "web app",
        vec![("apps/web/deployment.yaml".into(), manifest.into())],
    );
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    ws.write("policies/availability.yaml", AVAILABILITY_PACK);
    ws.write(
        "plumbline.yaml",
        "sources: [{name: gitops, url: repo}]
clusters: [{name: prod, kubeconfig: kube.yaml}]
apps: [{name: web, source: gitops, path: apps/web, cluster: prod, namespace: web}]
policies: [policies/]
",
    );
    let (code, scan) = ws.scan_json(&[]);
    assert_eq!(code, 0, "{scan:#}");
    // The server's controller made both replicas available: that is what the policy sees.
    let found = results(&scan, "three-replicas-available");
    assert_eq!(states(&found), [("live".to_string(), false)], "{scan:#}");
    assert_eq!(
        found[0]["message"],
        "2 replicas available, at least 3 needed"
    );
}
