//! The interface the eval stage uses: load a benchmark's items, get one chat
//! request per item, then score the model outputs into per-item results (one
//! jsonl line each in the store) and the metric recorded in the lockfile.
//! The judged benchmarks (Arena-Hard, HealthBench) score through `judged`.

use super::bfcl::{self, AstOptions, BfclItem, Category};
use super::chat::{ChatRequest, ModelOutput, strip_reasoning};
use super::gpqa::{self, ChoiceOrder, GpqaItem, Presented};
use super::humaneval::{self, HumanEvalItem};
use super::math::{self, MathItem};
use super::sandbox::{self, SandboxOptions};
use super::{BenchError, BenchId};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Choices that change what is scored, so they belong in the eval stage's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskOptions {
    /// GPQA: the CSV (gated data the user supplies).
    pub gpqa_csv: Option<std::path::PathBuf>,
    pub gpqa_order: ChoiceOrder,
    /// BFCL categories; the reference uses only exec_simple.
    pub bfcl_categories: Vec<Category>,
    /// GSM8K few-shot count (reference: 10).
    pub gsm8k_fewshot: usize,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions { gpqa_csv: None, gpqa_order: ChoiceOrder::Seeded(0), bfcl_categories: vec![Category::ExecSimple], gsm8k_fewshot: 10 }
    }
}

/// One item to generate for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalItem {
    pub id: String,
    pub request: ChatRequest,
}

/// One scored item, as written to the per-item results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    /// 1.0 / 0.0 for right / wrong; a fraction for rubric scores.
    pub score: f64,
    /// What the scorer extracted (number, letter, code, call) or why it failed.
    pub answer: String,
}

/// accuracy (the `"accuracy"` the reference aggregates) and inspect's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub accuracy: f64,
    pub stderr: f64,
    pub n: usize,
}

