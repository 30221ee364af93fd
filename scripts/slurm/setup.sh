#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this host for ptb's Slurm tests:
# Debian's slurm-wlm and munge, a slurm.conf written for this machine
# (`hostname -s`, its CPUs and memory), munged + slurmctld + slurmd, and
# accounting: MariaDB on localhost, slurmdbd, the cluster and an account
# in it (so `sacct` answers, as on real clusters; Snakemake's Slurm
# executor needs it, and the tests count jobs with it).
# Idempotent: safe to run twice; `scripts/slurm/stop.sh` stops it.
#
# No cgroups (sandboxes and containers rarely delegate them).
set -euo pipefail

need=()
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
# Pinned: slurmdbd must be the release slurmctld is (they speak one
# protocol version); MariaDB to Debian 12's 10.11 series.
need=()
command -v slurmdbd >/dev/null || need+=("slurmdbd=$(dpkg-query -W -f='${Version}' slurmctld)")
command -v mariadbd >/dev/null || need+=("mariadb-server=1:10.11.*")
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; }
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
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

# Accounting. The database password only guards a loopback-only server
# that holds test jobs' records; slurmdbd.conf is readable by slurm alone.
dbpass=ptb-slurm-test
dbdconf=/etc/slurm/slurmdbd.conf
want_dbd=$(cat <<CONF
# Written by ptb's scripts/slurm/setup.sh for a one-node test cluster.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=$dbpass
StorageLoc=slurm_acct_db
CONF
)
if [ ! -f "$dbdconf" ] || [ "$(cat "$dbdconf")" != "$want_dbd" ]; then
  printf '%s\n' "$want_dbd" > "$dbdconf"
  changed=1
fi
chown slurm:slurm "$dbdconf"
chmod 0600 "$dbdconf"

# Daemons are known by the pid files they write (never by name: another
# Slurm or MariaDB on this host is not ours to stop).
pidfile() { case $1 in munged) echo /run/munge/munged.pid ;; mariadbd) echo /run/mysqld/ptb-slurm.pid ;; *) echo "/run/$1.pid" ;; esac; }
running() { local f; f=$(pidfile "$1"); [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
stop() { if running "$1"; then kill "$(cat "$(pidfile "$1")")"; while running "$1"; do sleep 0.2; done; fi; }
running munged || su -s /bin/sh munge -c "munged --force"
if [ "$changed" = 1 ]; then
  # A new configuration: restart what runs with the old one.
  for d in slurmd slurmctld slurmdbd; do stop "$d"; done
fi

if ! running mariadbd; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  # Loopback only; small buffers: it holds a few thousand job records.
  mariadbd --user=mysql --datadir=/var/lib/mysql --pid-file="$(pidfile mariadbd)" \
    --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 --port=3306 \
    --innodb-buffer-pool-size=32M --skip-log-bin >/var/log/ptb-slurm-mariadb.log 2>&1 &
  for _ in $(seq 1 100); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
fi
mariadb <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$dbpass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
running slurmdbd || slurmdbd
# slurmctld registers with slurmdbd when it starts: the cluster must exist
# by then. sacctmgr waits for slurmdbd to answer.
for _ in $(seq 1 100); do sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1 && break; sleep 0.1; done
sacctmgr -n -P show cluster format=cluster | grep -qx ptb || sacctmgr -i add cluster ptb >/dev/null
sacctmgr -n -P show account format=account | grep -qx ptb || sacctmgr -i add account ptb cluster=ptb description=ptb-tests organization=ptb >/dev/null
for u in root "${SUDO_USER:-root}"; do
  sacctmgr -n -P show assoc where user="$u" account=ptb format=user | grep -qx "$u" || sacctmgr -i add user "$u" account=ptb defaultaccount=ptb >/dev/null
done

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
