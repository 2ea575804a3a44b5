//! Live state: the objects a cluster holds, read from an API server or an offline snapshot,
//! indexed by [`ResourceKey`].

pub mod snapshot;

use crate::kinds;
use crate::model::{Resource, ResourceKey};
use std::collections::HashMap;

/// Everything read from one cluster.
#[derive(Debug, Default)]
pub struct LiveState {
    objects: HashMap<ResourceKey, Resource>,
    /// Scope of kinds the cluster told us about (CRDs, discovery), `true` = namespaced.
    scopes: HashMap<(String, String), bool>,
    /// Kinds the cluster serves, when known (`None` for snapshots: they only hold what exists).
    served: Option<std::collections::HashSet<(String, String)>>,
}

impl LiveState {
    /// Adds an object; a second copy of the same object (dumped twice) keeps the first.
    pub fn insert(&mut self, resource: Resource) {
        let scope_key = (resource.key.group.clone(), resource.key.kind.clone());
        if kinds::builtin_namespaced(&resource.key.group, &resource.key.kind).is_none() {
            self.scopes
                .entry(scope_key)
                .or_insert(resource.key.namespace.is_some());
        }
        if resource.key.group == "apiextensions.k8s.io"
            && resource.key.kind == "CustomResourceDefinition"
        {
            if let (Some(group), Some(kind), Some(scope)) = (
                resource
                    .body
                    .pointer("/spec/group")
                    .and_then(|v| v.as_str()),
                resource
                    .body
                    .pointer("/spec/names/kind")
                    .and_then(|v| v.as_str()),
                resource
                    .body
                    .pointer("/spec/scope")
                    .and_then(|v| v.as_str()),
            ) {
                self.scopes
                    .insert((group.to_string(), kind.to_string()), scope == "Namespaced");
            }
        }
        self.objects.entry(resource.key.clone()).or_insert(resource);
    }

    pub fn set_scope(&mut self, group: &str, kind: &str, namespaced: bool) {
        self.scopes
            .insert((group.to_string(), kind.to_string()), namespaced);
    }

    pub fn set_served(&mut self, served: std::collections::HashSet<(String, String)>) {
        self.served = Some(served);
    }

    /// `Some(false)` only when the cluster is known not to serve the kind.
    pub fn serves(&self, group: &str, kind: &str) -> Option<bool> {
        self.served
            .as_ref()
            .map(|s| s.contains(&(group.to_string(), kind.to_string())))
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&Resource> {
        self.objects.get(key)
    }

    pub fn objects(&self) -> impl Iterator<Item = &Resource> {
        self.objects.values()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Scope of a kind: built-in knowledge first, then what the cluster said.
    pub fn namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        kinds::builtin_namespaced(group, kind).or_else(|| {
            self.scopes
                .get(&(group.to_string(), kind.to_string()))
                .copied()
        })
    }
}
