// Shared helpers for the bench_* integration tests (included with `mod`).
#![allow(dead_code)]

use ptb_bench::check::{self, CheckReport};
use ptb_bench::{BenchError, BenchId};
use std::path::Path;

/// PTB_BENCH_ALLOW_MISSING_DATA=1: the environment deliberately has no
/// fetched data, and tests that need it are reported skipped.
fn missing_data_allowed() -> bool {
    std::env::var("PTB_BENCH_ALLOW_MISSING_DATA").as_deref() == Ok("1")
}

/// The fetched data root when every file in `needs` (relative to it) is
/// there; `None` when missing data is allowed; otherwise the test fails
/// with the fetch command.
pub fn fetched_data(needs: &[&str]) -> Option<std::path::PathBuf> {
    let d = ptb_bench::data::data_dir(None);
    if needs.iter().all(|f| d.join(f).is_file()) {
        Some(d)
    } else if missing_data_allowed() {
        None
    } else {
        panic!("benchmark data missing in {}: run `bash scripts/bench/fetch-data.sh`", d.display())
    }
}

/// Run `bench check` the way a user does; missing data fails the test with
/// the fetch instructions, unless PTB_BENCH_ALLOW_MISSING_DATA=1 says the
/// environment deliberately has no data (then the test is reported skipped).
pub fn run_check(bench: BenchId, data: Option<&Path>) -> Option<CheckReport> {
    match check::run(bench, data) {
        Ok(r) => Some(r),
        Err(e @ BenchError::DataMissing { .. }) => {
            if missing_data_allowed() {
                eprintln!("skipped: {e}");
                None
            } else {
                panic!("{e}\n(set PTB_BENCH_ALLOW_MISSING_DATA=1 to skip tests that need fetched data)");
            }
        }
        Err(e) => panic!("bench check {bench} failed to run: {e}"),
    }
}

/// The `N/M` figure printed on the report line whose name contains `needle`.
pub fn figure(report: &CheckReport, needle: &str) -> String {
    let text = report.to_string();
    let line = text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line containing {needle:?} in:\n{text}"));
    line.split_whitespace()
        .find(|w| w.contains('/') && w.split('/').all(|p| p.parse::<usize>().is_ok()))
        .unwrap_or_else(|| panic!("no N/M on line {line:?}"))
        .to_string()
}
