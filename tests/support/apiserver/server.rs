//! HTTP side: the accept loop (plain or TLS, one hyper connection per socket, so the
//! client certificate of each connection is known), the gate every request passes
//! (request log, latency, authentication, injected faults) and the API handlers.

use std::collections::HashMap;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::fields::Schema;
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::{bytes_response, json_response, ApiError};
use super::store::{ListOptions, Store, WriteOptions};

/// A fault to inject into the next matching requests; see [`super::ApiServer::inject`].
#[derive(Debug, Clone)]
pub struct Fault {
    pub(super) action: FaultAction,
    pub(super) times: usize,
    pub(super) path: Option<String>,
    pub(super) method: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum FaultAction {
    TooManyRequests { retry_after: u64 },
    InternalError,
    DropList,
    ExpireContinue,
}

impl Fault {
    /// 429 `TooManyRequests` with `Retry-After: retry_after_secs` (0 allowed: retry at once).
    pub fn too_many_requests(retry_after_secs: u64) -> Fault {
        Fault::new(FaultAction::TooManyRequests {
            retry_after: retry_after_secs,
        })
    }

    /// 500 `InternalError`.
    pub fn internal_error() -> Fault {
        Fault::new(FaultAction::InternalError)
    }

    /// A LIST whose response sends the headers and part of the body, then closes the
    /// connection (an apiserver restart or a proxy timeout in the middle of a page).
    pub fn drop_list() -> Fault {
        Fault::new(FaultAction::DropList)
    }

    /// The next LIST with a `continue` token answers 410 `Expired`, as after etcd compaction.
    pub fn expire_continue() -> Fault {
        Fault::new(FaultAction::ExpireContinue)
    }

    fn new(action: FaultAction) -> Fault {
        Fault {
            action,
            times: 1,
            path: None,
            method: None,
        }
    }

    /// Applies to the next `n` matching requests instead of one.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    /// Only requests whose path contains `substring` match.
    pub fn on_path(mut self, substring: &str) -> Fault {
        self.path = Some(substring.to_string());
        self
    }

    /// Only requests with this method (`PATCH`, `DELETE` …) match.
    pub fn on_method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_string());
        self
    }
}

/// One request as the server received it, for assertions on what a client asked.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
}

impl RecordedRequest {
    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        parse_query(&self.query).remove(name)
    }
}

/// A deny rule: `verb` (or `*`) on `resource` (`secrets`, `deployments.apps`, or `*`).
#[derive(Debug, Clone)]
pub(super) struct Denial {
    pub verb: String,
    pub resource: String,
}

pub(super) struct Auth {
    pub token: Option<String>,
    /// Client certificate DER -> user name.
    pub cert_users: HashMap<Vec<u8>, String>,
    pub user: String,
    pub denials: Vec<Denial>,
}

/// Everything the handlers and the test handle share.
pub(super) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Mutex<Vec<Fault>>,
    pub latency: Mutex<Duration>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub auth: Mutex<Auth>,
    pub version: Value,
    pub address: String,
}

/// Locks a mutex even if a panicking test thread poisoned it: the data stays usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Takes one use of the first armed fault of `kinds` that matches `method` and `path`.
    fn take_fault(
        &self,
        method: &str,
        path: &str,
        matches: impl Fn(&FaultAction) -> bool,
    ) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|f| {
            f.times > 0
                && matches(&f.action)
                && f.path.as_deref().is_none_or(|p| path.contains(p))
                && f.method.as_deref().is_none_or(|m| m == method)
        })?;
        let fault = &mut faults[index];
        fault.times -= 1;
        let action = fault.action.clone();
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(action)
    }
}

/// The authenticated user of a request, set by the gate.
#[derive(Debug, Clone)]
struct User(String);

/// The client certificate a TLS connection presented, set by the accept loop.
#[derive(Debug, Clone, Default)]
struct Peer {
    certificate: Option<Vec<u8>>,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(healthy))
        .route("/livez", get(healthy))
        .route("/readyz", get(healthy))
        .route("/api", get(api))
        .route("/api/v1", get(core_resources))
        .route("/apis", get(apis))
        .route("/apis/{group}", get(api_group))
        .route("/apis/{group}/{version}", get(group_resources))
        .route("/api/v1/{*rest}", any(core_request))
        .route("/apis/{group}/{version}/{*rest}", any(group_request))
        .fallback(|| async { ApiError::no_route() })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// Serves connections until `shutdown` changes. Each connection runs as its own task and
