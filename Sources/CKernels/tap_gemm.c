#include "tap_gemm.h"

#include "tap_gemm_variants.h"

void scvae_tap_gemm_run(scvae_kernels kernels, const scvae_tap_gemm *job) {
    switch (kernels) {
    case scvae_kernels_avx2: scvae_tap_gemm_run_avx2(job); return;
    case scvae_kernels_avx512: scvae_tap_gemm_run_avx512(job); return;
    }
}

ptrdiff_t scvae_tap_gemm_transposed_tiles(scvae_kernels kernels, const scvae_tap_gemm_transposed *job) {
    switch (kernels) {
    case scvae_kernels_avx2: return scvae_tap_gemm_transposed_tiles_avx2(job);
    case scvae_kernels_avx512: return scvae_tap_gemm_transposed_tiles_avx512(job);
    }
    return 0;
}

void scvae_tap_gemm_transposed_run_tile(scvae_kernels kernels, const scvae_tap_gemm_transposed *job, ptrdiff_t tile) {
    switch (kernels) {
    case scvae_kernels_avx2: scvae_tap_gemm_transposed_run_tile_avx2(job, tile); return;
    case scvae_kernels_avx512: scvae_tap_gemm_transposed_run_tile_avx512(job, tile); return;
    }
}

void scvae_tap_gemm_transposed_run(scvae_kernels kernels, const scvae_tap_gemm_transposed *job) {
    const ptrdiff_t tiles = scvae_tap_gemm_transposed_tiles(kernels, job);
    for (ptrdiff_t tile = 0; tile < tiles; tile++) scvae_tap_gemm_transposed_run_tile(kernels, job, tile);
}
