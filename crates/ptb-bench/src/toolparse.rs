//! Turning generated text into tool calls the way the reference's serving
//! stack does: vLLM's `hermes` tool parser (`--tool-call-parser hermes`, used
//! for Qwen, Gemma and SmolLM), whose calls inspect then decodes. ptb's own
//! engine produces plain text, so BFCL needs this step to score the same way.

use super::chat::{ModelOutput, ToolCall};
use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

const START: &str = "<tool_call>";

/// vLLM `Hermes2ProToolParser.extract_tool_calls`: every
/// `<tool_call>{json}</tool_call>` (the last one may be unterminated) must be
/// a JSON object with a `name` and `arguments`; if any is not, the whole
/// output is plain text with no calls. The content is the text before the
/// first `<tool_call>`.
pub fn parse_hermes(text: &str) -> ModelOutput {
    let plain = || ModelOutput { completion: text.to_string(), tool_calls: vec![] };
    let Some(first) = text.find(START) else {
        return plain();
    };
    static R: OnceLock<Regex> = OnceLock::new();
    let r = R.get_or_init(|| Regex::new(r"(?s)<tool_call>(.*?)</tool_call>|<tool_call>(.*)").expect("static regex"));
    let mut calls = Vec::new();
    for caps in r.captures_iter(text) {
        let body = caps.get(1).or_else(|| caps.get(2)).map_or("", |m| m.as_str());
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(body.trim()) else {
            return plain();
        };
        let (Some(Value::String(name)), Some(args)) = (obj.get("name"), obj.get("arguments")) else {
            return plain();
        };
        // inspect decodes the arguments vLLM re-serialised; anything but an
        // object leaves the call without arguments.
        let arguments = match args {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        calls.push(ToolCall { function: name.clone(), arguments });
    }
    ModelOutput { completion: text[..first].to_string(), tool_calls: calls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_one_and_many_calls() {
        let o = parse_hermes("Let me compute.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"n\": 20, \"p\": 0.6}}\n</tool_call>");
        assert_eq!(o.completion, "Let me compute.\n");
        assert_eq!(o.tool_calls.len(), 1);
        assert_eq!(Value::Object(o.tool_calls[0].arguments.clone()), json!({"n": 20, "p": 0.6}));
        let two = parse_hermes("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}");
        assert_eq!(two.tool_calls.iter().map(|c| c.function.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn any_malformed_call_means_no_calls() {
        let o = parse_hermes("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{oops}</tool_call>");
        assert!(o.tool_calls.is_empty());
        assert!(o.completion.contains("{oops}"));
        assert!(parse_hermes("<tool_call>{\"name\": \"a\"}</tool_call>").tool_calls.is_empty(), "arguments are required");
        assert!(parse_hermes("just text").tool_calls.is_empty());
    }
}
