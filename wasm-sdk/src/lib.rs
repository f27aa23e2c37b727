//! Write Weir processors in Rust, compile them to `wasm32-unknown-unknown`, and run them
//! sandboxed inside Weir's `wasm` processor. The ABI underneath is in `ABI.md`; the guided
//! tour is `README.md` in the SDK's folder.
//!
//! A module is one type implementing [`Processor`] and one [`export!`]. Each `process_*`
//! method gets a whole batch ([`Logs`], [`Spans`], [`Metrics`]) and decides what to keep
//! (`retain_*`: answered to Weir with one verdict byte per item) and what to edit
//! (`for_each_mut`, `request_mut`: answered with replacement bytes). The views
//! ([`LogRecordView`], [`SpanView`], [`PointView`]) read items in place from the protobuf
//! bytes, without decoding the batch. [`testing`] runs a processor natively in `cargo test`.
//!
//! ```
//! use weir_wasm_sdk::{export, Error, Logs, Processor};
//!
//! struct DropDebug { min: i32 }
//!
//! impl Processor for DropDebug {
//!     fn init(config: &serde_json::Value) -> Result<Self, Error> {
//!         Ok(DropDebug { min: config["min_severity"].as_i64().unwrap_or(9) as i32 })
//!     }
//!     fn process_logs(&mut self, logs: &mut Logs) -> Result<(), Error> {
//!         logs.retain_view(|r| r.severity_number() >= self.min)
//!     }
//! }
//!
//! export!(DropDebug, logs);
//!
//! // A native unit test of the same type:
//! use weir_wasm_sdk::testing::{log_record, logs_request, run_logs};
//! let mut p = DropDebug::init(&serde_json::json!({"min_severity": 9}))?;
//! let out = run_logs(&mut p, &logs_request(vec![], vec![log_record("x", 5)]))?;
//! assert_eq!(out.dropped, 1);
//! # use weir_wasm_sdk::serde_json;
//! # Ok::<(), Error>(())
//! ```

#![deny(missing_docs)]

mod batch;
#[doc(hidden)]
pub mod boundary;
mod metrics_view;
pub mod otlp;
mod points;
pub mod testing;
mod view;

pub use batch::{point_count, Answer, ExportRequest, Logs, Metrics, Spans};
pub use metrics_view::{MetricKind, MetricView, NumberValue, PointView};
pub use points::{Context, MetricContext, PointMut, PointRef};
pub use prost;
pub use prost::Message;
pub use serde_json;
pub use view::{
    AttributesView, EventView, LinkView, LogRecordView, MalformedProtobuf, RepeatedView,
    ResourceView, ScopeView, SpanView, StatusView, ValueView,
};

use otlp::common::v1::{any_value, AnyValue, KeyValue};

/// A processor failed on a batch or its config: the host passes the batch on unprocessed
/// (or drops it with `on_error: drop`; at init, refuses to start the module) and logs the
/// message.
///
/// ```
/// let e = weir_wasm_sdk::Error::new("min_severity must be 0..24");
/// assert_eq!(e.to_string(), "min_severity must be 0..24");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message (see the type's example).
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A user processor. Each method sees one whole batch; the defaults leave it unchanged
/// without decoding it. One value of your type lives across many batches (keep counters or
/// buffers in it); after any failure Weir builds a fresh one with `init`.
///
/// ```
/// use weir_wasm_sdk::{Error, Metrics, Processor, Spans};
///
/// struct KeepErrors;
///
/// impl Processor for KeepErrors {
///     fn init(_config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
///         Ok(KeepErrors)
///     }
///     fn process_spans(&mut self, spans: &mut Spans<'_>) -> Result<(), Error> {
///         spans.retain_view(|s| s.is_error())
///     }
///     fn process_metrics(&mut self, metrics: &mut Metrics<'_>) -> Result<(), Error> {
///         metrics.retain_metrics_view(|m| !m.name().starts_with("debug."))
///     }
/// }
/// weir_wasm_sdk::export!(KeepErrors, traces, metrics);
/// ```
pub trait Processor: Sized + 'static {
    /// Builds the processor from the `config:` section of its YAML (as JSON; `Null` when
    /// absent). An error stops Weir from starting with this module.
    fn init(config: &serde_json::Value) -> Result<Self, Error>;

    /// Decides which log records to keep (`retain`, `retain_view`) and edits them
    /// (`for_each_mut`, `request_mut`).
    fn process_logs(&mut self, _logs: &mut Logs<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// The same for spans.
    fn process_spans(&mut self, _spans: &mut Spans<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// The same for metrics (items are data points).
    fn process_metrics(&mut self, _metrics: &mut Metrics<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// Log levels of [`log`] (see there for an example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace = 0,
    /// Detailed.
    Debug = 1,
    /// Normal.
    Info = 2,
    /// Something to look at.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

/// Writes a line to Weir's log, tagged with the module (at most 32 lines per call are kept,
/// each cut at 1,024 bytes). Natively (in tests) the line goes to stderr.
///
/// ```
/// use weir_wasm_sdk::{log, Level};
/// log(Level::Warn, "config has no min_severity, using 9");
/// ```
pub fn log(level: Level, message: &str) {
    boundary::host_log(level, message);
}

/// The string value of attribute `key`, if present and a string (the first one with that
/// key). For decoded items; views have their own `attribute_str`.
///
/// ```
/// use weir_wasm_sdk::{attribute_str, testing::kv};
/// let attrs = vec![kv("http.route", "/pay"), kv("http.status_code", 200_i64)];
/// assert_eq!(attribute_str(&attrs, "http.route"), Some("/pay"));
/// assert_eq!(attribute_str(&attrs, "http.status_code"), None); // not a string
/// ```
pub fn attribute_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Sets attribute `key` to the string `value`, replacing an existing value (of any type) in
/// place or appending a new attribute.
///
/// ```
/// use weir_wasm_sdk::{attribute_str, set_attribute_str};
/// let mut attrs = Vec::new();
/// set_attribute_str(&mut attrs, "env", "prod");
/// set_attribute_str(&mut attrs, "env", "staging");
/// assert_eq!(attrs.len(), 1);
/// assert_eq!(attribute_str(&attrs, "env"), Some("staging"));
/// ```
pub fn set_attribute_str(attributes: &mut Vec<KeyValue>, key: &str, value: impl Into<String>) {
    let value = Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.into())),
    });
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => attributes.push(KeyValue {
            key: key.to_string(),
            value,
            ..Default::default()
        }),
    }
}

