//! CEL plumbing: compiling expressions, converting objects, and the function library.
//!
//! Two fixes are applied to parsed expressions before they are stored:
//! - the `cel` crate's interpreter gets optional field selection (`a.?b`) and optional
//!   indexing (`a[?k]`) wrong for absent keys (an error, or a nested optional), so both
//!   are rerouted to functions defined here that follow the CEL spec;
//! - the interpreter copies a value wherever it selects a field, binds a macro's loop
//!   variable or passes a function argument, so expressions are reshaped to borrow:
//!   `a.b` becomes `a['b']`, `x.?a.?b.orValue(d)` / `.hasValue()` become `has()` tests,
//!   and a macro over a list at a plain path iterates over indices, reading `path[i]`
//!   (a path may index by a literal or an identifier, so `c.?a.?b` on such an item is a
//!   `has()` test too, not a function call that copies the item); `matches()` caches its
//!   compiled patterns;
//! - `variables.<name>` is resolved at load time to a per-subject slot, so a variable that
//!   several policies share (same name, same expression, same predecessors) is computed
//!   and converted once per object instead of once per policy.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::cel::common::ast::{operators, CallExpr, EntryExpr, Expr, LiteralValue, SelectExpr};
use kube_cel::cel::common::types::CelList;
use kube_cel::cel::extractors::This;
use kube_cel::cel::objects::{Key, Map, OptionalValue};
use kube_cel::cel::parser::{Expression, Parser};
use kube_cel::cel::{Context as CelContext, ExecutionError, FunctionContext, ResolveResult, Value};
use kube_cel::KubeCelExt;

use super::reads::InputReads;

const OPT_SELECT_FN: &str = "plumbline.optSelect";
const OPT_INDEX_FN: &str = "plumbline.optIndex";
const OPT_OF_FN: &str = "plumbline.optOf";
const OPT_NONE_FN: &str = "plumbline.optNone";
pub(super) const IS_LIST_FN: &str = "plumbline.isList";
pub(super) const INDICES_FN: &str = "plumbline.indices";

/// The variables an expression may name, besides `variables.<name>`.
pub(super) const OBJECT: &str = "object";
pub(super) const OLD_OBJECT: &str = "oldObject";
pub(super) const NAMESPACE_OBJECT: &str = "namespaceObject";
pub(super) const INVENTORY: &str = "inventory";
pub(super) const PLUMBLINE: &str = "plumbline";
pub(super) const POD_SPEC: &str = "podSpec";
pub(super) const CONTAINERS: &str = "containers";

/// Which of the optional inputs an expression reads, so a subject only pays for
/// converting the inputs that the policies matching it actually use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Inputs {
    pub old_object: bool,
    pub namespace_object: bool,
    pub inventory: bool,
    pub plumbline: bool,
    pub pod_spec: bool,
    pub containers: bool,
}

impl Inputs {
    pub(super) fn union(self, other: Inputs) -> Inputs {
        Inputs {
            old_object: self.old_object || other.old_object,
            namespace_object: self.namespace_object || other.namespace_object,
            inventory: self.inventory || other.inventory,
            plumbline: self.plumbline || other.plumbline,
            pod_spec: self.pod_spec || other.pod_spec,
            containers: self.containers || other.containers,
        }
    }
}

/// A parsed and rewritten expression.
#[derive(Debug)]
pub(super) struct Compiled {
    pub expression: Expression,
    pub inputs: Inputs,
    /// What it reads of the inputs taken from the object.
    pub reads: InputReads,
}

