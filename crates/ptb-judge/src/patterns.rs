//! Code that loads a benchmark's test split. The patterns are data, one
//! file per benchmark in `patterns/` (a regular expression per line, `#`
//! comments), compiled into the binary so a judge's behaviour is fixed by
//! its version.

use regex::Regex;

const FILES: &[(&str, &str)] = &[
    ("gsm8k", include_str!("../patterns/gsm8k.txt")),
    ("aime2025", include_str!("../patterns/aime2025.txt")),
    ("humaneval", include_str!("../patterns/humaneval.txt")),
    ("gpqamain", include_str!("../patterns/gpqamain.txt")),
    ("bfcl", include_str!("../patterns/bfcl.txt")),
    ("arenahardwriting", include_str!("../patterns/arenahardwriting.txt")),
    ("healthbench", include_str!("../patterns/healthbench.txt")),
];

/// A compiled pattern and where it is written (`patterns/gsm8k.txt:3`).
pub struct Pattern {
    pub re: Regex,
    pub source: String,
}

/// The patterns of `bench` (none for a benchmark without a file).
pub fn for_bench(bench: &str) -> Vec<Pattern> {
    parse(bench, FILES.iter().find(|(b, _)| *b == bench).map_or("", |(_, t)| t))
}

/// Parse a pattern file; a line that is not a valid regex is a bug in the
/// shipped file, caught by the test that compiles every file.
pub fn parse(name: &str, text: &str) -> Vec<Pattern> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|(i, l)| Some(Pattern { re: Regex::new(l.trim()).ok()?, source: format!("patterns/{name}.txt:{}", i + 1) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_pattern_compiles() {
        for (name, text) in FILES {
            let lines = text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count();
            assert!(lines > 0, "{name} has no patterns");
            assert_eq!(parse(name, text).len(), lines, "a pattern in patterns/{name}.txt does not compile");
        }
    }
}
