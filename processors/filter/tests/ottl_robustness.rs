#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use weir_filter::ottl::{compile_group, Ctx, Item, PathMode, Record, SignalKind};

/// Fragments that make up conditions, valid and broken, so generated inputs reach deep
/// into the parser and compiler rather than failing on the first character.
const FRAGMENTS: &[&str] = &[
    "attributes",
    "[",
    "]",
    "\"k\"",
    "\"",
    "0",
    "-1",
    "1.5e3",
    ".",
    "..",
    "(",
    ")",
    ",",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "and",
    "or",
    "not",
    "true",
    "false",
    "nil",
    "0xCAFE",
    "0x",
    "body",
    "log",
    "resource",
    "scope",
    "span",
    "name",
    "IsMatch",
    "Concat",
    "Len",
    "Int",
    "String",
    "IsRootSpan",
    "SEVERITY_NUMBER_WARN",
    "{",
    "}",
    "+",
    "*",
    " ",
    "é",
    "\\",
    "severity_number",
    "metric",
    "datapoint",
    "value_int",
];

const VALUES: &[&str] = &[
    "log.body",
    "body",
    "attributes[\"k\"]",
    "log.attributes[\"k\"][\"x\"]",
    "1",
    "2.5",
    "\"v\"",
    "nil",
    "true",
    "0x01",
    "severity_number",
    "SEVERITY_NUMBER_INFO",
    "Len(body)",
    "Int(attributes[\"k\"])",
    "String(severity_number)",
    "resource.attributes",
    "Concat([body, 1], \"-\")",
    "IsMatch(body, \"x\")",
    "attributes[\"k\"][0]",
];
const OPS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

fn pick(rng: &mut SplitMix, from: &[&'static str]) -> &'static str {
    from[(rng.next() % from.len() as u64) as usize]
}

#[test]
fn arbitrary_conditions_never_panic() {
    let mut rng = SplitMix(2024);
    let rec = log("x", 9, vec![kv("k", s("v"))]);
    let record = Record {
        resource: None,
        scope: None,
        item: Item::Log(&rec),
    };
    let (mut compiled, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let text = if rng.next().is_multiple_of(2) {
            let len = 1 + (rng.next() % 12) as usize;
            (0..len)
                .map(|_| pick(&mut rng, FRAGMENTS))
                .collect::<Vec<_>>()
                .join(if rng.next().is_multiple_of(2) {
                    " "
                } else {
                    ""
                })
        } else {
            // Well-formed comparisons joined by and/or, some negated.
            let n = 1 + (rng.next() % 4) as usize;
            (0..n)
                .map(|_| {
                    let not = if rng.next().is_multiple_of(3) {
                        "not "
                    } else {
                        ""
                    };
                    format!(
                        "{not}{} {} {}",
                        pick(&mut rng, VALUES),
                        pick(&mut rng, OPS),
                        pick(&mut rng, VALUES)
                    )
                })
                .collect::<Vec<_>>()
                .join(if rng.next().is_multiple_of(2) {
                    " and "
                } else {
                    " or "
                })
        };
        let conds = vec![text.clone()];
        for mode in [PathMode::Explicit(Ctx::Log), PathMode::Inferred] {
            match compile_group(SignalKind::Logs, mode, &conds) {
                Ok(g) => {
                    compiled += 1;
                    // Evaluation may fail (type errors) but must not panic.
                    let _ = g.conditions[0].eval(&record);
                }
                Err(e) => {
                    rejected += 1;
                    assert!(!e.error.to_string().is_empty(), "{text}");
                }
            }
        }
        let _ = compile_group(
            SignalKind::Metrics,
            PathMode::Explicit(Ctx::DataPoint),
            &conds,
        );
        let _ = compile_group(
            SignalKind::Traces,
            PathMode::Explicit(Ctx::SpanEvent),
            &conds,
        );
    }
    // The generator must exercise both outcomes to mean anything.
    assert!(
        compiled > 100 && rejected > 100,
        "compiled {compiled}, rejected {rejected}"
    );
}
