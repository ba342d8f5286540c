#include "tap_gemm_variants.h"

// The AVX2+FMA variant of tap_gemm.h (Haswell and later, AMD Zen). The same products as the
// AVX-512 variant, summed per output in the same order (one FMA chain over taps, then depth), so
// both give the same bits; only the tile shape differs.

#include <immintrin.h>

// Register tile: ROWS_PER_TILE rows by two 8-float vectors of columns, 12 accumulators of the 16
// ymm registers, two for the weight row and two for the broadcasts; per depth step two weight
// loads and 6 broadcast loads feed 12 FMAs.
enum { ROWS_PER_TILE = 6, COLUMNS_PER_TILE = 16 };

// Pixel rows per block, as in the AVX-512 variant (which counts wide rows): the block's input rows
// (plus the taps' reach) stay in L2 while every column tile passes over them.
enum { ROWS_PER_BLOCK = 36 * ROWS_PER_TILE };

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

// Lanes i < count on (every lane from 8 up, none at 0 or below).
INLINE AVX2 __m256i lanes_mask(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// AVX2 masks through vmaskmov, which costs more than a plain access (a masked store much more on
// Zen): only a column tile's last vector is masked, and only when the columns end inside it.
INLINE AVX2 __m256 load8(const float *p, const bool masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

INLINE AVX2 void store8(float *p, __m256 v, const bool masked, __m256i mask) {
    if (masked) {
        _mm256_maskstore_ps(p, mask, v);
    } else {
        _mm256_storeu_ps(p, v);
    }
}

// A column tile: 8 columns (one vector) or 16 (`two`), the last vector masked by `mask` when
// `masked`. Both flags are compile-time constants at every use, so each shape is its own code.
typedef struct { bool two, masked; __m256i mask; } column_tile;

// Splits `count` rows into the fewest tiles of at most ROWS_PER_TILE, of sizes differing by at
// most one.
typedef struct { ptrdiff_t tiles, base, longer; } tile_split;

static inline tile_split split_rows(ptrdiff_t count) {
    tile_split split;
    split.tiles = (count + ROWS_PER_TILE - 1) / ROWS_PER_TILE;
    split.base = split.tiles ? count / split.tiles : 0;
    split.longer = split.tiles ? count % split.tiles : 0;
    return split;
}

// One tile: `tile_rows` rows from row0 (a compile-time constant at every call, so the loops
// unroll and the accumulators live in registers), the columns of `columns` from col0.
INLINE AVX2 void tile(const scvae_tap_gemm *job, ptrdiff_t row0, int col0, const int tile_rows,
                      const column_tile columns) {
    const bool two = columns.two, mask_first = columns.masked && !two, mask_second = columns.masked && two;
    const int depth = job->depth, weight_stride = job->weight_stride;
    const ptrdiff_t input_stride = job->input_stride;
    __m256 acc0[ROWS_PER_TILE], acc1[ROWS_PER_TILE];
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        acc0[m] = _mm256_setzero_ps();
        acc1[m] = _mm256_setzero_ps();
    }
    for (int t = 0; t < job->taps; t++) {
        const float *a = job->input + (row0 + job->shifts[t]) * input_stride;
        const float *b = job->weight + (ptrdiff_t)t * depth * weight_stride + col0;
        for (int k = 0; k < depth; k++) {
            const __m256 b0 = load8(b, mask_first, columns.mask);
            const __m256 b1 = two ? load8(b + 8, mask_second, columns.mask) : _mm256_setzero_ps();
#pragma clang loop unroll(full)
            for (int m = 0; m < tile_rows; m++) {
                const __m256 x = _mm256_broadcast_ss(a + m * input_stride + k);
                acc0[m] = _mm256_fmadd_ps(x, b0, acc0[m]);
                if (two) acc1[m] = _mm256_fmadd_ps(x, b1, acc1[m]);
            }
            b += weight_stride;
        }
    }
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (job->bias) {
        bias0 = load8(job->bias + col0, mask_first, columns.mask);
        if (two) bias1 = load8(job->bias + col0 + 8, mask_second, columns.mask);
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        const ptrdiff_t i = row0 + m;
        const ptrdiff_t y = i / job->wide_width, x = i - y * job->wide_width;
        if (x >= job->width) continue;
        float *out = job->output + (y * job->width + x) * job->columns + col0;
        __m256 v0 = _mm256_add_ps(acc0[m], bias0);
        if (job->accumulate) v0 = _mm256_add_ps(load8(out, mask_first, columns.mask), v0);
        store8(out, v0, mask_first, columns.mask);
        if (two) {
            __m256 v1 = _mm256_add_ps(acc1[m], bias1);
            if (job->accumulate) v1 = _mm256_add_ps(load8(out + 8, mask_second, columns.mask), v1);
            store8(out + 8, v1, mask_second, columns.mask);
        }
    }
}

#define TILE_CASE(n) case n: tile(job, wide_row(job, row), col0, n, columns); break;

// The job's rows that hold pixels (wide rows i with i % wide_width < width), numbered in order:
// how many there are, and the wide row of pixel row r.
static inline ptrdiff_t pixel_rows(const scvae_tap_gemm *job) {
    const ptrdiff_t rest = job->rows % job->wide_width;
    return job->rows / job->wide_width * job->width + (rest < job->width ? rest : job->width);
}

static inline ptrdiff_t wide_row(const scvae_tap_gemm *job, ptrdiff_t r) {
    return r / job->width * job->wide_width + r % job->width;
}

// Pixel rows start ..< end of one column tile: each run of them inside one image row in tiles of
// split_rows, so that no tile computes a wide row that holds no pixel (on 16 x 16 maps two of
// every 18 wide rows: skipping them made the 3x3 forward pass 9-39% faster there, and 53-76% on
// 8 x 8 maps, measured with Benchmarks/kernel-ab.sh).
INLINE AVX2 void column_tile_rows(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0,
                                  const column_tile columns) {
    for (ptrdiff_t run = start; run < end;) {
        const ptrdiff_t row_end = (run / job->width + 1) * job->width;
        const ptrdiff_t run_end = row_end < end ? row_end : end;
        const tile_split split = split_rows(run_end - run);
        ptrdiff_t row = run;
        for (ptrdiff_t index = 0; index < split.tiles; index++) {
            const int rows = (int)(split.base + (index < split.longer));
            switch (rows) {
                TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
                default: break;
            }
            row += rows;
        }
        run = run_end;
    }
}

// The four column-tile shapes, each with its flags as constants.
static AVX2 void full_pair(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0) {
    column_tile_rows(job, start, end, col0, (column_tile){ true, false, _mm256_setzero_si256() });
}

static AVX2 void masked_pair(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0, __m256i mask) {
    column_tile_rows(job, start, end, col0, (column_tile){ true, true, mask });
}

static AVX2 void full_single(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0) {
    column_tile_rows(job, start, end, col0, (column_tile){ false, false, _mm256_setzero_si256() });
}

static AVX2 void masked_single(const scvae_tap_gemm *job, ptrdiff_t start, ptrdiff_t end, int col0, __m256i mask) {
    column_tile_rows(job, start, end, col0, (column_tile){ false, true, mask });
}

AVX2 void scvae_tap_gemm_run_avx2(const scvae_tap_gemm *job) {
    const ptrdiff_t pixels = pixel_rows(job);
    for (ptrdiff_t start = 0; start < pixels; start += ROWS_PER_BLOCK) {
        const ptrdiff_t end = pixels - start < ROWS_PER_BLOCK ? pixels : start + ROWS_PER_BLOCK;
        for (int col0 = 0; col0 < job->columns; col0 += COLUMNS_PER_TILE) {
            const int left = job->columns - col0;
            if (left >= 16) {
                full_pair(job, start, end, col0);
            } else if (left > 8) {
                masked_pair(job, start, end, col0, lanes_mask(left - 8));
            } else if (left == 8) {
                full_single(job, start, end, col0);
            } else {
                masked_single(job, start, end, col0, lanes_mask(left));
            }
        }
    }
}

// MARK: - Weight gradient

// Depth rows per block. A tile of six rows uses only 24 bytes of each 64-byte line of a, so a
// block of a is kept in L1 while the column tiles pass over it: 64 rows (4 KiB of lines of a, and
// 4 KiB of b per column tile). With the AVX-512 variant's 256 rows a came from L2 for every column
// tile, and the weight gradient ran 5-13% slower (3x3 64x64 64->64: 59 against 67 GFLOP/s). Each
// tile loads and stores its accumulators once per block; a float stored and loaded again is the
// same float, so the block size does not change the bits.
enum { DEPTH_PER_BLOCK = 64 };

// The depth as segments of consecutive rows: the runs of rows that hold pixels when the job says
// where they are (tap_gemm.h), else blocks of DEPTH_PER_BLOCK rows; and how many segments make a
// block of about DEPTH_PER_BLOCK rows.
typedef struct { ptrdiff_t count, per_block; } depth_segments;
typedef struct { ptrdiff_t k0, k1; } depth_range;

static inline depth_segments depth_segments_of(const scvae_tap_gemm_transposed *job) {
    depth_segments segments;
    if (job->row_length <= 0) {
        segments.count = (job->depth + DEPTH_PER_BLOCK - 1) / DEPTH_PER_BLOCK;
        segments.per_block = 1;
    } else {
        const ptrdiff_t images = (job->depth + job->image_period - 1) / job->image_period;
        segments.count = images * job->image_rows;
        segments.per_block = job->row_length < DEPTH_PER_BLOCK ? DEPTH_PER_BLOCK / job->row_length : 1;
    }
    return segments;
}

static inline depth_range segment_range(const scvae_tap_gemm_transposed *job, ptrdiff_t segment) {
    depth_range range;
    if (job->row_length <= 0) {
        range.k0 = segment * DEPTH_PER_BLOCK;
        range.k1 = job->depth - range.k0 < DEPTH_PER_BLOCK ? job->depth : range.k0 + DEPTH_PER_BLOCK;
    } else {
        const ptrdiff_t image = segment / job->image_rows, y = segment % job->image_rows;
        range.k0 = image * job->image_period + y * job->row_period;
        range.k1 = range.k0 + job->row_length;
    }
    return range;
}

// One tile of the weight gradient: output rows m0 ..< m0 + tile_rows of one tap, the columns of
// `columns` from n0, over the depth rows of `count` ranges (a block's segments, found once per
// block: a division per segment in every tile cost 2-12% of the weight gradient on 8 x 8 to
// 32 x 32 maps, measured).
INLINE AVX2 void transposed_tile(const scvae_tap_gemm_transposed *job, const float *a, float *out,
                                 const depth_range *ranges, int count, int m0, int n0, const int tile_rows,
                                 const column_tile columns) {
    const bool two = columns.two, mask_first = columns.masked && !two, mask_second = columns.masked && two;
    const int stride = job->columns;
    __m256 acc0[ROWS_PER_TILE], acc1[ROWS_PER_TILE];
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        float *row = out + (ptrdiff_t)(m0 + m) * stride + n0;
        acc0[m] = load8(row, mask_first, columns.mask);
        acc1[m] = two ? load8(row + 8, mask_second, columns.mask) : _mm256_setzero_ps();
    }
    for (int segment = 0; segment < count; segment++) {
        const depth_range range = ranges[segment];
        const float *arow = a + range.k0 * job->a_stride + m0;
        const float *brow = job->b + range.k0 * job->b_stride + n0;
        for (ptrdiff_t k = range.k0; k < range.k1; k++) {
            const __m256 b0 = load8(brow, mask_first, columns.mask);
            const __m256 b1 = two ? load8(brow + 8, mask_second, columns.mask) : _mm256_setzero_ps();
#pragma clang loop unroll(full)
            for (int m = 0; m < tile_rows; m++) {
                const __m256 x = _mm256_broadcast_ss(arow + m);
                acc0[m] = _mm256_fmadd_ps(x, b0, acc0[m]);
                if (two) acc1[m] = _mm256_fmadd_ps(x, b1, acc1[m]);
            }
            arow += job->a_stride;
            brow += job->b_stride;
        }
    }
#pragma clang loop unroll(full)
    for (int m = 0; m < tile_rows; m++) {
        float *row = out + (ptrdiff_t)(m0 + m) * stride + n0;
        store8(row, acc0[m], mask_first, columns.mask);
        if (two) store8(row + 8, acc1[m], mask_second, columns.mask);
    }
}

