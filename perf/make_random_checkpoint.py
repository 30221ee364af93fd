#!/usr/bin/env python3
"""A random-weight checkpoint in Qwen3-1.7B's shape (bf16, Hugging Face layout, saved by
transformers itself) for the GPU benchmarks: what matters there is the shape and the bytes
read per step, not what the model says. The tokenizer is the tiny qwen3 fixture's (the
benchmarks feed token ids). Needs torch and transformers.

  python perf/make_random_checkpoint.py OUT_DIR [--layers N] [--vocab V]   # smaller, for a dry run
"""
import argparse
import os
import shutil

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

# Qwen/Qwen3-1.7B's config.json: 1.72e9 parameters, 0.31e9 of them the (tied) embedding.
QWEN3_1_7B = dict(
    hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
    num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
    rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=False,
    hidden_act="silu", bos_token_id=151643, eos_token_id=151645, initializer_range=0.02,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=QWEN3_1_7B["num_hidden_layers"])
    # lavapipe (the dry run's device) cannot hold the 151,936-row embedding in one buffer.
    ap.add_argument("--vocab", type=int, default=QWEN3_1_7B["vocab_size"])
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = {"num_hidden_layers": args.layers, "vocab_size": args.vocab}
    if args.vocab <= QWEN3_1_7B["eos_token_id"]:
        shape.update(bos_token_id=0, eos_token_id=1)
    config = Qwen3Config(**{**QWEN3_1_7B, **shape}, torch_dtype=torch.bfloat16)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(args.out, safe_serialization=True)
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval", "qwen3")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(fixture, f), args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {n / 1e9:.3f}e9 parameters, {args.layers} layers, vocabulary {args.vocab}, bf16")


if __name__ == "__main__":
    main()
