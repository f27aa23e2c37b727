//! Unit tests of the collector's text layout: logs, traces and every metric type,
//! compared line by line with what the collector prints, and the Go value formats.

use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::common::v1::KeyValueList;
use weir_api::otlp::common::v1::{any_value, AnyValue};
use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weir_api::otlp::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, HistogramDataPoint, NumberDataPoint,
};
use weir_api::otlp::metrics::v1::{
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, Metric, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use weir_api::otlp::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span, Status};

use super::values::{base64, go_double, go_f};
use super::*;

const START: u64 = 1_581_452_772_000_000_321;
const END: u64 = 1_581_452_773_000_000_789;
const EVENT: u64 = 1_581_452_773_000_000_123;

use weir_api::fixtures::kv;
fn s(k: &str, v: &str) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}
fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![s("resource-attr", "resource-attr-val-1")],
        ..Default::default()
    })
}
fn map(kvs: Vec<KeyValue>) -> any_value::Value {
    any_value::Value::KvlistValue(KeyValueList { values: kvs })
}

#[test]
fn logs_in_the_collectors_layout() {
    let record = |body: any_value::Value, attrs: Vec<KeyValue>| LogRecord {
        time_unix_nano: END,
        severity_text: "Info".into(),
        severity_number: 9,
        body: Some(AnyValue { value: Some(body) }),
        attributes: attrs,
        ..Default::default()
    };
    let mut first = record(
        any_value::Value::StringValue("This is a log message".into()),
        vec![
            s("app", "server"),
            kv("instance_num", any_value::Value::IntValue(1)),
        ],
    );
    first.trace_id = vec![8, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    first.span_id = vec![1, 2, 4, 8, 0, 0, 0, 0];
    let mut second = record(
        map(vec![
            s("key1", "val1"),
            kv(
                "key2",
                map(vec![s("key22", "val22"), s("key21", "a<b>\"c\"\n")]),
            ),
        ]),
        vec![
            kv("ratio", any_value::Value::DoubleValue(0.5)),
            kv("tiny", any_value::Value::DoubleValue(1e-7)),
            kv("ok", any_value::Value::BoolValue(true)),
            kv("raw", any_value::Value::BytesValue(b"hi!?".to_vec())),
        ],
    );
    second.severity_number = 17;
    second.severity_text = "ERROR".into();
    second.event_name = "app.crash".into();
    second.flags = 1;
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: vec![first, second],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        render(&Payload::Logs(req)),
        "ResourceLog #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeLogs #0
ScopeLogs SchemaURL: 
InstrumentationScope  
LogRecord #0
ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
SeverityText: Info
SeverityNumber: Info(9)
Body: Str(This is a log message)
Attributes:
     -> app: Str(server)
     -> instance_num: Int(1)
Trace ID: 08040201000000000000000000000000
Span ID: 0102040800000000
Flags: 0
LogRecord #1
ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
SeverityText: ERROR
SeverityNumber: Error(17)
EventName: app.crash
Body: Map({\"key1\":\"val1\",\"key2\":{\"key21\":\"a<b>\\\"c\\\"\\n\",\"key22\":\"val22\"}})
Attributes:
     -> ratio: Double(0.5)
     -> tiny: Double(1e-7)
     -> ok: Bool(true)
     -> raw: Bytes(aGkhPw==)
Trace ID: 
Span ID: 
Flags: 1
"
    );
}

#[test]
fn spans_in_the_collectors_layout() {
    let a = Span {
        trace_id: (1..=16).collect(),
        span_id: (0x11..=0x18).collect(),
        trace_state: "ot=th:0".into(),
        name: "operationA".into(),
        start_time_unix_nano: START,
        end_time_unix_nano: END,
        dropped_attributes_count: 1,
        dropped_events_count: 1,
        events: vec![
            Event {
                time_unix_nano: EVENT,
                name: "event-with-attr".into(),
                attributes: vec![s("span-event-attr", "span-event-attr-val")],
                dropped_attributes_count: 2,
            },
            Event {
                time_unix_nano: EVENT,
                name: "event".into(),
                attributes: vec![],
                dropped_attributes_count: 2,
            },
        ],
        status: Some(Status {
            message: "status-cancelled".into(),
            code: 2,
        }),
        ..Default::default()
    };
    let b = Span {
        name: "operationB".into(),
        kind: 2,
        start_time_unix_nano: START,
        end_time_unix_nano: END,
        dropped_links_count: 3,
        attributes: vec![s("http.method", "GET")],
        links: vec![span::Link {
            attributes: vec![s("span-link-attr", "span-link-attr-val")],
            dropped_attributes_count: 4,
            ..Default::default()
        }],
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.2".into(),
                    attributes: vec![s("scope-attr", "x")],
                    ..Default::default()
                }),
                spans: vec![a, b],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        render(&Payload::Traces(req)),
        "ResourceSpans #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeSpans #0
ScopeSpans SchemaURL: 
InstrumentationScope lib 1.2
InstrumentationScope attributes:
     -> scope-attr: Str(x)
Span #0
    Trace ID       : 0102030405060708090a0b0c0d0e0f10
    Parent ID      : 
    ID             : 1112131415161718
    Name           : operationA
    Kind           : Unspecified
    TraceState     : ot=th:0
    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC
    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC
    Status code    : Error
    Status message : status-cancelled
    DroppedAttributesCount: 1
    DroppedEventsCount: 1
    DroppedLinksCount: 0
Events:
SpanEvent #0
     -> Name: event-with-attr
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> DroppedAttributesCount: 2
     -> Attributes::
          -> span-event-attr: Str(span-event-attr-val)
SpanEvent #1
     -> Name: event
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> DroppedAttributesCount: 2
Span #1
    Trace ID       : 
    Parent ID      : 
    ID             : 
    Name           : operationB
    Kind           : Server
    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC
    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC
    Status code    : Unset
    Status message : 
    DroppedAttributesCount: 0
    DroppedEventsCount: 0
    DroppedLinksCount: 3
Attributes:
     -> http.method: Str(GET)
Links:
SpanLink #0
     -> Trace ID: 
     -> ID: 
     -> TraceState: 
     -> DroppedAttributesCount: 4
     -> Attributes::
          -> span-link-attr: Str(span-link-attr-val)
"
    );
}

