//! Unquoted timestamps in manifests. Kustomize reads objects with Go's yaml.v3, which
//! resolves a plain scalar such as `2024-01-01` to a time, and prints every object through
//! JSON, where that time becomes an RFC 3339 string (`"2024-01-01T00:00:00Z"`). Quoted and
//! block scalars stay as written. serde_yaml does not report scalar styles, so the stream
//! is read a second time with yaml-rust2's event parser to find these scalars.

use super::kustomization::Kustomization;
use super::Error;
use serde_json::Value;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// Why the objects of a file could not be read as kustomize reads them.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Kustomize fails on the input as well.
    Invalid(String),
    /// Kustomize's output depends on something this engine does not reproduce.
    Unsupported(String),
}

impl ReadError {
    pub fn into_error(self, k: &Kustomization, origin: &str) -> Error {
        match self {
            ReadError::Invalid(m) => k.invalid(format!("{origin}: {m}")),
            ReadError::Unsupported(m) => k.unsupported(format!("{m} ({origin})")),
        }
    }
}

/// Replaces, in `docs` (the documents of `bytes` as serde_yaml read them, empty ones left
/// out), every scalar yaml.v3 takes for a timestamp by the text kustomize prints for it.
pub(super) fn resolve(bytes: &[u8], docs: &mut [Value]) -> Result<(), ReadError> {
    if !may_hold_timestamp(bytes) {
        return Ok(());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ReadError::Unsupported("YAML that is not UTF-8".into()))?;
    // Scalar documents hold no objects; aligning only collections sidesteps how each parser
    // counts empty documents.
    let nodes: Vec<Node> = scan(text)?
        .into_iter()
        .filter(|n| !matches!(n, Node::Scalar(_)))
        .collect();
    let mut targets: Vec<&mut Value> = docs
        .iter_mut()
        .filter(|d| d.is_array() || d.is_object())
        .collect();
    if nodes.len() != targets.len() {
        return Err(disagree());
    }
    for (node, doc) in nodes.iter().zip(targets.iter_mut()) {
        // Lists are read as their items, as in `parse_resources`.
        let list = doc
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.ends_with("List"))
            && doc.get("items").is_some_and(Value::is_array);
        let mut walk = Walk {
            path: Vec::new(),
            list,
        };
        walk.apply(node, doc)?;
    }
    Ok(())
}

/// A cheap test that rules out most files: a timestamp starts with four digits, a dash and
/// a digit, all on its first line, unless it is explicitly tagged.
fn may_hold_timestamp(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-' && w[5].is_ascii_digit())
        || bytes.windows(9).any(|w| w == b"timestamp")
}

fn disagree() -> ReadError {
    ReadError::Unsupported("YAML the two parsers read differently".into())
}

/// The shape of a document, with what kustomize prints for each timestamp scalar, or the
/// error it fails with when printing it.
#[derive(Clone)]
enum Node {
    Scalar(Option<Result<String, String>>),
    Seq(Vec<Node>),
    /// Keys and values, alternating.
    Map(Vec<Node>),
}