/// carries its client certificate into the requests.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let peer = Peer {
                        certificate: stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .map(|cert| cert.to_vec()),
                    };
                    serve_connection(TokioIo::new(stream), app, peer).await;
                }
                None => serve_connection(TokioIo::new(tcp), app, Peer::default()).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: Router, peer: Peer)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(peer.clone());
            app.clone().oneshot(request.map(Body::new))
        });
    // A client that goes away mid-request is not the server's error.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// Records the request, waits the injected latency, authenticates, then answers an
/// injected 429 or 500 if one is armed for this path.
async fn gate(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    lock(&shared.requests).push(RecordedRequest {
        method: request.method().to_string(),
        path: path.clone(),
        query: request.uri().query().unwrap_or("").to_string(),
    });
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let public = matches!(
        path.as_str(),
        "/version" | "/healthz" | "/livez" | "/readyz"
    );
    let user = {
        let auth = lock(&shared.auth);
        let peer = request
            .extensions()
            .get::<Peer>()
            .cloned()
            .unwrap_or_default();
        let by_cert = peer
            .certificate
            .as_ref()
            .and_then(|der| auth.cert_users.get(der))
            .cloned();
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let auth_required = auth.token.is_some() || !auth.cert_users.is_empty();
        match (&auth.token, bearer, by_cert) {
            (Some(token), Some(given), _) if token == given => Some(auth.user.clone()),
            // A wrong token is rejected even if a certificate would do, as the real server does.
            (_, Some(_), _) if auth.token.is_some() => None,
            (_, _, Some(user)) => Some(user),
            _ if !auth_required => Some("system:anonymous".to_string()),
            _ => None,
        }
    };
    let user = match user {
        Some(user) => user,
        None if public => "system:anonymous".to_string(),
        None => return ApiError::unauthorized().into_response(),
    };
    request.extensions_mut().insert(User(user));
    let method = request.method().to_string();
    let injected = shared.take_fault(&method, &path, |a| {
        matches!(
            a,
            FaultAction::TooManyRequests { .. } | FaultAction::InternalError
        )
    });
    match injected {
        Some(FaultAction::TooManyRequests { retry_after }) => {
            return ApiError::too_many_requests(retry_after).into_response();
        }
        Some(_) => return ApiError::internal("injected fault").into_response(),
        None => {}
    }
    let mut response = next.run(request).await;
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("audit-id", id);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

async fn healthy() -> &'static str {
    "ok"
}

async fn version(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &shared.version)
}

async fn api(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &resources::api_versions(&shared.address))
}

async fn core_resources(State(shared): State<Arc<Shared>>) -> Response {
    let store = lock(&shared.store);
    match resources::api_resource_list(&store.types, "", "v1") {
        Some(list) => json_response(StatusCode::OK, &list),
        None => ApiError::no_route().into_response(),
    }
}

async fn apis(State(shared): State<Arc<Shared>>) -> Response {
    let store = lock(&shared.store);
    json_response(StatusCode::OK, &resources::api_group_list(&store.types))
}

async fn api_group(State(shared): State<Arc<Shared>>, Path(group): Path<String>) -> Response {
    let store = lock(&shared.store);
    match resources::api_group(&store.types, &group) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => ApiError::no_route().into_response(),
    }
}

async fn group_resources(
    State(shared): State<Arc<Shared>>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    let store = lock(&shared.store);
    match resources::api_resource_list(&store.types, &group, &version) {
        Some(list) => json_response(StatusCode::OK, &list),
        None => ApiError::no_route().into_response(),
    }
}

/// The parts of a request every resource handler needs.
struct ApiRequest {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    user: String,
    body: Bytes,
}

async fn core_request(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
    request: Request,
) -> Response {
    resource_request(shared, String::new(), "v1".to_string(), rest, request).await
}

