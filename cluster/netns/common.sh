# Shared by setup.sh, shape.sh, link.sh and teardown.sh: names, addresses and a bounded `ip`.
# Hosts are network namespaces ${prefix}coord and ${prefix}w0..w(N-1); a switch namespace
# ${prefix}switch holds the bridge, so the machine's own namespace is never changed.
prefix="${SCVAE_NETNS_PREFIX:-scvae-}"
subnet="${SCVAE_NETNS_SUBNET:-10.77.0}"
switch="${prefix}switch"
bridge="br0"

# Every command is bounded in time: no step of these scripts can hang.
run() { timeout 10 "$@"; }
in_ns() { local ns="$1"; shift; timeout 10 ip netns exec "$ns" "$@"; }

require_root() {
  [[ "$(id -u)" == 0 ]] || { echo "netns: needs root (ip netns)" >&2; exit 1; }
  command -v ip >/dev/null || { echo "netns: needs iproute2 (ip)" >&2; exit 1; }
}

host_namespace() { echo "${prefix}$1"; }          # coord, w0, w1, ...
host_address() {                                    # coord = .1, worker i = .(10 + i)
  if [[ "$1" == coord ]]; then echo "$subnet.1"; else echo "$subnet.$(( 10 + ${1#w} ))"; fi
}
our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}(coord|switch|w[0-9]+)$" || true; }
