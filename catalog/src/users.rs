//! People: users with a role (the same roles and permissions as tokens), signing in with
//! a password and a TOTP code (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits), into
//! short-lived sessions carried by an HTTP-only, SameSite=Strict cookie.
//!
//! `weir admin user create NAME --role R` prints a one-time enrolment secret (valid 24 h,
//! stored only as a SHA-256 hash). The user enrols with it (the UI's sign-in page, or
//! `POST /api/v1/enrol/start` then `/api/v1/enrol/finish`): the server makes the TOTP
//! secret and shows it once, the user sets a password (12 to 1024 bytes) and proves the
//! authenticator with a code. Passwords are hashed with Argon2id (the argon2 crate's
//! defaults: 19 MiB, 2 passes, 1 lane) with a random salt. A code is accepted in its
//! 30-second step or the one before or after, and never twice (the last step used is kept).

use crate::db::{params, Connection, OptionalExtension};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::Role;
use crate::store::{now_secs, Store};
use crate::CatalogError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT,
    totp_secret   BLOB,
    totp_pending  BLOB,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    enrol_hash    BLOB,
    enrol_expires INTEGER,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    last_sign_in  INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    hash       BLOB PRIMARY KEY,
    \"user\"     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);";

/// Creates the users and sessions tables (called by `Store::open`).
pub(crate) fn install(conn: &Connection) -> Result<(), CatalogError> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// How long an enrolment secret is valid.
pub const ENROL_TTL_SECS: i64 = 24 * 3600;
/// How long a session lives (absolute; sign in again after).
pub const SESSION_TTL_SECS: i64 = 3600;
/// The session cookie's name.
pub const COOKIE: &str = "weir_session";
/// Shortest password, in bytes.
pub const MIN_PASSWORD: usize = 12;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;

// ---- TOTP (RFC 6238 over RFC 4226's HOTP) ----

/// HOTP (RFC 4226) with HMAC-SHA-1: the `digits`-digit code of `counter`.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut m = match <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    m.update(&counter.to_be_bytes());
    let h = m.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    bin % 10u32.pow(digits)
}

/// TOTP (RFC 6238): SHA-1, 30-second steps from the Unix epoch, 6 digits, at `unix`.
pub fn totp(secret: &[u8], unix: u64) -> u32 {
    hotp(secret, unix / 30, 6)
}

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 (upper or lower case, padding and spaces ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

fn sha(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

pub(crate) fn random_secret(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

pub(crate) fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A user as listed (never a secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// Role name (viewer, editor, admin).
    pub role: String,
    /// `pending` (enrolment secret issued), `active`, or `disabled`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign-in.
    pub last_sign_in: Option<i64>,
}

/// Checks a user name: 1 to 64 of `A-Z a-z 0-9 . _ - @`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "user: {} characters; a user name has 1 to 64",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        return Err(format!(
            "user: {c:?} is not allowed in a user name (A-Z a-z 0-9 . _ - @)"
        ));
    }
    Ok(())
}

/// Why a sign-in or enrolment step was refused (the message never says which factor).
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Wrong name, password, code or enrolment secret (one message for all).
    #[error("{0}")]
    Refused(&'static str),
    /// A request that can never succeed as sent (a short password, a bad name).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] CatalogError),
}

impl From<rusqlite::Error> for UserError {
    fn from(e: rusqlite::Error) -> Self {
        UserError::Store(e.into())
    }
}

const REFUSED_SIGN_IN: &str = "sign-in refused: wrong user name, password or code";
const REFUSED_ENROL: &str = "enrolment refused: wrong user name or enrolment secret, or it expired";

