/* test-preprocess.c — LFM2-VL preprocessing without a model: smart resize rounding, the
 * tiling tests of both modes, grid choice and its tie rule, letterbox geometry, token
 * counts for the spec's worked examples and the fixtures' mtmd plans, and both resamplers
 * against hand-computed values and independent double-precision references.
 *
 * Expected sizes were computed with a separate Python model of both rule sets (float32
 * emulated for llama.cpp, Python floats for transformers), not with this code. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdint.h>

#include "lfm2-vision.h"
#include "vtest.h"

#define LL LFM2_VISION_PREPROCESS_LLAMACPP
#define HF LFM2_VISION_PREPROCESS_OFFICIAL

static struct lfm2_vision_params params(int mode)
{
    struct lfm2_vision_params p = lfm2_vision_default_params();
    p.preprocess = mode;
    return p;
}

static struct lfm2_vision_plan plan_of(int mode, int w, int h)
{
    struct lfm2_vision_params p = params(mode);
    struct lfm2_vision_plan pl;
    int r = lfm2_vision_make_plan(&p, 16, 2, w, h, &pl);
    CHECK(r == 0, "plan %d×%d: %s", w, h, lfm2_last_error());
    return pl;
}

/* expected: tiled?, grid, thumbnail size (0 = none), total tokens */
struct expect {
    int w, h;
    int tiled, gc, gr, tw, th, n;
};

static void check_plan(int mode, const struct expect *e)
{
    char what[128];
    struct lfm2_vision_plan p = plan_of(mode, e->w, e->h);
    snprintf(what, sizeof what, "%s %d×%d", mode == LL ? "llamacpp" : "official", e->w, e->h);
    CHECK(p.tiled == (bool)e->tiled, "%s: tiled %d, expected %d", what, p.tiled, e->tiled);
    if (e->tiled) {
        CHECK(p.n_cols == e->gc && p.n_rows == e->gr, "%s: grid %d×%d, expected %d×%d", what,
              p.n_cols, p.n_rows, e->gc, e->gr);
        CHECK(p.refined_w == 512 * e->gc && p.refined_h == 512 * e->gr, "%s: refined %d×%d", what,
              p.refined_w, p.refined_h);
    }
    if (e->tw) {
        CHECK(p.has_thumb && p.thumb_w == e->tw && p.thumb_h == e->th,
              "%s: thumbnail %d×%d (has %d), expected %d×%d", what, p.thumb_w, p.thumb_h,
              p.has_thumb, e->tw, e->th);
    } else {
        CHECK(!p.has_thumb, "%s: unexpected thumbnail", what);
    }
    CHECK(p.n_tokens == e->n, "%s: %d tokens, expected %d", what, p.n_tokens, e->n);
    /* consistency of the chunk list with the totals */
    int sum = 0;
    for (int i = 0; i < p.n_chunks; i++) {
        int cw, ch, nt, r, c;
        CHECK(lfm2_vision_plan_chunk(&p, i, &cw, &ch, &nt, &r, &c) == 0, "%s chunk %d", what, i);
        CHECK(nt == (cw / 32) * (ch / 32), "%s chunk %d: %d tokens for %d×%d", what, i, nt, cw, ch);
        sum += nt;
    }
    CHECK(sum == p.n_tokens, "%s: chunks sum to %d, plan says %d", what, sum, p.n_tokens);
    CHECK(lfm2_vision_plan_chunk(&p, p.n_chunks, NULL, NULL, NULL, NULL, NULL) == -1,
          "%s: chunk past the end accepted", what);
}

