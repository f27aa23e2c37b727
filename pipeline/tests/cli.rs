//! The `weir` binary's commands, run for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;

fn output(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn collector_feature_gates_are_accepted_and_reported_as_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "ok.yaml",
        &runnable_config(&Ports::pick(), "  nop: {}", "nop"),
    );
    let (code, stdout, stderr) = output(
        weir()
            .arg("validate")
            .arg("--config")
            .arg(&cfg)
            .arg("--feature-gates=+exporter.otlp.someGate,-telemetry.other"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 3 pipeline(s)\n");
    assert_eq!(
        stderr,
        "weir: --feature-gates: Weir has no feature gates; ignored: +exporter.otlp.someGate, -telemetry.other\n"
    );
    // The run form, as the collector is started: `weir --config X --feature-gates G`.
    let (code, _, stderr) = output(
        weir()
            .args(["--config", "/nonexistent/weir.yaml"])
            .args(["--feature-gates", "a.b"]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("weir: --feature-gates: Weir has no feature gates; ignored: a.b\n"),
        "{stderr}"
    );
}

#[test]
fn a_pipeline_fed_only_by_the_nop_receiver_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let cfg = runnable_config(&ports, "  nop: {}", "nop").replace(
        "    metrics: {receivers: [otlp]",
        "    metrics: {receivers: [nop]",
    );
    assert!(cfg.contains("receivers: [nop]"));
    let cfg = cfg.replace("receivers:\n  otlp:", "receivers:\n  nop:\n  otlp:");
    let path = write(dir.path(), "nop.yaml", &cfg);
    let mut child = spawn(dir.path(), &path, &[]);
    let ready = wait_for_status(ports.health, "/", 200, Duration::from_secs(20));
    assert!(ready.is_some(), "not ready:\n{}", log_of(dir.path()));
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        log_of(dir.path())
    );
}

#[test]
fn validate_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "ok.yaml",
        &runnable_config(&Ports::pick(), "  nop: {}", "nop"),
    );
    let (code, stdout, stderr) = output(weir().arg("validate").arg("--config").arg(&cfg));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "the config is valid: 3 pipeline(s)\n");
}

#[test]
fn validate_lists_every_error_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bad.yaml",
        "receivers:
  otlp: {protocols: {grpc: {}}}
processors:
  batch: {send_batch_size: 10, send_batch_max_size: 5}
  bacth: {}
exporters:
  nop: {}
connectors:
  forward: {}
service:
  pipelines:
    logs:
      receivers: [otlp]
      processors: [batch, batch]
      exporters: [nop, debug, forward]
    tracez:
      receivers: [otlp]
      exporters: [nop]
",
    );
    let (code, stdout, stderr) = output(weir().arg("validate").arg("--config").arg(&cfg));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            "processors.bacth: unknown processor type \"bacth\" (did you mean \"batch\"?)",
            "processors.batch.send_batch_max_size: send_batch_max_size (5) must be 0 or at least send_batch_size (10)",
            "service.pipelines.logs.processors[1]: processor \"batch\" is listed twice (first at [0])",
            "service.pipelines.logs.exporters[1]: exporter \"debug\" is not configured under exporters",
            "service.pipelines.tracez: unknown signal \"tracez\" in pipeline id (expected traces, metrics or logs, optionally followed by /name)",
            "service.pipelines.logs.exporters[2]: connector \"forward\" is used as an exporter in a logs pipeline but no pipeline of a signal it supports from logs lists it as a receiver (it joins: traces to traces, metrics to metrics, logs to logs)",
        ]
    );
}

#[test]
fn validate_reports_unreadable_files_and_bad_set() {
    let (code, _, stderr) = output(weir().args(["validate", "--config", "/nonexistent/weir.yaml"]));
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("/nonexistent/weir.yaml: cannot read the config file: "),
        "{stderr}"
    );
    let (code, _, stderr) = output(weir().args(["validate", "--set", "processors.batch"]));
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "--set: --set \"processors.batch\": expected key=value\n"
    );
}

#[test]
fn validate_applies_set_and_env_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "ok.yaml",
        &runnable_config(&Ports::pick(), "  nop: {}", "nop"),
    );
    let (code, _, stderr) = output(
        weir()
            .arg("validate")
            .arg("--config")
            .arg(&cfg)
            .args([
                "--set",
                "processors.batch.send_batch_size=${env:WEIR_TEST_BATCH}",
                "--set",
                "processors::batch::send_batch_max_size=5",
            ])
            .env("WEIR_TEST_BATCH", "9"),
    );
    assert_eq!(code, 1);
    assert_eq!(stderr, "processors.batch.send_batch_max_size: send_batch_max_size (5) must be 0 or at least send_batch_size (9)\n");
}

