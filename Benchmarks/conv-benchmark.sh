#!/bin/sh
# Builds and runs the convolution / model-step benchmark (Benchmarks/ConvBenchmark/main.swift) compiled
# together with Sources/Model, optimised, whole-module. SCVAE_BENCH_THREADS sets OpenBLAS threads (default 1).
set -e
cd "$(dirname "$0")/.."
mkdir -p .build
swiftc -O -wmo -I Sources/CBLAS Sources/Model/*.swift Benchmarks/ConvBenchmark/main.swift -lopenblas -o .build/conv-benchmark
exec .build/conv-benchmark "$@"
