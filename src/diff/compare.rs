//! The comparison proper: is the (normalised) desired object contained in the live one, the
//! way a sync would merge it?
//!
//! Rules, each named in the README:
//! - *subset*: fields Git does not mention are not drift (the server and controllers add many);
//! - *empty-is-absent*: `null`, `{}`, `[]`, `""`, `false` and `0` in Git match an absent live
//!   field, because the server drops such values from omitempty fields;
//! - *merge-keys*: keyed lists are matched item by item by their merge key, sets by value,
//!   atomic lists position by position with equal length;
//! - *atomic-items*: an item of an atomic list of a built-in kind holds nothing Git (with the
//!   server's defaults) does not, as a sync replaces the list whole;
//! - *three-way*: a field the previous apply owned, still live, but gone from Git is drift,
//!   because a sync would remove it;
//! - *numbers*: `1` equals `1.0`; otherwise JSON types are kept (a string `"8080"` is not the
//!   integer `8080`, as the server keeps int-or-string values as sent).

use super::fieldset::{has_key, item_key, same_key, FieldSet, Seg};
use super::lists::{list_kind, ListKind};
use serde_json::Value;
use std::sync::LazyLock;

/// One difference found, before ignore rules and redaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RawChange {
    /// RFC 6901 pointer, with Git's list positions where Git has the item.
    pub pointer: String,
    /// RFC 6901 pointer into the live object (`-` to append), for the patch.
    pub live_pointer: String,
    /// The path in managedFields form, to find who owns the live field.
    pub segs: Vec<Seg>,
    pub desired: Option<Value>,
    pub live: Option<Value>,
}

/// Compares `desired` against `live`; `applied` is what the previous apply owned, if known.
/// Every field added inside an item of an atomic list counts (see [`compare_defaulted`]).
pub fn compare<'a>(
    group: &'a str,
    kind: &'a str,
    builtin: bool,
    desired: &'a Value,
    live: &'a Value,
    applied: Option<&'a FieldSet>,
) -> Vec<RawChange> {
    compare_defaulted(group, kind, builtin, desired, None, live, applied)
}

/// [`compare`], where a live field inside an atomic list's item that Git lacks is excused
/// when `defaulted` (Git's object with the server's defaults) holds it with the same value.
pub fn compare_defaulted<'a>(
    group: &'a str,
    kind: &'a str,
    builtin: bool,
    desired: &'a Value,
    defaulted: Option<&'a Value>,
    live: &'a Value,
    applied: Option<&'a FieldSet>,
) -> Vec<RawChange> {
    let mut walker = Walker::new(group, kind, builtin, None);
    walker.defaulted = defaulted;
    walker.walk(desired, live, applied);
    walker.changes
}

/// What a probe needs to know of the tracking label and annotation: the GitOps tool writes
/// them at apply time, so a live value naming this app is what the normalised desired
/// object holds (see `normalize::desired`).
#[derive(Clone, Copy)]
pub struct ProbeTracking<'a> {
    pub label: &'a str,
    pub annotation: &'a str,
    pub app: &'a str,
}

/// True when Git's object as written (not normalised) is contained in the live one: the
/// cheap proof that most objects are in sync, with no copy, normalisation or allocation.
///
/// It agrees with [`compare`] on the normalised desired object, or errs towards "maybe
/// not": it skips what normalisation strips (server metadata, `status`, type information),
/// honours the tracking label and annotation as normalisation does, and normalises a value
/// that differs (a quantity, an octal mode, Secret data) on its own before comparing it.
/// `stringData` it does not fold: it reads as a difference. Values that are equal as
/// written are taken as equal, on what the walk relies on already: live values are in the
/// server's canonical form.
pub fn contained<'a>(
    group: &'a str,
    kind: &'a str,
    builtin: bool,
    desired: &'a Value,
    live: &'a Value,
    applied: Option<&'a FieldSet>,
    tracking: ProbeTracking<'a>,
) -> bool {
    let mut walker = Walker::new(group, kind, builtin, Some(tracking));
    walker.walk(desired, live, applied);
    !walker.differs
}

