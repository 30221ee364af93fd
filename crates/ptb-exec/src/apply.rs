//! `ptb apply`: plan, run what the plan says in parallel, and record every
//! finished stage in the lockfile as soon as it finishes.

mod job;
mod record;

use crate::{ExecError, Executor, LineSink, StageStatus};
use ptb_core::hash::StageKey;
use ptb_core::plan::{Action, PlanOptions, Planner, StagePlan};
use ptb_core::progress::Reporter;
use ptb_core::session::{Session, refresh_header};
use ptb_core::spec::{ExecutorKind, StageKind};
use ptb_core::status::StageEnd;
use ptb_core::store::{Meta, Store, StoreError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::Semaphore;

pub use record::LockWriter;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub plan: PlanOptions,
    pub jobs: usize,
    /// Fail instead of running anything or changing the lockfile.
    pub locked: bool,
    /// Fires on Ctrl-C: nothing new starts, running stages are stopped and
    /// recorded `interrupted`.
    pub interrupt: crate::interrupt::Interrupt,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[error("--locked: the lockfile {path} is not up to date ({count} stage(s) would change)\n{details}")]
    #[diagnostic(help("run `ptb apply` without --locked to update it, or `ptb why SPEC CELL` for details"))]
    Locked { path: PathBuf, count: usize, details: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] ptb_core::lock::LockError),
}

/// A stage that ran and failed in this apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStage {
    pub cell: String,
    pub stage: StageKind,
    pub status: StageStatus,
    /// The log of the attempt, under the store's `failed/`.
    pub log: String,
}

/// What happened, for the closing summary.
#[derive(Debug, Default, Clone)]
pub struct ApplySummary {
    pub ran: usize,
    pub succeeded: usize,
    pub cached: usize,
    pub blocked: usize,
    /// Stages that ran and failed, by cell and stage.
    pub failed: Vec<FailedStage>,
    pub skipped: usize,
    /// Stages ptb stopped following (Slurm jobs that may still run).
    pub detached: Vec<DetachedStage>,
    pub lockfile_written: bool,
    /// The apply was interrupted: stages stopped (listed in `failed` as
    /// `interrupted`) and stages never started.
    pub interrupted: bool,
}

/// A stage whose job ptb stopped following; the next apply adopts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedStage {
    pub cell: String,
    pub stage: StageKind,
    pub reason: String,
}

/// The executors available to this run.
#[derive(Clone)]
pub struct Executors {
    pub local: Arc<dyn Executor>,
    pub docker: Option<Arc<dyn Executor>>,
    pub slurm: Option<Arc<dyn Executor>>,
    /// The host's GPUs, handed out so concurrent stages never share one.
    pub gpus: Arc<crate::gpus::GpuPool>,
}

impl Executors {
    pub fn local_only() -> Self {
        Executors {
            local: Arc::new(crate::local::LocalExecutor::default()),
            docker: None,
            slurm: None,
            gpus: Arc::new(crate::gpus::GpuPool::new([]).expect("an empty pool is valid")),
        }
    }
    fn get(&self, kind: ExecutorKind) -> Result<Arc<dyn Executor>, ExecError> {
        match kind {
            ExecutorKind::Local => Ok(self.local.clone()),
            ExecutorKind::Docker => self.docker.clone().ok_or(ExecError::Unsupported("docker")),
            ExecutorKind::Slurm => self.slurm.clone().ok_or(ExecError::Unsupported("slurm")),
        }
    }
}

/// What a first pass over the plan found, keeping nothing per stage: a
/// plan of 10,080 cells held ~1 KiB a cell for the whole apply (and every
/// fork of a local stage copied its page tables), so apply plans each cell
/// again when its turn comes ([`Planner::cell`] is pure: the same stages).
#[derive(Debug, Default)]
struct Survey {
    /// Cells with a stage to run, in plan order.
    to_run: Vec<u32>,
    stages_to_run: usize,
    cached: usize,
    blocked: usize,
    /// `--locked`: how many stages would change, and the first few, said.
    changing: usize,
    changes: Vec<String>,
}

