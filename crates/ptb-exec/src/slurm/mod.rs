//! The Slurm executor: each stage is a Slurm job, and `ptb apply` on the
//! login node is its controller.
//!
//! The controller writes the stage's job directory into the store's build
//! area (a shared filesystem; [`jobdir`]), submits it with sbatch
//! ([`script`]), and follows every job with one `squeue` call per poll
//! interval ([`queue`]). On the node the job runs `ptb stage-run DIR`
//! ([`node`]), which runs the stage with the local or Docker executor, so
//! the stage contract and the budget (SIGTERM at the deadline, SIGKILL
//! after the grace) are the same code as on one machine, and writes
//! `outcome.json`. The controller then hands the outcome to apply, which
//! commits under the per-key lock exactly as for local stages.
//!
//! A build directory with a job in it is marked detached, so it outlives
//! its controller: a restarted `ptb apply` adopts the job (by the id it
//! wrote, or by the job name `ptb-<key>` if it died right after sbatch)
//! instead of submitting the stage again.

pub mod client;
pub mod jobdir;
pub mod node;
pub mod queue;
pub mod script;

use crate::{BoxFuture, ExecError, Executor, LineSink, StageJob, StageOutcome, StageStatus};
use client::{Client, SlurmError};
use ptb_core::spec::{ExecutorKind, SlurmOptions, StageKind};
use queue::{JobInfo, JobState};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Listings a job must be missing from before ptb asks accounting: one
/// miss may be a listing taken as the job was being purged.
const MISSES_BEFORE_SACCT: u32 = 3;
/// Further polls ptb waits for accounting to record a job that squeue has
/// forgotten before it judges the job by its outcome file alone.
const ACCOUNTING_LAG_POLLS: u32 = 10;
/// After sacct failed, polls before ptb asks it again.
const SACCT_RETRY_POLLS: u32 = 60;

/// How the controller behaves; the defaults suit a real cluster.
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// At most one `squeue` per interval, for all jobs together.
    pub poll: Duration,
    /// NODE_FAIL, PREEMPTED and BOOT_FAIL are submitted again this many times.
    pub max_requeues: u32,
    /// How long slurmctld may be unreachable before ptb stops following a
    /// job (which keeps running; the next apply adopts it).
    pub unreachable_after: Duration,
    /// The `ptb` the nodes run: this binary, which must be at the same path
    /// on every node (a shared filesystem).
    pub ptb: PathBuf,
}

impl SlurmConfig {
    pub fn new(ptb: PathBuf) -> Self {
        SlurmConfig { poll: Duration::from_secs(5), max_requeues: 3, unreachable_after: Duration::from_secs(600), ptb }
    }
}

/// What accounting says of jobs squeue no longer lists: one `sacct` per
/// poll interval for all of them, however many stages ask.
#[derive(Default)]
struct Accounting {
    taken: Option<Instant>,
    /// Jobs some stage waits to hear of.
    wanted: std::collections::BTreeSet<u64>,
    states: HashMap<u64, JobState>,
    /// Set when sacct failed (no slurmdbd, or it is down): until then
    /// ptb does not ask again, and jobs are judged by their outcome files.
    unavailable_until: Option<Instant>,
}

/// A forgotten job, as accounting knows it.
enum Accounted {
    Ended(JobState),
    /// Accounting has not recorded it yet (slurmctld sends records to
    /// slurmdbd a moment after a job ends).
    NotYet,
    /// The cluster has no accounting, or it did not answer lately.
    Unavailable,
}

#[derive(Default)]
struct Snapshot {
    taken: Option<Instant>,
    jobs: Arc<HashMap<u64, JobInfo>>,
    error: Option<SlurmError>,
}

pub struct SlurmExecutor {
    client: Client,
    cfg: SlurmConfig,
    /// The spec's `slurm` settings per stage kind.
    options: BTreeMap<StageKind, SlurmOptions>,
    snapshot: tokio::sync::Mutex<Snapshot>,
    accounting: tokio::sync::Mutex<Accounting>,
    /// Jobs this controller follows now, with their job directories (for
    /// Ctrl-C's scancel).
    live: std::sync::Mutex<BTreeMap<u64, PathBuf>>,
}

