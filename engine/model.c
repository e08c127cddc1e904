/* model.c — loading an LFM2 / LFM2-MoE backbone and vocabulary from a GGUF file.
 *
 * Every hyperparameter comes from the file's metadata and every tensor is checked against
 * the shape those hyperparameters imply, so a file that does not fit is refused at load time
 * with a message naming the key or tensor, never at inference time. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backbone.h"
#include "internal.h"
#include "quants.h"
#include "vocab.h"

struct lfm2_model {
    lfm2_gguf *gguf;
    char *path;
    struct lfm2_backbone bb;
    struct lfm2_vocab *vocab;
    uint64_t n_params;
    uint64_t size_bytes;
    char *chat_template;
    char id[256];
    char desc[256];
};

/* ---- owned memory and weight preparation ---------------------------------------------- */

int lfm2_owned_add(struct lfm2_owned *o, void *p)
{
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        void **q = realloc(o->p, (size_t)cap * sizeof *q);
        if (!q) {
            free(p);
            return lfm2_set_error("out of memory");
        }
        o->p = q;
        o->cap = cap;
    }
    o->p[o->n++] = p;
    return 0;
}

void lfm2_owned_free(struct lfm2_owned *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->p[i]);
    free(o->p);
    memset(o, 0, sizeof *o);
}

/* A copy in owned memory: after loading nothing reads the file mapping again, so the pages of
 * prepared weights stay dropped (reading a small tensor in place would map its large
 * read-ahead neighbours into the RSS). */
const float *lfm2_owned_vec_f32(struct lfm2_owned *o, const lfm2_tensor *t)
{
    if (!t)
        return NULL;
    int64_t n = lfm2_tensor_nelements(t);
    float *f = malloc((size_t)n * sizeof(float));
    if (!f) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    if (lfm2_owned_add(o, f))
        return NULL;
    lfm2_dequantize_row(t->type, t->data, f, n);
    return f;
}

/* F16/BF16 → an F32 copy (freed by the caller; a view of it in *out); source pages dropped. */
static float *widen(const lfm2_tensor *w, lfm2_tensor *out, bool drop_source)
{
    size_t n = (size_t)lfm2_tensor_nelements(w), bytes;
    float *f = NULL;
    if (!lfm2_mul_ok(n, sizeof(float), &bytes) || !(f = lfm2_alloc_aligned(bytes))) {
        lfm2_set_error("out of memory widening tensor '%s' to F32", w->name);
        return NULL;
    }
    lfm2_tensor_to_f32(w, f);
    if (drop_source) {
        const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)w->data;
        const uintptr_t p0 = (a + ps - 1) & ~(ps - 1), p1 = (a + w->nbytes) & ~(ps - 1);
        if (p1 > p0)
            madvise((void *)p0, p1 - p0, MADV_DONTNEED);
    }
    *out = *w;
    out->type = LFM2_TYPE_F32;
    out->data = f;
    out->nb1 = (size_t)w->ne[0] * sizeof(float);
    out->nbytes = bytes;
    return f;
}

int lfm2_prepare_weight(struct lfm2_owned *o, const lfm2_tensor **slot, bool drop_source,
                        bool widen_float)
{
    if (!*slot)
        return 0;
    lfm2_tensor *view = malloc(sizeof *view);
    if (!view)
        return lfm2_set_error("out of memory");
    const lfm2_tensor *src = *slot;
    float *wide = NULL;
    if (widen_float && (src->type == LFM2_TYPE_F16 || src->type == LFM2_TYPE_BF16)) {
        if (!(wide = widen(src, view, drop_source))) {
            free(view);
            return -1;
        }
        lfm2_tensor wv = *view;   /* prepare from the F32 copy, whose pages must stay */
        src = &wv;
        lfm2_clear_error();
        void *mem = lfm2_weights_prepare(src, view, false);
        if (mem) {
            free(wide);
            wide = NULL;
        } else if (lfm2_last_error()[0]) {
            free(wide);
            free(view);
            return -1;
        } else {
            *view = wv;   /* F32 used as stored */
        }
        if ((wide && lfm2_owned_add(o, wide)) || (mem && lfm2_owned_add(o, mem)) ||
            lfm2_owned_add(o, view))
            return -1;
        *slot = view;
        return 0;
    }
    lfm2_clear_error();
    void *mem = lfm2_weights_prepare(src, view, drop_source);
    if (!mem) { /* a type used as stored, or out of memory */
        free(view);
        return lfm2_last_error()[0] ? -1 : 0;
    }
    /* lfm2_weights_free() is free() */
    if (lfm2_owned_add(o, mem) || lfm2_owned_add(o, view))
        return -1;
    *slot = view;
    return 0;
}

