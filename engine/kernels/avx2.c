/* avx2.c — AVX2 + FMA + F16C kernels (no VNNI: byte products go through VPMADDUBSW, pairs
 * summed by VPMADDWD). The path for x86-64 CPUs without the AVX-512 feature set the AVX-512
 * file needs; same activation formats and per-block float scaling as the scalar path.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))
#define ROWS_LOOP(NR) for (int r = 0; r < (NR); r++)

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE int hsum8i(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

INLINE float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* ================================ activation formats ================================ */

/* 32 floats → 32 int8 (x·id rounded to nearest even); returns the sum of the quants */
INLINE int quant32(const float *x, float id, int8_t *out)
{
    const __m256 m = _mm256_set1_ps(id);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const int sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out, i0);
    return sum;
}

INLINE float amax32(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
    return hmax8(m);
}

static void act_q8_0(const float *x, void *vy, int64_t k)
{
    block_q8_0 *y = vy;
    for (int64_t b = 0; b < k / QK8_0; b++, x += QK8_0) {
        const float amax = amax32(x);
        y[b].d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        quant32(x, amax != 0.0f ? 127.f / amax : 0.0f, y[b].qs);
    }
}

static void act_q8_1(const float *x, void *vy, int64_t k)
{
    block_q8_1 *y = vy;
    for (int64_t b = 0; b < k / QK8_1; b++, x += QK8_1) {
        const float amax = amax32(x);
        const float d = amax / 127.f;
        const int sum = quant32(x, amax != 0.0f ? 127.f / amax : 0.0f, y[b].qs);
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[b].s = _cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
    }
}

static void act_q8_K(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        float amax = 0;
        for (int j = 0; j < 8; j++)
            amax = fmaxf(amax, amax32(x + 32 * j));
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float max = amax;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 m = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K / 16; j++) {
            __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * j), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16 * j + 8), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            i0 = _mm256_min_epi32(i0, lim);
            i1 = _mm256_min_epi32(i1, lim);
            y[b].bsums[j] = (int16_t)hsum8i(_mm256_add_epi32(i0, i1));
            const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8);
            const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * j), p8);
        }
        y[b].d = 1 / iscale;
    }
}

static void act_f16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < k; i++)
        y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

static void act_bf16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    int64_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i absm = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= k; i += 8) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
        const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias),
                                                             _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), 16);
        const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
        const __m256i v = _mm256_blendv_epi8(r, q, nan);
        const __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storeu_si128((__m128i *)(y + i), p);
    }
    for (; i < k; i++)
        y[i] = lfm2_fp32_to_bf16(x[i]);
}

/* ================================ GEMV tiles ================================ */

/* Σ over 4-byte groups of (signed w)·(signed x), as 8 int32 lanes */
INLINE __m256i dot_i8(__m256i w, __m256i x)
{
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* (unsigned u ≤ 31)·(signed x), as 8 int32 lanes */
INLINE __m256i dot_u8(__m256i u, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

INLINE __m256i unpack_nib32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits → 32 bytes of 0x10 where the bit is set */
INLINE __m256i bits_to_0x10(const uint8_t *qh)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

INLINE void dot_q8_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q8_0 *wb = (const block_q8_0 *)(w + r * nb1) + b;
            const __m256i p = dot_i8(_mm256_loadu_si256((const __m256i *)wb->qs), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

INLINE void dot_q4_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx8 = dot_u8(eight, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q4_0 *wb = (const block_q4_0 *)(w + r * nb1) + b;
            const __m256i p = _mm256_sub_epi32(dot_u8(unpack_nib32(wb->qs), xq), sx8);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

INLINE void dot_q4_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_1 *x, float *out)
{
    __m256 acc[4];
    float summs[4];
    ROWS_LOOP(NR) { acc[r] = _mm256_setzero_ps(); summs[r] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d), sx = h2f(x[b].s);
        ROWS_LOOP(NR) {
            const block_q4_1 *wb = (const block_q4_1 *)(w + r * nb1) + b;
            const __m256i p = dot_u8(unpack_nib32(wb->qs), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

INLINE void dot_q5_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx16 = dot_u8(sixteen, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q5_0 *wb = (const block_q5_0 *)(w + r * nb1) + b;
            const __m256i q = _mm256_or_si256(unpack_nib32(wb->qs), bits_to_0x10(wb->qh));
            const __m256i p = _mm256_sub_epi32(dot_u8(q, xq), sx16);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

INLINE void dot_q5_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_1 *x, float *out)
{
    __m256 acc[4];
    float summs[4];
    ROWS_LOOP(NR) { acc[r] = _mm256_setzero_ps(); summs[r] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d), sx = h2f(x[b].s);
        ROWS_LOOP(NR) {
            const block_q5_1 *wb = (const block_q5_1 *)(w + r * nb1) + b;
            const __m256i q = _mm256_or_si256(unpack_nib32(wb->qs), bits_to_0x10(wb->qh));
            const __m256i p = dot_u8(q, xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

INLINE void k4_scales(const uint8_t *q, uint32_t sc[2], uint32_t mn[2])
{
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    sc[0] = u0 & 0x3f3f3f3fu;
    mn[0] = u1 & 0x3f3f3f3fu;
    sc[1] = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    mn[1] = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
}

INLINE int k4_min_dot(const uint8_t *mn8, const int16_t *bsums)
{
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn8));
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i p = _mm_madd_epi16(m16, pairs);
    __m128i s = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Q4_K / Q5_K: per 64 elements, low nibbles pair with q8[0..31] and high with q8[32..63]; each
 * 32-element half is scaled by its 6-bit scale inside VPMADDWD. */
INLINE void dot_q45_K_n(int NR, int is5, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const size_t bsz = is5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        ROWS_LOOP(NR) {
            const uint8_t *blk = w + r * nb1 + (size_t)b * bsz;
            const lfm2_fp16 *dd = (const lfm2_fp16 *)blk;   /* d, dmin */
            const uint8_t *scales = blk + 4;
            const uint8_t *qh = is5 ? blk + 16 : NULL;
            const uint8_t *qs = is5 ? blk + 48 : blk + 16;
            uint32_t sc[2], mn[2];
            k4_scales(scales, sc, mn);
            const uint8_t *sc8 = (const uint8_t *)sc;
            __m256i acc = _mm256_setzero_si256();
            __m256i hb = is5 ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (is5) {
                    const __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * j))), b1 = _mm256_set1_epi8((char)(2 << (2 * j)));
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b0), b0), _mm256_set1_epi8(16)));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b1), b1), _mm256_set1_epi8(16)));
                }
                const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
                const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc8[2 * j])));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc8[2 * j + 1])));
            }
            const int isum = hsum8i(acc);
            const int msum = k4_min_dot((const uint8_t *)mn, x[b].bsums);
            const float d = x[b].d * h2f(dd[0]), dmin = x[b].d * h2f(dd[1]);
            sum[r] += d * (float)isum - dmin * (float)msum;
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
}

