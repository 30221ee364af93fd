//! The lockfile: resolved pins and, per cell stage, its key, store path,
//! status, metrics and times. A versioned, deterministic KDL document:
//! the same content always serialises to the same bytes, and it is only
//! rewritten when its content changes.

mod fast;
mod fold;
mod format;
mod journal;
mod keycache;
mod replace;
#[cfg(test)]
mod roundtrip_tests;

pub use fold::fold;
pub use format::{parse, render};
pub use journal::{Journal, Replay, compact, frame, journal_path};

use crate::store::MetricValue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The newest version of the lockfile format; readers refuse versions
/// outside `LOCK_VERSION_MIN..=LOCK_VERSION`.
///
/// - **1**: the first format.
/// - **2**: adds top-level `hub` nodes (models fetched from the Hugging Face
///   hub: repo, revision as written, resolved commit, content hash). A
///   lockfile without them is still written as version 1, byte for byte as
///   before, so specs whose models are paths keep their lockfiles and older
///   ptb versions keep reading them; one with them is written as version 2,
///   which an older ptb refuses by its version rather than misreading.
pub const LOCK_VERSION: u32 = 2;
/// The oldest version this ptb reads.
pub const LOCK_VERSION_MIN: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lockfile {
    pub experiment: String,
    pub ptb_version: String,
    /// Declared order, for reports.
    pub models: Vec<String>,
    pub benchmarks: Vec<BenchmarkInfo>,
    pub agents: Vec<AgentInfo>,
    /// `model/<m>` etc. → `sha256:…` (see `resolve::Pins`).
    pub pins: BTreeMap<String, String>,
    /// People's verdicts that overrule the judge's, from the spec's
    /// `review` nodes, in cell order. Reports read them; nothing reruns.
    pub reviews: Vec<crate::judge::Review>,
    /// Models from the Hugging Face hub, by pin name (`model/<m>`,
    /// `model/<m>/instruct`): what `revision` resolved to and the content
    /// fetched. Written by `ptb apply` (when a ref is not pinned yet) and
    /// `ptb update`; `--locked` refuses refs not in here.
    pub hub: BTreeMap<String, HubPin>,
    pub cells: BTreeMap<String, CellRecord>,
}

/// One hub model's pin (Cargo.lock's `source` + `checksum`, flake.lock's
/// `rev` + `narHash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubPin {
    /// `org/name`.
    pub repo: String,
    /// The revision as the spec writes it (`main`, a tag, a commit): a pin
    /// is for that ref; a spec naming another ref is not resolved by it.
    pub revision: String,
    /// The 40-hex commit the revision resolved to.
    pub commit: String,
    /// `sha256:<hex>`: ptb's directory hash of the fetched files, the value
    /// the model's stages hash as `model.base` / `model.instruct`.
    pub sha256: String,
}

