//! The content-addressed store: `<store>/v1/<key32>-<cell-slug>-<stage>/`
//! holding `out/`, `log` and `meta.json`.
//!
//! A stage is built in `v1/.tmp/` and renamed in only on success, so an
//! entry is there whole or not at all. A per-key lock file (flock) makes
//! concurrent `ptb apply` runs build each stage once; failed attempts keep
//! their log under `v1/failed/` and are never cached.

mod maintain;
mod meta;

pub use maintain::{GcReport, VerifyReport, gc, verify};
pub use meta::{Meta, MetricValue};

use crate::hash::StageKey;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const STORE_VERSION: &str = "v1";

/// A file in a build directory whose stage runs outside ptb's process (a
/// Slurm job): the directory outlives the ptb that made it, so a later
/// apply can adopt the job instead of starting the stage again.
pub const DETACHED: &str = "detached";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: io::Error },
    #[error("store entry {path} has an unreadable meta.json: {message}")]
    BadMeta { path: PathBuf, message: String },
}

fn err<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { context, path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
pub struct Store {
    /// `<store>/v1`
    root: PathBuf,
}

/// Which keys have a finished entry, by their 32-character prefix.
#[derive(Debug, Clone, Default)]
pub struct StoreIndex {
    entries: HashMap<String, String>,
}

impl StoreIndex {
    pub fn contains(&self, key: &StageKey) -> bool {
        self.entries.contains_key(key.store_prefix())
    }
    /// The entry's directory name.
    pub fn entry_name(&self, key: &StageKey) -> Option<&str> {
        self.entries.get(key.store_prefix()).map(String::as_str)
    }
    pub fn insert(&mut self, key: &StageKey, name: String) {
        self.entries.insert(key.store_prefix().to_string(), name);
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `tiny-a/gsm8k/echo/seed=1` + `agent` → `tiny-a-gsm8k-echo-seed1-agent`.
pub fn slug(cell: &str, stage: &str) -> String {
    let mut s: String =
        cell.chars().filter(|c| *c != '=').map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '-' }).collect();
    s.push('-');
    s.push_str(stage);
    s
}

/// The directory name of a stage's entry: `<key32>-<cell-slug>-<stage>`.
pub fn entry_name(key: &StageKey, cell: &str, stage: &str) -> String {
    format!("{}-{}", key.store_prefix(), slug(cell, stage))
}

/// A held per-key lock; released on drop.
pub struct KeyLock {
    _file: fs::File,
}

/// A stage being built in `.tmp/`.
pub struct Building {
    pub dir: PathBuf,
    pub name: String,
    _lock: KeyLock,
}

impl Building {
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let root = path.join(STORE_VERSION);
        for d in [root.clone(), root.join(".tmp"), root.join(".locks"), root.join("failed")] {
            fs::create_dir_all(&d).map_err(err("cannot create", &d))?;
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a finished entry, relative to the store root's parent
    /// (`v1/<name>`), as recorded in lockfiles.
    pub fn relative(&self, name: &str) -> String {
        format!("{STORE_VERSION}/{name}")
    }

    pub fn entry_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where an entry is while its stage runs (see [`Store::begin`]).
    pub fn building_dir(&self, name: &str) -> PathBuf {
        self.root.join(".tmp").join(name)
    }

    pub fn stat_cache_path(&self) -> PathBuf {
        self.root.join(".cache").join("stat-cache.tsv")
    }

    /// The LLM judge's reply cache, shared by every eval stage: replies are
    /// keyed by their whole request, so re-scoring never pays twice. `gc`
    /// leaves it alone; delete it to re-ask the judge.
    pub fn judge_cache_dir(&self) -> PathBuf {
        self.root.join(".cache").join("judge")
    }

    /// List finished entries (one `read_dir`; no entry is opened).
    pub fn index(&self) -> Result<StoreIndex, StoreError> {
        let mut index = StoreIndex::default();
        for e in fs::read_dir(&self.root).map_err(err("cannot list", &self.root))? {
            let e = e.map_err(err("cannot list", &self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "failed" || name.len() < 33 {
                continue;
            }
            index.entries.insert(name[..32].to_string(), name);
        }
        Ok(index)
    }

    fn lock_path(&self, key: &StageKey) -> PathBuf {
        self.root.join(".locks").join(format!("{}.lock", key.store_prefix()))
    }

    fn open_lock(&self, key: &StageKey) -> Result<(fs::File, PathBuf), StoreError> {
        let p = self.lock_path(key);
        let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(err("cannot open lock", &p))?;
        Ok((f, p))
    }

    /// Take the key's lock without waiting; `None` if another process holds it.
    pub fn try_lock(&self, key: &StageKey) -> Result<Option<KeyLock>, StoreError> {
        let (f, p) = self.open_lock(key)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: f })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::Io { context: "cannot lock", path: p, source: e }),
        }
    }

    /// Take the key's lock, waiting for another process to release it.
    pub fn lock(&self, key: &StageKey) -> Result<KeyLock, StoreError> {
        let (f, p) = self.open_lock(key)?;
        f.lock().map_err(err("cannot lock", &p))?;
        Ok(KeyLock { _file: f })
    }

    /// Start building `key` in a fresh temporary directory. The caller holds
    /// the key's lock, which the build keeps until commit or failure.
    pub fn begin(&self, key: &StageKey, cell: &str, stage: &str, lock: KeyLock) -> Result<Building, StoreError> {
        let name = entry_name(key, cell, stage);
        let dir = self.building_dir(&name);
        // A leftover from a killed run under the same key: we hold the lock,
        // so nobody else is using it.
        if dir.exists() {
            remove_tree(&dir)?;
        }
        for d in [dir.join("out"), dir.join("work")] {
            fs::create_dir_all(&d).map_err(err("cannot create", &d))?;
        }
        Ok(Building { dir, name, _lock: lock })
    }

    /// Take over a build a killed ptb left in `.tmp/` (see [`DETACHED`]),
    /// keeping what is in it. The caller holds the key's lock.
    pub fn resume(&self, key: &StageKey, cell: &str, stage: &str, lock: KeyLock) -> Result<Building, StoreError> {
        let name = entry_name(key, cell, stage);
        let dir = self.building_dir(&name);
        for d in [dir.join("out"), dir.join("work")] {
            fs::create_dir_all(&d).map_err(err("cannot create", &d))?;
        }
        Ok(Building { dir, name, _lock: lock })
    }

    /// Move a successful build into the store: write meta.json, drop the
    /// scratch dir, make it read-only and rename it in atomically.
    pub fn commit(&self, b: Building, meta: &Meta) -> Result<PathBuf, StoreError> {
        let _ = remove_tree(&b.work_dir());
        meta.write(&b.dir.join("meta.json"))?;
        fsync_tree(&b.dir);
        set_readonly(&b.dir, true);
        let dest = self.root.join(&b.name);
        // A forced rerun replaces the old entry under the same key. Between
        // the removal and the rename the entry is absent, never partial.
        if dest.exists() {
            remove_tree(&dest)?;
        }
        fs::rename(&b.dir, &dest).map_err(err("cannot move into the store", &dest))?;
        sync_dir(&self.root);
        Ok(dest)
    }

    /// Keep a failed attempt's log and meta under `failed/`; its outputs are
    /// dropped so nothing can mistake them for a result.
    pub fn fail(&self, b: Building, meta: &Meta) -> Result<PathBuf, StoreError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dest = self.root.join("failed").join(format!("{}-{stamp}", b.name));
        fs::create_dir_all(&dest).map_err(err("cannot create", &dest))?;
        let _ = fs::rename(b.log_path(), dest.join("log"));
        meta.write(&dest.join("meta.json"))?;
        remove_tree(&b.dir)?;
        Ok(dest)
    }

    /// Remove build directories left by killed runs (their key lock is
    /// free), except detached ones: their job may still be running, and the
    /// next apply of their key adopts or replaces them.
    pub fn clean_stale(&self) -> Result<usize, StoreError> {
        let tmp = self.root.join(".tmp");
        let mut n = 0;
        for e in fs::read_dir(&tmp).map_err(err("cannot list", &tmp))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() < 32 {
                continue;
            }
            let key = StageKey(name[..32].to_string());
            if e.path().join(DETACHED).exists() {
                continue;
            }
            if let Some(_lock) = self.try_lock(&key)? {
                remove_tree(&e.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn read_meta(&self, name: &str) -> Result<Meta, StoreError> {
        Meta::read(&self.root.join(name).join("meta.json"))
    }

    /// Delete a finished entry (for `ptb gc`).
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        remove_tree(&self.root.join(name))
    }

    pub fn failed_dir(&self) -> PathBuf {
        self.root.join("failed")
    }
}

/// Store entries are read-only (like /nix/store), so a stage cannot change
/// another's output in place. Directories get the write bit back for removal.
pub(crate) fn set_readonly(root: &Path, ro: bool) {
    for e in walkdir::WalkDir::new(root).contents_first(ro).into_iter().flatten() {
        if e.path_is_symlink() {
            continue;
        }
        if let Ok(md) = e.metadata() {
            let mode = md.permissions().mode();
            let new = if ro { mode & !0o222 } else { mode | 0o200 };
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(new));
        }
    }
}

