//! Resources as kustomize tracks them: the object plus the identities it had before
//! renames, which name references are resolved against.

use serde_json::{Map, Value};

/// Group, version and kind of an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn of(obj: &Value) -> Gvk {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }

    /// Whether this gvk is selected by `selector`, whose empty fields match anything.
    pub fn selected_by(&self, group: &str, version: &str, kind: &str) -> bool {
        (group.is_empty() || group == self.group)
            && (version.is_empty() || version == self.version)
            && (kind.is_empty() || kind == self.kind)
    }

    /// Kustomize decides scope from the OpenAPI data it embeds (Kubernetes 1.21): only the
    /// kinds listed there, at the API versions listed there, are cluster-scoped; anything
    /// else, custom resources included, is taken as namespaced.
    pub fn is_cluster_scoped(&self) -> bool {
        let v = self.version.as_str();
        let in_versions = |versions: &[&str]| versions.contains(&v);
        match (self.group.as_str(), self.kind.as_str()) {
            ("", "Namespace" | "Node" | "PersistentVolume" | "ComponentStatus") => v == "v1",
            ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding") => {
                in_versions(&["v1", "v1beta1", "v1alpha1"])
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("apiregistration.k8s.io", "APIService")
            | (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
            )
            | ("storage.k8s.io", "StorageClass" | "CSIDriver" | "CSINode")
            | ("networking.k8s.io", "IngressClass")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("authentication.k8s.io", "TokenReview")
            | (
                "authorization.k8s.io",
                "SelfSubjectAccessReview" | "SelfSubjectRulesReview" | "SubjectAccessReview",
            ) => in_versions(&["v1", "v1beta1"]),
            ("storage.k8s.io", "VolumeAttachment")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("node.k8s.io", "RuntimeClass") => in_versions(&["v1", "v1beta1", "v1alpha1"]),
            ("policy" | "extensions", "PodSecurityPolicy") => v == "v1beta1",
            ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration") => {
                in_versions(&["v1beta1", "v1alpha1"])
            }
            ("internal.apiserver.k8s.io", "StorageVersion") => v == "v1alpha1",
            _ => false,
        }
    }
}

/// One identity a resource had: kind, name and effective namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrevId {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// A resource in the build.
#[derive(Debug, Clone)]
pub(super) struct Res {
    pub obj: Value,
    /// Identities before each rename, oldest first (kustomize's previous-id annotations).
    pub prev_ids: Vec<PrevId>,
    /// Generated with a content-hash name suffix still to be appended.
    pub needs_hash: bool,
    /// Name prefixes and suffixes applied, used to pick among ambiguous references.
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
}

impl Res {
    pub fn new(obj: Value) -> Res {
        Res {
            obj,
            prev_ids: Vec::new(),
            needs_hash: false,
            prefixes: Vec::new(),
            suffixes: Vec::new(),
        }
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::of(&self.obj)
    }

    pub fn kind(&self) -> &str {
        self.obj.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        meta_str(&self.obj, "name")
    }

    pub fn namespace(&self) -> &str {
        meta_str(&self.obj, "namespace")
    }

    /// The namespace with "" read as "default", as kustomize compares them.
    pub fn effective_namespace(&self) -> &str {
        effective(self.namespace())
    }

    pub fn set_name(&mut self, name: &str) {
        metadata_mut(&mut self.obj).insert("name".into(), Value::String(name.into()));
    }

    /// Records the current identity before a rename.
    pub fn store_prev_id(&mut self) {
        let id = PrevId {
            kind: self.kind().to_string(),
            name: self.name().to_string(),
            namespace: self.effective_namespace().to_string(),
        };
        self.prev_ids.push(id);
    }

    /// The original identity: the oldest previous one, else the current one.
    pub fn org_name(&self) -> &str {
        self.prev_ids
            .first()
            .map_or_else(|| self.name(), |id| id.name.as_str())
    }

    /// Whether the current or any previous identity matches kind (if given), name and
    /// namespace.
    pub fn matches_any_id(&self, gvk: &Gvk, name: &str, namespace: &str) -> bool {
        let own = self.gvk();
        if own.group != gvk.group || own.version != gvk.version {
            return false;
        }
        let ns = effective(namespace);
        (own.kind == gvk.kind && self.name() == name && self.effective_namespace() == ns)
            || self
                .prev_ids
                .iter()
                .any(|id| id.kind == gvk.kind && id.name == name && id.namespace == ns)
    }

    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
    }

    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        self.obj
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
    }
}

pub(super) fn effective(namespace: &str) -> &str {
    if namespace.is_empty() {
        "default"
    } else {
        namespace
    }
}

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's metadata map, created when missing.
pub(super) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let map = ensure_object(obj);
    ensure_object(map.entry("metadata").or_insert(Value::Null))
}

/// `value` as a map, replacing anything that is not one by an empty map.
pub(super) fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Parses a YAML stream into its documents, with `<<` merge keys applied as kustomize
/// does; empty documents are skipped.
pub(super) fn parse_yaml_stream(bytes: &[u8]) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_slice(bytes) {
        let mut value = serde_yaml::Value::deserialize(document).map_err(|e| e.to_string())?;
        value.apply_merge().map_err(|e| e.to_string())?;
        let value = yaml_to_json(value)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Parses one YAML document.
pub(super) fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    let mut value: serde_yaml::Value = serde_yaml::from_slice(bytes).map_err(|e| e.to_string())?;
    value.apply_merge().map_err(|e| e.to_string())?;
    yaml_to_json(value)
}

fn yaml_to_json(value: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                // Kustomize re-emits integral floats (`1e3`) as integers.
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                    Some(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
                    None => Value::Null,
                }
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (k, v) in mapping {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err("mapping keys must be scalars".into()),
                };
                map.insert(key, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// Kinds placed first and last by kustomize's default ("legacy") output order.
const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_rank(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    ORDER_LAST
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| i as i64 + 1)
}

fn gvk_sort_string(gvk: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&gvk.group, "~G"),
        or(&gvk.version, "~V"),
        or(&gvk.kind, "~K")
    )
}

/// Sorts resources in kustomize's legacy order: by kind priority, then group/version/kind,
/// then namespace (unset last) and name.
pub(super) fn sort_legacy(resources: &mut [Res]) {
    resources.sort_by_cached_key(|r| {
        let gvk = r.gvk();
        let ns = if r.namespace().is_empty() {
            "~X"
        } else {
            r.namespace()
        };
        let name = if r.name().is_empty() { "~N" } else { r.name() };
        let mut gvk_key = gvk_sort_string(&gvk);
        // Kustomize puts a core Namespace before Namespace kinds of other groups.
        if gvk.kind == "Namespace" && gvk.group.is_empty() {
            gvk_key.insert(0, '\0');
        }
        (kind_rank(&gvk.kind), gvk_key, format!("{ns}|{name}"))
    });
}
