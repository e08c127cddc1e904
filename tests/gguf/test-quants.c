/* test-quants.c — block formats checked against independent computations.
 *
 * - fp16/bf16: every half and bf16 value decoded with a formula written here (ldexp on the
 *   fields), fp32->fp16/bf16 against a brute-force "nearest representable, ties to even"
 *   search, and against the CPU's F16C instructions when present.
 * - dequantization of every type: random blocks (random quant bytes, finite fp16 scales)
 *   decoded element by element from the spec's formulas (lfm2-text.md §5), written per
 *   element rather than per block as the engine does.
 * - quantize→dequantize error bounds per type, and byte-exact reproduction of the Q8_0 /
 *   Q4_0 / F16 fixture files (made with ggml's reference quantizers) from the F32 fixture.
 * - the q8_0 / q8_K activation quantizers against a direct implementation of their rule
 *   (lrintf for round-half-even), with inputs that land exactly on .5.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-gguf.h"
#include "lfm2.h"
#include "quants.h"

#include "lfm2-test.h"

/* ---- a small deterministic PRNG ----------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd64() >> 11) * (1.0 / 9007199254740992.0); }
static float gauss(void)
{
    double u = unif() + 1e-300, v = unif();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ---- independent half / bf16 decoding -------------------------------------------------------- */

static double half_value(uint16_t h)   /* finite halves only */
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* Nearest half to f by binary search over the ordered positive halves; ties to even. */
static uint16_t ref_fp32_to_fp16(float f)
{
    uint16_t sign = (fbits(f) >> 16) & 0x8000;
    if (isnan(f))
        return 0;   /* not used */
    double a = fabs((double)f);
    if (a >= 65520.0)   /* half-way between 65504 and the next step (65536) → inf */
        return sign | 0x7c00;
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) {   /* largest h with value <= a */
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (half_value(mid) <= a) lo = mid; else hi = (uint16_t)(mid - 1);
    }
    uint16_t h = lo;
    if (h < 0x7bff) {
        double d0 = a - half_value(h), d1 = half_value((uint16_t)(h + 1)) - a;
        if (d1 < d0 || (d1 == d0 && (h & 1)))
            h++;
    }
    return sign | h;
}

static uint16_t ref_fp32_to_bf16(float f)
{
    uint32_t u = fbits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    uint16_t lo = (uint16_t)(u >> 16);
    double a = fabs((double)f);
    double vlo = fabs((double)bitsf((uint32_t)lo << 16));
    /* the next bf16 up in magnitude; past the largest finite value its "value" is 2^128 */
    uint16_t up = (uint16_t)(lo + 1);
    double vup = ((up & 0x7f80) == 0x7f80) ? ldexp(1, 128) : fabs((double)bitsf((uint32_t)up << 16));
    if ((lo & 0x7f80) == 0x7f80)   /* inf */
        return lo;
    double d0 = a - vlo, d1 = vup - a;
    if (d1 < d0 || (d1 == d0 && (lo & 1)))
        return up;
    return lo;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
#include <cpuid.h>
static int have_f16c(void)
{
    /* F16C is VEX-encoded: it needs the OS's AVX state support too */
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c >> 29) & 1;
}
#else
static uint16_t hw_f2h(float f) { (void)f; return 0; }
static float hw_h2f(uint16_t h) { (void)h; return 0; }
static int have_f16c(void) { return 0; }
#endif

