/* test-embed.c — image embeddings and token layout against llama.cpp mtmd's fixtures
 * (tests/data/vision/test-WxH: embd.f32, mtmd.json), in LLAMACPP mode:
 *   - PNG and PPM decode to the same pixels;
 *   - the token sequence around the image (text ids, markers, rows) equals mtmd's;
 *   - every embedding within the fixture README §6.4 tolerance: max |Δ| ≤ 2e-3 and
 *     mean |Δ| < 2e-4;
 * and the OFFICIAL mode on a picture both modes leave unresized runs the same network. */
#include <json-glib/json-glib.h>
#include <limits.h>
#include <math.h>

#include "lfm2-vision.h"
#include "vtest.h"

#define MAX_ABS_TOL 2e-3
#define MEAN_ABS_TOL 2e-4

static const char *const images[] = { "test-64x48", "test-256x256", "test-320x224",
                                      "test-37x300", "test-1100x500" };

static void compare(const char *what, const float *got, const float *ref, size_t n,
                    double max_tol, double mean_tol)
{
    double maxd = 0, sum = 0;
    size_t at = 0;
    bool finite = true;
    for (size_t i = 0; i < n; i++) {
        finite &= isfinite(got[i]);
        const double d = fabs((double)got[i] - ref[i]);
        if (d > maxd) {
            maxd = d;
            at = i;
        }
        sum += d;
    }
    const double mean = sum / (double)n;
    printf("  %-34s max |Δ| %.3g (at %zu: %.6f vs %.6f), mean |Δ| %.3g\n", what, maxd, at,
           got[at], ref[at], mean);
    CHECK(finite, "%s: non-finite output", what);
    CHECK(maxd <= max_tol, "%s: max |Δ| %.3g > %.3g", what, maxd, max_tol);
    CHECK(mean < mean_tol, "%s: mean |Δ| %.3g >= %.3g", what, mean, mean_tol);
}

/* mtmd.json "sequence" flattened: text ids as they are, image chunks as EMBD runs. */
static lfm2_token *expected_sequence(JsonObject *o, int32_t *n_out)
{
    JsonArray *seq = json_object_get_array_member(o, "sequence");
    int32_t n = 0, cap = 4096;
    lfm2_token *ids = malloc(sizeof *ids * cap);
    for (guint i = 0; i < json_array_get_length(seq); i++) {
        JsonObject *c = json_array_get_object_element(seq, i);
        if (!strcmp(json_object_get_string_member(c, "type"), "text")) {
            JsonArray *a = json_object_get_array_member(c, "ids");
            for (guint j = 0; j < json_array_get_length(a) && n < cap; j++)
                ids[n++] = (lfm2_token)json_array_get_int_element(a, j);
        } else {
            const int64_t k = json_object_get_int_member(c, "n_tokens");
            for (int64_t j = 0; j < k && n < cap; j++)
                ids[n++] = LFM2_VISION_EMBD;
        }
    }
    *n_out = n;
    return ids;
}

