/* test-errors — bad input to the speech-output library: vocoder and tokenizer files missing a
 * tensor, with wrong shapes, truncated, or passed in each other's place (errors name the file
 * and the tensor or key); codes out of range; buffers too small; a backbone of the wrong width.
 * Nothing crashes, and a decoder that refused a push still works. */
#include <unistd.h>

#include "lfm2-gguf.h"
#include "ttest.h"

static char g_dir[] = "/tmp/lfm2-tts-errors-XXXXXX";

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

/* The keys of src (the types these files use) into w, except `skip`. */
static void copy_kvs(const lfm2_gguf *src, lfm2_gguf_writer *w, const char *skip)
{
    for (int64_t i = 0; i < lfm2_gguf_n_kv(src); i++) {
        const char *key = lfm2_gguf_kv_key(src, i);
        if (skip && !strcmp(key, skip))
            continue;
        const enum lfm2_gguf_type t = lfm2_gguf_kv_type(src, i);
        int64_t iv;
        float fv;
        char sv[512];
        if (t == LFM2_GGUF_STRING && lfm2_gguf_get_str_buf(src, key, sv, sizeof sv) > 0) {
            lfm2_gguf_set_str(w, key, sv);
        } else if (t == LFM2_GGUF_F32 && lfm2_gguf_get_f32(src, key, &fv) > 0) {
            lfm2_gguf_set_f32(w, key, fv);
        } else if (t == LFM2_GGUF_ARRAY) {
            enum lfm2_gguf_type et;
            uint64_t n;
            if (lfm2_gguf_get_arr(src, key, &et, &n) > 0 && et == LFM2_GGUF_I32)
                lfm2_gguf_set_arr_i32(w, key, lfm2_gguf_arr_data(src, key), (size_t)n);
        } else if (lfm2_gguf_get_int(src, key, &iv) > 0) {
            lfm2_gguf_set_u32(w, key, (uint32_t)iv);
        }
    }
}

/* A copy of the fixture file `name` without tensor `drop`, with tensor `reshape` given ne1
 * rows instead (random data), and without key `skip_key`. */
static const char *variant(const char *name, const char *out, const char *drop, const char *reshape,
                           int64_t ne1, const char *skip_key)
{
    lfm2_gguf *g = lfm2_gguf_open(tt_data(name), true);
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    copy_kvs(g, w, skip_key);
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        if (drop && !strcmp(t->name, drop))
            continue;
        if (reshape && !strcmp(t->name, reshape)) {
            int64_t ne[4] = { t->ne[0], ne1, 1, 1 };
            int64_t n0 = t->ne[0];
            if (t->n_dims == 1) { /* a vector: ne1 is its new length */
                ne[0] = ne1;
                n0 = ne1;
                ne[1] = 1;
            }
            const size_t bytes = lfm2_row_bytes(t->type, n0) * (size_t)ne[1];
            uint8_t *data = calloc(1, bytes);
            lfm2_gguf_add_tensor(w, t->name, t->type, t->n_dims, ne, data);
            free(data);
            continue;
        }
        lfm2_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    const char *path = tmp_path(out);
    if (lfm2_gguf_writer_write(w, path)) {
        fprintf(stderr, "%s\n", lfm2_last_error());
        exit(1);
    }
    lfm2_gguf_writer_free(w);
    lfm2_gguf_close(g);
    return path;
}

/* Loading path as a vocoder fails with a message containing every needle. */
static void expect_vocoder_error(const char *path, const char *n1, const char *n2)
{
    lfm2_vocoder *v = lfm2_vocoder_load(path, lfm2_vocoder_default_params());
    const char *e = lfm2_last_error();
    CHECK(!v, "%s loaded as a vocoder", path);
    CHECK(strstr(e, path) && (!n1 || strstr(e, n1)) && (!n2 || strstr(e, n2)),
          "vocoder error '%s' lacks '%s' / '%s'", e, n1 ? n1 : "", n2 ? n2 : "");
    printf("vocoder: %s\n", e);
    lfm2_vocoder_free(v);
}

static void expect_tokenizer_error(const char *path, const char *n1, const char *n2)
{
    lfm2_audio_tokenizer *t = lfm2_audio_tokenizer_load(path, lfm2_audio_tokenizer_default_params());
    const char *e = lfm2_last_error();
    CHECK(!t, "%s loaded as a tokenizer", path);
    CHECK(strstr(e, path) && (!n1 || strstr(e, n1)) && (!n2 || strstr(e, n2)),
          "tokenizer error '%s' lacks '%s' / '%s'", e, n1 ? n1 : "", n2 ? n2 : "");
    printf("tokenizer: %s\n", e);
    lfm2_audio_tokenizer_free(t);
}

