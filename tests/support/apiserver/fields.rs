//! Field ownership as the real server records it in `metadata.managedFields` (`FieldsV1`,
//! sigs.k8s.io/structured-merge-diff), and the server-side apply merge built on it.
//!
//! The schema knowledge is the small part of the OpenAPI schema that shapes field sets:
//! which lists are associative and by which keys (`containers` by `name`, container `ports` by
//! `containerPort` and `protocol`, …), which lists are sets (`finalizers`), which maps and
//! structs are atomic (label selectors, Service `selector`), and which structs exist in a
//! zero-valued Go object (an `Update` of a new object marks with `"."` only what was added).
//! Lists not named here are atomic, as in the real schema; custom resources are schemaless:
//! all their lists are atomic.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::resources::ResourceType;

/// How a list merges and is tracked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListKind {
    /// `x-kubernetes-list-type: map` with these keys.
    Keyed(&'static [&'static str]),
    /// `x-kubernetes-list-type: set`.
    Set,
    /// Replaced and owned as a whole.
    Atomic,
}

/// Which operation a field set is computed for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operation {
    /// The object as a whole after an `Update` (create, PUT): new nodes carry `"."`.
    Update,
    /// An apply configuration: only list and set items carry `"."`.
    Apply,
}

/// A field path: path elements as in `FieldsV1` keys (`f:spec`, `k:{"name":"web"}`, `v:"x"`).
pub type FieldPath = Vec<String>;

/// Schema facts for one resource type; `names` in the methods below are field names from the
/// object root, with `[]` standing for "an item of the list".
pub struct Schema<'a> {
    resource: &'a ResourceType,
}

const POD_CONTAINERS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

