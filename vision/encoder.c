/* encoder.c — the SigLIP2 NaFlex encoder and the LFM2-VL projector, one preprocessed image
 * (tile, thumbnail or single image) at a time, top to bottom:
 *
 *   RGB u8 ─normalize+im2col─► patches [n][3·p·p] ─patch matmul + bias─► x [n][D]
 *   x += learned positions resized (AA bilinear) to the patch grid
 *   L × { x += Wo·attn(LN1(x)) ;  x += Wdown·gelu_tanh(Wup·LN2(x)) }     (pre-LN blocks)
 *   x = LN_post(x)
 *   pixel-unshuffle ×merge ─► z [n/m²][m²·D] ─[LN eps 1e-5]─► mm.1 ─► GELU ─► mm.2 ─► out
 *
 * Matrix products go through lfm2_matmul_bias on weights prepared at load (the engine's
 * batched GEMM and thread pool); attention through lfm2_attention (bidirectional, no mask:
 * one image per call, which takes the engine's GEMM-shaped unmasked path). The elementwise
 * steps are split over the same pool by rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision-impl.h"

/* ---- row-parallel elementwise jobs -------------------------------------------------------- */

enum row_op { OP_LAYERNORM, OP_GELU_TANH, OP_GELU_GGML, OP_GELU_ERF, OP_ADD };

struct row_job {
    enum row_op op;
    float *y;            /* rows of n_cols, stride ld */
    const float *x;      /* input rows (LAYERNORM, ADD: y += x), stride ldx */
    const float *w, *b;  /* LAYERNORM */
    int64_t n_rows, n_cols, ld, ldx;
    float eps;
};

static void row_task(void *arg, int ith, int nth)
{
    const struct row_job *j = arg;
    const int64_t per = (j->n_rows + nth - 1) / nth;
    const int64_t r0 = per * ith, r1 = r0 + per < j->n_rows ? r0 + per : j->n_rows;
    for (int64_t r = r0; r < r1; r++) {
        float *y = j->y + r * j->ld;
        switch (j->op) {
        case OP_LAYERNORM:
            lfm2_layernorm(y, j->x + r * j->ldx, j->w, j->b, j->n_cols, j->eps);
            break;
        case OP_GELU_TANH:
            lfm2_gelu_tanh(y, j->n_cols);
            break;
        case OP_GELU_GGML:
            lfm2_gelu_tanh_ggml(y, j->n_cols);
            break;
        case OP_GELU_ERF:
            lfm2_gelu_erf(y, j->n_cols);
            break;
        case OP_ADD:
            lfm2_vec_add(y, y, j->x + r * j->ldx, j->n_cols);
            break;
        }
    }
}

static void run_rows(lfm2_vision *v, enum row_op op, float *y, const float *x, const float *w,
                     const float *b, int64_t n_rows, int64_t n_cols, float eps)
{
    struct row_job j = { op, y, x, w, b, n_rows, n_cols, n_cols, n_cols, eps };
    lfm2_pool_run(v->pool, row_task, &j);
}

/* ---- patches ------------------------------------------------------------------------------ */

struct im2col_job {
    const uint8_t *rgb;
    size_t stride;
    int p, gw;
    int64_t n;
    const float (*lut)[256];   /* per channel (u/255 − mean)/std: the same floats as mtmd */
    float *out;          /* [n][3·p·p], (c, ky, kx) order = the OIHW kernel's */
};

static void im2col_task(void *arg, int ith, int nth)
{
    const struct im2col_job *j = arg;
    const int p = j->p, K = 3 * p * p;
    const int64_t per = (j->n + nth - 1) / nth;
    const int64_t t0 = per * ith, t1 = t0 + per < j->n ? t0 + per : j->n;
    for (int64_t t = t0; t < t1; t++) {
        const int py = (int)(t / j->gw), px = (int)(t % j->gw);
        float *row = j->out + t * K;
        for (int ky = 0; ky < p; ky++) {
            const uint8_t *src = j->rgb + (size_t)(py * p + ky) * j->stride + (size_t)px * p * 3;
            for (int kx = 0; kx < p; kx++)
                for (int c = 0; c < 3; c++)
                    row[(c * p + ky) * p + kx] = j->lut[c][src[3 * kx + c]];
        }
    }
}

/* ---- learned positions resized to the patch grid --------------------------------------- */