INLINE void dot_q4_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    dot_q45_K_n(NR, 0, nb, w, nb1, x, out);
}

INLINE void dot_q5_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    dot_q45_K_n(NR, 1, nb, w, nb1, x, out);
}

INLINE void dot_q6_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        const __m256i bs = _mm256_loadu_si256((const __m256i *)x[b].bsums);
        ROWS_LOOP(NR) {
            const block_q6_K *wb = (const block_q6_K *)(w + r * nb1) + b;
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
            const int corr = 32 * hsum8i(_mm256_madd_epi16(sc16, bs));
            __m256i acc = _mm256_setzero_si256();
            for (int h = 0; h < 2; h++) {
                const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
                const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
                    _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)),
                };
                for (int g = 0; g < 4; g++) {
                    /* elements 128h + 32g …: sub-blocks 8h + 2g (first 16) and 8h + 2g + 1 */
                    const int s0 = wb->scales[8 * h + 2 * g], s1 = wb->scales[8 * h + 2 * g + 1];
                    const __m256i sv = _mm256_setr_epi16(s0, s0, s0, s0, s0, s0, s0, s0, s1, s1, s1, s1, s1, s1, s1, s1);
                    const __m256i p = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256((const __m256i *)(q8 + 128 * h + 32 * g)));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, sv));
                }
            }
            sum[r] += (x[b].d * h2f(wb->d)) * (float)(hsum8i(acc) - corr);
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
}

INLINE void dot_f16_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const uint16_t *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        ROWS_LOOP(NR) {
            const uint16_t *wr = (const uint16_t *)(w + r * nb1);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr + i))), xv, acc[r]);
        }
    }
    ROWS_LOOP(NR) {
        float s = hsum8(acc[r]);
        const uint16_t *wr = (const uint16_t *)(w + r * nb1);
        for (int64_t j = i; j < k; j++)
            s += h2f(wr[j]) * h2f(x[j]);
        out[r] = s;
    }
}

INLINE void dot_bf16_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const uint16_t *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 xv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i))), 16));
        ROWS_LOOP(NR) {
            const uint16_t *wr = (const uint16_t *)(w + r * nb1);
            const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(wr + i))), 16));
            acc[r] = _mm256_fmadd_ps(wv, xv, acc[r]);
        }
    }
    ROWS_LOOP(NR) {
        float s = hsum8(acc[r]);
        const uint16_t *wr = (const uint16_t *)(w + r * nb1);
        for (int64_t j = i; j < k; j++)
            s += lfm2_bf16_to_fp32(wr[j]) * lfm2_bf16_to_fp32(x[j]);
        out[r] = s;
    }
}

