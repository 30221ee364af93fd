//! The lockfile's journal: `<lockfile>.journal`, an append-only file of
//! stage records written while `ptb apply` runs.
//!
//! Rewriting the whole lockfile after every finished stage made recording
//! cost grow with the experiment (a 3 MiB rewrite and fsync per stage at
//! 1,008 cells, quadratic over an apply). A record is instead appended here
//! and fsync'd: constant cost per stage, and durable before the stage
//! counts as recorded. Every reader of the lockfile replays the journal on
//! top of it ([`Lockfile::load`]), so a killed apply loses nothing it
//! recorded; [`compact`] folds the journal into the canonical lockfile
//! (at the end of an apply, and when a later command loads it) and deletes
//! it. The committed format is the lockfile alone: a journal never
//! outlives a finished command.
//!
//! A frame is `\n@<len> <sha256[..16]>\n<payload>`, the payload being the
//! record's `cell` node exactly as the lockfile renders it. Replaying a
//! record twice gives the same lockfile (records replace by cell and stage),
//! so a crash between writing the compacted lockfile and deleting the
//! journal is harmless. A frame that is torn (killed mid-write) or damaged
//! is skipped with a note; the reader resynchronises on the next `\n@`.

use super::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;

pub(super) const MAGIC: &[u8] = b"ptb-journal 1\n";

/// `<lockfile>.journal`.
pub fn journal_path(lock: &Path) -> PathBuf {
    let mut s = lock.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// Delete the journal once the lockfile holds what it recorded (gone
/// already is fine).
pub(super) fn remove_journal(lock_path: &Path) -> Result<(), LockError> {
    let path = journal_path(lock_path);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LockError::Write { path, source }),
    }
}

/// What replaying a journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// A journal file existed.
    pub present: bool,
    /// Records applied.
    pub records: usize,
    /// Bytes that were not a valid record (a torn or damaged tail), skipped.
    pub ignored_bytes: usize,
}

impl Replay {
    /// A line for the user when something was skipped.
    pub fn note(&self, path: &Path) -> Option<String> {
        (self.ignored_bytes > 0).then(|| {
            format!(
                "{}: ignored {} byte(s) that are not a whole record (an apply was killed while writing); the {} whole record(s) were kept",
                journal_path(path).display(),
                self.ignored_bytes,
                self.records
            )
        })
    }
}

/// One record as a journal frame.
pub fn frame(cell_id: &str, cell: &CellRecord, stage: &str, rec: &StageRecord) -> Vec<u8> {
    let one = CellRecord {
        model: cell.model.clone(),
        benchmark: cell.benchmark.clone(),
        agent: cell.agent.clone(),
        seed: cell.seed,
        stages: [(stage.to_string(), rec.clone())].into(),
    };
    let mut payload = String::new();
    format::render_cell(&mut payload, cell_id, &one);
    let sum = crate::hash::sha256_hex(payload.as_bytes());
    let mut out = format!("\n@{} {}\n", payload.len(), &sum[..16]).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out
}

/// Parse one frame at `at` (which points at its leading `\n`); the record
/// and the offset after it.
fn read_frame(b: &[u8], at: usize) -> Option<(String, CellRecord, usize)> {
    let rest = b.get(at..)?.strip_prefix(b"\n@")?;
    let nl = rest.iter().position(|&c| c == b'\n')?;
    let head = std::str::from_utf8(&rest[..nl]).ok()?;
    let (len, sum) = head.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let start = at + 2 + nl + 1;
    let payload = b.get(start..start.checked_add(len)?)?;
    if !checksum_matches(payload, sum) {
        return None;
    }
    let (id, cell) = parse_payload(payload)?;
    Some((id, cell, start + len))
}

/// Whether a frame's payload has the checksum its head gives.
pub(super) fn checksum_matches(payload: &[u8], sum: &str) -> bool {
    sum.len() == 16 && crate::hash::sha256_hex(payload)[..16] == *sum
}

/// A frame's payload: one cell with one stage record.
pub(super) fn parse_payload(payload: &[u8]) -> Option<(String, CellRecord)> {
    let payload = std::str::from_utf8(payload).ok()?;
    let mut l = fast::parse_canonical(&format!("version {LOCK_VERSION}\n{payload}"))?;
    let (id, cell) = l.cells.pop_first()?;
    (l.cells.is_empty() && cell.stages.len() == 1).then_some((id, cell))
}

/// Apply a journal's records to `l`, in order.
pub(super) fn replay(l: &mut Lockfile, bytes: &[u8]) -> Replay {
    let mut r = Replay { present: true, ..Replay::default() };
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        r.ignored_bytes = bytes.len();
        return r;
    };
    let mut at = 0;
    while at < body.len() {
        match read_frame(body, at) {
            Some((id, cell, next)) => {
                let entry = l.cells.entry(id).or_insert_with(|| CellRecord { stages: BTreeMap::new(), ..cell.clone() });
                entry.stages.extend(cell.stages);
                r.records += 1;
                at = next;
            }
            None => {
                // Skip to the next frame start, counting what was skipped.
                let next = body[at + 1..].windows(2).position(|w| w == b"\n@").map(|i| at + 1 + i).unwrap_or(body.len());
                r.ignored_bytes += next - at;
                at = next;
            }
        }
    }
    r
}

