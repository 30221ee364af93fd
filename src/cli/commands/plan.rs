use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    /// One JSON object per cell stage, one per line.
    #[arg(long)]
    pub json: bool,
    /// List every stage, cached ones too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Only cells matching this pattern (e.g. `qwen3-1.7b/gsm8k/*/seed=1`); repeatable.
    #[arg(long)]
    pub cell: Vec<String>,
    /// Estimate how long the stages to run take on this many GPUs (full budgets).
    #[arg(long)]
    pub gpus: Option<u32>,
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, json, verbose, cell, gpus, at } = a;
    // Keys and statuses are all a plan with nothing to do compares; one
    // that finds work reads the records whole, for its reasons.
    let mut s = load_to(&spec, &at, &ptb_core::progress::Silent, ptb_core::lock::Depth::Keys)?;
    no_match(&s, &spec, &cell)?;
    let opts = PlanOptions { cells: cell, replace: vec![] };
    let mut plan = s.plan(&opts);
    if !plan.is_noop() {
        s.read_whole_records()?;
        plan = s.plan(&opts);
    }
    print!("{}", if json { render_json(&plan) } else { render_text(&plan, &spec.display().to_string(), verbose) });
    if !json {
        match gpus {
            Some(n) => {
                let load = |sp: &ptb_core::plan::StagePlan| {
                    let st = s.exp.stages.get(sp.stage).expect("planned stages are declared");
                    ptb_core::plan::StageLoad { budget_s: st.budget.as_secs(), gpus: st.resources.gpus }
                };
                let secs = ptb_core::plan::plan_makespan_s(&plan, n, load);
                println!(
                    "Makespan on {n} GPU(s), every stage at its full budget, longest cell first: {:.1} h ({:.1} days).",
                    secs as f64 / 3600.0,
                    secs as f64 / 86400.0
                );
            }
            None if s.exp.uses_slurm() => println!("(`--gpus N` estimates how long the stages to run take on N GPUs.)"),
            None => {}
        }
    }
    // Freeing a 1,000-cell plan and lockfile costs milliseconds the
    // process is about to get back anyway.
    std::mem::forget((s, plan));
    Ok(ExitCode::SUCCESS)
}
