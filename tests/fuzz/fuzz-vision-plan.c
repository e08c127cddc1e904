/* fuzz-vision-plan — from a picture's size to its embedding rows: the preprocessing plan
 * (smart resize, tiling grid, thumbnail) for any parameters and any size, its chunks, the
 * token layout and the prompt tokenization around it (lfm2_vision_layout,
 * lfm2_vision_tokenize, lfm2_vision_chat_prompt), the pixels of each chunk for small pictures
 * (resizing, letterbox, tiles), and the two resamplers on arbitrary sizes.
 *
 * Input: a flag byte (bits 0-1 preprocess mode, 2 tiling, 3 thumbnail, 4 a sensible
 * tolerance, 5 and 6 patch size and merge from the input, 7 the pixel check), the token and
 * tile limits, the tolerance as raw float bits, patch size and merge, width and height, a
 * prompt; then a small picture's size, which of three loaded contexts plans it (official
 * defaults; official and llama.cpp with a 4..16-token budget and up to 2 tiles, so small
 * pictures are tiled), and its pixels (repeated to fill the picture); then the resampler
 * sizes.
 *
 * Checked: an accepted plan adds up — chunks = tiles (+ thumbnail), tokens = the chunks'
 * tokens, every chunk a multiple of patch·merge, the letterbox inside the canvas, the layout
 * exactly n_layout entries with n_tokens embedding slots; the pixel and resize calls stay in
 * their buffers. A refused plan has a message. */
#include "fuzz-common.h"
#include "lfm2-vision.h"

#define MAX_PIXELS (128 * 128)

static lfm2_model *text_model;
static lfm2_vision *vctx[3];   /* official defaults; official, small budget; llama.cpp, small budget */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    text_model = fuzz_load_model("vision/lfm2-vl-tiny-text-q4_0.gguf");
    char *mmproj = fuzz_data_path("vision/lfm2-vl-tiny-mmproj-f32.gguf");
    for (int i = 0; i < 3; i++) {
        struct lfm2_vision_params vp = lfm2_vision_default_params();
        vp.n_threads = 1;
        if (i > 0) {
            /* tiles for pictures larger than 16 tokens' worth, so small inputs reach them */
            vp.min_image_tokens = 4;
            vp.max_image_tokens = 16;
            vp.min_tiles = 1;
            vp.max_tiles = 2;
            vp.max_pixels_tolerance = 1.0f;
            vp.preprocess = i == 2 ? LFM2_VISION_PREPROCESS_LLAMACPP : LFM2_VISION_PREPROCESS_OFFICIAL;
        }
        vctx[i] = lfm2_vision_load(mmproj, vp);
        FUZZ_ASSERT(vctx[i] != NULL, "%s: %s", mmproj, lfm2_last_error());
    }
    free(mmproj);
    return 0;
}

static void check_plan(const struct lfm2_vision_plan *p)
{
    const int align = p->patch_size * p->merge;
    const int n_tiles = p->n_cols * p->n_rows;
    FUZZ_ASSERT(p->tiled == (n_tiles > 0), "tiled %d with %d tiles", p->tiled, n_tiles);
    FUZZ_ASSERT(p->n_chunks == n_tiles + (p->has_thumb ? 1 : 0), "%d chunks", p->n_chunks);
    FUZZ_ASSERT(p->n_chunks >= 1, "no chunk");
    int64_t tokens = 0;
    for (int i = 0; i < p->n_chunks; i++) {
        int w, h, nt, row, col;
        FUZZ_ASSERT(lfm2_vision_plan_chunk(p, i, &w, &h, &nt, &row, &col) == 0, "chunk %d", i);
        FUZZ_ASSERT(w > 0 && h > 0 && w % align == 0 && h % align == 0,
                    "chunk %d is %d×%d, align %d", i, w, h, align);
        FUZZ_ASSERT((int64_t)(w / align) * (h / align) == nt, "chunk %d: %d tokens for %d×%d",
                    i, nt, w, h);
        FUZZ_ASSERT(i < n_tiles ? row == i / p->n_cols + 1 && col == i % p->n_cols + 1
                                : row == 0 && col == 0,
                    "chunk %d at row %d col %d", i, row, col);
        tokens += nt;
    }
    FUZZ_ASSERT(lfm2_vision_plan_chunk(p, p->n_chunks, NULL, NULL, NULL, NULL, NULL) != 0 &&
                    lfm2_vision_plan_chunk(p, -1, NULL, NULL, NULL, NULL, NULL) != 0,
                "chunks out of range exist");
    FUZZ_ASSERT(tokens == p->n_tokens, "chunks hold %lld tokens, the plan says %d",
                (long long)tokens, p->n_tokens);
    if (p->tiled) {
        FUZZ_ASSERT(p->refined_w == p->n_cols * LFM2_VISION_TILE_SIZE &&
                        p->refined_h == p->n_rows * LFM2_VISION_TILE_SIZE,
                    "canvas %d×%d", p->refined_w, p->refined_h);
        FUZZ_ASSERT(p->content_w >= 1 && p->content_h >= 1 && p->content_x >= 0 &&
                        p->content_y >= 0 && p->content_x + p->content_w <= p->refined_w &&
                        p->content_y + p->content_h <= p->refined_h,
                    "content %d×%d at %d,%d outside the %d×%d canvas", p->content_w,
                    p->content_h, p->content_x, p->content_y, p->refined_w, p->refined_h);
    }
}

