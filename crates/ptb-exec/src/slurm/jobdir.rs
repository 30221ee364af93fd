//! A stage's job directory, `<build dir>/slurm/` on the shared filesystem:
//! what the controller hands the node (`job.json`, `job.sh`) and what the
//! node hands back (`outcome.json`), plus the controller's own notes (`id`,
//! `attempts`). Everything here is written by ptb, never by the stage: the
//! stage's own files are in `out/` and `work/`, next to this directory.

use crate::{ExecError, JobInput, StageJob, StageOutcome, StageStatus};
use ptb_core::spec::{ExecutorKind, Network, PullPolicy, Resources, StageKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const JOB: &str = "job.json";
pub const SCRIPT: &str = "job.sh";
pub const OUTCOME: &str = "outcome.json";
pub const ID: &str = "id";
pub const ATTEMPTS: &str = "attempts";

/// The job directory of the stage whose build directory is `build`.
pub fn dir_of(build: &Path) -> PathBuf {
    build.join("slurm")
}

/// The build directory of a job (the parent of `out/`).
pub fn build_of(job: &StageJob) -> PathBuf {
    job.out_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| job.out_dir.clone())
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ExecError {
    move |source| ExecError::Io { context, source }
}

/// Write whole or not at all: the other side may read at any moment.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExecError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

/// [`StageJob`] on disk. Secrets travel by name only: their values reach
/// the node in sbatch's environment, never a file on the shared filesystem.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireJob {
    key: String,
    cell: String,
    stage: String,
    command: Vec<String>,
    image: Option<String>,
    network: String,
    env: BTreeMap<String, String>,
    secrets: Vec<String>,
    inputs: Vec<(String, PathBuf)>,
    out_dir: PathBuf,
    work_dir: PathBuf,
    log_path: PathBuf,
    budget_ms: u64,
    grace_ms: u64,
    gpus: u32,
    cpus: Option<u32>,
    memory_bytes: Option<u64>,
    pull: String,
    caches: Vec<(String, PathBuf)>,
    /// The container's hardening, as the spec names it: `user`
    /// (`ptb`/`image`/`root`/`UID:GID`), `root_fs`, `pids` (none: unlimited),
    /// `no_new_privileges`, `cap_add`.
    sandbox_user: String,
    sandbox_root_fs: String,
    sandbox_pids: Option<u32>,
    sandbox_no_new_privileges: bool,
    sandbox_cap_add: Vec<String>,
}

impl WireJob {
    pub fn from_job(job: &StageJob) -> WireJob {
        let pairs = |v: &[JobInput]| v.iter().map(|i| (i.name.clone(), i.path.clone())).collect();
        WireJob {
            key: job.key.clone(),
            cell: job.cell.clone(),
            stage: job.stage.name().into(),
            command: job.command.clone(),
            image: job.image.clone(),
            network: job.network.name().into(),
            env: job.env.clone(),
            secrets: job.secrets.keys().cloned().collect(),
            inputs: pairs(&job.inputs),
            out_dir: job.out_dir.clone(),
            work_dir: job.work_dir.clone(),
            log_path: job.log_path.clone(),
            budget_ms: job.budget.as_millis() as u64,
            grace_ms: job.grace.as_millis() as u64,
            gpus: job.resources.gpus,
            cpus: job.resources.cpus,
            memory_bytes: job.resources.memory_bytes,
            pull: job.pull.name().into(),
            caches: pairs(&job.caches),
            sandbox_user: job.sandbox.user.to_string(),
            sandbox_root_fs: job.sandbox.root_fs.name().into(),
            sandbox_pids: match job.sandbox.pids {
                ptb_core::spec::PidsLimit::Limit(n) => Some(n),
                ptb_core::spec::PidsLimit::Unlimited => None,
            },
            sandbox_no_new_privileges: job.sandbox.no_new_privileges,
            sandbox_cap_add: job.sandbox.cap_add.iter().map(|c| c.name().to_string()).collect(),
        }
    }

    /// The job to run on the node, its secrets read from `secret`, its
    /// executor the one that runs it there (Docker with an image, else a
    /// local process).
    pub fn into_job(self, secret: impl Fn(&str) -> Option<String>) -> Result<StageJob, ExecError> {
        let bad = |what: &str, v: &str| ExecError::Engine(format!("job.json: unknown {what} `{v}` (written by another ptb version?)"));
        let mut secrets = BTreeMap::new();
        for name in self.secrets {
            let v = secret(&name).ok_or_else(|| ExecError::SecretMissing(name.clone()))?;
            secrets.insert(name, v);
        }
        let inputs = |v: Vec<(String, PathBuf)>| v.into_iter().map(|(name, path)| JobInput { name, path }).collect();
        use ptb_core::spec::{Capability, PidsLimit, RootFs, Sandbox, SandboxUser};
        let sandbox = Sandbox {
            user: SandboxUser::parse(&self.sandbox_user).ok_or_else(|| bad("sandbox user", &self.sandbox_user))?,
            root_fs: RootFs::parse(&self.sandbox_root_fs).ok_or_else(|| bad("root-fs", &self.sandbox_root_fs))?,
            pids: self.sandbox_pids.map_or(PidsLimit::Unlimited, PidsLimit::Limit),
            no_new_privileges: self.sandbox_no_new_privileges,
            cap_add: self.sandbox_cap_add.iter().map(|c| Capability::parse(c).ok_or_else(|| bad("capability", c))).collect::<Result<_, _>>()?,
        };
        Ok(StageJob {
            sandbox,
            interrupt: Default::default(),
            stage: StageKind::from_name(&self.stage).ok_or_else(|| bad("stage", &self.stage))?,
            network: Network::parse(&self.network).ok_or_else(|| bad("network", &self.network))?,
            pull: PullPolicy::parse(&self.pull).ok_or_else(|| bad("pull policy", &self.pull))?,
            executor: if self.image.is_some() { ExecutorKind::Docker } else { ExecutorKind::Local },
            key: self.key,
            cell: self.cell,
            command: self.command,
            image: self.image,
            env: self.env,
            secrets,
            inputs: inputs(self.inputs),
            out_dir: self.out_dir,
            work_dir: self.work_dir,
            log_path: self.log_path,
            budget: Duration::from_millis(self.budget_ms),
            grace: Duration::from_millis(self.grace_ms),
            resources: Resources { gpus: self.gpus, cpus: self.cpus, memory_bytes: self.memory_bytes, disk_bytes: None },
            gpu_ids: Vec::new(),
            caches: inputs(self.caches),
        })
    }
}

