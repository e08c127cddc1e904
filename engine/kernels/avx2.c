/* avx2.c — AVX2 + FMA + F16C kernels (being written). */
#include "kernels.h"

void lfm2_kernels_init_avx2(struct lfm2_kernels *k)
{
    *k = (struct lfm2_kernels){ .path = LFM2_CPU_AVX2 };
}
