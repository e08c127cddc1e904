/* mmproj.c — loading and validating an LFM2-Audio mmproj GGUF (projector type "lfm2a", as
 * llama.cpp's converter writes it): the clip.audio.* keys and every a.* / mm.a.* tensor, with
 * errors that name the file, the key or tensor and the reason. Matrices (4-D convolution
 * kernels included, viewed as 2-D) are copied once into the kernels' 16-row layout
 * (lfm2_weights_prepare); F32 vectors stay in the mapping, other small tensors are
 * dequantized once; depthwise kernels are transposed to [tap][channel]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio-impl.h"

/* matrices per conformer layer (ff1 up/down, q k v o, pos, pw1 pw2, ff2 up/down) and outside */
#define MATS_PER_LAYER 11
#define MATS_OTHER 6

struct loader {
    lfm2_audio *a;
    lfm2_tensor *views;    /* 2-D views of the matrices, in a->prep_view's order */
    const lfm2_tensor **slots[MATS_PER_LAYER * 256 + MATS_OTHER];
    int n_mats;
};

struct lfm2_audio_params lfm2_audio_default_params(void)
{
    struct lfm2_audio_params p;
    memset(&p, 0, sizeof p);
    p.frontend = LFM2_AUDIO_FRONTEND_OFFICIAL;
    p.use_mmap = true;
    return p;
}

int lfm2_audio_grow(void **buf, size_t *cap, size_t n, size_t *total)
{
    if (*cap >= n)
        return 0;
    void *p = lfm2_alloc_aligned(n);
    if (!p)
        return -1;
    lfm2_free_aligned(*buf);
    if (total)
        *total += n - *cap;
    *buf = p;
    *cap = n;
    return 0;
}

/* ---- keys ------------------------------------------------------------------------------------ */

static int req_int(lfm2_audio *a, const char *key, int64_t lo, int64_t hi, int *out)
{
    int64_t x;
    if (lfm2_gguf_get_int_range(a->gguf, key, lo, hi, true, &x) < 0)
        return -1;
    *out = (int)x;
    return 0;
}

static int load_hparams(lfm2_audio *a)
{
    lfm2_gguf *g = a->gguf;
    struct lfm2_audio_hparams *hp = &a->hp;
    char buf[64];

    int r = lfm2_gguf_get_str_buf(g, "general.architecture", buf, sizeof buf);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(buf, "clip") != 0)
        return lfm2_set_error("%s: general.architecture is '%s', expected 'clip' — not an mmproj "
                              "file (a text model passed as --mmproj?)", a->path,
                              r == 0 ? "(missing)" : buf);
    bool has_audio = false;
    if ((r = lfm2_gguf_get_bool(g, "clip.has_audio_encoder", &has_audio)) < 0)
        return -1;
    if (r == 0 || !has_audio)
        return lfm2_set_error("%s: clip.has_audio_encoder is %s: this mmproj has no audio encoder "
                              "(a vision mmproj?)", a->path, r == 0 ? "missing" : "false");
    r = lfm2_gguf_get_str_buf(g, "clip.audio.projector_type", buf, sizeof buf);
    if (r == 0)
        r = lfm2_gguf_get_str_buf(g, "clip.projector_type", buf, sizeof buf);
    if (r < 0)
        return -1;
    if (r == 0)
        return lfm2_set_error("%s: required key 'clip.projector_type' is missing", a->path);
    if (strcmp(buf, "lfm2a") != 0)
        return lfm2_set_error("%s: clip.projector_type is '%s'; only 'lfm2a' (LFM2-Audio) is "
                              "supported", a->path, buf);
    memcpy(hp->projector, "lfm2a", 6);

    if (req_int(a, "clip.audio.embedding_length", 1, 16384, &hp->n_embd) ||
        req_int(a, "clip.audio.block_count", 1, 256, &hp->n_layer) ||
        req_int(a, "clip.audio.attention.head_count", 1, 1024, &hp->n_head) ||
        req_int(a, "clip.audio.num_mel_bins", 1, 4096, &hp->n_mel))
        return -1;
    if (hp->n_embd % hp->n_head != 0)
        return lfm2_set_error("%s: clip.audio.embedding_length %d is not a multiple of "
                              "clip.audio.attention.head_count %d", a->path, hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->n_mel != LFM2_AUDIO_N_MEL)
        return lfm2_set_error("%s: clip.audio.num_mel_bins is %d; LFM2-Audio's front-end makes %d",
                              a->path, hp->n_mel, LFM2_AUDIO_N_MEL);
    hp->eps = 1e-5f;   /* NeMo's LayerNorm default, hard-coded in llama.cpp's graph too */
    r = lfm2_gguf_get_f32(g, "clip.audio.attention.layer_norm_epsilon", &hp->eps);
    if (r < 0)
        return -1;
    if (!(hp->eps > 0.0f && hp->eps < 1.0f))
        return lfm2_set_error("%s: clip.audio.attention.layer_norm_epsilon = %g is not in (0, 1)",
                              a->path, (double)hp->eps);
    return 0;
}

