#!/usr/bin/env bash
# Checks nfq-delay on two hosts (scvae-c-coord, scvae-c-w0 on 10.81.0.0/24) and prints figures:
#   1. ping round trip unshaped, then with DELAY per host: it should grow by 2 x DELAY;
#   2. ping loss with LOSS on w0 only (and none on coord): the ratio should be LOSS;
#   3. a TCP stream w0 -> coord for SECONDS over tbf RATE, then over tbf RATE + DELAY: the rates,
#      the machine's busy cores in each, and each daemon's CPU time over the second (coord's
#      daemon holds the data, w0's the ACKs).
#
#   cluster/netns/delay/check.sh [--delay 1ms] [--loss 1%] [--pings 2000] [--rate 1gbit] [--seconds 10]
#
# Needs root, iproute2, ping (iputils-ping) and python3. Bounded in time (each step has a
# timeout); the namespaces are removed on any exit. Exit 0: figures printed (they are not
# judged here); 77: cannot run here; 1: a step failed.
set -uo pipefail
netns="$(cd "$(dirname "$0")/.." && pwd)"
export SCVAE_NETNS_PREFIX="${SCVAE_NETNS_PREFIX:-scvae-c-}"
export SCVAE_NETNS_SUBNET="${SCVAE_NETNS_SUBNET:-10.81.0}"
source "$netns/common.sh"

delay=1ms loss=1% pings=2000 rate=1gbit seconds=10
while (( $# )); do
  case "$1" in
    --delay) delay="${2:?}"; shift 2 ;;
    --loss) loss="${2:?}"; shift 2 ;;
    --pings) pings="${2:?}"; shift 2 ;;
    --rate) rate="${2:?}"; shift 2 ;;
    --seconds) seconds="${2:?}"; shift 2 ;;
    *) echo "check: unknown argument '$1'" >&2; sed -n 8p "$0" | sed 's/^# *//' >&2; exit 2 ;;
  esac
done
[[ "$pings" =~ ^[0-9]+$ && "$seconds" =~ ^[0-9]+$ && "$pings" -le 100000 && "$seconds" -le 120 ]] \
  || { echo "check: --pings (at most 100000) and --seconds (at most 120) take whole numbers" >&2; exit 2; }
for tool in ip tc ping python3; do
  command -v "$tool" >/dev/null || { echo "check: needs $tool: skipped"; exit 77; }
done
[[ "$(id -u)" == 0 ]] || { echo "check: needs root: skipped"; exit 77; }

trap '"$netns/teardown.sh" > /dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
"$netns/setup.sh" 1 > /dev/null || { echo "check: cannot make network namespaces here: skipped"; exit 77; }
w0="$(host_namespace w0)" coord="$(host_namespace coord)" coord_address="$(host_address coord)"
export SCVAE_NETNS_DELAY_LIMIT=600

# ping -c COUNT -i INTERVAL from w0 to coord: prints "rtt min/avg/max/mdev ..." and the loss line.
# -U: time from user space to user space. Without it ping reads the reply's kernel receive
# timestamp, taken on arrival at eth0, before nfq-delay holds it: it would see one delay only.
pings_from_w0() { timeout 120 ip netns exec "$w0" ping -U -n -q -c "$1" -i "$2" -W 1 "$coord_address" | tail -n 2; }

echo "1. round trip w0 -> coord -> w0 (ping, 200 at 10 ms intervals)"
echo "   unshaped:            $(pings_from_w0 200 0.01 | tail -n 1)"
SCVAE_NETNS_DELAY="$delay" "$netns/shape.sh" none > /dev/null || { echo "check: shape.sh failed"; exit 1; }
echo "   delay $delay per host: $(pings_from_w0 200 0.01 | tail -n 1)"

