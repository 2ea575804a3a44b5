//! Reading a fleet: N loopback API servers with M objects each (10 types, 50 namespaces),
//! connected, discovered, listed, indexed and diffed as a scan does: each cluster diffed as
//! soon as it is read and its live objects dropped, `live.clusters_at_once` (8) at a time.
//!
//! The API servers run in a child process (this binary, run with `serve`), so that the peak
//! memory printed (VmHWM of this process) is plumbline's own; both share the machine's cores.
//!
//! `cargo bench --bench clusters` (10 x 10,000), or `-- CLUSTERS OBJECTS`. With `scan`, a
//! whole recorded `plumbline scan` of the fleet instead, once: Git holds the manifests, one
//! app per cluster, so desired objects are rendered for every cluster.

#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use plumbline::config::{ClusterAccess, Tracking};
use plumbline::diff::{self, Settings};
use plumbline::live::kube::Limits;
use plumbline::live::{Connection, ReadPlan};
use plumbline::model::Resource;
use plumbline::scan::{self, ScanOptions};
use plumbline::source::writer::{CommitSpec, RepoWriter};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const NAMESPACES: usize = 50;

/// The allocator of the plumbline binary, so that the reader is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The i-th object of the fleet, as Git declares it, for the app `fleet`.
fn manifest(i: usize) -> Value {
    let ns = format!("team-{}", i % NAMESPACES);
    let name = format!("obj-{i}");
    let labels =
        json!({"app.kubernetes.io/name": name.clone(), "app.kubernetes.io/instance": "fleet"});
    let meta = json!({"name": name.clone(), "namespace": ns, "labels": labels});
    match (i / NAMESPACES) % 10 {
        0 => json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": name.clone()}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
              "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.2.3",
                "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}),
        1 => json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        2 => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"LOG_LEVEL": "info", "REGION": "eu"}})
        }
        3 => {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": {"token": "not-a-real-token"}})
        }
        4 => json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}),
        5 => json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        6 => {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}]})
        }
        7 => json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}}),
        8 => {
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}, "ingress": [{"ports": [{"port": 8080}]}]}})
        }
        _ => json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": {
            "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
              "restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "registry.example.com/job:2.0"}]}}}}}}),
    }
}

/// CPU time a process has used, (user, system), from /proc/PID/stat in clock ticks of
/// 1/100 s: on a shared machine, a steadier measure than the wall clock.
fn cpu_seconds(process: &str) -> (f64, f64) {
    std::fs::read_to_string(format!("/proc/{process}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user / 100.0, system / 100.0))
        })
        .unwrap_or((0.0, 0.0))
}

/// CPU used since `before`, as "T s (S s system)".
fn cpu_since(process: &str, before: (f64, f64)) -> String {
    let (user, system) = cpu_seconds(process);
    let system = system - before.1;
    format!("{:.2} s ({system:.2} s system)", user - before.0 + system)
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Clusters read at once: the default of `live.clusters_at_once`.
const CLUSTERS_AT_ONCE: usize = 8;

fn desired_objects(objects: usize) -> Vec<Resource> {
    (0..objects)
        .map(|i| Resource::from_value(manifest(i)).expect("valid"))
        .collect()
}

/// The child process: starts and seeds the servers, writes one kubeconfig per server into
/// `dir`, says `ready` and serves until its standard input closes.
fn serve(clusters: usize, objects: usize, dir: &Path) {
    let desired = desired_objects(objects);
    let servers: Vec<apiserver::ApiServer> = (0..clusters)
        .into_par_iter()
        .map(|_| {
            let server = apiserver::ApiServer::builder().token("t0ken").start();
            for ns in 0..NAMESPACES {
                server.seed(&format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{ns}}}\n"
                ));
            }
            for object in &desired {
                server
                    .create_as(object.body.clone(), "argocd-controller")
                    .expect("seeded");
            }
            server
        })
        .collect();
    for (n, server) in servers.iter().enumerate() {
        server.write_kubeconfig(&kubeconfig(dir, n), "bench");
    }
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    // Serve until the parent is done (it closes our standard input, or exits).
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}

