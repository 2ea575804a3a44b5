//! Drift: compares the desired objects of an app with the live objects of its cluster and
//! classifies every resource `in_sync`, `modified`, `missing`, `orphaned` or `ignored`.
//!
//! The comparison asks one question: would applying the desired manifest change anything?
//! [`normalize`] removes what the server adds, [`compare`] walks both objects with the list
//! semantics of [`lists`] and the previous apply from [`fieldset`], [`ignore`] sets aside the
//! expected differences, [`redact`] keeps Secret values out, [`output`] writes patch and diff.

pub mod compare;
pub mod defaults;
pub mod fieldset;
pub mod ignore;
pub mod jq;
pub mod lists;
pub mod normalize;
pub mod output;
pub mod quantity;
pub mod redact;

use crate::config::Tracking;
use crate::kinds;
use crate::live::LiveState;
use crate::model::{Change, Finding, Resource, ResourceKey, Status};
use compare::RawChange;
use fieldset::{FieldSet, Managers};
use ignore::CompiledRule;
use std::collections::HashSet;

/// Field managers whose server-side apply ownership stands for "the previous apply" when an
/// object has no last-applied annotation (configurable with `appliers:`).
pub use crate::config::DEFAULT_APPLIERS;

/// What the comparison needs to know beyond the two objects.
pub struct Settings<'a> {
    pub tracking: &'a Tracking,
    pub ignore: Vec<CompiledRule>,
    pub appliers: Vec<String>,
    /// Key of the digests of drifted Secret values; without one, no digest is made.
    pub hash_key: Option<&'a redact::HashKey>,
}

/// The verdict for one desired object that exists live.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub changes: Vec<Change>,
    pub managers: Vec<String>,
    pub patch: Option<serde_json::Value>,
    pub diff: Option<String>,
    /// Keyed digest of the live values behind a Secret's redacted changes.
    pub secret_digest: Option<String>,
    /// Where the object differs only as an ignore rule allows: what a heal leaves as it is
    /// live (as Argo CD's `RespectIgnoreDifferences` does).
    pub ignored: Vec<IgnoredPath>,
}

/// A difference an ignore rule covers, by position in Git's object and in the live one
/// (`-` as the last step where the live object has no such item).
#[derive(Debug, Clone, PartialEq)]
pub struct IgnoredPath {
    pub pointer: String,
    pub live_pointer: String,
}

impl Verdict {
    fn in_sync() -> Verdict {
        Verdict {
            status: Status::InSync,
            changes: Vec::new(),
            managers: Vec::new(),
            patch: None,
            diff: None,
            secret_digest: None,
            ignored: Vec::new(),
        }
    }
}

/// Classifies every desired object of an app and finds the app's orphans.
pub fn diff_app(
    app: &str,
    cluster: &str,
    desired: &[Resource],
    live: &LiveState,
    settings: &Settings,
) -> Vec<Finding> {
    let mut findings = Vec::with_capacity(desired.len());
    let mut desired_keys: HashSet<&ResourceKey> = HashSet::with_capacity(desired.len());
    for object in desired {
        desired_keys.insert(&object.key);
        let mut finding = Finding::of(app, cluster, object, Status::Missing);
        match live.get(&object.key) {
            Some(live_object) => {
                let verdict = diff_object(object, live_object, app, settings);
                finding.status = verdict.status;
                finding.changes = verdict.changes;
                finding.managers = verdict.managers;
                finding.patch = verdict.patch;
                finding.diff = verdict.diff;
                finding.secret_digest = verdict.secret_digest;
            }
            None => {
                if live.serves(&object.key.group, &object.key.kind) == Some(false) {
                    finding.reason = Some("kind not served by the cluster".into());
                }
            }
        }
        findings.push(finding);
    }
    let mut orphans: Vec<&Resource> = live
        .objects()
        .filter(|o| {
            !desired_keys.contains(&o.key) && is_orphan_candidate(o, app, settings.tracking)
        })
        .collect();
    orphans.sort_by(|a, b| a.key.cmp(&b.key));
    for object in orphans {
        findings.push(Finding::of(app, cluster, object, Status::Orphaned));
    }
    findings
}