static void test_half(void)
{
    int f16c = have_f16c();
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lfm2_fp16_to_fp32((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e != 31) {
            if ((double)f != half_value((uint16_t)h) || (fbits(f) >> 31) != (h >> 15))
                bad++;
            if (lfm2_fp32_to_fp16(f) != h)   /* every finite half round-trips */
                bad++;
        } else if (h & 1023) {
            if (!isnan(f) || !isnan(lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(f))))
                bad++;
        } else if (!isinf(f) || lfm2_fp32_to_fp16(f) != h) {
            bad++;
        }
        if (f16c && fbits(hw_h2f((uint16_t)h)) != fbits(f))
            bad++;
    }
    CHECK(bad == 0, "fp16 -> fp32 over all 65536 halves: %d mismatches", bad);

    /* fp32 -> fp16: random bit patterns concentrated on the half range, the exact midpoints
     * between neighbouring halves (ties), and their float neighbours */
    bad = 0;
    int hw_bad = 0;
    for (int i = 0; i < 300000; i++) {
        float f;
        if (i < 65536) {
            uint16_t h = (uint16_t)(i & 0x7bff);
            double mid = (half_value(h) + half_value((uint16_t)(h + 1))) / 2;   /* exact in fp32 */
            f = (float)mid;
            if (i & 0x8000) f = -f;
            int k = (i >> 12) & 3;
            if (k == 1) f = nextafterf(f, INFINITY);
            if (k == 2) f = nextafterf(f, -INFINITY);
        } else {
            uint32_t u = (uint32_t)rnd64();
            u = (u & 0x80000000u) | ((0x31000000u + (u & 0x7fffffffu) % 0x17000000u));
            f = bitsf(u);
        }
        uint16_t mine = lfm2_fp32_to_fp16(f);
        if (mine != ref_fp32_to_fp16(f)) {
            if (bad++ < 5)
                fprintf(stderr, "  fp16(%a): got %04x, expected %04x\n", f, mine, ref_fp32_to_fp16(f));
        }
        if (f16c && mine != hw_f2h(f))
            hw_bad++;
    }
    CHECK(bad == 0, "fp32 -> fp16 against nearest-even search: %d mismatches", bad);
    CHECK(hw_bad == 0, "fp32 -> fp16 against F16C: %d mismatches", hw_bad);
    CHECK(lfm2_fp32_to_fp16(65519.99f) == 0x7bff && lfm2_fp32_to_fp16(65520.f) == 0x7c00,
          "overflow boundary");
    CHECK(lfm2_fp32_to_fp16(INFINITY) == 0x7c00 && lfm2_fp32_to_fp16(-INFINITY) == 0xfc00, "inf");
    CHECK(lfm2_fp32_to_fp16(ldexpf(1, -25)) == 0 && lfm2_fp32_to_fp16(nextafterf(ldexpf(1, -25), 1)) == 1,
          "smallest subnormal rounding");
    CHECK(lfm2_fp32_to_fp16(-0.0f) == 0x8000, "negative zero");
    /* NaN stays NaN and quiet, with its top payload bits (F16C) */
    uint16_t hn = lfm2_fp32_to_fp16(bitsf(0x7f812345u));
    CHECK((hn & 0x7e00) == 0x7e00, "NaN must stay a quiet NaN: %04x", hn);
    if (f16c) {
        for (uint32_t u = 0x7f800001u; u < 0x7f800001u + 100000u; u += 7)
            if (lfm2_fp32_to_fp16(bitsf(u)) != hw_f2h(bitsf(u)) ||
                lfm2_fp32_to_fp16(bitsf(u | 0x80000000u)) != hw_f2h(bitsf(u | 0x80000000u)))
                hw_bad++;
        CHECK(hw_bad == 0, "NaN payloads against F16C: %d mismatches", hw_bad);
    }
}

static void test_bf16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++)
        if (fbits(lfm2_bf16_to_fp32((uint16_t)h)) != h << 16)
            bad++;
    CHECK(bad == 0, "bf16 -> fp32: %d mismatches", bad);
    bad = 0;
    for (int i = 0; i < 400000; i++) {
        uint32_t u = (uint32_t)rnd64();
        if (i % 4 == 1)
            u = (u & 0xffff0000u) | 0x8000u;        /* exact ties */
        if (i % 4 == 2)
            u = (u & 0x807fffffu) | 0x7f000000u;    /* near the top of the range */
        if (i % 8 == 3)
            u &= 0x807fffffu;                       /* subnormals (ggml keeps them) */
        float f = bitsf(u);
        if (lfm2_fp32_to_bf16(f) != ref_fp32_to_bf16(f)) {
            if (bad++ < 5)
                fprintf(stderr, "  bf16(%08x): got %04x, expected %04x\n", u, lfm2_fp32_to_bf16(f),
                        ref_fp32_to_bf16(f));
        }
    }
    CHECK(bad == 0, "fp32 -> bf16: %d mismatches", bad);
    CHECK(lfm2_fp32_to_bf16(bitsf(0x7f800001u)) == 0x7fc0, "signalling NaN is quieted");
}

