//! Field ownership: the set of fields a manager owns (managedFields `fieldsV1`) or that the
//! previous apply sent (`kubectl.kubernetes.io/last-applied-configuration`), as one tree.
//!
//! Ownership answers two questions: which fields a sync would remove because the applier set
//! them before and Git no longer does (three-way diff), and who changed a drifted field.

use super::lists::{list_kind, ListKind};
use serde_json::{Map, Value};

/// One step of a path into an object, in the form managedFields uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Field(String),
    /// An item of a keyed list, by its key fields.
    Key(Map<String, Value>),
    /// An item of a set list, by its value.
    Value(Value),
    /// An item of an atomic list: ownership stops at the list.
    Index(usize),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    pub fields: Fields,
    pub keys: Vec<(Map<String, Value>, FieldSet)>,
    pub values: Vec<Value>,
    /// Set when the node lists what it owns below it: a map of an applied manifest, or a
    /// managedFields node with entries (even `"."` alone). Such a node owns only what it lists,
    /// where an empty managedFields entry (`{}`) owns the whole field.
    pub map: bool,
}

impl FieldSet {
    /// Parses a managedFields `fieldsV1` tree (`f:name`, `k:{json}`, `v:json`, `i:N`, `.`).
    ///
    /// `{}` is a leaf: the manager owns the field whole (a scalar, an atomic list or struct).
    /// `"."` is the node's own membership (structured-merge-diff serialises a path that is in
    /// the set and has children that way): a node holding `"."` owns the map, list item or
    /// struct itself but only the children it lists. When another manager's Update takes the
    /// last listed child (`kubectl edit` of a ConfigMap's only key), the old owner is left with
    /// `{".": {}}`, which must not read as owning the value that was taken from it.
    ///
    /// The tree may also come as its JSON text, as the API reader keeps it (see
    /// `live::kube`): a tenth of the memory, and parsed only when ownership is sought.
    pub fn from_fields_v1(tree: &Value) -> FieldSet {
        if let Value::String(text) = tree {
            return serde_json::from_str::<Value>(text)
                .map(|tree| FieldSet::from_fields_v1(&tree))
                .unwrap_or_default();
        }
        let mut set = FieldSet::default();
        let Some(map) = tree.as_object() else {
            return set;
        };
        set.map = !map.is_empty();
        for (entry, child) in map {
            if let Some(name) = entry.strip_prefix("f:") {
                set.fields
                    .insert(name.to_string(), FieldSet::from_fields_v1(child));
            } else if let Some(key) = entry.strip_prefix("k:") {
                if let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) {
                    set.keys.push((key, FieldSet::from_fields_v1(child)));
                }
            } else if let Some(value) = entry.strip_prefix("v:") {
                if let Ok(value) = serde_json::from_str::<Value>(value) {
                    set.values.push(value);
                }
            }
        }
        set
    }

    /// The fields of an applied manifest (last-applied-configuration), with its lists keyed the
    /// way the server merges them.
    pub fn from_applied(group: &str, kind: &str, builtin: bool, applied: &Value) -> FieldSet {
        let mut fields = Vec::new();
        from_applied_at(group, kind, builtin, applied, &mut fields)
    }

    /// True when the field is owned whole (a scalar, an atomic list or struct).
    pub fn is_leaf(&self) -> bool {
        !self.map && self.fields.is_empty() && self.keys.is_empty() && self.values.is_empty()
    }

    pub fn field(&self, name: &str) -> Option<&FieldSet> {
        self.fields.get(name)
    }

    pub fn key(&self, key: &Map<String, Value>) -> Option<&FieldSet> {
        self.keys
            .iter()
            .find(|(k, _)| keys_equal(k, key))
            .map(|(_, set)| set)
    }

    /// The entry of the keyed-list item `item` (whose key is `key_fields`), if owned.
    pub fn key_of(&self, item: &Value, key_fields: &[&str]) -> Option<&FieldSet> {
        self.keys
            .iter()
            .find(|(k, _)| {
                k.len() == key_fields.len()
                    && key_fields.iter().all(|field| {
                        let value = key_value(item, field);
                        match (k.get(*field), value.as_deref()) {
                            (Some(a), Some(b)) => super::compare::scalars_equal(a, b),
                            _ => false,
                        }
                    })
            })
            .map(|(_, set)| set)
    }

    pub fn has_value(&self, value: &Value) -> bool {
        self.values
            .iter()
            .any(|v| super::compare::scalars_equal(v, value))
    }

    /// True when this set owns the field at `path`, or an atomic field containing it.
    pub fn owns(&self, path: &[Seg]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return true;
        };
        let child = match first {
            Seg::Field(name) => self.field(name),
            Seg::Key(key) => self.key(key),
            Seg::Value(value) => return self.has_value(value),
            Seg::Index(_) => return true,
        };
        match child {
            Some(child) if child.is_leaf() => true,
            Some(child) => child.owns(rest),
            None => false,
        }
    }
}