static void test_files(void)
{
    const char *V = "vocoder-tiny-dev.gguf", *T = "tokenizer-tiny-dev.gguf";
    const char *w2 = "depthformer.layers.1.feed_forward.w2.weight";
    expect_vocoder_error(variant(V, "v1.gguf", w2, NULL, 0, NULL), w2, "missing");
    expect_vocoder_error(variant(V, "v2.gguf", "emb.emb.weight", NULL, 0, NULL), "emb.emb.weight", NULL);
    expect_vocoder_error(variant(V, "v3.gguf", "depth_embeddings.7.to_logits.weight", NULL, 0, NULL),
                         "depth_embeddings.7.to_logits.weight", NULL);
    expect_vocoder_error(variant(V, "v4.gguf", "audio_embedding.embedding.weight", NULL, 0, NULL),
                         "audio_embedding.embedding.weight", NULL);
    /* wrong shapes */
    expect_vocoder_error(variant(V, "v5.gguf", NULL, "depthformer.layers.1.operator.qkv_proj.weight", 130, NULL),
                         "depthformer.layers.1.operator.qkv_proj.weight", NULL);
    expect_vocoder_error(variant(V, "v6.gguf", NULL, "depth_embeddings.3.to_logits.weight", 2048, NULL),
                         "depth_embeddings.3.to_logits.weight", NULL);
    expect_vocoder_error(variant(V, "v7.gguf", NULL, "depth_linear.bias", 500, NULL), "depth_linear.bias", NULL);
    expect_vocoder_error(variant(V, "v8.gguf", NULL, "depth_linear.weight", 500, NULL), "depth_linear.weight",
                         "codebooks");
    expect_vocoder_error(variant(V, "v9.gguf", NULL, "depthformer.layers.0.operator.attention.q_layernorm.weight",
                                 15, NULL),
                         "q_layernorm", "head_dim 15");
    expect_vocoder_error(variant(V, "v10.gguf", NULL, "emb.emb.weight", 16000, NULL), "emb.emb.weight", NULL);
    /* a key that disagrees with the tensors */
    {
        lfm2_gguf *g = lfm2_gguf_open(tt_data(V), true);
        lfm2_gguf_writer *w = lfm2_gguf_writer_new();
        copy_kvs(g, w, "depthformer_n_embd");
        lfm2_gguf_set_u32(w, "depthformer_n_embd", 128);
        for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
            const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
            lfm2_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
        }
        CHECK(lfm2_gguf_writer_write(w, tmp_path("v11.gguf")) == 0, "write");
        lfm2_gguf_writer_free(w);
        lfm2_gguf_close(g);
        expect_vocoder_error(tmp_path("v11.gguf"), "depthformer_n_embd", "operator_norm");
    }
    /* no depthformer_n_layer key: the layers present are counted */
    {
        lfm2_vocoder *v = lfm2_vocoder_load(variant(V, "v12.gguf", NULL, NULL, 0, "depthformer_n_layer"),
                                            lfm2_vocoder_default_params());
        CHECK(v && lfm2_vocoder_get_hparams(v)->n_layer == 2, "layers counted: %s", v ? "" : lfm2_last_error());
        lfm2_vocoder_free(v);
    }
    /* truncated */
    {
        size_t len;
        void *b = tt_read(tt_data(V), &len);
        FILE *f = fopen(tmp_path("cut.gguf"), "wb");
        fwrite(b, 1, len / 2, f);
        fclose(f);
        free(b);
        expect_vocoder_error(tmp_path("cut.gguf"), NULL, NULL);
        expect_tokenizer_error(tmp_path("cut.gguf"), NULL, NULL);
    }
    /* in each other's place, and the text model */
    expect_vocoder_error(tt_data(T), "depth_linear.weight", "pass it as the tokenizer");
    expect_tokenizer_error(tt_data(V), "general.architecture", "pass it as the vocoder");
    char text[1024];
    snprintf(text, sizeof text, "%s/text/tiny-q8_0/lfm2-tiny-q8_0.gguf", lfm2_test_data_dir());
    if (access(text, R_OK) == 0) {
        expect_tokenizer_error(text, "embedding_length_out", "text model");
        expect_vocoder_error(text, "depth_linear.weight", "pass it as the model");
    }
    /* tokenizer: missing head tensors and keys */
    expect_tokenizer_error(variant(T, "t1.gguf", "dense_2.bias", NULL, 0, NULL), "dense_2.bias", NULL);
    expect_tokenizer_error(variant(T, "t2.gguf", "blk.4.attn_k.weight", NULL, 0, NULL), "blk.4.attn_k.weight", NULL);
    expect_tokenizer_error(variant(T, "t3.gguf", NULL, "dense_2.weight", 1000, NULL), "dense_2.weight", NULL);
    expect_tokenizer_error(variant(T, "t4.gguf", NULL, NULL, 0, "lfm2.embedding_length_out"),
                           "embedding_length_out", NULL);
}

