//! A Kubernetes API server on loopback for integration tests.
//!
//! Real clusters are not available in tests, and a mock that answers canned JSON tests
//! nothing about how plumbline reads a cluster. This server behaves like kube-apiserver for
//! what a read-only auditor and a server-side-apply self-heal use: legacy discovery, LIST
//! with pagination, selectors and consistent continue tokens, GET, bearer-token and
//! client-certificate auth with `Status` errors, create-time defaulting (the project's own
//! `apply_defaults`), allocated fields and `managedFields`, server-side apply with conflicts,
//! DELETE, and injected faults (latency, 429, 500, a connection dropped mid-list, expired
//! continue tokens). kubectl and kube-rs accept it through [`ApiServer::write_kubeconfig`].
//!
//! ```ignore
//! let server = ApiServer::builder().tls(true).token("t0ken").start();
//! server.seed(include_str!("fixtures/shop.yaml"));
//! server.inject(Fault::too_many_requests(0).on_path("/deployments"));
//! server.write_kubeconfig(&dir.join("kubeconfig"), "prod");
//! ```
//!
//! The server runs on its own thread and tokio runtime, so sync tests (of the CLI binary)
//! and async tests use it alike; it stops when the [`ApiServer`] is dropped.
#![allow(dead_code)]

mod fields;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::{json, Value};
use tokio::sync::watch;

pub use server::{Fault, RecordedRequest};

use resources::ResourceType;
use server::{lock, Auth, Denial, Shared};
use store::{Store, WriteOptions};

/// The user a bearer token and the client certificate authenticate as: plumbline's own
/// service account in a typical install.
pub const DEFAULT_USER: &str = "system:serviceaccount:plumbline:plumbline";

/// Configures an [`ApiServer`]; see [`ApiServer::builder`].
#[derive(Debug, Clone)]
pub struct ApiServerBuilder {
    tls: bool,
    token: Option<String>,
    client_ca: bool,
    user: String,
    version: String,
    crds: Vec<(String, String, String, String, bool)>,
    denials: Vec<(String, String)>,
    controllers: bool,
}

impl ApiServerBuilder {
    /// Serve HTTPS with a CA generated for this server (default: plain HTTP).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Require `Authorization: Bearer <token>`; without a token and client CA, every
    /// request is let in as `system:anonymous`.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// Accept client certificates signed by the test CA (needs `tls(true)`), and issue one.
    pub fn client_ca(mut self, client_ca: bool) -> Self {
        self.client_ca = client_ca;
        self
    }

    /// The user name that appears in 403 messages (default [`DEFAULT_USER`]).
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    /// The Kubernetes version `/version` reports, e.g. `"1.30.2"`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.trim_start_matches('v').to_string();
        self
    }

    /// Registers a custom resource, as applying its CustomResourceDefinition would.
    pub fn crd(
        mut self,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> Self {
        self.crds.push((
            group.to_string(),
            version.to_string(),
            kind.to_string(),
            plural.to_string(),
            namespaced,
        ));
        self
    }

    /// Denies `verb` (or `"*"`) on `resource` (`"secrets"`, `"deployments.apps"`, `"*"`) with
    /// a 403 worded like an RBAC denial; SelfSubjectAccessReview answers accordingly.
    pub fn deny(mut self, verb: &str, resource: &str) -> Self {
        self.denials.push((verb.to_string(), resource.to_string()));
        self
    }

    /// Whether Deployments get the status and revision annotation their controller writes
    /// (default true: a live cluster's Deployments are reconciled).
    pub fn controllers(mut self, controllers: bool) -> Self {
        self.controllers = controllers;
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving on a thread of its own.
    ///
    /// Panics when the setup fails (a port, a certificate): a test cannot go on without it.
    pub fn start(self) -> ApiServer {
        assert!(
            !self.client_ca || self.tls,
            "client_ca(true) needs tls(true): certificates are only seen over TLS"
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a loopback port for the test API server");
        listener
            .set_nonblocking(true)
            .expect("make the test API server socket non-blocking");
        let address: SocketAddr = listener
            .local_addr()
            .expect("local address of the test API server");
        let pki = if self.tls {
            let client_user = self.client_ca.then_some(self.user.as_str());
            Some(tls::Pki::generate(client_user).expect("generate the test CA and certificates"))
        } else {
            None
        };
        let acceptor = pki.as_ref().map(|pki| {
            let config = pki
                .server_config(self.client_ca)
                .expect("build the TLS configuration of the test API server");
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let client = pki.as_ref().and_then(|pki| pki.client.clone());
        let mut cert_users = HashMap::new();
        if let Some(client) = &client {
            cert_users.insert(client.cert_der.clone(), self.user.clone());
        }
        let mut store = Store::new(self.controllers);
        for (group, version, kind, plural, namespaced) in &self.crds {
            let crd = crd_manifest(group, version, kind, plural, *namespaced);
            store
                .create_object(
                    crd,
                    None,
                    &WriteOptions::manager("kubectl-client-side-apply"),
                )
                .unwrap_or_else(|e| panic!("register CRD {plural}.{group}: {}", e.message));
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            auth: Mutex::new(Auth {
                token: self.token.clone(),
                cert_users,
                user: self.user.clone(),
                denials: self
                    .denials
                    .iter()
                    .map(|(verb, resource)| Denial {
                        verb: verb.clone(),
                        resource: resource.clone(),
                    })
                    .collect(),
            }),
            version: version_info(&self.version),
            address: address.to_string(),
        });
        let (stop, stopped) = watch::channel(false);
        let app = server::router(shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("apiserver-{}", address.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the test API server");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the listener with tokio");
                    server::serve(listener, acceptor, app, stopped).await;
                });
                // In-flight connections (a client stuck in injected latency) end here.
                runtime.shutdown_background();
            })
            .expect("spawn the test API server thread");
        let scheme = if self.tls { "https" } else { "http" };
        ApiServer {
            url: format!("{scheme}://{address}"),
            ca_pem: pki.map(|pki| pki.ca_pem),
            client_cert_pem: client.as_ref().map(|c| c.cert_pem.clone()),
            client_key_pem: client.map(|c| c.key_pem),
            token: self.token,
            shared,
            stop,
            thread: Some(thread),
        }
    }
}

