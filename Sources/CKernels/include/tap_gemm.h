#ifndef SCVAE_TAP_GEMM_H
#define SCVAE_TAP_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel_variant.h"

/// A convolution as a sum of shifted matrix products, computed without packing or im2col
/// ("implicit GEMM"): for every computed row i,
///
///     out(i)[n] (+)= bias[n] + sum over taps t, k < depth of input[(i + shifts[t]) * input_stride + k] * weight[(t * depth + k) * weight_stride + n]
///
/// Rows are "wide": row i stands for pixel (i / wide_width, i % wide_width) and only the pixels
/// with i % wide_width < width are written, at output[((i / wide_width) * width + i % wide_width) * columns].
/// A 3x3 same convolution reads a zero-bordered input whose rows are wide_width = width + 2 pixels
/// long; a 1x1 convolution has one tap, shift 0 and wide_width = width.
///
/// Every output value is summed in the same order (taps, then depth) whatever the blocking or the
/// variant (kernel_variant.h), so results are deterministic and the variants agree bit for bit.
/// The AVX-512 variant computes 14x32 tiles, the AVX2 one 6x16. Strides of a multiple of 128 floats map the fourteen rows a tile
/// reads onto a few L1 sets, and the kernel slows down 2-3x: callers pad such strides by 16
/// floats (Conv2dDirect.leadingDimension).
typedef struct {
    const float *input;       ///< rows of `depth` floats, `input_stride` apart; row i + shifts[t] must exist for every computed row i
    ptrdiff_t input_stride;
    const float *weight;      ///< [taps][depth] rows of `columns` floats, `weight_stride` apart
    int weight_stride;
    const ptrdiff_t *shifts;  ///< row offset of each tap
    int taps;
    int depth;
    int columns;
    ptrdiff_t rows;           ///< wide rows to compute
    ptrdiff_t wide_width;
    ptrdiff_t width;
    const float *bias;        ///< [columns], or NULL
    float *output;
    bool accumulate;          ///< add to the output instead of overwriting it
} scvae_tap_gemm;

/// The weight gradient of such a convolution: for every tap t,
///
///     output[(t * rows + m) * columns + n] += sum over k < depth of a[(k + shifts[t]) * a_stride + m] * b[k * b_stride + n]
///
/// (a is the zero-bordered input on wide rows, b the output gradient on the same wide rows with
/// zeros where a row stands for no pixel). The depth is summed in fixed blocks, in order, so
/// results are deterministic.
typedef struct {
    const float *a;
    ptrdiff_t a_stride;
    const float *b;
    ptrdiff_t b_stride;
    const ptrdiff_t *shifts;
    int taps;
    int rows;
    int columns;
    ptrdiff_t depth;
    float *output;            ///< [taps][rows][columns], added to
    /// When row_length > 0, the depth rows that hold pixels: k = j * image_period + y * row_period + x
    /// for y < image_rows and x < row_length. The other rows of b must be zeros; a variant may
    /// skip them, which changes no sum. When row_length is 0 every row is summed.
    ptrdiff_t row_length, row_period, image_rows, image_period;
} scvae_tap_gemm_transposed;

/// Runs the product with `kernels`; only call when scvae_kernels_supported(kernels).
void scvae_tap_gemm_run(scvae_kernels kernels, const scvae_tap_gemm *job);

/// Runs the weight-gradient product with `kernels`; only call when scvae_kernels_supported(kernels).
void scvae_tap_gemm_transposed_run(scvae_kernels kernels, const scvae_tap_gemm_transposed *job);

/// The weight-gradient product splits into this many tiles of output rows (of every tap, all
/// columns) for `kernels`. They write disjoint outputs and each output is summed in the same order
/// whichever tiles run, in whichever order or on whichever thread: running all of them is _run.
ptrdiff_t scvae_tap_gemm_transposed_tiles(scvae_kernels kernels, const scvae_tap_gemm_transposed *job);

/// Runs row tile `tile` (0 ..< scvae_tap_gemm_transposed_tiles(kernels, job)) of the weight-gradient product.
void scvae_tap_gemm_transposed_run_tile(scvae_kernels kernels, const scvae_tap_gemm_transposed *job, ptrdiff_t tile);

#endif
