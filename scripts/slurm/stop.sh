#!/usr/bin/env bash
# Stops the test cluster scripts/slurm/setup.sh started (slurmd, slurmctld,
# munged). Its state stays in /var/lib/ptb-slurm; setup.sh starts it again.
set -uo pipefail
for d in slurmd slurmctld munged; do
  pid=$(pgrep -x "$d" || true)
  [ -n "$pid" ] && kill $pid
done
exit 0
