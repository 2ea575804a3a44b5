//! The API server's create-time defaulting, applied to desired manifests.
//!
//! A manifest in Git leaves most fields out; kube-apiserver fills them in
//! (defaulting funcs in `pkg/apis/<group>/<version>/defaults.go`, the
//! generated `zz_generated.defaults.go`, registry strategies) and returns the
//! filled object. [`apply_defaults`] does the same to a desired object so that
//! it can be compared field by field with the live one. The comparison uses
//! the defaults only to excuse differences (see `diff_object`): a field Git
//! does not set is left alone by a sync, so a live value there is never drift
//! whatever the server defaulted it to (an HPA's `replicas`, a 1.28 Job without
//! `podReplacementPolicy`); a value Git sets that the server rewrites is not
//! drift either, and a field the previous apply set and Git dropped is drift
//! only when the server would not default it back to the live value.
//!
//! Rules: defaults go only where the field is absent, as the server sees it
//! (missing or `null`; for plain Go strings also `""`, for plain Go ints also
//! `0`). What Git says is never overwritten, with the few exceptions the
//! server makes itself, each noted where it happens. Server metadata, status,
//! labels and annotations, and allocated values (cluster IPs, node ports) are
//! never added: see [`is_allocated_service_field`]. Behaviour is that of
//! Kubernetes 1.29–1.33 with default feature gates (1.28 lacks the Job
//! `manualSelector` and `podReplacementPolicy` defaults). Pod template
//! `metadata.creationTimestamp: null` (≤1.33 only) is not added: `null` means
//! absent.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::quantity;

type Object = Map<String, Value>;

/// Fills into `obj` (a whole manifest: apiVersion, kind, metadata, spec…)
/// every field kube-apiserver 1.28–1.33 defaults at create time, then
/// canonicalises its quantities (see [`canonicalize_quantities`]).
///
/// `group` is the API group (`""` or `"core"` for the core group) and `kind`
/// the kind, e.g. `("apps", "Deployment")`. Unknown kinds are left untouched.
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (core(group), kind) {
        ("", "Pod") => {
            if let Some(spec) = ensure_object(root, "spec") {
                pod_spec(spec, PodSpecKind::Pod);
            }
        }
        ("", "PodTemplate") => pod_template(root, "template", PodSpecKind::Template, true),
        ("", "ReplicationController") => replication_controller(root),
        ("", "Service") => service(root),
        ("", "Namespace") => namespace(root),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(root),
        ("", "PersistentVolume") => persistent_volume(root),
        ("", "Secret") => {
            // SetDefaults_Secret, then the stringData fold of the conversion.
            set_if_empty(root, "type", "Opaque");
            fold_string_data(root);
        }
        // Nothing visible is defaulted; binaryData is []byte, re-encoded.
        ("", "ConfigMap") => normalize_base64_map(root, "binaryData"),
        ("", "LimitRange") => limit_range(root),
        ("", "ResourceQuota") => {}
        ("", "Endpoints") => {
            // SetDefaults_Endpoints.
            for_each_object(root, "subsets", |subset| {
                for_each_object(subset, "ports", |p| set_if_empty(p, "protocol", "TCP"));
            });
        }
        ("apps", "Deployment") => deployment(root),
        ("apps", "StatefulSet") => stateful_set(root),
        ("apps", "DaemonSet") => daemon_set(root),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = ensure_object(root, "spec") {
                set_if_unset(spec, "replicas", json!(1));
                pod_template(spec, "template", PodSpecKind::Template, true);
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = ensure_object(root, "spec") {
                job_spec(spec);
            }
        }
        ("batch", "CronJob") => cron_job(root),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let v1 = root.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1");
            horizontal_pod_autoscaler(root, v1);
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(root),
        ("discovery.k8s.io", "EndpointSlice") => {
            // discovery/v1 SetDefaults_EndpointPort.
            for_each_object(root, "ports", |p| set_if_unset(p, "protocol", json!("TCP")));
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => webhooks(root, true),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => webhooks(root, false),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            if let Some(spec) = ensure_object(root, "spec") {
                set_if_unset(spec, "failurePolicy", json!("Fail"));
                if let Some(constraints) = object_mut(spec, "matchConstraints") {
                    match_resources(constraints);
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            if let Some(resources) = object_path(root, &["spec", "matchResources"]) {
                match_resources(resources);
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(root),
        ("storage.k8s.io", "StorageClass") => {
            // pkg/apis/storage/v1/defaults.go SetDefaults_StorageClass.
            set_if_unset(root, "reclaimPolicy", json!("Delete"));
            set_if_unset(root, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            // pkg/apis/scheduling/v1/defaults.go (NonPreemptingPriority, GA 1.24).
            set_if_unset(root, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        _ => return,
    }
    canonicalize_quantities(group, kind, obj);
}

/// Folds a Secret's `stringData` into `data` as base64 (a `stringData` key
/// wins over the same key in `data`) and removes `stringData`, as
/// `Convert_v1_Secret_To_core_Secret` does: the server never returns
/// `stringData`. `data` values are also rewritten to padded standard base64
/// (Go's decoder skips line breaks and tolerates non-zero trailing bits, the
/// encoder writes canonical text); values that do not decode are left alone.
pub fn secret_string_data_to_data(obj: &mut Value) {
    if let Some(root) = obj.as_object_mut() {
        fold_string_data(root);
    }
}

/// Rewrites the quantity fields of built-in kinds to the canonical strings the
/// API server returns: resource lists (container requests/limits, pod
/// overhead, PVC and volume-claim-template resources, PV capacity,
/// LimitRange, ResourceQuota) are canonicalised and rounded up to milli
/// (`SetDefaults_ResourceList`); single quantities (`emptyDir.sizeLimit`,
/// `resourceFieldRef.divisor`, HPA metric targets) are canonicalised. Values
/// that are not quantities are left as they are. Meant for both desired and
/// live objects (on live objects it is a no-op unless they come from another
/// source than the API server).
pub fn canonicalize_quantities(group: &str, kind: &str, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (core(group), kind) {
        ("", "Pod") => {
            if let Some(spec) = object_mut(root, "spec") {
                pod_spec_quantities(spec);
            }
        }
        ("", "PodTemplate") => template_quantities(root),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "DaemonSet")
        | ("batch", "Job") => {
            if let Some(spec) = object_mut(root, "spec") {
                template_quantities(spec);
            }
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = object_mut(root, "spec") {
                template_quantities(spec);
                for_each_object(spec, "volumeClaimTemplates", |claim| {
                    if let Some(claim_spec) = object_mut(claim, "spec") {
                        requirements(claim_spec, "resources");
                    }
                    if let Some(status) = object_mut(claim, "status") {
                        resource_list(status, "capacity");
                    }
                });
            }
        }
        ("batch", "CronJob") => {
            if let Some(job_spec) = object_path(root, &["spec", "jobTemplate", "spec"]) {
                template_quantities(job_spec);
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = object_mut(root, "spec") {
                requirements(spec, "resources");
            }
            if let Some(status) = object_mut(root, "status") {
                resource_list(status, "capacity");
                resource_list(status, "allocatedResources");
            }
        }
        ("", "PersistentVolume") => {
            if let Some(spec) = object_mut(root, "spec") {
                resource_list(spec, "capacity");
            }
        }
        ("", "LimitRange") => {
            if let Some(spec) = object_mut(root, "spec") {
                for_each_object(spec, "limits", |item| {
                    for key in [
                        "max",
                        "min",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        resource_list(item, key);
                    }
                });
            }
        }
        ("", "ResourceQuota") => {
            if let Some(spec) = object_mut(root, "spec") {
                resource_list(spec, "hard");
            }
            if let Some(status) = object_mut(root, "status") {
                resource_list(status, "hard");
                resource_list(status, "used");
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if let Some(spec) = object_mut(root, "spec") {
                for_each_object(spec, "metrics", |metric| {
                    for source in [
                        "resource",
                        "containerResource",
                        "pods",
                        "object",
                        "external",
                    ] {
                        if let Some(target) = object_path(metric, &[source, "target"]) {
                            quantity_field(target, "value");
                            quantity_field(target, "averageValue");
                        }
                    }
                });
            }
        }
        _ => {}
    }
}

/// Rewrites file modes that a manifest wrote as YAML 1.1 octal literals to their value.
///
/// `defaultMode: 0644` is the integer 420 to kubectl, which reads manifests as YAML 1.1
/// (go-yaml v2 behind `sigs.k8s.io/yaml`), and 420 is what the API server stores and returns.
/// A YAML 1.2 reader (the one Git files go through) has no leading-zero octal form and yields
/// the string `"0644"`. Mode fields are int32 and the server rejects a string there, so a
/// string of octal digits with a leading `0` in one of them can only be such a literal.
/// Covered: `defaultMode` and `items[*].mode` of `configMap`, `secret`, `downwardAPI` and
/// `projected` volumes (and of projected sources), in the pod spec of every kind that has one.
pub fn octal_file_modes(group: &str, kind: &str, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let spec = match (core(group), kind) {
        ("", "Pod") => object_mut(root, "spec"),
        ("", "PodTemplate") => object_path(root, &["template", "spec"]),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet")
        | ("batch", "Job") => object_path(root, &["spec", "template", "spec"]),
        ("batch", "CronJob") => {
            object_path(root, &["spec", "jobTemplate", "spec", "template", "spec"])
        }
        _ => None,
    };
    let Some(spec) = spec else {
        return;
    };
    fn modes(source: &mut Object) {
        octal_field(source, "defaultMode");
        for_each_object(source, "items", |item| octal_field(item, "mode"));
    }
    for_each_object(spec, "volumes", |v| {
        for source in ["configMap", "secret", "downwardAPI", "projected"] {
            if let Some(s) = object_mut(v, source) {
                modes(s);
            }
        }
        if let Some(projected) = object_mut(v, "projected") {
            for_each_object(projected, "sources", |source| {
                for kind in ["configMap", "secret", "downwardAPI"] {
                    if let Some(s) = object_mut(source, kind) {
                        modes(s);
                    }
                }
            });
        }
    });
}

/// A YAML 1.1 octal integer (`0644`, `-0_17`) given as a string, replaced by its value.
fn octal_field(m: &mut Object, key: &str) {
    let Some(text) = m.get(key).and_then(Value::as_str) else {
        return;
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    let octal = digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !octal {
        return;
    }
    if let Ok(value) = i64::from_str_radix(&digits, 8) {
        let value = if negative { -value } else { value };
        m.insert(key.to_string(), Value::from(value));
    }
}

/// Whether a JSON pointer names a Service field the server allocates when the
/// manifest leaves it empty (`pkg/registry/core/service/storage/alloc.go`):
/// `/spec/clusterIP`, `/spec/clusterIPs`, `/spec/ipFamilies` (and their
/// elements), `/spec/ports/*/nodePort`, `/spec/healthCheckNodePort`. Their
/// live values cannot be predicted, so the comparer must not report them as
/// drift when Git does not set them.
pub fn is_allocated_service_field(pointer: &str) -> bool {
    let segments: Vec<&str> = pointer.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "spec", "clusterIP" | "healthCheckNodePort"]
            | ["", "spec", "clusterIPs" | "ipFamilies", ..]
            | ["", "spec", "ports", _, "nodePort"]
    )
}

fn core(group: &str) -> &str {
    if group == "core" {
        ""
    } else {
        group
    }
}

// ---------------------------------------------------------------------------
// JSON helpers. "Unset" is what a Go pointer or zero value would be after
// decoding: missing or null.

fn is_unset(value: Option<&Value>) -> bool {
    matches!(value, None | Some(Value::Null))
}

/// A plain Go string field is defaulted when `""` too.
fn is_empty_string(value: Option<&Value>) -> bool {
    is_unset(value) || value.and_then(Value::as_str) == Some("")
}

/// A plain Go int field is defaulted when `0` too.
fn is_zero_int(value: Option<&Value>) -> bool {
    is_unset(value) || value.and_then(Value::as_i64) == Some(0)
}

/// A Go slice or map checked with `len(x) == 0`.
fn is_empty_collection(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(entries)) => entries.is_empty(),
        Some(_) => false,
    }
}

fn set_if_unset(m: &mut Object, key: &str, value: Value) {
    if is_unset(m.get(key)) {
        m.insert(key.to_string(), value);
    }
}

fn set_if_empty(m: &mut Object, key: &str, value: &str) {
    if is_empty_string(m.get(key)) {
        m.insert(key.to_string(), Value::from(value));
    }
}

fn set_if_zero(m: &mut Object, key: &str, value: i64) {
    if is_zero_int(m.get(key)) {
        m.insert(key.to_string(), Value::from(value));
    }
}

fn str_field<'a>(m: &'a Object, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// The child object under `key`, if there is one.
fn object_mut<'a>(m: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

fn object_path<'a>(m: &'a mut Object, path: &[&str]) -> Option<&'a mut Object> {
    path.iter()
        .try_fold(m, |current, key| object_mut(current, key))
}

/// The child object under `key`, created empty when unset: Go non-pointer
/// structs are always present, and defaulted pointers to structs start empty.
/// `None` when the key holds something else (an invalid manifest: left alone).
fn ensure_object<'a>(m: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    if is_unset(m.get(key)) {
        m.insert(key.to_string(), Value::Object(Map::new()));
    }
    object_mut(m, key)
}

