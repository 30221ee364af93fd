//! Spine performance, as ratios against baselines measured in the same run:
//!
//! 1. The whole `ptb plan` process on a paper-shaped experiment (4 models ×
//!    7 benchmarks × 12 agents × 3 seeds = 1,008 cells, 3,024 stages) with a
//!    complete lockfile and store, beside `true` (process start-up floor).
//! 2. Directory hashing of a 1 GiB synthetic checkpoint: cold (no stat
//!    cache) and warm (stat cache), beside `sha256sum` on the same files.
//!
//! Sizes can be reduced for a quick look: PTB_BENCH_GIB=0.25.

use ptb_core::hash::{ContentHasher, StatCache};
use ptb_core::lock::{Lockfile, StageRecord};
use ptb_core::plan::{PlanOptions, plan};
use ptb_core::progress::Silent;
use ptb_core::session::{Session, refresh_header};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_cmd(mut c: Command, runs: usize) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let o = c.output().expect("command runs");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                t.elapsed()
            })
            .collect(),
    )
}

fn paper_spec(dir: &Path) -> String {
    let models = ["qwen3-1.7b", "qwen3-4b", "smollm3-3b", "gemma-3-4b"];
    let benches =
        [("aime2025", 0.2265), ("arenahard", 0.0904), ("bfcl", 0.0746), ("gpqa", 0.2246), ("gsm8k", 0.0936), ("healthbench", 0.1841), ("humaneval", 0.1061)];
    let mut s = String::from("experiment paper\n");
    for m in models {
        let d = dir.join("models").join(m);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            std::fs::write(d.join(format!("model-0000{i}-of-00003.safetensors")), vec![i as u8; 4096]).unwrap();
        }
        std::fs::write(d.join("config.json"), "{}").unwrap();
        s += &format!("model {m} path=\"models/{m}\" arch=qwen3\n");
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for (b, w) in benches {
        std::fs::write(dir.join(format!("data/{b}.jsonl")), format!("{{\"q\": \"{b}\"}}\n")).unwrap();
        s += &format!("benchmark {b} data=\"data/{b}.jsonl\" weight={w}\n");
    }
    std::fs::write(dir.join("stage.sh"), "#!/bin/sh\n").unwrap();
    for a in 0..12 {
        s += &format!("agent agent{a} {{ command \"./stage.sh\" \"{a}\"; }}\n");
    }
    s += "stage agent budget=\"10h\" { resources gpus=1; }\nstage judge budget=\"1h\" { command \"./stage.sh\" \"judge\"; }\nstage eval budget=\"2h\" { command \"./stage.sh\" \"eval\"; }\nmatrix { seeds 1 2 3; }\n";
    s
}

