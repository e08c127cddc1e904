/* mkmodel-audio.c — the `lfm2a` mmproj of an LFM2-Audio pair for `lfm2 mkmodel`, in the layout
 * llama.cpp's converter writes (LFM2AudioModel / ConformerAudioModel; the tensor names of the
 * fixtures' README and spec §6.3), with RANDOM weights:
 *
 *   a.conv1d.{0,2,3,5,6}.{weight,bias}   subsampling: 3×3/2 conv, dw 3×3/2, 1×1, dw 3×3/2, 1×1
 *   a.pre_encode.out.{weight,bias}       C·16 → d_model
 *   a.blk.N.{ffn_norm,ffn_up,ffn_down,ln1,attn_q,attn_k,attn_v,attn_out,linear_pos,pos_bias_u,
 *            pos_bias_v,norm_conv,conv_pw1,conv_dw,conv_norm,conv_pw2,ffn_norm_1,ffn_up_1,
 *            ffn_down_1,ln2}                       one FastConformer layer (batch norm folded)
 *   mm.a.mlp.{0,1,3}                     adapter: LayerNorm, Linear, (GELU), Linear
 *   a.position_embd, a.position_embd_norm, a.embd_to_logits
 *                                        LFM2-Audio's output-audio embedding (8 × 2049 rows of
 *                                        the text width), kept by the converter
 *
 * Convolution kernels ("conv" in the name), norms, biases and u/v are F32 in every file (the
 * converter forces them); the other matrices take --mmproj-type. Values: N(0, 1/sqrt(fan_in))
 * for matrices (×1.4 for the pointwise convolutions and pre_encode.out, sqrt(2/W) for
 * linear_pos), 1 + N(0, 0.1) for norm weights and the folded batch-norm scale, N(0, 0.05) for
 * biases, N(0, 0.3) for u and v — the fixtures' recipe, which keeps every stage's activations
 * O(1), so the encoder is exercised at realistic magnitudes. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mkmodel-audio.h"

struct audio_config {
    const char *name;     /* the audio-* backbone config of mkmodel.c this mmproj goes with */
    int text_embd;        /* the backbone's n_embd = adapter output */
    int d_model, n_layer, n_head, n_ff, n_sub, n_adapter, n_pos_rows, conv_kernel;
};

static const struct audio_config k_audio[] = {
    /* the fixtures' tiny shape (tests, demo) */
    { "audio-tiny", 128, 64, 2, 4, 256, 16, 128, 2048, 9 },
    /* LFM2-Audio-1.5B: LFM2-1.2B backbone, 17 conformer layers of 512, 8 heads, FFN 2048,
     * 256 subsampling channels, adapter 512 → 2048 → 2048, 8 codebooks × 2049 audio rows */
    { "audio-1.5b", 2048, 512, 17, 8, 2048, 256, 2048, 8 * 2049, 9 },
};

static const struct audio_config *find(const char *name)
{
    for (size_t i = 0; i < sizeof k_audio / sizeof k_audio[0]; i++)
        if (name && !strcmp(k_audio[i].name, name))
            return &k_audio[i];
    return NULL;
}

int mkmodel_audio_mmproj_type(const char *name)
{
    if (!strcmp(name, "f32"))
        return LFM2_TYPE_F32;
    if (!strcmp(name, "f16"))
        return LFM2_TYPE_F16;
    if (!strcmp(name, "q8_0"))
        return LFM2_TYPE_Q8_0;
    return -1;
}

