//! Renders every case of a chat-template fixture made with transformers
//! (`cases.json`: template, messages, tools, kwargs, and the expected prompt
//! or error) with ptb's renderer, and lists the cases that differ.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use ptb_engine::pyjson::Ordered;
use ptb_engine::{ChatTemplate, Clock, Message, RenderOptions};

pub struct Outcome {
    pub cases: usize,
    pub per_template: BTreeMap<String, usize>,
    pub failures: Vec<String>,
}

/// `templates` holds the files the cases name. A case without
/// `add_generation_prompt` renders with it on.
pub fn render_cases(fixture: &Path, templates: &Path) -> Outcome {
    let fx = Ordered::parse(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let unix = match fx.get("fixed_unix") {
        Some(Ordered::Int(i)) => *i,
        other => panic!("fixed_unix: {other:?}"),
    };
    let field = |o: &Ordered, key: &str| o.get(key).and_then(Ordered::as_str).unwrap_or_else(|| panic!("{key} missing")).to_string();
    let (bos, eos) = (field(&fx, "bos_token"), field(&fx, "eos_token"));
    let cases = fx.get("cases").and_then(Ordered::as_list).unwrap();
    let mut out = Outcome { cases: cases.len(), per_template: BTreeMap::new(), failures: vec![] };
    for case in cases {
        let (tmpl, name) = (field(case, "template"), field(case, "name"));
        *out.per_template.entry(tmpl.clone()).or_default() += 1;
        let src = std::fs::read_to_string(templates.join(&tmpl)).unwrap();
        let t = ChatTemplate::new(&src, &bos, &eos, Clock::Fixed { unix_seconds: unix }).unwrap();
        // Messages keep every field (tool_calls, reasoning_content) in the fixture's key order.
        let messages: Vec<Message> = serde_json::from_str(&serde_json::to_string(case.get("messages").unwrap()).unwrap()).unwrap();
        let opts = RenderOptions {
            add_generation_prompt: !matches!(case.get("add_generation_prompt"), Some(Ordered::Bool(false))),
            tools: case.get("tools").and_then(Ordered::as_list).map(<[Ordered]>::to_vec),
            extra: case.get("kwargs").unwrap().pairs().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        };
        let got = t.render(&messages, &opts);
        match (case.get("expected").and_then(Ordered::as_str), case.get("error").and_then(Ordered::as_str), got) {
            (Some(want), _, Ok(got)) if got == want => {}
            (Some(want), _, got) => out.failures.push(format!("{tmpl} / {name}:\n--- want\n{want}\n--- got\n{got:?}")),
            (None, Some(msg), Err(e)) if e.to_string().contains(msg) => {}
            (None, Some(msg), got) => out.failures.push(format!("{tmpl} / {name}: want error {msg:?}, got {got:?}")),
            _ => out.failures.push(format!("{tmpl} / {name}: malformed case")),
        }
    }
    out
}
