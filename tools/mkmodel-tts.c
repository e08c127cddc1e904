/* mkmodel-tts.c — the LFM2.5-Audio speech-output files that `lfm2 mkmodel --config audio-*`
 * writes beside the backbone, in the published layout (spec lfm2-audio-out §2–3):
 *   vocoder   convert_vocoder_to_gguf.py's names, order and three keys; 1-D tensors and
 *             biases F32, the rest --vocoder-type (f16, q8_0, q4_0, f32, bf16)
 *   tokenizer the detokenizer as convert_hf_to_gguf.py writes it: arch lfm2 with
 *             attention.sliding_window 30, embedding_length_out 1282, no vocabulary, dense_2
 * Shapes: audio-tiny gets the shared fixture's tiny shapes (depthformer 64 × 2, detokenizer
 * 32 × 8); audio-1.5b the published ones (depthformer 1024 × 6, 32/8 heads, ff 2816;
 * detokenizer 512 × 8, 16/8 heads, ff 2304, 65536-row token table).
 *
 * The weights are RANDOM. Three deterministic shapings make generation on these files go
 * through every mode of the TTS loop (docs/tts.md): the backbone's token embeddings (tied LM
 * head) share a large component that makes <|audio_start|> the greedy token after text and
 * <|im_end|> the greedy token after an audio frame (whose embedding rows carry a component of
 * their own); the end-of-audio row of codebook 0's logits is scaled (audio-tiny) so short
 * utterances end; the spectral head's bias gives log-magnitudes that sound like a (noisy)
 * signal of sensible level. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2-gguf.h"
#include "lfm2-stage.h"
#include "mkmodel.h"

struct tts_shapes {
    int D, L, head_dim, n_head_kv, ff, K, V, d;   /* vocoder */
    int t_layer, t_head, t_head_kv, t_ff, t_vocab; /* detokenizer (width d) */
    bool eoa_boost;
};

static const struct tts_shapes k_tiny = { 64, 2, 16, 2, 256, 8, 2049, 32, 8, 4, 2, 128, 64, true };
static const struct tts_shapes k_published = { 1024, 6, 32, 8, 2816, 8, 2049, 512, 8, 16, 8, 2304, 65536, false };

/* The amplitude of the shared component: it dominates the random residual stream (whose RMS
 * grows with the width) so the greedy choices above hold at any size. */
static float shaping_amplitude(int64_t n_embd)
{
    return sqrtf((float)n_embd);
}

void mkmodel_tts_shape_token_embd(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    const float a = shaping_amplitude(n);
    (void)t;
    row[0] += r == 128 ? 5 * a : a;   /* <|audio_start|> wins after text input */
    if (r == 7)
        row[1] += 5 * a;              /* <|im_end|> wins after an audio frame */
}

/* audio_embedding rows: N(0, 0.3²) (the fixture's; frames differ enough for the depth
 * transformer to see it), and the K rows of a frame sum to the component that selects
 * <|im_end|> */
static void shape_audio_embd(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    (void)r;
    for (int64_t i = 0; i < n; i++)
        row[i] *= 0.3f;
    row[1] += shaping_amplitude(n) / t->scale;
}

/* N(0, 1) rows scaled (matrices: 1/sqrt(fan-in), as the shared fixture, so that activations
 * keep their size through the depth transformer and its choices vary with the input) */
static void shape_scale(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    (void)r;
    for (int64_t i = 0; i < n; i++)
        row[i] *= t->scale;
}

/* codebook 0's logits with the end-of-audio row scaled up (audio-tiny: short utterances end) */
#define EOA_BOOST 3.0f
static void shape_logits_eoa(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    const float s = r == 2048 ? EOA_BOOST * t->scale : t->scale;
    for (int64_t i = 0; i < n; i++)
        row[i] *= s;
}

/* periodic Hann, as the published istft.window buffer */
static void shape_window(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    (void)t, (void)r;
    for (int64_t i = 0; i < n; i++)
        row[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)n));
}

/* dense_2.bias: log-magnitudes falling from 2.7 to 1.2 over the bins (+ N(0, 0.2²)), phases
 * N(0, 1.5²) — the shared fixture's recipe */