thread_local! {
    /// Leaf normalisations worked out, by kind, path and value (see `normalized_leaf`).
    static NORMALIZED_LEAVES: std::cell::RefCell<std::collections::HashMap<String, Option<Value>>> =
        std::cell::RefCell::default();
}

/// Bound of [`NORMALIZED_LEAVES`]: past it, the table starts again.
const MAX_NORMALIZED_LEAVES: usize = 4096;

/// Stands in for a map or list Git dropped, when what the apply owned inside it is sought.
static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::Object(serde_json::Map::new()));
static EMPTY_ARRAY: Value = Value::Array(Vec::new());

/// One step of the path being walked, borrowed from the objects: strings are built only
/// when a change is recorded, which keeps the walk over objects in sync allocation-free.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Item {
        index: usize,
        /// Position in the live list; `None` for an item the live list lacks (appended).
        live_index: Option<usize>,
        seg: SegRef<'a>,
    },
}

/// A list item's identity as managedFields names it, computed when needed.
#[derive(Clone, Copy)]
enum SegRef<'a> {
    Key(&'a Value, &'static [&'static str]),
    Value(&'a Value),
    Index(usize),
}

impl SegRef<'_> {
    fn to_seg(self) -> Seg {
        match self {
            SegRef::Key(item, key_fields) => item_key(item, key_fields)
                .map(Seg::Key)
                .unwrap_or(Seg::Index(0)),
            SegRef::Value(value) => Seg::Value(value.clone()),
            SegRef::Index(index) => Seg::Index(index),
        }
    }
}

struct Walker<'a> {
    group: &'a str,
    kind: &'a str,
    builtin: bool,
    changes: Vec<RawChange>,
    steps: Vec<Step<'a>>,
    /// Set for a probe ([`contained`]): differences are noted, not recorded.
    probe: Option<ProbeTracking<'a>>,
    differs: bool,
    /// Set inside the items of an atomic list, whose steps do not name the item.
    in_atomic_item: bool,
    /// Git's object with the server's defaults, to tell them from additions inside atomic items.
    defaulted: Option<&'a Value>,
}

impl<'a> Walker<'a> {
    fn new(group: &'a str, kind: &'a str, builtin: bool, probe: Option<ProbeTracking<'a>>) -> Self {
        Walker {
            group,
            kind,
            builtin,
            changes: Vec::new(),
            steps: Vec::new(),
            probe,
            differs: false,
            in_atomic_item: false,
            defaulted: None,
        }
    }

    fn walk(&mut self, desired: &'a Value, live: &'a Value, applied: Option<&'a FieldSet>) {
        match (desired, live) {
            (Value::Object(d), Value::Object(l)) => {
                for (name, dv) in d {
                    if self.differs {
                        return;
                    }
                    let lv = field(l, name);
                    if self.probe.is_some() && self.probe_skips(name, lv) {
                        continue;
                    }
                    self.enter_field(name);
                    match lv {
                        Some(lv) if !lv.is_null() => {
                            self.walk(dv, lv, applied.and_then(|a| a.field(name)))
                        }
                        _ if self.probe.is_some() && is_scalar(dv) => {
                            if !self.probe_leaf_matches(dv, None) {
                                self.differs = true;
                            }
                        }
                        _ if is_unasserted(dv) => {}
                        _ => self.record(Some(dv), None),
                    }
                    self.leave_field();
                }
                if let Some(applied) = applied {
                    let mut removed: Vec<&'a String> = applied
                        .fields
                        .keys()
                        .filter(|name| d.get(*name).is_none_or(Value::is_null))
                        .collect();
                    removed.sort();
                    for name in removed {
                        if self.server_owned(name)
                            || (self.probe.is_some() && self.probe_skips(name, field(l, name)))
                        {
                            continue;
                        }
                        // A live `false` or `0` is a value the server kept (omitempty drops
                        // them from plain fields, so only pointer fields hold them): a sync
                        // removes it, and `replicas: 0` or `automountServiceAccountToken:
                        // false` dropped from Git is real drift. Where the server defaults the
                        // removed field back to the same value (`suspend: false`), the pass
                        // with defaults excuses it (see `diff_object`).
                        let Some(lv) = field(l, name).filter(|v| !is_empty_value(v)) else {
                            continue;
                        };
                        let owned = applied.field(name);
                        self.enter_field(name);
                        match (lv, owned) {
                            // A map or keyed list Git dropped: only what the apply owned
                            // inside it goes; what others added stays. A managedFields list
                            // node holding only "." owns none of the items.
                            (Value::Object(_), Some(owned)) if !owned.is_leaf() => {
                                self.walk(&EMPTY_OBJECT, lv, Some(owned))
                            }
                            (Value::Array(_), Some(owned)) if !owned.is_leaf() => {
                                self.walk(&EMPTY_ARRAY, lv, Some(owned))
                            }
                            _ => self.record(None, Some(lv)),
                        }
                        self.leave_field();
                    }
                }
            }
            (Value::Array(d), Value::Array(l)) => self.walk_list(d, l, applied),
            (d, l) if self.probe.is_some() && is_scalar(d) && is_scalar(l) => {
                // Equal values are equal once normalised: the live one is canonical.
                if d != l && !self.probe_leaf_matches(d, Some(l)) {
                    self.differs = true;
                }
            }
            (d, _) if is_unasserted(d) && is_unasserted(live) => {}
            (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
                self.record(Some(desired), Some(live))
            }
            (d, l) => {
                if !scalars_equal(d, l) {
                    self.record(Some(d), Some(l));
                }
            }
        }
    }

