//! A paper-shaped synthetic lockfile for report tests and benches: 4 models ×
//! 7 benchmarks (the paper's weights) × 12 agents (10 CLI agents, official
//! instruct, base) × 3 seeds = 1,008 cells, with deterministic pseudo-random
//! scores, GPU resources, API costs, and some runs the judge flagged, whose
//! agent failed, or that left no checkpoint (no judge or eval stage).

use crate::lock::{AgentInfo, BenchmarkInfo, CellRecord, Lockfile, StageRecord};
use crate::status::StageStatus;
use crate::store::MetricValue;
use std::collections::BTreeMap;

pub const MODELS: [&str; 4] = ["qwen3-1.7b", "qwen3-4b", "smollm3-3b", "gemma-3-4b"];
pub const BENCHES: [(&str, f64); 7] = [
    ("aime2025", 0.2265),
    ("arenahardwriting", 0.0904),
    ("bfcl", 0.0746),
    ("gpqamain", 0.2246),
    ("gsm8k", 0.0936),
    ("healthbench", 0.1841),
    ("humaneval", 0.1061),
];
/// Table 1 of the paper, percent: official instruct and base, zero-shot.
const INSTRUCT: [f64; 7] = [29.2, 70.2, 85.0, 36.2, 87.0, 43.3, 71.5];
const BASE: [f64; 7] = [1.7, 1.3, 1.5, 8.5, 20.4, 9.5, 12.8];

fn stage(key: String, status: StageStatus, path: String, duration_s: f64, gpus: u32, metrics: BTreeMap<String, MetricValue>) -> StageRecord {
    StageRecord {
        key,
        status,
        path,
        started: "2026-11-23T10:00:00Z".into(),
        finished: "2026-11-23T20:00:00Z".into(),
        duration_s,
        exit_code: Some(if status == StageStatus::Failed { 1 } else { 0 }),
        metrics,
        inputs: [("resources.gpus".to_string(), gpus.to_string())].into(),
    }
}

fn m(pairs: &[(&str, MetricValue)]) -> BTreeMap<String, MetricValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Which cells are special, by running index over run-agent cells.
pub fn is_flagged(i: usize) -> bool {
    i % 17 == 5
}
pub fn is_failed(i: usize) -> bool {
    i % 41 == 7
}
pub fn is_no_checkpoint(i: usize) -> bool {
    i % 53 == 11
}

pub fn paper_lockfile() -> Lockfile {
    let run_agents: Vec<String> = (0..10).map(|a| format!("agent{a}")).collect();
    let mut l = Lockfile {
        experiment: "paper".into(),
        ptb_version: "0.1.0".into(),
        models: MODELS.iter().map(|m| m.to_string()).collect(),
        benchmarks: BENCHES.iter().map(|(b, w)| BenchmarkInfo { name: b.to_string(), weight: Some(*w) }).collect(),
        agents: run_agents
            .iter()
            .map(|a| AgentInfo { name: a.clone(), kind: "run".into() })
            .chain([AgentInfo { name: "instruct".into(), kind: "instruct".into() }, AgentInfo { name: "base".into(), kind: "base".into() }])
            .collect(),
        pins: MODELS.iter().map(|m| (format!("model/{m}"), format!("sha256:{:064x}", m.len()))).collect(),
        reviews: Vec::new(),
        hub: BTreeMap::new(),
        cells: BTreeMap::new(),
    };
    let mut rng = crate::rng::SplitMix64::new(0x9E3779B97F4A7C15);
    let (mut n, mut run_i) = (0usize, 0usize);
    let key = |n: &mut usize| {
        *n += 1;
        format!("{:064x}", (*n as u128) * 0x9E3779B97F4A7C15u128)
    };
    for (ai, agent) in l.agents.clone().iter().enumerate() {
        for model in MODELS {
            for (bi, (bench, _)) in BENCHES.iter().enumerate() {
                for seed in 1..=3u64 {
                    let id = format!("{model}/{bench}/{}/seed={seed}", agent.name);
                    let slug = id.replace(['/', '='], "-");
                    let mut stages = BTreeMap::new();
                    let skill = match agent.kind.as_str() {
                        "instruct" => INSTRUCT[bi],
                        "base" => BASE[bi],
                        _ => BASE[bi] + (INSTRUCT[bi] - BASE[bi]) * (0.1 + 0.08 * ai as f64),
                    };
                    let score = ((skill + (rng.next_f64() - 0.5) * 6.0) / 100.0).clamp(0.0, 1.0);
                    let eval = |k: String, s: f64| {
                        stage(k.clone(), StageStatus::Success, format!("v1/{}-{slug}-eval", &k[..32]), 600.0, 1, m(&[("score", MetricValue::Number(s))]))
                    };
                    if agent.kind == "run" {
                        let i = run_i;
                        run_i += 1;
                        let k = key(&mut n);
                        let dur = 3600.0 + rng.next_f64() * 32400.0;
                        let cost = 35.0 + rng.next_f64() * 200.0;
                        if is_failed(i) {
                            stages.insert(
                                "agent".into(),
                                stage(k.clone(), StageStatus::Failed, format!("v1/failed/{}-{slug}-agent-20261123T100000", &k[..32]), dur, 1, m(&[])),
                            );
                        } else {
                            stages.insert(
                                "agent".into(),
                                stage(
                                    k.clone(),
                                    StageStatus::Success,
                                    format!("v1/{}-{slug}-agent", &k[..32]),
                                    dur,
                                    1,
                                    m(&[("cost_usd", MetricValue::Number((cost * 100.0).round() / 100.0))]),
                                ),
                            );
                            if !is_no_checkpoint(i) {
                                let (verdict, reason) = if is_flagged(i) {
                                    ("flagged", format!("contamination: trained on {bench} test items"))
                                } else {
                                    ("pass", "checkpoint derives from the base model".to_string())
                                };
                                let k = key(&mut n);
                                stages.insert(
                                    "judge".into(),
                                    stage(
                                        k.clone(),
                                        StageStatus::Success,
                                        format!("v1/{}-{slug}-judge", &k[..32]),
                                        120.0,
                                        0,
                                        m(&[("reason", MetricValue::Text(reason)), ("verdict", MetricValue::Text(verdict.into()))]),
                                    ),
                                );
                                let k = key(&mut n);
                                stages.insert("eval".into(), eval(k, score));
                            }
                        }
                    } else {
                        let k = key(&mut n);
                        stages.insert("eval".into(), eval(k, score));
                    }
                    l.cells.insert(id, CellRecord { model: model.into(), benchmark: bench.to_string(), agent: agent.name.clone(), seed, stages });
                }
            }
        }
    }
    l
}
