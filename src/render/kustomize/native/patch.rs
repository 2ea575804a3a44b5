//! Patches: `patches` (strategic merge or JSON 6902, with target selectors), and the
//! legacy `patchesStrategicMerge` and `patchesJson6902`.

use super::kustomization::Kustomization;
use super::merge;
use super::resource::{effective, parse_yaml_stream, Gvk, Res};
use super::target::Loader;
use super::timestamp;
use super::Error;
use serde_json::Value;

/// A `target` selector; each field is a regular expression anchored at both ends.
#[derive(Default)]
struct Selector {
    group: Option<regex::Regex>,
    version: Option<regex::Regex>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
    label_selector: Vec<Requirement>,
    annotation_selector: Vec<Requirement>,
}

impl Selector {
    fn parse(k: &Kustomization, value: &Value) -> Result<Selector, Error> {
        let map = value
            .as_object()
            .ok_or_else(|| k.invalid("a patch target must be a map"))?;
        let mut selector = Selector::default();
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            if text.is_empty() {
                continue;
            }
            let regex = || {
                regex::Regex::new(&format!("^(?:{text})$"))
                    .map_err(|e| k.invalid(format!("target {key}: {e}")))
            };
            match key.as_str() {
                "group" => selector.group = Some(regex()?),
                "version" => selector.version = Some(regex()?),
                "kind" => selector.kind = Some(regex()?),
                "name" => selector.name = Some(regex()?),
                "namespace" => selector.namespace = Some(regex()?),
                "labelSelector" => {
                    selector.label_selector = parse_requirements(&text).map_err(|m| k.invalid(m))?
                }
                "annotationSelector" => {
                    selector.annotation_selector =
                        parse_requirements(&text).map_err(|m| k.invalid(m))?
                }
                other => return Err(k.invalid(format!("unknown patch target field {other}"))),
            }
        }
        Ok(selector)
    }

    fn matches(&self, r: &Res) -> bool {
        let gvk = r.gvk();
        let cluster = gvk.is_cluster_scoped();
        let effective_ns = |ns: &str| -> String {
            if cluster {
                "_non_namespaceable_".to_string()
            } else {
                effective(ns).to_string()
            }
        };
        if let Some(re) = &self.namespace {
            let org = r
                .prev_ids
                .first()
                .map_or_else(|| effective_ns(r.namespace()), |id| id.namespace.clone());
            if !re.is_match(&org) && !re.is_match(&effective_ns(r.namespace())) {
                return false;
            }
        }
        if let Some(re) = &self.name {
            if !re.is_match(r.org_name()) && !re.is_match(r.name()) {
                return false;
            }
        }
        let gvk_ok = |re: &Option<regex::Regex>, value: &str| {
            re.as_ref().is_none_or(|re| re.is_match(value))
        };
        if !gvk_ok(&self.group, &gvk.group)
            || !gvk_ok(&self.version, &gvk.version)
            || !gvk_ok(&self.kind, &gvk.kind)
        {
            return false;
        }
        let empty = serde_json::Map::new();
        requirements_match(&self.label_selector, r.labels().unwrap_or(&empty))
            && requirements_match(&self.annotation_selector, r.annotations().unwrap_or(&empty))
    }
}

/// One requirement of a Kubernetes label selector.
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn parse_requirements(text: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    let set = |s: &str| -> Result<Vec<String>, String> {
        let inner = s
            .trim()
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("invalid selector set {s}"))?;
        Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    let mut out = Vec::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if let Some((key, value)) = part.split_once("!=") {
            out.push(Requirement::NotEquals(
                key.trim().into(),
                value.trim().into(),
            ));
        } else if let Some((key, value)) = part.split_once("==") {
            out.push(Requirement::Equals(key.trim().into(), value.trim().into()));
        } else if let Some((key, value)) = part.split_once('=') {
            out.push(Requirement::Equals(key.trim().into(), value.trim().into()));
        } else if let Some((key, values)) = part.split_once(" notin ") {
            out.push(Requirement::NotIn(key.trim().into(), set(values)?));
        } else if let Some((key, values)) = part.split_once(" in ") {
            out.push(Requirement::In(key.trim().into(), set(values)?));
        } else if let Some(key) = part.strip_prefix('!') {
            out.push(Requirement::NotExists(key.trim().into()));
        } else {
            out.push(Requirement::Exists(part.to_string()));
        }
    }
    Ok(out)
}

