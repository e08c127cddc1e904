/* encoder.c — the FastConformer encoder and the audio adapter of LFM2-Audio, one clip at a time,
 * top to bottom (T mel frames → T' = ceil(T/8) embeddings; C subsampling channels, D = d_model):
 *
 *   mel [128][T] ─ im2col 3×3 stride 2 ─ conv.0 (matrix 9 → C) + b ─ ReLU        s1 [T1][64][C]
 *   depthwise conv.2 3×3/2 + b ─ conv.3 (matrix C → C) + b ─ ReLU                 s2 [T2][32][C]
 *   depthwise conv.5 3×3/2 + b ─ conv.6 (matrix C → C) + b ─ ReLU                 s3 [T'][16][C]
 *   flatten (channel-major) ─ pre_encode.out (C·16 → D) + b                        x  [T'][D]
 *   n_layer × {                                                        (NeMo ConformerLayer)
 *     x += ½·FFN1(LN(x))                 FFN(z) = W2·SiLU(W1·z + b1) + b2
 *     x += Wo·MHSA_rel(LN(x)) + bo       Transformer-XL relative attention, below
 *     x += Conv(LN(x))                   pw1 → GLU → depthwise k=9 → folded BN → SiLU → pw2
 *     x += ½·FFN2(LN(x))
 *     x  = LN_out(x) }
 *   out = W3·GELU_erf(W1·LN(x) + b1) + b3                                          [T'][E]
 *
 * MHSA_rel, head h: q, k, v = Wq/k/v·z + b;  p = Wpos·P (no bias), P the sinusoid table of the
 * 2T'−1 relative offsets r = T'−1−m:  P[m][2i] = sin(r·ω_i), P[m][2i+1] = cos(r·ω_i),
 * ω_i = 10000^(−2i/W) with W = linear_pos's input width;
 *   score[i][j] = ((q_i + u_h)·k_j + (q_i + v_h)·p_{T'−1−i+j}) / sqrt(d_head),  softmax over j.
 *
 * Every product with a weight goes through lfm2_matmul(_bias/_multi) on weights prepared at
 * load; the attention products (q·k, q·p, weights·v) through lfm2_matmul on F32 views of the
 * activations, per head and block of queries, so no T'×T' matrix of all heads is ever held.
 * The subsampling runs in blocks of 32 output steps (its first stage is C channels at 64
 * frequencies per 20 ms, the largest activation of the model). Elementwise steps and the
 * depthwise convolutions are split over the same thread pool by rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio-impl.h"

#define SUB_BLOCK 32      /* output steps of the subsampling per block */
#define Q_BLOCK 256       /* attention queries per block */

/* ---- row-parallel elementwise jobs --------------------------------------------------------- */

enum row_op {
    OP_LAYERNORM,    /* y = LN(x)·w + b */
    OP_RELU,         /* y = max(y, 0) */
    OP_SILU,         /* y = y·σ(y) */
    OP_GELU_ERF,     /* y = ½y(1 + erf(y/√2)) */
    OP_ADD_SCALED,   /* y += s·x */
    OP_GLU,          /* y = x[:n]·σ(x[n:2n]) */
    OP_BN_SILU,      /* y = SiLU(y·w + b) */
    OP_SOFTMAX,      /* y = softmax(y) */
    OP_RELSHIFT,     /* row r of n: y = (y + x[n−1−r …])·s — BD[i][j] = BDraw[i][T'−1−i+j] */
};

struct row_job {
    enum row_op op;
    float *y;
    const float *x;
    const float *w, *b;
    int64_t n_rows, n_cols, ldy, ldx;
    float s;
};

