//! Live state: the objects a cluster holds, read from an API server or an offline snapshot,
//! indexed by [`ResourceKey`].

pub mod kube;
pub mod snapshot;

use crate::config::ClusterAccess;
use crate::kinds;
use crate::model::{Resource, ResourceKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Kinds read to find orphans besides those the apps render (by the tracking label).
pub const ORPHAN_KINDS: &[(&str, &str)] = &[
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("networking.k8s.io", "Ingress"),
    ("batch", "CronJob"),
    ("batch", "Job"),
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("", "PersistentVolumeClaim"),
];

/// Why a cluster could not be read: `unreachable` when it could not be contacted at all,
/// `error` when it answered with a refusal (authentication, authorization) or garbage.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClusterError {
    pub status: &'static str,
    pub message: String,
}

impl ClusterError {
    pub fn unreachable(message: impl Into<String>) -> Self {
        ClusterError {
            status: "unreachable",
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        ClusterError {
            status: "error",
            message: message.into(),
        }
    }
}

/// What to read from a cluster: resource types with the namespaces to read them in.
#[derive(Debug, Clone, Default)]
pub struct ReadPlan {
    /// `(group, kind)` -> namespaces (empty for cluster-scoped kinds).
    pub full: BTreeMap<(String, String), BTreeSet<String>>,
    /// Kinds read only to find orphans: listed with the tracking label selector.
    pub tracked_only: BTreeMap<(String, String), BTreeSet<String>>,
    /// Label selector narrowing the `tracked_only` lists.
    pub tracking_selector: String,
    /// Keep each object's `status`, which is otherwise left out of listed objects (a policy
    /// on live objects reads it).
    pub keep_status: bool,
}

impl ReadPlan {
    /// Adds what one app needs: its objects' kinds in their namespaces, and the orphan kinds
    /// in every namespace it touches.
    pub fn add_app(&mut self, objects: &[Resource], default_namespace: Option<&str>) {
        let mut namespaces: BTreeSet<String> =
            default_namespace.map(str::to_string).into_iter().collect();
        for object in objects {
            let entry = self
                .full
                .entry((object.key.group.clone(), object.key.kind.clone()))
                .or_default();
            if let Some(ns) = &object.key.namespace {
                entry.insert(ns.clone());
                namespaces.insert(ns.clone());
            }
        }
        for (group, kind) in ORPHAN_KINDS {
            self.tracked_only
                .entry((group.to_string(), kind.to_string()))
                .or_default()
                .extend(namespaces.iter().cloned());
        }
    }
}

/// A cluster ready to be read: a snapshot (already read whole) or an API server (connected,
/// discovery done).
pub enum Connection {
    Snapshot(LiveState),
    Api(Box<kube::ApiCluster>, LiveState),
}

impl Connection {
    /// Connects to a cluster as configured.
    pub fn open(access: &ClusterAccess, limits: &kube::Limits) -> Result<Connection, ClusterError> {
        match access {
            ClusterAccess::Snapshot(dir) => {
                snapshot::read(dir)
                    .map(Connection::Snapshot)
                    .map_err(|e| match e {
                        snapshot::SnapshotError::Missing(_) => {
                            ClusterError::unreachable(e.to_string())
                        }
                        _ => ClusterError::error(e.to_string()),
                    })
            }
            ClusterAccess::Kube {
                kubeconfig,
                context,
            } => {
                let cluster = kube::block_on(kube::ApiCluster::connect(
                    kubeconfig.as_deref(),
                    context.as_deref(),
                    limits.clone(),
                ))??;
                let scopes = cluster.discovered_state();
                Ok(Connection::Api(Box::new(cluster), scopes))
            }
        }
    }

    /// What is known of kinds before reading: scopes and, for API servers, what is served.
    pub fn scopes(&self) -> &LiveState {
        match self {
            Connection::Snapshot(state) => state,
            Connection::Api(_, scopes) => scopes,
        }
    }

    /// What an API server serves, for renderers that adapt to the cluster (Helm); `None` for
    /// a snapshot, which cannot say.
    pub fn capabilities(&self) -> Option<crate::model::Capabilities> {
        let Connection::Api(cluster, _) = self else {
            return None;
        };
        let kube_version = kube::block_on(cluster.version()).ok().and_then(Result::ok);
        let mut api_versions: Vec<String> = cluster
            .served()
            .flat_map(|served| {
                let group_version = if served.group.is_empty() {
                    served.version.clone()
                } else {
                    format!("{}/{}", served.group, served.version)
                };
                let with_kind = format!("{group_version}/{}", served.kind);
                [group_version, with_kind]
            })
            .collect();
        api_versions.sort();
        api_versions.dedup();
        Some(crate::model::Capabilities {
            kube_version,
            api_versions,
        })
    }

    /// Reads what the plan names (a snapshot has it all already).
    pub fn read(self, plan: &ReadPlan) -> Result<LiveState, ClusterError> {
        match self {
            Connection::Snapshot(state) => Ok(state),
            Connection::Api(cluster, _) => kube::block_on(cluster.read(plan))?,
        }
    }

    pub fn len(&self) -> usize {
        self.scopes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
