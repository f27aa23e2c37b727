//! Reading an OTLP export response: the `partial_success` a server may report.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use weir_api::Signal;

use crate::delivery::Delivered;

/// The partial success in a protobuf export response. An empty or undecodable body is a
/// full success: the server already said OK.
pub fn from_protobuf(signal: Signal, body: &[u8]) -> Delivered {
    let (rejected, message) = match signal {
        Signal::Logs => ExportLogsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Traces => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
    .unwrap_or_default();
    Delivered {
        rejected_items: u64::try_from(rejected).unwrap_or(0),
        message,
    }
}

/// The partial success in a JSON export response (`partialSuccess.rejectedLogRecords`, an
/// int64 written as a string or a number).
pub fn from_json(signal: Signal, body: &[u8]) -> Delivered {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Delivered::default();
    };
    let partial = &value["partialSuccess"];
    let field = match signal {
        Signal::Logs => "rejectedLogRecords",
        Signal::Traces => "rejectedSpans",
        Signal::Metrics => "rejectedDataPoints",
    };
    let rejected = match &partial[field] {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    };
    Delivered {
        rejected_items: rejected,
        message: partial["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    #[test]
    fn reads_partial_success() {
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        let d = from_protobuf(Signal::Traces, &body);
        assert_eq!((d.rejected_items, d.message.as_str()), (2, "too old"));
        assert_eq!(from_protobuf(Signal::Logs, &[]), Delivered::default());
        let d = from_json(
            Signal::Logs,
            br#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"bad"}}"#,
        );
        assert_eq!((d.rejected_items, d.message.as_str()), (3, "bad"));
        assert_eq!(from_json(Signal::Metrics, b"{}"), Delivered::default());
    }
}
