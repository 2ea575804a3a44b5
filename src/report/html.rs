//! The HTML evidence report: one self-contained file (inline CSS and SVG, no script, no
//! external fetch) that reads on screen and on paper. Everything from Git and clusters is
//! untrusted and escaped by the template engine.

use crate::model::{ExpiredWaiverNote, Finding, HealAction, PolicyResult, ScanResult, Status};
use crate::store::{Coverage, PolicyPeriod, ScanRow};
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
    compliance: Compliance<'a>,
}

/// Violations listed in the report's table; the rest are counted, so that a scan of a
/// large fleet still gives a file a browser opens and a printer prints.
const MAX_VIOLATIONS: usize = 500;

/// The "Compliance policies" section: what the scan's policies found, by severity and by
/// the SOC 2 criterion each policy evidences.
struct Compliance<'a> {
    /// Policies the scan evaluated (its catalog); 0 for a scan that recorded none.
    evaluated: usize,
    packs: String,
    severities: Vec<SeverityRow>,
    criteria: Vec<Criterion>,
    /// Violated policies the catalog does not list, so no criterion can be named.
    unmapped: Vec<PolicyStatus>,
    /// Worst first: unwaived before waived, then by severity.
    violations: Vec<&'a PolicyResult>,
    violations_total: usize,
    expired_waivers: &'a [ExpiredWaiverNote],
    /// Whether the per-policy history of the period is shown.
    period: bool,
}

impl Compliance<'_> {
    fn is_empty(&self) -> bool {
        self.evaluated == 0 && self.violations_total == 0 && self.expired_waivers.is_empty()
    }

    fn violations_shown(&self) -> usize {
        self.violations.len()
    }
}

struct SeverityRow {
    severity: String,
    unwaived: usize,
    waived: usize,
}

/// A SOC 2 criterion with the policies that evidence it.
struct Criterion {
    id: String,
    policies: Vec<PolicyStatus>,
    /// Policies of the criterion with an unwaived violation in this scan.
    failing: usize,
}

/// One policy's standing in this scan and over the report's period.
struct PolicyStatus {
    id: String,
    title: String,
    severity: String,
    /// `compliant`, `N violations` (with `, M waived` when some are), or `waived`.
    status: String,
    /// CSS class of the status: `ok`, `missing` (violated) or `ignored` (waived).
    class: &'static str,
    /// Over the period: `violated in N of M scans` or `no violation in M scans`.
    period: String,
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
    render_with_period(context, None)
}

/// The report with, for each policy, how it fared over the scans of the period (as
/// [`crate::store::Store::policy_period`] counts it) next to its status in this scan.
pub fn render_with_period(
    context: &Context,
    policy_period: Option<&PolicyPeriod>,
) -> Result<String, String> {
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
        compliance: compliance(context, policy_period),
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

/// Known severities, most severe first; others sort after them by name.
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

fn severity_rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(SEVERITIES.len())
}

fn compliance<'a>(context: &Context<'a>, period: Option<&PolicyPeriod>) -> Compliance<'a> {
    let result = context.result;
    // Per policy: (unwaived, waived) violations of this scan.
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut severities: Vec<SeverityRow> = SEVERITIES
        .iter()
        .map(|s| SeverityRow {
            severity: s.to_string(),
            unwaived: 0,
            waived: 0,
        })
        .collect();
    for p in &result.policy_results {
        let entry = counts.entry(p.policy.as_str()).or_default();
        let row = match severities.iter_mut().position(|r| r.severity == p.severity) {
            Some(i) => &mut severities[i],
            None => {
                severities.push(SeverityRow {
                    severity: p.severity.clone(),
                    unwaived: 0,
                    waived: 0,
                });
                severities.last_mut().expect("just pushed")
            }
        };
        if p.waived {
            entry.1 += 1;
            row.waived += 1;
        } else {
            entry.0 += 1;
            row.unwaived += 1;
        }
    }
    severities[SEVERITIES.len()..].sort_by(|a, b| a.severity.cmp(&b.severity));

    let status = |id: &str, title: &str, severity: &str| {
        let (unwaived, waived) = counts.get(id).copied().unwrap_or_default();
        let (status, class) = match (unwaived, waived) {
            (0, 0) => ("compliant".to_string(), "ok"),
            (0, _) => ("waived".to_string(), "ignored"),
            (n, 0) => (plural(n, "violation"), "missing"),
            (n, w) => (format!("{}, {w} waived", plural(n, "violation")), "missing"),
        };
        let period = period.map_or_else(String::new, |period| {
            let evaluated = period.evaluated.get(id).copied().unwrap_or(0).max(1);
            match period.violated.get(id).copied().unwrap_or(0) {
                0 => format!("no violation in {}", plural(evaluated, "scan")),
                n => format!("violated in {n} of {}", plural(evaluated.max(n), "scan")),
            }
        });
        PolicyStatus {
            id: id.to_string(),
            title: title.to_string(),
            severity: severity.to_string(),
            status,
            class,
            period,
        }
    };

    let mut by_criterion: BTreeMap<(String, Vec<u32>, String), Vec<PolicyStatus>> = BTreeMap::new();
    let mut packs: Vec<&str> = Vec::new();
    for rule in &result.policies {
        if !packs.contains(&rule.pack.as_str()) {
            packs.push(&rule.pack);
        }
        for criterion in rule.soc2() {
            by_criterion
                .entry(natural_key(criterion))
                .or_default()
                .push(status(&rule.id, &rule.title, &rule.severity));
        }
    }
    let criteria = by_criterion
        .into_iter()
        .map(|((_, _, id), mut policies)| {
            policies.sort_by(|a, b| {
                (severity_rank(&a.severity), &a.id).cmp(&(severity_rank(&b.severity), &b.id))
            });
            let failing = policies.iter().filter(|p| p.class == "missing").count();
            Criterion {
                id,
                policies,
                failing,
            }
        })
        .collect();
    let mut unmapped = Vec::new();
    for p in &result.policy_results {
        let listed = result.policies.iter().any(|r| r.id == p.policy)
            || unmapped.iter().any(|u: &PolicyStatus| u.id == p.policy);
        if !listed {
            unmapped.push(status(&p.policy, "", &p.severity));
        }
    }
    unmapped.sort_by(|a, b| a.id.cmp(&b.id));

    let mut violations: Vec<&PolicyResult> = result.policy_results.iter().collect();
    violations.sort_by(|a, b| {
        (a.waived, severity_rank(&a.severity), &a.policy).cmp(&(
            b.waived,
            severity_rank(&b.severity),
            &b.policy,
        ))
    });
    violations.truncate(MAX_VIOLATIONS);
    Compliance {
        evaluated: result.policies.len(),
        packs: packs.join(", "),
        severities,
        criteria,
        unmapped,
        violations,
        violations_total: result.policy_results.len(),
        expired_waivers: &result.expired_waivers,
        period: period.is_some(),
    }
}

