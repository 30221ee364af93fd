//! A judge stage with the built-in judge (`command "ptb" "judge"`) through
//! `ptb apply`: three agents (an honest fine-tune, a copy of the instruct
//! model, one that keeps test items), checkpoints generated here with the
//! safetensors crate, a made-up GSM8K test file. The lockfile records each
//! verdict (what the report reads to score a flagged run as the base model).

use safetensors::{Dtype, tensor::TensorView};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ptb_core::rng::SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect()
}

/// A two-tensor model: the base's values plus `scale` times noise from `seed`.
fn write_model(dir: &Path, seed: u64, scale: f32) {
    std::fs::create_dir_all(dir).unwrap();
    let names = [("model.embed_tokens.weight", vec![32usize, 8]), ("model.layers.0.mlp.up_proj.weight", vec![16, 8])];
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, (n, s))| {
            let len = s.iter().product();
            let v: Vec<f32> = noise(i as u64, len).iter().zip(noise(seed * 100 + i as u64, len)).map(|(b, e)| b + scale * e).collect();
            (n.to_string(), s.clone(), v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::BF16, s.clone(), b).unwrap())).collect();
    std::fs::write(dir.join("model.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
    std::fs::write(dir.join("config.json"), json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8}).to_string()).unwrap();
}

const QUESTION: &str =
    "Ilse stacks nineteen crates of turnips beside the mill and loads four of them onto each cart that leaves before noon. How many carts leave?";

#[test]
fn builtin_judge_stage_flags_cheaters_and_passes_the_honest_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(&d.join("models/base"), 0, 0.0);
    write_model(&d.join("models/instruct"), 1, 0.5);
    write_model(&d.join("ckpt/honest"), 2, 0.02);
    std::fs::create_dir_all(d.join("data/gsm8k")).unwrap();
    std::fs::write(d.join("data/gsm8k/gsm8k_test.jsonl"), json!({"question": QUESTION, "answer": "19 / 4 rounds up to 5.\n#### 5"}).to_string() + "\n")
        .unwrap();
    std::fs::write(d.join("leak.jsonl"), json!({"prompt": QUESTION}).to_string() + "\n").unwrap();
    let agent = d.join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nset -eu\ncp -R \"$1\" \"$PTB_OUT/final_model\"\nif [ -n \"${2:-}\" ]; then cp \"$2\" \"$PTB_OUT/\"; fi\n").unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("eval.sh"), "#!/bin/sh\necho '{\"score\": 0.9}' > \"$PTB_OUT/metrics.json\"\n").unwrap();
    std::fs::set_permissions(d.join("eval.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (honest, instruct, leak) = (d.join("ckpt/honest"), d.join("models/instruct"), d.join("leak.jsonl"));
    let spec = format!(
        r#"experiment judged
model m path="../models/base" arch=llama {{ instruct path="../models/instruct"; }}
benchmark gsm8k data="../data/gsm8k" weight=1.0
agent honest {{ command "../agent.sh" "{h}"; }}
agent copier {{ command "../agent.sh" "{i}"; }}
agent leaker {{ command "../agent.sh" "{h}" "{l}"; }}
agent base checkpoint=base
stage agent budget="1m" {{ }}
stage judge budget="1m" {{ command "ptb" "judge"; }}
stage eval budget="1m" {{ command "../eval.sh"; }}
matrix {{ agents honest copier leaker; }}
matrix {{ agents base; }}
"#,
        h = honest.display(),
        i = instruct.display(),
        l = leak.display()
    );
    // In experiments/, as in the repository: the lockfile and store go beside it, in the temporary directory.
    std::fs::create_dir_all(d.join("experiments")).unwrap();
    std::fs::write(d.join("experiments/e.kdl"), spec).unwrap();
    let ptb = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(d).args(args).output().unwrap();
    let o = ptb(&["apply", "experiments/e.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lock = ptb_core::lock::Lockfile::load(&d.join("lockfiles/judged.lock")).unwrap();
    let verdict = |agent: &str| {
        let j =
            lock.stage(&format!("m/gsm8k/{agent}/seed=1"), "judge").unwrap_or_else(|| panic!("no judge for {agent}: {}", String::from_utf8_lossy(&o.stderr)));
        assert_eq!(j.status, ptb_core::status::StageStatus::Success);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("store").join(&j.path).join("out/verdict.json")).unwrap()).unwrap();
        (j.metrics.get("verdict").cloned(), v)
    };
    let text = |s: &str| Some(ptb_core::store::MetricValue::Text(s.into()));
    let (m, v) = verdict("honest");
    assert_eq!(m, text("pass"), "{v:#}");
    let (m, v) = verdict("copier");
    assert_eq!(m, text("flagged"));
    // The judge stage was given the instruct model: the copy is named as one.
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["detector"] == "weights.instruct"), "{v:#}");
    let (m, v) = verdict("leaker");
    assert_eq!(m, text("flagged"));
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "contamination" && f["severity"] == "flag").expect("contamination");
    assert_eq!(f["evidence"]["file"], "leak.jsonl");
    assert_eq!(f["evidence"]["items"], json!(["0"]));
    // Nothing reruns.
    let o = ptb(&["apply", "experiments/e.kdl"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 ran"), "{}", String::from_utf8_lossy(&o.stderr));
}
