/* forward.c — the LFM2 backbone forward pass, written to be read top to bottom.
 *
 *   h = input rows (token embeddings, or embeddings injected by an encoder)
 *   for each layer:
 *       u = RMSNorm(h) ;  h += ShortConv(u) or Attention(u)
 *       v = RMSNorm(h) ;  h += SwiGLU(v) or MoE(v)
 *   out = head · RMSNorm(h)        (lfm2_backbone_output, for the rows the caller wants: the
 *                                   LM head, or dense_2 + bias in an embedding model)
 *
 * All products go through lfm2_matmul (quantized kernels, thread pool); a batch of n rows is
 * processed layer by layer, so prefill turns into matrix-matrix products. The per-row work
 * between products (norms, the convolution, RoPE, SwiGLU) is split over the pool's threads by
 * rows when the batch is large enough to pay for it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backbone.h"
#include "internal.h"

/* ---- caches --------------------------------------------------------------------------------- */

int lfm2_cache_init(struct lfm2_cache *c, const struct lfm2_backbone *bb, int n_ctx)
{
    const struct lfm2_hparams *hp = &bb->hp;
    memset(c, 0, sizeof *c);
    c->n_ctx = n_ctx;
    c->k = calloc((size_t)bb->n_attn_layers + 1, sizeof *c->k);
    c->v = calloc((size_t)bb->n_attn_layers + 1, sizeof *c->v);
    c->conv_floats = (size_t)bb->n_conv_layers * (hp->n_conv_cache > 1 ? hp->n_conv_cache - 1 : 0) *
                     (size_t)hp->n_embd;
    c->conv = calloc(c->conv_floats + 1, sizeof(float));
    if (!c->k || !c->v || !c->conv) {
        lfm2_cache_free(c);
        return lfm2_set_error("out of memory");
    }

    /* K and V of every attention layer in one anonymous mapping: pages become resident only
     * for the positions actually written, so a large n_ctx costs address space, not memory. */
    size_t total = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind == LFM2_LAYER_ATTENTION)
            total += (2 * (size_t)ly->n_head_kv * hp->head_dim * (size_t)n_ctx * sizeof(float) + 4095) &
                     ~(size_t)4095;
    }
    if (total == 0)
        return 0;
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (map == MAP_FAILED) {
        lfm2_cache_free(c);
        return lfm2_set_error("cannot reserve %zu bytes for the KV cache of %d positions", total, n_ctx);
    }
    c->map = map;
    c->map_size = total;
    char *p = map;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind != LFM2_LAYER_ATTENTION)
            continue;
        size_t kv = (size_t)ly->n_head_kv * hp->head_dim * (size_t)n_ctx * sizeof(float);
        c->k[ly->cache_index] = (float *)p;
        c->v[ly->cache_index] = (float *)(p + kv);
        p += (2 * kv + 4095) & ~(size_t)4095;
    }
    return 0;
}

void lfm2_cache_free(struct lfm2_cache *c)
{
    if (c->map)
        munmap(c->map, c->map_size);
    for (int i = 0; i < c->n_ckpt; i++)
        free(c->ckpt[i].conv);
    free(c->k);
    free(c->v);
    free(c->conv);
    memset(c, 0, sizeof *c);
}

int lfm2_cache_checkpoint(struct lfm2_cache *c, int32_t pos)
{
    struct lfm2_checkpoint *ck = NULL;
    for (int i = 0; i < c->n_ckpt; i++)
        if (c->ckpt[i].pos == pos)
            ck = &c->ckpt[i];
    if (!ck) {
        if (c->n_ckpt == LFM2_MAX_CHECKPOINTS) { /* forget the oldest */
            float *conv = c->ckpt[0].conv;
            memmove(c->ckpt, c->ckpt + 1, (LFM2_MAX_CHECKPOINTS - 1) * sizeof c->ckpt[0]);
            c->ckpt[LFM2_MAX_CHECKPOINTS - 1].conv = conv;
            ck = &c->ckpt[LFM2_MAX_CHECKPOINTS - 1];
        } else {
            ck = &c->ckpt[c->n_ckpt];
            if (!(ck->conv = malloc((c->conv_floats + 1) * sizeof(float))))
                return lfm2_set_error("out of memory for a checkpoint");
            c->n_ckpt++;
        }
    }
    ck->pos = pos;
    memcpy(ck->conv, c->conv, c->conv_floats * sizeof(float));
    return 0;
}

