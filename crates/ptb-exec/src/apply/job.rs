//! Turning a planned stage into an executor job: inputs, env, argv.

use crate::{ExecError, JobInput, StageJob};
use ptb_core::plan::{StagePlan, effective_runner};
use ptb_core::spec::{AgentKind, Cell, CheckpointSource, Experiment, StageKind};
use ptb_core::store::Building;
use ptb_core::store::output::{OutputError, resolve_inside};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The read-only inputs of each stage (see docs/agent-contract.md):
/// agent: `model`; judge: `model`, `agent`, `data` (and `instruct` when the
/// model declares one, for the substitution check; `workspace`,
/// `workspace.json` and `agent.log` when the agent's entry kept them); eval: `model`,
/// `checkpoint`, `data`. The agent stage never sees benchmark data.
///
/// The agent's `final_model` is found inside its store entry without
/// following a link: an agent that left `final_model -> /var/run` must not
/// get a host directory mounted into the eval stage.
pub fn inputs(exp: &Experiment, cell: &Cell, stage: StageKind, outs: &BTreeMap<StageKind, PathBuf>) -> Result<Vec<JobInput>, ExecError> {
    let model = exp.model(cell);
    let data = JobInput { name: "data".into(), path: abs(&exp.benchmark(cell).data.path) };
    let mut v = vec![JobInput { name: "model".into(), path: abs(&model.base.path) }];
    match stage {
        StageKind::Agent => {}
        StageKind::Judge => {
            if let Some(a) = outs.get(&StageKind::Agent) {
                v.push(JobInput { name: "agent".into(), path: abs(a) });
                // What the agent stage's entry kept beside its output: its
                // /work, the manifest of what was left out, its log.
                // Entries from before ptb kept workspaces have none.
                if let Some(entry) = a.parent() {
                    let (ws, manifest) = crate::keep::paths(entry);
                    for (name, p, dir) in [("workspace", ws, true), ("workspace.json", manifest, false), ("agent.log", entry.join("log"), false)] {
                        if std::fs::symlink_metadata(&p).is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() }) {
                            v.push(JobInput { name: name.into(), path: abs(&p) });
                        }
                    }
                }
            }
            if let Some(i) = &model.instruct {
                v.push(JobInput { name: "instruct".into(), path: abs(&i.path) });
            }
            v.push(data);
        }
        StageKind::Eval => {
            let checkpoint = match &exp.agent(cell).kind {
                AgentKind::Run(_) => match outs.get(&StageKind::Agent) {
                    Some(a) => match resolve_inside(a, Path::new("final_model")) {
                        Ok(p) => Some(abs(&p)),
                        // No checkpoint: the eval stage says so in its own words.
                        Err(OutputError::Missing { path }) => Some(abs(&path)),
                        Err(e) => return Err(ExecError::Output(e)),
                    },
                    None => None,
                },
                AgentKind::Checkpoint(CheckpointSource::Base) => Some(abs(&model.base.path)),
                AgentKind::Checkpoint(CheckpointSource::Instruct) => model.instruct.as_ref().map(|i| abs(&i.path)),
            };
            if let Some(c) = checkpoint {
                v.push(JobInput { name: "checkpoint".into(), path: c });
            }
            v.push(data);
        }
    }
    Ok(v)
}

/// The task the cell's agent is given (`task.md`), as the agent stage's
/// spec and the cell describe it.
fn agent_task(exp: &Experiment, cell: &Cell) -> Result<String, ExecError> {
    let spec = &exp.stages.agent;
    let runner = effective_runner(exp, cell, spec);
    let model = exp.model(cell);
    // Slurm stages with an image run in a container on their node.
    let docker = match spec.executor {
        ptb_core::spec::ExecutorKind::Docker => true,
        ptb_core::spec::ExecutorKind::Slurm => runner.image.is_some(),
        ptb_core::spec::ExecutorKind::Local => false,
    };
    let ctx = ptb_core::task::AgentTaskContext {
        model: model.name.clone(),
        model_dir: if docker { "/inputs/model".into() } else { abs(&model.base.path).to_string_lossy().into_owned() },
        benchmark: exp.benchmark(cell).name.clone(),
        benchmark_title: exp.benchmark(cell).name.clone(),
        benchmark_description: format!("the `{}` benchmark", exp.benchmark(cell).name),
        metric: None,
        budget_s: spec.budget.as_secs(),
        grace_s: spec.grace.as_secs(),
        gpus: spec.resources.gpus,
        gpu_name: None,
        internet: runner.network == Some(ptb_core::spec::Network::Bridge),
        seed: cell.seed,
        extra_rules: vec![],
    };
    Ok(ptb_core::task::render_agent_task(&ctx)?)
}

