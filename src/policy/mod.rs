//! Compliance policies: CEL checks over desired and live objects, grouped in YAML packs.
//!
//! A pack (`policies/*.yaml`, format in `policies/pack.schema.json`) holds policies, each
//! with a match, optional variables, a CEL expression that is `true` when the object
//! complies, a crosswalk to external controls (SOC 2, CIS, Kubescape, Polaris, NSA), and
//! its own pass/fail test objects. Loading validates the files against the schema,
//! compiles every expression once and runs every policy's tests: CEL here has no type
//! checker, so the tests are what catches a misspelt field.
//!
//! Expressions read `object`, `oldObject` (the desired object of a live one),
//! `namespaceObject`, `inventory` (the cluster's live objects by kind), `plumbline` (scan
//! facts, `policies/gitops.yaml`), `variables.<name>`, and facts computed once per object
//! in Rust (`policies/baseline.yaml`): `podSpec` (the pod spec of a Pod or of a workload's
//! pod template, `null` otherwise), `containers` (its containers, init containers and
//! ephemeral containers) and `plumbline.coverage.networkPolicy` / `plumbline.coverage.pdb`
//! (a NetworkPolicy / PodDisruptionBudget of the namespace selects the object's pods).
//! Each input is converted for an object only when a policy matching it reads it, and the
//! object only as far as the policies read it.
//!
//! Evaluation produces violations only. A policy that fails to evaluate on an object
//! (a missing field read without `.?`, a type mismatch) is reported as a violation of
//! that policy whose message starts with `evaluation error:` and whose `error` flag is
//! set, so a broken check is visible in reports instead of passing silently.

pub mod audit;
mod engine;
mod expr;
mod facts;
mod pack;
mod reads;
mod waiver;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use pack::{CisControl, Controls, Match, StateMatch};

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the comparison an object comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Rendered from Git.
    Desired,
    /// Read from the cluster.
    Live,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Desired => "desired",
            State::Live => "live",
        }
    }
}

/// What the scan knows about an object beyond its content, for the change-management
/// checks (`policies/gitops.yaml`). Exposed to CEL as `plumbline`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFacts {
    /// An app tracks the object (it is in Git, or carries an app's tracking label).
    pub tracked: bool,
    /// The object's namespace is one that some app deploys into; unmanaged objects only
    /// matter there (a cluster's own system namespaces are not plumbline's business).
    pub managed_namespace: bool,
    pub drift: Drift,
}

impl Default for AuditFacts {
    fn default() -> Self {
        AuditFacts {
            tracked: true,
            managed_namespace: true,
            drift: Drift::default(),
        }
    }
}

/// The drift finding for an object, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// `in_sync`, `modified`, `missing` or `orphaned` (contract section 3).
    pub status: String,
    /// Hours since the drift was first seen; 0 when in sync.
    pub open_hours: f64,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            status: "in_sync".to_string(),
            open_hours: 0.0,
        }
    }
}

/// One object in one state, to be checked.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub app: &'a str,
    pub cluster: &'a str,
    pub state: State,
    pub object: &'a serde_json::Value,
    /// The desired object, when `object` is live (CEL `oldObject`).
    pub desired: Option<&'a serde_json::Value>,
    pub audit: &'a AuditFacts,
}

/// Everything an evaluation needs besides the subjects.
#[derive(Debug, Clone)]
pub struct Context {
    /// Namespace objects by (cluster, name): CEL `namespaceObject`.
    pub namespaces: HashMap<(String, String), serde_json::Value>,
    /// Every live object of each cluster by kind: CEL `inventory`, for cross-object checks.
    pub inventory: HashMap<String, HashMap<String, Vec<serde_json::Value>>>,
    pub waivers: Vec<crate::config::Waiver>,
    /// Decides which waivers have expired.
    pub today: chrono::NaiveDate,
    /// How long drift may stay open (`plumbline.drift_sla_hours`).
    pub drift_sla: std::time::Duration,
}

impl Context {
    /// A context with no namespaces, inventory or waivers and the default 24h drift SLA.
    pub fn new(today: chrono::NaiveDate) -> Context {
        Context {
            namespaces: HashMap::new(),
            inventory: HashMap::new(),
            waivers: Vec::new(),
            today,
            drift_sla: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

/// Where the waiver that covers a violation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiverSource {
    /// `waivers:` in `plumbline.yaml`.
    Config,
    /// The object's `plumbline.dev/waive` annotation.
    Annotation,
}

/// The accepted risk that covers a violation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedWaiver {
    pub source: WaiverSource,
    pub reason: Option<String>,
    pub approved_by: Option<String>,
    pub expires: Option<chrono::NaiveDate>,
}

/// One policy violated by one object in one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub policy: String,
    pub severity: Severity,
    pub app: String,
    pub cluster: String,
    /// `""` for the core group.
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub state: State,
    pub message: String,
    /// The policy could not be evaluated on this object; `message` says why.
    pub error: bool,
    pub waived: bool,
    pub waiver: Option<AppliedWaiver>,
}