/// A running test API server; stops on drop.
pub struct ApiServer {
    url: String,
    ca_pem: Option<String>,
    client_cert_pem: Option<String>,
    client_key_pem: Option<String>,
    token: Option<String>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Plain HTTP, no auth, Kubernetes 1.30.2, controllers on.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            tls: false,
            token: None,
            client_ca: false,
            user: DEFAULT_USER.to_string(),
            version: "1.30.2".to_string(),
            crds: Vec::new(),
            denials: Vec::new(),
            controllers: true,
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA that signed the serving certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The client certificate and key, PEM (with `client_ca(true)`).
    pub fn client_cert_pem(&self) -> Option<(&str, &str)> {
        Some((
            self.client_cert_pem.as_deref()?,
            self.client_key_pem.as_deref()?,
        ))
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A kubeconfig with one cluster, user and context named `context`, made current: server,
    /// `certificate-authority-data`, and the token and/or client certificate.
    pub fn kubeconfig(&self, context: &str) -> String {
        let mut cluster = json!({ "server": self.url });
        if let Some(ca) = &self.ca_pem {
            cluster["certificate-authority-data"] = json!(STANDARD.encode(ca));
        }
        let mut user = json!({});
        if let Some(token) = &self.token {
            user["token"] = json!(token);
        }
        if let Some((cert, key)) = self.client_cert_pem() {
            user["client-certificate-data"] = json!(STANDARD.encode(cert));
            user["client-key-data"] = json!(STANDARD.encode(key));
        }
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "preferences": {},
        });
        serde_yaml::to_string(&config).unwrap_or_default()
    }

    /// Writes [`Self::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) {
        std::fs::write(path, self.kubeconfig(context))
            .unwrap_or_else(|e| panic!("write kubeconfig {}: {e}", path.display()));
    }

    /// Applies a multi-document YAML manifest as `kubectl apply` (client-side) would: each
    /// object gets the `last-applied-configuration` annotation and the
    /// `kubectl-client-side-apply` manager; the namespace defaults to `default`. Server-set
    /// metadata in the manifest (uid, resourceVersion, …: a `kubectl get -o yaml` dump) is
    /// dropped. Panics on an object the server rejects. Returns the stored objects.
    pub fn seed(&self, manifests: &str) -> Vec<Value> {
        let mut options = WriteOptions::manager("kubectl-client-side-apply");
        options.last_applied = true;
        let mut created = Vec::new();
        for document in serde_yaml::Deserializer::from_str(manifests) {
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("seed: invalid YAML: {e}"));
            let mut docs = match value {
                Value::Null => continue,
                Value::Object(ref map)
                    if map.get("kind").and_then(Value::as_str) == Some("List") =>
                {
                    map.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                }
                other => vec![other],
            };
            for mut object in docs.drain(..) {
                if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    for field in [
                        "uid",
                        "resourceVersion",
                        "creationTimestamp",
                        "generation",
                        "managedFields",
                    ] {
                        metadata.shift_remove(field);
                    }
                }
                let namespace = namespace_or_default(&object);
                let result = lock(&self.shared.store).create_object(
                    object.clone(),
                    Some(&namespace),
                    &options,
                );
                match result {
                    Ok(stored) => created.push(stored),
                    Err(e) => panic!(
                        "seed: the server rejected {}: {}",
                        describe(&object),
                        e.message
                    ),
                }
            }
        }
        created
    }

    /// POSTs an object as a client would (no annotation), recorded for the default manager
    /// `kubectl-client-side-apply`. `Err` holds the `Status` the server would answer.
    pub fn create(&self, object: Value) -> Result<Value, Value> {
        self.create_as(object, "kubectl-client-side-apply")
    }

    /// [`Self::create`] with a `fieldManager`.
    pub fn create_as(&self, object: Value, field_manager: &str) -> Result<Value, Value> {
        let namespace = namespace_or_default(&object);
        lock(&self.shared.store)
            .create_object(
                object,
                Some(&namespace),
                &WriteOptions::manager(field_manager),
            )
            .map_err(|e| e.to_status())
    }

    /// Server-side applies `object` for `field_manager`, as another controller would (an HPA
    /// owning `replicas`, say). `Err` holds the `Status`, e.g. a 409 conflict.
    pub fn apply(&self, object: Value, field_manager: &str, force: bool) -> Result<Value, Value> {
        let mut store = lock(&self.shared.store);
        let t = store.type_of(&object).map_err(|e| e.to_status())?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = t.namespaced.then(|| namespace_or_default(&object));
        let mut options = WriteOptions::manager(field_manager);
        options.force = force;
        store
            .apply(&t, namespace.as_deref(), &name, object, &options)
            .map(|(object, _)| object)
            .map_err(|e| e.to_status())
    }

    /// The stored object, with `kind` and `apiVersion`, as a GET returns it.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = lock(&self.shared.store);
        let t = find_type(&store, api_version, kind)?;
        store.current(&t, namespace.unwrap_or(""), name).cloned()
    }

    /// Changes a live object as `kubectl edit` would (manager `kubectl-edit`, operation
    /// Update): the way to make drift. Panics if the object does not exist.
    pub fn edit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let mut store = lock(&self.shared.store);
        let t = find_type(&store, api_version, kind)
            .unwrap_or_else(|| panic!("edit: unknown kind {api_version} {kind}"));
        store
            .edit(&t, namespace.unwrap_or(""), name, "kubectl-edit", change)
            .unwrap_or_else(|e| panic!("edit: {}", e.message))
    }

    /// Deletes an object (as `kubectl delete`); false if it did not exist.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut store = lock(&self.shared.store);
        let Some(t) = find_type(&store, api_version, kind) else {
            return false;
        };
        store
            .delete(&t, namespace.unwrap_or(""), name, false)
            .is_ok()
    }

    /// The current resourceVersion of the whole store.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).revision()
    }

    /// Compacts history: continue tokens and exact-revision LISTs from before now get 410.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// Adds a fault for the next matching requests.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Removes all armed faults and the latency.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
        *lock(&self.shared.latency) = Duration::ZERO;
    }

    /// Delays every request by `latency` before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Denies `verb` on `resource` from now on (see [`ApiServerBuilder::deny`]).
    pub fn deny(&self, verb: &str, resource: &str) {
        lock(&self.shared.auth).denials.push(Denial {
            verb: verb.to_string(),
            resource: resource.to_string(),
        });
    }

    /// Every request received so far, in order (including rejected ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests had this method and exactly this path (query ignored).
    pub fn request_count(&self, method: &str, path: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn find_type(store: &Store, api_version: &str, kind: &str) -> Option<ResourceType> {
    store
        .type_of(&json!({"apiVersion": api_version, "kind": kind}))
        .ok()
}

/// The namespace kubectl sends a manifest to: its own, else `default`.
fn namespace_or_default(object: &Value) -> String {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
        .to_string()
}

fn describe(object: &Value) -> String {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    format!("{} {}", text("/kind"), text("/metadata/name"))
}

fn crd_manifest(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    })
}

/// `/version` for `1.30.2`.
fn version_info(version: &str) -> Value {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{version}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-06-11T20:20:00Z",
        "goVersion": "go1.22.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
