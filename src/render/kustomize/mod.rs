//! Kustomize overlays. The native engine ([`native`]) builds what it supports exactly as
//! kustomize v5 does, with no process and no binary to install. For anything else
//! (`helmCharts`, `replacements`, KRM plugins …) it refuses, and the configured or installed
//! real engine (`kustomize build`, or `kubectl kustomize`, which embeds the same engine)
//! builds the overlay instead. Without one the app fails naming the feature and the file:
//! never a silently different result.

pub mod native;

use super::{process, RenderError, Rendered, Tree};
use crate::config::RenderersConfig;
use crate::manifest;
use crate::model::Resource;
use crate::source::PathEntry;
use std::path::PathBuf;

/// The names a kustomization file may have, in the order kustomize looks for them.
pub const KUSTOMIZATION_FILES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Symbolic links followed in a row before giving up (a loop).
const MAX_LINKS: usize = 8;

pub fn render(
    tree: &dyn Tree,
    path: &str,
    engines: &RenderersConfig,
) -> Result<Rendered, RenderError> {
    match native::build(&TreeFiles { tree }, path) {
        Ok(output) => from_native(path, output),
        Err(native::Error::Unsupported { field, file }) => match engine(engines) {
            Some(engine) => {
                let mut rendered = external(tree, path, engine)?;
                rendered.warnings.push(format!(
                    "{file}: {field} is built by the external kustomize engine"
                ));
                Ok(rendered)
            }
            None => Err(RenderError::Unsupported(format!(
                "unsupported kustomize feature: {field} in {file} (install kustomize or set renderers.kustomize to build it)"
            ))),
        },
        Err(e) => Err(RenderError::Build(e.to_string())),
    }
}

fn from_native(path: &str, output: native::Output) -> Result<Rendered, RenderError> {
    let mut rendered = Rendered {
        inputs: output.inputs,
        ..Rendered::default()
    };
    for object in output.objects {
        let resource = Resource::from_value(object).map_err(|message| {
            RenderError::Build(format!(
                "{} (kustomize output): {message}",
                super::display_path(path)
            ))
        })?;
        rendered.objects.push(resource);
    }
    Ok(rendered)
}

/// Builds with the real engine on a checkout of the commit.
fn external(
    tree: &dyn Tree,
    path: &str,
    (program, mut args): (PathBuf, Vec<String>),
) -> Result<Rendered, RenderError> {
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

/// The native engine's view of a commit: symbolic links are followed while they stay in
/// the repository; one pointing out is refused, naming it.
struct TreeFiles<'a> {
    tree: &'a dyn Tree,
}

impl TreeFiles<'_> {
    fn follow(&self, path: &str) -> Result<Option<PathEntry>, String> {
        let mut current = path.to_string();
        for _ in 0..MAX_LINKS {
            match self.tree.entry(&current)? {
                Some(PathEntry::Link(target)) => {
                    let parent = current.rsplit_once('/').map_or("", |(dir, _)| dir);
                    current = normalize(&join(parent, &target))
                        .filter(|_| !target.starts_with('/'))
                        .ok_or_else(|| {
                            format!("outside the repository: {current} links to {target}")
                        })?;
                }
                other => return Ok(other),
            }
        }
        Err(format!("{path}: too many levels of symbolic links"))
    }
}

impl native::Files for TreeFiles<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match self.follow(path)? {
            Some(PathEntry::File(data)) => Ok(Some(data)),
            _ => Ok(None),
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        matches!(self.follow(path), Ok(Some(PathEntry::Dir(_))))
    }

    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        match self.follow(path)? {
            Some(PathEntry::Dir(names)) => Ok(names),
            _ => Err(format!("{path}: not a directory")),
        }
    }
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
    use super::*;
    use crate::source::RepoFile;
    use std::collections::BTreeMap;

    /// A commit as a map of paths: files, and symbolic links with their targets.
    struct FakeTree(BTreeMap<&'static str, PathEntry>);

    impl Tree for FakeTree {
        fn read_dir(&self, _path: &str) -> Result<Vec<RepoFile>, String> {
            Err("not used".into())
        }
        fn object_id(&self, _path: &str) -> Result<Option<String>, String> {
            Err("not used".into())
        }
        fn entry(&self, path: &str) -> Result<Option<PathEntry>, String> {
            if let Some(entry) = self.0.get(path) {
                return Ok(Some(entry.clone()));
            }
            let prefix = format!("{path}/");
            let names: Vec<String> = self
                .0
                .keys()
                .filter_map(|p| p.strip_prefix(prefix.as_str()))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
                .collect();
            Ok((!names.is_empty()).then_some(PathEntry::Dir(names)))
        }
        fn checkout(&self) -> Result<PathBuf, String> {
            Err("no checkout in this test".into())
        }
    }

    fn no_external_engine() -> RenderersConfig {
        RenderersConfig {
            kustomize: Some("/nonexistent/kustomize".into()),
            ..RenderersConfig::default()
        }
    }

    #[test]
    fn a_symbolic_link_out_of_the_repository_is_refused_naming_it() {
        let tree = FakeTree(BTreeMap::from([
            (
                "app/kustomization.yaml",
                PathEntry::File(b"resources: [secrets.yaml]\n".to_vec()),
            ),
            (
                "app/secrets.yaml",
                PathEntry::Link("../../etc/shadow".into()),
            ),
        ]));
        let message = render(&tree, "app", &no_external_engine())
            .expect_err("refused")
            .to_string();
        assert_eq!(
            message,
            "app/kustomization.yaml: secrets.yaml points outside the repository"
        );
    }

    #[test]
    fn a_link_inside_the_repository_is_followed() {
        let tree = FakeTree(BTreeMap::from([
            (
                "app/kustomization.yaml",
                PathEntry::File(b"resources: [cm.yaml]\n".to_vec()),
            ),
            ("app/cm.yaml", PathEntry::Link("../shared/cm.yaml".into())),
            (
                "shared/cm.yaml",
                PathEntry::File(
                    b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n".to_vec(),
                ),
            ),
        ]));
        let rendered = render(&tree, "app", &no_external_engine()).expect("rendered");
        assert_eq!(rendered.objects[0].key.name, "shared");
    }

    #[test]
    fn an_unimplemented_merge_directive_is_refused_not_merged_differently() {
        let tree = FakeTree(BTreeMap::from([
            (
                "app/kustomization.yaml",
                PathEntry::File(
                    b"resources: [deploy.yaml]\npatches:\n  - patch: |\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: web}\n      spec:\n        strategy:\n          $retainKeys: [type]\n          type: Recreate\n"
                        .to_vec(),
                ),
            ),
            (
                "app/deploy.yaml",
                PathEntry::File(
                    b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  strategy: {type: RollingUpdate}\n"
                        .to_vec(),
                ),
            ),
        ]));
        let message = render(&tree, "app", &no_external_engine())
            .expect_err("refused")
            .to_string();
        assert!(
            message.starts_with("unsupported kustomize feature: $retainKeys"),
            "{message}"
        );
    }

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
