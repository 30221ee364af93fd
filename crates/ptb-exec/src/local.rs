//! The local-process executor: runs a stage's command on this host in a
//! fresh work directory with a clean environment.
//!
//! Inputs are passed as paths in `PTB_INPUT_<NAME>`; the store makes
//! finished entries read-only, but a local process runs with the user's
//! rights, so read-only is by convention here and enforced only by the
//! Docker executor's mounts (documented in docs/agent-contract.md).
//!
//! Every process the stage starts ends with it ([`crate::contain`]): at its
//! command's exit, at the budget kill, and when ptb dies.

use super::*;
use crate::contain::{Containment, Prepared, TOKEN_VAR, new_token, signal_token};
use crate::interrupt::Stop;
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

/// How long output is still read after a stage's processes are gone: a
/// descendant that escaped them (possible only without a PID namespace)
/// may hold the pipe open forever.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone)]
pub struct LocalExecutor {
    containment: Containment,
}

impl LocalExecutor {
    /// Chooses how stages are contained (default: a PID namespace where the
    /// kernel allows one). [`Containment::Token`] exists for tests of the fallback.
    pub fn with_containment(containment: Containment) -> Self {
        LocalExecutor { containment }
    }
}

impl Executor for LocalExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Local
    }

    fn run<'a>(&'a self, job: &'a StageJob, lines: &'a dyn LineSink) -> BoxFuture<'a, Result<StageOutcome, ExecError>> {
        Box::pin(run_local(job, lines, self.containment))
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExecError {
    let context = context.into();
    move |source| ExecError::Io { context, source }
}

/// The full environment of a local stage.
pub fn local_env(job: &StageJob, token: &str) -> BTreeMap<String, String> {
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + job.budget;
    let mut env = base_env(job, &job.out_dir.to_string_lossy(), deadline.as_secs());
    env.insert("PATH".into(), STAGE_PATH.into());
    env.insert("HOME".into(), job.work_dir.to_string_lossy().into_owned());
    env.insert("TMPDIR".into(), job.work_dir.join("tmp").to_string_lossy().into_owned());
    env.insert("LANG".into(), "C.UTF-8".into());
    env.insert(TOKEN_VAR.into(), token.into());
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

async fn run_local(job: &StageJob, lines: &dyn LineSink, containment: Containment) -> Result<StageOutcome, ExecError> {
    let program = job.command.first().ok_or_else(|| ExecError::Engine("empty command".into()))?;
    std::fs::create_dir_all(job.work_dir.join("tmp")).map_err(io(format!("creating {}", job.work_dir.display())))?;
    std::fs::create_dir_all(&job.out_dir).map_err(io(format!("creating {}", job.out_dir.display())))?;
    for cache in &job.caches {
        std::fs::create_dir_all(&cache.path).map_err(io(format!("creating {}", cache.path.display())))?;
    }
    let log = std::fs::File::create(&job.log_path).map_err(io(format!("creating {}", job.log_path.display())))?;
    let log = Mutex::new(StageLog::new(log, Redactor::new(&job.secrets), lines));

    let token = new_token();
    let mut cmd = Command::new(program);
    cmd.args(&job.command[1..])
        .env_clear()
        .envs(local_env(job, &token))
        .current_dir(&job.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so the budget can stop the whole tree.
        .process_group(0)
        .kill_on_drop(true);
    let prepared = Prepared::new(containment);
    // SAFETY: `in_child` makes only async-signal-safe calls (contain.rs).
    unsafe {
        cmd.pre_exec(move || prepared.in_child());
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn { program: program.clone(), source })?;
    let pgid = child.id().map(|p| p as i32);
    // Whether the stage got its own PID namespace (the kernel may refuse
    // it): its processes then cannot outlive it, and nothing needs finding
    // by token.
    let token = if pgid.is_some_and(namespaced) { None } else { Some(token.as_str()) };
    let out = pump(child.stdout.take(), 0, &log);
    let err = pump(child.stderr.take(), 1, &log);

    let (gone, drained) = tokio::sync::oneshot::channel::<()>();
    let waited = async {
        let first = tokio::select! {
            status = child.wait() => Ok(status),
            stop = Stop::when(job) => Err(stop),
        };
        let r = match first {
            Ok(status) => (status, None),
            Err(stop) => {
                signal_stage(pgid, token, libc::SIGTERM);
                let status = match tokio::time::timeout(stop.grace(job), child.wait()).await {
                    Ok(s) => s,
                    Err(_) => {
                        signal_stage(pgid, token, libc::SIGKILL);
                        child.wait().await
                    }
                };
                (status, Some(stop))
            }
        };
        // Processes that outlived the stage's command must not keep
        // running (in a PID namespace the kernel has killed them already).
        signal_stage(pgid, token, libc::SIGKILL);
        let _ = gone.send(());
        r
    };
    // Output is read until every holder of the pipes is gone, but no longer
    // than DRAIN after the stage's processes were killed.
    let pumped = async {
        let both = async { tokio::join!(out, err) };
        tokio::select! {
            _ = both => {}
            _ = async { let _ = drained.await; tokio::time::sleep(DRAIN).await } => {}
        }
    };
    let ((status, stopped), ()) = tokio::join!(waited, pumped);
    log.into_inner().finish();
    let status = status.map_err(io("waiting for the stage"))?;
    let wall = start.elapsed();
    let outcome = if let Some(stop) = stopped {
        stop.status()
    } else if status.success() {
        StageStatus::Success
    } else {
        StageStatus::Failed
    };
    Ok(StageOutcome { status: outcome, exit_code: status.code(), signal: status.signal(), wall, oom_killed: false, peak_memory_bytes: None })
}

/// Whether `pid` (the stage's outer process) made a PID namespace for its
/// children. Asked once the spawn has returned, by when the outer process
/// has unshared (it closes the spawn's pipe only after). Anything that
/// cannot be read says no: the token is then used, as without a namespace.
fn namespaced(pid: i32) -> bool {
    let ns = |p: &str| std::fs::read_link(p).ok();
    match (ns(&format!("/proc/{pid}/ns/pid_for_children")), ns("/proc/self/ns/pid")) {
        (Some(child), Some(own)) => child != own,
        _ => false,
    }
}

/// Signals the stage: its process group (the command, and in a namespace
/// its init, which passes the signal to every process in it) and whatever
/// carries its token.
fn signal_stage(pgid: Option<i32>, token: Option<&str>, sig: i32) {
    if let Some(p) = pgid {
        // SAFETY: plain syscall; a stale group id yields ESRCH, ignored.
        unsafe {
            libc::kill(-p, sig);
        }
    }
    // A process may fork while the scan runs; its child, created after
    // the scan passed, carries the token too. Kill until a pass finds none
    // (a killed process leaves the scan when it dies, at once for SIGKILL).
    let Some(token) = token else { return };
    let passes = if sig == libc::SIGKILL { 50 } else { 1 };
    for _ in 0..passes {
        if signal_token(token, sig) == 0 {
            break;
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
