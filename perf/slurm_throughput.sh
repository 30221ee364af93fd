#!/usr/bin/env bash
# Submit-and-commit throughput through Slurm: N trivial stages (default
# 1,008, the paper's agent runs) applied by ptb, beside Snakemake's Slurm
# executor (snakemake-executor-plugin-slurm from PyPI) on the same cluster
# and the same workload, in the same run. Prints both and the ratio, and
# ptb's own CPU time per stage (the controller's overhead).
#
#   bash scripts/slurm/setup.sh          # or a real cluster's login node
#   cargo build --release
#   bash perf/slurm_throughput.sh [N]
#
# Snakemake's plugin follows jobs with sacct, so it needs slurmdbd
# (accounting); without it the Snakemake half is skipped and says so.
# Not run in CI: it takes minutes.
set -euo pipefail
n=${1:-1008}
root=$(cd "$(dirname "$0")/.." && pwd)
ptb=${PTB:-$root/target/release/ptb}
[ -x "$ptb" ] || { echo "build ptb first: cargo build --release" >&2; exit 1; }
scontrol ping | grep -q UP || { echo "slurmctld does not answer: scripts/slurm/setup.sh" >&2; exit 1; }
work=$(mktemp -d /tmp/ptb-slurm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/models/m" "$work/experiments"
echo '{}' > "$work/models/m/config.json"
echo x > "$work/data.jsonl"
seeds=$(seq -s ' ' 1 "$n")
cat > "$work/experiments/bench.kdl" <<KDL
experiment bench
model m path="../models/m" arch=llama
benchmark b data="../data.jsonl"
agent base checkpoint=base
stage agent executor="slurm" budget="1m" {}
stage eval executor="slurm" budget="1m" { command "/bin/sh" "-c" "echo '{\"score\": 1}' > \$PTB_OUT/metrics.json"; }
matrix { agents base; seeds $seeds; }
KDL

now() { date +%s.%N; }
t0=$(now)
/usr/bin/time -f '%U %S' -o "$work/ptb.cpu" "$ptb" apply "$work/experiments/bench.kdl" -j "$n" --slurm-poll 1s >/dev/null 2>"$work/ptb.err" || { tail "$work/ptb.err"; exit 1; }
t1=$(now)
ptb_s=$(echo "$t1 - $t0" | bc -l)
read -r u s < "$work/ptb.cpu"
echo "ptb:       $n stages in $(printf %.1f "$ptb_s") s = $(printf %.1f "$(echo "$n / $ptb_s" | bc -l)") stages/s; controller CPU $(printf %.1f "$(echo "($u + $s) * 1000 / $n" | bc -l)") ms/stage"

if ! sacct -n -X -S now-1minute >/dev/null 2>&1; then
  echo "snakemake: skipped: its Slurm plugin needs sacct (slurmdbd); this cluster has no accounting"
  exit 0
fi
if ! command -v snakemake >/dev/null; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q "snakemake==9.*" "snakemake-executor-plugin-slurm"
  PATH=$work/venv/bin:$PATH
fi
cat > "$work/Snakefile" <<'SMK'
N = int(config["n"])
rule all:
    input: expand("out/{i}/metrics.json", i=range(1, N + 1))
rule stage:
    output: "out/{i}/metrics.json"
    shell: "echo '{{\"score\": 1}}' > {output}"
SMK
t0=$(now)
(cd "$work" && snakemake --executor slurm --jobs "$n" --config n="$n" --quiet all >/dev/null 2>"$work/smk.err") || { tail "$work/smk.err"; exit 1; }
t1=$(now)
smk_s=$(echo "$t1 - $t0" | bc -l)
echo "snakemake: $n stages in $(printf %.1f "$smk_s") s = $(printf %.1f "$(echo "$n / $smk_s" | bc -l)") stages/s"
echo "ptb / snakemake throughput: $(printf %.2f "$(echo "$smk_s / $ptb_s" | bc -l)")x"
