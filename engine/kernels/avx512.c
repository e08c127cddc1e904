/* avx512.c — AVX-512 (F/BW/VL/DQ + VNNI) kernels; BF16 dot products when the CPU has
 * AVX512_BF16. Compiled with -mavx512* and only called after dispatch.c checked cpuid.
 *
 * Small batches (decode) use GEMV tiles: up to 4 weight rows share each activation load, one
 * ggml block per 256-bit VPDPBUSD, scaled per block in float like ggml_vec_dot_*.
 * Large batches use the GEMM in avx512-gemm.h (tokens in the vector lanes).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ================================ activation formats ================================ */

static void act_q8_0(const float *x, void *vy, int64_t k)
{
    block_q8_0 *y = vy;
    for (int64_t b = 0; b < k / QK8_0; b++, x += QK8_0) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[b].d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        const __m512 m = _mm512_set1_ps(id);
        const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

static void act_q8_1(const float *x, void *vy, int64_t k)
{
    block_q8_1 *y = vy;
    for (int64_t b = 0; b < k / QK8_1; b++, x += QK8_1) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m512 m = _mm512_set1_ps(id);
        const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[b].s = _cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtsepi32_epi8(i1));
    }
}

/* ggml's quantize_row_q8_K: scale from the first element of largest magnitude (signed). */
static void act_q8_K(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        __m512 am = _mm512_setzero_ps();
        for (int j = 0; j < 16; j++)
            am = _mm512_max_ps(am, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)));
        const float amax = _mm512_reduce_max_ps(am);
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float max = amax;
        const __m512 va = _mm512_set1_ps(amax);
        for (int j = 0; j < 16; j++) {
            const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)), va, _CMP_EQ_OQ);
            if (m) {
                max = x[16 * j + __builtin_ctz(m)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        const __m512i lim = _mm512_set1_epi32(127);
        for (int j = 0; j < 16; j++) {
            __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), vs),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_epi32(q, lim);
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * j), _mm512_cvtsepi32_epi8(q));
            y[b].bsums[j] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[b].d = 1 / iscale;
    }
}

static void act_f16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < k; i++)
        y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

/* Round to nearest even on the bit pattern, NaN made quiet — lfm2_fp32_to_bf16 exactly
 * (VCVTNEPS2BF16 would flush denormals). */
static void act_bf16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    int64_t i = 0;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (; i + 16 <= k; i += 16) {
        const __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absm), inf);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias),
                                                       _mm512_and_si512(_mm512_srli_epi32(u, 16), one)), 16);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < k; i++)
        y[i] = lfm2_fp32_to_bf16(x[i]);
}

/* ================================ GEMV tiles ================================ */

/* Each dot_<type>_<NR> computes NR weight rows (stride nb1) against one activation row.
 * NR is a compile-time constant (1 or 4) so the accumulators stay in registers. */

#define ROWS_LOOP(NR) for (int r = 0; r < (NR); r++)

/* signed·signed bytes with VNNI: |w| · (x with w's sign) */
INLINE __m256i dot_i8(__m256i w, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
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

INLINE __m256i unpack_nib32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* Q4_0: unsigned nibbles · x − 8·Σx, the latter computed once per block for all rows */
INLINE void dot_q4_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q4_0 *wb = (const block_q4_0 *)(w + r * nb1) + b;
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack_nib32(wb->qs), xq);
            p = _mm256_sub_epi32(p, sx8);
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
            const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack_nib32(wb->qs), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

/* 5-bit: the high bit of element j is bit j of qh (j = 0..31) */
INLINE __m256i unpack_q5(const uint8_t *qs, const uint8_t *qh)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i hb = _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10));
    return _mm256_or_si256(unpack_nib32(qs), hb);
}

