//! The deployment's sketch key: every value hash a summary holds is keyed with it.
//!
//! Distinct-value sketches (HyperLogLog++, exact below 128 values) and the metric
//! constant-value check keep 64-bit hashes of attribute and metric values. With a public
//! hash function anyone who can read a summary could confirm a guess ("is
//! `alice@corp.com` among the values?") or enumerate small value spaces (PINs, salaries).
//! The hashes are therefore SipHash-2-4 under a secret 128-bit key: without the key a
//! stored hash is a pseudo-random number that confirms nothing.
//!
//! Sketches built by different processes merge only when they used the same key, so the key
//! is per deployment: the control plane creates it beside its SQLite file (never inside it)
//! and hands it to edges over the authenticated edge channel; a process that has no key yet
//! uses a random one of its own and labels its summaries with that key's [`SketchKey::id`],
//! so mismatched hashes are dropped instead of merged.
//!
//! Template ids are not value hashes (the template text is stored beside its id) and stay
//! unkeyed, so the same template gets the same id everywhere.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::MetadataError;

/// A 128-bit SipHash key. `Debug` shows only its id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SketchKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for SketchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SketchKey(id {})", self.id())
    }
}

/// Context string hashed to name a key without revealing it.
const ID_CONTEXT: &[u8] = b"weir sketch key id v1";

impl SketchKey {
    /// A key from 16 bytes (little-endian k0, then k1, as in the SipHash paper).
    pub fn from_bytes(b: [u8; 16]) -> SketchKey {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&b[..8]);
        k1.copy_from_slice(&b[8..]);
        SketchKey {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// The 16 key bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.k0.to_le_bytes());
        b[8..].copy_from_slice(&self.k1.to_le_bytes());
        b
    }

    /// A fresh key from the operating system's random source (via `rand`'s CSPRNG).
    pub fn random() -> SketchKey {
        SketchKey::from_bytes(rand::random())
    }

    /// The key of this process when none was set: random, made once.
    pub fn process_default() -> SketchKey {
        static KEY: OnceLock<SketchKey> = OnceLock::new();
        *KEY.get_or_init(SketchKey::random)
    }

    /// The key as 32 lowercase hex digits (the key file's content).
    pub fn to_hex(&self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 32 hex digits (surrounding whitespace allowed).
    pub fn parse_hex(s: &str) -> Option<SketchKey> {
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut b = [0u8; 16];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SketchKey::from_bytes(b))
    }

    /// A public name of the key (16 hex digits, a keyed hash of a fixed string): equal ids
    /// mean equal keys, and the id reveals nothing about the key.
    pub fn id(&self) -> String {
        format!("{:016x}", self.hash(ID_CONTEXT))
    }