/// How the stage ended on the node, or why it could not run there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireOutcome {
    pub status: StageStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_ms: u64,
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
    /// The node could not run the stage at all (no engine, a missing secret).
    pub error: Option<String>,
    pub node: String,
}

impl WireOutcome {
    pub fn from_outcome(o: &StageOutcome, node: String) -> WireOutcome {
        WireOutcome {
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal,
            wall_ms: o.wall.as_millis() as u64,
            oom_killed: o.oom_killed,
            peak_memory_bytes: o.peak_memory_bytes,
            error: None,
            node,
        }
    }

    pub fn outcome(&self) -> StageOutcome {
        StageOutcome {
            status: self.status,
            exit_code: self.exit_code,
            signal: self.signal,
            wall: Duration::from_millis(self.wall_ms),
            oom_killed: self.oom_killed,
            peak_memory_bytes: self.peak_memory_bytes,
        }
    }
}

/// The outcome the node wrote, if any. One that does not parse is no
/// outcome: the job directory is ptb's, but a stage could have scribbled
/// on the shared filesystem, and a broken file must never become a score.
pub fn read_outcome(dir: &Path) -> Option<WireOutcome> {
    serde_json::from_slice(&std::fs::read(dir.join(OUTCOME)).ok()?).ok()
}

pub fn read_id(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join(ID)).ok()?.trim().parse().ok()
}

pub fn read_attempts(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join(ATTEMPTS)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> StageJob {
        StageJob {
            sandbox: Default::default(),
            interrupt: Default::default(),
            key: "k".repeat(64),
            cell: "m/b/a/seed=1".into(),
            stage: StageKind::Eval,
            executor: ExecutorKind::Slurm,
            command: vec!["eval.sh".into(), "--strict".into()],
            image: Some("ptb-test/busybox:1".into()),
            network: Network::Bridge,
            env: BTreeMap::from([("PTB_SEED".to_string(), "1".to_string())]),
            secrets: BTreeMap::from([("API_KEY".to_string(), "sk-very-secret".to_string())]),
            inputs: vec![JobInput { name: "data".into(), path: "/d".into() }],
            out_dir: "/s/v1/.tmp/e/out".into(),
            work_dir: "/s/v1/.tmp/e/work".into(),
            log_path: "/s/v1/.tmp/e/log".into(),
            budget: Duration::from_millis(1500),
            grace: Duration::from_secs(2),
            resources: Resources { gpus: 1, cpus: Some(4), memory_bytes: Some(1 << 30), disk_bytes: None },
            gpu_ids: vec![],
            pull: PullPolicy::IfMissing,
            caches: vec![JobInput { name: "judge".into(), path: "/c".into() }],
        }
    }

    #[test]
    fn a_job_survives_the_trip_to_the_node_but_its_secrets_travel_by_name_only() {
        let text = serde_json::to_string(&WireJob::from_job(&job())).unwrap();
        assert!(!text.contains("sk-very-secret"), "{text}");
        let wire: WireJob = serde_json::from_str(&text).unwrap();
        let back = wire.into_job(|name| (name == "API_KEY").then(|| "sk-very-secret".to_string())).unwrap();
        let j = job();
        assert_eq!((back.key, back.cell, back.stage, back.command, back.image), (j.key, j.cell, j.stage, j.command, j.image));
        assert_eq!((back.network, back.pull, back.env, back.secrets), (j.network, j.pull, j.env, j.secrets));
        assert_eq!((back.inputs, back.caches, back.resources), (j.inputs, j.caches, j.resources));
        assert_eq!((back.budget, back.grace, back.out_dir, back.log_path), (j.budget, j.grace, j.out_dir, j.log_path));
        // On the node it runs in a container, through the node's engine.
        assert_eq!(back.executor, ExecutorKind::Docker);
    }

    #[test]
    fn a_secret_missing_on_the_node_is_said_by_name() {
        let wire: WireJob = serde_json::from_str(&serde_json::to_string(&WireJob::from_job(&job())).unwrap()).unwrap();
        assert!(matches!(wire.into_job(|_| None), Err(ExecError::SecretMissing(n)) if n == "API_KEY"));
    }

    #[test]
    fn an_outcome_that_does_not_parse_is_no_outcome() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OUTCOME), r#"{"status": "success""#).unwrap();
        assert_eq!(read_outcome(dir.path()), None);
        let o = WireOutcome {
            status: StageStatus::BudgetExhausted,
            exit_code: None,
            signal: Some(15),
            wall_ms: 2000,
            oom_killed: false,
            peak_memory_bytes: None,
            error: None,
            node: "n1".into(),
        };
        write_atomic(&dir.path().join(OUTCOME), &serde_json::to_vec(&o).unwrap()).unwrap();
        assert_eq!(read_outcome(dir.path()), Some(o));
    }
}