INLINE void dot_q5_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx16 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), sixteen, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q5_0 *wb = (const block_q5_0 *)(w + r * nb1) + b;
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack_q5(wb->qs, wb->qh), xq);
            p = _mm256_sub_epi32(p, sx16);
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
            const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack_q5(wb->qs, wb->qh), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

/* K-quant 6-bit scales and mins: bytes 0..7 of sc and mn (same as lfm2_get_scale_min_k4) */
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

/* Scale vector for maddubs+madd over a zmm of 64 elements = sub-blocks (2j, 2j+1) of 32:
 * int16 lanes 0..15 take sc[2j], 16..31 take sc[2j+1]. */
INLINE __m512i k4_scale_pair(const uint8_t *sc8, int j)
{
    const __m256i lo = _mm256_set1_epi16(sc8[2 * j]), hi = _mm256_set1_epi16(sc8[2 * j + 1]);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Σ_j m_j · (bsum_2j + bsum_2j+1): the min correction of Q4_K/Q5_K */
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

INLINE void dot_q4_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        ROWS_LOOP(NR) {
            const block_q4_K *wb = (const block_q4_K *)(w + r * nb1) + b;
            uint32_t sc[2], mn[2];
            k4_scales(wb->scales, sc, mn);
            const uint8_t *sc8 = (const uint8_t *)sc;
            __m512i acc = _mm512_setzero_si512();
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * j));
                const __m512i q4 = _mm512_and_si512(
                    _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
                const __m512i p16 = _mm512_maddubs_epi16(q4, _mm512_loadu_si512(q8 + 64 * j));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, k4_scale_pair(sc8, j)));
            }
            const int isum = _mm512_reduce_add_epi32(acc);
            const int msum = k4_min_dot((const uint8_t *)mn, x[b].bsums);
            const float d = x[b].d * h2f(wb->d), dmin = x[b].d * h2f(wb->dmin);
            sum[r] += d * (float)isum - dmin * (float)msum;
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
}

INLINE void dot_q5_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        ROWS_LOOP(NR) {
            const block_q5_K *wb = (const block_q5_K *)(w + r * nb1) + b;
            uint32_t sc[2], mn[2];
            k4_scales(wb->scales, sc, mn);
            const uint8_t *sc8 = (const uint8_t *)sc;
            const __m256i qh = _mm256_loadu_si256((const __m256i *)wb->qh);
            __m512i acc = _mm512_setzero_si512();
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * j));
                __m512i q5 = _mm512_and_si512(
                    _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
                /* high bits: bit 2j of qh[l] for the low half, bit 2j+1 for the high half */
                const __mmask32 h0 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * j))));
                const __mmask32 h1 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(2 << (2 * j))));
                q5 = _mm512_or_si512(q5, _mm512_maskz_mov_epi8(((__mmask64)h1 << 32) | h0, _mm512_set1_epi8(16)));
                const __m512i p16 = _mm512_maddubs_epi16(q5, _mm512_loadu_si512(q8 + 64 * j));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, k4_scale_pair(sc8, j)));
            }
            const int isum = _mm512_reduce_add_epi32(acc);
            const int msum = k4_min_dot((const uint8_t *)mn, x[b].bsums);
            const float d = x[b].d * h2f(wb->d), dmin = x[b].d * h2f(wb->dmin);
            sum[r] += d * (float)isum - dmin * (float)msum;
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
}

