//! Spine performance, as ratios against baselines measured in the same run:
//!
//! 1. The whole `ptb plan` process on a paper-shaped experiment (4 models ×
//!    7 benchmarks × 12 agents × 3 seeds = 1,008 cells, 3,024 stages) with a
//!    complete lockfile and store, beside `true` (process start-up floor).
//! 2. Directory hashing of a 1 GiB synthetic checkpoint: cold (no stat
//!    cache) and warm (stat cache), beside `sha256sum` on the same files.
//!
//! 3. First `ptb apply --jobs 2` of trivial shell stages on the paper's
//!    shape (and 4× and 10× its agents), beside `make -j2` running the same
//!    scripts from a generated Makefile; then the no-op `ptb plan` beside
//!    `make -n` on the finished trees, and `nix-build -j2` on the same steps
//!    as raw derivations when Nix is installed. Wall time and peak memory.
//!
//! Sizes can be reduced for a quick look: PTB_BENCH_GIB=0.25.
//! PTB_BENCH=plan,hash,apply picks parts (default: all three);
//! PTB_BENCH_AGENTS=12,48,120 the apply sizes (default 12: 1,008 cells);
//! PTB_BENCH_KEEP=1 keeps each finished tree (its path is printed);
//! PTB_BENCH_PEERS=make,nix the peers to run (`none`: ptb alone).

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
        let c = s.exp.cells.iter().find(|c| c.id == st.cell).unwrap();
        // Plans keep only keys: the record's inputs are the cell's, recomputed.
        let inputs = ptb_core::plan::cell_stages(&s.exp, &s.pins, c).into_iter().find(|i| i.kind == st.stage).unwrap().inputs;
        let rec = StageRecord {
            key: st.key.0.clone(),
            status: ptb_core::status::StageStatus::Success,
            path: format!("v1/{name}"),
            started: "2026-11-23T10:00:00Z".into(),
            finished: "2026-11-23T20:00:00Z".into(),
            duration_s: 36000.0,
            exit_code: Some(0),
            metrics: [("score".to_string(), ptb_core::store::MetricValue::Number(0.5))].into(),
            inputs: inputs.0,
        };
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

/// The paper's shape with `agents` agents; every stage runs `stage.sh`,
/// which writes a one-line checkpoint and a metric.
fn scale_spec(dir: &Path, agents: usize) -> (String, Vec<(String, String)>) {
    let models = ["qwen3-1.7b", "qwen3-4b", "smollm3-3b", "gemma-3-4b"];
    let benches = ["aime2025", "arenahard", "bfcl", "gpqa", "gsm8k", "healthbench", "humaneval"];
    let mut s = String::from("experiment scale\n");
    for m in models {
        let d = dir.join("models").join(m);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), "{}").unwrap();
        s += &format!("model {m} path=\"models/{m}\" arch=qwen3\n");
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for b in benches {
        std::fs::write(dir.join(format!("data/{b}.jsonl")), format!("{{\"q\": \"{b}\"}}\n")).unwrap();
        s += &format!("benchmark {b} data=\"data/{b}.jsonl\"\n");
    }
    let script = dir.join("stage.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nmkdir -p \"$PTB_OUT/final_model\"\necho \"$1\" > \"$PTB_OUT/final_model/w\"\necho '{\"score\": 0.5}' > \"$PTB_OUT/metrics.json\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    for a in 0..agents {
        s += &format!("agent agent{a} {{ command \"./stage.sh\" \"{a}\"; }}\n");
    }
    s += "stage agent budget=\"10h\"\nstage judge budget=\"1h\" { command \"./stage.sh\" \"judge\"; }\nstage eval budget=\"2h\" { command \"./stage.sh\" \"eval\"; }\nmatrix { seeds 1 2 3; }\n";
    // (cell slug, agent argument) for the Makefile.
    let mut cells = Vec::new();
    for m in models {
        for b in benches {
            for a in 0..agents {
                for seed in 1..=3 {
                    cells.push((format!("{m}-{b}-agent{a}-seed{seed}"), a.to_string()));
                }
            }
        }
    }
    (s, cells)
}

/// The same three steps per cell as make rules: agent, then judge and eval
/// on its output; each with its own output directory and log, like ptb.
fn makefile(cells: &[(String, String)]) -> String {
    let mut m = String::from("all:");
    for (c, _) in cells {
        m += &format!(" o/{c}/eval.done o/{c}/judge.done");
    }
    m += "\n";
    for (c, a) in cells {
        let rule = |stage: &str, arg: &str, dep: &str| {
            format!("o/{c}/{stage}.done:{dep}\n\t@mkdir -p o/{c}/{stage} && PTB_OUT=o/{c}/{stage} ./stage.sh {arg} > o/{c}/{stage}.log 2>&1 && touch $@\n")
        };
        m += &rule("agent", a, "");
        m += &rule("judge", "judge", &format!(" o/{c}/agent.done"));
        m += &rule("eval", "eval", &format!(" o/{c}/agent.done"));
    }
    m
}

/// The same three steps per cell as Nix derivations (raw `derivation`s with
/// `/bin/sh` as the builder: no nixpkgs needed), for `nix-build -j2`. A
/// nonce in every derivation makes each bench run a first build.
fn nixfile(dir: &Path, cells: &[(String, String)], nonce: u128) -> String {
    let script = dir.join("stage.sh");
    let mut n = format!(
        "let\n  stage = name: arg: extra: derivation ({{\n    inherit name arg;\n    system = builtins.currentSystem;\n    builder = \"/bin/sh\";\n    PATH = \"/usr/bin:/bin\";\n    nonce = \"{nonce}\";\n    args = [ \"-c\" \"PTB_OUT=$out {} $arg\" ];\n  }} // extra);\nin [\n",
        script.display()
    );
    for (c, a) in cells {
        n += &format!(
            "  (let agent = stage \"{c}-agent\" \"{a}\" {{}}; in [ (stage \"{c}-judge\" \"judge\" {{ inherit agent; }}) (stage \"{c}-eval\" \"eval\" {{ inherit agent; }}) ])\n"
        );
    }
    n + "]\n"
}

