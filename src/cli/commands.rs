//! One function per subcommand: load, call the library, print.

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
    let exp = ptb_core::spec::load(spec)?;
    // No runtime (and its threads) for specs without container stages.
    let docker = if exp.uses_docker() { docker_for(&exp, &runtime()?).ok().flatten() } else { None };
    Ok(Session::from_experiment(exp, &locations(at), docker.as_ref().map(|d| d as &dyn ptb_exec::ImageResolver), reporter)?)
}

pub fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Plan { spec, json, verbose, cell, at } => {
            let s = load(&spec, &at, &ptb_core::progress::Silent)?;
            no_match(&s, &spec, &cell)?;
            let plan = s.plan(&PlanOptions { cells: cell, replace: vec![] });
            print!("{}", if json { render_json(&plan) } else { render_text(&plan, &spec.display().to_string(), verbose) });
            // Freeing a 1,000-cell plan and lockfile costs milliseconds the
            // process is about to get back anyway.
            std::mem::forget((s, plan));
            Ok(ExitCode::SUCCESS)
        }
        Command::Why { spec, cell, at } => {
            let s = load(&spec, &at, &ptb_core::progress::Silent)?;
            let plan = s.plan(&PlanOptions { cells: vec![cell.clone()], replace: vec![] });
            no_match(&s, &spec, &[cell])?;
            print!("{}", render_why(&plan));
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { spec, cell, replace, jobs, locked, dry_run, gpus, at } => {
            let bars = Arc::new(Bars::new());
            let exp = ptb_core::spec::load(&spec)?;
            let rt = runtime()?;
            let docker = docker_for(&exp, &rt).map_err(|e| {
                miette::miette!(
                    help = "start it (`sudo systemctl start docker`, or `dockerd &`), or run the stages with executor=\"local\"",
                    "the spec has container stages, but {e}"
                )
            })?;
            let s = Session::from_experiment(exp, &locations(&at), docker.as_ref().map(|d| d as &dyn ptb_exec::ImageResolver), bars.as_ref())?;
            let opts = ApplyOptions { plan: PlanOptions { cells: cell, replace }, jobs, locked };
            no_match(&s, &spec, &opts.plan.cells)?;
            if dry_run {
                print!("{}", render_text(&s.plan(&opts.plan), &spec.display().to_string(), false));
                return Ok(ExitCode::SUCCESS);
            }
            let mut executors = Executors::local_only();
            executors.gpus = Arc::new(ptb_exec::gpus::GpuPool::discover(gpus.as_deref()).into_diagnostic()?);
            if let Some(d) = docker {
                // Containers left by a killed apply would hold GPUs and keep
                // writing; remove them before starting anything.
                let reaped = rt.block_on(d.reap_orphans()).into_diagnostic()?;
                if !reaped.is_empty() {
                    bars.note(&format!("removed {} container(s) left by a killed ptb apply", reaped.len()));
                }
                executors.docker = Some(Arc::new(d));
            }
            let summary = rt.block_on(apply(&s, &opts, &executors, bars.clone()))?;
            bars.finish();
            eprintln!(
                "apply: {} ran ({} succeeded, {} failed), {} cached, {} skipped, {} blocked; lockfile {} {}",
                summary.ran,
                summary.succeeded,
                summary.failed.len(),
                summary.cached,
                summary.skipped,
                summary.blocked,
                s.lock_path.display(),
                if summary.lockfile_written { "updated" } else { "unchanged" }
            );
            for (cell, stage, status, log) in &summary.failed {
                eprintln!("  ✗ {cell} {stage}: {status}; log: {log}");
            }
            if summary.blocked > 0 {
                eprintln!("  {} stage(s) blocked by missing inputs: `ptb plan {}` lists them", summary.blocked, spec.display());
            }
            Ok(if summary.failed.is_empty() && summary.blocked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Report { lockfile, template, output, check, html, figures } => {
            if let Some(file) = check {
                ptb_core::report::check(&file)?;
                eprintln!("{} matches its lockfile", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            if html || figures.is_some() {
                let Some(lockfile) = lockfile else {
                    miette::bail!(miette::miette!(
                        help = "e.g. ptb report lockfiles/demo.lock --html -o report.html --figures figures/",
                        "report needs a lockfile"
                    ));
                };
                if let Some(dir) = &figures {
                    let written = ptb_core::report::write_figures(&lockfile, dir, template.as_deref())?;
                    eprintln!("wrote {} figure(s) to {}", written.len(), dir.display());
                }
                if html {
                    let text = ptb_core::report::render_html(&lockfile)?;
                    match output {
                        Some(o) => std::fs::write(&o, text).into_diagnostic().wrap_err_with(|| format!("writing {}", o.display()))?,
                        None => print!("{text}"),
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(lockfile), Some(template)) = (lockfile, template) else {
                miette::bail!(miette::miette!(
                    help = "e.g. ptb report lockfiles/demo.lock --template templates/table.md.j2",
                    "report needs a lockfile and --template (or --check FILE)"
                ));
            };
            let text = ptb_core::report::render(&lockfile, &template)?;
            match output {
                Some(o) => std::fs::write(&o, text).into_diagnostic().wrap_err_with(|| format!("writing {}", o.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc { lockfiles, store, dry_run } => {
            let lockfiles = if lockfiles.is_empty() { default_lockfiles() } else { lockfiles };
            let mut keep = std::collections::HashSet::new();
            for l in &lockfiles {
                let lock = ptb_core::lock::Lockfile::load(l)?;
                keep.extend(lock.cells.values().flat_map(|c| c.stages.values().map(|s| s.path.clone())));
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
        Command::Verify { store } => {
            let st = ptb_core::store::Store::open(&store).into_diagnostic()?;
            let r = ptb_core::store::verify(&st).into_diagnostic()?;
            for (name, problem) in &r.bad {
                println!("CHANGED v1/{name}: {problem}");
            }
            eprintln!("verify: {} ok, {} changed", r.ok, r.bad.len());
            Ok(if r.bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Hash { path } => {
            let h = ptb_core::hash::hash_path(&path).into_diagnostic().wrap_err_with(|| format!("hashing {}", path.display()))?;
            println!("{h}  {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { spec, cell, stage, follow, at } => logs(&spec, &cell, &stage, follow, &at),
        Command::Bench(super::BenchCommand::Check { bench, data }) => Ok(bench_check(&bench, data.as_deref())),
        Command::Eval(a) => {
            let mut job = match ptb_evaluator::EvalJob::from_env() {
                Ok(j) => j,
                // Inside a stage the environment is the truth: say what is wrong with it.
                Err(e) if std::env::var_os("PTB_STAGE").is_some() => return Err(miette::miette!("{e}")),
                Err(e) => {
                    // Outside a stage the flags must say what the environment would;
                    // the paths are filled in from them below.
                    let bench = a.bench.as_deref().unwrap_or("").parse().map_err(|e| miette::miette!("{e}"))?;
                    for (given, what) in [(a.checkpoint.is_some(), "checkpoint"), (a.data.is_some(), "data"), (a.out.is_some(), "output directory")] {
                        if !given {
                            return Err(miette::miette!(help = "outside a stage, pass --bench, --checkpoint, --data and --out", "no {what}: {e}"));
                        }
                    }
                    ptb_evaluator::EvalJob {
                        bench,
                        checkpoint: PathBuf::new(),
                        base_model: None,
                        arch: None,
                        data: PathBuf::new(),
                        out: PathBuf::new(),
                        seed: 0,
                        limit: None,
                        max_tokens: None,
                        judge: None,
                        device: "cpu".into(),
                        dtype: Default::default(),
                        arena_baseline: String::new(),
                    }
                }
            };
            // Flags override the stage environment.
            if let Some(b) = &a.bench {
                job.bench = b.parse().map_err(|e| miette::miette!("{e}"))?;
            }
            job.checkpoint = a.checkpoint.unwrap_or(job.checkpoint);
            job.base_model = a.base_model.or(job.base_model);
            if let Some(arch) = &a.arch {
                job.arch = Some(arch.parse().map_err(|e| miette::miette!("--arch: {e}"))?);
            }
            job.data = a.data.unwrap_or(job.data);
            job.out = a.out.unwrap_or(job.out);
            job.seed = a.seed.unwrap_or(job.seed);
            job.limit = a.limit;
            job.max_tokens = a.max_tokens;
            job.device = a.device;
            job.dtype = a.dtype;
            job.arena_baseline = a.arena_baseline;
            if let (Some(url), Some(model)) = (a.judge_url, a.judge_model) {
                let cache = a.judge_cache.or_else(|| job.judge.as_ref().and_then(|j| j.cache_dir.clone()));
                job.judge = Some(ptb_evaluator::judge_endpoint(url, model, a.judge_api_key_env, None, cache));
            } else if let (Some(j), Some(c)) = (job.judge.as_mut(), a.judge_cache) {
                j.cache_dir = Some(c);
            }
            let s = ptb_evaluator::run(&job, &crate::cli::generate::TextReporter::default()).map_err(|e| miette::miette!("{e}"))?;
            let judged = s.judge.map(|u| format!("; judge: {} replies asked, {} from the cache", u.requested, u.cached)).unwrap_or_default();
            eprintln!(
                "{}: {:.4} ({} items, stderr {:.4}){judged}{}",
                job.bench.name(),
                s.score,
                s.n,
                s.stderr,
                if s.mismatches.is_empty() { String::new() } else { format!("; checkpoint contradicts its base model: {}", s.mismatches.join("; ")) }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Judge(args) => super::judge::run(args),
        Command::Generate(args) => {
            crate::cli::generate::cli_generate(args).map_err(|e| miette::miette!("{e}"))?;
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

fn default_lockfiles() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir("lockfiles").into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "lock")).collect();
    v.sort();
    v
}

/// The log of a finished stage (from the lockfile), or of one being built.
fn logs(spec: &Path, cell: &str, stage: &str, follow: bool, at: &Where) -> Result<ExitCode> {
    let s = load(spec, at, &ptb_core::progress::Silent)?;
    let plan = s.plan(&PlanOptions { cells: vec![cell.to_string()], replace: vec![] });
    let sp = plan.stages.iter().find(|p| p.stage.name() == stage).ok_or_else(|| miette::miette!("no stage `{stage}` for cell `{cell}`"))?;
    let store_parent = s.store.root().parent().unwrap_or(s.store.root()).to_path_buf();
    let building = s.store.building_dir(&ptb_core::store::entry_name(&sp.key, &sp.cell, stage));
    let path = if building.join("log").exists() {
        building.join("log")
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

/// `ptb bench check`.
fn bench_check(bench: &str, data: Option<&std::path::Path>) -> ExitCode {
    use ptb_bench::{BenchId, check};
    let benches: Vec<BenchId> = if bench == "all" {
        BenchId::ALL.to_vec()
    } else {
        match bench.parse() {
            Ok(b) => vec![b],
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let mut ok = true;
    let all = bench == "all";
    for b in benches {
        // GPQA is gated: `all` cannot assume the user has a copy.
        if all && b == BenchId::GpqaMain && data.is_none() && !check::gpqa_path(None).is_file() {
            println!("gpqamain: skipped (gated data; run `ptb bench check gpqa --data gpqa_main.csv`)");
            continue;
        }
        match check::run(b, data) {
            Ok(report) => {
                println!("{report}");
                ok &= report.ok();
            }
            Err(e) => {
                eprintln!("{b}: error: {e}");
                ok = false;
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
