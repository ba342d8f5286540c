#ifndef SCVAE_GROUP_NORM_VARIANTS_H
#define SCVAE_GROUP_NORM_VARIANTS_H

// The per-instruction-set passes behind group_norm.h (group_norm.c picks one), with the same
// arguments less the variant. Each runs only on a CPU that supports its variant.

#include "group_norm.h"

#define SCVAE_GROUP_NORM_PASSES(suffix)                                                                        \
    void scvae_group_norm_apply_##suffix(float *out, const float *x, const float *scale, const float *shift,   \
                                         ptrdiff_t positions, int channels, bool swish);                      \
    void scvae_group_norm_backward_sums_##suffix(double *sum_dy, double *sum_dy_xhat, float *dy,               \
                                                 const float *d_out, const float *x, const float *mean,        \
                                                 const float *rstd, const float *gamma, const float *beta,     \
                                                 ptrdiff_t positions, int channels, bool swish);               \
    void scvae_group_norm_backward_apply_##suffix(float *dx, const float *dy, const float *x,                  \
                                                  const float *scale_dy, const float *slope_dx,                \
                                                  const float *shift_dx, ptrdiff_t positions, int channels,    \
                                                  bool accumulate);                                            \
    void scvae_column_moments_##suffix(double *sums, double *squares, const float *x, ptrdiff_t rows,          \
                                       ptrdiff_t stride, int channels);

SCVAE_GROUP_NORM_PASSES(avx512)
SCVAE_GROUP_NORM_PASSES(avx2)

#endif
