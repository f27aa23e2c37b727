//! `weir-bench fleet`: a control plane under a simulated fleet. It starts the `weir` binary
//! as a control plane on loopback (a fresh, encrypted store), creates one edge token per
//! simulated edge through the API, builds catalog summaries with the real metadata
//! summariser from the generator's OTLP load, and then runs N edges that each ship a
//! summary every flush interval (`POST /api/v1/ingest`, numbered with
//! `x-weir-summary-seq`, a refused or timed-out one sent again with the same number) and
//! sync policies every sync interval (`POST /v1/policy/sync`, protobuf), plus one viewer
//! polling the overview, services and findings. It reports latency percentiles, the
//! server's CPU and RSS, the database's growth, and whether the catalog's volumes are
//! exactly what was acknowledged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use prost::Message;
use weir_api::Signal;
use weir_summary::{CatalogSummary, MetadataConfig, MetadataHandle, SketchKey};

use crate::generate::{Generator, Mix};

/// Settings of one fleet run.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    /// The weir binary.
    pub weir: PathBuf,
    /// Simulated edges.
    pub edges: usize,
    /// Services in the fleet's catalog.
    pub services: usize,
    /// Services each edge reports.
    pub services_per_edge: usize,
    /// Catalog flush interval of an edge (before compression).
    pub flush: Duration,
    /// Policy sync interval of an edge (before compression).
    pub sync: Duration,
    /// Intervals are divided by this.
    pub compress: f64,
    /// Measured time.
    pub duration: Duration,
    /// How often the viewer loads each page.
    pub viewer_interval: Duration,
    /// The edge's request timeout (the catalog exporter's is 30 s).
    pub timeout: Duration,
    /// Where the store and the config go (emptied first).
    pub workdir: PathBuf,
    /// Log records per service per flush put through the summariser.
    pub items: usize,
    /// Extra `--set` options for the control plane.
    pub set: Vec<String>,
}

/// What a fleet run measured.
#[derive(Debug, serde::Serialize)]
pub struct FleetReport {
    /// Edges simulated.
    pub edges: usize,
    /// Compression factor.
    pub compress: f64,
    /// Ingest requests per second offered (edges / flush interval).
    pub ingest_rate: f64,
    /// Ingest latency (ms): p50, p99, max of accepted requests.
    pub ingest_ms: [f64; 3],
    /// Ingests accepted.
    pub ingest_ok: u64,
    /// Ingests answered 503 or 429 (sent again later).
    pub ingest_shed: u64,
    /// Ingests that timed out or failed otherwise (sent again later).
    pub ingest_failed: u64,
    /// Sync latency (ms): p50, p99, max.
    pub sync_ms: [f64; 3],
    /// Syncs answered.
    pub sync_ok: u64,
    /// Syncs answered 503 or 429 (shed).
    pub sync_shed: u64,
    /// Syncs refused otherwise, timed out or failed.
    pub sync_failed: u64,
    /// Page loads answered 503 or 429 (shed).
    pub pages_shed: u64,
    /// Page latency (ms) per page: p50, p99, max.
    pub pages_ms: BTreeMap<String, [f64; 3]>,
    /// Server CPU seconds per second over the measured time.
    pub cpu_cores: f64,
    /// This harness's own CPU seconds per second over the measured time (it shares the
    /// machine's cores with the server: the simulated edges and the viewer are one
    /// process, this one).
    pub bench_cpu_cores: f64,
    /// The machine's 1-minute load average at the end of the measured time.
    pub load_avg: f64,
    /// Largest RSS of the server (MiB).
    pub max_rss_mib: f64,
    /// Database files (db, -wal) before and after the measured time (MiB).
    pub db_mib: [f64; 2],
    /// Items the catalog should hold (acknowledged summaries) and holds.
    pub volumes_expected: u64,
    /// Items the catalog holds.
    pub volumes_stored: u64,
    /// Services whose stored volume differs from the acknowledged one.
    pub services_off: usize,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn dir_db_bytes(db: &Path) -> u64 {
    let mut n = 0;
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        n += std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len());
    }
    n
}

/// (utime + stime) in seconds and RSS in bytes of a process.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tick;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    Some((cpu, rss_pages * 4096))
}