impl Compiled {
    /// Parses `source`; `slots` maps the variable names visible to it to their slot names.
    pub(super) fn new(source: &str, slots: &HashMap<String, String>) -> Result<Compiled, String> {
        let mut expression = Parser::default()
            .enable_optional_syntax(true)
            .parse(source)
            .map_err(|e| format!("invalid CEL: {}", one_line(&e.to_string())))?;
        rewrite(&mut expression, slots)?;
        let refs = expression.references();
        let inputs = Inputs {
            old_object: refs.has_variable(OLD_OBJECT),
            namespace_object: refs.has_variable(NAMESPACE_OBJECT),
            inventory: refs.has_variable(INVENTORY),
            plumbline: refs.has_variable(PLUMBLINE),
            pod_spec: refs.has_variable(POD_SPEC),
            containers: refs.has_variable(CONTAINERS),
        };
        let reads = InputReads::of(&expression);
        Ok(Compiled {
            expression,
            inputs,
            reads,
        })
    }

    pub(super) fn eval(&self, ctx: &CelContext) -> Result<Value, String> {
        ctx.resolve(&self.expression).map_err(|e| describe(&e))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Error text for people writing policies: the interpreter's Debug output names the key.
pub(super) fn describe(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => {
            format!("no such key: {k} (use `.?{k}` with `.orValue(...)` or `has()` for optional fields)")
        }
        ExecutionError::UndeclaredReference(r) => format!("undeclared reference: {r}"),
        other => one_line(&other.to_string()),
    }
}

fn rewrite(e: &mut Expression, slots: &HashMap<String, String>) -> Result<(), String> {
    if let Some(mut indexed) = indexed_comprehension(e) {
        if let Expr::Call(call) = &mut indexed.expr {
            if let [is_list, by_index, unchanged] = call.args.as_mut_slice() {
                rewrite(is_list, slots)?;
                rewrite(by_index, slots)?;
                rewrite_parts(unchanged, slots)?;
            }
        }
        *e = indexed;
        return Ok(());
    }
    if let Some(mut presence) = presence_test(e) {
        rewrite(&mut presence, slots)?;
        *e = presence;
        return Ok(());
    }
    rewrite_parts(e, slots)
}

/// [`rewrite`] for the parts of `e`, and the rewrites of `e` itself that keep its shape.
fn rewrite_parts(e: &mut Expression, slots: &HashMap<String, String>) -> Result<(), String> {
    match &mut e.expr {
        Expr::Call(call) => {
            if let Some(target) = call.target.as_mut() {
                rewrite(target, slots)?;
            }
            for arg in &mut call.args {
                rewrite(arg, slots)?;
            }
            if call.func_name == operators::OPT_SELECT {
                if let Some(guarded) = guarded_select(&call.args) {
                    e.expr = guarded;
                    return Ok(());
                }
                call.func_name = OPT_SELECT_FN.to_string();
            } else if call.func_name == operators::OPT_INDEX {
                call.func_name = OPT_INDEX_FN.to_string();
            }
        }
        Expr::Comprehension(c) => {
            rewrite(&mut c.iter_range, slots)?;
            rewrite(&mut c.accu_init, slots)?;
            rewrite(&mut c.loop_cond, slots)?;
            rewrite(&mut c.loop_step, slots)?;
            rewrite(&mut c.result, slots)?;
        }
        Expr::Ident(name) if name == "variables" => {
            return Err("`variables` can only be used as `variables.<name>`".to_string())
        }
        Expr::List(list) => {
            for el in &mut list.elements {
                rewrite(el, slots)?;
            }
        }
        Expr::Map(map) => {
            for entry in &mut map.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(m) => {
                        rewrite(&mut m.key, slots)?;
                        rewrite(&mut m.value, slots)?;
                    }
                    EntryExpr::StructField(f) => rewrite(&mut f.value, slots)?,
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(m) => {
                        rewrite(&mut m.key, slots)?;
                        rewrite(&mut m.value, slots)?;
                    }
                    EntryExpr::StructField(f) => rewrite(&mut f.value, slots)?,
                }
            }
        }
        Expr::Select(sel) => {
            if matches!(&sel.operand.expr, Expr::Ident(n) if n == "variables") {
                if sel.test {
                    return Err(format!(
                        "has(variables.{}) is not supported: variables always exist",
                        sel.field
                    ));
                }
                let slot = slots.get(&sel.field).ok_or_else(|| {
                    format!(
                        "unknown variable `variables.{}` (not declared before this expression)",
                        sel.field
                    )
                })?;
                e.expr = Expr::Ident(slot.clone());
                return Ok(());
            }
            rewrite(&mut sel.operand, slots)?;
            if !sel.test {
                // `a.b` copies `b` out of `a` in the interpreter; `a['b']` borrows it, so a
                // path into a large object costs nothing until its end is used.
                let operand = std::mem::take(&mut *sel.operand);
                let field = std::mem::take(&mut sel.field);
                e.expr = Expr::Call(CallExpr {
                    func_name: operators::INDEX.to_string(),
                    target: None,
                    args: vec![
                        operand,
                        Expression {
                            id: e.id,
                            expr: Expr::Literal(LiteralValue::String(field.as_str().into())),
                        },
                    ],
                });
            }
        }
        Expr::Literal(_) | Expr::Unspecified | Expr::Ident(_) => {}
    }
    Ok(())
}

