/* scalar.c — the portable kernel path: complete, and the oracle every SIMD path is tested
 * against. Dot products follow ggml_vec_dot_* semantics: integer sums per block (per
 * super-block for K-quants) scaled by the two block scales and accumulated in float. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels.h"

/* ---- activation formats (Q8_0, Q8_1, Q8_K: the references in quants.c) ---- */

static void act_f16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < k; i++)
        y[i] = lfm2_fp32_to_fp16(x[i]);
}

static void act_bf16(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    for (int64_t i = 0; i < k; i++)
        y[i] = lfm2_fp32_to_bf16(x[i]);
}

/* ---- one weight row · one activation row ---- */

static float dot_f32_w(int64_t k, const void *vw, const void *vx)
{
    const float *w = vw, *x = vx;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)(w[i] * x[i]);
    return (float)s;
}

static float dot_f16(int64_t k, const void *vw, const void *vx)
{
    const uint16_t *w = vw, *x = vx;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)(lfm2_fp16_to_fp32(w[i]) * lfm2_fp16_to_fp32(x[i]));
    return (float)s;
}

static float dot_bf16(int64_t k, const void *vw, const void *vx)
{
    const uint16_t *w = vw, *x = vx;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)(lfm2_bf16_to_fp32(w[i]) * lfm2_bf16_to_fp32(x[i]));
    return (float)s;
}

static float dot_q8_0(int64_t k, const void *vw, const void *vx)
{
    const block_q8_0 *w = vw;
    const block_q8_0 *x = vx;
    float sum = 0;
    for (int64_t b = 0; b < k / QK8_0; b++) {
        int isum = 0;
        for (int j = 0; j < QK8_0; j++)
            isum += w[b].qs[j] * x[b].qs[j];
        sum += (float)isum * (lfm2_h2f(w[b].d) * lfm2_h2f(x[b].d));
    }
    return sum;
}

/* Q4_0, Q4_1, Q5_0, Q5_1: the 32 integer quants of a block (Q4_0 and Q5_0 without their
 * offset of 8 or 16), its scale d and, for Q4_1/Q5_1, its min m. Element j and j + 16 share
 * byte j of the nibbles; the fifth bit of element j is bit j of qh. */
static inline const uint8_t *legacy_block(enum lfm2_type t, const uint8_t *blk, int v[32], float *d, float *m)
{
    const bool has_m = t == LFM2_TYPE_Q4_1 || t == LFM2_TYPE_Q5_1;
    const bool five = t == LFM2_TYPE_Q5_0 || t == LFM2_TYPE_Q5_1;
    lfm2_fp16 h;
    memcpy(&h, blk, 2);
    *d = lfm2_h2f(h);
    memcpy(&h, blk + 2, 2);
    *m = has_m ? lfm2_h2f(h) : 0.0f;
    const uint8_t *qs = blk + (has_m ? 4 : 2);
    uint32_t qh = 0;
    if (five) {
        memcpy(&qh, qs, 4);
        qs += 4;
    }
    const int off = has_m ? 0 : five ? 16 : 8;
    for (int j = 0; j < 16; j++) {
        v[j] = ((qs[j] & 0xF) | (int)((qh >> j) & 1) << 4) - off;
        v[j + 16] = ((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off;
    }
    return blk + lfm2_type_block_bytes(t);
}

/* Σ_b isum_b·(d_w·d_x), plus Σ_b m_w·s_x for the types with a min (Q8_1 activations);
 * inlined into each type's dot with t a constant */
static inline __attribute__((always_inline)) float dot_legacy(enum lfm2_type t, int64_t k, const void *vw, const void *vx)
{
    const bool has_m = t == LFM2_TYPE_Q4_1 || t == LFM2_TYPE_Q5_1;
    const uint8_t *w = vw;
    float sum = 0, summs = 0;
    for (int64_t b = 0; b < k / 32; b++) {
        int v[32];
        float d, m;
        w = legacy_block(t, w, v, &d, &m);
        const int8_t *xq = has_m ? ((const block_q8_1 *)vx)[b].qs : ((const block_q8_0 *)vx)[b].qs;
        const float dx = lfm2_h2f(has_m ? ((const block_q8_1 *)vx)[b].d : ((const block_q8_0 *)vx)[b].d);
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += v[j] * xq[j];
        sum += (float)isum * (d * dx);
        if (has_m)
            summs += m * lfm2_h2f(((const block_q8_1 *)vx)[b].s);
    }
    return has_m ? sum + summs : sum;
}

static float dot_q4_0(int64_t k, const void *w, const void *x) { return dot_legacy(LFM2_TYPE_Q4_0, k, w, x); }
static float dot_q4_1(int64_t k, const void *w, const void *x) { return dot_legacy(LFM2_TYPE_Q4_1, k, w, x); }
static float dot_q5_0(int64_t k, const void *w, const void *x) { return dot_legacy(LFM2_TYPE_Q5_0, k, w, x); }
static float dot_q5_1(int64_t k, const void *w, const void *x) { return dot_legacy(LFM2_TYPE_Q5_1, k, w, x); }

/* K-quants: Σ_j sc_j · Σ_i q·q8 as one int32 per super-block, times d_w·d_x; the mins go
 * through the activation's 16-element sums: dmin_w·d_x · Σ_j m_j · (bsum_2j + bsum_2j+1).
 * Q5_K adds the fifth bit of each quant from qh (bit 2j, 2j+1 of qh[l] for sub-blocks 2j, 2j+1). */
static inline __attribute__((always_inline)) float dot_q45_K(bool q5, int64_t k, const void *vw, const void *vx)
{
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const block_q8_K *x = vx;
    float sum = 0;
    for (int64_t b = 0; b < k / QK_K; b++) {
        /* the two layouts share d, dmin and scales; Q5_K puts qh before qs */
        const block_q4_K *w = (const block_q4_K *)((const uint8_t *)vw + (size_t)b * bsz);
        const uint8_t *qh = q5 ? ((const block_q5_K *)w)->qh : NULL;
        const uint8_t *q = q5 ? ((const block_q5_K *)w)->qs : w->qs;
        const int8_t *q8 = x[b].qs;
        int isum = 0, msum = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            uint8_t sc0, m0, sc1, m1;
            lfm2_get_scale_min_k4(2 * j, w->scales, &sc0, &m0);
            lfm2_get_scale_min_k4(2 * j + 1, w->scales, &sc1, &m1);
            const int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((q[l] & 0xF) + (q5 && (qh[l] & u1) ? 16 : 0)) * q8[l];
                s1 += ((q[l] >> 4) + (q5 && (qh[l] & u2) ? 16 : 0)) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            msum += m0 * (x[b].bsums[4 * j] + x[b].bsums[4 * j + 1]) +
                    m1 * (x[b].bsums[4 * j + 2] + x[b].bsums[4 * j + 3]);
            q += 32;
            q8 += 64;
        }
        const float d = x[b].d * lfm2_h2f(w->d);
        const float dmin = x[b].d * lfm2_h2f(w->dmin);
        sum += d * (float)isum - dmin * (float)msum;
    }
    return sum;
}

static float dot_q4_K(int64_t k, const void *w, const void *x) { return dot_q45_K(false, k, w, x); }
static float dot_q5_K(int64_t k, const void *w, const void *x) { return dot_q45_K(true, k, w, x); }

static float dot_q6_K(int64_t k, const void *vw, const void *vx)
{
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    float sum = 0;
    for (int64_t b = 0; b < k / QK_K; b++) {
        const uint8_t *ql = w[b].ql, *qh = w[b].qh;
        const int8_t *sc = w[b].scales;
        const int8_t *q8 = x[b].qs;
        int isum = 0;
        for (int h = 0; h < QK_K / 128; h++) {
            int s[8] = { 0 };   /* 16-element sub-blocks of this 128-element half */
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int v1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int v2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int v3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int v4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                s[is + 0] += v1 * q8[l];
                s[is + 2] += v2 * q8[l + 32];
                s[is + 4] += v3 * q8[l + 64];
                s[is + 6] += v4 * q8[l + 96];
            }
            for (int j = 0; j < 8; j++)
                isum += sc[j] * s[j];
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        sum += (x[b].d * lfm2_h2f(w[b].d)) * (float)isum;
    }
    return sum;
}

typedef float (*dot_fn)(int64_t k, const void *w, const void *x);

/* Generic tile over a row dot product; rows outer so a weight row is reused from L1 by every
 * activation row of the tile. */
#define SCALAR_TILE(name, dot)                                                                   \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        for (int64_t r = 0; r < nr; r++) {                                                       \
            const void *wr = (const uint8_t *)w + r * nb1;                                       \
            for (int64_t t = 0; t < nt; t++)                                                     \
                y[t * ldy + r] = dot(k, wr, (const uint8_t *)x + t * xs);                        \
        }                                                                                        \
    }

