#ifndef SCVAE_TAP_GEMM_VARIANTS_H
#define SCVAE_TAP_GEMM_VARIANTS_H

// The per-instruction-set entry points behind tap_gemm.h (tap_gemm.c picks one). Each runs only
// on a CPU that supports its variant.

#include "tap_gemm.h"

void scvae_tap_gemm_run_avx512(const scvae_tap_gemm *job);
ptrdiff_t scvae_tap_gemm_transposed_tiles_avx512(const scvae_tap_gemm_transposed *job);
void scvae_tap_gemm_transposed_run_tile_avx512(const scvae_tap_gemm_transposed *job, ptrdiff_t tile);

void scvae_tap_gemm_run_avx2(const scvae_tap_gemm *job);
ptrdiff_t scvae_tap_gemm_transposed_tiles_avx2(const scvae_tap_gemm_transposed *job);
void scvae_tap_gemm_transposed_run_tile_avx2(const scvae_tap_gemm_transposed *job, ptrdiff_t tile);

#endif
