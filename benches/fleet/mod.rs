//! The synthetic fleet generator: Git manifests as teams write them and the live objects an
//! API server would return for them (defaults, canonical quantities, server metadata,
//! managedFields, status), at any scale.
#![allow(dead_code)]

use plumbline::model::Resource;
use serde_json::{json, Value};

/// A Deployment manifest as a team writes it; `i` varies names, images and sizes.
pub fn deployment(i: usize) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("team-{}", i % 50),
                     "labels": {"app.kubernetes.io/name": format!("svc-{i}"), "app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "replicas": 2 + i % 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": format!("svc-{i}")}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": format!("svc-{i}")}},
                "spec": {
                    "serviceAccountName": format!("svc-{i}"),
                    "containers": [{
                        "name": "app",
                        "image": format!("registry.example.com/team/svc-{i}:1.{}.{}", i % 7, i % 13),
                        "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                        "env": [
                            {"name": "LOG_LEVEL", "value": "info"},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": format!("svc-{i}-db"), "key": "url"}}}
                        ],
                        "resources": {"requests": {"cpu": 0.25, "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "1024Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                        "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, "initialDelaySeconds": 10},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]
                    }, {
                        "name": "proxy",
                        "image": "registry.example.com/envoy:1.31.2",
                        "args": ["--config", "/etc/envoy/envoy.yaml"],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": format!("svc-{i}-config")}}]
                }
            }
        }
    })
}

pub fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("team-{}", i % 50)},
        "spec": {"selector": {"app.kubernetes.io/name": format!("svc-{i}")},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    })
}

pub fn config_map(i: usize, size: usize) -> Value {
    let mut data = serde_json::Map::new();
    for k in 0..8 {
        data.insert(
            format!("key-{k}.yaml"),
            Value::String("x: 1\n".repeat(size / 40 + 1)),
        );
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": format!("svc-{i}-config"), "namespace": format!("team-{}", i % 50)},
           "data": data})
}

/// What the API server returns for `manifest` after an apply by `argocd-controller`.
pub fn live_of(manifest: &Value, i: usize) -> Value {
    let mut live = manifest.clone();
    let kind = live["kind"].as_str().unwrap_or_default().to_string();
    let group =
        plumbline::model::split_api_version(live["apiVersion"].as_str().unwrap_or_default())
            .0
            .to_string();
    plumbline::diff::defaults::apply_defaults(&group, &kind, &mut live);
    let meta = live["metadata"].as_object_mut().expect("metadata");
    meta.insert(
        "uid".into(),
        json!(format!("5b0c7c4e-2f0e-4d5c-9a43-{i:012}")),
    );
    meta.insert(
        "resourceVersion".into(),
        json!(format!("{}", 48_000_000 + i)),
    );
    meta.insert("creationTimestamp".into(), json!("2026-09-14T08:21:07Z"));
    meta.entry("labels").or_insert(json!({}))["app.kubernetes.io/instance"] = json!("fleet");
    meta.insert(
        "managedFields".into(),
        json!([{"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "argocd-controller",
                "operation": "Apply", "time": "2026-11-02T10:04:51Z",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/instance": {}}},
                             "f:spec": {"f:replicas": {}, "f:selector": {}}}},
               {"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager",
                "operation": "Update", "subresource": "status", "time": "2026-11-02T10:05:30Z",
                "fieldsV1": {"f:status": {"f:replicas": {}, "f:readyReplicas": {}}}}]),
    );
    if kind == "Deployment" {
        meta.insert("generation".into(), json!(3));
        live["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "3"});
        live["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        let replicas = live["spec"]["replicas"].clone();
        live["status"] = json!({"observedGeneration": 3, "replicas": replicas, "readyReplicas": replicas,
            "updatedReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                            "message": "Deployment has minimum availability.",
                            "lastTransitionTime": "2026-09-14T08:21:40Z", "lastUpdateTime": "2026-09-14T08:21:40Z"}]});
    }
    if kind == "Service" {
        let ip = format!("10.96.{}.{}", i / 250 % 250, i % 250 + 1);
        live["spec"]["clusterIP"] = json!(ip);
        live["spec"]["clusterIPs"] = json!([ip]);
        live["spec"]["ipFamilies"] = json!(["IPv4"]);
        live["status"] = json!({"loadBalancer": {}});
    }
    live
}

pub fn resource(value: Value) -> Resource {
    Resource::from_value(value).expect("generated objects are valid")
}

/// An app of `objects` resources (Deployments, Services, ConfigMaps in turn), as desired
/// and live; `drift_every` > 0 changes the image of every n-th Deployment.
pub fn app(
    objects: usize,
    config_size: usize,
    drift_every: usize,
) -> (Vec<Resource>, Vec<Resource>) {
    let mut desired = Vec::with_capacity(objects);
    let mut live = Vec::with_capacity(objects);
    for n in 0..objects {
        let i = n / 3;
        let manifest = match n % 3 {
            0 => deployment(i),
            1 => service(i),
            _ => config_map(i, config_size),
        };
        let mut object = live_of(&manifest, i);
        if drift_every > 0 && n % 3 == 0 && i % drift_every == 0 {
            object["spec"]["template"]["spec"]["containers"][0]["image"] =
                json!("registry.example.com/hotfix:debug");
        }
        desired.push(resource(manifest));
        live.push(resource(object));
    }
    (desired, live)
}
