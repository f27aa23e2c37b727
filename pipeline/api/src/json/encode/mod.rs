//! prost types -> OTLP/JSON, written straight into a byte buffer.
//!
//! Per the OTLP/JSON rules: lowerCamelCase field names, trace and span ids as hex, enums as
//! integers, 64-bit integers as decimal strings, bytes as base64, and fields holding their
//! default value left out (proto3 JSON). Fields with explicit presence (message fields that
//! are set, oneof members, `optional` doubles) are written even when their value is default.

mod logs;
mod metrics;
mod traces;
mod writer;

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, EntityRef, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use writer::{write_base64, write_string, ObjectWriter};

pub(crate) use logs::logs_request;
pub(crate) use metrics::metrics_request;
pub(crate) use traces::traces_request;

fn resource(out: &mut Vec<u8>, resource: &Resource) {
    let mut o = ObjectWriter::begin(out);
    o.list("attributes", &resource.attributes, key_value);
    o.u32("droppedAttributesCount", resource.dropped_attributes_count);
    o.list("entityRefs", &resource.entity_refs, entity_ref);
    o.end();
}

fn entity_ref(out: &mut Vec<u8>, entity: &EntityRef) {
    let mut o = ObjectWriter::begin(out);
    o.string("schemaUrl", &entity.schema_url);
    o.string("type", &entity.r#type);
    o.list("idKeys", &entity.id_keys, |out, k| write_string(out, k));
    o.list("descriptionKeys", &entity.description_keys, |out, k| {
        write_string(out, k)
    });
    o.end();
}

fn scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    let mut o = ObjectWriter::begin(out);
    o.string("name", &scope.name);
    o.string("version", &scope.version);
    o.list("attributes", &scope.attributes, key_value);
    o.u32("droppedAttributesCount", scope.dropped_attributes_count);
    o.end();
}

fn key_value(out: &mut Vec<u8>, kv: &KeyValue) {
    let mut o = ObjectWriter::begin(out);
    o.string("key", &kv.key);
    if let Some(value) = &kv.value {
        o.message("value", |out| any_value(out, value));
    }
    o.i32("keyStrindex", kv.key_strindex);
    o.end();
}

fn any_value(out: &mut Vec<u8>, value: &AnyValue) {
    use any_value::Value as V;
    let mut o = ObjectWriter::begin(out);
    match &value.value {
        None => {}
        Some(V::StringValue(s)) => o.message("stringValue", |out| write_string(out, s)),
        Some(V::BoolValue(b)) => o.message("boolValue", |out| {
            out.extend_from_slice(if *b { b"true" } else { b"false" })
        }),
        Some(V::IntValue(i)) => o.i64_always("intValue", *i),
        Some(V::DoubleValue(d)) => o.f64_always("doubleValue", *d),
        Some(V::ArrayValue(array)) => o.message("arrayValue", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("values", &array.values, any_value);
            o.end();
        }),
        Some(V::KvlistValue(kvlist)) => o.message("kvlistValue", |out| {
            let mut o = ObjectWriter::begin(out);
            o.list("values", &kvlist.values, key_value);
            o.end();
        }),
        Some(V::BytesValue(bytes)) => o.message("bytesValue", |out| write_base64(out, bytes)),
        Some(V::StringValueStrindex(i)) => o.message("stringValueStrindex", |out| {
            out.extend_from_slice(i.to_string().as_bytes())
        }),
    }
    o.end();
}