static void shape_spectral_bias(const gen_tensor *t, int64_t r, float *row, int64_t n)
{
    const int64_t bins = n / 2;
    (void)t, (void)r;
    for (int64_t i = 0; i < n; i++)
        row[i] = i < bins ? 2.7f - 1.5f * (float)i / (float)(bins - 1) + 0.2f * row[i] : 1.5f * row[i];
}

static int last(plan *p, int rc, void (*shape)(const gen_tensor *, int64_t, float *, int64_t), float scale)
{
    if (rc == 0) {
        p->t[p->n - 1].g.shape = shape;
        p->t[p->n - 1].g.scale = scale;
    }
    return rc;
}

/* A matrix N(0, var/fan_in) (fan_in = ne0) */
static int matrix(plan *p, const char *name, enum lfm2_type t, int64_t ne0, int64_t ne1, float var)
{
    return last(p, plan_add(p, name, INIT_UNIT, t, 2, ne0, ne1, 1), shape_scale, sqrtf(var / (float)ne0));
}

static int plan_vocoder(const struct tts_shapes *s, int64_t H, enum lfm2_type mt, plan *p)
{
    const enum lfm2_type F = LFM2_TYPE_F32;
    const int64_t D = s->D, K = s->K, V = s->V, kv = (int64_t)s->n_head_kv * s->head_dim;
    char nm[96];
    int rc = plan_add(p, "emb.emb.weight", INIT_UNIT, mt, 2, s->d, K * (V - 1), 1);
    rc |= last(p, plan_add(p, "istft.window", INIT_ZERO, F, 1, 1280, 1, 1), shape_window, 0);
    rc |= last(p, plan_add(p, "audio_embedding.embedding.weight", INIT_UNIT, mt, 2, H, K * V, 1),
               shape_audio_embd, (float)K);
    rc |= plan_add(p, "audio_embedding.embedding_norm.weight", INIT_NORM, F, 1, H, 1, 1);
    rc |= plan_add(p, "audio_embedding.to_logits.weight", INIT_MATRIX, mt, 2, H, K * V, 1);
    for (int k = 0; k < K && rc == 0; k++) {
        snprintf(nm, sizeof nm, "depth_embeddings.%d.embedding.weight", k);
        rc |= last(p, plan_add(p, nm, INIT_UNIT, mt, 2, D, V, 1), shape_scale, 0.7f);
        snprintf(nm, sizeof nm, "depth_embeddings.%d.embedding_norm.weight", k);
        rc |= plan_add(p, nm, INIT_NORM, F, 1, D, 1, 1);
        snprintf(nm, sizeof nm, "depth_embeddings.%d.to_logits.weight", k);
        rc |= matrix(p, nm, mt, D, V, 1.0f);
        if (k == 0 && s->eoa_boost)
            p->t[p->n - 1].g.shape = shape_logits_eoa;
    }
    rc |= plan_add(p, "depth_linear.bias", INIT_BIAS, F, 1, K * D, 1, 1);
    rc |= matrix(p, "depth_linear.weight", mt, H, K * D, 1.0f);
    for (int l = 0; l < s->L && rc == 0; l++) {
#define NAME(suffix) (snprintf(nm, sizeof nm, "depthformer.layers.%d.%s", l, suffix), nm)
        rc |= matrix(p, NAME("feed_forward.w1.weight"), mt, D, s->ff, 1.0f);
        rc |= matrix(p, NAME("feed_forward.w2.weight"), mt, s->ff, D, 0.25f);
        rc |= matrix(p, NAME("feed_forward.w3.weight"), mt, D, s->ff, 1.0f);
        rc |= plan_add(p, NAME("ffn_norm.weight"), INIT_NORM, F, 1, D, 1, 1);
        rc |= plan_add(p, NAME("operator.attention.k_layernorm.weight"), INIT_NORM, F, 1, s->head_dim, 1, 1);
        rc |= plan_add(p, NAME("operator.attention.q_layernorm.weight"), INIT_NORM, F, 1, s->head_dim, 1, 1);
        rc |= matrix(p, NAME("operator.out_proj.weight"), mt, D, D, 0.25f);
        rc |= matrix(p, NAME("operator.qkv_proj.weight"), mt, D, D + 2 * kv, 1.0f);
        rc |= plan_add(p, NAME("operator_norm.weight"), INIT_NORM, F, 1, D, 1, 1);
#undef NAME
    }
    return rc;
}

