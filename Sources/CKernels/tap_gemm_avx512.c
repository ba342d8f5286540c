#include "tap_gemm_variants.h"

// The AVX-512F variant of tap_gemm.h: 14x32 register tiles, masked loads and stores for the
// column tails.

#include <immintrin.h>

// Register tile: ROWS_PER_TILE rows by two 16-float vectors of columns, 28 accumulators of the 32
// zmm registers; per depth step two weight loads and 14 broadcast loads feed 28 FMAs.
enum { ROWS_PER_TILE = 14, COLUMNS_PER_TILE = 32 };

// Computed rows per block: the block's input rows (plus the taps' reach) stay in L2 while every
// column tile passes over them.
enum { ROWS_PER_BLOCK = 16 * ROWS_PER_TILE };

#define AVX512 __attribute__((target("avx512f")))

static inline AVX512 __mmask16 lanes_mask(int count) {
    if (count >= 16) return (__mmask16)0xFFFF;
    if (count <= 0) return (__mmask16)0;
    return (__mmask16)((1u << count) - 1u);
}

// One tile: `tile_rows` rows from row0, columns col0 ..< col0 + 16 (+ 16 more when `two`).
// Both are compile-time constants at every call (the switch below), so the loops unroll and the
// accumulators live in registers.
static inline AVX512 __attribute__((always_inline))
void tile(const scvae_tap_gemm *job, ptrdiff_t row0, int col0, const int tile_rows, const bool two,
          __mmask16 mask0, __mmask16 mask1) {
    const int depth = job->depth, weight_stride = job->weight_stride;
    const ptrdiff_t input_stride = job->input_stride;
    __m512 acc0[ROWS_PER_TILE], acc1[ROWS_PER_TILE];
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        acc0[m] = _mm512_setzero_ps();
        acc1[m] = _mm512_setzero_ps();
    }
    for (int t = 0; t < job->taps; t++) {
        const float *a = job->input + (row0 + job->shifts[t]) * input_stride;
        const float *b = job->weight + (ptrdiff_t)t * depth * weight_stride + col0;
        for (int k = 0; k < depth; k++) {
            const __m512 b0 = _mm512_maskz_loadu_ps(mask0, b);
            const __m512 b1 = two ? _mm512_maskz_loadu_ps(mask1, b + 16) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
            for (int m = 0; m < tile_rows; m++) {
                const __m512 x = _mm512_set1_ps(a[m * input_stride + k]);
                acc0[m] = _mm512_fmadd_ps(x, b0, acc0[m]);
                if (two) acc1[m] = _mm512_fmadd_ps(x, b1, acc1[m]);
            }
            b += weight_stride;
        }
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (job->bias) {
        bias0 = _mm512_maskz_loadu_ps(mask0, job->bias + col0);
        if (two) bias1 = _mm512_maskz_loadu_ps(mask1, job->bias + col0 + 16);
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        const ptrdiff_t i = row0 + m;
        const ptrdiff_t y = i / job->wide_width, x = i - y * job->wide_width;
        if (x >= job->width) continue;
        float *out = job->output + (y * job->width + x) * job->columns + col0;
        __m512 v0 = _mm512_add_ps(acc0[m], bias0);
        if (job->accumulate) v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(mask0, out), v0);
        _mm512_mask_storeu_ps(out, mask0, v0);
        if (two) {
            __m512 v1 = _mm512_add_ps(acc1[m], bias1);
            if (job->accumulate) v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(mask1, out + 16), v1);
            _mm512_mask_storeu_ps(out + 16, mask1, v1);
        }
    }
}

#define TILE_CASE(n) case n: tile(job, row0, col0, n, two, mask0, mask1); break;

static inline AVX512 __attribute__((always_inline))
void tile_any_rows(const scvae_tap_gemm *job, ptrdiff_t row0, int col0, int tile_rows, const bool two,
                   __mmask16 mask0, __mmask16 mask1) {
    switch (tile_rows) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6) TILE_CASE(7)
        TILE_CASE(8) TILE_CASE(9) TILE_CASE(10) TILE_CASE(11) TILE_CASE(12) TILE_CASE(13) TILE_CASE(14)
        default: break;
    }
}

// Splits `count` rows into the fewest tiles of at most ROWS_PER_TILE, of sizes differing by at
// most one (128 rows: eight of 13 and two of 12, not nine of 14 and one of 2).
typedef struct { ptrdiff_t tiles, base, longer; } tile_split;

static inline tile_split split_rows(ptrdiff_t count) {
    tile_split split;
    split.tiles = (count + ROWS_PER_TILE - 1) / ROWS_PER_TILE;
    split.base = split.tiles ? count / split.tiles : 0;
    split.longer = split.tiles ? count % split.tiles : 0;
    return split;
}

static AVX512 void column_tile_pair(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0,
                                    __mmask16 mask0, __mmask16 mask1) {
    const tile_split split = split_rows(end - start);
    ptrdiff_t row0 = start;
    for (ptrdiff_t index = 0; index < split.tiles; index++) {
        const int rows = (int)(split.base + (index < split.longer));
        tile_any_rows(job, row0, col0, rows, true, mask0, mask1);
        row0 += rows;
    }
}

static AVX512 void column_tile_single(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0,
                                      __mmask16 mask0) {
    const tile_split split = split_rows(end - start);
    ptrdiff_t row0 = start;
    for (ptrdiff_t index = 0; index < split.tiles; index++) {
        const int rows = (int)(split.base + (index < split.longer));
        tile_any_rows(job, row0, col0, rows, false, mask0, 0);
        row0 += rows;
    }
}

