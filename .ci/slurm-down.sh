#!/usr/bin/env bash
# Stop the cluster .ci/slurm-up.sh started, each daemon by its pid file (SLURM_DIR, default /tmp/slurm).
# A pid file whose pid now names another program (pid reuse) is left alone. Jobs stay in Slurm's saved
# state until the next .ci/slurm-up.sh, which starts a fresh cluster.
D=${SLURM_DIR:-/tmp/slurm}
stop() {  # stop PIDFILE NAME: TERM the process it names if it is NAME, wait up to 10 s for it to go
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = "$2" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  echo "slurm-down: pid $pid ($1) still running" >&2
}
for p in slurmd slurmctld slurmdbd; do stop "$D/$p.pid" $p; done
stop /run/mysqld/mysqld.pid mariadbd
stop /run/munge/munged.pid munged
true
