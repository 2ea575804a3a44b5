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
