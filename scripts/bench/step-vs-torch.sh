#!/usr/bin/env bash
# One training step, ours beside PyTorch's, in alternating rounds on one quiet machine:
# `scvae bench step` then scripts/bench/torch_step.py with the same configuration, batch and one
# thread, ROUNDS times for each of CONFIGS, then imagenet-f16 at batch 2 once each (F16=0 skips it).
# Waits (at most 10 minutes) for the 1-minute load to fall under 1.0 before starting.
#
#   ROUNDS=3 CONFIGS="tiny small" F16=1 scripts/bench/step-vs-torch.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
rounds="${ROUNDS:-3}" configs="${CONFIGS:-tiny small}" f16="${F16:-1}"
[[ -x .build/release/scvae ]] || { echo "step-vs-torch: build first: swift build -c release" >&2; exit 2; }
for _ in $(seq 1 60); do
  awk '{ exit !($1 < 1.0) }' /proc/loadavg && break
  sleep 10
done
awk '{ exit !($1 < 1.0) }' /proc/loadavg || echo "step-vs-torch: the load did not fall under 1.0 in 10 minutes; figures taken anyway"
echo "start $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
ours() { .build/release/scvae bench step --config "$1" --batch "$2" --threads 1 --steps "$3" | grep -E "sgemm|step:"; }
theirs() { python3 scripts/bench/torch_step.py --config "$1" --batch "$2" --threads 1 --steps "$3" | grep -E "ms/step|images/s"; }
for round in $(seq 1 "$rounds"); do
  for config in $configs; do
    echo "== round $round, $config, scvae"; ours "$config" 16 5
    echo "== round $round, $config, PyTorch"; theirs "$config" 16 5
  done
done
if [[ "$f16" == 1 ]]; then
  echo "== imagenet-f16, batch 2, scvae"; ours imagenet-f16 2 3
  echo "== imagenet-f16, batch 2, PyTorch"; theirs imagenet-f16 2 3
fi
echo "end $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)"