/// The app a live object is attributed to: the tracking label, or Argo CD's tracking-id
/// annotation when it names this very object (a copied annotation does not count).
pub fn tracked_app<'a>(object: &'a Resource, tracking: &Tracking) -> Option<&'a str> {
    if let Some(app) = object.label(&tracking.label) {
        return Some(app);
    }
    let annotation = object.annotation(&tracking.annotation)?;
    let (app, identity) = annotation.split_once(':')?;
    let (group_kind, namespaced_name) = identity.split_once(':')?;
    let (group, kind) = group_kind.split_once('/')?;
    let (namespace, name) = namespaced_name.split_once('/')?;
    let same_object = group == object.key.group
        && kind == object.key.kind
        && name == object.key.name
        && (namespace.is_empty() || Some(namespace) == object.key.namespace.as_deref());
    same_object.then_some(app)
}

/// Top-level objects attributed to the app. Objects owned by a controller and objects whose
/// labels controllers copy (Endpoints, EndpointSlices, Events, Leases) are never orphans.
fn is_orphan_candidate(object: &Resource, app: &str, tracking: &Tracking) -> bool {
    tracked_app(object, tracking) == Some(app)
        && !object.has_owner()
        && !kinds::is_label_copy_kind(&object.key.group, &object.key.kind)
}

/// Compares one desired object with its live counterpart.
pub fn diff_object(desired: &Resource, live: &Resource, app: &str, settings: &Settings) -> Verdict {
    let group = desired.key.group.as_str();
    let kind = desired.key.kind.as_str();
    let builtin = kinds::builtin_namespaced(group, kind).is_some();
    // The walk visits only what Git declares, so the live object is read in place: the
    // server's quantities are canonical already. Secrets get their data re-encoded first.
    let live_secret;
    let live_view = if redact::is_secret(group, kind) {
        live_secret = normalize::live(group, kind, &live.body);
        &live_secret
    } else {
        &live.body
    };
    let applied = previous_apply(group, kind, builtin, &live.body, settings);
    // Most objects are in sync, and then Git as written is contained in the live object
    // already: proving that needs no copy or normalisation of either side.
    let tracking = compare::ProbeTracking {
        label: &settings.tracking.label,
        annotation: &settings.tracking.annotation,
        app,
    };
    if compare::contained(
        group,
        kind,
        builtin,
        &desired.body,
        live_view,
        applied.as_ref(),
        tracking,
    ) {
        return Verdict::in_sync();
    }
    let normalized = |with_defaults: bool| {
        normalize::desired(
            group,
            kind,
            &desired.body,
            app,
            settings.tracking,
            Some(&live.body),
            with_defaults,
        )
    };
    let desired_norm = normalized(false);
    // Defaults only ever excuse a difference: a difference is drift when it shows both
    // against Git as written and against Git with the server's defaults. A field Git does not
    // set is left alone by a sync, whatever this server version defaulted it to; a value Git
    // sets that the server rewrites (a dropped sessionAffinityConfig) is excused by defaulting.
    // Without defaults every addition inside an atomic list's item counts, so an object
    // that shows no difference then is in sync, and the defaults are never worked out.
    let mut raw = compare::compare(
        group,
        kind,
        builtin,
        &desired_norm,
        live_view,
        applied.as_ref(),
    );
    if raw.is_empty() {
        return Verdict::in_sync();
    }
    let desired_defaulted = normalized(true);
    if builtin {
        raw = compare::compare_defaulted(
            group,
            kind,
            builtin,
            &desired_norm,
            Some(&desired_defaulted),
            live_view,
            applied.as_ref(),
        );
    }
    if !raw.is_empty() {
        let defaulted = compare::compare_defaulted(
            group,
            kind,
            builtin,
            &desired_defaulted,
            Some(&desired_defaulted),
            live_view,
            applied.as_ref(),
        );
        raw.retain(|change| {
            defaulted
                .iter()
                .any(|other| pointers_overlap(&change.pointer, &other.pointer))
        });
    }
    if raw.is_empty() {
        return Verdict::in_sync();
    }
    let live_norm = normalize::live(group, kind, &live.body);
    let rules: Vec<ignore::ObjectRule> = settings
        .ignore
        .iter()
        .filter(|r| r.applies_to(&desired.key))
        .map(|r| r.for_object(&desired_norm, &live_norm))
        .collect();
    // Who owns each live field: parsed only when there is drift to attribute.
    let managers = Managers::from_object(&live.body);
    let secret = redact::is_secret(group, kind);
    let mut kept: Vec<(&RawChange, Vec<String>)> = Vec::new();
    let mut ignored: Vec<(&RawChange, Vec<String>)> = Vec::new();
    for change in &raw {
        let owners = if change.live.is_some() {
            managers.owners(&change.segs)
        } else {
            Vec::new()
        };
        if rules.iter().any(|r| r.ignores(change, &owners)) {
            ignored.push((change, owners));
        } else {
            kept.push((change, owners));
        }
    }
    let ignored_paths = ignored
        .iter()
        .map(|(c, _)| IgnoredPath {
            pointer: c.pointer.clone(),
            live_pointer: c.live_pointer.clone(),
        })
        .collect();
    let (status, shown) = if kept.is_empty() {
        (Status::Ignored, ignored)
    } else {
        (Status::Modified, kept)
    };
    let mut owners_all: Vec<String> = Vec::new();
    for (_, owners) in &shown {
        for owner in owners {
            if !owners_all.contains(owner) {
                owners_all.push(owner.clone());
            }
        }
    }
    let changes = shown.iter().map(|(c, _)| to_change(c, secret)).collect();
    let secret_digest = settings.hash_key.filter(|_| secret).and_then(|key| {
        let redacted: Vec<(&str, Option<&serde_json::Value>)> = shown
            .iter()
            .filter(|(c, _)| redact::is_secret_path(&c.pointer))
            .map(|(c, _)| (c.pointer.as_str(), c.live.as_ref()))
            .collect();
        (!redacted.is_empty()).then(|| key.digest(redacted))
    });
    let raw_shown: Vec<&RawChange> = shown.iter().map(|(c, _)| *c).collect();
    let patch = output::patch(&raw_shown);
    let label = desired.key.to_string();
    let diff = output::yaml_diff(&live_norm, &patch, secret, &label);
    let mut patch = patch;
    if secret {
        output::redact_patch(&mut patch);
    }
    Verdict {
        status,
        changes,
        managers: owners_all,
        patch: Some(patch),
        diff,
        secret_digest,
        ignored: ignored_paths,
    }
}

