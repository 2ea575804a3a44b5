//! The plain renderer: every `.yaml`, `.yml` and `.json` file below the app path, in path
//! order, each document an object.

use super::{RenderError, Rendered};
use crate::manifest;
use crate::model::{Origin, Resource};
use crate::source::RepoFile;

pub fn render(files: &[RepoFile]) -> Result<Rendered, RenderError> {
    let mut rendered = Rendered::default();
    let mut sorted: Vec<&RepoFile> = files
        .iter()
        .filter(|f| manifest::is_manifest_file(&f.path))
        .collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for file in sorted {
        if file.is_symlink {
            rendered
                .warnings
                .push(format!("{}: symbolic link skipped", file.path));
            continue;
        }
        rendered.inputs.push(file.path.clone());
        for document in manifest::decode(&file.path, &file.data)? {
            if is_kustomize_config(&document.value) {
                rendered.warnings.push(format!(
                    "{}:{}: Kustomize configuration skipped (use render: kustomize to build it)",
                    file.path, document.line
                ));
                continue;
            }
            if !document.value.is_object() {
                return Err(RenderError::Invalid {
                    file: file.path.clone(),
                    line: document.line,
                    message: "document is not a Kubernetes object (expected a mapping)".into(),
                });
            }
            let mut resource =
                Resource::from_value(document.value).map_err(|message| RenderError::Invalid {
                    file: file.path.clone(),
                    line: document.line,
                    message,
                })?;
            resource.origin = Some(Origin {
                file: file.path.clone(),
                line: document.line,
            });
            rendered.objects.push(resource);
        }
    }
    Ok(rendered)
}

/// Kustomization and Component files configure the Kustomize engine; they are not objects
/// to apply, even when a plain directory holds one.
fn is_kustomize_config(value: &serde_json::Value) -> bool {
    value
        .get("apiVersion")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> RepoFile {
        RepoFile {
            path: path.into(),
            data: text.as_bytes().to_vec(),
            is_symlink: false,
        }
    }

    #[test]
    fn kustomize_configuration_in_a_plain_directory_is_skipped() {
        let files = vec![
            file("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
            file("app/base/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n"),
            file("app/README.md", "not a manifest"),
        ];
        let rendered = render(&files).expect("renders");
        assert_eq!(rendered.objects.len(), 1);
        assert_eq!(rendered.warnings.len(), 1);
        assert_eq!(rendered.objects[0].origin.as_ref().map(|o| o.line), Some(1));
    }

    #[test]
    fn a_document_without_kind_fails_with_file_and_line() {
        let files = vec![file("app/values.yaml", "# chart values\nreplicaCount: 2\n")];
        let error = render(&files).expect_err("not an object");
        assert_eq!(
            error.to_string(),
            "app/values.yaml:2: object has no apiVersion"
        );
    }
}
