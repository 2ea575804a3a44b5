//! Policy evaluation throughput: 10,000 objects as a scan of a large cluster produces them
//! (API-server defaults, status and managedFields included), against the baseline pack
//! (`baseline`: the target, under 2 s on two cores) and against both built-in packs as a
//! scan evaluates them (`builtin`). The packs are loaded, compiled and self-tested once,
//! outside the measurement; one iteration is one `evaluate` of the 10,000 objects,
//! dropping its result included.
//!
//! `policy` measures wall time with every core. On a machine shared with other work that
//! figure grows with the load, so `policy_cpu` also measures the CPU time of the process
//! on one thread, which the load affects far less: divided by 10,000 it is the CPU time
//! per object.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use plumbline::policy::{AuditFacts, Context, PolicySet, State, Subject};
use serde_json::{json, Value};

const OBJECTS: usize = 10_000;

fn deployment(i: usize) -> Value {
    let ns = format!("team-{}", i % 50);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": format!("svc-{i}"),
            "namespace": ns,
            "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "resourceVersion": "123456",
            "generation": 3,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": format!("svc-{i}"), "app.kubernetes.io/instance": "shop"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "managedFields": [{
                "manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
                "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}
            }]
        },
        "spec": {
            "replicas": 1 + i % 3,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": format!("svc-{i}")}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": format!("svc-{i}")}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": if i.is_multiple_of(7) { "registry.example.com/app:latest".to_string() } else { format!("registry.example.com/app:1.{i}") },
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }, {
                        "name": "proxy",
                        "image": "envoyproxy/envoy:v1.31.0",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "initContainers": [{
                        "name": "migrate", "image": "registry.example.com/migrate:2",
                        "imagePullPolicy": "IfNotPresent", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "default",
                    "serviceAccount": "default",
                    "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            }
        },
        "status": {
            "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
        }
    })
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("team-{}", i % 50)},
        "spec": {"type": if i.is_multiple_of(10) { "NodePort" } else { "ClusterIP" }, "clusterIP": "10.0.0.1",
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                 "selector": {"app": format!("svc-{i}")}, "sessionAffinity": "None"}
    })
}

fn config_map(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cfg-{i}"), "namespace": format!("team-{}", i % 50)},
        "data": {"app.properties": "a=1\nb=2\n"}
    })
}

/// 60% Deployments, 20% Services, 20% ConfigMaps.
fn objects() -> Vec<Value> {
    (0..OBJECTS)
        .map(|i| match i % 5 {
            0 => service(i),
            1 => config_map(i),
            _ => deployment(i),
        })
        .collect()
}

fn context() -> Context {
    let mut ctx = Context::new(chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default());
    let netpols: Vec<Value> = (0..25)
        .map(|n| {
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": format!("team-{n}")},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
        })
        .collect();
    let pdbs: Vec<Value> = (0..200)
        .map(|n| {
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": format!("svc-{n}"), "namespace": format!("team-{}", n % 50)},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": format!("svc-{n}")}}}})
        })
        .collect();
    ctx.inventory.insert(
        "prod".to_string(),
        HashMap::from([
            ("NetworkPolicy".to_string(), netpols),
            ("PodDisruptionBudget".to_string(), pdbs),
        ]),
    );
    ctx
}

/// CPU time used by all threads of the process.
struct ProcessCpu {
    wall: WallTime,
}

fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ProcessCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        process_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        process_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

struct Setup {
    baseline: PolicySet,
    builtin: PolicySet,
    objects: Vec<Value>,
    facts: AuditFacts,
    context: Context,
}

fn setup() -> Setup {
    let load = |result: Result<PolicySet, _>| match result {
        Ok(set) => set,
        Err(problems) => panic!("packs do not load: {problems:?}"),
    };
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/baseline.yaml");
    Setup {
        baseline: load(PolicySet::load(&[baseline])),
        builtin: load(PolicySet::builtin()),
        objects: objects(),
        facts: AuditFacts::default(),
        context: context(),
    }
}

impl Setup {
    fn subjects(&self) -> Vec<Subject<'_>> {
        self.objects
            .iter()
            .map(|o| Subject {
                app: "shop",
                cluster: "prod",
                state: State::Live,
                object: o,
                desired: Some(o),
                audit: &self.facts,
            })
            .collect()
    }
}

/// Evaluates both pack sets, on `pool` when given (else on every core).
fn run<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    setup: &Setup,
    pool: Option<&rayon::ThreadPool>,
    suffix: &str,
) {
    let subjects = setup.subjects();
    group.sample_size(10);
    group.throughput(Throughput::Elements(OBJECTS as u64));
    for (name, set) in [("baseline", &setup.baseline), ("builtin", &setup.builtin)] {
        group.bench_function(format!("{name}_10k_objects{suffix}"), |b| match pool {
            Some(pool) => b.iter(|| pool.install(|| set.evaluate(&subjects, &setup.context))),
            None => b.iter(|| set.evaluate(&subjects, &setup.context)),
        });
    }
}

fn wall(c: &mut Criterion) {
    let setup = setup();
    let mut group = c.benchmark_group("policy");
    run(&mut group, &setup, None, "");
    group.finish();
}

fn cpu(c: &mut Criterion<ProcessCpu>) {
    let setup = setup();
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool,
        Err(e) => panic!("one-thread pool: {e}"),
    };
    let mut group = c.benchmark_group("policy_cpu");
    run(&mut group, &setup, Some(&pool), "_one_thread");
    group.finish();
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ProcessCpu { wall: WallTime });
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
