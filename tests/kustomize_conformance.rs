//! Conformance of the native Kustomize engine with the real one. Every case under
//! `tests/fixtures/kustomize/` is a repository (`repo/`) and a `case.yaml`:
//!
//! ```yaml
//! description: "what the case exercises"
//! build: apps/web/overlays/prod     # the kustomization to build, relative to repo/
//! error: "substring"                # optional: the native engine must fail with this
//! ```
//!
//! Without `error`, the native build must produce the objects the real engine produces (see
//! `support/kustomize_engine.rs`), compared as JSON values object by object, in the same
//! order. With `error`, the native engine must refuse; these cases need no real engine, and
//! some (`..` leaving the repository) are builds kustomize itself would accept.
//!
//! `PLUMBLINE_KUSTOMIZE_CASE=substring` restricts both tests to the matching cases.

#[path = "support/kustomize_engine.rs"]
mod kustomize_engine;

use plumbline::render::kustomize::native::{self, DirFiles};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kustomize");
const MIN_CASES: usize = 45;
/// Differing paths shown per object; the rest are counted.
const MAX_PATHS: usize = 12;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    description: String,
    build: String,
    error: Option<String>,
}

struct Case {
    name: String,
    repo: PathBuf,
    spec: Spec,
}

/// All cases in name order, or those matching `PLUMBLINE_KUSTOMIZE_CASE`.
fn cases() -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(CASES)
        .expect("read the kustomize fixtures")
        .map(|entry| entry.expect("fixture entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= MIN_CASES,
        "expected at least {MIN_CASES} cases in {CASES}, found {}",
        names.len()
    );
    let only = std::env::var("PLUMBLINE_KUSTOMIZE_CASE").unwrap_or_default();
    names
        .into_iter()
        .filter(|name| name.contains(&only))
        .map(|name| {
            let dir = Path::new(CASES).join(&name);
            let text = std::fs::read_to_string(dir.join("case.yaml"))
                .unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
            let spec: Spec =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
            Case {
                name,
                repo: dir.join("repo"),
                spec,
            }
        })
        .collect()
}

/// The native build; a panic is reported as this case's failure so the others still run.
fn native_build(case: &Case) -> Result<native::Output, String> {
    let files = DirFiles::new(&case.repo).map_err(|e| format!("{}: {e}", case.repo.display()))?;
    let build = || native::build(&files, &case.spec.build);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(format!("panicked: {message}"))
        }
    }
}

/// Panics with every failing case, not just the first.
fn report(failures: Vec<String>, checked: usize, what: &str) {
    if failures.is_empty() {
        eprintln!("{checked} cases: {what}");
        return;
    }
    panic!(
        "{} of {checked} cases fail ({what}):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn native_errors_match_the_expected_message() {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|case| case.spec.error.is_some())
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let expected = case.spec.error.as_deref().unwrap_or_default();
        let problem = match native_build(case) {
            Ok(output) => format!(
                "built {} objects, expected an error containing {expected:?}",
                output.objects.len()
            ),
            Err(error) if error.contains(expected) => continue,
            Err(error) => format!("error {error:?} does not contain {expected:?}"),
        };
        failures.push(format!(
            "== {} ({})\n  {problem}\n",
            case.name, case.spec.description
        ));
    }
    report(failures, cases.len(), "native errors");
}

#[test]
fn native_output_matches_the_real_engine() {
    let Some(engine) = kustomize_engine::engine_or_skip() else {
        return;
    };
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|case| case.spec.error.is_none())
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let problems = compare_case(engine, case);
        if !problems.is_empty() {
            let mut text = format!("== {} ({})\n", case.name, case.spec.description);
            for problem in problems {
                let _ = writeln!(text, "  {}", problem.replace('\n', "\n  "));
            }
            failures.push(text);
        }
    }
    report(
        failures,
        cases.len(),
        &format!("native output against {}", engine.path().display()),
    );
}

/// What differs between the two engines' builds of one case; empty when they agree.
fn compare_case(engine: &kustomize_engine::Engine, case: &Case) -> Vec<String> {
    let real = match engine.build(&case.repo.join(&case.spec.build)) {
        Ok(yaml) => match parse_stream(&yaml) {
            Ok(objects) => objects,
            Err(e) => return vec![format!("the real engine's output does not parse: {e}")],
        },
        Err(e) => return vec![format!("the real engine fails (fixture problem?): {e}")],
    };
    let native = match native_build(case) {
        Ok(output) => output.objects,
        Err(e) => return vec![format!("the native engine fails: {e}")],
    };
    compare_objects(&real, &native)
}

/// A multi-document YAML stream as JSON values, empty documents left out.
fn parse_stream(yaml: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// `apiVersion kind namespace/name`: how kustomize itself tells objects apart.
fn identity(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let namespace = text("/metadata/namespace");
    let name = text("/metadata/name");
    let scoped = if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    format!("{} {} {scoped}", text("/apiVersion"), text("/kind"))
}

fn compare_objects(real: &[Value], native: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let real_ids: Vec<String> = real.iter().map(identity).collect();
    let native_ids: Vec<String> = native.iter().map(identity).collect();
    for (side, ids) in [("real", &real_ids), ("native", &native_ids)] {
        let mut seen = BTreeSet::new();
        for id in ids.iter() {
            if !seen.insert(id) {
                problems.push(format!("the {side} output has {id} twice"));
            }
        }
    }
    let native_by_id: HashMap<&str, &Value> = native_ids
        .iter()
        .map(String::as_str)
        .zip(native.iter())
        .collect();
    let real_set: BTreeSet<&str> = real_ids.iter().map(String::as_str).collect();
    for (id, object) in real_ids.iter().zip(real) {
        let Some(other) = native_by_id.get(id.as_str()) else {
            problems.push(format!("missing from the native output: {id}"));
            continue;
        };
        let mut paths = Vec::new();
        diff_values("", object, other, &mut paths);
        if !paths.is_empty() {
            let shown = paths.len().min(MAX_PATHS);
            let mut text = format!("{id} differs (real → native):");
            for path in &paths[..shown] {
                let _ = write!(text, "\n  {path}");
            }
            if paths.len() > shown {
                let _ = write!(text, "\n  … and {} more", paths.len() - shown);
            }
            problems.push(text);
        }
    }
    for id in &native_ids {
        if !real_set.contains(id.as_str()) {
            problems.push(format!("extra in the native output: {id}"));
        }
    }
    if problems.is_empty() && real_ids != native_ids {
        problems.push(format!(
            "same objects, different order:\n  real:   {}\n  native: {}",
            real_ids.join(", "),
            native_ids.join(", ")
        ));
    }
    problems
}

/// Appends `pointer: real → native` for every place the values differ (RFC 6901 pointers).
fn diff_values(pointer: &str, real: &Value, native: &Value, out: &mut Vec<String>) {
    match (real, native) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let path = format!("{pointer}/{}", escape(key));
                match b.get(key) {
                    Some(other) => diff_values(&path, value, other, out),
                    None => out.push(format!("{path}: {} → (absent)", brief(value))),
                }
            }
            for (key, value) in b {
                if !a.contains_key(key) {
                    let path = format!("{pointer}/{}", escape(key));
                    out.push(format!("{path}: (absent) → {}", brief(value)));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{pointer}/{index}"), x, y, out);
            }
        }
        _ if real == native => {}
        _ => {
            let at = if pointer.is_empty() { "/" } else { pointer };
            out.push(format!("{at}: {} → {}", brief(real), brief(native)));
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A value as compact JSON, cut to keep a failure readable.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
