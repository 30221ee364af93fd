//! What each stage of a cell reads, as hashed fields. This is the single
//! place that decides a stage's key; docs/hashing.md lists every field.

use crate::hash::{KeyInputs, StageKey};
use crate::resolve::{Pins, image_pin_name, script_pin_name};
use crate::spec::{AgentKind, Cell, CheckpointSource, Experiment, Runner, StageKind, StageSpec};
use std::borrow::Cow;

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
    runner_of(exp, cell.agent, spec).into_owned()
}

/// [`effective_runner`], borrowed where nothing is merged.
fn runner_of<'a>(exp: &'a Experiment, agent: usize, spec: &'a StageSpec) -> Cow<'a, Runner> {
    match (spec.kind, &exp.agents[agent].kind) {
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

/// One hashed field, borrowed where it can be.
pub type Field<'a> = (Cow<'a, str>, Cow<'a, str>);

fn own<'a>(name: &'static str, value: String) -> Field<'a> {
    (Cow::Borrowed(name), Cow::Owned(value))
}

fn lend<'a>(name: &'static str, value: &'a str) -> Field<'a> {
    (Cow::Borrowed(name), Cow::Borrowed(value))
}

/// What a stage hashes that does not depend on the cell, only on the stage
/// (and, for the agent stage, the agent): its runner, its policy, the
/// built-in versions. The same for every cell of a large matrix, so it is
/// built once ([`KeyMaker`]).
struct Part<'a> {
    fields: Vec<Field<'a>>,
    needs: Vec<String>,
}

fn runner_fields<'a>(f: &mut Vec<Field<'a>>, needs: &mut Vec<String>, spec: &'a StageSpec, r: &Runner, pins: &'a Pins) {
    f.push(lend("stage", spec.kind.name()));
    f.push(lend("executor", spec.executor.name()));
    f.push(own("command", serde_json::to_string(&r.command).expect("strings serialise")));
    if let Some(p) = script_pin_name(r) {
        f.push(lend("script", pins.hash_or_missing(&p)));
        needs.push(p);
    }
    if let Some(image) = &r.image {
        let p = image_pin_name(image);
        f.push(lend("image", pins.hash_or_missing(&p)));
        f.push(lend("network", r.network.unwrap_or_default().name()));
        for (field, value) in r.sandbox.clone().unwrap_or_default().key_fields() {
            f.push(own(field, value));
        }
        needs.push(p);
    }
    for (k, v) in &r.env {
        f.push((Cow::Owned(format!("env.{k}")), Cow::Owned(v.clone())));
    }
    f.push(own("budget_s", spec.budget.as_secs().to_string()));
    f.push(own("grace_s", spec.grace.as_secs().to_string()));
    f.push(own("resources.gpus", spec.resources.gpus.to_string()));
    if let Some(c) = spec.resources.cpus {
        f.push(own("resources.cpus", c.to_string()));
    }
    if let Some(m) = spec.resources.memory_bytes {
        f.push(own("resources.memory", m.to_string()));
    }
}

/// A model's pins as its stages hash them.
struct ModelPins<'a> {
    pin: String,
    hash: &'a str,
    instruct_pin: String,
    instruct_hash: &'a str,
}

/// A benchmark's pin as its stages hash it.
struct BenchPins<'a> {
    pin: String,
    hash: &'a str,
}

/// Computes cells' stage keys. What does not depend on the cell (each
/// stage's runner, policy and versions; each model's and benchmark's pins)
/// is built once and borrowed by every cell: planning 1,000 cells built
/// ~20 owned strings into a map per stage, most of a no-op plan's time.
pub struct KeyMaker<'a> {
    exp: &'a Experiment,
    versions: BuiltinVersions,
    models: Vec<ModelPins<'a>>,
    benches: Vec<BenchPins<'a>>,
    /// Judge, eval, then the agent stage of each agent; built when first asked.
    parts: Vec<std::sync::OnceLock<Part<'a>>>,
    pins: &'a Pins,
}

/// One stage of one cell with its key, its fields borrowed from the
/// [`KeyMaker`]; [`StageFields::to_inputs`] owns them.
#[derive(Debug, Clone)]
pub struct StageFields<'k> {
    pub kind: StageKind,
    /// Sorted by name, each name once: the order the key hashes them in.
    fields: Vec<Field<'k>>,
    pub key: StageKey,
    needs: Vec<&'k str>,
    pub upstream: Option<StageKind>,
}

