#!/usr/bin/env bash
# The engine's GPU checks and figures, in one command, on a machine with an NVIDIA GPU,
# torch and transformers but no Rust toolchain. Build the kit here first
# (perf/gpu-build.sh), then, with the device tool: carry target/gpu/bin.tar.xz and run
#
#   bash perf/gpu.sh
#
# 1. eval_gpu: the five fixture architectures on CUDA vs transformers (logits, greedy,
#    ragged batches);
# 2. `ptb generate --device cuda:0` on a fixture;
# 3. a random Qwen3-1.7B-shaped bf16 checkpoint (perf/make_random_checkpoint.py):
#    ptb's last-position logits vs transformers', ms per decode step at batch 1 beside the
#    HBM roofline, tokens/s at batch 64 beside transformers.
# Writes the report to $OUT/gpu-report.txt (the device tool brings $OUT back) or ./gpu-report.txt.
#
# A dry run without a GPU: FEATURES=wgpu bash perf/gpu-build.sh, then
# DEVICE=wgpu TORCH_DEVICE=cpu LAYERS=2 VOCAB=16384 PTB_BENCH_BATCHES=1,4 bash perf/gpu.sh
# (lavapipe cannot hold the full 151,936-row embedding in one buffer, and is slow).
set -uo pipefail
cd "$(dirname "$0")/.."
device="${DEVICE:-cuda:0}"
torch_device="${TORCH_DEVICE:-cuda}"
py="${PYTHON:-python3}"
work="${WORK:-/tmp/ptb-gpu}"
report="${OUT:-.}/gpu-report.txt"
mkdir -p "$work"
# Python's tarfile reads xz without the xz tool, which the GPU machine may lack.
"$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' target/gpu/bin.tar.xz "$work"
bin="$work/bin"
exec > >(tee "$report") 2>&1
echo "ptb $(cat "$bin/COMMIT") built with --features $(cat "$bin/FEATURES"), $(date -u)"
# cubecl compiles kernels with NVRTC at run time: without a CUDA toolkit, use the one
# torch's wheels ship (nvidia-cuda-nvrtc-cu12), and their other CUDA libraries.
nv="$("$py" -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null || true)"
export LD_LIBRARY_PATH="${nv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv
"$py" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
status=0
step() { echo; echo "== $*"; }

step "1. eval_gpu (fixtures vs transformers on $device)"
# The SmolLM2 GGUF (98 MB) is not carried: that test runs only where the file is.
skip=(); [ -f target/eval-models/SmolLM2-135M-Instruct.Q4_1.gguf ] || skip=(--skip smollm2)
CARGO_MANIFEST_DIR="$PWD" "$bin/eval_gpu" --test-threads 1 --nocapture "${skip[@]}" || status=1

step "2. ptb generate --device $device"
"$bin/ptb" generate --model tests/fixtures/eval/qwen3 --prompt "hello" --max-new-tokens 8 --device "$device" || status=1

step "3. Qwen3-1.7B-shaped random checkpoint, bf16"
# Named by its shape, so a dry run's smaller checkpoint is never reused for the real one.
ckpt="$work/qwen3-1.7b-random${LAYERS:+-layers$LAYERS}${VOCAB:+-vocab$VOCAB}"
[ -f "$ckpt/model.safetensors" ] || "$py" perf/make_random_checkpoint.py "$ckpt" ${LAYERS:+--layers "$LAYERS"} ${VOCAB:+--vocab "$VOCAB"} || status=1
export PTB_BENCH_BATCHES="${PTB_BENCH_BATCHES:-1,64}"
"$bin/eval_generate" "$ckpt" --device "$device" --logits "$work/ptb-logits.bin" | tee "$work/ptb.txt" || status=1
"$py" perf/eval_transformers.py "$ckpt" --device "$torch_device" --dtype bf16 --compare-logits "$work/ptb-logits.bin" | tee "$work/transformers.txt" || status=1

step "4. roofline"
"$py" - "$ckpt" "$work/ptb.txt" "$work/transformers.txt" "$torch_device" <<'PY'
import json, os, re, sys, time
import torch
ckpt, ptb, tf, dev = sys.argv[1:5]
from safetensors import safe_open
weights = 0
with safe_open(os.path.join(ckpt, "model.safetensors"), "pt") as f:
    for k in f.keys():
        t = f.get_slice(k)
        n = 1
        for d in t.get_shape():
            n *= d
        weights += n * 2  # bf16
# Bytes a decode step must read: every weight once (the tied embedding serves as lm_head;
# its lookup reads one row). KV cache reads at these lengths are < 1% of that.
if dev.startswith("cuda"):
    x = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        y.copy_(x)
    torch.cuda.synchronize()
    bw = 2 * 20 * x.numel() / (time.perf_counter() - t)  # read + write
    name = torch.cuda.get_device_name()
else:
    bw, name = float("nan"), "cpu"
def step_ms(path, batch):
    for line in open(path):
        m = re.search(rf"batch +{batch}: .*decode +([\d.]+) tok/s \(([\d.]+) ms/step", line)
        if m:
            return float(m.group(2)), float(m.group(1))
    return float("nan"), float("nan")
roof = weights / bw * 1e3
p1, _ = step_ms(ptb, 1)
t1, _ = step_ms(tf, 1)
print(f"{name}: bf16 weights {weights / 1e9:.2f} GB, measured copy bandwidth {bw / 1e12:.2f} TB/s -> roofline {roof:.2f} ms/step")
print(f"batch 1 decode: ptb {p1:.2f} ms/step ({roof / p1:.0%} of roofline), transformers {t1:.2f} ms/step ({roof / t1:.0%})")
batches = [int(b) for b in os.environ["PTB_BENCH_BATCHES"].split(",")]
for b in batches[1:]:
    _, p = step_ms(ptb, b)
    _, t = step_ms(tf, b)
    print(f"batch {b} decode: ptb {p:.1f} tok/s, transformers {t:.1f} tok/s ({p / t:.2f}x)")
PY
echo; echo "exit status $status"
exit $status
