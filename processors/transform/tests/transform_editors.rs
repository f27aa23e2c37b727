//! The `transform` processor's editors and converters, each changing exactly what it
//! should: map editors, string editors, `split`, `ParseJSON`, `append`, `delete_index`,
//! `flatten`.

mod common;

use common::transform::*;
use common::*;
use weir_api::otlp::common::v1::{any_value, KeyValue};
use weir_api::{Payload, Processor};

#[test]
fn map_editors() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - delete_key(attributes, "gone")
      - delete_matching_keys(attributes, "^tmp_")
      - truncate_all(attributes, 3)
      - replace_all_patterns(attributes, "value", "\\d+", "N")
      - replace_all_patterns(attributes, "key", "^old\\.", "new.")
      - replace_all_matches(attributes, "secret-*", "***")
      - limit(attributes, 4, ["z"])
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log(
            "b",
            9,
            vec![
                kv("a", s("abcdef")),
                kv("gone", s("x")),
                kv("tmp_1", s("x")),
                kv("n", s("12")),
                kv("old.k", s("v")),
                kv("p", s("secret-1")),
                kv("q", i(5)),
                kv("z", s("zz")),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    // truncate_all cut "abcdef" to "abc" and "secret-1" to "sec" (so it no longer
    // matches the glob); "12" became "N"; limit kept the priority key z and the first 3.
    assert_eq!(logs(&batch)[0].2, vec!["a=abc", "n=N", "new.k=v", "z=zz"]);
}

#[test]
fn keep_matching_keys_merge_maps_and_nested_set() {
    let p = transform(
        r#"
trace_statements:
  - context: span
    statements:
      - keep_matching_keys(attributes, "^(http|user)\\.")
      - merge_maps(attributes, resource.attributes, "insert")
      - set(attributes["nested"]["inner"], "v")
      - set(attributes["http.method"], ToLowerCase(attributes["http.method"]))
"#,
    );
    let mut batch = traces_batch(vec![(
        vec![
            kv("service.name", s("svc")),
            kv("http.method", s("RESOURCE")),
        ],
        "lib",
        vec![span(
            "a",
            0,
            0,
            vec![
                kv("http.method", s("GET")),
                kv("user.id", s("u1")),
                kv("other", s("x")),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        spans(&batch)[0].1,
        vec![
            "http.method=get",
            "nested={inner=v}",
            "service.name=svc",
            "user.id=u1"
        ]
    );
}

#[test]
fn string_editors_and_converters_with_where() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - replace_pattern(body, "password=([^ ]+)", "password=***")
      - replace_match(attributes["path"], "/users/*", "/users/{id}")
      - set(attributes["hash"], SHA256(attributes["user"])) where attributes["user"] != nil
      - set(attributes["code"], Int(attributes["code"]))
      - set(attributes["ratio"], Double("0.25"))
      - set(attributes["joined"], Concat([attributes["user"], "x"], "-")) where IsMatch(body, "^login")
      - set(attributes["snake"], ConvertCase("HelloWorld", "snake"))
      - set(attributes["head"], Substring(body, 0, 5))
      - set(severity_text, "WARN") where HasPrefix(body, "login")
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![
            log(
                "login ok password=hunter2 user=a",
                9,
                vec![
                    kv("user", s("foo")),
                    kv("path", s("/users/42")),
                    kv("code", s("404")),
                ],
            ),
            log("other", 9, vec![kv("path", s("/items/1"))]),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let got = logs(&batch);
    assert_eq!(got[0].0, "login ok password=*** user=a");
    assert_eq!(got[0].1, "WARN");
    assert_eq!(
        got[0].2,
        vec![
            "code=404i",
            "hash=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "head=login",
            "joined=foo-x",
            "path=/users/{id}",
            "ratio=0.25f",
            "snake=hello_world",
            "user=foo",
        ]
    );
    assert_eq!(got[1].0, "other");
    assert_eq!(got[1].1, "INFO");
    // Int(nil) is nil and set(nil) does nothing; no hash, no join for the second record.
    assert_eq!(
        got[1].2,
        vec![
            "head=other",
            "path=/items/1",
            "ratio=0.25f",
            "snake=hello_world"
        ]
    );
}

#[test]
fn split_gives_a_list_of_strings() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - set(attributes["parts"], Split(body, ","))
      - set(attributes["chars"], Split(attributes["w"], ""))
      - set(attributes["is_list"], true) where IsList(Split(body, ","))
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log("a,b,,c", 9, vec![kv("w", s("hé"))])],
    )]);
    p.process(&mut batch).expect("processes");
    let Payload::Logs(req) = batch.payload() else {
        panic!()
    };
    let attrs = &req.resource_logs[0].scope_logs[0].log_records[0].attributes;
    let strings = |k: &str| -> Vec<String> {
        let v = attrs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref());
        match v.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::ArrayValue(a)) => {
                a.values.iter().map(|x| show(Some(x))).collect()
            }
            other => panic!("{k}: {other:?}"),
        }
    };
    assert_eq!(strings("parts"), ["a", "b", "", "c"]);
    assert_eq!(strings("chars"), ["h", "é"]);
    assert!(attrs.iter().any(|kv| kv.key == "is_list"));
}