#[test]
fn components_prints_the_collector_yaml_with_stability() {
    let (code, stdout, _) = output(weir().arg("components"));
    assert_eq!(code, 0);
    // The Collector's layout: build info, then one list per kind, four-space indents.
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        stdout.starts_with(&format!(
            "buildinfo:\n    command: weir\n    description: Weir, an OpenTelemetry-native telemetry pipeline\n    version: {version}\nreceivers:\n    - name: file_log\n      module: weir {version}\n      stability:\n        logs: Alpha\n        metrics: Undefined\n        traces: Undefined\n"
        )),
        "{stdout}"
    );
    let doc: serde_json::Value = serde_saphyr::from_str(&stdout).unwrap();
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for k in [
        "buildinfo",
        "receivers",
        "processors",
        "exporters",
        "connectors",
        "extensions",
        "providers",
    ] {
        assert!(keys.contains(&k), "{k} missing: {keys:?}");
    }
    let find = |kind: &str, name: &str| -> serde_json::Value {
        let list = doc[kind].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{kind} sorted by name");
        list.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing:\n{stdout}"))["stability"]
            .clone()
    };
    let all = |level: &str| serde_json::json!({"logs": level, "metrics": level, "traces": level});
    assert_eq!(find("receivers", "otlp"), all("Beta"));
    assert_eq!(find("receivers", "nop"), all("Beta"));
    assert_eq!(
        find("receivers", "filelog"),
        serde_json::json!({"logs": "Alpha", "metrics": "Undefined", "traces": "Undefined"})
    );
    assert_eq!(find("processors", "batch"), all("Beta"));
    assert_eq!(
        find("receivers", "hostmetrics"),
        serde_json::json!({"logs": "Undefined", "metrics": "Alpha", "traces": "Undefined"})
    );
    let traces_only =
        serde_json::json!({"logs": "Undefined", "metrics": "Undefined", "traces": "Alpha"});
    assert_eq!(find("receivers", "zipkin"), traces_only);
    assert_eq!(find("receivers", "jaeger"), traces_only);
    assert_eq!(find("exporters", "zipkin"), traces_only);
    assert_eq!(find("processors", "filter"), all("Alpha"));
    assert_eq!(
        find("processors", "probabilistic_sampler"),
        serde_json::json!({"logs": "Alpha", "metrics": "Undefined", "traces": "Alpha"})
    );
    for e in [
        "otlp",
        "otlp_grpc",
        "otlp_http",
        "otlphttp",
        "debug",
        "file",
        "nop",
    ] {
        assert_eq!(find("exporters", e), all("Beta"), "{e}");
    }
    assert_eq!(find("exporters", "logging"), all("Deprecated"));
    assert_eq!(
        find("extensions", "health_check"),
        serde_json::json!({"extension": "Beta"})
    );
    for e in ["zpages", "pprof", "bearertokenauth", "file_storage"] {
        assert_eq!(
            find("extensions", e),
            serde_json::json!({"extension": "Alpha"})
        );
    }
    let spanmetrics = find("connectors", "spanmetrics");
    let pairs = spanmetrics.as_object().unwrap();
    assert_eq!(pairs.len(), 9);
    for (pair, level) in pairs {
        let want = if pair == "traces-to-metrics" {
            "Alpha"
        } else {
            "Undefined"
        };
        assert_eq!(level, want, "{pair}");
    }
    let forward = find("connectors", "forward");
    assert_eq!(forward["logs-to-logs"], "Alpha");
    assert_eq!(forward["logs-to-metrics"], "Undefined");
    let schemes: Vec<&str> = doc["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["scheme"].as_str().unwrap())
        .collect();
    assert_eq!(schemes, vec!["env", "file", "http", "https", "yaml"]);
}

#[test]
fn print_config_merges_expands_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        "exporters:\n  otlp:\n    endpoint: upstream:4317\n    headers:\n      authorization: ${env:WEIR_TEST_TOKEN}\n      x-tenant: t1\n",
    );
    let b = write(
        dir.path(),
        "b.yaml",
        "exporters:\n  otlp:\n    compression: zstd\n",
    );
    let (code, stdout, stderr) = output(
        weir()
            .arg("print-config")
            .arg("--config")
            .arg(&a)
            .arg("--config")
            .arg(&b)
            .args(["--set", "exporters.otlp.timeout=7s"])
            .env("WEIR_TEST_TOKEN", "Bearer very-secret-value"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("very-secret-value"), "{stdout}");
    let printed: serde_json::Value = serde_saphyr_roundtrip(&stdout);
    assert_eq!(
        printed,
        serde_json::json!({"exporters": {"otlp": {
            "endpoint": "upstream:4317",
            "compression": "zstd",
            "timeout": "7s",
            "headers": {"authorization": "[REDACTED]", "x-tenant": "t1"}
        }}})
    );
}

