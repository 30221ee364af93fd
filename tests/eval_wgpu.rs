//! The GPU's code path without a GPU: the engine on burn's wgpu backend (built with
//! `--features wgpu`; lavapipe, Debian's `mesa-vulkan-drivers`, runs it on the CPU) against
//! the transformers fixtures. On the CPU backend the engine runs ptb's own kernels; on a GPU
//! it runs burn's ops, compiled by cubecl, which is what CUDA runs too. This suite is how
//! that path is checked where no GPU is lent. Not in the default `cargo test` (the wgpu
//! build is heavy):
//!
//!   cargo test --features wgpu --test eval_wgpu
#![cfg(feature = "wgpu")]

use std::path::Path;

use burn::backend::Wgpu;
use ptb::eval::{BaseModelSpec, Engine, Prompt, Request, Sampling, Silent};

mod eval_fixtures;
use eval_fixtures::{ARCHS, LOGIT_TOL, cases};

fn engine(arch: &str) -> Engine<Wgpu> {
    eval_fixtures::engine(arch)
}

fn greedy(ids: &[u32], n: usize) -> Request {
    Request { prompt: Prompt::Tokens(ids.to_vec()), sampling: Sampling::default(), max_new_tokens: n, stop: vec![], ignore_eos: true }
}

#[test]
fn burn_ops_on_wgpu_match_transformers() {
    for arch in ARCHS {
        let e = engine(arch);
        let cs = cases(arch);
        for (i, c) in cs.iter().enumerate() {
            let got: Vec<f32> = e.logits(&c.ids).unwrap().concat();
            let max = got.iter().zip(&c.logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("wgpu {arch} prompt {i}: max |Δlogit| = {max:.2e}");
            assert!(max < LOGIT_TOL, "{arch} prompt {i}: max |Δlogit| {max}");
            let out = e.generate(&[greedy(&c.ids, c.greedy.len())], &Silent).unwrap().remove(0);
            assert_eq!(out.token_ids, c.greedy, "{arch} prompt {i}: greedy tokens");
        }
        // Ragged prompts in one batch (left padding, masks, the KV cache) give what each
        // gives alone.
        let reqs: Vec<Request> = cs.iter().map(|c| greedy(&c.ids, c.greedy.len())).collect();
        let batched = e.generate(&reqs, &Silent).unwrap();
        for (i, (out, c)) in batched.iter().zip(&cs).enumerate() {
            assert_eq!(out.token_ids, c.greedy, "{arch} prompt {i} in a batch of {}", reqs.len());
        }
    }
}

/// The real model (SmolLM2-135M-Instruct, from scripts/eval/ci-setup.sh) answers as under
/// transformers, token for token up to its EOS.
#[test]
fn smollm2_on_wgpu_answers_like_transformers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf = root.join("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.exists(), "{} is missing: run scripts/eval/ci-setup.sh", gguf.display());
    let exp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("tests/fixtures/eval/smollm2/expected.json")).unwrap()).unwrap();
    let want: Vec<u32> = exp["greedy"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let base = BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None };
    let e = Engine::<Wgpu>::load(&gguf, &base, &Default::default()).unwrap();
    let prompt = Prompt::Messages(vec![ptb::eval::Message::new("user", "What is the capital of France?")]);
    let req = Request { prompt, sampling: Sampling::default(), max_new_tokens: want.len(), stop: vec![], ignore_eos: false };
    let out = e.generate(&[req], &Silent).unwrap().remove(0);
    assert!(out.text.contains("Paris"), "answer: {:?}", out.text);
    let end = want.iter().position(|t| e.eos_token_ids().contains(t)).unwrap_or(want.len());
    assert_eq!(out.token_ids, want[..end], "text: {:?}", out.text);
}
