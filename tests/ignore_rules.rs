//! Ignore rules: JSON pointers, jq path expressions and field managers set expected
//! differences aside; the resource is then `ignored`, never dropped.

use plumbline::config::{IgnoreRule, Tracking};
use plumbline::diff::{self, ignore::CompiledRule, Settings};
use plumbline::model::{Resource, Status};
use serde_json::json;

fn desired() -> Resource {
    Resource::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "web", "image": "web:1.4"},
                                  {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}]}}}
    }))
    .expect("desired")
}

/// Live: the HPA scaled to 6 and the Istio webhook rewrote the sidecar image.
fn live() -> Resource {
    Resource::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web", "uid": "0d5e7c1a-3b2f-4e8d-9c6a-1f2e3d4c5b6a",
                     "resourceVersion": "90210", "generation": 4, "creationTimestamp": "2026-10-01T08:00:00Z",
                     "managedFields": [
                         {"manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
                          "time": "2026-10-01T08:00:00Z", "fieldsType": "FieldsV1",
                          "fieldsV1": {"f:spec": {"f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                              "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}},
                              "k:{\"name\":\"istio-proxy\"}": {".": {}, "f:name": {}}}}}}}},
                         {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
                          "apiVersion": "autoscaling/v1", "time": "2026-11-20T14:30:12Z", "fieldsType": "FieldsV1",
                          "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                         {"manager": "istio-sidecar-injector", "operation": "Update", "apiVersion": "apps/v1",
                          "time": "2026-10-01T08:00:01Z", "fieldsType": "FieldsV1",
                          "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                              "k:{\"name\":\"istio-proxy\"}": {"f:image": {}}}}}}}}]},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "istio-proxy", "image": "gcr.io/istio-release/proxyv2:1.22.3"},
                                  {"name": "web", "image": "web:1.4"}]}}}
    }))
    .expect("live")
}

fn verdict(rules: Vec<IgnoreRule>) -> diff::Verdict {
    let tracking = Tracking::default();
    let settings = Settings {
        tracking: &tracking,
        ignore: rules
            .iter()
            .map(|r| CompiledRule::compile(r).expect("compiles"))
            .collect(),
        appliers: diff::DEFAULT_APPLIERS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        hash_key: None,
    };
    diff::diff_object(&desired(), &live(), "web", &settings)
}

fn rule(json_pointers: &[&str], jq: &[&str], managers: &[&str]) -> IgnoreRule {
    IgnoreRule {
        group: None,
        kind: Some("Deployment".into()),
        namespace: None,
        name: Some("*".into()),
        json_pointers: json_pointers.iter().map(|s| s.to_string()).collect(),
        jq_path_expressions: jq.iter().map(|s| s.to_string()).collect(),
        managed_fields_managers: managers.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn without_rules_both_differences_are_drift() {
    let v = verdict(Vec::new());
    assert_eq!(v.status, Status::Modified);
    let paths: Vec<&str> = v.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/spec/replicas", "/spec/template/spec/containers/1/image"]
    );
    assert_eq!(
        v.managers,
        vec!["kube-controller-manager", "istio-sidecar-injector"]
    );
}

#[test]
fn one_rule_leaves_the_other_difference() {
    let v = verdict(vec![rule(&["/spec/replicas"], &[], &[])]);
    assert_eq!(v.status, Status::Modified);
    assert_eq!(v.changes.len(), 1);
    assert_eq!(v.changes[0].path, "/spec/template/spec/containers/1/image");
}

#[test]
fn jq_select_and_manager_rules_together_make_it_ignored() {
    let v = verdict(vec![rule(
        &[],
        &[".spec.template.spec.containers[] | select(.name == \"istio-proxy\")"],
        &["kube-controller-manager"],
    )]);
    assert_eq!(v.status, Status::Ignored);
    assert_eq!(v.changes.len(), 2, "ignored changes are still shown");
}

#[test]
fn rules_for_other_kinds_do_not_apply() {
    let mut other = rule(&["/spec/replicas"], &[], &[]);
    other.kind = Some("StatefulSet".into());
    assert_eq!(verdict(vec![other]).changes.len(), 2);
}
