//! Why a stage runs (or is reused): typed, with old and new values, like
//! cargo's dirty reasons.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// No record of this stage in the lockfile and nothing in the store.
    New,
    /// A hashed input differs from the one recorded in the lockfile.
    InputChanged { field: String, old: Option<String>, new: Option<String> },
    /// The upstream stage's key changed (so its output will be new).
    UpstreamChanged { stage: String },
    /// The upstream stage reruns under the same key (forced, or its output
    /// was lost), so this stage's old output is stale.
    UpstreamReruns { stage: String },
    /// Recorded as done, but the store entry is gone.
    OutputMissing { path: String },
    /// The last attempt with this key did not succeed.
    PreviousFailed { status: crate::status::StageStatus, log: String },
    /// `--replace` matched this cell.
    Forced,
    /// Reused: found in the store under this key, though the lockfile does
    /// not record it (built by another experiment, or an earlier lockfile).
    StoreHit { path: String },
    /// Cannot run here: an input is missing.
    MissingInput { what: String },
    /// Cannot run: the upstream stage cannot run or failed.
    UpstreamBlocked { stage: String },
}

/// Hashes are long; people need the first few characters.
fn short(v: &str) -> String {
    // `get`, not slicing: a lockfile's value can hold any character.
    if let Some(h) = v.strip_prefix("sha256:")
        && h.len() > 12
        && let Some(h) = h.get(..12)
    {
        return format!("sha256:{h}…");
    }
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("{}…", &v[..12]);
    }
    if v.chars().count() > 60 {
        return format!("{}…", v.chars().take(57).collect::<String>());
    }
    v.to_string()
}

/// An absent field is hashed as the empty string (so adding an optional
/// field does not change existing keys); either way, say it was not set
/// rather than print nothing.
fn opt(v: &Option<String>, unset: &str) -> String {
    v.as_deref().filter(|s| !s.is_empty()).map(short).unwrap_or_else(|| unset.into())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::New => f.write_str("new: never run"),
            Reason::InputChanged { field, old, new } => write!(f, "input `{field}` changed: {} → {}", opt(old, "(was unset)"), opt(new, "(unset)")),
            Reason::UpstreamChanged { stage } => write!(f, "upstream stage `{stage}` changed"),
            Reason::UpstreamReruns { stage } => write!(f, "upstream stage `{stage}` reruns"),
            Reason::OutputMissing { path } => write!(f, "output missing from the store (was {path})"),
            Reason::PreviousFailed { status, log } => write!(f, "previous attempt {status} (log: {log})"),
            Reason::Forced => f.write_str("forced by --replace"),
            Reason::StoreHit { path } => write!(f, "reusing {path} from the store (not recorded in this lockfile)"),
            Reason::MissingInput { what } => write!(f, "missing input: {what}"),
            Reason::UpstreamBlocked { stage } => write!(f, "upstream stage `{stage}` cannot run"),
        }
    }
}

impl Reason {
    /// A short category for summaries.
    pub fn category(&self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::InputChanged { .. } => "input changed",
            Reason::UpstreamChanged { .. } => "upstream changed",
            Reason::UpstreamReruns { .. } => "upstream reruns",
            Reason::OutputMissing { .. } => "output missing",
            Reason::PreviousFailed { .. } => "previous attempt failed",
            Reason::Forced => "forced",
            Reason::StoreHit { .. } => "found in store",
            Reason::MissingInput { .. } => "missing input",
            Reason::UpstreamBlocked { .. } => "upstream blocked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_field_reads_as_unset() {
        let r = Reason::InputChanged { field: "model.arch".into(), old: Some(String::new()), new: Some("qwen3".into()) };
        assert_eq!(r.to_string(), "input `model.arch` changed: (was unset) → qwen3");
        let r = Reason::InputChanged { field: "x".into(), old: Some("1".into()), new: None };
        assert_eq!(r.to_string(), "input `x` changed: 1 → (unset)");
    }
}
