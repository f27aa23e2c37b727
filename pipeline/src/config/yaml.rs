//! YAML text to a `serde_json::Value` tree, with limits against hostile input.

use serde_json::Value;

/// Limits for one config document. Configs are small: these bounds stop alias bombs
/// ("billion laughs") and absurd nesting long before memory is at risk, and are far above
/// what any real collector config uses.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 1_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 64,
            max_documents: 1,
            max_nodes: 250_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
        },
        // YAML 1.2 booleans only, as the collector's parser: `yes`/`on` stay strings.
        strict_booleans: true,
        // `0755` and `1_000` stay strings, as in the collector.
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// Parses one YAML document. An empty document is an empty map, as in the collector.
pub fn parse_document(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_saphyr::from_str_with_options(text, options())
        .map_err(|e| one_line(&e.to_string()))?;
    Ok(match v {
        Value::Null => Value::Object(Default::default()),
        v => v,
    })
}

/// The first line of a parser error (the rest is a source snippet), so that `weir validate`
/// prints one problem per line.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if first.contains("budget breached") {
        format!("{first} (the document is too large, too deep or uses too many aliases)")
    } else {
        first.to_string()
    }
}

/// Parses a YAML scalar or document fragment the way the collector types an expanded value
/// (`"8080"` becomes a number, `"true"` a bool, `"a: 1"` a map). Text that is not valid YAML
/// stays a string.
pub fn parse_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::String(String::new());
    }
    match serde_saphyr::from_str_with_options::<Value>(text, options()) {
        Ok(v) => v,
        Err(_) => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_maps_lists_and_scalars() {
        let v = parse_document("a: 1\nb: [x, true]\nc: {d: 2.5}\ne:\n").unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": ["x", true], "c": {"d": 2.5}, "e": null})
        );
    }

    #[test]
    fn empty_document_is_empty_map() {
        assert_eq!(parse_document("# only a comment\n").unwrap(), json!({}));
        assert_eq!(parse_document("").unwrap(), json!({}));
    }

    #[test]
    fn typed_values() {
        assert_eq!(parse_value("8080"), json!(8080));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("localhost:4317"), json!("localhost:4317"));
        assert_eq!(parse_value("2s"), json!("2s"));
        assert_eq!(parse_value("[a, b]"), json!(["a", "b"]));
        assert_eq!(parse_value("'quoted'"), json!("quoted"));
        // Text that only looks like a number or a YAML 1.1 boolean keeps its spelling.
        assert_eq!(parse_value("0123"), json!("0123"));
        assert_eq!(parse_value("1_000"), json!("1_000"));
        assert_eq!(parse_value("yes"), json!("yes"));
        assert_eq!(parse_value("off"), json!("off"));
        assert_eq!(
            parse_document("a: on\nb: 010\n").unwrap(),
            json!({"a": "on", "b": "010"})
        );
    }

    /// yaml.v3's resolver (the Collector's): only true/false/True/False/TRUE/FALSE are
    /// booleans; ~, null, Null, NULL and nothing are null; 0x, 0o and 0b prefixes are numbers.
    #[test]
    fn scalars_resolve_as_in_the_collectors_yaml_reader() {
        let v =
            parse_document("processors:\n  attributes:\n    actions: [{key: n, action: delete}]\n")
                .unwrap();
        assert_eq!(
            v,
            json!({"processors": {"attributes": {"actions": [{"key": "n", "action": "delete"}]}}})
        );
        for s in [
            "n", "N", "y", "Y", "yes", "Yes", "NO", "on", "On", "off", "OFF", "tRue", "nUll",
        ] {
            assert_eq!(
                parse_document(&format!("k: {s}")).unwrap()["k"],
                json!(s),
                "{s}"
            );
            assert_eq!(parse_value(s), json!(s), "{s}");
        }
        for (s, b) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
        ] {
            assert_eq!(
                parse_document(&format!("k: {s}")).unwrap()["k"],
                json!(b),
                "{s}"
            );
        }
        for s in ["~", "null", "Null", "NULL", ""] {
            assert_eq!(
                parse_document(&format!("k: {s}")).unwrap()["k"],
                Value::Null,
                "{s:?}"
            );
        }
        for (s, n) in [
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("0b101", json!(5)),
            ("-0b101", json!(-5)),
            ("+12", json!(12)),
            ("1e3", json!(1000.0)),
            (".5", json!(0.5)),
        ] {
            assert_eq!(parse_document(&format!("k: {s}")).unwrap()["k"], n, "{s}");
        }
        // Quoted, every spelling is a string.
        assert_eq!(parse_document("k: 'true'").unwrap()["k"], json!("true"));
        assert_eq!(parse_document("k: \"0x1F\"").unwrap()["k"], json!("0x1F"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = parse_document(&doc).unwrap_err();
        assert!(err.contains("budget breached"), "{err}");
        assert!(
            err.ends_with("(the document is too large, too deep or uses too many aliases)"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn syntax_error_is_reported() {
        let err = parse_document("a: [1, 2\n").unwrap_err();
        assert_eq!(err, "line 1 column 4: unclosed bracket '['");
    }
}
