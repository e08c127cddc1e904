/* vocoder.c — loading vocoder-*.gguf (the LFM2.5-Audio audio head, the frame → backbone
 * embedding and the detokenizer's code embedding).
 *
 * The file (llama.cpp's convert_vocoder_to_gguf.py) keeps PyTorch tensor names and only three
 * keys; every size is derived from the tensors (spec lfm2-audio-out §2):
 *   D = ne0(operator_norm)   head_dim = ne0(q_layernorm)   n_head = D / head_dim
 *   n_head_kv = (ne1(qkv_proj) − D) / (2·head_dim)          ff = ne1(w1)
 *   H = ne0(depth_linear)    K = ne1(depth_linear) / D      V = ne1(depth_embeddings.0.embedding)
 *   d = ne0(emb.emb)         L = depthformer_n_layer (else the layers present)
 * Tensors this code does not use (audio_embedding.{embedding_norm,to_logits}, istft.window,
 * the older converter's lfm.* / lin.*) are ignored. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tts-impl.h"

#define TYPES_VEC ((1ull << LFM2_TYPE_F32) | (1ull << LFM2_TYPE_F16) | (1ull << LFM2_TYPE_BF16))

struct lfm2_vocoder_params lfm2_vocoder_default_params(void)
{
    struct lfm2_vocoder_params p = { .use_mmap = true, .ggml_rounding = false, .verbose = false };
    return p;
}

/* A tensor named printf-style with the given shape (0 = any); NULL + error naming the file. */
static const lfm2_tensor *req(const lfm2_gguf *g, uint64_t types, int n_dims, int64_t ne0,
                              int64_t ne1, const char *fmt, ...) LFM2_PRINTF(6, 7);
static const lfm2_tensor *req(const lfm2_gguf *g, uint64_t types, int n_dims, int64_t ne0,
                              int64_t ne1, const char *fmt, ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const int64_t ne[2] = { ne0, ne1 };
    return lfm2_gguf_require_tensor(g, name, n_dims, ne, types);
}

static const float *vec(lfm2_vocoder *v, const lfm2_tensor *t)
{
    return lfm2_owned_vec_f32(&v->owned, t);
}

