//! `ptb bench score`: score completions generated elsewhere (by vLLM, by the
//! reference harness, by hand) with ptb's scorers, item by item, so that two
//! harnesses can be compared on the same generations, or two generators on
//! the same scorers.
//!
//! The file is JSON Lines, one object per item: `id` (the item's id, as in
//! `results.jsonl`), `completion` (the model's text), and for BFCL optionally
//! `tool_calls`, as an OpenAI-compatible server returns them (each
//! `{"function": {"name", "arguments"}}`, `arguments` a JSON string or an
//! object); without it the calls are parsed from the completion as ptb's
//! evaluator does. A file may hold a subset of the items: only those are
//! scored, and the report says how many of how many.

use super::chat::{ModelOutput, ToolCall};
use super::sandbox::SandboxOptions;
use super::task::{ItemResult, Metric, Task, TaskOptions, metric};
use super::toolparse::{decode_arguments, decode_serialized_arguments};
use super::{BenchError, BenchId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The scores of one completions file.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    #[serde(serialize_with = "bench_name")]
    pub bench: BenchId,
    /// Per item, in the benchmark's order.
    pub items: Vec<ItemResult>,
    /// Over the scored items.
    pub total: Metric,
    /// Items in the benchmark, scored or not.
    pub benchmark_items: usize,
}

fn bench_name<S: serde::Serializer>(b: &BenchId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.name())
}

/// Other fields (a prompt, a target) are ignored.
#[derive(Deserialize)]
struct Line {
    id: Value,
    completion: String,
    #[serde(default)]
    tool_calls: Option<Vec<OpenAiCall>>,
}

#[derive(Deserialize)]
struct OpenAiCall {
    function: OpenAiFunction,
}

#[derive(Deserialize)]
struct OpenAiFunction {
    name: String,
    arguments: Value,
}

/// Score `completions` against `bench`'s items in `data`.
pub fn score_completions(bench: BenchId, data: &Path, completions: &Path, opts: &TaskOptions) -> Result<ScoreReport, BenchError> {
    if bench.is_judged() {
        return Err(BenchError::Invalid(format!(
            "{bench} is scored by an LLM judge; `ptb bench score` scores the rule-scored benchmarks (aime2025, gsm8k, gpqamain, humaneval, bfcl)"
        )));
    }
    let mut task = Task::load(bench, data, opts)?;
    let all_ids = task.ids();
    let benchmark_items = all_ids.len();
    let known: HashMap<&str, usize> = all_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let text = std::fs::read_to_string(completions).map_err(|source| BenchError::Io { path: completions.to_path_buf(), source })?;
    let mut given: HashMap<String, (usize, Line)> = HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let err = |message: String| BenchError::Parse { path: completions.to_path_buf(), line: lineno, message };
        let line: Line = serde_json::from_str(raw).map_err(|e| err(format!("{e} (each line is {{\"id\": …, \"completion\": \"…\"}})")))?;
        // Ids are strings in results.jsonl; GSM8K's and AIME's are numbers
        // people also write as numbers.
        let id = match &line.id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(err(format!("`id` must be a string, not {other}"))),
        };
        if !known.contains_key(id.as_str()) {
            let example = all_ids.iter().take(3).map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
            return Err(err(format!("no {bench} item has id `{id}` ({bench}'s ids look like {example})")));
        }
        if let Some((first, _)) = given.get(&id) {
            return Err(err(format!("a second completion for item `{id}` (the first is on line {first})")));
        }
        given.insert(id, (lineno, line));
    }
    if given.is_empty() {
        return Err(BenchError::Invalid(format!("{} holds no completions", completions.display())));
    }
    task.retain(|id| given.contains_key(id));
    let outputs: Vec<ModelOutput> = task
        .ids()
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (_, line) = &given[id];
            match (&line.tool_calls, &task) {
                (Some(calls), Task::Bfcl(items)) => ModelOutput { completion: line.completion.clone(), tool_calls: tool_calls(calls, &items[i].first_params) },
                _ => task.output(i, &line.completion),
            }
        })
        .collect();
    let items = task.score(&outputs, &SandboxOptions::default())?;
    let total = metric(&items);
    Ok(ScoreReport { bench, items, total, benchmark_items })
}

/// Calls as a server returned them, with the arguments decoded as inspect
/// decodes them.
fn tool_calls(calls: &[OpenAiCall], first_params: &BTreeMap<String, String>) -> Vec<ToolCall> {
    calls
        .iter()
        .map(|c| {
            let name = &c.function.name;
            let arguments = match &c.function.arguments {
                Value::String(s) => decode_serialized_arguments(name, s, first_params),
                other => decode_arguments(name, other, first_params),
            };
            ToolCall { function: name.clone(), arguments }
        })
        .collect()
}
