//! Building a kustomization: loading resources, bases and components recursively,
//! running generators and transformers in kustomize's order, then hashing generated
//! names, fixing name references and sorting.

use super::files::{join, parent, ESCAPE_MARK};
use super::generator::{self, Behavior};
use super::kustomization::{is_remote, Kustomization, FILE_NAMES};
use super::resource::{self, parse_yaml_stream, Res};
use super::timestamp::{self, ReadError};
use super::{nameref, patch, transform, Error, Files, Output};
use serde_json::Value;
use std::collections::BTreeSet;

/// File access for one build: records what was read and guards against escapes.
pub(super) struct Loader<'a> {
    pub files: &'a dyn Files,
    inputs: BTreeSet<String>,
    /// Directories being built, to refuse cycles.
    stack: Vec<String>,
}

impl Loader<'_> {
    /// Reads `path`, on behalf of `file` which referenced it as `reference`.
    fn read(&mut self, path: &str, file: &str, reference: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.files.read(path) {
            Ok(Some(bytes)) => {
                self.inputs.insert(path.to_string());
                Ok(Some(bytes))
            }
            Ok(None) => Ok(None),
            Err(message) if message.starts_with(ESCAPE_MARK) => Err(Error::Escape {
                file: file.to_string(),
                reference: reference.to_string(),
            }),
            Err(message) => Err(Error::Invalid {
                file: file.to_string(),
                message,
            }),
        }
    }

    /// Reads a file a kustomization names; like kustomize, only files in or below the
    /// kustomization's own directory may be read.
    pub fn read_local(&mut self, k: &Kustomization, reference: &str) -> Result<Vec<u8>, Error> {
        let dir = parent(&k.file);
        let path = join(dir, reference, &k.file)?;
        let inside = dir.is_empty()
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'));
        if !inside {
            return Err(k.invalid(format!(
                "security; file '{reference}' is not in or below '{dir}'"
            )));
        }
        self.read(&path, &k.file, reference)?
            .ok_or_else(|| k.invalid(format!("{reference}: no such file")))
    }

    /// The kustomization in `dir`, if there is one.
    fn kustomization(
        &mut self,
        dir: &str,
        referrer: &str,
        reference: &str,
    ) -> Result<Option<Kustomization>, Error> {
        let mut found: Option<(String, Vec<u8>)> = None;
        for name in FILE_NAMES {
            let path = join(dir, name, referrer)?;
            if let Some(bytes) = self.read(&path, referrer, reference)? {
                if found.is_some() {
                    return Err(Error::Invalid {
                        file: path,
                        message: format!(
                            "found multiple kustomization files in {}",
                            display_dir(dir)
                        ),
                    });
                }
                found = Some((path, bytes));
            }
        }
        found
            .map(|(path, bytes)| Kustomization::parse(&path, &bytes))
            .transpose()
    }
}

fn display_dir(dir: &str) -> &str {
    if dir.is_empty() {
        "."
    } else {
        dir
    }
}

pub(super) fn build(files: &dyn Files, dir: &str) -> Result<Output, Error> {
    let dir = join("", dir, dir)?;
    let mut loader = Loader {
        files,
        inputs: BTreeSet::new(),
        stack: Vec::new(),
    };
    let k = loader
        .kustomization(&dir, display_dir(&dir), &dir)?
        .ok_or_else(|| Error::Invalid {
            file: display_dir(&dir).to_string(),
            message: "unable to find one of 'kustomization.yaml', 'kustomization.yml' or \
                      'Kustomization' in directory"
                .into(),
        })?;
    if k.is_component {
        return Err(k.invalid("a Component cannot be built on its own"));
    }
    if let Some(options) = k.doc.get("sortOptions").filter(|v| !v.is_null()) {
        let legacy = options.get("order").and_then(Value::as_str) == Some("legacy")
            && options.get("legacySortOptions").is_none_or(Value::is_null);
        if !legacy {
            return Err(k.unsupported("sortOptions"));
        }
    }
    let mut resources = accumulate(&k, &mut loader)?;
    for r in resources.iter_mut().filter(|r| r.needs_hash) {
        let hash = generator::content_hash(&r.obj);
        r.store_prev_id();
        let name = format!("{}-{hash}", r.name());
        r.set_name(&name);
    }
    nameref::fix(&mut resources).map_err(|message| k.invalid(message))?;
    resource::sort_legacy(&mut resources);
    Ok(Output {
        objects: resources.into_iter().map(|r| r.obj).collect(),
        inputs: loader.inputs.into_iter().collect(),
    })
}

