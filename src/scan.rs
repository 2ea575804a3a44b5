//! The orchestrator: the only module that knows the order of the stages of a scan.
//!
//! sources -> plan (apps x clusters) -> for each cluster, several at once: render -> live
//! -> diff -> policies; then history -> store.
//! A failing source, cluster or app is recorded and the rest of the scan goes on.

use crate::config::{AppConfig, ClusterAccess, Config, HelmConfig, IgnoreRule, RenderKind};
use crate::diff::{self, ignore::CompiledRule, redact::HashKey};
use crate::live::kube::Limits;
use crate::live::{ClusterError, Connection, LiveState, ReadPlan};
use crate::model::{Capabilities, ResourceKey};
use crate::model::{
    ClusterResult, CommitRef, Finding, ScanError, ScanResult, SourceResult, Stage, Status, Summary,
    TrailCommit,
};
use crate::notify;
use crate::policy::{self, PolicySet};
use crate::render::cache::{CacheStats, RenderCache};
use crate::render::{self, Rendered, Tree};
use crate::source::{history, Mirror, RepoFile};
use crate::store::{AppRecord, NotificationRecord, ScanRecord, Store, StoreError};
use globset::{Glob, GlobMatcher};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// How many commits the audit trail reaches back on a first scan.
pub const FIRST_SCAN_COMMITS: usize = 100;
/// How far back `last_commit` looks for the commit that last touched a file.
const LAST_COMMIT_DEPTH: usize = 10_000;

/// What the user asked of this scan beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub apps: Vec<String>,
    pub clusters: Vec<String>,
    /// Show progress on stderr.
    pub progress: bool,
    /// Record the scan in the database (`diff` looks without recording).
    pub record: bool,
    /// Only apps with `self_heal: true` (the fresh comparison `heal` acts on).
    pub self_heal_only: bool,
}

/// An app of the plan: one app config (or app_set expansion) on one cluster.
#[derive(Debug, Clone)]
pub struct PlannedApp {
    pub name: String,
    pub source: String,
    pub path: String,
    pub cluster: String,
    pub namespace: Option<String>,
    pub render: RenderKind,
    pub helm: Option<HelmConfig>,
    pub ignore: Vec<IgnoreRule>,
    pub self_heal: bool,
    pub prune: bool,
}

/// A finished scan: the result as stored, and the exit code that goes with it.
pub struct Outcome {
    pub result: ScanResult,
    /// The stored row hash and database, when the scan was recorded.
    pub row_hash: Option<String>,
    pub database: Option<PathBuf>,
    /// The desired objects of every app with `self_heal: true` that was compared: what
    /// self-heal applies, kept so it can act on this very comparison.
    pub heal_inputs: Vec<(PlannedApp, Vec<crate::model::Resource>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
}

/// The cache of Git mirrors: `$PLUMBLINE_CACHE`, else the user's cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLUMBLINE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("plumbline")
}

/// A source fetched for this scan.
struct FetchedSource {
    name: String,
    mirror: Mirror,
    commit: String,
    /// The commit's tree written out, made on first use by an external renderer.
    checkout: std::sync::OnceLock<Result<PathBuf, String>>,
}

impl Tree for FetchedSource {
    fn read_dir(&self, path: &str) -> Result<Vec<RepoFile>, String> {
        self.mirror
            .read_dir(&self.commit, path)
            .map_err(|e| e.to_string())
    }

    fn object_id(&self, path: &str) -> Result<Option<String>, String> {
        self.mirror
            .tree_id(&self.commit, path)
            .map_err(|e| e.to_string())
    }

    fn entry(&self, path: &str) -> Result<Option<crate::source::PathEntry>, String> {
        self.mirror
            .entry(&self.commit, path)
            .map_err(|e| e.to_string())
    }

    fn checkout(&self) -> Result<PathBuf, String> {
        self.checkout
            .get_or_init(|| write_checkout(&self.name, &self.mirror, &self.commit))
            .clone()
    }
}

/// Writes the tree of `commit` under the cache (once per commit: the directory is complete
/// or absent, as it is renamed into place). Symbolic links are not written, so an external
/// renderer cannot follow one out of the repository.
fn write_checkout(source: &str, mirror: &Mirror, commit: &str) -> Result<PathBuf, String> {
    let safe: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let root = cache_dir().join("checkouts");
    let target = root.join(format!("{safe}-{commit}"));
    if target.is_dir() {
        return Ok(target);
    }
    let files = mirror.read_dir(commit, "").map_err(|e| e.to_string())?;
    let staging = root.join(format!(".{safe}-{commit}-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        for file in files.iter().filter(|f| !f.is_symlink) {
            let path = staging.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &file.data)?;
        }
        std::fs::create_dir_all(&staging)?;
        std::fs::rename(&staging, &target)
    };
    match write() {
        Ok(()) => Ok(target),
        Err(_) if target.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(target)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(format!(
                "cannot write a checkout of {source} at {commit}: {e}"
            ))
        }
    }
}

/// Sources fetched, plan made, clusters connected: what every command that looks at apps
/// needs.
struct Prepared {
    sources: HashMap<String, FetchedSource>,
    source_results: Vec<SourceResult>,
    plan: Vec<PlannedApp>,
    /// Clusters the plan touches, in name order.
    cluster_names: Vec<String>,
    connections: HashMap<String, Connection>,
    cluster_failures: HashMap<String, ClusterError>,
    errors: Vec<ScanError>,
}

