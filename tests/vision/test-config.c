/* test-config.c — Hugging Face processor configs read into lfm2_vision_params: the flat
 * (LFM2-VL-450M's processor_config.json) and nested ("image_processor") layouts, a model
 * directory with both files, unknown and null fields, every bad value naming the file and
 * the field, invalid JSON naming the line, and the patch/merge check against an mmproj. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lfm2-vision.h"
#include "vtest.h"

static char dir[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ & 7];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    return p;
}

/* reads `text` as a config over the defaults; returns the result, *p and *info filled */
static int read_text(const char *text, struct lfm2_vision_params *p, struct lfm2_vision_config *info)
{
    *p = lfm2_vision_default_params();
    return lfm2_vision_read_config(write_file("c.json", text), p, info);
}

static void test_layouts(void)
{
    struct lfm2_vision_params p;
    struct lfm2_vision_config info;
    /* flat, as the first LFM2-VL-450M release (remote code) wrote it */
    int r = read_text("{\n  \"auto_map\": {\"AutoProcessor\": \"processing_lfm2_vl.Lfm2VlProcessor\"},\n"
                      "  \"do_image_splitting\": true, \"downsample_factor\": 2,\n"
                      "  \"encoder_patch_size\": 16, \"max_image_tokens\": 256,\n"
                      "  \"max_num_patches\": 1024, \"max_pixels_tolerance\": 2.0,\n"
                      "  \"max_tiles\": 10, \"min_image_tokens\": 64, \"min_tiles\": 2,\n"
                      "  \"processor_class\": \"Lfm2VlProcessor\", \"tile_size\": 512,\n"
                      "  \"use_image_special_tokens\": true, \"use_thumbnail\": false\n}\n",
                      &p, &info);
    CHECK(r == 0, "flat: %s", lfm2_last_error());
    CHECK(!p.use_thumbnail && p.do_tiling && p.min_tiles == 2 && p.max_tiles == 10 &&
              p.max_pixels_tolerance == 2.0f && p.min_image_tokens == 64 && p.max_image_tokens == 256,
          "flat values");
    CHECK(info.fields == (LFM2_VISION_CFG_DO_TILING | LFM2_VISION_CFG_USE_THUMBNAIL |
                          LFM2_VISION_CFG_MIN_TILES | LFM2_VISION_CFG_MAX_TILES |
                          LFM2_VISION_CFG_TOLERANCE | LFM2_VISION_CFG_MIN_IMAGE_TOKENS |
                          LFM2_VISION_CFG_MAX_IMAGE_TOKENS),
          "flat fields 0x%x", info.fields);
    CHECK(info.encoder_patch_size == 16 && info.downsample_factor == 2, "flat geometry");
    CHECK(p.resample == LFM2_VISION_RESAMPLE_AUTO, "no resample field: AUTO kept");

    /* nested under image_processor (newer processor_config.json); the nested value wins
     * over a top-level one; unknown fields, nulls, arrays and escapes are fine */
    r = read_text("{\"processor_class\": \"Lfm2VlProcessor\", \"min_tiles\": 4,\n"
                  " \"image_processor\": {\"image_processor_type\": \"Lfm2VlImageProcessorFast\",\n"
                  "   \"image_mean\": [0.5, 0.5, 0.5], \"size\": {\"height\": 512, \"width\": 512},\n"
                  "   \"min_tiles\": 1, \"max_tiles\": 6, \"max_pixels_tolerance\": 1.5,\n"
                  "   \"resample\": 3, \"use_thumbnail\": true, \"do_image_splitting\": false,\n"
                  "   \"max_image_tokens\": null, \"note\": \"a \\\"quoted\\\" \\u00e9 \\\\ string\",\n"
                  "   \"rescale_factor\": 0.00392156862745098, \"x\": -1.5e-3}}",
                  &p, &info);
    CHECK(r == 0, "nested: %s", lfm2_last_error());
    CHECK(p.min_tiles == 1 && p.max_tiles == 6 && fabsf(p.max_pixels_tolerance - 1.5f) < 1e-7f &&
              p.resample == LFM2_VISION_RESAMPLE_BICUBIC && p.use_thumbnail && !p.do_tiling &&
              p.max_image_tokens == 256,
          "nested values: min %d max %d tol %g resample %d", p.min_tiles, p.max_tiles,
          (double)p.max_pixels_tolerance, p.resample);
    CHECK(!(info.fields & LFM2_VISION_CFG_MAX_IMAGE_TOKENS) && info.fields & LFM2_VISION_CFG_RESAMPLE,
          "null is not a setting: 0x%x", info.fields);

    /* a model directory: preprocessor_config.json (resample, budget) then
     * processor_config.json over it */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/model", dir);
    mkdir(sub, 0700);
    write_file("model/preprocessor_config.json",
               "{\"image_processor_type\": \"Lfm2VlImageProcessorFast\", \"resample\": 3,"
               " \"max_image_tokens\": 128, \"max_pixels_tolerance\": 1.5}");
    write_file("model/processor_config.json",
               "{\"processor_class\": \"Lfm2VlProcessor\", \"max_pixels_tolerance\": 2.0,"
               " \"use_thumbnail\": false}");
    p = lfm2_vision_default_params();
    r = lfm2_vision_read_config(sub, &p, &info);
    CHECK(r == 0, "directory: %s", lfm2_last_error());
    CHECK(p.resample == LFM2_VISION_RESAMPLE_BICUBIC && p.max_image_tokens == 128 &&
              p.max_pixels_tolerance == 2.0f && !p.use_thumbnail,
          "directory merge: resample %d tokens %d tol %g thumb %d", p.resample,
          p.max_image_tokens, (double)p.max_pixels_tolerance, p.use_thumbnail);

    /* explicit settings go on top of the file (what the CLI and the elements do) */
    p = lfm2_vision_default_params();
    CHECK(lfm2_vision_read_config(sub, &p, &info) == 0, "directory again");
    p.max_pixels_tolerance = 1.5f;   /* --max-pixels-tolerance 1.5 */
    struct lfm2_vision_plan pl;
    CHECK(lfm2_vision_make_plan(&p, 16, 2, 640, 640, &pl) == 0 && pl.tiled && !pl.has_thumb &&
              pl.n_tokens == 1024, "config + override plan: %d tokens", pl.n_tokens);

    /* BOM, empty object */
    CHECK(read_text("\xEF\xBB\xBF{}", &p, &info) == 0 && info.fields == 0, "BOM + {}: %s",
          lfm2_last_error());
}

