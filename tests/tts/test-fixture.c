/* test-fixture — every array of the shared TTS fixture (tests/data/tts, a float64 numpy
 * reference on tiny random files in the published layout) against the library:
 *   hidden states → greedy codes (exact), depth logits of row 0, the end-of-audio rule, the
 *   feedback embedding, the detokenizer's input and output rows, the ISTFT alone, the
 *   waveform streamed frame by frame and in one batch, the PCM16 WAV.
 * Tolerances come from ref.json: tier "f32" (default: float32 activations) or, with the
 * argument "ggml", tier "ggml" for --ggml-rounding (half-precision activations). */
#include <json-glib/json-glib.h>
#include <unistd.h>

#include "ttest.h"

static JsonObject *g_tol, *g_tier;

static double tol(const char *key)
{
    JsonObject *o = json_object_has_member(g_tier, key) ? g_tier : g_tol;
    return json_object_get_double_member(o, key);
}

static void test_codes(bool ggml)
{
    size_t n_h, n_c, n_fed, n_feed, n_lg;
    float *hidden = tt_floats("hidden.f32", &n_h);
    int32_t *greedy = tt_ints("codes_greedy.i32", &n_c);
    int32_t *fed = tt_ints("codes_fed.i32", &n_fed);
    float *feed = tt_floats("feed_embd.f32", &n_feed);
    float *lg0 = tt_floats("dbg_depth_logits_row0.f32", &n_lg);
    lfm2_vocoder *v = tt_vocoder(ggml);
    const struct lfm2_vocoder_hparams *hp = lfm2_vocoder_get_hparams(v);
    CHECK_INT(hp->n_embd, 64, "H");
    CHECK_INT(hp->n_depth_embd, 64, "D");
    CHECK_INT(hp->n_layer, 2, "L");
    CHECK_INT(hp->head_dim, 16, "head_dim");
    CHECK_INT(hp->n_head, 4, "n_head");
    CHECK_INT(hp->n_head_kv, 2, "n_head_kv");
    CHECK_INT(hp->n_ff, 256, "ff");
    CHECK_INT(hp->n_codebooks, 8, "K");
    CHECK_INT(hp->n_codes, 2049, "V");
    CHECK_INT(hp->eoa, 2048, "end code");
    CHECK_INT(hp->n_code_embd, 32, "d");
    const int K = hp->n_codebooks, H = hp->n_embd, V = hp->n_codes;
    const size_t rows = n_h / H;
    CHECK(rows == 24 && n_c == rows * K && n_fed == n_c && n_feed == rows * H && n_lg == (size_t)K * V,
          "fixture sizes");

    struct lfm2_audio_head_params hpar = lfm2_audio_head_default_params();
    hpar.temperature = 0.0f;
    hpar.n_threads = 2;
    lfm2_audio_head *head = lfm2_audio_head_new(v, hpar);
    CHECK(head, "head: %s", lfm2_last_error());
    int32_t codes[8];
    float *e = malloc((size_t)H * sizeof *e);
    int rows_equal = 0;
    for (size_t r = 0; r < rows && head; r++) {
        CHECK(lfm2_audio_head_sample(head, hidden + r * H, codes) == 0, "sample: %s", lfm2_last_error());
        rows_equal += !memcmp(codes, greedy + r * K, sizeof codes);
        if (memcmp(codes, greedy + r * K, sizeof codes))
            fprintf(stderr, "row %zu: got %d %d %d … expected %d %d %d …\n", r, codes[0], codes[1],
                    codes[2], greedy[r * K], greedy[r * K + 1], greedy[r * K + 2]);
        if (r == 0) {
            double d = 0;
            for (int k = 0; k < K; k++) {
                const double dk = tt_maxdiff(lfm2_audio_head_logits(head, k), lg0 + (size_t)k * V, V);
                d = dk > d ? dk : d;
            }
            printf("depth logits of row 0: max |d| %.3g (tolerance %.3g)\n", d, tol("depth_logits_abs"));
            CHECK(d <= tol("depth_logits_abs"), "depth logits row 0: %.3g", d);
        }
        /* the runner's end-of-audio rule, then the embedding fed back */
        const bool end = lfm2_audio_frame_end(v, codes);
        CHECK(end == (greedy[r * K] == hp->eoa), "row %zu: end-of-audio %d", r, end);
        CHECK(!memcmp(codes, fed + r * K, sizeof codes), "row %zu: codes after the end rule", r);
        CHECK(lfm2_audio_head_embed(head, fed + r * K, e) == 0, "embed: %s", lfm2_last_error());
        const double d = tt_maxdiff(e, feed + r * H, H);
        CHECK(d <= tol("feed_embd_abs"), "row %zu: feedback embedding max |d| %.3g", r, d);
    }
    printf("greedy codes: %d of %zu rows exact\n", rows_equal, rows);
    CHECK_INT(rows_equal, rows, "rows with exact codes");
    free(e);
    lfm2_audio_head_free(head);
    lfm2_vocoder_free(v);
    free(hidden);
    free(greedy);
    free(fed);
    free(feed);
    free(lg0);
}

