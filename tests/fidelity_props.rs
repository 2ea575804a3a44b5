//! Property tests for drift fidelity: a Deployment-like manifest, and the object a server
//! would return for it (its defaults, canonical quantities, server metadata, managedFields,
//! status, list items in another order), must compare in sync; one real change must show.

use plumbline::config::Tracking;
use plumbline::diff::{defaults, diff_object, Settings, DEFAULT_APPLIERS};
use plumbline::model::{Resource, Status};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const IMAGES: &[&str] = &[
    "nginx",
    "nginx:1.27.0",
    "nginx:latest",
    "docker.io/library/redis:7.2",
    "ghcr.io/example/api:v1.4.2",
    "registry.example.com:5000/team/worker",
    "localhost/tools/debug:dev",
    "quay.io/example/exporter@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "ghcr.io/example/api:v2@sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
];

/// A CPU amount in millicores, spelled one of the ways a manifest may write it.
fn cpu() -> impl Strategy<Value = Value> {
    (1u64..8000, 0usize..6).prop_map(|(milli, spelling)| match spelling {
        0 => json!(format!("{milli}m")),
        1 if milli % 1000 == 0 => json!(milli / 1000),
        1 | 2 => serde_json::from_str(&decimal(milli, 3)).expect("a JSON number"),
        3 => json!(decimal(milli, 3)),
        4 => json!(format!("{milli}e-3")),
        _ => json!(format!("{}u", milli * 1000)),
    })
}

/// A memory amount, binary or decimal, in several spellings.
fn memory() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u64..4096, 0usize..5).prop_map(|(mi, spelling)| match spelling {
            0 => json!(format!("{mi}Mi")),
            1 => json!(format!("{}Ki", mi * 1024)),
            2 if mi % 1024 == 0 => json!(format!("{}Gi", mi / 1024)),
            2 if mi % 512 == 0 => json!(format!("{}Gi", decimal(mi * 1000 / 1024, 3))),
            2 | 3 => json!(mi * 1024 * 1024),
            _ => json!(format!("{}", mi * 1024 * 1024)),
        }),
        (1u64..4000, 0usize..4).prop_map(|(m, spelling)| match spelling {
            0 => json!(format!("{m}M")),
            1 => json!(format!("{}k", m * 1000)),
            2 => json!(format!("{m}e6")),
            _ => serde_json::from_str(&format!("{m}e6")).expect("a JSON number"),
        }),
    ]
}

/// `value / 10^scale` as a decimal string (`1500, 3` -> `1.5`).
fn decimal(value: u64, scale: u32) -> String {
    let unit = 10u64.pow(scale);
    let (whole, frac) = (value / unit, value % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

fn resources() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        (
            prop::option::of(cpu()),
            prop::option::of(memory()),
            prop::option::of(cpu()),
            prop::option::of(memory()),
        )
            .prop_map(|(rc, rm, lc, lm)| {
                let list = |c: Option<Value>, m: Option<Value>| {
                    let mut list = Map::new();
                    if let Some(c) = c {
                        list.insert("cpu".into(), c);
                    }
                    if let Some(m) = m {
                        list.insert("memory".into(), m);
                    }
                    list
                };
                let mut r = Map::new();
                let requests = list(rc, rm);
                let limits = list(lc, lm);
                if !requests.is_empty() {
                    r.insert("requests".into(), Value::Object(requests));
                }
                if !limits.is_empty() {
                    r.insert("limits".into(), Value::Object(limits));
                }
                Value::Object(r)
            }),
    )
}

fn probe(port: Option<u16>) -> impl Strategy<Value = Option<Value>> {
    prop::option::of((
        0usize..3,
        prop::option::of(0i64..5),
        prop::option::of(0i64..30),
        any::<bool>(),
    ))
    .prop_map(move |spec| {
        let (handler, timeout, period, with_path) = spec?;
        let mut p = match (handler, port) {
            (0, Some(port)) if with_path => {
                json!({"httpGet": {"path": "/healthz", "port": port}})
            }
            (0, Some(_)) => json!({"httpGet": {"port": "p0"}}),
            (1, Some(port)) => json!({"tcpSocket": {"port": port}}),
            _ => json!({"exec": {"command": ["cat", "/tmp/healthy"]}}),
        };
        // 0 is replaced by the server's default, as for an absent value.
        if let Some(t) = timeout {
            p["timeoutSeconds"] = json!(t);
        }
        if let Some(t) = period {
            p["periodSeconds"] = json!(t);
        }
        Some(p)
    })
}

