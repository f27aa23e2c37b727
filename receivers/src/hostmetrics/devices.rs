//! The device scrapers: `disk` (/proc/diskstats), `network` (/proc/net/dev and TCP
//! connection states) and `filesystem` (mounts of physical file system types, with
//! statvfs usage).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use procfs::{FromRead, FromReadSI};

use super::{err, system_info, Builder, Val};

pub(super) fn disk(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("diskstats");
    let mut stats = procfs::DiskStats::from_file(&f).map_err(|e| err(&f, e))?.0;
    stats.retain(|d| b.keeps("device", &d.name));
    let dev = |d: &procfs::DiskStat| ("device", d.name.clone());
    let rw = |d: &procfs::DiskStat, r: u64, w: u64| {
        vec![
            (
                vec![dev(d), ("direction", "read".to_string())],
                Val::I(r as i64),
            ),
            (
                vec![dev(d), ("direction", "write".to_string())],
                Val::I(w as i64),
            ),
        ]
    };
    let secs = |ms: u64| Val::D(ms as f64 / 1000.0);
    b.add(
        "system.disk.io",
        stats
            .iter()
            .flat_map(|d| rw(d, d.sectors_read * 512, d.sectors_written * 512))
            .collect(),
    );
    b.add(
        "system.disk.operations",
        stats
            .iter()
            .flat_map(|d| rw(d, d.reads, d.writes))
            .collect(),
    );
    b.add(
        "system.disk.io_time",
        stats
            .iter()
            .map(|d| (vec![dev(d)], secs(d.time_in_progress)))
            .collect(),
    );
    b.add(
        "system.disk.operation_time",
        stats
            .iter()
            .flat_map(|d| {
                [
                    (
                        vec![dev(d), ("direction", "read".to_string())],
                        secs(d.time_reading),
                    ),
                    (
                        vec![dev(d), ("direction", "write".to_string())],
                        secs(d.time_writing),
                    ),
                ]
            })
            .collect(),
    );
    b.add(
        "system.disk.weighted_io_time",
        stats
            .iter()
            .map(|d| (vec![dev(d)], secs(d.weighted_time_in_progress)))
            .collect(),
    );
    b.add(
        "system.disk.pending_operations",
        stats
            .iter()
            .map(|d| (vec![dev(d)], Val::I(d.in_progress as i64)))
            .collect(),
    );
    b.add(
        "system.disk.merged",
        stats
            .iter()
            .flat_map(|d| rw(d, d.merged, d.writes_merged))
            .collect(),
    );
    Ok(())
}

pub(super) fn network(proc: &Path, b: &mut Builder) -> Result<(), String> {
    let f = proc.join("net/dev");
    let devs = procfs::net::InterfaceDeviceStatus::from_file(&f)
        .map_err(|e| err(&f, e))?
        .0;
    let mut devs: Vec<_> = devs.into_values().collect();
    devs.retain(|d| b.keeps("interface", &d.name));
    devs.sort_by(|a, b| a.name.cmp(&b.name));
    let pair = |name: &str, r: u64, t: u64| {
        vec![
            (
                vec![
                    ("device", name.to_string()),
                    ("direction", "receive".to_string()),
                ],
                Val::I(r as i64),
            ),
            (
                vec![
                    ("device", name.to_string()),
                    ("direction", "transmit".to_string()),
                ],
                Val::I(t as i64),
            ),
        ]
    };
    b.add(
        "system.network.packets",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_packets, d.sent_packets))
            .collect(),
    );
    b.add(
        "system.network.dropped",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_drop, d.sent_drop))
            .collect(),
    );
    b.add(
        "system.network.errors",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_errs, d.sent_errs))
            .collect(),
    );
    b.add(
        "system.network.io",
        devs.iter()
            .flat_map(|d| pair(&d.name, d.recv_bytes, d.sent_bytes))
            .collect(),
    );
    if b.on("system.network.connections") {
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for file in ["net/tcp", "net/tcp6"] {
            let f = proc.join(file);
            if !f.exists() {
                continue;
            }
            let entries = procfs::net::TcpNetEntries::from_file(&f, &system_info())
                .map_err(|e| err(&f, e))?
                .0;
            for e in entries {
                *counts.entry(tcp_state(&e.state)).or_default() += 1;
            }
        }
        b.add(
            "system.network.connections",
            counts
                .into_iter()
                .map(|(s, n)| {
                    (
                        vec![("protocol", "tcp".to_string()), ("state", s.to_string())],
                        Val::I(n),
                    )
                })
                .collect(),
        );
    }
    Ok(())
}

