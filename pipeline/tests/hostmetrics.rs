//! The `hostmetrics` receiver on this machine: the real binary scrapes every second into the
//! file exporter; each scraper's metric names, types, units and attribute keys are checked
//! against a table of the Collector's metadata (its default-enabled metrics, in
//! hostmetrics/collector.rs), and the values against what /proc says (memory states add up
//! to MemTotal, cpu time never goes back, load averages are /proc/loadavg's, devices and
//! interfaces are the kernel's). A second receiver shows the per-metric toggles, and
//! unsupported settings are config errors naming their path. Reading the exported file:
//! hostmetrics/exports.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostmetrics/collector.rs"]
mod collector;
#[path = "hostmetrics/exports.rs"]
mod exports;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use collector::{COLLECTOR, SCOPE};
use exports::{exports, key, meminfo_kb, processes_of, Point, Seen};

#[test]
fn hostmetrics_scrapes_this_host_as_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let toggled = dir.path().join("toggled.jsonl");
    let process_out = dir.path().join("process.jsonl");
    let telemetry = support::free_port();
    let config = format!(
        "receivers:
  hostmetrics:
    collection_interval: 1s
    initial_delay: 100ms
    scrapers:
      cpu:
      memory:
      load:
      disk:
      network:
      paging:
      processes:
      filesystem:
  hostmetrics/process:
    collection_interval: 1s
    initial_delay: 100ms
    scrapers:
      cpu:
        metrics:
          system.cpu.time: {{enabled: false}}
          system.cpu.logical.count: {{enabled: true}}
          system.cpu.physical.count: {{enabled: true}}
      process:
      filesystem:
        include_virtual_filesystems: true
        include_fs_types: {{fs_types: [proc], match_type: strict}}
  hostmetrics/toggled:
    collection_interval: 1s
    root_path: /
    scrapers:
      memory:
        metrics:
          system.memory.usage: {{enabled: false}}
          system.memory.utilization: {{enabled: true}}
      load:
        metrics:
          system.cpu.load_average.5m: {{enabled: false}}
      network:
        include: {{interfaces: [lo], match_type: strict}}
        metrics: {{system.network.connections: {{enabled: false}}}}
      filesystem:
        include_mount_points: {{mount_points: ['^/$'], match_type: regexp}}
      disk:
        exclude: {{devices: ['.*'], match_type: regexp}}
      process:
        include: {{names: [weir], match_type: strict}}
exporters:
  file:
    path: {out}
    flush_interval: 0s
  file/toggled:
    path: {toggled}
    flush_interval: 0s
  file/process:
    path: {process}
    flush_interval: 0s
service:
  telemetry:
    metrics: {{address: '127.0.0.1:{telemetry}'}}
  pipelines:
    metrics: {{receivers: [hostmetrics], exporters: [file]}}
    metrics/toggled: {{receivers: [hostmetrics/toggled], exporters: [file/toggled]}}
    metrics/process: {{receivers: [hostmetrics/process], exporters: [file/process]}}
",
        process = process_out.display(),
        out = out.display(),
        toggled = toggled.display(),
    );
    let config_path = support::write(dir.path(), "weir.yaml", &config);
    let weir = support::spawn(dir.path(), &config_path, &[]);
    // Ends weir even when an assertion fails before the orderly stop below.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut weir = KillOnDrop(weir);

    // /proc/loadavg changes every 5s; poll it so every value a scrape saw is among those seen.
    let mut loadavgs = BTreeSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        loadavgs.insert(
            std::fs::read_to_string("/proc/loadavg")
                .unwrap()
                .split_whitespace()
                .take(3)
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
        if exports(&out).len() >= 3
            && !exports(&toggled).is_empty()
            && !processes_of(&process_out).is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The weir process as /proc has it, while it runs.
    let weir_stat = std::fs::read_to_string(format!("/proc/{}/stat", weir.0.id())).unwrap();
    support::sigterm(&weir.0);
    support::wait_exit(&mut weir.0, Duration::from_secs(10));
    let log = support::log_of(dir.path());
    let all = exports(&out);
    assert!(all.len() >= 3, "three scrapes in 20s: {log}");

    // Names, scopes, units, types, value types and attribute keys, exactly. A host without
    // swap areas has no paging usage points, and then (as in the Collector) no such metric.
    let swap_areas = std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        - 1;
    for export in &all {
        let want: BTreeSet<&str> = COLLECTOR
            .iter()
            .flat_map(|(_, ms)| ms.iter().map(|m| m.0))
            .filter(|n| *n != "system.paging.usage" || swap_areas > 0)
            .collect();
        let got: BTreeSet<&str> = export.keys().map(String::as_str).collect();
        assert_eq!(got, want, "{log}");
        for (scraper, metrics) in COLLECTOR {
            for (name, unit, kind, vtype, attrs) in *metrics {
                let Some(seen) = export.get(*name) else {
                    continue;
                };
                assert_eq!(seen.scope, format!("{SCOPE}{scraper}scraper"), "{name}");
                assert_eq!(seen.unit, *unit, "{name}");
                assert_eq!(seen.kind, *kind, "{name}");
                assert!(!seen.points.is_empty(), "{name}");
                for p in &seen.points {
                    assert_eq!(p.int, *vtype == "int", "{name} {p:?}");
                    let keys: Vec<&str> = p.attrs.keys().map(String::as_str).collect();
                    let mut want: Vec<&str> = attrs.to_vec();
                    want.sort();
                    assert_eq!(keys, want, "{name}");
                    assert!(p.value >= 0.0, "{name} {p:?}");
                }
            }
        }
    }

    // memory: used + free + buffered + cached = MemTotal (a constant), exactly.
    let total = meminfo_kb("MemTotal") * 1024;
    for export in &all {
        let by_state: BTreeMap<&str, f64> = export["system.memory.usage"]
            .points
            .iter()
            .map(|p| (p.attrs["state"].as_str(), p.value))
            .collect();
        assert_eq!(
            by_state.keys().copied().collect::<Vec<_>>(),
            [
                "buffered",
                "cached",
                "free",
                "slab_reclaimable",
                "slab_unreclaimable",
                "used"
            ]
        );
        let sum = by_state["used"] + by_state["free"] + by_state["buffered"] + by_state["cached"];
        assert_eq!(sum as u64, total, "{by_state:?}");
        // Slab figures are the kernel's, give or take what changed meanwhile (64 MiB).
        let slab = meminfo_kb("SUnreclaim") as f64 * 1024.0;
        assert!((by_state["slab_unreclaimable"] - slab).abs() < 64.0 * 1048576.0);
    }

    // cpu: one series per logical cpu and state, never going back, and time passes.
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let states = [
        "idle",
        "interrupt",
        "nice",
        "softirq",
        "steal",
        "system",
        "user",
        "wait",
    ];
    let first = &all[0]["system.cpu.time"].points;
    assert_eq!(first.len(), cpus * states.len());
    for c in 0..cpus {
        for s in states {
            assert!(first
                .iter()
                .any(|p| p.attrs["cpu"] == format!("cpu{c}") && p.attrs["state"] == s));
        }
    }
    let total_cpu = |e: &BTreeMap<String, Seen>| -> f64 {
        e["system.cpu.time"].points.iter().map(|p| p.value).sum()
    };
    for pair in all.windows(2) {
        let before: BTreeMap<String, f64> = pair[0]["system.cpu.time"]
            .points
            .iter()
            .map(|p| (key(p), p.value))
            .collect();
        for p in &pair[1]["system.cpu.time"].points {
            assert!(p.value >= before[&key(p)], "{p:?} went back");
        }
        // A second passed on every cpu: the total grew by about cpus seconds.
        let grew = total_cpu(&pair[1]) - total_cpu(&pair[0]);
        assert!(
            grew > 0.5 * cpus as f64 && grew < 3.0 * cpus as f64,
            "{grew}"
        );
    }

    // load: the kernel's figures, exactly as /proc/loadavg prints them.
    for export in &all {
        let got: Vec<String> = ["1m", "5m", "15m"]
            .iter()
            .map(|w| {
                format!(
                    "{:.2}",
                    export[&format!("system.cpu.load_average.{w}")].points[0].value
                )
            })
            .collect();
        assert!(loadavgs.contains(&got), "{got:?} not among {loadavgs:?}");
    }

    // disk and network: the kernel's devices, two directions each, counters monotonic.
    let disks: BTreeSet<String> = std::fs::read_to_string("/proc/diskstats")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    let ifaces: BTreeSet<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim().to_string())
        .collect();
    assert!(ifaces.contains("lo"));
    for (metric, want, dirs) in [
        ("system.disk.io", &disks, ["read", "write"]),
        ("system.network.io", &ifaces, ["receive", "transmit"]),
    ] {
        let points = &all[0][metric].points;
        let devices: BTreeSet<String> = points.iter().map(|p| p.attrs["device"].clone()).collect();
        assert_eq!(&devices, want, "{metric}");
        assert_eq!(points.len(), want.len() * 2, "{metric}");
        for d in dirs {
            assert!(points.iter().any(|p| p.attrs["direction"] == d));
        }
    }
    for pair in all.windows(2) {
        for (name, seen) in &pair[1] {
            if seen.kind != "counter" {
                continue;
            }
            let before: BTreeMap<String, f64> = pair[0][name]
                .points
                .iter()
                .map(|p| (key(p), p.value))
                .collect();
            for p in &seen.points {
                if let Some(b) = before.get(&key(p)) {
                    assert!(p.value >= *b, "{name} {p:?} went back from {b}");
                }
            }
        }
    }
    // weir listens for its telemetry: at least one TCP connection in LISTEN.
    assert!(all[0]["system.network.connections"]
        .points
        .iter()
        .any(|p| p.attrs["state"] == "LISTEN" && p.attrs["protocol"] == "tcp" && p.value >= 1.0));

    // paging: one used and one free point per swap area of /proc/swaps, adding to its size;
    // faults and operations as /proc/vmstat counts them.
    let swaps: BTreeMap<String, f64> = std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].parse::<f64>().unwrap() * 1024.0)
        })
        .collect();
    let usage = all[0]
        .get("system.paging.usage")
        .map(|s| s.points.clone())
        .unwrap_or_default();
    assert_eq!(usage.len(), swaps.len() * 2);
    for (device, size) in &swaps {
        let sum: f64 = usage
            .iter()
            .filter(|p| &p.attrs["device"] == device)
            .map(|p| p.value)
            .sum();
        assert_eq!(sum, *size, "{device}");
    }
    let vmstat = |k: &str| -> f64 {
        std::fs::read_to_string("/proc/vmstat")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let last = all.last().unwrap();
    let faults = |ty: &str| {
        last["system.paging.faults"]
            .points
            .iter()
            .find(|p| p.attrs["type"] == ty)
            .unwrap()
            .value
    };
    // Read after the scrape: the kernel's figures can only have grown since.
    assert!(faults("major") <= vmstat("pgmajfault") && faults("major") > 0.0);
    assert!(faults("minor") <= vmstat("pgfault") && faults("minor") > 0.0);
    let ops: BTreeMap<(String, String), f64> = last["system.paging.operations"]
        .points
        .iter()
        .map(|p| {
            (
                (p.attrs["direction"].clone(), p.attrs["type"].clone()),
                p.value,
            )
        })
        .collect();
    assert_eq!(ops.len(), 4);
    assert!(ops[&("page_in".into(), "minor".into())] <= vmstat("pgpgin"));
    assert!(ops[&("page_out".into(), "major".into())] <= vmstat("pswpout"));

    // filesystem: "/" is there with its type, and its states add up to what statvfs says
    // (stat -f: total blocks and fundamental block size, total inodes).
    let out_stat = std::process::Command::new("stat")
        .args(["-f", "--format=%b %S %c %T", "/"])
        .output()
        .unwrap();
    let f: Vec<String> = String::from_utf8(out_stat.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (blocks, bsize, files): (f64, f64, f64) = (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
    );
    let at_root = |metric: &str| -> Vec<Point> {
        all[0][metric]
            .points
            .iter()
            .filter(|p| p.attrs["mountpoint"] == "/")
            .cloned()
            .collect()
    };
    let root_usage = at_root("system.filesystem.usage");
    assert_eq!(root_usage.len(), 3, "{root_usage:?}");
    assert_eq!(
        root_usage.iter().map(|p| p.value).sum::<f64>(),
        blocks * bsize
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let root_mount: Vec<&str> = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f[1] == "/")
        .unwrap();
    assert_eq!(root_usage[0].attrs["device"], root_mount[0]);
    assert_eq!(root_usage[0].attrs["type"], root_mount[2]);
    assert_eq!(root_usage[0].attrs["mode"], &root_mount[3][..2]);
    let root_inodes = at_root("system.filesystem.inodes.usage");
    assert_eq!(root_inodes.len(), 2);
    assert_eq!(root_inodes.iter().map(|p| p.value).sum::<f64>(), files);

    // Sums start at boot (btime of /proc/stat), as the Collector's do; gauges have no start.
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .parse()
        .unwrap();
    for (name, seen) in &all[0] {
        for p in &seen.points {
            let want = if seen.kind == "gauge" {
                0
            } else {
                btime * 1_000_000_000
            };
            assert_eq!(p.start, want, "{name}");
        }
    }

    // processes: created grows with the processes this test's machine starts; something runs.
    let created = |e: &BTreeMap<String, Seen>| e["system.processes.created"].points[0].value;
    assert!(created(&all[0]) > 0.0);
    assert!(created(all.last().unwrap()) >= created(&all[0]));
    let counts = &all[0]["system.processes.count"].points;
    let statuses: BTreeSet<&str> = counts.iter().map(|p| p.attrs["status"].as_str()).collect();
    assert_eq!(statuses, BTreeSet::from(["blocked", "running"]));
    assert!(counts
        .iter()
        .any(|p| p.attrs["status"] == "running" && p.value >= 1.0));

    // process: one resource per process with the Collector's resource attributes and its
    // default metrics; weir itself is among them, as /proc says it is.
    let procs = processes_of(&process_out);
    assert!(procs.len() > 1, "{procs:?}");
    let keys: BTreeSet<&str> = procs[0].0.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "process.command",
            "process.command_line",
            "process.executable.name",
            "process.executable.path",
            "process.owner",
            "process.parent_pid",
            "process.pid",
        ])
    );
    let (attrs, metrics) = procs
        .iter()
        .find(|(a, _)| a["process.pid"] == weir.0.id().to_string())
        .expect("weir's own process");
    assert_eq!(attrs["process.parent_pid"], std::process::id().to_string());
    assert_eq!(attrs["process.executable.name"], "weir");
    assert_eq!(
        attrs["process.executable.path"],
        std::fs::canonicalize(env!("CARGO_BIN_EXE_weir"))
            .unwrap()
            .display()
            .to_string()
    );
    assert_eq!(attrs["process.command"], env!("CARGO_BIN_EXE_weir"));
    assert!(attrs["process.command_line"].ends_with(&format!("--config {}", config_path.display())));
    let me = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(attrs["process.owner"], me.trim());
    let by_name: BTreeMap<&str, &Value> = metrics
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m))
        .collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        [
            "process.cpu.time",
            "process.disk.io",
            "process.memory.usage",
            "process.memory.virtual"
        ]
    );
    for (name, unit, kind, attr) in [
        ("process.cpu.time", "s", "counter", Some("state")),
        ("process.disk.io", "By", "counter", Some("direction")),
        ("process.memory.usage", "By", "updown", None),
        ("process.memory.virtual", "By", "updown", None),
    ] {
        let m = by_name[name];
        assert_eq!(m["unit"], unit, "{name}");
        assert_eq!(
            m["sum"]["isMonotonic"].as_bool().unwrap_or(false),
            kind == "counter",
            "{name}"
        );
        assert_eq!(m["sum"]["aggregationTemporality"], 2, "{name}");
        for p in m["sum"]["dataPoints"].as_array().unwrap() {
            let keys: Vec<&str> = p["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["key"].as_str().unwrap())
                .collect();
            assert_eq!(keys, attr.into_iter().collect::<Vec<_>>(), "{name}");
        }
    }
    let states: Vec<&str> = by_name["process.cpu.time"]["sum"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["attributes"][0]["value"]["stringValue"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["user", "system", "wait"]);
    // Its sums start when weir started: btime + starttime (field 22 of /proc/PID/stat) ticks.
    let after_comm = weir_stat.rsplit_once(')').unwrap().1;
    let starttime: u64 = after_comm
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let start: u64 = by_name["process.memory.usage"]["sum"]["dataPoints"][0]["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tck: u64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let want = btime * 1_000_000_000 + starttime * 1_000_000_000 / tck;
    assert!(start.abs_diff(want) < 1_000_000, "{start} vs {want}");
    let rss: f64 = by_name["process.memory.usage"]["sum"]["dataPoints"][0]["asInt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 1_000_000.0, "{rss}");

    // cpu counts (off by default, turned on): logical = the cpus of /proc/stat, physical =
    // the distinct (physical id, core id) pairs of /proc/cpuinfo.
    let e = &exports(&process_out)[0];
    assert!(!e.contains_key("system.cpu.time"));
    let logical = &e["system.cpu.logical.count"];
    assert_eq!(
        (logical.unit.as_str(), logical.kind.as_str()),
        ("{cpu}", "updown")
    );
    assert_eq!(logical.points[0].value as usize, cpus);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let mut cores = BTreeSet::new();
    for block in cpuinfo.split("\n\n").filter(|b| b.contains("processor")) {
        let field = |k: &str| {
            block
                .lines()
                .find(|l| l.starts_with(k))
                .map(|l| l.split(':').nth(1).unwrap().trim().to_string())
        };
        cores.insert((field("physical id"), field("core id")));
    }
    assert_eq!(
        e["system.cpu.physical.count"].points[0].value as usize,
        cores.len()
    );

    // include_virtual_filesystems with a type filter: the proc mounts, and nothing else.
    let virt = &exports(&process_out)[0]["system.filesystem.usage"];
    let types: BTreeSet<(&str, &str)> = virt
        .points
        .iter()
        .map(|p| (p.attrs["type"].as_str(), p.attrs["device"].as_str()))
        .collect();
    assert_eq!(types, BTreeSet::from([("proc", "proc")]));
    assert!(virt.points.iter().any(|p| p.attrs["mountpoint"] == "/proc"));

    // Toggles: usage off, utilization on (states add to 1), 5m load off.
    // Filters: network only lo, filesystem only /, every disk excluded (so no disk metric),
    // processes only weir.
    let t = exports(&toggled);
    let names: BTreeSet<&str> = t[0]
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with("process."))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "system.cpu.load_average.15m",
            "system.cpu.load_average.1m",
            "system.filesystem.inodes.usage",
            "system.filesystem.usage",
            "system.memory.utilization",
            "system.network.dropped",
            "system.network.errors",
            "system.network.io",
            "system.network.packets",
        ])
    );
    let lo: BTreeSet<&str> = t[0]["system.network.io"]
        .points
        .iter()
        .map(|p| p.attrs["device"].as_str())
        .collect();
    assert_eq!(lo, BTreeSet::from(["lo"]));
    let mounts: BTreeSet<&str> = t[0]["system.filesystem.usage"]
        .points
        .iter()
        .map(|p| p.attrs["mountpoint"].as_str())
        .collect();
    assert_eq!(mounts, BTreeSet::from(["/"]));
    // (another weir on this machine would be kept too: every one kept is a weir, ours among them)
    let only_weir = processes_of(&toggled);
    assert!(only_weir.len() < procs.len());
    assert!(only_weir
        .iter()
        .all(|(a, _)| a["process.executable.name"] == "weir"));
    assert!(only_weir
        .iter()
        .any(|(a, _)| a["process.pid"] == weir.0.id().to_string()));
    let u = &t[0]["system.memory.utilization"];
    assert_eq!((u.unit.as_str(), u.kind.as_str()), ("1", "gauge"));
    let sum: f64 = u
        .points
        .iter()
        .filter(|p| ["used", "free", "buffered", "cached"].contains(&p.attrs["state"].as_str()))
        .map(|p| p.value)
        .sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
}

