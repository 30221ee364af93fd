#!/usr/bin/env python3
"""Render the official Qwen3, SmolLM3 and Gemma 3 chat templates with transformers.

The templates are vendored under tests/fixtures/eval/chat/official/ (sources in the README
there); this writes tests/fixtures/eval/chat/official/cases.json, which tests/eval_chat_official.rs
compares ptb's renderer against byte for byte. No torch and no hub access needed:
  python -m venv /tmp/tfx && /tmp/tfx/bin/pip install transformers==4.57.3 jinja2==3.1.6 \
      && /tmp/tfx/bin/python scripts/make-official-chat-fixtures.py
CI does not run this; run it after changing a template or a conversation, then commit the output.
"""

import datetime as _dt
import json
import os

import transformers
import transformers.utils.chat_template_utils as ctu
from transformers import PreTrainedTokenizerFast

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval")
OUT = os.path.join(HERE, "chat", "official")
# strftime_now (SmolLM3's "Today Date") is pinned so the rendering is reproducible; the Rust
# test passes the same instant to ptb's renderer as Clock::Fixed.
FIXED_UNIX = 1750941296  # 2025-06-26T12:34:56Z


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(FIXED_UNIX, _dt.timezone.utc).replace(tzinfo=None)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city, in °C.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. \"Zürich\""},
                           "days": {"type": "integer", "default": 1},
                           "units": {"type": "string", "enum": ["metric", "imperial"]}},
            "required": ["city"],
        },
    },
}
# BFCL-style: nested objects, arrays, floats, booleans, a description with a quote.
BOOKING = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "description": "Book a flight. Don't double-book.",
        "parameters": {
            "type": "object",
            "properties": {
                "legs": {"type": "array", "items": {"type": "object", "properties": {
                    "from": {"type": "string"}, "to": {"type": "string"}}}},
                "max_price": {"type": "number", "default": 499.5},
                "refundable": {"type": "boolean", "default": False},
                "seat": {"type": ["string", "null"], "default": None},
            },
            "required": ["legs"],
        },
    },
}
TOOLS = [WEATHER, BOOKING]

USER = [{"role": "user", "content": "What is 2 + 2?"}]
SYSTEM_USER = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "  Name a prime.  "}]
MULTI_TURN = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello! How can I help?"},
    {"role": "user", "content": "Tell me a joke."},
    {"role": "assistant", "content": "Why did the chicken cross the road?"},
    {"role": "user", "content": "Why?"},
]
# Qwen3: reasoning given as a separate field, in an earlier turn and in the last one.
REASONING = [
    {"role": "user", "content": "What is 3 * 7?"},
    {"role": "assistant", "content": "21", "reasoning_content": "3 * 7 = 21."},
    {"role": "user", "content": "And 3 * 8?"},
    {"role": "assistant", "content": "24", "reasoning_content": "\nOne more 3: 24.\n"},
]
TOOL_ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris for 2 days?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "{\"temp_c\": 18.5, \"sky\": \"cloudy\"}"},
    {"role": "assistant", "content": "18.5 °C and cloudy."},
    {"role": "user", "content": "And London, and book me a flight there?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"London\"}"}},
        {"type": "function", "function": {"name": "book_flight",
                                          "arguments": {"legs": [{"from": "PAR", "to": "LON"}], "max_price": 120.0}}}]},
    {"role": "tool", "content": "{\"temp_c\": 15}"},
    {"role": "tool", "content": "{\"booked\": true}"},
]


def cases():
    """(template file, case name, messages, kwargs) for every rendering."""
    qwen, smol, gemma = "Qwen-Qwen3-0.6B.jinja", "HuggingFaceTB-SmolLM3-3B.jinja", "google-gemma-3-it.jinja"
    out = []
    for t in (qwen, smol, gemma):
        for name, msgs in [("user", USER), ("system_user", SYSTEM_USER), ("multi_turn", MULTI_TURN)]:
            out.append((t, name, msgs, {}))
        # Generation prompt off: the conversation ends with the assistant's turn.
        out.append((t, "multi_turn_no_gen", MULTI_TURN[:-1], {"add_generation_prompt": False}))
    for t in (qwen, smol):
        out.append((t, "tools", SYSTEM_USER, {"tools": TOOLS}))
        out.append((t, "tool_round_trip", TOOL_ROUND_TRIP, {"tools": TOOLS}))
        out.append((t, "no_think", MULTI_TURN, {"enable_thinking": False}))
        out.append((t, "no_think_tools", USER, {"enable_thinking": False, "tools": TOOLS}))
        out.append((t, "no_think_no_gen", MULTI_TURN[:-1], {"enable_thinking": False, "add_generation_prompt": False}))
    out.append((qwen, "reasoning_content", REASONING[:3], {}))
    out.append((qwen, "reasoning_content_no_gen", REASONING, {"add_generation_prompt": False}))
    sys_flag = lambda s: [{"role": "system", "content": s}] + MULTI_TURN[1:]
    out.append((smol, "system_think_flag", sys_flag("Be brief. /think"), {"enable_thinking": False}))
    out.append((smol, "system_no_think_flag", sys_flag("Be brief. /no_think"), {}))
    out.append((smol, "system_only_flag", sys_flag("/no_think"), {}))
    out.append((smol, "system_override", sys_flag("Custom header only. /system_override"), {}))
    out.append((smol, "xml_tools", USER, {"xml_tools": TOOLS}))
    out.append((smol, "python_tools", USER, {"python_tools": TOOLS, "enable_thinking": False}))
    out.append((smol, "xml_and_python_tools", SYSTEM_USER, {"xml_tools": [WEATHER], "python_tools": [BOOKING]}))
    return out


def main():
    ctu.datetime = FixedDatetime
    ctu._compile_jinja_template.cache_clear()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(HERE, "qwen3", "tokenizer.json"),
                                  bos_token="<bos>", eos_token="<|im_end|>", pad_token="<|endoftext|>")
    rendered = []
    for tmpl, name, msgs, kwargs in cases():
        src = open(os.path.join(OUT, tmpl), encoding="utf-8").read()
        kw = dict(kwargs)
        gen = kw.pop("add_generation_prompt", True)
        tools = kw.pop("tools", None)
        text = tok.apply_chat_template(msgs, chat_template=src, tools=tools, tokenize=False,
                                       add_generation_prompt=gen, **kw)
        rendered.append({"template": tmpl, "name": name, "messages": msgs, "tools": tools,
                         "add_generation_prompt": gen, "kwargs": kw, "expected": text})
    # Gemma 3 rejects non-alternating roles (and tool turns); the error must surface.
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    try:
        tok.apply_chat_template(bad, chat_template=open(os.path.join(OUT, "google-gemma-3-it.jinja")).read(),
                                tokenize=False)
        raise SystemExit("expected Gemma 3 to reject non-alternating roles")
    except Exception as e:  # jinja2's TemplateError
        rendered.append({"template": "google-gemma-3-it.jinja", "name": "bad_roles", "messages": bad,
                         "tools": None, "add_generation_prompt": False, "kwargs": {}, "error": str(e)})
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"fixed_unix": FIXED_UNIX, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
                   "transformers": transformers.__version__, "cases": rendered}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(len(rendered), "cases")


if __name__ == "__main__":
    main()