/* Q6_K: q6 (0..63) · q8 with maddubs, scaled per 16 by madd; −32·Σ sc·bsum fixes the offset. */
INLINE void dot_q6_K_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x, float *out)
{
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    /* int16 lane → scale index within a 64-element group: 16 elements = 8 pair lanes */
    const __m512i sidx = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                          1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        const __m256i bs = _mm256_loadu_si256((const __m256i *)x[b].bsums);
        ROWS_LOOP(NR) {
            const block_q6_K *wb = (const block_q6_K *)(w + r * nb1) + b;
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
            /* offset correction: 32 · Σ_j sc_j · bsum_j */
            const __m256i cm = _mm256_madd_epi16(sc16, bs);
            __m128i c4 = _mm_add_epi32(_mm256_castsi256_si128(cm), _mm256_extracti128_si256(cm, 1));
            c4 = _mm_add_epi32(c4, _mm_unpackhi_epi64(c4, c4));
            c4 = _mm_add_epi32(c4, _mm_shuffle_epi32(c4, 1));
            const int corr = 32 * _mm_cvtsi128_si32(c4);
            const __m512i scz = _mm512_castsi256_si512(sc16);
            __m512i acc = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                const __m512i ql = _mm512_loadu_si512(wb->ql + 64 * h);
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
                const __m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                const __m512i h23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(qh, 4)), _mm256_srli_epi16(qh, 6), 1);
                const __m512i a = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(h01, m3), 4));
                const __m512i c = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                  _mm512_slli_epi16(_mm512_and_si512(h23, m3), 4));
                /* elements 0..63 of this half use scales 8h+0..3, 64..127 use 8h+4..7 */
                const __m512i ia = _mm512_add_epi16(sidx, _mm512_set1_epi16((short)(8 * h)));
                const __m512i ic = _mm512_add_epi16(sidx, _mm512_set1_epi16((short)(8 * h + 4)));
                const __m512i pa = _mm512_maddubs_epi16(a, _mm512_loadu_si512(q8 + 128 * h));
                const __m512i pc = _mm512_maddubs_epi16(c, _mm512_loadu_si512(q8 + 128 * h + 64));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(pa, _mm512_permutexvar_epi16(ia, scz)));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(pc, _mm512_permutexvar_epi16(ic, scz)));
            }
            const int isum = _mm512_reduce_add_epi32(acc) - corr;
            sum[r] += (x[b].d * h2f(wb->d)) * (float)isum;
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
}

INLINE __m512 bf16_lo(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
INLINE __m512 bf16_hi(__m512i v) { return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u))); }

/* BF16 without AVX512_BF16: widen by shifting and FMA (pairs split into even/odd lanes). */
INLINE void dot_bf16_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const uint16_t *x, float *out)
{
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        const __m512i xv = _mm512_loadu_si512(x + i);
        const __m512 x0 = bf16_lo(xv), x1 = bf16_hi(xv);
        ROWS_LOOP(NR) {
            const __m512i wv = _mm512_loadu_si512((const uint16_t *)(w + r * nb1) + i);
            acc[r] = _mm512_fmadd_ps(bf16_lo(wv), x0, acc[r]);
            acc[r] = _mm512_fmadd_ps(bf16_hi(wv), x1, acc[r]);
        }
    }
    ROWS_LOOP(NR) {
        float s = _mm512_reduce_add_ps(acc[r]);
        const uint16_t *wr = (const uint16_t *)(w + r * nb1);
        for (int64_t j = i; j < k; j++)
            s += lfm2_bf16_to_fp32(wr[j]) * lfm2_bf16_to_fp32(x[j]);
        out[r] = s;
    }
}

INLINE void dot_bf16dp_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const uint16_t *x, float *out)
{
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + i);
        ROWS_LOOP(NR) {
            const __m512bh wv = (__m512bh)_mm512_loadu_si512((const uint16_t *)(w + r * nb1) + i);
            acc[r] = _mm512_dpbf16_ps(acc[r], wv, xv);
        }
    }
    ROWS_LOOP(NR) {
        float s = _mm512_reduce_add_ps(acc[r]);
        const uint16_t *wr = (const uint16_t *)(w + r * nb1);
        for (int64_t j = i; j < k; j++)
            s += lfm2_bf16_to_fp32(wr[j]) * lfm2_bf16_to_fp32(x[j]);
        out[r] = s;
    }
}

