//! The agent's task prompt, rendered into `/inputs/task.md`
//! (templates/agent-task.md.j2; contract in docs/agent-contract.md).

use serde::Serialize;

/// The template ships inside the binary so a run never depends on the
/// working directory; its text is hashed with the agent stage by the caller.
pub const AGENT_TASK_TEMPLATE: &str = include_str!("../../../templates/agent-task.md.j2");

#[derive(Debug, Clone, Serialize)]
pub struct AgentTaskContext {
    /// Model name as the spec says it (`qwen3-1.7b`).
    pub model: String,
    /// Where the base model is mounted (`/inputs/model`).
    pub model_dir: String,
    /// Benchmark name (`gsm8k`) and a human title (`GSM8K`).
    pub benchmark: String,
    pub benchmark_title: String,
    /// What the benchmark asks, in a few sentences.
    pub benchmark_description: String,
    /// How answers are scored, e.g. "exact match of the final number".
    pub metric: Option<String>,
    pub budget_s: u64,
    pub grace_s: u64,
    pub gpus: u32,
    pub gpu_name: Option<String>,
    pub internet: bool,
    pub seed: u64,
    /// Experiment-specific rules, appended after the paper's three.
    pub extra_rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("rendering the agent task prompt: {0}")]
pub struct TaskError(#[from] minijinja::Error);

pub fn render_agent_task(ctx: &AgentTaskContext) -> Result<String, TaskError> {
    render_with(AGENT_TASK_TEMPLATE, ctx)
}

/// Renders a user-supplied template with the same context.
pub fn render_with(template: &str, ctx: &AgentTaskContext) -> Result<String, TaskError> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    // A typo in a user template should fail loudly, not render blank.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("task", template)?;
    let mut value = serde_json::to_value(ctx).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()))?;
    value["budget_human"] = serde_json::Value::String(human_duration(ctx.budget_s));
    Ok(env.get_template("task")?.render(value)?)
}

/// `36000` → `10 hours`, `5400` → `1 hour 30 minutes`, `45` → `45 seconds`.
pub fn human_duration(s: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = [(h, "hour"), (m, "minute"), (sec, "second")].into_iter().filter(|(n, _)| *n > 0).map(|(n, u)| plural(n, u)).collect();
    if parts.is_empty() { "0 seconds".into() } else { parts.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> AgentTaskContext {
        AgentTaskContext {
            model: "qwen3-1.7b".into(),
            model_dir: "/inputs/model".into(),
            benchmark: "gsm8k".into(),
            benchmark_title: "GSM8K".into(),
            benchmark_description: "Grade-school math word problems with a numeric answer.".into(),
            metric: Some("exact match of the final number".into()),
            budget_s: 36000,
            grace_s: 30,
            gpus: 1,
            gpu_name: Some("NVIDIA H100".into()),
            internet: true,
            seed: 2,
            extra_rules: vec!["Do not use more than 100 GB of disk.".into()],
        }
    }

    #[test]
    fn renders_the_benchmark_budget_and_rules() {
        let text = render_agent_task(&ctx()).unwrap();
        assert!(text.contains("post-train qwen3-1.7b for gsm8k"), "{text}");
        assert!(text.contains("**10 hours**"), "{text}");
        assert!(text.contains("1 GPU (NVIDIA H100)"), "{text}");
        assert!(text.contains("No test data") && text.contains("Only this base model"), "{text}");
        assert!(text.contains("4. Do not use more than 100 GB of disk."), "{text}");
        assert!(text.contains("Scoring: exact match of the final number."), "{text}");
        assert!(text.contains("/output/final_model"), "{text}");
        assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
    }

    #[test]
    fn offline_cpu_runs_say_so() {
        let mut c = ctx();
        c.gpus = 0;
        c.internet = false;
        c.budget_s = 5400;
        let text = render_agent_task(&c).unwrap();
        assert!(text.contains("No GPU.") && text.contains("No network access."), "{text}");
        assert!(text.contains("**1 hour 30 minutes**"), "{text}");
    }

    #[test]
    fn a_template_typo_is_an_error() {
        assert!(render_with("{{ benchmrk }}", &ctx()).is_err());
    }
}