int mkmodel_audio_plan(const char *config, enum lfm2_type mt, const struct mkmodel_sink *s)
{
    const struct audio_config *c = find(config);
    if (!c)
        return -1;
    const enum lfm2_type F = LFM2_TYPE_F32, emb = mt == LFM2_TYPE_F32 ? F : LFM2_TYPE_F16;
    const int64_t D = c->d_model, C = c->n_sub, Ff = c->n_ff, P = c->n_adapter, E = c->text_embd;
    const int64_t dh = D / c->n_head, W = 512, K = c->conv_kernel;
    const int64_t F3 = 16;   /* 128 mel bins after three stride-2 stages */
    char nm[96];
    int rc = 0;
#define ADD(name, mean, std, type, nd, a, b, cc, d)                                            \
    do {                                                                                        \
        const int64_t ne_[4] = { a, b, cc, d };                                                 \
        rc |= s->add(s->ctx, name, mean, std, type, nd, ne_);                                   \
    } while (0)
    /* subsampling: kernels OIHW (ne {kx, ky, in, out}), biases {1, 1, C} */
    const float k9 = 1.0f / 3.0f, kc = 1.4f / sqrtf((float)C);
    ADD("a.conv1d.0.weight", 0, k9, F, 4, 3, 3, 1, C);
    ADD("a.conv1d.0.bias", 0, 0.05f, F, 3, 1, 1, C, 1);
    ADD("a.conv1d.2.weight", 0, k9, F, 4, 3, 3, 1, C);
    ADD("a.conv1d.2.bias", 0, 0.05f, F, 3, 1, 1, C, 1);
    ADD("a.conv1d.3.weight", 0, kc, F, 4, 1, 1, C, C);
    ADD("a.conv1d.3.bias", 0, 0.05f, F, 3, 1, 1, C, 1);
    ADD("a.conv1d.5.weight", 0, k9, F, 4, 3, 3, 1, C);
    ADD("a.conv1d.5.bias", 0, 0.05f, F, 3, 1, 1, C, 1);
    ADD("a.conv1d.6.weight", 0, kc, F, 4, 1, 1, C, C);
    ADD("a.conv1d.6.bias", 0, 0.05f, F, 3, 1, 1, C, 1);
    ADD("a.pre_encode.out.weight", 0, 1.4f / sqrtf((float)(C * F3)), mt, 2, C * F3, D, 1, 1);
    ADD("a.pre_encode.out.bias", 0, 0.05f, F, 1, D, 1, 1, 1);
    const float sD = 1.0f / sqrtf((float)D), sF = 1.0f / sqrtf((float)Ff);
    for (int l = 0; l < c->n_layer; l++) {
#define N(suffix) (snprintf(nm, sizeof nm, "a.blk.%d.%s", l, suffix), nm)
#define FFN(sfx)                                                                            \
        do {                                                                                    \
            ADD(N("ffn_norm" sfx ".weight"), 1, 0.1f, F, 1, D, 1, 1, 1);                        \
            ADD(N("ffn_norm" sfx ".bias"), 0, 0.05f, F, 1, D, 1, 1, 1);                         \
            ADD(N("ffn_up" sfx ".weight"), 0, sD, mt, 2, D, Ff, 1, 1);                          \
            ADD(N("ffn_up" sfx ".bias"), 0, 0.05f, F, 1, Ff, 1, 1, 1);                          \
            ADD(N("ffn_down" sfx ".weight"), 0, sF, mt, 2, Ff, D, 1, 1);                        \
            ADD(N("ffn_down" sfx ".bias"), 0, 0.05f, F, 1, D, 1, 1, 1);                         \
        } while (0)
        FFN("");   /* macaron half-step FFN 1 */
        ADD(N("ln1.weight"), 1, 0.1f, F, 1, D, 1, 1, 1);
        ADD(N("ln1.bias"), 0, 0.05f, F, 1, D, 1, 1, 1);
        static const char *const att[4] = { "attn_q", "attn_k", "attn_v", "attn_out" };
        for (int j = 0; j < 4; j++) {
            char base[48];
            snprintf(base, sizeof base, "%s.weight", att[j]);
            ADD(N(base), 0, sD, mt, 2, D, D, 1, 1);
            snprintf(base, sizeof base, "%s.bias", att[j]);
            ADD(N(base), 0, 0.05f, F, 1, D, 1, 1, 1);
        }
        ADD(N("linear_pos.weight"), 0, sqrtf(2.0f / (float)W), mt, 2, W, D, 1, 1);
        ADD(N("pos_bias_u"), 0, 0.3f, F, 2, dh, c->n_head, 1, 1);
        ADD(N("pos_bias_v"), 0, 0.3f, F, 2, dh, c->n_head, 1, 1);
        ADD(N("norm_conv.weight"), 1, 0.1f, F, 1, D, 1, 1, 1);
        ADD(N("norm_conv.bias"), 0, 0.05f, F, 1, D, 1, 1, 1);
        ADD(N("conv_pw1.weight"), 0, 1.4f * sD, F, 2, D, 2 * D, 1, 1);
        ADD(N("conv_pw1.bias"), 0, 0.05f, F, 1, 2 * D, 1, 1, 1);
        ADD(N("conv_dw.weight"), 0, 1.0f / sqrtf((float)K), F, 2, K, D, 1, 1);
        ADD(N("conv_dw.bias"), 0, 0.05f, F, 1, D, 1, 1, 1);
        ADD(N("conv_norm.weight"), 1, 0.1f, F, 1, D, 1, 1, 1);
        ADD(N("conv_norm.bias"), 0, 0.1f, F, 1, D, 1, 1, 1);
        ADD(N("conv_pw2.weight"), 0, 1.4f * sD, F, 2, D, D, 1, 1);
        ADD(N("conv_pw2.bias"), 0, 0.05f, F, 1, D, 1, 1, 1);
        FFN("_1");   /* FFN 2 */
#undef FFN
        ADD(N("ln2.weight"), 1, 0.1f, F, 1, D, 1, 1, 1);
        ADD(N("ln2.bias"), 0, 0.05f, F, 1, D, 1, 1, 1);
#undef N
    }
    ADD("mm.a.mlp.0.weight", 1, 0.1f, F, 1, D, 1, 1, 1);
    ADD("mm.a.mlp.0.bias", 0, 0.05f, F, 1, D, 1, 1, 1);
    ADD("mm.a.mlp.1.weight", 0, sD, mt, 2, D, P, 1, 1);
    ADD("mm.a.mlp.1.bias", 0, 0.05f, F, 1, P, 1, 1, 1);
    ADD("mm.a.mlp.3.weight", 0, 1.0f / sqrtf((float)P), mt, 2, P, E, 1, 1);
    ADD("mm.a.mlp.3.bias", 0, 0.05f, F, 1, E, 1, 1, 1);
    ADD("a.position_embd.weight", 0, 1.0f, emb, 2, E, c->n_pos_rows, 1, 1);
    ADD("a.position_embd_norm.weight", 1, 0.1f, F, 1, E, 1, 1, 1);
    ADD("a.embd_to_logits.weight", 0, 1.0f / sqrtf((float)E), emb, 2, E, c->n_pos_rows, 1, 1);
#undef ADD
    return rc ? -1 : 0;
}

