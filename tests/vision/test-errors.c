/* test-errors.c — bad input gets a clear error, never a crash: missing / foreign / damaged
 * mmproj files (variants of the fixture written with the GGUF writer), an mmproj that does
 * not fit the text model, corrupt image files; and the extremes that must work: a 1×1
 * picture and an 8K picture (tiled, with scratch memory bounded by the tile budget rather
 * than the input size), in both preprocessing modes. */
#include <math.h>
#include <unistd.h>

#include "lfm2-gguf.h"
#include "lfm2-vision.h"
#include "vtest.h"

static char tmpdir[512];

/* ---- mmproj variants ---------------------------------------------------------------------- */

struct edit {
    const char *drop_key;        /* leave this key out */
    const char *set_str_key;     /* replace a string value */
    const char *set_str_val;
    const char *drop_tensor;     /* leave this tensor out */
    const char *add_tensor;      /* add a 1-D F32 tensor of 64 values */
    const char *shrink_tensor;   /* cut ne[n_dims-1] (the output dimension) in half */
    const char *shrink_tensor2;
    const char *add_str_key;     /* add a string key */
    const char *add_str_val;
};

static const char *write_variant(const char *name, const struct edit *e)
{
    static char path[8][600];
    static int k;
    char *out = path[k++ & 7];
    snprintf(out, 600, "%s/%s.gguf", tmpdir, name);
    lfm2_gguf *g = lfm2_gguf_open(vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf"), true);
    if (!g) {
        CHECK(0, "open fixture: %s", lfm2_last_error());
        return out;
    }
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++) {
        const char *key = lfm2_gguf_kv_key(g, i);
        if (e->drop_key && !strcmp(key, e->drop_key))
            continue;
        int64_t iv;
        float fv;
        bool bv;
        char sv[256];
        switch (lfm2_gguf_kv_type(g, i)) {
        case LFM2_GGUF_U32:
        case LFM2_GGUF_I32:
            lfm2_gguf_get_int(g, key, &iv);
            lfm2_gguf_set_u32(w, key, (uint32_t)iv);
            break;
        case LFM2_GGUF_F32:
            lfm2_gguf_get_f32(g, key, &fv);
            lfm2_gguf_set_f32(w, key, fv);
            break;
        case LFM2_GGUF_BOOL:
            lfm2_gguf_get_bool(g, key, &bv);
            lfm2_gguf_set_bool(w, key, bv);
            break;
        case LFM2_GGUF_STRING:
            lfm2_gguf_get_str_buf(g, key, sv, sizeof sv);
            lfm2_gguf_set_str(w, key,
                              e->set_str_key && !strcmp(key, e->set_str_key) ? e->set_str_val : sv);
            break;
        case LFM2_GGUF_ARRAY: {
            float a[3];
            CHECK(lfm2_gguf_get_f32_arr(g, key, a, 3) == 1, "array %s", key);
            lfm2_gguf_set_arr_f32(w, key, a, 3);
            break;
        }
        default:
            CHECK(0, "unexpected key type in the fixture: %s", key);
        }
    }
    if (e->add_str_key)
        lfm2_gguf_set_str(w, e->add_str_key, e->add_str_val);
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor))
            continue;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        if ((e->shrink_tensor && !strcmp(t->name, e->shrink_tensor)) ||
            (e->shrink_tensor2 && !strcmp(t->name, e->shrink_tensor2)))
            ne[t->n_dims - 1] /= 2;   /* the leading rows of the data are still valid */
        lfm2_gguf_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data);
    }
    if (e->add_tensor) {
        float z[64] = { 0 };
        const int64_t ne[1] = { 64 };
        lfm2_gguf_add_tensor(w, e->add_tensor, LFM2_TYPE_F32, 1, ne, z);
    }
    CHECK(lfm2_gguf_writer_write(w, out) == 0, "write %s: %s", out, lfm2_last_error());
    lfm2_gguf_writer_free(w);
    lfm2_gguf_close(g);
    return out;
}

static struct lfm2_vision_params vparams(int mode)
{
    struct lfm2_vision_params p = lfm2_vision_default_params();
    p.preprocess = mode;
    p.n_threads = 2;
    return p;
}

