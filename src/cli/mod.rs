//! Command-line interface: the top-level parser. Each subcommand's flags and
//! its one call into the libraries are in `commands/<name>.rs`.

mod commands;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ptb", version, about = "Declarative, content-addressed experiment runner for LLM post-training (PostTrainBench)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Where {
    /// Store directory (default: the spec's `store`, else `store/` beside the spec's directory).
    #[arg(long, env = "PTB_STORE")]
    pub store: Option<PathBuf>,
    /// Lockfile (default: the spec's `lockfile`, else `lockfiles/<experiment>.lock`).
    #[arg(long)]
    pub lockfile: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what `apply` would run and why.
    Plan(commands::plan::Args),
    /// Run what the plan says; record results in the lockfile.
    Apply(commands::apply::Args),
    /// Re-resolve hub models' revisions and rewrite their pins in the
    /// lockfile, fetching what changed (as `cargo update`).
    Update(commands::update::Args),
    /// Explain, per stage, why a cell would run or is up to date.
    Why(commands::why::Args),
    /// Render tables from a lockfile with a minijinja template.
    Report(commands::report::Args),
    /// Remove store entries that no lockfile references.
    Gc(commands::gc::Args),
    /// Re-hash store entries and report any that changed on disk.
    Verify(commands::verify::Args),
    /// Print the content hash of a file or directory (for `sha256=` pins).
    Hash(commands::hash::Args),
    /// Benchmark tools: `ptb bench check BENCH` validates a scorer on the
    /// benchmark's own reference answers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Generate continuations with the in-process evaluation engine (burn).
    Generate(commands::generate::Args),
    /// Evaluate a checkpoint on a benchmark with the built-in evaluator: what
    /// an eval stage runs as `command "ptb" "eval"`. Inside a stage every
    /// input comes from PTB_* variables; flags override them.
    Eval(EvalArgs),
    /// Judge an agent's run with the built-in anti-cheat judge: what a judge
    /// stage runs as `command "ptb" "judge"`. Writes verdict.json (findings:
    /// contamination, substitution, tampering) and metrics.json (`verdict`
    /// = pass/flagged). Inside a stage inputs come from PTB_*; flags override.
    Judge(commands::judge::Args),
    /// Show a stage's log.
    Logs(commands::logs::Args),
    /// What runs now: stages queued or running on Slurm (for how long, on
    /// which node) and the GPU-hours spent and left.
    Status(commands::status::Args),
    /// Run one Slurm job's stage on this node (what ptb's sbatch scripts run).
    #[command(hide = true)]
    StageRun(commands::stage_run::Args),
}

/// An OpenAI-compatible LLM endpoint given on the command line (`ptb eval`'s
/// judge, `ptb judge`'s reviewer); inside a stage the `PTB_JUDGE_*`
/// variables give it, and these flags override them.
#[derive(clap::Args, Debug)]
pub struct LlmEndpointArgs {
    /// The LLM judge: an OpenAI-compatible base URL (default: $PTB_JUDGE_URL).
    #[arg(long, requires = "judge_model")]
    pub judge_url: Option<String>,
    /// The judge's model name (default: $PTB_JUDGE_MODEL).
    #[arg(long, requires = "judge_url")]
    pub judge_model: Option<String>,
    /// Variable holding the judge's API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub judge_api_key_env: String,
    /// Directory caching the judge's replies (default: $PTB_CACHE_JUDGE; none).
    #[arg(long)]
    pub judge_cache: Option<PathBuf>,
}

impl LlmEndpointArgs {
    /// The endpoint: these flags over the stage's (`from_env`).
    pub fn over(self, from_env: Option<ptb_bench::judge::JudgeConfig>) -> Option<ptb_bench::judge::JudgeConfig> {
        match (self.judge_url, self.judge_model) {
            (Some(url), Some(model)) => {
                let cache = self.judge_cache.or_else(|| from_env.and_then(|j| j.cache_dir));
                Some(ptb_bench::judge::JudgeConfig::endpoint(url, model, self.judge_api_key_env, None, cache))
            }
            _ => from_env.map(|mut j| {
                j.cache_dir = self.judge_cache.or(j.cache_dir);
                j
            }),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Benchmark (default: $PTB_BENCHMARK).
    #[arg(long)]
    pub bench: Option<String>,
    /// Checkpoint directory or .gguf (default: $PTB_INPUT_CHECKPOINT).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The declared base model directory (default: $PTB_INPUT_MODEL).
    #[arg(long)]
    pub base_model: Option<PathBuf>,
    /// Declared architecture: qwen3, smollm3, gemma3, llama (default: $PTB_MODEL_ARCH).
    #[arg(long)]
    pub arch: Option<String>,
    /// Benchmark data directory (default: $PTB_INPUT_DATA).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where results.jsonl and metrics.json go (default: $PTB_OUT).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only the first N items (smoke runs; not for reported numbers).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Cap on new tokens per item, below the benchmark's own.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// The LLM judge of arenahardwriting and healthbench.
    #[command(flatten)]
    pub judge: LlmEndpointArgs,
    /// `cpu`, `cuda:N` (needs a build with `--features cuda`; in a stage,
    /// N counts the GPUs the stage was given) or `wgpu` (`--features wgpu`).
    #[arg(long, default_value = "cpu")]
    pub device: ptb_engine::device::Device,
    /// Dtype of the weights on the device: `auto` (the checkpoint's own bf16/f16 where the
    /// device computes in it, else f32), `f32`, `bf16` or `f16`.
    #[arg(long, default_value = "auto")]
    pub dtype: ptb_engine::Precision,
    /// Arena-Hard's baseline: reads `arenahard_baseline_<MODEL>.jsonl`. The
    /// reference's is Qwen3-1.7B; `gemini-2.0-flash-001` (Arena-Hard v2's
    /// own) comes from a PyPI package.
    #[arg(long, default_value = ptb_bench::arena::BASELINE_MODEL)]
    pub arena_baseline: String,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Run a benchmark's scorer on its own reference answers and on corrupted
    /// ones; prints N/M per check and exits non-zero unless all pass.
    Check {
        /// aime2025, gsm8k, gpqamain, humaneval, bfcl, arenahardwriting, healthbench, or `all`.
        bench: String,
        /// Data directory (default data/bench), GPQA CSV, or for the judged
        /// benchmarks the directory of recorded verdicts.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Score completions generated elsewhere (vLLM, another harness) with
    /// ptb's scorers: one line per item and the total.
    Score {
        /// aime2025, gsm8k, gpqamain, humaneval or bfcl.
        bench: String,
        /// JSON Lines: {"id": ITEM_ID, "completion": TEXT} per item (BFCL may
        /// add "tool_calls" as an OpenAI-compatible server returns them).
        #[arg(long)]
        completions: PathBuf,
        /// Data directory (default data/bench; GPQA: the CSV).
        #[arg(long)]
        data: Option<PathBuf>,
        /// One JSON object: per-item results and the total.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: Cli) -> miette::Result<std::process::ExitCode> {
    commands::dispatch(cli.command)
}
