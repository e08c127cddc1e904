/* simd-impl.h — float kernels written once with GCC vector extensions and compiled per path
 * (included by scalar.c, avx2.c and avx512.c after defining SIMD_BYTES = 16, 32 or 64 and
 * SIMD_SUFFIX). The compiler maps the vector type to SSE2, AVX2 or AVX-512 registers.
 *
 *   vexp        e^x to ~2 ulp (Cody-Waite reduction, Cephes polynomial); exactly 0 below
 *               −87.3 so masked scores (−inf) give zero weight
 *   silu_mul    out = x/(1 + e^−x) · u (u may be NULL)
 *   attention   one (head, query block) of online-softmax attention: scores for a block of
 *               queries against a block of keys from a transposed K tile, exp, P·V
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define VL (SIMD_BYTES / 4)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define SFX(name) CAT(name, SIMD_SUFFIX)

typedef float vf __attribute__((vector_size(SIMD_BYTES)));
typedef int32_t vi __attribute__((vector_size(SIMD_BYTES)));

static inline vf SFX(vload)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void SFX(vstore)(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf SFX(vsplat)(float x) { return (vf){ 0 } + x; }

/* select: m ? a : b  (m lanes all ones or zero) */
static inline vf SFX(vsel)(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

static inline vf SFX(vexp)(vf x)
{
    const vf hi = SFX(vsplat)(88.3762626647949f), lo = SFX(vsplat)(-87.3365447505531f);
    const vi under = x < lo;
    x = SFX(vsel)(x > hi, hi, x);
    x = SFX(vsel)(under, lo, x);
    /* n = round(x / ln 2) with the 1.5·2^23 trick (|x / ln 2| < 2^22) */
    const vf magic = SFX(vsplat)(12582912.0f);
    vf n = x * 1.44269504088896341f + magic;
    n = n - magic;
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf p = SFX(vsplat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return SFX(vsel)(under, SFX(vsplat)(0.0f), p * (vf)e);
}

static void SFX(silu_mul)(float *out, const float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vf x = SFX(vload)(g + i);
        vf y = x / (1.0f + SFX(vexp)(-x));
        if (u)
            y = y * SFX(vload)(u + i);
        SFX(vstore)(out + i, y);
    }
    for (; i < n; i++) {
        const float y = g[i] / (1.0f + expf(-g[i]));
        out[i] = u ? y * u[i] : y;
    }
}

/* y[i] = e^(x[i] − sub); returns Σ y (accumulated in float lanes, then double) */
static double SFX(exp_sub_sum)(float *y, const float *x, float sub, int64_t n)
{
    vf acc = SFX(vsplat)(0.0f);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const vf e = SFX(vexp)(SFX(vload)(x + i) - sub);
        SFX(vstore)(y + i, e);
        acc += e;
    }
    double s = 0;
    for (int l = 0; l < VL; l++)
        s += acc[l];
    for (; i < n; i++)
        s += (y[i] = expf(x[i] - sub));
    return s;
}

static inline float SFX(vhsum)(vf v)
{
#if VL == 16
    v += __builtin_shuffle(v, (vi){ 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7 });
    v += __builtin_shuffle(v, (vi){ 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11 });
    v += __builtin_shuffle(v, (vi){ 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13 });
    v += __builtin_shuffle(v, (vi){ 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14 });
#elif VL == 8
    v += __builtin_shuffle(v, (vi){ 4, 5, 6, 7, 0, 1, 2, 3 });
    v += __builtin_shuffle(v, (vi){ 2, 3, 0, 1, 6, 7, 4, 5 });
    v += __builtin_shuffle(v, (vi){ 1, 0, 3, 2, 5, 4, 7, 6 });
#elif VL == 4
    v += __builtin_shuffle(v, (vi){ 2, 3, 0, 1 });
    v += __builtin_shuffle(v, (vi){ 1, 0, 3, 2 });
#else
    for (int l = 1; l < VL; l++)
        v[0] += v[l];
#endif
    return v[0];
}

