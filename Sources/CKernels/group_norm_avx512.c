#include "group_norm_variants.h"

// The AVX-512F variant of group_norm.h: sixteen channels per register, masked for the tails.

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

static inline AVX512 __mmask16 channel_mask(int count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1u);
}

static inline AVX512 __m512d high_half_as_double(__m512 v) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// Positions are taken a tile at a time, and every block of sixteen channels passes over the tile
// while it is in L1: one sequential pass over the activations. (Block by block over a whole map,
// each block read a 64-byte line of every position; at 64x64 x 64 channels the three maps of
// the backward outgrew L2, and the passes waited on memory.) Sums go on across tiles in the
// caller's per-channel arrays, so every channel is still summed in position order.
enum { TILE_FLOATS = 4096 };

static inline ptrdiff_t tile_positions(int channels) {
    const ptrdiff_t count = TILE_FLOATS / (channels > 0 ? channels : 1);
    return count > 0 ? count : 1;
}

// The end of the tile that starts at `start`: `tile` positions on, or the last position.
static inline ptrdiff_t tile_end(ptrdiff_t start, ptrdiff_t tile, ptrdiff_t positions) {
    return positions - start < tile ? positions : start + tile;
}

// Sixteen per-channel doubles from sums[c ..< c + 16] (the channels that exist), as two halves.
static inline AVX512 void load_sums(const double *sums, int c, __mmask16 mask, __m512d *low, __m512d *high) {
    *low = _mm512_maskz_loadu_pd((__mmask8)(mask & 0xFF), sums + c);
    *high = _mm512_maskz_loadu_pd((__mmask8)(mask >> 8), sums + c + 8);
}

static inline AVX512 void store_sums(double *sums, int c, __mmask16 mask, __m512d low, __m512d high) {
    _mm512_mask_storeu_pd(sums + c, (__mmask8)(mask & 0xFF), low);
    _mm512_mask_storeu_pd(sums + c + 8, (__mmask8)(mask >> 8), high);
}

// e^x as VectorMath.exp does it: clamp to [-87, 87], 2^n e^r with Cody-Waite reduction and the
// degree-5 minimax polynomial of Cephes' expf, 2^n built in the exponent bits.
static inline AVX512 __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(87.0f));
    const __m512 rounding = _mm512_set1_ps(12582912.0f);
    const __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), rounding);
    const __m512 n = _mm512_sub_ps(shifted, rounding);
    const __m512i n_bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(rounding));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.98756915e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.39819995e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16657959e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666655e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512 two_to_n = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n_bits, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(p, two_to_n);
}

static inline AVX512 __m512 sigmoid16(__m512 y) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), y))));
}

AVX512 void scvae_group_norm_apply_avx512(float *out, const float *x, const float *scale, const float *shift,
                                          ptrdiff_t positions, int channels, bool swish) {
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = channel_mask(channels - c);
            const __m512 a = _mm512_maskz_loadu_ps(mask, scale + c), b = _mm512_maskz_loadu_ps(mask, shift + c);
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t offset = p * channels + c;
                __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + offset), a, b);
                if (swish) v = _mm512_mul_ps(v, sigmoid16(v));
                _mm512_mask_storeu_ps(out + offset, mask, v);
            }
        }
    }
}

