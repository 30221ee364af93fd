//! One model, from the hub into the store: every listed file downloaded
//! (resumably) into a build directory `v1/.tmp/hub-<repo>-<commit>/`, each
//! checked against the size and (LFS files) sha256 the hub lists, the whole
//! hashed with ptb's directory hash, checked against the pin if there is
//! one, and renamed to `v1/models/<hash>`. A failure at any step leaves
//! nothing in `v1/models/`; a cut-off download leaves its partial files for
//! the next run to resume.

use crate::client::{Client, RevisionInfo};
use crate::{HubError, io};
use ptb_core::hash::{ContentHasher, StatCache};
use ptb_core::progress::Reporter;
use ptb_core::store::Store;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The content a fetch must produce, and who says so (for the error).
#[derive(Debug, Clone)]
pub struct Expect {
    /// Hex sha256 (ptb's directory hash).
    pub sha256: String,
    /// `the lockfile lockfiles/x.lock`, `` `sha256=` at experiments/x.kdl:3:1 ``.
    pub pinned_by: String,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub commit: String,
    /// `sha256:<hex>`, as pins and keys write it.
    pub sha256: String,
    pub path: PathBuf,
}

/// For messages: which model, as the spec names it.
#[derive(Debug, Clone)]
pub struct Named<'a> {
    pub what: &'a str,
    pub origin: &'a str,
}

/// Fetch `repo` at the commit `info` lists into the store.
pub fn fetch(
    client: &Client,
    store: &Store,
    repo: &str,
    info: &RevisionInfo,
    name: Named,
    expect: Option<&Expect>,
    reporter: &dyn Reporter,
) -> Result<Fetched, HubError> {
    let commit = info.sha.as_str();
    // Names first: a hostile listing is refused before anything is written.
    let mut seen = HashSet::new();
    let mut files = Vec::with_capacity(info.siblings.len());
    for s in &info.siblings {
        let rel = crate::paths::safe_relative(&s.rfilename).ok_or_else(|| HubError::UnsafePath {
            repo: repo.into(),
            commit: commit.into(),
            name: s.rfilename.clone(),
        })?;
        if !seen.insert(rel.clone()) {
            return Err(HubError::BadListing { repo: repo.into(), revision: commit.into(), message: format!("`{}` is listed twice", s.rfilename) });
        }
        files.push((s, rel));
    }
    let slug: String = repo.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '-' }).collect();
    let build = store.building_dir(&format!("hub-{slug}-{commit}"));
    // One ptb fetches a given commit at a time; another waits, then finds
    // the model in the store.
    let lock_path = store.root().join(".locks").join(format!("hub-{slug}-{commit}.lock"));
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io("cannot create", &lock_path))?;
    lock.lock().map_err(io("cannot lock", &lock_path))?;
    // Another ptb may have fetched it while this one waited.
    if let Some(e) = expect {
        let dir = store.model_dir(&e.sha256);
        if dir.is_dir() {
            return Ok(Fetched { commit: commit.into(), sha256: format!("sha256:{}", e.sha256), path: dir });
        }
    }
    let (parts, done) = (build.join("parts"), build.join("files"));
    for d in [&parts, &done] {
        std::fs::create_dir_all(d).map_err(io("cannot create", d))?;
    }
    // Saturating: the sizes are the listing's word, and it may lie.
    let total: u64 = files.iter().filter_map(|(s, _)| s.expected_size()).fold(0, u64::saturating_add);
    reporter.download_started(&format!("{} {}", name.what, name.origin), total);
    let result = (|| -> Result<(), HubError> {
        for (s, rel) in &files {
            let dest = done.join(rel);
            if dest.is_file() {
                // Verified and moved in by an earlier, interrupted run.
                reporter.downloaded_bytes(s.expected_size().unwrap_or(0));
                continue;
            }
            let part = parts.join(&ptb_core::hash::sha256_hex(s.rfilename.as_bytes())[..32]);
            if let Ok(m) = std::fs::metadata(&part) {
                reporter.downloaded_bytes(m.len());
            }
            client.download(repo, commit, s, &part, reporter)?;
            if let Err(e) = check_file(repo, commit, s, &part) {
                // Wrong bytes are not worth resuming from.
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
            }
            std::fs::rename(&part, &dest).map_err(io("cannot move", &dest))?;
        }
        Ok(())
    })();
    reporter.download_finished(name.what);
    result?;
    let actual = ContentHasher::new(&StatCache::in_memory(), reporter).dir(&done)?;
    if let Some(e) = expect
        && e.sha256 != actual
    {
        // The files are what the hub serves for this commit, verified one
        // by one, but not what was pinned: keep nothing of them.
        let _ = remove_all(&build);
        return Err(HubError::ContentMismatch {
            what: name.what.into(),
            origin: name.origin.into(),
            commit: commit.into(),
            expected: e.sha256.clone(),
            actual,
            pinned_by: e.pinned_by.clone(),
        });
    }
    let path = store.commit_model(&done, &actual)?;
    let _ = remove_all(&build);
    Ok(Fetched { commit: commit.into(), sha256: format!("sha256:{actual}"), path })
}

/// The listed size and, for LFS files, the listed sha256.
fn check_file(repo: &str, commit: &str, s: &crate::client::Sibling, part: &Path) -> Result<(), HubError> {
    let len = std::fs::metadata(part).map_err(io("cannot read", part))?.len();
    if let Some(expected) = s.expected_size()
        && expected != len
    {
        return Err(HubError::FileSizeMismatch { repo: repo.into(), commit: commit.into(), file: s.rfilename.clone(), expected, actual: len });
    }
    if let Some(lfs) = &s.lfs {
        let actual = sha256_file(part)?;
        if !lfs.sha256.eq_ignore_ascii_case(&actual) {
            return Err(HubError::FileHashMismatch {
                repo: repo.into(),
                commit: commit.into(),
                file: s.rfilename.clone(),
                expected: lfs.sha256.clone(),
                actual,
            });
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, HubError> {
    let mut f = std::fs::File::open(path).map_err(io("cannot read", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn remove_all(p: &Path) -> std::io::Result<()> {
    if p.exists() { std::fs::remove_dir_all(p) } else { Ok(()) }
}