    /// For a probe: whether Git's scalar `desired` here, normalised as `normalize::desired`
    /// would (quantities, octal modes, Secret data: each a function of the value and its
    /// path), matches `live` (`None` when absent) the way the walk compares them.
    fn probe_leaf_matches(&self, desired: &Value, live: Option<&Value>) -> bool {
        let normalized = self.normalized_leaf(desired);
        let normalized = normalized.as_ref().unwrap_or(desired);
        match live {
            None => is_unasserted(normalized),
            Some(live) if is_unasserted(normalized) && is_unasserted(live) => true,
            Some(live) => is_scalar(normalized) && scalars_equal(normalized, live),
        }
    }

    /// The value normalisation gives `value` at the current path; `None` when the path
    /// cannot be rebuilt (inside an atomic item). Remembered per thread: the same few
    /// quantities (`100m`, `256Mi`) recur at the same paths across a fleet.
    fn normalized_leaf(&self, value: &Value) -> Option<Value> {
        if self.in_atomic_item {
            return None;
        }
        // Secret values are not kept beyond the comparison, not even in this table.
        if super::redact::is_secret(self.group, self.kind) {
            return self.normalize_leaf(value);
        }
        let mut key = String::with_capacity(96);
        for part in [self.group, "\0", self.kind, "\0"] {
            key.push_str(part);
        }
        for step in &self.steps {
            match step {
                Step::Field(name) => key.push_str(name),
                Step::Item { .. } => key.push('*'),
            }
            key.push('\0');
        }
        key.push_str(&value.to_string());
        NORMALIZED_LEAVES.with_borrow_mut(|leaves| {
            if let Some(known) = leaves.get(&key) {
                return known.clone();
            }
            if leaves.len() >= MAX_NORMALIZED_LEAVES {
                leaves.clear();
            }
            let normalized = self.normalize_leaf(value);
            leaves.insert(key, normalized.clone());
            normalized
        })
    }

    /// [`Self::normalized_leaf`] worked out: the value is normalised in an object holding
    /// nothing else, so that normalisation is what `normalize::desired` runs.
    fn normalize_leaf(&self, value: &Value) -> Option<Value> {
        let mut node = value.clone();
        for step in self.steps.iter().rev() {
            node = match step {
                Step::Field(name) => {
                    let mut map = serde_json::Map::with_capacity(1);
                    map.insert((*name).to_string(), node);
                    Value::Object(map)
                }
                Step::Item { .. } => Value::Array(vec![node]),
            };
        }
        super::normalize::canonical_values(self.group, self.kind, &mut node);
        let mut at = &node;
        for step in &self.steps {
            at = match step {
                Step::Field(name) => at.get(*name)?,
                Step::Item { .. } => at.get(0)?,
            };
        }
        Some(at.clone())
    }

