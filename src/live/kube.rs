//! Clusters read through the Kubernetes API with kube-rs.
//!
//! kube-rs brings kubeconfig handling, authentication (tokens, client certificates, exec
//! plugins, in-cluster service accounts) and TLS; the requests themselves are made here, so
//! that every read is a paginated LIST (never a GET per object), rate limited, retried with
//! backoff on 429 (honouring `Retry-After`), 5xx and connection errors, and restarted when
//! its continue token expires (410).

use super::{ClusterError, LiveState, ReadPlan};
use crate::model::Resource;
use http::{Request, StatusCode};
use kube::client::Body;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// How hard plumbline may press on one API server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second, sustained.
    pub qps: f64,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// LIST requests in flight at once on one cluster.
    pub concurrency: usize,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// Retries of a request that failed in a way that may pass.
    pub retries: u32,
    /// Items per LIST page.
    pub page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            qps: 50.0,
            burst: 100,
            concurrency: 8,
            timeout: Duration::from_secs(30),
            retries: 5,
            page_size: 500,
        }
    }
}

/// One resource type as the cluster serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

/// A cluster with its client and what discovery found.
pub struct ApiCluster {
    client: kube::Client,
    limiter: Arc<RateLimiter>,
    limits: Limits,
    resources: HashMap<(String, String), ServedResource>,
}

/// Makes ring the process's TLS crypto provider. Both ring (kube) and aws-lc-rs (the Git
/// HTTP client) are compiled in, and rustls refuses to guess between two.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The runtime that drives every API request of the process.
fn runtime() -> Result<&'static tokio::runtime::Runtime, ClusterError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("plumbline-kube")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ClusterError::error(format!("cannot start the I/O runtime: {e}")))
}

/// Runs a future on the shared runtime from synchronous code.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, ClusterError> {
    Ok(runtime()?.block_on(future))
}