fn prepare(
    config: &Config,
    options: &ScanOptions,
    progress: &Progress,
) -> Result<Prepared, ScanFailure> {
    let app_filter = globs(&options.apps)?;
    let cluster_filter = globs(&options.clusters)?;
    let mut errors: Vec<ScanError> = Vec::new();

    progress.message("fetching sources");
    let (sources, source_results) = fetch_sources(config, &mut errors);

    let plan: Vec<PlannedApp> = plan(config, &sources, &mut errors)
        .into_iter()
        .filter(|a| matches_any(&app_filter, &a.name) && matches_any(&cluster_filter, &a.cluster))
        .filter(|a| a.self_heal || !options.self_heal_only)
        .collect();
    if plan.is_empty()
        && (!options.apps.is_empty() || !options.clusters.is_empty() || options.self_heal_only)
        && errors.is_empty()
    {
        let message = if options.self_heal_only {
            "no app with self_heal: true matches the --app filters"
        } else {
            "no app matches the --app/--cluster filters"
        };
        return Err(ScanFailure::Usage(message.into()));
    }

    progress.message("connecting to clusters");
    let mut cluster_names: Vec<String> = plan.iter().map(|a| a.cluster.clone()).collect();
    cluster_names.sort();
    cluster_names.dedup();
    let opened: Vec<(String, Result<Connection, ClusterError>)> =
        cluster_pool(config).install(|| {
            cluster_names
                .par_iter()
                .map(|name| (name.clone(), connect(config, name)))
                .collect()
        });
    let mut connections = HashMap::new();
    let mut cluster_failures = HashMap::new();
    for (name, opened) in opened {
        match opened {
            Ok(connection) => {
                connections.insert(name, connection);
            }
            Err(e) => {
                cluster_failures.insert(name, e);
            }
        }
    }
    Ok(Prepared {
        sources,
        source_results,
        plan,
        cluster_names,
        connections,
        cluster_failures,
        errors,
    })
}

fn connect(config: &Config, name: &str) -> Result<Connection, ClusterError> {
    let cluster = config
        .cluster(name)
        .ok_or_else(|| ClusterError::error(format!("cluster {name} is not configured")))?;
    Connection::open(&cluster.access, &limits(config))
}

/// Threads for connecting to, reading and comparing clusters: mostly waiting on API
/// servers, so as many as `live.clusters_at_once`, whatever the number of cores.
fn cluster_pool(config: &Config) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.live.clusters_at_once.max(1))
        .thread_name(|i| format!("plumbline-cluster-{i}"))
        .build()
        .unwrap_or_else(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap_or_else(|e| panic!("cannot start a thread: {e}"))
        })
}

/// The API limits of the configuration.
pub(crate) fn limits(config: &Config) -> Limits {
    let live = &config.live;
    Limits {
        qps: live.qps,
        burst: live.burst,
        concurrency: live.concurrency,
        timeout: std::time::Duration::from_secs(live.timeout_seconds),
        retries: live.retries,
        page_size: live.page_size,
    }
}

/// Fetches every source an app uses, each once, in parallel.
fn fetch_sources(
    config: &Config,
    errors: &mut Vec<ScanError>,
) -> (HashMap<String, FetchedSource>, Vec<SourceResult>) {
    let cache = cache_dir();
    let wanted_sources = sources_in_use(config);
    let fetched: Vec<(String, Result<FetchedSource, String>)> = config
        .sources
        .par_iter()
        .filter(|s| wanted_sources.contains(&s.name))
        .map(|source| {
            let fetched = Mirror::sync(&cache, &source.name, &source.url)
                .and_then(|mirror| {
                    let commit = mirror.resolve(source.revision.as_deref())?;
                    Ok(FetchedSource {
                        name: source.name.clone(),
                        mirror,
                        commit,
                        checkout: std::sync::OnceLock::new(),
                    })
                })
                .map_err(|e| e.to_string());
            (source.name.clone(), fetched)
        })
        .collect();
    let mut sources: HashMap<String, FetchedSource> = HashMap::new();
    let mut source_results = Vec::new();
    for (name, fetched) in fetched {
        let revision = config
            .sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.revision.clone())
            .unwrap_or_else(|| "HEAD".into());
        match fetched {
            Ok(f) => {
                source_results.push(SourceResult {
                    name: name.clone(),
                    revision,
                    commit: Some(f.commit.clone()),
                });
                sources.insert(name, f);
            }
            Err(message) => {
                source_results.push(SourceResult {
                    name: name.clone(),
                    revision,
                    commit: None,
                });
                errors.push(ScanError {
                    cluster: None,
                    app: None,
                    stage: Stage::Source,
                    message: format!("source {name}: {message}"),
                });
            }
        }
    }
    (sources, source_results)
}