fn requirements_match(
    requirements: &[Requirement],
    labels: &serde_json::Map<String, Value>,
) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    requirements.iter().all(|req| match req {
        Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
        Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Requirement::Exists(k) => labels.contains_key(k),
        Requirement::NotExists(k) => !labels.contains_key(k),
    })
}

/// A strategic merge directive the native merge does not implement (only `$patch` is):
/// such a patch goes to the real engine rather than merging differently.
fn unsupported_directive(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.starts_with('$') && key != "$patch" {
                Some(key.split('/').next().unwrap_or(key).to_string())
            } else {
                unsupported_directive(value)
            }
        }),
        Value::Array(items) => items.iter().find_map(unsupported_directive),
        _ => None,
    }
}

/// A loaded patch.
enum Patch {
    Strategic(Vec<Value>),
    /// JSON 6902 operations, applied one by one.
    Json(Vec<Value>),
}

fn decode_patch(k: &Kustomization, text: &[u8], origin: &str) -> Result<Patch, Error> {
    let docs = parse_yaml_stream(text).map_err(|m| k.invalid(format!("{origin}: {m}")))?;
    match docs.as_slice() {
        [Value::Array(ops)] => {
            for op in ops {
                serde_json::from_value::<json_patch::Patch>(Value::Array(vec![op.clone()]))
                    .map_err(|e| k.invalid(format!("{origin}: invalid JSON patch: {e}")))?;
            }
            Ok(Patch::Json(ops.clone()))
        }
        [] => Err(k.invalid(format!("{origin}: empty patch"))),
        _ if docs.iter().all(Value::is_object) => {
            // Kustomize reads a strategic merge patch as it reads objects, while it turns
            // JSON 6902 operations into JSON with timestamps left as written.
            let mut docs = docs;
            timestamp::resolve(text, &mut docs).map_err(|e| e.into_error(k, origin))?;
            if let Some(directive) = docs.iter().find_map(unsupported_directive) {
                return Err(k.unsupported(format!("{directive} (strategic merge directive)")));
            }
            Ok(Patch::Strategic(docs))
        }
        _ => Err(k.invalid(format!("{origin}: unable to parse SM or JSON patch"))),
    }
}

/// Options of a `patches` entry.
#[derive(Default, Clone, Copy)]
struct PatchOptions {
    allow_name_change: bool,
    allow_kind_change: bool,
}

/// Applies a strategic merge patch to one resource; false when it deleted the resource.
fn apply_strategic(r: &mut Res, patch: &Value, options: PatchOptions) -> bool {
    let (name, namespace, kind) = (
        r.name().to_string(),
        r.namespace().to_string(),
        r.kind().to_string(),
    );
    if options.allow_name_change || options.allow_kind_change {
        r.store_prev_id();
    }
    let mut patch = patch.clone();
    if let (Some(map), Some(api_version)) = (patch.as_object_mut(), r.obj.get("apiVersion")) {
        map.insert("apiVersion".into(), api_version.clone());
    }
    let gvk = r.gvk();
    let Some(merged) = merge::merge(std::mem::take(&mut r.obj), &patch, &gvk) else {
        return false;
    };
    if merged.as_object().is_none_or(serde_json::Map::is_empty) {
        return false;
    }
    r.obj = merged;
    if !options.allow_kind_change {
        if let Some(map) = r.obj.as_object_mut() {
            map.insert("kind".into(), Value::String(kind));
        }
    }
    if !options.allow_name_change {
        r.set_name(&name);
    }
    let metadata = super::resource::metadata_mut(&mut r.obj);
    if namespace.is_empty() {
        metadata.remove("namespace");
    } else {
        metadata.insert("namespace".into(), Value::String(namespace));
    }
    true
}