SCALAR_TILE(tile_f32, dot_f32_w)
SCALAR_TILE(tile_f16, dot_f16)
SCALAR_TILE(tile_bf16, dot_bf16)
SCALAR_TILE(tile_q8_0, dot_q8_0)
SCALAR_TILE(tile_q4_0, dot_q4_0)
SCALAR_TILE(tile_q4_1, dot_q4_1)
SCALAR_TILE(tile_q5_0, dot_q5_0)
SCALAR_TILE(tile_q5_1, dot_q5_1)
SCALAR_TILE(tile_q4_K, dot_q4_K)
SCALAR_TILE(tile_q5_K, dot_q5_K)
SCALAR_TILE(tile_q6_K, dot_q6_K)

/* ---- float helpers ---- */

static void gelu_lut(const uint16_t *table, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = lfm2_gelu_lut1(table, x[i]);
}

#define SIMD_BYTES 16
#define SIMD_SUFFIX _generic
#include "simd-impl.h"

const struct lfm2_kernels lfm2_kernels_scalar = {
    .path = LFM2_CPU_SCALAR,
    .act = {
        [LFM2_ACT_F16] = act_f16, [LFM2_ACT_BF16] = act_bf16,
        /* the references (quants.c) */
        [LFM2_ACT_Q8_0] = lfm2_quantize_row_q8_0, [LFM2_ACT_Q8_1] = lfm2_quantize_row_q8_1,
        [LFM2_ACT_Q8_K] = lfm2_quantize_row_q8_K,
    },
    .tile = {
        [LFM2_TYPE_F32] = tile_f32, [LFM2_TYPE_F16] = tile_f16, [LFM2_TYPE_BF16] = tile_bf16,
        [LFM2_TYPE_Q8_0] = tile_q8_0, [LFM2_TYPE_Q4_0] = tile_q4_0, [LFM2_TYPE_Q4_1] = tile_q4_1,
        [LFM2_TYPE_Q5_0] = tile_q5_0, [LFM2_TYPE_Q5_1] = tile_q5_1, [LFM2_TYPE_Q4_K] = tile_q4_K,
        [LFM2_TYPE_Q5_K] = tile_q5_K, [LFM2_TYPE_Q6_K] = tile_q6_K,
    },
    .gemm = lfm2_gemm_scalar,
    .gelu_lut = gelu_lut,
    SIMD_IMPL_ENTRIES,
    /* no encoder attention tiles: attn_block serves every attention */
};
