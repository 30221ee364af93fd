//! What each stage of a cell reads, as hashed fields. This is the single
//! place that decides a stage's key; docs/hashing.md lists every field.

use crate::hash::{KeyInputs, StageKey};
use crate::resolve::{Pins, image_pin_name, script_pin_name};
use crate::spec::{AgentKind, Cell, CheckpointSource, Experiment, Runner, StageKind, StageSpec};

/// Version of ptb's own evaluation harness (prompts, scorers, generation
/// defaults, and the inference engine's numerics on every device). Hashed
/// into eval stages that run `ptb eval` outside a container (key schema 3;
/// every eval stage before); bump it when the in-process harness can change its
/// results. History: 1, the first harness; 2, the CPU engine's own kernels
/// (logits moved by up to 3e-5, so a greedy token can flip at a near-tie);
/// 3, `--dtype auto`: a bf16 checkpoint's weights, KV cache and matrix
/// products stay bf16 on a GPU that computes in it (CUDA), where version 2
/// widened everything to f32; and sampling's weights computed with ptb's
/// f32 exp and summed in a fixed vector order, and walked in vocabulary
/// order when neither top-k nor top-p cuts (`eval::sampling::sample`): the
/// same distribution, but a seed can draw other tokens (greedy and CPU
/// logits unchanged); 4, GSM8K and AIME read a last word such as `2½`, `5²`
/// or Arabic-Indic digits as the reference's inspect does (it was kept as
/// written), and a BFCL call whose `arguments` is not an object passes it to
/// the tool's first parameter (it had no arguments).
pub const HARNESS_VERSION: &str = "4";

/// Version of the built-in judge (`ptb judge`, crates/ptb-judge: its
/// detectors, default thresholds and test-split patterns). Hashed into judge
/// stages that run it; bump it when a run's verdict can change. History: 1,
/// the first judge; 2, it reads the agent's kept workspace and stage log,
/// looks for short test items whole, and applies the stage's policy; 3, it
/// scans the string columns of Arrow (`datasets` cache) and Parquet files,
/// and a JSON `\u` escape inside a word is part of the word.
pub const JUDGE_VERSION: &str = "3";

/// Version of the built-in judge's LLM reviewer (crates/ptb-judge/src/llm:
/// its prompt, what the bundle holds and how it is cut, the reply format and
/// the evidence check). Hashed as `llm_judge.reviewer` into judge stages
/// with an `llm-judge` that run `ptb judge`, so a new prompt reruns those
/// judges and no judge without a reviewer. History: 1, the first reviewer.
pub const REVIEWER_VERSION: &str = "1";

/// The versions of ptb's own stage commands that enter keys. `cell_stages`
/// uses [`BuiltinVersions::CURRENT`]; the type exists so that tests can show
/// which keys a version bump moves (and which it must not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinVersions {
    /// [`HARNESS_VERSION`], for eval stages that run `ptb eval`.
    pub harness: &'static str,
    /// [`JUDGE_VERSION`], for judge stages that run `ptb judge`.
    pub judge: &'static str,
    /// [`REVIEWER_VERSION`], for those of them with an `llm-judge`.
    pub reviewer: &'static str,
}

impl BuiltinVersions {
    pub const CURRENT: BuiltinVersions = BuiltinVersions { harness: HARNESS_VERSION, judge: JUDGE_VERSION, reviewer: REVIEWER_VERSION };
}

/// Whether a stage runs this binary's own `sub` command (`ptb eval`, `ptb
/// judge`). Not in a container: there `ptb` would be whatever the image
/// holds, and the image's digest is already in the key.
fn runs_builtin(r: &Runner, sub: &str) -> bool {
    r.image.is_none() && r.command.first().is_some_and(|c| c == "ptb") && r.command.get(1).is_some_and(|c| c == sub)
}

/// Whether an eval of `benchmark` asks the LLM judge: the two judged
/// benchmarks, and any benchmark ptb does not know (its evaluator might).
/// Changing the judge therefore never reruns a GSM8K eval.
fn reads_judge(benchmark: &str) -> bool {
    benchmark.parse::<crate::benchmark::BenchId>().map_or(true, |b| b.is_judged())
}

