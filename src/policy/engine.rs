//! Compiling packs and evaluating them.
//!
//! Per evaluation, the expensive inputs are prepared once: each cluster's inventory is
//! converted to CEL in a context layer of its own (only when a policy reads `inventory`)
//! and indexed by namespace for the coverage facts, namespaces are converted once. Per
//! subject, only the policies that name its kind (or `*`) are looked at, and of those only
//! the ones whose `match` admits it run, sharing variables that are written identically.
//! The object, `podSpec` and `containers` are converted once, and only as far as those
//! policies read them (`reads`). Subjects run in parallel.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use kube_cel::cel::{Context as CelContext, Value};
use rayon::prelude::*;

use super::expr::{self, Compiled, Inputs};
use super::facts::{self, Coverage};
use super::pack::{self, PolicyDef, StateMatch, TestCase};
use super::reads::{self, InputReads};
use super::waiver;
use super::{
    Context, Evaluation, LoadProblem, PolicyInfo, State, Subject, TestOutcome, TestReport,
    Violation,
};

/// A variable as computed for one subject: shared by every policy that declares it with
/// the same name and expression after the same predecessors.
struct Slot {
    /// The name the rewritten expressions use for it; no parsed identifier can clash.
    ident: String,
    name: String,
    expression: Compiled,
}

enum KindPattern {
    Any,
    Kind(String),
    GroupKind(String, String),
}

pub(super) struct Policy {
    def: PolicyDef,
    kinds: Vec<KindPattern>,
    namespaces: Option<GlobSet>,
    slots: Vec<usize>,
    expression: Compiled,
    message: Option<Compiled>,
    inputs: Inputs,
    /// What it reads of the object, its variables and message included.
    reads: InputReads,
}

impl Policy {
    pub(super) fn info(&self) -> PolicyInfo {
        PolicyInfo {
            id: self.def.id.clone(),
            title: self.def.title.clone(),
            severity: self.def.severity,
            pack: self.def.pack.clone(),
            file: self.def.file.clone(),
            line: self.def.line,
            matcher: self.def.matcher.clone(),
            controls: self.def.controls.clone(),
        }
    }

    fn matches(&self, state: State, meta: &Meta<'_>) -> bool {
        let state_ok = match self.def.matcher.state {
            StateMatch::Both => true,
            StateMatch::Desired => state == State::Desired,
            StateMatch::Live => state == State::Live,
        };
        state_ok
            && self.kinds.iter().any(|k| match k {
                KindPattern::Any => true,
                KindPattern::Kind(kind) => kind == meta.kind,
                KindPattern::GroupKind(group, kind) => group == meta.group && kind == meta.kind,
            })
            && self
                .namespaces
                .as_ref()
                .is_none_or(|set| set.is_match(meta.namespace.unwrap_or("")))
            && self.def.matcher.labels.iter().all(|(k, v)| {
                meta.labels.and_then(|l| l.get(k)).and_then(|l| l.as_str()) == Some(v.as_str())
            })
    }
}

/// The identifying fields of an object.
struct Meta<'a> {
    group: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    labels: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> Meta<'a> {
    fn of(object: &'a serde_json::Value) -> Meta<'a> {
        // `get`, not `pointer`: a pointer allocates to unescape each of its tokens.
        let metadata = object.get("metadata");
        let str_at = |v: Option<&'a serde_json::Value>, key: &str| {
            v.and_then(|v| v.get(key)).and_then(|v| v.as_str())
        };
        let api_version = str_at(Some(object), "apiVersion").unwrap_or("");
        Meta {
            group: api_version.rsplit_once('/').map_or("", |(g, _)| g),
            kind: str_at(Some(object), "kind").unwrap_or(""),
            namespace: str_at(metadata, "namespace").filter(|n| !n.is_empty()),
            name: str_at(metadata, "name").unwrap_or(""),
            labels: metadata
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.as_object()),
        }
    }
}

/// What one policy concluded about one object.
enum Outcome {
    Complies,
    Violates(String),
    Error(String),
}

#[derive(Clone)]
enum SlotState {
    Pending,
    Ready,
    Failed(String),
}

/// The optional inputs of one evaluation, already converted to CEL.
struct SubjectInputs<'v> {
    old_object: Option<&'v serde_json::Value>,
    namespace_object: Option<&'v Value>,
    plumbline: Option<Value>,
}

