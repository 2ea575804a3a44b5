//! The kustomization transformers other than patches: namespace, name prefix and suffix,
//! labels, annotations, replicas and images.

use super::fieldspec::{self, Create, FieldSpec};
use super::kustomization::{string_map, Kustomization};
use super::resource::{metadata_mut, Gvk, Res};
use super::Error;
use serde_json::{Map, Value};
use std::sync::OnceLock;

fn table(cell: &'static OnceLock<Vec<FieldSpec>>, text: &str) -> &'static [FieldSpec] {
    cell.get_or_init(|| fieldspec::parse_table(text))
}

/// kustomize's commonLabels configuration: the selectors, then the template labels.
fn common_labels() -> &'static [FieldSpec] {
    static CELL: OnceLock<Vec<FieldSpec>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut specs = fieldspec::parse_table(fieldspec::SELECTOR_LABELS);
        specs.extend(fieldspec::parse_table(fieldspec::TEMPLATE_LABELS));
        specs
    })
}

fn template_labels() -> &'static [FieldSpec] {
    static CELL: OnceLock<Vec<FieldSpec>> = OnceLock::new();
    table(&CELL, fieldspec::TEMPLATE_LABELS)
}

fn common_annotations() -> &'static [FieldSpec] {
    static CELL: OnceLock<Vec<FieldSpec>> = OnceLock::new();
    table(&CELL, fieldspec::COMMON_ANNOTATIONS)
}

/// Sets the namespace of namespaced objects, renames a v1 Namespace object to it, and
/// sets it on RoleBinding subjects named "default" (kustomize's default subject mode).
pub(super) fn namespace(resources: &mut [Res], namespace: &str) {
    if namespace.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        if r.obj.as_object().is_none_or(Map::is_empty) {
            continue;
        }
        r.store_prev_id();
        let gvk = r.gvk();
        let ns = Value::String(namespace.to_string());
        if !gvk.is_cluster_scoped() {
            metadata_mut(&mut r.obj).insert("namespace".into(), ns.clone());
        }
        if gvk.kind == "Namespace" && r.obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
        {
            metadata_mut(&mut r.obj).insert("name".into(), ns.clone());
        }
        if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
            if let Some(Value::Array(subjects)) = r.obj.get_mut("subjects") {
                for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
                    if subject.get("name").and_then(Value::as_str) == Some("default") {
                        subject.insert("namespace".into(), ns.clone());
                    }
                }
            }
        }
        let service_namespace = match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("apiregistration.k8s.io", "APIService") => Some((&["spec", "service"][..], true)),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Some((
                &["spec", "conversion", "webhook", "clientConfig", "service"][..],
                false,
            )),
            _ => None,
        };
        if let Some((path, create)) = service_namespace {
            set_nested_namespace(&mut r.obj, path, create, &ns);
        }
    }
}

/// Sets `namespace` in the map at `path`, creating the maps on the way when `create`.
fn set_nested_namespace(obj: &mut Value, path: &[&str], create: bool, ns: &Value) {
    let Some((first, rest)) = path.split_first() else {
        if let Some(map) = obj.as_object_mut() {
            map.insert("namespace".into(), ns.clone());
        }
        return;
    };
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if !map.get(*first).is_some_and(Value::is_object) {
        if !create {
            return;
        }
        map.insert(first.to_string(), Value::Object(Map::new()));
    }
    if let Some(child) = map.get_mut(*first) {
        set_nested_namespace(child, rest, create, ns);
    }
}

/// Kinds whose names kustomize never prefixes or suffixes.
fn skips_prefix(gvk: &Gvk) -> bool {
    gvk.kind == "CustomResourceDefinition"
        || gvk.kind == "Namespace"
        || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io")
}

pub(super) fn prefix_suffix(resources: &mut [Res], prefix: &str, suffix: &str) {
    for r in resources.iter_mut() {
        if skips_prefix(&r.gvk()) {
            continue;
        }
        r.prefixes.push(prefix.to_string());
        r.suffixes.push(suffix.to_string());
        if prefix.is_empty() && suffix.is_empty() {
            continue;
        }
        r.store_prev_id();
        let name = format!("{prefix}{}{suffix}", r.name());
        r.set_name(&name);
    }
}