fn tcp_state(s: &procfs::net::TcpState) -> &'static str {
    use procfs::net::TcpState as T;
    match s {
        T::Established => "ESTABLISHED",
        T::SynSent => "SYN_SENT",
        T::SynRecv | T::NewSynRecv => "SYN_RECV",
        T::FinWait1 => "FIN_WAIT1",
        T::FinWait2 => "FIN_WAIT2",
        T::TimeWait => "TIME_WAIT",
        T::Close => "CLOSE",
        T::CloseWait => "CLOSE_WAIT",
        T::LastAck => "LAST_ACK",
        T::Listen => "LISTEN",
        T::Closing => "CLOSING",
    }
}

/// The filesystems of block devices: the types /proc/filesystems does not mark `nodev`
/// (which the Collector keeps unless `include_virtual_filesystems`), and zfs.
fn physical_types(proc: &Path) -> Result<BTreeSet<String>, String> {
    // No crate reads /proc/filesystems: one type a line, after an optional `nodev`.
    let f = proc.join("filesystems");
    let text = std::fs::read_to_string(&f).map_err(|e| err(&f, e))?;
    let mut out: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    out.insert("zfs".into());
    Ok(out)
}

pub(super) fn filesystem(root: &Path, proc: &Path, b: &mut Builder) -> Result<(), String> {
    let physical = physical_types(proc)?;
    // `include_virtual_filesystems: true` keeps every mount (proc, tmpfs, cgroup, ...).
    let virtual_too = b.filters.contains_key("virtual");
    let mut f = proc.join("1/mountinfo");
    if !f.exists() {
        f = proc.join("self/mountinfo");
    }
    let mounts = procfs::process::MountInfos::from_file(&f)
        .map_err(|e| err(&f, e))?
        .0;
    let mut usage = Vec::new();
    let mut inodes = Vec::new();
    let mut utilization = Vec::new();
    for m in mounts.iter().filter(|m| {
        (virtual_too || physical.contains(&m.fs_type))
            && b.keeps("device", m.mount_source.as_deref().unwrap_or(""))
            && b.keeps("fs_type", &m.fs_type)
            && b.keeps("mount_point", &m.mount_point.display().to_string())
    }) {
        let at = root.join(m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point));
        let v = match rustix::fs::statvfs(&at) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(mountpoint = %at.display(), error = %e, "statvfs failed; skipped");
                continue;
            }
        };
        let mode = if m.mount_options.contains_key("ro") {
            "ro"
        } else {
            "rw"
        };
        let attrs = |state: Option<&str>| {
            let mut a = vec![
                ("device", m.mount_source.clone().unwrap_or_default()),
                ("mode", mode.to_string()),
                ("mountpoint", m.mount_point.display().to_string()),
                ("type", m.fs_type.clone()),
            ];
            if let Some(s) = state {
                a.push(("state", s.to_string()));
            }
            a
        };
        let fr = v.f_frsize;
        let used = v.f_blocks.saturating_sub(v.f_bfree) * fr;
        let free = v.f_bavail * fr;
        let reserved = v.f_bfree.saturating_sub(v.f_bavail) * fr;
        for (s, n) in [("used", used), ("free", free), ("reserved", reserved)] {
            usage.push((attrs(Some(s)), Val::I(n as i64)));
        }
        let iused = v.f_files.saturating_sub(v.f_ffree);
        for (s, n) in [("used", iused), ("free", v.f_ffree)] {
            inodes.push((attrs(Some(s)), Val::I(n as i64)));
        }
        if used + free > 0 {
            utilization.push((attrs(None), Val::D(used as f64 / (used + free) as f64)));
        }
    }
    b.add("system.filesystem.usage", usage);
    b.add("system.filesystem.inodes.usage", inodes);
    b.add("system.filesystem.utilization", utilization);
    Ok(())
}