impl ApiCluster {
    /// Builds a client from a kubeconfig file and context, else `$KUBECONFIG` and
    /// `~/.kube/config`, else the in-cluster service account, and runs discovery.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        limits: Limits,
    ) -> Result<ApiCluster, ClusterError> {
        install_crypto_provider();
        let config = client_config(kubeconfig, context).await?;
        let mut config = config;
        config.read_timeout = Some(limits.timeout);
        config.connect_timeout = Some(limits.timeout.min(Duration::from_secs(10)));
        let client = kube::Client::try_from(config)
            .map_err(|e| ClusterError::error(format!("cannot build a client: {e}")))?;
        let limiter = Arc::new(RateLimiter::new(limits.qps, limits.burst));
        let mut cluster = ApiCluster {
            client,
            limiter,
            limits,
            resources: HashMap::new(),
        };
        cluster.resources = cluster.discover().await?;
        Ok(cluster)
    }

    /// What the cluster serves, for namespace assignment and "kind not served" verdicts.
    pub fn served(&self) -> impl Iterator<Item = &ServedResource> {
        self.resources.values()
    }

    pub fn resource(&self, group: &str, kind: &str) -> Option<&ServedResource> {
        self.resources.get(&(group.to_string(), kind.to_string()))
    }

    /// A state holding only what discovery knows: scopes and served kinds.
    pub fn discovered_state(&self) -> LiveState {
        let mut state = LiveState::default();
        let mut served = HashSet::new();
        for r in self.resources.values() {
            state.set_scope(&r.group, &r.kind, r.namespaced);
            served.insert((r.group.clone(), r.kind.clone()));
        }
        state.set_served(served);
        state
    }

    /// Legacy discovery: `/api`, `/apis` and each group's preferred version.
    async fn discover(&self) -> Result<HashMap<(String, String), ServedResource>, ClusterError> {
        let mut lists: Vec<(String, String)> = Vec::new();
        let core = self.get_json("/api").await?;
        for version in core["versions"].as_array().into_iter().flatten() {
            if let Some(v) = version.as_str() {
                lists.push((String::new(), v.to_string()));
            }
        }
        let groups = self.get_json("/apis").await?;
        for group in groups["groups"].as_array().into_iter().flatten() {
            let name = group["name"].as_str().unwrap_or_default();
            let preferred = group["preferredVersion"]["version"]
                .as_str()
                .or_else(|| group["versions"][0]["version"].as_str());
            if let (false, Some(version)) = (name.is_empty(), preferred) {
                lists.push((name.to_string(), version.to_string()));
            }
        }
        let fetches = lists.into_iter().map(|(group, version)| async move {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            (group, version, self.get_json(&path).await)
        });
        let mut resources = HashMap::new();
        for (group, version, list) in futures_join_all(fetches).await {
            // A broken aggregated API (metrics-server down) must not fail the whole cluster.
            let list = match list {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!("discovery of {group}/{version} failed: {e}");
                    continue;
                }
            };
            for r in list["resources"].as_array().into_iter().flatten() {
                let (Some(plural), Some(kind)) = (r["name"].as_str(), r["kind"].as_str()) else {
                    continue;
                };
                if plural.contains('/') {
                    continue; // subresource
                }
                let verbs: Vec<String> = r["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                resources.insert(
                    (group.clone(), kind.to_string()),
                    ServedResource {
                        group: group.clone(),
                        version: version.clone(),
                        kind: kind.to_string(),
                        plural: plural.to_string(),
                        namespaced: r["namespaced"].as_bool().unwrap_or(true),
                        verbs,
                    },
                );
            }
        }
        Ok(resources)
    }

    /// Reads everything the plan names: one paginated LIST per resource type and namespace,
    /// several at once. Kinds the cluster does not serve are skipped (their desired objects
    /// become `missing`, with the reason).
    pub async fn read(&self, plan: &ReadPlan) -> Result<LiveState, ClusterError> {
        let mut state = self.discovered_state();
        let mut requests: Vec<ListRequest> = Vec::new();
        let mut add =
            |key: &(String, String), namespaces: &BTreeSet<String>, selector: Option<&str>| {
                let Some(resource) = self.resources.get(key) else {
                    return;
                };
                if !resource.verbs.iter().any(|v| v == "list") {
                    return;
                }
                let selector = selector.map(str::to_string);
                if !resource.namespaced || namespaces.is_empty() {
                    requests.push(ListRequest::cluster(resource.clone(), selector, None));
                } else if namespaces.len() > PER_NAMESPACE_LISTS {
                    // Many namespaces: one list across all of them costs far fewer requests.
                    requests.push(ListRequest::cluster(
                        resource.clone(),
                        selector,
                        Some(namespaces.clone()),
                    ));
                } else {
                    for namespace in namespaces {
                        requests.push(ListRequest {
                            resource: resource.clone(),
                            namespace: Some(namespace.clone()),
                            selector: selector.clone(),
                            keep: None,
                        });
                    }
                }
            };
        for (key, namespaces) in &plan.full {
            add(key, namespaces, None);
        }
        for (key, namespaces) in &plan.tracked_only {
            if !plan.full.contains_key(key) {
                add(key, namespaces, Some(plan.tracking_selector.as_str()));
            }
        }
        let gate = Arc::new(Semaphore::new(self.limits.concurrency.max(1)));
        let lists = requests.into_iter().map(|request| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await;
                self.list_request(&request, plan.keep_status).await
            }
        });
        for items in futures_join_all(lists).await {
            for item in items? {
                state.insert(item);
            }
        }
        Ok(state)
    }

    /// One planned list. A list across all namespaces that RBAC forbids (namespaced
    /// credentials) falls back to one list per namespace.
    async fn list_request(
        &self,
        request: &ListRequest,
        keep_status: bool,
    ) -> Result<Vec<Resource>, ClusterError> {
        let selector = request.selector.as_deref();
        let resource = &request.resource;
        let Some(keep) = &request.keep else {
            return self
                .list_all(
                    resource,
                    request.namespace.as_deref(),
                    selector,
                    keep_status,
                )
                .await
                .map_err(Into::into);
        };
        match self.list_all(resource, None, selector, keep_status).await {
            Ok(items) => Ok(items
                .into_iter()
                .filter(|item| {
                    item.key
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| keep.contains(ns))
                })
                .collect()),
            Err(ListError::Forbidden(_)) => {
                let mut items = Vec::new();
                for namespace in keep {
                    items.extend(
                        self.list_all(resource, Some(namespace), selector, keep_status)
                            .await?,
                    );
                }
                Ok(items)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// All pages of one LIST; an expired continue token (410) starts the list again.
    async fn list_all(
        &self,
        resource: &ServedResource,
        namespace: Option<&str>,
        selector: Option<&str>,
        keep_status: bool,
    ) -> Result<Vec<Resource>, ListError> {
        let api_version = if resource.group.is_empty() {
            resource.version.clone()
        } else {
            format!("{}/{}", resource.group, resource.version)
        };
        let base = match (resource.group.is_empty(), namespace) {
            (true, Some(ns)) => format!(
                "/api/{}/namespaces/{ns}/{}",
                resource.version, resource.plural
            ),
            (true, None) => format!("/api/{}/{}", resource.version, resource.plural),
            (false, Some(ns)) => format!("/apis/{api_version}/namespaces/{ns}/{}", resource.plural),
            (false, None) => format!("/apis/{api_version}/{}", resource.plural),
        };
        let mut restarts = 0;
        'restart: loop {
            let mut items = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut query = vec![format!("limit={}", self.limits.page_size)];
                if let Some(t) = &token {
                    query.push(format!("continue={}", encode(t)));
                }
                if let Some(s) = selector {
                    query.push(format!("labelSelector={}", encode(s)));
                }
                let path = format!("{base}?{}", query.join("&"));
                let page = if keep_status {
                    self.request::<ListPage<true>>(http::Method::GET, &path, None)
                        .await
                        .map(ListPage::into_parts)
                } else {
                    self.request::<ListPage<false>>(http::Method::GET, &path, None)
                        .await
                        .map(ListPage::into_parts)
                };
                let (page_items, next) = match page {
                    Ok(parts) => parts,
                    Err(RequestError::Gone) if token.is_some() && restarts < 3 => {
                        restarts += 1;
                        tracing::debug!("continue token of {base} expired; listing again");
                        continue 'restart;
                    }
                    Err(RequestError::Forbidden(message)) => {
                        return Err(ListError::Forbidden(message))
                    }
                    Err(e) => return Err(ListError::Other(e.into())),
                };
                for mut item in page_items {
                    if let Value::Object(map) = &mut item {
                        map.entry("apiVersion")
                            .or_insert_with(|| Value::String(api_version.clone()));
                        map.entry("kind")
                            .or_insert_with(|| Value::String(resource.kind.clone()));
                    }
                    match Resource::from_value(item) {
                        Ok(r) => items.push(r),
                        Err(e) => tracing::warn!("{base}: item skipped: {e}"),
                    }
                }
                token = next.filter(|t| !t.is_empty());
                if token.is_none() {
                    return Ok(items);
                }
            }
        }
    }

    /// GET with rate limiting, a timeout and retries.
    async fn get_json(&self, path: &str) -> Result<Value, RequestError> {
        self.request_json(http::Method::GET, path, None).await
    }

    /// One API request as JSON, retried when the failure may pass.
    pub async fn request_json(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RequestError> {
        self.request(method, path, body).await
    }

    /// One API request, its answer decoded as `T`, retried when the failure may pass.
    async fn request<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, RequestError> {
        self.retrying(path, |_| self.attempt(method.clone(), path, body))
            .await
    }

    /// Runs `operation` (given the attempt number, from 0) under the rate limit until it
    /// succeeds, fails in a way another attempt cannot mend, or the retries are spent: 429
    /// (after `Retry-After` when given), 5xx and connection errors are tried again, with
    /// exponential backoff and jitter.
    async fn retrying<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, RequestError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            let outcome = operation(attempt).await;
            let retry_after = match &outcome {
                Ok(_) => return outcome,
                Err(RequestError::TooManyRequests { retry_after, .. }) => *retry_after,
                Err(RequestError::Server { .. }) | Err(RequestError::Connection(_)) => None,
                Err(_) => return outcome,
            };
            if attempt >= self.limits.retries {
                return outcome;
            }
            let wait = retry_after.unwrap_or_else(|| backoff(attempt));
            tracing::debug!(
                "{what}: retrying in {wait:?} after {:?}",
                outcome.as_ref().err()
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, RequestError> {
        let mut builder = Request::builder().method(method).uri(path);
        let payload = match body {
            Some(body) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(body).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let request = builder
            .header(http::header::ACCEPT, "application/json")
            .body(payload)
            .map_err(|e| RequestError::Invalid(e.to_string()))?;
        let started = Instant::now();
        let response = tokio::time::timeout(self.limits.timeout, self.client.send(request))
            .await
            .map_err(|_| {
                RequestError::Connection(format!(
                    "{path}: no answer within {:?}",
                    self.limits.timeout
                ))
            })?
            .map_err(|e| RequestError::Connection(format!("{path}: {}", error_chain(&e))))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let remaining = self.limits.timeout.saturating_sub(started.elapsed());
        let bytes = tokio::time::timeout(remaining, response.into_body().collect_bytes())
            .await
            .map_err(|_| RequestError::Connection(format!("{path}: response body timed out")))?
            .map_err(|e| {
                RequestError::Connection(format!("{path}: response cut off: {}", error_chain(&e)))
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                RequestError::Connection(format!("{path}: response is not complete JSON: {e}"))
            });
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
        Err(match status {
            StatusCode::GONE => RequestError::Gone,
            StatusCode::TOO_MANY_REQUESTS => RequestError::TooManyRequests {
                retry_after,
                message,
            },
            StatusCode::UNAUTHORIZED => RequestError::Unauthorized(message),
            StatusCode::FORBIDDEN => RequestError::Forbidden(message),
            s if s.is_server_error() => RequestError::Server {
                status: s.as_u16(),
                message: format!("{path}: {message}"),
            },
            s => RequestError::Rejected {
                status: s.as_u16(),
                message: format!("{path}: {message}"),
            },
        })
    }

    /// Server version (`gitVersion`), for `plumbline clusters`.
    pub async fn version(&self) -> Result<String, RequestError> {
        let info = self.get_json("/version").await?;
        Ok(info["gitVersion"].as_str().unwrap_or("unknown").to_string())
    }

    /// The user the credentials authenticate as (SelfSubjectReview, 1.28+).
    pub async fn user(&self) -> Option<String> {
        let review = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        let answer = self
            .request_json(
                http::Method::POST,
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                Some(&review),
            )
            .await
            .ok()?;
        answer["status"]["userInfo"]["username"]
            .as_str()
            .map(str::to_string)
    }

    /// Whether the credentials may `verb` every resource in every namespace
    /// (SelfSubjectAccessReview).
    pub async fn allowed(&self, verb: &str) -> Result<bool, RequestError> {
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "group": "*", "resource": "*"}}});
        let answer = self
            .request_json(
                http::Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                Some(&review),
            )
            .await?;
        Ok(answer["status"]["allowed"].as_bool().unwrap_or(false))
    }
}