impl Lockfile {
    /// The format version this lockfile is written in: 1 unless it has
    /// something only version 2 can say (see [`LOCK_VERSION`]).
    pub fn format_version(&self) -> u32 {
        if self.hub.is_empty() { 1 } else { 2 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkInfo {
    pub name: String,
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentInfo {
    pub name: String,
    /// `run`, or `base` / `instruct` for reference rows.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CellRecord {
    pub model: String,
    pub benchmark: String,
    pub agent: String,
    pub seed: u64,
    /// By stage name, in chain order when rendered.
    pub stages: BTreeMap<String, StageRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    pub key: String,
    pub status: crate::status::StageStatus,
    /// `v1/<entry>` for finished stages, the failed/ path otherwise.
    pub path: String,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    pub exit_code: Option<i32>,
    pub metrics: BTreeMap<String, MetricValue>,
    pub inputs: BTreeMap<String, String>,
}

/// How much of each stage record a read keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// Everything.
    #[default]
    Full,
    /// The key, status, path, duration and exit code: what a plan compares
    /// to see that nothing changed. Metrics, inputs and times are left
    /// empty (their lines are still checked): most of a lockfile's bytes,
    /// and of the memory it takes once read. A plan that finds something
    /// to run reads the records whole to say why.
    Keys,
}

impl StageRecord {
    /// Finished with a usable result (cacheable).
    pub fn is_done(&self) -> bool {
        self.status.has_result()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("cannot read lockfile {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write lockfile {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: lockfile version {found} is not supported (this ptb reads versions {LOCK_VERSION_MIN} to {LOCK_VERSION})")]
    #[diagnostic(help("use the ptb version that wrote it, or delete the lockfile to re-plan from the store"))]
    Version { path: PathBuf, found: String },
    #[error("{path}: malformed lockfile: {message}")]
    #[diagnostic(help("lockfiles are written by ptb; restore it from version control or delete it"))]
    Malformed { path: PathBuf, message: String },
}

impl Lockfile {
    /// Read a lockfile with its journal (records of an apply that is
    /// running or was killed) replayed on top; a missing file is an empty
    /// lockfile.
    pub fn load(path: &Path) -> Result<Lockfile, LockError> {
        Ok(Lockfile::load_replayed(path)?.0)
    }

    /// [`Lockfile::load`], also saying what the journal held.
    pub fn load_replayed(path: &Path) -> Result<(Lockfile, Replay), LockError> {
        Lockfile::load_replayed_to(path, Depth::Full)
    }

    /// [`Lockfile::load_replayed`], keeping of each record what `depth`
    /// says (records from the journal are kept whole).
    pub fn load_replayed_to(path: &Path, depth: Depth) -> Result<(Lockfile, Replay), LockError> {
        let mut l = Lockfile::load_file_to(path, depth)?;
        let replay = journal::replay_file(&mut l, path)?;
        Ok((l, replay))
    }

    /// [`Lockfile::load_replayed_to`] at [`Depth::Keys`], reading the keys
    /// from the binary cache at `cache` when it is provably of this
    /// lockfile's content (see `lock/keycache.rs`) and writing it when not.
    pub fn load_keys_cached(path: &Path, cache: &Path) -> Result<(Lockfile, Replay), LockError> {
        let (mut l, _) = keycache::load(path, cache)?;
        let replay = journal::replay_file(&mut l, path)?;
        Ok((l, replay))
    }

    /// The lockfile file alone, without its journal.
    pub fn load_file(path: &Path) -> Result<Lockfile, LockError> {
        Lockfile::load_file_to(path, Depth::Full)
    }

    fn load_file_to(path: &Path, depth: Depth) -> Result<Lockfile, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => format::parse_to(&text, depth).map_err(|e| e.at(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lockfile::default()),
            Err(source) => Err(LockError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Write atomically (temp file, fsync, rename) if the content changed.
    /// Returns whether the file was written. A new lockfile gets the mode
    /// the umask gives (it is meant to be committed and shared); an
    /// existing one keeps its mode.
    pub fn save(&self, path: &Path) -> Result<bool, LockError> {
        let text = render(self);
        let old = std::fs::read(path).ok();
        if old.as_deref() == Some(text.as_bytes()) {
            return Ok(false);
        }
        let mut r = replace::Replacement::create(path)?;
        r.write_all(text.as_bytes())?;
        r.commit()?;
        Ok(true)
    }

    pub fn stage(&self, cell: &str, stage: &str) -> Option<&StageRecord> {
        self.cells.get(cell)?.stages.get(stage)
    }

    /// A person's review of `cell`, if any.
    pub fn review(&self, cell: &str) -> Option<&crate::judge::Review> {
        self.reviews.iter().find(|r| r.cell == cell)
    }
}

/// A parse error before the path is known.
#[derive(Debug)]
pub struct ParseError {
    version: Option<String>,
    message: String,
}

impl ParseError {
    fn at(self, path: &Path) -> LockError {
        match self.version {
            Some(found) => LockError::Version { path: path.to_path_buf(), found },
            None => LockError::Malformed { path: path.to_path_buf(), message: self.message },
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "lockfile version {v} is not supported"),
            None => f.write_str(&self.message),
        }
    }
}
