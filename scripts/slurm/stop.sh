#!/usr/bin/env bash
# Stops the test cluster scripts/slurm/setup.sh started (slurmd, slurmctld,
# munged). Its state stays in /var/lib/ptb-slurm; setup.sh starts it again.
set -uo pipefail
# By the pid files setup.sh's configuration names (munged's is Debian's).
for f in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
exit 0