/// Store hits the lockfile does not know yet are recorded in batches of
/// this many (through the journal), so a store of 30,000 entries behind a
/// deleted lockfile is not read into memory at once.
const HIT_BATCH: usize = 256;

/// The first pass: counts, the cells to run, and (unless `--locked`, which
/// must change nothing) the store hits recorded.
fn survey(session: &Session, planner: &Planner, writer: Option<&LockWriter>) -> Result<Survey, ApplyError> {
    let mut sv = Survey::default();
    let mut hits = Vec::new();
    for ci in planner.selected() {
        let stages = planner.cell(ci);
        for s in &stages {
            match s.action {
                Action::Run => sv.stages_to_run += 1,
                Action::Cached => sv.cached += 1,
                Action::Blocked => sv.blocked += 1,
            }
            if let Some(r) = s.reasons.first() {
                sv.changing += 1;
                if sv.changes.len() < 20 {
                    sv.changes.push(format!("  {} {}: {r}", s.cell, s.stage.name()));
                }
            }
            // Reuse from the store that the lockfile does not know yet.
            if let Some(w) = writer
                && s.action == Action::Cached
                && !s.reasons.is_empty()
                && let Some(name) = session.index.entry_name(&s.key)
            {
                let meta = session.store.read_meta(name)?;
                hits.push((s.cell_index, s.stage, record::from_meta(&meta, session.store.relative(name))));
                if hits.len() >= HIT_BATCH {
                    w.append(&session.exp, &hits)?;
                    hits.clear();
                }
            }
        }
        if stages.iter().any(|s| s.action == Action::Run) {
            sv.to_run.push(u32::try_from(ci).expect("fewer than 2^32 cells"));
        }
    }
    if let Some(w) = writer {
        w.append(&session.exp, &hits)?;
    }
    Ok(sv)
}

/// `--locked`: the lockfile must already say everything this plan would.
fn check_locked(session: &Session, sv: &Survey) -> Result<(), ApplyError> {
    let mut header = session.lock.clone();
    refresh_header(&mut header, &session.exp, &session.pins);
    let mut details = sv.changes.clone();
    for (k, v) in &header.pins {
        if session.lock.pins.get(k) != Some(v) {
            details.push(format!("  pin {k}: {} → {v}", session.lock.pins.get(k).map(String::as_str).unwrap_or("(none)")));
        }
    }
    if session.journal.records > 0 {
        details.push(format!(
            "  {} record(s) of an interrupted apply are in {} (any command but `apply --locked` folds them in)",
            session.journal.records,
            ptb_core::lock::journal_path(&session.lock_path).display()
        ));
    }
    // Whatever else changes in the file (its header, the records of cells
    // the spec no longer has) is a change too: --locked compares the very
    // bytes apply would write with those on disk.
    let would = ptb_core::lock::render(&header);
    let on_disk = std::fs::read(&session.lock_path).ok();
    if on_disk.as_deref() != Some(would.as_bytes()) {
        let removed = session.lock.cells.len().saturating_sub(header.cells.len());
        details.push(match (&on_disk, removed) {
            (None, _) => "  the lockfile does not exist yet".to_string(),
            (Some(_), 0) => "  the lockfile's header (experiment, ptb version, models, benchmarks, agents or pins) would be rewritten".to_string(),
            (Some(_), n) => format!("  {n} cell(s) no longer in the spec would be dropped from the lockfile"),
        });
    }
    if sv.changing == 0 && session.journal.records == 0 && on_disk.as_deref() == Some(would.as_bytes()) {
        return Ok(());
    }
    Err(ApplyError::Locked { path: session.lock_path.clone(), count: sv.changing, details: details.join("\n") })
}