/// The field manager of every write plumbline makes: its server-side apply ownership is
/// what the next scan counts as "the previous apply" (see `appliers`).
pub const FIELD_MANAGER: &str = "plumbline";

impl ApiCluster {
    /// The typed-less kube-rs handle for one served resource type, in a namespace or
    /// cluster-wide.
    fn dynamic_api(
        &self,
        resource: &ServedResource,
        namespace: Option<&str>,
    ) -> kube::Api<kube::api::DynamicObject> {
        let gvk =
            kube::api::GroupVersionKind::gvk(&resource.group, &resource.version, &resource.kind);
        let api_resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, &resource.plural);
        match namespace.filter(|_| resource.namespaced) {
            Some(ns) => kube::Api::namespaced_with(self.client.clone(), ns, &api_resource),
            None => kube::Api::all_with(self.client.clone(), &api_resource),
        }
    }

    /// The object as the server holds it now, `None` when it does not exist.
    pub async fn get_object(
        &self,
        resource: &ServedResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, RequestError> {
        self.limiter.acquire().await;
        let object = self
            .dynamic_api(resource, namespace)
            .get_opt(name)
            .await
            .map_err(from_kube)?;
        object.map(to_json).transpose()
    }

    /// Server-side apply of `object` with field manager [`FIELD_MANAGER`]; with `dry_run`
    /// the server merges, validates and answers without persisting anything (`dryRun=All`).
    pub async fn apply(
        &self,
        resource: &ServedResource,
        object: &Value,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, RequestError> {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::Invalid("the object has no metadata.name".into()))?;
        let mut params = kube::api::PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        // Server-side apply is idempotent: an attempt that failed may be made again.
        let api = self.dynamic_api(resource, namespace);
        let patch = kube::api::Patch::Apply(object);
        let applied = self
            .retrying(name, |_| async {
                api.patch(name, &params, &patch).await.map_err(from_kube)
            })
            .await?;
        to_json(applied)
    }

    /// Deletes an object (dependents in the background, as kubectl does); with `dry_run`
    /// the server checks the deletion without making it.
    pub async fn delete_object(
        &self,
        resource: &ServedResource,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), RequestError> {
        let mut params = kube::api::DeleteParams::background();
        if dry_run {
            params = params.dry_run();
        }
        let api = self.dynamic_api(resource, namespace);
        self.retrying(name, |attempt| {
            let api = &api;
            let params = &params;
            async move {
                match api.delete(name, params).await.map_err(from_kube) {
                    Ok(_) => Ok(()),
                    // An earlier attempt whose answer was lost may have deleted it.
                    Err(RequestError::Rejected { status: 404, .. }) if attempt > 0 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }
}

fn to_json(object: kube::api::DynamicObject) -> Result<Value, RequestError> {
    serde_json::to_value(object)
        .map_err(|e| RequestError::Connection(format!("the answer is not an object: {e}")))
}

/// A kube-rs error as the request errors of this module, keeping the server's message (a
/// conflict names the manager that owns the field).
fn from_kube(error: kube::Error) -> RequestError {
    match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            match status.code {
                401 => RequestError::Unauthorized(message),
                403 => RequestError::Forbidden(message),
                429 => RequestError::TooManyRequests {
                    retry_after: None,
                    message,
                },
                code if code >= 500 => RequestError::Server {
                    status: code,
                    message,
                },
                code => RequestError::Rejected {
                    status: code,
                    message,
                },
            }
        }
        other => RequestError::Connection(error_chain(&other)),
    }
}

/// One page of a LIST, decoded straight into what the comparison reads (with each object's
/// `status` when `KEEP_STATUS`).
#[derive(Deserialize)]
struct ListPage<const KEEP_STATUS: bool> {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<LiveItem<KEEP_STATUS>>,
}

impl<const KEEP_STATUS: bool> ListPage<KEEP_STATUS> {
    /// The objects and the continue token.
    fn into_parts(self) -> (Vec<Value>, Option<String>) {
        let items = self.items.into_iter().map(|LiveItem(item)| item).collect();
        (items, self.metadata.token)
    }
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    token: Option<String>,
}

/// A listed object without what the comparison never reads, left out while decoding so
/// that it is never built: `status` (most of a workload's bytes), and of each managedFields
/// entry all but the manager, operation, subresource and fields, with `f:status` removed
/// and the fields kept as JSON text (the diff parses them only when it needs them).
/// Holding 10,000 objects per cluster, this is most of the memory a scan needs.
struct LiveItem<const KEEP_STATUS: bool>(Value);

impl<'de, const KEEP_STATUS: bool> Deserialize<'de> for LiveItem<KEEP_STATUS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<const KEEP_STATUS: bool>;
        impl<'de, const KEEP_STATUS: bool> Visitor<'de> for Object<KEEP_STATUS> {
            type Value = LiveItem<KEEP_STATUS>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LiveItem<KEEP_STATUS>, A::Error> {
                let mut object = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "status" if !KEEP_STATUS => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "metadata" => {
                            let LiveMetadata(meta) = map.next_value()?;
                            object.insert(key, meta);
                        }
                        _ => {
                            let Sized(value) = map.next_value()?;
                            object.insert(key, value);
                        }
                    }
                }
                Ok(LiveItem(Value::Object(object)))
            }
        }
        deserializer.deserialize_map(Object::<KEEP_STATUS>)
    }
}

