//! Listing the agent's output without ever leaving it: symlinks are
//! reported, never followed, so a link to the instruct model or to the
//! benchmark data cannot make the judge (or a later reader) see files the
//! agent did not write.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the agent directory, `/`-separated (what findings show).
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub files: Vec<Entry>,
    /// (relative path, link target as written).
    pub symlinks: Vec<(String, String)>,
    /// (relative path, why it could not be listed).
    pub unreadable: Vec<(String, String)>,
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Every regular file under `root`, sorted by path. Directories are entered
/// only when they are real directories (`symlink_metadata`), so the walk
/// cannot loop or escape.
pub fn list(root: &Path) -> Listing {
    let mut out = Listing::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                out.unreadable.push((rel_of(root, &dir), e.to_string()));
                continue;
            }
        };
        for entry in rd {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.unreadable.push((rel_of(root, &dir), e.to_string()));
                    continue;
                }
            };
            let path = entry.path();
            let rel = rel_of(root, &path);
            // DirEntry::file_type does not follow links.
            match entry.file_type() {
                Ok(t) if t.is_symlink() => {
                    let target = std::fs::read_link(&path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                    out.symlinks.push((rel, target));
                }
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.files.push(Entry { rel, path, size });
                }
                // Sockets, FIFOs, devices: nothing to read, and reading a FIFO would block.
                Ok(_) => out.unreadable.push((rel, "not a regular file".into())),
                Err(e) => out.unreadable.push((rel, e.to_string())),
            }
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.symlinks.sort();
    out.unreadable.sort();
    out
}
