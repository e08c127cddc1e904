/* dispatch.c — CPU feature detection and the choice of kernel path (scalar / AVX2 / AVX-512).
 *
 * The path is chosen once (LFM2_CPU_PATH, else the best the CPU runs) and can be changed at
 * any time with lfm2_set_cpu_path(); ops read the current table (a constant in its ISA's
 * file, kernels.h) at the start of each call. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LFM2_X86 1
#endif

/* ---- CPU features ---- */

static unsigned detect_flags(void)
{
    unsigned f = 0;
#ifdef LFM2_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const bool ymm_ok = (xlo & 0x6) == 0x6;                  /* XMM and YMM state */
    const bool zmm_ok = ymm_ok && (xlo & 0xE0) == 0xE0;       /* opmask, ZMM0-15 hi, ZMM16-31 */
    if (!ymm_ok)
        return 0;
    if (fma)
        f |= LFM2_CPU_HAS_FMA;
    if (f16c)
        f |= LFM2_CPU_HAS_F16C;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b >> 5) & 1)
            f |= LFM2_CPU_HAS_AVX2;
        if (zmm_ok) {
            if ((b >> 16) & 1) f |= LFM2_CPU_HAS_AVX512F;
            if ((b >> 17) & 1) f |= LFM2_CPU_HAS_AVX512DQ;
            if ((b >> 30) & 1) f |= LFM2_CPU_HAS_AVX512BW;
            if ((b >> 31) & 1) f |= LFM2_CPU_HAS_AVX512VL;
            if ((c >> 1) & 1) f |= LFM2_CPU_HAS_AVX512VBMI;
            if ((c >> 11) & 1) f |= LFM2_CPU_HAS_AVX512VNNI;
            unsigned a1, b1, c1, d1;
            __cpuid_count(7, 1, a1, b1, c1, d1);
            if ((a1 >> 5) & 1) f |= LFM2_CPU_HAS_AVX512BF16;
        }
    }
#endif
    return f;
}

static unsigned g_flags;
static pthread_once_t g_flags_once = PTHREAD_ONCE_INIT;
/* LFM2_CPU_NO_BF16=1 hides AVX512_BF16, so the AVX-512 path's BF16 kernels for CPUs without
 * it (Ice Lake) run and are tested on a CPU that has it. */
static void init_flags(void)
{
    g_flags = detect_flags();
    const char *e = getenv("LFM2_CPU_NO_BF16");
    if (e && *e && strcmp(e, "0") != 0)
        g_flags &= ~(unsigned)LFM2_CPU_HAS_AVX512BF16;
}

unsigned lfm2_cpu_flags(void)
{
    pthread_once(&g_flags_once, init_flags);
    return g_flags;
}

#define NEED_AVX2 (LFM2_CPU_HAS_AVX2 | LFM2_CPU_HAS_FMA | LFM2_CPU_HAS_F16C)
/* The AVX-512 kernels use VNNI for every integer product and VBMI byte permutes to unpack
 * blocks (Ice Lake, Zen 4 and later); older AVX-512 CPUs (Skylake-X, Cascade Lake) take the
 * AVX2 path, so every kernel of a path is exercised on one machine. BF16 is optional. */
#define NEED_AVX512 (NEED_AVX2 | LFM2_CPU_HAS_AVX512F | LFM2_CPU_HAS_AVX512BW | \
                     LFM2_CPU_HAS_AVX512VL | LFM2_CPU_HAS_AVX512DQ | LFM2_CPU_HAS_AVX512VNNI | \
                     LFM2_CPU_HAS_AVX512VBMI)

static bool path_supported(enum lfm2_cpu_path p)
{
    const unsigned f = lfm2_cpu_flags();
    switch (p) {
    case LFM2_CPU_SCALAR: return true;
#if defined(LFM2_KERNELS_X86)
    case LFM2_CPU_AVX2: return (f & NEED_AVX2) == NEED_AVX2;
    case LFM2_CPU_AVX512: return (f & NEED_AVX512) == NEED_AVX512;
#endif
    default: (void)f; return false;
    }
}

static enum lfm2_cpu_path best_path(void)
{
    if (path_supported(LFM2_CPU_AVX512))
        return LFM2_CPU_AVX512;
    if (path_supported(LFM2_CPU_AVX2))
        return LFM2_CPU_AVX2;
    return LFM2_CPU_SCALAR;
}

