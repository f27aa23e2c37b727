#!/usr/bin/env python3
"""End-to-end test of the control plane's advice (issue 15), with real processes.

A control plane (`weir` with the control_plane extension, a real SQLite file) and an edge
(`weir`: OTLP in -> policy (synced from the control plane) -> file; metadata to the control
plane's catalog). Telemetry comes from the official OpenTelemetry Python SDK: three systems of
../shared/datasets/loghub-2k (Linux, Apache, HDFS), plus planted waste in service `shop`:
health checks that pass (INFO) and fail (ERROR), DEBUG by severity text and by number only,
one ERROR body from 103 nodes, an 800-record burst of one line; and in service `billing` a
counter whose `user_id` attribute makes ~2000 series (past the SDK's cardinality limit). Every record's time lies in
one hour, so the projection window is exactly 1h.

Checks, with exact numbers: the safety rule (no WARN/ERROR or security-relevant record in any
suggestion unless the finding is about exactly those, with a floor), the dry-run breakdowns,
number-only severities not claimed, duplicates keyed on attributes, bursts independent of
share, one ledger (API findings == overview == `weir catalog report`), metric cardinality,
measured hits after enforcement (records and bytes, shadow/enforced split), and a restarted
edge keeping its identity.

usage: advice_e2e.py WEIR_BINARY
Prints one line per check and 'N passed, N failed'; exits non-zero on failure.
"""
import csv, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

from common import free_port, wait_port
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

HERE = os.path.dirname(os.path.abspath(__file__))
# The datasets beside the repository (../shared), or where WEIR_LOGHUB_2K says.
LOGHUB = os.environ.get("WEIR_LOGHUB_2K") or os.path.normpath(
    os.path.join(HERE, "../../../shared/datasets/loghub-2k"))
HOUR_NS = 3600 * 10**9
T0 = (int(time.time()) - 7200) * 10**9

LEVELS = {
    "info": ("INFO", SeverityNumber.INFO),
    "notice": ("notice", SeverityNumber.INFO2),
    "warn": ("WARN", SeverityNumber.WARN),
    "error": ("error", SeverityNumber.ERROR),
}






def api(port, path, token, method="GET", body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def wait_for(what, f, timeout=30):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = f()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}: {last!r}")


def loghub(system):
    """(body, severity text, severity number) per line of a loghub-2k system."""
    path = os.path.join(LOGHUB, system, f"{system}_2k.log_structured.csv")
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            lv = LEVELS.get(row.get("Level", "").lower())
            yield row["Content"], lv


def shop_records():
    """The planted waste: (time, body, text, number, attributes). Counts are exact."""
    r = []
    at = lambda i, n: T0 + i * (HOUR_NS // n)
    for i in range(600):
        r.append((at(i, 600), f"request {i} served in {i % 97} ms", "INFO", SeverityNumber.INFO, {"http.route": "/items"}))
    for i in range(300):
        r.append((at(i, 300), "readiness probe ok", "INFO", SeverityNumber.INFO, {}))
    for i in range(40):
        r.append((at(i, 40), f"health check failed: dependency db-{i} unreachable", "ERROR", SeverityNumber.ERROR, {}))
    for i in range(200):
        r.append((at(i, 200), f"cache lookup key {i} hit", "DEBUG", SeverityNumber.DEBUG, {}))
    for i in range(150):
        r.append((at(i, 150), f"pool stats idle {i} busy 3", None, SeverityNumber.DEBUG2, {}))
    for i in range(103):
        r.append((at(1, 2) + i * 1000, "disk quota exceeded on volume data", "ERROR", SeverityNumber.ERROR, {"node": f"node-{i}"}))
    for i in range(800):
        r.append((at(1, 3) + i * 1_000_000, "retrying connection to broker", "INFO", SeverityNumber.INFO, {}))
    r.append((T0, "service started", "INFO", SeverityNumber.INFO, {}))
    r.append((T0 + HOUR_NS, "service stopping", "INFO", SeverityNumber.INFO, {}))
    r.sort(key=lambda x: x[0])
    return r


def send_logs(port, service, records):
    lp = LoggerProvider(resource=Resource.create({"service.name": service}))
    lp.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True),
        max_export_batch_size=512, schedule_delay_millis=50, max_queue_size=20000))
    logger = lp.get_logger("advice.e2e")
    for t, body, text, number, attrs in records:
        kw = dict(body=body, timestamp=t, observed_timestamp=t, attributes=attrs)
        if number is not None:
            kw["severity_number"] = number
        if text is not None:
            kw["severity_text"] = text
        logger.emit(**kw)
    lp.force_flush()
    lp.shutdown()


def send_metrics(port):
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True),
        export_interval_millis=3_600_000)
    mp = MeterProvider(resource=Resource.create({"service.name": "billing"}), metric_readers=[reader])
    c = mp.get_meter("advice.e2e").create_counter("app.requests", unit="1")
    for i in range(2100):
        c.add(1, {"user_id": f"u{i}", "region": "eu" if i % 2 else "us"})
    mp.force_flush()
    mp.shutdown()


