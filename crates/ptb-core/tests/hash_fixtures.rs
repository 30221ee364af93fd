//! Hash fixtures pin the key schema: a fixed spec and fixed pins give
//! fixed keys. If one of these changes, the set or encoding of hashed
//! inputs changed: bump `hash::KEY_SCHEMA` and update docs/hashing.md.
//! (An eval running `ptb eval` also moves when `plan::HARNESS_VERSION` is
//! bumped: an input's value, not the schema.)

use ptb_core::plan::cell_stages;
use ptb_core::resolve::{Pin, Pins};
use ptb_core::spec::parse_str;
use std::path::Path;

const SPEC: &str = r#"experiment fixture
model m path="models/m" arch=qwen3
benchmark gsm8k data="data/gsm8k.jsonl" weight=1.0
agent claude { command "scripts/agent.sh" "--fast"; env MODEL="opus"; secret ANTHROPIC_API_KEY; }
stage agent budget="10h" { resources gpus=1; }
stage judge budget="30m" { command "scripts/judge.sh"; }
stage eval budget="2h" { command "scripts/eval.sh"; }
matrix { seeds 1; }
"#;

fn pins() -> Pins {
    let h = |c: char| Pin { hash: Some(format!("sha256:{}", c.to_string().repeat(64))), missing: None };
    Pins(
        [
            ("model/m".to_string(), h('a')),
            ("benchmark/gsm8k".to_string(), h('b')),
            ("script/scripts/agent.sh".to_string(), h('c')),
            ("script/scripts/judge.sh".to_string(), h('d')),
            ("script/scripts/eval.sh".to_string(), h('e')),
        ]
        .into(),
    )
}

#[test]
fn known_spec_gives_known_keys() {
    let exp = parse_str("fixture.kdl", SPEC, Path::new("/anywhere")).unwrap();
    let stages = cell_stages(&exp, &pins(), &exp.cells[0]);
    let keys: Vec<(&str, String)> = stages.iter().map(|s| (s.kind.name(), s.key.0.clone())).collect();
    insta::assert_debug_snapshot!(keys);
}

#[test]
fn keys_do_not_depend_on_where_the_repo_lives_or_on_secret_values() {
    let a = parse_str("fixture.kdl", SPEC, Path::new("/home/alice/ptb/experiments")).unwrap();
    let b = parse_str("fixture.kdl", SPEC, Path::new("/srv/ci/ptb/experiments")).unwrap();
    let ka: Vec<_> = cell_stages(&a, &pins(), &a.cells[0]).into_iter().map(|s| s.key).collect();
    let kb: Vec<_> = cell_stages(&b, &pins(), &b.cells[0]).into_iter().map(|s| s.key).collect();
    assert_eq!(ka, kb);
    let inputs = &cell_stages(&a, &pins(), &a.cells[0])[0].inputs;
    assert!(inputs.0.keys().all(|k| !k.contains("ANTHROPIC")), "secret names or values hashed: {inputs:?}");
}

#[test]
fn every_input_changes_the_key_of_exactly_the_stages_that_read_it() {
    let exp = parse_str("fixture.kdl", SPEC, Path::new("/x")).unwrap();
    let base: Vec<_> = cell_stages(&exp, &pins(), &exp.cells[0]).into_iter().map(|s| s.key).collect();
    let changed = |name: &str| {
        let mut p = pins();
        p.0.insert(name.to_string(), Pin { hash: Some("sha256:changed".into()), missing: None });
        let ks: Vec<_> = cell_stages(&exp, &p, &exp.cells[0]).into_iter().map(|s| s.key).collect();
        ["agent", "judge", "eval"].into_iter().zip(ks.iter().zip(&base)).filter(|(_, (a, b))| a != b).map(|(n, _)| n).collect::<Vec<_>>()
    };
    // The model feeds the agent, and so everything downstream.
    assert_eq!(changed("model/m"), ["agent", "judge", "eval"]);
    // Benchmark data is never seen by the agent.
    assert_eq!(changed("benchmark/gsm8k"), ["judge", "eval"]);
    assert_eq!(changed("script/scripts/judge.sh"), ["judge"]);
    assert_eq!(changed("script/scripts/eval.sh"), ["eval"]);
    assert_eq!(changed("script/scripts/agent.sh"), ["agent", "judge", "eval"]);
}

