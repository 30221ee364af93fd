//! One stage, one container: create, start, stream logs, enforce the
//! budget, collect the outcome, remove.

use super::reap::{LABEL_KEY, LABEL_OWNER};
use super::{DockerExecutor, errors};
use crate::interrupt::Stop;
use crate::log::StageLog;
use crate::*;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, Mount, MountType};
use bollard::query_parameters as qp;
use futures_util::StreamExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub(super) const OUT: &str = "/output";
pub(super) const WORK: &str = "/work";
pub(super) const INPUTS: &str = "/inputs";
pub(super) const CACHES: &str = "/cache";

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExecError {
    let context = context.into();
    move |source| ExecError::Io { context, source }
}

/// The environment a container stage gets (the image's own env stays
/// underneath; these win).
pub fn container_env(job: &StageJob, deadline_unix: u64) -> BTreeMap<String, String> {
    let mut env = base_env(job, OUT, deadline_unix);
    if let Some(home) = super::sandbox::home(&job.sandbox) {
        env.insert("HOME".into(), home.into());
    }
    for input in &job.inputs {
        env.insert(input_env_name(&input.name), format!("{INPUTS}/{}", input.name));
    }
    for cache in &job.caches {
        env.insert(cache_env_name(&cache.name), format!("{CACHES}/{}", cache.name));
    }
    env.extend(job.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(job.secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn set_mode(dir: &Path, mode: u32) -> Result<(), ExecError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io(format!("setting permissions of {}", dir.display())))
}

/// Input names become mount points; one with a `/` or `..` could shadow
/// /output or land outside /inputs.
fn check_input_name(name: &str) -> Result<(), ExecError> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    ok.then_some(()).ok_or_else(|| ExecError::Engine(format!("input name `{name}` cannot be a mount point under {INPUTS}")))
}

fn bind(source: &Path, target: String, read_only: bool) -> Result<Mount, ExecError> {
    let source = source.canonicalize().map_err(io(format!("input {}", source.display())))?;
    Ok(Mount {
        target: Some(target),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    })
}

fn mounts(job: &StageJob) -> Result<Vec<Mount>, ExecError> {
    let mut m = vec![bind(&job.out_dir, OUT.into(), false)?, bind(&job.work_dir, WORK.into(), false)?];
    for input in &job.inputs {
        check_input_name(&input.name)?;
        m.push(bind(&input.path, format!("{INPUTS}/{}", input.name), true)?);
    }
    for cache in &job.caches {
        check_input_name(&cache.name)?;
        std::fs::create_dir_all(&cache.path).map_err(io(format!("creating {}", cache.path.display())))?;
        // Shared by stages that run as different users (ptb's, the image's,
        // nobody): anyone may add an entry, nobody may remove another's,
        // as in /tmp. Only content-addressed caches are mounted (StageJob::caches).
        set_mode(&cache.path, 0o1777)?;
        m.push(bind(&cache.path, format!("{CACHES}/{}", cache.name), false)?);
    }
    Ok(m)
}

pub(super) fn host_config(job: &StageJob) -> Result<HostConfig, ExecError> {
    if job.resources.gpus > 0 && job.gpu_ids.is_empty() {
        return Err(ExecError::Engine(format!(
            "stage {} of {} asks for {} GPU(s) but none were assigned; pass `--gpus 0,1,…` or run on a host with NVIDIA GPUs",
            job.stage.name(),
            job.cell,
            job.resources.gpus
        )));
    }
    let device_requests = (!job.gpu_ids.is_empty()).then(|| {
        vec![DeviceRequest {
            driver: Some("nvidia".into()),
            device_ids: Some(job.gpu_ids.iter().map(u32::to_string).collect()),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]
    });
    let memory = job.resources.memory_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let mut hc = HostConfig {
        mounts: Some(mounts(job)?),
        // Only `none` or `bridge` can be asked for (spec::Network): never the
        // host's network or another container's.
        network_mode: Some(job.network.name().into()),
        nano_cpus: job.resources.cpus.map(|c| i64::from(c) * 1_000_000_000),
        memory,
        // Equal to memory: no swap, so the limit is a limit and an
        // over-budget stage is OOM-killed instead of crawling.
        memory_swap: memory,
        device_requests,
        ..Default::default()
    };
    super::sandbox::apply(&job.sandbox, &mut hc);
    Ok(hc)
}

/// Removes the container if the stage future is dropped half-way (ptb
/// interrupted): a running container would otherwise outlive it.
struct Cleanup {
    docker: Docker,
    id: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let (Some(id), Ok(rt)) = (self.id.take(), tokio::runtime::Handle::try_current()) {
            let docker = self.docker.clone();
            rt.spawn(async move {
                let opts = qp::RemoveContainerOptionsBuilder::default().force(true).v(true).build();
                let _ = docker.remove_container(&id, Some(opts)).await;
            });
        }
    }
}

