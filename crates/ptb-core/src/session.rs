//! Loading everything a command works on: spec, store, pins, lockfile and
//! store index. The I/O half of planning.

use crate::hash::{ContentHasher, StatCache};
use crate::lock::{AgentInfo, BenchmarkInfo, Depth, LockError, Lockfile, Replay};
use crate::plan::{self, Plan, PlanOptions};
use crate::progress::Reporter;
use crate::resolve::ImageResolver;
use crate::resolve::{Pins, ResolveError, resolve};
use crate::spec::{AgentKind, CheckpointSource, Experiment, SpecError};
use crate::store::{Store, StoreError, StoreIndex};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SessionError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(help("the files changed since the hash was pinned: re-pin with `ptb hash PATH`, or restore the files"))]
    Resolve(#[from] ResolveError),
}

/// Where things live, after CLI overrides.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    pub store: Option<PathBuf>,
    pub lockfile: Option<PathBuf>,
}

pub struct Session {
    /// Shared (not copied) with whatever outlives a borrow of the session:
    /// `apply`'s cell tasks. 10,080 cells are ~1 MB.
    pub exp: std::sync::Arc<Experiment>,
    pub store: Store,
    pub pins: Pins,
    pub lock: Lockfile,
    pub lock_path: PathBuf,
    pub index: StoreIndex,
    /// What the lockfile's journal held when it was loaded (records of a
    /// running or killed apply, replayed into `lock`).
    pub journal: Replay,
    /// How much of the lockfile's records `lock` holds.
    pub depth: Depth,
}

/// Serialises the processes that write a lockfile or its journal (applies
/// appending records, commands compacting the journal): an flock on a file
/// in the store, named after the lockfile's absolute path.
pub struct LockfileGuard {
    _file: std::fs::File,
}

impl LockfileGuard {
    pub fn acquire(store: &Store, lock_path: &Path) -> Result<LockfileGuard, LockError> {
        let path = store.lockfile_guard_path(lock_path);
        let werr = |source| LockError::Write { path: path.clone(), source };
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(werr)?;
        file.lock().map_err(werr)?;
        Ok(LockfileGuard { _file: file })
    }
}

impl Session {
    pub fn load(spec: &Path, loc: &Locations, images: Option<&dyn ImageResolver>, reporter: &dyn Reporter) -> Result<Session, SessionError> {
        Session::from_experiment(crate::spec::load(spec)?, loc, images, reporter)
    }

    /// For callers that already parsed the spec (e.g. to decide whether a
    /// container engine is needed before resolving images).
    pub fn from_experiment(exp: Experiment, loc: &Locations, images: Option<&dyn ImageResolver>, reporter: &dyn Reporter) -> Result<Session, SessionError> {
        Session::from_experiment_to(exp, loc, images, reporter, Depth::Full)
    }

    /// [`Session::from_experiment`] with the lockfile's records read to
    /// `depth` ([`Session::read_whole_records`] reads the rest).
    pub fn from_experiment_to(
        exp: Experiment,
        loc: &Locations,
        images: Option<&dyn ImageResolver>,
        reporter: &dyn Reporter,
        depth: Depth,
    ) -> Result<Session, SessionError> {
        let store_path = loc.store.clone().unwrap_or_else(|| exp.store.clone());
        let store = Store::open(&store_path)?;
        let lock_path = loc.lockfile.clone().unwrap_or_else(|| exp.lockfile.clone());
        // Listing the store, reading the lockfile and hashing inputs are
        // independent: the listing (thousands of entries) on a thread of
        // its own, the rest here (a keys-only read is a few ms; a whole
        // read parses on all cores by itself).
        let (lock, pins, index) = std::thread::scope(|s| {
            let index = s.spawn(|| store.index());
            let cache = StatCache::load(store.stat_cache_path());
            let pins = resolve(&exp, &ContentHasher::new(&cache, reporter), images);
            let _ = cache.save();
            let lock = match depth {
                Depth::Keys => Lockfile::load_keys_cached(&lock_path, &store.lockfile_keys_path(&lock_path)),
                Depth::Full => Lockfile::load_replayed_to(&lock_path, depth),
            };
            (lock, pins, index.join().expect("listing the store does not panic"))
        });
        let ((lock, journal), mut pins, index) = (lock?, pins?, index?);
        let mut exp = exp;
        crate::resolve::resolve_hub(&mut exp, &lock, &store, &mut pins)?;
        Ok(Session { exp: std::sync::Arc::new(exp), store, pins, lock, lock_path, index, journal, depth })
    }

    /// Read the lockfile's records whole, if they were read to less.
    pub fn read_whole_records(&mut self) -> Result<(), SessionError> {
        if self.depth != Depth::Full {
            (self.lock, self.journal) = Lockfile::load_replayed(&self.lock_path)?;
            self.depth = Depth::Full;
        }
        Ok(())
    }

    /// Notes for the user about what loading found.
    pub fn notes(&self) -> Option<String> {
        self.journal.note(&self.lock_path)
    }

    /// Fold a journal left by an apply (killed, or running concurrently)
    /// into the lockfile and delete it. The records were already replayed
    /// into `self.lock`, so planning sees them either way; this makes the
    /// file on disk say it too. Returns whether the lockfile was written.
    pub fn compact_journal(&self) -> Result<bool, SessionError> {
        if !self.journal.present {
            return Ok(false);
        }
        let _guard = LockfileGuard::acquire(&self.store, &self.lock_path)?;
        Ok(crate::lock::fold(&self.lock_path, |_| {}, |_| true)?.0)
    }

    pub fn plan(&self, opts: &PlanOptions) -> Plan {
        plan::plan(&self.exp, &self.pins, &self.lock, &self.index, opts)
    }
}

/// The lockfile's header as this experiment and its pins say it should be;
/// records of cells no longer in the spec are dropped.
pub fn refresh_header(lock: &mut Lockfile, exp: &Experiment, pins: &Pins) {
    lock.experiment = exp.name.clone();
    lock.ptb_version = env!("CARGO_PKG_VERSION").to_string();
    lock.models = exp.models.iter().map(|m| m.name.clone()).collect();
    lock.benchmarks = exp.benchmarks.iter().map(|b| BenchmarkInfo { name: b.name.clone(), weight: b.weight }).collect();
    lock.agents = exp
        .agents
        .iter()
        .map(|a| AgentInfo {
            name: a.name.clone(),
            kind: match a.kind {
                AgentKind::Run(_) => "run",
                AgentKind::Checkpoint(CheckpointSource::Base) => "base",
                AgentKind::Checkpoint(CheckpointSource::Instruct) => "instruct",
            }
            .into(),
        })
        .collect();
    lock.pins = pins.0.iter().filter_map(|(k, p)| p.hash.clone().map(|h| (k.clone(), h))).collect();
    lock.reviews = exp.reviews.clone();
    // Hub pins are written by the fetch step (`ptb apply`, `ptb update`);
    // here only those of refs the spec no longer names are dropped.
    let wanted: std::collections::HashMap<String, &crate::spec::HubRef> =
        crate::resolve::model_refs(exp).filter_map(|(name, _, r)| r.hub.as_ref().map(|h| (name, h))).collect();
    lock.hub.retain(|name, p| wanted.get(name).is_some_and(|h| h.repo == p.repo && h.revision == p.revision));
    let ids: std::collections::HashSet<&str> = exp.cells.iter().map(|c| c.id.as_str()).collect();
    lock.cells.retain(|id, _| ids.contains(id.as_str()));
}
