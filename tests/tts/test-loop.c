/* test-loop — the generation loops on a generated LFM2-Audio set (lfm2 mkmodel --config
 * audio-tiny: random weights shaped so that text → <|audio_start|> → frames → end of audio →
 * <|im_end|>, docs/tts.md):
 *   the event sequence of a sequential turn, sample positions, and its audio equal to vocoding
 *     its frames afterwards;
 *   the same turn written out here with the engine's public API (prompt tokenized in one
 *     piece, lfm2_decode with lfm2_batch_embd, lfm2_get_embeddings) gives the same outputs;
 *   determinism (seeds, a second turn on the same context), the limits (n_predict, context),
 *   the interleaved rhythm, a user turn with embedding rows, codes only (no tokenizer);
 *   empty, 10,000-character and non-Latin text. */
#include <unistd.h>

#include "backbone.h"
#include "cli.h"
#include "ttest.h"

static char g_dir[] = "/tmp/lfm2-tts-loop-XXXXXX";
static char g_model[600], g_voc[600], g_tok[600];
static lfm2_model *g_m;
static lfm2_vocoder *g_v;
static lfm2_audio_tokenizer *g_t;

struct turn {
    int n_events, n_text, n_frames, n_end;
    lfm2_token tokens[64];
    int32_t codes[4096 * 8];
    float *samples;
    int64_t n_samples;
    enum lfm2_tts_stop stop;
    char kinds[5000];   /* T text, A audio, E audio end, D done */
};

static lfm2_tts *new_tts(struct lfm2_tts_params p)
{
    if (p.n_threads == 0)
        p.n_threads = 2;
    lfm2_tts *t = lfm2_tts_new(g_m, g_v, p.vocode ? g_t : NULL, p);
    if (!t) {
        fprintf(stderr, "lfm2_tts_new: %s\n", lfm2_last_error());
        exit(1);
    }
    return t;
}

/* Runs the turn already begun, checking the invariants of every event. */
static void run_turn(lfm2_tts *tts, struct turn *tu)
{
    float *samples = tu->samples ? tu->samples : malloc(4096 * 1920 * sizeof(float));
    memset(tu, 0, sizeof *tu);
    tu->samples = samples;
    struct lfm2_tts_event ev;
    int r;
    while ((r = lfm2_tts_step(tts, &ev)) > 0 && tu->n_events < 4999) {
        CHECK(ev.sample_pos == tu->n_samples, "event %d: sample_pos %lld, %lld emitted", tu->n_events,
              (long long)ev.sample_pos, (long long)tu->n_samples);
        switch (ev.kind) {
        case LFM2_TTS_EVENT_TEXT:
            tu->kinds[tu->n_events] = 'T';
            if (tu->n_text < 64)
                tu->tokens[tu->n_text] = ev.token;
            tu->n_text++;
            CHECK(ev.text != NULL, "text event without text");
            break;
        case LFM2_TTS_EVENT_AUDIO:
            tu->kinds[tu->n_events] = 'A';
            CHECK_INT(ev.frame, tu->n_frames, "frame index");
            if (tu->n_frames < 4096)
                memcpy(tu->codes + (size_t)tu->n_frames * 8, ev.codes, 8 * sizeof(int32_t));
            for (int k = 0; k < 8; k++)
                CHECK(ev.codes[k] >= 0 && ev.codes[k] < 2048, "frame %d code %d", ev.frame, ev.codes[k]);
            tu->n_frames++;
            break;
        case LFM2_TTS_EVENT_AUDIO_END:
            tu->kinds[tu->n_events] = 'E';
            tu->n_end++;
            if (ev.codes)
                for (int k = 0; k < 8; k++)
                    CHECK_INT(ev.codes[k], 2048, "the end-of-audio frame");
            break;
        case LFM2_TTS_EVENT_DONE:
            tu->kinds[tu->n_events] = 'D';
            tu->stop = ev.stop;
            break;
        }
        if (ev.n_samples > 0 && tu->n_samples + ev.n_samples <= 4096 * 1920)
            memcpy(tu->samples + tu->n_samples, ev.samples, (size_t)ev.n_samples * sizeof(float));
        tu->n_samples += ev.n_samples;
        tu->n_events++;
    }
    CHECK(r == 0, "step returned %d (%s)", r, lfm2_last_error());
    CHECK(tu->n_events > 0 && tu->kinds[tu->n_events - 1] == 'D', "the turn ends with DONE");
    CHECK_INT(lfm2_tts_step(tts, &ev), 0, "a step after DONE");
}