/* ---- independent dequantization (one element at a time, from the spec) ---------------------- */

static float h2f(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return lfm2_fp16_to_fp32(h); }

static void scale_min_k4(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Element k of a block (k < block size), as the spec describes each format. */
static float ref_elem(enum lfm2_type t, const uint8_t *b, int k)
{
    switch (t) {
    case LFM2_TYPE_Q8_0:
        return (float)(int8_t)b[2 + k] * h2f(b);
    case LFM2_TYPE_Q4_0: {
        int q = k < 16 ? (b[2 + k] & 15) : (b[2 + k - 16] >> 4);
        return (float)(q - 8) * h2f(b);
    }
    case LFM2_TYPE_Q4_1: {
        int q = k < 16 ? (b[4 + k] & 15) : (b[4 + k - 16] >> 4);
        return (float)q * h2f(b) + h2f(b + 2);
    }
    case LFM2_TYPE_Q5_0: {
        uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
        int lo = k < 16 ? (b[6 + k] & 15) : (b[6 + k - 16] >> 4);
        int q = lo | (int)((qh >> k) & 1) << 4;   /* bit k of qh is the 5th bit of element k */
        return (float)(q - 16) * h2f(b);
    }
    case LFM2_TYPE_Q5_1: {
        uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        int lo = k < 16 ? (b[8 + k] & 15) : (b[8 + k - 16] >> 4);
        int q = lo | (int)((qh >> k) & 1) << 4;
        return (float)q * h2f(b) + h2f(b + 2);
    }
    case LFM2_TYPE_Q4_K:
    case LFM2_TYPE_Q5_K: {
        const uint8_t *scales = b + 4;
        const uint8_t *qh = b + 16, *qs = t == LFM2_TYPE_Q5_K ? b + 48 : b + 16;
        int c = k / 64, hi = (k % 64) / 32, l = k % 32;
        int sc, m;
        scale_min_k4(scales, 2 * c + hi, &sc, &m);
        int q = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
        if (t == LFM2_TYPE_Q5_K && (qh[l] >> (2 * c + hi)) & 1)
            q += 16;
        float d = h2f(b) * (float)sc, dm = h2f(b + 2) * (float)m;
        return d * (float)q - dm;
    }
    case LFM2_TYPE_Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = h2f(b + 208);
        int n = k / 128, r = k % 128, quarter = r / 32, l = r % 32;
        int low = quarter == 0 ? ql[64 * n + l] & 15 : quarter == 1 ? ql[64 * n + 32 + l] & 15
                : quarter == 2 ? ql[64 * n + l] >> 4 : ql[64 * n + 32 + l] >> 4;
        int high = (qh[32 * n + l] >> (2 * quarter)) & 3;
        int q = (low | high << 4) - 32;
        return d * (float)sc[8 * n + 2 * quarter + l / 16] * (float)q;
    }
    default:
        return NAN;
    }
}

static const enum lfm2_type k_quant_types[] = {
    LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_0, LFM2_TYPE_Q4_1, LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1,
    LFM2_TYPE_Q4_K, LFM2_TYPE_Q5_K, LFM2_TYPE_Q6_K,
};

/* Byte offsets of the fp16 scale fields of each block type (filled with finite values). */
static void fix_scales(enum lfm2_type t, uint8_t *b)
{
    uint16_t d = lfm2_fp32_to_fp16(gauss() * 0.01f), m = lfm2_fp32_to_fp16(gauss() * 0.01f);
    switch (t) {
    case LFM2_TYPE_Q6_K:
        memcpy(b + 208, &d, 2);
        break;
    case LFM2_TYPE_Q4_1: case LFM2_TYPE_Q5_1: case LFM2_TYPE_Q4_K: case LFM2_TYPE_Q5_K:
        memcpy(b, &d, 2);
        memcpy(b + 2, &m, 2);
        break;
    default:
        memcpy(b, &d, 2);
    }
}