int lfm2_cache_restore(struct lfm2_cache *c, int32_t pos)
{
    const struct lfm2_checkpoint *ck = NULL;
    for (int i = 0; i < c->n_ckpt; i++)
        if (c->ckpt[i].pos == pos)
            ck = &c->ckpt[i];
    if (ck)
        memcpy(c->conv, ck->conv, c->conv_floats * sizeof(float));
    else if (pos == 0)
        memset(c->conv, 0, c->conv_floats * sizeof(float));
    else
        return lfm2_set_error("no checkpoint at position %d: the short-convolution state is kept "
                              "only at positions saved with lfm2_checkpoint()",
                              pos);
    /* checkpoints past pos describe positions that will be overwritten */
    int k = 0;
    for (int i = 0; i < c->n_ckpt; i++) {
        if (c->ckpt[i].pos <= pos)
            c->ckpt[k++] = c->ckpt[i];
        else
            free(c->ckpt[i].conv);
    }
    c->n_ckpt = k;
    return 0;
}

/* Sliding window: a query at p sees keys p − n_swa + 1 … p, so the rows before
 * pos0 − n_swa + 1 are dead for this batch and every later one. The rows move by a multiple
 * of SLIDE_ALIGN, so every key keeps its offset inside the attention kernels' key blocks and
 * a stack run frame by frame gives the same numbers as one run in a single batch. */
#define SLIDE_ALIGN 64

int lfm2_cache_make_room(struct lfm2_cache *c, const struct lfm2_backbone *bb, int32_t pos0, int n)
{
    if (pos0 < c->base)
        return lfm2_set_error("cache: position %d is before the oldest kept position %d", pos0,
                              c->base);
    if (pos0 - c->base + (int64_t)n <= c->n_ctx)
        return 0;
    int swa = 1;          /* the widest window; stays 1 without attention layers */
    bool windowed = true; /* every attention layer has one */
    for (int il = 0; il < bb->hp.n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind == LFM2_LAYER_ATTENTION) {
            windowed &= ly->n_swa > 0;
            swa = ly->n_swa > swa ? ly->n_swa : swa;
        }
    }
    const int32_t keep0 = c->base + (pos0 - (swa - 1) - c->base) / SLIDE_ALIGN * SLIDE_ALIGN;
    if (!windowed || pos0 - (swa - 1) < c->base || pos0 - keep0 + (int64_t)n > c->n_ctx)
        return lfm2_set_error("cache full: positions %d…%d do not fit its %d rows%s", pos0,
                              pos0 + n - 1, c->n_ctx,
                              windowed ? " (sliding window, alignment and batch)" : "");
    const int shift = keep0 - c->base, keep = pos0 - keep0;
    for (int il = 0; il < bb->hp.n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind != LFM2_LAYER_ATTENTION)
            continue;
        const size_t row = (size_t)ly->n_head_kv * bb->hp.head_dim;
        float *k = c->k[ly->cache_index], *v = c->v[ly->cache_index];
        memmove(k, k + (size_t)shift * row, (size_t)keep * row * sizeof(float));
        memmove(v, v + (size_t)shift * row, (size_t)keep * row * sizeof(float));
    }
    c->base = keep0;
    return 0;
}

/* ---- scratch ----------------------------------------------------------------------------------- */

static size_t work_width(const struct lfm2_hparams *hp)
{
    size_t w = 4 * (size_t)hp->n_embd;                       /* conv: [B C X] + gated output */
    size_t a = 2 * (size_t)hp->n_head * hp->head_dim;         /* attention: q + output */
    size_t f = 2 * (size_t)hp->n_ff;                           /* FFN: gate + up */
    return w > a ? (w > f ? w : f) : (a > f ? a : f);
}

