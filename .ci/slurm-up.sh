#!/usr/bin/env bash
# Start a single-node Slurm 22.05 cluster on this machine, as root and without systemd, for
# tests/test_slurm.py (and for trying `liftbench run --executor slurm` locally):
# munged, MariaDB, slurmdbd, slurmctld and slurmd (node `localhost`, partition `debug`).
# Installs Debian's packages if missing (~20 s), starts the daemons (~3 s), and prints the SLURM_CONF
# to export. Stop everything with .ci/slurm-down.sh (by pid file). SLURM_DIR (default /tmp/slurm)
# holds the configuration, state, pid files and logs.
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
mariadb -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
# slurm daemons
pgrep -x slurmdbd >/dev/null || slurmdbd
wait_for "sacctmgr -n show cluster"
sacctmgr -i -Q add cluster lb >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd -N localhost
wait_for "sinfo -h -o %T | grep -qx idle"
echo "slurm up: SLURM_CONF=$SLURM_CONF"
