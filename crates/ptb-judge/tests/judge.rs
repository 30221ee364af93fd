//! The judge on made-up runs: checkpoints generated here with the
//! safetensors crate (a small random base, an "instruct" model = base + a
//! large delta, an honest fine-tune = base + a small delta), a made-up
//! GSM8K-style test file, and one agent output per way of cheating. Each
//! test asserts what a user reads in verdict.json / metrics.json.

use ptb_judge::finding::{Kind, Severity};
use ptb_judge::{JudgeJob, Options, Verdict};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Deterministic pseudo-random numbers in [-1, 1) (ptb-core's SplitMix64).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ptb_core::rng::SplitMix64::new(seed);
    (0..n).map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect()
}

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// A tiny Llama-shaped model with tied embeddings (no lm_head).
fn base_tensors(vocab: usize) -> Tensors {
    let shapes: Vec<(&str, Vec<usize>)> = vec![
        ("model.embed_tokens.weight", vec![vocab, 16]),
        ("model.layers.0.self_attn.q_proj.weight", vec![16, 16]),
        ("model.layers.0.self_attn.k_proj.weight", vec![8, 16]),
        ("model.layers.0.mlp.up_proj.weight", vec![32, 16]),
        ("model.layers.0.mlp.down_proj.weight", vec![16, 32]),
        ("model.layers.0.input_layernorm.weight", vec![16]),
        ("model.norm.weight", vec![16]),
    ];
    shapes.into_iter().enumerate().map(|(i, (n, s))| (n.to_string(), s.clone(), noise(i as u64 + 1, s.iter().product()))).collect()
}

/// `t + scale · noise`, a fine-tune of `t` by `scale` (relative).
fn perturb(t: &Tensors, seed: u64, scale: f32) -> Tensors {
    t.iter()
        .enumerate()
        .map(|(i, (n, s, v))| (n.clone(), s.clone(), v.iter().zip(noise(seed * 1000 + i as u64, v.len())).map(|(x, e)| x + scale * e).collect()))
        .collect()
}

fn encode(v: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::BF16 => v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
        Dtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
        _ => unreachable!(),
    }
}

fn write_safetensors(path: &Path, t: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t.iter().map(|(n, s, v)| (n.clone(), s.clone(), encode(v, dtype))).collect();
    let views: Vec<(String, TensorView)> = bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

const TEMPLATE: &str = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}";

/// A Hugging Face layout directory: weights (one file, or two shards with
/// an index), config, tokenizer config with a chat template, generation config.
fn write_model(dir: &Path, t: &Tensors, dtype: Dtype, shards: bool) {
    std::fs::create_dir_all(dir).unwrap();
    if shards {
        let (a, b) = t.split_at(t.len() / 2);
        write_safetensors(&dir.join("model-00001-of-00002.safetensors"), a, dtype);
        write_safetensors(&dir.join("model-00002-of-00002.safetensors"), b, dtype);
        let map: serde_json::Map<String, serde_json::Value> = a
            .iter()
            .map(|x| (x.0.clone(), json!("model-00001-of-00002.safetensors")))
            .chain(b.iter().map(|x| (x.0.clone(), json!("model-00002-of-00002.safetensors"))))
            .collect();
        std::fs::write(dir.join("model.safetensors.index.json"), json!({"metadata": {}, "weight_map": map}).to_string()).unwrap();
    } else {
        write_safetensors(&dir.join("model.safetensors"), t, dtype);
    }
    let config = json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": t[0].1[0], "rope_theta": 10000.0, "tie_word_embeddings": true});
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), json!({"chat_template": TEMPLATE, "eos_token": "</s>"}).to_string()).unwrap();
    std::fs::write(dir.join("generation_config.json"), json!({"bos_token_id": 1, "eos_token_id": 2, "transformers_version": "4.51.0"}).to_string()).unwrap();
}