/// One stage of one cell with its key.
#[derive(Debug, Clone)]
pub struct StageInputs {
    pub kind: StageKind,
    pub inputs: KeyInputs,
    pub key: StageKey,
    /// Pins that must be present on this machine to run it.
    pub needs: Vec<String>,
    /// The stage whose output this one reads.
    pub upstream: Option<StageKind>,
}

/// The runner a cell's stage uses: for the agent stage the agent's runner
/// with the stage's env underneath; for judge and eval the stage's own.
pub fn effective_runner(exp: &Experiment, cell: &Cell, spec: &StageSpec) -> Runner {
    runner_of(exp, cell, spec).into_owned()
}

/// [`effective_runner`], borrowed where nothing is merged: planning a large
/// matrix asks for every stage's runner, and cloning the judge's and eval's
/// (command, env, sandbox) per cell was a measurable share of a no-op plan.
fn runner_of<'a>(exp: &'a Experiment, cell: &Cell, spec: &'a StageSpec) -> std::borrow::Cow<'a, Runner> {
    use std::borrow::Cow;
    match (spec.kind, &exp.agent(cell).kind) {
        (StageKind::Agent, AgentKind::Run(r)) => Cow::Owned({
            let mut merged = r.clone();
            let mut env = spec.runner.env.clone();
            env.extend(r.env.clone());
            merged.env = env;
            merged.secrets.extend(spec.runner.secrets.iter().cloned());
            // The agent's own sandbox, else the one `stage agent` declares.
            merged.sandbox = r.sandbox.clone().or_else(|| spec.runner.sandbox.clone());
            merged
        }),
        _ => Cow::Borrowed(&spec.runner),
    }
}

/// `sha256:` of the agent's task template, computed once per process (it
/// is the same for every agent stage).
fn task_template_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| format!("sha256:{}", crate::hash::sha256_hex(crate::task::AGENT_TASK_TEMPLATE.as_bytes())))
}

fn runner_fields(ki: &mut KeyInputs, needs: &mut Vec<String>, spec: &StageSpec, r: &Runner, pins: &Pins) {
    ki.set("stage", spec.kind.name());
    ki.set("executor", spec.executor.name());
    ki.set("command", serde_json::to_string(&r.command).expect("strings serialise"));
    if let Some(p) = script_pin_name(r) {
        ki.set("script", pins.hash_or_missing(&p));
        needs.push(p);
    }
    if let Some(image) = &r.image {
        let p = image_pin_name(image);
        ki.set("image", pins.hash_or_missing(&p));
        ki.set("network", r.network.unwrap_or_default().name());
        for (field, value) in r.sandbox.clone().unwrap_or_default().key_fields() {
            ki.set(field, value);
        }
        needs.push(p);
    }
    for (k, v) in &r.env {
        ki.set(format!("env.{k}"), v.clone());
    }
    ki.set("budget_s", spec.budget.as_secs().to_string());
    ki.set("grace_s", spec.grace.as_secs().to_string());
    ki.set("resources.gpus", spec.resources.gpus.to_string());
    if let Some(c) = spec.resources.cpus {
        ki.set("resources.cpus", c.to_string());
    }
    if let Some(m) = spec.resources.memory_bytes {
        ki.set("resources.memory", m.to_string());
    }
}

fn cell_fields(ki: &mut KeyInputs, exp: &Experiment, cell: &Cell) {
    ki.set("cell.model", exp.model(cell).name.clone());
    ki.set("cell.benchmark", exp.benchmark(cell).name.clone());
    ki.set("cell.agent", exp.agent(cell).name.clone());
    ki.set("cell.seed", cell.seed.to_string());
}

/// Every stage of `cell`, in chain order, with keys.
pub fn cell_stages(exp: &Experiment, pins: &Pins, cell: &Cell) -> Vec<StageInputs> {
    cell_stages_with(exp, pins, cell, BuiltinVersions::CURRENT)
}

