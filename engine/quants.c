/* quants.c — ggml block formats: fp16/bf16 conversion, reference dequantization and
 * quantization. Everything here is scalar and written to give the same bits as ggml's
 * reference code (ggml-quants.c) and its x86 activation quantizers; the SIMD kernels are
 * tested against these functions, so clarity beats speed here. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "quants.h"

/* ---- half precision ----------------------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lfm2_fp16_to_fp32(lfm2_fp16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0)
            return bits_f32(sign);
        /* subnormal half: normalise the mantissa into an fp32 normal */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400));
        mant &= 0x3ff;
        return bits_f32(sign | (uint32_t)(112 - e) << 23 | mant << 13);
    }
    if (exp == 31)   /* inf / NaN (payload kept, as VCVTPH2PS does) */
        return bits_f32(sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0));
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

lfm2_fp16 lfm2_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)   /* NaN: quiet it, keep the top payload bits (F16C behaviour) */
        return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
    if (ax >= 0x477ff000u)  /* >= 65520 (incl. inf) rounds to inf */
        return sign | 0x7c00;
    if (ax >= 0x38800000u) {   /* normal half range: round the mantissa to nearest even */
        ax += 0xfffu + ((ax >> 13) & 1);
        ax -= 0x38000000u;     /* rebias 127 -> 15 */
        return sign | (uint16_t)(ax >> 13);
    }
    uint32_t e = ax >> 23;
    if (e == 0)   /* fp32 zero or subnormal: far below half's smallest subnormal */
        return sign;
    /* subnormal half: value / 2^-24 = m * 2^(e-126), rounded to nearest even */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t s = 126 - e;   /* >= 14 here */
    if (s > 24)
        return sign;
    uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return sign | (uint16_t)q;
}

float lfm2_bf16_to_fp32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t lfm2_fp32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64);   /* NaN: force quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

#define FP16(x) lfm2_fp16_to_fp32(x)

/* ---- dequantization ------------------------------------------------------------------------ */

