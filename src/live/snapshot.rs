//! Offline clusters: live state read from `kubectl get -o yaml|json` dumps in a directory.
//!
//! Snapshot objects keep everything the server put in them and are treated exactly like
//! objects read from an API server.

use super::LiveState;
use crate::manifest;
use crate::model::Resource;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot directory {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Decode(#[from] manifest::DecodeError),
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// Reads every `.yaml`, `.yml` and `.json` file below `dir`. A file that cannot be decoded
/// fails the whole snapshot: reading the rest would report its objects as missing.
pub fn read(dir: &Path) -> Result<LiveState, SnapshotError> {
    if !dir.is_dir() {
        return Err(SnapshotError::Missing(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut state = LiveState::default();
    for path in files {
        let data = std::fs::read(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let shown = path.display().to_string();
        for document in manifest::decode(&shown, &data)? {
            if !document.value.is_object() {
                return Err(SnapshotError::Invalid {
                    file: shown.clone(),
                    line: document.line,
                    message: "document is not a Kubernetes object".into(),
                });
            }
            let resource =
                Resource::from_value(document.value).map_err(|message| SnapshotError::Invalid {
                    file: shown.clone(),
                    line: document.line,
                    message,
                })?;
            state.insert(resource);
        }
    }
    Ok(state)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SnapshotError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SnapshotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| SnapshotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if manifest::is_manifest_file(&path.to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}
