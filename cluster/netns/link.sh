#!/usr/bin/env bash
# Takes one host's link down or up (a network partition of that host, the process keeps running).
#
#   cluster/netns/link.sh w1 down
#   cluster/netns/link.sh w1 up
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
require_root

host="${1:?usage: $0 HOST(coord|wN) up|down}"
state="${2:?usage: $0 HOST(coord|wN) up|down}"
[[ "$state" == up || "$state" == down ]] || { echo "usage: $0 HOST up|down" >&2; exit 2; }
# The switch-side end: the host keeps its address and its sockets, only the wire is cut.
in_ns "$switch" ip link set "p-$host" "$state"
echo "netns: $host link $state"