/// Object metadata with its managedFields compacted (see [`LiveItem`]).
struct LiveMetadata(Value);

impl<'de> Deserialize<'de> for LiveMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Metadata;
        impl<'de> Visitor<'de> for Metadata {
            type Value = LiveMetadata;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("object metadata")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LiveMetadata, A::Error> {
                let mut meta = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "managedFields" {
                        let entries: Option<Vec<ManagedEntry>> = map.next_value()?;
                        let kept: Vec<Value> = entries
                            .into_iter()
                            .flatten()
                            .filter_map(ManagedEntry::compact)
                            .collect();
                        meta.insert(key, Value::Array(kept));
                    } else {
                        let Sized(value) = map.next_value()?;
                        meta.insert(key, value);
                    }
                }
                Ok(LiveMetadata(Value::Object(meta)))
            }
        }
        deserializer.deserialize_map(Metadata)
    }
}

/// A JSON value whose objects hold no spare room: each is built once its members are known,
/// where inserting them one by one into a growing object leaves up to twice the room
/// (a one-member object the room of three). Live objects are held by the ten thousand.
struct Sized(Value);

impl<'de> Deserialize<'de> for Sized {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Sized;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Sized, E> {
                Ok(Sized(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Sized, E> {
                Ok(Sized(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Sized, E> {
                Ok(Sized(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Sized, E> {
                Ok(Sized(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Sized, E> {
                Ok(Sized(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Sized, E> {
                Ok(Sized(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Sized, E> {
                Ok(Sized(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Sized, E> {
                Ok(Sized(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Sized, D::Error> {
                Sized::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sized, A::Error> {
                let mut items = Vec::new();
                while let Some(Sized(item)) = seq.next_element()? {
                    items.push(item);
                }
                items.shrink_to_fit();
                Ok(Sized(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sized, A::Error> {
                let mut members: Vec<(String, Value)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Sized(value) = map.next_value()?;
                    members.push((key, value));
                }
                let mut object = Map::with_capacity(members.len());
                object.extend(members);
                Ok(Sized(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// The parts of a managedFields entry that say who owns which field.
#[derive(Deserialize)]
struct ManagedEntry {
    manager: Option<String>,
    operation: Option<String>,
    subresource: Option<String>,
    #[serde(rename = "fieldsV1")]
    fields: Option<Box<RawValue>>,
}

impl ManagedEntry {
    /// The entry as the comparison reads it, or `None` when it can attribute nothing: it
    /// names no manager, or it owns only `status`, which is never compared.
    fn compact(self) -> Option<Value> {
        let manager = self.manager?;
        let mut entry = Map::new();
        entry.insert("manager".into(), Value::String(manager));
        if let Some(operation) = self.operation {
            entry.insert("operation".into(), Value::String(operation));
        }
        if let Some(subresource) = self.subresource {
            entry.insert("subresource".into(), Value::String(subresource));
        }
        if let Some(fields) = self.fields {
            entry.insert("fieldsV1".into(), Value::String(fields_text(fields.get())?));
        }
        Some(Value::Object(entry))
    }
}

/// A `fieldsV1` set as the comparison keeps it: compact JSON text without `f:status`, or
/// `None` when it owns only `f:status` (`{}` owns the whole object and is kept).
fn fields_text(raw: &str) -> Option<String> {
    if let Some(kept) = copy_fields(raw) {
        return kept;
    }
    let Ok(mut fields) = serde_json::from_str::<Value>(raw) else {
        return Some(raw.to_string());
    };
    if let Some(map) = fields.as_object_mut() {
        if map.remove("f:status").is_some() && map.is_empty() {
            return None;
        }
    }
    Some(fields.to_string())
}

/// [`fields_text`] without building the set's tree, for text that writing out would not
/// change (no whitespace, only the escapes serde_json writes), as API servers send it: the
/// top-level members other than `f:status` are copied as they are. `None` when the text
/// is not such. A set holds only objects and string keys, so no number can be respelled.
fn copy_fields(raw: &str) -> Option<Option<String>> {
    let bytes = raw.as_bytes();
    let mut escaped = false;
    for &b in bytes {
        if escaped {
            if !matches!(b, b'"' | b'\\' | b'n' | b't' | b'r' | b'b' | b'f') {
                return None;
            }
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b.is_ascii_whitespace() {
            return None;
        }
    }
    let Members(members) = serde_json::from_str(raw).ok()?;
    let mut text = Vec::with_capacity(raw.len());
    text.push(b'{');
    let mut status = false;
    for (key, value) in members {
        if key == "f:status" {
            status = true;
            continue;
        }
        if text.len() > 1 {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, &key).ok()?;
        text.push(b':');
        text.extend_from_slice(value.get().as_bytes());
    }
    text.push(b'}');
    if status && text.len() == 2 {
        return Some(None);
    }
    String::from_utf8(text).ok().map(Some)
}

/// The members of a JSON object, their values left as the text they are.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// Lists across more namespaces than this are read in one list across all namespaces.
const PER_NAMESPACE_LISTS: usize = 8;

/// One LIST to make: a resource type in one namespace or all, narrowed by a label selector,
/// keeping (for a list across all namespaces) only the namespaces the apps touch.
struct ListRequest {
    resource: ServedResource,
    namespace: Option<String>,
    selector: Option<String>,
    keep: Option<BTreeSet<String>>,
}

impl ListRequest {
    fn cluster(
        resource: ServedResource,
        selector: Option<String>,
        keep: Option<BTreeSet<String>>,
    ) -> Self {
        ListRequest {
            resource,
            namespace: None,
            selector,
            keep,
        }
    }
}

/// Why a LIST failed: a refusal is worth another try in narrower lists.
enum ListError {
    Forbidden(String),
    Other(ClusterError),
}

impl From<ListError> for ClusterError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Forbidden(message) => ClusterError::error(format!("forbidden: {message}")),
            ListError::Other(e) => e,
        }
    }
}

/// A failed API request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Connection(String),
    #[error("too many requests: {message}")]
    TooManyRequests {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("the continue token expired")]
    Gone,
    #[error("request rejected ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<RequestError> for ClusterError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Connection(_) | RequestError::TooManyRequests { .. } => {
                ClusterError::unreachable(e.to_string())
            }
            _ => ClusterError::error(e.to_string()),
        }
    }
}

async fn client_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, ClusterError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    if let Some(path) = kubeconfig {
        let file = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| ClusterError::error(format!("kubeconfig {}: {e}", path.display())))?;
        return kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| {
                ClusterError::error(format!(
                    "kubeconfig {}: {}",
                    path.display(),
                    error_chain(&e)
                ))
            });
    }
    match kube::Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        Err(kubeconfig_error) if context.is_none() => {
            kube::Config::incluster().map_err(|in_cluster| {
                ClusterError::error(format!(
                    "no kubeconfig ({}) and not in a cluster ({in_cluster})",
                    error_chain(&kubeconfig_error)
                ))
            })
        }
        Err(e) => Err(ClusterError::error(format!(
            "kubeconfig: {}",
            error_chain(&e)
        ))),
    }
}

/// An error with its causes, as one line: TLS and connection errors hide the useful part.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Exponential backoff with jitter: 200 ms, 400 ms, 800 ms … capped at 10 s, each plus up
/// to half again, so that many clients retrying do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let jitter = rand::random_range(0..=base / 2);
    Duration::from_millis(base + jitter)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs futures concurrently on the current task and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(index, future)| match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => {
                outputs[*index] = Some(output);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A token bucket: `burst` requests at once, refilled at `qps` per second.
struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(qps: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps: qps.max(0.1),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, last) = *state;
                let now = Instant::now();
                let tokens =
                    (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return;
                }
                *state = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(
            backoff(0) >= Duration::from_millis(200) && backoff(0) <= Duration::from_millis(300)
        );
        assert!(backoff(3) >= Duration::from_millis(1600));
        assert!(backoff(30) <= Duration::from_millis(15_000));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("app.kubernetes.io/instance"),
            "app.kubernetes.io%2Finstance"
        );
        assert_eq!(encode("a in (x,y)"), "a%20in%20%28x%2Cy%29");
    }

    #[test]
    fn fields_are_kept_as_compact_text_without_status() {
        let cases = [
            r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{}}}}}"#,
            r#"{"f:spec":{"f:replicas":{}},"f:status":{"f:readyReplicas":{}}}"#,
            r#"{"f:status":{"f:readyReplicas":{}}}"#,
            r#"{}"#,
            r#"{ "f:spec" : { "f:replicas" : {} }, "f:status": {} }"#,
            r#"{"f:data":{"f:a\u00e9\/b":{}},"f:status":{}}"#,
            r#"{"f:data":{"f:line\nbreak":{}}}"#,
            r#"null"#,
        ];
        for raw in cases {
            let expected = serde_json::from_str::<Value>(raw).ok().and_then(|mut v| {
                if let Some(map) = v.as_object_mut() {
                    if map.remove("f:status").is_some() && map.is_empty() {
                        return None;
                    }
                }
                Some(v.to_string())
            });
            assert_eq!(fields_text(raw), expected, "{raw}");
        }
        assert!(copy_fields(cases[0]).is_some(), "compact text is copied");
        assert!(copy_fields(cases[4]).is_none(), "other text is parsed");
    }

    #[test]
    fn sized_values_decode_as_serde_json_does() {
        let text = r#"{"a": 1, "b": -2, "c": 2.5, "d": 1e300, "e": null, "f": true,
            "g": "\u00e9\n", "h": [], "i": {}, "j": [{"k": {"l": [1, "x", null]}}],
            "a": "again", "m": 18446744073709551615}"#;
        let Sized(sized) = serde_json::from_str(text).expect("valid JSON");
        let value: Value = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(sized, value);
        assert_eq!(sized.to_string(), value.to_string());
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(1000.0, 5);
        let started = Instant::now();
        let done = block_on(async {
            for _ in 0..15 {
                limiter.acquire().await;
            }
        });
        assert!(done.is_ok());
        // 5 at once, 10 more at 1000/s: about 10 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(8),
            "{:?}",
            started.elapsed()
        );
    }
}
