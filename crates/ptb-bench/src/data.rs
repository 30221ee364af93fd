//! Where benchmark data lives and how it is read. `scripts/bench/fetch-data.sh`
//! lays each benchmark out in its own directory (`data/bench/gsm8k/`), with
//! the committed `SHA256SUMS` of its files beside them. One directory per
//! benchmark is what a spec pins (`benchmark gsm8k data="../data/bench/gsm8k"`),
//! so every file an eval reads is hashed and a changed file reruns exactly
//! the evals of its benchmark.

use super::{BenchError, BenchId};
use serde::de::DeserializeOwned;
use std::fs;
use std::path::{Path, PathBuf};

/// Environment variable naming the data directory (overridden by `--data`).
pub const DATA_ENV: &str = "PTB_BENCH_DATA";

/// The data directory: the explicit one, else `$PTB_BENCH_DATA`, else `data/bench`
/// under the current directory (the repo root for `cargo test` and CI).
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(DATA_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("data/bench"),
    }
}

/// `dir/rel`, or a `DataMissing` error that tells the user how to fetch it.
pub fn require(dir: &Path, rel: &str) -> Result<PathBuf, BenchError> {
    let p = dir.join(rel);
    if p.is_file() { Ok(p) } else { Err(missing(p)) }
}

/// The error for a missing file, with the way to get that particular file.
pub fn missing(path: PathBuf) -> BenchError {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hint = if name.ends_with(".csv") {
        "GPQA is gated and never fetched: download gpqa_main.csv yourself and pass it with --data PATH".to_string()
    } else if name == "healthbench_easy245.jsonl" || name == "arenahard_baseline_Qwen3-1.7B.jsonl" {
        "only the PostTrainBench repository ships it: run \
         `bash scripts/bench/fetch-data.sh --posttrainbench PATH/TO/PostTrainBench`"
            .to_string()
    } else {
        "fetch it with `bash scripts/bench/fetch-data.sh` (or point --data / PTB_BENCH_DATA at a directory holding it)".to_string()
    };
    BenchError::DataMissing { path, hint }
}

pub fn read_to_string(path: &Path) -> Result<String, BenchError> {
    fs::read_to_string(path).map_err(|source| BenchError::Io { path: path.to_path_buf(), source })
}

/// One JSON value per non-empty line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, BenchError> {
    let text = read_to_string(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| BenchError::Parse { path: path.to_path_buf(), line: i + 1, message: e.to_string() }))
        .collect()
}

pub fn sha256_file(path: &Path) -> Result<String, BenchError> {
    let bytes = fs::read(path).map_err(|source| BenchError::Io { path: path.to_path_buf(), source })?;
    Ok(ptb_core::hash::sha256_hex(&bytes))
}

/// Check `dir/rel` against the pinned hash in `dir/SHA256SUMS`, when that file
/// lists it; a data file whose content changed must not be scored silently.
pub fn verify_pinned(dir: &Path, rel: &str) -> Result<(), BenchError> {
    let sums = dir.join("SHA256SUMS");
    let Ok(text) = fs::read_to_string(&sums) else {
        return Ok(());
    };
    let Some(expected) = text.lines().find_map(|l| {
        let (sum, name) = l.trim().split_once(char::is_whitespace)?;
        (name.trim() == rel).then(|| sum.to_string())
    }) else {
        return Ok(());
    };
    let path = dir.join(rel);
    let actual = sha256_file(&path)?;
    if actual != expected {
        return Err(BenchError::HashMismatch { path, expected, actual });
    }
    Ok(())
}

/// The directory holding `bench`'s files: `dir/<bench>` under a data root
/// (`data/bench`), or `dir` itself when it is already one (a pinned
/// benchmark directory, an eval stage's `/inputs/data`).
pub fn bench_dir(dir: &Path, bench: BenchId) -> PathBuf {
    let sub = dir.join(bench.name());
    if sub.is_dir() { sub } else { dir.to_path_buf() }
}

/// `require` + `verify_pinned` in `bench`'s directory: the normal way a
/// loader opens its file.
pub fn open_pinned(dir: &Path, bench: BenchId, rel: &str) -> Result<PathBuf, BenchError> {
    let dir = bench_dir(dir, bench);
    let p = require(&dir, rel)?;
    verify_pinned(&dir, rel)?;
    Ok(p)
}

/// The one file a benchmark reads, for those that read one: an eval stage
/// whose data is pinned as that file alone can still run. GSM8K (test and
/// few-shot rows), BFCL and Arena-Hard (questions and the baseline's
/// answers) read several and need their directory.
pub fn single_file(bench: BenchId) -> Option<&'static str> {
    match bench {
        BenchId::Aime2025 => Some("aime2025.jsonl"),
        BenchId::HumanEval => Some("humaneval.jsonl"),
        BenchId::HealthBench => Some("healthbench_easy245.jsonl"),
        BenchId::GpqaMain => Some("gpqa_main.csv"),
        BenchId::Gsm8k | BenchId::Bfcl | BenchId::ArenaHardWriting => None,
    }
}
