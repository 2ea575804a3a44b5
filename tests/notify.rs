//! Alerts: what counts as a change between scans, how undelivered alerts combine, and real
//! deliveries to an SMTP server and an HTTP server on loopback.

#[path = "support/http_capture.rs"]
mod http_capture;
#[path = "support/smtp.rs"]
mod smtp;

use std::net::TcpListener;
use std::sync::Once;

use hmac::{Hmac, Mac};
use plumbline::config::{EmailConfig, NotifyConfig, WebhookConfig, WEBHOOK_EVENTS};
use plumbline::model::{
    Change, ClusterResult, CommitRef, Finding, ScanError, ScanResult, Stage, Status, Summary,
};
use plumbline::notify::{self, Alert};
use serde_json::{json, Value};
use sha2::Sha256;

use http_capture::HttpCapture;
use smtp::{Part, SmtpServer};

const SMTP_USER_VAR: &str = "PLUMBLINE_TEST_NOTIFY_SMTP_USER";
const SMTP_PASS_VAR: &str = "PLUMBLINE_TEST_NOTIFY_SMTP_PASS";
const HOOK_SECRET_VAR: &str = "PLUMBLINE_TEST_NOTIFY_HOOK_SECRET";
const HOOK_SECRET: &str = "hook-signing-secret";
/// A Secret's real value: must never reach a message.
const SECRET_VALUE: &str = "hunter2-do-not-leak";

/// Sets the variables once, before any test reads them; the names are used nowhere else.
fn environment() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var(SMTP_USER_VAR, "alerts");
        std::env::set_var(SMTP_PASS_VAR, "smtp-password");
        std::env::set_var(HOOK_SECRET_VAR, HOOK_SECRET);
    });
}

fn finding(cluster: &str, app: &str, kind: &str, name: &str, status: Status) -> Finding {
    Finding {
        app: app.into(),
        cluster: cluster.into(),
        group: if kind == "Deployment" { "apps" } else { "" }.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: Some(app.into()),
        name: name.into(),
        status,
        changes: Vec::new(),
        managers: Vec::new(),
        last_commit: None,
        reason: None,
        origin: None,
        patch: None,
        diff: None,
        secret_digest: None,
    }
}

fn cluster(name: &str, status: &str) -> ClusterResult {
    ClusterResult {
        name: name.into(),
        status: status.into(),
        error: (status != "ok").then(|| format!("cluster {name}: connection refused")),
    }
}

fn scan(id: i64, clusters: &[(&str, &str)], findings: Vec<Finding>) -> ScanResult {
    ScanResult {
        scan_id: id,
        started_at: format!("2026-11-22T03:{id:02}:00Z"),
        finished_at: format!("2026-11-22T03:{id:02}:04Z"),
        sources: Vec::new(),
        clusters: clusters.iter().map(|(n, s)| cluster(n, s)).collect(),
        summary: Summary::default(),
        findings,
        policy_results: Vec::new(),
        errors: Vec::new(),
        commits: Vec::new(),
        expired_waivers: Vec::new(),
        policies: Vec::new(),
        heal_actions: Vec::new(),
    }
}

fn names(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{}/{}/{}/{}", f.cluster, f.app, f.kind, f.name))
        .collect()
}

const PROD: &[(&str, &str)] = &[("prod", "ok"), ("staging", "ok")];

#[test]
fn first_scan_reports_all_drift_and_failed_clusters() {
    let current = scan(
        1,
        &[("prod", "ok"), ("edge", "unreachable")],
        vec![
            finding("prod", "web", "Deployment", "web", Status::Modified),
            finding("prod", "web", "Service", "web", Status::InSync),
            finding("prod", "web", "ConfigMap", "cfg", Status::Ignored),
            finding("prod", "api", "Deployment", "api", Status::Missing),
            finding("prod", "api", "ConfigMap", "old", Status::Orphaned),
        ],
    );
    let alert = notify::compute(None, &current);
    assert_eq!(
        names(&alert.new_drift),
        [
            "prod/api/ConfigMap/old",
            "prod/api/Deployment/api",
            "prod/web/Deployment/web"
        ]
    );
    assert!(alert.resolved.is_empty());
    assert_eq!(alert.unreachable.len(), 1);
    assert_eq!(alert.unreachable[0].name, "edge");
    assert!(alert.recovered.is_empty());
    assert_eq!(alert.scan_id, 1);
    assert_eq!(alert.finished_at, current.finished_at);
}

