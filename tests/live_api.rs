//! Clusters read through the Kubernetes API: the real binary against loopback API servers
//! over TLS, one healthy, one answering 429/500 with latency, one dropping a connection
//! mid-list and expiring a continue token, plus an unreachable and an unauthorised cluster.
//! Every verdict must equal the one for the same objects read from an offline snapshot.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use apiserver::{ApiServer, Fault};
use serde_json::{json, Value};
use std::time::Duration;
use support::{build_shop_repo, git_fixture, Workspace};

/// The apps of the shop repository with their namespaces and Git files (the billing
/// NetworkPolicy is never applied, so it is missing everywhere).
const APPS: &[(&str, Option<&str>, &[&str])] = &[
    (
        "shop",
        Some("shop"),
        &[
            "apps/shop/deployment.yaml",
            "apps/shop/service.yaml",
            "apps/shop/config.yaml",
        ],
    ),
    (
        "billing",
        Some("billing"),
        &["apps/billing/deployment.yaml"],
    ),
    ("platform", None, &["platform/rbac/reader.yaml"]),
];

/// Applies the apps to a server as Argo CD would (client-side apply, tracking label
/// `<app>-<cluster>`), then makes drift by hand: a ConfigMap edit, an extra RBAC verb, and
/// an orphan left behind.
fn seed(server: &ApiServer, cluster: &str) {
    server.seed("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: billing}\n");
    for (app, namespace, files) in APPS {
        let mut documents = Vec::new();
        for file in *files {
            let text = String::from_utf8(git_fixture(file)).expect("utf8");
            for document in serde_yaml::Deserializer::from_str(&text) {
                let mut object: Value =
                    serde::Deserialize::deserialize(document).expect("fixture YAML");
                if object.is_null() {
                    continue;
                }
                let metadata = object["metadata"].as_object_mut().expect("metadata");
                if let Some(ns) = namespace {
                    metadata.insert("namespace".into(), json!(ns));
                }
                let labels = metadata.entry("labels").or_insert(json!({}));
                labels["app.kubernetes.io/instance"] = json!(format!("{app}-{cluster}"));
                documents.push(serde_yaml::to_string(&object).expect("yaml"));
            }
        }
        server.seed(&documents.join("---\n"));
    }
    server.edit("v1", "ConfigMap", Some("shop"), "shop-config", |cm| {
        cm["data"]["LOG_LEVEL"] = json!("debug");
    });
    server.edit(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        None,
        "shop-reader",
        |role| {
            role["rules"][0]["verbs"] = json!(["get", "list", "watch", "delete"]);
        },
    );
    // What every namespace holds besides the apps: not tracked, never orphans.
    for name in ["kube-root-ca.crt", "istio-ca-root-cert", "feature-flags"] {
        server
            .create_as(
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "shop"}, "data": {"x": "1"}}),
                "kube-controller-manager",
            )
            .expect("configmap created");
    }
    server
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shop-config-v1", "namespace": "shop",
                         "labels": {"app.kubernetes.io/instance": format!("shop-{cluster}")}},
            "data": {"LOG_LEVEL": "info"}}))
        .expect("orphan created");
}

/// The objects of a server as `kubectl get -o yaml` would dump them.
fn snapshot_of(server: &ApiServer, dir: &std::path::Path) {
    let mut items = Vec::new();
    let wanted: &[(&str, &str, Option<&str>, &str)] = &[
        ("apps/v1", "Deployment", Some("shop"), "shop"),
        ("v1", "Service", Some("shop"), "shop"),
        ("v1", "ConfigMap", Some("shop"), "shop-config"),
        ("v1", "ConfigMap", Some("shop"), "shop-config-v1"),
        ("v1", "Secret", Some("shop"), "shop-db"),
        ("apps/v1", "Deployment", Some("billing"), "billing"),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "shop-reader",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "shop-reader",
        ),
    ];
    for (api_version, kind, namespace, name) in wanted {
        items.push(
            server
                .object(api_version, kind, *namespace, name)
                .expect("object exists"),
        );
    }
    std::fs::create_dir_all(dir).expect("snapshot dir");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(
        dir.join("dump.yaml"),
        serde_yaml::to_string(&list).expect("yaml"),
    )
    .expect("write");
}

