#!/usr/bin/env bash
# Training throughput of `scvae-coordinator --local` at N = 1 and N = 2 workers, one BLAS thread
# each (never more workers than cores), on the built-in sample data. Prints images/s and the
# step-time breakdown (data, compute, all-reduce wait; the slowest rank per step), the median over
# the steps after the first two (warm-up). N = 2 runs once per ring transport in RINGS (default
# "tcp shm": ZeroMQ over tcp://127.0.0.1, then shared memory; `--ring-transport`).
#
#   cluster/local/bench-training.sh                 # small, global batch 16, 8 steps
#   CONFIG=tiny BATCH=32 STEPS=12 RINGS=shm cluster/local/bench-training.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
config="${CONFIG:-small}"
batch="${BATCH:-16}"
steps="${STEPS:-8}"
rings="${RINGS:-tcp shm}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
swift build -c release --product scvae-coordinator >/dev/null
swift build -c release --product scvae-worker >/dev/null
echo "config $config, global batch $batch, $steps steps, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
count=0
for run in 1:tcp $(for ring in $rings; do echo "2:$ring"; done); do
  count=$((count + 1))
  n="${run%%:*}" ring="${run#*:}" name="run$count-n${run%%:*}-${run#*:}"
  .build/release/scvae-coordinator --local --workers "$n" --worker-threads 1 --config "$config" \
    --global-batch "$batch" --micro-batch "$batch" --steps "$steps" --listen tcp://127.0.0.1:0 --ring-transport "$ring" \
    --checkpoint-every 0 --checkpoint-dir "$out/$name" --metrics "$out/$name.jsonl" --log-every "$steps" >"$out/$name.log" 2>&1 \
    || { tail -20 "$out/$name.log"; exit 1; }
  python3 - "$out/$name.jsonl" "$n" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
rows = rows[2:] if len(rows) > 3 else rows
med = lambda key: statistics.median(r[key] for r in rows)
ring = rows[-1].get("ring_transport", "?") if sys.argv[2] != "1" else "none (one rank)"
print(f"N={sys.argv[2]} (1 thread each), ring {ring}: {med('images_per_s'):.2f} images/s | step {med('step_s'):.3f} s: "
      f"data {med('data_s'):.3f} s, compute {med('compute_s'):.3f} s, all-reduce wait {med('allreduce_s'):.3f} s, "
      f"hidden behind backward {med('allreduce_hidden_s'):.3f} s (median of {len(rows)} steps)")
PY
done
