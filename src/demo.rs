//! `plumbline demo`: builds the bundled example (a Git repository with a history by several
//! authors, two offline clusters with drift), scans it and shows where everything is.
//!
//! The example is compiled into the binary, so the demo works offline from any directory.

use crate::cli::{self, exit};
use crate::config;
use crate::scan::{self, ScanOptions};
use crate::source::writer::{CommitSpec, RepoWriter};
use anyhow::{anyhow, bail, Context};
use include_dir::{include_dir, Dir};
use serde::Deserialize;
use std::path::{Path, PathBuf};

static EXAMPLE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/examples/demo");

/// `history/NN-slug/commit.yaml`: who made the commit, when, and what it removed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitMeta {
    author: String,
    email: String,
    date: String,
    message: String,
    #[serde(default)]
    delete: Vec<String>,
}

pub fn run(dir: Option<&Path>) -> anyhow::Result<i32> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("plumbline-demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    write_example_files(&dir)?;
    let commits = build_repository(&dir.join("repo"))?;
    if std::env::var_os("PLUMBLINE_CACHE").is_none() {
        std::env::set_var("PLUMBLINE_CACHE", dir.join("cache"));
    }
    let config_path = dir.join("plumbline.yaml");
    let config = config::load(&config_path).map_err(|errors| anyhow!("{errors}"))?;
    let options = ScanOptions {
        apps: Vec::new(),
        clusters: Vec::new(),
        progress: true,
        record: true,
        self_heal_only: false,
    };
    let outcome = scan::run(&config, &options)?;
    let result = &outcome.result;
    std::fs::create_dir_all(&config.reports_dir)
        .with_context(|| format!("cannot create {}", config.reports_dir.display()))?;
    let mut shown = result.clone();
    shown
        .findings
        .retain(|f| f.status != crate::model::Status::InSync);
    let json_report = config
        .reports_dir
        .join(format!("scan-{}.json", result.scan_id));
    std::fs::write(&json_report, crate::report::json::render(result, false))
        .with_context(|| format!("cannot write {}", json_report.display()))?;
    let store = crate::store::Store::open(&config.database)?;
    let html_report = config
        .reports_dir
        .join(format!("scan-{}.html", result.scan_id));
    std::fs::write(&html_report, cli::html_report(&store, result)?)
        .with_context(|| format!("cannot write {}", html_report.display()))?;
    print!("{}", cli::table(&shown));
    println!();
    println!(
        "Git repository:  {} ({commits} commits)",
        dir.join("repo").display()
    );
    println!("configuration:   {}", config_path.display());
    println!("database:        {}", config.database.display());
    println!("HTML report:     {}", html_report.display());
    println!("JSON report:     {}", json_report.display());
    println!();
    println!(
        "Try: plumbline --config {} diff api-prod",
        config_path.display()
    );
    Ok(exit::OK)
}

/// Writes the configuration and the cluster snapshots, replacing earlier copies.
fn write_example_files(dir: &Path) -> anyhow::Result<()> {
    let clusters = dir.join("clusters");
    if clusters.exists() {
        std::fs::remove_dir_all(&clusters)
            .with_context(|| format!("cannot replace {}", clusters.display()))?;
    }
    let config = EXAMPLE
        .get_file("plumbline.yaml")
        .ok_or_else(|| anyhow!("the bundled example has no plumbline.yaml"))?;
    std::fs::write(dir.join("plumbline.yaml"), config.contents())?;
    // The built-in policy packs, as files the configuration names.
    for (path, text) in crate::policy::BUILTIN {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    let snapshots = EXAMPLE
        .get_dir("clusters")
        .ok_or_else(|| anyhow!("the bundled example has no clusters"))?;
    extract(snapshots, Path::new("clusters"), dir)
}

fn extract(source: &Dir, prefix: &Path, target: &Path) -> anyhow::Result<()> {
    for file in source.files() {
        let relative = file.path().strip_prefix(prefix).unwrap_or(file.path());
        let path = target.join(prefix).join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, file.contents())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for sub in source.dirs() {
        extract(sub, prefix, target)?;
    }
    Ok(())
}

/// Replays `history/` into a fresh bare repository; the same example always gives the same
/// commit ids, so a second run of the demo sees an unchanged history.
fn build_repository(path: &Path) -> anyhow::Result<usize> {
    if path.exists() {
        std::fs::remove_dir_all(path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let history = EXAMPLE
        .get_dir("history")
        .ok_or_else(|| anyhow!("the bundled example has no history"))?;
    let mut steps: Vec<&Dir> = history.dirs().collect();
    steps.sort_by_key(|d| d.path().to_path_buf());
    if steps.is_empty() {
        bail!("the bundled example has an empty history");
    }
    let mut writer = RepoWriter::init(path, true)?;
    for step in &steps {
        let meta_file = step
            .get_file(step.path().join("commit.yaml"))
            .ok_or_else(|| anyhow!("{}: no commit.yaml", step.path().display()))?;
        let meta: CommitMeta = serde_yaml::from_slice(meta_file.contents())
            .with_context(|| format!("{}", meta_file.path().display()))?;
        let time = chrono::DateTime::parse_from_rfc3339(&meta.date)
            .with_context(|| format!("{}: date {:?}", meta_file.path().display(), meta.date))?
            .timestamp();
        let mut changes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        if let Some(files) = step.get_dir(step.path().join("files")) {
            collect(files, files.path(), &mut changes);
        }
        changes.extend(meta.delete.iter().map(|p| (p.clone(), None)));
        let spec = CommitSpec {
            author_name: meta.author,
            author_email: meta.email,
            time,
            message: meta.message,
            changes,
        };
        writer.commit("main", &spec)?;
    }
    Ok(steps.len())
}

fn collect(dir: &Dir, root: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
    for file in dir.files() {
        if let Ok(relative) = file.path().strip_prefix(root) {
            let path = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((path, Some(file.contents().to_vec())));
        }
    }
    for sub in dir.dirs() {
        collect(sub, root, out);
    }
}
