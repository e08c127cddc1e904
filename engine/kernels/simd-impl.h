/* simd-impl.h — float kernels written once with GCC vector extensions and compiled per path
 * (included by scalar.c, avx2.c and avx512.c after defining SIMD_BYTES = 16, 32 or 64 and
 * SIMD_SUFFIX). The compiler maps the vector type to SSE2, AVX2 or AVX-512 registers.
 *
 *   vexp        e^x to ~2 ulp (Cody-Waite reduction, Cephes polynomial); exactly 0 below
 *               −87.3 so masked scores (−inf) give zero weight
 *   silu_mul    out = x/(1 + e^−x) · u (u may be NULL)
 *   attention   one (head, query block) of online-softmax attention: scores for a block of
 *               queries against a block of keys from a transposed K tile, exp, P·V
 *   biatt_*     encoder attention register tiles over transposed key blocks (32 and 64
 *               bytes only: the scalar path runs attn_block)
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
typedef uint32_t vu __attribute__((vector_size(SIMD_BYTES)));

static inline vf SFX(vload)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void SFX(vstore)(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* x in every lane: x − 0 is x for every x (−0 and NaN included), so the compiler folds it to
 * a broadcast, where 0 + x would need an add (0 + −0 is +0) */
static inline vf SFX(vsplat)(float x) { return x - (vf){ 0 }; }

