//! The scan result as SARIF 2.1.0, so that GitHub code scanning (and any other SARIF viewer)
//! shows drift and policy violations as alerts on the Git line an object was rendered from.
//!
//! Only what needs attention becomes a result: drifted findings (`modified`, `missing`,
//! `orphaned`) and policy violations. Waived violations stay in, marked as suppressed, so the
//! viewer shows them as dismissed instead of silently losing the audit record.

use crate::model::{Change, Finding, Origin, PolicyResult, PolicyRule, ScanResult, Status};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Changes listed in a result message; the rest are counted, so messages stay readable.
const MAX_CHANGES: usize = 5;
/// Longest value shown in a message: a whole ConfigMap value would drown the alert.
const MAX_VALUE_CHARS: usize = 120;
/// Key of our fingerprint in `partialFingerprints`; versioned as SARIF recommends, so a
/// change of the scheme can never be mistaken for the old one.
const FINGERPRINT_KEY: &str = "plumblineIdentity/v1";
/// Base id of repository-relative file URIs; GitHub resolves it to the checkout root.
const SRCROOT: &str = "SRCROOT";
const REDACTED: &str = "<redacted>";

/// The drift rules, one per drifted status: (status, id, name, short, full, help).
const DRIFT_RULES: [(Status, &str, &str, &str, &str, &str); 3] = [
    (
        Status::Modified,
        "drift/modified",
        "DriftModified",
        "Live object differs from Git",
        "The object in the cluster differs from what Git renders for it: a sync would change it.",
        "Someone or something changed the object outside Git; the managers property names the \
         field managers that own the drifted fields. Commit the change to Git if it is wanted, \
         otherwise sync the app to restore the desired state.",
    ),
    (
        Status::Missing,
        "drift/missing",
        "DriftMissing",
        "Object in Git is missing from the cluster",
        "The object is rendered from Git but does not exist in the cluster.",
        "The object was deleted by hand, never synced, or failed to apply. Sync the app, or \
         remove the object from Git if it is no longer wanted.",
    ),
    (
        Status::Orphaned,
        "drift/orphaned",
        "DriftOrphaned",
        "Object in the cluster is not in Git",
        "The object is attributed to the app by its tracking label or annotation, but Git no \
         longer renders it: a sync with prune would delete it.",
        "Add the object back to Git if it is still needed, delete it from the cluster if not, \
         or remove its tracking label if it belongs to no app.",
    ),
];

/// Renders a scan as pretty SARIF 2.1.0 JSON with a trailing newline.
pub fn render(result: &ScanResult) -> String {
    let mut rules = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    for (status, id, name, short, full, help) in DRIFT_RULES {
        rule_index.insert(id.to_string(), rules.len());
        rules.push(json!({
            "id": id,
            "name": name,
            "shortDescription": {"text": short},
            "fullDescription": {"text": full},
            "help": {"text": help},
            "defaultConfiguration": {"level": drift_level(status)},
        }));
    }
    // One rule per violated policy id, sorted so the rule table (and every ruleIndex) is
    // stable; described from the scan's policy catalog when it recorded one.
    let catalog: BTreeMap<&str, &PolicyRule> = result
        .policies
        .iter()
        .map(|rule| (rule.id.as_str(), rule))
        .collect();
    let mut policies: BTreeMap<&str, &PolicyResult> = BTreeMap::new();
    for p in &result.policy_results {
        policies.entry(p.policy.as_str()).or_insert(p);
    }
    for (id, first) in policies {
        rule_index.insert(id.to_string(), rules.len());
        rules.push(match catalog.get(id) {
            Some(rule) => catalog_rule(rule),
            None => policy_rule(first),
        });
    }

    let mut results = Vec::new();
    for finding in result.findings.iter().filter(|f| is_drift(f.status)) {
        results.push(finding_result(finding, &rule_index));
    }
    for policy in &result.policy_results {
        results.push(policy_result(policy, &result.findings, &rule_index));
    }

    let mut driver = Map::new();
    driver.insert("name".into(), json!("plumbline"));
    driver.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    if let Some(uri) = information_uri() {
        driver.insert("informationUri".into(), json!(uri));
    }
    driver.insert("rules".into(), Value::Array(rules));

    let sarif = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&sarif).unwrap_or_default() + "\n"
}

