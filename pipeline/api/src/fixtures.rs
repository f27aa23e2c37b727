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

/// A loopback port nothing listens on now (bound to :0, then released). Never the same
/// port twice in one test process: the kernel may hand a released port out again at once,
/// and a test that picks several (OTLP, health, metrics) would then give two listeners one
/// port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
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