static void test_sequential(void)
{
    struct lfm2_tts_params p = lfm2_tts_default_params();
    lfm2_tts *tts = new_tts(p);
    static struct turn a, b;
    CHECK(lfm2_tts_begin_text(tts, "Hello there.") == 0, "begin: %s", lfm2_last_error());
    run_turn(tts, &a);
    printf("sequential: %s\n", a.n_events < 80 ? a.kinds : "(long)");
    CHECK(a.kinds[0] == 'T' && a.tokens[0] == LFM2_TOKEN_AUDIO_START, "first <|audio_start|>");
    CHECK(a.n_frames > 0, "frames");
    CHECK(a.kinds[a.n_events - 2] == 'E' && a.stop == LFM2_TTS_STOP_EOG, "end of audio, then <|im_end|>");
    CHECK_INT(a.n_samples, (int64_t)a.n_frames * 1920, "1920 samples per frame");
    struct lfm2_tts_stats st;
    lfm2_tts_get_stats(tts, &st);
    CHECK(st.n_frames == a.n_frames && st.n_text == a.n_text && st.n_samples == a.n_samples &&
              st.first_audio_ms >= 0 && st.total_ms >= st.first_audio_ms,
          "stats");

    /* the turn's audio is the vocoding of its frames */
    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = 2;
    dp.max_frames = 64;
    lfm2_audio_decoder *d = lfm2_audio_decoder_new(g_v, g_t, dp);
    float *y = malloc((size_t)(a.n_frames + 1) * 1920 * sizeof *y);
    int64_t m = lfm2_audio_decoder_push(d, a.codes, a.n_frames, y, (size_t)(a.n_frames + 1) * 1920);
    m += lfm2_audio_decoder_flush(d, y + m, 1920);
    CHECK(m == a.n_samples && tt_maxdiff(y, a.samples, (size_t)m) == 0.0, "loop audio vs vocoding its frames");
    lfm2_audio_decoder_free(d);
    free(y);

    /* a second turn on the same context (system part reused) gives the same outputs */
    CHECK(lfm2_tts_begin_text(tts, "Hello there.") == 0, "begin again");
    run_turn(tts, &b);
    CHECK(a.n_frames == b.n_frames && !memcmp(a.codes, b.codes, (size_t)a.n_frames * 8 * sizeof(int32_t)) &&
              tt_maxdiff(a.samples, b.samples, (size_t)a.n_samples) == 0.0,
          "the same turn twice");

    /* another voice: another prompt, other frames; back to the first voice: the same again */
    CHECK(lfm2_tts_set_voice(tts, LFM2_TTS_VOICE_UK_MALE) == 0, "set_voice");
    lfm2_tts_begin_text(tts, "Hello there.");
    run_turn(tts, &b);
    CHECK(b.n_frames != a.n_frames || memcmp(a.codes, b.codes, (size_t)a.n_frames * 8 * sizeof(int32_t)),
          "the UK male voice gives the frames of the US female one");
    CHECK(lfm2_tts_set_system_prompt(tts, "Perform TTS. Use the US female voice.") == 0, "set_system_prompt");
    lfm2_tts_begin_text(tts, "Hello there.");
    run_turn(tts, &b);
    CHECK(a.n_frames == b.n_frames && !memcmp(a.codes, b.codes, (size_t)a.n_frames * 8 * sizeof(int32_t)),
          "the default prompt given explicitly");
    CHECK(lfm2_tts_set_voice(tts, (enum lfm2_tts_voice)7) < 0, "no voice 7");
    lfm2_tts_free(tts);

    /* another seed: other frames; codes only: the same frames without audio */
    p.seed = 1;
    tts = new_tts(p);
    lfm2_tts_begin_text(tts, "Hello there.");
    run_turn(tts, &b);
    CHECK(b.n_frames != a.n_frames || memcmp(a.codes, b.codes, (size_t)a.n_frames * 8 * sizeof(int32_t)),
          "seed 1 gives the frames of seed 0");
    lfm2_tts_free(tts);
    p.seed = 0;
    p.vocode = false;
    tts = new_tts(p);
    lfm2_tts_begin_text(tts, "Hello there.");
    run_turn(tts, &b);
    CHECK(b.n_samples == 0 && b.n_frames == a.n_frames &&
              !memcmp(a.codes, b.codes, (size_t)a.n_frames * 8 * sizeof(int32_t)),
          "codes only");
    CHECK(lfm2_tts_decoder(tts) == NULL, "no decoder without vocode");
    lfm2_tts_free(tts);
    free(a.samples);
    free(b.samples);
}

