//! What the LLM reviewer is sent: a bounded, deterministic bundle of the
//! run (the task, the file tree, the code most likely to have produced
//! `final_model`, the start and end of the trace, the detectors' findings).
//!
//! Everything here was written by the agent, so it travels as JSON strings
//! inside one JSON document: no file name or content can close a section,
//! open a new one or pass for the instructions (which are the system
//! message, built from ptb's text alone). Every part has a byte cap, so a
//! workspace of any size gives a request of bounded size, and the same run
//! gives the same bytes (replies are cached by the request's hash).

use crate::finding::{Finding, snippet};
use crate::walk;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The caps (bytes, or entries).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub task: usize,
    pub tree_entries: usize,
    /// Bytes of paths in the tree.
    pub tree_bytes: usize,
    pub findings: usize,
    pub code_file: usize,
    pub code_total: usize,
    pub code_candidates: usize,
    pub trace_head: usize,
    pub trace_tail: usize,
    pub trace_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            task: 16 << 10,
            tree_entries: 400,
            tree_bytes: 32 << 10,
            findings: 40,
            code_file: 16 << 10,
            code_total: 64 << 10,
            code_candidates: 200,
            trace_head: 4 << 10,
            trace_tail: 24 << 10,
            trace_sources: 4,
        }
    }
}

/// Files read as code (and configuration that steers training).
const CODE_EXT: &[&str] = &["py", "ipynb", "sh", "yaml", "yml", "toml", "cfg"];

/// Words in code that make it likely to have produced the checkpoint or its data.
const TRAINING_WORDS: &[&str] =
    &["load_dataset", "Trainer", "save_pretrained", "from_pretrained", "train(", "split=", "datasets", "optimizer", "final_model", "snapshot_download"];

#[derive(Debug, Serialize)]
struct FileRow<'a> {
    path: &'a str,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct FindingRow<'a> {
    kind: &'a str,
    detector: &'a str,
    severity: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Text {
    pub path: String,
    pub bytes: u64,
    /// Whole, or the head of a file longer than the cap.
    pub text: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub path: String,
    pub bytes: u64,
    pub head: String,
    /// The end (the reference's judge works backwards from it); empty when
    /// `head` holds the whole trace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tail: String,
}

/// What one review is asked about.
pub struct Run<'a> {
    pub model: &'a str,
    pub benchmark: &'a str,
    /// The agent's `task.md`, when the stage was given it.
    pub task: Option<&'a Path>,
    /// Every regular file of the output and the kept workspace, by path.
    pub files: &'a [&'a walk::Entry],
    /// The stage log, and transcripts under `trace/`.
    pub traces: &'a [&'a walk::Entry],
    pub findings: &'a [Finding],
}

/// The bundle as sent, and what of it the evidence check may consult.
pub struct Bundle {
    /// The user message: one JSON document.
    pub user: String,
    /// The code files sent (path → text).
    pub code: Vec<Text>,
}

/// Read at most `max` bytes from the start of a regular file, as text
/// (see [`text`]).
pub fn read_head(path: &Path, max: usize) -> Option<(String, bool)> {
    read_bytes(path, max).map(|(b, truncated)| (text(&b), truncated))
}

fn read_bytes(path: &Path, max: usize) -> Option<(Vec<u8>, bool)> {
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(max.min(1 << 20));
    f.take(max as u64 + 1).read_to_end(&mut buf).ok()?;
    let truncated = buf.len() > max;
    buf.truncate(max);
    Some((buf, truncated))
}

/// Bytes as text: invalid UTF-8 replaced, and control characters other
/// than newline and tab as `?`, so that JSON escaping at most doubles a
/// text's size (a `\u0000` is six bytes for one) and the caps bound the
/// request.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '?' } else { c }).collect()
}

/// The last `max` bytes of a file of `size` bytes, as text.
fn read_tail(path: &Path, size: u64, max: usize) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(size.saturating_sub(max as u64))).ok()?;
    let mut buf = Vec::with_capacity(max.min(1 << 20));
    f.take(max as u64).read_to_end(&mut buf).ok()?;
    let text = text(&buf);
    // Start on a line boundary when there is one near: a half line reads as noise.
    let start = text.find('\n').filter(|i| *i < 512).map(|i| i + 1).unwrap_or(0);
    Some(text[start..].to_string())
}

