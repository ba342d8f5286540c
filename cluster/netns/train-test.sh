#!/usr/bin/env bash
# A tiny training across hosts: the coordinator and 3 workers each in their own network
# namespace (10.78.0.x, links shaped to 1 Gbit/s with tbf and 1 ms each way), started without
# --host (each finds its address), one worker's link cut mid-run. The run must notice, continue
# with the other two in a new generation and finish. Before it, a worker that advertises a
# loopback ring address from another host must be refused with the reason. After it, two hosts
# each start two ranks with one --nproc-per-node 2 command, configured from the environment; then
# a short run with one worker whose ring address nobody can reach: it is left out, the rest finish.
# Bounded in time; everything is torn down at the end, also on failure.
# SCVAE_NETNS_RATE=none leaves out the tbf, SCVAE_NETNS_DELAY=0 the latency (nfq-delay where the
# kernel has no netem, see README.md); a shaping that fails leaves the links unshaped, said once.
#
#   cluster/netns/train-test.sh [BIN_DIR] [OUT_DIR] [CACHE_DIR]
#
# Exit 0: the run recovered and finished. 77: network namespaces cannot be made here (skip).
# Anything else: a failure, with the logs in OUT_DIR.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SCVAE_NETNS_PREFIX="${SCVAE_NETNS_PREFIX:-scvae-t-}"
export SCVAE_NETNS_SUBNET="${SCVAE_NETNS_SUBNET:-10.78.0}"
source "$here/common.sh"
bin="$(cd "${1:-.build/release}" && pwd)"
out="${2:-$(mktemp -d -t scvae-netns-XXXXXX)}"
cache="${3:-$out/cache}"
scale="${SCVAE_DEADLINE_SCALE:-1}"
seconds() { awk -v s="$1" -v k="$scale" 'BEGIN { printf "%d", s * k }'; }
mkdir -p "$out"

[[ "$(id -u)" == 0 ]] && command -v ip >/dev/null || { echo "netns: needs root and iproute2: skipped"; exit 77; }
trap '"$here/teardown.sh" >/dev/null 2>&1' EXIT
"$here/setup.sh" 3 > "$out/setup.log" 2>&1 || { echo "netns: cannot make namespaces here: skipped"; cat "$out/setup.log"; exit 77; }
limit="$(seconds 240)"
# A delay daemon outlives the run by at most 2 minutes should the teardown not happen.
# The test is about recovery, not the delay: should a delay daemon die, its host's packets pass
# undelayed (NFQUEUE bypass) rather than the link going dead and the test failing for it.
export SCVAE_NETNS_DELAY="${SCVAE_NETNS_DELAY:-1ms}" SCVAE_NETNS_DELAY_LIMIT=$(( limit + 120 )) SCVAE_NETNS_DELAY_BYPASS=1
"$here/shape.sh" "${SCVAE_NETNS_RATE:-1gbit}" > "$out/shape.log" 2>&1 || echo "netns: shaping failed (unshaped links): $(tail -1 "$out/shape.log")"

coordinator_address="$(host_address coord)"
ip netns exec "${prefix}coord" timeout "$limit" "$bin/scvae-coordinator" --workers 3 --min-workers 2 \
  --listen "tcp://$coordinator_address:5555" --insecure --config tiny --steps 30 --global-batch 6 \
  --checkpoint-every 0 --checkpoint-dir "$out/run" --metrics "$out/metrics.jsonl" --cache-dir "$cache" \
  --liveness-deadline "$(seconds 2.5)" > "$out/coordinator.log" 2>&1 &
coordinator=$!
# A worker told to put its ring on loopback while it connects from its own host is refused at
# once, with what to pass: its neighbours would dial their own loopback.
ip netns exec "${prefix}w0" timeout "$(seconds 60)" "$bin/scvae-worker" --coordinator "tcp://$coordinator_address:5555" \
  --host 127.0.0.1 --worker-id loopback --threads 1 --cache-dir "$cache" > "$out/loopback.log" 2>&1
