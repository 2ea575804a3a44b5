//! Self-heal against a loopback API server: the real binary plans with the server's dry
//! run, applies with server-side apply, creates, prunes, honours the deny list and the
//! limits, records every action, and never lets a Secret value out.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
#[path = "support/http_capture.rs"]
mod http_capture;
#[path = "support/smtp.rs"]
mod smtp;
mod support;

use apiserver::{ApiServer, Fault};
use base64::Engine as _;
use serde_json::{json, Value};
use support::Workspace;

const GIT_SECRET: &str = "s3cr3t-from-git";
const LIVE_SECRET: &str = "hunter2-typed-live";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `apps/web`: a Deployment, a ConfigMap, a Secret, a Service that was never applied, and
/// a ClusterRole; `apps/api` and `apps/legacy`: one ConfigMap each.
fn git_files() -> Vec<(String, Vec<u8>)> {
    let web = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: web}}
data: {{LEVEL: info}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-db, namespace: web}}
type: Opaque
data: {{password: {}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-svc, namespace: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: web-reader}}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list]
"#,
        b64(GIT_SECRET)
    );
    vec![
        ("apps/web/web.yaml".into(), web.into_bytes()),
        (
            "apps/api/config.yaml".into(),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config, namespace: api}\ndata: {LEVEL: info}\n".to_vec(),
        ),
        (
            "apps/legacy/config.yaml".into(),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy-config, namespace: legacy}\ndata: {LEVEL: info}\n".to_vec(),
        ),
    ]
}

/// Applies Git as a GitOps tool would (tracking label = app), all but the Service, then
/// makes drift by hand and leaves two orphans.
fn seed(server: &ApiServer) {
    for ns in ["web", "api", "legacy"] {
        server.seed(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        ));
    }
    for (path, content) in git_files() {
        let app = path.split('/').nth(1).expect("app dir");
        let text = String::from_utf8(content).expect("utf8");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let mut object: Value = serde::Deserialize::deserialize(document).expect("YAML");
            if object["kind"] == "Service" {
                continue;
            }
            object["metadata"]["labels"] = json!({"app.kubernetes.io/instance": app});
            server.seed(&serde_yaml::to_string(&object).expect("yaml"));
        }
    }
    server.edit("apps/v1", "Deployment", Some("web"), "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:latest");
    });
    for (ns, name) in [
        ("web", "web-config"),
        ("api", "api-config"),
        ("legacy", "legacy-config"),
    ] {
        server.edit("v1", "ConfigMap", Some(ns), name, |cm| {
            cm["data"]["LEVEL"] = json!("debug");
        });
    }
    server.edit("v1", "Secret", Some("web"), "web-db", |s| {
        s["data"]["password"] = json!(b64(LIVE_SECRET));
    });
    server.edit(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        None,
        "web-reader",
        |r| {
            r["rules"][0]["verbs"] = json!(["get", "list", "delete"]);
        },
    );
    for (ns, app) in [("web", "web"), ("api", "api")] {
        server
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{app}-old"), "namespace": ns,
                             "labels": {"app.kubernetes.io/instance": app}},
                "data": {"LEVEL": "info"}}))
            .expect("orphan created");
    }
}

fn workspace(server: &ApiServer, heal: &str) -> Workspace {
    let ws = Workspace::new();
    ws.repo_with("Ana Ruiz", "ana@example.com", "Add apps", git_files());
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    ws.write(
        "plumbline.yaml",
        &format!(
            "database: plumbline.db
sources: [{{name: gitops, url: repo, revision: main}}]
clusters: [{{name: prod, kubeconfig: kube.yaml}}]
heal: {heal}
apps:
  - {{name: web, source: gitops, path: apps/web, cluster: prod, namespace: web, self_heal: true, prune: true}}
  - {{name: api, source: gitops, path: apps/api, cluster: prod, namespace: api, self_heal: true}}
  - {{name: legacy, source: gitops, path: apps/legacy, cluster: prod, namespace: legacy}}
"
        ),
    );
    ws
}

