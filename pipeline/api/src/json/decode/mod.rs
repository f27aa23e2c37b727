//! OTLP/JSON -> prost types.
//!
//! The body is parsed into a light JSON tree first ([`tree::JsonValue`]: strings borrowed from
//! the body, objects as vectors), then each message is read field by field with the JSON path
//! of every value at hand, so that an error can say where it is.
//! Field names are accepted in lowerCamelCase and as the original proto (snake_case) names;
//! unknown fields are ignored and `null` counts as absent, as the OTLP/JSON rules require.

mod logs;
mod metrics;
mod primitives;
mod traces;
mod tree;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tree::JsonValue;

use super::error::{JsonError, Path, Problem};
use primitives::{
    base64_bytes, boolean, double, enumeration, hex_id, int32, int64, list, object, string, uint32,
    uint64, SPAN_ID_DIGITS, TRACE_ID_DIGITS,
};

fn parse(body: &[u8]) -> Result<JsonValue<'_>, JsonError> {
    serde_json::from_slice(body).map_err(|source| JsonError::Syntax { source })
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub(crate) fn logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    let root = parse(body)?;
    let path = Path::Root;
    let mut request = ExportLogsServiceRequest::default();
    for (key, value) in fields(&root, &path)? {
        let path = path.field(key);
        if let "resourceLogs" | "resource_logs" = key {
            request.resource_logs = list(value, &path, logs::resource_logs)?;
        }
    }
    Ok(request)
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub(crate) fn traces_request(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    let root = parse(body)?;
    let path = Path::Root;
    let mut request = ExportTraceServiceRequest::default();
    for (key, value) in fields(&root, &path)? {
        let path = path.field(key);
        if let "resourceSpans" | "resource_spans" = key {
            request.resource_spans = list(value, &path, traces::resource_spans)?;
        }
    }
    Ok(request)
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub(crate) fn metrics_request(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    let root = parse(body)?;
    let path = Path::Root;
    let mut request = ExportMetricsServiceRequest::default();
    for (key, value) in fields(&root, &path)? {
        let path = path.field(key);
        if let "resourceMetrics" | "resource_metrics" = key {
            request.resource_metrics = list(value, &path, metrics::resource_metrics)?;
        }
    }
    Ok(request)
}

/// The fields of an object, without those set to `null` (absent, per proto3 JSON).
fn fields<'v>(
    value: &'v JsonValue<'v>,
    path: &Path<'_>,
) -> Result<impl Iterator<Item = (&'v str, &'v JsonValue<'v>)>, JsonError> {
    Ok(object(value, path)?
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (&**k, v)))
}

fn resource(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Resource, JsonError> {
    let mut resource = Resource::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "attributes" => resource.attributes = list(value, &path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                resource.dropped_attributes_count = uint32(value, &path)?
            }
            "entityRefs" | "entity_refs" => resource.entity_refs = list(value, &path, entity_ref)?,
            _ => {}
        }
    }
    Ok(resource)
}

fn entity_ref(value: &JsonValue<'_>, path: &Path<'_>) -> Result<EntityRef, JsonError> {
    let mut entity = EntityRef::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "schemaUrl" | "schema_url" => entity.schema_url = string(value, &path)?,
            "type" => entity.r#type = string(value, &path)?,
            "idKeys" | "id_keys" => entity.id_keys = list(value, &path, string)?,
            "descriptionKeys" | "description_keys" => {
                entity.description_keys = list(value, &path, string)?
            }
            _ => {}
        }
    }
    Ok(entity)
}

fn scope(value: &JsonValue<'_>, path: &Path<'_>) -> Result<InstrumentationScope, JsonError> {
    let mut scope = InstrumentationScope::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "name" => scope.name = string(value, &path)?,
            "version" => scope.version = string(value, &path)?,
            "attributes" => scope.attributes = list(value, &path, key_value)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                scope.dropped_attributes_count = uint32(value, &path)?
            }
            _ => {}
        }
    }
    Ok(scope)
}

fn key_value(value: &JsonValue<'_>, path: &Path<'_>) -> Result<KeyValue, JsonError> {
    let mut kv = KeyValue::default();
    for (key, value) in fields(value, path)? {
        let path = path.field(key);
        match key {
            "key" => kv.key = string(value, &path)?,
            "value" => kv.value = Some(any_value(value, &path)?),
            "keyStrindex" | "key_strindex" => kv.key_strindex = int32(value, &path)?,
            _ => {}
        }
    }
    Ok(kv)
}

fn any_value(value: &JsonValue<'_>, path: &Path<'_>) -> Result<AnyValue, JsonError> {
    use any_value::Value as V;
    let mut set: Option<(&str, V)> = None;
    for (key, value) in fields(value, path)? {
        let field_path = path.field(key);
        let path = &field_path;
        let decoded = match key {
            "stringValue" | "string_value" => V::StringValue(string(value, path)?),
            "boolValue" | "bool_value" => V::BoolValue(boolean(value, path)?),
            "intValue" | "int_value" => V::IntValue(int64(value, path)?),
            "doubleValue" | "double_value" => V::DoubleValue(double(value, path)?),
            "arrayValue" | "array_value" => V::ArrayValue(array_value(value, path)?),
            "kvlistValue" | "kvlist_value" => V::KvlistValue(kvlist_value(value, path)?),
            "bytesValue" | "bytes_value" => V::BytesValue(base64_bytes(value, path)?),
            "stringValueStrindex" | "string_value_strindex" => {
                V::StringValueStrindex(int32(value, path)?)
            }
            _ => continue,
        };
        if let Some((first, _)) = set {
            return Err(path.error(Problem::OneofConflict {
                first: first.to_owned(),
                second: key.to_string(),
            }));
        }
        set = Some((key, decoded));
    }
    Ok(AnyValue {
        value: set.map(|(_, v)| v),
    })
}

fn array_value(value: &JsonValue<'_>, path: &Path<'_>) -> Result<ArrayValue, JsonError> {
    let mut array = ArrayValue::default();
    for (key, value) in fields(value, path)? {
        if key == "values" {
            array.values = list(value, &path.field(key), any_value)?;
        }
    }
    Ok(array)
}

fn kvlist_value(value: &JsonValue<'_>, path: &Path<'_>) -> Result<KeyValueList, JsonError> {
    let mut kvlist = KeyValueList::default();
    for (key, value) in fields(value, path)? {
        if key == "values" {
            kvlist.values = list(value, &path.field(key), key_value)?;
        }
    }
    Ok(kvlist)
}
