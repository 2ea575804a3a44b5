//! Writes commits, branches and tags straight into a repository's object database.
//!
//! `plumbline demo` and the tests use it to build repositories with a realistic history (several
//! authors, dates, branches, tags) on machines with neither `git` nor a Git identity. Only refs
//! and objects are written: a non-bare repository gets no index or worktree update.

use std::path::{Path, PathBuf};

use gix::bstr::BString;
use gix::objs::tree::EntryKind;
use gix::refs::{FullName, Target};
use gix::ObjectId;

use super::git::{
    describe, edit_refs, init_repo, normalize_path, open_repo, update_edit, SourceError,
};

/// One commit to write: identity and time (used for author and committer alike), message, and
/// the files to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSpec {
    pub author_name: String,
    pub author_email: String,
    /// Unix seconds, UTC.
    pub time: i64,
    pub message: String,
    /// Repository-relative path -> new content; `None` deletes the file.
    pub changes: Vec<(String, Option<Vec<u8>>)>,
}

/// A repository being written to.
pub struct RepoWriter {
    path: PathBuf,
    pub(crate) repo: gix::Repository,
}

impl RepoWriter {
    /// Creates a repository at `dir` (bare or with a `.git` directory).
    pub fn init(dir: &Path, bare: bool) -> Result<RepoWriter, SourceError> {
        std::fs::create_dir_all(dir).map_err(|source| SourceError::Io {
            action: "create the repository directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let repo = init_repo(dir, bare).map_err(|message| SourceError::Write {
            path: dir.to_path_buf(),
            what: "a new repository".to_string(),
            message,
        })?;
        Ok(RepoWriter {
            path: dir.to_path_buf(),
            repo: repo.to_thread_local(),
        })
    }