/// `ParseJSON` as in the Collector's transform README (`merge_maps(..., ParseJSON(body),
/// "upsert") where IsMatch(body, "^\\{")`): objects become maps, arrays lists, every number a
/// double, `null` an empty value; a body that is not JSON fails the statement.
#[test]
fn parse_json_gives_maps_and_lists() {
    let src = |mode: &str| {
        format!(
            r#"
error_mode: {mode}
log_statements:
  - context: log
    statements:
      - merge_maps(attributes, ParseJSON(body), "upsert") where IsMatch(body, "^\\{{")
      - set(attributes["list"], ParseJSON(attributes["arr"])) where attributes["arr"] != nil
      - set(attributes["map"], true) where IsMap(ParseJSON("{{}}"))
"#
        )
    };
    let p = transform(&src("propagate"));
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![
            log(
                r#"{"name":"checkout","count":3,"ok":true,"none":null,"nested":{"a":[1,"x",{"b":2.5}]}}"#,
                9,
                vec![kv("count", s("old")), kv("keep", s("k"))],
            ),
            log(
                "plain text",
                9,
                vec![kv("arr", s(r#"[1, "two", false, []]"#))],
            ),
        ],
    )]);
    p.process(&mut batch).expect("processes");
    let out = logs(&batch);
    assert_eq!(
        out[0].2,
        vec![
            "count=3f",
            "keep=k",
            "map=true",
            "name=checkout",
            "nested={a=[1f,x,{b=2.5f}]}",
            "none=None",
            "ok=true",
        ]
    );
    assert_eq!(
        out[1].2,
        vec![
            r#"arr=[1, "two", false, []]"#,
            "list=[1f,two,false,[]]",
            "map=true"
        ]
    );

    let bad = |body: &str| {
        let p = transform(&src("propagate"));
        let mut batch = logs_batch(vec![(vec![], "lib", vec![log(body, 9, vec![])])]);
        p.process(&mut batch).expect_err("fails").to_string()
    };
    assert_eq!(
        bad(r#"{"a": "#),
        "statement \"merge_maps(attributes, ParseJSON(body), \\\"upsert\\\") where IsMatch(body, \\\"^\\\\\\\\{\\\")\" failed: ParseJSON: EOF while parsing a value at line 1 column 6"
    );
    let p = transform(&src("propagate").replace("where IsMatch(body, \"^\\\\{\")", ""));
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("42", 9, vec![])])]);
    let err = p.process(&mut batch).expect_err("fails").to_string();
    assert!(
        err.ends_with("failed: ParseJSON: the document is a number, not an object or an array"),
        "{err}"
    );
    // With error_mode ignore the record goes on unchanged by the failed statement.
    let p = transform(&src("ignore"));
    let mut batch = logs_batch(vec![(vec![], "lib", vec![log("{oops", 9, vec![])])]);
    p.process(&mut batch).expect("ignored");
    assert_eq!(logs(&batch)[0].2, vec!["map=true"]);
}

/// `append` as the Collector's: a list target gets the values at its end, a scalar target
/// becomes a list holding it then the values, an absent target a list of the values; a map
/// target is an error.
#[test]
fn append_extends_lists_and_turns_scalars_into_lists() {
    let p = transform(
        r#"
log_statements:
  - context: log
    statements:
      - append(attributes["tags"], "prod")
      - append(attributes["one"], "b")
      - append(attributes["n"], 2, ["x", true, 1.5])
      - append(attributes["new"], attributes["absent"])
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log(
            "",
            9,
            vec![
                kv("tags", list(vec![s("a"), s("b")])),
                kv("one", s("a")),
                kv("n", i(1)),
            ],
        )],
    )]);
    p.process(&mut batch).expect("processes");
    assert_eq!(
        logs(&batch)[0].2,
        vec![
            "n=[1i,2i,x,true,1.5f]",
            "new=[None]",
            "one=[a,b]",
            "tags=[a,b,prod]"
        ]
    );

    let p = transform(
        r#"
log_statements:
  - context: log
    statements: ['append(attributes["m"], "x")']
"#,
    );
    let mut batch = logs_batch(vec![(
        vec![],
        "lib",
        vec![log("", 9, vec![kv("m", map(vec![kv("k", s("v"))]))])],
    )]);
    let err = p.process(&mut batch).expect_err("a map target fails");
    assert_eq!(
        err.to_string(),
        "statement \"append(attributes[\\\"m\\\"], \\\"x\\\")\" failed: append: unsupported type of target field: map"
    );
    assert_eq!(
        errors_of("log_statements: ['append(log.attributes[\"m\"])']"),
        vec!["processors.transform.log_statements[0]: append takes 2 to 3 arguments, got 1 in statement \"append(log.attributes[\\\"m\\\"])\""]
    );
}

