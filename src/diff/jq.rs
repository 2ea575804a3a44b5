//! The subset of jq path expressions that Argo CD users write in ignore rules:
//! `.a.b`, `."x.y"`, `.["x"]`, `.a[]`, `.a[]?`, `.a[2]`, pipes, and
//! `select(.path == value)` / `select(.path != value)`.
//!
//! An expression is evaluated against an object and gives the RFC 6901 pointers of the
//! nodes it selects; a change at or below one of them is ignored.

use super::compare::escape_pointer_token;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Each,
    Select {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

/// A parsed path expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JqPath {
    steps: Vec<Step>,
}

impl JqPath {
    pub fn parse(expression: &str) -> Result<JqPath, String> {
        let mut steps = Vec::new();
        for stage in split_pipes(expression) {
            let stage = stage.trim();
            if stage.is_empty() {
                return Err(format!("empty stage in jq path {expression:?}"));
            }
            if let Some(inner) = stage
                .strip_prefix("select(")
                .and_then(|s| s.strip_suffix(')'))
            {
                steps
                    .push(parse_select(inner).map_err(|e| format!("jq path {expression:?}: {e}"))?);
            } else {
                steps
                    .extend(parse_path(stage).map_err(|e| format!("jq path {expression:?}: {e}"))?);
            }
        }
        Ok(JqPath { steps })
    }

    /// Pointers of the nodes the expression selects in `object`.
    pub fn select(&self, object: &Value) -> Vec<String> {
        let mut current: Vec<(String, &Value)> = vec![(String::new(), object)];
        for step in &self.steps {
            let mut next = Vec::new();
            for (pointer, value) in current {
                match step {
                    Step::Field(name) => {
                        if let Some(child) = value.get(name) {
                            next.push((format!("{pointer}/{}", escape_pointer_token(name)), child));
                        }
                    }
                    Step::Index(index) => {
                        if let Some(child) = value.get(*index) {
                            next.push((format!("{pointer}/{index}"), child));
                        }
                    }
                    Step::Each => match value {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                next.push((format!("{pointer}/{i}"), item));
                            }
                        }
                        Value::Object(map) => {
                            for (k, item) in map {
                                next.push((format!("{pointer}/{}", escape_pointer_token(k)), item));
                            }
                        }
                        _ => {}
                    },
                    Step::Select {
                        path,
                        equal,
                        value: expected,
                    } => {
                        let found = path.iter().try_fold(value, |v, name| v.get(name));
                        let matches = match found {
                            Some(found) => super::compare::scalars_equal(found, expected),
                            None => expected.is_null(),
                        };
                        if matches == *equal {
                            next.push((pointer, value));
                        }
                    }
                }
            }
            current = next;
        }
        current.into_iter().map(|(pointer, _)| pointer).collect()
    }
}

/// Splits at `|` outside quotes and parentheses.
fn split_pipes(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in expression.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '|' if !quoted && depth == 0 => {
                parts.push(&expression[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expression[start..]);
    parts
}

fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    if chars.first() != Some(&'.') {
        return Err(format!("a path starts with '.', not {text:?}"));
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if i >= chars.len() {
                    if steps.is_empty() {
                        break; // `.` alone: the object itself
                    }
                    return Err("path ends with '.'".into());
                }
                if chars[i] == '"' {
                    let (name, end) = quoted(&chars, i)?;
                    steps.push(Step::Field(name));
                    i = end;
                } else if chars[i] == '[' {
                    continue;
                } else {
                    let start = i;
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                    {
                        i += 1;
                    }
                    if start == i {
                        return Err(format!("unexpected {:?}", chars[i]));
                    }
                    steps.push(Step::Field(chars[start..i].iter().collect()));
                }
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&']') {
                    steps.push(Step::Each);
                    i += 1;
                } else if chars.get(i) == Some(&'"') {
                    let (name, end) = quoted(&chars, i)?;
                    steps.push(Step::Field(name));
                    i = end;
                    if chars.get(i) != Some(&']') {
                        return Err("expected ']'".into());
                    }
                    i += 1;
                } else {
                    let start = i;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    let index: usize =
                        chars[start..i]
                            .iter()
                            .collect::<String>()
                            .parse()
                            .map_err(|_| {
                                "expected an index, \"name\" or nothing inside []".to_string()
                            })?;
                    if chars.get(i) != Some(&']') {
                        return Err("expected ']'".into());
                    }
                    i += 1;
                    steps.push(Step::Index(index));
                }
                if chars.get(i) == Some(&'?') {
                    i += 1;
                }
            }
            c if c.is_whitespace() => i += 1,
            c => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok(steps)
}

fn quoted(chars: &[char], open: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                name.push(chars[i + 1]);
                i += 2;
            }
            '"' => return Ok((name, i + 1)),
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

fn parse_select(inner: &str) -> Result<Step, String> {
    let (lhs, rhs, equal) = if let Some((l, r)) = inner.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = inner.split_once("!=") {
        (l, r, false)
    } else {
        return Err("select() supports `.path == value` and `.path != value`".into());
    };
    let path = parse_path(lhs.trim())?
        .into_iter()
        .map(|step| match step {
            Step::Field(name) => Ok(name),
            _ => Err("select() compares a field path".to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let value: Value = serde_json::from_str(rhs.trim())
        .map_err(|_| format!("select() value {:?} is not a JSON literal", rhs.trim()))?;
    Ok(Step::Select { path, equal, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1"},
            {"name": "istio-proxy", "image": "proxyv2:1.22"}
        ]}}}, "metadata": {"annotations": {"sidecar.istio.io/status": "{}"}}})
    }

    #[test]
    fn select_by_name_gives_the_item_pointer() {
        let path =
            JqPath::parse(".spec.template.spec.containers[] | select(.name == \"istio-proxy\")")
                .expect("parses");
        assert_eq!(
            path.select(&pod()),
            vec!["/spec/template/spec/containers/1"]
        );
    }

    #[test]
    fn quoted_fields_indexes_and_optional_iteration() {
        let annotation =
            JqPath::parse(".metadata.annotations.\"sidecar.istio.io/status\"").expect("parses");
        assert_eq!(
            annotation.select(&pod()),
            vec!["/metadata/annotations/sidecar.istio.io~1status"]
        );
        let image = JqPath::parse(".spec.template.spec.containers[0].image").expect("parses");
        assert_eq!(
            image.select(&pod()),
            vec!["/spec/template/spec/containers/0/image"]
        );
        let all = JqPath::parse(".spec.template.spec.containers[]?.image").expect("parses");
        assert_eq!(all.select(&pod()).len(), 2);
        let bracket = JqPath::parse(".metadata[\"annotations\"]").expect("parses");
        assert_eq!(bracket.select(&pod()), vec!["/metadata/annotations"]);
    }

    #[test]
    fn select_then_field_and_not_equal() {
        let path = JqPath::parse(
            ".spec.template.spec.containers[] | select(.name != \"istio-proxy\") | .image",
        )
        .expect("parses");
        assert_eq!(
            path.select(&pod()),
            vec!["/spec/template/spec/containers/0/image"]
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(JqPath::parse("spec.replicas").is_err());
        assert!(JqPath::parse(".a | select(.b > 1)").is_err());
        assert!(JqPath::parse(".a[").is_err());
    }
}
