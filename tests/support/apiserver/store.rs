//! The object store: every revision of every object under one global resourceVersion
//! counter, like etcd, so a paginated LIST can continue at the revision it started from and
//! a compacted revision answers 410.
//!
//! Writes do what the registry strategies and admission do on a real server: server
//! defaults (the project's own `apply_defaults`), uid, creationTimestamp, generation,
//! allocated Service IPs and node ports, status reset, managedFields.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use plumbline::diff::defaults::apply_defaults;
use serde_json::{json, Map, Value};

use super::fields::{self, FieldPath, Operation, Schema};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;

type ObjectKey = (String, String);

struct Revision {
    rv: u64,
    object: Option<Value>,
    /// The object as a LIST item (without `kind` and `apiVersion`), serialised once when
    /// it is written, as etcd keeps it encoded: every page that holds it reuses the bytes.
    listed: Vec<u8>,
}

impl Revision {
    fn new(rv: u64, object: Option<Value>) -> Revision {
        let listed = match &object {
            Some(object) => {
                let mut item = object.clone();
                if let Some(map) = item.as_object_mut() {
                    map.shift_remove("kind");
                    map.shift_remove("apiVersion");
                }
                serde_json::to_vec(&item).unwrap_or_default()
            }
            None => Vec::new(),
        };
        Revision { rv, object, listed }
    }
}

/// One page of a LIST: its `metadata` and the items' JSON, ready to be written out.
pub struct ListPage<'a> {
    kind: String,
    api_version: String,
    metadata: Map<String, Value>,
    items: Vec<&'a [u8]>,
}

impl ListPage<'_> {
    /// The page as the real server writes it: `{"kind","apiVersion","metadata","items"}`.
    pub fn to_json(&self) -> Vec<u8> {
        let head = json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": self.metadata,
        });
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        let size: usize = self.items.iter().map(|item| item.len() + 1).sum();
        out.reserve(size + 16);
        out.pop(); // the closing brace: the items follow
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Who writes and how: the `fieldManager`, `dryRun=All` and `force` of a request.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub field_manager: String,
    pub dry_run: bool,
    pub force: bool,
    /// Writes `kubectl.kubernetes.io/last-applied-configuration` first, as client-side
    /// `kubectl apply` does before it sends the object.
    pub last_applied: bool,
}

impl WriteOptions {
    pub fn manager(field_manager: &str) -> WriteOptions {
        WriteOptions {
            field_manager: field_manager.to_string(),
            dry_run: false,
            force: false,
            last_applied: false,
        }
    }
}

/// The query of a LIST.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

pub struct Store {
    pub types: Vec<ResourceType>,
    revision: u64,
    /// Revisions at or below this are compacted: continuing a list started there fails.
    compacted: u64,
    objects: BTreeMap<(String, String), BTreeMap<ObjectKey, Vec<Revision>>>,
    next_ip: u32,
    next_node_port: u32,
    /// Simulate the controllers that write status (Deployment).
    pub controllers: bool,
}

