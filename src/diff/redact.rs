//! Secret redaction: values of a Secret's `data` and `stringData` never leave the comparison.

use serde_json::Value;

pub const REDACTED: &str = "<redacted>";

pub fn is_secret(group: &str, kind: &str) -> bool {
    group.is_empty() && kind == "Secret"
}

/// True when a pointer into a Secret reaches secret material.
pub fn is_secret_path(pointer: &str) -> bool {
    ["/data", "/stringData"]
        .iter()
        .any(|p| pointer == *p || pointer.starts_with(&format!("{p}/")))
}

/// Replaces a value at a secret path: maps keep their keys, every value becomes `<redacted>`.
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.keys()
                .map(|k| (k.clone(), Value::String(REDACTED.into())))
                .collect(),
        ),
        _ => Value::String(REDACTED.into()),
    }
}

/// Redacts a whole Secret object in place (for diffs and displays), including the
/// last-applied annotation, which holds the manifest in clear.
pub fn redact_object(object: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(value) = object.get_mut(field) {
            *value = redact_value(value);
        }
    }
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        if annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
            annotations.insert(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                Value::String(REDACTED.into()),
            );
        }
    }
}
