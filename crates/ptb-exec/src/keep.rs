//! What an agent stage's store entry keeps of its scratch directory: the
//! agent's `/work` is copied to the entry's `workspace/` so the judge (and a
//! person) can read the code and data it used, and a manifest,
//! `workspace.json`, says what was left out and why.
//!
//! The agent is an adversary and wrote every byte here, names and modes
//! included, so the copy:
//! - never follows a symbolic link: a link is recreated as a link (its
//!   target is only text; nothing in ptb follows links in the store) and
//!   listed;
//! - copies regular files only, opened with `O_NOFOLLOW | O_NONBLOCK` and
//!   checked with `fstat` on the open descriptor, so a file swapped for a
//!   FIFO, a device or a link after the listing is skipped, not read; FIFOs,
//!   sockets and devices are skipped and listed;
//! - writes new files (never hard links), with the permission bits masked
//!   to `0o755`: setuid, setgid, sticky and group/world write are dropped
//!   (and listed when they were set);
//! - leaves out weight files over the threshold (by extension, or content
//!   that is safetensors or GGUF, as the Hugging Face cache stores blobs
//!   without one), listing each with its size and sha256.
//!
//! It runs after the stage's processes are gone (the local executor kills
//! the process group; the container is removed), so nothing changes the
//! tree while it is read. A file that cannot be read is listed, not fatal.

use serde::Serialize;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Extensions of model weights and optimizer states.
const WEIGHT_EXT: &[&str] = &["safetensors", "bin", "pt", "pth", "ckpt", "gguf", "ggml", "h5", "msgpack", "onnx", "distcp"];

/// The manifest file name beside `workspace/` in the store entry.
pub const MANIFEST: &str = "workspace.json";
/// The copy's directory name in the store entry.
pub const WORKSPACE: &str = "workspace";

#[derive(Debug, Clone, Copy)]
pub struct KeepOptions {
    /// Weight files larger than this many bytes are listed, not copied.
    pub weights_over: u64,
}

/// A weight file that was not copied.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Omitted {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Link {
    pub path: String,
    pub target: String,
}

/// Something that was neither copied nor listed as a weight, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skipped {
    pub path: String,
    pub why: String,
}

/// `workspace.json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Manifest {
    /// Files copied and their total size.
    pub files: usize,
    pub bytes: u64,
    pub weights_over: u64,
    /// Weight files over the threshold, not copied.
    pub omitted: Vec<Omitted>,
    /// Symbolic links, recreated as links and never followed.
    pub symlinks: Vec<Link>,
    /// FIFOs, sockets, devices, and anything unreadable.
    pub skipped: Vec<Skipped>,
    /// Files and directories whose setuid, setgid or sticky bit was dropped.
    pub stripped: Vec<String>,
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}

