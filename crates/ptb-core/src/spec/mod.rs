//! The experiment spec: KDL → a typed, fully resolved [`Experiment`].
//!
//! Nothing downstream reads raw KDL: `parse` resolves includes, defaults,
//! relative paths and the matrix into this module's types once.

mod diag;
mod judging;
mod matrix;
mod parse;
mod sandbox;
mod units;

pub use diag::{SpecDiagnostic, SpecError};
pub use parse::{Disk, SpecSources, load, parse, parse_str};
pub use sandbox::{Capability, DEFAULT_PIDS, PidsLimit, RootFs, Sandbox, SandboxUser};
pub use units::{parse_duration, parse_memory};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A whole experiment, resolved.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    /// The spec file this came from.
    pub source: PathBuf,
    /// Its directory: relative paths in the spec are relative to it.
    pub dir: PathBuf,
    pub store: PathBuf,
    pub lockfile: PathBuf,
    pub models: Vec<Model>,
    pub benchmarks: Vec<Benchmark>,
    pub agents: Vec<Agent>,
    pub stages: Stages,
    /// The expanded matrix, in a stable order (model, benchmark, agent, seed
    /// as declared).
    pub cells: Vec<Cell>,
    /// People's verdicts that overrule the judge's (`review` nodes), by cell
    /// id order; never hashed.
    pub reviews: Vec<crate::judge::Review>,
}

/// A file or directory the experiment reads, optionally pinned.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRef {
    pub path: PathBuf,
    /// The pinned content hash (hex sha256; directories use ptb's canonical
    /// directory hash, printed by `ptb hash PATH`). When present, planning
    /// trusts it without reading the files and `apply` verifies it.
    pub sha256: Option<String>,
    /// How the user named it, for messages: a path or `repo@revision`.
    pub origin: String,
    /// Set for `repo=` + `revision=` models: ptb fetches them from the
    /// Hugging Face hub into the store. `path` is then empty until the
    /// session finds the content the lockfile pins in the store.
    pub hub: Option<HubRef>,
}

/// A model on the Hugging Face hub, as the spec names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// `org/name`.
    pub repo: String,
    /// A branch, a tag or a 40-hex commit, as written.
    pub revision: String,
    /// `file:line:col` of the node that declares it, for errors.
    pub declared_at: String,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub base: InputRef,
    /// The architecture the evaluator must use (`qwen3`, `smollm3`, `gemma3`,
    /// `llama`), taken from the spec and never from the checkpoint.
    pub arch: Option<crate::arch::Arch>,
    pub instruct: Option<InputRef>,
}

#[derive(Debug, Clone)]
pub struct Benchmark {
    pub name: String,
    pub data: InputRef,
    /// Weight in the headline average. Recorded in the lockfile for reports.
    pub weight: Option<f64>,
}

/// What runs a stage: a command on the host, or a command in an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runner {
    /// argv as written. A first element containing `/` names a script
    /// relative to the file that declared it ([`Runner::program`]); its
    /// content is hashed.
    pub command: Vec<String>,
    /// Directory of the file that declared `command`.
    pub command_dir: PathBuf,
    pub image: Option<String>,
    /// Environment passed to the stage; hashed.
    pub env: BTreeMap<String, String>,
    /// Names of host environment variables passed through; never hashed,
    /// logged or written anywhere.
    pub secrets: Vec<String>,
    /// The container's network (`none` unless the spec says `bridge`).
    pub network: Option<Network>,
    /// Whether a missing image may be pulled (by digest).
    pub pull: Option<PullPolicy>,
    /// Containers: relaxations of the hardened sandbox (`None`: the default).
    pub sandbox: Option<Sandbox>,
}

/// A container stage's network. Only these two: the host's network, or
/// another container's, would let a stage reach what the sandbox exists to
/// hide (the store, the evaluator, the judge), so the spec cannot name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// No network at all (the default).
    #[default]
    None,
    /// Docker's bridge: the internet, as agents in the paper had.
    Bridge,
}

impl Network {
    pub const NAMES: [&'static str; 2] = ["none", "bridge"];

    /// The name in specs, keys (`network`) and Docker's `NetworkMode`.
    pub fn name(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Bridge => "bridge",
        }
    }

    pub fn parse(s: &str) -> Option<Network> {
        [Network::None, Network::Bridge].into_iter().find(|n| n.name() == s)
    }
}

