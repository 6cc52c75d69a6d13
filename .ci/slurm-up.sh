#!/usr/bin/env bash
# Start a single-node Slurm 22.05 cluster on this machine, as root and without systemd, for
# tests/run/test_slurm.py (and for trying `liftbench run --executor slurm` locally):
# munged, MariaDB, slurmdbd, slurmctld and slurmd (node `localhost`, partition `debug`).
# Installs Debian's packages if missing (~20 s), starts the daemons (~3 s), and prints the SLURM_CONF
# to export. Stop everything with .ci/slurm-down.sh (by pid file). SLURM_DIR (default /tmp/slurm)
# holds the configuration, state, pid files and logs.
#
# Every start is a fresh cluster: Slurm daemons left by a previous start (an interrupted run) are
# stopped first, with the job steps still running under them, and their saved jobs are forgotten
# (state and spool folders, the accounting database), so no leftover job holds the node (`sinfo`:
# alloc) and job ids start again from 1 with no stale sacct rows.
#
# Why slurmdbd and MariaDB: without accounting, a job killed by scancel, a time limit or the OOM
# killer is only visible to squeue for MinJobAge (300 s); with it, sacct keeps its final state.
# Without cgroups --mem is not enforced, and jobs run as root.
set -euo pipefail
D=${SLURM_DIR:-/tmp/slurm}
export SLURM_CONF=$D/slurm.conf
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi
is_daemon() { [ -n "${2:-}" ] && [ "$(cat /proc/$2/comm 2>/dev/null)" = "$1" ]; }  # is_daemon NAME PID
stop_daemon() {  # stop_daemon NAME PID: TERM, up to 10 s, then KILL
  is_daemon "$1" "$2" || return 0
  kill "$2" 2>/dev/null || return 0
  for _ in $(seq 1 50); do is_daemon "$1" "$2" || return 0; sleep 0.2; done
  kill -9 "$2" 2>/dev/null || true
}
for p in slurmd slurmctld slurmdbd; do
  [ -s $D/$p.pid ] && stop_daemon $p "$(cat $D/$p.pid)"
  for pid in $(pgrep -x $p || true); do  # one whose pid file is gone, if it runs with this cluster's configuration
    tr '\0' '\n' </proc/$pid/environ 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF" && stop_daemon $p $pid
  done
  rm -f $D/$p.pid
done
tree() { local c; for c in $(pgrep -P "$1" || true); do tree "$c"; done; echo "$1"; }  # a pid and its descendants
for pid in $(pgrep -x slurmstepd || true); do  # job steps of the old cluster outlive slurmd: they and their jobs go
  if tr '\0' '\n' </proc/$pid/environ 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF"; then kill -9 $(tree $pid) 2>/dev/null || true; fi
done
rm -rf $D/state $D/spool
mkdir -p $D/state $D/spool $D/log
NCPU=$(nproc); MEM=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048 ))
cat > $SLURM_CONF <<CONF
ClusterName=lb
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
cat > $D/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
chmod 600 $D/slurmdbd.conf
wait_for() { for _ in $(seq 1 120); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done; echo "timeout: $1" >&2; return 1; }
# munge
mkdir -p /run/munge && chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
wait_for "munge -n | unmunge"
# mariadb
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
pgrep -x mariadbd >/dev/null || { mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid >$D/log/mariadb.log 2>&1 & }
wait_for "mariadb -uroot -e 'select 1'"
mariadb -uroot -e "DROP DATABASE IF EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
# slurm daemons
slurmdbd
wait_for "sacctmgr -n show cluster"
sacctmgr -i -Q add cluster lb >/dev/null 2>&1 || true
slurmctld
slurmd -N localhost
wait_for "sinfo -h -o %T | grep -qx idle"
echo "slurm up: SLURM_CONF=$SLURM_CONF"
