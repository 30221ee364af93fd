use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    pub cell: String,
    #[arg(long, default_value = "agent")]
    pub stage: String,
    /// Keep printing as the log grows.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub at: Where,
}

pub fn run(a: Args) -> Result<ExitCode> {
    logs(&a.spec, &a.cell, &a.stage, a.follow, &a.at)
}

/// The log of a finished stage (from the lockfile), or of one being built.
fn logs(spec: &Path, cell: &str, stage: &str, follow: bool, at: &Where) -> Result<ExitCode> {
    let s = load(spec, at, &ptb_core::progress::Silent)?;
    let plan = s.plan(&PlanOptions { cells: vec![cell.to_string()], replace: vec![] });
    let sp = plan.stages.iter().find(|p| p.stage.name() == stage).ok_or_else(|| miette::miette!("no stage `{stage}` for cell `{cell}`"))?;
    let store_parent = s.store.root().parent().unwrap_or(s.store.root()).to_path_buf();
    let building = s.store.latest_attempt(&ptb_core::store::entry_name(&sp.key, &sp.cell, stage));
    let path = if let Some(log) = building.map(|b| b.join("log")).filter(|l| l.exists()) {
        log
    } else if let Some(rec) = s.lock.stage(&sp.cell, stage) {
        store_parent.join(&rec.path).join("log")
    } else {
        miette::bail!("{} {stage} has not run yet", sp.cell);
    };
    let mut pos = 0u64;
    loop {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(&path).into_diagnostic().wrap_err_with(|| format!("reading {}", path.display()))?;
        f.seek(std::io::SeekFrom::Start(pos)).into_diagnostic()?;
        let mut buf = String::new();
        f.read_to_string(&mut buf).into_diagnostic()?;
        pos += buf.len() as u64;
        print!("{buf}");
        if !follow || !path.exists() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
