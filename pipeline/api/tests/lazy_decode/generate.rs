//! Protobuf written by hand for the lazy-decode tests: the wire encoding (varints, keys,
//! length-delimited and fixed fields) and random OTLP requests of every signal built with
//! it: every field type, unknown fields and groups, deep nesting, packed and unpacked
//! repeated fields, and metrics of every data shape.

use weir_api::Signal;

use super::common::Rng;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

/// A length-delimited field.
pub fn ld(out: &mut Vec<u8>, field: u64, body: &[u8]) {
    key(out, field, 2);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

pub fn vi(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

pub fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn fixed32(out: &mut Vec<u8>, field: u64, v: u32) {
    key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn text(rng: &mut Rng) -> Vec<u8> {
    const WORDS: [&str; 6] = [
        "GET /healthz",
        "user",
        "déjà vu",
        "ошибка",
        "",
        "k8s.pod.name",
    ];
    WORDS[rng.below(WORDS.len() as u64) as usize]
        .as_bytes()
        .to_vec()
}

/// Unknown fields of every wire type, groups nested in groups included.
pub fn unknown(rng: &mut Rng, out: &mut Vec<u8>) {
    let field = 50 + rng.below(1000);
    match rng.below(5) {
        0 => vi(out, field, rng.next()),
        1 => fixed64(out, field, rng.next()),
        2 => fixed32(out, field, rng.next() as u32),
        3 => {
            let body = text(rng);
            ld(out, field, &body)
        }
        _ => {
            key(out, field, 3);
            vi(out, 1, 7);
            if rng.chance(50) {
                key(out, 2, 3);
                ld(out, 3, b"inside");
                key(out, 2, 4);
            }
            key(out, field, 4);
        }
    }
}

fn maybe_unknown(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(15) {
        unknown(rng, out);
    }
}

fn any_value(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let pick = if depth > 3 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match pick {
        0 => {
            let t = text(rng);
            ld(&mut v, 1, &t)
        }
        1 => vi(&mut v, 2, rng.below(2)),
        2 => vi(&mut v, 3, rng.next()),
        3 => fixed64(&mut v, 4, rng.next()),
        4 => ld(&mut v, 7, &rng.next().to_le_bytes()),
        5 => {
            let mut arr = Vec::new();
            for _ in 0..rng.below(3) {
                let item = any_value(rng, depth + 1);
                ld(&mut arr, 1, &item);
            }
            ld(&mut v, 5, &arr)
        }
        _ => {
            let mut kvs = Vec::new();
            for _ in 0..rng.below(3) {
                let kv = key_value(rng, depth + 1);
                ld(&mut kvs, 1, &kv);
            }
            ld(&mut v, 6, &kvs)
        }
    }
    maybe_unknown(rng, &mut v);
    v
}

fn key_value(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut kv = Vec::new();
    let k = text(rng);
    ld(&mut kv, 1, &k);
    let value = any_value(rng, depth);
    ld(&mut kv, 2, &value);
    if rng.chance(5) {
        vi(&mut kv, 3, rng.below(10));
    }
    maybe_unknown(rng, &mut kv);
    kv
}

fn attributes(rng: &mut Rng, out: &mut Vec<u8>, field: u64) {
    for _ in 0..rng.below(4) {
        let kv = key_value(rng, 0);
        ld(out, field, &kv);
    }
}

fn resource(rng: &mut Rng) -> Vec<u8> {
    let mut r = Vec::new();
    attributes(rng, &mut r, 1);
    vi(&mut r, 2, rng.below(3));
    if rng.chance(20) {
        let mut e = Vec::new();
        ld(&mut e, 1, b"https://opentelemetry.io/schemas/1.26.0");
        ld(&mut e, 2, b"service");
        ld(&mut e, 3, b"service.name");
        ld(&mut e, 4, b"service.version");
        ld(&mut r, 3, &e);
    }
    maybe_unknown(rng, &mut r);
    r
}

fn scope(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    ld(&mut s, 1, b"io.weir.test");
    ld(&mut s, 2, b"1.0.0");
    attributes(rng, &mut s, 3);
    vi(&mut s, 4, rng.below(2));
    maybe_unknown(rng, &mut s);
    s
}

fn log_record(rng: &mut Rng) -> Vec<u8> {
    let mut r = Vec::new();
    fixed64(&mut r, 1, rng.next());
    fixed64(&mut r, 11, rng.next());
    vi(&mut r, 2, rng.below(25));
    let t = text(rng);
    ld(&mut r, 3, &t);
    let body = any_value(rng, 0);
    ld(&mut r, 5, &body);
    attributes(rng, &mut r, 6);
    vi(&mut r, 7, rng.below(2));
    fixed32(&mut r, 8, 1);
    ld(&mut r, 9, &rng.next().to_le_bytes().repeat(2));
    ld(&mut r, 10, &rng.next().to_le_bytes());
    if rng.chance(20) {
        ld(&mut r, 12, b"app.login");
    }
    maybe_unknown(rng, &mut r);
    r
}

fn span(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    ld(&mut s, 1, &rng.next().to_le_bytes().repeat(2));
    ld(&mut s, 2, &rng.next().to_le_bytes());
    ld(&mut s, 3, b"rojo=00f067aa0ba902b7");
    ld(&mut s, 4, &rng.next().to_le_bytes());
    fixed32(&mut s, 16, 1);
    let name = text(rng);
    ld(&mut s, 5, &name);
    vi(&mut s, 6, rng.below(6));
    fixed64(&mut s, 7, rng.next());
    fixed64(&mut s, 8, rng.next());
    attributes(rng, &mut s, 9);
    vi(&mut s, 10, rng.below(2));
    for _ in 0..rng.below(3) {
        let mut e = Vec::new();
        fixed64(&mut e, 1, rng.next());
        ld(&mut e, 2, b"exception");
        attributes(rng, &mut e, 3);
        vi(&mut e, 4, 0);
        ld(&mut s, 11, &e);
    }
    vi(&mut s, 12, 0);
    for _ in 0..rng.below(2) {
        let mut l = Vec::new();
        ld(&mut l, 1, &[7; 16]);
        ld(&mut l, 2, &[8; 8]);
        ld(&mut l, 3, b"");
        attributes(rng, &mut l, 4);
        vi(&mut l, 5, 1);
        fixed32(&mut l, 6, 0x100);
        ld(&mut s, 13, &l);
    }
    vi(&mut s, 14, 0);
    let mut status = Vec::new();
    ld(&mut status, 2, b"deadline exceeded");
    vi(&mut status, 3, rng.below(3));
    ld(&mut s, 15, &status);
    maybe_unknown(rng, &mut s);
    s
}

fn exemplar(rng: &mut Rng) -> Vec<u8> {
    let mut e = Vec::new();
    attributes(rng, &mut e, 7);
    fixed64(&mut e, 2, rng.next());
    // The value oneof: as_double (3) or as_int (6), sometimes both (the last wins).
    if rng.chance(70) {
        fixed64(&mut e, 3, rng.next());
    }
    if rng.chance(40) {
        fixed64(&mut e, 6, rng.next());
    }
    ld(&mut e, 4, &rng.next().to_le_bytes());
    ld(&mut e, 5, &rng.next().to_le_bytes().repeat(2));
    maybe_unknown(rng, &mut e);
    e
}

fn exemplars(rng: &mut Rng, out: &mut Vec<u8>, field: u64) {
    for _ in 0..rng.below(3) {
        let e = exemplar(rng);
        ld(out, field, &e);
    }
}

/// A repeated fixed64 or double field, packed or one value per field.
fn repeated_fixed64(rng: &mut Rng, out: &mut Vec<u8>, field: u64) {
    let n = rng.below(5);
    if rng.chance(70) {
        let body: Vec<u8> = (0..n).flat_map(|_| rng.next().to_le_bytes()).collect();
        ld(out, field, &body);
    } else {
        for _ in 0..n {
            fixed64(out, field, rng.next());
        }
    }
}

pub fn number_point(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    attributes(rng, &mut p, 7);
    fixed64(&mut p, 2, rng.next());
    fixed64(&mut p, 3, rng.next());
    match rng.below(4) {
        0 => fixed64(&mut p, 4, rng.next()),
        1 => fixed64(&mut p, 6, rng.next()),
        2 => {
            fixed64(&mut p, 4, rng.next());
            fixed64(&mut p, 6, rng.next());
        }
        _ => {}
    }
    exemplars(rng, &mut p, 5);
    vi(&mut p, 8, rng.below(2));
    maybe_unknown(rng, &mut p);
    p
}

pub fn histogram_point(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    attributes(rng, &mut p, 9);
    for field in [2, 3, 4, 5] {
        fixed64(&mut p, field, rng.next());
    }
    repeated_fixed64(rng, &mut p, 6);
    repeated_fixed64(rng, &mut p, 7);
    exemplars(rng, &mut p, 8);
    vi(&mut p, 10, rng.below(2));
    if rng.chance(50) {
        fixed64(&mut p, 11, rng.next());
        fixed64(&mut p, 12, rng.next());
    }
    maybe_unknown(rng, &mut p);
    p
}

fn buckets(rng: &mut Rng) -> Vec<u8> {
    let mut b = Vec::new();
    // sint32 offset, zigzag: any varint
    vi(&mut b, 1, rng.next() >> rng.below(64));
    let n = rng.below(6);
    if rng.chance(70) {
        let mut packed = Vec::new();
        for _ in 0..n {
            varint(&mut packed, rng.next() >> rng.below(64));
        }
        ld(&mut b, 2, &packed);
    } else {
        for _ in 0..n {
            vi(&mut b, 2, rng.next() >> rng.below(64));
        }
    }
    maybe_unknown(rng, &mut b);
    b
}

pub fn exp_histogram_point(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    attributes(rng, &mut p, 1);
    for field in [2, 3, 4, 5, 7] {
        fixed64(&mut p, field, rng.next());
    }
    vi(&mut p, 6, rng.below(40));
    for field in [8, 9] {
        if rng.chance(70) {
            let b = buckets(rng);
            ld(&mut p, field, &b);
        }
    }
    vi(&mut p, 10, 0);
    exemplars(rng, &mut p, 11);
    for field in [12, 13, 14] {
        if rng.chance(50) {
            fixed64(&mut p, field, rng.next());
        }
    }
    maybe_unknown(rng, &mut p);
    p
}

pub fn summary_point(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    attributes(rng, &mut p, 7);
    for field in [2, 3, 4, 5] {
        fixed64(&mut p, field, rng.next());
    }
    for _ in 0..rng.below(4) {
        let mut q = Vec::new();
        fixed64(&mut q, 1, rng.next());
        fixed64(&mut q, 2, rng.next());
        maybe_unknown(rng, &mut q);
        ld(&mut p, 6, &q);
    }
    vi(&mut p, 8, rng.below(2));
    maybe_unknown(rng, &mut p);
    p
}

/// One member of a metric's `data` oneof (field 5, 7, 9, 10 or 11) with 0-4 points.
fn data_member(rng: &mut Rng, field: u64) -> Vec<u8> {
    let mut d = Vec::new();
    for _ in 0..rng.below(5) {
        let point = match field {
            5 | 7 => number_point(rng),
            9 => histogram_point(rng),
            10 => exp_histogram_point(rng),
            _ => summary_point(rng),
        };
        ld(&mut d, 1, &point);
    }
    match field {
        7 => {
            vi(&mut d, 2, rng.below(3));
            vi(&mut d, 3, rng.below(2));
        }
        9 | 10 => vi(&mut d, 2, rng.below(3)),
        _ => {}
    }
    maybe_unknown(rng, &mut d);
    d
}

/// A metric of any shape: usually one data member, sometimes none, sometimes several (the
/// same member again merges, another replaces: prost's oneof).
fn metric(rng: &mut Rng) -> Vec<u8> {
    let mut m = Vec::new();
    let name = text(rng);
    ld(&mut m, 1, &name);
    ld(&mut m, 2, b"a metric");
    ld(&mut m, 3, b"By");
    let members = match rng.below(10) {
        0 => 0,
        1 | 2 => 2 + rng.below(2),
        _ => 1,
    };
    let mut field = [5, 7, 9, 10, 11][rng.below(5) as usize];
    for _ in 0..members {
        if rng.chance(50) {
            field = [5, 7, 9, 10, 11][rng.below(5) as usize];
        }
        let d = data_member(rng, field);
        ld(&mut m, field, &d);
        if rng.chance(30) {
            // Metadata between members.
            attributes(rng, &mut m, 12);
        }
    }
    maybe_unknown(rng, &mut m);
    m
}

/// A request of `signal` with 0-3 resources of 0-3 scopes of 0-4 items.
pub fn request(rng: &mut Rng, signal: Signal) -> Vec<u8> {
    let mut req = Vec::new();
    for _ in 0..rng.below(4) {
        let mut res = Vec::new();
        if rng.chance(80) {
            let r = resource(rng);
            ld(&mut res, 1, &r);
        }
        for _ in 0..rng.below(4) {
            let mut sc = Vec::new();
            let s = scope(rng);
            ld(&mut sc, 1, &s);
            for _ in 0..rng.below(5) {
                let item = match signal {
                    Signal::Logs => log_record(rng),
                    Signal::Traces => span(rng),
                    Signal::Metrics => metric(rng),
                };
                ld(&mut sc, 2, &item);
            }
            ld(&mut sc, 3, b"https://opentelemetry.io/schemas/1.26.0");
            maybe_unknown(rng, &mut sc);
            ld(&mut res, 2, &sc);
        }
        ld(&mut res, 3, b"");
        maybe_unknown(rng, &mut res);
        ld(&mut req, 1, &res);
    }
    maybe_unknown(rng, &mut req);
    req
}
