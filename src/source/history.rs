//! The commit audit trail: which commits reached a revision, who made them, what they changed,
//! and which commit last touched each file an object was rendered from.
//!
//! Changes are found by comparing tree ids level by level and descending only where they
//! differ, so the cost of a commit is proportional to what it changed, not to the size of the
//! repository.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use gix::objs::tree::EntryKind;
use gix::revision::walk::Sorting;
use gix::traverse::commit::simple::CommitTimeOrder;
use gix::ObjectId;

use super::git::{join, normalize_path, tree_entries, Mirror, SourceError};
use crate::model::CommitInfo;

/// Commits reachable from `head`, newest first by commit time, at most `limit` of them.
///
/// With `stop_at`, the walk ends before `stop_at` and its ancestors, i.e. it lists what is new
/// since the last scan. A `stop_at` that is unknown or not an ancestor of `head` (the branch
/// was force-pushed) is ignored: the trail must never silently lose commits.
pub fn walk(
    mirror: &Mirror,
    head: &str,
    stop_at: Option<&str>,
    limit: usize,
) -> Result<Vec<CommitInfo>, SourceError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let repo = mirror.local();
    let head_id = mirror.commit_id(&repo, head)?;
    let hidden = match stop_at {
        Some(stop) => match ancestor_stop(mirror, &repo, head_id, stop) {
            Stop::Head => return Ok(Vec::new()),
            Stop::At(id) => Some(id),
            Stop::Ignore => None,
        },
        None => None,
    };

    let mut platform = repo
        .rev_walk([head_id])
        .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst));
    if let Some(hidden) = hidden {
        platform = platform.with_hidden([hidden]);
    }
    let walk_error = |e: &gix::Error| mirror.read_error(format!("history of {head}"), e);
    let mut trees = TreeCache::default();
    let mut commits = Vec::new();
    for info in platform.all().map_err(|e| walk_error(&e))? {
        let info = info.map_err(|e| walk_error(&e))?;
        let first_parent = info.parent_ids.first().copied();
        let (commit, seconds) = commit_info(mirror, &repo, &mut trees, info.id, first_parent)?;
        commits.push((seconds, commit));
        if commits.len() >= limit {
            break;
        }
    }
    // The walk is already time-ordered except under clock skew between parent and child;
    // a stable sort makes the order exactly what the contract says.
    commits.sort_by_key(|c| std::cmp::Reverse(c.0));
    Ok(commits.into_iter().map(|(_, c)| c).collect())
}

/// The commits that changed `path` itself or anything below it (`""` matches every commit).
pub fn touching<'a>(commits: &'a [CommitInfo], path: &str) -> Vec<&'a CommitInfo> {
    let path = normalize_path(path);
    if path.is_empty() {
        return commits.iter().collect();
    }
    let prefix = format!("{path}/");
    commits
        .iter()
        .filter(|c| c.files.iter().any(|f| *f == path || f.starts_with(&prefix)))
        .collect()
}