impl SlurmExecutor {
    /// Checks that slurmctld answers and that the partitions exist.
    pub async fn connect(cfg: SlurmConfig, options: BTreeMap<StageKind, SlurmOptions>) -> Result<Self, SlurmError> {
        let client = Client;
        client.preflight(options.values().filter_map(|o| o.partition.as_deref())).await?;
        if !client::executable(&cfg.ptb) {
            return Err(SlurmError::Missing { program: "ptb (the binary the nodes run)" });
        }
        Ok(SlurmExecutor { client, cfg, options, snapshot: Default::default(), accounting: Default::default(), live: Default::default() })
    }

    /// The jobs this controller is following.
    pub fn live_jobs(&self) -> Vec<u64> {
        self.live.lock().unwrap().keys().copied().collect()
    }

    /// `scancel` every job this controller follows; the ids. Their build
    /// directories stop being detached, so the next apply starts those
    /// stages afresh instead of recording a cancelled job as a failure.
    pub async fn cancel_all(&self) -> Result<Vec<u64>, SlurmError> {
        let live: Vec<(u64, PathBuf)> = self.live.lock().unwrap().iter().map(|(k, v)| (*k, v.clone())).collect();
        let ids: Vec<u64> = live.iter().map(|(id, _)| *id).collect();
        self.client.scancel(&ids).await?;
        for (_, dir) in &live {
            let _ = std::fs::remove_file(dir.join(jobdir::ID));
            if let Some(build) = dir.parent() {
                let _ = std::fs::remove_file(build.join(ptb_core::store::DETACHED));
            }
        }
        Ok(ids)
    }

    /// Slurm's view, at most one `squeue` per poll interval however many
    /// stages ask.
    async fn snapshot(&self) -> (Instant, Result<Arc<HashMap<u64, JobInfo>>, SlurmError>) {
        let mut s = self.snapshot.lock().await;
        if s.taken.is_none_or(|t| t.elapsed() >= self.cfg.poll) {
            match self.client.squeue().await {
                Ok(jobs) => {
                    s.jobs = Arc::new(jobs.into_iter().map(|j| (j.id, j)).collect());
                    s.error = None;
                }
                Err(e) => s.error = Some(e),
            }
            s.taken = Some(Instant::now());
        }
        let taken = s.taken.expect("just set");
        (
            taken,
            match &s.error {
                Some(e) => Err(e.clone()),
                None => Ok(s.jobs.clone()),
            },
        )
    }

    /// Job `id`, which squeue no longer lists, as accounting knows it: at
    /// most one `sacct` per poll interval, for every job asked about.
    async fn accounted(&self, id: u64) -> Accounted {
        let mut a = self.accounting.lock().await;
        let unavailable = |a: &Accounting| a.unavailable_until.is_some_and(|t| Instant::now() < t);
        if !a.states.contains_key(&id) && !unavailable(&a) {
            a.wanted.insert(id);
            if a.taken.is_none_or(|t| t.elapsed() >= self.cfg.poll) {
                let ids: Vec<u64> = a.wanted.iter().copied().collect();
                match self.client.sacct_states(&ids).await {
                    Some(found) => {
                        a.unavailable_until = None;
                        for (id, state) in found.into_iter().filter(|(_, s)| s.is_final()) {
                            a.wanted.remove(&id);
                            a.states.insert(id, state);
                        }
                    }
                    // A cluster without slurmdbd does not grow one; one that
                    // lost it may get it back: ask again, but rarely.
                    None => a.unavailable_until = Some(Instant::now() + self.cfg.poll * SACCT_RETRY_POLLS),
                }
                a.taken = Some(Instant::now());
            }
        }
        match a.states.remove(&id) {
            Some(state) => Accounted::Ended(state),
            None if unavailable(&a) => {
                a.wanted.remove(&id);
                Accounted::Unavailable
            }
            None => Accounted::NotYet,
        }
    }