INLINE void dot_f32_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const float *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        ROWS_LOOP(NR) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(w + r * nb1) + i), xv, acc[r]);
    }
    ROWS_LOOP(NR) {
        float s = hsum8(acc[r]);
        const float *wr = (const float *)(w + r * nb1);
        for (int64_t j = i; j < k; j++)
            s += wr[j] * x[j];
        out[r] = s;
    }
}

INLINE void prefetch_rows(const uint8_t *w, size_t nb1, int64_t r, int64_t nr)
{
    const uint8_t *p = w + (size_t)r * nb1, *end = p + (size_t)nr * nb1;
    for (; p < end; p += 64)
        _mm_prefetch((const char *)p, _MM_HINT_T1);
}

#define GEMV_TILE(name, dotfn, XT, KDIV)                                                         \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        const int64_t kk = k / (KDIV);                                                           \
        int64_t pf = (int64_t)((8192 + nb1 - 1) / nb1);                                          \
        pf = (pf + 3) & ~(int64_t)3;                                                             \
        int64_t r = 0;                                                                           \
        for (; r + 4 <= nr; r += 4) {                                                            \
            const uint8_t *wr = (const uint8_t *)w + r * nb1;                                    \
            if (r + pf + 4 <= nr)                                                                \
                prefetch_rows(w, nb1, r + pf, 4);                                                \
            for (int64_t t = 0; t < nt; t++) {                                                   \
                float o[4];                                                                      \
                dotfn(4, kk, wr, nb1, (const XT *)((const uint8_t *)x + t * xs), o);             \
                memcpy(y + t * ldy + r, o, sizeof o);                                            \
            }                                                                                    \
        }                                                                                        \
        for (; r < nr; r++) {                                                                    \
            const uint8_t *wr = (const uint8_t *)w + r * nb1;                                    \
            for (int64_t t = 0; t < nt; t++)                                                     \
                dotfn(1, kk, wr, nb1, (const XT *)((const uint8_t *)x + t * xs), y + t * ldy + r); \
        }                                                                                        \
    }

GEMV_TILE(tile_q8_0, dot_q8_0_n, block_q8_0, QK8_0)
GEMV_TILE(tile_q4_0, dot_q4_0_n, block_q8_0, QK4_0)
GEMV_TILE(tile_q4_1, dot_q4_1_n, block_q8_1, QK4_1)
GEMV_TILE(tile_q5_0, dot_q5_0_n, block_q8_0, QK5_0)
GEMV_TILE(tile_q5_1, dot_q5_1_n, block_q8_1, QK5_1)
GEMV_TILE(tile_q4_K, dot_q4_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_q5_K, dot_q5_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_q6_K, dot_q6_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_f16, dot_f16_n, uint16_t, 1)
GEMV_TILE(tile_bf16, dot_bf16_n, uint16_t, 1)
GEMV_TILE(tile_f32, dot_f32_n, float, 1)

/* ================================ float helpers ================================ */

static float dot_f32(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_f32(float *y, float a, const float *x, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void scale_f32(float *y, float s, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vs));
    for (; i < n; i++)
        y[i] *= s;
}

#define SIMD_BYTES 32
#define SIMD_SUFFIX _avx2
#include "simd-impl.h"

void lfm2_kernels_init_avx2(struct lfm2_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->path = LFM2_CPU_AVX2;
    k->act[LFM2_ACT_Q8_0] = act_q8_0;
    k->act[LFM2_ACT_Q8_1] = act_q8_1;
    k->act[LFM2_ACT_Q8_K] = act_q8_K;
    k->act[LFM2_ACT_F16] = act_f16;
    k->act[LFM2_ACT_BF16] = act_bf16;
    k->tile[LFM2_TYPE_Q8_0] = tile_q8_0;
    k->tile[LFM2_TYPE_Q4_0] = tile_q4_0;
    k->tile[LFM2_TYPE_Q4_1] = tile_q4_1;
    k->tile[LFM2_TYPE_Q5_0] = tile_q5_0;
    k->tile[LFM2_TYPE_Q5_1] = tile_q5_1;
    k->tile[LFM2_TYPE_Q4_K] = tile_q4_K;
    k->tile[LFM2_TYPE_Q5_K] = tile_q5_K;
    k->tile[LFM2_TYPE_Q6_K] = tile_q6_K;
    k->tile[LFM2_TYPE_F16] = tile_f16;
    k->tile[LFM2_TYPE_BF16] = tile_bf16;
    k->tile[LFM2_TYPE_F32] = tile_f32;
    k->silu_mul = silu_mul_avx2;
    k->sumsq = sumsq_avx2;
    k->exp_sub_sum = exp_sub_sum_avx2;
    k->attn_block = attn_block_avx2;
    k->attn_scratch = attn_scratch_floats_avx2;
    k->dot_f32 = dot_f32;
    k->axpy_f32 = axpy_f32;
    k->scale_f32 = scale_f32;
    lfm2_x16_init_avx2(k);
}
