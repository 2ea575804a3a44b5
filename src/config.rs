//! `plumbline.yaml`: the configuration types, their defaults, and validation that points
//! at the line of every problem.
//!
//! The file is parsed into a small located tree (yaml-rust2's marked events) instead of
//! being deserialised with serde, because users need *every* problem at once, each with
//! its key path and line: a typo in `sefl_heal` must not silently disable self-heal,
//! and an unknown source name must say which one was meant.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use globset::{Glob, GlobBuilder, GlobMatcher};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Default SQLite database file, relative to the configuration file.
pub const DEFAULT_DATABASE: &str = "plumbline.db";
/// Default report directory, relative to the configuration file.
pub const DEFAULT_REPORTS_DIR: &str = "reports";
/// Default tracking label; Argo CD uses the same one, so existing fleets work unchanged.
pub const DEFAULT_TRACKING_LABEL: &str = "app.kubernetes.io/instance";
/// Default tracking annotation (Argo CD's annotation-based tracking).
pub const DEFAULT_TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
/// Default address of the daemon's health and metrics endpoints: loopback only, so
/// nothing is exposed until the operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Events a webhook may subscribe to (`notify.webhook.on`).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "new_drift",
    "resolved",
    "cluster_unreachable",
    "cluster_recovered",
    "heal",
];

/// The validated configuration. Every path in it is absolute (resolved against the
/// directory of the configuration file) except `file`, which is kept as given so that
/// messages show what the user typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The configuration file as given to [`load`] or [`parse`].
    pub file: PathBuf,
    /// Absolute directory of the configuration file; relative paths start here.
    pub base_dir: PathBuf,
    pub database: PathBuf,
    pub reports_dir: PathBuf,
    pub tracking: Tracking,
    pub sources: Vec<SourceConfig>,
    pub clusters: Vec<ClusterConfig>,
    pub apps: Vec<AppConfig>,
    pub app_sets: Vec<AppSetConfig>,
    /// Global ignore rules (top-level `ignore`), applied to every app.
    pub ignore: Vec<IgnoreRule>,
    /// Files or directories of policy packs (existence is checked by the policy loader).
    pub policies: Vec<PathBuf>,
    /// Cron expression with seconds, for `daemon`.
    pub schedule: Option<String>,
    pub daemon: DaemonConfig,
    pub notify: NotifyConfig,
    pub waivers: Vec<Waiver>,
    /// Field managers that apply Git's manifests (server-side apply): what they own and Git
    /// no longer has, a sync would remove.
    pub appliers: Vec<String>,
    /// How hard plumbline may press on each API server.
    pub live: LiveConfig,
    /// External render engines and the render cache.
    pub renderers: RenderersConfig,
    /// How long drift may stay open before the change-management policy flags it.
    pub drift_sla: std::time::Duration,
    /// The safety rails of self-heal.
    pub heal: HealConfig,
}

/// Kinds self-heal never writes unless `heal.deny_kinds` says otherwise: deleting or
/// rewriting them can take data or access with it, which no drift justifies.
pub const DEFAULT_DENY_KINDS: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
];

/// The safety rails of self-heal (`heal:`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealConfig {
    /// Take fields that another field manager owns (server-side apply `force`); off by
    /// default, so a field someone else owns fails with a conflict instead of being taken.
    pub force: bool,
    /// Objects written per app and heal run; the rest are skipped and recorded.
    pub max_objects_per_app: usize,
    /// Objects written per heal run, over all apps.
    pub max_objects_per_run: usize,
    /// `Kind` (any group) or `group/Kind` entries that are never written.
    pub deny_kinds: Vec<String>,
}

impl Default for HealConfig {
    fn default() -> Self {
        HealConfig {
            force: false,
            max_objects_per_app: 10,
            max_objects_per_run: 50,
            deny_kinds: DEFAULT_DENY_KINDS.iter().map(|k| k.to_string()).collect(),
        }
    }
}

impl HealConfig {
    /// True when `heal.deny_kinds` names this kind, alone or with its group (`apps/Deployment`).
    pub fn denies(&self, group: &str, kind: &str) -> bool {
        self.deny_kinds
            .iter()
            .any(|entry| match entry.split_once('/') {
                Some((g, k)) => g == group && k == kind,
                None => entry == kind,
            })
    }
}

/// External render engines and the render cache (`renderers:`).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderersConfig {
    /// The `helm` program: a path (relative to the configuration) or a name looked up on
    /// `PATH`.
    pub helm: String,
    /// The `kustomize` program for what the native engine does not support; `None` looks
    /// for `kustomize`, then `kubectl`, on `PATH`.
    pub kustomize: Option<String>,
    /// External renders running at once: each can take hundreds of MB.
    pub processes: usize,
    /// Seconds after which an external render is stuck, not slow.
    pub timeout_seconds: u64,
    pub cache: RenderCacheConfig,
}

/// Limits of the render cache (`renderers.cache`).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderCacheConfig {
    pub enabled: bool,
    /// Entries unused for this many days are dropped.
    pub max_age_days: u64,
    /// Least recently used entries are dropped beyond this size.
    pub max_size_mb: u64,
}

impl Default for RenderersConfig {
    fn default() -> Self {
        RenderersConfig {
            helm: "helm".into(),
            kustomize: None,
            processes: 2,
            timeout_seconds: 300,
            cache: RenderCacheConfig {
                enabled: true,
                max_age_days: 30,
                max_size_mb: 512,
            },
        }
    }
}

/// Limits for reading clusters through the Kubernetes API (`live:`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// Clusters read at once.
    pub clusters_at_once: usize,
    /// Requests per second to one API server, sustained.
    pub qps: f64,
    /// Requests to one API server above the sustained rate.
    pub burst: u32,
    /// LIST requests in flight at once on one cluster.
    pub concurrency: usize,
    /// Seconds allowed for one request.
    pub timeout_seconds: u64,
    /// Items per LIST page.
    pub page_size: u32,
    /// Retries of a request that failed in a way that may pass (429, 5xx, connection).
    pub retries: u32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            clusters_at_once: 8,
            qps: 50.0,
            burst: 100,
            concurrency: 8,
            timeout_seconds: 30,
            page_size: 500,
            retries: 5,
        }
    }
}

/// The appliers of the common GitOps tools, and plumbline's own. `kubectl` is the manager of
/// `kubectl apply --server-side` (only `Apply` entries are read, never kubectl's edits, which
/// have managers of their own such as `kubectl-edit`).
pub const DEFAULT_APPLIERS: &[&str] = &[
    "argocd-controller",
    "kustomize-controller",
    "helm",
    "plumbline",
    "kubectl-client-side-apply",
    "kubectl",
];

impl Config {
    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The cluster with this name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// How a live object is attributed to an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    pub label: String,
    pub annotation: String,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            label: DEFAULT_TRACKING_LABEL.to_string(),
            annotation: DEFAULT_TRACKING_ANNOTATION.to_string(),
        }
    }
}

/// A Git repository holding desired state.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    /// Remote URLs (`https://`, `ssh://`, `file://`, `user@host:path`) are kept as
    /// written; local paths are made absolute.
    pub url: String,
    /// Branch, tag or commit; `None` means the remote HEAD.
    pub revision: Option<String>,
}

/// A cluster to audit.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub name: String,
    pub access: ClusterAccess,
    pub labels: BTreeMap<String, String>,
}

/// Where a cluster's live state comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterAccess {
    /// An offline directory of `kubectl get -o yaml|json` dumps.
    Snapshot(PathBuf),
    /// A live API server; `None` fields fall back to `$KUBECONFIG`, `~/.kube/config`,
    /// then in-cluster configuration.
    Kube {
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
    },
}

/// One app: a path in a source, deployed to one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    pub name: String,
    pub source: String,
    /// Repo-relative, normalised: no leading `./` or `/`, no trailing `/`; `""` is the root.
    pub path: String,
    pub cluster: String,
    /// Namespace for namespaced objects that name none.
    pub namespace: Option<String>,
    pub render: RenderKind,
    pub helm: Option<HelmConfig>,
    pub self_heal: bool,
    pub prune: bool,
    pub ignore: Vec<IgnoreRule>,
}

/// How an app path is turned into objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderKind {
    /// Kustomize when a kustomization file is present, Helm for `Chart.yaml`, else plain.
    #[default]
    Auto,
    Plain,
    Kustomize,
    Helm,
}

impl RenderKind {
    /// The spelling used in `plumbline.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            RenderKind::Auto => "auto",
            RenderKind::Plain => "plain",
            RenderKind::Kustomize => "kustomize",
            RenderKind::Helm => "helm",
        }
    }

    const ALL: [RenderKind; 4] = [
        RenderKind::Auto,
        RenderKind::Plain,
        RenderKind::Kustomize,
        RenderKind::Helm,
    ];
}

impl fmt::Display for RenderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for `helm template`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HelmConfig {
    /// Release name; the app name when `None`.
    pub release: Option<String>,
    /// Values files, relative to the chart directory.
    pub values: Vec<String>,
    /// `--set` overrides.
    pub set: BTreeMap<String, String>,
}

/// A template producing one app per matching directory and cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSetConfig {
    /// Template, see [`AppSetConfig::expand`].
    pub name: String,
    pub source: String,
    /// Glob over repo-relative directories; `*` does not cross `/`.
    pub directories: String,
    pub clusters: ClusterSelector,
    /// Template, see [`AppSetConfig::expand`].
    pub namespace: Option<String>,
    pub render: RenderKind,
    pub helm: Option<HelmConfig>,
    pub self_heal: bool,
    pub prune: bool,
    pub ignore: Vec<IgnoreRule>,
}

/// Which clusters an app set targets.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterSelector {
    /// Clusters carrying all these labels (an empty map selects every cluster).
    Labels(BTreeMap<String, String>),
    /// Clusters with these names.
    Names(Vec<String>),
}

impl ClusterSelector {
    /// Whether `cluster` is selected.
    pub fn matches(&self, cluster: &ClusterConfig) -> bool {
        match self {
            ClusterSelector::Labels(want) => {
                want.iter().all(|(k, v)| cluster.labels.get(k) == Some(v))
            }
            ClusterSelector::Names(names) => names.contains(&cluster.name),
        }
    }
}

/// Differences that are expected and never drift. Selector fields are globs; `None`
/// matches anything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IgnoreRule {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// RFC 6901 pointers; `""` is the whole object.
    pub json_pointers: Vec<String>,
    pub jq_path_expressions: Vec<String>,
    /// Fields owned by these field managers are ignored.
    pub managed_fields_managers: Vec<String>,
}

/// The `daemon` section.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub listen: String,
    /// Environment variable holding the bearer token for the daemon API.
    pub api_token_env: Option<String>,
    /// How long a shutdown waits for a running scan before abandoning it.
    pub grace_seconds: u64,
}

