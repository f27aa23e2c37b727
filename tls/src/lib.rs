//! TLS for every Weir socket: collector-style settings, a rustls server config that reloads
//! its certificate when the files change, and rustls client configs for hyper and tonic.
//!
//! Server side (a receiver, the control plane):
//!
//! ```yaml
//! extensions:
//!   control_plane:
//!     endpoint: 0.0.0.0:8080
//!     tls:
//!       cert_file: /etc/weir/server.pem     # PEM chain, leaf first (required)
//!       key_file: /etc/weir/server-key.pem  # PEM private key: PKCS#8, PKCS#1 or SEC1 (required)
//!       client_ca_file: /etc/weir/ca.pem    # mTLS: require client certificates signed by these CAs
//!       min_version: "1.3"                  # "1.2" or "1.3"; default "1.3"
//!       max_version: "1.3"                  # default: the newest (1.3)
//!       reload_interval: 30s                # files are checked for changes this often; default 30s
//! ```
//!
//! Client side (an exporter, the policy sync client):
//!
//! ```yaml
//! exporters:
//!   catalog:
//!     endpoint: https://cp.example:8080
//!     tls:
//!       ca_file: /etc/weir/ca.pem           # trust these CAs; default: the system's roots
//!       # ca_pem: "-----BEGIN CERTIFICATE-----..."  # or inline (also cert_pem, key_pem)
//!       include_system_ca_certs_pool: false # also trust the system's roots; default false
//!       cert_file: /etc/weir/edge.pem       # client certificate for mTLS (with key_file)
//!       key_file: /etc/weir/edge-key.pem
//!       server_name_override: cp.internal   # name checked in the server certificate
//!       min_version: "1.3"                  # default "1.3"
//!       insecure: false                     # gRPC: true = plain text, no TLS at all
//!       insecure_skip_verify: false         # true = accept any server certificate (testing only)
//! ```
//!
//! Every file is read when the component is built; a problem is reported with the YAML path and
//! the file, e.g. `extensions.control_plane.tls.cert_file: cannot read "x.pem": No such file or
//! directory (os error 2)`. Relative paths are taken from the config file's directory.
//!
//! Certificate reload: on an accepted connection, when `reload_interval` has passed since the
//! last check, the modification time and size of `cert_file`, `key_file` and `client_ca_file`
//! are compared with those last loaded; on a change the server config is rebuilt and used for
//! the next handshakes. A new certificate that does not load (half-written, key not matching)
//! is logged and the old one stays in use; it is tried again on the next change.
//!
//! Plugging in:
//! - hyper/axum: [`ServerTls::serve_http`] (an accept loop serving hyper connections over TLS),
//!   or [`ServerTls::accept`] inside an accept loop of your own.
//! - tonic server: `Server::builder().serve_with_incoming_shutdown(tls.incoming(listener), ..)`
//!   ([`ServerTls::incoming`]).
//! - hyper client: [`ClientTls::https_connector`]; tonic client: [`ClientTls::grpc_channel`].
//!
//! Data at rest (keys in owner-only files, sealed files) is [`at_rest`].

pub mod at_rest;
mod client;
mod error;
mod files;
mod server;
mod settings;

pub use client::{ClientTls, HttpVersions};
pub use error::TlsError;
pub use server::{Alpn, ServerTls, TlsConnection};
pub use settings::{TlsClientSettings, TlsServerSettings, TlsVersion};

/// The crypto provider every Weir TLS config is built with (ring).
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

pub use hyper_rustls;
pub use rustls;
pub use tokio_rustls;

#[cfg(feature = "test-utils")]
pub mod testing;
