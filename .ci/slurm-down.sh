#!/usr/bin/env bash
# Stop the cluster .ci/slurm-up.sh started, each daemon by its pid file (SLURM_DIR, default /tmp/slurm).
D=${SLURM_DIR:-/tmp/slurm}
stop() {  # stop PIDFILE: TERM the process it names, wait up to 10 s for it to go
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  echo "slurm-down: pid $pid ($1) still running" >&2
}
for p in slurmd slurmctld slurmdbd; do stop "$D/$p.pid"; done
stop /run/mysqld/mysqld.pid
stop /run/munge/munged.pid
true
