//! Alerts: what changed since the previous scan, sent by email and webhook.
//!
//! An alert holds transitions only (new drift, resolved drift, a cluster lost, a cluster
//! back), never the standing drift, so that a fleet that stays the same stays quiet. What a
//! scan could not see (an unreachable cluster, an app that failed to render, a source that
//! could not be fetched) says nothing about drift there: it is neither new nor resolved, and
//! [`baseline`] carries the last known drift of those parts forward so that it is not
//! announced again when they come back.
//!
//! Delivery never touches findings: the caller records every [`Delivery`], keeps the alert
//! of a failed channel and sends it again with the next scan's, combined by [`merge`].

pub mod email;
pub mod webhook;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::NotifyConfig;
use crate::model::{Change, ClusterResult, Finding, HealAction, ScanResult, Stage, Status};

/// Channel name of email delivery, as stored with each [`Delivery`].
pub const EMAIL: &str = "email";
/// Channel name of webhook delivery, as stored with each [`Delivery`].
pub const WEBHOOK: &str = "webhook";
/// Every channel, in the order [`deliver`] tries them.
pub const CHANNELS: &[&str] = &[EMAIL, WEBHOOK];

/// Events a channel can subscribe to (`notify.webhook.on`).
pub const EVENT_NEW_DRIFT: &str = "new_drift";
pub const EVENT_RESOLVED: &str = "resolved";
pub const EVENT_CLUSTER_UNREACHABLE: &str = "cluster_unreachable";
pub const EVENT_CLUSTER_RECOVERED: &str = "cluster_recovered";
pub const EVENT_HEAL: &str = "heal";

/// Attempts per delivery; a channel that still fails is retried with the next scan.
pub(crate) const ATTEMPTS: u32 = 3;
/// Wait before the second attempt; doubled before each further one.
pub(crate) const BACKOFF: Duration = Duration::from_millis(250);
/// Longest value shown for one side of a change: a whole ConfigMap in an email helps nobody.
const MAX_VALUE_CHARS: usize = 200;
/// Shown in place of every Secret value, as the diff stage does.
pub const REDACTED: &str = "<redacted>";

/// What changed between two scans; one alert per scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Drift that the previous scan did not have (as found now).
    pub new_drift: Vec<Finding>,
    /// Drift of the previous scan that is gone (as it was then).
    pub resolved: Vec<Finding>,
    /// Clusters that were reachable and are not now (with the current error).
    pub unreachable: Vec<ClusterResult>,
    /// Clusters that were not reachable and are now.
    pub recovered: Vec<String>,
    pub scan_id: i64,
    pub finished_at: String,
}

impl Alert {
    /// True when there is nothing to tell: no message is sent then.
    pub fn is_empty(&self) -> bool {
        self.new_drift.is_empty()
            && self.resolved.is_empty()
            && self.unreachable.is_empty()
            && self.recovered.is_empty()
    }

    /// The part of the alert a subscriber asked for (event names as in `notify.webhook.on`).
    pub fn only(&self, events: &[String]) -> Alert {
        let wants = |event: &str| events.iter().any(|e| e == event);
        Alert {
            new_drift: keep(wants(EVENT_NEW_DRIFT), &self.new_drift),
            resolved: keep(wants(EVENT_RESOLVED), &self.resolved),
            unreachable: keep(wants(EVENT_CLUSTER_UNREACHABLE), &self.unreachable),
            recovered: keep(wants(EVENT_CLUSTER_RECOVERED), &self.recovered),
            scan_id: self.scan_id,
            finished_at: self.finished_at.clone(),
        }
    }