/* ---- tensors --------------------------------------------------------------------------------- */

static const lfm2_tensor *find(lfm2_audio *a, const char *name)
{
    const lfm2_tensor *t = lfm2_gguf_find_tensor(a->gguf, name);
    if (!t)
        lfm2_set_error("%s: tensor '%s' is missing", a->path, name);
    return t;
}

static int keep(lfm2_audio *a, float *buf)
{
    float **o = realloc(a->owned, sizeof *o * (size_t)(a->n_owned + 1));
    if (!o) {
        lfm2_free_aligned(buf);
        return lfm2_set_error("out of memory");
    }
    a->owned = o;
    a->owned[a->n_owned++] = buf;
    return 0;
}

/* A tensor of exactly n values (any shape: biases come as {1, 1, C} too) as floats: F32 from
 * the mapping, other types dequantized into an owned copy. */
static int vec(lfm2_audio *a, const char *name, int64_t n, const float **out)
{
    const lfm2_tensor *t = find(a, name);
    if (!t)
        return -1;
    if (lfm2_tensor_nelements(t) != n)
        return lfm2_set_error("%s: tensor '%s' has %lld values, expected %lld", a->path, name,
                              (long long)lfm2_tensor_nelements(t), (long long)n);
    if (!lfm2_type_supported(t->type))
        return lfm2_set_error("%s: tensor '%s' has type %s, which this engine does not read",
                              a->path, name, lfm2_type_name(t->type));
    if (t->type == LFM2_TYPE_F32) {
        *out = t->data;
        return 0;
    }
    float *buf = lfm2_alloc_aligned(sizeof(float) * (size_t)n);
    if (!buf || keep(a, buf))
        return -1;
    lfm2_tensor_to_f32(t, buf);
    *out = buf;
    return 0;
}

/* A kernel of `taps` × channels values stored [channel][tap] (depthwise convolutions),
 * transposed to [tap][channel] floats. */
static int taps_first(lfm2_audio *a, const char *name, int64_t taps, int64_t ch, float **out)
{
    const float *w;
    if (vec(a, name, taps * ch, &w))
        return -1;
    float *t = lfm2_alloc_aligned(sizeof(float) * (size_t)(taps * ch));
    if (!t || keep(a, t))
        return -1;
    for (int64_t c = 0; c < ch; c++)
        for (int64_t k = 0; k < taps; k++)
            t[k * ch + c] = w[c * taps + k];
    *out = t;
    return 0;
}

/* A matrix n_in → n_out (n_out the last dimension, the rest flattened into rows of n_in:
 * 4-D convolution kernels, 3-D pointwise kernels with the kernel dimension kept), as a 2-D
 * view registered for weight preparation. n_in or n_out 0 = any (read from the file). */