/// A macro over a list at a plain path, `path.all(c, p(c))`, becomes
/// `isList(path) ? <the same over the indices, with c read as path[i]> : <unchanged>`:
/// the interpreter copies every item into the loop variable, while `path[i]` borrows it
/// from where it lies (a container, an inventory object), so only what `p` reads is copied.
fn indexed_comprehension(e: &Expression) -> Option<Expression> {
    let Expr::Comprehension(c) = &e.expr else {
        return None;
    };
    if c.iter_var2.is_some() || !is_path(&c.iter_range) {
        return None;
    }
    let mut names = Vec::new();
    path_idents(&c.iter_range, &mut names);
    names.push(c.iter_var.clone());
    if names.contains(&c.accu_var) || rebinds(&c.loop_step, &names) || rebinds(&c.loop_cond, &names)
    {
        return None;
    }
    let index = format!("@i{}", e.id);
    let item = Expression {
        id: e.id,
        expr: Expr::Call(CallExpr {
            func_name: operators::INDEX.to_string(),
            target: None,
            args: vec![
                c.iter_range.clone(),
                Expression {
                    id: e.id,
                    expr: Expr::Ident(index.clone()),
                },
            ],
        }),
    };
    let call = |name: &str| Expression {
        id: e.id,
        expr: Expr::Call(CallExpr {
            func_name: name.to_string(),
            target: None,
            args: vec![c.iter_range.clone()],
        }),
    };
    let mut indexed = (**c).clone();
    indexed.iter_range = call(INDICES_FN);
    indexed.iter_var = index;
    substitute(&mut indexed.loop_step, &c.iter_var, &item);
    substitute(&mut indexed.loop_cond, &c.iter_var, &item);
    Some(Expression {
        id: e.id,
        expr: Expr::Call(CallExpr {
            func_name: operators::CONDITIONAL.to_string(),
            target: None,
            args: vec![
                call(IS_LIST_FN),
                Expression {
                    id: e.id,
                    expr: Expr::Comprehension(Box::new(indexed)),
                },
                e.clone(),
            ],
        }),
    })
}

fn path_idents(e: &Expression, out: &mut Vec<String>) {
    match &e.expr {
        Expr::Ident(n) => out.push(n.clone()),
        Expr::Select(s) => path_idents(&s.operand, out),
        Expr::Call(call) => {
            for arg in &call.args {
                path_idents(arg, out);
            }
        }
        _ => {}
    }
}

