#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Deeply nested conditions are refused with an error instead of overflowing the stack
//! (20 000 `(` aborted the process; found while writing the `ottl_parse` fuzz target, by
//! running it on crafted nesting).

use weir_filter::ottl::parser::{parse_condition, MAX_DEPTH};
use weir_filter::ottl::{compile_group, OttlError, PathMode, SignalKind};

fn nesting_error(src: &str) -> String {
    match parse_condition(src) {
        Err(OttlError::Syntax { message, .. }) => message,
        other => panic!("expected a nesting error, got {other:?}"),
    }
}

#[test]
fn thousands_of_levels_are_an_error_not_a_crash() {
    let expected = format!("the condition nests deeper than {MAX_DEPTH} levels");
    let parens = format!(
        "{}log.body == \"x\"{}",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    assert_eq!(nesting_error(&parens), expected);
    let nots = format!("{}log.body == \"x\"", "not ".repeat(20_000));
    assert_eq!(nesting_error(&nots), expected);
    let lists = format!("log.body == {}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert_eq!(nesting_error(&lists), expected);
    let calls = format!(
        "{}log.body{} == 1",
        "Len(".repeat(20_000),
        ")".repeat(20_000)
    );
    assert_eq!(nesting_error(&calls), expected);
}

#[test]
fn error_points_at_the_level_past_the_limit() {
    let src = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    match parse_condition(&src) {
        Err(OttlError::Syntax { at, .. }) => assert_eq!(at, MAX_DEPTH),
        other => panic!("expected a nesting error, got {other:?}"),
    }
}

#[test]
fn nesting_within_the_limit_still_compiles() {
    let src = format!("{}not log.body == \"x\"{}", "(".repeat(30), ")".repeat(30));
    let group = compile_group(SignalKind::Logs, PathMode::Inferred, &[src]).unwrap();
    assert_eq!(group.conditions.len(), 1);
    let nots = format!("{}log.severity_number > 4", "not ".repeat(40));
    assert!(parse_condition(&nots).is_ok());
}
