//! What the expressions read of an object, so that only that part is converted to CEL.
//!
//! Converting a whole object (managedFields, status, the pod template) to CEL, and then
//! into the interpreter's own values, costs more than evaluating most checks on it. An
//! expression reads an input through paths: `object.spec.replicas`, `containers[i].image`,
//! `has(object.metadata.ownerReferences)`, the loop variable of a macro over a path. Any
//! other use takes the value at the end of the path whole (a function argument, a
//! comparison, a list built from it). [`Reads`] collects the paths of each input, and
//! [`convert`] keeps the fields on them and drops the rest: a field on no path cannot
//! change a result, an error or a message.

use std::collections::BTreeMap;

use kube_cel::cel::common::ast::{operators, EntryExpr, Expr, IdedEntryExpr, LiteralValue};
use kube_cel::cel::parser::Expression;
use kube_cel::cel::Value;
use serde_json::Value as Json;

use super::expr;

/// What is read of a value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reads {
    /// All of it.
    Whole,
    /// Its kind, a list's length, and these fields (`each`: any key or index, read by a
    /// macro's loop variable or an index that is not a literal).
    Parts {
        fields: BTreeMap<String, Reads>,
        each: Option<Box<Reads>>,
    },
}

impl Default for Reads {
    fn default() -> Self {
        Reads::Parts {
            fields: BTreeMap::new(),
            each: None,
        }
    }
}

/// The value's kind and a list's length only.
pub(super) static NOTHING: Reads = Reads::Parts {
    fields: BTreeMap::new(),
    each: None,
};

#[derive(Clone)]
enum Step {
    Field(String),
    Each,
}

impl Reads {
    /// Whether the field `name` of the value may be read.
    pub(super) fn may_read(&self, name: &str) -> bool {
        match self {
            Reads::Whole => true,
            Reads::Parts { fields, each } => fields.contains_key(name) || each.is_some(),
        }
    }

    fn merge(&mut self, other: &Reads) {
        match (&mut *self, other) {
            (Reads::Whole, _) => {}
            (_, Reads::Whole) => *self = Reads::Whole,
            (
                Reads::Parts { fields, each },
                Reads::Parts {
                    fields: more,
                    each: more_each,
                },
            ) => {
                for (k, r) in more {
                    fields.entry(k.clone()).or_default().merge(r);
                }
                if let Some(m) = more_each {
                    each.get_or_insert_with(Box::default).merge(m);
                }
            }
        }
    }

    fn add(&mut self, path: &[Step], leaf: Reads) {
        let Some((step, rest)) = path.split_first() else {
            return self.merge(&leaf);
        };
        let Reads::Parts { fields, each } = self else {
            return;
        };
        match step {
            Step::Field(f) => fields.entry(f.clone()).or_default().add(rest, leaf),
            Step::Each => each.get_or_insert_with(Box::default).add(rest, leaf),
        }
    }

    /// Folds `each` into every named field, so that [`convert`] looks up one entry per key.
    fn settle(&mut self) {
        if let Reads::Parts { fields, each } = self {
            if let Some(each) = each {
                each.settle();
                for r in fields.values_mut() {
                    r.merge(each);
                }
            }
            for r in fields.values_mut() {
                r.settle();
            }
        }
    }
}

/// The inputs bound to parts of the object: `object`, and `podSpec` and `containers`
/// computed from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct InputReads {
    pub object: Reads,
    pub pod_spec: Reads,
    pub containers: Reads,
}

impl InputReads {
    /// What `e` reads of each input.
    pub(super) fn of(e: &Expression) -> InputReads {
        let mut walker = Walker {
            reads: InputReads::default(),
            scopes: Vec::new(),
        };
        walker.walk(e);
        walker.reads
    }

    pub(super) fn merge(&mut self, other: &InputReads) {
        self.object.merge(&other.object);
        self.pod_spec.merge(&other.pod_spec);
        self.containers.merge(&other.containers);
    }

    /// Ready for [`convert`], once every expression is merged in.
    pub(super) fn settle(&mut self) {
        self.object.settle();
        self.pod_spec.settle();
        self.containers.settle();
    }

    fn input(&mut self, name: &str) -> Option<&mut Reads> {
        match name {
            expr::OBJECT => Some(&mut self.object),
            expr::POD_SPEC => Some(&mut self.pod_spec),
            expr::CONTAINERS => Some(&mut self.containers),
            _ => None,
        }
    }
}

