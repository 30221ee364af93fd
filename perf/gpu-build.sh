#!/usr/bin/env bash
# Builds, on this machine, what perf/gpu.sh runs on a GPU machine that has no Rust toolchain:
# ptb, the eval_generate bench and the eval_gpu test suite, stripped and packed into
# target/gpu/bin.tar.xz (the device tool carries at most 64 MiB).
#
#   bash perf/gpu-build.sh                            # release, --features cuda
#   FEATURES=wgpu PROFILE=dev bash perf/gpu-build.sh  # a quick kit for a dry run on lavapipe
set -euo pipefail
cd "$(dirname "$0")/.."
features="${FEATURES:-cuda}"
profile="${PROFILE:-release}"
out=target/gpu
rm -rf "$out" && mkdir -p "$out/bin"
cargo build --profile "$profile" --features "$features" -p ptb -p ptb-engine --bin ptb --bench eval_generate --test eval_gpu \
  --message-format=json > "$out/build.json"
python3 - "$out" <<'PY'
import json, shutil, sys
out = sys.argv[1]
for line in open(f"{out}/build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("ptb", "eval_generate", "eval_gpu"):
        shutil.copy(m["executable"], f"{out}/bin/{m['target']['name']}")
PY
strip "$out"/bin/*
echo "$features ($profile)" > "$out/bin/FEATURES"
git rev-parse HEAD > "$out/bin/COMMIT"
tar -cJf "$out/bin.tar.xz" -C "$out" bin
ls -l "$out/bin" "$out/bin.tar.xz"
