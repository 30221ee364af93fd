//! The Docker executor: a stage runs in a container on the local Docker
//! engine, through the Engine API (bollard).
//!
//! The contract a stage sees (mounts, env, budget) is documented in
//! docs/agent-contract.md. The engine, not the stage, enforces what matters
//! for a fair benchmark: the time budget (killed from the host), read-only
//! inputs, no network unless asked, and only the GPUs the scheduler gave.

mod errors;
mod image;
mod reap;
mod run;
mod sandbox;

pub use image::{image_repo, pick_repo_digest};
pub use reap::OwnerToken;

use super::*;
use bollard::Docker;

/// Where Docker listens unless `DOCKER_HOST` says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The unprivileged user containers run as when ptb itself is root.
pub const NOBODY: u32 = 65534;

/// Request timeout for non-streaming calls; long-running calls (wait, logs,
/// stats) only wait this long for the response head.
const REQUEST_TIMEOUT_S: u64 = 120;

/// Runs stages as containers. Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    socket: String,
    /// Who must own what a stage leaves in its output and work directories
    /// (ptb's own user): a stage running as another user would otherwise
    /// leave files ptb can neither move into the store nor delete.
    output_owner: Option<(u32, u32)>,
    /// The uid:gid of `sandbox user="ptb"` (the default): ptb's own, or
    /// 65534:65534 (`nobody`) when ptb runs as root.
    ptb_user: (u32, u32),
    owner: OwnerToken,
}

impl DockerExecutor {
    /// Connects to the engine named by `DOCKER_HOST` (a `unix://` path) or
    /// the default socket, and checks that it answers.
    pub async fn connect() -> Result<Self, ExecError> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
            Ok(h) if !h.is_empty() => {
                return Err(ExecError::Engine(format!(
                    "DOCKER_HOST={h}: ptb talks to the Docker engine over a local unix socket only; unset DOCKER_HOST or set it to unix:///path/to/docker.sock"
                )));
            }
            _ => DEFAULT_SOCKET.to_string(),
        };
        Self::connect_socket(&socket).await
    }

    pub async fn connect_socket(socket: &str) -> Result<Self, ExecError> {
        let docker = Docker::connect_with_unix(socket, REQUEST_TIMEOUT_S, bollard::API_DEFAULT_VERSION)
            .map_err(|e| errors::engine(e, socket, "connecting to the Docker engine"))?;
        // The engine here may be older than bollard's API version; without
        // negotiating, every call fails with "client version is too new".
        let docker = docker.negotiate_version().await.map_err(|e| errors::engine(e, socket, "connecting to the Docker engine"))?;
        // SAFETY: plain getters without side effects.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let ptb_user = if uid == 0 { (NOBODY, NOBODY) } else { (uid, gid) };
        Ok(DockerExecutor { docker, socket: socket.to_string(), output_owner: Some((uid, gid)), ptb_user, owner: OwnerToken::current() })
    }

    /// Hands outputs to this uid:gid after each stage (default: ptb's own
    /// user; `None` leaves them as the container wrote them).
    pub fn with_output_owner(mut self, owner: Option<(u32, u32)>) -> Self {
        self.output_owner = owner;
        self
    }

    /// The bollard client, for callers that need more of the Engine API.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }
}

impl Executor for DockerExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Docker
    }

    fn run<'a>(&'a self, job: &'a StageJob, lines: &'a dyn LineSink) -> BoxFuture<'a, Result<StageOutcome, ExecError>> {
        Box::pin(run::run(self, job, lines))
    }
}