#[test]
fn inline_yaml_with_the_collectors_key_separator_merges_into_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        "exporters:\n  otlp/x:\n    endpoint: upstream:4317\n",
    );
    let (code, stdout, stderr) = output(
        weir()
            .arg("print-config")
            .arg("--config")
            .arg(&a)
            .args(["--config", "yaml:exporters::otlp/x::compression: none"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        serde_saphyr_roundtrip(&stdout),
        serde_json::json!({"exporters": {"otlp/x": {
            "endpoint": "upstream:4317",
            "compression": "none"
        }}})
    );
}

/// Reads the printed YAML back with the engine's own loader.
fn serde_saphyr_roundtrip(text: &str) -> serde_json::Value {
    weir::config::parse_document(text).unwrap()
}

#[test]
fn runs_serves_health_and_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let cfg = write(
        dir.path(),
        "run.yaml",
        &runnable_config(&ports, "  nop: {}", "nop"),
    );
    let mut child = spawn(dir.path(), &cfg, &["--shutdown-timeout", "5s"]);
    let body = wait_for_status(ports.health, "/", 200, Duration::from_secs(20));
    let body = body.unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "health check never answered 200; log:\n{}",
            log_of(dir.path())
        )
    });
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "Server available");
    let (status, metrics) = http_get(ports.metrics, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("weir_pipeline_received_items_total{pipeline=\"logs\"} 0"),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    let stop = Instant::now();
    sigterm(&child);
    let status =
        wait_exit(&mut child, Duration::from_secs(10)).expect("weir did not exit after SIGTERM");
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        log_of(dir.path())
    );
    assert!(
        stop.elapsed() < Duration::from_secs(6),
        "{:?}",
        stop.elapsed()
    );
    assert!(http_get(ports.health, "/").is_none());
    let log = log_of(dir.path());
    assert!(log.contains("shutdown complete"), "{log}");
}

#[test]
fn run_with_invalid_config_exits_1_with_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bad.yaml",
        "service: {pipelines: {logs: {receivers: [otlp], exporters: [nop]}}}",
    );
    let (code, _, stderr) = output(weir().arg("--config").arg(&cfg));
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "service.pipelines.logs.receivers[0]: receiver \"otlp\" is not configured under receivers\n\
         service.pipelines.logs.exporters[0]: exporter \"nop\" is not configured under exporters\n"
    );
}

#[test]
fn port_in_use_fails_start_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", ports.health)).unwrap();
    let cfg = write(
        dir.path(),
        "run.yaml",
        &runnable_config(&ports, "  nop: {}", "nop"),
    );
    let mut child = spawn(dir.path(), &cfg, &[]);
    let status = wait_exit(&mut child, Duration::from_secs(20))
        .expect("weir kept running with its port taken");
    assert_eq!(status.code(), Some(1));
    let log = log_of(dir.path());
    assert!(
        log.contains(&format!(
            "cannot start the service: health_check: cannot listen on 127.0.0.1:{}",
            ports.health
        )),
        "{log}"
    );
}

#[test]
fn no_config_runs_the_embedded_default_and_run_subcommand_works() {
    for subcommand in [None, Some("run")] {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::pick();
        let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
        let mut cmd = weir();
        if let Some(s) = subcommand {
            cmd.arg(s);
        }
        let mut child = cmd
            .args([
                "--set",
                &format!(
                    "receivers.otlp.protocols.grpc.endpoint=127.0.0.1:{}",
                    ports.grpc
                ),
            ])
            .args([
                "--set",
                &format!(
                    "receivers.otlp.protocols.http.endpoint=127.0.0.1:{}",
                    ports.http
                ),
            ])
            .args([
                "--set",
                &format!(
                    "extensions.health_check.endpoint=127.0.0.1:{}",
                    ports.health
                ),
            ])
            .args([
                "--set",
                &format!(
                    "service.telemetry.metrics.address=127.0.0.1:{}",
                    ports.metrics
                ),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let ready = wait_for_status(ports.health, "/", 200, Duration::from_secs(20));
        sigterm(&child);
        let status = wait_exit(&mut child, Duration::from_secs(15));
        assert!(ready.is_some(), "never ready; log:\n{}", log_of(dir.path()));
        assert!(status.unwrap().success(), "log:\n{}", log_of(dir.path()));
    }
}

#[test]
fn policy_subcommand_is_wired() {
    let (code, stdout, _) = output(weir().args(["policy", "--help"]));
    assert_eq!(code, 0);
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("eval")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("validate")),
        "{stdout}"
    );
}

