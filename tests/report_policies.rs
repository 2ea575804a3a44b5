//! Reports of a scan that evaluated the shipped policy packs: SARIF rules carry each
//! policy's title, security severity and crosswalk, waived results are suppressed, and the
//! HTML report maps the violations to SOC 2 criteria and lists expired waivers.

mod support;

use serde_json::Value;
use support::Workspace;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: store
  labels: {app.kubernetes.io/name: web}
  annotations:
    plumbline.dev/waive: liveness-probe
    plumbline.dev/waive-reason: the vendor image has no health endpoint
spec:
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: web}
  template:
    metadata:
      labels: {app.kubernetes.io/name: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/store/web:latest
          securityContext: {privileged: true}
          ports: [{containerPort: 8080}]
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web-nodeport
  namespace: store
spec:
  type: NodePort
  selector: {app.kubernetes.io/name: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
"#;

const CONFIG: &str = r#"database: state/plumbline.db
reports_dir: reports
policies: [policies/]
sources:
  - name: gitops
    url: repo
    revision: main
clusters:
  - name: prod
    snapshot: live
apps:
  - name: store
    source: gitops
    path: apps/store
    cluster: prod
    namespace: store
waivers:
  - policy: readiness-probe
    kind: Deployment
    name: web
    reason: readiness is gated by the mesh sidecar
    approved_by: ana.ruiz@example.com
    expires: 2099-12-31
  - policy: no-nodeport-service
    kind: Service
    name: web-nodeport
    reason: temporary access for the load test
    approved_by: ben@example.com
    expires: 2024-01-31
"#;

/// A repository with a privileged Deployment on `:latest` and a NodePort Service, the same
/// objects live in cluster `prod`, and the shipped policy packs.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.repo_with(
        "Ana Ruiz",
        "ana.ruiz@example.com",
        "store: web front end",
        vec![
            (
                "apps/store/deployment.yaml".into(),
                DEPLOYMENT.as_bytes().to_vec(),
            ),
            (
                "apps/store/service.yaml".into(),
                SERVICE.as_bytes().to_vec(),
            ),
        ],
    );
    ws.write("live/store.yaml", &format!("{DEPLOYMENT}---\n{SERVICE}"));
    support::copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &ws.path("policies"),
    );
    ws.write("plumbline.yaml", CONFIG);
    ws
}

fn scan(ws: &Workspace) -> Value {
    let (code, result) = ws.scan_json(&[]);
    assert!(code >= 0, "scan ran: {result}");
    let violated = |policy: &str, waived: bool| {
        result["policy_results"]
            .as_array()
            .expect("policy results")
            .iter()
            .any(|p| p["policy"] == policy && p["waived"] == waived)
    };
    assert!(violated("no-privileged", false), "{result:#}");
    assert!(violated("no-latest-tag", false));
    assert!(
        violated("liveness-probe", true),
        "annotation waiver applies"
    );
    assert!(violated("readiness-probe", true), "config waiver applies");
    assert!(
        violated("no-nodeport-service", false),
        "expired waiver does not"
    );
    assert_eq!(
        result["expired_waivers"][0]["policy"], "no-nodeport-service",
        "{result:#}"
    );
    result
}

#[test]
fn sarif_rules_carry_crosswalk_and_security_severity() {
    let ws = workspace();
    let result = scan(&ws);
    let output = ws.run(&["report", "--format", "sarif"]);
    assert_eq!(output.status.code(), Some(0));
    let sarif: Value = serde_json::from_slice(&output.stdout).expect("SARIF is JSON");
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    let rule = |id: &str| {
        rules
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("rule {id}"))
    };
    let tags = |id: &str| -> Vec<String> {
        rule(id)["properties"]["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect()
    };

    let privileged = rule("no-privileged");
    assert_eq!(
        privileged["shortDescription"]["text"],
        "Containers must not run privileged"
    );
    assert_eq!(privileged["defaultConfiguration"]["level"], "error");
    assert_eq!(privileged["properties"]["security-severity"], "9.5");
    for tag in [
        "critical",
        "security",
        "soc2:CC6.1",
        "soc2:CC6.8",
        "cis:cis-kubernetes-1.10:5.2.2",
        "kubescape:C-0057",
        "polaris:runAsPrivileged",
        "nsa:Pod security enforcement",
    ] {
        assert!(
            tags("no-privileged").contains(&tag.to_string()),
            "{tag} in {:?}",
            tags("no-privileged")
        );
    }
    assert_eq!(
        rule("no-latest-tag")["properties"]["security-severity"],
        "8.0"
    );
    assert!(tags("no-latest-tag").iter().any(|t| t.starts_with("soc2:")));
    assert!(tags("no-nodeport-service")
        .iter()
        .any(|t| t.starts_with("soc2:")));

    // Every violated policy has its rule, described from the scan's catalog.
    let policy_results = result["policy_results"].as_array().expect("results");
    for p in policy_results {
        let r = rule(p["policy"].as_str().expect("id"));
        assert!(r["properties"]["security-severity"].is_string(), "{r}");
        assert_ne!(
            r["shortDescription"]["text"],
            format!("Policy {} ({} severity)", p["policy"], p["severity"])
        );
    }

    // Waived violations stay as suppressed results; the expired waiver suppresses nothing.
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let suppressed = |policy: &str| {
        results
            .iter()
            .filter(|r| r["ruleId"] == policy)
            .map(|r| r.get("suppressions").is_some())
            .collect::<Vec<_>>()
    };
    for waived in ["liveness-probe", "readiness-probe"] {
        let s = suppressed(waived);
        assert!(!s.is_empty() && s.iter().all(|s| *s), "{waived}: {s:?}");
    }
    for open in ["no-privileged", "no-latest-tag", "no-nodeport-service"] {
        let s = suppressed(open);
        assert!(!s.is_empty() && s.iter().all(|s| !*s), "{open}: {s:?}");
    }
    assert_eq!(
        results
            .iter()
            .filter(|r| r.get("suppressions").is_none()
                && r["ruleId"]
                    .as_str()
                    .is_some_and(|id| !id.starts_with("drift/")))
            .count() as u64,
        result["summary"]["policy_violations"]
            .as_u64()
            .expect("count")
    );
}

