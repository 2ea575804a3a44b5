//! Rendering reports of a large scan: 10,000 drifted findings (with changes and diffs) to
//! the HTML evidence report, SARIF and JUnit. Prints the time each takes and the HTML size.

use plumbline::model::{
    Change, ClusterResult, CommitRef, Finding, Origin, ScanResult, SourceResult, Status, Summary,
};
use plumbline::report::{html, junit, sarif};
use plumbline::store::Coverage;
use std::time::Instant;

fn finding(i: usize) -> Finding {
    let status = [
        Status::Modified,
        Status::Missing,
        Status::Orphaned,
        Status::Ignored,
    ][i % 4];
    let modified = matches!(status, Status::Modified | Status::Ignored);
    Finding {
        app: format!("app-{}", i % 40),
        cluster: format!("cluster-{}", i % 10),
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: Some(format!("team-{}", i % 50)),
        name: format!("svc-{i}"),
        status,
        changes: if modified {
            vec![Change {
                path: "/spec/template/spec/containers/0/image".into(),
                desired: Some(serde_json::json!(format!("registry.example.com/svc-{i}:1.4.2"))),
                live: Some(serde_json::json!(format!("registry.example.com/svc-{i}:1.4.3-debug"))),
            }]
        } else {
            Vec::new()
        },
        managers: if modified { vec!["kubectl-set".into()] } else { Vec::new() },
        last_commit: Some(CommitRef {
            sha: format!("{i:040x}"),
            author: "Ana Ruiz <ana.ruiz@example.com>".into(),
            time: "2026-11-02T10:04:51Z".into(),
            message: "fix(shop): raise the memory limit".into(),
        }),
        reason: None,
        origin: Some(Origin { file: format!("apps/svc-{i}/deployment.yaml"), line: 1 }),
        patch: None,
        diff: modified.then(|| {
            format!("--- Deployment.apps team/svc-{i} (live)\n+++ Deployment.apps team/svc-{i} (desired)\n@@ -20,7 +20,7 @@\n       containers:\n       - name: app\n-        image: registry.example.com/svc-{i}:1.4.3-debug\n+        image: registry.example.com/svc-{i}:1.4.2\n         imagePullPolicy: IfNotPresent\n")
        }),
        secret_digest: None,
    }
}

fn main() {
    let findings: Vec<Finding> = (0..10_000).map(finding).collect();
    let mut summary = Summary::default();
    for f in &findings {
        summary.count(f.status);
    }
    let result = ScanResult {
        scan_id: 42,
        started_at: "2026-11-23T03:00:00Z".into(),
        finished_at: "2026-11-23T03:00:09Z".into(),
        sources: vec![SourceResult {
            name: "platform".into(),
            revision: "main".into(),
            commit: Some("a".repeat(40)),
        }],
        clusters: (0..10)
            .map(|c| ClusterResult {
                name: format!("cluster-{c}"),
                status: "ok".into(),
                error: None,
            })
            .collect(),
        summary,
        findings,
        policy_results: Vec::new(),
        errors: Vec::new(),
        commits: Vec::new(),
        expired_waivers: Vec::new(),
        policies: Vec::new(),
        heal_actions: Vec::new(),
    };
    for round in 1..=3 {
        let started = Instant::now();
        let page = html::render(&html::Context {
            result: &result,
            period_commits: &[],
            period_start: 42,
            history: &[],
            row_hash: "0".repeat(64).as_str(),
            database: "plumbline.db",
            config_digest: "0",
            monitoring: &Coverage::default(),
            period_from: "2026-01-01T00:00:00Z",
        })
        .expect("renders");
        let html_time = started.elapsed();
        let started = Instant::now();
        let sarif_text = sarif::render(&result);
        let sarif_time = started.elapsed();
        let started = Instant::now();
        let junit_text = junit::render(&result);
        let junit_time = started.elapsed();
        println!(
            "round {round}: 10000 findings: HTML {html_time:.2?} ({:.1} MiB), SARIF {sarif_time:.2?} ({:.1} MiB), JUnit {junit_time:.2?} ({:.1} MiB)",
            page.len() as f64 / 1048576.0,
            sarif_text.len() as f64 / 1048576.0,
            junit_text.len() as f64 / 1048576.0
        );
    }
}
