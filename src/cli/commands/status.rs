use super::*;
use ptb_core::plan::Action;
use ptb_exec::slurm::queue::{JobInfo, JobState};

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    /// Only cells matching this pattern; repeatable.
    #[arg(long)]
    pub cell: Vec<String>,
    #[command(flatten)]
    pub at: Where,
}

/// A stage that is neither done nor untouched: being built in the store.
struct Active {
    cell: String,
    stage: &'static str,
    job: Option<u64>,
    gpus: u32,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let s = load(&a.spec, &a.at, &ptb_core::progress::Silent)?;
    no_match(&s, &a.spec, &a.cell)?;
    let plan = s.plan(&PlanOptions { cells: a.cell.clone(), replace: vec![] });
    let gpus_of = |k: ptb_core::spec::StageKind| s.exp.stages.get(k).map_or(0, |st| st.resources.gpus);
    // Stages being built: a directory under the store's .tmp/, with the
    // Slurm job id the controller wrote when it is a Slurm job.
    let mut active = Vec::new();
    for sp in plan.stages.iter().filter(|p| p.action == Action::Run) {
        if let Some(build) = s.store.latest_attempt(&ptb_core::store::entry_name(&sp.key, &sp.cell, sp.stage.name())) {
            let job = ptb_exec::slurm::jobdir::read_id(&ptb_exec::slurm::jobdir::dir_of(&build));
            active.push(Active { cell: sp.cell.clone(), stage: sp.stage.name(), job, gpus: gpus_of(sp.stage) });
        }
    }
    let queue: std::collections::HashMap<u64, JobInfo> = if active.iter().any(|x| x.job.is_some()) {
        match runtime()?.block_on(ptb_exec::slurm::client::Client.squeue()) {
            Ok(jobs) => jobs.into_iter().map(|j| (j.id, j)).collect(),
            Err(e) => {
                eprintln!("note: {e}; showing what the store says");
                Default::default()
            }
        }
    } else {
        Default::default()
    };
    let width = active.iter().map(|x| x.cell.len()).max().unwrap_or(4).max(4);
    let (mut queued, mut running, mut spent_running) = (0usize, 0usize, 0f64);
    if !active.is_empty() {
        println!("{:width$}  {:6}  {:>8}  {:>10}  {:>8}  WHERE", "CELL", "STAGE", "JOB", "STATE", "FOR");
    }
    for x in &active {
        let info = x.job.and_then(|id| queue.get(&id));
        let (state, elapsed, place) = match (x.job, info) {
            (_, Some(j)) => (j.state.name().to_string(), j.elapsed_s, j.where_.clone()),
            (Some(_), None) => ("UNKNOWN".to_string(), 0, "slurmctld no longer lists it".to_string()),
            (None, None) => ("BUILDING".to_string(), 0, "this host (local or Docker)".to_string()),
        };
        match info.map(|j| &j.state) {
            Some(st) if st.is_queued() => queued += 1,
            Some(JobState::Running | JobState::Completing) | None => {
                running += 1;
                spent_running += (elapsed as f64 / 3600.0) * x.gpus as f64;
            }
            Some(_) => {}
        }
        let job = x.job.map_or("-".to_string(), |id| id.to_string());
        println!("{:width$}  {:6}  {job:>8}  {state:>10}  {:>8}  {place}", x.cell, x.stage, clock(elapsed));
    }
    // Spent: what the lockfile records for this plan's finished stages
    // (their wall time × their GPUs), plus what running stages have used.
    let mut spent_done = 0f64;
    let mut done = 0;
    for sp in plan.stages.iter().filter(|p| p.action == Action::Cached) {
        if let Some(rec) = s.lock.stage(&sp.cell, sp.stage.name()) {
            spent_done += rec.duration_s / 3600.0 * gpus_of(sp.stage) as f64;
            done += 1;
        }
    }
    let to_run = plan.count(Action::Run);
    let left = (plan.gpu_hours(Action::Run) - spent_running).max(0.0);
    println!(
        "{queued} queued, {running} running, {} waiting, {done} done. GPU-hours: {:.1} spent ({spent_done:.1} by finished stages, {spent_running:.1} by running ones), at most {left:.1} left (budget × GPUs of the {to_run} stage(s) not done).",
        to_run.saturating_sub(active.len()),
        spent_done + spent_running,
    );
    Ok(ExitCode::SUCCESS)
}

/// `H:MM:SS`.
fn clock(s: u64) -> String {
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
