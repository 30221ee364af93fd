//! The typed chat request every prompt builder returns, and the model output
//! every scorer reads. The inference engine turns a `ChatRequest` into tokens
//! with the model's chat template; nothing here knows about templates.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: content.into() }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A function the model may call (OpenAI `tools[].function` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the parameters, as given by the benchmark.
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
}

/// A tool call parsed from the model output by the engine's tool parser
/// (the reference uses vLLM's `hermes` parser).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub function: String,
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

/// What one generation produced for one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelOutput {
    /// Assistant text with any leading `<think>…</think>` block already removed
    /// (see [`strip_reasoning`]).
    pub completion: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// Remove a reasoning block the way inspect's `parse_content_with_reasoning`
/// does before any inspect scorer sees the text: the first
/// `<think…>…</think>` anywhere is cut out and the rest trimmed. An
/// unterminated `<think>` is left alone (inspect then scores the whole text).
/// Arena-Hard and HealthBench use their own rule (`arena::prepare_answer`,
/// `healthbench::prepare_answer`).
pub fn strip_reasoning(text: &str) -> String {
    static R: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let r = R.get_or_init(|| regex::Regex::new(r#"(?s)<think(?:\s+signature="([^"]*)")?(?:\s+redacted="(true)")?\s*>(.*?)</think>"#).expect("static regex"));
    match r.find(text) {
        Some(m) => format!("{}{}", &text[..m.start()], &text[m.end()..]).trim().to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_think_block() {
        assert_eq!(strip_reasoning("<think>hmm 12</think>\n\nANSWER: 7"), "ANSWER: 7");
        assert_eq!(strip_reasoning("no block"), "no block");
        assert_eq!(strip_reasoning("<think>never closed 5"), "<think>never closed 5");
    }
}
