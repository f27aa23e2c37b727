//! Component ids and config errors that carry their YAML path.

use std::fmt;

use serde::de::DeserializeOwned;

/// A component id as written in the config: `type` or `type/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    kind: String,
    name: Option<String>,
}

impl ComponentId {
    /// Parses `type[/name]`. The type must be non-empty and made of `[A-Za-z0-9_]`; the name
    /// may hold anything but must be non-empty when the slash is present.
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        if kind.is_empty() {
            return Err(format!(
                "invalid component id {s:?}: the type part is empty"
            ));
        }
        if !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "invalid component id {s:?}: the type may only hold letters, digits and '_'"
            ));
        }
        if name == Some("") {
            return Err(format!(
                "invalid component id {s:?}: the name after '/' is empty"
            ));
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }

    /// The type part (`otlp` in `otlp/in`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The name part (`in` in `otlp/in`), if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.kind, n),
            None => f.write_str(&self.kind),
        }
    }
}

/// One config problem with the dotted YAML path it was found at
/// (`processors.batch/x.timeout`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Dotted path from the config root; list items as `[i]`.
    pub path: String,
    /// What is wrong, and where useful, what would be right.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a config, so that one run of `weir validate` lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Adds one problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(v)` when empty, else `Err(self)`.
    pub fn into_result<T>(self, v: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Deserializes a component's config section into its typed config, reporting every bad
/// field below `path` with its exact path, all in one run: after each problem (an unknown
/// field, a value of the wrong type) the offending key is set aside and the section is read
/// again, so `weir validate` lists every problem of a section at once. A missing or `null`
/// section means "all defaults".
pub fn parse_component_config<T: DeserializeOwned>(
    value: &serde_json::Value,
    path: &str,
) -> Result<T, ConfigErrors> {
    /// Re-reads of one section at most (each sets one bad key aside).
    const MAX_PROBLEMS: usize = 64;
    let mut v = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value.clone()
    };
    let mut errors = ConfigErrors::default();
    let mut set_aside: Vec<String> = Vec::new();
    for _ in 0..MAX_PROBLEMS {
        let e = match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => return errors.into_result(t),
            Err(e) => e,
        };
        let inner = e.path().to_string();
        let full = if inner == "." || inner.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        let message = e.inner().to_string();
        // A required field that was only missing because a bad value was set aside is not
        // a second problem.
        if set_aside
            .iter()
            .any(|k| message == format!("missing field `{k}`"))
        {
            break;
        }
        errors.push(full, message);
        let segments: Vec<&serde_path_to_error::Segment> = e.path().iter().collect();
        let Some((serde_path_to_error::Segment::Map { key }, parents)) = segments.split_last()
        else {
            break;
        };
        let Some(parent) = lookup_mut(&mut v, parents) else {
            break;
        };
        match parent.as_object_mut().and_then(|m| m.remove(key.as_str())) {
            Some(_) => set_aside.push(key.clone()),
            None => break,
        }
    }
    Err(errors)
}

fn lookup_mut<'v>(
    mut v: &'v mut serde_json::Value,
    segments: &[&serde_path_to_error::Segment],
) -> Option<&'v mut serde_json::Value> {
    for s in segments {
        v = match s {
            serde_path_to_error::Segment::Map { key } => v.get_mut(key.as_str())?,
            serde_path_to_error::Segment::Seq { index } => v.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(v)
}

/// A list of strings that may also be written as one string, split on `,` (each piece
/// trimmed of surrounding spaces, empty pieces dropped), as the OpenTelemetry Collector's
/// config loader does for every list field: `metric_names: up` and
/// `allowed_origins: "https://a,https://b"` read as lists; `null` reads as an empty list.
/// Use with `#[serde(deserialize_with = "weir_api::config::string_list")]`.
pub fn string_list<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
    list_from_value(v, true)
        .map(Option::unwrap_or_default)
        .map_err(serde::de::Error::custom)
}

/// [`string_list`] for an optional field: absent or `null` stays `None`.
pub fn opt_string_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
    list_from_value(v, true).map_err(serde::de::Error::custom)
}

/// A list of expressions (OTTL conditions and the like) that may also be written as one
/// string, taken whole as a single expression: unlike [`string_list`] it never splits on
/// `,`, because expressions hold commas (`IsMatch(body, "x")`). Absent or `null`: `None`.
pub fn expression_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
    list_from_value(v, false).map_err(serde::de::Error::custom)
}