int lfm2_scratch_init(struct lfm2_scratch *s, const struct lfm2_backbone *bb, int n_batch)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const size_t n = (size_t)n_batch, E = (size_t)hp->n_embd;
    memset(s, 0, sizeof *s);
    s->n_batch = n_batch;
    if (!(s->x = lfm2_alloc_aligned(n * E * sizeof(float))) ||
        !(s->u = lfm2_alloc_aligned(n * E * sizeof(float))) ||
        !(s->o = lfm2_alloc_aligned(n * E * sizeof(float))) ||
        !(s->work = lfm2_alloc_aligned(n * work_width(hp) * sizeof(float))))
        goto oom;
    if (hp->n_expert) {
        const size_t NE = (size_t)hp->n_expert, K = (size_t)hp->n_expert_used;
        const size_t FE = (size_t)hp->n_ff_exp;
        if (!(s->router = lfm2_alloc_aligned(n * NE * sizeof(float))) ||
            !(s->sel = lfm2_alloc_aligned(n * K * sizeof(int32_t))) ||
            !(s->selw = lfm2_alloc_aligned(n * K * sizeof(float))) ||
            !(s->rows = lfm2_alloc_aligned(n * K * sizeof(int32_t))) ||
            !(s->ecount = lfm2_alloc_aligned(2 * (NE + 1) * sizeof(int32_t))) ||
            !(s->xe = lfm2_alloc_aligned(n * K * E * sizeof(float))) ||
            !(s->ge = lfm2_alloc_aligned(n * K * FE * sizeof(float))) ||
            !(s->he = lfm2_alloc_aligned(n * K * FE * sizeof(float))) ||
            !(s->oe = lfm2_alloc_aligned(n * K * E * sizeof(float))))
            goto oom;
    }
    return 0;
oom:
    lfm2_scratch_free(s);
    return lfm2_set_error("out of memory allocating scratch for %d rows", n_batch);
}

void lfm2_scratch_free(struct lfm2_scratch *s)
{
    void *p[] = { s->x, s->u, s->o, s->work, s->router, s->sel, s->selw, s->rows, s->ecount,
                  s->xe, s->ge, s->he, s->oe };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        lfm2_free_aligned(p[i]);
    memset(s, 0, sizeof *s);
}

/* ---- per-row work on the pool ----------------------------------------------------------------- */

struct rows_job;
typedef void (*rows_fn)(const struct rows_job *j, int t0, int t1);

/* One step of per-row work over rows 0…n-1; fields used as each step needs them. */
struct rows_job {
    rows_fn fn;
    int n;
    const struct lfm2_backbone *bb;
    const struct lfm2_layer *ly;
    struct lfm2_scratch *s;
    struct lfm2_cache *cache;
    int32_t pos0;
    const float *norm_w;   /* next norm's weights */
    bool add;              /* x += o before the norm */
    float *kc;             /* attention: this batch's first K row in the cache */
    int64_t n_elem;        /* swiglu: elements per row */
    float *gate, *up;
};

static void rows_task(void *arg, int ith, int nth)
{
    const struct rows_job *j = arg;
    const int chunk = (j->n + nth - 1) / nth, t0 = ith * chunk;
    const int t1 = t0 + chunk < j->n ? t0 + chunk : j->n;
    if (t0 < t1)
        j->fn(j, t0, t1);
}

/* Below this many rows a pool dispatch costs more than the work (decode is one row). */
#define ROWS_PARALLEL_MIN 8

static void for_rows(lfm2_pool *pool, struct rows_job *j)
{
    if (j->n < ROWS_PARALLEL_MIN)
        j->fn(j, 0, j->n);
    else
        lfm2_pool_run(pool, rows_task, j);
}

/* x += o (when add), then u = RMSNorm(x) with the next norm's weights */
static void residual_norm_rows(const struct rows_job *j, int t0, int t1)
{
    const int E = j->bb->hp.n_embd;
    for (int t = t0; t < t1; t++) {
        float *x = j->s->x + (size_t)t * E;
        if (j->add)
            lfm2_vec_add(x, x, j->s->o + (size_t)t * E, E);
        lfm2_rmsnorm(j->s->u + (size_t)t * E, x, j->norm_w, E, j->bb->hp.norm_eps);
    }
}

static void residual_norm(lfm2_pool *pool, const struct lfm2_backbone *bb, struct lfm2_scratch *s,
                          int n, bool add, const float *w)
{
    struct rows_job j = { .fn = residual_norm_rows, .n = n, .bb = bb, .s = s, .norm_w = w, .add = add };
    for_rows(pool, &j);
}

/* ---- operators ------------------------------------------------------------------------------ */

/* Convolution rows: y_t = C_t ⊙ Σ_k w[k]·s_{t-L+1+k} with s = B ⊙ X. Taps inside the batch are
 * recomputed from the B and X rows (so rows split freely between threads); taps before the
 * batch come from the cached state. */