pub fn build(
    exp: &Experiment,
    cell: &Cell,
    sp: &StagePlan,
    b: &Building,
    outs: &BTreeMap<StageKind, PathBuf>,
    judge_cache: &Path,
) -> Result<StageJob, ExecError> {
    let spec = exp.stages.get(sp.stage).expect("the plan lists declared stages only");
    let runner = effective_runner(exp, cell, spec);
    let mut command = runner.command.clone();
    if let Some(p) = runner.program() {
        command[0] = abs(&p).to_string_lossy().into_owned();
    } else if command.first().is_some_and(|c| c == "ptb") && runner.image.is_none() {
        // `ptb eval` is the built-in evaluator: this very binary, whose
        // evaluation behaviour is hashed as `harness` (plan::HARNESS_VERSION).
        command[0] =
            std::env::current_exe().map_err(|source| ExecError::Io { context: "locating the ptb binary".into(), source })?.to_string_lossy().into_owned();
    }
    let mut secrets = BTreeMap::new();
    for name in &runner.secrets {
        let v = std::env::var(name).map_err(|_| ExecError::SecretMissing(name.clone()))?;
        secrets.insert(name.clone(), v);
    }
    let model = exp.model(cell);
    let mut inputs = inputs(exp, cell, sp.stage, outs)?;
    // The agent reads its task; an LLM reviewer in the judge stage reads
    // the same text, to judge the run against what the agent was told.
    if sp.stage == StageKind::Agent || (sp.stage == StageKind::Judge && spec.llm_judge.is_some()) {
        let task = agent_task(exp, cell)?;
        let path = abs(&b.dir.join("task.md"));
        std::fs::write(&path, task).map_err(|source| ExecError::Io { context: format!("writing {}", path.display()), source })?;
        inputs.push(JobInput { name: "task.md".into(), path });
    }
    let mut env = runner.env.clone();
    env.insert("PTB_SEED".into(), cell.seed.to_string());
    env.insert("PTB_MODEL".into(), model.name.clone());
    env.insert("PTB_MODEL_ARCH".into(), model.arch.map(|a| a.name()).unwrap_or_default().into());
    env.insert("PTB_BENCHMARK".into(), exp.benchmark(cell).name.clone());
    env.insert("PTB_AGENT".into(), exp.agent(cell).name.clone());
    if sp.stage == StageKind::Judge {
        // Hashed as `policy.*` (plan::inputs): which findings flag, the detectors' parameters.
        env.insert("PTB_JUDGE_POLICY".into(), spec.judge_policy().to_json());
    }
    let mut caches = Vec::new();
    if let Some(j) = &spec.llm_judge {
        env.insert("PTB_JUDGE_URL".into(), j.url.clone());
        env.insert("PTB_JUDGE_MODEL".into(), j.model.clone());
        env.insert("PTB_JUDGE_API_KEY_ENV".into(), j.api_key_env.clone());
        if let Some(c) = j.concurrency {
            env.insert("PTB_JUDGE_CONCURRENCY".into(), c.to_string());
        }
        if sp.stage == StageKind::Judge {
            env.insert("PTB_JUDGE_VOTES".into(), j.votes.to_string());
        }
        caches.push(JobInput { name: "judge".into(), path: abs(judge_cache) });
    }
    Ok(StageJob {
        key: sp.key.0.clone(),
        cell: sp.cell.clone(),
        stage: sp.stage,
        executor: spec.executor,
        command,
        image: runner.image.clone(),
        network: runner.network.unwrap_or_default(),
        sandbox: runner.sandbox.clone().unwrap_or_default(),
        env,
        secrets,
        inputs,
        out_dir: abs(&b.out_dir()),
        work_dir: abs(&b.work_dir()),
        log_path: abs(&b.log_path()),
        budget: spec.budget,
        grace: spec.grace,
        resources: spec.resources.clone(),
        gpu_ids: Vec::new(),
        pull: runner.pull.unwrap_or_default(),
        caches,
        interrupt: Default::default(),
    })
}