INLINE void dot_f32_n(int NR, int64_t k, const uint8_t *w, size_t nb1, const float *x, float *out)
{
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const __m512 xv = _mm512_loadu_ps(x + i);
        ROWS_LOOP(NR) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps((const float *)(w + r * nb1) + i), xv, acc[r]);
    }
    if (i < k) {
        const __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        ROWS_LOOP(NR) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, (const float *)(w + r * nb1) + i), xv, acc[r]);
    }
    ROWS_LOOP(NR) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* ---- Q4_0 / Q8_0 GEMV, two blocks per zmm (VBMI) ----
 * The activation row is first rearranged into pairs of blocks: 64 quant bytes, the two
 * scales spread over 8 lanes each, and the offset correction (−8·Σx for Q4_0 nibbles,
 * −128·Σx for Q8_0 weights made unsigned). One masked load then brings two weight blocks,
 * VPERMB/VPMULTISHIFTQB unpack them and VPERMW+VCVTPH2PS spread their scales, so a pair costs
 * about ten instructions for 64 MACs, and the per-block float scaling is kept exact. */

struct xpair {
    __m512i q;      /* qs of blocks 2p and 2p+1 */
    __m512 d;       /* d_x of block 2p in lanes 0..7, of 2p+1 in lanes 8..15 */
    __m512i corr;   /* −c·(sum of each lane's 4 x bytes) */
};

#define MAX_PAIRS 192   /* k ≤ 12288 (LFM2 2.6B: n_ff 10752) */

static void prep_pairs(const block_q8_0 *x, int64_t np, int c, struct xpair *xp)
{
    const __m512i cm = _mm512_set1_epi8((char)c);
    for (int64_t p = 0; p < np; p++) {
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)x[2 * p].qs);
        const __m256i q1 = _mm256_loadu_si256((const __m256i *)x[2 * p + 1].qs);
        xp[p].q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        xp[p].d = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(h2f(x[2 * p].d))),
                                     _mm256_set1_ps(h2f(x[2 * p + 1].d)), 1);
        xp[p].corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), cm, xp[p].q));
    }
}

/* prefetch distance for a row stream, in rows (a multiple of 4, about 8 KiB ahead); into L2:
 * the L1 prefetchers take it from there, and L1 misses buffers stay free for the loads */
INLINE int64_t pf_rows(size_t nb1)
{
    int64_t r = (int64_t)((8192 + nb1 - 1) / nb1);
    return (r + 3) & ~(int64_t)3;
}

INLINE void prefetch_rows(const uint8_t *w, size_t nb1, int64_t r, int64_t nr)
{
    const uint8_t *p = w + (size_t)r * nb1, *end = p + (size_t)nr * nb1;
    for (; p < end; p += 64)
        _mm_prefetch((const char *)p, _MM_HINT_T1);
}

INLINE void gemv2_q4_0(int NR, int64_t np, const uint8_t *w, size_t nb1, const struct xpair *xp, float *out)
{
    /* bytes 2..17 (block 2p quants) twice, then 20..35 (block 2p+1) twice */
    const __m512i perm = _mm512_set_epi8(
        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,
        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    /* low nibbles in the first copy of each block, high nibbles in the second */
    const __m512i shift = _mm512_set_epi8(
        60, 52, 44, 36, 28, 20, 12, 4, 60, 52, 44, 36, 28, 20, 12, 4,
        56, 48, 40, 32, 24, 16, 8, 0, 56, 48, 40, 32, 24, 16, 8, 0,
        60, 52, 44, 36, 28, 20, 12, 4, 60, 52, 44, 36, 28, 20, 12, 4,
        56, 48, 40, 32, 24, 16, 8, 0, 56, 48, 40, 32, 24, 16, 8, 0);
    const __m512i sidx = _mm512_set_epi16(9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                          9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        const __m512i xq = xp[p].q, xc = xp[p].corr;
        const __m512 xd = xp[p].d;
        ROWS_LOOP(NR) {
            const __m512i l = _mm512_maskz_loadu_epi8(0xFFFFFFFFFull, w + r * nb1 + (size_t)p * 36);
            const __m512i nib = _mm512_and_si512(_mm512_multishift_epi64_epi8(shift, _mm512_permutexvar_epi8(perm, l)), m4);
            const __m512 sc = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(sidx, l)));
            const __m512i ip = _mm512_dpbusd_epi32(xc, nib, xq);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ip), _mm512_mul_ps(sc, xd), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = _mm512_reduce_add_ps(acc[r]);
}