/// The verdicts of one cluster, without the names that differ between clusters (the app
/// names, and the tracking label values that carry them).
fn verdicts(result: &Value, cluster: &str) -> Vec<Value> {
    let text = result
        .to_string()
        .replace(&format!("-{cluster}\""), "-CLUSTER\"");
    let result: Value = serde_json::from_str(&text).expect("json");
    let mut out: Vec<Value> = result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["cluster"] == cluster || (cluster.len() > 1 && f["cluster"] == "CLUSTER"))
        .map(|f| {
            json!({"kind": f["kind"], "namespace": f["namespace"], "name": f["name"],
                   "status": f["status"], "changes": f["changes"], "managers": f["managers"]})
        })
        .collect();
    out.sort_by_key(|v| v.to_string());
    out
}

#[test]
fn api_clusters_read_like_snapshots_despite_faults() {
    let ws = Workspace::new();
    build_shop_repo(&ws.path("repo"));

    let healthy = ApiServer::builder().tls(true).token("t0ken-a").start();
    let throttled = ApiServer::builder().tls(true).token("t0ken-b").start();
    let flaky = ApiServer::builder().tls(true).client_ca(true).start();
    let locked = ApiServer::builder().tls(true).token("right-token").start();
    // The reference: the same scenario on another server, dumped as a snapshot.
    let reference = ApiServer::builder().start();
    for (server, cluster) in [
        (&healthy, "a"),
        (&throttled, "b"),
        (&flaky, "c"),
        (&locked, "e"),
        (&reference, "snap"),
    ] {
        seed(server, cluster);
    }
    snapshot_of(&reference, &ws.path("snap"));
    for (server, name) in [
        (&healthy, "a"),
        (&throttled, "b"),
        (&flaky, "c"),
        (&locked, "e"),
    ] {
        server.write_kubeconfig(&ws.path(&format!("kube-{name}.yaml")), name);
    }
    // The unauthorised cluster presents a token the server does not know.
    let wrong = std::fs::read_to_string(ws.path("kube-e.yaml"))
        .expect("kubeconfig")
        .replace("right-token", "stolen-token");
    std::fs::write(ws.path("kube-e.yaml"), wrong).expect("write");
    // The unreachable cluster points at a port nothing listens on.
    healthy.write_kubeconfig(&ws.path("kube-d.yaml"), "d");
    let dead = std::fs::read_to_string(ws.path("kube-d.yaml"))
        .expect("kubeconfig")
        .replace(healthy.url(), "https://127.0.0.1:9");
    std::fs::write(ws.path("kube-d.yaml"), dead).expect("write");

    let mut config = String::from(
        "database: plumbline.db\nlive: {page_size: 2, retries: 3, timeout_seconds: 5}\nsources: [{name: gitops, url: repo}]\nclusters:\n",
    );
    for name in ["a", "b", "c", "d", "e"] {
        config.push_str(&format!(
            "  - {{name: {name}, kubeconfig: kube-{name}.yaml}}\n"
        ));
    }
    config.push_str("  - {name: snap, snapshot: snap}\napps:\n");
    for cluster in ["a", "b", "c", "d", "e", "snap"] {
        for (app, namespace, files) in APPS {
            let path = files[0].rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
            let ns = namespace
                .map(|n| format!(", namespace: {n}"))
                .unwrap_or_default();
            config.push_str(&format!(
                "  - {{name: {app}-{cluster}, source: gitops, path: {path}, cluster: {cluster}{ns}}}\n"
            ));
        }
    }
    ws.write("plumbline.yaml", &config);

    throttled.set_latency(Duration::from_millis(5));
    throttled.inject(Fault::too_many_requests(0).times(2));
    throttled.inject(Fault::internal_error().times(1).on_path("/configmaps"));
    flaky.inject(Fault::drop_list().times(1).on_path("/configmaps"));
    flaky.inject(Fault::expire_continue().times(1));

    let (code, result) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 3, "two clusters fail: {result:#}");
    let status = |name: &str| -> Value {
        result["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("cluster {name} listed"))
            .clone()
    };
    for name in ["a", "b", "c", "snap"] {
        assert_eq!(status(name)["status"], "ok", "{name}: {:#}", status(name));
    }
    assert_eq!(status("d")["status"], "unreachable", "{:#}", status("d"));
    assert_eq!(status("e")["status"], "error", "{:#}", status("e"));
    assert!(
        status("e")["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nauthorized"),
        "{:#}",
        status("e")
    );

    let reference = verdicts(&result, "snap");
    assert_eq!(reference.len(), 9, "{reference:#?}");
    let statuses: Vec<&str> = reference
        .iter()
        .map(|v| v["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "modified").count(),
        2,
        "{reference:#?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == "missing").count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == "orphaned").count(), 1);
    for cluster in ["a", "b", "c"] {
        assert_eq!(
            verdicts(&result, cluster),
            reference,
            "cluster {cluster} differs from the snapshot"
        );
    }

    // One paginated LIST per resource type and namespace, never a GET per object.
    for request in healthy.requests() {
        assert_eq!(request.method, "GET", "{request:?}");
        let segments = request.path.trim_matches('/').split('/').count();
        let is_discovery = request.path.starts_with("/api") && (segments <= 3);
        let is_list = request.param("limit").as_deref() == Some("2");
        assert!(is_discovery || is_list, "unexpected request {request:?}");
    }
    // Five ConfigMaps in pages of two.
    assert_eq!(
        healthy.request_count("GET", "/api/v1/namespaces/shop/configmaps"),
        3,
        "paginated"
    );
    assert_eq!(
        flaky.request_count("GET", "/api/v1/namespaces/shop/secrets"),
        1
    );
    // The faults were met and overcome: retried requests and a restarted list.
    assert_eq!(
        throttled.requests().len(),
        healthy.requests().len() + 3,
        "2 x 429 and 1 x 500 retried"
    );
    assert!(
        flaky.request_count("GET", "/api/v1/namespaces/shop/configmaps") >= 5,
        "a dropped page retried and an expired list restarted"
    );
}

#[test]
fn clusters_command_shows_version_user_and_access() {
    let ws = Workspace::new();
    let server = ApiServer::builder()
        .tls(true)
        .token("t0ken")
        .version("v1.30.2")
        .start();
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    let denied = ApiServer::builder()
        .tls(true)
        .token("t0ken")
        .deny("list", "*")
        .start();
    denied.write_kubeconfig(&ws.path("denied.yaml"), "audit");
    ws.write(
        "plumbline.yaml",
        "clusters:\n  - {name: prod, kubeconfig: kube.yaml, context: prod}\n  - {name: audit, kubeconfig: denied.yaml}\n",
    );
    let output = ws.run(&["clusters", "--format", "json"]);
    let checks: Value = serde_json::from_slice(&output.stdout).expect("json");
    let by_name = |name: &str| {
        checks
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    let prod = &by_name("prod");
    assert_eq!(prod["name"], "prod");
    assert_eq!(prod["status"], "ok", "{checks:#}");
    assert_eq!(prod["version"], "v1.30.2");
    assert_eq!(prod["can_list"], true);
    assert_eq!(prod["can_get"], true);
    assert!(
        prod["user"].as_str().is_some_and(|u| !u.is_empty()),
        "{prod:#}"
    );
    assert!(
        prod["objects"].as_u64().is_some_and(|n| n > 20),
        "resource types served"
    );
    let audit = &by_name("audit");
    assert_eq!(audit["can_list"], false, "{checks:#}");
    assert_eq!(audit["status"], "error");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn an_app_in_many_namespaces_is_read_with_one_list_per_type() {
    let server = ApiServer::builder().token("t0ken").start();
    let ws = Workspace::new();
    let mut files = Vec::new();
    for i in 0..10 {
        let ns = format!("team-{i}");
        server.seed(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        ));
        let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  team: \"{i}\"\n");
        server.seed(&manifest.replace(
            "  name: settings\n",
            "  name: settings\n  labels: {app.kubernetes.io/instance: teams}\n",
        ));
        files.push((format!("teams/{ns}.yaml"), manifest));
    }
    // A namespace the app does not touch: listed along, but not kept.
    server.seed("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: other\n  labels: {app.kubernetes.io/instance: teams}\n");
    ws.repo_with(
        "Ana Ruiz",
        "ana.ruiz@example.com",
        "team settings",
        files
            .into_iter()
            .map(|(p, c)| (p, c.into_bytes()))
            .collect(),
    );
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    ws.write(
        "plumbline.yaml",
        "sources: [{name: gitops, url: repo}]\nclusters: [{name: prod, kubeconfig: kube.yaml}]\napps: [{name: teams, source: gitops, path: teams, cluster: prod}]\n",
    );
    let (code, result) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(result["summary"]["in_sync"], 10, "{result:#}");
    assert_eq!(
        result["summary"]["orphaned"], 0,
        "the other namespace is not the app's"
    );
    assert_eq!(server.request_count("GET", "/api/v1/configmaps"), 1);
    assert_eq!(
        server.request_count("GET", "/api/v1/namespaces/team-0/configmaps"),
        0
    );
}
