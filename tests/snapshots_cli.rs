//! What people read: plan, why and report output, pinned by snapshots.

mod common;
use common::Project;

fn redact(s: &str, p: &Project) -> String {
    let mut s = s.replace(&p.path().display().to_string(), "[PROJECT]");
    // Times in why/plan never appear, but durations in apply output do.
    s = regex_lite(&s);
    s
}

/// Replace `(0.1s)`-style timings.
fn regex_lite(s: &str) -> String {
    s.lines()
        .map(|l| match (l.rfind(" ("), l.ends_with("s)")) {
            (Some(i), true) => format!("{} ([TIME])", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn plan_output() {
    let p = Project::demo();
    insta::assert_snapshot!("plan_fresh", redact(&p.stdout(&["plan", "experiments/demo.kdl", "--cell", "tiny-a/arith"]), &p));
    p.apply(&["-j", "2"]);
    insta::assert_snapshot!("plan_noop", redact(&p.stdout(&["plan", "experiments/demo.kdl"]), &p));
    p.edit_spec("stage judge budget=\"1m\"", "stage judge budget=\"2m\"");
    std::fs::write(p.path().join("fixtures/demo/data/spell.jsonl"), "{\"question\": \"Spell a\", \"answer\": \"a\"}\n").unwrap();
    p.edit_spec(
        "db6332dedfabced7303ad4b47a61bf5d7c6fed5f7760afb074cea78ac52a1280",
        &ptb_core::hash::hash_file(&p.path().join("fixtures/demo/data/spell.jsonl")).unwrap(),
    );
    insta::assert_snapshot!("plan_changed", redact(&p.stdout(&["plan", "experiments/demo.kdl"]), &p));
    insta::assert_snapshot!("why_changed", redact(&p.stdout(&["why", "experiments/demo.kdl", "tiny-b/spell/lazy/seed=2"]), &p));
    insta::assert_snapshot!("why_base_row", redact(&p.stdout(&["why", "experiments/demo.kdl", "tiny-b/spell/base"]), &p));
}

#[test]
fn report_output() {
    let p = Project::demo();
    p.apply(&["-j", "2"]);
    let root = env!("CARGO_MANIFEST_DIR");
    for t in ["table.md.j2", "table.tex.j2", "table.csv.j2"] {
        let out = p.stdout(&["report", "lockfiles/demo.lock", "--template", &format!("{root}/templates/{t}")]);
        insta::assert_snapshot!(t.replace('.', "_"), out.replace(root, "[ROOT]"));
    }
}

#[test]
fn missing_inputs_block_stages_and_are_listed() {
    let p = Project::demo();
    std::fs::remove_dir_all(p.path().join("fixtures/demo/models/tiny-b")).unwrap();
    let plan = p.stdout(&["plan", "experiments/demo.kdl", "--cell", "tiny-b/arith/eager"]);
    insta::assert_snapshot!("plan_missing", redact(&plan, &p));
    let o = p.run(&["apply", "experiments/demo.kdl", "--cell", "tiny-b/arith/eager"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("blocked by missing inputs"));
}

#[test]
fn spec_error_from_the_cli() {
    let p = Project::demo();
    p.edit_spec("agents eager lazy", "agents eagre lazy");
    let o = p.run(&["plan", "experiments/demo.kdl"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown agent `eagre`"), "{err}");
    assert!(err.contains("did you mean `eager`?"), "{err}");
    assert!(err.contains("experiments/demo.kdl:"), "{err}");
}

#[test]
fn the_paper_plans_on_a_machine_with_nothing() {
    // No GPU, no models, no images: planning still works and says so.
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ptb"))
        .current_dir(root)
        .args(["plan", "experiments/paper.kdl", "--store"])
        .arg(dir.path().join("store"))
        .arg("--lockfile")
        .arg(dir.path().join("paper.lock"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("1064 of 1064 cells, 3080 stages"), "{out}");
    // Each hub model is one line (no network: no lockfile pins it yet).
    assert!(
        out.contains("stage(s): model `qwen3-1.7b` (Qwen/Qwen3-1.7B-Base@main): not resolved in the lockfile; `ptb apply` resolves and fetches it"),
        "{out}"
    );
    // Blocked stages are grouped by what blocks them, with a count each, not
    // listed one by one: 12 agents × 7 benchmarks × 3 seeds use each agent image.
    assert!(out.contains("   84 stage(s): image `ptb/claude-code:opus-4.6`"), "{out}");
    assert!(out.lines().count() < 60, "{} lines:\n{out}", out.lines().count());
    // 1,008 agent runs × (10 h agent + 8 h eval) on one GPU each, plus 56 reference evals × 8 h.
    assert!(out.contains("0.0 GPU-hours for the stages to run, and 18592.0 for the blocked ones"), "{out}");
}

/// The study evaluated by the reference harness's container shares
/// everything but the eval stage with paper.kdl (paper-common.kdl): its agent
/// and judge stages have the same keys, so one store runs them once and the
/// second spec runs only its own evaluations.
#[test]
fn the_reference_evaluation_reuses_the_papers_agent_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let keys = |spec: &str| -> std::collections::BTreeMap<(String, String), String> {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ptb"))
            .current_dir(root)
            .args(["plan", spec, "--json", "--store"])
            .arg(dir.path().join("store"))
            .arg("--lockfile")
            .arg(dir.path().join(format!("{}.lock", spec.replace('/', "-"))))
            .output()
            .unwrap();
        assert!(o.status.success(), "{spec}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                ((v["cell"].as_str().unwrap().to_string(), v["stage"].as_str().unwrap().to_string()), v["key"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let (ours, reference) = (keys("experiments/paper.kdl"), keys("experiments/paper-reference.kdl"));
    assert_eq!(ours.len(), 3080);
    assert_eq!(ours.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
    for ((cell, stage), key) in &ours {
        let same = reference[&(cell.clone(), stage.clone())] == *key;
        assert_eq!(same, stage != "eval", "{cell} {stage}");
    }
}
