/* fuzz-mmproj — lfm2_vision_load on an mmproj file made from the input (the SigLIP2 encoder
 * and projector hyperparameters, tensor shapes and types, the weight preparation), then what
 * lfm2vl does with a projector that loaded: check it against the LFM2-VL text model of
 * tests/data, plan a small picture, encode it, lay out its tokens.
 *
 * Input: as fuzz-model (fuzz-gguf-file.h): a file's beginning and its full length. Seeds: the
 * header of tests/data/vision's mmproj. A small token budget (1..4 image tokens) keeps the
 * encode cheap whatever the file claims. */
#include "fuzz-common.h"
#include "fuzz-gguf-file.h"
#include "lfm2-vision.h"

static lfm2_model *text_model;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    text_model = fuzz_load_model("vision/lfm2-vl-tiny-text-q4_0.gguf");
    lfm2_vision_quiet_ffmpeg_log();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_gguf_file(data, size, path, sizeof path);
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    vp.n_threads = 1;
    vp.min_image_tokens = 1;
    vp.max_image_tokens = 4;
    vp.do_tiling = false;

    lfm2_clear_error();
    lfm2_vision *v = lfm2_vision_load(path, vp);
    if (!v) {
        fuzz_check_error("lfm2_vision_load", path);
        close(fd);
        return 0;
    }
    const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams(v);
    FUZZ_ASSERT(hp->patch_size > 0 && hp->merge > 0 && hp->n_embd > 0 && hp->n_layer > 0,
                "hparams");
    FUZZ_ASSERT(lfm2_vision_n_embd_out(v) == hp->n_embd_out && hp->n_embd_out > 0, "n_embd_out");
    FUZZ_ASSERT(lfm2_vision_desc(v) != NULL, "desc");
    lfm2_clear_error();
    if (lfm2_vision_check_text_model(v, text_model) != 0)
        fuzz_check_error("lfm2_vision_check_text_model", path);

    /* a 40×24 picture of stripes */
    enum { W = 40, H = 24 };
    static uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)(i * 7);
    struct lfm2_vision_image img = { W, H, W * 3, rgb };
    struct lfm2_vision_plan plan;
    lfm2_clear_error();
    if (lfm2_vision_plan_image(v, W, H, &plan) == 0) {
        FUZZ_ASSERT(plan.n_tokens >= 1 && plan.n_tokens <= 4 * 4, "plan of %d tokens",
                    plan.n_tokens);
        const size_t cap = (size_t)plan.n_tokens * (size_t)hp->n_embd_out;
        float *out = malloc(cap * sizeof *out);
        if (!out)
            abort();
        lfm2_clear_error();
        int rows = lfm2_vision_encode(v, &img, &plan, out, cap);
        if (rows < 0)
            fuzz_check_error("lfm2_vision_encode", NULL);
        else
            FUZZ_ASSERT(rows == plan.n_tokens, "encode gave %d rows for %d tokens", rows,
                        plan.n_tokens);
        free(out);
        lfm2_token layout[64];
        int32_t n = lfm2_vision_layout(text_model, &plan, layout, 64);
        FUZZ_ASSERT(n == plan.n_layout || n == INT32_MIN, "layout %d, plan %d", n,
                    plan.n_layout);
    } else {
        fuzz_check_error("lfm2_vision_plan_image", NULL);
    }
    lfm2_vision_free(v);
    close(fd);
    return 0;
}
