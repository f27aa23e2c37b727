//! Writing a prepared change into one record of a context.

use weir_api::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use weir_api::otlp::logs::v1::LogRecord;
use weir_api::otlp::metrics::v1::{number_data_point, Metric, NumberDataPoint};
use weir_api::otlp::resource::v1::Resource;
use weir_api::otlp::trace::v1::{span::Event, Span, Status};
use weir_filter::ottl::Field;

use super::edit::{
    self, as_int, as_str, describe, edit_map, map_at, set_at, Change, Editor, Statement,
};

/// The record a statement writes to.
pub enum ItemMut<'a> {
    Resource(&'a mut Resource),
    Scope(&'a mut InstrumentationScope),
    Log(&'a mut LogRecord),
    Span(&'a mut Span),
    Event(&'a mut Event),
    Metric(&'a mut Metric),
    /// A number data point (its value can be written).
    Number(&'a mut NumberDataPoint),
    /// Another kind of data point: only its attributes.
    PointAttrs(&'a mut Vec<KeyValue>),
    /// Data point `i` of a metric: writes go to the point or, for metric fields, the metric.
    Point(&'a mut Metric, usize),
    /// Event `i` of a span: writes go to the event or, for span fields, the span.
    SpanEvent(&'a mut Span, usize),
}

fn is_metric_field(f: Field) -> bool {
    matches!(
        f,
        Field::MetricName | Field::MetricDescription | Field::MetricUnit
    )
}

fn is_event_field(f: Field) -> bool {
    matches!(
        f,
        Field::EventName | Field::EventAttributes | Field::EventTime
    )
}

/// The record a write to `field` lands in.
fn narrow(item: ItemMut<'_>, field: Field) -> ItemMut<'_> {
    match item {
        ItemMut::Point(m, _) if is_metric_field(field) => ItemMut::Metric(m),
        ItemMut::Point(m, i) => super::point_mut(m, i),
        ItemMut::SpanEvent(s, i) if is_event_field(field) => ItemMut::Event(&mut s.events[i]),
        ItemMut::SpanEvent(s, _) => ItemMut::Span(s),
        other => other,
    }
}

fn root_map<'a>(item: &'a mut ItemMut<'_>, field: Field) -> Option<&'a mut Vec<KeyValue>> {
    use Field::*;
    Some(match (item, field) {
        (ItemMut::Resource(r), ResourceAttributes) => &mut r.attributes,
        (ItemMut::Scope(s), ScopeAttributes) => &mut s.attributes,
        (ItemMut::Log(l), LogAttributes) => &mut l.attributes,
        (ItemMut::Log(l), LogBody) => match l.body.as_mut().and_then(|b| b.value.as_mut()) {
            Some(any_value::Value::KvlistValue(m)) => &mut m.values,
            _ => return None,
        },
        (ItemMut::Span(s), SpanAttributes) => &mut s.attributes,
        (ItemMut::Event(e), EventAttributes) => &mut e.attributes,
        (ItemMut::Number(p), PointAttributes) => &mut p.attributes,
        (ItemMut::PointAttrs(a), PointAttributes) => a,
        _ => return None,
    })
}

/// Applies `change` (from [`edit::prepare`]) for statement `st` to `item`.
pub fn apply(st: &Statement, change: Change, item: ItemMut<'_>) -> Result<(), String> {
    let t = edit::target(&st.editor);
    let mut item = narrow(item, t.field);
    match &st.editor {
        Editor::Set(..)
        | Editor::ReplacePattern(..)
        | Editor::ReplaceMatch(..)
        | Editor::Append(..)
        | Editor::DeleteIndex(..) => {
            let Change::Set(v) = change else {
                return Ok(());
            };
            set_field(&mut item, t.field, &t.keys, v, &t.text)
        }
        editor => {
            if let Some(root) = root_map(&mut item, t.field) {
                if let Some(m) = map_at(root, &t.keys) {
                    edit_map(editor, m, change);
                }
            }
            Ok(())
        }
    }
}

fn set_field(
    item: &mut ItemMut<'_>,
    field: Field,
    keys: &[weir_filter::ottl::parser::Key],
    v: AnyValue,
    text: &str,
) -> Result<(), String> {
    use Field::*;
    let want_str = |v: &AnyValue| {
        as_str(v).ok_or_else(|| format!("set: {text} takes a string, got {}", describe(v)))
    };
    let want_int = |v: &AnyValue| {
        as_int(v).ok_or_else(|| format!("set: {text} takes an int, got {}", describe(v)))
    };
    if field == LogBody {
        if let ItemMut::Log(l) = item {
            if keys.is_empty() {
                l.body = Some(v);
                return Ok(());
            }
            let body = l.body.get_or_insert_with(AnyValue::default);
            if !matches!(body.value, Some(any_value::Value::KvlistValue(_))) {
                return Err(format!("set: {text}: the body is not a map"));
            }
            if let Some(any_value::Value::KvlistValue(m)) = &mut body.value {
                return set_at(&mut m.values, keys, v);
            }
        }
        return Ok(());
    }
    if let Some(root) = root_map(item, field) {
        if keys.is_empty() {
            return match v.value {
                Some(any_value::Value::KvlistValue(m)) => {
                    *root = m.values;
                    Ok(())
                }
                _ => Err(format!("set: {text} takes a map, got {}", describe(&v))),
            };
        }
        return set_at(root, keys, v);
    }
    match item {
        ItemMut::Scope(s) => match field {
            ScopeName => s.name = want_str(&v)?,
            ScopeVersion => s.version = want_str(&v)?,
            _ => {}
        },
        ItemMut::Log(l) => match field {
            LogSeverityText => l.severity_text = want_str(&v)?,
            LogSeverityNumber => l.severity_number = want_int(&v)? as i32,
            LogTime => l.time_unix_nano = want_int(&v)? as u64,
            LogObservedTime => l.observed_time_unix_nano = want_int(&v)? as u64,
            LogEventName => l.event_name = want_str(&v)?,
            LogFlags => l.flags = want_int(&v)? as u32,
            _ => {}
        },
        ItemMut::Span(s) => match field {
            SpanName => s.name = want_str(&v)?,
            SpanKind => s.kind = want_int(&v)? as i32,
            SpanStatusCode => {
                s.status.get_or_insert_with(Status::default).code = want_int(&v)? as i32
            }
            SpanStatusMessage => {
                s.status.get_or_insert_with(Status::default).message = want_str(&v)?
            }
            SpanTraceState => s.trace_state = want_str(&v)?,
            SpanStart => s.start_time_unix_nano = want_int(&v)? as u64,
            SpanEnd => s.end_time_unix_nano = want_int(&v)? as u64,
            _ => {}
        },
        ItemMut::Event(e) => match field {
            EventName => e.name = want_str(&v)?,
            EventTime => e.time_unix_nano = want_int(&v)? as u64,
            _ => {}
        },
        ItemMut::Metric(m) => match field {
            MetricName => m.name = want_str(&v)?,
            MetricDescription => m.description = want_str(&v)?,
            MetricUnit => m.unit = want_str(&v)?,
            _ => {}
        },
        ItemMut::Number(p) => match field {
            PointValueInt => p.value = Some(number_data_point::Value::AsInt(want_int(&v)?)),
            PointValueDouble => {
                let d = match v.value {
                    Some(any_value::Value::DoubleValue(d)) => d,
                    Some(any_value::Value::IntValue(i)) => i as f64,
                    _ => return Err(format!("set: {text} takes a double, got {}", describe(&v))),
                };
                p.value = Some(number_data_point::Value::AsDouble(d));
            }
            _ => {}
        },
        _ => {}
    }
    Ok(())
}