static void test_plans(void)
{
    /* llama.cpp mtmd rules */
    static const struct expect ll[] = {
        { 1, 1, 0, 0, 0, 256, 256, 64 },
        { 80, 1000, 0, 0, 0, 96, 992, 93 },     /* 80/32 = 2.5 rounds away → 96 */
        { 1000, 80, 0, 0, 0, 992, 96, 93 },
        { 100, 100, 0, 0, 0, 256, 256, 64 },    /* spec 1.7 */
        { 256, 384, 0, 0, 0, 256, 384, 96 },    /* spec 1.7 */
        { 512, 512, 0, 0, 0, 512, 512, 256 },   /* spec 1.7 */
        { 1024, 1024, 0, 0, 0, 512, 512, 256 }, /* spec 1.7: a side of exactly 1024 stays whole */
        { 1025, 100, 1, 10, 1, 1024, 96, 2656 },
        { 100, 1025, 1, 1, 10, 96, 1024, 2656 },
        { 1440, 900, 1, 3, 2, 640, 384, 1776 }, /* spec 1.7 */
        { 1000, 3000, 1, 1, 3, 288, 864, 1011 },/* spec 1.7 */
        { 1000, 800, 0, 0, 0, 544, 448, 238 },
        { 724, 724, 0, 0, 0, 512, 512, 256 },
        { 2048, 1024, 1, 4, 2, 704, 352, 2290 },/* aspect tie 2:1 vs 4:2 → the larger grid */
        { 1100, 550, 1, 2, 1, 704, 352, 754 },  /* same tie, picture too small for 4:2 */
        { 7680, 4320, 1, 4, 2, 672, 384, 2300 },
        { 1100, 500, 1, 2, 1, 736, 320, 742 },  /* fixture */
        { 64, 48, 0, 0, 0, 320, 224, 70 },      /* fixture */
        { 37, 300, 0, 0, 0, 96, 736, 69 },      /* fixture */
        { 320, 224, 0, 0, 0, 320, 224, 70 },    /* fixture */
        { 3000, 200, 1, 10, 1, 1952, 128, 2804 },
        { 48, 16, 0, 0, 0, 448, 160, 70 },
        { 2000, 2000, 1, 3, 3, 512, 512, 2560 },
        { 4000, 1000, 1, 4, 1, 1024, 256, 1280 },
    };
    for (size_t i = 0; i < sizeof ll / sizeof ll[0]; i++)
        check_plan(LL, &ll[i]);

    /* transformers rules (use_thumbnail = true) */
    static const struct expect hf[] = {
        { 1, 1, 0, 0, 0, 256, 256, 64 },
        { 80, 1000, 0, 0, 0, 96, 928, 87 },     /* round(2.5) = 2 → below min pixels → 96×928 */
        { 1000, 80, 0, 0, 0, 928, 96, 87 },
        { 100, 100, 0, 0, 0, 256, 256, 64 },
        { 256, 384, 0, 0, 0, 256, 384, 96 },
        { 512, 512, 0, 0, 0, 512, 512, 256 },
        { 1024, 1024, 1, 2, 2, 512, 512, 1280 },/* spec 1.7: the area test tiles it */
        { 1025, 100, 0, 0, 0, 1024, 96, 96 },
        { 1440, 900, 1, 3, 2, 640, 384, 1776 },
        { 1000, 3000, 1, 1, 3, 288, 864, 1011 },
        { 1000, 800, 1, 3, 2, 544, 448, 1774 },
        { 724, 724, 1, 2, 2, 512, 512, 1280 },  /* 736² > 2·256·32² */
        { 704, 704, 0, 0, 0, 512, 512, 256 },   /* 704² ≤ 524288 */
        { 2048, 1024, 1, 4, 2, 704, 352, 2290 },
        { 1100, 550, 1, 2, 1, 704, 352, 754 },
        { 7680, 4320, 1, 4, 2, 672, 384, 2300 },
        { 1100, 500, 1, 2, 1, 736, 320, 742 },
        { 3000, 200, 1, 10, 1, 1952, 128, 2804 },
        { 2000, 2000, 1, 3, 3, 512, 512, 2560 },
    };
    for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++)
        check_plan(HF, &hf[i]);

    /* official without the thumbnail (LFM2-VL-450M's processor config) */
    struct lfm2_vision_params p = params(HF);
    p.use_thumbnail = false;
    struct lfm2_vision_plan pl;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 1024, 1024, &pl) == 0, "%s", lfm2_last_error());
    CHECK(pl.n_tokens == 1024 && !pl.has_thumb && pl.n_chunks == 4, "1024² no thumbnail: %d tokens",
          pl.n_tokens);
    CHECK(pl.n_layout == 1024 + 2 + 4, "layout entries %d", pl.n_layout);
    /* the llama.cpp mode always has one */
    p.preprocess = LL;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 1100, 500, &pl) == 0, "%s", lfm2_last_error());
    CHECK(pl.has_thumb && pl.n_tokens == 742, "llamacpp ignores use_thumbnail: %d", pl.n_tokens);

    /* layout sizes: <|image_start|> + markers + rows + <|image_end|> */
    pl = plan_of(LL, 1100, 500);
    CHECK_INT(pl.n_layout, 742 + 2 + 2 + 1, "1100×500 layout");
    pl = plan_of(LL, 64, 48);
    CHECK_INT(pl.n_layout, 70 + 3, "64×48 layout (llamacpp: thumbnail marker on a single image)");
    pl = plan_of(HF, 64, 48);
    CHECK_INT(pl.n_layout, 70 + 2, "64×48 layout (official)");

    /* letterbox geometry, float32 like mtmd (1440·(1536/1440) rounds up to 961 rows) */
    pl = plan_of(LL, 1440, 900);
    CHECK(pl.content_w == 1536 && pl.content_h == 961 && pl.content_x == 0 && pl.content_y == 31,
          "1440×900 content %d×%d +%d+%d", pl.content_w, pl.content_h, pl.content_x, pl.content_y);
    pl = plan_of(LL, 7680, 4320);
    CHECK(pl.content_w == 1821 && pl.content_h == 1024 && pl.content_x == 113 && pl.content_y == 0,
          "8K content %d×%d +%d+%d", pl.content_w, pl.content_h, pl.content_x, pl.content_y);
    pl = plan_of(HF, 1440, 900);
    CHECK(pl.content_w == 1536 && pl.content_h == 1024 && pl.content_x == 0 && pl.content_y == 0,
          "official stretches: %d×%d", pl.content_w, pl.content_h);

    /* switches */
    p = params(HF);
    p.do_tiling = false;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 7680, 4320, &pl) == 0 && !pl.tiled && pl.n_tokens == 252,
          "no tiling: %d tokens", pl.n_tokens);
    p = params(LL);
    p.max_pixels_tolerance = 1.5f;   /* LFM2-VL-1.6B processor: tile above 768 px */
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 800, 600, &pl) == 0 && pl.tiled, "tolerance 1.5");
    p = params(LL);
    p.min_image_tokens = 16;
    p.max_image_tokens = 64;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 512, 512, &pl) == 0 && pl.n_tokens == 64 &&
              pl.thumb_w == 256, "max 64 tokens: %d (%d×%d)", pl.n_tokens, pl.thumb_w, pl.thumb_h);

    /* invalid input */
    p = params(HF);
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 0, 10, &pl) < 0, "0-wide image accepted");
    CHECK(strstr(lfm2_last_error(), "0×10") != NULL, "error names the size: %s", lfm2_last_error());
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 70000, 10, &pl) < 0, "70000-wide image accepted");
    p.min_image_tokens = 300;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 10, 10, &pl) < 0, "min > max tokens accepted");
    p = params(HF);
    CHECK(lfm2_vision_make_plan(&p, 14, 2, 10, 10, &pl) < 0, "patch 14 accepted with 512 tiles");
}

