//! The receiver's config: the Collector's fields as written (`Raw`), their defaults and
//! sizes, checked and turned into [`FileLogSettings`] with every problem named by its path.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use weir_api::ConfigErrors;

use super::split::Splitter;
use super::{operators, FileLogSettings};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum StartAt {
    Beginning,
    #[default]
    End,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Multiline {
    #[serde(default)]
    line_start_pattern: String,
    #[serde(default)]
    line_end_pattern: String,
    #[serde(default)]
    omit_pattern: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    start_at: StartAt,
    #[serde(default = "d_poll", with = "humantime_serde")]
    poll_interval: Duration,
    #[serde(default)]
    fingerprint_size: Option<serde_json::Value>,
    #[serde(default)]
    max_log_size: Option<serde_json::Value>,
    #[serde(default = "d_max_files")]
    max_concurrent_files: usize,
    #[serde(default = "d_encoding")]
    encoding: String,
    #[serde(default = "d_true")]
    include_file_name: bool,
    #[serde(default)]
    include_file_path: bool,
    #[serde(default)]
    include_file_name_resolved: bool,
    #[serde(default)]
    include_file_path_resolved: bool,
    #[serde(default)]
    multiline: Option<Multiline>,
    #[serde(default = "d_flush", with = "humantime_serde")]
    force_flush_period: Duration,
    #[serde(default)]
    delete_after_read: bool,
    #[serde(default)]
    storage: Option<String>,
    #[serde(default)]
    operators: Vec<serde_json::Value>,
    #[serde(default)]
    preserve_leading_whitespaces: bool,
    #[serde(default)]
    preserve_trailing_whitespaces: bool,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    resource: BTreeMap<String, String>,
}

fn d_poll() -> Duration {
    Duration::from_millis(200)
}
fn d_flush() -> Duration {
    Duration::from_millis(500)
}
fn d_max_files() -> usize {
    1024
}
fn d_encoding() -> String {
    "utf-8".into()
}
fn d_true() -> bool {
    true
}

/// A size as the Collector writes it: an integer of bytes, or a number with a unit
/// (`KB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB` of 1024; case does not matter).
pub(super) fn byte_size(v: &serde_json::Value) -> Result<usize, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n as usize);
    }
    let s = v
        .as_str()
        .ok_or_else(|| format!("{v} is not a size (an integer of bytes or e.g. \"1KiB\")"))?;
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 1024, \"1KiB\", \"1MB\")"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1048576.0,
        "gb" => 1e9,
        "gib" => 1073741824.0,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    Ok((n * mult) as usize)
}

fn vals(m: &BTreeMap<String, String>) -> BTreeMap<String, operators::Val> {
    m.iter()
        .map(|(k, v)| (k.clone(), operators::Val::Str(v.clone())))
        .collect()
}

pub(super) fn settings(raw: Raw, path: &str, errors: &mut ConfigErrors) -> Option<FileLogSettings> {
    let pipeline = operators::build(&raw.operators, path, errors);
    if raw.include.is_empty() {
        errors.push(format!("{path}.include"), "required: at least one glob");
    }
    let mut globs = |list: &[String], field: &str| -> Vec<glob::Pattern> {
        let mut out = Vec::new();
        for (i, g) in list.iter().enumerate() {
            match glob::Pattern::new(g) {
                Ok(p) => out.push(p),
                Err(e) => errors.push(format!("{path}.{field}[{i}]"), format!("{g:?}: {e}")),
            }
        }
        out
    };
    let include = globs(&raw.include, "include");
    let exclude = globs(&raw.exclude, "exclude");
    let mut size = |v: &Option<serde_json::Value>, field: &str, default: usize| match v {
        None => default,
        Some(v) => match byte_size(v) {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("{path}.{field}"), e);
                default
            }
        },
    };
    let fingerprint_size = size(&raw.fingerprint_size, "fingerprint_size", 1000);
    let max_log_size = size(&raw.max_log_size, "max_log_size", 1 << 20);
    if fingerprint_size < 16 {
        errors.push(
            format!("{path}.fingerprint_size"),
            "must be at least 16 bytes",
        );
    }
    if max_log_size == 0 {
        errors.push(format!("{path}.max_log_size"), "must be greater than 0");
    }
    if raw.max_concurrent_files == 0 {
        errors.push(format!("{path}.max_concurrent_files"), "must be positive");
    }
    if raw.poll_interval.is_zero() {
        errors.push(format!("{path}.poll_interval"), "must be greater than 0");
    }
    let raw_bytes = match raw.encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "" => false,
        "nop" => true,
        other => {
            errors.push(
                format!("{path}.encoding"),
                format!(
                    "{other:?} is not supported by weir's filelog receiver yet (use utf-8 or nop)"
                ),
            );
            false
        }
    };
    if raw.delete_after_read && raw.start_at != StartAt::Beginning {
        errors.push(
            format!("{path}.delete_after_read"),
            "requires start_at: beginning",
        );
    }
    let ml = raw.multiline.clone().unwrap_or_default();
    let compile = |p: &str, field: &str, errors: &mut ConfigErrors| match regex::bytes::Regex::new(
        &format!("(?m){p}"),
    ) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.push(format!("{path}.multiline.{field}"), format!("{p:?}: {e}"));
            None
        }
    };
    let splitter = match (
        ml.line_start_pattern.is_empty(),
        ml.line_end_pattern.is_empty(),
    ) {
        _ if raw_bytes
            && (!ml.line_start_pattern.is_empty() || !ml.line_end_pattern.is_empty()) =>
        {
            errors.push(
                format!("{path}.multiline"),
                "line_start_pattern and line_end_pattern cannot be used with encoding: nop",
            );
            Splitter::None
        }
        _ if raw_bytes => Splitter::None,
        (true, true) => Splitter::Newline,
        (false, true) => Splitter::LineStart {
            re: compile(&ml.line_start_pattern, "line_start_pattern", errors)?,
            omit: ml.omit_pattern,
        },
        (true, false) => Splitter::LineEnd {
            re: compile(&ml.line_end_pattern, "line_end_pattern", errors)?,
            omit: ml.omit_pattern,
        },
        (false, false) => {
            errors.push(
                format!("{path}.multiline"),
                "only one of line_start_pattern or line_end_pattern can be set",
            );
            Splitter::Newline
        }
    };
    Some(FileLogSettings {
        include,
        exclude,
        start_at_beginning: raw.start_at == StartAt::Beginning,
        poll_interval: raw.poll_interval,
        fingerprint_size,
        max_log_size,
        max_concurrent_files: raw.max_concurrent_files,
        raw_bytes,
        splitter,
        include_file_name: raw.include_file_name,
        include_file_path: raw.include_file_path,
        include_file_name_resolved: raw.include_file_name_resolved,
        include_file_path_resolved: raw.include_file_path_resolved,
        force_flush_period: raw.force_flush_period,
        delete_after_read: raw.delete_after_read,
        storage: raw.storage,
        keep_leading: raw.preserve_leading_whitespaces,
        keep_trailing: raw.preserve_trailing_whitespaces,
        attr_map: vals(&raw.attributes),
        res_map: vals(&raw.resource),
        attributes: raw.attributes,
        resource: raw.resource,
        pipeline,
    })
}