/// `v` as CEL, with only what `reads` names (settled).
pub(super) fn convert(v: &Json, reads: &Reads) -> Value {
    match (reads, v) {
        (Reads::Whole, _) => expr::to_cel(v),
        (Reads::Parts { fields, each }, Json::Object(o)) => match each {
            Some(each) => expr::map(
                o.iter()
                    .map(|(k, v)| (k.as_str(), convert(v, fields.get(k).unwrap_or(each)))),
            ),
            None => expr::map(
                fields
                    .iter()
                    .filter_map(|(k, r)| o.get(k).map(|v| (k.as_str(), convert(v, r)))),
            ),
        },
        (Reads::Parts { each, .. }, Json::Array(a)) => {
            let each = each.as_deref().unwrap_or(&NOTHING);
            Value::List(std::sync::Arc::new(
                a.iter().map(|v| convert(v, each)).collect(),
            ))
        }
        (_, scalar) => expr::to_cel(scalar),
    }
}

/// Where a name points: an input and a path into it, or nothing tracked.
type Binding = Option<(String, Vec<Step>)>;

struct Walker {
    reads: InputReads,
    /// Names bound by the macros around the current expression, innermost last.
    scopes: Vec<(String, Binding)>,
}

/// `e` as an identifier followed by field selections and indexes, with the index
/// expressions that are not literals (they are read too).
fn path<'e>(
    e: &'e Expression,
    steps: &mut Vec<Step>,
    keys: &mut Vec<&'e Expression>,
) -> Option<&'e str> {
    match &e.expr {
        Expr::Ident(name) => Some(name),
        Expr::Select(s) if !s.test => {
            let base = path(&s.operand, steps, keys)?;
            steps.push(Step::Field(s.field.clone()));
            Some(base)
        }
        Expr::Call(call) if call.func_name == operators::INDEX && call.target.is_none() => {
            let [operand, key] = call.args.as_slice() else {
                return None;
            };
            let base = path(operand, steps, keys)?;
            match &key.expr {
                Expr::Literal(LiteralValue::String(s)) => steps.push(Step::Field(s.to_string())),
                Expr::Literal(_) => steps.push(Step::Each),
                _ => {
                    steps.push(Step::Each);
                    keys.push(key);
                }
            }
            Some(base)
        }
        _ => None,
    }
}

impl Walker {
    /// The input and path that `base` followed by `steps` denotes, if any.
    fn resolve(&self, base: &str, steps: Vec<Step>) -> Binding {
        match self.scopes.iter().rev().find(|(name, _)| name == base) {
            Some((_, None)) => None,
            Some((_, Some((input, prefix)))) => {
                let mut full = prefix.clone();
                full.extend(steps);
                Some((input.clone(), full))
            }
            None => Some((base.to_string(), steps)),
        }
    }

    fn record(&mut self, binding: &Binding, leaf: Reads) {
        if let Some((input, steps)) = binding {
            if let Some(reads) = self.reads.input(input) {
                reads.add(steps, leaf);
            }
        }
    }

    /// Reads `e` if it is a path, with `extra` steps after it; the binding it denotes.
    fn read_path(&mut self, e: &Expression, extra: Option<Step>, leaf: Reads) -> Option<Binding> {
        let mut steps = Vec::new();
        let mut keys = Vec::new();
        let base = path(e, &mut steps, &mut keys)?;
        steps.extend(extra);
        let binding = self.resolve(base, steps);
        self.record(&binding, leaf);
        for key in keys {
            self.walk(key);
        }
        Some(binding)
    }

