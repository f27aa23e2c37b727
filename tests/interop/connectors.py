#!/usr/bin/env python3
"""Connectors with real traffic: the official OpenTelemetry Python SDK sends logs and spans
to a real weir whose pipelines are joined by the `routing`, `count` and `forward`
connectors (and `spanmetrics`); the test reads what the `file` exporters wrote and checks exact counts.

  logs/in --routing--> logs/acme   (resource route: tenant == acme)
                   \\-> logs/errors (log route: severity_number >= ERROR)
                   \\-> logs/other  (default pipelines)
          --count----> metrics/counts (app.log.count by the `level` attribute)
          --forward--> logs/all
  traces  --count----> metrics/counts (trace.span.count, the default)
          --spanmetrics--> metrics/spans (calls and duration per span name, kind, status)

usage: connectors.py WEIR_BINARY
Prints one line per check and 'N passed, N failed'; exits non-zero on failure.
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time

from common import attrs, free_port, read_lines, wait_port
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter










def log_records(path):
    out = []
    for d in read_lines(path):
        for rl in d.get("resourceLogs", []):
            tenant = attrs(rl.get("resource", {}).get("attributes")).get("tenant")
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    out.append((tenant, lr))
    return out


def count_points(path):
    """(metric name, level attribute or None) -> summed value, plus each metric's shape."""
    sums, shapes = {}, {}
    for d in read_lines(path):
        for rm in d.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    s = m.get("sum", {})
                    shapes[m["name"]] = (s.get("aggregationTemporality"), s.get("isMonotonic"),
                                         sm.get("scope", {}).get("name"))
                    for p in s.get("dataPoints", []):
                        key = (m["name"], attrs(p.get("attributes")).get("level"))
                        sums[key] = sums.get(key, 0) + int(p.get("asInt", 0))
    return sums, shapes


def span_metrics(path):
    """calls and histogram counts by (span.name, span.kind, status.code, tier), and shapes."""
    calls, hist, shapes = {}, {}, {}
    for d in read_lines(path):
        for rm in d.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                assert sm.get("scope", {}).get("name") == "spanmetricsconnector", sm.get("scope")
                for m in sm.get("metrics", []):
                    kind = "sum" if "sum" in m else "histogram"
                    body = m[kind]
                    shapes[m["name"]] = (kind, _temporality(body.get("aggregationTemporality")),
                                         body.get("isMonotonic"), m.get("unit", ""))
                    for p in body.get("dataPoints", []):
                        a = attrs(p.get("attributes"))
                        key = (a.get("span.name"), a.get("span.kind"), a.get("status.code"), a.get("tier"))
                        if kind == "sum":
                            calls[key] = calls.get(key, 0) + int(p.get("asInt", 0))
                        else:
                            hist[key] = hist.get(key, 0) + int(p.get("count", 0))
    return calls, hist, shapes


def _temporality(v):
    return {"AGGREGATION_TEMPORALITY_DELTA": 1, "AGGREGATION_TEMPORALITY_CUMULATIVE": 2}.get(v, v)


def emit_logs(port, tenant, plan):
    lp = LoggerProvider(resource=Resource.create({"service.name": f"svc-{tenant}", "tenant": tenant}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)))
    logger = lp.get_logger("connectors.test")
    i = 0
    for sev, text, level, n in plan:
        for _ in range(n):
            a = {"i": i}
            if level is not None:
                a["level"] = level
            logger.emit(body=f"{tenant} event {i}", severity_number=sev, severity_text=text, attributes=a)
            i += 1
    lp.shutdown()
    return i


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-connectors-")
    grpc_port, metrics_port = free_port(), free_port()
    files = {k: os.path.join(tmp, f"{k}.jsonl") for k in ("acme", "errors", "other", "all", "counts", "spans")}
    cfg = os.path.join(tmp, "weir.yaml")
    exporters = "\n".join(f"  file/{k}:\n    path: {p}\n    flush_interval: 100ms" for k, p in files.items())
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
exporters:
{exporters}
connectors:
  forward:
  routing:
    default_pipelines: [logs/other]
    error_mode: ignore
    table:
      - condition: 'attributes["tenant"] == "acme"'
        pipelines: [logs/acme]
      - context: log
        statement: route() where severity_number >= SEVERITY_NUMBER_ERROR
        pipelines: [logs/errors]
  spanmetrics:
    metrics_flush_interval: 1h
    dimensions: [{{name: tier, default: none}}]
  count:
    logs:
      app.log.count:
        description: Log records by level.
        attributes:
          - key: level
            default_value: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    logs/in:
      receivers: [otlp]
      exporters: [routing, count, forward]
    logs/acme:
      receivers: [routing]
      exporters: [file/acme]
    logs/errors:
      receivers: [routing]
      exporters: [file/errors]
    logs/other:
      receivers: [routing]
      exporters: [file/other]
    logs/all:
      receivers: [forward]
      exporters: [file/all]
    traces:
      receivers: [otlp]
      exporters: [count, spanmetrics]
    metrics/spans:
      receivers: [spanmetrics]
      exporters: [file/spans]
    metrics/counts:
      receivers: [count]
      exporters: [file/counts]