/// The project's address from Cargo metadata; SARIF requires an absolute URI here, so an
/// unset field omits the property instead of writing an empty one.
fn information_uri() -> Option<&'static str> {
    [env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_HOMEPAGE")]
        .into_iter()
        .find(|u| !u.is_empty())
}

fn is_drift(status: Status) -> bool {
    matches!(
        status,
        Status::Modified | Status::Missing | Status::Orphaned
    )
}

fn drift_rule_id(status: Status) -> &'static str {
    DRIFT_RULES
        .iter()
        .find(|r| r.0 == status)
        .map_or("drift/modified", |r| r.1)
}

/// Orphans are only a warning: nothing a user wrote is wrong, a prune would just delete them.
fn drift_level(status: Status) -> &'static str {
    match status {
        Status::Orphaned => "warning",
        _ => "error",
    }
}

/// Unknown severities become warnings: visible, but not as loud as a known critical one.
fn severity_level(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "error",
        "low" => "note",
        _ => "warning",
    }
}

/// GitHub code scanning's `security-severity` (a CVSS-like score as a string) for a policy
/// severity; `None` for a severity we do not know.
fn security_severity(severity: &str) -> Option<&'static str> {
    match severity {
        "critical" => Some("9.5"),
        "high" => Some("8.0"),
        "medium" => Some("5.5"),
        "low" => Some("3.0"),
        _ => None,
    }
}

/// The tags of a policy rule: its severity, `security` (code scanning shows the
/// security severity of security-tagged rules only) and its crosswalk to external
/// controls as `framework:id` (`soc2:CC6.1`, `cis:cis-kubernetes-1.10:5.2.2`,
/// `kubescape:C-0057`, `polaris:runAsPrivileged`, `nsa:Pod security enforcement`).
pub(crate) fn crosswalk_tags(controls: &Value) -> Vec<String> {
    let mut tags = Vec::new();
    let strings = |key: &str| -> Vec<String> {
        match &controls[key] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    for id in strings("soc2") {
        tags.push(format!("soc2:{id}"));
    }
    for cis in controls["cis"].as_array().into_iter().flatten() {
        let field = |key: &str| cis[key].as_str().unwrap_or_default();
        let id = cis.as_str().unwrap_or_else(|| field("id"));
        if id.is_empty() {
            continue;
        }
        let benchmark = match (field("benchmark"), field("version")) {
            ("", _) => "cis".to_string(),
            (benchmark, "") => benchmark.to_string(),
            (benchmark, version) => format!("{benchmark}-{version}"),
        };
        tags.push(format!("cis:{benchmark}:{id}"));
    }
    for framework in ["kubescape", "polaris", "nsa"] {
        for id in strings(framework) {
            tags.push(format!("{framework}:{id}"));
        }
    }
    tags
}

/// A policy rule as the scan's catalog describes it: its title, severity and crosswalk.
fn catalog_rule(rule: &PolicyRule) -> Value {
    let mut tags = vec![rule.severity.clone(), "security".to_string()];
    tags.extend(crosswalk_tags(&rule.controls));
    let mut properties = Map::new();
    properties.insert("tags".into(), json!(tags));
    if let Some(score) = security_severity(&rule.severity) {
        properties.insert("security-severity".into(), json!(score));
    }
    properties.insert("pack".into(), json!(rule.pack));
    let soc2 = rule.soc2();
    let evidences = if soc2.is_empty() {
        String::new()
    } else {
        format!(" It evidences SOC 2 {}.", soc2.join(", "))
    };
    json!({
        "id": rule.id,
        "name": rule.id,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": format!(
            "{} ({} severity, policy {} of the {} pack).{evidences}",
            rule.title, rule.severity, rule.id, rule.pack
        )},
        "help": {"text": format!(
            "{}. Fix the object in Git (for live-state violations, in the cluster), or add a \
             waiver with a reason, an approver and an expiry date to plumbline.yaml (or a \
             plumbline.dev/waive annotation with plumbline.dev/waive-reason on the object).",
            rule.title.trim_end_matches('.')
        )},
        "defaultConfiguration": {"level": severity_level(&rule.severity)},
        "properties": properties,
    })
}

