#!/usr/bin/env python3
"""Interop test: the OpenTelemetry Python SDK's Zipkin exporters (from PyPI) talk to a real
weir's `zipkin` receiver.

Starts `weir` with a `zipkin` receiver and a `file` exporter, sends spans with
opentelemetry-exporter-zipkin-json (v2 JSON and v1 JSON) and
opentelemetry-exporter-zipkin-proto-http (v2 protobuf), then reads the exporter's OTLP JSON
lines and checks every span: ids, parent, name, kind, times, attributes, events, status and
the resource's service name, translated as the Collector's zipkin receiver does.

opentelemetry-exporter-zipkin-proto-http pins protobuf 3.x, which the OTLP exporters of
tests/requirements.txt cannot use (protobuf >= 5): its sender runs in a virtualenv of its own
(created on first use in ~/.cache/weir-zipkin-proto-venv, or $ZIPKIN_PROTO_PYTHON), this same
script in `--send` mode, which prints what it sent as JSON.

usage: zipkin_sdk.py WEIR_BINARY
       zipkin_sdk.py --send PROTOCOL PORT
Prints one line per check and a closing line 'N passed, N failed'; exits non-zero on failure.
"""
import json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import attrs, free_port, hexid, read_lines, venv_python, wait_port
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

N_CHILDREN = 6


