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
    /// The agent's kept /work (default: $PTB_INPUT_WORKSPACE; none: only the output is read).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// The agent stage's log, scanned as its trace (default: $PTB_INPUT_AGENT_LOG).
    #[arg(long)]
    pub agent_log: Option<PathBuf>,
    /// Words per n-gram of the contamination index (default: the stage's policy, else 13).
    #[arg(long)]
    pub ngram: Option<u32>,
    /// Flag a test item once this fraction of its n-grams is in one file (default: the policy's, else 0.5).
    #[arg(long)]
    pub coverage: Option<f64>,
    /// Files larger than this many MiB are not scanned (default: the policy's, else 256).
    #[arg(long)]
    pub max_file_mib: Option<u64>,
    /// The LLM reviewer (none without a URL and model: the detectors alone).
    #[command(flatten)]
    pub judge: crate::cli::LlmEndpointArgs,
    /// Independent reviews, the majority deciding (odd; default: $PTB_JUDGE_VOTES, else 1).
    #[arg(long)]
    pub votes: Option<u32>,
}

fn env(k: &str) -> Option<PathBuf> {
    std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let need = |v: Option<PathBuf>, flag: &str, var: &str| {
        v.ok_or_else(|| miette::miette!(help = "inside a judge stage ptb sets it; outside, pass the flag", "no {flag} (nor ${var})"))
    };
    // The stage's policy ($PTB_JUDGE_POLICY, from the spec), flags over it.
    let mut policy = ptb_judge::policy_from_env().map_err(|e| miette::miette!(help = "it is set by ptb apply from the judge stage's `policy`", "{e}"))?;
    policy.ngram = a.ngram.unwrap_or(policy.ngram);
    policy.coverage = a.coverage.unwrap_or(policy.coverage);
    policy.max_file_mib = a.max_file_mib.unwrap_or(policy.max_file_mib);
    policy.check().map_err(|e| miette::miette!("{e} (--ngram, --coverage)"))?;
    let mut llm = ptb_judge::reviewer_from_env(&policy).map_err(|e| miette::miette!("{e}"))?;
    let stage = llm.as_ref().map(|r| r.endpoint.clone());
    if let Some(endpoint) = a.judge.over(stage) {
        llm = Some(match llm {
            Some(r) => ptb_judge::llm::Reviewer { endpoint, ..r },
            None => ptb_judge::llm::Reviewer {
                endpoint,
                votes: 1,
                rule: policy.llm,
                model: std::env::var("PTB_MODEL").unwrap_or_default(),
                task: env("PTB_INPUT_TASK_MD"),
            },
        });
    }
    if a.votes.is_some() && llm.is_none() {
        return Err(miette::miette!(help = "give the reviewer with --judge-url and --judge-model", "--votes without an LLM reviewer"));
    }
    if let Some(r) = llm.as_mut() {
        r.votes = a.votes.unwrap_or(r.votes);
        if r.votes % 2 == 0 {
            return Err(miette::miette!(help = "a majority needs an odd number of reviews", "--votes {} is even", r.votes));
        }
    }
    let job = ptb_judge::JudgeJob {
        base: need(a.base.or_else(|| env("PTB_INPUT_MODEL")), "--base", "PTB_INPUT_MODEL")?,
        agent: need(a.agent.or_else(|| env("PTB_INPUT_AGENT")), "--agent", "PTB_INPUT_AGENT")?,
        instruct: a.instruct.or_else(|| env("PTB_INPUT_INSTRUCT")),
        data: a.data.or_else(|| env("PTB_INPUT_DATA")),
        bench: a.bench.or_else(|| std::env::var("PTB_BENCHMARK").ok()).ok_or_else(|| miette::miette!("no --bench (nor $PTB_BENCHMARK)"))?,
        out: need(a.out.or_else(|| env("PTB_OUT")), "--out", "PTB_OUT")?,
        options: ptb_judge::Options::from_policy(&policy),
        kept: ptb_judge::kept::Kept {
            workspace: a.workspace.or_else(|| env("PTB_INPUT_WORKSPACE")),
            manifest: env("PTB_INPUT_WORKSPACE_JSON"),
            log: a.agent_log.or_else(|| env("PTB_INPUT_AGENT_LOG")),
        },
        llm,
    };
    let v = ptb_judge::run(&job).map_err(|e| miette::miette!("{e}"))?;
    for f in &v.findings {
        let sev = if f.is_flag() { "FLAG" } else { "note" };
        eprintln!("{sev} {:?}/{}: {}", f.kind, f.detector, f.message);
    }
    if let Some(l) = &v.llm {
        eprintln!(
            "LLM reviewer {}: {} review(s), {} replies asked, {} from the cache; bundle {} bytes",
            l.model,
            l.votes.len(),
            l.replies_requested,
            l.replies_cached,
            l.bundle_bytes
        );
    }
    let flags = v.findings.iter().filter(|f| f.is_flag()).count();
    eprintln!("judge: {} ({flags} flags, {} notes); {}", v.verdict, v.findings.len() - flags, job.out.join("verdict.json").display());
    // A flagged run is a verdict, not a failure: the stage succeeds and the report reads it.
    Ok(ExitCode::SUCCESS)
}
