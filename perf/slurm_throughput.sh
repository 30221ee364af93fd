#!/usr/bin/env bash
# Submit-and-commit throughput through Slurm: N trivial stages (default
# 1,008, the paper's agent runs) applied by ptb, beside Snakemake's Slurm
# executor (snakemake-executor-plugin-slurm, pinned by
# perf/snakemake-setup.sh) on the same cluster and the same workload, in
# the same run. Prints both, the ratio, and each controller's own CPU time
# per stage (the login node's cost: the controller and the sbatch, squeue
# and sacct processes it runs; not the jobs, which run under slurmd).
#
#   bash scripts/slurm/setup.sh          # or a real cluster's login node
#   cargo build --release --features wgpu   # or PTB=target/debug/ptb
#   bash perf/slurm_throughput.sh [N]
#
# Both poll Slurm once a second (ptb `--slurm-poll 1s`; Snakemake
# `--seconds-between-status-checks 1`, first check after 1 s instead of
# its default 40 s), so neither waits on a default meant for big clusters.
# Snakemake's plugin follows jobs with sacct (slurmdbd); the test cluster
# has accounting since setup.sh starts slurmdbd. SMK_VENV names the venv
# (default /tmp/ptb-smk-venv, made by perf/snakemake-setup.sh);
# SKIP_SNAKEMAKE=1 measures ptb alone.
# Not run in CI: it takes minutes.
set -euo pipefail
n=${1:-1008}
root=$(cd "$(dirname "$0")/.." && pwd)
ptb=${PTB:-$root/target/release/ptb}
[ -x "$ptb" ] || { echo "build ptb first: cargo build --release --features wgpu (or PTB=path/to/ptb)" >&2; exit 1; }
scontrol ping | grep -q UP || { echo "slurmctld does not answer: scripts/slurm/setup.sh" >&2; exit 1; }
work=$(mktemp -d /tmp/ptb-slurm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
# rate WALL: stages per second; cpu FILE: ms of CPU per stage from time's "%U %S".
rate() { printf %.1f "$(echo "$n / $1" | bc -l)"; }
cpu() { local u s; read -r u s < "$1"; printf %.1f "$(echo "($u + $s) * 1000 / $n" | bc -l)"; }

# ptb: N evals of the base model, each a Slurm job writing one metric.
mkdir -p "$work/ptb/models/m" "$work/ptb/experiments"
echo '{}' > "$work/ptb/models/m/config.json"
echo x > "$work/ptb/data.jsonl"
seeds=$(seq -s ' ' 1 "$n")
cat > "$work/ptb/experiments/bench.kdl" <<KDL
experiment bench
model m path="../models/m" arch=llama
benchmark b data="../data.jsonl"
agent base checkpoint=base
stage agent executor="slurm" budget="1m" {}
stage eval executor="slurm" budget="1m" { command "/bin/sh" "-c" "echo '{\"score\": 1}' > \$PTB_OUT/metrics.json"; }
matrix { agents base; seeds $seeds; }
KDL
t0=$(now)
/usr/bin/time -f '%U %S' -o "$work/ptb.cpu" "$ptb" apply "$work/ptb/experiments/bench.kdl" -j "$n" --slurm-poll 1s >/dev/null 2>"$work/ptb.err" || { tail "$work/ptb.err"; exit 1; }
ptb_s=$(echo "$(now) - $t0" | bc -l)
grep -q "$n ran ($n succeeded" "$work/ptb.err" || { echo "ptb did not run $n stages:"; tail -3 "$work/ptb.err"; exit 1; }
echo "ptb:       $n stages in $(printf %.1f "$ptb_s") s = $(rate "$ptb_s") stages/s; controller CPU $(cpu "$work/ptb.cpu") ms/stage ($("$ptb" --version 2>/dev/null || echo ptb), $ptb)"

# Snakemake: N jobs of one rule, each writing the same metric.
if [ "${SKIP_SNAKEMAKE:-0}" = 1 ]; then exit 0; fi
venv=${SMK_VENV:-/tmp/ptb-smk-venv}
bash "$root/perf/snakemake-setup.sh" "$venv"
mkdir -p "$work/smk"
cat > "$work/smk/Snakefile" <<'SMK'
N = int(config["count"])
rule all:
    input: expand("out/{i}/metrics.json", i=range(1, N + 1))
rule stage:
    output: "out/{i}/metrics.json"
    shell: "echo '{{\"score\": 1}}' > {output}"
SMK
t0=$(now)
(cd "$work/smk" && PATH=$venv/bin:$PATH /usr/bin/time -f '%U %S' -o "$work/smk.cpu" snakemake all --executor slurm --jobs "$n" \
  --slurm-init-seconds-before-status-checks 1 --seconds-between-status-checks 1 --latency-wait 10 \
  --config count="$n" >"$work/smk.err" 2>&1) || { tail "$work/smk.err"; exit 1; }
smk_s=$(echo "$(now) - $t0" | bc -l)
done_n=$(find "$work/smk/out" -name metrics.json | wc -l)
[ "$done_n" = "$n" ] || { echo "snakemake wrote $done_n of $n outputs"; tail "$work/smk.err"; exit 1; }
echo "snakemake: $n stages in $(printf %.1f "$smk_s") s = $(rate "$smk_s") stages/s; controller CPU $(cpu "$work/smk.cpu") ms/stage (snakemake $("$venv/bin/snakemake" --version), plugin $("$venv/bin/pip" show snakemake-executor-plugin-slurm 2>/dev/null | awk '/^Version/ {print $2}'))"
echo "ptb / snakemake throughput: $(printf %.2f "$(echo "$smk_s / $ptb_s" | bc -l)")x"