/// Removes attribute `key` (every entry with that key); returns whether it was there.
///
/// ```
/// use weir_wasm_sdk::{remove_attribute, testing::kv};
/// let mut attrs = vec![kv("user.email", "a@b.c"), kv("env", "prod")];
/// assert!(remove_attribute(&mut attrs, "user.email"));
/// assert!(!remove_attribute(&mut attrs, "user.email"));
/// assert_eq!(attrs, vec![kv("env", "prod")]);
/// ```
pub fn remove_attribute(attributes: &mut Vec<KeyValue>, key: &str) -> bool {
    let before = attributes.len();
    attributes.retain(|kv| kv.key != key);
    attributes.len() != before
}

/// Exports a [`Processor`] type as the module's ABI entry points. Use once per module, at
/// the crate root.
///
/// `export!(MyProcessor, logs)` declares the signals the module handles (any of `logs`,
/// `traces`, `metrics`, comma-separated): only their `weir_process_<signal>` entry points
/// are exported, and Weir refuses the module in a pipeline of another signal with an error
/// naming the module and both signals. `export!(MyProcessor)` declares all three (the
/// methods you do not write pass batches on unchanged).
///
/// Always exported: `weir_abi_version`, `weir_alloc`, `weir_init`.
///
/// ```
/// struct SeverityFilter;
/// impl weir_wasm_sdk::Processor for SeverityFilter {
///     fn init(_: &weir_wasm_sdk::serde_json::Value) -> Result<Self, weir_wasm_sdk::Error> {
///         Ok(SeverityFilter)
///     }
/// }
/// weir_wasm_sdk::export!(SeverityFilter, logs);
/// // A module declaring all three: weir_wasm_sdk::export!(DropMatching);
/// ```
#[macro_export]
macro_rules! export {
    ($processor:ty) => {
        $crate::export!($processor, logs, traces, metrics);
    };
    ($processor:ty, $($signal:ident),+ $(,)?) => {
        ::std::thread_local! {
            static __WEIR_PROCESSOR: ::std::cell::RefCell<::std::option::Option<$processor>> =
                const { ::std::cell::RefCell::new(::std::option::Option::None) };
        }

        /// ABI entry point: the ABI version.
        // The host looks exports up by these exact names.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_abi_version() -> i32 {
            $crate::boundary::ABI_VERSION
        }

        /// ABI entry point: a buffer for the host to write into.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_alloc(len: i32) -> i32 {
            $crate::boundary::alloc(len)
        }

        /// ABI entry point: config.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_init(ptr: i32, len: i32) -> i32 {
            $crate::boundary::init::<$processor>(&__WEIR_PROCESSOR, ptr, len)
        }

        $( $crate::__export_signal!($signal, $processor, __WEIR_PROCESSOR); )+
    };
}

/// One signal's entry point, for [`export!`]. Not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_signal {
    (logs, $processor:ty, $state:ident) => {
        /// ABI entry point: a batch of logs.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_process_logs(ptr: i32, len: i32) -> i32 {
            $crate::boundary::process_logs::<$processor>(&$state, ptr, len)
        }
    };
    (traces, $processor:ty, $state:ident) => {
        /// ABI entry point: a batch of spans.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_process_traces(ptr: i32, len: i32) -> i32 {
            $crate::boundary::process_traces::<$processor>(&$state, ptr, len)
        }
    };
    (metrics, $processor:ty, $state:ident) => {
        /// ABI entry point: a batch of metrics.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn weir_process_metrics(ptr: i32, len: i32) -> i32 {
            $crate::boundary::process_metrics::<$processor>(&$state, ptr, len)
        }
    };
    ($other:ident, $processor:ty, $state:ident) => {
        ::core::compile_error!(::core::concat!(
            "weir_wasm_sdk::export!: unknown signal `",
            ::core::stringify!($other),
            "` (expected logs, traces or metrics)"
        ));
    };
}
