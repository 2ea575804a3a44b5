//! The render cache: a scan whose Git content did not change renders nothing, a commit
//! renders again exactly the apps whose files it touched, and Secret values never reach the
//! cache file.

mod support;

use serde_json::Value;
use support::{commit, Workspace};

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: NAME-settings
data:
  mode: prod
";

const LIVE_CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: NAME-settings
  namespace: shop
  uid: 3f2a1b4c-0000-4d5e-8f90-NUMBER
  resourceVersion: \"4NUMBER\"
  creationTimestamp: \"2026-11-01T10:00:00Z\"
  labels:
    app.kubernetes.io/instance: NAME
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:data:
        f:mode: {}
    manager: argocd-controller
    operation: Apply
    time: \"2026-11-01T10:00:00Z\"
data:
  mode: prod
";

/// The password of the Secret kept in Git: it must never sit in the cache.
const PASSWORD: &str = "hunter2-very-secret";

fn secret_manifest() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: {PASSWORD}\n"
    )
}

fn workspace() -> Workspace {
    let ws = Workspace::new();
    let mut files: Vec<(String, Vec<u8>)> = ["web", "api", "worker"]
        .iter()
        .map(|app| {
            (
                format!("apps/{app}/configmap.yaml"),
                CONFIG_MAP.replace("NAME", app).into_bytes(),
            )
        })
        .collect();
    files.push(("apps/db/secret.yaml".into(), secret_manifest().into_bytes()));
    ws.repo_with("Ana Ruiz", "ana@example.com", "shop apps", files);
    for (number, app) in ["web", "api", "worker"].iter().enumerate() {
        ws.write(
            &format!("live/{app}.yaml"),
            &LIVE_CONFIG_MAP
                .replace("NAME", app)
                .replace("NUMBER", &format!("00000000000{number}")),
        );
    }
    let mut config = String::from(
        "sources: [{name: gitops, url: repo}]\nclusters: [{name: prod, snapshot: live}]\napps:\n",
    );
    for app in ["web", "api", "worker", "db"] {
        config.push_str(&format!(
            "  - {{name: {app}, source: gitops, path: apps/{app}, cluster: prod, namespace: shop}}\n"
        ));
    }
    ws.write("plumbline.yaml", &config);
    ws
}

fn cache_counts(result: &Value) -> (u64, u64) {
    let summary = &result["summary"];
    (
        summary["render_cache_hits"].as_u64().expect("hits"),
        summary["render_cache_misses"].as_u64().expect("misses"),
    )
}

/// The verdicts and their Git attribution, without what differs from scan to scan.
fn verdicts(result: &Value) -> Vec<Value> {
    let mut findings = result["findings"].as_array().expect("findings").clone();
    for finding in &mut findings {
        if let Some(f) = finding.as_object_mut() {
            f.remove("scan_id");
        }
    }
    findings
}

#[test]
fn an_unchanged_repository_renders_nothing_and_a_commit_renders_what_it_touched() {
    let ws = workspace();
    let (code, first) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 0, "{first:#}");
    assert_eq!(
        cache_counts(&first),
        (0, 4),
        "a cold cache renders every app"
    );

    let (_, second) = ws.scan_json(&["--include-in-sync"]);
    // The app holding a Secret is never cached, so it renders every time.
    assert_eq!(cache_counts(&second), (3, 1));
    assert_eq!(
        verdicts(&first),
        verdicts(&second),
        "a cached render gives the same verdicts and the same last commits"
    );

    let mut writer =
        plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open repo");
    writer
        .commit(
            "main",
            &commit(
                "Bo Chen",
                "bo@example.com",
                1_761_100_000,
                "web: debug mode",
                vec![(
                    "apps/web/configmap.yaml",
                    Some(
                        CONFIG_MAP
                            .replace("NAME", "web")
                            .replace("prod", "debug")
                            .into_bytes(),
                    ),
                )],
            ),
        )
        .expect("commit");
    let (code, third) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 0, "{third:#}");
    assert_eq!(
        cache_counts(&third),
        (2, 2),
        "only web and the Secret app render"
    );
    let web = support::finding(&third, "ConfigMap", "web-settings").expect("web");
    assert_eq!(
        web["status"], "modified",
        "the new commit's content is compared"
    );
    assert_eq!(web["last_commit"]["message"], "web: debug mode");
}

#[test]
fn a_file_added_to_an_app_directory_is_seen_through_the_cache() {
    let ws = workspace();
    ws.scan_json(&[]);
    let mut writer =
        plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open repo");
    writer
        .commit(
            "main",
            &commit(
                "Bo Chen",
                "bo@example.com",
                1_761_100_000,
                "api: add a second ConfigMap",
                vec![(
                    "apps/api/extra.yaml",
                    Some(CONFIG_MAP.replace("NAME", "api-extra").into_bytes()),
                )],
            ),
        )
        .expect("commit");
    let (_, result) = ws.scan_json(&[]);
    let extra = support::finding(&result, "ConfigMap", "api-extra-settings").expect("extra");
    assert_eq!(extra["status"], "missing");
    assert_eq!(cache_counts(&result), (2, 2));
}

#[test]
fn secret_values_never_reach_the_cache_file() {
    let ws = workspace();
    ws.scan_json(&[]);
    ws.scan_json(&[]);
    let encoded = base64_of(PASSWORD);
    let mut checked = 0;
    for entry in std::fs::read_dir(ws.path("cache")).expect("cache dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.is_some_and(|n| n.starts_with("render-cache.sqlite")) {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read cache file");
        for needle in [PASSWORD, encoded.as_str()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds a Secret value",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "the cache file exists");
}

#[test]
fn the_cache_can_be_turned_off() {
    let ws = workspace();
    let config = std::fs::read_to_string(ws.path("plumbline.yaml")).expect("config");
    ws.write(
        "plumbline.yaml",
        &format!("{config}renderers: {{cache: {{enabled: false}}}}\n"),
    );
    ws.scan_json(&[]);
    let (_, result) = ws.scan_json(&[]);
    assert_eq!(cache_counts(&result), (0, 0));
    assert!(!ws.path("cache/render-cache.sqlite").exists());
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
