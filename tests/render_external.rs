//! Kustomize overlays (the native engine, and the real one for what it does not support) and
//! Helm charts (a stub `helm` that checks its arguments, and the real `helm` when installed),
//! through the real binary.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use apiserver::ApiServer;
use serde_json::json;
use support::{commit, finding, Workspace};

const BASE_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.25
";

const BASE_KUSTOMIZATION: &str = "resources:\n  - deployment.yaml\n";

const OVERLAY_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: web
resources:
  - ../../base
images:
  - name: nginx
    newTag: \"1.27\"
replicas:
  - name: web
    count: 3
configMapGenerator:
  - name: web-env
    literals: [MODE=prod]
";

/// The live Deployment as the API server returns it after Argo CD applied the overlay.
const LIVE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    deployment.kubernetes.io/revision: "1"
  creationTimestamp: "2026-11-01T10:00:00Z"
  generation: 1
  labels:
    app.kubernetes.io/instance: web
  managedFields:
  - apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:labels:
          f:app.kubernetes.io/instance: {}
      f:spec:
        f:replicas: {}
        f:selector: {}
        f:template:
          f:metadata:
            f:labels:
              f:app: {}
          f:spec:
            f:containers:
              k:{"name":"web"}:
                .: {}
                f:image: {}
                f:name: {}
    manager: argocd-controller
    operation: Apply
    time: "2026-11-01T10:00:00Z"
  name: web
  namespace: web
  resourceVersion: "1200"
  uid: 6a1f0c2e-1111-4c3b-9d2a-5e6f7a8b9c0d
spec:
  progressDeadlineSeconds: 600
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 25%
    type: RollingUpdate
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.27
        imagePullPolicy: IfNotPresent
        name: web
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status:
  availableReplicas: 3
  observedGeneration: 1
  readyReplicas: 3
  replicas: 3
  updatedReplicas: 3
"#;

fn kustomize_workspace() -> Workspace {
    let ws = Workspace::new();
    let mut writer = ws.repo_with(
        "Ana Ruiz",
        "ana.ruiz@example.com",
        "web: base and prod overlay",
        vec![
            (
                "apps/web/base/deployment.yaml".into(),
                BASE_DEPLOYMENT.as_bytes().to_vec(),
            ),
            (
                "apps/web/base/kustomization.yaml".into(),
                BASE_KUSTOMIZATION.as_bytes().to_vec(),
            ),
            (
                "apps/web/overlays/prod/kustomization.yaml".into(),
                OVERLAY_KUSTOMIZATION.as_bytes().to_vec(),
            ),
        ],
    );
    writer
        .commit(
            "main",
            &commit(
                "Ben Okafor",
                "ben@example.com",
                1_761_100_000,
                "web: base image comment",
                vec![(
                    "apps/web/base/deployment.yaml",
                    Some(format!("# the web frontend\n{BASE_DEPLOYMENT}").into_bytes()),
                )],
            ),
        )
        .expect("commit");
    ws.write("live/web.yaml", LIVE);
    ws.write(
        "plumbline.yaml",
        "sources: [{name: gitops, url: repo}]\nclusters: [{name: prod, snapshot: live}]\napps:\n  - {name: web, source: gitops, path: apps/web/overlays/prod, cluster: prod}\n",
    );
    ws
}

