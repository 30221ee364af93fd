//! Models from the Hugging Face hub as locked inputs (Nix/cargo style).
//!
//! A model declared with `repo=` + `revision=` is resolved to a commit
//! through the hub's API, its files are downloaded (resumably, following
//! redirects) into a build directory in the store, LFS files are checked
//! against the sha256 the hub lists, and the whole directory is renamed into
//! `store/v1/models/<hash>`, named by ptb's directory hash: the value stage
//! keys hash as `model.base`, the same whether the files came from the hub
//! or from a local `path=`. The lockfile records repo, revision, commit and
//! hash ([`ptb_core::lock::HubPin`]); planning reads only that and the store
//! (`ptb_core::resolve::resolve_hub`), so `ptb plan` needs no network.
//!
//! - [`client`]: the two HTTP calls (revision listing, file download).
//! - [`paths`]: which file names a listing may hold (a hostile mirror's
//!   `../x` never becomes a path).
//! - [`fetch`]: one model into the store, verified.
//! - [`sync`]: what `ptb apply` and `ptb update` do with every hub model of
//!   a spec and the lockfile.
//!
//! Why not the `hf-hub` crate: it writes the hub's own cache layout
//! (`blobs/` plus `snapshots/<rev>/` made of symlinks), which ptb's store
//! would hash as links rather than content and which a stage must never
//! follow; it checks no content against the sha256 the hub lists; and its
//! resumable path is in the tokio API. ureq (blocking, rustls, already ptb's
//! LLM-judge client) follows redirects and lets us send `Range`, so the
//! client here is two requests and a retry loop.

// `HubError` names repo, commit, file and both hashes so a person can act
// on it; it is returned a few times per model (each call moves megabytes to
// gigabytes) and ends the command, so its size costs nothing measurable.
#![allow(clippy::result_large_err)]

pub mod client;
pub mod fetch;
pub mod paths;
pub mod sync;

pub use client::{Client, HubConfig, RevisionInfo, Sibling};
pub use fetch::{Expect, Fetched, Named, fetch};
pub use sync::{Change, Mode, SyncReport, sync};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HubError {
    #[error("{repo}@{revision}: the hub at {endpoint} has no such revision (HTTP 404)")]
    #[diagnostic(help("check `revision=` (a branch, a tag or a commit of the repo) and `repo=` in the spec; for a mirror, set HF_ENDPOINT"))]
    RevisionNotFound { repo: String, revision: String, endpoint: String },
    #[error("{repo}@{revision}: the hub at {endpoint} refused access (HTTP {status})")]
    #[diagnostic(help("the repo may not exist, or be gated (Gemma) or private: accept its license on the hub and set HF_TOKEN to a token that can read it"))]
    Denied { repo: String, revision: String, endpoint: String, status: u16 },
    #[error("{url}: HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("{url}: {message}")]
    #[diagnostic(help("check the network and HF_ENDPOINT; an interrupted download resumes where it stopped on the next run"))]
    Transport { url: String, message: String },
    #[error("{repo}@{revision}: the hub's answer is not a revision listing: {message}")]
    BadListing { repo: String, revision: String, message: String },
    #[error("{repo}@{commit}: the hub lists a file named `{name}`, which is not a plain relative path; refused")]
    #[diagnostic(help("a hub or mirror that names files outside the model's directory is not to be trusted: check HF_ENDPOINT"))]
    UnsafePath { repo: String, commit: String, name: String },
    #[error("{file} of {repo}@{commit}: the downloaded bytes have sha256 {actual}, but the hub lists {expected}; nothing was stored")]
    #[diagnostic(help("run `ptb apply` again to download it afresh; if it persists, the hub or mirror (HF_ENDPOINT) serves corrupted files"))]
    FileHashMismatch { repo: String, commit: String, file: String, expected: String, actual: String },
    #[error("{file} of {repo}@{commit}: received {actual} bytes, but the hub lists {expected}; nothing was stored")]
    FileSizeMismatch { repo: String, commit: String, file: String, expected: u64, actual: u64 },
    #[error("{what} ({origin} → {commit}): the fetched files hash to sha256:{actual}, but {pinned_by} pins sha256:{expected}; nothing was stored")]
    #[diagnostic(help(
        "the files at that commit are not what was pinned: if the spec's `sha256=` is stale, fix it; if the lockfile is, `ptb update` re-pins (`--locked` never does)"
    ))]
    ContentMismatch { what: String, origin: String, commit: String, expected: String, actual: String, pinned_by: String },
    #[error("--locked: {} hub model(s) are not pinned in the lockfile {}:\n{}", refs.len(), lockfile.display(), refs.join("\n"))]
    #[diagnostic(help("run `ptb update` (or `ptb apply` without --locked) to resolve and pin them, and commit the lockfile"))]
    NotLocked { lockfile: PathBuf, refs: Vec<String> },
    #[error("no hub model named `{name}` in the spec (hub models: {known})")]
    NoSuchModel { name: String, known: String },
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] ptb_core::store::StoreError),
    #[error(transparent)]
    Hash(#[from] ptb_core::hash::HashError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] ptb_core::lock::LockError),
}

fn io<'a>(context: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> HubError + 'a {
    move |source| HubError::Io { context, path: path.to_path_buf(), source }
}

/// A 40-hex lowercase commit id, as the hub writes them.
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
