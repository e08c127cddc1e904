/* mmproj.c — loading and validating an LFM2-VL mmproj GGUF (projector type "lfm2"):
 * every clip.* key the encoder depends on and every v.* / mm.* tensor, with errors that
 * name the file, the key or tensor and the reason. Matrices are copied once into the
 * kernels' 16-row layout (lfm2_weights_prepare; the file pages are dropped as they are
 * copied); F32 vectors stay in the mapping, small vectors of other types are dequantized once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision-impl.h"

struct lfm2_vision_params lfm2_vision_default_params(void)
{
    struct lfm2_vision_params p;
    memset(&p, 0, sizeof p);
    p.preprocess = LFM2_VISION_PREPROCESS_OFFICIAL;
    p.min_image_tokens = 64;
    p.max_image_tokens = 256;
    p.do_tiling = true;
    p.min_tiles = 2;
    p.max_tiles = 10;
    p.max_pixels_tolerance = 2.0f;
    p.use_thumbnail = true;
    p.resample = LFM2_VISION_RESAMPLE_AUTO;
    p.n_threads = 0;
    p.pool = NULL;
    p.use_mmap = true;
    p.verbose = false;
    return p;
}

/* ---- key helpers -------------------------------------------------------------------------- */

static int req_int(lfm2_vision *v, const char *key, int64_t lo, int64_t hi, int *out)
{
    int64_t x;
    if (lfm2_gguf_get_int_range(v->gguf, key, lo, hi, true, &x) < 0)
        return -1;
    *out = (int)x;
    return 0;
}

/* 1-D vector of n floats: F32 straight from the mapping, other types dequantized.
 * *out = NULL when an optional vector is absent. Returns 0 or -1. */
static int vec(lfm2_vision *v, const char *name, int64_t n, bool required, const float **out)
{
    *out = NULL;
    const lfm2_tensor *t = lfm2_gguf_find_tensor(v->gguf, name);
    if (!t)
        return required ? lfm2_set_error("%s: tensor '%s' is missing", v->path, name) : 0;
    const int64_t ne[1] = { n };
    t = lfm2_gguf_require_tensor(v->gguf, name, 1, ne, 0);
    if (!t)
        return -1;
    if (t->type == LFM2_TYPE_F32) {
        *out = (const float *)t->data;
        return 0;
    }
    float **o = realloc(v->owned, sizeof *o * (size_t)(v->n_owned + 1));
    if (!o)
        return lfm2_set_error("out of memory");
    v->owned = o;
    float *buf = lfm2_alloc_aligned(sizeof(float) * (size_t)n);
    if (!buf)
        return -1;
    lfm2_tensor_to_f32(t, buf);
    v->owned[v->n_owned++] = buf;
    *out = buf;
    return 0;
}

static const lfm2_tensor *mat(lfm2_vision *v, const char *name, int64_t n_in, int64_t n_out)
{
    if (!lfm2_gguf_find_tensor(v->gguf, name)) {
        lfm2_set_error("%s: tensor '%s' is missing", v->path, name);
        return NULL;
    }
    const int64_t ne[2] = { n_in, n_out };
    return lfm2_gguf_require_tensor(v->gguf, name, 2, ne, 0);
}

/* Tensors of other SigLIP/CLIP variants: present means a layout this encoder does not run,
 * so refuse instead of silently computing something else. */
