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
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, json, verbose, cell, at } = a;
    let s = load(&spec, &at, &ptb_core::progress::Silent)?;
    no_match(&s, &spec, &cell)?;
    let plan = s.plan(&PlanOptions { cells: cell, replace: vec![] });
    print!("{}", if json { render_json(&plan) } else { render_text(&plan, &spec.display().to_string(), verbose) });
    // Freeing a 1,000-cell plan and lockfile costs milliseconds the
    // process is about to get back anyway.
    std::mem::forget((s, plan));
    Ok(ExitCode::SUCCESS)
}