#[test]
fn unchanged_drift_is_not_repeated() {
    let mut before = finding("prod", "web", "Deployment", "web", Status::Modified);
    before.changes = vec![Change {
        path: "/spec/replicas".into(),
        desired: Some(json!(3)),
        live: Some(json!(5)),
    }];
    // Same object still drifting, with other values and even another drift status.
    let mut now = before.clone();
    now.changes[0].live = Some(json!(7));
    let moved = finding("prod", "web", "Service", "web", Status::Orphaned);
    let mut moved_now = moved.clone();
    moved_now.status = Status::Missing;
    let previous = scan(1, PROD, vec![before, moved]);
    let current = scan(2, PROD, vec![now, moved_now]);
    let alert = notify::compute(Some(&previous), &current);
    assert!(alert.is_empty(), "{alert:?}");
}

#[test]
fn drift_new_since_the_previous_scan_is_reported() {
    let a = finding("prod", "web", "Deployment", "web", Status::Modified);
    let b = finding("staging", "web", "Deployment", "web", Status::Missing);
    // The same object attributed to another app is another drift.
    let c = finding("prod", "web-canary", "Deployment", "web", Status::Modified);
    let was_in_sync = finding("prod", "api", "Service", "api", Status::InSync);
    let mut now_drift = was_in_sync.clone();
    now_drift.status = Status::Modified;
    let previous = scan(1, PROD, vec![a.clone(), was_in_sync]);
    let current = scan(2, PROD, vec![a, b, c, now_drift]);
    let alert = notify::compute(Some(&previous), &current);
    assert_eq!(
        names(&alert.new_drift),
        [
            "prod/api/Service/api",
            "prod/web-canary/Deployment/web",
            "staging/web/Deployment/web"
        ]
    );
    assert!(alert.resolved.is_empty());
}

#[test]
fn drift_that_is_gone_in_sync_or_ignored_is_resolved() {
    let stays = finding("prod", "web", "Deployment", "web", Status::Modified);
    let gone = finding("prod", "web", "ConfigMap", "gone", Status::Orphaned);
    let synced = finding("prod", "web", "Service", "web", Status::Modified);
    let ignored = finding("staging", "web", "Deployment", "web", Status::Modified);
    let previous = scan(
        1,
        PROD,
        vec![stays.clone(), gone, synced.clone(), ignored.clone()],
    );
    let mut synced_now = synced;
    synced_now.status = Status::InSync;
    let mut ignored_now = ignored;
    ignored_now.status = Status::Ignored;
    let current = scan(2, PROD, vec![stays, synced_now, ignored_now]);
    let alert = notify::compute(Some(&previous), &current);
    assert!(alert.new_drift.is_empty());
    assert_eq!(
        names(&alert.resolved),
        [
            "prod/web/ConfigMap/gone",
            "prod/web/Service/web",
            "staging/web/Deployment/web"
        ]
    );
    // Resolved findings say what the drift was.
    assert_eq!(alert.resolved[0].status, Status::Orphaned);
}

#[test]
fn an_unreachable_cluster_says_nothing_about_its_drift() {
    let prod_drift = finding("prod", "web", "Deployment", "web", Status::Modified);
    let staging_drift = finding("staging", "web", "Deployment", "web", Status::Modified);
    let previous = scan(1, PROD, vec![prod_drift, staging_drift.clone()]);
    let current = scan(
        2,
        &[("prod", "unreachable"), ("staging", "ok")],
        vec![staging_drift],
    );
    let alert = notify::compute(Some(&previous), &current);
    assert!(alert.new_drift.is_empty());
    assert!(alert.resolved.is_empty());
    assert_eq!(alert.unreachable.len(), 1);
    assert_eq!(alert.unreachable[0].name, "prod");
    assert_eq!(alert.unreachable[0].status, "unreachable");
    assert!(alert.unreachable[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("connection refused")));

    // Still down in the next scan: nothing new to say.
    let again = scan(
        3,
        &[("prod", "unreachable"), ("staging", "ok")],
        current.findings.clone(),
    );
    assert!(notify::compute(Some(&current), &again).is_empty());
}