/* The detokenizer's input (code-embedding mean, ×6) and output rows of the first 4 frames. */
static void test_detokenizer(bool ggml)
{
    size_t n_codes, n_in, n_out;
    int32_t *codes = tt_ints("codes_long.i32", &n_codes);
    float *ref_in = tt_floats("dbg_detok_in.f32", &n_in);
    float *ref_out = tt_floats("dbg_detok_out.f32", &n_out);
    lfm2_vocoder *v = tt_vocoder(ggml);
    lfm2_audio_tokenizer *t = tt_tokenizer(ggml);
    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = 2;
    lfm2_audio_decoder *d = lfm2_audio_decoder_new(v, t, dp);
    CHECK(d, "decoder: %s", lfm2_last_error());
    CHECK(n_in == 24 * 32 && n_out == 24 * 1282, "fixture sizes");
    float *in = calloc(n_in, sizeof *in), *out = calloc(n_out, sizeof *out);
    CHECK(d && lfm2_audio_decoder_spectra(d, codes, 4, in, out) == 0, "spectra: %s", lfm2_last_error());
    const double di = tt_maxdiff(in, ref_in, n_in), dout = tt_maxdiff(out, ref_out, n_out);
    printf("detokenizer input rows: max |d| %.3g; output rows: max |d| %.3g (tolerance %.3g)\n", di,
           dout, tol("detok_out_abs"));
    CHECK(di <= tol("feed_embd_abs"), "detokenizer input max |d| %.3g", di);
    CHECK(dout <= tol("detok_out_abs"), "detokenizer output max |d| %.3g", dout);
    free(in);
    free(out);
    lfm2_audio_decoder_free(d);
    lfm2_audio_tokenizer_free(t);
    lfm2_vocoder_free(v);
    free(codes);
    free(ref_in);
    free(ref_out);
}

/* The ISTFT alone, on the fixture's own spectra: counts of the stream and the samples. */
static void test_istft(void)
{
    size_t n_spec, n_ref;
    float *spec = tt_floats("dbg_detok_out.f32", &n_spec);
    float *ref = tt_floats("dbg_istft_out.f32", &n_ref);
    lfm2_istft *s = lfm2_istft_new();
    CHECK(s, "istft: %s", lfm2_last_error());
    float *y = calloc(n_ref + 1280, sizeof *y);
    size_t m = 0;
    for (int r = 0; r < 24 && s; r++) {
        const int k = lfm2_istft_push(s, spec + (size_t)r * 1282, spec + (size_t)r * 1282 + 641, y + m);
        CHECK_INT(k, r == 0 ? 0 : r == 1 ? 160 : 320, "samples of one spectrum");
        m += (size_t)k;
    }
    CHECK_INT(m, 24 * 320 - 480, "samples before the flush (llama.cpp's stream)");
    const int tail = s ? lfm2_istft_flush(s, y + m) : 0;
    CHECK_INT(tail, 480, "flushed samples");
    m += (size_t)tail;
    CHECK_INT(m, n_ref, "ISTFT samples");
    const double d = tt_maxdiff(y, ref, n_ref);
    printf("ISTFT alone: max |d| %.3g (tolerance %.3g)\n", d, tol("istft_abs"));
    CHECK(d <= tol("istft_abs"), "ISTFT max |d| %.3g", d);
    CHECK_INT(s ? lfm2_istft_flush(s, y) : -1, 0, "a flush with nothing pushed");
    lfm2_istft_free(s);
    free(y);
    free(spec);
    free(ref);
}

