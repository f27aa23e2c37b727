//! Every published example policy (usetero/policy examples/, mirrored under
//! /work/shared/datasets/policy-examples) loads and compiles unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use weir_policy::load::load_path;
use weir_policy_engine::set::PolicySet;
use weir_policy_engine::stats::StatsRegistry;

#[test]
fn every_published_example_loads_and_compiles() {
    let dir = Path::new("/work/shared/datasets/policy-examples");
    if !dir.exists() {
        println!(
            "note: {} is absent; published examples not checked",
            dir.display()
        );
        return;
    }
    let loaded = load_path(dir);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let n = loaded.policies.len();
    assert!(n >= 40, "only {n} example policies found");
    let set = PolicySet::build(loaded.policies, &StatsRegistry::new());
    assert_eq!(set.entries.len(), n, "duplicate ids among the examples");
    let broken: Vec<_> = set
        .entries
        .iter()
        .filter(|e| !e.errors.is_empty())
        .map(|e| format!("{}: {:?}", e.id, e.errors))
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
    // Every signal is represented, so all three compilers ran.
    assert!(set.logs.active > 0 && set.metrics.active > 0 && set.traces.active > 0);
}
