/* forward.c — the LFM2 backbone forward pass, written to be read top to bottom.
 *
 *   h = input rows (token embeddings, or embeddings injected by an encoder)
 *   for each layer:
 *       u = RMSNorm(h) ;  h += ShortConv(u) or Attention(u)
 *       v = RMSNorm(h) ;  h += SwiGLU(v) or MoE(v)
 *   (the caller applies the final norm and the LM head to the rows it wants)
 *
 * All products go through lfm2_matmul (quantized kernels, thread pool); a batch of n rows is
 * processed layer by layer, so prefill turns into matrix-matrix products. */
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
    c->s = calloc((size_t)bb->n_conv_layers + 1, sizeof *c->s);
    if (!c->k || !c->v || !c->s)
        goto oom;

    /* One anonymous mapping for every layer's rows: pages become resident only for the
     * positions actually written, so a large n_ctx costs address space, not memory. */
    size_t total = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        size_t row = ly->kind == LFM2_LAYER_ATTENTION ? 2 * (size_t)ly->n_head_kv * hp->head_dim
                                                      : (size_t)hp->n_embd;
        total += (row * (size_t)n_ctx * sizeof(float) + 4095) & ~(size_t)4095;
    }
    if (total == 0)
        total = 4096;
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (map == MAP_FAILED) {
        lfm2_set_error("cannot reserve %zu bytes for the caches of %d positions", total, n_ctx);
        lfm2_cache_free(c);
        return -1;
    }
    c->map = map;
    c->map_size = total;
    char *p = map;
    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind == LFM2_LAYER_ATTENTION) {
            size_t kv = (size_t)ly->n_head_kv * hp->head_dim * (size_t)n_ctx * sizeof(float);
            c->k[ly->cache_index] = (float *)p;
            c->v[ly->cache_index] = (float *)(p + kv);
            p += (2 * kv + 4095) & ~(size_t)4095;
        } else {
            size_t sz = (size_t)hp->n_embd * (size_t)n_ctx * sizeof(float);
            c->s[ly->cache_index] = (float *)p;
            p += (sz + 4095) & ~(size_t)4095;
        }
    }
    return 0;
oom:
    lfm2_cache_free(c);
    return lfm2_set_error("out of memory");
}

void lfm2_cache_free(struct lfm2_cache *c)
{
    if (c->map)
        munmap(c->map, c->map_size);
    free(c->k);
    free(c->v);
    free(c->s);
    memset(c, 0, sizeof *c);
}

/* ---- scratch ----------------------------------------------------------------------------------- */

int lfm2_scratch_init(struct lfm2_scratch *s, const struct lfm2_backbone *bb, int n_batch)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const size_t n = (size_t)n_batch, E = (size_t)hp->n_embd;
    const size_t qd = (size_t)hp->n_head * hp->head_dim;
    const size_t kvd = (size_t)(hp->n_head_kv_max ? hp->n_head_kv_max : 1) * hp->head_dim;
    const size_t ff = (size_t)(hp->n_ff ? hp->n_ff : 1);
    memset(s, 0, sizeof *s);
    s->n_batch = n_batch;
    float **bufs[] = { &s->x, &s->u, &s->bcx, &s->y, &s->q, &s->k, &s->v, &s->att, &s->g, &s->h, &s->o };
    const size_t sizes[] = { n * E, n * E, n * 3 * E, n * E, n * qd, n * kvd, n * kvd, n * qd, n * ff, n * ff, n * E };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (!(*bufs[i] = lfm2_alloc_aligned(sizes[i] * sizeof(float))))
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
    void *p[] = { s->x, s->u, s->bcx, s->y, s->q, s->k, s->v, s->att, s->g, s->h, s->o,
                  s->router, s->sel, s->selw, s->rows, s->ecount, s->xe, s->ge, s->he, s->oe };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        lfm2_free_aligned(p[i]);
    memset(s, 0, sizeof *s);
}

/* ---- operators ------------------------------------------------------------------------------ */

/* Gated short convolution over n rows of u; result in s->o.
 *   [B; C; X] = in_proj·u,  s_t = B ⊙ X,  y_t = C ⊙ Σ_k w[k]·s_{t-L+1+k},  o = out_proj·y
 * s_t is stored in the cache row of position pos0 + t, so the taps of earlier positions
 * (the conv "state") are simply the previous rows. */
static void short_conv(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                       struct lfm2_cache *cache, struct lfm2_scratch *s, lfm2_pool *pool, int n,
                       int32_t pos0)
{
    const int E = bb->hp.n_embd, L = bb->hp.n_conv_cache;
    float *hist = cache->s[ly->cache_index];

    lfm2_matmul(pool, ly->conv_in, s->u, E, s->bcx, 3 * E, n);
    for (int t = 0; t < n; t++) {
        const float *B = s->bcx + (size_t)t * 3 * E, *X = B + 2 * E;
        float *st = hist + (size_t)(pos0 + t) * E;
        for (int c = 0; c < E; c++)
            st[c] = B[c] * X[c];
    }
    for (int t = 0; t < n; t++) {
        const int32_t p = pos0 + t;
        const float *C = s->bcx + (size_t)t * 3 * E + E;
        float *y = s->y + (size_t)t * E;
        for (int c = 0; c < E; c++) {
            const float *w = ly->conv_w + (size_t)c * L;
            float acc = 0.0f;
            for (int k = 0; k < L; k++) {
                const int32_t pk = p - (L - 1) + k;
                if (pk >= 0)
                    acc += w[k] * hist[(size_t)pk * E + c];
            }
            y[c] = C[c] * acc;
        }
    }
    lfm2_matmul(pool, ly->conv_out, s->y, E, s->o, E, n);
}