/// Runs one full audit and, unless `options.record` is off, records it.
pub fn run(config: &Config, options: &ScanOptions) -> Result<Outcome, ScanFailure> {
    let started_at = now();
    let mut store = if options.record {
        Some(Store::open(&config.database)?)
    } else {
        None
    };
    let progress = Progress::new(options.progress);
    let policies = load_policies(config)?;
    let Prepared {
        sources,
        source_results,
        plan,
        cluster_names,
        connections,
        mut cluster_failures,
        mut errors,
    } = prepare(config, options, &progress)?;

    // Cluster by cluster, `live.clusters_at_once` at a time: render its apps against what
    // it says of kinds (scopes, served kinds), read what they need, compare them and check
    // the policies, then let its live objects and (but for self-heal) its desired objects
    // go, so that memory grows with `live.clusters_at_once`, not with the fleet.
    progress.message("rendering, reading and comparing clusters");
    let renderer = Renderer::new(config);
    let hash_key = match HashKey::load(&cache_dir()) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::warn!("no key for Secret value digests, so a drifted Secret value that changes again will not alert: {e}");
            None
        }
    };
    let mut jobs: HashMap<String, ClusterJob> = connections
        .into_iter()
        .map(|(name, connection)| {
            let job = ClusterJob {
                connection,
                apps: Vec::new(),
            };
            (name, job)
        })
        .collect();
    // Apps on a cluster that could not be connected are skipped.
    let mut unread = Vec::new();
    for (index, app) in plan.iter().enumerate() {
        match jobs.get_mut(&app.cluster) {
            Some(job) => job.apps.push(index),
            None => unread.push(index),
        }
    }
    let mut outcomes: Vec<Option<AppOutcome>> = plan.iter().map(|_| None).collect();
    let mut policy_stage = policies.as_ref().map(|set| PolicyStage::new(set, config));
    let mut evaluations: HashMap<String, policy::Evaluation> = HashMap::new();
    let compare = Compare {
        plan: &plan,
        sources: &sources,
        renderer: &renderer,
        config,
        hash_key: hash_key.as_ref(),
        progress: &progress,
        keep_status: policies.as_ref().is_some_and(PolicySet::reads_live_status),
    };
    let pool = cluster_pool(config);
    // At most one compared cluster waits for the policy stage besides the ones being read.
    let (sender, received) = std::sync::mpsc::sync_channel::<ClusterRead>(1);
    std::thread::scope(|scope| -> Result<(), ScanFailure> {
        let compare = &compare;
        scope.spawn(move || {
            pool.install(|| {
                jobs.into_par_iter()
                    .for_each_with(sender, |sender, (name, job)| {
                        let read = compare.cluster(name, job);
                        // The receiver is gone only when the scan failed already.
                        let _ = sender.send(read);
                    })
            })
        });
        for read in received {
            if let Some(stage) = policy_stage.as_mut() {
                let apps: Vec<(&PlannedApp, &AppOutcome)> = read
                    .apps
                    .iter()
                    .map(|(index, outcome)| (&plan[*index], outcome))
                    .collect();
                let evaluation =
                    stage.cluster(&read.name, &apps, read.live.as_ref().ok(), store.as_ref())?;
                evaluations.insert(read.name.clone(), evaluation);
            }
            if let Err(e) = read.live {
                cluster_failures.insert(read.name, e);
            }
            for (index, mut outcome) in read.apps {
                // Only self-heal acts on desired objects after this.
                if !plan[index].self_heal {
                    if let Some(rendered) = outcome.rendered.as_mut() {
                        rendered.objects = Vec::new();
                    }
                }
                outcomes[index] = Some(outcome);
            }
        }
        Ok(())
    })?;
    for index in unread {
        outcomes[index] = Some(compare.app(index, None, None));
    }
    let render_stats = renderer.finish();
    if let Some(stage) = policy_stage.as_mut() {
        for cluster in &cluster_names {
            if evaluations.contains_key(cluster) {
                continue;
            }
            let apps: Vec<(&PlannedApp, &AppOutcome)> = plan
                .iter()
                .zip(&outcomes)
                .filter(|(app, _)| &app.cluster == cluster)
                .filter_map(|(app, outcome)| Some((app, outcome.as_ref()?)))
                .collect();
            let evaluation = stage.cluster(cluster, &apps, None, store.as_ref())?;
            evaluations.insert(cluster.clone(), evaluation);
        }
    }
    progress.finish();

    let mut cluster_results = Vec::new();
    for name in &cluster_names {
        match cluster_failures.get(name) {
            Some(failure) => {
                errors.push(ScanError {
                    cluster: Some(name.clone()),
                    app: None,
                    stage: Stage::Live,
                    message: format!("cluster {name}: {}", failure.message),
                });
                cluster_results.push(ClusterResult {
                    name: name.clone(),
                    status: failure.status.to_string(),
                    error: Some(failure.message.clone()),
                });
            }
            None => cluster_results.push(ClusterResult {
                name: name.clone(),
                status: "ok".into(),
                error: None,
            }),
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    let mut heal_inputs = Vec::new();
    let mut app_records = Vec::new();
    let mut inputs_by_source: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let compared = plan
        .iter()
        .zip(outcomes)
        .filter_map(|(app, outcome)| Some((app, outcome?)));
    for (app, outcome) in compared {
        errors.extend(outcome.errors);
        if let Some(rendered) = &outcome.rendered {
            let mut inputs = rendered.inputs.clone();
            inputs.push(app.path.clone());
            inputs_by_source
                .entry(app.source.clone())
                .or_default()
                .push((app.name.clone(), inputs));
        }
        app_records.push(AppRecord {
            app: app.name.clone(),
            cluster: app.cluster.clone(),
            source: app.source.clone(),
            path: app.path.clone(),
            commit: sources.get(&app.source).map(|s| s.commit.clone()),
            status: outcome.status.to_string(),
            objects: outcome.objects,
        });
        if app.self_heal && outcome.status == "ok" {
            if let Some(rendered) = outcome.rendered {
                heal_inputs.push((app.clone(), rendered.objects));
            }
        }
        findings.extend(outcome.findings);
    }

    // Audit trail and last commits, one history walk per source.
    let mut trail: Vec<TrailCommit> = Vec::new();
    for (source_name, apps) in &inputs_by_source {
        let Some(source) = sources.get(source_name) else {
            continue;
        };
        let previous = match &store {
            Some(store) => store.previous_commit(source_name)?,
            None => None,
        };
        match audit_trail(
            previous.as_deref(),
            source_name,
            source,
            apps,
            &mut findings,
        ) {
            Ok(commits) => trail.extend(commits),
            Err(message) => errors.push(ScanError {
                cluster: None,
                app: None,
                stage: Stage::Source,
                message: format!("source {source_name}: history: {message}"),
            }),
        }
    }

    // The order the database returns them in, so a stored scan reads back identical.
    trail.sort_by(|a, b| {
        (&b.commit.committer_time, &a.commit.sha).cmp(&(&a.commit.committer_time, &b.commit.sha))
    });
    findings.sort_by(finding_order);
    // Policy results in the order of the clusters' names.
    let evaluations: Vec<policy::Evaluation> = cluster_names
        .iter()
        .filter_map(|cluster| evaluations.remove(cluster))
        .collect();
    let policy_results: Vec<_> = evaluations
        .iter()
        .flat_map(policy::audit::results)
        .collect();
    let expired_waivers = policy::audit::expired_waivers(&evaluations);
    let policy_rules = policies
        .as_ref()
        .map(policy::audit::rules)
        .unwrap_or_default();

    let mut summary = Summary::default();
    for finding in &findings {
        summary.count(finding.status);
    }
    summary.policy_violations = policy_results.iter().filter(|p| !p.waived).count();
    summary.errors = errors.len();
    summary.render_cache_hits = render_stats.hits;
    summary.render_cache_misses = render_stats.misses;
    let mut result = ScanResult {
        scan_id: 0,
        started_at,
        finished_at: now(),
        sources: source_results,
        clusters: cluster_results,
        summary,
        findings,
        policy_results,
        errors,
        commits: trail,
        expired_waivers,
        policies: policy_rules,
        heal_actions: Vec::new(),
    };
    let Some(store) = store.as_mut() else {
        return Ok(Outcome {
            result,
            row_hash: None,
            database: None,
            heal_inputs,
        });
    };
    let filters = describe_filters(options);
    let record = ScanRecord {
        result: &result,
        config_digest: &config_digest(config),
        filters: &filters,
        exit_code: if result.errors.is_empty() { 0 } else { 3 },
        apps: &app_records,
    };
    let (scan_id, row_hash) = store.save(&record)?;
    result.scan_id = scan_id;
    // Alerts: only a full scan speaks for every app (a filtered one would "resolve" the rest).
    let full_scan =
        options.apps.is_empty() && options.clusters.is_empty() && !options.self_heal_only;
    if full_scan && (config.notify.email.is_some() || config.notify.webhook.is_some()) {
        progress.message("sending alerts");
        send_alerts(store, config, &result);
    }
    Ok(Outcome {
        result,
        row_hash: Some(row_hash),
        database: Some(store.path().to_path_buf()),
        heal_inputs,
    })
}

/// Sends what changed since the last alert (new and resolved drift, clusters lost and back)
/// on each channel, merged with what an earlier failed delivery could not send, and records
/// every attempt. A failed delivery keeps its alert for the next scan; findings are stored
/// already, so nothing is lost.
fn send_alerts(store: &mut Store, config: &Config, result: &ScanResult) {
    let previous: Option<ScanResult> = store
        .alert_state("baseline")
        .ok()
        .flatten()
        .and_then(|text| notify::load_baseline(&text));
    let alert = notify::compute(previous.as_ref(), result);
    let mut baseline = notify::baseline(previous.as_ref(), result);
    baseline.findings.retain(|f| notify::is_drift(f.status));
    let mut state = vec![("baseline".to_string(), notify::save_baseline(&baseline))];
    let mut records = Vec::new();
    let hint = format!("plumbline report --scan {} --format html", result.scan_id);
    for channel in notify::CHANNELS {
        let key = format!("pending:{channel}");
        let pending: Option<notify::Alert> = store
            .alert_state(&key)
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok());
        let to_send = match pending {
            Some(pending) => notify::merge(pending, alert.clone()),
            None => alert.clone(),
        };
        match notify::deliver_channel(&config.notify, channel, &to_send, Some(&hint)) {
            None => state.push((key, None)),
            Some(delivery) => {
                if let Some(error) = &delivery.error {
                    tracing::warn!(
                        "{channel} alert not delivered (kept for the next scan): {error}"
                    );
                }
                records.push(NotificationRecord {
                    channel: channel.to_string(),
                    ok: delivery.ok,
                    attempts: delivery.attempts,
                    error: delivery.error.clone(),
                    headline: to_send.headline(),
                    sent_at: now(),
                });
                let keep = (!delivery.ok)
                    .then(|| serde_json::to_string(&to_send).ok())
                    .flatten();
                state.push((key, keep));
            }
        }
    }
    if let Err(e) = store.record_notifications(result.scan_id, &records, &state) {
        tracing::error!("alerts sent but not recorded: {e}");
    }
}