#[test]
fn the_llm_judge_is_an_input_of_the_judged_evals_only() {
    let with = |judge: &str, bench: &str| {
        let spec = SPEC.replace("benchmark gsm8k", &format!("benchmark {bench}")).replace(
            "stage eval budget=\"2h\" { command \"scripts/eval.sh\"; }",
            &format!("stage eval budget=\"2h\" {{ command \"scripts/eval.sh\"; {judge} }}"),
        );
        let exp = parse_str("fixture.kdl", &spec, Path::new("/x")).unwrap();
        let mut p = pins();
        p.0.insert(format!("benchmark/{bench}"), p.0["benchmark/gsm8k"].clone());
        cell_stages(&exp, &p, &exp.cells[0]).into_iter().map(|s| s.key).collect::<Vec<_>>()
    };
    let a = r#"llm-judge url="https://api.openai.com/v1" model="gpt-5-mini""#;
    let b = r#"llm-judge url="https://api.openai.com/v1" model="gpt-5""#;
    let key_var = r#"llm-judge url="https://api.openai.com/v1" model="gpt-5-mini" api-key-env="OTHER_KEY" concurrency=2"#;
    // GSM8K is scored by rule: adding or changing a judge reruns nothing, and
    // its keys are those of a spec without one.
    assert_eq!(with(a, "gsm8k"), with("", "gsm8k"));
    assert_eq!(with(a, "gsm8k"), with(b, "gsm8k"));
    // HealthBench reads the judge: only its eval stage changes.
    let (ha, hb) = (with(a, "healthbench"), with(b, "healthbench"));
    assert_eq!(ha[..2], hb[..2]);
    assert_ne!(ha[2], hb[2]);
    assert_ne!(ha[2], with("", "healthbench")[2]);
    // Where the key lives and how many requests fly at once change no answer.
    assert_eq!(with(key_var, "healthbench"), ha);
}