impl Store {
    pub fn new(controllers: bool) -> Store {
        let mut store = Store {
            types: resources::builtin(),
            revision: 0,
            compacted: 0,
            objects: BTreeMap::new(),
            next_ip: 10,
            next_node_port: 30000,
            controllers,
        };
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            // Fixed names into an empty store: this cannot fail.
            let _ = store.create_object(namespace, None, &WriteOptions::manager("kube-apiserver"));
        }
        store
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Makes every revision so far unusable for continuing a list (etcd compaction).
    pub fn compact(&mut self) {
        self.compacted = self.revision;
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type of a manifest, from its `apiVersion` and `kind`.
    pub fn type_of(&self, obj: &Value) -> Result<ResourceType, ApiError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no matches for kind \"{kind}\" in version \"{api_version}\""
                ))
            })
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn versions(&self, t: &ResourceType) -> Option<&BTreeMap<ObjectKey, Vec<Revision>>> {
        self.objects.get(&(t.group.clone(), t.plural.clone()))
    }

    /// The revision of an object that was current at `rv` (a deletion, if it was deleted).
    fn at(revisions: &[Revision], rv: u64) -> Option<&Revision> {
        revisions.iter().rev().find(|r| r.rv <= rv)
    }

    /// The current object, if it exists.
    pub fn current(&self, t: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        let revisions = self
            .versions(t)?
            .get(&(namespace.to_string(), name.to_string()))?;
        revisions.last().and_then(|r| r.object.as_ref())
    }

    pub fn get(&self, t: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.current(t, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.group, &t.plural, name))
    }

    fn put(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        rv: u64,
        object: Option<Value>,
    ) {
        self.objects
            .entry((t.group.clone(), t.plural.clone()))
            .or_default()
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .push(Revision::new(rv, object));
    }

    /// A LIST: one page in key order (namespace, then name) at one revision, items without
    /// `kind` and `apiVersion`, and a continue token that encodes that revision and the last key.
    pub fn list(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ListPage<'_>, ApiError> {
        let (at, start) = match &options.continue_token {
            Some(token) => {
                if options
                    .resource_version
                    .as_deref()
                    .is_some_and(|rv| !rv.is_empty())
                {
                    return Err(ApiError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let (rv, start) = decode_continue(token)?;
                if rv > 0 && rv <= self.compacted {
                    return Err(ApiError::expired(encode_continue(0, &start)));
                }
                (if rv == 0 { self.revision } else { rv }, Some(start))
            }
            None => (self.list_revision(options)?, None),
        };
        let mut items = Vec::new();
        let mut more = 0usize;
        let mut last_key = None;
        for ((ns, name), revisions) in self.versions(t).into_iter().flatten() {
            if namespace.is_some_and(|wanted| wanted != ns) {
                continue;
            }
            let all_namespaces = namespace.is_none() && t.namespaced;
            if start
                .as_ref()
                .is_some_and(|s| !comes_after(s, all_namespaces, ns, name))
            {
                continue;
            }
            let key = relative_key(all_namespaces, ns, name);
            let Some(revision) = Self::at(revisions, at) else {
                continue;
            };
            let Some(object) = &revision.object else {
                continue;
            };
            let metadata = object.get("metadata").and_then(Value::as_object);
            let labels = metadata
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object);
            if !options.labels.matches(labels) || !options.fields.matches(metadata) {
                continue;
            }
            if options.limit.is_some_and(|limit| items.len() >= limit) {
                more += 1;
                continue;
            }
            items.push(revision.listed.as_slice());
            last_key = Some(key);
        }
        let mut metadata = Map::new();
        metadata.insert("resourceVersion".to_string(), json!(at.to_string()));
        if more > 0 {
            if let Some(last) = last_key {
                metadata.insert("continue".to_string(), json!(encode_continue(at, &last)));
            }
            if options.labels.is_empty() && options.fields.is_empty() {
                metadata.insert("remainingItemCount".to_string(), json!(more));
            }
        }
        Ok(ListPage {
            kind: format!("{}List", t.kind),
            api_version: t.api_version(),
            metadata,
            items,
        })
    }

    /// The revision a LIST without continue token reads: `resourceVersion` with
    /// `resourceVersionMatch=Exact` reads the past, anything else the present.
    fn list_revision(&self, options: &ListOptions) -> Result<u64, ApiError> {
        let Some(rv) = options
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty())
        else {
            return Ok(self.revision);
        };
        let parsed: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?;
        match options.resource_version_match.as_deref() {
            Some("Exact") => {
                if parsed <= self.compacted {
                    Err(ApiError::gone(format!(
                        "The resourceVersion for the provided list is too old. (requested {parsed}, current {})",
                        self.revision
                    )))
                } else if parsed > self.revision {
                    Err(ApiError::internal(&format!(
                        "Timeout: Too large resource version: {parsed}, current: {}",
                        self.revision
                    )))
                } else {
                    Ok(parsed)
                }
            }
            Some("NotOlderThan") | None => Ok(self.revision),
            Some(other) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}"
            ))),
        }
    }

    /// POST to a collection. `namespace` is the request's (`None` for cluster-scoped paths).
    pub fn create_object(
        &mut self,
        obj: Value,
        namespace: Option<&str>,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let t = self.type_of(&obj)?;
        self.create(&t, namespace, obj, options)
    }

    pub fn create(
        &mut self,
        t: &ResourceType,
        request_namespace: Option<&str>,
        obj: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.create_as(t, request_namespace, obj, options, Operation::Update)
    }

    /// A create recorded as `Update` (POST) or `Apply` (server-side apply of a new object:
    /// the manager owns what it sent, not the defaults).
    fn create_as(
        &mut self,
        t: &ResourceType,
        request_namespace: Option<&str>,
        obj: Value,
        options: &WriteOptions,
        operation: Operation,
    ) -> Result<Value, ApiError> {
        let (mut obj, namespace, name) = self.admit(t, request_namespace, obj, true)?;
        if self.current(t, &namespace, &name).is_some() {
            return Err(ApiError::already_exists(&t.group, &t.plural, &name));
        }
        if options.last_applied {
            write_last_applied(&mut obj);
        }
        let now = now();
        let uid = uuid::Uuid::new_v4().to_string();
        reset_status(t, &mut obj);
        let schema = Schema::new(t);
        let applied_set = schema.field_set(&obj, Operation::Apply, false);
        // Decode-time defaults (and the DaemonSet annotation, written by conversion) happen
        // before the field manager runs, so the writer owns them; strategy, allocation and
        // admission run after it, so nobody owns what they add.
        apply_defaults(&t.group, &t.kind, &mut obj);
        if t.group == "apps" && t.kind == "DaemonSet" {
            if let Some(root) = obj.as_object_mut() {
                annotations(root).insert(
                    "deprecated.daemonset.template.generation".to_string(),
                    json!("1"),
                );
            }
        }
        let mut update_set = schema.field_set(&obj, Operation::Update, false);
        if t.group.is_empty() && t.kind == "Service" {
            // Set by the IP allocator on a real server, not by decode-time defaulting.
            if let Some(spec) = update_set.get_mut("f:spec").and_then(Value::as_object_mut) {
                spec.shift_remove("f:ipFamilyPolicy");
            }
        }
        self.server_fields(t, &mut obj, &uid, &now);
        if let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("uid".to_string(), json!(uid));
            metadata.insert("creationTimestamp".to_string(), json!(now));
            if t.generation {
                metadata.insert("generation".to_string(), json!(1));
            }
        }
        let mut managed = vec![match operation {
            Operation::Update => {
                managed_entry(&options.field_manager, "Update", t, &now, update_set, None)
            }
            Operation::Apply => {
                managed_entry(&options.field_manager, "Apply", t, &now, applied_set, None)
            }
        }];
        let rv = if options.dry_run {
            self.revision
        } else {
            self.next_revision()
        };
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        if self.controllers && t.group == "apps" && t.kind == "Deployment" && !options.dry_run {
            deployment_controller(t, &mut obj, &mut managed, &now);
            // The controller's two writes (revision annotation, status).
            self.revision += 2;
            set_meta(
                &mut obj,
                "resourceVersion",
                json!(self.revision.to_string()),
            );
        }
        set_meta(&mut obj, "managedFields", Value::Array(managed));
        let obj = canonical_order(obj);
        if !options.dry_run {
            self.put(t, &namespace, &name, self.revision, Some(obj.clone()));
            if t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition" {
                self.register_crd(&obj);
            }
        }
        Ok(obj)
    }

    /// Checks and completes what a request says about an object before any write: type,
    /// name (or generateName), namespace against the URL, namespace existence.
    fn admit(
        &mut self,
        t: &ResourceType,
        request_namespace: Option<&str>,
        obj: Value,
        creating: bool,
    ) -> Result<(Value, String, String), ApiError> {
        let Value::Object(mut map) = obj else {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        };
        let api_version = t.api_version();
        for (field, expected) in [
            ("apiVersion", api_version.as_str()),
            ("kind", t.kind.as_str()),
        ] {
            match map.get(field).and_then(Value::as_str) {
                None | Some("") => {
                    map.insert(field.to_string(), json!(expected));
                }
                Some(given) if given != expected => {
                    return Err(ApiError::bad_request(format!(
                        "the {field} in the data ({given}) does not match the expected {field} ({expected})"
                    )));
                }
                Some(_) => {}
            }
        }
        let metadata = map
            .entry("metadata".to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if metadata.is_null() {
            *metadata = Value::Object(Map::new());
        }
        let Some(metadata) = metadata.as_object_mut() else {
            return Err(ApiError::bad_request("metadata must be an object"));
        };
        for server_owned in [
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
        ] {
            metadata.shift_remove(server_owned);
        }
        if creating
            && metadata
                .get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        metadata.shift_remove("resourceVersion");
        let mut name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            if let Some(prefix) = metadata.get("generateName").and_then(Value::as_str) {
                let suffix: String = uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(5)
                    .collect();
                name = format!("{prefix}{suffix}");
                metadata.insert("name".to_string(), json!(name));
            }
        }
        if name.is_empty() {
            return Err(ApiError::invalid(
                &t.kind,
                &t.group,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
        let given_namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = if !t.namespaced {
            metadata.shift_remove("namespace");
            String::new()
        } else {
            let request_namespace = request_namespace.unwrap_or("");
            let namespace = match (given_namespace.as_str(), request_namespace) {
                ("", "") => {
                    return Err(ApiError::bad_request("the namespace of the object is required"));
                }
                ("", request) => request.to_string(),
                (given, "") => given.to_string(),
                (given, request) if given == request => given.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
            };
            metadata.insert("namespace".to_string(), json!(namespace));
            namespace
        };
        if t.namespaced && !self.namespace_exists(&namespace) {
            return Err(ApiError::not_found("", "namespaces", &namespace));
        }
        Ok((Value::Object(map), namespace, name))
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.types
            .iter()
            .find(|t| t.group.is_empty() && t.plural == "namespaces")
            .is_some_and(|t| self.current(t, "", namespace).is_some())
    }

    /// What the registry strategies, allocators and admission plugins add on create.
    fn server_fields(&mut self, t: &ResourceType, obj: &mut Value, uid: &str, now: &str) {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(root) = obj.as_object_mut() else {
            return;
        };
        match (t.group.as_str(), t.kind.as_str()) {
            ("", "Namespace") => {
                labels(root).insert("kubernetes.io/metadata.name".to_string(), json!(name));
                root.insert("status".to_string(), json!({"phase": "Active"}));
            }
            ("", "Service") => self.allocate_service(root),
            ("", "PersistentVolumeClaim") => {
                add_finalizer(root, "kubernetes.io/pvc-protection");
                root.insert("status".to_string(), json!({"phase": "Pending"}));
            }
            ("", "Pod") => {
                root.insert(
                    "status".to_string(),
                    json!({"phase": "Pending", "qosClass": "BestEffort"}),
                );
            }
            ("batch", "Job") => job_labels(root, uid, &name),
            ("networking.k8s.io", "Ingress") => {
                root.insert("status".to_string(), json!({"loadBalancer": {}}));
            }
            ("policy", "PodDisruptionBudget") => {
                root.insert(
                    "status".to_string(),
                    json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}),
                );
            }
            ("autoscaling", "HorizontalPodAutoscaler") => {
                root.insert("status".to_string(), json!({"desiredReplicas": 0}));
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => crd_defaults(root, now),
            _ => {}
        }
    }

    /// Cluster IPs from 10.96.0.0/12 and node ports from 30000–32767, in order, as the
    /// allocators do (their picks are random; tests only need them present and distinct).
    fn allocate_service(&mut self, root: &mut Map<String, Value>) {
        let spec = child(root, "spec");
        let service_type = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if matches!(
            service_type.as_str(),
            "ClusterIP" | "NodePort" | "LoadBalancer"
        ) {
            let given = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let ip = if given.is_empty() {
                let n = self.next_ip;
                self.next_ip += 1;
                format!("10.96.{}.{}", n / 256, n % 256)
            } else {
                given
            };
            let headless_selectorless = ip == "None"
                && spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty);
            spec.insert("clusterIP".to_string(), json!(ip));
            spec.entry("clusterIPs".to_string())
                .or_insert_with(|| json!([ip]));
            let families = if headless_selectorless {
                json!(["IPv4", "IPv6"])
            } else {
                json!(["IPv4"])
            };
            spec.entry("ipFamilies".to_string()).or_insert(families);
            let allocate_node_ports = service_type == "NodePort"
                || (service_type == "LoadBalancer"
                    && spec
                        .get("allocateLoadBalancerNodePorts")
                        .and_then(Value::as_bool)
                        != Some(false));
            if allocate_node_ports {
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                            port.insert("nodePort".to_string(), json!(self.next_node_port));
                            self.next_node_port += 1;
                        }
                    }
                }
            }
            if service_type == "LoadBalancer"
                && spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local")
                && spec.get("healthCheckNodePort").is_none()
            {
                spec.insert(
                    "healthCheckNodePort".to_string(),
                    json!(self.next_node_port),
                );
                self.next_node_port += 1;
            }
        }
        root.insert("status".to_string(), json!({"loadBalancer": {}}));
    }

    /// A CustomResourceDefinition starts serving its resource, as the real server does once
    /// the CRD is established.
    fn register_crd(&mut self, crd: &Value) {
        let text = |pointer: &str| {
            crd.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let group = text("/spec/group");
        let kind = text("/spec/names/kind");
        let plural = text("/spec/names/plural");
        let namespaced = text("/spec/scope") != "Cluster";
        let versions = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for version in versions {
            if version.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(name) = version.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut t = ResourceType::custom(&group, name, &kind, &plural, namespaced);
            t.status_subresource = version.pointer("/subresources/status").is_some();
            if !self
                .types
                .iter()
                .any(|e| e.group == t.group && e.version == t.version && e.plural == t.plural)
            {
                self.types.push(t);
            }
        }
    }

    /// Server-side apply (`PATCH` with `application/apply-patch+yaml`): creates the object if
    /// missing, else merges the configuration, fails with 409 when another manager owns a
    /// field with a different value (unless `force`), and records the manager's `Apply` entry.
    /// Returns the object and whether it was created.
    pub fn apply(
        &mut self,
        t: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        config: Value,
        options: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let config_name = config
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !config_name.is_empty() && config_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({config_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut config = config;
        if let Some(metadata) = config.as_object_mut().map(|m| {
            m.entry("metadata".to_string())
                .or_insert_with(|| Value::Object(Map::new()))
        }) {
            if let Some(metadata) = metadata.as_object_mut() {
                metadata.insert("name".to_string(), json!(name));
            }
        }
        let schema = Schema::new(t);
        let applied_set = schema.field_set(&strip_status(t, &config), Operation::Apply, false);
        let ns_key = if t.namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        };
        let Some(live) = self.current(t, ns_key, name).cloned() else {
            let created = self.create_as(t, namespace, config, options, Operation::Apply)?;
            return Ok((created, true));
        };
        let (config, _, _) = self.admit(t, namespace, config, false)?;
        let config = strip_status(t, &config);
        let mut managers = managed_entries(&live);
        let applied_paths = fields::flatten(&applied_set);
        let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
        for entry in &managers {
            if entry.manager == options.field_manager && entry.operation == "Apply" {
                continue;
            }
            for path in entry.paths.intersection(&applied_paths) {
                let leaf = !applied_paths
                    .iter()
                    .any(|p| p.len() > path.len() && p.starts_with(path));
                if leaf && schema.lookup(&live, path) != schema.lookup(&config, path) {
                    conflicts.push((entry.manager.clone(), path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !options.force {
            let described: Vec<(String, String)> = conflicts
                .iter()
                .map(|(manager, path)| (manager.clone(), fields::display_path(path)))
                .collect();
            return Err(ApiError::apply_conflicts(&described, &t.api_version()));
        }
        let mut merged = live.clone();
        schema.merge(&mut merged, &config);
        // Fields this manager applied before and no longer applies, that nobody else owns,
        // are removed.
        let previous: BTreeSet<FieldPath> = managers
            .iter()
            .filter(|e| e.manager == options.field_manager && e.operation == "Apply")
            .flat_map(|e| e.paths.iter().cloned())
            .collect();
        let others: BTreeSet<FieldPath> = managers
            .iter()
            .filter(|e| !(e.manager == options.field_manager && e.operation == "Apply"))
            .flat_map(|e| e.paths.iter().cloned())
            .collect();
        let mut dropped: Vec<&FieldPath> = previous
            .iter()
            .filter(|p| !applied_paths.contains(*p) && !others.contains(*p))
            .collect();
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in dropped {
            schema.remove(&mut merged, path);
        }
        apply_defaults(&t.group, &t.kind, &mut merged);
        // With force, the applier takes conflicting fields from their owners.
        for entry in managers.iter_mut() {
            for (manager, path) in &conflicts {
                if *manager == entry.manager {
                    entry.paths.remove(path);
                }
            }
        }
        managers.retain(|e| !(e.manager == options.field_manager && e.operation == "Apply"));
        managers.retain(|e| !e.paths.is_empty());
        let now = now();
        managers.push(ManagedEntry {
            manager: options.field_manager.clone(),
            operation: "Apply".to_string(),
            subresource: None,
            time: now.clone(),
            paths: applied_paths,
        });
        let changed = without_volatile(&merged) != without_volatile(&live);
        let owners_changed = {
            let before: Vec<(String, BTreeSet<FieldPath>)> = managed_entries(&live)
                .into_iter()
                .map(|e| (e.manager, e.paths))
                .collect();
            let after: Vec<(String, BTreeSet<FieldPath>)> = managers
                .iter()
                .map(|e| (e.manager.clone(), e.paths.clone()))
                .collect();
            before != after
        };
        if !changed && !owners_changed {
            return Ok((live, false));
        }
        let managed: Vec<Value> = managers
            .iter()
            .map(|e| {
                managed_entry(
                    &e.manager,
                    &e.operation,
                    t,
                    &e.time,
                    fields::unflatten(&e.paths),
                    e.subresource.as_deref(),
                )
            })
            .collect();
        set_meta(&mut merged, "managedFields", Value::Array(managed));
        let spec_changed = strip_meta_status(&merged) != strip_meta_status(&live);
        if t.generation && spec_changed {
            let generation = live
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_meta(&mut merged, "generation", json!(generation + 1));
        }
        // Controllers act on what was persisted; a dry run never reaches them.
        if self.controllers && !options.dry_run {
            reconcile(t, &live, &mut merged);
        }
        if !options.dry_run {
            let rv = self.next_revision();
            set_meta(&mut merged, "resourceVersion", json!(rv.to_string()));
            self.put(t, ns_key, name, rv, Some(merged.clone()));
        }
        Ok((canonical_order(merged), false))
    }

    /// Changes a live object as a person with `kubectl edit` would: the function edits the
    /// object, the changed fields move to `field_manager` (operation Update), generation and
    /// resourceVersion advance. This is how a test makes drift.
    pub fn edit(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        field_manager: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let mut edited = self.get(t, namespace, name)?;
        edit(&mut edited);
        self.update(
            t,
            namespace,
            name,
            edited,
            &WriteOptions::manager(field_manager),
        )
    }

    /// PUT, or a JSON / merge / strategic merge PATCH after the patch is applied: the new
    /// object replaces the live one (its status is kept: it has its own subresource). Fields
    /// whose value changed, and fields that are new, move to `field_manager`; a request that
    /// rewrites `managedFields` itself (kubectl's client-side to server-side apply migration)
    /// gets exactly what it wrote. A stale `resourceVersion` answers 409.
    pub fn update(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        new: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let live = self.get(t, namespace, name)?;
        let Value::Object(mut map) = new else {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        };
        let metadata = map
            .entry("metadata".to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            return Err(ApiError::bad_request("metadata must be an object"));
        };
        let text = |m: &Map<String, Value>, key: &str| {
            m.get(key).and_then(Value::as_str).unwrap_or("").to_string()
        };
        let given_rv = text(metadata, "resourceVersion");
        let live_rv = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !given_rv.is_empty() && given_rv != live_rv {
            return Err(ApiError::conflict(&t.group, &t.plural, name));
        }
        let given_name = text(metadata, "name");
        if !given_name.is_empty() && given_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given_name}) does not match the name on the URL ({name})"
            )));
        }
        let requested_managed = metadata.get("managedFields").cloned();
        // Identity and server-owned metadata come from the live object.
        for key in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
        ] {
            match live.pointer(&format!("/metadata/{key}")) {
                Some(value) => {
                    metadata.insert(key.to_string(), value.clone());
                }
                None => {
                    metadata.shift_remove(key);
                }
            }
        }
        for key in ["apiVersion", "kind"] {
            map.insert(
                key.to_string(),
                live.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        if t.status_subresource {
            match live.get("status") {
                Some(status) => {
                    map.insert("status".to_string(), status.clone());
                }
                None => {
                    map.shift_remove("status");
                }
            }
        }
        let mut updated = Value::Object(map);
        apply_defaults(&t.group, &t.kind, &mut updated);
        let live_managed = live.pointer("/metadata/managedFields").cloned();
        if requested_managed.is_some() && requested_managed != live_managed {
            set_meta(
                &mut updated,
                "managedFields",
                requested_managed.unwrap_or(Value::Null),
            );
        } else {
            let managed = self.managed_after_update(t, &live, &updated, &options.field_manager);
            set_meta(&mut updated, "managedFields", managed);
        }
        if without_volatile(&updated) == without_volatile(&live)
            && updated.pointer("/metadata/managedFields") == live.pointer("/metadata/managedFields")
        {
            return Ok(live);
        }
        if t.generation && strip_meta_status(&updated) != strip_meta_status(&live) {
            let generation = live
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_meta(&mut updated, "generation", json!(generation + 1));
        }
        if self.controllers {
            reconcile(t, &live, &mut updated);
        }
        let updated = canonical_order(updated);
        if options.dry_run {
            return Ok(updated);
        }
        let rv = self.next_revision();
        let mut updated = updated;
        set_meta(&mut updated, "resourceVersion", json!(rv.to_string()));
        self.put(t, namespace, name, rv, Some(updated.clone()));
        Ok(updated)
    }

    /// The managedFields after `manager` turned `live` into `updated` with an Update.
    fn managed_after_update(
        &self,
        t: &ResourceType,
        live: &Value,
        updated: &Value,
        manager: &str,
    ) -> Value {
        let schema = Schema::new(t);
        let before = fields::flatten(&schema.field_set(live, Operation::Update, false));
        let after = fields::flatten(&schema.field_set(updated, Operation::Update, false));
        let leaf = |path: &FieldPath| {
            !after
                .iter()
                .any(|p| p.len() > path.len() && p.starts_with(path))
        };
        let changed: BTreeSet<FieldPath> = after
            .iter()
            .filter(|p| {
                !before.contains(*p)
                    || (leaf(p) && schema.lookup(live, p) != schema.lookup(updated, p))
            })
            .cloned()
            .collect();
        let removed: BTreeSet<FieldPath> = before.difference(&after).cloned().collect();
        let mut managers = managed_entries(live);
        for entry in managers.iter_mut() {
            entry
                .paths
                .retain(|p| !changed.contains(p) && !removed.contains(p));
        }
        let now = now();
        match managers
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update" && e.subresource.is_none())
        {
            Some(entry) => {
                entry.paths.extend(changed);
                entry.time = now;
            }
            None => managers.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".to_string(),
                subresource: None,
                time: now,
                paths: changed,
            }),
        }
        managers.retain(|e| !e.paths.is_empty());
        Value::Array(
            managers
                .iter()
                .map(|e| {
                    managed_entry(
                        &e.manager,
                        &e.operation,
                        t,
                        &e.time,
                        fields::unflatten(&e.paths),
                        e.subresource.as_deref(),
                    )
                })
                .collect(),
        )
    }

    /// DELETE: the object is gone at a new revision (namespaces take their objects along,
    /// which the namespace controller does on a real cluster). Returns the deleted object.
    pub fn delete(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let object = self.get(t, namespace, name)?;
        if dry_run {
            return Ok(object);
        }
        let rv = self.next_revision();
        self.put(t, namespace, name, rv, None);
        if t.group.is_empty() && t.plural == "namespaces" {
            let doomed: Vec<((String, String), ObjectKey)> = self
                .objects
                .iter()
                .flat_map(|(type_key, objects)| {
                    objects
                        .iter()
                        .filter(|((ns, _), revisions)| {
                            ns == name && revisions.last().is_some_and(|r| r.object.is_some())
                        })
                        .map(move |(key, _)| (type_key.clone(), key.clone()))
                })
                .collect();
            for (type_key, key) in doomed {
                if let Some(revisions) = self
                    .objects
                    .get_mut(&type_key)
                    .and_then(|o| o.get_mut(&key))
                {
                    revisions.push(Revision::new(rv, None));
                }
            }
        }
        Ok(object)
    }
}

