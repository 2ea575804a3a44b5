//! Shared test support: fixtures built the way users build them (a Git repository with a
//! history, an offline cluster snapshot, a plumbline.yaml) and the real binary to run on them.
#![allow(dead_code)]

use plumbline::source::writer::{CommitSpec, RepoWriter};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A temporary workspace holding a Git repository, snapshots and a configuration.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    /// A bare repository at `repo` with one commit on `main` holding `files`.
    pub fn repo_with(
        &self,
        author: &str,
        email: &str,
        message: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> RepoWriter {
        let mut writer = RepoWriter::init(&self.path("repo"), true).expect("init repo");
        let spec = CommitSpec {
            author_name: author.into(),
            author_email: email.into(),
            time: 1_761_000_000,
            message: message.into(),
            changes: files.into_iter().map(|(p, c)| (p, Some(c))).collect(),
        };
        writer.commit("main", &spec).expect("commit");
        writer
    }

    /// Copies a fixture directory into the workspace.
    pub fn copy_fixture(&self, fixture: &str, to: &str) {
        copy_dir(&Path::new(FIXTURES).join(fixture), &self.path(to));
    }

    /// Runs the plumbline binary in the workspace with its own mirror cache.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(args)
            .current_dir(self.dir.path())
            .env("PLUMBLINE_CACHE", self.path("cache"))
            .env_remove("PLUMBLINE_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .expect("run plumbline")
    }

    /// Runs `scan --format json` with extra arguments; returns the exit code and the result.
    pub fn scan_json(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["scan", "--format", "json"];
        args.extend_from_slice(extra);
        let output = self.run(&args);
        let code = output.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "scan output is not JSON ({e}); exit {code}\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (code, json)
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Reads a fixture file of the shop repository.
pub fn git_fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join("scan/git").join(path)).expect("fixture")
}

pub fn commit(
    author: &str,
    email: &str,
    time: i64,
    message: &str,
    changes: Vec<(&str, Option<Vec<u8>>)>,
) -> CommitSpec {
    CommitSpec {
        author_name: author.into(),
        author_email: email.into(),
        time,
        message: message.into(),
        changes: changes
            .into_iter()
            .map(|(p, c)| (p.to_string(), c))
            .collect(),
    }
}

/// The shop repository: four commits by three people on `main`, a `release` branch and a
/// `v1.0` tag. Returns the commit ids in order.
pub fn build_shop_repo(path: &Path) -> Vec<String> {
    let mut writer = RepoWriter::init(path, false).expect("init repo");
    let first_deployment = String::from_utf8(git_fixture("apps/shop/deployment.yaml"))
        .expect("utf8")
        .replace("memory: 1024Mi", "memory: 512Mi");
    let mut ids = Vec::new();
    ids.push(
        writer
            .commit(
                "main",
                &commit(
                    "Ana Ruiz",
                    "ana.ruiz@example.com",
                    1_759_309_200,
                    "Import shop and billing manifests",
                    vec![
                        (
                            "apps/shop/deployment.yaml",
                            Some(first_deployment.into_bytes()),
                        ),
                        (
                            "apps/shop/service.yaml",
                            Some(git_fixture("apps/shop/service.yaml")),
                        ),
                        (
                            "apps/shop/config.yaml",
                            Some(git_fixture("apps/shop/config.yaml")),
                        ),
                        (
                            "apps/billing/deployment.yaml",
                            Some(git_fixture("apps/billing/deployment.yaml")),
                        ),
                        ("README.md", Some(b"# gitops\n".to_vec())),
                    ],
                ),
            )
            .expect("commit 1"),
    );
    ids.push(
        writer
            .commit(
                "main",
                &commit(
                    "Ben Okafor",
                    "ben@example.com",
                    1_759_914_000,
                    "feat(billing): only the shop namespace may call billing",
                    vec![(
                        "apps/billing/networkpolicy.yaml",
                        Some(git_fixture("apps/billing/networkpolicy.yaml")),
                    )],
                ),
            )
            .expect("commit 2"),
    );
    writer
        .tag("v1.0", &ids[1], Some("first release"))
        .expect("tag");
    writer.branch_from("release", &ids[1]).expect("branch");
    ids.push(
        writer
            .commit(
                "main",
                &commit(
                    "Chen Wei",
                    "chen.wei@example.com",
                    1_760_518_800,
                    "platform: read-only role for shop developers",
                    vec![(
                        "platform/rbac/reader.yaml",
                        Some(git_fixture("platform/rbac/reader.yaml")),
                    )],
                ),
            )
            .expect("commit 3"),
    );
    ids.push(
        writer
            .commit(
                "main",
                &commit(
                    "Ana Ruiz",
                    "ana.ruiz@example.com",
                    1_761_123_600,
                    "fix(shop): raise the memory limit after OOM kills",
                    vec![(
                        "apps/shop/deployment.yaml",
                        Some(git_fixture("apps/shop/deployment.yaml")),
                    )],
                ),
            )
            .expect("commit 4"),
    );
    ids
}

pub const SHOP_CONFIG: &str = r#"database: state/plumbline.db
reports_dir: reports
sources:
  - name: gitops
    url: repo
    revision: main
clusters:
  - name: prod
    snapshot: live
    labels: {env: prod}
apps:
  - name: shop
    source: gitops
    path: apps/shop
    cluster: prod
    namespace: shop
    ignore:
      - {kind: Deployment, name: shop, json_pointers: [/spec/replicas]}
  - name: billing
    source: gitops
    path: apps/billing
    cluster: prod
    namespace: billing
  - name: platform
    source: gitops
    path: platform/rbac
    cluster: prod
"#;

/// The shop workspace: repository, snapshot of cluster `prod`, configuration.
pub fn shop_workspace() -> (Workspace, Vec<String>) {
    let ws = Workspace::new();
    let ids = build_shop_repo(&ws.path("repo"));
    ws.copy_fixture("scan/live", "live");
    ws.write("plumbline.yaml", SHOP_CONFIG);
    (ws, ids)
}

/// The finding for `kind`/`name`, if the result lists it.
pub fn finding<'a>(result: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind && f["name"] == name)
}