    /// Counts in words, e.g. `3 new drift, 1 resolved, 1 cluster unreachable`.
    pub fn headline(&self) -> String {
        let mut parts = Vec::new();
        if !self.new_drift.is_empty() {
            parts.push(format!("{} new drift", self.new_drift.len()));
        }
        if !self.resolved.is_empty() {
            parts.push(format!("{} resolved", self.resolved.len()));
        }
        if !self.unreachable.is_empty() {
            parts.push(format!("{} unreachable", clusters(self.unreachable.len())));
        }
        if !self.recovered.is_empty() {
            parts.push(format!("{} recovered", clusters(self.recovered.len())));
        }
        if parts.is_empty() {
            "no changes".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn keep<T: Clone>(wanted: bool, items: &[T]) -> Vec<T> {
    if wanted {
        items.to_vec()
    } else {
        Vec::new()
    }
}

fn clusters(n: usize) -> String {
    if n == 1 {
        "1 cluster".to_string()
    } else {
        format!("{n} clusters")
    }
}

/// The outcome of one delivery on one channel, recorded by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// [`EMAIL`] or [`WEBHOOK`].
    pub channel: String,
    pub ok: bool,
    pub error: Option<String>,
    /// Attempts made; 0 when the delivery could not even be tried (e.g. a missing secret).
    pub attempts: u32,
}

impl Delivery {
    pub(crate) fn failed(channel: &str, error: String, attempts: u32) -> Delivery {
        Delivery {
            channel: channel.to_string(),
            ok: false,
            error: Some(error),
            attempts,
        }
    }
}

/// True for the statuses that are drift; `in_sync` and `ignored` are not.
pub fn is_drift(status: Status) -> bool {
    matches!(
        status,
        Status::Modified | Status::Missing | Status::Orphaned
    )
}

/// Identity of a drifted object: (cluster, app, group, kind, namespace, name).
type DriftKey = (String, String, String, String, Option<String>, String);

fn drift_key(f: &Finding) -> DriftKey {
    (
        f.cluster.clone(),
        f.app.clone(),
        f.group.clone(),
        f.kind.clone(),
        f.namespace.clone(),
        f.name.clone(),
    )
}

/// The parts of a scan whose missing findings mean "not looked at", not "no drift".
struct Blind<'a> {
    ok: HashSet<&'a str>,
    everything: bool,
    clusters: HashSet<&'a str>,
    apps: HashSet<(&'a str, &'a str)>,
}

impl<'a> Blind<'a> {
    fn of(scan: &'a ScanResult) -> Blind<'a> {
        let mut blind = Blind {
            ok: scan
                .clusters
                .iter()
                .filter(|c| c.status == "ok")
                .map(|c| c.name.as_str())
                .collect(),
            everything: false,
            clusters: HashSet::new(),
            apps: HashSet::new(),
        };
        for e in &scan.errors {
            // Policy, store and notify failures leave the findings complete.
            if !matches!(
                e.stage,
                Stage::Config | Stage::Source | Stage::Render | Stage::Live | Stage::Diff
            ) {
                continue;
            }
            match (e.cluster.as_deref(), e.app.as_deref()) {
                // A source or app set failed: which apps lost their findings is not known.
                (None, _) => blind.everything = true,
                (Some(cluster), Some(app)) if e.stage != Stage::Config => {
                    blind.apps.insert((cluster, app));
                }
                (Some(cluster), _) => {
                    blind.clusters.insert(cluster);
                }
            }
        }
        blind
    }

    fn cluster_ok(&self, cluster: &str) -> bool {
        self.ok.contains(cluster)
    }

    /// True when the scan cannot tell whether this finding's object still drifts.
    fn hides(&self, f: &Finding) -> bool {
        self.everything
            || !self.ok.contains(f.cluster.as_str())
            || self.clusters.contains(f.cluster.as_str())
            || self.apps.contains(&(f.cluster.as_str(), f.app.as_str()))
    }
}

/// The alert for `current`, compared with `previous`: ideally the [`baseline`] left by the
/// scan before, else that scan itself; `None` on the first scan, when all drift is new and
/// every cluster that is not `ok` is reported unreachable.
pub fn compute(previous: Option<&ScanResult>, current: &ScanResult) -> Alert {
    let blind = Blind::of(current);
    let before: HashMap<DriftKey, &Finding> = previous
        .map(|p| p.findings.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|f| is_drift(f.status))
        .map(|f| (drift_key(f), f))
        .collect();
    let now: HashMap<DriftKey, &Finding> =
        current.findings.iter().map(|f| (drift_key(f), f)).collect();

    let mut new_drift: Vec<Finding> = current
        .findings
        .iter()
        .filter(|f| is_drift(f.status) && blind.cluster_ok(&f.cluster))
        .filter(|f| match before.get(&drift_key(f)) {
            None => true,
            // A drifted Secret value that changed again reads the same once redacted: only
            // its digest tells.
            Some(was) => {
                was.secret_digest.is_some()
                    && f.secret_digest.is_some()
                    && was.secret_digest != f.secret_digest
            }
        })
        .cloned()
        .collect();
    let mut resolved: Vec<Finding> = before
        .iter()
        .filter(|(key, f)| {
            blind.cluster_ok(&f.cluster)
                && match now.get(*key) {
                    Some(n) => !is_drift(n.status),
                    None => !blind.hides(f),
                }
        })
        .map(|(_, f)| (*f).clone())
        .collect();
    sort_findings(&mut new_drift);
    sort_findings(&mut resolved);

    let was: HashMap<&str, bool> = previous
        .map(|p| p.clusters.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| (c.name.as_str(), c.status == "ok"))
        .collect();
    let unreachable = current
        .clusters
        .iter()
        // A cluster never seen before that fails is news as well.
        .filter(|c| c.status != "ok" && was.get(c.name.as_str()).copied().unwrap_or(true))
        .cloned()
        .collect();
    let recovered = current
        .clusters
        .iter()
        .filter(|c| c.status == "ok" && was.get(c.name.as_str()) == Some(&false))
        .map(|c| c.name.clone())
        .collect();

    Alert {
        new_drift,
        resolved,
        unreachable,
        recovered,
        scan_id: current.scan_id,
        finished_at: current.finished_at.clone(),
    }
}

/// What the next scan's alert should be compared with: `current`, plus the drift and
/// cluster state of `previous` (itself a baseline) for the parts `current` could not see.
///
/// Comparing with the bare previous scan would announce a cluster's standing drift again
/// when it comes back after an outage; comparing with this does not.
pub fn baseline(previous: Option<&ScanResult>, current: &ScanResult) -> ScanResult {
    let mut base = current.clone();
    let Some(previous) = previous else {
        return base;
    };
    let scanned: HashSet<&str> = current.clusters.iter().map(|c| c.name.as_str()).collect();
    base.clusters.extend(
        previous
            .clusters
            .iter()
            .filter(|c| !scanned.contains(c.name.as_str()))
            .cloned(),
    );
    let seen: HashSet<DriftKey> = current.findings.iter().map(drift_key).collect();
    let blind = Blind::of(current);
    base.findings.extend(
        previous
            .findings
            .iter()
            .filter(|f| is_drift(f.status) && !seen.contains(&drift_key(f)) && blind.hides(f))
            .cloned(),
    );
    base
}

/// The baseline as kept between scans: the scan result, plus the Secret digests that a scan
/// result never serialises (they stay out of every report), by position in `findings`.
#[derive(Deserialize)]
struct StoredBaseline {
    #[serde(flatten)]
    scan: ScanResult,
    #[serde(default)]
    secret_digests: Vec<(usize, String)>,
}

/// [`StoredBaseline`] as written, borrowing the scan.
#[derive(Serialize)]
struct BaselineRef<'a> {
    #[serde(flatten)]
    scan: &'a ScanResult,
    secret_digests: Vec<(usize, &'a str)>,
}

/// The baseline as text for `alert_state`, digests included.
pub fn save_baseline(base: &ScanResult) -> Option<String> {
    let secret_digests = base
        .findings
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, f.secret_digest.as_deref()?)))
        .collect();
    serde_json::to_string(&BaselineRef {
        scan: base,
        secret_digests,
    })
    .ok()
}