struct AppOutcome {
    status: &'static str,
    /// Desired objects rendered (kept when `rendered` lets them go).
    objects: usize,
    rendered: Option<Rendered>,
    findings: Vec<Finding>,
    errors: Vec<ScanError>,
}

/// Compares one rendered app with its cluster; an app whose source or cluster failed is
/// skipped (that failure is already recorded), one that failed to render is an error.
fn compare_app(
    app: &PlannedApp,
    rendered: Option<Result<Rendered, String>>,
    live: Option<&LiveState>,
    config: &Config,
    hash_key: Option<&HashKey>,
) -> AppOutcome {
    let fail = |stage: Stage, message: String| AppOutcome {
        status: "error",
        objects: 0,
        rendered: None,
        findings: Vec::new(),
        errors: vec![ScanError {
            cluster: Some(app.cluster.clone()),
            app: Some(app.name.clone()),
            stage,
            message,
        }],
    };
    let rendered = match rendered {
        Some(Ok(rendered)) => rendered,
        Some(Err(message)) => return fail(Stage::Render, message),
        None => {
            return AppOutcome {
                status: "skipped",
                objects: 0,
                rendered: None,
                findings: Vec::new(),
                errors: Vec::new(),
            }
        }
    };
    let Some(live) = live else {
        return AppOutcome {
            status: "skipped",
            objects: rendered.objects.len(),
            rendered: Some(rendered),
            findings: Vec::new(),
            errors: Vec::new(),
        };
    };
    let settings = match diff_settings(config, app, hash_key) {
        Ok(settings) => settings,
        Err(message) => return fail(Stage::Diff, message),
    };
    let findings = diff::diff_app(&app.name, &app.cluster, &rendered.objects, live, &settings);
    AppOutcome {
        status: "ok",
        objects: rendered.objects.len(),
        rendered: Some(rendered),
        findings,
        errors: Vec::new(),
    }
}

