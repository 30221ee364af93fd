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
    /// Stages run at once.
    #[arg(long, short, default_value_t = 1)]
    pub jobs: usize,
    /// Fail if the lockfile would change (nothing is run).
    #[arg(long)]
    pub locked: bool,
    /// Only plan.
    #[arg(long)]
    pub dry_run: bool,
    /// GPU device ids to hand out to stages (default: what `nvidia-smi -L` lists).
    #[arg(long)]
    pub gpus: Option<String>,
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, cell, replace, jobs, locked, dry_run, gpus, at } = a;
    let bars = Arc::new(Bars::new());
    let exp = ptb_core::spec::load(&spec)?;
    let rt = runtime()?;
    let docker = docker_for(&exp, &rt).map_err(|e| {
        miette::miette!(
            help = "start it (`sudo systemctl start docker`, or `dockerd &`), or run the stages with executor=\"local\"",
            "the spec has container stages, but {e}"
        )
    })?;
    let s = Session::from_experiment(exp, &locations(&at), docker.as_ref().map(|d| d as &dyn ptb_exec::ImageResolver), bars.as_ref())?;
    if let Some(note) = s.notes() {
        bars.note(&note);
    }
    let (interrupt_handle, interrupt) = Interrupt::new();
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
    if summary.blocked > 0 {
        eprintln!("  {} stage(s) blocked by missing inputs: `ptb plan {}` lists them", summary.blocked, spec.display());
    }
    Ok(if summary.failed.is_empty() && summary.blocked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
