//! Every spec mistake is a diagnostic naming file, line and column, with a
//! fix where one is known; no input panics the front end.

use ptb_core::spec::{SpecError, parse_str};
use std::path::Path;

const GOOD: &str = r#"experiment t
model m1 path="models/m1" arch=qwen3
benchmark gsm8k data="data/gsm8k.jsonl"
agent a { command "run.sh"; }
stage agent budget="1h"
stage eval { command "eval.sh"; }
matrix { seeds 1; }
"#;

fn errors(text: &str) -> Vec<String> {
    match parse_str("experiments/t.kdl", text, Path::new("experiments")) {
        Ok(_) => vec![],
        Err(e) => e.diagnostics().iter().map(|d| d.one_line()).collect(),
    }
}

#[test]
fn the_good_spec_parses() {
    let e = parse_str("t.kdl", GOOD, Path::new(".")).unwrap();
    assert_eq!(e.cells.len(), 1);
    assert_eq!(e.cells[0].id, "m1/gsm8k/a/seed=1");
}

#[test]
fn mistakes_are_reported_with_location_and_fix() {
    let cases = [
        ("syntax", GOOD.replace("matrix { seeds 1; }", "matrix { seeds 1; ")),
        ("unknown node", GOOD.replace("agent a", "agnet a")),
        ("unknown property", GOOD.replace("arch=qwen3", "arhc=qwen3")),
        ("wrong type", GOOD.replace("budget=\"1h\"", "budget=#true")),
        ("bad duration", GOOD.replace("budget=\"1h\"", "budget=\"1 hour\"")),
        ("unknown reference", GOOD.replace("matrix { seeds 1; }", "matrix { benchmarks gsm9k; seeds 1; }")),
        ("duplicate", GOOD.replace("agent a {", "agent a { command \"x\"; }\nagent a {")),
        ("bad hash", GOOD.replace("arch=qwen3", "arch=qwen3 sha256=\"abc\"")),
        ("unknown arch", GOOD.replace("arch=qwen3", "arch=qwen4")),
        ("unknown stage", GOOD.replace("stage eval", "stage evaluate")),
        ("missing eval", GOOD.replace("stage eval { command \"eval.sh\"; }", "")),
        ("unpinned repo", GOOD.replace("path=\"models/m1\"", "repo=\"Qwen/Qwen3-1.7B-Base\"")),
        ("exclude unknown", GOOD.replace("matrix { seeds 1; }", "matrix { seeds 1; exclude model=m2; }")),
        ("instruct missing", GOOD.replace("agent a {", "agent inst checkpoint=instruct\nagent a {")),
        (
            "judge without model",
            GOOD.replace("stage eval { command \"eval.sh\"; }", "stage eval { command \"eval.sh\"; llm-judge url=\"https://api.openai.com/v1\"; }"),
        ),
        (
            "judge url",
            GOOD.replace("stage eval { command \"eval.sh\"; }", "stage eval { command \"eval.sh\"; llm-judge url=\"api.openai.com\" model=\"gpt-5-mini\"; }"),
        ),
        ("judge outside eval", GOOD.replace("stage agent budget=\"1h\"", "stage agent budget=\"1h\" { llm-judge url=\"http://x\" model=\"m\"; }")),
        (
            "votes in eval",
            GOOD.replace("stage eval { command \"eval.sh\"; }", "stage eval { command \"eval.sh\"; llm-judge url=\"http://x\" model=\"m\" votes=3; }"),
        ),
        (
            "even votes",
            GOOD.replace(
                "stage eval { command \"eval.sh\"; }",
                "stage eval { command \"eval.sh\"; }\nstage judge { command \"ptb\" \"judge\"; llm-judge url=\"http://x\" model=\"m\" votes=2; }",
            ),
        ),
        (
            "llm rule",
            GOOD.replace(
                "stage eval { command \"eval.sh\"; }",
                "stage eval { command \"eval.sh\"; }\nstage judge { command \"ptb\" \"judge\"; policy llm=\"cite\"; }",
            ),
        ),
    ];
    let mut out = String::new();
    for (name, text) in &cases {
        let errs = errors(text);
        assert!(!errs.is_empty(), "case `{name}` parsed without error");
        out.push_str(&format!("## {name}\n{}\n", errs.join("\n")));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn a_full_report_points_at_the_source() {
    let text = GOOD.replace("matrix { seeds 1; }", "matrix { benchmarks gsm9k; seeds 1; }");
    let err = parse_str("experiments/t.kdl", &text, Path::new("experiments")).unwrap_err();
    let mut rendered = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut rendered, &err as &dyn miette::Diagnostic)
        .unwrap();
    insta::assert_snapshot!(rendered);
}

#[test]
fn a_missing_file_says_so() {
    let e = ptb_core::spec::load(Path::new("experiments/nope.kdl")).unwrap_err();
    assert!(matches!(e, SpecError::Read { .. }));
    assert!(e.to_string().contains("experiments/nope.kdl"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that make up plausible specs, so the fuzzer reaches deep
    /// into the front end instead of stopping at the tokenizer.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("experiment t\n".to_string()),
            Just("model m path=\"p\" arch=llama\n".to_string()),
            Just("model m repo=\"o/n\" revision=\"r\" sha256=\"00\"\n".to_string()),
            Just("benchmark b data=\"d\" weight=0.5\n".to_string()),
            Just("agent a { command \"x\"; env K=\"v\"; secret S; }\n".to_string()),
            Just("agent r checkpoint=instruct\n".to_string()),
            Just("stage agent budget=\"1h\" { resources gpus=1 memory=\"4G\"; }\n".to_string()),
            Just("stage eval { command \"e\"; }\n".to_string()),
            Just("stage judge executor=docker image=\"i\" { command \"j\"; }\n".to_string()),
            Just("matrix { models \"*\"; seeds 1 2; exclude seed=2; }\n".to_string()),
            Just("include \"nope.kdl\"\n".to_string()),
            "[a-z{}=\"; 0-9#\\n-]{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
            let _ = parse_str("f.kdl", &s, Path::new("/nonexistent"));
        }

        #[test]
        fn never_panics_on_spec_like_text(parts in proptest::collection::vec(fragment(), 0..12)) {
            let text: String = parts.concat();
            match parse_str("f.kdl", &text, Path::new("/nonexistent")) {
                Ok(e) => prop_assert!(!e.cells.is_empty()),
                Err(e) => {
                    // Every diagnostic must render with a location.
                    for d in e.diagnostics() {
                        prop_assert!(d.one_line().starts_with("f.kdl:") || d.one_line().contains(".kdl:"));
                    }
                }
            }
        }
    }
}

/// Parsing does no I/O of its own: includes come from the caller's
/// sources, so a spec can be parsed from memory; a hub model is a reference
/// (repo, revision, where it is declared), found in the store later.
#[test]
fn parsing_reads_includes_through_its_sources() {
    use ptb_core::spec::{SpecSources, parse};
    use std::collections::HashMap;
    use std::path::PathBuf;
    struct Memory(HashMap<PathBuf, String>);
    impl SpecSources for Memory {
        fn include(&self, path: &Path) -> std::io::Result<(String, PathBuf)> {
            self.0.get(path).map(|t| (t.clone(), path.to_path_buf())).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }
    let common = "model q repo=\"Qwen/Qwen3-1.7B-Base\" revision=\"abc\" arch=qwen3\nbenchmark gsm8k data=\"d\"\nagent a { command \"run.sh\"; }\nstage agent\nstage eval { command \"eval.sh\"; }\n";
    let sources = Memory([(PathBuf::from("/nowhere/common.kdl"), common.to_string())].into());
    let e = parse("t.kdl", "experiment t\ninclude \"common.kdl\"\nmatrix { seeds 1; }\n", Path::new("/nowhere"), None, &sources).unwrap();
    let hub = e.models[0].base.hub.as_ref().expect("a hub model");
    assert_eq!((hub.repo.as_str(), hub.revision.as_str(), hub.declared_at.as_str()), ("Qwen/Qwen3-1.7B-Base", "abc", "/nowhere/common.kdl:1:1"));
    let err = parse("t.kdl", "experiment t\ninclude \"missing.kdl\"\n", Path::new("/nowhere"), None, &sources).unwrap_err();
    assert!(err.diagnostics().iter().any(|d| d.one_line().contains("cannot read included file /nowhere/missing.kdl")), "{err:?}");
}

/// A container without network cannot reach its LLM judge: said at plan
/// time, at the `llm-judge` line, with the fix, instead of after hours of
/// generation.
#[test]
fn a_judge_behind_a_container_without_network_is_a_diagnostic() {
    let spec = |network: &str| {
        format!(
            "experiment t\nmodel m1 path=\"models/m1\" arch=qwen3\nbenchmark healthbench data=\"d\"\nagent a {{ command \"run.sh\"; }}\nstage agent\nstage eval executor=docker image=\"e:1\"{network} {{\n    command \"eval\"\n    llm-judge url=\"https://judge.example/v1\" model=\"m\"\n}}\nmatrix {{ seeds 1; }}\n"
        )
    };
    let errs = errors(&spec(""));
    assert!(
        errs.iter().any(|e| e.contains("t.kdl:8:5") && e.contains("cannot be reached from this stage's container") && e.contains("network=bridge")),
        "{errs:?}"
    );
    assert!(errors(&spec(" network=bridge")).is_empty());
}

/// What a fuzzer or a careless user can write: each a diagnostic with a
/// location, never a panic or a stack overflow.
#[test]
fn hostile_specs_get_bounded_diagnostics() {
    let deep = format!("{}{}", "a {".repeat(2_000), "}".repeat(2_000));
    let deep_comment = format!("{}{}\n{GOOD}", "/*".repeat(2_000), "*/".repeat(2_000));
    let long = "m".repeat(65_536);
    let cases: Vec<(String, &str)> = vec![
        (format!("{GOOD}\n{deep}"), "nested more than 32 levels deep"),
        (deep_comment, "nested more than 32 levels deep"),
        (GOOD.replace("agent a", &format!("agent {long}")), "at most 64 are allowed"),
        (GOOD.replace("budget=\"1h\"", "budget=\"99999999999d\""), "must be between"),
        (GOOD.replace("budget=\"1h\"", "budget=0"), "must be between"),
        (GOOD.replace("budget=\"1h\"", "budget=18446744073709551616"), "too long"),
        (GOOD.replace("budget=\"1h\"", "budget=\"1h\" grace=\"400d\""), "must be between"),
    ];
    for (text, want) in cases {
        let errs = errors(&text);
        assert!(errs.iter().any(|e| e.contains(want)), "want `{want}` in {errs:?}");
        assert!(errs.iter().all(|e| e.len() < 2_000), "a diagnostic must not echo a huge input: {}", errs[0].len());
    }
    // Braces inside strings and raw strings are not nesting.
    let braces = GOOD.replace("command \"run.sh\";", &format!("command \"run.sh\" \"{}\" #\"{}\"#;", "{".repeat(100), "{{".repeat(100)));
    assert!(errors(&braces).is_empty(), "{:?}", errors(&braces));
}

#[test]
fn include_chains_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // A chain of 40 distinct files, each including the next.
    for i in 0..40 {
        std::fs::write(dir.path().join(format!("i{i}.kdl")), format!("include \"i{}.kdl\"\n", i + 1)).unwrap();
    }
    std::fs::write(dir.path().join("i40.kdl"), "").unwrap();
    let spec = dir.path().join("t.kdl");
    std::fs::write(&spec, format!("include \"i0.kdl\"\n{GOOD}")).unwrap();
    let e = ptb_core::spec::load(&spec).unwrap_err();
    let text = e.diagnostics().iter().map(|d| d.one_line()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("includes are nested more than 16 deep"), "{text}");
}

/// `policy`, `keep` and `review`: parsed into types, each mistake located.
#[test]
fn judging_nodes() {
    let judged = GOOD.replace("stage eval {", "stage judge { command \"judge.sh\"; }\nstage eval {");
    let with = |extra: &str| format!("{judged}{extra}\n");
    let full = with("review cell=\"m1/gsm8k/a/seed=1\" verdict=flagged reason=\"loads the test split in a notebook\"")
        .replace("stage agent budget=\"1h\"", "stage agent budget=\"1h\" { keep weights-over=\"2G\"; }")
        .replace("command \"judge.sh\";", "command \"judge.sh\"; policy flag=\"tampering,substitution\" coverage=0.25 ngram=9;");
    let e = parse_str("t.kdl", &full, Path::new(".")).unwrap();
    let p = e.stages.judge.as_ref().unwrap().judge_policy();
    use ptb_core::judge::{FindingKind, Verdict};
    assert_eq!(p.flag, [FindingKind::Substitution, FindingKind::Tampering]);
    assert_eq!((p.coverage, p.ngram, p.min_words), (0.25, 9, 8));
    assert_eq!(e.stages.agent.keep.weights_over, 2 << 30);
    assert_eq!(e.reviews.len(), 1);
    assert_eq!((e.reviews[0].cell.as_str(), e.reviews[0].verdict), ("m1/gsm8k/a/seed=1", Verdict::Flagged));

    for (text, want) in [
        (judged.replace("command \"judge.sh\";", "command \"judge.sh\"; policy flag=\"contamnation\";"), "unknown finding kind `contamnation`"),
        (judged.replace("command \"judge.sh\";", "command \"judge.sh\"; policy coverage=1.5;"), "`coverage` must be in (0, 1]"),
        (judged.replace("command \"judge.sh\";", "command \"judge.sh\"; policy ngram=0;"), "`ngram` must be at least 1"),
        (judged.replace("stage eval { command \"eval.sh\"; }", "stage eval { command \"eval.sh\"; policy; }"), "`policy` belongs in the judge stage"),
        (judged.replace("stage agent budget=\"1h\"", "stage agent budget=\"1h\" { keep weights-over=\"lots\"; }"), "`weights-over` must be a size, not `lots`"),
        (with("review cell=\"m1/gsm8k/b/seed=1\" verdict=pass reason=\"x\""), "not a cell of the matrix"),
        (with("review cell=\"m1/gsm8k/a/seed=1\" verdict=ok reason=\"x\""), "unknown verdict `ok`"),
        (with("review cell=\"m1/gsm8k/a/seed=1\" verdict=pass"), "`review` needs `reason=`"),
        (with("review cell=\"m1/gsm8k/a/seed=1\" verdict=pass reason=\"x\"\nreview cell=\"m1/gsm8k/a/seed=1\" verdict=flagged reason=\"y\""), "reviewed twice"),
        (format!("{GOOD}review cell=\"m1/gsm8k/a/seed=1\" verdict=pass reason=\"x\"\n"), "no `stage judge`"),
    ] {
        let errs = errors(&text);
        assert!(errs.iter().any(|e| e.contains(want) && e.contains("t.kdl:")), "want `{want}` in {errs:#?}");
    }
}

/// `slurm` settings: parsed into the stage, refused outside a Slurm stage
/// (with the fix), and never part of a key (docs/hashing.md).
#[test]
fn slurm_settings_belong_to_slurm_stages_and_do_not_change_keys() {
    let slurm = GOOD.replace(
        "stage agent budget=\"1h\"",
        "stage agent executor=slurm budget=\"1h\" { slurm \"--exclusive\" partition=\"gpu\" account=\"lab\" qos=\"high\" constraint=\"a100\"; }",
    );
    let e = parse_str("t.kdl", &slurm, Path::new(".")).unwrap();
    let s = &e.stages.agent.slurm;
    assert_eq!(
        (s.partition.as_deref(), s.account.as_deref(), s.qos.as_deref(), s.constraint.as_deref()),
        (Some("gpu"), Some("lab"), Some("high"), Some("a100"))
    );
    assert_eq!(s.extra, ["--exclusive"]);
    assert!(e.uses_slurm());

    let bare = GOOD.replace("stage agent budget=\"1h\"", "stage agent executor=slurm budget=\"1h\"");
    let keys = |text: &str| {
        let e = parse_str("t.kdl", text, Path::new(".")).unwrap();
        ptb_core::plan::cell_stages(&e, &ptb_core::resolve::Pins::default(), &e.cells[0]).into_iter().map(|s| s.key.0).collect::<Vec<_>>()
    };
    assert_eq!(keys(&slurm), keys(&bare), "slurm settings changed a key");

    let local = GOOD.replace("stage agent budget=\"1h\"", "stage agent budget=\"1h\" { slurm partition=\"gpu\"; }");
    let errs = errors(&local);
    assert!(
        errs.iter()
            .any(|e| e.contains("t.kdl:5:") && e.contains("`slurm` settings in a stage that runs with executor=local") && e.contains("executor=\"slurm\"")),
        "{errs:?}"
    );
    let not_an_option = GOOD.replace("stage agent budget=\"1h\"", "stage agent executor=slurm budget=\"1h\" { slurm \"exclusive\"; }");
    let errs = errors(&not_an_option);
    assert!(errs.iter().any(|e| e.contains("`exclusive` is not an sbatch option") && e.contains("\"--exclusive\"")), "{errs:?}");
}

/// A hub repo and revision go into URLs: only `org/name` and a plain ref
/// are accepted, at the line that names them.
#[test]
fn hub_repos_and_revisions_that_could_change_a_url_are_refused() {
    let with = |props: &str| errors(&GOOD.replace(r#"path="models/m1""#, props));
    assert!(with(r#"repo="Qwen/Qwen3-1.7B" revision="main""#).is_empty());
    assert!(with(r#"repo="Qwen/Qwen3-1.7B" revision="refs/pr/1""#).is_empty());
    for repo in ["../x", "Qwen", "a/b/c", "a/..", "a/b?c", "/a/b", "a/b%2f"] {
        let e = with(&format!(r#"repo="{repo}" revision="main""#));
        assert!(e.iter().any(|l| l.contains("experiments/t.kdl:2:") && l.contains("`repo` must be `org/name`")), "{repo}: {e:?}");
    }
    for rev in ["", "../main", "/main", "a b", "a\\nb"] {
        let e = with(&format!(r#"repo="a/b" revision="{rev}""#));
        assert!(e.iter().any(|l| l.contains("`revision` must be a branch, a tag or a commit")), "{rev:?}: {e:?}");
    }
}