/// What the comparison of one app needs: the tracking, its ignore rules, the appliers.
/// Self-heal compares its dry runs with the same settings as the scan.
pub fn diff_settings<'a>(
    config: &'a Config,
    app: &PlannedApp,
    hash_key: Option<&'a HashKey>,
) -> Result<diff::Settings<'a>, String> {
    let mut rules = Vec::new();
    for rule in config.ignore.iter().chain(&app.ignore) {
        rules.push(CompiledRule::compile(rule).map_err(|e| format!("ignore rule: {e}"))?);
    }
    Ok(diff::Settings {
        tracking: &config.tracking,
        ignore: rules,
        appliers: config.appliers.clone(),
        hash_key,
    })
}

/// The policy packs the configuration names, compiled and self-tested; `None` when it names
/// none. A broken pack is a configuration error: nothing is scanned.
pub fn load_policies(config: &Config) -> Result<Option<PolicySet>, ScanFailure> {
    if config.policies.is_empty() {
        return Ok(None);
    }
    PolicySet::load(&config.policies)
        .map(Some)
        .map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            ScanFailure::Usage(format!("policy packs:\n{}", lines.join("\n")))
        })
}

/// The order of a scan's findings: cluster, app, then the object's key.
fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    (&a.cluster, &a.app, &a.group, &a.kind, &a.namespace, &a.name).cmp(&(
        &b.cluster,
        &b.app,
        &b.group,
        &b.kind,
        &b.namespace,
        &b.name,
    ))
}

/// A connected cluster and its apps (indexes in the plan), to render, read and compare.
struct ClusterJob {
    connection: Connection,
    apps: Vec<usize>,
}

/// A cluster read and compared: its live objects (or why they could not be read), kept
/// only until its policies are checked, and its apps' outcomes.
struct ClusterRead {
    name: String,
    live: Result<LiveState, ClusterError>,
    apps: Vec<(usize, AppOutcome)>,
}

/// What rendering and comparing apps needs besides the apps.
struct Compare<'a> {
    plan: &'a [PlannedApp],
    sources: &'a HashMap<String, FetchedSource>,
    renderer: &'a Renderer<'a>,
    config: &'a Config,
    hash_key: Option<&'a HashKey>,
    progress: &'a Progress,
    /// Whether a live policy reads objects' `status`, which reading otherwise leaves out.
    keep_status: bool,
}

impl Compare<'_> {
    /// Renders one cluster's apps, reads what they need (the kinds and namespaces of their
    /// objects, and the orphan kinds in their namespaces) and compares each; apps of a
    /// cluster that cannot be read are skipped. An app whose source could not be fetched
    /// is not rendered.
    fn cluster(&self, name: String, job: ClusterJob) -> ClusterRead {
        let capabilities = std::sync::OnceLock::new();
        let rendered: Vec<(usize, Option<Result<Rendered, String>>)> = job
            .apps
            .into_par_iter()
            .map(|index| {
                let app = &self.plan[index];
                let rendered = self.sources.get(&app.source).map(|source| {
                    self.renderer
                        .render_app(app, source, Some(&job.connection), &capabilities)
                });
                (index, rendered)
            })
            .collect();
        let mut read_plan = ReadPlan {
            tracking_selector: self.config.tracking.label.clone(),
            keep_status: self.keep_status,
            ..ReadPlan::default()
        };
        for (index, rendered) in &rendered {
            if let Some(Ok(rendered)) = rendered {
                let app = &self.plan[*index];
                read_plan.add_app(&rendered.objects, app.namespace.as_deref());
            }
        }
        let live = job.connection.read(&read_plan);
        let apps = rendered
            .into_par_iter()
            .map(|(index, rendered)| (index, self.app(index, rendered, live.as_ref().ok())))
            .collect();
        ClusterRead { name, live, apps }
    }

    fn app(
        &self,
        index: usize,
        rendered: Option<Result<Rendered, String>>,
        live: Option<&LiveState>,
    ) -> AppOutcome {
        let outcome = compare_app(
            &self.plan[index],
            rendered,
            live,
            self.config,
            self.hash_key,
        );
        self.progress.tick();
        outcome
    }
}