pub(super) async fn run(ex: &DockerExecutor, job: &StageJob, lines: &dyn LineSink) -> Result<StageOutcome, ExecError> {
    let image =
        job.image.as_deref().ok_or_else(|| ExecError::Engine(format!("stage {} of {} runs on docker but names no image", job.stage.name(), job.cell)))?;
    std::fs::create_dir_all(&job.work_dir).map_err(io(format!("creating {}", job.work_dir.display())))?;
    std::fs::create_dir_all(&job.out_dir).map_err(io(format!("creating {}", job.out_dir.display())))?;
    let log = std::fs::File::create(&job.log_path).map_err(io(format!("creating {}", job.log_path.display())))?;
    // Many agent images run as an unprivileged USER; bind mounts keep host
    // permissions, so the two writable mounts must be writable by anyone
    // while the stage runs (the mode is restored afterwards).
    set_mode(&job.out_dir, 0o777)?;
    set_mode(&job.work_dir, 0o777)?;

    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + job.budget;
    let env = container_env(job, deadline.as_secs()).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let labels = [(LABEL_KEY, job.key.clone()), ("ptb.cell", job.cell.clone()), ("ptb.stage", job.stage.name().to_string()), (LABEL_OWNER, ex.owner.0.clone())];
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: (!job.command.is_empty()).then(|| job.command.clone()),
        env: Some(env),
        working_dir: Some(WORK.into()),
        user: super::sandbox::user(&job.sandbox, ex.ptb_user),
        labels: Some(labels.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        host_config: Some(host_config(job)?),
        ..Default::default()
    };
    if job.pull == PullPolicy::IfMissing {
        ex.ensure_image(image, job.pull).await?;
    }
    let created = match ex.docker.create_container(None::<qp::CreateContainerOptions>, body).await {
        Ok(c) => c,
        Err(e) if errors::is_not_found(&e) => return Err(ExecError::ImageMissing { image: image.to_string() }),
        Err(e) => return Err(errors::engine(e, &ex.socket, &format!("creating the container for {image}"))),
    };
    let id = created.id;
    let mut cleanup = Cleanup { docker: ex.docker.clone(), id: Some(id.clone()) };

    let start = Instant::now();
    ex.docker
        .start_container(&id, None::<qp::StartContainerOptions>)
        .await
        .map_err(|e| errors::engine(e, &ex.socket, &format!("starting the container for {image}")))?;

    let peak = Arc::new(AtomicU64::new(0));
    let stats = tokio::spawn(sample_memory(ex.docker.clone(), id.clone(), peak.clone()));
    let mut pump = LogPump { log: StageLog::new(log, Redactor::new(&job.secrets), lines), seen: [0; 2] };
    let waited = enforce_budget(&ex.docker, &id, job);
    let (stopped, ()) = tokio::join!(waited, pump.read(&ex.docker, &id, true));
    let wall = start.elapsed();
    stats.abort();
    pump.read(&ex.docker, &id, false).await;
    pump.finish();

    let state = ex
        .docker
        .inspect_container(&id, None::<qp::InspectContainerOptions>)
        .await
        .map_err(|e| errors::engine(e, &ex.socket, "inspecting the finished container"))?
        .state
        .unwrap_or_default();
    let exit_code = state.exit_code.map(|c| i32::try_from(c).unwrap_or(-1));
    let oom_killed = state.oom_killed.unwrap_or(false);
    let removed = ex.remove_container(&id).await;
    cleanup.id = None;
    removed.map_err(|e| errors::engine(e, &ex.socket, "removing the finished container"))?;

    if let Some(owner) = ex.output_owner {
        hand_over(ex, image, job, owner).await?;
    }
    set_mode(&job.out_dir, 0o755)?;
    set_mode(&job.work_dir, 0o755)?;
    let status = if let Some(stop) = stopped {
        stop.status()
    } else if exit_code == Some(0) {
        StageStatus::Success
    } else {
        StageStatus::Failed
    };
    let peak = peak.load(Ordering::Relaxed);
    Ok(StageOutcome {
        status,
        exit_code,
        // The engine reports a signal death as 128 + signal, like a shell.
        signal: exit_code.filter(|c| (129..160).contains(c)).map(|c| c - 128),
        wall,
        oom_killed,
        peak_memory_bytes: (peak > 0).then_some(peak),
    })
}

