#!/usr/bin/env python3
"""Attribute-changing processors with real traffic: the official OpenTelemetry Python SDK
sends spans and logs to a real weir whose pipelines run the `resourcedetection`,
`resource`, `attributes`, `transform` and `metricstransform` processors; the test reads what the `file`
exporters wrote and checks exact counts and exact attribute values.

  traces: resourcedetection (env, system) -> resource -> attributes/redact (services auth.*:
          update, hash, convert) -> transform (span names lower-cased, where) -> file
  logs:   resource -> attributes/errors (severity text ERROR: insert, delete)
          -> transform (replace_pattern on the body, set from a converter) -> file
  metrics: metricstransform (insert a scaled copy; rename, relabel, aggregate) -> file

usage: processors.py WEIR_BINARY
Prints one line per check and 'N passed, N failed'; exits non-zero on failure.
"""
import hashlib, os, shutil, subprocess, sys, tempfile, time

from common import attrs, free_port, read_lines, wait_port
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter


def items(path, kind):
    """(resource attributes, item) for every span or log record in a file exporter's output."""
    top, scopes, leaf = {"spans": ("resourceSpans", "scopeSpans", "spans"),
                         "logs": ("resourceLogs", "scopeLogs", "logRecords")}[kind]
    out = []
    for d in read_lines(path):
        for r in d.get(top, []):
            res = attrs(r.get("resource", {}).get("attributes"))
            for s in r.get(scopes, []):
                for it in s.get(leaf, []):
                    out.append((res, it))
    return out


def send_spans(port, service, n):
    tp = TracerProvider(resource=Resource.create({"service.name": service, "tenant": "t1"}))
    tp.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)))
    tracer = tp.get_tracer("processors.test")
    for i in range(n):
        with tracer.start_as_current_span(f"{service}-OP-{i}") as span:
            span.set_attribute("password", f"secret-{i}")
            span.set_attribute("user.email", f"user{i}@example.com")
            span.set_attribute("http.status_code", "200")
    tp.shutdown()


def send_logs(port, plan):
    lp = LoggerProvider(resource=Resource.create({"service.name": "logsvc", "tenant": "t1"}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)))
    logger = lp.get_logger("processors.test")
    i = 0
    for sev, text, n in plan:
        for _ in range(n):
            logger.emit(body=f"event {i} token=abc{i}", severity_number=sev, severity_text=text, attributes={"seq": i})
            i += 1
    lp.shutdown()
    return i


def send_metrics(port):
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True), export_interval_millis=600000)
    mp = MeterProvider(resource=Resource.create({"service.name": "metrics-svc"}), metric_readers=[reader])
    counter = mp.get_meter("processors.test").create_counter("app.requests")
    counter.add(1, {"state": "idle", "host": "a"})
    counter.add(2, {"state": "idle", "host": "b"})
    counter.add(4, {"state": "busy", "host": "a"})
    mp.shutdown()  # one final collection and export


def sum_points(path):
    """metric name -> sorted [(sorted attribute pairs, int value)] of the last export."""
    out = {}
    for d in read_lines(path):
        for rm in d.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    pts = m.get("sum", m.get("gauge", {})).get("dataPoints", [])
                    out[m["name"]] = sorted(
                        (tuple(sorted(attrs(p.get("attributes")).items())), p.get("asInt", p.get("asDouble")))
                        for p in pts)
    return out


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-processors-")
    grpc_port, metrics_port = free_port(), free_port()
    files = {k: os.path.join(tmp, f"{k}.jsonl") for k in ("spans", "logs", "metrics")}
    cfg = os.path.join(tmp, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
processors:
  resourcedetection:
    detectors: [env, system]
    override: false
    system:
      hostname_sources: [os]
  transform/spans:
    error_mode: ignore
    trace_statements:
      - context: span
        statements:
          - set(name, ConvertCase(name, "lower")) where resource.attributes["service.name"] == "auth-api"
          - set(attributes["op.len"], Len(name))
  transform/logs:
    log_statements:
      - context: log
        statements:
          - replace_pattern(body, "token=[a-z0-9]+", "token=***")
          - set(attributes["level"], ConvertCase(severity_text, "lower"))
          - delete_key(attributes, "alert") where severity_number < SEVERITY_NUMBER_WARN
  metricstransform:
    transforms:
      - include: app.requests
        action: insert
        new_name: app.requests.x10
        operations:
          - {{action: scale_value, experimental_scale: 10}}
      - include: ^app\\.(requests)$
        match_type: regexp
        action: update
        new_name: app.$1.total
        operations:
          - action: update_label
            label: state
            new_label: status
            value_actions:
              - {{value: idle, new_value: free}}
          - {{action: aggregate_labels, label_set: [status], aggregation_type: sum}}
  resource:
    attributes:
      - {{key: deployment.environment, value: staging, action: upsert}}
      - {{key: tenant, action: delete}}
  attributes/redact:
    include:
      match_type: regexp
      services: ["auth.*"]
    actions:
      - {{key: password, action: update, value: obfuscated}}
      - {{key: user.email, action: hash}}
      - {{key: http.status_code, action: convert, converted_type: int}}
  attributes/errors:
    include:
      match_type: strict
      log_severity_texts: [ERROR]
    actions:
      - {{key: alert, value: true, action: insert}}
      - {{key: seq, action: delete}}
exporters:
  file/spans:
    path: {files["spans"]}
    flush_interval: 100ms
  file/logs:
    path: {files["logs"]}
    flush_interval: 100ms
  file/metrics:
    path: {files["metrics"]}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resourcedetection, resource, attributes/redact, transform/spans]
      exporters: [file/spans]
    logs:
      receivers: [otlp]
      processors: [resource, attributes/errors, transform/logs]
      exporters: [file/logs]
    metrics:
      receivers: [otlp]
      processors: [metricstransform]
      exporters: [file/metrics]
