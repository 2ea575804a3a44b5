//! What a finding carries besides its changes: an RFC 6902 patch from live to desired (kept
//! for `heal`) and a unified YAML diff (for `plumbline diff` and the report).

use super::compare::RawChange;
use super::redact;
use serde_json::{json, Value};

/// The RFC 6902 operations that turn the normalised live object into what a sync would leave.
/// List item removals come last and from the highest index down, so earlier ones do not shift
/// the positions of later ones.
pub fn patch(changes: &[&RawChange]) -> Value {
    let mut ops = Vec::new();
    let mut removals: Vec<&RawChange> = Vec::new();
    for change in changes {
        match (&change.desired, &change.live) {
            (Some(desired), Some(_)) => {
                ops.push(json!({"op": "replace", "path": change.live_pointer, "value": desired}))
            }
            (Some(desired), None) => {
                ops.push(json!({"op": "add", "path": change.live_pointer, "value": desired}))
            }
            (None, _) => removals.push(change),
        }
    }
    removals.sort_by_key(|c| std::cmp::Reverse(removal_order(&c.live_pointer)));
    for change in removals {
        ops.push(json!({"op": "remove", "path": change.live_pointer}));
    }
    Value::Array(ops)
}

fn removal_order(pointer: &str) -> (String, usize) {
    match pointer.rsplit_once('/') {
        Some((parent, last)) => match last.parse::<usize>() {
            Ok(index) => (parent.to_string(), index),
            Err(_) => (pointer.to_string(), 0),
        },
        None => (pointer.to_string(), 0),
    }
}

/// Redacts Secret values in a patch before it is stored or shown.
pub fn redact_patch(patch: &mut Value) {
    if let Some(ops) = patch.as_array_mut() {
        for op in ops {
            let secret = op
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(redact::is_secret_path);
            if secret {
                if let Some(value) = op.get_mut("value") {
                    *value = redact::redact_value(value);
                }
            }
        }
    }
}

/// Unified diff of the live object against the same object with the patch applied, both as
/// YAML: only real changes show, not server noise.
pub fn yaml_diff(live: &Value, patch: &Value, secret: bool, label: &str) -> Option<String> {
    let mut desired = live.clone();
    let operations: json_patch::Patch = serde_json::from_value(patch.clone()).ok()?;
    json_patch::patch(&mut desired, &operations).ok()?;
    let mut before = live.clone();
    if secret {
        redact::redact_object(&mut before);
        redact::redact_object(&mut desired);
        mark_changed_secret_keys(&mut desired, patch);
    }
    let before = serde_yaml::to_string(&before).ok()?;
    let after = serde_yaml::to_string(&desired).ok()?;
    let diff = similar::TextDiff::from_lines(&before, &after);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("{label} (live)"), &format!("{label} (desired)"))
            .to_string(),
    )
}

/// In a redacted Secret the values are all alike; changed keys are marked so the diff shows
/// which key differs without showing either value.
fn mark_changed_secret_keys(desired: &mut Value, patch: &Value) {
    let Some(ops) = patch.as_array() else { return };
    for op in ops {
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            continue;
        };
        if op.get("op").and_then(Value::as_str) == Some("remove") || !redact::is_secret_path(path) {
            continue;
        }
        if let Some(value) = desired.pointer_mut(path) {
            if value.is_string() {
                *value = Value::String(format!("{} (changed)", redact::REDACTED));
            }
        }
    }
}
