//! GSM8K and AIME 2025: prompts as inspect_evals builds them, scored with
//! inspect's `match(numeric=True)` (see `numeric`).

use super::BenchError;
use super::chat::{ChatRequest, Message};
use super::data;
use super::numeric::{self, MatchOutcome};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One math problem with its gold answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MathItem {
    pub id: String,
    pub question: String,
    pub target: String,
    /// GSM8K's worked solution (the text before `####`); used for few-shot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

pub const AIME_MAX_TOKENS: u32 = 16000;
pub const GSM8K_MAX_TOKENS: u32 = 4000;
pub const GSM8K_FEWSHOT: usize = 10;

/// inspect_evals `gsm8k` `MATH_PROMPT_TEMPLATE` opens on one line; its
/// `aime2024`/`aime2025` `USER_PROMPT_TEMPLATE` breaks the line after the
/// first sentence. Both read from the files installed in the reference's image.
const GSM8K_HEAD: &str = "Solve the following math problem step by step. The last line of your response should be of the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.";
const AIME_HEAD: &str = "Solve the following math problem step by step.\nThe last line of your response should be of the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.";
const INSTRUCTION_TAIL: &str = "Remember to put your answer on its own line at the end in the form \"ANSWER: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem, and you do not need to use a \\boxed command.";

/// The AIME user turn (inspect_evals `aime2025`).
pub fn aime_prompt(question: &str) -> String {
    format!("{AIME_HEAD}\n\n{question}\n\n{INSTRUCTION_TAIL}")
}

/// The GSM8K user turn (inspect_evals `gsm8k`).
pub fn gsm8k_prompt(question: &str) -> String {
    format!("{GSM8K_HEAD}\n\n{question}\n\n{INSTRUCTION_TAIL}\n\nReasoning:")
}

/// inspect_evals' `sample_to_fewshot`.
pub fn fewshot_block(item: &MathItem) -> String {
    format!("{}\n\nReasoning:\n{}\n\nANSWER: {}", item.question, item.reasoning.as_deref().unwrap_or(""), item.target)
}

pub fn aime_request(item: &MathItem) -> ChatRequest {
    ChatRequest { messages: vec![Message::user(aime_prompt(&item.question))], tools: vec![], max_tokens: AIME_MAX_TOKENS }
}

/// GSM8K with the few-shot examples joined into one system message, as the
/// reference does (no system message when `fewshot` is empty).
pub fn gsm8k_request(item: &MathItem, fewshot: &[MathItem]) -> ChatRequest {
    let mut messages = Vec::with_capacity(2);
    if !fewshot.is_empty() {
        let block = fewshot.iter().map(fewshot_block).collect::<Vec<_>>().join("\n\n");
        messages.push(Message::system(block));
    }
    messages.push(Message::user(gsm8k_prompt(&item.question)));
    ChatRequest { messages, tools: vec![], max_tokens: GSM8K_MAX_TOKENS }
}

/// AIME: unwrap `\boxed{…}`, then numeric match on the last number.
pub fn score_aime(completion: &str, target: &str) -> MatchOutcome {
    numeric::match_numeric_end(&numeric::strip_boxed(completion), target)
}

/// GSM8K: numeric match on the last number.
pub fn score_gsm8k(completion: &str, target: &str) -> MatchOutcome {
    numeric::match_numeric_end(completion, target)
}

#[derive(Deserialize)]
struct GsmRecord {
    question: String,
    answer: String,
}

/// inspect_evals' `record_to_sample`: the target is the text after the last `####`.
fn gsm_item(i: usize, r: GsmRecord) -> MathItem {
    let mut parts: Vec<&str> = r.answer.split("####").collect();
    let target = parts.pop().unwrap_or("").trim().to_string();
    let reasoning = parts.join("####").trim().to_string();
    MathItem { id: i.to_string(), question: r.question, target, reasoning: Some(reasoning) }
}

/// GSM8K test split (1,319 items) from `dir/gsm8k_test.jsonl`.
pub fn load_gsm8k(dir: &Path) -> Result<Vec<MathItem>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::Gsm8k, "gsm8k_test.jsonl")?;
    Ok(data::read_jsonl::<GsmRecord>(&p)?.into_iter().enumerate().map(|(i, r)| gsm_item(i, r)).collect())
}

/// The 10 training examples inspect picks with `fewshot_seed=42`.
pub fn load_gsm8k_fewshot(dir: &Path) -> Result<Vec<MathItem>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::Gsm8k, "gsm8k_fewshot.jsonl")?;
    Ok(data::read_jsonl::<GsmRecord>(&p)?.into_iter().enumerate().map(|(i, r)| gsm_item(i, r)).collect())
}

#[derive(Deserialize)]
struct AimeRecord {
    id: String,
    problem: String,
    answer: String,
}

/// AIME 2025 (30 items) from `dir/aime2025.jsonl`.
pub fn load_aime(dir: &Path) -> Result<Vec<MathItem>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::Aime2025, "aime2025.jsonl")?;
    Ok(data::read_jsonl::<AimeRecord>(&p)?.into_iter().map(|r| MathItem { id: r.id, question: r.problem, target: r.answer, reasoning: None }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm8k_prompt_ends_with_reasoning_cue() {
        let p = gsm8k_prompt("What is 2+2?");
        assert!(p.starts_with("Solve the following math problem step by step."));
        assert!(p.contains("\n\nWhat is 2+2?\n\n"));
        assert!(p.ends_with("you do not need to use a \\boxed command.\n\nReasoning:"));
    }

    #[test]
    fn aime_boxed_answer_counts() {
        assert!(score_aime("so the answer is \\boxed{70}", "70").correct);
        assert!(!score_aime("ANSWER: 71", "70").correct);
    }

    #[test]
    fn gsm_target_split() {
        let it = gsm_item(0, GsmRecord { question: "q".into(), answer: "a <<1+1=2>>2\n#### 1,000".into() });
        assert_eq!(it.target, "1,000");
        assert_eq!(it.reasoning.as_deref(), Some("a <<1+1=2>>2"));
    }
}