static const lfm2_tensor *mat(struct loader *L, const char *name, int64_t n_in, int64_t n_out)
{
    lfm2_audio *a = L->a;
    const lfm2_tensor *t = find(a, name);
    if (!t)
        return NULL;
    const int64_t last = t->ne[t->n_dims - 1];
    const int64_t rows_in = lfm2_tensor_nelements(t) / (last > 0 ? last : 1);
    if (t->n_dims < 2 || (n_out && last != n_out) || (n_in && rows_in != n_in)) {
        lfm2_set_error("%s: tensor '%s' has shape {%lld, %lld, %lld, %lld}; expected a %lld → %lld "
                       "matrix", a->path, name, (long long)t->ne[0], (long long)t->ne[1],
                       (long long)t->ne[2], (long long)t->ne[3], (long long)n_in, (long long)n_out);
        return NULL;
    }
    if (!lfm2_type_supported(t->type) || rows_in % lfm2_type_block_elems(t->type) != 0) {
        lfm2_set_error("%s: tensor '%s' has type %s, which has no matrix product over %lld inputs",
                       a->path, name, lfm2_type_name(t->type), (long long)rows_in);
        return NULL;
    }
    lfm2_tensor *v = &L->views[L->n_mats];
    *v = *t;
    v->n_dims = 2;
    v->ne[0] = rows_in;
    v->ne[1] = last;
    v->ne[2] = v->ne[3] = 1;
    v->nb1 = lfm2_row_bytes(t->type, rows_in);
    L->n_mats++;
    return v;
}

static int load_subsampling(struct loader *L)
{
    lfm2_audio *a = L->a;
    struct lfm2_audio_hparams *hp = &a->hp;
    const lfm2_tensor *c0 = find(a, "a.conv1d.0.weight");
    if (!c0)
        return -1;
    if (c0->n_dims != 4 || c0->ne[0] != 3 || c0->ne[1] != 3 || c0->ne[2] != 1 || c0->ne[3] < 1 ||
        c0->ne[3] > 4096)
        return lfm2_set_error("%s: tensor 'a.conv1d.0.weight' has shape {%lld, %lld, %lld, %lld}; the "
                              "first subsampling convolution is 3×3 from 1 channel, {3, 3, 1, C}",
                              a->path, (long long)c0->ne[0], (long long)c0->ne[1],
                              (long long)c0->ne[2], (long long)c0->ne[3]);
    const int64_t C = c0->ne[3];
    hp->n_sub = (int)C;
    int64_t f = hp->n_mel;
    for (int i = 0; i < 3; i++)
        f = (f + 1) / 2;
    hp->n_sub_freq = (int)f;

    const lfm2_tensor *w0 = mat(L, "a.conv1d.0.weight", 9, C);
    const lfm2_tensor *w3 = w0 ? mat(L, "a.conv1d.3.weight", C, C) : NULL;
    const lfm2_tensor *w6 = w3 ? mat(L, "a.conv1d.6.weight", C, C) : NULL;
    if (!w6)
        return -1;
    a->conv0_w = *w0;
    a->conv3_w = *w3;
    a->conv6_w = *w6;
    if (vec(a, "a.conv1d.0.bias", C, &a->conv0_b) || vec(a, "a.conv1d.3.bias", C, &a->conv3_b) ||
        vec(a, "a.conv1d.6.bias", C, &a->conv6_b) ||
        taps_first(a, "a.conv1d.2.weight", 9, C, &a->dw2.w) || vec(a, "a.conv1d.2.bias", C, &a->dw2.b) ||
        taps_first(a, "a.conv1d.5.weight", 9, C, &a->dw5.w) || vec(a, "a.conv1d.5.bias", C, &a->dw5.b))
        return -1;
    if (!(a->pre_out = mat(L, "a.pre_encode.out.weight", C * f, hp->n_embd)) ||
        vec(a, "a.pre_encode.out.bias", hp->n_embd, &a->pre_out_b))
        return -1;

    if (a->params.frontend == LFM2_AUDIO_FRONTEND_LLAMACPP && a->conv0_w.type != LFM2_TYPE_F16) {
        /* mtmd runs conv.0 as an F16 im2col product even for an F32 kernel: round the kernel
         * once here; lfm2_matmul rounds the mel values to fp16 for an F16 weight */
        const size_t n = (size_t)(9 * C);
        float *tmp = malloc(n * sizeof *tmp);
        uint16_t *h = lfm2_alloc_aligned(n * sizeof *h);
        if (!tmp || !h) {
            free(tmp);
            lfm2_free_aligned(h);
            return lfm2_set_error("out of memory");
        }
        lfm2_tensor_to_f32(&a->conv0_w, tmp);
        for (size_t i = 0; i < n; i++)
            h[i] = lfm2_fp32_to_fp16(tmp[i]);
        free(tmp);
        a->conv0_owned = h;
        a->conv0_w.type = LFM2_TYPE_F16;
        a->conv0_w.data = h;
        a->conv0_w.nb1 = 9 * 2;
        a->conv0_w.nbytes = n * 2;
        L->views[0] = a->conv0_w;
    }
    return 0;
}