/// Wall seconds and peak RSS (KiB) of one run, through /usr/bin/time.
fn timed(dir: &Path, program: &str, args: &[&str]) -> (f64, u64) {
    let out = Command::new("/usr/bin/time").current_dir(dir).arg("-f").arg("@@ %e %M").arg(program).args(args).output().expect("/usr/bin/time runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed:\n{err}");
    let line = err.lines().rev().find(|l| l.starts_with("@@ ")).expect("time's line");
    let mut f = line[3..].split(' ');
    (f.next().unwrap().parse().unwrap(), f.next().unwrap().parse().unwrap())
}

fn bench_apply(agents: usize) {
    let dir = tempfile::tempdir_in(std::env::var("PTB_BENCH_DIR").unwrap_or_else(|_| "target".into())).unwrap();
    // PTB_BENCH_KEEP=1 leaves the finished tree for profiling the no-op plan.
    let dir = if std::env::var_os("PTB_BENCH_KEEP").is_some() { dir.keep() } else { dir.path().to_path_buf() };
    let dir = dir.as_path();
    let (spec, cells) = scale_spec(dir, agents);
    std::fs::write(dir.join("scale.kdl"), spec).unwrap();
    std::fs::write(dir.join("Makefile"), makefile(&cells)).unwrap();
    let stages = cells.len() * 3;
    let ptb = env!("CARGO_BIN_EXE_ptb");
    // PTB_BENCH_PEERS=none skips make and nix-build (the flatness runs at
    // 4× and 10× only compare ptb with itself at 1×).
    let peers = std::env::var("PTB_BENCH_PEERS").unwrap_or_else(|_| "make,nix".into());
    let (make_s, make_kib) = if peers.contains("make") { timed(dir, "make", &["-j2", "-s"]) } else { (f64::NAN, 0) };
    let (apply_s, apply_kib) = timed(dir, ptb, &["apply", "scale.kdl", "--jobs", "2", "--store", "store", "--lockfile", "scale.lock"]);
    let lock_kib = std::fs::metadata(dir.join("scale.lock")).unwrap().len() / 1024;
    let runs = 9;
    let mut plan = Command::new(ptb);
    plan.current_dir(dir).args(["plan", "scale.kdl", "--store", "store", "--lockfile", "scale.lock"]);
    let out = plan.output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("0 to run, {stages} cached")), "not a no-op:\n{}", String::from_utf8_lossy(&out.stdout));
    let t_plan = time_cmd(plan, runs);
    let mut make_n = Command::new("make");
    make_n.current_dir(dir).arg("-n");
    let t_make_n = if peers.contains("make") { time_cmd(make_n, runs) } else { Duration::from_secs_f64(f64::NAN.max(0.0)) };
    // nix-build last: its store is global, so it runs on a warm machine
    // like the others did, and never before them.
    let nix = if !peers.contains("nix") {
        "not run (PTB_BENCH_PEERS)".into()
    } else if Command::new("nix-build").arg("--version").output().is_ok() {
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        std::fs::write(dir.join("default.nix"), nixfile(dir, &cells, nonce)).unwrap();
        let (nix_s, nix_kib) = timed(dir, "nix-build", &["-j2", "--option", "sandbox", "false", "--no-out-link", "--quiet", "default.nix"]);
        format!("{nix_s:>8.2} s   peak {:>6.1} MiB   (ptb: {:.2}× nix-build)", nix_kib as f64 / 1024.0, apply_s / nix_s)
    } else {
        "skipped (not installed)".into()
    };
    println!("first apply, {} cells / {stages} stages of trivial shell work, --jobs 2 (lockfile {lock_kib} KiB, in {}):", cells.len(), dir.display());
    println!("  make -j2       {make_s:>8.2} s   peak {:>6.1} MiB", make_kib as f64 / 1024.0);
    println!(
        "  ptb apply -j2  {apply_s:>8.2} s   peak {:>6.1} MiB   {:.2}× make, {:.2} ms/stage",
        apply_kib as f64 / 1024.0,
        apply_s / make_s,
        apply_s * 1e3 / stages as f64
    );
    println!("  nix-build      {nix}");
    println!("no-op, same trees (median of {runs}):");
    println!("  ptb plan       {:>8.1} ms   {:.2}× make -n", t_plan.as_secs_f64() * 1e3, t_plan.as_secs_f64() / t_make_n.as_secs_f64());
    println!("  make -n        {:>8.1} ms", t_make_n.as_secs_f64() * 1e3);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not run this.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let parts = std::env::var("PTB_BENCH").unwrap_or_else(|_| "plan,hash,apply".into());
    let parts: Vec<&str> = parts.split(',').collect();
    if parts.contains(&"plan") {
        bench_plan();
    }
    if parts.contains(&"hash") {
        bench_hash();
    }
    if parts.contains(&"apply") {
        let sizes = std::env::var("PTB_BENCH_AGENTS").unwrap_or_else(|_| "12".into());
        for agents in sizes.split(',').map(|a| a.trim().parse().expect("PTB_BENCH_AGENTS: numbers")) {
            bench_apply(agents);
        }
    }
}
