//! The eval stage's view: load items, build requests, score outputs into
//! per-item results and the metric the lockfile records.

mod bench_common;
use ptb_bench::BenchId;
use ptb_bench::bfcl::{self, Category};
use ptb_bench::chat::{ModelOutput, ToolCall};
use ptb_bench::sandbox::SandboxOptions;
use ptb_bench::task::{Task, TaskOptions, metric};
use std::path::{Path, PathBuf};

fn data() -> Option<PathBuf> {
    bench_common::fetched_data(&["aime2025/aime2025.jsonl"])
}

fn text(s: String) -> ModelOutput {
    ModelOutput { completion: s, tool_calls: vec![] }
}

#[test]
fn aime_half_right_scores_one_half_with_inspect_stderr() {
    let Some(dir) = data() else { return };
    let task = Task::load(BenchId::Aime2025, &dir, &TaskOptions::default()).unwrap();
    let items = task.items();
    assert_eq!(items.len(), 30);
    let Task::Aime(gold) = &task else { panic!("aime task") };
    // Even items right (a wrong number inside <think> must not count), odd ones wrong.
    let outputs: Vec<ModelOutput> = gold
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let n: i64 = g.target.parse().unwrap();
            if i % 2 == 0 { text(format!("<think>maybe {}</think>\nANSWER: {n}", n + 3)) } else { text(format!("ANSWER: {}", n + 1)) }
        })
        .collect();
    let results = task.score(&outputs, &SandboxOptions::default()).unwrap();
    let m = metric(&results);
    assert_eq!((m.accuracy, m.n), (0.5, 30));
    // sd(ddof=1) of fifteen 1s and fifteen 0s is sqrt(30/116); stderr = that / sqrt(30).
    assert!((m.stderr - (30.0f64 / 116.0).sqrt() / 30f64.sqrt()).abs() < 1e-12, "{}", m.stderr);
    assert_eq!(results[0].answer, gold[0].target);
    assert!(task.score(&outputs[..3], &SandboxOptions::default()).is_err(), "output count must match");
}

#[test]
fn bfcl_exec_simple_scores_tool_calls() {
    let Some(dir) = data() else { return };
    let task = Task::load(BenchId::Bfcl, &dir, &TaskOptions::default()).unwrap();
    let Task::Bfcl(items) = &task else { panic!("bfcl task") };
    assert!(items.iter().all(|i| i.category == Category::ExecSimple));
    let outputs: Vec<ModelOutput> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut o = bfcl::reference_output(it);
            if i % 4 == 0 {
                // Two calls: the reference requires exactly one.
                let extra: ToolCall = o.tool_calls[0].clone();
                o.tool_calls.push(extra);
            }
            o
        })
        .collect();
    let results = task.score(&outputs, &SandboxOptions::default()).unwrap();
    assert_eq!(metric(&results).accuracy, 0.75);
    assert!(results[0].answer.contains("expected exactly 1 tool call"), "{}", results[0].answer);
}

#[test]
fn gpqa_from_user_csv_with_recorded_seed() {
    let opts = TaskOptions { gpqa_csv: Some(Path::new("tests/fixtures/bench/gpqa_fixture.csv").into()), ..TaskOptions::default() };
    let task = Task::load(BenchId::GpqaMain, Path::new("/nonexistent"), &opts).unwrap();
    let Task::Gpqa(v) = &task else { panic!("gpqa task") };
    let outputs: Vec<ModelOutput> = v.iter().map(|(_, p)| text(format!("Thinking.\nANSWER: {}", p.target))).collect();
    let results = task.score(&outputs, &SandboxOptions::default()).unwrap();
    assert_eq!(metric(&results).accuracy, 1.0);
    let again = Task::load(BenchId::GpqaMain, Path::new("/nonexistent"), &opts).unwrap();
    assert_eq!(task.items(), again.items(), "same seed, same prompts");
}

#[test]
fn judged_benchmarks_are_not_auto_scored() {
    let err = Task::load(BenchId::HealthBench, Path::new("."), &TaskOptions::default()).err().unwrap();
    assert!(err.to_string().contains("LLM judge"));
}

#[test]
fn a_benchmark_directory_and_the_data_root_load_the_same_items() {
    let Some(root) = data() else { return };
    let from_root = Task::load(BenchId::Gsm8k, &root, &TaskOptions::default()).unwrap();
    let from_dir = Task::load(BenchId::Gsm8k, &root.join("gsm8k"), &TaskOptions::default()).unwrap();
    assert_eq!(from_root.items().len(), 1319);
    assert_eq!(from_root.items(), from_dir.items());
    // Each benchmark's directory pins its own files, so a spec pinning it
    // hashes exactly what the loader reads.
    let sums = std::fs::read_to_string(root.join("gsm8k/SHA256SUMS")).unwrap();
    let names: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(names, ["gsm8k_fewshot.jsonl", "gsm8k_test.jsonl"]);
}
