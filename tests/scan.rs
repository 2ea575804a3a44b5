//! The scan pipeline end to end: the real binary on a Git repository with history and an
//! offline cluster snapshot, checked through the JSON contract and the exit codes.

mod support;

use serde_json::{json, Value};
use support::{finding, shop_workspace};

fn status_of(result: &Value, kind: &str, name: &str) -> String {
    finding(result, kind, name)
        .map(|f| f["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| "in_sync (not listed)".into())
}

#[test]
fn first_scan_classifies_every_resource() {
    let (ws, ids) = shop_workspace();
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(
        result["sources"],
        json!([{"name": "gitops", "revision": "main", "commit": ids[3]}])
    );
    assert_eq!(
        result["clusters"],
        json!([{"name": "prod", "status": "ok", "error": null}])
    );
    assert_eq!(result["errors"], json!([]));
    assert_eq!(
        result["summary"],
        json!({"resources": 9, "in_sync": 3, "modified": 3, "missing": 1, "orphaned": 1,
               "ignored": 1, "errors": 0, "policy_violations": 0,
               "render_cache_hits": 0, "render_cache_misses": 3})
    );
    assert!(result["scan_id"].as_i64().is_some_and(|id| id >= 1));
    // in_sync resources are not listed without --include-in-sync
    assert_eq!(result["findings"].as_array().map(Vec::len), Some(6));
}

#[test]
fn modified_configmap_names_the_field_value_and_who_changed_it() {
    let (ws, ids) = shop_workspace();
    let (_, result) = ws.scan_json(&[]);
    let cm = finding(&result, "ConfigMap", "shop-config").expect("shop-config listed");
    assert_eq!(cm["status"], "modified");
    assert_eq!(cm["group"], "");
    assert_eq!(cm["version"], "v1");
    assert_eq!(cm["namespace"], "shop");
    assert_eq!(cm["app"], "shop");
    assert_eq!(cm["cluster"], "prod");
    assert_eq!(
        cm["changes"],
        json!([{"path": "/data/LOG_LEVEL", "desired": "info", "live": "debug"}])
    );
    assert_eq!(cm["managers"], json!(["kubectl-edit"]));
    assert_eq!(cm["last_commit"]["sha"], ids[0]);
    assert_eq!(
        cm["last_commit"]["author"],
        "Ana Ruiz <ana.ruiz@example.com>"
    );
    assert_eq!(
        cm["last_commit"]["message"],
        "Import shop and billing manifests"
    );
}

#[test]
fn modified_image_and_rbac_verb() {
    let (ws, ids) = shop_workspace();
    let (_, result) = ws.scan_json(&[]);
    let deploy = finding(&result, "Deployment", "billing").expect("billing listed");
    assert_eq!(deploy["status"], "modified");
    assert_eq!(deploy["group"], "apps");
    assert_eq!(
        deploy["changes"],
        json!([{"path": "/spec/template/spec/containers/0/image",
                "desired": "registry.example.com/billing/api:2.0.1",
                "live": "registry.example.com/billing/api:2.0.2-debug"}])
    );
    assert_eq!(deploy["managers"], json!(["kubectl-set"]));

    let role = finding(&result, "ClusterRole", "shop-reader").expect("role listed");
    assert_eq!(role["status"], "modified");
    assert_eq!(role["namespace"], Value::Null);
    assert_eq!(role["group"], "rbac.authorization.k8s.io");
    assert_eq!(role["changes"][0]["path"], "/rules");
    assert_eq!(
        role["changes"][0]["live"][0]["verbs"],
        json!(["get", "list", "watch", "delete"])
    );
    assert_eq!(role["managers"], json!(["kubectl-patch"]));
    assert_eq!(role["last_commit"]["sha"], ids[2]);
    assert_eq!(
        role["last_commit"]["author"],
        "Chen Wei <chen.wei@example.com>"
    );
}

#[test]
fn missing_orphaned_and_ignored() {
    let (ws, ids) = shop_workspace();
    let (_, result) = ws.scan_json(&[]);
    let netpol = finding(&result, "NetworkPolicy", "billing-ingress").expect("netpol listed");
    assert_eq!(netpol["status"], "missing");
    assert_eq!(netpol["changes"], json!([]));
    assert_eq!(netpol["namespace"], "billing");
    assert_eq!(netpol["last_commit"]["sha"], ids[1]);

    let orphan = finding(&result, "ConfigMap", "shop-config-v1").expect("orphan listed");
    assert_eq!(orphan["status"], "orphaned");
    assert_eq!(orphan["app"], "shop");
    assert_eq!(orphan["changes"], json!([]));
    // Controller-owned and label-copying objects are never orphans.
    assert!(finding(&result, "ReplicaSet", "shop-6f7c9d8b54").is_none());
    assert!(finding(&result, "Endpoints", "shop").is_none());
    assert!(finding(&result, "ConfigMap", "kube-root-ca.crt").is_none());

    let shop = finding(&result, "Deployment", "shop").expect("shop deployment listed");
    assert_eq!(shop["status"], "ignored");
    assert_eq!(
        shop["changes"],
        json!([{"path": "/spec/replicas", "desired": 3, "live": 5}])
    );
    assert_eq!(shop["managers"], json!(["kube-controller-manager"]));
    assert_eq!(shop["last_commit"]["sha"], ids[3]);
}

#[test]
fn defaulted_and_rewritten_objects_are_in_sync() {
    let (ws, _) = shop_workspace();
    let (_, result) = ws.scan_json(&["--include-in-sync"]);
    // Service (allocated IPs, defaults), Secret (stringData vs data), ClusterRoleBinding
    // (defaulted subject apiGroup).
    assert_eq!(status_of(&result, "Service", "shop"), "in_sync");
    assert_eq!(status_of(&result, "Secret", "shop-db"), "in_sync");
    assert_eq!(
        status_of(&result, "ClusterRoleBinding", "shop-reader"),
        "in_sync"
    );
    assert_eq!(result["findings"].as_array().map(Vec::len), Some(9));
}

#[test]
fn secret_values_never_leave_the_process() {
    let (ws, _) = shop_workspace();
    // Someone changed the password by hand.
    let path = ws.path("live/shop-secret.json");
    let text = std::fs::read_to_string(&path).expect("secret fixture");
    let changed = text.replace("czNjcjN0LWZyb20tdmF1bHQ=", "aHVudGVyMg==");
    assert_ne!(text, changed);
    std::fs::write(&path, changed).expect("write");
    let (_, result) = ws.scan_json(&[]);
    let secret = finding(&result, "Secret", "shop-db").expect("secret listed");
    assert_eq!(secret["status"], "modified");
    assert_eq!(
        secret["changes"],
        json!([{"path": "/data/password", "desired": "<redacted>", "live": "<redacted>"}])
    );
    let everything = result.to_string();
    for clear in [
        "s3cr3t-from-vault",
        "czNjcjN0LWZyb20tdmF1bHQ=",
        "hunter2",
        "aHVudGVyMg==",
    ] {
        assert!(
            !everything.contains(clear),
            "{clear} leaked into the scan result"
        );
    }
    let db = std::fs::read(ws.path("state/plumbline.db")).expect("database");
    let wal = std::fs::read(ws.path("state/plumbline.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        for clear in [
            "s3cr3t-from-vault",
            "czNjcjN0LWZyb20tdmF1bHQ=",
            "hunter2",
            "aHVudGVyMg==",
        ] {
            assert!(!text.contains(clear), "{clear} leaked into the database");
        }
    }
    let diff = ws.run(&["diff", "shop"]);
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains("password"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("aHVudGVyMg=="),
        "{text}"
    );
}

#[test]
fn fail_on_sets_exit_code_one() {
    let (ws, _) = shop_workspace();
    for (fail_on, expected) in [
        ("none", 0),
        ("modified", 1),
        ("missing", 1),
        ("orphaned", 1),
        ("any", 1),
    ] {
        let (code, _) = ws.scan_json(&["--fail-on", fail_on]);
        assert_eq!(code, expected, "--fail-on {fail_on}");
    }
    // Only the platform app: one modified ClusterRole, nothing missing or orphaned.
    let (code, _) = ws.scan_json(&["--app", "platform", "--fail-on", "missing"]);
    assert_eq!(code, 0);
    let (code, _) = ws.scan_json(&["--app", "platform", "--fail-on", "modified"]);
    assert_eq!(code, 1);
}

#[test]
fn app_and_cluster_filters() {
    let (ws, _) = shop_workspace();
    let (code, result) = ws.scan_json(&["--app", "bill*", "--include-in-sync"]);
    assert_eq!(code, 0);
    let apps: Vec<&str> = result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["app"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(apps, vec!["billing", "billing"]);
    let output = ws.run(&["scan", "--app", "nothing-like-this"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no app matches"));
}

#[test]
fn table_output_has_a_line_per_finding_and_a_summary() {
    let (ws, _) = shop_workspace();
    let output = ws.run(&["scan"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("STATUS"), "{text}");
    assert_eq!(lines.len(), 1 + 6 + 1, "{text}");
    assert!(text.contains("modified  prod     shop"), "{text}");
    assert!(
        lines.last().is_some_and(|l| l.contains(
            "9 resources, 3 in sync, 3 modified, 1 missing, 1 orphaned, 1 ignored, 0 errors"
        )),
        "{text}"
    );
}

#[test]
fn scans_are_stored_and_reported_identically() {
    let (ws, _) = shop_workspace();
    let (_, first) = ws.scan_json(&["--include-in-sync"]);
    let report = ws.run(&[
        "report",
        "--scan",
        "latest",
        "--format",
        "json",
        "--include-in-sync",
    ]);
    assert_eq!(report.status.code(), Some(0));
    let stored: Value = serde_json::from_slice(&report.stdout).expect("report json");
    assert_eq!(stored["scan_id"], first["scan_id"]);
    assert_eq!(stored["summary"], first["summary"]);
    assert_eq!(stored["findings"], first["findings"]);
    assert_eq!(stored["sources"], first["sources"]);

    let default_report = ws.run(&["report", "--scan", "1"]);
    let default_report: Value =
        serde_json::from_slice(&default_report.stdout).expect("report json");
    assert_eq!(default_report["findings"].as_array().map(Vec::len), Some(6));

    let (_, second) = ws.scan_json(&[]);
    let history = ws.run(&["history", "--format", "json"]);
    let rows: Value = serde_json::from_slice(&history.stdout).expect("history json");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["scan_id"], second["scan_id"]);
    let table = String::from_utf8_lossy(&ws.run(&["history"]).stdout).to_string();
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn commit_trail_records_authors_and_messages_once() {
    let (ws, ids) = shop_workspace();
    let (_, first) = ws.scan_json(&[]);
    let commits = first["commits"].as_array().expect("commits");
    let shas: Vec<&str> = commits
        .iter()
        .map(|c| c["sha"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        shas,
        vec![
            ids[3].as_str(),
            ids[2].as_str(),
            ids[1].as_str(),
            ids[0].as_str()
        ]
    );
    assert_eq!(commits[0]["author"], "Ana Ruiz <ana.ruiz@example.com>");
    assert_eq!(
        commits[0]["message"],
        "fix(shop): raise the memory limit after OOM kills"
    );
    assert_eq!(commits[0]["apps"], json!(["shop"]));
    assert_eq!(commits[0]["files"], json!(["apps/shop/deployment.yaml"]));
    assert_eq!(commits[1]["author"], "Chen Wei <chen.wei@example.com>");
    assert_eq!(commits[1]["apps"], json!(["platform"]));
    assert_eq!(commits[3]["apps"], json!(["billing", "shop"]));
    // The second scan records only what is new since the first: nothing.
    let (_, second) = ws.scan_json(&[]);
    assert_eq!(second["commits"], json!([]));
}

#[test]
fn revisions_resolve_branches_tags_and_short_shas() {
    let (ws, ids) = shop_workspace();
    for (revision, expected) in [
        ("release", &ids[1]),
        ("v1.0", &ids[1]),
        (&ids[2][..8], &ids[2]),
    ] {
        let config =
            support::SHOP_CONFIG.replace("revision: main", &format!("revision: \"{revision}\""));
        ws.write("plumbline.yaml", &config);
        let (_, result) = ws.scan_json(&["--app", "billing"]);
        assert_eq!(
            result["sources"][0]["commit"],
            json!(expected),
            "revision {revision}"
        );
    }
}

#[test]
fn field_removed_from_git_but_owned_by_the_applier_is_drift() {
    let (ws, _) = shop_workspace();
    let without_args = String::from_utf8(support::git_fixture("apps/billing/deployment.yaml"))
        .expect("utf8")
        .replace("          args: [\"--port=9090\"]\n", "");
    let mut writer =
        plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open repo");
    writer
        .commit(
            "main",
            &support::commit(
                "Ben Okafor",
                "ben@example.com",
                1_761_200_000,
                "billing: drop the explicit port flag",
                vec![(
                    "apps/billing/deployment.yaml",
                    Some(without_args.into_bytes()),
                )],
            ),
        )
        .expect("commit");
    let (_, result) = ws.scan_json(&["--app", "billing"]);
    let deploy = finding(&result, "Deployment", "billing").expect("listed");
    let removed = deploy["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == "/spec/template/spec/containers/0/args")
        .expect("args removal reported");
    assert_eq!(removed["live"], json!(["--port=9090"]));
    assert!(
        removed.get("desired").is_none(),
        "absent from Git: {removed}"
    );

    // With another applier configured, argocd-controller's ownership is not the last apply.
    ws.write(
        "plumbline.yaml",
        &format!("{}appliers: [flux-applier]\n", support::SHOP_CONFIG),
    );
    let (_, result) = ws.scan_json(&["--app", "billing"]);
    let deploy = finding(&result, "Deployment", "billing").expect("listed");
    assert!(
        deploy["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["path"] != "/spec/template/spec/containers/0/args"),
        "{deploy:#}"
    );
}
