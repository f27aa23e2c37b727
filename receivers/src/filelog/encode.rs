//! Log records written straight into an OTLP `ExportLogsServiceRequest` in protobuf, without
//! building `LogRecord` structs first: a line's body is copied once from the read buffer
//! into the request, and the attributes every record of a file shares (`log.file.name`,
//! `attributes:`) are encoded once per read and copied per record. The batch is handed on
//! as bytes, which the pipeline forwards without decoding unless a processor reads it.
//!
//! Field numbers are those of opentelemetry-proto (`logs/v1`, `common/v1`, `resource/v1`).
//! Scalars at their default value are left out, as prost does; values of the `AnyValue`
//! oneof are always written.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::operators::{Entry, Val};

const LEN: u32 = 2;
const I64: u32 = 1;
const VARINT: u32 = 0;

/// A varint; the small values most keys and lengths are take one push, the rest prost's
/// encoder (its generic path costs a call and a capacity check per byte).
#[inline]
fn put_varint(buf: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
    } else {
        prost::encoding::encode_varint(v, buf);
    }
}

fn varint_len(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from(field << 3 | wire));
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// A length-delimited field: key, length, bytes.
fn put_bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn field_len(field: u32, n: usize) -> usize {
    key_len(field) + varint_len(n as u64) + n
}

// ------------------------------------------------------------------ AnyValue from Val

/// Encoded size of an `AnyValue` holding `v` (its content, without key and length).
fn any_len(v: &Val) -> usize {
    match v {
        Val::Null => 0,
        Val::Bool(_) => 2,
        Val::Int(i) => 1 + varint_len(*i as u64),
        Val::Double(_) => 9,
        Val::Str(s) => field_len(1, s.len()),
        Val::Bytes(b) => field_len(7, b.len()),
        Val::List(l) => field_len(5, list_len(l)),
        Val::Map(m) => field_len(6, map_len(m)),
    }
}

/// `ArrayValue` content.
fn list_len(l: &[Val]) -> usize {
    l.iter().map(|x| field_len(1, any_len(x))).sum()
}

/// `KeyValueList` content (or a run of `KeyValue` fields numbered 1).
fn map_len(m: &BTreeMap<String, Val>) -> usize {
    m.iter().map(|(k, v)| field_len(1, kv_len(k, v))).sum()
}

fn kv_len(k: &str, v: &Val) -> usize {
    field_len(1, k.len()) + field_len(2, any_len(v))
}

fn put_any(buf: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Null => {}
        Val::Bool(b) => {
            put_key(buf, 2, VARINT);
            buf.push(u8::from(*b));
        }
        Val::Int(i) => {
            put_key(buf, 3, VARINT);
            put_varint(buf, *i as u64);
        }
        Val::Double(d) => {
            put_key(buf, 4, I64);
            buf.extend_from_slice(&d.to_le_bytes());
        }
        Val::Str(s) => put_bytes(buf, 1, s.as_bytes()),
        Val::Bytes(b) => put_bytes(buf, 7, b),
        Val::List(l) => {
            put_key(buf, 5, LEN);
            put_varint(buf, list_len(l) as u64);
            for x in l {
                put_key(buf, 1, LEN);
                put_varint(buf, any_len(x) as u64);
                put_any(buf, x);
            }
        }
        Val::Map(m) => {
            put_key(buf, 6, LEN);
            put_varint(buf, map_len(m) as u64);
            put_kvs(buf, 1, m);
        }
    }
}

/// Each entry of `m` as a `KeyValue` in field `field`.
fn put_kvs(buf: &mut Vec<u8>, field: u32, m: &BTreeMap<String, Val>) {
    for (k, v) in m {
        put_kv(buf, field, k, v);
    }
}

fn put_kv(buf: &mut Vec<u8>, field: u32, k: &str, v: &Val) {
    put_key(buf, field, LEN);
    put_varint(buf, kv_len(k, v) as u64);
    put_bytes(buf, 1, k.as_bytes());
    put_key(buf, 2, LEN);
    put_varint(buf, any_len(v) as u64);
    put_any(buf, v);
}