/// A baseline saved by [`save_baseline`] (or a bare scan result, as older versions saved).
pub fn load_baseline(text: &str) -> Option<ScanResult> {
    let StoredBaseline {
        mut scan,
        secret_digests,
    } = serde_json::from_str(text).ok()?;
    for (i, digest) in secret_digests {
        if let Some(f) = scan.findings.get_mut(i) {
            f.secret_digest = Some(digest);
        }
    }
    Some(scan)
}

/// One alert saying what `older` (not delivered) and `newer` say together, as seen by a
/// receiver that got neither: drift new in `older` and resolved in `newer` cancels out, as
/// does a cluster lost in one and back in the other; the rest is kept once, the newer
/// version where both have it.
pub fn merge(older: Alert, newer: Alert) -> Alert {
    let newer_new: HashSet<DriftKey> = newer.new_drift.iter().map(drift_key).collect();
    let newer_resolved: HashSet<DriftKey> = newer.resolved.iter().map(drift_key).collect();
    let older_new: HashSet<DriftKey> = older.new_drift.iter().map(drift_key).collect();

    let mut new_drift = newer.new_drift;
    new_drift.extend(older.new_drift.into_iter().filter(|f| {
        let key = drift_key(f);
        !newer_new.contains(&key) && !newer_resolved.contains(&key)
    }));
    let mut resolved: Vec<Finding> = newer
        .resolved
        .into_iter()
        .filter(|f| !older_new.contains(&drift_key(f)))
        .collect();
    resolved.extend(older.resolved.into_iter().filter(|f| {
        let key = drift_key(f);
        // Drift that came back is reported as new, with what drifts now.
        !newer_resolved.contains(&key) && !newer_new.contains(&key)
    }));
    sort_findings(&mut new_drift);
    sort_findings(&mut resolved);

    let newer_down: HashSet<String> = newer.unreachable.iter().map(|c| c.name.clone()).collect();
    let newer_up: HashSet<String> = newer.recovered.iter().cloned().collect();
    let older_down: HashSet<String> = older.unreachable.iter().map(|c| c.name.clone()).collect();

    let mut unreachable = newer.unreachable;
    unreachable.extend(
        older
            .unreachable
            .into_iter()
            .filter(|c| !newer_down.contains(&c.name) && !newer_up.contains(&c.name)),
    );
    unreachable.sort_by(|a, b| a.name.cmp(&b.name));
    let mut recovered: Vec<String> = newer
        .recovered
        .into_iter()
        .filter(|name| !older_down.contains(name))
        .collect();
    recovered.extend(
        older
            .recovered
            .into_iter()
            .filter(|name| !newer_up.contains(name) && !newer_down.contains(name)),
    );
    recovered.sort();

    Alert {
        new_drift,
        resolved,
        unreachable,
        recovered,
        scan_id: newer.scan_id,
        finished_at: newer.finished_at,
    }
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(drift_key);
}

