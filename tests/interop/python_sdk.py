#!/usr/bin/env python3
"""Interop test: the official OpenTelemetry Python SDK (from PyPI) talks to a real weir.

Starts `weir` with an OTLP receiver (gRPC + HTTP) and a `file` exporter, sends logs, spans
and metrics from the Python SDK over gRPC and over HTTP/protobuf, then reads the exporter's
OTLP JSON lines and checks that exactly what was sent arrived, attributes intact.

usage: python_sdk.py WEIR_BINARY
Prints one line per check and a closing line 'N passed, N failed'; exits non-zero on failure.
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time

from common import attrs, free_port, read_lines, wait_port
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry._logs import SeverityNumber

N_LOGS, N_SPANS = 25, 17










def send(transport, grpc_port, http_port, tag):
    res = Resource.create({"service.name": f"interop-{transport}", "run.tag": tag})
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        ep = f"http://127.0.0.1:{grpc_port}"
        kw = dict(endpoint=ep, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        base = f"http://127.0.0.1:{http_port}"
        kw = None
    lp = LoggerProvider(resource=res)
    le = OTLPLogExporter(**kw) if kw else OTLPLogExporter(endpoint=base + "/v1/logs")
    lp.add_log_record_processor(SimpleLogRecordProcessor(le))
    logger = lp.get_logger("interop.logger")
    for i in range(N_LOGS):
        logger.emit(body=f"order {i} placed", severity_number=SeverityNumber.INFO,
                    severity_text="INFO", attributes={"order.id": i, "tag": tag})
    lp.shutdown()

    tp = TracerProvider(resource=res)
    se = OTLPSpanExporter(**kw) if kw else OTLPSpanExporter(endpoint=base + "/v1/traces")
    tp.add_span_processor(SimpleSpanProcessor(se))
    tracer = tp.get_tracer("interop.tracer")
    for i in range(N_SPANS):
        with tracer.start_as_current_span(f"op-{i}", attributes={"i": i, "tag": tag}):
            pass
    tp.shutdown()

    me = OTLPMetricExporter(**kw) if kw else OTLPMetricExporter(endpoint=base + "/v1/metrics")
    reader = PeriodicExportingMetricReader(me, export_interval_millis=3_600_000)
    mp = MeterProvider(resource=res, metric_readers=[reader])
    counter = mp.get_meter("interop.meter").create_counter("interop.requests", unit="1")
    counter.add(5, {"tag": tag})
    counter.add(2, {"tag": tag})
    mp.force_flush()
    mp.shutdown()


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-interop-")
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    out = os.path.join(tmp, "out.jsonl")
    cfg = os.path.join(tmp, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
      http:
        endpoint: 127.0.0.1:{http_port}
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
    traces:
      receivers: [otlp]
      exporters: [file]
    metrics:
      receivers: [otlp]
      exporters: [file]
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
        wait_port(http_port, proc)
        for transport in ("grpc", "http"):
            send(transport, grpc_port, http_port, tag=f"t-{transport}")
        time.sleep(0.5)
        proc.terminate()
        proc.wait(timeout=20)
        check("weir exits 0 on SIGTERM", proc.returncode == 0, f"exit {proc.returncode}")
        docs = read_lines(out)
        for transport in ("grpc", "http"):
            svc = f"interop-{transport}"
            logs, spans, points = [], [], []
            for d in docs:
                for rl in d.get("resourceLogs", []):
                    if attrs(rl.get("resource", {}).get("attributes")).get("service.name") != svc:
                        continue
                    for sl in rl.get("scopeLogs", []):
                        logs += sl.get("logRecords", [])
                for rs in d.get("resourceSpans", []):
                    if attrs(rs.get("resource", {}).get("attributes")).get("service.name") != svc:
                        continue
                    for ss in rs.get("scopeSpans", []):
                        spans += ss.get("spans", [])
                for rm in d.get("resourceMetrics", []):
                    if attrs(rm.get("resource", {}).get("attributes")).get("service.name") != svc:
                        continue
                    for sm in rm.get("scopeMetrics", []):
                        for m in sm.get("metrics", []):
                            if m.get("name") == "interop.requests":
                                points += m.get("sum", {}).get("dataPoints", [])
            check(f"{transport}: {N_LOGS} log records arrive", len(logs) == N_LOGS, f"got {len(logs)}")
            bodies = sorted(l.get("body", {}).get("stringValue", "") for l in logs)
            check(f"{transport}: log bodies intact", bodies == sorted(f"order {i} placed" for i in range(N_LOGS)), str(bodies[:3]))
            ids = sorted(int(attrs(l.get("attributes")).get("order.id")) for l in logs)
            check(f"{transport}: log attributes intact", ids == list(range(N_LOGS)), str(ids[:5]))
            check(f"{transport}: severity intact", all(l.get("severityNumber") in (9, "SEVERITY_NUMBER_INFO") for l in logs))
            check(f"{transport}: {N_SPANS} spans arrive", len(spans) == N_SPANS, f"got {len(spans)}")
            names = sorted(s["name"] for s in spans)
            check(f"{transport}: span names intact", names == sorted(f"op-{i}" for i in range(N_SPANS)), str(names[:3]))
            check(f"{transport}: trace ids are 32 hex digits", all(len(s.get("traceId", "")) == 32 for s in spans))
            # Cumulative temporality: every export carries the running total.
            total = max((int(p.get("asInt", 0)) for p in points), default=0)
            check(f"{transport}: metric sum 7 arrives", total == 7, f"points {points}")
    except Exception as e:  # noqa: BLE001 - report any failure as a failed check
        check("interop run", False, repr(e))
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
