//! Name references: after prefixes, suffixes and content hashes renamed objects, every
//! field that referred to an object by its old name is updated, following kustomize's
//! nameReference configuration and its rules for picking the referred object.

use super::fieldspec::{self, Create, FieldSpec};
use super::resource::{effective, Gvk, PrevId, Res};
use serde_json::Value;
use std::sync::OnceLock;

/// A kind that can be referred to, and the fields referring to it.
struct Reference {
    target: Gvk,
    referrers: Vec<FieldSpec>,
}

fn references() -> &'static [Reference] {
    static CELL: OnceLock<Vec<Reference>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut out: Vec<Reference> = Vec::new();
        for line in NAME_REFERENCES.lines() {
            if let Some(spec) = line.strip_prefix("> ") {
                if let Some(last) = out.last_mut() {
                    last.referrers.extend(fieldspec::parse_table(spec));
                }
                continue;
            }
            let mut parts = line.split('|');
            out.push(Reference {
                target: Gvk {
                    kind: parts.next().unwrap_or("").to_string(),
                    group: parts.next().unwrap_or("").to_string(),
                    version: parts.next().unwrap_or("").to_string(),
                },
                referrers: Vec::new(),
            });
        }
        out
    })
}

/// What name resolution needs to know of each resource, fixed for the whole pass.
struct Info {
    gvk: Gvk,
    name: String,
    namespace: String,
    cluster_scoped: bool,
    prev_ids: Vec<PrevId>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Info {
    fn effective_namespace(&self) -> &str {
        effective(&self.namespace)
    }

    fn org_effective_namespace(&self) -> &str {
        self.prev_ids
            .first()
            .map_or_else(|| self.effective_namespace(), |id| id.namespace.as_str())
    }

    /// Whether any previous identity is selected by `gvk` (group and version are the
    /// current ones; kinds may have changed).
    fn prev_selected_by(&self, gvk: &Gvk) -> bool {
        self.prev_ids.iter().any(|id| {
            (gvk.group.is_empty() || gvk.group == self.gvk.group)
                && (gvk.version.is_empty() || gvk.version == self.gvk.version)
                && (gvk.kind.is_empty() || gvk.kind == id.kind)
        })
    }
}

/// Updates every name reference in `resources`.
pub(super) fn fix(resources: &mut [Res]) -> Result<(), String> {
    let infos: Vec<Info> = resources
        .iter()
        .map(|r| {
            let gvk = r.gvk();
            Info {
                cluster_scoped: gvk.is_cluster_scoped(),
                gvk,
                name: r.name().to_string(),
                namespace: r.namespace().to_string(),
                prev_ids: r.prev_ids.clone(),
                prefixes: r.prefixes.clone(),
                suffixes: r.suffixes.clone(),
            }
        })
        .collect();
    let role_ref_path = ["roleRef".to_string(), "name".to_string()];
    for (index, res) in resources.iter_mut().enumerate() {
        let referrer = &infos[index];
        let mut candidates: Option<Vec<usize>> = None;
        for reference in references() {
            for spec in reference
                .referrers
                .iter()
                .filter(|s| s.selects(&referrer.gvk))
            {
                let pool = candidates
                    .get_or_insert_with(|| could_be_referenced(&infos, referrer, &res.obj));
                let role_ref = if spec.path.ends_with(&role_ref_path) {
                    role_ref_gvk(&res.obj)
                } else {
                    None
                };
                let ctx = Context {
                    infos: &infos,
                    referrer,
                    target: &reference.target,
                    role_ref: role_ref.as_ref(),
                    pool,
                };
                fieldspec::apply(&mut res.obj, spec, Create::Scalar, &mut |node| {
                    ctx.set(node)
                })
                .map_err(|m| {
                    format!(
                        "updating name reference in '{}' field of {} {}: {m}",
                        spec.path.join("/"),
                        referrer.gvk.kind,
                        referrer.name
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// The resources `referrer` may refer to: cluster-scoped ones, ones in its namespace, and
/// for role bindings ones in the namespaces of its service account subjects.
fn could_be_referenced(infos: &[Info], referrer: &Info, obj: &Value) -> Vec<usize> {
    if referrer.cluster_scoped {
        return (0..infos.len()).collect();
    }
    let mut binding_namespaces = Vec::new();
    if referrer.gvk.kind == "RoleBinding" || referrer.gvk.kind == "ClusterRoleBinding" {
        if let Some(Value::Array(subjects)) = obj.get("subjects") {
            for subject in subjects {
                if subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
                    if let Some(ns) = subject.get("namespace").and_then(Value::as_str) {
                        binding_namespaces.push(ns.to_string());
                    }
                }
            }
        }
    }
    (0..infos.len())
        .filter(|&i| {
            let target = &infos[i];
            target.cluster_scoped
                || target.effective_namespace() == referrer.effective_namespace()
                || binding_namespaces.contains(&target.namespace)
        })
        .collect()
}

fn role_ref_gvk(obj: &Value) -> Option<Gvk> {
    let role_ref = obj.get("roleRef")?;
    Some(Gvk {
        group: role_ref.get("apiGroup")?.as_str()?.to_string(),
        version: String::new(),
        kind: role_ref.get("kind")?.as_str()?.to_string(),
    })
}

struct Context<'a> {
    infos: &'a [Info],
    referrer: &'a Info,
    target: &'a Gvk,
    role_ref: Option<&'a Gvk>,
    pool: &'a [usize],
}

impl Context<'_> {
    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::String(old) => {
                if let Some(i) = self.select(old, self.pool, false)? {
                    *old = self.infos[i].name.clone();
                }
                Ok(())
            }
            Value::Object(map) => {
                let Some(old) = map.get("name").and_then(Value::as_str) else {
                    return Err("path config error; no 'name' field in node".into());
                };
                let old = old.to_string();
                let pool: Vec<usize> = match map.get("namespace").and_then(Value::as_str) {
                    None => self.pool.to_vec(),
                    Some(ns) => {
                        let by = |original: bool| -> Vec<usize> {
                            self.pool
                                .iter()
                                .copied()
                                .filter(|&i| {
                                    let info = &self.infos[i];
                                    !info.cluster_scoped
                                        && if original {
                                            info.org_effective_namespace() == ns
                                        } else {
                                            info.effective_namespace() == ns
                                        }
                                })
                                .collect()
                        };
                        let original = by(true);
                        if original.is_empty() {
                            by(false)
                        } else {
                            original
                        }
                    }
                };
                let Some(i) = self.select(&old, &pool, true)? else {
                    return Ok(());
                };
                let referral = &self.infos[i];
                if referral.name == old && referral.namespace.is_empty() {
                    return Ok(());
                }
                map.insert("name".into(), Value::String(referral.name.clone()));
                if !referral.namespace.is_empty() {
                    map.insert(
                        "namespace".into(),
                        Value::String(referral.namespace.clone()),
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Kustomize's choice of referral among candidates; None when nothing matches.
    fn select(
        &self,
        old: &str,
        pool: &[usize],
        with_namespace: bool,
    ) -> Result<Option<usize>, String> {
        let infos = self.infos;
        let referrer = self.referrer;
        let candidates: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| infos[i].prev_ids.iter().any(|id| id.name == old))
            .filter(|&i| infos[i].prev_selected_by(self.target))
            .filter(|&i| self.role_ref.is_none_or(|g| infos[i].prev_selected_by(g)))
            .filter(|&i| {
                referrer.cluster_scoped
                    || infos[i].cluster_scoped
                    || infos[i].gvk.kind == "ServiceAccount"
                    || infos[i].effective_namespace() == referrer.effective_namespace()
            })
            .collect();
        if candidates.len() == 1 {
            return Ok(Some(candidates[0]));
        }
        let candidates: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| {
                same_ending(&infos[i].prefixes, &referrer.prefixes)
                    && same_ending(&infos[i].suffixes, &referrer.suffixes)
            })
            .collect();
        match candidates.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(*only)),
            [first, rest @ ..] => {
                let same = rest.iter().all(|&i| {
                    infos[i].name == infos[*first].name
                        && (!with_namespace || infos[i].namespace == infos[*first].namespace)
                });
                if same {
                    Ok(Some(*first))
                } else {
                    let ids: Vec<String> = candidates
                        .iter()
                        .map(|&i| format!("{}/{}", infos[i].gvk.kind, infos[i].name))
                        .collect();
                    Err(format!(
                        "found multiple possible referrals: {}",
                        ids.join(", ")
                    ))
                }
            }
        }
    }
}

/// Whether the shorter list equals the end of the longer one.
fn same_ending(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[a.len() - n..] == b[b.len() - n..]
}

/// Where each kind is referred to by name: kustomize's default nameReference configuration.
/// Rows: target `kind|group|version`, then referrer `> path kind|group|version` lines.
pub(super) const NAME_REFERENCES: &str = "\
Deployment||\n\
> spec/scaleTargetRef/name HorizontalPodAutoscaler||\n\
ReplicationController||\n\
> spec/scaleTargetRef/name HorizontalPodAutoscaler||\n\
ReplicaSet||\n\
> spec/scaleTargetRef/name HorizontalPodAutoscaler||\n\
StatefulSet||\n\
> spec/scaleTargetRef/name HorizontalPodAutoscaler||\n\
ConfigMap||v1\n\
> spec/volumes/configMap/name Pod||v1\n\
> spec/containers/env/valueFrom/configMapKeyRef/name Pod||v1\n\
> spec/initContainers/env/valueFrom/configMapKeyRef/name Pod||v1\n\
> spec/containers/envFrom/configMapRef/name Pod||v1\n\
> spec/initContainers/envFrom/configMapRef/name Pod||v1\n\
> spec/volumes/projected/sources/configMap/name Pod||v1\n\
> template/spec/volumes/configMap/name PodTemplate||\n\
> template/spec/containers/env/valueFrom/configMapKeyRef/name PodTemplate||\n\
> template/spec/initContainers/env/valueFrom/configMapKeyRef/name PodTemplate||\n\
> template/spec/containers/envFrom/configMapRef/name PodTemplate||\n\
> template/spec/initContainers/envFrom/configMapRef/name PodTemplate||\n\
> template/spec/volumes/projected/sources/configMap/name PodTemplate||\n\
> spec/template/spec/volumes/configMap/name Deployment||\n\
> spec/template/spec/containers/env/valueFrom/configMapKeyRef/name Deployment||\n\
> spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name Deployment||\n\
> spec/template/spec/containers/envFrom/configMapRef/name Deployment||\n\
> spec/template/spec/initContainers/envFrom/configMapRef/name Deployment||\n\
> spec/template/spec/volumes/projected/sources/configMap/name Deployment||\n\
> spec/template/spec/volumes/configMap/name ReplicaSet||\n\
> spec/template/spec/containers/env/valueFrom/configMapKeyRef/name ReplicaSet||\n\
> spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name ReplicaSet||\n\
> spec/template/spec/containers/envFrom/configMapRef/name ReplicaSet||\n\
> spec/template/spec/initContainers/envFrom/configMapRef/name ReplicaSet||\n\
> spec/template/spec/volumes/projected/sources/configMap/name ReplicaSet||\n\
> spec/template/spec/volumes/configMap/name DaemonSet||\n\
> spec/template/spec/containers/env/valueFrom/configMapKeyRef/name DaemonSet||\n\
> spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name DaemonSet||\n\
> spec/template/spec/containers/envFrom/configMapRef/name DaemonSet||\n\
> spec/template/spec/initContainers/envFrom/configMapRef/name DaemonSet||\n\
> spec/template/spec/volumes/projected/sources/configMap/name DaemonSet||\n\
> spec/template/spec/volumes/configMap/name StatefulSet||\n\
> spec/template/spec/containers/env/valueFrom/configMapKeyRef/name StatefulSet||\n\
> spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name StatefulSet||\n\
> spec/template/spec/containers/envFrom/configMapRef/name StatefulSet||\n\
> spec/template/spec/initContainers/envFrom/configMapRef/name StatefulSet||\n\
> spec/template/spec/volumes/projected/sources/configMap/name StatefulSet||\n\
> spec/template/spec/volumes/configMap/name Job||\n\
> spec/template/spec/containers/env/valueFrom/configMapKeyRef/name Job||\n\
> spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name Job||\n\
> spec/template/spec/containers/envFrom/configMapRef/name Job||\n\
> spec/template/spec/initContainers/envFrom/configMapRef/name Job||\n\
> spec/template/spec/volumes/projected/sources/configMap/name Job||\n\
> spec/jobTemplate/spec/template/spec/volumes/configMap/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/volumes/projected/sources/configMap/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/containers/env/valueFrom/configMapKeyRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/configMapKeyRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/containers/envFrom/configMapRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/initContainers/envFrom/configMapRef/name CronJob||\n\
> spec/configSource/configMap Node||\n\
> rules/resourceNames Role||\n\
> rules/resourceNames ClusterRole||\n\
> metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap Ingress||\n\
Secret||v1\n\
> spec/volumes/secret/secretName Pod||v1\n\
> spec/containers/env/valueFrom/secretKeyRef/name Pod||v1\n\
> spec/initContainers/env/valueFrom/secretKeyRef/name Pod||v1\n\
> spec/containers/envFrom/secretRef/name Pod||v1\n\
> spec/initContainers/envFrom/secretRef/name Pod||v1\n\
> spec/imagePullSecrets/name Pod||v1\n\
> spec/volumes/projected/sources/secret/name Pod||v1\n\
> template/spec/volumes/secret/secretName PodTemplate||\n\
> template/spec/containers/env/valueFrom/secretKeyRef/name PodTemplate||\n\
> template/spec/initContainers/env/valueFrom/secretKeyRef/name PodTemplate||\n\
> template/spec/containers/envFrom/secretRef/name PodTemplate||\n\
> template/spec/initContainers/envFrom/secretRef/name PodTemplate||\n\
> template/spec/imagePullSecrets/name PodTemplate||\n\
> template/spec/volumes/projected/sources/secret/name PodTemplate||\n\
> spec/template/spec/volumes/secret/secretName Deployment||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name Deployment||\n\
> spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name Deployment||\n\
> spec/template/spec/containers/envFrom/secretRef/name Deployment||\n\
> spec/template/spec/initContainers/envFrom/secretRef/name Deployment||\n\
> spec/template/spec/imagePullSecrets/name Deployment||\n\
> spec/template/spec/volumes/projected/sources/secret/name Deployment||\n\
> spec/template/spec/volumes/secret/secretName ReplicaSet||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name ReplicaSet||\n\
> spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name ReplicaSet||\n\
> spec/template/spec/containers/envFrom/secretRef/name ReplicaSet||\n\
> spec/template/spec/initContainers/envFrom/secretRef/name ReplicaSet||\n\
> spec/template/spec/imagePullSecrets/name ReplicaSet||\n\
> spec/template/spec/volumes/projected/sources/secret/name ReplicaSet||\n\
> spec/template/spec/volumes/secret/secretName DaemonSet||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name DaemonSet||\n\
> spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name DaemonSet||\n\
> spec/template/spec/containers/envFrom/secretRef/name DaemonSet||\n\
> spec/template/spec/initContainers/envFrom/secretRef/name DaemonSet||\n\
> spec/template/spec/imagePullSecrets/name DaemonSet||\n\
> spec/template/spec/volumes/projected/sources/secret/name DaemonSet||\n\
> spec/template/spec/volumes/secret/secretName StatefulSet||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name StatefulSet||\n\
> spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name StatefulSet||\n\
> spec/template/spec/containers/envFrom/secretRef/name StatefulSet||\n\
> spec/template/spec/initContainers/envFrom/secretRef/name StatefulSet||\n\
> spec/template/spec/imagePullSecrets/name StatefulSet||\n\
> spec/template/spec/volumes/projected/sources/secret/name StatefulSet||\n\
> spec/template/spec/volumes/secret/secretName Job||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name Job||\n\
> spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name Job||\n\
> spec/template/spec/containers/envFrom/secretRef/name Job||\n\
> spec/template/spec/initContainers/envFrom/secretRef/name Job||\n\
> spec/template/spec/imagePullSecrets/name Job||\n\
> spec/template/spec/volumes/projected/sources/secret/name Job||\n\
> spec/jobTemplate/spec/template/spec/volumes/secret/secretName CronJob||\n\
> spec/jobTemplate/spec/template/spec/volumes/projected/sources/secret/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/containers/env/valueFrom/secretKeyRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/initContainers/env/valueFrom/secretKeyRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/containers/envFrom/secretRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/initContainers/envFrom/secretRef/name CronJob||\n\
> spec/jobTemplate/spec/template/spec/imagePullSecrets/name CronJob||\n\
> spec/tls/secretName Ingress||\n\
> metadata/annotations/ingress.kubernetes.io\\/auth-secret Ingress||\n\
> metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret Ingress||\n\
> metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret Ingress||\n\
> spec/tls/secretName Ingress||\n\
> imagePullSecrets/name ServiceAccount||\n\
> parameters/secretName StorageClass||\n\
> parameters/adminSecretName StorageClass||\n\
> parameters/userSecretName StorageClass||\n\
> parameters/secretRef StorageClass||\n\
> rules/resourceNames Role||\n\
> rules/resourceNames ClusterRole||\n\
> spec/template/spec/containers/env/valueFrom/secretKeyRef/name Service|serving.knative.dev|v1\n\
> spec/azureFile/secretName PersistentVolume||\n\
Service||v1\n\
> spec/serviceName StatefulSet|apps|\n\
> spec/rules/http/paths/backend/serviceName Ingress||\n\
> spec/backend/serviceName Ingress||\n\
> spec/rules/http/paths/backend/service/name Ingress||\n\
> spec/defaultBackend/service/name Ingress||\n\
> spec/service/name APIService|apiregistration.k8s.io|\n\
> webhooks/clientConfig/service ValidatingWebhookConfiguration|admissionregistration.k8s.io|\n\
> webhooks/clientConfig/service MutatingWebhookConfiguration|admissionregistration.k8s.io|\n\
Role|rbac.authorization.k8s.io|\n\
> roleRef/name RoleBinding|rbac.authorization.k8s.io|\n\
ClusterRole|rbac.authorization.k8s.io|\n\
> roleRef/name RoleBinding|rbac.authorization.k8s.io|\n\
> roleRef/name ClusterRoleBinding|rbac.authorization.k8s.io|\n\
ServiceAccount||v1\n\
> subjects RoleBinding|rbac.authorization.k8s.io|\n\
> subjects ClusterRoleBinding|rbac.authorization.k8s.io|\n\
> spec/serviceAccountName Pod||\n\
> spec/template/spec/serviceAccountName StatefulSet||\n\
> spec/template/spec/serviceAccountName Deployment||\n\
> spec/template/spec/serviceAccountName ReplicationController||\n\
> spec/jobTemplate/spec/template/spec/serviceAccountName CronJob||\n\
> spec/template/spec/serviceAccountName Job||\n\
> spec/template/spec/serviceAccountName DaemonSet||\n\
PersistentVolumeClaim||v1\n\
> spec/volumes/persistentVolumeClaim/claimName Pod||\n\
> spec/template/spec/volumes/persistentVolumeClaim/claimName StatefulSet||\n\
> spec/template/spec/volumes/persistentVolumeClaim/claimName Deployment||\n\
> spec/template/spec/volumes/persistentVolumeClaim/claimName ReplicationController||\n\
> spec/jobTemplate/spec/template/spec/volumes/persistentVolumeClaim/claimName CronJob||\n\
> spec/template/spec/volumes/persistentVolumeClaim/claimName Job||\n\
> spec/template/spec/volumes/persistentVolumeClaim/claimName DaemonSet||\n\
PersistentVolume||v1\n\
> spec/volumeName PersistentVolumeClaim||\n\
> rules/resourceNames ClusterRole||\n\
StorageClass|storage.k8s.io|v1\n\
> spec/storageClassName PersistentVolume||\n\
> spec/storageClassName PersistentVolumeClaim||\n\
> spec/volumeClaimTemplates/spec/storageClassName StatefulSet||\n\
PriorityClass|scheduling.k8s.io|v1\n\
> spec/priorityClassName Pod||\n\
> spec/template/spec/priorityClassName StatefulSet||\n\
> spec/template/spec/priorityClassName Deployment||\n\
> spec/template/spec/priorityClassName ReplicationController||\n\
> spec/jobTemplate/spec/template/spec/priorityClassName CronJob||\n\
> spec/template/spec/priorityClassName Job||\n\
> spec/template/spec/priorityClassName DaemonSet||\n\
IngressClass|networking.k8s.io/v1|v1\n\
> spec/ingressClassName Ingress||\n\
ValidatingAdmissionPolicy|admissionregistration.k8s.io|\n\
> spec/policyName ValidatingAdmissionPolicyBinding|admissionregistration.k8s.io|\n\
";