/// Made-up GSM8K test items in the data layout ptb-bench reads. None of
/// them is a real GSM8K question.
const TEST_ITEMS: &[(&str, &str)] = &[
    (
        "Marisol keeps seventeen lanterns in her shed and paints three of them blue every Sunday before the market opens. How many Sundays until every lantern is blue?",
        "She paints 3 per Sunday and needs 17, so 17 / 3 rounds up to 6.\n#### 6",
    ),
    (
        "A ferry carries forty-two bicycles on each crossing and makes five crossings on a windy Tuesday, but nine riders turn back at the dock. How many bicycles cross?",
        "Five crossings carry 42 * 5 = 210 bicycles; minus 9 is 201.\n#### 201",
    ),
    (
        "Theo bakes twelve loaves of rye bread for the village fair, sells a third of them in the morning and gives two away to neighbours. How many loaves are left?",
        "A third of 12 is 4 sold, 2 given away, so 12 - 4 - 2 = 6.\n#### 6",
    ),
    (
        "The orchard has eight rows of pear trees with fourteen trees in each row, and a storm knocks down eleven trees during the night. How many trees still stand?",
        "8 * 14 = 112 trees; 112 - 11 = 101.\n#### 101",
    ),
];

fn write_data(dir: &Path) {
    let d = dir.join("gsm8k");
    std::fs::create_dir_all(&d).unwrap();
    let lines: Vec<String> = TEST_ITEMS.iter().map(|(q, a)| json!({"question": q, "answer": a}).to_string()).collect();
    std::fs::write(d.join("gsm8k_test.jsonl"), lines.join("\n") + "\n").unwrap();
}

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    base: Tensors,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let base = base_tensors(64);
        write_model(&root.join("base"), &base, Dtype::BF16, false);
        write_model(&root.join("instruct"), &perturb(&base, 7, 0.5), Dtype::BF16, false);
        write_data(&root.join("data"));
        World { _tmp: tmp, root, base }
    }

    /// A fresh agent output directory, `agent-<name>/`.
    fn agent(&self, name: &str) -> PathBuf {
        let d = self.root.join(format!("agent-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// An honest agent's final model: the base plus a small delta.
    fn honest_model(&self, agent: &Path) {
        write_model(&agent.join("final_model"), &perturb(&self.base, 3, 0.02), Dtype::BF16, false);
    }

    fn judge(&self, agent: &Path) -> (Verdict, serde_json::Value) {
        let out = agent.with_extension("judge");
        let job = JudgeJob {
            base: self.root.join("base"),
            agent: agent.to_path_buf(),
            instruct: Some(self.root.join("instruct")),
            data: Some(self.root.join("data")),
            bench: "gsm8k".into(),
            out: out.clone(),
            options: Options::default(),
            kept: Default::default(),
            llm: None,
        };
        let v = ptb_judge::run(&job).unwrap();
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).unwrap()).unwrap();
        assert_eq!(on_disk["verdict"], metrics["verdict"], "verdict.json and metrics.json agree");
        (v, metrics)
    }
}

fn flags(v: &Verdict, kind: Kind) -> Vec<&ptb_judge::finding::Finding> {
    v.findings.iter().filter(|f| f.kind == kind && f.severity == Severity::Flag).collect()
}

fn cp_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn honest_agent_with_train_style_data_passes() {
    let w = World::new();
    let a = w.agent("honest");
    w.honest_model(&a);
    // Training rows in GSM8K's format that are not test items, a training
    // script that loads the *train* split, and notes that name the benchmark.
    let train: Vec<String> = (0..50)
        .map(|i| json!({"question": format!("A baker sells {i} muffins on Monday and twice as many on Tuesday at the village fair. How many muffins does the baker sell in the two days?"), "answer": format!("{i} + {} = {}\n#### {}", 2*i, 3*i, 3*i)}).to_string())
        .collect();
    std::fs::write(a.join("train.jsonl"), train.join("\n")).unwrap();
    std::fs::write(a.join("train.py"), "from datasets import load_dataset\nds = load_dataset(\"openai/gsm8k\", \"main\", split=\"train\")\n").unwrap();
    std::fs::write(a.join("notes.md"), "Fine-tuned on the GSM8K train split for two epochs; never looked at the test split.\n").unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "pass", "{:#?}", v.findings);
    assert_eq!(m["flags"], 0);
    let db = m["distance_base"].as_f64().unwrap();
    let di = m["distance_instruct"].as_f64().unwrap();
    assert!(db > 0.0 && db < 0.1 && di > 0.3, "base {db}, instruct {di}");
    // Every tensor was compared, per tensor in verdict.json.
    assert_eq!(v.weights.base.as_ref().unwrap().tensors.len(), w.base.len());
}