/* ---- small loaders ------------------------------------------------------------------- */

struct loader {
    const lfm2_gguf *g;
    const char *arch;
    const char *tprefix;
    struct lfm2_backbone *bb;
};

static const char *kname(const struct loader *L, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", L->arch, suffix);
    return buf;
}

/* Integer key <arch>.<suffix> in [lo, hi]; required, or optional keeping *out when absent. */
static int get_int_key(const struct loader *L, const char *suffix, int64_t lo, int64_t hi,
                       bool required, int *out)
{
    char key[128];
    int64_t v;
    const int r = lfm2_gguf_get_int_range(L->g, kname(L, suffix, key, sizeof key), lo, hi,
                                          required, &v);
    if (r > 0)
        *out = (int)v;
    return r < 0 ? -1 : 0;
}

static int get_int_req(const struct loader *L, const char *suffix, int64_t lo, int64_t hi,
                       int *out)
{
    return get_int_key(L, suffix, lo, hi, true, out);
}

static int get_int_opt(const struct loader *L, const char *suffix, int64_t lo, int64_t hi,
                       int *out)
{
    return get_int_key(L, suffix, lo, hi, false, out);
}

static int get_f32_opt(const struct loader *L, const char *suffix, float *out, bool required)
{
    char key[128];
    int r = lfm2_gguf_get_f32(L->g, kname(L, suffix, key, sizeof key), out);
    if (r < 0)
        return -1;
    if (r == 0 && required)
        return lfm2_set_error("%s: missing key '%s'", lfm2_gguf_path(L->g), key);
    return 0;
}

#define TYPES_F32 (1ull << LFM2_TYPE_F32)
#define TYPES_VEC ((1ull << LFM2_TYPE_F32) | (1ull << LFM2_TYPE_F16) | (1ull << LFM2_TYPE_BF16))

/* A tensor "<prefix><name>" with the given shape; NULL + error when absent or different. */
static const lfm2_tensor *tensor_req(const struct loader *L, uint64_t types, int n_dims,
                                     int64_t ne0, int64_t ne1, int64_t ne2, const char *fmt, ...)
    LFM2_PRINTF(7, 8);
