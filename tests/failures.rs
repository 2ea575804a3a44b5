//! Bad input and broken parts: clear errors naming what and where, and nothing lost.

mod support;

use serde_json::json;
use support::{finding, shop_workspace, Workspace, SHOP_CONFIG};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn unknown_key_is_a_configuration_error_with_its_line() {
    let ws = Workspace::new();
    ws.write(
        "plumbline.yaml",
        &SHOP_CONFIG.replace(
            "    namespace: billing\n",
            "    namespace: billing\n    sefl_heal: true\n",
        ),
    );
    let output = ws.run(&["check-config"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    assert!(
        text.contains(
            "plumbline.yaml:24: apps[1].sefl_heal: unknown key (did you mean \"self_heal\"?)"
        ),
        "{text}"
    );
    assert!(text.contains("self_heal"), "suggests the right key: {text}");
    let scan = ws.run(&["scan"]);
    assert_eq!(scan.status.code(), Some(2));
    assert!(
        stderr(&scan).contains("apps[1].sefl_heal"),
        "{}",
        stderr(&scan)
    );
    assert!(
        !ws.path("state/plumbline.db").exists(),
        "nothing scanned, nothing written"
    );
}

#[test]
fn missing_source_and_bad_cron_are_reported_together() {
    let ws = Workspace::new();
    let config = SHOP_CONFIG.replacen(
        "    source: gitops\n    path: apps/billing",
        "    source: platfrom\n    path: apps/billing",
        1,
    ) + "schedule: \"every five minutes\"\n";
    ws.write("plumbline.yaml", &config);
    let output = ws.run(&["check-config"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    assert!(
        text.contains("plumbline.yaml:20: apps[1].source: no source named \"platfrom\""),
        "{text}"
    );
    assert!(
        text.contains(
            "plumbline.yaml:28: schedule: invalid cron expression \"every five minutes\""
        ),
        "cron problem on its line: {text}"
    );
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn valid_configuration_passes_check_config() {
    let (ws, _) = shop_workspace();
    let output = ws.run(&["check-config"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("configuration is valid"));
}

#[test]
fn malformed_yaml_fails_only_its_app() {
    let (ws, _) = shop_workspace();
    // A second source whose app holds a broken file: the other apps are still reported.
    let broken = Workspace::new();
    broken.repo_with(
        "Dee Park",
        "dee@example.com",
        "add cache",
        vec![
            (
                "cache/ok.yaml".into(),
                b"apiVersion: v1
kind: ConfigMap
metadata:
  name: cache
"
                .to_vec(),
            ),
            (
                "cache/broken.yaml".into(),
                b"apiVersion: v1
kind: ConfigMap
metadata:
  name: [unclosed
  labels: {}
"
                .to_vec(),
            ),
        ],
    );
    let config = SHOP_CONFIG.replace(
        "clusters:",
        &format!("  - name: cache-repo\n    url: {}\nclusters:", broken.path("repo").display()),
    ) + "  - name: cache\n    source: cache-repo\n    path: cache\n    cluster: prod\n    namespace: cache\n";
    ws.write("plumbline.yaml", &config);
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(code, 3, "{result:#}");
    assert_eq!(
        result["errors"].as_array().map(Vec::len),
        Some(1),
        "{result:#}"
    );
    let error = &result["errors"][0];
    assert_eq!(error["stage"], "render");
    assert_eq!(error["app"], "cache");
    assert_eq!(error["cluster"], "prod");
    let message = error["message"].as_str().unwrap_or_default();
    // The parser notices the unclosed flow sequence on the line after it opens.
    assert!(
        message.starts_with("cache/broken.yaml:5: invalid YAML"),
        "{message}"
    );
    assert_eq!(result["summary"]["errors"], 1);
    assert_eq!(
        result["summary"]["modified"], 3,
        "other apps still reported"
    );
    // --fail-on wins over the partial failure
    let (code, _) = ws.scan_json(&["--fail-on", "modified"]);
    assert_eq!(code, 1);
}

#[test]
fn unknown_revision_skips_only_that_source() {
    let (ws, _) = shop_workspace();
    ws.write(
        "plumbline.yaml",
        &SHOP_CONFIG.replace("revision: main", "revision: no-such-branch"),
    );
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(code, 3);
    assert_eq!(result["sources"][0]["commit"], json!(null));
    assert_eq!(result["errors"][0]["stage"], "source");
    let message = result["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-branch"), "{message}");
    assert_eq!(result["summary"]["resources"], 0);
}

#[test]
fn missing_snapshot_directory_marks_the_cluster_unreachable() {
    let (ws, _) = shop_workspace();
    let config = SHOP_CONFIG.replace(
        "    labels: {env: prod}\n",
        "    labels: {env: prod}\n  - name: staging\n    snapshot: snapshots/staging\n",
    ) + "  - name: shop-staging\n    source: gitops\n    path: apps/shop\n    cluster: staging\n    namespace: shop\n";
    ws.write("plumbline.yaml", &config);
    let (code, result) = ws.scan_json(&[]);
    assert_eq!(code, 3);
    let staging = result["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "staging")
        .expect("staging listed")
        .clone();
    assert_eq!(staging["status"], "unreachable");
    assert!(staging["error"]
        .as_str()
        .unwrap_or_default()
        .contains("snapshots/staging"));
    assert_eq!(result["errors"][0]["stage"], "live");
    assert_eq!(result["errors"][0]["cluster"], "staging");
    // prod's findings are complete
    assert_eq!(result["summary"]["resources"], 9);
    assert!(finding(&result, "ConfigMap", "shop-config").is_some());
}

#[test]
fn store_failure_midway_leaves_no_partial_scan() {
    let (ws, _) = shop_workspace();
    let (_, first) = ws.scan_json(&[]);
    assert_eq!(first["scan_id"], 1);
    // Make the last table a scan writes refuse inserts: the transaction must roll back whole.
    let db = ws.path("state/plumbline.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON scan_apps BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .expect("trigger");
    }
    let output = ws.run(&["scan"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("disk full"), "{}", stderr(&output));
    let conn = rusqlite::Connection::open(&db).expect("open");
    let scans: i64 = conn
        .query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
        .expect("count");
    let findings: i64 = conn
        .query_row("SELECT COUNT(*) FROM findings WHERE scan_id > 1", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!((scans, findings), (1, 0));
}

#[test]
fn killed_scans_leave_a_consistent_database() {
    let (ws, _) = shop_workspace();
    let (_, _) = ws.scan_json(&[]);
    for delay_ms in [0u64, 5, 15, 30, 60] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(["scan", "--format", "json"])
            .current_dir(ws.dir.path())
            .env("PLUMBLINE_CACHE", ws.path("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(delay_ms);
        while std::time::Instant::now() < deadline {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::yield_now();
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let conn = rusqlite::Connection::open(ws.path("state/plumbline.db")).expect("open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    // Every stored scan is whole: its findings match its summary.
    let mut stmt = conn
        .prepare("SELECT id, summary FROM scans")
        .expect("prepare");
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(!rows.is_empty());
    for (id, summary) in rows {
        let summary: serde_json::Value = serde_json::from_str(&summary).expect("summary json");
        let count: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM findings WHERE scan_id = ?1",
                [id],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(summary["resources"].as_i64(), Some(count), "scan {id}");
    }
    let report = ws.run(&["report", "--format", "json"]);
    assert_eq!(report.status.code(), Some(0));
}

#[test]
fn per_app_commands_name_an_unknown_app() {
    let (ws, _) = shop_workspace();
    for command in ["diff", "render"] {
        let output = ws.run(&[command, "biling"]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_eq!(
            stderr(&output).trim(),
            "error: no app named \"biling\" (did you mean \"billing\"?)",
            "{command}"
        );
    }
}
