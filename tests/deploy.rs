//! The manifests in deploy/: accepted by an API server, and in sync when plumbline audits
//! its own installation from Git.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use apiserver::ApiServer;
use support::Workspace;

const FILES: &[&str] = &[
    "namespace.yaml",
    "rbac-read.yaml",
    "rbac-self-heal.yaml",
    "storage.yaml",
    "cronjob-scan.yaml",
    "deployment-daemon.yaml",
];

fn manifest(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name),
    )
    .expect("deploy manifest")
}

#[test]
fn plumbline_audits_its_own_installation_as_in_sync() {
    let server = ApiServer::builder().tls(true).token("t0ken").start();
    for file in FILES {
        server.seed(&manifest(file));
    }
    let ws = Workspace::new();
    ws.repo_with(
        "Ops Team",
        "ops@example.com",
        "install plumbline",
        FILES
            .iter()
            .map(|f| (format!("deploy/{f}"), manifest(f).into_bytes()))
            .collect(),
    );
    server.write_kubeconfig(&ws.path("kube.yaml"), "prod");
    ws.write(
        "plumbline.yaml",
        "tracking: {label: plumbline.dev/not-tracked}\nsources: [{name: ops, url: repo}]\nclusters: [{name: prod, kubeconfig: kube.yaml}]\napps: [{name: plumbline, source: ops, path: deploy, cluster: prod}]\n",
    );
    let (code, result) = ws.scan_json(&["--include-in-sync"]);
    assert_eq!(code, 0, "{result:#}");
    let findings = result["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 11, "{result:#}");
    for finding in findings {
        assert_eq!(finding["status"], "in_sync", "{finding:#}");
    }
    // The read-only role writes nothing but the reviews that ask what it may do.
    let text = manifest("rbac-read.yaml");
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object: serde_json::Value = serde::Deserialize::deserialize(document).expect("yaml");
        if object["kind"] != "ClusterRole" {
            continue;
        }
        for rule in object["rules"].as_array().expect("rules") {
            let review = rule["resources"][0]
                .as_str()
                .is_some_and(|r| r.ends_with("reviews"));
            for verb in rule["verbs"].as_array().expect("verbs") {
                let verb = verb.as_str().unwrap_or_default();
                assert!(
                    ["get", "list", "watch"].contains(&verb) || (review && verb == "create"),
                    "{verb} in the read-only role"
                );
            }
        }
    }
}
