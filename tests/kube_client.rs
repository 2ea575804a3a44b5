//! kube-rs, the client plumbline reads clusters with, against the loopback API server:
//! kubeconfig over TLS (token and client certificate), discovery, paginated dynamic LIST,
//! typed GET, Status errors and server-side apply.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

use apiserver::ApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Discovery;
use kube::{Client, Config};
use serde_json::json;

const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: gizmo, namespace: shop}
spec: {size: 3}
"#;

async fn client(server: &ApiServer) -> Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "test");
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

fn server(token: bool, client_cert: bool) -> ApiServer {
    let mut builder = ApiServer::builder()
        .tls(true)
        .client_ca(client_cert)
        .crd("example.com", "v1", "Widget", "widgets", true)
        .deny("list", "secrets");
    if token {
        builder = builder.token("t0ken");
    }
    let server = builder.start();
    server.seed(SHOP);
    for i in 0..4 {
        server.seed(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: shop}}\n"
        ));
    }
    server
}

#[tokio::test]
async fn discovery_and_paginated_dynamic_list() {
    plumbline::live::kube::install_crypto_provider();
    let server = server(true, false);
    let client = client(&server).await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            found.push((
                resource.group.clone(),
                resource.kind.clone(),
                capabilities.scope == kube::discovery::Scope::Namespaced,
            ));
        }
    }
    assert!(found.contains(&("apps".to_string(), "Deployment".to_string(), true)));
    assert!(found.contains(&("".to_string(), "Namespace".to_string(), false)));
    assert!(found.contains(&("example.com".to_string(), "Widget".to_string(), true)));

    let (resource, _) = discovery
        .groups()
        .find(|g| g.name().is_empty())
        .and_then(|g| g.recommended_kind("ConfigMap"))
        .expect("ConfigMap discovered");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.expect("list page");
        pages += 1;
        names.extend(page.items.iter().filter_map(|o| o.metadata.name.clone()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = ListParams::default().limit(2).continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3"]);
    assert_eq!(server.request_count("GET", "/api/v1/configmaps"), 2);

    let widgets = discovery
        .groups()
        .find(|g| g.name() == "example.com")
        .and_then(|g| g.recommended_kind("Widget"))
        .expect("Widget discovered");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "shop", &widgets.0);
    let gizmo = widgets.get("gizmo").await.expect("get widget");
    assert_eq!(gizmo.data["spec"]["size"], 3);
}

#[tokio::test]
async fn typed_get_status_errors_and_server_side_apply() {
    plumbline::live::kube::install_crypto_provider();
    let server = server(false, true);
    let client = client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let web = deployments.get("web").await.expect("typed get");
    assert_eq!(web.metadata.generation, Some(1));
    let managed = web.metadata.managed_fields.expect("managedFields");
    assert_eq!(
        managed[0].manager.as_deref(),
        Some("kubectl-client-side-apply")
    );
    let spec = web.spec.expect("spec");
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(
        spec.template.spec.expect("pod spec").containers[0]
            .image_pull_policy
            .as_deref(),
        Some("IfNotPresent")
    );

    let missing = deployments.get("nope").await.expect_err("404");
    let kube::Error::Api(status) = missing else {
        panic!("expected a Status error, got {missing:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(client.clone());
    let forbidden = secrets.list(&ListParams::default()).await.expect_err("403");
    let kube::Error::Api(status) = forbidden else {
        panic!("expected a Status error, got {forbidden:?}");
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains("cannot list resource \"secrets\""),
        "{}",
        status.message
    );

    let desired = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 4},
    });
    let conflict = deployments
        .patch(
            "web",
            &PatchParams::apply("plumbline"),
            &Patch::Apply(&desired),
        )
        .await
        .expect_err("409");
    let kube::Error::Api(status) = conflict else {
        panic!("expected a Status error, got {conflict:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let healed = deployments
        .patch(
            "web",
            &PatchParams::apply("plumbline").force(),
            &Patch::Apply(&desired),
        )
        .await
        .expect("forced apply");
    assert_eq!(healed.spec.expect("spec").replicas, Some(4));
    assert_eq!(healed.metadata.generation, Some(2));

    // Unauthenticated: the same server without a client certificate.
    let mut anonymous = Config::new(server.url().parse().expect("url"));
    anonymous.root_cert = Some(vec![pem_der(server.ca_pem().expect("ca"))]);
    let anonymous = Client::try_from(anonymous).expect("client");
    let denied: Api<Deployment> = Api::all(anonymous);
    let error = denied.list(&ListParams::default()).await.expect_err("401");
    let kube::Error::Api(status) = error else {
        panic!("expected a Status error, got {error:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}
