/* lfm2-vision.h — the LFM2-VL image path: mmproj GGUF loading, image preprocessing,
 * the SigLIP2 NaFlex encoder, the pixel-unshuffle projector and the layout of image
 * embeddings in the LFM2 token sequence.
 *
 * Flat C API in the style of whisper.cpp:
 *   lfm2_vision_params p = lfm2_vision_default_params();      edit, then
 *   lfm2_vision *v = lfm2_vision_load("mmproj.gguf", p);       matrices prepared once
 *   lfm2_vision_plan_image(v, w, h, &plan);                     token count, grid, sizes
 *   lfm2_vision_encode(v, &image, &plan, embd, n_floats);       [plan.n_tokens][n_embd]
 *   lfm2_vision_chat_prompt(text_model, NULL, "Describe.", &plan, ids, n_max);
 *   lfm2_vision_decode(ctx, ids, n_ids, embd, plan.n_tokens);   then sample as usual
 *
 * Two preprocessing modes (they differ in token counts and pixels; the network is the same,
 * only the rounding of a few steps differs):
 *   OFFICIAL (default): the Hugging Face transformers Lfm2VlImageProcessor — area-based
 *     tiling test, tiles stretched to the grid, Pillow's antialiased bilinear or bicubic
 *     resize (`resample`), Python rounding, thumbnail after the tiles per use_thumbnail;
 *     projector GELU exact (erf) as in Lfm2VlMultiModalProjector; plain float arithmetic.
 *     Every parameter of that processor is in lfm2_vision_params, and
 *     lfm2_vision_read_config() reads them from the model's processor config.
 *   LLAMACPP: what llama.cpp's mtmd (commit 22dc605) computes — per-side tiling test,
 *     letterboxed tiles, corner-aligned truncating bilinear, float32 rounding, thumbnail
 *     always (also before a single untiled image), fp16 patch convolution and ggml's fp16
 *     GELU table. The parity tests against mtmd's embeddings use this mode.
 *
 * Errors: functions return NULL or a negative value and leave a message in
 * lfm2_last_error() naming the file, the key or tensor and the reason.
 * A lfm2_vision is used by one thread at a time (it owns scratch buffers).
 */
#ifndef LFM2_VISION_H
#define LFM2_VISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2-ops.h"
#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what liblfm2-vision exports (built with -fvisibility=hidden, like liblfm2). */
#if defined(__GNUC__)
#define LFM2_VISION_API __attribute__((visibility("default")))
#else
#define LFM2_VISION_API
#endif

typedef struct lfm2_vision lfm2_vision;

enum lfm2_vision_preprocess {
    LFM2_VISION_PREPROCESS_OFFICIAL = 0,
    LFM2_VISION_PREPROCESS_LLAMACPP = 1,
};

/* "official" / "llamacpp" → mode; returns -1 for anything else. */
LFM2_VISION_API int lfm2_vision_preprocess_from_name(const char *name);
LFM2_VISION_API const char *lfm2_vision_preprocess_name(enum lfm2_vision_preprocess mode);

/* The resampling filter of the OFFICIAL mode, with Pillow's codes (the `resample` field of
 * a Hugging Face processor config). Both are Pillow's antialiased filters (ImagingResample:
 * support widened by the shrink factor, weights renormalized at the borders, 22-bit fixed
 * point, horizontal pass first). LLAMACPP mode always uses mtmd's bilinear. */
enum lfm2_vision_resample {
    LFM2_VISION_RESAMPLE_AUTO = 0,       /* the mmproj's clip.vision.image_resize_algo, else
                                            bilinear */
    LFM2_VISION_RESAMPLE_BILINEAR = 2,   /* PIL.Image.BILINEAR: triangle, support 1 */
    LFM2_VISION_RESAMPLE_BICUBIC = 3,    /* PIL.Image.BICUBIC: Keys cubic a = −0.5, support 2 */
};

/* "auto" / "bilinear" / "bicubic" → filter; -1 for anything else. */
LFM2_VISION_API int lfm2_vision_resample_from_name(const char *name);
LFM2_VISION_API const char *lfm2_vision_resample_name(enum lfm2_vision_resample r);

