//! Self-tests of the loopback API server in tests/support/apiserver: what plumbline's
//! integration tests rely on it for, checked with a plain HTTP client, rustls and kubectl.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Fault, DEFAULT_USER};
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;

const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
          env:
            - name: MODE
              value: production
          resources:
            limits: {cpu: 0.5, memory: 256Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web}
data:
  mode: production
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
  namespace: shop
spec:
  size: 3
  parts: [a, b]
"#;

fn shop_server() -> ApiServer {
    let server = ApiServer::builder()
        .crd("example.com", "v1", "Widget", "widgets", true)
        .start();
    server.seed(SHOP);
    server
}

/// A response as a client sees it; `body` is `Err` when the connection broke mid-body.
struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: Result<Bytes, String>,
}

impl Reply {
    fn json(&self) -> Value {
        let body = self.body.as_ref().expect("complete body");
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
    }
}

/// A minimal HTTP/1.1 client over TCP or rustls, one connection per request.
struct Client {
    address: String,
    tls: Option<tokio_rustls::TlsConnector>,
    token: Option<String>,
}

impl Client {
    fn new(server: &ApiServer) -> Client {
        Client::with(server, server.token(), false)
    }

    fn with(server: &ApiServer, token: Option<&str>, client_cert: bool) -> Client {
        let address = server
            .url()
            .split("://")
            .nth(1)
            .expect("url has a scheme")
            .to_string();
        let tls = server.ca_pem().map(|ca| {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).expect("CA PEM"))
                .expect("add CA");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots);
            let config = match server.client_cert_pem().filter(|_| client_cert) {
                Some((cert, key)) => builder
                    .with_client_auth_cert(
                        vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert PEM")],
                        PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM"),
                    )
                    .expect("client auth"),
                None => builder.with_no_client_auth(),
            };
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        Client {
            address,
            tls,
            token: token.map(str::to_string),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, Vec::new()).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let tcp = TcpStream::connect(&self.address).await.expect("connect");
        match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from("127.0.0.1").expect("server name");
                let stream = connector.connect(name, tcp).await.expect("TLS handshake");
                self.exchange(TokioIo::new(stream), method, path, content_type, body)
                    .await
            }
            None => {
                self.exchange(TokioIo::new(tcp), method, path, content_type, body)
                    .await
            }
        }
    }

    async fn exchange<I>(
        &self,
        io: I,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.address)
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        let response = sender.send_request(request).await.expect("response head");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .map_err(|e| e.to_string());
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn apply(&self, path: &str, yaml: &str) -> Reply {
        self.send(
            "PATCH",
            path,
            Some("application/apply-patch+yaml"),
            yaml.as_bytes().to_vec(),
        )
        .await
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn discovery_lists_builtin_and_custom_resources() {
    let server = shop_server();
    let client = Client::new(&server);
    let api = client.get("/api").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));

    let core = client.get("/api/v1").await.json();
    assert_eq!(core["kind"], "APIResourceList");
    let resource = |list: &Value, name: &str| {
        list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in discovery"))
    };
    assert_eq!(resource(&core, "configmaps")["namespaced"], true);
    assert_eq!(resource(&core, "namespaces")["namespaced"], false);
    assert_eq!(resource(&core, "secrets")["kind"], "Secret");
    assert!(resource(&core, "pods")["verbs"]
        .as_array()
        .expect("verbs")
        .contains(&json!("list")));

    let groups = client.get("/apis").await.json();
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["name"].as_str().expect("name"))
        .collect();
    for expected in [
        "apps",
        "batch",
        "networking.k8s.io",
        "autoscaling",
        "policy",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "authorization.k8s.io",
        "example.com",
    ] {
        assert!(
            group_names.contains(&expected),
            "{expected} missing from {group_names:?}"
        );
    }
    let custom = client.get("/apis/example.com/v1").await.json();
    assert_eq!(custom["groupVersion"], "example.com/v1");
    let widgets = resource(&custom, "widgets");
    assert_eq!(widgets["kind"], "Widget");
    assert_eq!(widgets["namespaced"], true);
    let rbac = client
        .get("/apis/rbac.authorization.k8s.io/v1")
        .await
        .json();
    assert_eq!(resource(&rbac, "clusterroles")["namespaced"], false);
    assert_eq!(resource(&rbac, "roles")["namespaced"], true);
    assert_eq!(client.get("/apis/nothing.example/v1").await.status, 404);

    let version = client.get("/version").await.json();
    assert_eq!(version["gitVersion"], "v1.30.2");
    assert_eq!(version["major"], "1");
    assert_eq!(version["minor"], "30");
    assert_eq!(version["platform"], "linux/amd64");
}

