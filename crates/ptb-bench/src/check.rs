//! `ptb bench check`: run each scorer on the benchmark's own reference answers
//! (which must all be accepted) and on corrupted answers (which must all be
//! rejected), so a user can see that scoring works on real data before
//! trusting a number it produces.

use super::bfcl::{self, AstOptions, Category};
use super::chat::{ModelOutput, ToolCall};
use super::gpqa::{self, ChoiceOrder};
use super::sandbox::{self, SandboxOptions};
use super::{BenchError, BenchId, arena, data, healthbench, humaneval, math};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One line of a check: how many of `total` cases came out as expected.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckCase {
    pub name: String,
    pub passed: usize,
    pub total: usize,
    /// Ids of the first few cases that did not come out as expected.
    pub failures: Vec<String>,
}

impl CheckCase {
    fn new(name: impl Into<String>) -> Self {
        CheckCase { name: name.into(), passed: 0, total: 0, failures: vec![] }
    }
    fn record(&mut self, ok: bool, id: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.passed += 1;
        } else if self.failures.len() < 5 {
            self.failures.push(id());
        }
    }
    pub fn ok(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub bench: BenchId,
    pub cases: Vec<CheckCase>,
    pub elapsed: Duration,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(CheckCase::ok)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.cases {
            write!(f, "{}  {:<width$}  {}/{}", self.bench, c.name, c.passed, c.total)?;
            if !c.failures.is_empty() {
                write!(f, "  (e.g. {})", c.failures.join(", "))?;
            }
            writeln!(f)?;
        }
        write!(f, "{}: {} in {:.1}s", self.bench, if self.ok() { "PASS" } else { "FAIL" }, self.elapsed.as_secs_f64())
    }
}

/// Run the check for one benchmark. `data` is the data directory (default
/// `data/bench`), or for GPQA the CSV, or for the judged benchmarks the
/// recorded-verdict fixture directory (default `tests/fixtures/bench`).
pub fn run(bench: BenchId, data: Option<&Path>) -> Result<CheckReport, BenchError> {
    let start = Instant::now();
    let cases = match bench {
        BenchId::Gsm8k => check_gsm8k(&data::data_dir(data))?,
        BenchId::Aime2025 => check_aime(&data::data_dir(data))?,
        BenchId::GpqaMain => check_gpqa(&gpqa_path(data))?,
        BenchId::HumanEval => check_humaneval(&data::data_dir(data))?,
        BenchId::Bfcl => check_bfcl(&data::data_dir(data))?,
        BenchId::ArenaHardWriting => check_arena(&fixture_dir(data))?,
        BenchId::HealthBench => check_healthbench(&fixture_dir(data), &data::data_dir(None))?,
    };
    Ok(CheckReport { bench, cases, elapsed: start.elapsed() })
}

/// The GPQA CSV `bench check` reads: `--data` (a file, or a data directory),
/// else the default data directory's.
pub fn gpqa_path(data: Option<&Path>) -> PathBuf {
    match data {
        Some(p) if p.is_dir() => data::bench_dir(p, BenchId::GpqaMain).join("gpqa_main.csv"),
        Some(p) => p.to_path_buf(),
        None => data::bench_dir(&data::data_dir(None), BenchId::GpqaMain).join("gpqa_main.csv"),
    }
}

fn fixture_dir(data: Option<&Path>) -> PathBuf {
    data.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("tests/fixtures/bench"))
}

/// A wrong final answer: the gold number plus one, or a word for non-numbers.
/// From 100000 up, inspect compares 5 significant digits (`118001` matches
/// `118000`), so there the wrong answer doubles the number instead.
fn wrong_answer(target: &str) -> String {
    match target.replace(',', "").parse::<i64>() {
        Ok(n) if n.abs() >= 100_000 => (n * 2).to_string(),
        Ok(n) => (n + 1).to_string(),
        Err(_) => "unknown".to_string(),
    }
}

