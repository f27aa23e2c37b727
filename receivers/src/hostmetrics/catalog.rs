//! The metrics each scraper can emit, as the Collector names them: name, description,
//! unit, type and whether it is on by default, per scraper.

/// How a metric is typed, as in the Collector's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cumulative monotonic sum.
    Counter,
    /// A cumulative non-monotonic sum.
    UpDown,
    /// A gauge.
    Gauge,
}

/// One metric a scraper can produce: name, unit, type, and whether the Collector enables it by default.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The metric name.
    pub name: &'static str,
    /// The unit.
    pub unit: &'static str,
    /// Sum (monotonic or not) or gauge.
    pub kind: Kind,
    /// Integer (true) or double points.
    pub int: bool,
    /// Whether the metric is produced when the config does not say.
    pub default_enabled: bool,
}

const fn def(name: &'static str, unit: &'static str, kind: Kind, int: bool) -> MetricDef {
    MetricDef {
        name,
        unit,
        kind,
        int,
        default_enabled: true,
    }
}

const CPU: &[MetricDef] = &[
    def("system.cpu.time", "s", Kind::Counter, false),
    MetricDef {
        default_enabled: false,
        ..def("system.cpu.logical.count", "{cpu}", Kind::UpDown, true)
    },
    MetricDef {
        default_enabled: false,
        ..def("system.cpu.physical.count", "{cpu}", Kind::UpDown, true)
    },
];

const MEMORY: &[MetricDef] = &[
    def("system.memory.usage", "By", Kind::UpDown, true),
    MetricDef {
        default_enabled: false,
        ..def("system.memory.utilization", "1", Kind::Gauge, false)
    },
];

const LOAD: &[MetricDef] = &[
    def("system.cpu.load_average.1m", "{thread}", Kind::Gauge, false),
    def("system.cpu.load_average.5m", "{thread}", Kind::Gauge, false),
    def(
        "system.cpu.load_average.15m",
        "{thread}",
        Kind::Gauge,
        false,
    ),
];

const DISK: &[MetricDef] = &[
    def("system.disk.io", "By", Kind::Counter, true),
    def(
        "system.disk.operations",
        "{operations}",
        Kind::Counter,
        true,
    ),
    def("system.disk.io_time", "s", Kind::Counter, false),
    def("system.disk.operation_time", "s", Kind::Counter, false),
    def("system.disk.weighted_io_time", "s", Kind::Counter, false),
    def(
        "system.disk.pending_operations",
        "{operations}",
        Kind::UpDown,
        true,
    ),
    def("system.disk.merged", "{operations}", Kind::Counter, true),
];

const NETWORK: &[MetricDef] = &[
    def("system.network.packets", "{packets}", Kind::Counter, true),
    def("system.network.dropped", "{packets}", Kind::Counter, true),
    def("system.network.errors", "{errors}", Kind::Counter, true),
    def("system.network.io", "By", Kind::Counter, true),
    def(
        "system.network.connections",
        "{connections}",
        Kind::UpDown,
        true,
    ),
];

const PROCESSES: &[MetricDef] = &[
    def(
        "system.processes.created",
        "{processes}",
        Kind::Counter,
        true,
    ),
    def("system.processes.count", "{processes}", Kind::UpDown, true),
];

const PAGING: &[MetricDef] = &[
    def("system.paging.usage", "By", Kind::UpDown, true),
    def(
        "system.paging.operations",
        "{operations}",
        Kind::Counter,
        true,
    ),
    def("system.paging.faults", "{faults}", Kind::Counter, true),
    MetricDef {
        default_enabled: false,
        ..def("system.paging.utilization", "1", Kind::Gauge, false)
    },
];

const FILESYSTEM: &[MetricDef] = &[
    def("system.filesystem.usage", "By", Kind::UpDown, true),
    def(
        "system.filesystem.inodes.usage",
        "{inodes}",
        Kind::UpDown,
        true,
    ),
    MetricDef {
        default_enabled: false,
        ..def("system.filesystem.utilization", "1", Kind::Gauge, false)
    },
];

const PROCESS: &[MetricDef] = &[
    def("process.cpu.time", "s", Kind::Counter, false),
    def("process.memory.usage", "By", Kind::UpDown, true),
    def("process.memory.virtual", "By", Kind::UpDown, true),
    def("process.disk.io", "By", Kind::Counter, true),
];

/// The scrapers this receiver has, with their metrics.
pub const SCRAPERS: &[(&str, &[MetricDef])] = &[
    ("cpu", CPU),
    ("memory", MEMORY),
    ("load", LOAD),
    ("disk", DISK),
    ("network", NETWORK),
    ("paging", PAGING),
    ("processes", PROCESSES),
    ("filesystem", FILESYSTEM),
    ("process", PROCESS),
];

/// The Collector's scrapers this receiver does not have yet.
pub(super) const UNSUPPORTED_SCRAPERS: &[&str] = &["system"];