static void test_codes_and_buffers(void)
{
    lfm2_vocoder *v = tt_vocoder(false);
    lfm2_audio_tokenizer *t = tt_tokenizer(false);
    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = 1;
    lfm2_audio_decoder *d = lfm2_audio_decoder_new(v, t, dp);
    CHECK(d, "decoder: %s", lfm2_last_error());
    static float out[4 * 1920];
    int32_t good[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    const int32_t bad_values[3] = { 2048, -1, 99999 };
    for (int i = 0; i < 3 && d; i++) {
        int32_t codes[16];
        memcpy(codes, good, sizeof codes);
        codes[8 + 5] = bad_values[i];   /* frame 1, codebook 5 */
        lfm2_clear_error();
        CHECK(lfm2_audio_decoder_push(d, codes, 2, out, 4 * 1920) < 0, "code %d accepted", bad_values[i]);
        CHECK(strstr(lfm2_last_error(), "frame 1") && strstr(lfm2_last_error(), "codebook 5"),
              "code error '%s'", lfm2_last_error());
    }
    if (d) {
        printf("codes: %s\n", lfm2_last_error());
        CHECK(lfm2_audio_decoder_push(d, good, 2, out, 1920) < 0, "an output buffer of one frame for two");
        /* nothing was decoded by the refused pushes: this is still the first frame */
        CHECK_INT(lfm2_audio_decoder_push(d, good, 1, out, 1920), 1440, "first frame after refused pushes");
        CHECK(lfm2_audio_decoder_flush(d, out, 100) < 0, "flush into 100 samples");
        CHECK(lfm2_audio_decoder_spectra(d, good, -1, NULL, NULL) < 0, "negative frame count");
    }
    lfm2_audio_decoder_free(d);

    lfm2_audio_head *h = lfm2_audio_head_new(v, lfm2_audio_head_default_params());
    float e[64];
    int32_t codes[8] = { 0, 1, 2, 3, 4, 5, 6, 2049 };
    CHECK(h && lfm2_audio_head_embed(h, codes, e) < 0 && strstr(lfm2_last_error(), "2049"),
          "embedding of code 2049: '%s'", lfm2_last_error());
    codes[7] = 2048;   /* the end code has rows in the feedback table */
    CHECK(h && lfm2_audio_head_embed(h, codes, e) == 0, "embedding with an end code: %s", lfm2_last_error());
    lfm2_audio_head_free(h);

    /* a backbone of another width */
    char text[1024];
    snprintf(text, sizeof text, "%s/text/tiny-q8_0/lfm2-tiny-q8_0.gguf", lfm2_test_data_dir());
    lfm2_model *m = access(text, R_OK) == 0 ? lfm2_model_load(text, lfm2_model_default_params()) : NULL;
    if (m) {
        CHECK(lfm2_vocoder_check_model(v, m) < 0 && strstr(lfm2_last_error(), "lfm2-tiny-q8_0.gguf") &&
                  strstr(lfm2_last_error(), "vocoder-tiny-dev.gguf"),
              "width mismatch: '%s'", lfm2_last_error());
        struct lfm2_tts_params tp = lfm2_tts_default_params();
        CHECK(lfm2_tts_new(m, v, t, tp) == NULL, "a TTS context over a backbone of another width");
        tp.vocode = true;
        CHECK(lfm2_tts_new(m, v, NULL, tp) == NULL, "vocode without a tokenizer");
        lfm2_model_free(m);
    }
    CHECK(lfm2_vocoder_load(NULL, lfm2_vocoder_default_params()) == NULL, "no path");
    CHECK(lfm2_vocoder_load("/nonexistent/v.gguf", lfm2_vocoder_default_params()) == NULL &&
              strstr(lfm2_last_error(), "/nonexistent/v.gguf"),
          "missing file: '%s'", lfm2_last_error());
    lfm2_audio_tokenizer_free(t);
    lfm2_vocoder_free(v);
}

int main(void)
{
    if (!mkdtemp(g_dir))
        return 1;
    test_files();
    test_codes_and_buffers();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return lfm2_test_status();
}
