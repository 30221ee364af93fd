//! The lockfile's keys, cached in binary: what a no-op `ptb plan` compares
//! (per cell stage: key, status, path, duration, exit code; the header),
//! without reading the lockfile's text. A 1,008-cell lockfile is 3.6 MB of
//! text whose every line must be checked; its keys are ~0.5 MB here.
//!
//! The cache lives in the store (`.cache/lockfile-<path hash>.keys`, beside
//! the stat cache), never beside the lockfile: the lockfile is meant to be
//! committed. It is only ever a copy of what reading the text gives
//! ([`Depth::Keys`]), and it is used only when it is provably the same file:
//!
//! - Its stamp (size, mtime, ctime, inode, as the stat cache keeps them)
//!   equals the lockfile's, **and** the lockfile's ctime was at least
//!   [`SETTLE_NS`] older than the clock when the cache was written. ctime
//!   cannot be set by a user (`touch` sets mtime; ctime moves with it), so
//!   a later change gives another stamp, except within one tick of a
//!   coarse file-system clock: git's "racily clean" index entries. A cache
//!   written within that window is not trusted by its stamp.
//! - Otherwise, if the sizes agree, the lockfile is read and its sha256
//!   compared with the one the cache recorded (a few ms, still no parse).
//! - Otherwise the text is parsed and the cache rewritten.
//!
//! The whole file ends with a CRC-32 of everything before it (it guards
//! against damage, not an adversary: whoever can write the store can write
//! the lockfile), so a torn or damaged cache is a miss, never a wrong
//! answer; nothing in it is trusted before that check, and every length is
//! checked against the bytes left. The CRC rather than sha256: the 0.6 MB
//! of keys is read by every `ptb plan`, and sha256 of it cost ~0.4 ms of a
//! 12 ms no-op plan (the CRC, ~0.03 ms). Written by hand rather than with a serde codec: five fields
//! a stage, and a derive on every lockfile, judge and status type plus a
//! format crate would be more code to keep stable than this.

use super::*;
use crate::hash::Stamp;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// Bump when the layout changes (a cache of another version is a miss).
/// History: 1, the first layout (a trailing sha256); 2, a trailing CRC-32.
const FORMAT: u32 = 2;
const MAGIC: &[u8] = b"ptb-lockfile-keys\n";
/// How much older than the clock a lockfile's ctime must be for its stamp
/// to identify its content: above the coarsest file-system timestamp in
/// use (FAT's 2 s), and far above ext4's clock tick.
const SETTLE_NS: i128 = 2_000_000_000;

/// What a read of the cache found (its tests assert which way it went).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// No lockfile: an empty one.
    Missing,
    /// The cache, trusted by the lockfile's stamp.
    Stamp,
    /// The cache, after comparing the lockfile's bytes with its sha256.
    Content,
    /// The lockfile's text (the cache was absent, stale or damaged).
    Text,
}