/// [`cell_stages`] as if ptb's built-in commands had `versions`.
pub fn cell_stages_with(exp: &Experiment, pins: &Pins, cell: &Cell, versions: BuiltinVersions) -> Vec<StageInputs> {
    let model = exp.model(cell);
    let model_pin = format!("model/{}", model.name);
    let bench_pin = format!("benchmark/{}", exp.benchmark(cell).name);
    let mut out: Vec<StageInputs> = Vec::new();
    for kind in exp.cell_stages(cell) {
        let spec = exp.stages.get(kind).expect("cell_stages only lists declared stages");
        let runner = runner_of(exp, cell, spec);
        let mut ki = KeyInputs::new();
        let mut needs = Vec::new();
        cell_fields(&mut ki, exp, cell);
        runner_fields(&mut ki, &mut needs, spec, &runner, pins);
        ki.set("model.base", pins.hash_or_missing(&model_pin));
        ki.set("model.arch", model.arch.map(|a| a.name()).unwrap_or_default());
        let agent_key = out.iter().find(|s| s.kind == StageKind::Agent).map(|s| s.key.0.clone());
        let mut upstream = None;
        match kind {
            StageKind::Agent => {
                // The prompt the agent reads is part of what it was asked to do.
                ki.set("task_template", task_template_hash());
                needs.push(model_pin.clone());
            }
            StageKind::Judge => {
                ki.set("upstream.agent", agent_key.clone().unwrap_or_default());
                ki.set("benchmark.data", pins.hash_or_missing(&bench_pin));
                needs.push(bench_pin.clone());
                // The judge compares the final model with the instruct model
                // (substitution) when the spec declares one.
                if model.instruct.is_some() {
                    let pin = format!("{model_pin}/instruct");
                    ki.set("model.instruct", pins.hash_or_missing(&pin));
                    needs.push(pin);
                }
                if runs_builtin(&runner, "judge") {
                    ki.set("judge", versions.judge);
                }
                // Every judge stage gets the policy (PTB_JUDGE_POLICY), so it
                // is an input of judge stages, and only of them.
                let policy = spec.judge_policy();
                for (k, v) in policy.key_fields() {
                    ki.set(k, v);
                }
                // The LLM reviewer: what it is asked of, how many times, and
                // when its answer flags. Absent without one, so a judge
                // stage without a reviewer keeps its key.
                if let Some(j) = &spec.llm_judge {
                    ki.set("llm_judge.url", j.url.clone());
                    ki.set("llm_judge.model", j.model.clone());
                    ki.set("llm_judge.votes", j.votes.to_string());
                    ki.set("policy.llm", policy.llm.name());
                    if runs_builtin(&runner, "judge") {
                        ki.set("llm_judge.reviewer", versions.reviewer);
                    }
                }
                upstream = Some(StageKind::Agent);
            }
            StageKind::Eval => {
                // Only `ptb eval` is ptb's evaluation code: a script or an
                // image (the reference harness's) is pinned by its own hash,
                // and a ptb upgrade must not rerun it.
                if runs_builtin(&runner, "eval") {
                    ki.set("harness", versions.harness);
                }
                ki.set("benchmark.data", pins.hash_or_missing(&bench_pin));
                if let Some(j) = spec.llm_judge.as_ref().filter(|_| reads_judge(&exp.benchmark(cell).name)) {
                    ki.set("llm_judge.url", j.url.clone());
                    ki.set("llm_judge.model", j.model.clone());
                }
                needs.extend([bench_pin.clone(), model_pin.clone()]);
                match &exp.agent(cell).kind {
                    AgentKind::Run(_) => {
                        ki.set("upstream.agent", agent_key.clone().unwrap_or_default());
                        upstream = Some(StageKind::Agent);
                    }
                    AgentKind::Checkpoint(src) => {
                        let (name, pin) = match src {
                            CheckpointSource::Base => ("base", model_pin.clone()),
                            CheckpointSource::Instruct => ("instruct", format!("{model_pin}/instruct")),
                        };
                        ki.set("checkpoint.source", name);
                        ki.set("checkpoint", pins.hash_or_missing(&pin));
                        needs.push(pin);
                    }
                }
            }
        }
        needs.sort();
        needs.dedup();
        let key = ki.key();
        out.push(StageInputs { kind, inputs: ki, key, needs, upstream });
    }
    out
}