/// One `managedFields` entry, with its field set as paths.
struct ManagedEntry {
    manager: String,
    operation: String,
    subresource: Option<String>,
    time: String,
    paths: BTreeSet<FieldPath>,
}

fn managed_entries(obj: &Value) -> Vec<ManagedEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    ManagedEntry {
                        manager: text("manager"),
                        operation: text("operation"),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        time: text("time"),
                        paths: e.get("fieldsV1").map(fields::flatten).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn managed_entry(
    manager: &str,
    operation: &str,
    t: &ResourceType,
    time: &str,
    fields_v1: Value,
    subresource: Option<&str>,
) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": t.api_version(),
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1,
    });
    if let (Some(subresource), Some(map)) = (subresource, entry.as_object_mut()) {
        map.insert("subresource".to_string(), json!(subresource));
    }
    entry
}

/// The healthy state the Deployment controller leaves: revision annotation, status with
/// all replicas available, and its two managedFields entries.
fn deployment_controller(t: &ResourceType, obj: &mut Value, managed: &mut Vec<Value>, now: &str) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let template = obj
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let had_annotations = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| !a.is_empty());
    if let Some(root) = obj.as_object_mut() {
        annotations(root).insert("deployment.kubernetes.io/revision".to_string(), json!("1"));
    }
    let mut status = Map::new();
    status.insert("observedGeneration".to_string(), json!(1));
    if replicas > 0 {
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            status.insert(field.to_string(), json!(replicas));
        }
    }
    let condition = |kind: &str, reason: &str, message: String| {
        json!({
            "type": kind,
            "status": "True",
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })
    };
    status.insert(
        "conditions".to_string(),
        json!([
            condition(
                "Available",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".to_string()
            ),
            condition(
                "Progressing",
                "NewReplicaSetAvailable",
                format!(
                    "ReplicaSet \"{name}-{}\" has successfully progressed.",
                    pod_template_hash(&template)
                ),
            ),
        ]),
    );
    if let Some(root) = obj.as_object_mut() {
        root.insert("status".to_string(), Value::Object(status));
    }
    let annotation_set = if had_annotations {
        json!({"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}})
    } else {
        json!({"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}})
    };
    managed.push(managed_entry(
        "kube-controller-manager",
        "Update",
        t,
        now,
        annotation_set,
        None,
    ));
    let status_set = Schema::new(t).field_set(obj, Operation::Update, true);
    managed.push(managed_entry(
        "kube-controller-manager",
        "Update",
        t,
        now,
        status_set,
        Some("status"),
    ));
}

/// What the Deployment controller does after a spec change: a new template is a new
/// revision, and the status catches up with the desired replicas.
fn reconcile(t: &ResourceType, live: &Value, updated: &mut Value) {
    if t.group != "apps" || t.kind != "Deployment" || updated.get("status").is_none() {
        return;
    }
    if live.pointer("/spec/template") != updated.pointer("/spec/template") {
        let revision = live
            .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0);
        if let Some(root) = updated.as_object_mut() {
            annotations(root).insert(
                "deployment.kubernetes.io/revision".to_string(),
                json!((revision + 1).to_string()),
            );
        }
    }
    let generation = updated
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let replicas = updated
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if let Some(status) = updated.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("observedGeneration".to_string(), generation);
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            if replicas > 0 {
                status.insert(field.to_string(), json!(replicas));
            } else {
                status.shift_remove(field);
            }
        }
    }
}

