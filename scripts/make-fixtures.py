#!/usr/bin/env python3
"""Make the evaluation engine's test fixtures with Hugging Face transformers (the reference).

For each architecture a tiny random-weight checkpoint (bf16 safetensors, hidden 32) is saved
under tests/fixtures/eval/<arch>/ with:
  expected.safetensors  transformers' f32 logits for every position of each test prompt
  expected.json         the prompts' token ids and transformers' greedy continuations
Chat-template fixtures (tests/fixtures/eval/chat/*.json) hold transformers' rendering of a
set of conversations with the reference harness's templates.

`smollm2` (not in the default set) records transformers' greedy answer of the real model
fetched by scripts/eval/ci-setup.sh (needs the `gguf` package too).
CI does not run this; run it after changing a fixture, then commit the output:
  python -m venv /tmp/fx && /tmp/fx/bin/pip install torch==2.5.1 transformers==4.57.3 \
      tokenizers==0.22.2 safetensors==0.6.2 gguf==0.17.1 accelerate==1.11.0 && /tmp/fx/bin/python scripts/make-fixtures.py
"""

import datetime as _dt
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval")
# The reference harness's templates, as ptb ships them (src/evaluate.rs includes the same files).
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "templates", "chat")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]
VOCAB = 320
PROMPTS = ["The capital of France is", "1 + 1 = 2, and 2 + 2 =", "Hello"]
GREEDY_TOKENS = 12
# strftime_now in the SmolLM3 template: fixed so the rendering is reproducible (2025-06-26).
FIXED_NOW = _dt.datetime(2025, 6, 26, 12, 34, 56)
FIXED_UNIX = 1750941296


def make_tokenizer():
    corpus = [
        "The capital of France is Paris. The capital of Germany is Berlin.",
        "1 + 1 = 2, and 2 + 2 = 4. Numbers: 0 1 2 3 4 5 6 7 8 9.",
        "Hello! How are you? I am a helpful assistant. Answer the question step by step.",
        "def add(a, b):\n    return a + b\n",
        "<think>\nLet me think.\n</think>\n\nThe answer is 42.",
    ] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    assert tok.get_vocab_size() <= VOCAB
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )


def configs(tok):
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    common = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
        eos_token_id=eos, bos_token_id=tok.convert_tokens_to_ids("<bos>"), pad_token_id=0,
        initializer_range=0.3,
    )
    return {
        # Plain Llama, untied head, head_dim = hidden / heads.
        "llama": transformers.LlamaConfig(**common, num_hidden_layers=2, tie_word_embeddings=False,
                                          rope_theta=10000.0),
        # Qwen3: head_dim (16) * heads != hidden (32); q/k norms; tied embeddings.
        "qwen3": transformers.Qwen3Config(**common, num_hidden_layers=2, head_dim=16,
                                          tie_word_embeddings=True, rope_theta=1000000.0),
        # SmolLM3: layer 1 skips RoPE (no_rope_layers[i] == 0).
        "smollm3": transformers.SmolLM3Config(**common, num_hidden_layers=3, no_rope_layers=[1, 0, 1],
                                              tie_word_embeddings=True, rope_theta=2000000.0),
        # Gemma 3 text: sliding layers (window 4) and a global one with linear RoPE scaling.
        "gemma3": transformers.Gemma3TextConfig(
            **{**common, "num_key_value_heads": 1}, num_hidden_layers=3, head_dim=16,
            query_pre_attn_scalar=16, sliding_window=4,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            rope_theta=1000000.0, rope_local_base_freq=10000.0,
            rope_scaling={"rope_type": "linear", "factor": 8.0}, tie_word_embeddings=True),
    }


MODEL_CLASSES = {
    "llama": transformers.LlamaForCausalLM,
    "qwen3": transformers.Qwen3ForCausalLM,
    "smollm3": transformers.SmolLM3ForCausalLM,
    "gemma3": transformers.Gemma3ForCausalLM,
}