/// The policy stage, one cluster at a time: desired objects of every app, their live
/// state, orphans and unmanaged objects, with how long each drift has been open.
struct PolicyStage<'a> {
    set: &'a PolicySet,
    context: policy::Context,
}

impl<'a> PolicyStage<'a> {
    fn new(set: &'a PolicySet, config: &Config) -> PolicyStage<'a> {
        let mut context = policy::Context::new(chrono::Utc::now().date_naive());
        context.waivers = config.waivers.clone();
        context.drift_sla = config.drift_sla;
        PolicyStage { set, context }
    }

    /// Checks one cluster: its apps with their outcomes, and its live objects when it
    /// could be read.
    fn cluster(
        &mut self,
        cluster: &str,
        apps: &[(&PlannedApp, &AppOutcome)],
        live: Option<&LiveState>,
        store: Option<&Store>,
    ) -> Result<policy::Evaluation, ScanFailure> {
        let mut findings: Vec<&Finding> = apps
            .iter()
            .flat_map(|(_, outcome)| &outcome.findings)
            .collect();
        findings.sort_by(|a, b| finding_order(a, b));
        let drifted: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                matches!(
                    f.status,
                    Status::Modified | Status::Missing | Status::Orphaned
                )
            })
            .copied()
            .collect();
        let since = match store {
            Some(store) => store.drift_open_since(&drifted)?,
            None => HashMap::new(),
        };
        let now = chrono::Utc::now();
        let open_hours: HashMap<(String, ResourceKey), f64> = since
            .into_iter()
            .filter_map(|(key, first)| {
                let first = chrono::DateTime::parse_from_rfc3339(&first).ok()?;
                // Seen by an earlier scan: open for at least a second, even when both scans
                // started within the same second (times are stored to the second).
                let seconds = (now - first.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(1);
                Some((key, seconds as f64 / 3600.0))
            })
            .collect();
        let apps = apps
            .iter()
            .filter_map(|(app, outcome)| {
                Some(policy::audit::AppObjects {
                    app: &app.name,
                    namespace: app.namespace.as_deref(),
                    desired: &outcome.rendered.as_ref()?.objects,
                })
            })
            .collect();
        let input = policy::audit::ClusterInput {
            cluster,
            apps,
            live,
            findings,
            open_hours: &open_hours,
        };
        Ok(policy::audit::evaluate_cluster(
            self.set,
            &input,
            &mut self.context,
        ))
    }
}

/// Renders apps for one scan: the configured engines, each cluster's capabilities, and the
/// render cache when it can be opened (without it every app is rendered, nothing is lost).
struct Renderer<'a> {
    config: &'a Config,
    cache: Option<RenderCache>,
}

impl<'a> Renderer<'a> {
    fn new(config: &'a Config) -> Renderer<'a> {
        let engines = &config.renderers;
        render::process::configure(
            engines.processes,
            std::time::Duration::from_secs(engines.timeout_seconds),
        );
        let cache = if engines.cache.enabled {
            RenderCache::open(&cache_dir().join("render-cache.sqlite"), &engines.cache)
                .map_err(|e| tracing::warn!("{e}; rendering every app"))
                .ok()
        } else {
            None
        };
        Renderer { config, cache }
    }

    /// Renders one app from its source's commit and gives its objects their namespaces, by
    /// what its cluster's connection (if any) says of kinds. `capabilities` holds what the
    /// cluster serves, asked of it only when one of its apps is a Helm chart.
    fn render_app(
        &self,
        app: &PlannedApp,
        source: &FetchedSource,
        connection: Option<&Connection>,
        capabilities: &std::sync::OnceLock<Option<Capabilities>>,
    ) -> Result<Rendered, String> {
        let kind =
            render::resolve_kind(source, &app.path, app.render).map_err(|e| e.to_string())?;
        let capabilities = match (kind, connection) {
            (RenderKind::Helm, Some(connection)) => capabilities
                .get_or_init(|| connection.capabilities())
                .as_ref(),
            _ => None,
        };
        let request = render::Request {
            app: &app.name,
            path: &app.path,
            kind,
            namespace: app.namespace.as_deref(),
            helm: app.helm.as_ref(),
            engines: &self.config.renderers,
            capabilities,
        };
        let rendered = match &self.cache {
            Some(cache) => render::render_cached(source, &request, cache),
            None => render::render(source, &request),
        };
        let empty = LiveState::default();
        let scopes = connection.map_or(&empty, Connection::scopes);
        place(app, rendered.map_err(|e| e.to_string())?, scopes)
    }

    /// Trims the cache to its limits and gives this scan's hits and misses.
    fn finish(self) -> CacheStats {
        match self.cache {
            Some(cache) => {
                cache.evict();
                cache.stats()
            }
            None => CacheStats::default(),
        }
    }
}

/// Gives rendered objects their namespaces and drops duplicates.
fn place(app: &PlannedApp, mut rendered: Rendered, scopes: &LiveState) -> Result<Rendered, String> {
    let warnings = render::assign_namespaces(
        &mut rendered.objects,
        app.namespace.as_deref(),
        &|group, kind| scopes.namespaced(group, kind),
    );
    for warning in warnings.iter().chain(&rendered.warnings) {
        tracing::warn!(app = %app.name, cluster = %app.cluster, "{warning}");
    }
    dedupe(&mut rendered);
    Ok(rendered)
}

/// The desired objects of the selected apps, exactly as they are compared.
pub fn render_only(config: &Config, options: &ScanOptions) -> Result<Vec<AppRender>, ScanFailure> {
    let prepared = prepare(config, options, &Progress::new(false))?;
    for error in &prepared.errors {
        tracing::error!("{}", error.message);
    }
    for (name, failure) in &prepared.cluster_failures {
        tracing::warn!(
            "cluster {name}: {} (scopes of custom kinds unknown)",
            failure.message
        );
    }
    let renderer = Renderer::new(config);
    let capabilities: HashMap<&str, std::sync::OnceLock<Option<Capabilities>>> = prepared
        .connections
        .keys()
        .map(|name| (name.as_str(), std::sync::OnceLock::new()))
        .collect();
    let unknown = std::sync::OnceLock::new();
    let mut out = Vec::new();
    for app in &prepared.plan {
        let result = match prepared.sources.get(&app.source) {
            Some(source) => {
                let connection = prepared.connections.get(&app.cluster);
                let capabilities = capabilities.get(app.cluster.as_str()).unwrap_or(&unknown);
                renderer
                    .render_app(app, source, connection, capabilities)
                    .map(|r| r.objects)
            }
            None => Err(format!("source {} could not be fetched", app.source)),
        };
        out.push((app.clone(), result));
    }
    if out.is_empty() {
        return Err(ScanFailure::Usage("no app matches".into()));
    }
    Ok(out)
}

/// An app of the plan and its rendered objects, or why it could not be rendered.
pub type AppRender = (PlannedApp, Result<Vec<crate::model::Resource>, String>);

/// What `plumbline clusters` shows for one cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterCheck {
    pub name: String,
    pub kind: String,
    pub status: String,
    /// Objects in a snapshot; resource types served by an API server.
    pub objects: Option<usize>,
    pub version: Option<String>,
    pub user: Option<String>,
    pub can_list: Option<bool>,
    pub can_get: Option<bool>,
    /// Asked only when an app on the cluster has `self_heal: true`.
    pub can_patch: Option<bool>,
    pub detail: String,
}

