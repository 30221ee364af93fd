//! Content hashes of input files and directories.
//!
//! A file's hash is the plain sha256 of its bytes, so it can be checked with
//! `sha256sum`. A directory's hash (checkpoints are many GB) is a sha256 over
//! a canonical walk, documented in `docs/hashing.md`:
//!
//! `"ptb-dir-v1\0"`, then for each entry below the root, in byte order of its
//! `/`-separated relative path: a one-byte tag (`d` directory, `f` file,
//! `x` executable file, `l` symlink), the path (u64 LE length + bytes), and
//! for files the size (u64 LE) and the 32-byte sha256 of the contents, for
//! symlinks the target (length + bytes). Owners, times and other permission
//! bits are not hashed.
//!
//! Files are hashed in parallel, and a [`StatCache`] maps
//! (path, size, mtime, ctime, inode) to a file hash so an unchanged
//! checkpoint is not re-read.

use super::{hex, put};
use crate::progress::Reporter;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot walk {path}: {source}")]
    Walk { path: PathBuf, source: walkdir::Error },
    /// Reading a FIFO or a device would block or never end.
    #[error("{path} is a {kind}; only regular files, directories and symlinks can be hashed")]
    Special { path: PathBuf, kind: &'static str },
}

fn special(path: &Path, ft: fs::FileType) -> Result<(), HashError> {
    match crate::store::output::special_kind(&ft) {
        Some(kind) => Err(HashError::Special { path: path.to_path_buf(), kind }),
        None => Ok(()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HashError + '_ {
    move |source| HashError::Io { path: path.to_path_buf(), source }
}

/// What the stat cache remembers about a file. Any change of size, mtime,
/// ctime or inode invalidates the entry (ctime catches `touch -m` back-dating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
    pub(crate) ino: u64,
}

impl Stamp {
    pub(crate) fn of(md: &fs::Metadata) -> Stamp {
        Stamp {
            size: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
            ino: md.ino(),
        }
    }
}

/// A persistent map from file stamps to content hashes.
///
/// Stored as a tab-separated text file (one line per file) rather than JSON
/// because it is read on every `ptb plan` and a line format parses in a
/// fraction of the time for thousands of entries.
#[derive(Debug, Default)]
pub struct StatCache {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, (Stamp, String)>>,
    dirty: std::sync::atomic::AtomicBool,
    /// Never consulted nor filled: one-off hashes (a stage's output at
    /// commit) skip resolving every file's absolute path for a cache that
    /// is thrown away.
    off: bool,
}

impl StatCache {
    /// A cache that lives only in memory.
    pub fn in_memory() -> Self {
        StatCache::default()
    }

    fn off() -> Self {
        StatCache { off: true, ..StatCache::default() }
    }

    /// Load the cache at `path`; a missing or unreadable file is an empty cache
    /// (the cache only ever saves work, it never decides a result).
    pub fn load(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut entries = HashMap::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                let f: Vec<&str> = line.splitn(6, '\t').collect();
                if f.len() != 6 {
                    continue;
                }
                let (Ok(size), Ok(mtime_ns), Ok(ctime_ns), Ok(ino)) = (f[0].parse(), f[1].parse(), f[2].parse(), f[3].parse()) else {
                    continue;
                };
                entries.insert(PathBuf::from(f[5]), (Stamp { size, mtime_ns, ctime_ns, ino }, f[4].to_string()));
            }
        }
        StatCache { path: Some(path), entries: Mutex::new(entries), ..StatCache::default() }
    }

    fn lookup(&self, path: &Path, stamp: Stamp) -> Option<String> {
        let entries = self.entries.lock().unwrap();
        match entries.get(path) {
            Some((s, h)) if *s == stamp => Some(h.clone()),
            _ => None,
        }
    }

    fn remember(&self, path: PathBuf, stamp: Stamp, hash: String) {
        self.entries.lock().unwrap().insert(path, (stamp, hash));
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Write the cache back atomically if anything was added.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let entries = self.entries.lock().unwrap();
        let mut out = String::new();
        for (p, (s, h)) in entries.iter() {
            let Some(p) = p.to_str() else { continue };
            if p.contains('\n') {
                continue;
            }
            out.push_str(&format!("{}\t{}\t{}\t{}\t{}\t{}\n", s.size, s.mtime_ns, s.ctime_ns, s.ino, h, p));
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
        tmp.write_all(out.as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Below this many bytes a directory's files are hashed on the calling
/// thread.
const PARALLEL_FROM_BYTES: u64 = 4 << 20;

/// The cores this process may use, asked once: `available_parallelism`
/// reads cgroup files on every call, and `apply` hashes an output per stage.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// Hashes files and directories, with a stat cache and a progress reporter.
pub struct ContentHasher<'a> {
    pub cache: &'a StatCache,
    pub reporter: &'a dyn Reporter,
    pub threads: usize,
}

impl<'a> ContentHasher<'a> {
    pub fn new(cache: &'a StatCache, reporter: &'a dyn Reporter) -> Self {
        ContentHasher { cache, reporter, threads: cores() }
    }

    /// sha256 (hex) of a file's bytes, through the stat cache.
    pub fn file(&self, path: &Path) -> Result<String, HashError> {
        let md = fs::metadata(path).map_err(io_err(path))?;
        special(path, md.file_type())?;
        if self.cache.off {
            return sha256_reader(path, md.len(), self.reporter);
        }
        let abs = fs::canonicalize(path).map_err(io_err(path))?;
        let stamp = Stamp::of(&md);
        if let Some(h) = self.cache.lookup(&abs, stamp) {
            self.reporter.hashed_bytes(md.len());
            return Ok(h);
        }
        let h = sha256_reader(path, md.len(), self.reporter)?;
        self.cache.remember(abs, stamp, h.clone());
        Ok(h)
    }

    /// Canonical directory hash (see the module docs).
    pub fn dir(&self, root: &Path) -> Result<String, HashError> {
        enum Kind {
            Dir,
            File { exec: bool, size: u64 },
            Link(Vec<u8>),
        }
        use std::os::unix::ffi::OsStrExt;
        // Paths and link targets as raw bytes: through a lossy UTF-8
        // conversion two different non-UTF-8 names would hash the same.
        let mut entries: Vec<(Vec<u8>, PathBuf, Kind)> = Vec::new();
        for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
            let e = e.map_err(|source| HashError::Walk { path: root.to_path_buf(), source })?;
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            let rel = rel.components().map(|c| c.as_os_str().as_bytes()).collect::<Vec<_>>().join(&b'/');
            let ft = e.file_type();
            special(e.path(), ft)?;
            let kind = if ft.is_symlink() {
                let t = fs::read_link(e.path()).map_err(io_err(e.path()))?;
                Kind::Link(t.into_os_string().into_vec())
            } else if ft.is_dir() {
                Kind::Dir
            } else {
                let md = e.metadata().map_err(|source| HashError::Walk { path: e.path().to_path_buf(), source })?;
                Kind::File { exec: md.permissions().mode() & 0o111 != 0, size: md.len() }
            };
            entries.push((rel, e.path().to_path_buf(), kind));
        }
        // Byte order of the relative path, independent of the walk order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));

        let total: u64 = entries.iter().map(|e| if let Kind::File { size, .. } = e.2 { size } else { 0 }).sum();
        self.reporter.hash_started(root, total);
        let files: Vec<usize> = (0..entries.len()).filter(|&i| matches!(entries[i].2, Kind::File { .. })).collect();
        // A stage's output of a few small files (every apply hashes one)
        // is read faster than threads start.
        let threads = if total < PARALLEL_FROM_BYTES { 1 } else { self.threads };
        let hashes = self.parallel_files(threads, &files.iter().map(|&i| entries[i].1.as_path()).collect::<Vec<_>>())?;
        let mut by_index: HashMap<usize, String> = files.into_iter().zip(hashes).collect();

        let mut h = Sha256::new();
        h.update(b"ptb-dir-v1\0");
        for (i, (rel, _, kind)) in entries.iter().enumerate() {
            match kind {
                Kind::Dir => {
                    h.update(b"d");
                    put(&mut h, rel);
                }
                Kind::File { exec, size } => {
                    h.update(if *exec { b"x" } else { b"f" });
                    put(&mut h, rel);
                    h.update(size.to_le_bytes());
                    let fh = by_index.remove(&i).unwrap_or_default();
                    h.update(decode_hex(&fh));
                }
                Kind::Link(target) => {
                    h.update(b"l");
                    put(&mut h, rel);
                    put(&mut h, target);
                }
            }
        }
        self.reporter.hash_finished(root);
        Ok(hex(&h.finalize()))
    }

    fn parallel_files(&self, threads: usize, paths: &[&Path]) -> Result<Vec<String>, HashError> {
        crate::pool::map_ordered(paths, threads, |p| self.file(p)).into_iter().collect()
    }

    /// A file's or a directory's hash, whichever `path` is.
    pub fn path(&self, path: &Path) -> Result<String, HashError> {
        let md = fs::metadata(path).map_err(io_err(path))?;
        special(path, md.file_type())?;
        if md.is_dir() { self.dir(path) } else { self.file(path) }
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

fn sha256_reader(path: &Path, size: u64, reporter: &dyn Reporter) -> Result<String, HashError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    // A small file gets a small buffer (one read to the end of it).
    let mut buf = vec![0u8; (size as usize).saturating_add(1).clamp(4096, 1 << 20)];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        reporter.hashed_bytes(n as u64);
    }
    Ok(hex(&h.finalize()))
}

/// Uncached conveniences.
pub fn hash_file(path: &Path) -> Result<String, HashError> {
    ContentHasher::new(&StatCache::off(), &crate::progress::Silent).file(path)
}
pub fn hash_dir(path: &Path) -> Result<String, HashError> {
    ContentHasher::new(&StatCache::off(), &crate::progress::Silent).dir(path)
}
pub fn hash_path(path: &Path) -> Result<String, HashError> {
    ContentHasher::new(&StatCache::off(), &crate::progress::Silent).path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        fs::write(d.path().join("a/b/w.bin"), b"weights").unwrap();
        fs::write(d.path().join("config.json"), b"{}").unwrap();
        d
    }

    #[test]
    fn dir_hash_changes_with_content_name_and_exec_bit() {
        let d = tree();
        let h0 = hash_dir(d.path()).unwrap();
        assert_eq!(h0, hash_dir(d.path()).unwrap());
        fs::write(d.path().join("a/b/w.bin"), b"weightz").unwrap();
        let h1 = hash_dir(d.path()).unwrap();
        assert_ne!(h0, h1);
        fs::set_permissions(d.path().join("config.json"), fs::Permissions::from_mode(0o755)).unwrap();
        let h2 = hash_dir(d.path()).unwrap();
        assert_ne!(h1, h2);
        fs::rename(d.path().join("config.json"), d.path().join("config2.json")).unwrap();
        assert_ne!(h2, hash_dir(d.path()).unwrap());
    }

    #[test]
    fn non_utf8_names_hash_apart_and_special_files_are_refused() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Both names decode lossily to "w\u{FFFD}".
        fs::write(a.path().join(OsStr::from_bytes(b"w\xff")), b"x").unwrap();
        fs::write(b.path().join(OsStr::from_bytes(b"w\xfe")), b"x").unwrap();
        assert_ne!(hash_dir(a.path()).unwrap(), hash_dir(b.path()).unwrap());
        let fifo = std::ffi::CString::new(a.path().join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // Opening the FIFO would block forever; it must be refused instead.
        let e = hash_dir(a.path()).unwrap_err().to_string();
        assert!(e.contains("pipe is a FIFO"), "{e}");
        assert!(hash_path(&a.path().join("pipe")).is_err());
    }

    #[test]
    fn stat_cache_serves_unchanged_files_and_notices_changes() {
        let d = tree();
        let cache_path = d.path().join("../stat-cache-test.tsv");
        let cache = StatCache::load(&cache_path);
        let hasher = ContentHasher::new(&cache, &crate::progress::Silent);
        let f = d.path().join("a/b/w.bin");
        let h = hasher.file(&f).unwrap();
        cache.save().unwrap();
        let reloaded = StatCache::load(&cache_path);
        let abs = fs::canonicalize(&f).unwrap();
        assert_eq!(reloaded.lookup(&abs, Stamp::of(&fs::metadata(&f).unwrap())), Some(h.clone()));
        fs::write(&f, b"other bytes").unwrap();
        let hasher = ContentHasher::new(&reloaded, &crate::progress::Silent);
        assert_ne!(hasher.file(&f).unwrap(), h);
        let _ = fs::remove_file(cache_path);
    }
}