static int reject_foreign(lfm2_vision *v)
{
    static const char *const foreign[] = {
        "v.class_embd", "v.pre_ln.weight", "v.pre_ln.bias", "v.patch_embd.weight.1",
        "v.blk.0.attn_qkv.weight", "v.blk.0.attn_q_norm.weight", "v.blk.0.attn_k_norm.weight",
        "v.blk.0.ls1.weight", "v.blk.0.ls2.weight", "v.blk.0.ffn_gate.weight",
        "mm.model.fc.weight", "mm.0.weight", "mm.3.weight",
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        if (lfm2_gguf_find_tensor(v->gguf, foreign[i]))
            return lfm2_set_error("%s: tensor '%s' belongs to another encoder layout; LFM2-VL's "
                                  "SigLIP2 NaFlex encoder has no such tensor", v->path,
                                  foreign[i]);
    return 0;
}

static int load_hparams(lfm2_vision *v)
{
    lfm2_gguf *g = v->gguf;
    struct lfm2_vision_hparams *hp = &v->hp;
    char buf[64];

    int r = lfm2_gguf_get_str_buf(g, "general.architecture", buf, sizeof buf);
    if (r < 0)
        return -1;
    if (r == 0 || strcmp(buf, "clip") != 0)
        return lfm2_set_error("%s: general.architecture is '%s', expected 'clip' — not an mmproj "
                              "file (a text model passed as --mmproj?)", v->path,
                              r == 0 ? "(missing)" : buf);

    bool has_vision = false;
    r = lfm2_gguf_get_bool(g, "clip.has_vision_encoder", &has_vision);
    if (r < 0)
        return -1;
    if (r == 0 || !has_vision)
        return lfm2_set_error("%s: clip.has_vision_encoder is %s: this mmproj has no vision "
                              "encoder", v->path, r == 0 ? "missing" : "false");

    r = lfm2_gguf_get_str_buf(g, "clip.projector_type", buf, sizeof buf);
    if (r == 0)
        r = lfm2_gguf_get_str_buf(g, "clip.vision.projector_type", buf, sizeof buf);
    if (r < 0)
        return -1;
    if (r == 0)
        return lfm2_set_error("%s: required key 'clip.projector_type' is missing", v->path);
    if (strcmp(buf, "lfm2") != 0)
        return lfm2_set_error("%s: clip.projector_type is '%s'; only 'lfm2' (LFM2-VL) is "
                              "supported", v->path, buf);
    memcpy(hp->projector, "lfm2", 5);   /* checked equal above */

    bool use_gelu = true;
    if (lfm2_gguf_get_bool(g, "clip.use_gelu", &use_gelu) < 0)
        return -1;
    if (!use_gelu)
        return lfm2_set_error("%s: clip.use_gelu is false (quick GELU); LFM2-VL's encoder uses the "
                              "tanh GELU", v->path);
    /* newer converters write the processor config's `resample` here: the default filter */
    r = lfm2_gguf_get_str_buf(g, "clip.vision.image_resize_algo", buf, sizeof buf);
    if (r < 0)
        return -1;
    hp->resample = LFM2_VISION_RESAMPLE_AUTO;
    if (r == 1) {
        const int rs = lfm2_vision_resample_from_name(buf);
        if (rs != LFM2_VISION_RESAMPLE_BILINEAR && rs != LFM2_VISION_RESAMPLE_BICUBIC)
            return lfm2_set_error("%s: clip.vision.image_resize_algo is '%s'; LFM2-VL resamples "
                                  "with 'bilinear' or 'bicubic'", v->path, buf);
        hp->resample = (enum lfm2_vision_resample)rs;
    }

    if (req_int(v, "clip.vision.image_size", 1, 65536, &hp->image_size) ||
        req_int(v, "clip.vision.patch_size", 1, 64, &hp->patch_size) ||
        req_int(v, "clip.vision.embedding_length", 1, 65536, &hp->n_embd) ||
        req_int(v, "clip.vision.feed_forward_length", 1, 262144, &hp->n_ff) ||
        req_int(v, "clip.vision.block_count", 1, 256, &hp->n_layer) ||
        req_int(v, "clip.vision.attention.head_count", 1, 1024, &hp->n_head))
        return -1;
    if (hp->n_embd % hp->n_head != 0)
        return lfm2_set_error("%s: clip.vision.embedding_length %d is not a multiple of "
                              "clip.vision.attention.head_count %d", v->path, hp->n_embd,
                              hp->n_head);
    r = lfm2_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps);
    if (r < 0)
        return -1;
    if (r == 0)
        return lfm2_set_error("%s: required key 'clip.vision.attention.layer_norm_epsilon' is "
                              "missing", v->path);
    if (!(hp->eps > 0.0f && hp->eps < 1.0f))
        return lfm2_set_error("%s: clip.vision.attention.layer_norm_epsilon = %g is not in (0, 1)",
                              v->path, (double)hp->eps);

    int64_t merge = 2;   /* optional: LFM2-VL's 2×2 pixel unshuffle */
    if (lfm2_gguf_get_int_range(g, "clip.vision.projector.scale_factor", 1, 8, false, &merge) < 0)
        return -1;
    hp->merge = (int)merge;
    if (LFM2_VISION_TILE_SIZE % (hp->patch_size * hp->merge) != 0)
        return lfm2_set_error("%s: patch size %d × scale factor %d does not divide the %d-pixel "
                              "tile", v->path, hp->patch_size, hp->merge, LFM2_VISION_TILE_SIZE);

    static const char *const ms[2] = { "clip.vision.image_mean", "clip.vision.image_std" };
    float *dst[2] = { hp->mean, hp->std };
    for (int i = 0; i < 2; i++) {
        r = lfm2_gguf_get_f32_arr(g, ms[i], dst[i], 3);
        if (r < 0)
            return lfm2_set_error("%s: key '%s' must be an array of 3 floats", v->path, ms[i]);
        if (r == 0)
            return lfm2_set_error("%s: required key '%s' is missing", v->path, ms[i]);
        for (int c = 0; c < 3; c++)
            if (!isfinite(dst[i][c]) || (i == 1 && dst[i][c] == 0.0f))
                return lfm2_set_error("%s: key '%s'[%d] = %g is not usable", v->path, ms[i], c,
                                      (double)dst[i][c]);
    }
    /* (u/255 − mean)/std exactly as mtmd's img_u8_to_f32 computes it, once per level */
    for (int c = 0; c < 3; c++)
        for (int u = 0; u < 256; u++)
            v->lut[c][u] = ((float)u / 255.0f - hp->mean[c]) / hp->std[c];
    return 0;
}