static void check_layout(const struct lfm2_vision_plan *p, const char *prompt)
{
    /* one entry per row and marker when the vocabulary has every tile marker (else a
     * marker is tokenized, which can take more) */
    bool single = true;
    for (int r = 1; r <= p->n_rows && single; r++)
        for (int c = 1; c <= p->n_cols && single; c++) {
            char marker[64];
            snprintf(marker, sizeof marker, "<|img_row_%d_col_%d|>", r, c);
            single = lfm2_token_lookup(text_model, marker) >= 0;
        }
    int32_t need = lfm2_vision_layout(text_model, p, NULL, 0);
    FUZZ_ASSERT(single ? need == -p->n_layout : need <= -p->n_layout,
                "layout needs %d, the plan says %d", -need, p->n_layout);
    need = -need;
    if (need > (1 << 20))
        return;
    lfm2_token *ids = malloc((size_t)need * sizeof *ids);
    if (!ids)
        abort();
    FUZZ_ASSERT(lfm2_vision_layout(text_model, p, ids, need) == need, "layout");
    int n_embd = 0;
    for (int i = 0; i < need; i++) {
        n_embd += ids[i] == LFM2_VISION_EMBD;
        FUZZ_ASSERT(ids[i] == LFM2_VISION_EMBD ||
                        (ids[i] >= 0 && ids[i] < lfm2_model_n_vocab(text_model)),
                    "layout id %d", ids[i]);
    }
    FUZZ_ASSERT(n_embd == p->n_tokens, "%d embedding slots for %d rows", n_embd, p->n_tokens);
    free(ids);

    /* the prompt around it: as many markers as plans, or an error */
    int n_markers = 0;
    for (const char *q = strstr(prompt, LFM2_VISION_MARKER); q;
         q = strstr(q + strlen(LFM2_VISION_MARKER), LFM2_VISION_MARKER))
        n_markers++;
    lfm2_clear_error();
    int32_t n = lfm2_vision_tokenize(text_model, prompt, p, 1, NULL, 0);
    if (n_markers == 1)
        FUZZ_ASSERT(n < 0 && n != INT32_MIN, "tokenize size query: %d (%s)", n,
                    lfm2_last_error());
    else
        FUZZ_ASSERT(n == INT32_MIN && *lfm2_last_error(), "%d markers accepted", n_markers);
    n = lfm2_vision_chat_prompt(text_model, n_markers ? NULL : "sys", prompt, p, NULL, 0);
    FUZZ_ASSERT(n != INT32_MIN || *lfm2_last_error(), "chat_prompt failed silently");
}

/* The pixels of every chunk of a small picture, through the context whose parameters made
 * the plan (lfm2_vision_plan_image). */
