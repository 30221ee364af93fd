#!/usr/bin/env python3
"""transformers' CPU throughput on the same model and prompts as benches/eval_generate.rs:
prefill and decode tokens/s at batch 1 and 32 (64-token synthetic prompts, 32 greedy new
tokens, EOS ignored). Needs torch, transformers, gguf, accelerate (see make-fixtures.py).

  python bench/eval_transformers_cpu.py [model.gguf | checkpoint_dir]
"""
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM

PROMPT_LEN, NEW_TOKENS = 64, 32


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "PTB_SMOLLM2_GGUF", "target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if path.endswith(".gguf"):
        d, f = os.path.split(os.path.abspath(path))
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    print(f"transformers threads={torch.get_num_threads()}")
    for batch in (1, 32):
        vocab = model.config.vocab_size  # the tiny fixtures have 320 tokens
        ids = torch.tensor([[(1000 + (i * 7 + b * 13) % 5000) % vocab for i in range(PROMPT_LEN)] for b in range(batch)])
        with torch.no_grad():
            model.generate(ids[:1], do_sample=False, max_new_tokens=2, min_new_tokens=2)
            t = time.perf_counter()
            # Last position's logits only, as generate (and ptb) compute them.
            model(ids, logits_to_keep=1)
            prefill = time.perf_counter() - t
            t = time.perf_counter()
            model.generate(ids, do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                           attention_mask=torch.ones_like(ids), pad_token_id=0)
            total = time.perf_counter() - t
        # generate's time includes its own prefill; decode = the rest.
        decode = max(total - prefill, 1e-9)
        print(f"transformers batch {batch:>2}: prefill {batch * PROMPT_LEN / prefill:>8.1f} tok/s, "
              f"decode {batch * (NEW_TOKENS - 1) / decode:>8.1f} tok/s")


if __name__ == "__main__":
    main()