#[tokio::test]
async fn seeded_deployment_reads_back_like_a_real_one() {
    let server = shop_server();
    let deployment = Client::new(&server)
        .get("/apis/apps/v1/namespaces/shop/deployments/web")
        .await
        .json();
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["apiVersion"], "apps/v1");
    let metadata = &deployment["metadata"];
    assert_eq!(metadata["uid"].as_str().expect("uid").len(), 36);
    assert!(metadata["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse::<u64>()
        .is_ok());
    let created = metadata["creationTimestamp"]
        .as_str()
        .expect("creationTimestamp");
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'));
    assert_eq!(metadata["generation"], 1);
    assert_eq!(
        metadata["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let last_applied: Value = serde_json::from_str(
        metadata["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied"),
    )
    .expect("last-applied is JSON");
    assert_eq!(last_applied["spec"]["replicas"], 2);
    assert_eq!(last_applied["metadata"]["annotations"], json!({}));

    let spec = &deployment["spec"];
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], json!({}));
    let container = &pod["containers"][0];
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
    assert_eq!(container["resources"]["limits"]["cpu"], "500m");

    let status = &deployment["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["availableReplicas"], 2);
    assert_eq!(status["conditions"][0]["type"], "Available");

    let managed = metadata["managedFields"].as_array().expect("managedFields");
    assert_eq!(managed[0]["manager"], "kubectl-client-side-apply");
    assert_eq!(managed[0]["operation"], "Update");
    assert_eq!(managed[0]["apiVersion"], "apps/v1");
    assert_eq!(managed[0]["fieldsType"], "FieldsV1");
    let fields = &managed[0]["fieldsV1"];
    assert_eq!(
        fields["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}, "f:tier": {}})
    );
    assert_eq!(
        fields["f:spec"]["f:selector"],
        json!({}),
        "LabelSelector is atomic"
    );
    assert!(
        fields["f:spec"].get(".").is_none(),
        "spec exists in a zero Deployment"
    );
    assert_eq!(
        fields["f:spec"]["f:strategy"]["f:rollingUpdate"]["."],
        json!({})
    );
    let containers = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(
        containers.get(".").is_none(),
        "a zero PodSpec has containers: null"
    );
    let web = &containers["k:{\"name\":\"web\"}"];
    assert_eq!(web["."], json!({}));
    assert_eq!(web["f:imagePullPolicy"], json!({}));
    assert_eq!(
        web["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
        json!({".": {}, "f:containerPort": {}, "f:protocol": {}})
    );
    assert_eq!(
        web["f:env"]["k:{\"name\":\"MODE\"}"],
        json!({".": {}, "f:name": {}, "f:value": {}})
    );
    assert!(fields.get("f:status").is_none());
    assert_eq!(managed[1]["manager"], "kube-controller-manager");
    assert_eq!(managed[2]["subresource"], "status");
    assert!(
        managed[2]["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"Available\"}"]
            .is_object()
    );
}

#[tokio::test]
async fn other_kinds_get_their_server_side_fields() {
    let server = shop_server();
    let client = Client::new(&server);
    let service = client
        .get("/api/v1/namespaces/shop/services/web")
        .await
        .json();
    let spec = &service["spec"];
    let ip = spec["clusterIP"].as_str().expect("clusterIP");
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    let port = &spec["ports"][0];
    assert_eq!(port["targetPort"], 80);
    let node_port = port["nodePort"].as_i64().expect("nodePort");
    assert!((30000..=32767).contains(&node_port));
    assert_eq!(service["status"], json!({"loadBalancer": {}}));
    assert!(service["metadata"].get("generation").is_none());
    let owned = &service["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert_eq!(
        owned["f:selector"],
        json!({}),
        "Service selector is an atomic map"
    );
    for allocated in [
        "f:clusterIP",
        "f:clusterIPs",
        "f:ipFamilies",
        "f:ipFamilyPolicy",
    ] {
        assert!(
            owned.get(allocated).is_none(),
            "{allocated} is allocated after the field manager ran"
        );
    }
    assert_eq!(
        owned["f:sessionAffinity"],
        json!({}),
        "decode-time defaults are owned"
    );

    let namespace = client.get("/api/v1/namespaces/shop").await.json();
    assert_eq!(
        namespace["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "shop"
    );
    assert_eq!(namespace["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(namespace["status"]["phase"], "Active");

    let config_map = client
        .get("/api/v1/namespaces/shop/configmaps/settings")
        .await
        .json();
    assert!(config_map["metadata"].get("generation").is_none());
    assert_eq!(
        config_map["metadata"]["managedFields"][0]["fieldsV1"]["f:data"],
        json!({".": {}, "f:mode": {}})
    );

    let widget = client
        .get("/apis/example.com/v1/namespaces/shop/widgets/gizmo")
        .await
        .json();
    assert_eq!(widget["metadata"]["generation"], 1);
    assert_eq!(widget["spec"], json!({"size": 3, "parts": ["a", "b"]}));
    assert_eq!(
        widget["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
        json!({".": {}, "f:parts": {}, "f:size": {}}),
        "custom resources are schemaless: lists atomic"
    );

    let created = server.seed(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once, namespace: shop}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: run, image: busybox}]\n",
    );
    let job = &created[0];
    let uid = job["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(job["metadata"]["labels"]["job-name"], "once");
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
}

#[tokio::test]
async fn paging_across_namespaces_skips_nothing_when_one_name_prefixes_another() {
    let server = ApiServer::builder().start();
    for ns in ["team", "team-a"] {
        server.seed(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        ));
        for name in ["x", "y"] {
            server.seed(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            ));
        }
    }
    let client = Client::new(&server);
    let mut seen = Vec::new();
    let mut path = "/api/v1/configmaps?limit=1".to_string();
    loop {
        let page = client.get(&path).await.json();
        for item in page["items"].as_array().expect("items") {
            seen.push(format!(
                "{}/{}",
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
        match page["metadata"]["continue"].as_str() {
            Some(token) => path = format!("/api/v1/configmaps?limit=1&continue={token}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["team-a/x", "team-a/y", "team/x", "team/y"]);
}

#[tokio::test]
async fn list_paginates_with_consistent_continue_tokens() {
    let server = shop_server();
    server.seed("apiVersion: v1\nkind: Namespace\nmetadata: {name: paging}\n");
    for i in 0..5 {
        server.seed(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: page-{i}, namespace: paging}}\n"
        ));
    }
    let client = Client::new(&server);
    let first = client
        .get("/api/v1/namespaces/paging/configmaps?limit=2")
        .await
        .json();
    assert_eq!(first["kind"], "ConfigMapList");
    assert_eq!(first["apiVersion"], "v1");
    assert_eq!(names(&first), ["page-0", "page-1"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let list_rv = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    for item in first["items"].as_array().expect("items") {
        assert!(item.get("kind").is_none() && item.get("apiVersion").is_none());
        assert!(item["metadata"]["uid"].is_string());
    }
    // Written after the list started: not part of the paginated snapshot.
    server.seed("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: page-9, namespace: paging}\n");
    let mut all = names(&first);
    let mut token = first["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let mut pages = 1;
    loop {
        let page = client
            .get(&format!(
                "/api/v1/namespaces/paging/configmaps?limit=2&continue={token}"
            ))
            .await
            .json();
        pages += 1;
        assert_eq!(page["metadata"]["resourceVersion"], list_rv.as_str());
        all.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all, ["page-0", "page-1", "page-2", "page-3", "page-4"]);

    let fresh = client
        .get("/api/v1/namespaces/paging/configmaps")
        .await
        .json();
    assert_eq!(names(&fresh).len(), 6);
    assert!(fresh["metadata"].get("continue").is_none());

    // Across namespaces, keyed by namespace then name.
    let everywhere = client.get("/apis/apps/v1/deployments").await.json();
    assert_eq!(everywhere["kind"], "DeploymentList");
    assert_eq!(names(&everywhere), ["web"]);
    assert_eq!(
        server.request_count("GET", "/api/v1/namespaces/paging/configmaps"),
        4
    );
}

#[tokio::test]
async fn label_selectors_support_every_operator() {
    let server = ApiServer::builder().start();
    server.seed(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: {app: web, tier: frontend, rank: "1"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, labels: {app: api, tier: backend, rank: "5"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, labels: {app: db}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: d}
"#,
    );
    let client = Client::new(&server);
    let cases = [
        ("app=web", vec!["a"]),
        ("app==web", vec!["a"]),
        ("app!=web", vec!["b", "c", "d"]),
        ("app in (web,api)", vec!["a", "b"]),
        ("app notin (web)", vec!["b", "c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app,!tier", vec!["c"]),
        ("app in (web, api),tier!=frontend", vec!["b"]),
        ("rank>2", vec!["b"]),
        ("rank<2", vec!["a"]),
        ("", vec!["a", "b", "c", "d"]),
    ];
    for (selector, expected) in cases {
        let encoded: String = selector
            .chars()
            .map(|c| match c {
                ' ' => "%20".to_string(),
                '!' => "%21".to_string(),
                '(' => "%28".to_string(),
                ')' => "%29".to_string(),
                ',' => "%2C".to_string(),
                '=' => "%3D".to_string(),
                '<' => "%3C".to_string(),
                '>' => "%3E".to_string(),
                c => c.to_string(),
            })
            .collect();
        let list = client
            .get(&format!(
                "/api/v1/namespaces/default/configmaps?labelSelector={encoded}"
            ))
            .await
            .json();
        assert_eq!(names(&list), expected, "selector {selector:?}");
    }
    for bad in ["app%20in%20()", "%3Dweb", "app%3Dweb%2C", "app%20in%20(a"] {
        let reply = client
            .get(&format!(
                "/api/v1/namespaces/default/configmaps?labelSelector={bad}"
            ))
            .await;
        assert_eq!(reply.status, 400, "selector {bad}");
        assert_eq!(reply.json()["reason"], "BadRequest");
    }
    let by_name = client
        .get("/api/v1/configmaps?fieldSelector=metadata.name%3Db")
        .await
        .json();
    assert_eq!(names(&by_name), ["b"]);
}

#[tokio::test]
async fn get_one_object_and_not_found() {
    let server = shop_server();
    let client = Client::new(&server);
    let reply = client
        .get("/apis/example.com/v1/namespaces/shop/widgets/gizmo")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json()["kind"], "Widget");

    let missing = client
        .get("/apis/apps/v1/namespaces/shop/deployments/nope")
        .await;
    assert_eq!(missing.status, 404);
    let status = missing.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["code"], 404);
    assert_eq!(status["message"], "deployments.apps \"nope\" not found");
    assert_eq!(
        status["details"],
        json!({"name": "nope", "group": "apps", "kind": "deployments"})
    );
    let unknown = client.get("/apis/apps/v1/namespaces/shop/gadgets").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["kind"], "Status");
}

#[tokio::test]
async fn bearer_token_is_required() {
    let server = ApiServer::builder().token("t0ken").start();
    let anonymous = Client::with(&server, None, false);
    let reply = anonymous.get("/api/v1/namespaces").await;
    assert_eq!(reply.status, 401);
    let status = reply.json();
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["code"], 401);
    assert_eq!(
        Client::with(&server, Some("wrong"), false)
            .get("/apis")
            .await
            .status,
        401
    );
    assert_eq!(
        anonymous.get("/version").await.status,
        200,
        "/version is public"
    );
    let list = Client::new(&server).get("/api/v1/namespaces").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        names(&list.json()),
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn denied_resources_answer_403_like_rbac() {
    let server = ApiServer::builder()
        .token("t0ken")
        .deny("list", "secrets")
        .start();
    let client = Client::new(&server);
    let reply = client.get("/api/v1/secrets").await;
    assert_eq!(reply.status, 403);
    let status = reply.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        format!("secrets is forbidden: User \"{DEFAULT_USER}\" cannot list resource \"secrets\" in API group \"\" at the cluster scope")
    );
    assert_eq!(status["details"], json!({"kind": "secrets"}));
    server.deny("get", "deployments.apps");
    let reply = client
        .get("/apis/apps/v1/namespaces/shop/deployments/web")
        .await;
    assert_eq!(
        reply.json()["message"],
        format!("deployments.apps \"web\" is forbidden: User \"{DEFAULT_USER}\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"")
    );
    assert_eq!(client.get("/api/v1/configmaps").await.status, 200);

    let review = |resource: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "list", "group": "", "resource": resource}},
        })
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let denied = client.post(path, &review("secrets")).await;
    assert_eq!(denied.status, 201);
    assert_eq!(denied.json()["status"]["allowed"], false);
    assert_eq!(
        client.post(path, &review("configmaps")).await.json()["status"]["allowed"],
        true
    );
}

#[tokio::test]
async fn injected_429_then_success() {
    let server = shop_server();
    let client = Client::new(&server);
    server.inject(Fault::too_many_requests(1).on_path("/deployments"));
    assert_eq!(
        client.get("/api/v1/configmaps").await.status,
        200,
        "other paths unaffected"
    );
    let throttled = client.get("/apis/apps/v1/deployments").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.headers["retry-after"], "1");
    let status = throttled.json();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["retryAfterSeconds"], 1);
    assert_eq!(client.get("/apis/apps/v1/deployments").await.status, 200);

    server.inject(Fault::too_many_requests(0).times(2));
    for _ in 0..2 {
        let reply = client.get("/apis/apps/v1/deployments").await;
        assert_eq!(
            (reply.status, reply.headers["retry-after"].to_str().ok()),
            (429, Some("0"))
        );
    }
    assert_eq!(client.get("/apis/apps/v1/deployments").await.status, 200);
    assert_eq!(server.request_count("GET", "/apis/apps/v1/deployments"), 5);
}

#[tokio::test]
async fn injected_500() {
    let server = shop_server();
    server.inject(Fault::internal_error().on_path("/api/v1/namespaces/shop/configmaps"));
    let client = Client::new(&server);
    let reply = client.get("/api/v1/namespaces/shop/configmaps").await;
    assert_eq!(reply.status, 500);
    let status = reply.json();
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    assert_eq!(
        client
            .get("/api/v1/namespaces/shop/configmaps")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn expired_continue_token_answers_410() {
    let server = shop_server();
    let client = Client::new(&server);
    let first = client.get("/api/v1/namespaces?limit=1").await.json();
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    server.inject(Fault::expire_continue());
    let path = format!("/api/v1/namespaces?limit=1&continue={token}");
    let reply = client.get(&path).await;
    assert_eq!(reply.status, 410);
    let status = reply.json();
    assert_eq!(status["reason"], "Expired");
    assert!(status["metadata"]["continue"].is_string());
    assert_eq!(client.get(&path).await.status, 200, "one-shot fault");

    server.compact();
    assert_eq!(
        client.get(&path).await.status,
        410,
        "compaction expires old tokens"
    );
    assert_eq!(
        client
            .get("/api/v1/namespaces?continue=%21%21")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn connection_dropped_mid_list() {
    let server = shop_server();
    server.inject(Fault::drop_list().on_path("/deployments"));
    let client = Client::new(&server);
    let reply = client.get("/apis/apps/v1/deployments").await;
    assert_eq!(reply.status, 200, "headers are sent before the drop");
    assert!(
        reply.body.is_err(),
        "body must break: {:?}",
        reply.body.map(|b| b.len())
    );
    let again = client.get("/apis/apps/v1/deployments").await;
    assert_eq!(names(&again.json()), ["web"]);
}

#[tokio::test]
async fn latency_delays_requests() {
    let server = ApiServer::builder().start();
    server.set_latency(Duration::from_millis(30));
    let client = Client::new(&server);
    let started = Instant::now();
    assert_eq!(client.get("/api").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(30));
    server.clear_faults();
}

#[tokio::test]
async fn tls_with_generated_ca_token_and_client_certificate() {
    let server = ApiServer::builder()
        .tls(true)
        .token("t0ken")
        .client_ca(true)
        .crd("example.com", "v1", "Widget", "widgets", true)
        .start();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    server.seed(SHOP);
    let by_token = Client::with(&server, Some("t0ken"), false);
    assert_eq!(by_token.get("/apis/apps/v1/deployments").await.status, 200);
    let by_cert = Client::with(&server, None, true);
    let reply = by_cert.get("/apis/apps/v1/deployments").await;
    assert_eq!(reply.status, 200);
    assert_eq!(names(&reply.json()), ["web"]);
    assert_eq!(
        Client::with(&server, None, false).get("/apis").await.status,
        401
    );

    // A client that trusts another CA refuses the server.
    let other = ApiServer::builder().tls(true).start();
    let mut wrong = Client::new(&server);
    wrong.tls = Client::new(&other).tls;
    let tcp = TcpStream::connect(&wrong.address).await.expect("connect");
    let connector = wrong.tls.expect("tls");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    assert!(connector.connect(name, tcp).await.is_err());
}

#[tokio::test]
async fn http_create_and_bad_requests() {
    let server = shop_server();
    let client = Client::new(&server);
    let path = "/api/v1/namespaces/shop/configmaps?fieldManager=plumbline";
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "posted"}, "data": {"a": "1"}});
    let created = client.post(path, &body).await;
    assert_eq!(created.status, 201);
    let object = created.json();
    assert_eq!(
        object["metadata"]["namespace"], "shop",
        "namespace from the URL"
    );
    assert_eq!(
        object["metadata"]["managedFields"][0]["manager"],
        "plumbline"
    );
    assert!(
        object["metadata"]["annotations"].is_null(),
        "no last-applied on a plain POST"
    );
    let again = client.post(path, &body).await;
    assert_eq!(
        (again.status, again.json()["reason"].clone()),
        (409, json!("AlreadyExists"))
    );
    let missing_ns = client
        .post("/api/v1/namespaces/nowhere/configmaps", &body)
        .await;
    assert_eq!(
        missing_ns.json()["message"],
        "namespaces \"nowhere\" not found"
    );
    let garbage = client
        .send(
            "POST",
            "/api/v1/namespaces/shop/configmaps",
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(
        (garbage.status, garbage.json()["kind"].clone()),
        (400, json!("Status"))
    );
    let mismatch = client
        .post(
            "/api/v1/namespaces/shop/configmaps",
            &json!({"kind": "Secret", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(client.get("/api/v1/configmaps?limit=abc").await.status, 400);
    assert_eq!(
        client
            .get("/api/v1/configmaps?resourceVersionMatch=Bogus&resourceVersion=1")
            .await
            .status,
        400
    );
    let unnamed = client
        .post(
            "/api/v1/namespaces/shop/configmaps",
            &json!({"metadata": {}}),
        )
        .await;
    assert_eq!(
        (unnamed.status, unnamed.json()["reason"].clone()),
        (422, json!("Invalid"))
    );
    let generated = client
        .post(
            "/api/v1/namespaces/shop/configmaps",
            &json!({"metadata": {"generateName": "gen-"}}),
        )
        .await
        .json();
    assert!(generated["metadata"]["name"]
        .as_str()
        .expect("name")
        .starts_with("gen-"));
}

#[tokio::test]
async fn server_side_apply_merges_conflicts_and_deletes() {
    let server = shop_server();
    let client = Client::new(&server);
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    let scale = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  replicas: 5\n";

    let conflict = client
        .apply(&format!("{path}?fieldManager=plumbline"), scale)
        .await;
    assert_eq!(conflict.status, 409);
    let status = conflict.json();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");

    let dry = client
        .apply(
            &format!("{path}?fieldManager=plumbline&force=true&dryRun=All"),
            scale,
        )
        .await;
    assert_eq!(dry.json()["spec"]["replicas"], 5);
    let live = server
        .object("apps/v1", "Deployment", Some("shop"), "web")
        .expect("live");
    assert_eq!(live["spec"]["replicas"], 2, "dry run stores nothing");

    let forced = client
        .apply(&format!("{path}?fieldManager=plumbline&force=true"), scale)
        .await;
    assert_eq!(forced.status, 200);
    let object = forced.json();
    assert_eq!(object["spec"]["replicas"], 5);
    assert_eq!(object["metadata"]["generation"], 2);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27",
        "merged, not replaced"
    );
    let managed = object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let entry = |manager: &str| managed.iter().find(|m| m["manager"] == manager).cloned();
    let apply = entry("plumbline").expect("apply entry");
    assert_eq!(apply["operation"], "Apply");
    assert_eq!(apply["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let csa = entry("kubectl-client-side-apply").expect("update entry");
    assert!(
        csa["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "ownership moved"
    );
    assert!(csa["fieldsV1"]["f:spec"].get("f:template").is_some());

    // Same value: shared ownership, no conflict; a new object is created (201).
    assert_eq!(
        client
            .apply(&format!("{path}?fieldManager=other"), scale)
            .await
            .status,
        200
    );
    let fresh = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: healed}\ndata: {k: v}\n";
    let created = client
        .apply(
            "/api/v1/namespaces/shop/configmaps/healed?fieldManager=plumbline",
            fresh,
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.json()["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
    let no_manager = client
        .apply("/api/v1/namespaces/shop/configmaps/healed", fresh)
        .await;
    assert_eq!(no_manager.status, 422);
    let wrong_type = client
        .send(
            "PATCH",
            "/api/v1/namespaces/shop/configmaps/healed",
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(wrong_type.status, 415);

    let deleted = client
        .send(
            "DELETE",
            "/api/v1/namespaces/shop/configmaps/healed",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["status"], "Success");
    assert_eq!(
        client
            .get("/api/v1/namespaces/shop/configmaps/healed")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn patches_and_put_update_with_ownership() {
    let server = shop_server();
    let client = Client::new(&server);
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    let merge = client
        .send(
            "PATCH",
            &format!("{path}?fieldManager=kubectl-patch"),
            Some("application/merge-patch+json"),
            br#"{"spec":{"replicas":7}}"#.to_vec(),
        )
        .await;
    assert_eq!(merge.status, 200);
    let patched = merge.json();
    assert_eq!(patched["spec"]["replicas"], 7);
    assert_eq!(patched["metadata"]["generation"], 2);
    let managed = patched["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let owner = managed
        .iter()
        .find(|m| m["manager"] == "kubectl-patch")
        .expect("patch entry");
    assert_eq!(owner["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

    // Strategic merge: the container list merges by name instead of being replaced.
    let strategic = client
        .send(
            "PATCH",
            path,
            Some("application/strategic-merge-patch+json"),
            br#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#.to_vec(),
        )
        .await
        .json();
    let container = &strategic["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (
            container["image"].clone(),
            container["ports"][0]["containerPort"].clone()
        ),
        (json!("nginx:1.28"), json!(80))
    );

    let rv = strategic["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let json_patch = format!(
        r#"[{{"op":"test","path":"/metadata/resourceVersion","value":"{rv}"}},{{"op":"replace","path":"/spec/replicas","value":1}}]"#
    );
    let reply = client
        .send(
            "PATCH",
            path,
            Some("application/json-patch+json"),
            json_patch.clone().into_bytes(),
        )
        .await;
    assert_eq!(reply.json()["spec"]["replicas"], 1);
    let stale = client
        .send(
            "PATCH",
            path,
            Some("application/json-patch+json"),
            json_patch.into_bytes(),
        )
        .await;
    assert_eq!(
        stale.status, 422,
        "the test op fails on a changed resourceVersion"
    );

    let mut object = reply.json();
    object["spec"]["replicas"] = json!(2);
    object["metadata"]["resourceVersion"] = json!("1");
    let conflict = client
        .send(
            "PUT",
            path,
            Some("application/json"),
            object.to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        (conflict.status, conflict.json()["reason"].clone()),
        (409, json!("Conflict"))
    );
    object["metadata"]["resourceVersion"] = reply.json()["metadata"]["resourceVersion"].clone();
    object["status"] = json!({"replicas": 99});
    let put = client
        .send(
            "PUT",
            path,
            Some("application/json"),
            object.to_string().into_bytes(),
        )
        .await
        .json();
    assert_eq!(put["spec"]["replicas"], 2);
    assert_eq!(
        put["status"]["replicas"], 2,
        "status is not written through the main resource"
    );
    assert_eq!(
        put["status"]["observedGeneration"],
        put["metadata"]["generation"]
    );
    assert_eq!(
        put["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
}

#[tokio::test]
async fn edits_make_drift_with_a_new_owner() {
    let server = shop_server();
    let edited = server.edit("apps/v1", "Deployment", Some("shop"), "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    });
    assert_eq!(edited["metadata"]["generation"], 2);
    let managed = edited["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let edit = managed
        .iter()
        .find(|m| m["manager"] == "kubectl-edit")
        .expect("edit entry");
    assert_eq!(
        edit["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
        json!({"f:image": {}})
    );
    let before: u64 = server
        .object("apps/v1", "Deployment", Some("shop"), "web")
        .and_then(|d| {
            d["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse().ok())
        })
        .expect("rv");
    assert_eq!(before, server.resource_version());
}

/// kubectl, a real client, accepts the server and its kubeconfig (TLS, token or client cert).
#[test]
fn kubectl_reads_the_server() {
    let Some(kubectl) = which("kubectl") else {
        eprintln!("skipped: kubectl is not on PATH");
        return;
    };
    for (token, client_cert) in [(true, false), (false, true)] {
        let mut builder = ApiServer::builder().tls(true).client_ca(client_cert);
        if token {
            builder = builder.token("t0ken");
        }
        let server = builder
            .crd("example.com", "v1", "Widget", "widgets", true)
            .start();
        server.seed(SHOP);
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, "test");
        let text = |args: &[&str]| {
            let output = std::process::Command::new(&kubectl)
                .args(args)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--cache-dir")
                .arg(dir.path().join("cache"))
                .env("HOME", dir.path())
                .output()
                .expect("run kubectl");
            assert!(
                output.status.success(),
                "kubectl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            (String::from_utf8_lossy(&output.stdout).to_string(), stderr)
        };
        let run = |args: &[&str]| {
            serde_json::from_str::<Value>(&text(args).0).expect("kubectl prints JSON")
        };
        let deployments = run(&["get", "deploy", "-A", "-o", "json"]);
        assert_eq!(names(&deployments), ["web"]);
        assert_eq!(
            deployments["items"][0]["kind"], "Deployment",
            "kubectl fills in kind"
        );
        assert_eq!(deployments["items"][0]["spec"]["replicas"], 2);
        let widgets = run(&["get", "widgets", "-n", "shop", "-o", "json"]);
        assert_eq!(names(&widgets), ["gizmo"]);
        let one = run(&["get", "service", "web", "-n", "shop", "-o", "json"]);
        assert_eq!(one["spec"]["type"], "NodePort");
        let (table, _) = text(&["get", "deploy", "-n", "shop"]);
        assert!(table.contains("web"), "{table}");
        // A self-heal with kubectl's own server-side apply.
        let manifest = dir.path().join("scale.yaml");
        std::fs::write(
            &manifest,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 3}\n",
        )
        .expect("write manifest");
        let path = manifest.to_string_lossy().to_string();
        let (_, stderr) = text(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--validate=false",
            "--field-manager",
            "plumbline",
            "-f",
            &path,
        ]);
        // kubectl also migrates client-side-apply ownership with a JSON patch on managedFields.
        assert!(!stderr.contains("Warning"), "{stderr}");
        let healed = server
            .object("apps/v1", "Deployment", Some("shop"), "web")
            .expect("web");
        assert_eq!(healed["spec"]["replicas"], 3);
        let managers: Vec<&str> = healed["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields")
            .iter()
            .map(|m| m["manager"].as_str().expect("manager"))
            .collect();
        assert!(managers.contains(&"plumbline"), "{managers:?}");
        assert!(
            !managers.contains(&"kubectl-client-side-apply"),
            "migrated: {managers:?}"
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