/// The resources of the kustomization `k`, fully transformed by it.
fn accumulate(k: &Kustomization, loader: &mut Loader) -> Result<Vec<Res>, Error> {
    let dir = parent(&k.file).to_string();
    if loader.stack.contains(&dir) {
        return Err(k.invalid(format!(
            "cycle detected: {} includes itself",
            display_dir(&dir)
        )));
    }
    loader.stack.push(dir);
    let mut resources = Vec::new();
    let result = accumulate_into(k, loader, &mut resources);
    loader.stack.pop();
    result.map(|()| resources)
}

/// Adds the resources, generated objects and components of `k` to `resources`, then runs
/// its transformers over all of them. A component shares its parent's list.
fn accumulate_into(
    k: &Kustomization,
    loader: &mut Loader,
    resources: &mut Vec<Res>,
) -> Result<(), Error> {
    let dir = parent(&k.file).to_string();
    let mut entries = k.strings("resources")?;
    entries.extend(k.strings("bases")?);
    for entry in entries {
        if is_remote(&entry) {
            return Err(k.unsupported(format!("remote resource {entry}")));
        }
        let path = join(&dir, &entry, &k.file)?;
        if loader.files.is_dir(&path) {
            let sub = loader
                .kustomization(&path, &k.file, &entry)?
                .ok_or_else(|| k.invalid(format!("{entry}: no kustomization file in directory")))?;
            if sub.is_component {
                return Err(k.invalid(format!(
                    "{entry}: a Component can only be listed in components"
                )));
            }
            for r in accumulate(&sub, loader)? {
                append(k, resources, r)?;
            }
        } else {
            let bytes = loader.read_local(k, &entry)?;
            for r in parse_resources(&bytes).map_err(|e| e.into_error(k, &entry))? {
                append(k, resources, r)?;
            }
        }
    }
    for generated in generator::generate(k, loader)? {
        absorb(k, resources, generated.res, generated.behavior)?;
    }
    for entry in k.strings("components")? {
        if is_remote(&entry) {
            return Err(k.unsupported(format!("remote component {entry}")));
        }
        let path = join(&dir, &entry, &k.file)?;
        let component = loader
            .kustomization(&path, &k.file, &entry)?
            .ok_or_else(|| k.invalid(format!("{entry}: no kustomization file in directory")))?;
        if !component.is_component {
            return Err(k.invalid(format!("{entry}: expected kind Component")));
        }
        if loader.stack.contains(&path) {
            return Err(k.invalid(format!("cycle detected: {entry} includes itself")));
        }
        loader.stack.push(path);
        let result = accumulate_into(&component, loader, resources);
        loader.stack.pop();
        result?;
    }
    transform_all(k, loader, resources)
}

/// Kustomize's builtin transformers, in its order.
fn transform_all(
    k: &Kustomization,
    loader: &mut Loader,
    resources: &mut Vec<Res>,
) -> Result<(), Error> {
    patch::patches_strategic_merge(k, loader, resources)?;
    patch::patches(k, loader, resources)?;
    transform::namespace(resources, &k.string("namespace")?);
    transform::prefix_suffix(
        resources,
        &k.string("namePrefix")?,
        &k.string("nameSuffix")?,
    );
    transform::labels(k, resources)?;
    transform::annotations(k, resources)?;
    patch::patches_json6902(k, loader, resources)?;
    transform::replicas(k, resources)?;
    transform::images(k, resources)
}