#[test]
fn a_cluster_back_is_recovered_and_its_standing_drift_is_not_new() {
    let standing = finding("prod", "web", "Deployment", "web", Status::Modified);
    let scan1 = scan(1, PROD, vec![standing.clone()]);
    let base1 = notify::baseline(None, &scan1);
    let scan2 = scan(2, &[("prod", "unreachable"), ("staging", "ok")], vec![]);
    assert!(notify::compute(Some(&base1), &scan2).resolved.is_empty());
    let base2 = notify::baseline(Some(&base1), &scan2);

    let fresh = finding("prod", "api", "Deployment", "api", Status::Missing);
    let scan3 = scan(3, PROD, vec![standing, fresh]);
    let alert = notify::compute(Some(&base2), &scan3);
    assert_eq!(alert.recovered, ["prod"]);
    assert!(alert.unreachable.is_empty());
    assert_eq!(names(&alert.new_drift), ["prod/api/Deployment/api"]);
    assert!(alert.resolved.is_empty());
}

#[test]
fn failed_apps_and_sources_resolve_nothing() {
    let web = finding("prod", "web", "Deployment", "web", Status::Modified);
    let api = finding("prod", "api", "Deployment", "api", Status::Modified);
    let previous = scan(1, PROD, vec![web.clone(), api]);

    // web failed to render on prod: its drift is unknown; api's absence is real.
    let mut current = scan(2, PROD, vec![]);
    current.errors.push(ScanError {
        cluster: Some("prod".into()),
        app: Some("web".into()),
        stage: Stage::Render,
        message: "kustomize failed".into(),
    });
    let alert = notify::compute(Some(&previous), &current);
    assert_eq!(names(&alert.resolved), ["prod/api/Deployment/api"]);
    let base = notify::baseline(Some(&previous), &current);
    assert!(
        base.findings.contains(&web),
        "unknown drift is carried forward"
    );

    // A source that could not be fetched hides every app it feeds.
    let mut current = scan(2, PROD, vec![]);
    current.errors.push(ScanError {
        cluster: None,
        app: None,
        stage: Stage::Source,
        message: "source platform: fetch failed".into(),
    });
    assert!(notify::compute(Some(&previous), &current).is_empty());

    // A failed notification does not make findings unknown.
    let mut current = scan(2, PROD, vec![]);
    current.errors.push(ScanError {
        cluster: None,
        app: None,
        stage: Stage::Notify,
        message: "webhook down".into(),
    });
    assert_eq!(notify::compute(Some(&previous), &current).resolved.len(), 2);
}

fn alert(id: i64) -> Alert {
    Alert {
        scan_id: id,
        finished_at: format!("2026-11-22T03:{id:02}:04Z"),
        ..Alert::default()
    }
}