fn kubeconfig(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("kube-{n}.yaml"))
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let clusters = args.first().copied().unwrap_or(10);
    let objects = args.get(1).copied().unwrap_or(10_000);
    if let Some(at) = raw.iter().position(|a| a == "serve") {
        let dir = raw.get(at + 1).expect("serve DIR");
        serve(clusters, objects, Path::new(dir));
        return;
    }
    plumbline::live::kube::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut servers = Command::new(std::env::current_exe().expect("own path"))
        .arg(clusters.to_string())
        .arg(objects.to_string())
        .arg("serve")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the API server process");
    let server_pid = servers.id().to_string();
    let mut ready = String::new();
    BufReader::new(servers.stdout.take().expect("child stdout"))
        .read_line(&mut ready)
        .expect("child says ready");
    assert_eq!(ready.trim(), "ready", "the API server process failed");
    eprintln!(
        "seeded {clusters} clusters x {objects} objects in {:.1?} (separate process)",
        started.elapsed()
    );
    if raw.iter().any(|a| a == "scan") {
        scan_fleet(clusters, objects, dir.path(), &server_pid);
        drop(servers.stdin.take());
        let _ = servers.wait();
        return;
    }
    let desired = desired_objects(objects);
    let accesses: Vec<ClusterAccess> = (0..clusters)
        .map(|n| ClusterAccess::Kube {
            kubeconfig: Some(kubeconfig(dir.path(), n)),
            context: None,
        })
        .collect();
    let mut plan = ReadPlan {
        tracking_selector: "app.kubernetes.io/instance".into(),
        ..ReadPlan::default()
    };
    plan.add_app(&desired, None);
    let tracking = Tracking::default();
    let settings = Settings {
        tracking: &tracking,
        ignore: Vec::new(),
        appliers: diff::DEFAULT_APPLIERS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        hash_key: None,
    };
    let before = peak_memory_mib();
    for round in 1..=3 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(CLUSTERS_AT_ONCE.min(clusters).max(1))
            .build()
            .expect("pool");
        let started = Instant::now();
        let cpu_before = cpu_seconds("self");
        let server_cpu_before = cpu_seconds(&server_pid);
        let results: Vec<(usize, usize)> = pool.install(|| {
            accesses
                .par_iter()
                .map(|access| {
                    let connection = Connection::open(
                        access,
                        &Limits {
                            qps: 1000.0,
                            burst: 1000,
                            ..Limits::default()
                        },
                    )
                    .expect("connect");
                    let live = connection.read(&plan).expect("read");
                    let findings = diff::diff_app("fleet", "bench", &desired, &live, &settings);
                    let drift = findings
                        .iter()
                        .filter(|f| f.status != plumbline::model::Status::InSync)
                        .count();
                    (live.len(), drift)
                })
                .collect()
        });
        let elapsed = started.elapsed();
        let cpu = cpu_since("self", cpu_before);
        let server_cpu = cpu_since(&server_pid, server_cpu_before);
        let read: usize = results.iter().map(|r| r.0).sum();
        let drift: usize = results.iter().map(|r| r.1).sum();
        println!(
            "round {round}: {clusters} clusters x {objects} objects: {read} live objects read, indexed and diffed in {elapsed:.2?}, CPU {cpu}, servers' CPU {server_cpu} ({drift} not in sync); peak RSS {:.0} MiB (before reading: {before:.0} MiB; servers in another process)",
            peak_memory_mib()
        );
    }
    drop(servers.stdin.take());
    let _ = servers.wait();
}

/// One recorded scan of the fleet as the command runs it: sources, render, read, diff,
/// history, store.
fn scan_fleet(clusters: usize, objects: usize, dir: &Path, server_pid: &str) {
    std::env::set_var("PLUMBLINE_CACHE", dir.join("cache"));
    let files: Vec<(String, Option<Vec<u8>>)> = (0..NAMESPACES)
        .map(|ns| {
            let documents: Vec<String> = (ns..objects)
                .step_by(NAMESPACES)
                .map(|i| manifest(i).to_string())
                .collect();
            let text = documents.join("\n---\n");
            (format!("fleet/team-{ns}.yaml"), Some(text.into_bytes()))
        })
        .collect();
    let mut writer = RepoWriter::init(&dir.join("repo"), true).expect("repository");
    let spec = CommitSpec {
        author_name: "Fleet Bot".into(),
        author_email: "fleet@example.com".into(),
        time: 1_761_000_000,
        message: "the fleet".into(),
        changes: files,
    };
    writer.commit("main", &spec).expect("commit");
    let mut config = format!(
        "database: {}\nsources:\n  - {{name: fleet, url: {}, revision: main}}\n\
         live: {{qps: 1000, burst: 1000}}\nclusters:\n",
        dir.join("plumbline.db").display(),
        dir.join("repo").display()
    );
    for n in 0..clusters {
        config.push_str(&format!(
            "  - {{name: c{n}, kubeconfig: {}}}\n",
            kubeconfig(dir, n).display()
        ));
    }
    config.push_str("apps:\n");
    for n in 0..clusters {
        config.push_str(&format!(
            "  - {{name: fleet-{n}, source: fleet, path: fleet, cluster: c{n}, render: plain}}\n"
        ));
    }
    let config_path = dir.join("plumbline.yaml");
    std::fs::write(&config_path, config).expect("configuration");
    let config = plumbline::config::load(&config_path).expect("valid configuration");
    let options = ScanOptions {
        apps: Vec::new(),
        clusters: Vec::new(),
        progress: false,
        record: true,
        self_heal_only: false,
    };
    let before = peak_memory_mib();
    let started = Instant::now();
    let cpu_before = cpu_seconds("self");
    let server_cpu_before = cpu_seconds(server_pid);
    let outcome = scan::run(&config, &options).expect("scan");
    let elapsed = started.elapsed();
    let summary = &outcome.result.summary;
    println!(
        "scan: {clusters} clusters x {objects} objects: {} compared ({} in sync, {} errors) in {elapsed:.2?}, CPU {}, servers' CPU {}; peak RSS {:.0} MiB (before the scan: {before:.0} MiB)",
        summary.resources,
        summary.in_sync,
        outcome.result.errors.len(),
        cpu_since("self", cpu_before),
        cpu_since(server_pid, server_cpu_before),
        peak_memory_mib()
    );
}