    /// For a probe: fields of Git's object that normalisation removes (type information,
    /// `status`, server metadata) or sets to the live value (the tracking label and
    /// annotation when the live ones name this app).
    fn probe_skips(&self, name: &str, live: Option<&Value>) -> bool {
        let Some(tracking) = self.probe else {
            return false;
        };
        match self.steps.as_slice() {
            [] => matches!(name, "status" | "apiVersion" | "kind"),
            [Step::Field("metadata")] => !super::normalize::DECLARED_METADATA.contains(&name),
            [Step::Field("metadata"), Step::Field("labels")] => {
                name == tracking.label && live.and_then(Value::as_str) == Some(tracking.app)
            }
            [Step::Field("metadata"), Step::Field("annotations")] => {
                name == tracking.annotation
                    && live
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.split(':').next() == Some(tracking.app))
            }
            _ => false,
        }
    }

    fn walk_list(
        &mut self,
        desired: &'a [Value],
        live: &'a [Value],
        applied: Option<&'a FieldSet>,
    ) {
        let fields: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Field(name) => Some(*name),
                Step::Item { .. } => None,
            })
            .collect();
        let kind = list_kind(self.group, self.kind, &fields, self.builtin);
        match kind {
            ListKind::Keyed(key_fields) => {
                // Keys are compared field by field in place: no key map is built unless a
                // change is recorded.
                for (index, item) in desired.iter().enumerate() {
                    let keyed = has_key(item, key_fields);
                    let found = keyed
                        .then(|| live.iter().position(|l| same_key(item, l, key_fields)))
                        .flatten();
                    match found {
                        Some(live_index) => {
                            let seg = SegRef::Key(&live[live_index], key_fields);
                            self.enter_item(index, Some(live_index), seg);
                            let owned = applied.and_then(|a| a.key_of(item, key_fields));
                            self.walk(item, &live[live_index], owned);
                            self.leave_item();
                        }
                        None => {
                            let seg = if keyed {
                                SegRef::Key(item, key_fields)
                            } else {
                                SegRef::Index(index)
                            };
                            self.enter_item(index, None, seg);
                            self.record(Some(item), None);
                            self.leave_item();
                        }
                    }
                }
                if let Some(applied) = applied {
                    for (live_index, live_item) in live.iter().enumerate() {
                        if !has_key(live_item, key_fields) {
                            continue;
                        }
                        let was_applied = applied.key_of(live_item, key_fields).is_some();
                        let still_desired = desired
                            .iter()
                            .any(|d| has_key(d, key_fields) && same_key(d, live_item, key_fields));
                        if was_applied && !still_desired {
                            let seg = SegRef::Key(live_item, key_fields);
                            self.enter_item(live_index, Some(live_index), seg);
                            self.record(None, Some(live_item));
                            self.leave_item();
                        }
                    }
                }
            }
            ListKind::Set => {
                for (index, item) in desired.iter().enumerate() {
                    if !live.iter().any(|l| scalars_equal(l, item)) {
                        self.enter_item(index, None, SegRef::Value(item));
                        self.record(Some(item), None);
                        self.leave_item();
                    }
                }
                if let Some(applied) = applied {
                    for (live_index, item) in live.iter().enumerate() {
                        let still_desired = desired.iter().any(|d| scalars_equal(d, item));
                        if applied.has_value(item) && !still_desired {
                            self.enter_item(live_index, Some(live_index), SegRef::Value(item));
                            self.record(None, Some(item));
                            self.leave_item();
                        }
                    }
                }
            }
            ListKind::Atomic => {
                let equal = desired.len() == live.len()
                    && desired
                        .iter()
                        .zip(live)
                        .all(|(d, l)| self.atomic_item_equal(d, l))
                    && self.atomic_additions_explained(desired, live);
                if !equal {
                    self.record(
                        Some(&Value::Array(desired.to_vec())),
                        Some(&Value::Array(live.to_vec())),
                    );
                }
            }
        }
    }

    /// Items of an atomic list: the desired item must be contained in the live one (the server
    /// may default fields inside items), with nested lists compared by their own semantics.
    fn atomic_item_equal(&self, desired: &'a Value, live: &'a Value) -> bool {
        let mut items = Walker::new(self.group, self.kind, self.builtin, self.probe);
        items.steps = self.steps.clone();
        items.in_atomic_item = true;
        items.walk(desired, live, None);
        items.changes.is_empty() && !items.differs
    }

    /// *atomic-items*: a sync replaces an atomic list whole, so a field someone added inside
    /// one of its items (a `tolerationSeconds` by `kubectl edit`) goes with it. In the built-in
    /// kinds a live item may hold only what Git wrote and what the server defaults: the
    /// latter is read from Git's object with the server's defaults filled in, when the caller
    /// has it (without it, every addition counts). Custom resources keep containment, as their
    /// schemas' defaults are unknown here.
    fn atomic_additions_explained(&self, desired: &[Value], live: &[Value]) -> bool {
        if self.in_atomic_item || !self.builtin {
            return true;
        }
        let defaulted = self.defaulted_node().and_then(Value::as_array);
        desired.iter().zip(live).enumerate().all(|(index, (d, l))| {
            additions_explained(Some(d), l, defaulted.and_then(|f| f.get(index)))
        })
    }

    /// The node of the defaulted desired object at the current path (list items by Git's
    /// position, which defaulting keeps).
    fn defaulted_node(&self) -> Option<&'a Value> {
        let mut node = self.defaulted?;
        for step in &self.steps {
            node = match *step {
                Step::Field(name) => node.get(name)?,
                Step::Item { index, .. } => node.get(index)?,
            };
        }
        Some(node)
    }

    /// Fields of the live object that are the server's or a client's, never the applier's to
    /// remove: status and type information at the root, and metadata other than labels,
    /// annotations and finalizers (the live object is walked as the server returned it).
    fn server_owned(&self, name: &str) -> bool {
        match self.steps.as_slice() {
            [] => matches!(name, "status" | "apiVersion" | "kind"),
            [Step::Field("metadata")] => !super::normalize::DECLARED_METADATA.contains(&name),
            [Step::Field("metadata"), Step::Field("annotations")] => {
                super::normalize::CLIENT_ANNOTATIONS.contains(&name)
            }
            _ => false,
        }
    }

    fn enter_field(&mut self, name: &'a str) {
        self.steps.push(Step::Field(name));
    }

    fn leave_field(&mut self) {
        self.steps.pop();
    }

    fn enter_item(&mut self, index: usize, live_index: Option<usize>, seg: SegRef<'a>) {
        self.steps.push(Step::Item {
            index,
            live_index,
            seg,
        });
    }

    fn leave_item(&mut self) {
        self.steps.pop();
    }

    fn record(&mut self, desired: Option<&Value>, live: Option<&Value>) {
        if self.probe.is_some() {
            self.differs = true;
            return;
        }
        let mut pointer = String::new();
        let mut live_pointer = String::new();
        let mut segs = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            match *step {
                Step::Field(name) => {
                    let token = escape_pointer_token(name);
                    pointer.push('/');
                    pointer.push_str(&token);
                    live_pointer.push('/');
                    live_pointer.push_str(&token);
                    segs.push(Seg::Field(name.to_string()));
                }
                Step::Item {
                    index,
                    live_index,
                    seg,
                } => {
                    pointer.push_str(&format!("/{index}"));
                    match live_index {
                        Some(i) => live_pointer.push_str(&format!("/{i}")),
                        None => live_pointer.push_str("/-"),
                    }
                    segs.push(seg.to_seg());
                }
            }
        }
        self.changes.push(RawChange {
            pointer,
            live_pointer,
            segs,
            desired: desired.cloned(),
            live: live.cloned(),
        });
    }
}

