// Times two builds of one tap-GEMM kernel variant in one process, alternately ("A" and "B",
// compiled by Benchmarks/kernel-ab.sh with their symbols renamed), on 3x3 same convolutions: the
// forward product over one padded image and the weight gradient over a stacked group of images,
// laid out as Conv2dDirect lays them out. On a shared machine whose speed drifts by tens of
// percent between processes, alternating the two builds call by call and keeping each one's
// best time compares them under the same conditions. Also says whether A and B give the same bits.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap_gemm.h"

void a_run(const scvae_tap_gemm *job);
void b_run(const scvae_tap_gemm *job);
ptrdiff_t a_tiles(const scvae_tap_gemm_transposed *job);
ptrdiff_t b_tiles(const scvae_tap_gemm_transposed *job);
void a_tile(const scvae_tap_gemm_transposed *job, ptrdiff_t tile);
void b_tile(const scvae_tap_gemm_transposed *job, ptrdiff_t tile);

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

// Floats in [-0.5, 0.5), from a fixed pattern, in a 64-byte aligned buffer.
static float *filled(size_t count) {
    float *p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "kernel-ab: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

// Conv2dDirect.leadingDimension.
static int leading_dimension(int count) { return count % 128 == 0 ? count + 16 : count; }

static void run_all_tiles(void (*tile)(const scvae_tap_gemm_transposed *, ptrdiff_t), ptrdiff_t tiles,
                          const scvae_tap_gemm_transposed *job) {
    for (ptrdiff_t t = 0; t < tiles; t++) tile(job, t);
}

static void shape(int size, int channels, int images, int repeats) {
    const int width = size, height = size, wide = width + 2, ld = leading_dimension(channels);
    const ptrdiff_t stride = (ptrdiff_t)(height + 2) * wide;
    ptrdiff_t shifts[9];
    for (int t = 0; t < 9; t++) shifts[t] = (t / 3) * wide + t % 3;
    const size_t outputs = (size_t)height * width * channels, weights = (size_t)9 * channels * channels;
    float *input = filled((size_t)(images * stride + 2) * ld), *weight = filled(weights * ld / channels);
    float *gradient = filled((size_t)(images * stride + 2) * ld);
    float *out_a = filled(outputs), *out_b = filled(outputs), *dw_a = filled(weights), *dw_b = filled(weights);
    // The padded gradient holds zeros off the pixels, as the model's does.
    for (int j = 0; j < images; j++) {
        for (ptrdiff_t r = 0; r < stride; r++) {
            const ptrdiff_t y = r / wide - 1, x = r % wide - 1;
            if (y < 0 || y >= height || x < 0 || x >= width) memset(gradient + (j * stride + r) * ld, 0, (size_t)ld * sizeof(float));
        }
    }
    scvae_tap_gemm forward = { input, ld, weight, ld, shifts, 9, channels, channels, (ptrdiff_t)height * wide, wide,
                               width, NULL, out_a, false };
    scvae_tap_gemm_transposed gradient_job = { input, ld, gradient + (wide + 1) * ld, ld, shifts, 9, channels,
                                               channels, (images - 1) * stride + (ptrdiff_t)height * wide, dw_a,
                                               width, wide, height, stride };
    double best[4] = { 1e30, 1e30, 1e30, 1e30 };
    for (int r = 0; r < repeats; r++) {
        double start;
        forward.output = out_a;
        start = seconds(); a_run(&forward); start = seconds() - start; if (start < best[0]) best[0] = start;
        forward.output = out_b;
        start = seconds(); b_run(&forward); start = seconds() - start; if (start < best[1]) best[1] = start;
        memset(dw_a, 0, weights * sizeof(float));
        memset(dw_b, 0, weights * sizeof(float));
        gradient_job.output = dw_a;
        start = seconds(); run_all_tiles(a_tile, a_tiles(&gradient_job), &gradient_job); start = seconds() - start;
        if (start < best[2]) best[2] = start;
        gradient_job.output = dw_b;
        start = seconds(); run_all_tiles(b_tile, b_tiles(&gradient_job), &gradient_job); start = seconds() - start;
        if (start < best[3]) best[3] = start;
    }
    const double flop = 2.0 * 9 * channels * channels * height * width;
    printf("3x3 %dx%d %d->%d: forward A %5.1f B %5.1f GFLOP/s (%s bits); weight gradient over %d images A %5.1f B %5.1f GFLOP/s (%s bits)\n",
           height, width, channels, channels, flop / best[0] / 1e9, flop / best[1] / 1e9,
           memcmp(out_a, out_b, outputs * sizeof(float)) ? "DIFFERENT" : "same", images,
           images * flop / best[2] / 1e9, images * flop / best[3] / 1e9,
           memcmp(dw_a, dw_b, weights * sizeof(float)) ? "DIFFERENT" : "same");
    free(input); free(weight); free(gradient); free(out_a); free(out_b); free(dw_a); free(dw_b);
}

int main(int argc, char **argv) {
    const int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1) {
        fprintf(stderr, "usage: kernel-ab [repeats >= 1]\n");
        return 2;
    }
    // small's levels and tiny's smallest; the weight gradient over as many images as one
    // stacked group of the backward pass holds (DirectBackwardPlan.stackBudget).
    shape(64, 64, 1, repeats);
    shape(32, 128, 1, repeats);
    shape(16, 128, 4, repeats);
    shape(8, 128, 16, repeats);
    return 0;
}
