//! Ignore rules: differences that are expected (an HPA scaling replicas, a mutating webhook
//! injecting a sidecar) and are never drift. A resource that differs only where a rule says
//! is reported as `ignored`, never silently dropped.

use crate::config::IgnoreRule;
use crate::model::ResourceKey;
use globset::{Glob, GlobMatcher};

/// An ignore rule with its globs compiled once per scan.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    group: Option<GlobMatcher>,
    kind: Option<GlobMatcher>,
    namespace: Option<GlobMatcher>,
    name: Option<GlobMatcher>,
    json_pointers: Vec<String>,
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

    /// True when the change at `pointer`, whose live field is owned by `owners`, is ignored.
    pub fn ignores(&self, pointer: &str, owners: &[String]) -> bool {
        let by_pointer = self.json_pointers.iter().any(|p| {
            p.is_empty()
                || pointer == p
                || (pointer.starts_with(p.as_str()) && pointer[p.len()..].starts_with('/'))
        });
        let by_manager = !owners.is_empty()
            && !self.managers.is_empty()
            && owners.iter().all(|o| self.managers.contains(o));
        by_pointer || by_manager
    }
}
