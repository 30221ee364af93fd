//! `ptb bench check` on the real benchmark data: every scorer accepts the
//! benchmark's own reference answers and rejects corrupted ones.

mod bench_common;
use bench_common::{figure, run_check};
use ptb_bench::BenchId;
use std::path::Path;
use std::process::Command;

#[test]
fn gsm8k_gold_answers_all_accepted() {
    let Some(r) = run_check(BenchId::Gsm8k, None) else {
        return;
    };
    assert_eq!(figure(&r, "gold solutions accepted"), "1319/1319", "{r}");
    assert_eq!(figure(&r, "off-by-one answers rejected"), "1319/1319", "{r}");
    assert!(r.ok(), "{r}");
}

#[test]
fn aime_gold_answers_all_accepted() {
    let Some(r) = run_check(BenchId::Aime2025, None) else {
        return;
    };
    assert_eq!(figure(&r, "ANSWER: line"), "30/30", "{r}");
    assert_eq!(figure(&r, "boxed"), "30/30", "{r}");
    assert_eq!(figure(&r, "rejected"), "30/30", "{r}");
    assert!(r.to_string().ends_with(&format!("aime2025: PASS in {:.1}s", r.elapsed.as_secs_f64())), "{r}");
}

#[test]
fn bfcl_ground_truth_accepted_and_perturbations_rejected_in_every_category() {
    let Some(r) = run_check(BenchId::Bfcl, None) else {
        return;
    };
    for (cat, n) in [("exec_simple", 100), ("simple_python", 400), ("multiple", 200), ("parallel", 200), ("parallel_multiple", 200)] {
        assert_eq!(figure(&r, &format!("{cat}: ground truth accepted")), format!("{n}/{n}"), "{r}");
        for p in ["wrong function rejected", "missing required param rejected", "wrong type rejected"] {
            let f = figure(&r, &format!("{cat}: {p}"));
            let (a, b) = f.split_once('/').unwrap();
            assert!(a == b && a != "0", "{cat} {p}: {f}\n{r}");
        }
    }
    assert!(r.ok(), "{r}");
}

#[test]
fn gpqa_fixture_checks_pass() {
    let csv = Path::new("tests/fixtures/bench/gpqa_fixture.csv");
    let r = ptb_bench::check::run(BenchId::GpqaMain, Some(csv)).expect("fixture is committed");
    assert_eq!(figure(&r, "correct letters accepted"), "6/6", "{r}");
    assert_eq!(figure(&r, "wrong letters rejected"), "6/6", "{r}");
    assert!(r.ok());
}

#[test]
fn arena_hard_score_matches_reference_on_recorded_verdicts() {
    let r = ptb_bench::check::run(BenchId::ArenaHardWriting, None).expect("fixtures are committed");
    assert_eq!(figure(&r, "equals the reference"), "3/3", "{r}");
}

#[test]
fn healthbench_score_matches_reference_on_recorded_verdicts() {
    let Some(r) = run_check(BenchId::HealthBench, None) else {
        return;
    };
    assert_eq!(figure(&r, "cover every rubric item"), "500/500", "{r}");
    assert_eq!(figure(&r, "equals the reference"), "4/4", "{r}");
}

#[test]
fn missing_data_names_the_fetch_script() {
    let empty = tempfile::tempdir().unwrap();
    let err = ptb_bench::check::run(BenchId::Gsm8k, Some(empty.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gsm8k_test.jsonl") && msg.contains("scripts/bench/fetch-data.sh"), "{msg}");
}

#[test]
fn changed_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aime2025.jsonl"), "{\"id\": \"0\", \"problem\": \"p\", \"answer\": \"1\"}\n").unwrap();
    std::fs::copy("data/bench/aime2025/SHA256SUMS", dir.path().join("SHA256SUMS")).unwrap();
    let err = ptb_bench::check::run(BenchId::Aime2025, Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("sha256 of"), "{err}");
}

fn ptb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ptb")).args(args).output().expect("run ptb")
}

#[test]
fn cli_prints_figures_and_exit_status() {
    let out = ptb(&["bench", "check", "gpqa", "--data", "tests/fixtures/bench/gpqa_fixture.csv"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("gpqamain  correct letters accepted (seeded shuffle) ") && l.ends_with(" 6/6")), "{stdout}");
    assert!(stdout.contains("gpqamain: PASS"), "{stdout}");

    let out = ptb(&["bench", "check", "gsm9k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown benchmark `gsm9k`"));

    // A verdict fixture that disagrees with the reference must fail the check.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("tests/fixtures/bench/arena_judgments.jsonl", dir.path().join("arena_judgments.jsonl")).unwrap();
    let mut expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string("tests/fixtures/bench/arena_expected.json").unwrap()).unwrap();
    expected["accuracy"] = serde_json::json!(0.9);
    std::fs::write(dir.path().join("arena_expected.json"), expected.to_string()).unwrap();
    let out = ptb(&["bench", "check", "arenahard", "--data", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("2/3") && stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn missing_gated_or_reference_only_data_says_where_it_comes_from() {
    let empty = tempfile::tempdir().unwrap();
    let err = ptb_bench::check::run(BenchId::GpqaMain, Some(&empty.path().join("gpqa_main.csv"))).unwrap_err();
    assert!(err.to_string().contains("GPQA is gated"), "{err}");
    let err = ptb_bench::judged::load_arena_baseline(empty.path(), ptb_bench::arena::BASELINE_MODEL).unwrap_err();
    assert!(err.to_string().contains("--posttrainbench"), "{err}");
}
