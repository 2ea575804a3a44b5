//! `plumbline demo`: the bundled example builds, scans offline and shows every status, and a
//! second run works too.

mod support;

use serde_json::Value;

fn run_demo(dir: &std::path::Path) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["demo", "--dir"])
        .arg(dir)
        .env_remove("PLUMBLINE_CACHE")
        .env_remove("PLUMBLINE_CONFIG")
        .output()
        .expect("run demo");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[test]
fn demo_shows_every_status_and_runs_twice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let (code, stdout) = run_demo(&dir);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(
            "48 resources, 40 in sync, 5 modified, 1 missing, 1 orphaned, 1 ignored, 0 errors"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("(7 commits)"), "{stdout}");
    assert!(dir.join("plumbline.db").is_file());
    let report: Value = serde_json::from_slice(
        &std::fs::read(dir.join("reports/scan-1.json")).expect("json report"),
    )
    .expect("report is JSON");
    let by = |kind: &str, name: &str| -> Value {
        support::finding(&report, kind, name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {name} not reported"))
    };
    let api = by("Deployment", "api");
    assert_eq!(api["status"], "modified");
    assert_eq!(api["managers"], serde_json::json!(["kubectl-set"]));
    assert_eq!(
        api["changes"][0]["live"],
        "registry.example.com/shop/api:2.7.1"
    );
    assert_eq!(by("PodDisruptionBudget", "api")["status"], "missing");
    assert_eq!(by("ConfigMap", "web-config")["status"], "orphaned");
    assert_eq!(by("Deployment", "web")["status"], "ignored");
    assert_eq!(
        by("Deployment", "worker")["managers"],
        serde_json::json!(["kubectl-edit"])
    );
    assert_eq!(
        by("ClusterRole", "oncall-view")["managers"],
        serde_json::json!(["kubectl-patch"])
    );
    let secret = by("Secret", "api-db");
    assert_eq!(secret["changes"][0]["live"], "<redacted>");
    // Seven commits by four people, each linked to the apps whose files it touched.
    let authors: std::collections::BTreeSet<&str> = report["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["author"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(authors.len(), 4, "{authors:?}");

    let (code, stdout) = run_demo(&dir);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("scan 2: 48 resources"), "{stdout}");
}