""")
    log = open(os.path.join(tmp, "weir.log"), "w")
    env = dict(os.environ, OTEL_RESOURCE_ATTRIBUTES="team=core,region=eu%2Dwest,service.name=from-env")
    proc = subprocess.Popen([weir, "--config", cfg], stdout=log, stderr=subprocess.STDOUT, env=env)
    hostname = open("/proc/sys/kernel/hostname").read().strip()
    passed, failed = 0, 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
        if ok:
            passed += 1
        else:
            failed += 1

    try:
        wait_port(grpc_port, proc)
        send_spans(grpc_port, "auth-api", 5)
        send_spans(grpc_port, "shop", 3)
        send_metrics(grpc_port)
        n_logs = send_logs(grpc_port, [(SeverityNumber.INFO, "INFO", 6), (SeverityNumber.ERROR, "ERROR", 4)])
        time.sleep(0.5)
        proc.terminate()
        proc.wait(timeout=20)
        check("weir exits 0 on SIGTERM", proc.returncode == 0, f"exit {proc.returncode}")

        spans = items(files["spans"], "spans")
        check("8 spans arrive", len(spans) == 8, f"{len(spans)}")
        check("resource: deployment.environment upserted, tenant deleted on every span's resource",
              all(r.get("deployment.environment") == "staging" and "tenant" not in r for r, _ in spans),
              f"{[r for r, _ in spans][:2]}")
        auth = sorted((s for r, s in spans if r.get("service.name") == "auth-api"), key=lambda s: s["name"])
        shop = sorted((s for r, s in spans if r.get("service.name") == "shop"), key=lambda s: s["name"])
        check("5 auth-api spans and 3 shop spans", (len(auth), len(shop)) == (5, 3), f"{len(auth)}, {len(shop)}")
        want_auth = [{"password": "obfuscated",
                      "user.email": hashlib.sha256(f"user{i}@example.com".encode()).hexdigest(),
                      "http.status_code": "200", "op.len": str(len(f"auth-api-op-{i}"))} for i in range(5)]
        got_auth = [attrs(s.get("attributes")) for s in auth]
        check("attributes: auth-api spans updated, hashed (SHA-256) and converted", got_auth == want_auth,
              f"{got_auth[:1]}")
        typed = [next(kv["value"] for kv in s["attributes"] if kv["key"] == "http.status_code") for s in auth]
        check("attributes: http.status_code became an int attribute",
              all("intValue" in v for v in typed), f"{typed[:1]}")
        got_shop = [attrs(s.get("attributes")) for s in shop]
        want_shop = [{"password": f"secret-{i}", "user.email": f"user{i}@example.com", "http.status_code": "200",
                      "op.len": str(len(f"shop-OP-{i}"))} for i in range(3)]
        check("attributes: shop spans (not included) untouched", got_shop == want_shop, f"{got_shop[:1]}")
        check("transform: auth-api span names lower-cased, shop names kept (where)",
              [s["name"] for s in auth] == [f"auth-api-op-{i}" for i in range(5)]
              and [s["name"] for s in shop] == [f"shop-OP-{i}" for i in range(3)],
              f"{[s['name'] for s in auth + shop]}")
        res = [r for r, _ in spans]
        check("resourcedetection: env attributes added, existing service.name kept (override: false)",
              all(r.get("team") == "core" and r.get("region") == "eu-west"
                  and r.get("service.name") in ("auth-api", "shop") for r in res), f"{res[:1]}")
        check("resourcedetection: system host.name and os.type",
              all(r.get("host.name") == hostname and r.get("os.type") == "linux" for r in res), f"{res[:1]}")

        logs = items(files["logs"], "logs")
        check("10 log records sent and arrive", (n_logs, len(logs)) == (10, 10), f"{n_logs}, {len(logs)}")
        errors = [attrs(lr.get("attributes")) for _, lr in logs if lr.get("severityText") == "ERROR"]
        infos = [attrs(lr.get("attributes")) for _, lr in logs if lr.get("severityText") == "INFO"]
        check("attributes + transform: 4 ERROR records got alert=true, lost seq, level=error",
              errors == [{"alert": True, "level": "error"}] * 4, f"{errors}")
        check("attributes + transform: 6 INFO records keep seq 0-5, no alert, level=info",
              sorted(int(a["seq"]) for a in infos) == list(range(6))
              and all("alert" not in a and a.get("level") == "info" for a in infos), f"{infos}")
        bodies = sorted(lr["body"]["stringValue"] for _, lr in logs)
        check("transform: replace_pattern masked every token in the body",
              bodies == sorted(f"event {i} token=***" for i in range(10)), f"{bodies[:2]}")
        check("resource: log resources changed too, and no resourcedetection on logs",
              all(r.get("deployment.environment") == "staging" and "tenant" not in r and "team" not in r
                  for r, _ in logs))
        got = sum_points(files["metrics"])
        want = {
            "app.requests.x10": [((("host", "a"), ("state", "busy")), "40"), ((("host", "a"), ("state", "idle")), "10"),
                                 ((("host", "b"), ("state", "idle")), "20")],
            "app.requests.total": [((("status", "busy"),), "4"), ((("status", "free"),), "3")],
        }
        check("metricstransform: scaled copy inserted; original renamed, relabelled and aggregated, exactly",
              got == want, f"{got}")
    except Exception as e:  # noqa: BLE001 - report any failure as a failed check
        check("processors run", False, repr(e))
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    if failed:
        print(open(os.path.join(tmp, "weir.log")).read()[-4000:])
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
