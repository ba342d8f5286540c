#!/usr/bin/env bash
# Removes every namespace setup.sh made (their veth pairs and the bridge go with them).
# Idempotent; bounded in time. nfq-delay daemons (shape.sh) are stopped first, their rules
# removed and their last lines (packets, CPU time) printed; other processes inside are ended.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
require_root

for ns in $(our_namespaces); do
  delay_stop "$ns" || true
  pids=$(timeout 10 ip netns pids "$ns" 2>/dev/null || true)
  if [[ -n "$pids" ]]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 25); do
      [[ -z "$(timeout 10 ip netns pids "$ns" 2>/dev/null)" ]] && break
      sleep 0.2
    done
    pids=$(timeout 10 ip netns pids "$ns" 2>/dev/null || true)
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
  fi
  run ip netns del "$ns"
done
left=$(our_namespaces)
[[ -z "$left" ]] || { echo "netns: could not remove: $left" >&2; exit 1; }
echo "netns: nothing left of prefix ${prefix}"
