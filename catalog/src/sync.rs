//! Serving `PolicyService.Sync` to edges from the control plane's policy store: the
//! enabled policies (shadow ones labelled), their hash, the recommended interval; each
//! sync records the edge and adds its per-policy hits and misses.

use std::sync::Arc;

use weir_policy::parse::parse_policy;
use weir_policy::proto;
use weir_policy::server::{policies_hash, PolicyStore};

use crate::control::ControlPlane;
use crate::store::{now_secs, EdgeInfo};

/// The hash edges echo back; the same function the policy crate uses for its responses.
pub fn policy_set_hash(docs: &[serde_json::Value]) -> String {
    policies_hash(&to_wire(docs))
}

fn to_wire(docs: &[serde_json::Value]) -> Vec<proto::Policy> {
    docs.iter()
        .enumerate()
        .filter_map(
            |(i, d)| match parse_policy(d, &format!("policies[{i}]")).policy {
                Ok(p) => Some(p),
                Err(errors) => {
                    tracing::warn!(?errors, "stored policy does not parse; not served");
                    None
                }
            },
        )
        .collect()
}

/// The control plane as a policy provider.
pub struct CatalogPolicyStore {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    /// Seconds edges are told to wait between syncs.
    pub interval_seconds: u32,
}

fn attr(kvs: &[weir_api::otlp::common::v1::KeyValue], key: &str) -> Option<String> {
    use weir_api::otlp::common::v1::any_value::Value;
    kvs.iter().find(|k| k.key == key).and_then(|k| {
        match k.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    })
}

#[async_trait::async_trait]
impl PolicyStore for CatalogPolicyStore {
    async fn sync(
        &self,
        request: proto::SyncRequest,
    ) -> Result<proto::SyncResponse, tonic::Status> {
        let control = self.control.clone();
        let interval = self.interval_seconds;
        tokio::task::spawn_blocking(move || {
            let docs = control
                .served_policies()
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            let policies = to_wire(&docs);
            let hash = policies_hash(&policies);
            let meta = request.client_metadata.unwrap_or_default();
            let instance = attr(&meta.resource_attributes, "service.instance.id")
                .unwrap_or_else(|| "unknown".into());
            let service = attr(&meta.resource_attributes, "service.name").unwrap_or_default();
            let statuses: Vec<_> = if request.full_sync {
                Vec::new()
            } else {
                request
                    .policy_statuses
                    .iter()
                    .map(|s| (s.id.clone(), s.match_hits, s.match_misses, s.errors.clone()))
                    .collect()
            };
            let edge = EdgeInfo {
                instance_id: instance,
                service_name: service,
                last_sync: now_secs(),
                last_hash: hash.clone(),
            };
            control
                .store()
                .record_sync(&edge, &statuses)
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            Ok(proto::SyncResponse {
                policies,
                hash,
                sync_timestamp_unix_nano: (now_secs() as u64) * 1_000_000_000,
                recommended_sync_interval_seconds: interval,
                sync_type: proto::SyncType::Full as i32,
                ..Default::default()
            })
        })
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
    }
}
