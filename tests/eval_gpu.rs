//! The engine on burn's GPU backends against the transformers fixtures. On the CPU backend
//! the engine runs ptb's own kernels; on a GPU it runs burn's ops, compiled by cubecl. Two
//! builds run this suite:
//!
//! - `--features wgpu`: burn's Vulkan backend, which lavapipe (Debian's `mesa-vulkan-drivers`)
//!   runs on the CPU. How the GPU's code path is checked where no GPU is lent; part of the
//!   README's test command.
//! - `--features cuda`: the same checks on CUDA device 0. Needs an NVIDIA GPU, so only where
//!   one is lent (`perf/gpu.sh` runs it there).
//!
//!   cargo test --features wgpu --test eval_gpu
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use burn::prelude::Backend;
use burn::tensor::DType;
use ptb_engine::{BaseModelSpec, Engine, Precision, Prompt, Request, Sampling, Silent};

#[path = "../crates/ptb-engine/tests/eval_fixtures/mod.rs"]
mod eval_fixtures;
use eval_fixtures::{ARCHS, LOGIT_TOL, cases, engine_in};

/// Max |Δlogit| over max |logit| with 16-bit weights, products and KV cache. f16 on lavapipe,
/// worst of the fifteen fixture prompts: 4.6e-3 (smollm3 prompt 1; the rest 4.9e-4 to
/// 2.2e-3); the bound is three times that. bf16 keeps 8 significant bits to f16's 11, so its bound is 8× f16's
/// (not yet measured: no CUDA device has run it).
const F16_TOL: f32 = 0.015;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const BF16_TOL: f32 = 8.0 * F16_TOL;

fn greedy(ids: &[u32], n: usize) -> Request {
    Request { prompt: Prompt::Tokens(ids.to_vec()), sampling: Sampling::default(), max_new_tokens: n, stop: vec![], ignore_eos: true }
}