/// `delete_index` as the Collector's: one item, a range [start, end), everything, and its
/// bounds errors in its words.
#[test]
fn delete_index_removes_items_and_checks_bounds() {
    let run = |stmt: &str| {
        let p = transform(&format!(
            "log_statements:\n  - context: log\n    statements: ['{stmt}']\n"
        ));
        let mut batch = logs_batch(vec![(
            vec![],
            "lib",
            vec![log(
                "",
                9,
                vec![kv("xs", list(vec![s("a"), s("b"), s("c"), s("d")]))],
            )],
        )]);
        match p.process(&mut batch) {
            Ok(()) => logs(&batch)[0].2.join(" "),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(run(r#"delete_index(attributes["xs"], 1)"#), "xs=[a,c,d]");
    assert_eq!(run(r#"delete_index(attributes["xs"], 1, 3)"#), "xs=[a,d]");
    assert_eq!(run(r#"delete_index(attributes["xs"], 0, 4)"#), "xs=[]");
    assert_eq!(
        run(r#"delete_index(attributes["xs"], 2, 2)"#),
        "xs=[a,b,c,d]"
    );
    assert!(run(r#"delete_index(attributes["xs"], 4)"#)
        .ends_with("failed: startIndex 4 out of bounds for slice of length 4"));
    assert!(run(r#"delete_index(attributes["xs"], 2, 1)"#)
        .ends_with("failed: endIndex 1 cannot be less than startIndex 2"));
    assert!(run(r#"delete_index(attributes["xs"], 1, 5)"#)
        .ends_with("failed: deletion range [1:5] out of bounds for slice of length 4"));
    assert!(run(r#"delete_index(attributes["nope"], 0)"#)
        .ends_with("failed: delete_index: the target is a nil, not a list"));
}

/// `flatten` with the shapes of the Collector's func_flatten tests: nested maps, lists,
/// a prefix, a depth limit (lists count as a level), and resolveConflicts.
#[test]
fn flatten_moves_nested_values_to_dotted_keys() {
    let run = |stmt: &str, attrs: Vec<KeyValue>| {
        let p = transform(&format!(
            "log_statements:\n  - context: log\n    statements: ['{stmt}']\n"
        ));
        let mut batch = logs_batch(vec![(vec![], "lib", vec![log("", 9, attrs)])]);
        p.process(&mut batch).expect("processes");
        let Payload::Logs(req) = batch.payload() else {
            panic!()
        };
        // In order, not sorted: flatten keeps the map's order.
        req.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, show(kv.value.as_ref())))
            .collect::<Vec<_>>()
    };
    let combination = || {
        vec![
            kv("name", s("test")),
            kv(
                "address",
                map(vec![kv("street", s("first")), kv("house", s("1234"))]),
            ),
            kv("occupants", list(vec![s("user 1"), s("user 2")])),
        ]
    };
    assert_eq!(
        run("flatten(attributes)", combination()),
        vec![
            "name=test",
            "address.street=first",
            "address.house=1234",
            "occupants.0=user 1",
            "occupants.1=user 2"
        ]
    );
    assert_eq!(
        run(r#"flatten(attributes, "app")"#, combination()),
        vec![
            "app.name=test",
            "app.address.street=first",
            "app.address.house=1234",
            "app.occupants.0=user 1",
            "app.occupants.1=user 2"
        ]
    );
    let deep = || {
        vec![kv(
            "0",
            map(vec![kv(
                "1",
                map(vec![kv("2", map(vec![kv("3", s("4"))]))]),
            )]),
        )]
    };
    assert_eq!(run("flatten(attributes)", deep()), vec!["0.1.2.3=4"]);
    assert_eq!(
        run(r#"flatten(attributes, "", 2)"#, deep()),
        vec!["0.1.2={3=4}"]
    );
    // A list is a level: at depth 1 the list stays; at depth 3 a map in it is flattened.
    let with_list = || {
        vec![kv(
            "0",
            map(vec![kv(
                "1",
                list(vec![s("2"), map(vec![kv("3", s("4"))])]),
            )]),
        )]
    };
    assert_eq!(
        run(r#"flatten(attributes, "", 1)"#, with_list()),
        vec!["0.1=[2,{3=4}]"]
    );
    assert_eq!(
        run(r#"flatten(attributes, "", 3)"#, with_list()),
        vec!["0.1.0=2", "0.1.1.3=4"]
    );
    // resolveConflicts: a key written twice gets .0; list items go under the list's key.
    assert_eq!(
        run(
            r#"flatten(attributes, "", 10, true)"#,
            vec![
                kv("address", map(vec![kv("street", s("first"))])),
                kv("address.street", s("second")),
                kv("tags", list(vec![s("a"), s("b")])),
            ]
        ),
        vec![
            "address.street=first",
            "address.street.0=second",
            "tags=a",
            "tags.0=b"
        ]
    );
    assert_eq!(
        errors_of("log_statements: ['flatten(log.attributes, \"\", 0)']"),
        vec!["processors.transform.log_statements[0]: invalid depth '0' for flatten function, must be greater than 0 in statement \"flatten(log.attributes, \\\"\\\", 0)\""]
    );
}
