//! Email alerts over SMTP (lettre, blocking): one multipart/alternative message per alert,
//! plain text for terminals and filters, HTML for mail clients.
//!
//! Everything in the message that came from Git or a cluster is escaped in the HTML part
//! and kept on one line in the text part, so that an object name or a commit message cannot
//! forge content. Secret values appear only as `<redacted>`.

use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

use super::{
    env_secret, heal_line, object_name, show_value, with_retries, Alert, AttemptError, Delivery,
    HealAlert, EMAIL,
};
use crate::config::EmailConfig;
use crate::model::{ClusterResult, Finding};

/// Per SMTP command; a stuck mail server must not stall the scan for longer.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Findings listed per section; the rest is counted and left to the report.
const MAX_LISTED: usize = 100;
/// Changes listed per finding.
const MAX_CHANGES: usize = 20;

/// Sends the alert to `config.to` and says how it went; never panics on a bad server,
/// address or environment. Temporary refusals and dropped connections are retried (3 attempts,
/// 250 ms then 500 ms apart); a timeout is not, as three of them would hold the scan 90 s.
pub fn send(config: &EmailConfig, alert: &Alert, report_hint: Option<&str>) -> Delivery {
    let message = message(
        config,
        &subject(alert),
        text_body(alert, report_hint),
        html_body(alert, report_hint),
    );
    deliver(config, message)
}

/// Sends the message of a heal run that applied or failed something.
pub fn send_heal(config: &EmailConfig, alert: &HealAlert) -> Delivery {
    let message = message(
        config,
        &format!(
            "[plumbline] heal after scan {}: {}",
            alert.scan_id, alert.headline
        ),
        heal_text(alert),
        heal_html(alert),
    );
    deliver(config, message)
}

fn deliver(config: &EmailConfig, message: Result<Message, String>) -> Delivery {
    let prepared = message.and_then(|message| Ok((message, transport(config)?)));
    let (message, transport) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return Delivery::failed(EMAIL, e, 0),
    };
    let (result, attempts) = with_retries(|| {
        transport.send(&message).map(|_| ()).map_err(|e| {
            // Temporary refusals (4xx) and dropped connections may pass on a later attempt;
            // a permanent refusal, a TLS failure or a timeout will not.
            let retry = e.is_transient()
                || !(e.is_permanent()
                    || e.is_client()
                    || e.is_response()
                    || e.is_tls()
                    || e.is_timeout());
            AttemptError {
                message: format!("SMTP {}: {e}", config.smtp),
                retry,
            }
        })
    });
    match result {
        Ok(()) => Delivery {
            channel: EMAIL.to_string(),
            ok: true,
            error: None,
            attempts,
        },
        Err(e) => Delivery::failed(EMAIL, e, attempts),
    }
}

/// The subject line, e.g. `[plumbline] scan 12: 3 new drift, 1 resolved, 1 cluster unreachable`.
pub fn subject(alert: &Alert) -> String {
    format!("[plumbline] scan {}: {}", alert.scan_id, alert.headline())
}

fn message(
    config: &EmailConfig,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| format!("notify.email.from \"{}\": {e}", config.from))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .message_id(None)
        // RFC 3834: vacation responders and ticket systems must not answer an alert.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ));
    for to in &config.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| format!("notify.email.to \"{to}\": {e}"))?;
        builder = builder.to(mailbox);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// The SMTP client for `config`: implicit TLS, required STARTTLS, or (loopback testing
