//! The content-addressed store: `<store>/v1/<key32>-<cell-slug>-<stage>/`
//! holding `out/`, `log` and `meta.json`.
//!
//! A stage is built in `v1/.tmp/` and renamed in only on success, so an
//! entry is there whole or not at all. A per-key lock file (flock) makes
//! concurrent `ptb apply` runs build each stage once; failed attempts keep
//! their log under `v1/failed/` and are never cached.

mod maintain;
mod meta;
pub mod output;

pub use maintain::{GcReport, VerifyReport, gc, verify};
pub use meta::{Meta, MetricValue};

use crate::hash::StageKey;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const STORE_VERSION: &str = "v1";

/// The directory under `v1/` that holds models fetched from the hub.
pub const MODELS: &str = "models";

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

/// Which keys have a finished entry, by their 32-character prefix (as
/// the 128-bit number it spells: one allocation an entry, its name, where
/// a map of strings took two; the index is built on every `ptb plan`).
#[derive(Debug, Clone, Default)]
pub struct StoreIndex {
    entries: HashMap<u128, Box<str>>,
}

/// A 32-character lowercase hex prefix as a number; anything else is none.
fn prefix_bits(prefix: &str) -> Option<u128> {
    (prefix.len() == 32 && prefix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then(|| u128::from_str_radix(prefix, 16).ok()).flatten()
}

impl StoreIndex {
    /// The entry's directory name.
    pub fn entry_name(&self, key: &StageKey) -> Option<&str> {
        self.entries.get(&prefix_bits(key.store_prefix())?).map(|n| &**n)
    }
    pub fn insert(&mut self, key: &StageKey, name: String) {
        if let Some(bits) = prefix_bits(key.store_prefix()) {
            self.entries.insert(bits, name.into());
        }
    }
    /// Every entry's directory name, in no order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|n| &**n)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The key prefix of an entry's directory name (`<key32>-…`), if it is one.
fn key_prefix(name: &str) -> Option<&str> {
    let prefix = name.get(..32)?;
    (name.as_bytes().get(32) == Some(&b'-') && prefix.bytes().all(|b| b.is_ascii_hexdigit())).then_some(prefix)
}

/// The longest cell part of an entry name: with the key prefix and the
/// stage it stays well under the 255 bytes a file name may have. The key
/// makes names unique; the slug is only for people.
const SLUG_MAX: usize = 160;

/// `lockfile-<16 hex>`: the lockfile's absolute path, hashed (one store can
/// serve several lockfiles).
fn lockfile_slug(lock_path: &Path) -> String {
    let abs = std::path::absolute(lock_path).unwrap_or_else(|_| lock_path.to_path_buf());
    format!("lockfile-{}", &crate::hash::sha256_hex(abs.to_string_lossy().as_bytes())[..16])
}

/// `tiny-a/gsm8k/echo/seed=1` + `agent` → `tiny-a-gsm8k-echo-seed1-agent`.
pub fn slug(cell: &str, stage: &str) -> String {
    let mut s: String = cell
        .chars()
        .filter(|c| *c != '=')
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '-' })
        .take(SLUG_MAX)
        .collect();
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

    /// A path under the store as lockfiles record it (`v1/…`, including
    /// `v1/failed/…`).
    pub fn relative_path(&self, path: &Path) -> String {
        path.strip_prefix(self.root.parent().unwrap_or(&self.root)).unwrap_or(path).to_string_lossy().into_owned()
    }

    pub fn entry_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A directory under `.tmp/` (see [`Store::begin`]).
    pub fn building_dir(&self, name: &str) -> PathBuf {
        self.root.join(".tmp").join(name)
    }

    /// The latest attempt at building entry `name` (`.tmp/<name>.<attempt>`),
    /// if one is there: the one `ptb logs -f` follows.
    pub fn latest_attempt(&self, name: &str) -> Option<PathBuf> {
        let prefix = format!("{name}.");
        fs::read_dir(self.root.join(".tmp"))
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    }

    /// Models fetched from the Hugging Face hub: `v1/models/<hex>/`, each
    /// named by ptb's directory hash of its files (the `model.base` a stage
    /// key hashes), so the same content is one entry whatever repo or
    /// revision it came from, and a name can be trusted without re-reading
    /// gigabytes (`ptb verify` re-hashes them).
    pub fn models_dir(&self) -> PathBuf {
        self.root.join(MODELS)
    }

    /// A fetched model's directory, by its content hash (hex).
    pub fn model_dir(&self, sha256_hex: &str) -> PathBuf {
        self.models_dir().join(sha256_hex)
    }

    /// A fetched model's path as lockfiles and `gc` name it.
    pub fn model_relative(&self, sha256_hex: &str) -> String {
        format!("{STORE_VERSION}/{MODELS}/{sha256_hex}")
    }

    /// Move a model built in `built` (a directory under `v1/.tmp/`, so the
    /// same filesystem) to its place `v1/models/<hex>`, whole or not at
    /// all, and make it read-only. Another ptb may have put the same
    /// content there first: then `built` is removed and that one is used.
    pub fn commit_model(&self, built: &Path, sha256_hex: &str) -> Result<PathBuf, StoreError> {
        let models = self.models_dir();
        fs::create_dir_all(&models).map_err(err("cannot create", &models))?;
        let dest = self.model_dir(sha256_hex);
        if dest.is_dir() {
            remove_tree(built)?;
            return Ok(dest);
        }
        fsync_tree(built);
        // Renamed before it is made read-only: moving a directory to
        // another parent needs write permission on it (its `..` entry).
        fs::rename(built, &dest).map_err(err("cannot commit model to", &dest))?;
        set_readonly(&dest, true);
        sync_dir(&models);
        Ok(dest)
    }

    pub fn stat_cache_path(&self) -> PathBuf {
        self.root.join(".cache").join("stat-cache.tsv")
    }

    /// The binary cache of a lockfile's keys (`lock::Lockfile::load_keys_cached`):
    /// in the store, not beside the lockfile, which is committed.
    pub fn lockfile_keys_path(&self, lock_path: &Path) -> PathBuf {
        self.root.join(".cache").join(format!("{}.keys", lockfile_slug(lock_path)))
    }

    /// The file whose flock serialises the writers of a lockfile
    /// (`session::LockfileGuard`).
    pub fn lockfile_guard_path(&self, lock_path: &Path) -> PathBuf {
        self.root.join(".locks").join(format!("{}.lock", lockfile_slug(lock_path)))
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
            // Anything else in the store directory (a stray file, a name with a
            // multi-byte character where the key should be) is not an entry.
            let Some(bits) = key_prefix(&name).and_then(prefix_bits) else { continue };
            index.entries.insert(bits, name.into());
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

    /// Start building `key` in a fresh temporary directory of its own,
    /// `.tmp/<name>.<attempt>`: a process left over from an earlier attempt
    /// (a killed run's orphan) can only ever write into that attempt's
    /// directory, never into this one. The caller holds the key's lock,
    /// which the build keeps until commit or failure.
    pub fn begin(&self, key: &StageKey, cell: &str, stage: &str, lock: KeyLock) -> Result<Building, StoreError> {
        let name = entry_name(key, cell, stage);
        // A detached attempt (a Slurm job) that is not being adopted is
        // abandoned: we hold the key's lock, and this attempt replaces it.
        while let Some(old) = self.detached_attempt(&name) {
            remove_tree(&old)?;
        }
        let dir = self.building_dir(&format!("{name}.{}", attempt_id()));
        for d in [dir.join("out"), dir.join("work")] {
            fs::create_dir_all(&d).map_err(err("cannot create", &d))?;
        }
        Ok(Building { dir, name, _lock: lock })
    }

    /// Take over a build a killed ptb left in `.tmp/` (see [`DETACHED`]),
    /// keeping what is in it. The caller holds the key's lock.
    pub fn resume(&self, key: &StageKey, cell: &str, stage: &str, lock: KeyLock) -> Result<Building, StoreError> {
        let name = entry_name(key, cell, stage);
        let dir = self.detached_attempt(&name).unwrap_or_else(|| self.building_dir(&format!("{name}.{}", attempt_id())));
        for d in [dir.join("out"), dir.join("work")] {
            fs::create_dir_all(&d).map_err(err("cannot create", &d))?;
        }
        Ok(Building { dir, name, _lock: lock })
    }

    /// The latest attempt at entry `name` whose job runs outside ptb (marked
    /// [`DETACHED`]): the one a restarted `ptb apply` adopts.
    pub fn detached_attempt(&self, name: &str) -> Option<PathBuf> {
        let prefix = format!("{name}.");
        fs::read_dir(self.root.join(".tmp"))
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) && e.path().join(DETACHED).exists())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    }

    /// Move a successful build into the store: write meta.json, drop the
    /// scratch dir, make it read-only and rename it in atomically. On an
    /// error (a full disk) the build comes back, to be kept as a failure.
    pub fn commit(&self, b: Building, meta: &Meta) -> Result<PathBuf, (Building, StoreError)> {
        let _ = remove_tree(&b.work_dir());
        if let Err(e) = meta.write(&b.dir.join("meta.json")) {
            return Err((b, e));
        }
        seal_tree(&b.dir);
        let dest = self.root.join(&b.name);
        // A forced rerun replaces the old entry under the same key. Between
        // the removal and the rename the entry is absent, never partial.
        if dest.exists()
            && let Err(e) = remove_tree(&dest)
        {
            set_readonly(&b.dir, false);
            return Err((b, e));
        }
        if let Err(source) = fs::rename(&b.dir, &dest) {
            set_readonly(&b.dir, false);
            return Err((b, StoreError::Io { context: "cannot move into the store", path: dest, source }));
        }
        sync_dir(&self.root);
        Ok(dest)
    }

    /// Keep a failed attempt's log and meta under `failed/`; its outputs are
    /// dropped so nothing can mistake them for a result.
    pub fn fail(&self, b: Building, meta: &Meta) -> Result<PathBuf, StoreError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dest = self.root.join("failed").join(format!("{}-{stamp}", b.name));
        // Outputs go first: a stage that filled the disk frees it here, so
        // its record (and its siblings) can still be written.
        let _ = remove_tree(&b.out_dir());
        let _ = remove_tree(&b.work_dir());
        let kept = fs::create_dir_all(&dest).map_err(err("cannot create", &dest)).and_then(|()| {
            let _ = fs::rename(b.log_path(), dest.join("log"));
            meta.write(&dest.join("meta.json"))
        });
        remove_tree(&b.dir)?;
        kept.map(|()| dest)
    }

    /// Remove build directories left by killed runs (their key lock is
    /// free), except detached ones: their job may still be running, and the
    /// next apply of their key adopts or replaces them.
    pub fn clean_stale(&self) -> Result<usize, StoreError> {
        let tmp = self.root.join(".tmp");
        let mut n = 0;
        for e in fs::read_dir(&tmp).map_err(err("cannot list", &tmp))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(prefix) = key_prefix(&name) else { continue };
            let key = StageKey(prefix.to_string());
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

    /// Bytes free for ptb on the store's filesystem (`statvfs`).
    pub fn free_bytes(&self) -> Result<u64, StoreError> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(self.root.as_os_str().as_bytes()).map_err(|_| StoreError::Io {
            context: "cannot inspect",
            path: self.root.clone(),
            source: io::Error::other("NUL in path"),
        })?;
        // SAFETY: a valid C string and a zeroed out-parameter.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(StoreError::Io { context: "cannot inspect", path: self.root.clone(), source: io::Error::last_os_error() });
        }
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    /// Keep the record of a stage that could not be built at all (its
    /// build directory could not be made or committed): `failed/` gets a
    /// log with the reason. Best effort: on a full disk even this may fail.
    pub fn fail_unbuilt(&self, name: &str, meta: &Meta, reason: &str) -> Result<PathBuf, StoreError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dest = self.root.join("failed").join(format!("{name}-{stamp}"));
        fs::create_dir_all(&dest).map_err(err("cannot create", &dest))?;
        fs::write(dest.join("log"), format!("ptb: {reason}\n")).map_err(err("cannot write", &dest))?;
        meta.write(&dest.join("meta.json"))?;
        Ok(dest)
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

