//! One module per subcommand: its flags (`Args`) and `run`, which resolves
//! its settings from the flags (and, for `eval`, the stage's environment),
//! calls one library operation and prints. Shared here: loading a session.

pub mod apply;
pub mod bench;
pub mod eval;
pub mod gc;
pub mod generate;
pub mod hash;
pub mod judge;
pub mod logs;
pub mod plan;
pub mod report;
pub mod stage_run;
pub mod status;
pub mod update;
pub mod verify;
pub mod why;

use super::progress::Bars;
use super::{Command, Where};
use miette::{IntoDiagnostic, Result, WrapErr};
use ptb_core::plan::{PlanOptions, render_json, render_text, render_why};
use ptb_core::progress::Reporter;
use ptb_core::session::{Locations, Session};
use ptb_exec::apply::{ApplyOptions, Executors, apply};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

fn locations(at: &Where) -> Locations {
    Locations { store: at.store.clone(), lockfile: at.lockfile.clone() }
}

/// The Docker engine, when the spec has container stages. Planning works
/// without one (images then show as missing); applying does not.
fn docker_for(exp: &ptb_core::spec::Experiment, rt: &tokio::runtime::Runtime) -> Result<Option<ptb_exec::docker::DockerExecutor>, String> {
    if !exp.uses_docker() {
        return Ok(None);
    }
    rt.block_on(ptb_exec::docker::DockerExecutor::connect()).map(Some).map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().into_diagnostic()
}

fn load(spec: &Path, at: &Where, reporter: &dyn Reporter) -> Result<Session> {
    load_to(spec, at, reporter, ptb_core::lock::Depth::Full)
}

/// [`load`], reading the lockfile's records to `depth`.
fn load_to(spec: &Path, at: &Where, reporter: &dyn Reporter, depth: ptb_core::lock::Depth) -> Result<Session> {
    let exp = ptb_core::spec::load(spec)?;
    // No runtime (and its threads) for specs without container stages.
    let docker = if exp.uses_docker() { docker_for(&exp, &runtime()?).ok().flatten() } else { None };
    let s = Session::from_experiment_to(exp, &locations(at), docker.as_ref().map(|d| d as &dyn ptb_exec::ImageResolver), reporter, depth)?;
    if let Some(note) = s.notes() {
        eprintln!("note: {note}");
    }
    // A journal left by a killed apply: make the lockfile on disk complete.
    s.compact_journal()?;
    Ok(s)
}

/// Hub models the session did not find in the store (not pinned, or
/// pinned but not fetched on this machine): what `ptb apply` fetches.
fn hub_models_missing(s: &Session) -> bool {
    ptb_core::resolve::model_refs(&s.exp).any(|(name, _, r)| r.hub.is_some() && s.pins.missing(&name).is_some())
}

/// A hub client from `HF_ENDPOINT` and `HF_TOKEN`.
fn hub_client() -> ptb_hub::Client {
    ptb_hub::Client::new(ptb_hub::HubConfig::from_env())
}

pub fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Plan(a) => plan::run(a),
        Command::Why(a) => why::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Update(a) => update::run(a),
        Command::Report(a) => report::run(a),
        Command::Gc(a) => gc::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Hash(a) => hash::run(a),
        Command::Logs(a) => logs::run(a),
        Command::Status(a) => status::run(a),
        Command::StageRun(a) => stage_run::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Eval(a) => eval::run(a),
        Command::Judge(a) => judge::run(a),
        Command::Generate(a) => {
            generate::cli_generate(a).map_err(|e| miette::miette!("{e}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A `--cell` pattern that selects nothing is a typo, not a no-op.
fn no_match(s: &Session, spec: &Path, patterns: &[String]) -> Result<()> {
    if patterns.is_empty() || s.exp.cells.iter().any(|c| patterns.iter().any(|p| ptb_core::spec::cell_matches(p, &c.id))) {
        return Ok(());
    }
    let wanted = patterns.join(" ");
    let close = s.exp.cells.iter().map(|c| c.id.as_str()).min_by_key(|id| strsim::levenshtein(id, &wanted)).unwrap_or("");
    Err(miette::miette!(help = format!("cell ids look like `{close}`"), "no cell matches `{wanted}` in {}", spec.display()))
}
