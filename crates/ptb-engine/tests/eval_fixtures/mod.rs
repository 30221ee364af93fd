//! The tiny random-weight checkpoints (tests/fixtures/eval/<arch>/, made by
//! scripts/make-fixtures.py) and what transformers 4.57.3 computed for them, shared by the
//! engine's suites on each backend.
#![allow(dead_code)] // each suite uses its own subset

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use ptb_engine::{BaseModelSpec, Engine, EngineOptions, Precision};
use safetensors::SafeTensors;

pub const ARCHS: [&str; 5] = ["llama", "qwen3", "smollm3", "gemma3", "gemma3_multimodal"];
/// Max |Δlogit| vs transformers in f32.
pub const LOGIT_TOL: f32 = 1e-4;

/// The repository: the nearest directory holding `tests/fixtures/eval` above
/// `CARGO_MANIFEST_DIR` as set at run time (cargo sets it to the testing crate's
/// directory; perf/gpu.sh sets it to the repository, for a test binary built on
/// another machine), else above where it was built.
pub fn root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start.ancestors().find(|d| d.join("tests/fixtures/eval").is_dir()).map(Path::to_path_buf).unwrap_or(start)
}

pub fn dir(arch: &str) -> PathBuf {
    root().join("tests/fixtures/eval").join(arch)
}

pub fn engine<B: Backend>(arch: &str) -> Engine<B> {
    engine_in(arch, Precision::Auto)
}

/// With the weights in `precision` (the fixtures are bf16 on disk, so `auto` is bf16 on a
/// device that computes in bf16).
pub fn engine_in<B: Backend>(arch: &str, precision: Precision) -> Engine<B> {
    let d = dir(arch);
    let base = BaseModelSpec::from_checkpoint(&d).unwrap();
    let options = EngineOptions { precision, ..Default::default() };
    Engine::load_with(&d, &base, &Default::default(), options).unwrap_or_else(|e| panic!("{arch}: {e}"))
}

/// A prompt, transformers' greedy continuation and its logits for every prompt position.
pub struct Case {
    pub ids: Vec<u32>,
    pub greedy: Vec<u32>,
    pub logits: Vec<f32>,
}

pub fn cases(arch: &str) -> Vec<Case> {
    let d = dir(arch);
    let exp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    let bytes = std::fs::read(d.join("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
    exp["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let t = st.tensor(&format!("logits_{i}")).unwrap();
            let logits = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Case { ids: ids(&p["ids"]), greedy: ids(&p["greedy"]), logits }
        })
        .collect()
}
