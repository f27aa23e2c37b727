//! Test fixtures shared by the crates' tests (feature `test-fixtures`, enabled only as a
//! dev-dependency): building OTLP values without a copy of the same helper in every test
//! file.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

pub mod postgres;

/// What an attribute value can be written as in a test.
pub trait IntoAnyValue {
    /// The attribute's value (`None`: a key without a value).
    fn into_any_value(self) -> Option<AnyValue>;
}

impl IntoAnyValue for &str {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::StringValue(self.into()).into_any_value()
    }
}

impl IntoAnyValue for &&str {
    fn into_any_value(self) -> Option<AnyValue> {
        (*self).into_any_value()
    }
}

impl IntoAnyValue for &String {
    fn into_any_value(self) -> Option<AnyValue> {
        self.as_str().into_any_value()
    }
}

impl IntoAnyValue for String {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::StringValue(self).into_any_value()
    }
}

impl IntoAnyValue for i64 {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::IntValue(self).into_any_value()
    }
}

impl IntoAnyValue for f64 {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::DoubleValue(self).into_any_value()
    }
}

impl IntoAnyValue for bool {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::BoolValue(self).into_any_value()
    }
}

impl IntoAnyValue for any_value::Value {
    fn into_any_value(self) -> Option<AnyValue> {
        Some(AnyValue { value: Some(self) })
    }
}

impl IntoAnyValue for AnyValue {
    fn into_any_value(self) -> Option<AnyValue> {
        Some(self)
    }
}

impl IntoAnyValue for Option<AnyValue> {
    fn into_any_value(self) -> Option<AnyValue> {
        self
    }
}

/// An attribute: `kv("http.method", "GET")`, `kv("n", 3_i64)`, `kv("raw", any_value)`.
pub fn kv(key: &str, value: impl IntoAnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into_any_value(),
        ..Default::default()
    }
}

/// A loopback port nothing listens on now, never the same one twice in one test process,
/// and not handed to another test process either.
///
/// Ports come from below the kernel's ephemeral range (`ip_local_port_range`; 20000 and up,
/// skipping fluentforward's default 24224): a port the kernel picked for
/// `:0` is one it may give, once released, to any outgoing connection of any process, and a
/// test's `weir` then fails to listen on it. Test processes (nextest runs each test in its
/// own) reserve a port with a file created exclusively in `$TMPDIR/weir-test-ports`; a
/// reservation older than ten minutes is stale and taken over. The port must also bind now.
/// Where none of that works (no such range, no such directory), the kernel's `:0` choice.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(port) = reserved_port(&given) {
        given.push(port);
        return port;
    }
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a loopback port to bind")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Ports in the range that Collector components listen on by default (fluentforward): a
/// test that runs a component with its defaults needs them free.
const WELL_KNOWN: [u16; 1] = [24224];

/// A port below the ephemeral range, reserved for this process and free now (see
/// [`free_port`]); `None` when that cannot be had.
fn reserved_port(given: &[u16]) -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ephemeral_low: u16 = range.split_whitespace().next()?.parse().ok()?;
    const LOW: u16 = 20_000;
    if ephemeral_low <= LOW + 1_000 {
        return None;
    }
    let dir = std::env::temp_dir().join("weir-test-ports");
    std::fs::create_dir_all(&dir).ok()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut seed = ((u64::from(std::process::id()) << 32) | u64::from(nanos)) | 1;
    let span = u64::from(ephemeral_low - LOW);
    for _ in 0..2_000 {
        // xorshift64: a different sequence per process and start time.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = LOW + u16::try_from(seed % span).ok()?;
        if given.contains(&port) || WELL_KNOWN.contains(&port) || !reserve(&dir, port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Some(port);
        }
    }
    None
}

/// Creates `dir/<port>` exclusively; takes over a reservation older than ten minutes.
fn reserve(dir: &std::path::Path, port: u16) -> bool {
    let path = dir.join(port.to_string());
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .is_ok()
    };
    if create() {
        return true;
    }
    let stale = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(600));
    if !stale {
        return false;
    }
    // Only one process renames the stale file away; it then creates a fresh one.
    let aside = dir.join(format!("{port}.stale.{}", std::process::id()));
    if std::fs::rename(&path, &aside).is_err() {
        return false;
    }
    let _ = std::fs::remove_file(&aside);
    create()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_reserved_and_outside_the_ephemeral_range() {
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        let dir = std::env::temp_dir().join("weir-test-ports");
        for &port in &ports {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{port}"
            );
            if ephemeral_low > 21_000 {
                assert!((20_000..ephemeral_low).contains(&port), "{port}");
                assert!(!WELL_KNOWN.contains(&port));
                assert!(dir.join(port.to_string()).exists(), "{port} not reserved");
                // Another process asking for the same port is refused while it is fresh.
                assert!(!reserve(&dir, port), "{port} reserved twice");
            }
        }
    }

    #[test]
    fn a_stale_reservation_is_taken_over_once() {
        let dir = std::env::temp_dir().join(format!("weir-stale-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(reserve(&dir, 20_001));
        assert!(!reserve(&dir, 20_001));
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join("20001"))
            .unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(601);
        file.set_modified(old).unwrap();
        assert!(reserve(&dir, 20_001), "a stale reservation is taken over");
        assert!(!reserve(&dir, 20_001), "and is fresh again");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing left aside");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
