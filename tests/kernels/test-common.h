/* test-common.h — small helpers shared by the kernel tests: RNG, path selection (CHECK comes
 * from tests/common/lfm2-test.h). */
#ifndef LFM2_TEST_COMMON_H
#define LFM2_TEST_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2.h"
#include "lfm2-test.h"   /* CHECK */

/* xorshift64* — deterministic across platforms */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t rng_u64(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}
static inline double rng_unif(void) { return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0); }
static inline float rng_normal(void)
{
    double u1 = rng_unif(), u2 = rng_unif();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Selects the dispatch path named by argv[1] ("scalar", "avx2", "avx512"); exits 77 (meson's
 * "skipped") when the CPU cannot run it. */
static inline enum lfm2_cpu_path select_path(int argc, char **argv)
{
    enum lfm2_cpu_path p = LFM2_CPU_SCALAR;
    if (argc > 1) {
        if (!strcmp(argv[1], "scalar")) p = LFM2_CPU_SCALAR;
        else if (!strcmp(argv[1], "avx2")) p = LFM2_CPU_AVX2;
        else if (!strcmp(argv[1], "avx512")) p = LFM2_CPU_AVX512;
        else if (!strcmp(argv[1], "avx512-nobf16")) {
            /* the AVX-512 path as on a CPU without AVX512_BF16 (Ice Lake): set before the
             * engine first reads the CPU flags */
            p = LFM2_CPU_AVX512;
            setenv("LFM2_CPU_NO_BF16", "1", 1);
        } else {
            fprintf(stderr, "unknown path '%s'\n", argv[1]);
            exit(2);
        }
    }
    if (!lfm2_set_cpu_path(p)) {
        printf("SKIP: this CPU cannot run the %s path (%s)\n", lfm2_cpu_path_name(p),
               lfm2_cpu_features());
        exit(77);
    }
    if (getenv("LFM2_CPU_NO_BF16") && strstr(lfm2_cpu_features(), "BF16")) {
        fprintf(stderr, "LFM2_CPU_NO_BF16 did not hide AVX512_BF16 (%s)\n", lfm2_cpu_features());
        exit(1);
    }
    printf("path %s (CPU: %s)\n", lfm2_cpu_path_name(lfm2_get_cpu_path()), lfm2_cpu_features());
    return p;
}

static inline int test_result(const char *name)
{
    if (lfm2_test_failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, lfm2_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