def main():
    weir = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="weir-advice-")
    db = os.path.join(tmp, "cp.db")
    p = {k: free_port() for k in ("cp", "cp_otlp", "cp_metrics", "edge_grpc", "edge_http", "edge_metrics")}
    out = os.path.join(tmp, "upstream.jsonl")

    def token(*args):
        return subprocess.run([weir, "admin", "token", "create", "--db", db, *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    admin, edge_token = token("--role", "admin"), token("--role", "edge", "--edge", "edge-1")
    with open(os.path.join(tmp, "cp.yaml"), "w") as f:
        f.write(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{p['cp_otlp']}}}}}}}
exporters:
  catalog: {{storage: {db}}}
extensions:
  control_plane: {{endpoint: 127.0.0.1:{p['cp']}, storage: {db}, sync_interval: 1s}}
service:
  extensions: [control_plane]
  telemetry: {{metrics: {{address: 127.0.0.1:{p['cp_metrics']}}}}}
  pipelines:
    logs: {{receivers: [otlp], exporters: [catalog]}}
""")
    edge_cfg = os.path.join(tmp, "edge.yaml")
    with open(edge_cfg, "w") as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{p['edge_grpc']}}}
      http: {{endpoint: 127.0.0.1:{p['edge_http']}}}
processors:
  policy:
    sources:
      - http:
          endpoint: http://127.0.0.1:{p['cp']}/v1/policy/sync
          headers: {{authorization: "Bearer {edge_token}"}}
          cache_dir: {tmp}/edge-cache
    client: {{service_name: weir-edge}}
exporters:
  file: {{path: {out}, flush_interval: 100ms}}
  catalog:
    endpoint: http://127.0.0.1:{p['cp']}
    token: {edge_token}
    flush_interval: 1s
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{p['edge_metrics']}}}}}
  pipelines:
    logs: {{receivers: [otlp], processors: [policy], exporters: [file]}}
    metrics: {{receivers: [otlp], processors: [policy], exporters: [file]}}
    logs/catalog: {{receivers: [otlp], exporters: [catalog]}}
    metrics/catalog: {{receivers: [otlp], exporters: [catalog]}}
""")
    procs = []

    def start(cfg, name):
        log = open(os.path.join(tmp, name), "w")
        pr = subprocess.Popen([weir, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
        procs.append(pr)
        return pr

    passed, failed = 0, 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)

    try:
        cp = start(os.path.join(tmp, "cp.yaml"), "cp.log")
        wait_port(p["cp"], cp)
        edge = start(edge_cfg, "edge.log")
        wait_port(p["edge_grpc"], edge)
        # Value hashes are keyed with the deployment's key, which the edge fetches first.
        wait_for("the edge to get the sketch key", lambda: "sketch key of the deployment in use"
                 in open(os.path.join(tmp, "edge.log")).read())

        sent = {}
        for system in ("Linux", "Apache", "HDFS"):
            lines = list(loghub(system))
            recs = [(T0 + i * (HOUR_NS // (len(lines) - 1)), b, lv[0] if lv else None, lv[1] if lv else None, {})
                    for i, (b, lv) in enumerate(lines)]
            send_logs(p["edge_grpc"], system.lower(), recs)
            sent[system.lower()] = len(recs)
        shop = shop_records()
        send_logs(p["edge_grpc"], "shop", shop)
        sent["shop"] = len(shop)
        send_metrics(p["edge_grpc"])

        def catalog_has_all():
            listed = api(p["cp"], "/api/v1/services", admin)["services"]
            svcs = {s["service"]: s["logs_items"] for s in listed}
            points = sum(s["metrics_items"] for s in listed if s["service"] == "billing")
            return all(svcs.get(k) == n for k, n in sent.items()) and points > 0 and svcs
        wait_for("the catalog to hold every record sent", catalog_has_all)
        check("catalog volumes equal the records sent", True)

        a = api(p["cp"], "/api/v1/findings", admin)
        f = a["findings"]
        shop_f = [x for x in f if x["service"] == "shop"]
        kinds = lambda k: [x for x in shop_f if x["kind"] == k]
        drops = lambda x: {k: round(v["items"]) for k, v in x["would_drop"]["by_severity"].items()}

        h = kinds("health_check_logs")
        check("health: one finding, the 300 INFO probes only", len(h) == 1 and drops(h[0]) == {"INFO": 300}, json.dumps(h)[:400])
        d = kinds("debug_logs")
        check("DEBUG: the 200 text-DEBUG records, not the 150 number-only",
              len(d) == 1 and drops(d[0]) == {"DEBUG": 200}
              and any(e.startswith("150 more records are DEBUG/TRACE by severity number only") for e in d[0]["evidence"]),
              json.dumps(d)[:600])
        bad = []
        for x in f:
            for sev in drops(x):
                if sev.split()[0] in ("WARN", "ERROR", "FATAL", "UNKNOWN") and (
                        "WARN/ERROR" not in x["title"] or x["policy"].get("log", {}).get("keep") == "none"):
                    bad.append(x["id"])
        check("no suggestion drops WARN+ unless about exactly those, with a floor", not bad, str(bad))
        words = ("authentication", "password", "session opened", "session closed")
        sec = [x["title"] for x in f if any(w in (x["title"] + " ".join(x["evidence"])).lower() for w in words)]
        check("security-relevant templates are never in a suggestion", not sec, str(sec)[:400])
        dups = kinds("duplicate_bursts")
        check("duplicates: only the 800 identical broker lines, not the 103-node ERROR",
              len(dups) == 1 and "799 of 800 records repeat" in dups[0]["evidence"][0], json.dumps(dups)[:400])
        bursts = kinds("burst")
        broker = [b for b in bursts if "800 records" in b["title"]]
        check("burst: 800 broker lines, a 1/s limit drops 799", len(broker) == 1 and drops(broker[0]) == {"INFO": 799}
              and broker[0]["policy"]["log"]["keep"] == "1/s", json.dumps(bursts)[:400])
        check("shop projection window is the hour of data",
              all(x["projection"] == "projected per day from the last 1h 0m of data" for x in shop_f))

        o = api(p["cp"], "/api/v1/overview", admin)
        total = a["saving_bytes_per_day"]
        check("ledger: findings total == sum of findings == overview",
              abs(total - sum(x["saving_bytes_per_day"] for x in f)) < 1e-3 and abs(o["saving_bytes_per_day"] - total) < 1e-3,
              f"{total} {o['saving_bytes_per_day']}")
        rep = subprocess.run([weir, "catalog", "report", "--db", db, "--top", "100"], capture_output=True, text=True)
        line = next((l for l in rep.stdout.splitlines() if l.startswith("TOTAL SAVING/DAY")), "")
        v, i = total, 0
        while v >= 1000 and i < 4:
            v, i = v / 1000, i + 1
        human = f"{v:.1f} {['B', 'KB', 'MB', 'GB', 'TB'][i]}"
        check("ledger: CLI report shows the same total", human in line, f"{human!r} not in {line!r}\n{rep.stderr}")

        m = [x for x in f if x["service"] == "billing" and x["kind"] == "metric_cardinality"]
        check("metric cardinality: app.requests, driven by user_id, SDK overflow flagged",
              len(m) == 1 and "driven by attribute user_id" in m[0]["title"] and "SDK cardinality limit hit" in m[0]["title"],
              json.dumps(m)[:500])

        # Enforce the DEBUG finding; the edge drops the next 200 DEBUG records and reports it.
        debug_id = d[0]["id"]
        api(p["cp"], f"/api/v1/findings/{debug_id}/accept", admin, "POST", {"shadow": False})
        wait_for("the edge to sync the DEBUG policy", lambda: any(
            e["in_sync"] for e in api(p["cp"], "/api/v1/policies", admin)["edges"]))
        t = T0 + HOUR_NS // 2
        send_logs(p["edge_grpc"], "shop", [(t + i, f"cache lookup key {i} hit", "DEBUG", SeverityNumber.DEBUG, {}) for i in range(200)])

        def measured():
            acc = [x for x in api(p["cp"], "/api/v1/findings", admin)["accepted"] if x["id"] == debug_id]
            return acc and acc[0]["measured"]["enforced_items"] == 200 and acc[0]
        acc = wait_for("the edge's hits to reach the control plane", measured)
        mm = acc["measured"]
        per_rec = d[0]["would_drop"]["by_severity"]["DEBUG"]["bytes"] / 200
        check("measured after enforcement: 200 records, bytes, none in shadow",
              mm["enforced_items"] == 200 and mm["shadow_items"] == 0 and abs(mm["enforced_bytes"] - 200 * per_rec) < 1e-6,
              json.dumps(mm))
        pol = [x for x in api(p["cp"], "/api/v1/policies", admin)["policies"] if x["policy"]["id"] == debug_id][0]
        check("policy hits split by mode, in bytes", pol["enforced_hits"] == 200 and pol["shadow_hits"] == 0
              and abs(pol["enforced_bytes"] - 200 * per_rec) < 1e-6, json.dumps(pol)[:300])

        # A restarted edge keeps its identity.
        first = [e["edge"] for e in api(p["cp"], "/api/v1/policies", admin)["edges"]]
        edge.terminate()
        edge.wait(timeout=20)
        edge = start(edge_cfg, "edge2.log")
        wait_port(p["edge_grpc"], edge)
        time.sleep(1.5)
        again = [e["edge"] for e in api(p["cp"], "/api/v1/policies", admin)["edges"]]
        check("restarted edge keeps its instance id", len(first) == 1 and again == first, f"{first} {again}")
    except Exception as e:  # noqa: BLE001 - report any failure as a failed check
        check("advice e2e run", False, repr(e))
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.terminate()
                try:
                    pr.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pr.kill()
        if failed:
            for name in ("cp.log", "edge.log"):
                path = os.path.join(tmp, name)
                if os.path.exists(path):
                    print(f"--- {name} (last 30 lines)")
                    print("".join(open(path).readlines()[-30:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