/// String attributes as `KeyValue`s in `LogRecord.attributes` (field 6), ready to be
/// copied into each record.
pub fn string_attributes<'a>(attrs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut buf = Vec::new();
    for (k, v) in attrs {
        let v = Val::Str(v.to_string());
        put_kv(&mut buf, 6, k, &v);
    }
    buf
}

// ------------------------------------------------------------------ the request

/// Room left at the front of a group's buffer for the `ResourceLogs` key and length and the
/// `ScopeLogs` key and length (each key one byte, each length at most ten), so that a request
/// of one group is handed on without copying its records.
const HEAD: usize = 2 * (1 + 10);

/// One `ResourceLogs` being written: its resource's attributes and the encoded records
/// (each a `ScopeLogs.log_records` field) in `buf` after `gap` bytes kept free for the
/// headers and the resource field.
struct Group {
    resource: Vec<u8>,
    buf: Vec<u8>,
    gap: usize,
}

impl Group {
    fn new(resource: Vec<u8>, capacity: usize) -> Group {
        let gap = HEAD
            + if resource.is_empty() {
                0
            } else {
                field_len(1, resource.len())
            };
        let mut buf = Vec::with_capacity(gap + capacity);
        buf.resize(gap, 0);
        Group { resource, buf, gap }
    }

    fn records_len(&self) -> usize {
        self.buf.len() - self.gap
    }
}

/// An `ExportLogsServiceRequest` under construction: records are added to the current
/// resource's group.
#[derive(Default)]
pub struct Request {
    groups: Vec<Group>,
    /// Records added.
    pub count: usize,
    /// Bytes the records of the first group are expected to take (its buffer is made that
    /// big at once, instead of growing by doubling).
    hint: usize,
}

impl Request {
    /// A request whose records are expected to take about `bytes` (a hint: more grows the
    /// buffer).
    pub fn with_capacity(bytes: usize) -> Request {
        Request {
            hint: bytes,
            ..Request::default()
        }
    }

    fn push_group(&mut self, resource: Vec<u8>) {
        let capacity = std::mem::take(&mut self.hint);
        self.groups.push(Group::new(resource, capacity));
    }