#[test]
fn merge_unions_without_duplicates_and_cancels_what_was_undone() {
    let a = finding("prod", "web", "Deployment", "web", Status::Modified);
    let b = finding("prod", "api", "Deployment", "api", Status::Missing);
    let c = finding("staging", "web", "ConfigMap", "cfg", Status::Orphaned);
    let d = finding("staging", "api", "Service", "api", Status::Modified);

    let mut older = alert(4);
    older.new_drift = vec![a.clone(), b.clone()];
    older.resolved = vec![c.clone(), d.clone()];
    older.unreachable = vec![cluster("edge", "unreachable"), cluster("lab", "error")];
    older.recovered = vec!["dev".into()];

    let mut newer = alert(5);
    let mut b_again = b.clone();
    b_again.changes = vec![Change {
        path: "/spec".into(),
        desired: Some(json!({})),
        live: None,
    }];
    newer.new_drift = vec![b_again.clone(), c.clone()]; // b repeated, c came back
    newer.resolved = vec![a, d.clone()]; // a was new in older: cancels out
    newer.unreachable = vec![cluster("lab", "unreachable")];
    newer.recovered = vec!["edge".into()]; // edge was lost in older: cancels out

    let merged = notify::merge(older, newer);
    assert_eq!(merged.scan_id, 5);
    assert_eq!(merged.finished_at, "2026-11-22T03:05:04Z");
    assert_eq!(
        names(&merged.new_drift),
        ["prod/api/Deployment/api", "staging/web/ConfigMap/cfg"]
    );
    assert_eq!(merged.new_drift[0], b_again, "the newer version wins");
    assert_eq!(names(&merged.resolved), ["staging/api/Service/api"]);
    assert_eq!(merged.unreachable.len(), 1);
    assert_eq!(merged.unreachable[0].name, "lab");
    assert_eq!(merged.unreachable[0].status, "unreachable");
    assert_eq!(merged.recovered, ["dev"]);

    // Merging with nothing keeps the alert as it was.
    let mut only = alert(6);
    only.new_drift = vec![b];
    let same = notify::merge(only.clone(), alert(6));
    assert_eq!(same, only);
}

#[test]
fn alerts_survive_a_round_trip_through_json() {
    let mut a = alert(3);
    a.new_drift = vec![finding(
        "prod",
        "web",
        "Deployment",
        "web",
        Status::Modified,
    )];
    a.unreachable = vec![cluster("edge", "unreachable")];
    a.recovered = vec!["dev".into()];
    let text = serde_json::to_string(&a).expect("encode");
    let back: Alert = serde_json::from_str(&text).expect("decode");
    assert_eq!(back, a);
}

#[test]
fn channels_with_nothing_to_say_are_skipped() {
    let config = NotifyConfig {
        email: None,
        webhook: Some(WebhookConfig {
            // Nothing listens here; a delivery attempt would fail.
            url: "http://127.0.0.1:9/hook".into(),
            on: vec!["resolved".into()],
            secret_env: None,
        }),
    };
    let mut a = alert(2);
    a.new_drift = vec![finding(
        "prod",
        "web",
        "Deployment",
        "web",
        Status::Modified,
    )];
    assert!(notify::deliver(&config, &a, None).is_empty());
    assert!(notify::deliver(&NotifyConfig::default(), &a, None).is_empty());
    assert!(notify::deliver(&config, &alert(2), None).is_empty());
    let only = a.only(&["resolved".to_string()]);
    assert!(only.is_empty());
}

/// An alert with a bit of everything, including values that must be escaped or hidden.
fn rich_alert() -> Alert {
    let mut deploy = finding("prod-eu", "web", "Deployment", "web", Status::Modified);
    deploy.changes = vec![Change {
        path: "/spec/replicas".into(),
        desired: Some(json!(3)),
        live: Some(json!(5)),
    }];
    deploy.managers = vec!["kubectl-edit".into()];
    deploy.last_commit = Some(CommitRef {
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        author: "Ana <ana@example.com>".into(),
        time: "2026-11-20T10:00:00Z".into(),
        message: "Scale web to 3\n\nbody".into(),
    });
    let mut secret = finding("prod-eu", "web", "Secret", "db", Status::Modified);
    secret.changes = vec![
        Change {
            path: "/data/password".into(),
            desired: Some(json!("<redacted>")),
            live: Some(json!("<redacted>")),
        },
        // As if a value had slipped through unredacted: it must still not be shown.
        Change {
            path: "/data/token".into(),
            desired: Some(json!(SECRET_VALUE)),
            live: None,
        },
    ];
    secret.diff = Some(format!("-  token: {SECRET_VALUE}\n"));
    secret.patch = Some(json!([{"op": "add", "path": "/data/token", "value": SECRET_VALUE}]));
    let mut config_map = finding("prod-eu", "web", "ConfigMap", "web-html", Status::Modified);
    config_map.changes = vec![Change {
        path: "/data/index.html".into(),
        desired: Some(json!("<script>alert(\"x\")</script> & co")),
        live: Some(json!("plain")),
    }];
    let resolved = finding("prod-eu", "api", "Service", "api", Status::Orphaned);
    Alert {
        new_drift: vec![deploy, secret, config_map],
        resolved: vec![resolved],
        unreachable: vec![ClusterResult {
            name: "prod-us".into(),
            status: "unreachable".into(),
            error: Some("dial tcp 10.0.0.1:6443: <timeout>".into()),
        }],
        recovered: Vec::new(),
        scan_id: 12,
        finished_at: "2026-11-22T03:00:04Z".into(),
    }
}