    /// Wait for job `id` to end; its final state, or `None` when Slurm no
    /// longer knows the job and accounting (if any) does not either.
    async fn wait_final(&self, id: u64, since: Instant) -> Result<Option<JobState>, ExecError> {
        let mut misses = 0;
        let mut down_since: Option<Instant> = None;
        loop {
            let (taken, snap) = self.snapshot().await;
            match snap {
                Err(e) => {
                    let first = *down_since.get_or_insert_with(Instant::now);
                    if first.elapsed() >= self.cfg.unreachable_after {
                        return Err(ExecError::Detached { job: Some(id), reason: e.to_string() });
                    }
                }
                Ok(jobs) => {
                    down_since = None;
                    match jobs.get(&id) {
                        Some(info) if info.state.is_final() => return Ok(Some(info.state.clone())),
                        Some(_) => misses = 0,
                        // Only a listing taken after the submission can miss it.
                        None if taken > since => {
                            misses += 1;
                            if misses >= MISSES_BEFORE_SACCT {
                                match self.accounted(id).await {
                                    Accounted::Ended(state) => return Ok(Some(state)),
                                    Accounted::Unavailable => return Ok(None),
                                    Accounted::NotYet if misses >= MISSES_BEFORE_SACCT + ACCOUNTING_LAG_POLLS => {
                                        self.accounting.lock().await.wanted.remove(&id);
                                        return Ok(None);
                                    }
                                    Accounted::NotYet => {}
                                }
                            }
                        }
                        None => {}
                    }
                }
            }
            tokio::time::sleep(self.cfg.poll).await;
        }
    }

    /// Write the job directory and submit; the job id.
    async fn submit(&self, job: &StageJob, dir: &Path) -> Result<u64, ExecError> {
        let io = |what: &Path| {
            let context = format!("writing {}", what.display());
            move |source| ExecError::Io { context, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let wire = serde_json::to_vec_pretty(&jobdir::WireJob::from_job(job)).expect("a job serialises");
        jobdir::write_atomic(&dir.join(jobdir::JOB), &wire)?;
        let opts = self.options.get(&job.stage).cloned().unwrap_or_default();
        let sub = script::render(job, &opts, dir, &self.cfg.ptb);
        let script_path = dir.join(jobdir::SCRIPT);
        jobdir::write_atomic(&script_path, sub.script.as_bytes())?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755)).map_err(io(&script_path))?;
        }
        // Before sbatch: a controller killed between sbatch and writing the
        // id leaves a detached directory, and the next one finds the job by name.
        let build = jobdir::build_of(job);
        jobdir::write_atomic(&build.join(ptb_core::store::DETACHED), b"slurm\n")?;
        let _ = std::fs::remove_file(dir.join(jobdir::OUTCOME));
        let id = self.client.sbatch(&sub.args, &job.secrets).await.map_err(|e| match e {
            SlurmError::Unreachable { .. } => ExecError::Detached { job: None, reason: e.to_string() },
            e => ExecError::Slurm(e),
        })?;
        jobdir::write_atomic(&dir.join(jobdir::ID), format!("{id}\n").as_bytes())?;
        Ok(id)
    }

    async fn run_job(&self, job: &StageJob, lines: &dyn LineSink) -> Result<StageOutcome, ExecError> {
        let mut notes = Vec::new();
        let result = self.follow(job, lines, &mut notes).await;
        // At the end: a requeued attempt starts its log afresh.
        note(job, &notes);
        result
    }

    async fn follow(&self, job: &StageJob, lines: &dyn LineSink, notes: &mut Vec<String>) -> Result<StageOutcome, ExecError> {
        let dir = jobdir::dir_of(&jobdir::build_of(job));
        let mut since = Instant::now();
        let mut id = match jobdir::read_id(&dir) {
            Some(id) => {
                lines.line(&format!("ptb: following Slurm job {id}, submitted by an earlier ptb apply"));
                id
            }
            None => self.submit(job, &dir).await?,
        };
        loop {
            self.live.lock().unwrap().insert(id, dir.clone());
            let state = self.wait_final(id, since).await;
            self.live.lock().unwrap().remove(&id);
            let state = state?;
            let outcome = read_outcome_settled(&dir, state.as_ref()).await;
            let named = state.as_ref().map_or("unknown (Slurm no longer lists it)", JobState::name).to_string();
            // A node that failed (or a preemption) may have killed the stage
            // while ptb stage-run lived on long enough to write that it
            // failed: that says nothing about the stage, so it runs again.
            // A stage that finished before the node failed keeps its result.
            let attempts = jobdir::read_attempts(&dir);
            let retry = state.as_ref().is_some_and(JobState::is_retryable)
                && attempts < self.cfg.max_requeues
                && outcome.as_ref().is_none_or(|o| o.status != StageStatus::Success);
            if retry {
                notes.push(format!("Slurm job {id} ended {named}; submitting the stage again ({} of {})", attempts + 1, self.cfg.max_requeues));
                jobdir::write_atomic(&dir.join(jobdir::ATTEMPTS), format!("{}\n", attempts + 1).as_bytes())?;
                since = Instant::now();
                id = self.submit(job, &dir).await?;
                continue;
            }
            if let Some(o) = outcome {
                if let Some(e) = &o.error {
                    return Err(ExecError::Engine(format!("on node {}: {e}", o.node)));
                }
                if state != Some(JobState::Completed) {
                    notes.push(format!("Slurm job {id} on {} ended {named}", o.node));
                }
                return Ok(o.outcome());
            }
            notes.push(format!("Slurm job {id} ended {named} without an outcome from ptb stage-run; see {}", dir.join("job.out").display()));
            return Ok(StageOutcome {
                status: StageStatus::Failed,
                exit_code: None,
                signal: None,
                wall: Duration::ZERO,
                oom_killed: state == Some(JobState::OutOfMemory),
                peak_memory_bytes: None,
            });
        }
    }
}

