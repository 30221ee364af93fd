//! Throughput of the evaluation engine: prefill and decode tokens/s, and ms per decode step.
//!
//!   bash scripts/eval/ci-setup.sh && cargo bench -p ptb-engine --bench eval_generate
//!   python perf/eval_transformers.py   # the same measurements with transformers
//!
//! Model: SmolLM2-135M-Instruct (GGUF from ci-setup, or $PTB_SMOLLM2_GGUF), or a checkpoint
//! directory given as the first argument (e.g. tests/fixtures/eval/qwen3, a tiny random one,
//! or perf/make_random_checkpoint.py's Qwen3-1.7B shape).
//! Prompts: the same synthetic 64-token prompts in both scripts (token ids from 1000, modulo
//! the vocabulary; no chat template), 32 greedy new tokens, EOS ignored.
//! `bash perf/eval_compare.sh [DIR]` runs this and the transformers script interleaved on
//! the CPU; `perf/gpu.sh` runs both on a GPU.
//!
//! Options: `--device cpu|cuda:N|wgpu` (default cpu; the GPU backends need the build's
//! `cuda` / `wgpu` feature), `--logits FILE` (writes the last position's logits for the
//! first batch-1 prompt as little-endian f32, for perf/eval_transformers.py to compare),
//! `PTB_BENCH_BATCHES=1,64` (default 1,32).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::Backend;
use ptb_engine::device::{OnDevice, on_device};
use ptb_engine::{BaseModelSpec, Engine, EngineOptions, EvalError, Prompt, Request, Sampling, Silent};

const PROMPT_LEN: usize = 64;
const NEW_TOKENS: usize = 32;

struct Bench {
    path: PathBuf,
    device: String,
    logits: Option<PathBuf>,
    batches: Vec<usize>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut path, mut device, mut logits) = (None, "cpu".to_string(), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--device" => device = args.next().expect("--device DEV"),
            "--logits" => logits = Some(PathBuf::from(args.next().expect("--logits FILE"))),
            // `cargo bench` passes `--bench`.
            s if s.starts_with("--") => {}
            s => path = Some(PathBuf::from(s)),
        }
    }
    let path = path.unwrap_or_else(|| {
        std::env::var_os("PTB_SMOLLM2_GGUF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf")))
    });
    if !path.exists() {
        eprintln!("{} is missing: run scripts/eval/ci-setup.sh", path.display());
        std::process::exit(2);
    }
    // PTB_BENCH_BATCHES=1 measures one size alone, e.g. under a profiler.
    let batches = std::env::var("PTB_BENCH_BATCHES")
        .map(|v| v.split(',').map(|b| b.trim().parse().expect("PTB_BENCH_BATCHES: comma-separated sizes")).collect())
        .unwrap_or_else(|_| vec![1, 32]);
    let on: ptb_engine::device::Device = match device.parse() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = on_device(on, Bench { path, device, logits, batches }) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn base_model(path: &Path) -> BaseModelSpec {
    if path.extension().is_some_and(|e| e == "gguf") {
        BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None }
    } else {
        BaseModelSpec::from_checkpoint(path).expect("config.json")
    }
}

impl OnDevice for Bench {
    type Output = ();
    type Error = EvalError;
    fn run<B: Backend>(self, device: &B::Device, memory: Option<u64>) -> Result<(), EvalError> {
        let t = Instant::now();
        let max_batch = self.batches.iter().copied().max().unwrap_or(1);
        let options = EngineOptions { max_batch, memory, ..Default::default() };
        let e = Engine::<B>::load_with(&self.path, &base_model(&self.path), device, options)?;
        println!("model {} loaded in {:.1}s on {}, weights in {:?}", self.path.display(), t.elapsed().as_secs_f64(), self.device, e.model.weight_dtype());
        let vocab = e.model.cfg.vocab_size;
        // Modulo the vocabulary, so the tiny fixtures (320 tokens) run too.
        let prompt = |b: usize| (0..PROMPT_LEN).map(|i| ((1000 + (i * 7 + b * 13) % 5000) % vocab) as u32).collect::<Vec<u32>>();
        if let Some(out) = &self.logits {
            let all = e.logits(&prompt(0))?;
            let last = all.last().expect("a 64-token prompt");
            let bytes: Vec<u8> = last.iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(out, bytes).unwrap_or_else(|err| panic!("{}: {err}", out.display()));
        }
        for &batch in &self.batches {
            let reqs: Vec<Request> = (0..batch)
                .map(|b| Request {
                    prompt: Prompt::Tokens(prompt(b)),
                    sampling: Sampling::default(),
                    max_new_tokens: NEW_TOKENS,
                    stop: vec![],
                    ignore_eos: true,
                })
                .collect();
            // Warm-up (on a GPU: kernel compilation and autotuning), then one measured run.
            let _ = e.generate(&reqs, &Silent)?;
            let out = e.generate(&reqs, &Silent)?;
            let prefill = out[0].prefill_time.as_secs_f64();
            let decode = out[0].decode_time.as_secs_f64();
            // The first new token comes from the prefill's logits: the decode steps make the rest.
            let steps = out[0].completion_tokens - 1;
            let generated: usize = out.iter().map(|c| c.completion_tokens - 1).sum();
            println!(
                "ptb batch {batch:>2}: prefill {:>8.1} tok/s, decode {:>8.1} tok/s ({:.2} ms/step, {generated} tokens in {decode:.2}s)",
                (batch * PROMPT_LEN) as f64 / prefill,
                generated as f64 / decode,
                decode * 1e3 / steps as f64
            );
        }
        Ok(())
    }
}
