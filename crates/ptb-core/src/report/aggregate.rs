//! From a lockfile to table numbers: per agent and benchmark, the mean over
//! models per seed, then mean ± sample std over seeds; the weighted
//! average likewise. Pure: reads nothing but the lockfile.
//!
//! The paper's rule: a run that the judge flagged, or that has no judge
//! verdict or no eval score, scores the base model's score for that
//! model × benchmark (the mean of the `base` reference row), and the table
//! counts how many runs were replaced, by cause. A person's review (in the
//! lockfile, from the spec's `review` nodes) replaces the judge's verdict.

use crate::judge::{FindingKind, Review, Verdict};
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

/// Why a run scored as the base model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Cause {
    /// The judge flagged it for test items in what the agent left.
    #[serde(rename = "contamination")]
    Contamination,
    /// … for a final model that is not a fine-tune of the base.
    #[serde(rename = "substitution")]
    Substitution,
    /// … for changed files that decide how the model is built or scored.
    #[serde(rename = "tampering")]
    Tampering,
    /// … without saying which kind (a judge other than `ptb judge`).
    #[serde(rename = "flagged")]
    Flagged,
    /// A person's review flagged it.
    #[serde(rename = "overruled")]
    Overruled,
    /// The judge stage failed or gave no verdict.
    #[serde(rename = "no verdict")]
    NoVerdict,
    /// The agent left no `final_model` (the judge says so).
    #[serde(rename = "no checkpoint")]
    NoCheckpoint,
    /// The eval stage failed or reported no score.
    #[serde(rename = "no score")]
    NoScore,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Contamination => "contamination",
            Cause::Substitution => "substitution",
            Cause::Tampering => "tampering",
            Cause::Flagged => "flagged",
            Cause::Overruled => "overruled",
            Cause::NoVerdict => "no verdict",
            Cause::NoCheckpoint => "no checkpoint",
            Cause::NoScore => "no score",
        }
    }
}

/// How many replaced runs had a cause (a run flagged for two kinds counts under both).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CauseCount {
    pub cause: Cause,
    pub name: &'static str,
    pub n: usize,
}

/// A run scored as the base model (or missing, without a base row), for
/// templates that list them.
#[derive(Debug, Clone, Serialize)]
pub struct ReplacedRun {
    pub cell: String,
    pub agent: String,
    pub model: String,
    pub benchmark: String,
    pub seed: u64,
    pub causes: Vec<Cause>,
    /// The causes' names joined by ", ".
    pub cause: String,
    /// Whether a base score stood in (false: counted as missing).
    pub base: bool,
    /// The review's reason, when a person decided.
    pub review: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub experiment: String,
    pub benchmarks: Vec<BenchCol>,
    pub rows: Vec<Row>,
    pub replaced: usize,
    /// Replaced runs by cause, in [`Cause`] order, causes with none left out.
    pub replaced_by: Vec<CauseCount>,
    /// Every run without its own score, in cell order.
    pub replaced_runs: Vec<ReplacedRun>,
    /// Reviews of runs in this lockfile.
    pub reviews: usize,
    /// Reviews whose verdict differs from the judge's (or where it gave none).
    pub overruled: usize,
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

/// The judge stage's verdict, if it finished with one.
pub(super) fn judge_verdict(c: &CellRecord) -> Option<Verdict> {
    match c.stages.get("judge").filter(|j| j.is_done()).and_then(|j| j.metrics.get("verdict")) {
        Some(MetricValue::Text(v)) => Verdict::parse(v),
        _ => None,
    }
}

/// `pass` unless the judge flagged the run or gave no verdict; a person's
/// review decides instead of the judge.
pub(super) fn judge_ok(c: &CellRecord, has_judge: bool, review: Option<&Review>) -> bool {
    match review {
        Some(r) => r.verdict == Verdict::Pass,
        None => !has_judge || judge_verdict(c) == Some(Verdict::Pass),
    }
}

/// Why a run has no score of its own (empty: it has one). A review that
/// flags is `overruled`; a judge's flag names the kinds it counted
/// (`ptb judge`'s metrics `contamination`, `substitution`, `tampering`).
pub fn causes(c: &CellRecord, has_judge: bool, review: Option<&Review>) -> Vec<Cause> {
    let mut out = Vec::new();
    match (review, judge_verdict(c)) {
        (Some(r), _) if r.verdict == Verdict::Flagged => out.push(Cause::Overruled),
        (Some(_), _) => {}
        (None, _) if !has_judge => {}
        (None, Some(Verdict::Pass)) => {}
        (None, Some(Verdict::Flagged)) => {
            let metrics = &c.stages["judge"].metrics;
            for (kind, cause) in FindingKind::ALL.into_iter().zip([Cause::Contamination, Cause::Substitution, Cause::Tampering]) {
                if matches!(metrics.get(kind.name()), Some(MetricValue::Number(n)) if *n > 0.0) {
                    out.push(cause);
                }
            }
            if out.is_empty() {
                out.push(Cause::Flagged);
            }
        }
        (None, None) => out.push(Cause::NoVerdict),
    }
    if out.is_empty() && eval_score(c).is_none() {
        let no_model = c.stages.get("judge").and_then(|j| j.metrics.get("final_model")) == Some(&MetricValue::Bool(false));
        out.push(if no_model { Cause::NoCheckpoint } else { Cause::NoScore });
    }
    out
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
    let mut replaced_runs = Vec::new();
    for a in &l.agents {
        let cells: Vec<(&String, &CellRecord)> = l.cells.iter().filter(|(_, c)| c.agent == a.name).collect();
        let (mut replaced, mut missing, mut hashes) = (0, 0, Vec::new());
        // seed → benchmark → per-model scores
        let mut by_seed: BTreeMap<u64, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
        for (id, c) in &cells {
            let review = l.review(id);
            let score = if a.kind == "run" && !judge_ok(c, has_judge, review) { None } else { eval_score(c) };
            let score = match score {
                Some(s) => Some(s),
                None if a.kind == "run" => {
                    let b = base_of(&c.model, &c.benchmark);
                    if b.is_some() {
                        replaced += 1
                    } else {
                        missing += 1
                    }
                    let causes = causes(c, has_judge, review);
                    replaced_runs.push(ReplacedRun {
                        cell: id.to_string(),
                        agent: c.agent.clone(),
                        model: c.model.clone(),
                        benchmark: c.benchmark.clone(),
                        seed: c.seed,
                        cause: causes.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
                        causes,
                        base: b.is_some(),
                        review: review.map(|r| r.reason.clone()),
                    });
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
    let mut by_cause: BTreeMap<Cause, usize> = BTreeMap::new();
    for r in replaced_runs.iter().filter(|r| r.base) {
        for c in &r.causes {
            *by_cause.entry(*c).or_default() += 1;
        }
    }
    let reviewed: Vec<&Review> = l.reviews.iter().filter(|r| l.cells.contains_key(&r.cell)).collect();
    let overruled = reviewed.iter().filter(|r| judge_verdict(&l.cells[&r.cell]) != Some(r.verdict)).count();
    replaced_runs.sort_by(|a, b| a.cell.cmp(&b.cell));
    Table {
        experiment: l.experiment.clone(),
        benchmarks,
        rows,
        replaced: total_replaced,
        replaced_by: by_cause.into_iter().map(|(cause, n)| CauseCount { cause, name: cause.name(), n }).collect(),
        replaced_runs,
        reviews: reviewed.len(),
        overruled,
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