static int load_tensors(lfm2_vision *v)
{
    struct lfm2_vision_hparams *hp = &v->hp;
    const int64_t D = hp->n_embd, F = hp->n_ff, p = hp->patch_size;
    char name[96];

    if (reject_foreign(v))
        return -1;

    /* patch embedding: OIHW kernel {p, p, 3, D}, used as a matrix [3·p·p] → D */
    if (!lfm2_gguf_find_tensor(v->gguf, "v.patch_embd.weight"))
        return lfm2_set_error("%s: tensor 'v.patch_embd.weight' is missing", v->path);
    const int64_t pne[4] = { p, p, 3, D };
    const lfm2_tensor *pw = lfm2_gguf_require_tensor(v->gguf, "v.patch_embd.weight", 4, pne, 0);
    if (!pw)
        return -1;
    const int64_t K = 3 * p * p;
    v->patch_w = *pw;
    v->patch_w.n_dims = 2;
    v->patch_w.ne[0] = K;
    v->patch_w.ne[1] = D;
    v->patch_w.ne[2] = v->patch_w.ne[3] = 1;
    if (K % lfm2_type_block_elems(pw->type) != 0)
        return lfm2_set_error("%s: tensor 'v.patch_embd.weight' has type %s whose block does not "
                              "divide a %lld-value patch", v->path, lfm2_type_name(pw->type),
                              (long long)K);
    v->patch_w.nb1 = lfm2_row_bytes(pw->type, K);
    if (v->params.preprocess == LFM2_VISION_PREPROCESS_LLAMACPP &&
        pw->type != LFM2_TYPE_F16) {
        /* mtmd runs the patch convolution as an F16 im2col + F16 matmul even for an F32
         * kernel: round the kernel once here; lfm2_matmul rounds the pixels to fp16. */
        const size_t n = (size_t)(K * D);
        float *f = malloc(n * sizeof *f);
        uint16_t *h = lfm2_alloc_aligned(n * sizeof *h);
        if (!f || !h) {
            free(f);
            lfm2_free_aligned(h);
            return lfm2_set_error("out of memory");
        }
        lfm2_tensor_to_f32(pw, f);
        for (size_t i = 0; i < n; i++)
            h[i] = lfm2_fp32_to_fp16(f[i]);
        free(f);
        v->patch_w_owned = h;
        v->patch_w.type = LFM2_TYPE_F16;
        v->patch_w.data = h;
        v->patch_w.nb1 = (size_t)K * 2;
        v->patch_w.nbytes = n * 2;
    }
    if (vec(v, "v.patch_embd.bias", D, false, &v->patch_b))
        return -1;

    /* learned positions {D, n_pos}, n_pos a square grid */
    const lfm2_tensor *pe = lfm2_gguf_find_tensor(v->gguf, "v.position_embd.weight");
    if (!pe)
        return lfm2_set_error("%s: tensor 'v.position_embd.weight' is missing", v->path);
    const int64_t pene[2] = { D, 0 };
    pe = lfm2_gguf_require_tensor(v->gguf, "v.position_embd.weight", 2, pene, 0);
    if (!pe)
        return -1;
    const int64_t n_pos = pe->ne[1];
    int side = (int)llround(sqrt((double)n_pos));
    if ((int64_t)side * side != n_pos || side < 1)
        return lfm2_set_error("%s: tensor 'v.position_embd.weight' has %lld positions, not a square "
                              "grid", v->path, (long long)n_pos);
    hp->n_pos_side = side;
    v->pos = lfm2_alloc_aligned(sizeof(float) * (size_t)(n_pos * D));
    if (!v->pos)
        return -1;
    lfm2_tensor_to_f32(pe, v->pos);

    v->blk = calloc((size_t)hp->n_layer, sizeof *v->blk);
    if (!v->blk)
        return lfm2_set_error("out of memory");
    for (int il = 0; il < hp->n_layer; il++) {
        struct lfm2_vision_block *b = &v->blk[il];
#define BLK(s) (snprintf(name, sizeof name, "v.blk.%d.%s", il, s), name)
        if (!(b->wq = mat(v, BLK("attn_q.weight"), D, D)) ||
            !(b->wk = mat(v, BLK("attn_k.weight"), D, D)) ||
            !(b->wv = mat(v, BLK("attn_v.weight"), D, D)) ||
            !(b->wo = mat(v, BLK("attn_out.weight"), D, D)) ||
            !(b->up = mat(v, BLK("ffn_up.weight"), D, F)) ||
            !(b->down = mat(v, BLK("ffn_down.weight"), F, D)))
            return -1;
        if (vec(v, BLK("ln1.weight"), D, true, &b->ln1_w) ||
            vec(v, BLK("ln2.weight"), D, true, &b->ln2_w))
            return -1;
        /* biases are optional in llama.cpp's loader; SigLIP files have them all */
        const float **opt[] = { &b->bq, &b->bk, &b->bv, &b->bo, &b->bup, &b->bdown,
                                &b->ln1_b, &b->ln2_b };
        const char *optn[] = { "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_out.bias",
                               "ffn_up.bias", "ffn_down.bias", "ln1.bias", "ln2.bias" };
        const int64_t optd[] = { D, D, D, D, F, D, D, D };
        for (int j = 0; j < 8; j++)
            if (vec(v, BLK(optn[j]), optd[j], false, opt[j]))
                return -1;
#undef BLK
    }
    if (vec(v, "v.post_ln.weight", D, false, &v->post_w) ||
        vec(v, "v.post_ln.bias", D, false, &v->post_b))
        return -1;

    /* projector: [LN] → mm.1 → GELU → mm.2 over the unshuffled 4D features */
    const int64_t Dm = D * hp->merge * hp->merge;
    if (vec(v, "mm.input_norm.weight", Dm, false, &v->in_norm_w) ||
        vec(v, "mm.input_norm.bias", Dm, false, &v->in_norm_b))
        return -1;
    hp->has_input_norm = v->in_norm_w != NULL;
    if (!v->in_norm_w && v->in_norm_b)
        return lfm2_set_error("%s: tensor 'mm.input_norm.bias' without 'mm.input_norm.weight'",
                              v->path);

    const lfm2_tensor *m1 = lfm2_gguf_find_tensor(v->gguf, "mm.1.weight");
    if (!m1)
        return lfm2_set_error("%s: tensor 'mm.1.weight' is missing", v->path);
    if (m1->n_dims != 2 || m1->ne[0] != Dm)
        return lfm2_set_error("%s: tensor 'mm.1.weight' has input width %lld; the pixel-unshuffled "
                              "features are %lld wide (%d × %d²)", v->path, (long long)m1->ne[0],
                              (long long)Dm, hp->n_embd, hp->merge);
    if (!(v->mm1 = mat(v, "mm.1.weight", Dm, 0)))
        return -1;
    hp->n_proj_hidden = (int)v->mm1->ne[1];
    if (vec(v, "mm.1.bias", hp->n_proj_hidden, false, &v->mm1_b))
        return -1;
    const lfm2_tensor *m2 = lfm2_gguf_find_tensor(v->gguf, "mm.2.weight");
    if (!m2)
        return lfm2_set_error("%s: tensor 'mm.2.weight' is missing", v->path);
    if (!(v->mm2 = mat(v, "mm.2.weight", hp->n_proj_hidden, 0)))
        return -1;
    hp->n_embd_out = (int)v->mm2->ne[1];
    if (vec(v, "mm.2.bias", hp->n_embd_out, false, &v->mm2_b))
        return -1;

    int64_t proj_dim;
    if (lfm2_gguf_get_int(v->gguf, "clip.vision.projection_dim", &proj_dim) == 1 &&
        proj_dim != hp->n_embd_out && v->params.verbose)
        fprintf(stderr, "lfm2-vision: %s: clip.vision.projection_dim %lld differs from mm.2 "
                        "width %d (using mm.2)\n", v->path, (long long)proj_dim, hp->n_embd_out);
    lfm2_clear_error();
    return 0;
}