#define LFM2_VISION_TILE_SIZE 512          /* tiles are 512×512 pixels */
#define LFM2_VISION_MAX_SIDE 65535         /* largest accepted image side */

struct lfm2_vision_params {
    enum lfm2_vision_preprocess preprocess;   /* default OFFICIAL */
    int min_image_tokens;        /* 64: smallest single image / thumbnail, in output tokens */
    int max_image_tokens;        /* 256: largest single image / thumbnail */
    bool do_tiling;              /* true: split large images into 512² tiles */
    int min_tiles, max_tiles;    /* 2, 10: grid sizes considered */
    float max_pixels_tolerance;  /* 2.0: OFFICIAL tiles when the rounded area exceeds
                                    max_image_tokens·32²·tol; LLAMACPP when a side
                                    exceeds 512·tol (LFM2-VL-1.6B's processor uses 1.5) */
    bool use_thumbnail;          /* OFFICIAL: add the thumbnail after the tiles (true; the
                                    LFM2-VL-450M processor config says false). LLAMACPP
                                    always adds it. */
    enum lfm2_vision_resample resample;   /* OFFICIAL resampling filter (AUTO) */
    int n_threads;               /* 0 = number of cores; ignored when pool is set */
    lfm2_pool *pool;             /* borrow this thread pool (not freed; must outlive the
                                    vision context and not be used concurrently) */
    bool use_mmap;               /* true */
    bool verbose;                /* print load information to stderr */
};

LFM2_VISION_API struct lfm2_vision_params lfm2_vision_default_params(void);

/* Hyperparameters read from the mmproj file. */
struct lfm2_vision_hparams {
    char projector[16];   /* "lfm2" */
    int patch_size;       /* 16 */
    int n_embd;           /* encoder width D */
    int n_ff;             /* encoder MLP width */
    int n_head;
    int n_layer;
    int n_pos_side;       /* learned position grid is n_pos_side² (16×16) */
    int merge;            /* pixel-unshuffle factor (2) */
    int n_proj_hidden;    /* mm.1 output width */
    int n_embd_out;       /* mm.2 output width = text n_embd */
    bool has_input_norm;  /* mm.input_norm present */
    float eps;            /* encoder LayerNorm epsilon */
    float mean[3], std[3];
    int image_size;       /* clip.vision.image_size (informational) */
    enum lfm2_vision_resample resample;   /* clip.vision.image_resize_algo; AUTO if absent */
};

LFM2_VISION_API lfm2_vision *lfm2_vision_load(const char *mmproj_path,
                                              struct lfm2_vision_params params);
LFM2_VISION_API void lfm2_vision_free(lfm2_vision *v);

LFM2_VISION_API const struct lfm2_vision_hparams *lfm2_vision_get_hparams(const lfm2_vision *v);
LFM2_VISION_API const struct lfm2_vision_params *lfm2_vision_get_params(const lfm2_vision *v);
LFM2_VISION_API int lfm2_vision_n_embd_out(const lfm2_vision *v);
LFM2_VISION_API const char *lfm2_vision_path(const lfm2_vision *v);
/* e.g. "lfm2 mmproj: SigLIP2 12L 768d 12h, patch 16, merge 2, projector 3072→2560→1024 (F16)" */
LFM2_VISION_API const char *lfm2_vision_desc(const lfm2_vision *v);
LFM2_VISION_API lfm2_pool *lfm2_vision_pool(lfm2_vision *v);

/* ---- Hugging Face processor configs ------------------------------------------------ */

/* The fields a processor config set (struct lfm2_vision_config.fields). */
enum {
    LFM2_VISION_CFG_DO_TILING = 1 << 0,          /* do_image_splitting */
    LFM2_VISION_CFG_USE_THUMBNAIL = 1 << 1,      /* use_thumbnail */
    LFM2_VISION_CFG_MIN_TILES = 1 << 2,          /* min_tiles */
    LFM2_VISION_CFG_MAX_TILES = 1 << 3,          /* max_tiles */
    LFM2_VISION_CFG_TOLERANCE = 1 << 4,          /* max_pixels_tolerance */
    LFM2_VISION_CFG_MIN_IMAGE_TOKENS = 1 << 5,   /* min_image_tokens */
    LFM2_VISION_CFG_MAX_IMAGE_TOKENS = 1 << 6,   /* max_image_tokens */
    LFM2_VISION_CFG_RESAMPLE = 1 << 7,           /* resample (2 bilinear, 3 bicubic) */
};