/* select: m ? a : b  (m lanes all ones or zero) */
static inline vf SFX(vsel)(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

static inline vf SFX(vexp)(vf x)
{
    const vf hi = SFX(vsplat)(88.3762626647949f), lo = SFX(vsplat)(-87.3365447505531f);
    const vi under = x < lo;
    x = SFX(vsel)(x > hi, hi, x);
    x = SFX(vsel)(under, lo, x);
    /* n = round(x / ln 2) with the 1.5·2^23 trick (|x / ln 2| < 2^22); 2^n is built from
     * the bits of t, so no input (NaN included) goes through a float-to-int conversion */
    const vf magic = SFX(vsplat)(12582912.0f);
    const vf t = x * 1.44269504088896341f + magic;
    const vf n = t - magic;
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf p = SFX(vsplat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const vu e = ((vu)t - (vu)magic + 127) << 23;
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

/* y *= s (one rounding per element: the same on every path) */
static void SFX(scale_f32)(float *y, float s, int64_t n)
{
    int64_t i = 0;
    for (; i + VL <= n; i += VL)
        SFX(vstore)(y + i, SFX(vload)(y + i) * s);
    for (; i < n; i++)
        y[i] *= s;
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
 * One computation per (query, head), whatever else is in the batch, so a prompt processed in
 * one call and token by token give identical results:
 *   keys in blocks [64c, 64c + 64) (aligned, independent of the batch), for each block:
 *     s_j = scale · dot(q, k_j)     dot: VL lane partials over d in order, fixed tree
 *     m' = max(m, max s_j), p_j = e^(s_j − m'), rescale l and o by e^(m − m')
 *     l += Σ p_j (lane partials from the query's first key of the block, fixed tree)
 *     o += p_j · v_j  (elementwise, keys in order)
 *   out = o / l
 * The queries of a work item share each key block from L1. */

#ifndef ATT_QB
#define ATT_QB 16
#define ATT_KB 32
#endif

/* scratch for one work item: K and V block copies, o, s, m, l for `grp` heads */
static size_t SFX(attn_scratch_floats)(int hd, int grp)
{
    return 2 * (size_t)ATT_KB * hd + (size_t)grp * ATT_QB * hd + ATT_KB + 2 * (size_t)grp * ATT_QB + 4 * VL;
}

/* Σ x[0..n) as VL lane partials (zero padded) and the fixed tree */
static inline float SFX(vsum)(const float *x, int n)
{
    vf acc = SFX(vsplat)(0.0f);
    int i = 0;
    for (; i + VL <= n; i += VL)
        acc += SFX(vload)(x + i);
    if (i < n) {
        float t[VL] = { 0 };
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        acc += SFX(vload)(t);
    }
    return SFX(vhsum)(acc);
}

/* dot over d: one accumulator, chunks in order, zero-padded tail, fixed tree */
static inline float SFX(vdot1)(const float *a, const float *b, int n)
{
    vf acc = SFX(vsplat)(0.0f);
    int d = 0;
    for (; d + VL <= n; d += VL)
        acc += SFX(vload)(a + d) * SFX(vload)(b + d);
    if (d < n) {
        float ta[VL] = { 0 }, tb[VL] = { 0 };
        memcpy(ta, a + d, (size_t)(n - d) * sizeof(float));
        memcpy(tb, b + d, (size_t)(n - d) * sizeof(float));
        acc += SFX(vload)(ta) * SFX(vload)(tb);
    }
    return SFX(vhsum)(acc);
}

/* Σ (x_i·x_i) with each product rounded to float (as ggml's RMS norm), summed in double
 * lanes: the order differs from a sequential sum only at double precision. */
typedef float vfh __attribute__((vector_size(SIMD_BYTES / 2)));
typedef double vd __attribute__((vector_size(SIMD_BYTES)));

static double SFX(sumsq)(const float *x, int64_t n)
{
    vd a0 = { 0 }, a1 = { 0 };
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vfh h0, h1;
        memcpy(&h0, x + i, sizeof h0);
        memcpy(&h1, x + i + VL / 2, sizeof h1);
        a0 += __builtin_convertvector(h0 * h0, vd);
        a1 += __builtin_convertvector(h1 * h1, vd);
    }
    a0 += a1;
    double s = 0;
    for (int l = 0; l < VL / 2; l++)
        s += a0[l];
    for (; i < n; i++)
        s += (double)(x[i] * x[i]);
    return s;
}

/* VL vectors → one vector whose lane j is vhsum(v[j]), with the same pairings as vhsum
 * (lane i + lane i+VL/2, then i + VL/4, …), so the sums are identical to VL vhsum calls. */
static inline vf SFX(vhsum_many)(vf *v)
{
#if VL == 16
    const vi a1 = { 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23 };
    const vi b1 = { 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31 };
    const vi a2 = { 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27 };
    const vi b2 = { 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31 };
    const vi a3 = { 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29 };
    const vi b3 = { 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31 };
    const vi a4 = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 };
    const vi b4 = { 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31 };
    vf l1[8], l2[4], l3[2];
    for (int i = 0; i < 8; i++)
        l1[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], a1) + __builtin_shuffle(v[2 * i], v[2 * i + 1], b1);
    for (int i = 0; i < 4; i++)
        l2[i] = __builtin_shuffle(l1[2 * i], l1[2 * i + 1], a2) + __builtin_shuffle(l1[2 * i], l1[2 * i + 1], b2);
    for (int i = 0; i < 2; i++)
        l3[i] = __builtin_shuffle(l2[2 * i], l2[2 * i + 1], a3) + __builtin_shuffle(l2[2 * i], l2[2 * i + 1], b3);
    return __builtin_shuffle(l3[0], l3[1], a4) + __builtin_shuffle(l3[0], l3[1], b4);
#elif VL == 8
    const vi a1 = { 0, 1, 2, 3, 8, 9, 10, 11 }, b1 = { 4, 5, 6, 7, 12, 13, 14, 15 };
    const vi a2 = { 0, 1, 4, 5, 8, 9, 12, 13 }, b2 = { 2, 3, 6, 7, 10, 11, 14, 15 };
    const vi a3 = { 0, 2, 4, 6, 8, 10, 12, 14 }, b3 = { 1, 3, 5, 7, 9, 11, 13, 15 };
    vf l1[4], l2[2];
    for (int i = 0; i < 4; i++)
        l1[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], a1) + __builtin_shuffle(v[2 * i], v[2 * i + 1], b1);
    for (int i = 0; i < 2; i++)
        l2[i] = __builtin_shuffle(l1[2 * i], l1[2 * i + 1], a2) + __builtin_shuffle(l1[2 * i], l1[2 * i + 1], b2);
    return __builtin_shuffle(l2[0], l2[1], a3) + __builtin_shuffle(l2[0], l2[1], b3);
#elif VL == 4
    const vi a1 = { 0, 1, 4, 5 }, b1 = { 2, 3, 6, 7 };
    const vi a2 = { 0, 2, 4, 6 }, b2 = { 1, 3, 5, 7 };
    const vf l0 = __builtin_shuffle(v[0], v[1], a1) + __builtin_shuffle(v[0], v[1], b1);
    const vf l1 = __builtin_shuffle(v[2], v[3], a1) + __builtin_shuffle(v[2], v[3], b1);
    return __builtin_shuffle(l0, l1, a2) + __builtin_shuffle(l0, l1, b2);
#else
    vf r;
    for (int j = 0; j < VL; j++)
        r[j] = SFX(vhsum)(v[j]);
    return r;
#endif
}

/* s[j] = scale · vdot1(q, k_j) for nk keys (rows of k with stride ldk), VL keys at a time */
static inline void SFX(scores)(const float *q, const float *k, int64_t ldk, int nk, int hd,
                               float scale, float *s)
{
    int j = 0;
    for (; j + VL <= nk; j += VL) {
        vf acc[VL];
        for (int r = 0; r < VL; r++)
            acc[r] = SFX(vsplat)(0.0f);
        int d = 0;
        for (; d + VL <= hd; d += VL) {
            const vf qc = SFX(vload)(q + d);
            for (int r = 0; r < VL; r++)
                acc[r] += qc * SFX(vload)(k + (int64_t)(j + r) * ldk + d);
        }
        if (d < hd) {   /* zero-padded tail chunk, as vdot1 */
            float tq[VL] = { 0 };
            memcpy(tq, q + d, (size_t)(hd - d) * sizeof(float));
            const vf qc = SFX(vload)(tq);
            for (int r = 0; r < VL; r++) {
                float tk[VL] = { 0 };
                memcpy(tk, k + (int64_t)(j + r) * ldk + d, (size_t)(hd - d) * sizeof(float));
                acc[r] += qc * SFX(vload)(tk);
            }
        }
        SFX(vstore)(s + j, SFX(vhsum_many)(acc) * scale);
    }
    for (; j < nk; j++)
        s[j] = SFX(vdot1)(q, k + (int64_t)j * ldk, hd) * scale;
}

static inline float SFX(sexp)(float x)
{
    return SFX(vexp)(SFX(vsplat)(x))[0];
}

/* Work item: kv head g (its grp query heads) × query rows [i0, i1). */
static void SFX(attn_block)(const struct lfm2_attn_args *a, int g, int i0, int i1, float *scratch)
{
    const int hd = a->head_dim, nq = i1 - i0;
    const int grp = a->n_head / a->n_head_kv;
    const int nr = grp * nq;   /* (head, query) rows of this item */
    float *kc = scratch, *vc = kc + (size_t)ATT_KB * hd, *o = vc + (size_t)ATT_KB * hd;
    float *s = o + (size_t)nr * hd, *m = s + ATT_KB, *l = m + nr;
    /* Enough rows share a key block: copy it (the cache rows hold every kv head, so the
     * block's slices sit 2 KiB apart and fight over a few L1 sets); else read in place. */
    const bool copy = nr >= 4;

    int lo[ATT_QB], hi[ATT_QB];
    int lo_all = a->n_kv, hi_all = 0;
    for (int i = 0; i < nq; i++) {
        const int64_t pos = (int64_t)a->q_pos0 + i0 + i;
        int64_t h1 = a->n_kv, l1 = 0;
        if (a->causal && pos + 1 < h1) h1 = pos + 1;
        if (a->window > 0 && pos - a->window + 1 > l1) l1 = pos - a->window + 1;
        if (h1 < 0) h1 = 0;
        if (l1 > h1) l1 = h1;
        lo[i] = (int)l1;
        hi[i] = (int)h1;
        if (lo[i] < lo_all) lo_all = lo[i];
        if (hi[i] > hi_all) hi_all = hi[i];
    }
    for (int r = 0; r < nr; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, (size_t)nr * hd * sizeof(float));

    for (int j0 = lo_all / ATT_KB * ATT_KB; j0 < hi_all; j0 += ATT_KB) {
        const int j1 = j0 + ATT_KB < a->n_kv ? j0 + ATT_KB : a->n_kv;
        const float *kb, *vb;
        int64_t ldk, ldv;
        if (copy) {
            const int jc_lo = lo_all > j0 ? lo_all : j0, jc_hi = hi_all < j1 ? hi_all : j1;
            for (int j = jc_lo; j < jc_hi; j++) {
                memcpy(kc + (size_t)(j - j0) * hd, a->k + (int64_t)j * a->ldk + (int64_t)g * hd, (size_t)hd * sizeof(float));
                memcpy(vc + (size_t)(j - j0) * hd, a->v + (int64_t)j * a->ldv + (int64_t)g * hd, (size_t)hd * sizeof(float));
            }
            kb = kc - (int64_t)j0 * hd;
            vb = vc - (int64_t)j0 * hd;
            ldk = ldv = hd;
        } else {
            kb = a->k + (int64_t)g * hd;
            vb = a->v + (int64_t)g * hd;
            ldk = a->ldk;
            ldv = a->ldv;
        }
        for (int r = 0; r < nr; r++) {
            const int hh = r / nq, i = r % nq, h = g * grp + hh;
            const int jl = lo[i] > j0 ? lo[i] : j0, jh = hi[i] < j1 ? hi[i] : j1;
            if (jl >= jh)
                continue;
            const float *q = a->q + (int64_t)(i0 + i) * a->ldq + (int64_t)h * hd;
            const int nk = jh - jl;
            SFX(scores)(q, kb + (int64_t)jl * ldk, ldk, nk, hd, a->scale, s);
            float bm = -INFINITY;
            for (int j = 0; j < nk; j++)
                bm = s[j] > bm ? s[j] : bm;
            float *oi = o + (size_t)r * hd;
            if (bm > m[r]) {   /* rescale what was accumulated under the old maximum */
                const float c = SFX(sexp)(m[r] - bm);   /* e^−inf = 0: nothing accumulated yet */
                l[r] *= c;
                int d = 0;
                for (; d + VL <= hd; d += VL)
                    SFX(vstore)(oi + d, SFX(vload)(oi + d) * c);
                for (; d < hd; d++)
                    oi[d] *= c;
                m[r] = bm;
            }
            const float mi = m[r];
            int j = 0;
            for (; j + VL <= nk; j += VL)
                SFX(vstore)(s + j, SFX(vexp)(SFX(vload)(s + j) - mi));
            for (; j < nk; j++)
                s[j] = SFX(sexp)(s[j] - mi);
            l[r] += SFX(vsum)(s, nk);
            /* o += p_j·v_j, keys in order; four vectors of d per pass keep o in registers */
            int d = 0;
            for (; d + 4 * VL <= hd; d += 4 * VL) {
                vf o0 = SFX(vload)(oi + d), o1 = SFX(vload)(oi + d + VL);
                vf o2 = SFX(vload)(oi + d + 2 * VL), o3 = SFX(vload)(oi + d + 3 * VL);
                for (int jj = 0; jj < nk; jj++) {
                    const float *vr = vb + (int64_t)(jl + jj) * ldv + d;
                    const float p = s[jj];
                    o0 += p * SFX(vload)(vr);
                    o1 += p * SFX(vload)(vr + VL);
                    o2 += p * SFX(vload)(vr + 2 * VL);
                    o3 += p * SFX(vload)(vr + 3 * VL);
                }
                SFX(vstore)(oi + d, o0);
                SFX(vstore)(oi + d + VL, o1);
                SFX(vstore)(oi + d + 2 * VL, o2);
                SFX(vstore)(oi + d + 3 * VL, o3);
            }
            for (; d + VL <= hd; d += VL) {
                vf o0 = SFX(vload)(oi + d);
                for (int jj = 0; jj < nk; jj++)
                    o0 += s[jj] * SFX(vload)(vb + (int64_t)(jl + jj) * ldv + d);
                SFX(vstore)(oi + d, o0);
            }
            for (; d < hd; d++) {
                float od = oi[d];
                for (int jj = 0; jj < nk; jj++)
                    od += s[jj] * vb[(int64_t)(jl + jj) * ldv + d];
                oi[d] = od;
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        const int hh = r / nq, i = r % nq, h = g * grp + hh;
        float *out = a->out + (int64_t)(i0 + i) * a->ldo + (int64_t)h * hd;
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int d = 0; d < hd; d++)
            out[d] = o[(size_t)r * hd + d] * inv;
    }
}

#if VL >= 8
/* bf16 activations: round to nearest even on the bit pattern, NaN made quiet — exactly
 * lfm2_fp32_to_bf16 (VCVTNEPS2BF16 would flush denormals). Not on the scalar path, which
 * keeps the reference loop. */
typedef uint16_t vh16 __attribute__((vector_size(SIMD_BYTES / 2)));

static void SFX(act_bf16)(const float *x, void *vy, int64_t k)
{
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + VL <= k; i += VL) {
        vu u;
        memcpy(&u, x + i, sizeof u);
        const vu nan = (vu)(((vi)u & 0x7fffffff) > 0x7f800000);
        const vu r = (u + 0x7fff + ((u >> 16) & 1)) >> 16, q = (u >> 16) | 64;
        const vh16 h = __builtin_convertvector((q & nan) | (r & ~nan), vh16);
        memcpy(y + i, &h, sizeof h);
    }
    for (; i < k; i++)
        y[i] = lfm2_fp32_to_bf16(x[i]);
}
#endif

/* ---- encoder attention register tiles (ops.c: bidirectional attention) ----
 * 4 query rows × BIATT_NV vectors of keys (scores) or of head dimensions (P·V) per register
 * tile: 16 accumulators at 16 lanes, 8 at 8 lanes. Each output is one fused multiply-add
 * chain in key (or dimension) order. Not on the scalar path, which uses attn_block. */
#if VL >= 8
#define BIATT_NV (VL == 16 ? 4 : 2)
#define BIATT_W (BIATT_NV * VL)   /* keys or dimensions per tile: 64 or 16 */

static void SFX(biatt_scores)(const float *kt, int nkb, int hd, float scale, const float *const q[4],
                              float *const s[4])
{
    for (int b = 0; b < nkb; b++) {
        const float *kb = kt + (size_t)b * hd * LFM2_BIATT_KB;
        for (int j0 = 0; j0 < LFM2_BIATT_KB; j0 += BIATT_W) {
            vf acc[4][BIATT_NV];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < BIATT_NV; c++)
                    acc[r][c] = SFX(vsplat)(0.0f);
            for (int d = 0; d < hd; d++) {
                const float *kd = kb + (size_t)d * LFM2_BIATT_KB + j0;
                vf kv[BIATT_NV];
                for (int c = 0; c < BIATT_NV; c++)
                    kv[c] = SFX(vload)(kd + c * VL);
                for (int r = 0; r < 4; r++) {
                    const vf qd = SFX(vsplat)(q[r][d]);
                    for (int c = 0; c < BIATT_NV; c++)
                        acc[r][c] += qd * kv[c];
                }
            }
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < BIATT_NV; c++)
                    SFX(vstore)(s[r] + b * LFM2_BIATT_KB + j0 + c * VL, acc[r][c] * scale);
        }
    }
}

