//! Hiding secrets in `weir print-config` output.

use serde_json::Value;

/// Key fragments that mark a value as secret (matched case-insensitively, ignoring `_`/`-`).
const SECRET_MARKERS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "keyfile",
    "privatekey",
    "credential",
    "cookie",
];

/// The text that replaces a secret value.
pub const REDACTED: &str = "[REDACTED]";

fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_MARKERS.iter().any(|m| normalized.contains(m))
}

/// Replaces the value of every secret-looking key (at any depth) with `[REDACTED]`.
/// A secret key holding a map or list has each of its leaf values redacted, so the shape
/// stays visible.
pub fn redact(tree: &mut Value) {
    match tree {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    redact_all(v);
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_all(v: &mut Value) {
    match v {
        Value::Object(map) => map.values_mut().for_each(redact_all),
        Value::Array(items) => items.iter_mut().for_each(redact_all),
        Value::Null => {}
        other => *other = Value::String(REDACTED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_secret_keys_at_any_depth() {
        let mut v = json!({
            "exporters": {"otlp": {
                "endpoint": "upstream:4317",
                "headers": {"Authorization": "Bearer abc", "x-api-key": "k", "X-Tenant": "t1"},
                "tls": {"key_file": "/k.pem", "cert_file": "/c.pem", "insecure": false},
                "auth": {"password": "p", "api_key": "a", "client_secret": "s", "token": null}
            }},
            "list": [{"secret": ["a", 1]}]
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "exporters": {"otlp": {
                    "endpoint": "upstream:4317",
                    "headers": {"Authorization": "[REDACTED]", "x-api-key": "[REDACTED]", "X-Tenant": "t1"},
                    "tls": {"key_file": "[REDACTED]", "cert_file": "/c.pem", "insecure": false},
                    "auth": {"password": "[REDACTED]", "api_key": "[REDACTED]", "client_secret": "[REDACTED]", "token": null}
                }},
                "list": [{"secret": ["[REDACTED]", "[REDACTED]"]}]
            })
        );
    }
}