/// Unique per attempt on this machine: the process, the time, a counter.
fn attempt_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
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

/// [`fsync_tree`] and [`set_readonly`] in one walk, for a build being
/// committed. Every file's writeback is started before any is waited for,
/// so the fsyncs that follow share the filesystem's journal commits
/// instead of paying one each (ext4 commits once for every fsync that
/// finds metadata not yet committed, such as a newly allocated block).
fn seal_tree(root: &Path) {
    use std::os::fd::AsRawFd;
    // Files held open at once: far below the descriptor limit.
    const BATCH: usize = 128;
    let sync = |open: &mut Vec<fs::File>| open.drain(..).for_each(|f| drop(f.sync_all()));
    let mut open = Vec::new();
    for e in walkdir::WalkDir::new(root).contents_first(true).into_iter().flatten() {
        if e.path_is_symlink() {
            continue;
        }
        if e.file_type().is_file()
            && let Ok(f) = fs::File::open(e.path())
        {
            // SAFETY: an open descriptor; the call only starts writeback.
            unsafe {
                libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
            open.push(f);
            if open.len() == BATCH {
                sync(&mut open);
            }
        }
        if let Ok(md) = e.metadata() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(md.permissions().mode() & !0o222));
        }
    }
    sync(&mut open);
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

    /// A killed attempt's leftover (an orphan may still write into it) is
    /// never the next attempt's directory; `clean_stale` removes it.
    #[test]
    fn each_attempt_builds_in_a_directory_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = StageKey("a".repeat(64));
        let first = store.begin(&key, "m/b/a/seed=1", "agent", store.lock(&key).unwrap()).unwrap();
        let killed = first.dir.clone();
        drop(first);
        let second = store.begin(&key, "m/b/a/seed=1", "agent", store.lock(&key).unwrap()).unwrap();
        assert_ne!(second.dir, killed);
        fs::write(killed.join("out/late.txt"), "an orphan's write").unwrap();
        assert!(!second.out_dir().join("late.txt").exists());
        assert_eq!(store.latest_attempt(&second.name), Some(second.dir.clone()));
        drop(second);
        assert_eq!(store.clean_stale().unwrap(), 2);
        assert_eq!(fs::read_dir(store.root().join(".tmp")).unwrap().count(), 0);
    }

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
        let detached = store.latest_attempt(&entry_name(&a, "m/b/a/seed=1", "agent")).unwrap();
        fs::write(detached.join(DETACHED), "slurm\n").unwrap();
        assert_eq!(store.clean_stale().unwrap(), 1);
        assert!(detached.join("out/partial").exists());
        assert!(store.latest_attempt(&entry_name(&b, "m/b/a/seed=1", "agent")).is_none());

        let resumed = store.resume(&a, "m/b/a/seed=1", "agent", store.try_lock(&a).unwrap().unwrap()).unwrap();
        assert!(resumed.out_dir().join("partial").exists());
        drop(resumed);
        let fresh = store.begin(&a, "m/b/a/seed=1", "agent", store.try_lock(&a).unwrap().unwrap()).unwrap();
        assert!(!fresh.out_dir().join("partial").exists() && !fresh.dir.join(DETACHED).exists());
        assert!(store.detached_attempt(&fresh.name).is_none() && !detached.exists(), "a fresh start abandons the detached attempt");
    }
}
