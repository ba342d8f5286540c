#!/usr/bin/env bash
# Shapes every host's link: bandwidth with tbf (token bucket) on its egress, latency and loss with
# netem where the kernel has it, else with nfq-delay (delay/nfq-delay.c: NFQUEUE and a small
# daemon per host). `off` removes all of it.
#
#   cluster/netns/shape.sh 1gbit                                   # each host sends at most 1 Gbit/s
#   SCVAE_NETNS_DELAY=1ms cluster/netns/shape.sh 1gbit             # ... and 1 ms each way
#   SCVAE_NETNS_DELAY=1ms SCVAE_NETNS_LOSS=0.5% cluster/netns/shape.sh none   # latency and loss only
#   cluster/netns/shape.sh off
#
# Every host's link gets the delay and loss once per direction: the round trip between two hosts
# grows by 2 x delay, and a packet is lost with probability LOSS on each hop between hosts. netem
# does it on each host's egress; nfq-delay on each host's ingress (a packet held on its way out
# would still count against its TCP socket's small-queue limit: delay/nfq-delay.c says more).
# SCVAE_NETNS_DELAY_TOOL=netem|nfqueue forces one (default: netem if tc accepts it);
# SCVAE_NETNS_SEED (default 1) seeds nfq-delay's losses (host i uses seed + i);
# SCVAE_NETNS_DELAY_LIMIT (default 3600 s) bounds each nfq-delay daemon. Daemons of an earlier
# shaping are stopped first, and their last lines (packets, losses, CPU time) printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
require_root

rate="${1:?usage: $0 RATE (e.g. 1gbit, 100mbit) | none (no bandwidth limit) | off}"
delay="${SCVAE_NETNS_DELAY:-0}" loss="${SCVAE_NETNS_LOSS:-0}" tool="${SCVAE_NETNS_DELAY_TOOL:-auto}"
[[ "$tool" == auto || "$tool" == netem || "$tool" == nfqueue ]] \
  || { echo "netns: SCVAE_NETNS_DELAY_TOOL is auto, netem or nfqueue, not '$tool'" >&2; exit 2; }
[[ "$delay" =~ ^([0-9]+(\.[0-9]+)?(ms|us|s)|0)$ ]] || { echo "netns: SCVAE_NETNS_DELAY takes e.g. 1ms, 250us or 0, not '$delay'" >&2; exit 2; }
[[ "$loss" =~ ^([0-9]+(\.[0-9]+)?%|0)$ ]] || { echo "netns: SCVAE_NETNS_LOSS takes a percentage, e.g. 0.5%, not '$loss'" >&2; exit 2; }
namespaces=$(our_namespaces | grep -v "^$switch$" || true)
[[ -n "$namespaces" ]] || { echo "netns: no hosts; run setup.sh first" >&2; exit 1; }

for ns in $namespaces; do
  delay_stop "$ns" || true   # prints the stopped daemon's last line: its packets and CPU time
  in_ns "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
done
[[ "$rate" == off ]] && { echo "netns: links of ${prefix}* unshaped"; exit 0; }

# Bandwidth: tbf at the root. burst: at least one MTU and ~1 ms worth of the rate; latency bounds
# the queue. SCVAE_NETNS_BURST overrides the burst: a full bucket leaves at once after an idle
# spell. Latency by netem goes below tbf (parent 1:1), or at the root when RATE is none.
netem_parent=(root)
if [[ "$rate" != none ]]; then
  for ns in $namespaces; do
    in_ns "$ns" tc qdisc add dev eth0 root handle 1: tbf rate "$rate" burst "${SCVAE_NETNS_BURST:-256kb}" latency 50ms
  done
  netem_parent=(parent 1:1)
fi

if [[ "$delay" != 0 || "$loss" != 0 ]]; then
  first="$(echo "$namespaces" | head -n 1)"
  netem=(tc qdisc add dev eth0 "${netem_parent[@]}" handle 10: netem delay "$delay" loss "$loss")
  use=nfqueue
  if [[ "$tool" != nfqueue ]]; then
    if said=$(in_ns "$first" "${netem[@]}" 2>&1); then
      use=netem
    elif [[ "$tool" == netem ]]; then
      echo "netns: SCVAE_NETNS_DELAY_TOOL=netem, but '${netem[*]}' said: $said" >&2; exit 1
    fi
  fi
  if [[ "$use" == netem ]]; then
    for ns in $namespaces; do [[ "$ns" == "$first" ]] || in_ns "$ns" "${netem[@]}"; done
    echo "netns: delay $delay, loss $loss on each host's egress by netem"
  else
    index=0
    for ns in $namespaces; do
      delay_start "$ns" "$delay" "$loss" $(( ${SCVAE_NETNS_SEED:-1} + index )) \
        || { echo "netns: could not add the delay in $ns; removing what was added" >&2; "$0" off > /dev/null; exit 1; }
      index=$(( index + 1 ))
    done
    why="SCVAE_NETNS_DELAY_TOOL=nfqueue"
    [[ "$tool" == nfqueue ]] || why="'${netem[*]}' said: ${said:-?}"
    echo "netns: delay $delay, loss $loss on each host's ingress by nfq-delay (NFQUEUE, one daemon per host; $why)"
  fi
fi
for ns in $namespaces; do
  line="$ns: $(in_ns "$ns" tc qdisc show dev eth0 | head -n 2 | tr '\n' ' ')"
  [[ -f "$(delay_dir)/$ns.pid" ]] && line+="+ nfq-delay pid $(cat "$(delay_dir)/$ns.pid")"
  echo "$line"
done