fn is_weight_name(rel: &str) -> bool {
    Path::new(rel).extension().is_some_and(|e| WEIGHT_EXT.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

/// safetensors (an 8-byte header length, then a JSON object) or GGUF, from
/// the first bytes: the Hugging Face cache keeps weights as extensionless blobs.
fn looks_like_weights(head: &[u8], size: u64) -> bool {
    if head.starts_with(b"GGUF") {
        return true;
    }
    if head.len() >= 9 {
        let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        return n > 1 && n < size && head[8] == b'{';
    }
    false
}

/// Copy `work` into `dest` (which must not exist) and write the manifest to
/// `manifest`. Errors are those of writing the copy (a full disk); what the
/// agent left that cannot be read is listed in the manifest instead.
pub fn keep_workspace(work: &Path, dest: &Path, manifest: &Path, opts: KeepOptions) -> io::Result<Manifest> {
    let mut m = Manifest { weights_over: opts.weights_over, ..Default::default() };
    fs::DirBuilder::new().mode(0o755).create(dest)?;
    if fs::symlink_metadata(work).is_ok_and(|md| md.is_dir()) {
        copy_dir(work, dest, opts, &mut m)?;
    }
    // The stack walk visits directories out of order: sort for a stable manifest.
    m.omitted.sort_by(|a, b| a.path.cmp(&b.path));
    m.symlinks.sort_by(|a, b| a.path.cmp(&b.path));
    m.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    m.stripped.sort();
    let text = serde_json::to_string_pretty(&m).map_err(io::Error::other)? + "\n";
    fs::write(manifest, text)?;
    Ok(m)
}

/// Walks with an explicit stack, not recursion: the agent chooses the
/// depth, and a deep enough tree would overflow a worker thread's stack.
fn copy_dir(root: &Path, dest_root: &Path, opts: KeepOptions, m: &mut Manifest) -> io::Result<()> {
    let mut stack = vec![(root.to_path_buf(), dest_root.to_path_buf())];
    while let Some((dir, dest)) = stack.pop() {
        let mut entries: Vec<fs::DirEntry> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => {
                m.skipped.push(Skipped { path: rel_of(root, &dir), why: format!("directory not readable: {e}") });
                continue;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = rel_of(root, &path);
            let to = dest.join(e.file_name());
            // lstat: the entry itself, never what a link points to.
            let md = match fs::symlink_metadata(&path) {
                Ok(md) => md,
                Err(err) => {
                    m.skipped.push(Skipped { path: rel, why: err.to_string() });
                    continue;
                }
            };
            let ft = md.file_type();
            if md.mode() & 0o7000 != 0 && !ft.is_symlink() {
                m.stripped.push(rel.clone());
            }
            if ft.is_symlink() {
                let target = fs::read_link(&path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                std::os::unix::fs::symlink(&target, &to)?;
                m.symlinks.push(Link { path: rel, target });
            } else if ft.is_dir() {
                fs::DirBuilder::new().mode(0o755).create(&to)?;
                stack.push((path, to));
            } else if ft.is_file() {
                copy_file(&path, &rel, &to, opts, m)?;
            } else {
                let what = ptb_core::store::output::special_kind(&ft).map_or("not a regular file".to_string(), |k| format!("a {k}"));
                m.skipped.push(Skipped { path: rel, why: format!("{what}; not copied") });
            }
        }
    }
    Ok(())
}

fn copy_file(path: &Path, rel: &str, to: &Path, opts: KeepOptions, m: &mut Manifest) -> io::Result<()> {
    // O_NONBLOCK: a FIFO swapped in after the listing cannot block the open.
    let mut src = match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) => {
            m.skipped.push(Skipped { path: rel.to_string(), why: format!("not readable: {e}") });
            return Ok(());
        }
    };
    let md = src.metadata()?;
    if !md.is_file() {
        m.skipped.push(Skipped { path: rel.to_string(), why: "changed into something that is not a regular file; not copied".into() });
        return Ok(());
    }
    let size = md.len();
    if size > opts.weights_over {
        let mut head = [0u8; 9];
        let n = read_head(&mut src, &mut head)?;
        if is_weight_name(rel) || looks_like_weights(&head[..n], size) {
            let rest = ptb_core::hash::sha256_read(io::Cursor::new(&head[..n]).chain(&mut src));
            match rest {
                Ok(sha256) => m.omitted.push(Omitted { path: rel.to_string(), size, sha256 }),
                Err(e) => m.skipped.push(Skipped { path: rel.to_string(), why: format!("weights not readable: {e}") }),
            }
            return Ok(());
        }
        copy_bytes(io::Cursor::new(head[..n].to_vec()).chain(src), to, md.mode(), rel, m)
    } else {
        copy_bytes(src, to, md.mode(), rel, m)
    }
}

fn read_head(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn copy_bytes(mut src: impl Read, to: &Path, mode: u32, rel: &str, m: &mut Manifest) -> io::Result<()> {
    // create_new: never write through something already at the destination.
    let mut dst = fs::OpenOptions::new().write(true).create_new(true).mode((mode & 0o755) | 0o600).open(to)?;
    match io::copy(&mut src, &mut dst) {
        Ok(n) => {
            m.files += 1;
            m.bytes += n;
            Ok(())
        }
        // A read error is the agent's file; a write error is ours (disk full).
        Err(e) if e.raw_os_error() != Some(libc::ENOSPC) && e.raw_os_error() != Some(libc::EDQUOT) => {
            drop(dst);
            let _ = fs::remove_file(to);
            m.skipped.push(Skipped { path: rel.to_string(), why: format!("not readable: {e}") });
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Where an agent stage's entry keeps its workspace and manifest.
pub fn paths(entry: &Path) -> (PathBuf, PathBuf) {
    (entry.join(WORKSPACE), entry.join(MANIFEST))
}
