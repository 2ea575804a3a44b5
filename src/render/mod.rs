//! Desired state: turns the files of an app's path in Git into Kubernetes objects.
//!
//! Renderers read files through [`Tree`], never from a checkout, so that the same code serves
//! any commit of any source and a render can be keyed by the Git content it read.

pub mod cache;
pub mod helm;
pub mod kustomize;
pub mod plain;
pub mod process;

use crate::config::{HelmConfig, RenderKind, RenderersConfig};
use crate::model::{Capabilities, Resource};
use crate::source::RepoFile;
use cache::RenderCache;

/// Read access to one commit of a source.
pub trait Tree {
    /// Every file below `path` (repository-relative), sorted by path.
    fn read_dir(&self, path: &str) -> Result<Vec<RepoFile>, String>;
    /// The Git object id of the file or directory at `path`, `None` when there is none: what
    /// the render cache keys on.
    fn object_id(&self, path: &str) -> Result<Option<String>, String>;
    /// What `path` holds: a file, a symbolic link (not followed) or a directory's names.
    fn entry(&self, path: &str) -> Result<Option<crate::source::PathEntry>, String>;
    /// A directory holding the whole tree of the commit, for renderers that run an external
    /// engine; made once and reused.
    fn checkout(&self) -> Result<std::path::PathBuf, String>;
}

/// What to render: one app's path with its renderer and options.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub app: &'a str,
    pub path: &'a str,
    pub kind: RenderKind,
    pub namespace: Option<&'a str>,
    pub helm: Option<&'a HelmConfig>,
    pub engines: &'a RenderersConfig,
    /// What the target cluster serves, when known: Helm charts may depend on it.
    pub capabilities: Option<&'a Capabilities>,
}

/// The objects of one app, as Git declares them.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub objects: Vec<Resource>,
    /// Repository paths the render read: the audit trail and `last_commit` follow these.
    pub inputs: Vec<String>,
    /// Notes worth surfacing that are not failures.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Read(String),
    #[error(transparent)]
    Decode(#[from] crate::manifest::DecodeError),
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
    /// A build that failed for a reason its engine named (file and cause in the message).
    #[error("{0}")]
    Build(String),
}

/// Renders an app with the requested renderer (`auto` picks by the files present).
pub fn render(tree: &dyn Tree, request: &Request) -> Result<Rendered, RenderError> {
    let kind = resolve_kind(tree, request.path, request.kind)?;
    render_as(tree, request, kind)
}

/// Renders an app, or takes its render from `cache` when every path that render read has
/// the same Git content as then.
pub fn render_cached(
    tree: &dyn Tree,
    request: &Request,
    cache: &RenderCache,
) -> Result<Rendered, RenderError> {
    let kind = resolve_kind(tree, request.path, request.kind)?;
    let identity = identity(request, kind);
    let content_key = |inputs: &[String]| content_key(tree, inputs);
    if let Some(hit) = cache.lookup(&identity, &content_key) {
        return Ok(hit);
    }
    let mut rendered = render_as(tree, request, kind)?;
    // The app's own directory is always an input: a file added there changes the content.
    if !rendered.inputs.iter().any(|i| i == request.path) {
        rendered.inputs.push(request.path.to_string());
    }
    if let Some(key) = content_key(&rendered.inputs) {
        cache.store(&identity, &key, &rendered);
    }
    Ok(rendered)
}

fn render_as(
    tree: &dyn Tree,
    request: &Request,
    kind: RenderKind,
) -> Result<Rendered, RenderError> {
    let path = request.path;
    match kind {
        RenderKind::Plain | RenderKind::Auto => {
            let files = tree.read_dir(path).map_err(RenderError::Read)?;
            plain::render(&files)
        }
        RenderKind::Kustomize => kustomize::render(tree, path, request.engines),
        RenderKind::Helm => helm::render(tree, request),
    }
}