static const lfm2_tensor *tensor_req(const struct loader *L, uint64_t types, int n_dims,
                                     int64_t ne0, int64_t ne1, int64_t ne2, const char *fmt, ...)
{
    char name[256], full[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s%s", L->tprefix, name);
    const int64_t ne[3] = { ne0, ne1, ne2 };
    return lfm2_gguf_require_tensor(L->g, full, n_dims, ne, types);
}

static bool tensor_has(const struct loader *L, const char *fmt, ...) LFM2_PRINTF(2, 3);
static bool tensor_has(const struct loader *L, const char *fmt, ...)
{
    char name[256], full[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s%s", L->tprefix, name);
    return lfm2_gguf_find_tensor(L->g, full) != NULL;
}

static const float *vec_f32(struct loader *L, const lfm2_tensor *t)
{
    return lfm2_owned_vec_f32(&L->bb->owned, t);
}

/* ---- backbone ------------------------------------------------------------------------------ */

static int load_hparams(struct loader *L, struct lfm2_hparams *hp)
{
    const char *path = lfm2_gguf_path(L->g);
    memset(hp, 0, sizeof *hp);
    snprintf(hp->arch, sizeof hp->arch, "%s", L->arch);

    if (get_int_req(L, "block_count", 1, 4096, &hp->n_layer) ||
        get_int_req(L, "context_length", 1, INT32_MAX, &hp->n_ctx_train) ||
        get_int_req(L, "embedding_length", 1, 1 << 20, &hp->n_embd) ||
        get_int_req(L, "attention.head_count", 1, 4096, &hp->n_head))
        return -1;

    /* feed_forward_length: scalar, or per-layer array whose entries are equal here */
    {
        char key[128];
        int64_t *ff = calloc((size_t)hp->n_layer, sizeof *ff);
        if (!ff)
            return lfm2_set_error("out of memory");
        int r = lfm2_gguf_get_int_arr(L->g, kname(L, "feed_forward_length", key, sizeof key), ff,
                                      (size_t)hp->n_layer);
        if (r <= 0) {
            free(ff);
            return r < 0 ? -1 : lfm2_set_error("%s: missing key '%s'", path, key);
        }
        hp->n_ff = 0;
        for (int i = 0; i < hp->n_layer; i++) {
            if (ff[i] < 0 || ff[i] > (1 << 24)) {
                free(ff);
                return lfm2_set_error("%s: key '%s' has an invalid value", path, key);
            }
            if (ff[i] > hp->n_ff)
                hp->n_ff = (int)ff[i];
        }
        free(ff);
    }

    hp->head_dim = hp->n_embd / hp->n_head;
    int key_len = hp->head_dim, val_len = hp->head_dim;
    if (get_int_opt(L, "attention.key_length", 1, 65536, &key_len) ||
        get_int_opt(L, "attention.value_length", 1, 65536, &val_len))
        return -1;
    if (key_len != val_len)
        return lfm2_set_error("%s: attention key_length %d != value_length %d is not supported",
                              path, key_len, val_len);
    hp->head_dim = key_len;
    if (hp->head_dim % 2)
        return lfm2_set_error("%s: head dimension %d is odd (RoPE needs pairs)", path,
                              hp->head_dim);
    hp->n_rot = hp->head_dim;
    if (get_int_opt(L, "rope.dimension_count", 2, hp->head_dim, &hp->n_rot))
        return -1;
    if (hp->n_rot % 2)
        return lfm2_set_error("%s: rope.dimension_count %d is odd", path, hp->n_rot);

    hp->rope_freq_base = 10000.0f; /* llama.cpp's default when the key is absent */
    if (get_f32_opt(L, "rope.freq_base", &hp->rope_freq_base, false) ||
        get_f32_opt(L, "attention.layer_norm_rms_epsilon", &hp->norm_eps, true))
        return -1;
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f))
        return lfm2_set_error("%s: %s.attention.layer_norm_rms_epsilon = %g is invalid", path,
                              L->arch, hp->norm_eps);
    if (!(hp->rope_freq_base > 0.0f))
        return lfm2_set_error("%s: %s.rope.freq_base = %g is invalid", path, L->arch,
                              hp->rope_freq_base);
    hp->n_swa = 0;
    if (get_int_opt(L, "attention.sliding_window", 0, INT32_MAX, &hp->n_swa))
        return -1;
    {
        char key[128];
        bool causal = true;
        if (lfm2_gguf_get_bool(L->g, kname(L, "attention.causal", key, sizeof key), &causal) < 0)
            return -1;
        if (!causal)
            return lfm2_set_error("%s: non-causal LFM2 models (%s = false) are not supported",
                                  path, key);
    }

    hp->expert_weights_scale = 1.0f;
    if (!strcmp(L->arch, "lfm2moe")) {
        if (get_int_req(L, "expert_count", 1, 4096, &hp->n_expert) ||
            get_int_req(L, "expert_used_count", 1, hp->n_expert, &hp->n_expert_used) ||
            get_int_req(L, "expert_feed_forward_length", 1, 1 << 24, &hp->n_ff_exp) ||
            get_int_req(L, "leading_dense_block_count", 0, hp->n_layer, &hp->n_dense_lead) ||
            get_f32_opt(L, "expert_weights_scale", &hp->expert_weights_scale, false))
            return -1;
        if (hp->expert_weights_scale == 0.0f) /* written as 0 by converters that mean "none" */
            hp->expert_weights_scale = 1.0f;
        int gating = 2;
        if (get_int_opt(L, "expert_gating_func", 0, 16, &gating))
            return -1;
        if (gating != 2)
            return lfm2_set_error("%s: %s.expert_gating_func = %d is not supported (LFM2-MoE "
                                  "uses 2 = sigmoid)",
                                  path, L->arch, gating);
    } else {
        hp->n_dense_lead = hp->n_layer;
    }
    return 0;
}

