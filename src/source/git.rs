//! Bare mirrors of Git sources, revision resolution and tree reading.
//!
//! A scan fetches each source once into a bare mirror under the cache directory, resolves the
//! configured revision to a commit and then reads every app's files from that commit's tree in
//! the object database: there is never a checkout, so concurrent renders of different commits
//! cannot trip over each other and nothing on disk needs cleaning up.
//!
//! Local sources (absolute paths and `file://` URLs) are mirrored by copying objects and refs
//! through `gix` directly, because `gix`'s own `file://` transport would start `git-upload-pack`.
//! Network sources (`https://`) use the `gix` smart-HTTP client.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use gix::bstr::{BString, ByteSlice};
use gix::objs::tree::EntryKind;
use gix::objs::Write as _;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use gix::ObjectId;
use sha2::{Digest, Sha256};

/// Everything that can go wrong while mirroring or reading a source. Each message names the
/// source (URL, with credentials removed), the revision or the path involved, so that a scan
/// error can be acted upon without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("unsupported source url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot clone {url}: {message}")]
    Clone { url: String, message: String },
    #[error("cannot fetch {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{url} has not been fetched yet: no mirror at {}", path.display())]
    NotSynced { url: String, path: PathBuf },
    #[error("cannot open the repository at {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("revision {revision:?} not found in {url}: {reason}")]
    RevisionNotFound {
        url: String,
        revision: String,
        reason: String,
    },
    #[error("revision {revision:?} is ambiguous in {url}: it matches the commits {}", candidates.join(", "))]
    AmbiguousRevision {
        url: String,
        revision: String,
        candidates: Vec<String>,
    },
    #[error("path {path:?} not found in commit {commit}")]
    PathNotFound { path: String, commit: String },
    #[error("invalid directory pattern {pattern:?}: {message}")]
    InvalidPattern { pattern: String, message: String },
    #[error("cannot read {what} in {url}: {message}")]
    Read {
        url: String,
        what: String,
        message: String,
    },
    #[error("cannot write {what} in {}: {message}", path.display())]
    Write {
        path: PathBuf,
        what: String,
        message: String,
    },
}

/// One file of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Repository-relative, `/`-separated.
    pub path: String,
    /// The blob's content; for a symlink, its target.
    pub data: Vec<u8>,
    /// Symlinks are returned rather than followed: whether a link may point outside the app
    /// directory is the renderer's decision, not the reader's.
    pub is_symlink: bool,
}

/// What a path of a commit holds, for readers that walk a tree themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathEntry {
    File(Vec<u8>),
    /// A symbolic link, not followed: its target as written.
    Link(String),
    /// A directory with the names of its entries, sorted (submodules left out).
    Dir(Vec<String>),
}

/// A bare mirror of one source in the cache directory.
///
/// Holds a thread-safe handle so a `Mirror` can be shared between render threads; each call
/// takes its own thread-local view of the repository.
pub struct Mirror {
    path: PathBuf,
    /// The source URL with any credentials removed, for messages.
    url: String,
    repo: gix::ThreadSafeRepository,
    /// Decoded trees and commits' root trees: every app's content key and render reads
    /// paths from the root, and re-reading the same objects dominated warm scans.
    trees: TreeCache,
}

/// Trees by id (immutable, so always valid) and commits' root trees, shared by all threads.
#[derive(Default)]
struct TreeCache {
    trees: std::sync::Mutex<HashMap<ObjectId, std::sync::Arc<[TreeEntry]>>>,
    roots: std::sync::Mutex<HashMap<String, ObjectId>>,
}

/// Bound of [`TreeCache`]: past it, the cache starts again (a tree entry list is small).
const MAX_CACHED_TREES: usize = 50_000;

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("path", &self.path)
            .field("url", &self.url)
            .finish()
    }
}

