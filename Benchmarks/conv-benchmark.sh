#!/bin/sh
# Builds and runs the convolution / model-step benchmark (Benchmarks/ConvBenchmark/main.swift) compiled
# together with Sources/Model and Sources/CKernels, optimised, whole-module. SCVAE_BENCH_THREADS sets OpenBLAS threads (default 1);
# SCVAE_KERNELS picks the kernel variant as in the model (docs/model.md, "Kernel variants").
set -e
cd "$(dirname "$0")/.."
mkdir -p .build
objects=""
for source in Sources/CKernels/*.c; do
  object=".build/conv-benchmark-$(basename "$source" .c).o"
  clang -O2 -c "$source" -I Sources/CKernels/include -o "$object"
  objects="$objects $object"
done
# shellcheck disable=SC2086 # one word per object file
swiftc -O -wmo -I Sources/CBLAS -I Sources/CKernels/include Sources/Model/*.swift Benchmarks/ConvBenchmark/main.swift \
    $objects -lopenblas -o .build/conv-benchmark
exec .build/conv-benchmark "$@"
