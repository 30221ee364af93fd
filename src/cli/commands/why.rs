use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    /// Cell id or pattern (e.g. `qwen3-1.7b/gsm8k/claude/seed=1`).
    pub cell: String,
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, cell, at } = a;
    let s = load(&spec, &at, &ptb_core::progress::Silent)?;
    let plan = s.plan(&PlanOptions { cells: vec![cell.clone()], replace: vec![] });
    no_match(&s, &spec, &[cell])?;
    print!("{}", render_why(&plan));
    Ok(ExitCode::SUCCESS)
}