static void test_smart_resize(void)
{
    int w, h;
    /* round half away (mtmd) vs half even (Python) at exactly k + 0.5 */
    lfm2_vision_smart_resize(LL, 80, 2400, 32, 0, INT64_MAX, &w, &h);
    CHECK(w == 96 && h == 2400, "llamacpp 80 → %d", w);
    lfm2_vision_smart_resize(HF, 80, 2400, 32, 0, INT64_MAX, &w, &h);
    CHECK(w == 64 && h == 2400, "official 80 → %d", w);
    lfm2_vision_smart_resize(HF, 112, 2400, 32, 0, INT64_MAX, &w, &h);
    CHECK(w == 128, "official 112 (3.5) → %d", w);
    lfm2_vision_smart_resize(LL, 16, 16, 32, 0, INT64_MAX, &w, &h);
    CHECK(w == 32 && h == 32, "never below one merged patch: %d×%d", w, h);
    /* 10000×1: the max branch floors the short side at 32 and may exceed the budget */
    lfm2_vision_smart_resize(LL, 10000, 1, 32, 65536, 262144, &w, &h);
    CHECK(w == 51200 && h == 32, "10000×1 → %d×%d", w, h);
}

/* ---- resamplers --------------------------------------------------------------------------- */

static uint32_t rng = 12345;
static uint8_t rnd8(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (uint8_t)(rng >> 24);
}