impl<'k> StageFields<'k> {
    /// The hashed inputs, owned (what the lockfile records).
    pub fn to_inputs(&self) -> KeyInputs {
        KeyInputs(self.fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
    /// The value hashed as `field`, if the stage hashes it.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.binary_search_by(|(k, _)| k.as_ref().cmp(field)).ok().map(|i| self.fields[i].1.as_ref())
    }
    /// Every hashed field, by name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
    /// Pins that must be present on this machine to run it.
    pub fn needs(&self) -> &[&'k str] {
        &self.needs
    }
    pub fn into_owned(self) -> StageInputs {
        StageInputs {
            kind: self.kind,
            inputs: self.to_inputs(),
            key: self.key,
            needs: self.needs.iter().map(|s| s.to_string()).collect(),
            upstream: self.upstream,
        }
    }
}

impl<'a> KeyMaker<'a> {
    pub fn new(exp: &'a Experiment, pins: &'a Pins, versions: BuiltinVersions) -> KeyMaker<'a> {
        let models = exp
            .models
            .iter()
            .map(|m| {
                let pin = format!("model/{}", m.name);
                let instruct_pin = format!("{pin}/instruct");
                ModelPins { hash: pins.hash_or_missing(&pin), instruct_hash: pins.hash_or_missing(&instruct_pin), pin, instruct_pin }
            })
            .collect();
        let benches = exp
            .benchmarks
            .iter()
            .map(|b| {
                let pin = format!("benchmark/{}", b.name);
                BenchPins { hash: pins.hash_or_missing(&pin), pin }
            })
            .collect();
        let parts = (0..exp.agents.len() + 2).map(|_| std::sync::OnceLock::new()).collect();
        KeyMaker { exp, versions, models, benches, parts, pins }
    }