static void dq_q4_0(const void *src, float *y, int64_t n)
{
    const block_q4_0 *x = src;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = FP16(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dq_q4_1(const void *src, float *y, int64_t n)
{
    const block_q4_1 *x = src;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = FP16(x[i].d), m = FP16(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (x[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void dq_q5_0(const void *src, float *y, int64_t n)
{
    const block_q5_0 *x = src;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = FP16(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (((x[i].qs[j] & 0x0f) | h0 << 4) - 16) * d;
            y[j + QK5_0 / 2] = (((x[i].qs[j] >> 4) | h1 << 4) - 16) * d;
        }
    }
}

static void dq_q5_1(const void *src, float *y, int64_t n)
{
    const block_q5_1 *x = src;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = FP16(x[i].d), m = FP16(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = ((x[i].qs[j] & 0x0f) | h0 << 4) * d + m;
            y[j + QK5_1 / 2] = ((x[i].qs[j] >> 4) | h1 << 4) * d + m;
        }
    }
}

static void dq_q8_0(const void *src, float *y, int64_t n)
{
    const block_q8_0 *x = src;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = FP16(x[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[j] = x[i].qs[j] * d;
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; 64 outputs per 32 qs bytes
 * (low nibbles first, then high nibbles). Q5_K adds a fifth bit from qh, two bits per chunk. */
static inline void dq_q45_K(bool q5, const void *src, float *y, int64_t n)
{
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* the two layouts share d, dmin and scales; Q5_K puts qh before qs */
        const block_q4_K *x = (const block_q4_K *)((const uint8_t *)src + (size_t)i * bsz);
        const uint8_t *q = q5 ? ((const block_q5_K *)x)->qs : x->qs;
        const uint8_t *qh = q5 ? ((const block_q5_K *)x)->qh : NULL;
        const float d = FP16(x->d), dmin = FP16(x->dmin);
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            lfm2_get_scale_min_k4(2 * c, x->scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            lfm2_get_scale_min_k4(2 * c + 1, x->scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((q[l] & 0xf) + (q5 && (qh[l] >> (2 * c)) & 1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((q[l] >> 4) + (q5 && (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0)) - m2;
        }
    }
}

static void dq_q4_K(const void *src, float *y, int64_t n) { dq_q45_K(false, src, y, n); }
static void dq_q5_K(const void *src, float *y, int64_t n) { dq_q45_K(true, src, y, n); }

/* Q6_K: two halves of 128; each ql byte holds two low nibbles, each qh byte four 2-bit highs. */
static void dq_q6_K(const void *src, float *y, int64_t n)
{
    const block_q6_K *x = src;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = FP16(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                /* (d * sc) * q, in that order, as ggml evaluates it */
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void dq_q8_K(const void *src, float *y, int64_t n)
{
    const block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

/* float types: element by element (rows in a file need not be aligned) */
static void dq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * sizeof(float)); }

/* fp16 / bf16 rows, element by element (rows in a file need not be 2-byte aligned) */
static inline void dq_half(bool bf, const void *src, float *y, int64_t n)
{
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        y[i] = bf ? lfm2_bf16_to_fp32(h) : lfm2_fp16_to_fp32(h);
    }
}

static void dq_f16(const void *src, float *y, int64_t n) { dq_half(false, src, y, n); }
static void dq_bf16(const void *src, float *y, int64_t n) { dq_half(true, src, y, n); }

/* ---- quantization helpers (ggml's rounding) ----------------------------------------------- */

/* Round to nearest, ties to even, via the 1.5*2^23 trick ggml uses (valid for |v| < 2^22). */
static inline int nearest_int(float v)
{
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- weight quantizers (ggml quantize_row_*_ref) ------------------------------------------- */

/* ggml's truncation (int8_t)v, then min(nmax, ·); v is in [0, nmax + 1) for finite input,
 * and a NaN (from a non-finite weight) gives 0 instead of an undefined conversion. */
static inline uint8_t trunc_q(float v, int nmax)
{
    return v >= 0 ? (v < (float)nmax ? (uint8_t)(int)v : (uint8_t)nmax) : 0;
}

/* Q4_0, Q4_1, Q5_0, Q5_1 (ggml's quantize_row_q4_0_ref …, 32 elements per block): the
 * symmetric types scale by the signed value of largest magnitude, d = max / −2^(bits−1), and
 * store trunc(x/d + 2^(bits−1) + 0.5); the others by the range, d = (max − min)/(2^bits − 1),
 * m = min, and store trunc((x − m)/d + 0.5). Layout: d, [m], [qh: the fifth bits], nibbles
 * (element j low, j + 16 high). */
static void q_legacy(enum lfm2_type t, const float *x, void *dst, int64_t n)
{
    const bool has_m = t == LFM2_TYPE_Q4_1 || t == LFM2_TYPE_Q5_1;
    const bool five = t == LFM2_TYPE_Q5_0 || t == LFM2_TYPE_Q5_1;
    const int nmax = five ? 31 : 15;
    const size_t bsz = (size_t)lfm2_type_block_bytes(t);
    uint8_t *y = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, y += bsz) {
        float d, min = INFINITY, max = -INFINITY, amax = 0.0f;
        if (has_m) {
            for (int j = 0; j < 32; j++) {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            d = (max - min) / nmax;
        } else {
            max = 0.0f;
            for (int j = 0; j < 32; j++)
                if (amax < fabsf(x[j])) {
                    amax = fabsf(x[j]);
                    max = x[j];
                }
            d = max / (float)-((nmax + 1) / 2);   /* max / −8, max / −16 */
        }
        const float id = d ? 1.0f / d : 0.0f;
        const float bias = (float)((nmax + 1) / 2) + 0.5f;   /* symmetric types: 8.5, 16.5 */
        uint8_t q[32];
        for (int j = 0; j < 32; j++)
            q[j] = trunc_q(has_m ? (x[j] - min) * id + 0.5f : x[j] * id + bias, nmax);
        const lfm2_fp16 dh = lfm2_fp32_to_fp16(d), mh = lfm2_fp32_to_fp16(min);
        memcpy(y, &dh, 2);
        uint8_t *p = y + 2;
        if (has_m) {
            memcpy(p, &mh, 2);
            p += 2;
        }
        if (five) {
            uint32_t qh = 0;
            for (int j = 0; j < 32; j++)
                qh |= (uint32_t)(q[j] >> 4) << j;
            memcpy(p, &qh, 4);
            p += 4;
        }
        for (int j = 0; j < 16; j++)
            p[j] = (uint8_t)((q[j] & 0x0f) | (q[j + 16] & 0x0f) << 4);
    }
}

static void q_q4_0(const float *x, void *dst, int64_t n) { q_legacy(LFM2_TYPE_Q4_0, x, dst, n); }
static void q_q4_1(const float *x, void *dst, int64_t n) { q_legacy(LFM2_TYPE_Q4_1, x, dst, n); }
static void q_q5_0(const float *x, void *dst, int64_t n) { q_legacy(LFM2_TYPE_Q5_0, x, dst, n); }
static void q_q5_1(const float *x, void *dst, int64_t n) { q_legacy(LFM2_TYPE_Q5_1, x, dst, n); }

static void q_q8_0(const float *x, void *dst, int64_t n)
{
    block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = lfm2_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);   /* half away from zero, as the ref */
    }
}

/* Fits scale and min of n values to levels 0..nmax under weights: a first guess from the
 * range, then nstep+1 trial scales around it, each refined by weighted least squares
 * (ggml's make_qkx2_quants). Returns the scale; *the_min gets the (positive) offset. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Symmetric fit to levels -nmax..nmax-1 with weights x² (ggml's make_qx_quants, rmse_type 1,
 * no importance weights): the best of 19 trial scales by weighted least squares. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Shared by Q4_K and Q5_K: per-sub-block scale/min fit, 6-bit packing against the block's
 * largest scale and min, then requantization of every value with the packed scales. */
static void q_k_scales(const float *x, int nmax, float rmin, int nstep, uint8_t *scales_out,
                       lfm2_fp16 *d_out, lfm2_fp16 *dmin_out, uint8_t *L)
{
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = MIN(63, ls);
        lm = MIN(63, lm);
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = lfm2_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = lfm2_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        lfm2_get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = FP16(*d_out) * sc;
        if (!d)
            continue;
        const float dm = FP16(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
        }
    }
}

static void q_q4_K(const float *x, void *dst, int64_t n)
{
    block_q4_K *y = dst;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        q_k_scales(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
    }
}

static void q_q5_K(const float *x, void *dst, int64_t n)
{
    block_q5_K *y = dst;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        q_k_scales(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int c = 0; c < QK_K; c += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[c + j], l2 = L[c + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | l2 << 4);
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

static void q_q6_K(const float *x, void *dst, int64_t n)
{
    block_q6_K *y = dst;
    const int64_t nb = n / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < 1e-15f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = lfm2_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            float d = FP16(y[i].d) * y[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xf, q2 = L[j + l + 32] & 0xf;
                const uint8_t q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
                ql[l] = (uint8_t)(q1 | q3 << 4);
                ql[l + 32] = (uint8_t)(q2 | q4 << 4);
                qh[l] = (uint8_t)((L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2 |
                                  (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6);
            }
        }
    }
}

static void q_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }

static inline void q_half(bool bf, const float *x, void *dst, int64_t n)
{
    uint8_t *d = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = bf ? lfm2_fp32_to_bf16(x[i]) : lfm2_fp32_to_fp16(x[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}

static void q_f16(const float *x, void *dst, int64_t n) { q_half(false, x, dst, n); }
static void q_bf16(const float *x, void *dst, int64_t n) { q_half(true, x, dst, n); }

/* ---- activation quantizers (ggml's x86 CPU backend) ----------------------------------------- */

/* The largest |x| of a block; NaN when the block holds a NaN or an infinity. */
static float block_amax(const float *x, int n)
{
    float amax = 0.0f;
    bool finite = true;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        finite &= a <= FLT_MAX;
        amax = MAX(amax, a);
    }
    return finite ? amax : NAN;
}

/* Q8_0 blocks; *sums (Q8_1) gets Σq of each block */
static void q8_0_blocks(const float *x, block_q8_0 *y, int64_t nb, int *sums)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        const float amax = block_amax(x, QK8_0);
        const enum lfm2_q8_case c = lfm2_q8_case(amax);
        int sum = 0;
        lfm2_q8_0_unquantized(c, &y[i]);
        if (c == LFM2_Q8_QUANT) {
            const float id = 127.f / amax;
            y[i].d = lfm2_fp32_to_fp16(amax / 127.f);
            for (int j = 0; j < QK8_0; j++) {
                y[i].qs[j] = (int8_t)nearest_int(x[j] * id);
                sum += y[i].qs[j];
            }
        }
        if (sums)
            sums[i] = sum;
    }
}

void lfm2_quantize_row_q8_0(const float *x, void *y, int64_t n)
{
    q8_0_blocks(x, y, n / QK8_0, NULL);
}

void lfm2_quantize_row_q8_1(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        block_q8_0 b;
        int sum;
        q8_0_blocks(x, &b, 1, &sum);
        const float amax = block_amax(x, QK8_1);
        y[i].d = b.d;
        y[i].s = lfm2_q8_case(amax) == LFM2_Q8_NAN ? LFM2_FP16_NAN : lfm2_fp32_to_fp16(amax / 127.f * (float)sum);
        memcpy(y[i].qs, b.qs, QK8_1);
    }
}

void lfm2_quantize_row_q8_K(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        const float amax = block_amax(x, QK_K);
        const enum lfm2_q8_case c = lfm2_q8_case(amax);
        lfm2_q8_K_unquantized(c, &y[i]);
        if (c != LFM2_Q8_QUANT)
            continue;
        float max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) {   /* the first of largest magnitude, with its sign */
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            y[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- the type table ------------------------------------------------------------------------ */

#define BLOCK(NAME, BLCK, BYTES, WEIGHT, ACT, TO, FROM) { NAME, BLCK, BYTES, WEIGHT, ACT, TO, FROM }
#define NAME_ONLY(NAME) { NAME, 0, 0, false, -1, NULL, NULL }

static const struct lfm2_type_traits k_traits[] = {
    [LFM2_TYPE_F32] = BLOCK("F32", 1, 4, true, LFM2_ACT_F32, dq_f32, q_f32),
    [LFM2_TYPE_F16] = BLOCK("F16", 1, 2, true, LFM2_ACT_F16, dq_f16, q_f16),
    [LFM2_TYPE_Q4_0] = BLOCK("Q4_0", QK4_0, sizeof(block_q4_0), true, LFM2_ACT_Q8_0, dq_q4_0, q_q4_0),
    [LFM2_TYPE_Q4_1] = BLOCK("Q4_1", QK4_1, sizeof(block_q4_1), true, LFM2_ACT_Q8_1, dq_q4_1, q_q4_1),
    [4] = NAME_ONLY("Q4_2"),
    [5] = NAME_ONLY("Q4_3"),
    [LFM2_TYPE_Q5_0] = BLOCK("Q5_0", QK5_0, sizeof(block_q5_0), true, LFM2_ACT_Q8_0, dq_q5_0, q_q5_0),
    [LFM2_TYPE_Q5_1] = BLOCK("Q5_1", QK5_1, sizeof(block_q5_1), true, LFM2_ACT_Q8_1, dq_q5_1, q_q5_1),
    [LFM2_TYPE_Q8_0] = BLOCK("Q8_0", QK8_0, sizeof(block_q8_0), true, LFM2_ACT_Q8_0, dq_q8_0, q_q8_0),
    /* activation formats only */
    [LFM2_TYPE_Q8_1] = BLOCK("Q8_1", QK8_1, sizeof(block_q8_1), false, -1, NULL, NULL),
    [10] = NAME_ONLY("Q2_K"),
    [11] = NAME_ONLY("Q3_K"),
    [LFM2_TYPE_Q4_K] = BLOCK("Q4_K", QK_K, sizeof(block_q4_K), true, LFM2_ACT_Q8_K, dq_q4_K, q_q4_K),
    [LFM2_TYPE_Q5_K] = BLOCK("Q5_K", QK_K, sizeof(block_q5_K), true, LFM2_ACT_Q8_K, dq_q5_K, q_q5_K),
    [LFM2_TYPE_Q6_K] = BLOCK("Q6_K", QK_K, sizeof(block_q6_K), true, LFM2_ACT_Q8_K, dq_q6_K, q_q6_K),
    [LFM2_TYPE_Q8_K] = BLOCK("Q8_K", QK_K, sizeof(block_q8_K), false, -1, dq_q8_K, lfm2_quantize_row_q8_K),
    [16] = NAME_ONLY("IQ2_XXS"), [17] = NAME_ONLY("IQ2_XS"), [18] = NAME_ONLY("IQ3_XXS"),
    [19] = NAME_ONLY("IQ1_S"), [20] = NAME_ONLY("IQ4_NL"), [21] = NAME_ONLY("IQ3_S"),
    [22] = NAME_ONLY("IQ2_S"), [23] = NAME_ONLY("IQ4_XS"), [24] = NAME_ONLY("I8"),
    [25] = NAME_ONLY("I16"), [26] = NAME_ONLY("I32"), [27] = NAME_ONLY("I64"),
    [28] = NAME_ONLY("F64"), [29] = NAME_ONLY("IQ1_M"),
    [LFM2_TYPE_BF16] = BLOCK("BF16", 1, 2, true, LFM2_ACT_BF16, dq_bf16, q_bf16),
    [31] = NAME_ONLY("Q4_0_4_4"), [32] = NAME_ONLY("Q4_0_4_8"), [33] = NAME_ONLY("Q4_0_8_8"),
    [34] = NAME_ONLY("TQ1_0"), [35] = NAME_ONLY("TQ2_0"), [36] = NAME_ONLY("IQ4_NL_4_4"),
    [37] = NAME_ONLY("IQ4_NL_4_8"), [38] = NAME_ONLY("IQ4_NL_8_8"), [39] = NAME_ONLY("MXFP4"),
    [40] = NAME_ONLY("NVFP4"), [41] = NAME_ONLY("Q1_0"), [42] = NAME_ONLY("Q2_0"),
};

/* the block type each activation format is stored in */
static const enum lfm2_type k_act_type[LFM2_ACT_COUNT] = {
    [LFM2_ACT_F32] = LFM2_TYPE_F32, [LFM2_ACT_F16] = LFM2_TYPE_F16, [LFM2_ACT_BF16] = LFM2_TYPE_BF16,
    [LFM2_ACT_Q8_0] = LFM2_TYPE_Q8_0, [LFM2_ACT_Q8_1] = LFM2_TYPE_Q8_1, [LFM2_ACT_Q8_K] = LFM2_TYPE_Q8_K,
};

const struct lfm2_type_traits *lfm2_type_traits(uint32_t type)
{
    static const struct lfm2_type_traits none = NAME_ONLY(NULL);
    return type < sizeof k_traits / sizeof k_traits[0] ? &k_traits[type] : &none;
}

size_t lfm2_act_row_bytes(enum lfm2_act act, int64_t k)
{
    return lfm2_row_bytes(k_act_type[act], k);
}

int lfm2_act_block(enum lfm2_act act)
{
    return k_traits[k_act_type[act]].blck;
}

/* the type facts of lfm2-gguf.h */

bool lfm2_type_supported(uint32_t type)
{
    return lfm2_type_traits(type)->weight;
}

const char *lfm2_type_name(uint32_t type)
{
    static _Thread_local char buf[24];
    const char *name = lfm2_type_traits(type)->name;
    if (name)
        return name;
    snprintf(buf, sizeof buf, "type %" PRIu32, type);
    return buf;
}

int lfm2_type_block_elems(enum lfm2_type type)
{
    return lfm2_type_traits(type)->blck;
}

int lfm2_type_block_bytes(enum lfm2_type type)
{
    return lfm2_type_traits(type)->bytes;
}

size_t lfm2_row_bytes(enum lfm2_type type, int64_t n)
{
    const struct lfm2_type_traits *tt = lfm2_type_traits(type);
    if (tt->blck <= 0 || n < 0)
        return 0;
    return (size_t)(n / tt->blck) * (size_t)tt->bytes;
}

void lfm2_dequantize_row(enum lfm2_type type, const void *src, float *dst, int64_t n)
{
    const struct lfm2_type_traits *tt = lfm2_type_traits(type);
    if (tt->to_float)
        tt->to_float(src, dst, n);
    else   /* unsupported types never get past the GGUF reader; zero rather than read garbage */
        memset(dst, 0, (size_t)n * sizeof(float));
}

size_t lfm2_quantize_row(enum lfm2_type type, const float *src, void *dst, int64_t n)
{
    const struct lfm2_type_traits *tt = lfm2_type_traits(type);
    if (!tt->from_float)
        return 0;
    tt->from_float(src, dst, n);
    return lfm2_row_bytes(type, n);
}
