//! Running untrusted Python (model-written code) the way a careful harness
//! should: a fresh temp dir as cwd and HOME, a scrubbed environment, no network
//! (a new network namespace via `unshare -rn` when the kernel allows it),
//! rlimits on memory, CPU time, file size and core dumps, its own process
//! group, and a wall-clock timeout that kills the whole group.
//!
//! This is defence in depth, not a jail: the code can still read files the
//! user can read. The reference runs `python -c` with no limits at all.

use super::BenchError;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub python: PathBuf,
    /// Wall-clock limit; the reference's is 30 s.
    pub timeout: Duration,
    /// Address-space limit in bytes.
    pub memory_bytes: u64,
    /// Require network isolation; fail instead of running without it.
    pub require_no_network: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions { python: default_python(), timeout: Duration::from_secs(30), memory_bytes: 4 << 30, require_no_network: false }
    }
}

/// `$PTB_PYTHON`, else the interpreter `python3` really is: launchers such as
/// pyenv's shims are shell scripts that cost ~150 ms per start, which would
/// dominate a HumanEval run, so we ask Python for `sys.executable` once.
pub fn default_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Some(p) = std::env::var_os("PTB_PYTHON") {
            return PathBuf::from(p);
        }
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("python3"))
    })
    .clone()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Exit status 0 within the time limit.
    pub passed: bool,
    pub timed_out: bool,
    pub exit_code: Option<i32>,
    /// The last bytes of stderr, for the per-item record.
    pub stderr_tail: String,
    pub network_isolated: bool,
}

/// Whether `unshare -rn` works here (user namespaces may be disabled, e.g.
/// inside some containers). Probed once.
pub fn network_isolation_available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        Command::new("unshare")
            .args(["-rn", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

const STDERR_TAIL: usize = 2000;

/// Run `python -c code` under the sandbox.
pub fn run_python(code: &str, opts: &SandboxOptions) -> Result<RunOutcome, BenchError> {
    let isolated = network_isolation_available();
    if opts.require_no_network && !isolated {
        return Err(BenchError::Sandbox("network isolation (`unshare -rn`) is not available on this machine".into()));
    }
    let dir = tempfile::Builder::new().prefix("ptb-sbx-").tempdir().map_err(|e| BenchError::Sandbox(e.to_string()))?;
    let stderr_path = dir.path().join(".stderr");
    let stderr_file = std::fs::File::create(&stderr_path).map_err(|e| BenchError::Sandbox(e.to_string()))?;

    let mut cmd = if isolated {
        let mut c = Command::new("unshare");
        c.arg("-rn").arg("--").arg(&opts.python);
        c
    } else {
        Command::new(&opts.python)
    };
    cmd.arg("-c").arg(code);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr_file));
    let cpu_secs = opts.timeout.as_secs() + 5;
    let mem = opts.memory_bytes;
    // SAFETY: only async-signal-safe calls (setsid, setrlimit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            set_rlimit(libc::RLIMIT_AS, mem)?;
            set_rlimit(libc::RLIMIT_CPU, cpu_secs)?;
            set_rlimit(libc::RLIMIT_FSIZE, 64 << 20)?;
            set_rlimit(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| BenchError::Sandbox(format!("cannot start {}: {e}", opts.python.display())))?;
    let pgid = child.id() as i32;
    let start = Instant::now();
    let mut sleep = Duration::from_millis(1);
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(st)) => break (Some(st), false),
            Ok(None) if start.elapsed() >= opts.timeout => {
                // SAFETY: signalling the group we created with setsid.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
                let st = child.wait().ok();
                break (st, true);
            }
            Ok(None) => {
                std::thread::sleep(sleep);
                sleep = (sleep * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(BenchError::Sandbox(e.to_string())),
        }
    };
    // Children the program forked may outlive it; the group dies with it.
    // SAFETY: as above; ESRCH when the group is already gone is fine.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(&stderr_path) {
        let _ = f.read_to_end(&mut buf);
    }
    let tail = String::from_utf8_lossy(&buf[buf.len().saturating_sub(STDERR_TAIL)..]).into_owned();
    let exit_code = status.and_then(|s| s.code());
    Ok(RunOutcome { passed: !timed_out && exit_code == Some(0), timed_out, exit_code, stderr_tail: tail, network_isolated: isolated })
}

/// Run many programs on `jobs` threads (each program is its own process, so
/// threads only wait). Results keep the input order.
pub fn run_many(codes: &[String], opts: &SandboxOptions, jobs: usize) -> Vec<Result<RunOutcome, BenchError>> {
    ptb_core::pool::map_ordered(codes, jobs, |code| run_python(code, opts))
}

/// Default parallelism: one sandbox per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