/// Whether a container stage's image may be pulled when it is not in the
/// local engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Never (the default): images are built or loaded by the user.
    #[default]
    Never,
    /// Pull a digest-pinned image when it is missing; never a tag.
    IfMissing,
}

impl PullPolicy {
    pub const NAMES: [&'static str; 2] = ["never", "if-missing"];

    pub fn name(self) -> &'static str {
        match self {
            PullPolicy::Never => "never",
            PullPolicy::IfMissing => "if-missing",
        }
    }

    pub fn parse(s: &str) -> Option<PullPolicy> {
        [PullPolicy::Never, PullPolicy::IfMissing].into_iter().find(|p| p.name() == s)
    }
}

impl Runner {
    /// The script a local command runs, if argv[0] is a path (not a PATH
    /// lookup and not a program inside an image).
    pub fn program(&self) -> Option<PathBuf> {
        let first = self.command.first()?;
        (self.image.is_none() && first.contains('/')).then(|| self.command_dir.join(first))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentKind {
    /// A CLI agent that post-trains the base model.
    Run(Runner),
    /// A reference row: no agent or judge stage, the eval stage evaluates
    /// the base or the instruct checkpoint as it is.
    Checkpoint(CheckpointSource),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointSource {
    Base,
    Instruct,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub kind: AgentKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageKind {
    Agent,
    Judge,
    Eval,
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [StageKind::Agent, StageKind::Judge, StageKind::Eval];
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Agent => "agent",
            StageKind::Judge => "judge",
            StageKind::Eval => "eval",
        }
    }
    pub fn from_name(s: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Local,
    Docker,
    Slurm,
}

impl ExecutorKind {
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Docker => "docker",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub gpus: u32,
    pub cpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// Free space the store's filesystem must have before the stage starts
    /// (`disk="200G"`). Not hashed: it decides whether a stage starts, not
    /// what it computes.
    pub disk_bytes: Option<u64>,
}

/// How one kind of stage runs, for every cell.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub kind: StageKind,
    pub executor: ExecutorKind,
    pub budget: Duration,
    /// Time between SIGTERM and SIGKILL at the deadline.
    pub grace: Duration,
    pub resources: Resources,
    /// The command for judge and eval; for the agent stage it comes from
    /// each agent, and this holds only stage-wide env.
    pub runner: Runner,
    /// Eval stage: the LLM that judges Arena-Hard and grades HealthBench.
    /// Judge stage: the LLM reviewer of `ptb judge` (optional).
    pub llm_judge: Option<LlmJudge>,
    /// Judge stage only: `policy` (None: the defaults).
    pub policy: Option<crate::judge::JudgePolicy>,
    /// Agent stage only: what its store entry keeps of `/work`.
    pub keep: Keep,
    /// `executor=slurm` only: where and how the job is queued. Not hashed:
    /// none of it changes what the stage computes (docs/hashing.md).
    pub slurm: SlurmOptions,
}

/// `keep weights-over="64M"` in `stage agent`: the agent's `/work` is kept
/// in its store entry (`workspace/`) so the judge can read its code and
/// data, except weight files (`*.safetensors`, `*.bin`, `*.pt`, `*.gguf`,
/// …, or content that is safetensors or GGUF) larger than this, which are
/// listed with their size and sha256 instead. Not hashed: what is kept does
/// not change what the agent did, and the judge reads no weights there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub weights_over: u64,
}

impl Default for Keep {
    fn default() -> Self {
        Keep { weights_over: 64 << 20 }
    }
}

impl StageSpec {
    /// The judge policy in force (the spec's, or the defaults).
    pub fn judge_policy(&self) -> crate::judge::JudgePolicy {
        self.policy.clone().unwrap_or_default()
    }
}

/// The `slurm` child of a stage: sbatch settings that choose where a job
/// runs and who pays for it, never what it computes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub constraint: Option<String>,
    /// Further sbatch options, verbatim (`"--exclusive"`, `"--reservation=x"`).
    pub extra: Vec<String>,
}

/// An OpenAI-compatible chat-completions endpoint (`llm-judge` in an eval
/// or judge stage). `url` and `model` are hashed into the eval stages of
/// judged benchmarks and into judge stages (with `votes`); the key's
/// variable name and the concurrency are not (they do not change what the
/// judge answers).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmJudge {
    /// Base URL; `/chat/completions` is appended.
    pub url: String,
    pub model: String,
    /// Host variable holding the API key, passed to the stage as a secret.
    pub api_key_env: String,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
    /// Judge stage: independent reviews asked, the majority per kind
    /// deciding (odd, 1 to 9; 1 in eval stages).
    pub votes: u32,
}

