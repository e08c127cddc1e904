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

/* Each setting of the processor config against plans worked out by hand from transformers'
 * rules (Lfm2VlImageProcessorFast: rounded-area test × tolerance, grids min..max tiles,
 * smart resize for the thumbnail; the arithmetic is in the comments). */
struct setting_case {
    const char *what;
    int min_tiles, max_tiles, use_thumbnail, do_tiling, min_tok, max_tok;
    float tol;
    int w, h;
    int ok, tiled, gc, gr, tw, th, n;   /* ok 0: refused (transformers inconsistent) */
};

static void test_settings(void)
{
    static const struct setting_case cases[] = {
        /* 736² = 541696 > 2·256·1024: too large; with min_tiles 2 a 2×2 grid + 512² thumb */
        { "724² min_tiles 2", 2, 10, 1, 1, 64, 256, 2.0f, 724, 724, 1, 1, 2, 2, 512, 512, 1280 },
        /* min_tiles 1: (1,1) ties (2,2) but 724² ≤ ½·4·512², so 1×1; the smart resize is
         * 724/(724/512) = 512 → 512² = 256 tokens = one tile: the single image */
        { "724² min_tiles 1", 1, 10, 1, 1, 64, 256, 2.0f, 724, 724, 1, 0, 0, 0, 512, 512, 256 },
        /* 725×723: area 524175 ≤ 524288 keeps 1×1, rounded 736² tiles; smart resize
         * β = √(524175/262144) = 1.41406: 725/β = 512.7 → 512, 723/β = 511.3 → 480 →
         * 240 text tokens against 256 features: transformers itself fails */
        { "725×723 min_tiles 1", 1, 10, 1, 1, 64, 256, 2.0f, 725, 723, 0 },
        /* tolerance 1.5: 640² = 409600 > 393216 tiles; 2×2 (exact aspect) + 512² thumb */
        { "640² tol 1.5", 2, 10, 1, 1, 64, 256, 1.5f, 640, 640, 1, 1, 2, 2, 512, 512, 1280 },
        { "640² tol 2.0", 2, 10, 1, 1, 64, 256, 2.0f, 640, 640, 1, 0, 0, 0, 512, 512, 256 },
        /* tol 1.5, min_tiles 1: 1×1 and 640/1.25 = 512: consistent, the 512² image */
        { "640² tol 1.5 min 1", 1, 10, 1, 1, 64, 256, 1.5f, 640, 640, 1, 0, 0, 0, 512, 512, 256 },
        /* tol 1.5, min_tiles 1, 600×700: 608·704 > 393216 tiles, 1×1 wins (area 420000 ≤
         * 524288 against the tying 2×2); β = √(420000/262144) = 1.26577 → 448×544 = 238 */
        { "600×700 tol 1.5 min 1", 1, 10, 1, 1, 64, 256, 1.5f, 600, 700, 0 },
        /* 800×600 at 1.5: 800·608 = 486400 > 393216; aspect 4/3 closest to 3×2 (0.167);
         * thumb β = √(480000/262144) = 1.35317 → 576×416 = 234 → 6·256 + 234 */
        { "800×600 tol 1.5", 2, 10, 1, 1, 64, 256, 1.5f, 800, 600, 1, 1, 3, 2, 576, 416, 1770 },
        { "800×600 tol 2.0", 2, 10, 1, 1, 64, 256, 2.0f, 800, 600, 1, 0, 0, 0, 576, 416, 234 },
        /* 1920×1080: (2,1) and (4,2) tie at 0.222; 2073600 > ½·8·512² → 4×2; thumb
         * β = 2.8125 → 672×384 = 252 → 2300; without the thumbnail 2048 */
        { "1080p", 2, 10, 1, 1, 64, 256, 2.0f, 1920, 1080, 1, 1, 4, 2, 672, 384, 2300 },
        { "1080p no thumbnail", 2, 10, 0, 1, 64, 256, 2.0f, 1920, 1080, 1, 1, 4, 2, 0, 0, 2048 },
        { "1080p no splitting", 2, 10, 1, 0, 64, 256, 2.0f, 1920, 1080, 1, 0, 0, 0, 672, 384, 252 },
        /* max_tiles 4: (4,2) is out, (2,1) stays: 2·256 + 252 */
        { "1080p max_tiles 4", 2, 4, 1, 1, 64, 256, 2.0f, 1920, 1080, 1, 1, 2, 1, 672, 384, 764 },
        /* min_tiles = max_tiles = 1 is "no splitting" in transformers */
        { "1080p tiles 1..1", 1, 1, 1, 1, 64, 256, 2.0f, 1920, 1080, 1, 0, 0, 0, 672, 384, 252 },
        /* 720p: (2,1) (921600 ≤ ½·8·512² keeps it over (4,2)); β = 1.875 → 672×384 */
        { "720p", 2, 10, 1, 1, 64, 256, 2.0f, 1280, 720, 1, 1, 2, 1, 672, 384, 764 },
        /* max_image_tokens 64: 1024² > 64·1024·2 tiles 2×2; the thumb's budget is 65536 px:
         * β = 4 → 256² = 64 tokens; tiles stay 256 tokens each */
        { "1024² max 64 tokens", 2, 10, 1, 1, 16, 64, 2.0f, 1024, 1024, 1, 1, 2, 2, 256, 256, 1088 },
        /* min_image_tokens 100: 100² → below 102400 px: β = √(102400/10000) = 3.2 → 320² */
        { "100² min 100 tokens", 2, 10, 1, 1, 100, 256, 2.0f, 100, 100, 1, 0, 0, 0, 320, 320, 100 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct setting_case *c = &cases[i];
        struct lfm2_vision_params p = params(HF);
        p.min_tiles = c->min_tiles;
        p.max_tiles = c->max_tiles;
        p.use_thumbnail = c->use_thumbnail;
        p.do_tiling = c->do_tiling;
        p.min_image_tokens = c->min_tok;
        p.max_image_tokens = c->max_tok;
        p.max_pixels_tolerance = c->tol;
        struct lfm2_vision_plan pl;
        const int r = lfm2_vision_make_plan(&p, 16, 2, c->w, c->h, &pl);
        if (!c->ok) {
            CHECK(r < 0, "%s: accepted (%d tokens)", c->what, pl.n_tokens);
            CHECK(strstr(lfm2_last_error(), "transformers") && strstr(lfm2_last_error(), "min_tiles"),
                  "%s: error does not explain: %s", c->what, lfm2_last_error());
            continue;
        }
        CHECK(r == 0, "%s: %s", c->what, lfm2_last_error());
        if (r)
            continue;
        CHECK(pl.tiled == (bool)c->tiled && pl.n_cols == c->gc && pl.n_rows == c->gr,
              "%s: tiled %d grid %d×%d", c->what, pl.tiled, pl.n_cols, pl.n_rows);
        CHECK(c->tw ? pl.has_thumb && pl.thumb_w == c->tw && pl.thumb_h == c->th : !pl.has_thumb,
              "%s: thumbnail %d %d×%d", c->what, pl.has_thumb, pl.thumb_w, pl.thumb_h);
        CHECK(pl.n_tokens == c->n, "%s: %d tokens, expected %d", c->what, pl.n_tokens, c->n);
        /* layout: start + one marker per tile + thumbnail marker when tiled with one + end */
        const int markers = 2 + pl.n_cols * pl.n_rows + (pl.tiled && pl.has_thumb);
        CHECK(pl.n_layout == c->n + markers, "%s: layout %d", c->what, pl.n_layout);
    }

    /* resample: the plan carries the filter; AUTO is bilinear; llamacpp mode is mtmd's */
    struct lfm2_vision_params p = params(HF);
    struct lfm2_vision_plan pl;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 640, 480, &pl) == 0 &&
              pl.resample == LFM2_VISION_RESAMPLE_BILINEAR, "auto → bilinear");
    p.resample = LFM2_VISION_RESAMPLE_BICUBIC;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 640, 480, &pl) == 0 &&
              pl.resample == LFM2_VISION_RESAMPLE_BICUBIC, "bicubic kept");
    p.preprocess = LL;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 640, 480, &pl) == 0 &&
              pl.resample == LFM2_VISION_RESAMPLE_BILINEAR, "llamacpp ignores resample");
    p = params(HF);
    p.resample = (enum lfm2_vision_resample)1;   /* PIL LANCZOS */
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 640, 480, &pl) < 0 &&
              strstr(lfm2_last_error(), "resample"), "lanczos accepted");
    CHECK(lfm2_vision_resample_from_name("bicubic") == 3 && lfm2_vision_resample_from_name("x") < 0 &&
              !strcmp(lfm2_vision_resample_name(LFM2_VISION_RESAMPLE_BILINEAR), "bilinear"),
          "resample names");
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