/// Whether a comprehension inside `e` declares one of `names`.
fn rebinds(e: &Expression, names: &[String]) -> bool {
    fn any<'e>(mut es: impl Iterator<Item = &'e Expression>, names: &[String]) -> bool {
        es.any(|x| rebinds(x, names))
    }
    match &e.expr {
        Expr::Comprehension(c) => {
            names.contains(&c.iter_var)
                || names.contains(&c.accu_var)
                || c.iter_var2.as_ref().is_some_and(|v| names.contains(v))
                || any(
                    [
                        &c.iter_range,
                        &c.accu_init,
                        &c.loop_cond,
                        &c.loop_step,
                        &c.result,
                    ]
                    .into_iter(),
                    names,
                )
        }
        Expr::Call(call) => any(call.target.as_deref().into_iter().chain(&call.args), names),
        Expr::Select(s) => rebinds(&s.operand, names),
        Expr::List(l) => any(l.elements.iter(), names),
        Expr::Map(m) => m.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => rebinds(&me.key, names) || rebinds(&me.value, names),
            EntryExpr::StructField(f) => rebinds(&f.value, names),
        }),
        Expr::Struct(st) => st.entries.iter().any(|en| match &en.expr {
            EntryExpr::MapEntry(me) => rebinds(&me.key, names) || rebinds(&me.value, names),
            EntryExpr::StructField(f) => rebinds(&f.value, names),
        }),
        Expr::Literal(_) | Expr::Unspecified | Expr::Ident(_) => false,
    }
}