pub(super) struct Engine {
    root: CelContext<'static>,
    slots: Vec<Slot>,
    policies: Vec<Policy>,
    /// What the policies read, all together.
    inputs: Inputs,
    /// The policies whose kinds admit a kind that some policy names...
    by_kind: HashMap<String, Candidates>,
    /// ... and those that admit any other kind (`*`).
    other_kinds: Candidates,
}

/// The policies that may match objects of one kind, so that the others are never
/// looked at, and what they read of such an object together.
struct Candidates {
    policies: Vec<usize>,
    reads: InputReads,
}

impl Candidates {
    /// For `kind`, or for kinds that no policy names.
    fn new(policies: &[Policy], kind: Option<&str>) -> Candidates {
        let admits = |p: &Policy| {
            p.kinds.iter().any(|k| match (k, kind) {
                (KindPattern::Any, _) => true,
                (KindPattern::Kind(k) | KindPattern::GroupKind(_, k), Some(kind)) => k == kind,
                (_, None) => false,
            })
        };
        let mut reads = InputReads::default();
        let mut chosen = Vec::new();
        for (i, p) in policies.iter().enumerate().filter(|(_, p)| admits(p)) {
            reads.merge(&p.reads);
            chosen.push(i);
        }
        reads.settle();
        Candidates {
            policies: chosen,
            reads,
        }
    }
}

