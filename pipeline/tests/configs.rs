//! Every file in configs/ loads and validates against the components compiled in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use weir::config::{load, validate, ConfigSource, ProcessResolver};

#[test]
fn every_config_file_validates() {
    validate_every_file_in("../configs", "default.yaml");
}

/// Configs written in the shapes of the OpenTelemetry Collector's own component test data
/// and of real user configs: each must load unchanged.
#[test]
fn collector_shaped_configs_validate() {
    validate_every_file_in("tests/collector_shapes", "otlp_receiver.yaml");
}

fn validate_every_file_in(relative: &str, must_hold: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f.ends_with(must_hold)), "{files:?}");
    let registry = weir::registry();
    let mut failures = Vec::new();
    for file in &files {
        let result = load(&[ConfigSource::File(file.clone())], &[], &ProcessResolver)
            .and_then(|loaded| validate(&loaded.tree, &registry).map(|_| ()));
        if let Err(errors) = result {
            failures.push(format!("{}:\n{errors}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn embedded_default_is_configs_default_yaml() {
    let on_disk = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/default.yaml"),
    )
    .unwrap();
    assert_eq!(weir::config::DEFAULT_CONFIG, on_disk);
}
