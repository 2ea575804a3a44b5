//! Reading pack files: schema validation with line numbers, and the policy definitions.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use yaml_rust2::parser::{Event, Parser};

use super::{LoadProblem, Severity};

const SCHEMA: &str = include_str!("../../policies/pack.schema.json");

/// Which objects a policy applies to.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// `Kind` or `group/Kind` (`apps/Deployment`; `""` group for core); `*` for any kind.
    pub kinds: Vec<String>,
    /// Namespace globs; absent means every namespace and cluster-scoped objects too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// `matchLabels`-style selector on the object's own labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub state: StateMatch,
}

/// Which states a policy checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateMatch {
    Desired,
    Live,
    #[default]
    Both,
}

/// A CIS Benchmark recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CisControl {
    pub benchmark: String,
    pub version: String,
    pub id: String,
}

/// The crosswalk from a policy to the frameworks auditors ask about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Controls {
    /// SOC 2 Trust Services Criteria, e.g. `CC6.1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soc2: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cis: Vec<CisControl>,
    /// Kubescape control ids, e.g. `C-0057`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kubescape: Vec<String>,
    /// Polaris check names, e.g. `runAsPrivileged`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub polaris: Vec<String>,
    /// Sections of the NSA/CISA Kubernetes Hardening Guide.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nsa: Vec<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Deserialize)]
struct PackDoc {
    metadata: PackMeta,
    policies: Vec<PolicyDoc>,
}

#[derive(Debug, Deserialize)]
struct PackMeta {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyDoc {
    id: String,
    title: String,
    severity: Severity,
    #[serde(rename = "match")]
    matcher: Match,
    #[serde(default)]
    variables: Vec<VariableDoc>,
    expression: String,
    message: Option<String>,
    message_expression: Option<String>,
    controls: Controls,
    tests: TestsDoc,
}

#[derive(Debug, Deserialize)]
struct VariableDoc {
    name: String,
    expression: String,
}

#[derive(Debug, Deserialize)]
struct TestsDoc {
    pass: Vec<serde_json::Value>,
    fail: Vec<serde_json::Value>,
}

/// A source expression and the line it starts on.
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub text: String,
    pub line: usize,
}

/// A test object and what it must do.
#[derive(Debug, Clone)]
pub(super) struct TestCase {
    pub must_pass: bool,
    pub index: usize,
    pub line: usize,
    pub case: serde_json::Value,
}

/// One policy as written, with lines for every expression.
#[derive(Debug, Clone)]
pub(super) struct PolicyDef {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub pack: String,
    pub file: PathBuf,
    pub line: usize,
    pub matcher: Match,
    pub matcher_line: usize,
    pub variables: Vec<(String, Located)>,
    pub expression: Located,
    pub message: Option<String>,
    pub message_expression: Option<Located>,
    pub controls: Controls,
    pub tests: Vec<TestCase>,
}