echo "2. loss $loss on w0 only ($pings pings at 2 ms intervals; a lost echo reply is a lost ping)"
"$netns/shape.sh" off > /dev/null
SCVAE_NETNS_LOSS="$loss" SCVAE_NETNS_SEED=1 "$netns/shape.sh" none > /dev/null || { echo "check: shape.sh failed"; exit 1; }
delay_stop "$coord" > /dev/null   # the requests are not lost: only what arrives at w0
echo "   ping:   $(pings_from_w0 "$pings" 0.002 | head -n 1)"
echo "   daemon: $(delay_stop "$w0")"

echo "3. TCP w0 -> coord for $seconds s (python3 sockets, 1 MiB writes), tbf $rate, without and with $delay per host"
receiver='
import socket, sys, time
server = socket.create_server((sys.argv[1], 5999)); server.settimeout(30)
connection, _ = server.accept(); connection.settimeout(30)
buffer, total, start = bytearray(1 << 20), 0, time.monotonic()
while (n := connection.recv_into(buffer)):
    total += n
elapsed = time.monotonic() - start
print(f"{total / 1e6:.0f} MB in {elapsed:.2f} s: {total * 8 / elapsed / 1e9:.3f} Gbit/s")'
sender='
import socket, sys, time
connection = socket.create_connection((sys.argv[1], 5999), timeout=30)
data, end = b"x" * (1 << 20), time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    connection.sendall(data)
connection.close()'
ticks=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }   # all cores, not idle
daemon_ticks() { awk '{ print $14, $15 }' "/proc/$(cat "$(delay_dir)/$1.pid")/stat"; }  # user, system
cores() { awk -v b="$1" -v t="$ticks" -v s="$seconds" 'BEGIN { printf "%.2f cores busy", b / t / s }'; }
stream() {                                            # prints the rate and the machine's busy cores
  local out receiver_pid before busy
  out="$(mktemp)"
  timeout $(( seconds + 40 )) ip netns exec "$coord" python3 -c "$receiver" "$coord_address" > "$out" 2>&1 &
  receiver_pid=$!
  sleep 0.5
  before=$(busy_ticks)
  timeout $(( seconds + 30 )) ip netns exec "$w0" python3 -c "$sender" "$coord_address" "$seconds" || echo "check: the sender failed"
  wait "$receiver_pid" || echo "check: the receiver failed"
  busy=$(( $(busy_ticks) - before ))
  echo "$(cat "$out"); machine: $(cores "$busy")"
  rm -f "$out"
}
"$netns/shape.sh" off > /dev/null
"$netns/shape.sh" "$rate" > /dev/null || { echo "check: shape.sh failed"; exit 1; }
echo "   tbf only:        $(stream)"
SCVAE_NETNS_DELAY="$delay" "$netns/shape.sh" "$rate" > /dev/null || { echo "check: shape.sh failed"; exit 1; }
read -r user_w0 system_w0 < <(daemon_ticks "$w0")
read -r user_coord system_coord < <(daemon_ticks "$coord")
echo "   tbf + $delay/host: $(stream)"
read -r user_w0_after system_w0_after < <(daemon_ticks "$w0")
read -r user_coord_after system_coord_after < <(daemon_ticks "$coord")
share() { awk -v u="$1" -v s="$2" -v t="$ticks" -v d="$seconds" 'BEGIN { printf "user %.2f s + system %.2f s = %.1f%% of a core", u / t, s / t, 100 * (u + s) / t / d }'; }
echo "   nfq-delay over the stream: coord (holds the data) $(share $(( user_coord_after - user_coord )) $(( system_coord_after - system_coord )))"
echo "                              w0 (holds the ACKs) $(share $(( user_w0_after - user_w0 )) $(( system_w0_after - system_w0 )))"
echo "   (a verdict re-injects the packet in the daemon's context: its system time holds the rest of"
echo "   the packet's way in, routing and the receiving socket's TCP work, that a softirq runs otherwise)"
echo "   daemons at stop:"
"$netns/shape.sh" off | grep nfq-delay | sed 's/^/     /'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(nproc) cores"