AVX512 void scvae_group_norm_backward_sums_avx512(double *sum_dy, double *sum_dy_xhat, float *dy, const float *d_out,
                                                  const float *x, const float *mean, const float *rstd, const float *gamma,
                                                  const float *beta, ptrdiff_t positions, int channels, bool swish) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int c = 0; c < channels; c++) sum_dy[c] = sum_dy_xhat[c] = 0;
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = channel_mask(channels - c);
            const __m512 m = _mm512_maskz_loadu_ps(mask, mean + c), r = _mm512_maskz_loadu_ps(mask, rstd + c);
            const __m512 scale = _mm512_maskz_loadu_ps(mask, gamma + c), shift = _mm512_maskz_loadu_ps(mask, beta + c);
            __m512d dy_low, dy_high, dy_xhat_low, dy_xhat_high;
            load_sums(sum_dy, c, mask, &dy_low, &dy_high);
            load_sums(sum_dy_xhat, c, mask, &dy_xhat_low, &dy_xhat_high);
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t offset = p * channels + c;
                const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + offset), m), r);
                __m512 g = _mm512_maskz_loadu_ps(mask, d_out + offset);
                if (swish) {
                    const __m512 y = _mm512_fmadd_ps(xhat, scale, shift);
                    const __m512 s = sigmoid16(y);
                    g = _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_fmadd_ps(y, _mm512_sub_ps(one, s), one));
                    _mm512_mask_storeu_ps(dy + offset, mask, g);
                }
                const __m512 g_xhat = _mm512_mul_ps(g, xhat);
                dy_low = _mm512_add_pd(dy_low, _mm512_cvtps_pd(_mm512_castps512_ps256(g)));
                dy_high = _mm512_add_pd(dy_high, high_half_as_double(g));
                dy_xhat_low = _mm512_add_pd(dy_xhat_low, _mm512_cvtps_pd(_mm512_castps512_ps256(g_xhat)));
                dy_xhat_high = _mm512_add_pd(dy_xhat_high, high_half_as_double(g_xhat));
            }
            store_sums(sum_dy, c, mask, dy_low, dy_high);
            store_sums(sum_dy_xhat, c, mask, dy_xhat_low, dy_xhat_high);
        }
    }
}

AVX512 void scvae_group_norm_backward_apply_avx512(float *dx, const float *dy, const float *x, const float *scale_dy,
                                                   const float *slope_dx, const float *shift_dx, ptrdiff_t positions,
                                                   int channels, bool accumulate) {
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t p0 = 0; p0 < positions; p0 += tile) {
        const ptrdiff_t p1 = tile_end(p0, tile, positions);
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = channel_mask(channels - c);
            const __m512 a = _mm512_maskz_loadu_ps(mask, scale_dy + c), b = _mm512_maskz_loadu_ps(mask, slope_dx + c);
            const __m512 d = _mm512_maskz_loadu_ps(mask, shift_dx + c);
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t offset = p * channels + c;
                __m512 update = _mm512_sub_ps(_mm512_mul_ps(a, _mm512_maskz_loadu_ps(mask, dy + offset)),
                                              _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(mask, x + offset), d));
                if (accumulate) update = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dx + offset), update);
                _mm512_mask_storeu_ps(dx + offset, mask, update);
            }
        }
    }
}

AVX512 void scvae_column_moments_avx512(double *sums, double *squares, const float *x, ptrdiff_t rows, ptrdiff_t stride,
                                        int channels) {
    for (int c = 0; c < channels; c++) {
        sums[c] = 0;
        if (squares) squares[c] = 0;
    }
    const ptrdiff_t tile = tile_positions(channels);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += tile) {
        const ptrdiff_t r1 = tile_end(r0, tile, rows);
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = channel_mask(channels - c);
            __m512d sum_low, sum_high, square_low = _mm512_setzero_pd(), square_high = _mm512_setzero_pd();
            load_sums(sums, c, mask, &sum_low, &sum_high);
            if (squares) load_sums(squares, c, mask, &square_low, &square_high);
            for (ptrdiff_t r = r0; r < r1; r++) {
                const __m512 v = _mm512_maskz_loadu_ps(mask, x + r * stride + c);
                const __m512d low = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), high = high_half_as_double(v);
                sum_low = _mm512_add_pd(sum_low, low);
                sum_high = _mm512_add_pd(sum_high, high);
                if (squares) {
                    square_low = _mm512_fmadd_pd(low, low, square_low);
                    square_high = _mm512_fmadd_pd(high, high, square_high);
                }
            }
            store_sums(sums, c, mask, sum_low, sum_high);
            if (squares) store_sums(squares, c, mask, square_low, square_high);
        }
    }
}
