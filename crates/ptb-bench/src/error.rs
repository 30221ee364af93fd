use std::path::PathBuf;

/// Everything that can go wrong while loading benchmark data, scoring or judging.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    UnknownBench(#[from] ptb_core::benchmark::UnknownBenchmark),

    #[error("benchmark data file {path} is missing; {hint}")]
    DataMissing { path: PathBuf, hint: String },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },

    #[error("sha256 of {path} is {actual}, expected {expected} (data changed or corrupted)")]
    HashMismatch { path: PathBuf, expected: String, actual: String },

    #[error("sandbox: {0}")]
    Sandbox(String),

    #[error("judge: {0}")]
    Judge(String),

    #[error("invalid input: {0}")]
    Invalid(String),
}
