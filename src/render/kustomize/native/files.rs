//! Repository paths and [`DirFiles`], the on-disk implementation of [`Files`].

use super::{Error, Files};
use std::path::{Path, PathBuf};

/// Prefix of the error a [`Files`] implementation returns for a path that resolves outside
/// the repository (a symlink pointing out); the engine reports it as [`Error::Escape`].
pub(super) const ESCAPE_MARK: &str = "outside the repository: ";

/// Joins `reference` (as written in `file`, relative to directory `dir`) onto `dir`,
/// resolving `.` and `..`; references leaving the repository are refused.
pub(super) fn join(dir: &str, reference: &str, file: &str) -> Result<String, Error> {
    let escape = || Error::Escape {
        file: file.to_string(),
        reference: reference.to_string(),
    };
    if reference.starts_with('/') || reference.starts_with('\\') || reference.contains(":\\") {
        return Err(escape());
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in reference.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(escape)?;
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// The directory holding `path` ("" for a top-level file).
pub(super) fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The last component of `path`.
pub(super) fn base_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// A repository checked out in a directory on disk.
pub struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    /// Serves the files under `root`; symlinks resolving outside it are refused.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(DirFiles {
            root: root.as_ref().canonicalize()?,
        })
    }

    /// The on-disk location of `path`, or an error when it resolves outside the root.
    /// Ok(None) when nothing exists there.
    fn resolve(&self, path: &str) -> Result<Option<PathBuf>, String> {
        let joined = if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        };
        match joined.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(Some(real)),
            Ok(_) => Err(format!("{ESCAPE_MARK}{path}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink is a missing file, unless it points outside.
                match std::fs::read_link(&joined) {
                    Ok(link) if link.is_absolute() || link.starts_with("..") => {
                        Err(format!("{ESCAPE_MARK}{path}"))
                    }
                    _ => Ok(None),
                }
            }
            Err(e) => Err(format!("{path}: {e}")),
        }
    }
}

impl Files for DirFiles {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(real) = self.resolve(path)? else {
            return Ok(None);
        };
        if real.is_dir() {
            return Ok(None);
        }
        std::fs::read(&real)
            .map(Some)
            .map_err(|e| format!("{path}: {e}"))
    }

    fn is_dir(&self, path: &str) -> bool {
        matches!(self.resolve(path), Ok(Some(real)) if real.is_dir())
    }

    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        let Some(real) = self.resolve(path)? else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&real).map_err(|e| format!("{path}: {e}"))? {
            let entry = entry.map_err(|e| format!("{path}: {e}"))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}
