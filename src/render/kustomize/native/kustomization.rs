//! The kustomization file: locating it, and reading the fields this engine supports.

use super::resource::parse_yaml;
use super::Error;
use serde_json::{Map, Value};

/// File names kustomize accepts for a kustomization, in its order of preference.
pub(super) const FILE_NAMES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields this engine cannot reproduce; a kustomization using one is refused.
const UNSUPPORTED: &[&str] = &[
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "replacements",
    "vars",
    "transformers",
    "generators",
    "validators",
    "openapi",
    "crds",
    "configurations",
    "buildMetadata",
    "inventory",
];

/// Fields read by this engine.
const SUPPORTED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "sortOptions",
];

/// A parsed kustomization file.
pub(super) struct Kustomization {
    /// Repository-relative path of the file.
    pub file: String,
    pub is_component: bool,
    pub doc: Map<String, Value>,
}

impl Kustomization {
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Kustomization, Error> {
        let invalid = |message: String| Error::Invalid {
            file: file.to_string(),
            message,
        };
        let doc = match parse_yaml(bytes).map_err(invalid)? {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => return Err(invalid("a kustomization must be a mapping".into())),
        };
        for key in doc.keys() {
            if UNSUPPORTED.contains(&key.as_str()) {
                return Err(Error::Unsupported {
                    field: key.clone(),
                    file: file.to_string(),
                });
            }
            if !SUPPORTED.contains(&key.as_str()) {
                return Err(invalid(format!("unknown field \"{key}\"")));
            }
        }
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        let is_component = match kind {
            "" | "Kustomization" => false,
            "Component" => true,
            other => return Err(invalid(format!("unknown kind \"{other}\""))),
        };
        if let Some(api_version) = doc.get("apiVersion").and_then(Value::as_str) {
            let expected = if is_component {
                "kustomize.config.k8s.io/v1alpha1"
            } else {
                "kustomize.config.k8s.io/v1beta1"
            };
            if api_version != expected {
                return Err(invalid(format!(
                    "apiVersion for {} should be {expected}",
                    if is_component {
                        "Component"
                    } else {
                        "Kustomization"
                    }
                )));
            }
        }
        Ok(Kustomization {
            file: file.to_string(),
            is_component,
            doc,
        })
    }

    pub fn invalid(&self, message: impl Into<String>) -> Error {
        Error::Invalid {
            file: self.file.clone(),
            message: message.into(),
        }
    }

    pub fn unsupported(&self, field: impl Into<String>) -> Error {
        Error::Unsupported {
            field: field.into(),
            file: self.file.clone(),
        }
    }

    /// A string field; "" when absent.
    pub fn string(&self, field: &str) -> Result<String, Error> {
        match self.doc.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.invalid(format!("{field} must be a string"))),
        }
    }

    /// A list field; empty when absent.
    pub fn list(&self, field: &str) -> Result<&[Value], Error> {
        match self.doc.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.invalid(format!("{field} must be a list"))),
        }
    }

    /// A list of strings; empty when absent.
    pub fn strings(&self, field: &str) -> Result<Vec<String>, Error> {
        self.list(field)?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.invalid(format!("{field} must be a list of strings")))
            })
            .collect()
    }

    /// A string-to-string map (labels, annotations); empty when absent.
    pub fn string_map(&self, field: &str) -> Result<Vec<(String, String)>, Error> {
        string_map(self.doc.get(field)).map_err(|m| self.invalid(format!("{field}: {m}")))
    }
}

/// Reads a map of strings; scalars are kept as kustomize prints them.
pub(super) fn string_map(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), scalar_string(v)?)))
            .collect(),
        Some(_) => Err("must be a map".into()),
    }
}

/// A scalar as a string, the way kustomize reads a `map[string]string`.
pub(super) fn scalar_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err("values must be strings".into()),
    }
}

/// Whether a resource reference names a remote location, which this engine does not fetch.
pub(super) fn is_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("github.com/")
        || reference.starts_with("gitlab.com/")
        || reference.starts_with("bitbucket.org/")
}