fn heal_json(ws: &Workspace, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["heal", "--format", "json"];
    args.extend_from_slice(extra);
    let output = ws.run(&args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "heal output is not JSON ({e})\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), json)
}

/// `(status, action, kind, name)` of every action, with the reason of those not done.
fn actions(run: &Value) -> Vec<(String, String, String, String)> {
    run["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["status"].as_str().unwrap_or_default().to_string(),
                a["action"].as_str().unwrap_or_default().to_string(),
                a["kind"].as_str().unwrap_or_default().to_string(),
                a["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn action<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("an action on {name}: {run:#}"))
}

fn owned(tuples: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    tuples
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

fn status_of(result: &Value, kind: &str, name: &str) -> String {
    result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind && f["name"] == name)
        .map_or("in_sync".to_string(), |f| {
            f["status"].as_str().unwrap_or_default().to_string()
        })
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [GIT_SECRET, LIVE_SECRET, &b64(GIT_SECRET), &b64(LIVE_SECRET)] {
        assert!(!text.contains(secret), "{what} holds a Secret value");
    }
}

#[test]
fn heal_plans_applies_creates_and_prunes_with_the_rails() {
    let server = ApiServer::builder().start();
    seed(&server);
    let ws = workspace(&server, "{force: true}");

    // The dry run: exactly the patches of the opted-in apps' drift, nothing written.
    let (code, plan) = heal_json(&ws, &["--dry-run"]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        actions(&plan),
        owned(&[
            ("planned", "apply", "ConfigMap", "api-config"),
            ("skipped", "delete", "ConfigMap", "api-old"),
            ("planned", "apply", "ConfigMap", "web-config"),
            ("planned", "delete", "ConfigMap", "web-old"),
            ("planned", "apply", "Secret", "web-db"),
            ("planned", "create", "Service", "web-svc"),
            ("planned", "apply", "Deployment", "web"),
            ("skipped", "apply", "ClusterRole", "web-reader"),
        ]),
        "{plan:#}"
    );
    assert_eq!(
        action(&plan, "web")["patch"],
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"}])
    );
    assert_eq!(
        action(&plan, "web-config")["patch"],
        json!([{"op": "replace", "path": "/data/LEVEL", "value": "info"}])
    );
    assert_eq!(
        action(&plan, "web-db")["patch"],
        json!([{"op": "replace", "path": "/data/password", "value": "<redacted>"}])
    );
    assert_eq!(action(&plan, "web-svc")["patch"][0]["op"], "add");
    assert_eq!(
        action(&plan, "api-old")["reason"],
        "prune is off for app api"
    );
    assert_eq!(
        action(&plan, "web-reader")["reason"],
        "heal.deny_kinds holds ClusterRole"
    );
    let unchanged = server
        .object("apps/v1", "Deployment", Some("web"), "web")
        .expect("deployment");
    assert_eq!(
        unchanged["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:latest"
    );
    assert!(server
        .object("v1", "Service", Some("web"), "web-svc")
        .is_none());
    assert!(server
        .object("v1", "ConfigMap", Some("web"), "web-old")
        .is_some());

    // The table shows the same patches.
    let table = ws.run(&["heal", "--dry-run"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains(r#"{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}"#),
        "{table}"
    );
    assert!(table.contains("heal (dry run) after scan"), "{table}");
    assert_no_secret("the heal table", &table);

    // The real run.
    let (code, done) = heal_json(&ws, &[]);
    assert_eq!(code, 0, "{done:#}");
    let applied: Vec<_> = actions(&done)
        .into_iter()
        .filter(|a| a.0 == "applied")
        .map(|a| a.3)
        .collect();
    assert_eq!(
        applied,
        [
            "api-config",
            "web-config",
            "web-old",
            "web-db",
            "web-svc",
            "web"
        ],
        "{done:#}"
    );
    let deployment = server
        .object("apps/v1", "Deployment", Some("web"), "web")
        .expect("deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter(|m| m["operation"] == "Apply")
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["plumbline"]);
    let created = server
        .object("v1", "Service", Some("web"), "web-svc")
        .expect("the missing Service is created");
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/instance"],
        "web"
    );
    assert!(server
        .object("v1", "ConfigMap", Some("web"), "web-old")
        .is_none());
    assert!(server
        .object("v1", "ConfigMap", Some("api"), "api-old")
        .is_some());

    // A scan now: the healed objects are in sync, the rest as it was.
    let (_, scan) = ws.scan_json(&[]);
    for (kind, name) in [
        ("Deployment", "web"),
        ("ConfigMap", "web-config"),
        ("Secret", "web-db"),
        ("Service", "web-svc"),
        ("ConfigMap", "web-old"),
        ("ConfigMap", "api-config"),
    ] {
        assert_eq!(
            status_of(&scan, kind, name),
            "in_sync",
            "{kind} {name}: {scan:#}"
        );
    }
    assert_eq!(status_of(&scan, "ConfigMap", "legacy-config"), "modified");
    assert_eq!(status_of(&scan, "ClusterRole", "web-reader"), "modified");
    assert_eq!(status_of(&scan, "ConfigMap", "api-old"), "orphaned");

    // Every action is in the database, linked to the scan heal made, and none holds a value.
    let db = rusqlite::Connection::open(ws.path("plumbline.db")).expect("db");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).expect(sql) };
    // Two dry runs (JSON and table) and the real run, eight actions each.
    assert_eq!(count("SELECT COUNT(*) FROM heal_actions"), 24);
    assert_eq!(
        count("SELECT COUNT(*) FROM heal_actions WHERE status = 'applied' AND dry_run = 0"),
        6
    );
    assert_eq!(count("SELECT COUNT(DISTINCT scan_id) FROM heal_actions"), 3);
    let scan_id = done["scan_id"].as_i64().expect("scan id");
    let filters: String = db
        .query_row("SELECT filters FROM scans WHERE id = ?1", [scan_id], |r| {
            r.get(0)
        })
        .expect("scan row");
    assert!(filters.contains("heal"), "{filters}");
    let rows: Vec<String> = db
        .prepare("SELECT COALESCE(patch, '') || COALESCE(reason, '') FROM heal_actions")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_no_secret("heal_actions", &rows.join("\n"));
    drop(db);
    for file in ["plumbline.db", "plumbline.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.path(file)) {
            assert_no_secret(file, &String::from_utf8_lossy(&bytes));
        }
    }

    // The reports of that scan list the actions; the row hash still matches the JSON.
    let id = scan_id.to_string();
    let json_report = ws.run(&[
        "report",
        "--scan",
        &id,
        "--format",
        "json",
        "--include-in-sync",
    ]);
    let json_text = String::from_utf8_lossy(&json_report.stdout).to_string();
    let report: Value = serde_json::from_str(&json_text).expect("report JSON");
    assert_eq!(report["heal_actions"].as_array().map(Vec::len), Some(8));
    assert_no_secret("the JSON report", &json_text);
    let db = rusqlite::Connection::open(ws.path("plumbline.db")).expect("db");
    let row_hash: String = db
        .query_row("SELECT row_hash FROM scans WHERE id = ?1", [scan_id], |r| {
            r.get(0)
        })
        .expect("row hash");
    use sha2::Digest as _;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(json_text.as_bytes())),
        row_hash
    );
    let html = ws.run(&["report", "--scan", &id, "--format", "html"]);
    let html = String::from_utf8_lossy(&html.stdout).to_string();
    assert!(html.contains("Self-heal actions"), "no heal section");
    assert!(html.contains("web-svc"));
    assert_no_secret("the HTML report", &html);
}

#[test]
fn conflicts_fail_and_the_run_limit_skips_the_rest() {
    let server = ApiServer::builder().start();
    seed(&server);
    let hook = http_capture::HttpCapture::start(&[200]);
    let ws = workspace(
        &server,
        &format!(
            "{{max_objects_per_run: 2}}\nnotify: {{webhook: {{url: \"{}\"}}}}",
            hook.url("/hook")
        ),
    );
    let (code, run) = heal_json(&ws, &["--app", "web"]);
    assert_eq!(code, 3, "{run:#}");
    // web-config was edited with kubectl edit: that manager owns LEVEL, and without force
    // the server refuses to take it.
    let conflict = action(&run, "web-config");
    assert_eq!(conflict["status"], "failed");
    let reason = conflict["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("conflict") && reason.contains("kubectl-edit"),
        "{reason}"
    );
    assert_eq!(action(&run, "web-old")["status"], "applied", "{run:#}");
    for name in ["web-db", "web-svc", "web"] {
        let skipped = action(&run, name);
        assert_eq!(skipped["status"], "skipped");
        assert_eq!(
            skipped["reason"],
            "limit of 2 objects per run reached (heal.max_objects_per_run)"
        );
    }
    assert_eq!(
        server
            .object("v1", "ConfigMap", Some("web"), "web-config")
            .expect("cm")["data"]["LEVEL"],
        "debug"
    );
    assert!(actions(&run).iter().all(|a| a.3 != "api-config"));
    // One message for the run: what was applied and what failed, no patch values.
    let requests = hook.requests();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).expect("webhook JSON");
    assert_eq!(body["event"], "heal");
    assert_eq!(
        body["heal_actions"].as_array().map(Vec::len),
        Some(2),
        "{body:#}"
    );
    assert!(body["text"]
        .as_str()
        .unwrap_or_default()
        .contains("1 applied, 1 failed, 4 skipped"));
    assert_no_secret("the heal webhook", &body.to_string());
    let db = rusqlite::Connection::open(ws.path("plumbline.db")).expect("db");
    let failed: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM heal_actions WHERE status = 'failed' AND reason LIKE '%conflict%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(failed, 1);
}