/* Sizes from the tensors of layer 0 and the tables. */
static int derive_sizes(lfm2_vocoder *v)
{
    const lfm2_gguf *g = v->g;
    const char *path = v->path;
    struct lfm2_vocoder_hparams *hp = &v->hp;

    const lfm2_tensor *norm = req(g, TYPES_VEC, 1, 0, 0, "depthformer.layers.0.operator_norm.weight");
    const lfm2_tensor *qn = req(g, TYPES_VEC, 1, 0, 0, "depthformer.layers.0.operator.attention.q_layernorm.weight");
    const lfm2_tensor *qkv = req(g, 0, 2, 0, 0, "depthformer.layers.0.operator.qkv_proj.weight");
    const lfm2_tensor *w1 = req(g, 0, 2, 0, 0, "depthformer.layers.0.feed_forward.w1.weight");
    const lfm2_tensor *dl = req(g, 0, 2, 0, 0, "depth_linear.weight");
    const lfm2_tensor *ce = req(g, 0, 2, 0, 0, "depth_embeddings.0.embedding.weight");
    const lfm2_tensor *ee = req(g, 0, 2, 0, 0, "emb.emb.weight");
    if (!norm || !qn || !qkv || !w1 || !dl || !ce || !ee)
        return -1;

    hp->n_depth_embd = (int)norm->ne[0];
    int64_t key_d = 0;
    int r = lfm2_gguf_get_int(g, "depthformer_n_embd", &key_d);
    if (r < 0)
        return -1;
    if (r > 0 && key_d != hp->n_depth_embd)
        return lfm2_set_error("%s: depthformer_n_embd = %lld but tensor "
                              "'depthformer.layers.0.operator_norm.weight' has %d elements",
                              path, (long long)key_d, hp->n_depth_embd);
    const int D = hp->n_depth_embd;
    hp->head_dim = (int)qn->ne[0];
    if (hp->head_dim < 2 || hp->head_dim % 2 || D % hp->head_dim)
        return lfm2_set_error("%s: tensor 'depthformer.layers.0.operator.attention.q_layernorm.weight' "
                              "gives head_dim %d, which must be even and divide D = %d",
                              path, hp->head_dim, D);
    hp->n_head = D / hp->head_dim;
    const int64_t kv2 = qkv->ne[1] - D;
    if (qkv->ne[0] != D || kv2 <= 0 || kv2 % (2 * hp->head_dim) ||
        hp->n_head % (int)(kv2 / (2 * hp->head_dim)))
        return lfm2_set_error("%s: tensor 'depthformer.layers.0.operator.qkv_proj.weight' {%lld, %lld} "
                              "does not hold q (%d rows) and equal k, v of whole heads of %d",
                              path, (long long)qkv->ne[0], (long long)qkv->ne[1], D, hp->head_dim);
    hp->n_head_kv = (int)(kv2 / (2 * hp->head_dim));
    hp->n_ff = (int)w1->ne[1];
    hp->n_embd = (int)dl->ne[0];
    if (dl->ne[1] % D || dl->ne[1] / D < 1 || dl->ne[1] / D > LFM2_AUDIO_MAX_CODEBOOKS)
        return lfm2_set_error("%s: tensor 'depth_linear.weight' has %lld rows: not K·D for D = %d "
                              "and 1 <= K <= %d codebooks",
                              path, (long long)dl->ne[1], D, LFM2_AUDIO_MAX_CODEBOOKS);
    hp->n_codebooks = (int)(dl->ne[1] / D);
    if (ce->ne[1] < 2 || ce->ne[1] > (1 << 24))
        return lfm2_set_error("%s: tensor 'depth_embeddings.0.embedding.weight' has %lld entries",
                              path, (long long)ce->ne[1]);
    hp->n_codes = (int)ce->ne[1];
    hp->eoa = hp->n_codes - 1;
    hp->n_code_embd = (int)ee->ne[0];

    int64_t n_layer = 0;
    if ((r = lfm2_gguf_get_int(g, "depthformer_n_layer", &n_layer)) < 0)
        return -1;
    while (r == 0 && n_layer < 1024) { /* no key: count the layers present */
        char name[96];
        snprintf(name, sizeof name, "depthformer.layers.%lld.operator_norm.weight", (long long)n_layer);
        if (!lfm2_gguf_find_tensor(g, name))
            break;
        n_layer++;
    }
    if (n_layer < 1 || n_layer > 1024)
        return lfm2_set_error("%s: depthformer_n_layer = %lld is out of range [1, 1024]", path,
                              (long long)n_layer);
    hp->n_layer = (int)n_layer;
    hp->rope_freq_base = 1e6f;
    hp->norm_eps = 1e-5f;
    return 0;
}