/// The one resource a target-less strategic merge patch applies to: the one whose current
/// or previous identity is the patch's.
fn patch_target(k: &Kustomization, resources: &[Res], patch: &Value) -> Result<usize, Error> {
    let gvk = Gvk::of(patch);
    let name = super::resource::meta_str(patch, "name");
    let namespace = super::resource::meta_str(patch, "namespace");
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.matches_any_id(&gvk, name, namespace))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(k.invalid(format!(
            "no resource matches strategic merge patch \"{} {name}\"",
            gvk.kind
        ))),
        _ => Err(k.invalid(format!(
            "multiple resources match strategic merge patch \"{} {name}\"",
            gvk.kind
        ))),
    }
}

fn apply_to_selected(
    k: &Kustomization,
    resources: &mut Vec<Res>,
    selected: &[bool],
    patch: &Patch,
    options: PatchOptions,
    origin: &str,
) -> Result<(), Error> {
    let mut keep = Vec::with_capacity(resources.len());
    for (r, &chosen) in resources.iter_mut().zip(selected) {
        let mut alive = true;
        if chosen {
            match patch {
                Patch::Strategic(docs) => {
                    for doc in docs {
                        if alive {
                            alive = apply_strategic(r, doc, options);
                        }
                    }
                }
                Patch::Json(ops) => {
                    apply_json(&mut r.obj, ops).map_err(|e| {
                        k.invalid(format!(
                            "{origin}: applying JSON patch to {} {}: {e}",
                            r.kind(),
                            r.name()
                        ))
                    })?;
                }
            }
        }
        keep.push(alive);
    }
    let mut flags = keep.into_iter();
    resources.retain(|_| flags.next().unwrap_or(true));
    Ok(())
}

