//! The judge's speed measurements (perf/judge.sh runs them beside `cat` and
//! `grep -F`, in the same run):
//!
//! - `checkpoint DIR GIB SEED SCALE`: a Llama-shaped bf16 safetensors
//!   checkpoint of about GIB GiB in 2 GiB shards, every value `base(i) +
//!   SCALE · noise(SEED, i)` (SEED 0, SCALE 0: the base itself), so a
//!   fine-tune is a small SCALE and an "instruct" model a large one.
//! - `judge BASE AGENT BENCH DATA|- OUT [INSTRUCT]`: one judgement, as
//!   `ptb judge` does it, printing the seconds it took and the bytes it read.
//! - `scan DATA_ROOT FILE...`: the contamination scan alone: every
//!   benchmark under DATA_ROOT (`data/bench`) in one n-gram index (the
//!   spec's default policy), then the files scanned in parallel, as `ptb
//!   judge` scans an agent's files; prints seconds (index and scan apart).
//!
//! The checkpoint is written by hand, header then tensors, streaming: the
//! safetensors crate's `serialize` wants every tensor in memory, which for
//! a multi-GB checkpoint is the machine's memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn noise(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ i.wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// Tensors of one decoder layer of hidden size `h` (names as Llama's).
fn layer(l: usize, h: usize) -> Vec<(String, Vec<usize>)> {
    let p = format!("model.layers.{l}");
    vec![
        (format!("{p}.self_attn.q_proj.weight"), vec![h, h]),
        (format!("{p}.self_attn.k_proj.weight"), vec![h / 4, h]),
        (format!("{p}.self_attn.v_proj.weight"), vec![h / 4, h]),
        (format!("{p}.self_attn.o_proj.weight"), vec![h, h]),
        (format!("{p}.mlp.gate_proj.weight"), vec![3 * h, h]),
        (format!("{p}.mlp.up_proj.weight"), vec![3 * h, h]),
        (format!("{p}.mlp.down_proj.weight"), vec![h, 3 * h]),
        (format!("{p}.input_layernorm.weight"), vec![h]),
    ]
}

fn checkpoint(dir: &Path, gib: f64, seed: u64, scale: f32) {
    let h = 2048usize;
    let vocab = 32768usize;
    let per_layer: usize = layer(0, h).iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    let target = (gib * (1u64 << 30) as f64 / 2.0) as usize;
    let layers = (target.saturating_sub(vocab * h) / per_layer).max(1);
    let mut tensors = vec![("model.embed_tokens.weight".to_string(), vec![vocab, h])];
    for l in 0..layers {
        tensors.extend(layer(l, h));
    }
    tensors.push(("model.norm.weight".into(), vec![h]));
    std::fs::create_dir_all(dir).unwrap();
    // Shards of at most 2 GiB, as transformers writes them.
    let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![vec![]];
    let mut size = 0usize;
    for t in tensors {
        let n = t.1.iter().product::<usize>() * 2;
        if size + n > 2 << 30 && !shards.last().unwrap().is_empty() {
            shards.push(vec![]);
            size = 0;
        }
        size += n;
        shards.last_mut().unwrap().push(t);
    }
    let count = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut index = 0u64;
    for (k, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{count:05}.safetensors", k + 1);
        let mut header = serde_json::Map::new();
        let mut off = 0usize;
        for (t, shape) in shard {
            let n = shape.iter().product::<usize>() * 2;
            header.insert(t.clone(), serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}));
            weight_map.insert(t.clone(), name.clone().into());
            off += n;
        }
        let mut text = serde_json::to_string(&header).unwrap();
        while !text.len().is_multiple_of(8) {
            text.push(' ');
        }
        let mut f = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join(&name)).unwrap());
        f.write_all(&(text.len() as u64).to_le_bytes()).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut buf = Vec::with_capacity(1 << 22);
        for (_, shape) in shard {
            for _ in 0..shape.iter().product::<usize>() {
                let x = 0.05 * noise(1, index) + scale * 0.05 * noise(seed + 2, index);
                buf.extend_from_slice(&half::bf16::from_f32(x).to_le_bytes());
                index += 1;
                if buf.len() >= 1 << 22 {
                    f.write_all(&buf).unwrap();
                    buf.clear();
                }
            }
        }
        f.write_all(&buf).unwrap();
        f.flush().unwrap();
    }
    let idx = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), idx.to_string()).unwrap();
    let config = serde_json::json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "num_hidden_layers": layers, "vocab_size": vocab, "tie_word_embeddings": true});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    println!("{}: {layers} layers, {count} shard(s), {:.2} GiB", dir.display(), index as f64 * 2.0 / (1u64 << 30) as f64);
}

fn scan(root: &Path, files: &[String]) {
    use rayon::prelude::*;
    let t = Instant::now();
    let mut items = Vec::new();
    let mut names = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let bench = dir.file_name().unwrap().to_string_lossy().to_string();
        match ptb_judge::items::load(&bench, &dir) {
            Ok(v) => {
                names.push(format!("{bench}:{}", v.len()));
                items.extend(v.into_iter().map(|mut i| {
                    i.id = format!("{bench}/{}", i.id);
                    i
                }));
            }
            Err(e) => eprintln!("{bench}: skipped: {e}"),
        }
    }
    let p = ptb_core::judge::JudgePolicy::default();
    let o = ptb_judge::Options::from_policy(&p);
    let index = ptb_judge::ngram::Index::build(items, o.ngram, o.min_words, o.max_items_per_gram);
    let t_index = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (bytes, hits): (Vec<u64>, Vec<usize>) = files
        .par_iter()
        .map(|f| {
            let b = std::fs::read(f).unwrap();
            (b.len() as u64, index.scan(&b).len())
        })
        .unzip();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"index_seconds\": {t_index:.3}, \"scan_seconds\": {s:.3}, \"bytes\": {}, \"benchmarks\": \"{}\", \"grams\": {}, \"items_hit\": {}}}",
        bytes.iter().sum::<u64>(),
        names.join(" "),
        index.gram_count(),
        hits.iter().sum::<usize>()
    );
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.first().map(String::as_str) {
        Some("checkpoint") if a.len() == 5 => checkpoint(Path::new(&a[1]), a[2].parse().unwrap(), a[3].parse().unwrap(), a[4].parse().unwrap()),
        Some("judge") if a.len() == 6 || a.len() == 7 => {
            let job = ptb_judge::JudgeJob {
                base: PathBuf::from(&a[1]),
                agent: PathBuf::from(&a[2]),
                instruct: a.get(6).map(PathBuf::from),
                bench: a[3].clone(),
                data: (a[4] != "-").then(|| PathBuf::from(&a[4])),
                out: PathBuf::from(&a[5]),
                options: ptb_judge::Options::default(),
                kept: Default::default(),
                llm: None,
            };
            let t = Instant::now();
            let v = ptb_judge::run(&job).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "{{\"seconds\": {s:.3}, \"verdict\": \"{}\", \"text_bytes\": {}, \"items\": {}, \"findings\": {}}}",
                v.verdict,
                v.contamination.bytes_scanned,
                v.contamination.items,
                v.findings.len()
            );
        }
        Some("scan") if a.len() >= 3 => scan(Path::new(&a[1]), &a[2..]),
        _ => {
            eprintln!("usage: judge_perf checkpoint DIR GIB SEED SCALE | judge BASE AGENT BENCH DATA|- OUT [INSTRUCT] | scan DATA_ROOT FILE...");
            std::process::exit(2);
        }
    }
}