/// Live values that carry nothing a sync could remove: `null` and empty strings, maps and
/// lists (the server writes them only for fields without omitempty, as their zero value).
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A field of a live map. Kubernetes objects have small maps, which a scan of their
/// entries searches faster than hashing the name (most of the walk's time otherwise).
fn field<'v>(map: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    if map.len() > 16 {
        return map.get(name);
    }
    map.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
}

/// Whether every non-empty value of `live` is either where Git has one (compared by the walk)
/// or where the defaulted object has the same value.
fn additions_explained(desired: Option<&Value>, live: &Value, defaulted: Option<&Value>) -> bool {
    let desired = desired.filter(|d| !d.is_null());
    let defaulted = defaulted.filter(|f| !f.is_null());
    match live {
        Value::Object(map) => map.iter().all(|(name, value)| {
            is_empty_value(value) || {
                let d = desired.and_then(|d| d.get(name));
                let f = defaulted.and_then(|f| f.get(name));
                (d.is_some() || f.is_some()) && additions_explained(d, value, f)
            }
        }),
        Value::Array(items) => items.iter().enumerate().all(|(index, value)| {
            let d = desired.and_then(|d| d.get(index));
            let f = defaulted.and_then(|f| f.get(index));
            (d.is_some() || f.is_some()) && additions_explained(d, value, f)
        }),
        scalar => desired.is_some() || defaulted.is_some_and(|f| scalars_equal(f, scalar)),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// Values that Git may write and the server drops from omitempty fields.
pub fn is_unasserted(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Scalar equality with numbers compared by value (`1` = `1.0`).
pub fn scalars_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        _ => a == b,
    }
}

pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn field_added_inside_an_atomic_item_is_drift_unless_the_server_defaults_it() {
        let rule = |extra: Value| {
            let mut port = json!({"port": 8080});
            if let (Some(port), Value::Object(extra)) = (port.as_object_mut(), extra) {
                port.extend(extra);
            }
            json!({"spec": {"ingress": [{"ports": [port]}]}})
        };
        let desired = rule(json!({}));
        let defaulted = rule(json!({"protocol": "TCP"}));
        let live = rule(json!({"protocol": "TCP"}));
        let np = |d: Option<&Value>, l: &Value| {
            compare_defaulted(
                "networking.k8s.io",
                "NetworkPolicy",
                true,
                &desired,
                d,
                l,
                None,
            )
        };
        assert_eq!(
            np(None, &live).len(),
            1,
            "without defaults every addition counts"
        );
        assert!(np(Some(&defaulted), &live).is_empty());
        let edited = rule(json!({"protocol": "TCP", "endPort": 8090}));
        let changes = np(Some(&defaulted), &edited);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/spec/ingress");
        // A custom resource's schema may default anything: its items are contained.
        assert!(compare("example.com", "Route", false, &desired, &edited, None).is_empty());
    }

    #[test]
    fn containers_match_by_name_not_position() {
        let desired =
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let live =
            deployment(json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}]));
        assert!(compare("apps", "Deployment", true, &desired, &live, None).is_empty());
    }

    #[test]
    fn changed_image_points_at_the_git_position() {
        let desired =
            deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let live =
            deployment(json!([{"name": "b", "image": "b:2"}, {"name": "a", "image": "a:1"}]));
        let changes = compare("apps", "Deployment", true, &desired, &live, None);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/spec/template/spec/containers/1/image");
        assert_eq!(
            changes[0].live_pointer,
            "/spec/template/spec/containers/0/image"
        );
    }

    #[test]
    fn extra_verb_in_atomic_rule_list_is_drift() {
        let desired = json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        let live = json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}]});
        let changes = compare(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            true,
            &desired,
            &live,
            None,
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/rules");
    }

    #[test]
    fn removed_from_git_but_previously_applied_is_drift() {
        let desired = deployment(json!([{"name": "a", "env": [{"name": "X", "value": "1"}]}]));
        let live = deployment(
            json!([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "OLD", "value": "2"}]}]),
        );
        let applied_manifest = deployment(
            json!([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "OLD", "value": "2"}]}]),
        );
        let applied = FieldSet::from_applied("apps", "Deployment", true, &applied_manifest);
        assert!(compare("apps", "Deployment", true, &desired, &live, None).is_empty());
        let changes = compare("apps", "Deployment", true, &desired, &live, Some(&applied));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/spec/template/spec/containers/0/env/1");
        assert_eq!(changes[0].desired, None);
    }

    #[test]
    fn removed_false_and_zero_are_drift_removed_empty_values_are_not() {
        let applied_manifest = json!({"automountServiceAccountToken": false,
            "spec": {"replicas": 0, "securityContext": {}, "hostname": ""}});
        let applied = FieldSet::from_applied("", "Pod", true, &applied_manifest);
        let desired = json!({"spec": {}});
        let live = json!({"automountServiceAccountToken": false,
            "spec": {"replicas": 0, "securityContext": {}, "hostname": ""}});
        let changes = compare("", "Pod", true, &desired, &live, Some(&applied));
        let pointers: Vec<&str> = changes.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/spec/replicas", "/automountServiceAccountToken"]
        );
        assert_eq!(changes[1].desired, None);
        assert_eq!(changes[1].live, Some(json!(false)));
    }

    #[test]
    fn dropped_list_whose_node_the_applier_only_marks_is_not_drift() {
        // An applier's managedFields entry left with `"."` on env: it owns no item.
        let applied = FieldSet::from_fields_v1(&json!({"f:spec": {"f:template": {"f:spec": {
            "f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:env": {".": {}}}}}}}}));
        let desired = deployment(json!([{"name": "a"}]));
        let live = deployment(json!([{"name": "a", "env": [{"name": "X", "value": "1"}]}]));
        assert!(compare("apps", "Deployment", true, &desired, &live, Some(&applied)).is_empty());
        let owning = FieldSet::from_fields_v1(&json!({"f:spec": {"f:template": {"f:spec": {
            "f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:env": {
                ".": {}, "k:{\"name\":\"X\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}}));
        let changes = compare("apps", "Deployment", true, &desired, &live, Some(&owning));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/spec/template/spec/containers/0/env/0");
    }

    #[test]
    fn empty_values_match_absent_fields_and_numbers_compare_by_value() {
        let desired = json!({"metadata": {"labels": {}}, "spec": {"hostNetwork": false, "x": 1.0, "env": [{"name": "A", "value": ""}]}});
        let live = json!({"metadata": {}, "spec": {"x": 1, "env": [{"name": "A"}]}});
        assert!(compare("", "ConfigMap", true, &desired, &live, None).is_empty());
    }

    #[test]
    fn probe_normalises_only_the_values_that_differ() {
        let tracking = ProbeTracking {
            label: "app.kubernetes.io/instance",
            annotation: "argocd.argoproj.io/tracking-id",
            app: "shop",
        };
        let git = |cpu: Value, image: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app.kubernetes.io/instance": "web"}},
                "spec": {"template": {"spec": {"containers": [{"name": "a", "image": image,
                    "resources": {"requests": {"cpu": cpu, "memory": "1024Mi"}}}]}}}})
        };
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "labels": {"app.kubernetes.io/instance": "shop"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1",
                "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}]}}},
            "status": {"replicas": 1}});
        let contained = |desired: &Value| {
            super::contained("apps", "Deployment", true, desired, &live, None, tracking)
        };
        assert!(contained(&git(json!(0.25), "a:1")));
        assert!(contained(&git(json!("250m"), "a:1")));
        assert!(!contained(&git(json!(0.5), "a:1")));
        assert!(!contained(&git(json!(0.25), "a:2")));
        // The same quantity at a path that is no quantity is compared as written.
        let label = json!({"metadata": {"labels": {"size": "1024Mi"}}});
        let live_label = json!({"metadata": {"labels": {"size": "1Gi"}}});
        assert!(!super::contained(
            "apps",
            "Deployment",
            true,
            &label,
            &live_label,
            None,
            tracking
        ));
    }

    #[test]
    fn int_or_string_keeps_its_type() {
        let desired = json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}]}});
        let live =
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}});
        let changes = compare("", "Service", true, &desired, &live, None);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].pointer, "/spec/ports/0/targetPort");
    }
}