fn list_from_value(v: serde_json::Value, split: bool) -> Result<Option<Vec<String>>, String> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::String(s) if split => Ok(Some(split_list(&s))),
        Value::String(s) => Ok(Some(vec![s])),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(format!("[{i}]: expected a string, found {other}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(format!(
            "expected a list of strings or one {}string, found {other}",
            if split { "comma-separated " } else { "" }
        )),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        size: u32,
        inner: Inner,
    }
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        flag: bool,
    }

    #[test]
    fn ids() {
        let id = ComponentId::parse("otlp/in").unwrap();
        assert_eq!((id.kind(), id.name()), ("otlp", Some("in")));
        assert_eq!(id.to_string(), "otlp/in");
        assert_eq!(ComponentId::parse("batch").unwrap().name(), None);
        assert!(ComponentId::parse("/x")
            .unwrap_err()
            .contains("type part is empty"));
        assert!(ComponentId::parse("a/")
            .unwrap_err()
            .contains("name after '/' is empty"));
        assert!(ComponentId::parse("a b").is_err());
    }

    #[test]
    fn errors_carry_full_path() {
        let v = serde_json::json!({"inner": {"flag": "yes"}});
        let e = parse_component_config::<Sample>(&v, "processors.x").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].path, "processors.x.inner.flag");
        assert!(
            e.0[0].message.contains("invalid type"),
            "{}",
            e.0[0].message
        );
        let v = serde_json::json!({"sise": 1});
        let e = parse_component_config::<Sample>(&v, "processors.x").unwrap_err();
        assert!(e.0[0].message.contains("unknown field `sise`"), "{e}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Required {
        #[allow(dead_code)]
        must: u32,
        #[serde(default)]
        #[allow(dead_code)]
        inner: Inner,
    }

    #[test]
    fn every_problem_of_a_section_is_reported_in_one_run() {
        let v = serde_json::json!({"sise": 1, "size": "big", "inner": {"flag": 2, "fleg": true}, "other": 1});
        let e = parse_component_config::<Sample>(&v, "p").unwrap_err();
        let paths: Vec<&str> = e.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "p.inner.flag",
                "p.inner.fleg",
                "p.other",
                "p.sise",
                "p.size"
            ],
            "{e}"
        );
        // A bad required value is one problem, not two.
        let e =
            parse_component_config::<Required>(&serde_json::json!({"must": "x"}), "p").unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].path, "p.must");
        // A missing required field is reported as such.
        let e = parse_component_config::<Required>(&serde_json::json!({}), "p").unwrap_err();
        assert_eq!(e.to_string(), "p: missing field `must`");
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Lists {
        #[serde(deserialize_with = "string_list")]
        names: Vec<String>,
        #[serde(deserialize_with = "opt_string_list")]
        maybe: Option<Vec<String>>,
        #[serde(deserialize_with = "expression_list")]
        exprs: Option<Vec<String>>,
    }

    #[test]
    fn a_string_reads_as_a_comma_separated_list() {
        let l: Lists = parse_component_config(
            &serde_json::json!({"names": "up", "maybe": "a, b,,c", "exprs": "IsMatch(body, \"x\")"}),
            "p",
        )
        .unwrap();
        assert_eq!(l.names, ["up"]);
        assert_eq!(
            l.maybe.as_deref(),
            Some(&["a".to_string(), "b".into(), "c".into()][..])
        );
        assert_eq!(l.exprs.unwrap(), ["IsMatch(body, \"x\")"]);
        let l: Lists =
            parse_component_config(&serde_json::json!({"names": ["a,b", "c"]}), "p").unwrap();
        assert_eq!(l.names, ["a,b", "c"], "list items are never split");
        assert_eq!(l.maybe, None);
        let e = parse_component_config::<Lists>(&serde_json::json!({"names": 3}), "p").unwrap_err();
        assert_eq!(e.0[0].path, "p.names");
        assert!(e.0[0].message.contains("comma-separated"), "{e}");
    }

    #[test]
    fn null_means_defaults() {
        let s: Sample = parse_component_config(&serde_json::Value::Null, "p").unwrap();
        assert_eq!(s.size, 0);
    }
}