static int load_layers(struct loader *L)
{
    lfm2_audio *a = L->a;
    struct lfm2_audio_hparams *hp = &a->hp;
    const int64_t D = hp->n_embd;
    char name[96];

    /* shapes the first layer decides: FFN width, position-table width, conv kernel */
    const lfm2_tensor *up = find(a, "a.blk.0.ffn_up.weight");
    const lfm2_tensor *lp = up ? find(a, "a.blk.0.linear_pos.weight") : NULL;
    const lfm2_tensor *dw = lp ? find(a, "a.blk.0.conv_dw.weight") : NULL;
    if (!dw)
        return -1;
    hp->n_ff = (int)up->ne[up->n_dims - 1];
    hp->n_pos_in = (int)lp->ne[0];
    hp->conv_kernel = (int)dw->ne[0];
    if (hp->n_pos_in < 2 || hp->n_pos_in % 2)
        return lfm2_set_error("%s: tensor 'a.blk.0.linear_pos.weight' takes %d inputs; the "
                              "sinusoid table needs an even width", a->path, hp->n_pos_in);
    if (hp->conv_kernel < 1 || hp->conv_kernel % 2 == 0 || hp->conv_kernel > 63)
        return lfm2_set_error("%s: tensor 'a.blk.0.conv_dw.weight' has a %d-tap kernel; an odd "
                              "kernel up to 63 is expected", a->path, hp->conv_kernel);
    const int64_t F = hp->n_ff, K = hp->conv_kernel;

    a->layer = calloc((size_t)hp->n_layer, sizeof *a->layer);
    if (!a->layer)
        return lfm2_set_error("out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        struct lfm2_audio_layer *l = &a->layer[il];
#define N(s) (snprintf(name, sizeof name, "a.blk.%d.%s", il, s), name)
        if (!(l->ff1_up = mat(L, N("ffn_up.weight"), D, F)) ||
            !(l->ff1_down = mat(L, N("ffn_down.weight"), F, D)) ||
            !(l->wq = mat(L, N("attn_q.weight"), D, D)) || !(l->wk = mat(L, N("attn_k.weight"), D, D)) ||
            !(l->wv = mat(L, N("attn_v.weight"), D, D)) ||
            !(l->wo = mat(L, N("attn_out.weight"), D, D)) ||
            !(l->wpos = mat(L, N("linear_pos.weight"), hp->n_pos_in, D)) ||
            !(l->pw1 = mat(L, N("conv_pw1.weight"), D, 2 * D)) ||
            !(l->pw2 = mat(L, N("conv_pw2.weight"), D, D)) ||
            !(l->ff2_up = mat(L, N("ffn_up_1.weight"), D, F)) ||
            !(l->ff2_down = mat(L, N("ffn_down_1.weight"), F, D)))
            return -1;
        struct { const char *n; int64_t len; const float **dst; } v[] = {
            { "ffn_norm.weight", D, &l->ff1_norm_w }, { "ffn_norm.bias", D, &l->ff1_norm_b },
            { "ffn_up.bias", F, &l->ff1_up_b },        { "ffn_down.bias", D, &l->ff1_down_b },
            { "ln1.weight", D, &l->att_norm_w },       { "ln1.bias", D, &l->att_norm_b },
            { "attn_q.bias", D, &l->bq },              { "attn_k.bias", D, &l->bk },
            { "attn_v.bias", D, &l->bv },              { "attn_out.bias", D, &l->bo },
            { "pos_bias_u", D, &l->pos_u },            { "pos_bias_v", D, &l->pos_v },
            { "norm_conv.weight", D, &l->conv_norm_w }, { "norm_conv.bias", D, &l->conv_norm_b },
            { "conv_pw1.bias", 2 * D, &l->pw1_b },     { "conv_dw.bias", D, &l->dw_b },
            { "conv_norm.weight", D, &l->bn_w },       { "conv_norm.bias", D, &l->bn_b },
            { "conv_pw2.bias", D, &l->pw2_b },         { "ffn_norm_1.weight", D, &l->ff2_norm_w },
            { "ffn_norm_1.bias", D, &l->ff2_norm_b },  { "ffn_up_1.bias", F, &l->ff2_up_b },
            { "ffn_down_1.bias", D, &l->ff2_down_b },  { "ln2.weight", D, &l->out_norm_w },
            { "ln2.bias", D, &l->out_norm_b },
        };
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            if (vec(a, N(v[i].n), v[i].len, v[i].dst))
                return -1;
        if (taps_first(a, N("conv_dw.weight"), K, D, &l->dw_w))
            return -1;
#undef N
    }
    return 0;
}

