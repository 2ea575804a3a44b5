//! Kustomize rendering: 200 overlays of a GitOps repository (each a base with a Deployment,
//! a Service and a ConfigMap; an overlay with namePrefix, labels, images, a
//! configMapGenerator, a strategic merge patch and a JSON 6902 patch), built by the native
//! engine and by the real one (kustomize's Go code in-process, when
//! `PLUMBLINE_KUSTOMIZE_ENGINE` names it: `scripts/test` downloads it to
//! `target/kustomize-engine/`). Prints the time of each for all 200 and the speed ratio.

#[path = "../tests/support/kustomize_engine.rs"]
mod kustomize_engine;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use plumbline::render::kustomize::native::{self, DirFiles};
use std::path::Path;
use std::time::{Duration, Instant};

const OVERLAYS: usize = 200;

fn write(root: &Path, relative: &str, content: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// `apps/app-NNN/{base,overlay}` for each overlay; returns the overlay directories.
fn generate(root: &Path) -> Vec<String> {
    (0..OVERLAYS)
        .map(|i| {
            let app = format!("app-{i:03}");
            let base = format!("apps/{app}/base");
            let overlay = format!("apps/{app}/overlay");
            write(
                root,
                &format!("{base}/kustomization.yaml"),
                "resources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n",
            );
            write(
                root,
                &format!("{base}/deployment.yaml"),
                &format!(
                    "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels: {{app: {app}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
        - name: {app}
          image: registry.example.com/{app}:1.0.{i}
          ports:
            - containerPort: 8080
          envFrom:
            - configMapRef:
                name: {app}-settings
            - configMapRef:
                name: {app}-env
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
"
                ),
            );
            write(
                root,
                &format!("{base}/service.yaml"),
                &format!(
                    "apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector: {{app: {app}}}
  ports:
    - name: http
      port: 80
      targetPort: 8080
"
                ),
            );
            write(
                root,
                &format!("{base}/configmap.yaml"),
                &format!(
                    "apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-settings
data:
  LOG_LEVEL: info
  SHARD: \"{i}\"
"
                ),
            );
            write(
                root,
                &format!("{overlay}/kustomization.yaml"),
                &format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: prod-
resources:
  - ../base
labels:
  - pairs:
      environment: prod
      team: team-{team}
    includeSelectors: true
images:
  - name: registry.example.com/{app}
    newTag: \"2.0.{i}\"
configMapGenerator:
  - name: {app}-env
    literals:
      - REGION=eu-west-1
      - INSTANCE={i}
patches:
  - path: resources.yaml
  - target:
      kind: Service
      name: {app}
    patch: |-
      - op: replace
        path: /spec/ports/0/port
        value: 8080
      - op: add
        path: /metadata/annotations
        value:
          example.com/exposed: \"true\"
",
                    team = i % 12
                ),
            );
            write(
                root,
                &format!("{overlay}/resources.yaml"),
                &format!(
                    "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
spec:
  replicas: 4
  template:
    spec:
      containers:
        - name: {app}
          resources:
            limits: {{memory: 512Mi}}
"
                ),
            );
            overlay
        })
        .collect()
}

/// Builds every overlay natively; returns the number of objects.
fn build_native(files: &DirFiles, overlays: &[String]) -> usize {
    overlays
        .iter()
        .map(|dir| {
            native::build(files, dir)
                .unwrap_or_else(|e| panic!("native build of {dir}: {e}"))
                .objects
                .len()
        })
        .sum()
}

/// Builds every overlay with the real engine; returns the bytes of YAML.
fn build_real(engine: &kustomize_engine::Engine, root: &Path, overlays: &[String]) -> usize {
    overlays
        .iter()
        .map(|dir| {
            engine
                .build(&root.join(dir))
                .unwrap_or_else(|e| panic!("real build of {dir}: {e}"))
                .len()
        })
        .sum()
}

/// The mean of a few timed passes after one untimed pass.
fn mean_time(mut pass: impl FnMut()) -> Duration {
    const PASSES: u32 = 3;
    pass();
    let started = Instant::now();
    for _ in 0..PASSES {
        pass();
    }
    started.elapsed() / PASSES
}

fn overlays(c: &mut Criterion) {
    let repo = tempfile::tempdir().expect("tempdir");
    let root = repo.path();
    let dirs = generate(root);
    let files = DirFiles::new(root).expect("the generated repository");
    let engine = kustomize_engine::engine();

    let objects = build_native(&files, &dirs);
    let native = mean_time(|| {
        std::hint::black_box(build_native(&files, &dirs));
    });
    eprintln!(
        "kustomize, {OVERLAYS} overlays ({objects} objects): native {:.1} ms",
        native.as_secs_f64() * 1e3
    );
    match engine {
        Some(engine) => {
            let real = mean_time(|| {
                std::hint::black_box(build_real(engine, root, &dirs));
            });
            let ratio = real.as_secs_f64() / native.as_secs_f64();
            let verdict = if ratio >= 1.0 {
                format!("native is {ratio:.1}x faster")
            } else {
                format!("native is {:.1}x slower", 1.0 / ratio)
            };
            eprintln!(
                "kustomize, {OVERLAYS} overlays: real engine {:.1} ms; {verdict}",
                real.as_secs_f64() * 1e3
            );
        }
        None => eprintln!(
            "kustomize: the real engine is not installed ({} unset; scripts/test downloads it), so only the native engine is measured",
            kustomize_engine::ENV
        ),
    }

    let mut group = c.benchmark_group("kustomize_200_overlays");
    // Whole passes take from milliseconds to seconds: a few flat samples are enough.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(OVERLAYS as u64));
    group.bench_function("native", |b| b.iter(|| build_native(&files, &dirs)));
    if let Some(engine) = engine {
        group.bench_function("real_engine", |b| {
            b.iter(|| build_real(engine, root, &dirs))
        });
    }
    group.finish();
}

criterion_group!(benches, overlays);
criterion_main!(benches);