#[test]
fn html_report_maps_violations_to_soc2_and_lists_expired_waivers() {
    let ws = workspace();
    scan(&ws);
    let result = scan(&ws);
    let output = ws.run(&["report", "--format", "html"]);
    assert_eq!(output.status.code(), Some(0));
    let html = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(html.contains("<h2>Compliance policies</h2>"));
    assert!(!html.contains("<script"));

    // By severity: the critical row counts the privileged container, unwaived.
    let critical = row(&html, "data-severity=\"critical\"");
    assert!(critical.contains("<td class=\"num\">"), "{critical}");
    let numbers = cells(&critical);
    assert!(
        numbers[1].parse::<u64>().expect("unwaived") >= 1,
        "{critical}"
    );

    // By control: CC6.1 lists no-privileged as violated.
    let privileged = row(
        &html,
        "data-criterion=\"CC6.1\" data-policy=\"no-privileged\"",
    );
    assert!(privileged.contains("Containers must not run privileged"));
    assert!(privileged.contains("violation"), "{privileged}");
    let waived = row(&html, "data-policy=\"readiness-probe\"");
    assert!(waived.contains(">waived<"), "{waived}");
    assert!(html.contains("data-criterion=\"CC7.1\""));

    // Violations table: one row per result, waived ones marked.
    let total = result["policy_results"].as_array().expect("results").len();
    assert_eq!(html.matches("data-violation=").count(), total);
    assert_eq!(
        html.matches("data-waived=\"true\"").count(),
        total - result["summary"]["policy_violations"].as_u64().expect("n") as usize
    );

    // Expired waivers.
    let expired = row(&html, "data-expired-waiver=\"no-nodeport-service\"");
    assert!(expired.contains("temporary access for the load test"));
    assert!(expired.contains("2024-01-31"));
    assert!(expired.contains("ben@example.com"));
}

/// The table row that carries `marker` among its attributes.
fn row(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no row with {marker}"));
    let start = html[..start].rfind("<tr").expect("row start");
    let end = start + html[start..].find("</tr>").expect("row end");
    html[start..end].to_string()
}

/// The text of a row's cells.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let body = &cell[cell.find('>').map_or(0, |i| i + 1)..];
            let mut text = String::new();
            let mut in_tag = false;
            for c in body.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_string()
        })
        .collect()
}

#[test]
fn html_report_shows_each_policy_over_the_period() {
    let ws = workspace();
    scan(&ws);
    // The second scan of the period: the Deployment no longer runs privileged, in Git and
    // in the cluster.
    let fixed = DEPLOYMENT.replace(
        "securityContext: {privileged: true}",
        "securityContext: {privileged: false}",
    );
    let mut writer =
        plumbline::source::writer::RepoWriter::open(&ws.path("repo")).expect("open repo");
    writer
        .commit(
            "main",
            &support::commit(
                "Ana Ruiz",
                "ana.ruiz@example.com",
                1_761_100_000,
                "store: web no longer runs privileged",
                vec![(
                    "apps/store/deployment.yaml",
                    Some(fixed.clone().into_bytes()),
                )],
            ),
        )
        .expect("commit");
    ws.write("live/store.yaml", &format!("{fixed}---\n{SERVICE}"));
    let (_, second) = ws.scan_json(&[]);
    let id = second["scan_id"].as_i64().expect("id");
    assert!(!second["policy_results"]
        .as_array()
        .expect("results")
        .iter()
        .any(|p| p["policy"] == "no-privileged"));

    let store = plumbline::store::Store::open(&ws.path("state/plumbline.db")).expect("store");
    let period = store.policy_period(1, id).expect("period");
    assert_eq!(period.evaluated.get("no-privileged"), Some(&2));
    assert_eq!(period.violated.get("no-privileged"), Some(&1));
    assert_eq!(period.violated.get("no-latest-tag"), Some(&2));
    assert_eq!(
        period.violated.get("liveness-probe"),
        None,
        "waived in both scans"
    );

    let result = store.load(id).expect("load").expect("scan stored");
    let history = store.history(10).expect("history");
    let html = plumbline::report::html::render_with_period(
        &plumbline::report::html::Context {
            result: &result,
            period_commits: &[],
            period_start: 1,
            history: &history,
            row_hash: "",
            database: "plumbline.db",
            config_digest: "",
            monitoring: &plumbline::store::Coverage::default(),
            period_from: &result.started_at,
        },
        Some(&period),
    )
    .expect("renders");
    let privileged = row(
        &html,
        "data-criterion=\"CC6.1\" data-policy=\"no-privileged\"",
    );
    assert!(privileged.contains(">compliant<"), "{privileged}");
    assert!(
        privileged.contains("violated in 1 of 2 scans"),
        "{privileged}"
    );
    let latest = row(&html, "data-policy=\"no-latest-tag\"");
    assert!(latest.contains("violated in 2 of 2 scans"), "{latest}");
    let waived = row(&html, "data-policy=\"liveness-probe\"");
    assert!(waived.contains("no violation in 2 scans"), "{waived}");
    assert!(html.contains("over scans 1 to 2"));
}