static void test_dequant(void)
{
    enum { NB = 64 };
    for (size_t ti = 0; ti < sizeof k_quant_types / sizeof k_quant_types[0]; ti++) {
        enum lfm2_type t = k_quant_types[ti];
        int be = lfm2_type_block_elems(t), bb = lfm2_type_block_bytes(t);
        int64_t n = (int64_t)NB * be;
        uint8_t *q = malloc((size_t)NB * bb);
        float *y = malloc((size_t)n * sizeof *y);
        int bad = 0;
        for (int rep = 0; rep < 20; rep++) {
            for (int i = 0; i < NB * bb; i++)
                q[i] = (uint8_t)rnd64();
            for (int i = 0; i < NB; i++)
                fix_scales(t, q + (size_t)i * bb);
            lfm2_dequantize_row(t, q, y, n);
            for (int64_t k = 0; k < n; k++) {
                float want = ref_elem(t, q + (k / be) * bb, (int)(k % be));
                if (fbits(want) != fbits(y[k]) && !(want == 0 && y[k] == 0)) {
                    if (bad++ < 3)
                        fprintf(stderr, "  %s element %lld: got %g, expected %g\n", lfm2_type_name(t),
                                (long long)k, y[k], want);
                }
            }
        }
        CHECK(bad == 0, "dequantize %s: %d elements differ from the spec formula", lfm2_type_name(t), bad);
        free(q);
        free(y);
    }
    /* F16 / BF16 / F32 rows */
    uint16_t hv[256];
    float y[256], f[256];
    for (int i = 0; i < 256; i++) {
        hv[i] = (uint16_t)rnd64();
        if (((hv[i] >> 10) & 31) == 31) hv[i] ^= 0x4000;
        f[i] = gauss();
    }
    lfm2_dequantize_row(LFM2_TYPE_F16, hv, y, 256);
    int bad = 0;
    for (int i = 0; i < 256; i++)
        bad += (double)y[i] != half_value(hv[i]);
    lfm2_dequantize_row(LFM2_TYPE_BF16, hv, y, 256);
    for (int i = 0; i < 256; i++)
        bad += fbits(y[i]) != (uint32_t)hv[i] << 16;
    lfm2_dequantize_row(LFM2_TYPE_F32, f, y, 256);
    bad += memcmp(f, y, sizeof y) != 0;
    CHECK(bad == 0, "F16/BF16/F32 rows: %d mismatches", bad);
}

/* ---- quantize -> dequantize error bounds ---------------------------------------------------- */