/// only) plain text; credentials come from the environment, never from the file.
fn transport(config: &EmailConfig) -> Result<SmtpTransport, String> {
    let (host, port) = split_host_port(&config.smtp)?;
    let builder = if config.tls {
        SmtpTransport::relay(host).map_err(|e| format!("SMTP {}: {e}", config.smtp))?
    } else if config.starttls {
        SmtpTransport::starttls_relay(host).map_err(|e| format!("SMTP {}: {e}", config.smtp))?
    } else {
        tracing::warn!(
            smtp = %config.smtp,
            "notify.email uses neither starttls nor tls: mail and credentials travel unencrypted"
        );
        SmtpTransport::builder_dangerous(host)
    };
    let mut builder = builder.port(port).timeout(Some(TIMEOUT));
    if let (Some(user_var), Some(pass_var)) = (&config.username_env, &config.password_env) {
        let user = env_secret("notify.email.username_env", user_var)?;
        let pass = env_secret("notify.email.password_env", pass_var)?;
        builder = builder.credentials(Credentials::new(user, pass));
    }
    Ok(builder.build())
}

/// `host:port` -> (host, port); IPv6 literals may be bracketed (`[::1]:25`).
fn split_host_port(smtp: &str) -> Result<(&str, u16), String> {
    let bad = || format!("notify.email.smtp \"{smtp}\": expected host:port");
    let (host, port) = smtp.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// The plain-text part.
pub fn text_body(alert: &Alert, report_hint: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plumbline scan {} finished at {}: {}",
        alert.scan_id,
        one_line(&alert.finished_at),
        alert.headline()
    );
    text_findings(&mut out, "New drift", "", &alert.new_drift);
    text_findings(&mut out, "Resolved", "was ", &alert.resolved);
    if !alert.unreachable.is_empty() {
        let _ = writeln!(out, "\nClusters unreachable ({}):", alert.unreachable.len());
        for c in &alert.unreachable {
            let _ = writeln!(out, "- {}", cluster_line(c));
        }
    }
    if !alert.recovered.is_empty() {
        let _ = writeln!(out, "\nClusters recovered ({}):", alert.recovered.len());
        for name in &alert.recovered {
            let _ = writeln!(out, "- {}", one_line(name));
        }
    }
    if let Some(hint) = report_hint {
        let _ = writeln!(out, "\nFull report: {}", one_line(hint));
    }
    out
}

fn text_findings(out: &mut String, title: &str, prefix: &str, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title} ({}):", findings.len());
    for f in findings.iter().take(MAX_LISTED) {
        let _ = writeln!(
            out,
            "- {prefix}{} | cluster {} | app {} | {}",
            f.status,
            one_line(&f.cluster),
            one_line(&f.app),
            one_line(&object_name(f))
        );
        if let Some(reason) = &f.reason {
            let _ = writeln!(out, "    {}", one_line(reason));
        }
        for c in f.changes.iter().take(MAX_CHANGES) {
            let _ = writeln!(
                out,
                "    {}: desired {}, live {}",
                one_line(&c.path),
                one_line(&show_value(f, c, c.desired.as_ref())),
                one_line(&show_value(f, c, c.live.as_ref()))
            );
        }
        if f.changes.len() > MAX_CHANGES {
            let _ = writeln!(
                out,
                "    ... and {} more changes",
                f.changes.len() - MAX_CHANGES
            );
        }
        if !f.managers.is_empty() {
            let _ = writeln!(out, "    changed by: {}", one_line(&f.managers.join(", ")));
        }
        if f.last_commit.is_some() {
            let _ = writeln!(out, "    last commit: {}", one_line(&commit_line(f)));
        }
    }
    if findings.len() > MAX_LISTED {
        let _ = writeln!(out, "- ... and {} more", findings.len() - MAX_LISTED);
    }
}

/// The plain-text part of a heal message: each action applied or failed, on one line.
pub fn heal_text(alert: &HealAlert) -> String {
    let mut out = format!(
        "plumbline heal after scan {}: {}\n\n",
        alert.scan_id, alert.headline
    );
    for a in alert.listed().take(MAX_LISTED) {
        let _ = writeln!(out, "- {}", one_line(&heal_line(a)));
    }
    out
}

fn heal_html(alert: &HealAlert) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: sans-serif; font-size: 14px;\">\n",
    );
    let _ = writeln!(
        out,
        "<h2>plumbline heal after scan {}</h2>\n<p><b>{}</b></p>\n<ul>",
        alert.scan_id,
        escape(&alert.headline)
    );
    for a in alert.listed().take(MAX_LISTED) {
        let _ = writeln!(out, "<li>{}</li>", escape(&heal_line(a)));
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}