static void test_bilinear_mtmd(void)
{
    /* 2×2 → 3×3 corner-aligned: corners are the source, the rest lerps, truncated */
    const uint8_t src[12] = { 0, 10, 200, 255, 11, 100, 255, 13, 50, 0, 15, 0 };
    uint8_t dst[27];
    lfm2_vision_resize_bilinear_mtmd(src, 2, 2, 6, dst, 3, 3, 9);
    CHECK(dst[0] == 0 && dst[6] == 255 && dst[18] == 255 && dst[24] == 0, "corners");
    CHECK(dst[3] == 127, "top middle %d (127.5 truncated)", dst[3]);
    CHECK(dst[12] == 127, "centre R %d", dst[12]);
    CHECK(dst[13] == 12, "centre G %d (12.25)", dst[13]);
    CHECK(dst[14] == 87, "centre B %d (87.5)", dst[14]);

    /* a 1-pixel side is replicated (mtmd would assert) */
    const uint8_t one[3] = { 7, 8, 9 };
    uint8_t big[4 * 3 * 3];
    lfm2_vision_resize_bilinear_mtmd(one, 1, 1, 3, big, 4, 3, 12);
    bool same = true;
    for (int i = 0; i < 36; i++)
        same &= big[i] == one[i % 3];
    CHECK(same, "1×1 upscaled is constant");

    /* against a double-precision corner-aligned bilinear with floor: equal up to the one
     * level a float32 lerp can differ right at an integer */
    const int sw = 37, sh = 23;
    uint8_t *s = malloc(sw * sh * 3);
    for (int i = 0; i < sw * sh * 3; i++)
        s[i] = rnd8();
    const int sizes[][2] = { { 64, 50 }, { 20, 7 }, { 37, 23 }, { 100, 2 }, { 2, 100 } };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int dw = sizes[k][0], dh = sizes[k][1];
        uint8_t *d = malloc(dw * dh * 3);
        lfm2_vision_resize_bilinear_mtmd(s, sw, sh, sw * 3, d, dw, dh, dw * 3);
        int maxd = 0, n_off = 0;
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                const double px = dw > 1 ? x * (double)(sw - 1) / (dw - 1) : 0;
                const double py = dh > 1 ? y * (double)(sh - 1) / (dh - 1) : 0;
                int x0 = (int)px, y0 = (int)py;
                if (x0 > sw - 2)
                    x0 = sw - 2;
                if (y0 > sh - 2)
                    y0 = sh - 2;
                const double fx = px - x0, fy = py - y0;
                for (int c = 0; c < 3; c++) {
                    const double a = s[(y0 * sw + x0) * 3 + c], b = s[(y0 * sw + x0 + 1) * 3 + c];
                    const double e = s[((y0 + 1) * sw + x0) * 3 + c];
                    const double f = s[((y0 + 1) * sw + x0 + 1) * 3 + c];
                    const double top = a + (b - a) * fx, bot = e + (f - e) * fx;
                    const double val = top + (bot - top) * fy;
                    const int ref = (int)floor(val);
                    const int dd = abs(ref - d[(y * dw + x) * 3 + c]);
                    maxd = dd > maxd ? dd : maxd;
                    /* a float32 coordinate or lerp may land a hair below an integer that
                     * double hits exactly; any other difference is a bug */
                    const double fr = val - floor(val);
                    const bool edge = fx < 1e-5 || fx > 1 - 1e-5 || fy < 1e-5 || fy > 1 - 1e-5 ||
                                      fr < 1e-4 || fr > 1 - 1e-4;
                    n_off += dd != 0 && !edge;
                }
            }
        CHECK(maxd <= 1 && n_off == 0, "%d×%d → %d×%d: max diff %d, %d values off",
              sw, sh, dw, dh, maxd, n_off);
        if (dw == sw && dh == sh)
            CHECK(memcmp(d, s, sw * sh * 3) == 0, "same size is a copy");
        free(d);
    }
    free(s);
}

