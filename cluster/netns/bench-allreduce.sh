#!/usr/bin/env bash
# The ring all-reduce over shaped links, beside the alpha-beta prediction
# 2(N-1)*alpha + 2(N-1)/N * S/B. Each rank runs in its own network namespace (setup.sh), every
# host's outgoing link is shaped with tbf (shape.sh), and `scvae bench alpha-beta` measures alpha
# (small-message round trips) and B (one large transfer) in the same run, then the all-reduce for
# each N and S, and prints the prediction extrapolated to 64 and 256 ranks. Bounded in time;
# everything is torn down on exit, also on failure or interruption.
#
#   cluster/netns/bench-allreduce.sh [--rate 1gbit] [--delay 1ms] [--mib 1,4,16,64] [--iterations 10] [--piece-kib 1024]
#                                    [--oversubscribe] [--bin .build/release] [--limit 900] [--wait-quiet 300]
#
# --delay D also delays each direction of every link by D (netem on egress where the kernel has
# it, else nfq-delay on ingress, as shape.sh says), so a link is e.g. 1 Gbit/s + 1 ms one way,
# 2 ms round trip; nfq-delay's packet counts and CPU time are printed at the end. Without it the
# links are bandwidth-shaped only, as before.
#
# N = 2 only by default: benchmarks never run more processes than cores (docs/decisions.md), and this
# machine has 2. --oversubscribe adds N = 3 and 4 and is a check of the model's (N-1) terms, not
# a performance figure; every row prints each rank's CPU time over wall time, which says whether
# the link or the cores set the pace.
#
# Exit 0: figures printed. 77: network namespaces cannot be made here. 2: bad arguments.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SCVAE_NETNS_PREFIX="${SCVAE_NETNS_PREFIX:-scvae-b-}"
export SCVAE_NETNS_SUBNET="${SCVAE_NETNS_SUBNET:-10.79.0}"
source "$here/common.sh"

rate=1gbit delay=0 mib=1,4,16,64 iterations=10 piece_kib=1024 oversubscribe=0 bin=.build/release limit=900
max_load=1.5 wait_quiet=300
usage() { sed -n '9,10p' "$0" | sed 's/^# *//' >&2; exit 2; }
while (( $# )); do
  case "$1" in
    --rate) rate="${2:?}"; shift 2 ;;
    --delay) delay="${2:?}"; shift 2 ;;
    --mib) mib="${2:?}"; shift 2 ;;
    --iterations) iterations="${2:?}"; shift 2 ;;
    --piece-kib) piece_kib="${2:?}"; shift 2 ;;
    --oversubscribe) oversubscribe=1; shift ;;
    --bin) bin="${2:?}"; shift 2 ;;
    --limit) limit="${2:?}"; shift 2 ;;
    --wait-quiet) wait_quiet="${2:?}"; shift 2 ;;
    *) echo "bench-allreduce: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$limit" =~ ^[0-9]+$ && "$wait_quiet" =~ ^[0-9]+$ ]] || { echo "bench-allreduce: --limit and --wait-quiet take whole seconds" >&2; exit 2; }
[[ -x "$bin/scvae" ]] || { echo "bench-allreduce: no $bin/scvae; build with 'swift build -c release' or pass --bin DIR" >&2; exit 2; }
bin="$(cd "$bin" && pwd)"

if (( oversubscribe )); then workers=2,3,4; hosts_needed=4; else workers=2; hosts_needed=2; fi

[[ "$(id -u)" == 0 ]] && command -v ip >/dev/null && command -v tc >/dev/null \
  || { echo "bench-allreduce: needs root, iproute2 (ip) and tc to make network namespaces: skipped"; exit 77; }
log="$(mktemp -d -t scvae-bench-netns-XXXXXX)"
trap '"$here/teardown.sh" >/dev/null 2>&1; rm -rf "$log"' EXIT
trap 'exit 130' INT TERM
"$here/setup.sh" "$hosts_needed" > "$log/setup.log" 2>&1 \
  || { echo "bench-allreduce: cannot make network namespaces here: skipped"; cat "$log/setup.log"; exit 77; }
# The delay daemons (if any) outlive the benchmark by at most 5 minutes should teardown not run.
SCVAE_NETNS_DELAY="$delay" SCVAE_NETNS_DELAY_LIMIT=$(( limit + wait_quiet + 300 )) "$here/shape.sh" "$rate" > "$log/shape.log" 2>&1 \
  || { echo "bench-allreduce: shaping the links failed:"; cat "$log/shape.log"; exit 1; }
echo "links (tc qdisc show dev eth0 in each namespace):"
sed 's/^/  /' "$log/shape.log"

# tbf's bucket fills while a link idles, and then leaves at once: a ring step's wait for its
# peer, up to burst/rate, is paid back in the next step's sending. Say how much that is.
awk '/ tbf / { for (i = 1; i < NF; i++) { if ($i == "rate") rate = $(i + 1); if ($i == "burst") burst = $(i + 1) } }
  END {
    if (rate == "" || burst == "") exit
    r = rate + 0; if (rate ~ /Gbit/) r *= 1e9; else if (rate ~ /Mbit/) r *= 1e6; else if (rate ~ /Kbit/) r *= 1e3
    b = burst + 0; if (burst ~ /Mb$/) b *= 1048576; else if (burst ~ /Kb$/) b *= 1024
    printf "tbf bucket: burst %d bytes at %s = %.2f ms; a link that waited up to that long sends as much at once afterwards\n", b, rate, b * 8 / r * 1000
  }' "$log/shape.log"

if [[ "$delay" == 0 ]]; then
  # Without --delay: say whether netem would have been there (here it is not).
  netem=(tc qdisc add dev eth0 parent 1:1 handle 10: netem delay 1ms)
  if output=$(in_ns "$(host_namespace coord)" "${netem[@]}" 2>&1); then
    echo "latency: none added ('${netem[*]}' works here; --delay 1ms adds it)"
    in_ns "$(host_namespace coord)" tc qdisc del dev eth0 parent 1:1 handle 10: 2>/dev/null || true
  else
    echo "latency: none added ('${netem[*]}' said: $output; --delay 1ms adds it with nfq-delay)"
  fi
fi

# Other work on this machine skews the figures: wait (at most --wait-quiet s) for a load below 1.5.
deadline=$(( $(date +%s) + wait_quiet ))
while awk -v m="$max_load" '{ exit !($1 >= m) }' /proc/loadavg && (( $(date +%s) < deadline )); do sleep 5; done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)$(awk -v m="$max_load" '$1 >= m { printf " - above %s after waiting %d s", m, '"$wait_quiet"' }' /proc/loadavg)"

hosts=""
for (( i = 0; i < hosts_needed; i++ )); do hosts+="${hosts:+,}$(host_address "w$i")"; done
extra=()
(( oversubscribe )) && extra+=(--oversubscribe)
timeout "$limit" "$bin/scvae" bench alpha-beta --workers "$workers" --mib "$mib" --iterations "$iterations" \
  --piece-kib "$piece_kib" --link-rate "$rate" --extrapolate-alpha-ms 1 --launcher "ip netns exec ${prefix}w{rank}" --hosts "$hosts" "${extra[@]}"
status=$?
(( status == 124 )) && echo "bench-allreduce: the benchmark did not finish in $limit s (--limit)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$delay" != 0 ]] && grep -q nfq-delay "$log/shape.log"; then
  echo "nfq-delay daemons (one per host, from start to stop of the links):"
  "$here/shape.sh" off 2>&1 | grep nfq-delay | sed 's/^/  /'
fi
exit "$status"
