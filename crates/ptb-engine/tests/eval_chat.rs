//! Chat templates render byte-identically to transformers 4.57.3's `apply_chat_template`
//! for the reference harness's templates (tests/fixtures/eval/chat/cases.json, made by
//! scripts/make-fixtures.py).

use std::path::Path;

use ptb_engine::Message;
use ptb_engine::pyjson::Ordered;

mod chat_fixture;

#[test]
fn templates_render_like_transformers() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let out = chat_fixture::render_cases(&root.join("tests/fixtures/eval/chat/cases.json"), &root.join("templates/chat"));
    assert!(out.cases >= 20, "fixture lost its cases");
    assert!(out.failures.is_empty(), "{} of {} cases differ:\n{}", out.failures.len(), out.cases, out.failures.join("\n\n"));
}

/// The engine renders with the *declared* base model's template (not the checkpoint's) and
/// passes tools and template variables through.
#[test]
fn engine_uses_the_declared_template_with_tools() {
    use ptb_engine::{BaseModelSpec, Cpu, Engine, Prompt};
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval");
    let fx = Ordered::parse(&std::fs::read_to_string(root.join("chat/cases.json")).unwrap()).unwrap();
    let case = |tmpl: &str, name: &str| {
        fx.get("cases")
            .and_then(Ordered::as_list)
            .unwrap()
            .iter()
            .find(|c| c.get("template").and_then(Ordered::as_str) == Some(tmpl) && c.get("name").and_then(Ordered::as_str) == Some(name))
            .unwrap()
            .clone()
    };
    let base = BaseModelSpec {
        architecture: "Qwen3ForCausalLM".into(),
        chat_template: Some(
            std::fs::read_to_string(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("templates/chat/qwen3.jinja")).unwrap(),
        ),
        config: None,
    };
    let e = Engine::<Cpu>::load(&root.join("qwen3"), &base, &Default::default()).unwrap();
    let msgs = vec![Message::new("user", "What is 2 + 2?")];
    let tools = case("qwen3.jinja", "user_tools").get("tools").and_then(Ordered::as_list).map(<[Ordered]>::to_vec);
    let prompt = Prompt::Chat { messages: msgs.clone(), tools, template_kwargs: Default::default() };
    assert_eq!(e.render(&prompt).unwrap(), case("qwen3.jinja", "user_tools").get("expected").and_then(Ordered::as_str).unwrap());
    let kw = Ordered::Map(vec![("enable_thinking".into(), Ordered::Bool(false))]);
    let prompt = Prompt::Chat { messages: msgs, tools: None, template_kwargs: kw };
    assert_eq!(e.render(&prompt).unwrap(), case("qwen3.jinja", "user_no_think").get("expected").and_then(Ordered::as_str).unwrap());
    // Requests round-trip through JSON (the `--prompts` file format) with tool key order kept.
    let json = serde_json::to_string(&prompt).unwrap();
    assert_eq!(serde_json::from_str::<Prompt>(&json).unwrap(), prompt);
    // No sampling settings in generation_config.json: vLLM's defaults, temperature 1.
    assert_eq!(e.default_sampling().temperature, 1.0);
}