#[test]
fn catalog_connect_prometheus_is_wired_and_names_what_failed() {
    let (code, stdout, _) = output(weir().args(["catalog", "connect", "prometheus", "--help"]));
    assert_eq!(code, 0);
    for flag in [
        "--db",
        "--username",
        "--password-file",
        "--bearer-token-file",
        "--ca-file",
    ] {
        assert!(stdout.contains(flag), "{flag} not in\n{stdout}");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    // Nothing listens there: the error names the server and the first API path.
    let port = free_port();
    let (code, _, stderr) = output(weir().args([
        "catalog",
        "connect",
        "prometheus",
        &format!("http://127.0.0.1:{port}"),
        "--db",
        db.to_str().unwrap(),
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: prometheus http://127.0.0.1:{port}: GET /api/v1/status/tsdb: cannot connect"
        )),
        "{stderr}"
    );
    assert!(
        !db.exists(),
        "nothing is created when the server cannot be read"
    );
    let (code, _, stderr) = output(weir().args([
        "catalog",
        "connect",
        "prometheus",
        "http://u:s3cr3tpw@127.0.0.1:9",
        "--db",
        db.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("credentials in the URL are not accepted"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3tpw"), "{stderr}");
    assert!(!db.exists(), "nothing is created for a refused URL");
}

#[test]
fn admin_tokens_expire_users_enrol_and_the_audit_log_verifies_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let db_s = db.to_str().unwrap();
    let admin = |args: &[&str]| output(weir().arg("admin").args(args));

    let (code, token, stderr) = admin(&[
        "token",
        "create",
        "--db",
        db_s,
        "--role",
        "viewer",
        "--expires",
        "30d",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(token.starts_with("weir_"), "{token}");
    assert!(stderr.contains(" expiring 20"), "{stderr}");
    let (code, _, stderr) = admin(&[
        "token",
        "create",
        "--db",
        db_s,
        "--role",
        "viewer",
        "--expires",
        "soon",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("expires: \"soon\" is not a duration"),
        "{stderr}"
    );
    let (code, _, _) = admin(&[
        "token", "create", "--db", db_s, "--role", "edge", "--edge", "e1",
    ]);
    assert_eq!(code, 0);
    let (code, list, _) = admin(&["token", "list", "--db", db_s]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines[0], "ID\tROLE\tEDGE\tSTATE\tEXPIRES\tLAST_USED\tNAME");
    let row = |role: &str| -> Vec<&str> {
        let l = lines.iter().find(|l| l.split('\t').nth(1) == Some(role));
        l.unwrap().split('\t').collect()
    };
    let viewer = row("viewer");
    assert_eq!(viewer[1..4], ["viewer", "-", "active"]);
    assert!(
        viewer[4].starts_with("20") && viewer[4].ends_with('Z'),
        "{list}"
    );
    assert_eq!(viewer[5], "never");
    let edge = row("edge");
    assert_eq!(edge[1..6], ["edge", "e1", "active", "never", "never"]);

    let (code, secret, stderr) =
        admin(&["user", "create", "--db", db_s, "--role", "editor", "ana"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(secret.starts_with("weir_enrol_"), "{secret}");
    let (code, _, stderr) = admin(&["user", "create", "--db", db_s, "--role", "edge", "bot"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("edge is for machines"), "{stderr}");
    let (_, users, _) = admin(&["user", "list", "--db", db_s]);
    assert_eq!(
        users,
        "NAME\tROLE\tSTATE\tLAST_SIGN_IN\nana\teditor\tpending\tnever\n"
    );

    let (code, out, stderr) = admin(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.starts_with("audit log intact: 3 records (1 to 3)"),
        "{out}"
    );
    let (code, jsonl, _) = admin(&["audit", "export", "--db", db_s]);
    assert_eq!(code, 0);
    let recs: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2]["action"], "user.create");
    assert_eq!(recs[2]["client"], "local");
    assert_eq!(recs[2]["hash"].as_str().unwrap().len(), 64);
    // The old listing form still works.
    let (code, log, _) = admin(&["audit", "--db", db_s]);
    assert_eq!(code, 0);
    assert_eq!(log.lines().count(), 3);

    // With another key the chain does not hold: verify says so and exits 1.
    let key = dir.path().join("cp.db.audit-key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let (code, _, stderr) = admin(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: audit log TAMPERED: record 1: its hash does not match"),
        "{stderr}"
    );
}