impl Engine {
    pub(super) fn build(
        files: &[(std::path::PathBuf, String)],
    ) -> Result<Engine, Vec<LoadProblem>> {
        let mut problems = Vec::new();
        let mut defs = Vec::new();
        for (path, text) in files {
            match pack::parse(path, text) {
                Ok(d) => defs.extend(d),
                Err(p) => problems.extend(p),
            }
        }
        let mut seen: HashMap<String, (std::path::PathBuf, usize)> = HashMap::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut interned: HashMap<Vec<(String, String)>, usize> = HashMap::new();
        let mut policies = Vec::new();
        for def in defs {
            let problem = |line: usize, message: String| LoadProblem {
                file: def.file.clone(),
                line,
                message: format!("policy `{}`: {message}", def.id),
            };
            if let Some((file, line)) = seen.get(&def.id) {
                problems.push(problem(
                    def.line,
                    format!("duplicate id, first defined at {}:{line}", file.display()),
                ));
                continue;
            }
            seen.insert(def.id.clone(), (def.file.clone(), def.line));
            let mut ok = true;
            let kinds = def
                .matcher
                .kinds
                .iter()
                .map(|k| match k.split_once('/') {
                    _ if k == "*" => KindPattern::Any,
                    Some((g, kind)) => KindPattern::GroupKind(g.to_string(), kind.to_string()),
                    None => KindPattern::Kind(k.clone()),
                })
                .collect();
            let namespaces = match &def.matcher.namespaces {
                None => None,
                Some(globs) => {
                    let mut b = GlobSetBuilder::new();
                    for g in globs {
                        match Glob::new(g) {
                            Ok(g) => {
                                b.add(g);
                            }
                            Err(e) => {
                                problems.push(problem(
                                    def.matcher_line,
                                    format!("namespace glob: {e}"),
                                ));
                                ok = false;
                            }
                        }
                    }
                    b.build().ok()
                }
            };
            let mut visible: HashMap<String, String> = HashMap::new();
            let mut prefix: Vec<(String, String)> = Vec::new();
            let mut policy_slots = Vec::new();
            let mut inputs = Inputs::default();
            for (name, loc) in &def.variables {
                if visible.contains_key(name) {
                    problems.push(problem(
                        loc.line,
                        format!("variable `{name}` declared twice"),
                    ));
                    ok = false;
                    continue;
                }
                prefix.push((name.clone(), loc.text.clone()));
                let index = match interned.get(&prefix) {
                    Some(i) => *i,
                    None => match Compiled::new(&loc.text, &visible) {
                        Ok(expression) => {
                            slots.push(Slot {
                                ident: format!("variables.{name}#{}", slots.len()),
                                name: name.clone(),
                                expression,
                            });
                            interned.insert(prefix.clone(), slots.len() - 1);
                            slots.len() - 1
                        }
                        Err(e) => {
                            problems.push(problem(loc.line, format!("variable `{name}`: {e}")));
                            ok = false;
                            continue;
                        }
                    },
                };
                inputs = inputs.union(slots[index].expression.inputs);
                visible.insert(name.clone(), slots[index].ident.clone());
                policy_slots.push(index);
            }
            let expression = match Compiled::new(&def.expression.text, &visible) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(problem(def.expression.line, format!("expression: {e}")));
                    None
                }
            };
            let message = match &def.message_expression {
                None => Ok(None),
                Some(loc) => Compiled::new(&loc.text, &visible).map(Some).map_err(|e| {
                    problems.push(problem(loc.line, format!("messageExpression: {e}")));
                }),
            };
            if let (true, Some(expression), Ok(message)) = (ok, expression, message) {
                inputs = inputs.union(expression.inputs);
                let mut reads = expression.reads.clone();
                if let Some(m) = &message {
                    inputs = inputs.union(m.inputs);
                    reads.merge(&m.reads);
                }
                for &i in &policy_slots {
                    reads.merge(&slots[i].expression.reads);
                }
                reads.settle();
                policies.push(Policy {
                    def,
                    kinds,
                    namespaces,
                    slots: policy_slots,
                    expression,
                    message,
                    inputs,
                    reads,
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let inputs = policies
            .iter()
            .fold(Inputs::default(), |a, p| a.union(p.inputs));
        let named: HashSet<&str> = policies
            .iter()
            .flat_map(|p| &p.kinds)
            .filter_map(|k| match k {
                KindPattern::Any => None,
                KindPattern::Kind(kind) | KindPattern::GroupKind(_, kind) => Some(kind.as_str()),
            })
            .collect();
        let by_kind = named
            .into_iter()
            .map(|kind| (kind.to_string(), Candidates::new(&policies, Some(kind))))
            .collect();
        let other_kinds = Candidates::new(&policies, None);
        Ok(Engine {
            root: expr::root_context(),
            slots,
            inputs,
            by_kind,
            other_kinds,
            policies,
        })
    }

    /// The same engine converting objects whole, to show that converting only what the
    /// policies read changes nothing.
    #[cfg(test)]
    pub(super) fn reading_whole(mut self) -> Engine {
        let whole = InputReads {
            object: reads::Reads::Whole,
            pod_spec: reads::Reads::Whole,
            containers: reads::Reads::Whole,
        };
        for p in &mut self.policies {
            p.reads = whole.clone();
        }
        for c in self.by_kind.values_mut().chain([&mut self.other_kinds]) {
            c.reads = whole.clone();
        }
        self
    }

    pub(super) fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Whether a policy that checks live objects may read their `status`.
    pub(super) fn reads_live_status(&self) -> bool {
        self.policies.iter().any(|p| {
            p.def.matcher.state != super::pack::StateMatch::Desired
                && p.reads.object.may_read("status")
        })
    }

    /// Whether evaluations read objects of `kind` from the inventory: all of them when a
    /// policy reads `inventory`, the coverage kinds when one reads `plumbline`.
    pub(super) fn reads_inventory_kind(&self, kind: &str) -> bool {
        self.inputs.inventory
            || (self.inputs.plumbline && super::facts::COVERAGE_KINDS.contains(&kind))
    }

    /// Runs `policy` in `ctx`, which holds the subject's inputs and the slots computed so
    /// far; slots it needs are computed and added.
    fn check(&self, policy: &Policy, ctx: &mut CelContext<'_>, slots: &mut [SlotState]) -> Outcome {
        for &i in &policy.slots {
            match &slots[i] {
                SlotState::Ready => {}
                SlotState::Failed(e) => {
                    return Outcome::Error(format!("variables.{}: {e}", self.slots[i].name))
                }
                SlotState::Pending => match self.slots[i].expression.eval(ctx) {
                    Ok(v) => {
                        ctx.add_variable_from_value(self.slots[i].ident.clone(), v);
                        slots[i] = SlotState::Ready;
                    }
                    Err(e) => {
                        let text = format!("variables.{}: {e}", self.slots[i].name);
                        slots[i] = SlotState::Failed(e);
                        return Outcome::Error(text);
                    }
                },
            }
        }
        match policy.expression.eval(ctx) {
            Ok(Value::Bool(true)) => Outcome::Complies,
            Ok(Value::Bool(false)) => Outcome::Violates(self.message(policy, ctx)),
            Ok(other) => Outcome::Error(format!("expression returned {other:?}, not a bool")),
            Err(e) => Outcome::Error(e),
        }
    }

    fn message(&self, policy: &Policy, ctx: &CelContext<'_>) -> String {
        let fallback = || {
            policy
                .def
                .message
                .clone()
                .unwrap_or_else(|| policy.def.title.clone())
        };
        match &policy.message {
            None => fallback(),
            Some(m) => match m.eval(ctx) {
                Ok(Value::String(s)) => s.to_string(),
                Ok(other) => format!("{} (messageExpression returned {other:?})", fallback()),
                Err(e) => format!("{} (messageExpression failed: {e})", fallback()),
            },
        }
    }

    /// A child of `base` holding one subject's inputs, as far as `needs` asks for them,
    /// and of the object and its pod facts what `reads` names.
    fn subject_scope<'b>(
        &self,
        base: &'b CelContext<'b>,
        object: &serde_json::Value,
        inputs: &SubjectInputs<'_>,
        needs: Inputs,
        reads: &InputReads,
    ) -> CelContext<'b> {
        let mut ctx = base.new_inner_scope();
        let cel_object = reads::convert(object, &reads.object);
        if needs.pod_spec || needs.containers {
            let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let (pod_spec, containers) = facts::pod(kind, object, reads);
            if needs.pod_spec {
                ctx.add_variable_from_value(expr::POD_SPEC, pod_spec);
            }
            if needs.containers {
                ctx.add_variable_from_value(expr::CONTAINERS, containers);
            }
        }
        ctx.add_variable_from_value(expr::OBJECT, cel_object);
        if needs.old_object {
            let old = inputs.old_object.map_or(Value::Null, expr::to_cel);
            ctx.add_variable_from_value(expr::OLD_OBJECT, old);
        }
        if needs.namespace_object {
            let ns = inputs.namespace_object.cloned().unwrap_or(Value::Null);
            ctx.add_variable_from_value(expr::NAMESPACE_OBJECT, ns);
        }
        if needs.plumbline {
            if let Some(p) = &inputs.plumbline {
                ctx.add_variable_from_value(expr::PLUMBLINE, p.clone());
            }
        }
        ctx
    }