/* Codes → waveform streamed frame by frame, and pushed in one batch; the PCM16 file. */
static void test_waveform(bool ggml)
{
    size_t n_codes, n_ref;
    int32_t *codes = tt_ints("codes_long.i32", &n_codes);
    float *ref = tt_floats("wave_long.f32", &n_ref);
    const int n = (int)(n_codes / 8);
    CHECK(n == 40 && n_ref == 40 * 1920, "fixture sizes");
    lfm2_vocoder *v = tt_vocoder(ggml);
    lfm2_audio_tokenizer *t = tt_tokenizer(ggml);
    float *stream = calloc(n_ref, sizeof *stream), *whole = calloc(n_ref, sizeof *whole);
    size_t ms = 0, mw = 0;

    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = 2;
    dp.max_frames = 1;
    lfm2_audio_decoder *d = lfm2_audio_decoder_new(v, t, dp);
    CHECK(d, "decoder: %s", lfm2_last_error());
    for (int f = 0; f < n && d; f++) {
        const int k = lfm2_audio_decoder_push(d, codes + (size_t)f * 8, 1, stream + ms, n_ref - ms);
        CHECK_INT(k, f == 0 ? 1440 : 1920, "samples of one frame");
        ms += (size_t)(k > 0 ? k : 0);
    }
    CHECK_INT(ms, 76320, "samples without the flush (llama.cpp's stream)");
    ms += (size_t)(d ? lfm2_audio_decoder_flush(d, stream + ms, n_ref - ms) : 0);
    CHECK_INT(ms, n_ref, "samples of the stream");
    lfm2_audio_decoder_free(d);

    dp.max_frames = 40;
    d = lfm2_audio_decoder_new(v, t, dp);
    const int k = d ? lfm2_audio_decoder_push(d, codes, n, whole, n_ref) : -1;
    CHECK_INT(k, 76320, "samples of one push of 40 frames");
    mw = (size_t)(k > 0 ? k : 0);
    mw += (size_t)(d ? lfm2_audio_decoder_flush(d, whole + mw, n_ref - mw) : 0);
    CHECK_INT(mw, n_ref, "samples of the batch");
    /* after the flush the decoder starts a new utterance: the same codes give the same audio */
    const int k2 = d ? lfm2_audio_decoder_push(d, codes, 2, whole + 0, n_ref) : -1;
    CHECK_INT(k2, 1440 + 1920, "samples after a flush (reset)");
    CHECK(k2 < 0 || tt_maxdiff(whole, stream, (size_t)k2) == 0.0, "a new utterance after flush");
    lfm2_audio_decoder_free(d);

    d = lfm2_audio_decoder_new(v, t, dp);   /* the batch again, for the comparison above */
    mw = (size_t)(d ? lfm2_audio_decoder_push(d, codes, n, whole, n_ref) : 0);
    mw += (size_t)(d ? lfm2_audio_decoder_flush(d, whole + mw, n_ref - mw) : 0);
    lfm2_audio_decoder_free(d);

    const double dw = tt_maxdiff(stream, ref, n_ref), dsw = tt_maxdiff(stream, whole, n_ref);
    printf("waveform: stream max |d| %.3g (tolerance %.3g); stream vs one batch max |d| %.3g\n", dw,
           tol("wave_abs"), dsw);
    CHECK(dw <= tol("wave_abs"), "waveform max |d| %.3g", dw);
    CHECK(dsw == 0.0, "stream vs batch %.3g (the same products in another batching)", dsw);

    /* PCM16: the header byte for byte, the samples within the tier's LSB */
    char path[] = "/tmp/lfm2-tts-XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0, "temporary file");
    if (fd >= 0) {
        close(fd);
        CHECK(lfm2_audio_write_wav(path, stream, ms) == 0, "wav: %s", lfm2_last_error());
        size_t la, lb;
        uint8_t *a = tt_read(path, &la), *b = tt_read(tt_data("wave_long.wav"), &lb);
        CHECK(la == lb && !memcmp(a, b, 44), "WAV size and header");
        int worst = 0;
        for (size_t i = 44; i + 1 < la && i + 1 < lb; i += 2) {
            const int x = (int16_t)(a[i] | a[i + 1] << 8), y = (int16_t)(b[i] | b[i + 1] << 8);
            worst = abs(x - y) > worst ? abs(x - y) : worst;
        }
        printf("PCM16: max %d LSB (tolerance %g)\n", worst, tol("wav_lsb"));
        CHECK(worst <= tol("wav_lsb"), "PCM16 %d LSB", worst);
        unlink(path);
        free(a);
        free(b);
    }
    free(stream);
    free(whole);
    free(codes);
    free(ref);
    lfm2_audio_tokenizer_free(t);
    lfm2_vocoder_free(v);
}

int main(int argc, char **argv)
{
    const bool ggml = argc > 1 && !strcmp(argv[1], "ggml");
    JsonParser *jp = json_parser_new();
    GError *err = NULL;
    if (!json_parser_load_from_file(jp, tt_data("ref.json"), &err)) {
        fprintf(stderr, "ref.json: %s\n", err->message);
        return 1;
    }
    g_tol = json_object_get_object_member(json_node_get_object(json_parser_get_root(jp)), "tolerance");
    g_tier = json_object_get_object_member(g_tol, ggml ? "ggml" : "f32");
    printf("tier %s\n", ggml ? "ggml (--ggml-rounding)" : "f32");
    test_codes(ggml);
    test_detokenizer(ggml);
    test_istft();
    test_waveform(ggml);
    g_object_unref(jp);
    return lfm2_test_status();
}
