//! gRPC without protobuf work for the generator and the sink, so neither spends CPU on
//! encode/decode that would compete with the system under test: Weir's own raw-bytes codec.

pub use weir_api::grpc_raw::{export_path, RawBytesCodec as RawCodec};