static void expect_error(const char *text, const char *field, const char *what)
{
    struct lfm2_vision_params p = lfm2_vision_default_params(), before = p;
    struct lfm2_vision_config info;
    const char *path = write_file("bad.json", text);
    p.min_tiles = 3;   /* a caller's setting must survive a failed read */
    before.min_tiles = 3;
    const int r = lfm2_vision_read_config(path, &p, &info);
    CHECK(r < 0, "%s: accepted", what);
    CHECK(strstr(lfm2_last_error(), path) != NULL, "%s: error does not name the file: %s", what,
          lfm2_last_error());
    CHECK(strstr(lfm2_last_error(), field) != NULL, "%s: error does not name '%s': %s", what,
          field, lfm2_last_error());
    CHECK(memcmp(&p, &before, sizeof p) == 0, "%s: parameters changed by a failed read", what);
}

static void test_errors(void)
{
    expect_error("{\"min_tiles\": 0}", "min_tiles", "min_tiles 0");
    expect_error("{\"min_tiles\": \"2\"}", "min_tiles", "min_tiles as a string");
    expect_error("{\"max_tiles\": 2.5}", "max_tiles", "fractional max_tiles");
    expect_error("{\"max_tiles\": 101}", "max_tiles", "max_tiles 101");
    expect_error("{\"max_pixels_tolerance\": -1}", "max_pixels_tolerance", "negative tolerance");
    expect_error("{\"max_pixels_tolerance\": \"2\"}", "max_pixels_tolerance", "tolerance string");
    expect_error("{\"resample\": 1}", "resample", "lanczos");
    expect_error("{\"resample\": \"bicubic\"}", "resample", "resample as a name");
    expect_error("{\"tile_size\": 384}", "tile_size", "tile 384");
    expect_error("{\"use_thumbnail\": 1}", "use_thumbnail", "use_thumbnail 1");
    expect_error("{\"do_image_splitting\": \"yes\"}", "do_image_splitting", "splitting string");
    expect_error("{\"min_image_tokens\": 0}", "min_image_tokens", "0 tokens");
    expect_error("{\"max_image_tokens\": 20000}", "max_image_tokens", "20000 tokens");
    expect_error("{\"min_tiles\": 5, \"max_tiles\": 4}", "min_tiles", "min > max tiles");
    expect_error("{\"min_image_tokens\": 300, \"max_image_tokens\": 256}", "min_image_tokens",
                 "min > max tokens");
    expect_error("{\"image_processor\": {\"min_tiles\": -2}}", "min_tiles", "nested bad value");
    /* invalid JSON: the line */
    expect_error("{\n  \"min_tiles\": 2,\n  \"max_tiles\": 10\n", "line 4", "truncated");
    expect_error("{\n\n  \"min_tiles\" 2}", "line 3", "missing colon");
    expect_error("{\"a\": [1, 2,]}", "invalid JSON", "trailing comma");
    expect_error("{\"a\": 01}", "invalid JSON", "leading zero");
    expect_error("{\"a\": \"x\\q\"}", "invalid JSON", "bad escape");
    expect_error("{} {}", "invalid JSON", "two values");
    expect_error("[1, 2]", "not an object", "array");
    expect_error("", "invalid JSON", "empty file");
    {
        char deep[200];
        memset(deep, '[', 100);
        deep[100] = 0;
        expect_error(deep, "deep", "nested too deeply");
    }

    struct lfm2_vision_params p = lfm2_vision_default_params();
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    CHECK(lfm2_vision_read_config(missing, &p, NULL) < 0 && strstr(lfm2_last_error(), "nope.json"),
          "missing file: %s", lfm2_last_error());
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    mkdir(empty, 0700);
    CHECK(lfm2_vision_read_config(empty, &p, NULL) < 0 &&
              strstr(lfm2_last_error(), "processor_config.json"),
          "empty directory: %s", lfm2_last_error());
}

