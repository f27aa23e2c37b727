//! The few `google.rpc` messages OTLP error answers are made of, shared by the receivers
//! that write them and the exporters that read them: `Status` (the body of an OTLP/HTTP
//! error answer and the gRPC `grpc-status-details-bin` trailer) and `RetryInfo` (the delay a
//! server asks for before the next attempt), with the `google.protobuf` types they hold.

use std::time::Duration;

use prost::Message;

/// The `Any` type URL of a [`RetryInfo`] detail.
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// Type of the packed message.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The packed message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    /// How long to wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds on top.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// A `Status` detail asking the client to wait `delay` before the next attempt.
pub fn retry_info_detail(delay: Duration) -> Any {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    Any {
        type_url: RETRY_INFO_TYPE.to_string(),
        value: info.encode_to_vec(),
    }
}

/// The `RetryInfo` delay in an encoded `google.rpc.Status`, if it has one.
pub fn retry_delay(status_bytes: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(status_bytes).ok()?;
    let info = status
        .details
        .iter()
        .find(|a| a.type_url == RETRY_INFO_TYPE)?;
    let delay = RetryInfo::decode(info.value.as_slice()).ok()?.retry_delay?;
    let secs = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Encodes a `google.rpc.Status` carrying a `RetryInfo` (test servers use it).
pub fn status_with_retry_delay(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    RpcStatus {
        code,
        message: message.to_string(),
        details: vec![retry_info_detail(delay)],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_round_trips() {
        let bytes = status_with_retry_delay(8, "slow down", Duration::from_millis(1500));
        assert_eq!(retry_delay(&bytes), Some(Duration::from_millis(1500)));
        let plain = RpcStatus {
            code: 8,
            message: "x".into(),
            details: vec![],
        };
        assert_eq!(retry_delay(&plain.encode_to_vec()), None);
        assert_eq!(retry_delay(&[0xff, 0xff]), None);
    }

    #[test]
    fn retry_info_detail_splits_seconds_and_nanos() {
        let any = retry_info_detail(Duration::from_millis(2250));
        assert_eq!(any.type_url, "type.googleapis.com/google.rpc.RetryInfo");
        let info = RetryInfo::decode(any.value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 2,
                nanos: 250_000_000
            })
        );
    }
}
