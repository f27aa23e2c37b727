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

/// All certificates of a PEM file, in order (a chain: leaf first).
pub(crate) fn certificates(
    field: &str,
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(field, file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(field, file, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(field, file, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(field: &str, file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(field, file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => bad(field, file, "holds no PEM private key"),
        e => bad(field, file, format!("is not a valid PEM private key: {e}")),
    })
}

/// A root store of every certificate in a PEM file.
pub(crate) fn roots(field: &str, file: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(field, file)? {
        store.add(cert).map_err(|source| TlsError::Rustls {
            field: field.to_string(),
            source,
        })?;
    }
    Ok(store)
}

/// The system's trusted roots. Unreadable entries are skipped: a broken system store must not
/// stop a client whose server certificate chains to a readable root.
pub(crate) fn system_roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipping an unreadable system root certificate");
    }
    let (_added, _ignored) = store.add_parsable_certificates(found.certs);
    store
}