static float tent(float x)
{
    x = x < 0 ? -x : x;
    return 1.0f - x > 0.0f ? 1.0f - x : 0.0f;
}

/* ggml's upscale with GGML_SCALE_MODE_BILINEAR | GGML_SCALE_FLAG_ANTIALIAS (what mtmd uses
 * and what F.interpolate(bilinear, antialias=True, align_corners=False) does): a tent whose
 * support widens to 1/scale when shrinking, 2-D weights wy·wx, normalized by the sum of the
 * weights actually gathered. Float32 throughout, like ggml. */
static void resize_positions(const float *src, int S, int D, int gw, int gh, float *dst)
{
    const float sfx = (float)gw / (float)S, sfy = (float)gh / (float)S;
    const float supx = 1.0f / sfx > 1.0f ? 1.0f / sfx : 1.0f;
    const float supy = 1.0f / sfy > 1.0f ? 1.0f / sfy : 1.0f;
    const float invx = 1.0f / supx, invy = 1.0f / supy;
    for (int j = 0; j < gh; j++) {
        const float cy = ((float)j + 0.5f) / sfy;
        int64_t y0 = (int64_t)(cy - supy + 0.5f), y1 = (int64_t)(cy + supy + 0.5f);
        if (y0 < 0)
            y0 = 0;
        if (y1 > S)
            y1 = S;
        for (int i = 0; i < gw; i++) {
            const float cx = ((float)i + 0.5f) / sfx;
            int64_t x0 = (int64_t)(cx - supx + 0.5f), x1 = (int64_t)(cx + supx + 0.5f);
            if (x0 < 0)
                x0 = 0;
            if (x1 > S)
                x1 = S;
            float *out = dst + ((int64_t)j * gw + i) * D;
            memset(out, 0, sizeof(float) * (size_t)D);
            float total = 0.0f;
            for (int64_t sy = y0; sy < y1; sy++) {
                const float wy = tent(((float)sy - cy + 0.5f) * invy);
                if (wy <= 0.0f)
                    continue;
                for (int64_t sx = x0; sx < x1; sx++) {
                    const float wx = tent(((float)sx - cx + 0.5f) * invx);
                    const float w = wx * wy;
                    if (w <= 0.0f)
                        continue;
                    const float *s = src + (sy * S + sx) * D;
                    for (int d = 0; d < D; d++)
                        out[d] += s[d] * w;
                    total += w;
                }
            }
            if (total > 0.0f)
                for (int d = 0; d < D; d++)
                    out[d] /= total;
        }
    }
}

/* ---- scratch ------------------------------------------------------------------------------ */

static int grow_f(lfm2_vision *v, float **buf, size_t *cap, size_t n_floats)
{
    return lfm2_vision_grow((void **)buf, cap, n_floats * sizeof(float), &v->scratch_bytes);
}

static int ensure_scratch(lfm2_vision *v, int64_t n)
{
    const struct lfm2_vision_hparams *hp = &v->hp;
    const size_t D = (size_t)hp->n_embd, F = (size_t)hp->n_ff, N = (size_t)n;
    const size_t K = 3 * (size_t)hp->patch_size * hp->patch_size;
    const size_t m2 = (size_t)hp->merge * hp->merge;
    if (grow_f(v, &v->x, &v->cap_x, N * D) || grow_f(v, &v->a, &v->cap_a, N * D) ||
        grow_f(v, &v->q, &v->cap_q, N * D) || grow_f(v, &v->k, &v->cap_k, N * D) ||
        grow_f(v, &v->v, &v->cap_v, N * D) || grow_f(v, &v->att, &v->cap_att, N * D) ||
        grow_f(v, &v->ff, &v->cap_ff, N * F) || grow_f(v, &v->patches, &v->cap_patches, N * K) ||
        grow_f(v, &v->mm_in, &v->cap_mm_in, N * D) ||
        grow_f(v, &v->mm_h, &v->cap_mm_h, (N / m2 + 1) * (size_t)hp->n_proj_hidden))
        return -1;
    if (v->cap_pos_r < N * D * sizeof(float)) {
        if (grow_f(v, &v->pos_r, &v->cap_pos_r, N * D))
            return -1;
        v->pos_r_gw = v->pos_r_gh = 0;   /* contents lost */
    }
    return 0;
}

/* ---- one image ------------------------------------------------------------------------------ */

