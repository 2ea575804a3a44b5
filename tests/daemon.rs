//! `plumbline daemon`, the real binary against a loopback API server: scheduled scans that
//! see drift made between them, every tick recorded, the endpoints, the database lock, and a
//! shutdown during a scan that leaves the database whole.

#[path = "support/apiserver/mod.rs"]
mod apiserver;
mod support;

use apiserver::ApiServer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Workspace;

const TOKEN: &str = "s3cret-token";
const TOKEN_ENV: &str = "PLUMBLINE_TEST_API_TOKEN";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
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
          ports: [{containerPort: 80}]
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  LOG_LEVEL: info
";

/// Polls `check` until it gives a value, or fails the test at the deadline.
fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running daemon, its stderr collected line by line.
struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Daemon {
    fn start(ws: &Workspace, token: Option<&str>) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plumbline"));
        command
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .current_dir(ws.dir.path())
            .env("PLUMBLINE_CACHE", ws.path("cache"))
            .env_remove("PLUMBLINE_CONFIG")
            .env_remove(TOKEN_ENV)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env(TOKEN_ENV, token);
        }
        let mut child = command.spawn().expect("start the daemon");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("log").push(line);
            }
        });
        let url = eventually("the daemon to listen", Duration::from_secs(10), || {
            let log = log.lock().expect("log");
            log.iter().find_map(|line| {
                let at = line.find("listening on http://")?;
                let rest = &line[at + "listening on ".len()..];
                Some(rest.split_whitespace().next()?.to_string())
            })
        });
        Daemon { child, log, url }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    fn terminate(mut self) -> (i32, Duration, String) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = eventually("the daemon to exit", Duration::from_secs(15), || {
            self.child.try_wait().expect("wait")
        });
        (exit.code().unwrap_or(-1), started.elapsed(), self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status and body.
fn http(method: &str, url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let response = match method {
        "POST" => {
            let mut request = agent.post(url);
            if let Some(token) = token {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            request.send_empty()
        }
        _ => agent.get(url).call(),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("body");
    (status, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The scheduled ticks as (outcome, scheduled_at, scan_id, reason), oldest first.
fn ticks(db: &rusqlite::Connection) -> Vec<(String, String, Option<i64>, Option<String>)> {
    let mut stmt = db
        .prepare(
            "SELECT outcome, scheduled_at, scan_id, reason FROM ticks
             WHERE trigger = 'schedule' ORDER BY scheduled_at, id",
        )
        .expect("ticks query");
    stmt.query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })
    .expect("ticks")
    .collect::<Result<Vec<_>, _>>()
    .expect("ticks rows")
}

fn replicas_drift(scan: &Value) -> bool {
    scan["findings"].as_array().is_some_and(|findings| {
        findings.iter().any(|f| {
            f["kind"] == "Deployment"
                && f["status"] == "modified"
                && f["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["path"] == "/spec/replicas"))
        })
    })
}

#[test]
fn daemon_scans_on_schedule_records_ticks_and_shuts_down_cleanly() {
    let ws = Workspace::new();
    ws.repo_with(
        "Ana Ruiz",
        "ana.ruiz@example.com",
        "Add web",
        vec![
            ("apps/web/deployment.yaml".into(), DEPLOYMENT.into()),
            ("apps/web/config.yaml".into(), CONFIG.into()),
        ],
    );
    let server = ApiServer::builder().start();
    server.seed("apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n");
    let applied = format!("{DEPLOYMENT}---\n{CONFIG}")
        .replace(
            "metadata:\n  name: web\n",
            "metadata:\n  name: web\n  namespace: web\n",
        )
        .replace(
            "metadata:\n  name: web-config\n",
            "metadata:\n  name: web-config\n  namespace: web\n",
        )
        .replace(
            "  labels: {app: web}\nspec:\n  replicas",
            "  labels: {app: web, app.kubernetes.io/instance: web}\nspec:\n  replicas",
        );
    server.seed(&applied);
    server.write_kubeconfig(&ws.path("kube.yaml"), "live");
    ws.write(
        "plumbline.yaml",
        &format!(
            "database: data/plumbline.db
live: {{timeout_seconds: 10, retries: 1}}
sources: [{{name: gitops, url: repo}}]
clusters: [{{name: live, kubeconfig: kube.yaml}}]
apps: [{{name: web, source: gitops, path: apps/web, cluster: live, namespace: web}}]
schedule: \"* * * * * *\"
daemon: {{api_token_env: {TOKEN_ENV}, grace_seconds: 2}}
"
        ),
    );

    let daemon = Daemon::start(&ws, Some(TOKEN));
    let url = daemon.url.clone();

    // One daemon per database: the second is refused and names the first.
    let second = ws.run(&["daemon", "--listen", "127.0.0.1:0"]);
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains("plumbline.db.lock"), "{said}");
    assert!(
        said.contains(&format!("pid {}", daemon.child.id())),
        "{said}"
    );

    assert_eq!(http("GET", &format!("{url}/healthz"), None).0, 200);
    let (status, body) = http("GET", &format!("{url}/readyz"), None);
    assert_eq!((status, json(&body)), (200, json!({"ready": true})));

    // The first scheduled scan: everything in sync.
    let first = eventually("a first scan", Duration::from_secs(10), || {
        let (status, body) = http("GET", &format!("{url}/scans/latest"), None);
        (status == 200).then(|| json(&body))
    });
    assert_eq!(first["summary"]["modified"], 0, "{first:#}");
    assert_eq!(first["clusters"][0]["status"], "ok", "{first:#}");

    // Drift made between scans shows up in a later one, with who made it.
    server.edit("apps/v1", "Deployment", Some("web"), "web", |d| {
        d["spec"]["replicas"] = json!(5);
    });
    let drifted = eventually("the drift in a scan", Duration::from_secs(10), || {
        let (_, body) = http("GET", &format!("{url}/scans/latest"), None);
        let scan = json(&body);
        replicas_drift(&scan).then_some(scan)
    });
    assert!(drifted["scan_id"].as_i64() > first["scan_id"].as_i64());
    let finding = &drifted["findings"][0];
    assert_eq!(finding["managers"], json!(["kubectl-edit"]), "{finding:#}");

    let db = rusqlite::Connection::open(ws.path("data/plumbline.db")).expect("open db");
    eventually("three scheduled runs", Duration::from_secs(10), || {
        let ran = ticks(&db).iter().filter(|t| t.0 == "ran").count();
        (ran >= 3).then_some(())
    });

    // Metrics parse as Prometheus text and carry the last scan.
    let (status, body) = http("GET", &format!("{url}/metrics"), None);
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("metrics parse");
    let sample = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape.samples.iter().find_map(|s| {
            let matches =
                s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v));
            match (&s.value, matches) {
                (prometheus_parse::Value::Counter(v), true)
                | (prometheus_parse::Value::Gauge(v), true)
                | (prometheus_parse::Value::Untyped(v), true) => Some(*v),
                _ => None,
            }
        })
    };
    assert_eq!(
        sample(
            "plumbline_findings",
            &[("status", "modified"), ("cluster", "live"), ("app", "web")]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample("plumbline_cluster_reachable", &[("cluster", "live")]),
        Some(1.0)
    );
    assert!(
        sample(
            "plumbline_ticks_total",
            &[("trigger", "schedule"), ("outcome", "ran")]
        )
        .is_some_and(|n| n >= 3.0),
        "{body}"
    );
    assert!(sample("plumbline_scan_duration_seconds_count", &[]).is_some_and(|n| n >= 3.0));
    // The first run renders, the later ones reuse it: Git did not change.
    assert!(
        sample("plumbline_render_cache_hits_total", &[]).is_some_and(|n| n >= 2.0),
        "{body}"
    );
    assert!(sample("plumbline_render_cache_misses_total", &[]).is_some_and(|n| n >= 1.0));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "plumbline_scan_duration_seconds"
            && matches!(s.value, prometheus_parse::Value::Histogram(_))));
    assert_eq!(
        sample("plumbline_policy_violations", &[("severity", "critical")]),
        Some(0.0)
    );
    assert!(
        sample("plumbline_last_successful_scan_timestamp_seconds", &[]).is_some_and(|t| t > 1.7e9),
        "{body}"
    );

    // POST /scan: a token is required, and a run asked for is recorded as such.
    assert_eq!(http("POST", &format!("{url}/scan"), None).0, 401);
    assert_eq!(http("POST", &format!("{url}/scan"), Some("wrong")).0, 401);
    let asked = eventually("a scan through the API", Duration::from_secs(10), || {
        let (status, body) = http("POST", &format!("{url}/scan?wait=true"), Some(TOKEN));
        match status {
            409 => None,
            200 => Some(json(&body)),
            other => panic!("POST /scan: {other}: {body}"),
        }
    });
    assert!(replicas_drift(&asked), "{asked:#}");
    let api_runs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM ticks WHERE trigger = 'api' AND outcome = 'ran' AND scan_id = ?1",
            [asked["scan_id"].as_i64()],
            |row| row.get(0),
        )
        .expect("api ticks");
    assert_eq!(api_runs, 1);

    // A slow cluster: the scan outlasts the next ticks (skipped) and the shutdown's grace
    // period (abandoned), and a scan asked for meanwhile is refused.
    server.set_latency(Duration::from_millis(1500));
    eventually("a slow scan to be running", Duration::from_secs(10), || {
        let (_, body) = http("GET", &format!("{url}/metrics"), None);
        body.contains("plumbline_scan_running 1\n").then_some(())
    });
    let (status, body) = http("POST", &format!("{url}/scan"), Some(TOKEN));
    assert_eq!(status, 409, "{body}");
    eventually("a skipped tick", Duration::from_secs(10), || {
        ticks(&db).iter().any(|t| t.0 == "skipped").then_some(())
    });
    let scans_before: i64 = db
        .query_row("SELECT COUNT(*) FROM scans", [], |row| row.get(0))
        .expect("count");
    let (code, took, log) = daemon.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        took < Duration::from_secs(6),
        "shutdown took {took:?}\n{log}"
    );
    assert!(log.contains("abandoned at shutdown"), "{log}");
    server.set_latency(Duration::ZERO);

    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity");
    assert_eq!(integrity, "ok");
    let scans_after: i64 = db
        .query_row("SELECT COUNT(*) FROM scans", [], |row| row.get(0))
        .expect("count");
    assert_eq!(scans_after, scans_before, "the abandoned scan left no rows");
    let recorded = ticks(&db);
    let running = recorded.iter().filter(|t| t.0 == "running").count();
    assert_eq!(running, 0, "{recorded:#?}");
    let abandoned: Vec<_> = recorded.iter().filter(|t| t.0 == "failed").collect();
    assert_eq!(abandoned.len(), 1, "{recorded:#?}");
    assert!(abandoned[0]
        .3
        .as_deref()
        .unwrap_or("")
        .contains("abandoned"));
    let last_tick = recorded.last().expect("ticks").1.clone();
    for (outcome, _, scan_id, reason) in &recorded {
        match outcome.as_str() {
            "ran" => assert!(scan_id.is_some()),
            "skipped" => assert!(reason.as_deref().unwrap_or("").contains("still running")),
            _ => {}
        }
    }
    let mut times: Vec<&String> = recorded.iter().map(|t| &t.1).collect();
    times.dedup();
    assert_eq!(
        times.len(),
        recorded.len(),
        "one row per tick: {recorded:#?}"
    );

    // Every stored scan is whole: its row hash is that of its JSON result.
    let latest = ws.run(&[
        "report",
        "--scan",
        "latest",
        "--format",
        "json",
        "--include-in-sync",
    ]);
    let (id, row_hash): (i64, String) = db
        .query_row(
            "SELECT id, row_hash FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("latest scan");
    assert_eq!(
        json(&String::from_utf8_lossy(&latest.stdout))["scan_id"],
        id
    );
    assert_eq!(hex::encode(Sha256::digest(&latest.stdout)), row_hash);

    // Started again, without its token: the ticks it was down for are missed, the API is
    // refused with the reason, and a shutdown lets the running scan finish.
    std::thread::sleep(Duration::from_millis(1100));
    let daemon = Daemon::start(&ws, None);
    let url = daemon.url.clone();
    let (status, body) = http("POST", &format!("{url}/scan"), Some(TOKEN));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(TOKEN_ENV), "{body}");
    let missed: Vec<_> = ticks(&db).into_iter().filter(|t| t.0 == "missed").collect();
    assert!(!missed.is_empty());
    assert!(missed
        .iter()
        .all(|t| t.3.as_deref() == Some("the daemon was stopped or not running")));
    let resumed = eventually("a scan after the restart", Duration::from_secs(10), || {
        let ran: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM ticks WHERE outcome = 'ran' AND scheduled_at > ?1",
                [&last_tick],
                |row| row.get(0),
            )
            .ok()?;
        (ran > 0).then_some(ran)
    });
    assert!(resumed > 0);
    let (code, _, log) = daemon.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("abandoned"), "{log}");
    let recorded = ticks(&db);
    assert!(recorded.iter().all(|t| t.0 != "running"), "{recorded:#?}");

    // The evidence report names the gaps of its period.
    let report = ws.run(&["report", "--format", "html"]);
    let html = String::from_utf8_lossy(&report.stdout);
    let finished: String = db
        .query_row(
            "SELECT finished_at FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .expect("latest scan");
    let period: Vec<_> = recorded.iter().filter(|t| t.1 <= finished).collect();
    let ran = period.iter().filter(|t| t.0 == "ran").count();
    assert!(
        html.contains(&format!(
            "monitoring: {ran} of {} expected scheduled runs executed from",
            period.len()
        )),
        "{html}"
    );
    for gap in ["skipped", "missed", "abandoned at shutdown"] {
        assert!(html.contains(gap), "{gap}");
    }
}

