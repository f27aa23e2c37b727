//! Errors of loading TLS settings.

use std::path::PathBuf;

/// A TLS setting that could not be turned into a working config. Each names the YAML path
/// (`extensions.control_plane.tls.cert_file`) and, where there is one, the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{field}: cannot read {file:?}: {source}")]
    ReadFile {
        /// YAML path of the setting.
        field: String,
        /// The file, as resolved.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM or holds none of what was expected.
    #[error("{field}: {file:?} {problem}")]
    BadPem {
        /// YAML path of the setting.
        field: String,
        /// The file, as resolved.
        file: PathBuf,
        /// What is wrong, e.g. `holds no PEM certificate`.
        problem: String,
    },
    /// Inline PEM text (`ca_pem`, `cert_pem`, `key_pem`) is not PEM or holds none of what
    /// was expected.
    #[error("{field}: {problem}")]
    BadInlinePem {
        /// YAML path of the setting.
        field: String,
        /// What is wrong, e.g. `holds no PEM certificate`.
        problem: String,
    },
    /// rustls refused the material or settings (key not matching the certificate, a CA that is
    /// not a certificate, no protocol version left).
    #[error("{field}: {source}")]
    Rustls {
        /// YAML path of the setting.
        field: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from `client_ca_file`.
    #[error("{field}: {source}")]
    ClientVerifier {
        /// YAML path of the setting.
        field: String,
        /// rustls' reason.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// `server_name_override` is not a DNS name or IP address.
    #[error("{field}: {name:?} is not a DNS name or IP address")]
    ServerName {
        /// YAML path of the setting.
        field: String,
        /// The name given.
        name: String,
    },
}
