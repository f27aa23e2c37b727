#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OTLP/JSON metrics: round trips of every metric type, the spec's example style, errors.

use weir_api::fixtures::kv;
use weir_api::json;
use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use weir_api::otlp::metrics::v1::exponential_histogram_data_point::Buckets;
use weir_api::otlp::metrics::v1::summary_data_point::ValueAtQuantile;
use weir_api::otlp::metrics::v1::{
    exemplar, metric::Data, number_data_point, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use weir_api::otlp::resource::v1::Resource;
use weir_api::{Payload, Signal};

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn rich_metrics() -> ExportMetricsServiceRequest {
    let exemplars = vec![
        Exemplar {
            filtered_attributes: vec![kv("user", "alice")],
            time_unix_nano: 1_700_000_000_000_000_123,
            span_id: vec![0x11; 8],
            trace_id: vec![0x22; 16],
            value: Some(exemplar::Value::AsDouble(0.0)),
        },
        Exemplar {
            value: Some(exemplar::Value::AsInt(-42)),
            ..Default::default()
        },
        Exemplar::default(),
    ];
    let number_points = vec![
        NumberDataPoint {
            attributes: vec![kv("host", "a")],
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            exemplars: exemplars.clone(),
            flags: 1,
            value: Some(number_data_point::Value::AsInt(i64::MIN)),
        },
        NumberDataPoint {
            value: Some(number_data_point::Value::AsDouble(0.0)),
            ..Default::default()
        },
        NumberDataPoint::default(),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "billing")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![
                    Metric {
                        name: "requests".into(),
                        description: "Requests served".into(),
                        unit: "{request}".into(),
                        metadata: vec![kv("meta", "data")],
                        data: Some(Data::Sum(Sum {
                            data_points: number_points.clone(),
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                    },
                    metric(
                        "temperature",
                        Data::Gauge(Gauge {
                            data_points: number_points,
                        }),
                    ),
                    metric(
                        "latency",
                        Data::Histogram(Histogram {
                            data_points: vec![
                                HistogramDataPoint {
                                    attributes: vec![kv("route", "/")],
                                    start_time_unix_nano: 10,
                                    time_unix_nano: 20,
                                    count: 6,
                                    sum: Some(0.0),
                                    bucket_counts: vec![1, 0, u64::MAX],
                                    explicit_bounds: vec![-1.5, 0.25],
                                    exemplars: exemplars.clone(),
                                    flags: 1,
                                    min: Some(-3.0),
                                    max: Some(0.0),
                                },
                                HistogramDataPoint::default(),
                            ],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "sizes",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![
                                ExponentialHistogramDataPoint {
                                    attributes: vec![kv("k", "v")],
                                    start_time_unix_nano: 3,
                                    time_unix_nano: 4,
                                    count: 9,
                                    sum: Some(123.5),
                                    scale: -3,
                                    zero_count: 2,
                                    positive: Some(Buckets {
                                        offset: -2,
                                        bucket_counts: vec![1, 2, 3],
                                    }),
                                    negative: Some(Buckets::default()),
                                    flags: 0,
                                    exemplars,
                                    min: Some(0.001),
                                    max: Some(1e10),
                                    zero_threshold: 1e-9,
                                },
                                ExponentialHistogramDataPoint::default(),
                            ],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "rpc.duration",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: vec![kv("method", "Get")],
                                start_time_unix_nano: 5,
                                time_unix_nano: 6,
                                count: 100,
                                sum: 2.5,
                                quantile_values: vec![
                                    ValueAtQuantile {
                                        quantile: 0.0,
                                        value: 0.1,
                                    },
                                    ValueAtQuantile {
                                        quantile: 0.99,
                                        value: 7.0,
                                    },
                                ],
                                flags: 1,
                            }],
                        }),
                    ),
                    Metric::default(),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.20.0".into(),
        }],
    }
}