/* PIL's bilinear in double, no fixed point: the independent reference. */
static void ref_aa_axis(const double *in, int n_in, int stride_in, double *out, int n_out,
                        int stride_out, int count, int step_in, int step_out)
{
    const double scale = (double)n_in / n_out, fs = scale > 1 ? scale : 1;
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n_out; i++) {
            const double c = (i + 0.5) * scale;
            double acc = 0, ws = 0;
            for (int j = 0; j < n_in; j++) {
                const double t = fabs((j + 0.5 - c) / fs);
                const double w = t < 1 ? 1 - t : 0;
                acc += w * in[k * step_in + j * stride_in];
                ws += w;
            }
            out[k * step_out + i * stride_out] = acc / ws;
        }
}

static void test_bilinear_aa(void)
{
    /* 2:1 shrink of a ramp: weights 1/8, 3/8, 3/8, 1/8 (renormalized at the ends) */
    uint8_t src[8 * 3], dst[4 * 3];
    const int ramp[8] = { 0, 16, 32, 48, 64, 80, 96, 255 };
    for (int i = 0; i < 8; i++)
        src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = (uint8_t)ramp[i];
    lfm2_vision_resize_bilinear_aa(src, 8, 1, 24, dst, 4, 1, 12, NULL);
    /* out0: (0·3 + 16·3 + 32·1)/7 = 11.43 → 11; out1: (0+48+96+48)/8 = 24 (16·1+32·3+48·3+64·1)/8
     * = 40; out2 = 72; out3: (80·1 + 96·3 + 255·3)/7 = 161.9 → 162 */
    CHECK(dst[0] == 11 && dst[3] == 40 && dst[6] == 72 && dst[9] == 162,
          "ramp 8→4: %d %d %d %d", dst[0], dst[3], dst[6], dst[9]);

    /* constant stays constant, identity copies */
    uint8_t *s = malloc(97 * 61 * 3), *d = malloc(300 * 300 * 3);
    memset(s, 77, 97 * 61 * 3);
    lfm2_vision_resize_bilinear_aa(s, 97, 61, 97 * 3, d, 31, 200, 31 * 3, NULL);
    bool flat = true;
    for (int i = 0; i < 31 * 200 * 3; i++)
        flat &= d[i] == 77;
    CHECK(flat, "constant picture changed");

    /* random pictures against the double reference: within one level */
    const int sw = 97, sh = 61;
    for (int i = 0; i < sw * sh * 3; i++)
        s[i] = rnd8();
    double *fin = malloc(sizeof(double) * sw * sh * 3);
    for (int i = 0; i < sw * sh * 3; i++)
        fin[i] = s[i];
    const int sizes[][2] = { { 31, 20 }, { 200, 150 }, { 97, 20 }, { 40, 61 }, { 13, 300 } };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int dw = sizes[k][0], dh = sizes[k][1];
        double *mid = malloc(sizeof(double) * dw * sh * 3), *fo = malloc(sizeof(double) * dw * dh * 3);
        /* horizontal: per row and channel */
        for (int c = 0; c < 3; c++) {
            ref_aa_axis(fin + c, sw, 3, mid + c, dw, 3, sh, sw * 3, dw * 3);
        }
        /* PIL rounds the horizontal pass to uint8 before the vertical one */
        if (dh != sh)
            for (int i = 0; i < dw * sh * 3; i++)
                mid[i] = floor(mid[i] + 0.5);
        for (int c = 0; c < 3; c++)
            ref_aa_axis(mid + c, sh, dw * 3, fo + c, dh, dw * 3, dw, 3, 3);
        lfm2_vision_resize_bilinear_aa(s, sw, sh, sw * 3, d, dw, dh, dw * 3, NULL);
        int maxd = 0;
        for (int i = 0; i < dw * dh * 3; i++) {
            const int dd = abs((int)floor(fo[i] + 0.5) - d[i]);
            maxd = dd > maxd ? dd : maxd;
        }
        CHECK(maxd <= 1, "AA %d×%d → %d×%d: max diff %d", sw, sh, dw, dh, maxd);
        /* caller-provided scratch gives the same pixels */
        void *tmp = malloc(lfm2_vision_resize_aa_tmp_size(sw, sh, dw, dh));
        uint8_t *d2 = malloc(dw * dh * 3);
        lfm2_vision_resize_bilinear_aa(s, sw, sh, sw * 3, d2, dw, dh, dw * 3, tmp);
        CHECK(memcmp(d, d2, dw * dh * 3) == 0, "scratch changes the result");
        free(tmp);
        free(d2);
        free(mid);
        free(fo);
    }
    free(fin);
    free(s);
    free(d);
}