#[test]
fn metrics_of_every_point_type_in_the_collectors_layout() {
    let label = |k: &str| vec![s(k, &format!("{k}-value"))];
    let metric = |name: &str, data: metric::Data| Metric {
        name: name.into(),
        unit: "1".into(),
        data: Some(data),
        ..Default::default()
    };
    let number = |v: number_data_point::Value| NumberDataPoint {
        attributes: label("label-1"),
        start_time_unix_nano: START,
        time_unix_nano: END,
        value: Some(v),
        ..Default::default()
    };
    let mut gauge = metric(
        "gauge-int",
        metric::Data::Gauge(Gauge {
            data_points: vec![number(number_data_point::Value::AsInt(123))],
        }),
    );
    gauge.description = "a gauge".into();
    gauge.metadata = vec![s("origin", "sdk")];
    let sum = metric(
        "sum-double",
        metric::Data::Sum(Sum {
            data_points: vec![number(number_data_point::Value::AsDouble(4.56))],
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
    );
    let histogram = metric(
        "histogram",
        metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: label("label-2"),
                start_time_unix_nano: START,
                time_unix_nano: END,
                count: 1,
                sum: Some(15.0),
                min: Some(15.0),
                max: Some(15.0),
                bucket_counts: vec![0, 1],
                explicit_bounds: vec![1.0],
                exemplars: vec![Exemplar {
                    filtered_attributes: vec![s(
                        "exemplar-attachment",
                        "exemplar-attachment-value",
                    )],
                    time_unix_nano: EVENT,
                    span_id: (0x11..=0x18).collect(),
                    trace_id: (1..=16).collect(),
                    value: Some(exemplar::Value::AsDouble(15.0)),
                }],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        }),
    );
    let exponential = metric(
        "exponential-histogram",
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![
                ExponentialHistogramDataPoint {
                    attributes: label("label-1"),
                    start_time_unix_nano: START,
                    time_unix_nano: END,
                    count: 5,
                    sum: Some(0.15),
                    scale: 1,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![1, 1],
                    }),
                    negative: Some(Buckets {
                        offset: -1,
                        bucket_counts: vec![1, 1],
                    }),
                    ..Default::default()
                },
                ExponentialHistogramDataPoint {
                    start_time_unix_nano: START,
                    time_unix_nano: END,
                    count: 3,
                    sum: Some(1.25),
                    min: Some(0.0),
                    max: Some(1.0),
                    scale: -1,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: -1,
                        bucket_counts: vec![1, 1],
                    }),
                    exemplars: vec![Exemplar {
                        time_unix_nano: EVENT,
                        value: Some(exemplar::Value::AsInt(15)),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            aggregation_temporality: 1,
        }),
    );
    let summary = metric(
        "summary",
        metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: label("label-3"),
                start_time_unix_nano: START,
                time_unix_nano: END,
                count: 1,
                sum: 15.0,
                quantile_values: vec![ValueAtQuantile {
                    quantile: 0.01,
                    value: 15.0,
                }],
                ..Default::default()
            }],
        }),
    );
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge, sum, histogram, exponential, summary],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    assert_eq!(
        render(&Payload::Metrics(req)),
        "ResourceMetrics #0
Resource SchemaURL: 
Resource attributes:
     -> resource-attr: Str(resource-attr-val-1)
ScopeMetrics #0
ScopeMetrics SchemaURL: 
InstrumentationScope  
Metric #0
Descriptor:
     -> Name: gauge-int
     -> Description: a gauge
     -> Unit: 1
     -> DataType: Gauge
     -> Metadata:
          -> origin: Str(sdk)
NumberDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Value: 123
Metric #1
Descriptor:
     -> Name: sum-double
     -> Description: 
     -> Unit: 1
     -> DataType: Sum
     -> IsMonotonic: true
     -> AggregationTemporality: Cumulative
NumberDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Value: 4.560000
Metric #2
Descriptor:
     -> Name: histogram
     -> Description: 
     -> Unit: 1
     -> DataType: Histogram
     -> AggregationTemporality: Cumulative
HistogramDataPoints #0
Data point attributes:
     -> label-2: Str(label-2-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 1
Sum: 15.000000
Min: 15.000000
Max: 15.000000
ExplicitBounds #0: 1.000000
Buckets #0, Count: 0
Buckets #1, Count: 1
Exemplars:
Exemplar #0
     -> Trace ID: 0102030405060708090a0b0c0d0e0f10
     -> Span ID: 1112131415161718
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> Value: 15.000000
     -> FilteredAttributes:
          -> exemplar-attachment: Str(exemplar-attachment-value)
Metric #3
Descriptor:
     -> Name: exponential-histogram
     -> Description: 
     -> Unit: 1
     -> DataType: ExponentialHistogram
     -> AggregationTemporality: Delta
ExponentialHistogramDataPoints #0
Data point attributes:
     -> label-1: Str(label-1-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 5
Sum: 0.150000
Bucket [-1.414214, -1.000000), Count: 1
Bucket [-1.000000, -0.707107), Count: 1
Bucket [0, 0], Count: 1
Bucket (1.414214, 2.000000], Count: 1
Bucket (2.000000, 2.828427], Count: 1
ExponentialHistogramDataPoints #1
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 3
Sum: 1.250000
Min: 0.000000
Max: 1.000000
Bucket [0, 0], Count: 1
Bucket (0.250000, 1.000000], Count: 1
Bucket (1.000000, 4.000000], Count: 1
Exemplars:
Exemplar #0
     -> Trace ID: 
     -> Span ID: 
     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC
     -> Value: 15
Metric #4
Descriptor:
     -> Name: summary
     -> Description: 
     -> Unit: 1
     -> DataType: Summary
SummaryDataPoints #0
Data point attributes:
     -> label-3: Str(label-3-value)
StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC
Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC
Count: 1
Sum: 15.000000
QuantileValue #0: Quantile 0.010000, Value 15.000000
"
    );
}

#[test]
fn go_number_and_time_forms() {
    assert_eq!(timestamp(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(timestamp(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
    assert_eq!(go_f(f64::INFINITY), "+Inf");
    assert_eq!(go_f(-0.5), "-0.500000");
    assert_eq!(go_double(3.0), "3");
    assert_eq!(go_double(1e21), "1e+21");
    assert_eq!(go_double(-2.5e-9), "-2.5e-9");
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}
