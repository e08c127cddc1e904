/* test-parity.c — LFM2-Audio input parity with llama.cpp's mtmd (fixtures in tests/data/audio,
 * made with llama.cpp b10257 on tiny random lfm2a mmproj files; tolerances from their README),
 * for EVERY clip, in LLAMACPP mode:
 *   - the WAV reads as q/32768 exactly; frame and token counts exact (meta.json);
 *   - mel.npy                                   ≤ 2e-3 abs
 *   - encoder + adapter from mtmd's mel, F32     ≤ 1e-5 abs (conv.0 rounded to F16 like mtmd)
 *   - end to end from the WAV, F32               ≤ 3e-3 abs
 *   - F16 mmproj, from the mel and from the WAV  ≤ 5e-3 abs
 *   - the prompt ids around the audio equal mtmd's chunks (tiny text model = tests/data/text/tiny-f32);
 *   - a Q8_0 mmproj from `lfm2 mkmodel`, run through mtmd: from its mel ≤ 1e-5 abs.
 */
#include <json-glib/json-glib.h>
#include <limits.h>

#include "atest.h"
#include "lfm2-audio.h"

static const char *const clips[] = { "sine440_1s", "chirp_2.5s", "noise_3s", "silence_0.5s",
                                     "speech_4s", "speech_long_35s" };

#define MEL_TOL 2e-3
#define ENC_TOL 1e-5
#define E2E_TOL 3e-3
#define F16_TOL 5e-3

/* The WAV's samples as mtmd's loader reads them: q / 32768 (44-byte canonical header). */
static float *wav_direct(const char *path, int64_t *n)
{
    size_t len;
    uint8_t *b = at_read(path, &len);
    if (!b || len < 44) {
        free(b);
        return NULL;
    }
    *n = (int64_t)(len - 44) / 2;
    float *x = malloc(sizeof *x * (size_t)*n);
    for (int64_t i = 0; i < *n; i++)
        x[i] = (float)(int16_t)(b[44 + 2 * i] | b[45 + 2 * i] << 8) / 32768.0f;
    free(b);
    return x;
}

static void check_ids(const char *what, JsonArray *want, const lfm2_token *got, int32_t n)
{
    const guint m = json_array_get_length(want);
    bool same = (guint)n == m;
    for (guint i = 0; same && i < m; i++)
        same = got[i] == (lfm2_token)json_array_get_int_element(want, i);
    CHECK(same, "%s: %d ids differ from mtmd's %u", what, n, m);
}