static void SFX(biatt_pv)(const float *v, int nkb, int hdp, float *const p[4], float *const o[4])
{
    for (int b = 0; b < nkb; b++) {
        const float *vb = v + (size_t)b * LFM2_BIATT_KB * hdp;
        for (int d0 = 0; d0 < hdp; d0 += BIATT_W) {
            const int nv = hdp - d0 >= BIATT_W ? BIATT_NV : (hdp - d0) / VL;
            vf acc[4][BIATT_NV];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < BIATT_NV; c++)
                    acc[r][c] = c < nv ? SFX(vload)(o[r] + d0 + c * VL) : SFX(vsplat)(0.0f);
            if (nv == BIATT_NV) {
                for (int jj = 0; jj < LFM2_BIATT_KB; jj++) {
                    const float *vr = vb + (size_t)jj * hdp + d0;
                    vf vv[BIATT_NV];
                    for (int c = 0; c < BIATT_NV; c++)
                        vv[c] = SFX(vload)(vr + c * VL);
                    for (int r = 0; r < 4; r++) {
                        const vf pr = SFX(vsplat)(p[r][b * LFM2_BIATT_KB + jj]);
                        for (int c = 0; c < BIATT_NV; c++)
                            acc[r][c] += pr * vv[c];
                    }
                }
            } else {   /* the last vectors of a head that is not a multiple of BIATT_W */
                for (int jj = 0; jj < LFM2_BIATT_KB; jj++) {
                    const float *vr = vb + (size_t)jj * hdp + d0;
                    for (int c = 0; c < nv; c++) {
                        const vf vc = SFX(vload)(vr + c * VL);
                        for (int r = 0; r < 4; r++)
                            acc[r][c] += SFX(vsplat)(p[r][b * LFM2_BIATT_KB + jj]) * vc;
                    }
                }
            }
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < nv; c++)
                    SFX(vstore)(o[r] + d0 + c * VL, acc[r][c]);
        }
    }
}

static float SFX(biatt_row_max)(const float *s, int n)
{
    vf m = SFX(vsplat)(-INFINITY);
    for (int j = 0; j < n; j += VL) {
        const vf v = SFX(vload)(s + j);
        m = SFX(vsel)(m > v, m, v);   /* MAXPS: the second operand unless the first is greater */
    }
    float r = m[0];
    for (int l = 1; l < VL; l++)
        r = m[l] > r ? m[l] : r;
    return r;
}
#endif

/* the table entries this file gives (struct lfm2_kernels) */
#define SIMD_IMPL_ENTRIES                                                                        \
    .silu_mul = SFX(silu_mul), .sumsq = SFX(sumsq), .exp_sub_sum = SFX(exp_sub_sum),             \
    .scale_f32 = SFX(scale_f32), .attn_block = SFX(attn_block),                                  \
    .attn_scratch = SFX(attn_scratch_floats)
#if VL >= 8
#define SIMD_IMPL_BIATT                                                                          \
    .biatt_scores = SFX(biatt_scores), .biatt_pv = SFX(biatt_pv), .biatt_row_max = SFX(biatt_row_max)
#endif