/* Rearranges *slot into the kernels' 16-row interleaved layout (types that have one), the
 * layout the engine's batched GEMM reads at full speed; the view and its memory are owned by
 * the context. drop: *slot's bytes are the file mapping, whose copied pages may be released. */
static int prepare_one(lfm2_vision *v, const lfm2_tensor **slot, bool drop)
{
    lfm2_tensor *view = &v->prep_view[v->n_prep];
    lfm2_clear_error();
    void *mem = lfm2_weights_prepare(*slot, view, drop);
    if (!mem) {   /* a type used as stored, or out of memory */
        if (!lfm2_last_error()[0])
            return 0;
        lfm2_prefix_error("%s", v->path);
        return -1;
    }
    v->prep_mem[v->n_prep++] = mem;
    *slot = view;
    return 0;
}

/* Prepares every matrix the encoder multiplies, once at load. */
static int prepare_weights(lfm2_vision *v)
{
    const int cap = 6 * v->hp.n_layer + 3;
    v->prep_view = calloc((size_t)cap, sizeof *v->prep_view);
    v->prep_mem = calloc((size_t)cap, sizeof *v->prep_mem);
    if (!v->prep_view || !v->prep_mem)
        return lfm2_set_error("out of memory");
    const bool drop = v->params.use_mmap;
    /* the patch kernel is a view of a 4-D tensor (or an owned fp16 copy, never dropped) */
    const lfm2_tensor *pw = &v->patch_w;
    if (prepare_one(v, &pw, drop && !v->patch_w_owned))
        return -1;
    if (pw != &v->patch_w) {
        v->patch_w = *pw;
        lfm2_free_aligned(v->patch_w_owned);   /* copied into the prepared layout */
        v->patch_w_owned = NULL;
    }
    for (int il = 0; il < v->hp.n_layer; il++) {
        struct lfm2_vision_block *b = &v->blk[il];
        const lfm2_tensor **w[] = { &b->wq, &b->wk, &b->wv, &b->wo, &b->up, &b->down };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
            if (prepare_one(v, w[i], drop))
                return -1;
    }
    if (prepare_one(v, &v->mm1, drop) || prepare_one(v, &v->mm2, drop))
        return -1;
    lfm2_clear_error();
    return 0;
}