    fn walk(&mut self, e: &Expression) {
        if self.read_path(e, None, Reads::Whole).is_some() {
            return;
        }
        match &e.expr {
            Expr::Select(s) => {
                // `has(p.f)` reads whether `p` has `f`, not what `f` holds.
                let field = Step::Field(s.field.clone());
                if self
                    .read_path(&s.operand, Some(field), Reads::default())
                    .is_none()
                {
                    self.walk(&s.operand);
                }
            }
            Expr::Call(call)
                if (call.func_name == expr::IS_LIST_FN || call.func_name == expr::INDICES_FN)
                    && call.target.is_none() =>
            {
                // The kind and length of a list: its items are read through their paths.
                for arg in &call.args {
                    if self
                        .read_path(arg, Some(Step::Each), Reads::default())
                        .is_none()
                    {
                        self.walk(arg);
                    }
                }
            }
            Expr::Call(call) => {
                for x in call.target.as_deref().into_iter().chain(&call.args) {
                    self.walk(x);
                }
            }
            Expr::Comprehension(c) => {
                self.walk(&c.accu_init);
                // Iterating needs every key or item; what the loop variable reads of them
                // is read at the path of the range.
                let item = match c.iter_var2 {
                    None => self.read_path(&c.iter_range, Some(Step::Each), Reads::default()),
                    Some(_) => None,
                };
                let item = match item {
                    Some(binding) => binding,
                    None => {
                        self.walk(&c.iter_range);
                        None
                    }
                };
                let depth = self.scopes.len();
                self.scopes.push((c.iter_var.clone(), item));
                if let Some(v) = &c.iter_var2 {
                    self.scopes.push((v.clone(), None));
                }
                self.scopes.push((c.accu_var.clone(), None));
                for x in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(x);
                }
                self.scopes.truncate(depth);
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.walk(x);
                }
            }
            Expr::Map(m) => self.walk_entries(&m.entries),
            Expr::Struct(s) => self.walk_entries(&s.entries),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn walk_entries(&mut self, entries: &[IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    self.walk(&m.key);
                    self.walk(&m.value);
                }
                EntryExpr::StructField(f) => self.walk(&f.value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Json {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": ""},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
                {"name": "proxy", "image": "envoy", "resources": {}}]}}},
            "status": {"replicas": 3, "conditions": [{"type": "Available"}]}})
    }

    /// Evaluates `src` on the object converted whole and converted as far as `src` reads.
    fn both(src: &str, object: &Json) -> (Result<Value, String>, Result<Value, String>, Value) {
        let compiled = expr::Compiled::new(src, &std::collections::HashMap::new())
            .unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut reads = compiled.reads.clone();
        reads.settle();
        let root = expr::root_context();
        let eval = |value: Value| {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value(expr::OBJECT, value);
            compiled.eval(&ctx)
        };
        let pruned = convert(object, &reads.object);
        (eval(expr::to_cel(object)), eval(pruned.clone()), pruned)
    }

    #[test]
    fn results_and_errors_do_not_change() {
        let object = deployment();
        for src in [
            "object.spec.replicas >= 2",
            "object.?spec.?replicas.orValue(1) >= 2",
            "has(object.metadata.ownerReferences) || has(object.spec.template)",
            "object.metadata.labels.exists(k, k == 'tier')",
            "object.metadata.labels.all(k, object.metadata.labels[k] != '')",
            "object.metadata.labels['app'] == 'web'",
            "object.spec.template.spec.containers.all(c, c.image.contains(':'))",
            "object.spec.template.spec.containers.map(c, c.name)",
            "object.spec.template.spec.containers.filter(c, c.name == 'app')",
            "object.spec.template.spec.containers.exists(object, object.name == 'proxy')",
            "object.spec.template.spec.containers.all(c, c.?resources.?limits.hasValue())",
            "object.spec.template.spec.containers.exists(c, c.env.exists(e, has(e.valueFrom)))",
            "object.spec.template.spec.containers.map(c, c.?ports.orValue([]).size())",
            "object.spec.template.spec.containers[1].?ports.orValue([]).size() == 0",
            "object.spec.template.spec.containers[0]",
            "object.metadata.size() + size(object.spec)",
            "[object.spec.replicas, object.kind, {'m': object.metadata}.m.name]",
            "object.kind + '/' + object.metadata.name",
            "object.spec.missing",
            "object.spec.template.spec.containers[2].name",
            "object.status",
            "object",
        ] {
            let (whole, pruned, _) = both(src, &object);
            assert_eq!(whole, pruned, "{src}");
        }
    }

    #[test]
    fn only_the_paths_read_are_converted() {
        let (_, _, pruned) = both(
            "object.?spec.?replicas.orValue(1) >= 2 && !has(object.metadata.ownerReferences)",
            &deployment(),
        );
        assert_eq!(
            pruned,
            expr::to_cel(&json!({"spec": {"replicas": 3}, "metadata": {}}))
        );
        let (_, _, pruned) = both(
            "object.spec.template.spec.containers.all(c, has(c.resources))",
            &deployment(),
        );
        let containers = json!([{}, {"resources": {}}]);
        assert_eq!(
            pruned,
            expr::to_cel(&json!({"spec": {"template": {"spec": {"containers": containers}}}}))
        );
    }
}
