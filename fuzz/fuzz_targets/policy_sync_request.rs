//! Arbitrary bytes as the body of `POST /v1/policy/sync` on the control plane, read as
//! protobuf and as JSON, then served by the catalog's sync for an edge named `fuzz` over a
//! real SQLite store (in memory) holding one policy. Nothing may panic, and:
//! - a refused sync is INVALID_ARGUMENT naming its field;
//! - an accepted one records the edge under `fuzz/`, and the stored hit and miss totals
//!   are never negative.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weir_catalog::control::ControlPlane;
use weir_catalog::sync::sync_blocking;
use weir_policy_contract::proto;
use weir_policy_contract::sync_json;

fn control() -> &'static ControlPlane {
    static CONTROL: OnceLock<(tempdir::Dir, ControlPlane)> = OnceLock::new();
    &CONTROL
        .get_or_init(|| {
            let dir = tempdir::Dir::new();
            let c = match ControlPlane::open(&dir.0.join("fuzz.db")) {
                Ok(c) => c,
                Err(e) => panic!("store: {e}"),
            };
            let policy = serde_json::json!({"id": "p1", "name": "p1",
                "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}});
            if let Err(e) = c.create_policy(policy, false, "fuzz") {
                panic!("policy: {e}");
            }
            (dir, c)
        })
        .1
}

mod tempdir {
    /// A directory removed when the process ends normally.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("weir-fuzz-sync-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&p);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut requests = Vec::new();
    if let Ok(r) = proto::SyncRequest::decode(data) {
        requests.push(r);
    }
    if let Ok(r) = sync_json::decode_request(data) {
        requests.push(r);
    }
    let c = control();
    for r in requests {
        match sync_blocking(c, "fuzz", r, 30) {
            Ok(resp) => assert_eq!(resp.policies.len(), 1),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                assert!(
                    status.message().starts_with("policy_statuses[")
                        || status.message().starts_with("client_metadata."),
                    "{}",
                    status.message()
                );
            }
        }
    }
    if let Ok(edges) = c.store().edges() {
        assert!(edges.iter().all(|e| e.instance_id.starts_with("fuzz/")));
    }
    if let Ok(statuses) = c.store().policy_statuses() {
        assert!(statuses.iter().all(|s| s.hits >= 0 && s.misses >= 0));
    }
});