pub async fn apply(session: &Session, opts: &ApplyOptions, executors: &Executors, reporter: Arc<dyn Reporter>) -> Result<ApplySummary, ApplyError> {
    let planner = Planner::new(&session.exp, &session.pins, &session.lock, &session.index, &opts.plan);
    let writer = Arc::new(LockWriter::new(&session.store, &session.lock_path, &session.pins));
    // Under --locked nothing may change: the survey records nothing, and
    // anything it would have recorded is a change that fails the check.
    let sv = survey(session, &planner, (!opts.locked).then_some(writer.as_ref()))?;
    if opts.locked {
        check_locked(session, &sv)?;
    }
    session.store.clean_stale()?;
    let mut summary = ApplySummary::default();
    // The first write: the store hits, and a journal left by a killed apply.
    summary.lockfile_written |= writer.update(&session.exp, &[])?;
    summary.cached = sv.cached;
    summary.blocked = sv.blocked;

    let result = run_all(session, &planner, sv, opts, executors, &writer, &reporter).await;
    // Whatever happened, fold this run's journal into the lockfile.
    let compacted = writer.update(&session.exp, &[]);
    let ran = result?;
    summary.lockfile_written |= compacted?;
    summary.ran += ran.ran;
    summary.succeeded += ran.succeeded;
    summary.cached += ran.cached;
    summary.skipped += ran.skipped;
    summary.failed = ran.failed;
    summary.detached = ran.detached;
    summary.failed.sort_by(|a, b| (&a.cell, a.stage).cmp(&(&b.cell, b.stage)));
    summary.interrupted = opts.interrupt.is_set();
    Ok(summary)
}