INLINE void gemv2_q8_0(int NR, int64_t np, const uint8_t *w, size_t nb1, const struct xpair *xp, float *out)
{
    /* bytes 2..33 of the first 64, then 36..63 and bytes 0..3 of the next 4 (index 64+) */
    const __m512i perm = _mm512_set_epi8(
        67, 66, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52,
        51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36,
        33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    const __m512i sidx = _mm512_set_epi16(17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17,
                                          17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        const __m512i xq = xp[p].q, xc = xp[p].corr;
        const __m512 xd = xp[p].d;
        ROWS_LOOP(NR) {
            const uint8_t *b = w + r * nb1 + (size_t)p * 68;
            const __m512i l0 = _mm512_loadu_si512(b);
            const __m512i l1 = _mm512_maskz_loadu_epi8(0xF, b + 64);
            const __m512i wu = _mm512_xor_si512(_mm512_permutex2var_epi8(l0, perm, l1), bias);
            const __m512 sc = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(sidx, l0)));
            const __m512i ip = _mm512_dpbusd_epi32(xc, wu, xq);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ip), _mm512_mul_ps(sc, xd), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* Q4_0 in place, three blocks (54 bytes) per zmm. Block i of a triple sits at bytes
 * 18i..18i+17 (scale, then 16 bytes of nibble pairs). The activations are laid out to match:
 * xa[j] / xb[j] hold the x that pairs with the low / high nibble of raw byte j (0 under the
 * scale bytes), so the weights need only an AND and a shift; dword lane L (bytes 4L..4L+3)
 * belongs to block 0 for L ≤ 4, block 1 for 5..8, block 2 for 9..13. */
struct xtriple {
    __m512i xa, xb;
    __m512 d;        /* d_x of the lane's block (0 for lanes of no block) */
    __m512i corr;    /* −8·Σ(xa + xb) over the lane's 4 bytes: the nibbles' −8 offset */
};

#define MAX_TRIPLES 128   /* k ≤ 12288 */

static int64_t prep_triples(const block_q8_0 *x, int64_t nb, struct xtriple *xt)
{
    const int64_t n3 = (nb + 2) / 3;
    const __m512i c8 = _mm512_set1_epi8(8);
    for (int64_t t = 0; t < n3; t++) {
        uint8_t a[64] __attribute__((aligned(64))) = { 0 }, b[64] __attribute__((aligned(64))) = { 0 };
        float d[16] __attribute__((aligned(64))) = { 0 };
        for (int i = 0; i < 3 && 3 * t + i < nb; i++) {
            const block_q8_0 *blk = &x[3 * t + i];
            memcpy(a + 18 * i + 2, blk->qs, 16);
            memcpy(b + 18 * i + 2, blk->qs + 16, 16);
            static const int lane0[3] = { 0, 5, 9 }, lane1[3] = { 4, 8, 13 };
            for (int l = lane0[i]; l <= lane1[i]; l++)
                d[l] = h2f(blk->d);
        }
        xt[t].xa = _mm512_load_si512(a);
        xt[t].xb = _mm512_load_si512(b);
        xt[t].d = _mm512_load_ps(d);
        xt[t].corr = _mm512_sub_epi32(_mm512_setzero_si512(),
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c8, xt[t].xa), c8, xt[t].xb));
    }
    return n3;
}