AVX512 void scvae_tap_gemm_run_avx512(const scvae_tap_gemm *job) {
    for (ptrdiff_t start = 0; start < job->rows; start += ROWS_PER_BLOCK) {
        const ptrdiff_t end = job->rows - start < ROWS_PER_BLOCK ? job->rows : start + ROWS_PER_BLOCK;
        for (int col0 = 0; col0 < job->columns; col0 += COLUMNS_PER_TILE) {
            const int left = job->columns - col0;
            if (left > 16) {
                column_tile_pair(job, start, end, col0, lanes_mask(left), lanes_mask(left - 16));
            } else {
                column_tile_single(job, start, end, col0, lanes_mask(left));
            }
        }
    }
}

// MARK: - Weight gradient

// Depth rows per block: the block's rows of a (with the taps' reach) and b stay in L2 while
// every tap and tile passes over them; each tile loads and stores its accumulators once per block.
enum { DEPTH_PER_BLOCK = 256 };

// One tile of the weight gradient: output rows m0 ..< m0 + tile_rows of one tap, columns
// n0 ..< n0 + 16 (+ 16 when `two`), over depth rows k0 ..< k1.
static inline AVX512 __attribute__((always_inline))
void transposed_tile(const scvae_tap_gemm_transposed *job, const float *a, float *out, ptrdiff_t k0, ptrdiff_t k1,
                     int m0, int n0, const int tile_rows, const bool two, __mmask16 mask0, __mmask16 mask1) {
    const int columns = job->columns;
    __m512 acc0[ROWS_PER_TILE], acc1[ROWS_PER_TILE];
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        acc0[m] = _mm512_maskz_loadu_ps(mask0, out + (ptrdiff_t)(m0 + m) * columns + n0);
        acc1[m] = two ? _mm512_maskz_loadu_ps(mask1, out + (ptrdiff_t)(m0 + m) * columns + n0 + 16) : _mm512_setzero_ps();
    }
    const float *arow = a + k0 * job->a_stride + m0;
    const float *brow = job->b + k0 * job->b_stride + n0;
    for (ptrdiff_t k = k0; k < k1; k++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(mask0, brow);
        const __m512 b1 = two ? _mm512_maskz_loadu_ps(mask1, brow + 16) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int m = 0; m < tile_rows; m++) {
            const __m512 x = _mm512_set1_ps(arow[m]);
            acc0[m] = _mm512_fmadd_ps(x, b0, acc0[m]);
            if (two) acc1[m] = _mm512_fmadd_ps(x, b1, acc1[m]);
        }
        arow += job->a_stride;
        brow += job->b_stride;
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        _mm512_mask_storeu_ps(out + (ptrdiff_t)(m0 + m) * columns + n0, mask0, acc0[m]);
        if (two) _mm512_mask_storeu_ps(out + (ptrdiff_t)(m0 + m) * columns + n0 + 16, mask1, acc1[m]);
    }
}

#define TRANSPOSED_CASE(n) case n: transposed_tile(job, a, out, k0, k1, m0, n0, n, two, mask0, mask1); break;

static inline AVX512 __attribute__((always_inline))
void transposed_tile_any_rows(const scvae_tap_gemm_transposed *job, const float *a, float *out, ptrdiff_t k0,
                              ptrdiff_t k1, int m0, int n0, int tile_rows, const bool two,
                              __mmask16 mask0, __mmask16 mask1) {
    switch (tile_rows) {
        TRANSPOSED_CASE(1) TRANSPOSED_CASE(2) TRANSPOSED_CASE(3) TRANSPOSED_CASE(4) TRANSPOSED_CASE(5)
        TRANSPOSED_CASE(6) TRANSPOSED_CASE(7) TRANSPOSED_CASE(8) TRANSPOSED_CASE(9) TRANSPOSED_CASE(10)
        TRANSPOSED_CASE(11) TRANSPOSED_CASE(12) TRANSPOSED_CASE(13) TRANSPOSED_CASE(14)
        default: break;
    }
}

// One row tile of the weight gradient (rows m0 ..< m0 + tile_rows of every tap), over the whole
// depth: each output is summed in the same order as by any other split into tiles.
static AVX512 void transposed_row_tile(const scvae_tap_gemm_transposed *job, int m0, int tile_rows) {
    for (ptrdiff_t k0 = 0; k0 < job->depth; k0 += DEPTH_PER_BLOCK) {
        const ptrdiff_t k1 = job->depth - k0 < DEPTH_PER_BLOCK ? job->depth : k0 + DEPTH_PER_BLOCK;
        for (int t = 0; t < job->taps; t++) {
            const float *a = job->a + job->shifts[t] * job->a_stride;
            float *out = job->output + (ptrdiff_t)t * job->rows * job->columns;
            for (int n0 = 0; n0 < job->columns; n0 += COLUMNS_PER_TILE) {
                const int left = job->columns - n0;
                const bool two = left > 16;
                transposed_tile_any_rows(job, a, out, k0, k1, m0, n0, tile_rows, two, lanes_mask(left),
                                         two ? lanes_mask(left - 16) : 0);
            }
        }
    }
}

ptrdiff_t scvae_tap_gemm_transposed_tiles_avx512(const scvae_tap_gemm_transposed *job) {
    return split_rows(job->rows).tiles;
}

AVX512 void scvae_tap_gemm_transposed_run_tile_avx512(const scvae_tap_gemm_transposed *job, ptrdiff_t tile) {
    const tile_split split = split_rows(job->rows);
    const int m0 = (int)(tile * split.base + (tile < split.longer ? tile : split.longer));
    transposed_row_tile(job, m0, (int)(split.base + (tile < split.longer)));
}
