//! The render cache at fleet scale: a Git repository of 1,000 apps (half Kustomize overlays
//! over shared bases with generators and patches, half plain manifests), scanned cold, then
//! warm (no render at all), then after a commit touching one app (one render).
//!
//! `cargo bench --bench render_cache [-- APPS]`

use plumbline::scan::{self, ScanOptions};
use plumbline::source::writer::{CommitSpec, RepoWriter};
use std::time::Instant;

fn main() {
    let apps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temporary directory");
    // The cache directory of this process only: a cold start is really cold.
    std::env::set_var("PLUMBLINE_CACHE", dir.path().join("cache"));

    let mut files: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for team in 0..10 {
        files.push((
            format!("bases/team-{team}/deployment.yaml"),
            Some(base_deployment(team).into_bytes()),
        ));
        files.push((
            format!("bases/team-{team}/kustomization.yaml"),
            Some(b"resources: [deployment.yaml]\n".to_vec()),
        ));
    }
    let mut config = String::from(
        "sources: [{name: fleet, url: repo}]\nclusters: [{name: prod, snapshot: live}]\napps:\n",
    );
    for app in 0..apps {
        let path = format!("apps/app-{app}");
        if app % 2 == 0 {
            files.push((
                format!("{path}/kustomization.yaml"),
                Some(overlay(app).into_bytes()),
            ));
        } else {
            files.push((
                format!("{path}/configmap.yaml"),
                Some(config_map(app).into_bytes()),
            ));
        }
        config.push_str(&format!(
            "  - {{name: app-{app}, source: fleet, path: {path}, cluster: prod, namespace: app-{app}}}\n"
        ));
    }
    let mut writer = RepoWriter::init(&dir.path().join("repo"), true).expect("repository");
    writer
        .commit("main", &spec("the fleet", files))
        .expect("commit");
    std::fs::create_dir_all(dir.path().join("live")).expect("snapshot directory");
    let config_path = dir.path().join("plumbline.yaml");
    std::fs::write(&config_path, config).expect("configuration");

    let options = ScanOptions {
        apps: Vec::new(),
        clusters: Vec::new(),
        progress: false,
        record: false,
        self_heal_only: false,
    };
    let scan = |label: &str| {
        let config = plumbline::config::load(&config_path).expect("valid configuration");
        let started = Instant::now();
        let outcome = scan::run(&config, &options).expect("scan");
        let summary = &outcome.result.summary;
        println!(
            "{label:<28} {:>8.2?}  renders: {:>5}  cache hits: {:>5}  objects: {}  errors: {}",
            started.elapsed(),
            summary.render_cache_misses,
            summary.render_cache_hits,
            summary.resources,
            outcome.result.errors.len()
        );
        summary.render_cache_misses
    };
    println!(
        "{apps} apps ({} Kustomize overlays, {} plain)",
        apps.div_ceil(2),
        apps / 2
    );
    scan("cold scan");
    let warm = scan("warm scan, nothing changed");
    writer
        .commit(
            "main",
            &spec(
                "app-1: new mode",
                vec![(
                    "apps/app-1/configmap.yaml".into(),
                    Some(config_map(1).replace("mode: a", "mode: b").into_bytes()),
                )],
            ),
        )
        .expect("commit");
    let touched = scan("after a commit to one app");
    assert_eq!(warm, 0, "a warm scan of unchanged apps renders nothing");
    assert_eq!(touched, 1, "a commit to one app renders that app only");
}

fn spec(message: &str, changes: Vec<(String, Option<Vec<u8>>)>) -> CommitSpec {
    CommitSpec {
        author_name: "Fleet Bot".into(),
        author_email: "fleet@example.com".into(),
        time: 1_761_000_000,
        message: message.into(),
        changes,
    }
}

fn base_deployment(team: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app.kubernetes.io/name: web, team: team-{team}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app.kubernetes.io/name: web}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/team-{team}/web:1.0.0
          envFrom:
            - configMapRef: {{name: web-env}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
"
    )
}

fn overlay(app: usize) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: app-{app}
namePrefix: app-{app}-
resources: [../../bases/team-{}]
labels:
  - pairs: {{app.kubernetes.io/instance: app-{app}}}
images:
  - name: registry.example.com/team-{}/web
    newTag: 1.{}.0
configMapGenerator:
  - name: web-env
    literals: [APP=app-{app}, TIER=gold]
patches:
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: {}
",
        app % 10,
        app % 10,
        app % 5,
        2 + app % 3
    )
}

fn config_map(app: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{app}-settings\n  labels: {{app.kubernetes.io/instance: app-{app}}}\ndata:\n  mode: a\n  owner: team-{}\n",
        app % 10
    )
}
