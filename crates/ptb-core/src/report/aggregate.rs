//! From a lockfile to table numbers: per agent and benchmark, the mean over
//! models per seed, then mean ± sample std over seeds; the weighted
//! average likewise. Pure: reads nothing but the lockfile.
//!
//! The paper's rule: a run that the judge flagged, or that has no judge
//! verdict or no eval score, scores the base model's score for that
//! model × benchmark (the mean of the `base` reference row), and the table
//! counts how many runs were replaced.

use crate::lock::{CellRecord, Lockfile};
use crate::store::MetricValue;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stat {
    /// Percent.
    pub mean: f64,
    /// Sample standard deviation over seeds; `None` with fewer than 2.
    pub std: Option<f64>,
    /// Number of seeds.
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub agent: String,
    pub kind: String,
    pub avg: Option<Stat>,
    /// By benchmark name.
    pub scores: BTreeMap<String, Stat>,
    /// Runs whose score was replaced by the base model's.
    pub replaced: usize,
    /// Runs with no usable score at all (no base row to fall back on).
    pub missing: usize,
    /// Short eval keys of the cells behind this row.
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub experiment: String,
    pub benchmarks: Vec<BenchCol>,
    pub rows: Vec<Row>,
    pub replaced: usize,
    pub cells: usize,
    /// Short hash over every cell's eval key: changes if any input does.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchCol {
    pub name: String,
    /// Normalised to sum to 1 over the benchmarks.
    pub weight: f64,
}

/// The score of a cell's eval stage in [0, 1], from `score` (or `accuracy`,
/// the reference harness's key).
pub(super) fn eval_score(c: &CellRecord) -> Option<f64> {
    let e = c.stages.get("eval").filter(|e| e.is_done())?;
    ["score", "accuracy"].iter().find_map(|k| match e.metrics.get(*k) {
        Some(MetricValue::Number(x)) if x.is_finite() => Some(*x),
        _ => None,
    })
}

/// `pass` unless the judge flagged the run or gave no verdict.
pub(super) fn judge_ok(c: &CellRecord, has_judge: bool) -> bool {
    if !has_judge {
        return true;
    }
    match c.stages.get("judge").filter(|j| j.is_done()).and_then(|j| j.metrics.get("verdict")) {
        Some(MetricValue::Text(v)) => v == "pass",
        _ => false,
    }
}

fn stat(xs: &[f64]) -> Option<Stat> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let std = (n > 1).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    Some(Stat { mean, std, n })
}

pub fn aggregate(l: &Lockfile) -> Table {
    let has_judge = l.cells.values().any(|c| c.stages.contains_key("judge"));
    let raw_w: Vec<Option<f64>> = l.benchmarks.iter().map(|b| b.weight).collect();
    let weights: Vec<f64> = if raw_w.iter().all(Option::is_some) && raw_w.iter().flatten().sum::<f64>() > 0.0 {
        let s: f64 = raw_w.iter().flatten().sum();
        raw_w.iter().map(|w| w.unwrap_or(0.0) / s).collect()
    } else {
        vec![1.0 / l.benchmarks.len().max(1) as f64; l.benchmarks.len()]
    };
    let benchmarks: Vec<BenchCol> = l.benchmarks.iter().zip(&weights).map(|(b, w)| BenchCol { name: b.name.clone(), weight: *w }).collect();

    // Base model's score per (model, benchmark): mean over the base row's seeds.
    let mut base: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for c in l.cells.values() {
        if l.agents.iter().any(|a| a.name == c.agent && a.kind == "base")
            && let Some(s) = eval_score(c)
        {
            base.entry((&c.model, &c.benchmark)).or_default().push(s);
        }
    }
    let base_of = |m: &str, b: &str| base.get(&(m, b)).map(|v| v.iter().sum::<f64>() / v.len() as f64);

    let mut rows = Vec::new();
    let mut total_replaced = 0;
    let mut digest_input = String::new();
    for a in &l.agents {
        let cells: Vec<&CellRecord> = l.cells.values().filter(|c| c.agent == a.name).collect();
        let (mut replaced, mut missing, mut hashes) = (0, 0, Vec::new());
        // seed → benchmark → per-model scores
        let mut by_seed: BTreeMap<u64, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
        for c in &cells {
            let score = if a.kind == "run" && !judge_ok(c, has_judge) { None } else { eval_score(c) };
            let score = match score {
                Some(s) => Some(s),
                None if a.kind == "run" => {
                    let b = base_of(&c.model, &c.benchmark);
                    if b.is_some() {
                        replaced += 1
                    } else {
                        missing += 1
                    }
                    b
                }
                None => {
                    missing += 1;
                    None
                }
            };
            if let Some(e) = c.stages.get("eval") {
                hashes.push(e.key[..12.min(e.key.len())].to_string());
                digest_input.push_str(&e.key);
            }
            if let Some(s) = score {
                by_seed.entry(c.seed).or_default().entry(&c.benchmark).or_default().push(s * 100.0);
            }
        }
        let mut scores = BTreeMap::new();
        for b in &benchmarks {
            let per_seed: Vec<f64> = by_seed.values().filter_map(|m| m.get(b.name.as_str())).map(|v| v.iter().sum::<f64>() / v.len() as f64).collect();
            if let Some(s) = stat(&per_seed) {
                scores.insert(b.name.clone(), s);
            }
        }
        // The weighted average per seed, over seeds that scored every benchmark.
        let avgs: Vec<f64> = by_seed
            .values()
            .filter(|m| benchmarks.iter().all(|b| m.contains_key(b.name.as_str())))
            .map(|m| benchmarks.iter().map(|b| b.weight * m[b.name.as_str()].iter().sum::<f64>() / m[b.name.as_str()].len() as f64).sum())
            .collect();
        total_replaced += replaced;
        hashes.sort();
        rows.push(Row { agent: a.name.clone(), kind: a.kind.clone(), avg: stat(&avgs), scores, replaced, missing, hashes });
    }
    Table {
        experiment: l.experiment.clone(),
        benchmarks,
        rows,
        replaced: total_replaced,
        cells: l.cells.len(),
        digest: crate::hash::sha256_hex(digest_input.as_bytes())[..12].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sample_std() {
        let s = stat(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.std, Some(1.0));
        assert_eq!(stat(&[5.0]).unwrap().std, None);
    }
}
