//! Executors: how a stage's command actually runs.
//!
//! An [`Executor`] receives a fully resolved [`StageJob`] (no spec, no
//! lockfile) and returns a [`StageOutcome`]. The budget is enforced by the
//! executor from outside the stage (SIGTERM, then SIGKILL after the grace).
//! Implementations: [`local::LocalExecutor`] (a process on this host),
//! [`docker::DockerExecutor`] (a container on this host's engine) and
//! [`slurm::SlurmExecutor`] (a Slurm job that runs one of the other two on
//! its node).

pub mod apply;
pub mod contain;
pub mod docker;
pub mod gpus;
pub mod interrupt;
pub mod keep;
pub mod local;
pub mod log;
mod redact;
pub mod slurm;

pub use redact::Redactor;

use ptb_core::spec::{ExecutorKind, Network, PullPolicy, Resources, Sandbox, StageKind};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An input exposed to a stage, read-only: as `PTB_INPUT_<NAME>` (upper
/// case) for processes, mounted at `/inputs/<name>` in containers.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInput {
    pub name: String,
    pub path: PathBuf,
}

/// Everything an executor needs to run one stage of one cell.
#[derive(Debug, Clone)]
pub struct StageJob {
    pub key: String,
    pub cell: String,
    pub stage: StageKind,
    pub executor: ExecutorKind,
    /// argv; for local stages an absolute program path or a PATH lookup.
    pub command: Vec<String>,
    pub image: Option<String>,
    /// Containers only.
    pub network: Network,
    /// Containers only: user, capabilities, privileges, pids, root filesystem.
    pub sandbox: Sandbox,
    /// Declared environment (hashed) plus `PTB_*` variables.
    pub env: BTreeMap<String, String>,
    /// Secret name → value, read from the host at run time; never hashed,
    /// logged or written. Executors must pass them through the
    /// [`Redactor`] before any output reaches a log.
    pub secrets: BTreeMap<String, String>,
    pub inputs: Vec<JobInput>,
    /// Where the stage must leave its results (`PTB_OUT`).
    pub out_dir: PathBuf,
    /// Scratch space, removed afterwards.
    pub work_dir: PathBuf,
    /// Where stdout and stderr go (interleaved, redacted).
    pub log_path: PathBuf,
    pub budget: Duration,
    pub grace: Duration,
    pub resources: Resources,
    /// GPU device ids given to this stage by the scheduler.
    pub gpu_ids: Vec<u32>,
    /// Containers: whether a missing image may be pulled (by digest); never otherwise.
    pub pull: PullPolicy,
    /// Writable directories that outlive the stage (`PTB_CACHE_<NAME>`,
    /// mounted read-write at `/cache/<name>` in containers; executors create
    /// them). Not hashed, so
    /// only content-addressed caches belong here: the LLM judge's replies.
    pub caches: Vec<JobInput>,
    /// Fires when ptb is interrupted: the executor stops the stage then.
    pub interrupt: interrupt::Interrupt,
}

pub use ptb_core::status::StageStatus;

#[derive(Debug, Clone, PartialEq)]
pub struct StageOutcome {
    pub status: StageStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall: Duration,
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Engine(String),
    #[error("stage needs the {0} executor, which this build does not provide")]
    Unsupported(&'static str),
    #[error(transparent)]
    Slurm(#[from] slurm::client::SlurmError),
    /// ptb stopped following a stage that runs outside it (a Slurm job):
    /// nothing is recorded, and the next `ptb apply` adopts the job.
    #[error("stopped following {} (it may still run; the next `ptb apply` adopts it): {reason}", match job { Some(id) => format!("Slurm job {id}"), None => "a Slurm submission whose answer never came".into() })]
    Detached { job: Option<u64>, reason: String },
    #[error("secret `{0}` is not set in ptb's environment (export it before `ptb apply`)")]
    SecretMissing(String),
    #[error(transparent)]
    Task(#[from] ptb_core::task::TaskError),
    #[error(transparent)]
    Gpu(#[from] gpus::GpuError),
    /// An upstream stage's output cannot be handed on (a link, a special file).
    #[error(transparent)]
    Output(#[from] ptb_core::store::output::OutputError),
    /// The image is not in the local engine (and was not to be pulled).
    /// A variant of its own so planning can name the stage that needs it.
    #[error(
        "image `{image}` is not in the local Docker engine: build it (`docker build -t {image} DIR`), load it (`docker load -i FILE.tar`), or pin it by digest and set `pull \"if-missing\"` in the spec"
    )]
    ImageMissing { image: String },
}

/// Sink for a running stage's output lines (for progress displays).
pub trait LineSink: Send + Sync {
    fn line(&self, line: &str);
}

impl<F: Fn(&str) + Send + Sync> LineSink for F {
    fn line(&self, line: &str) {
        self(line)
    }
}

pub trait Executor: Send + Sync {
    fn kind(&self) -> ExecutorKind;
    /// Run the job to completion (or to its deadline). Errors mean the stage
    /// could not be run at all; a command that ran and failed is `Ok` with
    /// [`StageStatus::Failed`].
    fn run<'a>(&'a self, job: &'a StageJob, lines: &'a dyn LineSink) -> BoxFuture<'a, Result<StageOutcome, ExecError>>;

    /// For executors whose stages outlive ptb (Slurm): whether the build
    /// directory `build` that a killed ptb left for stage `key` holds a job
    /// to follow (queued, running, or finished but not yet committed).
    /// Apply then resumes that build instead of starting the stage again.
    fn adopts<'a>(&'a self, _build: &'a std::path::Path, _key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }
}

pub use ptb_core::resolve::{ImageLookupError, ImageResolver, ResolvedImage};

pub use ptb_core::contract::{cache_env_name, input_env_name};

/// The environment every stage gets, besides its inputs and declared env.
pub fn base_env(job: &StageJob, out: &str, deadline_unix: u64) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PTB_OUT".into(), out.to_string());
    env.insert("PTB_CELL".into(), job.cell.clone());
    env.insert("PTB_STAGE".into(), job.stage.name().into());
    env.insert("PTB_BUDGET_S".into(), job.budget.as_secs().to_string());
    env.insert("PTB_DEADLINE".into(), deadline_unix.to_string());
    env
}
