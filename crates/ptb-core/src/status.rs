//! How a stage ended: one type for the executors' outcomes, the store's
//! `meta.json`, the lockfile and the reports. Written as snake_case names
//! (`success`, `failed`, `budget_exhausted`, `interrupted`) in all three files.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Exited 0.
    Success,
    /// Exited non-zero, was killed by a signal it did not ask for, or wrote
    /// metrics ptb could not accept. Never cached.
    Failed,
    /// Still running at the deadline; terminated. Its output is kept (what
    /// exists at the deadline is what gets evaluated).
    BudgetExhausted,
    /// Stopped because ptb itself was interrupted (Ctrl-C, SIGTERM): says
    /// nothing about the stage. Never cached, never a result; the next
    /// apply runs it again.
    Interrupted,
}

impl StageStatus {
    pub const ALL: [StageStatus; 4] = [StageStatus::Success, StageStatus::Failed, StageStatus::BudgetExhausted, StageStatus::Interrupted];

    pub fn name(self) -> &'static str {
        match self {
            StageStatus::Success => "success",
            StageStatus::Failed => "failed",
            StageStatus::BudgetExhausted => "budget_exhausted",
            StageStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the stage left a result later stages may read (and the store keeps).
    pub fn has_result(self) -> bool {
        matches!(self, StageStatus::Success | StageStatus::BudgetExhausted)
    }
}

impl fmt::Display for StageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage status `{0}` (known: success, failed, budget_exhausted, interrupted)")]
pub struct UnknownStatus(pub String);

impl FromStr for StageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StageStatus::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// How a stage's turn in an apply ended, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageEnd {
    /// It ran and ended so.
    Ran(StageStatus),
    /// Another ptb built it while this one waited for its lock.
    BuiltConcurrently,
}

impl StageEnd {
    /// Whether a result is there for later stages.
    pub fn ok(self) -> bool {
        match self {
            StageEnd::Ran(s) => s.has_result(),
            StageEnd::BuiltConcurrently => true,
        }
    }
}

impl fmt::Display for StageEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageEnd::Ran(s) => s.fmt(f),
            StageEnd::BuiltConcurrently => f.write_str("cached (built concurrently)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in StageStatus::ALL {
            assert_eq!(s.name().parse::<StageStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
        assert!("cached".parse::<StageStatus>().is_err());
    }
}
