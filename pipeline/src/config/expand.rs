//! `${...}` expansion in config values, as the collector does it.
//!
//! - `${env:VAR}` and `${VAR}`: the environment variable (unset: empty, with a warning).
//! - `${env:VAR:-default}`: `default` when `VAR` is unset.
//! - `${file:path}`: the file's content (relative paths from the working directory).
//! - `${http://...}`, `${https://...}`: the body of a GET (see `config::http`).
//! - `$$`: a literal `$`.
//!
//! A value that is exactly one `${...}` takes the YAML type of what it expands to
//! (`port: ${env:PORT}` with `PORT=4317` is the number 4317); inside a longer string the
//! expansion is text. Only values are expanded, never keys, and an expansion is not expanded
//! again.

use std::path::Path;

use serde_json::Value;
use weir_api::ConfigErrors;

use super::yaml;

/// Where `${...}` references are looked up.
pub trait Resolver {
    /// The environment variable `name`, if set.
    fn env(&self, name: &str) -> Option<String>;
    /// The content of the file at `path`.
    fn file(&self, path: &str) -> Result<String, String>;
    /// The body of a GET of `uri` (`http://...` or `https://...`).
    fn http(&self, uri: &str) -> Result<String, String> {
        super::http::fetch(uri)
    }
}

/// The process environment and file system.
pub struct ProcessResolver;

impl Resolver for ProcessResolver {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn file(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(Path::new(path))
            .map_err(|e| format!("cannot read file {path:?}: {e}"))
    }
}

/// Expands every string value in `tree` in place, collecting every problem with its path.
pub fn expand_tree(tree: &mut Value, resolver: &dyn Resolver) -> Result<(), ConfigErrors> {
    let mut errors = ConfigErrors::default();
    walk(tree, String::new(), resolver, &mut errors);
    errors.into_result(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(v: &mut Value, path: String, resolver: &dyn Resolver, errors: &mut ConfigErrors) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                walk(child, join(&path, k), resolver, errors);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                walk(child, format!("{path}[{i}]"), resolver, errors);
            }
        }
        Value::String(s) if s.contains('$') => match expand_value(s, resolver) {
            Ok(new) => *v = new,
            Err(message) => errors.push(path, message),
        },
        _ => {}
    }
}

/// One piece of a string value: literal text or a `${...}` reference.
enum Piece<'a> {
    Text(String),
    Ref(&'a str),
}