fn from_applied_at<'a>(
    group: &str,
    kind: &str,
    builtin: bool,
    value: &'a Value,
    fields: &mut Vec<&'a str>,
) -> FieldSet {
    let mut set = FieldSet::default();
    match value {
        Value::Object(map) => {
            set.map = true;
            for (name, child) in map {
                fields.push(name.as_str());
                let child_set = from_applied_at(group, kind, builtin, child, fields);
                fields.pop();
                set.fields.insert(name.clone(), child_set);
            }
        }
        Value::Array(items) => match list_kind(group, kind, fields, builtin) {
            ListKind::Keyed(key_fields) => {
                for item in items {
                    if let Some(key) = item_key(item, key_fields) {
                        let child = from_applied_at(group, kind, builtin, item, fields);
                        set.keys.push((key, child));
                    }
                }
            }
            ListKind::Set => set.values.extend(items.iter().cloned()),
            ListKind::Atomic => {}
        },
        _ => {}
    }
    set
}

/// The named children of a field set. Objects have a handful of fields, so a vector searched
/// in order beats a hash map (no hashing, one allocation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, FieldSet)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&FieldSet> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, set)| set)
    }

    /// Sets a child, replacing one of the same name.
    pub fn insert(&mut self, name: String, set: FieldSet) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => *existing = set,
            None => self.0.push((name, set)),
        }
    }

    /// The child of that name, created empty if absent.
    pub fn get_or_insert_default(&mut self, name: &str) -> &mut FieldSet {
        let index = match self.0.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                self.0.push((name.to_string(), FieldSet::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &FieldSet)> {
        self.0.iter().map(|(n, s)| (n, s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A key field of an item, with the server's default when the item leaves it out.
fn key_value<'v>(item: &'v Value, field: &str) -> Option<std::borrow::Cow<'v, Value>> {
    match item.get(field) {
        Some(v) if !v.is_null() => Some(std::borrow::Cow::Borrowed(v)),
        _ => super::lists::key_default(field).map(std::borrow::Cow::Owned),
    }
}

/// True when an item can be matched by key: it has the key, or the only key field it lacks
/// has a server default.
pub fn has_key(item: &Value, key_fields: &[&str]) -> bool {
    item.is_object()
        && (key_fields.len() > 1 || key_value(item, key_fields[0]).is_some())
        && key_fields
            .iter()
            .any(|f| item.get(*f).is_some_and(|v| !v.is_null()))
}

/// True when two items of a keyed list have the same key (defaults filled in).
pub fn same_key(a: &Value, b: &Value, key_fields: &[&str]) -> bool {
    key_fields
        .iter()
        .all(|field| match (key_value(a, field), key_value(b, field)) {
            (Some(x), Some(y)) => super::compare::scalars_equal(&x, &y),
            (None, None) => true,
            _ => false,
        })
}

/// The key of a keyed-list item, with server defaults for key fields it leaves out.
pub fn item_key(item: &Value, key_fields: &[&str]) -> Option<Map<String, Value>> {
    let object = item.as_object()?;
    let mut key = Map::new();
    for field in key_fields {
        match object.get(*field) {
            Some(v) if !v.is_null() => {
                key.insert((*field).to_string(), v.clone());
            }
            _ => {
                if let Some(default) = super::lists::key_default(field) {
                    key.insert((*field).to_string(), default);
                } else if key_fields.len() == 1 {
                    return None;
                }
            }
        }
    }
    if key.is_empty() {
        None
    } else {
        Some(key)
    }
}

pub fn keys_equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|other| super::compare::scalars_equal(v, other))
        })
}