    /// Starts a group of records under a resource with `attributes` (string values; none:
    /// no resource).
    pub fn resource_strings<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut resource = Vec::new();
        for (k, v) in attributes {
            put_kv(&mut resource, 1, k, &Val::Str(v.to_string()));
        }
        self.push_group(resource);
    }

    fn resource_map(&mut self, m: &BTreeMap<String, Val>) {
        let mut resource = Vec::new();
        put_kvs(&mut resource, 1, m);
        self.push_group(resource);
    }

    fn current(&mut self) -> &mut Group {
        if self.groups.is_empty() {
            self.push_group(Vec::new());
        }
        let n = self.groups.len() - 1;
        &mut self.groups[n]
    }

    /// A record with a string body (valid UTF-8), the observed time and the pre-encoded
    /// `attributes` (see [`string_attributes`]).
    pub fn text_record(&mut self, observed: u64, body: &str, attributes: &[u8]) {
        self.record(observed, Some(body.as_bytes()), 1, attributes);
    }

    /// A record with a bytes body.
    pub fn bytes_record(&mut self, observed: u64, body: &[u8], attributes: &[u8]) {
        self.record(observed, Some(body), 7, attributes);
    }

    fn record(&mut self, observed: u64, body: Option<&[u8]>, body_field: u32, attributes: &[u8]) {
        let body_len = body.map_or(0, |b| field_len(body_field, b.len()));
        let mut len = attributes.len();
        if body.is_some() {
            len += field_len(5, body_len);
        }
        if observed != 0 {
            len += key_len(11) + 8;
        }
        let g = &mut self.current().buf;
        put_key(g, 2, LEN);
        put_varint(g, len as u64);
        if let Some(b) = body {
            put_key(g, 5, LEN);
            put_varint(g, body_len as u64);
            put_bytes(g, body_field, b);
        }
        g.extend_from_slice(attributes);
        if observed != 0 {
            put_key(g, 11, I64);
            g.extend_from_slice(&observed.to_le_bytes());
        }
        self.count += 1;
    }

    /// An entry out of the operators, in the group of its resource (groups in order of
    /// first appearance).
    pub fn entry(&mut self, e: &Entry, resources: &mut Vec<BTreeMap<String, Val>>) {
        let at = match resources.iter().position(|r| *r == e.resource) {
            Some(i) => i,
            None => {
                resources.push(e.resource.clone());
                self.resource_map(&e.resource);
                resources.len() - 1
            }
        };
        // The record's size first, so that it is written straight into its group.
        let body_len = any_len(&e.body);
        let mut len = 0;
        if e.timestamp != 0 {
            len += key_len(1) + 8;
        }
        if e.severity != 0 {
            len += key_len(2) + varint_len(e.severity as i64 as u64);
        }
        if !e.severity_text.is_empty() {
            len += field_len(3, e.severity_text.len());
        }
        if !matches!(e.body, Val::Null) {
            len += field_len(5, body_len);
        }
        len += e
            .attributes
            .iter()
            .map(|(k, v)| field_len(6, kv_len(k, v)))
            .sum::<usize>();
        if e.observed != 0 {
            len += key_len(11) + 8;
        }
        // The groups of `resources` were pushed in the same order.
        let gi = self.groups.len() - resources.len() + at;
        let s = &mut self.groups[gi].buf;
        let before = s.len();
        put_key(s, 2, LEN);
        put_varint(s, len as u64);
        if e.timestamp != 0 {
            put_key(s, 1, I64);
            s.extend_from_slice(&e.timestamp.to_le_bytes());
        }
        if e.severity != 0 {
            put_key(s, 2, VARINT);
            put_varint(s, e.severity as i64 as u64);
        }
        if !e.severity_text.is_empty() {
            put_bytes(s, 3, e.severity_text.as_bytes());
        }
        if !matches!(e.body, Val::Null) {
            put_key(s, 5, LEN);
            put_varint(s, body_len as u64);
            put_any(s, &e.body);
        }
        put_kvs(s, 6, &e.attributes);
        if e.observed != 0 {
            put_key(s, 11, I64);
            s.extend_from_slice(&e.observed.to_le_bytes());
        }
        debug_assert_eq!(s.len() - before, field_len(2, len));
        self.count += 1;
    }

    /// The request's bytes and its record count (`None` when it holds no record). A
    /// request of one group (the usual case: one read of one file) is handed on in the
    /// buffer its records were written to, its headers written into the room kept in front.
    pub fn finish(self) -> Option<(Bytes, usize)> {
        if self.count == 0 {
            return None;
        }
        let mut filled = self.groups.into_iter().filter(|g| g.records_len() > 0);
        let first = filled.next()?;
        let Some(second) = filled.next() else {
            let mut g = first;
            let mut head = Vec::with_capacity(g.gap);
            put_key(&mut head, 1, LEN);
            put_varint(&mut head, group_len(&g) as u64);
            if !g.resource.is_empty() {
                put_bytes(&mut head, 1, &g.resource);
            }
            put_key(&mut head, 2, LEN);
            put_varint(&mut head, g.records_len() as u64);
            // `gap` is HEAD plus the resource field: the headers always fit.
            let start = g.gap - head.len();
            g.buf[start..g.gap].copy_from_slice(&head);
            return Some((Bytes::from(g.buf).slice(start..), self.count));
        };
        let groups: Vec<Group> = [first, second].into_iter().chain(filled).collect();
        let size: usize = groups.iter().map(|g| field_len(1, group_len(g))).sum();
        let mut out = Vec::with_capacity(size);
        for g in &groups {
            put_key(&mut out, 1, LEN);
            put_varint(&mut out, group_len(g) as u64);
            if !g.resource.is_empty() {
                put_bytes(&mut out, 1, &g.resource);
            }
            put_bytes(&mut out, 2, &g.buf[g.gap..]);
        }
        Some((Bytes::from(out), self.count))
    }
}

