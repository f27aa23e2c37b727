//! Time zones of the `location` setting: UTC, or the transitions of a system zoneinfo
//! (TZif) file, and the offset they give at a UTC or a local time.

use std::path::Path;
use std::sync::Arc;

/// A time zone: UTC or the transitions of a zoneinfo file.
#[derive(Debug, Clone)]
pub enum Zone {
    Utc,
    Tz(Arc<TzData>),
}

/// Transitions (UTC seconds) and the offset from each on; `initial` before the first.
#[derive(Debug)]
pub struct TzData {
    transitions: Vec<(i64, i32)>,
    initial: i32,
}

impl Zone {
    /// The zone named as the Collector's `location` (IANA name, `UTC`, `Local`).
    pub fn named(name: &str) -> Result<Zone, String> {
        match name {
            "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "Zulu" => return Ok(Zone::Utc),
            _ => {}
        }
        let path = if name.is_empty() || name == "Local" {
            Path::new("/etc/localtime").to_path_buf()
        } else {
            if name.contains("..") || name.starts_with('/') {
                return Err(format!("{name:?} is not a time zone name"));
            }
            Path::new("/usr/share/zoneinfo").join(name)
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Zone::Tz(Arc::new(parse_tzif(&bytes).ok_or_else(|| {
                    format!("{} is not a zoneinfo file", path.display())
                })?)))
            }
            // No local zone file: the machine's local time is UTC.
            Err(_) if name.is_empty() || name == "Local" => Ok(Zone::Utc),
            Err(e) => Err(format!(
                "unknown time zone {name:?} ({}: {e})",
                path.display()
            )),
        }
    }

    fn offset_at_utc(&self, utc: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Tz(t) => {
                let i = t.transitions.partition_point(|(at, _)| *at <= utc);
                if i == 0 {
                    t.initial
                } else {
                    t.transitions[i - 1].1
                }
            }
        }
    }

    /// The UTC seconds of a local wall-clock time in this zone.
    pub(super) fn local_to_utc(&self, local: i64) -> i64 {
        let off0 = self.offset_at_utc(local);
        let off1 = self.offset_at_utc(local - off0 as i64);
        local - off1 as i64
    }
}

fn be32(b: &[u8], at: usize) -> Option<i64> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as i64)
}
fn be64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a TZif file (version 1 data, or the 64-bit block of version 2+).
fn parse_tzif(b: &[u8]) -> Option<TzData> {
    if b.get(0..4)? != b"TZif" {
        return None;
    }
    let counts = |at: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = be32(b, at + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    let [isut, isstd, leap, time, typ, chars] = counts(0)?;
    let at = 44;
    if b[4] >= b'2' {
        let at = at + time * 4 + time + typ * 6 + chars + leap * 8 + isstd + isut;
        if b.get(at..at + 4)? != b"TZif" {
            return None;
        }
        let c = counts(at)?;
        let [_, _, _, time2, typ2, _] = c;
        return read_block(b, at + 44, time2, typ2, 8);
    }
    read_block(b, at, time, typ, 4)
}

fn read_block(b: &[u8], at: usize, time: usize, typ: usize, tsize: usize) -> Option<TzData> {
    let times_at = at;
    let idx_at = times_at + time * tsize;
    let types_at = idx_at + time;
    let mut offsets = Vec::with_capacity(typ);
    for i in 0..typ {
        offsets.push(be32(b, types_at + 6 * i)? as i32);
    }
    let mut transitions = Vec::with_capacity(time);
    for i in 0..time {
        let t = if tsize == 8 {
            be64(b, times_at + 8 * i)?
        } else {
            be32(b, times_at + 4 * i)?
        };
        let ty = *b.get(idx_at + i)? as usize;
        transitions.push((t, *offsets.get(ty)?));
    }
    Some(TzData {
        transitions,
        initial: offsets.first().copied().unwrap_or(0),
    })
}