fn email_config(smtp: String) -> EmailConfig {
    EmailConfig {
        smtp,
        starttls: false,
        tls: false,
        from: "plumbline@example.com".into(),
        to: vec!["sre@example.com".into(), "oncall@example.com".into()],
        username_env: Some(SMTP_USER_VAR.into()),
        password_env: Some(SMTP_PASS_VAR.into()),
    }
}

#[test]
fn email_is_delivered_over_smtp_with_text_and_html_parts() {
    environment();
    let server = SmtpServer::start();
    let config = NotifyConfig {
        email: Some(email_config(server.address())),
        webhook: None,
    };
    let deliveries = notify::deliver(&config, &rich_alert(), Some("reports/scan-12.html"));
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.channel, "email");
    assert!(delivery.ok, "{delivery:?}");
    assert_eq!(delivery.attempts, 1);

    let received = server.next().expect("a message reached the server");
    assert_eq!(received.mail_from, "plumbline@example.com");
    assert_eq!(received.rcpt_to, ["sre@example.com", "oncall@example.com"]);
    assert_eq!(
        received.auth,
        Some(("alerts".to_string(), "smtp-password".to_string()))
    );
    assert!(
        !received.data.contains(SECRET_VALUE),
        "the raw message leaks a Secret value"
    );

    let message = Part::parse(&received.data);
    assert_eq!(
        message.header("subject"),
        Some("[plumbline] scan 12: 3 new drift, 1 resolved, 1 cluster unreachable")
    );
    assert!(message
        .header("to")
        .is_some_and(|to| to.contains("sre@example.com") && to.contains("oncall@example.com")));
    assert!(message
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("multipart/alternative")));
    assert!(message.header("message-id").is_some());
    assert_eq!(message.header("auto-submitted"), Some("auto-generated"));

    let text = &message.find("text/plain").expect("a text/plain part").body;
    let html = &message.find("text/html").expect("a text/html part").body;
    for body in [text, html] {
        assert!(!body.contains(SECRET_VALUE), "a part leaks a Secret value");
        assert!(!body.contains("hunter2"));
    }

    assert!(text.contains("New drift (3):"), "{text}");
    assert!(text.contains("- modified | cluster prod-eu | app web | Deployment web/web"));
    assert!(text.contains("/spec/replicas: desired 3, live 5"));
    assert!(text.contains("changed by: kubectl-edit"));
    assert!(text.contains("last commit: 0123456789ab by Ana <ana@example.com>: Scale web to 3"));
    assert!(text.contains("Secret web/db"));
    assert!(text.contains("/data/password: desired <redacted>, live <redacted>"));
    assert!(text.contains("/data/token: desired <redacted>, live (absent)"));
    assert!(text.contains("- was orphaned | cluster prod-eu | app api | Service api/api"));
    assert!(text.contains("prod-us (unreachable): dial tcp 10.0.0.1:6443: <timeout>"));
    assert!(text.contains("Full report: reports/scan-12.html"));

    assert!(html.contains("&lt;redacted&gt;"), "{html}");
    assert!(!html.contains("<redacted>"));
    assert!(html.contains("&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt; &amp; co"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;timeout&gt;"));
    assert!(html.contains("Ana &lt;ana@example.com&gt;"));
    assert!(html.contains("reports/scan-12.html"));
}

#[test]
fn email_to_a_closed_port_fails_naming_the_address() {
    environment();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let address = format!("127.0.0.1:{port}");
    let config = NotifyConfig {
        email: Some(email_config(address.clone())),
        webhook: None,
    };
    let deliveries = notify::deliver(&config, &rich_alert(), None);
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert!(!delivery.ok);
    assert!(delivery.attempts >= 1);
    let error = delivery.error.as_deref().expect("an error");
    assert!(error.contains(&address), "{error}");
}

#[test]
fn email_without_its_credentials_is_not_attempted() {
    let mut config = email_config("127.0.0.1:25".into());
    config.username_env = Some("PLUMBLINE_TEST_NOTIFY_NOT_SET_USER".into());
    let delivery = notify::email::send(&config, &rich_alert(), None);
    assert!(!delivery.ok);
    assert_eq!(delivery.attempts, 0);
    let error = delivery.error.expect("an error");
    assert!(
        error.contains("PLUMBLINE_TEST_NOTIFY_NOT_SET_USER"),
        "{error}"
    );
    assert!(error.contains("username_env"), "{error}");
}

fn webhook_config(url: String, on: &[&str], secret_env: Option<&str>) -> NotifyConfig {
    NotifyConfig {
        email: None,
        webhook: Some(WebhookConfig {
            url,
            on: on.iter().map(|s| s.to_string()).collect(),
            secret_env: secret_env.map(str::to_string),
        }),
    }
}

#[test]
fn webhook_posts_signed_json_with_a_text_summary() {
    environment();
    let server = HttpCapture::start(&[200]);
    let mut alert = rich_alert();
    alert.recovered = vec!["staging".into()];
    let config = webhook_config(server.url("/hook"), WEBHOOK_EVENTS, Some(HOOK_SECRET_VAR));
    let deliveries = notify::deliver(&config, &alert, Some("reports/scan-12.html"));
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].channel, "webhook");
    assert!(deliveries[0].ok, "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].attempts, 1);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.request_line, "POST /hook HTTP/1.1");
    assert_eq!(request.header("content-type"), Some("application/json"));

    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).expect("key");
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        request.header("x-plumbline-signature"),
        Some(expected.as_str())
    );

    let raw = String::from_utf8(request.body.clone()).expect("UTF-8 body");
    assert!(
        !raw.contains(SECRET_VALUE),
        "the webhook leaks a Secret value"
    );
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    let text = body["text"].as_str().expect("a text field");
    assert!(
        text.starts_with("plumbline scan 12: 3 new drift, 1 resolved, 1 cluster unreachable, 1 cluster recovered."),
        "{text}"
    );
    assert!(text.contains("modified web on prod-eu (Deployment web/web)"));
    assert!(
        text.contains("&lt;timeout&gt;"),
        "Slack control characters escaped: {text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(body["scan_id"], 12);
    assert_eq!(body["finished_at"], "2026-11-22T03:00:04Z");
    assert_eq!(body["report"], "reports/scan-12.html");
    let new_drift = body["new_drift"].as_array().expect("new_drift");
    assert_eq!(new_drift.len(), 3);
    assert_eq!(new_drift[0]["kind"], "Deployment");
    assert_eq!(
        new_drift[0]["changes"][0],
        json!({"path": "/spec/replicas", "desired": 3, "live": 5})
    );
    assert_eq!(new_drift[1]["kind"], "Secret");
    assert_eq!(new_drift[1]["changes"][1]["desired"], "<redacted>");
    assert!(new_drift[1].get("patch").is_none() && new_drift[1].get("diff").is_none());
    assert_eq!(body["resolved"][0]["status"], "orphaned");
    assert_eq!(body["clusters_unreachable"][0]["name"], "prod-us");
    assert_eq!(body["clusters_recovered"], json!(["staging"]));
}