static void test_roundtrip_error(void)
{
    /* worst relative RMS error over a row of Gaussian values; limits are ~1.5x what the
     * format's step size gives (4-bit ≈ 1/15 of the range, …) */
    static const struct { enum lfm2_type t; double rms_max; } cases[] = {
        { LFM2_TYPE_F32, 0 }, { LFM2_TYPE_F16, 1e-3 }, { LFM2_TYPE_BF16, 5e-3 },
        { LFM2_TYPE_Q8_0, 0.012 }, { LFM2_TYPE_Q5_0, 0.06 }, { LFM2_TYPE_Q5_1, 0.05 },
        { LFM2_TYPE_Q4_0, 0.12 }, { LFM2_TYPE_Q4_1, 0.10 }, { LFM2_TYPE_Q6_K, 0.025 },
        { LFM2_TYPE_Q5_K, 0.05 }, { LFM2_TYPE_Q4_K, 0.10 },
    };
    enum { N = 256 * 32 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        enum lfm2_type t = cases[c].t;
        for (int dist = 0; dist < 3; dist++) {
            for (int i = 0; i < N; i++) {
                x[i] = gauss() * (dist == 2 ? 30.f : 0.02f);
                if (dist == 1) x[i] += 0.05f;   /* offset: exercises the min of Q4_1/Q5_1/K */
            }
            size_t w = lfm2_quantize_row(t, x, q, N);
            CHECK(w == lfm2_row_bytes(t, N), "%s: wrote %zu bytes, expected %zu", lfm2_type_name(t), w,
                  lfm2_row_bytes(t, N));
            lfm2_dequantize_row(t, q, y, N);
            double se = 0, sx = 0, maxe = 0;
            for (int i = 0; i < N; i++) {
                double e = (double)y[i] - x[i];
                se += e * e;
                sx += (double)x[i] * x[i];
                if (fabs(e) > maxe) maxe = fabs(e);
            }
            double rel = sqrt(se / sx);
            CHECK(rel <= cases[c].rms_max, "%s dist %d: relative RMS error %.4g above %.4g",
                  lfm2_type_name(t), dist, rel, cases[c].rms_max);
            if (t == LFM2_TYPE_F32)
                CHECK(memcmp(x, y, N * sizeof *x) == 0, "F32 round trip is not exact");
        }
        /* a zero row must come back as zeros (no NaN from a 0 scale) */
        memset(x, 0, N * sizeof *x);
        lfm2_quantize_row(t, x, q, N);
        lfm2_dequantize_row(t, q, y, N);
        int nz = 0;
        for (int i = 0; i < N; i++)
            nz += y[i] != 0;
        CHECK(nz == 0, "%s: zero row dequantizes to %d non-zeros", lfm2_type_name(t), nz);
    }
    /* Q8_0: each value within half a step (plus the fp16 rounding of d) of the input */
    for (int i = 0; i < N; i++)
        x[i] = gauss();
    lfm2_quantize_row(LFM2_TYPE_Q8_0, x, q, N);
    lfm2_dequantize_row(LFM2_TYPE_Q8_0, q, y, N);
    int bad = 0;
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        for (int j = 0; j < 32; j++)
            bad += fabsf(y[b * 32 + j] - x[b * 32 + j]) > amax / 127 * 0.5f + amax * 0x1p-11f * 1.01f;
    }
    CHECK(bad == 0, "Q8_0: %d values beyond half a quantization step", bad);
    free(x);
    free(y);
    free(q);
}

/* ---- activation quantizers ------------------------------------------------------------------ */

static void test_activation_quant(void)
{
    enum { N = 256 * 16 };
    float *x = malloc(N * sizeof *x);
    block_q8_0 *a = malloc(N / 32 * sizeof *a);
    block_q8_K *k = malloc(N / 256 * sizeof *k);
    int bad0 = 0, badk = 0;
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < N; i++)
            x[i] = gauss() * (rep % 3 == 0 ? 1e-3f : 1.f);
        if (rep % 4 == 1) {
            /* ties: with amax = 127 the Q8_0 multiplier is exactly 1, so x.5 values must round
             * to even (2.5 → 2), where roundf would give 3 */
            for (int i = 0; i < N; i++)
                x[i] = (float)((int)(gauss() * 40) % 126) + 0.5f;
            for (int b = 0; b < N / 32; b++)
                x[b * 32 + (b % 32)] = (b & 1) ? 127.f : -127.f;
        }
        if (rep % 4 == 2) {
            /* Q8_K ties: a block whose signed max is -127 gives iscale = 1 exactly */
            for (int i = 0; i < N; i++)
                x[i] = (float)((int)(gauss() * 40) % 126) + 0.5f;
            for (int b = 0; b < N / 256; b++)
                x[b * 256 + 7] = -127.f;
        }
        if (rep == 3)
            memset(x, 0, 256 * sizeof *x);   /* an all-zero block */
        lfm2_quantize_row_q8_0(x, a, N);
        lfm2_quantize_row_q8_K(x, k, N);
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            float id = amax != 0 ? 127.f / amax : 0.f;
            bad0 += a[b].d != lfm2_fp32_to_fp16(amax / 127.f);
            for (int j = 0; j < 32; j++)
                bad0 += a[b].qs[j] != (int8_t)lrintf(x[b * 32 + j] * id);
        }
        for (int b = 0; b < N / 256; b++) {
            const float *xb = x + b * 256;
            float m = 0;
            for (int j = 0; j < 256; j++)
                if (fabsf(xb[j]) > fabsf(m))
                    m = xb[j];
            if (m == 0) {
                int nz = k[b].d != 0;
                for (int j = 0; j < 256; j++)
                    nz += k[b].qs[j] != 0;
                for (int j = 0; j < 16; j++)
                    nz += k[b].bsums[j] != 0;
                badk += nz;
                continue;
            }
            float is = -127.f / m;
            badk += fbits(k[b].d) != fbits(1 / is);
            for (int j = 0; j < 256; j++) {
                long v = lrintf(is * xb[j]);
                badk += k[b].qs[j] != (v > 127 ? 127 : v);
            }
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++)
                    s += k[b].qs[g * 16 + j];
                badk += k[b].bsums[g] != s;
            }
        }
    }
    CHECK(bad0 == 0, "q8_0 activation quantizer: %d mismatches with the stated rule", bad0);
    CHECK(badk == 0, "q8_K activation quantizer: %d mismatches with the stated rule", badk);
    /* the tie case in one explicit value */
    float t[32] = { 127.f, 2.5f, -2.5f, 3.5f };
    block_q8_0 b;
    lfm2_quantize_row_q8_0(t, &b, 32);
    CHECK(b.qs[1] == 2 && b.qs[2] == -2 && b.qs[3] == 4, "q8_0 ties: %d %d %d", b.qs[1], b.qs[2], b.qs[3]);
    free(x);
    free(a);
    free(k);
}

