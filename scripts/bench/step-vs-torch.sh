#!/usr/bin/env bash
# One training step, ours beside PyTorch's, in alternating rounds on one quiet machine:
# `scvae bench step` then scripts/bench/torch_step.py with the same configuration, batch and
# thread count, for each of THREADS, ROUNDS times for each of CONFIGS, then imagenet-f16 at batch 2
# once each on the first of THREADS (F16=0 skips it). Waits (at most 10 minutes) for the 1-minute
# load to fall under 1.0 before starting.
#
#   ROUNDS=3 CONFIGS="tiny small" THREADS=1 F16=1 scripts/bench/step-vs-torch.sh
#   ROUNDS=2 CONFIGS=small THREADS="1 2" F16=0 scripts/bench/step-vs-torch.sh    (thread scaling)
set -uo pipefail
cd "$(dirname "$0")/../.."
rounds="${ROUNDS:-3}" configs="${CONFIGS:-tiny small}" threads="${THREADS:-1}" f16="${F16:-1}"
[[ -x .build/release/scvae ]] || { echo "step-vs-torch: build first: swift build -c release" >&2; exit 2; }
for _ in $(seq 1 60); do
  awk '{ exit !($1 < 1.0) }' /proc/loadavg && break
  sleep 10
done
awk '{ exit !($1 < 1.0) }' /proc/loadavg || echo "step-vs-torch: the load did not fall under 1.0 in 10 minutes; figures taken anyway"
echo "start $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
ours() { .build/release/scvae bench step --config "$1" --batch "$2" --threads "$4" --steps "$3" | grep -E "sgemm|step:"; }
theirs() { python3 scripts/bench/torch_step.py --config "$1" --batch "$2" --threads "$4" --steps "$3" | grep -E "ms/step|images/s"; }
for round in $(seq 1 "$rounds"); do
  for config in $configs; do
    for t in $threads; do
      echo "== round $round, $config, $t thread(s), scvae, load $(cut -d' ' -f1 /proc/loadavg)"; ours "$config" 16 5 "$t"
      echo "== round $round, $config, $t thread(s), PyTorch, load $(cut -d' ' -f1 /proc/loadavg)"; theirs "$config" 16 5 "$t"
    done
  done
done
if [[ "$f16" == 1 ]]; then
  first="${threads%% *}"
  echo "== imagenet-f16, batch 2, $first thread(s), scvae"; ours imagenet-f16 2 3 "$first"
  echo "== imagenet-f16, batch 2, $first thread(s), PyTorch"; theirs imagenet-f16 2 3 "$first"
fi
echo "end $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)"
