#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munged, slurmctld, slurmd as root), for trying
# train.sbatch without a real cluster. Every wait is bounded; `stop` ends only the daemons this
# script started (by the pid files in its folder).
#
#   cluster/slurm/local-cluster.sh start     # then: export SLURM_CONF=/tmp/scvae-slurm/slurm.conf
#   cluster/slurm/local-cluster.sh status
#   cluster/slurm/local-cluster.sh stop
#
# Needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root.
set -euo pipefail

dir="${SCVAE_SLURM_DIR:-/tmp/scvae-slurm}"
conf="$dir/slurm.conf"
node="$(hostname -s)"
cpus="$(nproc)"
memory_mib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))

write_config() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  cat > "$conf" <<CONF
ClusterName=scvae-local
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SCVAE_SLURMCTLD_PORT:-6817}
SlurmdPort=${SCVAE_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$node CPUs=$cpus RealMemory=$memory_mib State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

# Waits up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
  local seconds="$1"; shift
  for _ in $(seq 1 $(( seconds * 5 ))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  [[ "$(id -u)" == 0 ]] || { echo "local-cluster: needs root" >&2; exit 1; }
  command -v slurmctld >/dev/null || { echo "local-cluster: slurm-wlm is not installed (apt-get install slurm-wlm munge)" >&2; exit 1; }
  write_config
  export SLURM_CONF="$conf"
  if ! running "$dir/munged.pid"; then
    timeout 20 munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
      --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"
  fi
  wait_for 10 munge -n --socket="$dir/munge/munge.socket" || { echo "local-cluster: munged did not answer; see $dir/munged.log" >&2; exit 1; }
  running "$dir/slurmctld.pid" || timeout 20 slurmctld -f "$conf"
  wait_for 20 timeout 5 scontrol ping || { echo "local-cluster: slurmctld did not answer; see $dir/slurmctld.log" >&2; exit 1; }
  running "$dir/slurmd.pid" || timeout 20 slurmd -f "$conf"
  if ! wait_for 30 bash -c "timeout 5 sinfo -h -N -o %T | grep -Eq '^(idle|mixed|allocated)'"; then
    echo "local-cluster: node $node did not become idle; see $dir/slurmd.log" >&2
    timeout 5 sinfo -N -l >&2 || true
    exit 1
  fi
  echo "local-cluster: up ($cpus CPUs on $node). export SLURM_CONF=$conf"
}

stop() {
  for daemon in slurmd slurmctld munged; do
    local pidfile="$dir/$daemon.pid"
    if running "$pidfile"; then
      kill -TERM "$(cat "$pidfile")"
      wait_for 15 bash -c "! kill -0 $(cat "$pidfile") 2>/dev/null" || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  echo "local-cluster: stopped"
}

status() {
  for daemon in munged slurmctld slurmd; do
    if running "$dir/$daemon.pid"; then echo "$daemon: running (pid $(cat "$dir/$daemon.pid"))"; else echo "$daemon: stopped"; fi
  done
  [[ -f "$conf" ]] && SLURM_CONF="$conf" timeout 5 sinfo -N -l 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