/* Q8_1 = the Q8_0 block plus s = fp16(amax/127 · Σq); and the rules for blocks no model
 * should produce (quants.h): a NaN or an infinity gives d = NaN (Q8_1: s = NaN) and zero
 * quants; a largest |x| whose multiplier 127/amax overflows (below ~3.73e-37) gives zeros. */
static void test_activation_rules(void)
{
    enum { N = 256 };
    float x[N];
    block_q8_0 a[N / 32];
    block_q8_1 b1[N / 32];
    block_q8_K kb;
    int bad = 0;
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < N; i++)
            x[i] = gauss() * (rep + 1);
        lfm2_quantize_row_q8_0(x, a, N);
        lfm2_quantize_row_q8_1(x, b1, N);
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                sum += a[b].qs[j];
            }
            bad += b1[b].d != a[b].d || memcmp(b1[b].qs, a[b].qs, 32) != 0;
            bad += b1[b].s != lfm2_fp32_to_fp16(amax / 127.f * (float)sum);
        }
    }
    CHECK(bad == 0, "q8_1 activation quantizer: %d mismatches with the stated rule", bad);

    static const float specials[] = { NAN, INFINITY, -INFINITY };
    for (int si = 0; si < 3; si++) {
        for (int i = 0; i < N; i++)
            x[i] = gauss();
        x[40] = specials[si];   /* Q8_0 block 1, the only Q8_K block */
        lfm2_quantize_row_q8_0(x, a, N);
        lfm2_quantize_row_q8_1(x, b1, N);
        lfm2_quantize_row_q8_K(x, &kb, N);
        int nz = 0;
        for (int j = 0; j < 32; j++)
            nz += a[1].qs[j] != 0 || b1[1].qs[j] != 0;
        for (int j = 0; j < 256; j++)
            nz += kb.qs[j] != 0;
        for (int j = 0; j < 16; j++)
            nz += kb.bsums[j] != 0;
        CHECK(isnan(lfm2_fp16_to_fp32(a[1].d)) && isnan(lfm2_fp16_to_fp32(b1[1].d)) &&
              isnan(lfm2_fp16_to_fp32(b1[1].s)) && isnan(kb.d) && nz == 0,
              "a block holding %g: scales %g %g %g %g, %d nonzero quants", (double)specials[si],
              lfm2_fp16_to_fp32(a[1].d), lfm2_fp16_to_fp32(b1[1].d), lfm2_fp16_to_fp32(b1[1].s), kb.d, nz);
        CHECK(!isnan(lfm2_fp16_to_fp32(a[0].d)) && a[0].d != 0, "the block next to it was touched");
    }
    /* 127/amax overflows just below 127/FLT_MAX: zeros; just above: quantized */
    const float thr = 127.f / FLT_MAX;
    for (int side = 0; side < 2; side++) {
        const float amax = side ? thr * 1.01f : thr * 0.99f;
        for (int i = 0; i < N; i++)
            x[i] = amax * (float)((i % 7) - 3) / 3.0f;
        lfm2_quantize_row_q8_0(x, a, N);
        lfm2_quantize_row_q8_K(x, &kb, N);
        int nz = 0;
        for (int j = 0; j < 32; j++)
            nz += a[0].qs[j] != 0;
        for (int j = 0; j < 256; j++)
            nz += kb.qs[j] != 0;
        CHECK(side ? nz > 0 && kb.d != 0 : nz == 0 && kb.d == 0 && a[0].d == 0,
              "largest |x| %g: %d nonzero quants, Q8_K d %g", (double)amax, nz, kb.d);
    }
}

