#!/usr/bin/env python3
"""transformers' throughput on the same model and prompts as crates/ptb-engine/perf/eval_generate.rs:
prefill and decode tokens/s and ms per decode step (64-token synthetic prompts, 32 greedy
new tokens, EOS ignored). Needs torch, transformers, gguf, accelerate (see make-fixtures.py).

  python perf/eval_transformers.py [model.gguf | checkpoint_dir] [--device cpu|cuda]
      [--dtype f32|bf16] [--compare-logits FILE]

Batch sizes: PTB_BENCH_BATCHES (default 1,32), as for the Rust bench. --compare-logits reads
the last position's logits that `eval_generate --logits FILE` wrote for the first prompt and
prints how far transformers' are from them.
"""
import argparse
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM

PROMPT_LEN, NEW_TOKENS = 64, 32


def prompt(b, vocab):
    # The tiny fixtures have 320 tokens.
    return [(1000 + (i * 7 + b * 13) % 5000) % vocab for i in range(PROMPT_LEN)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=os.environ.get(
        "PTB_SMOLLM2_GGUF", "target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--compare-logits")
    args = ap.parse_args()
    # `torch_dtype`, not 4.56's `dtype`: the GPU machine's transformers may be older.
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    if args.path.endswith(".gguf"):
        d, f = os.path.split(os.path.abspath(args.path))
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.path, torch_dtype=dtype)
    model.to(args.device).eval()
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    print(f"transformers {args.device} {args.dtype} threads={torch.get_num_threads()}")
    vocab = model.config.vocab_size
    failure = None
    if args.compare_logits:
        import numpy as np
        theirs = np.fromfile(args.compare_logits, dtype="<f4")
        with torch.no_grad():
            ids = torch.tensor([prompt(0, vocab)], device=args.device)
            ours = model(ids, logits_to_keep=1).logits[0, -1].float().cpu().numpy()
        d = np.abs(ours - theirs)
        span = ours.max() - ours.min()
        print(f"logits vs ptb: max |Δ| {d.max():.3e}, mean |Δ| {d.mean():.3e}, transformers' range "
              f"[{ours.min():.2f}, {ours.max():.2f}], argmax {'equal' if ours.argmax() == theirs.argmax() else 'different'}")
        # bf16 rounding moves logits by a few hundredths (0.045 for two Qwen3-1.7B-shaped
        # layers); a tenth of the whole range is a broken forward pass, not rounding.
        if not d.max() < 0.1 * span:
            failure = f"logits vs ptb: max |Δ| {d.max():.3e} is over a tenth of the range ({span:.2f})"
    batches = [int(b) for b in os.environ.get("PTB_BENCH_BATCHES", "1,32").split(",")]
    for batch in batches:
        ids = torch.tensor([prompt(b, vocab) for b in range(batch)], device=args.device)
        gen = dict(do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                   attention_mask=torch.ones_like(ids), pad_token_id=0)
        with torch.no_grad():
            model.generate(ids, **gen)  # warm-up
            sync()
            t = time.perf_counter()
            # Last position's logits only, as generate (and ptb) compute them.
            model(ids, logits_to_keep=1)
            sync()
            prefill = time.perf_counter() - t
            t = time.perf_counter()
            model.generate(ids, **gen)
            sync()
            total = time.perf_counter() - t
        # generate's time includes its own prefill; decode = the rest.
        decode = max(total - prefill, 1e-9)
        steps = NEW_TOKENS - 1
        print(f"transformers batch {batch:>2}: prefill {batch * PROMPT_LEN / prefill:>8.1f} tok/s, "
              f"decode {batch * steps / decode:>8.1f} tok/s ({decode * 1e3 / steps:.2f} ms/step)")
    if failure:
        sys.exit(failure)


if __name__ == "__main__":
    main()