#[test]
fn scheduled_scans_heal_the_drift_of_opted_in_apps_only() {
    let ws = Workspace::new();
    let api_deployment = DEPLOYMENT.replace("web", "api");
    ws.repo_with(
        "Ana Ruiz",
        "ana.ruiz@example.com",
        "Add web and api",
        vec![
            ("apps/web/deployment.yaml".into(), DEPLOYMENT.into()),
            (
                "apps/api/deployment.yaml".into(),
                api_deployment.clone().into(),
            ),
        ],
    );
    let server = ApiServer::builder().start();
    for (app, manifest) in [("web", DEPLOYMENT.to_string()), ("api", api_deployment)] {
        server.seed(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {app}}}\n"
        ));
        server.seed(
            &manifest
                .replace(
                    &format!("metadata:\n  name: {app}\n"),
                    &format!("metadata:\n  name: {app}\n  namespace: {app}\n"),
                )
                .replace(
                    &format!("  labels: {{app: {app}}}\nspec:\n  replicas"),
                    &format!(
                        "  labels: {{app: {app}, app.kubernetes.io/instance: {app}}}\nspec:\n  replicas"
                    ),
                ),
        );
    }
    server.write_kubeconfig(&ws.path("kube.yaml"), "live");
    ws.write(
        "plumbline.yaml",
        "database: plumbline.db
sources: [{name: gitops, url: repo}]
clusters: [{name: live, kubeconfig: kube.yaml}]
apps:
  - {name: web, source: gitops, path: apps/web, cluster: live, namespace: web, self_heal: true}
  - {name: api, source: gitops, path: apps/api, cluster: live, namespace: api}
schedule: \"* * * * * *\"
heal: {force: true}
",
    );
    let replicas = |app: &str| {
        server
            .object("apps/v1", "Deployment", Some(app), app)
            .and_then(|d| d["spec"]["replicas"].as_i64())
    };
    let daemon = Daemon::start(&ws, None);
    let url = daemon.url.clone();
    eventually("a first scan", Duration::from_secs(10), || {
        let (status, _) = http("GET", &format!("{url}/scans/latest"), None);
        (status == 200).then_some(())
    });

    // The same manual change to both apps between two scheduled scans.
    for app in ["web", "api"] {
        server.edit("apps/v1", "Deployment", Some(app), app, |d| {
            d["spec"]["replicas"] = json!(5);
        });
    }
    eventually("web healed back to Git", Duration::from_secs(15), || {
        (replicas("web") == Some(2)).then_some(())
    });
    assert_eq!(replicas("api"), Some(5), "api did not opt in");

    // A later scheduled scan sees web in sync and api still drifted; the action is on record.
    let scan = eventually("a scan after the heal", Duration::from_secs(10), || {
        let (_, body) = http("GET", &format!("{url}/scans/latest"), None);
        let scan = json(&body);
        let drifted: Vec<&str> = scan["findings"]
            .as_array()?
            .iter()
            .filter(|f| f["status"] == "modified")
            .filter_map(|f| f["app"].as_str())
            .collect();
        (drifted == ["api"]).then_some(scan)
    });
    assert_eq!(scan["summary"]["modified"], 1, "{scan:#}");
    let db = rusqlite::Connection::open(ws.path("plumbline.db")).expect("database");
    let actions: Vec<(String, String, String)> = db
        .prepare("SELECT app, action, status FROM heal_actions WHERE dry_run = 0 ORDER BY id")
        .expect("query")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("actions");
    assert_eq!(
        actions,
        [(
            "web".to_string(),
            "apply".to_string(),
            "applied".to_string()
        )],
        "{}",
        daemon.log()
    );
    let (code, _, log) = daemon.terminate();
    assert_eq!(code, 0, "{log}");
}