/// For each of `files`, the newest commit (walking from `head`, at most `max_commits`) that
/// changed it. Files not changed within that window are absent from the result.
///
/// Like `git log -1 -- FILE`, a merge only counts as changing a file when the file differs
/// from every parent; otherwise the change is credited to the commit on the merged branch
/// that made it, which is the author an auditor wants to see.
pub fn last_commits(
    mirror: &Mirror,
    head: &str,
    files: &[String],
    max_commits: usize,
) -> Result<HashMap<String, CommitInfo>, SourceError> {
    let mut found = HashMap::new();
    let mut trie = Node::default();
    // The caller's spellings of each normalized path (`./a.yaml` and `a.yaml` are one file).
    let mut spellings: HashMap<String, Vec<&String>> = HashMap::new();
    for file in files {
        let path = normalize_path(file);
        if !path.is_empty() {
            trie.insert(&path.split('/').collect::<Vec<_>>());
            spellings.entry(path).or_default().push(file);
        }
    }
    if trie.pending == 0 || max_commits == 0 {
        return Ok(found);
    }

    let repo = mirror.local();
    let head_id = mirror.commit_id(&repo, head)?;
    let walk_error = |e: &gix::Error| mirror.read_error(format!("history of {head}"), e);
    let commits = repo
        .rev_walk([head_id])
        .sorting(Sorting::ByCommitTime(CommitTimeOrder::NewestFirst))
        .all()
        .map_err(|e| walk_error(&e))?;
    let mut trees = TreeCache::default();
    for info in commits.take(max_commits) {
        let info = info.map_err(|e| walk_error(&e))?;
        let tree = trees
            .commit_tree(&repo, info.id)
            .map_err(|e| mirror.read_error(format!("commit {}", info.id), &e))?;
        let mut parents = Vec::with_capacity(info.parent_ids.len());
        for parent in &info.parent_ids {
            let parent_tree = trees
                .commit_tree(&repo, *parent)
                .map_err(|e| mirror.read_error(format!("commit {parent}"), &e))?;
            parents.push(Some((EntryKind::Tree, parent_tree)));
        }
        let mut changed = Vec::new();
        trie.changed(
            &repo,
            &mut trees,
            "",
            Some((EntryKind::Tree, tree)),
            &parents,
            &mut changed,
        )
        .map_err(|e| mirror.read_error(format!("trees of commit {}", info.id), &e))?;
        if changed.is_empty() {
            continue;
        }
        let first_parent = info.parent_ids.first().copied();
        let (commit, _) = commit_info(mirror, &repo, &mut trees, info.id, first_parent)?;
        for path in changed {
            trie.mark_found(&path.split('/').collect::<Vec<_>>());
            for original in spellings.get(&path).into_iter().flatten() {
                found
                    .entry((*original).clone())
                    .or_insert_with(|| commit.clone());
            }
        }
        if trie.pending == 0 {
            break;
        }
    }
    Ok(found)
}

enum Stop {
    /// `stop_at` is `head` itself: nothing is new.
    Head,
    At(ObjectId),
    Ignore,
}

fn ancestor_stop(mirror: &Mirror, repo: &gix::Repository, head: ObjectId, stop: &str) -> Stop {
    let Ok(stop) = mirror.commit_id(repo, stop) else {
        return Stop::Ignore;
    };
    if stop == head {
        return Stop::Head;
    }
    if !repo.has_object(stop) {
        return Stop::Ignore;
    }
    match repo.merge_base(stop, head) {
        Ok(Some(base)) if base.detach() == stop => Stop::At(stop),
        _ => Stop::Ignore,
    }
}

