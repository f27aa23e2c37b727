//! Load shedding for policy sync and the API's reads (ingest has its own gate in
//! [`crate::ingest`]): past a number of requests being served at once, one more is answered
//! at once with 503 and `Retry-After` (gRPC: `UNAVAILABLE` with `retry-after` metadata),
//! as the OpAMP specification asks of an overloaded server, instead of waiting in a queue
//! until the client times out.
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     overload:
//!       sync_max_in_flight: 256   # policy syncs (HTTP and gRPC) being served at once
//!       read_max_in_flight: 16    # API reads (overview, services, findings, ...) at once
//!       retry_after: 5s           # what a shed request is told to wait
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

fn default_sync_max_in_flight() -> usize {
    256
}
fn default_read_max_in_flight() -> usize {
    16
}
fn default_retry_after() -> Duration {
    Duration::from_secs(5)
}

/// `extensions.control_plane.overload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadConfig {
    /// Policy syncs (HTTP and gRPC) served at once; one more is shed. Default: 256.
    #[serde(default = "default_sync_max_in_flight")]
    pub sync_max_in_flight: usize,
    /// Authenticated API reads (`GET /api/v1/...`) served at once; one more is shed.
    /// Default: 16.
    #[serde(default = "default_read_max_in_flight")]
    pub read_max_in_flight: usize,
    /// The `Retry-After` a shed request gets (whole seconds, at least 1). Default: 5s.
    #[serde(default = "default_retry_after", with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        OverloadConfig {
            sync_max_in_flight: default_sync_max_in_flight(),
            read_max_in_flight: default_read_max_in_flight(),
            retry_after: default_retry_after(),
        }
    }
}

impl OverloadConfig {
    /// Problems with the values, as (field, message).
    pub fn check(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.sync_max_in_flight == 0 {
            out.push(("sync_max_in_flight", "must be at least 1"));
        }
        if self.read_max_in_flight == 0 {
            out.push(("read_max_in_flight", "must be at least 1"));
        }
        if self.retry_after < Duration::from_secs(1) {
            out.push(("retry_after", "must be at least 1s"));
        }
        out
    }
}

/// Counts requests being served of one kind and refuses one past the limit.
#[derive(Debug)]
pub struct Gate {
    what: &'static str,
    max: usize,
    retry_after_secs: u64,
    in_flight: AtomicUsize,
}

/// A request being served; its slot is freed when this drops.
#[derive(Debug)]
pub struct Permit(Arc<Gate>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request refused because `max` were being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// What was shed (`sync`, `read`).
    pub what: &'static str,
    /// The limit.
    pub max: usize,
    /// Seconds the client is told to wait.
    pub retry_after_secs: u64,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the control plane is busy ({} {} requests being served); retry in {}s",
            self.max, self.what, self.retry_after_secs
        )
    }
}

impl Busy {
    /// As an HTTP answer: 503 with `Retry-After` and `{"error": ...}`.
    pub fn into_response(self) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut r = (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(self.retry_after_secs),
        );
        r
    }

    /// As a gRPC status: `UNAVAILABLE` with `retry-after` metadata.
    pub fn into_status(self) -> tonic::Status {
        let mut s = tonic::Status::unavailable(self.to_string());
        if let Ok(v) = self.retry_after_secs.to_string().parse() {
            s.metadata_mut().insert("retry-after", v);
        }
        s
    }
}

impl Gate {
    /// A gate for `what` serving at most `max` at once (at least 1).
    pub fn new(what: &'static str, max: usize, retry_after: Duration) -> Arc<Gate> {
        Arc::new(Gate {
            what,
            max: max.max(1),
            retry_after_secs: retry_after.as_secs().max(1),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// A slot, or [`Busy`] when `max` are taken.
    pub fn admit(self: &Arc<Gate>) -> Result<Permit, Busy> {
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit(self.clone());
        if n >= self.max {
            drop(permit);
            return Err(Busy {
                what: self.what,
                max: self.max,
                retry_after_secs: self.retry_after_secs,
            });
        }
        Ok(permit)
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_admits_up_to_its_limit_and_frees_slots_on_drop() {
        let g = Gate::new("sync", 2, Duration::from_secs(3));
        let a = g.admit().unwrap();
        let _b = g.admit().unwrap();
        let busy = g.admit().unwrap_err();
        assert_eq!(busy.retry_after_secs, 3);
        assert_eq!(g.in_flight(), 2);
        drop(a);
        assert!(g.admit().is_ok());
        let r = busy.into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "3");
        let s = busy.into_status();
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(s.metadata().get("retry-after").unwrap(), "3");
    }
}