pub(crate) fn remove_tree(p: &Path) -> Result<(), StoreError> {
    if !p.exists() {
        return Ok(());
    }
    set_readonly(p, false);
    fs::remove_dir_all(p).map_err(err("cannot remove", p))
}

fn fsync_tree(root: &Path) {
    for e in walkdir::WalkDir::new(root).into_iter().flatten() {
        if e.file_type().is_file()
            && let Ok(f) = fs::File::open(e.path())
        {
            let _ = f.sync_all();
        }
    }
    sync_dir(root);
}

fn sync_dir(p: &Path) {
    if let Ok(f) = fs::File::open(p) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> StageKey {
        StageKey(std::iter::repeat_n(c, 64).collect())
    }

    /// A build whose job runs outside ptb (Slurm) outlives the ptb that
    /// started it: `clean_stale` leaves it, `resume` keeps what is in it,
    /// and `begin` (the stage started afresh) clears it.
    #[test]
    fn detached_builds_survive_cleaning_and_resume_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (key('a'), key('b'));
        for k in [&a, &b] {
            let build = store.begin(k, "m/b/a/seed=1", "agent", store.try_lock(k).unwrap().unwrap()).unwrap();
            fs::write(build.out_dir().join("partial"), "x").unwrap();
        }
        let detached = store.building_dir(&entry_name(&a, "m/b/a/seed=1", "agent"));
        fs::write(detached.join(DETACHED), "slurm\n").unwrap();
        assert_eq!(store.clean_stale().unwrap(), 1);
        assert!(detached.join("out/partial").exists());
        assert!(!store.building_dir(&entry_name(&b, "m/b/a/seed=1", "agent")).exists());

        let resumed = store.resume(&a, "m/b/a/seed=1", "agent", store.try_lock(&a).unwrap().unwrap()).unwrap();
        assert!(resumed.out_dir().join("partial").exists());
        drop(resumed);
        let fresh = store.begin(&a, "m/b/a/seed=1", "agent", store.try_lock(&a).unwrap().unwrap()).unwrap();
        assert!(!fresh.out_dir().join("partial").exists() && !fresh.dir.join(DETACHED).exists());
    }
}
