#!/usr/bin/env python3
"""Collector config forms with real traffic: the official OpenTelemetry Python SDK sends logs
and metrics to a real weir whose config uses what collector configs write and Weir once
misread or refused:

  logs:    attributes with YAML 1.1 boolean spellings as keys and values (`key: n`,
           `value: on`) -> transform (merge_maps(attributes, ParseJSON(body), "upsert")
           where IsMatch(body, "^\\{"); append) -> file
  metrics: metricstransform combine (regexp group as a label, sum) and group
           (group_resource_labels) -> file

The test reads what the `file` exporters wrote and checks exact attribute values.

usage: collector_config_forms.py WEIR_BINARY
Prints one line per check and 'N passed, N failed'; exits non-zero on failure.
"""
import os, shutil, subprocess, sys, tempfile

from common import attrs, free_port, read_lines, wait_port
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-forms-")
    port = free_port()
    logs_path, metrics_path = os.path.join(tmp, "logs.json"), os.path.join(tmp, "metrics.json")
    cfg = os.path.join(tmp, "weir.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
processors:
  attributes:
    actions: [{{key: n, action: delete}}, {{key: y, value: on, action: upsert}}]
  transform:
    log_statements:
      - context: log
        statements:
          - merge_maps(attributes, ParseJSON(body), "upsert") where IsMatch(body, "^\\\\{{")
          - append(attributes["tags"], "prod")
  metricstransform:
    transforms:
      - include: ^system\\.cpu\\.(?P<state>.*)$
        match_type: regexp
        action: combine
        new_name: system.cpu.time
        aggregation_type: sum
      - include: container.memory.usage
        action: group
        group_resource_labels: {{resource.type: container}}
exporters:
  file/logs: {{path: {logs_path}}}
  file/metrics: {{path: {metrics_path}}}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs: {{receivers: [otlp], processors: [attributes, transform], exporters: [file/logs]}}
    metrics: {{receivers: [otlp], processors: [metricstransform], exporters: [file/metrics]}}
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
        ep = f"http://127.0.0.1:{port}"
        lp = LoggerProvider()
        lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=ep, insecure=True)))
        lg = lp.get_logger("forms.test")
        lg.emit(body='{"user":"ann","count":2}', attributes={"n": "x", "y": "old", "tags": ["a"]})
        lg.emit(body="plain", attributes={"tags": "one"})
        lp.shutdown()
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=ep, insecure=True),
                                               export_interval_millis=600000)
        mp = MeterProvider(metric_readers=[reader])
        meter = mp.get_meter("forms.test")
        meter.create_counter("system.cpu.user").add(1)
        meter.create_counter("system.cpu.system").add(2)
        meter.create_counter("container.memory.usage").add(5)
        mp.shutdown()
        proc.terminate()
        proc.wait(timeout=20)

        records = [(lr["body"]["stringValue"], attrs(lr.get("attributes")))
                   for d in read_lines(logs_path) for r in d.get("resourceLogs", [])
                   for s in r.get("scopeLogs", []) for lr in s.get("logRecords", [])]
        check("2 log records arrive", len(records) == 2, f"{records}")
        by_body = dict(records)
        json_rec = by_body.get('{"user":"ann","count":2}', {})
        check("attributes: key n deleted, key y upserted with the string 'on'",
              "n" not in json_rec and json_rec.get("y") == "on", f"{json_rec}")
        check("transform: ParseJSON merged user (string) and count (double 2.0)",
              json_rec.get("user") == "ann" and json_rec.get("count") == 2.0, f"{json_rec}")
        check("transform: append added prod to a list, and made a list of a string",
              json_rec.get("tags") == {"values": [{"stringValue": "a"}, {"stringValue": "prod"}]}
              and by_body.get("plain", {}).get("tags") == {"values": [{"stringValue": "one"}, {"stringValue": "prod"}]},
              f"{records}")
        check("transform: the where clause kept ParseJSON off the plain body",
              set(by_body.get("plain", {})) == {"tags", "y"}, f"{by_body.get('plain')}")

        got = []
        for d in read_lines(metrics_path):
            for r in d.get("resourceMetrics", []):
                res = attrs(r.get("resource", {}).get("attributes")).get("resource.type")
                for s in r.get("scopeMetrics", []):
                    for m in s.get("metrics", []):
                        for p in m.get("sum", {}).get("dataPoints", []):
                            got.append((res, m["name"], tuple(sorted(attrs(p.get("attributes")).items())),
                                        p.get("asInt")))
        want = sorted([(None, "system.cpu.time", (("state", "system"),), "2"),
                       (None, "system.cpu.time", (("state", "user"),), "1"),
                       ("container", "container.memory.usage", (), "5")], key=str)
        check("metricstransform: combine labelled the points by the regexp group; group moved "
              "container.memory.usage to a resource with resource.type=container, exactly",
              sorted(got, key=str) == want, f"{got}")
    except Exception as e:  # noqa: BLE001 - report any failure as a failed check
        check("collector config forms run", False, repr(e))
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
