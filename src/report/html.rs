//! The HTML evidence report: one self-contained file (inline CSS and SVG, no script, no
//! external fetch) that reads on screen and on paper. Everything from Git and clusters is
//! untrusted and escaped by the template engine.

use crate::model::{Finding, HealAction, ScanResult, Status};
use crate::store::{Coverage, ScanRow};
use askama::Template;
use std::collections::BTreeMap;

/// What the report shows besides the scan itself.
pub struct Context<'a> {
    pub result: &'a ScanResult,
    /// The commits recorded by the scans of the period the report covers, newest first.
    pub period_commits: &'a [crate::model::TrailCommit],
    /// The first scan of that period.
    pub period_start: i64,
    /// Stored scans, newest first, for the trend chart (the last 30 are drawn).
    pub history: &'a [ScanRow],
    pub row_hash: &'a str,
    pub database: &'a str,
    pub config_digest: &'a str,
    /// How the daemon's schedule was kept over the period, from its first scheduled tick
    /// (or first scan) on.
    pub monitoring: &'a Coverage,
    pub period_from: &'a str,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Report<'a> {
    scan: &'a ScanResult,
    version: &'static str,
    generated_at: String,
    config_digest: &'a str,
    row_hash: &'a str,
    database: &'a str,
    clusters: Vec<Counts>,
    apps: Vec<Counts>,
    drifted: Vec<DriftView<'a>>,
    missing: Vec<&'a Finding>,
    orphaned: Vec<&'a Finding>,
    trend_svg: String,
    verdict: &'static str,
    verdict_class: &'static str,
    period_commits: &'a [crate::model::TrailCommit],
    period_start: i64,
    monitoring: &'a Coverage,
    period_from: &'a str,
    heal: Vec<HealView<'a>>,
}

/// A self-heal action with its patch, one operation per line.
struct HealView<'a> {
    action: &'a HealAction,
    patch: String,
}

/// Counts by status for one cluster or app.
#[derive(Default)]
struct Counts {
    name: String,
    cluster: String,
    resources: usize,
    in_sync: usize,
    modified: usize,
    missing: usize,
    orphaned: usize,
    ignored: usize,
    policy_violations: usize,
}

struct DriftView<'a> {
    finding: &'a Finding,
    id: String,
    changes: Vec<ChangeView>,
}

struct ChangeView {
    path: String,
    desired: String,
    live: String,
}

