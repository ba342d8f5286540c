#ifndef SCVAE_GROUP_NORM_H
#define SCVAE_GROUP_NORM_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel_variant.h"

/// The per-image passes of GroupNorm (Sources/Model/GroupNorm.swift), sixteen channels per
/// register with AVX-512, eight with AVX2 (the same operations per channel in the same order, so
/// the same bits). Activations are [positions][channels]; per-channel vectors are [channels].
/// Only call with `kernels` that scvae_kernels_supported().

/// out = x * scale + shift, then swish(out) = out * sigmoid(out) when `swish`.
void scvae_group_norm_apply(scvae_kernels kernels, float *out, const float *x, const float *scale,
                            const float *shift, ptrdiff_t positions, int channels, bool swish);

/// The backward's first pass. With xhat = (x - mean) * rstd and g = dOut, or with `swish`
/// g = dOut * s * (1 + y * (1 - s)) where y = xhat * gamma + beta and s = sigmoid(y) (then written
/// to dy): sum_dy[c] = sum over positions of g, sum_dy_xhat[c] = sum of g * xhat, in double, in
/// position order.
void scvae_group_norm_backward_sums(scvae_kernels kernels, double *sum_dy, double *sum_dy_xhat, float *dy,
                                    const float *d_out, const float *x, const float *mean, const float *rstd,
                                    const float *gamma, const float *beta, ptrdiff_t positions, int channels,
                                    bool swish);

/// The backward's second pass: dx (+)= scale_dy * dy - slope_dx * x - shift_dx.
void scvae_group_norm_backward_apply(scvae_kernels kernels, float *dx, const float *dy, const float *x,
                                     const float *scale_dy, const float *slope_dx, const float *shift_dx,
                                     ptrdiff_t positions, int channels, bool accumulate);

/// Per-channel sums over rows of x[rows][channels] (rows `stride` floats apart) in double, in row
/// order: sums[c] = sum of x[r][c], and squares[c] = sum of x[r][c]^2 when squares is not NULL
/// (GroupNorm's statistics, a convolution's bias gradient). Each channel's sums depend on that
/// channel alone, so blocks of channels can be summed separately with the same results.
void scvae_column_moments(scvae_kernels kernels, double *sums, double *squares, const float *x, ptrdiff_t rows,
                          ptrdiff_t stride, int channels);

#endif