#[test]
fn kustomize_overlay_is_rendered_natively() {
    let ws = kustomize_workspace();
    let (code, result) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 0, "{result:#}");
    let deployment = finding(&result, "Deployment", "web").expect("deployment");
    assert_eq!(deployment["status"], "in_sync", "{deployment:#}");
    assert_eq!(deployment["namespace"], "web");
    // The generated ConfigMap has kustomize's content hash in its name and is not live yet.
    let generated = result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "ConfigMap")
        .expect("generated configmap");
    assert_eq!(generated["status"], "missing");
    let name = generated["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("web-env-") && name.len() == "web-env-".len() + 10,
        "{name}"
    );
    // The trail follows the base the overlay reads.
    let authors: Vec<&str> = result["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["author"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        authors,
        vec![
            "Ben Okafor <ben@example.com>",
            "Ana Ruiz <ana.ruiz@example.com>"
        ]
    );
    let render = ws.run(&["render", "web", "--format", "json"]);
    assert_eq!(render.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&render.stdout).expect("render json");
    assert_eq!(
        list["items"][1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}

#[test]
fn kustomize_error_fails_only_that_app() {
    let ws = kustomize_workspace();
    let mut writer = plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open");
    writer
        .commit(
            "main",
            &commit(
                "Chen Wei",
                "chen.wei@example.com",
                1_761_200_000,
                "break the overlay",
                vec![(
                    "apps/web/overlays/prod/kustomization.yaml",
                    Some(b"resources:\n  - ../../missing-base\n".to_vec()),
                )],
            ),
        )
        .expect("commit");
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(code, 3, "{result:#}");
    assert_eq!(result["errors"][0]["stage"], "render");
    assert_eq!(result["errors"][0]["app"], "web");
    let message = result["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("apps/web/overlays/prod/kustomization.yaml:"),
        "{message}"
    );
    assert!(message.contains("missing-base"), "{message}");
}

/// Adds an overlay using `replacements` (not built natively) as a second app.
fn with_replacements_app(ws: &Workspace, extra_config: &str) {
    let mut writer = plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open");
    writer
        .commit(
            "main",
            &commit(
                "Chen Wei",
                "chen.wei@example.com",
                1_761_200_000,
                "platform: copy the image tag into a ConfigMap",
                vec![
                    (
                        "apps/platform/kustomization.yaml",
                        Some(
                            b"resources: [settings.yaml]
replacements:
  - source: {kind: ConfigMap, name: settings, fieldPath: data.tier}
    targets:
      - select: {kind: ConfigMap, name: settings}
        fieldPaths: [data.copy]
"
                            .to_vec(),
                        ),
                    ),
                    (
                        "apps/platform/settings.yaml",
                        Some(
                            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: platform\ndata:\n  tier: gold\n  copy: none\n"
                                .to_vec(),
                        ),
                    ),
                ],
            ),
        )
        .expect("commit");
    ws.write(
        "plumbline.yaml",
        &format!("sources: [{{name: gitops, url: repo}}]\nclusters: [{{name: prod, snapshot: live}}]\napps:\n  - {{name: web, source: gitops, path: apps/web/overlays/prod, cluster: prod}}\n  - {{name: platform, source: gitops, path: apps/platform, cluster: prod}}\n{extra_config}"),
    );
}

fn scan_with_path(ws: &Workspace, path: &str) -> (i32, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["scan", "--format", "json"])
        .current_dir(ws.dir.path())
        .env("PLUMBLINE_CACHE", ws.path("cache"))
        .env("PATH", path)
        .output()
        .expect("run");
    let result = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), result)
}

#[test]
fn unsupported_kustomize_feature_without_an_engine_fails_that_app_naming_it() {
    let ws = kustomize_workspace();
    with_replacements_app(&ws, "");
    let empty = ws.path("no-tools");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, result) = scan_with_path(&ws, &empty.to_string_lossy());
    assert_eq!(code, 3, "{result:#}");
    assert_eq!(
        result["errors"],
        json!([{"cluster": "prod", "app": "platform", "stage": "render",
                "message": "unsupported kustomize feature: replacements in apps/platform/kustomization.yaml (install kustomize or set renderers.kustomize to build it)"}])
    );
    let deployment = finding(&result, "ConfigMap", "settings");
    assert!(
        deployment.is_none(),
        "nothing of the failed app is compared"
    );
    assert!(
        result["summary"]["resources"].as_u64() > Some(0),
        "the other app is scanned: {result:#}"
    );
}

