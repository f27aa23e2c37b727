//! gRPC without protobuf work (feature `grpc`): the one codec Weir uses wherever OTLP export
//! messages cross gRPC as the bytes they already are. A receiver takes the request message's
//! bytes as its item and answers with a prost response ([`RawRequestCodec`]); an exporter,
//! a test client or the benchmark's generator and sink send and take bytes both ways
//! ([`RawBytesCodec`]). Decoding never copies: the message is split off tonic's buffer.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::Signal;

/// The gRPC method path of the OTLP export call for a signal.
pub fn export_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    }
}

/// Moves message bytes as they are, both ways.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesCodec;

/// Takes the message's bytes as they are: the decoder half of both codecs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesDecoder;

/// Writes bytes that already are the message: the encoder half of [`RawBytesCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesEncoder;

impl Codec for RawBytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawBytesEncoder;
    type Decoder = RawBytesDecoder;

    fn encoder(&mut self) -> RawBytesEncoder {
        RawBytesEncoder
    }
    fn decoder(&mut self) -> RawBytesDecoder {
        RawBytesDecoder
    }
}

impl Encoder for RawBytesEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawBytesDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // Splits the message off tonic's buffer without copying.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// A server's codec: the request message's bytes are the item, the response `R` is a prost
/// message.
pub struct RawRequestCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawRequestCodec<R> {
    fn default() -> Self {
        RawRequestCodec(PhantomData)
    }
}

/// Encodes a prost message: the encoder half of [`RawRequestCodec`].
pub struct ProstEncoder<R>(PhantomData<fn() -> R>);

impl<R: prost::Message + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ProstEncoder<R>;
    type Decoder = RawBytesDecoder;

    fn encoder(&mut self) -> ProstEncoder<R> {
        ProstEncoder(PhantomData)
    }
    fn decoder(&mut self) -> RawBytesDecoder {
        RawBytesDecoder
    }
}

impl<R: prost::Message> Encoder for ProstEncoder<R> {
    type Item = R;
    type Error = Status;
    fn encode(&mut self, item: R, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response failed: {e}")))
    }
}