/// Default shutdown grace period: Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: u64 = 30;

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: DEFAULT_LISTEN.to_string(),
            api_token_env: None,
            grace_seconds: DEFAULT_GRACE_SECONDS,
        }
    }
}

/// The `notify` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyConfig {
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// SMTP delivery of reports and alerts. Credentials are named by environment variable so
/// that the configuration file never holds secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// `host:port`.
    pub smtp: String,
    /// Defaults to `true` unless `tls` is set: mail is encrypted unless the user opts out.
    pub starttls: bool,
    /// Implicit TLS (usually port 465).
    pub tls: bool,
    pub from: String,
    pub to: Vec<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
}

/// An HTTP POST per event.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub url: String,
    /// Subset of [`WEBHOOK_EVENTS`]; all of them when the key is absent.
    pub on: Vec<String>,
    /// Environment variable holding the HMAC signing secret.
    pub secret_env: Option<String>,
}

/// An approved exception to a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiver {
    pub policy: String,
    /// Globs; `None` matches anything.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub reason: String,
    pub approved_by: String,
    /// Last day on which the waiver applies.
    pub expires: Option<chrono::NaiveDate>,
}

/// A duration as people write it: whole numbers with `d`, `h`, `m` or `s`, e.g. `1h30m`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut seconds: u64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let value: u64 = number.parse().ok()?;
        seconds = seconds.checked_add(value.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && !text.trim().is_empty()).then(|| std::time::Duration::from_secs(seconds))
}

/// One configuration problem, located as precisely as the YAML allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `apps[3].source`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration file, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) => Err(ConfigErrors {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line: None,
                path: String::new(),
                message: format!("cannot read the configuration: {e}"),
            }],
        }),
    }
}

/// Validates configuration text; `path` locates messages and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.to_path_buf();
    let problem = |line: usize, message: String| Problem {
        file: file.clone(),
        line: Some(line.max(1)),
        path: String::new(),
        message,
    };
    // Pulling events one by one (rather than `Parser::load`, which recurses per nesting
    // level) keeps hostile nesting from overflowing the stack.
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => builder.event(ev, mark),
            Err(e) => {
                return Err(ConfigErrors {
                    problems: vec![problem(e.marker().line(), e.info().to_string())],
                })
            }
        }
    }
    let mut problems: Vec<Problem> = builder
        .problems
        .iter()
        .map(|(line, msg)| problem(*line, msg.clone()))
        .collect();
    let root = builder.root.unwrap_or(Located {
        node: Node::Map(Vec::new()),
        line: 1,
    });

    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base_dir = match absolute.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut checker = Checker {
        file: path,
        base_dir: &base_dir,
        problems: Vec::new(),
    };
    let config = checker.config(&root);
    problems.append(&mut checker.problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(ConfigErrors { problems })
    }
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo
/// (optimal string alignment distance ≤ 3 and at most half the longer word).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(word, c);
        let longest = word.chars().count().max(c.chars().count());
        if d == 0 || d > 3 || d * 2 > longest {
            continue;
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// App set templates

/// A `{{...}}` variable of an app set template.
#[derive(Debug, Clone, PartialEq)]
enum Var {
    Path,
    PathSegment(usize),
    PathBasename,
    ClusterName,
    ClusterLabel(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(Var),
}

const TEMPLATE_VARS: &str = "{{path}}, {{path[N]}}, {{path.basename}}, {{cluster}}, \
                             {{cluster.name}} or {{cluster.labels.KEY}}";

fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed \"{{{{\" in template \"{template}\""));
        };
        pieces.push(Piece::Var(parse_var(after[..end].trim())?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn parse_var(v: &str) -> Result<Var, String> {
    match v {
        "path" => return Ok(Var::Path),
        "path.basename" => return Ok(Var::PathBasename),
        "cluster" | "cluster.name" => return Ok(Var::ClusterName),
        _ => {}
    }
    if let Some(index) = v.strip_prefix("path[").and_then(|r| r.strip_suffix(']')) {
        return index
            .trim()
            .parse()
            .map(Var::PathSegment)
            .map_err(|_| format!("invalid index in template variable \"{{{{{v}}}}}\""));
    }
    if let Some(key) = v.strip_prefix("cluster.labels.") {
        if !key.is_empty() {
            return Ok(Var::ClusterLabel(key.to_string()));
        }
    }
    Err(format!(
        "unknown template variable \"{{{{{v}}}}}\" (use {TEMPLATE_VARS})"
    ))
}

fn fill_template(template: &str, dir: &str, cluster: &ClusterConfig) -> Result<String, String> {
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = String::new();
    for piece in parse_template(template)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Var(Var::Path) => out.push_str(dir),
            Piece::Var(Var::PathBasename) => out.push_str(segments.last().copied().unwrap_or("")),
            Piece::Var(Var::PathSegment(n)) => match segments.get(n) {
                Some(s) => out.push_str(s),
                None => {
                    return Err(format!(
                        "{{{{path[{n}]}}}}: directory \"{dir}\" has only {} segment(s)",
                        segments.len()
                    ))
                }
            },
            Piece::Var(Var::ClusterName) => out.push_str(&cluster.name),
            Piece::Var(Var::ClusterLabel(key)) => match cluster.labels.get(&key) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(format!(
                        "{{{{cluster.labels.{key}}}}}: cluster \"{}\" has no label \"{key}\"",
                        cluster.name
                    ))
                }
            },
        }
    }
    Ok(out)
}

impl AppSetConfig {
    /// Fills the name and namespace templates for one matched directory (repo-relative)
    /// and cluster. `{{path[N]}}` is the N-th `/`-segment of `dir` (0-based). The results
    /// are checked to be a valid app name and namespace, because labels and paths come
    /// from outside the configuration.
    pub fn expand(
        &self,
        dir: &str,
        cluster: &ClusterConfig,
    ) -> Result<(String, Option<String>), String> {
        let dir = normalize_repo_path(dir)?;
        let name = fill_template(&self.name, &dir, cluster)?;
        if !valid_name(&name, true) {
            return Err(format!(
                "template \"{}\" gives \"{name}\" for directory \"{dir}\" and cluster \"{}\", \
                 which is not a valid app name",
                self.name, cluster.name
            ));
        }
        let namespace = match &self.namespace {
            Some(t) => {
                let ns = fill_template(t, &dir, cluster)?;
                if !valid_namespace(&ns) {
                    return Err(format!(
                        "template \"{t}\" gives \"{ns}\" for directory \"{dir}\" and cluster \
                         \"{}\", which is not a valid namespace",
                        cluster.name
                    ));
                }
                Some(ns)
            }
            None => None,
        };
        Ok((name, namespace))
    }

    /// The app this set produces for one matched directory and cluster.
    pub fn instantiate(&self, dir: &str, cluster: &ClusterConfig) -> Result<AppConfig, String> {
        let (name, namespace) = self.expand(dir, cluster)?;
        Ok(AppConfig {
            name,
            source: self.source.clone(),
            path: normalize_repo_path(dir)?,
            cluster: cluster.name.clone(),
            namespace,
            render: self.render,
            helm: self.helm.clone(),
            self_heal: self.self_heal,
            prune: self.prune,
            ignore: self.ignore.clone(),
        })
    }

    /// Matcher for `directories`; `*` stays within one path segment, `**` crosses them.
    pub fn directory_matcher(&self) -> Result<GlobMatcher, String> {
        directory_glob(&self.directories).map(|g| g.compile_matcher())
    }
}

fn directory_glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Small validators

/// Names of sources, clusters and apps end up in labels, file names and URLs, so they
/// follow DNS naming; apps may also use `_`.
fn valid_name(s: &str, allow_underscore: bool) -> bool {
    let ok_char = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || c == '.'
            || (allow_underscore && c == '_')
    };
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(ok_char)
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// A Kubernetes namespace is an RFC 1123 label.
fn valid_namespace(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Repo-relative path without `.` segments or leading/trailing slashes; `..` is refused
/// because it would leave the repository.
fn normalize_repo_path(p: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(format!("path \"{p}\" leaves the repository (\"..\")")),
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

fn json_pointer_problem(p: &str) -> Option<String> {
    if p.is_empty() {
        return None;
    }
    if !p.starts_with('/') {
        return Some(format!("JSON pointer \"{p}\" must start with \"/\""));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0') | Some('1')) {
            return Some(format!(
                "JSON pointer \"{p}\": \"~\" must be followed by 0 or 1"
            ));
        }
    }
    None
}

/// The cron parser answers with the expression, a caret line and a message; a message
/// on one line reads better in a list of problems.
fn cron_message(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().collect();
    let caret = lines.iter().position(|l| l.trim() == "^");
    let Some(caret) = caret else {
        return raw.split_whitespace().collect::<Vec<_>>().join(" ");
    };
    let column = lines[caret].find('^').map_or(1, |c| c + 1);
    let text = lines[caret + 1..].join(" ");
    let text = text.trim().trim_end_matches('.');
    if text.is_empty() {
        format!("cannot parse at column {column}")
    } else {
        format!("{text} (at column {column})")
    }
}

/// A URL or scp-like Git address (`git@host:repo`) as opposed to a local path.
fn is_remote_url(s: &str) -> bool {
    if s.contains("://") {
        return true;
    }
    match s.split_once(':') {
        Some((before, _)) => before.contains('@') && !before.contains('/'),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------
// Located YAML tree

#[derive(Debug)]
enum Node {
    /// `plain` distinguishes `null`/`~`/empty (no value) from the quoted string `"null"`.
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Located>),
    Map(Vec<Entry>),
    Alias,
}

#[derive(Debug)]
struct Located {
    node: Node,
    line: usize,
}

impl Located {
    fn is_null(&self) -> bool {
        matches!(&self.node, Node::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// A mapping entry; the key keeps its own line because block values start on the next.
#[derive(Debug)]
struct Entry {
    key: String,
    line: usize,
    value: Located,
}

enum Frame {
    Seq(usize, Vec<Located>),
    Map(usize, Vec<Entry>, PendingKey),
}

enum PendingKey {
    None,
    Key(String, usize),
    /// A non-scalar key was reported; its value is dropped.
    Invalid,
}

/// Deeper than any real configuration; bounds the recursion of dropping the tree.
const MAX_DEPTH: usize = 64;

/// Turns yaml-rust2's marked events into a [`Located`] tree.
#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    /// Open collections below [`MAX_DEPTH`] whose events are being dropped.
    skipped: usize,
    root: Option<Located>,
    documents: usize,
    problems: Vec<(usize, String)>,
}

impl TreeBuilder {
    fn complete(&mut self, node: Located) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => {
                match std::mem::replace(pending, PendingKey::None) {
                    PendingKey::None => match node.node {
                        Node::Scalar { value, .. } => *pending = PendingKey::Key(value, node.line),
                        _ => {
                            self.problems
                                .push((node.line, "mapping keys must be strings".to_string()));
                            *pending = PendingKey::Invalid;
                        }
                    },
                    PendingKey::Key(key, line) => entries.push(Entry {
                        key,
                        line,
                        value: node,
                    }),
                    PendingKey::Invalid => {}
                }
            }
        }
    }
}

impl TreeBuilder {
    fn event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line().max(1);
        if self.skipped > 0 {
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skipped += 1,
                Event::SequenceEnd | Event::MappingEnd => self.skipped -= 1,
                _ => {}
            }
            return;
        }
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            self.skipped = 1;
            self.problems
                .push((line, format!("nested deeper than {MAX_DEPTH} levels")));
            return;
        }
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    self.problems.push((
                        line,
                        "expected a single YAML document; later documents are ignored".to_string(),
                    ));
                }
            }
            Event::Scalar(value, style, _, _) => self.complete(Located {
                node: Node::Scalar {
                    value,
                    plain: style == TScalarStyle::Plain,
                },
                line,
            }),
            Event::Alias(_) => self.complete(Located {
                node: Node::Alias,
                line,
            }),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq(line, Vec::new())),
            Event::MappingStart(..) => {
                self.stack
                    .push(Frame::Map(line, Vec::new(), PendingKey::None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(line, items)) => Located {
                        node: Node::Seq(items),
                        line,
                    },
                    Some(Frame::Map(line, entries, _)) => Located {
                        node: Node::Map(entries),
                        line,
                    },
                    None => return,
                };
                self.complete(node);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation

/// A value together with where it was found.
struct Field<'t> {
    value: &'t Located,
    /// The key's line for mapping values, the item's own line for list items.
    line: usize,
    path: String,
}

