//! The policy stage of a scan: which objects of one cluster are checked, in which state,
//! with which audit facts, and how violations become the scan's `policy_results`.
//!
//! Checked are the desired objects of every app (state `desired`), their live counterparts
//! (state `live`, with the desired object as `oldObject`), the app's orphans, and the live
//! objects in an app's namespaces that no app tracks (unmanaged components). Objects a
//! controller made (owner references) and the ones Kubernetes puts in every namespace are
//! not anyone's change, so they are not counted as unmanaged.

use super::{AuditFacts, Context, Drift, Evaluation, PolicySet, State, Subject};
use crate::live::LiveState;
use crate::model::{
    ExpiredWaiverNote, Finding, PolicyResult, PolicyRule, Resource, ResourceKey, Status,
};
use std::collections::{HashMap, HashSet};

/// One app of the cluster: its desired objects, as rendered.
pub struct AppObjects<'a> {
    pub app: &'a str,
    pub namespace: Option<&'a str>,
    pub desired: &'a [Resource],
}

/// What the scan knows of one cluster.
pub struct ClusterInput<'a> {
    pub cluster: &'a str,
    pub apps: Vec<AppObjects<'a>>,
    /// `None` when the cluster could not be read: only desired state is checked.
    pub live: Option<&'a LiveState>,
    pub findings: Vec<&'a Finding>,
    /// Hours each drift finding has been open, by app and resource.
    pub open_hours: &'a HashMap<(String, ResourceKey), f64>,
}

/// Checks one cluster's objects against the policy set.
pub fn evaluate_cluster(
    set: &PolicySet,
    input: &ClusterInput,
    context: &mut Context,
) -> Evaluation {
    let statuses: HashMap<(&str, ResourceKey), Status> = input
        .findings
        .iter()
        .map(|f| ((f.app.as_str(), f.key()), f.status))
        .collect();
    let facts = |app: &str, key: &ResourceKey, tracked: bool| -> AuditFacts {
        let status = statuses
            .get(&(app, key.clone()))
            .copied()
            .unwrap_or(Status::InSync);
        let open_hours = input
            .open_hours
            .get(&(app.to_string(), key.clone()))
            .copied()
            .unwrap_or(0.0);
        AuditFacts {
            tracked,
            managed_namespace: true,
            drift: Drift {
                status: status.to_string(),
                open_hours,
            },
        }
    };

    // Facts first (subjects borrow them), then subjects.
    let mut entries: Vec<(&str, State, &Resource, Option<&Resource>, AuditFacts)> = Vec::new();
    let mut tracked_keys: HashSet<&ResourceKey> = HashSet::new();
    let mut namespaces: HashSet<&str> = HashSet::new();
    for app in &input.apps {
        namespaces.extend(app.namespace);
        for desired in app.desired {
            tracked_keys.insert(&desired.key);
            namespaces.extend(desired.key.namespace.as_deref());
            let audit = facts(app.app, &desired.key, true);
            let live = input.live.and_then(|l| l.get(&desired.key));
            if let Some(live) = live {
                entries.push((app.app, State::Live, live, Some(desired), audit.clone()));
            }
            entries.push((app.app, State::Desired, desired, None, audit));
        }
    }
    if let Some(live) = input.live {
        for finding in input
            .findings
            .iter()
            .filter(|f| f.status == Status::Orphaned)
        {
            let key = finding.key();
            if let Some(object) = live.get(&key) {
                tracked_keys.insert(&object.key);
                let audit = facts(&finding.app, &key, true);
                entries.push((finding.app.as_str(), State::Live, object, None, audit));
            }
        }
        let claims = statefulset_claims(live);
        for object in live.objects() {
            let in_managed_namespace = object
                .key
                .namespace
                .as_deref()
                .is_some_and(|ns| namespaces.contains(ns));
            if in_managed_namespace
                && !tracked_keys.contains(&object.key)
                && !is_system(object)
                && !is_statefulset_claim(object, &claims)
            {
                let audit = AuditFacts {
                    tracked: false,
                    managed_namespace: true,
                    drift: Drift::default(),
                };
                entries.push(("", State::Live, object, None, audit));
            }
        }
        // Only this cluster's inventory is needed: the previous one's memory is let go.
        context.inventory.clear();
        context
            .inventory
            .insert(input.cluster.to_string(), inventory(set, live));
        for object in live
            .objects()
            .filter(|o| o.key.group.is_empty() && o.key.kind == "Namespace")
        {
            context.namespaces.insert(
                (input.cluster.to_string(), object.key.name.clone()),
                object.body.clone(),
            );
        }
    }
    let subjects: Vec<Subject> = entries
        .iter()
        .map(|(app, state, object, desired, audit)| Subject {
            app,
            cluster: input.cluster,
            state: *state,
            object: &object.body,
            desired: desired.map(|d| &d.body),
            audit,
        })
        .collect();
    set.evaluate(&subjects, context)
}

