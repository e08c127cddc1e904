/* fuzz-vocoder — audio codes from anywhere (a model's sampler, an `other/tensors` buffer into
 * lfm2audiodec) through the speech output path: the feedback embedding of each frame and the
 * streaming decoder (detokenizer + ISTFT) of tests/data/tts's tiny vocoder and tokenizer.
 *
 * Input: byte 0 frames per push (1 + % 8), then frames of K codes, each a little-endian u16
 * mapped to −8 … V + 7 (V codes per codebook: a few out of range on each side), at most 16
 * frames.
 *
 * Checked: a frame with a code outside 0 … V−1 is refused by the embedding and, outside
 * 0 … V−2 (the end-of-audio code is not audio), by the decoder, with an error naming the frame
 * and the codebook, and nothing is decoded; valid frames give finite embeddings and exactly
 * 1920 finite samples per frame over push… + flush, in [−1, 1] after conversion to S16. */
#include <math.h>

#include "fuzz-common.h"
#include "lfm2-tts.h"

#define MAX_FRAMES 16

static lfm2_vocoder *voc;
static lfm2_audio_tokenizer *tok;
static lfm2_audio_head *head;
static lfm2_audio_decoder *dec;
static float *out, *embd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char *vp = fuzz_data_path("tts/vocoder-tiny-dev.gguf");
    char *tp = fuzz_data_path("tts/tokenizer-tiny-dev.gguf");
    voc = lfm2_vocoder_load(vp, lfm2_vocoder_default_params());
    tok = voc ? lfm2_audio_tokenizer_load(tp, lfm2_audio_tokenizer_default_params()) : NULL;
    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = 1;
    struct lfm2_audio_head_params hp = lfm2_audio_head_default_params();
    head = tok ? lfm2_audio_head_new(voc, hp) : NULL;
    dec = head ? lfm2_audio_decoder_new(voc, tok, dp) : NULL;
    if (!dec) {
        fprintf(stderr, "fuzz-vocoder: %s\n", lfm2_last_error());
        abort();
    }
    free(vp);
    free(tp);
    out = malloc((size_t)LFM2_AUDIO_FRAME_SAMPLES * (MAX_FRAMES + 1) * sizeof(float));
    embd = malloc((size_t)lfm2_vocoder_get_hparams(voc)->n_embd * sizeof(float));
    if (!out || !embd)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct lfm2_vocoder_hparams *hp = lfm2_vocoder_get_hparams(voc);
    const int K = hp->n_codebooks, V = hp->n_codes;
    fuzz_input in = { data, size };
    const int per_push = 1 + fuzz_u8(&in) % 8;
    int n = (int)(in.n / (2 * (size_t)K));
    if (n > MAX_FRAMES)
        n = MAX_FRAMES;
    int32_t *codes = malloc(((size_t)n * K + 1) * sizeof(int32_t));
    if (!codes)
        abort();
    for (int i = 0; i < n * K; i++)
        codes[i] = (int32_t)(fuzz_u16(&in) % (uint32_t)(V + 16)) - 8;

    /* the feedback embedding, frame by frame */
    for (int f = 0; f < n; f++) {
        const int32_t *c = codes + (size_t)f * K;
        bool valid = true;
        for (int k = 0; k < K; k++)
            valid &= c[k] >= 0 && c[k] < V;
        const int r = lfm2_audio_head_embed(head, c, embd);
        FUZZ_ASSERT((r == 0) == valid, "embed of frame %d returned %d (valid %d)", f, r, valid);
        if (r != 0) {
            fuzz_check_error("lfm2_audio_head_embed", "codebook");
            continue;
        }
        for (int i = 0; i < hp->n_embd; i++)
            FUZZ_ASSERT(isfinite(embd[i]), "embedding value %d of frame %d is %g", i, f, embd[i]);
    }

    /* the decoder, per_push frames at a time; a refused push decodes nothing */
    int64_t got = 0, decoded = 0;
    for (int f = 0; f < n; f += per_push) {
        const int m = f + per_push <= n ? per_push : n - f;
        int bad = -1;
        for (int i = 0; i < m * K && bad < 0; i++) {
            const int32_t c = codes[(size_t)f * K + i];
            if (c < 0 || c >= hp->eoa)
                bad = i;
        }
        const int w = lfm2_audio_decoder_push(dec, codes + (size_t)f * K, m, out,
                                              (size_t)LFM2_AUDIO_FRAME_SAMPLES * (MAX_FRAMES + 1));
        if (bad >= 0) {
            FUZZ_ASSERT(w == -1, "push of frames with code %d accepted", codes[(size_t)f * K + bad]);
            fuzz_check_error("lfm2_audio_decoder_push", "codebook");
            fuzz_check_error("lfm2_audio_decoder_push", "frame");
            continue;
        }
        FUZZ_ASSERT(w >= 0, "push failed: %s", lfm2_last_error());
        for (int i = 0; i < w; i++)
            FUZZ_ASSERT(isfinite(out[i]), "sample %d is %g", i, out[i]);
        got += w;
        decoded += m;
    }
    const int w = lfm2_audio_decoder_flush(dec, out, (size_t)LFM2_AUDIO_FRAME_SAMPLES * (MAX_FRAMES + 1));
    FUZZ_ASSERT(w >= 0, "flush failed: %s", lfm2_last_error());
    for (int i = 0; i < w; i++)
        FUZZ_ASSERT(isfinite(out[i]), "flushed sample %d is %g", i, out[i]);
    got += w;
    FUZZ_ASSERT(got == decoded * LFM2_AUDIO_FRAME_SAMPLES, "%lld samples for %lld frames",
                (long long)got, (long long)decoded);
    free(codes);
    return 0;
}
