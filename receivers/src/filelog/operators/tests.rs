#![allow(clippy::unwrap_used)]
//! Operators on Collector-like inputs, one operator (or a small chain) at a time.

use super::*;

fn pipeline(yaml_json: serde_json::Value) -> Pipeline {
    let mut errors = ConfigErrors::default();
    let p = build(
        yaml_json.as_array().unwrap(),
        "receivers.filelog",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    p
}

fn config_error(yaml_json: serde_json::Value) -> String {
    let mut errors = ConfigErrors::default();
    build(
        yaml_json.as_array().unwrap(),
        "receivers.filelog",
        &mut errors,
    );
    assert!(!errors.is_empty());
    errors
        .0
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn line(body: &str) -> Entry {
    let mut e = Entry::new(Val::Str(body.into()));
    e.attributes
        .insert("log.file.name".into(), Val::Str("app.log".into()));
    e
}

fn run(p: &mut Pipeline, entries: Vec<Entry>) -> Vec<Entry> {
    let mut out = Vec::new();
    p.process(entries, &mut out);
    out
}

fn s(v: &str) -> Val {
    Val::Str(v.into())
}

/// 2024-04-13T07:59:37Z
const T0: u64 = 1_712_995_177_000_000_000;

#[test]
fn json_parser_with_timestamp_and_severity_blocks() {
    let mut p = pipeline(serde_json::json!([{
        "type": "json_parser",
        "timestamp": {"parse_from": "attributes.ts", "layout": "%Y-%m-%dT%H:%M:%S.%LZ"},
        "severity": {"parse_from": "attributes.level"}
    }]));
    let out = run(
        &mut p,
        vec![line(
            r#"{"ts":"2024-04-13T07:59:37.250Z","level":"WARNING","msg":"disk 91%","code":7,"ctx":{"a":true}}"#,
        )],
    );
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(e.timestamp, T0 + 250_000_000);
    assert_eq!(e.severity, 13);
    assert_eq!(e.severity_text, "WARNING");
    assert_eq!(e.attributes["msg"], s("disk 91%"));
    // Numbers are doubles unless parse_ints, as in the Collector.
    assert_eq!(e.attributes["code"], Val::Double(7.0));
    assert_eq!(
        e.attributes["ctx"],
        Val::Map([("a".to_string(), Val::Bool(true))].into())
    );
    assert_eq!(e.attributes["log.file.name"], s("app.log"));
    // The body stays as read.
    assert!(matches!(&e.body, Val::Str(b) if b.starts_with("{\"ts\"")));
}

#[test]
fn json_parser_parse_to_body_and_parse_ints() {
    let mut p = pipeline(serde_json::json!([
        {"type": "json_parser", "parse_to": "body", "parse_ints": true}
    ]));
    let out = run(&mut p, vec![line(r#"{"n":3,"m":"x"}"#)]);
    assert_eq!(
        out[0].body,
        Val::Map([("n".into(), Val::Int(3)), ("m".into(), s("x"))].into())
    );
}

#[test]
fn bad_lines_follow_on_error_and_count() {
    for (on_error, passed) in [
        ("send", 3),
        ("send_quiet", 3),
        ("drop", 2),
        ("drop_quiet", 2),
    ] {
        let mut p = pipeline(serde_json::json!([
            {"type": "json_parser", "id": "j", "on_error": on_error}
        ]));
        let t = weir_api::Telemetry::new();
        p.attach(&t, "filelog");
        let out = run(
            &mut p,
            vec![line(r#"{"a":"1"}"#), line("not json"), line(r#"{"a":"2"}"#)],
        );
        assert_eq!(out.len(), passed, "{on_error}");
        let bodies: Vec<&Val> = out.iter().map(|e| &e.body).collect();
        if passed == 3 {
            // The bad entry goes on unchanged, in its place.
            assert_eq!(bodies[1], &s("not json"));
            assert!(!out[1].attributes.contains_key("a"));
        }
        assert_eq!(p.ops[0].errors.as_ref().unwrap().get(), 1, "{on_error}");
        // The log is rate-limited: a second failure within 10 s is only counted.
        run(&mut p, vec![line("nope")]);
        assert_eq!(p.ops[0].errors.as_ref().unwrap().get(), 2);
        if on_error == "send" || on_error == "drop" {
            assert_eq!(p.ops[0].report.suppressed, 1);
        }
    }
}

#[test]
fn regex_parser_named_groups_severity_and_time() {
    let mut p = pipeline(serde_json::json!([{
        "type": "regex_parser",
        "regex": r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?P<sev>[A-Z]+) (?P<msg>.*?)(?: user=(?P<user>\w+))?$",
        "timestamp": {"parse_from": "attributes.time", "layout": "%Y-%m-%d %H:%M:%S", "location": "UTC"},
        "severity": {"parse_from": "attributes.sev", "mapping": {"fatal": "CRIT", "info": ["NOTE", 200]}}
    }]));
    let out = run(
        &mut p,
        vec![
            line("2024-04-13 07:59:37 CRIT kernel panic"),
            line("2024-04-13 07:59:38 NOTE login user=bob"),
            line("garbage"),
        ],
    );
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].timestamp, T0);
    assert_eq!(out[0].severity, 21);
    assert_eq!(out[0].severity_text, "CRIT");
    assert_eq!(out[0].attributes["msg"], s("kernel panic"));
    assert_eq!(out[0].attributes["user"], s(""));
    assert_eq!(out[1].severity, 9);
    assert_eq!(out[1].attributes["user"], s("bob"));
    assert_eq!(out[1].timestamp, T0 + 1_000_000_000);
    // No match: sent on unchanged (on_error send).
    assert_eq!(out[2].timestamp, 0);
    assert_eq!(out[2].attributes.len(), 1);
}

#[test]
fn key_value_parser_with_default_and_custom_delimiters() {
    let mut p = pipeline(serde_json::json!([{"type": "key_value_parser"}]));
    let out = run(&mut p, vec![line(r#"name=stanza msg="hello world" n=1"#)]);
    assert_eq!(out[0].attributes["name"], s("stanza"));
    assert_eq!(out[0].attributes["msg"], s("hello world"));
    assert_eq!(out[0].attributes["n"], s("1"));
    let mut p = pipeline(serde_json::json!([{
        "type": "key_value_parser", "delimiter": ":", "pair_delimiter": "|", "parse_to": "attributes.kv"
    }]));
    let out = run(&mut p, vec![line("a:1|b: two |c:3")]);
    assert_eq!(
        out[0].attributes["kv"],
        Val::Map(
            [
                ("a".into(), s("1")),
                ("b".into(), s("two")),
                ("c".into(), s("3"))
            ]
            .into()
        )
    );
    let mut p = pipeline(serde_json::json!([{"type": "key_value_parser", "on_error": "drop"}]));
    assert!(run(&mut p, vec![line("a=1 broken")]).is_empty());
}

#[test]
fn severity_parser_presets_ranges_and_overwrite_text() {
    let mut p = pipeline(serde_json::json!([
        {"type": "json_parser", "parse_ints": true},
        {"type": "severity_parser", "parse_from": "attributes.status", "preset": "none",
         "mapping": {"info": "2xx", "warn": {"min": 400, "max": 404}, "error": ["5xx"]}, "overwrite_text": true}
    ]));
    let out = run(
        &mut p,
        vec![
            line(r#"{"status":204}"#),
            line(r#"{"status":403}"#),
            line(r#"{"status":503}"#),
            line(r#"{"status":450}"#),
        ],
    );
    let got: Vec<(i32, &str)> = out
        .iter()
        .map(|e| (e.severity, e.severity_text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(9, "INFO"), (13, "WARN"), (17, "ERROR"), (0, "DEFAULT")]
    );
    // Default preset: names and numbers, case-insensitive; the text is kept as read.
    let mut p = pipeline(serde_json::json!([
        {"type": "severity_parser", "parse_from": "body"}
    ]));
    let out = run(
        &mut p,
        vec![line("Err"), line("info3"), line("22"), line("weird")],
    );
    let got: Vec<(i32, &str)> = out
        .iter()
        .map(|e| (e.severity, e.severity_text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(17, "Err"), (11, "info3"), (22, "22"), (0, "weird")]
    );
    assert_eq!(ops::severity_name_for_tests(14), "WARN2");
}

#[test]
fn time_parser_gotime_epoch_and_location() {
    let mut p = pipeline(serde_json::json!([
        {"type": "time_parser", "parse_from": "body", "layout_type": "gotime", "layout": "Jan 2 15:04:05 2006", "location": "Europe/Berlin"}
    ]));
    // April: CEST, +02:00.
    let out = run(&mut p, vec![line("Apr 13 09:59:37 2024")]);
    assert_eq!(out[0].timestamp, T0);
    let mut p = pipeline(serde_json::json!([
        {"type": "time_parser", "parse_from": "body", "layout_type": "epoch", "layout": "s.ms"}
    ]));
    let out = run(&mut p, vec![line("1712995177.5")]);
    assert_eq!(out[0].timestamp, T0 + 500_000_000);
}

#[test]
fn move_copy_add_remove_flatten_retain() {
    let mut p = pipeline(serde_json::json!([
        {"type": "json_parser", "parse_to": "body"},
        {"type": "move", "from": "body.message", "to": "attributes[\"msg.text\"]"},
        {"type": "copy", "from": "body.host", "to": "resource[\"host.name\"]"},
        {"type": "add", "field": "attributes.team", "value": "core"},
        {"type": "add", "id": "add2", "field": "attributes.where", "value": "EXPR(resource[\"host.name\"] + \"/\" + body.app)"},
        {"type": "add", "id": "add3", "field": "body.extra", "value": {"k": 1}},
        {"type": "flatten", "field": "body.nested"},
        {"type": "remove", "field": "body.drop_me"},
        {"type": "retain", "fields": ["body.app", "body.deep", "body.extra", "attributes[\"msg.text\"]", "attributes.team", "attributes.where"]}
    ]));
    let out = run(
        &mut p,
        vec![line(
            r#"{"message":"hi","host":"h1","app":"api","nested":{"deep":"x"},"drop_me":1,"other":2}"#,
        )],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let e = &out[0];
    assert_eq!(
        e.body,
        Val::Map(
            [
                ("app".into(), s("api")),
                ("deep".into(), s("x")),
                ("extra".into(), Val::Map([("k".into(), Val::Int(1))].into())),
            ]
            .into()
        )
    );
    assert_eq!(
        e.attributes,
        [
            ("msg.text".to_string(), s("hi")),
            ("team".to_string(), s("core")),
            ("where".to_string(), s("h1/api")),
        ]
        .into()
    );
    assert_eq!(e.resource, [("host.name".to_string(), s("h1"))].into());
    // move of a missing field: an error, sent on per on_error.
    let mut p = pipeline(serde_json::json!([
        {"type": "move", "from": "attributes.nope", "to": "attributes.x", "on_error": "drop_quiet"}
    ]));
    assert!(run(&mut p, vec![line("x")]).is_empty());
}

#[test]
fn router_routes_by_expression_with_default() {
    let mut p = pipeline(serde_json::json!([
        {"type": "router", "routes": [
            {"expr": "body matches \"^\\\\{\"", "output": "json"},
            {"expr": "body startsWith 'ERR' or attributes.kind == 'err'", "output": "err", "attributes": {"routed": "err"}}
        ], "default": "plain"},
        {"type": "json_parser", "id": "json", "output": "done"},
        {"type": "add", "id": "err", "field": "attributes.sev", "value": "error", "output": "done"},
        {"type": "add", "id": "plain", "field": "attributes.sev", "value": "plain", "output": "done"},
        {"type": "noop", "id": "done"}
    ]));
    let out = run(
        &mut p,
        vec![line(r#"{"a":"b"}"#), line("ERR x"), line("hello")],
    );
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].attributes["a"], s("b"));
    assert_eq!(out[1].attributes["sev"], s("error"));
    assert_eq!(out[1].attributes["routed"], s("err"));
    assert_eq!(out[2].attributes["sev"], s("plain"));
    // No default: unmatched entries are dropped.
    let mut p = pipeline(serde_json::json!([
        {"type": "router", "routes": [{"expr": "body == 'keep'", "output": "n"}]},
        {"type": "noop", "id": "n"}
    ]));
    assert_eq!(run(&mut p, vec![line("keep"), line("other")]).len(), 1);
}

#[test]
fn filter_drops_matching_entries_and_if_skips_operators() {
    let mut p = pipeline(serde_json::json!([
        {"type": "filter", "expr": "body contains 'health'"},
        {"type": "add", "field": "attributes.x", "value": "y", "if": "body endsWith '!'"}
    ]));
    let out = run(
        &mut p,
        vec![line("GET /health"), line("boom!"), line("calm")],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].attributes.get("x"), Some(&s("y")));
    assert_eq!(out[1].attributes.get("x"), None);
    let mut p = pipeline(serde_json::json!([
        {"type": "filter", "expr": "true", "drop_ratio": 0.5}
    ]));
    let kept = run(&mut p, (0..10_000).map(|i| line(&i.to_string())).collect()).len();
    assert!((4_000..6_000).contains(&kept), "{kept}");
}

#[test]
fn recombine_first_and_last_entry_modes() {
    let mut p = pipeline(serde_json::json!([{
        "type": "recombine", "combine_field": "body", "is_first_entry": "body matches \"^\\\\d{4}-\"",
        "source_identifier": "attributes[\"log.file.name\"]"
    }]));
    let out = run(
        &mut p,
        vec![
            line("2024-01-01 start"),
            line("  at a"),
            line("  at b"),
            line("2024-01-01 next"),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, s("2024-01-01 start\n  at a\n  at b"));
    let mut rest = Vec::new();
    p.flush_due(true, &mut rest);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].body, s("2024-01-01 next"));

    let mut p = pipeline(serde_json::json!([{
        "type": "recombine", "combine_field": "body", "is_last_entry": "body endsWith '.'",
        "combine_with": " ", "max_batch_size": 3
    }]));
    let out = run(
        &mut p,
        vec![
            line("a"),
            line("b."),
            line("c"),
            line("d"),
            line("e"),
            line("f."),
        ],
    );
    let bodies: Vec<&Val> = out.iter().map(|e| &e.body).collect();
    assert_eq!(bodies, vec![&s("a b."), &s("c d e"), &s("f.")]);
}

fn pod_entry(raw: &str) -> Entry {
    let mut e = line(raw);
    e.attributes.insert(
        "log.file.path".into(),
        s("/var/log/pods/prod_web-5d8f_7d3f4a9e-0b8c-4c2d-9a57-1f2e3d4c5b6a/nginx/2.log"),
    );
    e
}

fn k8s(e: &Entry) {
    assert_eq!(
        e.resource,
        [
            ("k8s.container.name".to_string(), s("nginx")),
            ("k8s.container.restart_count".to_string(), s("2")),
            ("k8s.namespace.name".to_string(), s("prod")),
            ("k8s.pod.name".to_string(), s("web-5d8f")),
            (
                "k8s.pod.uid".to_string(),
                s("7d3f4a9e-0b8c-4c2d-9a57-1f2e3d4c5b6a")
            ),
        ]
        .into()
    );
}

#[test]
fn container_docker_crio_containerd_with_partial_lines() {
    let mut p = pipeline(serde_json::json!([{"type": "container"}]));
    let out = run(
        &mut p,
        vec![
            pod_entry(
                r#"{"log":"hello docker\n","stream":"stdout","time":"2024-04-13T07:59:37.123456789Z"}"#,
            ),
            pod_entry("2024-04-13T07:59:37.5-02:00 stderr P part one "),
            pod_entry("2024-04-13T07:59:38.5-02:00 stderr F part two"),
            pod_entry("2024-04-13T07:59:37.000000001Z stdout F containerd line"),
        ],
    );
    assert_eq!(out.len(), 3, "{out:?}");
    let d = &out[0];
    assert_eq!(d.body, s("hello docker\n"));
    assert_eq!(d.timestamp, T0 + 123_456_789);
    assert_eq!(
        d.attributes,
        [
            ("log.file.name".to_string(), s("app.log")),
            (
                "log.file.path".to_string(),
                s("/var/log/pods/prod_web-5d8f_7d3f4a9e-0b8c-4c2d-9a57-1f2e3d4c5b6a/nginx/2.log")
            ),
            ("log.iostream".to_string(), s("stdout")),
        ]
        .into()
    );
    k8s(d);
    // cri-o: the partial line and its end are one record; time and attributes of the first.
    let c = &out[1];
    assert_eq!(c.body, s("part one part two"));
    assert_eq!(c.timestamp, T0 + 2 * 3_600_000_000_000 + 500_000_000);
    assert_eq!(c.attributes["log.iostream"], s("stderr"));
    assert_eq!(c.attributes["logtag"], s("P"));
    assert!(!c.attributes.contains_key("time"));
    k8s(c);
    let t = &out[2];
    assert_eq!(t.body, s("containerd line"));
    assert_eq!(t.timestamp, T0 + 1);
    assert_eq!(t.attributes["logtag"], s("F"));
    k8s(t);
}

#[test]
fn container_without_path_or_with_a_bad_line_is_an_error() {
    let mut p = pipeline(serde_json::json!([{"type": "container", "on_error": "drop"}]));
    assert!(run(
        &mut p,
        vec![line(
            r#"{"log":"x","stream":"stdout","time":"2024-04-13T07:59:37Z"}"#
        )]
    )
    .is_empty());
    assert!(run(&mut p, vec![pod_entry("plain text")]).is_empty());
    let mut p = pipeline(
        serde_json::json!([{"type": "container", "add_metadata_from_filepath": false, "format": "docker"}]),
    );
    let out = run(
        &mut p,
        vec![line(
            r#"{"log":"x","stream":"stdout","time":"2024-04-13T07:59:37Z"}"#,
        )],
    );
    assert_eq!(out[0].body, s("x"));
    assert!(out[0].resource.is_empty());
}

#[test]
fn fields_parse_the_collectors_syntax() {
    assert_eq!(
        Field::parse(r#"attributes["log.file.path"]"#, false).unwrap(),
        Field::attr("log.file.path")
    );
    assert_eq!(
        Field::parse("body.a.b", false).unwrap().keys,
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(
        Field::parse(r#"resource['k8s.pod.name'].x"#, false)
            .unwrap()
            .keys,
        vec!["k8s.pod.name".to_string(), "x".to_string()]
    );
    assert!(Field::parse("attributes", false).is_err());
    assert!(Field::parse("attributes", true).is_ok());
    assert!(Field::parse("message", false).is_err());
    assert!(Field::parse("attributes[log]", false).is_err());
}

#[test]
fn config_errors_name_the_operator_and_the_field() {
    let t = config_error(serde_json::json!([{"type": "csv_parser", "id": "c"}]));
    assert!(t.contains(r#"receivers.filelog.operators[0] (id "c").type: operator type "csv_parser" is not supported"#), "{t}");
    let t = config_error(serde_json::json!([{"type": "json_parser", "parse_form": "body"}]));
    assert!(
        t.contains(
            r#"receivers.filelog.operators[0] (id "json_parser").parse_form: unknown field"#
        ),
        "{t}"
    );
    let t = config_error(
        serde_json::json!([{"type": "router", "id": "r", "routes": [{"expr": "type(body) == 'string'", "output": "x"}]}]),
    );
    assert!(t.contains(r#"operators[0] (id "r").routes[0].expr: expression "type(body) == 'string'" is not supported"#), "{t}");
    let t = config_error(
        serde_json::json!([{"type": "move", "from": "body", "to": "attributes.x", "output": "nowhere"}]),
    );
    assert!(
        t.contains(r#".output: no operator has id "nowhere""#),
        "{t}"
    );
    let t = config_error(serde_json::json!([{"type": "json_parser", "on_error": "ignore"}]));
    assert!(
        t.contains(r#".on_error: "ignore" is not one of send, send_quiet, drop, drop_quiet"#),
        "{t}"
    );
    let t = config_error(serde_json::json!([
        {"type": "noop", "id": "a", "output": "b"}, {"type": "noop", "id": "b", "output": "a"}
    ]));
    assert!(t.contains("the outputs form a loop"), "{t}");
    let t = config_error(
        serde_json::json!([{"type": "time_parser", "parse_from": "body", "layout": "%Q"}]),
    );
    assert!(
        t.contains(".layout: layout \"%Q\": directive %Q is not supported"),
        "{t}"
    );
    let t = config_error(
        serde_json::json!([{"type": "add", "field": "attributes.x", "value": "EXPR(env('X'))"}]),
    );
    assert!(t.contains(".value: not supported: EXPR(env('X'))"), "{t}");
    let t = config_error(serde_json::json!([{"type": "recombine", "combine_field": "body"}]));
    assert!(
        t.contains("one of is_first_entry and is_last_entry must be set"),
        "{t}"
    );
}

#[test]
fn container_drops_cri_lines_it_fails_on_after_parsing_whatever_on_error_says() {
    // As the Collector does: a docker line with a bad path goes on (on_error: send), a
    // cri-o/containerd line fails after it was parsed and is dropped; both are counted.
    let mut p = pipeline(serde_json::json!([{"type": "container", "id": "c"}]));
    let t = weir_api::Telemetry::new();
    p.attach(&t, "filelog");
    let mut docker = line(r#"{"log":"x","stream":"stdout","time":"2024-04-13T07:59:37Z"}"#);
    docker
        .attributes
        .insert("log.file.path".into(), s("/var/log/other/a.log"));
    let mut cri = line("2024-04-13T07:59:37Z stdout F y");
    cri.attributes
        .insert("log.file.path".into(), s("/var/log/other/b.log"));
    let out = run(&mut p, vec![docker, cri]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, s("x"));
    assert_eq!(p.ops[0].errors.as_ref().unwrap().get(), 2);
}

#[test]
fn recombine_reports_where_held_entries_start_and_hands_it_on() {
    let mut p = pipeline(serde_json::json!([{
        "type": "recombine", "combine_field": "body", "is_first_entry": "body matches \"^[0-9]{4}-\""
    }]));
    let at = |body: &str, file: u64, offset: u64| {
        let mut e = line(body);
        e.origin = Origin::One((file, offset));
        e
    };
    let held = |p: &Pipeline| {
        let mut v = Vec::new();
        p.held(&mut |s| v.push(s));
        v.sort();
        v
    };
    let out = run(
        &mut p,
        vec![
            at("2024-01 a", 1, 0),
            at("  more", 1, 10),
            at("2024-02 b", 1, 17),
            at("  more", 1, 27),
        ],
    );
    // The first entry went out with where its lines start; the second is held from 17.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].origin, Origin::One((1, 0)));
    assert_eq!(held(&p), vec![(1, 17)]);
    // Lines of another file joining the same (default) source: the earliest per file.
    let out = run(&mut p, vec![at("  other", 2, 5), at("  other", 2, 12)]);
    assert!(out.is_empty());
    assert_eq!(held(&p), vec![(1, 17), (2, 5)]);
    let mut rest = Vec::new();
    p.flush_due(true, &mut rest);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].origin, Origin::Many(vec![(1, 17), (2, 5)]));
    assert!(held(&p).is_empty());
}
