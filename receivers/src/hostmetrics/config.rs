//! The receiver's config: collection interval and delay, the scrapers with their metric
//! toggles, and the include/exclude filters (strict or regexp) some scrapers take.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use weir_api::ConfigErrors;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub(super) collection_interval: Duration,
    #[serde(default = "default_delay", with = "humantime_serde")]
    pub(super) initial_delay: Duration,
    #[serde(default)]
    pub(super) root_path: Option<String>,
    #[serde(default)]
    pub(super) scrapers: BTreeMap<String, serde_json::Value>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_delay() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScraperSettings {
    #[serde(default)]
    pub(super) metrics: BTreeMap<String, MetricToggle>,
    include: Option<MatchSet>,
    exclude: Option<MatchSet>,
    include_devices: Option<MatchSet>,
    exclude_devices: Option<MatchSet>,
    include_fs_types: Option<MatchSet>,
    exclude_fs_types: Option<MatchSet>,
    include_mount_points: Option<MatchSet>,
    exclude_mount_points: Option<MatchSet>,
    include_virtual_filesystems: Option<bool>,
}

/// A filter as the Collector writes it: one list (which one depends on the scraper and the
/// field) and `match_type` `strict` (equal) or `regexp` (Go's unanchored match).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSet {
    names: Option<Vec<String>>,
    devices: Option<Vec<String>>,
    interfaces: Option<Vec<String>>,
    fs_types: Option<Vec<String>>,
    mount_points: Option<Vec<String>>,
    match_type: Option<String>,
}

/// A compiled list: exact names or regular expressions.
#[derive(Debug, Clone)]
enum Matcher {
    Strict(BTreeSet<String>),
    Regexp(Vec<regex::Regex>),
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match self {
            Matcher::Strict(set) => set.contains(v),
            Matcher::Regexp(res) => res.iter().any(|r| r.is_match(v)),
        }
    }
}

/// Include and exclude lists of one thing a scraper filters on (device, interface, process
/// name, fs type, mount point): kept when included (or no include list) and not excluded.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl Filter {
    pub(super) fn keeps(&self, v: &str) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(v))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(v))
    }
}

/// The filters of one scraper by what they filter on.
pub type Filters = BTreeMap<&'static str, Filter>;

/// Which fields a scraper takes: (field, list key, what it filters on).
fn filter_fields(scraper: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match scraper {
        "disk" => &[
            ("include", "devices", "device"),
            ("exclude", "devices", "device"),
        ],
        "network" => &[
            ("include", "interfaces", "interface"),
            ("exclude", "interfaces", "interface"),
        ],
        "process" => &[("include", "names", "name"), ("exclude", "names", "name")],
        "filesystem" => &[
            ("include_devices", "devices", "device"),
            ("exclude_devices", "devices", "device"),
            ("include_fs_types", "fs_types", "fs_type"),
            ("exclude_fs_types", "fs_types", "fs_type"),
            ("include_mount_points", "mount_points", "mount_point"),
            ("exclude_mount_points", "mount_points", "mount_point"),
        ],
        _ => &[],
    }
}

pub(super) fn compile_filters(
    scraper: &str,
    settings: &ScraperSettings,
    spath: &str,
    errors: &mut ConfigErrors,
) -> Filters {
    let given = [
        ("include", &settings.include),
        ("exclude", &settings.exclude),
        ("include_devices", &settings.include_devices),
        ("exclude_devices", &settings.exclude_devices),
        ("include_fs_types", &settings.include_fs_types),
        ("exclude_fs_types", &settings.exclude_fs_types),
        ("include_mount_points", &settings.include_mount_points),
        ("exclude_mount_points", &settings.exclude_mount_points),
    ];
    let allowed = filter_fields(scraper);
    let mut out = Filters::new();
    if let Some(v) = settings.include_virtual_filesystems {
        if scraper != "filesystem" {
            errors.push(
                format!("{spath}.include_virtual_filesystems"),
                format!("the `{scraper}` scraper has no `include_virtual_filesystems`"),
            );
        } else if v {
            out.insert("virtual", Filter::default());
        }
    }
    for (field, set) in given {
        let Some(set) = set else { continue };
        let fpath = format!("{spath}.{field}");
        let Some((_, key, what)) = allowed.iter().find(|(f, _, _)| *f == field) else {
            errors.push(
                fpath,
                format!("the `{scraper}` scraper has no `{field}` filter"),
            );
            continue;
        };
        let lists = [
            ("names", &set.names),
            ("devices", &set.devices),
            ("interfaces", &set.interfaces),
            ("fs_types", &set.fs_types),
            ("mount_points", &set.mount_points),
        ];
        let mut items = Vec::new();
        for (k, list) in lists {
            match list {
                Some(l) if k == *key => items = l.clone(),
                Some(_) => errors.push(
                    format!("{fpath}.{k}"),
                    format!("`{field}` of the `{scraper}` scraper takes `{key}`, not `{k}`"),
                ),
                None => {}
            }
        }
        let matcher = match set.match_type.as_deref() {
            Some("strict") => Matcher::Strict(items.into_iter().collect()),
            Some("regexp") => {
                let mut res = Vec::new();
                for (i, r) in items.iter().enumerate() {
                    match regex::Regex::new(r) {
                        Ok(r) => res.push(r),
                        Err(e) => errors.push(
                            format!("{fpath}.{key}[{i}]"),
                            format!("invalid regexp: {e}"),
                        ),
                    }
                }
                Matcher::Regexp(res)
            }
            Some(other) => {
                errors.push(
                    format!("{fpath}.match_type"),
                    format!("unknown match_type `{other}` (strict or regexp)"),
                );
                continue;
            }
            None => {
                errors.push(
                    format!("{fpath}.match_type"),
                    "match_type must be specified (strict or regexp)",
                );
                continue;
            }
        };
        let f = out.entry(*what).or_default();
        if field.starts_with("include") {
            f.include = Some(matcher);
        } else {
            f.exclude = Some(matcher);
        }
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricToggle {
    pub(super) enabled: bool,
}

/// The checked settings of a `hostmetrics` receiver.
#[derive(Debug, Clone)]
pub struct HostMetricsConfig {
    pub(super) collection_interval: Duration,
    pub(super) initial_delay: Duration,
    pub(super) root: PathBuf,
    /// Scraper name and the names of its enabled metrics.
    pub(super) scrapers: Vec<(&'static str, BTreeSet<&'static str>, Filters)>,
}