/// The managers recorded in an object's managedFields with their field sets.
pub struct Managers {
    pub entries: Vec<ManagerEntry>,
}

pub struct ManagerEntry {
    pub manager: String,
    pub operation: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Managers {
    pub fn from_object(object: &Value) -> Managers {
        let entries = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|entry| {
                        let manager = entry.get("manager")?.as_str()?.to_string();
                        Some(ManagerEntry {
                            manager,
                            operation: entry
                                .get("operation")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            subresource: entry
                                .get("subresource")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            fields: entry
                                .get("fieldsV1")
                                .map(FieldSet::from_fields_v1)
                                .unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Managers { entries }
    }

    /// Managers owning the field at `path`, in the order managedFields lists them.
    pub fn owners(&self, path: &[Seg]) -> Vec<String> {
        let mut owners: Vec<String> = Vec::new();
        for entry in &self.entries {
            if entry.fields.owns(path) && !owners.contains(&entry.manager) {
                owners.push(entry.manager.clone());
            }
        }
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_ownership_of_keyed_container_field() {
        let tree = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}
        }}}}});
        let set = FieldSet::from_fields_v1(&tree);
        let mut key = Map::new();
        key.insert("name".into(), json!("web"));
        let path = vec![
            Seg::Field("spec".into()),
            Seg::Field("template".into()),
            Seg::Field("spec".into()),
            Seg::Field("containers".into()),
            Seg::Key(key.clone()),
            Seg::Field("image".into()),
        ];
        assert!(set.owns(&path));
        let mut other = path.clone();
        other[5] = Seg::Field("env".into());
        assert!(!set.owns(&other));
    }

    #[test]
    fn fields_v1_as_json_text_reads_as_the_tree() {
        let tree = json!({"f:spec": {"f:replicas": {}, "f:template": {".": {}}}});
        let text = Value::String(tree.to_string());
        assert_eq!(
            FieldSet::from_fields_v1(&text),
            FieldSet::from_fields_v1(&tree)
        );
    }

    #[test]
    fn dot_only_node_owns_the_node_not_its_children() {
        // Client-side apply after `kubectl edit` took the ConfigMap's only key.
        let set = FieldSet::from_fields_v1(&json!({"f:data": {".": {}}}));
        let data = Seg::Field("data".into());
        assert!(set.owns(std::slice::from_ref(&data)));
        assert!(!set.owns(&[data, Seg::Field("MODE".into())]));
        // An empty entry still owns the field whole.
        let atomic = FieldSet::from_fields_v1(&json!({"f:rules": {}}));
        assert!(atomic.owns(&[Seg::Field("rules".into()), Seg::Index(0)]));
        let labels = FieldSet::from_fields_v1(&json!({"f:metadata": {"f:labels": {".": {}}}}));
        let path = [
            Seg::Field("metadata".into()),
            Seg::Field("labels".into()),
            Seg::Field("team".into()),
        ];
        assert!(!labels.owns(&path));
    }

    #[test]
    fn applied_manifest_keys_lists_by_merge_key() {
        let applied = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "A", "value": "1"}]}
        ]}}}});
        let set = FieldSet::from_applied("apps", "Deployment", true, &applied);
        let containers = set
            .field("spec")
            .and_then(|s| s.field("template"))
            .and_then(|s| s.field("spec"))
            .and_then(|s| s.field("containers"))
            .expect("containers");
        let mut key = Map::new();
        key.insert("name".into(), json!("web"));
        let env = containers
            .key(&key)
            .and_then(|c| c.field("env"))
            .expect("env");
        let mut a = Map::new();
        a.insert("name".into(), json!("A"));
        assert!(env.key(&a).is_some());
    }
}