fn split_pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        text.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            text.push('$');
            rest = tail;
        } else if let Some(inner_start) = after.strip_prefix('{') {
            let end = inner_start
                .find('}')
                .ok_or_else(|| format!("unterminated \"${{\" in {s:?}"))?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Ref(&inner_start[..end]));
            rest = &inner_start[end + 1..];
        } else {
            // A lone `$` (as in `$VAR` or a price) stays as written, like the collector.
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What one reference resolved to: raw text, and whether it came from a file (whose
/// content is YAML and loses its trailing newline when embedded in a string).
fn resolve(reference: &str, resolver: &dyn Resolver) -> Result<String, String> {
    let (scheme, rest) = match reference.split_once(':') {
        // `${VAR:-default}` is the env form without the scheme.
        Some((_, r)) if r.starts_with('-') => ("env", reference),
        Some((scheme, r)) => (scheme, r),
        None => ("env", reference),
    };
    match scheme {
        "env" => {
            let (name, default) = match rest.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (rest, None),
            };
            if !valid_env_name(name) {
                return Err(format!(
                    "environment variable {name:?} has an invalid name: it must match [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
            match (resolver.env(name), default) {
                (Some(v), _) => Ok(v),
                (None, Some(d)) => Ok(d.to_string()),
                (None, None) => {
                    tracing::warn!(
                        variable = name,
                        "environment variable is not set; using an empty value"
                    );
                    Ok(String::new())
                }
            }
        }
        "file" => resolver.file(rest),
        "http" | "https" => resolver.http(reference),
        other => Err(format!(
            "unsupported expansion scheme {other:?} in \"${{{reference}}}\" (supported: env, file, http, https)"
        )),
    }
}

/// Expands one string value.
pub fn expand_value(s: &str, resolver: &dyn Resolver) -> Result<Value, String> {
    let pieces = split_pieces(s)?;
    if let [Piece::Ref(r)] = pieces.as_slice() {
        let raw = resolve(r, resolver)?;
        return Ok(yaml::parse_value(&raw));
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Ref(r) => {
                let raw = resolve(r, resolver)?;
                if r.starts_with("file:") || r.starts_with("http:") || r.starts_with("https:") {
                    out.push_str(raw.trim_end_matches(['\n', '\r']));
                } else {
                    out.push_str(&raw);
                }
            }
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Fake {
        env: HashMap<&'static str, &'static str>,
        files: HashMap<&'static str, &'static str>,
    }
    impl Resolver for Fake {
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).map(|s| s.to_string())
        }
        fn file(&self, path: &str) -> Result<String, String> {
            self.files
                .get(path)
                .map(|s| s.to_string())
                .ok_or_else(|| format!("cannot read file {path:?}: not found"))
        }
    }
    fn fake() -> Fake {
        Fake {
            env: HashMap::from([
                ("PORT", "4317"),
                ("HOST", "example.com"),
                ("EMPTY", ""),
                ("FLAG", "true"),
            ]),
            files: HashMap::from([("/s/token", "s3cr3t\n"), ("/s/map.yaml", "a: 1\nb: [x]\n")]),
        }
    }
    fn x(s: &str) -> Result<Value, String> {
        expand_value(s, &fake())
    }

    #[test]
    fn env_forms() {
        assert_eq!(x("${env:HOST}").unwrap(), json!("example.com"));
        assert_eq!(x("${HOST}").unwrap(), json!("example.com"));
        assert_eq!(x("${env:MISSING:-fallback}").unwrap(), json!("fallback"));
        assert_eq!(x("${MISSING:-fallback}").unwrap(), json!("fallback"));
        assert_eq!(x("${env:EMPTY:-fallback}").unwrap(), json!(""));
        assert_eq!(x("${env:MISSING}").unwrap(), json!(""));
    }

    #[test]
    fn whole_value_takes_yaml_type() {
        assert_eq!(x("${env:PORT}").unwrap(), json!(4317));
        assert_eq!(x("${env:FLAG}").unwrap(), json!(true));
        assert_eq!(x("${env:MISSING:-12}").unwrap(), json!(12));
        assert_eq!(
            x("${file:/s/map.yaml}").unwrap(),
            json!({"a": 1, "b": ["x"]})
        );
        assert_eq!(x("${file:/s/token}").unwrap(), json!("s3cr3t"));
    }

    #[test]
    fn embedded_is_text() {
        assert_eq!(
            x("${env:HOST}:${env:PORT}").unwrap(),
            json!("example.com:4317")
        );
        assert_eq!(
            x("Bearer ${file:/s/token}").unwrap(),
            json!("Bearer s3cr3t")
        );
        assert_eq!(x("port-${PORT}").unwrap(), json!("port-4317"));
    }

    #[test]
    fn dollar_escape_and_lone_dollar() {
        assert_eq!(x("$${env:HOST}").unwrap(), json!("${env:HOST}"));
        assert_eq!(x("a$$b").unwrap(), json!("a$b"));
        assert_eq!(x("costs $5").unwrap(), json!("costs $5"));
        assert_eq!(x("$HOST").unwrap(), json!("$HOST"));
    }

    #[test]
    fn errors_are_exact() {
        assert_eq!(
            x("${env:A-B}").unwrap_err(),
            "environment variable \"A-B\" has an invalid name: it must match [A-Za-z_][A-Za-z0-9_]*"
        );
        assert_eq!(
            x("${vault:x}").unwrap_err(),
            "unsupported expansion scheme \"vault\" in \"${vault:x}\" (supported: env, file, http, https)"
        );
        assert_eq!(
            x("${env:HOST").unwrap_err(),
            "unterminated \"${\" in \"${env:HOST\""
        );
        assert_eq!(
            x("${file:/nope}").unwrap_err(),
            "cannot read file \"/nope\": not found"
        );
    }

    #[test]
    fn tree_expands_values_not_keys_and_collects_paths() {
        let mut tree = json!({
            "exporters": {"otlp/${HOST}": {"endpoint": "${env:HOST}:${env:PORT}", "headers": ["${vault:a}", "${env:PORT}"]}},
            "x": "${env:1BAD}"
        });
        let errs = expand_tree(&mut tree, &fake()).unwrap_err();
        let lines: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "exporters.otlp/${HOST}.headers[0]: unsupported expansion scheme \"vault\" in \"${vault:a}\" (supported: env, file, http, https)".to_string(),
                "x: environment variable \"1BAD\" has an invalid name: it must match [A-Za-z_][A-Za-z0-9_]*".to_string(),
            ]
        );
        assert_eq!(
            tree["exporters"]["otlp/${HOST}"]["endpoint"],
            json!("example.com:4317")
        );
        assert_eq!(tree["exporters"]["otlp/${HOST}"]["headers"][1], json!(4317));
    }
}
