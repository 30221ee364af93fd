//! Canonical, versioned keys for stages, and content hashes of input files.
//!
//! A stage key is the sha256 of a canonical encoding of a [`KeyInputs`]: an
//! ordered map from field name to a string value. Every field is documented
//! in `docs/hashing.md`; the map itself is also recorded in the lockfile so
//! that `ptb why` can name the field that changed, with old and new values.

mod content;

pub use content::{ContentHasher, HashError, StatCache, hash_dir, hash_file, hash_path};
pub(crate) use content::{Stamp, cores};

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Version of the stage-key schema. Bump it whenever the set of hashed
/// fields, their encoding, or their meaning changes; it is itself a hashed
/// field, so a bump shows up in `ptb why` as `schema: 1 → 2`. History: 1,
/// the first schema; 2, judge stages gained `model.instruct` (the judge
/// compares the final model with it) and `judge` (`plan::JUDGE_VERSION`,
/// for `ptb judge`); 3, eval stages hash `harness` (`plan::HARNESS_VERSION`)
/// only when they run the built-in `ptb eval`, so a ptb upgrade no longer
/// reruns evaluations that run a script or another image, and container
/// stages gained the `sandbox.*` fields (user, root filesystem, pids limit,
/// no-new-privileges, capabilities), and judge stages gained `policy.*` (the
/// spec's judge policy).
pub const KEY_SCHEMA: u32 = 3;

/// Number of hex characters of a key used in store paths (128 bits).
pub const STORE_KEY_LEN: usize = 32;
/// Number of hex characters shown to people and in rendered tables.
pub const SHORT_KEY_LEN: usize = 12;

/// The inputs of one stage, by field name. A `BTreeMap` so that iteration
/// (and therefore the encoding) is ordered by name, never by insertion or
/// hash-map order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInputs(pub BTreeMap<String, String>);

impl KeyInputs {
    pub fn new() -> Self {
        let mut m = BTreeMap::new();
        m.insert("schema".to_string(), key_schema().to_string());
        KeyInputs(m)
    }

    pub fn set(&mut self, field: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(field.into(), value.into());
        self
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The key: sha256 over `"ptb-stage-key\0"` followed by, for each field in
    /// name order, the name and the value, each as an 8-byte little-endian
    /// length then the UTF-8 bytes. Length prefixes make the encoding
    /// injective (no value can forge a field boundary).
    pub fn key(&self) -> StageKey {
        key_of(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// [`KeyInputs::key`] of fields given in name order, each name once
/// (planning hashes borrowed fields without building the map).
pub fn key_of<'s>(fields: impl Iterator<Item = (&'s str, &'s str)>) -> StageKey {
    let mut h = Sha256::new();
    h.update(b"ptb-stage-key\0");
    for (k, v) in fields {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    StageKey(hex(&h.finalize()))
}

/// [`KEY_SCHEMA`] as the field's value.
pub fn key_schema() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| KEY_SCHEMA.to_string())
}

/// Length-prefixed bytes: u64 LE length, then the bytes (both encodings use it).
pub(crate) fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A stage key: 64 lowercase hex characters (sha256).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageKey(pub String);

impl StageKey {
    /// The prefix used in store paths.
    pub fn store_prefix(&self) -> &str {
        &self.0[..STORE_KEY_LEN.min(self.0.len())]
    }
    pub fn short(&self) -> &str {
        &self.0[..SHORT_KEY_LEN.min(self.0.len())]
    }
}

impl fmt::Display for StageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// sha256 of a byte string, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex sha256 of everything `r` yields, streamed (for an already opened
/// file: the caller decides how it was opened, e.g. without following links).
pub fn sha256_read(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(hex(&h.finalize())),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_cannot_be_forged() {
        let mut a = KeyInputs::new();
        a.set("ab", "c");
        let mut b = KeyInputs::new();
        b.set("a", "bc");
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = KeyInputs::new();
        a.set("x", "1").set("y", "2");
        let mut b = KeyInputs::new();
        b.set("y", "2").set("x", "1");
        assert_eq!(a.key(), b.key());
    }
}
