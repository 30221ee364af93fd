//! Progress events. Libraries report through [`Reporter`]; only the binary
//! draws bars (with indicatif), and tests install a recording reporter.

use std::path::Path;
use std::time::Duration;

/// Everything long-running work tells the outside world. Every method has a
/// no-op default so a reporter implements only what it shows.
pub trait Reporter: Send + Sync {
    fn hash_started(&self, _path: &Path, _total_bytes: u64) {}
    fn hashed_bytes(&self, _bytes: u64) {}
    fn hash_finished(&self, _path: &Path) {}
    /// A model is being downloaded from the hub: `total_bytes` for all its
    /// files (what is already on disk from an interrupted download counts
    /// as received at once).
    fn download_started(&self, _what: &str, _total_bytes: u64) {}
    fn downloaded_bytes(&self, _bytes: u64) {}
    fn download_finished(&self, _what: &str) {}
    /// `apply` is about to run `total` stages.
    fn apply_started(&self, _total: usize) {}
    fn stage_started(&self, _cell: &str, _stage: &str) {}
    /// One line of a running stage's output (already redacted).
    fn stage_log(&self, _cell: &str, _stage: &str, _line: &str) {}
    fn stage_finished(&self, _cell: &str, _stage: &str, _end: crate::status::StageEnd, _wall: Duration) {}
    /// A stage that will not run because an upstream stage failed.
    fn stage_skipped(&self, _cell: &str, _stage: &str, _why: &str) {}
    /// Free-form notices (e.g. "waiting for another ptb holding stage X").
    fn note(&self, _message: &str) {}
    /// Generation (the inference engine; called once per decode step, so
    /// implementations must be cheap): a group of requests was admitted
    /// (prefilled) together.
    fn batch_started(&self, _requests: usize, _prompt_tokens: usize) {}
    fn tokens_generated(&self, _n: usize) {}
    fn request_finished(&self, _index: usize) {}
}

/// Reports nothing.
pub struct Silent;
impl Reporter for Silent {}