/// The lockfile at `lock_path` read to [`Depth::Keys`] (its journal is
/// not read here), through the cache at `cache_path`.
pub fn load(lock_path: &Path, cache_path: &Path) -> Result<(Lockfile, Source), LockError> {
    let rerr = |source| LockError::Read { path: lock_path.to_path_buf(), source };
    let mut file = match std::fs::File::open(lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Lockfile::default(), Source::Missing)),
        Err(e) => return Err(rerr(e)),
    };
    let stamp = Stamp::of(&file.metadata().map_err(rerr)?);
    let cached = match std::fs::read(cache_path).ok().and_then(|b| decode(&b)) {
        Some(c) if c.stamp == stamp && c.settled => return Ok((c.lock, Source::Stamp)),
        other => other,
    };
    let mut bytes = Vec::with_capacity(stamp.size as usize);
    file.read_to_end(&mut bytes).map_err(rerr)?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    // Only a stamp taken around an unchanged read describes these bytes.
    let after = Stamp::of(&file.metadata().map_err(rerr)?);
    if let Some(c) = cached
        && c.lock_sha256 == digest
    {
        if after == stamp && settled(&stamp) {
            let _ = store(cache_path, &c.lock, stamp, digest);
        }
        return Ok((c.lock, Source::Content));
    }
    let text = String::from_utf8(bytes).map_err(|e| rerr(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let lock = format::parse_to(&text, Depth::Keys).map_err(|e| e.at(lock_path))?;
    if after == stamp {
        // A cache is only a saving: failing to write one is not an error.
        let _ = store(cache_path, &lock, stamp, digest);
    }
    Ok((lock, Source::Text))
}

fn now_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

fn settled(stamp: &Stamp) -> bool {
    stamp.ctime_ns.max(stamp.mtime_ns) + SETTLE_NS <= now_ns()
}

struct Cached {
    stamp: Stamp,
    settled: bool,
    lock_sha256: [u8; 32],
    lock: Lockfile,
}

fn store(path: &Path, lock: &Lockfile, stamp: Stamp, lock_sha256: [u8; 32]) -> std::io::Result<()> {
    let bytes = encode(lock, stamp, settled(&stamp), lock_sha256);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // No fsync: a cache lost or torn by a crash fails its checksum and is
    // rebuilt from the text.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn put_str(o: &mut Vec<u8>, s: &str) {
    o.extend((s.len() as u32).to_le_bytes());
    o.extend(s.as_bytes());
}

fn encode(l: &Lockfile, stamp: Stamp, settled: bool, lock_sha256: [u8; 32]) -> Vec<u8> {
    let mut o = Vec::with_capacity(64 + l.cells.len() * 512);
    o.extend(MAGIC);
    o.extend(FORMAT.to_le_bytes());
    put_str(&mut o, env!("CARGO_PKG_VERSION"));
    o.extend(stamp.size.to_le_bytes());
    o.extend(stamp.mtime_ns.to_le_bytes());
    o.extend(stamp.ctime_ns.to_le_bytes());
    o.extend(stamp.ino.to_le_bytes());
    o.push(settled as u8);
    o.extend(lock_sha256);
    // The header (pins, hub, reviews, …) as the lockfile writes it: read
    // back by the same parser, so it cannot drift from the text's.
    let header = Lockfile { cells: BTreeMap::new(), ..l.clone() };
    put_str(&mut o, &render(&header));
    o.extend((l.cells.len() as u64).to_le_bytes());
    for (id, c) in &l.cells {
        for s in [id, &c.model, &c.benchmark, &c.agent] {
            put_str(&mut o, s);
        }
        o.extend(c.seed.to_le_bytes());
        o.extend((c.stages.len() as u64).to_le_bytes());
        for (name, s) in &c.stages {
            put_str(&mut o, name);
            put_str(&mut o, &s.key);
            o.push(crate::status::StageStatus::ALL.iter().position(|x| *x == s.status).expect("every status is in ALL") as u8);
            put_str(&mut o, &s.path);
            o.extend(s.duration_s.to_bits().to_le_bytes());
            match s.exit_code {
                Some(e) => {
                    o.push(1);
                    o.extend(e.to_le_bytes());
                }
                None => o.push(0),
            }
        }
    }
    let sum = crc32fast::hash(&o);
    o.extend(sum.to_le_bytes());
    o
}

/// A cursor that refuses to read past the end.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.array()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }
}

fn decode(bytes: &[u8]) -> Option<Cached> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != sum {
        return None;
    }
    let mut b = Bytes(body.strip_prefix(MAGIC)?);
    if b.u32()? != FORMAT || b.str()? != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let stamp = Stamp { size: b.u64()?, mtime_ns: b.i128()?, ctime_ns: b.i128()?, ino: b.u64()? };
    let settled = b.u8()? == 1;
    let lock_sha256 = b.array()?;
    let mut lock = format::parse_to(b.str()?, Depth::Keys).ok()?;
    let n = b.u64()?;
    // Collected, then built in one go: the ids are in order, and a
    // B-tree built from sorted items skips a search per insert.
    let mut cells = Vec::with_capacity((n as usize).min(b.0.len() / 16));
    for _ in 0..n {
        let id = b.string()?;
        let (model, benchmark, agent, seed) = (b.string()?, b.string()?, b.string()?, b.u64()?);
        let mut stages = BTreeMap::new();
        for _ in 0..b.u64()? {
            let name = b.string()?;
            let key = b.string()?;
            let status = *crate::status::StageStatus::ALL.get(b.u8()? as usize)?;
            let path = b.string()?;
            let duration_s = f64::from_bits(b.u64()?);
            let exit_code = match b.u8()? {
                0 => None,
                1 => Some(i32::from_le_bytes(b.array()?)),
                _ => return None,
            };
            let rec = StageRecord {
                key,
                status,
                path,
                started: String::new(),
                finished: String::new(),
                duration_s,
                exit_code,
                metrics: BTreeMap::new(),
                inputs: BTreeMap::new(),
            };
            stages.insert(name, rec);
        }
        cells.push((id, CellRecord { model, benchmark, agent, seed, stages }));
    }
    lock.cells = cells.into_iter().collect();
    b.0.is_empty().then_some(Cached { stamp, settled, lock_sha256, lock })
}

