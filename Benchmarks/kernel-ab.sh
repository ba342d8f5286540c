#!/bin/sh
# Compares one tap-GEMM kernel variant at git revision REV (A) with the working tree's (B), in one
# process that alternates them (Benchmarks/KernelAB/kernel_ab.c): GFLOP/s of each, and whether
# they give the same bits. Usage: Benchmarks/kernel-ab.sh REV [repeats]; ISA=avx2 (default) or
# avx512 picks the variant. The kernel's job structs must have the same layout at REV.
set -e
cd "$(dirname "$0")/.."
rev=${1:?usage: Benchmarks/kernel-ab.sh REV [repeats]}
isa=${ISA:-avx2}
case "$isa" in avx2|avx512) ;; *) echo "kernel-ab: ISA must be avx2 or avx512, not $isa" >&2; exit 2 ;; esac
work=.build/kernel-ab
mkdir -p "$work/a/include"
git show "$rev:Sources/CKernels/tap_gemm_$isa.c" > "$work/a/tap_gemm_$isa.c"
git show "$rev:Sources/CKernels/tap_gemm_variants.h" > "$work/a/tap_gemm_variants.h"
for header in tap_gemm.h kernel_variant.h; do
  git show "$rev:Sources/CKernels/include/$header" > "$work/a/include/$header"
done
compile() { # side, source, include directory
  clang -O2 -c "$2" -I "$3" -Dscvae_tap_gemm_run_$isa="$1_run" \
    -Dscvae_tap_gemm_transposed_tiles_$isa="$1_tiles" -Dscvae_tap_gemm_transposed_run_tile_$isa="$1_tile" \
    -o "$work/$1.o"
}
compile a "$work/a/tap_gemm_$isa.c" "$work/a/include"
compile b "Sources/CKernels/tap_gemm_$isa.c" Sources/CKernels/include
clang -O2 Benchmarks/KernelAB/kernel_ab.c "$work/a.o" "$work/b.o" -I Sources/CKernels/include -o "$work/kernel-ab"
exec "$work/kernel-ab" "${2:-20}"