/// Sends `alert` to every configured channel that has something to say about it.
///
/// `report_hint` (e.g. the HTML report's path) is mentioned in each message. One
/// [`Delivery`] per channel tried; channels not configured or with nothing to say are absent.
pub fn deliver(config: &NotifyConfig, alert: &Alert, report_hint: Option<&str>) -> Vec<Delivery> {
    CHANNELS
        .iter()
        .filter_map(|channel| deliver_channel(config, channel, alert, report_hint))
        .collect()
}

/// Sends `alert` to one channel ([`EMAIL`] or [`WEBHOOK`]), so that a caller retrying a
/// failed channel does not repeat the message on the one that worked.
/// `None` when that channel is not configured or has nothing to say.
pub fn deliver_channel(
    config: &NotifyConfig,
    channel: &str,
    alert: &Alert,
    report_hint: Option<&str>,
) -> Option<Delivery> {
    match channel {
        EMAIL => {
            let email = config.email.as_ref()?;
            if alert.is_empty() {
                return None;
            }
            Some(email::send(email, alert, report_hint))
        }
        WEBHOOK => {
            let hook = config.webhook.as_ref()?;
            let alert = alert.only(&hook.on);
            if alert.is_empty() {
                return None;
            }
            Some(webhook::send(hook, &alert, report_hint))
        }
        _ => None,
    }
}

/// What a heal run that wrote or failed to write tells the channels.
pub struct HealAlert<'a> {
    pub scan_id: i64,
    /// Counts in words, e.g. `2 applied, 1 failed`.
    pub headline: String,
    pub actions: &'a [HealAction],
}

impl HealAlert<'_> {
    /// The actions worth a message: what was applied and what failed.
    pub fn listed(&self) -> impl Iterator<Item = &HealAction> {
        self.actions
            .iter()
            .filter(|a| a.status == "applied" || a.status == "failed")
    }
}