fn container(index: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(IMAGES),
        prop::option::of(prop::sample::select(vec![
            "Always",
            "IfNotPresent",
            "Never",
            "",
        ])),
        prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec!["TCP", "UDP"])),
                any::<bool>(),
            ),
            0..3,
        ),
        prop::collection::vec((0usize..3, "[a-z0-9]{0,8}"), 0..4),
        resources(),
    )
        .prop_flat_map(move |(image, policy, ports, env, resources)| {
            let first_port = (!ports.is_empty()).then_some(8080 + index as u16 * 10);
            (
                Just((image, policy, ports, env, resources)),
                probe(first_port),
                probe(first_port),
            )
        })
        .prop_map(
            move |((image, policy, ports, env, resources), readiness, liveness)| {
                let mut c = Map::new();
                c.insert("name".into(), json!(format!("c{index}")));
                c.insert("image".into(), json!(image));
                if let Some(policy) = policy {
                    c.insert("imagePullPolicy".into(), json!(policy));
                }
                let ports: Vec<Value> = ports
                    .iter()
                    .enumerate()
                    .map(|(i, (protocol, named))| {
                        let mut p = json!({"containerPort": 8080 + index * 10 + i});
                        if let Some(protocol) = protocol {
                            p["protocol"] = json!(protocol);
                        }
                        if *named || i == 0 {
                            p["name"] = json!(format!("p{i}"));
                        }
                        p
                    })
                    .collect();
                if !ports.is_empty() {
                    c.insert("ports".into(), Value::Array(ports));
                }
                let env: Vec<Value> = env
                    .iter()
                    .enumerate()
                    .map(|(i, (form, value))| match form {
                        0 => json!({"name": format!("VAR_{i}"), "value": value}),
                        1 => json!({"name": format!("VAR_{i}"),
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
                        _ => json!({"name": format!("VAR_{i}"), "valueFrom": {"resourceFieldRef": {
                        "containerName": format!("c{index}"), "resource": "limits.memory"}}}),
                    })
                    .collect();
                if !env.is_empty() {
                    c.insert("env".into(), Value::Array(env));
                }
                if let Some(resources) = resources {
                    c.insert("resources".into(), resources);
                }
                if let Some(p) = readiness {
                    c.insert("readinessProbe".into(), p);
                }
                if let Some(p) = liveness {
                    c.insert("livenessProbe".into(), p);
                }
                Value::Object(c)
            },
        )
}

fn containers() -> impl Strategy<Value = Vec<Value>> {
    (1usize..4).prop_flat_map(|n| (0..n).map(container).collect::<Vec<_>>())
}

/// A Deployment as a team writes it.
fn manifest() -> impl Strategy<Value = Value> {
    (containers(), prop::option::of(0u32..6), any::<bool>()).prop_map(
        |(containers, replicas, recreate)| {
            let mut spec = json!({
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": containers}}
            });
            if let Some(replicas) = replicas {
                spec["replicas"] = json!(replicas);
            }
            if recreate {
                spec["strategy"] = json!({"type": "Recreate"});
            }
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                   "spec": spec})
        },
    )
}

