//! GPU stages. `gpu_stage_sees_only_its_devices` needs a host with NVIDIA
//! GPUs and the NVIDIA Container Toolkit and is ignored elsewhere (run it
//! with `cargo test -p ptb-exec --test docker_gpu -- --ignored` and
//! PTB_TEST_GPU=1 there); the others run everywhere.

mod support;

use ptb_core::spec::ExecutorKind;
use ptb_exec::{Executor, StageStatus};
use support::*;

fn gpu_host() -> bool {
    std::env::var("PTB_TEST_GPU").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_without_assigned_devices_is_a_clear_error() {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "true");
    j.resources.gpus = 1;
    let e = docker().await.run(&j, &Lines::default()).await.unwrap_err().to_string();
    assert!(e.contains("asks for 1 GPU") && e.contains("--gpus"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_nvidia_runtime_says_what_to_install() {
    if gpu_host() {
        eprintln!("skipped: PTB_TEST_GPU=1 says this host has the NVIDIA runtime (gpu_stage_sees_only_its_devices covers it)");
        return;
    }
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "true");
    j.resources.gpus = 1;
    j.gpu_ids = vec![0];
    let e = docker().await.run(&j, &Lines::default()).await.unwrap_err().to_string();
    assert!(e.contains("NVIDIA Container Toolkit"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NVIDIA GPUs and the NVIDIA Container Toolkit"]
async fn gpu_stage_sees_only_its_devices() {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "nvidia-smi -L");
    j.resources.gpus = 1;
    j.gpu_ids = vec![0];
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    assert_eq!(s.log().lines().filter(|l| l.starts_with("GPU ")).count(), 1, "{}", s.log());
}