impl<'a> Schema<'a> {
    pub fn new(resource: &'a ResourceType) -> Schema<'a> {
        Schema { resource }
    }

    fn builtin(&self) -> bool {
        !self.resource.custom
    }

    fn list_kind(&self, names: &[&str]) -> ListKind {
        match names {
            ["metadata", "finalizers"] => return ListKind::Set,
            ["metadata", "ownerReferences"] => return ListKind::Keyed(&["uid"]),
            _ => {}
        }
        if !self.builtin() {
            return ListKind::Atomic;
        }
        let last = names.last().copied().unwrap_or("");
        let parent = if names.len() >= 2 {
            names[names.len() - 2]
        } else {
            ""
        };
        let grandparent = if names.len() >= 3 {
            names[names.len() - 3]
        } else {
            ""
        };
        let in_container = parent == "[]" && POD_CONTAINERS.contains(&grandparent);
        match last {
            _ if POD_CONTAINERS.contains(&last) && parent == "spec" => ListKind::Keyed(&["name"]),
            "ports" if in_container => ListKind::Keyed(&["containerPort", "protocol"]),
            "ports" if self.resource.kind == "Service" && names == ["spec", "ports"] => {
                ListKind::Keyed(&["port", "protocol"])
            }
            "env" | "resizePolicy" if in_container => ListKind::Keyed(if last == "env" {
                &["name"]
            } else {
                &["resourceName"]
            }),
            "volumeMounts" if in_container => ListKind::Keyed(&["mountPath"]),
            "volumeDevices" if in_container => ListKind::Keyed(&["devicePath"]),
            "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"
                if parent == "spec" =>
            {
                ListKind::Keyed(&["name"])
            }
            "hostAliases" if parent == "spec" => ListKind::Keyed(&["ip"]),
            "topologySpreadConstraints" if parent == "spec" => {
                ListKind::Keyed(&["topologyKey", "whenUnsatisfiable"])
            }
            "conditions" if names.first() == Some(&"status") => ListKind::Keyed(&["type"]),
            _ => ListKind::Atomic,
        }
    }

    /// Maps and structs owned as a whole: every `LabelSelector`, Service `spec.selector`,
    /// RBAC `roleRef`.
    fn atomic_object(&self, names: &[&str]) -> bool {
        if !self.builtin() {
            return false;
        }
        matches!(
            names.last().copied(),
            Some("selector" | "podSelector" | "namespaceSelector" | "labelSelector")
        ) || names == ["roleRef"]
    }

    /// Structs that a zero-valued Go object already has (non-pointer fields): an `Update`
    /// that fills them does not own the struct itself, only what is inside.
    fn in_zero_object(&self, names: &[&str]) -> bool {
        if matches!(names, ["metadata"] | ["spec"] | ["status"]) {
            return self.builtin() || names == ["metadata"];
        }
        if !self.builtin() {
            return false;
        }
        // `containers` has no omitempty: a zero PodSpec already has `"containers": null`.
        if let [parent @ .., "containers"] = names {
            return self.in_zero_object(parent) && parent.last() == Some(&"spec");
        }
        let template = |prefix: &[&str]| -> bool {
            let n = prefix.len();
            names.len() > n
                && names[..n] == *prefix
                && matches!(
                    &names[n..],
                    ["template"] | ["template", "metadata"] | ["template", "spec"]
                )
        };
        match self.resource.kind.as_str() {
            "Deployment" => template(&["spec"]) || names == ["spec", "strategy"],
            "StatefulSet" | "DaemonSet" => {
                template(&["spec"]) || names == ["spec", "updateStrategy"]
            }
            "ReplicaSet" | "Job" => template(&["spec"]),
            "CronJob" => {
                matches!(
                    names,
                    ["spec", "jobTemplate"] | ["spec", "jobTemplate", "metadata" | "spec"]
                ) || template(&["spec", "jobTemplate", "spec"])
            }
            "HorizontalPodAutoscaler" => names == ["spec", "scaleTargetRef"],
            _ => false,
        }
    }

    /// The value of the key fields of a list item, e.g. `{"containerPort":80,"protocol":"TCP"}`.
    /// A missing `protocol` counts as its default, as the real schema's key defaults do.
    fn item_key(&self, keys: &[&str], item: &Value) -> Option<String> {
        let object = item.as_object()?;
        let mut key = BTreeMap::new();
        for name in keys {
            match object.get(*name) {
                Some(v) if !v.is_null() => {
                    key.insert(name.to_string(), v.clone());
                }
                _ if *name == "protocol" => {
                    key.insert(name.to_string(), Value::String("TCP".to_string()));
                }
                _ => {}
            }
        }
        if key.is_empty() {
            return None;
        }
        let map: Map<String, Value> = key.into_iter().collect();
        serde_json::to_string(&Value::Object(map)).ok()
    }

    /// The `FieldsV1` of the fields an `Update` or an `Apply` of `obj` owns: all fields except
    /// `apiVersion`, `kind`, server-set metadata and (for the main resource) `status`.
    pub fn field_set(&self, obj: &Value, operation: Operation, status_only: bool) -> Value {
        let mut root = BTreeMap::new();
        let Some(object) = obj.as_object() else {
            return Value::Object(Map::new());
        };
        for (name, value) in object {
            let wanted = if status_only {
                name == "status"
            } else {
                !matches!(name.as_str(), "apiVersion" | "kind" | "status")
            };
            if !wanted {
                continue;
            }
            let value = if name == "metadata" {
                strip_server_metadata(value)
            } else {
                value.clone()
            };
            if name == "metadata" && value.as_object().is_none_or(Map::is_empty) {
                continue;
            }
            if let Some(node) = self.node(&mut vec![name.as_str()], &value, operation, false) {
                root.insert(format!("f:{name}"), node);
            }
        }
        sorted(root)
    }

    /// The set node of one value, `None` for nulls and metadata left empty.
    fn node<'v>(
        &self,
        names: &mut Vec<&'v str>,
        value: &'v Value,
        operation: Operation,
        inside_new: bool,
    ) -> Option<Value> {
        let is_new = inside_new || !self.in_zero_object(names);
        match value {
            Value::Null => None,
            Value::Object(map) if !map.is_empty() && !self.atomic_object(names) => {
                let mut children = BTreeMap::new();
                for (name, child) in map {
                    names.push(name.as_str());
                    let node = self.node(
                        names,
                        child,
                        operation,
                        is_new && operation == Operation::Update,
                    );
                    names.pop();
                    if let Some(node) = node {
                        children.insert(format!("f:{name}"), node);
                    }
                }
                if children.is_empty() && names.as_slice() == ["metadata"] {
                    return None;
                }
                if operation == Operation::Update && is_new && !children.is_empty() {
                    children.insert(".".to_string(), empty());
                }
                Some(sorted(children))
            }
            Value::Array(items) if !items.is_empty() => match self.list_kind(names) {
                ListKind::Atomic => Some(empty()),
                ListKind::Set => {
                    let mut children = BTreeMap::new();
                    for item in items {
                        let encoded = serde_json::to_string(item).unwrap_or_default();
                        children.insert(format!("v:{encoded}"), empty());
                    }
                    if operation == Operation::Update && is_new {
                        children.insert(".".to_string(), empty());
                    }
                    Some(sorted(children))
                }
                ListKind::Keyed(keys) => {
                    let mut children = BTreeMap::new();
                    names.push("[]");
                    for item in items {
                        let Some(key) = self.item_key(keys, item) else {
                            continue;
                        };
                        let mut node = self
                            .node(names, item, operation, operation == Operation::Update)
                            .unwrap_or_else(empty);
                        if let Some(map) = node.as_object_mut() {
                            map.insert(".".to_string(), empty());
                            node = sorted(std::mem::take(map).into_iter().collect());
                        }
                        children.insert(format!("k:{key}"), node);
                    }
                    names.pop();
                    if operation == Operation::Update && is_new {
                        children.insert(".".to_string(), empty());
                    }
                    Some(sorted(children))
                }
            },
            _ => Some(empty()),
        }
    }

