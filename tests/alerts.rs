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

/// A drifted Secret value that someone changes again is new drift again, though its changes
/// read `<redacted>` both times: the scans compare keyed digests of the live values. The
/// digest key stays out of the database, and so do the values.
#[test]
fn a_drifted_secret_value_changed_again_is_new_drift() {
    let (ws, _) = shop_workspace();
    let hook = HttpCapture::start(&[200]);
    let config = format!(
        "{}notify:\n  webhook: {{url: \"{}\"}}\n",
        support::SHOP_CONFIG,
        hook.url("/hooks/drift")
    );
    ws.write("plumbline.yaml", &config);
    let path = ws.path("live/shop-secret.json");
    let set_password = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&path).expect("fixture");
        assert!(text.contains(from), "{text}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    };
    let secret_drift = |body: &Value| -> Vec<Value> {
        body["new_drift"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] == "Secret")
            .cloned()
            .collect()
    };

    // Scan 1: the password was changed live ("rotated-1"): new drift, redacted.
    set_password("czNjcjN0LWZyb20tdmF1bHQ=", "cm90YXRlZC0x");
    let (_, result) = ws.scan_json(&[]);
    let secret = support::finding(&result, "Secret", "shop-db").expect("secret finding");
    assert_eq!(secret["status"], "modified", "{secret:#}");
    assert!(secret.get("secret_digest").is_none(), "{secret:#}");
    let first: Value = serde_json::from_slice(&hook.requests()[0].body).expect("JSON");
    assert_eq!(secret_drift(&first).len(), 1, "{first:#}");

    // Scan 2: nothing changed: no alert.
    ws.scan_json(&[]);
    assert_eq!(hook.requests().len(), 1, "unchanged drift is not repeated");

    // Scan 3: changed again ("rotated-2"): the same redacted change, but new drift.
    set_password("cm90YXRlZC0x", "cm90YXRlZC0y");
    ws.scan_json(&[]);
    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "one alert for the value changed again");
    let third: Value = serde_json::from_slice(&requests[1].body).expect("JSON");
    let again = secret_drift(&third);
    assert_eq!(again.len(), 1, "{third:#}");
    assert_eq!(third["new_drift"].as_array().map(Vec::len), Some(1));
    assert!(!requests[1].body.windows(12).any(|w| w == b"cm90YXRlZC0y"));

    // The key is in the cache (mode 0600), never in the database; nor are the values.
    let key = std::fs::read(ws.path("cache/secret-digest.key")).expect("key file");
    assert_eq!(key.len(), 32);
    let mut database = Vec::new();
    for entry in std::fs::read_dir(ws.path("state")).expect("state dir") {
        let entry = entry.expect("entry");
        database.extend(std::fs::read(entry.path()).expect("database file"));
    }
    let contains = |needle: &[u8]| database.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&key), "the raw key is in the database");
    assert!(
        !contains(hex_of(&key).as_bytes()),
        "the hex key is in the database"
    );
    for value in ["cm90YXRlZC0x", "cm90YXRlZC0y", "rotated-1", "rotated-2"] {
        assert!(!contains(value.as_bytes()), "{value} is in the database");
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
