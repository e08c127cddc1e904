/* avx2.c — AVX2 + FMA + F16C kernels (no VNNI: byte products go through VPMADDUBSW, pairs
 * summed by VPMADDWD) for weights read as stored, the activation formats and the float
 * helpers; the prepared layouts and BF16 read in place are in avx2-x16.c. The path for x86-64
 * CPUs without the AVX-512 feature set the AVX-512 file needs; same activation formats and
 * per-block float scaling as the scalar path. What both x86 paths share is in x86-impl.h
 * (intrinsics) and simd-impl.h (vector extensions).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE int hsum8i(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* ---- the primitives x86-impl.h builds on (no VNNI) ---- */

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

/* 32 bits → 32 bytes of 0x10 where the bit is set */
INLINE __m256i q5_high(const uint8_t *qh)
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

#define GEMV_PREFETCH 1

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

/* the largest |x| of 32 floats as bits (lfm2_amax_from_bits) */
INLINE uint32_t amax32_bits(const float *x)
{
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)x), abs);
    for (int i = 8; i < 32; i += 8)
        m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), abs));
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epu32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 1));
    return (uint32_t)_mm_cvtsi128_si32(h);
}

/* Q8_0 / Q8_1 blocks; the Q8_1 sum s only with s != NULL */
INLINE void q8_block(const float *x, block_q8_0 *y, lfm2_fp16 *s)
{
    const float amax = lfm2_amax_from_bits(amax32_bits(x));
    if (lfm2_q8_0_special(amax, y, s))
        return;
    const float d = amax / 127.f;
    const int sum = quant32(x, 127.f / amax, y->qs);
    y->d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    if (s)
        *s = _cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
}

static void act_q8_K(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        uint32_t mb = 0;
        for (int j = 0; j < 8; j++) {
            const uint32_t m = amax32_bits(x + 32 * j);
            mb = m > mb ? m : mb;
        }
        const float amax = lfm2_amax_from_bits(mb);
        const enum lfm2_q8_case c = lfm2_q8_case(amax);
        if (c != LFM2_Q8_QUANT) {
            lfm2_q8_K_unquantized(c, &y[b]);
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

/* act_q8_0/act_q8_1 over q8_block, the GEMV tiles shared with the other x86 path */
#include "x86-impl.h"

/* ================================ GEMV tiles (K-quants, floats) ================================ */

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
            sum[r] += k4_block_sum(&x[b], blk, hsum8i(acc), mn);
        }
    }
    ROWS_LOOP(NR) out[r] = sum[r];
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

GEMV_TILE(tile_f16, dot_f16_n, uint16_t, 1)
X86_GEMV_TILES

/* ================================ float helpers ================================ */

/* ggml's table GELU, 8 at a time: F16C rounding (nearest even, as lfm2_fp32_to_fp16), a
 * 32-bit gather at byte offset 2·h keeping the low half, F16C back. Bit-identical to
 * lfm2_gelu_lut1 (the table has one spare entry, so the gather may read table[65536]). */
static void gelu_lut(const uint16_t *table, float *x, int64_t n)
{
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    const __m256i low16 = _mm256_set1_epi32(0xffff);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i g = _mm256_i32gather_epi32((const int *)(const void *)table, _mm256_cvtepu16_epi32(h), 2);
        g = _mm256_and_si256(g, low16);
        /* 8 × 32-bit → 8 × 16-bit (values < 2^16, so the unsigned saturating pack is exact) */
        const __m128i g16 = _mm_packus_epi32(_mm256_castsi256_si128(g), _mm256_extracti128_si256(g, 1));
        __m256 y = _mm256_cvtph_ps(g16);
        y = _mm256_blendv_ps(y, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
        y = _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LE_OQ), y);
        _mm256_storeu_ps(x + i, y);
    }
    for (; i < n; i++)
        x[i] = lfm2_gelu_lut1(table, x[i]);
}

#define SIMD_BYTES 32
#define SIMD_SUFFIX _avx2
#include "simd-impl.h"

const struct lfm2_kernels lfm2_kernels_avx2 = {
    .path = LFM2_CPU_AVX2,
    .act = X86_ACTS,
    .tile = {
        [LFM2_TYPE_Q8_0] = tile_q8_0_gemv, [LFM2_TYPE_Q4_0] = tile_q4_0_gemv, X86_TILES,
        [LFM2_TYPE_F16] = tile_f16,
        /* BF16: the gemm (avx2-x16.c) for every batch */
    },
    .gemm = lfm2_gemm_avx2,
    .gelu_lut = gelu_lut,
    SIMD_IMPL_ENTRIES,
    SIMD_IMPL_BIATT,
};
