//! Reading segment files back at open: intact records, and the damaged stretches between
//! them. See [`super::wal`] for the formats.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;

use super::{io_err, Replayed, WalError, BODY_PREFIX, MAGIC, RECORD_HEADER};

/// `len` and `crc` in front of each body of the old (`.seg`) format.
const V1_HEADER: usize = 8;

/// A stretch of a segment that holds no intact record.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
    /// What was wrong at `offset`.
    pub reason: &'static str,
    /// The sequence number of the intact record after it, if any in this file.
    pub before_seq: Option<u64>,
    /// Record markers inside it (after its first byte): records it held beyond the first,
    /// unless damage hit their markers too.
    pub markers: u64,
}

/// What one segment file holds.
pub struct SegmentRead {
    /// Its intact records, in file order.
    pub records: Vec<Replayed>,
    /// Its damaged stretches, in file order.
    pub damage: Vec<Damage>,
    /// The offset just after the last intact record (where a torn tail is cut off).
    pub good_end: u64,
    /// The file's length.
    pub len: u64,
}

fn read_all(path: &Path) -> Result<Bytes, WalError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(path, "read segment"))?;
    Ok(Bytes::from(data))
}

fn le_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// The body checksum of the current format: it covers the length field too, so a damaged
/// length is caught before it is trusted.
pub fn record_crc(len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Parses a current-format record at `at`: its body range, or why not.
fn parse_v2(data: &[u8], at: usize) -> Result<(usize, usize), &'static str> {
    let header = data.get(at..at + RECORD_HEADER).ok_or("cut short header")?;
    if header[..4] != MAGIC {
        return Err("no record marker");
    }
    let len = le_u32(&header[4..]).ok_or("cut short header")?;
    let crc = le_u32(&header[8..]).ok_or("cut short header")?;
    let body_at = at + RECORD_HEADER;
    let body_end = body_at
        .checked_add(len as usize)
        .ok_or("impossible length")?;
    if (len as usize) < BODY_PREFIX {
        return Err("impossible length");
    }
    let body = data.get(body_at..body_end).ok_or("record cut short")?;
    if record_crc(len, body) != crc {
        return Err("checksum mismatch");
    }
    Ok((body_at, body_end))
}

fn to_record(data: &Bytes, body_at: usize, body_end: usize) -> Result<Replayed, &'static str> {
    let body = &data[body_at..body_end];
    let seq = u64::from_le_bytes(body[..8].try_into().map_err(|_| "bad sequence")?);
    let signal = weir_api::Signal::from_code(body[8]).ok_or("unknown signal")?;
    Ok(Replayed {
        seq,
        signal,
        payload: data.slice(body_at + BODY_PREFIX..body_end),
    })
}

/// Reads a current-format (`.wal`) segment. After a damaged record the reader looks for the
/// next record marker that starts an intact record with a later sequence number, so damage
/// costs only the records it touches.
pub fn read_v2(path: &Path) -> Result<SegmentRead, WalError> {
    let data = read_all(path)?;
    let mut out = SegmentRead {
        records: Vec::new(),
        damage: Vec::new(),
        good_end: 0,
        len: data.len() as u64,
    };
    let mut at = 0usize;
    while at < data.len() {
        let parsed = parse_v2(&data, at).and_then(|(b, e)| Ok((to_record(&data, b, e)?, e)));
        let last_seq = out.records.last().map(|r| r.seq);
        match parsed {
            Ok((record, end)) if last_seq.is_none_or(|s| record.seq > s) => {
                out.records.push(record);
                at = end;
                out.good_end = end as u64;
            }
            other => {
                let reason = match other {
                    Err(why) => why,
                    Ok(_) => "sequence number out of order",
                };
                // Resynchronise: the next marker that starts an intact, later record.
                let mut next = at + 1;
                let found = loop {
                    let Some(i) = find_magic(&data[next.min(data.len())..]) else {
                        break None;
                    };
                    let cand = next + i;
                    if let Ok((b, e)) = parse_v2(&data, cand) {
                        if let Ok(r) = to_record(&data, b, e) {
                            if last_seq.is_none_or(|s| r.seq > s) {
                                break Some((cand, r.seq));
                            }
                        }
                    }
                    next = cand + 1;
                };
                let stop = found.map_or(data.len(), |(c, _)| c);
                out.damage.push(Damage {
                    offset: at as u64,
                    bytes: (stop - at) as u64,
                    reason,
                    before_seq: found.map(|(_, s)| s),
                    markers: count_magic(&data[(at + 1).min(stop)..stop]),
                });
                at = stop;
            }
        }
    }
    Ok(out)
}

fn count_magic(hay: &[u8]) -> u64 {
    hay.windows(MAGIC.len()).filter(|w| *w == MAGIC).count() as u64
}

fn find_magic(hay: &[u8]) -> Option<usize> {
    hay.windows(MAGIC.len()).position(|w| w == MAGIC)
}

/// Reads a segment of the format before record markers (`.seg`): a damaged record ends
/// the reading of the file, as there is no marker to find the next one by.
pub fn read_v1(path: &Path) -> Result<SegmentRead, WalError> {
    let data = read_all(path)?;
    let mut out = SegmentRead {
        records: Vec::new(),
        damage: Vec::new(),
        good_end: 0,
        len: data.len() as u64,
    };
    let mut at = 0usize;
    while at < data.len() {
        let parsed = (|| {
            let header = data.get(at..at + V1_HEADER).ok_or("cut short header")?;
            let len = le_u32(header).ok_or("cut short header")? as usize;
            let crc = le_u32(&header[4..]).ok_or("cut short header")?;
            let body_at = at + V1_HEADER;
            let body = data
                .get(body_at..body_at.saturating_add(len))
                .ok_or("record cut short")?;
            if len < BODY_PREFIX || crc32fast::hash(body) != crc {
                return Err("checksum mismatch");
            }
            Ok((to_record(&data, body_at, body_at + len)?, body_at + len))
        })();
        match parsed {
            Ok((record, end)) => {
                out.records.push(record);
                at = end;
                out.good_end = end as u64;
            }
            Err(reason) => {
                out.damage.push(Damage {
                    offset: at as u64,
                    bytes: (data.len() - at) as u64,
                    reason,
                    before_seq: None,
                    markers: 0,
                });
                break;
            }
        }
    }
    Ok(out)
}