/// Replaces the identifier `name` with `with` (no comprehension in `e` rebinds it).
fn substitute(e: &mut Expression, name: &str, with: &Expression) {
    match &mut e.expr {
        Expr::Ident(n) if n == name => *e = with.clone(),
        Expr::Comprehension(c) => {
            for x in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                substitute(x, name, with);
            }
        }
        Expr::Call(call) => {
            if let Some(t) = call.target.as_deref_mut() {
                substitute(t, name, with);
            }
            for a in &mut call.args {
                substitute(a, name, with);
            }
        }
        Expr::Select(s) => substitute(&mut s.operand, name, with),
        Expr::List(l) => {
            for x in &mut l.elements {
                substitute(x, name, with);
            }
        }
        Expr::Map(m) => {
            for en in &mut m.entries {
                match &mut en.expr {
                    EntryExpr::MapEntry(me) => {
                        substitute(&mut me.key, name, with);
                        substitute(&mut me.value, name, with);
                    }
                    EntryExpr::StructField(f) => substitute(&mut f.value, name, with),
                }
            }
        }
        Expr::Struct(st) => {
            for en in &mut st.entries {
                match &mut en.expr {
                    EntryExpr::MapEntry(me) => {
                        substitute(&mut me.key, name, with);
                        substitute(&mut me.value, name, with);
                    }
                    EntryExpr::StructField(f) => substitute(&mut f.value, name, with),
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified | Expr::Ident(_) => {}
    }
}

/// The length of the list its argument evaluates to, looked at in place (a function
/// argument is otherwise converted, that is copied, before the function sees it).
fn list_len(ftx: &FunctionContext) -> Result<Option<usize>, ExecutionError> {
    let arg = ftx
        .args
        .first()
        .ok_or_else(|| ftx.error("expected one argument"))?;
    let v = Value::resolve_val(arg, ftx.ptx)?;
    Ok(v.downcast_ref::<CelList>().map(|l| l.len()))
}

/// `path.?a.?b.orValue(d)` becomes `has(path.a) && has(path.a.b) ? path.a.b : d`, and
/// `path.?a.?b.hasValue()` becomes `has(path.a) && has(path.a.b)`: no optional value is
/// built and no function is called (the interpreter converts every function argument,
/// so a call on a large value copies it twice).
fn presence_test(e: &Expression) -> Option<Expression> {
    let Expr::Call(call) = &e.expr else {
        return None;
    };
    let target = call.target.as_deref()?;
    let default = match (call.func_name.as_str(), call.args.as_slice()) {
        ("orValue", [d]) => Some(d),
        ("hasValue", []) => None,
        _ => return None,
    };
    let (base, fields) = optional_chain(target)?;
    let mut path = base.clone();
    let mut cond: Option<Expression> = None;
    for field in fields {
        let test = Expression {
            id: e.id,
            expr: Expr::Select(SelectExpr {
                operand: Box::new(path.clone()),
                field: field.clone(),
                test: true,
            }),
        };
        cond = Some(match cond {
            None => test,
            Some(c) => Expression {
                id: e.id,
                expr: Expr::Call(CallExpr {
                    func_name: operators::LOGICAL_AND.to_string(),
                    target: None,
                    args: vec![c, test],
                }),
            },
        });
        path = Expression {
            id: e.id,
            expr: Expr::Select(SelectExpr {
                operand: Box::new(path),
                field,
                test: false,
            }),
        };
    }
    let cond = cond?;
    Some(match default {
        None => cond,
        Some(d) => Expression {
            id: e.id,
            expr: Expr::Call(CallExpr {
                func_name: operators::CONDITIONAL.to_string(),
                target: None,
                args: vec![cond, path, d.clone()],
            }),
        },
    })
}

/// `path.?a.?b`: the path and the optionally selected fields.
fn optional_chain(e: &Expression) -> Option<(&Expression, Vec<String>)> {
    let Expr::Call(call) = &e.expr else {
        return None;
    };
    if call.func_name != operators::OPT_SELECT || call.target.is_some() {
        return None;
    }
    let [operand, field] = call.args.as_slice() else {
        return None;
    };
    let Expr::Literal(LiteralValue::String(field)) = &field.expr else {
        return None;
    };
    let (base, mut fields) = if is_path(operand) {
        (operand, Vec::new())
    } else {
        optional_chain(operand)?
    };
    fields.push(field.inner().to_string());
    Some((base, fields))
}

/// `path.?field` on a plain field path becomes `has(path.field) ? of(path.field) : none`:
/// the presence test looks the key up in place, where a function call would first copy
/// the whole operand (for `object` or `inventory`, the whole object or cluster).
fn guarded_select(args: &[Expression]) -> Option<Expr> {
    let [operand, field] = args else {
        return None;
    };
    let Expr::Literal(LiteralValue::String(field)) = &field.expr else {
        return None;
    };
    if !is_path(operand) {
        return None;
    }
    let select = |test| Expression {
        id: operand.id,
        expr: Expr::Select(SelectExpr {
            operand: Box::new(operand.clone()),
            field: field.inner().to_string(),
            test,
        }),
    };
    let call = |name: &str, args| Expression {
        id: operand.id,
        expr: Expr::Call(CallExpr {
            func_name: name.to_string(),
            target: None,
            args,
        }),
    };
    Some(Expr::Call(CallExpr {
        func_name: operators::CONDITIONAL.to_string(),
        target: None,
        args: vec![
            select(true),
            call(OPT_OF_FN, vec![select(false)]),
            call(OPT_NONE_FN, vec![]),
        ],
    }))
}

/// An identifier followed by plain field selections and indexes by a literal or an
/// identifier (`containers[i].securityContext`): cheap to evaluate twice, and borrowed.
fn is_path(e: &Expression) -> bool {
    match &e.expr {
        Expr::Ident(_) => true,
        Expr::Select(s) => !s.test && is_path(&s.operand),
        Expr::Call(call) if call.func_name == operators::INDEX && call.target.is_none() => {
            matches!(call.args.as_slice(), [operand, key]
                if is_path(operand) && matches!(key.expr, Expr::Ident(_) | Expr::Literal(_)))
        }
        _ => false,
    }
}

fn optional(value: Option<Value>) -> Value {
    Value::Opaque(Arc::new(match value {
        Some(v) => OptionalValue::of(v),
        None => OptionalValue::none(),
    }))
}

/// `Some(inner)` for an optional, `None` for anything else.
fn as_optional(v: &Value) -> Option<Option<&Value>> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<OptionalValue>().map(|o| o.value()),
        _ => None,
    }
}