/// Refs that make the mirror's branches and tags the same as the remote's: forced, so that a
/// force-push on the remote is reflected instead of rejected.
const MIRROR_REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// A temp clone left behind by a process that died is removed once it is this old; younger ones
/// may belong to a concurrent sync and are left alone.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Object cache per thread-local repository: history walks and tree reads revisit the same
/// trees and commits many times.
const OBJECT_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Mirror {
    /// Creates or updates the mirror of `url` under `cache_root` and returns it.
    ///
    /// A fresh mirror is built in a temporary directory and renamed into place only when
    /// complete, so an interrupted clone never leaves a half-mirror that later runs would trust.
    pub fn sync(cache_root: &Path, name: &str, url: &str) -> Result<Mirror, SourceError> {
        let location = Location::parse(url)?;
        let shown = redact_url(url);
        let path = mirror_path(cache_root, name, url);
        std::fs::create_dir_all(cache_root).map_err(|source| SourceError::Io {
            action: "create the cache directory",
            path: cache_root.to_path_buf(),
            source,
        })?;

        if path.exists() {
            match open_repo(&path) {
                Ok(repo) => {
                    let mut local = repo.to_thread_local();
                    update(&mut local, &location).map_err(|message| SourceError::Fetch {
                        url: shown.clone(),
                        message: scrub(&message, url),
                    })?;
                    return Ok(Mirror {
                        path,
                        url: shown,
                        repo,
                        trees: TreeCache::default(),
                    });
                }
                // Not a repository any more (damaged by hand or by a full disk): start over
                // rather than failing every scan from now on.
                Err(_) => {
                    std::fs::remove_dir_all(&path).map_err(|source| SourceError::Io {
                        action: "remove the damaged mirror",
                        path: path.clone(),
                        source,
                    })?;
                }
            }
        }

        clone_into_place(cache_root, &path, &location).map_err(|message| SourceError::Clone {
            url: shown.clone(),
            message: scrub(&message, url),
        })?;
        let repo = open_repo(&path).map_err(|message| SourceError::Open {
            path: path.clone(),
            message,
        })?;
        Ok(Mirror {
            path,
            url: shown,
            repo,
            trees: TreeCache::default(),
        })
    }

    /// Opens the mirror of `url` without touching the network, e.g. to read history offline.
    pub fn open_existing(cache_root: &Path, name: &str, url: &str) -> Result<Mirror, SourceError> {
        let path = mirror_path(cache_root, name, url);
        let shown = redact_url(url);
        if !path.exists() {
            return Err(SourceError::NotSynced { url: shown, path });
        }
        let repo = open_repo(&path).map_err(|message| SourceError::Open {
            path: path.clone(),
            message,
        })?;
        Ok(Mirror {
            path,
            url: shown,
            repo,
            trees: TreeCache::default(),
        })
    }

    /// The mirror's directory (a bare repository).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The source URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A thread-local view of the mirror with an object cache.
    pub(crate) fn local(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        repo
    }

    /// Resolves `revision` to the 40-hex id of a commit.
    ///
    /// `None` (or `HEAD`) is the remote's default branch. Names are looked up the way `git`
    /// does (`refs/<name>`, then tags, then branches); hex strings of at least 4 characters
    /// that name no ref are taken as (abbreviated) commit ids. Annotated tags are peeled.
    pub fn resolve(&self, revision: Option<&str>) -> Result<String, SourceError> {
        let repo = self.local();
        let revision = revision.map(str::trim).filter(|r| !r.is_empty());
        let Some(rev) = revision.filter(|r| *r != "HEAD") else {
            return self.resolve_head(&repo);
        };
        let not_found = |reason: &str| SourceError::RevisionNotFound {
            url: self.url.clone(),
            revision: rev.to_string(),
            reason: reason.to_string(),
        };

        if rev.len() == repo.object_hash().len_in_hex() && is_hex(rev) {
            let id = ObjectId::from_hex(rev.as_bytes())
                .map_err(|_| not_found("not a valid commit id"))?;
            if !repo.has_object(id) {
                return Err(not_found(
                    "no commit with that id (fetched branches and tags do not contain it)",
                ));
            }
            return self.peel_to_commit(&repo, id, rev);
        }

        // Invalid ref names (spaces, `..`) are simply not refs; they may still be hex.
        if let Ok(Some(mut reference)) = repo.try_find_reference(rev) {
            let id = reference
                .peel_to_id()
                .map_err(|e| self.read_error(format!("ref {rev}"), &e))?
                .detach();
            return self.peel_to_commit(&repo, id, rev);
        }

        if rev.len() >= 4 && is_hex(rev) {
            return self.resolve_prefix(&repo, rev);
        }
        Err(not_found("no branch, tag or commit of that name"))
    }

    fn resolve_head(&self, repo: &gix::Repository) -> Result<String, SourceError> {
        let head = repo
            .head()
            .map_err(|e| self.read_error("HEAD".to_string(), &e))?;
        if let gix::head::Kind::Unborn(name) = &head.kind {
            return Err(SourceError::RevisionNotFound {
                url: self.url.clone(),
                revision: "HEAD".to_string(),
                reason: format!(
                    "the default branch {} has no commits",
                    name.as_bstr().to_str_lossy()
                ),
            });
        }
        let id = head
            .into_peeled_id()
            .map_err(|e| self.read_error("HEAD".to_string(), &e))?
            .detach();
        self.peel_to_commit(repo, id, "HEAD")
    }

    /// Finds the single commit whose id starts with `prefix`. Like `git`, only commits (and
    /// tags pointing to commits) count, so a tree or blob sharing the prefix is no ambiguity.
    fn resolve_prefix(&self, repo: &gix::Repository, rev: &str) -> Result<String, SourceError> {
        let prefix =
            gix::hash::Prefix::from_hex(rev).map_err(|e| SourceError::RevisionNotFound {
                url: self.url.clone(),
                revision: rev.to_string(),
                reason: e.to_string(),
            })?;
        let mut candidates = HashSet::new();
        repo.objects
            .lookup_prefix(prefix, Some(&mut candidates))
            .map_err(|e| self.read_error(format!("objects starting with {rev}"), &e))?;
        let mut commits: Vec<String> = candidates
            .into_iter()
            .filter_map(|id| self.peel_to_commit(repo, id, rev).ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        commits.sort();
        match commits.len() {
            0 => Err(SourceError::RevisionNotFound {
                url: self.url.clone(),
                revision: rev.to_string(),
                reason: "no branch, tag or commit of that name".to_string(),
            }),
            1 => Ok(commits.remove(0)),
            _ => Err(SourceError::AmbiguousRevision {
                url: self.url.clone(),
                revision: rev.to_string(),
                candidates: commits,
            }),
        }
    }

    fn peel_to_commit(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        rev: &str,
    ) -> Result<String, SourceError> {
        let object = repo
            .find_object(id)
            .and_then(|o| o.peel_tags_to_end())
            .map_err(|e| self.read_error(format!("object {id}"), &e))?;
        if object.kind != gix::objs::Kind::Commit {
            return Err(SourceError::RevisionNotFound {
                url: self.url.clone(),
                revision: rev.to_string(),
                reason: format!("it names a {}, not a commit", object.kind),
            });
        }
        Ok(object.id.to_string())
    }

    /// Every file below `path` in `commit`, sorted by path. `""`, `"."` and `"/"` mean the
    /// repository root; a path naming a file returns that file. Submodules are skipped: their
    /// content is not in this repository.
    pub fn read_dir(&self, commit: &str, path: &str) -> Result<Vec<RepoFile>, SourceError> {
        let repo = self.local();
        let path = normalize_path(path);
        let entry =
            self.entry_at(&repo, commit, &path)?
                .ok_or_else(|| SourceError::PathNotFound {
                    path: path.clone(),
                    commit: commit.to_string(),
                })?;
        let mut files = Vec::new();
        match entry.kind {
            EntryKind::Tree => self.collect_files(&repo, entry.id, &path, &mut files)?,
            EntryKind::Commit => {}
            kind => files.push(self.read_blob(&repo, entry.id, path, kind)?),
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The content of the file at `path`, or `None` when there is no file there (missing,
    /// a directory or a submodule).
    pub fn read_file(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let repo = self.local();
        let path = normalize_path(path);
        match self.entry_at(&repo, commit, &path)? {
            Some(entry) if is_file(entry.kind) => Ok(Some(
                self.read_blob(&repo, entry.id, path, entry.kind)?.data,
            )),
            _ => Ok(None),
        }
    }

    /// What `path` holds in `commit`, `None` when nothing (or a submodule) is there.
    pub fn entry(&self, commit: &str, path: &str) -> Result<Option<PathEntry>, SourceError> {
        let repo = self.local();
        let path = normalize_path(path);
        let Some(entry) = self.entry_at(&repo, commit, &path)? else {
            return Ok(None);
        };
        Ok(match entry.kind {
            EntryKind::Tree => {
                let mut names: Vec<String> = self
                    .entries(&repo, entry.id)?
                    .iter()
                    .filter(|e| e.kind != EntryKind::Commit)
                    .map(|e| e.name.to_string())
                    .collect();
                names.sort();
                Some(PathEntry::Dir(names))
            }
            EntryKind::Commit => None,
            EntryKind::Link => {
                let blob = self.read_blob(&repo, entry.id, path, entry.kind)?;
                Some(PathEntry::Link(
                    String::from_utf8_lossy(&blob.data).into_owned(),
                ))
            }
            kind => Some(PathEntry::File(
                self.read_blob(&repo, entry.id, path, kind)?.data,
            )),
        })
    }

    /// The id of the tree or blob at `path`: equal ids mean equal content, which lets the
    /// render cache survive commits that did not touch an app's directory.
    pub fn tree_id(&self, commit: &str, path: &str) -> Result<Option<String>, SourceError> {
        let repo = self.local();
        let path = normalize_path(path);
        Ok(self
            .entry_at(&repo, commit, &path)?
            .map(|entry| entry.id.to_string()))
    }

    /// All directories of `commit` matching `pattern` (globset semantics: `*` stays within one
    /// path component, `**` crosses them), sorted.
    pub fn list_dirs(&self, commit: &str, pattern: &str) -> Result<Vec<String>, SourceError> {
        let pattern = normalize_path(pattern);
        let invalid = |message: String| SourceError::InvalidPattern {
            pattern: pattern.clone(),
            message,
        };
        if pattern.is_empty() {
            return Err(invalid("the pattern is empty".to_string()));
        }
        let matcher = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(e.kind().to_string()))?
            .compile_matcher();
        // Without `**` a match cannot be deeper than the pattern, so deeper trees are not read.
        let max_depth = if pattern.contains("**") {
            usize::MAX
        } else {
            pattern.split('/').count()
        };
        let repo = self.local();
        let root = self.commit_tree(&repo, commit)?;
        let mut dirs = Vec::new();
        let mut stack = vec![(root, String::new(), 0usize)];
        while let Some((tree, prefix, depth)) = stack.pop() {
            if depth >= max_depth {
                continue;
            }
            for entry in self.entries(&repo, tree)?.iter() {
                if entry.kind != EntryKind::Tree {
                    continue;
                }
                let path = join(&prefix, &entry.name);
                if matcher.is_match(&path) {
                    dirs.push(path.clone());
                }
                stack.push((entry.id, path, depth + 1));
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// The commit id behind `commit`: a full id is used as is, anything else is resolved.
    pub(crate) fn commit_id(
        &self,
        repo: &gix::Repository,
        commit: &str,
    ) -> Result<ObjectId, SourceError> {
        let hex = if commit.len() == repo.object_hash().len_in_hex() && is_hex(commit) {
            commit.to_string()
        } else {
            self.resolve(Some(commit))?
        };
        ObjectId::from_hex(hex.as_bytes()).map_err(|_| SourceError::RevisionNotFound {
            url: self.url.clone(),
            revision: commit.to_string(),
            reason: "not a valid commit id".to_string(),
        })
    }

    /// The root tree of `commit`.
    pub(crate) fn commit_tree(
        &self,
        repo: &gix::Repository,
        commit: &str,
    ) -> Result<ObjectId, SourceError> {
        if let Some(root) = self
            .trees
            .roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(commit)
        {
            return Ok(*root);
        }
        let id = self.commit_id(repo, commit)?;
        let commit_obj = repo.find_commit(id).map_err(|e| {
            if e.is_not_found() {
                SourceError::RevisionNotFound {
                    url: self.url.clone(),
                    revision: commit.to_string(),
                    reason: "no commit with that id".to_string(),
                }
            } else {
                self.read_error(format!("commit {id}"), &e)
            }
        })?;
        let root = commit_obj
            .tree_id()
            .map(|t| t.detach())
            .map_err(|e| self.read_error(format!("commit {id}"), &e))?;
        // Only full ids are remembered: a branch name moves when the mirror is updated.
        if id == commit {
            let mut roots = self.trees.roots.lock().unwrap_or_else(|p| p.into_inner());
            if roots.len() >= MAX_CACHED_TREES {
                roots.clear();
            }
            roots.insert(commit.to_string(), root);
        }
        Ok(root)
    }

    /// The entry at `path` (already normalized), the root tree for `""`.
    fn entry_at(
        &self,
        repo: &gix::Repository,
        commit: &str,
        path: &str,
    ) -> Result<Option<TreeEntry>, SourceError> {
        let root = self.commit_tree(repo, commit)?;
        let mut current = TreeEntry {
            name: BString::default(),
            kind: EntryKind::Tree,
            id: root,
        };
        if path.is_empty() {
            return Ok(Some(current));
        }
        for component in path.split('/') {
            if current.kind != EntryKind::Tree {
                return Ok(None);
            }
            let entries = self.entries(repo, current.id)?;
            match entries
                .iter()
                .find(|e| e.name.as_bstr() == component.as_bytes().as_bstr())
            {
                Some(entry) => current = entry.clone(),
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn entries(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
    ) -> Result<std::sync::Arc<[TreeEntry]>, SourceError> {
        if let Some(entries) = self
            .trees
            .trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tree)
        {
            return Ok(entries.clone());
        }
        let entries: std::sync::Arc<[TreeEntry]> = tree_entries(repo, tree)
            .map_err(|e| self.read_error(format!("tree {tree}"), &e))?
            .into();
        let mut trees = self.trees.trees.lock().unwrap_or_else(|p| p.into_inner());
        if trees.len() >= MAX_CACHED_TREES {
            trees.clear();
        }
        trees.insert(tree, entries.clone());
        Ok(entries)
    }

    fn collect_files(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        prefix: &str,
        out: &mut Vec<RepoFile>,
    ) -> Result<(), SourceError> {
        for entry in self.entries(repo, tree)?.iter() {
            let path = join(prefix, &entry.name);
            match entry.kind {
                EntryKind::Tree => self.collect_files(repo, entry.id, &path, out)?,
                EntryKind::Commit => {}
                kind => out.push(self.read_blob(repo, entry.id, path, kind)?),
            }
        }
        Ok(())
    }

    fn read_blob(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        path: String,
        kind: EntryKind,
    ) -> Result<RepoFile, SourceError> {
        let blob = repo
            .find_blob(id)
            .map_err(|e| self.read_error(format!("file {path}"), &e))?;
        Ok(RepoFile {
            path,
            data: blob.detach().data,
            is_symlink: kind == EntryKind::Link,
        })
    }

    pub(crate) fn read_error(
        &self,
        what: String,
        err: &(dyn std::error::Error + 'static),
    ) -> SourceError {
        SourceError::Read {
            url: self.url.clone(),
            what,
            message: describe(err),
        }
    }
}

/// One entry of a tree, owned so it can outlive the object buffer it was decoded from.
#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    pub name: BString,
    pub kind: EntryKind,
    pub id: ObjectId,
}

/// The entries of the tree `id`, in Git's tree order.
pub(crate) fn tree_entries(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<Vec<TreeEntry>, gix::Error> {
    let tree = repo.find_tree(id)?;
    gix::objs::TreeRefIter::from_bytes(&tree.data, repo.object_hash())
        .map(|entry| {
            let entry = entry.map_err(gix::Error::from_error)?;
            Ok(TreeEntry {
                name: entry.filename.to_owned(),
                kind: entry.mode.kind(),
                id: entry.oid.to_owned(),
            })
        })
        .collect()
}

/// Joins a directory prefix and an entry name into a repository-relative path.
pub(crate) fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn is_file(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::Blob | EntryKind::BlobExecutable | EntryKind::Link
    )
}

/// `""`, `"."`, `"/"`, `"./a/"` and `"a//b"` to `""`, `""`, `""`, `"a"` and `"a/b"`.
pub(crate) fn normalize_path(path: &str) -> String {
    path.trim()
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where a source lives, decided once from its URL.
enum Location {
    Local(PathBuf),
    Network(gix::Url),
}

impl Location {
    fn parse(url: &str) -> Result<Location, SourceError> {
        let invalid = |reason: &str| SourceError::InvalidUrl {
            url: redact_url(url),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("file://") {
            let rest = rest.strip_prefix("localhost").unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(invalid(
                    "a file:// url needs an absolute path (file:///path/to/repo)",
                ));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            let parsed =
                gix::url::parse(url.as_bytes().as_bstr()).map_err(|e| invalid(&describe(&e)))?;
            return Ok(Location::Network(parsed));
        }
        if Path::new(url).is_absolute() {
            return Ok(Location::Local(PathBuf::from(url)));
        }
        Err(invalid(
            "use an https:// url, a file:// url or an absolute path to a repository",
        ))
    }
}

/// `cache_root/<name>-<first 12 hex of sha256(url)>.git`: the hash keeps two sources with the
/// same name but different URLs (after a config change) from sharing a mirror.
fn mirror_path(cache_root: &Path, name: &str, url: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(url.as_bytes()));
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        safe.insert(0, '_');
    }
    cache_root.join(format!("{safe}-{}.git", &digest[..12]))
}

/// Opens a repository with no system, global or environment configuration: plumbline's view
/// of a repository must not depend on the machine it runs on.
pub(crate) fn open_repo(path: &Path) -> Result<gix::ThreadSafeRepository, String> {
    gix::ThreadSafeRepository::open_opts(path, gix::open::Options::isolated())
        .map_err(|e| describe(&e))
}

/// Creates a bare repository at `path` without reading any machine configuration.
pub(crate) fn init_repo(path: &Path, bare: bool) -> Result<gix::ThreadSafeRepository, String> {
    let kind = if bare {
        gix::create::Kind::Bare
    } else {
        gix::create::Kind::WithWorktree
    };
    gix::ThreadSafeRepository::init_opts(
        path,
        kind,
        gix::create::Options::default(),
        gix::open::Options::isolated(),
    )
    .map_err(|e| describe(&e))
}

/// Builds a new mirror in a temporary sibling directory and renames it into place.
fn clone_into_place(cache_root: &Path, path: &Path, location: &Location) -> Result<(), String> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp_prefix = format!(".{file_name}.tmp-");
    remove_stale_temps(cache_root, &temp_prefix);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let temp = cache_root.join(format!("{temp_prefix}{}-{nanos}", std::process::id()));

    let built =
        init_repo(&temp, true).and_then(|repo| update(&mut repo.to_thread_local(), location));
    if let Err(message) = built {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(message);
    }
    match std::fs::rename(&temp, path) {
        Ok(()) => Ok(()),
        // Another process finished the same clone first; its mirror is as good as ours.
        Err(_) if path.join("HEAD").exists() => {
            let _ = std::fs::remove_dir_all(&temp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(format!(
                "cannot move the new mirror to {}: {e}",
                path.display()
            ))
        }
    }
}

fn remove_stale_temps(cache_root: &Path, temp_prefix: &str) {
    let Ok(entries) = std::fs::read_dir(cache_root) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(temp_prefix) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Brings the mirror `dst` up to date with the source.
fn update(dst: &mut gix::Repository, location: &Location) -> Result<(), String> {
    match location {
        Location::Local(path) => update_from_local(dst, path),
        Location::Network(url) => update_from_network(dst, url),
    }
}

/// What the mirror's HEAD should be.
enum HeadTarget {
    Branch(FullName),
    Detached(ObjectId),
}

fn update_from_local(dst: &gix::Repository, src_path: &Path) -> Result<(), String> {
    if !src_path.exists() {
        return Err(format!("no repository at {}", src_path.display()));
    }
    let mut src = open_repo(src_path)
        .map_err(|e| format!("cannot open {}: {e}", src_path.display()))?
        .to_thread_local();
    src.object_cache_size_if_unset(OBJECT_CACHE_BYTES);

    let desired = branches_and_tags(&src)?;
    let head = src.head().map_err(|e| describe(&e))?;
    let head = match head.kind {
        gix::head::Kind::Symbolic(reference) => Some(HeadTarget::Branch(reference.name)),
        gix::head::Kind::Unborn(name) => Some(HeadTarget::Branch(name)),
        gix::head::Kind::Detached { target, .. } => Some(HeadTarget::Detached(target)),
    };

    let mut copier = Copier {
        src: &src,
        dst,
        done: HashSet::new(),
    };
    for id in desired.values() {
        copier.copy(*id)?;
    }
    if let Some(HeadTarget::Detached(id)) = &head {
        copier.copy(*id)?;
    }
    apply_refs(dst, &desired, head)
}

/// The branches and tags of `repo` with the ids they point to (tags unpeeled).
fn branches_and_tags(repo: &gix::Repository) -> Result<BTreeMap<FullName, ObjectId>, String> {
    let platform = repo.references().map_err(|e| describe(&e))?;
    let mut refs = BTreeMap::new();
    for iter in [platform.local_branches(), platform.tags()] {
        for reference in iter.map_err(|e| describe(&e))? {
            let mut reference = reference.map_err(|e| describe(&e))?;
            let id = match reference.try_id() {
                Some(id) => id.detach(),
                None => reference.peel_to_id().map_err(|e| describe(&e))?.detach(),
            };
            refs.insert(reference.name().to_owned(), id);
        }
    }
    Ok(refs)
}

/// Sets the mirror's branches and tags to exactly `desired` (pruning the others) and its HEAD.
fn apply_refs(
    dst: &gix::Repository,
    desired: &BTreeMap<FullName, ObjectId>,
    head: Option<HeadTarget>,
) -> Result<(), String> {
    let existing = branches_and_tags(dst)?;
    let message: BString = "plumbline: mirror".into();
    let deletes: Vec<RefEdit> = existing
        .keys()
        .filter(|name| !desired.contains_key(*name))
        .map(|name| RefEdit {
            change: Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
            name: name.clone(),
            deref: false,
        })
        .collect();
    let mut updates: Vec<RefEdit> = desired
        .iter()
        .filter(|(name, id)| existing.get(*name) != Some(*id))
        .map(|(name, id)| update_edit(name.clone(), Target::Object(*id), &message))
        .collect();
    if let Some(head) = head {
        let target = match head {
            HeadTarget::Branch(name) => Target::Symbolic(name),
            HeadTarget::Detached(id) => Target::Object(id),
        };
        let current = dst.find_reference("HEAD").ok().map(|r| r.detach().target);
        if current.as_ref() != Some(&target) {
            let name = FullName::try_from("HEAD").map_err(|e| describe(&e))?;
            updates.push(update_edit(name, target, &message));
        }
    }
    // Deletions go first and on their own, so that a branch `a` replaced by `a/b` upstream
    // does not conflict with itself inside one transaction.
    for edits in [deletes, updates] {
        if !edits.is_empty() {
            edit_refs(dst, edits)?;
        }
    }
    Ok(())
}

pub(crate) fn update_edit(name: FullName, new: Target, message: &BString) -> RefEdit {
    RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: message.clone(),
            },
            expected: PreviousValue::Any,
            new,
        },
        name,
        deref: false,
    }
}

/// Applies ref edits with a fixed identity for reflogs, so that no Git identity needs to be
/// configured on the machine.
pub(crate) fn edit_refs(repo: &gix::Repository, edits: Vec<RefEdit>) -> Result<(), String> {
    let signature = gix::actor::Signature {
        name: "plumbline".into(),
        email: "plumbline@localhost".into(),
        time: gix::date::Time::now_utc(),
    };
    let mut time = gix::date::parse::TimeBuf::default();
    repo.edit_references_as(edits, Some(signature.to_ref(&mut time)))
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// Copies every object reachable from given tips from one repository to another, skipping what
/// the destination already has. Objects are written after everything they refer to, so an
/// object present in the destination always comes with its whole history and tree; that is
/// what makes skipping on presence safe even after an interrupted copy.
struct Copier<'a> {
    src: &'a gix::Repository,
    dst: &'a gix::Repository,
    done: HashSet<ObjectId>,
}

impl Copier<'_> {
    fn has(&mut self, id: ObjectId) -> bool {
        if self.done.contains(&id) {
            return true;
        }
        let present = self.dst.has_object(id);
        if present {
            self.done.insert(id);
        }
        present
    }

    fn copy(&mut self, id: ObjectId) -> Result<(), String> {
        if self.has(id) {
            return Ok(());
        }
        let object = self.src.find_object(id).map_err(|e| describe(&e))?;
        match object.kind {
            gix::objs::Kind::Commit => {
                drop(object);
                self.copy_commits(id)
            }
            gix::objs::Kind::Tree => {
                drop(object);
                self.copy_tree(id)
            }
            gix::objs::Kind::Blob => self.write(id, object.kind, &object.data),
            gix::objs::Kind::Tag => {
                let data = object.data.clone();
                let target = gix::objs::TagRef::from_bytes(&data, self.src.object_hash())
                    .map_err(|e| describe(&e))?
                    .target();
                drop(object);
                self.copy(target)?;
                self.write(id, gix::objs::Kind::Tag, &data)
            }
        }
    }

    /// Copies the commits reachable from `tip` that the destination lacks, parents first.
    fn copy_commits(&mut self, tip: ObjectId) -> Result<(), String> {
        let hash = self.src.object_hash();
        let mut stack = vec![(tip, false)];
        while let Some((id, parents_done)) = stack.pop() {
            if self.has(id) {
                continue;
            }
            let object = self.src.find_object(id).map_err(|e| describe(&e))?;
            let (tree, parents) = {
                let commit = gix::objs::CommitRef::from_bytes(&object.data, hash)
                    .map_err(|e| describe(&e))?;
                (commit.tree(), commit.parents().collect::<Vec<ObjectId>>())
            };
            if parents_done {
                let data = object.data.clone();
                drop(object);
                self.copy_tree(tree)?;
                self.write(id, gix::objs::Kind::Commit, &data)?;
            } else {
                stack.push((id, true));
                for parent in parents {
                    if !self.has(parent) {
                        stack.push((parent, false));
                    }
                }
            }
        }
        Ok(())
    }

    fn copy_tree(&mut self, id: ObjectId) -> Result<(), String> {
        if self.has(id) {
            return Ok(());
        }
        for entry in tree_entries(self.src, id).map_err(|e| describe(&e))? {
            match entry.kind {
                EntryKind::Tree => self.copy_tree(entry.id)?,
                // A submodule's commit lives in another repository.
                EntryKind::Commit => {}
                _ => {
                    if !self.has(entry.id) {
                        let blob = self.src.find_object(entry.id).map_err(|e| describe(&e))?;
                        self.write(entry.id, blob.kind, &blob.data)?;
                    }
                }
            }
        }
        let tree = self.src.find_object(id).map_err(|e| describe(&e))?;
        self.write(id, gix::objs::Kind::Tree, &tree.data)
    }

    fn write(&mut self, id: ObjectId, kind: gix::objs::Kind, data: &[u8]) -> Result<(), String> {
        let written = self
            .dst
            .objects
            .write_buf(kind, data)
            .map_err(|e| describe(&e))?;
        if written != id {
            return Err(format!(
                "object {id} of the source is corrupt: its content hashes to {written}"
            ));
        }
        self.done.insert(id);
        Ok(())
    }
}

fn update_from_network(dst: &mut gix::Repository, url: &gix::Url) -> Result<(), String> {
    use gix::remote::Direction;

    // Fetching writes reflogs under some configurations; never depend on a machine identity.
    dst.committer_or_set_generic_fallback()
        .map_err(|e| describe(&e))?;
    let remote = dst
        .remote_at(url.clone())
        .and_then(|r| r.with_refspecs(MIRROR_REFSPECS, Direction::Fetch))
        .map(|r| r.with_fetch_tags(gix::remote::fetch::Tags::None))
        .map_err(|e| describe(&e))?;
    let mut connection = remote.connect(Direction::Fetch).map_err(|e| describe(&e))?;
    connection.set_credentials(credentials_from_url(url));
    // `HEAD` without a destination: its target is advertised (to set our HEAD) but no ref is
    // written for it.
    let head_spec = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
        .map_err(|e| describe(&e))?
        .to_owned();
    let options = gix::remote::ref_map::Options {
        extra_refspecs: vec![head_spec],
        ..Default::default()
    };
    let interrupt = AtomicBool::new(false);
    let outcome = connection
        .prepare_fetch(gix::progress::Discard, options)
        .map_err(|e| describe(&e))?
        .receive(gix::progress::Discard, &interrupt)
        .map_err(|e| describe(&e))?;

    // gix does not prune: drop branches and tags the remote no longer has.
    let mut advertised: HashSet<BString> = HashSet::new();
    let mut head = None;
    let mut branch_ids: Vec<(BString, ObjectId)> = Vec::new();
    let mut head_id = None;
    for remote_ref in &outcome.ref_map.remote_refs {
        let (name, target, _peeled) = remote_ref.unpack();
        match remote_ref {
            gix::protocol::handshake::Ref::Symbolic {
                full_ref_name,
                target,
                ..
            }
            | gix::protocol::handshake::Ref::Unborn {
                full_ref_name,
                target,
            } if full_ref_name == "HEAD" => {
                head = FullName::try_from(target.clone()).ok();
            }
            _ if name == "HEAD" => head_id = target.map(ToOwned::to_owned),
            _ => {
                if name.starts_with(b"refs/heads/") {
                    if let Some(id) = target {
                        branch_ids.push((name.to_owned(), id.to_owned()));
                    }
                }
                advertised.insert(name.to_owned());
            }
        }
    }
    // Servers that do not advertise symrefs: HEAD is the branch at the same commit, as git
    // guesses it, preferring `main` and `master`.
    if head.is_none() {
        if let Some(id) = head_id {
            let mut candidates: Vec<&BString> = branch_ids
                .iter()
                .filter(|(_, b)| *b == id)
                .map(|(n, _)| n)
                .collect();
            candidates.sort_by_key(|n| {
                (
                    *n != "refs/heads/main" && *n != "refs/heads/master",
                    (*n).clone(),
                )
            });
            head = candidates
                .first()
                .and_then(|n| FullName::try_from((*n).clone()).ok());
        }
    }

    let existing = branches_and_tags(dst)?;
    let deletes: Vec<RefEdit> = existing
        .keys()
        .filter(|name| !advertised.contains(name.as_bstr()))
        .map(|name| RefEdit {
            change: Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
            name: name.clone(),
            deref: false,
        })
        .collect();
    if !deletes.is_empty() {
        edit_refs(dst, deletes)?;
    }
    if let Some(head) = head {
        if dst.head_name().ok().flatten().as_ref() != Some(&head) {
            let name = FullName::try_from("HEAD").map_err(|e| describe(&e))?;
            edit_refs(
                dst,
                vec![update_edit(
                    name,
                    Target::Symbolic(head),
                    &"plumbline: mirror".into(),
                )],
            )?;
        }
    }
    Ok(())
}

/// Credentials come only from the URL (`https://user:token@host/...`): plumbline runs
/// unattended, so it never prompts and never runs credential helpers (which would be `git`
/// programs).
fn credentials_from_url(
    url: &gix::Url,
) -> impl FnMut(
    gix::credentials::helper::Action,
) -> gix::Result<Option<gix::credentials::protocol::Outcome>> {
    let account = match (url.user(), url.password()) {
        (Some(user), Some(password)) => Some(gix::sec::identity::Account {
            username: user.to_string(),
            password: password.to_string(),
            oauth_refresh_token: None,
        }),
        _ => None,
    };
    move |action| match action {
        gix::credentials::helper::Action::Get(context) => match &account {
            Some(identity) => Ok(Some(gix::credentials::protocol::Outcome {
                identity: identity.clone(),
                next: context.into(),
            })),
            None => Err(gix::Error::from_error(std::io::Error::other(
                "the server requires authentication: put the credentials in the source url \
                 (https://user:token@host/path)",
            ))),
        },
        gix::credentials::helper::Action::Store(_) | gix::credentials::helper::Action::Erase(_) => {
            Ok(None)
        }
    }
}

/// Removes the user information (which may hold a token) from a URL meant for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// Removes the credentials of `url` from an error message that may quote them.
fn scrub(message: &str, url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return message.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if at > 0 => message.replace(&rest[..at], "***"),
        _ => message.to_string(),
    }
}

/// An error and its causes on one line, without repeating a cause its parent already quotes.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::writer::fixture::{self, spec, T0};
    use crate::source::writer::RepoWriter;

    struct Setup {
        _dir: tempfile::TempDir,
        origin: PathBuf,
        cache: PathBuf,
        writer: RepoWriter,
        history: fixture::History,
    }

    fn setup(bare: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join(if bare { "origin.git" } else { "origin" });
        let cache = dir.path().join("cache");
        let (writer, history) = fixture::build(&origin, bare);
        Setup {
            _dir: dir,
            origin,
            cache,
            writer,
            history,
        }
    }

    fn url(s: &Setup) -> String {
        s.origin.to_string_lossy().into_owned()
    }

    fn paths(files: &[RepoFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn sync_from_a_bare_path_mirrors_branches_tags_and_default_branch() {
        let s = setup(true);
        let h = &s.history;
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        assert!(mirror.path().starts_with(&s.cache));
        let name = mirror
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let digest = hex::encode(Sha256::digest(url(&s).as_bytes()));
        assert_eq!(name, format!("platform-{}.git", &digest[..12]));
        // Nothing but the mirror is left in the cache: the temp clone was renamed away.
        assert_eq!(std::fs::read_dir(&s.cache).unwrap().count(), 1);

        assert_eq!(mirror.resolve(None).unwrap(), h.docs_move);
        assert_eq!(mirror.resolve(Some("HEAD")).unwrap(), h.docs_move);
        assert_eq!(mirror.resolve(Some("main")).unwrap(), h.docs_move);
        assert_eq!(mirror.resolve(Some("feature")).unwrap(), h.feature);
        assert_eq!(
            mirror.resolve(Some("refs/heads/feature")).unwrap(),
            h.feature
        );
        assert_eq!(mirror.resolve(Some("v1.0")).unwrap(), h.api_staging);
        assert_eq!(
            mirror.resolve(Some("refs/tags/v1.0")).unwrap(),
            h.api_staging
        );
        assert_eq!(mirror.resolve(Some("lw")).unwrap(), h.web_replicas);
        assert_eq!(mirror.resolve(Some(&h.initial)).unwrap(), h.initial);
        assert_eq!(mirror.resolve(Some(&h.initial[..10])).unwrap(), h.initial);
        // Like git, hex is accepted in either case.
        assert_eq!(
            mirror
                .resolve(Some(&h.initial.to_uppercase()[..8]))
                .unwrap(),
            h.initial
        );
    }

    #[test]
    fn unknown_revisions_say_what_and_where() {
        let s = setup(true);
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        let err = mirror.resolve(Some("nope")).unwrap_err();
        assert!(matches!(err, SourceError::RevisionNotFound { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "revision \"nope\" not found in {}: no branch, tag or commit of that name",
                url(&s)
            )
        );
        let err = mirror
            .resolve(Some("0000000000000000000000000000000000000000"))
            .unwrap_err();
        assert!(err.to_string().contains("no commit with that id"), "{err}");
        assert!(matches!(
            mirror.resolve(Some("abc")),
            Err(SourceError::RevisionNotFound { .. })
        ));
        // A tree id is not a commit.
        let tree = mirror.tree_id(&s.history.initial, "apps").unwrap().unwrap();
        let err = mirror.resolve(Some(&tree)).unwrap_err();
        assert!(err.to_string().contains("not a commit"), "{err}");
    }

    #[test]
    fn sync_from_a_worktree_path_and_a_file_url() {
        let s = setup(false);
        let from_path = Mirror::sync(&s.cache, "a", &url(&s)).unwrap();
        let file_url = format!("file://{}", url(&s));
        let from_url = Mirror::sync(&s.cache, "b", &file_url).unwrap();
        assert_ne!(from_path.path(), from_url.path());
        for mirror in [&from_path, &from_url] {
            assert_eq!(mirror.resolve(None).unwrap(), s.history.docs_move);
            assert_eq!(mirror.resolve(Some("v1.0")).unwrap(), s.history.api_staging);
            assert_eq!(mirror.resolve(Some("feature")).unwrap(), s.history.feature);
        }
    }

    #[test]
    fn a_second_sync_fetches_new_commits_moves_and_prunes_refs() {
        let mut s = setup(true);
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        assert_eq!(mirror.resolve(None).unwrap(), s.history.docs_move);

        let w = &mut s.writer;
        let newer = w
            .commit(
                "main",
                &spec(
                    "Eve",
                    T0 + 30_000,
                    "web: 5 replicas",
                    &[(
                        "apps/web/overlays/prod/kustomization.yaml",
                        Some("replicas: 5\n"),
                    )],
                ),
            )
            .unwrap();
        w.tag("v2.0", &newer, Some("release 2.0")).unwrap();
        // A force-push: `feature` now points to an older commit; `lw` is deleted.
        w.branch_from("feature", &s.history.initial).unwrap();
        w.repo
            .find_reference("refs/tags/lw")
            .unwrap()
            .delete()
            .unwrap();
        w.commit(
            "release",
            &spec("Eve", T0 + 31_000, "release branch", &[("x", Some("x"))]),
        )
        .unwrap();
        w.set_head("release").unwrap();

        let again = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        assert_eq!(again.path(), mirror.path());
        assert_eq!(again.resolve(Some("main")).unwrap(), newer);
        assert_eq!(again.resolve(Some("v2.0")).unwrap(), newer);
        assert_eq!(again.resolve(Some("feature")).unwrap(), s.history.initial);
        assert!(
            again.resolve(Some("lw")).is_err(),
            "deleted tags are pruned"
        );
        // The remote's default branch changed, and so does the mirror's.
        assert_eq!(
            again.resolve(None).unwrap(),
            again.resolve(Some("release")).unwrap()
        );
        // The already-open mirror sees the fetched state too.
        assert_eq!(mirror.resolve(Some("main")).unwrap(), newer);
        assert_eq!(
            again
                .read_file(&newer, "apps/web/overlays/prod/kustomization.yaml")
                .unwrap(),
            Some(b"replicas: 5\n".to_vec())
        );
    }

    #[test]
    fn open_existing_needs_a_prior_sync() {
        let s = setup(true);
        let err = Mirror::open_existing(&s.cache, "platform", &url(&s)).unwrap_err();
        assert!(matches!(err, SourceError::NotSynced { .. }), "{err}");
        Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        let mirror = Mirror::open_existing(&s.cache, "platform", &url(&s)).unwrap();
        assert_eq!(mirror.resolve(Some("feature")).unwrap(), s.history.feature);
    }

    #[test]
    fn a_damaged_mirror_or_a_leftover_temp_clone_does_not_poison_sync() {
        let s = setup(true);
        let path = mirror_path(&s.cache, "platform", &url(&s));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("garbage"), "not a repository").unwrap();
        let leftover = s.cache.join(format!(
            ".{}.tmp-1-2",
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::create_dir_all(leftover.join("objects")).unwrap();
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        assert_eq!(mirror.resolve(None).unwrap(), s.history.docs_move);
        assert!(!path.join("garbage").exists());
    }

    #[test]
    fn a_failed_clone_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let missing = dir.path().join("missing").to_string_lossy().into_owned();
        let err = Mirror::sync(&cache, "gone", &missing).unwrap_err();
        assert!(matches!(err, SourceError::Clone { .. }), "{err}");
        assert!(err.to_string().contains("no repository at"), "{err}");
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }

    #[test]
    fn unsupported_urls_are_rejected_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "relative/path",
            "git@example.com:org/repo.git",
            "ssh://example.com/repo",
            "file://relative",
        ] {
            let err = Mirror::sync(dir.path(), "x", url).unwrap_err();
            assert!(
                matches!(err, SourceError::InvalidUrl { .. }),
                "{url}: {err}"
            );
        }
        // https is accepted by the parser (fetching it needs a network, not available in tests).
        assert!(matches!(
            Location::parse("https://git.example.com/platform/gitops.git"),
            Ok(Location::Network(_))
        ));
    }

    #[test]
    fn credentials_never_appear_in_messages() {
        assert_eq!(
            redact_url("https://user:s3cret@git.example.com/org/repo.git"),
            "https://***@git.example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("https://git.example.com/a@b"),
            "https://git.example.com/a@b"
        );
        assert_eq!(redact_url("/srv/git/repo"), "/srv/git/repo");
        assert_eq!(
            scrub(
                "failed for https://user:s3cret@git.example.com/x",
                "https://user:s3cret@git.example.com/x"
            ),
            "failed for https://***@git.example.com/x"
        );
    }

    #[test]
    fn an_empty_origin_mirrors_but_has_no_default_commit() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("empty.git");
        RepoWriter::init(&origin, true).unwrap();
        let mirror = Mirror::sync(
            &dir.path().join("cache"),
            "empty",
            &origin.to_string_lossy(),
        )
        .unwrap();
        let err = mirror.resolve(None).unwrap_err();
        assert!(err.to_string().contains("has no commits"), "{err}");
    }

    #[test]
    fn read_dir_reads_trees_recursively_without_checkout() {
        let s = setup(true);
        let h = &s.history;
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();

        let root = mirror.read_dir(&h.docs_move, "").unwrap();
        assert_eq!(
            paths(&root),
            vec![
                "apps/api/base/config.yaml",
                "apps/api/overlays/prod/kustomization.yaml",
                "apps/api/overlays/staging/kustomization.yaml",
                "apps/web/base/deployment.yaml",
                "apps/web/base/kustomization.yaml",
                "apps/web/overlays/prod/kustomization.yaml",
                "docs/README.md",
            ]
        );
        assert_eq!(mirror.read_dir(&h.docs_move, ".").unwrap(), root);
        assert_eq!(mirror.read_dir(&h.docs_move, "/").unwrap(), root);

        let web = mirror.read_dir(&h.docs_move, "apps/web/").unwrap();
        assert_eq!(
            paths(&web),
            vec![
                "apps/web/base/deployment.yaml",
                "apps/web/base/kustomization.yaml",
                "apps/web/overlays/prod/kustomization.yaml",
            ]
        );
        assert_eq!(web[2].data, b"replicas: 3\n");
        assert!(!web[2].is_symlink);

        let one = mirror.read_dir(&h.initial, "./README.md").unwrap();
        assert_eq!(paths(&one), vec!["README.md"]);
        assert_eq!(one[0].data, b"# platform\n");

        let err = mirror.read_dir(&h.docs_move, "README.md").unwrap_err();
        match &err {
            SourceError::PathNotFound { path, commit } => {
                assert_eq!(path, "README.md");
                assert_eq!(commit, &h.docs_move);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            mirror.read_dir(&h.docs_move, "apps/web/base/deployment.yaml/x"),
            Err(SourceError::PathNotFound { .. })
        ));
        // Other branches are readable from the same mirror.
        let feature = mirror
            .read_file(&h.feature, "apps/web/base/deployment.yaml")
            .unwrap();
        assert_eq!(feature, Some(b"kind: Deployment\n# sidecar\n".to_vec()));
        // A revision name works where a commit id is expected.
        assert_eq!(
            mirror.read_dir("v1.0", "apps/api/overlays").unwrap().len(),
            2
        );
    }

    #[test]
    fn symlinks_are_returned_and_submodules_skipped() {
        let mut s = setup(true);
        let repo = &s.writer.repo;
        let main = repo
            .find_reference("refs/heads/main")
            .unwrap()
            .id()
            .detach();
        let tree = repo.find_commit(main).unwrap().tree_id().unwrap().detach();
        let link = repo.write_blob("../base/deployment.yaml").unwrap().detach();
        let mut editor = repo.edit_tree(tree).unwrap();
        editor
            .upsert("apps/web/overlays/prod/link.yaml", EntryKind::Link, link)
            .unwrap();
        editor
            .upsert("apps/web/overlays/prod/vendored", EntryKind::Commit, main)
            .unwrap();
        let tree = editor.write().unwrap().detach();
        let sig = gix::actor::Signature {
            name: "Ana".into(),
            email: "ana@example.com".into(),
            time: gix::date::Time::new(T0 + 40_000, 0),
        };
        let commit = gix::objs::Commit {
            tree,
            parents: [main].into_iter().collect(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: "links\n".into(),
            extra_headers: Vec::new(),
        };
        let id = repo.write_object(&commit).unwrap().to_string();
        s.writer.branch_from("links", &id).unwrap();

        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        let files = mirror.read_dir(&id, "apps/web/overlays/prod").unwrap();
        assert_eq!(
            paths(&files),
            vec![
                "apps/web/overlays/prod/kustomization.yaml",
                "apps/web/overlays/prod/link.yaml",
            ]
        );
        assert!(files[1].is_symlink);
        assert_eq!(files[1].data, b"../base/deployment.yaml");
        assert_eq!(
            mirror
                .read_file(&id, "apps/web/overlays/prod/vendored")
                .unwrap(),
            None
        );
    }

    #[test]
    fn read_file_and_tree_id() {
        let s = setup(true);
        let h = &s.history;
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        assert_eq!(
            mirror
                .read_file(&h.initial, "apps/api/base/config.yaml")
                .unwrap(),
            Some(b"level: 0\n".to_vec())
        );
        assert_eq!(mirror.read_file(&h.initial, "apps/api/base").unwrap(), None);
        assert_eq!(mirror.read_file(&h.initial, "nope.yaml").unwrap(), None);

        // Unchanged directories keep their id across commits; changed ones do not.
        let web = |c: &str| mirror.tree_id(c, "apps/web").unwrap().unwrap();
        let api = |c: &str| mirror.tree_id(c, "apps/api").unwrap().unwrap();
        assert_eq!(web(&h.api_staging), web(&h.docs_move));
        assert_ne!(api(&h.api_staging), api(&h.docs_move));
        assert_eq!(web(&h.api_staging).len(), 40);
        assert!(mirror.tree_id(&h.initial, "").unwrap().is_some());
        assert!(mirror.tree_id(&h.initial, "README.md").unwrap().is_some());
        assert_eq!(mirror.tree_id(&h.initial, "apps/nope").unwrap(), None);
        assert!(matches!(
            mirror.tree_id("nope", ""),
            Err(SourceError::RevisionNotFound { .. })
        ));
    }

    #[test]
    fn list_dirs_matches_globs_per_path_component() {
        let s = setup(true);
        let h = &s.history;
        let mirror = Mirror::sync(&s.cache, "platform", &url(&s)).unwrap();
        let list = |p: &str| mirror.list_dirs(&h.docs_move, p).unwrap();
        assert_eq!(
            list("apps/*/overlays/prod"),
            vec!["apps/api/overlays/prod", "apps/web/overlays/prod"]
        );
        assert_eq!(
            list("apps/*/overlays/*"),
            vec![
                "apps/api/overlays/prod",
                "apps/api/overlays/staging",
                "apps/web/overlays/prod",
            ]
        );
        assert_eq!(list("apps/*"), vec!["apps/api", "apps/web"]);
        assert_eq!(list("/apps/*/"), vec!["apps/api", "apps/web"]);
        assert!(list("*/prod").is_empty(), "* does not cross /");
        assert_eq!(
            list("**/prod"),
            vec!["apps/api/overlays/prod", "apps/web/overlays/prod"]
        );
        assert_eq!(list("apps/web/base"), vec!["apps/web/base"]);
        assert!(
            list("apps/*/base/deployment.yaml").is_empty(),
            "files are not directories"
        );
        assert!(matches!(
            mirror.list_dirs(&h.docs_move, "apps/[a"),
            Err(SourceError::InvalidPattern { .. })
        ));
        assert!(matches!(
            mirror.list_dirs(&h.docs_move, ""),
            Err(SourceError::InvalidPattern { .. })
        ));
    }

    #[test]
    fn ambiguous_short_ids_list_the_candidates() {
        let s = setup(true);
        let repo = &s.writer.repo;
        let tree = repo
            .find_commit(ObjectId::from_hex(s.history.initial.as_bytes()).unwrap())
            .unwrap()
            .tree_id()
            .unwrap()
            .detach();
        // Write parentless commits until two share a 4-digit prefix (deterministic content,
        // so always the same pair).
        let mut seen: std::collections::HashMap<String, u32> = Default::default();
        let probe = |i: u32| {
            let sig = gix::actor::Signature {
                name: "Bot".into(),
                email: "bot@example.com".into(),
                time: gix::date::Time::new(T0, 0),
            };
            gix::objs::Commit {
                tree,
                parents: Default::default(),
                author: sig.clone(),
                committer: sig,
                encoding: None,
                message: format!("probe {i}\n").into(),
                extra_headers: Vec::new(),
            }
        };
        // Hash in memory, write only the colliding pair.
        let (a, b) = (0..100_000u32)
            .find_map(|i| {
                use gix::objs::WriteTo as _;
                let mut buf = Vec::new();
                probe(i).write_to(&mut buf).unwrap();
                let id = gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Commit, &buf)
                    .unwrap()
                    .to_string();
                seen.insert(id[..4].to_string(), i).map(|other| (other, i))
            })
            .unwrap();
        let first = repo.write_object(probe(a)).unwrap().to_string();
        let second = repo.write_object(probe(b)).unwrap().to_string();
        assert_eq!(first[..4], second[..4]);
        let mirror = Mirror {
            path: s.origin.clone(),
            url: url(&s),
            repo: open_repo(&s.origin).unwrap(),
            trees: TreeCache::default(),
        };
        match mirror.resolve(Some(&first[..4])).unwrap_err() {
            SourceError::AmbiguousRevision { candidates, .. } => {
                let mut expected = vec![first.clone(), second.clone()];
                expected.sort();
                assert_eq!(candidates, expected);
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(mirror.resolve(Some(&first[..12])).unwrap(), first);
    }

    #[test]
    fn mirrors_can_be_shared_between_render_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mirror>();
    }

    #[test]
    fn mirror_names_are_safe_and_unique_per_url() {
        let root = Path::new("cache");
        let a = mirror_path(root, "team/platform", "https://a.example.com/x.git");
        let b = mirror_path(root, "team/platform", "https://b.example.com/x.git");
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(root));
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("team_platform-"));
        let dots = mirror_path(root, "..", "u");
        assert_eq!(dots.parent(), Some(root));
    }
}