static void conv_rows(const struct rows_job *j, int t0, int t1)
{
    const int E = j->bb->hp.n_embd, L = j->bb->hp.n_conv_cache;
    const float *bcx = j->s->work, *state = j->cache->conv + (size_t)j->ly->cache_index * (L - 1) * E;
    float *y = j->s->work + (size_t)j->n * 3 * E;
    for (int t = t0; t < t1; t++) {
        const float *C = bcx + (size_t)t * 3 * E + E;
        float *yt = y + (size_t)t * E;
        for (int c = 0; c < E; c++)
            yt[c] = 0.0f;
        for (int k = 0; k < L; k++) {
            const int tk = t - (L - 1) + k; /* row of this tap, negative = cached state */
            const float *w = j->ly->conv_w + k;
            if (tk >= 0) {
                const float *B = bcx + (size_t)tk * 3 * E, *X = B + 2 * E;
                for (int c = 0; c < E; c++)
                    yt[c] += w[(size_t)c * L] * (B[c] * X[c]);
            } else {
                const float *st = state + (size_t)(L - 1 + tk) * E;
                for (int c = 0; c < E; c++)
                    yt[c] += w[(size_t)c * L] * st[c];
            }
        }
        for (int c = 0; c < E; c++)
            yt[c] *= C[c];
    }
}

/* Gated short convolution over the n rows of s->u; result in s->o.
 *   [B; C; X] = in_proj·u,  s_t = B ⊙ X,  y_t = C ⊙ Σ_k w[k]·s_{t-L+1+k},  o = out_proj·y
 * The state (last L-1 values of s) carries over to the next call. */
static void short_conv(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                       struct lfm2_cache *cache, struct lfm2_scratch *s, lfm2_pool *pool, int n)
{
    const int E = bb->hp.n_embd, L = bb->hp.n_conv_cache;
    float *bcx = s->work, *y = s->work + (size_t)n * 3 * E;

    lfm2_matmul(pool, ly->conv_in, s->u, E, bcx, 3 * E, n);
    struct rows_job j = { .fn = conv_rows, .n = n, .bb = bb, .ly = ly, .s = s, .cache = cache };
    for_rows(pool, &j);

    /* new state: the last L-1 values of s over [old state | this batch] */
    float *state = cache->conv + (size_t)ly->cache_index * (L - 1) * E;
    for (int r = 0; r < L - 1; r++) {
        const int src = n - (L - 1) + r; /* batch row, or (negative) an older state row */
        float *dst = state + (size_t)r * E;
        if (src >= 0) {
            const float *B = bcx + (size_t)src * 3 * E, *X = B + 2 * E;
            for (int c = 0; c < E; c++)
                dst[c] = B[c] * X[c];
        } else {
            memmove(dst, state + (size_t)(L - 1 + src) * E, (size_t)E * sizeof(float));
        }
    }
    lfm2_matmul(pool, ly->conv_out, y, E, s->o, E, n);
}

/* Per-head RMSNorm of q and k, then NeoX RoPE at each row's position. */
static void qk_rows(const struct rows_job *j, int t0, int t1)
{
    const struct lfm2_hparams *hp = &j->bb->hp;
    const int D = hp->head_dim, H = hp->n_head, HKV = j->ly->n_head_kv;
    for (int t = t0; t < t1; t++) {
        float *q = j->s->work + (size_t)t * H * D, *k = j->kc + (size_t)t * HKV * D;
        for (int h = 0; h < H; h++)
            lfm2_rmsnorm(q + h * D, q + h * D, j->ly->q_norm, D, hp->norm_eps);
        for (int h = 0; h < HKV; h++)
            lfm2_rmsnorm(k + h * D, k + h * D, j->ly->k_norm, D, hp->norm_eps);
        lfm2_rope_neox(q, H, D, hp->n_rot, j->pos0 + t, hp->rope_freq_base);
        lfm2_rope_neox(k, HKV, D, hp->n_rot, j->pos0 + t, hp->rope_freq_base);
    }
}

/* Grouped-query attention over the n rows of s->u; result in s->o. K and V rows are written
 * straight into the cache at their positions (row = position − base), normalized and rotated
 * in place with their absolute positions.
 *   o_t = softmax(q_t·K_jᵀ / sqrt(head_dim), j ≤ t, t − j < n_swa when windowed) · V */
