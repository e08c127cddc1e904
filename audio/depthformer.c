/* depthformer.c — the audio head: one frame of K codes from the backbone's hidden state h.
 *
 *   s = depth_linear · h + b                     K slices s_0 … s_{K−1} of D
 *   clear the cache
 *   for k = 0 … K−1 (position k):
 *       x = s_k  (+ depth_embeddings.{k−1}.embedding[c_{k−1}] for k > 0)
 *       for each layer:
 *           u = RMSNorm(x)·operator_norm ;  [q k v] = qkv_proj · u
 *           q, k = RMSNorm per head (q_layernorm, k_layernorm) ; RoPE on adjacent pairs
 *           x += out_proj · softmax(q·Kᵀ/sqrt(head_dim)) V       (keys 0 … k, GQA)
 *           u = RMSNorm(x)·ffn_norm ;  x += w2 · (silu(w1·u) ⊙ w3·u)
 *       logits_k = depth_embeddings.k.to_logits · (RMSNorm(x)·depth_embeddings.k.embedding_norm)
 *       c_k = sample(logits_k)
 * No final norm in the stack; every RMSNorm has eps 1e-5 (spec lfm2-audio-out §4). Codebooks
 * 1 … K−1 never sample the end code (only c_0 ends the audio). All products
 * are one row: decode-shaped, memory bound, on the engine's kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tts-impl.h"

struct lfm2_audio_head {
    const lfm2_vocoder *v;
    struct lfm2_audio_head_params p;
    lfm2_pool *pool;
    bool own_pool;
    lfm2_pool *solo;     /* one thread: the attention over at most K keys is less work than
                            waking the pool's workers (48 times a frame) */
    lfm2_sampler *sampler;
    float *lin;          /* [K·D] depth_linear output */
    float *x, *u, *o;    /* [D] residual, normed, block output */
    float *qkv;          /* [D + 2·kv] */
    float *att;          /* [D] attention output */
    float *gate, *up;    /* [ff] */
    float *row;          /* [max(D, H)] a looked-up row */
    float *kc, *vc;      /* [L][K][kv] the cache of one frame */
    float *logits;       /* [K][V] */
    float *masked;       /* [V] logits of codebooks 1 … K−1 without the end code */
    double ms;
    int64_t frames;
};

struct lfm2_audio_head_params lfm2_audio_head_default_params(void)
{
    struct lfm2_audio_head_params p = {
        .temperature = 0.8f, .top_k = 64, .seed = 0, .n_threads = 0, .pool = NULL,
    };
    return p;
}

static lfm2_sampler *new_sampler(int n, float temperature, int top_k, uint64_t seed)
{
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    sp.temperature = temperature;   /* temperature → top-k → draw, as llama.cpp's chain */
    sp.top_k = top_k;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.repeat_penalty = 1.0f;
    sp.repeat_last_n = 0;
    sp.seed = seed;
    return lfm2_sampler_new_n(n, sp);
}

lfm2_audio_head *lfm2_audio_head_new(const lfm2_vocoder *v, struct lfm2_audio_head_params p)
{
    const struct lfm2_vocoder_hparams *hp = &v->hp;
    const size_t D = (size_t)hp->n_depth_embd, K = (size_t)hp->n_codebooks;
    const size_t kv = (size_t)hp->n_head_kv * hp->head_dim, L = (size_t)hp->n_layer;
    lfm2_audio_head *h = calloc(1, sizeof *h);
    if (!h) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    h->v = v;
    h->p = p;
    h->pool = p.pool;
    if (!h->pool) {
        if (!(h->pool = lfm2_pool_new(p.n_threads)))
            goto fail;
        h->own_pool = true;
    }
    const size_t rowlen = D > (size_t)hp->n_embd ? D : (size_t)hp->n_embd;
    if (!(h->solo = lfm2_pool_new(1)) ||
        !(h->sampler = new_sampler(hp->n_codes, p.temperature, p.top_k, p.seed)) ||
        !(h->lin = lfm2_alloc_aligned(K * D * sizeof(float))) ||
        !(h->x = lfm2_alloc_aligned(D * sizeof(float))) ||
        !(h->u = lfm2_alloc_aligned(D * sizeof(float))) ||
        !(h->o = lfm2_alloc_aligned(D * sizeof(float))) ||
        !(h->qkv = lfm2_alloc_aligned((D + 2 * kv) * sizeof(float))) ||
        !(h->att = lfm2_alloc_aligned(D * sizeof(float))) ||
        !(h->gate = lfm2_alloc_aligned((size_t)hp->n_ff * sizeof(float))) ||
        !(h->up = lfm2_alloc_aligned((size_t)hp->n_ff * sizeof(float))) ||
        !(h->row = lfm2_alloc_aligned(rowlen * sizeof(float))) ||
        !(h->kc = lfm2_alloc_aligned(L * K * kv * sizeof(float))) ||
        !(h->vc = lfm2_alloc_aligned(L * K * kv * sizeof(float))) ||
        !(h->logits = lfm2_alloc_aligned(K * (size_t)hp->n_codes * sizeof(float))) ||
        !(h->masked = lfm2_alloc_aligned((size_t)hp->n_codes * sizeof(float))))
        goto fail;
    return h;
fail:
    lfm2_audio_head_free(h);
    return NULL;
}

