//! Git access: mirrors of the configured sources, trees read straight from the object database,
//! and the commit audit trail.
//!
//! Everything here goes through `gix`; no `git` process is ever started, so plumbline works on
//! machines (and in containers) that have no Git installation and no Git configuration.

pub mod git;
pub mod history;
pub mod writer;

pub use git::{Mirror, PathEntry, RepoFile, SourceError};
