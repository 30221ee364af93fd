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
pub mod task;
pub mod toolparse;

pub use error::BenchError;

use std::fmt;
use std::str::FromStr;

/// The benchmarks of PostTrainBench, named as the reference harness names its task dirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BenchId {
    Aime2025,
    ArenaHardWriting,
    Bfcl,
    GpqaMain,
    Gsm8k,
    HealthBench,
    HumanEval,
}

impl BenchId {
    pub const ALL: [BenchId; 7] = [
        BenchId::Aime2025,
        BenchId::ArenaHardWriting,
        BenchId::Bfcl,
        BenchId::GpqaMain,
        BenchId::Gsm8k,
        BenchId::HealthBench,
        BenchId::HumanEval,
    ];

    /// Scored by an LLM judge (the spec's `llm-judge`) rather than a rule.
    pub fn is_judged(self) -> bool {
        matches!(self, BenchId::ArenaHardWriting | BenchId::HealthBench)
    }

    /// The reference's task directory name, also used in specs and on the CLI.
    pub fn name(self) -> &'static str {
        match self {
            BenchId::Aime2025 => "aime2025",
            BenchId::ArenaHardWriting => "arenahardwriting",
            BenchId::Bfcl => "bfcl",
            BenchId::GpqaMain => "gpqamain",
            BenchId::Gsm8k => "gsm8k",
            BenchId::HealthBench => "healthbench",
            BenchId::HumanEval => "humaneval",
        }
    }
}

impl fmt::Display for BenchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BenchId {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.to_ascii_lowercase().replace(['-', '_'], "");
        // Accept the common short names users type as well as the reference's dir names.
        let id = match key.as_str() {
            "aime2025" | "aime" | "aime25" => BenchId::Aime2025,
            "arenahardwriting" | "arenahard" | "arena" => BenchId::ArenaHardWriting,
            "bfcl" => BenchId::Bfcl,
            "gpqamain" | "gpqa" => BenchId::GpqaMain,
            "gsm8k" => BenchId::Gsm8k,
            "healthbench" | "healthbencheasy" => BenchId::HealthBench,
            "humaneval" => BenchId::HumanEval,
            _ => {
                return Err(BenchError::UnknownBench {
                    name: s.to_string(),
                    known: BenchId::ALL
                        .iter()
                        .map(|b| b.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        Ok(id)
    }
}
