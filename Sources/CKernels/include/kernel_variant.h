#ifndef SCVAE_KERNEL_VARIANT_H
#define SCVAE_KERNEL_VARIANT_H

#include <stdbool.h>

/// The instruction set our C kernels (tap_gemm.h, group_norm.h) run on. Every variant computes
/// each output with the same operations in the same order (one FMA chain per output, the same
/// Double sums per channel), so they give the same bits and differ only in how many floats a
/// register holds. The package is built for baseline x86-64: each variant's functions carry
/// their own target attribute, and callers check scvae_kernels_supported() first.
typedef enum __attribute__((enum_extensibility(closed))) scvae_kernels {
    scvae_kernels_avx2,    ///< AVX2 and FMA: 8 floats per register, 16 registers (Haswell and later, AMD Zen)
    scvae_kernels_avx512,  ///< AVX-512F: 16 floats per register, 32 registers
} scvae_kernels;

/// True when this CPU and operating system run `kernels` (the instructions, and the registers
/// enabled by the operating system).
bool scvae_kernels_supported(scvae_kernels kernels);

#endif
