#!/usr/bin/env bash
# Creates one network namespace per host (coordinator and N workers), each with an eth0 joined
# by a veth pair to a bridge, addresses 10.77.0.1 (coord) and 10.77.0.10+i (worker i).
# Idempotent: an earlier set-up of the same prefix is torn down first.
#
#   cluster/netns/setup.sh 3        # scvae-coord, scvae-w0, scvae-w1, scvae-w2
#   ip netns exec scvae-coord .build/release/scvae-coordinator --workers 3 --listen tcp://10.77.0.1:5555
#   ip netns exec scvae-w0 .build/release/scvae-worker --coordinator tcp://10.77.0.1:5555 --host 10.77.0.10
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
require_root

workers="${1:-2}"
[[ "$workers" =~ ^[0-9]+$ && "$workers" -ge 1 && "$workers" -le 200 ]] || { echo "usage: $0 WORKERS (1..200)" >&2; exit 2; }

"$here/teardown.sh" >/dev/null
trap 'echo "netns: set-up failed, tearing down" >&2; "$here/teardown.sh" >/dev/null' ERR

run ip netns add "$switch"
in_ns "$switch" ip link add "$bridge" type bridge
in_ns "$switch" ip link set "$bridge" up
in_ns "$switch" ip link set lo up

hosts=(coord)
for (( i = 0; i < workers; i++ )); do hosts+=("w$i"); done
for host in "${hosts[@]}"; do
  ns="$(host_namespace "$host")"
  run ip netns add "$ns"
  # The pair is made inside the switch namespace (names there are ours alone), then one end moves.
  in_ns "$switch" ip link add "p-$host" type veth peer name eth0 netns "$ns"
  in_ns "$switch" ip link set "p-$host" master "$bridge" up
  in_ns "$ns" ip link set lo up
  in_ns "$ns" ip addr add "$(host_address "$host")/24" dev eth0
  in_ns "$ns" ip link set eth0 up
done

# Every host reaches the coordinator before we say we are done (bounded; needs ping).
if command -v ping >/dev/null; then
  for host in "${hosts[@]:1}"; do
    in_ns "$(host_namespace "$host")" ping -c 1 -W 2 "$(host_address coord)" >/dev/null \
      || { echo "netns: $host cannot reach coord" >&2; false; }
  done
else
  echo "netns: ping is not installed: reachability not checked" >&2
fi
trap - ERR
echo "netns: coord $(host_address coord), workers ${hosts[*]:1} at $subnet.10.. (namespaces ${prefix}*)"
