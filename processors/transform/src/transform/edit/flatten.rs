//! `flatten`: nested maps (and, with `resolveConflicts`, colliding keys) written as one
//! level of dotted keys, down to a given depth.

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};

/// The Collector's `flatten`: nested maps become `a.b` keys and list items `a.0`, to `max`
/// levels; with `conflicts`, a key already written gets `.0`, `.1`, ... suffixes (list items
/// then go under the list's own key, as the Collector does).
pub(super) struct Flattener {
    pub(super) out: Vec<KeyValue>,
    pub(super) seen: std::collections::HashMap<String, usize>,
    pub(super) conflicts: bool,
    pub(super) max: i64,
}

impl Flattener {
    fn put(&mut self, key: String, value: Option<AnyValue>) {
        match self.out.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.out.push(KeyValue {
                key,
                value,
                ..Default::default()
            }),
        }
    }

    fn put_checked(&mut self, key: String, value: Option<AnyValue>) {
        if !self.conflicts {
            return self.put(key, value);
        }
        if self.out.iter().any(|kv| kv.key == key) {
            let n = self.seen.entry(key.clone()).or_insert(0);
            let new_key = format!("{key}.{n}");
            *n += 1;
            self.put(new_key, value);
        } else {
            self.seen.insert(key.clone(), 0);
            self.put(key, value);
        }
    }

    pub(super) fn map(&mut self, m: Vec<KeyValue>, prefix: &str, depth: i64) {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        for kv in m {
            self.value(kv.key, kv.value, depth, &prefix);
        }
    }

    /// Items of a list inside a list: the Collector adds no `.` between the prefix and the
    /// index here (`a.0` then `0` gives `a.00`).
    fn list(&mut self, items: Vec<AnyValue>, prefix: &str, depth: i64) {
        for (i, v) in items.into_iter().enumerate() {
            self.value(i.to_string(), Some(v), depth + 1, prefix);
        }
    }

    fn value(&mut self, k: String, v: Option<AnyValue>, depth: i64, prefix: &str) {
        use any_value::Value as V;
        match v.and_then(|v| v.value) {
            Some(V::KvlistValue(m)) if depth < self.max => {
                self.map(m.values, &format!("{prefix}{k}"), depth + 1)
            }
            Some(V::ArrayValue(a)) if depth < self.max => {
                for (i, item) in a.values.into_iter().enumerate() {
                    let at = format!("{prefix}{k}.{i}");
                    match item.value {
                        Some(V::KvlistValue(m)) if depth + 1 < self.max => {
                            self.map(m.values, &at, depth + 2)
                        }
                        Some(V::ArrayValue(inner)) if depth + 1 < self.max => {
                            self.list(inner.values, &at, depth + 2)
                        }
                        other => {
                            let item = Some(AnyValue { value: other });
                            if self.conflicts {
                                self.put_checked(format!("{prefix}{k}"), item);
                            } else {
                                self.put(at, item);
                            }
                        }
                    }
                }
            }
            other => self.put_checked(format!("{prefix}{k}"), Some(AnyValue { value: other })),
        }
    }
}
