//! Data at rest: 256-bit keys kept in owner-only files, files written owner-only, and
//! authenticated encryption (AES-256-GCM) of small files such as the edge's policy cache.
//!
//! Shared by the edge (the policy cache of weir-policy's sync client) and the control plane
//! (the SQLCipher key of the catalog database, see `weir_catalog::at_rest`).
//!
//! A key is 32 random bytes written as 64 hex digits. It comes from, in order: an explicit
//! value (an environment variable), an explicit file, or a default file that is created on
//! first use (mode 0600, never replacing an existing file).

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// A 256-bit key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh key from the operating system's random source.
    pub fn random() -> Key {
        Key(rand::random())
    }

    /// A key from its bytes.
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (surrounding whitespace allowed).
    pub fn parse_hex(s: &str) -> Option<Key> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut b = [0u8; 32];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Key(b))
    }
}

/// Where a key came from (for log lines; never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// An environment variable.
    Env(String),
    /// An existing key file.
    File(PathBuf),
    /// A key file created just now.
    Created(PathBuf),
    /// A random key of this process only (an in-memory database: nothing at rest).
    Ephemeral,
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Env(v) => write!(f, "environment variable {v}"),
            KeyOrigin::File(p) => write!(f, "key file {}", p.display()),
            KeyOrigin::Created(p) => write!(f, "new key file {}", p.display()),
            KeyOrigin::Ephemeral => f.write_str("a random key of this process"),
        }
    }
}

/// Reads a key file (64 hex digits); `Ok(None)` when it does not exist.
pub fn load_key_file(path: &Path) -> Result<Option<Key>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Key::parse_hex(&text).map(Some).ok_or_else(|| {
            format!(
                "{}: is not a key (64 hex digits expected, as `openssl rand -hex 32` prints)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read the key file: {e}", path.display())),
    }
}

/// The key in the environment variable `var`, when it is set: 64 hex digits.
pub fn key_from_env(var: &str) -> Result<Option<Key>, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Key::parse_hex(&v).map(Some).ok_or_else(|| {
            format!("environment variable {var}: is not a key (64 hex digits expected)")
        }),
        _ => Ok(None),
    }
}

/// Writes a new key file, mode 0600, never replacing an existing file: returns the key the
/// file holds afterwards (another process may have written one first).
pub fn create_key_file(path: &Path, key: &Key) -> Result<Key, String> {
    let tmp = temp_beside(path);
    write_new_private(&tmp, format!("{}\n", key.to_hex()).as_bytes())
        .map_err(|e| format!("{}: cannot write the key file: {e}", tmp.display()))?;
    // A hard link never replaces an existing file: the first writer wins.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(path);
            Ok(key.clone())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key_file(path)?
            .ok_or_else(|| format!("{}: vanished while being created", path.display())),
        Err(e) => Err(format!(
            "{}: cannot create the key file: {e}",
            path.display()
        )),
    }
}

/// The key from `env` when set, else from `file` when it exists, else (with `create`) a new
/// random key written to `file` (mode 0600).
pub fn resolve_key(
    env: &str,
    file: &Path,
    create: bool,
) -> Result<Option<(Key, KeyOrigin)>, String> {
    if let Some(k) = key_from_env(env)? {
        return Ok(Some((k, KeyOrigin::Env(env.to_string()))));
    }
    if let Some(k) = load_key_file(file)? {
        restrict(file);
        return Ok(Some((k, KeyOrigin::File(file.to_path_buf()))));
    }
    if !create {
        return Ok(None);
    }
    let k = create_key_file(file, &Key::random())?;
    Ok(Some((k, KeyOrigin::Created(file.to_path_buf()))))
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(
        ".{name}.{}.{:x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// Creates `path` (which must not exist) owner-only and writes `bytes`, synced.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(path).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Replaces `path` atomically with `bytes` in an owner-only (0600) file: a temporary file
/// beside it, synced, then renamed over it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_beside(path);
    write_new_private(&tmp, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path);
    Ok(())
}

/// Makes an existing file owner-only (0600); files of older versions were 0644. Errors are
/// ignored (a file owned by someone else stays as it is).
pub fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// First bytes of a file sealed by [`seal`] (format version 1).
pub const SEALED_MAGIC: &[u8; 8] = b"WEIRAE1\0";

/// Encrypts and authenticates `plain` with AES-256-GCM under `key`: the magic, a random
/// 96-bit nonce, the ciphertext and its 128-bit tag. `context` is authenticated too (not
/// stored): a sealed file opens only with the same context (e.g. its role), so one sealed
/// file cannot be swapped for another of a different kind.
pub fn seal(key: &Key, context: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&key.0));
    let nonce: [u8; 12] = rand::random();
    let mut aad = SEALED_MAGIC.to_vec();
    aad.extend_from_slice(context);
    // Encryption with a valid key and nonce cannot fail (aes-gcm fails only on lengths
    // beyond 2^36 bytes).
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(8 + 12 + ct.len());
    out.extend_from_slice(SEALED_MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Whether `data` starts like a sealed file.
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(SEALED_MAGIC)
}

/// Checks and decrypts what [`seal`] made; an error for a wrong key, a different context,
/// or any changed byte.
pub fn open(key: &Key, context: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    if !is_sealed(data) {
        return Err("not an encrypted file (no WEIRAE1 header)".into());
    }
    if data.len() < 8 + 12 + 16 {
        return Err(format!("truncated: {} bytes", data.len()));
    }
    let cipher = Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&key.0));
    let mut aad = SEALED_MAGIC.to_vec();
    aad.extend_from_slice(context);
    cipher
        .decrypt(
            Nonce::from_slice(&data[8..20]),
            Payload {
                msg: &data[20..],
                aad: &aad,
            },
        )
        .map_err(|_| "authentication failed (wrong key, or the file was changed)".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context_and_unchanged() {
        let k = Key::random();
        let sealed = seal(&k, b"policy-cache", b"secret policy list");
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "plaintext visible"
        );
        assert_eq!(
            open(&k, b"policy-cache", &sealed).unwrap(),
            b"secret policy list"
        );
        assert!(open(&Key::random(), b"policy-cache", &sealed).is_err());
        assert!(open(&k, b"other", &sealed).is_err());
        for i in [0, 9, 25, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&k, b"policy-cache", &bad).is_err(), "byte {i}");
        }
        assert!(open(&k, b"policy-cache", &sealed[..30]).is_err());
        // Two seals of the same text differ (random nonce).
        assert_ne!(seal(&k, b"c", b"x"), seal(&k, b"c", b"x"));
    }

    #[test]
    fn keys_come_from_env_then_file_then_a_new_owner_only_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub").join("k.key");
        let var = "WEIR_TEST_AT_REST_KEY_UNSET_7f1";
        assert!(resolve_key(var, &f, false).unwrap().is_none());
        let (k, origin) = resolve_key(var, &f, true).unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Created(f.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, origin) = resolve_key(var, &f, true).unwrap().unwrap();
        assert_eq!((k2, origin), (k.clone(), KeyOrigin::File(f.clone())));
        // A second creation never replaces the first key.
        assert_eq!(create_key_file(&f, &Key::random()).unwrap(), k);
        std::fs::write(&f, "not hex").unwrap();
        let e = resolve_key(var, &f, true).unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
        assert!(Key::parse_hex(&k.to_hex()).unwrap() == k);
        assert!(format!("{k:?}") == "Key(..)");
    }

    #[test]
    fn write_private_replaces_atomically_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.pb");
        std::fs::write(&f, b"old").unwrap();
        write_private(&f, b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