/// The LLM reviewer of the judge stage: its endpoint, votes, the policy's
/// `llm` rule and the reviewer's version move the judge's key and nothing
/// else; a judge without one keeps the key it had before reviewers existed
/// (none of these inputs is present).
#[test]
fn the_llm_reviewer_is_an_input_of_the_judge_only() {
    use ptb_core::plan::{BuiltinVersions, cell_stages_with};
    let keys = |judge: &str, v: BuiltinVersions| {
        let spec = SPEC.replace(r#"command "scripts/judge.sh";"#, &format!(r#"command "ptb" "judge"; {judge}"#));
        let exp = parse_str("fixture.kdl", &spec, Path::new("/x")).unwrap();
        cell_stages_with(&exp, &pins(), &exp.cells[0], v).into_iter().map(|s| (s.key, s.inputs)).collect::<Vec<_>>()
    };
    let now = BuiltinVersions::CURRENT;
    let none = keys("", now);
    assert!(none[1].1.0.keys().all(|k| !k.starts_with("llm_judge") && k != "policy.llm"), "{:?}", none[1].1.0);
    let reviewed = r#"llm-judge url="https://api.openai.com/v1" model="gpt-5.4""#;
    let base = keys(reviewed, now);
    assert_eq!(base[1].1.0["llm_judge.votes"], "1");
    assert_eq!(base[1].1.0["policy.llm"], "cited");
    assert_eq!(base[1].1.0["llm_judge.reviewer"], ptb_core::plan::REVIEWER_VERSION);
    assert_ne!(base[1].0, none[1].0);
    for changed in [
        keys(r#"llm-judge url="https://api.openai.com/v1" model="gpt-5.6""#, now),
        keys(r#"llm-judge url="https://judge.example/v1" model="gpt-5.4""#, now),
        keys(r#"llm-judge url="https://api.openai.com/v1" model="gpt-5.4" votes=3"#, now),
        keys(&format!(r#"{reviewed}; policy llm="any""#), now),
        keys(reviewed, BuiltinVersions { reviewer: "999", ..now }),
    ] {
        assert_eq!((&changed[0].0, &changed[2].0), (&base[0].0, &base[2].0), "only the judge moves");
        assert_ne!(changed[1].0, base[1].0);
    }
    // Neither the key's variable nor the concurrency changes an answer.
    assert_eq!(keys(r#"llm-judge url="https://api.openai.com/v1" model="gpt-5.4" api-key-env="K2" concurrency=2"#, now)[1].0, base[1].0);
    // A reviewer bump moves no judge without a reviewer.
    assert_eq!(keys("", BuiltinVersions { reviewer: "999", ..now })[1].0, none[1].0);
}

/// The judge reads the instruct model when the spec declares one, and the
/// built-in judge's version when the stage runs `ptb judge`: each moves the
/// judge's key and nothing else.
#[test]
fn the_instruct_model_and_the_builtin_judge_are_inputs_of_the_judge_only() {
    let keys = |spec: &str, p: &Pins| {
        let exp = parse_str("fixture.kdl", spec, Path::new("/x")).unwrap();
        cell_stages(&exp, p, &exp.cells[0]).into_iter().map(|s| (s.key, s.inputs)).collect::<Vec<_>>()
    };
    let with_instruct = SPEC.replace(r#"arch=qwen3"#, r#"arch=qwen3 { instruct path="models/m-it"; }"#);
    let mut p = pins();
    p.0.insert("model/m/instruct".into(), Pin { hash: Some(format!("sha256:{}", "f".repeat(64))), missing: None });
    let (plain, inst) = (keys(SPEC, &p), keys(&with_instruct, &p));
    assert_eq!(inst[2].0, plain[2].0, "the eval of an agent run does not read the instruct model");
    assert_eq!(inst[0].0, plain[0].0);
    assert_ne!(inst[1].0, plain[1].0);
    assert_eq!(inst[1].1.0["model.instruct"], format!("sha256:{}", "f".repeat(64)));
    let mut q = p.clone();
    q.0.insert("model/m/instruct".into(), Pin { hash: Some("sha256:changed".into()), missing: None });
    assert_ne!(keys(&with_instruct, &q)[1].0, inst[1].0);

    let builtin = SPEC.replace(r#"command "scripts/judge.sh";"#, r#"command "ptb" "judge";"#);
    let b = keys(&builtin, &p);
    assert_eq!(b[1].1.0["judge"], ptb_core::plan::JUDGE_VERSION);
    assert!(!plain[1].1.0.contains_key("judge"), "a script judge has no built-in version");
}

/// The evaluator's version is ptb's evaluation code: it enters the key of an
/// eval stage that runs `ptb eval` here, and of nothing else. An eval that
/// runs the reference harness's image (or a script) keeps its key when ptb's
/// evaluator changes, so a ptb upgrade does not rerun it.
#[test]
fn the_evaluator_version_is_an_input_of_builtin_evals_only() {
    use ptb_core::plan::{BuiltinVersions, cell_stages_with};
    let eval = r#"stage eval budget="2h" { command "scripts/eval.sh"; }"#;
    let reference = r#"stage eval executor=docker image="ptb/posttrainbench-eval@sha256:1111111111111111111111111111111111111111111111111111111111111111" network=bridge budget="2h" { command "/opt/posttrainbench/run-eval.sh"; }"#;
    let builtin = r#"stage eval budget="2h" { command "ptb" "eval" "--device" "cuda:0"; }"#;
    let in_image = r#"stage eval executor=docker image="ptb/ptb-cuda@sha256:2222222222222222222222222222222222222222222222222222222222222222" budget="2h" { command "ptb" "eval"; }"#;
    let mut p = pins();
    p.0.insert(
        "image/ptb/posttrainbench-eval@sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
        Pin { hash: Some(format!("sha256:{}", "1".repeat(64))), missing: None },
    );
    p.0.insert(
        "image/ptb/ptb-cuda@sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
        Pin { hash: Some(format!("sha256:{}", "2".repeat(64))), missing: None },
    );
    let bumped = BuiltinVersions { harness: "999", ..BuiltinVersions::CURRENT };
    let eval_key = |stage: &str, v: BuiltinVersions| {
        let exp = parse_str("fixture.kdl", &SPEC.replace(eval, stage), Path::new("/x")).unwrap();
        let s = cell_stages_with(&exp, &p, &exp.cells[0], v);
        assert_eq!(s[2].kind.name(), "eval");
        assert!(s[2].needs.iter().all(|n| p.0.contains_key(n)), "a pin is missing: {:?}", s[2].needs);
        (s[2].key.clone(), s[2].inputs.get("harness").map(str::to_string))
    };
    for stage in [eval, reference, in_image] {
        let (now, after) = (eval_key(stage, BuiltinVersions::CURRENT), eval_key(stage, bumped));
        assert_eq!(now, after, "an evaluator bump moved the key of `{stage}`");
        assert_eq!(now.1, None, "`{stage}` hashes ptb's evaluator version");
    }
    let (now, after) = (eval_key(builtin, BuiltinVersions::CURRENT), eval_key(builtin, bumped));
    assert_ne!(now.0, after.0, "`ptb eval`'s key ignores the evaluator's version");
    assert_eq!(now.1.as_deref(), Some(ptb_core::plan::HARNESS_VERSION));
    assert_eq!(after.1.as_deref(), Some("999"));
}