/// The renderer `auto` stands for, found from the names at the app path without reading
/// any file.
pub fn resolve_kind(
    tree: &dyn Tree,
    path: &str,
    kind: RenderKind,
) -> Result<RenderKind, RenderError> {
    if kind != RenderKind::Auto {
        return Ok(kind);
    }
    let exists = |name: &str| -> Result<bool, RenderError> {
        let path = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        };
        tree.object_id(&path)
            .map(|id| id.is_some())
            .map_err(RenderError::Read)
    };
    for name in kustomize::KUSTOMIZATION_FILES {
        if exists(name)? {
            return Ok(RenderKind::Kustomize);
        }
    }
    Ok(if exists("Chart.yaml")? {
        RenderKind::Helm
    } else {
        RenderKind::Plain
    })
}

/// What was asked of the renderer, apart from the Git content: changing any of it renders
/// again.
fn identity(request: &Request, kind: RenderKind) -> String {
    let mut parts: Vec<String> = vec![
        format!("plumbline {}", env!("CARGO_PKG_VERSION")),
        kind.to_string(),
        request.path.to_string(),
    ];
    match kind {
        RenderKind::Helm => {
            parts.push(helm::engine_version(request.engines));
            parts.push(request.app.to_string());
            parts.push(request.namespace.unwrap_or_default().to_string());
            if let Some(helm) = request.helm {
                parts.push(helm.release.clone().unwrap_or_default());
                parts.extend(helm.values.iter().cloned());
                parts.extend(helm.set.iter().map(|(k, v)| format!("{k}={v}")));
            }
            if let Some(capabilities) = request.capabilities {
                parts.push(capabilities.kube_version.clone().unwrap_or_default());
                parts.extend(capabilities.api_versions.iter().cloned());
            }
        }
        RenderKind::Kustomize => parts.push(kustomize::engine_version(request.engines)),
        RenderKind::Plain | RenderKind::Auto => {}
    }
    cache::digest(parts.iter().map(String::as_str))
}

/// The Git content of a list of inputs at this commit; `None` when it cannot be known.
fn content_key(tree: &dyn Tree, inputs: &[String]) -> Option<String> {
    let mut sorted: Vec<&String> = inputs.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::with_capacity(sorted.len() * 2);
    for input in sorted {
        let id = tree.object_id(input).ok()?;
        parts.push(input.clone());
        parts.push(id.unwrap_or_else(|| "-".into()));
    }
    Some(cache::digest(parts.iter().map(String::as_str)))
}

/// Decodes the YAML an external engine printed into objects; errors name the engine's output.
fn decode_output(label: &str, output: &[u8], inputs: Vec<String>) -> Result<Rendered, RenderError> {
    let mut rendered = Rendered {
        inputs,
        ..Rendered::default()
    };
    for document in crate::manifest::decode(label, output)? {
        let resource =
            Resource::from_value(document.value).map_err(|message| RenderError::Invalid {
                file: label.to_string(),
                line: document.line,
                message,
            })?;
        rendered.objects.push(resource);
    }
    Ok(rendered)
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "."
    } else {
        path
    }
}

/// Gives namespaced objects without a namespace the app's namespace, and strips the namespace
/// from cluster-scoped ones (kubectl ignores it there). `namespaced` answers for a kind; when
/// nobody knows (a custom resource the cluster did not describe) the object is assumed
/// namespaced and a warning says so.
pub fn assign_namespaces(
    objects: &mut [Resource],
    default_namespace: Option<&str>,
    namespaced: &dyn Fn(&str, &str) -> Option<bool>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for object in objects.iter_mut() {
        let scope = namespaced(&object.key.group, &object.key.kind);
        let is_namespaced = scope.unwrap_or_else(|| {
            let kind = &object.key.kind;
            let note = format!(
                "kind {kind} ({}) has an unknown scope; assumed namespaced",
                object.key.group
            );
            if !warnings.contains(&note) {
                warnings.push(note);
            }
            true
        });
        if is_namespaced {
            if object.key.namespace.is_none() {
                if let Some(ns) = default_namespace {
                    object.key.namespace = Some(ns.to_string());
                    if let Some(meta) = object
                        .body
                        .get_mut("metadata")
                        .and_then(|m| m.as_object_mut())
                    {
                        meta.insert("namespace".into(), ns.into());
                    }
                }
            }
        } else if object.key.namespace.take().is_some() {
            if let Some(meta) = object
                .body
                .get_mut("metadata")
                .and_then(|m| m.as_object_mut())
            {
                meta.remove("namespace");
            }
        }
    }
    warnings
}