#[derive(Debug, Clone)]
pub struct Stages {
    pub agent: StageSpec,
    /// Optional: an experiment may have no judge.
    pub judge: Option<StageSpec>,
    pub eval: StageSpec,
}

impl Stages {
    pub fn get(&self, kind: StageKind) -> Option<&StageSpec> {
        match kind {
            StageKind::Agent => Some(&self.agent),
            StageKind::Judge => self.judge.as_ref(),
            StageKind::Eval => Some(&self.eval),
        }
    }
}

/// One model × benchmark × agent × seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub model: usize,
    pub benchmark: usize,
    pub agent: usize,
    pub seed: u64,
    /// `model/benchmark/agent/seed=N`.
    pub id: String,
}

impl Experiment {
    pub fn model(&self, cell: &Cell) -> &Model {
        &self.models[cell.model]
    }
    pub fn benchmark(&self, cell: &Cell) -> &Benchmark {
        &self.benchmarks[cell.benchmark]
    }
    pub fn agent(&self, cell: &Cell) -> &Agent {
        &self.agents[cell.agent]
    }
    /// Whether any stage runs in a container: Docker stages, and Slurm
    /// stages with an image (run through the node's engine; their image is
    /// pinned by digest on the controller like any other).
    pub fn uses_docker(&self) -> bool {
        self.stage_specs().any(|s| match s.executor {
            ExecutorKind::Docker => true,
            ExecutorKind::Local => false,
            ExecutorKind::Slurm => {
                s.runner.image.is_some()
                    || (s.kind == StageKind::Agent && self.agents.iter().any(|a| matches!(&a.kind, AgentKind::Run(r) if r.image.is_some())))
            }
        })
    }

    /// Whether any stage runs as a Slurm job.
    pub fn uses_slurm(&self) -> bool {
        self.stage_specs().any(|s| s.executor == ExecutorKind::Slurm)
    }

    /// The declared stages, in chain order.
    pub fn stage_specs(&self) -> impl Iterator<Item = &StageSpec> {
        [Some(&self.stages.agent), self.stages.judge.as_ref(), Some(&self.stages.eval)].into_iter().flatten()
    }

    /// The stages a cell runs, in order.
    pub fn cell_stages(&self, cell: &Cell) -> Vec<StageKind> {
        match self.agent(cell).kind {
            AgentKind::Checkpoint(_) => vec![StageKind::Eval],
            AgentKind::Run(_) => StageKind::ALL.into_iter().filter(|k| self.stages.get(*k).is_some()).collect(),
        }
    }
}

/// Cell ids look like `qwen3-1.7b/gsm8k/claude/seed=1`.
pub fn cell_id(model: &str, benchmark: &str, agent: &str, seed: u64) -> String {
    format!("{model}/{benchmark}/{agent}/seed={seed}")
}

/// Glob match on cell ids: `*` matches within one `/`-separated part (and
/// `seed=*`), `**` is not needed since ids have exactly four parts.
pub fn cell_matches(pattern: &str, id: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let c: Vec<&str> = id.split('/').collect();
    if p.len() > c.len() {
        return false;
    }
    // A shorter pattern matches a prefix: `qwen3-1.7b` or `qwen3-1.7b/gsm8k`.
    p.iter().zip(&c).all(|(p, c)| glob(p, c))
}

fn glob(p: &str, s: &str) -> bool {
    // Hand-written: single-`*` wildcards within one path part are all we
    // need, and a glob crate would bring path semantics we do not want.
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == s[si] || p[pi] == b'?') {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cell_patterns() {
        let id = "qwen3-1.7b/gsm8k/claude/seed=1";
        assert!(cell_matches("qwen3-1.7b/gsm8k/*/seed=1", id));
        assert!(cell_matches("*/*/*/seed=*", id));
        assert!(cell_matches("qwen3-1.7b", id));
        assert!(cell_matches("qwen3-*/gsm8k", id));
        assert!(!cell_matches("qwen3-1.7b/gsm8k/*/seed=2", id));
        assert!(!cell_matches("qwen3-4b", id));
        assert!(!cell_matches("qwen3-1.7b/gsm8k/claude/seed=1/x", id));
    }
}