static inline float SFX(vdot)(const float *a, const float *b, int n)
{
    vf acc0 = SFX(vsplat)(0.0f), acc1 = acc0;
    int d = 0;
    for (; d + 2 * VL <= n; d += 2 * VL) {
        acc0 += SFX(vload)(a + d) * SFX(vload)(b + d);
        acc1 += SFX(vload)(a + d + VL) * SFX(vload)(b + d + VL);
    }
    for (; d + VL <= n; d += VL)
        acc0 += SFX(vload)(a + d) * SFX(vload)(b + d);
    float s = SFX(vhsum)(acc0 + acc1);
    for (; d < n; d++)
        s += a[d] * b[d];
    return s;
}

/* ---- attention ----
 * Work item: head h, query rows [i0, i1) (at most ATT_QB = 16). Two shapes:
 *  - a full block (≥ VL queries): the queries sit in the vector lanes. Q is transposed once
 *    (qt[d] = 16 queries' component d), each key row is read contiguously and broadcast, so a
 *    key's 16 scores are hd FMAs with no horizontal sum, and the online softmax (running max,
 *    exp, sums, masks) runs across lanes. Output accumulates transposed (ot[d]).
 *  - a few queries (decode): per-query dot products over d, then e^ and P·V row updates. */

#ifndef ATT_QB
#define ATT_QB 16
#define ATT_KB 64
#endif
#define ATT_NV (ATT_QB / VL)   /* vectors per query block */

static size_t SFX(attn_scratch_floats)(int hd)
{
    return (size_t)hd * ATT_QB /* qt */ + (size_t)hd * ATT_QB /* ot */ +
           (size_t)ATT_KB * ATT_QB /* s */ + (size_t)ATT_QB * (hd + 4) + 8 * VL;
}

/* few queries: direct dot products */
static void SFX(attn_rows)(const struct lfm2_attn_args *a, int h, int i0, int i1, float *scratch)
{
    const int hd = a->head_dim;
    const int g = h / (a->n_head / a->n_head_kv);
    const float *kb = a->k + (int64_t)g * hd, *vb = a->v + (int64_t)g * hd;
    float *s = scratch, *o = s + ATT_KB;
    for (int i = i0; i < i1; i++) {
        const int64_t pos = (int64_t)a->q_pos0 + i;
        int64_t h1 = a->n_kv, l1 = 0;
        if (a->causal && pos + 1 < h1) h1 = pos + 1;
        if (a->window > 0 && pos - a->window + 1 > l1) l1 = pos - a->window + 1;
        if (h1 < 0) h1 = 0;
        if (l1 > h1) l1 = h1;
        const float *q = a->q + (int64_t)i * a->ldq + (int64_t)h * hd;
        float m = -INFINITY, l = 0.0f;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int64_t j0 = l1; j0 < h1; j0 += ATT_KB) {
            const int nk = h1 - j0 < ATT_KB ? (int)(h1 - j0) : ATT_KB;
            float bm = -INFINITY;
            for (int j = 0; j < nk; j++) {
                s[j] = SFX(vdot)(q, kb + (j0 + j) * a->ldk, hd) * a->scale;
                bm = s[j] > bm ? s[j] : bm;
            }
            if (bm > m) {
                const float c = expf(m - bm);
                l *= c;
                for (int d = 0; d < hd; d++)
                    o[d] *= c;
                m = bm;
            }
            l += (float)SFX(exp_sub_sum)(s, s, m, nk);
            for (int j = 0; j < nk; j++) {
                const float p = s[j];
                const float *vr = vb + (j0 + j) * a->ldv;
                int d = 0;
                for (; d + VL <= hd; d += VL)
                    SFX(vstore)(o + d, SFX(vload)(o + d) + p * SFX(vload)(vr + d));
                for (; d < hd; d++)
                    o[d] += p * vr[d];
            }
        }
        float *out = a->out + (int64_t)i * a->ldo + (int64_t)h * hd;
        const float inv = l > 0 ? 1.0f / l : 0.0f;
        for (int d = 0; d < hd; d++)
            out[d] = o[d] * inv;
    }
}

