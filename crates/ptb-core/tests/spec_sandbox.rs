//! The `sandbox` node: typed settings, a diagnostic for every bad value,
//! and every setting in the key of exactly the stages it governs.

use ptb_core::plan::{cell_stages, effective_runner};
use ptb_core::resolve::{Pin, Pins};
use ptb_core::spec::{Capability, Experiment, PidsLimit, RootFs, Sandbox, SandboxUser, StageKind, parse_str};
use std::path::Path;

const SPEC: &str = r#"experiment t
model m path="models/m" arch=qwen3
benchmark gsm8k data="data/gsm8k.jsonl"
agent a image="agent:1" { command "agent"; }
agent b image="agent:1" {
    command "agent"
    sandbox user="root" root-fs="writable" pids=16384 no-new-privileges=#false { cap-add "SYS_PTRACE" "cap_net_raw"; }
}
stage agent executor=docker budget="1h" {
    sandbox pids="unlimited"
}
stage eval executor=docker image="eval:1" { command "eval"; }
matrix { seeds 1; }
"#;

fn parse(text: &str) -> Experiment {
    parse_str("experiments/t.kdl", text, Path::new("experiments")).unwrap()
}

fn errors(text: &str) -> Vec<String> {
    match parse_str("experiments/t.kdl", text, Path::new("experiments")) {
        Ok(_) => vec![],
        Err(e) => e.diagnostics().iter().map(|d| format!("{} help: {}", d.one_line(), d.help.clone().unwrap_or_default())).collect(),
    }
}

fn sandbox_of(exp: &Experiment, agent: &str, stage: StageKind) -> Sandbox {
    let cell = exp.cells.iter().find(|c| exp.agent(c).name == agent).unwrap();
    effective_runner(exp, cell, exp.stages.get(stage).unwrap()).sandbox.unwrap_or_default()
}

#[test]
fn settings_parse_into_types_and_an_agent_sandbox_wins_over_the_stage() {
    let exp = parse(SPEC);
    // Agent `a` has none: the agent stage's applies.
    assert_eq!(sandbox_of(&exp, "a", StageKind::Agent), Sandbox { pids: PidsLimit::Unlimited, ..Sandbox::default() });
    let b = sandbox_of(&exp, "b", StageKind::Agent);
    assert_eq!(b.user, SandboxUser::Root);
    assert_eq!(b.root_fs, RootFs::Writable);
    assert_eq!(b.pids, PidsLimit::Limit(16384));
    assert!(!b.no_new_privileges);
    assert_eq!(b.cap_add.iter().map(|c| c.name()).collect::<Vec<_>>(), ["NET_RAW", "SYS_PTRACE"]);
    // The eval stage declares nothing: the hardened default.
    assert_eq!(sandbox_of(&exp, "b", StageKind::Eval), Sandbox::default());
    assert_eq!(Sandbox::default().user, SandboxUser::Ptb);
    assert!(Capability::parse("SYS_ADMIN").is_some());
}

#[test]
fn every_bad_value_is_a_diagnostic_at_its_line_with_a_fix() {
    let with = |sandbox: &str| SPEC.replace("sandbox pids=\"unlimited\"", sandbox);
    let cases = [
        ("sandbox user=\"nobody\"", "unknown sandbox user `nobody`", "UID:GID"),
        ("sandbox root-fs=\"rw\"", "unknown root-fs `rw`", "`read-only`, `writable`"),
        ("sandbox pids=0", "`pids` must be a positive integer or \"unlimited\"", "pids=16384"),
        ("sandbox pids=\"lots\"", "`pids` must be a positive integer", "default is 4096"),
        ("sandbox no-new-privileges=\"no\"", "must be #true or #false", ""),
        ("sandbox { cap-add \"SYS_PTRAC\"; }", "unknown capability `SYS_PTRAC`", "did you mean `SYS_PTRACE`?"),
        ("sandbox { cap-add \"ALL\"; }", "unknown capability", "without `CAP_`"),
        ("sandbox { cap-drop \"NET_RAW\"; }", "unknown child `cap-drop` of `sandbox`", "cap-add"),
        ("sandbox usr=\"root\"", "unknown property `usr` on `sandbox`", "did you mean `user`?"),
    ];
    for (node, message, help) in cases {
        let errs = errors(&with(node));
        assert!(errs.iter().any(|e| e.starts_with("experiments/t.kdl:10:") && e.contains(message) && e.contains(help)), "{node}: {errs:?}");
    }
}

