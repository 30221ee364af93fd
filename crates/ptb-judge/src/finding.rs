//! What the judge reports: one `Finding` per thing it saw, written to
//! `verdict.json`; a single `flag` makes the run `flagged`.

use serde::Serialize;
use std::collections::BTreeMap;

/// What a finding is about; one type with the spec's policy (ptb-core).
pub use ptb_core::judge::FindingKind as Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Makes the verdict `flagged`.
    Flag,
    /// Recorded for a person to read; does not change the verdict.
    Note,
}

/// Where the judge saw it: every field is optional because the evidence of
/// a weight distance (a tensor, figures) is not that of a copied question
/// (a file, a line, items, text).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensor: Option<String>,
    /// In a columnar data file (Arrow, Parquet): the column (`messages.content`
    /// for nested values) and the row (0-based), instead of a line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// Which check produced it (`weights.instruct`, `ngram`, `config`…).
    pub detector: String,
    pub severity: Severity,
    /// One sentence a person can act on.
    pub message: String,
    pub evidence: Evidence,
}

impl Finding {
    pub fn new(kind: Kind, detector: &str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding { kind, detector: detector.to_string(), severity, message: message.into(), evidence: Evidence::default() }
    }
    pub fn file(mut self, f: impl Into<String>) -> Finding {
        self.evidence.file = Some(f.into());
        self
    }
    pub fn figure(mut self, name: &str, x: f64) -> Finding {
        self.evidence.figures.insert(name.to_string(), x);
        self
    }
    pub fn is_flag(&self) -> bool {
        self.severity == Severity::Flag
    }
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn snippet(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
