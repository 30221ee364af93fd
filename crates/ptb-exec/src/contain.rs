//! Keeping every process a local stage starts inside the stage.
//!
//! A process group is not enough: `setsid` and double-forked daemons leave
//! it, outlive the budget kill and ptb's own death, and may write into the
//! next attempt's files. So a local stage runs in its own PID namespace:
//!
//! ```text
//! ptb ── outer (ptb's child; waits, exits with the command's status)
//!          └─ init (pid 1 of the namespace: forwards SIGTERM to all, reaps)
//!               └─ the stage's command (pid 2) ── its descendants
//! ```
//!
//! When the command exits, init exits with it, and the kernel kills every
//! other process in the namespace. Each link dies with its parent
//! (`PR_SET_PDEATHSIG`), so a `kill -9` of ptb takes the whole tree. As a
//! non-root user the namespace needs a user namespace too, which maps ptb's
//! uid and gid to themselves.
//!
//! Where the kernel refuses namespaces (EPERM: a container without
//! privileges, user namespaces disabled), the command runs as ptb's direct
//! child, and ptb kills by a per-attempt token in the environment
//! ([`TOKEN_VAR`]) instead: that catches daemons that keep their
//! environment, not ones that scrub it, and nothing survives ptb's `kill -9`
//! but such daemons (docs/security.md).
//!
//! Everything between fork and exec runs in a copy of a multi-threaded
//! process, so it uses only async-signal-safe calls (no allocation, no
//! locks): the buffers it writes are prepared before the fork.

use std::ffi::CString;
use std::io;

/// Written to the stage's log when its user namespace cannot be set up.
const MAP_FAILED: &str = "ptb: could not map ptb's user into the stage's user namespace (writing /proc/self/uid_map failed); \
the kernel allows unprivileged user namespaces but not this mapping: run ptb as root, or ask for the namespace to be allowed\n";

/// The environment variable that carries a local stage's token.
pub const TOKEN_VAR: &str = "PTB_STAGE_TOKEN";

/// How a local stage's processes are kept together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Containment {
    /// A PID namespace where the kernel allows one, else [`Containment::Token`].
    #[default]
    Namespace,
    /// Process group, parent-death signal and the environment token only
    /// (what ptb falls back to; selectable for tests).
    Token,
}

/// What the forked child needs, prepared before the fork.
pub(crate) struct Prepared {
    mode: Containment,
    /// ptb's pid: if the child's parent is already another, ptb died
    /// before the parent-death signal was armed.
    ptb: libc::pid_t,
    /// Non-root: the user namespace's maps, `/proc/self/…` paths with them.
    maps: Option<[(CString, Vec<u8>); 3]>,
}

impl Prepared {
    pub(crate) fn new(mode: Containment) -> Prepared {
        // SAFETY: plain getters.
        let (uid, gid, ptb) = unsafe { (libc::geteuid(), libc::getegid(), libc::getpid()) };
        let path = |p: &str| CString::new(p).expect("no NUL");
        let maps = (uid != 0).then(|| {
            [
                (path("/proc/self/setgroups"), b"deny".to_vec()),
                (path("/proc/self/uid_map"), format!("{uid} {uid} 1\n").into_bytes()),
                (path("/proc/self/gid_map"), format!("{gid} {gid} 1\n").into_bytes()),
            ]
        });
        Prepared { mode, ptb, maps }
    }

