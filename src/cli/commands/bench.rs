use super::*;

pub fn run(cmd: crate::cli::BenchCommand) -> Result<ExitCode> {
    match cmd {
        crate::cli::BenchCommand::Check { bench, data } => Ok(bench_check(&bench, data.as_deref())),
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
