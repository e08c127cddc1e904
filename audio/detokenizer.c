/* detokenizer.c — codes → 24 kHz samples (spec lfm2-audio-out §6), streaming.
 *
 * Per code frame c (K codes 0 … V−2):
 *   e = (1/K) Σ_k emb.emb[k·(V−1) + c_k]          vocoder file: the code embedding (mean)
 *   rows 6n … 6n+5 = e                            ×6 nearest upsampling (75 spectra/s)
 *   spec = dense_2 · RMSNorm(LFM2(rows)) + b      tokenizer file: the engine's LFM2 backbone,
 *                                                 embeddings in, sliding-window attention,
 *                                                 positions continuing, caches kept
 *   samples = ISTFT(exp(spec[0:641])·e^{i·spec[641:1282]})          (istft.c)
 * The detokenizer stack slides its attention cache (window 30), so an utterance of any length
 * runs in a fixed amount of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tts-impl.h"

/* ---- tokenizer file ---------------------------------------------------------------------- */

struct lfm2_audio_tokenizer_params lfm2_audio_tokenizer_default_params(void)
{
    struct lfm2_audio_tokenizer_params p = { .use_mmap = true, .ggml_rounding = false, .verbose = false };
    return p;
}

lfm2_audio_tokenizer *lfm2_audio_tokenizer_load(const char *path,
                                                struct lfm2_audio_tokenizer_params params)
{
    lfm2_clear_error();
    if (!path || !*path) {
        lfm2_set_error("no tokenizer (detokenizer) path given");
        return NULL;
    }
    lfm2_audio_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        lfm2_set_error("out of memory");
        return NULL;
    }
    char arch[128] = "";
    if (!(t->g = lfm2_gguf_open(path, params.use_mmap)))
        goto fail;
    int r = lfm2_gguf_get_str_buf(t->g, "general.architecture", arch, sizeof arch);
    if (r < 0)
        goto fail;
    if (strcmp(arch, "lfm2")) {
        lfm2_set_error("%s: general.architecture is '%s', not 'lfm2'%s", path, arch,
                       lfm2_gguf_find_tensor(t->g, "depth_linear.weight")
                           ? " (this is a vocoder file: pass it as the vocoder)"
                           : " (expected the LFM2.5-Audio tokenizer-*.gguf)");
        goto fail;
    }
    if (lfm2_backbone_load(&t->bb, t->g, "lfm2", ""))
        goto fail;
    const struct lfm2_backbone *bb = &t->bb;
    if (bb->n_out != LFM2_AUDIO_N_FFT + 2) {
        lfm2_set_error("%s: lfm2.embedding_length_out is %d; the detokenizer needs %d (log-magnitude "
                       "and phase of %d bins)%s",
                       path, bb->n_out, LFM2_AUDIO_N_FFT + 2, LFM2_AUDIO_N_FFT / 2 + 1,
                       bb->n_out || lfm2_gguf_find_tensor(t->g, "dense_2.weight")
                           ? ""
                           : " (this looks like an LFM2 text model)");
        goto fail;
    }
    /* inputs are embeddings and the head is dense_2: the token table (and the LM head tied to
     * it) is never read, so it is not prepared (nor widened) */
    t->bb.tok_embd = t->bb.output = NULL;
    if (lfm2_backbone_prepare(&t->bb, params.use_mmap, !params.ggml_rounding))
        goto fail;
    int n_attn = 0;
    for (int il = 0; il < bb->hp.n_layer; il++)
        n_attn += bb->layers[il].kind == LFM2_LAYER_ATTENTION;
    char win[32] = "full";
    if (bb->hp.n_swa)
        snprintf(win, sizeof win, "window %d", bb->hp.n_swa);
    snprintf(t->desc, sizeof t->desc, "tokenizer: lfm2 %dL %dd (%d attention, %s) -> %d (%s)",
             bb->hp.n_layer, bb->hp.n_embd, n_attn, win, bb->n_out,
             lfm2_type_name(lfm2_gguf_find_tensor(t->g, "dense_2.weight")->type));
    if (params.verbose)
        fprintf(stderr, "lfm2: loaded %s: %s\n", path, t->desc);
    return t;
fail:
    lfm2_audio_tokenizer_free(t);
    return NULL;
}

