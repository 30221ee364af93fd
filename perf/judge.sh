#!/usr/bin/env bash
# The judge's speed, each beside its baseline in the same run (issue 18):
#
# 1. Substitution: three generated multi-GB bf16 checkpoints (base,
#    "instruct" = base + a large delta, fine-tune = base + a small delta)
#    compared by the judge (the final model against both), beside `cat` of
#    the same files to /dev/null. Throughput = bytes of all three
#    checkpoints' weight files / wall time. Goal: >= 0.8x cat's throughput.
#    COLD=1 (root) adds a cold-cache run of each after dropping the caches.
# 2. Contamination: every benchmark whose test set is in data/bench indexed,
#    then >= 1 GB of mixed text (the repository's own sources and docs,
#    repeated, with test items planted) scanned; beside `grep -F -f` (or
#    `rg -F -f` when installed) with every test question as a pattern, on the
#    same files. Goal: >= 1x.
#
# Both read through the page cache: each side runs twice and the better run
# counts (the baseline before and after the judge), so neither side is
# charged for the disk alone. Not part of CI (minutes, GBs of disk).
#
#   perf/judge.sh [CHECKPOINT_GIB=2] [TEXT_MIB=1024]     # needs ~3*GIB + TEXT_MIB of disk in $TMPDIR
set -euo pipefail
cd "$(dirname "$0")/.."
GIB=${1:-2}
MIB=${2:-1024}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ptb-judge-perf.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p ptb-judge --example judge_perf
BIN=target/release/examples/judge_perf
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
best_of_two() { # command...: the lower wall time of two runs
  local a b t0
  t0=$(now); "$@" >/dev/null; a=$(secs "$t0" "$(now)")
  t0=$(now); "$@" >/dev/null; b=$(secs "$t0" "$(now)")
  if (( $(echo "$a < $b" | bc -l) )); then echo "$a"; else echo "$b"; fi
}

echo "== substitution: three ${GIB} GiB checkpoints (base, instruct, final model)"
$BIN checkpoint "$WORK/base" "$GIB" 0 0
$BIN checkpoint "$WORK/instruct" "$GIB" 7 1.0
$BIN checkpoint "$WORK/agent/final_model" "$GIB" 3 0.02
cp "$WORK/base/config.json" "$WORK/agent/final_model/config.json"
# Throughput counts the bytes of every checkpoint file the judge reads
# (final model + base + instruct), the same bytes `cat` reads.
FILES=$(echo "$WORK"/base/*.safetensors "$WORK"/instruct/*.safetensors "$WORK"/agent/final_model/*.safetensors)
BYTES=$(cat $FILES | wc -c)
judge() { $BIN judge "$WORK/base" "$WORK/agent" none - "$WORK/out" "$WORK/instruct"; }
report() { # label cat_s judge_s
  printf '%s: bytes %d; cat %.2f s (%.0f MB/s); judge %.2f s (%.0f MB/s); ratio %.2fx cat\n' "$1" "$BYTES" "$2" \
    "$(echo "$BYTES / $2 / 1000000" | bc -l)" "$3" "$(echo "$BYTES / $3 / 1000000" | bc -l)" "$(echo "$2 / $3" | bc -l)"
}
cat_s=$(best_of_two sh -c "cat $FILES > /dev/null")
judge_s=$(best_of_two judge)
cat2=$(best_of_two sh -c "cat $FILES > /dev/null")
if (( $(echo "$cat2 < $cat_s" | bc -l) )); then cat_s=$cat2; fi
report "page cache" "$cat_s" "$judge_s"
if [ "${COLD:-0}" = 1 ]; then
  # Cold: each side reads from the disk (root only; every process on the
  # machine loses its page cache, so this is opt-in).
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); cat $FILES > /dev/null; cold_cat=$(secs "$t0" "$(now)")
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); judge > /dev/null; cold_judge=$(secs "$t0" "$(now)")
  report "cold" "$cold_cat" "$cold_judge"
fi
rm -rf "$WORK/base" "$WORK/instruct" "$WORK/agent"

echo "== contamination: every benchmark in data/bench in one index, ${MIB} MiB of mixed text"
mkdir -p "$WORK/text"
# One file per kind, each filled to its share with the repository's text,
# and a few hundred test items planted in one of them.
git ls-files '*.rs' '*.md' '*.py' '*.sh' '*.kdl' '*.j2' | xargs cat > "$WORK/seed.txt"
per=$(( MIB / 8 ))
for ext in jsonl json csv txt md py tsv log; do
  f="$WORK/text/mixed.$ext"
  while [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -lt $(( per << 20 )) ]; do cat "$WORK/seed.txt" >> "$f"; done
done
[ -f data/bench/gsm8k/gsm8k_test.jsonl ] && head -300 data/bench/gsm8k/gsm8k_test.jsonl >> "$WORK/text/mixed.jsonl"
TEXT=$(cat "$WORK"/text/* | wc -c)
# The baseline's patterns: the first line of every test question (up to
# 200 characters) of every benchmark, as fixed strings.
python3 - data/bench > "$WORK/patterns" <<'EOF'
import json, sys, csv, glob, os
out = set()
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*.json*")) + glob.glob(os.path.join(sys.argv[1], "*", "*.csv"))):
    if "possible_answer" in f or "baseline" in f or "fewshot" in f:
        continue
    if f.endswith(".csv"):
        for r in csv.DictReader(open(f)):
            out.add(r.get("Question", "").split("\n")[0][:200])
        continue
    for line in open(f):
        try: r = json.loads(line)
        except Exception: continue
        if not isinstance(r, dict): continue
        for k in ("question", "problem", "prompt", "Question", "turns"):
            v = r.get(k)
            while isinstance(v, list) and v:
                v = v[0]
                if isinstance(v, dict): v = v.get("content")
            if isinstance(v, str) and len(v) > 20: out.add(v.split("\n")[0][:200])
for p in sorted(out):
    if p.strip(): print(p)
EOF
grep_tool="grep -F -c -f"; command -v rg >/dev/null && grep_tool="rg -F -c -f"
g_s=$(best_of_two sh -c "$grep_tool '$WORK/patterns' '$WORK'/text/* || true")
scan() { $BIN scan data/bench "$WORK"/text/*; }
t0=$(now); r=$(scan); j_s=$(secs "$t0" "$(now)")
t0=$(now); r=$(scan); j2=$(secs "$t0" "$(now)")
if (( $(echo "$j2 < $j_s" | bc -l) )); then j_s=$j2; fi
g2=$(best_of_two sh -c "$grep_tool '$WORK/patterns' '$WORK'/text/* || true")
if (( $(echo "$g2 < $g_s" | bc -l) )); then g_s=$g2; fi
printf 'bytes %d; %d patterns; %s %.2f s (%.0f MB/s); judge %.2f s (%.0f MB/s, index and process start included) %s; ratio %.2fx\n' \
  "$TEXT" "$(wc -l < "$WORK/patterns")" "${grep_tool%% *}" "$g_s" "$(echo "$TEXT / $g_s / 1000000" | bc -l)" "$j_s" \
  "$(echo "$TEXT / $j_s / 1000000" | bc -l)" "$r" "$(echo "$g_s / $j_s" | bc -l)"