    /// SipHash-2-4 of `bytes` under this key.
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let mut s = SipHasher24::new(self.k0, self.k1);
        s.write(bytes);
        s.finish()
    }

    /// SipHash-2-4 of `tag` followed by `bytes`, so that values of different types (`1` as
    /// an int, `"1"` as a string) hash apart.
    pub fn hash_tagged(&self, tag: u8, bytes: &[u8]) -> u64 {
        // One pass over the message `tag ++ bytes` without the streaming buffer: the first
        // word is the tag and the first seven bytes, then whole words from offset 7.
        let mut s = SipHasher24::new(self.k0, self.k1);
        let total = bytes.len() + 1;
        let head = bytes.len().min(7);
        let first = u64::from(tag) | (le_partial(&bytes[..head]) << 8);
        let tail = if total < 8 {
            first
        } else {
            s.compress(first);
            let mut words = bytes[7..].chunks_exact(8);
            for w in &mut words {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                s.compress(u64::from_le_bytes(b));
            }
            le_partial(words.remainder())
        };
        s.len = total;
        s.tail = tail;
        s.finish()
    }

    /// Reads a key file (32 hex digits); `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<SketchKey>, MetadataError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                SketchKey::parse_hex(&text)
                    .map(Some)
                    .ok_or_else(|| MetadataError::KeyFile {
                        path: path.to_path_buf(),
                        message: "is not a sketch key (32 hex digits expected)".into(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MetadataError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the key to `path` readable by its owner only (mode 0600), never replacing an
    /// existing file: returns the key the file holds afterwards (another process may have
    /// written one first).
    pub fn store_new(&self, path: &Path) -> Result<SketchKey, MetadataError> {
        let io = |source| MetadataError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sketch-key".into());
        let tmp = path.with_file_name(format!(
            ".{file_name}.{}.{:x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&tmp).and_then(|mut f| {
            f.write_all(format!("{}\n", self.to_hex()).as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        // A hard link never replaces an existing file: the first writer wins.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(*self),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => SketchKey::load(path)?
                .ok_or_else(|| MetadataError::KeyFile {
                    path: path.to_path_buf(),
                    message: "vanished while being created".into(),
                }),
            Err(e) => Err(io(e)),
        }
    }

    /// The key in `path`, created (random, mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<SketchKey, MetadataError> {
        match SketchKey::load(path)? {
            Some(k) => Ok(k),
            None => SketchKey::random().store_new(path),
        }
    }
}

/// Up to 8 bytes as a little-endian number.
#[inline]
fn le_partial(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012), streaming.
struct SipHasher24 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    tail: u64,
    ntail: usize,
    len: usize,
}

impl SipHasher24 {
    fn new(k0: u64, k1: u64) -> Self {
        SipHasher24 {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.round();
        self.v0 ^= m;
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len());
        while self.ntail != 0 && !bytes.is_empty() {
            self.tail |= u64::from(bytes[0]) << (8 * self.ntail);
            self.ntail += 1;
            bytes = &bytes[1..];
            if self.ntail == 8 {
                let m = self.tail;
                self.compress(m);
                self.tail = 0;
                self.ntail = 0;
            }
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.compress(u64::from_le_bytes(b));
        }
        for (i, &b) in words.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.ntail = words.remainder().len();
    }

    fn finish(mut self) -> u64 {
        let b = ((self.len as u64 & 0xff) << 56) | self.tail;
        self.compress(b);
        self.v2 ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper_key() -> SketchKey {
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        SketchKey::from_bytes(b)
    }

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(paper_key().hash(&msg), 0xa129_ca61_49be_45e5);
        // First entry of the reference implementation's vectors: the empty message.
        assert_eq!(paper_key().hash(b""), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    #[allow(deprecated)]
    fn siphash_equals_std_for_every_length_and_split() {
        use std::hash::Hasher as _;
        let key = SketchKey::from_bytes(*b"0123456789abcdef");
        let data: Vec<u8> = (0..70u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            let mut std = std::hash::SipHasher::new_with_keys(key.k0, key.k1);
            std.write(&data[..n]);
            let want = std.finish();
            assert_eq!(key.hash(&data[..n]), want, "length {n}");
            for split in 0..=n {
                let mut s = SipHasher24::new(key.k0, key.k1);
                s.write(&data[..split]);
                s.write(&data[split..n]);
                assert_eq!(s.finish(), want, "length {n} split {split}");
            }
        }
        for n in 0..data.len() {
            let mut std = std::hash::SipHasher::new_with_keys(key.k0, key.k1);
            std.write(&[7]);
            std.write(&data[..n]);
            assert_eq!(
                key.hash_tagged(7, &data[..n]),
                std.finish(),
                "tagged, length {n}"
            );
        }
    }

    #[test]
    fn keys_separate_hashes_and_ids_do_not_reveal_keys() {
        let (a, b) = (SketchKey::random(), SketchKey::random());
        assert_ne!(a, b);
        assert_ne!(a.hash(b"alice@corp.com"), b.hash(b"alice@corp.com"));
        assert_ne!(a.hash_tagged(1, b"1"), a.hash_tagged(3, b"1"));
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        assert!(!a.to_hex().contains(&a.id()));
        assert!(!format!("{a:?}").contains(&a.to_hex()));
        assert_eq!(SketchKey::parse_hex(&a.to_hex()), Some(a));
        assert_eq!(SketchKey::parse_hex(" zz "), None);
        assert_eq!(SketchKey::parse_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn key_file_is_created_once_owner_only_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("catalog.db.sketch-key");
        let first = SketchKey::load_or_create(&path).unwrap();
        assert_eq!(SketchKey::load_or_create(&path).unwrap(), first);
        // A second writer with another key gets the first key back.
        assert_eq!(SketchKey::random().store_new(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Only the key file is left (no temporary files).
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::write(&path, "not a key").unwrap();
        let err = SketchKey::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("catalog.db.sketch-key") && err.contains("32 hex"),
            "{err}"
        );
    }
}
