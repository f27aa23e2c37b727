//! Reading PEM files, with errors that name the setting and the file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::TlsError;

fn read(field: &str, file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::ReadFile {
        field: field.to_string(),
        file: file.to_path_buf(),
        source,
    })
}

fn bad(field: &str, file: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::BadPem {
        field: field.to_string(),
        file: file.to_path_buf(),
        problem: problem.into(),
    }
}

/// Where PEM text comes from: a file (read here) or the config itself (`*_pem` fields).
#[derive(Clone, Copy)]
pub(crate) enum PemSource<'a> {
    /// A file, resolved.
    File(&'a Path),
    /// Inline PEM text.
    Inline(&'a str),
}

impl PemSource<'_> {
    fn bytes(&self, field: &str) -> Result<Vec<u8>, TlsError> {
        match self {
            PemSource::File(f) => read(field, f),
            PemSource::Inline(t) => Ok(t.as_bytes().to_vec()),
        }
    }

    fn problem(&self, field: &str, problem: impl Into<String>) -> TlsError {
        match self {
            PemSource::File(f) => bad(field, f, problem),
            PemSource::Inline(_) => TlsError::BadInlinePem {
                field: field.to_string(),
                problem: problem.into(),
            },
        }
    }
}

/// All certificates of a PEM file, in order (a chain: leaf first).
pub(crate) fn certificates(
    field: &str,
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates_from(field, PemSource::File(file))
}

/// All certificates of PEM text, in order (a chain: leaf first).
pub(crate) fn certificates_from(
    field: &str,
    source: PemSource<'_>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = source.bytes(field)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| source.problem(field, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(source.problem(field, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(field: &str, file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    private_key_from(field, PemSource::File(file))
}

/// The first private key of PEM text (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key_from(
    field: &str,
    source: PemSource<'_>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = source.bytes(field)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            source.problem(field, "holds no PEM private key")
        }
        e => source.problem(field, format!("is not a valid PEM private key: {e}")),
    })
}

/// A root store of every certificate in a PEM file.
pub(crate) fn roots(field: &str, file: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    add_roots(&mut store, field, PemSource::File(file))?;
    Ok(store)
}

/// Adds every certificate of PEM text to `store`.
pub(crate) fn add_roots(
    store: &mut RootCertStore,
    field: &str,
    source: PemSource<'_>,
) -> Result<(), TlsError> {
    for cert in certificates_from(field, source)? {
        store.add(cert).map_err(|source| TlsError::Rustls {
            field: field.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The system's trusted roots. Unreadable entries are skipped: a broken system store must not
/// stop a client whose server certificate chains to a readable root.
pub(crate) fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    add_system_roots(&mut store);
    store
}

/// Adds the system's trusted roots to `store`.
pub(crate) fn add_system_roots(store: &mut RootCertStore) {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipping an unreadable system root certificate");
    }
    let (_added, _ignored) = store.add_parsable_certificates(found.certs);
}
