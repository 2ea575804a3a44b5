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
//! - *file modes*: `defaultMode: 0644` is the octal 420, as kubectl's YAML 1.1 reader sees it
//!   (see [`defaults::octal_file_modes`]);
//! - *tracking*: the tracking label and annotation that the GitOps tool adds at apply time are
//!   expected on the live object, so they are added to (or overwrite) the desired ones.

use super::defaults;
use crate::config::Tracking;
use base64::Engine;
use serde_json::{Map, Value};

/// Metadata fields that are part of what Git declares; everything else is the server's.
pub const DECLARED_METADATA: &[&str] = &["labels", "annotations", "finalizers"];

/// Annotations written by clients or controllers, never declared in Git.
pub const CLIENT_ANNOTATIONS: &[&str] = &[LAST_APPLIED];

/// The annotation where `kubectl apply` (client-side) keeps the manifest it applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

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
    // Defaults first: some depend on the apiVersion (autoscaling/v1 HPAs get none of v2's),
    // which stripping removes.
    let mut object = if with_defaults {
        let mut object = body.clone();
        defaults::apply_defaults(group, kind, &mut object);
        strip_server_fields(&mut object);
        object
    } else {
        declared_copy(body)
    };
    if group.is_empty() && kind == "Secret" {
        defaults::secret_string_data_to_data(&mut object);
    }
    canonical_values(group, kind, &mut object);
    if let Some(live) = live {
        expect_tracking(&mut object, live, app, tracking);
    }
    object
}

/// The steps of [`desired`] that rewrite single values, each by its path alone: octal file
/// modes, quantities, Secret data. The comparison also runs them on one value at a time.
pub fn canonical_values(group: &str, kind: &str, object: &mut Value) {
    defaults::octal_file_modes(group, kind, object);
    defaults::canonicalize_quantities(group, kind, object);
    canonical_secret_data(group, kind, object);
}

/// The live object restricted to what can be declared, in canonical form.
pub fn live(group: &str, kind: &str, body: &Value) -> Value {
    let mut object = declared_copy(body);
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
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    let mut applied: Value = serde_json::from_str(text).ok()?;
    strip_server_fields(&mut applied);
    Some(applied)
}

/// A copy of what can be declared, leaving out status, managedFields and the rest of the
/// server's metadata without copying them first (they are most of a live object).
fn declared_copy(body: &Value) -> Value {
    let Some(map) = body.as_object() else {
        return body.clone();
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        match key.as_str() {
            "status" | "apiVersion" | "kind" => {}
            "metadata" => {
                let mut meta = Map::new();
                if let Some(fields) = value.as_object() {
                    for (name, field) in fields {
                        if DECLARED_METADATA.contains(&name.as_str()) {
                            meta.insert(name.clone(), field.clone());
                        }
                    }
                }
                out.insert(key.clone(), Value::Object(meta));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
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

/// The GitOps tool writes its tracking label and annotation at every apply, over whatever the
/// manifest says: a Helm chart's `app.kubernetes.io/instance: <release>` becomes the app name
/// when that label is Argo CD's tracking label. Where the live object carries this app's
/// tracking value, a sync would write it again, so it is what the desired object holds.
pub fn expect_tracking(object: &mut Value, live: &Value, app: &str, tracking: &Tracking) {
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

pub fn insert_metadata_entry(object: &mut Value, map_name: &str, key: &str, value: &str) {
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
        entries.insert(key.to_string(), Value::String(value.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracking_label_value_is_the_one_the_tool_writes() {
        let tracking = Tracking::default();
        let git = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/instance": "web-release"}}});
        let live = json!({"metadata": {"name": "web", "labels": {"app.kubernetes.io/instance": "shop"},
            "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}}});
        let desired = desired(
            "apps",
            "Deployment",
            &git,
            "shop",
            &tracking,
            Some(&live),
            false,
        );
        assert_eq!(
            desired["metadata"]["labels"]["app.kubernetes.io/instance"],
            json!("shop")
        );
        assert_eq!(
            desired["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
            json!("shop:apps/Deployment:shop/web")
        );
        // Another app's value live: Git's own label stays as written.
        let other = json!({"metadata": {"labels": {"app.kubernetes.io/instance": "billing"}}});
        let desired = desired_of(&git, &other);
        assert_eq!(
            desired["metadata"]["labels"]["app.kubernetes.io/instance"],
            json!("web-release")
        );
    }

    fn desired_of(git: &Value, live: &Value) -> Value {
        desired(
            "apps",
            "Deployment",
            git,
            "shop",
            &Tracking::default(),
            Some(live),
            true,
        )
    }

    #[test]
    fn octal_modes_are_read_with_or_without_defaults() {
        let git = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"volumes": [{"name": "s", "secret": {"secretName": "s", "defaultMode": "0400"}}]}});
        for with_defaults in [false, true] {
            let out = desired(
                "",
                "Pod",
                &git,
                "shop",
                &Tracking::default(),
                None,
                with_defaults,
            );
            assert_eq!(
                out.pointer("/spec/volumes/0/secret/defaultMode"),
                Some(&json!(256))
            );
        }
    }

    #[test]
    fn defaults_see_the_api_version() {
        let git = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 4, "targetCPUUtilizationPercentage": 70,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}});
        let out = desired(
            "autoscaling",
            "HorizontalPodAutoscaler",
            &git,
            "shop",
            &Tracking::default(),
            None,
            true,
        );
        assert_eq!(out["spec"]["minReplicas"], json!(1));
        assert!(out["spec"].get("metrics").is_none(), "{out}");
        assert!(out.get("apiVersion").is_none());
    }
}