/* Grouped-query attention over n rows of u; result in s->o. K and V rows are written
 * straight into the cache at their positions, normalized and rotated in place. */
static void attention(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                      struct lfm2_cache *cache, struct lfm2_scratch *s, lfm2_pool *pool, int n,
                      int32_t pos0)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const int E = hp->n_embd, D = hp->head_dim, H = hp->n_head, HKV = ly->n_head_kv;
    const int qd = H * D, kvd = HKV * D;
    float *kc = cache->k[ly->cache_index] + (size_t)pos0 * kvd;
    float *vc = cache->v[ly->cache_index] + (size_t)pos0 * kvd;

    const lfm2_tensor *w[3] = { ly->wq, ly->wk, ly->wv };
    float *y[3] = { s->q, kc, vc };
    const int64_t ldy[3] = { qd, kvd, kvd };
    lfm2_matmul_multi(pool, 3, w, s->u, E, y, ldy, n);

    for (int t = 0; t < n; t++) {
        float *q = s->q + (size_t)t * qd, *k = kc + (size_t)t * kvd;
        for (int h = 0; h < H; h++)
            lfm2_rmsnorm(q + h * D, q + h * D, ly->q_norm, D, hp->norm_eps);
        for (int h = 0; h < HKV; h++)
            lfm2_rmsnorm(k + h * D, k + h * D, ly->k_norm, D, hp->norm_eps);
        lfm2_rope_neox(q, H, D, hp->n_rot, pos0 + t, hp->rope_freq_base);
        lfm2_rope_neox(k, HKV, D, hp->n_rot, pos0 + t, hp->rope_freq_base);
    }

    struct lfm2_attn_args a = {
        .q = s->q, .ldq = qd,
        .k = cache->k[ly->cache_index], .ldk = kvd,
        .v = cache->v[ly->cache_index], .ldv = kvd,
        .out = s->att, .ldo = qd,
        .n_q = n, .n_kv = pos0 + n,
        .n_head = H, .n_head_kv = HKV, .head_dim = D,
        .scale = 1.0f / sqrtf((float)D),
        .causal = true, .q_pos0 = pos0, .window = hp->n_swa,
    };
    lfm2_attention(pool, &a);
    lfm2_matmul(pool, ly->wo, s->att, qd, s->o, E, n);
}

/* SwiGLU feed-forward: o = down · (silu(gate·v) ⊙ up·v), v in s->u. */
static void ffn_dense(const struct lfm2_backbone *bb, const struct lfm2_layer *ly,
                      struct lfm2_scratch *s, lfm2_pool *pool, int n)
{
    const int E = bb->hp.n_embd;
    const int ff = (int)ly->ffn_gate->ne[1];
    const lfm2_tensor *w[2] = { ly->ffn_gate, ly->ffn_up };
    float *y[2] = { s->g, s->h };
    const int64_t ldy[2] = { ff, ff };
    lfm2_matmul_multi(pool, 2, w, s->u, E, y, ldy, n);
    lfm2_swiglu(s->h, s->g, s->h, (int64_t)n * ff);
    lfm2_matmul(pool, ly->ffn_down, s->h, ff, s->o, E, n);
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
        lfm2_swiglu(s->he, s->ge, s->he, (int64_t)cnt * FE);
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

void lfm2_backbone_forward(const struct lfm2_backbone *bb, struct lfm2_cache *cache,
                           struct lfm2_scratch *s, lfm2_pool *pool, int n, int32_t pos0)
{
    const struct lfm2_hparams *hp = &bb->hp;
    const int E = hp->n_embd;

    for (int il = 0; il < hp->n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];

        /* operator block: h += Conv(RMSNorm(h)) or Attention(RMSNorm(h)) */
        for (int t = 0; t < n; t++)
            lfm2_rmsnorm(s->u + (size_t)t * E, s->x + (size_t)t * E, ly->attn_norm, E, hp->norm_eps);
        if (ly->kind == LFM2_LAYER_CONV)
            short_conv(bb, ly, cache, s, pool, n, pos0);
        else
            attention(bb, ly, cache, s, pool, n, pos0);
        lfm2_vec_add(s->x, s->x, s->o, (int64_t)n * E);

        /* feed-forward block: h += FFN(RMSNorm(h)) */
        for (int t = 0; t < n; t++)
            lfm2_rmsnorm(s->u + (size_t)t * E, s->x + (size_t)t * E, ly->ffn_norm, E, hp->norm_eps);
        if (ly->moe)
            ffn_moe(bb, ly, s, pool, n);
        else
            ffn_dense(bb, ly, s, pool, n);
        lfm2_vec_add(s->x, s->x, s->o, (int64_t)n * E);
    }
}
