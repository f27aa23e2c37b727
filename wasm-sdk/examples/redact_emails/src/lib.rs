//! Replaces e-mail addresses in string log bodies with `replacement` (default
//! `[REDACTED]`). Batches without an `@` in any body are answered "unchanged" without being
//! decoded.
//!
//! ```yaml
//! processors:
//!   wasm/redact:
//!     module: redact_emails.wasm
//!     config: { replacement: "<email>" }
//!     on_error: drop   # never forward unredacted data when the module fails
//! ```

use weir_wasm_sdk::otlp::common::v1::any_value::Value;
use weir_wasm_sdk::{export, Error, Logs, Processor};

struct RedactEmails {
    replacement: String,
}

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._%+-".contains(&c)
}

fn domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// The byte ranges of the e-mail addresses in `text`: a local part, `@`, and a domain of at
/// least two labels ending in a letter.
fn email_ranges(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = b[i..].iter().position(|c| *c == b'@').map(|p| p + i) {
        let mut start = at;
        while start > i && local_char(b[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < b.len() && domain_char(b[end]) {
            end += 1;
        }
        // A sentence may end right after the address.
        while end > at + 1 && b[end - 1] == b'.' {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let valid = start < at
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.contains("..")
            && domain
                .bytes()
                .last()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if valid {
            out.push((start, end));
            i = end;
        } else {
            i = at + 1;
        }
    }
    out
}

fn redact(text: &str, replacement: &str) -> Option<String> {
    let ranges = email_ranges(text);
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in ranges {
        out.push_str(&text[last..start]);
        out.push_str(replacement);
        last = end;
    }
    out.push_str(&text[last..]);
    Some(out)
}

impl Processor for RedactEmails {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        Ok(RedactEmails {
            replacement: config["replacement"]
                .as_str()
                .unwrap_or("[REDACTED]")
                .to_string(),
        })
    }

    fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
        // Cheap check on the bytes first: most batches hold no address at all.
        let mut any = false;
        logs.retain_view(|r| {
            any |= r.body_str().is_some_and(|b| !email_ranges(b).is_empty());
            true
        })?;
        if !any {
            return Ok(());
        }
        logs.for_each_mut(|record| {
            if let Some(Value::StringValue(body)) =
                record.body.as_mut().and_then(|b| b.value.as_mut())
            {
                if let Some(redacted) = redact(body, &self.replacement) {
                    *body = redacted;
                }
            }
        })
    }
}

export!(RedactEmails, logs);