/* The sequential loop written out with the engine's public API. */
static void test_against_public_api(void)
{
    struct lfm2_tts_params p = lfm2_tts_default_params();
    p.vocode = false;
    lfm2_tts *tts = new_tts(p);
    static struct turn a;
    lfm2_tts_begin_text(tts, "Good morning.");
    run_turn(tts, &a);
    lfm2_tts_free(tts);

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.embeddings = true;
    cp.n_threads = 2;
    lfm2_context *ctx = lfm2_context_new(g_m, cp);
    struct lfm2_audio_head_params hp = lfm2_audio_head_default_params();
    hp.n_threads = 2;
    lfm2_audio_head *h = lfm2_audio_head_new(g_v, hp);
    const char *prompt = "<|im_start|>system\nPerform TTS. Use the US female voice.<|im_end|>\n"
                         "<|im_start|>user\nGood morning.<|im_end|>\n<|im_start|>assistant\n";
    lfm2_token ids[256];
    const int32_t n = lfm2_tokenize(g_m, prompt, -1, ids, 256, true, true);
    CHECK(n > 0 && lfm2_decode(ctx, lfm2_batch_tokens(ids, n)) == 0, "prompt");
    {   /* logits off: the same hidden state, no logits */
        lfm2_context *c2 = lfm2_context_new(g_m, cp);
        lfm2_set_logits(c2, false);
        CHECK(lfm2_decode(c2, lfm2_batch_tokens(ids, n)) == 0, "prompt, logits off");
        CHECK(lfm2_get_logits(c2, -1) == NULL && strstr(lfm2_last_error(), "logits off"), "logits after a decode without");
        const int E = lfm2_model_get_hparams(g_m)->n_embd;
        CHECK(tt_maxdiff(lfm2_get_embeddings(c2, -1), lfm2_get_embeddings(ctx, -1), (size_t)E) == 0.0,
              "hidden state with and without logits");
        lfm2_context_free(c2);
    }
    bool audio = false;
    int n_text = 0, n_frames = 0;
    float *e = malloc((size_t)lfm2_model_get_hparams(g_m)->n_embd * sizeof *e);
    for (int step = 0; step < 4096; step++) {
        if (!audio) {
            const float *lg = lfm2_get_logits(ctx, -1);
            lfm2_token t = 0;
            for (int i = 1; i < lfm2_model_n_vocab(g_m); i++)
                if (lg[i] > lg[t])
                    t = i;
            if (lfm2_token_is_eog(g_m, t))
                break;
            CHECK(n_text < a.n_text && a.tokens[n_text] == t, "text token %d: %d", n_text, t);
            n_text++;
            lfm2_decode(ctx, lfm2_batch_tokens(&t, 1));
            audio = t == LFM2_TOKEN_AUDIO_START;
        } else {
            int32_t c[8];
            lfm2_audio_head_sample(h, lfm2_get_embeddings(ctx, -1), c);
            const bool end = lfm2_audio_frame_end(g_v, c);
            if (!end) {
                CHECK(n_frames < a.n_frames && !memcmp(c, a.codes + (size_t)n_frames * 8, sizeof c),
                      "frame %d", n_frames);
                n_frames++;
            }
            lfm2_audio_head_embed(h, c, e);
            lfm2_decode(ctx, lfm2_batch_embd(e, 1));
            audio = !end;
        }
    }
    printf("public API: %d text tokens, %d frames (loop: %d, %d)\n", n_text, n_frames, a.n_text, a.n_frames);
    CHECK(n_text == a.n_text && n_frames == a.n_frames, "the same turn through the public API");
    free(e);
    free(a.samples);
    lfm2_audio_head_free(h);
    lfm2_context_free(ctx);
}