/// The objects of a manifest file; `List` kinds are expanded into their items.
fn parse_resources(bytes: &[u8]) -> Result<Vec<Res>, ReadError> {
    let mut docs = parse_yaml_stream(bytes).map_err(ReadError::Invalid)?;
    timestamp::resolve(bytes, &mut docs)?;
    let mut out = Vec::new();
    for doc in docs {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind.ends_with("List") {
            if let Some(Value::Array(items)) = doc.get("items") {
                for item in items {
                    out.push(checked(item.clone()).map_err(ReadError::Invalid)?);
                }
                continue;
            }
        }
        out.push(checked(doc).map_err(ReadError::Invalid)?);
    }
    Ok(out)
}

fn checked(obj: Value) -> Result<Res, String> {
    if !obj.is_object() {
        return Err("a resource must be a mapping".into());
    }
    if obj
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("missing kind in object".into());
    }
    if resource::meta_str(&obj, "name").is_empty() {
        return Err("missing metadata.name in object".into());
    }
    Ok(Res::new(obj))
}

/// Whether two resources have the same current identity.
fn same_id(a: &Res, b: &Res) -> bool {
    a.gvk() == b.gvk() && a.name() == b.name() && a.effective_namespace() == b.effective_namespace()
}

fn append(k: &Kustomization, resources: &mut Vec<Res>, r: Res) -> Result<(), Error> {
    if resources.iter().any(|existing| same_id(existing, &r)) {
        return Err(k.invalid(format!(
            "may not add resource with an already registered id: {} {}",
            r.kind(),
            r.name()
        )));
    }
    resources.push(r);
    Ok(())
}

/// Adds a generated object: a new one, or merged into or replacing an existing one.
fn absorb(
    k: &Kustomization,
    resources: &mut Vec<Res>,
    mut r: Res,
    behavior: Behavior,
) -> Result<(), Error> {
    let gvk = r.gvk();
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, old)| old.matches_any_id(&gvk, r.name(), r.namespace()))
        .map(|(i, _)| i)
        .collect();
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => {
            resources.push(r);
            Ok(())
        }
        ([], _) => Err(k.invalid(format!(
            "{} {} does not exist; cannot merge or replace",
            r.kind(),
            r.name()
        ))),
        ([_], Behavior::Create) => Err(k.invalid(format!(
            "{} {} exists; behavior must be merge or replace",
            r.kind(),
            r.name()
        ))),
        ([i], _) => {
            let old = &resources[*i];
            let merge_maps = |field: &str, old: &Value, new: &Value| -> Option<Value> {
                let mut out = old
                    .get(field)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (key, value) in new
                    .get(field)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    out.insert(key.clone(), value.clone());
                }
                (!out.is_empty()).then_some(Value::Object(out))
            };
            let old_meta = old.obj.get("metadata").cloned().unwrap_or(Value::Null);
            let new_meta = r.obj.get("metadata").cloned().unwrap_or(Value::Null);
            let labels = merge_maps("labels", &old_meta, &new_meta);
            let annotations = merge_maps("annotations", &old_meta, &new_meta);
            if behavior == Behavior::Merge {
                for field in ["data", "binaryData"] {
                    if let Some(merged) = merge_maps(field, &old.obj, &r.obj) {
                        resource::ensure_object(&mut r.obj).insert(field.into(), merged);
                    }
                }
            }
            let meta = resource::metadata_mut(&mut r.obj);
            for (field, value) in [("labels", labels), ("annotations", annotations)] {
                match value {
                    Some(v) => meta.insert(field.into(), v),
                    None => meta.remove(field),
                };
            }
            meta.insert("name".into(), Value::String(old.name().to_string()));
            if old.namespace().is_empty() {
                meta.remove("namespace");
            } else {
                meta.insert(
                    "namespace".into(),
                    Value::String(old.namespace().to_string()),
                );
            }
            r.prev_ids = old.prev_ids.clone();
            r.prefixes = old.prefixes.clone();
            r.suffixes = old.suffixes.clone();
            r.needs_hash = old.needs_hash;
            resources[*i] = r;
            Ok(())
        }
        _ => Err(k.invalid(format!(
            "found multiple objects that could accept merge of {} {}",
            r.kind(),
            r.name()
        ))),
    }
}
