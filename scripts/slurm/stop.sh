#!/usr/bin/env bash
# Stops the test cluster scripts/slurm/setup.sh started (slurmd, slurmctld,
# slurmdbd, its MariaDB, munged). Its state stays in /var/lib/ptb-slurm
# and /var/lib/mysql; setup.sh starts it again.
set -uo pipefail
# By the pid files setup.sh's configuration names (munged's is Debian's),
# in order: slurmctld flushes its accounting to slurmdbd, which needs the
# database, and all of them need munged.
for f in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/mysqld/ptb-slurm.pid /run/munge/munged.pid; do
  if [ -s "$f" ]; then
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
done
exit 0
