//! `ptb generate`: argument parsing and output only; the work is [`Engine::generate`].

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::prelude::Backend;

use ptb_engine::chat::Message;
use ptb_engine::config::BaseModelSpec;
use ptb_engine::engine::{Engine, EngineOptions, Prompt, Reporter, Request};
use ptb_engine::error::{EvalError, Result};
use ptb_engine::sampling::Sampling;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Checkpoint directory (Hugging Face layout) or a .gguf file.
    #[arg(long)]
    pub model: PathBuf,
    /// One prompt; its continuation is printed.
    #[arg(long, conflicts_with = "prompts")]
    pub prompt: Option<String>,
    /// JSON Lines of requests (`{"prompt": {"raw": ..}|{"messages": [..]}, "max_new_tokens": ..}`
    /// or `{"text": ..}`); one JSON completion per line is printed, in order.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Treat --prompt (and `text` lines) as a user message and apply the chat template.
    #[arg(long)]
    pub chat: bool,
    /// Base model architecture (e.g. Qwen3ForCausalLM); default: the checkpoint's own claim.
    #[arg(long)]
    pub architecture: Option<String>,
    /// Chat template file to use instead of the checkpoint's.
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Requests decoded together.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// `cpu`, `cuda:N` (needs a build with `--features cuda`) or `wgpu` (`--features wgpu`).
    #[arg(long, default_value = "cpu")]
    pub device: ptb_engine::device::Device,
    /// Dtype of the weights on the device: `auto` (the checkpoint's own bf16/f16 where the
    /// device computes in it, else f32), `f32`, `bf16` or `f16`.
    #[arg(long, default_value = "auto")]
    pub dtype: ptb_engine::precision::Precision,
}

/// Prints generated tokens per second to stderr about once a second, timed from the first
/// batch (not from model loading).
#[derive(Default)]
pub struct TextReporter {
    start: std::sync::OnceLock<Instant>,
    tokens: AtomicUsize,
    last: AtomicUsize,
}

impl Reporter for TextReporter {
    fn batch_started(&self, _requests: usize, _prompt_tokens: usize) {
        self.start.get_or_init(Instant::now);
    }
    fn tokens_generated(&self, n: usize) {
        let total = self.tokens.fetch_add(n, Ordering::Relaxed) + n;
        let secs = self.start.get_or_init(Instant::now).elapsed().as_secs_f64();
        if secs as usize > self.last.swap(secs as usize, Ordering::Relaxed) {
            eprintln!("generated {total} tokens, {:.1} tokens/s", total as f64 / secs.max(1e-9));
        }
    }
}

pub fn cli_generate(args: Args) -> Result<()> {
    cli_generate_with(args, &TextReporter::default())
}

pub fn cli_generate_with(args: Args, reporter: &dyn Reporter) -> Result<()> {
    ptb_engine::device::on_device(args.device, Generate { args: &args, reporter })
}

struct Generate<'a> {
    args: &'a Args,
    reporter: &'a dyn Reporter,
}

impl ptb_engine::device::OnDevice for Generate<'_> {
    type Output = ();
    type Error = EvalError;
    fn run<B: Backend>(self, device: &B::Device, memory: Option<u64>) -> Result<()> {
        run::<B>(self.args, device, memory, self.reporter)
    }
}

fn run<B: Backend>(args: &Args, device: &B::Device, memory: Option<u64>, reporter: &dyn Reporter) -> Result<()> {
    let mut base = match &args.architecture {
        Some(a) => BaseModelSpec { architecture: a.clone(), chat_template: None, config: None },
        None if args.model.extension().is_some_and(|e| e == "gguf") => {
            BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None }
        }
        None => BaseModelSpec::from_checkpoint(&args.model)?,
    };
    if let Some(p) = &args.chat_template {
        base.chat_template = Some(std::fs::read_to_string(p).map_err(|e| EvalError::io(p, e))?);
    }
    let options = EngineOptions { max_batch: args.batch_size, precision: args.dtype, memory, ..Default::default() };
    let engine = Engine::<B>::load_with(&args.model, &base, device, options)?;
    eprintln!("weights in {:?} (--dtype {}), {}", engine.model.weight_dtype(), args.dtype, ptb_engine::engine::human_bytes(engine.model.weight_bytes()));
    if let Some(kv) = engine.kv_budget() {
        eprintln!("KV cache budget {}: requests join while it could hold all at their longest", ptb_engine::engine::human_bytes(kv));
    }
    for m in engine.mismatches() {
        eprintln!("warning: checkpoint {} is `{}`, the base model's is `{}`", m.field, m.checkpoint, m.declared);
    }
    let sampling = Sampling { temperature: args.temperature, top_p: args.top_p, top_k: 0, seed: args.seed };
    let make = |text: String| Request {
        prompt: if args.chat { Prompt::Messages(vec![Message::new("user", &text)]) } else { Prompt::Raw(text) },
        sampling: sampling.clone(),
        max_new_tokens: args.max_new_tokens,
        stop: args.stop.clone(),
        ignore_eos: false,
    };
    if let Some(p) = &args.prompt {
        let out = engine.generate(&[make(p.clone())], reporter)?;
        println!("{}", out[0].text);
        return Ok(());
    }
    let Some(path) = &args.prompts else {
        return Err(EvalError::Request { index: 0, problem: "give --prompt TEXT or --prompts FILE.jsonl".into() });
    };
    let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
    let mut requests = vec![];
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| EvalError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| EvalError::Request { index: i, problem: format!("{}: {e}", path.display()) })?;
        let req = match v.get("text").and_then(|t| t.as_str()) {
            Some(t) => make(t.to_string()),
            None => serde_json::from_value(v).map_err(|e| EvalError::Request { index: i, problem: format!("{}: {e}", path.display()) })?,
        };
        requests.push(req);
    }
    let out = engine.generate(&requests, reporter)?;
    let mut stdout = std::io::stdout().lock();
    for c in out {
        let line = serde_json::to_string(&c).map_err(|e| EvalError::Backend(e.to_string()))?;
        writeln!(stdout, "{line}").map_err(|e| EvalError::io("<stdout>", e))?;
    }
    Ok(())
}
