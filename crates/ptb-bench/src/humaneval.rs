//! HumanEval: the inspect_evals prompt, its code extraction, and pass@1 by
//! running `prompt + answer + test + check(entry_point)` in the sandbox.

use super::BenchError;
use super::chat::{ChatRequest, Message};
use super::data;
use super::sandbox::{self, RunOutcome, SandboxOptions};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::OnceLock;

pub const HUMANEVAL_MAX_TOKENS: u32 = 4000;

const INSTRUCTION: &str = "\nRead the following function signature and docstring, and fully implement\nthe function described. Your response should only contain the code for\nthis function.\n\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanEvalItem {
    pub task_id: String,
    pub prompt: String,
    pub canonical_solution: String,
    pub test: String,
    pub entry_point: String,
}

pub fn load(dir: &Path) -> Result<Vec<HumanEvalItem>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::HumanEval, "humaneval.jsonl")?;
    data::read_jsonl(&p)
}

pub fn request(item: &HumanEvalItem) -> ChatRequest {
    ChatRequest { messages: vec![Message::user(format!("{INSTRUCTION}{}", item.prompt))], tools: vec![], max_tokens: HUMANEVAL_MAX_TOKENS }
}

/// inspect_evals' `find_code`: the first ```python fence, else the first bare
/// fence, with everything up to the first `:\n    ` cut off (the signature);
/// the raw completion when there is no fence. As in the reference, a fenced
/// block without `:\n    ` loses its first character (Python's
/// `code[code.find(...) + 2:]` with `find` returning -1).
pub fn find_code(completion: &str) -> String {
    static PY: OnceLock<Regex> = OnceLock::new();
    static BARE: OnceLock<Regex> = OnceLock::new();
    let py = PY.get_or_init(|| Regex::new(r"(?s)```python\n(.*?)```").expect("static regex"));
    let bare = BARE.get_or_init(|| Regex::new(r"(?s)```\n(.*?)```").expect("static regex"));
    let Some(m) = py.captures(completion).or_else(|| bare.captures(completion)).and_then(|c| c.get(1)) else {
        return completion.to_string();
    };
    let code = m.as_str();
    let start = match code.find(":\n    ") {
        Some(i) => i + 2,
        None => code.char_indices().nth(1).map(|(i, _)| i).unwrap_or(code.len()),
    };
    code[start..].to_string()
}

/// The program the reference runs with `python -c`.
pub fn program(item: &HumanEvalItem, answer: &str) -> String {
    format!("{}{}\n{}\ncheck({})", item.prompt, answer, item.test, item.entry_point)
}

/// Score many completions in parallel; `completions[i]` answers `items[i]`.
pub fn score_many(items: &[HumanEvalItem], completions: &[String], opts: &SandboxOptions, jobs: usize) -> Result<Vec<RunOutcome>, BenchError> {
    if items.len() != completions.len() {
        return Err(BenchError::Invalid(format!("{} items but {} completions", items.len(), completions.len())));
    }
    let codes: Vec<String> = items.iter().zip(completions).map(|(it, c)| program(it, &find_code(c))).collect();
    // A NUL byte cannot be passed to `python -c`: such an answer is wrong,
    // not a reason to abort the whole run (inspect_evals later did the same).
    let runnable: Vec<usize> = (0..codes.len()).filter(|&i| !codes[i].contains('\0')).collect();
    let to_run: Vec<String> = runnable.iter().map(|&i| codes[i].clone()).collect();
    let mut outcomes: Vec<RunOutcome> = codes
        .iter()
        .map(|_| RunOutcome {
            passed: false,
            timed_out: false,
            exit_code: None,
            stderr_tail: "the code contains NUL bytes and was not run".into(),
            network_isolated: sandbox::network_isolation_available(),
        })
        .collect();
    for (i, r) in runnable.into_iter().zip(sandbox::run_many(&to_run, opts, jobs)) {
        outcomes[i] = r?;
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_code_drops_signature() {
        let c = "Here:\n```python\ndef f(x):\n    return x + 1\n```\ntrailing";
        assert_eq!(find_code(c), "    return x + 1\n");
    }

    #[test]
    fn unfenced_completion_is_used_raw() {
        assert_eq!(find_code("    return 1\n"), "    return 1\n");
    }

    #[test]
    fn python_fence_wins_over_earlier_bare_fence() {
        let c = "```\nnot this\n```\n```python\ndef g():\n    pass\n```";
        assert_eq!(find_code(c), "    pass\n");
    }
}
