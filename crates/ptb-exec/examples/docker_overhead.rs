//! Measures what the Docker executor adds over `docker run --rm IMAGE true`,
//! and how many concurrent container stages this machine sustains.
//! Run through perf/docker-overhead.sh (it builds the image first).

use ptb_core::spec::{ExecutorKind, Resources, StageKind};
use ptb_exec::docker::DockerExecutor;
use ptb_exec::{Executor, JobInput, StageJob, StageStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IMAGE: &str = "ptb-test/busybox:1";

fn job(dir: &std::path::Path, i: usize, script: &str) -> StageJob {
    let d = dir.join(format!("j{i}"));
    std::fs::create_dir_all(d.join("in")).unwrap();
    StageJob {
        key: format!("bench{i}"),
        cell: format!("m/b/a/seed={i}"),
        stage: StageKind::Agent,
        executor: ExecutorKind::Docker,
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        image: Some(IMAGE.into()),
        network: ptb_core::spec::Network::None,
        sandbox: ptb_core::spec::Sandbox::default(),
        interrupt: Default::default(),
        env: BTreeMap::new(),
        secrets: BTreeMap::new(),
        inputs: vec![JobInput { name: "model".into(), path: d.join("in") }],
        out_dir: d.join("out"),
        work_dir: d.join("work"),
        log_path: d.join("log"),
        budget: Duration::from_secs(600),
        grace: Duration::from_secs(5),
        resources: Resources::default(),
        gpu_ids: vec![],
        pull: ptb_core::spec::PullPolicy::Never,
        caches: Vec::new(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let ex = DockerExecutor::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let noop = |_: &str| {};

    // Interleaved, so drift in machine load hits both sides alike.
    let (mut cli, mut stage) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        let st = std::process::Command::new("docker").args(["run", "--rm", "--network", "none", IMAGE, "true"]).status().unwrap();
        assert!(st.success());
        cli.push(t.elapsed().as_secs_f64());
        let j = job(dir.path(), i, "true");
        let t = Instant::now();
        let o = ex.run(&j, &noop).await.unwrap();
        assert_eq!(o.status, StageStatus::Success);
        stage.push(t.elapsed().as_secs_f64());
    }
    let (c, s) = (median(cli), median(stage));
    println!("single stage, median of {n}:");
    println!("  docker run --rm {IMAGE} true   {:7.3} s", c);
    println!("  ptb Docker stage (true)              {:7.3} s", s);
    println!("  ratio                                {:7.2}x  (goal <= 1.2x)", s / c);

    println!("\nconcurrent stages, each `sleep 5` (ideal wall 5 s):");
    println!("  {:>4}  {:>8}  {:>9}  {:>12}", "N", "wall s", "overhead", "overhead/stg");
    for k in [1usize, 2, 4, 8, 16, 32] {
        let jobs: Vec<StageJob> = (0..k).map(|i| job(dir.path(), 1000 * k + i, "sleep 5")).collect();
        let t = Instant::now();
        let runs = jobs.iter().map(|j| ex.run(j, &noop));
        let outs = futures_util::future::join_all(runs).await;
        let wall = t.elapsed().as_secs_f64();
        let ok = outs.iter().filter(|o| matches!(o, Ok(o) if o.status == StageStatus::Success)).count();
        println!(
            "  {:>4}  {:>8.2}  {:>8.2}s  {:>11.3}s  {}",
            k,
            wall,
            wall - 5.0,
            (wall - 5.0) / k as f64,
            if ok == k { "all ok".to_string() } else { format!("{ok}/{k} ok") }
        );
    }
}
