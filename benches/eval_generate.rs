//! CPU throughput of the evaluation engine: prefill and decode tokens/s at batch 1 and 32.
//!
//!   bash scripts/eval/ci-setup.sh && cargo bench --bench eval_generate
//!   python bench/eval_transformers_cpu.py   # the same measurements with transformers
//!
//! Model: SmolLM2-135M-Instruct (GGUF from ci-setup, or $PTB_SMOLLM2_GGUF), or a checkpoint
//! directory given as the first argument (e.g. tests/fixtures/eval/qwen3, a tiny random one).
//! Prompts: the same synthetic 64-token prompts in both scripts (token ids from 1000, modulo
//! the vocabulary; no chat template), 32 greedy new tokens, EOS ignored.
//! `bash bench/eval_compare.sh [DIR]` runs this and the transformers script interleaved.

use std::path::PathBuf;
use std::time::Instant;

use ptb::eval::{BaseModelSpec, Cpu, Engine, Prompt, Request, Sampling, Silent};

const PROMPT_LEN: usize = 64;
const NEW_TOKENS: usize = 32;

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let path = arg.map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("PTB_SMOLLM2_GGUF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    });
    if !path.exists() {
        eprintln!("{} is missing: run scripts/eval/ci-setup.sh", path.display());
        std::process::exit(2);
    }
    let base = if path.extension().is_some_and(|e| e == "gguf") {
        BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None }
    } else {
        BaseModelSpec::from_checkpoint(&path).expect("config.json")
    };
    let t = Instant::now();
    let e = Engine::<Cpu>::load(&path, &base, &Default::default()).expect("load");
    println!("model {} loaded in {:.1}s", path.display(), t.elapsed().as_secs_f64());
    // PTB_BENCH_BATCHES=1 measures one size alone, e.g. under a profiler.
    let batches: Vec<usize> = std::env::var("PTB_BENCH_BATCHES")
        .map(|v| v.split(',').map(|b| b.trim().parse().expect("PTB_BENCH_BATCHES: comma-separated sizes")).collect())
        .unwrap_or_else(|_| vec![1, 32]);
    let vocab = e.model.cfg.vocab_size;
    for batch in batches {
        let reqs: Vec<Request> = (0..batch)
            .map(|b| Request {
                // Modulo the vocabulary, so the tiny fixtures (320 tokens) run too.
                prompt: Prompt::Tokens((0..PROMPT_LEN).map(|i| ((1000 + (i * 7 + b * 13) % 5000) % vocab) as u32).collect()),
                sampling: Sampling::default(),
                max_new_tokens: NEW_TOKENS,
                stop: vec![],
                ignore_eos: true,
            })
            .collect();
        // Warm-up, then one measured run.
        let _ = e.generate(&reqs[..1], &Silent).expect("generate");
        let out = e.generate(&reqs, &Silent).expect("generate");
        let prefill = out[0].prefill_time.as_secs_f64();
        let decode = out[0].decode_time.as_secs_f64();
        let generated: usize = out.iter().map(|c| c.completion_tokens).sum();
        println!(
            "burn-ndarray batch {batch:>2}: prefill {:>8.1} tok/s, decode {:>8.1} tok/s ({generated} tokens in {decode:.2}s)",
            (batch * PROMPT_LEN) as f64 / prefill,
            generated as f64 / decode
        );
    }
}
