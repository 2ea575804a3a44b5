//! Drift fidelity: every case under `tests/fixtures/fidelity/` is a Git manifest
//! (`desired.yaml`), the object as a Kubernetes 1.28+ API server returns it (`live.yaml`:
//! server metadata, managedFields, every default, canonical quantities, status) and the verdict
//! plumbline must reach (`expect.yaml`). Each case's `why` says what it exercises.
//!
//! `expect.yaml`:
//! ```yaml
//! status: in_sync | modified | ignored
//! paths: ["/spec/replicas"]          # RFC 6901 pointers of the changes, any order
//! managers: ["kubectl-scale"]        # optional: owners of the changed live fields
//! ignore:                            # optional: ignore rules for this case only
//!   - {"kind": "Deployment", "jsonPointers": ["/spec/replicas"], "managedFieldsManagers": []}
//! app: shop                          # optional, default "shop"
//! known_gap: "what plumbline lacks"   # optional, see below
//! why: "one line"
//! ```
//!
//! A case with `known_gap` states the right verdict for a situation plumbline cannot get right
//! yet, and names what is missing. The test reports it and requires that it still fails: once
//! the gap is closed the case fails with a request to drop the marker, so it cannot silently
//! stay marked.

use plumbline::config::{IgnoreRule, Tracking};
use plumbline::diff::ignore::CompiledRule;
use plumbline::diff::{diff_object, Settings, Verdict, DEFAULT_APPLIERS};
use plumbline::model::Resource;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const MIN_CASES: usize = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: String,
    #[serde(default)]
    paths: Vec<String>,
    managers: Option<Vec<String>>,
    #[serde(default)]
    ignore: Vec<IgnoreSpec>,
    app: Option<String>,
    known_gap: Option<String>,
    why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IgnoreSpec {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    json_pointers: Vec<String>,
    #[serde(default)]
    managed_fields_managers: Vec<String>,
}

struct Case {
    name: String,
    desired: Resource,
    live: Resource,
    expect: Expect,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fidelity")
}

/// Decodes one object the way Git files and cluster snapshots are decoded.
fn read_object(dir: &Path, file: &str) -> Resource {
    let path = dir.join(file);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut documents = plumbline::manifest::decode(file, &data)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        documents.len(),
        1,
        "{}: exactly one object expected",
        path.display()
    );
    Resource::from_value(documents.remove(0).value)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/fidelity exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 case name")
                .to_string();
            let text = std::fs::read_to_string(dir.join("expect.yaml"))
                .unwrap_or_else(|e| panic!("{name}/expect.yaml: {e}"));
            let expect: Expect =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}/expect.yaml: {e}"));
            Case {
                desired: read_object(dir, "desired.yaml"),
                live: read_object(dir, "live.yaml"),
                name,
                expect,
            }
        })
        .collect()
}

fn verdict_of(case: &Case, tracking: &Tracking) -> Verdict {
    let ignore = case
        .expect
        .ignore
        .iter()
        .map(|spec| {
            CompiledRule::compile(&IgnoreRule {
                group: spec.group.clone(),
                kind: spec.kind.clone(),
                namespace: spec.namespace.clone(),
                name: spec.name.clone(),
                json_pointers: spec.json_pointers.clone(),
                jq_path_expressions: Vec::new(),
                managed_fields_managers: spec.managed_fields_managers.clone(),
            })
            .unwrap_or_else(|e| panic!("{}: ignore rule: {e}", case.name))
        })
        .collect();
    let settings = Settings {
        tracking,
        ignore,
        appliers: DEFAULT_APPLIERS.iter().map(|a| a.to_string()).collect(),
        hash_key: None,
    };
    let app = case.expect.app.as_deref().unwrap_or("shop");
    diff_object(&case.desired, &case.live, app, &settings)
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// Secret values (the live `data` values and their decoded text) that must not show up in a
/// verdict.
fn secret_values(live: &Resource) -> Vec<String> {
    use base64::Engine;
    let mut values = Vec::new();
    if let Some(data) = live.body.get("data").and_then(Value::as_object) {
        for value in data.values().filter_map(Value::as_str) {
            values.push(value.to_string());
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value) {
                if let Ok(text) = String::from_utf8(bytes) {
                    values.push(text);
                }
            }
        }
    }
    values.retain(|v| v.len() >= 4);
    values
}

