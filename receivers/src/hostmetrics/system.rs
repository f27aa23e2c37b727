//! The system-wide scrapers read from /proc: `cpu`, `memory`, `load`, `processes` and
//! `paging` (with the swap areas).

use std::collections::BTreeSet;
use std::path::Path;

use procfs::{FromRead, FromReadSI};

use super::{err, system_info, ticks_per_second, Builder, Val};

pub(super) fn cpu(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("stat");
    let si = system_info();
    let ks = procfs::KernelStats::from_file(&f, &si).map_err(|e| err(&f, e))?;
    let tps = ticks_per_second() as f64;
    let mut points = Vec::new();
    for (i, c) in ks.cpu_time.iter().enumerate() {
        let cpu = format!("cpu{i}");
        for (state, ticks) in [
            ("user", c.user),
            ("system", c.system),
            ("idle", c.idle),
            ("interrupt", c.irq.unwrap_or(0)),
            ("nice", c.nice),
            ("softirq", c.softirq.unwrap_or(0)),
            ("steal", c.steal.unwrap_or(0)),
            ("wait", c.iowait.unwrap_or(0)),
        ] {
            points.push((
                vec![("cpu", cpu.clone()), ("state", state.to_string())],
                Val::D(ticks as f64 / tps),
            ));
        }
    }
    b.add("system.cpu.time", points);
    b.add(
        "system.cpu.logical.count",
        vec![(vec![], Val::I(ks.cpu_time.len() as i64))],
    );
    if b.on("system.cpu.physical.count") {
        // Cores: distinct (physical id, core id) pairs of /proc/cpuinfo.
        let f = proc.join("cpuinfo");
        let info = procfs::CpuInfo::from_file(&f).map_err(|e| err(&f, e))?;
        let cores: BTreeSet<(Option<&str>, Option<&str>)> = (0..info.num_cores())
            .map(|i| {
                (
                    info.get_field(i, "physical id"),
                    info.get_field(i, "core id"),
                )
            })
            .collect();
        b.add(
            "system.cpu.physical.count",
            vec![(vec![], Val::I(cores.len() as i64))],
        );
    }
    Ok(())
}

pub(super) fn memory(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("meminfo");
    let m = procfs::Meminfo::from_file(&f).map_err(|e| err(&f, e))?;
    let sreclaimable = m.s_reclaimable.unwrap_or(0);
    let sunreclaim = m.s_unreclaim.unwrap_or(0);
    // As the Collector (through gopsutil) counts: cached includes reclaimable slab, and used is
    // what is neither free, buffers nor cached, so used + free + buffered + cached = total.
    let cached = m.cached + sreclaimable;
    let used = m
        .mem_total
        .saturating_sub(m.mem_free)
        .saturating_sub(m.buffers)
        .saturating_sub(cached);
    let states = [
        ("used", used),
        ("free", m.mem_free),
        ("buffered", m.buffers),
        ("cached", cached),
        ("slab_reclaimable", sreclaimable),
        ("slab_unreclaimable", sunreclaim),
    ];
    b.add(
        "system.memory.usage",
        states
            .iter()
            .map(|(s, v)| (vec![("state", s.to_string())], Val::I(*v as i64)))
            .collect(),
    );
    let total = m.mem_total.max(1) as f64;
    b.add(
        "system.memory.utilization",
        states
            .iter()
            .map(|(s, v)| (vec![("state", s.to_string())], Val::D(*v as f64 / total)))
            .collect(),
    );
    Ok(())
}

pub(super) fn load(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("loadavg");
    let l = procfs::LoadAverage::from_file(&f).map_err(|e| err(&f, e))?;
    // The Collector's values are the kernel's two-decimal figures as float64.
    let exact = |v: f32| format!("{v:.2}").parse::<f64>().unwrap_or(v as f64);
    b.add(
        "system.cpu.load_average.1m",
        vec![(vec![], Val::D(exact(l.one)))],
    );
    b.add(
        "system.cpu.load_average.5m",
        vec![(vec![], Val::D(exact(l.five)))],
    );
    b.add(
        "system.cpu.load_average.15m",
        vec![(vec![], Val::D(exact(l.fifteen)))],
    );
    Ok(())
}