/// Builds the audit record of one commit; also returns its commit time for ordering.
fn commit_info(
    mirror: &Mirror,
    repo: &gix::Repository,
    trees: &mut TreeCache,
    id: ObjectId,
    first_parent: Option<ObjectId>,
) -> Result<(CommitInfo, i64), SourceError> {
    let read_error = |e: &gix::Error| mirror.read_error(format!("commit {id}"), e);
    let commit = repo.find_commit(id).map_err(|e| read_error(&e))?;
    let author = commit.author().map_err(|e| read_error(&e))?.trim();
    let committer = commit.committer().map_err(|e| read_error(&e))?.trim();
    let message = commit.message_raw().map_err(|e| read_error(&e))?;
    let tree = commit.tree_id().map_err(|e| read_error(&e))?.detach();
    let parent_tree = match first_parent {
        Some(parent) => Some(
            trees
                .commit_tree(repo, parent)
                .map_err(|e| mirror.read_error(format!("commit {parent}"), &e))?,
        ),
        None => None,
    };
    let mut files = Vec::new();
    diff_trees(repo, trees, parent_tree, Some(tree), "", &mut files)
        .map_err(|e| mirror.read_error(format!("changes of commit {id}"), &e))?;
    files.sort();
    files.dedup();
    let committer_seconds = committer.seconds();
    Ok((
        CommitInfo {
            sha: id.to_string(),
            author: format!("{} <{}>", author.name, author.email),
            time: rfc3339(author.seconds()),
            committer: format!("{} <{}>", committer.name, committer.email),
            committer_time: rfc3339(committer_seconds),
            message: String::from_utf8_lossy(message).trim_end().to_string(),
            files,
        },
        committer_seconds,
    ))
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-11-22T03:00:00Z`.
fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Appends the paths of every file that differs between the trees `old` and `new` (either may
/// be absent), descending only into subtrees whose ids differ.
fn diff_trees(
    repo: &gix::Repository,
    trees: &mut TreeCache,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), gix::Error> {
    if old == new {
        return Ok(());
    }
    let mut pairs: BTreeMap<Vec<u8>, (Option<Entry>, Option<Entry>)> = BTreeMap::new();
    if let Some(old) = old {
        for (name, entry) in trees.entries(repo, old)?.iter() {
            pairs.entry(name.clone()).or_default().0 = Some(*entry);
        }
    }
    if let Some(new) = new {
        for (name, entry) in trees.entries(repo, new)?.iter() {
            pairs.entry(name.clone()).or_default().1 = Some(*entry);
        }
    }
    for (name, (before, after)) in pairs {
        if before == after {
            continue;
        }
        let path = join(prefix, &name);
        let tree_of = |e: Option<Entry>| e.filter(|e| e.0 == EntryKind::Tree).map(|e| e.1);
        let (old_tree, new_tree) = (tree_of(before), tree_of(after));
        if old_tree.is_some() || new_tree.is_some() {
            diff_trees(repo, trees, old_tree, new_tree, &path, out)?;
        }
        let is_file = |e: Option<Entry>| e.is_some_and(|e| e.0 != EntryKind::Tree);
        if is_file(before) || is_file(after) {
            out.push(path);
        }
    }
    Ok(())
}

/// Kind and id of a tree entry.
type Entry = (EntryKind, ObjectId);

/// Decoded trees and commit trees, shared across the commits of one walk: consecutive commits
/// mostly share their trees, and a parent's tree is needed again when the parent's turn comes.
#[derive(Default)]
struct TreeCache {
    trees: HashMap<ObjectId, Rc<HashMap<Vec<u8>, Entry>>>,
    commit_trees: HashMap<ObjectId, ObjectId>,
}

/// Bounds the cache so that walking a huge history does not hold all its trees in memory.
const TREE_CACHE_ENTRIES: usize = 8192;

impl TreeCache {
    fn entries(
        &mut self,
        repo: &gix::Repository,
        id: ObjectId,
    ) -> Result<Rc<HashMap<Vec<u8>, Entry>>, gix::Error> {
        if let Some(entries) = self.trees.get(&id) {
            return Ok(Rc::clone(entries));
        }
        let entries: HashMap<Vec<u8>, Entry> = tree_entries(repo, id)?
            .into_iter()
            .map(|e| (e.name.into(), (e.kind, e.id)))
            .collect();
        let entries = Rc::new(entries);
        if self.trees.len() >= TREE_CACHE_ENTRIES {
            self.trees.clear();
        }
        self.trees.insert(id, Rc::clone(&entries));
        Ok(entries)
    }

    fn commit_tree(
        &mut self,
        repo: &gix::Repository,
        commit: ObjectId,
    ) -> Result<ObjectId, gix::Error> {
        if let Some(tree) = self.commit_trees.get(&commit) {
            return Ok(*tree);
        }
        let tree = repo.find_commit(commit)?.tree_id()?.detach();
        if self.commit_trees.len() >= TREE_CACHE_ENTRIES {
            self.commit_trees.clear();
        }
        self.commit_trees.insert(commit, tree);
        Ok(tree)
    }
}

/// The wanted files as a tree of path components, with the number of files still unattributed
/// below each node so that finished subtrees are never read again.
#[derive(Default)]
struct Node {
    children: BTreeMap<Vec<u8>, Node>,
    /// This node is a wanted file that has not been attributed yet.
    wanted: bool,
    pending: usize,
}

impl Node {
    /// Adds a wanted path; false when it was already wanted.
    fn insert(&mut self, components: &[&str]) -> bool {
        let added = match components.split_first() {
            None => !std::mem::replace(&mut self.wanted, true),
            Some((first, rest)) => self
                .children
                .entry(first.as_bytes().to_vec())
                .or_default()
                .insert(rest),
        };
        if added {
            self.pending += 1;
        }
        added
    }

    /// Marks a wanted path as attributed; false when it was not pending.
    fn mark_found(&mut self, components: &[&str]) -> bool {
        let removed = match components.split_first() {
            None => std::mem::take(&mut self.wanted),
            Some((first, rest)) => self
                .children
                .get_mut(first.as_bytes())
                .is_some_and(|child| child.mark_found(rest)),
        };
        if removed {
            self.pending -= 1;
        }
        removed
    }

    /// Appends the pending wanted paths below this node that `new` changed relative to every
    /// one of `parents` (for a root commit: that exist in `new`).
    fn changed(
        &self,
        repo: &gix::Repository,
        trees: &mut TreeCache,
        path: &str,
        new: Option<Entry>,
        parents: &[Option<Entry>],
        out: &mut Vec<String>,
    ) -> Result<(), gix::Error> {
        if self.pending == 0 || parents.contains(&new) || (parents.is_empty() && new.is_none()) {
            return Ok(());
        }
        let is_file = |e: &Option<Entry>| e.is_some_and(|e| e.0 != EntryKind::Tree);
        if self.wanted && (is_file(&new) || parents.iter().any(is_file)) {
            out.push(path.to_string());
        }
        if self.children.is_empty() {
            return Ok(());
        }
        let mut subtree = |e: Option<Entry>| match e {
            Some((EntryKind::Tree, id)) => trees.entries(repo, id).map(Some),
            _ => Ok(None),
        };
        let new_entries = subtree(new)?;
        let parent_entries = parents
            .iter()
            .map(|p| subtree(*p))
            .collect::<Result<Vec<_>, _>>()?;
        for (name, child) in &self.children {
            if child.pending == 0 {
                continue;
            }
            let lookup = |m: &Option<Rc<HashMap<Vec<u8>, Entry>>>| {
                m.as_ref().and_then(|m| m.get(name).copied())
            };
            let child_parents: Vec<Option<Entry>> = parent_entries.iter().map(lookup).collect();
            child.changed(
                repo,
                trees,
                &join(path, name),
                lookup(&new_entries),
                &child_parents,
                out,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::writer::fixture::{self, spec, History, T0};
    use crate::source::writer::RepoWriter;

    struct Setup {
        _dir: tempfile::TempDir,
        origin: std::path::PathBuf,
        cache: std::path::PathBuf,
        writer: RepoWriter,
        h: History,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin.git");
        let cache = dir.path().join("cache");
        let (writer, h) = fixture::build(&origin, true);
        Setup {
            _dir: dir,
            origin,
            cache,
            writer,
            h,
        }
    }

    fn mirror(s: &Setup) -> Mirror {
        Mirror::sync(&s.cache, "platform", &s.origin.to_string_lossy()).unwrap()
    }

    fn shas(commits: &[CommitInfo]) -> Vec<&str> {
        commits.iter().map(|c| c.sha.as_str()).collect()
    }

    #[test]
    fn walk_lists_commits_newest_first_with_authors_times_messages_and_files() {
        let s = setup();
        let h = &s.h;
        let m = mirror(&s);
        let commits = walk(&m, &h.docs_move, None, 100).unwrap();
        let mut expected = vec![h.docs_move.as_str()];
        expected.extend(h.api_churn.iter().rev().map(String::as_str));
        expected.extend([
            h.api_staging.as_str(),
            h.web_replicas.as_str(),
            h.initial.as_str(),
        ]);
        assert_eq!(shas(&commits), expected);

        let newest = &commits[0];
        assert_eq!(newest.author, "Ana <ana@example.com>");
        assert_eq!(newest.committer, "Ana <ana@example.com>");
        assert_eq!(newest.time, "2023-11-15T03:46:40Z");
        assert_eq!(newest.committer_time, newest.time);
        assert_eq!(newest.message, "move README to docs");
        // A deletion and an addition.
        assert_eq!(newest.files, vec!["README.md", "docs/README.md"]);

        let initial = commits.last().unwrap();
        assert_eq!(initial.time, "2023-11-14T22:13:20Z");
        assert_eq!(
            initial.message,
            "Initial layout\n\nWeb and api apps with prod overlays."
        );
        assert_eq!(
            initial.files,
            vec![
                "README.md",
                "apps/api/base/config.yaml",
                "apps/api/overlays/prod/kustomization.yaml",
                "apps/web/base/deployment.yaml",
                "apps/web/base/kustomization.yaml",
                "apps/web/overlays/prod/kustomization.yaml",
            ]
        );
        assert_eq!(commits[1].author, "Ben <ben@example.com>");
        assert_eq!(commits[1].files, vec!["apps/api/base/config.yaml"]);

        // Branch names work as `head` and the limit is honoured.
        let limited = walk(&m, "main", None, 3).unwrap();
        assert_eq!(shas(&limited), expected[..3].to_vec());
        assert!(walk(&m, "main", None, 0).unwrap().is_empty());
    }

    #[test]
    fn walk_stops_before_an_ancestor_and_ignores_a_non_ancestor() {
        let s = setup();
        let h = &s.h;
        let m = mirror(&s);
        let since = walk(&m, &h.docs_move, Some(&h.api_staging), 100).unwrap();
        let mut expected = vec![h.docs_move.as_str()];
        expected.extend(h.api_churn.iter().rev().map(String::as_str));
        assert_eq!(shas(&since), expected);

        // Nothing new since the last scan.
        assert!(walk(&m, &h.docs_move, Some(&h.docs_move), 100)
            .unwrap()
            .is_empty());

        // `feature` is not an ancestor of main (as after a force-push): full history.
        let all = walk(&m, &h.docs_move, None, 100).unwrap();
        assert_eq!(walk(&m, &h.docs_move, Some(&h.feature), 100).unwrap(), all);
        // Unknown commits are ignored the same way.
        let unknown = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(walk(&m, &h.docs_move, Some(unknown), 100).unwrap(), all);

        // On the feature branch, stopping at the tag it started from.
        let feature = walk(&m, "feature", Some("v1.0"), 100).unwrap();
        assert_eq!(shas(&feature), vec![h.feature.as_str()]);
        assert_eq!(feature[0].author, "Dev <dev@example.com>");
        assert_eq!(feature[0].files, vec!["apps/web/base/deployment.yaml"]);
    }

    #[test]
    fn walk_reports_an_unknown_head() {
        let s = setup();
        let m = mirror(&s);
        assert!(matches!(
            walk(&m, "nope", None, 10),
            Err(SourceError::RevisionNotFound { .. })
        ));
    }

    #[test]
    fn touching_filters_by_file_or_directory() {
        let s = setup();
        let h = &s.h;
        let m = mirror(&s);
        let commits = walk(&m, "main", None, 100).unwrap();
        assert_eq!(touching(&commits, "").len(), commits.len());
        let web: Vec<&str> = touching(&commits, "apps/web")
            .iter()
            .map(|c| c.sha.as_str())
            .collect();
        assert_eq!(web, vec![h.web_replicas.as_str(), h.initial.as_str()]);
        assert_eq!(touching(&commits, "apps/web/").len(), 2);
        assert_eq!(touching(&commits, "README.md").len(), 2);
        assert_eq!(
            touching(&commits, "apps/we").len(),
            0,
            "prefixes match whole components"
        );
        assert_eq!(touching(&commits, "apps/api/base/config.yaml").len(), 11);
    }

    #[test]
    fn last_commits_finds_the_newest_change_of_each_file_in_one_walk() {
        let s = setup();
        let h = &s.h;
        let m = mirror(&s);
        let files: Vec<String> = [
            "apps/web/base/kustomization.yaml",
            "apps/web/overlays/prod/kustomization.yaml",
            "apps/api/base/config.yaml",
            "apps/api/overlays/staging/kustomization.yaml",
            "docs/README.md",
            "README.md",
            "not/in/history.yaml",
        ]
        .iter()
        .map(|f| f.to_string())
        .collect();
        let last = last_commits(&m, "main", &files, 1000).unwrap();
        let sha = |f: &str| last.get(f).map(|c| c.sha.as_str());
        // Untouched since the first commit, fourteen commits ago.
        assert_eq!(
            sha("apps/web/base/kustomization.yaml"),
            Some(h.initial.as_str())
        );
        assert_eq!(
            sha("apps/web/overlays/prod/kustomization.yaml"),
            Some(h.web_replicas.as_str())
        );
        assert_eq!(
            sha("apps/api/base/config.yaml"),
            h.api_churn.last().map(String::as_str)
        );
        assert_eq!(
            sha("apps/api/overlays/staging/kustomization.yaml"),
            Some(h.api_staging.as_str())
        );
        assert_eq!(sha("docs/README.md"), Some(h.docs_move.as_str()));
        // A deleted file's last commit is the one that deleted it.
        assert_eq!(sha("README.md"), Some(h.docs_move.as_str()));
        assert_eq!(sha("not/in/history.yaml"), None);
        let web = &last["apps/web/overlays/prod/kustomization.yaml"];
        assert_eq!(web.author, "Ben <ben@example.com>");
        assert_eq!(web.message, "web: 3 replicas in prod");

        // Outside the window, a file is absent rather than wrongly attributed.
        let near = last_commits(&m, "main", &files, 3).unwrap();
        assert_eq!(near.len(), 3);
        assert!(!near.contains_key("apps/web/base/kustomization.yaml"));

        // The caller's spelling of a path is kept.
        let odd = last_commits(
            &m,
            "main",
            &["./apps/web/base/kustomization.yaml".to_string()],
            100,
        )
        .unwrap();
        assert_eq!(odd["./apps/web/base/kustomization.yaml"].sha, h.initial);
        assert!(last_commits(&m, "main", &[], 100).unwrap().is_empty());
    }

    #[test]
    fn merges_credit_the_commit_that_made_the_change() {
        let mut s = setup();
        let h = &s.h;
        let repo = &s.writer.repo;
        let id = |hex: &str| ObjectId::from_hex(hex.as_bytes()).unwrap();
        // Merge `feature` into main: main's tree with feature's deployment.
        let main_tree = repo
            .find_commit(id(&h.docs_move))
            .unwrap()
            .tree_id()
            .unwrap()
            .detach();
        let deployment = repo
            .find_commit(id(&h.feature))
            .unwrap()
            .tree()
            .unwrap()
            .lookup_entry_by_path("apps/web/base/deployment.yaml")
            .unwrap()
            .unwrap()
            .object_id();
        let mut editor = repo.edit_tree(main_tree).unwrap();
        editor
            .upsert("apps/web/base/deployment.yaml", EntryKind::Blob, deployment)
            .unwrap();
        let tree = editor.write().unwrap().detach();
        let sig = gix::actor::Signature {
            name: "Merger".into(),
            email: "merger@example.com".into(),
            time: gix::date::Time::new(T0 + 50_000, 0),
        };
        let merge = gix::objs::Commit {
            tree,
            parents: [id(&h.docs_move), id(&h.feature)].into_iter().collect(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: "Merge branch 'feature'\n".into(),
            extra_headers: Vec::new(),
        };
        let merge = repo.write_object(&merge).unwrap().to_string();
        s.writer.branch_from("main", &merge).unwrap();
        let after = s
            .writer
            .commit(
                "main",
                &spec(
                    "Ana",
                    T0 + 60_000,
                    "docs: typo",
                    &[("docs/README.md", Some("# Platform\n"))],
                ),
            )
            .unwrap();

        let m = mirror(&s);
        let last = last_commits(
            &m,
            "main",
            &[
                "apps/web/base/deployment.yaml".to_string(),
                "docs/README.md".to_string(),
            ],
            100,
        )
        .unwrap();
        assert_eq!(last["apps/web/base/deployment.yaml"].sha, h.feature);
        assert_eq!(
            last["apps/web/base/deployment.yaml"].author,
            "Dev <dev@example.com>"
        );
        assert_eq!(last["docs/README.md"].sha, after);

        // The trail lists the merge with its changes against the first parent, and the
        // merged commit itself.
        let trail = walk(&m, "main", Some(&h.docs_move), 100).unwrap();
        assert_eq!(
            shas(&trail),
            vec![after.as_str(), merge.as_str(), h.feature.as_str()]
        );
        assert_eq!(trail[1].files, vec!["apps/web/base/deployment.yaml"]);
    }
}