    /// Merges an apply configuration into the live object: maps field by field, associative
    /// lists item by item (by key), sets by value, everything else replaced.
    pub fn merge(&self, live: &mut Value, applied: &Value) {
        self.merge_at(&mut Vec::new(), live, applied);
    }

    fn merge_at(&self, names: &mut Vec<String>, live: &mut Value, applied: &Value) {
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        match (live, applied) {
            (Value::Object(live_map), Value::Object(applied_map))
                if !self.atomic_object(&name_refs) =>
            {
                for (name, value) in applied_map {
                    if value.is_null() {
                        live_map.shift_remove(name);
                        continue;
                    }
                    match live_map.get_mut(name) {
                        Some(existing) => {
                            names.push(name.clone());
                            self.merge_at(names, existing, value);
                            names.pop();
                        }
                        None => {
                            live_map.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
            (Value::Array(live_items), Value::Array(applied_items)) => {
                match self.list_kind(&name_refs) {
                    ListKind::Keyed(keys) => {
                        names.push("[]".to_string());
                        for item in applied_items {
                            let key = self.item_key(keys, item);
                            let position = key.as_ref().and_then(|key| {
                                live_items
                                    .iter()
                                    .position(|l| self.item_key(keys, l).as_ref() == Some(key))
                            });
                            match position {
                                Some(i) => self.merge_at(names, &mut live_items[i], item),
                                None => live_items.push(item.clone()),
                            }
                        }
                        names.pop();
                    }
                    ListKind::Set => {
                        for item in applied_items {
                            if !live_items.contains(item) {
                                live_items.push(item.clone());
                            }
                        }
                    }
                    ListKind::Atomic => *live_items = applied_items.clone(),
                }
            }
            (live, applied) => *live = applied.clone(),
        }
    }

    /// Removes the field at `path` from `obj` (a field, a list item by key, a set element).
    pub fn remove(&self, obj: &mut Value, path: &[String]) {
        let Some((last, parent_path)) = path.split_last() else {
            return;
        };
        let Some(parent) = self.lookup_mut(obj, parent_path) else {
            return;
        };
        match parent {
            Value::Object(map) => {
                if let Some(name) = last.strip_prefix("f:") {
                    map.shift_remove(name);
                }
            }
            Value::Array(items) => {
                let names = names_of(parent_path);
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let kind = self.list_kind(&refs);
                items.retain(|item| !self.element_matches(kind, last, item));
            }
            _ => {}
        }
    }

    fn element_matches(&self, kind: ListKind, element: &str, item: &Value) -> bool {
        match kind {
            ListKind::Keyed(keys) => element
                .strip_prefix("k:")
                .is_some_and(|key| self.item_key(keys, item).as_deref() == Some(key)),
            ListKind::Set => element
                .strip_prefix("v:")
                .is_some_and(|v| serde_json::to_string(item).ok().as_deref() == Some(v)),
            ListKind::Atomic => false,
        }
    }

    /// The value at a field path.
    pub fn lookup<'v>(&self, obj: &'v Value, path: &[String]) -> Option<&'v Value> {
        let mut current = obj;
        for (i, element) in path.iter().enumerate() {
            current = match current {
                Value::Object(map) => map.get(element.strip_prefix("f:")?)?,
                Value::Array(items) => {
                    let names = names_of(&path[..i]);
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let kind = self.list_kind(&refs);
                    items
                        .iter()
                        .find(|item| self.element_matches(kind, element, item))?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    fn lookup_mut<'v>(&self, obj: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
        let mut current = obj;
        for (i, element) in path.iter().enumerate() {
            current = match current {
                Value::Object(map) => map.get_mut(element.strip_prefix("f:")?)?,
                Value::Array(items) => {
                    let names = names_of(&path[..i]);
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let kind = self.list_kind(&refs);
                    items
                        .iter_mut()
                        .find(|item| self.element_matches(kind, element, item))?
                }
                _ => return None,
            };
        }
        Some(current)
    }
}

/// The field names along a path, `[]` for list elements: what the schema rules look at.
fn names_of(path: &[String]) -> Vec<String> {
    path.iter()
        .map(|element| match element.strip_prefix("f:") {
            Some(name) => name.to_string(),
            None => "[]".to_string(),
        })
        .collect()
}

/// Metadata minus what the server sets and field managers never own.
fn strip_server_metadata(metadata: &Value) -> Value {
    let mut metadata = metadata.clone();
    if let Some(map) = metadata.as_object_mut() {
        for name in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            map.shift_remove(name);
        }
    }
    metadata
}

fn empty() -> Value {
    Value::Object(Map::new())
}

/// Builds a JSON object with keys in `FieldsV1` order (`.` then `f:`, `k:`, `v:`), which is
/// byte order of the keys.
fn sorted(children: BTreeMap<String, Value>) -> Value {
    Value::Object(children.into_iter().collect())
}

/// The paths a field set owns: leaves, and nodes marked with `"."`.
pub fn flatten(set: &Value) -> BTreeSet<FieldPath> {
    let mut paths = BTreeSet::new();
    flatten_into(set, &mut Vec::new(), &mut paths);
    paths
}

fn flatten_into(set: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(map) = set.as_object() else {
        return;
    };
    if (map.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (element, child) in map {
        if element == "." {
            continue;
        }
        prefix.push(element.clone());
        flatten_into(child, prefix, out);
        prefix.pop();
    }
}

/// The `FieldsV1` form of a set of paths; a path that is also a prefix of another gets `"."`.
pub fn unflatten(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for element in path {
            let entry = node
                .entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                break;
            };
            node = next;
        }
    }
    mark_members(&mut root, paths, &mut Vec::new());
    sort_deep(Value::Object(root))
}

fn mark_members(
    node: &mut Map<String, Value>,
    paths: &BTreeSet<FieldPath>,
    prefix: &mut FieldPath,
) {
    let names: Vec<String> = node.keys().cloned().collect();
    for name in names {
        prefix.push(name.clone());
        if let Some(Value::Object(child)) = node.get_mut(&name) {
            if !child.is_empty() {
                mark_members(child, paths, prefix);
                if paths.contains(prefix.as_slice()) {
                    child.insert(".".to_string(), empty());
                }
            }
        }
        prefix.pop();
    }
}

fn sort_deep(value: Value) -> Value {
    match value {
        Value::Object(map) => sorted(map.into_iter().map(|(k, v)| (k, sort_deep(v))).collect()),
        other => other,
    }
}

/// A path as `kubectl` prints it in conflicts: `.spec.template.spec.containers[name="web"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let parsed: Option<Map<String, Value>> = serde_json::from_str(key).ok();
            let parts: Vec<String> = parsed
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[{value}]"));
        }
    }
    out
}