/// How the server returns the object: defaults and canonical quantities, server metadata,
/// the last-applied annotation, managedFields, status, list items in another order, and
/// replicas an HPA chose when Git leaves them out.
fn served(manifest: &Value, order_seed: u64, hpa_replicas: u32, argo: bool) -> Value {
    let mut live = manifest.clone();
    defaults::apply_defaults("apps", "Deployment", &mut live);
    let mut applied = manifest.clone();
    applied["metadata"]["annotations"] = json!({});
    let last_applied = serde_json::to_string(&applied).expect("JSON") + "\n";
    let meta = live["metadata"].as_object_mut().expect("metadata");
    meta.insert("uid".into(), json!("5f0e2d8c-3b1a-4e6f-9d7c-2a1b0c9d8e7f"));
    meta.insert("resourceVersion".into(), json!("4815162342"));
    meta.insert("generation".into(), json!(3));
    meta.insert("creationTimestamp".into(), json!("2025-05-13T15:40:37Z"));
    meta.insert(
        "annotations".into(),
        json!({"deployment.kubernetes.io/revision": "3",
               "kubectl.kubernetes.io/last-applied-configuration": last_applied}),
    );
    if argo {
        meta["labels"]["app.kubernetes.io/instance"] = json!("shop");
    }
    meta.insert(
        "managedFields".into(),
        json!([
            {"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply",
             "operation": "Update", "time": "2025-05-13T15:40:37Z",
             "fieldsV1": {"f:metadata": {"f:annotations": {".": {},
                 "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {
                 "f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
                 "f:template": {"f:spec": {"f:dnsPolicy": {}, "f:restartPolicy": {}}}}}},
            {"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager",
             "operation": "Update", "subresource": "status", "time": "2025-05-13T15:41:02Z",
             "fieldsV1": {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}}
        ]),
    );
    live["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
    if manifest["spec"].get("replicas").is_none() {
        live["spec"]["replicas"] = json!(hpa_replicas);
    }
    live["status"] = json!({"observedGeneration": 3, "replicas": hpa_replicas,
        "updatedReplicas": hpa_replicas, "readyReplicas": hpa_replicas,
        "availableReplicas": hpa_replicas,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
    let mut seed = order_seed;
    let mut shuffle = |items: &mut Vec<Value>| {
        for i in (1..items.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            items.swap(i, (seed >> 33) as usize % (i + 1));
        }
    };
    let containers = live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers");
    for c in containers.iter_mut() {
        for list in ["env", "ports"] {
            if let Some(items) = c.get_mut(list).and_then(Value::as_array_mut) {
                shuffle(items);
            }
        }
    }
    shuffle(containers);
    live
}

fn verdict(desired: &Value, live: &Value) -> plumbline::diff::Verdict {
    let tracking = Tracking::default();
    let settings = Settings {
        tracking: &tracking,
        ignore: Vec::new(),
        appliers: DEFAULT_APPLIERS.iter().map(|a| a.to_string()).collect(),
        hash_key: None,
    };
    let desired = Resource::from_value(desired.clone()).expect("desired object");
    let live = Resource::from_value(live.clone()).expect("live object");
    diff_object(&desired, &live, "shop", &settings)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn served_object_is_in_sync(
        manifest in manifest(),
        order_seed in any::<u64>(),
        hpa_replicas in 1u32..20,
        argo in any::<bool>(),
    ) {
        let live = served(&manifest, order_seed, hpa_replicas, argo);
        let v = verdict(&manifest, &live);
        prop_assert_eq!(v.status, Status::InSync, "changes: {:?}\nlive: {}", v.changes, live);
    }

    #[test]
    fn a_changed_image_is_the_only_change(
        manifest in manifest(),
        order_seed in any::<u64>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut live = served(&manifest, order_seed, 3, false);
        let count = manifest["spec"]["template"]["spec"]["containers"].as_array().map_or(0, Vec::len);
        let target = pick.index(count);
        let name = format!("c{target}");
        let containers = live["spec"]["template"]["spec"]["containers"].as_array_mut().expect("containers");
        let c = containers.iter_mut().find(|c| c["name"] == name.as_str()).expect("container");
        c["image"] = json!("registry.example.com/hotfix/patched:9.9.9");
        let v = verdict(&manifest, &live);
        prop_assert_eq!(v.status, Status::Modified);
        let paths: Vec<&str> = v.changes.iter().map(|c| c.path.as_str()).collect();
        let expected = format!("/spec/template/spec/containers/{target}/image");
        prop_assert_eq!(paths, vec![expected.as_str()]);
    }
}
