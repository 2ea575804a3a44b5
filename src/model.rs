//! The plain data that flows between the stages of a scan.
//!
//! Every stage takes and returns these types, so that a stage can be tested on its own and
//! only the orchestrator (`scan`) needs to know the order in which they run.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Identity of a Kubernetes object, independent of the API version it was read in.
///
/// Desired and live objects are matched by this key: a Deployment written as `apps/v1` in Git
/// is the same object as the one the server returns, whatever version is preferred.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    /// API group, `""` for the core group.
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        };
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// Splits an `apiVersion` into group and version (`apps/v1` -> (`apps`, `v1`), `v1` -> (``, `v1`)).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Where in Git a desired object came from: the file (relative to the repository root) and
/// the 1-based line its document starts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

/// A Kubernetes object with its identity pulled out once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub key: ResourceKey,
    /// The version the object was written in (desired) or read in (live).
    pub version: String,
    pub body: Value,
    /// Git file and line, for desired objects.
    pub origin: Option<Origin>,
}

impl Resource {
    /// Builds a resource from a decoded object; fails when `apiVersion`, `kind` or
    /// `metadata.name` are missing, because such an object cannot be matched to anything.
    pub fn from_value(body: Value) -> Result<Resource, String> {
        let api_version = body
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or("object has no apiVersion")?;
        let kind = body
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("object has no kind")?;
        let metadata = body.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{kind} has no metadata.name"))?;
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let (group, version) = split_api_version(api_version);
        Ok(Resource {
            key: ResourceKey {
                group: group.to_string(),
                kind: kind.to_string(),
                namespace,
                name: name.to_string(),
            },
            version: version.to_string(),
            body,
            origin: None,
        })
    }

    pub fn labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.body
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
    }

    pub fn annotations(&self) -> Option<&serde_json::Map<String, Value>> {
        self.body
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels()
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations()
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }

    /// True when a controller owns this object (ReplicaSets, Pods, EndpointSlices, Jobs of a
    /// CronJob): such objects are never orphans of an app, whatever labels they copied.
    pub fn has_owner(&self) -> bool {
        self.body
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| !refs.is_empty())
    }
}

/// The verdict for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InSync,
    Modified,
    Missing,
    Orphaned,
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "in_sync",
            Status::Modified => "modified",
            Status::Missing => "missing",
            Status::Orphaned => "orphaned",
            Status::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "in_sync" => Status::InSync,
            "modified" => Status::Modified,
            "missing" => Status::Missing,
            "orphaned" => Status::Orphaned,
            "ignored" => Status::Ignored,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One differing field: an RFC 6901 pointer and the value on each side (`None` = absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub desired: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub live: Option<Value>,
}

/// A Git commit as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub sha: String,
    /// `Name <email>`, as git prints it.
    pub author: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub committer: String,
    pub committer_time: String,
    pub message: String,
    /// Repository-relative paths this commit changed against its first parent.
    pub files: Vec<String>,
}

/// The `last_commit` of a finding: the newest commit touching the object's Git file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRef {
    pub sha: String,
    pub author: String,
    pub time: String,
    pub message: String,
}

impl From<&CommitInfo> for CommitRef {
    fn from(c: &CommitInfo) -> Self {
        CommitRef {
            sha: c.sha.clone(),
            author: c.author.clone(),
            time: c.time.clone(),
            message: c.message.clone(),
        }
    }
}

/// The verdict for one resource of one app on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub app: String,
    pub cluster: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub status: Status,
    pub changes: Vec<Change>,
    pub managers: Vec<String>,
    pub last_commit: Option<CommitRef>,
    /// Why the verdict was reached when the changes alone do not say (e.g. "kind not served").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Git file and line of the desired object, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin: Option<Origin>,
    /// RFC 6902 patch that turns the live object into the desired one (Secret values redacted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub patch: Option<Value>,
    /// Unified YAML diff, live -> desired (Secret values redacted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diff: Option<String>,
    /// Keyed digest of the live Secret values behind redacted changes, so that a value that
    /// changes again reads as new drift. Stored in the database, never in reports.
    #[serde(skip)]
    pub secret_digest: Option<String>,
}

impl Finding {
    /// A finding about `resource` with no verdict details yet.
    pub fn of(app: &str, cluster: &str, resource: &Resource, status: Status) -> Finding {
        Finding {
            app: app.to_string(),
            cluster: cluster.to_string(),
            group: resource.key.group.clone(),
            version: resource.version.clone(),
            kind: resource.key.kind.clone(),
            namespace: resource.key.namespace.clone(),
            name: resource.key.name.clone(),
            status,
            changes: Vec::new(),
            managers: Vec::new(),
            last_commit: None,
            reason: None,
            origin: resource.origin.clone(),
            patch: None,
            diff: None,
            secret_digest: None,
        }
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// The stage of a scan a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Config,
    Source,
    Render,
    Live,
    Diff,
    Policy,
    Store,
    Notify,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::Source => "source",
            Stage::Render => "render",
            Stage::Live => "live",
            Stage::Diff => "diff",
            Stage::Policy => "policy",
            Stage::Store => "store",
            Stage::Notify => "notify",
        }
    }
}