void mkmodel_audio_keys(lfm2_gguf_writer *w, const char *config, enum lfm2_type mt, uint64_t seed)
{
    const struct audio_config *c = find(config);
    if (!c)
        return;
    char name[128];
    lfm2_gguf_set_str(w, "general.architecture", "clip");
    lfm2_gguf_set_str(w, "general.type", "mmproj");
    snprintf(name, sizeof name, "LFM2-Audio %s random mmproj seed%" PRIu64, c->name + 6, seed);
    lfm2_gguf_set_str(w, "general.name", name);
    lfm2_gguf_set_u32(w, "general.file_type", mt == LFM2_TYPE_F32 ? 0 : mt == LFM2_TYPE_F16 ? 1 : 7);
    lfm2_gguf_set_bool(w, "clip.has_vision_encoder", false);
    lfm2_gguf_set_bool(w, "clip.has_audio_encoder", true);
    lfm2_gguf_set_str(w, "clip.projector_type", "lfm2a");
    lfm2_gguf_set_u32(w, "clip.audio.embedding_length", (uint32_t)c->d_model);
    /* the converter writes d_model here; the real FFN width comes from the tensors */
    lfm2_gguf_set_u32(w, "clip.audio.feed_forward_length", (uint32_t)c->d_model);
    lfm2_gguf_set_u32(w, "clip.audio.block_count", (uint32_t)c->n_layer);
    lfm2_gguf_set_u32(w, "clip.audio.attention.head_count", (uint32_t)c->n_head);
    lfm2_gguf_set_f32(w, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
    lfm2_gguf_set_u32(w, "clip.audio.projection_dim", (uint32_t)c->text_embd);
    lfm2_gguf_set_u32(w, "clip.audio.num_mel_bins", 128);
}