/* ---- lfm2_quantize: the arguments it refuses (and the bytes it writes, as the rows of
 * lfm2_quantize_row) --------------------------------------------------------------------- */

static void test_quantize_api(void)
{
    enum { ROWS = 3, N = 512 };
    float *x = malloc(sizeof(float) * ROWS * N);
    uint8_t *a = malloc(ROWS * (size_t)N * 4), *b = malloc(ROWS * (size_t)N * 4);
    for (int i = 0; i < ROWS * N; i++)
        x[i] = gauss();
    const enum lfm2_type all[] = { LFM2_TYPE_F32, LFM2_TYPE_F16, LFM2_TYPE_BF16, LFM2_TYPE_Q8_0,
                                   LFM2_TYPE_Q4_0, LFM2_TYPE_Q4_1, LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1,
                                   LFM2_TYPE_Q4_K, LFM2_TYPE_Q5_K, LFM2_TYPE_Q6_K };
    for (size_t t = 0; t < sizeof all / sizeof all[0]; t++) {
        const size_t rb = lfm2_row_bytes(all[t], N);
        memset(a, 0xAA, ROWS * rb);
        for (int r = 0; r < ROWS; r++)
            lfm2_quantize_row(all[t], x + r * N, b + r * rb, N);
        const size_t w = lfm2_quantize(all[t], x, a, ROWS, N);
        CHECK(w == ROWS * rb && memcmp(a, b, w) == 0, "lfm2_quantize %s: %zu bytes",
              lfm2_type_name(all[t]), w);
    }
    lfm2_clear_error();
    CHECK(lfm2_quantize(LFM2_TYPE_Q8_K, x, a, 1, 256) == 0 && strstr(lfm2_last_error(), "Q8_K"),
          "Q8_K is not a weight type: %s", lfm2_last_error());
    CHECK(lfm2_quantize((enum lfm2_type)77, x, a, 1, 256) == 0 && *lfm2_last_error(),
          "unknown type refused");
    lfm2_clear_error();
    CHECK(lfm2_quantize(LFM2_TYPE_Q4_K, x, a, 1, 32) == 0 && strstr(lfm2_last_error(), "256"),
          "row length off the block: %s", lfm2_last_error());
    CHECK(lfm2_quantize(LFM2_TYPE_Q8_0, x, a, 0, 32) == 0, "no rows refused");
    CHECK(lfm2_quantize(LFM2_TYPE_Q8_0, x, a, INT64_MAX / 2, 32) == 0 &&
          strstr(lfm2_last_error(), "overflow"), "size overflow: %s", lfm2_last_error());
    free(x);
    free(a);
    free(b);
}

/* ---- fixture files: the F32 weights requantized must give the stored Q8_0/Q4_0/F16 bytes ---- */

