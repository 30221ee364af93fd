use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Lockfiles whose entries to keep (default: lockfiles/*.lock).
    pub lockfiles: Vec<PathBuf>,
    #[arg(long, default_value = "store", env = "PTB_STORE")]
    pub store: PathBuf,
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Args { lockfiles, store, dry_run } = a;
    let lockfiles = if lockfiles.is_empty() { default_lockfiles() } else { lockfiles };
    let mut keep = std::collections::HashSet::new();
    for l in &lockfiles {
        let lock = ptb_core::lock::Lockfile::load(l)?;
        keep.extend(lock.cells.values().flat_map(|c| c.stages.values().map(|s| s.path.clone())));
        // Models fetched from the hub that the lockfile pins.
        keep.extend(lock.hub.values().map(|h| format!("v1/models/{}", h.sha256.strip_prefix("sha256:").unwrap_or(&h.sha256))));
    }
    let st = ptb_core::store::Store::open(&store).into_diagnostic()?;
    let r = ptb_core::store::gc(&st, &keep, dry_run).into_diagnostic()?;
    for e in &r.removed {
        println!("{} {e}", if dry_run { "would remove" } else { "removed" });
    }
    eprintln!(
        "gc: {} {}, {} kept (referenced by {} lockfile(s))",
        r.removed.len(),
        if dry_run { "would be removed" } else { "removed" },
        r.kept,
        lockfiles.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn default_lockfiles() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir("lockfiles").into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "lock")).collect();
    v.sort();
    v
}