/// Adds `pairs` to the string maps `specs` locate.
fn set_pairs(
    resources: &mut [Res],
    pairs: &[(String, String)],
    specs: &[FieldSpec],
) -> Result<(), String> {
    if pairs.is_empty() {
        return Ok(());
    }
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            fieldspec::apply(&mut r.obj, spec, Create::Map, &mut |node| {
                let map = super::resource::ensure_object(node);
                for (k, v) in pairs {
                    map.insert(k.clone(), Value::String(v.clone()));
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Appends `extra` to `specs`, skipping ones already there.
fn merge_specs(specs: &mut Vec<FieldSpec>, extra: &[FieldSpec]) {
    for spec in extra {
        if !specs.iter().any(|s| s.same_as(spec)) {
            specs.push(spec.clone());
        }
    }
}

/// `labels` entries, then `commonLabels`.
pub(super) fn labels(k: &Kustomization, resources: &mut [Res]) -> Result<(), Error> {
    for entry in k.list("labels")? {
        let map = entry
            .as_object()
            .ok_or_else(|| k.invalid("labels entries must be maps"))?;
        let mut specs = Vec::new();
        let mut include_selectors = false;
        let mut include_templates = false;
        let mut pairs = Vec::new();
        for (key, value) in map {
            match key.as_str() {
                "pairs" => {
                    pairs =
                        string_map(Some(value)).map_err(|m| k.invalid(format!("labels: {m}")))?
                }
                "includeSelectors" => include_selectors = value.as_bool().unwrap_or(false),
                "includeTemplates" => include_templates = value.as_bool().unwrap_or(false),
                "fields" => specs = read_field_specs(k, value)?,
                other => return Err(k.unsupported(format!("labels.{other}"))),
            }
        }
        if include_selectors {
            merge_specs(&mut specs, common_labels());
        } else {
            if include_templates {
                merge_specs(&mut specs, template_labels());
            }
            merge_specs(
                &mut specs,
                &[FieldSpec::new("metadata/labels", "", "", "", true)],
            );
        }
        set_pairs(resources, &pairs, &specs).map_err(|m| k.invalid(m))?;
    }
    let common = k.string_map("commonLabels")?;
    set_pairs(resources, &common, common_labels()).map_err(|m| k.invalid(m))
}

fn read_field_specs(k: &Kustomization, value: &Value) -> Result<Vec<FieldSpec>, Error> {
    let items = value
        .as_array()
        .ok_or_else(|| k.invalid("labels fields must be a list"))?;
    items
        .iter()
        .map(|item| {
            let get = |f: &str| item.get(f).and_then(Value::as_str).unwrap_or("");
            if get("path").is_empty() {
                return Err(k.invalid("a field spec needs a path"));
            }
            Ok(FieldSpec::new(
                get("path"),
                get("kind"),
                get("group"),
                get("version"),
                item.get("create").and_then(Value::as_bool).unwrap_or(false),
            ))
        })
        .collect()
}

pub(super) fn annotations(k: &Kustomization, resources: &mut [Res]) -> Result<(), Error> {
    let pairs = k.string_map("commonAnnotations")?;
    set_pairs(resources, &pairs, common_annotations()).map_err(|m| k.invalid(m))
}

/// `replicas`: sets spec/replicas on workloads whose current or previous name matches.
pub(super) fn replicas(k: &Kustomization, resources: &mut [Res]) -> Result<(), Error> {
    const KINDS: &[&str] = &[
        "Deployment",
        "ReplicationController",
        "ReplicaSet",
        "StatefulSet",
    ];
    for entry in k.list("replicas")? {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
        let count = entry
            .get("count")
            .filter(|c| c.is_i64() || c.is_u64())
            .cloned()
            .ok_or_else(|| k.invalid("replicas entries need a name and an integer count"))?;
        let mut found = false;
        for r in resources.iter_mut() {
            let names_match = r.name() == name || r.prev_ids.iter().any(|id| id.name == name);
            if !names_match || !KINDS.contains(&r.kind()) {
                continue;
            }
            found = true;
            let spec = super::resource::ensure_object(
                super::resource::ensure_object(&mut r.obj)
                    .entry("spec")
                    .or_insert(Value::Null),
            );
            spec.insert("replicas".into(), count.clone());
        }
        if !found {
            return Err(k.invalid(format!(
                "resource with name {name} does not match a config with the following GVK \
                 [Deployment ReplicationController ReplicaSet StatefulSet]"
            )));
        }
    }
    Ok(())
}

/// One `images` entry.
struct ImageRule {
    pattern: Option<regex::Regex>,
    new_name: String,
    new_tag: String,
    digest: String,
}

/// `images`: rewrites the image of every container and init container, wherever the
/// object holds them, as kustomize's image transformer does.
pub(super) fn images(k: &Kustomization, resources: &mut [Res]) -> Result<(), Error> {
    for entry in k.list("images")? {
        let map = entry
            .as_object()
            .ok_or_else(|| k.invalid("images entries must be maps"))?;
        let mut rule = ImageRule {
            pattern: None,
            new_name: String::new(),
            new_tag: String::new(),
            digest: String::new(),
        };
        let mut name = String::new();
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                _ => return Err(k.invalid(format!("images.{key} must be a string"))),
            };
            match key.as_str() {
                "name" => name = text,
                "newName" => rule.new_name = text,
                "newTag" => rule.new_tag = text,
                "digest" => rule.digest = text,
                other => return Err(k.unsupported(format!("images.{other}"))),
            }
        }
        // Kustomize compiles the name into a regular expression unescaped.
        rule.pattern = regex::Regex::new(&format!(
            "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
        ))
        .ok();
        for r in resources.iter_mut() {
            update_images(&mut r.obj, &rule);
        }
    }
    Ok(())
}

fn update_images(node: &mut Value, rule: &ImageRule) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "containers" || key == "initContainers" {
                    if let Value::Array(items) = value {
                        for item in items.iter_mut() {
                            if let Some(image) = item.get_mut("image") {
                                set_image(image, rule);
                            }
                        }
                    }
                }
                update_images(value, rule);
            }
        }
        Value::Array(items) => {
            for item in items {
                update_images(item, rule);
            }
        }
        _ => {}
    }
}