/// Checks that every registered cluster can be read, and what the credentials may do.
pub fn check_clusters(config: &Config) -> Vec<ClusterCheck> {
    config
        .clusters
        .par_iter()
        .map(|cluster| {
            let mut check = ClusterCheck {
                name: cluster.name.clone(),
                kind: match &cluster.access {
                    ClusterAccess::Snapshot(_) => "snapshot".into(),
                    ClusterAccess::Kube { .. } => "api".into(),
                },
                status: "ok".into(),
                objects: None,
                version: None,
                user: None,
                can_list: None,
                can_get: None,
                can_patch: None,
                detail: String::new(),
            };
            let heals = config
                .apps
                .iter()
                .any(|a| a.cluster == cluster.name && a.self_heal);
            match Connection::open(&cluster.access, &limits(config)) {
                Ok(Connection::Snapshot(state)) => {
                    check.objects = Some(state.len());
                    if let ClusterAccess::Snapshot(dir) = &cluster.access {
                        check.detail = dir.display().to_string();
                    }
                }
                Ok(Connection::Api(api, _)) => {
                    check.objects = Some(api.served().count());
                    let probe = crate::live::kube::block_on(async {
                        let version = api.version().await;
                        let user = api.user().await;
                        let list = api.allowed("list").await;
                        let get = api.allowed("get").await;
                        let patch = if heals {
                            Some(api.allowed("patch").await)
                        } else {
                            None
                        };
                        (version, user, list, get, patch)
                    });
                    match probe {
                        Ok((version, user, list, get, patch)) => {
                            check.version = version.ok();
                            check.user = user;
                            check.can_list = list.ok();
                            check.can_get = get.ok();
                            check.can_patch = patch.and_then(Result::ok);
                            if check.can_list == Some(false) || check.can_get == Some(false) {
                                check.status = "error".into();
                                check.detail =
                                    "the credentials may not get and list every resource".into();
                            }
                        }
                        Err(e) => {
                            check.status = e.status.into();
                            check.detail = e.message;
                        }
                    }
                }
                Err(e) => {
                    check.status = e.status.into();
                    check.detail = e.message;
                }
            }
            check
        })
        .collect()
}

/// Two documents declaring the same object: the later one wins, as with `kubectl apply`, and
/// the duplicate is logged.
fn dedupe(rendered: &mut Rendered) {
    let mut seen: HashMap<crate::model::ResourceKey, usize> = HashMap::new();
    let mut objects: Vec<crate::model::Resource> = Vec::with_capacity(rendered.objects.len());
    for object in rendered.objects.drain(..) {
        match seen.get(&object.key) {
            Some(&index) => {
                tracing::warn!(
                    "{} is declared twice; the later declaration wins",
                    object.key
                );
                objects[index] = object;
            }
            None => {
                seen.insert(object.key.clone(), objects.len());
                objects.push(object);
            }
        }
    }
    rendered.objects = objects;
}

