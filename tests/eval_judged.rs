//! The judged benchmarks through `ptb apply`: an eval stage with
//! `llm-judge` generates with a real model (SmolLM2-135M, GGUF), asks an
//! OpenAI-compatible judge on 127.0.0.1 (started here) and records the
//! reference's metric. Real Arena-Hard questions with gemini-2.0-flash-001's
//! answers as the baseline, and real HealthBench rubrics
//! (scripts/bench/ci-setup.sh; the reference's Qwen3-1.7B baseline and
//! HealthBench-Easy file only come with the PostTrainBench repository).

use ptb_core::lock::Lockfile;
use ptb_core::store::MetricValue;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod judge_server;
use judge_server::*;

const KEY: &str = "sk-test-4b1d-judge-key";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn require(p: PathBuf, setup: &str) -> PathBuf {
    assert!(p.is_file(), "{} is missing: run {setup}", p.display());
    p
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn write_jsonl(path: &Path, rows: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
}

/// The judge this test plays: in Arena-Hard, assistant A always wins
/// slightly; in HealthBench, a criterion is met when it has positive points
/// and an even number of characters.
fn judge(body: &Value) -> Reply {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let is_arena = msgs.first().and_then(|m| m["content"].as_str()).is_some_and(|s| s.contains("impartial judge"));
    if is_arena {
        return ok("Both are fine; A flows better. My final verdict is [[A>B]]");
    }
    let prompt = msgs.last().and_then(|m| m["content"].as_str()).unwrap_or("");
    let rubric = prompt.split("# Rubric item\n").nth(1).and_then(|r| r.split("\n\n").next()).unwrap_or("");
    ok(&format!("```json\n{{\"explanation\": \"-\", \"criteria_met\": {}}}\n```", health_met(rubric)))
}

/// `rubric` is `[points] criterion`, as the grader prompt shows it.
fn health_met(rubric: &str) -> bool {
    let (points, criterion) = rubric.trim_start_matches('[').split_once("] ").unwrap_or(("0", ""));
    points.parse::<f64>().unwrap_or(0.0) > 0.0 && criterion.chars().count() % 2 == 0
}

struct Study {
    dir: tempfile::TempDir,
    health: Vec<Value>,
}

impl Study {
    fn new(judge_url: &str, judge_model: &str) -> Study {
        let gguf = std::env::var_os("PTB_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| root().join("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf"));
        let gguf = require(gguf, "scripts/eval/ci-setup.sh");
        let bench = root().join("data/bench");
        let questions = jsonl(&require(bench.join("arenahardwriting/arenahard_question.jsonl"), "scripts/bench/ci-setup.sh"));
        let baseline = require(bench.join("arenahardwriting/arenahard_baseline_gemini-2.0-flash-001.jsonl"), "scripts/bench/ci-setup.sh");
        let health = jsonl(&require(bench.join("healthbench/healthbench_pkg500.jsonl"), "scripts/bench/ci-setup.sh"));
        let aime = require(bench.join("aime2025/aime2025.jsonl"), "scripts/bench/ci-setup.sh");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Two creative-writing questions and the baseline's answers.
        let arena: Vec<Value> = questions.into_iter().filter(|q| q["category"] == "creative_writing").take(2).collect();
        write_jsonl(&d.join("data/arena/arenahard_question.jsonl"), &arena);
        std::fs::copy(baseline, d.join("data/arena/arenahard_baseline_gemini-2.0-flash-001.jsonl")).unwrap();
        let health: Vec<Value> = health.into_iter().take(2).collect();
        write_jsonl(&d.join("data/health/healthbench_easy245.jsonl"), &health);
        std::fs::create_dir_all(d.join("experiments")).unwrap();
        let s = Study { dir, health };
        s.write_spec(&gguf, &aime, judge_url, judge_model);
        s
    }

    fn write_spec(&self, gguf: &Path, aime: &Path, url: &str, model: &str) {
        let spec = format!(
            r#"experiment judged
model smollm2 path="{}" arch=llama
benchmark arenahardwriting data="../data/arena"
benchmark healthbench data="../data/health"
benchmark aime2025 data="{}"
agent base checkpoint=base
stage eval budget="20m" {{
    command "ptb" "eval" "--limit" "2" "--max-tokens" "6" "--arena-baseline" "gemini-2.0-flash-001"
    llm-judge url="{url}" model="{model}" api-key-env="PTB_TEST_JUDGE_KEY" concurrency=2
}}
matrix {{ seeds 1; }}
"#,
            gguf.display(),
            aime.display()
        );
        std::fs::write(self.dir.path().join("experiments/j.kdl"), spec).unwrap();
    }

    fn set_judge_model(&self, model: &str) {
        let p = self.dir.path().join("experiments/j.kdl");
        let text = std::fs::read_to_string(&p).unwrap();
        let old = text.split("model=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        std::fs::write(&p, text.replace(&format!("model=\"{old}\""), &format!("model=\"{model}\""))).unwrap();
    }

    fn ptb(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(self.dir.path()).env("PTB_TEST_JUDGE_KEY", KEY).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ptb(args);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "ptb {args:?} failed:\n{all}");
        all
    }

    fn lock(&self) -> Lockfile {
        Lockfile::load(&self.dir.path().join("lockfiles/judged.lock")).unwrap()
    }

    fn metric(&self, cell: &str, name: &str) -> f64 {
        match self.lock().stage(cell, "eval").unwrap_or_else(|| panic!("{cell} not recorded")).metrics.get(name) {
            Some(MetricValue::Number(x)) => *x,
            other => panic!("{cell}: no numeric {name}: {other:?}"),
        }
    }

    fn out(&self, cell: &str) -> PathBuf {
        self.dir.path().join("store").join(&self.lock().stage(cell, "eval").unwrap().path).join("out")
    }

    /// HealthBench's formula on what `judge` answers, computed here from the data.
    fn expected_health(&self) -> f64 {
        let per_example: Vec<f64> = self
            .health
            .iter()
            .map(|ex| {
                let rubrics = ex["rubrics"].as_array().unwrap();
                let possible: f64 = rubrics.iter().map(|r| r["points"].as_f64().unwrap()).filter(|p| *p > 0.0).sum();
                let achieved: f64 = rubrics
                    .iter()
                    .filter(|r| health_met(&format!("[{}] {}", r["points"].as_f64().unwrap(), r["criterion"].as_str().unwrap())))
                    .map(|r| r["points"].as_f64().unwrap())
                    .sum();
                achieved / possible
            })
            .collect();
        (per_example.iter().sum::<f64>() / per_example.len() as f64).clamp(0.0, 1.0)
    }
}

