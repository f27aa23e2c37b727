//! The Collector's `hostmetrics` metadata the test compares with: per scraper, its
//! default-enabled metrics (name, unit, type, value type, attribute keys), and the scope
//! name.

/// The Collector's default-enabled metrics per scraper: name, unit, type, value type, attribute keys.
/// type: "counter" = cumulative monotonic sum, "updown" = cumulative non-monotonic sum, "gauge".
/// name, unit, type, value type, attribute keys.
pub type Def = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

pub const COLLECTOR: &[(&str, &[Def])] = &[
    (
        "cpu",
        &[(
            "system.cpu.time",
            "s",
            "counter",
            "double",
            &["cpu", "state"],
        )],
    ),
    (
        "memory",
        &[("system.memory.usage", "By", "updown", "int", &["state"])],
    ),
    (
        "load",
        &[
            (
                "system.cpu.load_average.1m",
                "{thread}",
                "gauge",
                "double",
                &[],
            ),
            (
                "system.cpu.load_average.5m",
                "{thread}",
                "gauge",
                "double",
                &[],
            ),
            (
                "system.cpu.load_average.15m",
                "{thread}",
                "gauge",
                "double",
                &[],
            ),
        ],
    ),
    (
        "disk",
        &[
            (
                "system.disk.io",
                "By",
                "counter",
                "int",
                &["device", "direction"],
            ),
            (
                "system.disk.operations",
                "{operations}",
                "counter",
                "int",
                &["device", "direction"],
            ),
            ("system.disk.io_time", "s", "counter", "double", &["device"]),
            (
                "system.disk.operation_time",
                "s",
                "counter",
                "double",
                &["device", "direction"],
            ),
            (
                "system.disk.weighted_io_time",
                "s",
                "counter",
                "double",
                &["device"],
            ),
            (
                "system.disk.pending_operations",
                "{operations}",
                "updown",
                "int",
                &["device"],
            ),
            (
                "system.disk.merged",
                "{operations}",
                "counter",
                "int",
                &["device", "direction"],
            ),
        ],
    ),
    (
        "network",
        &[
            (
                "system.network.packets",
                "{packets}",
                "counter",
                "int",
                &["device", "direction"],
            ),
            (
                "system.network.dropped",
                "{packets}",
                "counter",
                "int",
                &["device", "direction"],
            ),
            (
                "system.network.errors",
                "{errors}",
                "counter",
                "int",
                &["device", "direction"],
            ),
            (
                "system.network.io",
                "By",
                "counter",
                "int",
                &["device", "direction"],
            ),
            (
                "system.network.connections",
                "{connections}",
                "updown",
                "int",
                &["protocol", "state"],
            ),
        ],
    ),
    (
        "filesystem",
        &[
            (
                "system.filesystem.usage",
                "By",
                "updown",
                "int",
                &["device", "mode", "mountpoint", "type", "state"],
            ),
            (
                "system.filesystem.inodes.usage",
                "{inodes}",
                "updown",
                "int",
                &["device", "mode", "mountpoint", "type", "state"],
            ),
        ],
    ),
    (
        "paging",
        &[
            (
                "system.paging.usage",
                "By",
                "updown",
                "int",
                &["device", "state"],
            ),
            (
                "system.paging.operations",
                "{operations}",
                "counter",
                "int",
                &["direction", "type"],
            ),
            (
                "system.paging.faults",
                "{faults}",
                "counter",
                "int",
                &["type"],
            ),
        ],
    ),
    (
        "processes",
        &[
            (
                "system.processes.created",
                "{processes}",
                "counter",
                "int",
                &[],
            ),
            (
                "system.processes.count",
                "{processes}",
                "updown",
                "int",
                &["status"],
            ),
        ],
    ),
];

pub const SCOPE: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/";