/* The fixtures' reading of mtmd's plan (mtmd.json preprocess_plan) for each picture. */
static void test_fixture_plans(void)
{
    const char *names[] = { "test-64x48", "test-256x256", "test-320x224", "test-37x300",
                            "test-1100x500" };
    for (size_t k = 0; k < 5; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "vision/%s/mtmd.json", names[k]);
        JsonParser *jp = json_parser_new();
        GError *err = NULL;
        if (!json_parser_load_from_file(jp, vt_data(rel), &err)) {
            CHECK(0, "%s: %s", rel, err->message);
            g_error_free(err);
            g_object_unref(jp);
            continue;
        }
        JsonObject *o = json_node_get_object(json_parser_get_root(jp));
        JsonObject *pp = json_object_get_object_member(o, "preprocess_plan");
        JsonArray *in = json_object_get_array_member(pp, "input");
        const int w = (int)json_array_get_int_element(in, 0), h = (int)json_array_get_int_element(in, 1);
        struct lfm2_vision_plan p = plan_of(LL, w, h);
        JsonArray *ts = json_object_get_array_member(pp, "single_or_thumbnail_size");
        CHECK(p.thumb_w == json_array_get_int_element(ts, 0) &&
                  p.thumb_h == json_array_get_int_element(ts, 1),
              "%s: thumbnail %d×%d", names[k], p.thumb_w, p.thumb_h);
        CHECK(p.tiled == json_object_get_boolean_member(pp, "tiled"), "%s: tiled", names[k]);
        CHECK_INT(p.n_tokens, json_object_get_int_member(o, "n_image_tokens"), names[k]);
        if (p.tiled) {
            JsonArray *g = json_object_get_array_member(pp, "grid_cols_rows");
            JsonArray *rs = json_object_get_array_member(pp, "resized_into_refined");
            JsonArray *lo = json_object_get_array_member(pp, "letterbox_offset");
            CHECK(p.n_cols == json_array_get_int_element(g, 0) &&
                      p.n_rows == json_array_get_int_element(g, 1), "%s: grid", names[k]);
            CHECK(p.content_w == json_array_get_int_element(rs, 0) &&
                      p.content_h == json_array_get_int_element(rs, 1),
                  "%s: content %d×%d", names[k], p.content_w, p.content_h);
            CHECK(p.content_x == json_array_get_int_element(lo, 0) &&
                      p.content_y == json_array_get_int_element(lo, 1),
                  "%s: offset %d,%d", names[k], p.content_x, p.content_y);
        }
        JsonArray *chunks = json_object_get_array_member(o, "image_chunk_tokens");
        CHECK_INT(p.n_chunks, json_array_get_length(chunks), names[k]);
        for (int i = 0; i < p.n_chunks && i < (int)json_array_get_length(chunks); i++) {
            int nt;
            lfm2_vision_plan_chunk(&p, i, NULL, NULL, &nt, NULL, NULL);
            CHECK_INT(nt, json_array_get_int_element(chunks, i), names[k]);
        }
        g_object_unref(jp);
    }
}

int main(void)
{
    test_smart_resize();
    test_plans();
    test_bilinear_mtmd();
    test_bilinear_aa();
    test_fixture_plans();
    return vt_finish("test-preprocess");
}