/// Reads the pack files named by `paths`, expanding directories.
pub(super) fn read_paths(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, Vec<LoadProblem>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let problem = |file: &Path, message: String| LoadProblem {
        file: file.to_path_buf(),
        line: 1,
        message,
    };
    for path in paths {
        if path.is_dir() {
            let entries = match std::fs::read_dir(path) {
                Ok(entries) => entries,
                Err(e) => {
                    problems.push(problem(path, format!("cannot read directory: {e}")));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                problems.push(problem(
                    path,
                    "no .yaml or .yml pack files in directory".into(),
                ));
            }
            for file in found {
                match std::fs::read_to_string(&file) {
                    Ok(text) => files.push((file, text)),
                    Err(e) => problems.push(problem(&file, format!("cannot read: {e}"))),
                }
            }
        } else {
            match std::fs::read_to_string(path) {
                Ok(text) => files.push((path.clone(), text)),
                Err(e) => problems.push(problem(path, format!("cannot read: {e}"))),
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value =
                serde_json::from_str(SCHEMA).map_err(|e| format!("pack schema: {e}"))?;
            jsonschema::validator_for(&schema).map_err(|e| format!("pack schema: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Parses and validates one pack file.
pub(super) fn parse(file: &Path, text: &str) -> Result<Vec<PolicyDef>, Vec<LoadProblem>> {
    let problem = |line: usize, message: String| LoadProblem {
        file: file.to_path_buf(),
        line: line.max(1),
        message,
    };
    let lines = line_index(text).map_err(|(line, msg)| vec![problem(line, msg)])?;
    let doc: serde_json::Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        vec![problem(line, e.to_string())]
    })?;
    let line_of = |pointer: &str| -> usize {
        let mut p = pointer;
        loop {
            if let Some(line) = lines.get(p) {
                return *line;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 1,
            }
        }
    };
    let validator = validator().map_err(|e| vec![problem(1, e)])?;
    let errors: Vec<LoadProblem> = validator
        .iter_errors(&doc)
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            let place = if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            };
            problem(line_of(&at), format!("{place}{e}"))
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let pack: PackDoc =
        serde_json::from_value(doc).map_err(|e| vec![problem(1, format!("invalid pack: {e}"))])?;
    Ok(pack
        .policies
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let at = |suffix: &str| line_of(&format!("/policies/{i}{suffix}"));
            let tests = p
                .tests
                .pass
                .into_iter()
                .enumerate()
                .map(|(j, case)| TestCase {
                    must_pass: true,
                    index: j,
                    line: at(&format!("/tests/pass/{j}")),
                    case,
                })
                .chain(
                    p.tests
                        .fail
                        .into_iter()
                        .enumerate()
                        .map(|(j, case)| TestCase {
                            must_pass: false,
                            index: j,
                            line: at(&format!("/tests/fail/{j}")),
                            case,
                        }),
                )
                .collect();
            PolicyDef {
                line: at(""),
                matcher_line: at("/match"),
                variables: p
                    .variables
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| {
                        let line = at(&format!("/variables/{j}/expression"));
                        (
                            v.name,
                            Located {
                                text: v.expression,
                                line,
                            },
                        )
                    })
                    .collect(),
                expression: Located {
                    text: p.expression,
                    line: at("/expression"),
                },
                message_expression: p.message_expression.map(|text| Located {
                    text,
                    line: at("/messageExpression"),
                }),
                id: p.id,
                title: p.title,
                severity: p.severity,
                pack: pack.metadata.name.clone(),
                file: file.to_path_buf(),
                matcher: p.matcher,
                message: p.message,
                controls: p.controls,
                tests,
            }
        })
        .collect())
}

/// Deeper than any real pack; keeps hostile nesting from growing the path stack forever.
const MAX_DEPTH: usize = 128;

enum Frame {
    Seq {
        pointer: String,
        next: usize,
    },
    Map {
        pointer: String,
        key: Option<(String, usize)>,
    },
    /// A collection used as a mapping key: its contents have no pointer.
    Skip,
}

/// Maps the JSON pointer of every node to the line it starts on (a mapping value's
/// line is its key's). Events are pulled one by one, so nesting does not recurse.
fn line_index(text: &str) -> Result<HashMap<String, usize>, (usize, String)> {
    fn escape(key: &str) -> String {
        key.replace('~', "~0").replace('/', "~1")
    }
    let mut lines = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok(pair) => pair,
            Err(e) => return Err((e.marker().line(), e.info().to_string())),
        };
        let line = mark.line().max(1);
        let starts = match ev {
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                continue;
            }
            Event::Scalar(..) | Event::Alias(_) => None,
            Event::SequenceStart(..) => Some(true),
            Event::MappingStart(..) => Some(false),
            _ => continue,
        };
        // Where this node sits, or `None` when it is a mapping key.
        let (pointer, line) = match stack.last_mut() {
            None => (Some(String::new()), line),
            Some(Frame::Skip) => (None, line),
            Some(Frame::Seq { pointer, next }) => {
                *next += 1;
                (Some(format!("{pointer}/{}", *next - 1)), line)
            }
            Some(Frame::Map { pointer, key }) => match key.take() {
                Some((k, key_line)) => (Some(format!("{pointer}/{}", escape(&k))), key_line),
                None => {
                    if let Event::Scalar(value, ..) = &ev {
                        *key = Some((value.clone(), line));
                        continue;
                    }
                    *key = Some(("?".to_string(), line));
                    (None, line)
                }
            },
        };
        if let Some(p) = &pointer {
            lines.entry(p.clone()).or_insert(line);
        }
        if let Some(is_seq) = starts {
            if stack.len() >= MAX_DEPTH {
                return Err((line, format!("nested deeper than {MAX_DEPTH} levels")));
            }
            stack.push(match (pointer, is_seq) {
                (None, _) => Frame::Skip,
                (Some(pointer), true) => Frame::Seq { pointer, next: 0 },
                (Some(pointer), false) => Frame::Map { pointer, key: None },
            });
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_to_lines() {
        let text = "a: 1\nb:\n  - x\n  - y: 2\n    z: [3, 4]\nc/d: 5\n";
        let lines = line_index(text).unwrap();
        assert_eq!(lines[""], 1);
        assert_eq!(lines["/a"], 1);
        assert_eq!(lines["/b"], 2);
        assert_eq!(lines["/b/0"], 3);
        assert_eq!(lines["/b/1"], 4);
        assert_eq!(lines["/b/1/y"], 4);
        assert_eq!(lines["/b/1/z/1"], 5);
        assert_eq!(lines["/c~1d"], 6);
    }

    const PACK: &str = r#"apiVersion: plumbline.dev/v1
kind: PolicyPack
metadata: {name: t}
policies:
  - id: ok-policy
    title: T
    severity: low
    match: {kinds: [Pod]}
    expression: "true"
    message: m
    controls: {soc2: [CC6.1]}
    tests: {pass: [{kind: Pod}], fail: [{kind: Pod}]}
"#;

    #[test]
    fn schema_errors_point_at_their_line() {
        let bad = PACK
            .replace("severity: low", "severity: severe")
            .replace("id: ok-policy", "id: Not_Kebab");
        let problems = parse(Path::new("p.yaml"), &bad).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("p.yaml:5: /policies/0/id")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("p.yaml:7: /policies/0/severity")),
            "{text:?}"
        );
    }

    #[test]
    fn unknown_keys_and_missing_message_are_rejected() {
        let bad = PACK.replace("    message: m\n", "    mesage: m\n");
        let problems = parse(Path::new("p.yaml"), &bad).unwrap_err();
        assert!(problems.iter().all(|p| p.line >= 5), "{problems:?}");
        assert!(problems.len() >= 2, "{problems:?}");
    }

    #[test]
    fn yaml_syntax_errors_have_a_line() {
        let problems = parse(Path::new("p.yaml"), "a: [1\nb: 2\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].line >= 1);
    }

    #[test]
    fn definitions_carry_lines() {
        let defs = parse(Path::new("p.yaml"), PACK).unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].line, 5);
        assert_eq!(defs[0].expression.line, 9);
        assert_eq!(defs[0].tests.len(), 2);
        assert_eq!(defs[0].tests[1].line, 12);
    }
}