impl Store {
    /// Creates a user with `role` (not `edge`: edges use tokens) and returns the one-time
    /// enrolment secret. Creating an existing user's name again issues a new secret and
    /// resets its password and TOTP (the way to recover a lost authenticator). Audited.
    pub fn create_user(&self, name: &str, role: Role, actor: &str) -> Result<String, UserError> {
        check_name(name).map_err(UserError::Invalid)?;
        if role == Role::Edge {
            return Err(UserError::Invalid(
                "role: edge is for machines; give an edge a token (weir admin token create --role edge)".into(),
            ));
        }
        let secret = format!("weir_enrol_{}", b64(&random_secret(24)));
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existed = tx.execute(
            "UPDATE users SET role = ?2, password_hash = NULL, totp_secret = NULL, totp_pending = NULL, enrol_hash = ?3, enrol_expires = ?4, disabled_at = NULL WHERE name = ?1",
            params![name, role.as_str(), sha(&secret).to_vec(), now + ENROL_TTL_SECS],
        )? > 0;
        if !existed {
            tx.execute(
                "INSERT INTO users (name, role, enrol_hash, enrol_expires, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, role.as_str(), sha(&secret).to_vec(), now + ENROL_TTL_SECS, now],
            )?;
        }
        tx.execute("DELETE FROM sessions WHERE \"user\" = ?1", [name])?;
        crate::store::audit_in(
            &tx,
            actor,
            if existed { "user.reset" } else { "user.create" },
            name,
            Some(serde_json::json!({"role": role.as_str()})),
        )?;
        tx.commit()?;
        Ok(secret)
    }