void lfm2_audio_tokenizer_free(lfm2_audio_tokenizer *t)
{
    if (!t)
        return;
    lfm2_backbone_free(&t->bb);
    if (t->g)
        lfm2_gguf_close(t->g);
    free(t->path);
    free(t);
}

const char *lfm2_audio_tokenizer_path(const lfm2_audio_tokenizer *t)
{
    return t->path;
}

const char *lfm2_audio_tokenizer_desc(const lfm2_audio_tokenizer *t)
{
    return t->desc;
}

/* ---- decoder ----------------------------------------------------------------------------- */

struct lfm2_audio_decoder {
    const lfm2_vocoder *v;
    const lfm2_audio_tokenizer *t;
    lfm2_pool *pool;
    bool own_pool;
    int max_frames;
    struct lfm2_cache cache;
    struct lfm2_scratch s;
    int32_t pos;          /* detokenizer positions used in this utterance */
    float *spec;          /* [6·max_frames][n_out] */
    float *tmp;           /* [d] */
    lfm2_istft *istft;
    double ms, istft_ms;
    int64_t samples;
};

struct lfm2_audio_decoder_params lfm2_audio_decoder_default_params(void)
{
    struct lfm2_audio_decoder_params p = { .max_frames = 16, .n_threads = 0, .pool = NULL };
    return p;
}

lfm2_audio_decoder *lfm2_audio_decoder_new(const lfm2_vocoder *v, const lfm2_audio_tokenizer *t,
                                           struct lfm2_audio_decoder_params p)
{
    const struct lfm2_backbone *bb = &t->bb;
    if (bb->hp.n_embd != v->hp.n_code_embd) {
        lfm2_set_error("%s: the detokenizer stack is %d wide but the code embedding of %s "
                       "(emb.emb.weight) is %d",
                       t->path, bb->hp.n_embd, v->path, v->hp.n_code_embd);
        return NULL;
    }
    lfm2_audio_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    d->v = v;
    d->t = t;
    d->max_frames = p.max_frames > 0 ? (p.max_frames < 1024 ? p.max_frames : 1024) : 16;
    const int rows = LFM2_AUDIO_UPSAMPLE * d->max_frames;
    /* a windowed stack slides through a cache of a few batches; full attention keeps all */
    bool windowed = true;
    for (int il = 0; il < bb->hp.n_layer; il++)
        if (bb->layers[il].kind == LFM2_LAYER_ATTENTION && bb->layers[il].n_swa <= 0)
            windowed = false;
    const int n_ctx = windowed ? bb->hp.n_swa + 64 + 4 * rows
                               : (bb->hp.n_ctx_train < 65536 ? bb->hp.n_ctx_train : 65536);
    d->pool = p.pool;
    if (!d->pool) {
        if (!(d->pool = lfm2_pool_new(p.n_threads)))
            goto fail;
        d->own_pool = true;
    }
    if (lfm2_cache_init(&d->cache, bb, n_ctx) || lfm2_scratch_init(&d->s, bb, rows) ||
        !(d->spec = lfm2_alloc_aligned((size_t)rows * bb->n_out * sizeof(float))) ||
        !(d->tmp = lfm2_alloc_aligned((size_t)v->hp.n_code_embd * sizeof(float))) ||
        !(d->istft = lfm2_istft_new()))
        goto fail;
    return d;
fail:
    lfm2_audio_decoder_free(d);
    return NULL;
}

void lfm2_audio_decoder_free(lfm2_audio_decoder *d)
{
    if (!d)
        return;
    lfm2_istft_free(d->istft);
    lfm2_free_aligned(d->spec);
    lfm2_free_aligned(d->tmp);
    lfm2_scratch_free(&d->s);
    lfm2_cache_free(&d->cache);
    if (d->own_pool)
        lfm2_pool_free(d->pool);
    free(d);
}

void lfm2_audio_decoder_reset(lfm2_audio_decoder *d)
{
    lfm2_cache_restore(&d->cache, 0);   /* zero convolution state */
    d->cache.base = 0;
    d->pos = 0;
    lfm2_istft_reset(d->istft);
}

