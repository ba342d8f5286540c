#include "group_norm_variants.h"

// The AVX2+FMA variant of group_norm.h: eight channels per register. Every channel goes through
// the same operations in the same order as in the AVX-512 variant (the same FMAs, the same
// Double sums in position order), so both give the same bits.

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

// Positions per tile, as in the AVX-512 variant: every block of eight channels passes over a
// tile while it is in L1, and sums go on across tiles in the caller's per-channel arrays.
enum { TILE_FLOATS = 4096 };

static inline ptrdiff_t tile_positions(int channels) {
    const ptrdiff_t count = TILE_FLOATS / (channels > 0 ? channels : 1);
    return count > 0 ? count : 1;
}

static inline ptrdiff_t tile_end(ptrdiff_t start, ptrdiff_t tile, ptrdiff_t positions) {
    return positions - start < tile ? positions : start + tile;
}

// A block of eight channels. Only the last block of a row can have fewer channels (`masked`, a
// compile-time constant at every use): its accesses go through vmaskmov with these lane masks,
// eight floats, or four doubles in each half. Whole blocks use plain loads and stores (a masked
// store costs much more, on Zen especially).
typedef struct {
    bool masked;
    __m256i floats, low, high;
} channel_block;

INLINE AVX2 channel_block whole_block(void) {
    const __m256i all = _mm256_set1_epi32(-1);
    return (channel_block){ false, all, all, all };
}

INLINE AVX2 channel_block last_block(int count) {
    const __m256i doubles = _mm256_setr_epi64x(0, 1, 2, 3);
    return (channel_block){
        true,
        _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), doubles),
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(count - 4), doubles),
    };
}

INLINE AVX2 __m256 load8(const float *p, const channel_block block) {
    return block.masked ? _mm256_maskload_ps(p, block.floats) : _mm256_loadu_ps(p);
}

INLINE AVX2 void store8(float *p, __m256 v, const channel_block block) {
    if (block.masked) {
        _mm256_maskstore_ps(p, block.floats, v);
    } else {
        _mm256_storeu_ps(p, v);
    }
}

// Eight per-channel doubles from sums[c ..< c + 8] (the channels that exist), as two halves.
INLINE AVX2 void load_sums(const double *sums, int c, const channel_block block, __m256d *low, __m256d *high) {
    *low = block.masked ? _mm256_maskload_pd(sums + c, block.low) : _mm256_loadu_pd(sums + c);
    *high = block.masked ? _mm256_maskload_pd(sums + c + 4, block.high) : _mm256_loadu_pd(sums + c + 4);
}

INLINE AVX2 void store_sums(double *sums, int c, const channel_block block, __m256d low, __m256d high) {
    if (block.masked) {
        _mm256_maskstore_pd(sums + c, block.low, low);
        _mm256_maskstore_pd(sums + c + 4, block.high, high);
    } else {
        _mm256_storeu_pd(sums + c, low);
        _mm256_storeu_pd(sums + c + 4, high);
    }
}

INLINE AVX2 __m256d low_half_as_double(__m256 v) {
    return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}

INLINE AVX2 __m256d high_half_as_double(__m256 v) {
    return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

// e^x, operation for operation as exp16 of the AVX-512 variant (and VectorMath.exp): clamp to
// [-87, 87], 2^n e^r with Cody-Waite reduction and the degree-5 minimax polynomial of Cephes'
// expf, 2^n built in the exponent bits.
INLINE AVX2 __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
    const __m256 rounding = _mm256_set1_ps(12582912.0f);
    const __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), rounding);
    const __m256 n = _mm256_sub_ps(shifted, rounding);
    const __m256i n_bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(rounding));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.98756915e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.39819995e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.16657959e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.66666655e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(n_bits, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

INLINE AVX2 __m256 sigmoid8(__m256 y) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), y))));
}

// MARK: - Forward

INLINE AVX2 void apply_block(float *out, const float *x, const float *scale, const float *shift, ptrdiff_t p0,
                             ptrdiff_t p1, int channels, int c, bool swish, const channel_block block) {
    const __m256 a = load8(scale + c, block), b = load8(shift + c, block);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t offset = p * channels + c;
        __m256 v = _mm256_fmadd_ps(load8(x + offset, block), a, b);
        if (swish) v = _mm256_mul_ps(v, sigmoid8(v));
        store8(out + offset, v, block);
    }
}

AVX2 void scvae_group_norm_apply_avx2(float *out, const float *x, const float *scale, const float *shift,
                                      ptrdiff_t positions, int channels, bool swish) {
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 8) {
            if (channels - c >= 8) {
                apply_block(out, x, scale, shift, p0, p1, channels, c, swish, whole_block());
            } else {
                apply_block(out, x, scale, shift, p0, p1, channels, c, swish, last_block(channels - c));
            }
        }
    }
}

// MARK: - Backward

typedef struct {
    double *sum_dy, *sum_dy_xhat;
    float *dy;
    const float *d_out, *x, *mean, *rstd, *gamma, *beta;
    int channels;
    bool swish;
} gradient_sums;

