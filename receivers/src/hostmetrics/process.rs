//! The `process` scraper: one resource per process with its cpu time, memory and disk io,
//! owners' names from /etc/passwd.

use std::collections::BTreeMap;
use std::path::Path;

use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
use weir_api::otlp::metrics::v1::Metric;

use super::{err, kv, ticks_per_second, Builder, Val};

fn int_kv(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// User names by uid, from the host's /etc/passwd (name:password:uid:...).
fn users(root: &Path) -> BTreeMap<u32, String> {
    std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

/// One resource per process (pid, parent pid, executable name and path, command, command
/// line, owner), with its cpu time, memory and disk io. A process whose executable cannot be
/// read (kernel threads, or not ours to read) is skipped, as the Collector does.
pub(super) fn process(
    proc: &Path,
    b: &mut Builder,
    resources: &mut Vec<(Vec<KeyValue>, Vec<Metric>)>,
) -> Result<(), String> {
    let users = users(proc.parent().unwrap_or(Path::new("/")));
    let tps = ticks_per_second() as f64;
    let page = procfs::page_size();
    let all = procfs::process::all_processes_with_root(proc).map_err(|e| err(proc, e))?;
    for p in all.flatten() {
        let (Ok(stat), Ok(exe)) = (p.stat(), p.exe()) else {
            continue;
        };
        // The Collector matches process filters against the executable's name.
        if !b.keeps("name", &stat.comm) {
            continue;
        }
        let cmdline = p.cmdline().unwrap_or_default();
        let owner = p
            .uid()
            .ok()
            .and_then(|u| users.get(&u).cloned())
            .unwrap_or_default();
        let attributes = vec![
            int_kv("process.pid", i64::from(stat.pid)),
            int_kv("process.parent_pid", i64::from(stat.ppid)),
            kv("process.executable.name", &stat.comm),
            kv("process.executable.path", &exe.display().to_string()),
            kv(
                "process.command",
                cmdline.first().map(String::as_str).unwrap_or(""),
            ),
            kv("process.command_line", &cmdline.join(" ")),
            kv("process.owner", &owner),
        ];
        // A process's sums start when it did (its start time is in ticks after boot).
        let started = b.start + (stat.starttime as f64 / tps * 1e9) as u64;
        let mut pb = Builder {
            enabled: b.enabled,
            filters: b.filters,
            defs: b.defs,
            start: started,
            time: b.time,
            out: Vec::new(),
        };
        let state =
            |s: &str, ticks: u64| (vec![("state", s.to_string())], Val::D(ticks as f64 / tps));
        pb.add(
            "process.cpu.time",
            vec![
                state("user", stat.utime),
                state("system", stat.stime),
                state("wait", stat.delayacct_blkio_ticks.unwrap_or(0)),
            ],
        );
        pb.add(
            "process.memory.usage",
            vec![(vec![], Val::I((stat.rss * page) as i64))],
        );
        pb.add(
            "process.memory.virtual",
            vec![(vec![], Val::I(stat.vsize as i64))],
        );
        if pb.on("process.disk.io") {
            if let Ok(io) = p.io() {
                pb.add(
                    "process.disk.io",
                    vec![
                        (
                            vec![("direction", "read".to_string())],
                            Val::I(io.read_bytes as i64),
                        ),
                        (
                            vec![("direction", "write".to_string())],
                            Val::I(io.write_bytes as i64),
                        ),
                    ],
                );
            }
        }
        if !pb.out.is_empty() {
            resources.push((attributes, pb.out));
        }
    }
    Ok(())
}
