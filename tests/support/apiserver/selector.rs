//! Label and field selectors with the grammar of `k8s.io/apimachinery/pkg/labels`:
//! `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`; a comma is AND.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    GreaterThan(i64),
    LessThan(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Not,
    NotEquals,
    Equals,
    DoubleEquals,
    Greater,
    Less,
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::NotEquals);
                } else {
                    tokens.push(Token::Not);
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::DoubleEquals);
                } else {
                    tokens.push(Token::Equals);
                }
            }
            '>' | '<' | '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '>' => Token::Greater,
                    '<' => Token::Less,
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            _ => {
                let mut ident = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "!=<>(),".contains(c) {
                        break;
                    }
                    ident.push(c);
                    chars.next();
                }
                tokens.push(Token::Ident(ident));
            }
        }
    }
    tokens
}

/// Label keys: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_value(name)
}

/// Label values: empty, or at most 63 characters as for key names.
fn valid_value(value: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    value.is_empty()
        || (value.len() <= 63
            && edge(value.chars().next())
            && edge(value.chars().last())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter; the error is the message of the 400.
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        let tokens = tokenize(input);
        let mut requirements = Vec::new();
        let mut pos = 0;
        let err = |what: &str| Err(format!("unable to parse requirement: {what} in {input:?}"));
        while pos < tokens.len() {
            let requirement = match &tokens[pos] {
                Token::Not => match tokens.get(pos + 1) {
                    Some(Token::Ident(key)) => {
                        pos += 2;
                        Requirement {
                            key: key.clone(),
                            op: Op::DoesNotExist,
                        }
                    }
                    _ => return err("expected a label key after '!'"),
                },
                Token::Ident(key) => {
                    pos += 1;
                    let op = match tokens.get(pos) {
                        None | Some(Token::Comma) => Op::Exists,
                        Some(Token::Equals | Token::DoubleEquals | Token::NotEquals) => {
                            let negate = tokens.get(pos) == Some(&Token::NotEquals);
                            pos += 1;
                            let value = match tokens.get(pos) {
                                Some(Token::Ident(v)) if v != "in" && v != "notin" => {
                                    pos += 1;
                                    v.clone()
                                }
                                None | Some(Token::Comma) => String::new(),
                                _ => return err("expected a value"),
                            };
                            if !valid_value(&value) {
                                return err(&format!("invalid label value {value:?}"));
                            }
                            if negate {
                                Op::NotEquals(value)
                            } else {
                                Op::Equals(value)
                            }
                        }
                        Some(Token::Ident(word)) if word == "in" || word == "notin" => {
                            let is_in = word == "in";
                            pos += 1;
                            if tokens.get(pos) != Some(&Token::Open) {
                                return err("expected '(' after in/notin");
                            }
                            pos += 1;
                            let mut values = Vec::new();
                            loop {
                                match tokens.get(pos) {
                                    Some(Token::Ident(v)) => {
                                        if !valid_value(v) {
                                            return err(&format!("invalid label value {v:?}"));
                                        }
                                        values.push(v.clone());
                                        pos += 1;
                                    }
                                    Some(Token::Comma) if !values.is_empty() => {
                                        pos += 1;
                                        if !matches!(tokens.get(pos), Some(Token::Ident(_))) {
                                            return err("expected a value after ','");
                                        }
                                    }
                                    Some(Token::Close) if !values.is_empty() => {
                                        pos += 1;
                                        break;
                                    }
                                    Some(Token::Close) => return err(
                                        "for 'in', 'notin' operators, values set can't be empty",
                                    ),
                                    _ => return err("expected ')'"),
                                }
                            }
                            if is_in {
                                Op::In(values)
                            } else {
                                Op::NotIn(values)
                            }
                        }
                        Some(Token::Greater | Token::Less) => {
                            let greater = tokens.get(pos) == Some(&Token::Greater);
                            pos += 1;
                            let number = match tokens.get(pos) {
                                Some(Token::Ident(v)) => v.parse::<i64>().ok(),
                                _ => None,
                            };
                            let Some(number) = number else {
                                return err(
                                    "for 'Gt', 'Lt' operators, the value must be an integer",
                                );
                            };
                            pos += 1;
                            if greater {
                                Op::GreaterThan(number)
                            } else {
                                Op::LessThan(number)
                            }
                        }
                        _ => return err("expected an operator"),
                    };
                    Requirement {
                        key: key.clone(),
                        op,
                    }
                }
                _ => return err("expected a label key"),
            };
            if !valid_key(&requirement.key) {
                return err(&format!("invalid label key {:?}", requirement.key));
            }
            requirements.push(requirement);
            match tokens.get(pos) {
                None => {}
                Some(Token::Comma) if pos + 1 < tokens.len() => pos += 1,
                _ => return err("expected ',' between requirements"),
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match &r.op {
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Equals(v) => value == Some(v.as_str()),
                Op::NotEquals(v) => value != Some(v.as_str()),
                Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
                Op::GreaterThan(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::LessThan(n) => value
                    .and_then(|x| x.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// A field selector on `metadata.name` and `metadata.namespace` (the fields every resource
/// supports) with `=`, `==` and `!=`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let key = field.trim_start_matches("metadata.");
            let actual = metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}