async fn request(
    client: &HttpClient,
    method: hyper::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Full::new(body))?;
    let fut = async {
        let resp = client.request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))?
}

fn start_server(plan: &FleetPlan) -> anyhow::Result<(Server, String, PathBuf)> {
    let _ = std::fs::remove_dir_all(&plan.workdir);
    std::fs::create_dir_all(&plan.workdir)?;
    let db = plan.workdir.join("catalog.db");
    let out = Command::new(&plan.weir)
        .args([
            "admin", "token", "create", "--role", "admin", "--name", "bench",
        ])
        .arg("--db")
        .arg(&db)
        .args(["--expires", "never"])
        .output()
        .with_context(|| format!("running {}", plan.weir.display()))?;
    if !out.status.success() {
        bail!(
            "weir admin token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let admin = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|l| l.starts_with("weir_"))
        .context("no token printed")?
        .trim()
        .to_string();
    let port = free_port()?;
    let config = format!(
        r#"extensions:
  control_plane:
    endpoint: 127.0.0.1:{port}
    storage: {db}
    sync_interval: {sync}s
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
        auth:
          authenticator: control_plane
exporters:
  debug: {{}}
service:
  extensions: [control_plane]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
"#,
        db = db.display(),
        sync = plan.sync.as_secs().max(1),
        otlp = free_port()?,
    );
    let cfg = plan.workdir.join("cp.yaml");
    std::fs::write(&cfg, config)?;
    let mut cmd = Command::new(&plan.weir);
    cmd.arg("--config").arg(&cfg);
    for s in &plan.set {
        cmd.arg("--set").arg(s);
    }
    let child = cmd
        .current_dir(&plan.workdir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(plan.workdir.join("cp.log"))?)
        .spawn()
        .context("starting the control plane")?;
    Ok((
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        },
        admin,
        db,
    ))
}

/// One flush worth of a service, per template: (summary of that service, items in it).
fn templates(key: SketchKey, items: usize) -> Vec<(weir_summary::summary::ServiceSummary, u64)> {
    let handle = MetadataHandle::new(&MetadataConfig::default());
    handle.set_key(key);
    let mut g = Generator::new(7, Mix::default());
    for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
        for r in g.pool(signal, 5, items) {
            if let Ok(b) = weir_api::Batch::decode(signal, r.bytes.clone()) {
                handle.observe(&b);
            }
        }
    }
    handle
        .take()
        .services
        .into_values()
        .map(|s| {
            let n = s.logs.volume.items + s.traces.volume.items + s.metrics.volume.items;
            (s, n)
        })
        .collect()
}

