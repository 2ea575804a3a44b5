//! Webhook alerts: one JSON POST per alert, readable by a chat tool (a Slack-compatible
//! `text`) and by a program (the findings and clusters as fields), optionally signed so the
//! receiver can tell it came from plumbline.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;

use super::{
    env_secret, heal_line, object_name, safe_change, shorten, with_retries, Alert, AttemptError,
    Delivery, HealAlert, WEBHOOK,
};
use crate::config::WebhookConfig;
use crate::model::{Change, CommitRef, Finding, Origin, Status};

/// Whole request, connect to last byte of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when `secret_env` is set.
pub const SIGNATURE_HEADER: &str = "X-Plumbline-Signature";
/// Items named per list in `text`; the full lists are in the other fields.
const TEXT_ITEMS: usize = 5;
/// How much of an error response is kept in the delivery record.
const ERROR_BODY_CHARS: usize = 200;

/// Posts the alert and says how it went. Connection failures, 5xx and 429 are retried
/// (3 attempts, 250 ms then 500 ms apart); other answers are final.
pub fn send(config: &WebhookConfig, alert: &Alert, report_hint: Option<&str>) -> Delivery {
    post(config, &payload(alert, report_hint))
}

/// Posts the message of a heal run: a `text` line and the actions applied or failed.
pub fn send_heal(config: &WebhookConfig, alert: &HealAlert) -> Delivery {
    let text = format!(
        "plumbline heal after scan {}: {}. {}",
        alert.scan_id,
        alert.headline,
        list(
            alert
                .listed()
                .map(heal_line)
                .collect::<Vec<_>>()
                .into_iter()
        )
    );
    let actions: Vec<Value> = alert
        .listed()
        .map(|a| {
            json!({"app": a.app, "cluster": a.cluster, "group": a.group, "kind": a.kind,
                   "namespace": a.namespace, "name": a.name, "action": a.action,
                   "status": a.status, "reason": a.reason})
        })
        .collect();
    let body = json!({
        "text": slack_escape(&text),
        "event": "heal",
        "scan_id": alert.scan_id,
        "heal_actions": actions,
    });
    post(config, &body)
}

