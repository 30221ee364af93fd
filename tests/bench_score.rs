//! `ptb bench score`: completions generated elsewhere, scored with ptb's
//! scorers, on the benchmark data the repository vendors (AIME 2025 and
//! GSM8K, checked against their committed SHA256SUMS).

mod bench_common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A data directory holding the vendored files and their pins, as
/// scripts/bench/fetch-data.sh lays them out.
fn data_dir(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    for (bench, files) in [("aime2025", &["aime2025.jsonl"][..]), ("gsm8k", &["gsm8k_test.jsonl", "gsm8k_fewshot.jsonl"][..])] {
        std::fs::create_dir_all(data.join(bench)).unwrap();
        std::fs::copy(Path::new(ROOT).join("data/bench").join(bench).join("SHA256SUMS"), data.join(bench).join("SHA256SUMS")).unwrap();
        for f in files {
            std::fs::copy(Path::new(ROOT).join("scripts/bench/vendored").join(f), data.join(bench).join(f)).unwrap();
        }
    }
    data
}

fn score(dir: &Path, bench: &str, lines: &[&str], json: bool) -> Output {
    let file = dir.join(format!("{bench}-completions.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_ptb"));
    c.current_dir(dir).args(["bench", "score", bench, "--completions"]).arg(&file).arg("--data").arg(data_dir(dir));
    if json {
        c.arg("--json");
    }
    c.output().unwrap()
}

#[test]
fn scores_completions_from_another_harness_item_by_item() {
    let dir = tempfile::tempdir().unwrap();
    // AIME items 0, 1 and 2 have answers 70, 588 and 16; ids may be numbers.
    let lines = [
        r#"{"id": "0", "completion": "The bases are 21 and 49, so the sum is \\boxed{70}."}"#,
        r#"{"id": 1, "completion": "<think>long</think>ANSWER: 588", "prompt": "ignored"}"#,
        r#"{"id": "2", "completion": "ANSWER: 17"}"#,
    ];
    let o = score(dir.path(), "aime2025", &lines, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bench"], "aime2025");
    let items: Vec<(String, f64, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_string(), i["score"].as_f64().unwrap(), i["answer"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(items, [("0".into(), 1.0, "70".into()), ("1".into(), 1.0, "588".into()), ("2".into(), 0.0, "17".into())]);
    assert_eq!(v["total"]["n"], 3);
    assert!((v["total"]["accuracy"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(v["benchmark_items"], 30);

    // The text form: a line per item and the total, saying how much was scored.
    let o = score(dir.path(), "aime2025", &lines, false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("aime2025  2  0  17"), "{out}");
    assert!(out.contains("aime2025: accuracy 0.6667 ± 0.3333 over 3 of 30 items"), "{out}");
}

/// GSM8K with the reference's suffix rule through inspect's Unicode
/// fallback: item 51's answer is 5, and `2½` reads as 2.5, which ends in 5.
#[test]
fn gsm8k_scores_unicode_numbers_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [r#"{"id": "51", "completion": "ANSWER: 2½"}"#, r#"{"id": "20", "completion": "ANSWER: ١٥"}"#, r#"{"id": "52", "completion": "ANSWER: 14"}"#];
    let o = score(dir.path(), "gsm8k", &lines, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(&str, f64, &str)> =
        v["items"].as_array().unwrap().iter().map(|i| (i["id"].as_str().unwrap(), i["score"].as_f64().unwrap(), i["answer"].as_str().unwrap())).collect();
    // In the benchmark's order, whatever the file's.
    assert_eq!(got, [("20", 1.0, "15"), ("51", 1.0, "2.5"), ("52", 0.0, "14")]);
}

/// BFCL calls as an OpenAI-compatible server returns them (arguments as a
/// JSON string), on the fetched exec_simple data: the right arguments score;
/// arguments encoded twice are a string, which inspect gives to the tool's
/// first parameter, and score nothing; text is parsed as `ptb eval` parses it.
#[test]
fn bfcl_scores_server_tool_calls_and_text() {
    let Some(data) = bench_common::fetched_data(&["bfcl/exec_simple.question.json"]) else { return };
    let data = std::fs::canonicalize(data).unwrap();
    let items = ptb_bench::bfcl::load(&data, ptb_bench::bfcl::Category::ExecSimple).unwrap();
    let call = |i: usize| match &items[i].truth {
        ptb_bench::bfcl::Truth::Call(c) => c.clone(),
        other => panic!("exec_simple has calls: {other:?}"),
    };
    let (a, b, c) = (call(0), call(1), call(2));
    let args = |c: &ptb_bench::chat::ToolCall| serde_json::to_string(&c.arguments).unwrap();
    let server = |id: &str, name: &str, arguments: String| {
        serde_json::json!({"id": id, "completion": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}).to_string()
    };
    let lines = [
        server(&items[0].id, &a.function, args(&a)),
        server(&items[1].id, &b.function, serde_json::to_string(&args(&b)).unwrap()),
        serde_json::json!({"id": items[2].id, "completion": format!("<tool_call>{{\"name\": \"{}\", \"arguments\": {}}}</tool_call>", c.function, args(&c))})
            .to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bfcl.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ptb"))
        .args(["bench", "score", "bfcl", "--json", "--completions"])
        .arg(&file)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let scores: Vec<f64> = v["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert_eq!(scores, [1.0, 0.0, 1.0], "{v}");
    let first = &items[1].first_params[&b.function];
    let answer = v["items"][1]["answer"].as_str().unwrap();
    assert!(answer.contains(&format!("\"{first}\":\"{{")), "the string went to `{first}`: {answer}");
}

#[test]
fn mistakes_in_the_file_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |bench: &str, lines: &[&str]| {
        let o = score(dir.path(), bench, lines, false);
        assert!(!o.status.success(), "accepted {lines:?}");
        assert!(o.stdout.is_empty(), "printed scores for a bad file: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = fails("aime2025", &[r#"{"id": "0", "completion": "70"}"#, r#"{"id": "99", "completion": "70"}"#]);
    assert!(err.contains("aime2025-completions.jsonl:2") && err.contains("no aime2025 item has id `99`"), "{err}");
    let err = fails("aime2025", &[r#"{"id": "0", "completion": "70"}"#, r#"{"id": "0", "completion": "71"}"#]);
    assert!(err.contains(":2") && err.contains("a second completion for item `0` (the first is on line 1)"), "{err}");
    let err = fails("aime2025", &[r#"{"id": "0", "text": "70"}"#]);
    assert!(err.contains(":1") && err.contains("completion"), "{err}");
    let err = fails("healthbench", &[r#"{"id": "0", "completion": "x"}"#]);
    assert!(err.contains("scored by an LLM judge"), "{err}");
}