int lfm2_backbone_load(struct lfm2_backbone *bb, const lfm2_gguf *g, const char *arch,
                       const char *tprefix)
{
    memset(bb, 0, sizeof *bb);
    struct loader L = { g, arch, tprefix, bb };
    struct lfm2_hparams *hp = &bb->hp;
    const char *path = lfm2_gguf_path(g);

    if (load_hparams(&L, hp))
        goto fail;

    /* Token embeddings define n_vocab. */
    const lfm2_tensor *te = lfm2_gguf_find_tensor(g, "token_embd.weight");
    if (tprefix[0]) {
        char name[300];
        snprintf(name, sizeof name, "%stoken_embd.weight", tprefix);
        te = lfm2_gguf_find_tensor(g, name);
    }
    if (!te) {
        lfm2_set_error("%s: missing tensor '%stoken_embd.weight'", path, tprefix);
        goto fail;
    }
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX) {
        lfm2_set_error("%s: tensor '%s' has an invalid vocabulary size", path, te->name);
        goto fail;
    }
    hp->n_vocab = (int)te->ne[1];
    const int E = hp->n_embd, V = hp->n_vocab, D = hp->head_dim;
    bb->tok_embd = tensor_req(&L, 0, 2, E, V, 0, "token_embd.weight");
    bb->output_norm = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, E, 0, 0, "token_embd_norm.weight"));
    if (!bb->tok_embd || !bb->output_norm)
        goto fail;
    bb->output = tensor_has(&L, "output.weight")
                     ? tensor_req(&L, 0, 2, E, V, 0, "output.weight")
                     : bb->tok_embd; /* tied */
    if (!bb->output)
        goto fail;

    /* Layer kinds come from the per-layer head_count_kv array (0 = short convolution). */
    int64_t *hkv = calloc((size_t)hp->n_layer, sizeof *hkv);
    bb->layers = calloc((size_t)hp->n_layer, sizeof *bb->layers);
    if (!hkv || !bb->layers) {
        free(hkv);
        lfm2_set_error("out of memory");
        goto fail;
    }
    {
        char key[128];
        int r = lfm2_gguf_get_int_arr(g, kname(&L, "attention.head_count_kv", key, sizeof key),
                                      hkv, (size_t)hp->n_layer);
        if (r <= 0) {
            free(hkv);
            if (r == 0)
                lfm2_set_error("%s: missing key '%s'", path, key);
            goto fail;
        }
    }

    bool any_conv = false;
    for (int il = 0; il < hp->n_layer; il++) {
        if (hkv[il] < 0 || hkv[il] > hp->n_head || (hkv[il] > 0 && hp->n_head % hkv[il])) {
            lfm2_set_error("%s: %s.attention.head_count_kv[%d] = %lld does not divide "
                           "head_count %d",
                           path, arch, il, (long long)hkv[il], hp->n_head);
            free(hkv);
            goto fail;
        }
        if (hkv[il] == 0)
            any_conv = true;
    }
    if (any_conv && get_int_req(&L, "shortconv.l_cache", 2, 64, &hp->n_conv_cache)) {
        free(hkv);
        goto fail;
    }

    int il;
    for (il = 0; il < hp->n_layer; il++) {
        struct lfm2_layer *ly = &bb->layers[il];
        ly->n_head_kv = (int)hkv[il];
        ly->kind = ly->n_head_kv == 0 ? LFM2_LAYER_CONV : LFM2_LAYER_ATTENTION;
        if (ly->n_head_kv > hp->n_head_kv_max)
            hp->n_head_kv_max = ly->n_head_kv;
        ly->attn_norm = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, E, 0, 0, "blk.%d.attn_norm.weight", il));
        ly->ffn_norm = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, E, 0, 0, "blk.%d.ffn_norm.weight", il));
        if (!ly->attn_norm || !ly->ffn_norm)
            break;
        if (ly->kind == LFM2_LAYER_CONV) {
            ly->cache_index = bb->n_conv_layers++;
            ly->conv_in = tensor_req(&L, 0, 2, E, 3 * (int64_t)E, 0, "blk.%d.shortconv.in_proj.weight", il);
            ly->conv_w = vec_f32(&L, tensor_req(&L, TYPES_VEC, 2, hp->n_conv_cache, E, 0,
                                                "blk.%d.shortconv.conv.weight", il));
            ly->conv_out = tensor_req(&L, 0, 2, E, E, 0, "blk.%d.shortconv.out_proj.weight", il);
            if (!ly->conv_in || !ly->conv_w || !ly->conv_out)
                break;
        } else {
            const int64_t kv = (int64_t)ly->n_head_kv * D;
            ly->cache_index = bb->n_attn_layers++;
            ly->n_swa = hp->n_swa;   /* the key applies to every attention layer (llama.cpp's
                                        LFM2: swa_type STANDARD on all of them) */
            ly->wq = tensor_req(&L, 0, 2, E, (int64_t)hp->n_head * D, 0, "blk.%d.attn_q.weight", il);
            ly->wk = tensor_req(&L, 0, 2, E, kv, 0, "blk.%d.attn_k.weight", il);
            ly->wv = tensor_req(&L, 0, 2, E, kv, 0, "blk.%d.attn_v.weight", il);
            ly->wo = tensor_req(&L, 0, 2, (int64_t)hp->n_head * D, E, 0, "blk.%d.attn_output.weight", il);
            ly->q_norm = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, D, 0, 0, "blk.%d.attn_q_norm.weight", il));
            ly->k_norm = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, D, 0, 0, "blk.%d.attn_k_norm.weight", il));
            if (!ly->wq || !ly->wk || !ly->wv || !ly->wo || !ly->q_norm || !ly->k_norm)
                break;
        }
        ly->moe = il >= hp->n_dense_lead;
        if (!ly->moe) {
            /* Dense width from the tensor (the key may be the MoE model's dense width). */
            const lfm2_tensor *gt = NULL;
            char name[300];
            snprintf(name, sizeof name, "%sblk.%d.ffn_gate.weight", tprefix, il);
            gt = lfm2_gguf_find_tensor(g, name);
            int64_t ff = gt ? gt->ne[1] : hp->n_ff;
            if (ff != hp->n_ff && !hp->n_expert) {
                lfm2_set_error("%s: tensor '%s' has %lld rows but feed_forward_length is %d",
                               path, name, (long long)ff, hp->n_ff);
                break;
            }
            ly->ffn_gate = tensor_req(&L, 0, 2, E, ff, 0, "blk.%d.ffn_gate.weight", il);
            ly->ffn_up = tensor_req(&L, 0, 2, E, ff, 0, "blk.%d.ffn_up.weight", il);
            ly->ffn_down = tensor_req(&L, 0, 2, ff, E, 0, "blk.%d.ffn_down.weight", il);
            if (!ly->ffn_gate || !ly->ffn_up || !ly->ffn_down)
                break;
        } else {
            const int NE = hp->n_expert, FE = hp->n_ff_exp;
            ly->gate_inp = tensor_req(&L, TYPES_VEC | (1ull << LFM2_TYPE_Q8_0), 2, E, NE, 0,
                                      "blk.%d.ffn_gate_inp.weight", il);
            ly->gate_exps = tensor_req(&L, 0, 3, E, FE, NE, "blk.%d.ffn_gate_exps.weight", il);
            ly->up_exps = tensor_req(&L, 0, 3, E, FE, NE, "blk.%d.ffn_up_exps.weight", il);
            ly->down_exps = tensor_req(&L, 0, 3, FE, E, NE, "blk.%d.ffn_down_exps.weight", il);
            if (!ly->gate_inp || !ly->gate_exps || !ly->up_exps || !ly->down_exps)
                break;
            if (tensor_has(&L, "blk.%d.exp_probs_b.bias", il)) {
                ly->exp_probs_b = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, NE, 0, 0, "blk.%d.exp_probs_b.bias", il));
                if (!ly->exp_probs_b)
                    break;
            }
        }
    }
    free(hkv);
    if (il < hp->n_layer) /* a layer failed (error set) */
        goto fail;

    /* Embedding models (LFM2-Audio detokenizer): a dense_2 head of n_out after the final norm. */
    if (get_int_opt(&L, "embedding_length_out", 1, 1 << 24, &bb->n_out))
        goto fail;
    if (bb->n_out) {
        bb->dense_out = tensor_req(&L, 0, 2, E, bb->n_out, 0, "dense_2.weight");
        bb->dense_out_b = vec_f32(&L, tensor_req(&L, TYPES_VEC, 1, bb->n_out, 0, 0, "dense_2.bias"));
        if (!bb->dense_out || !bb->dense_out_b)
            goto fail;
    }
    return 0;