fn check_gsm8k(dir: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let items = math::load_gsm8k(dir)?;
    let fewshot = math::load_gsm8k_fewshot(dir)?;
    let mut prompts = CheckCase::new(format!("prompts carry the {} few-shot examples", math::GSM8K_FEWSHOT));
    let mut gold = CheckCase::new("gold solutions accepted");
    let mut wrong = CheckCase::new("off-by-one answers rejected");
    for it in &items {
        let req = math::gsm8k_request(it, &fewshot);
        prompts.record(fewshot.len() == math::GSM8K_FEWSHOT && req.messages.len() == 2, || it.id.clone());
        let reasoning = it.reasoning.as_deref().unwrap_or("");
        gold.record(math::score_gsm8k(&format!("{reasoning}\n\nANSWER: {}", it.target), &it.target).correct, || it.id.clone());
        let bad = format!("{reasoning}\n\nANSWER: {}", wrong_answer(&it.target));
        wrong.record(!math::score_gsm8k(&bad, &it.target).correct, || it.id.clone());
    }
    Ok(vec![prompts, gold, wrong])
}

fn check_aime(dir: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let items = math::load_aime(dir)?;
    let mut gold = CheckCase::new("gold answers accepted (ANSWER: line)");
    let mut boxed = CheckCase::new("gold answers accepted (\\boxed{})");
    let mut wrong = CheckCase::new("off-by-one answers rejected");
    for it in &items {
        gold.record(math::score_aime(&format!("Work.\nANSWER: {}", it.target), &it.target).correct, || it.id.clone());
        boxed.record(math::score_aime(&format!("So the answer is $\\boxed{{{}}}$.", it.target), &it.target).correct, || it.id.clone());
        wrong.record(!math::score_aime(&format!("ANSWER: {}", wrong_answer(&it.target)), &it.target).correct, || it.id.clone());
    }
    Ok(vec![gold, boxed, wrong])
}

fn check_gpqa(csv: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let items = gpqa::load_csv(csv)?;
    let mut right = CheckCase::new("correct letters accepted (seeded shuffle)");
    let mut wrong = CheckCase::new("wrong letters rejected");
    let mut prompt = CheckCase::new("prompts list all four choices");
    for it in &items {
        let p = gpqa::present(it, ChoiceOrder::Seeded(0));
        let text = gpqa::prompt(&it.question, &p.choices);
        prompt.record(it.choices.iter().all(|c| text.contains(c.as_str())), || it.id.clone());
        right.record(gpqa::score(&format!("Reasoning...\nANSWER: {}", p.target), &p), || it.id.clone());
        let other = ['A', 'B', 'C', 'D'].into_iter().find(|&c| c != p.target).unwrap_or('A');
        wrong.record(!gpqa::score(&format!("Reasoning...\nANSWER: {other}"), &p), || it.id.clone());
    }
    let mut inspect = CheckCase::new("correct letters accepted (inspect seed 42)");
    for (it, p) in items.iter().zip(gpqa::present_all(&items, ChoiceOrder::InspectSeed(42))) {
        let shown = p.choices[(p.target as u8 - b'A') as usize] == it.choices[0];
        inspect.record(shown && gpqa::score(&format!("ANSWER: {}", p.target), &p), || it.id.clone());
    }
    Ok(vec![prompt, right, wrong, inspect])
}

