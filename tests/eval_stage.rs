//! The built-in evaluator as an eval stage: `ptb apply` on a spec whose eval
//! stage is `command "ptb" "eval"` loads a real model (SmolLM2-135M, GGUF,
//! from scripts/eval/ci-setup.sh), prompts it with the benchmark's real items
//! (scripts/bench/ci-setup.sh) and scores them; the lockfile gets the score.

use std::path::Path;
use std::process::Command;

/// A project with one cell: `model` evaluated as it is on `bench` by
/// `ptb eval` with `args`.
fn one_cell(model: &Path, bench: &str, data: &Path, args: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    let spec = format!(
        r#"experiment evalstage
model smollm2 path="{}" arch=llama
benchmark {bench} data="{}"
agent base checkpoint=base
stage eval budget="10m" {{ command "ptb" "eval" {args}; }}
matrix {{ seeds 1; }}
"#,
        model.display(),
        data.display()
    );
    std::fs::write(dir.path().join("experiments/e.kdl"), spec).unwrap();
    dir
}

fn ptb(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(dir).args(args).output().unwrap()
}

#[test]
fn an_eval_stage_with_the_builtin_evaluator_scores_a_real_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf =
        std::env::var_os("PTB_SMOLLM2_GGUF").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(gguf.is_file(), "{} is missing: run scripts/eval/ci-setup.sh", gguf.display());
    let data = root.join("data/bench/aime2025/aime2025.jsonl");
    assert!(data.is_file(), "{} is missing: run scripts/bench/ci-setup.sh", data.display());
    let dir = one_cell(&gguf, "aime2025", &data, r#""--limit" "2" "--max-tokens" "8""#);
    let ptb = |args: &[&str]| ptb(dir.path(), args);
    let o = ptb(&["apply", "experiments/e.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lock = ptb_core::lock::Lockfile::load(&dir.path().join("lockfiles/evalstage.lock")).unwrap();
    let eval = lock.stage("smollm2/aime2025/base/seed=1", "eval").expect("eval recorded");
    assert_eq!(eval.status, ptb_core::status::StageStatus::Success);
    assert_eq!(eval.metrics.get("n"), Some(&ptb_core::store::MetricValue::Number(2.0)));
    let score = match eval.metrics.get("score") {
        Some(ptb_core::store::MetricValue::Number(s)) => *s,
        other => panic!("no score: {other:?}"),
    };
    assert!((0.0..=1.0).contains(&score));
    // Per-item results are in the store, one line per item, with the completion.
    let results = std::fs::read_to_string(dir.path().join("store").join(&eval.path).join("out/results.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = results.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["completion"].is_string() && l["completion_tokens"].as_u64().unwrap() <= 8));
    // Nothing reruns.
    let o = ptb(&["apply", "experiments/e.kdl"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 cached"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_benchmark_reading_several_files_must_be_pinned_as_its_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = root.join("data/bench/gsm8k/gsm8k_test.jsonl");
    assert!(test.is_file(), "{} is missing: run scripts/bench/ci-setup.sh", test.display());
    // GSM8K also reads its few-shot rows: pinning only the test file would
    // leave them unhashed (and, in a container, invisible). The file sits
    // under a path longer than any terminal is wide, as in a deep checkout:
    // the message must still be one line of the log.
    let deep = tempfile::tempdir().unwrap();
    let long = (0..12).fold(deep.path().to_path_buf(), |d, i| d.join(format!("a-rather-long-directory-name-{i}")));
    std::fs::create_dir_all(&long).unwrap();
    let copy = long.join("gsm8k_test.jsonl");
    std::fs::copy(&test, &copy).unwrap();
    let dir = one_cell(&root.join("tests"), "gsm8k", &copy, r#""--limit" "1""#);
    let o = ptb(dir.path(), &["apply", "experiments/e.kdl"]);
    assert!(!o.status.success());
    let logs: String = std::fs::read_dir(dir.path().join("store/v1/failed"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path().join("log")).unwrap_or_default())
        .collect();
    assert!(
        logs.lines().any(|l| l.contains("gsm8k reads several files, but its data is pinned as the one file") && l.contains("pin the benchmark's directory")),
        "the diagnostic should be one unwrapped line: {logs}"
    );
}

/// The CPU computes in f32 only: asking for bf16 is refused with the fix, never run in f32
/// under a bf16 label.
#[test]
fn a_dtype_the_device_cannot_compute_in_is_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let data = root.join("data/bench/aime2025");
    let o = ptb(
        root,
        &[
            "eval",
            "--bench",
            "aime2025",
            "--checkpoint",
            "tests/fixtures/eval/qwen3",
            "--arch",
            "qwen3",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--limit",
            "1",
            "--dtype",
            "bf16",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot compute in bf16; use `--dtype f32`"), "{err}");
    assert!(!out.path().join("metrics.json").exists());
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_device_in_a_cpu_build_says_how_to_get_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let data = root.join("data/bench/aime2025");
    let o = ptb(
        root,
        &[
            "eval",
            "--bench",
            "aime2025",
            "--checkpoint",
            "tests",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--device",
            "cuda:0",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("device `cuda:0` needs a ptb built with `--features cuda`"), "{err}");
}