#[test]
fn metrics_round_trip_keeps_every_field() {
    let request = rich_metrics();
    let encoded = json::encode_metrics(&request);
    assert_eq!(json::decode_metrics(&encoded).unwrap(), request);
    let payload = Payload::Metrics(request);
    let mut line = Vec::new();
    json::encode_into(&payload, &mut line);
    assert!(!line.contains(&b'\n'));
    assert_eq!(json::decode(Signal::Metrics, &line).unwrap(), payload);
    let mut written = Vec::new();
    json::encode_to_writer(&payload, &mut written).unwrap();
    assert_eq!(written, line);
}

#[test]
fn metrics_encoding_follows_the_otlp_json_rules() {
    let doc: serde_json::Value =
        serde_json::from_slice(&json::encode_metrics(&rich_metrics())).unwrap();
    let metrics = &doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    let sum = &metrics[0];
    assert_eq!(sum["unit"], "{request}");
    assert_eq!(sum["metadata"][0]["key"], "meta");
    assert_eq!(sum["sum"]["aggregationTemporality"], 2);
    assert_eq!(sum["sum"]["isMonotonic"], true);
    let point = &sum["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "-9223372036854775808");
    assert_eq!(point["startTimeUnixNano"], "1");
    assert_eq!(point["flags"], 1);
    assert_eq!(
        point["exemplars"][0],
        serde_json::json!({
            "filteredAttributes": [{"key": "user", "value": {"stringValue": "alice"}}],
            "timeUnixNano": "1700000000000000123",
            "asDouble": 0.0,
            "spanId": "1111111111111111",
            "traceId": "22222222222222222222222222222222"
        })
    );
    assert_eq!(point["exemplars"][1], serde_json::json!({"asInt": "-42"}));
    assert_eq!(
        sum["sum"]["dataPoints"][1],
        serde_json::json!({"asDouble": 0.0})
    );
    assert_eq!(sum["sum"]["dataPoints"][2], serde_json::json!({}));
    let hist = &metrics[2]["histogram"]["dataPoints"][0];
    assert_eq!(hist["count"], "6");
    assert_eq!(hist["sum"], 0.0);
    assert_eq!(
        hist["bucketCounts"],
        serde_json::json!(["1", "0", "18446744073709551615"])
    );
    assert_eq!(hist["explicitBounds"], serde_json::json!([-1.5, 0.25]));
    assert_eq!(
        (hist["min"].clone(), hist["max"].clone()),
        (serde_json::json!(-3.0), serde_json::json!(0.0))
    );
    assert_eq!(
        metrics[2]["histogram"]["dataPoints"][1],
        serde_json::json!({})
    );
    let exp = &metrics[3]["exponentialHistogram"]["dataPoints"][0];
    assert_eq!(exp["scale"], -3);
    assert_eq!(exp["zeroCount"], "2");
    assert_eq!(exp["zeroThreshold"], 1e-9);
    assert_eq!(
        exp["positive"],
        serde_json::json!({"offset": -2, "bucketCounts": ["1", "2", "3"]})
    );
    assert_eq!(exp["negative"], serde_json::json!({}));
    let summary = &metrics[4]["summary"]["dataPoints"][0];
    assert_eq!(
        summary["quantileValues"],
        serde_json::json!([{"value": 0.1}, {"quantile": 0.99, "value": 7.0}])
    );
    assert_eq!(metrics[5], serde_json::json!({}));
}

/// In the style of opentelemetry-proto's examples/metrics.json.
const SPEC_STYLE_METRICS: &str = r#"{
  "resourceMetrics": [
    {
      "resource": { "attributes": [ { "key": "service.name", "value": { "stringValue": "my.service" } } ] },
      "scopeMetrics": [
        {
          "scope": { "name": "my.library", "version": "1.0.0" },
          "metrics": [
            {
              "name": "my.counter", "unit": "1", "description": "I am a Counter",
              "sum": {
                "aggregationTemporality": 1, "isMonotonic": true,
                "dataPoints": [ { "asDouble": 5, "startTimeUnixNano": "1544712660300000000",
                  "timeUnixNano": "1544712660300000000",
                  "attributes": [ { "key": "my.counter.attr", "value": { "stringValue": "some value" } } ] } ]
              }
            },
            {
              "name": "my.gauge", "unit": "1", "description": "I am a Gauge",
              "gauge": { "dataPoints": [ { "asDouble": 10, "timeUnixNano": "1544712660300000000" } ] }
            },
            {
              "name": "my.histogram", "unit": "1", "description": "I am a Histogram",
              "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [ { "startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                  "count": 2, "sum": 2, "bucketCounts": [1, 1], "explicitBounds": [1], "min": 0, "max": 2 } ]
              }
            },
            {
              "name": "my.exponential.histogram", "unit": "1", "description": "I am an Exponential Histogram",
              "exponentialHistogram": {
                "aggregationTemporality": 1,
                "dataPoints": [ { "startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                  "count": 3, "sum": 10, "scale": 0, "zeroCount": 1,
                  "positive": { "offset": 1, "bucketCounts": [0, 2] }, "min": 0, "max": 5, "zeroThreshold": 0 } ]
              }
            }
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn decodes_the_spec_example_style() {
    let request = json::decode_metrics(SPEC_STYLE_METRICS.as_bytes()).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 4);
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!("not a sum: {:?}", metrics[0].data)
    };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsDouble(5.0))
    );
    assert_eq!(
        sum.data_points[0].start_time_unix_nano,
        1_544_712_660_300_000_000
    );
    let Some(Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("not a gauge")
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(10.0))
    );
    let Some(Data::Histogram(hist)) = &metrics[2].data else {
        panic!("not a histogram")
    };
    let p = &hist.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (2, Some(2.0), Some(0.0), Some(2.0))
    );
    assert_eq!(
        (p.bucket_counts.clone(), p.explicit_bounds.clone()),
        (vec![1, 1], vec![1.0])
    );
    let Some(Data::ExponentialHistogram(exp)) = &metrics[3].data else {
        panic!("not an exponential histogram")
    };
    let p = &exp.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.scale, p.zero_count),
        (3, Some(10.0), 0, 1)
    );
    assert_eq!(
        p.positive,
        Some(Buckets {
            offset: 1,
            bucket_counts: vec![0, 2]
        })
    );
    assert_eq!(p.negative, None);
    assert_eq!(
        (p.min, p.max, p.zero_threshold),
        (Some(0.0), Some(5.0), 0.0)
    );
}