fail:
    lfm2_backbone_free(bb);
    return -1;
}

void lfm2_backbone_free(struct lfm2_backbone *bb)
{
    lfm2_owned_free(&bb->owned);
    free(bb->layers);
    memset(bb, 0, sizeof *bb);
}

/* Prepares every matrix of the backbone once at load: the layout both the prefill GEMM and
 * the decode GEMV read at full speed (docs/benchmarks.md). */
int lfm2_backbone_prepare(struct lfm2_backbone *bb, bool drop, bool widen_float)
{
    const bool tied = bb->output == bb->tok_embd;
    struct lfm2_owned *o = &bb->owned;
    if (lfm2_prepare_weight(o, &bb->tok_embd, drop, widen_float))
        return -1;
    if (tied)
        bb->output = bb->tok_embd;
    else if (lfm2_prepare_weight(o, &bb->output, drop, widen_float))
        return -1;
    if (lfm2_prepare_weight(o, &bb->dense_out, drop, widen_float))
        return -1;
    for (int il = 0; il < bb->hp.n_layer; il++) {
        struct lfm2_layer *ly = &bb->layers[il];
        const lfm2_tensor **w[] = { &ly->conv_in, &ly->conv_out, &ly->wq, &ly->wk, &ly->wv, &ly->wo,
                                    &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down, &ly->gate_exps,
                                    &ly->up_exps, &ly->down_exps };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
            if (lfm2_prepare_weight(o, w[i], drop, widen_float))
                return -1;
    }
    return 0;
}

