//! Arbitrary text through the config loader exactly as `weir validate` runs it (parse the YAML
//! with its limits, merge, expand `${...}`, validate against every compiled-in component
//! type). It must never panic nor exhaust memory (alias bombs, deep nesting: the serde-saphyr
//! budget), and every outcome must be usable:
//! - a rejected config has at least one error, and each names a place: the source, the root,
//!   or a path that starts at a top-level key of the document;
//! - an accepted config has at least one pipeline, each with a receiver and an exporter,
//!   and every id a pipeline lists is a configured component of the right kind.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weir::config::{self, ConfigSource, Resolver};
use weir_api::{ConfigErrors, Registry};

const SOURCE: &str = "fuzz.yaml";

/// `${...}` references resolve to fixed values; no file is ever read.
struct FixedResolver;

impl Resolver for FixedResolver {
    fn env(&self, name: &str) -> Option<String> {
        match name {
            "PORT" => Some("4317".into()),
            "HOST" => Some("127.0.0.1".into()),
            "LIST" => Some("[otlp, debug]".into()),
            "MAP" => Some("{endpoint: 127.0.0.1:4317}".into()),
            _ => None,
        }
    }
    fn file(&self, path: &str) -> Result<String, String> {
        Err(format!("cannot read file {path:?}: not while fuzzing"))
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(weir::registry)
}

/// Whether `path` starts at `key` (`receivers.otlp.protocols` and `receivers[0]` start at
/// `receivers`; keys may hold dots themselves).
fn starts_at(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

fn check_errors(errors: &ConfigErrors, root: Option<&Value>, stage: &str) {
    assert!(!errors.is_empty(), "{stage} failed without an error");
    for e in &errors.0 {
        assert!(
            !e.message.is_empty(),
            "{stage}: empty message at {:?}",
            e.path
        );
        if e.path == SOURCE || e.path == "(root)" {
            continue;
        }
        let placed = root
            .and_then(Value::as_object)
            .is_some_and(|m| m.keys().any(|k| starts_at(&e.path, k)))
            || e.path.starts_with("service.pipelines");
        assert!(
            placed,
            "{stage}: error path {:?} names no place of the document ({})",
            e.path, e.message
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = [ConfigSource::Yaml {
        name: SOURCE.to_string(),
        text: text.to_string(),
    }];
    let loaded = match config::load(&sources, &[], &FixedResolver) {
        Ok(l) => l,
        Err(errors) => {
            // Parse errors name the source; expansion errors the path of the value.
            let tree = config::parse_document(text).ok();
            check_errors(&errors, tree.as_ref(), "load");
            return;
        }
    };
    match config::validate(&loaded.tree, registry()) {
        Err(errors) => check_errors(&errors, Some(&loaded.tree), "validate"),
        Ok(valid) => {
            assert!(
                !valid.pipelines.is_empty(),
                "a valid config has no pipeline"
            );
            for p in &valid.pipelines {
                assert!(!p.receivers.is_empty(), "pipeline {} has no receiver", p.id);
                assert!(!p.exporters.is_empty(), "pipeline {} has no exporter", p.id);
                for id in &p.receivers {
                    assert!(valid.receivers.contains_key(id), "{}: receiver {id}", p.id);
                }
                for id in &p.processors {
                    assert!(
                        valid.processors.contains_key(id),
                        "{}: processor {id}",
                        p.id
                    );
                }
                for id in &p.exporters {
                    assert!(valid.exporters.contains_key(id), "{}: exporter {id}", p.id);
                }
            }
            for id in &valid.service_extensions {
                assert!(valid.extensions.contains_key(id), "extension {id}");
            }
        }
    }
});