/* ---- kernel tables ---- */

static const struct lfm2_kernels *_Atomic g_table;   /* of the active path */
static pthread_once_t g_path_once = PTHREAD_ONCE_INIT;

const struct lfm2_kernels *lfm2_kernels_for(enum lfm2_cpu_path path)
{
    if (!path_supported(path))
        return NULL;
    switch (path) {
    case LFM2_CPU_SCALAR: return &lfm2_kernels_scalar;
#if defined(LFM2_KERNELS_X86)
    case LFM2_CPU_AVX2: return &lfm2_kernels_avx2;
    case LFM2_CPU_AVX512:
        return (lfm2_cpu_flags() & LFM2_CPU_HAS_AVX512BF16) ? &lfm2_kernels_avx512_bf16 : &lfm2_kernels_avx512;
#endif
    default: return NULL;
    }
}

/* The path to start with: LFM2_CPU_PATH when this CPU runs it, else the best it runs. */
static void init_path(void)
{
    enum lfm2_cpu_path p = best_path();
    const char *env = getenv("LFM2_CPU_PATH");
    if (env && *env && strcmp(env, "auto") != 0) {
        enum lfm2_cpu_path want = LFM2_CPU_AUTO;
        if (!strcmp(env, "scalar")) want = LFM2_CPU_SCALAR;
        else if (!strcmp(env, "avx2")) want = LFM2_CPU_AVX2;
        else if (!strcmp(env, "avx512")) want = LFM2_CPU_AVX512;
        if (want == LFM2_CPU_AUTO)
            fprintf(stderr, "lfm2: LFM2_CPU_PATH='%s' is not scalar|avx2|avx512|auto; using %s\n",
                    env, lfm2_cpu_path_name(p));
        else if (!path_supported(want))
            fprintf(stderr, "lfm2: LFM2_CPU_PATH=%s: this CPU cannot run it; using %s\n", env,
                    lfm2_cpu_path_name(p));
        else
            p = want;
    }
    atomic_store(&g_table, lfm2_kernels_for(p));
}

const struct lfm2_kernels *lfm2_kernels_get(void)
{
    pthread_once(&g_path_once, init_path);
    return atomic_load_explicit(&g_table, memory_order_relaxed);
}

/* ---- public API (lfm2.h, "CPU kernels") ---- */

bool lfm2_set_cpu_path(enum lfm2_cpu_path path)
{
    pthread_once(&g_path_once, init_path);
    if (path == LFM2_CPU_AUTO)
        path = best_path();
    if (!path_supported(path))
        return false;
    atomic_store(&g_table, lfm2_kernels_for(path));
    return true;
}

enum lfm2_cpu_path lfm2_get_cpu_path(void)
{
    pthread_once(&g_path_once, init_path);
    return atomic_load(&g_table)->path;
}

const char *lfm2_cpu_path_name(enum lfm2_cpu_path path)
{
    switch (path) {
    case LFM2_CPU_AUTO: return "auto";
    case LFM2_CPU_SCALAR: return "scalar";
    case LFM2_CPU_AVX2: return "avx2";
    case LFM2_CPU_AVX512: return "avx512";
    }
    return "unknown";
}

static char g_features[160];
static pthread_once_t g_features_once = PTHREAD_ONCE_INIT;

static void format_features(void)
{
    const unsigned f = lfm2_cpu_flags();
    char *p = g_features;
    const char *end = g_features + sizeof g_features;
    if ((f & NEED_AVX512 & ~NEED_AVX2) == (NEED_AVX512 & ~NEED_AVX2)) {
        p += snprintf(p, (size_t)(end - p), "AVX512 (VNNI, VBMI%s) | ",
                      (f & LFM2_CPU_HAS_AVX512BF16) ? ", BF16" : "");
    } else if (f & LFM2_CPU_HAS_AVX512F) {
        p += snprintf(p, (size_t)(end - p), "AVX512F (no VNNI/VBMI: unused) | ");
    }
    if (f & LFM2_CPU_HAS_AVX2) p += snprintf(p, (size_t)(end - p), "AVX2 | ");
    if (f & LFM2_CPU_HAS_FMA) p += snprintf(p, (size_t)(end - p), "FMA | ");
    if (f & LFM2_CPU_HAS_F16C) p += snprintf(p, (size_t)(end - p), "F16C | ");
    if (p == g_features)
        snprintf(p, (size_t)(end - p), "scalar only");
    else
        p[-3] = '\0';   /* drop the trailing " | " */
}