fn for_each_object(m: &mut Object, key: &str, mut f: impl FnMut(&mut Object)) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

// ---------------------------------------------------------------------------
// Pod specs: pkg/apis/core/v1/defaults.go and the generated defaulters that
// every group with a PodTemplateSpec calls.

#[derive(Clone, Copy, PartialEq, Eq)]
enum PodSpecKind {
    /// A Pod object: gets `SetDefaults_Pod` on top of `SetDefaults_PodSpec`.
    Pod,
    /// A pod template in a workload.
    Template,
    /// A Job or CronJob template: `restartPolicy` must be set in Git (the
    /// default `Always` is rejected by Job validation), so it is not added.
    JobTemplate,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The fields of `VolumeSource`: a volume with none of them gets `emptyDir`.
const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// `template` (a PodTemplateSpec) under `parent`; `create` for non-pointer
/// template fields (workloads), not for ReplicationController's pointer.
fn pod_template(parent: &mut Object, key: &str, kind: PodSpecKind, create: bool) {
    let template = if create {
        ensure_object(parent, key)
    } else {
        object_mut(parent, key)
    };
    if let Some(spec) = template.and_then(|t| ensure_object(t, "spec")) {
        pod_spec(spec, kind);
    }
}

/// `SetDefaults_PodSpec` plus what the generated defaulter applies to its
/// containers and volumes.
fn pod_spec(spec: &mut Object, kind: PodSpecKind) {
    set_if_empty(spec, "dnsPolicy", "ClusterFirst");
    if kind != PodSpecKind::JobTemplate {
        set_if_empty(spec, "restartPolicy", "Always");
    }
    set_if_unset(spec, "securityContext", json!({}));
    set_if_unset(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_empty(spec, "schedulerName", "default-scheduler");
    for list in CONTAINER_LISTS {
        for_each_object(spec, list, container);
    }
    for_each_object(spec, "volumes", volume);
    if kind == PodSpecKind::Pod {
        pod_only(spec);
    }
}

/// `SetDefaults_Pod`: only Pod objects, never templates. Admission-time
/// additions (service account, priority, tolerations, token volume) depend on
/// the cluster and are not predicted.
fn pod_only(spec: &mut Object) {
    set_if_unset(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        for_each_object(spec, list, requests_from_limits);
    }
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        // defaultHostNetworkPorts: hostPort follows containerPort.
        for list in ["containers", "initContainers"] {
            for_each_object(spec, list, |c| {
                for_each_object(c, "ports", |port| {
                    let container_port = port
                        .get("containerPort")
                        .filter(|v| v.as_i64().is_some_and(|n| n != 0))
                        .cloned();
                    if let Some(container_port) = container_port {
                        if is_zero_int(port.get("hostPort")) {
                            port.insert("hostPort".to_string(), container_port);
                        }
                    }
                });
            });
        }
    }
}

/// A Pod container's missing requests default to its limits.
fn requests_from_limits(c: &mut Object) {
    let Some(resources) = object_mut(c, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object) else {
        return;
    };
    let requests = resources.get("requests").and_then(Value::as_object);
    let missing: Vec<(String, Value)> = limits
        .iter()
        .filter(|(name, _)| !requests.is_some_and(|r| r.contains_key(*name)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if missing.is_empty() {
        return;
    }
    if let Some(requests) = ensure_object(resources, "requests") {
        requests.extend(missing);
    }
}

/// `SetDefaults_Container` (also used for ephemeral containers) and the
/// defaults of its nested types.
fn container(c: &mut Object) {
    if is_empty_string(c.get("imagePullPolicy")) {
        let policy = image_pull_policy(str_field(c, "image").unwrap_or(""));
        c.insert("imagePullPolicy".to_string(), Value::from(policy));
    }
    set_if_empty(c, "terminationMessagePath", "/dev/termination-log");
    set_if_empty(c, "terminationMessagePolicy", "File");
    // ResourceRequirements is a non-pointer struct: always serialised.
    set_if_unset(c, "resources", json!({}));
    // ContainerPort.Protocol: +default="TCP".
    for_each_object(c, "ports", |p| set_if_empty(p, "protocol", "TCP"));
    for_each_object(c, "env", |env| {
        if let Some(source) = object_mut(env, "valueFrom") {
            field_selectors(source);
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = object_mut(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = object_mut(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(get) = object_path(lifecycle, &[hook, "httpGet"]) {
                http_get(get);
            }
        }
    }
}

/// `fieldRef.apiVersion` (`SetDefaults_ObjectFieldSelector`) and
/// `resourceFieldRef.divisor`, a non-pointer Quantity that serialises as "0".
fn field_selectors(holder: &mut Object) {
    if let Some(field_ref) = object_mut(holder, "fieldRef") {
        set_if_empty(field_ref, "apiVersion", "v1");
    }
    if let Some(resource_ref) = object_mut(holder, "resourceFieldRef") {
        set_if_unset(resource_ref, "divisor", json!("0"));
    }
}

/// `SetDefaults_Probe`: plain ints, so an explicit 0 is replaced too.
fn probe(p: &mut Object) {
    set_if_zero(p, "timeoutSeconds", 1);
    set_if_zero(p, "periodSeconds", 10);
    set_if_zero(p, "successThreshold", 1);
    set_if_zero(p, "failureThreshold", 3);
    if let Some(get) = object_mut(p, "httpGet") {
        http_get(get);
    }
    if let Some(grpc) = object_mut(p, "grpc") {
        // GRPCAction.Service: +default="" (zz_generated.defaults.go).
        set_if_unset(grpc, "service", json!(""));
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get(get: &mut Object) {
    set_if_empty(get, "path", "/");
    set_if_empty(get, "scheme", "HTTP");
}

/// `SetDefaults_Volume` and the defaulters of the volume sources.
fn volume(v: &mut Object) {
    if VOLUME_SOURCES.iter().all(|source| is_unset(v.get(*source))) {
        v.insert("emptyDir".to_string(), json!({}));
    }
    // 0644, for configMap, secret, downwardAPI and projected alike.
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = object_mut(v, source) {
            set_if_unset(s, "defaultMode", json!(420));
        }
    }
    if let Some(downward) = object_mut(v, "downwardAPI") {
        for_each_object(downward, "items", field_selectors);
    }
    if let Some(projected) = object_mut(v, "projected") {
        for_each_object(projected, "sources", |source| {
            if let Some(downward) = object_mut(source, "downwardAPI") {
                for_each_object(downward, "items", field_selectors);
            }
            if let Some(token) = object_mut(source, "serviceAccountToken") {
                // SetDefaults_ServiceAccountTokenProjection: one hour.
                set_if_unset(token, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(host_path) = object_mut(v, "hostPath") {
        // SetDefaults_HostPathVolumeSource: HostPathUnset.
        set_if_unset(host_path, "type", json!(""));
    }
    if let Some(template) = object_path(v, &["ephemeral", "volumeClaimTemplate"]) {
        if let Some(spec) = ensure_object(template, "spec") {
            claim_spec(spec);
        }
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`, plus the always-serialised
/// `resources` struct.
fn claim_spec(spec: &mut Object) {
    set_if_unset(spec, "volumeMode", json!("Filesystem"));
    set_if_unset(spec, "resources", json!({}));
}

/// The imagePullPolicy `SetDefaults_Container` picks: `Always` when the
/// reference's tag is `latest` or it has neither tag nor digest, else
/// `IfNotPresent` (also for references `parsers.ParseImageName` rejects).
fn image_pull_policy(image: &str) -> &'static str {
    if image_reference::effective_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

// ---------------------------------------------------------------------------
// Workloads: pkg/apis/apps/v1/defaults.go, pkg/apis/batch/v1/defaults.go.

fn deployment(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_unset(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_object(spec, "strategy") {
        set_if_empty(strategy, "type", "RollingUpdate");
        if str_field(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = ensure_object(strategy, "rollingUpdate") {
                set_if_unset(rolling, "maxUnavailable", json!("25%"));
                set_if_unset(rolling, "maxSurge", json!("25%"));
            }
        }
    }
    set_if_unset(spec, "revisionHistoryLimit", json!(10));
    set_if_unset(spec, "progressDeadlineSeconds", json!(600));
    pod_template(spec, "template", PodSpecKind::Template, true);
}

fn stateful_set(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_empty(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = ensure_object(spec, "updateStrategy") {
        if is_empty_string(strategy.get("type")) {
            strategy.insert("type".to_string(), json!("RollingUpdate"));
            set_if_unset(strategy, "rollingUpdate", json!({}));
        }
        // partition only where rollingUpdate exists (given, or created above).
        if str_field(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = object_mut(strategy, "rollingUpdate") {
                set_if_unset(rolling, "partition", json!(0));
            }
        }
    }
    // StatefulSetAutoDeletePVC (beta, on since 1.27).
    if let Some(policy) = ensure_object(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_empty(policy, "whenDeleted", "Retain");
        set_if_empty(policy, "whenScaled", "Retain");
    }
    set_if_unset(spec, "replicas", json!(1));
    set_if_unset(spec, "revisionHistoryLimit", json!(10));
    for_each_object(spec, "volumeClaimTemplates", |claim| {
        // The apps/v1 conversion writes the PVC TypeMeta; the generated
        // defaulter runs the PVC defaults, status phase included.
        set_if_empty(claim, "apiVersion", "v1");
        set_if_empty(claim, "kind", "PersistentVolumeClaim");
        if let Some(claim_spec_obj) = ensure_object(claim, "spec") {
            claim_spec(claim_spec_obj);
        }
        if let Some(status) = ensure_object(claim, "status") {
            set_if_empty(status, "phase", "Pending");
        }
    });
    pod_template(spec, "template", PodSpecKind::Template, true);
}

fn daemon_set(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    if let Some(strategy) = ensure_object(spec, "updateStrategy") {
        set_if_empty(strategy, "type", "RollingUpdate");
        if str_field(strategy, "type") == Some("RollingUpdate") {
            if let Some(rolling) = ensure_object(strategy, "rollingUpdate") {
                // Ints here, unlike Deployment's "25%" strings.
                set_if_unset(rolling, "maxUnavailable", json!(1));
                set_if_unset(rolling, "maxSurge", json!(0));
            }
        }
    }
    set_if_unset(spec, "revisionHistoryLimit", json!(10));
    pod_template(spec, "template", PodSpecKind::Template, true);
}

/// `SetDefaults_ReplicationController`: the selector defaults to the
/// template's labels (the labels copy to metadata is not added).
fn replication_controller(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        if is_empty_collection(spec.get("selector")) {
            spec.insert("selector".to_string(), labels);
        }
    }
    set_if_unset(spec, "replicas", json!(1));
    pod_template(spec, "template", PodSpecKind::Template, false);
}

/// `SetDefaults_Job` (1.29+ gates). The generated selector, the
/// controller-uid labels and the metadata labels copy depend on the UID and
/// are not added.
fn job_spec(spec: &mut Object) {
    if is_unset(spec.get("completions")) && is_unset(spec.get("parallelism")) {
        spec.insert("completions".to_string(), json!(1));
    }
    set_if_unset(spec, "parallelism", json!(1));
    if is_unset(spec.get("backoffLimit")) {
        let limit = if is_unset(spec.get("backoffLimitPerIndex")) {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".to_string(), json!(limit));
    }
    set_if_unset(spec, "completionMode", json!("NonIndexed"));
    set_if_unset(spec, "suspend", json!(false));
    let has_failure_policy = !is_unset(spec.get("podFailurePolicy"));
    if let Some(policy) = object_mut(spec, "podFailurePolicy") {
        for_each_object(policy, "rules", |rule| {
            for_each_object(rule, "onPodConditions", |c| {
                set_if_empty(c, "status", "True")
            });
        });
    }
    // JobPodReplacementPolicy (beta, on since 1.29).
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_if_unset(spec, "podReplacementPolicy", json!(replacement));
    set_if_unset(spec, "manualSelector", json!(false));
    pod_template(spec, "template", PodSpecKind::JobTemplate, true);
}

/// `SetDefaults_CronJob`. The job template gets pod template defaults only:
/// `SetDefaults_Job` takes a whole Job and is not run on `jobTemplate.spec`.
fn cron_job(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_empty(spec, "concurrencyPolicy", "Allow");
    set_if_unset(spec, "suspend", json!(false));
    set_if_unset(spec, "successfulJobsHistoryLimit", json!(3));
    set_if_unset(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec_obj) =
        ensure_object(spec, "jobTemplate").and_then(|t| ensure_object(t, "spec"))
    {
        pod_template(job_spec_obj, "template", PodSpecKind::JobTemplate, true);
    }
}

// ---------------------------------------------------------------------------
// Core kinds.

/// `SetDefaults_Service` plus the registry's IP-family defaulting
/// (`pkg/registry/core/service/storage/alloc.go`) and read-time cleanup
/// (`storage.go` defaultOnRead). Allocated values are not predicted.
fn service(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_empty(spec, "sessionAffinity", "None");
    match str_field(spec, "sessionAffinity") {
        // The server drops a config that has no effect.
        Some("None") => {
            spec.shift_remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let client_ip = ensure_object(spec, "sessionAffinityConfig")
                .and_then(|config| ensure_object(config, "clientIP"));
            if let Some(client_ip) = client_ip {
                set_if_unset(client_ip, "timeoutSeconds", json!(10800));
            }
        }
        _ => {}
    }
    set_if_empty(spec, "type", "ClusterIP");
    for_each_object(spec, "ports", |p| {
        set_if_empty(p, "protocol", "TCP");
        let target = p.get("targetPort");
        let missing = is_unset(target)
            || target.and_then(Value::as_i64) == Some(0)
            || target.and_then(Value::as_str) == Some("");
        let port = p.get("port").filter(|v| v.is_i64() || v.is_u64()).cloned();
        if let (true, Some(port)) = (missing, port) {
            p.insert("targetPort".to_string(), port);
        }
    });
    let service_type = str_field(spec, "type").unwrap_or("").to_string();
    let has_cluster_ip = matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    );
    let has_external_ips = !is_empty_collection(spec.get("externalIPs"));
    // service.ExternallyAccessible.
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        || (service_type == "ClusterIP" && has_external_ips)
    {
        set_if_empty(spec, "externalTrafficPolicy", "Cluster");
    }
    if has_cluster_ip {
        set_if_unset(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set_if_unset(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if service_type == "ExternalName" {
        // defaultOnRead drops it for ExternalName (kubernetes#118210).
        spec.shift_remove("internalTrafficPolicy");
    }
    if has_cluster_ip && is_unset(spec.get("ipFamilyPolicy")) {
        let count = |key: &str| spec.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        let headless_selectorless = str_field(spec, "clusterIP") == Some("None")
            && is_empty_collection(spec.get("selector"));
        let policy =
            if headless_selectorless || count("ipFamilies") == 2 || count("clusterIPs") == 2 {
                "RequireDualStack"
            } else {
                "SingleStack"
            };
        spec.insert("ipFamilyPolicy".to_string(), json!(policy));
    }
}

/// The `kubernetes` finalizer the namespace strategy adds on create
/// (`pkg/registry/core/namespace/strategy.go` PrepareForCreate): appended to
/// whatever Git lists, as the server does. The name label is metadata and not
/// added.
fn namespace(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    match spec.get_mut("finalizers") {
        None | Some(Value::Null) => {
            spec.insert("finalizers".to_string(), json!(["kubernetes"]));
        }
        Some(Value::Array(finalizers)) => {
            if !finalizers.iter().any(|f| f.as_str() == Some("kubernetes")) {
                finalizers.push(json!("kubernetes"));
            }
        }
        Some(_) => {}
    }
}

/// PVC spec defaults and the data source mirroring of
/// `pkg/api/persistentvolumeclaim` NormalizeDataSources (AnyVolumeDataSource,
/// on since 1.24). Finalizers, the default storage class and status are not
/// added.
fn persistent_volume_claim(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    claim_spec(spec);
    let source = spec.get("dataSource").and_then(Value::as_object).cloned();
    let source_ref = spec
        .get("dataSourceRef")
        .and_then(Value::as_object)
        .cloned();
    let copy = |from: &Object| {
        let mut to = Map::new();
        if let Some(group) = from.get("apiGroup").filter(|g| !g.is_null()) {
            to.insert("apiGroup".to_string(), group.clone());
        }
        for key in ["kind", "name"] {
            let value = from.get(key).filter(|v| !v.is_null()).cloned();
            to.insert(key.to_string(), value.unwrap_or_else(|| json!("")));
        }
        Value::Object(to)
    };
    match (source, source_ref) {
        (Some(source), None) => {
            spec.insert("dataSourceRef".to_string(), copy(&source));
        }
        (None, Some(source_ref)) if is_empty_string(source_ref.get("namespace")) => {
            spec.insert("dataSource".to_string(), copy(&source_ref));
        }
        _ => {}
    }
}

/// `SetDefaults_PersistentVolume` (status phase not added).
fn persistent_volume(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_empty(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_if_unset(spec, "volumeMode", json!("Filesystem"));
    if let Some(host_path) = object_mut(spec, "hostPath") {
        set_if_unset(host_path, "type", json!(""));
    }
}

/// `SetDefaults_LimitRangeItem`: for `type: Container`, `default` falls back
/// to `max`, `defaultRequest` to `default`, then to `min`.
fn limit_range(root: &mut Object) {
    let Some(spec) = object_mut(root, "spec") else {
        return;
    };
    for_each_object(spec, "limits", |item| {
        if str_field(item, "type") != Some("Container") {
            return;
        }
        let list = |item: &Object, key: &str| match item.get(key) {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => None,
        };
        let (Some(max), Some(min), Some(mut default), Some(mut default_request)) = (
            list(item, "max"),
            list(item, "min"),
            list(item, "default"),
            list(item, "defaultRequest"),
        ) else {
            return;
        };
        for (name, value) in max {
            default.entry(name).or_insert(value);
        }
        for (name, value) in &default {
            default_request
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        for (name, value) in min {
            default_request.entry(name).or_insert(value);
        }
        // Empty maps are omitted on output: only write what has entries.
        if !default.is_empty() {
            item.insert("default".to_string(), Value::Object(default));
        }
        if !default_request.is_empty() {
            item.insert("defaultRequest".to_string(), Value::Object(default_request));
        }
    });
}

fn fold_string_data(root: &mut Object) {
    normalize_base64_map(root, "data");
    let string_data = match root.get("stringData") {
        None => return,
        Some(Value::Null) => Map::new(),
        Some(Value::Object(entries)) => entries.clone(),
        // Not a map: the server would reject the Secret; leave it visible.
        Some(_) => return,
    };
    if !string_data.is_empty() {
        let Some(data) = ensure_object(root, "data") else {
            return;
        };
        for (key, value) in string_data {
            let text = match value {
                Value::String(s) => s,
                Value::Null => String::new(),
                _ => continue,
            };
            data.insert(key, Value::from(STANDARD.encode(text)));
        }
    }
    root.shift_remove("stringData");
}

/// Rewrites `[]byte` map values the way a Go decode/encode round trip does.
fn normalize_base64_map(root: &mut Object, key: &str) {
    // encoding/json uses base64.StdEncoding: padding required, line breaks
    // skipped, non-zero trailing bits accepted.
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let Some(map) = object_mut(root, key) else {
        return;
    };
    for value in map.values_mut() {
        if let Value::String(text) = value {
            let compact: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            if let Ok(bytes) = GO_STD.decode(compact.as_bytes()) {
                let canonical = STANDARD.encode(bytes);
                if canonical != *text {
                    *text = canonical;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Other groups.

/// autoscaling/v2 `SetDefaults_HorizontalPodAutoscaler`; for autoscaling/v1
/// only `minReplicas`.
fn horizontal_pod_autoscaler(root: &mut Object, v1: bool) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_unset(spec, "minReplicas", json!(1));
    if v1 {
        return;
    }
    if is_empty_collection(spec.get("metrics")) {
        spec.insert(
            "metrics".to_string(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}
                }
            }]),
        );
    }
    // Behavior is filled in only when present (GenerateHPAScale*Rules).
    if let Some(behavior) = object_mut(spec, "behavior") {
        if let Some(up) = ensure_object(behavior, "scaleUp") {
            set_if_unset(up, "stabilizationWindowSeconds", json!(0));
            set_if_unset(up, "selectPolicy", json!("Max"));
            set_if_unset(
                up,
                "policies",
                json!([
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]),
            );
        }
        if let Some(down) = ensure_object(behavior, "scaleDown") {
            // No stabilizationWindowSeconds: the controller flag decides.
            set_if_unset(down, "selectPolicy", json!("Max"));
            set_if_unset(
                down,
                "policies",
                json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
    }
}

/// networking/v1 `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`.
fn network_policy(root: &mut Object) {
    let Some(spec) = ensure_object(root, "spec") else {
        return;
    };
    set_if_unset(spec, "podSelector", json!({}));
    if is_empty_collection(spec.get("policyTypes")) {
        let mut types = vec![json!("Ingress")];
        if !is_empty_collection(spec.get("egress")) {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".to_string(), Value::Array(types));
    }
    for direction in ["ingress", "egress"] {
        for_each_object(spec, direction, |rule| {
            for_each_object(rule, "ports", |p| set_if_unset(p, "protocol", json!("TCP")));
        });
    }
}

/// admissionregistration/v1 `SetDefaults_ValidatingWebhook`/`MutatingWebhook`, `_Rule`
/// and `_ServiceReference`.
fn webhooks(root: &mut Object, mutating: bool) {
    for_each_object(root, "webhooks", |webhook| {
        set_if_unset(webhook, "failurePolicy", json!("Fail"));
        set_if_unset(webhook, "matchPolicy", json!("Equivalent"));
        set_if_unset(webhook, "namespaceSelector", json!({}));
        set_if_unset(webhook, "objectSelector", json!({}));
        set_if_unset(webhook, "timeoutSeconds", json!(10));
        if mutating {
            set_if_unset(webhook, "reinvocationPolicy", json!("Never"));
        }
        for_each_object(webhook, "rules", rule_scope);
        if let Some(service) = object_path(webhook, &["clientConfig", "service"]) {
            set_if_unset(service, "port", json!(443));
        }
    });
}

/// admissionregistration/v1 `SetDefaults_MatchResources` and the rules inside.
fn match_resources(resources: &mut Object) {
    set_if_unset(resources, "matchPolicy", json!("Equivalent"));
    set_if_unset(resources, "namespaceSelector", json!({}));
    set_if_unset(resources, "objectSelector", json!({}));
    for_each_object(resources, "resourceRules", rule_scope);
    for_each_object(resources, "excludeResourceRules", rule_scope);
}

/// admissionregistration/v1 `SetDefaults_Rule`: every scope.
fn rule_scope(rule: &mut Object) {
    set_if_unset(rule, "scope", json!("*"));
}

/// rbac/v1 `SetDefaults_RoleBinding`/`ClusterRoleBinding`/`Subject`.
fn role_binding(root: &mut Object) {
    const RBAC: &str = "rbac.authorization.k8s.io";
    if let Some(role_ref) = object_mut(root, "roleRef") {
        set_if_empty(role_ref, "apiGroup", RBAC);
    }
    for_each_object(root, "subjects", |subject| {
        if matches!(str_field(subject, "kind"), Some("User" | "Group")) {
            set_if_empty(subject, "apiGroup", RBAC);
        }
    });
}

// ---------------------------------------------------------------------------
// Quantities.

fn template_quantities(parent: &mut Object) {
    if let Some(spec) = object_path(parent, &["template", "spec"]) {
        pod_spec_quantities(spec);
    }
}

fn pod_spec_quantities(spec: &mut Object) {
    for list in CONTAINER_LISTS {
        for_each_object(spec, list, |c| {
            requirements(c, "resources");
            for_each_object(c, "env", |env| {
                if let Some(selector) = object_path(env, &["valueFrom", "resourceFieldRef"]) {
                    quantity_field(selector, "divisor");
                }
            });
        });
    }
    resource_list(spec, "overhead");
    requirements(spec, "resources");
    for_each_object(spec, "volumes", |v| {
        if let Some(empty_dir) = object_mut(v, "emptyDir") {
            quantity_field(empty_dir, "sizeLimit");
        }
        let divisors = |downward: &mut Object| {
            for_each_object(downward, "items", |item| {
                if let Some(selector) = object_mut(item, "resourceFieldRef") {
                    quantity_field(selector, "divisor");
                }
            });
        };
        if let Some(downward) = object_mut(v, "downwardAPI") {
            divisors(downward);
        }
        if let Some(projected) = object_mut(v, "projected") {
            for_each_object(projected, "sources", |source| {
                if let Some(downward) = object_mut(source, "downwardAPI") {
                    divisors(downward);
                }
            });
        }
        if let Some(claim) = object_path(v, &["ephemeral", "volumeClaimTemplate", "spec"]) {
            requirements(claim, "resources");
        }
    });
}

/// `limits` and `requests` of a ResourceRequirements under `key`.
fn requirements(m: &mut Object, key: &str) {
    if let Some(resources) = object_mut(m, key) {
        resource_list(resources, "limits");
        resource_list(resources, "requests");
    }
}

/// A ResourceList: every value canonical and rounded up to milli.
fn resource_list(m: &mut Object, key: &str) {
    if let Some(list) = object_mut(m, key) {
        for value in list.values_mut() {
            if let Some(q) = quantity::from_json(value) {
                *value = Value::from(q.round_up_milli().canonical());
            }
        }
    }
}

/// A single Quantity field: canonical, not rounded.
fn quantity_field(m: &mut Object, key: &str) {
    if let Some(value) = m.get_mut(key) {
        if let Some(canonical) = quantity::canonical_json(value) {
            *value = Value::from(canonical);
        }
    }
}

/// Container image references as `parsers.ParseImageName` reads them
/// (github.com/distribution/reference `ParseNormalizedNamed`).
mod image_reference {
    const DEFAULT_DOMAIN: &str = "docker.io";
    const NAME_TOTAL_LENGTH_MAX: usize = 255;

    /// The tag `ParseImageName` reports: the explicit tag, `latest` when the
    /// reference has neither tag nor digest, `""` for a digest alone; `None`
    /// when the reference does not parse.
    pub(super) fn effective_tag(image: &str) -> Option<String> {
        if image.len() == 64
            && image
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let (domain, remainder) = split_docker_domain(image);
        let remote_name = remainder.split(':').next().unwrap_or("");
        if remote_name.to_lowercase() != remote_name {
            return None;
        }
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (name_and_tag, None),
        };
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return None;
        }
        let domain_ok = is_domain_and_port(&domain) || is_path_component(&domain);
        if !domain_ok || !path.split('/').all(is_path_component) {
            return None;
        }
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return None;
            }
        }
        if let Some(digest) = digest {
            if !is_valid_digest(digest) {
                return None;
            }
        }
        Some(match (tag, digest) {
            (Some(tag), _) => tag.to_string(),
            (None, None) => "latest".to_string(),
            (None, Some(_)) => String::new(),
        })
    }

    /// `splitDockerDomain`: the registry part, or docker.io with `library/`
    /// for single-element names.
    fn split_docker_domain(name: &str) -> (String, String) {
        let (domain, remainder) = match name.split_once('/') {
            None => (DEFAULT_DOMAIN, name),
            Some(("localhost", rest)) => ("localhost", rest),
            Some(("index.docker.io", rest)) => (DEFAULT_DOMAIN, rest),
            Some((first, rest)) if first.contains(['.', ':']) || first.to_lowercase() != first => {
                (first, rest)
            }
            Some(_) => (DEFAULT_DOMAIN, name),
        };
        let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_string()
        };
        (domain.to_string(), remainder)
    }

    /// `host(:port)?` where host is a DNS-like name or a bracketed IPv6.
    fn is_domain_and_port(s: &str) -> bool {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return false;
            };
            if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return false;
            }
            match after {
                "" => ("[]", None),
                _ => match after.strip_prefix(':') {
                    Some(port) => ("[]", Some(port)),
                    None => return false,
                },
            }
        } else {
            match s.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            }
        };
        if let Some(port) = port {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
        }
        host == "[]"
            || host.split('.').all(|label| {
                let bytes = label.as_bytes();
                match (bytes.first(), bytes.last()) {
                    (Some(first), Some(last)) => {
                        first.is_ascii_alphanumeric()
                            && last.is_ascii_alphanumeric()
                            && bytes
                                .iter()
                                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                    }
                    _ => false,
                }
            })
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    fn is_path_component(s: &str) -> bool {
        let b = s.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let mut i = 0;
        loop {
            let start = i;
            while i < b.len() && alnum(b[i]) {
                i += 1;
            }
            if i == start {
                return false;
            }
            if i == b.len() {
                return true;
            }
            match b[i] {
                b'.' => i += 1,
                b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                b'-' => {
                    while i < b.len() && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
        }
    }

    /// `[\w][\w.-]{0,127}`
    fn is_tag(s: &str) -> bool {
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && word(b[0])
            && b[1..].iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
    }

    /// The digest grammar, then go-digest `Validate`: only registered
    /// algorithms with their exact lowercase-hex length.
    fn is_valid_digest(s: &str) -> bool {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return false;
        };
        let length = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return false,
        };
        encoded.len() == length
            && encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn defaulted(group: &str, kind: &str, manifest: Value) -> Value {
        let mut obj = manifest;
        apply_defaults(group, kind, &mut obj);
        // Idempotent: a second pass changes nothing.
        let mut again = obj.clone();
        apply_defaults(group, kind, &mut again);
        assert_eq!(again, obj, "apply_defaults is not idempotent for {kind}");
        obj
    }

    /// What every container in a template gets.
    fn container_defaults(name: &str, image: &str, policy: &str) -> Value {
        json!({
            "name": name,
            "image": image,
            "imagePullPolicy": policy,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "resources": {}
        })
    }

    /// What every template pod spec gets, around the given containers.
    fn pod_spec_defaults(containers: Value, restart_policy: Option<&str>) -> Value {
        let mut spec = json!({
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
            "schedulerName": "default-scheduler"
        });
        if let (Some(policy), Some(m)) = (restart_policy, spec.as_object_mut()) {
            m.insert("restartPolicy".to_string(), json!(policy));
        }
        spec
    }

    fn nginx_template(restart_policy: Option<&str>) -> Value {
        let mut spec = json!({"containers": [{"name": "web", "image": "nginx:1.25"}]});
        if let (Some(policy), Some(m)) = (restart_policy, spec.as_object_mut()) {
            m.insert("restartPolicy".to_string(), json!(policy));
        }
        json!({"metadata": {"labels": {"app": "web"}}, "spec": spec})
    }

    fn nginx_template_defaulted(restart_policy: &str) -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": pod_spec_defaults(
                json!([container_defaults("web", "nginx:1.25", "IfNotPresent")]),
                Some(restart_policy)
            )
        })
    }

    #[test]
    fn deployment() {
        let got = defaulted(
            "apps",
            "Deployment",
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80}],
                            "resources": {
                                "requests": {"cpu": 0.5, "memory": "128Mi"},
                                "limits": {"cpu": 1, "memory": "0.5Gi"}
                            }
                        }]}
                    }
                }
            }),
        );
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"}
                            },
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent"
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {},
                        "schedulerName": "default-scheduler"
                    }
                }
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn deployment_recreate_gets_no_rolling_update() {
        let got = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}, "template": nginx_template(None)}}),
        );
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn stateful_set() {
        let got = defaulted(
            "apps",
            "StatefulSet",
            json!({
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "serviceName": "db",
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": nginx_template(None),
                    "volumeClaimTemplates": [{
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1024Mi"}}
                        }
                    }]
                }
            }),
        );
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "web"}},
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": "Retain",
                    "whenScaled": "Retain"
                },
                "template": nginx_template_defaulted("Always"),
                "volumeClaimTemplates": [{
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                        "volumeMode": "Filesystem"
                    },
                    "status": {"phase": "Pending"}
                }]
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn stateful_set_update_strategy_variants() {
        // type alone: no rollingUpdate is created.
        let got = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        );
        assert_eq!(
            got["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        // rollingUpdate given: partition filled in.
        let got = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}}),
        );
        assert_eq!(
            got["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2, "partition": 0}})
        );
        let got = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(got["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn daemon_set() {
        let got = defaulted(
            "apps",
            "DaemonSet",
            json!({
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "agent"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": nginx_template(None)
                }
            }),
        );
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}
                },
                "revisionHistoryLimit": 10,
                "template": nginx_template_defaulted("Always")
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn replica_set_and_replication_controller() {
        let got = defaulted(
            "apps",
            "ReplicaSet",
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": nginx_template(None)}}),
        );
        assert_eq!(
            got,
            json!({"spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": nginx_template_defaulted("Always")
            }})
        );
        let got = defaulted(
            "",
            "ReplicationController",
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": nginx_template(None)}}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {
                "replicas": 1,
                "selector": {"app": "web"},
                "template": nginx_template_defaulted("Always")
            }})
        );
    }

    #[test]
    fn pod_template_kind() {
        let got = defaulted(
            "core",
            "PodTemplate",
            json!({"apiVersion": "v1", "kind": "PodTemplate", "template": nginx_template(None)}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "PodTemplate", "template": nginx_template_defaulted("Always")})
        );
    }

    #[test]
    fn job() {
        let got = defaulted(
            "batch",
            "Job",
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "migrate"},
                "spec": {"template": nginx_template(Some("Never"))}
            }),
        );
        let expected = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate"},
            "spec": {
                "parallelism": 1,
                "completions": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": false,
                "manualSelector": false,
                "podReplacementPolicy": "TerminatingOrFailed",
                "template": nginx_template_defaulted("Never")
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn job_rules() {
        let spec = |s: Value| defaulted("batch", "Job", json!({"spec": s}))["spec"].clone();
        // Only parallelism given: completions stays unset.
        let got = spec(json!({"parallelism": 3}));
        assert_eq!(got["parallelism"], json!(3));
        assert!(got.get("completions").is_none());
        // Only completions given: parallelism 1.
        let got = spec(json!({"completions": 5}));
        assert_eq!(
            (got["completions"].clone(), got["parallelism"].clone()),
            (json!(5), json!(1))
        );
        // backoffLimitPerIndex moves the backoffLimit default to MaxInt32.
        let got =
            spec(json!({"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1}));
        assert_eq!(got["backoffLimit"], json!(2147483647));
        assert_eq!(got["completionMode"], json!("Indexed"));
        // A pod failure policy: rule statuses, and Failed replacement.
        let got = spec(json!({"podFailurePolicy": {"rules": [{
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget"}, {"type": "Ready", "status": "False"}]
        }]}}));
        assert_eq!(
            got["podFailurePolicy"]["rules"][0]["onPodConditions"],
            json!([{"type": "DisruptionTarget", "status": "True"}, {"type": "Ready", "status": "False"}])
        );
        assert_eq!(got["podReplacementPolicy"], json!("Failed"));
        // The template's restartPolicy is never invented for Jobs.
        let got = spec(json!({"template": {"spec": {"containers": []}}}));
        assert!(got["template"]["spec"].get("restartPolicy").is_none());
    }

    #[test]
    fn cron_job() {
        let got = defaulted(
            "batch",
            "CronJob",
            json!({
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "nightly"},
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {"spec": {"template": nginx_template(Some("OnFailure"))}}
                }
            }),
        );
        let expected = json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 3 * * *",
                "concurrencyPolicy": "Allow",
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": nginx_template_defaulted("OnFailure")}}
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn pod_object() {
        let got = defaulted(
            "",
            "Pod",
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "debug"},
                "spec": {
                    "hostNetwork": true,
                    "containers": [{
                        "name": "shell",
                        "image": "busybox",
                        "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9191}],
                        "resources": {"limits": {"cpu": "0.25", "memory": "64Mi"}, "requests": {"cpu": "100m"}}
                    }]
                }
            }),
        );
        let expected = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "debug"},
            "spec": {
                "hostNetwork": true,
                "containers": [{
                    "name": "shell",
                    "image": "busybox",
                    "ports": [
                        {"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"},
                        {"containerPort": 9090, "hostPort": 9191, "protocol": "TCP"}
                    ],
                    "resources": {
                        "limits": {"cpu": "250m", "memory": "64Mi"},
                        "requests": {"cpu": "100m", "memory": "64Mi"}
                    },
                    "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
                "enableServiceLinks": true
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn templates_get_no_pod_only_defaults() {
        let got = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"template": {"spec": {
                "hostNetwork": true,
                "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 80}],
                                "resources": {"limits": {"cpu": "1"}}}]
            }}}}),
        );
        let spec = &got["spec"]["template"]["spec"];
        assert!(spec.get("enableServiceLinks").is_none());
        assert!(spec["containers"][0]["ports"][0].get("hostPort").is_none());
        assert!(spec["containers"][0]["resources"].get("requests").is_none());
    }

    #[test]
    fn containers_probes_env_and_volumes() {
        let got = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "image": "registry.example.com:5000/tools/init"}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}],
                "containers": [{
                    "name": "app",
                    "image": "ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    "env": [
                        {"name": "A", "value": "x"},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1000m"}}}
                    ],
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5, "timeoutSeconds": 0},
                    "startupProbe": {"grpc": {"port": 9000}, "failureThreshold": 30},
                    "lifecycle": {
                        "preStop": {"httpGet": {"port": 8080, "path": "/drain"}},
                        "postStart": {"exec": {"command": ["true"]}}
                    }
                }],
                "volumes": [
                    {"name": "scratch"},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1024Mi"}},
                    {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
                    {"name": "host", "hostPath": {"path": "/var/log"}},
                    {"name": "info", "downwardAPI": {"items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1048576"}}
                    ]}},
                    {"name": "token", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                        {"configMap": {"name": "ca"}}
                    ]}},
                    {"name": "cache", "ephemeral": {"volumeClaimTemplate": {"spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": 1073741824}}
                    }}}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
                ]
            }}}}),
        );
        let spec = &got["spec"]["template"]["spec"];
        assert_eq!(
            spec["initContainers"][0],
            container_defaults("init", "registry.example.com:5000/tools/init", "Always")
        );
        assert_eq!(
            spec["ephemeralContainers"][0],
            container_defaults("debug", "busybox:latest", "Always")
        );
        let app = &spec["containers"][0];
        assert_eq!(app["imagePullPolicy"], json!("IfNotPresent"));
        assert_eq!(
            app["env"],
            json!([
                {"name": "A", "value": "x"},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "0"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}}
            ])
        );
        assert_eq!(
            app["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            app["readinessProbe"],
            json!({"tcpSocket": {"port": "http"},
                   "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            app["startupProbe"],
            json!({"grpc": {"port": 9000, "service": ""},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 30})
        );
        assert_eq!(
            app["lifecycle"],
            json!({
                "preStop": {"httpGet": {"port": 8080, "path": "/drain", "scheme": "HTTP"}},
                "postStart": {"exec": {"command": ["true"]}}
            })
        );
        assert_eq!(
            spec["volumes"],
            json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
                {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
                {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"}},
                    {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1048576"}}
                ]}},
                {"name": "token", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                    {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace", "apiVersion": "v1"}}]}},
                    {"configMap": {"name": "ca"}}
                ]}},
                {"name": "cache", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1073741824"}},
                    "volumeMode": "Filesystem"
                }}}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
            ])
        );
    }

    #[test]
    fn image_pull_policies() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("nginx:Latest", "IfNotPresent"),
            ("library/nginx", "Always"),
            ("docker.io/library/nginx:latest", "Always"),
            ("index.docker.io/nginx", "Always"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("localhost/app", "Always"),
            ("registry.example.com:443/team/app:2.0.1", "IfNotPresent"),
            ("[::1]:5000/app", "Always"),
            ("quay.io/prometheus/node-exporter", "Always"),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "Always",
            ),
            (
                "nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            // Invalid references: the error is ignored and the tag is empty.
            ("nginx@sha256:abc", "IfNotPresent"),
            ("Nginx", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
            ("", "IfNotPresent"),
            (" nginx", "IfNotPresent"),
            ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"),
            ("Registry.Example.com/app", "Always"),
            ("a_b.c/app", "Always"),
            ("app__x", "Always"),
            ("app___x", "IfNotPresent"),
        ] {
            assert_eq!(image_pull_policy(image), policy, "{image:?}");
        }
    }

    #[test]
    fn services() {
        let svc = |spec: Value| {
            defaulted(
                "",
                "Service",
                json!({"apiVersion": "v1", "kind": "Service", "spec": spec}),
            )["spec"]
                .clone()
        };
        assert_eq!(
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
            json!({
                "selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack"
            })
        );
        assert_eq!(
            svc(json!({"type": "NodePort", "selector": {"app": "web"},
                       "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                 {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 0},
                                 {"name": "x", "port": 81, "targetPort": ""}]})),
            json!({
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "x", "port": 81, "targetPort": 81, "protocol": "TCP"}
                ],
                "sessionAffinity": "None",
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack"
            })
        );
        assert_eq!(
            svc(
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 443, "targetPort": 8443}]})
            ),
            json!({
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "allocateLoadBalancerNodePorts": true,
                "ipFamilyPolicy": "SingleStack"
            })
        );
        assert_eq!(
            svc(
                json!({"type": "ExternalName", "externalName": "db.example.com", "internalTrafficPolicy": "Cluster"})
            ),
            json!({"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"})
        );
        assert_eq!(
            svc(json!({"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}))
                ["ipFamilyPolicy"],
            json!("SingleStack")
        );
        assert_eq!(
            svc(json!({"clusterIP": "None", "ports": [{"port": 5432}]}))["ipFamilyPolicy"],
            json!("RequireDualStack")
        );
        assert_eq!(
            svc(json!({"ipFamilies": ["IPv4", "IPv6"], "ports": [{"port": 80}]}))["ipFamilyPolicy"],
            json!("RequireDualStack")
        );
        assert_eq!(
            svc(json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}))
                ["ipFamilyPolicy"],
            json!("PreferDualStack")
        );
        // ClientIP affinity: timeout filled in; None affinity drops a config.
        assert_eq!(
            svc(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}))
                ["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        assert_eq!(
            svc(
                json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}})
            )["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 60}})
        );
        assert!(
            svc(json!({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}))
                .get("sessionAffinityConfig")
                .is_none()
        );
        // externalIPs make a ClusterIP service externally accessible.
        assert_eq!(
            svc(json!({"externalIPs": ["203.0.113.7"], "ports": [{"port": 80}]}))
                ["externalTrafficPolicy"],
            json!("Cluster")
        );
        // Allocated fields are never invented.
        let spec = svc(json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
        for key in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "healthCheckNodePort",
        ] {
            assert!(spec.get(key).is_none(), "{key}");
        }
        assert!(spec["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn allocated_service_fields() {
        for pointer in [
            "/spec/clusterIP",
            "/spec/clusterIPs",
            "/spec/clusterIPs/0",
            "/spec/ipFamilies",
            "/spec/ipFamilies/1",
            "/spec/ports/0/nodePort",
            "/spec/ports/http/nodePort",
            "/spec/healthCheckNodePort",
        ] {
            assert!(is_allocated_service_field(pointer), "{pointer}");
        }
        for pointer in [
            "",
            "/spec",
            "/spec/ports/0/port",
            "/spec/ports/0",
            "/spec/clusterIPsX",
            "/spec/ipFamilyPolicy",
            "/status/loadBalancer",
            "/spec/ports/0/nodePort/x",
            "spec/clusterIP",
        ] {
            assert!(!is_allocated_service_field(pointer), "{pointer}");
        }
    }

    #[test]
    fn namespace() {
        let got = defaulted(
            "",
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"},
                   "spec": {"finalizers": ["kubernetes"]}})
        );
        let got = defaulted(
            "",
            "Namespace",
            json!({"spec": {"finalizers": ["example.com/cleanup"]}}),
        );
        assert_eq!(
            got["spec"]["finalizers"],
            json!(["example.com/cleanup", "kubernetes"])
        );
    }

    #[test]
    fn persistent_volume_claim() {
        let got = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "10G"}, "limits": {"storage": 21474836480u64}},
                    "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}
                }
            }),
        );
        let expected = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10G"}, "limits": {"storage": "21474836480"}},
                "volumeMode": "Filesystem",
                "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
                "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}
            }
        });
        assert_eq!(got, expected);
        let got = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "src"}}}),
        );
        assert_eq!(
            got["spec"]["dataSource"],
            json!({"kind": "PersistentVolumeClaim", "name": "src"})
        );
        let got = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "src", "namespace": "other"}}}),
        );
        assert!(got["spec"].get("dataSource").is_none());
    }

    #[test]
    fn persistent_volume_storage_class_priority_class() {
        let got = defaulted(
            "",
            "PersistentVolume",
            json!({"spec": {"capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data"}, "accessModes": ["ReadWriteOnce"]}}),
        );
        assert_eq!(
            got,
            json!({"spec": {"capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data", "type": ""},
                            "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                            "volumeMode": "Filesystem"}})
        );
        let got = defaulted(
            "storage.k8s.io",
            "StorageClass",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "ebs.csi.aws.com"}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "ebs.csi.aws.com",
                   "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
        );
        let got = defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 1000}));
        assert_eq!(
            got,
            json!({"value": 1000, "preemptionPolicy": "PreemptLowerPriority"})
        );
    }

    #[test]
    fn network_policy() {
        let got = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-web"},
                "spec": {"ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]}
            }),
        );
        let expected = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-web"},
            "spec": {
                "podSelector": {},
                "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}],
                "policyTypes": ["Ingress"]
            }
        });
        assert_eq!(got, expected);
        let got = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {"matchLabels": {"a": "b"}}, "egress": [{"ports": [{"port": 443}]}]}}),
        );
        assert_eq!(got["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(
            got["spec"]["egress"][0]["ports"][0]["protocol"],
            json!("TCP")
        );
        let got = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}}),
        );
        assert_eq!(got["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn horizontal_pod_autoscaler() {
        let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
        let got = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "spec": {"scaleTargetRef": target, "maxReplicas": 5}}),
        );
        assert_eq!(
            got,
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {
                "scaleTargetRef": target,
                "minReplicas": 1,
                "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                             "target": {"type": "Utilization", "averageUtilization": 80}}}]
            }})
        );
        let got = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v2", "spec": {
                "scaleTargetRef": target, "minReplicas": 2, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "memory",
                             "target": {"type": "AverageValue", "averageValue": "1024Mi"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}
            }}),
        );
        assert_eq!(
            got["spec"],
            json!({
                "scaleTargetRef": target, "minReplicas": 2, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "memory",
                             "target": {"type": "AverageValue", "averageValue": "1Gi"}}}],
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                             {"type": "Percent", "value": 100, "periodSeconds": 15}]}
                }
            })
        );
        let got = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"apiVersion": "autoscaling/v1", "spec": {"scaleTargetRef": target, "maxReplicas": 3}}),
        );
        assert_eq!(
            got["spec"],
            json!({"scaleTargetRef": target, "maxReplicas": 3, "minReplicas": 1})
        );
    }

    #[test]
    fn role_bindings() {
        let manifest = |kind: &str| {
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": "readers"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [
                    {"kind": "User", "name": "alice"},
                    {"kind": "Group", "name": "devs"},
                    {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}
                ]
            })
        };
        for kind in ["RoleBinding", "ClusterRoleBinding"] {
            let got = defaulted("rbac.authorization.k8s.io", kind, manifest(kind));
            assert_eq!(
                got,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": kind,
                    "metadata": {"name": "readers"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                    "subjects": [
                        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                        {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
                        {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}
                    ]
                })
            );
        }
    }

    #[test]
    fn secrets() {
        let got = defaulted(
            "",
            "Secret",
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "data": {"user": "YWRtaW4=", "pass": "b2xk", "wrapped": "aGVs\nbG8=", "odd": "aGVsbG9="},
                "stringData": {"pass": "s3cret", "token": "t"}
            }),
        );
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds"},
                "type": "Opaque",
                "data": {"user": "YWRtaW4=", "pass": "czNjcmV0", "wrapped": "aGVsbG8=", "odd": "aGVsbG8=", "token": "dA=="}
            })
        );
        let got = defaulted(
            "",
            "Secret",
            json!({"type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}}),
        );
        assert_eq!(
            got,
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})
        );
        let mut only = json!({"stringData": null, "data": {"a": "not base64!"}});
        secret_string_data_to_data(&mut only);
        assert_eq!(only, json!({"data": {"a": "not base64!"}}));
    }

    #[test]
    fn limit_range() {
        let got = defaulted(
            "",
            "LimitRange",
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "0.1m"},
                 "default": {"memory": "512Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ]}}),
        );
        assert_eq!(
            got,
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "1m"},
                 "default": {"memory": "512Mi", "cpu": "2"},
                 "defaultRequest": {"memory": "512Mi", "cpu": "2"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ]}})
        );
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        for (group, kind, manifest) in [
            (
                "networking.k8s.io",
                "Ingress",
                json!({"spec": {"rules": [{"host": "a.example.com"}]}}),
            ),
            ("", "ConfigMap", json!({"data": {"a": "1"}})),
            ("", "ServiceAccount", json!({"metadata": {"name": "ci"}})),
            (
                "policy",
                "PodDisruptionBudget",
                json!({"spec": {"minAvailable": 1}}),
            ),
            (
                "example.com",
                "Widget",
                json!({"spec": {"size": "1000m", "replicas": null}}),
            ),
            ("apps", "Widget", json!({"spec": {}})),
            ("", "Deployment", json!({"spec": {}})),
        ] {
            let got = defaulted(group, kind, manifest.clone());
            assert_eq!(got, manifest, "{group}/{kind}");
        }
        let got = defaulted("", "ConfigMap", json!({"binaryData": {"b": "AQI\r\n="}}));
        assert_eq!(got, json!({"binaryData": {"b": "AQI="}}));
    }

    #[test]
    fn explicit_values_are_never_overwritten() {
        let manifest = json!({
            "spec": {
                "replicas": 0,
                "revisionHistoryLimit": 3,
                "progressDeadlineSeconds": 120,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"spec": {
                    "dnsPolicy": "Default",
                    "restartPolicy": "Always",
                    "securityContext": {"runAsNonRoot": true},
                    "terminationGracePeriodSeconds": 0,
                    "schedulerName": "custom",
                    "containers": [{
                        "name": "c",
                        "image": "nginx:latest",
                        "imagePullPolicy": "Never",
                        "terminationMessagePath": "/var/log/app-termination",
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "resources": {"limits": {"cpu": "2"}},
                        "ports": [{"containerPort": 53, "protocol": "UDP"}],
                        "env": [{"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                        "livenessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 5,
                                          "periodSeconds": 20, "successThreshold": 1, "failureThreshold": 6},
                        "readinessProbe": {"httpGet": {"port": 80, "path": "/ready", "scheme": "HTTPS"},
                                           "timeoutSeconds": 2, "periodSeconds": 3, "successThreshold": 2,
                                           "failureThreshold": 4}
                    }],
                    "volumes": [
                        {"name": "a", "secret": {"secretName": "s", "defaultMode": 384}},
                        {"name": "b", "hostPath": {"path": "/x", "type": "Directory"}},
                        {"name": "c", "projected": {"defaultMode": 292, "sources": [
                            {"serviceAccountToken": {"path": "t", "expirationSeconds": 600}}
                        ]}}
                    ]
                }}
            }
        });
        let got = defaulted("apps", "Deployment", manifest.clone());
        assert_eq!(got["spec"]["replicas"], manifest["spec"]["replicas"]);
        assert_eq!(got["spec"]["strategy"], manifest["spec"]["strategy"]);
        assert_eq!(got["spec"]["template"], manifest["spec"]["template"]);
        assert_eq!(got["spec"]["revisionHistoryLimit"], json!(3));
        assert_eq!(got["spec"]["progressDeadlineSeconds"], json!(120));
    }

    #[test]
    fn nulls_count_as_absent() {
        let got = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"replicas": null, "strategy": null, "template": {"spec": {
                "securityContext": null,
                "containers": [{"name": "c", "image": "x:1", "resources": null, "imagePullPolicy": ""}]
            }}}}),
        );
        assert_eq!(got["spec"]["replicas"], json!(1));
        assert_eq!(got["spec"]["strategy"]["type"], json!("RollingUpdate"));
        assert_eq!(
            got["spec"]["template"]["spec"]["securityContext"],
            json!({})
        );
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({})
        );
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            json!("IfNotPresent")
        );
    }

    #[test]
    fn not_an_object_is_left_alone() {
        for mut value in [json!(null), json!([1, 2]), json!("x")] {
            let before = value.clone();
            apply_defaults("apps", "Deployment", &mut value);
            canonicalize_quantities("", "Pod", &mut value);
            secret_string_data_to_data(&mut value);
            assert_eq!(value, before);
        }
        // Wrongly typed fields are not replaced.
        let got = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"template": "oops", "strategy": 3}}),
        );
        assert_eq!(got["spec"]["template"], json!("oops"));
        assert_eq!(got["spec"]["strategy"], json!(3));
    }

    #[test]
    fn octal_file_modes_from_yaml_1_1() {
        let mut deployment = json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "a", "configMap": {"name": "a", "defaultMode": "0644"}},
            {"name": "b", "secret": {"secretName": "b", "defaultMode": "0400",
                "items": [{"key": "k", "path": "k", "mode": "0_440"}]}},
            {"name": "c", "projected": {"defaultMode": 420, "sources": [
                {"configMap": {"name": "c", "items": [{"key": "k", "path": "k", "mode": "0755"}]}}]}},
            {"name": "d", "secret": {"secretName": "d", "defaultMode": "644"}},
            {"name": "e", "secret": {"secretName": "e", "defaultMode": "0800"}}
        ]}}}});
        octal_file_modes("apps", "Deployment", &mut deployment);
        let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
        assert_eq!(volumes[0]["configMap"]["defaultMode"], json!(420));
        assert_eq!(volumes[1]["secret"]["defaultMode"], json!(256));
        assert_eq!(volumes[1]["secret"]["items"][0]["mode"], json!(288));
        assert_eq!(volumes[2]["projected"]["defaultMode"], json!(420));
        assert_eq!(
            volumes[2]["projected"]["sources"][0]["configMap"]["items"][0]["mode"],
            json!(493)
        );
        // Not a YAML 1.1 octal literal: left for the comparison to show.
        assert_eq!(volumes[3]["secret"]["defaultMode"], json!("644"));
        assert_eq!(volumes[4]["secret"]["defaultMode"], json!("0800"));
        let mut cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "volumes": [{"name": "s", "secret": {"secretName": "s", "defaultMode": "0600"}}]}}}}}});
        octal_file_modes("batch", "CronJob", &mut cron);
        assert_eq!(
            cron.pointer("/spec/jobTemplate/spec/template/spec/volumes/0/secret/defaultMode"),
            Some(&json!(384))
        );
        let mut config_map = json!({"data": {"defaultMode": "0644"}});
        octal_file_modes("", "ConfigMap", &mut config_map);
        assert_eq!(config_map["data"]["defaultMode"], json!("0644"));
    }

    #[test]
    fn canonicalize_live_objects() {
        let mut quota = json!({"spec": {"hard": {"requests.cpu": 4, "requests.memory": "8192Mi", "pods": "10", "count/jobs": "x"}},
                               "status": {"used": {"requests.cpu": "0.5"}}});
        canonicalize_quantities("", "ResourceQuota", &mut quota);
        assert_eq!(
            quota,
            json!({"spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "10", "count/jobs": "x"}},
                   "status": {"used": {"requests.cpu": "500m"}}})
        );
        let mut pod = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "0.0001"}}}],
                                      "overhead": {"memory": "1e6"}}});
        canonicalize_quantities("", "Pod", &mut pod);
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1m"}}}],
                            "overhead": {"memory": "1e6"}}})
        );
        let mut cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"resources": {"limits": {"memory": "2048Ki"}}}]}}}}}});
        canonicalize_quantities("batch", "CronJob", &mut cron);
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["resources"]
                ["limits"]["memory"],
            json!("2Mi")
        );
    }

    fn container_spec() -> impl Strategy<Value = Value> {
        let image = prop::sample::select(vec![
            "nginx",
            "nginx:latest",
            "nginx:1.25",
            "localhost:5000/app",
            "ghcr.io/a/b:v1",
            "Bad",
            "",
        ]);
        let policy = prop::option::of(prop::sample::select(vec![
            "Always",
            "Never",
            "IfNotPresent",
            "",
        ]));
        let cpu = prop::option::of(prop_oneof![
            (0u32..4000).prop_map(|m| json!(format!("{m}m"))),
            (0u32..8).prop_map(|n| json!(n)),
            (1u32..100).prop_map(|n| json!(f64::from(n) / 10.0)),
        ]);
        let probe = prop::option::of((0i64..4, 0i64..4, any::<bool>()));
        let port = prop::option::of((
            1u16..1000,
            prop::option::of(prop::sample::select(vec!["TCP", "UDP", ""])),
        ));
        (image, policy, cpu, probe, port).prop_map(|(image, policy, cpu, probe, port)| {
            let mut c = json!({"name": "c", "image": image});
            let m = c.as_object_mut().expect("object");
            if let Some(policy) = policy {
                m.insert("imagePullPolicy".into(), json!(policy));
            }
            if let Some(cpu) = cpu {
                m.insert("resources".into(), json!({"requests": {"cpu": cpu}}));
            }
            if let Some((timeout, period, http)) = probe {
                let mut p = json!({"timeoutSeconds": timeout, "periodSeconds": period});
                let handler = if http {
                    json!({"httpGet": {"port": 80}})
                } else {
                    json!({"tcpSocket": {"port": 80}})
                };
                if let (Some(p), Some(h)) = (p.as_object_mut(), handler.as_object()) {
                    p.extend(h.clone());
                }
                m.insert("readinessProbe".into(), p);
            }
            if let Some((number, protocol)) = port {
                let mut p = json!({"containerPort": number});
                if let (Some(protocol), Some(p)) = (protocol, p.as_object_mut()) {
                    p.insert("protocol".into(), json!(protocol));
                }
                m.insert("ports".into(), json!([p]));
            }
            c
        })
    }

    proptest! {
        #[test]
        fn container_defaults_are_idempotent_and_keep_explicit_values(c in container_spec()) {
            let manifest = json!({"spec": {"template": {"spec": {"containers": [c.clone()]}}}});
            let got = defaulted("apps", "Deployment", manifest);
            let out = &got["spec"]["template"]["spec"]["containers"][0];
            // Every non-empty explicit string field survives.
            for key in ["name", "image", "imagePullPolicy"] {
                if let Some(v) = c.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    prop_assert_eq!(out[key].as_str(), Some(v));
                }
            }
            prop_assert!(matches!(out["imagePullPolicy"].as_str(), Some("Always" | "IfNotPresent" | "Never")));
            prop_assert!(out["resources"].is_object());
            if let Some(cpu) = c.pointer("/resources/requests/cpu") {
                let expected = quantity::from_json(cpu).map(|q| q.round_up_milli().canonical());
                prop_assert_eq!(out["resources"]["requests"]["cpu"].as_str(), expected.as_deref());
            }
            if let Some(p) = c.get("readinessProbe") {
                for (key, default) in [("timeoutSeconds", 1), ("periodSeconds", 10)] {
                    let given = p[key].as_i64().unwrap_or(0);
                    let want = if given == 0 { default } else { given };
                    prop_assert_eq!(out["readinessProbe"][key].as_i64(), Some(want));
                }
            }
            if let Some(protocol) = c.pointer("/ports/0/protocol").and_then(Value::as_str) {
                let want = if protocol.is_empty() { "TCP" } else { protocol };
                prop_assert_eq!(out["ports"][0]["protocol"].as_str(), Some(want));
            }
        }
    }
}