static int load_adapter(struct loader *L)
{
    lfm2_audio *a = L->a;
    struct lfm2_audio_hparams *hp = &a->hp;
    const int64_t D = hp->n_embd;
    if (vec(a, "mm.a.mlp.0.weight", D, &a->ad_norm_w) || vec(a, "mm.a.mlp.0.bias", D, &a->ad_norm_b))
        return -1;
    if (!(a->ad1 = mat(L, "mm.a.mlp.1.weight", D, 0)))
        return -1;
    hp->n_adapter = (int)a->ad1->ne[1];
    if (vec(a, "mm.a.mlp.1.bias", hp->n_adapter, &a->ad1_b) ||
        !(a->ad3 = mat(L, "mm.a.mlp.3.weight", hp->n_adapter, 0)))
        return -1;
    hp->n_embd_out = (int)a->ad3->ne[1];
    if (vec(a, "mm.a.mlp.3.bias", hp->n_embd_out, &a->ad3_b))
        return -1;

    /* LFM2-Audio's output-audio embedding table rides along in the mmproj; the encoder does
     * not use it, but mtmd requires it, takes its width as the projector width and asserts
     * rows >= n_frames/2 */
    const lfm2_tensor *pe = lfm2_gguf_find_tensor(a->gguf, "a.position_embd.weight");
    if (pe) {
        if (pe->n_dims != 2)
            return lfm2_set_error("%s: tensor 'a.position_embd.weight' is %d-D, expected 2-D",
                                  a->path, pe->n_dims);
        hp->n_pos_embd = (int)pe->ne[0];
        hp->n_pos_rows = (int)(pe->ne[1] > INT32_MAX ? INT32_MAX : pe->ne[1]);
    }
    if (a->params.frontend == LFM2_AUDIO_FRONTEND_LLAMACPP) {
        if (!pe)
            return lfm2_set_error("%s: tensor 'a.position_embd.weight' is missing (llama.cpp's "
                                  "lfm2a graph requires it; the official front-end does not)", a->path);
        if (hp->n_pos_embd != hp->n_embd_out)
            return lfm2_set_error("%s: tensor 'a.position_embd.weight' is %d wide but the adapter "
                                  "(mm.a.mlp.3) writes %d: mtmd would take %d as the projector width",
                                  a->path, hp->n_pos_embd, hp->n_embd_out, hp->n_pos_embd);
    }
    return 0;
}

