//! The scan result as JUnit XML, the one test-report format every CI system displays: each
//! resource is a test case, drift is a failure, an ignored difference is skipped, and a part
//! of the scan that failed is an error, so a pipeline shows drift next to its unit tests.
//!
//! The XML is written by hand (it is small and flat); every attribute and text node goes
//! through [`escape`], which also drops the characters XML 1.0 cannot carry at all.

use crate::model::{Finding, PolicyResult, ScanError, ScanResult, Status};
use crate::report::sarif::{describe_change, finding_message, object_label};
use std::collections::{BTreeMap, BTreeSet};

/// What became of one test case.
enum Outcome {
    Passed,
    /// `<failure>`: the check ran and found something (drift, a policy violation).
    Failure {
        kind: String,
        message: String,
        text: String,
    },
    /// `<skipped>`: differences an ignore rule accepts.
    Skipped(String),
    /// `<error>`: the check could not run.
    Error {
        kind: String,
        message: String,
    },
}

struct Case {
    classname: String,
    name: String,
    outcome: Outcome,
}

struct Suite {
    name: String,
    cases: Vec<Case>,
}

impl Suite {
    fn count(&self, pick: fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pick(&c.outcome)).count()
    }
}

fn is_failure(o: &Outcome) -> bool {
    matches!(o, Outcome::Failure { .. })
}

fn is_error(o: &Outcome) -> bool {
    matches!(o, Outcome::Error { .. })
}

fn is_skipped(o: &Outcome) -> bool {
    matches!(o, Outcome::Skipped(_))
}

/// Renders a scan as JUnit XML. Every finding passed in becomes a test case (the caller
/// decides whether in-sync ones are listed); waived policy violations are left out.
pub fn render(result: &ScanResult) -> String {
    let mut suites = finding_suites(&result.findings);
    let violations: Vec<&PolicyResult> =
        result.policy_results.iter().filter(|p| !p.waived).collect();
    if !violations.is_empty() {
        suites.push(Suite {
            name: "policies".into(),
            cases: violations.into_iter().map(policy_case).collect(),
        });
    }
    if !result.errors.is_empty() {
        suites.push(Suite {
            name: "plumbline/errors".into(),
            cases: result.errors.iter().map(error_case).collect(),
        });
    }
    for suite in &mut suites {
        disambiguate(&mut suite.cases);
    }

    let total =
        |pick: fn(&Outcome) -> bool| -> usize { suites.iter().map(|s| s.count(pick)).sum() };
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"plumbline\" tests=\"{tests}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        total(is_failure),
        total(is_error),
        total(is_skipped),
        duration_seconds(&result.started_at, &result.finished_at),
    ));
    for suite in &suites {
        write_suite(&mut out, suite);
    }
    out.push_str("</testsuites>\n");
    out
}

/// One suite per cluster and app, sorted, so reports of two scans line up.
fn finding_suites(findings: &[Finding]) -> Vec<Suite> {
    let mut by_app: BTreeMap<(&str, &str), Vec<Case>> = BTreeMap::new();
    for f in findings {
        by_app
            .entry((f.cluster.as_str(), f.app.as_str()))
            .or_default()
            .push(finding_case(f));
    }
    by_app
        .into_iter()
        .map(|((cluster, app), cases)| Suite {
            name: format!("{cluster}/{app}"),
            cases,
        })
        .collect()
}

fn finding_case(f: &Finding) -> Case {
    let outcome = match f.status {
        Status::InSync => Outcome::Passed,
        Status::Ignored => Outcome::Skipped("differences ignored by rule".into()),
        Status::Modified | Status::Missing | Status::Orphaned => Outcome::Failure {
            kind: f.status.as_str().into(),
            message: finding_message(f),
            text: finding_text(f),
        },
    };
    Case {
        classname: format!("{}.{}", f.cluster, f.app),
        name: object_label(&f.kind, f.namespace.as_deref(), &f.name),
        outcome,
    }
}

/// Everything a reader needs to act on a drifted object, one fact per line; every change is
/// listed here (the message only holds the first few).
fn finding_text(f: &Finding) -> String {
    let mut lines: Vec<String> = f.changes.iter().map(|c| describe_change(f, c)).collect();
    if let Some(reason) = &f.reason {
        lines.push(format!("reason: {reason}"));
    }
    if !f.managers.is_empty() {
        lines.push(format!("changed by: {}", f.managers.join(", ")));
    }
    if let Some(origin) = &f.origin {
        lines.push(format!("from Git: {}:{}", origin.file, origin.line));
    }
    if let Some(c) = &f.last_commit {
        lines.push(format!(
            "last commit: {} by {} at {}: {}",
            c.sha,
            c.author,
            c.time,
            c.message.lines().next().unwrap_or("")
        ));
    }
    lines.join("\n")
}