    /// Disables a user and ends its sessions (audited); false when there is none.
    pub fn disable_user(&self, name: &str, actor: &str) -> Result<bool, CatalogError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE users SET disabled_at = ?2, enrol_hash = NULL WHERE name = ?1 AND disabled_at IS NULL",
            params![name, now_secs()],
        )?;
        tx.execute("DELETE FROM sessions WHERE \"user\" = ?1", [name])?;
        if n > 0 {
            crate::store::audit_in(&tx, actor, "user.disable", name, None)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// All users.
    pub fn users(&self) -> Result<Vec<UserInfo>, CatalogError> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT name, role, password_hash IS NOT NULL, disabled_at IS NOT NULL, created_at, last_sign_in FROM users ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            let active: bool = r.get(2)?;
            let disabled: bool = r.get(3)?;
            Ok(UserInfo {
                name: r.get(0)?,
                role: r.get(1)?,
                state: if disabled {
                    "disabled"
                } else if active {
                    "active"
                } else {
                    "pending"
                }
                .into(),
                created_at: r.get(4)?,
                last_sign_in: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn enrolment_ok(conn: &Connection, name: &str, secret: &str) -> Result<bool, UserError> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = conn
            .query_row(
                "SELECT enrol_hash, enrol_expires FROM users WHERE name = ?1 AND disabled_at IS NULL",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((Some(h), Some(exp))) = row else {
            return Ok(false);
        };
        Ok(bool::from(h.as_slice().ct_eq(&sha(secret))) && exp > now_secs())
    }

    /// Enrolment, first step: checks the enrolment secret and makes a TOTP secret,
    /// returned as base32 (shown once, to put in an authenticator app).
    pub fn enrol_start(&self, name: &str, secret: &str) -> Result<String, UserError> {
        let conn = self.lock();
        if !Self::enrolment_ok(&conn, name, secret)? {
            return Err(UserError::Refused(REFUSED_ENROL));
        }
        let totp_secret = random_secret(20);
        conn.execute(
            "UPDATE users SET totp_pending = ?2 WHERE name = ?1",
            params![name, crate::sealed::seal_totp(&conn, name, &totp_secret)?],
        )?;
        Ok(base32(&totp_secret))
    }

    /// Enrolment, second step: the enrolment secret again, the new password, and a code
    /// from the authenticator (proving it holds the TOTP secret). The enrolment secret is
    /// spent; the user is active. Audited.
    pub fn enrol_finish(
        &self,
        name: &str,
        secret: &str,
        password: &str,
        code: &str,
    ) -> Result<(), UserError> {
        if password.len() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
            return Err(UserError::Invalid(format!(
                "password: {} bytes; a password has {MIN_PASSWORD} to {MAX_PASSWORD}",
                password.len()
            )));
        }
        let mut conn = self.lock();
        if !Self::enrolment_ok(&conn, name, secret)? {
            return Err(UserError::Refused(REFUSED_ENROL));
        }
        let pending: Option<Vec<u8>> = conn.query_row(
            "SELECT totp_pending FROM users WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        let Some(pending) = pending else {
            return Err(UserError::Invalid(
                "enrolment: start it first (POST /api/v1/enrol/start)".into(),
            ));
        };
        let pending = crate::sealed::open_totp(&conn, name, "totp_pending", &pending)?;
        let Some(step) = code_step(&pending, code, 0) else {
            return Err(UserError::Refused(
                "enrolment refused: the code does not match the authenticator's secret (check the device's clock)",
            ));
        };
        let hash = hash_password(password)?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE users SET password_hash = ?2, totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?3, enrol_hash = NULL, enrol_expires = NULL WHERE name = ?1",
            params![name, hash, step as i64],
        )?;
        crate::store::audit_in(&tx, &format!("user:{name}"), "user.enrol", name, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Signs `name` in with password and TOTP code: returns the session secret (for the
    /// cookie) and the user's role. Audited on success (failures are audited by the API,
    /// with the client address).
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        code: &str,
    ) -> Result<(String, Role), UserError> {
        type Row = (String, Option<String>, Option<Vec<u8>>, i64);
        let row: Option<Row> = {
            let conn = self.lock();
            conn.query_row(
                "SELECT role, password_hash, totp_secret, totp_last_step FROM users WHERE name = ?1 AND disabled_at IS NULL",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
        };
        // The password is checked (and costs its Argon2 time) whether or not the user
        // exists, so timing does not tell names apart.
        let (role, phash, tsecret, last) = match row {
            Some((r, Some(p), Some(t), l)) => (Some(r), p, Some(t), l),
            _ => (None, dummy_hash().to_string(), None, 0),
        };
        let pw_ok = verify_password(&phash, password);
        let (Some(role), Some(tsecret), true) = (role, tsecret, pw_ok) else {
            return Err(UserError::Refused(REFUSED_SIGN_IN));
        };
        let tsecret = crate::sealed::open_totp(&self.lock(), name, "totp_secret", &tsecret)?;
        let Some(step) = code_step(&tsecret, code, last as u64) else {
            return Err(UserError::Refused(REFUSED_SIGN_IN));
        };
        let role = Role::parse(&role).ok_or(UserError::Refused(REFUSED_SIGN_IN))?;
        let session = format!("weir_s_{}", b64(&random_secret(32)));
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        // The step is spent: the same code cannot sign in twice.
        let n = tx.execute(
            "UPDATE users SET totp_last_step = ?2, last_sign_in = ?3 WHERE name = ?1 AND totp_last_step < ?2",
            params![name, step as i64, now],
        )?;
        if n == 0 {
            return Err(UserError::Refused(REFUSED_SIGN_IN));
        }
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        tx.execute(
            "INSERT INTO sessions (hash, \"user\", created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha(&session).to_vec(), name, now, now + SESSION_TTL_SECS],
        )?;
        crate::store::audit_in(&tx, &format!("user:{name}"), "user.sign_in", name, None)?;
        tx.commit()?;
        Ok((session, role))
    }

    /// Signs `name` in after an OpenID Connect provider vouched for it (`crate::oidc`):
    /// the user must exist and not be disabled; no password or TOTP is asked (the
    /// provider's own sign-in stands for them). Returns the session secret and the role;
    /// audited as `user.sign_in` with `{"method": "oidc", "issuer": ...}`.
    pub fn sign_in_oidc(&self, name: &str, issuer: &str) -> Result<(String, Role), UserError> {
        let role: Option<String> = self
            .lock()
            .query_row(
                "SELECT role FROM users WHERE name = ?1 AND disabled_at IS NULL",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let role = role
            .and_then(|r| Role::parse(&r))
            .ok_or(UserError::Refused(
                "sign-in refused: the provider's user is not an enabled Weir user",
            ))?;
        let session = format!("weir_s_{}", b64(&random_secret(32)));
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE users SET last_sign_in = ?2 WHERE name = ?1",
            params![name, now],
        )?;
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        tx.execute(
            "INSERT INTO sessions (hash, \"user\", created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha(&session).to_vec(), name, now, now + SESSION_TTL_SECS],
        )?;
        crate::store::audit_in(
            &tx,
            &format!("user:{name}"),
            "user.sign_in",
            name,
            Some(serde_json::json!({"method": "oidc", "issuer": issuer})),
        )?;
        tx.commit()?;
        Ok((session, role))
    }

    /// The user and role of a live session; `None` for unknown, expired or disabled.
    pub fn session(&self, secret: &str) -> Result<Option<(String, Role)>, CatalogError> {
        let conn = self.lock();
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT s.\"user\", u.role FROM sessions s JOIN users u ON u.name = s.\"user\" WHERE s.hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
                params![sha(secret).to_vec(), now_secs()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(u, r)| Role::parse(&r).map(|r| (u, r))))
    }

    /// Ends a session (sign-out).
    pub fn end_session(&self, secret: &str) -> Result<(), CatalogError> {
        self.lock().execute(
            "DELETE FROM sessions WHERE hash = ?1",
            [sha(secret).to_vec()],
        )?;
        Ok(())
    }
}

/// An Argon2id hash of a random password nobody has, checked when the user does not
/// exist (made once per process).
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&b64(&random_secret(24))).unwrap_or_default())
}

fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::encode_b64(&random_secret(16))
        .map_err(|e| UserError::Invalid(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Invalid(format!("password: {e}")))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The step whose code `code` is, within one step of now and after `after`.
fn code_step(secret: &[u8], code: &str, after: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = now_secs().max(0) as u64 / 30;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|&s| s > after && hotp(secret, s, 6) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 rows (8 digits there; the last 6 are the 6-digit code).
        let seed = b"12345678901234567890";
        for (t, eight) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(seed, t / 30, 8), eight, "t={t}");
            assert_eq!(totp(seed, t), eight % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn hotp_matches_rfc_4226_vectors() {
        let seed = b"12345678901234567890";
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(seed, c as u64, 6), *w, "counter {c}");
        }
    }

    #[test]
    fn base32_round_trips_rfc_4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        let s = random_secret(20);
        assert_eq!(base32_decode(&base32(&s)).unwrap(), s);
        assert!(base32_decode("not base32!").is_none());
    }

    #[test]
    fn enrol_then_sign_in_with_password_and_code_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let secret = store.create_user("ana", Role::Editor, "cli").unwrap();
        assert!(matches!(
            store.enrol_start("ana", "weir_enrol_wrong"),
            Err(UserError::Refused(_))
        ));
        let t = base32_decode(&store.enrol_start("ana", &secret).unwrap()).unwrap();
        let now = now_secs() as u64;
        let code = format!("{:06}", totp(&t, now));
        assert!(matches!(
            store.enrol_finish("ana", &secret, "short", &code),
            Err(UserError::Invalid(_))
        ));
        store
            .enrol_finish("ana", &secret, "correct horse battery", &code)
            .unwrap();
        // The enrolment secret is spent.
        assert!(store.enrol_start("ana", &secret).is_err());
        // The enrolment's code is spent too; the next step's code signs in once.
        assert!(store
            .sign_in("ana", "correct horse battery", &code)
            .is_err());
        let next = format!("{:06}", totp(&t, now + 30));
        assert!(store.sign_in("ana", "wrong password!", &next).is_err());
        let (session, role) = store
            .sign_in("ana", "correct horse battery", &next)
            .unwrap();
        assert_eq!(role, Role::Editor);
        assert!(store
            .sign_in("ana", "correct horse battery", &next)
            .is_err());
        assert_eq!(store.session(&session).unwrap().unwrap().0, "ana");
        assert!(store.session("weir_s_forged").unwrap().is_none());
        store.end_session(&session).unwrap();
        assert!(store.session(&session).unwrap().is_none());
        assert!(store.create_user("e", Role::Edge, "cli").is_err());
        assert!(store.create_user("bad name", Role::Viewer, "cli").is_err());
        let users = store.users().unwrap();
        assert_eq!(users[0].state, "active");
        // The stored password is an Argon2id hash, not the password.
        let conn = store.lock();
        let h: String = conn
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
    }
}