/* Pillow's filters written out again, in double and without fixed point: the independent
 * reference. Triangle for bilinear; for bicubic the cubic convolution kernel with a = -0.5
 * in its piecewise form |t|³(a+2) − |t|²(a+3) + 1 and a(|t|³ − 5|t|² + 8|t| − 4). */
static double ref_kernel(int bicubic, double t, double *support)
{
    t = fabs(t);
    if (!bicubic) {
        *support = 1;
        return t < 1 ? 1 - t : 0;
    }
    *support = 2;
    const double a = -0.5, t2 = t * t, t3 = t2 * t;
    if (t < 1)
        return (a + 2) * t3 - (a + 3) * t2 + 1;
    if (t < 2)
        return a * (t3 - 5 * t2 + 8 * t - 4);
    return 0;
}

/* One axis: every input weighted by the kernel at its distance from output i's centre
 * (scaled by the shrink factor; zero outside the support), the weights divided out. */
static void ref_aa_axis(int bicubic, const double *in, int n_in, int stride_in, double *out,
                        int n_out, int stride_out, int count, int step_in, int step_out)
{
    const double scale = (double)n_in / n_out, fs = scale > 1 ? scale : 1;
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n_out; i++) {
            const double c = (i + 0.5) * scale;
            double acc = 0, ws = 0, support;
            for (int j = 0; j < n_in; j++) {
                const double w = ref_kernel(bicubic, (j + 0.5 - c) / fs, &support);
                acc += w * in[k * step_in + j * stride_in];
                ws += w;
            }
            out[k * step_out + i * stride_out] = acc / ws;
        }
}