fn bench_plan() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("paper.kdl");
    std::fs::write(&spec_path, paper_spec(dir.path())).unwrap();
    let loc = ptb_core::session::Locations { store: Some(dir.path().join("store")), lockfile: Some(dir.path().join("paper.lock")) };
    let s = Session::load(&spec_path, &loc, None, &Silent).unwrap();
    // A complete store and lockfile: every stage done.
    let p = plan(&s.exp, &s.pins, &s.lock, &s.index, &PlanOptions::default());
    let mut lock = Lockfile::default();
    refresh_header(&mut lock, &s.exp, &s.pins);
    for st in &p.stages {
        let name = ptb_core::store::entry_name(&st.key, &st.cell, st.stage.name());
        std::fs::create_dir_all(s.store.entry_dir(&name).join("out")).unwrap();
        let rec = StageRecord {
            key: st.key.0.clone(),
            status: ptb_core::status::StageStatus::Success,
            path: format!("v1/{name}"),
            started: "2026-11-23T10:00:00Z".into(),
            finished: "2026-11-23T20:00:00Z".into(),
            duration_s: 36000.0,
            exit_code: Some(0),
            metrics: [("score".to_string(), ptb_core::store::MetricValue::Number(0.5))].into(),
            inputs: st.inputs.0.clone(),
        };
        let c = s.exp.cells.iter().find(|c| c.id == st.cell).unwrap();
        lock.cells
            .entry(st.cell.clone())
            .or_insert_with(|| ptb_core::lock::CellRecord {
                model: s.exp.model(c).name.clone(),
                benchmark: s.exp.benchmark(c).name.clone(),
                agent: s.exp.agent(c).name.clone(),
                seed: c.seed,
                stages: Default::default(),
            })
            .stages
            .insert(st.stage.name().into(), rec);
    }
    lock.save(&dir.path().join("paper.lock")).unwrap();
    let lock_kib = std::fs::metadata(dir.path().join("paper.lock")).unwrap().len() / 1024;

    let mut ptb = Command::new(env!("CARGO_BIN_EXE_ptb"));
    ptb.args(["plan", spec_path.to_str().unwrap(), "--store"]).arg(dir.path().join("store")).arg("--lockfile").arg(dir.path().join("paper.lock"));
    let out = ptb.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 to run, 3024 cached"), "the bench experiment is not a no-op:\n{text}");
    let runs = 15;
    let floor = time_cmd(Command::new("true"), runs);
    let t = time_cmd(ptb, runs);
    println!("no-op `ptb plan`, 1,008 cells / 3,024 stages, lockfile {lock_kib} KiB:");
    println!("  ptb plan  {:>8.1} ms (median of {runs})", t.as_secs_f64() * 1e3);
    println!("  true      {:>8.1} ms (process start-up floor)", floor.as_secs_f64() * 1e3);
    println!("  target    {:>8.1} ms → {}", 50.0, if t.as_millis() <= 50 { "met" } else { "NOT met" });
}

fn bench_hash() {
    let gib: f64 = std::env::var("PTB_BENCH_GIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let dir = tempfile::tempdir_in(std::env::var("PTB_BENCH_DIR").unwrap_or_else(|_| "target".into())).unwrap();
    let ckpt = dir.path().join("checkpoint");
    std::fs::create_dir_all(&ckpt).unwrap();
    let total = (gib * (1u64 << 30) as f64) as u64;
    let shards = 4u64;
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut names = Vec::new();
    for i in 0..shards {
        let name = format!("model-{:05}-of-{shards:05}.safetensors", i + 1);
        let mut f = std::io::BufWriter::new(std::fs::File::create(ckpt.join(&name)).unwrap());
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..(total / shards) >> 20 {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            f.write_all(&buf).unwrap();
        }
        names.push(ckpt.join(name));
    }
    std::fs::write(ckpt.join("config.json"), "{}").unwrap();
    let mib = total as f64 / (1 << 20) as f64;
    // Page cache warm for everyone: run sha256sum once first.
    let mut sum = Command::new("sha256sum");
    sum.args(&names);
    let _ = sum.output();
    let t_sum = time_cmd(sum, 3);
    let cold = median(
        (0..3)
            .map(|_| {
                let cache = StatCache::in_memory();
                let t = Instant::now();
                ContentHasher::new(&cache, &Silent).dir(&ckpt).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let cache = StatCache::in_memory();
    ContentHasher::new(&cache, &Silent).dir(&ckpt).unwrap();
    let warm = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                ContentHasher::new(&cache, &Silent).dir(&ckpt).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let rate = |d: Duration| mib / d.as_secs_f64();
    println!("directory hashing, {mib:.0} MiB in {shards} shards (page cache warm):");
    println!("  sha256sum (1 thread)  {:>9.0} MiB/s", rate(t_sum));
    println!("  ptb cold              {:>9.0} MiB/s  ({:.2}× sha256sum)", rate(cold), t_sum.as_secs_f64() / cold.as_secs_f64());
    println!("  ptb with stat cache   {:>9.1} ms     ({:.0}× faster than cold)", warm.as_secs_f64() * 1e3, cold.as_secs_f64() / warm.as_secs_f64());
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not run this.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    bench_plan();
    bench_hash();
}
