//! The stage contract's names, shared by every executor and by the stage
//! commands ptb ships (`ptb eval`): the variables a stage reads its inputs
//! and caches from (docs/agent-contract.md).

/// The variable naming an input: `PTB_INPUT_` + the name upper-cased, with
/// `-` and `.` as `_` (`task.md` → `PTB_INPUT_TASK_MD`), so every input
/// name gives a variable a shell can read.
pub fn input_env_name(name: &str) -> String {
    env_name("PTB_INPUT_", name)
}

/// The variable naming a cache directory (`judge` → `PTB_CACHE_JUDGE`).
pub fn cache_env_name(name: &str) -> String {
    env_name("PTB_CACHE_", name)
}

fn env_name(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", name.to_ascii_uppercase().replace(['-', '.'], "_"))
}