static inline float sigmoidf_(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static void row_task(void *arg, int ith, int nth)
{
    const struct row_job *j = arg;
    const int64_t per = (j->n_rows + nth - 1) / nth;
    const int64_t r0 = per * ith, r1 = r0 + per < j->n_rows ? r0 + per : j->n_rows;
    const int64_t n = j->n_cols;
    for (int64_t r = r0; r < r1; r++) {
        float *y = j->y + r * j->ldy;
        const float *x = j->x ? j->x + r * j->ldx : NULL;
        switch (j->op) {
        case OP_LAYERNORM:
            lfm2_layernorm(y, x, j->w, j->b, n, j->s);
            break;
        case OP_RELU:
            for (int64_t i = 0; i < n; i++)
                y[i] = y[i] > 0.0f ? y[i] : 0.0f;
            break;
        case OP_SILU:
            lfm2_silu(y, n);
            break;
        case OP_GELU_ERF:
            lfm2_gelu_erf(y, n);
            break;
        case OP_ADD_SCALED:
            for (int64_t i = 0; i < n; i++)
                y[i] += j->s * x[i];
            break;
        case OP_GLU:
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] * sigmoidf_(x[n + i]);
            break;
        case OP_BN_SILU:
            for (int64_t i = 0; i < n; i++)
                y[i] = y[i] * j->w[i] + j->b[i];
            lfm2_silu(y, n);
            break;
        case OP_SOFTMAX:
            lfm2_softmax(y, n);
            break;
        case OP_RELSHIFT:
            x += j->n_rows - 1 - r;
            for (int64_t i = 0; i < n; i++)
                y[i] = (y[i] + x[i]) * j->s;
            break;
        }
    }
}

static void rows(lfm2_audio *a, enum row_op op, float *y, int64_t ldy, const float *x, int64_t ldx,
                 const float *w, const float *b, int64_t n_rows, int64_t n_cols, float s)
{
    struct row_job j = { op, y, x, w, b, n_rows, n_cols, ldy, ldx, s };
    lfm2_pool_run(a->pool, row_task, &j);
}

/* ---- convolutions ---------------------------------------------------------------------------- */

/* im2col of conv.0: patch (t, f) = mel around (2t, 2f), 3×3, zero outside. mel is [128][ld]
 * mel-major; rows t0 … t0+nt−1 of the T1 × F1 output grid. */
struct im2col_job {
    const float *mel;
    int64_t ld, T, F;         /* input frames and bins */
    int64_t t0, nt, Fo;
    float *out;               /* [nt·Fo][9] */
};

static void im2col_task(void *arg, int ith, int nth)
{
    const struct im2col_job *j = arg;
    const int64_t per = (j->nt + nth - 1) / nth;
    const int64_t r0 = per * ith, r1 = r0 + per < j->nt ? r0 + per : j->nt;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t t = j->t0 + r;
        for (int64_t f = 0; f < j->Fo; f++) {
            float *p = j->out + (r * j->Fo + f) * 9;
            for (int ky = 0; ky < 3; ky++) {
                const int64_t ti = 2 * t - 1 + ky;
                for (int kx = 0; kx < 3; kx++) {
                    const int64_t fi = 2 * f - 1 + kx;
                    p[ky * 3 + kx] = ti >= 0 && ti < j->T && fi >= 0 && fi < j->F
                                         ? j->mel[fi * j->ld + ti] : 0.0f;
                }
            }
        }
    }
}

/* Depthwise 3×3 stride-2 convolution with padding 1 over [time][freq][channel] maps:
 *   out[t][f][c] = Σ_{ky,kx} w[ky·3+kx][c] · in[2t−1+ky][2f−1+kx][c] + b[c]
 * `in` holds input rows in_t0 … in_t0+in_nt−1 of in_T; outside [0, in_T) is zero padding. */
struct dw_job {
    const float *in, *w, *b;
    int64_t in_t0, in_nt, in_T, Fi, C;
    float *out;
    int64_t t0, nt, Fo;
};

static void dw_task(void *arg, int ith, int nth)
{
    const struct dw_job *j = arg;
    const int64_t C = j->C, units = j->nt * j->Fo;
    const int64_t per = (units + nth - 1) / nth;
    const int64_t u0 = per * ith, u1 = u0 + per < units ? u0 + per : units;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = j->t0 + u / j->Fo, f = u % j->Fo;
        float *o = j->out + u * C;
        memset(o, 0, sizeof(float) * (size_t)C);
        for (int ky = 0; ky < 3; ky++) {
            const int64_t ti = 2 * t - 1 + ky;
            if (ti < 0 || ti >= j->in_T)
                continue;
            const float *row = j->in + (ti - j->in_t0) * j->Fi * C;
            for (int kx = 0; kx < 3; kx++) {
                const int64_t fi = 2 * f - 1 + kx;
                if (fi < 0 || fi >= j->Fi)
                    continue;
                const float *src = row + fi * C, *w = j->w + (ky * 3 + kx) * C;
                for (int64_t c = 0; c < C; c++)
                    o[c] += w[c] * src[c];
            }
        }
        for (int64_t c = 0; c < C; c++)
            o[c] += j->b[c];
    }
}