#[test]
fn unsupported_kustomize_feature_is_built_by_the_configured_engine() {
    let Some(kubectl) = plumbline::render::process::which("kubectl") else {
        eprintln!("SKIPPED: `kubectl` (the real kustomize engine) is not on PATH");
        return;
    };
    let ws = kustomize_workspace();
    with_replacements_app(
        &ws,
        &format!("renderers: {{kustomize: {}}}\n", kubectl.display()),
    );
    let empty = ws.path("no-tools");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, result) = scan_with_path(&ws, &empty.to_string_lossy());
    assert_eq!(result["errors"], json!([]), "{result:#}");
    assert_eq!(code, 0);
    let settings = finding(&result, "ConfigMap", "settings").expect("settings");
    assert_eq!(settings["status"], "missing");
    let render = ws.run(&["render", "platform", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&render.stdout).expect("render json");
    assert_eq!(list["items"][0]["data"]["copy"], "gold", "{list:#}");
}

#[test]
fn helm_chart_is_rendered_with_release_namespace_and_values() {
    let ws = Workspace::new();
    ws.repo_with(
        "Dee Park",
        "dee@example.com",
        "redis chart",
        vec![
            (
                "charts/redis/Chart.yaml".into(),
                b"apiVersion: v2
name: redis
version: 1.0.0
"
                .to_vec(),
            ),
            (
                "charts/redis/values-prod.yaml".into(),
                b"replicas: 2
"
                .to_vec(),
            ),
        ],
    );
    // A stub `helm` that checks its arguments and prints what `helm template` would.
    let bin = ws.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let stub = r#"#!/bin/sh
[ "$1" = template ] || { echo "expected template, got $1" >&2; exit 9; }
[ "$2" = cache ] || { echo "expected release cache, got $2" >&2; exit 9; }
case "$3" in */charts/redis) ;; *) echo "unexpected chart $3" >&2; exit 9;; esac
[ "$4 $5" = "--namespace data" ] || { echo "expected --namespace data, got $4 $5" >&2; exit 9; }
case "$6 $7" in "--values "*/charts/redis/values-prod.yaml) ;; *) echo "bad values: $6 $7" >&2; exit 9;; esac
[ "$8 $9" = "--set auth.enabled=false" ] || { echo "bad set: $8 $9" >&2; exit 9; }
cat <<'YAML'
---
# Source: redis/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cache-redis
data:
  maxmemory: 256mb
YAML
"#;
    ws.write("bin/helm", stub);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("helm"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    ws.write(
        "live/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cache-redis\n  namespace: data\n  uid: 0b1c2d3e-aaaa-4bbb-8ccc-111122223333\n  resourceVersion: \"77\"\n  creationTimestamp: \"2026-11-01T10:00:00Z\"\ndata:\n  maxmemory: 512mb\n",
    );
    ws.write(
        "plumbline.yaml",
        "sources: [{name: charts, url: repo}]\nclusters: [{name: prod, snapshot: live}]\napps:\n  - name: cache\n    source: charts\n    path: charts/redis\n    cluster: prod\n    namespace: data\n    helm: {values: [values-prod.yaml], set: {auth.enabled: \"false\"}}\n",
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["scan", "--format", "json"])
        .current_dir(ws.dir.path())
        .env("PLUMBLINE_CACHE", ws.path("cache"))
        .env("PATH", path)
        .output()
        .expect("run");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(result["errors"], json!([]), "{result:#}");
    let cm = finding(&result, "ConfigMap", "cache-redis").expect("configmap");
    assert_eq!(cm["status"], "modified");
    assert_eq!(
        cm["changes"],
        json!([{"path": "/data/maxmemory", "desired": "256mb", "live": "512mb"}])
    );
}