def make_model(name, cfg, tok):
    torch.manual_seed(1234)
    cfg._attn_implementation = "eager"
    model = MODEL_CLASSES[name](cfg).eval()
    # Random norms (HF initialises them to 1 or 0), so a wrong norm formula shows.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(torch.randn_like(p) * 0.3 + (0.0 if name == "gemma3" else 1.0))
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    # bf16 on disk (small, and exercises the bf16 path); the reference runs the same
    # bf16-rounded weights in f32.
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    model = MODEL_CLASSES[name].from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager").eval()
    expected = {"prompts": [], "transformers": transformers.__version__, "torch": torch.__version__}
    tensors = {}
    for i, text in enumerate(PROMPTS):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
            gen = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=GREEDY_TOKENS,
                                 eos_token_id=cfg.eos_token_id, pad_token_id=0)
        tensors[f"logits_{i}"] = logits.contiguous()
        new = gen[0, len(ids):].tolist()
        expected["prompts"].append({"text": text, "ids": ids, "greedy": new})
    save_file(tensors, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    # Drop files the engine does not read, to keep fixtures small.
    for extra in ["special_tokens_map.json"]:
        p = os.path.join(out, extra)
        if os.path.exists(p):
            os.remove(p)
    print(name, "ok", [p["greedy"] for p in expected["prompts"]])


def make_gemma3_multimodal(tok):
    """A Gemma3ForConditionalGeneration checkpoint (tiny SigLIP tower): the engine must find
    the language model under its wrapper's names and read `text_config`."""
    text = configs(tok)["gemma3"]
    vision = transformers.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, image_size=28, patch_size=14)
    cfg = transformers.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                    mm_tokens_per_image=4, image_token_index=5, boi_token_index=3,
                                    eoi_token_index=4, eos_token_id=text.eos_token_id)
    cfg._attn_implementation = "eager"
    torch.manual_seed(4321)
    model = transformers.Gemma3ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n and "language_model" in n:
                p.copy_(torch.randn_like(p) * 0.3)
    out = os.path.join(ROOT, "gemma3_multimodal")
    shutil.rmtree(out, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    model = transformers.Gemma3ForConditionalGeneration.from_pretrained(
        out, dtype=torch.float32, attn_implementation="eager").eval()
    expected = {"prompts": [], "transformers": transformers.__version__, "torch": torch.__version__}
    tensors = {}
    for i, prompt in enumerate(PROMPTS):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            tensors[f"logits_{i}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
            gen = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=GREEDY_TOKENS,
                                 eos_token_id=text.eos_token_id, pad_token_id=0)
        expected["prompts"].append({"text": prompt, "ids": ids, "greedy": gen[0, len(ids):].tolist()})
    save_file(tensors, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    for extra in ["special_tokens_map.json"]:
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    print("gemma3_multimodal ok", [p["greedy"] for p in expected["prompts"]])


def make_chat(tok):
    import transformers.utils.chat_template_utils as ctu

    class FixedDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return FixedDatetime(2025, 6, 26, 12, 34, 56)

    ctu.datetime = FixedDatetime
    ctu._compile_jinja_template.cache_clear()
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city, in °C.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"},
                               "days": {"type": "integer", "default": 1}},
                "required": ["city"],
            },
        },
    }
    convs = {
        "user": [{"role": "user", "content": "What is 2 + 2?"}],
        "system_user": [{"role": "system", "content": "You are terse."},
                        {"role": "user", "content": "  Name a prime.  "}],
        "multi_turn": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello! How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
        ],
    }
    cases = []
    for tmpl in sorted(f for f in os.listdir(TEMPLATES) if f.endswith(".jinja")):
        src = open(os.path.join(TEMPLATES, tmpl)).read()
        for cname, msgs in convs.items():
            variants = [("", {}, None)]
            if tmpl.startswith(("qwen3", "smollm")):
                variants.append(("no_think", {"enable_thinking": False}, None))
                variants.append(("tools", {}, [tool]))
            if tmpl.startswith("gemma3_tool"):
                variants.append(("tools", {}, [tool]))
            for vname, kwargs, tools in variants:
                text = tok.apply_chat_template(msgs, chat_template=src, tools=tools, tokenize=False,
                                               add_generation_prompt=True, **kwargs)
                cases.append({"template": tmpl, "name": f"{cname}{'_' + vname if vname else ''}",
                              "messages": msgs, "tools": tools, "kwargs": kwargs, "expected": text})
    # The Gemma template raises on non-alternating roles; the error must surface.
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    try:
        tok.apply_chat_template(bad, chat_template=open(os.path.join(TEMPLATES, "gemma3.jinja")).read(),
                                tokenize=False)
        raise SystemExit("expected gemma3 to reject non-alternating roles")
    except Exception as e:  # jinja2's TemplateError
        cases.append({"template": "gemma3.jinja", "name": "bad_roles", "messages": bad, "tools": None,
                      "kwargs": {}, "error": str(e)})
    os.makedirs(os.path.join(ROOT, "chat"), exist_ok=True)
    with open(os.path.join(ROOT, "chat", "cases.json"), "w") as f:
        json.dump({"fixed_unix": FIXED_UNIX, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
                   "transformers": transformers.__version__, "cases": cases}, f, indent=1, ensure_ascii=False)
    print("chat", len(cases), "cases")


def make_smollm2():
    """Greedy reference for the real model: transformers dequantises the same Q4_1 GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.environ.get("PTB_SMOLLM2_GGUF", os.path.join(ROOT, "..", "..", "..", "target", "eval-models",
                                                            "SmolLM2-135M-Instruct.Q4_1.gguf"))
    d, f = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        gen = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=24,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
        last = model(torch.tensor([ids])).logits[0, -1].float()
    new = gen[0, len(ids):].tolist()
    out = os.path.join(ROOT, "smollm2")
    os.makedirs(out, exist_ok=True)
    # The 512 largest last-position logits (with their token ids): enough to check the
    # distribution's head without committing the whole 49k-entry vector.
    top = torch.topk(last, 512)
    save_file({"top_logits": top.values.contiguous(), "top_ids": top.indices.to(torch.int64).contiguous()},
              os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "expected.json"), "w") as fh:
        json.dump({"messages": msgs, "prompt": text, "ids": ids, "greedy": new,
                   "greedy_text": tok.decode(new, skip_special_tokens=True),
                   "transformers": transformers.__version__, "gguf_sha256":
                   "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}, fh, indent=1)
    print("smollm2", repr(tok.decode(new, skip_special_tokens=True)))


def main():
    tok = make_tokenizer()
    which = sys.argv[1:] or ["llama", "qwen3", "smollm3", "gemma3", "gemma3_multimodal", "chat"]
    cfgs = configs(tok)
    for name in which:
        if name == "chat":
            make_chat(tok)
        elif name == "gemma3_multimodal":
            make_gemma3_multimodal(tok)
        elif name == "smollm2":
            make_smollm2()
        else:
            make_model(name, cfgs[name], tok)


if __name__ == "__main__":
    main()
