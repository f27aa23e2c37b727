//! The container operator at run time: Docker, CRI-O and containerd lines, their times,
//! and the Kubernetes metadata taken from the file path.

use super::super::timefmt::{self, Zone};
use super::super::{json, Entry, Field, Root, Sent, Val};
use super::{Container, Format, Res};

fn path_re() -> &'static regex::Regex {
    static R: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        regex::Regex::new(r"^.*(/|\\)(?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9\-]+)(/|\\)(?P<container_name>[^\._]+)(/|\\)(?P<restart_count>\d+)\.log$")
            .expect("static regex")
    })
}
fn layout_utc() -> &'static timefmt::Layout {
    static L: std::sync::OnceLock<timefmt::Layout> = std::sync::OnceLock::new();
    L.get_or_init(|| timefmt::gotime("2006-01-02T15:04:05.999Z").expect("static layout"))
}
fn layout_crio() -> &'static (timefmt::Layout, Zone) {
    static L: std::sync::OnceLock<(timefmt::Layout, Zone)> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        (
            timefmt::gotime("2006-01-02T15:04:05.999999999Z07:00").expect("static layout"),
            Zone::named("Local").unwrap_or(Zone::Utc),
        )
    })
}

/// The fields of a CRI-O (`containerd` false) or containerd line as the patterns
/// `^(?P<time>[^ Z]+) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$` and
/// `^(?P<time>[^ ^Z]+Z) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$` capture
/// them (`None` where they do not match), found without running them: the time, the stream,
/// the log tag and where the log starts.
fn cri_fields(s: &str, containerd: bool) -> Option<(&str, &'static str, &str, usize)> {
    // The time holds no space, so it ends at the first one.
    let sp = s.find(' ')?;
    let time = &s[..sp];
    if containerd {
        let t = time.strip_suffix('Z')?;
        if t.is_empty() || t.contains(['^', 'Z']) {
            return None;
        }
    } else if time.is_empty() || time.contains('Z') {
        return None;
    }
    let rest = &s[sp + 1..];
    let stream = if rest.starts_with("stdout ") {
        "stdout"
    } else if rest.starts_with("stderr ") {
        "stderr"
    } else {
        return None;
    };
    let tag_at = sp + 1 + stream.len() + 1;
    let tag_len = s[tag_at..].find(' ').unwrap_or(s.len() - tag_at);
    let mut log_at = tag_at + tag_len;
    if s.as_bytes().get(log_at) == Some(&b' ') {
        log_at += 1;
    }
    // `.` does not match a newline, and `$` is the end of the text.
    if s[log_at..].contains('\n') {
        return None;
    }
    Some((time, stream, &s[tag_at..tag_at + tag_len], log_at))
}

/// Parses the time of a container line.
fn container_time(format: Format, s: &str) -> Result<u64, String> {
    if format == Format::Crio {
        let (l, z) = layout_crio();
        l.parse(s, z)
    } else {
        layout_utc().parse(s, &Zone::Utc)
    }
}