loopback_status=$?
# The workers are started as a new user would: no --host. Each advertises its address on the
# route to the coordinator (w0's and w2's are set below, checked after the run).
for i in 0 1 2; do
  ip netns exec "${prefix}w$i" timeout "$limit" "$bin/scvae-worker" --coordinator "tcp://$coordinator_address:5555" \
    --insecure --worker-id "w$i" --threads 1 --cache-dir "$cache" \
    --reconnect-timeout "$(seconds 60)" > "$out/w$i.log" 2>&1 &
done

# Cut w1's wire once a few steps are done (its process keeps running, unreachable).
steps_done() {
  local n=0
  # grep -c prints 0 (and fails) when nothing matches yet: keep its count, not a second 0.
  [[ -f "$out/metrics.jsonl" ]] && n=$(grep -c '"step"' "$out/metrics.jsonl" || true)
  echo "${n:-0}"
}
deadline=$(( $(date +%s) + $(seconds 120) ))
while (( $(steps_done) < 8 )); do
  if (( $(date +%s) > deadline )) || ! kill -0 "$coordinator" 2>/dev/null; then
    echo "netns: the run did not reach step 8"; tail -20 "$out/coordinator.log"; exit 1
  fi
  sleep 0.2
done
cut_at=$(steps_done)
"$here/link.sh" w1 down > /dev/null

wait "$coordinator"
status=$?
failed=0
[[ "$status" == 0 ]] || { echo "netns: the coordinator exited with $status"; failed=1; }
grep -q "w1 (rank [0-9]) declared down" "$out/coordinator.log" || { echo "netns: w1 was not declared down"; failed=1; }
grep -q "recovered: step" "$out/coordinator.log" || { echo "netns: no recovery logged"; failed=1; }
grep -q "step 30/30" "$out/coordinator.log" || { echo "netns: the run did not finish its 30 steps"; failed=1; }
[[ "$loopback_status" == 1 ]] && grep -q "loopback address, but connects from $(host_address w0)" "$out/loopback.log" \
  || { echo "netns: a worker advertising loopback from another host was not refused with the reason"; cat "$out/loopback.log"; failed=1; }
for i in 0 2; do
  grep -q "ring socket on $(host_address "w$i") (the address that reaches the coordinator)" "$out/w$i.log" \
    || { echo "netns: w$i did not advertise its own address"; tail -5 "$out/w$i.log"; failed=1; }
done
[[ -f "$out/run/final/model.safetensors" ]] || { echo "netns: no final weights"; failed=1; }

# Then one command per host starts two ranks (--nproc-per-node 2): 2 hosts x 2 ranks, every
# address and count from the variables a launcher sets (WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
ip netns exec "${prefix}coord" env WORLD_SIZE=4 MASTER_PORT=5556 timeout "$(seconds 120)" "$bin/scvae-coordinator" \
  --insecure --config tiny --steps 6 --global-batch 8 --checkpoint-every 0 --checkpoint-dir "$out/nproc-run" \
  --cache-dir "$cache" --liveness-deadline "$(seconds 2.5)" > "$out/nproc-coordinator.log" 2>&1 &
nproc_coordinator=$!
nproc_nodes=()
for i in 0 2; do
  ip netns exec "${prefix}w$i" env MASTER_ADDR="$coordinator_address" MASTER_PORT=5556 timeout "$(seconds 120)" \
    "$bin/scvae-worker" --nproc-per-node 2 --threads 1 --insecure --worker-id "w$i" --cache-dir "$cache" \
    --reconnect-timeout "$(seconds 60)" > "$out/nproc-w$i.log" 2>&1 &
  nproc_nodes+=($!)
done
wait "$nproc_coordinator" || { echo "netns: the --nproc-per-node run's coordinator exited with $?"; failed=1; }
for pid in "${nproc_nodes[@]}"; do
  wait "$pid" || { echo "netns: a --nproc-per-node supervisor exited with $?"; failed=1; }
