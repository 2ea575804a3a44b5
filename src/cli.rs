//! Command line: clap definitions and the dispatch to the library.

use crate::config::{self, Config};
use crate::model::{ScanResult, Status};
use crate::scan::{self, ScanFailure, ScanOptions};
use crate::store::Store;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit codes of the contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FOUND: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const PARTIAL: i32 = 3;
}

#[derive(Debug, Parser)]
#[command(
    name = "plumbline",
    version,
    about = "Drift detection and compliance auditing for GitOps on Kubernetes"
)]
pub struct Cli {
    /// Configuration file [default: $PLUMBLINE_CONFIG, else ./plumbline.yaml]
    #[arg(long, global = true, env = "PLUMBLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log level or RUST_LOG-style filter (e.g. `info`, `plumbline=debug`)
    /// [default: info for `daemon`, else warn]
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

/// Formats `scan` prints its result in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    None,
    Modified,
    Missing,
    Orphaned,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
    Sarif,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the bundled example, scan it offline and show where the results are
    Demo {
        /// Where to build the example [default: ./plumbline-demo]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run one full audit and record it
    Scan {
        #[arg(long, value_enum, default_value = "table")]
        format: ScanFormat,
        /// Write the result to this file instead of stdout
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 1 when a finding has this status
        #[arg(long, value_enum, default_value = "none")]
        fail_on: FailOn,
        /// Only apps whose name matches (glob; repeatable)
        #[arg(long = "app", value_name = "GLOB")]
        apps: Vec<String>,
        /// Only apps on clusters whose name matches (glob; repeatable)
        #[arg(long = "cluster", value_name = "GLOB")]
        clusters: Vec<String>,
        /// Also list resources that are in sync
        #[arg(long)]
        include_in_sync: bool,
    },
    /// Render a stored scan
    Report {
        /// Scan id, or `latest`
        #[arg(long, default_value = "latest")]
        scan: String,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also list resources that are in sync
        #[arg(long)]
        include_in_sync: bool,
    },
    /// List stored scans
    History {
        #[arg(long, value_enum, default_value = "table")]
        format: TableOrJson,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the drift of one app as a unified YAML diff (live -> desired)
    Diff {
        app: String,
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Print the desired objects of one app as rendered from Git
    Render {
        app: String,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, value_enum, default_value = "yaml")]
        format: ObjectFormat,
    },
    /// List registered clusters and check that each can be read
    Clusters {
        #[arg(long, value_enum, default_value = "table")]
        format: TableOrJson,
    },
    /// Scan on the configured schedule and serve /healthz, /readyz, /metrics
    Daemon {
        /// Address of the HTTP endpoints [default: daemon.listen, else 127.0.0.1:9464]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply Git's objects over the drift of apps with `self_heal: true` (server-side apply)
    Heal {
        /// Only apps whose name matches (glob; repeatable)
        #[arg(long = "app", value_name = "GLOB")]
        apps: Vec<String>,
        /// Plan and run the server's dry run; write nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: TableOrJson,
        /// Write the result to this file instead of stdout
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the loaded policies with their controls (`policies test` runs their tests)
    Policies {
        #[command(subcommand)]
        action: Option<PoliciesAction>,
        #[arg(long, value_enum, default_value = "table", global = true)]
        format: TableOrJson,
    },
    /// Validate the configuration and print every problem with its location
    CheckConfig,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum PoliciesAction {
    /// Run every policy's own pass/fail tests and report each outcome
    Test,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    // A daemon's log is its record of what it did; a command's result is its output.
    let default_level = match cli.command {
        Command::Daemon { .. } => "info",
        _ => "warn",
    };
    init_logging(
        cli.log_format,
        cli.log_level.as_deref().unwrap_or(default_level),
    );
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("plumbline.yaml"));
    let result = match cli.command {
        Command::Demo { dir } => crate::demo::run(dir.as_deref()),
        Command::CheckConfig => check_config(&config_path),
        Command::Policies { action, format } => {
            with_config(&config_path, |config| policies(config, action, format))
        }
        Command::Scan {
            format,
            out,
            fail_on,
            apps,
            clusters,
            include_in_sync,
        } => with_config(&config_path, |config| {
            let options = ScanOptions {
                apps,
                clusters,
                progress: true,
                record: true,
                self_heal_only: false,
            };
            run_scan(
                config,
                &options,
                format,
                out.as_deref(),
                fail_on,
                include_in_sync,
            )
        }),
        Command::Report {
            scan,
            format,
            out,
            include_in_sync,
        } => with_config(&config_path, |config| {
            report(config, &scan, format, out.as_deref(), include_in_sync)
        }),
        Command::History { format, limit } => {
            with_config(&config_path, |config| history(config, format, limit))
        }
        Command::Diff { app, cluster } => with_config(&config_path, |config| {
            diff(config, &app, cluster.as_deref())
        }),
        Command::Render {
            app,
            cluster,
            format,
        } => with_config(&config_path, |config| {
            render(config, &app, cluster.as_deref(), format)
        }),
        Command::Clusters { format } => {
            with_config(&config_path, |config| clusters(config, format))
        }
        Command::Daemon { listen } => with_config(&config_path, |config| {
            crate::daemon::run(config, listen.as_deref())
        }),
        Command::Heal {
            apps,
            dry_run,
            format,
            out,
        } => with_config(&config_path, |config| {
            heal(config, apps, dry_run, format, out.as_deref())
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::USAGE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only for a person: a daemon's log goes to a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn load_config(path: &Path) -> Result<Config, i32> {
    config::load(path).map_err(|errors| {
        for problem in &errors.problems {
            eprintln!("{problem}");
        }
        exit::USAGE
    })
}

fn with_config(
    path: &Path,
    body: impl FnOnce(&Config) -> anyhow::Result<i32>,
) -> anyhow::Result<i32> {
    match load_config(path) {
        Ok(config) => body(&config),
        Err(code) => Ok(code),
    }
}

/// The packs the configuration names, or the built-in ones (with a note) when it names none.
fn policy_paths(config: &Config) -> Option<&[PathBuf]> {
    if config.policies.is_empty() {
        eprintln!(
            "note: the configuration names no policy packs (`policies:`); showing the built-in packs, which scans do not evaluate until listed"
        );
        None
    } else {
        Some(&config.policies)
    }
}

/// `plumbline policies [test]`.
fn policies(
    config: &Config,
    action: Option<PoliciesAction>,
    format: TableOrJson,
) -> anyhow::Result<i32> {
    use crate::policy::PolicySet;
    let paths = policy_paths(config);
    let print_problems = |problems: Vec<crate::policy::LoadProblem>| {
        for problem in &problems {
            println!("{problem}");
        }
        eprintln!("{} problem(s) in the policy packs", problems.len());
        exit::USAGE
    };
    match action {
        None => {
            let set = match paths {
                Some(paths) => PolicySet::load(paths),
                None => PolicySet::builtin(),
            };
            let set = match set {
                Ok(set) => set,
                Err(problems) => return Ok(print_problems(problems)),
            };
            let listed = set.policies();
            match format {
                TableOrJson::Json => println!("{}", serde_json::to_string_pretty(&listed)?),
                TableOrJson::Table => {
                    for p in &listed {
                        let controls = serde_json::to_value(&p.controls).unwrap_or_default();
                        println!(
                            "{:<36} {:<9} {:<10} {}",
                            p.id,
                            p.severity.as_str(),
                            p.pack,
                            crosswalk(&controls)
                        );
                    }
                    println!("{} policies", listed.len());
                }
            }
            Ok(exit::OK)
        }
        Some(PoliciesAction::Test) => {
            let reports = match paths {
                Some(paths) => PolicySet::test_paths(paths),
                None => PolicySet::builtin().map(|set| set.run_tests()),
            };
            let reports = match reports {
                Ok(reports) => reports,
                Err(problems) => return Ok(print_problems(problems)),
            };
            let failed = reports.iter().filter(|r| !r.passed()).count();
            match format {
                TableOrJson::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
                TableOrJson::Table => {
                    for report in &reports {
                        for outcome in &report.outcomes {
                            println!(
                                "{} {} {}[{}] ({}:{}){}",
                                if outcome.ok { "ok  " } else { "FAIL" },
                                report.policy,
                                outcome.expect,
                                outcome.index,
                                report.file.display(),
                                outcome.line,
                                if outcome.ok {
                                    String::new()
                                } else {
                                    format!(": {}", outcome.detail)
                                }
                            );
                        }
                    }
                    let cases: usize = reports.iter().map(|r| r.outcomes.len()).sum();
                    println!(
                        "{} policies, {cases} test objects, {failed} policies failing",
                        reports.len()
                    );
                }
            }
            Ok(if failed == 0 { exit::OK } else { exit::FOUND })
        }
    }
}

/// `soc2:CC6.1 cis:5.2.2 kubescape:C-0057 …` for the table.
fn crosswalk(controls: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for (framework, ids) in controls.as_object().into_iter().flatten() {
        for id in ids.as_array().into_iter().flatten() {
            let id = match id {
                serde_json::Value::String(s) => s.clone(),
                other => other["id"].as_str().unwrap_or_default().to_string(),
            };
            parts.push(format!("{framework}:{id}"));
        }
    }
    parts.join(" ")
}

fn check_config(path: &Path) -> anyhow::Result<i32> {
    match config::load(path) {
        Ok(config) if !config.policies.is_empty() => {
            if let Err(problems) = crate::policy::PolicySet::load(&config.policies) {
                for problem in &problems {
                    println!("{problem}");
                }
                eprintln!(
                    "{}: {} problem(s) in the policy packs",
                    path.display(),
                    problems.len()
                );
                return Ok(exit::USAGE);
            }
            check_config_valid(path, &config)
        }
        Ok(config) => check_config_valid(path, &config),
        Err(errors) => {
            for problem in &errors.problems {
                println!("{problem}");
            }
            eprintln!(
                "{}: {} problem{}",
                path.display(),
                errors.problems.len(),
                if errors.problems.len() == 1 { "" } else { "s" }
            );
            Ok(exit::USAGE)
        }
    }
}

fn check_config_valid(path: &Path, config: &Config) -> anyhow::Result<i32> {
    println!(
        "{}: configuration is valid ({} sources, {} clusters, {} apps, {} app sets)",
        path.display(),
        config.sources.len(),
        config.clusters.len(),
        config.apps.len(),
        config.app_sets.len()
    );
    Ok(exit::OK)
}

/// Runs a scan, prints it and returns the exit code of the contract.
pub fn run_scan(
    config: &Config,
    options: &ScanOptions,
    format: ScanFormat,
    out: Option<&Path>,
    fail_on: FailOn,
    include_in_sync: bool,
) -> anyhow::Result<i32> {
    let outcome = match scan::run(config, options) {
        Ok(outcome) => outcome,
        Err(ScanFailure::Usage(message)) => {
            eprintln!("error: {message}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let mut shown = outcome.result.clone();
    if !include_in_sync {
        shown.findings.retain(|f| f.status != Status::InSync);
    }
    let text = match format {
        ScanFormat::Json => crate::report::json::render(&outcome.result, include_in_sync),
        ScanFormat::Table => table(&shown),
        ScanFormat::Sarif => crate::report::sarif::render(&outcome.result),
        ScanFormat::Junit => crate::report::junit::render(&shown),
    };
    write_output(out, &text)?;
    if let Some(db) = &outcome.database {
        tracing::info!(
            "scan {} recorded in {}",
            outcome.result.scan_id,
            db.display()
        );
    }
    Ok(exit_code(&outcome.result, fail_on))
}

/// 1 when something matched `--fail-on`, else 3 when a part of the scan failed, else 0.
pub fn exit_code(result: &ScanResult, fail_on: FailOn) -> i32 {
    let name = match fail_on {
        FailOn::None => "none",
        FailOn::Modified => "modified",
        FailOn::Missing => "missing",
        FailOn::Orphaned => "orphaned",
        FailOn::Any => "any",
    };
    if result
        .findings
        .iter()
        .any(|f| scan::fails_on(f.status, name))
    {
        exit::FOUND
    } else if !result.errors.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

fn write_output(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// One line per finding, then errors, then the summary line.
pub fn table(result: &ScanResult) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "STATUS".into(),
        "CLUSTER".into(),
        "APP".into(),
        "KIND".into(),
        "NAME".into(),
        "DETAIL".into(),
    ]];
    for f in &result.findings {
        let kind = if f.group.is_empty() {
            f.kind.clone()
        } else {
            format!("{}.{}", f.kind, f.group)
        };
        let name = match &f.namespace {
            Some(ns) => format!("{ns}/{}", f.name),
            None => f.name.clone(),
        };
        let mut detail: Vec<String> = f.changes.iter().take(3).map(|c| c.path.clone()).collect();
        if f.changes.len() > 3 {
            detail.push(format!("+{} more", f.changes.len() - 3));
        }
        if let Some(reason) = &f.reason {
            detail.push(reason.clone());
        }
        if !f.managers.is_empty() {
            detail.push(format!("by {}", f.managers.join(",")));
        }
        rows.push([
            f.status.to_string(),
            f.cluster.clone(),
            f.app.clone(),
            kind,
            name,
            detail.join(" "),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (i, cell) in row.iter().take(5).enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    if rows.len() > 1 {
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                if i < 5 {
                    text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                } else {
                    text.push_str(cell);
                }
            }
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
            text.push('\n');
        }
    }
    for e in &result.errors {
        let mut scope = Vec::new();
        if let Some(c) = &e.cluster {
            scope.push(format!("cluster {c}"));
        }
        if let Some(a) = &e.app {
            scope.push(format!("app {a}"));
        }
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!(" ({})", scope.join(", "))
        };
        text.push_str(&format!(
            "error [{}]{scope}: {}\n",
            e.stage.as_str(),
            e.message
        ));
    }
    let s = &result.summary;
    text.push_str(&format!(
        "scan {}: {} resources, {} in sync, {} modified, {} missing, {} orphaned, {} ignored, {} errors, {} policy violations\n",
        result.scan_id, s.resources, s.in_sync, s.modified, s.missing, s.orphaned, s.ignored, s.errors, s.policy_violations
    ));
    text
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::open(&config.database)?)
}

fn report(
    config: &Config,
    scan: &str,
    format: ReportFormat,
    out: Option<&Path>,
    include_in_sync: bool,
) -> anyhow::Result<i32> {
    let store = open_store(config)?;
    let id = if scan == "latest" {
        match store.latest_scan_id()? {
            Some(id) => id,
            None => {
                eprintln!(
                    "error: no scan recorded yet in {}",
                    config.database.display()
                );
                return Ok(exit::USAGE);
            }
        }
    } else {
        match scan.parse::<i64>() {
            Ok(id) => id,
            Err(_) => {
                eprintln!("error: --scan takes a scan id or `latest`, not {scan:?}");
                return Ok(exit::USAGE);
            }
        }
    };
    let Some(result) = store.load(id)? else {
        eprintln!("error: no scan {id} in {}", config.database.display());
        return Ok(exit::USAGE);
    };
    let text = match format {
        ReportFormat::Json => crate::report::json::render(&result, include_in_sync),
        ReportFormat::Html => html_report(&store, &result)?,
        ReportFormat::Sarif => crate::report::sarif::render(&result),
        ReportFormat::Junit => {
            let mut shown = result.clone();
            if !include_in_sync {
                shown.findings.retain(|f| f.status != Status::InSync);
            }
            crate::report::junit::render(&shown)
        }
    };
    write_output(out, &text)?;
    Ok(exit::OK)
}

/// The HTML evidence report of a stored scan, with the trend of the scans before it.
pub fn html_report(store: &Store, result: &ScanResult) -> anyhow::Result<String> {
    let history: Vec<_> = store
        .history(200)?
        .into_iter()
        .filter(|row| row.scan_id <= result.scan_id)
        .collect();
    let (config_digest, row_hash) = store.scan_meta(result.scan_id)?.unwrap_or_default();
    let database = store.path().display().to_string();
    // The period is the trend's: the last 30 scans up to this one.
    let period_start = history
        .iter()
        .take(30)
        .map(|row| row.scan_id)
        .min()
        .unwrap_or(result.scan_id);
    let period_commits = store.trail_between(period_start, result.scan_id)?;
    let period_from = store
        .period_from(period_start)?
        .unwrap_or_else(|| result.started_at.clone());
    let monitoring = store.coverage(&period_from, &result.finished_at)?;
    let context = crate::report::html::Context {
        result,
        period_commits: &period_commits,
        period_start,
        history: &history,
        row_hash: &row_hash,
        database: &database,
        config_digest: &config_digest,
        monitoring: &monitoring,
        period_from: &period_from,
    };
    let policy_period = store.policy_period(period_start, result.scan_id)?;
    crate::report::html::render_with_period(&context, Some(&policy_period))
        .map_err(|e| anyhow::anyhow!(e))
}

fn history(config: &Config, format: TableOrJson, limit: usize) -> anyhow::Result<i32> {
    let store = open_store(config)?;
    let rows = store.history(limit)?;
    let text = match format {
        TableOrJson::Json => serde_json::to_string_pretty(&rows)? + "\n",
        TableOrJson::Table => {
            let mut text = format!(
                "{:<6}  {:<20}  {:>9}  {:>7}  {:>8}  {:>7}  {:>8}  {:>7}  {:>6}  {:<4}  {}\n",
                "SCAN",
                "STARTED",
                "RESOURCES",
                "IN_SYNC",
                "MODIFIED",
                "MISSING",
                "ORPHANED",
                "IGNORED",
                "ERRORS",
                "EXIT",
                "FILTERS"
            );
            for r in &rows {
                let s = &r.summary;
                text.push_str(&format!(
                    "{:<6}  {:<20}  {:>9}  {:>7}  {:>8}  {:>7}  {:>8}  {:>7}  {:>6}  {:<4}  {}\n",
                    r.scan_id,
                    r.started_at,
                    s.resources,
                    s.in_sync,
                    s.modified,
                    s.missing,
                    s.orphaned,
                    s.ignored,
                    s.errors,
                    r.exit_code,
                    r.filters
                ));
            }
            text.trim_end_matches(' ').to_string()
        }
    };
    write_output(None, &text)?;
    Ok(exit::OK)
}

/// Why a per-app command found no app: the name (with the nearest configured one) and the
/// cluster asked for.
fn unknown_app(config: &Config, app: &str, cluster: Option<&str>) -> String {
    let names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
    let on = cluster
        .map(|c| format!(" on cluster {c:?}"))
        .unwrap_or_default();
    match config::suggest(app, names.iter().copied()) {
        Some(near) => format!("no app named {app:?}{on} (did you mean {near:?}?)"),
        None if names.is_empty() => format!("no app named {app:?}{on}"),
        None => format!("no app named {app:?}{on} (apps: {})", names.join(", ")),
    }
}

/// Resolves the single app a per-app command is about, or explains why it cannot.
fn single_app_options(app: &str, cluster: Option<&str>) -> ScanOptions {
    ScanOptions {
        apps: vec![glob_literal(app)],
        clusters: cluster.map(|c| vec![glob_literal(c)]).unwrap_or_default(),
        progress: false,
        record: false,
        self_heal_only: false,
    }
}

/// Escapes glob metacharacters so a name matches only itself.
fn glob_literal(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}') {
            escaped.push('[');
            escaped.push(c);
            escaped.push(']');
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn diff(config: &Config, app: &str, cluster: Option<&str>) -> anyhow::Result<i32> {
    let options = single_app_options(app, cluster);
    let outcome = match scan::run(config, &options) {
        Ok(outcome) => outcome,
        Err(ScanFailure::Usage(_)) => {
            eprintln!("error: {}", unknown_app(config, app, cluster));
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let result = &outcome.result;
    let mut text = String::new();
    for f in &result.findings {
        match f.status {
            Status::InSync => {}
            Status::Modified | Status::Ignored => {
                if let Some(diff) = &f.diff {
                    if f.status == Status::Ignored {
                        text.push_str(&format!(
                            "# {} {}/{}: differences ignored by rule\n",
                            f.kind,
                            f.namespace.as_deref().unwrap_or("-"),
                            f.name
                        ));
                    }
                    text.push_str(diff);
                    if !diff.ends_with('\n') {
                        text.push('\n');
                    }
                }
            }
            Status::Missing => text.push_str(&format!(
                "# missing from the cluster: {} {}{}\n",
                f.kind,
                f.namespace
                    .as_ref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                f.name
            )),
            Status::Orphaned => text.push_str(&format!(
                "# orphaned (in the cluster, not in Git): {} {}{}\n",
                f.kind,
                f.namespace
                    .as_ref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                f.name
            )),
        }
    }
    for e in &result.errors {
        eprintln!("error [{}]: {}", e.stage.as_str(), e.message);
    }
    write_output(None, &text)?;
    Ok(if !result.errors.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

fn render(
    config: &Config,
    app: &str,
    cluster: Option<&str>,
    format: ObjectFormat,
) -> anyhow::Result<i32> {
    let options = single_app_options(app, cluster);
    let rendered = match scan::render_only(config, &options) {
        Ok(rendered) => rendered,
        Err(ScanFailure::Usage(_)) => {
            eprintln!("error: {}", unknown_app(config, app, cluster));
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let mut failed = false;
    let mut text = String::new();
    let mut objects = Vec::new();
    for (planned, result) in &rendered {
        match result {
            Ok(list) => objects.extend(list.iter().map(|r| r.body.clone())),
            Err(message) => {
                failed = true;
                eprintln!(
                    "error: app {} on {}: {message}",
                    planned.name, planned.cluster
                );
            }
        }
    }
    match format {
        ObjectFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            text.push_str(&serde_json::to_string_pretty(&list)?);
            text.push('\n');
        }
        ObjectFormat::Yaml => {
            for object in &objects {
                text.push_str("---\n");
                text.push_str(&serde_yaml::to_string(object)?);
            }
        }
    }
    write_output(None, &text)?;
    Ok(if failed { exit::PARTIAL } else { exit::OK })
}

fn clusters(config: &Config, format: TableOrJson) -> anyhow::Result<i32> {
    let checks = scan::check_clusters(config);
    let text = match format {
        TableOrJson::Json => serde_json::to_string_pretty(&checks)? + "\n",
        TableOrJson::Table => {
            let yes_no = |v: Option<bool>| match v {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let mut text = format!(
                "{:<20}  {:<8}  {:<11}  {:<10}  {:>7}  {:<4}  {:<3}  {:<5}  {:<30}  {}\n",
                "NAME",
                "KIND",
                "STATUS",
                "VERSION",
                "OBJECTS",
                "LIST",
                "GET",
                "PATCH",
                "USER",
                "DETAIL"
            );
            for c in &checks {
                text.push_str(&format!(
                    "{:<20}  {:<8}  {:<11}  {:<10}  {:>7}  {:<4}  {:<3}  {:<5}  {:<30}  {}\n",
                    c.name,
                    c.kind,
                    c.status,
                    c.version.as_deref().unwrap_or("-"),
                    c.objects
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    yes_no(c.can_list),
                    yes_no(c.can_get),
                    yes_no(c.can_patch),
                    c.user.as_deref().unwrap_or("-"),
                    c.detail
                ));
            }
            text
        }
    };
    write_output(None, &text)?;
    Ok(if checks.iter().all(|c| c.status == "ok") {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// A fresh comparison of the opted-in apps, recorded as a scan, then self-heal on it.
fn heal(
    config: &Config,
    apps: Vec<String>,
    dry_run: bool,
    format: TableOrJson,
    out: Option<&Path>,
) -> anyhow::Result<i32> {
    let options = ScanOptions {
        apps,
        clusters: Vec::new(),
        progress: true,
        record: true,
        self_heal_only: true,
    };
    let outcome = match scan::run(config, &options) {
        Ok(outcome) => outcome,
        Err(ScanFailure::Usage(message)) => {
            eprintln!("error: {message}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let heal_run = crate::heal::run(config, &outcome, dry_run);
    let text = match format {
        TableOrJson::Json => serde_json::to_string_pretty(&heal_run)? + "\n",
        TableOrJson::Table => heal_table(&heal_run, &outcome.result),
    };
    write_output(out, &text)?;
    Ok(if heal_run.failed() || !outcome.result.errors.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

/// One line per action with its patch operations below it, the scan's errors, a summary.
fn heal_table(heal_run: &crate::heal::HealRun, scan: &ScanResult) -> String {
    let mut text = String::new();
    for a in &heal_run.actions {
        let kind = if a.group.is_empty() {
            a.kind.clone()
        } else {
            format!("{}.{}", a.kind, a.group)
        };
        let name = match &a.namespace {
            Some(ns) => format!("{ns}/{}", a.name),
            None => a.name.clone(),
        };
        text.push_str(&format!(
            "{:<8}  {:<7}  {}  {}  {kind}  {name}",
            a.status, a.action, a.cluster, a.app
        ));
        if let Some(reason) = &a.reason {
            text.push_str(&format!(": {reason}"));
        }
        text.push('\n');
        for op in a
            .patch
            .as_ref()
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            text.push_str(&format!("    {op}\n"));
        }
    }
    for e in &scan.errors {
        text.push_str(&format!("error [{}]: {}\n", e.stage.as_str(), e.message));
    }
    text.push_str(&format!(
        "heal{} after scan {}: {}\n",
        if heal_run.dry_run { " (dry run)" } else { "" },
        heal_run.scan_id,
        heal_run.headline()
    ));
    text
}