async fn group_request(
    State(shared): State<Arc<Shared>>,
    Path((group, version, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    resource_request(shared, group, version, rest, request).await
}

async fn resource_request(
    shared: Arc<Shared>,
    group: String,
    version: String,
    rest: String,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::bad_request("the request body could not be read").into_response();
    };
    let user = parts
        .extensions
        .get::<User>()
        .map(|u| u.0.clone())
        .unwrap_or_default();
    let Query(query) = match Query::<HashMap<String, String>>::try_from_uri(&parts.uri) {
        Ok(query) => query,
        Err(e) => return ApiError::bad_request(format!("invalid query: {e}")).into_response(),
    };
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        user,
        body,
    };
    match handle(&shared, &group, &version, &rest, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Where a resource path points: a type, a namespace (if any), a name and subresource.
struct Target {
    resource: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn resolve(store: &Store, group: &str, version: &str, rest: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let find = |plural: &str| store.find_type(group, version, plural);
    let namespaced = |plural: &str| find(plural).filter(|t| t.namespaced);
    let target = |resource: ResourceType,
                  namespace: Option<&str>,
                  name: Option<&str>,
                  sub: Option<&str>| Target {
        resource,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    };
    let found = match segments.as_slice() {
        ["namespaces", ns, plural, rest @ ..] => {
            match namespaced(plural) {
                Some(t) => match rest {
                    [] => Some(target(t, Some(ns), None, None)),
                    [name] => Some(target(t, Some(ns), Some(name), None)),
                    [name, sub] => Some(target(t, Some(ns), Some(name), Some(sub))),
                    _ => None,
                },
                // `/api/v1/namespaces/{name}/status` is the namespace's own subresource.
                None if rest.is_empty() && group.is_empty() => {
                    find("namespaces").map(|t| target(t, None, Some(ns), Some(plural)))
                }
                None => None,
            }
        }
        [plural] => find(plural).map(|t| target(t, None, None, None)),
        [plural, name] => find(plural)
            .filter(|t| !t.namespaced)
            .map(|t| target(t, None, Some(name), None)),
        [plural, name, sub] => find(plural)
            .filter(|t| !t.namespaced)
            .map(|t| target(t, None, Some(name), Some(sub))),
        _ => None,
    };
    found.ok_or_else(ApiError::no_route)
}

async fn handle(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &str,
    request: ApiRequest,
) -> Result<Response, ApiError> {
    let target = resolve(&lock(&shared.store), group, version, rest)?;
    if let Some(sub) = &target.subresource {
        if sub != "status" {
            return Err(ApiError::no_route());
        }
    }
    let t = &target.resource;
    let verb = match (&request.method, &target.name) {
        (&Method::GET, None) if flag(&request.query, "watch") => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, None) => "create",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::PUT, Some(_)) => "update",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    authorize(
        shared,
        &request.user,
        verb,
        t,
        target.namespace.as_deref(),
        target.name.as_deref(),
    )?;
    if t.create_only {
        return match verb {
            "create" if t.kind == "SelfSubjectReview" => Ok(self_review(&request.user)),
            "create" => access_review(shared, &request),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        };
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    match verb {
        "list" => list(shared, &target, &request),
        "get" => {
            let store = lock(&shared.store);
            let object = store.get(t, &namespace, target.name.as_deref().unwrap_or(""))?;
            Ok(json_response(StatusCode::OK, &object))
        }
        "create" => {
            let object = parse_body(&request)?;
            let options = write_options(&request.query, "kubectl-client-side-apply")?;
            let created =
                lock(&shared.store).create(t, target.namespace.as_deref(), object, &options)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        "patch" => patch(shared, &target, &request),
        "update" => put(shared, &target, &request),
        "delete" => {
            let name = target.name.as_deref().unwrap_or("");
            let dry_run = dry_run(&request.query)? || delete_options_dry_run(&request.body)?;
            let deleted = lock(&shared.store).delete(t, &namespace, name, dry_run)?;
            let uid = deleted
                .pointer("/metadata/uid")
                .cloned()
                .unwrap_or(Value::Null);
            let mut details = json!({"name": name, "kind": t.plural, "uid": uid});
            if !t.group.is_empty() {
                details["group"] = json!(t.group);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            ))
        }
        "watch" => Err(ApiError::method_not_allowed(
            "watch is not served by the test API server",
        )),
        _ => Err(ApiError::method_not_allowed(format!(
            "{verb} is not served by the test API server"
        ))),
    }
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// `dryRun` of a DELETE's DeleteOptions body, where kubectl and kube-rs send it (the server
/// honours it there as in the query).
fn delete_options_dry_run(body: &[u8]) -> Result<bool, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let options: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
    match options.get("dryRun").and_then(Value::as_array) {
        None => Ok(false),
        Some(values) if values.iter().all(|v| v == "All") => Ok(!values.is_empty()),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn write_options(
    query: &HashMap<String, String>,
    default_manager: &str,
) -> Result<WriteOptions, ApiError> {
    let mut options = WriteOptions::manager(
        query
            .get("fieldManager")
            .map(String::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(default_manager),
    );
    options.dry_run = dry_run(query)?;
    options.force = match query.get("force").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid force value {other:?}"
            )))
        }
    };
    Ok(options)
}

fn authorize(
    shared: &Shared,
    user: &str,
    verb: &str,
    t: &ResourceType,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if denied(&lock(&shared.auth).denials, verb, &t.group, &t.plural) {
        return Err(ApiError::forbidden(
            user, verb, &t.group, &t.plural, namespace, name,
        ));
    }
    Ok(())
}

fn denied(denials: &[Denial], verb: &str, group: &str, resource: &str) -> bool {
    let qualified = super::status::qualified(resource, group);
    denials.iter().any(|d| {
        (d.verb == "*" || d.verb == verb) && (d.resource == "*" || d.resource == qualified)
    })
}

/// `POST selfsubjectreviews` (authentication.k8s.io/v1, GA in 1.28): who the caller is.
fn self_review(user: &str) -> Response {
    json_response(
        StatusCode::CREATED,
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": user, "groups": ["system:authenticated"]}}}),
    )
}

/// `POST selfsubjectaccessreviews`: allowed unless a deny rule matches.
fn access_review(shared: &Shared, request: &ApiRequest) -> Result<Response, ApiError> {
    let review = parse_body(request)?;
    let attributes = review.pointer("/spec/resourceAttributes");
    let text = |field: &str| {
        attributes
            .and_then(|a| a.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let allowed = attributes.is_none()
        || !denied(
            &lock(&shared.auth).denials,
            &text("verb"),
            &text("group"),
            &text("resource"),
        );
    let mut response = review.clone();
    if let Some(map) = response.as_object_mut() {
        map.insert("apiVersion".to_string(), json!("authorization.k8s.io/v1"));
        map.insert("kind".to_string(), json!("SelfSubjectAccessReview"));
        map.insert("metadata".to_string(), json!({"creationTimestamp": null}));
        let status = if allowed {
            json!({"allowed": true, "reason": "allowed by the test API server"})
        } else {
            json!({"allowed": false})
        };
        map.insert("status".to_string(), status);
    }
    Ok(json_response(StatusCode::CREATED, &response))
}

fn list(shared: &Shared, target: &Target, request: &ApiRequest) -> Result<Response, ApiError> {
    let query = &request.query;
    let labels = match query.get("labelSelector") {
        Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
        None => LabelSelector::default(),
    };
    let fields = match query.get("fieldSelector") {
        Some(s) => FieldSelector::parse(s).map_err(ApiError::bad_request)?,
        None => FieldSelector::default(),
    };
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(text) => Some(
            text.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
        ),
    };
    let continue_token = query.get("continue").filter(|c| !c.is_empty()).cloned();
    let options = ListOptions {
        labels,
        fields,
        limit,
        continue_token,
        resource_version: query.get("resourceVersion").cloned(),
        resource_version_match: query.get("resourceVersionMatch").cloned(),
    };
    if let Some(token) = &options.continue_token {
        if shared
            .take_fault("GET", &request.path, |a| *a == FaultAction::ExpireContinue)
            .is_some()
        {
            // The inconsistent-continue token a real 410 carries: same position, latest revision.
            let inconsistent = token_at_latest(token);
            return Err(ApiError::expired(inconsistent));
        }
    }
    let body = lock(&shared.store)
        .list(&target.resource, target.namespace.as_deref(), &options)?
        .to_json();
    if shared
        .take_fault("GET", &request.path, |a| *a == FaultAction::DropList)
        .is_some()
    {
        return Ok(truncated_response(body));
    }
    Ok(bytes_response(StatusCode::OK, body))
}

/// A continue token pointing at the same place at the latest revision (rv 0).
fn token_at_latest(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let decoded: Option<Value> = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match decoded {
        Some(mut value) => {
            value["rv"] = json!(0);
            URL_SAFE_NO_PAD.encode(value.to_string())
        }
        None => String::new(),
    }
}

/// A 200 with the full `Content-Length` whose body stops halfway and the connection closes.
fn truncated_response(body: Vec<u8>) -> Response {
    let length = body.len();
    let half = Bytes::from(body).slice(..length / 2);
    let mut response = Response::new(Body::new(Truncated {
        first: Some(half),
        pause: Box::pin(tokio::time::sleep(Duration::from_millis(20))),
    }));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&length.to_string()) {
        headers.insert(header::CONTENT_LENGTH, value);
    }
    response
}

/// Yields the first half, waits so hyper flushes it, then fails: hyper closes the socket.
struct Truncated {
    first: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Truncated {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "injected: connection dropped mid-list",
            )))),
        }
    }
}

