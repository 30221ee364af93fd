//! Scoring the two judged benchmarks end to end: clean the model's answers,
//! ask the judge, parse its replies, and compute the reference's metric.

use super::BenchError;
use super::arena::{self, ArenaQuestion, ArenaScore, Battle};
use super::chat::Message;
use super::data;
use super::healthbench::{self, HealthExample, HealthScore};
use super::judge::JudgeClient;
use super::task::ItemResult;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// HealthBench re-asks the grader this many times for an unusable reply.
pub const GRADER_ATTEMPTS: u32 = 5;

/// `model`'s answers by uid, from an arena-hard `model_answer` file
/// (`messages[-1].content.answer`) named `arenahard_baseline_<model>.jsonl`.
/// The reference's baseline is [`arena::BASELINE_MODEL`].
pub fn load_arena_baseline(dir: &Path, model: &str) -> Result<HashMap<String, String>, BenchError> {
    let p = data::open_pinned(dir, super::BenchId::ArenaHardWriting, &format!("arenahard_baseline_{model}.jsonl"))?;
    let rows: Vec<Value> = data::read_jsonl(&p)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let uid = r.get("uid")?.as_str()?;
            let answer = r.get("messages")?.as_array()?.last()?.pointer("/content/answer")?.as_str()?;
            Some((uid.to_string(), answer.to_string()))
        })
        .collect())
}

/// Judge `candidate[i]` (raw model output) against the baseline on
/// `questions[i]`, both orders. A game whose request fails or whose reply has
/// no verdict leaves the question out, as in the reference.
pub fn judge_arena(
    client: &JudgeClient,
    questions: &[ArenaQuestion],
    baseline: &HashMap<String, String>,
    candidate: &[String],
) -> Result<(Vec<ItemResult>, ArenaScore, Vec<Battle>), BenchError> {
    if questions.len() != candidate.len() {
        return Err(BenchError::Invalid(format!("{} questions but {} answers", questions.len(), candidate.len())));
    }
    client.check_ready()?;
    let mut requests = Vec::with_capacity(questions.len() * 2);
    let mut judged = Vec::new();
    for (q, raw) in questions.iter().zip(candidate) {
        // The reference skips questions the baseline has no answer for.
        let Some(base) = baseline.get(&q.uid) else {
            continue;
        };
        let [g1, g2] = arena::judge_games(&q.prompt, base, &arena::prepare_answer(raw));
        requests.push(g1);
        requests.push(g2);
        judged.push(q);
    }
    // A request that failed (endpoint down, refused, out of retries) fails
    // the evaluation: a missing verdict would otherwise shrink the sample, or
    // with every request failed turn the outage into a score.
    let replies = client.complete_many(&requests).into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| judge_failed(requests.len(), e))?;
    let verdict = |i: usize| arena::parse_verdict(&replies[i].content);
    let battles: Vec<Battle> =
        judged.iter().enumerate().map(|(k, q)| Battle { uid: q.uid.clone(), game1: verdict(2 * k), game2: verdict(2 * k + 1) }).collect();
    let results = battles
        .iter()
        .filter_map(|b| {
            let s = arena::battle_scores(b)?;
            Some(ItemResult {
                id: b.uid.clone(),
                score: s.iter().sum::<f64>() / s.len() as f64,
                answer: format!("{} / {}", b.game1.as_deref().unwrap_or("-"), b.game2.as_deref().unwrap_or("-")),
            })
        })
        .collect();
    // The reference drops a question whose games have no verdict; a judge
    // that never once answered in the verdict format is broken, not strict.
    if !battles.is_empty() && battles.iter().all(|b| b.game1.is_none() && b.game2.is_none()) {
        return Err(BenchError::Judge(format!(
            "none of the judge's {} replies has a verdict ([[A>B]] and the like): check its model and prompt",
            replies.len()
        )));
    }
    Ok((results, arena::aggregate(&battles), battles))
}

fn judge_failed(asked: usize, e: BenchError) -> BenchError {
    BenchError::Judge(format!("a judge request failed, so the evaluation has no score (of {asked} requests): {e}"))
}

/// Grade `candidate[i]` on `examples[i]`, one grader call per rubric item;
/// an item whose replies stay unusable after `GRADER_ATTEMPTS` counts as not
/// met, as in the reference.
pub fn grade_healthbench(client: &JudgeClient, examples: &[HealthExample], candidate: &[String]) -> Result<(Vec<ItemResult>, HealthScore), BenchError> {
    if examples.len() != candidate.len() {
        return Err(BenchError::Invalid(format!("{} examples but {} answers", examples.len(), candidate.len())));
    }
    client.check_ready()?;
    let mut slots = Vec::new();
    let mut requests = Vec::new();
    for (e, (ex, raw)) in examples.iter().zip(candidate).enumerate() {
        let answer = healthbench::prepare_answer(raw);
        for (r, item) in ex.rubrics.iter().enumerate() {
            slots.push((e, r));
            requests.push(vec![Message::user(healthbench::grader_prompt(&ex.prompt, &answer, item))]);
        }
    }
    let mut met: Vec<Option<bool>> = vec![None; requests.len()];
    for attempt in 0..GRADER_ATTEMPTS {
        let pending: Vec<usize> = (0..requests.len()).filter(|&i| met[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let batch: Vec<Vec<Message>> = pending.iter().map(|&i| requests[i].clone()).collect();
        for (i, reply) in pending.into_iter().zip(client.complete_many_attempt(&batch, attempt)) {
            // A failed request fails the evaluation (see judge_arena); an
            // unusable reply is asked again, as in the reference.
            let reply = reply.map_err(|e| judge_failed(requests.len(), e))?;
            met[i] = healthbench::parse_grader_reply(&reply.content);
        }
    }
    if !met.is_empty() && met.iter().all(Option::is_none) {
        return Err(BenchError::Judge(format!(
            "none of the grader's replies to {} rubric items, asked {GRADER_ATTEMPTS} times each, has `criteria_met`: check its model and prompt",
            met.len()
        )));
    }
    let mut per_example: Vec<Vec<bool>> = examples.iter().map(|ex| vec![false; ex.rubrics.len()]).collect();
    for ((e, r), m) in slots.into_iter().zip(met) {
        per_example[e][r] = m.unwrap_or(false);
    }
    let results: Vec<ItemResult> = examples
        .iter()
        .zip(&per_example)
        .map(|(ex, m)| ItemResult {
            id: ex.prompt_id.clone(),
            score: healthbench::example_score(&ex.rubrics, m),
            answer: m.iter().map(|b| if *b { '1' } else { '0' }).collect(),
        })
        .collect();
    let scores: Vec<f64> = results.iter().map(|r| r.score).collect();
    Ok((results, healthbench::aggregate(&scores)))
}
