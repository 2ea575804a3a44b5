//! Desired state: turns the files of an app's path in Git into Kubernetes objects.
//!
//! Renderers read files through [`Tree`], never from a checkout, so that the same code serves
//! any commit of any source and a render can be keyed by the Git content it read.

pub mod helm;
pub mod kustomize;
pub mod plain;
pub mod process;

use crate::config::{HelmConfig, RenderKind};
use crate::model::Resource;
use crate::source::RepoFile;

/// Read access to one commit of a source.
pub trait Tree {
    /// Every file below `path` (repository-relative), sorted by path.
    fn read_dir(&self, path: &str) -> Result<Vec<RepoFile>, String>;
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
}

/// Renders an app with the requested renderer (`auto` picks by the files present).
pub fn render(tree: &dyn Tree, request: &Request) -> Result<Rendered, RenderError> {
    let path = request.path;
    let files = tree.read_dir(path).map_err(RenderError::Read)?;
    let kind = match request.kind {
        RenderKind::Auto => detect(path, &files),
        other => other,
    };
    match kind {
        RenderKind::Plain | RenderKind::Auto => plain::render(&files),
        RenderKind::Kustomize => kustomize::render(tree, path),
        RenderKind::Helm => helm::render(tree, path, request.app, request.namespace, request.helm),
    }
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

/// `auto`: a kustomization file makes it Kustomize, a `Chart.yaml` Helm, anything else plain.
pub fn detect(path: &str, files: &[RepoFile]) -> RenderKind {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let top_level = |name: &str| files.iter().any(|f| f.path == format!("{prefix}{name}"));
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|n| top_level(n))
    {
        RenderKind::Kustomize
    } else if top_level("Chart.yaml") {
        RenderKind::Helm
    } else {
        RenderKind::Plain
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
