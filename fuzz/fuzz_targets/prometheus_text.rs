//! Arbitrary bytes as a scraped body, in the Prometheus text format (first byte even) or
//! OpenMetrics (odd), through the `prometheus` receiver's parser and its conversion to
//! OTLP, twice (two scrapes of the same body). Nothing may panic, and:
//! - a refused body is a `line N: ...` error whose line exists in the body;
//! - a second scrape of the same body adds no series and marks none stale.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_receivers::prometheus::{parse_and_convert_twice, text::Format};

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(rest) else {
        return;
    };
    let format = if first % 2 == 0 {
        Format::Text
    } else {
        Format::OpenMetrics
    };
    match parse_and_convert_twice(body, format) {
        Ok((_, [_, second])) => {
            assert_eq!(second, (0, 0), "a second scrape of the same body changed series");
        }
        Err(e) => {
            let lines = body.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "{e} (body has {lines} lines)");
            assert!(e.to_string().starts_with(&format!("line {}: ", e.line)));
        }
    }
});