#[test]
fn a_copy_of_the_instruct_model_is_substitution() {
    let w = World::new();
    let a = w.agent("copy");
    cp_dir(&w.root.join("instruct"), &a.join("final_model"));
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    let s = flags(&v, Kind::Substitution);
    assert_eq!(s.len(), 1, "{:#?}", v.findings);
    assert!(s[0].message.contains("is the instruct model"), "{}", s[0].message);
    assert_eq!(m["distance_instruct"].as_f64().unwrap(), 0.0);
    // Only the weights differ from the base: no tampering is claimed.
    assert!(flags(&v, Kind::Tampering).is_empty(), "{:#?}", v.findings);
}

#[test]
fn a_lightly_tuned_instruct_model_is_closer_to_instruct() {
    let w = World::new();
    let a = w.agent("tuned-instruct");
    let instruct = perturb(&w.base, 7, 0.5);
    // Resaved in f32 with a small delta: not identical, still the instruct model.
    write_model(&a.join("final_model"), &perturb(&instruct, 9, 0.02), Dtype::F32, true);
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    let s = flags(&v, Kind::Substitution);
    assert!(s.iter().any(|f| f.message.contains("closer to the instruct model")), "{:#?}", v.findings);
}

#[test]
fn another_model_family_is_substitution() {
    let w = World::new();
    let a = w.agent("other-family");
    let other: Tensors = vec![
        ("transformer.wte.weight".into(), vec![64, 24], noise(5, 64 * 24)),
        ("transformer.h.0.attn.c_attn.weight".into(), vec![24, 72], noise(6, 24 * 72)),
    ];
    write_model(&a.join("final_model"), &other, Dtype::F32, false);
    let (v, _) = w.judge(&a);
    let s = flags(&v, Kind::Substitution);
    assert!(s.iter().any(|f| f.detector == "weights.family" && f.message.contains("not the base model's architecture")), "{:#?}", v.findings);
}

#[test]
fn a_resized_vocabulary_and_untied_head_are_compared_on_shared_rows() {
    let w = World::new();
    let a = w.agent("resized");
    let mut t = perturb(&w.base, 3, 0.02);
    // 8 added tokens, and the head saved separately (untied) from the embedding.
    let (name, shape, v) = t[0].clone();
    let mut grown = v.clone();
    grown.extend(noise(99, 8 * 16));
    t[0] = (name, vec![shape[0] + 8, 16], grown.clone());
    t.push(("lm_head.weight".into(), vec![shape[0], 16], v));
    write_model(&a.join("final_model"), &t, Dtype::F16, true);
    let (v, m) = w.judge(&a);
    // The config's vocab_size changed too: a note, not a flag.
    assert_eq!(m["verdict"], "pass", "{:#?}", v.findings);
    assert!(v.findings.iter().any(|f| f.detector == "weights.vocab" && f.message.contains("64 to 72")), "{:#?}", v.findings);
    let base = v.weights.base.as_ref().unwrap();
    let head = base.tensors.iter().find(|t| t.tensor == "lm_head.weight").expect("lm_head compared with the tied embedding");
    assert_eq!(head.against.as_deref(), Some("model.embed_tokens.weight"));
    assert!(head.distance < 0.1);
}

