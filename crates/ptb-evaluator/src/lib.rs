//! ptb's built-in evaluator: what an eval stage runs with `command "ptb" "eval"`.
//! It joins the two halves: `bench` (items, prompts, scorers) and `eval`
//! (the burn engine). The architecture and chat template come from the
//! cell's declared base model, never from the checkpoint under evaluation
//! (agents have edited `config.json` to change the template); disagreements
//! are recorded as mismatches in the metrics for the judge and the report.
//!
//! The chat templates are the reference harness's (templates/chat/, MIT),
//! compiled in, so `plan::HARNESS_VERSION` covers them.

use ptb_bench::arena::{self, ArenaQuestion};
use ptb_bench::chat::{ChatRequest, ModelOutput};
use ptb_bench::healthbench::{self, HealthExample};
use ptb_bench::judge::{JudgeClient, JudgeConfig, JudgeUsage};
use ptb_bench::judged;
use ptb_bench::sandbox::SandboxOptions;
use ptb_bench::task::{ItemResult, Metric, Task, TaskOptions, metric};
use ptb_bench::{BenchError, BenchId};
use ptb_core::arch::Arch;
use ptb_engine::device::OnDevice;
use ptb_engine::{BaseModelSpec, Completion, Engine, Prompt, Request};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const QWEN3: &str = include_str!("../../../templates/chat/qwen3.jinja");
const SMOLLM: &str = include_str!("../../../templates/chat/smollm.jinja");
const GEMMA3: &str = include_str!("../../../templates/chat/gemma3.jinja");
const GEMMA3_TOOLS: &str = include_str!("../../../templates/chat/gemma3_tool_calling.jinja");

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Eval(#[from] ptb_engine::EvalError),
    #[error("{0}")]
    Usage(String),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Everything one evaluation needs; `from_env` fills it inside a stage.
#[derive(Debug, Clone)]
pub struct EvalJob {
    pub bench: BenchId,
    /// The checkpoint under evaluation (directory or `.gguf`).
    pub checkpoint: PathBuf,
    /// The declared base model (for its architecture and config).
    pub base_model: Option<PathBuf>,
    /// The spec's `arch` (`None`: not declared; the checkpoint's own claim
    /// is then all there is, for ad-hoc use only).
    pub arch: Option<Arch>,
    /// The benchmark data directory (the layout `scripts/bench/fetch-data.sh` makes).
    pub data: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    /// Evaluate only the first N items (smoke runs; not for reported numbers).
    pub limit: Option<usize>,
    /// Cap on new tokens per item, below the benchmark's own (CPU runs).
    pub max_tokens: Option<usize>,
    /// The LLM judge, for Arena-Hard and HealthBench.
    pub judge: Option<JudgeConfig>,
    /// `cpu` or `cuda:N` (a build with `--features cuda`).
    pub device: ptb_engine::device::Device,
    /// The weights' dtype on the device (`auto`: bf16 for a bf16 checkpoint on a GPU).
    pub dtype: ptb_engine::Precision,
    /// Arena-Hard: whose answers the candidate's are judged against.
    pub arena_baseline: String,
}

/// The reference harness's template choice, keyed by the declared
/// architecture instead of a substring of the checkpoint's path.
pub fn chat_template(arch: Option<Arch>, bench: BenchId) -> Option<&'static str> {
    match arch? {
        Arch::Qwen3 => Some(QWEN3),
        Arch::SmolLM3 => Some(SMOLLM),
        Arch::Gemma3 if bench == BenchId::Bfcl => Some(GEMMA3_TOOLS),
        Arch::Gemma3 => Some(GEMMA3),
        // The reference names a llama3 template it does not ship: use the checkpoint's.
        Arch::Llama => None,
    }
}

/// The base model's own architecture and config when it is a directory;
/// the spec's `arch` otherwise.
fn base_spec(job: &EvalJob) -> BaseModelSpec {
    let config = job.base_model.as_ref().map(|d| d.join("config.json")).filter(|p| p.is_file());
    let config: Option<serde_json::Value> = config.and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str(&t).ok());
    let architecture = config
        .as_ref()
        .and_then(|c| c.get("architectures")?.get(0)?.as_str().map(str::to_string))
        .unwrap_or_else(|| job.arch.unwrap_or(Arch::Llama).hf_class().to_string());
    BaseModelSpec { architecture, chat_template: chat_template(job.arch, job.bench).map(str::to_string), config }
}

