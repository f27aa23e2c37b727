//! The log target's own parts: the `keep` grammar, the sample key and the transform.

use std::time::Duration;

use super::matchers::{log_field, path};
use super::{build_regex, Errors, LogKeep, LogTransform, TransformOp};
use crate::record::{Field, WellKnown};
use crate::sampling::RateLimiter;
use weir_policy_contract::proto;

/// Parses a log `keep` string.
pub fn parse_keep(keep: &str) -> Option<LogKeep> {
    let k = keep.trim();
    if k.is_empty() || k.eq_ignore_ascii_case("all") {
        return Some(LogKeep::All);
    }
    if k.eq_ignore_ascii_case("none") {
        return Some(LogKeep::None);
    }
    if let Some(p) = k.strip_suffix('%') {
        let p = p.trim();
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return None;
        }
        let percent: f64 = p.parse().ok()?;
        if !(0.0..=100.0).contains(&percent) {
            return None;
        }
        return Some(if percent >= 100.0 {
            LogKeep::All
        } else if percent <= 0.0 {
            LogKeep::None
        } else {
            LogKeep::Percent {
                percent,
                threshold: crate::sampling::threshold_for_percent(percent, 14),
            }
        });
    }
    let (n, window) = k.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let n = n.trim();
    if !digits(n) {
        return None;
    }
    let limit: u64 = n.parse().ok()?;
    let window = window.trim();
    // By suffix, not by byte index: a window ending in a multi-byte character is refused,
    // not split inside it.
    let (d, secs_per) = if let Some(d) = window.strip_suffix('s') {
        (d, 1)
    } else if let Some(d) = window.strip_suffix('m') {
        (d, 60)
    } else {
        return None;
    };
    let d: u64 = if d.is_empty() {
        1
    } else if digits(d) {
        d.parse().ok()?
    } else {
        return None;
    };
    if limit == 0 || d == 0 {
        return None;
    }
    Some(LogKeep::Rate(RateLimiter::new(
        limit,
        Duration::from_secs(d.checked_mul(secs_per)?),
    )))
}

pub(super) fn transform(t: &proto::LogTransform, errs: &mut Errors) -> LogTransform {
    use proto::{log_add, log_redact, log_remove, log_rename};
    let mut out = LogTransform::default();
    for (i, r) in t.remove.iter().enumerate() {
        let place = format!("log: transform: remove[{i}]");
        out.remove.push(TransformOp::Remove(log_selector!(
            log_remove,
            &r.field,
            Field::Well(WellKnown::Body),
            &place,
            errs
        )));
    }
    for (i, r) in t.redact.iter().enumerate() {
        let place = format!("log: transform: redact[{i}]");
        let field = log_selector!(
            log_redact,
            &r.field,
            Field::Well(WellKnown::Body),
            &place,
            errs
        );
        let regex = r.regex.as_ref().and_then(|p| match build_regex(p) {
            Ok(re) => Some(re),
            Err(_) => {
                errs.push(&place, format!("invalid regex {p:?}"));
                None
            }
        });
        out.redact.push(TransformOp::Redact {
            field,
            replacement: r.replacement.clone(),
            regex,
        });
    }
    for (i, r) in t.rename.iter().enumerate() {
        let place = format!("log: transform: rename[{i}]");
        let from = match &r.from {
            None => {
                errs.push(&place, "missing field selector");
                Field::Well(WellKnown::Body)
            }
            Some(log_rename::From::FromLogField(f)) => log_field(*f, &place, errs),
            Some(log_rename::From::FromLogAttribute(p)) => Field::Record(path(p, &place, errs)),
            Some(log_rename::From::FromResourceAttribute(p)) => {
                Field::Resource(path(p, &place, errs))
            }
            Some(log_rename::From::FromScopeAttribute(p)) => Field::Scope(path(p, &place, errs)),
        };
        if r.to.is_empty() {
            errs.push(&place, "to must not be empty");
        }
        out.rename.push(TransformOp::Rename {
            from,
            to: r.to.clone(),
            upsert: r.upsert,
        });
    }
    for (i, a) in t.add.iter().enumerate() {
        let place = format!("log: transform: add[{i}]");
        out.add.push(TransformOp::Add {
            field: log_selector!(
                log_add,
                &a.field,
                Field::Well(WellKnown::Body),
                &place,
                errs
            ),
            value: a.value.clone(),
            upsert: a.upsert,
        });
    }
    out
}

pub(super) fn sample_key(k: &proto::LogSampleKey, errs: &mut Errors) -> Field {
    use proto::log_sample_key;
    let place = "log: sample_key";
    log_selector!(
        log_sample_key,
        &k.field,
        Field::Well(WellKnown::TraceId),
        place,
        errs
    )
}
