//! What the spine knows about judging: the kinds of findings, the verdict,
//! the judge stage's policy (which findings flag a run, the detectors'
//! parameters; hashed into judge stages only) and people's reviews, which
//! overrule a verdict without rerunning anything (recorded in the
//! lockfile, read by reports). The detectors themselves live in ptb-judge.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// Benchmark test items (or code that loads them) in what the agent left.
    Contamination,
    /// The final model is not a fine-tune of the assigned base model.
    Substitution,
    /// Files that change how the model is built or scored.
    Tampering,
}

impl FindingKind {
    pub const ALL: [FindingKind; 3] = [FindingKind::Contamination, FindingKind::Substitution, FindingKind::Tampering];
    pub const NAMES: [&'static str; 3] = ["contamination", "substitution", "tampering"];

    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Contamination => "contamination",
            FindingKind::Substitution => "substitution",
            FindingKind::Tampering => "tampering",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A judge's (or a person's) verdict on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The run's score stands.
    Pass,
    /// The run scores as the base model (the paper's rule).
    Flagged,
}

impl Verdict {
    pub const NAMES: [&'static str; 2] = ["pass", "flagged"];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Flagged => "flagged",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Flagged].into_iter().find(|v| v.name() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When the LLM reviewer's "detected" flags a run (`policy llm=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmRule {
    /// Only when the majority's detections cite evidence the judge finds
    /// in the agent's files (a quote that is there): an unsupported claim
    /// is a note for a person.
    #[default]
    Cited,
    /// Whenever the majority says detected.
    Any,
}

impl LlmRule {
    pub const NAMES: [&'static str; 2] = ["cited", "any"];

    pub fn name(self) -> &'static str {
        match self {
            LlmRule::Cited => "cited",
            LlmRule::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<LlmRule> {
        [LlmRule::Cited, LlmRule::Any].into_iter().find(|r| r.name() == s)
    }
}

/// `policy` in `stage judge { … }`: which findings flag a run and the
/// detectors' parameters. Every judge stage gets it (`PTB_JUDGE_POLICY`,
/// JSON) and it is hashed into judge stages only ([`JudgePolicy::key_fields`]),
/// so changing it reruns judges and never an agent or an eval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgePolicy {
    /// The kinds whose flags flag the run; the others' are kept as notes.
    pub flag: Vec<FindingKind>,
    /// A test item whose best-covered text has at least this fraction of
    /// its n-grams in one file is contamination that flags.
    pub coverage: f64,
    /// Words per n-gram of the contamination index.
    pub ngram: u32,
    /// Test texts shorter than `ngram` words but of at least this many are
    /// looked for whole (their exact normalised word sequence); shorter ones
    /// are too common to tell a copy from chance.
    pub min_words: u32,
    /// Text files over this many MiB are not scanned (a note says so).
    pub max_file_mib: u64,
    /// When the LLM reviewer flags (read only with an `llm-judge`).
    #[serde(default)]
    pub llm: LlmRule,
}

impl Default for JudgePolicy {
    fn default() -> Self {
        JudgePolicy { flag: FindingKind::ALL.to_vec(), coverage: 0.5, ngram: 13, min_words: 8, max_file_mib: 256, llm: LlmRule::Cited }
    }
}

impl JudgePolicy {
    /// The hashed fields (docs/hashing.md), `policy.<name>`. `llm` is not
    /// among them: it is hashed (as `policy.llm`) only in judge stages with
    /// an `llm-judge`, the only ones it changes, so adding the reviewer
    /// moved no other judge stage's key.
    pub fn key_fields(&self) -> BTreeMap<String, String> {
        let flag: Vec<&str> = self.flag.iter().map(|k| k.name()).collect();
        [
            ("policy.flag", flag.join(",")),
            ("policy.coverage", format!("{}", self.coverage)),
            ("policy.ngram", self.ngram.to_string()),
            ("policy.min_words", self.min_words.to_string()),
            ("policy.max_file_mib", self.max_file_mib.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The value of `PTB_JUDGE_POLICY`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy serialises")
    }

    /// Read `PTB_JUDGE_POLICY`; every field is optional (defaults).
    pub fn from_json(s: &str) -> Result<JudgePolicy, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Partial {
            flag: Option<Vec<FindingKind>>,
            coverage: Option<f64>,
            ngram: Option<u32>,
            min_words: Option<u32>,
            max_file_mib: Option<u64>,
            llm: Option<LlmRule>,
        }
        let p: Partial = serde_json::from_str(s).map_err(|e| format!("PTB_JUDGE_POLICY is not a judge policy: {e}"))?;
        let d = JudgePolicy::default();
        let policy = JudgePolicy {
            flag: p.flag.unwrap_or(d.flag),
            coverage: p.coverage.unwrap_or(d.coverage),
            ngram: p.ngram.unwrap_or(d.ngram),
            min_words: p.min_words.unwrap_or(d.min_words),
            max_file_mib: p.max_file_mib.unwrap_or(d.max_file_mib),
            llm: p.llm.unwrap_or(d.llm),
        };
        policy.check()?;
        Ok(policy)
    }

    /// The ranges the detectors need.
    pub fn check(&self) -> Result<(), String> {
        if !(self.coverage > 0.0 && self.coverage <= 1.0) {
            return Err(format!("coverage must be in (0, 1], not {}", self.coverage));
        }
        if self.ngram == 0 {
            return Err("ngram must be at least 1".into());
        }
        if self.min_words == 0 {
            return Err("min-words must be at least 1".into());
        }
        Ok(())
    }

    pub fn flags(&self, kind: FindingKind) -> bool {
        self.flag.contains(&kind)
    }
}

/// `review cell="m/b/a/seed=2" verdict=pass reason="…"`: a person's verdict
/// on a run, which replaces the judge's in reports. Not hashed (it reruns
/// nothing); recorded in the lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub cell: String,
    pub verdict: Verdict,
    pub reason: String,
}