    pub(super) fn evaluate(&self, subjects: &[Subject<'_>], context: &Context) -> Evaluation {
        let sla_hours = context.drift_sla.as_secs_f64() / 3600.0;
        // Cluster layers: the inventory is converted once per cluster, not per subject.
        let empty_inventory = {
            let mut c = self.root.new_inner_scope();
            if self.inputs.inventory {
                c.add_variable_from_value(expr::INVENTORY, expr::map([]));
            }
            c
        };
        let clusters: HashMap<&str, CelContext<'_>> = if self.inputs.inventory {
            let wanted: HashSet<&str> = subjects.iter().map(|s| s.cluster).collect();
            context
                .inventory
                .iter()
                .filter(|(cluster, _)| wanted.contains(cluster.as_str()))
                .map(|(cluster, kinds)| {
                    let mut c = self.root.new_inner_scope();
                    let inventory = expr::map(kinds.iter().map(|(kind, objects)| {
                        let list = objects.iter().map(expr::to_cel).collect();
                        (kind.as_str(), Value::List(std::sync::Arc::new(list)))
                    }));
                    c.add_variable_from_value(expr::INVENTORY, inventory);
                    (cluster.as_str(), c)
                })
                .collect()
        } else {
            HashMap::new()
        };
        let no_coverage = Coverage::default();
        let coverage: HashMap<&str, Coverage<'_>> = if self.inputs.plumbline {
            context
                .inventory
                .iter()
                .map(|(cluster, kinds)| {
                    let kinds = kinds.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
                    (cluster.as_str(), Coverage::new(kinds))
                })
                .collect()
        } else {
            HashMap::new()
        };
        let namespaces: HashMap<(&str, &str), Value> = if self.inputs.namespace_object {
            context
                .namespaces
                .iter()
                .map(|((c, n), v)| ((c.as_str(), n.as_str()), expr::to_cel(v)))
                .collect()
        } else {
            HashMap::new()
        };
        let waivers: Vec<waiver::Compiled<'_>> = context
            .waivers
            .iter()
            .map(|w| waiver::Compiled::new(w, context.today))
            .collect();
        let expired_hits: Vec<AtomicUsize> = waivers.iter().map(|_| AtomicUsize::new(0)).collect();