#[test]
fn webhook_gets_only_the_events_it_subscribed_to() {
    let server = HttpCapture::start(&[204]);
    let config = webhook_config(server.url("/only-resolved"), &["resolved"], None);
    let deliveries = notify::deliver(&config, &rich_alert(), None);
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].ok, "{:?}", deliveries[0]);
    let requests = server.requests();
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON body");
    assert_eq!(body["new_drift"], json!([]));
    assert_eq!(body["clusters_unreachable"], json!([]));
    assert_eq!(body["resolved"].as_array().map(Vec::len), Some(1));
    assert!(requests[0].header("x-plumbline-signature").is_none());
    assert!(body["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("plumbline scan 12: 1 resolved.")));
}

#[test]
fn webhook_retries_server_errors() {
    let server = HttpCapture::start(&[500, 500, 200]);
    let config = webhook_config(server.url("/flaky"), WEBHOOK_EVENTS, None);
    let deliveries = notify::deliver(&config, &rich_alert(), None);
    assert!(deliveries[0].ok, "{:?}", deliveries[0]);
    assert_eq!(deliveries[0].attempts, 3);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.body == requests[0].body));
}

#[test]
fn webhook_does_not_retry_a_client_error_nor_leak_the_url_token() {
    let server = HttpCapture::start(&[400]);
    let config = webhook_config(
        server.url("/services/T000/B000/tok3n-in-path"),
        WEBHOOK_EVENTS,
        None,
    );
    let deliveries = notify::deliver(&config, &rich_alert(), None);
    let delivery = &deliveries[0];
    assert!(!delivery.ok);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(server.requests().len(), 1);
    let error = delivery.error.as_deref().expect("an error");
    assert!(error.contains("400"), "{error}");
    assert!(error.contains(&server.addr.to_string()), "{error}");
    assert!(!error.contains("tok3n"), "{error}");
}