fn lookup(container: &Value, key: &Value) -> Option<Value> {
    match (container, key) {
        (Value::Map(m), Value::String(s)) => m.map.get(&Key::String(s.clone())).cloned(),
        (Value::Map(m), Value::Int(i)) => m.map.get(&Key::Int(*i)).cloned(),
        (Value::Map(m), Value::UInt(u)) => m.map.get(&Key::Uint(*u)).cloned(),
        (Value::Map(m), Value::Bool(b)) => m.map.get(&Key::Bool(*b)).cloned(),
        (Value::List(l), Value::Int(i)) => usize::try_from(*i).ok().and_then(|i| l.get(i)).cloned(),
        (Value::List(l), Value::UInt(u)) => {
            usize::try_from(*u).ok().and_then(|i| l.get(i)).cloned()
        }
        _ => None,
    }
}

/// `operand.?field` / `operand[?key]`: none when the operand is none or lacks the key.
fn opt_lookup(operand: Value, key: Value) -> ResolveResult {
    Ok(match as_optional(&operand) {
        Some(None) => optional(None),
        Some(Some(inner)) => optional(lookup(inner, &key)),
        None => optional(lookup(&operand, &key)),
    })
}

/// The root context: CEL's standard library, the Kubernetes libraries, and the
/// optional-access fixes. Built once per policy set; subjects get child scopes.
pub(super) fn root_context() -> CelContext<'static> {
    let mut ctx = CelContext::default().with_all();
    ctx.add_function(OPT_SELECT_FN, opt_lookup);
    ctx.add_function(OPT_INDEX_FN, opt_lookup);
    ctx.add_function(OPT_OF_FN, |v: Value| -> ResolveResult {
        Ok(optional(Some(v)))
    });
    ctx.add_function(OPT_NONE_FN, || -> ResolveResult { Ok(optional(None)) });
    ctx.add_function("matches", matches);
    ctx.add_function(IS_LIST_FN, |ftx: &FunctionContext| -> ResolveResult {
        Ok(Value::Bool(list_len(ftx)?.is_some()))
    });
    ctx.add_function(INDICES_FN, |ftx: &FunctionContext| -> ResolveResult {
        let n = list_len(ftx)?.ok_or_else(|| ftx.error("not a list"))?;
        Ok(Value::List(Arc::new(
            (0..n as i64).map(Value::Int).collect(),
        )))
    });
    ctx
}

thread_local! {
    /// Compiled `matches()` patterns: policies use a handful of literal patterns, which the
    /// standard `matches` would compile again on every call.
    static PATTERNS: std::cell::RefCell<HashMap<Arc<String>, regex::Regex>> =
        std::cell::RefCell::new(HashMap::new());
}

/// `string.matches(pattern)`, with the compiled pattern cached per thread.
fn matches(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(&pattern) {
            return Ok(re.is_match(&this));
        }
        let re = regex::Regex::new(&pattern)
            .map_err(|e| ftx.error(format!("'{pattern}' not a valid regex: {e}")))?;
        let found = re.is_match(&this);
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(pattern, re);
        Ok(found)
    })
}

/// Converts a JSON value to CEL. Integers stay integers (CEL has no implicit
/// int/double conversion, and Kubernetes fields such as `replicas` are ints).
pub(super) fn to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(to_cel).collect())),
        serde_json::Value::Object(o) => map(o.iter().map(|(k, v)| (k.as_str(), to_cel(v)))),
    }
}

