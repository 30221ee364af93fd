//! The benchmarks ptb knows by name. Planning needs only their names and
//! which of them an LLM judge scores; everything else about a benchmark
//! (data, prompts, scorers) lives in ptb-bench.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown benchmark `{name}` (known: {known})")]
pub struct UnknownBenchmark {
    pub name: String,
    pub known: String,
}

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
    pub const ALL: [BenchId; 7] =
        [BenchId::Aime2025, BenchId::ArenaHardWriting, BenchId::Bfcl, BenchId::GpqaMain, BenchId::Gsm8k, BenchId::HealthBench, BenchId::HumanEval];

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
    type Err = UnknownBenchmark;

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
                return Err(UnknownBenchmark { name: s.to_string(), known: BenchId::ALL.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ") });
            }
        };
        Ok(id)
    }
}