pub(super) fn processes(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("stat");
    let si = system_info();
    let ks = procfs::KernelStats::from_file(&f, &si).map_err(|e| err(&f, e))?;
    b.add(
        "system.processes.created",
        vec![(vec![], Val::I(ks.processes as i64))],
    );
    b.add(
        "system.processes.count",
        vec![
            (
                vec![("status", "running".to_string())],
                Val::I(ks.procs_running.unwrap_or(0) as i64),
            ),
            (
                vec![("status", "blocked".to_string())],
                Val::I(ks.procs_blocked.unwrap_or(0) as i64),
            ),
        ],
    );
    Ok(())
}

/// One swap area of /proc/swaps: name, size and used bytes.
pub(super) fn swaps(file: &Path) -> Result<Vec<(String, u64, u64)>, String> {
    // No crate reads /proc/swaps; its layout is a header, then one whitespace-separated row
    // per area: Filename Type Size Used Priority (sizes in KiB).
    let text = std::fs::read_to_string(file).map_err(|e| err(file, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if header.first() != Some(&"Filename")
        || header.get(2) != Some(&"Size")
        || header.get(3) != Some(&"Used")
    {
        return Err(err(file, format!("unexpected header {header:?}")));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize, what: &str| -> Result<u64, String> {
            f.get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| err(file, format!("line {}: no {what} in {line:?}", n + 2)))
        };
        let size = num(2, "Size")?;
        let used = num(3, "Used")?;
        out.push((f[0].to_string(), size * 1024, used * 1024));
    }
    Ok(out)
}

pub(super) fn paging(proc: &Path, b: &mut Builder) -> Result<(), String> {
    if b.on("system.paging.usage") || b.on("system.paging.utilization") {
        let areas = swaps(&proc.join("swaps"))?;
        let states = |a: &(String, u64, u64)| {
            [("used", a.2), ("free", a.1.saturating_sub(a.2))]
                .map(|(s, v)| (a.0.clone(), s, v, a.1))
        };
        b.add(
            "system.paging.usage",
            areas
                .iter()
                .flat_map(states)
                .map(|(d, s, v, _)| {
                    (
                        vec![("device", d), ("state", s.to_string())],
                        Val::I(v as i64),
                    )
                })
                .collect(),
        );
        b.add(
            "system.paging.utilization",
            areas
                .iter()
                .flat_map(states)
                .map(|(d, s, v, t)| {
                    (
                        vec![("device", d), ("state", s.to_string())],
                        Val::D(v as f64 / t.max(1) as f64),
                    )
                })
                .collect(),
        );
    }
    let f = proc.join("vmstat");
    let vm = procfs::VmStat::from_file(&f).map_err(|e| err(&f, e))?.0;
    let get = |k: &str| vm.get(k).copied().unwrap_or(0);
    let op = |dir: &str, ty: &str, v: i64| {
        (
            vec![("direction", dir.to_string()), ("type", ty.to_string())],
            Val::I(v),
        )
    };
    b.add(
        "system.paging.operations",
        vec![
            op("page_in", "major", get("pswpin")),
            op("page_out", "major", get("pswpout")),
            op("page_in", "minor", get("pgpgin")),
            op("page_out", "minor", get("pgpgout")),
        ],
    );
    b.add(
        "system.paging.faults",
        vec![
            (
                vec![("type", "major".to_string())],
                Val::I(get("pgmajfault")),
            ),
            (
                vec![("type", "minor".to_string())],
                Val::I(get("pgfault") - get("pgmajfault")),
            ),
        ],
    );
    Ok(())
}