fn post(config: &WebhookConfig, payload: &Value) -> Delivery {
    let signature = match &config.secret_env {
        None => None,
        Some(var) => match env_secret("notify.webhook.secret_env", var) {
            Ok(secret) => Some(secret),
            // Never send unsigned what the receiver expects signed.
            Err(e) => return Delivery::failed(WEBHOOK, e, 0),
        },
    };
    let body = match serde_json::to_vec(payload) {
        Ok(body) => body,
        Err(e) => return Delivery::failed(WEBHOOK, format!("cannot encode the payload: {e}"), 0),
    };
    let signature = signature.map(|secret| sign(secret.as_bytes(), &body));
    // The URL may hold a token (Slack's does): errors name only scheme, host and port.
    let target = redact_url(&config.url);
    let agent: Agent = Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(concat!("plumbline/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into();

    let (result, attempts) = with_retries(|| {
        let mut request = agent
            .post(config.url.as_str())
            .header("Content-Type", "application/json");
        if let Some(signature) = &signature {
            request = request.header(SIGNATURE_HEADER, signature.as_str());
        }
        match request.send(&body[..]) {
            Ok(mut response) => {
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                let text = shorten(text.trim(), ERROR_BODY_CHARS);
                Err(AttemptError {
                    message: format!("webhook {target}: HTTP {status} {text}")
                        .trim_end()
                        .to_string(),
                    retry: status.is_server_error() || status.as_u16() == 429,
                })
            }
            Err(e) => Err(AttemptError {
                message: format!("webhook {target}: {e}"),
                retry: matches!(
                    e,
                    ureq::Error::Io(_)
                        | ureq::Error::Timeout(_)
                        | ureq::Error::HostNotFound
                        | ureq::Error::ConnectionFailed
                        | ureq::Error::Protocol(_)
                        | ureq::Error::ConnectProxyFailed(_)
                ),
            }),
        }
    });
    match result {
        Ok(()) => Delivery {
            channel: WEBHOOK.to_string(),
            ok: true,
            error: None,
            attempts,
        },
        Err(e) => Delivery::failed(WEBHOOK, e, attempts),
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` keyed with `secret`, as sent in [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // Only fixed-size-key MACs reject a key length; HMAC pads or hashes any key.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body: `text` plus the alert's parts as structured fields.
pub fn payload(alert: &Alert, report_hint: Option<&str>) -> Value {
    let mut body = json!({
        "text": text(alert, report_hint),
        "scan_id": alert.scan_id,
        "finished_at": alert.finished_at,
        "new_drift": alert.new_drift.iter().map(FindingView::of).collect::<Vec<_>>(),
        "resolved": alert.resolved.iter().map(FindingView::of).collect::<Vec<_>>(),
        "clusters_unreachable": alert.unreachable,
        "clusters_recovered": alert.recovered,
    });
    if let (Some(hint), Some(map)) = (report_hint, body.as_object_mut()) {
        map.insert("report".to_string(), Value::String(hint.to_string()));
    }
    body
}

/// A finding as a webhook carries it: no patch or diff, Secret values redacted.
#[derive(Serialize)]
struct FindingView<'a> {
    app: &'a str,
    cluster: &'a str,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    status: Status,
    changes: Vec<Change>,
    managers: &'a [String],
    last_commit: Option<&'a CommitRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a Origin>,
}

impl<'a> FindingView<'a> {
    fn of(f: &'a Finding) -> FindingView<'a> {
        FindingView {
            app: &f.app,
            cluster: &f.cluster,
            group: &f.group,
            version: &f.version,
            kind: &f.kind,
            namespace: f.namespace.as_deref(),
            name: &f.name,
            status: f.status,
            changes: f.changes.iter().map(|c| safe_change(f, c)).collect(),
            managers: &f.managers,
            last_commit: f.last_commit.as_ref(),
            reason: f.reason.as_deref(),
            origin: f.origin.as_ref(),
        }
    }
}

/// One paragraph for chat tools, with `&`, `<` and `>` escaped as Slack requires.
pub fn text(alert: &Alert, report_hint: Option<&str>) -> String {
    let mut parts = vec![format!(
        "plumbline scan {}: {}.",
        alert.scan_id,
        alert.headline()
    )];
    let finding = |f: &Finding| {
        format!(
            "{} {} on {} ({})",
            f.status,
            f.app,
            f.cluster,
            object_name(f)
        )
    };
    if !alert.new_drift.is_empty() {
        parts.push(format!(
            "New drift: {}.",
            list(alert.new_drift.iter().map(finding))
        ));
    }
    if !alert.resolved.is_empty() {
        parts.push(format!(
            "Resolved: {}.",
            list(alert.resolved.iter().map(finding))
        ));
    }
    if !alert.unreachable.is_empty() {
        parts.push(format!(
            "Unreachable: {}.",
            list(alert.unreachable.iter().map(|c| match &c.error {
                Some(e) => format!("{} ({})", c.name, shorten(e, 120)),
                None => c.name.clone(),
            }))
        ));
    }
    if !alert.recovered.is_empty() {
        parts.push(format!(
            "Recovered: {}.",
            list(alert.recovered.iter().cloned())
        ));
    }
    if let Some(hint) = report_hint {
        parts.push(format!("Report: {hint}"));
    }
    let paragraph: String = parts
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    slack_escape(&paragraph)
}

fn list(items: impl ExactSizeIterator<Item = String>) -> String {
    let total = items.len();
    let mut shown: Vec<String> = items.take(TEXT_ITEMS).collect();
    if total > TEXT_ITEMS {
        shown.push(format!("and {} more", total - TEXT_ITEMS));
    }
    shown.join("; ")
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `scheme://host[:port]` of a URL: enough to say where, without path, query or userinfo.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}