/// Mean and sd(ddof=1)/sqrt(n), inspect's `accuracy()` and `stderr()`.
pub fn metric(results: &[ItemResult]) -> Metric {
    let n = results.len();
    if n == 0 {
        return Metric { accuracy: 0.0, stderr: 0.0, n };
    }
    let mean = results.iter().map(|r| r.score).sum::<f64>() / n as f64;
    let stderr = if n < 2 { 0.0 } else { (results.iter().map(|r| (r.score - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() / (n as f64).sqrt() };
    Metric { accuracy: mean, stderr, n }
}

/// A loaded, automatically scored benchmark.
pub enum Task {
    Aime(Vec<MathItem>),
    Gsm8k { items: Vec<MathItem>, fewshot: Vec<MathItem> },
    Gpqa(Vec<(GpqaItem, Presented)>),
    HumanEval(Vec<HumanEvalItem>),
    Bfcl(Vec<BfclItem>),
}

impl Task {
    pub fn load(bench: BenchId, data: &Path, opts: &TaskOptions) -> Result<Task, BenchError> {
        Ok(match bench {
            BenchId::Aime2025 => Task::Aime(math::load_aime(data)?),
            BenchId::Gsm8k => {
                let mut fewshot = math::load_gsm8k_fewshot(data)?;
                fewshot.truncate(opts.gsm8k_fewshot);
                Task::Gsm8k { items: math::load_gsm8k(data)?, fewshot }
            }
            BenchId::GpqaMain => {
                let csv = opts.gpqa_csv.clone().unwrap_or_else(|| super::data::bench_dir(data, bench).join("gpqa_main.csv"));
                let items = gpqa::load_csv(&csv)?;
                let presented = gpqa::present_all(&items, opts.gpqa_order);
                Task::Gpqa(items.into_iter().zip(presented).collect())
            }
            BenchId::HumanEval => Task::HumanEval(humaneval::load(data)?),
            BenchId::Bfcl => {
                let mut items = Vec::new();
                for c in &opts.bfcl_categories {
                    items.extend(bfcl::load(data, *c)?);
                }
                Task::Bfcl(items)
            }
            BenchId::ArenaHardWriting | BenchId::HealthBench => {
                return Err(BenchError::Invalid(format!("{bench} is scored by an LLM judge: use bench::judged")));
            }
        })
    }

    pub fn items(&self) -> Vec<EvalItem> {
        let item = |id: &str, request| EvalItem { id: id.to_string(), request };
        match self {
            Task::Aime(v) => v.iter().map(|i| item(&i.id, math::aime_request(i))).collect(),
            Task::Gsm8k { items, fewshot } => items.iter().map(|i| item(&i.id, math::gsm8k_request(i, fewshot))).collect(),
            Task::Gpqa(v) => v.iter().map(|(i, p)| item(&i.id, gpqa::request(i, p))).collect(),
            Task::HumanEval(v) => v.iter().map(|i| item(&i.task_id, humaneval::request(i))).collect(),
            Task::Bfcl(v) => v.iter().map(|i| item(&i.id, bfcl::request(i))).collect(),
        }
    }

    /// The item ids, in order.
    pub fn ids(&self) -> Vec<String> {
        match self {
            Task::Aime(v) => v.iter().map(|i| i.id.clone()).collect(),
            Task::Gsm8k { items, .. } => items.iter().map(|i| i.id.clone()).collect(),
            Task::Gpqa(v) => v.iter().map(|(i, _)| i.id.clone()).collect(),
            Task::HumanEval(v) => v.iter().map(|i| i.task_id.clone()).collect(),
            Task::Bfcl(v) => v.iter().map(|i| i.id.clone()).collect(),
        }
    }

    /// Keep only the items whose id `keep` accepts (in their order).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        match self {
            Task::Aime(v) => v.retain(|i| keep(&i.id)),
            Task::Gsm8k { items, .. } => items.retain(|i| keep(&i.id)),
            Task::Gpqa(v) => v.retain(|(i, _)| keep(&i.id)),
            Task::HumanEval(v) => v.retain(|i| keep(&i.task_id)),
            Task::Bfcl(v) => v.retain(|i| keep(&i.id)),
        }
    }

    /// What the model's text for item `index` is to the scorer: for BFCL the
    /// tool calls the reference's serving stack would parse from it (vLLM's
    /// hermes parser, then inspect's argument decoding, which needs the
    /// item's tools), for the others the text.
    pub fn output(&self, index: usize, text: &str) -> ModelOutput {
        match self {
            Task::Bfcl(v) => match v.get(index) {
                Some(item) => super::toolparse::parse_hermes_for(text, &item.first_params),
                None => super::toolparse::parse_hermes(text),
            },
            _ => ModelOutput { completion: text.to_string(), tool_calls: vec![] },
        }
    }

    /// Score `outputs[i]` against item i. Reasoning blocks are stripped first.
    pub fn score(&self, outputs: &[ModelOutput], sandbox_opts: &SandboxOptions) -> Result<Vec<ItemResult>, BenchError> {
        let n = match self {
            Task::Aime(v) => v.len(),
            Task::Gsm8k { items, .. } => items.len(),
            Task::Gpqa(v) => v.len(),
            Task::HumanEval(v) => v.len(),
            Task::Bfcl(v) => v.len(),
        };
        if outputs.len() != n {
            return Err(BenchError::Invalid(format!("{n} items but {} outputs", outputs.len())));
        }
        let texts: Vec<String> = outputs.iter().map(|o| strip_reasoning(&o.completion)).collect();
        let res = |id: &str, ok: bool, answer: String| ItemResult { id: id.to_string(), score: if ok { 1.0 } else { 0.0 }, answer };
        Ok(match self {
            Task::Aime(v) => v
                .iter()
                .zip(&texts)
                .map(|(i, t)| {
                    let m = math::score_aime(t, &i.target);
                    res(&i.id, m.correct, m.answer)
                })
                .collect(),
            Task::Gsm8k { items, .. } => items
                .iter()
                .zip(&texts)
                .map(|(i, t)| {
                    let m = math::score_gsm8k(t, &i.target);
                    res(&i.id, m.correct, m.answer)
                })
                .collect(),
            Task::Gpqa(v) => v
                .iter()
                .zip(&texts)
                .map(|((i, p), t)| {
                    let letter = gpqa::parse_letter(t);
                    res(&i.id, letter == Some(p.target), letter.map(String::from).unwrap_or_default())
                })
                .collect(),
            Task::HumanEval(v) => {
                let runs = humaneval::score_many(v, &texts, sandbox_opts, sandbox::default_jobs())?;
                v.iter()
                    .zip(runs)
                    .zip(&texts)
                    .map(|((i, r), t)| {
                        let mut answer = humaneval::find_code(t);
                        if !r.passed {
                            let why = if r.timed_out { "timed out".to_string() } else { r.stderr_tail.lines().last().unwrap_or("").to_string() };
                            answer = format!("{answer}\n# failed: {why}");
                        }
                        res(&i.task_id, r.passed, answer)
                    })
                    .collect()
            }
            Task::Bfcl(v) => v
                .iter()
                .zip(outputs)
                .map(|(i, o)| {
                    let verdict = bfcl::score(i, o, &AstOptions::default());
                    let calls = serde_json::to_string(&o.tool_calls).unwrap_or_default();
                    res(&i.id, verdict.correct, if verdict.correct { calls } else { format!("{calls} ({})", verdict.reason) })
                })
                .collect(),
        })
    }
}
