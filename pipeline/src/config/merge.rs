//! Merging several `--config` sources and applying `--set` overrides.

use serde_json::{Map, Value};

use super::yaml;

/// Merges `overlay` into `base` as the collector does: maps merge key by key, recursively;
/// anything else (lists included) in `overlay` replaces what `base` had.
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Expands keys that hold the collector's key separator `::` into nested maps, at every
/// depth, as the collector's config loader does for every source: `exporters::otlp/x::compression: none`
/// reads as `exporters: {otlp/x: {compression: none}}` (maps inside lists are left as they
/// are, as in the collector). Expanded keys merge with keys written
/// nested; when both give a value for the same leaf, the `::` form wins (it is applied last).
pub fn expand_key_separators(v: &mut Value) {
    // Lists are values: the collector does not look into them for separators.
    let Value::Object(map) = v else {
        return;
    };
    let mut delimited = Vec::new();
    for (k, child) in map.iter_mut() {
        expand_key_separators(child);
        if k.contains("::") {
            delimited.push(k.clone());
        }
    }
    for key in delimited {
        let Some(value) = map.remove(&key) else {
            continue;
        };
        let mut overlay = value;
        for part in key.split("::").collect::<Vec<_>>().into_iter().rev() {
            let mut m = Map::new();
            m.insert(part.to_string(), overlay);
            overlay = Value::Object(m);
        }
        let mut whole = Value::Object(std::mem::take(map));
        deep_merge(&mut whole, overlay);
        if let Value::Object(m) = whole {
            *map = m;
        }
    }
}

/// Applies one `--set key.path=value` override. Keys are split on `::` when the key holds
/// one (the collector's current separator), else on `.`; a `/` inside a component id is part
/// of the key (`processors.batch/x.timeout=2s`). The value is parsed as YAML.
pub fn apply_set(tree: &mut Value, arg: &str) -> Result<(), String> {
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| format!("--set {arg:?}: expected key=value"))?;
    let parts: Vec<&str> = if key.contains("::") {
        key.split("::").collect()
    } else {
        key.split('.').collect()
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("--set {arg:?}: the key has an empty part"));
    }
    let value = yaml::parse_value(raw);
    let mut overlay = value;
    for part in parts.iter().rev() {
        let mut m = Map::new();
        m.insert((*part).to_string(), overlay);
        overlay = Value::Object(m);
    }
    deep_merge(tree, overlay);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_colon_keys_nest_at_every_depth_and_merge() {
        let mut v = serde_json::json!({
            "exporters::otlp/x::compression": "none",
            "exporters": {"otlp/x": {"endpoint": "a:4317"}, "debug": {"verbosity::level": 1}},
            "service": {"pipelines": [{"a::b": 1}]}
        });
        expand_key_separators(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "exporters": {
                    "otlp/x": {"endpoint": "a:4317", "compression": "none"},
                    "debug": {"verbosity": {"level": 1}}
                },
                "service": {"pipelines": [{"a::b": 1}]}
            })
        );
    }
    use serde_json::json;

    #[test]
    fn maps_merge_lists_replace() {
        let mut base = json!({
            "receivers": {"otlp": {"protocols": {"grpc": null, "http": {"endpoint": "a:1"}}}},
            "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["debug", "nop"]}}}
        });
        let overlay = json!({
            "receivers": {"otlp": {"protocols": {"http": {"cors": {"allowed_origins": ["*"]}}}}},
            "service": {"pipelines": {"logs": {"exporters": ["otlp"]}}}
        });
        deep_merge(&mut base, overlay);
        assert_eq!(
            base,
            json!({
                "receivers": {"otlp": {"protocols": {"grpc": null, "http": {"endpoint": "a:1", "cors": {"allowed_origins": ["*"]}}}}},
                "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["otlp"]}}}
            })
        );
    }

    #[test]
    fn scalar_replaces_map_and_null_replaces() {
        let mut base = json!({"a": {"b": 1}});
        deep_merge(&mut base, json!({"a": 5}));
        assert_eq!(base, json!({"a": 5}));
    }

    #[test]
    fn set_with_dots_slashes_and_types() {
        let mut t = json!({"processors": {"batch/x": {"timeout": "1s", "send_batch_size": 5}}});
        apply_set(&mut t, "processors.batch/x.timeout=2s").unwrap();
        apply_set(&mut t, "processors.batch/x.send_batch_max_size=100").unwrap();
        apply_set(&mut t, "service::telemetry::logs::level=debug").unwrap();
        apply_set(&mut t, "exporters.otlp.headers.x=a=b").unwrap();
        assert_eq!(
            t,
            json!({
                "processors": {"batch/x": {"timeout": "2s", "send_batch_size": 5, "send_batch_max_size": 100}},
                "service": {"telemetry": {"logs": {"level": "debug"}}},
                "exporters": {"otlp": {"headers": {"x": "a=b"}}}
            })
        );
    }

    #[test]
    fn set_list_value_replaces_list() {
        let mut t = json!({"service": {"pipelines": {"logs": {"exporters": ["debug"]}}}});
        apply_set(&mut t, "service.pipelines.logs.exporters=[nop, debug]").unwrap();
        assert_eq!(
            t["service"]["pipelines"]["logs"]["exporters"],
            json!(["nop", "debug"])
        );
    }

    #[test]
    fn set_errors() {
        let mut t = json!({});
        assert_eq!(
            apply_set(&mut t, "a.b").unwrap_err(),
            "--set \"a.b\": expected key=value"
        );
        assert_eq!(
            apply_set(&mut t, "a..b=1").unwrap_err(),
            "--set \"a..b=1\": the key has an empty part"
        );
    }
}