#[test]
fn decodes_enum_names_snake_case_and_special_doubles() {
    let body = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[
        {"name":"s","sum":{"aggregation_temporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","is_monotonic":true,
           "data_points":[{"as_int":"7","exemplars":[{"as_int":3,"span_id":"EEE19B7EC3C1B174",
               "trace_id":"5b8efff798038103d269b633813fc60c","filtered_attributes":[{"key":"a","value":{"stringValue":"b"}}]}]}]}},
        {"name":"h","histogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA",
           "data_points":[{"bucket_counts":["1",2],"explicit_bounds":["Infinity",1.5,"-Infinity"],"sum":"NaN"}]}},
        {"name":"e","exponential_histogram":{"data_points":[{"zero_count":"4","zero_threshold":"0.5",
           "negative":{"offset":-1,"bucket_counts":["5"]}}]}},
        {"name":"q","summary":{"data_points":[{"quantile_values":[{"quantile":"0.5","value":"2"}],"count":"3","sum":1}]}}
    ]}]}]}"#;
    let request = json::decode_metrics(body).unwrap();
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 2);
    let point = &sum.data_points[0];
    assert_eq!(point.value, Some(number_data_point::Value::AsInt(7)));
    let ex = &point.exemplars[0];
    assert_eq!(ex.value, Some(exemplar::Value::AsInt(3)));
    assert_eq!((ex.span_id.len(), ex.trace_id.len()), (8, 16));
    assert_eq!(ex.filtered_attributes, vec![kv("a", "b")]);
    let Some(Data::Histogram(hist)) = &metrics[1].data else {
        panic!()
    };
    assert_eq!(hist.aggregation_temporality, 1);
    let p = &hist.data_points[0];
    assert_eq!(p.bucket_counts, vec![1, 2]);
    assert_eq!(
        p.explicit_bounds,
        vec![f64::INFINITY, 1.5, f64::NEG_INFINITY]
    );
    assert!(p.sum.unwrap().is_nan());
    let Some(Data::ExponentialHistogram(exp)) = &metrics[2].data else {
        panic!()
    };
    let p = &exp.data_points[0];
    assert_eq!((p.zero_count, p.zero_threshold), (4, 0.5));
    assert_eq!(
        p.negative,
        Some(Buckets {
            offset: -1,
            bucket_counts: vec![5]
        })
    );
    let Some(Data::Summary(summary)) = &metrics[3].data else {
        panic!()
    };
    let p = &summary.data_points[0];
    assert_eq!((p.count, p.sum), (3, 1.0));
    assert_eq!(
        p.quantile_values,
        vec![ValueAtQuantile {
            quantile: 0.5,
            value: 2.0
        }]
    );
}

