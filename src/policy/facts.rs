//! Facts computed in Rust once per object, so that packs do not recompute them in CEL:
//! the pod spec and containers of workloads, and whether a NetworkPolicy or a
//! PodDisruptionBudget of the inventory selects a workload's pods.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::Value;
use serde_json::Value as Json;

use super::reads::{self, InputReads, Reads};

/// Where a kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        _ => return None,
    })
}

/// The labels of a kind's pods: its own for a Pod, its pod template's otherwise.
fn pod_labels_path(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["metadata", "labels"],
        "CronJob" => &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "metadata",
            "labels",
        ],
        _ => &["spec", "template", "metadata", "labels"],
    }
}

fn json_at<'v>(v: &'v Json, path: &[&str]) -> Option<&'v Json> {
    path.iter().try_fold(v, |v, field| v.get(field))
}

/// CEL `podSpec` and `containers` of an object: its pod spec (`null` for kinds without
/// one) and its containers, init containers and ephemeral containers in that order (`[]`
/// without a pod spec), each converted as far as the policies read them.
pub(super) fn pod(kind: &str, object: &Json, reads: &InputReads) -> (Value, Value) {
    let Some(spec) = pod_spec_path(kind).and_then(|p| json_at(object, p)) else {
        return (Value::Null, Value::List(Arc::new(Vec::new())));
    };
    let item = match &reads.containers {
        Reads::Whole => &Reads::Whole,
        Reads::Parts { each, .. } => each.as_deref().unwrap_or(&reads::NOTHING),
    };
    let mut all = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Json::Array(items)) = spec.get(list) {
            all.extend(items.iter().map(|c| reads::convert(c, item)));
        }
    }
    (
        reads::convert(spec, &reads.pod_spec),
        Value::List(Arc::new(all)),
    )
}

/// A label selector (`matchLabels` and `matchExpressions`).
fn selects(selector: &Json, labels: Option<&serde_json::Map<String, Json>>) -> bool {
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(|v| v.as_str());
    let match_labels = selector
        .get("matchLabels")
        .and_then(|m| m.as_object())
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k).is_some() && label(k) == v.as_str());
    match_labels
        && selector
            .get("matchExpressions")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .all(|e| {
                let key = e.get("key").and_then(|k| k.as_str()).unwrap_or("");
                let value = label(key);
                let listed = || {
                    e.get("values")
                        .and_then(|v| v.as_array())
                        .is_some_and(|vs| vs.iter().any(|x| x.as_str() == value))
                };
                match e.get("operator").and_then(|o| o.as_str()) {
                    Some("In") => value.is_some() && listed(),
                    Some("NotIn") => value.is_none() || !listed(),
                    Some("Exists") => value.is_some(),
                    Some("DoesNotExist") => value.is_none(),
                    _ => false,
                }
            })
}

/// The kinds whose objects coverage reads from an inventory.
pub(super) const COVERAGE_KINDS: &[&str] = &["NetworkPolicy", "PodDisruptionBudget"];

/// The selectors of one cluster's NetworkPolicies and PodDisruptionBudgets, by namespace.
#[derive(Default)]
pub(super) struct Coverage<'a> {
    network_policies: HashMap<&'a str, Vec<&'a Json>>,
    pdbs: HashMap<&'a str, Vec<&'a Json>>,
}

impl<'a> Coverage<'a> {
    /// Indexes an inventory (objects by kind).
    pub(super) fn new(inventory: impl IntoIterator<Item = (&'a str, &'a [Json])>) -> Self {
        let mut c = Coverage::default();
        for (kind, objects) in inventory {
            let (index, selector): (_, &[&str]) = match kind {
                "NetworkPolicy" => (&mut c.network_policies, &["spec", "podSelector"]),
                "PodDisruptionBudget" => (&mut c.pdbs, &["spec", "selector"]),
                _ => continue,
            };
            for o in objects {
                let ns = json_at(o, &["metadata", "namespace"]).and_then(|n| n.as_str());
                // A NetworkPolicy without a podSelector selects every pod of its
                // namespace; a PodDisruptionBudget without a selector selects none.
                let sel = match (json_at(o, selector), kind) {
                    (Some(s), _) => s,
                    (None, "NetworkPolicy") => &EMPTY,
                    (None, _) => continue,
                };
                index.entry(ns.unwrap_or("")).or_default().push(sel);
            }
        }
        c
    }

    /// `plumbline.coverage` for an object: whether a NetworkPolicy (`networkPolicy`) and
    /// a PodDisruptionBudget (`pdb`) of its namespace select its pods.
    pub(super) fn of(&self, object: &Json) -> Json {
        let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let ns = json_at(object, &["metadata", "namespace"])
            .and_then(|n| n.as_str())
            .unwrap_or("");
        let labels = json_at(object, pod_labels_path(kind)).and_then(|l| l.as_object());
        let any = |index: &HashMap<&str, Vec<&Json>>| {
            index
                .get(ns)
                .is_some_and(|sels| sels.iter().any(|s| selects(s, labels)))
        };
        serde_json::json!({
            "networkPolicy": any(&self.network_policies),
            "pdb": any(&self.pdbs),
        })
    }
}

static EMPTY: Json = Json::Null;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_follow_kubernetes() {
        let labels = json!({"app": "web", "tier": "front"});
        let labels = labels.as_object();
        for (selector, want) in [
            (json!({}), true),
            (json!({"matchLabels": {"app": "web"}}), true),
            (json!({"matchLabels": {"app": "api"}}), false),
            (json!({"matchLabels": {"zone": ""}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}),
                false,
            ),
        ] {
            assert_eq!(selects(&selector, labels), want, "{selector}");
        }
    }

    #[test]
    fn pod_spec_and_containers_of_a_cronjob() {
        let cj = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a"}], "initContainers": [{"name": "b"}]}}}}}});
        let all = InputReads {
            object: Reads::Whole,
            pod_spec: Reads::Whole,
            containers: Reads::Whole,
        };
        let (spec, containers) = pod("CronJob", &cj, &all);
        assert!(matches!(spec, Value::Map(_)));
        assert!(matches!(containers, Value::List(l) if l.len() == 2));
        let (spec, containers) = pod("ConfigMap", &json!({}), &all);
        assert_eq!(spec, Value::Null);
        assert!(matches!(containers, Value::List(l) if l.is_empty()));
    }
}