""")
    log = open(os.path.join(tmp, "weir.log"), "w")
    proc = subprocess.Popen([weir, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
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
        INFO, ERROR = SeverityNumber.INFO, SeverityNumber.ERROR
        # acme: every record goes to logs/acme (the resource route comes first), errors too.
        n_acme = emit_logs(grpc_port, "acme", [(INFO, "INFO", "info", 10), (ERROR, "ERROR", "error", 3)])
        # globex: errors to logs/errors, the rest to the default pipeline.
        n_globex = emit_logs(grpc_port, "globex", [(INFO, "INFO", "info", 20), (ERROR, "ERROR", "error", 4),
                                                   (INFO, "INFO", None, 2)])
        tp = TracerProvider(resource=Resource.create({"service.name": "svc-traces"}))
        tp.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{grpc_port}", insecure=True)))
        tracer = tp.get_tracer("connectors.test")
        for i in range(7):
            with tracer.start_as_current_span(f"op-{i}"):
                pass
        for _ in range(5):
            with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER, attributes={"tier": "web"}):
                pass
        for _ in range(3):
            with tracer.start_as_current_span("db", kind=SpanKind.CLIENT) as sp:
                sp.set_status(Status(StatusCode.ERROR))
        tp.shutdown()
        time.sleep(0.5)
        proc.terminate()
        proc.wait(timeout=20)
        check("weir exits 0 on SIGTERM", proc.returncode == 0, f"exit {proc.returncode}")

        acme, errors, other, everything = (log_records(files[k]) for k in ("acme", "errors", "other", "all"))
        check("sent 13 + 26 records", (n_acme, n_globex) == (13, 26), f"{n_acme}, {n_globex}")
        check("routing: 13 acme records to logs/acme (errors included)",
              len(acme) == 13 and all(t == "acme" for t, _ in acme), f"{len(acme)}: {[t for t, _ in acme][:5]}")
        check("routing: 4 globex ERROR records to logs/errors",
              len(errors) == 4 and all(t == "globex" and lr.get("severityNumber") in (17, "SEVERITY_NUMBER_ERROR")
                                       for t, lr in errors), f"{len(errors)}")
        check("routing: 22 other globex records to the default pipeline",
              len(other) == 22 and all(t == "globex" and lr.get("severityNumber") in (9, "SEVERITY_NUMBER_INFO")
                                       for t, lr in other), f"{len(other)}")
        bodies = sorted(lr["body"]["stringValue"] for _, lr in acme + errors + other)
        check("routing: every record once, none lost or doubled",
              bodies == sorted([f"acme event {i}" for i in range(13)] + [f"globex event {i}" for i in range(26)]))
        check("forward: all 39 records to logs/all", len(everything) == 39, f"{len(everything)}")
        sums, shapes = count_points(files["counts"])
        want = {("app.log.count", "info"): 30, ("app.log.count", "error"): 7,
                ("app.log.count", "none"): 2, ("trace.span.count", None): 15}
        check("count: log records by level and spans, exactly", sums == want, f"{sums}")
        check("count: delta monotonic sums in the connector's scope",
              all(s[0] in (1, "AGGREGATION_TEMPORALITY_DELTA") and s[1] is True
                  and s[2].endswith("connector/countconnector") for s in shapes.values()), f"{shapes}")
        calls, hist, shapes = span_metrics(files["spans"])
        want = {("op-0", "SPAN_KIND_INTERNAL", "STATUS_CODE_UNSET", "none"): 1,
                ("checkout", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET", "web"): 5,
                ("db", "SPAN_KIND_CLIENT", "STATUS_CODE_ERROR", "none"): 3}
        got = {k: v for k, v in calls.items() if k[0] in ("op-0", "checkout", "db")}
        check("spanmetrics: calls per span name, kind, status and dimension, exactly",
              got == want and len(calls) == 9 and sum(calls.values()) == 15, f"{calls}")
        check("spanmetrics: one duration histogram point per series with its count",
              hist == calls, f"{hist}")
        check("spanmetrics: cumulative calls sum and ms histogram named as the Collector's",
              shapes == {"traces.span.metrics.calls": ("sum", 2, True, ""),
                         "traces.span.metrics.duration": ("histogram", 2, None, "ms")}, f"{shapes}")
    except Exception as e:  # noqa: BLE001 - report any failure as a failed check
        check("connectors run", False, repr(e))
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