    /// Runs in the forked child before exec. Returns in the process that
    /// is to exec the command; the outer and init processes never return.
    ///
    /// # Safety
    /// Only between fork and exec (`CommandExt::pre_exec`).
    pub(crate) unsafe fn in_child(&self) -> io::Result<()> {
        // SAFETY (whole body): async-signal-safe syscalls on prepared data.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != self.ptb {
                libc::_exit(127);
            }
            if self.mode == Containment::Token || !self.unshare() {
                return Ok(());
            }
            let mut status_pipe = [0; 2];
            if libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return Err(io::Error::last_os_error());
            }
            let [status_read, status_write] = status_pipe;
            match libc::fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => {
                    libc::close(status_read);
                    init(status_write)
                }
                init_pid => {
                    libc::close(status_write);
                    outer(init_pid, status_read)
                }
            }
        }
    }

    /// A new PID namespace for this process's children (and a user
    /// namespace when not root); `false` where the kernel refuses.
    unsafe fn unshare(&self) -> bool {
        // SAFETY: async-signal-safe syscalls on prepared buffers.
        unsafe {
            let flags = libc::CLONE_NEWPID | if self.maps.is_some() { libc::CLONE_NEWUSER } else { 0 };
            if libc::unshare(flags) != 0 {
                return false;
            }
            for (path, bytes) in self.maps.iter().flatten() {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                let ok = fd >= 0 && libc::write(fd, bytes.as_ptr().cast(), bytes.len()) == bytes.len() as isize;
                if fd >= 0 {
                    libc::close(fd);
                }
                if !ok {
                    // The user namespace exists but cannot map us: running
                    // in it would run as `nobody`. Refuse the stage, saying
                    // why in its log (stderr is the log's pipe by now).
                    let msg = MAP_FAILED.as_bytes();
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                    libc::_exit(126);
                }
            }
            true
        }
    }
}

/// Closes every descriptor from 3 up except `keep`: std's exec-error pipe
/// among them, whose open end would otherwise make `spawn` wait for the
/// whole stage.
unsafe fn close_others(keep: libc::c_int) {
    // SAFETY: close_range on descriptor ranges; no memory is touched.
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
}

/// The outer process: ignores the budget's SIGTERM (init forwards it),
/// waits for init, and ends as the command ended.
unsafe fn outer(init_pid: libc::pid_t, status_read: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        close_others(status_read);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut init_status = 0;
        while libc::waitpid(init_pid, &mut init_status, 0) == -1 && *libc::__errno_location() == libc::EINTR {}
        let mut cmd_status: libc::c_int = 0;
        let n = libc::read(status_read, (&raw mut cmd_status).cast(), std::mem::size_of::<libc::c_int>());
        let status = if n == std::mem::size_of::<libc::c_int>() as isize { cmd_status } else { init_status };
        end_like(status)
    }
}

/// Exits the way a wait status says: with its code, or killed by its signal.
unsafe fn end_like(status: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Signal handler of the namespace's init: the signal goes to every other
/// process in the namespace (`kill(-1)` from init reaches all but itself).
extern "C" fn forward(sig: libc::c_int) {
    // SAFETY: kill is async-signal-safe.
    unsafe {
        libc::kill(-1, sig);
    }
}

/// pid 1 of the namespace: forks the command (which returns, to exec),
/// then forwards signals and reaps until the command exits.
unsafe fn init(status_write: libc::c_int) -> io::Result<()> {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let cmd = libc::fork();
        if cmd == -1 {
            libc::_exit(127);
        }
        if cmd == 0 {
            libc::close(status_write);
            return Ok(());
        }
        close_others(status_write);
        for fd in 0..3 {
            libc::close(fd);
        }
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, forward as *const () as libc::sighandler_t);
        }
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == cmd {
                libc::write(status_write, (&raw const status).cast(), std::mem::size_of::<libc::c_int>());
                // Exiting ends the namespace: the kernel kills the rest.
                libc::_exit(0);
            }
            if pid == -1 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
    }
}

/// A token unique to one attempt of one stage.
pub(crate) fn new_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sends `sig` to every process whose environment carries `token`; returns
/// how many. Reads `/proc/<pid>/environ` (readable for our own processes).
pub(crate) fn signal_token(token: &str, sig: libc::c_int) -> usize {
    let needle = format!("{TOKEN_VAR}={token}\0");
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let me = std::process::id();
    let mut n = 0;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        if env.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            // SAFETY: plain syscall; a pid that exited in between is ESRCH.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
            n += 1;
        }
    }
    n
}