/// The HTML part; every value from Git or a cluster is escaped.
pub fn html_body(alert: &Alert, report_hint: Option<&str>) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: sans-serif; font-size: 14px;\">\n",
    );
    let _ = writeln!(
        out,
        "<h2>plumbline scan {}</h2>\n<p>Finished at {}: <b>{}</b></p>",
        alert.scan_id,
        escape(&alert.finished_at),
        escape(&alert.headline())
    );
    html_findings(&mut out, "New drift", "", &alert.new_drift);
    html_findings(&mut out, "Resolved", "was ", &alert.resolved);
    if !alert.unreachable.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Clusters unreachable ({})</h3>\n<ul>",
            alert.unreachable.len()
        );
        for c in &alert.unreachable {
            let _ = writeln!(out, "<li>{}</li>", escape(&cluster_line(c)));
        }
        out.push_str("</ul>\n");
    }
    if !alert.recovered.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Clusters recovered ({})</h3>\n<ul>",
            alert.recovered.len()
        );
        for name in &alert.recovered {
            let _ = writeln!(out, "<li>{}</li>", escape(name));
        }
        out.push_str("</ul>\n");
    }
    if let Some(hint) = report_hint {
        let _ = writeln!(out, "<p>Full report: <code>{}</code></p>", escape(hint));
    }
    out.push_str("</body></html>\n");
    out
}

fn html_findings(out: &mut String, title: &str, prefix: &str, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h3>{title} ({})</h3>\n<ul>", findings.len());
    for f in findings.iter().take(MAX_LISTED) {
        let _ = write!(
            out,
            "<li><b>{prefix}{}</b> cluster <code>{}</code> app <code>{}</code>: <code>{}</code>",
            f.status,
            escape(&f.cluster),
            escape(&f.app),
            escape(&object_name(f))
        );
        if let Some(reason) = &f.reason {
            let _ = write!(out, "<br>{}", escape(reason));
        }
        if !f.changes.is_empty() {
            out.push_str(
                "\n<table style=\"border-collapse: collapse;\" cellpadding=\"3\">\
                 <tr><th align=\"left\">path</th><th align=\"left\">desired</th>\
                 <th align=\"left\">live</th></tr>\n",
            );
            for c in f.changes.iter().take(MAX_CHANGES) {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    escape(&c.path),
                    escape(&show_value(f, c, c.desired.as_ref())),
                    escape(&show_value(f, c, c.live.as_ref()))
                );
            }
            out.push_str("</table>");
            if f.changes.len() > MAX_CHANGES {
                let _ = write!(
                    out,
                    "... and {} more changes",
                    f.changes.len() - MAX_CHANGES
                );
            }
        }
        if !f.managers.is_empty() {
            let _ = write!(out, "<br>changed by: {}", escape(&f.managers.join(", ")));
        }
        if f.last_commit.is_some() {
            let _ = write!(out, "<br>last commit: {}", escape(&commit_line(f)));
        }
        out.push_str("</li>\n");
    }
    if findings.len() > MAX_LISTED {
        let _ = writeln!(out, "<li>... and {} more</li>", findings.len() - MAX_LISTED);
    }
    out.push_str("</ul>\n");
}

fn cluster_line(c: &ClusterResult) -> String {
    match &c.error {
        Some(error) => format!("{} ({}): {}", one_line(&c.name), c.status, one_line(error)),
        None => format!("{} ({})", one_line(&c.name), c.status),
    }
}

/// `abc1234 by Author <mail>: first line of the message`.
fn commit_line(f: &Finding) -> String {
    let Some(commit) = &f.last_commit else {
        return String::new();
    };
    let short: String = commit.sha.chars().take(12).collect();
    let subject = commit.message.lines().next().unwrap_or("");
    format!("{short} by {}: {subject}", commit.author)
}

/// Text kept on one line: control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
