#!/usr/bin/env bash
# Installs Snakemake and its Slurm executor plugin, pinned, into a venv for
# perf/slurm_throughput.sh (not committed; default /tmp/ptb-smk-venv).
# Idempotent: a venv that already has these versions is left alone.
#
#   bash perf/snakemake-setup.sh [VENV]
set -euo pipefail
venv=${1:-/tmp/ptb-smk-venv}
# Pinned: the bench's figures name these versions.
pins=(snakemake==9.27.1 snakemake-executor-plugin-slurm==2.8.0)
if [ -x "$venv/bin/pip" ]; then
  # Whole output first: `grep -q` closing the pipe early makes pip fail.
  have=$("$venv/bin/pip" freeze 2>/dev/null || true)
  if grep -qx 'snakemake==9.27.1' <<<"$have" && grep -qx 'snakemake-executor-plugin-slurm==2.8.0' <<<"$have"; then
    exit 0
  fi
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q "${pins[@]}"
"$venv/bin/snakemake" --version >/dev/null