lfm2_vision *lfm2_vision_load(const char *path, struct lfm2_vision_params params)
{
    if (!path)
        return lfm2_set_error("lfm2_vision_load: no mmproj path"), NULL;
    lfm2_vision *v = calloc(1, sizeof *v);
    if (!v)
        return lfm2_set_error("out of memory"), NULL;
    if (params.preprocess != LFM2_VISION_PREPROCESS_LLAMACPP)
        params.preprocess = LFM2_VISION_PREPROCESS_OFFICIAL;
    v->params = params;
    v->path = strdup(path);
    if (!v->path)
        goto fail_oom;
    /* validate the preprocessing parameters early (a plan of a tiny picture) */
    struct lfm2_vision_plan probe;
    if (lfm2_vision_make_plan(&params, 16, 2, 1, 1, &probe)) {
        lfm2_prefix_error("%s", path);
        goto fail;
    }
    v->gguf = lfm2_gguf_open(path, params.use_mmap);
    if (!v->gguf)
        goto fail;
    if (load_hparams(v) || load_tensors(v))
        goto fail;
    /* desc names the file's type, before the views replace the tensors */
    const enum lfm2_type file_type = v->blk[0].wq->type;
    if (prepare_weights(v))
        goto fail;

    if (params.pool) {
        v->pool = params.pool;
    } else {
        v->pool = lfm2_pool_new(params.n_threads);
        if (!v->pool)
            goto fail;
        v->own_pool = true;
    }
    const struct lfm2_vision_hparams *hp = &v->hp;
    snprintf(v->desc, sizeof v->desc,
             "%s mmproj: SigLIP2 %dL %dd %dh ffn %d, patch %d, merge %d, projector %d→%d→%d (%s)",
             hp->projector, hp->n_layer, hp->n_embd, hp->n_head, hp->n_ff, hp->patch_size,
             hp->merge, hp->n_embd * hp->merge * hp->merge, hp->n_proj_hidden, hp->n_embd_out,
             lfm2_type_name(file_type));
    if (params.verbose)
        fprintf(stderr, "lfm2-vision: %s: %s; preprocess %s, %d..%d tokens, tiling %s\n", path,
                v->desc, lfm2_vision_preprocess_name(params.preprocess), params.min_image_tokens,
                params.max_image_tokens, params.do_tiling ? "on" : "off");
    lfm2_clear_error();
    return v;

fail_oom:
    lfm2_set_error("out of memory");
fail:
    lfm2_vision_free(v);
    return NULL;
}