#define TRANSPOSED_CASE(n) case n: transposed_tile(job, a, out, ranges, count, m0, n0, n, columns); break;

INLINE AVX2 void transposed_tile_any_rows(const scvae_tap_gemm_transposed *job, const float *a, float *out,
                                          const depth_range *ranges, int count, int m0, int n0, int tile_rows,
                                          const column_tile columns) {
    switch (tile_rows) {
        TRANSPOSED_CASE(1) TRANSPOSED_CASE(2) TRANSPOSED_CASE(3)
        TRANSPOSED_CASE(4) TRANSPOSED_CASE(5) TRANSPOSED_CASE(6)
        default: break;
    }
}

// One row tile of the weight gradient (rows m0 ..< m0 + tile_rows of every tap), over the whole
// depth: each output is summed in the same order as by any other split into tiles.
static AVX2 void transposed_row_tile(const scvae_tap_gemm_transposed *job, int m0, int tile_rows) {
    const depth_segments segments = depth_segments_of(job);
    for (ptrdiff_t s0 = 0; s0 < segments.count; s0 += segments.per_block) {
        const ptrdiff_t s1 = segments.count - s0 < segments.per_block ? segments.count : s0 + segments.per_block;
        depth_range ranges[DEPTH_PER_BLOCK];
        const int count = (int)(s1 - s0);
        for (int segment = 0; segment < count; segment++) ranges[segment] = segment_range(job, s0 + segment);
        for (int t = 0; t < job->taps; t++) {
            const float *a = job->a + job->shifts[t] * job->a_stride;
            float *out = job->output + (ptrdiff_t)t * job->rows * job->columns;
            for (int n0 = 0; n0 < job->columns; n0 += COLUMNS_PER_TILE) {
                const int left = job->columns - n0;
                if (left >= 16) {
                    const column_tile columns = { true, false, _mm256_setzero_si256() };
                    transposed_tile_any_rows(job, a, out, ranges, count, m0, n0, tile_rows, columns);
                } else if (left > 8) {
                    const column_tile columns = { true, true, lanes_mask(left - 8) };
                    transposed_tile_any_rows(job, a, out, ranges, count, m0, n0, tile_rows, columns);
                } else if (left == 8) {
                    const column_tile columns = { false, false, _mm256_setzero_si256() };
                    transposed_tile_any_rows(job, a, out, ranges, count, m0, n0, tile_rows, columns);
                } else {
                    const column_tile columns = { false, true, lanes_mask(left) };
                    transposed_tile_any_rows(job, a, out, ranges, count, m0, n0, tile_rows, columns);
                }
            }
        }
    }
}

ptrdiff_t scvae_tap_gemm_transposed_tiles_avx2(const scvae_tap_gemm_transposed *job) {
    return split_rows(job->rows).tiles;
}

AVX2 void scvae_tap_gemm_transposed_run_tile_avx2(const scvae_tap_gemm_transposed *job, ptrdiff_t tile) {
    const tile_split split = split_rows(job->rows);
    const int m0 = (int)(tile * split.base + (tile < split.longer ? tile : split.longer));
    transposed_row_tile(job, m0, (int)(split.base + (tile < split.longer)));
}
