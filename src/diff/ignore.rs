//! Ignore rules: differences that are expected (an HPA scaling replicas, a mutating webhook
//! injecting a sidecar) and are never drift. A resource that differs only where a rule says
//! is reported as `ignored`, never silently dropped.

use super::compare::RawChange;
use super::jq::JqPath;
use crate::config::IgnoreRule;
use crate::model::ResourceKey;
use globset::{Glob, GlobMatcher};
use serde_json::Value;

/// An ignore rule with its globs compiled once per scan.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    group: Option<GlobMatcher>,
    kind: Option<GlobMatcher>,
    namespace: Option<GlobMatcher>,
    name: Option<GlobMatcher>,
    json_pointers: Vec<String>,
    jq_paths: Vec<JqPath>,
    managers: Vec<String>,
}

impl CompiledRule {
    pub fn compile(rule: &IgnoreRule) -> Result<CompiledRule, String> {
        let glob = |pattern: &Option<String>| -> Result<Option<GlobMatcher>, String> {
            pattern
                .as_deref()
                .map(|p| {
                    Glob::new(p)
                        .map(|g| g.compile_matcher())
                        .map_err(|e| format!("invalid glob {p:?}: {e}"))
                })
                .transpose()
        };
        Ok(CompiledRule {
            group: glob(&rule.group)?,
            kind: glob(&rule.kind)?,
            namespace: glob(&rule.namespace)?,
            name: glob(&rule.name)?,
            json_pointers: rule.json_pointers.clone(),
            jq_paths: rule
                .jq_path_expressions
                .iter()
                .map(|e| JqPath::parse(e))
                .collect::<Result<_, _>>()?,
            managers: rule.managed_fields_managers.clone(),
        })
    }

    pub fn applies_to(&self, key: &ResourceKey) -> bool {
        let matches = |glob: &Option<GlobMatcher>, value: &str| {
            glob.as_ref().is_none_or(|g| g.is_match(value))
        };
        matches(&self.group, &key.group)
            && matches(&self.kind, &key.kind)
            && matches(&self.namespace, key.namespace.as_deref().unwrap_or(""))
            && matches(&self.name, &key.name)
    }

    /// The rule for one object: its jq paths evaluated against the desired object (giving
    /// Git's list positions) and the live one (giving the live positions).
    pub fn for_object(&self, desired: &Value, live: &Value) -> ObjectRule<'_> {
        let mut desired_paths = Vec::new();
        let mut live_paths = Vec::new();
        for path in &self.jq_paths {
            desired_paths.extend(path.select(desired));
            live_paths.extend(path.select(live));
        }
        ObjectRule {
            rule: self,
            desired_paths,
            live_paths,
        }
    }
}

/// An ignore rule applied to one object.
pub struct ObjectRule<'a> {
    rule: &'a CompiledRule,
    desired_paths: Vec<String>,
    live_paths: Vec<String>,
}

impl ObjectRule<'_> {
    /// True when `change`, whose live field is owned by `owners`, is ignored.
    pub fn ignores(&self, change: &RawChange, owners: &[String]) -> bool {
        let by_pointer = self
            .rule
            .json_pointers
            .iter()
            .chain(&self.desired_paths)
            .any(|p| under(&change.pointer, p))
            || self
                .live_paths
                .iter()
                .any(|p| under(&change.live_pointer, p));
        let by_manager = !owners.is_empty()
            && !self.rule.managers.is_empty()
            && owners.iter().all(|o| self.rule.managers.contains(o));
        by_pointer || by_manager
    }
}

/// True when `pointer` is `prefix` or lies below it (`""` is the whole object).
fn under(pointer: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || pointer == prefix
        || (pointer.starts_with(prefix) && pointer[prefix.len()..].starts_with('/'))
}