impl Container {
    pub(super) fn process(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        let raw = match self.parse_from.get(&e) {
            Some(Val::Str(s)) => s,
            Some(other) => {
                let k = other.kind();
                return Err((
                    format!("container: type {k} cannot be parsed as container logs"),
                    Some(e),
                ));
            }
            None => {
                return Err((
                    format!("container: entry has no field {}", self.parse_from),
                    Some(e),
                ))
            }
        };
        let format = match self.format {
            Some(f) => f,
            None if raw.starts_with('{') => Format::Docker,
            None if cri_fields(raw, false).is_some() => Format::Crio,
            None if cri_fields(raw, true).is_some() => Format::Containerd,
            None => {
                return Err((
                    "container: failed to detect a valid container log format".into(),
                    Some(e),
                ))
            }
        };
        if format != Format::Docker {
            // A CRI line the operator fails on is dropped whatever on_error says.
            let Some((time, stream, logtag, log_at)) =
                cri_fields(raw, format == Format::Containerd)
            else {
                let name = if format == Format::Crio {
                    "crio"
                } else {
                    "containerd"
                };
                return Err((
                    format!("container: {name} log: regex pattern does not match"),
                    None,
                ));
            };
            let t = container_time(format, time)
                .map_err(|x| (format!("container: failed to parse time: {x}"), None))?;
            let logtag = logtag.to_string();
            let log = if self.parse_from == Field::body() {
                // The log is the end of the body: cut the body's front off in place.
                match std::mem::replace(&mut e.body, Val::Null) {
                    Val::Str(mut b) => {
                        b.drain(..log_at);
                        b
                    }
                    _ => String::new(),
                }
            } else {
                raw[log_at..].to_string()
            };
            // As if the four captures were set on the attributes and time, log and stream
            // then moved away (so attributes of those names are gone).
            e.attributes.remove("time");
            e.attributes.remove("log");
            e.attributes.remove("stream");
            e.attributes.insert("logtag".into(), Val::Str(logtag));
            e.timestamp = t;
            e.body = Val::Str(log);
            e.attributes
                .insert("log.iostream".into(), Val::Str(stream.to_string()));
            self.add_metadata(&mut e).map_err(|(msg, _)| (msg, None))?;
            self.recombine.process(e, fwd);
            return Ok(Sent::Next);
        }
        let parsed = match json::parse(raw, false) {
            Ok(m @ Val::Map(_)) => m,
            Ok(_) => {
                return Err((
                    "container: docker log line is not a JSON object".into(),
                    Some(e),
                ))
            }
            Err(x) => return Err((format!("container: docker log line: {x}"), Some(e))),
        };
        Field {
            root: Root::Attributes,
            keys: vec![],
        }
        .set(&mut e, parsed);
        self.after_docker(e, fwd)
    }

    /// Time, moves and Kubernetes metadata after a docker line was parsed into the
    /// attributes.
    fn after_docker(&mut self, mut e: Entry, fwd: &mut Vec<Entry>) -> Res {
        // time -> timestamp (the attribute is removed, as with the Collector's default
        // feature gate filelog.container.removeOriginalTimeField)
        let t = match e.attributes.get("time") {
            Some(Val::Str(s)) => container_time(Format::Docker, s),
            _ => Err("no time field".to_string()),
        };
        match t {
            Ok(ns) => e.timestamp = ns,
            Err(x) => return Err((format!("container: failed to parse time: {x}"), Some(e))),
        }
        e.attributes.remove("time");
        match e.attributes.remove("log") {
            Some(v) => e.body = v,
            None => return Err(("container: move: field log does not exist".into(), Some(e))),
        }
        match e.attributes.remove("stream") {
            Some(v) => {
                e.attributes.insert("log.iostream".into(), v);
            }
            None => {
                return Err((
                    "container: move: field stream does not exist".into(),
                    Some(e),
                ))
            }
        }
        if let Err((msg, _)) = self.add_metadata(&mut e) {
            return Err((msg, Some(e)));
        }
        fwd.push(e);
        Ok(Sent::Next)
    }

    /// The Kubernetes metadata from `log.file.path` onto the resource (with
    /// `add_metadata_from_filepath`).
    fn add_metadata(&mut self, e: &mut Entry) -> Result<(), (String, Option<Entry>)> {
        if !self.add_metadata {
            return Ok(());
        }
        let path = match e.attributes.get("log.file.path") {
            Some(Val::Str(p)) => p,
            _ => return Err(("container: no log.file.path attribute for the Kubernetes metadata (set include_file_path: true, or add_metadata_from_filepath: false)".into(), None)),
        };
        if self.metadata.as_ref().map(|(p, _)| p) != Some(path) {
            let values = path_re().captures(path).map(|c| {
                [
                    "container_name",
                    "namespace",
                    "pod_name",
                    "restart_count",
                    "uid",
                ]
                .map(|g| c.name(g).map_or("", |x| x.as_str()).to_string())
            });
            self.metadata = Some((path.clone(), values));
        }
        let Some((_, Some(values))) = &self.metadata else {
            return Err((format!("container: {path:?} is not a /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log path"), None));
        };
        for (k, v) in [
            "k8s.container.name",
            "k8s.namespace.name",
            "k8s.pod.name",
            "k8s.container.restart_count",
            "k8s.pod.uid",
        ]
        .iter()
        .zip(values)
        {
            e.resource.insert((*k).into(), Val::Str(v.clone()));
        }
        Ok(())
    }
}