/// A mapping whose keys were already checked against the known ones.
struct Obj<'t> {
    entries: &'t [Entry],
    line: usize,
    path: String,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'t> Obj<'t> {
    fn get(&self, key: &str) -> Option<Field<'t>> {
        self.entries.iter().find(|e| e.key == key).map(|e| Field {
            value: &e.value,
            line: e.line,
            path: join(&self.path, key),
        })
    }
}

/// Fields shared by `apps` and `app_sets`.
struct Deployment {
    render: RenderKind,
    helm: Option<HelmConfig>,
    self_heal: bool,
    prune: bool,
    ignore: Vec<IgnoreRule>,
}

struct Checker<'a> {
    file: &'a Path,
    base_dir: &'a Path,
    problems: Vec<Problem>,
}

const TOP_KEYS: &[&str] = &[
    "database",
    "reports_dir",
    "tracking",
    "sources",
    "clusters",
    "apps",
    "app_sets",
    "ignore",
    "policies",
    "schedule",
    "daemon",
    "notify",
    "waivers",
    "appliers",
    "live",
    "renderers",
    "drift_sla",
    "heal",
];
const SOURCE_KEYS: &[&str] = &["name", "url", "revision"];
const CLUSTER_KEYS: &[&str] = &["name", "kubeconfig", "context", "snapshot", "labels"];
const APP_KEYS: &[&str] = &[
    "name",
    "source",
    "path",
    "cluster",
    "namespace",
    "render",
    "helm",
    "self_heal",
    "prune",
    "ignore",
];
const APP_SET_KEYS: &[&str] = &[
    "name",
    "source",
    "directories",
    "clusters",
    "namespace",
    "render",
    "helm",
    "self_heal",
    "prune",
    "ignore",
];
const HELM_KEYS: &[&str] = &["release", "values", "set"];
const IGNORE_KEYS: &[&str] = &[
    "group",
    "kind",
    "namespace",
    "name",
    "json_pointers",
    "jq_path_expressions",
    "managed_fields_managers",
];
const WAIVER_KEYS: &[&str] = &[
    "policy",
    "kind",
    "namespace",
    "name",
    "reason",
    "approved_by",
    "expires",
];