/// `(namespace, "<template>-<statefulset>-")` for every volume claim template: the claims a
/// StatefulSet controller creates carry no owner reference, but are its, not an unmanaged
/// component.
fn statefulset_claims(live: &LiveState) -> HashSet<(String, String)> {
    let mut prefixes = HashSet::new();
    for set in live
        .objects()
        .filter(|o| o.key.group == "apps" && o.key.kind == "StatefulSet")
    {
        let Some(namespace) = &set.key.namespace else {
            continue;
        };
        for template in set.body["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(name) = template["metadata"]["name"].as_str() {
                prefixes.insert((namespace.clone(), format!("{name}-{}-", set.key.name)));
            }
        }
    }
    prefixes
}

/// A PersistentVolumeClaim named `<template>-<statefulset>-<ordinal>`.
fn is_statefulset_claim(object: &Resource, claims: &HashSet<(String, String)>) -> bool {
    if !(object.key.group.is_empty() && object.key.kind == "PersistentVolumeClaim") {
        return false;
    }
    let Some(namespace) = &object.key.namespace else {
        return false;
    };
    claims.iter().any(|(ns, prefix)| {
        ns == namespace
            && object
                .key
                .name
                .strip_prefix(prefix.as_str())
                .is_some_and(|ordinal| {
                    !ordinal.is_empty() && ordinal.chars().all(|c| c.is_ascii_digit())
                })
    })
}

/// The live objects by kind that the policies read, for cross-object checks.
fn inventory(set: &PolicySet, live: &LiveState) -> HashMap<String, Vec<serde_json::Value>> {
    let mut by_kind: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for object in live
        .objects()
        .filter(|o| set.reads_inventory_kind(&o.key.kind))
    {
        by_kind
            .entry(object.key.kind.clone())
            .or_default()
            .push(object.body.clone());
    }
    by_kind
}

/// Made by a controller, or by Kubernetes in every namespace: nobody's unmanaged change.
fn is_system(object: &Resource) -> bool {
    let metadata = &object.body["metadata"];
    let owned = metadata["ownerReferences"]
        .as_array()
        .is_some_and(|refs| !refs.is_empty());
    let core = object.key.group.is_empty();
    let kind = object.key.kind.as_str();
    let name = object.key.name.as_str();
    owned
        || (core && kind == "ConfigMap" && name == "kube-root-ca.crt")
        || (core && kind == "ServiceAccount" && name == "default")
        || (core
            && kind == "Secret"
            && object.body["type"] == "kubernetes.io/service-account-token")
}

/// The scan's `policy_results` for an evaluation.
pub fn results(evaluation: &Evaluation) -> Vec<PolicyResult> {
    evaluation
        .results
        .iter()
        .map(|v| PolicyResult {
            policy: v.policy.clone(),
            severity: v.severity.to_string(),
            app: (!v.app.is_empty()).then(|| v.app.clone()),
            cluster: v.cluster.clone(),
            kind: v.kind.clone(),
            namespace: v.namespace.clone(),
            name: v.name.clone(),
            state: v.state.as_str().to_string(),
            message: v.message.clone(),
            waived: v.waived,
        })
        .collect()
}

/// Expired waivers of several evaluations, each once, with the violations it would cover
/// summed.
pub fn expired_waivers<'a>(
    evaluations: impl IntoIterator<Item = &'a Evaluation>,
) -> Vec<ExpiredWaiverNote> {
    let mut notes: Vec<ExpiredWaiverNote> = Vec::new();
    for note in evaluations.into_iter().flat_map(|e| &e.expired_waivers) {
        match notes.iter_mut().find(|n| {
            (&n.policy, &n.kind, &n.namespace, &n.name, &n.expires)
                == (
                    &note.policy,
                    &note.kind,
                    &note.namespace,
                    &note.name,
                    &note.expires,
                )
        }) {
            Some(known) => known.would_cover += note.would_cover,
            None => notes.push(note.clone()),
        }
    }
    notes
}

/// The policies of the set with their crosswalks, as the scan records them.
pub fn rules(set: &PolicySet) -> Vec<PolicyRule> {
    set.policies()
        .into_iter()
        .map(|p| PolicyRule {
            id: p.id,
            title: p.title,
            severity: p.severity.to_string(),
            pack: p.pack,
            controls: serde_json::to_value(&p.controls).unwrap_or_default(),
        })
        .collect()
}
