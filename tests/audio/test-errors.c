/* test-errors.c — bad mmproj files and bad audio through the encoder:
 *   - the fixture mmproj truncated at every region (header, keys, tensor infos, data) and with
 *     bytes flipped: a clear error naming the file, never a crash;
 *   - a text model, a vision mmproj, another audio projector, a missing tensor, a wrong shape,
 *     a missing key, the wrong mel-bin count: errors naming the file and the key or tensor;
 *   - LLAMACPP mode: a.position_embd required, mtmd's length limit; a text model of another width;
 *   - audio: 0 samples (error), NaN/Inf, silence, hard-clipped speech, one sample — finite
 *     embeddings of the right count. */
#include <glib.h>
#include <glib/gstdio.h>

#include "atest.h"
#include "lfm2-audio.h"
#include "lfm2-gguf.h"


static lfm2_audio *load(const char *path, enum lfm2_audio_frontend fe)
{
    struct lfm2_audio_params p = lfm2_audio_default_params();
    p.frontend = fe;
    p.n_threads = 1;
    return lfm2_audio_load(path, p);
}

/* Expects the load to fail with an error containing every needle. */
static void expect_fail(const char *what, const char *path, enum lfm2_audio_frontend fe,
                        const char *n1, const char *n2)
{
    lfm2_audio *a = load(path, fe);
    const char *e = lfm2_last_error();
    CHECK(!a, "%s: loaded", what);
    CHECK(strstr(e, path) != NULL || strstr(e, strrchr(path, '/') + 1) != NULL,
          "%s: error does not name the file: %s", what, e);
    CHECK(!n1 || strstr(e, n1), "%s: error lacks '%s': %s", what, n1, e);
    CHECK(!n2 || strstr(e, n2), "%s: error lacks '%s': %s", what, n2, e);
    if (getenv("VERBOSE"))
        printf("  %s: %s\n", what, e);
    lfm2_audio_free(a);
}

/* Copies the fixture mmproj with one change: a tensor dropped or renamed, a tensor's shape
 * changed, a key dropped or changed. Keys are the fixture's (listed here). */
struct edit {
    const char *drop_tensor, *rename_from, *rename_to, *reshape, *drop_key, *proj, *has_audio;
    int64_t reshape_ne1;
    int n_mel;
};

static void rewrite(const char *dst, const struct edit *e)
{
    lfm2_gguf *g = lfm2_gguf_open(at_data("lfm2a-tiny-mmproj-f32.gguf"), true);
    CHECK(g != NULL, "%s", lfm2_last_error());
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    lfm2_gguf_set_str(w, "general.architecture", "clip");
    lfm2_gguf_set_str(w, "general.type", "mmproj");
    lfm2_gguf_set_bool(w, "clip.has_vision_encoder", false);
    lfm2_gguf_set_bool(w, "clip.has_audio_encoder", !(e->has_audio && !strcmp(e->has_audio, "false")));
    if (!e->drop_key || strcmp(e->drop_key, "clip.projector_type"))
        lfm2_gguf_set_str(w, "clip.projector_type", e->proj ? e->proj : "lfm2a");
    struct { const char *k; uint32_t v; } u[] = {
        { "clip.audio.embedding_length", 64 }, { "clip.audio.feed_forward_length", 64 },
        { "clip.audio.block_count", 2 },       { "clip.audio.attention.head_count", 4 },
        { "clip.audio.projection_dim", 128 },  { "clip.audio.num_mel_bins", (uint32_t)(e->n_mel ? e->n_mel : 128) },
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!e->drop_key || strcmp(e->drop_key, u[i].k))
            lfm2_gguf_set_u32(w, u[i].k, u[i].v);
    lfm2_gguf_set_f32(w, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
            continue;
        const char *name = e->rename_from && !strcmp(t->name, e->rename_from) ? e->rename_to : t->name;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        const void *data = t->data;
        void *buf = NULL;
        if (e->reshape && !strcmp(t->name, e->reshape)) {
            ne[t->n_dims == 1 ? 0 : 1] = e->reshape_ne1;   /* vectors: their length */
            buf = calloc((size_t)(ne[0] * ne[1] * ne[2] * ne[3]), 4);
            data = buf;
        }
        lfm2_gguf_add_tensor(w, name, t->type, t->n_dims, ne, data);
        free(buf);
    }
    CHECK(lfm2_gguf_writer_write(w, dst) == 0, "%s", lfm2_last_error());
    lfm2_gguf_writer_free(w);
    lfm2_gguf_close(g);
}