/// A policy rule for a policy the scan's catalog does not list (a scan stored before
/// catalogs were recorded): described from its first result.
fn policy_rule(p: &PolicyResult) -> Value {
    let mut properties = Map::new();
    properties.insert("tags".into(), json!([p.severity]));
    if let Some(score) = security_severity(&p.severity) {
        properties.insert("security-severity".into(), json!(score));
    }
    json!({
        "id": p.policy,
        "shortDescription": {"text": format!("Policy {} ({} severity)", p.policy, p.severity)},
        "fullDescription": {"text": format!("{}: {}", p.policy, p.message)},
        "help": {"text": format!(
            "The object violates policy {} ({} severity). Fix the object in Git (for live-state \
             violations, in the cluster), or add a waiver with a reason, an approver and an \
             expiry date to plumbline.yaml.",
            p.policy, p.severity
        )},
        "defaultConfiguration": {"level": severity_level(&p.severity)},
        "properties": properties,
    })
}

fn finding_result(f: &Finding, rule_index: &BTreeMap<String, usize>) -> Value {
    let rule_id = drift_rule_id(f.status);
    let namespace = f.namespace.as_deref();
    let mut properties = Map::new();
    properties.insert("cluster".into(), json!(f.cluster));
    properties.insert("app".into(), json!(f.app));
    properties.insert("status".into(), json!(f.status.as_str()));
    properties.insert("managers".into(), json!(f.managers));
    if let Some(commit) = &f.last_commit {
        properties.insert("lastCommit".into(), json!(commit.sha));
    }
    let identity = [
        "drift",
        &f.cluster,
        &f.app,
        &f.group,
        &f.kind,
        namespace.unwrap_or("\u{0}"),
        &f.name,
        f.status.as_str(),
    ];
    json!({
        "ruleId": rule_id,
        "ruleIndex": rule_index.get(rule_id),
        "level": drift_level(f.status),
        "message": {"text": finding_message(f)},
        "locations": [location(
            f.origin.as_ref(),
            &f.cluster,
            &f.app,
            &f.group,
            &f.kind,
            namespace,
            &f.name,
        )],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(&identity)},
        "properties": properties,
    })
}

/// A policy result has no Git origin of its own; the finding for the same object (when the
/// scan listed one) lends its file and line, so the alert still lands next to the manifest.
fn policy_result(
    p: &PolicyResult,
    findings: &[Finding],
    rule_index: &BTreeMap<String, usize>,
) -> Value {
    let namespace = p.namespace.as_deref();
    let twin = findings.iter().find(|f| {
        f.cluster == p.cluster
            && p.app.as_ref().is_none_or(|app| *app == f.app)
            && f.kind == p.kind
            && f.namespace.as_deref() == namespace
            && f.name == p.name
    });
    let app = p.app.as_deref().unwrap_or("");
    let group = twin.map_or("", |f| f.group.as_str());
    let mut properties = Map::new();
    properties.insert("cluster".into(), json!(p.cluster));
    properties.insert("app".into(), json!(p.app));
    properties.insert("severity".into(), json!(p.severity));
    properties.insert("state".into(), json!(p.state));
    if let Some(commit) = twin.and_then(|f| f.last_commit.as_ref()) {
        properties.insert("lastCommit".into(), json!(commit.sha));
    }
    let identity = [
        "policy",
        &p.cluster,
        p.app.as_deref().unwrap_or("\u{0}"),
        &p.policy,
        &p.kind,
        namespace.unwrap_or("\u{0}"),
        &p.name,
        &p.state,
    ];
    let mut out = json!({
        "ruleId": p.policy,
        "ruleIndex": rule_index.get(&p.policy),
        "level": severity_level(&p.severity),
        "message": {"text": format!(
            "{} on {} ({} state): {} [policy {}, {}]",
            object_label(&p.kind, namespace, &p.name),
            p.cluster,
            p.state,
            p.message,
            p.policy,
            p.severity
        )},
        "locations": [location(
            twin.and_then(|f| f.origin.as_ref()),
            &p.cluster,
            app,
            group,
            &p.kind,
            namespace,
            &p.name,
        )],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(&identity)},
        "properties": properties,
    });
    if p.waived {
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "suppressions".into(),
                json!([{"kind": "external", "justification": "waived"}]),
            );
        }
    }
    out
}

