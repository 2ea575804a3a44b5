//! Diff throughput: Deployment pairs per second on one core, and an Istio-sized app
//! (300+ objects, over 1 MB of YAML) diffed as one scan would.

mod fleet;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use plumbline::config::Tracking;
use plumbline::diff::{self, Settings};
use plumbline::live::LiveState;

fn settings(tracking: &Tracking) -> Settings<'_> {
    Settings {
        tracking,
        ignore: Vec::new(),
        appliers: diff::DEFAULT_APPLIERS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        hash_key: None,
    }
}

fn deployment_pairs(c: &mut Criterion) {
    let tracking = Tracking::default();
    let settings = settings(&tracking);
    let pairs: Vec<_> = (0..1000)
        .map(|i| {
            let manifest = fleet::deployment(i);
            let live = fleet::live_of(&manifest, i);
            (fleet::resource(manifest), fleet::resource(live))
        })
        .collect();
    let mut group = c.benchmark_group("deployment_pairs");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("in_sync", |b| {
        b.iter(|| {
            for (desired, live) in &pairs {
                let verdict = diff::diff_object(desired, live, "fleet", &settings);
                debug_assert_eq!(verdict.status, plumbline::model::Status::InSync);
                std::hint::black_box(verdict);
            }
        })
    });
    group.finish();
}

fn istio_sized_app(c: &mut Criterion) {
    let tracking = Tracking::default();
    let settings = settings(&tracking);
    let (desired, live_objects) = fleet::app(330, 4200, 25);
    let yaml: usize = desired
        .iter()
        .map(|r| serde_yaml::to_string(&r.body).map(|s| s.len()).unwrap_or(0))
        .sum();
    let live_yaml: usize = live_objects
        .iter()
        .map(|r| serde_yaml::to_string(&r.body).map(|s| s.len()).unwrap_or(0))
        .sum();
    eprintln!(
        "istio-sized app: {} objects, {yaml} bytes of Git YAML, {live_yaml} bytes live",
        desired.len()
    );
    let mut group = c.benchmark_group("istio_sized_app");
    group.bench_function("diff_app", |b| {
        b.iter_batched(
            || {
                let mut live = LiveState::default();
                for object in &live_objects {
                    live.insert(object.clone());
                }
                live
            },
            |live| {
                std::hint::black_box(diff::diff_app("fleet", "prod", &desired, &live, &settings))
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, deployment_pairs, istio_sized_app);
criterion_main!(benches);
