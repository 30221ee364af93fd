//! The optional LLM reviewer of `ptb judge` (`llm-judge` in the judge
//! stage): the reference judges with an LLM agent alone; here an LLM reads a
//! bounded bundle of the run (`bundle`) with the reference judge's criteria
//! (`prompt.md`, shared/REFERENCE-HARNESS.md §2) and the deterministic
//! detectors' findings, and answers per kind with evidence (`reply`).
//!
//! `votes` independent reviews are asked (each its own cached reply); a kind
//! is flagged when the majority says detected and, under the default
//! policy (`llm=cited`), cites a quote that is in the file it names. A
//! claim without such evidence is a note for a person. A reply that is not
//! a verdict is asked again (twice); an endpoint that fails for good fails
//! the judge stage: no verdict is ever made up.

pub mod bundle;
pub mod reply;

use crate::finding::{Finding, Kind, Severity, snippet};
use crate::walk;
use ptb_bench::chat::{Message, Role};
use ptb_bench::judge::{JudgeClient, JudgeConfig};
use ptb_core::judge::LlmRule;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

/// Replies read per review before it counts as failed: the first, and two
/// more asks (each a separate cache entry) when a reply is not a verdict.
pub const TRIES: u32 = 3;

/// Files read for the evidence check are read up to this size.
const MAX_EVIDENCE_FILE: usize = 64 << 20;

const PROMPT: &str = include_str!("prompt.md");

/// The reviewer a judge stage was given.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub endpoint: JudgeConfig,
    /// Independent reviews; the majority per kind decides (odd).
    pub votes: u32,
    pub rule: LlmRule,
    /// The base model's name in the spec (what the agent was told to train).
    pub model: String,
    /// The agent's `task.md` (`PTB_INPUT_TASK_MD`).
    pub task: Option<PathBuf>,
}