static void test_limits_and_modes(void)
{
    static struct turn a;
    struct lfm2_tts_params p = lfm2_tts_default_params();
    p.n_predict = 5;
    lfm2_tts *tts = new_tts(p);
    lfm2_tts_begin_text(tts, "Hello there.");
    const int32_t used = lfm2_n_past(lfm2_tts_context(tts));   /* the prompt */
    run_turn(tts, &a);
    CHECK(!strcmp(a.kinds, "TAAAAED") && a.stop == LFM2_TTS_STOP_LIMIT && a.n_samples == 4 * 1920,
          "n_predict 5: %s", a.kinds);
    lfm2_tts_free(tts);
    /* a full context: the prompt plus 8 positions (the 9th output cannot be fed) */
    p.n_predict = -1;
    p.n_ctx = used + 8;
    tts = new_tts(p);
    lfm2_tts_begin_text(tts, "Hello there.");
    run_turn(tts, &a);
    CHECK(a.stop == LFM2_TTS_STOP_CONTEXT && a.n_frames == 8 && a.kinds[a.n_events - 2] == 'E',
          "full context: %s", a.kinds);
    lfm2_tts_free(tts);

    /* interleaved: 6 text tokens, 12 frames, then <|im_end|> after audio input */
    p = lfm2_tts_default_params();
    p.mode = LFM2_TTS_INTERLEAVED;
    tts = new_tts(p);
    lfm2_tts_begin_text(tts, "How are you?");
    run_turn(tts, &a);
    printf("interleaved: %s\n", a.kinds);
    CHECK(!strcmp(a.kinds, "TTTTTTAAAAAAAAAAAAED") && a.stop == LFM2_TTS_STOP_EOG, "interleaved rhythm");
    lfm2_tts_free(tts);

    /* a user turn with embedding rows: 3 rows take 3 positions */
    p = lfm2_tts_default_params();
    p.n_predict = 2;
    tts = new_tts(p);
    const int E = lfm2_model_get_hparams(g_m)->n_embd;
    float *rows = calloc((size_t)3 * E, sizeof *rows);
    for (int i = 0; i < 3 * E; i++)
        rows[i] = 0.01f * (float)(i % 17);
    struct lfm2_tts_part parts[3] = { { .text = "Translate:" }, { .embd = rows, .n_embd_rows = 3 }, { .text = " now" } };
    CHECK(lfm2_tts_begin(tts, parts, 3) == 0, "begin with embeddings: %s", lfm2_last_error());
    const int32_t with = lfm2_n_past(lfm2_tts_context(tts));
    run_turn(tts, &a);
    CHECK(lfm2_tts_begin(tts, (struct lfm2_tts_part[]){ parts[0], parts[2] }, 2) == 0, "begin without");
    const int32_t without = lfm2_n_past(lfm2_tts_context(tts));
    CHECK_INT(with - without, 3, "positions of 3 embedding rows");
    struct lfm2_tts_part bad = { .text = "x", .embd = rows, .n_embd_rows = 1 };
    CHECK(lfm2_tts_begin(tts, &bad, 1) < 0, "a part with text and embeddings");
    CHECK_INT(lfm2_tts_step(tts, &(struct lfm2_tts_event){ 0 }), 0, "no turn after a failed begin");
    free(rows);
    lfm2_tts_free(tts);
    free(a.samples);
}

