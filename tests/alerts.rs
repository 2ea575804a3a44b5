//! Alerts through the real binary: a real SMTP conversation and a webhook on loopback, one
//! message per change (new drift, then resolved), never repeats of unchanged drift, and a
//! failed delivery kept and sent with the next scan.

#[path = "support/http_capture.rs"]
mod http_capture;
#[path = "support/smtp.rs"]
mod smtp;
mod support;

use http_capture::HttpCapture;
use serde_json::Value;
use smtp::SmtpServer;
use support::shop_workspace;

#[test]
fn new_drift_once_failed_webhook_retried_and_resolution_once() {
    let (ws, _) = shop_workspace();
    let mail = SmtpServer::start();
    // The webhook fails the first scan's three attempts, then accepts everything.
    let hook = HttpCapture::start(&[500, 500, 500, 200]);
    let config = format!(
        "{}notify:\n  email: {{smtp: \"{}\", starttls: false, from: plumbline@example.com, to: [sre@example.com, audit@example.com]}}\n  webhook: {{url: \"{}\"}}\n",
        support::SHOP_CONFIG,
        mail.address(),
        hook.url("/hooks/drift")
    );
    ws.write("plumbline.yaml", &config);

    // Scan 1: everything is new.
    let (code, _) = ws.scan_json(&[]);
    assert_eq!(code, 0, "a failed alert does not fail the scan");
    let first = mail.next().expect("an email for the new drift");
    assert_eq!(first.rcpt_to, vec!["sre@example.com", "audit@example.com"]);
    let subject = first
        .data
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("subject")
        .to_string();
    assert!(subject.contains("5 new drift"), "{subject}");
    assert!(first.data.contains("text/plain") && first.data.contains("text/html"));
    assert!(!first.data.contains("s3cr3t-from-vault"));
    assert_eq!(hook.requests().len(), 3, "three attempts, all refused");
    assert!(mail.try_next().is_none(), "one email per scan");

    // Scan 2: nothing changed: no email; the webhook gets the alert it missed.
    ws.scan_json(&[]);
    assert!(mail.try_next().is_none(), "unchanged drift is not repeated");
    let requests = hook.requests();
    assert_eq!(requests.len(), 4);
    let retried: Value = serde_json::from_slice(&requests[3].body).expect("webhook JSON");
    assert_eq!(
        retried["new_drift"].as_array().map(Vec::len),
        Some(5),
        "{retried:#}"
    );
    assert!(retried["text"].as_str().is_some_and(|t| !t.is_empty()));

    // Scan 3: someone put LOG_LEVEL back: one message on each channel, about the resolution.
    let path = ws.path("live/shop-configmaps.json");
    let text = std::fs::read_to_string(&path).expect("fixture");
    std::fs::write(
        &path,
        text.replacen("\"LOG_LEVEL\": \"debug\"", "\"LOG_LEVEL\": \"info\"", 1),
    )
    .expect("write");
    ws.scan_json(&[]);
    let resolved = mail.next().expect("an email for the resolution");
    assert!(resolved.data.contains("1 resolved"), "{}", resolved.data);
    assert!(resolved.data.contains("shop-config"));
    assert!(mail.try_next().is_none());
    let requests = hook.requests();
    assert_eq!(requests.len(), 5);
    let body: Value = serde_json::from_slice(&requests[4].body).expect("webhook JSON");
    assert_eq!(
        body["resolved"].as_array().map(Vec::len),
        Some(1),
        "{body:#}"
    );
    assert_eq!(body["new_drift"].as_array().map(Vec::len), Some(0));

    // Every attempt is in the database.
    let conn = rusqlite::Connection::open(ws.path("state/plumbline.db")).expect("db");
    let mut stmt = conn
        .prepare("SELECT scan_id, channel, ok, attempts FROM notifications ORDER BY id")
        .expect("query");
    let rows: Vec<(i64, String, bool, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            (1, "email".to_string(), true, 1),
            (1, "webhook".to_string(), false, 3),
            (2, "webhook".to_string(), true, 1),
            (3, "email".to_string(), true, 1),
            (3, "webhook".to_string(), true, 1),
        ]
    );
}