static void test_image(lfm2_vision *v, lfm2_vision *v_off, const lfm2_model *text,
                       const char *name)
{
    char rel[256];
    printf("%s\n", name);
    snprintf(rel, sizeof rel, "vision/%s/mtmd.json", name);
    JsonParser *jp = json_parser_new();
    GError *err = NULL;
    if (!json_parser_load_from_file(jp, vt_data(rel), &err)) {
        CHECK(0, "%s: %s", rel, err->message);
        g_error_free(err);
        g_object_unref(jp);
        return;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(jp));

    /* pixels: PNG and PPM decode identically */
    struct lfm2_vision_image png, ppm;
    snprintf(rel, sizeof rel, "vision/images/%s.png", name);
    int r1 = lfm2_vision_image_load(vt_data(rel), &png);
    CHECK(r1 == 0, "%s", lfm2_last_error());
    snprintf(rel, sizeof rel, "vision/images/%s.ppm", name);
    int r2 = lfm2_vision_image_load(vt_data(rel), &ppm);
    CHECK(r2 == 0, "%s", lfm2_last_error());
    if (r1 || r2)
        goto out_json;
    JsonArray *sz = json_object_get_array_member(o, "size_wh");
    CHECK(png.width == json_array_get_int_element(sz, 0) &&
              png.height == json_array_get_int_element(sz, 1),
          "%s: decoded %d×%d", name, png.width, png.height);
    CHECK(png.width == ppm.width && png.height == ppm.height &&
              memcmp(png.data, ppm.data, (size_t)png.width * png.height * 3) == 0,
          "%s: PNG and PPM pixels differ", name);

    /* token sequence around the image */
    struct lfm2_vision_plan plan;
    CHECK(lfm2_vision_plan_image(v, ppm.width, ppm.height, &plan) == 0, "%s", lfm2_last_error());
    int32_t n_exp;
    lfm2_token *exp = expected_sequence(o, &n_exp);
    const char *prompt = json_object_get_string_member(o, "prompt");
    lfm2_token got_seq[4096];
    const int32_t n_got = lfm2_vision_tokenize(text, prompt, &plan, 1, got_seq, 4096);
    CHECK(n_got == n_exp, "%s: sequence has %d entries, mtmd %d (%s)", name, n_got, n_exp,
          n_got == INT32_MIN ? lfm2_last_error() : "");
    if (n_got == n_exp) {
        int first = -1;
        for (int32_t i = 0; i < n_got && first < 0; i++)
            if (got_seq[i] != exp[i])
                first = i;
        CHECK(first < 0, "%s: sequence differs at %d: %d vs mtmd %d", name, first,
              first >= 0 ? got_seq[first] : 0, first >= 0 ? exp[first] : 0);
    }
    /* the standalone layout is the image part of that sequence */
    lfm2_token lay[4096];
    const int32_t n_lay = lfm2_vision_layout(text, &plan, lay, 4096);
    CHECK(n_lay == plan.n_layout, "%s: layout %d entries, plan %d", name, n_lay, plan.n_layout);
    free(exp);

    /* embeddings */
    const int E = lfm2_vision_n_embd_out(v);
    JsonArray *shape = json_object_get_array_member(json_object_get_object_member(o, "embd"), "shape");
    const int64_t rows = json_array_get_int_element(shape, 0);
    CHECK(rows == plan.n_tokens && json_array_get_int_element(shape, 1) == E,
          "%s: fixture shape %lld×%lld, plan %d×%d", name, (long long)rows,
          (long long)json_array_get_int_element(shape, 1), plan.n_tokens, E);
    size_t len = 0;
    snprintf(rel, sizeof rel, "vision/%s/embd.f32", name);
    float *ref = vt_read(vt_data(rel), &len);
    CHECK(ref && len == (size_t)plan.n_tokens * E * sizeof(float), "%s: embd.f32 size %zu", name, len);
    float *got = malloc(sizeof(float) * (size_t)plan.n_tokens * E);
    if (ref && got && len == (size_t)plan.n_tokens * E * sizeof(float)) {
        const int n = lfm2_vision_encode(v, &ppm, &plan, got, (size_t)plan.n_tokens * E);
        CHECK(n == plan.n_tokens, "%s: encode gave %d (%s)", name, n, lfm2_last_error());
        if (n == plan.n_tokens) {
            compare("llamacpp mode vs mtmd", got, ref, (size_t)n * E, MAX_ABS_TOL, MEAN_ABS_TOL);
            /* chunk by chunk through the public single-chunk entry point gives the same */
            int row = 0;
            for (int i = 0; i < plan.n_chunks; i++) {
                int cw, ch, nt;
                lfm2_vision_plan_chunk(&plan, i, &cw, &ch, &nt, NULL, NULL);
                uint8_t *pix = malloc((size_t)cw * ch * 3);
                float *e = malloc(sizeof(float) * (size_t)nt * E);
                CHECK(lfm2_vision_chunk_pixels(v, &ppm, &plan, i, pix) == 0, "%s", lfm2_last_error());
                CHECK(lfm2_vision_encode_chunk(v, pix, cw, ch, (size_t)cw * 3, e, (size_t)nt * E) == nt,
                      "%s chunk %d: %s", name, i, lfm2_last_error());
                CHECK(memcmp(e, got + (size_t)row * E, sizeof(float) * (size_t)nt * E) == 0,
                      "%s chunk %d differs from the whole-image encode", name, i);
                row += nt;
                free(pix);
                free(e);
            }
        }
    }

    /* OFFICIAL mode: on a picture both modes pass through unresized (256×256), the only
     * differences are numerics (no fp16 patch conv, float GELU, erf GELU in the projector),
     * so it must stay near mtmd — a check that it runs the same network, not a parity
     * tolerance. */
    if (v_off && ppm.width == 256 && ppm.height == 256 && ref) {
        struct lfm2_vision_plan po;
        CHECK(lfm2_vision_plan_image(v_off, 256, 256, &po) == 0 && po.n_tokens == plan.n_tokens,
              "official plan of 256×256");
        float *off = malloc(sizeof(float) * (size_t)po.n_tokens * E);
        CHECK(lfm2_vision_encode(v_off, &ppm, &po, off, (size_t)po.n_tokens * E) == po.n_tokens,
              "%s", lfm2_last_error());
        compare("official mode vs mtmd (numerics)", off, ref, (size_t)po.n_tokens * E, 2e-2, 2e-3);
        free(off);
    }
    free(got);
    free(ref);
out_json:
    lfm2_vision_image_free(&png);
    lfm2_vision_image_free(&ppm);
    g_object_unref(jp);
}

int main(void)
{
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    vp.preprocess = LFM2_VISION_PREPROCESS_LLAMACPP;
    vp.n_threads = 2;
    lfm2_vision *v = lfm2_vision_load(vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf"), vp);
    CHECK(v != NULL, "load: %s", lfm2_last_error());
    struct lfm2_model_params mp = lfm2_model_default_params();
    lfm2_model *text = lfm2_model_load(vt_data("vision/lfm2-vl-tiny-text-q4_0.gguf"), mp);
    CHECK(text != NULL, "text model: %s", lfm2_last_error());
    if (!v || !text)
        return vt_finish("test-embed");
    CHECK(lfm2_vision_check_text_model(v, text) == 0, "%s", lfm2_last_error());
    /* the official context shares the llamacpp one's thread pool */
    struct lfm2_vision_params vo = lfm2_vision_default_params();
    vo.pool = lfm2_vision_pool(v);
    lfm2_vision *v_off = lfm2_vision_load(vt_data("vision/lfm2-vl-tiny-mmproj-f32.gguf"), vo);
    CHECK(v_off != NULL, "load official: %s", lfm2_last_error());

    const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams(v);
    CHECK(hp->n_embd == 64 && hp->n_layer == 2 && hp->n_head == 2 && hp->n_ff == 128 &&
              hp->patch_size == 16 && hp->merge == 2 && hp->n_pos_side == 16 &&
              hp->n_proj_hidden == 128 && hp->n_embd_out == 128 && hp->has_input_norm,
          "hparams %s", lfm2_vision_desc(v));

    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        test_image(v, v_off, text, images[i]);

    lfm2_vision_free(v_off);
    lfm2_vision_free(v);
    lfm2_model_free(text);
    return vt_finish("test-embed");
}
