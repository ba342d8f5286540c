#!/usr/bin/env bash
# What watching a run costs: small at N=2 (--local, one BLAS thread per worker) with and without
# --timeline, alternating, ROUNDS times; then one run validating once on the sample data's
# held-out set, whose validation time is set against the step time to give the cost of
# validating every 500 steps. Prints images/s (mean over the steps after the first two) per run.
#
#   ROUNDS=2 STEPS=12 scripts/bench/observability_cost.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
rounds="${ROUNDS:-2}" steps="${STEPS:-12}"
bin=.build/release
[[ -x $bin/scvae-coordinator ]] || { echo "observability_cost: build first: swift build -c release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "start $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
rate() {  # mean images_per_s of the step lines after the first two
  python3 -c "
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [l for l in lines if l.get('kind') != 'validation'][2:]
print('%.3f' % (sum(l['images_per_s'] for l in steps) / len(steps)))" "$1"
}
train() {  # name, extra arguments...
  local name=$1; shift
  rm -rf "$work/$name"
  $bin/scvae-coordinator --local --workers 2 --worker-threads 1 --config small --global-batch 16 --steps "$steps" \
    --checkpoint-every 0 --listen tcp://127.0.0.1:0 --checkpoint-dir "$work/$name" "$@" > "$work/$name.log" 2>&1 \
    || { echo "run $name failed:"; tail -20 "$work/$name.log"; exit 1; }
}
for round in $(seq 1 "$rounds"); do
  train base --val-every 0
  echo "round $round  without --timeline: $(rate "$work/base/metrics.jsonl") images/s (load $(cut -d' ' -f1 /proc/loadavg))"
  train timeline --val-every 0 --timeline "$work/timeline.json"
  echo "round $round  with --timeline:    $(rate "$work/timeline/metrics.jsonl") images/s (load $(cut -d' ' -f1 /proc/loadavg)), $(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$work/timeline.json") trace events"
done
train validation --val-every "$steps"
python3 - "$work/validation/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [l for l in lines if l.get("kind") != "validation"][2:]
validation = [l for l in lines if l.get("kind") == "validation"][0]
step_s = sum(l["step_s"] for l in steps) / len(steps)
print(f"validation of {validation['images']} images: {validation['seconds']:.2f} s; mean step {step_s:.3f} s; "
      f"every 500 steps that is {100 * validation['seconds'] / (500 * step_s):.2f}% of the training time")
PY
echo "end $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)"