/* Loading must fail with an error containing every one of the words. */
static void expect_load_error(const char *path, const char *w1, const char *w2)
{
    lfm2_vision *v = lfm2_vision_load(path, vparams(LFM2_VISION_PREPROCESS_LLAMACPP));
    CHECK(v == NULL, "%s loaded", path);
    lfm2_vision_free(v);
    const char *e = lfm2_last_error();
    CHECK(strstr(e, w1) && (!w2 || strstr(e, w2)), "error '%s' lacks '%s' / '%s'", e, w1,
          w2 ? w2 : "");
    printf("  ok: %s\n", e);
}

static void test_mmproj_errors(void)
{
    expect_load_error("/nonexistent/dir/mmproj.gguf", "/nonexistent/dir/mmproj.gguf", NULL);
    /* a text model given as the mmproj */
    expect_load_error(vt_data("vision/lfm2-vl-tiny-text-q4_0.gguf"), "general.architecture",
                      "clip");
    struct edit e;
    memset(&e, 0, sizeof e);
    e.set_str_key = "clip.projector_type";
    e.set_str_val = "llava";
    expect_load_error(write_variant("llava", &e), "clip.projector_type", "llava");

    memset(&e, 0, sizeof e);
    e.drop_key = "clip.projector_type";
    expect_load_error(write_variant("noproj", &e), "clip.projector_type", "missing");

    memset(&e, 0, sizeof e);
    e.drop_key = "clip.vision.patch_size";
    expect_load_error(write_variant("nopatch", &e), "clip.vision.patch_size", "missing");

    memset(&e, 0, sizeof e);
    e.drop_key = "clip.vision.image_mean";
    expect_load_error(write_variant("nomean", &e), "clip.vision.image_mean", NULL);

    memset(&e, 0, sizeof e);
    e.drop_tensor = "v.blk.1.ffn_down.weight";
    const char *p = write_variant("nodown", &e);
    expect_load_error(p, "v.blk.1.ffn_down.weight", p);

    memset(&e, 0, sizeof e);
    e.drop_tensor = "v.position_embd.weight";
    expect_load_error(write_variant("nopos", &e), "v.position_embd.weight", NULL);

    memset(&e, 0, sizeof e);
    e.shrink_tensor = "v.blk.0.attn_q.weight";
    expect_load_error(write_variant("badq", &e), "v.blk.0.attn_q.weight", NULL);

    memset(&e, 0, sizeof e);
    e.shrink_tensor = "mm.1.weight";   /* projector input no longer 4·D wide */
    e.drop_tensor = NULL;
    expect_load_error(write_variant("badmm1", &e), "mm.1", NULL);

    memset(&e, 0, sizeof e);
    e.add_tensor = "v.pre_ln.weight";
    expect_load_error(write_variant("preln", &e), "v.pre_ln.weight", NULL);

    /* projector output 64 wide: loads, but does not fit the 128-wide text model */
    memset(&e, 0, sizeof e);
    e.shrink_tensor = "mm.2.weight";
    e.shrink_tensor2 = "mm.2.bias";
    const char *narrow = write_variant("narrow", &e);
    lfm2_vision *v = lfm2_vision_load(narrow, vparams(LFM2_VISION_PREPROCESS_LLAMACPP));
    CHECK(v != NULL, "narrow mmproj: %s", lfm2_last_error());
    lfm2_model *text = lfm2_model_load(vt_data("vision/lfm2-vl-tiny-text-q4_0.gguf"),
                                       lfm2_model_default_params());
    CHECK(text != NULL, "%s", lfm2_last_error());
    if (v && text) {
        CHECK(lfm2_vision_n_embd_out(v) == 64, "narrow width %d", lfm2_vision_n_embd_out(v));
        CHECK(lfm2_vision_check_text_model(v, text) < 0, "width mismatch accepted");
        const char *err = lfm2_last_error();
        CHECK(strstr(err, "64") && strstr(err, "128") && strstr(err, "narrow.gguf"),
              "mismatch error: %s", err);
        printf("  ok: %s\n", err);
    }
    lfm2_vision_free(v);
    lfm2_model_free(text);

    /* invalid parameters are refused at load */
    struct lfm2_vision_params bad = vparams(LFM2_VISION_PREPROCESS_OFFICIAL);
    bad.min_image_tokens = 0;
    v = lfm2_vision_load(vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf"), bad);
    CHECK(v == NULL && strstr(lfm2_last_error(), "token"), "bad params: %s", lfm2_last_error());
    lfm2_vision_free(v);
}

/* ---- images ------------------------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void expect_image_error(const char *path)
{
    struct lfm2_vision_image img;
    CHECK(lfm2_vision_image_load(path, &img) < 0, "%s decoded", path);
    CHECK(img.data == NULL, "data left behind");
    const char *e = lfm2_last_error();
    CHECK(strstr(e, path) != NULL, "error '%s' does not name the file", e);
    printf("  ok: %s\n", e);
}

static void test_image_errors(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/missing.png", tmpdir);
    expect_image_error(path);

    snprintf(path, sizeof path, "%s/empty.png", tmpdir);
    write_file(path, "", 0);
    expect_image_error(path);

    snprintf(path, sizeof path, "%s/junk.jpg", tmpdir);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7919u >> 3);
    write_file(path, junk, sizeof junk);
    expect_image_error(path);

    /* a real PNG cut after its header, and one with its image data overwritten */
    size_t n = 0;
    unsigned char *png = vt_read(vt_data("vision/images/test-1100x500.png"), &n);
    CHECK(png && n > 200, "fixture png");
    if (png) {
        snprintf(path, sizeof path, "%s/truncated.png", tmpdir);
        write_file(path, png, 60);
        expect_image_error(path);
        snprintf(path, sizeof path, "%s/garbled.png", tmpdir);
        for (size_t i = 100; i < n; i++)
            png[i] ^= 0x5a;
        write_file(path, png, n);
        expect_image_error(path);
        free(png);
    }
    /* a PPM header that promises more pixels than the file has */
    snprintf(path, sizeof path, "%s/short.ppm", tmpdir);
    const char ppm[] = "P6 100 100 255\n\x01\x02\x03";
    write_file(path, ppm, sizeof ppm - 1);
    expect_image_error(path);
}

