#!/bin/sh
# Builds and runs the convolution / model-step benchmark (Benchmarks/ConvBenchmark/main.swift) compiled
# together with Sources/Model and Sources/CKernels, optimised, whole-module. SCVAE_BENCH_THREADS sets OpenBLAS threads (default 1).
set -e
cd "$(dirname "$0")/.."
mkdir -p .build
clang -O2 -c Sources/CKernels/tap_gemm.c -I Sources/CKernels/include -o .build/conv-benchmark-tap_gemm.o
clang -O2 -c Sources/CKernels/group_norm.c -I Sources/CKernels/include -o .build/conv-benchmark-group_norm.o
swiftc -O -wmo -I Sources/CBLAS -I Sources/CKernels/include Sources/Model/*.swift Benchmarks/ConvBenchmark/main.swift \
    .build/conv-benchmark-tap_gemm.o .build/conv-benchmark-group_norm.o -lopenblas -o .build/conv-benchmark
exec .build/conv-benchmark "$@"