static void test_clip(lfm2_audio *a32, lfm2_audio *a16, const lfm2_model *text, const char *clip)
{
    printf("%s\n", clip);
    JsonParser *jp = json_parser_new();
    GError *err = NULL;
    if (!json_parser_load_from_file(jp, at_data("ref/%s/meta.json", clip), &err)) {
        CHECK(0, "%s: %s", clip, err->message);
        g_error_free(err);
        g_object_unref(jp);
        return;
    }
    JsonObject *meta = json_node_get_object(json_parser_get_root(jp));
    const int64_t want_n = json_object_get_int_member(meta, "n_samples");
    const int64_t want_T = json_object_get_int_member(meta, "n_frames");
    const int64_t want_tok = json_object_get_int_member(meta, "n_audio_tokens");
    const int E = lfm2_audio_n_embd_out(a32);

    /* samples: the decoder gives exactly what mtmd's WAV reader gives */
    float *pcm = NULL, *direct = NULL;
    int64_t n = 0, nd = 0;
    struct lfm2_audio_file_info info;
    CHECK(lfm2_audio_load_file(at_data("wav/%s.wav", clip), &pcm, &n, &info) == 0, "%s",
          lfm2_last_error());
    direct = wav_direct(at_data("wav/%s.wav", clip), &nd);
    CHECK_INT(n, want_n, "samples");
    CHECK(info.rate == 16000 && info.channels == 1, "%s: %d Hz, %d channels", clip, info.rate, info.channels);
    CHECK(pcm && direct && nd == n && memcmp(pcm, direct, sizeof(float) * (size_t)n) == 0,
          "%s: decoded samples are not q/32768", clip);
    CHECK_INT(lfm2_audio_n_frames(n), want_T, "frames");
    CHECK_INT(lfm2_audio_n_tokens(n), want_tok, "tokens");

    struct npy mel, e32, e16;
    if (!npy_load(at_data("ref/%s/mel.npy", clip), &mel) ||
        !npy_load(at_data("ref/%s/audio_embd.npy", clip), &e32) ||
        !npy_load(at_data("ref/%s/audio_embd_f16mmproj.npy", clip), &e16)) {
        CHECK(0, "%s: fixture arrays unreadable", clip);
        goto out;
    }
    CHECK(mel.n_dims == 2 && mel.shape[0] == 128 && mel.shape[1] == want_T, "%s: mel.npy shape", clip);
    CHECK(e32.n_dims == 2 && e32.shape[0] == want_tok && e32.shape[1] == E, "%s: audio_embd shape", clip);
    if (lfm2_test_failures)
        goto out;

    /* mel */
    float *m = malloc(sizeof(float) * 128 * (size_t)want_T);
    CHECK(lfm2_audio_mel(a32, pcm, n, m, want_T) == want_T, "%s", lfm2_last_error());
    at_compare("mel (llamacpp) vs mtmd", m, want_T, mel.data, want_T, 128, want_T, MEL_TOL);
    for (int b = 0; b < 128; b++)
        CHECK(m[b * want_T + want_T - 1] == 0.0f, "%s: last frame of bin %d is not 0", clip, b);

    /* encoder from mtmd's mel, and end to end */
    const size_t cap = (size_t)want_tok * E;
    float *got = malloc(sizeof(float) * cap);
    CHECK(lfm2_audio_encode_mel(a32, mel.data, want_T, want_T, got, cap) == want_tok, "%s", lfm2_last_error());
    at_compare("F32 mmproj, encoder from mtmd's mel", got, E, e32.data, E, want_tok, E, ENC_TOL);
    CHECK(lfm2_audio_encode(a32, pcm, n, got, cap) == want_tok, "%s", lfm2_last_error());
    at_compare("F32 mmproj, end to end from the WAV", got, E, e32.data, E, want_tok, E, E2E_TOL);
    CHECK(lfm2_audio_encode_mel(a16, mel.data, want_T, want_T, got, cap) == want_tok, "%s", lfm2_last_error());
    at_compare("F16 mmproj, encoder from mtmd's mel", got, E, e16.data, E, want_tok, E, F16_TOL);
    CHECK(lfm2_audio_encode(a16, pcm, n, got, cap) == want_tok, "%s", lfm2_last_error());
    at_compare("F16 mmproj, end to end from the WAV", got, E, e16.data, E, want_tok, E, F16_TOL);
    const struct lfm2_audio_timings tm = lfm2_audio_last_timings(a16);
    CHECK(tm.n_frames == want_T && tm.n_tokens == want_tok && tm.n_samples == n,
          "%s: timings count %lld frames %lld tokens", clip, (long long)tm.n_frames, (long long)tm.n_tokens);
    free(got);
    free(m);

    /* the prompt around the audio: mtmd's text chunks */
    JsonArray *chunks = json_object_get_array_member(meta, "chunks");
    lfm2_token ids[256];
    int32_t k = lfm2_audio_prompt_prefix(text, NULL, ids, 256);
    check_ids("prompt prefix", json_object_get_array_member(json_array_get_object_element(chunks, 0), "tokens"), ids, k);
    JsonObject *ach = json_array_get_object_element(chunks, 1);
    CHECK(!strcmp(json_object_get_string_member(ach, "type"), "audio") &&
              json_object_get_int_member(ach, "n_tokens") == want_tok,
          "%s: mtmd's audio chunk", clip);
    k = lfm2_audio_prompt_suffix(text, ids, 256);
    check_ids("prompt suffix", json_object_get_array_member(json_array_get_object_element(chunks, 2), "tokens"), ids, k);
out:
    free(mel.data);
    free(e32.data);
    free(e16.data);
    free(pcm);
    free(direct);
    g_object_unref(jp);
}

/* The model generator's Q8_0 mmproj (tests/data/audio/mkmodel-q8_0, regenerated by test-cli),
 * run through mtmd by the project: the same file loads in llama.cpp, and from mtmd's mel our
 * encoder reproduces its Q8_0 products (activations quantized like ggml's) within the F32
 * encoder tolerance. End to end it is not compared: Q8_0 activations turn the front-ends'
 * float-FFT noise (~1e-4 in the mel) into ~1e-2 moves of the embeddings. */
static void test_mkmodel_q8(void)
{
    static const char *const q8clips[] = { "speech_4s", "chirp_2.5s" };
    struct lfm2_audio_params p = lfm2_audio_default_params();
    p.frontend = LFM2_AUDIO_FRONTEND_LLAMACPP;
    p.n_threads = 2;
    lfm2_audio *a = lfm2_audio_load(at_data("mkmodel-q8_0/mmproj-audio-tiny-q8_0.gguf"), p);
    CHECK(a != NULL, "%s", lfm2_last_error());
    if (!a)
        return;
    printf("%s\n", lfm2_audio_desc(a));
    for (size_t i = 0; i < 2; i++) {
        struct npy mel, ref;
        CHECK(npy_load(at_data("mkmodel-q8_0/%s/mel.npy", q8clips[i]), &mel) &&
                  npy_load(at_data("mkmodel-q8_0/%s/audio_embd.npy", q8clips[i]), &ref),
              "%s arrays", q8clips[i]);
        if (!mel.data || !ref.data)
            continue;
        const int64_t T = mel.shape[1], nt = ref.shape[0], E = ref.shape[1];
        float *got = malloc(sizeof(float) * (size_t)(nt * E));
        CHECK(lfm2_audio_encode_mel(a, mel.data, T, T, got, (size_t)(nt * E)) == nt, "%s", lfm2_last_error());
        char what[96];
        snprintf(what, sizeof what, "Q8_0 mmproj (mkmodel), %s, from mtmd's mel", q8clips[i]);
        at_compare(what, got, E, ref.data, E, nt, E, ENC_TOL);
        free(got);
        free(mel.data);
        free(ref.data);
    }
    lfm2_audio_free(a);
}