/* ---- extremes that must work --------------------------------------------------------------- */

static void encode_ok(lfm2_vision *v, const struct lfm2_vision_image *img, int expect_tokens,
                      const char *what)
{
    struct lfm2_vision_plan pl;
    CHECK(lfm2_vision_plan_image(v, img->width, img->height, &pl) == 0, "%s: %s", what,
          lfm2_last_error());
    CHECK(pl.n_tokens == expect_tokens, "%s: %d tokens, expected %d", what, pl.n_tokens,
          expect_tokens);
    const int E = lfm2_vision_n_embd_out(v);
    float *out = malloc(sizeof(float) * (size_t)pl.n_tokens * E);
    const int n = lfm2_vision_encode(v, img, &pl, out, (size_t)pl.n_tokens * E);
    CHECK(n == pl.n_tokens, "%s: encode %d (%s)", what, n, lfm2_last_error());
    bool finite = true;
    double ss = 0;
    for (size_t i = 0; n > 0 && i < (size_t)n * E; i++) {
        finite &= isfinite(out[i]);
        ss += (double)out[i] * out[i];
    }
    CHECK(finite && ss > 0, "%s: output not finite / all zero", what);
    /* too small an output buffer is an error, not an overflow */
    CHECK(lfm2_vision_encode(v, img, &pl, out, (size_t)pl.n_tokens * E - 1) < 0,
          "%s: short buffer accepted", what);
    free(out);
}