/// Expands `apps` and `app_sets` into the apps of this scan.
fn plan(
    config: &Config,
    sources: &HashMap<String, FetchedSource>,
    errors: &mut Vec<ScanError>,
) -> Vec<PlannedApp> {
    let mut plan: Vec<PlannedApp> = config.apps.iter().map(planned_from_app).collect();
    for set in &config.app_sets {
        let Some(source) = sources.get(&set.source) else {
            continue;
        };
        let directories = match source.mirror.list_dirs(&source.commit, &set.directories) {
            Ok(directories) => directories,
            Err(e) => {
                errors.push(ScanError {
                    cluster: None,
                    app: Some(set.name.clone()),
                    stage: Stage::Source,
                    message: format!("app_set {}: {e}", set.name),
                });
                continue;
            }
        };
        for cluster in config.clusters.iter().filter(|c| set.clusters.matches(c)) {
            for directory in &directories {
                match set.expand(directory, cluster) {
                    Ok((name, namespace)) => plan.push(PlannedApp {
                        name,
                        source: set.source.clone(),
                        path: directory.clone(),
                        cluster: cluster.name.clone(),
                        namespace,
                        render: set.render,
                        helm: set.helm.clone(),
                        ignore: set.ignore.clone(),
                        self_heal: set.self_heal,
                        prune: set.prune,
                    }),
                    Err(message) => errors.push(ScanError {
                        cluster: Some(cluster.name.clone()),
                        app: Some(set.name.clone()),
                        stage: Stage::Config,
                        message: format!("app_set {} for {directory}: {message}", set.name),
                    }),
                }
            }
        }
    }
    plan
}

fn planned_from_app(app: &AppConfig) -> PlannedApp {
    PlannedApp {
        name: app.name.clone(),
        source: app.source.clone(),
        path: app.path.clone(),
        cluster: app.cluster.clone(),
        namespace: app.namespace.clone(),
        render: app.render,
        helm: app.helm.clone(),
        ignore: app.ignore.clone(),
        self_heal: app.self_heal,
        prune: app.prune,
    }
}

fn sources_in_use(config: &Config) -> Vec<String> {
    config
        .apps
        .iter()
        .map(|a| a.source.clone())
        .chain(config.app_sets.iter().map(|s| s.source.clone()))
        .collect()
}

/// Commits since the previous scan touching each app's inputs, and the last commit of every
/// finding's Git file.
fn audit_trail(
    previous: Option<&str>,
    source_name: &str,
    source: &FetchedSource,
    apps: &[(String, Vec<String>)],
    findings: &mut [Finding],
) -> Result<Vec<TrailCommit>, String> {
    let commits = history::walk(&source.mirror, &source.commit, previous, FIRST_SCAN_COMMITS)
        .map_err(|e| e.to_string())?;
    let mut trail: Vec<TrailCommit> = Vec::new();
    for commit in &commits {
        let touched_apps: Vec<String> = apps
            .iter()
            .filter(|(_, inputs)| {
                inputs.iter().any(|input| {
                    commit.files.iter().any(|f| {
                        input.is_empty() || f == input || f.starts_with(&format!("{input}/"))
                    })
                })
            })
            .map(|(app, _)| app.clone())
            .collect();
        if !touched_apps.is_empty() {
            let mut apps = touched_apps;
            apps.sort();
            apps.dedup();
            trail.push(TrailCommit {
                source: source_name.to_string(),
                commit: commit.clone(),
                apps,
            });
        }
    }
    let app_names: std::collections::HashSet<&str> = apps.iter().map(|(a, _)| a.as_str()).collect();
    let mut files: Vec<String> = findings
        .iter()
        .filter(|f| app_names.contains(f.app.as_str()))
        .filter_map(|f| f.origin.as_ref().map(|o| o.file.clone()))
        .collect();
    files.sort();
    files.dedup();
    let last = history::last_commits(&source.mirror, &source.commit, &files, LAST_COMMIT_DEPTH)
        .map_err(|e| e.to_string())?;
    for finding in findings.iter_mut() {
        if !app_names.contains(finding.app.as_str()) {
            continue;
        }
        if let Some(commit) = finding.origin.as_ref().and_then(|o| last.get(&o.file)) {
            finding.last_commit = Some(CommitRef::from(commit));
        }
    }
    Ok(trail)
}

fn globs(patterns: &[String]) -> Result<Vec<GlobMatcher>, ScanFailure> {
    patterns
        .iter()
        .map(|p| {
            Glob::new(p)
                .map(|g| g.compile_matcher())
                .map_err(|e| ScanFailure::Usage(format!("invalid glob {p:?}: {e}")))
        })
        .collect()
}

fn matches_any(globs: &[GlobMatcher], value: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| g.is_match(value))
}

fn describe_filters(options: &ScanOptions) -> String {
    let mut parts = Vec::new();
    for app in &options.apps {
        parts.push(format!("--app {app}"));
    }
    for cluster in &options.clusters {
        parts.push(format!("--cluster {cluster}"));
    }
    if options.self_heal_only {
        parts.push("self_heal apps (heal)".into());
    }
    parts.join(" ")
}

/// SHA-256 of the configuration file, recorded with every scan as evidence of what ran.
pub fn config_digest(config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(&config.file).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// True when a finding's status is one `--fail-on` names.
pub fn fails_on(status: Status, fail_on: &str) -> bool {
    match fail_on {
        "modified" => status == Status::Modified,
        "missing" => status == Status::Missing,
        "orphaned" => status == Status::Orphaned,
        "any" => matches!(
            status,
            Status::Modified | Status::Missing | Status::Orphaned
        ),
        _ => false,
    }
}

/// Progress on stderr when it is a terminal; silent otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    fn message(&self, message: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