/// Everything wrong with one case's verdict, empty when it is right.
fn check(case: &Case, verdict: &Verdict) -> Vec<String> {
    let mut problems = Vec::new();
    let expected_paths = sorted(&case.expect.paths);
    let actual_paths: Vec<String> = sorted(
        &verdict
            .changes
            .iter()
            .map(|c| c.path.clone())
            .collect::<Vec<_>>(),
    );
    if verdict.status.as_str() != case.expect.status {
        problems.push(format!(
            "status: expected {}, got {}",
            case.expect.status,
            verdict.status.as_str()
        ));
    }
    if actual_paths != expected_paths {
        problems.push(format!(
            "paths: expected {expected_paths:?}, got {actual_paths:?}"
        ));
    }
    if let Some(managers) = &case.expect.managers {
        if sorted(managers) != sorted(&verdict.managers) {
            problems.push(format!(
                "managers: expected {:?}, got {:?}",
                managers, verdict.managers
            ));
        }
    }
    if case.desired.key.group.is_empty() && case.desired.key.kind == "Secret" {
        let shown = serde_json::to_string(&(&verdict.changes, &verdict.patch, &verdict.diff))
            .expect("verdict serialises");
        for value in secret_values(&case.live) {
            if shown.contains(&value) {
                problems.push("a Secret value shows in the verdict".to_string());
            }
        }
    }
    problems
}

fn describe(case: &Case, verdict: &Verdict, problems: &[String]) -> String {
    let mut text = format!("\n=== {} ===\n  why: {}\n", case.name, case.expect.why);
    for problem in problems {
        let _ = writeln!(text, "  {problem}");
    }
    let _ = writeln!(
        text,
        "  expected: {} {:?}",
        case.expect.status, case.expect.paths
    );
    let _ = writeln!(
        text,
        "  actual:   {} {:?} managers {:?}",
        verdict.status.as_str(),
        verdict.changes.iter().map(|c| &c.path).collect::<Vec<_>>(),
        verdict.managers
    );
    for change in &verdict.changes {
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "(absent)".to_string(), |v| v.to_string())
        };
        let _ = writeln!(
            text,
            "    {}: desired {} live {}",
            change.path,
            show(&change.desired),
            show(&change.live)
        );
    }
    text
}

#[test]
fn fidelity_corpus() {
    let cases = load_cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} fidelity cases found in tests/fixtures/fidelity, at least {MIN_CASES} expected",
        cases.len()
    );
    let tracking = Tracking::default();
    let mut failures = String::new();
    let mut failed = 0;
    let mut gaps = String::new();
    for case in &cases {
        assert!(
            !case.expect.why.trim().is_empty(),
            "{}: expect.yaml needs a why",
            case.name
        );
        assert!(
            matches!(
                case.expect.status.as_str(),
                "in_sync" | "modified" | "ignored"
            ),
            "{}: unknown status {}",
            case.name,
            case.expect.status
        );
        let verdict = verdict_of(case, &tracking);
        let problems = check(case, &verdict);
        match (&case.expect.known_gap, problems.is_empty()) {
            (None, true) => {}
            (None, false) => {
                failed += 1;
                failures.push_str(&describe(case, &verdict, &problems));
            }
            (Some(gap), false) => {
                let _ = writeln!(
                    gaps,
                    "{}  known gap: {gap}",
                    describe(case, &verdict, &problems)
                );
            }
            (Some(_), true) => {
                failed += 1;
                let _ = write!(
                    failures,
                    "\n=== {} ===\n  passes now: remove known_gap from its expect.yaml\n",
                    case.name
                );
            }
        }
    }
    if !gaps.is_empty() {
        println!("fidelity cases with a known gap (expected to fail):{gaps}");
    }
    assert!(
        failed == 0,
        "{failed} of {} fidelity cases failed:{failures}",
        cases.len()
    );
}

/// The corpus covers both verdicts for the kinds it is about, and half of it is in sync.
#[test]
fn fidelity_corpus_is_balanced() {
    let cases = load_cases();
    let in_sync = cases
        .iter()
        .filter(|c| c.expect.status == "in_sync")
        .count();
    let modified = cases
        .iter()
        .filter(|c| c.expect.status == "modified")
        .count();
    assert!(
        in_sync * 3 >= cases.len() && modified * 3 >= cases.len(),
        "{in_sync} in sync and {modified} modified out of {}",
        cases.len()
    );
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "Pod",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Namespace",
    ] {
        assert!(
            cases.iter().any(|c| c.desired.key.kind == kind),
            "no fidelity case for {kind}"
        );
    }
    assert!(
        cases.iter().any(|c| plumbline::kinds::builtin_namespaced(
            &c.desired.key.group,
            &c.desired.key.kind
        )
        .is_none()
            && !matches!(
                c.desired.key.kind.as_str(),
                "Namespace" | "ClusterRole" | "ClusterRoleBinding"
            )),
        "no custom resource case"
    );
}
