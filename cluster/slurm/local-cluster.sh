#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munged, slurmctld, slurmd as root), for trying
# train.sbatch without a real cluster; SlurmTests starts one per test. Every wait is bounded;
# `stop` cancels the cluster's jobs, then ends only the daemons this script started (by the pid
# files in its folder). A failed `start` stops what it had started; the logs stay.
#
#   cluster/slurm/local-cluster.sh start     # then: export SLURM_CONF=/tmp/scvae-slurm/slurm.conf
#   cluster/slurm/local-cluster.sh status
#   cluster/slurm/local-cluster.sh stop
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (or slurm-wlm and munge).
# SCVAE_SLURM_DIR: the folder of config, state, logs and pid files (default /tmp/scvae-slurm).
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

# Waits up to $1 seconds (of wall-clock time, however long each try takes) for "${@:2}" to succeed.
wait_for() {
  local deadline=$(( SECONDS + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

# A process that has exited but not been reaped yet (a zombie: its parent, often init in a
# container, reaps it later) counts as ended.
alive() { local stat; stat="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ -n "$stat" && "$stat" != Z* ]]; }
ended() { ! alive "$1"; }
running() { [[ -f "$1" ]] && alive "$(cat "$1")"; }

# Runs "$@" without the descriptors this script inherited beyond 0-2. munged keeps every
# descriptor it is given, and a daemon holding the caller's pipe or socket makes a caller that
# waits for this script through it (a test's Foundation.Process does) wait as long as the daemon lives.
without_inherited_fds() (
  local fd
  for fd in $(ls /proc/$BASHPID/fd); do
    if (( fd > 2 )); then exec {fd}>&- 2>/dev/null || true; fi
  done
  exec "$@"
)

start() {
  [[ "$(id -u)" == 0 ]] || { echo "local-cluster: needs root" >&2; exit 1; }
  local command
  for command in munged munge slurmctld slurmd scontrol sinfo squeue scancel sbatch srun; do
    command -v "$command" >/dev/null || { echo "local-cluster: $command not found (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
  done
  write_config
  export SLURM_CONF="$conf"
  trap 'stop >&2' EXIT
  if ! running "$dir/munged.pid"; then
    without_inherited_fds timeout 20 munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
      --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"
  fi
  wait_for 10 munge -n --socket="$dir/munge/munge.socket" || { echo "local-cluster: munged did not answer; see $dir/munged.log" >&2; exit 1; }
  running "$dir/slurmctld.pid" || without_inherited_fds timeout 20 slurmctld -f "$conf"
  wait_for 20 timeout 5 scontrol ping || { echo "local-cluster: slurmctld did not answer; see $dir/slurmctld.log" >&2; exit 1; }
  running "$dir/slurmd.pid" || without_inherited_fds timeout 20 slurmd -f "$conf"
  if ! wait_for 30 bash -c "timeout 5 sinfo -h -N -o %T | grep -Eq '^(idle|mixed|allocated)'"; then
    echo "local-cluster: node $node did not become idle; see $dir/slurmd.log" >&2
    timeout 5 sinfo -N -l >&2 || true
    exit 1
  fi
  trap - EXIT
  echo "local-cluster: up ($cpus CPUs on $node). export SLURM_CONF=$conf"
}

stop() {
  # Jobs first: a job's slurmstepd and processes outlive slurmd, so stopping the daemons under a
  # running job would leave its processes behind. A cancelled job stays in the queue until its
  # processes have ended (Slurm's KillWait, 30 s, at most); cancelled again each second, in case
  # a job's script requeued it.
  if running "$dir/slurmctld.pid" && running "$dir/slurmd.pid"; then
    export SLURM_CONF="$conf"
    local jobs="" cancelled="" _
    for _ in $(seq 1 60); do
      jobs="$(timeout 5 squeue -h -o %i 2>/dev/null)" || { jobs="(squeue failed)"; break; }
      [[ -z "$jobs" ]] && break
      [[ "$jobs" == "$cancelled" ]] || echo "local-cluster: cancelling jobs $(echo $jobs)"
      cancelled="$jobs"
      timeout 5 scancel $jobs 2>/dev/null || true
      sleep 1
    done
    [[ -z "$jobs" ]] || echo "local-cluster: jobs left in the queue: $(echo $jobs)" >&2
  fi
  for daemon in slurmd slurmctld munged; do
    local pidfile="$dir/$daemon.pid" pid
    if running "$pidfile"; then
      # Read once: the daemon removes its pid file as it exits.
      pid="$(cat "$pidfile")"
      kill -TERM "$pid" 2>/dev/null || true
      wait_for 15 ended "$pid" || kill -KILL "$pid" 2>/dev/null || true
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
