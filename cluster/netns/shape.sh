#!/usr/bin/env bash
# Shapes every host's outgoing link with tbf (token bucket: bandwidth only), or removes it.
#
#   cluster/netns/shape.sh 1gbit          # each host sends at most 1 Gbit/s
#   cluster/netns/shape.sh off
#   SCVAE_NETNS_DELAY=1ms cluster/netns/shape.sh 1gbit   # also tries netem for latency
#
# netem (latency, loss) is not available in these kernels (DECISIONS.md): when a delay is asked
# for, the failing tc command and its output are printed and the links stay bandwidth-shaped only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
require_root

rate="${1:?usage: $0 RATE (e.g. 1gbit, 100mbit) | off}"
namespaces=$(our_namespaces | grep -v "^$switch$" || true)
[[ -n "$namespaces" ]] || { echo "netns: no hosts; run setup.sh first" >&2; exit 1; }

for ns in $namespaces; do
  in_ns "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
  [[ "$rate" == off ]] && continue
  # burst: at least one MTU and ~1 ms worth of the rate; latency bounds the queue.
  in_ns "$ns" tc qdisc add dev eth0 root handle 1: tbf rate "$rate" burst 256kb latency 50ms
  if [[ -n "${SCVAE_NETNS_DELAY:-}" ]]; then
    if ! output=$(in_ns "$ns" tc qdisc add dev eth0 parent 1:1 handle 10: netem delay "$SCVAE_NETNS_DELAY" 2>&1); then
      echo "netns: cannot add latency in $ns: 'tc qdisc add dev eth0 parent 1:1 handle 10: netem delay $SCVAE_NETNS_DELAY' said: $output" >&2
    fi
  fi
done
for ns in $namespaces; do echo "$ns: $(in_ns "$ns" tc qdisc show dev eth0 | head -n 2 | tr '\n' ' ')"; done
