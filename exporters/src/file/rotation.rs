//! One output file and its rotation: writing, rolling over at `max_megabytes`, naming
//! backups with a timestamp as lumberjack does, and removing backups beyond `max_days` and
//! `max_backups`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::config::RotationSettings;

/// The open output file, and rotation.
pub(super) struct Output {
    pub(super) path: PathBuf,
    pub(super) file: BufWriter<File>,
    /// Bytes in the current file (written or buffered).
    pub(super) size: u64,
    pub(super) rotation: Option<RotationSettings>,
    /// Seconds east of UTC for backup names (`localtime`), else 0.
    pub(super) offset_secs: i64,
}

impl Output {
    pub(super) fn write(&mut self, record: &[u8]) -> std::io::Result<()> {
        if let Some(r) = &self.rotation {
            // A record is never split: roll over first when it would not fit. A record larger
            // than the limit goes alone into a file of its own.
            if self.size > 0 && self.size + record.len() as u64 > r.max_bytes() {
                self.rotate()?;
            }
        }
        self.file.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        let now = SystemTime::now();
        let mut millis = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
            + self.offset_secs * 1000;
        // Two rollovers in one millisecond must not overwrite a backup.
        let backup = loop {
            let candidate = backup_path(&self.path, millis);
            if !candidate.exists() {
                break candidate;
            }
            millis += 1;
        };
        std::fs::rename(&self.path, &backup)?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(256 * 1024, file);
        self.size = 0;
        if let Some(r) = &self.rotation {
            remove_old_backups(&self.path, r, now, self.offset_secs);
        }
        Ok(())
    }
}

/// `dir/name.ext` -> (`name-`, `.ext`), the parts around a backup's timestamp.
fn backup_affixes(path: &Path) -> (String, String) {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.rfind('.') {
        Some(dot) if dot > 0 => (format!("{}-", &file[..dot]), file[dot..].to_string()),
        _ => (format!("{file}-"), String::new()),
    }
}

/// The backup name for a rollover at `millis` (milliseconds since the epoch, already shifted
/// to local time when asked).
pub(super) fn backup_path(path: &Path, millis: i64) -> PathBuf {
    let (prefix, ext) = backup_affixes(path);
    path.with_file_name(format!("{prefix}{}{ext}", format_timestamp(millis)))
}

/// `2006-01-02T15-04-05.000`, the collector's backup timestamp layout.
pub(super) fn format_timestamp(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}.{ms:03}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Milliseconds since the epoch of a timestamp written by [`format_timestamp`].
pub(super) fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 23 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The backups of `path` with their timestamps (ms), newest first.
fn list_backups(path: &Path) -> Vec<(i64, PathBuf)> {
    let (prefix, ext) = backup_affixes(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(&prefix)?.strip_suffix(ext.as_str())?;
            Some((parse_timestamp(stamp)?, entry.path()))
        })
        .collect();
    found.sort_by_key(|b| std::cmp::Reverse(b.0));
    found
}

/// Deletes backups beyond `max_backups` and older than `max_days`.
fn remove_old_backups(path: &Path, r: &RotationSettings, now: SystemTime, offset_secs: i64) {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        + offset_secs * 1000;
    for (i, (stamp, backup)) in list_backups(path).into_iter().enumerate() {
        let too_many = r.max_backups > 0 && i >= r.max_backups;
        let too_old = r.max_days > 0 && now_ms - stamp > r.max_days as i64 * 86_400_000;
        if too_many || too_old {
            if let Err(e) = std::fs::remove_file(&backup) {
                tracing::warn!(file = %backup.display(), error = %e, "file exporter: cannot delete an old backup");
            }
        }
    }
}

/// The local UTC offset in seconds, from `date +%z` (0 when it cannot be read).
pub(super) fn local_offset_secs() -> i64 {
    let out = std::process::Command::new("date").arg("+%z").output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            tracing::warn!("file exporter: cannot read the local time zone; backup names use UTC");
            return 0;
        }
    };
    let (sign, digits) = match text.split_at_checked(1) {
        Some(("-", d)) => (-1, d),
        Some(("+", d)) => (1, d),
        _ => return 0,
    };
    match (
        digits.get(0..2).and_then(|h| h.parse::<i64>().ok()),
        digits.get(2..4).and_then(|m| m.parse::<i64>().ok()),
    ) {
        (Some(h), Some(m)) => sign * (h * 3600 + m * 60),
        _ => 0,
    }
}