async fn run_all(
    session: &Session,
    planner: &Planner<'_>,
    sv: Survey,
    opts: &ApplyOptions,
    executors: &Executors,
    writer: &Arc<LockWriter>,
    reporter: &Arc<dyn Reporter>,
) -> Result<ApplySummary, ApplyError> {
    let mut summary = ApplySummary::default();
    reporter.apply_started(sv.stages_to_run);
    let ctx = Arc::new(RunCtx {
        session_store: session.store.clone(),
        // The session's experiment, shared by every cell's task.
        exp: session.exp.clone(),
        pins: Arc::new(session.pins.clone()),
        writer: writer.clone(),
        executors: executors.clone(),
        reporter: reporter.clone(),
        sem: Arc::new(Semaphore::new(opts.jobs.max(1))),
        interrupt: opts.interrupt.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    // A finished task keeps its allocation (the size of its future) until
    // it is joined: joined as cells finish, not all at the end, so that
    // memory does not grow with the cells of the apply.
    let absorb = |summary: &mut ApplySummary, r: Result<Result<ApplySummary, ApplyError>, tokio::task::JoinError>| -> Result<(), ApplyError> {
        let cell = r.unwrap_or_else(|e| panic!("stage task panicked: {e}"))?;
        summary.ran += cell.ran;
        summary.succeeded += cell.succeeded;
        summary.cached += cell.cached;
        summary.skipped += cell.skipped;
        summary.failed.extend(cell.failed);
        summary.detached.extend(cell.detached);
        summary.lockfile_written |= cell.lockfile_written;
        Ok(())
    };
    // An error stops the apply once every cell has been started, as it did
    // when all were joined at the end.
    let mut first_err = None;
    for ci in sv.to_run {
        // A cell holds one job slot for its whole chain, and cells take
        // slots in plan order: each finishes (agent → judge → eval) before
        // a later one starts, so complete results arrive from the start of
        // an apply instead of after every agent has run.
        let permit = tokio::select! {
            p = ctx.sem.clone().acquire_owned() => p.expect("semaphore never closed"),
            () = ctx.interrupt.wait() => break,
        };
        while let Some(r) = tasks.try_join_next() {
            if let Err(e) = absorb(&mut summary, r) {
                first_err.get_or_insert(e);
            }
        }
        // The cell planned again, now that it runs (see `Survey`).
        let ci = ci as usize;
        let planned = planner.cell(ci);
        // Upstream outputs already in the store (cached upstream stages).
        let outs: BTreeMap<StageKind, PathBuf> = planned
            .iter()
            .filter(|s| s.action == Action::Cached)
            .filter_map(|s| Some((s.stage, session.store.entry_dir(session.index.entry_name(&s.key)?).join("out"))))
            .collect();
        let stages: Vec<StagePlan> = planned.into_iter().filter(|s| s.action == Action::Run).collect();
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            run_cell(&ctx, ci, stages, outs).await
        });
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    while let Some(r) = tasks.join_next().await {
        absorb(&mut summary, r)?;
    }
    Ok(summary)
}

struct RunCtx {
    session_store: Store,
    exp: Arc<ptb_core::spec::Experiment>,
    pins: Arc<ptb_core::resolve::Pins>,
    writer: Arc<LockWriter>,
    executors: Executors,
    reporter: Arc<dyn Reporter>,
    sem: Arc<Semaphore>,
    interrupt: crate::interrupt::Interrupt,
}

/// Run one cell's stages in chain order. A stage whose upstream did not
/// produce a result is skipped.
async fn run_cell(ctx: &RunCtx, ci: usize, stages: Vec<StagePlan>, mut outs: BTreeMap<StageKind, PathBuf>) -> Result<ApplySummary, ApplyError> {
    let exp = &*ctx.exp;
    let cell = &exp.cells[ci];
    let mut sum = ApplySummary::default();
    // What each stage reads, for its record: recomputed here, one cell at
    // a time, rather than kept in the plan for every stage of the apply.
    let mut inputs = ptb_core::plan::cell_stages(exp, &ctx.pins, cell);
    for sp in stages {
        if ctx.interrupt.is_set() {
            break;
        }
        if let Some(up) = sp.upstream
            && !outs.contains_key(&up)
        {
            ctx.reporter.stage_skipped(&sp.cell, sp.stage.name(), &format!("upstream stage `{}` has no result", up.name()));
            sum.skipped += 1;
            continue;
        }
        let si = inputs.iter().position(|si| si.kind == sp.stage).map(|i| inputs.swap_remove(i));
        // The plan was made from the same experiment and pins.
        debug_assert!(si.as_ref().is_some_and(|si| si.key == sp.key), "{} {}: planned key differs", sp.cell, sp.stage.name());
        let inputs = si.map(|si| si.inputs.0).unwrap_or_default();
        let result = run_stage(ctx, exp, cell, &sp, inputs, &outs).await?;
        match result {
            StageResult::Done { out, cached } => {
                outs.insert(sp.stage, out);
                sum.lockfile_written = true;
                if cached {
                    sum.cached += 1;
                } else {
                    sum.ran += 1;
                    sum.succeeded += 1;
                }
            }
            StageResult::Failed { status, log } => {
                sum.ran += 1;
                sum.lockfile_written = true;
                sum.failed.push(FailedStage { cell: sp.cell.clone(), stage: sp.stage, status, log });
            }
            StageResult::Detached { reason } => {
                sum.detached.push(DetachedStage { cell: sp.cell.clone(), stage: sp.stage, reason });
                // Later stages of the cell wait for the next apply.
                break;
            }
        }
    }
    Ok(sum)
}

enum StageResult {
    Done {
        out: PathBuf,
        cached: bool,
    },
    Failed {
        status: StageStatus,
        log: String,
    },
    /// Left running outside ptb (see [`ExecError::Detached`]).
    Detached {
        reason: String,
    },
}

fn now() -> SystemTime {
    SystemTime::now()
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn run_stage(
    ctx: &RunCtx,
    exp: &ptb_core::spec::Experiment,
    cell: &ptb_core::spec::Cell,
    sp: &StagePlan,
    inputs: BTreeMap<String, String>,
    outs: &BTreeMap<StageKind, PathBuf>,
) -> Result<StageResult, ApplyError> {
    let store = &ctx.session_store;
    let key: &StageKey = &sp.key;
    let (lock, waited) = match store.try_lock(key)? {
        Some(l) => (l, false),
        None => {
            ctx.reporter.note(&format!("{} {}: another ptb is building this stage; waiting for it", sp.cell, sp.stage.name()));
            let (s, k) = (store.clone(), key.clone());
            (tokio::task::spawn_blocking(move || s.lock(&k)).await.expect("lock task")?, true)
        }
    };
    // Another ptb may have finished it since we planned. Where we did not
    // wait, it can only be under this cell's entry name: one stat instead
    // of listing a store that grows with every stage.
    let forced = sp.reasons.iter().any(|r| matches!(r, ptb_core::plan::Reason::Forced | ptb_core::plan::Reason::UpstreamReruns { .. }));
    let done = if forced {
        None
    } else if waited {
        store.index()?.entry_name(key).map(str::to_string)
    } else {
        let name = ptb_core::store::entry_name(key, &sp.cell, sp.stage.name());
        store.entry_dir(&name).join("meta.json").exists().then_some(name)
    };
    if let Some(name) = done {
        let meta = store.read_meta(&name)?;
        let rec = record::from_meta(&meta, store.relative(&name));
        ctx.writer.record(exp, cell, sp.stage, &rec)?;
        ctx.reporter.stage_finished(&sp.cell, sp.stage.name(), StageEnd::BuiltConcurrently, std::time::Duration::ZERO);
        return Ok(StageResult::Done { out: store.entry_dir(&name).join("out"), cached: true });
    }
    let executor = ctx.executors.get(stage_executor(sp, exp));
    // A Slurm job a killed ptb left queued, running or finished: follow it
    // instead of submitting the stage a second time.
    let name = ptb_core::store::entry_name(key, &sp.cell, sp.stage.name());
    let adopt = match (&executor, store.detached_attempt(&name)) {
        (Ok(ex), Some(dir)) => ex.adopts(&dir, &key.0).await,
        _ => false,
    };
    // A stage that cannot even start (a full disk, an unwritable store) is
    // a failure of that stage, recorded; its siblings go on.
    let started = now();
    if !adopt && let Err(reason) = room_to_start(store, exp, sp) {
        return unbuilt(ctx, exp, cell, sp, inputs, started, &reason);
    }
    let building = match if adopt { store.resume(key, &sp.cell, sp.stage.name(), lock) } else { store.begin(key, &sp.cell, sp.stage.name(), lock) } {
        Ok(b) => b,
        Err(e) => return unbuilt(ctx, exp, cell, sp, inputs, started, &e.to_string()),
    };
    ctx.reporter.stage_started(&sp.cell, sp.stage.name());
    let clock = Instant::now();
    let mut job = job::build(exp, cell, sp, &building, outs, &store.judge_cache_dir());
    let redactor = job.as_ref().map(|j| crate::Redactor::new(&j.secrets)).unwrap_or_default();
    if let Ok(j) = &mut job {
        j.interrupt = ctx.interrupt.clone();
    }
    // GPUs: a host with none runs local stages without (CPU demo); a
    // container stage that asks for GPUs then fails with the executor's
    // "no GPUs assigned" error rather than silently running on CPU.
    // Slurm stages get theirs from Slurm (`--gres`), on their node.
    let want = match stage_executor(sp, exp) {
        ExecutorKind::Slurm => 0,
        _ => exp.stages.get(sp.stage).map_or(0, |s| s.resources.gpus),
    };
    let _lease = if want > 0 && !ctx.executors.gpus.devices().is_empty() {
        match ctx.executors.gpus.acquire(want).await {
            Ok(lease) => {
                if let Ok(j) = &mut job {
                    j.gpu_ids = lease.ids().to_vec();
                    let ids: Vec<String> = lease.ids().iter().map(u32::to_string).collect();
                    j.env.insert("CUDA_VISIBLE_DEVICES".into(), ids.join(","));
                }
                Some(lease)
            }
            Err(e) => {
                job = Err(e.into());
                None
            }
        }
    } else {
        None
    };
    let reporter = ctx.reporter.clone();
    let (cell_id, stage_name) = (sp.cell.clone(), sp.stage.name());
    let sink = move |line: &str| reporter.stage_log(&cell_id, stage_name, line);
    let outcome = match job {
        Ok(job) => match executor {
            Ok(ex) => ex.run(&job, &sink as &dyn LineSink).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(ExecError::Detached { .. }) = &outcome {
        // Not a result and not a failure: the job is out there, its build
        // directory stays (detached), and nothing is recorded.
        let reason = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        ctx.reporter.note(&format!("{} {}: {reason}", sp.cell, sp.stage.name()));
        return Ok(StageResult::Detached { reason });
    }
    let finished = now();
    let (status, exit_code, signal, oom, peak) = match &outcome {
        Ok(o) => (o.status, o.exit_code, o.signal, o.oom_killed, o.peak_memory_bytes),
        Err(msg) => {
            let _ = std::fs::write(building.log_path(), format!("ptb: could not run the stage: {msg}\n"));
            (StageStatus::Failed, None, None, false, None)
        }
    };
    let keep = status == StageStatus::Success || (status == StageStatus::BudgetExhausted && sp.stage == StageKind::Agent);
    // The output is data (docs/security.md): checked before anything of it
    // is read, and metrics or files ptb cannot accept fail the stage,
    // whatever its exit status.
    let checked = if keep { record::check_output(&building.out_dir(), &redactor) } else { record::Checked::default() };
    let mut stage_err = checked.error.clone();
    // The agent's /work goes into its entry for the judge; failing to keep
    // it (a full disk) fails the stage: a run the judge cannot read is not
    // a result.
    if keep && stage_err.is_none() && sp.stage == StageKind::Agent {
        let (ws, manifest) = crate::keep::paths(&building.dir);
        let opts = crate::keep::KeepOptions { weights_over: exp.stages.agent.keep.weights_over };
        let work = building.work_dir();
        // Copying GBs of datasets is blocking I/O: off the async workers.
        let kept = tokio::task::spawn_blocking(move || crate::keep::keep_workspace(&work, &ws, &manifest, opts)).await;
        match kept {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => stage_err = Some(format!("keeping the agent's workspace: {e}")),
            Err(e) => stage_err = Some(format!("keeping the agent's workspace: {e}")),
        }
    }
    let note = |line: &str| {
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(building.log_path())
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("ptb: {line}\n").as_bytes()));
    };
    checked.notes.iter().for_each(|n| note(n));
    if let Some(e) = &stage_err {
        note(e);
    }
    let keep = keep && stage_err.is_none();
    let status = if stage_err.is_some() { StageStatus::Failed } else { status };
    let metrics = checked.metrics;
    let out_sha256 = if keep { ptb_core::hash::hash_dir(&building.out_dir()).ok() } else { None };
    // The judge's evidence is the kept workspace: `ptb verify` checks it
    // has not changed since, as it does `out/`.
    let workspace = crate::keep::paths(&building.dir).0;
    let workspace_sha256 = if keep && workspace.is_dir() { ptb_core::hash::hash_dir(&workspace).ok() } else { None };
    let wall = clock.elapsed();
    let meta = Meta {
        key: key.0.clone(),
        cell: sp.cell.clone(),
        stage: sp.stage.name().into(),
        status,
        exit_code,
        signal,
        oom_killed: oom,
        peak_memory_bytes: peak,
        started: rfc3339(started),
        finished: rfc3339(finished),
        duration_s: wall.as_secs_f64(),
        metrics,
        inputs,
        out_sha256,
        workspace_sha256,
        ptb_version: env!("CARGO_PKG_VERSION").into(),
    };
    // A result goes into the store, a failure's log into failed/; the
    // lockfile records either, by its path relative to the store
    // (`v1/<entry>` or `v1/failed/<entry>`).
    let (keep, status, meta, dest) = if keep {
        match store.commit(building, &meta) {
            Ok(dest) => (true, status, meta, Ok(dest)),
            Err((building, e)) => {
                let meta = Meta { status: StageStatus::Failed, out_sha256: None, workspace_sha256: None, ..meta };
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(building.log_path())
                    .and_then(|mut f| std::io::Write::write_all(&mut f, format!("ptb: the result could not be stored: {e}\n").as_bytes()));
                let dest = store.fail(building, &meta);
                (false, StageStatus::Failed, meta, dest)
            }
        }
    } else {
        let dest = store.fail(building, &meta);
        (false, status, meta, dest)
    };
    // Even the failure record may not fit on a full disk: the lockfile
    // still says the stage failed, with no log to point to.
    let dest = dest.unwrap_or_else(|e| {
        ctx.reporter.note(&format!("{} {}: {e}", sp.cell, sp.stage.name()));
        PathBuf::new()
    });
    let rel = store.relative_path(&dest);
    ctx.writer.record(exp, cell, sp.stage, &record::from_meta(&meta, rel))?;
    ctx.reporter.stage_finished(&sp.cell, sp.stage.name(), StageEnd::Ran(status), wall);
    Ok(if keep {
        StageResult::Done { out: dest.join("out"), cached: false }
    } else {
        StageResult::Failed { status, log: dest.join("log").display().to_string() }
    })
}

/// The free space a stage needs on the store's filesystem before it
/// starts: what it declares (`resources disk=`), and never less than
/// [`MIN_FREE_BYTES`], so that a full disk fails stages at their start
/// with a clear message instead of midway.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

fn room_to_start(store: &Store, exp: &ptb_core::spec::Experiment, sp: &StagePlan) -> Result<(), String> {
    let need = exp.stages.get(sp.stage).and_then(|s| s.resources.disk_bytes).unwrap_or(0).max(MIN_FREE_BYTES);
    let free = store.free_bytes().map_err(|e| e.to_string())?;
    if free < need {
        let mib = |b: u64| b >> 20;
        return Err(format!(
            "only {} MiB are free on the store's filesystem ({}); the stage needs {} MiB to start: free some space (`ptb gc`) or move the store",
            mib(free),
            store.root().display(),
            mib(need)
        ));
    }
    Ok(())
}

/// Record a stage that could not be started at all.
fn unbuilt(
    ctx: &RunCtx,
    exp: &ptb_core::spec::Experiment,
    cell: &ptb_core::spec::Cell,
    sp: &StagePlan,
    inputs: BTreeMap<String, String>,
    started: SystemTime,
    reason: &str,
) -> Result<StageResult, ApplyError> {
    let store = &ctx.session_store;
    let meta = Meta {
        key: sp.key.0.clone(),
        cell: sp.cell.clone(),
        stage: sp.stage.name().into(),
        status: StageStatus::Failed,
        exit_code: None,
        signal: None,
        oom_killed: false,
        peak_memory_bytes: None,
        started: rfc3339(started),
        finished: rfc3339(now()),
        duration_s: 0.0,
        metrics: BTreeMap::new(),
        inputs,
        out_sha256: None,
        workspace_sha256: None,
        ptb_version: env!("CARGO_PKG_VERSION").into(),
    };
    ctx.reporter.note(&format!("{} {}: not started: {reason}", sp.cell, sp.stage.name()));
    let name = ptb_core::store::entry_name(&sp.key, &sp.cell, sp.stage.name());
    let rel = match store.fail_unbuilt(&name, &meta, reason) {
        Ok(dest) => store.relative_path(&dest),
        Err(_) => String::new(),
    };
    ctx.writer.record(exp, cell, sp.stage, &record::from_meta(&meta, rel.clone()))?;
    ctx.reporter.stage_finished(&sp.cell, sp.stage.name(), StageEnd::Ran(StageStatus::Failed), std::time::Duration::ZERO);
    Ok(StageResult::Failed { status: StageStatus::Failed, log: if rel.is_empty() { reason.to_string() } else { format!("{rel}/log") } })
}

fn stage_executor(sp: &StagePlan, exp: &ptb_core::spec::Experiment) -> ExecutorKind {
    exp.stages.get(sp.stage).map(|s| s.executor).unwrap_or(ExecutorKind::Local)
}
