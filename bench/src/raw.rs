//! gRPC without protobuf work: a codec that moves message bytes as they are, so neither the
//! generator nor the sink spends CPU on encode/decode that would compete with the system
//! under test.

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Passes message bytes through unchanged in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Encoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// Decoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

/// The gRPC method path of the OTLP export call for a signal.
pub fn export_path(signal: weir_api::Signal) -> &'static str {
    match signal {
        weir_api::Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        weir_api::Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        weir_api::Signal::Metrics => {
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        }
    }
}