/* Depthwise 1-D convolution over time, K taps, zero padding (K−1)/2 each side:
 *   y[t][c] = Σ_k w[k][c] · g[t + k − (K−1)/2][c] + b[c]   */
struct dw1_job {
    const float *g, *w, *b;
    float *y;
    int64_t T, C, K;
};

static void dw1_task(void *arg, int ith, int nth)
{
    const struct dw1_job *j = arg;
    const int64_t per = (j->T + nth - 1) / nth;
    const int64_t t0 = per * ith, t1 = t0 + per < j->T ? t0 + per : j->T;
    const int64_t C = j->C, half = (j->K - 1) / 2;
    for (int64_t t = t0; t < t1; t++) {
        float *y = j->y + t * C;
        memset(y, 0, sizeof(float) * (size_t)C);
        for (int64_t k = 0; k < j->K; k++) {
            const int64_t ti = t + k - half;
            if (ti < 0 || ti >= j->T)
                continue;
            const float *g = j->g + ti * C, *w = j->w + k * C;
            for (int64_t c = 0; c < C; c++)
                y[c] += w[c] * g[c];
        }
        for (int64_t c = 0; c < C; c++)
            y[c] += j->b[c];
    }
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void stage(lfm2_audio *a, const char *name, int layer, int head, int64_t row0,
                  const float *data, int64_t n_rows, int64_t n_cols, int64_t ld)
{
    if (!a->params.stage_cb)
        return;
    const struct lfm2_audio_stage s = { name, layer, head, row0, n_rows, n_cols, ld, data };
    a->params.stage_cb(a->params.stage_user, &s);
}

/* Matrix product with a weight, its time added to the matmul total. */
static void mm(lfm2_audio *a, const lfm2_tensor *w, const float *b, const float *x, int64_t ldx,
               float *y, int64_t ldy, int64_t n)
{
    const double t0 = lfm2_time_ms();
    lfm2_matmul_bias(a->pool, w, b, x, ldx, y, ldy, n);
    a->timings.matmul_ms += lfm2_time_ms() - t0;
}

/* An F32 matrix view of activations: rows of n_in floats, `rows` of them, stride ld floats. */
static lfm2_tensor f32_view(const char *name, const float *data, int64_t n_in, int64_t n_rows,
                            int64_t ld)
{
    lfm2_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.type = LFM2_TYPE_F32;
    t.n_dims = 2;
    t.ne[0] = n_in;
    t.ne[1] = n_rows;
    t.ne[2] = t.ne[3] = 1;
    t.nb1 = (size_t)ld * sizeof(float);
    t.data = data;
    t.nbytes = t.nb1 * (size_t)n_rows;
    return t;
}

static int grow_f(lfm2_audio *a, float **buf, size_t *cap, size_t n_floats)
{
    return lfm2_audio_grow((void **)buf, cap, n_floats * sizeof(float), &a->scratch_bytes);
}

static int ensure_scratch(lfm2_audio *a, int64_t T, int64_t T1, int64_t Tq)
{
    const struct lfm2_audio_hparams *hp = &a->hp;
    const size_t C = (size_t)hp->n_sub, D = (size_t)hp->n_embd, Tp = (size_t)Tq;
    const size_t F1 = (size_t)(hp->n_mel + 1) / 2, F2 = (F1 + 1) / 2, F3 = (size_t)hp->n_sub_freq;
    const size_t n3 = SUB_BLOCK, n2 = 2 * n3 + 1, n1 = 2 * n2 + 1;
    size_t wide = (size_t)hp->n_ff;
    if (wide < 2 * D)
        wide = 2 * D;
    if (wide < (size_t)hp->n_adapter)
        wide = (size_t)hp->n_adapter;
    const size_t np = 2 * Tp - 1, qb = Tp < Q_BLOCK ? Tp : Q_BLOCK;
    (void)T;
    (void)T1;
    return grow_f(a, &a->patches, &a->cap_patches, n1 * F1 * 9) ||
           grow_f(a, &a->s1, &a->cap_s1, n1 * F1 * C) || grow_f(a, &a->s2, &a->cap_s2, n2 * F2 * C) ||
           grow_f(a, &a->s2b, &a->cap_s2b, n2 * F2 * C) || grow_f(a, &a->s3, &a->cap_s3, n3 * F3 * C) ||
           grow_f(a, &a->s3b, &a->cap_s3b, n3 * F3 * C) || grow_f(a, &a->flat, &a->cap_flat, n3 * F3 * C) ||
           grow_f(a, &a->x, &a->cap_x, Tp * D) || grow_f(a, &a->a, &a->cap_a, Tp * D) ||
           grow_f(a, &a->b, &a->cap_b, Tp * D) || grow_f(a, &a->ff, &a->cap_ff, Tp * wide) ||
           grow_f(a, &a->q, &a->cap_q, Tp * D) || grow_f(a, &a->k, &a->cap_k, Tp * D) ||
           grow_f(a, &a->v, &a->cap_v, Tp * D) || grow_f(a, &a->qu, &a->cap_qu, Tp * D) ||
           grow_f(a, &a->qv, &a->cap_qv, Tp * D) || grow_f(a, &a->vt, &a->cap_vt, Tp * D) ||
           grow_f(a, &a->pproj, &a->cap_pproj, np * D) || grow_f(a, &a->ac, &a->cap_ac, qb * Tp) ||
           grow_f(a, &a->bd, &a->cap_bd, qb * (Tp + qb - 1)) || grow_f(a, &a->att, &a->cap_att, Tp * D);
}

/* ---- subsampling ------------------------------------------------------------------------------ */

/* One depthwise-separable stage: depthwise 3×3/2 (+ bias) from `in` (rows in_t0 … of in_T,
 * Fi frequencies) to `dw_out` rows t0 … t0+nt−1, then the pointwise matrix (+ bias) into
 * `out`, then ReLU. The stage callback sees both convolutions before their ReLU. */
static void dw_pw_stage(lfm2_audio *a, const struct lfm2_audio_dwconv *dw, const lfm2_tensor *pw,
                        const float *pw_b, const char *dw_name, const char *pw_name,
                        const float *in, int64_t in_t0, int64_t in_nt, int64_t in_T, int64_t Fi,
                        float *dw_out, float *out, int64_t t0, int64_t nt)
{
    const int64_t C = a->hp.n_sub, Fo = (Fi + 1) / 2;
    struct dw_job d = { in, dw->w, dw->b, in_t0, in_nt, in_T, Fi, C, dw_out, t0, nt, Fo };
    lfm2_pool_run(a->pool, dw_task, &d);
    stage(a, dw_name, -1, -1, t0, dw_out, nt, Fo * C, Fo * C);
    mm(a, pw, pw_b, dw_out, C, out, C, nt * Fo);
    stage(a, pw_name, -1, -1, t0, out, nt, Fo * C, Fo * C);
    rows(a, OP_RELU, out, C, NULL, 0, NULL, NULL, nt * Fo, C, 0.0f);
}

/* Steps t3 ∈ [a3, b3) of the subsampled sequence into x (rows of D). */
static void subsample_block(lfm2_audio *a, const float *mel, int64_t ld, int64_t T, int64_t a3,
                            int64_t b3)
{
    const struct lfm2_audio_hparams *hp = &a->hp;
    const int64_t C = hp->n_sub, D = hp->n_embd;
    const int64_t F0 = hp->n_mel, F1 = (F0 + 1) / 2, F2 = (F1 + 1) / 2, F3 = hp->n_sub_freq;
    const int64_t T1 = (T + 1) / 2, T2 = (T1 + 1) / 2;
    /* rows each stage needs (3-tap kernels, stride 2, padding 1) */
    const int64_t r2a = 2 * a3 - 1 > 0 ? 2 * a3 - 1 : 0, r2b = 2 * b3 < T2 ? 2 * b3 : T2;
    const int64_t r1a = 2 * r2a - 1 > 0 ? 2 * r2a - 1 : 0, r1b = 2 * r2b < T1 ? 2 * r2b : T1;
    const int64_t n1 = r1b - r1a, n2 = r2b - r2a, n3 = b3 - a3;

    /* conv.0: 9 → C as a product over all (t, f) patches, ReLU */
    struct im2col_job ij = { mel, ld, T, F0, r1a, n1, F1, a->patches };
    lfm2_pool_run(a->pool, im2col_task, &ij);
    mm(a, &a->conv0_w, a->conv0_b, a->patches, 9, a->s1, C, n1 * F1);
    stage(a, "subsample_conv0", -1, -1, r1a, a->s1, n1, F1 * C, F1 * C);
    rows(a, OP_RELU, a->s1, C, NULL, 0, NULL, NULL, n1 * F1, C, 0.0f);
    /* conv.2 + conv.3, conv.5 + conv.6 */
    dw_pw_stage(a, &a->dw2, &a->conv3_w, a->conv3_b, "subsample_conv2", "subsample_conv3", a->s1,
                r1a, n1, T1, F1, a->s2, a->s2b, r2a, n2);
    dw_pw_stage(a, &a->dw5, &a->conv6_w, a->conv6_b, "subsample_conv5", "subsample_conv6", a->s2b,
                r2a, n2, T2, F2, a->s3, a->s3b, a3, n3);

    /* flatten each step channel-major: flat[c·F3 + f] = s3[f][c] */
    for (int64_t t = 0; t < n3; t++)
        for (int64_t f = 0; f < F3; f++)
            for (int64_t c = 0; c < C; c++)
                a->flat[t * C * F3 + c * F3 + f] = a->s3b[(t * F3 + f) * C + c];
    mm(a, a->pre_out, a->pre_out_b, a->flat, C * F3, a->x + a3 * D, D, n3);
}

/* ---- relative-position attention -------------------------------------------------------------- */

/* The sinusoid table P [2T'−1][W] (see the top of the file). LLAMACPP: llama.cpp's fill —
 * ω in double, the angle rounded to float; OFFICIAL: NeMo's float32 arithmetic. */
static void position_table(lfm2_audio *a, int64_t Tq)
{
    const int64_t W = a->hp.n_pos_in, np = 2 * Tq - 1;
    const bool ggml = a->params.frontend == LFM2_AUDIO_FRONTEND_LLAMACPP;
    for (int64_t m = 0; m < np; m++) {
        const int64_t r = Tq - 1 - m;
        float *row = a->ptab + m * W;
        for (int64_t i = 0; i < W / 2; i++) {
            float ang;
            if (ggml) {
                const double w = exp(-(log(10000.0) / (double)W) * (2.0 * (double)i));
                ang = (float)((double)r * w);
            } else {
                const float w = expf((float)(2 * i) * (float)(-(log(10000.0) / (double)W)));
                ang = (float)r * w;
            }
            row[2 * i] = sinf(ang);
            row[2 * i + 1] = cosf(ang);
        }
    }
}

/* One layer's attention core: a->att = concat_h softmax(scores_h)·v_h, from a->qu, a->qv, a->k,
 * a->vt (v transposed, [D][T']) and a->pproj. The three products per head multiply
 * activations by activations; each right-hand matrix (k_h, the p_h rows a query block sees,
 * v_hᵀ) is packed into the kernels' 16-row layout first (lfm2_weights_prepare), where the
 * engine's batched GEMM runs ~2× faster than over plain rows of d_head = 64 floats. */
static void rel_attention(lfm2_audio *a, int il, int64_t Tq)
{
    const struct lfm2_audio_hparams *hp = &a->hp;
    const int64_t D = hp->n_embd, dh = hp->head_dim;
    const float scale = (float)(1.0 / sqrt((double)dh));
    for (int h = 0; h < hp->n_head; h++) {
        const lfm2_tensor k_rows = f32_view("k_h", a->k + h * dh, dh, Tq, D);
        const lfm2_tensor v_rows = f32_view("v_h", a->vt + h * dh * Tq, Tq, dh, Tq);
        lfm2_tensor kh, vh;   /* packed, or the plain rows if packing is not possible */
        void *mk = lfm2_weights_prepare(&k_rows, &kh, false);
        void *mv = lfm2_weights_prepare(&v_rows, &vh, false);
        for (int64_t i0 = 0; i0 < Tq; i0 += Q_BLOCK) {
            const int64_t nb = Tq - i0 < Q_BLOCK ? Tq - i0 : Q_BLOCK, i1 = i0 + nb;
            /* AC[r][j] = (q + u)_{i0+r} · k_j */
            lfm2_matmul(a->pool, &kh, a->qu + i0 * D + h * dh, D, a->ac, Tq, nb);
            stage(a, "att_ac", il, h, i0, a->ac, nb, Tq, Tq);
            /* BDraw[r][m] = (q + v)_{i0+r} · p_{m0+m} over the offsets these queries see:
             * p rows m0 … m0+nm−1 with m0 = T'−i1 */
            const int64_t m0 = Tq - i1, nm = Tq + nb - 1;
            const lfm2_tensor p_rows = f32_view("p_h", a->pproj + m0 * D + h * dh, dh, nm, D);
            lfm2_tensor ph;
            void *mp = lfm2_weights_prepare(&p_rows, &ph, false);
            lfm2_matmul(a->pool, &ph, a->qv + i0 * D + h * dh, D, a->bd, nm, nb);
            lfm2_weights_free(mp);
            /* scores = (AC + rel-shifted BD)/sqrt(d_head), softmax over the keys */
            rows(a, OP_RELSHIFT, a->ac, Tq, a->bd, nm, NULL, NULL, nb, Tq, scale);
            stage(a, "att_scores", il, h, i0, a->ac, nb, Tq, Tq);
            rows(a, OP_SOFTMAX, a->ac, Tq, NULL, 0, NULL, NULL, nb, Tq, 0.0f);
            lfm2_matmul(a->pool, &vh, a->ac, Tq, a->att + i0 * D + h * dh, D, nb);
        }
        lfm2_weights_free(mk);
        lfm2_weights_free(mv);
    }
}

/* ---- the whole clip --------------------------------------------------------------------------- */

static void conformer_layer(lfm2_audio *a, int il, int64_t Tq)
{
    const struct lfm2_audio_hparams *hp = &a->hp;
    const struct lfm2_audio_layer *l = &a->layer[il];
    const int64_t D = hp->n_embd, F = hp->n_ff, dh = hp->head_dim;
    const float eps = hp->eps;
    float *x = a->x, *z = a->a, *y = a->b, *ff = a->ff;

    /* x += ½·FFN1(LN(x)) */
    rows(a, OP_LAYERNORM, z, D, x, D, l->ff1_norm_w, l->ff1_norm_b, Tq, D, eps);
    stage(a, "norm_ff1", il, -1, 0, z, Tq, D, D);
    mm(a, l->ff1_up, l->ff1_up_b, z, D, ff, F, Tq);
    rows(a, OP_SILU, ff, F, NULL, 0, NULL, NULL, Tq, F, 0.0f);
    mm(a, l->ff1_down, l->ff1_down_b, ff, F, y, D, Tq);
    stage(a, "ff1_out", il, -1, 0, y, Tq, D, D);
    rows(a, OP_ADD_SCALED, x, D, y, D, NULL, NULL, Tq, D, 0.5f);

    /* x += Wo·MHSA_rel(LN(x)) + bo */
    rows(a, OP_LAYERNORM, z, D, x, D, l->att_norm_w, l->att_norm_b, Tq, D, eps);
    stage(a, "norm_att", il, -1, 0, z, Tq, D, D);
    {
        const lfm2_tensor *w[3] = { l->wq, l->wk, l->wv };
        const float *b[3] = { l->bq, l->bk, l->bv };
        float *o[3] = { a->q, a->k, a->v };
        const int64_t ld[3] = { D, D, D };
        const double t0 = lfm2_time_ms();
        lfm2_matmul_multi_bias(a->pool, 3, w, b, z, D, o, ld, Tq);
        a->timings.matmul_ms += lfm2_time_ms() - t0;
    }
    mm(a, l->wpos, NULL, a->ptab, hp->n_pos_in, a->pproj, D, 2 * Tq - 1);
    stage(a, "pos_proj", il, -1, 0, a->pproj, 2 * Tq - 1, D, D);
    const double ta = lfm2_time_ms();
    for (int64_t t = 0; t < Tq; t++)
        for (int64_t c = 0; c < D; c++) {
            const float q = a->q[t * D + c];
            a->qu[t * D + c] = q + l->pos_u[c];   /* u, v are [head][d_head] = [D] */
            a->qv[t * D + c] = q + l->pos_v[c];
            a->vt[c * Tq + t] = a->v[t * D + c];
        }
    rel_attention(a, il, Tq);
    a->timings.attention_ms += lfm2_time_ms() - ta;
    (void)dh;
    mm(a, l->wo, l->bo, a->att, D, y, D, Tq);
    stage(a, "att_out", il, -1, 0, y, Tq, D, D);
    rows(a, OP_ADD_SCALED, x, D, y, D, NULL, NULL, Tq, D, 1.0f);

    /* x += pw2·SiLU(BN(dwconv(GLU(pw1·LN(x))))) */
    rows(a, OP_LAYERNORM, z, D, x, D, l->conv_norm_w, l->conv_norm_b, Tq, D, eps);
    stage(a, "norm_conv", il, -1, 0, z, Tq, D, D);
    mm(a, l->pw1, l->pw1_b, z, D, ff, 2 * D, Tq);
    stage(a, "conv_pw1", il, -1, 0, ff, Tq, 2 * D, 2 * D);
    rows(a, OP_GLU, z, D, ff, 2 * D, NULL, NULL, Tq, D, 0.0f);
    struct dw1_job dj = { z, l->dw_w, l->dw_b, y, Tq, D, hp->conv_kernel };
    lfm2_pool_run(a->pool, dw1_task, &dj);
    rows(a, OP_BN_SILU, y, D, NULL, 0, l->bn_w, l->bn_b, Tq, D, 0.0f);
    mm(a, l->pw2, l->pw2_b, y, D, z, D, Tq);
    rows(a, OP_ADD_SCALED, x, D, z, D, NULL, NULL, Tq, D, 1.0f);

    /* x += ½·FFN2(LN(x)); x = LN_out(x) */
    rows(a, OP_LAYERNORM, z, D, x, D, l->ff2_norm_w, l->ff2_norm_b, Tq, D, eps);
    mm(a, l->ff2_up, l->ff2_up_b, z, D, ff, F, Tq);
    rows(a, OP_SILU, ff, F, NULL, 0, NULL, NULL, Tq, F, 0.0f);
    mm(a, l->ff2_down, l->ff2_down_b, ff, F, y, D, Tq);
    stage(a, "ff2_out", il, -1, 0, y, Tq, D, D);
    rows(a, OP_ADD_SCALED, x, D, y, D, NULL, NULL, Tq, D, 0.5f);
    stage(a, "resid_before_norm_out", il, -1, 0, x, Tq, D, D);
    rows(a, OP_LAYERNORM, x, D, x, D, l->out_norm_w, l->out_norm_b, Tq, D, eps);
    stage(a, "out", il, -1, 0, x, Tq, D, D);
}

int64_t lfm2_audio_encode_frames(lfm2_audio *a, const float *mel, int64_t T, int64_t ld, float *out,
                                 size_t cap)
{
    const struct lfm2_audio_hparams *hp = &a->hp;
    const int64_t Tq = lfm2_audio_n_tokens_for_frames(T), D = hp->n_embd, E = hp->n_embd_out;
    if (T < 1 || ld < T)
        return lfm2_set_error("%s: cannot encode %lld mel frames (row stride %lld)", a->path,
                              (long long)T, (long long)ld);
    if (a->params.frontend == LFM2_AUDIO_FRONTEND_LLAMACPP && T / 2 > hp->n_pos_rows)
        return lfm2_set_error("%s: %lld mel frames (%.2f s) are more than llama.cpp's lfm2a graph "
                              "takes: it asserts a.position_embd rows (%d) >= frames/2; use the "
                              "official front-end or shorter segments", a->path, (long long)T,
                              T / 100.0, hp->n_pos_rows);
    if (cap < (size_t)(Tq * E))
        return lfm2_set_error("%s: output holds %zu floats, %lld needed (%lld tokens × %lld)",
                              a->path, cap, (long long)(Tq * E), (long long)Tq, (long long)E);
    const int64_t T1 = (T + 1) / 2;
    if (ensure_scratch(a, T, T1, Tq))
        return -1;
    if (a->ptab_tokens != Tq) {
        if (grow_f(a, &a->ptab, &a->cap_ptab, (size_t)(2 * Tq - 1) * (size_t)hp->n_pos_in))
            return -1;
        position_table(a, Tq);
        a->ptab_tokens = Tq;
    }
    a->timings.matmul_ms = a->timings.attention_ms = 0.0;
    const double t0 = lfm2_time_ms();

    for (int64_t a3 = 0; a3 < Tq; a3 += SUB_BLOCK)
        subsample_block(a, mel, ld, T, a3, a3 + SUB_BLOCK < Tq ? a3 + SUB_BLOCK : Tq);
    stage(a, "pre_encode_out", -1, -1, 0, a->x, Tq, D, D);
    a->timings.subsample_ms = lfm2_time_ms() - t0;

    for (int il = 0; il < hp->n_layer; il++) {
        if (a->abort_cb && a->abort_cb(a->abort_data))
            return LFM2_AUDIO_ENCODE_ABORTED;
        conformer_layer(a, il, Tq);
    }

    /* adapter: W3·GELU_erf(W1·LN(x) + b1) + b3 */
    rows(a, OP_LAYERNORM, a->a, D, a->x, D, a->ad_norm_w, a->ad_norm_b, Tq, D, 1e-5f);
    stage(a, "adapter_ln", -1, -1, 0, a->a, Tq, D, D);
    const int64_t P = hp->n_adapter;
    mm(a, a->ad1, a->ad1_b, a->a, D, a->ff, P, Tq);
    rows(a, OP_GELU_ERF, a->ff, P, NULL, 0, NULL, NULL, Tq, P, 0.0f);
    mm(a, a->ad3, a->ad3_b, a->ff, P, out, E, Tq);
    stage(a, "projected", -1, -1, 0, out, Tq, E, E);

    a->timings.encode_ms = lfm2_time_ms() - t0;
    a->timings.n_frames = T;
    a->timings.n_tokens = Tq;
    return Tq;
}

int64_t lfm2_audio_encode_mel(lfm2_audio *a, const float *mel, int64_t n_frames, int64_t ld,
                              float *out, size_t cap)
{
    if (!a || !mel || !out)
        return lfm2_set_error("lfm2_audio_encode_mel: NULL argument");
    a->timings.mel_ms = 0.0;
    a->timings.n_samples = 0;
    return lfm2_audio_encode_frames(a, mel, n_frames, ld, out, cap);
}

void lfm2_audio_set_abort_callback(lfm2_audio *a, lfm2_abort_callback callback, void *data)
{
    if (a) {
        a->abort_cb = callback;
        a->abort_data = data;
    }
}

int64_t lfm2_audio_encode(lfm2_audio *a, const float *pcm, int64_t n, float *out, size_t cap)
{
    if (!a || !pcm || !out)
        return lfm2_set_error("lfm2_audio_encode: NULL argument");
    if (n <= 0)
        return lfm2_set_error("%s: no audio samples to encode", a->path);
    const int64_t T = lfm2_audio_n_frames(n);
    size_t bytes;
    if (!lfm2_mul_ok((size_t)T, sizeof(float) * LFM2_AUDIO_N_MEL, &bytes) ||
        lfm2_audio_grow((void **)&a->melbuf, &a->cap_melbuf, bytes, &a->scratch_bytes))
        return lfm2_set_error("%s: out of memory for %lld mel frames", a->path, (long long)T);
    const double t0 = lfm2_time_ms();
    if (lfm2_audio_mel(a, pcm, n, a->melbuf, T) < 0)
        return -1;
    const double mel_ms = lfm2_time_ms() - t0;
    if (a->abort_cb && a->abort_cb(a->abort_data))
        return LFM2_AUDIO_ENCODE_ABORTED;
    const int64_t r = lfm2_audio_encode_frames(a, a->melbuf, T, T, out, cap);
    a->timings.mel_ms = mel_ms;
    a->timings.n_samples = n;
    return r;
}