    /// Opens an existing repository to add to it.
    pub fn open(dir: &Path) -> Result<RepoWriter, SourceError> {
        let repo = open_repo(dir).map_err(|message| SourceError::Open {
            path: dir.to_path_buf(),
            message,
        })?;
        Ok(RepoWriter {
            path: dir.to_path_buf(),
            repo: repo.to_thread_local(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a commit on `branch` (created when missing, starting from an empty tree) that
    /// applies `spec.changes` to the branch's tree, and returns its 40-hex id. The first commit
    /// of a repository whose HEAD has no commits yet also points HEAD at `branch`.
    pub fn commit(&mut self, branch: &str, spec: &CommitSpec) -> Result<String, SourceError> {
        let what = format!("a commit on branch {branch}");
        let error = |message: String| self.error(&what, message);
        let ref_name = branch_ref(branch).map_err(&error)?;
        let parent = self.branch_tip(&ref_name).map_err(&error)?;
        let base_tree = match parent {
            Some(parent) => self
                .repo
                .find_commit(parent)
                .and_then(|c| c.tree_id())
                .map(|t| t.detach())
                .map_err(|e| error(describe(&e)))?,
            None => ObjectId::empty_tree(self.repo.object_hash()),
        };

        let mut editor = self
            .repo
            .edit_tree(base_tree)
            .map_err(|e| error(describe(&e)))?;
        for (path, content) in &spec.changes {
            let path = normalize_path(path);
            if path.is_empty() {
                return Err(error("a change names an empty path".to_string()));
            }
            let edited = match content {
                Some(data) => self
                    .repo
                    .write_blob(data)
                    .and_then(|blob| editor.upsert(path.as_str(), EntryKind::Blob, blob.detach()))
                    .map(|_| ()),
                None => editor.remove(path.as_str()).map(|_| ()),
            };
            edited.map_err(|e| error(format!("{path}: {}", describe(&e))))?;
        }
        let tree = editor.write().map_err(|e| error(describe(&e)))?.detach();

        let signature = gix::actor::Signature {
            name: spec.author_name.as_str().into(),
            email: spec.author_email.as_str().into(),
            time: gix::date::Time::new(spec.time, 0),
        };
        // Git messages end with a newline; readers trim it again.
        let mut message = spec.message.clone();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        let commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let id = self
            .repo
            .write_object(&commit)
            .map_err(|e| error(describe(&e)))?
            .detach();

        let head_unborn = self.repo.head().map(|h| h.is_unborn()).unwrap_or(false);
        let mut edits = vec![update_edit(
            ref_name.clone(),
            Target::Object(id),
            &log_message("commit"),
        )];
        if head_unborn {
            edits.push(update_edit(
                head_ref()?,
                Target::Symbolic(ref_name),
                &log_message("commit"),
            ));
        }
        edit_refs(&self.repo, edits).map_err(error)?;
        Ok(id.to_string())
    }

    /// Creates (or moves) `new_branch` to the commit `from_rev` names (branch, tag or id).
    pub fn branch_from(&mut self, new_branch: &str, from_rev: &str) -> Result<(), SourceError> {
        let what = format!("branch {new_branch}");
        let error = |message: String| self.error(&what, message);
        let ref_name = branch_ref(new_branch).map_err(&error)?;
        let id = self.commit_of(from_rev).map_err(&error)?;
        edit_refs(
            &self.repo,
            vec![update_edit(
                ref_name,
                Target::Object(id),
                &log_message("branch"),
            )],
        )
        .map_err(error)
    }

    /// Tags `target_sha`: annotated (a tag object, tagged by the commit's committer) when a
    /// message is given, lightweight otherwise.
    pub fn tag(
        &mut self,
        name: &str,
        target_sha: &str,
        annotated_message: Option<&str>,
    ) -> Result<(), SourceError> {
        let what = format!("tag {name}");
        let error = |message: String| self.error(&what, message);
        let ref_name = FullName::try_from(format!("refs/tags/{name}"))
            .map_err(|e| error(format!("invalid tag name: {}", describe(&e))))?;
        let target = self.commit_of(target_sha).map_err(&error)?;
        let id = match annotated_message {
            None => target,
            Some(message) => {
                let commit = self
                    .repo
                    .find_commit(target)
                    .map_err(|e| error(describe(&e)))?;
                let tagger = commit
                    .committer()
                    .map_err(|e| error(describe(&e)))?
                    .to_owned()
                    .map_err(|e| error(describe(&e)))?;
                let mut message = message.to_string();
                if !message.ends_with('\n') {
                    message.push('\n');
                }
                let tag = gix::objs::Tag {
                    target,
                    target_kind: gix::objs::Kind::Commit,
                    name: name.into(),
                    tagger: Some(tagger),
                    message: message.into(),
                    signature: None,
                };
                self.repo
                    .write_object(&tag)
                    .map_err(|e| error(describe(&e)))?
                    .detach()
            }
        };
        edit_refs(
            &self.repo,
            vec![update_edit(
                ref_name,
                Target::Object(id),
                &log_message("tag"),
            )],
        )
        .map_err(error)
    }

    /// Points HEAD at `branch`, which becomes the default branch clones and mirrors see.
    pub fn set_head(&mut self, branch: &str) -> Result<(), SourceError> {
        let what = "HEAD".to_string();
        let error = |message: String| self.error(&what, message);
        let ref_name = branch_ref(branch).map_err(&error)?;
        edit_refs(
            &self.repo,
            vec![update_edit(
                head_ref()?,
                Target::Symbolic(ref_name),
                &log_message("checkout"),
            )],
        )
        .map_err(error)
    }

    fn branch_tip(&self, ref_name: &FullName) -> Result<Option<ObjectId>, String> {
        match self.repo.try_find_reference(ref_name.as_ref()) {
            Ok(Some(mut reference)) => reference
                .peel_to_id()
                .map(|id| Some(id.detach()))
                .map_err(|e| describe(&e)),
            Ok(None) => Ok(None),
            Err(e) => Err(describe(&e)),
        }
    }

    /// The commit behind a branch, tag or (abbreviated) id.
    fn commit_of(&self, rev: &str) -> Result<ObjectId, String> {
        let id = self
            .repo
            .rev_parse_single(rev)
            .map_err(|e| format!("revision {rev:?}: {}", describe(&e)))?;
        let commit = id
            .object()
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| format!("revision {rev:?}: {}", describe(&e)))?;
        Ok(commit.id)
    }

    fn error(&self, what: &str, message: String) -> SourceError {
        SourceError::Write {
            path: self.path.clone(),
            what: what.to_string(),
            message,
        }
    }
}

fn branch_ref(branch: &str) -> Result<FullName, String> {
    FullName::try_from(format!("refs/heads/{branch}"))
        .map_err(|e| format!("invalid branch name {branch:?}: {}", describe(&e)))
}

fn head_ref() -> Result<FullName, SourceError> {
    FullName::try_from("HEAD").map_err(|e| SourceError::Write {
        path: PathBuf::new(),
        what: "HEAD".to_string(),
        message: describe(&e),
    })
}

fn log_message(action: &str) -> BString {
    format!("plumbline writer: {action}").into()
}

/// Repositories with a realistic history, shared by the tests of the whole `source` module.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{CommitSpec, RepoWriter};
    use std::path::Path;

    pub const T0: i64 = 1_700_000_000;

    /// The commits of [`build`], newest last within each branch.
    pub struct History {
        pub initial: String,
        pub web_replicas: String,
        pub api_staging: String,
        /// Ten commits that only touch `apps/api/base/config.yaml`.
        pub api_churn: Vec<String>,
        pub docs_move: String,
        pub feature: String,
    }

    pub fn spec(
        author: &str,
        time: i64,
        message: &str,
        changes: &[(&str, Option<&str>)],
    ) -> CommitSpec {
        CommitSpec {
            author_name: author.to_string(),
            author_email: format!("{}@example.com", author.to_lowercase()),
            time,
            message: message.to_string(),
            changes: changes
                .iter()
                .map(|(p, c)| (p.to_string(), c.map(|c| c.as_bytes().to_vec())))
                .collect(),
        }
    }

    /// `main`: initial layout (Ana), web replicas (Ben), api staging overlay (Cleo, tagged
    /// `v1.0` annotated), ten api config commits (alternating Ben/Cleo), README moved to docs
    /// (Ana). `feature` branches off at `v1.0` with one commit (Dev). `lw` is a lightweight
    /// tag on the web replicas commit.
    pub fn build(dir: &Path, bare: bool) -> (RepoWriter, History) {
        let mut w = RepoWriter::init(dir, bare).unwrap();
        let initial = w
            .commit(
                "main",
                &spec(
                    "Ana",
                    T0,
                    "Initial layout\n\nWeb and api apps with prod overlays.\n",
                    &[
                        ("README.md", Some("# platform\n")),
                        ("apps/web/base/deployment.yaml", Some("kind: Deployment\n")),
                        (
                            "apps/web/base/kustomization.yaml",
                            Some("resources: [deployment.yaml]\n"),
                        ),
                        (
                            "apps/web/overlays/prod/kustomization.yaml",
                            Some("resources: [../../base]\n"),
                        ),
                        ("apps/api/base/config.yaml", Some("level: 0\n")),
                        (
                            "apps/api/overlays/prod/kustomization.yaml",
                            Some("resources: [../../base]\n"),
                        ),
                    ],
                ),
            )
            .unwrap();
        let web_replicas = w
            .commit(
                "main",
                &spec(
                    "Ben",
                    T0 + 3600,
                    "web: 3 replicas in prod",
                    &[(
                        "apps/web/overlays/prod/kustomization.yaml",
                        Some("replicas: 3\n"),
                    )],
                ),
            )
            .unwrap();
        let api_staging = w
            .commit(
                "main",
                &spec(
                    "Cleo",
                    T0 + 7200,
                    "api: staging overlay",
                    &[(
                        "apps/api/overlays/staging/kustomization.yaml",
                        Some("resources: [../../base]\n"),
                    )],
                ),
            )
            .unwrap();
        w.tag("v1.0", &api_staging, Some("release 1.0")).unwrap();
        w.tag("lw", &web_replicas, None).unwrap();
        w.branch_from("feature", "v1.0").unwrap();
        let mut api_churn = Vec::new();
        for i in 1..=10 {
            let author = if i % 2 == 0 { "Ben" } else { "Cleo" };
            let content = format!("level: {i}\n");
            api_churn.push(
                w.commit(
                    "main",
                    &spec(
                        author,
                        T0 + 10_000 + i * 60,
                        &format!("api: level {i}"),
                        &[("apps/api/base/config.yaml", Some(content.as_str()))],
                    ),
                )
                .unwrap(),
            );
        }
        let docs_move = w
            .commit(
                "main",
                &spec(
                    "Ana",
                    T0 + 20_000,
                    "move README to docs",
                    &[
                        ("README.md", None),
                        ("docs/README.md", Some("# platform\n")),
                    ],
                ),
            )
            .unwrap();
        let feature = w
            .commit(
                "feature",
                &spec(
                    "Dev",
                    T0 + 15_000,
                    "web: try a sidecar",
                    &[(
                        "apps/web/base/deployment.yaml",
                        Some("kind: Deployment\n# sidecar\n"),
                    )],
                ),
            )
            .unwrap();
        (
            w,
            History {
                initial,
                web_replicas,
                api_staging,
                api_churn,
                docs_move,
                feature,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{spec, T0};
    use super::*;

    fn head_target(w: &RepoWriter) -> Option<String> {
        w.repo.head_name().unwrap().map(|n| n.as_bstr().to_string())
    }

    #[test]
    fn first_commit_points_head_at_its_branch() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RepoWriter::init(dir.path(), true).unwrap();
        w.commit("trunk", &spec("Ana", T0, "one", &[("a.txt", Some("a"))]))
            .unwrap();
        assert_eq!(head_target(&w).as_deref(), Some("refs/heads/trunk"));
        // Later commits on other branches leave HEAD alone.
        w.commit(
            "other",
            &spec("Ben", T0 + 1, "two", &[("b.txt", Some("b"))]),
        )
        .unwrap();
        assert_eq!(head_target(&w).as_deref(), Some("refs/heads/trunk"));
        w.set_head("other").unwrap();
        assert_eq!(head_target(&w).as_deref(), Some("refs/heads/other"));
    }

    #[test]
    fn commits_build_on_the_branch_tree_and_record_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RepoWriter::init(dir.path(), false).unwrap();
        assert!(dir.path().join(".git").is_dir());
        let first = w
            .commit(
                "main",
                &spec(
                    "Ana",
                    T0,
                    "one",
                    &[("a/b/c.txt", Some("c")), ("d.txt", Some("d"))],
                ),
            )
            .unwrap();
        let second = w
            .commit(
                "main",
                &spec(
                    "Ben",
                    T0 + 60,
                    "two",
                    &[("a/b/c.txt", None), ("e.txt", Some("e"))],
                ),
            )
            .unwrap();
        assert_eq!(first.len(), 40);
        let commit = w
            .repo
            .find_commit(ObjectId::from_hex(second.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(
            commit
                .parent_ids()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            vec![first]
        );
        let author = commit.author().unwrap();
        assert_eq!(author.name, "Ben");
        assert_eq!(author.email, "ben@example.com");
        assert_eq!(author.seconds(), T0 + 60);
        assert_eq!(commit.committer().unwrap().name, "Ben");
        assert_eq!(commit.message_raw().unwrap(), "two\n");
        let tree = commit.tree().unwrap();
        let mut names: Vec<String> = tree
            .decode()
            .unwrap()
            .entries
            .iter()
            .map(|e| e.filename.to_string())
            .collect();
        names.sort();
        // The emptied directory `a` disappears with its last file.
        assert_eq!(names, vec!["d.txt", "e.txt"]);
    }

    #[test]
    fn tags_and_branches_point_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = fixture::build(dir.path(), true);
        let tip = |name: &str| {
            w.repo
                .find_reference(name)
                .unwrap()
                .peel_to_id()
                .unwrap()
                .to_string()
        };
        assert_eq!(tip("refs/heads/feature"), h.feature);
        assert_eq!(tip("refs/heads/main"), h.docs_move);
        assert_eq!(tip("refs/tags/v1.0"), h.api_staging);
        assert_eq!(tip("refs/tags/lw"), h.web_replicas);
        // The annotated tag is a tag object, the lightweight one is not.
        let annotated = w.repo.find_reference("refs/tags/v1.0").unwrap();
        assert_ne!(annotated.id().to_string(), h.api_staging);
        let lightweight = w.repo.find_reference("refs/tags/lw").unwrap();
        assert_eq!(lightweight.id().to_string(), h.web_replicas);
        assert_eq!(h.initial.len(), 40);
        assert_eq!(h.api_churn.len(), 10);
    }

    #[test]
    fn bad_names_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RepoWriter::init(dir.path(), true).unwrap();
        let err = w
            .commit("bad..name", &spec("Ana", T0, "x", &[("a", Some("a"))]))
            .unwrap_err();
        assert!(err.to_string().contains("bad..name"), "{err}");
        let err = w.branch_from("b", "nope").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = w
            .commit("main", &spec("Ana", T0, "x", &[("/", Some("a"))]))
            .unwrap_err();
        assert!(err.to_string().contains("empty path"), "{err}");
    }
}