void lfm2_vision_free(lfm2_vision *v)
{
    if (!v)
        return;
    if (v->own_pool)
        lfm2_pool_free(v->pool);
    float **bufs[] = { &v->x, &v->a, &v->q, &v->k, &v->v, &v->att, &v->ff, &v->patches,
                       &v->pos_r, &v->mm_in, &v->mm_h };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        lfm2_free_aligned(*bufs[i]);
    lfm2_free_aligned(v->canvas);
    lfm2_free_aligned(v->thumb);
    lfm2_free_aligned(v->rs_tmp);
    for (int i = 0; i < v->n_owned; i++)
        lfm2_free_aligned(v->owned[i]);
    free(v->owned);
    lfm2_free_aligned(v->patch_w_owned);
    for (int i = 0; i < v->n_prep; i++)
        lfm2_weights_free(v->prep_mem[i]);
    free(v->prep_mem);
    free(v->prep_view);
    lfm2_free_aligned(v->pos);
    free(v->blk);
    lfm2_gguf_close(v->gguf);
    free(v->path);
    free(v);
}

const struct lfm2_vision_hparams *lfm2_vision_get_hparams(const lfm2_vision *v)
{
    return &v->hp;
}

const struct lfm2_vision_params *lfm2_vision_get_params(const lfm2_vision *v)
{
    return &v->params;
}

int lfm2_vision_n_embd_out(const lfm2_vision *v)
{
    return v->hp.n_embd_out;
}

const char *lfm2_vision_path(const lfm2_vision *v)
{
    return v->path;
}

const char *lfm2_vision_desc(const lfm2_vision *v)
{
    return v->desc;
}

lfm2_pool *lfm2_vision_pool(lfm2_vision *v)
{
    return v->pool;
}

int lfm2_vision_check_text_model(const lfm2_vision *v, const lfm2_model *text)
{
    const struct lfm2_hparams *th = lfm2_model_get_hparams(text);
    if (th->n_embd != v->hp.n_embd_out)
        return lfm2_set_error("%s: the projector writes %d-wide embeddings (mm.2.weight) but the "
                              "text model %s has n_embd %d — mmproj and model do not belong "
                              "together", v->path, v->hp.n_embd_out, lfm2_model_path(text),
                              th->n_embd);
    return 0;
}

int lfm2_vision_plan_image(const lfm2_vision *v, int width, int height,
                           struct lfm2_vision_plan *plan)
{
    struct lfm2_vision_params p = v->params;
    if (p.resample == LFM2_VISION_RESAMPLE_AUTO)
        p.resample = v->hp.resample;   /* the file's filter, or AUTO = bilinear */
    return lfm2_vision_make_plan(&p, v->hp.patch_size, v->hp.merge, width, height, plan);
}

size_t lfm2_vision_scratch_bytes(const lfm2_vision *v)
{
    return v->scratch_bytes;
}

struct lfm2_vision_timings lfm2_vision_last_timings(const lfm2_vision *v)
{
    return v->timings;
}
