//! `limit_repetitions` must give the reference's output on the inputs in
//! tests/fixtures/bench/limit_repetitions.jsonl (made by running the
//! reference's Python function: scripts/bench/make-repetition-fixture.py).

use ptb_bench::repetition::{MAX_REPETITIONS, limit_repetitions};

#[derive(serde::Deserialize)]
struct Case {
    input: String,
    output: String,
}

#[test]
fn matches_reference_outputs() {
    let cases: Vec<Case> = ptb_bench::data::read_jsonl(std::path::Path::new("tests/fixtures/bench/limit_repetitions.jsonl")).unwrap();
    assert_eq!(cases.len(), 50);
    let changed = cases.iter().filter(|c| c.input != c.output).count();
    assert!(changed >= 20, "fixture must exercise the cutting, {changed} cases change");
    let mismatches: Vec<usize> = cases.iter().enumerate().filter(|(_, c)| limit_repetitions(&c.input, MAX_REPETITIONS) != c.output).map(|(i, _)| i).collect();
    assert!(mismatches.is_empty(), "cases differing from the reference: {mismatches:?}");
}
