//! The local-process executor: runs a stage's command on this host in a
//! fresh work directory with a clean environment.
//!
//! Inputs are passed as paths in `PTB_INPUT_<NAME>`; the store makes
//! finished entries read-only, but a local process runs with the user's
//! rights, so read-only is by convention here and enforced only by the
//! Docker executor's mounts (documented in docs/agent-contract.md).

use super::*;
use crate::log::StageLog;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncRead;
use tokio::process::Command;
use tokio::sync::Mutex;

/// The PATH given to stages: the host's PATH would leak the user's
/// environment into results, but stages need an interpreter.
const STAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Default, Clone)]
pub struct LocalExecutor;

impl Executor for LocalExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Local
    }

    fn run<'a>(&'a self, job: &'a StageJob, lines: &'a dyn LineSink) -> BoxFuture<'a, Result<StageOutcome, ExecError>> {
        Box::pin(run_local(job, lines))
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExecError {
    let context = context.into();
    move |source| ExecError::Io { context, source }
}

/// The full environment of a local stage.
pub fn local_env(job: &StageJob) -> BTreeMap<String, String> {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + job.budget;
    let mut env = base_env(job, &job.out_dir.to_string_lossy(), deadline.as_secs());
    env.insert("PATH".into(), STAGE_PATH.into());
    env.insert("HOME".into(), job.work_dir.to_string_lossy().into_owned());
    env.insert("TMPDIR".into(), job.work_dir.join("tmp").to_string_lossy().into_owned());
    env.insert("LANG".into(), "C.UTF-8".into());
    for input in &job.inputs {
        env.insert(input_env_name(&input.name), input.path.to_string_lossy().into_owned());
    }
    for cache in &job.caches {
        env.insert(cache_env_name(&cache.name), cache.path.to_string_lossy().into_owned());
    }
    env.extend(job.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(job.secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

async fn run_local(job: &StageJob, lines: &dyn LineSink) -> Result<StageOutcome, ExecError> {
    let program = job.command.first().ok_or_else(|| ExecError::Engine("empty command".into()))?;
    std::fs::create_dir_all(job.work_dir.join("tmp")).map_err(io(format!("creating {}", job.work_dir.display())))?;
    std::fs::create_dir_all(&job.out_dir).map_err(io(format!("creating {}", job.out_dir.display())))?;
    for cache in &job.caches {
        std::fs::create_dir_all(&cache.path).map_err(io(format!("creating {}", cache.path.display())))?;
    }
    let log = std::fs::File::create(&job.log_path).map_err(io(format!("creating {}", job.log_path.display())))?;
    let log = Mutex::new(StageLog::new(log, Redactor::new(&job.secrets), lines));

    let mut cmd = Command::new(program);
    cmd.args(&job.command[1..])
        .env_clear()
        .envs(local_env(job))
        .current_dir(&job.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so the budget can stop the whole tree.
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
    // the stage if ptb dies, so a `kill -9` of ptb leaves no runaway stage.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn { program: program.clone(), source })?;
    let pgid = child.id().map(|p| p as i32);
    let out = pump(child.stdout.take(), 0, &log);
    let err = pump(child.stderr.take(), 1, &log);

    let waited = async {
        match tokio::time::timeout(job.budget, child.wait()).await {
            Ok(status) => (status, false),
            Err(_) => {
                signal_group(pgid, libc::SIGTERM);
                let status = match tokio::time::timeout(job.grace, child.wait()).await {
                    Ok(s) => s,
                    Err(_) => {
                        signal_group(pgid, libc::SIGKILL);
                        child.wait().await
                    }
                };
                (status, true)
            }
        }
    };
    let ((status, timed_out), _, _) = tokio::join!(waited, out, err);
    log.into_inner().finish();
    // Children that outlived the stage's main process must not keep running.
    signal_group(pgid, libc::SIGKILL);
    let status = status.map_err(io("waiting for the stage"))?;
    let wall = start.elapsed();
    let outcome = if timed_out {
        StageStatus::BudgetExhausted
    } else if status.success() {
        StageStatus::Success
    } else {
        StageStatus::Failed
    };
    Ok(StageOutcome { status: outcome, exit_code: status.code(), signal: status.signal(), wall, oom_killed: false, peak_memory_bytes: None })
}

fn signal_group(pgid: Option<i32>, sig: i32) {
    if let Some(p) = pgid {
        // SAFETY: plain syscall; a stale group id yields ESRCH, ignored.
        unsafe {
            libc::kill(-p, sig);
        }
    }
}

/// Copy one output stream into the stage's log, in chunks: a stage that
/// prints gigabytes without a newline costs ptb no more than one chunk.
async fn pump<R: AsyncRead + Unpin>(stream: Option<R>, index: usize, log: &Mutex<StageLog<'_>>) {
    use tokio::io::AsyncReadExt;
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => log.lock().await.push(index, &buf[..n]),
        }
    }
}
