//! A small Thrift reader for the Jaeger messages: the binary protocol (the body of
//! `POST /api/traces`, and UDP port 6832) and the compact protocol (UDP port 6831), read
//! into a generic value tree that [`super::convert`] maps onto the `jaeger.thrift` structs.
//!
//! Hostile input is bounded: a container may not claim more elements than bytes remain,
//! nesting is limited to [`MAX_DEPTH`], and every error names the byte offset.

/// Deepest nesting of structs, lists and maps accepted.
pub const MAX_DEPTH: usize = 32;

/// A decoded Thrift value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `bool`.
    Bool(bool),
    /// `byte`.
    Byte(i8),
    /// `i16`.
    I16(i16),
    /// `i32` (and enums).
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `double`.
    Double(f64),
    /// `string` / `binary`.
    Binary(Vec<u8>),
    /// A struct: `(field id, value)` in wire order.
    Struct(Vec<(i16, Value)>),
    /// `list` or `set`.
    List(Vec<Value>),
    /// `map`.
    Map(Vec<(Value, Value)>),
}

/// The Thrift protocol of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TBinaryProtocol.
    Binary,
    /// TCompactProtocol.
    Compact,
}

/// A Thrift message header (the UDP agent's `emitBatch` calls carry one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// The method name.
    pub name: String,
    /// 1 call, 2 reply, 3 exception, 4 oneway.
    pub kind: u8,
    /// Sequence id.
    pub seq_id: i32,
}

/// Wire type ids of the binary protocol (the compact protocol maps its own onto these).
mod ty {
    pub const STOP: u8 = 0;
    pub const BOOL: u8 = 2;
    pub const BYTE: u8 = 3;
    pub const DOUBLE: u8 = 4;
    pub const I16: u8 = 6;
    pub const I32: u8 = 8;
    pub const I64: u8 = 10;
    pub const STRING: u8 = 11;
    pub const STRUCT: u8 = 12;
    pub const MAP: u8 = 13;
    pub const SET: u8 = 14;
    pub const LIST: u8 = 15;
}

/// A reader over one buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    protocol: Protocol,
}