/// The result of [`PolicySet::evaluate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    /// Violations, waived or not, in subject order then pack order.
    pub results: Vec<Violation>,
    /// Configured waivers past their `expires` date: they no longer apply.
    pub expired_waivers: Vec<crate::model::ExpiredWaiverNote>,
}

/// A problem with a pack file, located at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for LoadProblem {}

/// A policy as listed by `plumbline policies`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// The pack's `metadata.name`.
    pub pack: String,
    pub file: PathBuf,
    pub line: usize,
    #[serde(rename = "match")]
    pub matcher: Match,
    pub controls: Controls,
}

/// Whether a test object behaved as the policy's `tests` said it must.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestOutcome {
    /// `pass` or `fail`: what the object must do.
    pub expect: &'static str,
    /// Position in that list, from 0.
    pub index: usize,
    pub line: usize,
    pub ok: bool,
    /// Why it did not behave, or the violation message of a fail case that did.
    pub detail: String,
}

/// All test outcomes of one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestReport {
    pub policy: String,
    pub file: PathBuf,
    pub outcomes: Vec<TestOutcome>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.ok)
    }
}

/// Loaded, compiled and self-tested policies.
pub struct PolicySet {
    engine: engine::Engine,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("policies", &self.engine.policies().len())
            .finish()
    }
}

/// The packs shipped with plumbline, by the path they are reported under.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "policies/baseline.yaml",
        include_str!("../../policies/baseline.yaml"),
    ),
    (
        "policies/gitops.yaml",
        include_str!("../../policies/gitops.yaml"),
    ),
];

impl PolicySet {
    /// Loads the packs at `paths` (files, or directories whose `.yaml`/`.yml` files load
    /// in name order). Every problem is returned, each at its file and line: schema
    /// errors, CEL that does not parse, duplicate ids, and policies failing their tests.
    pub fn load(paths: &[PathBuf]) -> Result<PolicySet, Vec<LoadProblem>> {
        let files = pack::read_paths(paths)?;
        Self::from_files(&files)
    }

    /// The built-in packs (`baseline` and `gitops`), compiled into the binary.
    pub fn builtin() -> Result<PolicySet, Vec<LoadProblem>> {
        let files: Vec<(PathBuf, String)> = BUILTIN
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        Self::from_files(&files)
    }

    fn from_files(files: &[(PathBuf, String)]) -> Result<PolicySet, Vec<LoadProblem>> {
        let engine = engine::Engine::build(files)?;
        let problems = engine.test_failures();
        if problems.is_empty() {
            Ok(PolicySet { engine })
        } else {
            Err(problems)
        }
    }

    /// Runs every policy's tests of the packs at `paths` without rejecting failures, for
    /// `plumbline policies test`. Problems other than failing tests are still errors.
    pub fn test_paths(paths: &[PathBuf]) -> Result<Vec<TestReport>, Vec<LoadProblem>> {
        let files = pack::read_paths(paths)?;
        Ok(engine::Engine::build(&files)?.run_tests())
    }

    /// The loaded policies in pack order, for `plumbline policies`.
    pub fn policies(&self) -> Vec<PolicyInfo> {
        self.engine.policies().iter().map(|p| p.info()).collect()
    }

    /// Reruns every policy's tests (all pass: loading rejects failures).
    pub fn run_tests(&self) -> Vec<TestReport> {
        self.engine.run_tests()
    }

    /// Whether a policy on live objects may read their `status`, which reading a cluster
    /// otherwise leaves out.
    pub fn reads_live_status(&self) -> bool {
        self.engine.reads_live_status()
    }

    /// Whether the context's inventory needs objects of `kind`: the rest is never read, so
    /// it need not be copied there.
    pub fn reads_inventory_kind(&self, kind: &str) -> bool {
        self.engine.reads_inventory_kind(kind)
    }

    /// Checks every subject against every policy that matches it, in parallel.
    pub fn evaluate(&self, subjects: &[Subject<'_>], context: &Context) -> Evaluation {
        self.engine.evaluate(subjects, context)
    }
}

#[cfg(test)]
mod tests;