/// `1 violation`, `3 violations`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Sorts criteria as people read them: `CC6.2` before `CC6.10`, `CC` before `PI`.
fn natural_key(id: &str) -> (String, Vec<u32>, String) {
    let prefix: String = id.chars().take_while(|c| !c.is_ascii_digit()).collect();
    let numbers = id[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (prefix, numbers, id.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sarif::tests::{catalog, fixture, policy, HOSTILE};

    fn page(result: &ScanResult, period: Option<&PolicyPeriod>) -> String {
        render_with_period(
            &Context {
                result,
                period_commits: &[],
                period_start: result.scan_id,
                history: &[],
                row_hash: "",
                database: "plumbline.db",
                config_digest: "",
                monitoring: &Coverage::default(),
                period_from: "2026-11-01T00:00:00Z",
            },
            period,
        )
        .expect("renders")
    }

    #[test]
    fn criteria_sort_as_people_read_them() {
        let mut ids = vec!["CC6.10", "PI1.1", "CC6.8", "A1.2", "CC10.1", "CC6.1"];
        ids.sort_by_key(|id| natural_key(id));
        assert_eq!(ids, ["A1.2", "CC6.1", "CC6.8", "CC6.10", "CC10.1", "PI1.1"]);
    }

    #[test]
    fn compliance_section_maps_policies_to_criteria() {
        let mut scan = fixture();
        scan.policies = catalog();
        let period = PolicyPeriod {
            evaluated: [
                ("no-privileged".to_string(), 3),
                ("no-latest-tag".into(), 3),
            ]
            .into(),
            violated: [("no-latest-tag".to_string(), 2)].into(),
        };
        let html = page(&scan, Some(&period));
        let privileged = html
            .find("data-criterion=\"CC6.1\" data-policy=\"no-privileged\"")
            .expect("CC6.1 lists no-privileged");
        let row = &html[privileged..privileged + html[privileged..].find("</tr>").expect("row")];
        assert!(row.contains(">waived<"), "{row}");
        assert!(row.contains("no violation in 3 scans"), "{row}");
        let latest = html
            .find("data-criterion=\"CC8.1\" data-policy=\"no-latest-tag\"")
            .expect("CC8.1 lists no-latest-tag");
        let row = &html[latest..latest + html[latest..].find("</tr>").expect("row")];
        assert!(row.contains(">1 violation<"), "{row}");
        assert!(row.contains("violated in 2 of 3 scans"), "{row}");
        // Violated policies outside the catalog are listed without a criterion.
        assert!(html.contains("Policies without a recorded crosswalk"));
        assert!(html.contains("data-policy=\"resource-limits\""));
        // Without period data the column is left out.
        assert!(!page(&scan, None).contains("violated in"));
    }

    #[test]
    fn violations_are_escaped_and_capped() {
        let mut scan = fixture();
        scan.policy_results = (0..MAX_VIOLATIONS + 20)
            .map(|i| {
                let mut p = policy("no-latest-tag", "high", &format!("api-{i}"), i % 2 == 0);
                p.message = HOSTILE.to_string();
                p
            })
            .collect();
        scan.policy_results[MAX_VIOLATIONS + 19].severity = "critical".into();
        let html = page(&scan, None);
        assert!(!html.contains("<script>alert"));
        assert_eq!(html.matches("data-violation=").count(), MAX_VIOLATIONS);
        assert!(html.contains(&format!(
            "The first {MAX_VIOLATIONS} of {} violations are listed",
            MAX_VIOLATIONS + 20
        )));
        // Unwaived and most severe first: the one critical violation leads the table.
        let first = html.find("data-violation=").expect("rows");
        assert!(html[first..].starts_with("data-violation=\"no-latest-tag\" data-waived=\"false\""));
        assert!(
            html[first..first + 400].contains("critical"),
            "{}",
            &html[first..first + 400]
        );
    }

    #[test]
    fn a_scan_without_policies_says_so() {
        let mut scan = fixture();
        scan.policy_results.clear();
        let html = page(&scan, None);
        assert!(html.contains("No compliance policy was configured for this scan."));
    }
}