/// Bench requests → engine requests: messages and tool schemas go to the
/// chat template as vLLM would pass them (`{"type": "function", ...}`).
fn to_request(r: &ChatRequest, job: &EvalJob, sampling: &ptb_engine::Sampling) -> Result<Request, EvaluateError> {
    let messages = serde_json::from_value(serde_json::to_value(&r.messages).expect("messages serialise"))
        .map_err(|e| EvaluateError::Usage(format!("message format: {e}")))?;
    let tools = if r.tools.is_empty() {
        None
    } else {
        let v: Vec<serde_json::Value> = r
            .tools
            .iter()
            .map(|t| serde_json::json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        Some(serde_json::from_value(serde_json::Value::Array(v)).map_err(|e| EvaluateError::Usage(format!("tool format: {e}")))?)
    };
    let max = r.max_tokens as usize;
    Ok(Request {
        prompt: Prompt::Chat { messages, tools, template_kwargs: Default::default() },
        sampling: ptb_engine::Sampling { seed: job.seed, ..sampling.clone() },
        max_new_tokens: job.max_tokens.map_or(max, |m| m.min(max)),
        stop: vec![],
        ignore_eos: false,
    })
}

/// One line of `results.jsonl`: every generated item, with its score when
/// it has one (a judged item without a usable verdict has none, as in the
/// reference, and is left out of the metric).
#[derive(Serialize)]
struct Line<'a> {
    id: &'a str,
    score: Option<f64>,
    answer: Option<&'a str>,
    completion: &'a str,
    prompt_tokens: usize,
    completion_tokens: usize,
    finish_reason: ptb_engine::FinishReason,
}

/// Summary of one evaluation, also written as `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSummary {
    /// Fraction correct (or rubric score, or win rate) in [0, 1]: what reports read.
    pub score: f64,
    /// The same, under the reference harness's name.
    pub accuracy: f64,
    pub stderr: f64,
    /// Items that count in the score.
    pub n: usize,
    /// Fields where the checkpoint contradicts its declared base model.
    pub mismatches: Vec<String>,
    pub completion_tokens: usize,
    /// Judged benchmarks: replies served from the cache / asked of the judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeUsage>,
}

impl EvalSummary {
    /// The flat metrics of `metrics.json`: `score`, `accuracy`, `stderr`,
    /// `n`, `completion_tokens`, `mismatches` (how many), and for judged
    /// benchmarks `judge_cached` and `judge_requested`.
    pub fn metrics(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "score": self.score,
            "accuracy": self.accuracy,
            "stderr": self.stderr,
            "n": self.n,
            "completion_tokens": self.completion_tokens,
            "mismatches": self.mismatches.len(),
        });
        if let Some(j) = &self.judge {
            m["judge_cached"] = j.cached.into();
            m["judge_requested"] = j.requested.into();
        }
        m
    }
}

/// What is generated for, and how the answers are scored.
enum Scoring {
    Rule(Task),
    Arena { questions: Vec<ArenaQuestion>, baseline: HashMap<String, String>, judge: JudgeClient },
    Health { examples: Vec<HealthExample>, judge: JudgeClient },
}

impl Scoring {
    /// The items and their scorer. A judged benchmark whose judge or key is
    /// missing fails here, before hours of generation rather than after.
    fn load(job: &EvalJob) -> Result<(Scoring, Vec<(String, ChatRequest)>), EvaluateError> {
        let judge = || -> Result<JudgeClient, EvaluateError> {
            let cfg = job.judge.as_ref().ok_or_else(|| no_judge(job.bench))?;
            let client = JudgeClient::new(judge_for(cfg, job.bench));
            client.check_ready()?;
            Ok(client)
        };
        Ok(match job.bench {
            BenchId::ArenaHardWriting => {
                let judge = judge()?;
                let questions = arena::load_questions(&job.data)?;
                let items = questions.iter().map(|q| (q.uid.clone(), arena::answer_request(q))).collect();
                (Scoring::Arena { questions, baseline: judged::load_arena_baseline(&job.data, &job.arena_baseline)?, judge }, items)
            }
            BenchId::HealthBench => {
                let judge = judge()?;
                let examples = healthbench::load(&job.data, healthbench::Source::Easy245)?;
                let items = examples.iter().map(|e| (e.prompt_id.clone(), healthbench::answer_request(e))).collect();
                (Scoring::Health { examples, judge }, items)
            }
            bench => {
                let task = Task::load(bench, &job.data, &TaskOptions::default())?;
                let items = task.items().into_iter().map(|i| (i.id, i.request)).collect();
                (Scoring::Rule(task), items)
            }
        })
    }