static void requant_fixture(const char *dir, const char *f32, const char *other)
{
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/text/%s", dir, f32);
    snprintf(p2, sizeof p2, "%s/text/%s", dir, other);
    lfm2_gguf *a = lfm2_gguf_open(p1, true), *b = lfm2_gguf_open(p2, true);
    CHECK(a && b, "open fixtures: %s", lfm2_last_error());
    if (!a || !b) {
        lfm2_gguf_close(a);
        lfm2_gguf_close(b);
        return;
    }
    int n_req = 0, n_bad = 0;
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(a); i++) {
        const lfm2_tensor *ta = lfm2_gguf_tensor(a, i), *tb = lfm2_gguf_find_tensor(b, ta->name);
        CHECK(tb != NULL, "%s: tensor %s missing", other, ta->name);
        if (!tb || tb->type == LFM2_TYPE_F32)
            continue;
        /* through the public entry point, row by row as a GGUF writer calls it */
        const int64_t n_rows = lfm2_tensor_nelements(ta) / ta->ne[0];
        uint8_t *q = malloc(tb->nbytes);
        size_t w = lfm2_quantize(tb->type, ta->data, q, n_rows, ta->ne[0]);
        n_req++;
        if (w != tb->nbytes || memcmp(q, tb->data, w) != 0)
            n_bad++;
        free(q);
    }
    CHECK(n_req > 0 && n_bad == 0, "%s: %d of %d tensors requantized from %s differ", other, n_bad, n_req, f32);
    lfm2_gguf_close(a);
    lfm2_gguf_close(b);
}

/* The Q4_K/Q6_K fixture was made by another quantizer: its dequantized weights must still be
 * within the formats' step size of the F32 weights. */
static void kquant_fixture_close(const char *dir)
{
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s/text/small-f32/lfm2-small-f32.gguf", dir);
    snprintf(p2, sizeof p2, "%s/text/small-q4_k_m/lfm2-small-q4_k_m.gguf", dir);
    lfm2_gguf *a = lfm2_gguf_open(p1, false), *b = lfm2_gguf_open(p2, true);
    CHECK(a && b, "open fixtures: %s", lfm2_last_error());
    if (!a || !b) {
        lfm2_gguf_close(a);
        lfm2_gguf_close(b);
        return;
    }
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(b); i++) {
        const lfm2_tensor *tb = lfm2_gguf_tensor(b, i), *ta = lfm2_gguf_find_tensor(a, tb->name);
        if (!ta || tb->type == LFM2_TYPE_F32)
            continue;
        int64_t n = lfm2_tensor_nelements(tb);
        float *x = malloc((size_t)n * sizeof *x);
        lfm2_dequantize_row(tb->type, tb->data, x, n);
        const float *ref = ta->data;
        double maxe = 0, maxa = 0;
        for (int64_t k = 0; k < n; k++) {
            maxe = fmax(maxe, fabs((double)x[k] - ref[k]));
            maxa = fmax(maxa, fabs((double)ref[k]));
        }
        /* a step is at most range/15 (Q4_K) or range/63 (Q6_K); allow one full step */
        double lim = tb->type == LFM2_TYPE_Q6_K ? 2 * maxa / 63 : 2 * maxa / 15;
        CHECK(maxe <= lim, "%s (%s): max error %.4g above %.4g", tb->name, lfm2_type_name(tb->type), maxe, lim);
        free(x);
    }
    lfm2_gguf_close(a);
    lfm2_gguf_close(b);
}

int main(void)
{
    const char *dir = getenv("LFM2_TEST_DATA");
    test_half();
    test_bf16();
    test_dequant();
    test_roundtrip_error();
    test_activation_quant();
    test_activation_rules();
    test_quantize_api();
    if (dir) {
        requant_fixture(dir, "tiny-f32/lfm2-tiny-f32.gguf", "tiny-q8_0/lfm2-tiny-q8_0.gguf");
        requant_fixture(dir, "tiny-f32/lfm2-tiny-f32.gguf", "tiny-q4_0/lfm2-tiny-q4_0.gguf");
        requant_fixture(dir, "tiny-f32/lfm2-tiny-f32.gguf", "tiny-f16/lfm2-tiny-f16.gguf");
        requant_fixture(dir, "small-f32/lfm2-small-f32.gguf", "small-q8_0/lfm2-small-q8_0.gguf");
        kquant_fixture_close(dir);
    } else {
        fprintf(stderr, "FAIL: LFM2_TEST_DATA is not set\n");
        lfm2_test_failures++;
    }
    if (lfm2_test_failures) {
        fprintf(stderr, "test-quants: %d failures\n", lfm2_test_failures);
        return 1;
    }
    printf("test-quants: all passed\n");
    return 0;
}
