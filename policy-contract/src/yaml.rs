//! One policy document as YAML: read (a write through the control plane's API: the policy
//! editor's text goes there as it is) and rendered (the text a policy is shown and edited
//! as). The catalog's UI has no YAML code of its own; this is the policy document's one YAML
//! reader and writer, and what it writes it reads back to the same document.

use serde_json::Value as Json;

/// A policy document that is not valid YAML: where, and what the YAML reader said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct YamlError {
    /// 1-based line of the problem.
    pub line: u64,
    /// 1-based column of the problem.
    pub column: u64,
    /// What is wrong there.
    pub message: String,
}

fn read(text: &str) -> Result<Json, serde_saphyr::Error> {
    // YAML 1.2 booleans only: `n`, `no`, `on`, `y` stay strings (as parse::parse_document).
    serde_saphyr::from_str_with_options(
        text,
        serde_saphyr::options! { strict_booleans: true, with_snippet: false },
    )
}

/// Reads one policy document written in YAML (JSON is YAML too) into the JSON form
/// [`crate::parse::parse_policy`] reads. A syntax error names its line and column; a
/// document that is not a mapping is refused. Duplicate keys are refused and the reader's
/// budget bounds aliases, depth (64) and size.
pub fn policy_from_yaml(text: &str) -> Result<Json, YamlError> {
    let doc = read(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        // The reader's message ends with the place, said once here; and its advice to
        // the program calling it is not for the person who wrote the policy.
        let message = e.without_snippet().to_string();
        let message = message
            .strip_suffix(&format!(" at line {line}, column {column}"))
            .unwrap_or(&message)
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        YamlError {
            line,
            column,
            message,
        }
    })?;
    match doc {
        Json::Object(_) => Ok(doc),
        other => Err(YamlError {
            line: 1,
            column: 1,
            message: format!(
                "a policy document is a mapping (id, name, and log, metric or trace), not {}",
                match other {
                    Json::Null => "an empty document",
                    Json::Bool(_) => "a boolean",
                    Json::Number(_) => "a number",
                    Json::String(_) => "a string",
                    _ => "a list",
                }
            ),
        }),
    }
}