INLINE AVX2 void sums_block(const gradient_sums *job, ptrdiff_t p0, ptrdiff_t p1, int c, const channel_block block) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 m = load8(job->mean + c, block), r = load8(job->rstd + c, block);
    const __m256 scale = load8(job->gamma + c, block), shift = load8(job->beta + c, block);
    __m256d dy_low, dy_high, dy_xhat_low, dy_xhat_high;
    load_sums(job->sum_dy, c, block, &dy_low, &dy_high);
    load_sums(job->sum_dy_xhat, c, block, &dy_xhat_low, &dy_xhat_high);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t offset = p * job->channels + c;
        const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(load8(job->x + offset, block), m), r);
        __m256 g = load8(job->d_out + offset, block);
        if (job->swish) {
            const __m256 y = _mm256_fmadd_ps(xhat, scale, shift);
            const __m256 s = sigmoid8(y);
            g = _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_fmadd_ps(y, _mm256_sub_ps(one, s), one));
            store8(job->dy + offset, g, block);
        }
        const __m256 g_xhat = _mm256_mul_ps(g, xhat);
        dy_low = _mm256_add_pd(dy_low, low_half_as_double(g));
        dy_high = _mm256_add_pd(dy_high, high_half_as_double(g));
        dy_xhat_low = _mm256_add_pd(dy_xhat_low, low_half_as_double(g_xhat));
        dy_xhat_high = _mm256_add_pd(dy_xhat_high, high_half_as_double(g_xhat));
    }
    store_sums(job->sum_dy, c, block, dy_low, dy_high);
    store_sums(job->sum_dy_xhat, c, block, dy_xhat_low, dy_xhat_high);
}

AVX2 void scvae_group_norm_backward_sums_avx2(double *sum_dy, double *sum_dy_xhat, float *dy, const float *d_out,
                                              const float *x, const float *mean, const float *rstd,
                                              const float *gamma, const float *beta, ptrdiff_t positions,
                                              int channels, bool swish) {
    const gradient_sums job = { sum_dy, sum_dy_xhat, dy, d_out, x, mean, rstd, gamma, beta, channels, swish };
    for (int c = 0; c < channels; c++) sum_dy[c] = sum_dy_xhat[c] = 0;
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 8) {
            if (channels - c >= 8) {
                sums_block(&job, p0, p1, c, whole_block());
            } else {
                sums_block(&job, p0, p1, c, last_block(channels - c));
            }
        }
    }
}

INLINE AVX2 void input_gradient_block(float *dx, const float *dy, const float *x, const float *scale_dy,
                                      const float *slope_dx, const float *shift_dx, ptrdiff_t p0, ptrdiff_t p1,
                                      int channels, int c, bool accumulate, const channel_block block) {
    const __m256 a = load8(scale_dy + c, block), b = load8(slope_dx + c, block), d = load8(shift_dx + c, block);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t offset = p * channels + c;
        __m256 update = _mm256_sub_ps(_mm256_mul_ps(a, load8(dy + offset, block)),
                                      _mm256_fmadd_ps(b, load8(x + offset, block), d));
        if (accumulate) update = _mm256_add_ps(load8(dx + offset, block), update);
        store8(dx + offset, update, block);
    }
}

AVX2 void scvae_group_norm_backward_apply_avx2(float *dx, const float *dy, const float *x, const float *scale_dy,
                                               const float *slope_dx, const float *shift_dx, ptrdiff_t positions,
                                               int channels, bool accumulate) {
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 8) {
            if (channels - c >= 8) {
                input_gradient_block(dx, dy, x, scale_dy, slope_dx, shift_dx, p0, p1, channels, c, accumulate,
                                     whole_block());
            } else {
                input_gradient_block(dx, dy, x, scale_dy, slope_dx, shift_dx, p0, p1, channels, c, accumulate,
                                     last_block(channels - c));
            }
        }
    }
}

// MARK: - Column sums

INLINE AVX2 void moments_block(double *sums, double *squares, const float *x, ptrdiff_t r0, ptrdiff_t r1,
                               ptrdiff_t stride, int c, const channel_block block) {
    __m256d sum_low, sum_high, square_low = _mm256_setzero_pd(), square_high = _mm256_setzero_pd();
    load_sums(sums, c, block, &sum_low, &sum_high);
    if (squares) load_sums(squares, c, block, &square_low, &square_high);
    for (ptrdiff_t r = r0; r < r1; r++) {
        const __m256 v = load8(x + r * stride + c, block);
        const __m256d low = low_half_as_double(v), high = high_half_as_double(v);
        sum_low = _mm256_add_pd(sum_low, low);
        sum_high = _mm256_add_pd(sum_high, high);
        if (squares) {
            square_low = _mm256_fmadd_pd(low, low, square_low);
            square_high = _mm256_fmadd_pd(high, high, square_high);
        }
    }
    store_sums(sums, c, block, sum_low, sum_high);
    if (squares) store_sums(squares, c, block, square_low, square_high);
}

AVX2 void scvae_column_moments_avx2(double *sums, double *squares, const float *x, ptrdiff_t rows, ptrdiff_t stride,
                                    int channels) {
    for (int c = 0; c < channels; c++) {
        sums[c] = 0;
        if (squares) squares[c] = 0;
    }
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += tile) {
        const ptrdiff_t r1 = tile_end(r0, tile, rows);
        for (int c = 0; c < channels; c += 8) {
            if (channels - c >= 8) {
                moments_block(sums, squares, x, r0, r1, stride, c, whole_block());
            } else {
                moments_block(sums, squares, x, r0, r1, stride, c, last_block(channels - c));
            }
        }
    }
}