fn scan(text: &str) -> Result<Vec<Node>, ReadError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut open: Vec<(Node, usize)> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    loop {
        let (event, _) = parser
            .next_token()
            .map_err(|e| ReadError::Unsupported(format!("YAML read differently ({e})")))?;
        let (node, anchor) = match event {
            Event::StreamEnd => break,
            Event::Scalar(value, style, anchor, tag) => (scalar(&value, style, tag), anchor),
            Event::Alias(id) => (anchors.get(&id).cloned().ok_or_else(disagree)?, 0),
            Event::SequenceStart(anchor, _) => {
                open.push((Node::Seq(Vec::new()), anchor));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                open.push((Node::Map(Vec::new()), anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop().ok_or_else(disagree)?,
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match open.last_mut() {
            Some((Node::Seq(items) | Node::Map(items), _)) => items.push(node),
            Some((Node::Scalar(_), _)) => return Err(disagree()),
            None => docs.push(node),
        }
    }
    Ok(docs)
}

const TIMESTAMP_TAG: &str = "tag:yaml.org,2002:timestamp";

/// yaml.v3 resolves an untagged (or `!`-tagged) plain scalar, and decodes one explicitly
/// tagged `!!timestamp` whatever its style, failing when it is no timestamp.
fn scalar(value: &str, style: TScalarStyle, tag: Option<Tag>) -> Node {
    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
    Node::Scalar(match tag.as_deref() {
        None | Some("!") if style == TScalarStyle::Plain => parse(value).map(|t| t.rfc3339_nano()),
        Some(TIMESTAMP_TAG) => Some(parse(value).map_or_else(
            || Err(format!("cannot decode `{value}` as a !!timestamp")),
            |t| t.rfc3339_nano(),
        )),
        _ => None,
    })
}

/// A walk over one document, which is a List when `list`.
struct Walk {
    path: Vec<String>,
    list: bool,
}

impl Walk {
    fn apply(&mut self, node: &Node, value: &mut Value) -> Result<(), ReadError> {
        let meta_field = self.object_meta_field();
        match (node, value) {
            // Kustomize adds and removes bookkeeping annotations on every object, which
            // rewrites the values of all its annotations as strings (but keeps the keys).
            (Node::Map(nodes), Value::Object(map))
                if meta_field == Some("annotations") && nodes.len() == 2 * map.len() =>
            {
                for (pair, key) in nodes.chunks(2).zip(map.keys()) {
                    check_key(&pair[0], key)?;
                }
                Ok(())
            }
            (Node::Scalar(None), _) => Ok(()),
            (Node::Scalar(Some(Err(message))), _) => Err(ReadError::Invalid(message.clone())),
            (Node::Scalar(Some(Ok(text))), Value::String(s)) => {
                if matches!(meta_field, Some("name" | "namespace")) {
                    return Err(ReadError::Unsupported(format!(
                        "unquoted timestamp as {}",
                        self.path.join(".")
                    )));
                }
                *s = text.clone();
                Ok(())
            }
            (Node::Seq(nodes), Value::Array(values)) if nodes.len() == values.len() => {
                for (i, (n, v)) in nodes.iter().zip(values.iter_mut()).enumerate() {
                    self.path.push(i.to_string());
                    let result = self.apply(n, v);
                    self.path.pop();
                    result?;
                }
                Ok(())
            }
            (Node::Map(nodes), Value::Object(map)) if nodes.len() == 2 * map.len() => {
                for (pair, (key, v)) in nodes.chunks(2).zip(map.iter_mut()) {
                    check_key(&pair[0], key)?;
                    self.path.push(key.clone());
                    let result = self.apply(&pair[1], v);
                    self.path.pop();
                    result?;
                }
                Ok(())
            }
            _ => Err(disagree()),
        }
    }

    /// The field of an object's (or a List item's) own metadata that the path names.
    ///
    /// An object's name and namespace are matched and rewritten as written while kustomize
    /// builds, and converted only when printed (unless a transformer set them meanwhile);
    /// converting them up front could select or name objects differently, so they are refused.
    fn object_meta_field(&self) -> Option<&str> {
        match self.path.as_slice() {
            [m, f] if m == "metadata" => Some(f),
            [items, _, m, f] if self.list && items == "items" && m == "metadata" => Some(f),
            _ => None,
        }
    }
}

/// Kustomize's JSON encoding refuses a map with a key that is not a string.
fn check_key(node: &Node, key: &str) -> Result<(), ReadError> {
    match node {
        Node::Scalar(Some(Err(message))) => Err(ReadError::Invalid(message.clone())),
        Node::Scalar(Some(Ok(_))) => Err(ReadError::Invalid(format!(
            "json: unsupported type: map[interface {{}}]interface {{}} (timestamp key {key})"
        ))),
        _ => Ok(()),
    }
}

/// A time as Go's time.Parse returns it for the layouts yaml.v3 tries.
#[derive(Debug, PartialEq)]
struct Stamp {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Seconds east of UTC.
    offset: i32,
}

#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
    Zone,
    Lit(u8),
    /// A space in a Go layout matches a run of spaces.
    Space,
}

use Part::*;

/// yaml.v3's allowedTimestampFormats, in its order: "2006-1-2T15:4:5.999999999Z07:00",
/// "2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2".
const LAYOUTS: [&[Part]; 4] = [
    &[
        Year,
        Lit(b'-'),
        Month,
        Lit(b'-'),
        Day,
        Lit(b'T'),
        Hour,
        Lit(b':'),
        Minute,
        Lit(b':'),
        Second,
        Fraction,
        Zone,
    ],
    &[
        Year,
        Lit(b'-'),
        Month,
        Lit(b'-'),
        Day,
        Lit(b't'),
        Hour,
        Lit(b':'),
        Minute,
        Lit(b':'),
        Second,
        Fraction,
        Zone,
    ],
    &[
        Year,
        Lit(b'-'),
        Month,
        Lit(b'-'),
        Day,
        Space,
        Hour,
        Lit(b':'),
        Minute,
        Lit(b':'),
        Second,
        Fraction,
    ],
    &[Year, Lit(b'-'), Month, Lit(b'-'), Day],
];

fn parse(s: &str) -> Option<Stamp> {
    LAYOUTS
        .iter()
        .find_map(|layout| parse_layout(s.as_bytes(), layout))
}

/// One or two digits, as Go's getnum takes them for non-padded layout fields.
fn number(v: &mut &[u8]) -> Option<u32> {
    let digits = v.iter().take(2).take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let n = v[..digits]
        .iter()
        .fold(0, |n, c| n * 10 + u32::from(c - b'0'));
    *v = &v[digits..];
    Some(n)
}

fn two_digits(v: &[u8]) -> Option<u32> {
    match v {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

fn parse_layout(s: &[u8], layout: &[Part]) -> Option<Stamp> {
    let mut t = Stamp {
        year: 0,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset: 0,
    };
    let mut v = s;
    for part in layout {
        match *part {
            Year => {
                let (digits, rest) = v.split_at_checked(4)?;
                if !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                t.year = digits.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
                v = rest;
            }
            Month => {
                t.month = number(&mut v).filter(|m| (1..=12).contains(m))?;
            }
            Day => t.day = number(&mut v)?,
            Hour => t.hour = number(&mut v).filter(|h| *h < 24)?,
            Minute => t.minute = number(&mut v).filter(|m| *m < 60)?,
            Second => t.second = number(&mut v).filter(|s| *s < 60)?,
            Fraction => {
                if let [b'.' | b',', d, ..] = v {
                    if d.is_ascii_digit() {
                        let digits = v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        // Digits past the ninth are dropped, not rounded.
                        let kept = &v[1..1 + digits.min(9)];
                        let n = kept.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
                        t.nanos = n * 10u32.pow(9 - kept.len() as u32);
                        v = &v[1 + digits..];
                    }
                }
            }
            Zone => {
                if let [b'Z', rest @ ..] = v {
                    v = rest;
                    continue;
                }
                let (zone, rest) = v.split_at_checked(6)?;
                if zone[3] != b':' {
                    return None;
                }
                let hours = two_digits(&zone[1..3]).filter(|h| *h <= 24)?;
                let minutes = two_digits(&zone[4..6]).filter(|m| *m <= 60)?;
                let offset = i32::try_from((hours * 60 + minutes) * 60).ok()?;
                t.offset = match zone[0] {
                    b'+' => offset,
                    b'-' => -offset,
                    _ => return None,
                };
                v = rest;
            }
            Lit(c) => {
                let (first, rest) = v.split_first()?;
                if *first != c {
                    return None;
                }
                v = rest;
            }
            Space => {
                if v.first().is_some_and(|c| *c != b' ') {
                    return None;
                }
                while let [b' ', rest @ ..] = v {
                    v = rest;
                }
            }
        }
    }
    (v.is_empty() && t.day >= 1 && t.day <= days_in(t.month, t.year)).then_some(t)
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Stamp {
    /// Go's Time.MarshalJSON: RFC 3339 with trailing zeros of the fraction dropped, "Z" for
    /// a zero offset, and an error for offsets of 24 hours or more.
    fn rfc3339_nano(&self) -> Result<String, String> {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos > 0 {
            out.push('.');
            out.push_str(format!("{:09}", self.nanos).trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
            return Ok(out);
        }
        let minutes = self.offset.unsigned_abs() / 60;
        if minutes / 60 >= 24 {
            return Err("json: error calling MarshalJSON for type time.Time: \
                 Time.MarshalJSON: timezone hour outside of range [0,23]"
                .into());
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        out.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(s: &str) -> Option<String> {
        parse(s).map(|t| t.rfc3339_nano().unwrap_or_else(|e| e))
    }

    #[test]
    fn formats_as_kustomize_prints() {
        let cases = [
            ("2024-01-01", "2024-01-01T00:00:00Z"),
            ("2024-1-5", "2024-01-05T00:00:00Z"),
            ("2024-01-01 10:00:00", "2024-01-01T10:00:00Z"),
            ("2024-01-01  10:00:00.5", "2024-01-01T10:00:00.5Z"),
            (
                "2001-12-14t21:59:43.10-05:00",
                "2001-12-14T21:59:43.1-05:00",
            ),
            (
                "2024-01-01T10:00:00.1234567891Z",
                "2024-01-01T10:00:00.123456789Z",
            ),
            ("2024-01-01T10:00:00,5Z", "2024-01-01T10:00:00.5Z"),
            ("2024-01-01T1:2:3Z", "2024-01-01T01:02:03Z"),
            ("2024-01-01T10:00:00-00:00", "2024-01-01T10:00:00Z"),
            ("2024-01-01T10:00:00+05:60", "2024-01-01T10:00:00+06:00"),
            ("0000-01-01", "0000-01-01T00:00:00Z"),
            ("2000-02-29", "2000-02-29T00:00:00Z"),
        ];
        for (input, output) in cases {
            assert_eq!(printed(input).as_deref(), Some(output), "{input}");
        }
        assert!(parse("2024-01-01T10:00:00+24:00").is_some_and(|t| t.rfc3339_nano().is_err()));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "2024-13-01",
            "2024-02-30",
            "1900-02-29",
            "2024-001-01",
            "12024-01-01",
            "2024-01-01T10:00:00",
            "2024-01-01 10:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T10:00:60Z",
            "2024-01-01T10:00:00+5:30",
            "2024-01-01T10:00:00+0530",
            "2024-01-01T10:00:00.Z",
            "2024-1-1t1:1:1.1z",
            "2024-01-01T10:00Z",
            "2024-01-01 10:00:00 +05:00",
            "2024-01-01T10:00:00+25:00",
        ] {
            assert_eq!(parse(input), None, "{input}");
        }
    }
}
