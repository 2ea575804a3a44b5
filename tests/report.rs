//! Reports of stored scans: the HTML evidence document escapes what clusters and Git say, its
//! rows match the scan, and the recorded row hash verifies the JSON report.

mod support;

use sha2::{Digest, Sha256};
use support::shop_workspace;

#[test]
fn html_report_escapes_values_from_the_cluster() {
    let (ws, _) = shop_workspace();
    let path = ws.path("live/shop-configmaps.json");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let hostile = text.replacen(
        "\"LOG_LEVEL\": \"debug\"",
        "\"LOG_LEVEL\": \"<img src=x onerror=alert(1)>\"",
        1,
    );
    assert_ne!(text, hostile);
    std::fs::write(&path, hostile).expect("write");
    let (_, result) = ws.scan_json(&[]);
    assert_eq!(
        support::finding(&result, "ConfigMap", "shop-config").expect("listed")["changes"][0]
            ["live"],
        "<img src=x onerror=alert(1)>"
    );
    let output = ws.run(&["report", "--format", "html"]);
    assert_eq!(output.status.code(), Some(0));
    let html = String::from_utf8_lossy(&output.stdout);
    assert!(
        !html.contains("<img src=x"),
        "raw markup from the cluster in the report"
    );
    assert!(
        html.contains("&#60;img src=x onerror=alert(1)&#62;")
            || html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "escaped value shown"
    );
    assert!(!html.contains("<script"), "the report needs no script");
}

#[test]
fn html_report_rows_match_the_scan() {
    let (ws, _) = shop_workspace();
    let (_, result) = ws.scan_json(&[]);
    let out = ws.path("reports/audit.html");
    let output = ws.run(&["report", "--format", "html", "--out", "reports/audit.html"]);
    assert_eq!(output.status.code(), Some(0));
    let html = std::fs::read_to_string(out).expect("report written");
    let count = |status: &str| html.matches(&format!("data-status=\"{status}\"")).count();
    let summary = &result["summary"];
    assert_eq!(
        count("modified") as u64,
        summary["modified"].as_u64().expect("n")
    );
    assert_eq!(
        count("missing") as u64,
        summary["missing"].as_u64().expect("n")
    );
    assert_eq!(
        count("orphaned") as u64,
        summary["orphaned"].as_u64().expect("n")
    );
    assert_eq!(
        count("ignored") as u64,
        summary["ignored"].as_u64().expect("n")
    );
    assert!(html.contains("kubectl-edit"));
    assert!(html.contains("fix(shop): raise the memory limit after OOM kills"));
    assert!(!html.contains("s3cr3t-from-vault"));
}