/// The `pod-template-hash` of a template: FNV-1a, written with the "safe" alphabet of
/// `k8s.io/apimachinery/pkg/util/rand.SafeEncodeString`.
fn pod_template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// Job labels and selector from its uid (`pkg/registry/batch/job/strategy.go`).
fn job_labels(root: &mut Map<String, Value>, uid: &str, name: &str) {
    let spec = child(root, "spec");
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let generated = [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ];
    if spec.get("selector").is_none_or(Value::is_null) {
        spec.insert(
            "selector".to_string(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let template_labels = child(child(child(spec, "template"), "metadata"), "labels");
    for (key, value) in generated {
        template_labels.insert(key.to_string(), json!(value));
    }
    let template_labels = template_labels.clone();
    let labels = labels(root);
    if labels.is_empty() {
        *labels = template_labels;
    }
}

/// What the apiextensions server defaults and reports for a CRD.
fn crd_defaults(root: &mut Map<String, Value>, now: &str) {
    let spec = child(root, "spec");
    spec.entry("conversion".to_string())
        .or_insert_with(|| json!({"strategy": "None"}));
    let names = child(spec, "names");
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    names
        .entry("singular".to_string())
        .or_insert_with(|| json!(kind.to_lowercase()));
    names
        .entry("listKind".to_string())
        .or_insert_with(|| json!(format!("{kind}List")));
    let accepted = Value::Object(names.clone());
    let stored: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    root.insert(
        "status".to_string(),
        json!({
            "acceptedNames": accepted,
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found for the names"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "storedVersions": stored,
        }),
    );
}

/// Status is not written through the main resource of a type with a status subresource.
fn reset_status(t: &ResourceType, obj: &mut Value) {
    if !t.status_subresource {
        return;
    }
    if let Some(root) = obj.as_object_mut() {
        if t.custom {
            root.shift_remove("status");
        } else {
            root.insert("status".to_string(), json!({}));
        }
    }
}

fn strip_status(t: &ResourceType, obj: &Value) -> Value {
    let mut obj = obj.clone();
    if t.status_subresource {
        if let Some(map) = obj.as_object_mut() {
            map.shift_remove("status");
        }
    }
    obj
}

fn without_volatile(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.shift_remove("managedFields");
        metadata.shift_remove("resourceVersion");
    }
    obj
}

fn strip_meta_status(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.shift_remove("metadata");
        map.shift_remove("status");
    }
    obj
}

/// The compact JSON of the manifest, keys sorted, with `"annotations":{}` when it had none,
/// plus a newline: what client-side `kubectl apply` stores.
fn write_last_applied(obj: &mut Value) {
    let mut manifest = obj.clone();
    if let Some(metadata) = manifest.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations".to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.shift_remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    let text = format!(
        "{}\n",
        serde_json::to_string(&sort_keys(&manifest)).unwrap_or_default()
    );
    if let Some(root) = obj.as_object_mut() {
        annotations(root).insert(
            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
            json!(text),
        );
    }
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Field order of the real server's JSON: `kind`, `apiVersion`, `metadata` (in ObjectMeta
/// order), the rest, `status` last.
fn canonical_order(obj: Value) -> Value {
    let Value::Object(mut map) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for key in ["kind", "apiVersion"] {
        if let Some(v) = map.shift_remove(key) {
            out.insert(key.to_string(), v);
        }
    }
    if let Some(Value::Object(mut metadata)) = map.shift_remove("metadata") {
        let mut ordered = Map::new();
        for key in [
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        ] {
            if let Some(v) = metadata.shift_remove(key) {
                ordered.insert(key.to_string(), v);
            }
        }
        ordered.extend(metadata);
        out.insert("metadata".to_string(), Value::Object(ordered));
    }
    let status = map.shift_remove("status");
    out.extend(map);
    if let Some(status) = status {
        out.insert("status".to_string(), status);
    }
    Value::Object(out)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if let Some(root) = obj.as_object_mut() {
        child(root, "metadata").insert(key.to_string(), value);
    }
}

/// The object under `key`, created (or replaced, if it is not an object) as needed.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("replaced by an object above"),
    }
}

