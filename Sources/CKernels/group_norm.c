#include "group_norm.h"

#include "group_norm_variants.h"

void scvae_group_norm_apply(scvae_kernels kernels, float *out, const float *x, const float *scale,
                            const float *shift, ptrdiff_t positions, int channels, bool swish) {
    switch (kernels) {
    case scvae_kernels_avx2: scvae_group_norm_apply_avx2(out, x, scale, shift, positions, channels, swish); return;
    case scvae_kernels_avx512: scvae_group_norm_apply_avx512(out, x, scale, shift, positions, channels, swish); return;
    }
}

void scvae_group_norm_backward_sums(scvae_kernels kernels, double *sum_dy, double *sum_dy_xhat, float *dy,
                                    const float *d_out, const float *x, const float *mean, const float *rstd,
                                    const float *gamma, const float *beta, ptrdiff_t positions, int channels,
                                    bool swish) {
    switch (kernels) {
    case scvae_kernels_avx2:
        scvae_group_norm_backward_sums_avx2(sum_dy, sum_dy_xhat, dy, d_out, x, mean, rstd, gamma, beta, positions,
                                            channels, swish);
        return;
    case scvae_kernels_avx512:
        scvae_group_norm_backward_sums_avx512(sum_dy, sum_dy_xhat, dy, d_out, x, mean, rstd, gamma, beta, positions,
                                              channels, swish);
        return;
    }
}

void scvae_group_norm_backward_apply(scvae_kernels kernels, float *dx, const float *dy, const float *x,
                                     const float *scale_dy, const float *slope_dx, const float *shift_dx,
                                     ptrdiff_t positions, int channels, bool accumulate) {
    switch (kernels) {
    case scvae_kernels_avx2:
        scvae_group_norm_backward_apply_avx2(dx, dy, x, scale_dy, slope_dx, shift_dx, positions, channels, accumulate);
        return;
    case scvae_kernels_avx512:
        scvae_group_norm_backward_apply_avx512(dx, dy, x, scale_dy, slope_dx, shift_dx, positions, channels, accumulate);
        return;
    }
}

void scvae_column_moments(scvae_kernels kernels, double *sums, double *squares, const float *x, ptrdiff_t rows,
                          ptrdiff_t stride, int channels) {
    switch (kernels) {
    case scvae_kernels_avx2: scvae_column_moments_avx2(sums, squares, x, rows, stride, channels); return;
    case scvae_kernels_avx512: scvae_column_moments_avx512(sums, squares, x, rows, stride, channels); return;
    }
}
