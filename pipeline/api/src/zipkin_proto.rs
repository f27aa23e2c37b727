//! Zipkin's v2 protobuf messages (`zipkin.proto3`, the body of `POST /api/v2/spans` with
//! `Content-Type: application/x-protobuf`), shared by the `zipkin` receiver that reads them
//! and the `zipkin` exporter that writes them. Written by hand as prost messages, as the
//! other small protobuf schemas of the repository are; the schema they follow:
//!
//! ```proto
//! syntax = "proto3";
//! package zipkin.proto3;
//! message ListOfSpans { repeated Span spans = 1; }
//! message Span {
//!   bytes trace_id = 1;        // 8 or 16 bytes
//!   bytes parent_id = 2;       // absent or 8 bytes
//!   bytes id = 3;              // 8 bytes
//!   Kind kind = 4;             // SPAN_KIND_UNSPECIFIED, CLIENT, SERVER, PRODUCER, CONSUMER
//!   string name = 5;
//!   fixed64 timestamp = 6;     // epoch microseconds; 0 = absent
//!   uint64 duration = 7;       // microseconds
//!   Endpoint local_endpoint = 8;
//!   Endpoint remote_endpoint = 9;
//!   repeated Annotation annotations = 10;
//!   map<string, string> tags = 11;
//!   bool debug = 12;
//!   bool shared = 13;
//! }
//! message Endpoint { string service_name = 1; bytes ipv4 = 2; bytes ipv6 = 3; int32 port = 4; }
//! message Annotation { fixed64 timestamp = 1; string value = 2; }
//! ```

use std::collections::BTreeMap;

use prost::Message;

/// `zipkin.proto3.ListOfSpans`: the request body.
#[derive(Clone, PartialEq, Message)]
pub struct ListOfSpans {
    /// The spans.
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

/// `zipkin.proto3.Span`.
#[derive(Clone, PartialEq, Message)]
pub struct Span {
    /// 8 or 16 bytes, big-endian.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// Absent (empty) or 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// A [`Kind`] value.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    /// The operation name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// Start, epoch microseconds (0: absent).
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    /// The service that recorded the span.
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<Endpoint>,
    /// The other side of an RPC or messaging span.
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<Endpoint>,
    /// Timestamped events.
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<Annotation>,
    /// String tags.
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    /// Debug (forced sampling).
    #[prost(bool, tag = "12")]
    pub debug: bool,
    /// A server span that shares its id with the client span.
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

/// `zipkin.proto3.Span.Kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Kind {
    /// No kind given.
    SpanKindUnspecified = 0,
    /// `CLIENT`.
    Client = 1,
    /// `SERVER`.
    Server = 2,
    /// `PRODUCER`.
    Producer = 3,
    /// `CONSUMER`.
    Consumer = 4,
}

/// `zipkin.proto3.Endpoint`.
#[derive(Clone, PartialEq, Message)]
pub struct Endpoint {
    /// Lower-case service name.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// 4 bytes, or empty.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// 16 bytes, or empty.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    /// 0: absent.
    #[prost(int32, tag = "4")]
    pub port: i32,
}

/// `zipkin.proto3.Annotation`.
#[derive(Clone, PartialEq, Message)]
pub struct Annotation {
    /// Epoch microseconds.
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    /// The event.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Decodes a `ListOfSpans`.
pub fn decode(body: &[u8]) -> Result<ListOfSpans, prost::DecodeError> {
    ListOfSpans::decode(body)
}
