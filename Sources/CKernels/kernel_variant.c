#include "kernel_variant.h"

bool scvae_kernels_supported(scvae_kernels kernels) {
    switch (kernels) {
    case scvae_kernels_avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case scvae_kernels_avx512: return __builtin_cpu_supports("avx512f");
    }
    return false;
}
