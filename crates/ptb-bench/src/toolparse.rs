//! Turning generated text into tool calls the way the reference's serving
//! stack does: vLLM's `hermes` tool parser (`--tool-call-parser hermes`, used
//! for Qwen, Gemma and SmolLM), whose calls inspect then decodes. ptb's own
//! engine produces plain text, so BFCL needs this step to score the same way.

use super::chat::{ModelOutput, ToolCall};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

const START: &str = "<tool_call>";

/// vLLM `Hermes2ProToolParser.extract_tool_calls`: every
/// `<tool_call>{json}</tool_call>` (the last one may be unterminated) must be
/// a JSON object with a `name` and `arguments`; if any is not, the whole
/// output is plain text with no calls. The content is the text before the
/// first `<tool_call>`. Arguments that are not an object go to nothing
/// here (no tools known); [`parse_hermes_for`] passes them on as inspect does.
pub fn parse_hermes(text: &str) -> ModelOutput {
    parse_hermes_for(text, &BTreeMap::new())
}

/// [`parse_hermes`] for a request whose tools' first declared parameters
/// are `first_params` (by tool name): see [`decode_arguments`].
pub fn parse_hermes_for(text: &str, first_params: &BTreeMap<String, String>) -> ModelOutput {
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
        let arguments = decode_arguments(name, args, first_params);
        calls.push(ToolCall { function: name.clone(), arguments });
    }
    ModelOutput { completion: text[..first].to_string(), tool_calls: calls }
}

/// What the reference's call arguments become: vLLM re-serialises the
/// model's `arguments` value (`json.dumps`), and inspect's `parse_tool_call`
/// decodes that string: if it starts with `{` it is the arguments object;
/// any other value, a JSON string included (even one that holds an object:
/// it is not decoded twice), becomes the value of the tool's first declared
/// parameter, and the call has no arguments when the tool is unknown or
/// declares none. (inspect reads the non-object case back with YAML, which
/// gives the JSON value itself, except a float written without a `.`, such
/// as `1e+20`, which YAML 1.1 reads as a string; ptb keeps the number.)
pub fn decode_arguments(function: &str, args: &Value, first_params: &BTreeMap<String, String>) -> Map<String, Value> {
    match args {
        Value::Object(m) => m.clone(),
        other => first_params.get(function).map(|p| Map::from_iter([(p.clone(), other.clone())])).unwrap_or_default(),
    }
}

/// [`decode_arguments`] for arguments already serialised as a string, as an
/// OpenAI-compatible server returns them (`"arguments": "{\"x\": 1}"`): a
/// string starting with `{` must parse as an object (else the call has no
/// arguments, as inspect records a parse error); any other text is read as a
/// JSON value, and as the plain string when it is not one.
pub fn decode_serialized_arguments(function: &str, args: &str, first_params: &BTreeMap<String, String>) -> Map<String, Value> {
    let args = args.trim();
    if args.starts_with('{') {
        return serde_json::from_str(args).unwrap_or_default();
    }
    let value = serde_json::from_str(args).unwrap_or_else(|_| Value::String(args.to_string()));
    decode_arguments(function, &value, first_params)
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

    /// A model that writes its arguments as a JSON string: vLLM passes the
    /// string on and inspect gives it to the tool's first parameter, still a
    /// string; it never becomes the object it spells.
    #[test]
    fn string_arguments_go_to_the_first_parameter() {
        let firsts: BTreeMap<String, String> = [("calc".to_string(), "mass".to_string())].into();
        let text = r#"<tool_call>{"name": "calc", "arguments": "{\"mass\": 50}"}</tool_call>"#;
        let o = parse_hermes_for(text, &firsts);
        assert_eq!(Value::Object(o.tool_calls[0].arguments.clone()), json!({"mass": "{\"mass\": 50}"}));
        // Numbers, lists and null too; an unknown tool gets no arguments.
        let o = parse_hermes_for(r#"<tool_call>{"name": "calc", "arguments": [1, 2]}</tool_call>"#, &firsts);
        assert_eq!(Value::Object(o.tool_calls[0].arguments.clone()), json!({"mass": [1, 2]}));
        let o = parse_hermes_for(r#"<tool_call>{"name": "other", "arguments": "x"}</tool_call>"#, &firsts);
        assert!(o.tool_calls[0].arguments.is_empty());
        assert!(parse_hermes(text).tool_calls[0].arguments.is_empty(), "without the tools there is no first parameter");
        // The same arguments as an OpenAI-compatible server returns them.
        assert_eq!(Value::Object(decode_serialized_arguments("calc", r#"{"mass": 50}"#, &firsts)), json!({"mass": 50}));
        assert_eq!(Value::Object(decode_serialized_arguments("calc", r#""{\"mass\": 50}""#, &firsts)), json!({"mass": "{\"mass\": 50}"}));
        assert_eq!(Value::Object(decode_serialized_arguments("calc", "fifty", &firsts)), json!({"mass": "fifty"}));
        assert!(decode_serialized_arguments("calc", "{oops", &firsts).is_empty());
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