static void test_extremes(void)
{
    for (int mode = 0; mode < 2; mode++) {
        lfm2_vision *v = lfm2_vision_load(vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf"),
                                          vparams(mode));
        CHECK(v != NULL, "%s", lfm2_last_error());
        if (!v)
            continue;
        const char *mn = lfm2_vision_preprocess_name(mode);
        printf("%s mode\n", mn);

        /* 1×1: upscaled to 256×256, 64 tokens */
        const uint8_t px[3] = { 200, 100, 50 };
        struct lfm2_vision_image one = { 1, 1, 3, px };
        encode_ok(v, &one, 64, "1×1");

        /* a plan for another size is refused */
        struct lfm2_vision_plan pl;
        lfm2_vision_plan_image(v, 2, 2, &pl);
        float dummy[64 * 128];
        CHECK(lfm2_vision_encode(v, &one, &pl, dummy, sizeof dummy / sizeof dummy[0]) < 0,
              "mismatched plan accepted");

        /* 8K: tiled 4×2 + thumbnail 672×384 = 2300 tokens; scratch stays within the tile
         * budget (canvas ≤ max_tiles·512², thumbnail ≤ max tokens, encoder ≤ 1024 patches) */
        const int W = 7680, H = 4320;
        uint8_t *big = malloc((size_t)W * H * 3);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = big + ((size_t)y * W + x) * 3;
                p[0] = (uint8_t)(x * 255 / (W - 1));
                p[1] = (uint8_t)(y * 255 / (H - 1));
                p[2] = (uint8_t)((((x / 97) + (y / 61)) & 1) * 255);
            }
        struct lfm2_vision_image img8k = { W, H, (size_t)W * 3, big };
        encode_ok(v, &img8k, 2300, "7680×4320");
        const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams(v);
        const size_t rows = 1024, D = hp->n_embd, F = hp->n_ff, K = 3 * 16 * 16;
        const size_t enc = 4 * (rows * (8 * D + F + K) + rows / 4 * hp->n_proj_hidden + rows * D);
        const size_t bound = 10 * 512 * 512 * 3 + 256 * 32 * 32 * 3 + enc + (1 << 20);
        const size_t used = lfm2_vision_scratch_bytes(v);
        printf("  8K scratch %.1f MB (bound %.1f MB, picture %.1f MB)\n", used / 1e6, bound / 1e6,
               (double)W * H * 3 / 1e6);
        CHECK(used <= bound, "%s: scratch %zu > %zu after an 8K picture", mn, used, bound);
        const struct lfm2_vision_timings t = lfm2_vision_last_timings(v);
        CHECK(t.n_chunks == 9 && t.n_patches == 8 * 1024 + 42 * 24, "8K: %d chunks, %d patches",
              t.n_chunks, t.n_patches);
        free(big);
        lfm2_vision_free(v);
    }
}

/* An mmproj carrying clip.vision.image_resize_algo (newer llama.cpp converters write the
 * processor config's resample there): bicubic is the default filter, params override it;
 * a filter LFM2-VL does not use is refused naming the key. */
static void test_mmproj_resample(void)
{
    struct edit e = { 0 };
    e.add_str_key = "clip.vision.image_resize_algo";
    e.add_str_val = "bicubic";
    const char *path = write_variant("bicubic", &e);
    lfm2_vision *v = lfm2_vision_load(path, vparams(LFM2_VISION_PREPROCESS_OFFICIAL));
    CHECK(v != NULL, "bicubic mmproj: %s", lfm2_last_error());
    if (v) {
        CHECK(lfm2_vision_get_hparams(v)->resample == LFM2_VISION_RESAMPLE_BICUBIC, "hparams");
        struct lfm2_vision_plan plan;
        CHECK(lfm2_vision_plan_image(v, 300, 200, &plan) == 0 &&
                  plan.resample == LFM2_VISION_RESAMPLE_BICUBIC, "file's filter is the default");
        /* the single image is Pillow's bicubic resize of the picture */
        uint8_t *src = malloc(300 * 200 * 3), *got = malloc((size_t)plan.thumb_w * plan.thumb_h * 3),
                *want = malloc((size_t)plan.thumb_w * plan.thumb_h * 3);
        for (int i = 0; i < 300 * 200 * 3; i++)
            src[i] = (uint8_t)(i * 7 + i / 901);
        const struct lfm2_vision_image img = { 300, 200, 900, src };
        CHECK(lfm2_vision_chunk_pixels(v, &img, &plan, 0, got) == 0, "%s", lfm2_last_error());
        lfm2_vision_resize_pil(LFM2_VISION_RESAMPLE_BICUBIC, src, 300, 200, 900, want, plan.thumb_w,
                               plan.thumb_h, (size_t)plan.thumb_w * 3, NULL);
        CHECK(memcmp(got, want, (size_t)plan.thumb_w * plan.thumb_h * 3) == 0,
              "chunk pixels are not the bicubic resize");
        free(src);
        free(got);
        free(want);
        lfm2_vision_free(v);
    }
    struct lfm2_vision_params p = vparams(LFM2_VISION_PREPROCESS_OFFICIAL);
    p.resample = LFM2_VISION_RESAMPLE_BILINEAR;
    v = lfm2_vision_load(path, p);
    struct lfm2_vision_plan plan;
    CHECK(v && lfm2_vision_plan_image(v, 300, 200, &plan) == 0 &&
              plan.resample == LFM2_VISION_RESAMPLE_BILINEAR, "explicit bilinear wins");
    lfm2_vision_free(v);
    e.add_str_val = "lanczos";
    expect_load_error(write_variant("lanczos", &e), "image_resize_algo", "lanczos");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/lfm2-vision-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_mmproj_errors();
    test_image_errors();
    test_extremes();
    test_mmproj_resample();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return vt_finish("test-errors");
}
