use super::*;
use ptb_exec::interrupt::Interrupt;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    #[arg(long)]
    pub cell: Vec<String>,
    /// Force matching cells to rerun (like terraform's -replace); repeatable.
    #[arg(long)]
    pub replace: Vec<String>,
    /// Cells in flight at once (default 1; with Slurm stages 256, which
    /// bounds ptb's jobs in the queue).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Fail if the lockfile would change (nothing is run); hub models not
    /// pinned in it are refused, pinned ones are fetched and checked.
    #[arg(long)]
    pub locked: bool,
    /// Only plan.
    #[arg(long)]
    pub dry_run: bool,
    /// GPU device ids to hand out to stages (default: what `nvidia-smi -L` lists).
    #[arg(long)]
    pub gpus: Option<String>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
    #[command(flatten)]
    pub at: Where,
}

/// What Ctrl-C does to the Slurm jobs an apply follows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Ask on a terminal; elsewhere leave them.
    Ask,
    /// `scancel` them.
    Cancel,
    /// Leave them queued and running: the next `ptb apply` adopts them.
    Leave,
}

#[derive(clap::Args, Debug)]
pub struct SlurmArgs {
    /// Slurm stages: what Ctrl-C does to their jobs.
    #[arg(long, value_enum, default_value = "ask")]
    pub on_interrupt: OnInterrupt,
    /// Slurm stages: how often to ask squeue (one call for all jobs).
    #[arg(long, env = "PTB_SLURM_POLL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub slurm_poll: std::time::Duration,
    /// Slurm stages: how often a job ended by NODE_FAIL, PREEMPTED or BOOT_FAIL is submitted again.
    #[arg(long, default_value_t = 3)]
    pub slurm_requeues: u32,
    /// Slurm stages: how long slurmctld may not answer before ptb stops following
    /// their jobs (which keep running; the next apply adopts them).
    #[arg(long, env = "PTB_SLURM_UNREACHABLE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub slurm_unreachable: std::time::Duration,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, cell, replace, jobs, locked, dry_run, gpus, slurm, at } = a;
    let bars = Arc::new(Bars::new());
    let exp = ptb_core::spec::load(&spec)?;
    let rt = runtime()?;
    let docker = docker_for(&exp, &rt).map_err(|e| {
        miette::miette!(
            help = "start it (`sudo systemctl start docker`, or `dockerd &`), or run the stages with executor=\"local\"",
            "the spec has container stages, but {e}"
        )
    })?;
    let images = docker.as_ref().map(|d| d as &dyn ptb_exec::ImageResolver);
    let mut s = Session::from_experiment(exp, &locations(&at), images, bars.as_ref())?;
    // Hub models not in the store: resolve (unless --locked), fetch, pin;
    // then load again, now with them in the store.
    if !dry_run && hub_models_missing(&s) {
        // Only the models of the cells this apply runs.
        let selected = |id: &str| cell.is_empty() || cell.iter().any(|p| ptb_core::spec::cell_matches(p, id));
        let mut models: Vec<String> = s.exp.cells.iter().filter(|c| selected(&c.id)).map(|c| s.exp.model(c).name.clone()).collect();
        models.dedup();
        let mode = ptb_hub::Mode::Apply { locked, models };
        let report = ptb_hub::sync(&s.exp, &s.lock_path, &s.store, &hub_client(), &mode, bars.as_ref())?;
        for c in report.pins.iter().filter(|c| c.changed()) {
            bars.note(&format!("pinned {} ({}) at {} ({})", c.what, c.origin, c.new_commit, c.new_sha256));
        }
        s = Session::from_experiment(ptb_core::spec::load(&spec)?, &locations(&at), images, bars.as_ref())?;
    }
    if let Some(note) = s.notes() {
        bars.note(&note);
    }
    let (interrupt_handle, interrupt) = Interrupt::new();
    let jobs = jobs.unwrap_or(if s.exp.uses_slurm() { 256 } else { 1 });
    let opts = ApplyOptions { plan: PlanOptions { cells: cell, replace }, jobs, locked, interrupt };
    no_match(&s, &spec, &opts.plan.cells)?;
    if dry_run {
        print!("{}", render_text(&s.plan(&opts.plan), &spec.display().to_string(), false));
        return Ok(ExitCode::SUCCESS);
    }
    let mut executors = Executors::local_only();
    executors.gpus = Arc::new(ptb_exec::gpus::GpuPool::discover(gpus.as_deref()).into_diagnostic()?);
    if let Some(d) = docker {
        // Containers left by a killed apply would hold GPUs and keep
        // writing; remove them before starting anything.
        let reaped = rt.block_on(d.reap_orphans()).into_diagnostic()?;
        if !reaped.is_empty() {
            bars.note(&format!("removed {} container(s) left by a killed ptb apply", reaped.len()));
        }
        executors.docker = Some(Arc::new(d));
    }
    // Registered before any stage starts (until here Ctrl-C simply ends
    // ptb: nothing runs yet, and hashing a model can take minutes).
    let signals = {
        let _rt = rt.enter();
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).into_diagnostic()?, signal(SignalKind::terminate()).into_diagnostic()?)
    };
    rt.spawn(watch_signals(signals, interrupt_handle, bars.clone()));
    if s.exp.uses_slurm() {
        let ex = Arc::new(rt.block_on(connect_slurm(&s.exp, &spec, &slurm))?);
        executors.slurm = Some(ex.clone());
        rt.spawn(on_ctrl_c(ex, slurm.on_interrupt));
    }
    let summary = rt.block_on(apply(&s, &opts, &executors, bars.clone()))?;
    bars.finish();
    if summary.interrupted {
        let stopped = summary.failed.iter().filter(|f| f.status == ptb_exec::StageStatus::Interrupted).count();
        eprintln!(
            "apply: interrupted; {stopped} running stage(s) stopped and recorded as interrupted, {} finished before; lockfile {} {}. `ptb apply {}` runs the rest",
            summary.ran.saturating_sub(stopped),
            s.lock_path.display(),
            if summary.lockfile_written { "updated" } else { "unchanged" },
            spec.display()
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    eprintln!(
        "apply: {} ran ({} succeeded, {} failed), {} cached, {} skipped, {} blocked; lockfile {} {}",
        summary.ran,
        summary.succeeded,
        summary.failed.len(),
        summary.cached,
        summary.skipped,
        summary.blocked,
        s.lock_path.display(),
        if summary.lockfile_written { "updated" } else { "unchanged" }
    );
    for ptb_exec::apply::FailedStage { cell, stage, status, log } in &summary.failed {
        eprintln!("  ✗ {cell} {stage}: {status}; log: {log}");
    }
    for ptb_exec::apply::DetachedStage { cell, stage, reason } in &summary.detached {
        eprintln!("  … {cell} {stage}: not recorded: {reason}");
    }
    if summary.blocked > 0 {
        eprintln!("  {} stage(s) blocked by missing inputs: `ptb plan {}` lists them", summary.blocked, spec.display());
    }
    Ok(if summary.failed.is_empty() && summary.blocked == 0 && summary.detached.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The Slurm executor for this spec: slurmctld must answer and every
/// partition the spec names must exist, before anything is submitted.
async fn connect_slurm(exp: &ptb_core::spec::Experiment, spec: &Path, a: &SlurmArgs) -> Result<ptb_exec::slurm::SlurmExecutor> {
    use ptb_exec::slurm::{SlurmConfig, SlurmExecutor};
    let ptb = std::env::current_exe().into_diagnostic().wrap_err("locating the ptb binary the nodes will run")?;
    let cfg = SlurmConfig { poll: a.slurm_poll, max_requeues: a.slurm_requeues, unreachable_after: a.slurm_unreachable, ..SlurmConfig::new(ptb) };
    let options = exp.stage_specs().filter(|s| s.executor == ptb_core::spec::ExecutorKind::Slurm).map(|s| (s.kind, s.slurm.clone())).collect();
    SlurmExecutor::connect(cfg, options).await.map_err(|e| {
        let help = match &e {
            ptb_exec::slurm::client::SlurmError::NoPartition { .. } => format!("fix `partition=` in the `slurm` settings of {}", spec.display()),
            _ => "run ptb on a Slurm login node with slurmctld up (`scontrol ping`); scripts/slurm/setup.sh starts a one-node test cluster".into(),
        };
        miette::miette!(help = help, "{}: the spec has Slurm stages, but {e}", spec.display())
    })
}

/// Ctrl-C during an apply with Slurm stages: cancel the jobs it follows, or
/// leave them for the next apply to adopt, then stop.
async fn on_ctrl_c(ex: Arc<ptb_exec::slurm::SlurmExecutor>, choice: OnInterrupt) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    let n = ex.live_jobs().len();
    let cancel = match choice {
        OnInterrupt::Cancel => true,
        OnInterrupt::Leave => false,
        OnInterrupt::Ask if n > 0 && std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            eprint!("\ninterrupted: scancel the {n} Slurm job(s) this apply follows? [y/N] ");
            let answer = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await;
            matches!(answer, Ok(Ok(l)) if l.trim().eq_ignore_ascii_case("y") || l.trim().eq_ignore_ascii_case("yes"))
        }
        OnInterrupt::Ask => false,
    };
    if cancel {
        match ex.cancel_all().await {
            Ok(ids) => eprintln!("\ninterrupted: cancelled {} Slurm job(s); their stages are not recorded", ids.len()),
            Err(e) => eprintln!("\ninterrupted: scancel failed ({e}); the jobs may still run"),
        }
    } else {
        eprintln!("\ninterrupted: left {n} Slurm job(s) queued or running; `ptb apply` again follows them");
    }
    std::process::exit(130);
}

/// A shell's exit status for a process ended by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// Ctrl-C or SIGTERM: stop the running stages (each gets SIGTERM and a
/// short grace, containers are removed) and start nothing new; a second
/// one exits at once (local stages die with ptb; containers are removed by
/// the next apply).
async fn watch_signals(
    (mut int, mut term): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
    handle: ptb_exec::interrupt::InterruptHandle,
    bars: Arc<Bars>,
) {
    for round in 0.. {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if round == 0 {
            handle.trigger();
            bars.note("interrupted: stopping the running stages and recording them as interrupted (Ctrl-C again to quit at once)");
        } else {
            eprintln!("ptb: interrupted twice; quitting without waiting for the stages");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    }
}