fn policy_case(p: &PolicyResult) -> Case {
    let object = object_label(&p.kind, p.namespace.as_deref(), &p.name);
    let text = format!(
        "policy: {}\nseverity: {}\ncluster: {}\napp: {}\nobject: {object}\nstate: {}\n{}",
        p.policy,
        p.severity,
        p.cluster,
        p.app.as_deref().unwrap_or("-"),
        p.state,
        p.message
    );
    Case {
        classname: format!("policies.{}", p.policy),
        name: format!("{object} on {} ({})", p.cluster, p.state),
        outcome: Outcome::Failure {
            kind: p.severity.clone(),
            message: p.message.clone(),
            text,
        },
    }
}

fn error_case(e: &ScanError) -> Case {
    let scope = match (&e.cluster, &e.app) {
        (Some(cluster), Some(app)) => format!("{cluster}/{app}"),
        (Some(cluster), None) => cluster.clone(),
        (None, Some(app)) => app.clone(),
        (None, None) => "scan".into(),
    };
    Case {
        classname: "plumbline.errors".into(),
        name: format!("{} {scope}", e.stage.as_str()),
        outcome: Outcome::Error {
            kind: e.stage.as_str().into(),
            message: e.message.clone(),
        },
    }
}

/// Appends ` (2)`, ` (3)`... to repeated names in a suite: CI systems key test cases by
/// class and name and would otherwise merge two objects (or two errors) into one.
fn disambiguate(cases: &mut [Case]) {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for case in cases {
        let base = case.name.clone();
        let mut n = 1;
        while !seen.insert((case.classname.clone(), case.name.clone())) {
            n += 1;
            case.name = format!("{base} ({n})");
        }
    }
}

fn write_suite(out: &mut String, suite: &Suite) {
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"0\">\n",
        escape(&suite.name, true),
        suite.cases.len(),
        suite.count(is_failure),
        suite.count(is_error),
        suite.count(is_skipped),
    ));
    for case in &suite.cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&case.classname, true),
            escape(&case.name, true)
        );
        match &case.outcome {
            Outcome::Passed => out.push_str(&format!("{open}/>\n")),
            Outcome::Skipped(message) => out.push_str(&format!(
                "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape(message, true)
            )),
            Outcome::Error { kind, message } => out.push_str(&format!(
                "{open}>\n      <error type=\"{}\" message=\"{}\"/>\n    </testcase>\n",
                escape(kind, true),
                escape(message, true)
            )),
            Outcome::Failure {
                kind,
                message,
                text,
            } => out.push_str(&format!(
                "{open}>\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(kind, true),
                escape(message, true),
                escape(text, false)
            )),
        }
    }
    out.push_str("  </testsuite>\n");
}