struct lfm2_vision_config {
    unsigned fields;          /* LFM2_VISION_CFG_* present in the file(s) */
    int encoder_patch_size;   /* as written (checked against the mmproj), 0 if absent */
    int downsample_factor;    /* as written (checked against the mmproj), 0 if absent */
};

/* Reads the image settings of a Hugging Face LFM2-VL preprocessor_config.json or
 * processor_config.json into *params: the fields at the top level and, where present, those
 * nested under "image_processor" (which win). `path` may also be a model directory: then
 * preprocessor_config.json and processor_config.json are both read, the second over the
 * first. Fields: do_image_splitting, use_thumbnail, min_tiles, max_tiles,
 * max_pixels_tolerance, min_image_tokens, max_image_tokens, resample; tile_size must be
 * 512; encoder_patch_size and downsample_factor are returned in *info (may be NULL). null
 * values and unknown fields are ignored. A bad value is an error naming the file and the
 * field ("cfg.json: min_tiles is 0; it must be an integer from 1 to 100"), invalid JSON one
 * naming the line; *params is then unchanged. Returns 0 or -1. */
LFM2_VISION_API int lfm2_vision_read_config(const char *path, struct lfm2_vision_params *params,
                                            struct lfm2_vision_config *info);
/* Checks the config's encoder_patch_size / downsample_factor against the loaded mmproj. */
LFM2_VISION_API int lfm2_vision_check_config(const lfm2_vision *v, const char *path,
                                             const struct lfm2_vision_config *info);

/* Checks that the projector output feeds this text model (mm.2 width == n_embd). */
LFM2_VISION_API int lfm2_vision_check_text_model(const lfm2_vision *v, const lfm2_model *text);

/* ---- images --------------------------------------------------------------------------- */

/* An interleaved RGB24 picture (a view; the loader below allocates one). */
struct lfm2_vision_image {
    int width, height;
    size_t stride;          /* bytes per row, >= 3 * width */
    const uint8_t *data;
};

/* Decodes an image file (PNG, JPEG, PPM, BMP, WebP … whatever libavformat/libavcodec
 * read) into RGB24. Alpha is dropped, grey is replicated, 16-bit samples keep their high
 * byte, YUV is converted with libswscale. Free with lfm2_vision_image_free. */
LFM2_VISION_API int lfm2_vision_image_load(const char *path, struct lfm2_vision_image *out);
LFM2_VISION_API void lfm2_vision_image_free(struct lfm2_vision_image *img);
/* Silences FFmpeg's own log process-wide (for command-line tools: the error comes back in
 * lfm2_last_error). Programs that use FFmpeg themselves should leave its log alone. */
LFM2_VISION_API void lfm2_vision_quiet_ffmpeg_log(void);

/* ---- preprocessing plan -------------------------------------------------------------- */

/* What the preprocessor will do with a W×H picture. Embedding chunks, in sequence order:
 * tiles row-major (chunk i = tile row i / n_cols, column i % n_cols), then the thumbnail;
 * an untiled picture is a single chunk of the smart-resized image. */
struct lfm2_vision_plan {
    enum lfm2_vision_preprocess mode;
    int src_w, src_h;
    bool tiled;
    int n_cols, n_rows;         /* tile grid (0×0 when not tiled) */
    int refined_w, refined_h;   /* n_cols·512 × n_rows·512 */
    int content_w, content_h;   /* picture resized inside the refined canvas (LLAMACPP
                                   letterbox; equals the refined size in OFFICIAL) */
    int content_x, content_y;   /* its offset; the rest of the canvas is black */
    bool has_thumb;             /* a thumbnail / single-image chunk follows the tiles */
    int thumb_w, thumb_h;       /* smart-resize size of the single image or thumbnail */
    int tile_tokens;            /* tokens per tile (256) */
    int thumb_tokens;           /* tokens of the single image / thumbnail (0 if none) */
    int n_chunks;
    int n_tokens;               /* embedding rows of the whole picture */
    int n_layout;               /* entries of the token layout (rows + marker tokens) */
    int patch_size, merge;
    enum lfm2_vision_resample resample;   /* the filter the pixels are made with (BILINEAR
                                             or BICUBIC; BILINEAR = mtmd's in LLAMACPP) */
};