INLINE void gemv3_q4_0(int NR, int64_t nb, const uint8_t *w, size_t nb1, const struct xtriple *xt, float *out)
{
    /* fp16 scale words: block 0 at word 0, block 1 at word 9, block 2 at word 18 */
    const __m512i sidx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 0, 18, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm512_setzero_ps();
    const int64_t full = nb / 3;
    for (int64_t t = 0; t <= full; t++) {
        const int nblk = t < full ? 3 : (int)(nb - 3 * full);
        if (nblk == 0)
            break;
        const __mmask64 lm = nblk == 3 ? 0x3FFFFFFFFFFFFFull : (1ull << (18 * nblk)) - 1;
        const __m512i xa = xt[t].xa, xb = xt[t].xb, xc = xt[t].corr;
        const __m512 xd = xt[t].d;
        ROWS_LOOP(NR) {
            const __m512i l = _mm512_maskz_loadu_epi8(lm, w + r * nb1 + (size_t)t * 54);
            const __m512i lo = _mm512_and_si512(l, m4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(l, 4), m4);
            const __m512i ip = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(xc, lo, xa), hi, xb);
            const __m512 sc = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(sidx, l)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ip), _mm512_mul_ps(sc, xd), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* Tokens are taken two at a time so every token count uses the same arithmetic per output
 * (the one-token and batched paths must agree bit for bit). */
#define GEMV2_TILE(name, kern, corr_c, fallback)                                                  \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        const int64_t nb = k / 32, np = nb / 2;                                                  \
        if ((nb & 1) || np > MAX_PAIRS) {                                                        \
            fallback(k, w, nb1, nr, x, xs, nt, y, ldy);                                          \
            return;                                                                              \
        }                                                                                        \
        struct xpair xbuf[2 * MAX_PAIRS]; /* 72 KiB of stack at most */                          \
        const uint8_t *wb = w;                                                                   \
        const int64_t pf = pf_rows(nb1);                                                         \
        for (int64_t t0 = 0; t0 < nt; t0 += 2) {                                                 \
            const int64_t tn = nt - t0 < 2 ? nt - t0 : 2;                                        \
            for (int64_t t = 0; t < tn; t++)                                                     \
                prep_pairs((const block_q8_0 *)((const uint8_t *)x + (t0 + t) * xs), np, corr_c, \
                           xbuf + t * MAX_PAIRS);                                                \
            int64_t r = 0;                                                                       \
            for (; r + 4 <= nr; r += 4) {                                                        \
                if (r + pf + 4 <= nr)                                                            \
                    prefetch_rows(wb, nb1, r + pf, 4);                                           \
                for (int64_t t = 0; t < tn; t++) {                                               \
                    float o[4];                                                                  \
                    kern(4, np, wb + (size_t)r * nb1, nb1, xbuf + t * MAX_PAIRS, o);             \
                    memcpy(y + (t0 + t) * ldy + r, o, sizeof o);                                 \
                }                                                                                \
            }                                                                                    \
            for (; r < nr; r++)                                                                  \
                for (int64_t t = 0; t < tn; t++)                                                 \
                    kern(1, np, wb + (size_t)r * nb1, nb1, xbuf + t * MAX_PAIRS,                 \
                         y + (t0 + t) * ldy + r);                                                \
        }                                                                                        \
    }

/* Tile = groups of 4 rows (then single rows) × every token. `KDIV` turns k into the
 * kernel's length argument (blocks or elements). */
