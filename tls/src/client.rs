//! The client side: rustls client configs for hyper and tonic.

use std::path::PathBuf;
use std::sync::Arc;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::{files, TlsClientSettings, TlsError, TlsVersion};

/// Which HTTP versions a connector offers (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersions {
    /// HTTP/1.1 and HTTP/2 (an HTTP API, OTLP/HTTP).
    Http1And2,
    /// HTTP/2 only (gRPC).
    Http2Only,
}

/// A loaded client TLS config: plain text (`insecure: true`) or a rustls config.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Option<Arc<ClientConfig>>,
    server_name: Option<ServerName<'static>>,
}

impl TlsClientSettings {
    /// Reads the files and builds the client config. `field` is the YAML path of the `tls`
    /// section; `resolve` turns a configured path into a file (`|p| ctx.resolve_path(p)`).
    pub fn load(
        &self,
        field: &str,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<ClientTls, TlsError> {
        if self.insecure {
            return Ok(ClientTls::plaintext());
        }
        let provider = crate::crypto_provider();
        let versions = TlsVersion::range(
            self.min_version.unwrap_or(TlsVersion::V1_3),
            self.max_version,
        );
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| TlsError::Rustls {
                field: format!("{field}.min_version"),
                source,
            })?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
        } else {
            let roots = match (&self.ca_file, &self.ca_pem) {
                (None, None) => files::system_roots(),
                (file, pem) => {
                    let mut roots = rustls::RootCertStore::empty();
                    if let Some(ca) = file {
                        let path = resolve(ca);
                        let source = files::PemSource::File(&path);
                        files::add_roots(&mut roots, &format!("{field}.ca_file"), source)?;
                    }
                    if let Some(pem) = pem {
                        let source = files::PemSource::Inline(pem);
                        files::add_roots(&mut roots, &format!("{field}.ca_pem"), source)?;
                    }
                    if self.include_system_ca_certs_pool {
                        files::add_system_roots(&mut roots);
                    }
                    roots
                }
            };
            builder.with_root_certificates(roots)
        };
        let cert_path = self.cert_file.as_deref().map(&resolve);
        let key_path = self.key_file.as_deref().map(&resolve);
        let cert = match (&cert_path, &self.cert_pem) {
            (Some(p), _) => Some(("cert_file", files::PemSource::File(p))),
            (None, Some(pem)) => Some(("cert_pem", files::PemSource::Inline(pem))),
            (None, None) => None,
        };
        let key = match (&key_path, &self.key_pem) {
            (Some(p), _) => Some(("key_file", files::PemSource::File(p))),
            (None, Some(pem)) => Some(("key_pem", files::PemSource::Inline(pem))),
            (None, None) => None,
        };
        let config = match (cert, key) {
            (Some((cert_name, cert)), Some((key_name, key))) => {
                let cert_field = format!("{field}.{cert_name}");
                let certs = files::certificates_from(&cert_field, cert)?;
                let key = files::private_key_from(&format!("{field}.{key_name}"), key)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|source| TlsError::Rustls {
                        field: cert_field,
                        source,
                    })?
            }
            _ => builder.with_no_client_auth(),
        };
        let server_name = match &self.server_name_override {
            Some(name) => {
                Some(
                    ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName {
                        field: format!("{field}.server_name_override"),
                        name: name.clone(),
                    })?,
                )
            }
            None => None,
        };
        Ok(ClientTls {
            config: Some(Arc::new(config)),
            server_name,
        })
    }
}

impl ClientTls {
    /// No TLS: plain text connections.
    pub fn plaintext() -> Self {
        ClientTls {
            config: None,
            server_name: None,
        }
    }

    /// Whether this is plain text (`insecure: true`).
    pub fn is_plaintext(&self) -> bool {
        self.config.is_none()
    }

    /// The rustls config (without ALPN), or `None` for plain text.
    pub fn rustls_config(&self) -> Option<Arc<ClientConfig>> {
        self.config.clone()
    }

    /// A hyper connector (for `hyper_util::client::legacy::Client::builder(..).build(..)`):
    /// `https://` URLs use this TLS config; `http://` URLs stay plain text, so callers check
    /// the scheme against the settings when they validate. With plain text settings an
    /// `https://` URL fails (no trusted roots).
    pub fn https_connector(&self, versions: HttpVersions) -> HttpsConnector<HttpConnector> {
        self.https_connector_with(HttpConnector::new(), versions)
    }

    /// As [`ClientTls::https_connector`], around a TCP connector the caller has tuned
    /// (`set_nodelay`, `set_connect_timeout`, ...).
    pub fn https_connector_with(
        &self,
        mut tcp: HttpConnector,
        versions: HttpVersions,
    ) -> HttpsConnector<HttpConnector> {
        // hyper's connector refuses https:// URIs unless told that TLS sits on top of it.
        tcp.enforce_http(false);
        let config = match &self.config {
            Some(c) => (**c).clone(),
            // Plain text: nothing is trusted, so an https:// URL cannot succeed by accident.
            None => ClientConfig::builder_with_provider(crate::crypto_provider())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| {
                    ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                }),
        };
        let schemes = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        let schemes = match &self.server_name {
            Some(name) => {
                schemes.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
            }
            None => schemes,
        };
        match versions {
            HttpVersions::Http1And2 => schemes.enable_http1().enable_http2().wrap_connector(tcp),
            HttpVersions::Http2Only => schemes.enable_http2().wrap_connector(tcp),
        }
    }

    /// A lazily connecting tonic channel to `endpoint`. With TLS, the endpoint's URI must be
    /// `https://`; with plain text, `http://`.
    pub fn grpc_channel(&self, endpoint: tonic::transport::Endpoint) -> tonic::transport::Channel {
        endpoint.connect_with_connector_lazy(
            self.https_connector_with(grpc_tcp(), HttpVersions::Http2Only),
        )
    }

    /// Connects a tonic channel to `endpoint` now (see [`ClientTls::grpc_channel`]).
    pub async fn connect_grpc(
        &self,
        endpoint: tonic::transport::Endpoint,
    ) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        endpoint
            .connect_with_connector(self.https_connector_with(grpc_tcp(), HttpVersions::Http2Only))
            .await
    }
}

/// gRPC calls are small and latency-bound: no Nagle delay.
fn grpc_tcp() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp
}

/// `insecure_skip_verify`: any certificate and name is taken, but handshake signatures are
/// still checked so the session keys are bound to the certificate that was shown.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