static int load_tensors(lfm2_vocoder *v, bool prepare_drop, bool widen)
{
    const lfm2_gguf *g = v->g;
    const struct lfm2_vocoder_hparams *hp = &v->hp;
    const int64_t D = hp->n_depth_embd, H = hp->n_embd, K = hp->n_codebooks, V = hp->n_codes;
    const int64_t hd = hp->head_dim, kv = (int64_t)hp->n_head_kv * hd, ff = hp->n_ff;
    struct lfm2_owned *o = &v->owned;

    v->layers = calloc((size_t)hp->n_layer, sizeof *v->layers);
    v->cb_embd = calloc((size_t)K, sizeof *v->cb_embd);
    v->cb_norm = calloc((size_t)K, sizeof *v->cb_norm);
    v->cb_logits = calloc((size_t)K, sizeof *v->cb_logits);
    if (!v->layers || !v->cb_embd || !v->cb_norm || !v->cb_logits)
        return lfm2_set_error("out of memory");

    for (int l = 0; l < hp->n_layer; l++) {
        struct lfm2_depth_layer *ly = &v->layers[l];
#define P "depthformer.layers.%d."
        ly->attn_norm = vec(v, req(g, TYPES_VEC, 1, D, 0, P "operator_norm.weight", l));
        ly->ffn_norm = vec(v, req(g, TYPES_VEC, 1, D, 0, P "ffn_norm.weight", l));
        ly->q_norm = vec(v, req(g, TYPES_VEC, 1, hd, 0, P "operator.attention.q_layernorm.weight", l));
        ly->k_norm = vec(v, req(g, TYPES_VEC, 1, hd, 0, P "operator.attention.k_layernorm.weight", l));
        ly->qkv = req(g, 0, 2, D, D + 2 * kv, P "operator.qkv_proj.weight", l);
        ly->out = req(g, 0, 2, D, D, P "operator.out_proj.weight", l);
        ly->w1 = req(g, 0, 2, D, ff, P "feed_forward.w1.weight", l);
        ly->w3 = req(g, 0, 2, D, ff, P "feed_forward.w3.weight", l);
        ly->w2 = req(g, 0, 2, ff, D, P "feed_forward.w2.weight", l);
#undef P
        if (!ly->attn_norm || !ly->ffn_norm || !ly->q_norm || !ly->k_norm || !ly->qkv || !ly->out ||
            !ly->w1 || !ly->w3 || !ly->w2)
            return -1;
    }
    v->depth_linear = req(g, 0, 2, H, K * D, "depth_linear.weight");
    v->depth_linear_b = vec(v, req(g, TYPES_VEC, 1, K * D, 0, "depth_linear.bias"));
    if (!v->depth_linear || !v->depth_linear_b)
        return -1;
    for (int k = 0; k < K; k++) {
        v->cb_embd[k] = req(g, 0, 2, D, V, "depth_embeddings.%d.embedding.weight", k);
        v->cb_norm[k] = vec(v, req(g, TYPES_VEC, 1, D, 0, "depth_embeddings.%d.embedding_norm.weight", k));
        v->cb_logits[k] = req(g, 0, 2, D, V, "depth_embeddings.%d.to_logits.weight", k);
        if (!v->cb_embd[k] || !v->cb_norm[k] || !v->cb_logits[k])
            return -1;
    }
    v->audio_embd = req(g, 0, 2, H, K * V, "audio_embedding.embedding.weight");
    v->code_embd = req(g, 0, 2, hp->n_code_embd, K * (V - 1), "emb.emb.weight");
    if (!v->audio_embd || !v->code_embd)
        return -1;

    snprintf(v->desc, sizeof v->desc,
             "vocoder: depthformer %dL %dd %d/%d heads ff %d, %d×%d codes, H %d, d %d (%s)",
             hp->n_layer, hp->n_depth_embd, hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_codebooks,
             hp->n_codes, hp->n_embd, hp->n_code_embd, lfm2_type_name(v->layers[0].qkv->type));

    /* The matrices go to the kernels' layout once; the lookup tables stay in the mapping. */
    if (lfm2_prepare_weight(o, &v->depth_linear, prepare_drop, widen))
        return -1;
    for (int l = 0; l < hp->n_layer; l++) {
        struct lfm2_depth_layer *ly = &v->layers[l];
        const lfm2_tensor **w[] = { &ly->qkv, &ly->out, &ly->w1, &ly->w3, &ly->w2 };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
            if (lfm2_prepare_weight(o, w[i], prepare_drop, widen))
                return -1;
    }
    for (int k = 0; k < K; k++)
        if (lfm2_prepare_weight(o, &v->cb_logits[k], prepare_drop, widen))
            return -1;

    /* RoPE "NORM" (adjacent pairs) at positions 0 … K−1: angle p·base^(−2i/head_dim). */
    const int half = hp->head_dim / 2;
    v->rope_cos = malloc((size_t)K * half * sizeof(float));
    v->rope_sin = malloc((size_t)K * half * sizeof(float));
    if (!v->rope_cos || !v->rope_sin)
        return lfm2_set_error("out of memory");
    for (int p = 0; p < K; p++)
        for (int i = 0; i < half; i++) {
            const double th = p * pow((double)hp->rope_freq_base, -2.0 * i / hp->head_dim);
            v->rope_cos[p * half + i] = (float)cos(th);
            v->rope_sin[p * half + i] = (float)sin(th);
        }
    return 0;
}