/* Matrix product with its time added to *ms. */
static void mm(lfm2_vision *v, double *ms, const lfm2_tensor *w, const float *b, const float *x,
               int64_t ldx, float *y, int64_t ldy, int64_t n)
{
    const double t0 = lfm2_time_ms();
    lfm2_matmul_bias(v->pool, w, b, x, ldx, y, ldy, n);
    *ms += lfm2_time_ms() - t0;
}

static int encode_one(lfm2_vision *v, const uint8_t *rgb, int w, int h, size_t stride,
                      float *out, size_t cap, struct lfm2_vision_timings *tm)
{
    const struct lfm2_vision_hparams *hp = &v->hp;
    const int p = hp->patch_size, m = hp->merge, align = p * m;
    if (!rgb || w < align || h < align || w % align || h % align || stride < (size_t)w * 3)
        return lfm2_set_error("%s: cannot encode a %d×%d image: sides must be positive multiples of "
                              "%d", v->path, w, h, align);
    const int gw = w / p, gh = h / p;
    const int64_t n = (int64_t)gw * gh;
    const int64_t D = hp->n_embd, F = hp->n_ff, K = 3 * p * p;
    const int64_t Dm = D * m * m, n_out = n / (m * m), E = hp->n_embd_out;
    if (cap < (size_t)(n_out * E))
        return lfm2_set_error("%s: output holds %zu floats, %lld needed", v->path, cap,
                              (long long)(n_out * E));
    if (ensure_scratch(v, n))
        return -1;
    const bool ggml = v->params.preprocess == LFM2_VISION_PREPROCESS_LLAMACPP;

    /* 1. normalized patches, then the patch "convolution" as one product */
    struct im2col_job ij = { rgb, stride, p, gw, n, (const float (*)[256])v->lut, v->patches };
    lfm2_pool_run(v->pool, im2col_task, &ij);
    float *x = v->x;
    double *mt = &tm->matmul_ms;
    mm(v, mt, &v->patch_w, v->patch_b, v->patches, K, x, D, n);

    /* 2. learned positions, resized when the grid is not the table's own */
    const int S = hp->n_pos_side;
    const float *pos = v->pos;
    if (gw != S || gh != S) {
        if (v->pos_r_gw != gw || v->pos_r_gh != gh) {
            resize_positions(v->pos, S, (int)D, gw, gh, v->pos_r);
            v->pos_r_gw = gw;
            v->pos_r_gh = gh;
        }
        pos = v->pos_r;
    }
    run_rows(v, OP_ADD, x, pos, NULL, NULL, n, D, 0.0f);

    /* 3. pre-LN transformer blocks */
    const int H = hp->n_head, dh = (int)(D / H);
    struct lfm2_attn_args aa = {
        .q = v->q, .ldq = D, .k = v->k, .ldk = D, .v = v->v, .ldv = D,
        .out = v->att, .ldo = D, .n_q = (int)n, .n_kv = (int)n,
        .n_head = H, .n_head_kv = H, .head_dim = dh,
        .scale = 1.0f / sqrtf((float)dh), .causal = false, .q_pos0 = 0, .window = 0,
    };
    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_vision_block *b = &v->blk[il];
        run_rows(v, OP_LAYERNORM, v->a, x, b->ln1_w, b->ln1_b, n, D, hp->eps);
        {   /* Q, K, V in one product: the normalized input is packed once */
            const lfm2_tensor *wqkv[3] = { b->wq, b->wk, b->wv };
            const float *bqkv[3] = { b->bq, b->bk, b->bv };
            float *yqkv[3] = { v->q, v->k, v->v };
            const int64_t ld[3] = { D, D, D };
            const double t0 = lfm2_time_ms();
            lfm2_matmul_multi_bias(v->pool, 3, wqkv, bqkv, v->a, D, yqkv, ld, n);
            *mt += lfm2_time_ms() - t0;
        }
        const double ta = lfm2_time_ms();
        lfm2_attention(v->pool, &aa);
        tm->attention_ms += lfm2_time_ms() - ta;
        mm(v, mt, b->wo, b->bo, v->att, D, v->a, D, n);
        run_rows(v, OP_ADD, x, v->a, NULL, NULL, n, D, 0.0f);

        run_rows(v, OP_LAYERNORM, v->a, x, b->ln2_w, b->ln2_b, n, D, hp->eps);
        mm(v, mt, b->up, b->bup, v->a, D, v->ff, F, n);
        run_rows(v, ggml ? OP_GELU_GGML : OP_GELU_TANH, v->ff, NULL, NULL, NULL, n, F, 0.0f);
        mm(v, mt, b->down, b->bdown, v->ff, F, v->a, D, n);
        run_rows(v, OP_ADD, x, v->a, NULL, NULL, n, D, 0.0f);
    }
    if (v->post_w)
        run_rows(v, OP_LAYERNORM, x, x, v->post_w, v->post_b, n, D, hp->eps);

    /* 4. pixel unshuffle: merged token (Y, X) = the m×m block of patches, row-major inside
     * the block, each patch's D features contiguous: z[dy·m·D + dx·D + c] */
    const int ow = gw / m, oh = gh / m;
    for (int Y = 0; Y < oh; Y++)
        for (int X = 0; X < ow; X++) {
            float *z = v->mm_in + ((int64_t)Y * ow + X) * Dm;
            for (int dy = 0; dy < m; dy++)
                for (int dx = 0; dx < m; dx++)
                    memcpy(z + (dy * m + dx) * D,
                           x + ((int64_t)(m * Y + dy) * gw + (m * X + dx)) * D,
                           sizeof(float) * (size_t)D);
        }

    /* 5. projector: [LN, eps 1e-5 = PyTorch's default, hard-coded in llama.cpp too] →
     * mm.1 → GELU (tanh in llama.cpp, exact erf in transformers) → mm.2 */
    if (v->in_norm_w)
        run_rows(v, OP_LAYERNORM, v->mm_in, v->mm_in, v->in_norm_w, v->in_norm_b, n_out, Dm,
                 1e-5f);
    const int64_t P = hp->n_proj_hidden;
    mm(v, mt, v->mm1, v->mm1_b, v->mm_in, Dm, v->mm_h, P, n_out);
    run_rows(v, ggml ? OP_GELU_GGML : OP_GELU_ERF, v->mm_h, NULL, NULL, NULL, n_out, P, 0.0f);
    mm(v, mt, v->mm2, v->mm2_b, v->mm_h, P, out, E, n_out);
    tm->n_patches += (int)n;
    return (int)n_out;
}