#[test]
fn errors_name_their_location() {
    let err = |body: &str| {
        json::decode_metrics(body.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"a","gauge":{},"sum":{}}]}]}]}"#
        ),
        r#"resourceMetrics[0].scopeMetrics[0].metrics[0].sum: both "gauge" and "sum" are set, but only one of them is allowed"#
    );
    assert_eq!(
        err(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{"bucketCounts":["1","x"]}]}}]}]}]}"#
        ),
        r#"resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: invalid uint64 "x""#
    );
    assert_eq!(
        err(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"CUMULATIVE"}}]}]}]}"#
        ),
        r#"resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality: unknown AggregationTemporality name "CUMULATIVE""#
    );
    assert_eq!(
        err(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"fast"}]}}]}]}]}"#
        ),
        r#"resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asDouble: invalid double "fast""#
    );
    assert_eq!(
        err(r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asInt":1.5}]}}]}]}]}"#),
        "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asInt: invalid int64 1.5"
    );
    assert_eq!(
        err(
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"exemplars":[{"traceId":"5b8efff798038103d269b633813fc60"}]}]}}]}]}]}"#
        ),
        r#"resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0].traceId: invalid hex id "5b8efff798038103d269b633813fc60" (expected 32 hex digits)"#
    );
    assert_eq!(
        err(r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"isMonotonic":"yes"}}]}]}]}"#),
        "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.isMonotonic: expected a boolean, got a string"
    );
}

#[test]
fn integral_floats_are_accepted_as_integers() {
    // Some JSON producers write every number as a double.
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[
        {"timeUnixNano":1.5447126603e18,"asInt":-2e3}]}}]}]}]}"#;
    let request = json::decode_metrics(body).unwrap();
    let Some(Data::Gauge(g)) = &request.resource_metrics[0].scope_metrics[0].metrics[0].data else {
        panic!()
    };
    assert_eq!(g.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsInt(-2000))
    );
}

/// Cross-check with an independent implementation: opentelemetry-proto's own serde support
/// (its `with-serde` feature) reads what we write and writes what we read.
#[test]
fn agrees_with_opentelemetry_proto_serde() {
    let request = rich_metrics();
    let theirs = serde_json::to_vec(&request).unwrap();
    assert_eq!(json::decode_metrics(&theirs).unwrap(), request);
    let ours = json::encode_metrics(&request);
    let read_by_them: ExportMetricsServiceRequest = serde_json::from_slice(&ours).unwrap();
    assert_eq!(read_by_them, request);
}