static void test_files(void)
{
    printf("mmproj files\n");
    size_t len;
    uint8_t *orig = at_read(at_data("lfm2a-tiny-mmproj-f32.gguf"), &len);
    CHECK(orig && len > 600000, "fixture");
    if (!orig)
        return;

    /* truncated anywhere: header, keys, tensor infos, alignment padding, data */
    const size_t cuts[] = { 0, 3, 8, 20, 100, 400, 1500, 3000, 6000, len / 2, len - 100, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        g_file_set_contents(tmp("trunc.gguf"), (const char *)orig, (gssize)cuts[i], NULL);
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu", cuts[i]);
        expect_fail(what, tmp("trunc.gguf"), LFM2_AUDIO_FRONTEND_OFFICIAL, NULL, NULL);
    }
    /* random byte flips in the header region: an error or a successful load, never a crash */
    uint8_t *bad = malloc(len);
    uint32_t r = 7;
    int n_ok = 0;
    for (int trial = 0; trial < 40; trial++) {
        memcpy(bad, orig, len);
        for (int j = 0; j < 4; j++) {
            r = r * 1664525u + 1013904223u;
            bad[(r >> 8) % 8000] ^= (uint8_t)(1u << (r & 7));
        }
        g_file_set_contents(tmp("flip.gguf"), (const char *)bad, (gssize)len, NULL);
        lfm2_audio *a = load(tmp("flip.gguf"), LFM2_AUDIO_FRONTEND_LLAMACPP);
        if (a) {
            n_ok++;
            float pcm[4000], out[16 * 128];
            for (int i = 0; i < 4000; i++)
                pcm[i] = 0.1f * sinf(0.03f * i);
            CHECK(lfm2_audio_encode(a, pcm, 4000, out, 16 * 128) >= 0 || lfm2_last_error()[0], "encode");
        } else {
            CHECK(strstr(lfm2_last_error(), "flip.gguf") != NULL, "flipped: %s", lfm2_last_error());
        }
        lfm2_audio_free(a);
    }
    printf("  40 files with flipped header bytes: %d still load (values only), %d refused\n", n_ok, 40 - n_ok);
    free(bad);
    free(orig);

    /* not an lfm2a mmproj */
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/text/tiny-f32/lfm2-tiny-f32.gguf", lfm2_test_data_dir());
    expect_fail("a text model as mmproj", tp, LFM2_AUDIO_FRONTEND_OFFICIAL, "expected 'clip'", "text model");
    snprintf(tp, sizeof tp, "%s/vision/lfm2-vl-tiny-mmproj-f32.gguf", lfm2_test_data_dir());
    expect_fail("a vision mmproj", tp, LFM2_AUDIO_FRONTEND_OFFICIAL, "clip.has_audio_encoder", "no audio encoder");
    /* one change to the fixture file each, and what the error must say */
    static const struct {
        const char *what;
        struct edit e;
        const char *n1, *n2;
    } cases[] = {
        { "projector ultravox", { .proj = "ultravox" }, "ultravox", "lfm2a" },
        { "no projector type", { .drop_key = "clip.projector_type" }, "clip.projector_type", "missing" },
        { "no block count", { .drop_key = "clip.audio.block_count" }, "clip.audio.block_count", "missing" },
        { "80 mel bins", { .n_mel = 80 }, "num_mel_bins", "80" },
        { "missing tensor", { .drop_tensor = "a.blk.1.conv_dw.weight" }, "'a.blk.1.conv_dw.weight'", "missing" },
        { "wrong shape", { .reshape = "a.blk.0.attn_k.weight", .reshape_ne1 = 32 }, "'a.blk.0.attn_k.weight'", "shape" },
        { "bias size", { .reshape = "mm.a.mlp.1.bias", .reshape_ne1 = 100 }, "'mm.a.mlp.1.bias'", "values" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(tmp("x.gguf"), &cases[i].e);
        expect_fail(cases[i].what, tmp("x.gguf"), LFM2_AUDIO_FRONTEND_OFFICIAL, cases[i].n1, cases[i].n2);
    }

    /* a.position_embd: only llama.cpp needs it */
    struct edit e = { .drop_tensor = "a.position_embd.weight" };
    rewrite(tmp("nopos.gguf"), &e);
    expect_fail("no a.position_embd (llamacpp)", tmp("nopos.gguf"), LFM2_AUDIO_FRONTEND_LLAMACPP, "a.position_embd", "requires");
    lfm2_audio *a = load(tmp("nopos.gguf"), LFM2_AUDIO_FRONTEND_OFFICIAL);
    CHECK(a != NULL, "official mode without a.position_embd: %s", lfm2_last_error());
    lfm2_audio_free(a);
    e = (struct edit){ 0 };
    e.reshape = "a.position_embd.weight";
    e.reshape_ne1 = 100;   /* {128, 100}: 100 rows → at most 201 frames in mtmd */
    rewrite(tmp("short.gguf"), &e);
    a = load(tmp("short.gguf"), LFM2_AUDIO_FRONTEND_LLAMACPP);
    CHECK(a != NULL, "%s", lfm2_last_error());
    if (a) {
        const int64_t max = lfm2_audio_max_samples(a);
        CHECK(max == 201 * 160 - 1, "max samples %lld", (long long)max);
        float *pcm = calloc((size_t)max + 1, sizeof *pcm), *out = malloc(sizeof(float) * 128 * 64);
        for (int64_t i = 0; i <= max; i++)
            pcm[i] = 0.1f * sinf(0.01f * (float)i);
        CHECK(lfm2_audio_encode(a, pcm, max, out, 128 * 64) == 26, "at the limit: %s", lfm2_last_error());
        CHECK(lfm2_audio_encode(a, pcm, max + 1, out, 128 * 64) < 0 && strstr(lfm2_last_error(), "a.position_embd"),
              "past the limit: %s", lfm2_last_error());
        free(pcm);
        free(out);
    }
    lfm2_audio_free(a);
    g_unlink(tmp("trunc.gguf"));
    g_unlink(tmp("flip.gguf"));
    g_unlink(tmp("x.gguf"));
    g_unlink(tmp("nopos.gguf"));
    g_unlink(tmp("short.gguf"));
}

static bool all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

static void test_audio(void)
{
    printf("bad audio\n");
    lfm2_audio *a = load(at_data("lfm2a-tiny-mmproj-f16.gguf"), LFM2_AUDIO_FRONTEND_OFFICIAL);
    lfm2_audio *g = load(at_data("lfm2a-tiny-mmproj-f32.gguf"), LFM2_AUDIO_FRONTEND_LLAMACPP);
    CHECK(a && g, "%s", lfm2_last_error());
    if (!a || !g)
        return;
    const int E = lfm2_audio_n_embd_out(a);
    float *pcm;
    int64_t n;
    CHECK(lfm2_audio_load_file(at_data("wav/speech_4s.wav"), &pcm, &n, NULL) == 0, "%s", lfm2_last_error());
    float *out = malloc(sizeof(float) * 64 * (size_t)E), *ref = malloc(sizeof(float) * 64 * (size_t)E);

    /* 0 samples: an error, not an empty success */
    CHECK(lfm2_audio_encode(a, pcm, 0, out, 64 * (size_t)E) < 0 && strstr(lfm2_last_error(), "no audio samples"),
          "0 samples: %s", lfm2_last_error());
    /* too small an output */
    CHECK(lfm2_audio_encode(a, pcm, n, out, 10) < 0 && strstr(lfm2_last_error(), "output holds"),
          "small output: %s", lfm2_last_error());
    /* NaN/Inf samples are read as 0 */
    float *x = malloc(sizeof(float) * (size_t)n);
    memcpy(x, pcm, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i += 997) {
        x[i] = (i / 997) % 2 ? NAN : INFINITY;
        pcm[i] = 0.0f;
    }
    CHECK(lfm2_audio_encode(a, x, n, out, 64 * (size_t)E) == 51, "%s", lfm2_last_error());
    CHECK(lfm2_audio_encode(a, pcm, n, ref, 64 * (size_t)E) == 51, "%s", lfm2_last_error());
    CHECK(all_finite(out, 51 * E) && memcmp(out, ref, sizeof(float) * 51 * (size_t)E) == 0,
          "NaN/Inf samples are not read as 0");
    /* hard-clipped (×10) speech, silence, one sample, 320 samples: finite, counts */
    for (int64_t i = 0; i < n; i++) {
        const float v = pcm[i] * 10.0f;
        x[i] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
    }
    CHECK(lfm2_audio_encode(a, x, n, out, 64 * (size_t)E) == 51 && all_finite(out, 51 * E), "clipped speech");
    memset(x, 0, sizeof(float) * (size_t)n);
    CHECK(lfm2_audio_encode(a, x, 8000, out, 64 * (size_t)E) == 7 && all_finite(out, 7 * E), "silence");
    CHECK(lfm2_audio_encode(g, x, 8000, out, 64 * (size_t)E) == 7 && all_finite(out, 7 * E), "silence (llamacpp)");
    CHECK(lfm2_audio_encode(a, pcm, 1, out, 64 * (size_t)E) == 1 && all_finite(out, E), "one sample: %s", lfm2_last_error());
    CHECK(lfm2_audio_encode(g, pcm, 320, out, 64 * (size_t)E) == 1 && all_finite(out, E), "320 samples");
    /* official: no length limit from a.position_embd (2048 rows = 40.96 s in mtmd): 45 s */
    const int64_t nl = 45 * 16000;
    float *lng = malloc(sizeof(float) * (size_t)nl);
    for (int64_t i = 0; i < nl; i++)
        lng[i] = pcm[i % n];
    const int64_t nt = lfm2_audio_n_tokens(nl);
    float *lo = malloc(sizeof(float) * (size_t)(nt * E));
    CHECK(lfm2_audio_max_samples(a) == INT64_MAX, "official mode has a limit");
    CHECK(lfm2_audio_encode(a, lng, nl, lo, (size_t)(nt * E)) == nt && all_finite(lo, nt * E), "45 s: %s", lfm2_last_error());
    CHECK(lfm2_audio_encode(g, lng, nl, lo, (size_t)(nt * E)) < 0 && strstr(lfm2_last_error(), "official"),
          "45 s in llamacpp mode: %s", lfm2_last_error());
    printf("  scratch after 45 s: %.1f MB\n", lfm2_audio_scratch_bytes(a) / 1e6);
    free(lng);
    free(lo);

    /* a text model of another width */
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/text/small-f32/lfm2-small-f32.gguf", lfm2_test_data_dir());
    lfm2_model *m = lfm2_model_load(tp, lfm2_model_default_params());
    CHECK(m && lfm2_audio_check_text_model(a, m) < 0 && strstr(lfm2_last_error(), "n_embd 256"),
          "text model mismatch: %s", lfm2_last_error());
    lfm2_model_free(m);
    free(x);
    free(pcm);
    free(out);
    free(ref);
    lfm2_audio_free(a);
    lfm2_audio_free(g);
}

int main(void)
{
    tmpdir = g_dir_make_tmp("lfm2-audio-err-XXXXXX", NULL);
    test_files();
    test_audio();
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return lfm2_test_status();
}