/// Builds a CEL map with string keys.
pub(super) fn map<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
    let map: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, object: serde_json::Value) -> Result<Value, String> {
        let root = root_context();
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value(OBJECT, to_cel(&object));
        Compiled::new(src, &HashMap::new())?.eval(&ctx)
    }

    #[test]
    fn optional_select_follows_the_spec() {
        let obj = json!({"spec": {"containers": [{"name": "a"}]}});
        let cases = [
            (
                "object.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false))",
                true,
            ),
            ("object.?spec.?initContainers.orValue([]).size() == 0", true),
            ("object.?spec.?containers.orValue([]).size() == 1", true),
            ("object.spec.containers[?3].hasValue()", false),
            ("object.spec.containers[?0].?name.orValue('') == 'a'", true),
            ("{'a': 1}.?b.orValue(3) == 3", true),
            (
                "object.?metadata.?labels[?'app'].orValue('none') == 'none'",
                true,
            ),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, obj.clone()), Ok(Value::Bool(want)), "{src}");
        }
    }

    #[test]
    fn rewritten_macros_keep_their_meaning() {
        let obj = json!({"l": [{"n": "a", "v": [1, 2]}, {"n": "b", "v": []}], "m": {"x": 1, "y": 2},
                         "s": "abc"});
        let cases = [
            ("object.l.all(c, c.n != '')", true),
            ("object.l.exists(c, c.n == 'b' && c.v.size() == 0)", true),
            ("object.l.map(c, c.v.size() > 0, c.n) == ['a']", true),
            (
                "object.l.filter(c, c.v.exists(v, v == 2)).size() == 1",
                true,
            ),
            ("object.m.all(k, k in ['x', 'y'])", true),
            ("object.m.exists(k, object.m[k] == 2)", true),
            ("object.l.all(object, object.n.size() == 1)", true),
            ("object.l.all(c, c.v.all(c, c > 0))", true),
            ("object.l.exists_one(c, c.?v[?0].hasValue())", true),
            (
                "object.l[0].?v.orValue([]).size() == 2 && !object.?q.?r.hasValue()",
                true,
            ),
            (
                "object.s.matches('^a') && !object.s.matches('^b') && object.s.matches('c$')",
                true,
            ),
            // Optional chains and macros on an item read through an index.
            ("object.l.all(c, c.?v.orValue([]).all(v, v > 0))", true),
            ("object.l.exists(c, c.?w.?x.hasValue())", false),
            (
                "object.l.map(c, c.v.map(v, object.l[0].v[v - 1])) == [[1, 2], []]",
                true,
            ),
            (
                "object.m['x'].?y.orValue(5) == 5 && object.l[1].?n.orValue('') == 'b'",
                true,
            ),
            ("object.m.exists(k, object.m[k].?z.hasValue())", false),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, obj.clone()), Ok(Value::Bool(want)), "{src}");
        }
        let err = eval("object.l.all(c, c.missing)", obj).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn kubernetes_libraries_are_available() {
        let obj = json!({"m": "1Gi"});
        for src in [
            "quantity(object.m).isGreaterThan(quantity('500Mi'))",
            "'app:v1.2'.find('[0-9.]+$') == '1.2'",
            "cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))",
            "url('https://example.com/x').getHost() == 'example.com'",
            "semver('1.2.3').isLessThan(semver('2.0.0'))",
            "['a', 'b'].join(',') == 'a,b'",
        ] {
            assert_eq!(eval(src, obj.clone()), Ok(Value::Bool(true)), "{src}");
        }
    }

    #[test]
    fn missing_field_reports_the_key() {
        let err = eval("object.spec.replicas > 1", json!({"spec": {}})).unwrap_err();
        assert!(err.contains("replicas"), "{err}");
    }

    #[test]
    fn variables_must_be_declared() {
        let err = Compiled::new("variables.x", &HashMap::new()).unwrap_err();
        assert!(err.contains("variables.x"), "{err}");
        assert!(Compiled::new("object.(", &HashMap::new()).is_err());
    }

    #[test]
    fn numbers_keep_their_type() {
        assert_eq!(to_cel(&json!(2)), Value::Int(2));
        assert_eq!(to_cel(&json!(1.5)), Value::Float(1.5));
        assert_eq!(to_cel(&json!(u64::MAX)), Value::UInt(u64::MAX));
    }
}