/* Rearranges every registered matrix into the kernels' 16-row layout. */
static int prepare_weights(struct loader *L)
{
    lfm2_audio *a = L->a;
    const bool drop = a->params.use_mmap;
    for (int i = 0; i < L->n_mats; i++) {
        const lfm2_tensor *w = &L->views[i];
        lfm2_tensor *view = &a->prep_view[i];
        lfm2_clear_error();
        /* conv.0 in LLAMACPP mode is an owned fp16 copy: its pages are not the file's */
        const bool own = a->conv0_owned && w->data == a->conv0_owned;
        void *mem = lfm2_weights_prepare(w, view, drop && !own);
        if (!mem) {
            if (lfm2_last_error()[0]) {
                lfm2_prefix_error("%s: tensor '%s'", a->path, w->name);
                return -1;
            }
            *view = *w;   /* used as stored */
            continue;
        }
        a->prep_mem[a->n_prep++] = mem;
    }
    /* point every user at its prepared view */
    a->conv0_w = a->prep_view[0];
    a->conv3_w = a->prep_view[1];
    a->conv6_w = a->prep_view[2];
    for (int i = 0; i < L->n_mats; i++)
        if (L->slots[i])
            *L->slots[i] = &a->prep_view[i];
    if (a->conv0_owned && a->conv0_w.data != a->conv0_owned) {
        lfm2_free_aligned(a->conv0_owned);   /* copied into the prepared layout */
        a->conv0_owned = NULL;
    }
    lfm2_clear_error();
    return 0;
}

/* The slot (pointer field) each registered matrix's pointer lives in, by registration order. */
static void collect_slots(struct loader *L)
{
    lfm2_audio *a = L->a;
    int i = 3;   /* conv.0, conv.3, conv.6 are values, handled in prepare_weights */
    L->slots[0] = L->slots[1] = L->slots[2] = NULL;
    L->slots[i++] = &a->pre_out;
    for (int il = 0; il < a->hp.n_layer; il++) {
        struct lfm2_audio_layer *l = &a->layer[il];
        const lfm2_tensor **s[MATS_PER_LAYER] = { &l->ff1_up, &l->ff1_down, &l->wq, &l->wk, &l->wv,
                                                  &l->wo, &l->wpos, &l->pw1, &l->pw2, &l->ff2_up,
                                                  &l->ff2_down };
        for (int j = 0; j < MATS_PER_LAYER; j++)
            L->slots[i++] = s[j];
    }
    L->slots[i++] = &a->ad1;
    L->slots[i++] = &a->ad3;
}

lfm2_audio *lfm2_audio_load(const char *path, struct lfm2_audio_params params)
{
    if (!path)
        return lfm2_set_error("lfm2_audio_load: no mmproj path"), NULL;
    lfm2_audio *a = calloc(1, sizeof *a);
    if (!a)
        return lfm2_set_error("out of memory"), NULL;
    if (params.frontend != LFM2_AUDIO_FRONTEND_LLAMACPP)
        params.frontend = LFM2_AUDIO_FRONTEND_OFFICIAL;
    a->params = params;
    struct loader L = { .a = a };
    if (!(a->path = strdup(path))) {
        lfm2_set_error("out of memory");
        goto fail;
    }
    if (!(a->mel = lfm2_mel_new(params.frontend)))
        goto fail;
    if (!(a->gguf = lfm2_gguf_open(path, params.use_mmap)) || load_hparams(a))
        goto fail;
    const int cap = MATS_PER_LAYER * a->hp.n_layer + MATS_OTHER;
    L.views = calloc((size_t)cap, sizeof *L.views);
    a->prep_view = calloc((size_t)cap, sizeof *a->prep_view);
    a->prep_mem = calloc((size_t)cap, sizeof *a->prep_mem);
    if (!L.views || !a->prep_view || !a->prep_mem) {
        lfm2_set_error("out of memory");
        goto fail;
    }
    if (load_subsampling(&L) || load_layers(&L) || load_adapter(&L))
        goto fail;
    const enum lfm2_type file_type = a->layer[0].wq->type;
    collect_slots(&L);
    if (prepare_weights(&L))
        goto fail;
    free(L.views);
    L.views = NULL;

    if (params.pool) {
        a->pool = params.pool;
    } else {
        if (!(a->pool = lfm2_pool_new(params.n_threads)))
            goto fail;
        a->own_pool = true;
    }
    const struct lfm2_audio_hparams *hp = &a->hp;
    snprintf(a->desc, sizeof a->desc,
             "%s mmproj: FastConformer %dL %dd %dh ffn %d, subsampling ×8 (%d ch), adapter "
             "%d→%d→%d (%s)", hp->projector, hp->n_layer, hp->n_embd, hp->n_head, hp->n_ff,
             hp->n_sub, hp->n_embd, hp->n_adapter, hp->n_embd_out, lfm2_type_name(file_type));
    if (params.verbose)
        fprintf(stderr, "lfm2-audio: %s: %s; front-end %s, %d threads\n", path, a->desc,
                lfm2_audio_frontend_name(params.frontend), lfm2_pool_n_threads(a->pool));
    lfm2_clear_error();
    return a;

fail:
    free(L.views);
    lfm2_audio_free(a);
    return NULL;
}