/// Applies JSON 6902 operations as kustomize does: `add` creates missing parent maps,
/// and `replace` of a missing field adds it.
fn apply_json(obj: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let mut op = op.clone();
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let tokens: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        if kind == "add" || kind == "replace" {
            let exists = obj.pointer(&path).is_some();
            if kind == "replace" && !exists {
                if let Some(map) = op.as_object_mut() {
                    map.insert("op".into(), Value::String("add".into()));
                }
            }
            if !exists {
                ensure_parents(obj, &tokens);
            }
        }
        let single: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![op])).map_err(|e| e.to_string())?;
        json_patch::patch(obj, &single).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn ensure_parents(obj: &mut Value, tokens: &[String]) {
    let Some((_, parents)) = tokens.split_last() else {
        return;
    };
    let mut node = obj;
    for token in parents {
        node = match node {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
}

/// Applies the strategic merge patches of a target-less entry, each to its own resource.
fn apply_untargeted(
    k: &Kustomization,
    resources: &mut Vec<Res>,
    docs: &[Value],
    options: PatchOptions,
) -> Result<(), Error> {
    for doc in docs {
        let index = patch_target(k, resources, doc)?;
        if !apply_strategic(&mut resources[index], doc, options) {
            resources.remove(index);
        }
    }
    Ok(())
}

pub(super) fn patches_strategic_merge(
    k: &Kustomization,
    loader: &mut Loader,
    resources: &mut Vec<Res>,
) -> Result<(), Error> {
    for entry in k.list("patchesStrategicMerge")? {
        let text = entry
            .as_str()
            .ok_or_else(|| k.invalid("patchesStrategicMerge entries must be strings"))?;
        // An entry is either an inline patch or the path of a file holding one.
        let inline = parse_yaml_stream(text.as_bytes())
            .ok()
            .filter(|docs| !docs.is_empty() && docs.iter().all(Value::is_object));
        let docs = match inline {
            Some(mut docs) => {
                timestamp::resolve(text.as_bytes(), &mut docs)
                    .map_err(|e| e.into_error(k, "inline patch"))?;
                docs
            }
            None => {
                let bytes = loader.read_local(k, text)?;
                match decode_patch(k, &bytes, text)? {
                    Patch::Strategic(docs) => docs,
                    Patch::Json(_) => {
                        return Err(k.invalid(format!("{text}: not a strategic merge patch")));
                    }
                }
            }
        };
        apply_untargeted(k, resources, &docs, PatchOptions::default())?;
    }
    Ok(())
}

pub(super) fn patches(
    k: &Kustomization,
    loader: &mut Loader,
    resources: &mut Vec<Res>,
) -> Result<(), Error> {
    for entry in k.list("patches")? {
        let map = entry
            .as_object()
            .ok_or_else(|| k.invalid("patches entries must be maps"))?;
        let mut options = PatchOptions::default();
        let mut inline = None;
        let mut path = None;
        let mut target = None;
        for (key, value) in map {
            match key.as_str() {
                "patch" => inline = value.as_str(),
                "path" => path = value.as_str(),
                "target" => target = Some(Selector::parse(k, value)?),
                "options" => {
                    for (option, flag) in value.as_object().into_iter().flatten() {
                        let on = flag.as_bool().unwrap_or(false);
                        match option.as_str() {
                            "allowNameChange" => options.allow_name_change = on,
                            "allowKindChange" => options.allow_kind_change = on,
                            other => return Err(k.unsupported(format!("patches.options.{other}"))),
                        }
                    }
                }
                other => return Err(k.invalid(format!("unknown patches field {other}"))),
            }
        }
        let (bytes, origin) = match (inline, path) {
            (Some(text), None) => (text.as_bytes().to_vec(), "inline patch".to_string()),
            (None, Some(path)) => (loader.read_local(k, path)?, path.to_string()),
            (Some(_), Some(_)) => {
                return Err(k.invalid("patch and path can't be set at the same time"));
            }
            (None, None) => return Err(k.invalid("must specify one of patch and path")),
        };
        let patch = decode_patch(k, &bytes, &origin)?;
        match (target, &patch) {
            (Some(selector), _) => {
                let selected: Vec<bool> = resources.iter().map(|r| selector.matches(r)).collect();
                apply_to_selected(k, resources, &selected, &patch, options, &origin)?;
            }
            (None, Patch::Strategic(docs)) => apply_untargeted(k, resources, docs, options)?,
            (None, Patch::Json(_)) => {
                return Err(k.invalid(format!("must specify a target for JSON patch {origin}")));
            }
        }
    }
    Ok(())
}

pub(super) fn patches_json6902(
    k: &Kustomization,
    loader: &mut Loader,
    resources: &mut Vec<Res>,
) -> Result<(), Error> {
    for entry in k.list("patchesJson6902")? {
        let target = entry
            .get("target")
            .ok_or_else(|| k.invalid("patchesJson6902 entries need a target"))?;
        let selector = Selector::parse(k, target)?;
        let (bytes, origin) = match (
            entry.get("patch").and_then(Value::as_str),
            entry.get("path").and_then(Value::as_str),
        ) {
            (Some(text), None) => (text.as_bytes().to_vec(), "inline patch".to_string()),
            (None, Some(path)) => (loader.read_local(k, path)?, path.to_string()),
            _ => return Err(k.invalid("patchesJson6902 entries need one of patch and path")),
        };
        let patch = match decode_patch(k, &bytes, &origin)? {
            Patch::Json(ops) => Patch::Json(ops),
            Patch::Strategic(_) => return Err(k.invalid(format!("{origin}: not a JSON patch"))),
        };
        let selected: Vec<bool> = resources.iter().map(|r| selector.matches(r)).collect();
        apply_to_selected(
            k,
            resources,
            &selected,
            &patch,
            PatchOptions::default(),
            &origin,
        )?;
    }
    Ok(())
}