static void test_check_against_mmproj(void)
{
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    vp.n_threads = 1;
    const char *mm = vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf");
    lfm2_vision *v = lfm2_vision_load(mm, vp);
    CHECK(v != NULL, "load: %s", lfm2_last_error());
    if (!v)
        return;
    struct lfm2_vision_config info;
    struct lfm2_vision_params p;
    CHECK(read_text("{\"encoder_patch_size\": 16, \"downsample_factor\": 2}", &p, &info) == 0 &&
              lfm2_vision_check_config(v, "c.json", &info) == 0, "matching geometry: %s",
          lfm2_last_error());
    CHECK(read_text("{\"encoder_patch_size\": 14}", &p, &info) == 0 &&
              lfm2_vision_check_config(v, "c.json", &info) < 0 &&
              strstr(lfm2_last_error(), "encoder_patch_size") && strstr(lfm2_last_error(), "c.json"),
          "patch 14: %s", lfm2_last_error());
    CHECK(read_text("{\"downsample_factor\": 4}", &p, &info) == 0 &&
              lfm2_vision_check_config(v, "c.json", &info) < 0 &&
              strstr(lfm2_last_error(), "downsample_factor"), "merge 4: %s", lfm2_last_error());
    lfm2_vision_free(v);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", "/tmp/lfm2-config-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_layouts();
    test_errors();
    test_check_against_mmproj();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return vt_finish("test-config");
}