fn set_image(image: &mut Value, rule: &ImageRule) {
    let Some(current) = image.as_str() else {
        return;
    };
    if !rule.pattern.as_ref().is_some_and(|p| p.is_match(current)) {
        return;
    }
    let (mut name, mut tag, mut digest) = split_image(current);
    if !rule.new_name.is_empty() {
        name = rule.new_name.clone();
    }
    if !rule.new_tag.is_empty() && !rule.digest.is_empty() {
        tag = rule.new_tag.clone();
        digest = rule.digest.clone();
    } else if !rule.new_tag.is_empty() {
        tag = rule.new_tag.clone();
        digest.clear();
    } else if !rule.digest.is_empty() {
        tag.clear();
        digest = rule.digest.clone();
    }
    let mut result = name;
    if !tag.is_empty() {
        result.push(':');
        result.push_str(&tag);
    }
    if !digest.is_empty() {
        result.push('@');
        result.push_str(&digest);
    }
    *image = Value::String(result);
}

/// Splits an image reference into name, tag and digest; a registry port before the
/// first "/" is part of the name.
fn split_image(image: &str) -> (String, String, String) {
    let offset = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let search = &image[offset..];
    let at = search.find('@').map(|i| i + offset);
    let colon = search.find(':').map(|i| i + offset);
    match (colon, at) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (c, Some(d)) if c.is_none_or(|c| d < c) => (
            image[..d].to_string(),
            String::new(),
            image[d + 1..].to_string(),
        ),
        (Some(c), Some(d)) => (
            image[..c].to_string(),
            image[c + 1..d].to_string(),
            image[d + 1..].to_string(),
        ),
        (Some(c), None) => (
            image[..c].to_string(),
            image[c + 1..].to_string(),
            String::new(),
        ),
        (None, Some(_)) => (image.to_string(), String::new(), String::new()),
    }
}