/// Writes an executable script into the workspace.
fn executable(ws: &Workspace, relative: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    ws.write(relative, script);
    let path = ws.path(relative);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn helm_gets_the_version_and_api_versions_of_the_target_cluster() {
    let server = ApiServer::builder()
        .version("1.31.4")
        .crd(
            "monitoring.coreos.com",
            "v1",
            "ServiceMonitor",
            "servicemonitors",
            true,
        )
        .start();
    let ws = Workspace::new();
    ws.repo_with(
        "Dee Park",
        "dee@example.com",
        "metrics chart",
        vec![(
            "charts/metrics/Chart.yaml".into(),
            b"apiVersion: v2\nname: metrics\nversion: 1.0.0\n".to_vec(),
        )],
    );
    // The configured program (not on PATH) records its arguments and prints a manifest.
    let record = ws.path("helm-args.txt");
    executable(
        &ws,
        "tools/helm-3",
        &format!(
            "#!/bin/sh\n[ \"$1\" = template ] || exit 0\nfor a in \"$@\"; do echo \"$a\"; done > {}\nprintf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: metrics\\ndata:\\n  port: \"9090\"\\n'\n",
            record.display()
        ),
    );
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    ws.write(
        "plumbline.yaml",
        "sources: [{name: charts, url: repo}]\nclusters: [{name: prod, kubeconfig: kube.yaml}]\napps:\n  - {name: metrics, source: charts, path: charts/metrics, cluster: prod, namespace: monitoring}\nrenderers: {helm: tools/helm-3}\n",
    );
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(result["errors"], json!([]), "{result:#}");
    assert_eq!(code, 0);
    assert_eq!(
        finding(&result, "ConfigMap", "metrics").expect("configmap")["status"],
        "missing"
    );
    let args = std::fs::read_to_string(&record).expect("helm was run");
    let args: Vec<&str> = args.lines().collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1).copied())
            .unwrap_or_else(|| panic!("{flag} missing from {args:?}"))
    };
    assert_eq!(after("--kube-version"), "v1.31.4");
    let api_versions: Vec<&str> = after("--api-versions").split(',').collect();
    for expected in [
        "v1",
        "v1/ConfigMap",
        "apps/v1/Deployment",
        "monitoring.coreos.com/v1",
        "monitoring.coreos.com/v1/ServiceMonitor",
    ] {
        assert!(
            api_versions.contains(&expected),
            "{expected} in {api_versions:?}"
        );
    }
}

#[test]
fn a_real_helm_renders_a_chart_with_its_templates() {
    let Some(helm) = plumbline::render::process::which("helm") else {
        eprintln!("SKIPPED: `helm` is not on PATH; the stub tests cover the arguments");
        return;
    };
    let ws = Workspace::new();
    ws.repo_with(
        "Dee Park",
        "dee@example.com",
        "redis chart",
        vec![
            (
                "charts/redis/Chart.yaml".into(),
                b"apiVersion: v2\nname: redis\nversion: 1.0.0\n".to_vec(),
            ),
            (
                "charts/redis/values.yaml".into(),
                b"maxmemory: 128mb\n".to_vec(),
            ),
            (
                "charts/redis/values-prod.yaml".into(),
                b"maxmemory: 256mb\n".to_vec(),
            ),
            (
                "charts/redis/templates/configmap.yaml".into(),
                b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-redis\n  namespace: {{ .Release.Namespace }}\ndata:\n  maxmemory: {{ .Values.maxmemory | quote }}\n".to_vec(),
            ),
        ],
    );
    ws.write("live/.keep", "");
    ws.write(
        "plumbline.yaml",
        &format!("sources: [{{name: charts, url: repo}}]\nclusters: [{{name: prod, snapshot: live}}]\napps:\n  - name: cache\n    source: charts\n    path: charts/redis\n    cluster: prod\n    namespace: data\n    helm: {{values: [values-prod.yaml]}}\nrenderers: {{helm: {}}}\n", helm.display()),
    );
    let render = ws.run(&["render", "cache", "--format", "json"]);
    assert_eq!(
        render.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&render.stdout).expect("render json");
    assert_eq!(list["items"][0]["metadata"]["name"], "cache-redis");
    assert_eq!(list["items"][0]["metadata"]["namespace"], "data");
    assert_eq!(list["items"][0]["data"]["maxmemory"], "256mb");
}