/* Spectra of nf <= max_frames frames into d->spec (6·nf rows); the input rows too if asked. */
static int run_frames(lfm2_audio_decoder *d, const int32_t *codes, int nf, float *in_rows)
{
    const struct lfm2_backbone *bb = &d->t->bb;
    const int K = d->v->hp.n_codebooks, E = bb->hp.n_embd, U = LFM2_AUDIO_UPSAMPLE, n = U * nf;
    const double t0 = lfm2_time_ms();
    for (int f = 0; f < nf; f++) {
        float *x = d->s.x + (size_t)f * U * E;
        lfm2_vocoder_code_mean(d->v, codes + (size_t)f * K, x, d->tmp);
        for (int r = 1; r < U; r++)
            memcpy(x + (size_t)r * E, x, (size_t)E * sizeof(float));
    }
    if (in_rows)
        memcpy(in_rows, d->s.x, (size_t)n * E * sizeof(float));
    if (lfm2_cache_make_room(&d->cache, bb, d->pos, n))
        return -1;
    lfm2_backbone_forward(bb, &d->cache, &d->s, d->pool, n, d->pos);
    lfm2_backbone_output(bb, &d->s, d->pool, 0, n, bb->dense_out, bb->dense_out_b, d->spec, bb->n_out);
    d->pos += n;
    d->ms += lfm2_time_ms() - t0;
    return 0;
}

int lfm2_audio_decoder_spectra(lfm2_audio_decoder *d, const int32_t *codes, int n_frames,
                               float *in_rows, float *spec)
{
    const int K = d->v->hp.n_codebooks, E = d->t->bb.hp.n_embd, W = d->t->bb.n_out;
    const int U = LFM2_AUDIO_UPSAMPLE;
    if (n_frames < 0 || lfm2_audio_check_codes(codes, n_frames, K, d->v->hp.eoa - 1))
        return n_frames < 0 ? lfm2_set_error("lfm2_audio_decoder: %d frames", n_frames) : -1;
    for (int f0 = 0; f0 < n_frames; f0 += d->max_frames) {
        const int nf = n_frames - f0 < d->max_frames ? n_frames - f0 : d->max_frames;
        if (run_frames(d, codes + (size_t)f0 * K, nf, in_rows ? in_rows + (size_t)f0 * U * E : NULL))
            return -1;
        if (spec)
            memcpy(spec + (size_t)f0 * U * W, d->spec, (size_t)nf * U * W * sizeof(float));
    }
    return 0;
}

int lfm2_audio_decoder_push(lfm2_audio_decoder *d, const int32_t *codes, int n_frames,
                            float *out, size_t cap)
{
    const int K = d->v->hp.n_codebooks, W = d->t->bb.n_out, B = W / 2;
    if (n_frames < 0 || cap / LFM2_AUDIO_FRAME_SAMPLES < (size_t)n_frames)
        return lfm2_set_error("lfm2_audio_decoder_push: %d frames need %d samples of output, "
                              "the buffer has %zu",
                              n_frames, n_frames * LFM2_AUDIO_FRAME_SAMPLES, cap);
    if (lfm2_audio_check_codes(codes, n_frames, K, d->v->hp.eoa - 1))
        return -1;
    int m = 0;
    for (int f0 = 0; f0 < n_frames; f0 += d->max_frames) {
        const int nf = n_frames - f0 < d->max_frames ? n_frames - f0 : d->max_frames;
        if (run_frames(d, codes + (size_t)f0 * K, nf, NULL))
            return -1;
        const double t0 = lfm2_time_ms();
        for (int r = 0; r < LFM2_AUDIO_UPSAMPLE * nf; r++) {
            const float *row = d->spec + (size_t)r * W;
            m += lfm2_istft_push(d->istft, row, row + B, out + m);
        }
        d->istft_ms += lfm2_time_ms() - t0;
    }
    d->samples += m;
    return m;
}

int lfm2_audio_decoder_flush(lfm2_audio_decoder *d, float *out, size_t cap)
{
    if (cap < LFM2_AUDIO_TRIM)
        return lfm2_set_error("lfm2_audio_decoder_flush: the buffer has %zu samples, %d needed",
                              cap, LFM2_AUDIO_TRIM);
    const int m = lfm2_istft_flush(d->istft, out);
    d->samples += m;
    lfm2_audio_decoder_reset(d);
    return m;
}

double lfm2_audio_decoder_ms(const lfm2_audio_decoder *d, double *istft_ms, int64_t *n_samples)
{
    if (istft_ms)
        *istft_ms = d->istft_ms;
    if (n_samples)
        *n_samples = d->samples;
    return d->ms + d->istft_ms;
}
