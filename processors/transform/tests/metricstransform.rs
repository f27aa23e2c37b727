//! The `metricstransform` processor: Collector-shaped configs load, each action and
//! operation changes exactly what it should, and every config problem is reported.

// The OTLP builders the filter tests use (one copy for both crates).
#[path = "../../filter/tests/common/mod.rs"]
mod common;

use common::*;
use weir_api::otlp::metrics::v1::metric::Data;
use weir_api::otlp::metrics::v1::{number_data_point, Metric};
use weir_api::{Payload, Processor};
use weir_transform::metricstransform::{parse, MetricsTransformProcessor};

/// `name[attrs]=value` for every number point, in order.
fn points(m: &Metric) -> Vec<String> {
    let ps = match &m.data {
        Some(Data::Gauge(g)) => &g.data_points,
        Some(Data::Sum(s)) => &s.data_points,
        _ => panic!("not a number metric"),
    };
    ps.iter()
        .map(|p| {
            let mut attrs: Vec<String> = p
                .attributes
                .iter()
                .map(|kv| {
                    format!(
                        "{}={}",
                        kv.key,
                        weir_filter::ottl::value::any_as_string(kv.value.as_ref())
                    )
                })
                .collect();
            attrs.sort();
            let v = match p.value {
                Some(number_data_point::Value::AsInt(i)) => format!("{i}i"),
                Some(number_data_point::Value::AsDouble(d)) => format!("{d}f"),
                None => "none".into(),
            };
            format!("{}[{}]={v}", m.name, attrs.join(","))
        })
        .collect()
}

fn run(cfg: &str, metrics: Vec<Metric>) -> Vec<Metric> {
    let p = MetricsTransformProcessor::from_config(&yaml(cfg), "processors.metricstransform")
        .expect("valid");
    let mut batch = metrics_batch(vec![(vec![], "lib", metrics)]);
    p.process(&mut batch).expect("processes");
    let Payload::Metrics(req) = batch.payload() else {
        panic!()
    };
    req.resource_metrics[0].scope_metrics[0].metrics.clone()
}

/// Shaped like the Collector's `processor/metricstransformprocessor/testdata/config_full.yaml`
/// (with its `combine` and `group` entries).
const COLLECTOR_SHAPED: &str = r#"
metricstransform:
  transforms:
    - include: name
      action: update
      new_name: new_name
      operations:
        - action: update_label
          label: label
          new_label: new_label
          value_actions:
            - value: current_label_value
              new_value: new_label_value
        - action: aggregate_labels
          label_set: [new_label, label2]
          aggregation_type: sum
        - action: aggregate_label_values
          label: new_label
          aggregated_values: [value1, value2]
          new_value: new_value
          aggregation_type: sum
    - include: name2
      match_type: regexp
      action: insert
      new_name: new_name2
      operations:
        - action: add_label
          new_label: my_label
          new_value: my_value
        - action: toggle_scalar_data_type
        - action: scale_value
          experimental_scale: 1000
    - include: ^regexp (?P<my_label>.*)$
      match_type: regexp
      action: combine
      new_name: combined_metric_name
      submatch_case: lower
    - include: name2
      match_type: strict
      action: group
      group_resource_labels: {"metric_group": "2"}
metricstransform/deprecated:
  transforms:
    - metric_name: old_name
      action: update
      new_name: new_name
"#;