static double round_clamp8(double v)
{
    v = floor(v + 0.5);
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* The whole 2-D resize in double: horizontal pass rounded and clamped to 8 bits (Pillow
 * keeps an 8-bit intermediate image), then the vertical pass. */
static void ref_resize(int bicubic, const uint8_t *s, int sw, int sh, int dw, int dh, double *fo)
{
    double *fin = malloc(sizeof(double) * sw * sh * 3), *mid = malloc(sizeof(double) * dw * sh * 3);
    for (int i = 0; i < sw * sh * 3; i++)
        fin[i] = s[i];
    if (dw != sw) {
        for (int c = 0; c < 3; c++)
            ref_aa_axis(bicubic, fin + c, sw, 3, mid + c, dw, 3, sh, sw * 3, dw * 3);
        for (int i = 0; i < dw * sh * 3; i++)
            mid[i] = round_clamp8(mid[i]);
    } else {
        memcpy(mid, fin, sizeof(double) * sw * sh * 3);
    }
    if (dh != sh) {
        for (int c = 0; c < 3; c++)
            ref_aa_axis(bicubic, mid + c, sh, dw * 3, fo + c, dh, dw * 3, dw, 3, 3);
        for (int i = 0; i < dw * dh * 3; i++)
            fo[i] = round_clamp8(fo[i]);
    } else {
        memcpy(fo, mid, sizeof(double) * dw * dh * 3);
    }
    free(fin);
    free(mid);
}

#define BL LFM2_VISION_RESAMPLE_BILINEAR
#define BC LFM2_VISION_RESAMPLE_BICUBIC

static void test_pil_resize(void)
{
    /* bilinear 2:1 shrink of a ramp: weights 1/8, 3/8, 3/8, 1/8 (renormalized at the ends) */
    uint8_t src[8 * 3], dst[8 * 3];
    const int ramp[8] = { 0, 16, 32, 48, 64, 80, 96, 255 };
    for (int i = 0; i < 8; i++)
        src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = (uint8_t)ramp[i];
    lfm2_vision_resize_pil(BL, src, 8, 1, 24, dst, 4, 1, 12, NULL);
    /* out0: (0·3 + 16·3 + 32·1)/7 = 11.43 → 11; out1: (0+48+96+48)/8 = 24 (16·1+32·3+48·3+64·1)/8
     * = 40; out2 = 72; out3: (80·1 + 96·3 + 255·3)/7 = 161.9 → 162 */
    CHECK(dst[0] == 11 && dst[3] == 40 && dst[6] == 72 && dst[9] == 162,
          "ramp 8→4: %d %d %d %d", dst[0], dst[3], dst[6], dst[9]);

    /* bicubic 2× enlargement of a step 0 0 255 255 (support 2, centres (i+½)/2):
     * out3 (centre 1.75) weights −0.0703125, 0.8671875, 0.2265625, −0.0234375 (sum 1):
     *   255·(0.2265625 − 0.0234375) = 51.8 → 52 (fixed point 219348992 >> 22 = 52);
     * out4 mirrors it: 203; out1/out2 undershoot (−5.6, −17.5) and out5 overshoots (272.5):
     * clamped to 0 and 255 */
    const int step[4] = { 0, 0, 255, 255 };
    for (int i = 0; i < 4; i++)
        src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = (uint8_t)step[i];
    lfm2_vision_resize_pil(BC, src, 4, 1, 12, dst, 8, 1, 24, NULL);
    const int want[8] = { 0, 0, 0, 52, 203, 255, 255, 255 };
    bool ok = true;
    for (int i = 0; i < 8; i++)
        ok &= dst[3 * i] == want[i] && dst[3 * i + 2] == want[i];
    CHECK(ok, "bicubic step 4→8: %d %d %d %d %d %d %d %d", dst[0], dst[3], dst[6], dst[9],
          dst[12], dst[15], dst[18], dst[21]);

    /* constant stays constant (both filters' weights sum to one) */
    uint8_t *s = malloc(97 * 61 * 3), *d = malloc(300 * 300 * 3);
    memset(s, 77, 97 * 61 * 3);
    for (int f = 0; f < 2; f++) {
        lfm2_vision_resize_pil(f ? BC : BL, s, 97, 61, 97 * 3, d, 31, 200, 31 * 3, NULL);
        bool flat = true;
        for (int i = 0; i < 31 * 200 * 3; i++)
            flat &= d[i] == 77;
        CHECK(flat, "constant picture changed (%s)", f ? "bicubic" : "bilinear");
    }

    /* random pictures against the double reference: the fixed-point weights may move a sum
     * across a rounding boundary (exact halves are common when enlarging), so at most one
     * level apart, in at most 2 % of the values */
    const int sw = 97, sh = 61;
    for (int i = 0; i < sw * sh * 3; i++)
        s[i] = rnd8();
    const int sizes[][2] = { { 31, 20 }, { 200, 150 }, { 97, 20 }, { 40, 61 }, { 13, 300 },
                             { 512, 512 }, { 96, 60 } };
    for (int f = 0; f < 2; f++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            const int dw = sizes[k][0], dh = sizes[k][1];
            double *fo = malloc(sizeof(double) * dw * dh * 3);
            uint8_t *o = malloc((size_t)dw * dh * 3), *o2 = malloc((size_t)dw * dh * 3);
            ref_resize(f, s, sw, sh, dw, dh, fo);
            lfm2_vision_resize_pil(f ? BC : BL, s, sw, sh, sw * 3, o, dw, dh, dw * 3, NULL);
            int maxd = 0, n_off = 0;
            for (int i = 0; i < dw * dh * 3; i++) {
                const int dd = abs((int)fo[i] - o[i]);
                maxd = dd > maxd ? dd : maxd;
                n_off += dd != 0;
            }
            CHECK(maxd <= 1 && n_off * 50 <= dw * dh * 3,
                  "%s %d×%d → %d×%d: max diff %d, %d of %d values off",
                  f ? "bicubic" : "bilinear", sw, sh, dw, dh, maxd, n_off, dw * dh * 3);
            /* caller-provided scratch gives the same pixels */
            void *tmp = malloc(lfm2_vision_resize_pil_tmp_size(f ? BC : BL, sw, sh, dw, dh));
            lfm2_vision_resize_pil(f ? BC : BL, s, sw, sh, sw * 3, o2, dw, dh, dw * 3, tmp);
            CHECK(memcmp(o, o2, (size_t)dw * dh * 3) == 0, "scratch changes the result");
            free(tmp);
            free(o);
            free(o2);
            free(fo);
        }
    free(s);
    free(d);
}

/* Pillow 9.4's own Image.resize output (tests/data/vision/pil, made by make-pil-fixtures.py
 * from the same formula picture): byte for byte. */
static void test_pil_fixture(void)
{
    const int W = 97, H = 61;
    const int sizes[][2] = { { 31, 20 }, { 150, 90 }, { 40, 61 }, { 13, 120 }, { 97, 30 },
                             { 200, 13 } };
    uint8_t *s = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                s[(y * W + x) * 3 + c] =
                    (uint8_t)((x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 13 + (x ^ y) * 5) % 256);
    for (int f = 0; f < 2; f++) {
        char rel[64];
        snprintf(rel, sizeof rel, "vision/pil/pil-%s.rgb", f ? "bicubic" : "bilinear");
        size_t len = 0;
        uint8_t *ref = vt_read(vt_data(rel), &len);
        CHECK(ref != NULL, "%s missing", rel);
        if (!ref)
            continue;
        size_t off = 0;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            const int dw = sizes[k][0], dh = sizes[k][1];
            const size_t n = (size_t)dw * dh * 3;
            uint8_t *o = malloc(n);
            CHECK(off + n <= len, "%s too short", rel);
            if (off + n > len) {
                free(o);
                break;
            }
            lfm2_vision_resize_pil(f ? BC : BL, s, W, H, W * 3, o, dw, dh, dw * 3, NULL);
            size_t n_diff = 0;
            for (size_t i = 0; i < n; i++)
                n_diff += o[i] != ref[off + i];
            CHECK(n_diff == 0, "%s %d×%d → %d×%d: %zu of %zu bytes differ from Pillow",
                  f ? "bicubic" : "bilinear", W, H, dw, dh, n_diff, n);
            off += n;
            free(o);
        }
        free(ref);
    }
    free(s);
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
    test_settings();
    test_bilinear_mtmd();
    test_pil_resize();
    test_pil_fixture();
    test_fixture_plans();
    return vt_finish("test-preprocess");
}