/// The YAML a policy document is shown and edited as: block style, lists indented under
/// their key; the policy's `id`, `name`, `description` and `enabled` first, in a matcher the
/// field or attribute it reads before how it matches, `keep` and `transform` after what they
/// apply to, other keys in name order. Strings are plain where the reader reads them back
/// as the same string, else double-quoted. [`policy_from_yaml`] reads it back to `doc`.
pub fn policy_to_yaml(doc: &Json) -> String {
    let mut out = String::new();
    match doc {
        Json::Object(m) if !m.is_empty() => map(m, 0, false, &mut out),
        Json::Array(a) if !a.is_empty() => list(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Where a key goes among its siblings.
fn rank(key: &str) -> u8 {
    match key {
        "id" => 0,
        "name" => 1,
        "description" => 2,
        "enabled" => 3,
        "keep" => 6,
        "transform" => 7,
        k if ["_field", "_attribute", "Field", "Attribute"]
            .iter()
            .any(|end| k.ends_with(end)) =>
        {
            4
        }
        _ => 5,
    }
}

fn map(m: &serde_json::Map<String, Json>, indent: usize, inline_first: bool, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by_key(|k| (rank(k), k.as_str()));
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 || !inline_first {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(k, true));
        out.push(':');
        value(&m[k], indent, out);
    }
}

fn list(a: &[Json], indent: usize, out: &mut String) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Json::Object(m) if !m.is_empty() => {
                out.push(' ');
                map(m, indent + 2, true, out);
            }
            _ => value(v, indent, out),
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, or a nested block below.
fn value(v: &Json, indent: usize, out: &mut String) {
    match v {
        Json::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(m, indent + 2, false, out);
        }
        Json::Array(a) if !a.is_empty() => {
            out.push('\n');
            list(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => string(s, false),
        Json::Object(_) => "{}".into(),
        Json::Array(_) => "[]".into(),
        // null, booleans and numbers are written as JSON writes them, which YAML 1.2
        // reads back the same.
        other => other.to_string(),
    }
}

/// `s` plain when the reader gives back `s` from it as a value (after `k:` and after `-`)
/// or as a key; else as a JSON string, which is a valid YAML double-quoted scalar.
fn string(s: &str, key: bool) -> String {
    let plain = !s.is_empty()
        && !s.contains(['\n', '\r', '\t', '"', '\''])
        && if key {
            read(&format!("{s}: 0")).is_ok_and(|d| {
                d.as_object()
                    .is_some_and(|m| m.contains_key(s) && m.len() == 1)
            })
        } else {
            read(&format!("k: {s}")).is_ok_and(|d| d["k"].as_str() == Some(s))
                && read(&format!("- {s}")).is_ok_and(|d| d[0].as_str() == Some(s))
        };
    if plain {
        s.to_string()
    } else {
        Json::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_the_same() {
        let docs = [
            serde_json::json!({"id": "p", "name": "drop debug", "log": {"match": [
                {"log_field": "severity_text", "exact": "DEBUG"},
                {"resource_attribute": ["service.name"], "regex": "^health check passed in \\d+ms$"}],
                "keep": "none"}}),
            serde_json::json!({"a": ["yes", "no", "y", "n", "on", "off", "10", "1.5", "0x1f", "1e3",
                "", " lead", "trail ", "x: y", "# z", "a #b", "-1", "- x", "? q", "it's", "say \"hi\"",
                "a\nb", "tab\there", "~", "null", "Null", "true", "True", "[x]", "{y}", "*alias",
                "&anchor", "!tag", "|", ">", "%", "@", "`", "é ü 名前", "\u{2028}", "a: b: c",
                null, true, false, 0, -7, 1.5, 18446744073709551615u64],
                "b": {}, "c": [], "d": [[1, [2]], {"e": {"f": "true"}}, [], {}],
                "key with: colon": "~", "": "empty key", "10": "numeric key", "true": 1,
                "- dash": 1, "# hash": 2}),
            serde_json::json!({}),
        ];
        for d in docs {
            let text = policy_to_yaml(&d);
            assert_eq!(policy_from_yaml(&text).unwrap(), d, "{text}");
        }
    }

    #[test]
    fn a_policy_is_written_id_first_and_matchers_field_first() {
        let d = serde_json::json!({"log": {"keep": "none", "match": [
            {"regex": "^health \\d+ms$", "log_field": "body"},
            {"exact": "10", "resource_attribute": ["service.name"]}]},
            "name": "health checks", "id": "h", "enabled": true});
        assert_eq!(
            policy_to_yaml(&d),
            "id: h\nname: health checks\nenabled: true\nlog:\n  match:\n    - log_field: body\n      \
             regex: ^health \\d+ms$\n    - resource_attribute:\n        - service.name\n      \
             exact: \"10\"\n  keep: none\n"
        );
    }

    #[test]
    fn errors_name_the_line_and_column_once() {
        let e = |t: &str| policy_from_yaml(t).unwrap_err().to_string();
        assert_eq!(
            e("id: x\n  name: y\n"),
            "line 2 column 7: mapping values are not allowed in this context"
        );
        assert_eq!(
            e("id: x\nname: y\nid: z\n"),
            "line 3 column 1: duplicate mapping key: id"
        );
        assert_eq!(e("id: [\n"), "line 1 column 5: unclosed bracket '['");
        assert_eq!(
            e("a: &x 1\nb: *y\n"),
            "line 2 column 4: alias references unknown anchor"
        );
        assert_eq!(
            e("- a\n"),
            "line 1 column 1: a policy document is a mapping (id, name, and log, metric or trace), not a list"
        );
        assert_eq!(
            e(""),
            "line 1 column 1: a policy document is a mapping (id, name, and log, metric or trace), not an empty document"
        );
        // YAML 1.2: `no` is a string, as the edge's policy files read it.
        assert_eq!(policy_from_yaml("id: no\n").unwrap()["id"], "no");
    }

    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let mut t = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            t.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = policy_from_yaml(&t).unwrap_err();
        // Refused once the reader's budget of nodes is spent (250 000), not expanded.
        assert!(
            e.to_string()
                .starts_with("line 6 column 15: budget breached"),
            "{e}"
        );
    }
}