/// Waits for the container to exit, or stops it at the deadline or when
/// ptb is interrupted: SIGTERM, then SIGKILL after the grace. Returns why
/// it was stopped, if it was.
async fn enforce_budget(docker: &Docker, id: &str, job: &StageJob) -> Option<Stop> {
    let stop = tokio::select! {
        () = wait_exit(docker, id) => return None,
        stop = Stop::when(job) => stop,
    };
    let _ = signal(docker, id, "SIGTERM").await;
    if tokio::time::timeout(stop.grace(job), wait_exit(docker, id)).await.is_err() {
        let _ = signal(docker, id, "SIGKILL").await;
        wait_exit(docker, id).await;
    }
    Some(stop)
}

async fn signal(docker: &Docker, id: &str, sig: &str) -> Result<(), bollard::errors::Error> {
    docker.kill_container(id, Some(qp::KillContainerOptionsBuilder::default().signal(sig).build())).await
}

/// Returns once the container is not running. The wait endpoint reports a
/// non-zero exit as an error, which here just means "exited".
async fn wait_exit(docker: &Docker, id: &str) {
    let mut wait = docker.wait_container(id, None::<qp::WaitContainerOptions>);
    match wait.next().await {
        Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
        // A dropped wait connection must not end the stage early: poll.
        _ => loop {
            let running =
                docker.inspect_container(id, None::<qp::InspectContainerOptions>).await.ok().and_then(|i| i.state).and_then(|s| s.running).unwrap_or(false);
            if !running {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        },
    }
}

/// Follows stats (about once a second) for the highest memory use seen.
/// cgroup v1 reports the kernel's own peak (`max_usage`); v2 only the
/// current usage, so there the figure is the highest sample.
async fn sample_memory(docker: Docker, id: String, peak: Arc<AtomicU64>) {
    let mut stats = docker.stats(&id, Some(qp::StatsOptionsBuilder::default().stream(true).build()));
    while let Some(Ok(s)) = stats.next().await {
        if let Some(m) = s.memory_stats {
            let seen = m.max_usage.unwrap_or(0).max(m.usage.unwrap_or(0));
            peak.fetch_max(seen, Ordering::Relaxed);
        }
    }
}

/// Feeds the engine's log chunks into the stage's log ([`StageLog`] makes
/// lines, redacts and caps).
struct LogPump<'a> {
    log: StageLog<'a>,
    /// Bytes seen so far, for stdout and stderr.
    seen: [usize; 2],
}