/// The cache's encoding and decoding of `l`, for the lockfile property tests.
#[cfg(test)]
pub(super) fn round_trip(l: &Lockfile) -> Option<Lockfile> {
    let stamp = Stamp { size: 1, mtime_ns: 2, ctime_ns: 3, ino: 4 };
    decode(&encode(l, stamp, true, [7; 32])).map(|c| c.lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cells: usize) -> Lockfile {
        let mut l = Lockfile { experiment: "e".into(), ptb_version: "0".into(), models: vec!["m".into()], ..Lockfile::default() };
        l.pins.insert("model/m".into(), "sha256:ab".into());
        for i in 0..cells {
            let rec = StageRecord {
                key: format!("{i:064x}"),
                status: crate::status::StageStatus::Success,
                path: format!("v1/{i:032x}-c{i}-agent"),
                started: "2026-12-06T00:00:00Z".into(),
                finished: "2026-12-06T00:00:01Z".into(),
                duration_s: 1.5,
                exit_code: Some(0),
                metrics: BTreeMap::from([("score".into(), MetricValue::Number(0.5))]),
                inputs: BTreeMap::from([("schema".into(), "3".into())]),
            };
            let stages = BTreeMap::from([("agent".to_string(), rec)]);
            l.cells.insert(format!("m/b/a/seed={i}"), CellRecord { model: "m".into(), benchmark: "b".into(), agent: "a".into(), seed: i as u64, stages });
        }
        l
    }

    fn keys_only(mut l: Lockfile) -> Lockfile {
        for s in l.cells.values_mut().flat_map(|c| c.stages.values_mut()) {
            (s.metrics, s.inputs, s.started, s.finished) = Default::default();
        }
        l
    }

    fn write_lockfile(path: &Path, l: &Lockfile) {
        std::fs::write(path, render(l)).unwrap();
    }

    /// A cache as a lockfile written long ago gets (tests cannot age a
    /// ctime, so the cache is written as settled).
    fn store_settled(cache: &Path, lock_path: &Path, l: &Lockfile) {
        let bytes = std::fs::read(lock_path).unwrap();
        let stamp = Stamp::of(&std::fs::metadata(lock_path).unwrap());
        std::fs::write(cache, encode(l, stamp, true, Sha256::digest(&bytes).into())).unwrap();
    }

    #[test]
    fn a_fresh_lockfile_is_read_from_its_text_then_from_the_cache_by_content() {
        let d = tempfile::tempdir().unwrap();
        let (lp, cp) = (d.path().join("x.lock"), d.path().join("cache/x.keys"));
        let l = sample(3);
        write_lockfile(&lp, &l);
        let (first, src) = load(&lp, &cp).unwrap();
        assert_eq!((src, &first), (Source::Text, &keys_only(l.clone())));
        // Just written, so the stamp is not trusted yet: the bytes are compared.
        let (second, src) = load(&lp, &cp).unwrap();
        assert_eq!((src, second), (Source::Content, keys_only(l)));
    }

    /// A lockfile of `cells` cells with a settled cache of it, in a fresh directory.
    fn cached(cells: usize) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, Lockfile) {
        let d = tempfile::tempdir().unwrap();
        let (lp, cp) = (d.path().join("x.lock"), d.path().join("x.keys"));
        let l = sample(cells);
        write_lockfile(&lp, &l);
        store_settled(&cp, &lp, &keys_only(l.clone()));
        (d, lp, cp, l)
    }

    #[test]
    fn a_settled_cache_is_trusted_by_the_stamp() {
        let (_d, lp, cp, l) = cached(2);
        assert_eq!(load(&lp, &cp).unwrap(), (keys_only(l), Source::Stamp));
    }

    #[test]
    fn an_edited_lockfile_is_read_again_even_at_the_same_size() {
        let (_d, lp, cp, l) = cached(2);
        // The same length, another key: as a hand edit or `git checkout` would.
        let mut edited = l.clone();
        edited.cells.values_mut().next().unwrap().stages.get_mut("agent").unwrap().key = format!("{:064x}", 99);
        std::fs::write(&lp, render(&edited)).unwrap();
        assert_eq!(std::fs::metadata(&lp).unwrap().len() as usize, render(&l).len());
        assert_eq!(load(&lp, &cp).unwrap(), (keys_only(edited), Source::Text));
    }

    #[test]
    fn within_a_clock_tick_an_edit_is_caught_by_the_content_hash() {
        // A cache written while the lockfile was fresh, whose stamp a
        // same-size edit within one coarse clock tick would not change
        // (forged here: real clocks cannot be made to collide on demand).
        let d = tempfile::tempdir().unwrap();
        let (lp, cp) = (d.path().join("x.lock"), d.path().join("x.keys"));
        let l = sample(2);
        let mut edited = l.clone();
        edited.cells.values_mut().next().unwrap().stages.get_mut("agent").unwrap().path = format!("v1/{:032x}-c0-judge", 1);
        assert_eq!(render(&edited).len(), render(&l).len());
        std::fs::write(&lp, render(&l)).unwrap();
        let old_sha: [u8; 32] = Sha256::digest(render(&l).as_bytes()).into();
        std::fs::write(&lp, render(&edited)).unwrap();
        let stamp_now = Stamp::of(&std::fs::metadata(&lp).unwrap());
        std::fs::write(&cp, encode(&keys_only(l.clone()), stamp_now, false, old_sha)).unwrap();
        assert_eq!(load(&lp, &cp).unwrap(), (keys_only(edited.clone()), Source::Text));
        // The same forgery marked settled would be believed: which is why a
        // cache is only marked settled when the ctime is old.
        std::fs::write(&cp, encode(&keys_only(l.clone()), stamp_now, true, old_sha)).unwrap();
        assert_eq!(load(&lp, &cp).unwrap().1, Source::Stamp);
        assert!(!settled(&stamp_now), "a just-written lockfile is not settled");
    }

    #[test]
    fn a_damaged_cache_is_a_miss_never_a_panic() {
        let (_d, lp, cp, l) = cached(3);
        let good = std::fs::read(&cp).unwrap();
        for cut in [0, 1, MAGIC.len(), good.len() / 2, good.len() - 1] {
            std::fs::write(&cp, &good[..cut]).unwrap();
            assert_eq!(load(&lp, &cp).unwrap(), (keys_only(l.clone()), Source::Text), "cut at {cut}");
        }
        for at in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            std::fs::write(&cp, &bad).unwrap();
            assert_eq!(load(&lp, &cp).unwrap().0, keys_only(l.clone()), "flipped byte {at}");
        }
    }

    #[test]
    fn lengths_are_checked_before_anything_is_allocated() {
        // A well-checksummed cache whose inner lengths lie (a cache from a
        // buggy writer): decode refuses it instead of reading past the end.
        let mut o = MAGIC.to_vec();
        o.extend(FORMAT.to_le_bytes());
        o.extend(u32::MAX.to_le_bytes());
        let sum = crc32fast::hash(&o);
        o.extend(sum.to_le_bytes());
        assert!(decode(&o).is_none());
    }

    #[test]
    fn no_lockfile_is_an_empty_one() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(&d.path().join("none.lock"), &d.path().join("c")).unwrap(), (Lockfile::default(), Source::Missing));
    }
}