#define GEMV_TILE(name, dotfn, XT, KDIV)                                                         \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        const int64_t kk = k / (KDIV);                                                           \
        int64_t r = 0;                                                                           \
        for (; r + 4 <= nr; r += 4) {                                                            \
            const uint8_t *wr = (const uint8_t *)w + r * nb1;                                    \
            for (int64_t t = 0; t < nt; t++) {                                                   \
                float o[4];                                                              \
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

GEMV_TILE(tile_q8_0_v1, dot_q8_0_n, block_q8_0, QK8_0)
GEMV_TILE(tile_q4_0_v1, dot_q4_0_n, block_q8_0, QK4_0)
GEMV2_TILE(tile_q8_0, gemv2_q8_0, 128, tile_q8_0_v1)
static void tile_q4_0(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs,
                      int64_t nt, float *y, int64_t ldy)
{
    const int64_t nb = k / 32;
    if ((nb + 2) / 3 > MAX_TRIPLES) {
        tile_q4_0_v1(k, w, nb1, nr, x, xs, nt, y, ldy);
        return;
    }
    struct xtriple xbuf[2 * MAX_TRIPLES];   /* 64 KiB of stack at most */
    const uint8_t *wb = w;
    const int64_t pf = pf_rows(nb1);
    /* two tokens at a time: the same arithmetic for every token count */
    for (int64_t t0 = 0; t0 < nt; t0 += 2) {
        const int64_t tn = nt - t0 < 2 ? nt - t0 : 2;
        for (int64_t t = 0; t < tn; t++)
            prep_triples((const block_q8_0 *)((const uint8_t *)x + (t0 + t) * xs), nb, xbuf + t * MAX_TRIPLES);
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4) {
            if (r + pf + 4 <= nr)
                prefetch_rows(wb, nb1, r + pf, 4);
            for (int64_t t = 0; t < tn; t++) {
                float o[4];
                gemv3_q4_0(4, nb, wb + (size_t)r * nb1, nb1, xbuf + t * MAX_TRIPLES, o);
                memcpy(y + (t0 + t) * ldy + r, o, sizeof o);
            }
        }
        for (; r < nr; r++)
            for (int64_t t = 0; t < tn; t++)
                gemv3_q4_0(1, nb, wb + (size_t)r * nb1, nb1, xbuf + t * MAX_TRIPLES, y + (t0 + t) * ldy + r);
    }
}
GEMV_TILE(tile_q4_1, dot_q4_1_n, block_q8_1, QK4_1)
GEMV_TILE(tile_q5_0, dot_q5_0_n, block_q8_0, QK5_0)
GEMV_TILE(tile_q5_1, dot_q5_1_n, block_q8_1, QK5_1)
GEMV_TILE(tile_q4_K, dot_q4_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_q5_K, dot_q5_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_q6_K, dot_q6_K_n, block_q8_K, QK_K)
GEMV_TILE(tile_bf16, dot_bf16_n, uint16_t, 1)
GEMV_TILE(tile_bf16dp, dot_bf16dp_n, uint16_t, 1)
GEMV_TILE(tile_f32, dot_f32_n, float, 1)

/* ================================ float helpers ================================ */

static float dot_f32(const float *a, const float *b, int64_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy_f32(float *y, float a, const float *x, int64_t n)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void scale_f32(float *y, float s, int64_t n)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), vs));
    }
}

#define SIMD_BYTES 64
#define SIMD_SUFFIX _avx512
#include "simd-impl.h"

void lfm2_kernels_init_avx512(struct lfm2_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->path = LFM2_CPU_AVX512;
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
    /* F16: the batched kernel (avx512-gemm.c) serves every token count */
    k->tile[LFM2_TYPE_BF16] = (lfm2_cpu_flags() & LFM2_CPU_HAS_AVX512BF16) ? tile_bf16dp : tile_bf16;
    k->tile[LFM2_TYPE_F32] = tile_f32;
    k->silu_mul = silu_mul_avx512;
    k->sumsq = sumsq_avx512;
    k->exp_sub_sum = exp_sub_sum_avx512;
    k->attn_block = attn_block_avx512;
    k->attn_scratch = attn_scratch_floats_avx512;
    k->dot_f32 = dot_f32;
    k->axpy_f32 = axpy_f32;
    k->scale_f32 = scale_f32;
    lfm2_x16_init_avx512(k);
}