static void test_texts(void)
{
    static struct turn a;
    struct lfm2_tts_params p = lfm2_tts_default_params();
    p.n_predict = 6;
    lfm2_tts *tts = new_tts(p);
    CHECK(lfm2_tts_begin_text(tts, "") == 0, "empty text: %s", lfm2_last_error());
    run_turn(tts, &a);
    CHECK(lfm2_tts_begin_text(tts, "Привет, мир! 你好，世界。 こんにちは 🎉 Ωμέγα") == 0, "non-Latin: %s",
          lfm2_last_error());
    run_turn(tts, &a);
    CHECK(a.n_frames == 5, "non-Latin text speaks");
    char *long_text = malloc(10001);
    for (int i = 0; i < 10000; i++)
        long_text[i] = "The quick brown fox jumps over the lazy dog. "[i % 45];
    long_text[10000] = '\0';
    const int r = lfm2_tts_begin_text(tts, long_text);
    CHECK(r == 0 || strstr(lfm2_last_error(), "does not fit"), "10,000 characters: %s", lfm2_last_error());
    if (r == 0)
        run_turn(tts, &a);
    lfm2_tts_free(tts);
    p.n_ctx = 16384;
    tts = new_tts(p);
    CHECK(lfm2_tts_begin_text(tts, long_text) == 0, "10,000 characters in a 16384 context: %s", lfm2_last_error());
    run_turn(tts, &a);
    CHECK(a.n_frames == 5, "long text speaks");
    lfm2_tts_free(tts);
    free(long_text);
    free(a.samples);
}

int main(void)
{
    if (!mkdtemp(g_dir))
        return 1;
    snprintf(g_model, sizeof g_model, "%s/audio-tiny.gguf", g_dir);
    snprintf(g_voc, sizeof g_voc, "%s/vocoder.gguf", g_dir);
    snprintf(g_tok, sizeof g_tok, "%s/tokenizer.gguf", g_dir);
    char *args[] = { "mkmodel", "--config", "audio-tiny", "--type", "q8_0", "-o", g_model, "--vocoder-out",
                     g_voc, "--tokenizer-out", g_tok, "--threads", "2" };
    if (cmd_mkmodel(13, args) != 0)
        return 1;
    g_m = lfm2_model_load(g_model, lfm2_model_default_params());
    g_v = lfm2_vocoder_load(g_voc, lfm2_vocoder_default_params());
    g_t = lfm2_audio_tokenizer_load(g_tok, lfm2_audio_tokenizer_default_params());
    if (!g_m || !g_v || !g_t) {
        fprintf(stderr, "%s\n", lfm2_last_error());
        return 1;
    }
    CHECK(lfm2_token_lookup(g_m, "<|audio_start|>") == 128 && lfm2_token_lookup(g_m, "<|text_end|>") == 130,
          "audio tokens of the generated backbone");
    test_sequential();
    test_against_public_api();
    test_limits_and_modes();
    test_texts();
    lfm2_audio_tokenizer_free(g_t);
    lfm2_vocoder_free(g_v);
    lfm2_model_free(g_m);
    unlink(g_model);
    unlink(g_voc);
    unlink(g_tok);
    rmdir(g_dir);
    return lfm2_test_status();
}