        let per_subject: Vec<Vec<Violation>> = subjects
            .par_iter()
            .map(|subject| {
                let meta = Meta::of(subject.object);
                let candidates = self.by_kind.get(meta.kind).unwrap_or(&self.other_kinds);
                let matching: Vec<&Policy> = candidates
                    .policies
                    .iter()
                    .map(|&i| &self.policies[i])
                    .filter(|p| p.matches(subject.state, &meta))
                    .collect();
                if matching.is_empty() {
                    return Vec::new();
                }
                let needs = matching
                    .iter()
                    .fold(Inputs::default(), |a, p| a.union(p.inputs));
                let base = clusters.get(subject.cluster).unwrap_or(&empty_inventory);
                let inputs = SubjectInputs {
                    old_object: subject.desired,
                    namespace_object: meta
                        .namespace
                        .and_then(|n| namespaces.get(&(subject.cluster, n))),
                    plumbline: needs.plumbline.then(|| {
                        let cov = coverage.get(subject.cluster).unwrap_or(&no_coverage);
                        plumbline_facts(subject, sla_hours, &cov.of(subject.object))
                    }),
                };
                let mut ctx =
                    self.subject_scope(base, subject.object, &inputs, needs, &candidates.reads);
                let mut slots = vec![SlotState::Pending; self.slots.len()];
                let mut out = Vec::new();
                for policy in matching {
                    let (message, error) = match self.check(policy, &mut ctx, &mut slots) {
                        Outcome::Complies => continue,
                        Outcome::Violates(m) => (m, false),
                        Outcome::Error(e) => (format!("evaluation error: {e}"), true),
                    };
                    let ns = meta.namespace.unwrap_or("");
                    let id = policy.def.id.as_str();
                    let mut applied = None;
                    for (i, w) in waivers.iter().enumerate() {
                        if w.covers(id, meta.kind, ns, meta.name) {
                            if w.expired {
                                expired_hits[i].fetch_add(1, Ordering::Relaxed);
                            } else if applied.is_none() {
                                applied = Some(w.applied());
                            }
                        }
                    }
                    let applied = applied
                        .or_else(|| waiver::from_annotations(subject.object, id))
                        .or_else(|| {
                            subject
                                .desired
                                .and_then(|d| waiver::from_annotations(d, id))
                        });
                    out.push(Violation {
                        policy: id.to_string(),
                        severity: policy.def.severity,
                        app: subject.app.to_string(),
                        cluster: subject.cluster.to_string(),
                        group: meta.group.to_string(),
                        kind: meta.kind.to_string(),
                        namespace: meta.namespace.map(str::to_string),
                        name: meta.name.to_string(),
                        state: subject.state,
                        message,
                        error,
                        waived: applied.is_some(),
                        waiver: applied,
                    });
                }
                out
            })
            .collect();
        Evaluation {
            results: per_subject.into_iter().flatten().collect(),
            expired_waivers: waivers
                .iter()
                .zip(&expired_hits)
                .filter_map(|(w, hits)| w.expired_report(hits.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// Every policy's tests, evaluated on the expression directly (the `match` is not
    /// applied, so a test object needs only the fields the expression reads).
    pub(super) fn run_tests(&self) -> Vec<TestReport> {
        self.policies
            .par_iter()
            .map(|policy| TestReport {
                policy: policy.def.id.clone(),
                file: policy.def.file.clone(),
                outcomes: policy
                    .def
                    .tests
                    .iter()
                    .map(|t| self.run_test(policy, t))
                    .collect(),
            })
            .collect()
    }

    fn run_test(&self, policy: &Policy, test: &TestCase) -> TestOutcome {
        let case = &test.case;
        let (object, wrapped) = match case.get("object") {
            Some(o) if case.get("kind").is_none() => (o, true),
            _ => (case, false),
        };
        let part = |key: &str| if wrapped { case.get(key) } else { None };
        let mut base = self.root.new_inner_scope();
        let inventory = part("inventory")
            .and_then(|i| i.as_object())
            .map(|kinds| expr::map(kinds.iter().map(|(k, v)| (k.as_str(), expr::to_cel(v)))))
            .unwrap_or_else(|| expr::map([]));
        base.add_variable_from_value(expr::INVENTORY, inventory);
        let namespace = part("namespaceObject").map(expr::to_cel);
        let state = match part("state").and_then(|s| s.as_str()) {
            Some("live") => State::Live,
            _ => State::Desired,
        };
        let inputs = SubjectInputs {
            old_object: part("oldObject"),
            namespace_object: namespace.as_ref(),
            plumbline: Some(test_facts(
                part("plumbline"),
                state,
                object,
                part("inventory"),
            )),
        };
        let all = Inputs {
            old_object: true,
            namespace_object: true,
            inventory: true,
            plumbline: true,
            pod_spec: true,
            containers: true,
        };
        let mut ctx = self.subject_scope(&base, object, &inputs, all, &policy.reads);
        let mut slots = vec![SlotState::Pending; self.slots.len()];
        let (ok, detail) = match (self.check(policy, &mut ctx, &mut slots), test.must_pass) {
            (Outcome::Complies, true) => (true, String::new()),
            (Outcome::Complies, false) => (false, "expected a violation, but it complies".into()),
            (Outcome::Violates(m), false) => (true, m),
            (Outcome::Violates(m), true) => (false, format!("expected to comply, but: {m}")),
            (Outcome::Error(e), _) => (false, format!("evaluation error: {e}")),
        };
        TestOutcome {
            expect: if test.must_pass { "pass" } else { "fail" },
            index: test.index,
            line: test.line,
            ok,
            detail,
        }
    }

    /// Failing tests as load problems, at the line of each failing test object.
    pub(super) fn test_failures(&self) -> Vec<LoadProblem> {
        self.run_tests()
            .into_iter()
            .flat_map(|report| {
                let file = report.file.clone();
                let policy = report.policy.clone();
                report
                    .outcomes
                    .into_iter()
                    .filter(|o| !o.ok)
                    .map(move |o| LoadProblem {
                        file: file.clone(),
                        line: o.line,
                        message: format!(
                            "policy `{policy}` fails its own {} test #{}: {}",
                            o.expect,
                            o.index + 1,
                            o.detail
                        ),
                    })
            })
            .collect()
    }
}

/// The `plumbline` variable for a scanned subject.
fn plumbline_facts(subject: &Subject<'_>, sla_hours: f64, coverage: &serde_json::Value) -> Value {
    let a = subject.audit;
    expr::map([
        ("app", Value::String(subject.app.to_string().into())),
        ("cluster", Value::String(subject.cluster.to_string().into())),
        (
            "state",
            Value::String(subject.state.as_str().to_string().into()),
        ),
        ("tracked", Value::Bool(a.tracked)),
        ("managed_namespace", Value::Bool(a.managed_namespace)),
        (
            "drift",
            expr::map([
                ("status", Value::String(a.drift.status.clone().into())),
                ("open_hours", Value::Float(a.drift.open_hours)),
            ]),
        ),
        ("drift_sla_hours", Value::Float(sla_hours)),
        ("coverage", expr::to_cel(coverage)),
    ])
}

/// The `plumbline` variable for a test: a tracked, in-sync object in a managed namespace
/// under a 24h SLA, with the test's own `plumbline` keys (and `drift` keys) on top.
fn test_facts(
    given: Option<&serde_json::Value>,
    state: State,
    object: &serde_json::Value,
    inventory: Option<&serde_json::Value>,
) -> Value {
    let kinds = inventory.and_then(|i| i.as_object()).into_iter().flatten();
    let kinds = kinds.map(|(k, v)| (k.as_str(), v.as_array().map_or(&[][..], Vec::as_slice)));
    let coverage = Coverage::new(kinds).of(object);
    let mut facts = serde_json::json!({
        "app": "test",
        "cluster": "test",
        "state": state.as_str(),
        "tracked": true,
        "managed_namespace": true,
        "drift": {"status": "in_sync", "open_hours": 0.0},
        "drift_sla_hours": 24.0,
        "coverage": coverage,
    });
    if let (Some(serde_json::Value::Object(given)), Some(facts)) = (given, facts.as_object_mut()) {
        for (key, value) in given {
            match (facts.get_mut(key), value) {
                (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                    old.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    facts.insert(key.clone(), value.clone());
                }
            }
        }
    }
    expr::to_cel(&facts)
}
