use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub spec: PathBuf,
    /// Only these models (by the spec's name; default: every hub model).
    pub models: Vec<String>,
    #[command(flatten)]
    pub at: Where,
}

/// `ptb update SPEC [MODEL…]`: resolve each hub model's `revision` again,
/// fetch content that changed, and write the new pins (commit and content
/// hash) to the lockfile, printing old → new. Stages run by the next
/// `ptb apply`; those of a model whose content changed have new keys.
pub fn run(a: Args) -> Result<ExitCode> {
    let Args { spec, models, at } = a;
    let bars = Bars::new();
    let exp = ptb_core::spec::load(&spec)?;
    let loc = locations(&at);
    let store = ptb_core::store::Store::open(&loc.store.clone().unwrap_or_else(|| exp.store.clone())).into_diagnostic()?;
    let lock_path = loc.lockfile.clone().unwrap_or_else(|| exp.lockfile.clone());
    let report = ptb_hub::sync(&exp, &lock_path, &store, &hub_client(), &ptb_hub::Mode::Update { models }, &bars)?;
    if report.pins.is_empty() {
        println!("{}: no models from the hub", spec.display());
        return Ok(ExitCode::SUCCESS);
    }
    let short = |c: &str| c.get(..12).unwrap_or(c).to_string();
    for c in &report.pins {
        match (&c.old_commit, c.changed()) {
            (_, false) => println!("  {} ({}): {} (unchanged)", c.what, c.origin, short(&c.new_commit)),
            (Some(old), true) => println!("  {} ({}): {} → {}", c.what, c.origin, short(old), short(&c.new_commit)),
            (None, true) => println!("  {} ({}): pinned at {}", c.what, c.origin, short(&c.new_commit)),
        }
    }
    // The rest of the lockfile's header (the `pins` block hashes stages
    // read) as apply would write it, so the file is consistent now.
    let s = load(&spec, &at, &bars)?;
    let _guard = ptb_core::session::LockfileGuard::acquire(&s.store, &s.lock_path)?;
    let mut lock = ptb_core::lock::Lockfile::load_file(&s.lock_path)?;
    ptb_core::session::refresh_header(&mut lock, &s.exp, &s.pins);
    let written = lock.save(&s.lock_path)? || report.lockfile_written;
    let changed = report.pins.iter().filter(|c| c.changed()).count();
    eprintln!(
        "update: {changed} pin(s) changed, {} model(s) fetched; lockfile {} {}",
        report.fetched.len(),
        s.lock_path.display(),
        if written { "updated" } else { "unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}