/// `ResourceLogs` content of a group: the resource (if any) and one `ScopeLogs`.
fn group_len(g: &Group) -> usize {
    let res = if g.resource.is_empty() {
        0
    } else {
        field_len(1, g.resource.len())
    };
    res + field_len(2, g.records_len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message;
    use weir_api::fixtures::kv;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValueList};
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::otlp::resource::v1::Resource;

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        })
    }

    #[test]
    fn text_records_decode_as_prost_encodes_them() {
        let attrs = string_attributes([("log.file.name", "a.log"), ("k", "")]);
        let mut r = Request::default();
        r.resource_strings([("host", "h1")]);
        r.text_record(7, "first line", &attrs);
        r.text_record(0, "", &attrs);
        r.bytes_record(9, &[0, 255, 1], &[]);
        let got = ExportLogsServiceRequest::decode(r.finish().unwrap().0).unwrap();
        let a = vec![kv("log.file.name", s("a.log")), kv("k", s(""))];
        let want = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("host", s("h1"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            observed_time_unix_nano: 7,
                            body: s("first line"),
                            attributes: a.clone(),
                            ..Default::default()
                        },
                        LogRecord {
                            body: s(""),
                            attributes: a,
                            ..Default::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 9,
                            body: Some(AnyValue {
                                value: Some(any_value::Value::BytesValue(vec![0, 255, 1])),
                            }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(got, want);
    }

    #[test]
    fn entries_decode_as_into_record_builds_them_grouped_by_resource() {
        let mut m = BTreeMap::new();
        m.insert("n".to_string(), Val::Int(-5));
        m.insert("d".to_string(), Val::Double(0.0));
        m.insert("b".to_string(), Val::Bool(false));
        m.insert("nil".to_string(), Val::Null);
        m.insert(
            "l".to_string(),
            Val::List(vec![Val::Str("x".into()), Val::Null, Val::Bytes(vec![1])]),
        );
        let mut inner = BTreeMap::new();
        inner.insert("deep".to_string(), Val::Int(300));
        m.insert("m".to_string(), Val::Map(inner));
        let mut e1 = Entry::new(Val::Map(m.clone()));
        e1.attributes = m;
        e1.timestamp = 1_712_995_177_000_000_000;
        e1.observed = 3;
        e1.severity = 17;
        e1.severity_text = "ERROR".into();
        e1.resource.insert("r".into(), Val::Str("1".into()));
        let mut e2 = Entry::new(Val::Null);
        e2.severity = -1;
        let mut e3 = e1.clone();
        e3.body = Val::Str("third".into());
        let mut r = Request::default();
        let mut res = Vec::new();
        for e in [&e1, &e2, &e3] {
            r.entry(e, &mut res);
        }
        assert_eq!(r.count, 3);
        let got = ExportLogsServiceRequest::decode(r.finish().unwrap().0).unwrap();
        let group = |res: &BTreeMap<String, Val>, es: Vec<Entry>| ResourceLogs {
            resource: if res.is_empty() {
                None
            } else {
                Some(Resource {
                    attributes: super::super::operators::kvs(res),
                    ..Default::default()
                })
            },
            scope_logs: vec![ScopeLogs {
                log_records: es.into_iter().map(Entry::into_record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let want = ExportLogsServiceRequest {
            resource_logs: vec![
                group(&e1.resource, vec![e1.clone(), e3.clone()]),
                group(&e2.resource, vec![e2.clone()]),
            ],
        };
        assert_eq!(got, want);
        // Sanity: the nested list and map really are there.
        let attrs = &got.resource_logs[0].scope_logs[0].log_records[0].attributes;
        assert!(attrs.iter().any(|a| a.key == "l"
            && a.value
                == Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![
                            s("x").unwrap(),
                            AnyValue { value: None },
                            AnyValue {
                                value: Some(any_value::Value::BytesValue(vec![1]))
                            }
                        ]
                    }))
                })));
        assert!(attrs.iter().any(|a| a.key == "m"
            && a.value
                == Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv(
                            "deep",
                            Some(AnyValue {
                                value: Some(any_value::Value::IntValue(300))
                            })
                        )]
                    }))
                })));
    }

    #[test]
    fn an_empty_request_is_none() {
        assert!(Request::default().finish().is_none());
    }
}
