//! Self-heal: server-side apply of Git's objects over the drift a scan found, for apps
//! that opt in with `self_heal: true`.
//!
//! It acts only on a comparison made moments before (the scan it is given), and guards
//! every write: kinds on `heal.deny_kinds` and objects past the per-app and per-run limits
//! are skipped; orphans are deleted only with `prune: true`; offline snapshots cannot be
//! written. Every write is first made as a server dry run (`dryRun=All`), whose result is
//! compared with Git by the scan's own diff: if it still differs from Git, or would change
//! a field the finding did not name, nothing is written and the reason is recorded.

use crate::config::{ClusterAccess, Config};
use crate::diff::{self, compare, normalize, redact};
use crate::kinds;
use crate::live::kube::{ApiCluster, RequestError, ServedResource};
use crate::live::{ClusterError, Connection};
use crate::model::{Finding, HealAction, Resource, ScanResult, Status};
use crate::notify;
use crate::scan::{self, Outcome, PlannedApp};
use crate::store::{NotificationRecord, Store};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub const APPLY: &str = "apply";
pub const CREATE: &str = "create";
pub const DELETE: &str = "delete";
pub const PLANNED: &str = "planned";
pub const APPLIED: &str = "applied";
pub const FAILED: &str = "failed";
pub const SKIPPED: &str = "skipped";