/// The manager of a write without `fieldManager`: the user agent's program name, as the
/// real server derives it.
fn default_manager(request: &ApiRequest) -> String {
    request
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|agent| agent.split('/').next())
        .filter(|name| !name.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn patch(shared: &Shared, target: &Target, request: &ApiRequest) -> Result<Response, ApiError> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if target.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "writes to a subresource are not served by the test API server",
        ));
    }
    let t = &target.resource;
    let name = target.name.as_deref().unwrap_or("");
    let namespace = target.namespace.as_deref().unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == "application/apply-patch+yaml" {
        return apply(shared, target, request);
    }
    let patch: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not JSON: {e}")))?;
    let options = write_options(&request.query, &default_manager(request))?;
    let mut store = lock(&shared.store);
    let mut object = store.get(t, namespace, name)?;
    match media {
        "application/json-patch+json" => {
            let operations: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut object, &operations).map_err(|e| {
                ApiError::invalid(
                    &t.kind,
                    &t.group,
                    name,
                    "patch",
                    &format!("the JSON patch failed: {e}"),
                )
            })?;
        }
        "application/merge-patch+json" => json_patch::merge(&mut object, &patch),
        // Strategic merge: maps merge, lists with a merge key merge by key, others are
        // replaced; `$patch` directives are not interpreted.
        "application/strategic-merge-patch+json" => {
            Schema::new(t).merge(&mut object, &without_directives(patch))
        }
        _ => return Err(ApiError::unsupported_media_type(&content_type)),
    }
    let updated = store.update(t, namespace, name, object, &options)?;
    Ok(json_response(StatusCode::OK, &updated))
}

