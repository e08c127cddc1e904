/* avx512.c — AVX-512 (F/BW/VL/DQ + VNNI, BF16 where present) kernels (being written). */
#include "kernels.h"

void lfm2_kernels_init_avx512(struct lfm2_kernels *k)
{
    *k = (struct lfm2_kernels){ .path = LFM2_CPU_AVX512 };
}