    /// Score the first `texts.len()` items.
    fn score(&self, texts: &[String]) -> Result<(Vec<ItemResult>, Metric), EvaluateError> {
        let n = texts.len();
        Ok(match self {
            Scoring::Rule(task) => {
                let outputs: Vec<ModelOutput> = texts.iter().enumerate().map(|(i, t)| task.output(i, t)).collect();
                let results = score_prefix(task, &outputs, n)?;
                let m = metric(&results);
                (results, m)
            }
            Scoring::Arena { questions, baseline, judge } => {
                let (results, s, _) = judged::judge_arena(judge, &questions[..n], baseline, texts)?;
                (results, Metric { accuracy: s.accuracy, stderr: s.stderr, n: s.n_battles })
            }
            Scoring::Health { examples, judge } => {
                let (results, s) = judged::grade_healthbench(judge, &examples[..n], texts)?;
                (results, Metric { accuracy: s.accuracy, stderr: s.stderr, n: s.n_examples })
            }
        })
    }

    /// Judge replies served from the cache / asked, for the judged benchmarks.
    fn judge_usage(&self) -> Option<JudgeUsage> {
        match self {
            Scoring::Rule(_) => None,
            Scoring::Arena { judge, .. } | Scoring::Health { judge, .. } => Some(judge.usage()),
        }
    }
}

/// The endpoint for `bench`: [`JudgeConfig::endpoint`] already carries the
/// reference's `max_completion_tokens` 49152; Arena-Hard adds
/// `reasoning_effort` "medium" (REFERENCE-HARNESS.md §1). Fixed by the
/// harness, so covered by `plan::HARNESS_VERSION`.
fn judge_for(endpoint: &JudgeConfig, bench: BenchId) -> JudgeConfig {
    let mut cfg = endpoint.clone();
    if bench == BenchId::ArenaHardWriting {
        cfg.params.insert("reasoning_effort".into(), serde_json::json!("medium"));
    }
    cfg
}

fn no_judge(bench: BenchId) -> EvaluateError {
    EvaluateError::Usage(format!(
        "{} is scored by an LLM judge: add `llm-judge url=\"…\" model=\"…\"` to the eval stage (or pass --judge-url and --judge-model)",
        bench.name()
    ))
}

/// Load the checkpoint on the job's device and generate for `items`; the
/// completions and the checkpoint's disagreements with its base model.
struct Generate<'a> {
    job: &'a EvalJob,
    items: &'a [(String, ChatRequest)],
    reporter: &'a dyn ptb_engine::Reporter,
}

impl OnDevice for Generate<'_> {
    type Output = (Vec<Completion>, Vec<String>);
    type Error = EvaluateError;
    fn run<B: burn::prelude::Backend>(self, device: &B::Device, memory: Option<u64>) -> Result<Self::Output, EvaluateError> {
        let options = ptb_engine::EngineOptions { precision: self.job.dtype, memory, ..Default::default() };
        let engine = Engine::<B>::load_with(&self.job.checkpoint, &base_spec(self.job), device, options)?;
        let sampling = engine.default_sampling();
        let requests = self.items.iter().map(|(_, r)| to_request(r, self.job, &sampling)).collect::<Result<Vec<_>, _>>()?;
        let completions = engine.generate(&requests, self.reporter)?;
        let mismatches = engine.mismatches().iter().map(|x| format!("{}: declared {}, checkpoint {}", x.field, x.declared, x.checkpoint)).collect();
        Ok((completions, mismatches))
    }
}