void lfm2_audio_head_free(lfm2_audio_head *h)
{
    if (!h)
        return;
    if (h->own_pool)
        lfm2_pool_free(h->pool);
    if (h->solo)
        lfm2_pool_free(h->solo);
    lfm2_sampler_free(h->sampler);
    void *p[] = { h->lin, h->x, h->u, h->o, h->qkv, h->att, h->gate, h->up, h->row, h->kc, h->vc,
                  h->logits, h->masked };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        lfm2_free_aligned(p[i]);
    free(h);
}

int lfm2_audio_head_set_sampling(lfm2_audio_head *h, float temperature, int top_k, uint64_t seed)
{
    lfm2_sampler *s = new_sampler(h->v->hp.n_codes, temperature, top_k, seed);
    if (!s)
        return -1;
    lfm2_sampler_free(h->sampler);
    h->sampler = s;
    h->p.temperature = temperature;
    h->p.top_k = top_k;
    h->p.seed = seed;
    return 0;
}

void lfm2_audio_head_reset(lfm2_audio_head *h)
{
    lfm2_sampler_reset(h->sampler);
}

/* RoPE "NORM": pairs (2i, 2i+1) of each head rotated by the angle of position p. */
static void rope_adjacent(const lfm2_vocoder *v, float *x, int n_head, int p)
{
    const int hd = v->hp.head_dim, half = hd / 2;
    const float *c = v->rope_cos + (size_t)p * half, *s = v->rope_sin + (size_t)p * half;
    for (int h = 0; h < n_head; h++) {
        float *xh = x + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            const float a = xh[2 * i], b = xh[2 * i + 1];
            xh[2 * i] = a * c[i] - b * s[i];
            xh[2 * i + 1] = a * s[i] + b * c[i];
        }
    }
}

/* One depthformer layer for the row h->x at position p (keys and values of p go to the cache). */
static void layer_step(lfm2_audio_head *h, int l, int p)
{
    const lfm2_vocoder *v = h->v;
    const struct lfm2_vocoder_hparams *hp = &v->hp;
    const struct lfm2_depth_layer *ly = &v->layers[l];
    const int D = hp->n_depth_embd, hd = hp->head_dim, ff = hp->n_ff;
    const int kv = hp->n_head_kv * hd, K = hp->n_codebooks;
    const float eps = hp->norm_eps;

    /* attention block */
    lfm2_rmsnorm(h->u, h->x, ly->attn_norm, D, eps);
    lfm2_matmul(h->pool, ly->qkv, h->u, D, h->qkv, D + 2 * kv, 1);
    float *q = h->qkv, *k = h->qkv + D, *val = h->qkv + D + kv;
    for (int i = 0; i < hp->n_head; i++)
        lfm2_rmsnorm(q + i * hd, q + i * hd, ly->q_norm, hd, eps);
    for (int i = 0; i < hp->n_head_kv; i++)
        lfm2_rmsnorm(k + i * hd, k + i * hd, ly->k_norm, hd, eps);
    rope_adjacent(v, q, hp->n_head, p);
    rope_adjacent(v, k, hp->n_head_kv, p);
    float *kc = h->kc + (size_t)l * K * kv, *vc = h->vc + (size_t)l * K * kv;
    memcpy(kc + (size_t)p * kv, k, (size_t)kv * sizeof(float));
    memcpy(vc + (size_t)p * kv, val, (size_t)kv * sizeof(float));
    struct lfm2_attn_args a = {
        .q = q, .ldq = D, .k = kc, .ldk = kv, .v = vc, .ldv = kv, .out = h->att, .ldo = D,
        .n_q = 1, .n_kv = p + 1, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hd,
        .scale = 1.0f / sqrtf((float)hd), .causal = true, .q_pos0 = p, .window = 0,
    };
    lfm2_attention(h->solo, &a);
    lfm2_matmul(h->pool, ly->out, h->att, D, h->o, D, 1);
    lfm2_vec_add(h->x, h->x, h->o, D);

    /* SwiGLU block */
    lfm2_rmsnorm(h->u, h->x, ly->ffn_norm, D, eps);
    const lfm2_tensor *w[2] = { ly->w1, ly->w3 };
    float *y[2] = { h->gate, h->up };
    const int64_t ldy[2] = { ff, ff };
    lfm2_matmul_multi(h->pool, 2, w, h->u, D, y, ldy, 1);
    lfm2_swiglu(h->up, h->gate, h->up, ff);
    lfm2_matmul(h->pool, ly->w2, h->up, ff, h->o, D, 1);
    lfm2_vec_add(h->x, h->x, h->o, D);
}

