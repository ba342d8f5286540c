#!/usr/bin/env bash
# One training step, ours beside PyTorch's, in alternating rounds on one quiet machine:
# `scvae bench step` then scripts/bench/torch_step.py with the same configuration, batch and
# thread count, for each of THREADS, ROUNDS times for each of CONFIGS, then imagenet-f16 at batch 2
# once each on the first of THREADS (F16=0 skips it). Waits (at most 10 minutes) for the 1-minute
# load to fall under LOAD (default 1.0) before starting.
#
# ISA=avx2 holds both sides to AVX2+FMA on a CPU that has AVX-512, as on an AMD EPYC (Zen 3):
# scvae with SCVAE_KERNELS=avx2 OPENBLAS_CORETYPE=Haswell, PyTorch with ONEDNN_MAX_CPU_ISA=AVX2
# MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 (oneDNN's convolutions, MKL's GEMMs, ATen's
# own vector loops); each round then also runs scvae's fallback (SCVAE_KERNELS=fallback, OpenBLAS
# Haswell), what such a CPU ran before the AVX2 kernels. SCVAE=path picks the scvae binary.
#
#   ROUNDS=3 CONFIGS="tiny small" THREADS=1 F16=1 scripts/bench/step-vs-torch.sh
#   ROUNDS=2 CONFIGS=small THREADS="1 2" F16=0 scripts/bench/step-vs-torch.sh    (thread scaling)
#   ISA=avx2 ROUNDS=2 CONFIGS=small THREADS="1 2" F16=0 LOAD=1.5 scripts/bench/step-vs-torch.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
rounds="${ROUNDS:-3}" configs="${CONFIGS:-tiny small}" threads="${THREADS:-1}" f16="${F16:-1}"
isa="${ISA:-native}" load="${LOAD:-1.0}" scvae="${SCVAE:-.build/release/scvae}"
[[ -x "$scvae" ]] || { echo "step-vs-torch: build first: swift build -c release" >&2; exit 2; }
ours_env=() theirs_env=()
if [[ "$isa" == avx2 ]]; then
  ours_env=(SCVAE_KERNELS=avx2 OPENBLAS_CORETYPE=Haswell)
  theirs_env=(ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2)
elif [[ "$isa" != native ]]; then
  echo "step-vs-torch: ISA=$isa: expected native or avx2" >&2; exit 2
fi
for _ in $(seq 1 60); do
  awk -v limit="$load" '{ exit !($1 < limit) }' /proc/loadavg && break
  sleep 10
done
awk -v limit="$load" '{ exit !($1 < limit) }' /proc/loadavg || echo "step-vs-torch: the load did not fall under $load in 10 minutes; figures taken anyway"
echo "start $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, ISA $isa"
ours() { env "${ours_env[@]}" "$scvae" bench step --config "$1" --batch "$2" --threads "$4" --steps "$3" | grep -E "sgemm|kernels|step:"; }
fallback() { env SCVAE_KERNELS=fallback OPENBLAS_CORETYPE=Haswell "$scvae" bench step --config "$1" --batch "$2" --threads "$4" --steps "$3" | grep -E "step:"; }
theirs() { env "${theirs_env[@]}" python3 scripts/bench/torch_step.py --config "$1" --batch "$2" --threads "$4" --steps "$3" | grep -E "ms/step|images/s"; }
for round in $(seq 1 "$rounds"); do
  for config in $configs; do
    for t in $threads; do
      echo "== round $round, $config, $t thread(s), scvae, load $(cut -d' ' -f1 /proc/loadavg)"; ours "$config" 16 5 "$t"
      echo "== round $round, $config, $t thread(s), PyTorch, load $(cut -d' ' -f1 /proc/loadavg)"; theirs "$config" 16 5 "$t"
      if [[ "$isa" == avx2 ]]; then
        echo "== round $round, $config, $t thread(s), scvae fallback, load $(cut -d' ' -f1 /proc/loadavg)"; fallback "$config" 16 5 "$t"
      fi
    done
  done
done
if [[ "$f16" == 1 ]]; then
  first="${threads%% *}"
  echo "== imagenet-f16, batch 2, $first thread(s), scvae"; ours imagenet-f16 2 3 "$first"
  echo "== imagenet-f16, batch 2, $first thread(s), PyTorch"; theirs imagenet-f16 2 3 "$first"
fi
echo "end $(date -u +%FT%H:%M) load $(cut -d' ' -f1-3 /proc/loadavg)"