#[test]
fn a_sandbox_on_a_local_stage_or_an_imageless_agent_is_refused() {
    let local = SPEC.replace("stage eval executor=docker image=\"eval:1\" { command \"eval\"; }", "stage eval { command \"eval\"; sandbox user=\"root\"; }");
    let errs = errors(&local);
    assert!(
        errs.iter().any(|e| e.contains("t.kdl:12:") && e.contains("`sandbox` applies to container stages, but stage `eval` runs on the local executor")),
        "{errs:?}"
    );
    let imageless = SPEC.replace("agent a image=\"agent:1\" { command \"agent\"; }", "agent a { command \"agent\"; sandbox user=\"root\"; }");
    let errs = errors(&imageless);
    assert!(errs.iter().any(|e| e.contains("t.kdl:4:") && e.contains("agent `a` has no image")), "{errs:?}");
    // Through Slurm, a stage with an image still runs in a container (on its node).
    let slurm = SPEC.replace("stage agent executor=docker", "stage agent executor=slurm").replace(
        "stage eval executor=docker image=\"eval:1\" { command \"eval\"; }",
        "stage eval executor=slurm image=\"eval:1\" { command \"eval\"; sandbox user=\"root\"; }",
    );
    let exp = parse(&slurm);
    assert_eq!(sandbox_of(&exp, "a", StageKind::Eval).user, SandboxUser::Root);
    assert_eq!(sandbox_of(&exp, "a", StageKind::Agent).pids, PidsLimit::Unlimited);
    let plain = slurm.replace("stage eval executor=slurm image=\"eval:1\"", "stage eval executor=slurm");
    assert!(errors(&plain).iter().any(|e| e.contains("runs on the slurm executor")), "{:?}", errors(&plain));
}

fn pins() -> Pins {
    let h = |c: char| Pin { hash: Some(format!("sha256:{}", c.to_string().repeat(64))), missing: None };
    Pins([("model/m", h('a')), ("benchmark/gsm8k", h('b')), ("image/agent:1", h('c')), ("image/eval:1", h('d'))].map(|(k, v)| (k.to_string(), v)).into())
}

#[test]
fn the_sandbox_is_hashed_into_the_stages_it_governs() {
    let exp = parse(SPEC);
    let keys = |exp: &Experiment, agent: &str| {
        let cell = exp.cells.iter().find(|c| exp.agent(c).name == agent).unwrap();
        cell_stages(exp, &pins(), cell)
    };
    let a = keys(&exp, "a");
    let agent = &a[0].inputs;
    assert_eq!(agent.get("sandbox.pids"), Some("unlimited"));
    assert_eq!(agent.get("sandbox.user"), Some("ptb"));
    assert_eq!(agent.get("sandbox.root_fs"), Some("read-only"));
    assert_eq!(agent.get("sandbox.no_new_privileges"), Some("true"));
    assert_eq!(agent.get("sandbox.cap_add"), Some(""));
    let b = keys(&exp, "b");
    assert_eq!(b[0].inputs.get("sandbox.cap_add"), Some("NET_RAW,SYS_PTRACE"));
    assert_eq!(b[0].inputs.get("sandbox.user"), Some("root"));
    // Relaxing the eval stage's sandbox reruns evals only.
    let relaxed = parse(&SPEC.replace("{ command \"eval\"; }", "{ command \"eval\"; sandbox root-fs=\"writable\"; }"));
    let r = keys(&relaxed, "a");
    assert_eq!(r[0].key, a[0].key, "the agent stage does not run in the eval's sandbox");
    assert_ne!(r[1].key, a[1].key);
    assert_eq!(r[1].inputs.get("sandbox.root_fs"), Some("writable"));
    // Spelling a default out changes nothing.
    let spelled =
        parse(&SPEC.replace("{ command \"eval\"; }", "{ command \"eval\"; sandbox user=\"ptb\" root-fs=\"read-only\" pids=4096 no-new-privileges=#true; }"));
    assert_eq!(keys(&spelled, "a")[1].key, a[1].key);
}

#[test]
fn local_stages_have_no_sandbox_fields() {
    let local = SPEC.replace("stage eval executor=docker image=\"eval:1\" { command \"eval\"; }", "stage eval { command \"eval\"; }");
    let exp = parse(&local);
    let cell = &exp.cells[0];
    let eval = &cell_stages(&exp, &pins(), cell)[1];
    assert!(eval.inputs.0.keys().all(|k| !k.starts_with("sandbox.")), "{:?}", eval.inputs);
}
