//! `ptb judge`: the built-in anti-cheat judge (crates/ptb-judge). Inside a
//! judge stage every input comes from PTB_* variables; flags override them.

use super::*;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The base model directory (default: $PTB_INPUT_MODEL).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// The agent stage's output, holding final_model/ (default: $PTB_INPUT_AGENT).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// The instruct model directory (default: $PTB_INPUT_INSTRUCT; none: no instruct comparison).
    #[arg(long)]
    pub instruct: Option<PathBuf>,
    /// The benchmark data directory, or GPQA's CSV (default: $PTB_INPUT_DATA).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The benchmark (default: $PTB_BENCHMARK).
    #[arg(long)]
    pub bench: Option<String>,
    /// Where verdict.json and metrics.json go (default: $PTB_OUT).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Words per n-gram of the contamination index.
    #[arg(long, default_value_t = ptb_judge::Options::default().ngram)]
    pub ngram: usize,
    /// Flag a test item once this fraction of its n-grams is in one file.
    #[arg(long, default_value_t = ptb_judge::Options::default().coverage)]
    pub coverage: f64,
    /// Files larger than this many MiB are not scanned (a note says so).
    #[arg(long, default_value_t = ptb_judge::Options::default().max_file_bytes >> 20)]
    pub max_file_mib: u64,
}

fn env(k: &str) -> Option<PathBuf> {
    std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let need = |v: Option<PathBuf>, flag: &str, var: &str| {
        v.ok_or_else(|| miette::miette!(help = "inside a judge stage ptb sets it; outside, pass the flag", "no {flag} (nor ${var})"))
    };
    if !(a.coverage > 0.0 && a.coverage <= 1.0) || a.ngram == 0 {
        return Err(miette::miette!("--coverage must be in (0, 1] and --ngram at least 1"));
    }
    let job = ptb_judge::JudgeJob {
        base: need(a.base.or_else(|| env("PTB_INPUT_MODEL")), "--base", "PTB_INPUT_MODEL")?,
        agent: need(a.agent.or_else(|| env("PTB_INPUT_AGENT")), "--agent", "PTB_INPUT_AGENT")?,
        instruct: a.instruct.or_else(|| env("PTB_INPUT_INSTRUCT")),
        data: a.data.or_else(|| env("PTB_INPUT_DATA")),
        bench: a.bench.or_else(|| std::env::var("PTB_BENCHMARK").ok()).ok_or_else(|| miette::miette!("no --bench (nor $PTB_BENCHMARK)"))?,
        out: need(a.out.or_else(|| env("PTB_OUT")), "--out", "PTB_OUT")?,
        options: ptb_judge::Options { ngram: a.ngram, coverage: a.coverage, max_file_bytes: a.max_file_mib << 20, ..Default::default() },
    };
    let v = ptb_judge::run(&job).map_err(|e| miette::miette!("{e}"))?;
    for f in &v.findings {
        let sev = if f.is_flag() { "FLAG" } else { "note" };
        eprintln!("{sev} {:?}/{}: {}", f.kind, f.detector, f.message);
    }
    let flags = v.findings.iter().filter(|f| f.is_flag()).count();
    eprintln!("judge: {} ({flags} flags, {} notes); {}", v.verdict, v.findings.len() - flags, job.out.join("verdict.json").display());
    // A flagged run is a verdict, not a failure: the stage succeeds and the report reads it.
    Ok(ExitCode::SUCCESS)
}