void lfm2_audio_free(lfm2_audio *a)
{
    if (!a)
        return;
    if (a->own_pool)
        lfm2_pool_free(a->pool);
    float **bufs[] = { &a->melbuf, &a->patches, &a->s1, &a->s2, &a->s2b, &a->s3, &a->s3b,
                       &a->flat, &a->x, &a->a, &a->b, &a->ff, &a->q, &a->k, &a->v, &a->qu,
                       &a->qv, &a->vt, &a->ptab, &a->pproj, &a->ac, &a->bd, &a->att };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        lfm2_free_aligned(*bufs[i]);
    for (int i = 0; i < a->n_owned; i++)
        lfm2_free_aligned(a->owned[i]);
    free(a->owned);
    lfm2_free_aligned(a->conv0_owned);
    for (int i = 0; i < a->n_prep; i++)
        lfm2_weights_free(a->prep_mem[i]);
    free(a->prep_mem);
    free(a->prep_view);
    free(a->layer);
    lfm2_mel_free(a->mel);
    lfm2_gguf_close(a->gguf);
    free(a->path);
    free(a);
}

const struct lfm2_audio_hparams *lfm2_audio_get_hparams(const lfm2_audio *a)
{
    return &a->hp;
}

const struct lfm2_audio_params *lfm2_audio_get_params(const lfm2_audio *a)
{
    return &a->params;
}

int lfm2_audio_n_embd_out(const lfm2_audio *a)
{
    return a->hp.n_embd_out;
}

const char *lfm2_audio_path(const lfm2_audio *a)
{
    return a->path;
}

const char *lfm2_audio_desc(const lfm2_audio *a)
{
    return a->desc;
}

lfm2_pool *lfm2_audio_pool(lfm2_audio *a)
{
    return a->pool;
}

size_t lfm2_audio_scratch_bytes(const lfm2_audio *a)
{
    return a->scratch_bytes;
}

struct lfm2_audio_timings lfm2_audio_last_timings(const lfm2_audio *a)
{
    return a->timings;
}

int64_t lfm2_audio_max_samples(const lfm2_audio *a)
{
    if (a->params.frontend != LFM2_AUDIO_FRONTEND_LLAMACPP)
        return INT64_MAX;
    /* mtmd asserts rows >= n_frames/2, n_frames = n/160 + 1 */
    const int64_t max_frames = 2 * (int64_t)a->hp.n_pos_rows + 1;
    return max_frames * LFM2_AUDIO_HOP - 1;
}

int lfm2_audio_check_text_model(const lfm2_audio *a, const lfm2_model *text)
{
    const struct lfm2_hparams *th = lfm2_model_get_hparams(text);
    if (th->n_embd != a->hp.n_embd_out)
        return lfm2_set_error("%s: the adapter writes %d-wide embeddings (mm.a.mlp.3.weight) but the "
                              "text model %s has n_embd %d — mmproj and model do not belong together",
                              a->path, a->hp.n_embd_out, lfm2_model_path(text), th->n_embd);
    if (a->params.frontend == LFM2_AUDIO_FRONTEND_LLAMACPP && a->hp.n_pos_embd != th->n_embd)
        return lfm2_set_error("%s: tensor 'a.position_embd.weight' is %d wide; llama.cpp requires "
                              "the text model's n_embd %d", a->path, a->hp.n_pos_embd, th->n_embd);
    return 0;
}

int64_t lfm2_audio_mel(lfm2_audio *a, const float *pcm, int64_t n, float *out, int64_t ld)
{
    const int64_t r = lfm2_mel_compute(a->mel, pcm, n, out, ld);
    if (r < 0)
        lfm2_prefix_error("%s", a->path);
    return r;
}