fn check_humaneval(dir: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let items = humaneval::load(dir)?;
    let opts = SandboxOptions::default();
    let jobs = sandbox::default_jobs();
    let mut canon = CheckCase::new("canonical solutions pass");
    let completions: Vec<String> = items.iter().map(|i| i.canonical_solution.clone()).collect();
    for (it, r) in items.iter().zip(humaneval::score_many(&items, &completions, &opts, jobs)?) {
        canon.record(r.passed, || format!("{}: {}", it.task_id, r.stderr_tail.lines().last().unwrap_or("")));
    }
    // Corrupted: the body returns None, as an empty implementation would.
    let mut corrupt = CheckCase::new("corrupted solutions fail");
    let broken: Vec<String> = items.iter().map(|_| "    return None\n".to_string()).collect();
    for (it, r) in items.iter().zip(humaneval::score_many(&items, &broken, &opts, jobs)?) {
        corrupt.record(!r.passed, || it.task_id.clone());
    }
    // A runaway program must be killed at the time limit.
    let mut timeout = CheckCase::new("infinite loop killed at the time limit");
    if let Some(first) = items.first() {
        let short = SandboxOptions { timeout: Duration::from_secs(2), ..opts.clone() };
        let t0 = Instant::now();
        let r = sandbox::run_python(&humaneval::program(first, "    while True:\n        pass\n"), &short)?;
        timeout.record(r.timed_out && !r.passed && t0.elapsed() < Duration::from_secs(10), || first.task_id.clone());
    }
    Ok(vec![canon, corrupt, timeout])
}

fn check_bfcl(dir: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let opts = AstOptions::default();
    let mut cases = Vec::new();
    for cat in Category::ALL {
        let items = bfcl::load(dir, cat)?;
        let mut gold = CheckCase::new(format!("{}: ground truth accepted", cat.name()));
        let mut wrong_fn = CheckCase::new(format!("{}: wrong function rejected", cat.name()));
        let mut missing = CheckCase::new(format!("{}: missing required param rejected", cat.name()));
        let mut wrong_ty = CheckCase::new(format!("{}: wrong type rejected", cat.name()));
        for it in &items {
            let out = bfcl::reference_output(it);
            let v = bfcl::score(it, &out, &opts);
            gold.record(v.correct, || format!("{}: {}", it.id, v.reason));
            for (case, perturbed) in [
                (&mut wrong_fn, perturb(&out, Perturb::Function, &it.functions)),
                (&mut missing, perturb(&out, Perturb::DropRequired, &it.functions)),
                (&mut wrong_ty, perturb(&out, Perturb::Type, &it.functions)),
            ] {
                if let Some(p) = perturbed {
                    case.record(!bfcl::score(it, &p, &opts).correct, || it.id.clone());
                }
            }
        }
        cases.extend([gold, wrong_fn, missing, wrong_ty]);
    }
    Ok(cases)
}

#[derive(Clone, Copy)]
enum Perturb {
    Function,
    DropRequired,
    Type,
}

/// Change the first call of a correct output; None when the change does not
/// apply (e.g. the function has no required parameter).
fn perturb(out: &ModelOutput, how: Perturb, docs: &[Value]) -> Option<ModelOutput> {
    let mut out = out.clone();
    let call: &mut ToolCall = out.tool_calls.first_mut()?;
    let doc = docs.iter().find(|d| d.get("name").and_then(Value::as_str) == Some(call.function.as_str()));
    match how {
        Perturb::Function => call.function.push_str("_v2"),
        Perturb::DropRequired => {
            let req = doc?.pointer("/parameters/required")?.as_array()?;
            let name = req.iter().filter_map(Value::as_str).find(|r| call.arguments.contains_key(*r))?.to_string();
            call.arguments.remove(&name);
        }
        Perturb::Type => {
            let (k, v) = call.arguments.iter().next()?;
            let swapped = match v {
                Value::String(_) => Value::from(12345),
                Value::Array(_) | Value::Object(_) => Value::from("not a container"),
                other => Value::String(other.to_string()),
            };
            let k = k.clone();
            call.arguments.insert(k, swapped);
        }
    }
    Some(out)
}

#[derive(Deserialize)]
struct ArenaJudgment {
    uid: String,
    game1: String,
    game2: String,
}