pub fn run(job: &EvalJob, reporter: &dyn ptb_engine::Reporter) -> Result<EvalSummary, EvaluateError> {
    let (scoring, mut items) = Scoring::load(job)?;
    if let Some(n) = job.limit {
        items.truncate(n);
    }
    let (completions, mismatches) = ptb_engine::device::on_device(job.device, Generate { job, items: &items, reporter })?;
    let texts: Vec<String> = completions.iter().map(|c| c.text.clone()).collect();
    let (results, m) = scoring.score(&texts)?;

    std::fs::create_dir_all(&job.out).map_err(|source| EvaluateError::Write { path: job.out.clone(), source })?;
    let path = job.out.join("results.jsonl");
    let by_id: HashMap<&str, &ItemResult> = results.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|source| EvaluateError::Write { path: path.clone(), source })?);
    for ((id, _), c) in items.iter().zip(&completions) {
        let r = by_id.get(id.as_str());
        let line = Line {
            id,
            score: r.map(|r| r.score),
            answer: r.map(|r| r.answer.as_str()),
            completion: &c.text,
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            finish_reason: c.finish_reason,
        };
        writeln!(f, "{}", serde_json::to_string(&line).expect("serialises")).map_err(|source| EvaluateError::Write { path: path.clone(), source })?;
    }
    f.flush().map_err(|source| EvaluateError::Write { path: path.clone(), source })?;
    let summary = EvalSummary {
        score: m.accuracy,
        accuracy: m.accuracy,
        stderr: m.stderr,
        n: m.n,
        mismatches,
        completion_tokens: completions.iter().map(|c| c.completion_tokens).sum(),
        judge: scoring.judge_usage(),
    };
    // The whole summary for people and tools; metrics.json holds only flat
    // numbers, as the stage contract requires (docs/agent-contract.md).
    let spath = job.out.join("summary.json");
    std::fs::write(&spath, serde_json::to_string_pretty(&summary).expect("serialises")).map_err(|source| EvaluateError::Write { path: spath, source })?;
    let mpath = job.out.join("metrics.json");
    std::fs::write(&mpath, serde_json::to_string_pretty(&summary.metrics()).expect("serialises"))
        .map_err(|source| EvaluateError::Write { path: mpath, source })?;
    Ok(summary)
}

/// `Task::score` wants an output per item; with `--limit` only a prefix was
/// generated, so the rest are scored as empty and dropped.
fn score_prefix(task: &Task, outputs: &[ModelOutput], n: usize) -> Result<Vec<ItemResult>, EvaluateError> {
    let total = task.items().len();
    let mut padded = outputs.to_vec();
    padded.resize(total, ModelOutput::default());
    let mut results = task.score(&padded, &SandboxOptions::default())?;
    results.truncate(n);
    Ok(results)
}

/// A benchmark pinned as one file: a private directory holding only that
/// file under the name its loader opens (in a container the input is
/// `/inputs/data`, whatever the file was called). Reading the directory the
/// file came from instead would read files nobody hashed.
fn single_file_dir(bench: BenchId, file: &Path) -> Result<PathBuf, EvaluateError> {
    let Some(name) = ptb_bench::data::single_file(bench) else {
        return Err(EvaluateError::Usage(format!(
            "{} reads several files, but its data is pinned as the one file {}: pin the benchmark's directory (`benchmark {} data=\"…/data/bench/{}\"`)",
            bench.name(),
            file.display(),
            bench.name(),
            bench.name()
        )));
    };
    let dir = std::env::temp_dir().join(format!("ptb-data-{}", std::process::id()));
    let link = dir.join(name);
    let io = |source| EvaluateError::Write { path: link.clone(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(std::path::absolute(file).map_err(io)?, &link).map_err(io)?;
    Ok(dir)
}

impl EvalJob {
    /// Read the stage environment (`PTB_*`, docs/agent-contract.md).
    pub fn from_env() -> Result<EvalJob, EvaluateError> {
        let var =
            |k: &str| std::env::var(k).map_err(|_| EvaluateError::Usage(format!("{k} is not set: `ptb eval` runs inside an eval stage, or takes its flags")));
        let bench: BenchId = var("PTB_BENCHMARK")?.parse().map_err(BenchError::from)?;
        let data = PathBuf::from(var("PTB_INPUT_DATA")?);
        Ok(EvalJob {
            bench,
            checkpoint: PathBuf::from(var("PTB_INPUT_CHECKPOINT")?),
            base_model: std::env::var("PTB_INPUT_MODEL").ok().map(PathBuf::from),
            arch: match std::env::var("PTB_MODEL_ARCH").unwrap_or_default().as_str() {
                "" => None,
                a => Some(a.parse().map_err(|e: ptb_core::arch::UnknownArch| EvaluateError::Usage(format!("PTB_MODEL_ARCH: {e}")))?),
            },
            data: if data.is_file() { single_file_dir(bench, &data)? } else { data },
            out: PathBuf::from(var("PTB_OUT")?),
            seed: std::env::var("PTB_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0),
            limit: None,
            max_tokens: None,
            device: Default::default(),
            dtype: Default::default(),
            arena_baseline: arena::BASELINE_MODEL.into(),
            judge: JudgeConfig::from_env(),
        })
    }
}