/// A location always names the Kubernetes object; it points into Git only when the object
/// came from a file there (orphans do not).
fn location(
    origin: Option<&Origin>,
    cluster: &str,
    app: &str,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Value {
    let mut loc = Map::new();
    if let Some(origin) = origin.filter(|o| !o.file.is_empty()) {
        let mut physical = json!({
            "artifactLocation": {"uri": uri_path(&origin.file), "uriBaseId": SRCROOT},
        });
        if origin.line > 0 {
            if let Some(obj) = physical.as_object_mut() {
                obj.insert("region".into(), json!({"startLine": origin.line}));
            }
        }
        loc.insert("physicalLocation".into(), physical);
    }
    let short = match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    };
    // Always six segments (empty for the core group or a cluster-scoped object), so the name
    // reads positionally whatever the object is.
    let full = format!(
        "{cluster}/{app}/{group}/{kind}/{}/{name}",
        namespace.unwrap_or("")
    );
    loc.insert(
        "logicalLocations".into(),
        json!([{"name": short, "fullyQualifiedName": full, "kind": "resource"}]),
    );
    Value::Object(loc)
}

/// Percent-encodes a repository-relative path into a URI reference (spaces, `#`, `%` and
/// non-ASCII would otherwise break or change its meaning); `/` stays a separator.
fn uri_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.trim_start_matches("./");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A stable id for an alert: FNV-1a (128 bit) over the length-prefixed identity fields, so
/// it is the same on every run and every machine (std's hasher is neither) and no two
/// different identities can be spelled the same way by shifting separators.
fn fingerprint(fields: &[&str]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for field in fields {
        let len = (field.len() as u64).to_le_bytes();
        for b in len.iter().chain(field.as_bytes()) {
            hash ^= u128::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:032x}")
}

/// `Deployment web/api`, or `ClusterRole admin` for a cluster-scoped object.
pub(crate) fn object_label(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// One-line verdict: `Deployment web/api on prod-eu: /spec/replicas desired 3, live 5`.
pub(crate) fn finding_message(f: &Finding) -> String {
    let label = object_label(&f.kind, f.namespace.as_deref(), &f.name);
    let mut detail = match f.status {
        Status::Modified if !f.changes.is_empty() => {
            let mut parts: Vec<String> = f
                .changes
                .iter()
                .take(MAX_CHANGES)
                .map(|c| describe_change(f, c))
                .collect();
            if f.changes.len() > MAX_CHANGES {
                parts.push(format!("and {} more", f.changes.len() - MAX_CHANGES));
            }
            parts.join("; ")
        }
        Status::Modified => "differs from Git".to_string(),
        Status::Missing => "in Git but missing from the cluster".to_string(),
        Status::Orphaned => {
            "in the cluster but not in Git (a sync with prune would delete it)".to_string()
        }
        Status::InSync => "in sync".to_string(),
        Status::Ignored => "differs only where an ignore rule allows".to_string(),
    };
    if let Some(reason) = f.reason.as_deref().filter(|r| !r.is_empty()) {
        detail.push_str(&format!(" ({reason})"));
    }
    format!("{label} on {}: {detail}", f.cluster)
}

/// `/spec/replicas desired 3, live 5`; an absent side reads `(absent)`.
pub(crate) fn describe_change(f: &Finding, c: &Change) -> String {
    format!(
        "{} desired {}, live {}",
        c.path,
        show_value(f, c, c.desired.as_ref()),
        show_value(f, c, c.live.as_ref())
    )
}

/// Compact JSON of a value, shortened. Secret data is redacted upstream; this refuses to print
/// it even if a bug upstream ever let a value through, because a leaked key cannot be recalled.
fn show_value(f: &Finding, c: &Change, value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(absent)".to_string();
    };
    let secret_data = f.group.is_empty()
        && f.kind == "Secret"
        && (c.path == "/data"
            || c.path == "/stringData"
            || c.path.starts_with("/data/")
            || c.path.starts_with("/stringData/"));
    if secret_data && value.as_str() != Some(REDACTED) {
        return format!("{:?}", REDACTED);
    }
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{ClusterResult, CommitRef, ScanError, SourceResult, Stage, Summary};

    pub(crate) const HOSTILE: &str = "<script>alert(\"x&y\")</script>]]>'\u{1}";

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finding(
        cluster: &str,
        app: &str,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Status,
        changes: Vec<Change>,
        origin: Option<(&str, usize)>,
    ) -> Finding {
        Finding {
            app: app.into(),
            cluster: cluster.into(),
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
            status,
            changes,
            managers: vec![],
            last_commit: None,
            reason: None,
            origin: origin.map(|(file, line)| Origin {
                file: file.into(),
                line,
            }),
            patch: None,
            diff: None,
            secret_digest: None,
        }
    }

    pub(crate) fn change(path: &str, desired: Option<Value>, live: Option<Value>) -> Change {
        Change {
            path: path.into(),
            desired,
            live,
        }
    }

    pub(crate) fn policy(id: &str, severity: &str, name: &str, waived: bool) -> PolicyResult {
        PolicyResult {
            policy: id.into(),
            severity: severity.into(),
            app: Some("web".into()),
            cluster: "prod-eu".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: name.into(),
            state: "live".into(),
            message: format!("violates {id}"),
            waived,
        }
    }

    /// Every status, two clusters, a Secret, hostile strings, waived and unwaived policies and
    /// a scan error: the shared fixture of both report formats.
    pub(crate) fn fixture() -> ScanResult {
        let mut modified = finding(
            "prod-eu",
            "web",
            "apps",
            "Deployment",
            Some("web"),
            "api",
            Status::Modified,
            vec![
                change("/spec/replicas", Some(json!(3)), Some(json!(5))),
                change(
                    "/spec/template/spec/containers/0/image",
                    Some(json!("api:1.2")),
                    Some(json!("api:1.3")),
                ),
                change("/metadata/labels/tier", Some(json!("backend")), None),
                change("/metadata/labels/hotfix", None, Some(json!("yes"))),
                change("/spec/paused", Some(json!(false)), Some(json!(true))),
                change("/spec/minReadySeconds", Some(json!(0)), Some(json!(10))),
                change(
                    "/spec/revisionHistoryLimit",
                    Some(json!(10)),
                    Some(json!(3)),
                ),
            ],
            Some(("apps/web/deployment.yaml", 12)),
        );
        modified.managers = vec!["kubectl-edit".into()];
        modified.last_commit = Some(CommitRef {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            author: "Ana <ana@example.com>".into(),
            time: "2026-11-20T10:00:00Z".into(),
            message: "scale api".into(),
        });
        let secret = finding(
            "prod-eu",
            "web",
            "",
            "Secret",
            Some("web"),
            "db",
            Status::Modified,
            vec![
                change(
                    "/data/password",
                    Some(json!(REDACTED)),
                    Some(json!(REDACTED)),
                ),
                change("/data/token", Some(json!("hunter2")), Some(json!(REDACTED))),
            ],
            Some(("apps/web/secret.yaml", 1)),
        );
        let hostile = finding(
            "prod-us",
            HOSTILE,
            "",
            "ConfigMap",
            Some(HOSTILE),
            HOSTILE,
            Status::Modified,
            vec![change(
                &format!("/data/{HOSTILE}"),
                Some(json!(HOSTILE)),
                Some(json!("\u{0}\u{7}\"]]>")),
            )],
            Some(("apps/my app/#cm.yaml", 3)),
        );
        ScanResult {
            scan_id: 7,
            started_at: "2026-11-22T23:59:58Z".into(),
            finished_at: "2026-11-23T00:00:02.5Z".into(),
            sources: vec![SourceResult {
                name: "platform".into(),
                revision: "main".into(),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            }],
            clusters: vec![ClusterResult {
                name: "prod-eu".into(),
                status: "ok".into(),
                error: None,
            }],
            summary: Summary::default(),
            findings: vec![
                finding(
                    "prod-eu",
                    "web",
                    "",
                    "Service",
                    Some("web"),
                    "api",
                    Status::InSync,
                    vec![],
                    Some(("apps/web/service.yaml", 1)),
                ),
                modified,
                finding(
                    "prod-eu",
                    "web",
                    "",
                    "ConfigMap",
                    Some("web"),
                    "settings",
                    Status::Missing,
                    vec![],
                    Some(("apps/web/cm.yaml", 4)),
                ),
                finding(
                    "prod-eu",
                    "web",
                    "networking.k8s.io",
                    "Ingress",
                    Some("web"),
                    "old",
                    Status::Orphaned,
                    vec![],
                    None,
                ),
                finding(
                    "prod-eu",
                    "web",
                    "apps",
                    "Deployment",
                    Some("web"),
                    "worker",
                    Status::Ignored,
                    vec![],
                    Some(("apps/web/worker.yaml", 1)),
                ),
                finding(
                    "prod-eu",
                    "infra",
                    "rbac.authorization.k8s.io",
                    "ClusterRole",
                    None,
                    "viewer",
                    Status::Missing,
                    vec![],
                    Some(("infra/rbac.yaml", 20)),
                ),
                secret,
                hostile,
            ],
            policy_results: vec![
                policy("no-latest-tag", "high", "api", false),
                policy("no-privileged", "critical", "api", true),
                policy("resource-limits", "medium", "worker", false),
                policy("team-label", "low", "api", false),
            ],
            errors: vec![ScanError {
                cluster: Some("prod-us".into()),
                app: None,
                stage: Stage::Live,
                message: format!("connection refused {HOSTILE}"),
            }],
            commits: vec![],
            expired_waivers: vec![],
            policies: vec![],
            heal_actions: vec![],
        }
    }

    fn parsed(result: &ScanResult) -> Value {
        let text = render(result);
        assert!(text.ends_with("}\n"));
        serde_json::from_str(&text).expect("SARIF is JSON")
    }

    fn results(doc: &Value) -> &Vec<Value> {
        doc["runs"][0]["results"].as_array().expect("results")
    }

    fn by_name<'a>(doc: &'a Value, rule: &str, logical: &str) -> &'a Value {
        results(doc)
            .iter()
            .find(|r| {
                r["ruleId"] == rule
                    && r["locations"][0]["logicalLocations"][0]["name"].as_str() == Some(logical)
            })
            .unwrap_or_else(|| panic!("no {rule} result for {logical}"))
    }

    #[test]
    fn envelope_and_rules() {
        let doc = parsed(&fixture());
        assert_eq!(doc["$schema"], SCHEMA);
        assert_eq!(doc["version"], "2.1.0");
        assert_eq!(doc["runs"].as_array().map(Vec::len), Some(1));
        let driver = &doc["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "plumbline");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let rules = driver["rules"].as_array().expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                "drift/modified",
                "drift/missing",
                "drift/orphaned",
                "no-latest-tag",
                "no-privileged",
                "resource-limits",
                "team-label"
            ]
        );
        for rule in rules {
            assert!(rule["shortDescription"]["text"].is_string());
            assert!(rule["fullDescription"]["text"].is_string());
            assert!(rule["help"]["text"].is_string());
        }
        assert_eq!(rules[2]["defaultConfiguration"]["level"], "warning");
        assert_eq!(rules[3]["properties"]["tags"], json!(["high"]));
        assert_eq!(rules[6]["properties"]["tags"], json!(["low"]));
    }

    /// The catalog entries of two of the fixture's policies, as a scan records them.
    pub(crate) fn catalog() -> Vec<PolicyRule> {
        vec![
            PolicyRule {
                id: "no-privileged".into(),
                title: "Containers must not run privileged".into(),
                severity: "critical".into(),
                pack: "baseline".into(),
                controls: json!({
                    "soc2": ["CC6.1", "CC6.8"],
                    "cis": [{"benchmark": "cis-kubernetes", "version": "1.10", "id": "5.2.2"}],
                    "kubescape": ["C-0057", "C-0193"],
                    "polaris": ["runAsPrivileged"],
                    "nsa": ["Pod security enforcement"]
                }),
            },
            PolicyRule {
                id: "no-latest-tag".into(),
                title: "Images must not use the latest tag".into(),
                severity: "high".into(),
                pack: "baseline".into(),
                controls: json!({"soc2": ["CC8.1"], "polaris": "tagNotSpecified"}),
            },
        ]
    }

    #[test]
    fn catalog_rules_carry_title_security_severity_and_crosswalk() {
        let mut scan = fixture();
        scan.policies = catalog();
        let doc = parsed(&scan);
        let rules = doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let rule = |id: &str| {
            rules
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("rule {id}"))
        };
        let privileged = rule("no-privileged");
        assert_eq!(
            privileged["shortDescription"]["text"],
            "Containers must not run privileged"
        );
        assert_eq!(privileged["defaultConfiguration"]["level"], "error");
        assert_eq!(privileged["properties"]["security-severity"], "9.5");
        assert_eq!(
            privileged["properties"]["tags"],
            json!([
                "critical",
                "security",
                "soc2:CC6.1",
                "soc2:CC6.8",
                "cis:cis-kubernetes-1.10:5.2.2",
                "kubescape:C-0057",
                "kubescape:C-0193",
                "polaris:runAsPrivileged",
                "nsa:Pod security enforcement"
            ])
        );
        let latest = rule("no-latest-tag");
        assert_eq!(latest["properties"]["security-severity"], "8.0");
        assert_eq!(
            latest["properties"]["tags"],
            json!(["high", "security", "soc2:CC8.1", "polaris:tagNotSpecified"])
        );
        // Policies the catalog lacks are described from their results, as before.
        let limits = rule("resource-limits");
        assert_eq!(limits["properties"]["tags"], json!(["medium"]));
        assert_eq!(limits["properties"]["security-severity"], "5.5");
        assert_eq!(rule("team-label")["properties"]["security-severity"], "3.0");
        // Rules are listed for violated policies only, and every ruleIndex still points
        // at its rule.
        assert_eq!(rules.len(), 7);
        for r in results(&doc) {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], r["ruleId"]);
        }
    }

    #[test]
    fn results_counts_levels_and_rule_indexes() {
        let doc = parsed(&fixture());
        let results = results(&doc);
        // 6 drifted findings (in_sync and ignored left out) + 4 policy results.
        assert_eq!(results.len(), 10);
        let rules = doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        for r in results {
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], r["ruleId"]);
        }
        let count = |rule: &str| results.iter().filter(|r| r["ruleId"] == rule).count();
        assert_eq!(count("drift/modified"), 3);
        assert_eq!(count("drift/missing"), 2);
        assert_eq!(count("drift/orphaned"), 1);
        assert_eq!(
            by_name(&doc, "drift/modified", "Deployment/web/api")["level"],
            "error"
        );
        assert_eq!(
            by_name(&doc, "drift/missing", "ConfigMap/web/settings")["level"],
            "error"
        );
        assert_eq!(
            by_name(&doc, "drift/orphaned", "Ingress/web/old")["level"],
            "warning"
        );
        let level = |rule: &str| {
            results
                .iter()
                .find(|r| r["ruleId"] == rule)
                .map(|r| r["level"].clone())
        };
        assert_eq!(level("no-latest-tag"), Some(json!("error")));
        assert_eq!(level("no-privileged"), Some(json!("error")));
        assert_eq!(level("resource-limits"), Some(json!("warning")));
        assert_eq!(level("team-label"), Some(json!("note")));
        assert!(!results.iter().any(|r| r["message"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Service web/api"))));
    }

    #[test]
    fn waived_policy_is_suppressed_and_others_are_not() {
        let doc = parsed(&fixture());
        for r in results(&doc) {
            if r["ruleId"] == "no-privileged" {
                assert_eq!(
                    r["suppressions"],
                    json!([{"kind": "external", "justification": "waived"}])
                );
            } else {
                assert!(r.get("suppressions").is_none(), "{r}");
            }
        }
    }

    #[test]
    fn messages_name_the_object_and_cap_the_changes() {
        let doc = parsed(&fixture());
        let text = by_name(&doc, "drift/modified", "Deployment/web/api")["message"]["text"]
            .as_str()
            .expect("text")
            .to_string();
        assert!(
            text.starts_with("Deployment web/api on prod-eu: /spec/replicas desired 3, live 5; "),
            "{text}"
        );
        assert!(text.contains("/metadata/labels/tier desired \"backend\", live (absent)"));
        assert!(text.ends_with("; and 2 more"), "{text}");
        assert!(!text.contains("revisionHistoryLimit"));
        let missing = &by_name(&doc, "drift/missing", "ClusterRole/viewer")["message"]["text"];
        assert_eq!(
            missing,
            "ClusterRole viewer on prod-eu: in Git but missing from the cluster"
        );
        let policy = results(&doc)
            .iter()
            .find(|r| r["ruleId"] == "no-latest-tag")
            .expect("policy result");
        assert_eq!(
            policy["message"]["text"],
            "Deployment web/api on prod-eu (live state): violates no-latest-tag [policy no-latest-tag, high]"
        );
    }

    #[test]
    fn secret_values_are_never_printed() {
        let text = render(&fixture());
        assert!(!text.contains("hunter2"));
        let doc = parsed(&fixture());
        let msg = &by_name(&doc, "drift/modified", "Secret/web/db")["message"]["text"];
        assert_eq!(
            msg,
            "Secret web/db on prod-eu: /data/password desired \"<redacted>\", live \"<redacted>\"; \
             /data/token desired \"<redacted>\", live \"<redacted>\""
        );
    }

    #[test]
    fn locations_point_into_git_and_name_the_resource() {
        let doc = parsed(&fixture());
        let loc = &by_name(&doc, "drift/modified", "Deployment/web/api")["locations"][0];
        assert_eq!(
            loc["physicalLocation"],
            json!({"artifactLocation": {"uri": "apps/web/deployment.yaml", "uriBaseId": "SRCROOT"},
                   "region": {"startLine": 12}})
        );
        assert_eq!(
            loc["logicalLocations"],
            json!([{"name": "Deployment/web/api",
                    "fullyQualifiedName": "prod-eu/web/apps/Deployment/web/api",
                    "kind": "resource"}])
        );
        let orphan = &by_name(&doc, "drift/orphaned", "Ingress/web/old")["locations"][0];
        assert!(orphan.get("physicalLocation").is_none());
        assert_eq!(
            orphan["logicalLocations"][0]["fullyQualifiedName"],
            "prod-eu/web/networking.k8s.io/Ingress/web/old"
        );
        let cluster_scoped = &by_name(&doc, "drift/missing", "ClusterRole/viewer")["locations"][0];
        assert_eq!(
            cluster_scoped["logicalLocations"][0]["fullyQualifiedName"],
            "prod-eu/infra/rbac.authorization.k8s.io/ClusterRole//viewer"
        );
        let hostile_name = format!("ConfigMap/{HOSTILE}/{HOSTILE}");
        let hostile = &by_name(&doc, "drift/modified", &hostile_name)["locations"][0];
        assert_eq!(
            hostile["physicalLocation"]["artifactLocation"]["uri"],
            "apps/my%20app/%23cm.yaml"
        );
        // A policy result borrows the Git location of the finding for the same object.
        let policy = results(&doc)
            .iter()
            .find(|r| r["ruleId"] == "no-latest-tag")
            .expect("policy result");
        assert_eq!(
            policy["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "apps/web/deployment.yaml"
        );
        assert_eq!(
            policy["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "prod-eu/web/apps/Deployment/web/api"
        );
    }

    #[test]
    fn properties_carry_cluster_app_managers_and_commit() {
        let doc = parsed(&fixture());
        let props = &by_name(&doc, "drift/modified", "Deployment/web/api")["properties"];
        assert_eq!(props["cluster"], "prod-eu");
        assert_eq!(props["app"], "web");
        assert_eq!(props["managers"], json!(["kubectl-edit"]));
        assert_eq!(
            props["lastCommit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        let orphan = &by_name(&doc, "drift/orphaned", "Ingress/web/old")["properties"];
        assert!(orphan.get("lastCommit").is_none());
    }

    #[test]
    fn fingerprints_are_unique_and_stable_across_runs() {
        let prints = |result: &ScanResult| -> Vec<String> {
            results(&parsed(result))
                .iter()
                .map(|r| {
                    r["partialFingerprints"][FINGERPRINT_KEY]
                        .as_str()
                        .expect("fingerprint")
                        .to_string()
                })
                .collect()
        };
        let first = prints(&fixture());
        assert_eq!(first, prints(&fixture()));
        let mut unique = first.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), first.len());
        assert!(first.iter().all(|p| p.len() == 32));
        // The same object drifting by other values, from another line, is the same alert.
        let mut later = fixture();
        later.findings[1].changes.truncate(1);
        later.findings[1].changes[0].live = Some(json!(9));
        later.findings[1].origin = Some(Origin {
            file: "apps/web/deployment.yaml".into(),
            line: 40,
        });
        assert_eq!(first, prints(&later));
        assert_eq!(render(&fixture()), render(&fixture()));
    }

    #[test]
    fn hostile_strings_round_trip_through_json() {
        let doc = parsed(&fixture());
        let name = format!("ConfigMap/{HOSTILE}/{HOSTILE}");
        let r = by_name(&doc, "drift/modified", &name);
        assert_eq!(r["properties"]["app"], HOSTILE);
        let text = r["message"]["text"].as_str().expect("text");
        assert!(text.contains(HOSTILE));
    }

    #[test]
    fn empty_scan_is_valid_sarif() {
        let mut empty = fixture();
        empty.findings.clear();
        empty.policy_results.clear();
        let doc = parsed(&empty);
        assert_eq!(results(&doc).len(), 0);
        assert_eq!(
            doc["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let f = finding(
            "c",
            "a",
            "",
            "ConfigMap",
            Some("n"),
            "x",
            Status::Modified,
            vec![change("/data/big", Some(json!("y".repeat(500))), None)],
            None,
        );
        let msg = finding_message(&f);
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("…, live (absent)"));
    }
}
