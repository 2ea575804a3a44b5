//! The resource types the server serves and the discovery documents that describe them.
//!
//! Discovery is the legacy kind (`/api`, `/apis`, `/apis/{group}/{version}`), which kube-rs
//! uses and kubectl falls back to when the aggregated form is not offered.

use serde_json::{json, Value};

/// Verbs of an ordinary resource, as the real server lists them.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// One resource type: where it lives in the API and how the server treats its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Whether `status` is a subresource (the main resource then ignores written status).
    pub status_subresource: bool,
    /// Whether the registry strategy sets `metadata.generation` (1 on create).
    pub generation: bool,
    /// Only `create` is served (SelfSubjectAccessReview): nothing is stored.
    pub create_only: bool,
    /// Defined by a CustomResourceDefinition: schemaless for field ownership.
    pub custom: bool,
}

impl ResourceType {
    fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
        ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced,
            status_subresource: true,
            generation: false,
            create_only: false,
            custom: false,
        }
    }

    fn with_generation(mut self) -> ResourceType {
        self.generation = true;
        self
    }

    fn without_status(mut self) -> ResourceType {
        self.status_subresource = false;
        self
    }

    /// A custom resource: generation is always tracked, status is a subresource.
    pub fn custom(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> ResourceType {
        let mut custom =
            ResourceType::new(group, version, kind, plural, namespaced).with_generation();
        custom.custom = true;
        custom
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn verbs(&self) -> &'static [&'static str] {
        if self.create_only {
            &["create"]
        } else if self.group.is_empty() && self.plural == "namespaces" {
            NAMESPACE_VERBS
        } else {
            VERBS
        }
    }

    /// The entries of this type in an `APIResourceList`: the resource, then its status.
    fn discovery_entries(&self) -> Vec<Value> {
        let mut entry = json!({
            "name": self.plural,
            "singularName": self.kind.to_lowercase(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
        });
        // kubectl resolves `deploy`, `svc`, … and `get all` from these.
        let (short_names, categories) = aliases(&self.group, &self.plural);
        if let Some(map) = entry.as_object_mut() {
            if !short_names.is_empty() {
                map.insert("shortNames".to_string(), json!(short_names));
            }
            if !categories.is_empty() {
                map.insert("categories".to_string(), json!(categories));
            }
        }
        let mut entries = vec![entry];
        if self.status_subresource && !self.create_only {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": STATUS_VERBS,
            }));
        }
        entries
    }
}

/// Short names and categories of the built-in resources, as the real server lists them.
fn aliases(group: &str, plural: &str) -> (&'static [&'static str], &'static [&'static str]) {
    const ALL: &[&str] = &["all"];
    match (group, plural) {
        ("", "configmaps") => (&["cm"], &[]),
        ("", "endpoints") => (&["ep"], &[]),
        ("", "namespaces") => (&["ns"], &[]),
        ("", "persistentvolumeclaims") => (&["pvc"], &[]),
        ("", "pods") => (&["po"], ALL),
        ("", "serviceaccounts") => (&["sa"], &[]),
        ("", "services") => (&["svc"], ALL),
        ("apps", "daemonsets") => (&["ds"], ALL),
        ("apps", "deployments") => (&["deploy"], ALL),
        ("apps", "replicasets") => (&["rs"], ALL),
        ("apps", "statefulsets") => (&["sts"], ALL),
        ("autoscaling", "horizontalpodautoscalers") => (&["hpa"], ALL),
        ("batch", "cronjobs") => (&["cj"], ALL),
        ("batch", "jobs") => (&[], ALL),
        ("networking.k8s.io", "ingresses") => (&["ing"], &[]),
        ("networking.k8s.io", "networkpolicies") => (&["netpol"], &[]),
        ("policy", "poddisruptionbudgets") => (&["pdb"], &[]),
        ("apiextensions.k8s.io", "customresourcedefinitions") => (&["crd", "crds"], &[]),
        _ => (&[], &[]),
    }
}

/// The built-in types, in the order the real server lists their groups.
pub fn builtin() -> Vec<ResourceType> {
    let core = |kind: &str, plural: &str, namespaced: bool| {
        ResourceType::new("", "v1", kind, plural, namespaced)
    };
    let apps = |kind: &str, plural: &str| {
        ResourceType::new("apps", "v1", kind, plural, true).with_generation()
    };
    let rbac = |kind: &str, plural: &str, namespaced: bool| {
        ResourceType::new("rbac.authorization.k8s.io", "v1", kind, plural, namespaced)
            .without_status()
    };
    let mut review = ResourceType::new(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
    )
    .without_status();
    review.create_only = true;
    let mut self_review = ResourceType::new(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
    )
    .without_status();
    self_review.create_only = true;
    vec![
        self_review,
        core("ConfigMap", "configmaps", true).without_status(),
        core("Endpoints", "endpoints", true).without_status(),
        core("Namespace", "namespaces", false),
        core("PersistentVolumeClaim", "persistentvolumeclaims", true),
        core("Pod", "pods", true),
        core("Secret", "secrets", true).without_status(),
        core("ServiceAccount", "serviceaccounts", true).without_status(),
        core("Service", "services", true),
        apps("DaemonSet", "daemonsets"),
        apps("Deployment", "deployments"),
        apps("ReplicaSet", "replicasets"),
        apps("StatefulSet", "statefulsets"),
        review,
        ResourceType::new(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
        ),
        ResourceType::new("batch", "v1", "CronJob", "cronjobs", true).with_generation(),
        ResourceType::new("batch", "v1", "Job", "jobs", true).with_generation(),
        ResourceType::new("networking.k8s.io", "v1", "Ingress", "ingresses", true)
            .with_generation(),
        ResourceType::new(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        )
        .with_generation()
        .without_status(),
        ResourceType::new(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
        )
        .with_generation(),
        rbac("ClusterRoleBinding", "clusterrolebindings", false),
        rbac("ClusterRole", "clusterroles", false),
        rbac("RoleBinding", "rolebindings", true),
        rbac("Role", "roles", true),
        ResourceType::new(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .with_generation(),
    ]
}

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The named groups with their versions, in first-seen order.
fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone())
            }
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    groups
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /apis`.
pub fn api_group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(name, versions)| group_entry(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, or `None` for an unknown group.
pub fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    let (name, versions) = groups(types).into_iter().find(|(name, _)| name == group)?;
    let mut entry = group_entry(&name, &versions);
    if let Some(map) = entry.as_object_mut() {
        map.insert("kind".to_string(), json!("APIGroup"));
        map.insert("apiVersion".to_string(), json!("v1"));
    }
    Some(entry)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, or `None` for an unknown group version.
pub fn api_resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut matching: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if matching.is_empty() {
        return None;
    }
    matching.sort_by(|a, b| a.plural.cmp(&b.plural));
    let resources: Vec<Value> = matching
        .iter()
        .flat_map(|t| t.discovery_entries())
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