/* Plans without a model (patch_size·merge is the alignment, 16·2 for LFM2-VL; resample AUTO
 * means bilinear here).
 *
 * OFFICIAL mode refuses, naming the picture size and the settings, the combinations where
 * transformers' own processor is inconsistent: with min_tiles 1, a picture that is "too
 * large" but closest in aspect to a 1×1 grid is stretched into ONE 512² tile (256 image
 * features) while its text gets the smart-resize size's token count as a single image; when
 * the two counts differ transformers' model raises "Image features and image tokens do not
 * match", so there is no sequence the model was trained with. (When they agree it is the
 * single image at 512×512, which is what the plan gives.) */
LFM2_VISION_API int lfm2_vision_make_plan(const struct lfm2_vision_params *params, int patch_size,
                                          int merge, int width, int height,
                                          struct lfm2_vision_plan *plan);
/* Plans with this context's parameters and model. */
LFM2_VISION_API int lfm2_vision_plan_image(const lfm2_vision *v, int width, int height,
                                           struct lfm2_vision_plan *plan);

/* Chunk i of a plan: pixel size, token count, 1-based tile row/column (0,0 = thumbnail or
 * single image). Returns 0, or -1 if i is out of range. */
LFM2_VISION_API int lfm2_vision_plan_chunk(const struct lfm2_vision_plan *plan, int i, int *w,
                                           int *h, int *n_tokens, int *row, int *col);

/* The smart resize (both modes' rounding rules): a size whose sides are multiples of
 * `align`, area within [min_px, max_px] where possible, aspect kept. */
LFM2_VISION_API void lfm2_vision_smart_resize(enum lfm2_vision_preprocess mode, int width,
                                              int height, int align, int64_t min_px, int64_t max_px,
                                              int *out_w, int *out_h);

/* The resamplers (exposed for tests and the elements). Both write dst_w×dst_h RGB24.
 * bilinear_mtmd: llama.cpp mtmd's corner-aligned bilinear, float32 lerps, truncation.
 * pil:           Pillow's antialiased resize with the BILINEAR or BICUBIC filter (AUTO =
 *                bilinear): filter support widened by the scale factor, weights normalized
 *                per output pixel and rounded to 22-bit fixed point, horizontal pass first
 *                into 8-bit rows, then vertical, each clamped to 0..255.
 * `tmp` (pil only) is scratch of lfm2_vision_resize_pil_tmp_size() bytes or NULL (then it
 * allocates). Return 0 or -1 on allocation failure. */
LFM2_VISION_API int lfm2_vision_resize_bilinear_mtmd(const uint8_t *src, int src_w, int src_h,
                                                     size_t src_stride, uint8_t *dst, int dst_w,
                                                     int dst_h, size_t dst_stride);
LFM2_VISION_API size_t lfm2_vision_resize_pil_tmp_size(enum lfm2_vision_resample filter,
                                                       int src_w, int src_h, int dst_w,
                                                       int dst_h);
LFM2_VISION_API int lfm2_vision_resize_pil(enum lfm2_vision_resample filter, const uint8_t *src,
                                           int src_w, int src_h, size_t src_stride,
                                           uint8_t *dst, int dst_w, int dst_h,
                                           size_t dst_stride, void *tmp);

/* Produces the RGB24 pixels of chunk i as the encoder sees them (before normalization):
 * w×h×3 bytes into out (stride 3·w). For tests and debugging; the encoder does the same
 * internally without the copy. */
LFM2_VISION_API int lfm2_vision_chunk_pixels(lfm2_vision *v, const struct lfm2_vision_image *img,
                                             const struct lfm2_vision_plan *plan, int i,
                                             uint8_t *out);

/* ---- encoding ------------------------------------------------------------------------ */