impl<'a> Checker<'a> {
    fn report(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line: Some(line),
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn alias(&mut self, f: &Field) {
        self.report(
            f.line,
            &f.path,
            "YAML aliases are not supported; write the value out",
        );
    }

    /// A mapping with only `known` keys; unknown and duplicate keys are reported.
    fn object<'t>(&mut self, f: &Field<'t>, known: &[&str]) -> Option<Obj<'t>> {
        let entries: &'t [Entry] = match &f.value.node {
            Node::Map(entries) => entries,
            _ if f.value.is_null() => &[],
            Node::Alias => {
                self.alias(f);
                return None;
            }
            _ => {
                self.report(f.line, &f.path, "expected a map");
                return None;
            }
        };
        self.duplicates(entries, &f.path);
        for e in entries {
            if known.contains(&e.key.as_str()) {
                continue;
            }
            let path = join(&f.path, &e.key);
            let message = if e.key == "<<" {
                "YAML merge keys are not supported; write the keys out".to_string()
            } else {
                match suggest(&e.key, known.iter().copied()) {
                    Some(s) => format!("unknown key (did you mean \"{s}\"?)"),
                    None => format!("unknown key (known keys: {})", known.join(", ")),
                }
            };
            self.report(e.line, &path, message);
        }
        Some(Obj {
            entries,
            line: f.line,
            path: f.path.clone(),
        })
    }

    fn duplicates(&mut self, entries: &[Entry], path: &str) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for e in entries {
            if let Some(&first) = seen.get(e.key.as_str()) {
                self.report(
                    e.line,
                    &join(path, &e.key),
                    format!("duplicate key (first at line {first})"),
                );
            } else {
                seen.insert(&e.key, e.line);
            }
        }
    }

    /// The items of a list; `null` is an empty list.
    fn list<'t>(&mut self, f: &Field<'t>, what: &str) -> Vec<Field<'t>> {
        match &f.value.node {
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Field {
                    value: item,
                    line: item.line,
                    path: format!("{}[{i}]", f.path),
                })
                .collect(),
            _ if f.value.is_null() => Vec::new(),
            Node::Alias => {
                self.alias(f);
                Vec::new()
            }
            _ => {
                self.report(f.line, &f.path, format!("expected a list of {what}"));
                Vec::new()
            }
        }
    }

    /// A scalar as text (`replicas: 3` is the string "3"); `None` for null or wrong types.
    fn string(&mut self, f: &Field) -> Option<String> {
        match &f.value.node {
            _ if f.value.is_null() => None,
            Node::Scalar { value, .. } => Some(value.clone()),
            Node::Alias => {
                self.alias(f);
                None
            }
            _ => {
                self.report(f.line, &f.path, "expected a string");
                None
            }
        }
    }

    fn nonempty_string(&mut self, f: &Field) -> Option<String> {
        if f.value.is_null() {
            self.report(f.line, &f.path, "must not be empty");
            return None;
        }
        let s = self.string(f)?;
        if s.trim().is_empty() {
            self.report(f.line, &f.path, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn required(&mut self, obj: &Obj, key: &str) -> Option<String> {
        match obj.get(key) {
            Some(f) => self.nonempty_string(&f),
            None => {
                self.report(obj.line, &obj.path, format!("missing key \"{key}\""));
                None
            }
        }
    }

    fn optional_nonempty(&mut self, obj: &Obj, key: &str) -> Option<String> {
        obj.get(key)
            .filter(|f| !f.value.is_null())
            .and_then(|f| self.nonempty_string(&f))
    }

    fn env_name(&mut self, obj: &Obj, key: &str) -> Option<String> {
        let f = obj.get(key)?;
        let s = self.string(&f)?;
        if !valid_env_name(&s) {
            self.report(
                f.line,
                &f.path,
                format!("\"{s}\" is not an environment variable name"),
            );
        }
        Some(s)
    }

    fn boolean(&mut self, obj: &Obj, key: &str, default: bool) -> bool {
        let Some(f) = obj.get(key) else {
            return default;
        };
        match &f.value.node {
            _ if f.value.is_null() => default,
            Node::Scalar { value, plain: true } => match value.as_str() {
                "true" | "True" | "TRUE" => true,
                "false" | "False" | "FALSE" => false,
                _ => {
                    self.report(f.line, &f.path, "expected true or false");
                    default
                }
            },
            Node::Alias => {
                self.alias(&f);
                default
            }
            _ => {
                self.report(f.line, &f.path, "expected true or false");
                default
            }
        }
    }

    fn string_list(&mut self, f: &Field) -> Vec<String> {
        let mut out = Vec::new();
        for item in self.list(f, "strings") {
            if item.value.is_null() {
                self.report(item.line, &item.path, "expected a string");
            } else if let Some(s) = self.string(&item) {
                out.push(s);
            }
        }
        out
    }

    fn string_map(&mut self, f: &Field) -> BTreeMap<String, String> {
        let entries = match &f.value.node {
            Node::Map(entries) => entries,
            _ if f.value.is_null() => return BTreeMap::new(),
            Node::Alias => {
                self.alias(f);
                return BTreeMap::new();
            }
            _ => {
                self.report(f.line, &f.path, "expected a map of strings");
                return BTreeMap::new();
            }
        };
        self.duplicates(entries, &f.path);
        let mut out = BTreeMap::new();
        for e in entries {
            let item = Field {
                value: &e.value,
                line: e.line,
                path: join(&f.path, &e.key),
            };
            // An empty label value is legal in Kubernetes, so null reads as "".
            let value = if item.value.is_null() {
                Some(String::new())
            } else {
                self.string(&item)
            };
            if let Some(v) = value {
                out.insert(e.key.clone(), v);
            }
        }
        out
    }

    /// A local path: `~/` is the home directory, relative paths start at the
    /// configuration file's directory.
    fn resolve(&mut self, f: &Field, s: &str) -> Option<PathBuf> {
        let rest = if s == "~" {
            Some("")
        } else {
            s.strip_prefix("~/")
        };
        let joined = match rest {
            Some(rest) => match dirs::home_dir() {
                Some(home) => home.join(rest),
                None => {
                    self.report(
                        f.line,
                        &f.path,
                        format!("cannot expand \"~\" in \"{s}\": no home directory"),
                    );
                    return None;
                }
            },
            None => self.base_dir.join(s),
        };
        // Drop `.` segments so that paths compare and print cleanly.
        Some(
            joined
                .components()
                .filter(|c| !matches!(c, Component::CurDir))
                .collect(),
        )
    }

    fn path(&mut self, f: &Field) -> Option<PathBuf> {
        let s = self.nonempty_string(f)?;
        self.resolve(f, &s)
    }

    fn glob(&mut self, f: &Field, pattern: &str) {
        if let Err(e) = Glob::new(pattern) {
            self.report(f.line, &f.path, format!("invalid glob \"{pattern}\": {e}"));
        }
    }

    fn optional_glob(&mut self, obj: &Obj, key: &str) -> Option<String> {
        let f = obj.get(key)?;
        let s = self.string(&f)?;
        self.glob(&f, &s);
        Some(s)
    }

    // --- sections -----------------------------------------------------------------------

    fn config(&mut self, root: &Located) -> Config {
        let top = Field {
            value: root,
            line: root.line,
            path: String::new(),
        };
        let obj = self.object(&top, TOP_KEYS).unwrap_or(Obj {
            entries: &[],
            line: root.line,
            path: String::new(),
        });

        let database = self.file_setting(&obj, "database", DEFAULT_DATABASE);
        let reports_dir = self.file_setting(&obj, "reports_dir", DEFAULT_REPORTS_DIR);
        let tracking = self.tracking(&obj);
        let sources = self.sources(&obj);
        let clusters = self.clusters(&obj);
        let source_names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let cluster_names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
        let apps = self.apps(&obj, &source_names, &cluster_names);
        let app_sets = self.app_sets(&obj, &source_names, &cluster_names);
        let ignore = match obj.get("ignore") {
            Some(f) => self.ignore_rules(&f),
            None => Vec::new(),
        };
        let policies = match obj.get("policies") {
            Some(f) => self
                .list(&f, "paths")
                .iter()
                .filter_map(|item| self.path(item))
                .collect(),
            None => Vec::new(),
        };
        let schedule = self.schedule(&obj);
        let daemon = self.daemon(&obj);
        let notify = self.notify(&obj);
        let waivers = self.waivers(&obj);
        let live = self.live(&obj);
        let renderers = self.renderers(&obj);
        let drift_sla = self.drift_sla(&obj);
        let heal = self.heal(&obj);
        let appliers = match obj.get("appliers") {
            Some(f) => self.string_list(&f),
            None => DEFAULT_APPLIERS.iter().map(|s| s.to_string()).collect(),
        };

        Config {
            file: self.file.to_path_buf(),
            base_dir: self.base_dir.to_path_buf(),
            database,
            reports_dir,
            tracking,
            sources,
            clusters,
            apps,
            app_sets,
            ignore,
            policies,
            schedule,
            daemon,
            notify,
            waivers,
            appliers,
            live,
            renderers,
            drift_sla,
            heal,
        }
    }

    fn heal(&mut self, top: &Obj) -> HealConfig {
        let mut heal = HealConfig::default();
        let Some(f) = top.get("heal") else {
            return heal;
        };
        let keys = [
            "force",
            "max_objects_per_app",
            "max_objects_per_run",
            "deny_kinds",
        ];
        let Some(obj) = self.object(&f, &keys) else {
            return heal;
        };
        heal.force = self.boolean(&obj, "force", heal.force);
        heal.max_objects_per_app =
            self.positive(&obj, "max_objects_per_app", heal.max_objects_per_app);
        heal.max_objects_per_run =
            self.positive(&obj, "max_objects_per_run", heal.max_objects_per_run);
        if let Some(f) = obj.get("deny_kinds") {
            let kinds = self.string_list(&f);
            for kind in &kinds {
                let name = kind.rsplit('/').next().unwrap_or_default();
                let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name.chars().all(|c| c.is_ascii_alphanumeric())
                    && kind.matches('/').count() <= 1;
                if !valid {
                    self.report(
                        f.line,
                        &f.path,
                        format!("\"{kind}\" is not a Kind or group/Kind"),
                    );
                }
            }
            heal.deny_kinds = kinds;
        }
        heal
    }

    fn drift_sla(&mut self, top: &Obj) -> std::time::Duration {
        let default = std::time::Duration::from_secs(24 * 3600);
        let Some(f) = top.get("drift_sla") else {
            return default;
        };
        let Some(text) = self.string(&f) else {
            return default;
        };
        match parse_duration(&text) {
            Some(duration) => duration,
            None => {
                self.report(
                    f.line,
                    &f.path,
                    format!("invalid duration \"{text}\" (e.g. 24h, 90m, 2d, 1h30m)"),
                );
                default
            }
        }
    }

    fn renderers(&mut self, top: &Obj) -> RenderersConfig {
        let mut renderers = RenderersConfig::default();
        let Some(f) = top.get("renderers") else {
            return renderers;
        };
        let keys = ["helm", "kustomize", "processes", "timeout_seconds", "cache"];
        let Some(obj) = self.object(&f, &keys) else {
            return renderers;
        };
        if let Some(helm) = obj.get("helm").and_then(|f| self.program(&f)) {
            renderers.helm = helm;
        }
        renderers.kustomize = obj.get("kustomize").and_then(|f| self.program(&f));
        renderers.processes = self.positive(&obj, "processes", renderers.processes);
        renderers.timeout_seconds =
            self.positive(&obj, "timeout_seconds", renderers.timeout_seconds);
        if let Some(f) = obj.get("cache") {
            let keys = ["enabled", "max_age_days", "max_size_mb"];
            if let Some(cache) = self.object(&f, &keys) {
                let limits = &mut renderers.cache;
                limits.enabled = self.boolean(&cache, "enabled", limits.enabled);
                limits.max_age_days = self.positive(&cache, "max_age_days", limits.max_age_days);
                limits.max_size_mb = self.positive(&cache, "max_size_mb", limits.max_size_mb);
            }
        }
        renderers
    }

    /// A program: a bare name stays a name to look up on `PATH`, anything with a `/` is a
    /// path relative to the configuration file.
    fn program(&mut self, f: &Field) -> Option<String> {
        let value = self.nonempty_string(f)?;
        if value.contains('/') {
            self.resolve(f, &value)
                .map(|p| p.to_string_lossy().into_owned())
        } else {
            Some(value)
        }
    }

    fn live(&mut self, top: &Obj) -> LiveConfig {
        let mut live = LiveConfig::default();
        let Some(f) = top.get("live") else {
            return live;
        };
        let keys = [
            "clusters_at_once",
            "qps",
            "burst",
            "concurrency",
            "timeout_seconds",
            "page_size",
            "retries",
        ];
        let Some(obj) = self.object(&f, &keys) else {
            return live;
        };
        live.clusters_at_once = self.positive(&obj, "clusters_at_once", live.clusters_at_once);
        live.qps = self.positive(&obj, "qps", live.qps);
        live.burst = self.positive(&obj, "burst", live.burst);
        live.concurrency = self.positive(&obj, "concurrency", live.concurrency);
        live.timeout_seconds = self.positive(&obj, "timeout_seconds", live.timeout_seconds);
        live.page_size = self.positive(&obj, "page_size", live.page_size);
        if let Some(f) = obj.get("retries") {
            let count = match &f.value.node {
                Node::Scalar { value, plain: true } => value.parse::<u32>().ok(),
                _ => None,
            };
            match count {
                Some(n) => live.retries = n,
                None => self.report(f.line, &f.path, "expected a whole number of retries"),
            }
        }
        live
    }

    /// A number greater than zero.
    fn positive<T>(&mut self, obj: &Obj, key: &str, default: T) -> T
    where
        T: std::str::FromStr + PartialOrd + Default + Copy,
    {
        let Some(f) = obj.get(key) else {
            return default;
        };
        match &f.value.node {
            Node::Scalar { value, plain: true } => match value.parse::<T>() {
                Ok(n) if n > T::default() => n,
                _ => {
                    self.report(
                        f.line,
                        &f.path,
                        format!("expected a number greater than 0, not \"{value}\""),
                    );
                    default
                }
            },
            _ => {
                self.report(f.line, &f.path, "expected a number greater than 0");
                default
            }
        }
    }

    fn file_setting(&mut self, obj: &Obj, key: &str, default: &str) -> PathBuf {
        let fallback = self.base_dir.join(default);
        match obj.get(key) {
            Some(f) => self.path(&f).unwrap_or(fallback),
            None => fallback,
        }
    }

    fn tracking(&mut self, top: &Obj) -> Tracking {
        let mut tracking = Tracking::default();
        let Some(f) = top.get("tracking") else {
            return tracking;
        };
        if let Some(obj) = self.object(&f, &["label", "annotation"]) {
            if let Some(label) = self.optional_nonempty(&obj, "label") {
                tracking.label = label;
            }
            if let Some(annotation) = self.optional_nonempty(&obj, "annotation") {
                tracking.annotation = annotation;
            }
        }
        tracking
    }

    /// Validates a name and reports duplicates against `seen` (name -> first line).
    fn name(
        &mut self,
        obj: &Obj,
        what: &str,
        allow_underscore: bool,
        seen: &mut HashMap<String, usize>,
    ) -> Option<String> {
        let name = self.required(obj, "name")?;
        let line = obj.get("name").map_or(obj.line, |f| f.line);
        let path = join(&obj.path, "name");
        if !valid_name(&name, allow_underscore) {
            let chars = if allow_underscore {
                "lowercase letters, digits, \"-\", \".\" and \"_\""
            } else {
                "lowercase letters, digits, \"-\" and \".\""
            };
            self.report(
                line,
                &path,
                format!(
                    "\"{name}\" is not a valid {what} name (use {chars}, starting and ending \
                     with a letter or digit)"
                ),
            );
        }
        if let Some(first) = seen.get(&name) {
            self.report(
                line,
                &path,
                format!("duplicate {what} name \"{name}\" (first defined at line {first})"),
            );
        } else {
            seen.insert(name.clone(), line);
        }
        Some(name)
    }

    fn sources(&mut self, top: &Obj) -> Vec<SourceConfig> {
        let Some(f) = top.get("sources") else {
            return Vec::new();
        };
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for item in self.list(&f, "sources") {
            let Some(obj) = self.object(&item, SOURCE_KEYS) else {
                continue;
            };
            let name = self.name(&obj, "source", false, &mut seen);
            let url = self.required(&obj, "url").and_then(|url| {
                if is_remote_url(&url) {
                    Some(url)
                } else {
                    let uf = obj.get("url")?;
                    self.resolve(&uf, &url)
                        .map(|p| p.to_string_lossy().into_owned())
                }
            });
            let revision = self.optional_nonempty(&obj, "revision");
            if let (Some(name), Some(url)) = (name, url) {
                out.push(SourceConfig {
                    name,
                    url,
                    revision,
                });
            }
        }
        out
    }

    fn clusters(&mut self, top: &Obj) -> Vec<ClusterConfig> {
        let Some(f) = top.get("clusters") else {
            return Vec::new();
        };
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for item in self.list(&f, "clusters") {
            let Some(obj) = self.object(&item, CLUSTER_KEYS) else {
                continue;
            };
            let name = self.name(&obj, "cluster", false, &mut seen);
            let kubeconfig = obj.get("kubeconfig").and_then(|f| self.path(&f));
            let context = self.optional_nonempty(&obj, "context");
            let snapshot = obj.get("snapshot").map(|f| (f.line, self.path(&f)));
            let labels = obj
                .get("labels")
                .map(|f| self.string_map(&f))
                .unwrap_or_default();
            let access = match snapshot {
                Some((line, snapshot)) => {
                    if obj.get("kubeconfig").is_some() || obj.get("context").is_some() {
                        self.report(
                            line,
                            &join(&obj.path, "snapshot"),
                            "\"snapshot\" cannot be combined with \"kubeconfig\" or \"context\" \
                             (a cluster is either offline or live)",
                        );
                    }
                    snapshot.map(ClusterAccess::Snapshot)
                }
                None => Some(ClusterAccess::Kube {
                    kubeconfig,
                    context,
                }),
            };
            if let (Some(name), Some(access)) = (name, access) {
                out.push(ClusterConfig {
                    name,
                    access,
                    labels,
                });
            }
        }
        out
    }

    /// A reference to a source or cluster that must exist.
    fn reference(&mut self, obj: &Obj, key: &str, what: &str, names: &[&str]) -> Option<String> {
        let value = self.required(obj, key)?;
        if !names.contains(&value.as_str()) {
            let line = obj.get(key).map_or(obj.line, |f| f.line);
            self.report(
                line,
                &join(&obj.path, key),
                format!(
                    "no {what} named \"{value}\"{}",
                    did_you_mean(suggest(&value, names.iter().copied()))
                ),
            );
        }
        Some(value)
    }

    fn namespace(&mut self, obj: &Obj) -> Option<String> {
        let f = obj.get("namespace")?;
        let ns = self.nonempty_string(&f)?;
        if !valid_namespace(&ns) {
            self.report(
                f.line,
                &f.path,
                format!(
                    "\"{ns}\" is not a valid namespace (lowercase letters, digits and \"-\", \
                     at most 63 characters)"
                ),
            );
        }
        Some(ns)
    }

    fn deployment(&mut self, obj: &Obj) -> Deployment {
        let render = match obj.get("render") {
            Some(f) => self.render(&f),
            None => RenderKind::Auto,
        };
        let helm = obj.get("helm").and_then(|f| {
            if matches!(render, RenderKind::Plain | RenderKind::Kustomize) {
                self.report(
                    f.line,
                    &f.path,
                    format!("helm settings need render: helm or auto (render is {render})"),
                );
            }
            self.helm(&f)
        });
        let self_heal = self.boolean(obj, "self_heal", false);
        let prune = self.boolean(obj, "prune", false);
        let ignore = match obj.get("ignore") {
            Some(f) => self.ignore_rules(&f),
            None => Vec::new(),
        };
        Deployment {
            render,
            helm,
            self_heal,
            prune,
            ignore,
        }
    }

    fn render(&mut self, f: &Field) -> RenderKind {
        let Some(s) = self.string(f) else {
            return RenderKind::Auto;
        };
        if let Some(kind) = RenderKind::ALL.into_iter().find(|k| k.as_str() == s) {
            return kind;
        }
        let names = RenderKind::ALL.map(RenderKind::as_str);
        self.report(
            f.line,
            &f.path,
            format!(
                "unknown renderer \"{s}\" (expected auto, plain, kustomize or helm){}",
                did_you_mean(suggest(&s, names))
            ),
        );
        RenderKind::Auto
    }

    fn helm(&mut self, f: &Field) -> Option<HelmConfig> {
        let obj = self.object(f, HELM_KEYS)?;
        Some(HelmConfig {
            release: self.optional_nonempty(&obj, "release"),
            values: obj
                .get("values")
                .map(|f| self.string_list(&f))
                .unwrap_or_default(),
            set: obj
                .get("set")
                .map(|f| self.string_map(&f))
                .unwrap_or_default(),
        })
    }

    fn apps(&mut self, top: &Obj, sources: &[&str], clusters: &[&str]) -> Vec<AppConfig> {
        let Some(f) = top.get("apps") else {
            return Vec::new();
        };
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for item in self.list(&f, "apps") {
            let Some(obj) = self.object(&item, APP_KEYS) else {
                continue;
            };
            let name = self.name(&obj, "app", true, &mut seen);
            let source = self.reference(&obj, "source", "source", sources);
            let cluster = self.reference(&obj, "cluster", "cluster", clusters);
            let path = match obj.get("path") {
                None => {
                    self.report(obj.line, &obj.path, "missing key \"path\"");
                    None
                }
                // `path: .` or `path: /` is the repository root, so "" is fine here.
                Some(pf) => self
                    .string(&pf)
                    .and_then(|p| match normalize_repo_path(&p) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            self.report(pf.line, &pf.path, e);
                            None
                        }
                    })
                    .or_else(|| pf.value.is_null().then(String::new)),
            };
            let namespace = self.namespace(&obj);
            let d = self.deployment(&obj);
            if let (Some(name), Some(source), Some(cluster), Some(path)) =
                (name, source, cluster, path)
            {
                out.push(AppConfig {
                    name,
                    source,
                    path,
                    cluster,
                    namespace,
                    render: d.render,
                    helm: d.helm,
                    self_heal: d.self_heal,
                    prune: d.prune,
                    ignore: d.ignore,
                });
            }
        }
        out
    }

    fn template(&mut self, obj: &Obj, key: &str, required: bool) -> Option<String> {
        let t = if required {
            self.required(obj, key)?
        } else {
            self.optional_nonempty(obj, key)?
        };
        if let Err(e) = parse_template(&t) {
            let line = obj.get(key).map_or(obj.line, |f| f.line);
            self.report(line, &join(&obj.path, key), e);
        }
        Some(t)
    }

    fn app_sets(&mut self, top: &Obj, sources: &[&str], clusters: &[&str]) -> Vec<AppSetConfig> {
        let Some(f) = top.get("app_sets") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in self.list(&f, "app sets") {
            let Some(obj) = self.object(&item, APP_SET_KEYS) else {
                continue;
            };
            let name = self.template(&obj, "name", true);
            let source = self.reference(&obj, "source", "source", sources);
            let directories = self.required(&obj, "directories").and_then(|d| {
                let line = obj.get("directories").map_or(obj.line, |f| f.line);
                let path = join(&obj.path, "directories");
                let d = match normalize_repo_path(&d) {
                    Ok(d) => d,
                    Err(e) => {
                        self.report(line, &path, e);
                        return None;
                    }
                };
                match directory_glob(&d) {
                    Ok(_) => Some(d),
                    Err(e) => {
                        self.report(line, &path, format!("invalid glob: {e}"));
                        None
                    }
                }
            });
            let selector = self.selector(&obj, clusters);
            let namespace = self.template(&obj, "namespace", false);
            let d = self.deployment(&obj);
            if let (Some(name), Some(source), Some(directories), Some(clusters)) =
                (name, source, directories, selector)
            {
                out.push(AppSetConfig {
                    name,
                    source,
                    directories,
                    clusters,
                    namespace,
                    render: d.render,
                    helm: d.helm,
                    self_heal: d.self_heal,
                    prune: d.prune,
                    ignore: d.ignore,
                });
            }
        }
        out
    }

    fn selector(&mut self, obj: &Obj, clusters: &[&str]) -> Option<ClusterSelector> {
        let Some(f) = obj.get("clusters") else {
            self.report(obj.line, &obj.path, "missing key \"clusters\"");
            return None;
        };
        match &f.value.node {
            Node::Seq(_) => {
                let mut names = Vec::new();
                for item in self.list(&f, "cluster names") {
                    let Some(name) = self.nonempty_string(&item) else {
                        continue;
                    };
                    if !clusters.contains(&name.as_str()) {
                        self.report(
                            item.line,
                            &item.path,
                            format!(
                                "no cluster named \"{name}\"{}",
                                did_you_mean(suggest(&name, clusters.iter().copied()))
                            ),
                        );
                    }
                    names.push(name);
                }
                Some(ClusterSelector::Names(names))
            }
            Node::Map(_) => Some(ClusterSelector::Labels(self.string_map(&f))),
            _ => {
                self.report(
                    f.line,
                    &f.path,
                    "expected a label selector (a map) or a list of cluster names",
                );
                None
            }
        }
    }

    fn ignore_rules(&mut self, f: &Field) -> Vec<IgnoreRule> {
        let mut out = Vec::new();
        for item in self.list(f, "ignore rules") {
            let Some(obj) = self.object(&item, IGNORE_KEYS) else {
                continue;
            };
            let group = self.optional_glob(&obj, "group");
            let kind = self.optional_glob(&obj, "kind");
            let namespace = self.optional_glob(&obj, "namespace");
            let name = self.optional_glob(&obj, "name");
            let mut json_pointers = Vec::new();
            if let Some(pf) = obj.get("json_pointers") {
                for p in self.list(&pf, "JSON pointers") {
                    if p.value.is_null() {
                        self.report(p.line, &p.path, "expected a string");
                        continue;
                    }
                    let Some(s) = self.string(&p) else { continue };
                    if let Some(problem) = json_pointer_problem(&s) {
                        self.report(p.line, &p.path, problem);
                    }
                    json_pointers.push(s);
                }
            }
            let mut strings = |key: &str| match obj.get(key) {
                Some(f) => self.string_list(&f),
                None => Vec::new(),
            };
            let jq_path_expressions = strings("jq_path_expressions");
            let managed_fields_managers = strings("managed_fields_managers");
            out.push(IgnoreRule {
                group,
                kind,
                namespace,
                name,
                json_pointers,
                jq_path_expressions,
                managed_fields_managers,
            });
        }
        out
    }

    fn schedule(&mut self, top: &Obj) -> Option<String> {
        let f = top.get("schedule")?;
        let s = self.string(&f)?;
        if let Err(e) = cron::Schedule::from_str(&s) {
            let said = cron_message(&e.to_string());
            let hint = if s.split_whitespace().count() == 5 {
                "; plumbline schedules have 6 or 7 fields, starting with seconds"
            } else {
                ""
            };
            self.report(
                f.line,
                &f.path,
                format!("invalid cron expression \"{s}\": {said}{hint}"),
            );
        }
        Some(s)
    }

    fn daemon(&mut self, top: &Obj) -> DaemonConfig {
        let mut daemon = DaemonConfig::default();
        let Some(f) = top.get("daemon") else {
            return daemon;
        };
        let Some(obj) = self.object(&f, &["listen", "api_token_env", "grace_seconds"]) else {
            return daemon;
        };
        if let Some(lf) = obj.get("listen") {
            if let Some(listen) = self.nonempty_string(&lf) {
                if listen.parse::<SocketAddr>().is_err() {
                    self.report(
                        lf.line,
                        &lf.path,
                        format!("\"{listen}\" is not a socket address (e.g. 127.0.0.1:9464)"),
                    );
                }
                daemon.listen = listen;
            }
        }
        daemon.api_token_env = self.env_name(&obj, "api_token_env");
        daemon.grace_seconds = self.positive(&obj, "grace_seconds", daemon.grace_seconds);
        daemon
    }

    fn notify(&mut self, top: &Obj) -> NotifyConfig {
        let mut notify = NotifyConfig::default();
        let Some(f) = top.get("notify") else {
            return notify;
        };
        let Some(obj) = self.object(&f, &["email", "webhook"]) else {
            return notify;
        };
        if let Some(ef) = obj.get("email") {
            notify.email = self.email(&ef);
        }
        if let Some(wf) = obj.get("webhook") {
            notify.webhook = self.webhook(&wf);
        }
        notify
    }

    fn email(&mut self, f: &Field) -> Option<EmailConfig> {
        const KEYS: &[&str] = &[
            "smtp",
            "starttls",
            "tls",
            "from",
            "to",
            "username_env",
            "password_env",
        ];
        let obj = self.object(f, KEYS)?;
        let smtp = self.required(&obj, "smtp");
        if let (Some(smtp), Some(sf)) = (&smtp, obj.get("smtp")) {
            let ok = smtp
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                self.report(
                    sf.line,
                    &sf.path,
                    format!("expected host:port, got \"{smtp}\""),
                );
            }
        }
        let tls = self.boolean(&obj, "tls", false);
        let starttls = self.boolean(&obj, "starttls", !tls);
        if tls && starttls {
            let line = obj.get("starttls").map_or(obj.line, |f| f.line);
            self.report(
                line,
                &join(&obj.path, "starttls"),
                "choose either starttls or tls, not both",
            );
        }
        let from = self.required(&obj, "from");
        if let (Some(from), Some(ff)) = (&from, obj.get("from")) {
            if !from.contains('@') {
                self.report(
                    ff.line,
                    &ff.path,
                    format!("\"{from}\" is not an email address"),
                );
            }
        }
        let to = match obj.get("to") {
            None => {
                self.report(obj.line, &obj.path, "missing key \"to\"");
                Vec::new()
            }
            Some(tf) => {
                let items = self.list(&tf, "email addresses");
                let mut to = Vec::new();
                for item in &items {
                    let Some(addr) = self.nonempty_string(item) else {
                        continue;
                    };
                    if !addr.contains('@') {
                        self.report(
                            item.line,
                            &item.path,
                            format!("\"{addr}\" is not an email address"),
                        );
                    }
                    to.push(addr);
                }
                if (items.is_empty() && matches!(tf.value.node, Node::Seq(_))) || tf.value.is_null()
                {
                    self.report(tf.line, &tf.path, "must name at least one recipient");
                }
                to
            }
        };
        let username_env = self.env_name(&obj, "username_env");
        let password_env = self.env_name(&obj, "password_env");
        if username_env.is_some() != password_env.is_some() {
            self.report(
                obj.line,
                &obj.path,
                "username_env and password_env must be given together",
            );
        }
        Some(EmailConfig {
            smtp: smtp?,
            starttls,
            tls,
            from: from?,
            to,
            username_env,
            password_env,
        })
    }

    fn webhook(&mut self, f: &Field) -> Option<WebhookConfig> {
        let obj = self.object(f, &["url", "on", "secret_env"])?;
        let url = self.required(&obj, "url");
        if let (Some(url), Some(uf)) = (&url, obj.get("url")) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.report(
                    uf.line,
                    &uf.path,
                    format!("\"{url}\" is not an http:// or https:// URL"),
                );
            }
        }
        let on = match obj.get("on") {
            None => WEBHOOK_EVENTS.iter().map(|s| s.to_string()).collect(),
            Some(of) => {
                let mut on = Vec::new();
                for item in self.list(&of, "events") {
                    let Some(event) = self.nonempty_string(&item) else {
                        continue;
                    };
                    if !WEBHOOK_EVENTS.contains(&event.as_str()) {
                        self.report(
                            item.line,
                            &item.path,
                            format!(
                                "unknown event \"{event}\" (expected {}){}",
                                WEBHOOK_EVENTS.join(", "),
                                did_you_mean(suggest(&event, WEBHOOK_EVENTS.iter().copied()))
                            ),
                        );
                    }
                    on.push(event);
                }
                on
            }
        };
        let secret_env = self.env_name(&obj, "secret_env");
        Some(WebhookConfig {
            url: url?,
            on,
            secret_env,
        })
    }

    fn waivers(&mut self, top: &Obj) -> Vec<Waiver> {
        let Some(f) = top.get("waivers") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in self.list(&f, "waivers") {
            let Some(obj) = self.object(&item, WAIVER_KEYS) else {
                continue;
            };
            let policy = self.required(&obj, "policy");
            let kind = self.optional_glob(&obj, "kind");
            let namespace = self.optional_glob(&obj, "namespace");
            let name = self.optional_glob(&obj, "name");
            let reason = self.required(&obj, "reason");
            let approved_by = self.required(&obj, "approved_by");
            let mut expires = None;
            if let Some(ef) = obj.get("expires") {
                if let Some(s) = self.string(&ef) {
                    match chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                        Ok(d) => expires = Some(d),
                        Err(_) => self.report(
                            ef.line,
                            &ef.path,
                            format!("expected a date as YYYY-MM-DD, got \"{s}\""),
                        ),
                    }
                }
            }
            if let (Some(policy), Some(reason), Some(approved_by)) = (policy, reason, approved_by) {
                out.push(Waiver {
                    policy,
                    kind,
                    namespace,
                    name,
                    reason,
                    approved_by,
                    expires,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"database: plumbline.db            # SQLite file; created and migrated on first use
reports_dir: reports-out          # where HTML/JSON reports are written
tracking:                         # how a live object is attributed to an app
  label: app.kubernetes.io/instance        # default; Argo CD's default too
  annotation: argocd.argoproj.io/tracking-id # also honoured when present (format app:group/Kind:namespace/name)
sources:
  - name: platform
    url: https://git.example.com/platform/gitops.git   # or a local path, or file://
    revision: main                # branch, tag or commit; default: the remote HEAD
clusters:
  - name: prod-eu
    kubeconfig: ~/.kube/config    # optional; default $KUBECONFIG, then ~/.kube/config, then in-cluster
    context: prod-eu              # optional
    labels: {env: prod, region: eu}
  - name: staging
    snapshot: snapshots/staging   # offline cluster: a directory of dumps (section 4)
apps:
  - name: web
    source: platform
    path: apps/web/overlays/prod
    cluster: prod-eu
    namespace: web                # namespace for namespaced objects that name none
    render: auto                  # auto | plain | kustomize | helm
    helm: {release: web, values: [values-prod.yaml]}
    self_heal: false
    ignore:                       # differences that are expected, never drift
      - {kind: Deployment, name: "*", json_pointers: [/spec/replicas]}
app_sets:                         # one app per matching directory x cluster
  - name: "{{path[1]}}-{{cluster}}"   # also {{path}}, {{path.basename}}, {{cluster.labels.KEY}}
    source: platform
    directories: apps/*/overlays/prod
    clusters: {env: prod}         # cluster label selector, or a list of names
    namespace: "{{path[1]}}"
policies: [policies/]             # files or directories of policy packs
schedule: "0 */15 * * * *"        # cron (with seconds), for `daemon`
daemon: {listen: "0.0.0.0:9464", api_token_env: PLUMBLINE_API_TOKEN}
notify:
  email: {smtp: smtp.example.com:587, starttls: true, from: plumbline@example.com, to: [sre@example.com], username_env: SMTP_USER, password_env: SMTP_PASS}
  webhook: {url: https://hooks.example.com/x, on: [new_drift, resolved]}
"#;

    /// Minimal valid prefix that other tests extend.
    const BASE: &str = "\
sources:
  - name: platform
    url: https://git.example.com/x.git
clusters:
  - name: prod-eu
    labels: {env: prod, region: eu}
  - name: staging
    snapshot: snap
";

    fn problems(text: &str) -> Vec<String> {
        match parse(text, Path::new("plumbline.yaml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn ok(text: &str) -> Config {
        match parse(text, Path::new("/etc/plumbline/plumbline.yaml")) {
            Ok(c) => c,
            Err(e) => panic!("unexpected problems:\n{e}"),
        }
    }

    fn cluster(name: &str, labels: &[(&str, &str)]) -> ClusterConfig {
        ClusterConfig {
            name: name.to_string(),
            access: ClusterAccess::Kube {
                kubeconfig: None,
                context: None,
            },
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn heal_rails() {
        let c = ok("heal:\n  force: true\n  max_objects_per_app: 2\n  deny_kinds: [Secret, apps/Deployment]\n");
        assert!(c.heal.force);
        assert_eq!(
            (c.heal.max_objects_per_app, c.heal.max_objects_per_run),
            (2, 50)
        );
        assert!(c.heal.denies("", "Secret") && c.heal.denies("apps", "Deployment"));
        assert!(!c.heal.denies("", "Namespace") && !c.heal.denies("extensions", "Deployment"));
        assert!(ok("").heal.denies("", "Namespace"));
        assert_eq!(
            problems("heal:\n  force: maybe\n  max_objects_per_run: 0\n  deny_kinds: [secret]\n  limit: 3\n"),
            vec![
                "plumbline.yaml:2: heal.force: expected true or false",
                "plumbline.yaml:3: heal.max_objects_per_run: expected a number greater than 0, not \"0\"",
                "plumbline.yaml:4: heal.deny_kinds: \"secret\" is not a Kind or group/Kind",
                "plumbline.yaml:5: heal.limit: unknown key (known keys: force, max_objects_per_app, max_objects_per_run, deny_kinds)",
            ]
        );
    }

    #[test]
    fn durations_read_as_written() {
        let hours = |h: u64| Some(std::time::Duration::from_secs(h * 3600));
        assert_eq!(parse_duration("24h"), hours(24));
        assert_eq!(parse_duration("2d"), hours(48));
        assert_eq!(
            parse_duration("1h30m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("0s"), Some(std::time::Duration::ZERO));
        assert_eq!(parse_duration("24"), None);
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn contract_example_parses() {
        let c = ok(EXAMPLE);
        let base = Path::new("/etc/plumbline");
        assert_eq!(c.base_dir, base);
        assert_eq!(c.database, base.join("plumbline.db"));
        assert_eq!(c.reports_dir, base.join("reports-out"));
        assert_eq!(c.tracking, Tracking::default());
        assert_eq!(
            c.sources,
            vec![SourceConfig {
                name: "platform".into(),
                url: "https://git.example.com/platform/gitops.git".into(),
                revision: Some("main".into()),
            }]
        );
        assert_eq!(c.clusters.len(), 2);
        match &c.clusters[0].access {
            ClusterAccess::Kube {
                kubeconfig,
                context,
            } => {
                if let Some(home) = dirs::home_dir() {
                    assert_eq!(kubeconfig.as_deref(), Some(&*home.join(".kube/config")));
                }
                assert_eq!(context.as_deref(), Some("prod-eu"));
            }
            other => panic!("unexpected access {other:?}"),
        }
        assert_eq!(c.clusters[0].labels["region"], "eu");
        assert_eq!(
            c.clusters[1].access,
            ClusterAccess::Snapshot(base.join("snapshots/staging"))
        );
        let web = &c.apps[0];
        assert_eq!(web.path, "apps/web/overlays/prod");
        assert_eq!(web.namespace.as_deref(), Some("web"));
        assert_eq!(web.render, RenderKind::Auto);
        assert_eq!(
            web.helm,
            Some(HelmConfig {
                release: Some("web".into()),
                values: vec!["values-prod.yaml".into()],
                set: BTreeMap::new(),
            })
        );
        assert!(!web.self_heal && !web.prune);
        assert_eq!(
            web.ignore,
            vec![IgnoreRule {
                kind: Some("Deployment".into()),
                name: Some("*".into()),
                json_pointers: vec!["/spec/replicas".into()],
                ..IgnoreRule::default()
            }]
        );
        let set = &c.app_sets[0];
        assert_eq!(set.name, "{{path[1]}}-{{cluster}}");
        assert_eq!(set.directories, "apps/*/overlays/prod");
        assert_eq!(
            set.clusters,
            ClusterSelector::Labels([("env".to_string(), "prod".to_string())].into())
        );
        assert_eq!(c.policies, vec![base.join("policies")]);
        assert_eq!(c.schedule.as_deref(), Some("0 */15 * * * *"));
        assert_eq!(c.daemon.listen, "0.0.0.0:9464");
        assert_eq!(
            c.daemon.api_token_env.as_deref(),
            Some("PLUMBLINE_API_TOKEN")
        );
        let email = c
            .notify
            .email
            .as_ref()
            .map(|e| (e.starttls, e.tls, e.to.clone()));
        assert_eq!(
            email,
            Some((true, false, vec!["sre@example.com".to_string()]))
        );
        let webhook = c.notify.webhook.as_ref().map(|w| w.on.clone());
        assert_eq!(webhook, Some(vec!["new_drift".into(), "resolved".into()]));
    }

    #[test]
    fn defaults() {
        let c = ok("");
        let base = Path::new("/etc/plumbline");
        assert_eq!(c.database, base.join(DEFAULT_DATABASE));
        assert_eq!(c.reports_dir, base.join(DEFAULT_REPORTS_DIR));
        assert_eq!(c.tracking.label, "app.kubernetes.io/instance");
        assert_eq!(c.tracking.annotation, "argocd.argoproj.io/tracking-id");
        assert_eq!(c.daemon.listen, "127.0.0.1:9464");
        assert_eq!(c.daemon.grace_seconds, DEFAULT_GRACE_SECONDS);
        assert_eq!(c.schedule, None);
        assert!(c.sources.is_empty() && c.apps.is_empty() && c.waivers.is_empty());

        let c = ok(&format!(
            "{BASE}apps:\n  - {{name: a, source: platform, path: ./x/, cluster: staging}}\n"
        ));
        let app = &c.apps[0];
        assert_eq!(
            (app.render, app.self_heal, app.prune),
            (RenderKind::Auto, false, false)
        );
        assert_eq!(app.path, "x");
        assert_eq!(app.namespace, None);
    }

    #[test]
    fn unknown_keys_at_several_depths() {
        let text = format!(
            "{BASE}\
apps:
  - name: web
    source: platform
    path: apps/web
    cluster: prod-eu
    sefl_heal: true
    ignore:
      - {{kind: Deployment, json_pointer: [/spec/replicas]}}
notify:
  email:
    smtp: mail:25
    form: a@b.c
    to: [x@y.z]
databse: x.db
"
        );
        assert_eq!(
            problems(&text),
            vec![
                "plumbline.yaml:14: apps[0].sefl_heal: unknown key (did you mean \"self_heal\"?)",
                "plumbline.yaml:16: apps[0].ignore[0].json_pointer: unknown key (did you mean \"json_pointers\"?)",
                "plumbline.yaml:18: notify.email: missing key \"from\"",
                "plumbline.yaml:20: notify.email.form: unknown key (did you mean \"from\"?)",
                "plumbline.yaml:22: databse: unknown key (did you mean \"database\"?)",
            ]
        );
        let p = problems("frobnicate: 1\n");
        assert!(
            p[0].starts_with("plumbline.yaml:1: frobnicate: unknown key (known keys: database,")
        );
    }

    #[test]
    fn missing_source_suggests_nearest() {
        let text = format!(
            "{BASE}apps:\n  - name: web\n    source: platfrom\n    path: x\n    cluster: prod-eu\n"
        );
        let err = parse(&text, Path::new("plumbline.yaml")).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let p = &err.problems[0];
        assert_eq!(p.line, Some(11));
        assert_eq!(p.path, "apps[0].source");
        assert_eq!(
            p.to_string(),
            "plumbline.yaml:11: apps[0].source: no source named \"platfrom\" (did you mean \"platform\"?)"
        );
        // Nothing close: no suggestion.
        let text = format!(
            "{BASE}apps:\n  - {{name: web, source: zzz, path: x, cluster: nowhere-near}}\n"
        );
        assert_eq!(
            problems(&text),
            vec![
                "plumbline.yaml:10: apps[0].source: no source named \"zzz\"",
                "plumbline.yaml:10: apps[0].cluster: no cluster named \"nowhere-near\"",
            ]
        );
    }

    #[test]
    fn daemon_grace_period() {
        assert_eq!(ok("daemon: {grace_seconds: 5}\n").daemon.grace_seconds, 5);
        assert!(problems("daemon: {grace_seconds: 0}\n")[0].contains("greater than 0"));
    }

    #[test]
    fn bad_cron_on_schedule_line() {
        let err = parse(
            "database: x.db\n\nschedule: \"*/15 * * * *\"\n",
            Path::new("p.yaml"),
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let p = &err.problems[0];
        assert_eq!((p.line, p.path.as_str()), (Some(3), "schedule"));
        assert!(p
            .message
            .starts_with("invalid cron expression \"*/15 * * * *\": "));
        assert_eq!(
            p.message,
            "invalid cron expression \"*/15 * * * *\": cannot parse at column 13; \
             plumbline schedules have 6 or 7 fields, starting with seconds"
        );
        assert_eq!(
            problems("schedule: \"0 61 * * * *\"\n"),
            vec![
                "plumbline.yaml:1: schedule: invalid cron expression \"0 61 * * * *\": \
                 Minutes must be less than 59. ('61' specified.) (at column 3)"
            ]
        );
        assert!(problems("schedule: \"0 0 25 * * *\"\n")[0].contains("invalid cron expression"));
        ok("schedule: \"0 0 3 * * Mon-Fri\"\n");
        ok("schedule: \"@daily\"\n");
    }

    #[test]
    fn many_problems_reported_together_in_line_order() {
        let text = "\
database: \"\"
sources:
  - name: Platform
  - name: b
    url: /srv/git
    revison: main
clusters:
  - name: c1
    labels: [a, b]
apps:
  - name: web
    source: b
    cluster: c2
    path: x
    render: kustomise
    helm: {release: web}  # fine: the fallback render is auto
schedule: nope
daemon: {listen: localhost}
waivers:
  - {policy: p, reason: r, approved_by: me, expires: 31.12.2026}
  - {policy: p}
";
        let got = problems(text);
        let want = [
                "plumbline.yaml:1: database: must not be empty",
                "plumbline.yaml:3: sources[0].name: \"Platform\" is not a valid source name (use lowercase letters, digits, \"-\" and \".\", starting and ending with a letter or digit)",
                "plumbline.yaml:3: sources[0]: missing key \"url\"",
                "plumbline.yaml:6: sources[1].revison: unknown key (did you mean \"revision\"?)",
                "plumbline.yaml:9: clusters[0].labels: expected a map of strings",
                "plumbline.yaml:13: apps[0].cluster: no cluster named \"c2\" (did you mean \"c1\"?)",
                "plumbline.yaml:15: apps[0].render: unknown renderer \"kustomise\" (expected auto, plain, kustomize or helm) (did you mean \"kustomize\"?)",
                "plumbline.yaml:17: schedule: invalid cron expression \"nope\": The 'Seconds' field does not support using names",
                "plumbline.yaml:18: daemon.listen: \"localhost\" is not a socket address (e.g. 127.0.0.1:9464)",
                "plumbline.yaml:20: waivers[0].expires: expected a date as YYYY-MM-DD, got \"31.12.2026\"",
                "plumbline.yaml:21: waivers[1]: missing key \"reason\"",
                "plumbline.yaml:21: waivers[1]: missing key \"approved_by\"",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{g}\n  does not start with\n{w}");
        }
    }

    #[test]
    fn wrong_types() {
        let text = "\
sources: {name: x}
clusters:
  - name: a
    labels: [env, prod]
  - name: b
    labels: {env: {nested: 1}}
apps:
  - name: web
    source: [x]
    path: p
    cluster: a
    self_heal: yes
tracking: 3
";
        assert_eq!(
            problems(text),
            vec![
                "plumbline.yaml:1: sources: expected a list of sources",
                "plumbline.yaml:4: clusters[0].labels: expected a map of strings",
                "plumbline.yaml:6: clusters[1].labels.env: expected a string",
                "plumbline.yaml:9: apps[0].source: expected a string",
                "plumbline.yaml:12: apps[0].self_heal: expected true or false",
                "plumbline.yaml:13: tracking: expected a map",
            ]
        );
        assert_eq!(problems("- a\n"), vec!["plumbline.yaml:1: expected a map"]);
    }

    #[test]
    fn parse_errors_and_unsupported_yaml() {
        let p = problems("a: [1\nb: 2\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("plumbline.yaml:2: "), "{p:?}");

        let p = problems(&format!(
            "{BASE}apps:\n  - &a {{name: x, source: platform, path: p, cluster: staging}}\n  - *a\n  - <<: *a\n    name: y\n"
        ));
        assert_eq!(
            p,
            vec![
                "plumbline.yaml:11: apps[1]: YAML aliases are not supported; write the value out",
                "plumbline.yaml:12: apps[2].<<: YAML merge keys are not supported; write the keys out",
                "plumbline.yaml:12: apps[2]: missing key \"source\"",
                "plumbline.yaml:12: apps[2]: missing key \"cluster\"",
                "plumbline.yaml:12: apps[2]: missing key \"path\"",
            ]
        );
        assert_eq!(
            problems("a: 1\n---\nb: 2\n"),
            vec![
                "plumbline.yaml:1: a: unknown key (known keys: database, reports_dir, tracking, sources, clusters, apps, app_sets, ignore, policies, schedule, daemon, notify, waivers, appliers, live, renderers, drift_sla, heal)",
                "plumbline.yaml:2: expected a single YAML document; later documents are ignored",
            ]
        );
        assert_eq!(
            problems("database: a\ndatabase: b\n"),
            vec!["plumbline.yaml:2: database: duplicate key (first at line 1)"]
        );
    }

    #[test]
    fn deep_nesting_does_not_crash() {
        let flow = format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(problems(&flow).len(), 1);
        let block: String = (0..3000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let p = problems(&block);
        assert!(
            p.iter().any(|p| p.contains("nested deeper than 64 levels")),
            "{p:?}"
        );
    }

    #[test]
    fn unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("missing.yaml")).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].line, None);
        assert!(err
            .to_string()
            .contains("missing.yaml: cannot read the configuration"));
    }

    #[test]
    fn relative_paths_resolve_against_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conf/plumbline.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            &file,
            "\
database: ./state/p.db
reports_dir: /abs/reports
sources:
  - {name: local, url: ../repo}
  - {name: file, url: file:///srv/repo}
  - {name: scp, url: git@github.com:org/repo.git}
clusters:
  - {name: off, snapshot: snaps/off}
policies: [policies/, ~/packs]
",
        )
        .unwrap();
        let c = load(&file).unwrap();
        let conf = dir.path().join("conf");
        assert_eq!(c.file, file);
        assert_eq!(c.base_dir, conf);
        assert_eq!(c.database, conf.join("state/p.db"));
        assert_eq!(c.reports_dir, Path::new("/abs/reports"));
        assert_eq!(c.sources[0].url, conf.join("../repo").to_string_lossy());
        assert_eq!(c.sources[1].url, "file:///srv/repo");
        assert_eq!(c.sources[2].url, "git@github.com:org/repo.git");
        assert_eq!(
            c.clusters[0].access,
            ClusterAccess::Snapshot(conf.join("snaps/off"))
        );
        assert_eq!(c.policies[0], conf.join("policies"));
        if let Some(home) = dirs::home_dir() {
            assert_eq!(c.policies[1], home.join("packs"));
        }
        // A relative config path is anchored at the working directory.
        let c = ok_relative("database: db\n");
        assert!(c.base_dir.is_absolute());
        assert_eq!(c.database, c.base_dir.join("db"));
    }

    fn ok_relative(text: &str) -> Config {
        parse(text, Path::new("plumbline.yaml")).unwrap()
    }

    #[test]
    fn snapshot_conflicts_with_kubeconfig() {
        let text = "\
clusters:
  - name: a
    kubeconfig: ~/.kube/config
    snapshot: snaps/a
  - name: b
    snapshot: snaps/b
    context: b
";
        assert_eq!(
            problems(text),
            vec![
                "plumbline.yaml:4: clusters[0].snapshot: \"snapshot\" cannot be combined with \"kubeconfig\" or \"context\" (a cluster is either offline or live)",
                "plumbline.yaml:6: clusters[1].snapshot: \"snapshot\" cannot be combined with \"kubeconfig\" or \"context\" (a cluster is either offline or live)",
            ]
        );
    }

    #[test]
    fn duplicate_and_invalid_names() {
        let text = format!(
            "{BASE}  - name: staging\n    snapshot: s2\napps:\n  - {{name: my_app, source: platform, path: a, cluster: staging}}\n  - {{name: my_app, source: platform, path: b, cluster: staging}}\n  - {{name: \"\", source: platform, path: c, cluster: staging}}\n"
        );
        assert_eq!(
            problems(&text),
            vec![
                "plumbline.yaml:9: clusters[2].name: duplicate cluster name \"staging\" (first defined at line 7)",
                "plumbline.yaml:13: apps[1].name: duplicate app name \"my_app\" (first defined at line 12)",
                "plumbline.yaml:14: apps[2].name: must not be empty",
            ]
        );
        assert!(problems("sources: [{name: a_b, url: x}]\n")[0].contains("not a valid source name"));
    }

    #[test]
    fn app_set_validation() {
        let text = format!(
            "{BASE}\
app_sets:
  - name: \"{{{{path[1]}}}}-{{{{clustr}}}}\"
    source: platform
    directories: \"apps/[*/prod\"
    clusters: [prod-eu, stagin]
    namespace: \"{{{{path.basename}}}}\"
  - name: \"{{{{path}}\"
    source: platform
    directories: apps/*
    clusters: prod
"
        );
        assert_eq!(
            problems(&text),
            vec![
                "plumbline.yaml:10: app_sets[0].name: unknown template variable \"{{clustr}}\" (use {{path}}, {{path[N]}}, {{path.basename}}, {{cluster}}, {{cluster.name}} or {{cluster.labels.KEY}})",
                "plumbline.yaml:12: app_sets[0].directories: invalid glob: error parsing glob 'apps/[*/prod': unclosed character class; missing ']'",
                "plumbline.yaml:13: app_sets[0].clusters[1]: no cluster named \"stagin\" (did you mean \"staging\"?)",
                "plumbline.yaml:15: app_sets[1].name: unclosed \"{{\" in template \"{{path}\"",
                "plumbline.yaml:18: app_sets[1].clusters: expected a label selector (a map) or a list of cluster names",
            ]
        );
    }

    #[test]
    fn templates_expand() {
        let c = ok(EXAMPLE);
        let set = &c.app_sets[0];
        let prod = cluster("prod-eu", &[("env", "prod"), ("region", "eu")]);
        assert_eq!(
            set.expand("apps/web/overlays/prod", &prod),
            Ok(("web-prod-eu".to_string(), Some("web".to_string())))
        );
        let mut set = set.clone();
        set.name = "{{ path.basename }}.{{cluster.labels.region}}.{{cluster.name}}".into();
        set.namespace = None;
        assert_eq!(
            set.expand("./apps/web/overlays/prod/", &prod),
            Ok(("prod.eu.prod-eu".to_string(), None))
        );
        let err = set.expand("apps/web", &cluster("bare", &[])).unwrap_err();
        assert_eq!(
            err,
            "{{cluster.labels.region}}: cluster \"bare\" has no label \"region\""
        );
        set.name = "{{path[7]}}".into();
        assert!(set
            .expand("apps/web", &prod)
            .unwrap_err()
            .contains("only 2 segment(s)"));
        set.name = "{{path}}".into();
        assert!(set
            .expand("apps/web", &prod)
            .unwrap_err()
            .contains("not a valid app name"));

        let app = c.app_sets[0]
            .instantiate("apps/api/overlays/prod", &prod)
            .unwrap();
        assert_eq!(
            (app.name.as_str(), app.path.as_str(), app.cluster.as_str()),
            ("api-prod-eu", "apps/api/overlays/prod", "prod-eu")
        );
        let m = c.app_sets[0].directory_matcher().unwrap();
        assert!(m.is_match("apps/web/overlays/prod"));
        assert!(!m.is_match("apps/web/x/overlays/prod"));
    }

    #[test]
    fn selectors() {
        let prod = cluster("prod-eu", &[("env", "prod"), ("region", "eu")]);
        let staging = cluster("staging", &[("env", "staging")]);
        let labels = |pairs: &[(&str, &str)]| {
            ClusterSelector::Labels(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert!(labels(&[("env", "prod")]).matches(&prod));
        assert!(!labels(&[("env", "prod")]).matches(&staging));
        assert!(!labels(&[("env", "prod"), ("region", "us")]).matches(&prod));
        assert!(labels(&[]).matches(&staging));
        let names = ClusterSelector::Names(vec!["staging".into()]);
        assert!(names.matches(&staging) && !names.matches(&prod));

        let c = ok(&format!(
            "{BASE}app_sets:\n  - {{name: \"{{{{path.basename}}}}\", source: platform, directories: \"apps/*\", clusters: [staging]}}\n"
        ));
        assert_eq!(
            c.app_sets[0].clusters,
            ClusterSelector::Names(vec!["staging".into()])
        );
    }

    #[test]
    fn ignore_rules_and_notify() {
        let text = "\
ignore:
  - {kind: \"Deploy[\", json_pointers: [spec/replicas, \"\", /a~2b, /metadata/labels/a~1b]}
  - {managed_fields_managers: [kube-controller-manager], jq_path_expressions: [.spec.replicas]}
notify:
  email: {smtp: mail.example.com, from: me, to: [], starttls: true, tls: true, username_env: U}
  webhook: {url: ftp://x, on: [new-drift], secret_env: 9X}
";
        assert_eq!(
            problems(text),
            vec![
                "plumbline.yaml:2: ignore[0].kind: invalid glob \"Deploy[\": error parsing glob 'Deploy[': unclosed character class; missing ']'",
                "plumbline.yaml:2: ignore[0].json_pointers[0]: JSON pointer \"spec/replicas\" must start with \"/\"",
                "plumbline.yaml:2: ignore[0].json_pointers[2]: JSON pointer \"/a~2b\": \"~\" must be followed by 0 or 1",
                "plumbline.yaml:5: notify.email.smtp: expected host:port, got \"mail.example.com\"",
                "plumbline.yaml:5: notify.email.starttls: choose either starttls or tls, not both",
                "plumbline.yaml:5: notify.email.from: \"me\" is not an email address",
                "plumbline.yaml:5: notify.email.to: must name at least one recipient",
                "plumbline.yaml:5: notify.email: username_env and password_env must be given together",
                "plumbline.yaml:6: notify.webhook.url: \"ftp://x\" is not an http:// or https:// URL",
                "plumbline.yaml:6: notify.webhook.on[0]: unknown event \"new-drift\" (expected new_drift, resolved, cluster_unreachable, cluster_recovered, heal) (did you mean \"new_drift\"?)",
                "plumbline.yaml:6: notify.webhook.secret_env: \"9X\" is not an environment variable name",
            ]
        );
        let c = ok("notify:\n  email: {smtp: \"[::1]:465\", tls: true, from: a@b, to: [c@d]}\n  webhook: {url: https://h/x}\n");
        let email = c.notify.email.unwrap();
        assert!(email.tls && !email.starttls);
        assert_eq!(c.notify.webhook.unwrap().on.len(), WEBHOOK_EVENTS.len());
    }

    #[test]
    fn waivers_parse() {
        let c = ok("waivers:\n  - {policy: no-latest-tag, kind: Deployment, name: \"legacy-*\", reason: vendor image, approved_by: ana, expires: 2026-12-31}\n");
        let w = &c.waivers[0];
        assert_eq!(w.expires, chrono::NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(w.name.as_deref(), Some("legacy-*"));
        assert_eq!(w.namespace, None);
    }

    #[test]
    fn suggest_picks_plausible_typos_only() {
        let keys = ["name", "source", "self_heal", "prune"];
        assert_eq!(suggest("sefl_heal", keys), Some("self_heal"));
        assert_eq!(suggest("nmae", keys), Some("name"));
        assert_eq!(suggest("xy", keys), None);
        assert_eq!(suggest("completely-different", keys), None);
    }

    #[test]
    fn repo_paths_normalise() {
        assert_eq!(normalize_repo_path("./apps//web/"), Ok("apps/web".into()));
        assert_eq!(normalize_repo_path("/"), Ok(String::new()));
        assert_eq!(normalize_repo_path("."), Ok(String::new()));
        assert!(normalize_repo_path("apps/../..").is_err());
    }
}
