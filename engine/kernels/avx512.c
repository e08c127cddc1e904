/* avx512.c — AVX-512 (F/BW/VL/DQ + VNNI + VBMI) kernels for weights read as stored, the
 * activation formats and the float helpers; the prepared layouts and F16/BF16 read in place
 * are in avx512-gemm.c. Compiled with -mavx512* and only called after dispatch.c checked
 * cpuid.
 *
 * GEMV tiles serve every batch size: up to 4 weight rows share each activation load; the
 * legacy quants take one ggml block per 256-bit VPDPBUSD (x86-impl.h), Q8_0 two blocks and
 * Q4_0 three blocks per zmm (VBMI), K-quants 64 elements per zmm; each block is scaled in
 * float like ggml_vec_dot_*.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- the primitives x86-impl.h builds on (VNNI on ymm registers) ---- */

/* signed·signed bytes: |w| · (x with w's sign) */
INLINE __m256i dot_i8(__m256i w, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

INLINE __m256i dot_u8(__m256i u, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
}

/* 5-bit quants: the high bit of element j is bit j of qh (j = 0..31) */
INLINE __m256i q5_high(const uint8_t *qh)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    return _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10));
}

/* the generic tiles have no software prefetch on this path (the Q8_0 and Q4_0 tiles below,
 * which decode most, have theirs) */
#define GEMV_PREFETCH 0

/* ================================ activation formats ================================ */

/* the largest |x| of 32 floats (v0, v1) as bits (lfm2_amax_from_bits) */
INLINE uint32_t amax32_bits(__m512 v0, __m512 v1)
{
    const __m512i abs = _mm512_set1_epi32(0x7fffffff);
    return _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(v0), abs),
                                                    _mm512_and_si512(_mm512_castps_si512(v1), abs)));
}

/* Q8_0 / Q8_1 blocks; the Q8_1 sum s only with s != NULL */
INLINE void q8_block(const float *x, block_q8_0 *y, lfm2_fp16 *s)
{
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = lfm2_amax_from_bits(amax32_bits(v0, v1));
    if (lfm2_q8_0_special(amax, y, s))
        return;
    const float d = amax / 127.f;
    const __m512 m = _mm512_set1_ps(127.f / amax);
    const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    y->d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    if (s)   /* |q| ≤ 127: the sum cannot overflow */
        *s = _cvtss_sh(d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1)), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)y->qs, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(y->qs + 16), _mm512_cvtsepi32_epi8(i1));
}

/* ggml's quantize_row_q8_K: scale from the first element of largest magnitude (signed). */
static void act_q8_K(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        const __m512i absm = _mm512_set1_epi32(0x7fffffff);
        __m512i am = _mm512_setzero_si512();
        for (int j = 0; j < 16; j++)
            am = _mm512_max_epu32(am, _mm512_and_si512(_mm512_loadu_si512(x + 16 * j), absm));
        const float amax = lfm2_amax_from_bits(_mm512_reduce_max_epu32(am));
        const enum lfm2_q8_case c = lfm2_q8_case(amax);
        if (c != LFM2_Q8_QUANT) {
            lfm2_q8_K_unquantized(c, &y[b]);
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
        /* finite, and |x·iscale| ≤ 127: no conversion overflows, no sum either */
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

/* act_q8_0/act_q8_1 over q8_block, the GEMV tiles shared with the other x86 path */
#include "x86-impl.h"

/* ================================ GEMV tiles ================================ */

/* Scale vector for maddubs+madd over a zmm of 64 elements = sub-blocks (2j, 2j+1) of 32:
 * int16 lanes 0..15 take sc[2j], 16..31 take sc[2j+1]. */
INLINE __m512i k4_scale_pair(const uint8_t *sc8, int j)
{
    const __m256i lo = _mm256_set1_epi16(sc8[2 * j]), hi = _mm256_set1_epi16(sc8[2 * j + 1]);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Q4_K / Q5_K, 64 elements (sub-blocks 2j, 2j+1) per zmm; Q5: the fifth bits from qh (bit 2j
 * of qh[l] for the low half, bit 2j+1 for the high half) added as 16 before the products. */
INLINE void dot_q45_K_n(int NR, const int Q5, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_K *x,
                        float *out)
{
    const size_t bsz = Q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    float sum[4];
    ROWS_LOOP(NR) sum[r] = 0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q8 = x[b].qs;
        ROWS_LOOP(NR) {
            /* the two layouts share d, dmin and scales; Q5_K puts qh before qs */
            const block_q4_K *wb = (const block_q4_K *)(w + r * nb1 + (size_t)b * bsz);
            const uint8_t *qs = Q5 ? ((const block_q5_K *)wb)->qs : wb->qs;
            uint32_t sc[2], mn[2];
            k4_scales(wb->scales, sc, mn);
            const uint8_t *sc8 = (const uint8_t *)sc;
            const __m256i qh = Q5 ? _mm256_loadu_si256((const __m256i *)((const block_q5_K *)wb)->qh)
                                  : _mm256_setzero_si256();
            __m512i acc = _mm512_setzero_si512();
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                __m512i qv = _mm512_and_si512(
                    _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
                if (Q5) {
                    const __mmask32 h0 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * j))));
                    const __mmask32 h1 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(2 << (2 * j))));
                    qv = _mm512_or_si512(qv, _mm512_maskz_mov_epi8(((__mmask64)h1 << 32) | h0, _mm512_set1_epi8(16)));
                }
                const __m512i p16 = _mm512_maddubs_epi16(qv, _mm512_loadu_si512(q8 + 64 * j));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, k4_scale_pair(sc8, j)));
            }
            /* |isum| < 2^26 for any bits: no overflow in the reduction */
            sum[r] += k4_block_sum(&x[b], (const uint8_t *)wb, _mm512_reduce_add_epi32(acc), mn);
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

