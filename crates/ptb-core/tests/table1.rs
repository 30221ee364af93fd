//! The paper's Table 1 from a lockfile: a lockfile holding the published
//! per-benchmark scores renders the published averages, and the judge rule
//! replaces flagged runs with the base model's score.

use ptb_core::lock::{AgentInfo, BenchmarkInfo, CellRecord, Lockfile, StageRecord};
use ptb_core::report::synthetic::{BENCHES, MODELS};
use ptb_core::store::MetricValue;
use std::collections::BTreeMap;

// Table 1 of the paper (../shared/SEEDS.md), percent.
const INSTRUCT: [f64; 7] = [29.2, 70.2, 85.0, 36.2, 87.0, 43.3, 71.5];
const OPUS: [f64; 7] = [5.0, 7.8, 75.9, 25.5, 41.0, 18.8, 24.7];
const BASE: [f64; 7] = [1.7, 1.3, 1.5, 8.5, 20.4, 9.5, 12.8];

fn stage(key: String, metrics: BTreeMap<String, MetricValue>) -> StageRecord {
    StageRecord {
        key,
        status: ptb_core::status::StageStatus::Success,
        path: "v1/x".into(),
        started: String::new(),
        finished: String::new(),
        duration_s: 0.0,
        exit_code: Some(0),
        metrics,
        inputs: BTreeMap::new(),
    }
}

/// Every model scores the row's value; seeds spread it by ±`spread` so the
/// mean over seeds is the published value.
fn lockfile(flag: Option<(&str, &str, u64)>) -> Lockfile {
    let mut l = Lockfile {
        experiment: "paper".into(),
        ptb_version: "test".into(),
        models: MODELS.iter().map(|m| m.to_string()).collect(),
        benchmarks: BENCHES.iter().map(|(b, w)| BenchmarkInfo { name: b.to_string(), weight: Some(*w) }).collect(),
        agents: vec![
            AgentInfo { name: "claude-opus-4.6".into(), kind: "run".into() },
            AgentInfo { name: "instruct".into(), kind: "instruct".into() },
            AgentInfo { name: "base".into(), kind: "base".into() },
        ],
        ..Default::default()
    };
    let mut n = 0;
    for (agent, scores, seeds) in [("claude-opus-4.6", OPUS, vec![1, 2, 3]), ("instruct", INSTRUCT, vec![1]), ("base", BASE, vec![1])] {
        for m in MODELS {
            for (bi, (b, _)) in BENCHES.iter().enumerate() {
                for &seed in &seeds {
                    n += 1;
                    let spread = if seeds.len() > 1 { (seed as f64 - 2.0) * 1.5 } else { 0.0 };
                    let mut stages = BTreeMap::new();
                    stages.insert(
                        "eval".to_string(),
                        stage(format!("{n:064}"), [("score".to_string(), MetricValue::Number((scores[bi] + spread) / 100.0))].into()),
                    );
                    if agent == "claude-opus-4.6" {
                        let flagged = flag == Some((m, b, seed));
                        let verdict = if flagged { "flagged" } else { "pass" };
                        stages.insert("judge".to_string(), stage(format!("j{n:063}"), [("verdict".to_string(), MetricValue::Text(verdict.into()))].into()));
                    }
                    l.cells.insert(
                        format!("{m}/{b}/{agent}/seed={seed}"),
                        CellRecord { model: m.into(), benchmark: b.to_string(), agent: agent.into(), seed, stages },
                    );
                }
            }
        }
    }
    l
}

fn render(l: &Lockfile, template: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("paper.lock");
    l.save(&lock).unwrap();
    ptb_core::report::render(&lock, &std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("templates").join(template)).unwrap()
}

fn row<'a>(table: &'a str, label: &str) -> Vec<&'a str> {
    let line = table.lines().find(|l| l.starts_with(&format!("| {label} |"))).unwrap_or_else(|| panic!("no row {label} in\n{table}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn published_scores_render_the_published_averages() {
    let t = render(&lockfile(None), "table1.md.j2");
    assert_eq!(row(&t, "Official instruct")[1], "51.1", "{t}");
    assert_eq!(row(&t, "Base, zero-shot")[1], "7.5", "{t}");
    // The paper prints 23.2 ± 1.8 for Opus 4.6, computed from unrounded
    // per-run scores; from its rounded per-benchmark columns the weighted
    // average is 23.146 by linearity, which prints as 23.1 (rounding each of
    // the seven columns moves it by up to 0.05, so 23.2 is consistent).
    let opus = row(&t, "claude-opus-4.6");
    assert!(opus[1].starts_with("23.1 ± "), "{t}");
    assert_eq!(&opus[2..], ["5.0", "7.8", "75.9", "25.5", "41.0", "18.8", "24.7"]);
    assert!(t.contains("0 run(s) flagged"), "{t}");
    let tex = render(&lockfile(None), "table1.tex.j2");
    assert!(tex.contains("Official instruct & 51.1 & 29.2 & 70.2"), "{tex}");
}

#[test]
fn a_flagged_run_scores_the_base_model() {
    let t = render(&lockfile(Some(("qwen3-4b", "bfcl", 2))), "table1.md.j2");
    assert!(t.contains("1 run(s) flagged"), "{t}");
    // BFCL: one of 12 runs drops from 75.9 (+0 spread at seed 2) to the base 1.5.
    let bfcl = row(&t, "claude-opus-4.6")[4].parse::<f64>().unwrap();
    let expected = 75.9 - (75.9 - 1.5) / 12.0;
    assert!((bfcl - expected).abs() < 0.051, "BFCL {bfcl}, expected {expected:.2}\n{t}");
}
