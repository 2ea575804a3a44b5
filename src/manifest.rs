//! Decoding of Kubernetes manifest files (YAML, multi-document YAML, JSON, lists).
//!
//! Shared by the plain renderer (files from Git) and the offline snapshot reader (files
//! written by `kubectl get -o yaml|json`), so both sides of a comparison are decoded alike.

use serde::Deserialize;
use serde_json::Value;

/// One decoded object and the 1-based line its document starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub line: usize,
    pub value: Value,
}

/// A file that could not be decoded, with the line the problem is on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DecodeError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// True for the file names whose content is decoded as manifests.
pub fn is_manifest_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Decodes every object in a file. Empty documents are skipped; lists (`kind: List` or any
/// `*List` with `items`) are expanded, and items that lack `kind`/`apiVersion` (as API server
/// list responses do) get them from the list.
pub fn decode(file: &str, data: &[u8]) -> Result<Vec<Document>, DecodeError> {
    let text = std::str::from_utf8(data).map_err(|e| DecodeError {
        file: file.to_string(),
        line: line_of_offset(data, e.valid_up_to()),
        message: "file is not valid UTF-8".to_string(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    if file.to_ascii_lowercase().ends_with(".json") {
        let value: Value = serde_json::from_str(text).map_err(|e| DecodeError {
            file: file.to_string(),
            line: e.line(),
            message: format!("invalid JSON: {e}"),
        })?;
        push_expanded(&mut documents, 1, value);
        return Ok(documents);
    }
    for (start_line, chunk) in split_yaml_documents(text) {
        if chunk.trim().is_empty() {
            continue;
        }
        let invalid = |e: serde_yaml::Error| {
            let offset = e.location().map(|l| l.line()).unwrap_or(1);
            DecodeError {
                file: file.to_string(),
                line: start_line + offset.saturating_sub(1),
                message: format!("invalid YAML: {}", strip_yaml_location(&e.to_string())),
            }
        };
        let deserializer = serde_yaml::Deserializer::from_str(chunk);
        let value = if chunk.contains("<<") {
            // `<<` merge keys, which kubectl and kustomize honour: read through a YAML value.
            let mut yaml = serde_yaml::Value::deserialize(deserializer).map_err(invalid)?;
            yaml.apply_merge().map_err(invalid)?;
            serde_json::to_value(yaml).map_err(|e| DecodeError {
                file: file.to_string(),
                line: start_line,
                message: format!("invalid YAML: {e}"),
            })?
        } else {
            Value::deserialize(deserializer).map_err(invalid)?
        };
        let first_content_line = start_line + leading_blank_or_comment_lines(chunk);
        push_expanded(&mut documents, first_content_line, value);
    }
    Ok(documents)
}

/// serde_yaml appends "at line L column C" relative to the chunk; the caller reports the
/// absolute line instead.
fn strip_yaml_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn leading_blank_or_comment_lines(chunk: &str) -> usize {
    chunk
        .lines()
        .take_while(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        })
        .count()
}

fn line_of_offset(data: &[u8], offset: usize) -> usize {
    data[..offset.min(data.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Splits multi-document YAML at `---` / `...` markers, keeping each document's first line.
/// A marker is only recognised at column 0, where YAML allows nothing else to start.
fn split_yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start_offset = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = is_document_marker(bare, "---") || is_document_marker(bare, "...");
        if is_marker {
            documents.push((start_line, &text[start_offset..offset]));
            // Content may follow a `---` on the same line (`--- !tag` or `--- {a: 1}`).
            let rest = &bare[3..];
            if bare.starts_with("---") && !rest.trim().is_empty() && !rest.trim().starts_with('#') {
                start_offset = offset + 3;
                start_line = line_number;
            } else {
                start_offset = offset + line.len();
                start_line = line_number + 1;
            }
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start_offset..]));
    documents
}

fn is_document_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn push_expanded(documents: &mut Vec<Document>, line: usize, value: Value) {
    match value {
        Value::Null => {}
        Value::Object(map) if is_list(&map) => {
            let item_kind = map
                .get("kind")
                .and_then(Value::as_str)
                .and_then(|k| k.strip_suffix("List"))
                .filter(|k| !k.is_empty())
                .map(str::to_string);
            let api_version = map.get("apiVersion").cloned();
            if let Some(Value::Array(items)) = map.get("items").cloned() {
                for mut item in items {
                    if let Value::Object(obj) = &mut item {
                        if !obj.contains_key("kind") {
                            if let Some(kind) = &item_kind {
                                obj.insert("kind".into(), Value::String(kind.clone()));
                            }
                        }
                        if !obj.contains_key("apiVersion") {
                            if let Some(api_version) = &api_version {
                                obj.insert("apiVersion".into(), api_version.clone());
                            }
                        }
                    }
                    push_expanded(documents, line, item);
                }
            }
        }
        other => documents.push(Document { line, value: other }),
    }
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    kind.ends_with("List") && map.get("items").is_some_and(Value::is_array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_yaml_keeps_start_lines_and_skips_empty_documents() {
        let text = "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let docs = decode("cm.yaml", text.as_bytes()).expect("decodes");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 9);
        assert_eq!(docs[1].value["metadata"]["name"], "b");
    }

    #[test]
    fn merge_keys_are_applied_and_explicit_keys_win() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &common {team: shop, tier: web}\n  annotations:\n    <<: *common\n    tier: api\ndata: {url: \"http://x/<<\"}\n";
        let docs = decode("cm.yaml", text.as_bytes()).expect("decodes");
        assert_eq!(
            docs[0].value["metadata"]["annotations"],
            serde_json::json!({"team": "shop", "tier": "api"})
        );
        assert_eq!(docs[0].value["data"]["url"], "http://x/<<");
    }

    #[test]
    fn malformed_yaml_reports_absolute_line() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: [unclosed\nmetadata: {}\n";
        let err = decode("bad.yaml", text.as_bytes()).expect_err("must fail");
        assert_eq!(err.file, "bad.yaml");
        assert!((5..=6).contains(&err.line), "line {}", err.line);
        assert!(err.to_string().starts_with("bad.yaml:"));
    }

    #[test]
    fn list_items_get_kind_and_api_version_from_the_list() {
        let text = r#"{"apiVersion":"apps/v1","kind":"DeploymentList","items":[{"metadata":{"name":"web"}}]}"#;
        let docs = decode("list.json", text.as_bytes()).expect("decodes");
        assert_eq!(
            docs[0].value,
            json!({"metadata":{"name":"web"},"kind":"Deployment","apiVersion":"apps/v1"})
        );
    }

    #[test]
    fn kind_list_expands_items_that_carry_their_own_kind() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n";
        let docs = decode("l.yml", text.as_bytes()).expect("decodes");
        let kinds: Vec<_> = docs.iter().map(|d| d.value["kind"].clone()).collect();
        assert_eq!(kinds, vec![json!("Service"), json!("Deployment")]);
    }

    #[test]
    fn marker_inside_block_scalar_is_not_a_split() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    ---\n    y\n";
        let docs = decode("c.yaml", text.as_bytes()).expect("decodes");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value["data"]["x"], "---\ny\n");
    }
}
