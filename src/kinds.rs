//! What plumbline knows about the built-in kinds without asking a cluster.

/// Built-in kinds that are cluster-scoped, as `(group, kind)`. Any other built-in kind is
/// namespaced; for custom resources the cluster (discovery or a snapshot's CRDs) decides.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
];

/// Groups served by the API server itself: every kind in them is known.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "admissionregistration.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// Scope of a kind when it is built in: `Some(true)` namespaced, `Some(false)` cluster-scoped,
/// `None` when only the cluster can tell (a custom resource).
pub fn builtin_namespaced(group: &str, kind: &str) -> Option<bool> {
    if CLUSTER_SCOPED.contains(&(group, kind)) {
        Some(false)
    } else if BUILT_IN_GROUPS.contains(&group) {
        Some(true)
    } else {
        None
    }
}

/// Kinds whose objects controllers create by copying the labels of another object: they carry
/// an app's tracking label without the app having declared them, so they are never orphans.
pub fn is_label_copy_kind(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Endpoints")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("", "Event")
            | ("events.k8s.io", "Event")
            | ("coordination.k8s.io", "Lease")
    )
}
