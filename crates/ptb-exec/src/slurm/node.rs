//! `ptb stage-run DIR`: the node's side of a Slurm job. Runs the stage in
//! the job directory with the local or Docker executor (so budget, grace
//! and the stage contract are the same code as on one machine) and writes
//! `outcome.json` for the controller.

use super::jobdir::{self, WireJob, WireOutcome};
use crate::{ExecError, Executor, StageStatus};
use std::path::Path;

fn node_name() -> String {
    std::env::var("SLURMD_NODENAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

/// GPUs Slurm gave this job (`--gres=gpu:N` sets CUDA_VISIBLE_DEVICES).
fn slurm_gpus() -> Vec<u32> {
    std::env::var("CUDA_VISIBLE_DEVICES").ok().map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect()).unwrap_or_default()
}

/// Run the job in `dir` and write its outcome there. An error means not
/// even a failed outcome could be written.
pub async fn stage_run(dir: &Path) -> Result<WireOutcome, ExecError> {
    let node = node_name();
    let outcome = match run(dir).await {
        Ok(o) => WireOutcome::from_outcome(&o, node),
        Err(e) => WireOutcome {
            status: StageStatus::Failed,
            exit_code: None,
            signal: None,
            wall_ms: 0,
            oom_killed: false,
            peak_memory_bytes: None,
            error: Some(e.to_string()),
            node,
        },
    };
    jobdir::write_atomic(&dir.join(jobdir::OUTCOME), &serde_json::to_vec_pretty(&outcome).expect("an outcome serialises"))?;
    Ok(outcome)
}

async fn run(dir: &Path) -> Result<crate::StageOutcome, ExecError> {
    let path = dir.join(jobdir::JOB);
    let bytes = std::fs::read(&path).map_err(|source| ExecError::Io { context: format!("reading {}", path.display()), source })?;
    let wire: WireJob = serde_json::from_slice(&bytes).map_err(|e| ExecError::Engine(format!("{}: {e}", path.display())))?;
    let mut job = wire.into_job(|name| std::env::var(name).ok())?;
    let gpus = slurm_gpus();
    if !gpus.is_empty() {
        let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
        job.env.insert("CUDA_VISIBLE_DEVICES".into(), ids.join(","));
        job.gpu_ids = gpus;
    }
    // A requeued attempt starts as fresh as the first: nothing of a killed
    // attempt's output or scratch may leak into it.
    for d in [&job.out_dir, &job.work_dir] {
        if d.exists() {
            remove_tree(d).map_err(|source| ExecError::Io { context: format!("emptying {}", d.display()), source })?;
        }
    }
    let quiet = |_: &str| {};
    if job.image.is_some() {
        let docker = crate::docker::DockerExecutor::connect().await?;
        docker.run(&job, &quiet).await
    } else {
        crate::local::LocalExecutor::default().run(&job, &quiet).await
    }
}

/// Remove a tree a stage wrote, whatever modes it left (read-only files
/// in writable directories are removable; read-only directories are not).
fn remove_tree(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(root).into_iter().flatten() {
        if e.file_type().is_dir() {
            let mode = e.metadata().map(|m| m.permissions().mode()).unwrap_or(0o700);
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode | 0o700));
        }
    }
    std::fs::remove_dir_all(root)
}