#[derive(Deserialize)]
struct ArenaExpected {
    accuracy: f64,
    stderr: f64,
    n_scores: usize,
    n_dropped: usize,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

fn check_arena(fixtures: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let judgments: Vec<ArenaJudgment> = data::read_jsonl(&data::require(fixtures, "arena_judgments.jsonl")?)?;
    let expected: ArenaExpected = serde_json::from_str(&data::read_to_string(&data::require(fixtures, "arena_expected.json")?)?)
        .map_err(|e| BenchError::Invalid(format!("arena_expected.json: {e}")))?;
    let battles: Vec<arena::Battle> =
        judgments.iter().map(|j| arena::Battle { uid: j.uid.clone(), game1: arena::parse_verdict(&j.game1), game2: arena::parse_verdict(&j.game2) }).collect();
    let got = arena::aggregate(&battles);
    let mut case = CheckCase::new("score from recorded verdicts equals the reference's (accuracy, stderr, counts)");
    case.record(close(got.accuracy, expected.accuracy), || format!("accuracy {} != {}", got.accuracy, expected.accuracy));
    case.record(close(got.stderr, expected.stderr), || format!("stderr {} != {}", got.stderr, expected.stderr));
    case.record(got.n_scores == expected.n_scores && got.n_dropped == expected.n_dropped, || {
        format!("counts {}/{} != {}/{}", got.n_scores, got.n_dropped, expected.n_scores, expected.n_dropped)
    });
    Ok(vec![case])
}

#[derive(Deserialize)]
struct HealthVerdict {
    prompt_id: String,
    criteria_met: String,
}

#[derive(Deserialize)]
struct HealthExpected {
    accuracy: f64,
    n_examples: usize,
    by_theme: std::collections::BTreeMap<String, f64>,
    by_axis: std::collections::BTreeMap<String, f64>,
}

fn maps_close(a: &std::collections::BTreeMap<String, f64>, b: &std::collections::BTreeMap<String, f64>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| close(*v, *w)))
}

fn check_healthbench(fixtures: &Path, data_dir: &Path) -> Result<Vec<CheckCase>, BenchError> {
    let examples = healthbench::load(data_dir, healthbench::Source::Package500)?;
    let verdicts: Vec<HealthVerdict> = data::read_jsonl(&data::require(fixtures, "healthbench_verdicts.jsonl")?)?;
    let expected: HealthExpected = serde_json::from_str(&data::read_to_string(&data::require(fixtures, "healthbench_expected.json")?)?)
        .map_err(|e| BenchError::Invalid(format!("healthbench_expected.json: {e}")))?;
    let by_id: std::collections::HashMap<&str, &HealthVerdict> = verdicts.iter().map(|v| (v.prompt_id.as_str(), v)).collect();
    let mut matched = CheckCase::new("recorded verdicts cover every rubric item");
    let mut scores = Vec::with_capacity(examples.len());
    let mut met_all = Vec::with_capacity(examples.len());
    let mut used = Vec::with_capacity(examples.len());
    for ex in &examples {
        let met: Option<Vec<bool>> = by_id.get(ex.prompt_id.as_str()).map(|v| v.criteria_met.chars().map(|c| c == '1').collect());
        let ok = met.as_ref().is_some_and(|m| m.len() == ex.rubrics.len());
        matched.record(ok, || ex.prompt_id.clone());
        if let Some(m) = met {
            scores.push(healthbench::example_score(&ex.rubrics, &m));
            met_all.push(m);
            used.push(ex.clone());
        }
    }
    let got = healthbench::aggregate(&scores);
    let mut case = CheckCase::new("score from recorded verdicts equals the reference's (accuracy, n, by theme, by axis)");
    case.record(close(got.accuracy, expected.accuracy), || format!("accuracy {} != {}", got.accuracy, expected.accuracy));
    case.record(got.n_examples == expected.n_examples, || format!("n {} != {}", got.n_examples, expected.n_examples));
    let themes = healthbench::by_theme(&used, &scores);
    case.record(maps_close(&themes, &expected.by_theme), || format!("by theme {themes:?}"));
    let axes = healthbench::by_axis(&used, &met_all);
    case.record(maps_close(&axes, &expected.by_axis), || format!("by axis {axes:?}"));
    Ok(vec![matched, case])
}
