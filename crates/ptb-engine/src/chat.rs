//! Chat templates rendered the way transformers' `apply_chat_template` renders them, so the
//! prompt a checkpoint sees is byte-identical to the reference harness's.
//!
//! transformers uses a sandboxed Jinja2 environment with `trim_blocks`, `lstrip_blocks`,
//! loop controls, the `{% generation %}` tag, and helpers `raise_exception`, `strftime_now`
//! and a `tojson` that is Python's `json.dumps` (", " / ": " separators, no HTML escaping,
//! non-ASCII kept). Python string methods come from minijinja-contrib's pycompat.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::error::{EvalError, Result};
use super::pyjson::{PyStyle, dump};

/// One chat message. Fields other than `role`/`content` (`tool_calls`, `reasoning_content`,
/// `name`, ...) are passed to the template as given, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(flatten, default, skip_serializing_if = "super::pyjson::Ordered::is_empty_map")]
    pub extra: super::pyjson::Ordered,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message { role: role.into(), content: content.into(), extra: super::pyjson::Ordered::Map(vec![]) }
    }
}

/// Clock for `strftime_now`; fixed in tests so date-stamped templates (SmolLM3) are stable.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Fixed { unix_seconds: i64 },
}

/// A compiled chat template plus the special tokens transformers passes to it.
pub struct ChatTemplate {
    env: Environment<'static>,
    pub bos_token: String,
    pub eos_token: String,
}

/// What to render besides the messages.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub add_generation_prompt: bool,
    /// Tool (function) schemas, as JSON, in their original key order.
    pub tools: Option<Vec<super::pyjson::Ordered>>,
    /// Extra template variables, e.g. `enable_thinking` or SmolLM3's `xml_tools`, with their
    /// objects' keys in the order given (templates print them with `| string` / `tojson`).
    pub extra: Vec<(String, super::pyjson::Ordered)>,
}

/// transformers' AssistantTracker tag has no minijinja equivalent; an always-true `if`
/// keeps the same trim/lstrip behaviour around the tag while rendering its body.
fn strip_generation_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("%}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &rest[start..start + end + 2];
        let inner = tag[2..tag.len() - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let open_ws = &tag[2..3];
        let close_ws = &tag[tag.len() - 3..tag.len() - 2];
        fn ws(c: &str) -> &str {
            if c == "-" || c == "+" { c } else { "" }
        }
        match inner {
            "generation" => out.push_str(&format!("{{%{} if true {}%}}", ws(open_ws), ws(close_ws))),
            "endgeneration" => out.push_str(&format!("{{%{} endif {}%}}", ws(open_ws), ws(close_ws))),
            _ => out.push_str(tag),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str, clock: Clock) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
        env.add_function("strftime_now", move |fmt: String| -> std::result::Result<Value, Error> {
            let secs = match clock {
                Clock::Fixed { unix_seconds } => unix_seconds,
                Clock::System => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            };
            Ok(Value::from(super::strftime::format(&fmt, secs)))
        });
        env.add_filter("tojson", |v: Value, kw: Kwargs| -> std::result::Result<Value, Error> {
            let indent: Option<usize> = kw.get("indent")?;
            let sort_keys: Option<bool> = kw.get("sort_keys")?;
            kw.assert_all_used()?;
            let style = PyStyle::Json { indent, sort_keys: sort_keys.unwrap_or(false) };
            Ok(Value::from(dump(&v, style, 0).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?))
        });
        // Python's str() of a dict or list (SmolLM3 renders tools with `| string`).
        env.add_filter("string", |v: Value| -> std::result::Result<Value, Error> {
            if matches!(v.kind(), ValueKind::Map | ValueKind::Seq) {
                Ok(Value::from(dump(&v, PyStyle::Repr, 0).map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?))
            } else if v.kind() == ValueKind::String {
                Ok(v)
            } else {
                Ok(Value::from(dump(&v, PyStyle::Repr, 0).unwrap_or_else(|_| v.to_string())))
            }
        });
        let src = strip_generation_tags(source);
        env.add_template_owned("chat", src).map_err(|e| EvalError::Template(format!("does not compile: {e:#}")))?;
        Ok(ChatTemplate { env, bos_token: bos_token.into(), eos_token: eos_token.into() })
    }

    pub fn render(&self, messages: &[Message], opts: &RenderOptions) -> Result<String> {
        let tmpl = self.env.get_template("chat").map_err(|e| EvalError::Template(e.to_string()))?;
        let msgs: Vec<Value> = messages.iter().map(message_value).collect();
        let mut ctx: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from(msgs)),
            ("add_generation_prompt".into(), Value::from(opts.add_generation_prompt)),
            ("bos_token".into(), Value::from(self.bos_token.clone())),
            ("eos_token".into(), Value::from(self.eos_token.clone())),
        ];
        if let Some(tools) = &opts.tools {
            ctx.push(("tools".into(), Value::from(tools.iter().map(|t| t.to_value()).collect::<Vec<_>>())));
        }
        for (k, v) in &opts.extra {
            ctx.push((k.clone(), v.to_value()));
        }
        let ctx: Value = ctx.into_iter().collect::<std::collections::BTreeMap<_, _>>().into();
        tmpl.render(ctx).map_err(|e| EvalError::Template(format!("{e:#}")))
    }
}

fn message_value(m: &Message) -> Value {
    let mut pairs: Vec<(Value, Value)> = vec![(Value::from("role"), Value::from(m.role.clone())), (Value::from("content"), Value::from(m.content.clone()))];
    pairs.extend(m.extra.pairs().map(|(k, v)| (Value::from(k.to_string()), v.to_value())));
    pairs.into_iter().collect()
}