impl LogPump<'_> {
    /// Reads the container's logs, skipping bytes already seen. Following
    /// can end a moment before the engine has stored the last write, so
    /// after the container exits a second, non-following pass collects
    /// the rest: the engine has flushed everything by then.
    async fn read(&mut self, docker: &Docker, id: &str, follow: bool) {
        let opts = qp::LogsOptionsBuilder::default().follow(follow).stdout(true).stderr(true).build();
        let mut stream = docker.logs(id, Some(opts));
        let mut offered = [0usize; 2];
        while let Some(Ok(chunk)) = stream.next().await {
            let (i, message) = match chunk {
                LogOutput::StdErr { message } => (1, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } | LogOutput::StdIn { message } => (0, message),
            };
            let skip = self.seen[i].saturating_sub(offered[i]).min(message.len());
            offered[i] += message.len();
            if skip < message.len() {
                self.seen[i] += message.len() - skip;
                self.log.push(i, &message[skip..]);
            }
        }
    }

    fn finish(self) {
        self.log.finish();
    }
}

/// Gives what the container left in the output and work directories to
/// `owner`. Only a root process can chown, so when anything is not already
/// owned by `owner`, a short-lived container from the same image does it.
async fn hand_over(ex: &DockerExecutor, image: &str, job: &StageJob, (uid, gid): (u32, u32)) -> Result<(), ExecError> {
    let foreign =
        |dir: &Path| walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok).any(|e| e.metadata().is_ok_and(|m| m.uid() != uid || m.gid() != gid));
    if !foreign(&job.out_dir) && !foreign(&job.work_dir) {
        return Ok(());
    }
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } == 0 {
        return chown_tree(&[&job.out_dir, &job.work_dir], uid, gid);
    }
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["chown".into(), "-R".into(), format!("{uid}:{gid}"), OUT.into(), WORK.into()]),
        cmd: Some(vec![]),
        user: Some("0".into()),
        labels: Some([(LABEL_KEY.to_string(), job.key.clone()), (LABEL_OWNER.to_string(), ex.owner.0.clone())].into()),
        host_config: Some(HostConfig {
            mounts: Some(vec![bind(&job.out_dir, OUT.into(), false)?, bind(&job.work_dir, WORK.into(), false)?]),
            network_mode: Some("none".into()),
            // The image is the stage's: its `chown` gets only what chown needs.
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"].map(String::from).to_vec()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            pids_limit: Some(64),
            readonly_rootfs: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let fail = |what: String| {
        ExecError::Engine(format!(
            "the stage's outputs in {} are owned by root and could not be handed to {uid}:{gid} ({what}); the image needs a `chown` binary, or run ptb as root",
            job.out_dir.display()
        ))
    };
    let id = ex.docker.create_container(None::<qp::CreateContainerOptions>, body).await.map_err(|e| fail(e.to_string()))?.id;
    let _cleanup = Cleanup { docker: ex.docker.clone(), id: Some(id.clone()) };
    ex.docker.start_container(&id, None::<qp::StartContainerOptions>).await.map_err(|e| fail(e.to_string()))?;
    wait_exit(&ex.docker, &id).await;
    let code = ex.docker.inspect_container(&id, None::<qp::InspectContainerOptions>).await.ok().and_then(|i| i.state).and_then(|s| s.exit_code);
    if code != Some(0) {
        return Err(fail(format!("chown exited with {code:?}")));
    }
    Ok(())
}

/// ptb as root takes a stage's files back itself, never following a link
/// (`lchown`); the kernel clears set-uid and set-gid bits as it does.
fn chown_tree(roots: &[&Path], uid: u32, gid: u32) -> Result<(), ExecError> {
    for root in roots {
        for e in walkdir::WalkDir::new(root) {
            let e = e.map_err(|e| ExecError::Io { context: format!("walking {}", root.display()), source: e.into() })?;
            std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).map_err(io(format!("handing {} to {uid}:{gid}", e.path().display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_cannot_escape_inputs() {
        for bad in ["", ".", "..", "a/b", "../output"] {
            assert!(check_input_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_input_name("model").is_ok());
        assert_eq!(input_env_name("task.md"), "PTB_INPUT_TASK_MD");
        assert_eq!(input_env_name("base-model"), "PTB_INPUT_BASE_MODEL");
    }
}