impl<'a> Reader<'a> {
    /// A reader of `buf` in `protocol`.
    pub fn new(buf: &'a [u8], protocol: Protocol) -> Self {
        Reader {
            buf,
            pos: 0,
            protocol,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.remaining() < n {
            return Err(self.err(&format!(
                "unexpected end of input (need {n} bytes, {} left)",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut out: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i16(&mut self) -> Result<i16, String> {
        match self.protocol {
            Protocol::Binary => Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2"))),
            Protocol::Compact => {
                let v = self.zigzag()?;
                i16::try_from(v).map_err(|_| self.err("i16 out of range"))
            }
        }
    }

    fn i32(&mut self) -> Result<i32, String> {
        match self.protocol {
            Protocol::Binary => Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4"))),
            Protocol::Compact => {
                let v = self.zigzag()?;
                i32::try_from(v).map_err(|_| self.err("i32 out of range"))
            }
        }
    }

    fn i64(&mut self) -> Result<i64, String> {
        match self.protocol {
            Protocol::Binary => Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8"))),
            Protocol::Compact => self.zigzag(),
        }
    }

    fn double(&mut self) -> Result<f64, String> {
        let b: [u8; 8] = self.take(8)?.try_into().expect("8");
        Ok(match self.protocol {
            Protocol::Binary => f64::from_be_bytes(b),
            Protocol::Compact => f64::from_le_bytes(b),
        })
    }

    fn length(&mut self, what: &str) -> Result<usize, String> {
        let n: i64 = match self.protocol {
            Protocol::Binary => i64::from(self.i32()?),
            Protocol::Compact => i64::try_from(self.varint()?).unwrap_or(i64::MAX),
        };
        if n < 0 {
            return Err(self.err(&format!("negative {what} length {n}")));
        }
        let n = n as usize;
        // Every element takes at least one byte, so a claim past the end is a lie.
        if n > self.remaining() {
            return Err(self.err(&format!(
                "{what} length {n} is more than the {} bytes left",
                self.remaining()
            )));
        }
        Ok(n)
    }

    fn binary(&mut self) -> Result<Vec<u8>, String> {
        let n = self.length("string")?;
        Ok(self.take(n)?.to_vec())
    }

    /// Maps a compact type nibble to the binary protocol's type id.
    fn compact_type(&self, t: u8) -> Result<u8, String> {
        Ok(match t {
            1 | 2 => ty::BOOL,
            3 => ty::BYTE,
            4 => ty::I16,
            5 => ty::I32,
            6 => ty::I64,
            7 => ty::DOUBLE,
            8 => ty::STRING,
            9 => ty::LIST,
            10 => ty::SET,
            11 => ty::MAP,
            12 => ty::STRUCT,
            other => return Err(self.err(&format!("unknown compact type {other}"))),
        })
    }

    /// Reads a message header.
    pub fn message_header(&mut self) -> Result<MessageHeader, String> {
        match self.protocol {
            Protocol::Binary => {
                let first = self.i32()?;
                if first < 0 {
                    let version = (first as u32) & 0xffff_0000;
                    if version != 0x8001_0000 {
                        return Err(self.err(&format!("bad binary protocol version {version:#x}")));
                    }
                    let kind = (first & 0xff) as u8;
                    let name = String::from_utf8_lossy(&self.binary()?).into_owned();
                    let seq_id = self.i32()?;
                    Ok(MessageHeader { name, kind, seq_id })
                } else {
                    // Old, non-strict form: the name's length first.
                    let n = first as usize;
                    if n > self.remaining() {
                        return Err(self.err("message name longer than the input"));
                    }
                    let name = String::from_utf8_lossy(self.take(n)?).into_owned();
                    let kind = self.u8()?;
                    let seq_id = self.i32()?;
                    Ok(MessageHeader { name, kind, seq_id })
                }
            }
            Protocol::Compact => {
                let id = self.u8()?;
                if id != 0x82 {
                    return Err(
                        self.err(&format!("bad compact protocol id {id:#x} (0x82 expected)"))
                    );
                }
                let vt = self.u8()?;
                if vt & 0x1f != 1 {
                    return Err(self.err(&format!("bad compact protocol version {}", vt & 0x1f)));
                }
                let kind = vt >> 5;
                let seq_id = i32::try_from(self.varint()?).unwrap_or(i32::MAX);
                let name = String::from_utf8_lossy(&self.binary()?).into_owned();
                Ok(MessageHeader { name, kind, seq_id })
            }
        }
    }

    /// Reads a struct.
    pub fn read_struct(&mut self, depth: usize) -> Result<Vec<(i16, Value)>, String> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("nesting deeper than {MAX_DEPTH}")));
        }
        let mut fields = Vec::new();
        let mut last_id: i16 = 0;
        loop {
            match self.protocol {
                Protocol::Binary => {
                    let t = self.u8()?;
                    if t == ty::STOP {
                        return Ok(fields);
                    }
                    let id = self.i16()?;
                    let v = self.read_value(t, depth + 1)?;
                    fields.push((id, v));
                }
                Protocol::Compact => {
                    let header = self.u8()?;
                    if header == 0 {
                        return Ok(fields);
                    }
                    let t = header & 0x0f;
                    let delta = header >> 4;
                    let id = if delta == 0 {
                        self.i16()?
                    } else {
                        last_id.wrapping_add(i16::from(delta))
                    };
                    last_id = id;
                    let v = match t {
                        1 => Value::Bool(true),
                        2 => Value::Bool(false),
                        _ => {
                            let t = self.compact_type(t)?;
                            self.read_value(t, depth + 1)?
                        }
                    };
                    fields.push((id, v));
                }
            }
        }
    }

    fn list_header(&mut self) -> Result<(u8, usize), String> {
        match self.protocol {
            Protocol::Binary => {
                let t = self.u8()?;
                let n = self.length("list")?;
                Ok((t, n))
            }
            Protocol::Compact => {
                let h = self.u8()?;
                let t = self.compact_type(h & 0x0f)?;
                let n = if h >> 4 == 15 {
                    self.length("list")?
                } else {
                    usize::from(h >> 4)
                };
                if n > self.remaining() {
                    return Err(self.err("list longer than the input"));
                }
                Ok((t, n))
            }
        }
    }

    fn read_value(&mut self, t: u8, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(match t {
            ty::BOOL => match self.protocol {
                Protocol::Binary => Value::Bool(self.u8()? != 0),
                // In compact lists and maps a bool is one byte: 1 true, 2 (or 0) false.
                Protocol::Compact => Value::Bool(self.u8()? == 1),
            },
            ty::BYTE => Value::Byte(self.u8()? as i8),
            ty::I16 => Value::I16(self.i16()?),
            ty::I32 => Value::I32(self.i32()?),
            ty::I64 => Value::I64(self.i64()?),
            ty::DOUBLE => Value::Double(self.double()?),
            ty::STRING => Value::Binary(self.binary()?),
            ty::STRUCT => Value::Struct(self.read_struct(depth)?),
            ty::LIST | ty::SET => {
                let (et, n) = self.list_header()?;
                let mut items = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    items.push(self.read_value(et, depth + 1)?);
                }
                Value::List(items)
            }
            ty::MAP => {
                let (kt, vt, n) = match self.protocol {
                    Protocol::Binary => {
                        let kt = self.u8()?;
                        let vt = self.u8()?;
                        (kt, vt, self.length("map")?)
                    }
                    Protocol::Compact => {
                        let n = self.length("map")?;
                        if n == 0 {
                            (0, 0, 0)
                        } else {
                            let kv = self.u8()?;
                            (
                                self.compact_type(kv >> 4)?,
                                self.compact_type(kv & 0x0f)?,
                                n,
                            )
                        }
                    }
                };
                let mut items = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    let k = self.read_value(kt, depth + 1)?;
                    let v = self.read_value(vt, depth + 1)?;
                    items.push((k, v));
                }
                Value::Map(items)
            }
            other => return Err(self.err(&format!("unknown type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_struct_with_deltas_bools_and_lists() {
        // field 1: i64 zigzag(-1)=1; field 2 (delta 1): bool true; field 5 (delta 3): list of
        // 2 binaries "a", "bc"; field 300 (long form): i32 zigzag(7)=14; stop.
        let buf = [
            0x16, 0x01, 0x11, 0x39, 0x28, 0x01, b'a', 0x02, b'b', b'c', 0x05, 0xd8, 0x04, 0x0e,
            0x00,
        ];
        let mut r = Reader::new(&buf, Protocol::Compact);
        let s = r.read_struct(0).unwrap();
        assert_eq!(
            s,
            vec![
                (1, Value::I64(-1)),
                (2, Value::Bool(true)),
                (
                    5,
                    Value::List(vec![
                        Value::Binary(b"a".to_vec()),
                        Value::Binary(b"bc".to_vec())
                    ])
                ),
                (300, Value::I32(7)),
            ]
        );
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn lies_about_lengths_and_depth_are_errors() {
        // binary: string field claiming 1000 bytes.
        let buf = [11, 0, 1, 0, 0, 3, 232, b'x'];
        let e = Reader::new(&buf, Protocol::Binary)
            .read_struct(0)
            .unwrap_err();
        assert_eq!(
            e,
            "string length 1000 is more than the 1 bytes left at byte 7"
        );
        // compact: structs nested past the limit.
        let buf = vec![0x1c; 100];
        let e = Reader::new(&buf, Protocol::Compact)
            .read_struct(0)
            .unwrap_err();
        assert!(e.starts_with("nesting deeper than 32"), "{e}");
        let e = Reader::new(&[0x1f], Protocol::Compact)
            .read_struct(0)
            .unwrap_err();
        assert_eq!(e, "unknown compact type 15 at byte 1");
    }
}