/// One heal run: the scan it acted on and every action, in the order taken.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HealRun {
    pub scan_id: i64,
    pub dry_run: bool,
    pub actions: Vec<HealAction>,
    pub summary: HealSummary,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HealSummary {
    pub planned: usize,
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl HealRun {
    /// True when an action failed: the exit code is 3 then.
    pub fn failed(&self) -> bool {
        self.summary.failed > 0
    }

    /// Counts in words, e.g. `2 applied, 1 failed, 3 skipped`.
    pub fn headline(&self) -> String {
        let s = &self.summary;
        let mut parts = Vec::new();
        for (n, word) in [
            (s.planned, PLANNED),
            (s.applied, APPLIED),
            (s.failed, FAILED),
            (s.skipped, SKIPPED),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        if parts.is_empty() {
            "nothing to heal".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Heals what a scan found, for the apps of the scan with `self_heal: true`, then records
/// the actions against the scan (when it was recorded) and, for a real run that applied or
/// failed something, sends one message on each notify channel.
///
/// This is the call to make after a scheduled scan: `outcome` is what [`scan::run`]
/// returned, and only its own comparison is acted on.
pub fn run(config: &Config, outcome: &Outcome, dry_run: bool) -> HealRun {
    let mut planned = plan(config, outcome, dry_run);
    execute(config, &mut planned);
    let actions: Vec<HealAction> = planned.into_iter().map(|p| p.action).collect();
    let summary = summarize(&actions);
    let heal_run = HealRun {
        scan_id: outcome.result.scan_id,
        dry_run,
        actions,
        summary,
    };
    if outcome.database.is_some() && !heal_run.actions.is_empty() {
        record(config, &heal_run);
    }
    heal_run
}

/// An action with the inputs needed to take it.
struct Planned {
    action: HealAction,
    /// The Git object (for `apply` and `create`).
    desired: Option<Resource>,
    /// The paths the finding names (changes and patch operations, live positions).
    named: Vec<String>,
    app: PlannedApp,
}

/// Turns the scan's drift into actions, applying the rails that need no cluster: snapshot
/// clusters, denied kinds, prune, limits.
fn plan(config: &Config, outcome: &Outcome, dry_run: bool) -> Vec<Planned> {
    let rails = &config.heal;
    let at = scan::now();
    let mut planned = Vec::new();
    let mut per_run = 0usize;
    let mut inputs: Vec<&(PlannedApp, Vec<Resource>)> = outcome.heal_inputs.iter().collect();
    inputs.sort_by(|a, b| (&a.0.cluster, &a.0.name).cmp(&(&b.0.cluster, &b.0.name)));
    for (app, desired) in inputs {
        let snapshot = matches!(
            config.cluster(&app.cluster).map(|c| &c.access),
            Some(ClusterAccess::Snapshot(_))
        );
        if snapshot {
            tracing::warn!(
                "app {} is on cluster {}, an offline snapshot: it cannot be healed",
                app.name,
                app.cluster
            );
        }
        let by_key: HashMap<_, &Resource> = desired.iter().map(|r| (&r.key, r)).collect();
        let mut per_app = 0usize;
        for finding in app_drift(&outcome.result, app) {
            let action = match finding.status {
                Status::Modified => APPLY,
                Status::Missing => CREATE,
                _ => DELETE,
            };
            let key = finding.key();
            let desired = by_key.get(&key).map(|r| (*r).clone());
            let patch = match action {
                APPLY => finding.patch.clone(),
                CREATE => desired.as_ref().map(creation_patch),
                _ => None,
            };
            let skip = if snapshot {
                Some(format!(
                    "cluster {} is an offline snapshot: it cannot be healed",
                    app.cluster
                ))
            } else if rails.denies(&finding.group, &finding.kind) {
                Some(format!("heal.deny_kinds holds {}", finding.kind))
            } else if action == DELETE && !app.prune {
                Some(format!("prune is off for app {}", app.name))
            } else if let Some(reason) = finding.reason.as_ref().filter(|_| action == CREATE) {
                Some(reason.clone())
            } else if action != DELETE && desired.is_none() {
                Some("the desired object is not in the scan".into())
            } else if per_app >= rails.max_objects_per_app {
                Some(format!(
                    "limit of {} objects per app reached (heal.max_objects_per_app)",
                    rails.max_objects_per_app
                ))
            } else if per_run >= rails.max_objects_per_run {
                Some(format!(
                    "limit of {} objects per run reached (heal.max_objects_per_run)",
                    rails.max_objects_per_run
                ))
            } else {
                per_app += 1;
                per_run += 1;
                None
            };
            let mut named: Vec<String> = finding.changes.iter().map(|c| c.path.clone()).collect();
            named.extend(patch_paths(finding.patch.as_ref()));
            planned.push(Planned {
                action: HealAction {
                    app: finding.app.clone(),
                    cluster: finding.cluster.clone(),
                    group: finding.group.clone(),
                    version: finding.version.clone(),
                    kind: finding.kind.clone(),
                    namespace: finding.namespace.clone(),
                    name: finding.name.clone(),
                    action: action.to_string(),
                    status: if skip.is_some() { SKIPPED } else { PLANNED }.to_string(),
                    reason: skip,
                    patch,
                    dry_run,
                    at: at.clone(),
                },
                desired,
                named,
                app: app.clone(),
            });
        }
    }
    planned
}

/// The drift of one app in a scan, in the scan's order.
fn app_drift<'a>(result: &'a ScanResult, app: &'a PlannedApp) -> impl Iterator<Item = &'a Finding> {
    result.findings.iter().filter(move |f| {
        f.app == app.name
            && f.cluster == app.cluster
            && matches!(
                f.status,
                Status::Modified | Status::Missing | Status::Orphaned
            )
    })
}

/// For a missing object, the patch that creates it: the whole Git object added, Secret
/// values redacted.
fn creation_patch(desired: &Resource) -> Value {
    let mut body = desired.body.clone();
    if redact::is_secret(&desired.key.group, &desired.key.kind) {
        redact::redact_object(&mut body);
    }
    json!([{"op": "add", "path": "", "value": body}])
}

fn patch_paths(patch: Option<&Value>) -> Vec<String> {
    patch
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|op| op.get("path").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Takes the planned actions, cluster by cluster: one connection each.
fn execute(config: &Config, actions: &mut [Planned]) {
    let mut by_cluster: BTreeMap<String, Vec<&mut Planned>> = BTreeMap::new();
    for planned in actions.iter_mut() {
        if planned.action.status == PLANNED {
            by_cluster
                .entry(planned.action.cluster.clone())
                .or_default()
                .push(planned);
        }
    }
    for (cluster, planned) in by_cluster {
        let connection = match config.cluster(&cluster) {
            Some(c) => Connection::open(&c.access, &scan::limits(config)),
            None => Err(ClusterError::error(format!(
                "cluster {cluster} is not configured"
            ))),
        };
        let api = match connection {
            Ok(Connection::Api(api, _)) => api,
            Ok(Connection::Snapshot(_)) => {
                fail_all(planned, "an offline snapshot cannot be healed");
                continue;
            }
            Err(e) => {
                fail_all(planned, &format!("cluster {cluster}: {}", e.message));
                continue;
            }
        };
        for p in planned {
            let outcome_of = take(config, &api, p);
            let (status, reason) = match crate::live::kube::block_on(outcome_of) {
                Ok(result) => result,
                Err(e) => (FAILED, Some(e.message)),
            };
            p.action.status = status.to_string();
            p.action.reason = reason;
            p.action.at = scan::now();
        }
    }
}

fn fail_all(planned: Vec<&mut Planned>, reason: &str) {
    for p in planned {
        p.action.status = FAILED.to_string();
        p.action.reason = Some(reason.to_string());
    }
}

/// Takes one action: dry run, checks, then (unless a dry run) the write itself.
async fn take(config: &Config, api: &ApiCluster, p: &Planned) -> (&'static str, Option<String>) {
    let a = &p.action;
    let Some(resource) = api.resource(&a.group, &a.kind) else {
        return (FAILED, Some("kind not served by the cluster".into()));
    };
    let failed = |e: RequestError| (FAILED, Some(e.to_string()));
    if a.action == DELETE {
        if let Err(e) = api
            .delete_object(resource, a.namespace.as_deref(), &a.name, true)
            .await
        {
            return failed(e);
        }
        if a.dry_run {
            return (PLANNED, None);
        }
        return match api
            .delete_object(resource, a.namespace.as_deref(), &a.name, false)
            .await
        {
            Ok(()) => (APPLIED, None),
            Err(e) => failed(e),
        };
    }
    let app = &p.app;
    let Some(desired) = &p.desired else {
        return (
            SKIPPED,
            Some("the desired object is not in the scan".into()),
        );
    };
    let live = match api
        .get_object(resource, a.namespace.as_deref(), &a.name)
        .await
    {
        Ok(live) => live,
        Err(e) => return failed(e),
    };
    if a.action == APPLY && live.is_none() {
        return (
            SKIPPED,
            Some("the object was deleted since the scan".into()),
        );
    }
    let settings = match scan::diff_settings(config, app, None) {
        Ok(settings) => settings,
        Err(reason) => return (SKIPPED, Some(reason)),
    };
    let body = match apply_body(desired, live.as_ref(), app, &settings) {
        Ok(body) => body,
        Err(reason) => return (SKIPPED, Some(reason)),
    };
    let force = config.heal.force;
    let dry = match api.apply(resource, &body, true, force).await {
        Ok(dry) => dry,
        Err(e) => return failed(e),
    };
    if let Some(reason) = check_dry_run(
        &settings,
        app,
        desired,
        live.as_ref(),
        &dry,
        &p.named,
        resource,
    ) {
        return (SKIPPED, Some(reason));
    }
    if a.dry_run {
        return (PLANNED, None);
    }
    match api.apply(resource, &body, false, force).await {
        Ok(_) => (APPLIED, None),
        Err(e) => failed(e),
    }
}

/// What is applied: Git's object with the tracking label and annotation a sync writes,
/// as the scan expects them (and, for a new object, this app's tracking label, so the
/// next scans attribute it), with every difference an ignore rule covers left as it is
/// live: an ignored field (replicas an HPA sets) is not the heal's to undo.
fn apply_body(
    desired: &Resource,
    live: Option<&Value>,
    app: &PlannedApp,
    settings: &diff::Settings,
) -> Result<Value, String> {
    let mut body = desired.body.clone();
    let Some(live) = live else {
        normalize::insert_metadata_entry(&mut body, "labels", &settings.tracking.label, &app.name);
        return Ok(body);
    };
    normalize::expect_tracking(&mut body, live, &app.name, settings.tracking);
    let live_resource = Resource::from_value(live.clone())
        .map_err(|e| format!("the live object is unreadable: {e}"))?;
    let mut ignored = diff::diff_object(desired, &live_resource, &app.name, settings).ignored;
    // Deepest and last items first, so that removing a list item shifts none still to come.
    ignored.sort_by(|a, b| b.pointer.cmp(&a.pointer));
    for path in ignored {
        let live_value = if path.live_pointer.ends_with("/-") {
            None
        } else {
            live.pointer(&path.live_pointer).cloned()
        };
        set_at(&mut body, &path.pointer, live_value);
    }
    Ok(body)
}

/// Sets (or, with `None`, removes) the value at an RFC 6901 pointer, creating the maps on
/// the way; a list position past the end is left alone.
fn set_at(root: &mut Value, pointer: &str, value: Option<Value>) {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut node = root;
    for token in parents {
        if let (Value::Object(map), Some(_)) = (&mut *node, &value) {
            map.entry(token.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
        let next = match node {
            Value::Object(map) => map.get_mut(token.as_str()),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        node = next;
    }
    match (node, value) {
        (Value::Object(map), Some(value)) => {
            map.insert(last.clone(), value);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), value) => {
            let Ok(index) = last.parse::<usize>() else {
                return;
            };
            match value {
                Some(value) if index < items.len() => items[index] = value,
                Some(value) if index == items.len() => items.push(value),
                None if index < items.len() => {
                    items.remove(index);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Why the dry run's result must not be written, if it must not: it still differs from
/// Git, or it changes a field the finding did not name.
fn check_dry_run(
    settings: &diff::Settings,
    app: &PlannedApp,
    desired: &Resource,
    live: Option<&Value>,
    dry: &Value,
    named: &[String],
    resource: &ServedResource,
) -> Option<String> {
    let dry_resource = match Resource::from_value(dry.clone()) {
        Ok(r) => r,
        Err(e) => return Some(format!("the dry run answered an unreadable object: {e}")),
    };
    let verdict = diff::diff_object(desired, &dry_resource, &app.name, settings);
    if !matches!(verdict.status, Status::InSync | Status::Ignored) {
        let paths: Vec<&str> = verdict.changes.iter().map(|c| c.path.as_str()).collect();
        return Some(format!(
            "the dry run still differs from Git at {}",
            paths.join(", ")
        ));
    }
    let live = live?;
    let unnamed: Vec<String> = changed_paths(&resource.group, &resource.kind, live, dry)
        .into_iter()
        .filter(|path| !named.iter().any(|n| diff::pointers_overlap(n, path)))
        .collect();
    if unnamed.is_empty() {
        None
    } else {
        Some(format!(
            "the dry run would also change {}, which the finding does not name",
            unnamed.join(", ")
        ))
    }
}

/// Every declared field that differs between two versions of a live object (server
/// metadata and status aside), as pointers into the first: the scan's comparison run both
/// ways, so a field added, removed or changed shows.
fn changed_paths(group: &str, kind: &str, before: &Value, after: &Value) -> Vec<String> {
    let builtin = kinds::builtin_namespaced(group, kind).is_some();
    let before = normalize::live(group, kind, before);
    let after = normalize::live(group, kind, after);
    let mut paths: Vec<String> = compare::compare(group, kind, builtin, &before, &after, None)
        .into_iter()
        .map(|c| c.pointer)
        .collect();
    paths.extend(
        compare::compare(group, kind, builtin, &after, &before, None)
            .into_iter()
            .map(|c| c.live_pointer),
    );
    paths.sort();
    paths.dedup();
    paths
}

fn summarize(actions: &[HealAction]) -> HealSummary {
    let mut summary = HealSummary::default();
    for a in actions {
        match a.status.as_str() {
            PLANNED => summary.planned += 1,
            APPLIED => summary.applied += 1,
            FAILED => summary.failed += 1,
            _ => summary.skipped += 1,
        }
    }
    summary
}

/// Stores the actions against their scan, then alerts: the actions are stored before any
/// message is sent, so a failed delivery never loses them.
fn record(config: &Config, heal_run: &HealRun) {
    let mut store = match Store::open(&config.database) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("heal actions not recorded: {e}");
            return;
        }
    };
    if let Err(e) = store.record_heal(heal_run.scan_id, &heal_run.actions) {
        tracing::error!("heal actions not recorded: {e}");
    }
    let acted = heal_run.summary.applied > 0 || heal_run.summary.failed > 0;
    if heal_run.dry_run || !acted {
        return;
    }
    let alert = notify::HealAlert {
        scan_id: heal_run.scan_id,
        headline: heal_run.headline(),
        actions: &heal_run.actions,
    };
    let mut records = Vec::new();
    for channel in notify::CHANNELS {
        if let Some(delivery) = notify::deliver_heal(&config.notify, channel, &alert) {
            if let Some(error) = &delivery.error {
                tracing::warn!("{channel} heal alert not delivered: {error}");
            }
            records.push(NotificationRecord {
                channel: channel.to_string(),
                ok: delivery.ok,
                attempts: delivery.attempts,
                error: delivery.error,
                headline: format!("heal: {}", heal_run.headline()),
                sent_at: scan::now(),
            });
        }
    }
    if let Err(e) = store.record_notifications(heal_run.scan_id, &records, &[]) {
        tracing::error!("heal alerts sent but not recorded: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_paths_see_additions_removals_and_changes_but_not_server_fields() {
        let before = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "1", "labels": {"a": "1"}},
            "data": {"keep": "x", "gone": "y", "edit": "1"}});
        let after = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "2", "labels": {"a": "1", "b": "2"}},
            "data": {"keep": "x", "edit": "2"}});
        assert_eq!(
            changed_paths("", "ConfigMap", &before, &after),
            ["/data/edit", "/data/gone", "/metadata/labels/b"]
        );
        assert!(changed_paths("", "ConfigMap", &before, &before).is_empty());
    }

    #[test]
    fn headline_counts_what_happened() {
        let action = |status: &str| HealAction {
            app: "web".into(),
            cluster: "prod".into(),
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("web".into()),
            name: "c".into(),
            action: APPLY.into(),
            status: status.into(),
            reason: None,
            patch: None,
            dry_run: false,
            at: String::new(),
        };
        let actions = vec![
            action(APPLIED),
            action(APPLIED),
            action(FAILED),
            action(SKIPPED),
        ];
        let run = HealRun {
            scan_id: 1,
            dry_run: false,
            summary: summarize(&actions),
            actions,
        };
        assert_eq!(run.headline(), "2 applied, 1 failed, 1 skipped");
        assert!(run.failed());
    }
}