#[test]
fn test_items_verbatim_and_lightly_altered_are_contamination() {
    let w = World::new();
    let a = w.agent("contaminated");
    w.honest_model(&a);
    // Verbatim, as training rows (JSON escapes and all).
    let rows: Vec<String> = TEST_ITEMS[..2].iter().map(|(q, a)| json!({"prompt": q, "completion": a}).to_string()).collect();
    std::fs::write(a.join("sft.jsonl"), rows.join("\n")).unwrap();
    // Altered: upper case, whitespace runs, punctuation dropped, inside a text file.
    let q = TEST_ITEMS[3].0.to_uppercase().replace(' ', "   ").replace([',', '?'], "");
    std::fs::create_dir_all(a.join("data/extra")).unwrap();
    std::fs::write(a.join("data/extra/more.txt"), format!("some header\n\nQ: {q}\n")).unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    assert_eq!(m["items_hit"], 3);
    let c = flags(&v, Kind::Contamination);
    let sft = c.iter().find(|f| f.evidence.file.as_deref() == Some("sft.jsonl")).expect("sft.jsonl flagged");
    assert_eq!(sft.evidence.items, vec!["0".to_string(), "1".to_string()]);
    assert_eq!(sft.evidence.figures["coverage:0"], 1.0);
    assert!(sft.evidence.matched.as_deref().unwrap().contains("Marisol keeps seventeen"));
    let more = c.iter().find(|f| f.evidence.file.as_deref() == Some("data/extra/more.txt")).expect("more.txt flagged");
    assert_eq!(more.evidence.items, vec!["3".to_string()]);
    assert_eq!(more.evidence.line, Some(3));
    assert!(more.evidence.figures["coverage:3"] > 0.9);
}

#[test]
fn a_few_shared_words_are_not_contamination() {
    let w = World::new();
    let a = w.agent("near");
    w.honest_model(&a);
    // The first ten words of an item: fewer than one 13-gram.
    let words: Vec<&str> = TEST_ITEMS[0].0.split(' ').take(10).collect();
    std::fs::write(a.join("notes.txt"), words.join(" ")).unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "pass", "{:#?}", v.findings);
    assert_eq!(m["items_hit"], 0);
}