fn labels(root: &mut Map<String, Value>) -> &mut Map<String, Value> {
    child(child(root, "metadata"), "labels")
}

fn annotations(root: &mut Map<String, Value>) -> &mut Map<String, Value> {
    child(child(root, "metadata"), "annotations")
}

fn add_finalizer(root: &mut Map<String, Value>, finalizer: &str) {
    let metadata = child(root, "metadata");
    let finalizers = metadata
        .entry("finalizers".to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !finalizers.is_array() {
        *finalizers = Value::Array(Vec::new());
    }
    if let Some(list) = finalizers.as_array_mut() {
        if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
            list.push(json!(finalizer));
        }
    }
}

/// Whether the object `namespace`/`name` comes after the continue key `start` in the order
/// the store walks (namespace, then name): comparing the joined strings instead would put
/// `team-a/x` before `team/y` and skip it on the next page.
fn comes_after(start: &str, all_namespaces: bool, namespace: &str, name: &str) -> bool {
    if !all_namespaces {
        return name > start;
    }
    match start.split_once('/') {
        Some((start_namespace, start_name)) => (namespace, name) > (start_namespace, start_name),
        None => true,
    }
}

fn relative_key(all_namespaces: bool, namespace: &str, name: &str) -> String {
    if all_namespaces {
        format!("{namespace}/{name}")
    } else {
        name.to_string()
    }
}

/// `base64url({"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"})`, the real token's shape.
fn encode_continue(rv: u64, last_key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key}\u{0}")});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(&e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))?;
    if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = value
        .get("rv")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("missing rv"))?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing start"))?;
    Ok((
        u64::try_from(rv).unwrap_or(0),
        start.trim_end_matches('\u{0}').to_string(),
    ))
}
