//! The demo's HTML report as a person sees it: loaded in headless Chromium with no console
//! errors, its finding rows matching the scan, and a screenshot kept as a test artifact
//! (`target/test-artifacts/report.png`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| plumbline::render::process::which(name))
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

#[test]
fn demo_report_loads_in_chromium_and_matches_the_scan() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED: no chromium on PATH (Debian package `chromium`; .ci/run installs it)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let demo = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .env_remove("PLUMBLINE_CACHE")
        .output()
        .expect("demo");
    assert_eq!(demo.status.code(), Some(0));
    let report = dir.join("reports/scan-1.html");
    let url = format!("file://{}", report.display());

    let dom = headless(&browser, &tmp.path().join("profile-dom"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium --dump-dom");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let html = String::from_utf8_lossy(&dom.stdout);
    let logs = String::from_utf8_lossy(&dom.stderr);
    // The report has no script: any console message (Chromium logs console.error and
    // uncaught exceptions as `:CONSOLE` lines) means something is wrong.
    let console: Vec<&str> = logs.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(html.contains("GitOps drift and compliance audit"));

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("reports/scan-1.json")).expect("json report"),
    )
    .expect("json");
    for status in ["modified", "missing", "orphaned", "ignored"] {
        let in_dom = html.matches(&format!("data-status=\"{status}\"")).count() as u64;
        assert_eq!(
            Some(in_dom),
            json["summary"][status].as_u64(),
            "{status} rows"
        );
    }
    for finding in json["findings"].as_array().expect("findings") {
        let name = finding["name"].as_str().unwrap_or_default();
        assert!(html.contains(name), "{name} shown");
    }

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = headless(&browser, &tmp.path().join("profile-shot"))
        .arg("--window-size=1280,2000")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(&url)
        .output()
        .expect("chromium --screenshot");
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
}
