//! Strategic merge patches as kustomize applies them: maps merge key by key, `null`
//! deletes, `$patch: delete|replace` directives, and lists of the built-in Kubernetes types
//! merge element by element on their merge keys (patch elements first, in patch order,
//! then the target's remaining ones), `metadata.finalizers` as a set. Lists without a merge
//! key, and every list of a kind kustomize has no schema for (custom resources), are replaced
//! whole.

use super::resource::Gvk;
use serde_json::{Map, Value};

/// Groups whose kinds kustomize knows the schema of.
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "extensions",
    "policy",
    "autoscaling",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "apiregistration.k8s.io",
    "coordination.k8s.io",
    "certificates.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "events.k8s.io",
];

/// Where a kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// The merge keys of the list at `path` (field names from the object root).
fn list_keys(gvk: &Gvk, path: &[String]) -> Option<&'static [&'static str]> {
    if !BUILTIN_GROUPS.contains(&gvk.group.as_str()) {
        return None;
    }
    let is = |expected: &[&str]| {
        path.len() == expected.len() && path.iter().zip(expected).all(|(a, b)| a == b)
    };
    if path.last().is_some_and(|f| f == "ownerReferences")
        && path.len() >= 2
        && path[path.len() - 2] == "metadata"
    {
        return Some(&["uid"]);
    }
    if gvk.kind == "Service" && is(&["spec", "ports"]) {
        return Some(&["port", "protocol"]);
    }
    let prefix = pod_spec_path(&gvk.kind)?;
    let rest = path.strip_prefix_of(prefix)?;
    let containers = |f: &String| {
        matches!(
            f.as_str(),
            "containers" | "initContainers" | "ephemeralContainers"
        )
    };
    match rest {
        [f] if containers(f) => Some(&["name"]),
        [f] => match f.as_str() {
            "volumes" | "imagePullSecrets" => Some(&["name"]),
            "hostAliases" => Some(&["ip"]),
            "topologySpreadConstraints" => Some(&["topologyKey", "whenUnsatisfiable"]),
            _ => None,
        },
        [c, f] if containers(c) => match f.as_str() {
            "ports" => Some(&["containerPort", "protocol"]),
            "env" => Some(&["name"]),
            "volumeMounts" => Some(&["mountPath"]),
            "volumeDevices" => Some(&["devicePath"]),
            _ => None,
        },
        _ => None,
    }
}

/// Lists of scalars with the merge strategy in the built-in types: `metadata.finalizers`,
/// merged as a set (patch items first, then the target's others).
fn merges_as_set(gvk: &Gvk, path: &[String]) -> bool {
    BUILTIN_GROUPS.contains(&gvk.group.as_str())
        && matches!(path, [meta, field] if meta == "metadata" && field == "finalizers")
}

trait StripPrefix {
    fn strip_prefix_of(&self, prefix: &[&str]) -> Option<&[String]>;
}

impl StripPrefix for [String] {
    fn strip_prefix_of(&self, prefix: &[&str]) -> Option<&[String]> {
        if self.len() < prefix.len() || self.iter().zip(prefix).any(|(a, b)| a != b) {
            return None;
        }
        Some(&self[prefix.len()..])
    }
}

/// Merges `patch` into `target` (an object of kind `gvk`); None when the patch deletes it.
pub(super) fn merge(target: Value, patch: &Value, gvk: &Gvk) -> Option<Value> {
    let mut path = Vec::new();
    merge_value(Some(target), patch, gvk, &mut path)
}

fn is_directive(key: &str) -> bool {
    key.starts_with('$')
}

fn merge_value(
    dest: Option<Value>,
    patch: &Value,
    gvk: &Gvk,
    path: &mut Vec<String>,
) -> Option<Value> {
    match patch {
        Value::Null => None,
        Value::Object(patch_map) => {
            match patch_map.get("$patch").and_then(Value::as_str) {
                Some("delete") => return None,
                Some("replace") => {
                    return merge_value(None, &without_directive(patch_map), gvk, path);
                }
                _ => {}
            }
            let mut out = match dest {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            for (key, value) in patch_map {
                if is_directive(key) {
                    continue;
                }
                let existing = out.get(key).cloned();
                path.push(key.clone());
                let merged = merge_value(existing, value, gvk, path);
                path.pop();
                match merged {
                    Some(v) => {
                        out.insert(key.clone(), v);
                    }
                    None => {
                        out.remove(key);
                    }
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(patch_items) if merges_as_set(gvk, path) => {
            let mut out = patch_items.clone();
            if let Some(Value::Array(dest_items)) = dest {
                out.extend(dest_items.into_iter().filter(|d| !patch_items.contains(d)));
            }
            Some(Value::Array(out))
        }
        Value::Array(patch_items) => {
            let keys = list_keys(gvk, path);
            match (keys, dest) {
                (Some(keys), Some(Value::Array(dest_items)))
                    if patch_items.iter().all(Value::is_object) =>
                {
                    Some(Value::Array(merge_list(
                        dest_items,
                        patch_items,
                        keys,
                        gvk,
                        path,
                    )))
                }
                (Some(keys), _) if patch_items.iter().all(Value::is_object) => Some(Value::Array(
                    merge_list(Vec::new(), patch_items, keys, gvk, path),
                )),
                _ => Some(patch.clone()),
            }
        }
        scalar => Some(scalar.clone()),
    }
}

fn without_directive(map: &Map<String, Value>) -> Value {
    Value::Object(
        map.iter()
            .filter(|(k, _)| k.as_str() != "$patch")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn key_values(item: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| match item.get(*k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
        .collect()
}

fn merge_list(
    mut dest: Vec<Value>,
    patch: &[Value],
    keys: &[&str],
    gvk: &Gvk,
    path: &mut Vec<String>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for item in patch {
        let wanted = key_values(item, keys);
        let existing = dest
            .iter()
            .position(|d| key_values(d, keys) == wanted)
            .map(|i| dest.remove(i));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            continue;
        }
        if let Some(merged) = merge_value(existing, item, gvk, path) {
            out.push(merged);
        }
    }
    out.extend(dest);
    out
}