pub fn render(context: &Context) -> Result<String, String> {
    let result = context.result;
    let mut clusters: BTreeMap<String, Counts> = BTreeMap::new();
    let mut apps: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for cluster in &result.clusters {
        clusters
            .entry(cluster.name.clone())
            .or_insert_with(|| Counts {
                name: cluster.name.clone(),
                ..Counts::default()
            });
    }
    for f in &result.findings {
        let cluster = clusters.entry(f.cluster.clone()).or_insert_with(|| Counts {
            name: f.cluster.clone(),
            ..Counts::default()
        });
        add(cluster, f.status);
        let app = apps
            .entry((f.app.clone(), f.cluster.clone()))
            .or_insert_with(|| Counts {
                name: f.app.clone(),
                cluster: f.cluster.clone(),
                ..Counts::default()
            });
        add(app, f.status);
    }
    for violation in result.policy_results.iter().filter(|p| !p.waived) {
        if let Some(cluster) = clusters.get_mut(&violation.cluster) {
            cluster.policy_violations += 1;
        }
        if let Some(app) = violation
            .app
            .as_ref()
            .and_then(|app| apps.get_mut(&(app.clone(), violation.cluster.clone())))
        {
            app.policy_violations += 1;
        }
    }
    let drifted = result
        .findings
        .iter()
        .filter(|f| matches!(f.status, Status::Modified | Status::Ignored))
        .enumerate()
        .map(|(i, f)| DriftView {
            finding: f,
            id: format!("drift-{i}"),
            changes: f
                .changes
                .iter()
                .map(|c| ChangeView {
                    path: c.path.clone(),
                    desired: shown_value(c.desired.as_ref()),
                    live: shown_value(c.live.as_ref()),
                })
                .collect(),
        })
        .collect();
    let s = &result.summary;
    let verdict = if s.modified + s.missing + s.orphaned > 0 {
        "drift found"
    } else if !result.errors.is_empty() {
        "incomplete"
    } else {
        "in sync"
    };
    let report = Report {
        scan: result,
        version: env!("CARGO_PKG_VERSION"),
        generated_at: crate::scan::now(),
        config_digest: context.config_digest,
        row_hash: context.row_hash,
        database: context.database,
        clusters: clusters.into_values().collect(),
        apps: apps.into_values().collect(),
        drifted,
        missing: result
            .findings
            .iter()
            .filter(|f| f.status == Status::Missing)
            .collect(),
        orphaned: result
            .findings
            .iter()
            .filter(|f| f.status == Status::Orphaned)
            .collect(),
        trend_svg: trend_svg(context.history),
        period_commits: context.period_commits,
        period_start: context.period_start,
        monitoring: context.monitoring,
        period_from: context.period_from,
        heal: result
            .heal_actions
            .iter()
            .map(|action| HealView {
                action,
                patch: action
                    .patch
                    .as_ref()
                    .and_then(|p| p.as_array())
                    .into_iter()
                    .flatten()
                    .map(|op| op.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            })
            .collect(),
        verdict,
        verdict_class: match verdict {
            "drift found" => "drift-found",
            "incomplete" => "incomplete",
            _ => "in-sync",
        },
    };
    report
        .render()
        .map_err(|e| format!("cannot render the HTML report: {e}"))
}

fn add(counts: &mut Counts, status: Status) {
    counts.resources += 1;
    match status {
        Status::InSync => counts.in_sync += 1,
        Status::Modified => counts.modified += 1,
        Status::Missing => counts.missing += 1,
        Status::Orphaned => counts.orphaned += 1,
        Status::Ignored => counts.ignored += 1,
    }
}

/// A change value as one line of text; long values are cut, the diff shows them whole.
fn shown_value(value: Option<&serde_json::Value>) -> String {
    const LIMIT: usize = 300;
    let text = match value {
        None => return "(absent)".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// An inline SVG bar chart of drift (modified + missing + orphaned) over the last 30 scans,
/// oldest on the left. Built from numbers only, so it needs no escaping.
fn trend_svg(history: &[ScanRow]) -> String {
    let rows: Vec<&ScanRow> = history.iter().take(30).rev().collect();
    if rows.is_empty() {
        return String::new();
    }
    let (width, height, bar) = (600.0_f64, 120.0_f64, 600.0 / 30.0);
    let max = rows
        .iter()
        .map(|r| r.summary.modified + r.summary.missing + r.summary.orphaned)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {}\" role=\"img\" aria-label=\"drift over the last {} scans\">",
        height + 16.0,
        rows.len()
    );
    for (i, row) in rows.iter().enumerate() {
        let s = &row.summary;
        let x = i as f64 * bar + 2.0;
        let mut y = height;
        for (count, class) in [
            (s.modified, "modified"),
            (s.missing, "missing"),
            (s.orphaned, "orphaned"),
        ] {
            if count == 0 {
                continue;
            }
            let h = count as f64 / max * (height - 10.0);
            y -= h;
            svg.push_str(&format!(
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>scan {}: {count} {class}</title></rect>",
                bar - 4.0,
                row.scan_id
            ));
        }
        if s.modified + s.missing + s.orphaned == 0 {
            svg.push_str(&format!(
                "<rect class=\"clean\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"2\"><title>scan {}: no drift</title></rect>",
                height - 2.0,
                bar - 4.0,
                row.scan_id
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + (bar - 4.0) / 2.0,
            height + 12.0,
            row.scan_id
        ));
    }
    svg.push_str("</svg>");
    svg
}