fn percentiles(h: &Histogram<u64>) -> [f64; 3] {
    if h.is_empty() {
        return [0.0; 3];
    }
    [
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    ]
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

#[derive(Default)]
struct Counters {
    ingest_ok: AtomicU64,
    ingest_shed: AtomicU64,
    ingest_failed: AtomicU64,
    sync_ok: AtomicU64,
    sync_shed: AtomicU64,
    sync_failed: AtomicU64,
    pages_shed: AtomicU64,
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Runs one fleet measurement.
pub async fn run(plan: FleetPlan) -> anyhow::Result<FleetReport> {
    let (server, admin, db) = start_server(&plan)?;
    let pid = server.child.id();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build(connector);
    let auth = |t: &str| ("authorization", format!("Bearer {t}"));
    // Up?
    let started = Instant::now();
    loop {
        let r = request(
            &client,
            hyper::Method::GET,
            &format!("{}/api/v1/whoami", server.base),
            &[auth(&admin)],
            Bytes::new(),
            Duration::from_secs(2),
        )
        .await;
        if matches!(&r, Ok((s, _)) if s.is_success()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the control plane did not come up: {r:?} (see {}/cp.log)",
                plan.workdir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One edge token per edge.
    eprintln!("creating {} edge tokens", plan.edges);
    let tokens: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(vec![None; plan.edges]));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, base, admin, tokens, next, n) = (
            client.clone(),
            server.base.clone(),
            admin.clone(),
            tokens.clone(),
            next.clone(),
            plan.edges as u64,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let body = serde_json::json!({"role": "edge", "name": format!("edge-{i}"), "edge": format!("edge-{i:05}")});
                let (status, body) = request(
                    &client,
                    hyper::Method::POST,
                    &format!("{base}/api/v1/tokens"),
                    &[
                        ("authorization", format!("Bearer {admin}")),
                        ("content-type", "application/json".into()),
                    ],
                    Bytes::from(body.to_string()),
                    Duration::from_secs(60),
                )
                .await?;
                if !status.is_success() {
                    bail!("token create: {status}: {}", String::from_utf8_lossy(&body));
                }
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                let t = v["token"].as_str().context("no token")?.to_string();
                tokens.lock().unwrap_or_else(|e| e.into_inner())[i as usize] = Some(t);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let tokens: Vec<String> = tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|t| t.clone().unwrap_or_default())
        .collect();
    // The deployment's sketch key, so value hashes merge as a real edge's do.
    let (status, body) = request(
        &client,
        hyper::Method::GET,
        &format!("{}/api/v1/sketch-key", server.base),
        &[auth(&tokens[0])],
        Bytes::new(),
        Duration::from_secs(10),
    )
    .await?;
    if !status.is_success() {
        bail!("sketch key: {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let key = SketchKey::parse_hex(v["key"].as_str().unwrap_or_default())
        .context("no sketch key in the answer")?;
    let templates = templates(key, plan.items);
    if templates.is_empty() {
        bail!("the summariser produced no services");
    }
    // Edge e reports services (e*k + j) % S: S distinct bodies, built once.
    let s_count = plan.services.max(1);
    let k = plan.services_per_edge.clamp(1, s_count);
    let service_items: Vec<u64> = (0..s_count)
        .map(|i| templates[i % templates.len()].1)
        .collect();
    let mut bodies: Vec<Bytes> = Vec::with_capacity(s_count);
    let mut body_bytes = 0;
    for start in 0..s_count {
        let mut summary = CatalogSummary {
            sketch_key_id: key.id(),
            ..Default::default()
        };
        for j in 0..k {
            let i = (start + j) % s_count;
            summary.services.insert(
                format!("svc-{i:04}"),
                templates[i % templates.len()].0.clone(),
            );
        }
        let b = serde_json::to_vec(&summary)?;
        body_bytes += b.len();
        bodies.push(Bytes::from(b));
    }
    eprintln!(
        "{} edges, {} services, {} per edge, mean body {} KiB; measuring for {:?}",
        plan.edges,
        s_count,
        k,
        body_bytes / s_count / 1024,
        plan.duration
    );
    let bodies = Arc::new(bodies);
    let service_items = Arc::new(service_items);
    let expected: Arc<Vec<AtomicU64>> = Arc::new((0..s_count).map(|_| AtomicU64::new(0)).collect());
    let counters = Arc::new(Counters::default());
    let ingest_h = Arc::new(Mutex::new(hist()));
    let sync_h = Arc::new(Mutex::new(hist()));
    let pages_h: Arc<Mutex<BTreeMap<String, Histogram<u64>>>> =
        Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let flush = plan.flush.div_f64(plan.compress);
    let sync = plan.sync.div_f64(plan.compress);
    let db_before = dir_db_bytes(&db);
    let cpu_before = proc_usage(pid).map_or(0.0, |u| u.0);
    let me = std::process::id();
    let bench_cpu_before = proc_usage(me).map_or(0.0, |u| u.0);
    let t0 = Instant::now();
    let mut edges = Vec::new();
    for (e, token) in tokens.iter().enumerate() {
        {
            let (client, base, token, bodies, items, expected, counters, ingest_h, stop) = (
                client.clone(),
                server.base.clone(),
                token.clone(),
                bodies.clone(),
                service_items.clone(),
                expected.clone(),
                counters.clone(),
                ingest_h.clone(),
                stop.clone(),
            );
            let start = (e * k) % s_count;
            let timeout = plan.timeout;
            // Spread over the interval as a real fleet's start times are.
            let offset = flush.mul_f64((e as f64 * 0.618_033_988_7).fract());
            edges.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut seq: u64 = 0;
                let mut pending = false;
                let mut tick = tokio::time::interval(flush);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut after_stop = 0;
                loop {
                    tick.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        // A summary not acknowledged yet is sent again (same number) so the
                        // count at the end is settled; nothing new is sent.
                        after_stop += 1;
                        if !pending || after_stop > 5 {
                            return;
                        }
                    }
                    if !pending {
                        seq += 1;
                    }
                    let sent = Instant::now();
                    let r = request(
                        &client,
                        hyper::Method::POST,
                        &format!("{base}/api/v1/ingest"),
                        &[
                            ("authorization", format!("Bearer {token}")),
                            ("content-type", "application/json".into()),
                            ("x-weir-summary-seq", format!("bench-{e}:{seq}")),
                        ],
                        bodies[start].clone(),
                        timeout,
                    )
                    .await;
                    match r {
                        Ok((s, _)) if s.is_success() => {
                            let us = sent.elapsed().as_micros() as u64;
                            let _ = ingest_h
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .record(us.max(1));
                            counters.ingest_ok.fetch_add(1, Ordering::Relaxed);
                            for j in 0..k {
                                let i = (start + j) % items.len();
                                expected[i].fetch_add(items[i], Ordering::Relaxed);
                            }
                            pending = false;
                        }
                        Ok((s, _))
                            if s == hyper::StatusCode::SERVICE_UNAVAILABLE
                                || s == hyper::StatusCode::TOO_MANY_REQUESTS =>
                        {
                            counters.ingest_shed.fetch_add(1, Ordering::Relaxed);
                            pending = true;
                        }
                        Ok((s, b)) => {
                            counters.ingest_failed.fetch_add(1, Ordering::Relaxed);
                            if s.is_client_error() {
                                eprintln!("ingest refused: {s}: {}", String::from_utf8_lossy(&b));
                                pending = false;
                            } else {
                                pending = true;
                            }
                        }
                        Err(_) => {
                            counters.ingest_failed.fetch_add(1, Ordering::Relaxed);
                            pending = true;
                        }
                    }
                }
            }));
        }
        // The policy sync loop of the same edge.
        let (client, base, token, counters, sync_h, stop) = (
            client.clone(),
            server.base.clone(),
            tokens[e].clone(),
            counters.clone(),
            sync_h.clone(),
            stop.clone(),
        );
        let offset = sync.mul_f64((e as f64 * 0.414_213_562_3).fract());
        let timeout = plan.timeout;
        edges.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut hash = String::new();
            let mut tick = tokio::time::interval(sync);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let req = weir_policy::proto::SyncRequest {
                    client_metadata: Some(weir_policy::proto::ClientMetadata {
                        resource_attributes: vec![weir_api::otlp::common::v1::KeyValue {
                            key: "service.instance.id".into(),
                            value: Some(weir_api::otlp::common::v1::AnyValue {
                                value: Some(
                                    weir_api::otlp::common::v1::any_value::Value::StringValue(
                                        "i-1".into(),
                                    ),
                                ),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    last_successful_hash: hash.clone(),
                    ..Default::default()
                };
                let sent = Instant::now();
                let r = request(
                    &client,
                    hyper::Method::POST,
                    &format!("{base}/v1/policy/sync"),
                    &[
                        ("authorization", format!("Bearer {token}")),
                        ("content-type", "application/x-protobuf".into()),
                    ],
                    Bytes::from(req.encode_to_vec()),
                    timeout,
                )
                .await;
                match r {
                    Ok((s, b)) if s.is_success() => {
                        let us = sent.elapsed().as_micros() as u64;
                        let _ = sync_h
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .record(us.max(1));
                        counters.sync_ok.fetch_add(1, Ordering::Relaxed);
                        if let Ok(resp) = weir_policy::proto::SyncResponse::decode(b) {
                            hash = resp.hash;
                        }
                    }
                    Ok((s, _))
                        if s == hyper::StatusCode::SERVICE_UNAVAILABLE
                            || s == hyper::StatusCode::TOO_MANY_REQUESTS =>
                    {
                        counters.sync_shed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        counters.sync_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // The viewer.
    let viewer = {
        let (client, base, admin, pages_h, stop, every, counters) = (
            client.clone(),
            server.base.clone(),
            admin.clone(),
            pages_h.clone(),
            stop.clone(),
            plan.viewer_interval,
            counters.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for page in ["overview", "services", "findings"] {
                    let sent = Instant::now();
                    let r = request(
                        &client,
                        hyper::Method::GET,
                        &format!("{base}/api/v1/{page}"),
                        &[("authorization", format!("Bearer {admin}"))],
                        Bytes::new(),
                        Duration::from_secs(120),
                    )
                    .await;
                    if matches!(&r, Ok((s, _)) if *s == hyper::StatusCode::SERVICE_UNAVAILABLE) {
                        counters.pages_shed.fetch_add(1, Ordering::Relaxed);
                    }
                    if matches!(&r, Ok((s, _)) if s.is_success()) {
                        let us = sent.elapsed().as_micros() as u64;
                        let _ = pages_h
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(page.to_string())
                            .or_insert_with(hist)
                            .record(us.max(1));
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    // Sample the server while the fleet runs.
    let mut max_rss = 0u64;
    while t0.elapsed() < plan.duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some((_, rss)) = proc_usage(pid) {
            max_rss = max_rss.max(rss);
        }
    }
    let cpu_after = proc_usage(pid).map_or(0.0, |u| u.0);
    let bench_cpu_after = proc_usage(me).map_or(0.0, |u| u.0);
    let load = load_avg();
    let measured = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Let requests in flight finish (each edge stops at its next tick).
    for t in edges {
        let _ =
            tokio::time::timeout(plan.timeout + flush.max(sync) + Duration::from_secs(5), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(150), viewer).await;
    let db_after = dir_db_bytes(&db);
    // What the catalog holds against what was acknowledged.
    let (status, body) = request(
        &client,
        hyper::Method::GET,
        &format!("{}/api/v1/services", server.base),
        &[auth(&admin)],
        Bytes::new(),
        Duration::from_secs(120),
    )
    .await?;
    if !status.is_success() {
        bail!("services: {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    for s in v["services"].as_array().cloned().unwrap_or_default() {
        let n = ["logs_items", "traces_items", "metrics_items"]
            .iter()
            .map(|f| s[f].as_u64().unwrap_or(0))
            .sum();
        stored.insert(s["service"].as_str().unwrap_or_default().to_string(), n);
    }
    let mut services_off = 0;
    let mut volumes_expected = 0;
    for (i, e) in expected.iter().enumerate() {
        let e = e.load(Ordering::Relaxed);
        volumes_expected += e;
        if stored.get(&format!("svc-{i:04}")).copied().unwrap_or(0) != e {
            services_off += 1;
        }
    }
    let pages_ms = pages_h
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, h)| (k.clone(), percentiles(h)))
        .collect();
    let mib = |b: u64| (b as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0;
    let report = FleetReport {
        edges: plan.edges,
        compress: plan.compress,
        ingest_rate: plan.edges as f64 / flush.as_secs_f64(),
        ingest_ms: percentiles(&ingest_h.lock().unwrap_or_else(|e| e.into_inner())),
        ingest_ok: counters.ingest_ok.load(Ordering::Relaxed),
        ingest_shed: counters.ingest_shed.load(Ordering::Relaxed),
        ingest_failed: counters.ingest_failed.load(Ordering::Relaxed),
        sync_ms: percentiles(&sync_h.lock().unwrap_or_else(|e| e.into_inner())),
        sync_ok: counters.sync_ok.load(Ordering::Relaxed),
        sync_shed: counters.sync_shed.load(Ordering::Relaxed),
        sync_failed: counters.sync_failed.load(Ordering::Relaxed),
        pages_shed: counters.pages_shed.load(Ordering::Relaxed),
        pages_ms,
        cpu_cores: ((cpu_after - cpu_before) / measured * 100.0).round() / 100.0,
        bench_cpu_cores: ((bench_cpu_after - bench_cpu_before) / measured * 100.0).round() / 100.0,
        load_avg: load,
        max_rss_mib: mib(max_rss),
        db_mib: [mib(db_before), mib(db_after)],
        volumes_expected,
        volumes_stored: stored.values().sum(),
        services_off,
    };
    drop(server);
    Ok(report)
}