/* ---- Q8_0 GEMV, two blocks per zmm (VBMI) ----
 * The activation row is first rearranged into pairs of blocks: 64 quant bytes, the two
 * scales spread over 8 lanes each, and the offset correction −128·Σx (the weights are made
 * unsigned). One masked load then brings two weight blocks, VPERMB unpacks them and
 * VPERMW+VCVTPH2PS spread their scales, so a pair costs about ten instructions for 64 MACs,
 * and the per-block float scaling is kept exact. */

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

/* Tokens are taken two at a time, each activation row first rearranged by PREP(x, nb, buf)
 * (pairs or triples of blocks), so every token count uses the same arithmetic per output (the
 * one-token and batched paths must agree bit for bit); KLEN is the kernel's length argument.
 * Rows longer than the buffers (FITS false) take the plain tile FALLBACK. */
#define GEMV_PREP_TILE(name, XT, MAXN, FITS, PREP, KERN, KLEN, FALLBACK)                         \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        const int64_t nb = k / 32;                                                               \
        if (!(FITS)) {                                                                           \
            FALLBACK(k, w, nb1, nr, x, xs, nt, y, ldy);                                          \
            return;                                                                              \
        }                                                                                        \
        XT xbuf[2 * (MAXN)]; /* 72 KiB of stack at most */                                       \
        const uint8_t *wb = w;                                                                   \
        const int64_t pf = pf_rows(nb1);                                                         \
        for (int64_t t0 = 0; t0 < nt; t0 += 2) {                                                 \
            const int64_t tn = nt - t0 < 2 ? nt - t0 : 2;                                        \
            for (int64_t t = 0; t < tn; t++)                                                     \
                PREP((const block_q8_0 *)((const uint8_t *)x + (t0 + t) * xs), nb, xbuf + t * (MAXN)); \
            int64_t r = 0;                                                                       \
            for (; r + 4 <= nr; r += 4) {                                                        \
                if (r + pf + 4 <= nr)                                                            \
                    prefetch_rows(wb, nb1, r + pf, 4);                                           \
                for (int64_t t = 0; t < tn; t++) {                                               \
                    float o[4];                                                                  \
                    KERN(4, KLEN, wb + (size_t)r * nb1, nb1, xbuf + t * (MAXN), o);              \
                    memcpy(y + (t0 + t) * ldy + r, o, sizeof o);                                 \
                }                                                                                \
            }                                                                                    \
            for (; r < nr; r++)                                                                  \
                for (int64_t t = 0; t < tn; t++)                                                 \
                    KERN(1, KLEN, wb + (size_t)r * nb1, nb1, xbuf + t * (MAXN), y + (t0 + t) * ldy + r); \
        }                                                                                        \
    }

/* Q8_0 weights made unsigned (+128) pair with −128·Σx */
INLINE void prep_pairs_q8(const block_q8_0 *x, int64_t nb, struct xpair *xp) { prep_pairs(x, nb / 2, 128, xp); }

GEMV_PREP_TILE(tile_q8_0, struct xpair, MAX_PAIRS, !(nb & 1) && nb / 2 <= MAX_PAIRS, prep_pairs_q8,
               gemv2_q8_0, nb / 2, tile_q8_0_gemv)
GEMV_PREP_TILE(tile_q4_0, struct xtriple, MAX_TRIPLES, (nb + 2) / 3 <= MAX_TRIPLES, prep_triples,
               gemv3_q4_0, nb, tile_q4_0_gemv)
X86_GEMV_TILES

/* ================================ float helpers ================================ */

/* ggml's table GELU, 16 at a time: F16C rounding (nearest even, as lfm2_fp32_to_fp16), a
 * 32-bit gather at byte offset 2·h keeping the low half, F16C back. Bit-identical to
 * lfm2_gelu_lut1 (the table has one spare entry, so the gather may read table[65536]). */
static void gelu_lut(const uint16_t *table, float *x, int64_t n)
{
    const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i g = _mm512_i32gather_epi32(_mm512_cvtepu16_epi32(h), (const void *)table, 2);
        __m512 y = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
        y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, hi, _CMP_GE_OQ), y, v);
        y = _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(v, lo, _CMP_LE_OQ), y);
        _mm512_storeu_ps(x + i, y);
    }
    for (; i < n; i++)
        x[i] = lfm2_gelu_lut1(table, x[i]);
}

#define SIMD_BYTES 64
#define SIMD_SUFFIX _avx512
#include "simd-impl.h"

/* The two AVX-512 tables differ only in their gemm array (the BF16 product). */
#define AVX512_TABLE(GEMMS)                                                                      \
    {                                                                                            \
        .path = LFM2_CPU_AVX512,                                                                 \
        .act = X86_ACTS,                                                                         \
        .tile = {                                                                                \
            [LFM2_TYPE_Q8_0] = tile_q8_0, [LFM2_TYPE_Q4_0] = tile_q4_0, X86_TILES,               \
            /* F16, BF16: the gemms (avx512-gemm.c) for every batch */                           \
        },                                                                                       \
        .gemm = GEMMS,                                                                           \
        .gelu_lut = gelu_lut,                                                                    \
        SIMD_IMPL_ENTRIES,                                                                       \
        SIMD_IMPL_BIATT,                                                                         \
    }

const struct lfm2_kernels lfm2_kernels_avx512 = AVX512_TABLE(lfm2_gemm_avx512);
const struct lfm2_kernels lfm2_kernels_avx512_bf16 = AVX512_TABLE(lfm2_gemm_avx512_bf16);
