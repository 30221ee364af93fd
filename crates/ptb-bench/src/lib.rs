//! The seven PostTrainBench benchmarks: prompt builders, scorers, data loading,
//! the LLM judge client and `ptb bench check`.
//!
//! Every scorer is a pure function of (model output, item) so that the eval stage
//! can record per-item results and re-score without re-generating. The default
//! behaviour reproduces the reference harness (aisa-group/PostTrainBench and the
//! inspect_evals commit it pins); deviations are listed in docs/benchmarks.md.

pub mod arena;
pub mod bfcl;
pub mod chat;
pub mod check;
pub mod data;
mod error;
pub mod gpqa;
pub mod healthbench;
pub mod humaneval;
pub mod judge;
pub mod judged;
pub mod math;
pub mod numeric;
pub mod pycall;
pub mod pyrandom;
pub mod repetition;
pub mod sandbox;
pub mod score_file;
pub mod task;
pub mod toolparse;
pub mod unicode_number;

pub use error::BenchError;
pub use ptb_core::benchmark::{BenchId, UnknownBenchmark};