lfm2_vocoder *lfm2_vocoder_load(const char *path, struct lfm2_vocoder_params params)
{
    lfm2_clear_error();
    if (!path || !*path) {
        lfm2_set_error("no vocoder path given");
        return NULL;
    }
    lfm2_vocoder *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) {
        free(v);
        lfm2_set_error("out of memory");
        return NULL;
    }
    if (!(v->g = lfm2_gguf_open(path, params.use_mmap)))
        goto fail;
    if (!lfm2_gguf_find_tensor(v->g, "depth_linear.weight")) {
        char arch[128] = "";
        if (lfm2_gguf_get_str_buf(v->g, "general.architecture", arch, sizeof arch) < 0)
            goto fail;
        if (!strcmp(arch, "lfm2"))
            lfm2_set_error("%s: missing tensor 'depth_linear.weight': this is an LFM2 %s, not a "
                           "vocoder (vocoder-*.gguf)",
                           path,
                           lfm2_gguf_find_tensor(v->g, "dense_2.weight") ? "detokenizer (pass it as the tokenizer)"
                                                                          : "model (pass it as the model)");
        else
            lfm2_set_error("%s: missing tensor 'depth_linear.weight' (not an LFM2-Audio vocoder: "
                           "general.architecture '%s')",
                           path, arch);
        goto fail;
    }
    if (derive_sizes(v) || load_tensors(v, params.use_mmap, !params.ggml_rounding))
        goto fail;
    if (params.verbose)
        fprintf(stderr, "lfm2: loaded %s: %s\n", path, v->desc);
    return v;
fail:
    lfm2_vocoder_free(v);
    return NULL;
}

void lfm2_vocoder_free(lfm2_vocoder *v)
{
    if (!v)
        return;
    lfm2_owned_free(&v->owned);
    free(v->layers);
    free(v->cb_embd);
    free(v->cb_norm);
    free(v->cb_logits);
    free(v->rope_cos);
    free(v->rope_sin);
    if (v->g)
        lfm2_gguf_close(v->g);
    free(v->path);
    free(v);
}

const struct lfm2_vocoder_hparams *lfm2_vocoder_get_hparams(const lfm2_vocoder *v)
{
    return &v->hp;
}

const char *lfm2_vocoder_path(const lfm2_vocoder *v)
{
    return v->path;
}

const char *lfm2_vocoder_desc(const lfm2_vocoder *v)
{
    return v->desc;
}

int lfm2_vocoder_check_model(const lfm2_vocoder *v, const lfm2_model *backbone)
{
    const int n = lfm2_model_get_hparams(backbone)->n_embd;
    if (n != v->hp.n_embd)
        return lfm2_set_error("%s: the vocoder takes hidden states of %d (depth_linear.weight) but "
                              "the model %s has n_embd %d",
                              v->path, v->hp.n_embd, lfm2_model_path(backbone), n);
    return 0;
}

int lfm2_audio_check_codes(const int32_t *codes, int n_frames, int n_codebooks, int hi)
{
    for (int f = 0; f < n_frames; f++)
        for (int k = 0; k < n_codebooks; k++) {
            const int32_t c = codes[(size_t)f * n_codebooks + k];
            if (c < 0 || c > hi)
                return lfm2_set_error("code %d of frame %d, codebook %d is outside 0..%d", c, f, k,
                                      hi);
        }
    return 0;
}

void lfm2_vocoder_code_mean(const lfm2_vocoder *v, const int32_t *codes, float *out, float *tmp)
{
    const int K = v->hp.n_codebooks, d = v->hp.n_code_embd;
    for (int k = 0; k < K; k++) {
        const int32_t row = k * (v->hp.n_codes - 1) + codes[k];
        lfm2_get_rows(v->code_embd, &row, 1, k ? tmp : out);
        if (k)
            lfm2_vec_add(out, out, tmp, d);
    }
    for (int i = 0; i < d; i++)
        out[i] /= (float)K;
}

bool lfm2_audio_frame_end(const lfm2_vocoder *v, int32_t *codes)
{
    if (codes[0] != v->hp.eoa)
        return false;
    for (int k = 0; k < v->hp.n_codebooks; k++)
        codes[k] = v->hp.eoa;
    return true;
}