static void check_pixels(lfm2_vision *v, int w, int h, fuzz_input *in)
{
    struct lfm2_vision_plan p;
    if (lfm2_vision_plan_image(v, w, h, &p) != 0)
        return;
    check_plan(&p);
    const size_t stride = (size_t)w * 3 + (in->n & 7);   /* padded rows sometimes */
    uint8_t *rgb = malloc(stride * (size_t)h);
    if (!rgb)
        abort();
    for (size_t i = 0; i < stride * (size_t)h; i++)
        rgb[i] = in->n ? in->p[i % in->n] : (uint8_t)i;
    struct lfm2_vision_image img = { w, h, stride, rgb };
    for (int i = 0; i < p.n_chunks; i++) {
        int cw, ch;
        lfm2_vision_plan_chunk(&p, i, &cw, &ch, NULL, NULL, NULL);
        uint8_t *out = malloc((size_t)cw * ch * 3);
        if (!out)
            abort();
        FUZZ_ASSERT(lfm2_vision_chunk_pixels(v, &img, &p, i, out) == 0, "chunk %d: %s", i,
                    lfm2_last_error());
        free(out);
    }
    free(rgb);
}

static void check_resize(fuzz_input *in)
{
    const int sw = (int)fuzz_range(in, 1, 64), sh = (int)fuzz_range(in, 1, 64);
    const int dw = (int)fuzz_range(in, 1, 96), dh = (int)fuzz_range(in, 1, 96);
    uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)dw * dh * 3);
    if (!src || !dst)
        abort();
    for (size_t i = 0; i < (size_t)sw * sh * 3; i++)
        src[i] = in->n ? in->p[i % in->n] : (uint8_t)(i * 31);
    FUZZ_ASSERT(lfm2_vision_resize_bilinear_mtmd(src, sw, sh, (size_t)sw * 3, dst, dw, dh,
                                                 (size_t)dw * 3) == 0,
                "mtmd resize %dx%d → %dx%d", sw, sh, dw, dh);
    void *tmp = malloc(lfm2_vision_resize_aa_tmp_size(sw, sh, dw, dh) + 1);
    FUZZ_ASSERT(lfm2_vision_resize_bilinear_aa(src, sw, sh, (size_t)sw * 3, dst, dw, dh,
                                               (size_t)dw * 3, tmp) == 0,
                "aa resize %dx%d → %dx%d", sw, sh, dw, dh);
    free(tmp);
    free(src);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    const uint8_t flags = fuzz_u8(&in);
    vp.preprocess = (enum lfm2_vision_preprocess)(flags & 3);   /* 2, 3: out of range */
    vp.do_tiling = flags & 4;
    vp.use_thumbnail = flags & 8;
    vp.min_image_tokens = (int)fuzz_range(&in, -2, 17000);
    vp.max_image_tokens = (int)fuzz_range(&in, -2, 17000);
    vp.min_tiles = (int)fuzz_range(&in, -1, 110);
    vp.max_tiles = (int)fuzz_range(&in, -1, 110);
    const uint32_t tol_bits = fuzz_u32(&in);
    memcpy(&vp.max_pixels_tolerance, &tol_bits, sizeof tol_bits);
    if (flags & 16)   /* mostly sensible tolerances */
        vp.max_pixels_tolerance = (float)(tol_bits % 400) / 100.0f;
    const int patch = (flags & 32) ? (int)fuzz_range(&in, -1, 600) : 16;
    const int merge = (flags & 64) ? (int)fuzz_range(&in, -1, 40) : 2;
    const int w = (int)fuzz_range(&in, -1, 70000), h = (int)fuzz_range(&in, -1, 70000);
    char *prompt = fuzz_str(&in, 64, NULL);

    struct lfm2_vision_plan plan;
    lfm2_clear_error();
    if (lfm2_vision_make_plan(&vp, patch, merge, w, h, &plan) == 0) {
        check_plan(&plan);
        check_layout(&plan, prompt);
    } else {
        fuzz_check_error("lfm2_vision_make_plan", NULL);
    }
    free(prompt);

    /* pixels of a small picture, through one of the loaded contexts */
    const int pw = (int)fuzz_range(&in, 1, 200), ph = (int)fuzz_range(&in, 1, 200);
    if ((flags & 128) && (int64_t)pw * ph <= MAX_PIXELS)
        check_pixels(vctx[fuzz_u8(&in) % 3], pw, ph, &in);
    check_resize(&in);
    return 0;
}
