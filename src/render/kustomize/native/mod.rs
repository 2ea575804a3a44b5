//! A native Kustomize engine: builds an overlay from one commit of a repository without
//! running the real `kustomize` binary, reproducing the output of kustomize v5 for the
//! features it supports and refusing, with [`Error::Unsupported`], everything else, so that
//! a render is either identical to the real engine's or is not produced at all.

mod fieldspec;
mod files;
mod generator;
mod kustomization;
mod merge;
mod nameref;
mod patch;
mod resource;
mod target;
mod timestamp;
mod transform;

pub use files::DirFiles;

/// Read access to one commit of a repository; paths are normalized, repository-relative,
/// "/"-separated, "" is the root.
pub trait Files {
    /// The bytes of the file at `path`; Ok(None) when there is no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &str) -> bool;
    /// Names of the entries directly in directory `path`, sorted.
    fn list(&self, path: &str) -> Result<Vec<String>, String>;
}

/// The rendered objects, in the order kustomize emits them, and the files they came from.
#[derive(Debug)]
pub struct Output {
    pub objects: Vec<serde_json::Value>,
    /// Every file read, repository-relative, sorted, deduplicated.
    pub inputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported kustomize feature: {field} in {file}")]
    Unsupported { field: String, file: String },
    /// A reference leaving the repository ("../" past the root, an absolute path, a symlink
    /// pointing outside).
    #[error("{file}: {reference} points outside the repository")]
    Escape { file: String, reference: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// Builds the kustomization in directory `dir` (repository-relative).
pub fn build(files: &dyn Files, dir: &str) -> Result<Output, Error> {
    target::build(files, dir)
}
