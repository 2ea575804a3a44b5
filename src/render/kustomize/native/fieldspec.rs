//! Field specs: where in which kinds a transformer writes (kustomize's builtin
//! configuration), and the walk that finds those fields.

use super::resource::Gvk;
use serde_json::{Map, Value};

/// A field path in the objects of the kinds a gvk selector picks.
#[derive(Debug, Clone)]
pub(super) struct FieldSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    pub fn new(path: &str, kind: &str, group: &str, version: &str, create: bool) -> FieldSpec {
        FieldSpec {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            path: split_path(path),
            create,
        }
    }

    pub fn selects(&self, gvk: &Gvk) -> bool {
        gvk.selected_by(&self.group, &self.version, &self.kind)
    }

    /// Same path and selector: kustomize's test for duplicates when merging spec lists.
    pub fn same_as(&self, other: &FieldSpec) -> bool {
        self.path == other.path
            && self.group == other.group
            && self.version == other.version
            && self.kind == other.kind
    }
}

/// Splits a field path on "/", keeping "\/" as a literal slash inside a segment.
fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                current.push('/');
                chars.next();
            }
            '/' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

/// Parses a table of `path kind|group|version|create` lines.
pub(super) fn parse_table(table: &str) -> Vec<FieldSpec> {
    table
        .lines()
        .filter_map(|line| {
            let (path, selector) = line.trim().split_once(' ')?;
            let mut parts = selector.split('|');
            let kind = parts.next().unwrap_or("");
            let group = parts.next().unwrap_or("");
            let version = parts.next().unwrap_or("");
            let create = parts.next() == Some("c");
            Some(FieldSpec::new(path, kind, group, version, create))
        })
        .collect()
}

/// What to create for a missing final field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Create {
    Map,
    Scalar,
}

/// Applies `set` to every field `spec.path` reaches in `obj`. Sequences met on the way
/// are traversed element by element; missing fields are created when the spec says so.
pub(super) fn apply(
    obj: &mut Value,
    spec: &FieldSpec,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    walk(obj, &spec.path, spec.create, create, set)
}

fn walk(
    node: &mut Value,
    path: &[String],
    create_missing: bool,
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if let Value::Array(items) = node {
        for item in items {
            walk(item, path, create_missing, create, set)?;
        }
        return Ok(());
    }
    let Some((first, rest)) = path.split_first() else {
        return set(node);
    };
    let (field, is_list) = match first.strip_suffix("[]") {
        Some(f) => (f, true),
        None => (first.as_str(), false),
    };
    let Value::Object(map) = node else {
        return Ok(());
    };
    let present = map.get(field).is_some_and(|v| !v.is_null());
    if !present {
        if !create_missing || is_list {
            return Ok(());
        }
        let fresh = if rest.is_empty() && create == Create::Scalar {
            Value::String(String::new())
        } else {
            Value::Object(Map::new())
        };
        map.insert(field.to_string(), fresh);
    }
    match map.get_mut(field) {
        Some(child) => walk(child, rest, create_missing, create, set),
        None => Ok(()),
    }
}

/// The selector fields of kustomize's commonLabels configuration; the rest of it is
/// [`TEMPLATE_LABELS`].
pub(super) const SELECTOR_LABELS: &str = "\
spec/selector Service||v1|c\n\
spec/selector ReplicationController||v1|c\n\
spec/selector/matchLabels Deployment|||c\n\
spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels Deployment|apps||\n\
spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels Deployment|apps||\n\
spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels Deployment|apps||\n\
spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels Deployment|apps||\n\
spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels Deployment|apps||\n\
spec/selector/matchLabels ReplicaSet|||c\n\
spec/selector/matchLabels DaemonSet|||c\n\
spec/selector/matchLabels StatefulSet|apps||c\n\
spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels StatefulSet|apps||\n\
spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels StatefulSet|apps||\n\
spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels StatefulSet|apps||\n\
spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels StatefulSet|apps||\n\
spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels StatefulSet|apps||\n\
spec/selector/matchLabels Job|batch||\n\
spec/jobTemplate/spec/selector/matchLabels CronJob|batch||\n\
spec/selector/matchLabels PodDisruptionBudget|policy||\n\
spec/podSelector/matchLabels NetworkPolicy|networking.k8s.io||\n\
spec/ingress/from/podSelector/matchLabels NetworkPolicy|networking.k8s.io||\n\
spec/egress/to/podSelector/matchLabels NetworkPolicy|networking.k8s.io||\n\
";
pub(super) const TEMPLATE_LABELS: &str = "\
metadata/labels |||c\n\
spec/template/metadata/labels ReplicationController||v1|c\n\
spec/template/metadata/labels Deployment|||c\n\
spec/template/metadata/labels ReplicaSet|||c\n\
spec/template/metadata/labels DaemonSet|||c\n\
spec/template/metadata/labels StatefulSet|apps||c\n\
spec/volumeClaimTemplates[]/metadata/labels StatefulSet|apps||c\n\
spec/template/metadata/labels Job|batch||c\n\
spec/jobTemplate/metadata/labels CronJob|batch||c\n\
spec/jobTemplate/spec/template/metadata/labels CronJob|batch||c\n\
";
pub(super) const COMMON_ANNOTATIONS: &str = "\
metadata/annotations |||c\n\
spec/template/metadata/annotations ReplicationController||v1|c\n\
spec/template/metadata/annotations Deployment|||c\n\
spec/template/metadata/annotations ReplicaSet|||c\n\
spec/template/metadata/annotations DaemonSet|||c\n\
spec/template/metadata/annotations StatefulSet|||c\n\
spec/template/metadata/annotations Job|batch||c\n\
spec/jobTemplate/metadata/annotations CronJob|batch||c\n\
spec/jobTemplate/spec/template/metadata/annotations CronJob|batch||c\n\
";
