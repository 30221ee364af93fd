use super::*;

pub fn run(cmd: crate::cli::BenchCommand) -> Result<ExitCode> {
    match cmd {
        crate::cli::BenchCommand::Check { bench, data } => Ok(bench_check(&bench, data.as_deref())),
        crate::cli::BenchCommand::Score { bench, completions, data, json } => bench_score(&bench, &completions, data.as_deref(), json),
    }
}

/// `ptb bench score`.
fn bench_score(bench: &str, completions: &std::path::Path, data: Option<&std::path::Path>, json: bool) -> Result<ExitCode> {
    use ptb_bench::task::TaskOptions;
    use ptb_bench::{BenchId, data as bench_data, score_file};
    let b: BenchId = bench.parse().map_err(|e| miette::miette!(help = "e.g. ptb bench score gsm8k --completions vllm.jsonl", "{e}"))?;
    let mut opts = TaskOptions::default();
    let dir = match (b, data) {
        // GPQA's data is a CSV the user supplies (gated).
        (BenchId::GpqaMain, Some(p)) if p.is_file() => {
            opts.gpqa_csv = Some(p.to_path_buf());
            bench_data::data_dir(None)
        }
        _ => bench_data::data_dir(data),
    };
    let report = score_file::score_completions(b, &dir, completions, &opts).map_err(|e| {
        let help = match &e {
            ptb_bench::BenchError::DataMissing { .. } => "fetch it with `bash scripts/bench/fetch-data.sh`, or point --data at it",
            _ => "each line is {\"id\": ITEM_ID, \"completion\": TEXT}; ids are those of the eval's results.jsonl",
        };
        miette::miette!(help = help, "{e}")
    })?;
    if json {
        println!("{}", serde_json::to_string(&report).into_diagnostic()?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &report.items {
        // One line per item whatever the answer holds (HumanEval's is code).
        let answer: String = r.answer.lines().next().unwrap_or("").chars().take(60).collect();
        println!("{b}  {}  {}  {answer}", r.id, r.score);
    }
    let t = &report.total;
    println!("{b}: accuracy {:.4} ± {:.4} over {} of {} items", t.accuracy, t.stderr, t.n, report.benchmark_items);
    Ok(ExitCode::SUCCESS)
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