/* usage: test-audio-parity [scalar|avx2|avx512|auto]   (exit 77 = path not available here) */
/* The abort callback: asked after the front-end and before each layer; stopping at any of
 * those returns LFM2_AUDIO_ENCODE_ABORTED, and the next encode gives the full result again. */
struct stopper {
    int calls, stop_at;
};

static bool stop_cb(void *data)
{
    struct stopper *s = data;
    return s->calls++ == s->stop_at;
}

static void test_abort(lfm2_audio *a)
{
    printf("abort callback\n");
    float *pcm = NULL;
    int64_t n = 0;
    struct lfm2_audio_file_info info;
    CHECK(lfm2_audio_load_file(at_data("wav/speech_4s.wav"), &pcm, &n, &info) == 0, "%s",
          lfm2_last_error());
    if (!pcm)
        return;
    const int64_t nt = lfm2_audio_n_tokens(n);
    const size_t cap = (size_t)(nt * lfm2_audio_n_embd_out(a));
    float *ref = malloc(sizeof(float) * cap), *got = malloc(sizeof(float) * cap);
    CHECK(lfm2_audio_encode(a, pcm, n, ref, cap) == nt, "%s", lfm2_last_error());
    const int n_checks = lfm2_audio_get_hparams(a)->n_layer + 1;
    struct stopper st = { 0, -1 };
    lfm2_audio_set_abort_callback(a, stop_cb, &st);
    CHECK(lfm2_audio_encode(a, pcm, n, got, cap) == nt && st.calls == n_checks &&
          memcmp(got, ref, sizeof(float) * cap) == 0,
          "a callback that never stops: %d calls (want %d) or other numbers", st.calls, n_checks);
    for (int k = 0; k < n_checks; k++) {
        st = (struct stopper){ 0, k };
        lfm2_audio_set_abort_callback(a, stop_cb, &st);
        const int64_t r = lfm2_audio_encode(a, pcm, n, got, cap);
        CHECK(r == LFM2_AUDIO_ENCODE_ABORTED && st.calls == k + 1,
              "stop at check %d: returned %lld after %d calls", k, (long long)r, st.calls);
        lfm2_audio_set_abort_callback(a, NULL, NULL);
        memset(got, 0, sizeof(float) * cap);
        CHECK(lfm2_audio_encode(a, pcm, n, got, cap) == nt &&
              memcmp(got, ref, sizeof(float) * cap) == 0,
              "after a stop at check %d the next encode differs", k);
    }
    free(ref);
    free(got);
    free(pcm);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "auto";
    const enum lfm2_cpu_path cp = !strcmp(path, "scalar") ? LFM2_CPU_SCALAR
                                  : !strcmp(path, "avx2") ? LFM2_CPU_AVX2
                                  : !strcmp(path, "avx512") ? LFM2_CPU_AVX512 : LFM2_CPU_AUTO;
    if (!lfm2_set_cpu_path(cp)) {
        printf("SKIP: this CPU cannot run the %s path\n", path);
        return 77;
    }
    printf("kernel path: %s\n", lfm2_cpu_path_name(lfm2_get_cpu_path()));
    struct lfm2_audio_params p = lfm2_audio_default_params();
    p.frontend = LFM2_AUDIO_FRONTEND_LLAMACPP;
    p.n_threads = 2;
    lfm2_audio *a32 = lfm2_audio_load(at_data("lfm2a-tiny-mmproj-f32.gguf"), p);
    CHECK(a32 != NULL, "load F32: %s", lfm2_last_error());
    p.pool = a32 ? lfm2_audio_pool(a32) : NULL;
    lfm2_audio *a16 = lfm2_audio_load(at_data("lfm2a-tiny-mmproj-f16.gguf"), p);
    CHECK(a16 != NULL, "load F16: %s", lfm2_last_error());
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/text/tiny-f32/lfm2-tiny-f32.gguf", lfm2_test_data_dir());
    lfm2_model *text = lfm2_model_load(tp, lfm2_model_default_params());
    CHECK(text != NULL, "text model: %s", lfm2_last_error());
    if (!a32 || !a16 || !text)
        return lfm2_test_status();
    printf("%s\n", lfm2_audio_desc(a32));
    CHECK(lfm2_audio_check_text_model(a32, text) == 0, "%s", lfm2_last_error());
    for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++)
        test_clip(a32, a16, text, clips[i]);
    test_mkmodel_q8();
    test_abort(a16);
    lfm2_model_free(text);
    lfm2_audio_free(a16);
    lfm2_audio_free(a32);
    return lfm2_test_status();
}
