//! What Weir itself encrypts or checks on a shared PostgreSQL database (SQLite's whole
//! file is encrypted by SQLCipher, so there nothing here applies):
//!
//! - The sketch key check: every replica must hash values with the key the stored
//!   sketches were made with. The first replica to open the database stores a keyed
//!   fingerprint of its `<storage>.sketch-key` (HMAC-SHA256 under the key, of a fixed
//!   label; never the key) in `weir_key_checks`; a replica whose key gives another
//!   fingerprint is refused at start.
//! - TOTP secrets (`users.totp_secret`, `users.totp_pending`): sealed with AES-256-GCM, a
//!   random 96-bit nonce per value stored with it, the user's name as associated data (a
//!   value copied to another user's row does not open), under a key derived with
//!   HKDF-SHA256 from the audit key (`<storage>.audit-key`, which every replica has and
//!   which is checked at start) with a label of its own. A sealed value is one version
//!   byte, the nonce, then the ciphertext and its 16-byte tag.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::Sha256;

use crate::db::{params, Connection, OptionalExtension};
use crate::CatalogError;

/// The label of the sketch key's fingerprint.
const SKETCH_FINGERPRINT: &[u8] = b"weir sketch-key fingerprint v1";
/// HKDF's info label of the TOTP sealing key.
const TOTP_KEY_INFO: &[u8] = b"weir totp-secret sealing key v1";
/// The first byte of a sealed TOTP secret.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// On PostgreSQL (called by `Store::open` in its migration transaction): stores the
/// fingerprint of the sketch key `<files>.sketch-key` (made if missing) when there is none,
/// else refuses a key whose fingerprint differs.
pub(crate) fn check_sketch_key(conn: &Connection, files: &Path) -> Result<(), CatalogError> {
    let path = crate::control::sketch_key_path(files);
    let key = weir_summary::key::SketchKey::load_or_create(&path)?;
    let ours = crate::audit::hmac_sha256_hex(&key.to_bytes(), &[SKETCH_FINGERPRINT]);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS weir_key_checks (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)",
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO weir_key_checks (name, fingerprint) VALUES ('sketch-key', ?1)",
        params![ours],
    )?;
    let stored: Option<String> = conn
        .query_row(
            "SELECT fingerprint FROM weir_key_checks WHERE name = 'sketch-key'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if stored.as_deref() != Some(ours.as_str()) {
        return Err(CatalogError::Key(format!(
            "{}: this control plane's sketch key is not the one the shared catalog's sketches \
             were made with; give every replica a copy of the first replica's key file",
            path.display()
        )));
    }
    Ok(())
}

fn cipher(conn: &Connection) -> Result<Aes256Gcm, CatalogError> {
    let audit_key = crate::audit::key_of(conn)?;
    let mut okm = [0u8; 32];
    if hkdf::Hkdf::<Sha256>::new(None, &audit_key)
        .expand(TOTP_KEY_INFO, &mut okm)
        .is_err()
    {
        unreachable!("HKDF-SHA256 gives 32 bytes");
    }
    Ok(Aes256Gcm::new(&okm.into()))
}

fn aad(user: &str) -> Vec<u8> {
    let mut a = b"weir totp user\0".to_vec();
    a.extend_from_slice(user.as_bytes());
    a
}

/// The TOTP secret `secret` of `user` as stored on `conn`: sealed on PostgreSQL, as it is
/// on SQLite (the file is encrypted).
pub(crate) fn seal_totp(
    conn: &Connection,
    user: &str,
    secret: &[u8],
) -> Result<Vec<u8>, CatalogError> {
    if !conn.is_postgres() {
        return Ok(secret.to_vec());
    }
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher(conn)?
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: &aad(user),
            },
        )
        .map_err(|_| CatalogError::Key(format!("users.{user}: cannot seal the TOTP secret")))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The TOTP secret of `user` from its stored form in `column` (see [`seal_totp`]).
pub(crate) fn open_totp(
    conn: &Connection,
    user: &str,
    column: &str,
    stored: &[u8],
) -> Result<Vec<u8>, CatalogError> {
    if !conn.is_postgres() {
        return Ok(stored.to_vec());
    }
    let bad = |why: &str| {
        CatalogError::Key(format!(
            "users.{column} of user {user:?}: {why}; a value copied from another user's row or \
             sealed under another audit key (<storage>.audit-key) does not open"
        ))
    };
    if stored.len() < 1 + NONCE_LEN + TAG_LEN || stored[0] != SEALED_V1 {
        return Err(bad("not a TOTP secret sealed by Weir"));
    }
    cipher(conn)?
        .decrypt(
            Nonce::from_slice(&stored[1..1 + NONCE_LEN]),
            Payload {
                msg: &stored[1 + NONCE_LEN..],
                aad: &aad(user),
            },
        )
        .map_err(|_| bad("the sealed TOTP secret does not open"))
}

/// On PostgreSQL (called by `Store::open` in its migration transaction): seals TOTP
/// secrets stored in clear by a build before sealing (a clear secret is 20 bytes; a
/// sealed one is longer).
pub(crate) fn seal_clear_totp(conn: &Connection) -> Result<(), CatalogError> {
    if !conn.is_postgres() {
        return Ok(());
    }
    type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = {
        let mut st = conn.prepare("SELECT name, totp_secret, totp_pending FROM users")?;
        let it = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        it.collect::<Result<_, _>>()?
    };
    let clear = |v: &Option<Vec<u8>>| v.as_ref().is_some_and(|v| v.len() == 20);
    for (name, secret, pending) in rows {
        for (column, value) in [("totp_secret", &secret), ("totp_pending", &pending)] {
            if let Some(v) = value.as_ref().filter(|_| clear(value)) {
                let sealed = seal_totp(conn, &name, v)?;
                conn.execute(
                    &format!("UPDATE users SET {column} = ?2 WHERE name = ?1"),
                    params![name, sealed],
                )?;
            }
        }
    }
    Ok(())
}