done
grep -q "workers 4 (from WORLD_SIZE), listen tcp://0.0.0.0:5556 (from MASTER_PORT)" "$out/nproc-coordinator.log" \
  || { echo "netns: the coordinator did not take --workers and --listen from the environment"; failed=1; }
grep -q "step 6/6" "$out/nproc-coordinator.log" || { echo "netns: the --nproc-per-node run did not finish"; tail -20 "$out/nproc-coordinator.log"; failed=1; }
for i in 0 2; do
  grep -q "coordinator tcp://$coordinator_address:5556 (from MASTER_ADDR and MASTER_PORT)" "$out/nproc-w$i.log" \
    && grep -q "all 2 ranks finished" "$out/nproc-w$i.log" \
    || { echo "netns: w$i's two ranks did not finish with the coordinator from the environment"; tail -5 "$out/nproc-w$i.log"; failed=1; }
done
if (( failed )); then tail -30 "$out/coordinator.log"; exit 1; fi
echo "netns: w1's link cut after step $cut_at; $(grep -o 'recovered: .*' "$out/coordinator.log" | head -1)"
echo "netns: finished 30 steps across namespaces, then 6 with two --nproc-per-node 2 hosts; logs in $out"

# A second run: w2 advertises a ring address no other host has a route to (a second address on
# its eth0). Its previous rank's connection must fail within --ring-connect-timeout naming it,
# the coordinator must leave w2 out with what to pass, w2 must exit 1 saying so, and the other
# two must finish (--min-workers 2).
"$here/link.sh" w1 up > /dev/null
unroutable="10.79.0.2"
ip netns exec "${prefix}w2" ip addr add "$unroutable/32" dev eth0
ip netns exec "${prefix}coord" timeout "$limit" "$bin/scvae-coordinator" --workers 3 --min-workers 2 \
  --listen "tcp://$coordinator_address:5557" --insecure --config tiny --steps 6 --global-batch 6 \
  --checkpoint-every 0 --checkpoint-dir "$out/run2" --cache-dir "$cache" \
  --liveness-deadline "$(seconds 2.5)" > "$out/coordinator2.log" 2>&1 &
coordinator=$!
for i in 0 1 2; do
  host_flag=()
  [[ "$i" == 2 ]] && host_flag=(--host "$unroutable")
  ip netns exec "${prefix}w$i" timeout "$limit" "$bin/scvae-worker" --coordinator "tcp://$coordinator_address:5557" \
    --insecure --worker-id "u$i" --threads 1 --cache-dir "$cache" "${host_flag[@]}" \
    --ring-connect-timeout "$(seconds 3)" --reconnect-timeout "$(seconds 60)" > "$out/u$i.log" 2>&1 &
  [[ "$i" == 2 ]] && unreachable_worker=$!
done
wait "$coordinator"
status=$?
wait "$unreachable_worker"
unreachable_status=$?
[[ "$status" == 0 ]] || { echo "netns: with an unreachable worker the coordinator exited with $status"; failed=1; }
grep -q "worker u2 (rank [0-9]) is left out of the run: worker u[01] (ring at tcp://[0-9.:]*) cannot connect to its ring address tcp://$unroutable:" "$out/coordinator2.log" \
  || { echo "netns: the unreachable worker u2 was not left out with the reason"; failed=1; }
grep -q "step 6/6" "$out/coordinator2.log" || { echo "netns: the run without u2 did not finish its 6 steps"; failed=1; }
[[ "$unreachable_status" == 1 ]] && grep -q "could not connect to this worker's ring address tcp://$unroutable:" "$out/u2.log" \
  || { echo "netns: u2 did not exit 1 with the reason (status $unreachable_status)"; tail -5 "$out/u2.log"; failed=1; }
if (( failed )); then tail -30 "$out/coordinator2.log"; exit 1; fi
echo "netns: a worker with an unreachable ring address was left out; the other two finished 6 steps"
grep -m 1 "^netns: delay" "$out/shape.log" || true
