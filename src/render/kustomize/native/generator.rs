//! ConfigMap and Secret generators, and the content hash kustomize appends to their names.

use super::files::{base_name, join};
use super::kustomization::{string_map, Kustomization};
use super::resource::Res;
use super::target::Loader;
use super::Error;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How a generated object combines with one of the same name already in the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Behavior {
    Create,
    Merge,
    Replace,
}

/// A generated object and how it joins the build.
pub(super) struct Generated {
    pub res: Res,
    pub behavior: Behavior,
}

/// Options shared by generators: per-generator ones merged with `generatorOptions`.
#[derive(Default, Clone)]
struct Options {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    disable_hash: bool,
    immutable: bool,
}

fn read_options(value: Option<&Value>, k: &Kustomization) -> Result<Options, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Options::default());
    };
    let map = value
        .as_object()
        .ok_or_else(|| k.invalid("generator options must be a map"))?;
    let mut options = Options::default();
    for (key, v) in map {
        match key.as_str() {
            "labels" => {
                options.labels =
                    string_map(Some(v)).map_err(|m| k.invalid(format!("labels: {m}")))?
            }
            "annotations" => {
                options.annotations =
                    string_map(Some(v)).map_err(|m| k.invalid(format!("annotations: {m}")))?
            }
            "disableNameSuffixHash" => options.disable_hash = v.as_bool().unwrap_or(false),
            "immutable" => options.immutable = v.as_bool().unwrap_or(false),
            other => return Err(k.unsupported(format!("generatorOptions.{other}"))),
        }
    }
    Ok(options)
}

/// Global options win over local ones, as in kustomize's MergeGlobalOptionsIntoLocal.
fn merge_options(mut local: Options, global: &Options) -> Options {
    for (key, value) in &global.labels {
        set_pair(&mut local.labels, key, value);
    }
    for (key, value) in &global.annotations {
        set_pair(&mut local.annotations, key, value);
    }
    local.disable_hash |= global.disable_hash;
    local.immutable |= global.immutable;
    local
}

fn set_pair(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    match pairs.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value.to_string(),
        None => pairs.push((key.to_string(), value.to_string())),
    }
}

/// Runs the kustomization's configMapGenerator and secretGenerator entries.
pub(super) fn generate(k: &Kustomization, loader: &mut Loader) -> Result<Vec<Generated>, Error> {
    let global = read_options(k.doc.get("generatorOptions"), k)?;
    let mut out = Vec::new();
    for (field, secret) in [("configMapGenerator", false), ("secretGenerator", true)] {
        for args in k.list(field)? {
            out.push(generate_one(k, loader, args, secret, &global)?);
        }
    }
    Ok(out)
}