    /// The cell-independent part of stage `kind` (of `agent`'s cells).
    fn part(&self, kind: StageKind, agent: usize) -> &Part<'a> {
        let slot = match kind {
            StageKind::Judge => 0,
            StageKind::Eval => 1,
            StageKind::Agent => 2 + agent,
        };
        self.parts[slot].get_or_init(|| {
            let (exp, pins, versions) = (self.exp, self.pins, self.versions);
            let spec = exp.stages.get(kind).expect("cell_stages only lists declared stages");
            let runner = runner_of(exp, agent, spec);
            let mut fields = vec![(Cow::Borrowed("schema"), Cow::Borrowed(crate::hash::key_schema()))];
            let mut needs = Vec::new();
            runner_fields(&mut fields, &mut needs, spec, &runner, pins);
            match kind {
                StageKind::Agent => fields.push(lend("task_template", task_template_hash())),
                StageKind::Judge => {
                    if runs_builtin(&runner, "judge") {
                        fields.push(lend("judge", versions.judge));
                    }
                    // Every judge stage gets the policy (PTB_JUDGE_POLICY), so it
                    // is an input of judge stages, and only of them.
                    let policy = spec.judge_policy();
                    fields.extend(policy.key_fields().into_iter().map(|(k, v)| (Cow::Owned(k), Cow::Owned(v))));
                    // The LLM reviewer: what it is asked of, how many times, and
                    // when its answer flags. Absent without one, so a judge
                    // stage without a reviewer keeps its key.
                    if let Some(j) = &spec.llm_judge {
                        fields.push(lend("llm_judge.url", &j.url));
                        fields.push(lend("llm_judge.model", &j.model));
                        fields.push(own("llm_judge.votes", j.votes.to_string()));
                        fields.push(lend("policy.llm", policy.llm.name()));
                        if runs_builtin(&runner, "judge") {
                            fields.push(lend("llm_judge.reviewer", versions.reviewer));
                        }
                    }
                }
                StageKind::Eval => {
                    // Only `ptb eval` is ptb's evaluation code: a script or an
                    // image (the reference harness's) is pinned by its own hash,
                    // and a ptb upgrade must not rerun it.
                    if runs_builtin(&runner, "eval") {
                        fields.push(lend("harness", versions.harness));
                    }
                }
            }
            Part { fields, needs }
        })
    }

    /// Every stage of `cell`, in chain order, with keys.
    pub fn cell<'k>(&'k self, cell: &Cell) -> Vec<StageFields<'k>> {
        let mut out: Vec<StageFields<'k>> = Vec::with_capacity(3);
        for kind in self.exp.cell_stages(cell) {
            let agent_key = out.iter().find(|s| s.kind == StageKind::Agent).map(|s| s.key.0.as_str()).unwrap_or_default();
            let (mut fields, mut needs) = (Vec::new(), Vec::new());
            let upstream = self.stage(cell, kind, agent_key, &mut fields, Some(&mut needs));
            needs.sort_unstable();
            needs.dedup();
            let key = canonical_key(&mut fields);
            out.push(StageFields { kind, fields, key, needs, upstream });
        }
        out
    }

    /// [`KeyMaker::cell`]'s kinds, keys and upstreams only, the fields
    /// built in `scratch` and dropped: what a plan compares with the
    /// lockfile, without an allocation of ~30 fields a stage.
    pub fn cell_keys<'k>(&'k self, cell: &Cell, scratch: &mut Vec<Field<'k>>) -> Vec<(StageKind, StageKey, Option<StageKind>)> {
        let mut out: Vec<(StageKind, StageKey, Option<StageKind>)> = Vec::with_capacity(3);
        for kind in self.exp.cell_stages(cell) {
            let agent_key = out.iter().find(|s| s.0 == StageKind::Agent).map(|s| s.1.0.as_str()).unwrap_or_default();
            scratch.clear();
            let upstream = self.stage(cell, kind, agent_key, scratch, None);
            out.push((kind, canonical_key(scratch), upstream));
        }
        out
    }

    /// Stage `kind` of `cell`'s fields into `f` (unsorted) and, if asked,
    /// the pins it needs into `needs`; returns its upstream stage.
    fn stage<'k>(&'k self, cell: &Cell, kind: StageKind, agent_key: &str, f: &mut Vec<Field<'k>>, mut needs: Option<&mut Vec<&'k str>>) -> Option<StageKind> {
        let exp = self.exp;
        let (model, bench) = (exp.model(cell), exp.benchmark(cell));
        let (mp, bp) = (&self.models[cell.model], &self.benches[cell.benchmark]);
        let spec = exp.stages.get(kind).expect("cell_stages only lists declared stages");
        let part = self.part(kind, cell.agent);
        let mut need = |pin: &'k str| {
            if let Some(n) = needs.as_deref_mut() {
                n.push(pin);
            }
        };
        f.extend(part.fields.iter().map(|(k, v)| (Cow::Borrowed(k.as_ref()), Cow::Borrowed(v.as_ref()))));
        part.needs.iter().for_each(|p| need(p));
        f.push(lend("cell.model", &model.name));
        f.push(lend("cell.benchmark", &bench.name));
        f.push(lend("cell.agent", &exp.agent(cell).name));
        f.push(own("cell.seed", cell.seed.to_string()));
        f.push(lend("model.base", mp.hash));
        f.push(lend("model.arch", model.arch.map(|a| a.name()).unwrap_or_default()));
        match kind {
            StageKind::Agent => {
                need(&mp.pin);
                None
            }
            StageKind::Judge => {
                f.push(own("upstream.agent", agent_key.to_string()));
                f.push(lend("benchmark.data", bp.hash));
                need(&bp.pin);
                // The judge compares the final model with the instruct model
                // (substitution) when the spec declares one.
                if model.instruct.is_some() {
                    f.push(lend("model.instruct", mp.instruct_hash));
                    need(&mp.instruct_pin);
                }
                Some(StageKind::Agent)
            }
            StageKind::Eval => {
                f.push(lend("benchmark.data", bp.hash));
                if let Some(j) = spec.llm_judge.as_ref().filter(|_| reads_judge(&bench.name)) {
                    f.push(lend("llm_judge.url", &j.url));
                    f.push(lend("llm_judge.model", &j.model));
                }
                need(&bp.pin);
                need(&mp.pin);
                match &exp.agent(cell).kind {
                    AgentKind::Run(_) => {
                        f.push(own("upstream.agent", agent_key.to_string()));
                        Some(StageKind::Agent)
                    }
                    AgentKind::Checkpoint(src) => {
                        let (name, pin, hash) = match src {
                            CheckpointSource::Base => ("base", &mp.pin, mp.hash),
                            CheckpointSource::Instruct => ("instruct", &mp.instruct_pin, mp.instruct_hash),
                        };
                        f.push(lend("checkpoint.source", name));
                        f.push(lend("checkpoint", hash));
                        need(pin);
                        None
                    }
                }
            }
        }
    }
}

/// Sort `f` by name, keeping the last value of a name (what a map filled
/// in this order holds), and hash it.
fn canonical_key(f: &mut Vec<Field<'_>>) -> StageKey {
    f.sort_by(|a, b| a.0.cmp(&b.0));
    f.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            std::mem::swap(&mut later.1, &mut earlier.1);
        }
        same
    });
    crate::hash::key_of(f.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

/// Every stage of `cell`, in chain order, with keys.
pub fn cell_stages(exp: &Experiment, pins: &Pins, cell: &Cell) -> Vec<StageInputs> {
    cell_stages_with(exp, pins, cell, BuiltinVersions::CURRENT)
}

/// [`cell_stages`] as if ptb's built-in commands had `versions`.
pub fn cell_stages_with(exp: &Experiment, pins: &Pins, cell: &Cell, versions: BuiltinVersions) -> Vec<StageInputs> {
    KeyMaker::new(exp, pins, versions).cell(cell).into_iter().map(StageFields::into_owned).collect()
}