#[test]
fn webhook_without_its_secret_is_not_sent_unsigned() {
    let server = HttpCapture::start(&[200]);
    let config = webhook_config(
        server.url("/hook"),
        WEBHOOK_EVENTS,
        Some("PLUMBLINE_TEST_NOTIFY_NOT_SET_SECRET"),
    );
    let deliveries = notify::deliver(&config, &rich_alert(), None);
    assert!(!deliveries[0].ok);
    assert_eq!(deliveries[0].attempts, 0);
    assert!(deliveries[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("PLUMBLINE_TEST_NOTIFY_NOT_SET_SECRET")));
    assert!(server.requests().is_empty());
}

#[test]
fn a_secret_whose_digest_changed_is_new_drift_and_the_baseline_keeps_digests() {
    let secret = |digest: Option<&str>| Finding {
        secret_digest: digest.map(str::to_string),
        ..finding("prod", "web", "Secret", "db", Status::Modified)
    };
    let before = scan(1, PROD, vec![secret(Some("aa"))]);
    let same = notify::compute(Some(&before), &scan(2, PROD, vec![secret(Some("aa"))]));
    assert!(same.new_drift.is_empty(), "{same:?}");
    let changed = notify::compute(Some(&before), &scan(2, PROD, vec![secret(Some("bb"))]));
    assert_eq!(names(&changed.new_drift), ["prod/web/Secret/db"]);
    // A digest that is not known on one side says nothing.
    let unknown = notify::compute(Some(&before), &scan(2, PROD, vec![secret(None)]));
    assert!(unknown.new_drift.is_empty(), "{unknown:?}");

    // The baseline keeps the digest; a bare scan result (as older versions stored) loads.
    let text = notify::save_baseline(&before).expect("baseline");
    let loaded = notify::load_baseline(&text).expect("loads");
    assert_eq!(loaded.findings[0].secret_digest.as_deref(), Some("aa"));
    let bare = serde_json::to_string(&before).expect("JSON");
    assert!(!bare.contains("aa\""), "{bare}");
    let old = notify::load_baseline(&bare).expect("an older baseline loads");
    assert_eq!(old.findings[0].secret_digest, None);
}
