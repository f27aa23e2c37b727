#!/usr/bin/env python3
"""Interop test: the OpenTelemetry Python SDK's Jaeger exporters (from PyPI) talk to a real
weir's `jaeger` receiver: opentelemetry-exporter-jaeger-thrift over the collector endpoint
(Thrift binary over HTTP, `POST /api/traces`) and the agent endpoint (Thrift compact
`emitBatch` over UDP), and opentelemetry-exporter-jaeger-proto-grpc over gRPC
(`jaeger.api_v2.CollectorService/PostSpans`).

Both were last released as 1.21.0 and need the SDK of that release, older than the one
tests/requirements.txt pins: the senders run in a virtualenv of their own (created on first
use in ~/.cache/weir-jaeger-venv, or $JAEGER_PYTHON), this same script in `--send` mode,
which prints what it sent as JSON. The gRPC exporter's generated protobuf code predates
protobuf 4, so the senders use protobuf's pure-Python implementation.

Checks every span: ids, parent, link, name, kind, flags, times, typed attributes, events,
status and the resource's service name, translated as the Collector's jaeger receiver does.

usage: jaeger_sdk.py WEIR_BINARY
       jaeger_sdk.py --send (http|udp|grpc) PORT
"""
import json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import attrs, free_port, hexid, read_lines, venv_python, wait_port

N_CHILDREN = 5
PACKAGES = ["opentelemetry-exporter-jaeger-thrift==1.21.0",
            "opentelemetry-exporter-jaeger-proto-grpc==1.21.0", "opentelemetry-sdk==1.21.0",
            "opentelemetry-api==1.21.0", "deprecated==1.2.18"]