const ARENA: &str = "smollm2/arenahardwriting/base/seed=1";
const HEALTH: &str = "smollm2/healthbench/base/seed=1";
const AIME: &str = "smollm2/aime2025/base/seed=1";

#[test]
fn judged_benchmarks_are_scored_by_the_spec_judge_and_cached() {
    let srv = serve_for(400, Duration::from_secs(600), judge);
    let s = Study::new(&srv.url, "judge-a");
    s.ok(&["apply", "experiments/j.kdl"]);

    // Arena: "A>B" in both orders is one loss and one win per question.
    assert_eq!(s.metric(ARENA, "score"), 0.5);
    assert_eq!(s.metric(ARENA, "n"), 2.0);
    assert!((s.metric(HEALTH, "score") - s.expected_health()).abs() < 1e-12, "healthbench {} vs {}", s.metric(HEALTH, "score"), s.expected_health());
    assert_eq!(s.metric(HEALTH, "n"), 2.0);
    // Per-item results carry the judge's verdicts and the model's answers.
    let lines = jsonl(&s.out(ARENA).join("results.jsonl"));
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["answer"] == "A>B / A>B" && l["completion"].is_string()), "{lines:?}");
    // The judge saw the baseline's real answers, as assistant A in game 1.
    let baseline = jsonl(&s.dir.path().join("data/arena/arenahard_baseline_gemini-2.0-flash-001.jsonl"));
    let first_uid = lines[0]["id"].as_str().unwrap();
    let first_answer = baseline.iter().find(|b| b["uid"] == first_uid).unwrap()["messages"][1]["content"]["answer"].as_str().unwrap().to_string();

    // What the judge saw: the spec's model and key, the reference's parameters.
    let requests: Vec<Seen> = std::mem::take(&mut *srv.seen.lock().unwrap());
    let rubrics: usize = s.health.iter().map(|e| e["rubrics"].as_array().unwrap().len()).sum();
    assert_eq!(requests.len(), 4 + rubrics, "2 questions × 2 orders + one call per rubric item");
    assert!(
        requests.iter().any(|r| r.body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("<|The Start of Assistant A's Answer|>\n{}", first_answer.chars().take(200).collect::<String>()))),
        "no game shows the baseline's answer as A"
    );
    for r in &requests {
        assert_eq!(r.body["model"], "judge-a");
        assert_eq!(r.body["max_completion_tokens"], 49152);
        assert!(r.headers.iter().any(|h| h.to_ascii_lowercase() == format!("authorization: bearer {KEY}")), "{:?}", r.headers);
        let arena = r.body["messages"][0]["content"].as_str().unwrap_or("").contains("impartial judge");
        assert_eq!(r.body.get("reasoning_effort").cloned(), arena.then(|| json!("medium")), "reasoning_effort only for Arena-Hard");
    }
    // The key is a secret: in no file ptb wrote.
    for e in walkdir::WalkDir::new(s.dir.path()).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the judge's key is in {}", e.path().display());
    }

    // A different judge model reruns exactly the judged evals, and says why.
    s.set_judge_model("judge-b");
    let why = s.ok(&["why", "experiments/j.kdl", ARENA]);
    assert!(why.contains("input `llm_judge.model` changed: judge-a → judge-b"), "{why}");
    assert!(s.ok(&["why", "experiments/j.kdl", AIME]).contains("up to date"));
    let aime_before = s.lock().stage(AIME, "eval").unwrap().path.clone();
    s.ok(&["apply", "experiments/j.kdl"]);
    assert_eq!(s.lock().stage(AIME, "eval").unwrap().path, aime_before, "the AIME eval does not read the judge");
    assert!(srv.seen.lock().unwrap().iter().all(|r| r.body["model"] == "judge-b"));
    assert_eq!(srv.seen.lock().unwrap().len(), 4 + rubrics);

    // Rebuilding a judged eval asks nothing again: the replies are cached by request.
    srv.seen.lock().unwrap().clear();
    s.ok(&["apply", "experiments/j.kdl", "--replace", ARENA]);
    assert_eq!(srv.seen.lock().unwrap().len(), 0, "the rerun must be answered from the judge cache");
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(s.out(ARENA).join("metrics.json")).unwrap()).unwrap();
    assert_eq!((&metrics["judge_cached"], &metrics["judge_requested"]), (&json!(4), &json!(0)));
    assert_eq!(s.metric(ARENA, "score"), 0.5);
}