/// Sends a heal run's message to one channel; `None` when that channel is not configured
/// (or, for the webhook, not subscribed to `heal`).
pub fn deliver_heal(config: &NotifyConfig, channel: &str, alert: &HealAlert) -> Option<Delivery> {
    match channel {
        EMAIL => Some(email::send_heal(config.email.as_ref()?, alert)),
        WEBHOOK => {
            let hook = config.webhook.as_ref()?;
            hook.on
                .iter()
                .any(|e| e == EVENT_HEAL)
                .then(|| webhook::send_heal(hook, alert))
        }
        _ => None,
    }
}

/// One action in one line: `applied apply Deployment shop/web on prod (app web)`, with
/// the reason of a failure. No patch: values stay in the report and the database.
pub(crate) fn heal_line(a: &HealAction) -> String {
    let object = match &a.namespace {
        Some(ns) => format!("{} {ns}/{}", a.kind, a.name),
        None => format!("{} {}", a.kind, a.name),
    };
    let mut line = format!(
        "{} {} {object} on {} (app {})",
        a.status, a.action, a.cluster, a.app
    );
    if let Some(reason) = &a.reason {
        line.push_str(": ");
        line.push_str(&shorten(reason, MAX_VALUE_CHARS));
    }
    line
}

/// Why one attempt failed, and whether another attempt could go better.
pub(crate) struct AttemptError {
    pub message: String,
    pub retry: bool,
}

/// Runs `attempt` up to [`ATTEMPTS`] times with exponential backoff while it fails with a
/// retryable error; returns the last error and the number of attempts made.
pub(crate) fn with_retries(
    mut attempt: impl FnMut() -> Result<(), AttemptError>,
) -> (Result<(), String>, u32) {
    let mut wait = BACKOFF;
    let mut made = 0;
    loop {
        made += 1;
        match attempt() {
            Ok(()) => return (Ok(()), made),
            Err(e) if e.retry && made < ATTEMPTS => {
                tracing::debug!(attempt = made, error = %e.message, "notification failed, retrying");
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(e) => return (Err(e.message), made),
        }
    }
}

/// Reads the environment variable named by a `*_env` key; the error names the key and the
/// variable so that a user knows what to export.
pub(crate) fn env_secret(key: &str, var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "environment variable {var} (named by {key}) is not set"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable {var} (named by {key}) is not valid UTF-8"
        )),
    }
}

/// True for core Secrets, whose values must never leave plumbline.
pub(crate) fn is_secret(f: &Finding) -> bool {
    f.group.is_empty() && f.kind == "Secret"
}

/// One side of a change as shown in a message: compact JSON, shortened, `(absent)` when
/// that side has nothing, and [`REDACTED`] for anything of a Secret but its labels and type
/// (the diff stage already redacts values; this holds even if a value slipped through).
pub(crate) fn show_value(f: &Finding, change: &Change, side: Option<&Value>) -> String {
    let Some(value) = side else {
        return "(absent)".to_string();
    };
    if is_secret(f) && !secret_path_is_public(&change.path) {
        return REDACTED.to_string();
    }
    let text = match value {
        Value::String(s) if s == REDACTED => s.clone(),
        other => other.to_string(),
    };
    shorten(&text, MAX_VALUE_CHARS)
}

fn secret_path_is_public(path: &str) -> bool {
    ["/metadata/labels", "/type", "/immutable"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// A change as the webhook carries it, with the same redaction as [`show_value`].
pub(crate) fn safe_change(f: &Finding, change: &Change) -> Change {
    let guard = |side: &Option<Value>| {
        side.as_ref().map(|v| {
            if is_secret(f) && !secret_path_is_public(&change.path) {
                Value::String(REDACTED.to_string())
            } else {
                v.clone()
            }
        })
    };
    Change {
        path: change.path.clone(),
        desired: guard(&change.desired),
        live: guard(&change.live),
    }
}

/// `text` cut to at most `max` characters, on a character boundary, marked with `...`.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}...", &text[..end]),
    }
}

/// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
pub(crate) fn object_name(f: &Finding) -> String {
    match &f.namespace {
        Some(ns) => format!("{} {ns}/{}", f.kind, f.name),
        None => format!("{} {}", f.kind, f.name),
    }
}