def send(protocol, port):
    """Sends one trace (a SERVER root and N_CHILDREN CLIENT children) with `protocol`:
    v2json, v1json or v2proto. Returns what was sent, per span name."""
    if protocol == "v2proto":
        from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter
        exporter = ZipkinExporter(endpoint=f"http://127.0.0.1:{port}/api/v2/spans")
    else:
        from opentelemetry.exporter.zipkin.json import ZipkinExporter
        from opentelemetry.exporter.zipkin.encoder import Protocol
        version = Protocol.V1 if protocol == "v1json" else Protocol.V2
        path = "/api/v1/spans" if protocol == "v1json" else "/api/v2/spans"
        # The SDK's v1 encoder fails on the default max_tag_value_length (None).
        exporter = ZipkinExporter(version=version, endpoint=f"http://127.0.0.1:{port}{path}",
                                  max_tag_value_length=4096)
    tp = TracerProvider(resource=Resource.create({"service.name": f"zipkin-{protocol}"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tp.get_tracer("zipkin.interop", "3.1")
    sent = {}
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        for i in range(N_CHILDREN):
            with tracer.start_as_current_span(
                f"child-{i}", kind=SpanKind.CLIENT,
                attributes={"i": i, "proto": protocol, "ok": i % 2 == 0, "ratio": i + 0.5},
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
                   "events": [e.timestamp for e in sp.events]}
            for name, sp in sent.items()}


def proto_python():
    """The python of a virtualenv with opentelemetry-exporter-zipkin-proto-http."""
    return venv_python("ZIPKIN_PROTO_PYTHON", "weir-zipkin-proto-venv",
                       "import opentelemetry.exporter.zipkin.proto.http",
                       ["opentelemetry-exporter-zipkin-proto-http==1.45.1"])


def send_anywhere(protocol, port):
    if protocol != "v2proto":
        return send(protocol, port)
    out = subprocess.run([proto_python(), os.path.abspath(__file__), "--send", protocol, str(port)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-zipkin-")
    port, metrics_port = free_port(), free_port()
    out = os.path.join(tmp, "out.jsonl")
    cfg = os.path.join(tmp, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  zipkin:
    endpoint: 127.0.0.1:{port}
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
      receivers: [zipkin]
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
        wait_port(port, proc)
        sent = {p: send_anywhere(p, port) for p in ("v2json", "v1json", "v2proto")}
        time.sleep(0.5)
        proc.terminate()
        proc.wait(timeout=20)
        check("weir exits 0 on SIGTERM", proc.returncode == 0, f"exit {proc.returncode}")
        docs = read_lines(out)
        for protocol, spans_sent in sent.items():
            svc = f"zipkin-{protocol}"
            got, resources = {}, []
            for d in docs:
                for rs in d.get("resourceSpans", []):
                    rattrs = attrs(rs.get("resource", {}).get("attributes"))
                    if rattrs.get("service.name") != svc:
                        continue
                    resources.append(rattrs)
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            got[sp["name"]] = (sp, ss.get("scope", {}))
            check(f"{protocol}: exactly {N_CHILDREN + 1} spans arrive",
                  len(got) == N_CHILDREN + 1 and sorted(got) == sorted(spans_sent),
                  f"{sorted(got)}")
            if protocol == "v1json":
                check(f"{protocol}: resource is the v1 endpoint's service name",
                      all(r == {"service.name": svc} for r in resources), f"{resources}")
            else:
                # The SDK's resource attributes travel as tags; the semantic-convention ones
                # go back to the resource.
                want = {"service.name": svc, "telemetry.sdk.language": "python",
                        "telemetry.sdk.name": "opentelemetry"}
                check(f"{protocol}: resource from localEndpoint and resource tags",
                      all({k: r.get(k) for k in want} == want and "telemetry.sdk.version" in r
                          for r in resources) and len(resources) >= 1, f"{resources}")
            for name, s in spans_sent.items():
                if name not in got:
                    continue
                sp, scope = got[name]
                ok_ids = (sp.get("traceId") == hexid(s["trace_id"], 32)
                          and sp.get("spanId") == hexid(s["span_id"], 16))
                parent = sp.get("parentSpanId", "")
                want_parent = hexid(s["parent"], 16) if s["parent"] else ""
                check(f"{protocol} {name}: trace id, span id, parent", ok_ids and parent == want_parent,
                      f"{sp.get('traceId')} {sp.get('spanId')} {parent!r} vs {want_parent!r}")
                want_kind = 2 if name == "root" else 3
                if protocol == "v1json":
                    # The SDK's v1 encoder sends no cs/sr annotations: no kind, as in the Collector.
                    want_kind = 0
                kind = sp.get("kind", 0)
                check(f"{protocol} {name}: kind", kind == want_kind, f"{kind} vs {want_kind}")
                start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
                want_start = (s["start"] + 500) // 1000 * 1000
                # The SDK sends timestamp + duration, each rounded to microseconds.
                want_end = want_start + ((s["end"] - s["start"] + 500) // 1000) * 1000
                check(f"{protocol} {name}: start and end (µs)", (start, end) == (want_start, want_end),
                      f"{start} {end} vs {want_start} {want_end}")
                a = attrs(sp.get("attributes"))
                if name == "root":
                    continue
                i = int(name.split("-")[1])
                want = {"i": str(i), "proto": protocol, "ok": "true" if i % 2 == 0 else "false",
                        "ratio": str(i + 0.5)}
                want["otel.scope.name"] = "zipkin.interop"
                want["otel.scope.version"] = "3.1"
                if i == 3 and protocol != "v1json":
                    # The SDK sends error=<description>: ERROR, the tag kept as an attribute
                    # (v1 consumes the error tag).
                    want["error"] = "boom"
                if protocol == "v1json":
                    # v1 keeps every binary annotation: the resource's and the scope's too.
                    want.update({"service.name": svc, "telemetry.sdk.language": "python",
                                 "telemetry.sdk.name": "opentelemetry",
                                 "telemetry.sdk.version": a.get("telemetry.sdk.version"),
                                 "service.instance.id": a.get("service.instance.id", "(missing)"),
                                 "otel.library.name": "zipkin.interop", "otel.library.version": "3.1"})
                got_a = {k: v for k, v in a.items() if k not in ("net.host.ip", "net.host.port")}
                check(f"{protocol} {name}: attributes", got_a == want, f"{got_a} vs {want}")
                status = sp.get("status", {})
                code = status.get("code")
                if i == 3:
                    check(f"{protocol} {name}: status ERROR", code in ("STATUS_CODE_ERROR", 2), f"{status}")
                else:
                    # The SDK writes otel.status_code "OK", which the Collector's translator
                    # does not know: UNSET, as there.
                    check(f"{protocol} {name}: status UNSET", code in (None, 0, "STATUS_CODE_UNSET"), f"{status}")
                events = sp.get("events", [])
                want_ev = json.dumps({"cache": {"hit": i % 2 == 0}}, sort_keys=True)
                check(f"{protocol} {name}: event (the SDK's JSON annotation is the name)",
                      [e.get("name") for e in events] == [want_ev]
                      and int(events[0]["timeUnixNano"]) == (s["events"][0] + 500) // 1000 * 1000,
                      f"{events}")
                if protocol != "v1json":
                    check(f"{protocol} {name}: scope from otel.library.name/version",
                          scope.get("name") == "zipkin.interop" and scope.get("version") == "3.1", f"{scope}")
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