fn validate(dir: &Path, receiver: &str) -> (i32, String) {
    let config = format!(
        "receivers:
  hostmetrics:
{receiver}
exporters:
  debug:
service:
  pipelines:
    metrics: {{receivers: [hostmetrics], exporters: [debug]}}
"
    );
    let path = support::write(dir, "weir.yaml", &config);
    let out = support::weir()
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn hostmetrics_unsupported_settings_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = validate(dir.path(), "    scrapers:\n      cpu:\n      memory:\n");
    assert_eq!(code, 0, "{err}");
    for (receiver, want) in [
        (
            "    scrapers:\n      system:\n",
            "receivers.hostmetrics.scrapers.system: the `system` scraper is not supported by weir yet",
        ),
        (
            "    scrapers:\n      process:\n        include: {names: [weir], match_type: glob}\n",
            "receivers.hostmetrics.scrapers.process.include.match_type: unknown match_type `glob` (strict or regexp)",
        ),
        (
            "    scrapers:\n      process:\n        exclude: {names: [weir]}\n",
            "receivers.hostmetrics.scrapers.process.exclude.match_type: match_type must be specified",
        ),
        (
            "    scrapers:\n      network:\n        include: {devices: [lo], match_type: strict}\n",
            "receivers.hostmetrics.scrapers.network.include.devices: `include` of the `network` scraper takes `interfaces`, not `devices`",
        ),
        (
            "    scrapers:\n      disk:\n        include_devices: {devices: [sda], match_type: strict}\n",
            "receivers.hostmetrics.scrapers.disk.include_devices: the `disk` scraper has no `include_devices` filter",
        ),
        (
            "    scrapers:\n      filesystem:\n        exclude_fs_types: {fs_types: ['(tmp'], match_type: regexp}\n",
            "receivers.hostmetrics.scrapers.filesystem.exclude_fs_types.fs_types[0]: invalid regexp",
        ),
        (
            "    scrapers:\n      disk:\n        include_virtual_filesystems: true\n",
            "receivers.hostmetrics.scrapers.disk.include_virtual_filesystems: the `disk` scraper has no `include_virtual_filesystems`",
        ),
        (
            "    scrapers:\n      process:\n        mute_process_name_error: true\n",
            "mute_process_name_error",
        ),
        ("    scrapers:\n      gpu:\n", "receivers.hostmetrics.scrapers.gpu: unknown scraper `gpu`"),
        (
            "    scrapers:\n      cpu:\n        metrics:\n          system.cpu.nope: {enabled: true}\n",
            "receivers.hostmetrics.scrapers.cpu.metrics.system.cpu.nope: the `cpu` scraper has no metric `system.cpu.nope`",
        ),
        ("    scrapers: {}\n", "receivers.hostmetrics.scrapers: must specify at least one scraper"),
        ("    collection_interval: 0s\n    scrapers:\n      cpu:\n", "receivers.hostmetrics.collection_interval: must be greater than 0"),
        ("    root_path: /nonexistent\n    scrapers:\n      cpu:\n", "receivers.hostmetrics.root_path: /nonexistent has no proc directory"),
    ] {
        let (code, err) = validate(dir.path(), receiver);
        assert_ne!(code, 0, "{receiver}");
        assert!(err.contains(want), "{receiver}: {err}");
    }
}
