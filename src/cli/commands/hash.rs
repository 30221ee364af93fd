use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub path: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { path } = a;
    let h = ptb_core::hash::hash_path(&path).into_diagnostic().wrap_err_with(|| format!("hashing {}", path.display()))?;
    println!("{h}  {}", path.display());
    Ok(ExitCode::SUCCESS)
}