fn matches_transformers<B: Backend>(backend: &str) {
    for arch in ARCHS {
        let e: Engine<B> = engine_in(arch, Precision::F32);
        let cs = cases(arch);
        for (i, c) in cs.iter().enumerate() {
            let got: Vec<f32> = e.logits(&c.ids).unwrap().concat();
            let max = got.iter().zip(&c.logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("{backend} {arch} prompt {i}: max |Δlogit| = {max:.2e}");
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

/// Weights in a 16-bit float (`--dtype`, bf16 by default on a GPU): every matrix product
/// rounds its inputs to `dtype`, and the KV cache holds `dtype`, so the logits move, but only
/// by what that rounding explains: at most `rel_tol` of the largest |logit|, against
/// transformers in f32, whether a prompt runs whole or its second half comes one by one
/// through the cache (which grows on the way). And they do move, or the products ran in f32
/// after all. Then a refill (more requests than rows) splices caches of that dtype.
fn half_weights_stay_near_transformers<B: Backend>(backend: &str, precision: Precision, dtype: DType, rel_tol: f32) {
    use ptb_engine::model::{Batch, KvCache};
    for arch in ARCHS {
        let e: Engine<B> = engine_in(arch, precision);
        assert_eq!(e.model.weight_dtype(), dtype, "{arch}");
        let v = e.model.cfg.vocab_size;
        for (i, c) in cases(arch).iter().enumerate() {
            let scale = c.logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let diff = |got: &[f32], want: &[f32]| got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let max = diff(&e.logits(&c.ids).unwrap().concat(), &c.logits);
            eprintln!("{backend} {dtype:?} {arch} prompt {i}: max |Δlogit| = {max:.2e} of max |logit| {scale:.2}");
            assert!(max <= rel_tol * scale, "{arch} prompt {i}: max |Δlogit| {max} > {rel_tol} × {scale}");
            assert!(max > 0.0, "{arch} prompt {i}: logits equal f32's to the bit; the products did not run in {dtype:?}");
            let first = (c.ids.len() / 2).max(1);
            let mut cache = KvCache::new(e.model.cfg.num_layers);
            let batch = Batch { pad: vec![0] };
            e.model.forward(&[c.ids[..first].to_vec()], &batch, &mut cache, true);
            for pos in first..c.ids.len() {
                let got = e.model.forward(&[vec![c.ids[pos]]], &batch, &mut cache, true);
                // Half the bytes off the device of f32 logits; widened on the host.
                assert_eq!(got.dtype(), dtype, "{arch}: logits leave the device in the weights' dtype");
                let got = got.cast(DType::F32).into_data().to_vec::<f32>().unwrap();
                let max = diff(&got, &c.logits[pos * v..(pos + 1) * v]);
                assert!(max <= rel_tol * scale, "{arch} prompt {i} position {pos} through the cache: max |Δlogit| {max}");
            }
        }
        let cs = cases(arch);
        let options = ptb_engine::EngineOptions { max_batch: 2, precision, ..Default::default() };
        let e: Engine<B> =
            Engine::load_with(&eval_fixtures::dir(arch), &BaseModelSpec::from_checkpoint(&eval_fixtures::dir(arch)).unwrap(), &Default::default(), options)
                .unwrap();
        let reqs: Vec<Request> = cs.iter().enumerate().map(|(k, c)| greedy(&c.ids, 3 + 5 * k)).collect();
        let out = e.generate(&reqs, &Silent).unwrap();
        assert_eq!(out.iter().map(|o| o.token_ids.len()).collect::<Vec<_>>(), reqs.iter().map(|r| r.max_new_tokens).collect::<Vec<_>>(), "{arch}");
    }
}

/// The real model (SmolLM2-135M-Instruct, from scripts/eval/ci-setup.sh) answers as under
/// transformers, token for token up to its EOS.
fn smollm2_answers_like_transformers<B: Backend>() {
    let gguf = eval_fixtures::root().join("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.exists(), "{} is missing: run scripts/eval/ci-setup.sh", gguf.display());
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval_fixtures::root().join("tests/fixtures/eval/smollm2/expected.json")).unwrap()).unwrap();
    let want: Vec<u32> = exp["greedy"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let base = BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None };
    let e = Engine::<B>::load(&gguf, &base, &Default::default()).unwrap();
    let prompt = Prompt::Messages(vec![ptb_engine::Message::new("user", "What is the capital of France?")]);
    let req = Request { prompt, sampling: Sampling::default(), max_new_tokens: want.len(), stop: vec![], ignore_eos: false };
    let out = e.generate(&[req], &Silent).unwrap().remove(0);
    assert!(out.text.contains("Paris"), "answer: {:?}", out.text);
    let end = want.iter().position(|t| e.eos_token_ids().contains(t)).unwrap_or(want.len());
    assert_eq!(out.token_ids, want[..end], "text: {:?}", out.text);
}

#[cfg(feature = "wgpu")]
#[test]
fn burn_ops_on_wgpu_match_transformers() {
    matches_transformers::<burn::backend::Wgpu>("wgpu");
}

/// lavapipe computes in f16 but not bf16; the same code path runs bf16 on CUDA.
#[cfg(feature = "wgpu")]
#[test]
fn f16_weights_on_wgpu_stay_near_transformers() {
    half_weights_stay_near_transformers::<burn::backend::Wgpu>("wgpu", Precision::F16, DType::F16, F16_TOL);
}

/// A Llama checkpoint with one layer and an f16 embedding of 151,936 × 2,048 (622 MB, one
/// buffer): more than lavapipe lets one buffer hold. cubecl's device thread panics and,
/// without ptb's watch, `ptb generate` went on generating from zeros and exited 0. Run as
/// its own process: a device thread's failure belongs to the process, not to one engine, so
/// in this one it would reach whichever test's engine checked first.
#[cfg(feature = "wgpu")]
#[test]
fn a_buffer_the_device_cannot_allocate_is_an_error_not_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let llama = eval_fixtures::dir("llama");
    for f in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(llama.join(f), dir.path().join(f)).unwrap();
    }
    let (vocab, hidden, heads, kv_heads, head_dim, ff) = (151_936usize, 2_048usize, 4usize, 2usize, 8usize, 64usize);
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(llama.join("config.json")).unwrap()).unwrap();
    for (k, v) in [
        ("vocab_size", vocab),
        ("hidden_size", hidden),
        ("num_hidden_layers", 1),
        ("num_attention_heads", heads),
        ("num_key_value_heads", kv_heads),
        ("head_dim", head_dim),
        ("intermediate_size", ff),
    ] {
        config[k] = v.into();
    }
    config["tie_word_embeddings"] = true.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let p = "model.layers.0.";
    let shapes: Vec<(String, Vec<usize>)> = [
        ("model.embed_tokens.weight".to_string(), vec![vocab, hidden]),
        ("model.norm.weight".into(), vec![hidden]),
        (format!("{p}input_layernorm.weight"), vec![hidden]),
        (format!("{p}post_attention_layernorm.weight"), vec![hidden]),
        (format!("{p}self_attn.q_proj.weight"), vec![heads * head_dim, hidden]),
        (format!("{p}self_attn.k_proj.weight"), vec![kv_heads * head_dim, hidden]),
        (format!("{p}self_attn.v_proj.weight"), vec![kv_heads * head_dim, hidden]),
        (format!("{p}self_attn.o_proj.weight"), vec![hidden, heads * head_dim]),
        (format!("{p}mlp.gate_proj.weight"), vec![ff, hidden]),
        (format!("{p}mlp.up_proj.weight"), vec![ff, hidden]),
        (format!("{p}mlp.down_proj.weight"), vec![hidden, ff]),
    ]
    .into();
    write_f16_safetensors(&dir.path().join("model.safetensors"), &shapes);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ptb"))
        .args(["generate", "--device", "wgpu", "--dtype", "f16", "--max-new-tokens", "3", "--prompt", "hello", "--model"])
        .arg(dir.path())
        .output()
        .unwrap();
    // The report as one line (miette wraps it to the terminal's width).
    let err = String::from_utf8_lossy(&out.stderr).split_whitespace().filter(|w| !matches!(*w, "│" | "×")).collect::<Vec<_>>().join(" ");
    assert!(!out.status.success(), "exited 0; printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("the device failed while loading the weights") && err.contains("622329856"), "{err}");
}

/// Every tensor filled with ±0.01 in f16, streamed (the file is 622 MB).
#[cfg(feature = "wgpu")]
fn write_f16_safetensors(path: &std::path::Path, shapes: &[(String, Vec<usize>)]) {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in shapes {
        let bytes = 2 * shape.iter().product::<usize>();
        header.insert(name.clone(), serde_json::json!({"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + bytes]}));
        offset += bytes;
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    let chunk: Vec<u8> = [half::f16::from_f32(0.01), half::f16::from_f32(-0.01)].iter().flat_map(|x| x.to_le_bytes()).cycle().take(1 << 20).collect();
    let mut left = offset;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

#[cfg(feature = "wgpu")]
#[test]
fn smollm2_on_wgpu_answers_like_transformers() {
    smollm2_answers_like_transformers::<burn::backend::Wgpu>();
}

#[cfg(feature = "cuda")]
#[test]
fn burn_ops_on_cuda_match_transformers_needs_gpu() {
    matches_transformers::<burn::backend::Cuda>("cuda");
}

/// `auto` on a GPU with bf16 fixtures: bf16.
#[cfg(feature = "cuda")]
#[test]
fn bf16_weights_on_cuda_stay_near_transformers_needs_gpu() {
    half_weights_stay_near_transformers::<burn::backend::Cuda>("cuda", Precision::Auto, DType::BF16, BF16_TOL);
}

#[cfg(feature = "cuda")]
#[test]
fn smollm2_on_cuda_answers_like_transformers_needs_gpu() {
    smollm2_answers_like_transformers::<burn::backend::Cuda>();
}
