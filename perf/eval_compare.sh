#!/usr/bin/env bash
# ptb's engine and transformers on the same weights and prompts, interleaved ROUNDS times
# (default 3) in one session so both see the same machine load; prints each engine's median
# and the ratio ptb / transformers. transformers on 2 cores swings by 2× between runs (its
# OpenMP threads spin for a busy core), so single runs are not comparable.
#
#   bash perf/eval_compare.sh            # needs: cargo, and python with torch + transformers + gguf
#   PYTHON=/path/to/python ROUNDS=5 bash perf/eval_compare.sh
#   bash perf/eval_compare.sh tests/fixtures/eval/qwen3   # a checkpoint directory instead
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-3}"
py="${PYTHON:-python3}"
cargo bench -p ptb-engine --bench eval_generate --no-run 2>/dev/null
bin="$(cargo bench -p ptb-engine --bench eval_generate --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*eval_generate[^"]*\)".*/\1/p' | tail -1)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for i in $(seq "$rounds"); do
  "$bin" "$@" | grep batch >> "$out"
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$py" perf/eval_transformers.py "$@" 2>/dev/null | grep batch >> "$out"
done
python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) batch +(\d+): prefill +([\d.]+) tok/s, decode +([\d.]+) tok/s", line)
    if m:
        eng, b, pre, dec = m.group(1), int(m.group(2)), float(m.group(3)), float(m.group(4))
        runs.setdefault((eng, b), []).append((pre, dec))
print(f"{'':>6} {'':>14} {'ptb':>9} {'transformers':>13} {'ratio':>6}   (tok/s, medians of each engine's runs)")
for b in sorted({b for _, b in runs}):
    for k, name in ((0, "prefill"), (1, "decode")):
        p = statistics.median(r[k] for r in runs[("ptb", b)])
        t = statistics.median(r[k] for r in runs[("transformers", b)])
        print(f"{'b=' + str(b):>6} {name:>14} {p:>9.1f} {t:>13.1f} {p / t:>5.2f}×")
PY