fn generate_one(
    k: &Kustomization,
    loader: &mut Loader,
    args: &Value,
    secret: bool,
    global: &Options,
) -> Result<Generated, Error> {
    let map = args
        .as_object()
        .ok_or_else(|| k.invalid("generator entries must be maps"))?;
    let text = |field: &str| -> Result<String, Error> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(k.invalid(format!("generator {field} must be a string"))),
        }
    };
    let strings = |field: &str| -> Result<Vec<String>, Error> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| k.invalid(format!("generator {field} must be strings")))
                })
                .collect(),
            Some(_) => Err(k.invalid(format!("generator {field} must be a list"))),
        }
    };
    for key in map.keys() {
        let known = [
            "name",
            "namespace",
            "behavior",
            "files",
            "literals",
            "envs",
            "env",
            "options",
        ];
        if !(known.contains(&key.as_str()) || secret && key == "type") {
            return Err(k.unsupported(format!(
                "{}.{key}",
                if secret {
                    "secretGenerator"
                } else {
                    "configMapGenerator"
                }
            )));
        }
    }
    let name = text("name")?;
    if name.is_empty() {
        return Err(k.invalid("a generator needs a name"));
    }
    let behavior = match text("behavior")?.as_str() {
        "" | "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        other => return Err(k.invalid(format!("unknown generator behavior \"{other}\""))),
    };
    let options = merge_options(read_options(map.get("options"), k)?, global);

    // Key/value pairs in kustomize's order: env files, literals, then files.
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |key: String, value: Vec<u8>| -> Result<(), Error> {
        if pairs.iter().any(|(existing, _)| *existing == key) {
            return Err(k.invalid(format!(
                "configmap {name} illegally repeats the key `{key}`"
            )));
        }
        pairs.push((key, value));
        Ok(())
    };
    let mut env_files = strings("envs")?;
    let env = text("env")?;
    if !env.is_empty() {
        env_files.push(env);
    }
    for env_file in env_files {
        let bytes = loader.read_local(k, &env_file)?;
        for (key, value) in parse_env(&bytes).map_err(|m| k.invalid(format!("{env_file}: {m}")))? {
            add(key, value.into_bytes())?;
        }
    }
    for literal in strings("literals")? {
        let (key, value) = parse_literal(&literal).map_err(|m| k.invalid(m))?;
        add(key, value.into_bytes())?;
    }
    for source in strings("files")? {
        let (key, path) = match source.split_once('=') {
            Some(("", _)) => {
                return Err(k.invalid(format!("key missing in file source {source}")));
            }
            Some((key, path)) => (Some(key.to_string()), path.to_string()),
            None => (None, source.clone()),
        };
        let dir = super::files::parent(&k.file).to_string();
        let full = join(&dir, &path, &k.file)?;
        if key.is_none() && loader.files.is_dir(&full) {
            let names = loader.files.list(&full).map_err(|m| k.invalid(m))?;
            for entry in names {
                let entry_path = format!("{path}/{entry}");
                let entry_full = join(&dir, &entry_path, &k.file)?;
                if loader.files.is_dir(&entry_full) {
                    continue;
                }
                let bytes = loader.read_local(k, &entry_path)?;
                add(entry, bytes)?;
            }
            continue;
        }
        let bytes = loader.read_local(k, &path)?;
        let key = key.unwrap_or_else(|| base_name(&path).to_string());
        add(key, bytes)?;
    }

    let namespace = text("namespace")?;
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name.clone()));
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(namespace));
    }
    if !options.labels.is_empty() {
        metadata.insert("labels".into(), pairs_to_map(&options.labels));
    }
    if !options.annotations.is_empty() {
        metadata.insert("annotations".into(), pairs_to_map(&options.annotations));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String("v1".into()));
    obj.insert(
        "kind".into(),
        Value::String(if secret { "Secret" } else { "ConfigMap" }.into()),
    );
    obj.insert("metadata".into(), Value::Object(metadata));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, value) in pairs {
        if secret {
            data.insert(key, Value::String(wrapped_base64(&value)));
        } else {
            match String::from_utf8(value) {
                Ok(text) => {
                    data.insert(key, Value::String(text));
                }
                Err(e) => {
                    binary.insert(key, Value::String(b64.encode(e.into_bytes())));
                }
            }
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if secret {
        let kind = text("type")?;
        let kind = if kind.is_empty() {
            "Opaque".to_string()
        } else {
            kind
        };
        obj.insert("type".into(), Value::String(kind));
    }
    if options.immutable {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut res = Res::new(Value::Object(obj));
    res.needs_hash = !options.disable_hash;
    Ok(Generated { res, behavior })
}

/// Base64 as kustomize encodes generated Secret data: values longer than one 70-column
/// line are broken into lines, each ending with a newline.
fn wrapped_base64(value: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    if encoded.len() / LINE == 0 {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn pairs_to_map(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `key=value`, with one level of matching surrounding quotes removed from the value.
fn parse_literal(source: &str) -> Result<(String, String), String> {
    match source.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), remove_quotes(value))),
        _ => Err(format!(
            "invalid literal source {source}, expected key=value"
        )),
    }
}

fn remove_quotes(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && bytes[0] == bytes[bytes.len() - 1]
        && (bytes[0] == b'"' || bytes[0] == b'\'')
    {
        value[1..value.len() - 1].to_string()
    } else {
        value.to_string()
    }
}

/// Lines of `KEY=VALUE`; blank lines and `#` comments are skipped. A key without `=`
/// would take its value from the environment of the machine, which a reproducible
/// render cannot do.
fn parse_env(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "env file is not UTF-8".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => {
                if key.is_empty() || key.contains(char::is_whitespace) {
                    return Err(format!(
                        "line {}: invalid variable name {key:?}",
                        number + 1
                    ));
                }
                out.push((key.to_string(), value.to_string()));
            }
            None => {
                return Err(format!(
                    "line {}: {line} has no value; values from the environment are not supported",
                    number + 1
                ));
            }
        }
    }
    Ok(out)
}

/// Kustomize's name hash: sha256 over a JSON encoding of the object's kind and data, then the first ten hex digits with some letters swapped so it never spells
/// words.
pub(super) fn content_hash(obj: &Value) -> String {
    // Kustomize looks the name up with a path it does not split, so finds nothing and
    // always hashes an empty name.
    let name = "";
    let field = |key: &str| -> String {
        match obj.get(key) {
            None | Some(Value::Null) => go_json(&Value::String(String::new())),
            Some(value) => go_json(value),
        }
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // Go's json.Marshal of a map sorts its keys.
    let mut parts: Vec<(String, String)> = Vec::new();
    if kind == "Secret" {
        parts.push(("data".into(), field("data")));
        parts.push(("kind".into(), go_json(&Value::String("Secret".into()))));
        parts.push(("name".into(), go_json(&Value::String(name.into()))));
        if obj.get("stringData").is_some_and(Value::is_object) {
            parts.push(("stringData".into(), field("stringData")));
        }
        parts.push(("type".into(), field("type")));
    } else if kind == "ConfigMap" {
        if obj.get("binaryData").is_some_and(Value::is_object) {
            parts.push(("binaryData".into(), field("binaryData")));
        }
        parts.push(("data".into(), field("data")));
        parts.push(("kind".into(), go_json(&Value::String("ConfigMap".into()))));
        parts.push(("name".into(), go_json(&Value::String(name.into()))));
    } else {
        return encode(&Sha256::digest(go_json(obj).as_bytes()));
    }
    parts.sort();
    let body: Vec<String> = parts
        .iter()
        .map(|(k, v)| format!("{}:{v}", go_json(&Value::String(k.clone()))))
        .collect();
    let encoded = format!("{{{}}}", body.join(","));
    encode(&Sha256::digest(encoded.as_bytes()))
}

fn encode(digest: &[u8]) -> String {
    hex::encode(digest)
        .chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// JSON as Go's encoding/json writes it: map keys sorted, and `<`, `>`, `&`, U+2028,
/// U+2029 escaped.
fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