int lfm2_audio_head_sample(lfm2_audio_head *h, const float *hidden, int32_t *codes)
{
    const lfm2_vocoder *v = h->v;
    const struct lfm2_vocoder_hparams *hp = &v->hp;
    const int D = hp->n_depth_embd, V = hp->n_codes;
    const double t0 = lfm2_time_ms();

    lfm2_matmul_bias(h->pool, v->depth_linear, v->depth_linear_b, hidden, hp->n_embd, h->lin,
                     (int64_t)hp->n_codebooks * D, 1);
    for (int k = 0; k < hp->n_codebooks; k++) {
        memcpy(h->x, h->lin + (size_t)k * D, (size_t)D * sizeof(float));
        if (k > 0) { /* the previous codebook's entry for the code just sampled */
            lfm2_get_rows(v->cb_embd[k - 1], &codes[k - 1], 1, h->row);
            lfm2_vec_add(h->x, h->x, h->row, D);
        }
        for (int l = 0; l < hp->n_layer; l++)
            layer_step(h, l, k);
        float *logits = h->logits + (size_t)k * V;
        lfm2_rmsnorm(h->u, h->x, v->cb_norm[k], D, hp->norm_eps);
        lfm2_matmul(h->pool, v->cb_logits[k], h->u, D, logits, V, 1);
        /* Only codebook 0 can end the audio; an end code elsewhere in a frame that goes on would
         * be a code no table has (the references leave it undefined), so codebooks 1 … K−1
         * choose among the real codes. */
        const float *cand = logits;
        if (k > 0) {
            memcpy(h->masked, logits, (size_t)V * sizeof(float));
            h->masked[hp->eoa] = -INFINITY;
            cand = h->masked;
        }
        codes[k] = lfm2_sampler_sample(h->sampler, cand);
        if (codes[k] < 0 || codes[k] >= V)
            return lfm2_set_error("audio head: codebook %d: no code sampled (logits not finite?)", k);
    }
    h->ms += lfm2_time_ms() - t0;
    h->frames++;
    return 0;
}

const float *lfm2_audio_head_logits(const lfm2_audio_head *h, int k)
{
    if (k < 0 || k >= h->v->hp.n_codebooks) {
        lfm2_set_error("lfm2_audio_head_logits: codebook %d of %d", k, h->v->hp.n_codebooks);
        return NULL;
    }
    return h->logits + (size_t)k * h->v->hp.n_codes;
}

int lfm2_audio_head_embed(lfm2_audio_head *h, const int32_t *codes, float *out)
{
    const lfm2_vocoder *v = h->v;
    const int K = v->hp.n_codebooks, H = v->hp.n_embd;
    if (lfm2_audio_check_codes(codes, 1, K, v->hp.eoa))
        return -1;
    for (int k = 0; k < K; k++) { /* rows k·V + c_k: each codebook's table includes its EOA */
        const int32_t row = k * v->hp.n_codes + codes[k];
        lfm2_get_rows(v->audio_embd, &row, 1, k ? h->row : out);
        if (k)
            lfm2_vec_add(out, out, h->row, H);
    }
    return 0;
}

double lfm2_audio_head_ms(const lfm2_audio_head *h, int64_t *n_frames)
{
    if (n_frames)
        *n_frames = h->frames;
    return h->ms;
}