static void attention(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                      struct lfm2_cache *cache, struct lfm2_scratch *s, lfm2_pool *pool, int n,
                      int32_t pos0)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const int E = hp->n_embd, D = hp->head_dim, H = hp->n_head, HKV = ly->n_head_kv;
    const int qd = H * D, kvd = HKV * D;
    const int32_t row0 = pos0 - cache->base;
    float *q = s->work, *att = s->work + (size_t)n * qd;
    float *kc = cache->k[ly->cache_index] + (size_t)row0 * kvd;
    float *vc = cache->v[ly->cache_index] + (size_t)row0 * kvd;

    const lfm2_tensor *w[3] = { ly->wq, ly->wk, ly->wv };
    float *y[3] = { q, kc, vc };
    const int64_t ldy[3] = { qd, kvd, kvd };
    lfm2_matmul_multi(pool, 3, w, s->u, E, y, ldy, n);

    struct rows_job j = { .fn = qk_rows, .n = n, .bb = bb, .ly = ly, .s = s, .pos0 = pos0, .kc = kc };
    for_rows(pool, &j);

    struct lfm2_attn_args a = {
        .q = q, .ldq = qd,
        .k = cache->k[ly->cache_index], .ldk = kvd,
        .v = cache->v[ly->cache_index], .ldv = kvd,
        .out = att, .ldo = qd,
        .n_q = n, .n_kv = row0 + n,
        .n_head = H, .n_head_kv = HKV, .head_dim = D,
        .scale = 1.0f / sqrtf((float)D),
        .causal = true, .q_pos0 = row0, .window = ly->n_swa,
    };
    lfm2_attention(pool, &a);
    lfm2_matmul(pool, ly->wo, att, qd, s->o, E, n);
}

static void swiglu_rows(const struct rows_job *j, int t0, int t1)
{
    const size_t off = (size_t)t0 * j->n_elem;
    lfm2_swiglu(j->up + off, j->gate + off, j->up + off, (int64_t)(t1 - t0) * j->n_elem);
}

/* up = silu(gate) ⊙ up over n rows of width ff */
static void swiglu(lfm2_pool *pool, float *gate, float *up, int n, int64_t ff)
{
    struct rows_job j = { .fn = swiglu_rows, .n = n, .n_elem = ff, .gate = gate, .up = up };
    for_rows(pool, &j);
}

/* SwiGLU feed-forward: o = down · (silu(gate·v) ⊙ up·v), v in s->u. */
static void ffn_dense(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                      struct lfm2_scratch *s, lfm2_pool *pool, int n)
{
    const int E = bb->hp.n_embd;
    const int ff = (int)ly->ffn_gate->ne[1];
    float *g = s->work, *h = s->work + (size_t)n * ff;
    const lfm2_tensor *w[2] = { ly->ffn_gate, ly->ffn_up };
    float *y[2] = { g, h };
    const int64_t ldy[2] = { ff, ff };
    lfm2_matmul_multi(pool, 2, w, s->u, E, y, ldy, n);
    swiglu(pool, g, h, n, ff);
    lfm2_matmul(pool, ly->ffn_down, h, ff, s->o, E, n);
}

/* Mixture of experts (LFM2-MoE): sigmoid router scores, top-k chosen on score + bias, the
 * chosen experts weighted by their unbiased scores renormalized to sum 1. Rows routed to the
 * same expert are gathered so each expert runs one matrix product. */