#[test]
fn ignored_differences_stay_live_and_the_run_is_mailed() {
    let server = ApiServer::builder().start();
    seed(&server);
    // An HPA-style change the config ignores, on top of the image set by hand.
    server.edit("apps/v1", "Deployment", Some("web"), "web", |d| {
        d["spec"]["replicas"] = json!(5);
    });
    let mail = smtp::SmtpServer::start();
    let ws = workspace(
        &server,
        &format!(
            "{{force: true}}\nignore: [{{kind: Deployment, json_pointers: [/spec/replicas]}}]\nnotify: {{email: {{smtp: \"{}\", starttls: false, from: plumbline@example.com, to: [sre@example.com]}}}}",
            mail.address()
        ),
    );
    // Writes that the server refuses for now are made again.
    server.inject(
        Fault::too_many_requests(0)
            .times(2)
            .on_method("PATCH")
            .on_path("/deployments/web"),
    );
    server.inject(Fault::internal_error().on_method("DELETE"));
    let (code, run) = heal_json(&ws, &["--app", "web"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(action(&run, "web")["status"], "applied", "{run:#}");
    assert_eq!(action(&run, "web-old")["status"], "applied", "{run:#}");
    assert!(server
        .object("v1", "ConfigMap", Some("web"), "web-old")
        .is_none());
    let deletes = server
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(
        deletes, 3,
        "the dry run refused and made again, then the delete"
    );
    // The run is mailed: one line per action, no patch values, no Secret.
    let message = mail.next().expect("a heal email");
    assert_eq!(message.rcpt_to, vec!["sre@example.com"]);
    assert!(
        message
            .data
            .contains("applied apply Deployment web/web on prod (app web)"),
        "{}",
        message.data
    );
    assert!(!message.data.contains("nginx:1.27"), "{}", message.data);
    assert_no_secret("the heal email", &message.data);
    let healed = server
        .object("apps/v1", "Deployment", Some("web"), "web")
        .expect("deployment");
    assert_eq!(
        healed["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(healed["spec"]["replicas"], 5, "{healed:#}");
}

#[test]
fn snapshot_clusters_are_not_healed() {
    let ws = Workspace::new();
    ws.repo_with("Ana Ruiz", "ana@example.com", "Add apps", git_files());
    std::fs::create_dir_all(ws.path("snap")).expect("snapshot dir");
    ws.write(
        "plumbline.yaml",
        "database: plumbline.db
sources: [{name: gitops, url: repo, revision: main}]
clusters: [{name: offline, snapshot: snap}]
apps:
  - {name: api, source: gitops, path: apps/api, cluster: offline, namespace: api, self_heal: true}
",
    );
    let (code, run) = heal_json(&ws, &[]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(
        action(&run, "api-config")["reason"],
        "cluster offline is an offline snapshot: it cannot be healed"
    );
    let no_app = ws.run(&["heal", "--app", "nothing*"]);
    assert_eq!(no_app.status.code(), Some(2));
}