/// A job Slurm calls finished may have written its outcome a moment ago,
/// and a shared filesystem may show it a moment later.
async fn read_outcome_settled(dir: &Path, state: Option<&JobState>) -> Option<jobdir::WireOutcome> {
    let tries = if state == Some(&JobState::Completed) { 10 } else { 1 };
    for i in 0..tries {
        if let Some(o) = jobdir::read_outcome(dir) {
            return Some(o);
        }
        if i + 1 < tries {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    None
}

/// ptb's lines at the end of the stage's log.
fn note(job: &StageJob, lines: &[String]) {
    use std::io::Write;
    if lines.is_empty() {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&job.log_path) {
        for line in lines {
            let _ = writeln!(f, "ptb: {line}");
        }
    }
}

impl Executor for SlurmExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Slurm
    }

    fn run<'a>(&'a self, job: &'a StageJob, lines: &'a dyn LineSink) -> BoxFuture<'a, Result<StageOutcome, ExecError>> {
        Box::pin(self.run_job(job, lines))
    }

    fn adopts<'a>(&'a self, build: &'a Path, key: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            if !build.join(ptb_core::store::DETACHED).exists() {
                return false;
            }
            let dir = jobdir::dir_of(build);
            if jobdir::read_id(&dir).is_some() {
                return true;
            }
            // Killed between sbatch and writing the id: find the job by name.
            let name = script::job_name(key);
            let Ok(jobs) = self.client.squeue().await else { return false };
            // Only a job still queued or running: a finished one of that name
            // may be an older attempt, whose outcome this directory lacks.
            let found = jobs.iter().filter(|j| j.name == name && !j.state.is_final()).max_by_key(|j| j.id);
            match found {
                Some(j) => jobdir::write_atomic(&dir.join(jobdir::ID), format!("{}\n", j.id).as_bytes()).is_ok(),
                None => false,
            }
        })
    }
}