static int write_plan(plan *p, lfm2_gguf_writer *w, const char *path, uint64_t seed, uint64_t domain,
                      int n_threads)
{
    plan_to_writer(p, w, seed, domain, n_threads);
    return lfm2_gguf_writer_write(w, path);
}

int mkmodel_tts_write(const config *c, const char *vocoder_out, const char *vocoder_type,
                      const char *tokenizer_out, const char *tokenizer_type, uint64_t seed,
                      int n_threads)
{
    const struct tts_shapes *s = c->n_embd <= 256 ? &k_tiny : &k_published;
    int rc = 0;
    if (vocoder_out) {
        const file_type *ft = find_file_type(vocoder_type);
        static const char *const ok[] = { "f32", "f16", "bf16", "q8_0", "q4_0" };
        bool allowed = false;
        for (size_t i = 0; ft && i < sizeof ok / sizeof ok[0]; i++)
            allowed |= !strcmp(vocoder_type, ok[i]);
        if (!allowed)
            return lfm2_set_error("--vocoder-type '%s': the vocoder converter writes f32, f16, bf16, "
                                  "q8_0 or q4_0", vocoder_type);
        plan p = { 0 };
        lfm2_gguf_writer *w = lfm2_gguf_writer_new();
        rc = !w || plan_vocoder(s, c->n_embd, ft->type, &p) ? lfm2_set_error("out of memory") : 0;
        if (rc == 0) {
            lfm2_gguf_set_str(w, "general.architecture",
                              "this model cannot be used as LLM, use it via --model-vocoder in TTS examples");
            lfm2_gguf_set_u32(w, "depthformer_n_layer", (uint32_t)s->L);
            lfm2_gguf_set_u32(w, "depthformer_n_embd", (uint32_t)s->D);
            rc = write_plan(&p, w, vocoder_out, seed, 0x766f636f646572ull /* "vocoder" */, n_threads);
        }
        if (rc == 0)
            fprintf(stderr, "lfm2 mkmodel: wrote %s (vocoder %s, depthformer %d × %d, %lld parameters, "
                    "RANDOM weights)\n", vocoder_out, vocoder_type, s->D, s->L, (long long)p.n_params);
        lfm2_gguf_writer_free(w);
        free(p.t);
    }
    if (rc == 0 && tokenizer_out) {
        const file_type *ft = find_file_type(tokenizer_type);
        if (!ft)
            return lfm2_set_error("--tokenizer-type '%s' is not a known type", tokenizer_type);
        config tc = { .name = s == &k_tiny ? "audio-detokenizer-tiny" : "audio-detokenizer",
                      .arch = "lfm2", .size_label = s == &k_tiny ? "TINY" : "70M",
                      .n_embd = s->d, .n_layer = s->t_layer, .n_head = s->t_head,
                      .n_head_kv = s->t_head_kv, .n_ff = s->t_ff, .n_vocab = s->t_vocab,
                      .attn = { 2, 4, 6 }, .n_attn = 3, .n_swa = 30, .n_out = 1282 };
        plan p = { 0 };
        lfm2_gguf_writer *w = lfm2_gguf_writer_new();
        rc = !w || plan_backbone(&tc, ft, &p) ? lfm2_set_error("out of memory") : 0;
        if (rc == 0) {
            rc = last(&p, plan_add(&p, "dense_2.bias", INIT_UNIT, LFM2_TYPE_F32, 1, tc.n_out, 1, 1),
                      shape_spectral_bias, 0) |
                 plan_add(&p, "dense_2.weight", INIT_MATRIX, ft->type, 2, tc.n_embd, tc.n_out, 1);
            if (rc)
                lfm2_set_error("out of memory");
        }
        if (rc == 0) {
            set_backbone_keys(w, &tc, ft, seed, NULL);
            rc = write_plan(&p, w, tokenizer_out, seed, 0x6465746f6bull /* "detok" */, n_threads);
        }
        if (rc == 0)
            fprintf(stderr, "lfm2 mkmodel: wrote %s (detokenizer %s, %d × %d, window 30, %lld parameters, "
                    "RANDOM weights)\n", tokenizer_out, tokenizer_type, tc.n_embd, tc.n_layer,
                    (long long)p.n_params);
        lfm2_gguf_writer_free(w);
        free(p.t);
    }
    return rc;
}