const char *lfm2_cpu_features(void)
{
    pthread_once(&g_features_once, format_features);
    return g_features;
}

/* ---- opt-in profile ---- */

int lfm2_prof_on = -1;
static int g_prof_level;
static _Atomic long long g_prof_us[LFM2_PROF_COUNT];
static _Atomic long long g_prof_calls[LFM2_PROF_COUNT];
static _Atomic long long g_prof_mmacs[LFM2_PROF_COUNT];

/* LFM2_PROFILE=2: products also broken down by shape (weight type, n_in, total n_out, tokens
 * bucket), to find which matrices of a forward pass fall short of the bandwidth. */
#define PROF_SHAPES 64
struct prof_shape {
    int type, n_w;
    long long k, rows, n, calls;
    double ms, bytes;
};
static struct prof_shape g_shapes[PROF_SHAPES];
static int g_n_shapes;
static pthread_mutex_t g_shapes_lock = PTHREAD_MUTEX_INITIALIZER;

void lfm2_prof_shape(int type, int n_w, long long k, long long rows, long long n, double bytes, double ms)
{
    if (g_prof_level < 2)
        return;
    pthread_mutex_lock(&g_shapes_lock);
    int i = 0;
    while (i < g_n_shapes && !(g_shapes[i].type == type && g_shapes[i].n_w == n_w && g_shapes[i].k == k &&
                                g_shapes[i].rows == rows && g_shapes[i].n == n))
        i++;
    if (i < PROF_SHAPES) {
        if (i == g_n_shapes) {
            g_shapes[i] = (struct prof_shape){ type, n_w, k, rows, n, 0, 0, 0 };
            g_n_shapes++;
        }
        g_shapes[i].calls++;
        g_shapes[i].ms += ms;
        g_shapes[i].bytes += bytes;
    }
    pthread_mutex_unlock(&g_shapes_lock);
}

static void prof_shapes_report(void)
{
    if (g_prof_level < 2 || !g_n_shapes)
        return;
    fprintf(stderr, "  by shape (type, weights, n_in, n_out total, tokens): ms, calls, µs/call, weight GB/s\n");
    for (int i = 0; i < g_n_shapes; i++) {
        const struct prof_shape *s = &g_shapes[i];
        fprintf(stderr, "    type %2d ×%d %6lld %6lld n=%-5lld %9.1f ms %7lld %9.1f µs %7.1f GB/s\n", s->type,
                s->n_w, s->k, s->rows, s->n, s->ms, s->calls, s->ms * 1e3 / (double)s->calls,
                s->ms > 0 ? s->bytes / (s->ms * 1e-3) / 1e9 : 0.0);
    }
}

static void prof_report(void)
{
    static const char *names[LFM2_PROF_COUNT] = { "matmul n=1", "matmul n>1", "attention" };
    fprintf(stderr, "lfm2 profile (%s):\n", lfm2_cpu_path_name(lfm2_get_cpu_path()));
    for (int i = 0; i < LFM2_PROF_COUNT; i++) {
        const double ms = atomic_load(&g_prof_us[i]) / 1000.0;
        const double gmac = atomic_load(&g_prof_mmacs[i]) / 1000.0;
        fprintf(stderr, "  %-11s %9.1f ms  %8lld calls", names[i], ms, atomic_load(&g_prof_calls[i]));
        if (gmac > 0 && ms > 0)
            fprintf(stderr, "  %8.1f GMAC/s", gmac / (ms * 1e-3));
        fputc('\n', stderr);
    }
    prof_shapes_report();
}

void lfm2_prof_init(void)
{
    const char *e = getenv("LFM2_PROFILE");
    lfm2_prof_on = e && *e && strcmp(e, "0") != 0;
    g_prof_level = lfm2_prof_on ? atoi(e) : 0;
    if (lfm2_prof_on)
        atexit(prof_report);
}

void lfm2_prof_add(int what, double ms, double macs)
{
    atomic_fetch_add(&g_prof_us[what], (long long)(ms * 1000.0));
    atomic_fetch_add(&g_prof_calls[what], 1);
    atomic_fetch_add(&g_prof_mmacs[what], (long long)(macs * 1e-6));
}