/// Read the journal beside `lock_path`, if any, into `l`.
pub(super) fn replay_file(l: &mut Lockfile, lock_path: &Path) -> Result<Replay, LockError> {
    let path = journal_path(lock_path);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(replay(l, &bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Replay::default()),
        Err(source) => Err(LockError::Read { path, source }),
    }
}

/// An appender. Callers serialise appends and compactions with the
/// lockfile's guard (see `session::LockfileGuard`): another process may
/// compact the journal away between two appends, in which case the next
/// append starts a new one.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    open: Option<(File, u64)>,
}

impl Journal {
    pub fn new(lock_path: &Path) -> Journal {
        Journal { path: journal_path(lock_path), open: None }
    }

    /// Append one frame and make it durable (fdatasync; the directory is
    /// synced once, when the file is created).
    pub fn append(&mut self, frame: &[u8]) -> Result<(), LockError> {
        let werr = |source| LockError::Write { path: self.path.clone(), source };
        let current = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        if self.open.as_ref().map(|(_, ino)| *ino) != current || current.is_none() {
            self.open = None;
            let f = OpenOptions::new().append(true).create(true).open(&self.path).map_err(werr)?;
            let md = f.metadata().map_err(werr)?;
            if md.len() == 0 {
                (&f).write_all(MAGIC).map_err(werr)?;
                f.sync_data().map_err(werr)?;
                if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
            }
            self.open = Some((f, md.ino()));
        }
        let (f, _) = self.open.as_ref().expect("opened above");
        let mut w: &File = f;
        w.write_all(frame).map_err(werr)?;
        f.sync_data().map_err(werr)
    }
}

/// Fold the journal into the lockfile: load both, let `edit` adjust the
/// result, write it if it changed, then delete the journal. The caller
/// holds the lockfile's guard. Returns whether the lockfile was written and
/// what the replay found.
pub fn compact(lock_path: &Path, edit: impl FnOnce(&mut Lockfile)) -> Result<(bool, Replay), LockError> {
    let (mut l, replay) = Lockfile::load_replayed(lock_path)?;
    edit(&mut l);
    let written = l.save(lock_path)?;
    if replay.present {
        remove_journal(lock_path)?;
    }
    Ok((written, replay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> StageRecord {
        StageRecord {
            key: key.into(),
            status: crate::status::StageStatus::Success,
            path: "v1/x".into(),
            started: "2026-11-23T10:00:00Z".into(),
            finished: "2026-11-23T10:00:01Z".into(),
            duration_s: 1.25,
            exit_code: Some(0),
            metrics: [("score".to_string(), MetricValue::Number(0.1)), ("ok".to_string(), MetricValue::Bool(true))].into(),
            inputs: [("schema".to_string(), "1".to_string())].into(),
        }
    }

    fn cell() -> CellRecord {
        CellRecord { model: "m".into(), benchmark: "b".into(), agent: "a".into(), seed: 1, stages: BTreeMap::new() }
    }

    fn journal(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for f in frames {
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn replay_gives_what_a_full_write_gives() {
        let (a, e) = (frame("c1", &cell(), "agent", &rec("k1")), frame("c1", &cell(), "eval", &rec("k2")));
        let mut l = Lockfile::default();
        let r = replay(&mut l, &journal(&[a.clone(), e, a]));
        assert_eq!((r.records, r.ignored_bytes), (3, 0));
        let mut want = Lockfile::default();
        want.cells.insert("c1".into(), CellRecord { stages: [("agent".to_string(), rec("k1")), ("eval".to_string(), rec("k2"))].into(), ..cell() });
        assert_eq!(render(&l), render(&want));
    }

    #[test]
    fn a_torn_or_damaged_frame_is_skipped_and_later_frames_kept() {
        let (a, b, c) = (frame("c1", &cell(), "agent", &rec("k1")), frame("c2", &cell(), "agent", &rec("k2")), frame("c3", &cell(), "agent", &rec("k3")));
        // Torn in the middle of b, then c appended by another process.
        let mut bytes = journal(std::slice::from_ref(&a));
        bytes.extend_from_slice(&b[..b.len() / 2]);
        bytes.extend_from_slice(&c);
        let mut l = Lockfile::default();
        let r = replay(&mut l, &bytes);
        assert_eq!((r.records, r.ignored_bytes), (2, b.len() / 2));
        assert_eq!(l.cells.keys().collect::<Vec<_>>(), ["c1", "c3"]);
        // A flipped byte inside a payload fails its checksum.
        let mut bad = journal(&[a, b.clone()]);
        let n = bad.len();
        bad[n - 5] ^= 0x20;
        let mut l = Lockfile::default();
        let r = replay(&mut l, &bad);
        assert_eq!((r.records, r.ignored_bytes), (1, b.len()));
        assert!(r.note(Path::new("x.lock")).unwrap().contains("ignored"));
        // Garbage of every length, never a panic.
        for cut in 0..bad.len() {
            replay(&mut Lockfile::default(), &bad[..cut]);
            replay(&mut Lockfile::default(), &[&bad[..cut], b"\n@\n@99999999999999999999 x\n"].concat());
        }
    }
}
