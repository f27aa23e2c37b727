//! Why a request was not taken, and how each transport says so: HTTP status codes with a
//! `google.rpc.Status` body, gRPC codes with `google.rpc.RetryInfo` details.

use std::time::Duration;

use http::StatusCode;
use prost::Message;
use weir_api::rpc_status::{retry_info_detail, RetryInfo, RpcStatus};
use weir_api::ConsumeError;

/// gRPC `INVALID_ARGUMENT`.
const INVALID_ARGUMENT: i32 = 3;
/// gRPC `DEADLINE_EXCEEDED`.
const DEADLINE_EXCEEDED: i32 = 4;
/// gRPC `RESOURCE_EXHAUSTED`.
const RESOURCE_EXHAUSTED: i32 = 8;
/// gRPC `UNAVAILABLE`.
const UNAVAILABLE: i32 = 14;

/// Why the receiver did not take a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The body could not be read as the signal's export request (HTTP 400, gRPC
    /// INVALID_ARGUMENT).
    #[error("{0}")]
    Malformed(String),
    /// The body is larger than allowed (HTTP 413; gRPC RESOURCE_EXHAUSTED as tonic answers).
    #[error("{0}")]
    TooLarge(String),
    /// Not now: memory, queue or in-flight budget is short (HTTP 503 + Retry-After; gRPC
    /// RESOURCE_EXHAUSTED + RetryInfo when a delay is known, else UNAVAILABLE).
    #[error("{reason}")]
    Busy {
        /// Why, for the client.
        reason: String,
        /// When the client may try again.
        retry_after: Option<Duration>,
    },
    /// The client did not send the body in time (HTTP 408).
    #[error("{0}")]
    TimedOut(String),
    /// The pipeline refused the data for good (HTTP 400, gRPC INVALID_ARGUMENT).
    #[error("{0}")]
    Rejected(String),
}

impl From<ConsumeError> for RequestError {
    fn from(e: ConsumeError) -> Self {
        match &e {
            ConsumeError::Refused { retry_after, .. } => RequestError::Busy {
                reason: e.to_string(),
                retry_after: *retry_after,
            },
            ConsumeError::ShuttingDown => RequestError::Busy {
                reason: e.to_string(),
                retry_after: None,
            },
            ConsumeError::Rejected { .. } => RequestError::Rejected(e.to_string()),
        }
    }
}

impl RequestError {
    /// The HTTP status code of the answer.
    pub fn http_status(&self) -> StatusCode {
        match self {
            RequestError::Malformed(_) | RequestError::Rejected(_) => StatusCode::BAD_REQUEST,
            RequestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            RequestError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `Retry-After` value in whole seconds (rounded up, at least 1), when known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RequestError::Busy {
                retry_after: Some(d),
                ..
            } => Some(d.as_secs() + u64::from(d.subsec_nanos() > 0)).map(|s| s.max(1)),
            _ => None,
        }
    }

    /// The `google.rpc.Status` describing this error.
    pub fn rpc_status(&self) -> RpcStatus {
        let (code, details) = match self {
            RequestError::Malformed(_) | RequestError::Rejected(_) => (INVALID_ARGUMENT, vec![]),
            RequestError::TooLarge(_) => (RESOURCE_EXHAUSTED, vec![]),
            RequestError::TimedOut(_) => (DEADLINE_EXCEEDED, vec![]),
            RequestError::Busy {
                retry_after: Some(d),
                ..
            } => (RESOURCE_EXHAUSTED, vec![retry_info_detail(*d)]),
            RequestError::Busy {
                retry_after: None, ..
            } => (UNAVAILABLE, vec![]),
        };
        RpcStatus {
            code,
            message: self.to_string(),
            details,
        }
    }

    /// The gRPC status, with the `google.rpc.Status` (and its RetryInfo) as details.
    pub fn grpc_status(&self) -> tonic::Status {
        let status = self.rpc_status();
        let code = tonic::Code::from_i32(status.code);
        if status.details.is_empty() {
            tonic::Status::new(code, status.message)
        } else {
            let details = bytes::Bytes::from(status.encode_to_vec());
            tonic::Status::with_details(code, status.message, details)
        }
    }
}

/// The `google.rpc.Status` in OTLP/JSON form (details other than RetryInfo are not written).
pub fn rpc_status_json(status: &RpcStatus) -> Vec<u8> {
    let mut obj = serde_json::json!({"code": status.code, "message": status.message});
    let details: Vec<serde_json::Value> = status
        .details
        .iter()
        .filter_map(|any| {
            let info = RetryInfo::decode(any.value.as_slice()).ok()?;
            let d = info.retry_delay?;
            let secs = d.seconds as f64 + f64::from(d.nanos) / 1e9;
            Some(serde_json::json!({"@type": any.type_url, "retryDelay": format!("{secs}s")}))
        })
        .collect();
    if !details.is_empty() {
        obj["details"] = serde_json::Value::Array(details);
    }
    obj.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::rpc_status::ProtoDuration;

    #[test]
    fn refusal_with_delay_carries_retry_info() {
        let e = RequestError::from(ConsumeError::Refused {
            component: "memory_limiter".into(),
            reason: "memory is short".into(),
            retry_after: Some(Duration::from_millis(1500)),
        });
        assert_eq!(e.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after_secs(), Some(2));
        let s = e.rpc_status();
        assert_eq!(s.code, RESOURCE_EXHAUSTED);
        assert_eq!(
            s.message,
            "memory_limiter: cannot accept data now: memory is short"
        );
        let info = RetryInfo::decode(s.details[0].value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        let json: serde_json::Value = serde_json::from_slice(&rpc_status_json(&s)).unwrap();
        assert_eq!(json["details"][0]["retryDelay"], "1.5s");
    }

    #[test]
    fn refusal_without_delay_is_unavailable() {
        let e = RequestError::from(ConsumeError::ShuttingDown);
        assert_eq!(e.grpc_status().code(), tonic::Code::Unavailable);
        assert_eq!(e.retry_after_secs(), None);
    }

    #[test]
    fn rejection_is_invalid_argument_and_400() {
        let e = RequestError::from(ConsumeError::Rejected {
            component: "x".into(),
            reason: "bad".into(),
        });
        assert_eq!(e.http_status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.grpc_status().code(), tonic::Code::InvalidArgument);
    }
}
