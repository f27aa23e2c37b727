//! Why one attempt to send a batch failed, and whether trying again can help.

use std::time::Duration;

/// One failed attempt to deliver a batch upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The gRPC server answered with a non-OK status.
    #[error("{endpoint}: gRPC status {code:?}: {message}")]
    GrpcStatus {
        /// Where the request went.
        endpoint: String,
        /// The status code.
        code: tonic::Code,
        /// The status message.
        message: String,
        /// The delay asked for in a `google.rpc.RetryInfo` detail.
        retry_after: Option<Duration>,
        /// The status as received.
        #[source]
        status: tonic::Status,
    },
    /// The HTTP server answered with a non-2xx status.
    #[error("{url}: HTTP {status}: {message}")]
    HttpStatus {
        /// Where the request went.
        url: String,
        /// The status code.
        status: u16,
        /// The message from the response body (a `google.rpc.Status`), or the body's start.
        message: String,
        /// The delay asked for in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// A Prometheus remote-write or Zipkin endpoint answered with a non-2xx status: 5xx and
    /// 429 are retryable (remote-write's specification), every other status permanent.
    #[error("{url}: HTTP {status}: {message}")]
    RemoteWriteStatus {
        /// Where the request went.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body.
        message: String,
        /// The delay asked for in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, DNS failure.
    #[error("{endpoint}: cannot send: {source}")]
    Transport {
        /// Where the request went.
        endpoint: String,
        /// What the client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer within the exporter's `timeout`.
    #[error("{endpoint}: no answer within {timeout:?}")]
    Timeout {
        /// Where the request went.
        endpoint: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The request could not be built (compression, encoding, a bad header value).
    #[error("{endpoint}: cannot build the request: {reason}")]
    Request {
        /// Where the request was going.
        endpoint: String,
        /// What went wrong.
        reason: String,
        /// The cause, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// gRPC codes the OTLP specification calls retryable. RESOURCE_EXHAUSTED is retryable only
/// when the server says when to come back (RetryInfo), see [`SendError::is_retryable`].
const RETRYABLE_GRPC: [tonic::Code; 6] = [
    tonic::Code::Cancelled,
    tonic::Code::DeadlineExceeded,
    tonic::Code::Aborted,
    tonic::Code::OutOfRange,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
];

/// HTTP statuses the OTLP specification calls retryable.
const RETRYABLE_HTTP: [u16; 4] = [429, 502, 503, 504];

impl SendError {
    /// Whether sending the same data again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::GrpcStatus {
                code, retry_after, ..
            } => {
                RETRYABLE_GRPC.contains(code)
                    || (*code == tonic::Code::ResourceExhausted && retry_after.is_some())
            }
            SendError::HttpStatus { status, .. } => RETRYABLE_HTTP.contains(status),
            SendError::RemoteWriteStatus { status, .. } => *status >= 500 || *status == 429,
            SendError::Transport { .. } | SendError::Timeout { .. } => true,
            SendError::Request { .. } => false,
        }
    }

    /// The delay the server asked for before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::GrpcStatus { retry_after, .. }
            | SendError::HttpStatus { retry_after, .. }
            | SendError::RemoteWriteStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grpc(code: tonic::Code, retry_after: Option<Duration>) -> SendError {
        SendError::GrpcStatus {
            endpoint: "e".into(),
            code,
            message: String::new(),
            retry_after,
            status: tonic::Status::new(code, ""),
        }
    }

    fn http(status: u16) -> SendError {
        SendError::HttpStatus {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn grpc_codes_follow_the_otlp_spec() {
        use tonic::Code::*;
        for c in [
            Cancelled,
            DeadlineExceeded,
            Aborted,
            OutOfRange,
            Unavailable,
            DataLoss,
        ] {
            assert!(grpc(c, None).is_retryable(), "{c:?}");
        }
        for c in [
            InvalidArgument,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            FailedPrecondition,
            Unimplemented,
            Internal,
            Unauthenticated,
            Unknown,
        ] {
            assert!(!grpc(c, None).is_retryable(), "{c:?}");
        }
        assert!(!grpc(ResourceExhausted, None).is_retryable());
        assert!(grpc(ResourceExhausted, Some(Duration::from_secs(1))).is_retryable());
    }

    #[test]
    fn http_statuses_follow_the_otlp_spec() {
        for s in [429, 502, 503, 504] {
            assert!(http(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413, 415, 500, 501] {
            assert!(!http(s).is_retryable(), "{s}");
        }
    }
}