#[test]
fn row_hash_verifies_the_json_report() {
    let (ws, _) = shop_workspace();
    ws.scan_json(&[]);
    let (_, second) = ws.scan_json(&[]);
    let id = second["scan_id"].as_i64().expect("id");
    let report = ws.run(&[
        "report",
        "--scan",
        &id.to_string(),
        "--format",
        "json",
        "--include-in-sync",
    ]);
    let digest = hex::encode(Sha256::digest(&report.stdout));
    let conn = rusqlite::Connection::open(ws.path("state/plumbline.db")).expect("db");
    let stored: String = conn
        .query_row("SELECT row_hash FROM scans WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("row hash");
    assert_eq!(digest, stored);
    let html = String::from_utf8_lossy(
        &ws.run(&["report", "--scan", &id.to_string(), "--format", "html"])
            .stdout,
    )
    .to_string();
    assert!(html.contains(&stored), "the footer shows the row hash");
}

#[test]
fn sarif_and_junit_reports_of_a_stored_scan() {
    let (ws, _) = shop_workspace();
    let (_, result) = ws.scan_json(&[]);
    let sarif = ws.run(&["report", "--format", "sarif"]);
    assert_eq!(sarif.status.code(), Some(0));
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let summary = &result["summary"];
    let drift = ["modified", "missing", "orphaned"]
        .iter()
        .map(|s| summary[*s].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(results.len() as u64, drift);
    let cm = results
        .iter()
        .find(|r| {
            r["message"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("shop-config:")
        })
        .or_else(|| {
            results.iter().find(|r| {
                r["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("shop-config ")
            })
        })
        .expect("the modified ConfigMap is a result");
    assert_eq!(cm["ruleId"], "drift/modified");
    assert_eq!(cm["level"], "error");
    assert_eq!(
        cm["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "apps/shop/config.yaml"
    );

    let junit = ws.run(&["report", "--format", "junit", "--include-in-sync"]);
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(xml.starts_with("<?xml"));
    assert_eq!(
        xml.matches("<testcase ").count() as u64,
        summary["resources"].as_u64().expect("n")
    );
    assert_eq!(xml.matches("<failure ").count() as u64, drift);
    assert!(!xml.contains("s3cr3t-from-vault"));
}

#[test]
fn html_report_shows_the_commit_trail_of_the_period() {
    let (ws, ids) = shop_workspace();
    ws.scan_json(&[]);
    let (_, second) = ws.scan_json(&[]);
    assert_eq!(
        second["commits"],
        serde_json::json!([]),
        "nothing new since scan 1"
    );
    let html = String::from_utf8_lossy(
        &ws.run(&["report", "--scan", "2", "--format", "html"])
            .stdout,
    )
    .to_string();
    assert!(
        html.contains("Commit audit trail (4)"),
        "the period's commits"
    );
    assert!(html.contains("scans 1 to 2"));
    for id in &ids {
        assert!(html.contains(&id[..12]), "commit {id} listed");
    }
    assert!(html.contains("Chen Wei"));
}

#[test]
fn scan_prints_sarif_and_junit_directly() {
    let (ws, _) = shop_workspace();
    let sarif = ws.run(&["scan", "--format", "sarif", "--fail-on", "modified"]);
    assert_eq!(sarif.status.code(), Some(1), "--fail-on still applies");
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).expect("SARIF JSON");
    assert_eq!(
        sarif["runs"][0]["results"].as_array().map(Vec::len),
        Some(5)
    );
    let junit = ws.run(&["scan", "--format", "junit"]);
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert_eq!(xml.matches("<failure ").count(), 5);
}

#[test]
fn html_report_states_the_monitoring_coverage_of_the_period() {
    let (ws, _) = shop_workspace();
    let (_, scan) = ws.scan_json(&[]);
    let html = |ws: &support::Workspace| {
        String::from_utf8_lossy(&ws.run(&["report", "--format", "html"]).stdout).to_string()
    };
    assert!(
        html(&ws).contains("monitoring: no scheduled runs recorded"),
        "a scan run on demand has no schedule to keep"
    );

    // As the daemon records it: the scan ran for its tick, the next tick was missed.
    let db = rusqlite::Connection::open(ws.path("state/plumbline.db")).expect("db");
    let started = scan["started_at"].as_str().expect("started_at");
    db.execute(
        "INSERT INTO ticks (trigger, scheduled_at, outcome, started_at, finished_at, scan_id)
         VALUES ('schedule', ?1, 'ran', ?1, ?1, ?2)",
        rusqlite::params![started, scan["scan_id"].as_i64()],
    )
    .expect("tick");
    assert!(html(&ws).contains("monitoring: 1 of 1 expected scheduled runs executed, no gaps"));

    let (_, next) = ws.scan_json(&[]);
    db.execute(
        "INSERT INTO ticks (trigger, scheduled_at, outcome, reason)
         VALUES ('schedule', ?1, 'missed', 'the daemon was stopped or not running')",
        [next["started_at"].as_str()],
    )
    .expect("tick");
    let report = html(&ws);
    assert!(
        report.contains("monitoring: 1 of 2 expected scheduled runs executed from"),
        "{report}"
    );
    assert!(report.contains("the daemon was stopped or not running"));
}