/// True when one pointer equals the other or lies below it.
pub fn pointers_overlap(a: &str, b: &str) -> bool {
    let below = |long: &str, short: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'/'
    };
    a == b || below(a, b) || below(b, a)
}

/// What the previous apply owned: the last-applied annotation when present, else the fields
/// owned by a known applier through server-side apply.
fn previous_apply(
    group: &str,
    kind: &str,
    builtin: bool,
    live: &serde_json::Value,
    settings: &Settings,
) -> Option<FieldSet> {
    if let Some(applied) = normalize::last_applied(live) {
        return Some(FieldSet::from_applied(group, kind, builtin, &applied));
    }
    let entries = live.get("metadata")?.get("managedFields")?.as_array()?;
    let mut owned: Option<FieldSet> = None;
    for entry in entries {
        let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
        let is_applier = field("operation") == Some("Apply")
            && entry.get("subresource").is_none()
            && field("manager").is_some_and(|m| settings.appliers.iter().any(|a| a == m));
        if !is_applier {
            continue;
        }
        let fields = entry
            .get("fieldsV1")
            .map(FieldSet::from_fields_v1)
            .unwrap_or_default();
        match owned.as_mut() {
            Some(set) => merge_sets(set, &fields),
            None => owned = Some(fields),
        }
    }
    owned
}

fn merge_sets(into: &mut FieldSet, other: &FieldSet) {
    into.map |= other.map;
    for (name, child) in other.fields.iter() {
        merge_sets(into.fields.get_or_insert_default(name), child);
    }
    for (key, child) in &other.keys {
        match into
            .keys
            .iter_mut()
            .find(|(k, _)| fieldset::keys_equal(k, key))
        {
            Some((_, existing)) => merge_sets(existing, child),
            None => into.keys.push((key.clone(), child.clone())),
        }
    }
    for value in &other.values {
        if !into.has_value(value) {
            into.values.push(value.clone());
        }
    }
}

fn to_change(raw: &RawChange, secret: bool) -> Change {
    let redact = secret && redact::is_secret_path(&raw.pointer);
    let shown = |v: &Option<serde_json::Value>| {
        v.as_ref().map(|v| {
            if redact {
                redact::redact_value(v)
            } else {
                v.clone()
            }
        })
    };
    Change {
        path: raw.pointer.clone(),
        desired: shown(&raw.desired),
        live: shown(&raw.live),
    }
}