static void SFX(attn_block)(const struct lfm2_attn_args *a, int h, int i0, int i1, float *scratch)
{
    const int hd = a->head_dim, nq = i1 - i0;
    if (nq < VL || nq < 4) {
        SFX(attn_rows)(a, h, i0, i1, scratch);
        return;
    }
    const int g = h / (a->n_head / a->n_head_kv);
    const float *kb = a->k + (int64_t)g * hd, *vb = a->v + (int64_t)g * hd;
    float *qt = scratch, *ot = qt + (size_t)hd * ATT_QB, *st = ot + (size_t)hd * ATT_QB;

    /* per-lane key bounds [lo, hi) as floats (exact for any realistic context) */
    float lo_f[ATT_QB], hi_f[ATT_QB];
    int lo_all = a->n_kv, hi_all = 0;
    for (int q = 0; q < ATT_QB; q++) {
        int64_t h1 = 0, l1 = 0;
        if (q < nq) {
            const int64_t pos = (int64_t)a->q_pos0 + i0 + q;
            h1 = a->n_kv;
            if (a->causal && pos + 1 < h1) h1 = pos + 1;
            if (a->window > 0 && pos - a->window + 1 > l1) l1 = pos - a->window + 1;
            if (h1 < 0) h1 = 0;
            if (l1 > h1) l1 = h1;
            if (l1 < lo_all) lo_all = (int)l1;
            if (h1 > hi_all) hi_all = (int)h1;
        }
        lo_f[q] = (float)l1;
        hi_f[q] = (float)h1;   /* padding lanes: empty range */
    }
    for (int d = 0; d < hd; d++)
        for (int q = 0; q < ATT_QB; q++)
            qt[d * ATT_QB + q] = q < nq ? a->q[(int64_t)(i0 + q) * a->ldq + (int64_t)h * hd + d] * a->scale : 0.0f;
    memset(ot, 0, (size_t)hd * ATT_QB * sizeof(float));

    vf m[ATT_NV], l[ATT_NV], lov[ATT_NV], hiv[ATT_NV];
    for (int v = 0; v < ATT_NV; v++) {
        m[v] = SFX(vsplat)(-INFINITY);
        l[v] = SFX(vsplat)(0.0f);
        lov[v] = SFX(vload)(lo_f + v * VL);
        hiv[v] = SFX(vload)(hi_f + v * VL);
    }
    const vf ninf = SFX(vsplat)(-INFINITY);

    for (int j0 = lo_all; j0 < hi_all; j0 += ATT_KB) {
        const int nk = hi_all - j0 < ATT_KB ? hi_all - j0 : ATT_KB;
        /* scores: st[j][q] = Σ_d qt[d][q]·k[j0+j][d], four keys per pass over d */
        int j = 0;
        for (; j + 4 <= nk; j += 4) {
            const float *k0 = kb + (int64_t)(j0 + j) * a->ldk;
            const float *k1 = k0 + a->ldk, *k2 = k1 + a->ldk, *k3 = k2 + a->ldk;
            vf acc[4][ATT_NV];
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < ATT_NV; v++)
                    acc[r][v] = SFX(vsplat)(0.0f);
            for (int d = 0; d < hd; d++) {
                for (int v = 0; v < ATT_NV; v++) {
                    const vf qv = SFX(vload)(qt + d * ATT_QB + v * VL);
                    acc[0][v] += qv * k0[d];
                    acc[1][v] += qv * k1[d];
                    acc[2][v] += qv * k2[d];
                    acc[3][v] += qv * k3[d];
                }
            }
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < ATT_NV; v++)
                    SFX(vstore)(st + (j + r) * ATT_QB + v * VL, acc[r][v]);
        }
        for (; j < nk; j++) {
            const float *k0 = kb + (int64_t)(j0 + j) * a->ldk;
            for (int v = 0; v < ATT_NV; v++) {
                vf acc = SFX(vsplat)(0.0f);
                for (int d = 0; d < hd; d++)
                    acc += SFX(vload)(qt + d * ATT_QB + v * VL) * k0[d];
                SFX(vstore)(st + j * ATT_QB + v * VL, acc);
            }
        }
        /* mask, block max, rescale, exponentiate */
        for (int v = 0; v < ATT_NV; v++) {
            vf bm = ninf;
            for (int jj = 0; jj < nk; jj++) {
                const vf pos = SFX(vsplat)((float)(j0 + jj));
                const vi ok = (pos >= lov[v]) & (pos < hiv[v]);
                vf sv = SFX(vload)(st + jj * ATT_QB + v * VL);
                sv = SFX(vsel)(ok, sv, ninf);
                SFX(vstore)(st + jj * ATT_QB + v * VL, sv);
                bm = SFX(vsel)(sv > bm, sv, bm);
            }
            const vf mn = SFX(vsel)(bm > m[v], bm, m[v]);
            /* lanes still without any key keep factor 1 (avoids e^(−inf − −inf)) */
            const vf c = SFX(vsel)(mn == ninf, SFX(vsplat)(1.0f), SFX(vexp)(m[v] - mn));
            l[v] *= c;
            for (int d = 0; d < hd; d++)
                SFX(vstore)(ot + d * ATT_QB + v * VL, SFX(vload)(ot + d * ATT_QB + v * VL) * c);
            vf sum = SFX(vsplat)(0.0f);
            const vf msub = SFX(vsel)(mn == ninf, SFX(vsplat)(0.0f), mn);
            for (int jj = 0; jj < nk; jj++) {
                const vf p = SFX(vexp)(SFX(vload)(st + jj * ATT_QB + v * VL) - msub);
                SFX(vstore)(st + jj * ATT_QB + v * VL, p);
                sum += p;
            }
            l[v] += sum;
            m[v] = mn;
        }
        /* ot[d][q] += Σ_j v[j0+j][d]·p[j][q], four d per pass over the keys */
        int d = 0;
        for (; d + 4 <= hd; d += 4) {
            vf acc[4][ATT_NV];
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < ATT_NV; v++)
                    acc[r][v] = SFX(vload)(ot + (d + r) * ATT_QB + v * VL);
            for (int jj = 0; jj < nk; jj++) {
                const float *vr = vb + (int64_t)(j0 + jj) * a->ldv + d;
                for (int v = 0; v < ATT_NV; v++) {
                    const vf p = SFX(vload)(st + jj * ATT_QB + v * VL);
                    acc[0][v] += p * vr[0];
                    acc[1][v] += p * vr[1];
                    acc[2][v] += p * vr[2];
                    acc[3][v] += p * vr[3];
                }
            }
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < ATT_NV; v++)
                    SFX(vstore)(ot + (d + r) * ATT_QB + v * VL, acc[r][v]);
        }
        for (; d < hd; d++) {
            for (int v = 0; v < ATT_NV; v++) {
                vf acc = SFX(vload)(ot + d * ATT_QB + v * VL);
                for (int jj = 0; jj < nk; jj++)
                    acc += SFX(vload)(st + jj * ATT_QB + v * VL) * vb[(int64_t)(j0 + jj) * a->ldv + d];
                SFX(vstore)(ot + d * ATT_QB + v * VL, acc);
            }
        }
    }
    float inv[ATT_QB];
    for (int v = 0; v < ATT_NV; v++) {
        const vf iv = SFX(vsel)(l[v] > 0.0f, 1.0f / l[v], SFX(vsplat)(0.0f));
        SFX(vstore)(inv + v * VL, iv);
    }
    for (int q = 0; q < nq; q++) {
        float *out = a->out + (int64_t)(i0 + q) * a->ldo + (int64_t)h * hd;
        for (int d = 0; d < hd; d++)
            out[d] = ot[d * ATT_QB + q] * inv[q];
    }
}