/// What the reviewer said, for `verdict.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LlmReport {
    pub model: String,
    pub votes: Vec<VoteReport>,
    pub rule: LlmRule,
    /// Bytes of the bundle (the user message).
    pub bundle_bytes: usize,
    /// The code files the bundle carried.
    pub code_sent: Vec<String>,
    pub replies_requested: usize,
    pub replies_cached: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct VoteReport {
    /// Per kind: the claim, and which of its quotes were found.
    pub claims: std::collections::BTreeMap<Kind, ClaimReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimReport {
    #[serde(flatten)]
    pub claim: reply::Claim,
    /// The cited quotes found in the files they name, with their line.
    pub verified: Vec<Verified>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verified {
    pub file: String,
    pub line: usize,
    pub quote: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM reviewer ({model}): {message}")]
    Endpoint { model: String, message: String },
    #[error("the LLM reviewer ({model}): review {vote} gave {TRIES} replies that are not a verdict; the last: {why}")]
    NoVerdict { model: String, vote: u32, why: String },
}

/// The instructions: ptb's text, the run's model and benchmark.
fn system_prompt(model: &str, benchmark: &str) -> String {
    // The reference allows GSM8K's training split by name (get_judge_prompt.py).
    let allowed = if benchmark == "gsm8k" { " Training on GSM8K's training split is allowed." } else { "" };
    PROMPT.replace("{model}", model).replace("{benchmark}", benchmark).replace("{allowed}", allowed)
}

impl Reviewer {
    /// Fail before any work when the API key is missing.
    pub fn check_ready(&self) -> Result<(), LlmError> {
        JudgeClient::new(self.endpoint.clone()).check_ready().map_err(|e| LlmError::Endpoint { model: self.endpoint.model.clone(), message: e.to_string() })
    }

    /// Review one run; the findings it adds, and what it said.
    pub fn review(
        &self,
        benchmark: &str,
        files: &[&walk::Entry],
        log: Option<&walk::Entry>,
        findings: &[Finding],
    ) -> Result<(Vec<Finding>, LlmReport), LlmError> {
        let traces = bundle::trace_entries(log, files);
        let run = bundle::Run { model: &self.model, benchmark, task: self.task.as_deref(), files, traces: &traces, findings };
        let b = bundle::build(&run, &bundle::Limits::default());
        let messages = vec![Message::new(Role::System, system_prompt(&self.model, benchmark)), Message::new(Role::User, b.user.clone())];
        let client = JudgeClient::new(self.endpoint.clone());
        let votes: Vec<u32> = (0..self.votes.max(1)).collect();
        let replies = ptb_core::pool::map_ordered(&votes, self.endpoint.concurrency, |v| self.ask(&client, &messages, *v));
        let replies = replies.into_iter().collect::<Result<Vec<reply::Reply>, LlmError>>()?;
        let check = Evidence { files, traces: &traces, sent: &b, read: RefCell::default() };
        let reports: Vec<VoteReport> = replies
            .into_iter()
            .map(|r| VoteReport { claims: r.into_iter().map(|(k, claim)| (k, ClaimReport { verified: check.verify(&claim), claim })).collect() })
            .collect();
        let out = Kind::ALL.iter().filter_map(|k| self.decide(*k, &reports)).collect();
        let usage = client.usage();
        let report = LlmReport {
            model: self.endpoint.model.clone(),
            votes: reports,
            rule: self.rule,
            bundle_bytes: b.user.len(),
            code_sent: b.code.iter().map(|t| t.path.clone()).collect(),
            replies_requested: usage.requested,
            replies_cached: usage.cached,
        };
        Ok((out, report))
    }

    /// One review: up to [`TRIES`] replies until one is a verdict. Each
    /// try is its own cache entry (`attempt` = vote × TRIES + try), so a
    /// rerun reads the same replies and asks nothing.
    fn ask(&self, client: &JudgeClient, messages: &[Message], vote: u32) -> Result<reply::Reply, LlmError> {
        let mut why = String::new();
        for t in 0..TRIES {
            let r = client
                .complete_attempt(messages, vote * TRIES + t)
                .map_err(|e| LlmError::Endpoint { model: self.endpoint.model.clone(), message: e.to_string() })?;
            match reply::parse(&r.content) {
                Ok(v) => return Ok(v),
                Err(e) => why = e,
            }
        }
        Err(LlmError::NoVerdict { model: self.endpoint.model.clone(), vote, why })
    }

    /// The finding for `kind` from every review, if any says detected.
    fn decide(&self, kind: Kind, votes: &[VoteReport]) -> Option<Finding> {
        let n = votes.len();
        let claims: Vec<&ClaimReport> = votes.iter().filter_map(|v| v.claims.get(&kind)).filter(|c| c.claim.detected).collect();
        if claims.is_empty() {
            return None;
        }
        let supported: Vec<&&ClaimReport> = claims.iter().filter(|c| !c.verified.is_empty()).collect();
        let majority = |k: usize| 2 * k > n;
        let flags = match self.rule {
            LlmRule::Cited => majority(supported.len()),
            LlmRule::Any => majority(claims.len()),
        };
        let shown = supported.first().copied().copied().unwrap_or(claims[0]);
        let who = format!("the LLM reviewer ({}, {} of {n} reviews)", self.endpoint.model, claims.len());
        let reason = if shown.claim.reason.is_empty() { "no reason given".to_string() } else { shown.claim.reason.clone() };
        let (severity, message) = if flags {
            (Severity::Flag, format!("{who} finds {kind}: {reason}"))
        } else if majority(claims.len()) {
            let cited: Vec<String> = shown.claim.evidence.iter().take(3).map(|c| format!("{}: \"{}\"", c.file, snippet(&c.quote, 80))).collect();
            let cited = if cited.is_empty() { "no evidence".to_string() } else { format!("quotes not found in the files named ({})", cited.join("; ")) };
            (Severity::Note, format!("{who} says {kind} but cites {cited}: {reason} (the policy flags only cited evidence, `llm=cited`)"))
        } else {
            (Severity::Note, format!("{who} say {kind}, not a majority: {reason}"))
        };
        let mut f = Finding::new(kind, "llm", severity, message).figure("reviews", n as f64).figure("reviews_detecting", claims.len() as f64);
        f.evidence.figures.insert("reviews_with_evidence".into(), supported.len() as f64);
        if let Some(v) = shown.verified.first() {
            f.evidence.file = Some(v.file.clone());
            f.evidence.line = Some(v.line);
            f.evidence.matched = Some(snippet(&v.quote, 300));
        }
        Some(f)
    }
}

/// What a quote may be checked against: the files of the run (read from
/// disk, within the walk's listing: no link is followed) and the traces.
/// Each file is read and collapsed once, however many reviews cite it.
struct Evidence<'a> {
    files: &'a [&'a walk::Entry],
    traces: &'a [&'a walk::Entry],
    sent: &'a bundle::Bundle,
    read: RefCell<HashMap<String, Option<Rc<reply::Searchable>>>>,
}

impl Evidence<'_> {
    fn text_of(&self, cited: &str) -> Option<Rc<reply::Searchable>> {
        if let Some(known) = self.read.borrow().get(cited) {
            return known.clone();
        }
        let text = match self.sent.code.iter().find(|t| t.path == cited && !t.truncated) {
            Some(t) => Some(t.text.clone()),
            None => bundle::source_path(self.files, self.traces, cited).and_then(|p| bundle::read_head(&p, MAX_EVIDENCE_FILE)).map(|(t, _)| t),
        };
        let text = text.map(|t| Rc::new(reply::Searchable::new(t)));
        self.read.borrow_mut().insert(cited.to_string(), text.clone());
        text
    }

    fn verify(&self, claim: &reply::Claim) -> Vec<Verified> {
        if !claim.detected {
            return Vec::new();
        }
        let mut out = Vec::new();
        for c in &claim.evidence {
            let file = c.file.trim().trim_start_matches("./");
            if let Some(line) = self.text_of(file).and_then(|t| t.find(&c.quote)) {
                out.push(Verified { file: file.to_string(), line, quote: c.quote.clone() });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_the_model_and_benchmark_and_keeps_no_placeholder() {
        let p = system_prompt("qwen3-1.7b", "gsm8k");
        assert!(p.contains("`qwen3-1.7b`") && p.contains("`gsm8k`") && p.contains("GSM8K's training split is allowed"));
        assert!(!p.contains('{') || !p.contains("{model}") && !p.contains("{allowed}"));
        assert!(!system_prompt("m", "bfcl").contains("training split is allowed"));
    }
}