/* Encodes a picture planned with lfm2_vision_plan_image for the same size: writes
 * plan->n_tokens rows of lfm2_vision_n_embd_out floats to `out` (cap = floats available),
 * tiles row-major then the thumbnail. Returns the number of rows, or -1. */
LFM2_VISION_API int lfm2_vision_encode(lfm2_vision *v, const struct lfm2_vision_image *img,
                                       const struct lfm2_vision_plan *plan, float *out, size_t cap);

/* Encodes one already-preprocessed RGB24 image (sides multiples of patch·merge) as one
 * chunk: (w/32)·(h/32) rows. */
LFM2_VISION_API int lfm2_vision_encode_chunk(lfm2_vision *v, const uint8_t *rgb, int w, int h,
                                             size_t stride, float *out, size_t cap);

/* Time spent in the last lfm2_vision_encode or lfm2_vision_encode_chunk, milliseconds. */
struct lfm2_vision_timings {
    double preprocess_ms;   /* resizing, letterbox, thumbnail */
    double encode_ms;       /* encoder + projector, all chunks */
    double matmul_ms;       /*   of which matrix products (patch embedding, blocks, projector) */
    double attention_ms;    /*   of which attention */
    int n_chunks;
    int n_patches;          /* encoder rows over all chunks */
};
LFM2_VISION_API struct lfm2_vision_timings lfm2_vision_last_timings(const lfm2_vision *v);

/* Bytes of scratch memory the context holds (grows to the largest chunk/canvas seen;
 * bounded by max_tiles·512² pixels and max_image_tokens, not by the input size). */
LFM2_VISION_API size_t lfm2_vision_scratch_bytes(const lfm2_vision *v);

/* ---- placement in the LFM2 token sequence ------------------------------------------- */

/* In a token layout: "the next image embedding row goes here". */
#define LFM2_VISION_EMBD ((lfm2_token)-1)
/* Marks where an image goes in a prompt text (mtmd's default marker). */
#define LFM2_VISION_MARKER "<__media__>"

/* The ids that replace one picture: <|image_start|>, then per tile <|img_row_R_col_C|>
 * and 256 × LFM2_VISION_EMBD, then <|img_thumbnail|> and the thumbnail rows, then
 * <|image_end|>. LLAMACPP puts <|img_thumbnail|> before a single untiled picture too;
 * OFFICIAL does not (and omits the thumbnail when plan->has_thumb is false). Marker tokens
 * are looked up by their text in the vocabulary (tokenized with special parsing when the
 * vocabulary has no such entry, as mtmd does). Returns the count (plan->n_layout when
 * every marker is one token), -(count needed) if n_max is too small, INT32_MIN on error. */
LFM2_VISION_API int32_t lfm2_vision_layout(const lfm2_model *text,
                                           const struct lfm2_vision_plan *plan, lfm2_token *out,
                                           int32_t n_max);

/* Tokenizes `prompt` (BOS added if the model wants it, special tokens parsed), replacing
 * the k-th LFM2_VISION_MARKER by the layout of plans[k]. The number of markers must equal
 * n_plans. Same returns as lfm2_vision_layout. */
LFM2_VISION_API int32_t lfm2_vision_tokenize(const lfm2_model *text, const char *prompt,
                                             const struct lfm2_vision_plan *plans, int n_plans,
                                             lfm2_token *out, int32_t n_max);

/* A user turn "<image> + user_text" in the LFM2 chat layout with the assistant prompt
 * open (system turn first when `system` is not NULL), tokenized as above. */
LFM2_VISION_API int32_t lfm2_vision_chat_prompt(const lfm2_model *text, const char *system,
                                                const char *user_text,
                                                const struct lfm2_vision_plan *plan,
                                                lfm2_token *out, int32_t n_max);

/* Feeds a token sequence with LFM2_VISION_EMBD entries to the text model: runs of ids go
 * in as token batches, runs of embedding entries take the next rows of `embd` (n_rows
 * rows of the model's n_embd floats; their count must match the EMBD entries). Logits
 * are those of the last entry. Returns 0 or -1. */
LFM2_VISION_API int lfm2_vision_decode(lfm2_context *ctx, const lfm2_token *seq, int32_t n,
                                       const float *embd, int32_t n_rows);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_VISION_H */