#[test]
fn a_judged_benchmark_without_a_judge_fails_before_generating() {
    let s = Study::new("http://127.0.0.1:9/v1", "judge-a");
    let p = s.dir.path().join("experiments/j.kdl");
    let text = std::fs::read_to_string(&p).unwrap();
    let text: String = text.lines().filter(|l| !l.contains("llm-judge")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    let o = s.ptb(&["apply", "experiments/j.kdl", "--cell", HEALTH]);
    assert!(!o.status.success());
    let log = std::fs::read_dir(s.dir.path().join("store/v1/failed"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path().join("log")).unwrap_or_default())
        .collect::<String>();
    assert!(log.contains("healthbench is scored by an LLM judge: add `llm-judge"), "{log}");
}

/// A judge that refuses the key: the judged evals fail (their logs say
/// why), no score is recorded for them, nothing is cached, and the next
/// apply runs them again; the unjudged AIME eval is unaffected.
#[test]
fn a_judge_outage_is_a_failed_stage_never_a_score() {
    let srv = serve_for(100, Duration::from_secs(600), |_| status(401));
    let s = Study::new(&srv.url, "judge-a");
    let o = s.ptb(&["apply", "experiments/j.kdl"]);
    assert!(!o.status.success(), "an apply whose judge is down must fail");
    let lock = s.lock();
    for cell in [ARENA, HEALTH] {
        let rec = lock.stage(cell, "eval").unwrap_or_else(|| panic!("{cell} not recorded"));
        assert_eq!(rec.status, ptb_core::status::StageStatus::Failed, "{cell}");
        assert!(!rec.metrics.contains_key("score"), "{cell} has a score: {:?}", rec.metrics);
        let log = std::fs::read_to_string(s.dir.path().join("store").join(&rec.path).join("log")).unwrap();
        assert!(log.contains("a judge request failed") && log.contains("HTTP 401"), "{cell}: {log}");
    }
    assert_eq!(s.lock().stage(AIME, "eval").unwrap().status, ptb_core::status::StageStatus::Success);
    let plan = s.ok(&["plan", "experiments/j.kdl"]);
    assert!(plan.contains("Plan: 2 to run, 1 cached"), "the failed evals must rerun: {plan}");
}