int lfm2_vision_encode_chunk(lfm2_vision *v, const uint8_t *rgb, int w, int h, size_t stride,
                             float *out, size_t cap)
{
    struct lfm2_vision_timings t = { 0 };
    const double t0 = lfm2_time_ms();
    const int r = encode_one(v, rgb, w, h, stride, out, cap, &t);
    t.encode_ms = lfm2_time_ms() - t0;
    t.n_chunks = 1;
    if (r >= 0)
        v->timings = t;
    return r;
}

int lfm2_vision_encode(lfm2_vision *v, const struct lfm2_vision_image *img,
                       const struct lfm2_vision_plan *plan, float *out, size_t cap)
{
    const int64_t E = v->hp.n_embd_out;
    if (!img || !plan || !out)
        return lfm2_set_error("lfm2_vision_encode: NULL argument");
    if ((size_t)plan->n_tokens * (size_t)E > cap)
        return lfm2_set_error("%s: output holds %zu floats, %lld needed (%d tokens × %lld)",
                              v->path, cap, (long long)plan->n_tokens * E, plan->n_tokens,
                              (long long)E);
    struct lfm2_vision_timings t = { 0 };
    t.n_chunks = plan->n_chunks;
    int64_t row = 0;
    for (int i = 0; i < plan->n_chunks; i++) {
        int w, h, nt;
        lfm2_vision_plan_chunk(plan, i, &w, &h, &nt, NULL, NULL);
        const double t0 = lfm2_time_ms();
        const uint8_t *pix;
        size_t stride;
        if (lfm2_vision_prepare_chunk(v, img, plan, i, &pix, &stride))
            return -1;
        const double t1 = lfm2_time_ms();
        const int r = encode_one(v, pix, w, h, stride, out + row * E, cap - (size_t)(row * E), &t);
        if (r < 0)
            return -1;
        if (r != nt)
            return lfm2_set_error("%s: chunk %d gave %d rows, the plan says %d", v->path, i, r, nt);
        t.preprocess_ms += t1 - t0;
        t.encode_ms += lfm2_time_ms() - t1;
        row += r;
    }
    v->timings = t;
    return (int)row;
}