/// Escapes the five XML specials and drops characters XML 1.0 forbids (controls other than
/// tab, newline and carriage return; U+FFFE, U+FFFF): a parser rejects the whole file for a
/// single one, even as a character reference. In attributes, tab and line breaks become
/// character references, because a parser would otherwise normalise them to spaces.
fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Seconds between two RFC 3339 times, 0 when either cannot be read: the duration is
/// informative and must never stop a report from being written.
fn duration_seconds(start: &str, end: &str) -> f64 {
    match (unix_seconds(start), unix_seconds(end)) {
        (Some(s), Some(e)) if e >= s => e - s,
        _ => 0.0,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)` into seconds since the Unix epoch.
fn unix_seconds(ts: &str) -> Option<f64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = ts.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let b = ts.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &ts[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        fraction = format!("0.{}", &after_dot[..digits]).parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            match rest.as_bytes()[0] {
                b'+' => h * 3600 + m * 60,
                b'-' => -(h * 3600 + m * 60),
                _ => return None,
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sarif::tests::{fixture, HOSTILE};
    use std::collections::BTreeMap;

    /// A parsed element of the minimal XML reader below.
    #[derive(Debug)]
    struct El {
        name: String,
        attrs: BTreeMap<String, String>,
        children: Vec<El>,
        text: String,
    }

    impl El {
        fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a El>) {
            if self.name == name {
                out.push(self);
            }
            for c in &self.children {
                c.all(name, out);
            }
        }

        fn find_all(&self, name: &str) -> Vec<&El> {
            let mut out = Vec::new();
            self.all(name, &mut out);
            out
        }

        fn attr(&self, name: &str) -> &str {
            self.attrs.get(name).map_or("", String::as_str)
        }

        fn child(&self, name: &str) -> Option<&El> {
            self.children.iter().find(|c| c.name == name)
        }
    }

    /// A strict reader for the subset of XML 1.0 the report uses: prolog, elements,
    /// attributes, text and the predefined and numeric character references. It rejects a raw
    /// `<` or `&` in attribute values, `]]>` in text, forbidden characters, mismatched or
    /// unclosed tags, duplicate attributes and anything after the root element.
    struct Reader<'a> {
        s: &'a str,
        i: usize,
    }

    impl<'a> Reader<'a> {
        fn rest(&self) -> &'a str {
            &self.s[self.i..]
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.rest().starts_with(lit) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn ws(&mut self) {
            while self.rest().starts_with([' ', '\t', '\n', '\r']) {
                self.i += 1;
            }
        }

        fn name(&mut self) -> Result<String, String> {
            let len = self
                .rest()
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_:-.".contains(c)))
                .unwrap_or(self.rest().len());
            if len == 0 || !self.rest().starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(format!("bad name at {}", self.i));
            }
            let n = self.rest()[..len].to_string();
            self.i += len;
            Ok(n)
        }

        fn char_ok(c: char) -> bool {
            matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}'
        }

        fn reference(&mut self) -> Result<char, String> {
            let end = self.rest().find(';').ok_or("unterminated reference")?;
            let body = &self.rest()[1..end];
            let c = match body {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = body.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?
                    } else if let Some(dec) = body.strip_prefix('#') {
                        dec.parse()
                            .map_err(|e: std::num::ParseIntError| e.to_string())?
                    } else {
                        return Err(format!("unknown entity &{body};"));
                    };
                    char::from_u32(code)
                        .filter(|c| Self::char_ok(*c))
                        .ok_or(format!("forbidden character reference &{body};"))?
                }
            };
            self.i += end + 1;
            Ok(c)
        }

        fn element(&mut self) -> Result<El, String> {
            if !self.eat("<") {
                return Err(format!("expected < at {}", self.i));
            }
            let name = self.name()?;
            let mut el = El {
                name,
                attrs: BTreeMap::new(),
                children: vec![],
                text: String::new(),
            };
            loop {
                let had_space = self.rest().starts_with([' ', '\t', '\n', '\r']);
                self.ws();
                if self.eat("/>") {
                    return Ok(el);
                }
                if self.eat(">") {
                    break;
                }
                if !had_space {
                    return Err(format!("missing space before attribute at {}", self.i));
                }
                let attr = self.name()?;
                self.ws();
                if !self.eat("=") {
                    return Err(format!("expected = after {attr}"));
                }
                self.ws();
                let quote = self.rest().chars().next().ok_or("eof in attribute")?;
                if quote != '"' && quote != '\'' {
                    return Err(format!("unquoted attribute {attr}"));
                }
                self.i += 1;
                let mut value = String::new();
                loop {
                    let c = self.rest().chars().next().ok_or("eof in attribute")?;
                    if c == quote {
                        self.i += 1;
                        break;
                    }
                    match c {
                        '<' => return Err(format!("raw < in attribute {attr}")),
                        '&' => value.push(self.reference()?),
                        c if !Self::char_ok(c) => {
                            return Err(format!("forbidden char {:?} in {attr}", c))
                        }
                        c => {
                            value.push(c);
                            self.i += c.len_utf8();
                        }
                    }
                }
                if el.attrs.insert(attr.clone(), value).is_some() {
                    return Err(format!("duplicate attribute {attr}"));
                }
            }
            loop {
                if self.eat("</") {
                    let close = self.name()?;
                    self.ws();
                    if close != el.name || !self.eat(">") {
                        return Err(format!("</{close}> closes <{}>", el.name));
                    }
                    return Ok(el);
                }
                if self.rest().starts_with("<!") || self.rest().starts_with("<?") {
                    return Err("comments, CDATA and PIs are not expected".into());
                }
                if self.rest().starts_with('<') {
                    el.children.push(self.element()?);
                    continue;
                }
                if self.rest().starts_with("]]>") {
                    return Err("]]> in text".into());
                }
                let c = self
                    .rest()
                    .chars()
                    .next()
                    .ok_or(format!("<{}> not closed", el.name))?;
                if c == '&' {
                    let r = self.reference()?;
                    el.text.push(r);
                } else if !Self::char_ok(c) {
                    return Err(format!("forbidden char {:?} in text", c));
                } else {
                    el.text.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn parse(doc: &str) -> Result<El, String> {
        let prolog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
        let mut r = Reader {
            s: doc.strip_prefix(prolog).ok_or("missing XML declaration")?,
            i: 0,
        };
        r.ws();
        let root = r.element()?;
        r.ws();
        if !r.rest().is_empty() {
            return Err("content after the root element".into());
        }
        Ok(root)
    }

    fn count(el: &El, attr: &str) -> usize {
        el.attr(attr).parse().unwrap_or(usize::MAX)
    }

    #[test]
    fn output_is_well_formed_with_the_right_counts() {
        let xml = render(&fixture());
        let root = parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(root.name, "testsuites");
        assert_eq!(root.attr("name"), "plumbline");
        // 8 findings + 3 unwaived policy violations + 1 error.
        assert_eq!(count(&root, "tests"), 12);
        assert_eq!(count(&root, "failures"), 6 + 3);
        assert_eq!(count(&root, "errors"), 1);
        assert_eq!(count(&root, "skipped"), 1);
        assert_eq!(root.attr("time"), "4.500");
        let names: Vec<&str> = root.children.iter().map(|s| s.attr("name")).collect();
        assert_eq!(
            names,
            [
                "prod-eu/infra",
                "prod-eu/web",
                &format!("prod-us/{HOSTILE}").replace(|c: char| c.is_control(), ""),
                "policies",
                "plumbline/errors"
            ]
        );
        for suite in &root.children {
            assert_eq!(suite.name, "testsuite");
            let cases = suite.find_all("testcase");
            assert_eq!(count(suite, "tests"), cases.len());
            assert_eq!(count(suite, "failures"), suite.find_all("failure").len());
            assert_eq!(count(suite, "errors"), suite.find_all("error").len());
            assert_eq!(count(suite, "skipped"), suite.find_all("skipped").len());
        }
        let web = &root.children[1];
        assert_eq!(web.children.len(), 6);
        assert_eq!((count(web, "failures"), count(web, "skipped")), (4, 1));
    }

    #[test]
    fn test_cases_carry_status_and_changes() {
        let root = parse(&render(&fixture())).expect("well-formed");
        let case = |name: &str| -> &El {
            root.find_all("testcase")
                .into_iter()
                .find(|c| c.attr("name") == name)
                .unwrap_or_else(|| panic!("no test case {name}"))
        };
        let in_sync = case("Service web/api");
        assert_eq!(in_sync.attr("classname"), "prod-eu.web");
        assert!(in_sync.children.is_empty());

        let modified = case("Deployment web/api")
            .child("failure")
            .expect("failure");
        assert_eq!(modified.attr("type"), "modified");
        assert!(modified
            .attr("message")
            .starts_with("Deployment web/api on prod-eu: /spec/replicas desired 3, live 5"));
        // The text lists every change, not only the first five.
        assert!(modified
            .text
            .contains("/spec/revisionHistoryLimit desired 10, live 3"));
        assert!(modified.text.contains("changed by: kubectl-edit"));
        assert!(modified
            .text
            .contains("from Git: apps/web/deployment.yaml:12"));

        assert_eq!(
            case("ConfigMap web/settings")
                .child("failure")
                .map(|f| f.attr("type")),
            Some("missing")
        );
        assert_eq!(
            case("Ingress web/old")
                .child("failure")
                .map(|f| f.attr("type")),
            Some("orphaned")
        );
        assert_eq!(
            case("ClusterRole viewer").attr("classname"),
            "prod-eu.infra"
        );
        let skipped = case("Deployment web/worker")
            .child("skipped")
            .expect("skipped");
        assert_eq!(skipped.attr("message"), "differences ignored by rule");

        let secret = case("Secret web/db").child("failure").expect("failure");
        assert!(secret
            .text
            .contains("/data/password desired \"<redacted>\", live \"<redacted>\""));

        let error = case("live prod-us").child("error").expect("error");
        assert_eq!(error.attr("type"), "live");
        assert!(error
            .attr("message")
            .starts_with("connection refused <script>"));
    }

    #[test]
    fn policies_suite_lists_unwaived_violations() {
        let root = parse(&render(&fixture())).expect("well-formed");
        let suite = root
            .children
            .iter()
            .find(|s| s.attr("name") == "policies")
            .expect("policies suite");
        let kinds: Vec<(&str, &str)> = suite
            .children
            .iter()
            .map(|c| {
                let failure = c.child("failure").expect("failure");
                (c.attr("classname"), failure.attr("type"))
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("policies.no-latest-tag", "high"),
                ("policies.resource-limits", "medium"),
                ("policies.team-label", "low")
            ]
        );
        assert_eq!(
            suite.children[0].attr("name"),
            "Deployment web/api on prod-eu (live)"
        );
    }

    #[test]
    fn hostile_strings_are_escaped_and_stripped() {
        let xml = render(&fixture());
        assert!(!xml.contains("<script>"));
        assert!(!xml.contains("]]>"));
        assert!(!xml.contains("hunter2"));
        assert!(!xml.chars().any(|c| c.is_control() && c != '\n'));
        let root = parse(&xml).expect("well-formed");
        let clean: String = HOSTILE.chars().filter(|c| !c.is_control()).collect();
        let case = root
            .find_all("testcase")
            .into_iter()
            .find(|c| c.attr("classname") == format!("prod-us.{clean}"))
            .expect("hostile test case");
        assert_eq!(case.attr("name"), format!("ConfigMap {clean}/{clean}"));
        let failure = case.child("failure").expect("failure");
        assert!(failure.text.contains(&clean));
        assert!(failure.text.contains("live \"\\u0000\\u0007\\\"]]>\""));
    }

    #[test]
    fn escape_handles_every_special() {
        assert_eq!(
            escape("a<b>&\"'\u{1}\u{FFFF}\tc\r\n", true),
            "a&lt;b&gt;&amp;&quot;&apos;&#9;c&#13;&#10;"
        );
        assert_eq!(escape("x\ty\nz\u{7f}é", false), "x\ty\nz\u{7f}é");
    }

    #[test]
    fn empty_scan_and_duplicate_names() {
        let mut scan = fixture();
        scan.findings.clear();
        scan.policy_results.clear();
        scan.errors.clear();
        scan.started_at = "not a time".into();
        let root = parse(&render(&scan)).expect("well-formed");
        assert!(root.children.is_empty());
        assert_eq!(root.attr("tests"), "0");
        assert_eq!(root.attr("time"), "0.000");

        let mut scan = fixture();
        let twin = scan.findings[2].clone();
        scan.findings.push(twin);
        scan.errors.push(scan.errors[0].clone());
        let root = parse(&render(&scan)).expect("well-formed");
        let names: Vec<&str> = root
            .find_all("testcase")
            .into_iter()
            .map(|c| c.attr("name"))
            .collect();
        assert!(names.contains(&"ConfigMap web/settings (2)"));
        assert!(names.contains(&"live prod-us (2)"));
    }

    #[test]
    fn reader_rejects_broken_xml() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a x=\"<\"/>",
            "<a>&bogus;</a>",
            "<a>]]></a>",
            "<a>\u{1}</a>",
            "<a x=\"1\" x=\"2\"/>",
            "<a/><b/>",
            "<a>&#1;</a>",
        ] {
            let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{bad}");
            assert!(parse(&doc).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn times_parse() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(
            unix_seconds("2026-11-22T04:00:00+01:00"),
            unix_seconds("2026-11-22T03:00:00Z")
        );
        assert_eq!(unix_seconds("2026-11-22"), None);
        assert_eq!(
            duration_seconds("2026-11-22T03:00:05Z", "2026-11-22T03:00:00Z"),
            0.0
        );
    }

    #[test]
    fn python_minidom_accepts_the_output() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let script =
            "import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.buffer.read())";
        let child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipped: python3 is not installed, minidom cross-check not run");
            return;
        };
        let xml = render(&fixture());
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(xml.as_bytes())
            .expect("write to python3");
        let out = child.wait_with_output().expect("python3 ran");
        assert!(
            out.status.success(),
            "minidom rejected the report: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