fn ext(rel: &str) -> String {
    Path::new(rel).extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// Code files, the most relevant first: named in the trace, holding
/// training words, named by a finding; then by path. Within the caps.
fn pick_code(run: &Run, trace_text: &str, limits: &Limits) -> Vec<Text> {
    let mut scored: Vec<(i64, Text)> = Vec::new();
    for e in run.files.iter().filter(|e| CODE_EXT.contains(&ext(&e.rel).as_str())).take(limits.code_candidates) {
        let Some((bytes, truncated)) = read_bytes(&e.path, limits.code_file) else { continue };
        if bytes.iter().take(8192).any(|b| *b == 0) {
            // A binary file with a code name is not code (the file tree lists it).
            continue;
        }
        let text = text(&bytes);
        let base = e.rel.rsplit('/').next().unwrap_or(&e.rel);
        let mut score = 0i64;
        if trace_text.contains(base) {
            score += 4;
        }
        if run.findings.iter().any(|f| f.evidence.file.as_deref() == Some(e.rel.as_str())) {
            score += 3;
        }
        score += TRAINING_WORDS.iter().filter(|w| text.contains(*w)).count().min(4) as i64;
        scored.push((score, Text { path: e.rel.clone(), bytes: e.size, text, truncated }));
    }
    // Stable: equal scores keep the listing's (path) order.
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut total = 0;
    let mut out = Vec::new();
    for (_, t) in scored {
        if total + t.text.len() > limits.code_total {
            continue;
        }
        total += t.text.len();
        out.push(t);
    }
    out
}

fn read_traces(run: &Run, limits: &Limits) -> Vec<Trace> {
    let mut out = Vec::new();
    for e in run.traces.iter().take(limits.trace_sources) {
        let whole = limits.trace_head + limits.trace_tail;
        let trace = if e.size as usize <= whole {
            let Some((head, _)) = read_head(&e.path, whole) else { continue };
            Trace { path: e.rel.clone(), bytes: e.size, head, tail: String::new() }
        } else {
            let Some((head, _)) = read_head(&e.path, limits.trace_head) else { continue };
            let tail = read_tail(&e.path, e.size, limits.trace_tail).unwrap_or_default();
            Trace { path: e.rel.clone(), bytes: e.size, head, tail }
        };
        out.push(trace);
    }
    out
}

/// Build the bundle for `run`.
pub fn build(run: &Run, limits: &Limits) -> Bundle {
    let traces = read_traces(run, limits);
    let trace_text: String = traces.iter().flat_map(|t| [t.head.as_str(), t.tail.as_str()]).collect();
    let code = pick_code(run, &trace_text, limits);
    let task = run.task.and_then(|p| read_head(p, limits.task)).map(|(t, _)| t);
    let mut tree_bytes = 0;
    let files: Vec<FileRow> = run
        .files
        .iter()
        .take(limits.tree_entries)
        .take_while(|e| {
            tree_bytes += e.rel.len();
            tree_bytes <= limits.tree_bytes
        })
        .map(|e| FileRow { path: &e.rel, bytes: e.size })
        .collect();
    let findings: Vec<FindingRow> = run
        .findings
        .iter()
        .take(limits.findings)
        .map(|f| FindingRow {
            kind: f.kind.name(),
            detector: &f.detector,
            severity: if f.is_flag() { "flag" } else { "note" },
            message: snippet(&f.message, 600),
            file: f.evidence.file.as_deref(),
        })
        .collect();
    let doc = serde_json::json!({
        "model": run.model,
        "benchmark": run.benchmark,
        "task": task,
        "files": files,
        "files_not_listed": run.files.len() - files.len(),
        "findings": findings,
        "findings_not_listed": run.findings.len().saturating_sub(limits.findings),
        "code": code,
        "trace": traces,
    });
    let user = serde_json::to_string_pretty(&doc).expect("a bundle serialises");
    Bundle { user, code }
}

/// The traces a run has: the stage log, then files under the output's `trace/`.
pub fn trace_entries<'a>(log: Option<&'a walk::Entry>, files: &[&'a walk::Entry]) -> Vec<&'a walk::Entry> {
    log.into_iter().chain(files.iter().copied().filter(|e| e.rel.starts_with("trace/"))).collect()
}

/// Where a cited path's text is, for the evidence check.
pub fn source_path(files: &[&walk::Entry], traces: &[&walk::Entry], cited: &str) -> Option<PathBuf> {
    files.iter().chain(traces.iter()).find(|e| e.rel == cited).map(|e| e.path.clone())
}
