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

# Latency and loss without sch_netem: delay/nfq-delay.c, one daemon per host namespace holding
# the IPv4 packets that arrive on the host's eth0 (NFQUEUE) for the delay. Compiled on first use with cc into
# the repository's .build (kernel headers only). Its pid file and log are in delay_dir.
netns_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
delay_queue=7
delay_dir() { echo "${TMPDIR:-/tmp}/${prefix}netns-delay"; }

delay_tool() {                                      # prints the binary's path, compiling it if needed
  local source="$netns_dir/delay/nfq-delay.c" out_dir="$netns_dir/../../.build/netns-delay"
  local binary="$out_dir/nfq-delay"
  if [[ ! -x "$binary" || "$source" -nt "$binary" ]]; then
    command -v cc >/dev/null || { echo "netns: cannot build $source: no C compiler (cc)" >&2; return 1; }
    mkdir -p "$out_dir" || return 1
    timeout 120 cc -O2 -Wall -o "$binary.tmp.$$" "$source" >&2 \
      || { echo "netns: compiling $source failed" >&2; rm -f "$binary.tmp.$$"; return 1; }
    mv -f "$binary.tmp.$$" "$binary"
  fi
  echo "$(cd "$out_dir" && pwd)/nfq-delay"
}

# delay_start NS DELAY LOSS SEED: starts the daemon in NS, waits (at most 10 s) until it has bound
# the queue, then adds the rule that sends what arrives on NS's eth0 to it. Bounded by
# SCVAE_NETNS_DELAY_LIMIT seconds (default 3600), after which that host's link drops everything
# (with SCVAE_NETNS_DELAY_BYPASS=1 it passes packets undelayed instead).
delay_start() {
  local ns="$1" delay="$2" loss="$3" seed="$4" tool dir
  tool="$(delay_tool)" || return 1
  dir="$(delay_dir)"
  mkdir -p "$dir" || return 1
  rm -f "$dir/$ns.pid"
  # Its own session and no inherited stdout: a caller reading our output is not held open by it.
  setsid ip netns exec "$ns" "$tool" run --delay "$delay" --loss "$loss" --seed "$seed" --queue "$delay_queue" \
    --limit "${SCVAE_NETNS_DELAY_LIMIT:-3600}" --pidfile "$dir/$ns.pid" < /dev/null > "$dir/$ns.log" 2>&1 &
  local i
  for (( i = 0; i < 100; i++ )); do
    grep -q "bound queue" "$dir/$ns.log" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q "bound queue" "$dir/$ns.log" 2>/dev/null; then
    echo "netns: nfq-delay did not start in $ns: $(tail -n 3 "$dir/$ns.log" 2>/dev/null | tr '\n' ' ')" >&2
    return 1
  fi
  in_ns "$ns" "$tool" rule-add --queue "$delay_queue" --dev eth0 --bypass "${SCVAE_NETNS_DELAY_BYPASS:-0}" > /dev/null
}

delay_running() {                                   # PID is alive (not a zombie awaiting its reaper)
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)"
  [[ -n "$state" && "$state" != Z ]]
}

# delay_stop NS: removes the rule (the link is then undelayed), stops the daemon (it accepts what
# it still holds) and prints its last line (packets, losses, CPU time). Nothing when none ran.
delay_stop() {
  local ns="$1" dir pid tool i
  dir="$(delay_dir)"
  [[ -f "$dir/$ns.log" ]] || return 0
  tool="$(delay_tool)" || return 1
  in_ns "$ns" "$tool" rule-del > /dev/null 2>&1 || true   # the namespace may be gone already
  pid="$(cat "$dir/$ns.pid" 2>/dev/null || true)"
  if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == nfq-delay ]] && delay_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do delay_running "$pid" || break; sleep 0.1; done
    if delay_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "$ns: $(tail -n 1 "$dir/$ns.log")"
  else
    # Its link dropped every packet since (no bypass): say so, with the end of its log.
    echo "$ns: nfq-delay had already ended; its log ends: $(tail -n 2 "$dir/$ns.log" | tr '\n' ' ')"
  fi
  rm -f "$dir/$ns.log" "$dir/$ns.pid"
  rmdir "$dir" 2>/dev/null || true
}
