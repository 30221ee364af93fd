//! The official Qwen3, SmolLM3 and Gemma 3 chat templates (vendored verbatim under
//! tests/fixtures/eval/chat/official/, sources in its README) render byte-identically to
//! transformers 4.57.3's `apply_chat_template` for each conversation in cases.json (made by
//! scripts/make-official-chat-fixtures.py). SmolLM3 stamps "Today Date" with
//! `strftime_now`: both sides use the instant in `fixed_unix` (ptb through `Clock::Fixed`).

use std::path::Path;

use ptb_engine::pyjson::Ordered;
use ptb_engine::{ChatTemplate, Clock, Message, RenderOptions};

fn fixture() -> Ordered {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval/chat/official/cases.json");
    Ordered::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn str_field<'a>(o: &'a Ordered, key: &str) -> &'a str {
    o.get(key).and_then(Ordered::as_str).unwrap_or_else(|| panic!("{key} missing"))
}

mod chat_fixture;

#[test]
fn official_templates_render_like_transformers() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval/chat/official");
    let out = chat_fixture::render_cases(&root.join("cases.json"), &root);
    // Guard against a regenerated fixture silently dropping a template or its cases.
    for (tmpl, at_least) in [("Qwen-Qwen3-0.6B.jinja", 11), ("HuggingFaceTB-SmolLM3-3B.jinja", 16), ("google-gemma-3-it.jinja", 5)] {
        let n = out.per_template.get(tmpl).copied().unwrap_or(0);
        assert!(n >= at_least, "{tmpl}: {n} cases, want at least {at_least}");
    }
    assert!(out.failures.is_empty(), "{} of {} cases differ:\n{}", out.failures.len(), out.cases, out.failures.join("\n\n"));
}

/// The SmolLM3 date comes from the clock: a different instant changes the prompt, so the
/// fixture comparison above really exercises `strftime_now` rather than a constant.
#[test]
fn smollm3_date_follows_the_clock() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval/chat/official");
    let src = std::fs::read_to_string(root.join("HuggingFaceTB-SmolLM3-3B.jinja")).unwrap();
    let msgs = [Message::new("user", "Hi")];
    let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
    let at = |unix_seconds| ChatTemplate::new(&src, "", "", Clock::Fixed { unix_seconds }).unwrap().render(&msgs, &opts).unwrap();
    assert!(at(1_750_941_296).contains("Today Date: 26 June 2025\n"));
    assert!(at(951_782_400).contains("Today Date: 29 February 2000\n"));
}

/// Template variables from a `--prompts` file reach the template with their keys in the
/// order written: SmolLM3 prints `xml_tools` with Python's `str()`, so a sorted map would
/// change the prompt.
#[test]
fn prompt_file_template_kwargs_keep_key_order() {
    use ptb_engine::{BaseModelSpec, Cpu, Engine, Prompt};
    let fx = fixture();
    let case = fx.get("cases").and_then(Ordered::as_list).unwrap().iter().find(|c| str_field(c, "name") == "xml_tools").unwrap();
    let kwargs = serde_json::to_string(case.get("kwargs").unwrap()).unwrap();
    let messages = serde_json::to_string(case.get("messages").unwrap()).unwrap();
    let prompt: Prompt = serde_json::from_str(&format!(r#"{{"chat": {{"messages": {messages}, "template_kwargs": {kwargs}}}}}"#)).unwrap();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("tests/fixtures/eval");
    let base = BaseModelSpec {
        architecture: "Qwen3ForCausalLM".into(),
        chat_template: Some(std::fs::read_to_string(root.join("chat/official/HuggingFaceTB-SmolLM3-3B.jinja")).unwrap()),
        config: None,
    };
    let e = Engine::<Cpu>::load(&root.join("qwen3"), &base, &Default::default()).unwrap();
    let got = e.render(&prompt).unwrap();
    // The engine's clock is the real one, so compare the tool listing, not the date line.
    let want = str_field(case, "expected");
    let tools = |s: &str| s[s.find("<tools>").unwrap()..s.find("</tools>").unwrap()].to_string();
    assert_eq!(tools(&got), tools(want));
}