static void ffn_moe(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                    struct lfm2_scratch *s, lfm2_pool *pool, int n)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const int E = hp->n_embd, NE = hp->n_expert, K = hp->n_expert_used, FE = hp->n_ff_exp;

    lfm2_matmul(pool, ly->gate_inp, s->u, E, s->router, NE, n);

    int32_t *counts = s->ecount, *fill = s->ecount + NE + 1;
    memset(counts, 0, (size_t)(NE + 1) * sizeof *counts);
    for (int t = 0; t < n; t++) {
        float *r = s->router + (size_t)t * NE;
        for (int e = 0; e < NE; e++)
            r[e] = 1.0f / (1.0f + expf(-r[e]));
        int32_t *sel = s->sel + (size_t)t * K;
        float *w = s->selw + (size_t)t * K;
        /* top-k by biased score, descending (ties: lower index first) */
        for (int j = 0; j < K; j++) {
            int best = -1;
            float best_v = -INFINITY;
            for (int e = 0; e < NE; e++) {
                bool taken = false;
                for (int i = 0; i < j; i++)
                    taken |= sel[i] == e;
                float v = r[e] + (ly->exp_probs_b ? ly->exp_probs_b[e] : 0.0f);
                if (!taken && (best < 0 || v > best_v)) {
                    best = e;
                    best_v = v;
                }
            }
            sel[j] = best;
            counts[best + 1]++;
        }
        float sum = 0.0f;
        for (int j = 0; j < K; j++)
            sum += (w[j] = r[sel[j]]);
        if (sum < 6.103515625e-5f) /* llama.cpp's clamp */
            sum = 6.103515625e-5f;
        for (int j = 0; j < K; j++)
            w[j] = w[j] / sum * hp->expert_weights_scale;
    }

    /* Counting sort of (token, slot) pairs by expert: rows[] lists slot indices t*K + j. */
    for (int e = 0; e < NE; e++)
        counts[e + 1] += counts[e];
    memcpy(fill, counts, (size_t)NE * sizeof *fill);
    for (int t = 0; t < n; t++)
        for (int j = 0; j < K; j++)
            s->rows[fill[s->sel[t * K + j]]++] = t * K + j;

    memset(s->o, 0, (size_t)n * E * sizeof(float));
    for (int e = 0; e < NE; e++) {
        const int r0 = counts[e], cnt = counts[e + 1] - counts[e];
        if (cnt == 0)
            continue;
        for (int i = 0; i < cnt; i++)
            memcpy(s->xe + (size_t)i * E, s->u + (size_t)(s->rows[r0 + i] / K) * E,
                   (size_t)E * sizeof(float));
        lfm2_tensor wg = lfm2_tensor_slab(ly->gate_exps, e);
        lfm2_tensor wu = lfm2_tensor_slab(ly->up_exps, e);
        lfm2_tensor wd = lfm2_tensor_slab(ly->down_exps, e);
        const lfm2_tensor *w[2] = { &wg, &wu };
        float *y[2] = { s->ge, s->he };
        const int64_t ldy[2] = { FE, FE };
        lfm2_matmul_multi(pool, 2, w, s->xe, E, y, ldy, cnt);
        swiglu(pool, s->ge, s->he, cnt, FE);
        lfm2_matmul(pool, &wd, s->he, FE, s->oe, E, cnt);
        for (int i = 0; i < cnt; i++) {
            const int slot = s->rows[r0 + i];
            const float wt = s->selw[slot];
            float *o = s->o + (size_t)(slot / K) * E;
            const float *oe = s->oe + (size_t)i * E;
            for (int c = 0; c < E; c++)
                o[c] += wt * oe[c];
        }
    }
}

/* ---- the backbone -------------------------------------------------------------------------------- */

bool lfm2_backbone_forward(const struct lfm2_backbone *bb, struct lfm2_cache *cache,
                           struct lfm2_scratch *s, lfm2_pool *pool, int n, int32_t pos0)
{
    const struct lfm2_hparams *hp = &bb->hp;

    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];

        if (s->abort_cb && s->abort_cb(s->abort_data))
            return false;

        /* operator block: h += Conv(RMSNorm(h)) or Attention(RMSNorm(h)); the previous
         * layer's FFN output is added to h on the way */
        residual_norm(pool, bb, s, n, il > 0, ly->attn_norm);
        if (ly->kind == LFM2_LAYER_CONV)
            short_conv(bb, ly, cache, s, pool, n);
        else
            attention(bb, ly, cache, s, pool, n, pos0);

        /* feed-forward block: h += FFN(RMSNorm(h)) */
        residual_norm(pool, bb, s, n, true, ly->ffn_norm);
        if (ly->moe)
            ffn_moe(bb, ly, s, pool, n);
        else
            ffn_dense(bb, ly, s, pool, n);
    }
    lfm2_vec_add(s->x, s->x, s->o, (int64_t)n * hp->n_embd);
    return true;
}

void lfm2_backbone_output(const struct lfm2_backbone *bb, struct lfm2_scratch *s, lfm2_pool *pool,
                          int first, int n, const lfm2_tensor *head, const float *bias, float *out,
                          int64_t ldo)
{
    const int E = bb->hp.n_embd;
    for (int t = 0; t < n; t++)
        lfm2_rmsnorm(s->u + (size_t)t * E, s->x + (size_t)(first + t) * E, bb->output_norm, E,
                     bb->hp.norm_eps);
    if (head)
        lfm2_matmul_bias(pool, head, bias, s->u, E, out, ldo, n);
}