fn without_directives(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_directives).collect()),
        other => other,
    }
}

/// PUT: the body replaces the object (status kept), with the resourceVersion precondition.
fn put(shared: &Shared, target: &Target, request: &ApiRequest) -> Result<Response, ApiError> {
    if target.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "writes to a subresource are not served by the test API server",
        ));
    }
    let object = parse_body(request)?;
    let options = write_options(&request.query, &default_manager(request))?;
    let name = target.name.as_deref().unwrap_or("");
    let namespace = target.namespace.as_deref().unwrap_or("");
    let updated =
        lock(&shared.store).update(&target.resource, namespace, name, object, &options)?;
    Ok(json_response(StatusCode::OK, &updated))
}

/// Server-side apply.
fn apply(shared: &Shared, target: &Target, request: &ApiRequest) -> Result<Response, ApiError> {
    if request
        .query
        .get("fieldManager")
        .is_none_or(String::is_empty)
    {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            "fieldManager",
            "Required value: is required for apply patch",
        ));
    }
    let config: Value = serde_yaml::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration is not an object",
        ));
    }
    let options = write_options(&request.query, "")?;
    let name = target.name.as_deref().unwrap_or("");
    let (object, created) = lock(&shared.store).apply(
        &target.resource,
        target.namespace.as_deref(),
        name,
        config,
        &options,
    )?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &object))
}

/// A request body as JSON, or YAML when the content type says so.
fn parse_body(request: &ApiRequest) -> Result<Value, ApiError> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let parsed = if content_type.contains("yaml") {
        serde_yaml::from_slice::<Value>(&request.body).map_err(|e| e.to_string())
    } else if content_type.contains("json") || content_type.is_empty() {
        serde_json::from_slice::<Value>(&request.body).map_err(|e| e.to_string())
    } else {
        return Err(ApiError::unsupported_media_type(content_type));
    };
    let value = parsed.map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not an object",
        ));
    }
    Ok(value)
}

fn parse_query(query: &str) -> HashMap<String, String> {
    let uri = format!("/?{query}");
    uri.parse::<axum::http::Uri>()
        .ok()
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok())
        .map(|Query(map)| map)
        .unwrap_or_default()
}
