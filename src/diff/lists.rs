//! How the API server merges each list of the built-in kinds: by key (strategic merge patch
//! `patchMergeKey` / server-side apply `listMapKey`), as a set, or atomically (replaced whole).
//!
//! Lists are compared the way a sync would merge them, so that a container order change or an
//! injected sidecar is not drift, while an extra RBAC verb is.

/// The merge semantics of one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Items are matched by these fields (`listType=map`).
    Keyed(&'static [&'static str]),
    /// Scalar items, order does not matter (`listType=set`).
    Set,
    /// Replaced whole (`listType=atomic`, the default for lists without a strategy).
    Atomic,
}

/// Merge semantics of the list at `fields` (the field names from the object root, list
/// indexes left out), for an object of `group`/`kind`. `builtin` is false for custom resources,
/// whose lists are atomic unless configured otherwise.
pub fn list_kind(group: &str, kind: &str, fields: &[&str], builtin: bool) -> ListKind {
    let Some((&last, parents)) = fields.split_last() else {
        return ListKind::Atomic;
    };
    let parent = parents.last().copied().unwrap_or("");
    match (parent, last) {
        ("metadata", "finalizers") => return ListKind::Set,
        ("metadata", "ownerReferences") => return ListKind::Keyed(&["uid"]),
        _ => {}
    }
    if !builtin {
        return ListKind::Atomic;
    }
    let in_pod_spec = is_pod_spec(group, kind, parents);
    let in_container = parents.len() >= 2
        && matches!(
            parents[parents.len() - 1],
            "containers" | "initContainers" | "ephemeralContainers"
        )
        && is_pod_spec(group, kind, &parents[..parents.len() - 1]);
    if in_pod_spec {
        match last {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "imagePullSecrets"
            | "resourceClaims"
            | "schedulingGates" => return ListKind::Keyed(&["name"]),
            "hostAliases" => return ListKind::Keyed(&["ip"]),
            "topologySpreadConstraints" => {
                return ListKind::Keyed(&["topologyKey", "whenUnsatisfiable"])
            }
            _ => {}
        }
    }
    if in_container {
        match last {
            "ports" => return ListKind::Keyed(&["containerPort", "protocol"]),
            "env" => return ListKind::Keyed(&["name"]),
            "volumeMounts" => return ListKind::Keyed(&["mountPath"]),
            "volumeDevices" => return ListKind::Keyed(&["devicePath"]),
            "resizePolicy" => return ListKind::Keyed(&["resourceName"]),
            _ => {}
        }
    }
    match (group, kind, fields) {
        ("", "Service", ["spec", "ports"]) => ListKind::Keyed(&["port", "protocol"]),
        ("admissionregistration.k8s.io", _, ["webhooks"]) => ListKind::Keyed(&["name"]),
        (_, _, [.., "status", "conditions"]) => ListKind::Keyed(&["type"]),
        _ => ListKind::Atomic,
    }
}

/// Where a pod spec sits in the built-in kinds that hold one.
fn is_pod_spec(group: &str, kind: &str, fields: &[&str]) -> bool {
    match (group, kind) {
        ("", "Pod") => fields == ["spec"],
        ("", "PodTemplate") => fields == ["template", "spec"],
        ("batch", "CronJob") => fields == ["spec", "jobTemplate", "spec", "template", "spec"],
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => fields == ["spec", "template", "spec"],
        _ => false,
    }
}

/// Default values of key fields that the server fills in, so a desired item without them still
/// matches its live counterpart (`protocol` defaults to TCP on every port list).
pub fn key_default(field: &str) -> Option<serde_json::Value> {
    match field {
        "protocol" => Some(serde_json::Value::String("TCP".into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_template_lists_are_keyed() {
        let f = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_kind("apps", "Deployment", &f, true),
            ListKind::Keyed(&["name"])
        );
        let p = ["spec", "template", "spec", "containers", "ports"];
        assert_eq!(
            list_kind("apps", "Deployment", &p, true),
            ListKind::Keyed(&["containerPort", "protocol"])
        );
        let e = [
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
            "env",
        ];
        assert_eq!(
            list_kind("batch", "CronJob", &e, true),
            ListKind::Keyed(&["name"])
        );
    }

    #[test]
    fn rbac_and_args_are_atomic() {
        assert_eq!(
            list_kind("rbac.authorization.k8s.io", "ClusterRole", &["rules"], true),
            ListKind::Atomic
        );
        let a = ["spec", "template", "spec", "containers", "args"];
        assert_eq!(list_kind("apps", "Deployment", &a, true), ListKind::Atomic);
    }

    #[test]
    fn service_ports_and_custom_resources() {
        assert_eq!(
            list_kind("", "Service", &["spec", "ports"], true),
            ListKind::Keyed(&["port", "protocol"])
        );
        assert_eq!(
            list_kind(
                "example.com",
                "Widget",
                &["spec", "template", "spec", "containers"],
                false
            ),
            ListKind::Atomic
        );
        assert_eq!(
            list_kind("example.com", "Widget", &["metadata", "finalizers"], false),
            ListKind::Set
        );
    }
}