def send(transport, port):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    if transport == "grpc":
        from opentelemetry.exporter.jaeger.proto.grpc import JaegerExporter
        exporter = JaegerExporter(collector_endpoint=f"127.0.0.1:{port}", insecure=True)
    elif transport == "http":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter
        exporter = JaegerExporter(collector_endpoint=f"http://127.0.0.1:{port}/api/traces")
    else:
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter
        exporter = JaegerExporter(agent_host_name="127.0.0.1", agent_port=port)
    tp = TracerProvider(resource=Resource.create({"service.name": f"jaeger-{transport}"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tp.get_tracer("jaeger.interop", "2.0")
    sent = {}
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        for i in range(N_CHILDREN):
            links = [Link(root.get_span_context())] if i == 0 else []
            with tracer.start_as_current_span(
                f"child-{i}", kind=SpanKind.CLIENT, links=links,
                attributes={"i": i, "transport": transport, "ok": i % 2 == 0, "ratio": i + 0.5},
            ) as child:
                child.add_event("cache", {"hit": i % 2 == 0})
                if i == 3:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
                if i == 4:
                    child.set_status(Status(StatusCode.OK))
            sent[f"child-{i}"] = child
    sent["root"] = root
    tp.shutdown()
    return {name: {"trace_id": sp.get_span_context().trace_id,
                   "span_id": sp.get_span_context().span_id,
                   "parent": sp.parent.span_id if sp.parent else None,
                   "start": sp.start_time, "end": sp.end_time,
                   "sdk_version": sp.resource.attributes.get("telemetry.sdk.version"),
                   "events": [e.timestamp for e in sp.events]}
            for name, sp in sent.items()}


def jaeger_python():
    probe = "import opentelemetry.exporter.jaeger.thrift, opentelemetry.exporter.jaeger.proto.grpc"
    return venv_python("JAEGER_PYTHON", "weir-jaeger-venv", probe, PACKAGES,
                       env=dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python"))


def proto_ns(nsec):
    """What the gRPC exporter sends for a time: it goes through float seconds
    (`_proto_timestamp_from_epoch_nanos`), losing up to a few hundred nanoseconds."""
    t = nsec / 1e9
    seconds = int(t)
    return seconds * 1_000_000_000 + int((t - seconds) * 1e9)


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-jaeger-")
    http_port, udp_port, grpc_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    out = os.path.join(tmp, "out.jsonl")
    cfg = os.path.join(tmp, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  jaeger:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
      thrift_http:
        endpoint: 127.0.0.1:{http_port}
      thrift_compact:
        endpoint: 127.0.0.1:{udp_port}
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [jaeger]
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
        wait_port(http_port, proc)
        py = jaeger_python()
        sent = {}
        env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
        for transport, port in (("http", http_port), ("udp", udp_port), ("grpc", grpc_port)):
            res = subprocess.run([py, os.path.abspath(__file__), "--send", transport, str(port)],
                                 check=True, capture_output=True, text=True, env=env)
            sent[transport] = json.loads(res.stdout)
        time.sleep(1.0)
        proc.terminate()
        proc.wait(timeout=20)
        check("weir exits 0 on SIGTERM", proc.returncode == 0, f"exit {proc.returncode}")
        docs = read_lines(out)
        for transport, spans_sent in sent.items():
            svc = f"jaeger-{transport}"
            got, scopes = {}, {}
            sdk_version = next(iter(spans_sent.values()))["sdk_version"]
            for d in docs:
                for rs in d.get("resourceSpans", []):
                    rattrs = attrs(rs.get("resource", {}).get("attributes"))
                    if rattrs.get("service.name") != svc:
                        continue
                    if transport == "grpc":
                        # The gRPC exporter sends the resource as each span's process tags.
                        want_r = {"service.name": svc, "telemetry.sdk.language": "python",
                                  "telemetry.sdk.name": "opentelemetry",
                                  "telemetry.sdk.version": sdk_version}
                    else:
                        want_r = {"service.name": svc}
                    check(f"{transport}: resource is the process", rattrs == want_r,
                          f"{rattrs} vs {want_r}")
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            got[sp["name"]] = sp
                            scopes[sp["name"]] = ss.get("scope", {})
            check(f"{transport}: exactly {N_CHILDREN + 1} spans arrive",
                  sorted(got) == sorted(spans_sent), f"{sorted(got)}")
            for name, s in spans_sent.items():
                if name not in got:
                    continue
                sp = got[name]
                check(f"{transport} {name}: trace id, span id, parent",
                      sp.get("traceId") == hexid(s["trace_id"], 32)
                      and sp.get("spanId") == hexid(s["span_id"], 16)
                      and sp.get("parentSpanId", "") == (hexid(s["parent"], 16) if s["parent"] else ""),
                      f"{sp.get('traceId')} {sp.get('spanId')} {sp.get('parentSpanId')}")
                want_kind = 2 if name == "root" else 3
                check(f"{transport} {name}: kind", sp.get("kind", 0) == want_kind, f"{sp.get('kind')}")
                check(f"{transport} {name}: sampled flag", sp.get("flags", 0) & 1 == 1, f"{sp.get('flags')}")
                start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
                want_start = (s["start"] + 500) // 1000 * 1000
                want_end = want_start + ((s["end"] - s["start"] + 500) // 1000) * 1000
                if transport == "grpc":
                    # Protobuf timestamps: start, and start + (end - start) as sent.
                    want_start, want_end = proto_ns(s["start"]), proto_ns(s["end"])
                check(f"{transport} {name}: start and end (µs)", (start, end) == (want_start, want_end),
                      f"{start} {end} vs {want_start} {want_end}")
                a = attrs(sp.get("attributes"))
                want = {"service.name": svc, "telemetry.sdk.language": "python",
                        "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": s["sdk_version"],
                        "otel.library.name": "jaeger.interop", "otel.library.version": "2.0",
                        "otel.scope.name": "jaeger.interop", "otel.scope.version": "2.0"}
                if transport == "grpc":
                    # Over gRPC the Collector's translator takes otel.scope.* as the scope.
                    del want["otel.scope.name"], want["otel.scope.version"]
                    sc = scopes[name]
                    check(f"{transport} {name}: scope from otel.scope.name/version",
                          sc.get("name") == "jaeger.interop" and sc.get("version") == "2.0", f"{sc}")
                status = sp.get("status", {})
                if name == "root":
                    check(f"{transport} {name}: attributes (resource and scope tags stay span attributes)",
                          a == want, f"{a} vs {want}")
                    check(f"{transport} {name}: no status", status in ({}, None), f"{status}")
                    continue
                i = int(name.split("-")[1])
                # Typed Thrift tags keep their types: ints, booleans, doubles.
                want.update({"i": str(i), "transport": transport, "ok": i % 2 == 0, "ratio": i + 0.5})
                check(f"{transport} {name}: typed attributes", a == want, f"{a} vs {want}")
                if i == 3:
                    check(f"{transport} {name}: status ERROR with its description",
                          status.get("code") in (2, "STATUS_CODE_ERROR") and status.get("message") == "boom",
                          f"{status}")
                elif i == 4:
                    check(f"{transport} {name}: status OK", status.get("code") in (1, "STATUS_CODE_OK"), f"{status}")
                else:
                    check(f"{transport} {name}: no status", status in ({}, None), f"{status}")
                events = sp.get("events", [])
                # The SDK writes the event name as a "message" field; the Collector names
                # events by an "event" field only, so the name stays an attribute.
                ev_ok = (len(events) == 1 and events[0].get("name", "") == ""
                         and attrs(events[0].get("attributes")) == {"hit": i % 2 == 0, "message": "cache"}
                         and int(events[0]["timeUnixNano"]) == (
                             proto_ns(s["events"][0]) if transport == "grpc"
                             else (s["events"][0] + 500) // 1000 * 1000))
                check(f"{transport} {name}: event", ev_ok, f"{events}")
                links = sp.get("links", [])
                if i == 0:
                    root = spans_sent["root"]
                    check(f"{transport} {name}: link (FOLLOWS_FROM reference)",
                          len(links) == 1 and links[0].get("spanId") == hexid(root["span_id"], 16)
                          and attrs(links[0].get("attributes")) == {"opentracing.ref_type": "follows_from"},
                          f"{links}")
                else:
                    check(f"{transport} {name}: no links", links == [], f"{links}")
    except Exception as e:
        check("run", False, repr(e))
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"{passed} passed, {failed} failed")
    if failed:
        print(open(os.path.join(tmp, "weir.log")).read()[-3000:])
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "--send":
        print(json.dumps(send(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