/// A part of the scan that failed; the rest of the scan goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanError {
    pub cluster: Option<String>,
    pub app: Option<String>,
    pub stage: Stage,
    pub message: String,
}

/// A source as a scan saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceResult {
    pub name: String,
    pub revision: String,
    pub commit: Option<String>,
}

/// A cluster as a scan saw it: `status` is `ok`, `unreachable` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterResult {
    pub name: String,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub resources: usize,
    pub in_sync: usize,
    pub modified: usize,
    pub missing: usize,
    pub orphaned: usize,
    pub ignored: usize,
    pub errors: usize,
    pub policy_violations: usize,
    /// Apps whose render came from the render cache.
    #[serde(default)]
    pub render_cache_hits: usize,
    /// Apps rendered afresh (Git content new to the cache, or the cache off).
    #[serde(default)]
    pub render_cache_misses: usize,
}

impl Summary {
    pub fn count(&mut self, status: Status) {
        self.resources += 1;
        match status {
            Status::InSync => self.in_sync += 1,
            Status::Modified => self.modified += 1,
            Status::Missing => self.missing += 1,
            Status::Orphaned => self.orphaned += 1,
            Status::Ignored => self.ignored += 1,
        }
    }
}

/// A policy violation (CONTRACT section 3), waived or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub policy: String,
    pub severity: String,
    pub app: Option<String>,
    pub cluster: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub state: String,
    pub message: String,
    pub waived: bool,
}

/// What a cluster serves, as Helm's `--kube-version` and `--api-versions` want it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `gitVersion` of the API server, e.g. `v1.33.1`.
    pub kube_version: Option<String>,
    /// Every served `group/version` and `group/version/Kind` (`v1`, `v1/Service` for core).
    pub api_versions: Vec<String>,
}

/// A commit of the audit trail with the apps whose files it touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailCommit {
    pub source: String,
    #[serde(flatten)]
    pub commit: CommitInfo,
    pub apps: Vec<String>,
}

/// One scan, as printed by `scan --format json` and `report --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    pub scan_id: i64,
    pub started_at: String,
    pub finished_at: String,
    pub sources: Vec<SourceResult>,
    pub clusters: Vec<ClusterResult>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub policy_results: Vec<PolicyResult>,
    pub errors: Vec<ScanError>,
    /// The commit audit trail recorded by this scan: commits since the previous scan that
    /// touched the files of a scanned app.
    #[serde(default)]
    pub commits: Vec<TrailCommit>,
    /// Configured waivers past their `expires` date: they no longer apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expired_waivers: Vec<ExpiredWaiverNote>,
    /// The policies the scan evaluated, with their crosswalks: what the report's controls
    /// section is built from. Kept in the database, not printed with the scan.
    #[serde(skip)]
    pub policies: Vec<PolicyRule>,
    /// What self-heal did about this scan's findings (absent when it did nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heal_actions: Vec<HealAction>,
}

/// A policy as a scan evaluated it: its crosswalk to external controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub pack: String,
    /// `{soc2: [..], cis: [{benchmark, version, id}], kubescape: [..], polaris: [..], nsa: [..]}`.
    pub controls: serde_json::Value,
}

impl PolicyRule {
    /// The SOC 2 criteria the policy evidences.
    pub fn soc2(&self) -> Vec<&str> {
        self.controls["soc2"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .collect()
    }
}

/// A configured waiver that expired: reported so that someone renews or drops it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiredWaiverNote {
    pub policy: String,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub reason: String,
    pub approved_by: String,
    /// `YYYY-MM-DD`.
    pub expires: String,
    /// Violations of this scan it would still have covered.
    pub would_cover: usize,
}

/// One self-heal action on one object: what was planned or done, and why not when it
/// was not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealAction {
    pub app: String,
    pub cluster: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `apply` (modified), `create` (missing) or `delete` (orphaned, with `prune`).
    pub action: String,
    /// `planned` (dry run passed, nothing written), `applied`, `failed` or `skipped`.
    pub status: String,
    /// Why it was skipped or failed (the server's message for a failure).
    pub reason: Option<String>,
    /// RFC 6902 patch live -> desired (for `create`, the whole object added), Secret
    /// values redacted; `null` for `delete`.
    pub patch: Option<Value>,
    pub dry_run: bool,
    pub at: String,
}
