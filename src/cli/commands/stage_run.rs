use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The job directory the controller wrote (`<store>/v1/.tmp/<entry>/slurm`).
    pub dir: PathBuf,
}

/// Exits 0 whenever an outcome was written, whatever the stage did: the
/// stage's status is in the outcome, and a failing job would only make
/// Slurm's state say what the outcome already says.
pub fn run(a: Args) -> Result<ExitCode> {
    let rt = runtime()?;
    let outcome = rt.block_on(ptb_exec::slurm::node::stage_run(&a.dir)).into_diagnostic()?;
    eprintln!("ptb stage-run: {} on {}", outcome.status, outcome.node);
    if let Some(e) = &outcome.error {
        eprintln!("ptb stage-run: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
