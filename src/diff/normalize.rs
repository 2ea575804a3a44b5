//! Normalisation: brings the desired and the live object into the same shape before they are
//! compared, undoing what the API server adds or rewrites.
//!
//! Steps, each named in the README:
//! - *server-metadata*: uid, resourceVersion, generation, creationTimestamp, managedFields,
//!   selfLink, ownerReferences and `status` are the server's and never compared;
//! - *defaults*: the desired object gets the defaults the server would give it at create
//!   (used to excuse differences only: see `diff_object`);
//! - *secret-data*: `stringData` is folded into `data`, and `data` values re-encoded as the
//!   server stores them (padded standard base64);
//! - *quantities*: resource quantities in canonical form on both sides;
//! - *tracking*: the tracking label and annotation that the GitOps tool adds at apply time are
//!   expected on the live object, so they are added to the desired one.

use super::{defaults, quantity};
use crate::config::Tracking;
use base64::Engine;
use serde_json::{Map, Value};

/// Metadata fields that are part of what Git declares; everything else is the server's.
const DECLARED_METADATA: &[&str] = &["labels", "annotations", "finalizers"];

/// Annotations written by clients or controllers, never declared in Git.
const CLIENT_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The desired object restricted to what Git declares, in the server's canonical forms;
/// with `with_defaults`, also with the defaults the server would fill in at create.
pub fn desired(
    group: &str,
    kind: &str,
    body: &Value,
    app: &str,
    tracking: &Tracking,
    live: Option<&Value>,
    with_defaults: bool,
) -> Value {
    let mut object = body.clone();
    strip_server_fields(&mut object);
    if with_defaults {
        defaults::apply_defaults(group, kind, &mut object);
    }
    if group.is_empty() && kind == "Secret" {
        defaults::secret_string_data_to_data(&mut object);
    }
    defaults::canonicalize_quantities(group, kind, &mut object);
    canonical_secret_data(group, kind, &mut object);
    if let Some(live) = live {
        expect_tracking(&mut object, live, app, tracking);
    }
    object
}

/// The live object restricted to what can be declared, in canonical form.
pub fn live(group: &str, kind: &str, body: &Value) -> Value {
    let mut object = body.clone();
    strip_server_fields(&mut object);
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        for name in CLIENT_ANNOTATIONS {
            annotations.remove(*name);
        }
        if annotations.is_empty() {
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("annotations");
            }
        }
    }
    defaults::canonicalize_quantities(group, kind, &mut object);
    canonical_secret_data(group, kind, &mut object);
    object
}

/// The previous apply's manifest, from the last-applied annotation, normalised like Git's.
pub fn last_applied(body: &Value) -> Option<Value> {
    let text = body
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")?
        .as_str()?;
    let mut applied: Value = serde_json::from_str(text).ok()?;
    strip_server_fields(&mut applied);
    Some(applied)
}

fn strip_server_fields(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.remove("status");
    map.remove("apiVersion");
    map.remove("kind");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        meta.retain(|k, _| DECLARED_METADATA.contains(&k.as_str()));
    }
}

fn expect_tracking(object: &mut Value, live: &Value, app: &str, tracking: &Tracking) {
    let live_label = live
        .pointer("/metadata/labels")
        .and_then(|l| l.get(&tracking.label))
        .and_then(Value::as_str);
    if live_label == Some(app) {
        insert_metadata_entry(object, "labels", &tracking.label, app);
    }
    let live_annotation = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(&tracking.annotation))
        .and_then(Value::as_str);
    if let Some(value) = live_annotation.filter(|v| v.split(':').next() == Some(app)) {
        insert_metadata_entry(object, "annotations", &tracking.annotation, value);
    }
}

fn insert_metadata_entry(object: &mut Value, map_name: &str, key: &str, value: &str) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let entries = meta
        .entry(map_name)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(entries) = entries.as_object_mut() {
        entries
            .entry(key)
            .or_insert_with(|| Value::String(value.to_string()));
    }
}

/// Secret `data` re-encoded as padded standard base64, so that equal bytes compare equal
/// whatever the line wrapping or padding in Git.
fn canonical_secret_data(group: &str, kind: &str, object: &mut Value) {
    if !(group.is_empty() && kind == "Secret") {
        return;
    }
    let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) else {
        return;
    };
    let engine = base64::engine::general_purpose::STANDARD;
    for value in data.values_mut() {
        if let Some(text) = value.as_str() {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            if let Ok(bytes) =
                engine.decode(compact.trim_end_matches('=').to_string() + padding(&compact))
            {
                *value = Value::String(engine.encode(bytes));
            }
        }
    }
}

fn padding(compact: &str) -> &'static str {
    match compact.trim_end_matches('=').len() % 4 {
        2 => "==",
        3 => "=",
        _ => "",
    }
}

/// Canonical form of a quantity-valued JSON field, used where a rule needs one value.
pub fn canonical_quantity(value: &Value) -> Option<String> {
    quantity::canonical_json(value)
}
