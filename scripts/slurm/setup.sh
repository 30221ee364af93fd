#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this host for ptb's Slurm tests:
# Debian's slurm-wlm and munge, a slurm.conf written for this machine
# (`hostname -s`, its CPUs and memory), munged + slurmctld + slurmd.
# Idempotent: safe to run twice; `scripts/slurm/stop.sh` stops it.
#
# No cgroups (sandboxes and containers rarely delegate them) and no
# slurmdbd (it needs a SQL server): jobs stay visible to `squeue -t all`
# for MinJobAge seconds, which ptb and the tests use instead of sacct.
set -euo pipefail

need=()
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

host=$(hostname -s)
cpus=$(nproc)
# slurmd refuses a node that claims more memory than it has: leave 10%.
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
state=/var/lib/ptb-slurm
mkdir -p "$state/ctld" "$state/d" /var/log/slurm /etc/slurm /run/munge
chown -R slurm:slurm "$state/ctld" /var/log/slurm

conf=/etc/slurm/slurm.conf
want=$(cat <<CONF
# Written by ptb's scripts/slurm/setup.sh for a one-node test cluster.
ClusterName=ptb
SlurmctldHost=$host
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job without --mem would otherwise get the whole node, and run alone.
DefMemPerCPU=256
ReturnToService=2
# Tests: schedule at once, keep finished jobs visible to squeue for an hour.
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_interval=1,default_queue_depth=10000,sched_min_interval=0
MinJobAge=3600
MaxJobCount=20000
JobRequeue=1
KillWait=5
InactiveLimit=0
SlurmdTimeout=30
MessageTimeout=10
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
CONF
)
changed=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
  changed=1
fi

if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key

# Daemons are known by the pid files they write (never by name: another
# Slurm on this host is not ours to stop).
pidfile() { case $1 in munged) echo /run/munge/munged.pid ;; *) echo "/run/$1.pid" ;; esac; }
running() { local f; f=$(pidfile "$1"); [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
running munged || su -s /bin/sh munge -c "munged --force"
if [ "$changed" = 1 ]; then
  # A new configuration: restart what runs with the old one.
  for d in slurmd slurmctld; do
    if running "$d"; then kill "$(cat "$(pidfile "$d")")"; while running "$d"; do sleep 0.2; done; fi
  done
fi
running slurmctld || slurmctld
running slurmd || slurmd

# Ready when the node answers and is idle or allocated.
for _ in $(seq 1 60); do
  st=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  case "$st" in
    idle*|alloc*|mix*) echo "slurm: node $host is $st"; exit 0 ;;
    down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
echo "error: slurm did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