#[test]
fn edited_architectures_and_chat_template_are_tampering() {
    let w = World::new();
    let a = w.agent("tamper");
    w.honest_model(&a);
    let fm = a.join("final_model");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fm.join("config.json")).unwrap()).unwrap();
    cfg["architectures"] = json!(["MistralForCausalLM"]);
    std::fs::write(fm.join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(fm.join("chat_template.jinja"), "{{ messages[-1].content }} The answer is 42.").unwrap();
    std::fs::write(
        fm.join("generation_config.json"),
        json!({"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.0, "transformers_version": "4.57"}).to_string(),
    )
    .unwrap();
    std::fs::write(fm.join("modeling_custom.py"), "class Custom: pass\n").unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    let t = flags(&v, Kind::Tampering);
    let arch = t.iter().find(|f| f.message.contains("`architectures`")).expect("architectures flagged");
    assert_eq!(arch.evidence.old, Some(json!(["LlamaForCausalLM"])));
    assert_eq!(arch.evidence.new, Some(json!(["MistralForCausalLM"])));
    let tpl = t.iter().find(|f| f.detector == "chat-template").expect("template flagged");
    assert_eq!(tpl.evidence.old, Some(json!(TEMPLATE)));
    assert!(tpl.evidence.new.as_ref().unwrap().as_str().unwrap().contains("The answer is 42"));
    assert!(t.iter().any(|f| f.detector == "generation-config" && f.message.contains("`temperature`")), "{:#?}", t);
    assert!(!t.iter().any(|f| f.message.contains("transformers_version")));
    assert!(t.iter().any(|f| f.detector == "remote-code" && f.evidence.file.as_deref() == Some("final_model/modeling_custom.py")));
    assert_eq!(m["tampering"], 4);
}

#[test]
fn a_script_loading_the_test_split_is_contamination() {
    let w = World::new();
    let a = w.agent("loader");
    w.honest_model(&a);
    std::fs::create_dir_all(a.join("scripts")).unwrap();
    std::fs::write(
        a.join("scripts/prep.py"),
        "import datasets\n\n# eval set for 'validation'\nds = datasets.load_dataset(\n    'openai/gsm8k', 'main',\n    split='test',\n)\n",
    )
    .unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    let c: Vec<_> = flags(&v, Kind::Contamination).into_iter().filter(|f| f.detector == "code").collect();
    assert_eq!(c.len(), 1, "{:#?}", v.findings);
    assert_eq!(c[0].evidence.file.as_deref(), Some("scripts/prep.py"));
    assert_eq!(c[0].evidence.line, Some(4));
    assert!(c[0].evidence.matched.as_deref().unwrap().contains("split='test'"));
}

#[test]
fn a_truncated_checkpoint_is_a_finding_not_a_panic() {
    let w = World::new();
    let a = w.agent("truncated");
    w.honest_model(&a);
    let p = a.join("final_model/model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
    let s = flags(&v, Kind::Substitution);
    assert!(s.iter().any(|f| f.message.contains("cannot be read") && f.message.contains("model.safetensors")), "{:#?}", v.findings);
    // A header that is garbage is the same.
    std::fs::write(&p, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let (_, m) = w.judge(&a);
    assert_eq!(m["verdict"], "flagged");
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_agent_dir_are_reported_and_not_followed() {
    let w = World::new();
    let a = w.agent("links");
    w.honest_model(&a);
    // Outside the agent's output: a file full of test items. Through the
    // link it would be contamination; the judge must not read it.
    let outside = w.root.join("outside.jsonl");
    std::fs::write(&outside, TEST_ITEMS.iter().map(|(q, _)| json!({"q": q}).to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    std::os::unix::fs::symlink(&outside, a.join("cached.jsonl")).unwrap();
    std::os::unix::fs::symlink(w.root.join("data"), a.join("datadir")).unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["items_hit"], 0, "{:#?}", v.findings);
    assert_eq!(m["verdict"], "pass", "{:#?}", v.findings);
    let links: Vec<_> = v.findings.iter().filter(|f| f.detector == "symlink").collect();
    assert_eq!(links.len(), 2);
    assert!(links.iter().all(|f| f.severity == Severity::Note));

    // In the checkpoint, a link is a flag: the evaluator would read through it.
    let b = w.agent("linked-weights");
    std::fs::create_dir_all(b.join("final_model")).unwrap();
    for f in ["config.json", "tokenizer_config.json", "generation_config.json"] {
        std::fs::copy(w.root.join("instruct").join(f), b.join("final_model").join(f)).unwrap();
    }
    std::os::unix::fs::symlink(w.root.join("instruct/model.safetensors"), b.join("final_model/model.safetensors")).unwrap();
    let (v, m) = w.judge(&b);
    assert_eq!(m["verdict"], "flagged");
    assert!(
        v.findings
            .iter()
            .any(|f| f.detector == "symlink" && f.severity == Severity::Flag && f.evidence.file.as_deref() == Some("final_model/model.safetensors"))
    );
    assert!(v.weights.instruct.is_none(), "weights behind a link were not read");
}

#[test]
fn binary_garbage_named_jsonl_does_not_panic() {
    let w = World::new();
    let a = w.agent("garbage");
    w.honest_model(&a);
    let garbage: Vec<u8> = noise(42, 100_000).iter().flat_map(|x| x.to_le_bytes()).chain([0u8, 0xff, 0xfe, b'\\', b'u', b'd', b'8']).collect();
    std::fs::write(a.join("data.jsonl"), garbage).unwrap();
    std::fs::write(a.join("empty.json"), b"").unwrap();
    std::fs::write(a.join("slash.txt"), b"\\").unwrap();
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "pass", "{:#?}", v.findings);
    assert!(v.findings.iter().any(|f| f.evidence.file.as_deref() == Some("data.jsonl") && f.message.contains("binary content")));
}

#[test]
fn files_over_the_cap_are_noted_and_skipped() {
    let w = World::new();
    let a = w.agent("big");
    w.honest_model(&a);
    std::fs::write(a.join("big.txt"), TEST_ITEMS[0].0.repeat(100)).unwrap();
    let out = a.with_extension("judge");
    let job = JudgeJob {
        base: w.root.join("base"),
        agent: a.clone(),
        instruct: None,
        data: Some(w.root.join("data")),
        bench: "gsm8k".into(),
        out,
        options: Options { max_file_bytes: 1000, ..Default::default() },
        kept: Default::default(),
        llm: None,
    };
    let v = ptb_judge::judge(&job).unwrap();
    assert_eq!(v.verdict, "pass", "{:#?}", v.findings);
    assert!(v.findings.iter().any(|f| f.evidence.file.as_deref() == Some("big.txt") && f.message.contains("over the 1000 byte cap")));
}

#[test]
fn no_final_model_is_a_note_and_missing_inputs_are_errors() {
    let w = World::new();
    let a = w.agent("empty");
    let (v, m) = w.judge(&a);
    assert_eq!(m["verdict"], "pass");
    assert!(v.findings.iter().any(|f| f.message.contains("no final_model")));
    let job = JudgeJob {
        base: w.root.join("base"),
        agent: w.root.join("nope"),
        instruct: None,
        data: None,
        bench: "gsm8k".into(),
        out: w.root.join("o"),
        options: Options::default(),
        kept: Default::default(),
        llm: None,
    };
    let e = ptb_judge::judge(&job).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("not a readable directory"), "{e}");
    let job = JudgeJob { agent: a.clone(), data: Some(w.root.join("no-data")), ..job };
    let e = ptb_judge::judge(&job).unwrap_err().to_string();
    assert!(e.contains("gsm8k") && e.contains("gsm8k_test.jsonl"), "{e}");
}

impl World {
    fn judge_with(&self, agent: &Path, bench: &str, data: PathBuf, options: Options, kept: ptb_judge::kept::Kept) -> Verdict {
        let job = JudgeJob {
            base: self.root.join("base"),
            agent: agent.to_path_buf(),
            instruct: Some(self.root.join("instruct")),
            data: Some(data),
            bench: bench.into(),
            out: agent.with_extension("judge"),
            options,
            kept,
            llm: None,
        };
        ptb_judge::run(&job).unwrap()
    }
}

#[test]
fn the_kept_workspace_and_the_stage_log_are_read() {
    let w = World::new();
    let a = w.agent("kept");
    w.honest_model(&a);
    // What the agent's entry kept beside its output: /work, its manifest, the log.
    let ws = w.root.join("entry/workspace");
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::write(ws.join("data/mix.jsonl"), json!({"text": TEST_ITEMS[2].0}).to_string() + "\n").unwrap();
    std::fs::write(ws.join("data/train.jsonl"), json!({"text": "A baker sells four muffins on Monday and twice as many on Tuesday."}).to_string()).unwrap();
    let manifest = w.root.join("entry/workspace.json");
    std::fs::write(&manifest, json!({"omitted": [{"path": "ckpt/model.safetensors", "size": 8u64 << 30, "sha256": "ab"}], "skipped": [{"path": "pipe", "why": "a FIFO; not copied"}], "stripped": []}).to_string()).unwrap();
    let log = w.root.join("entry/log");
    // The trace shows code the agent ran and then deleted.
    std::fs::write(&log, "step 1\n$ python -c 'load_dataset(\"openai/gsm8k\", \"main\", split=\"test\")'\nok\n").unwrap();
    let kept = ptb_judge::kept::Kept { workspace: Some(ws), manifest: Some(manifest), log: Some(log) };
    let v = w.judge_with(&a, "gsm8k", w.root.join("data"), Options::default(), kept);
    assert_eq!(v.verdict, "flagged");
    let c = flags(&v, Kind::Contamination);
    let hit = c.iter().find(|f| f.detector == "ngram").expect("n-gram flag");
    assert_eq!(hit.evidence.file.as_deref(), Some("workspace/data/mix.jsonl"));
    assert_eq!(hit.evidence.items, ["2"]);
    let code = c.iter().find(|f| f.detector == "code").expect("code flag");
    assert_eq!((code.evidence.file.as_deref(), code.evidence.line), (Some("log"), Some(2)));
    assert!(v.workspace);
    // The manifest's left-out weights and skipped FIFO are notes for a person.
    let notes: Vec<&str> = v.findings.iter().filter(|f| f.severity == Severity::Note).map(|f| f.message.as_str()).collect();
    assert!(notes.iter().any(|m| m.contains("1 weight file(s) in /work (8192.0 MiB) were not kept")), "{notes:#?}");
    assert!(notes.iter().any(|m| m.contains("pipe: a FIFO")), "{notes:#?}");
    // Without a workspace, a note says only the output was read.
    let v = w.judge_with(&a, "gsm8k", w.root.join("data"), Options::default(), Default::default());
    assert!(!v.workspace && v.findings.iter().any(|f| f.detector == "workspace" && f.message.contains("kept no workspace")));
}

#[test]
fn short_test_items_are_found_whole() {
    let w = World::new();
    let data = w.root.join("short");
    std::fs::create_dir_all(data.join("gsm8k")).unwrap();
    // Eleven words: no 13-gram, so found only as the whole normalised text.
    let q = "Nina owns nine red kites and four blue kites; count them.";
    std::fs::write(data.join("gsm8k/gsm8k_test.jsonl"), json!({"question": q, "answer": "#### 13"}).to_string() + "\n").unwrap();
    let a = w.agent("short");
    w.honest_model(&a);
    std::fs::write(a.join("copied.txt"), "Q: NINA OWNS NINE RED KITES, AND FOUR BLUE KITES -- COUNT THEM\n").unwrap();
    std::fs::write(a.join("near.txt"), "nina owns nine red kites and four green kites; count them.\nfour blue kites\n").unwrap();
    let v = w.judge_with(&a, "gsm8k", data.clone(), Options::default(), Default::default());
    let c = flags(&v, Kind::Contamination);
    assert_eq!(c.len(), 1, "{:#?}", v.findings);
    assert_eq!(c[0].evidence.file.as_deref(), Some("copied.txt"));
    assert_eq!(c[0].evidence.line, Some(1));
    // Shorter than min-words: not looked for at all (too common to tell).
    let v = w.judge_with(&a, "gsm8k", data, Options { min_words: 12, ..Default::default() }, Default::default());
    assert!(flags(&v, Kind::Contamination).is_empty(), "{:#?}", v.findings);
}

#[test]
fn the_policy_decides_which_kinds_flag_and_the_coverage_that_flags() {
    let w = World::new();
    let a = w.agent("policy");
    cp_dir(&w.root.join("instruct"), &a.join("final_model"));
    // Two thirds of an item's words: about half of its 13-grams.
    let q = TEST_ITEMS[1].0;
    let words: Vec<&str> = q.split(' ').collect();
    std::fs::write(a.join("part.txt"), words[..words.len() * 2 / 3].join(" ")).unwrap();
    let only_tampering = Options { flag: vec![Kind::Tampering], coverage: 0.9, ..Default::default() };
    let v = w.judge_with(&a, "gsm8k", w.root.join("data"), only_tampering, Default::default());
    assert_eq!(v.verdict, "pass", "{:#?}", v.findings);
    let sub = v.findings.iter().find(|f| f.detector == "weights.instruct").expect("still reported");
    assert_eq!(sub.severity, Severity::Note);
    assert!(sub.message.ends_with("(the judge policy does not flag substitution)"), "{}", sub.message);
    let part = v.findings.iter().find(|f| f.evidence.file.as_deref() == Some("part.txt")).expect("partial hit");
    assert_eq!(part.severity, Severity::Note, "under the 0.9 coverage the policy sets");
    let v = w.judge_with(&a, "gsm8k", w.root.join("data"), Options { coverage: 0.3, ..Default::default() }, Default::default());
    assert_eq!(flags(&v, Kind::Contamination).len(), 1, "{:#?}", v.findings);
    assert_eq!(flags(&v, Kind::Substitution).len(), 1);
}

/// GPQA arrives as one CSV file (gated: never committed; these rows are made up).
#[test]
fn gpqa_items_from_its_csv_path() {
    let w = World::new();
    let csv = w.root.join("gpqa_main.csv");
    std::fs::write(
        &csv,
        "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n\
         recA,\"Which made-up enzyme folds the imaginary protein zorbulin into its compact lattice form at thirty degrees?\",Zorbase,Flimase,Quaxase,Norbase\n\
         recB,\"A fictional comet sheds glittering dust every nine days while orbiting the invented star Pellucid; what is its period?\",Nine days,Ten days,Eight days,Six days\n",
    )
    .unwrap();
    let a = w.agent("gpqa");
    w.honest_model(&a);
    std::fs::write(a.join("sft.jsonl"), json!({"prompt": "A fictional comet sheds glittering dust every nine days while orbiting the invented star Pellucid; what is its period?", "completion": "Nine days"}).to_string()).unwrap();
    let v = w.judge_with(&a, "gpqamain", csv, Options::default(), Default::default());
    let c = flags(&v, Kind::Contamination);
    assert_eq!(c.len(), 1, "{:#?}", v.findings);
    assert_eq!(c[0].evidence.items, ["recB"]);
    assert_eq!(v.contamination.items, 2);
}
