use super::*;

pub fn run(a: crate::cli::EvalArgs) -> Result<ExitCode> {
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
                device: Default::default(),
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
    job.judge = a.judge.over(job.judge.take());
    let s = ptb_evaluator::run(&job, &super::generate::TextReporter::default()).map_err(|e| miette::miette!("{e}"))?;
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