#[test]
fn collector_shaped_configs_load() {
    let all = yaml(COLLECTOR_SHAPED);
    let map = all.as_object().expect("map");
    assert_eq!(map.len(), 2);
    for (name, section) in map {
        let t =
            parse(section, &format!("processors.{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!t.is_empty());
    }
}

#[test]
fn update_renames_relabels_and_aggregates() {
    let all = yaml(COLLECTOR_SHAPED);
    let p = MetricsTransformProcessor::from_config(&all["metricstransform"], "p").expect("valid");
    let mut batch = metrics_batch(vec![(
        vec![],
        "lib",
        vec![sum(
            "name",
            vec![
                int_point(
                    1,
                    vec![
                        kv("label", s("current_label_value")),
                        kv("label2", s("a")),
                        kv("x", s("1")),
                    ],
                ),
                int_point(
                    2,
                    vec![
                        kv("label", s("current_label_value")),
                        kv("label2", s("a")),
                        kv("x", s("2")),
                    ],
                ),
                int_point(4, vec![kv("label", s("value1")), kv("label2", s("a"))]),
                int_point(8, vec![kv("label", s("value2")), kv("label2", s("a"))]),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    let Payload::Metrics(req) = batch.payload() else {
        panic!()
    };
    let ms = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(ms.len(), 1);
    // label renamed to new_label with its value mapped; x aggregated away (1 + 2); value1
    // and value2 merged into new_value (4 + 8).
    assert_eq!(
        points(&ms[0]),
        vec![
            "new_name[label2=a,new_label=new_label_value]=3i",
            "new_name[label2=a,new_label=new_value]=12i",
        ]
    );
}

#[test]
fn insert_copies_with_operations_and_regexp_groups() {
    let out = run(
        r#"
transforms:
  - include: ^system\.(?P<kind>cpu|mem)\.usage$
    match_type: regexp
    action: insert
    new_name: host.${kind}.$1.Used
    submatch_case: upper
    operations:
      - {action: add_label, new_label: source, new_value: copy}
      - {action: toggle_scalar_data_type}
      - {action: scale_value, experimental_scale: 0.5}
"#,
        vec![
            gauge(
                "system.cpu.usage",
                vec![
                    int_point(10, vec![]),
                    int_point(3, vec![kv("source", s("orig"))]),
                ],
            ),
            gauge("system.disk.usage", vec![int_point(1, vec![])]),
        ],
    );
    let all: Vec<String> = out.iter().flat_map(points).collect();
    assert_eq!(
        all,
        vec![
            "system.cpu.usage[]=10i",
            "system.cpu.usage[source=orig]=3i",
            "system.disk.usage[]=1i",
            "host.CPU.CPU.Used[source=copy]=5f",
            "host.CPU.CPU.Used[source=orig]=1.5f",
        ]
    );
}

#[test]
fn delete_label_value_and_mean_min_max() {
    let out = run(
        r#"
transforms:
  - include: a
    action: update
    operations:
      - {action: delete_label_value, label: env, label_value: test}
      - {action: aggregate_labels, label_set: [env], aggregation_type: mean}
  - include: b
    action: update
    operations:
      - {action: aggregate_labels, label_set: [absent], aggregation_type: max}
"#,
        vec![
            gauge(
                "a",
                vec![
                    double_point(1.0, vec![kv("env", s("prod")), kv("h", s("1"))]),
                    double_point(4.0, vec![kv("env", s("prod")), kv("h", s("2"))]),
                    double_point(100.0, vec![kv("env", s("test"))]),
                ],
            ),
            gauge(
                "b",
                vec![
                    int_point(3, vec![kv("h", s("1"))]),
                    int_point(9, vec![kv("h", s("2"))]),
                ],
            ),
        ],
    );
    let all: Vec<String> = out.iter().flat_map(points).collect();
    assert_eq!(all, vec!["a[env=prod]=2.5f", "b[]=9i"]);
}

#[test]
fn update_label_only_on_matching_labels() {
    let out = run(
        r#"
transforms:
  - include: m
    action: update
    experimental_match_labels: {env: prod}
    operations:
      - action: update_label
        label: state
        value_actions:
          - {value: idle, new_value: free}
"#,
        vec![gauge(
            "m",
            vec![
                int_point(1, vec![kv("env", s("prod")), kv("state", s("idle"))]),
                int_point(2, vec![kv("env", s("dev")), kv("state", s("idle"))]),
            ],
        )],
    );
    assert_eq!(
        points(&out[0]),
        vec!["m[env=prod,state=free]=1i", "m[env=dev,state=idle]=2i"]
    );
}

#[test]
fn every_problem_is_reported() {
    let err = parse(
        &yaml(
            r#"
transforms:
  - action: update
  - include: x
    action: insert
  - include: x
    action: update
    aggregation_type: sum
  - include: "("
    match_type: regexp
    action: updat
    submatch_case: title
    operations:
      - {action: add_label}
      - {action: scale_value}
      - {action: aggregate_labels, label_set: [a], aggregation_type: avg}
      - {action: rename}
  - include: x
    action: update
    bogus: 1
"#,
        ),
        "processors.metricstransform",
    )
    .expect_err("rejected");
    let got: Vec<String> = err.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            "processors.metricstransform.transforms[0].include: missing required field \"include\"",
            "processors.metricstransform.transforms[1].new_name: missing required field \"new_name\" while \"action\" is insert",
            "processors.metricstransform.transforms[2].aggregation_type: only used by action \"combine\"",
            "processors.metricstransform.transforms[3].include: invalid regex \"(\": regex parse error:\n    (\n    ^\nerror: unclosed group",
            "processors.metricstransform.transforms[3].action: \"updat\" is not a valid action (update, insert, combine, group) (did you mean \"update\"?)",
            "processors.metricstransform.transforms[3].submatch_case: \"title\" is not a valid submatch_case (lower, upper)",
            "processors.metricstransform.transforms[3].operations[0].new_label: missing required field \"new_label\" while \"action\" is \"add_label\"",
            "processors.metricstransform.transforms[3].operations[0].new_value: missing required field \"new_value\" while \"action\" is \"add_label\"",
            "processors.metricstransform.transforms[3].operations[1].experimental_scale: missing required field \"experimental_scale\" while \"action\" is \"scale_value\"",
            "processors.metricstransform.transforms[3].operations[2].aggregation_type: \"avg\" is not a valid aggregation_type (sum, mean, min, max)",
            "processors.metricstransform.transforms[3].operations[3].action: \"rename\" is not a valid operation action (add_label, update_label, delete_label_value, toggle_scalar_data_type, scale_value, aggregate_labels, aggregate_label_values)",
            "processors.metricstransform.transforms[4].bogus: unknown field `bogus`, expected one of `include`, `metric_name`, `match_type`, `experimental_match_labels`, `action`, `new_name`, `group_resource_labels`, `aggregation_type`, `submatch_case`, `operations`",
        ]
    );
}

/// The Collector's `combine` test cases (metrics_transform_processor_testcases_test.go:
/// combine, combine_single_match, combine_aggregate, combine_with_operations and the
/// combine_error_* cases), every point with start time 1 and time 1.
#[test]
fn combine_merges_matching_metrics_as_the_collector() {
    let at = |mut p: weir_api::otlp::metrics::v1::NumberDataPoint| {
        p.start_time_unix_nano = 1;
        p.time_unix_nano = 1;
        p
    };
    let g = |name: &str, v: i64| gauge(name, vec![at(int_point(v, vec![]))]);
    let three = || vec![g("Metric1", 1), g("metric2", 2), g("metric3", 3)];
    let names = |ms: &[Metric]| ms.iter().flat_map(points).collect::<Vec<_>>();

    let out = run(
        r#"
transforms:
  - include: ^([mM]etric)(?P<namedsubmatch>[12])$
    match_type: regexp
    action: combine
    new_name: new
    submatch_case: lower
"#,
        three(),
    );
    assert_eq!(
        names(&out),
        vec![
            "metric3[]=3i",
            "new[$1=metric,namedsubmatch=1]=1i",
            "new[$1=metric,namedsubmatch=2]=2i"
        ]
    );

    let out = run(
        r#"
transforms:
  - include: ^([mM]etric)(?P<namedsubmatch>[1])$
    match_type: regexp
    action: combine
    new_name: new
    submatch_case: upper
"#,
        three(),
    );
    assert_eq!(
        names(&out),
        vec![
            "metric2[]=2i",
            "metric3[]=3i",
            "new[$1=METRIC,namedsubmatch=1]=1i"
        ]
    );

    let sum_of = |cfg: &str| {
        let ms = vec![g("metric1", 1), g("metric2", 2), g("metric3", 3)];
        names(&run(cfg, ms))
    };
    assert_eq!(
        sum_of(
            r#"
transforms:
  - {include: '^metric[12]$', match_type: regexp, action: combine, new_name: new, aggregation_type: sum}
"#
        ),
        vec!["metric3[]=3i", "new[]=3i"]
    );
    assert_eq!(
        sum_of(
            r#"
transforms:
  - include: ^(metric)(?P<namedsubmatch>[12])$
    match_type: regexp
    action: combine
    new_name: new
    operations:
      - {action: add_label, new_label: new_label, new_value: new_label_value}
      - {action: aggregate_labels, label_set: [$1, new_label], aggregation_type: sum}
"#
        ),
        vec![
            "metric3[]=3i",
            "new[$1=metric,new_label=new_label_value]=3i"
        ]
    );

    // Metrics that differ in type, unit or label keys are left as they are.
    let cfg = r#"
transforms:
  - {include: '^metric[12]$', match_type: regexp, action: combine, new_name: new, aggregation_type: sum}
"#;
    let mut s2 = sum("metric2", vec![at(int_point(2, vec![]))]);
    s2.unit = String::new();
    let mut u1 = g("metric1", 1);
    u1.unit = "s".into();
    let mut u2 = g("metric2", 2);
    u2.unit = "ms".into();
    let l = |name: &str, v: i64, keys: &[&str]| {
        gauge(
            name,
            vec![at(int_point(
                v,
                keys.iter().map(|k| kv(k, s("1"))).collect(),
            ))],
        )
    };
    for input in [
        vec![g("metric1", 1), s2, g("metric3", 3)],
        vec![u1, u2, g("metric3", 3)],
        vec![
            l("metric1", 1, &["a", "b"]),
            l("metric2", 2, &["a", "b", "c"]),
            g("metric3", 3),
        ],
        vec![
            l("metric1", 1, &["a", "b"]),
            l("metric2", 2, &["a", "c"]),
            g("metric3", 3),
        ],
    ] {
        let before = names(&input);
        assert_eq!(names(&run(cfg, input)), before);
    }

    // The other aggregation types, on points of equal labels and times.
    let agg = |ty: &str, vals: &[i64]| {
        let ms: Vec<Metric> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| g(&format!("m{i}"), *v))
            .collect();
        let cfg = format!(
            "transforms:\n  - {{include: '^m[0-9]$', match_type: regexp, action: combine, new_name: all, aggregation_type: {ty}}}\n"
        );
        names(&run(&cfg, ms))
    };
    assert_eq!(agg("median", &[1, 5, 3]), vec!["all[]=3i"]);
    assert_eq!(agg("median", &[1, 5, 3, 8]), vec!["all[]=4i"]);
    assert_eq!(agg("count", &[1, 5, 3]), vec!["all[]=3i"]);
    assert_eq!(agg("mean", &[1, 5, 4]), vec!["all[]=3i"]);
    assert_eq!(agg("max", &[1, 5, 4]), vec!["all[]=5i"]);
    assert_eq!(agg("min", &[2, 5, 4]), vec!["all[]=2i"]);
    // Unset: the points stay apart only by labels and time; the first point wins.
    assert_eq!(
        names(&run(
            "transforms:\n  - {include: '^m[0-9]$', match_type: regexp, action: combine, new_name: all}\n",
            vec![g("m1", 7), g("m2", 9)]
        )),
        vec!["all[]=7i"]
    );
}

/// `group` with the Collector's testdata/operation_group cases: matching metrics move to a
/// new resource (a copy of theirs plus `group_resource_labels`) with a copy of their scope;
/// a scope and a resource left empty go. A group that matches nothing still adds its
/// (empty) resource, as the Collector does.
#[test]
fn group_moves_metrics_to_a_labelled_resource() {
    let shape = |cfg: &str, resource: Vec<weir_api::otlp::common::v1::KeyValue>, names: &[&str]| {
        let p = MetricsTransformProcessor::from_config(&yaml(cfg), "processors.metricstransform")
            .expect("valid");
        let ms = names.iter().map(|n| gauge(n, vec![])).collect();
        let mut batch = metrics_batch(vec![(resource, "lib", ms)]);
        p.process(&mut batch).expect("processes");
        let Payload::Metrics(req) = batch.payload() else {
            panic!()
        };
        req.resource_metrics
            .iter()
            .map(|rm| {
                let mut attrs: Vec<String> = rm
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .map(|kv| {
                        format!(
                            "{}={}",
                            kv.key,
                            weir_filter::ottl::value::any_as_string(kv.value.as_ref())
                        )
                    })
                    .collect();
                attrs.sort();
                let scopes: Vec<String> = rm
                    .scope_metrics
                    .iter()
                    .map(|sm| {
                        let names: Vec<&str> = sm.metrics.iter().map(|m| m.name.as_str()).collect();
                        format!(
                            "{}:{}",
                            sm.scope.as_ref().map_or("", |s| s.name.as_str()),
                            names.join(",")
                        )
                    })
                    .collect();
                format!("{} | {}", attrs.join(","), scopes.join(";"))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(
            r#"
transforms:
  - include: foo/metric
    action: group
    group_resource_labels: {resource.type: foo}
"#,
            vec![kv("original", s("label"))],
            &["foo/metric", "bar/metric"]
        ),
        vec![
            "original=label | lib:bar/metric",
            "original=label,resource.type=foo | lib:foo/metric"
        ]
    );
    assert_eq!(
        shape(
            r#"
transforms:
  - include: ^container.(.*)$
    match_type: regexp
    action: group
    group_resource_labels: {resource.type: container}
  - include: ^k8s.pod.(.*)$
    match_type: regexp
    action: group
    group_resource_labels: {resource.type: k8s.pod}
"#,
            vec![],
            &[
                "container.cpu.utilization",
                "container.memory.usage",
                "k8s.pod.cpu.utilization",
                "k8s.pod.memory.usage"
            ]
        ),
        vec![
            "resource.type=container | lib:container.cpu.utilization,container.memory.usage",
            "resource.type=k8s.pod | lib:k8s.pod.cpu.utilization,k8s.pod.memory.usage"
        ]
    );
    assert_eq!(
        shape(
            "transforms:\n  - {include: nothing, action: group, group_resource_labels: {g: x}}\n",
            vec![],
            &["a"]
        ),
        vec![" | lib:a", "g=x | lib:"]
    );
    let err = parse(
        &yaml("transforms:\n  - {include: x, action: group}\n"),
        "processors.metricstransform",
    )
    .expect_err("rejected");
    assert_eq!(
        err.0[0].to_string(),
        "processors.metricstransform.transforms[0].group_resource_labels: missing required field \"group_resource_labels\" while \"action\" is group"
    );
}

/// `combine` with `experimental_match_labels`: a matched metric's points that do not match
/// are dropped with it, as the Collector's extractAndRemoveMatchedMetrics does.
#[test]
fn combine_drops_the_unmatched_points_of_matched_metrics() {
    let p = |v: i64, a: &str| {
        let mut p = int_point(v, vec![kv("a", s(a))]);
        p.time_unix_nano = 1;
        p
    };
    let out = run(
        r#"
transforms:
  - include: ^m[12]$
    match_type: regexp
    experimental_match_labels: {a: keep}
    action: combine
    new_name: all
    aggregation_type: sum
"#,
        vec![
            gauge("m1", vec![p(1, "keep"), p(2, "drop")]),
            gauge("m2", vec![p(3, "keep")]),
            gauge("m3", vec![p(4, "drop")]),
        ],
    );
    let got: Vec<String> = out.iter().flat_map(points).collect();
    assert_eq!(got, vec!["m3[a=drop]=4i", "all[a=keep]=4i"]);
}
