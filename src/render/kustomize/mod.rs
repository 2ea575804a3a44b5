//! Kustomize overlays, rendered by the real engine: `kustomize build`, or `kubectl kustomize`
//! (kubectl embeds the same engine) when no standalone binary is installed.

use super::{process, RenderError, Rendered, Tree};
use crate::config::RenderersConfig;
use crate::manifest;
use std::path::PathBuf;

/// The names a kustomization file may have, in the order kustomize looks for them.
pub const KUSTOMIZATION_FILES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub fn render(
    tree: &dyn Tree,
    path: &str,
    engines: &RenderersConfig,
) -> Result<Rendered, RenderError> {
    let (program, mut args) = engine(engines).ok_or_else(|| {
        RenderError::Unsupported(format!(
            "{}: rendering Kustomize needs `kustomize` or `kubectl` on PATH (or renderers.kustomize)",
            super::display_path(path)
        ))
    })?;
    let checkout = tree.checkout().map_err(RenderError::Read)?;
    let dir = checkout.join(path);
    args.push(dir.to_string_lossy().into_owned());
    let output =
        process::run(&program, &args, &checkout).map_err(|message| RenderError::Invalid {
            file: format!("{}/kustomization.yaml", super::display_path(path)),
            line: 1,
            message: message.replace(&format!("{}/", checkout.display()), ""),
        })?;
    let label = format!("{} (kustomize output)", super::display_path(path));
    super::decode_output(&label, &output, inputs(tree, path))
}

/// The configured engine, else the standalone binary when installed, else kubectl's
/// embedded engine.
fn engine(engines: &RenderersConfig) -> Option<(PathBuf, Vec<String>)> {
    if let Some(configured) = &engines.kustomize {
        let program = process::locate(configured)?;
        let is_kubectl = program.file_name().is_some_and(|n| n == "kubectl");
        let command = if is_kubectl { "kustomize" } else { "build" };
        return Some((program, vec![command.into()]));
    }
    if let Some(kustomize) = process::which("kustomize") {
        return Some((kustomize, vec!["build".into()]));
    }
    process::which("kubectl").map(|kubectl| (kubectl, vec!["kustomize".into()]))
}

/// The external engine's version, part of the render cache identity.
pub fn engine_version(engines: &RenderersConfig) -> String {
    match engine(engines) {
        Some((program, command)) if command[0] == "kustomize" => {
            process::version(&program, &["version", "--client"])
        }
        Some((program, _)) => process::version(&program, &["version"]),
        None => "no kustomize engine".into(),
    }
}

/// The directories an overlay reads: its own and, recursively, the local `resources`,
/// `bases` and `components` it names. The audit trail follows these.
fn inputs(tree: &dyn Tree, path: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut pending = vec![path.to_string()];
    while let Some(dir) = pending.pop() {
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir.clone());
        let Ok(files) = tree.read_dir(&dir) else {
            continue;
        };
        let Some(kustomization) = files.iter().find(|f| {
            KUSTOMIZATION_FILES
                .iter()
                .any(|name| f.path == join(&dir, name))
        }) else {
            continue;
        };
        let Ok(document) = serde_yaml::from_slice::<serde_yaml::Value>(&kustomization.data) else {
            continue;
        };
        for field in ["resources", "bases", "components"] {
            let Some(entries) = document.get(field).and_then(|v| v.as_sequence()) else {
                continue;
            };
            for entry in entries.iter().filter_map(|e| e.as_str()) {
                if entry.contains("://") || entry.starts_with("git@") {
                    continue;
                }
                if let Some(target) = normalize(&join(&dir, entry)) {
                    if manifest::is_manifest_file(&target) {
                        if !seen.contains(&target) {
                            seen.push(target);
                        }
                    } else {
                        pending.push(target);
                    }
                }
            }
        }
    }
    seen.sort();
    seen
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Resolves `.` and `..` in a repository path; `None` when it leaves the repository.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn paths_resolve_inside_the_repository_only() {
        assert_eq!(
            normalize("apps/web/overlays/prod/../../base").as_deref(),
            Some("apps/web/base")
        );
        assert_eq!(normalize("a/./b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../../etc"), None);
    }
}