/* ---- model ------------------------------------------------------------------------------------ */

struct lfm2_model_params lfm2_model_default_params(void)
{
    struct lfm2_model_params p = { .use_mmap = true, .verbose = false };
    return p;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The type most weight bytes are stored in, for the description. */
static const char *dominant_type(const lfm2_gguf *g)
{
    uint64_t bytes[LFM2_TYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        if (t->n_dims >= 2 && (unsigned)t->type < LFM2_TYPE_COUNT)
            bytes[t->type] += t->nbytes;
    }
    int best = 0;
    for (int t = 1; t < LFM2_TYPE_COUNT; t++)
        if (bytes[t] > bytes[best])
            best = t;
    return lfm2_type_name((uint32_t)best);
}

lfm2_model *lfm2_model_load(const char *path, struct lfm2_model_params params)
{
    lfm2_clear_error();
    if (!path || !*path) {
        lfm2_set_error("no model path given");
        return NULL;
    }
    lfm2_model *m = calloc(1, sizeof *m);
    if (!m) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    m->path = strdup(path);
    m->gguf = lfm2_gguf_open(path, params.use_mmap);
    if (!m->gguf || !m->path)
        goto fail;

    char arch[64] = "";
    int r = lfm2_gguf_get_str_buf(m->gguf, "general.architecture", arch, sizeof arch);
    if (r <= 0) {
        if (r == 0)
            lfm2_set_error("%s: missing key 'general.architecture'", path);
        goto fail;
    }
    if (strcmp(arch, "lfm2") && strcmp(arch, "lfm2moe")) {
        lfm2_set_error("%s: general.architecture is '%s'; this engine runs 'lfm2' and 'lfm2moe' "
                       "text models%s",
                       path, arch,
                       !strcmp(arch, "clip") ? " (this looks like an mmproj file: pass it as the "
                                               "mmproj, and the LFM2 backbone as the model)"
                                             : "");
        goto fail;
    }
    if (lfm2_backbone_load(&m->bb, m->gguf, arch, "") ||
        lfm2_backbone_prepare(&m->bb, params.use_mmap, false))
        goto fail;

    m->vocab = lfm2_vocab_load(m->gguf);
    if (!m->vocab)
        goto fail;
    if (lfm2_vocab_n_tokens(m->vocab) != m->bb.hp.n_vocab) {
        lfm2_set_error("%s: the tokenizer has %d tokens but token_embd.weight has %d rows", path,
                       lfm2_vocab_n_tokens(m->vocab), m->bb.hp.n_vocab);
        goto fail;
    }

    for (int64_t i = 0; i < lfm2_gguf_n_tensors(m->gguf); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(m->gguf, i);
        m->n_params += (uint64_t)lfm2_tensor_nelements(t);
        m->size_bytes += t->nbytes;
    }

    size_t tlen = 0;
    const char *tpl = lfm2_gguf_get_str(m->gguf, "tokenizer.chat_template", &tlen);
    if (tpl && !(m->chat_template = strndup(tpl, tlen))) {
        lfm2_set_error("out of memory");
        goto fail;
    }

    char name[128] = "";
    if (lfm2_gguf_get_str_buf(m->gguf, "general.name", name, sizeof name) <= 0)
        snprintf(name, sizeof name, "%s", base_name(path));
    lfm2_clear_error();
    const struct lfm2_hparams *hp = &m->bb.hp;
    snprintf(m->id, sizeof m->id, "%s/%s-%d", name, hp->arch, hp->n_embd);
    snprintf(m->desc, sizeof m->desc, "%s %dL %dd %s (%.2fM params)", hp->arch, hp->n_layer,
             hp->n_embd, dominant_type(m->gguf), m->n_params / 1e6);
    if (params.verbose)
        fprintf(stderr, "lfm2: loaded %s: %s, %d attention + %d conv layers, vocab %d\n", path,
                m->desc, m->bb.n_attn_layers, m->bb.n_conv_layers, hp->n_vocab);
    return m;

fail:
    lfm2_model_free(m);
    return NULL;
}

void lfm2_model_free(lfm2_model *m)
{
    if (!m)
        return;
    if (m->vocab)
        lfm2_vocab_free(m->vocab);
    lfm2_backbone_free(&m->bb);
    if (m->gguf)
        lfm2_gguf_close(m->gguf);
    free(m->chat_template);
    free(m->path);
    free(m);
}

const char *lfm2_model_chat_template(const lfm2_model *m)
{
    return m->chat_template;
}

const struct lfm2_backbone *lfm2_model_backbone(const lfm2_model *m)
{
    return &m->bb;
}

const struct lfm2_vocab *lfm2_model_vocab(const lfm2_model *m)
{
    return m->vocab;
}

const struct lfm2_hparams *lfm2_model_get_hparams(const lfm2_model *m)
{
    return &m->bb.hp;
}

enum lfm2_layer_kind lfm2_model_layer_kind(const lfm2_model *m, int il)
{
    return m->bb.layers[il].kind;
}

int lfm2_model_n_head_kv(const lfm2_model *m, int il)
{
    return m->bb.layers[il].n_head_kv;
}

const char *lfm2_model_path(const lfm2_model *m)
{
    return m->path;
}

const char *lfm2_model_id(const lfm2_model *m)
{
    return m->id;
}

const char *lfm2_model_desc(const lfm2_model *m)
{
    return m->desc;
}

uint64_t lfm2_model_n_params(const lfm2_model *m)
{
    return m->n_params;
}

uint64_t lfm2_model_size_bytes(const lfm2_model *m)
{
    return m->size_bytes;
}

const lfm2_gguf *lfm2_model_gguf(const lfm2_model *m)
{
    return m->gguf;
}
