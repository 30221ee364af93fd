use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "store", env = "PTB_STORE")]
    pub store: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { store } = a;
    let st = ptb_core::store::Store::open(&store).into_diagnostic()?;
    let r = ptb_core::store::verify(&st).into_diagnostic()?;
    for (name, problem) in &r.bad {
        println!("CHANGED v1/{name}: {problem}");
    }
    eprintln!("verify: {} ok, {} changed", r.ok, r.bad.len());
    Ok(if r.bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
