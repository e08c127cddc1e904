/* vision-impl.h — shared between the vision/ sources (not installed; the API is include/lfm2-vision.h). */
#ifndef LFM2_VISION_IMPL_H
#define LFM2_VISION_IMPL_H

#include "lfm2-ops.h"
#include "lfm2-stage.h"
#include "lfm2-vision.h"

/* One pre-LN SigLIP block. Vectors point into the mapping (F32) or into owned copies. */
struct lfm2_vision_block {
    const lfm2_tensor *wq, *wk, *wv, *wo, *up, *down;
    const float *bq, *bk, *bv, *bo, *bup, *bdown;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
};

struct lfm2_vision {
    lfm2_gguf *gguf;
    char *path;
    char desc[192];
    struct lfm2_vision_params params;
    struct lfm2_vision_hparams hp;

    /* patch embedding as a 2-D matrix [3·p·p] → D; in LLAMACPP mode an fp16 copy when the
     * file has F32 (mtmd's im2col runs in F16) */
    lfm2_tensor patch_w;
    void *patch_w_owned;
    const float *patch_b;
    float lut[3][256];          /* normalized value of each u8 level per channel */
    float *pos;                 /* learned positions [n_pos_side²][D], owned f32 */

    struct lfm2_vision_block *blk;
    const float *post_w, *post_b;
    const float *in_norm_w, *in_norm_b;
    const lfm2_tensor *mm1, *mm2;
    const float *mm1_b, *mm2_b;

    float **owned;              /* dequantized vectors */
    int n_owned;

    /* every matrix above rearranged by lfm2_weights_prepare() into the kernels' 16-row
     * layout at load (the views the pointers above then point to, and their memory) */
    lfm2_tensor *prep_view;
    void **prep_mem;
    int n_prep;

    lfm2_pool *pool;
    bool own_pool;

    /* scratch, grown on demand (see ensure_scratch in encoder.c) */
    float *x, *a, *q, *k, *v, *att, *ff, *patches, *pos_r, *mm_in, *mm_h;
    size_t cap_x, cap_a, cap_q, cap_k, cap_v, cap_att, cap_ff, cap_patches, cap_pos_r,
        cap_mm_in, cap_mm_h;
    int pos_r_gw, pos_r_gh;     /* grid the resized position table in pos_r is for */
    uint8_t *canvas, *thumb, *rs_tmp;
    size_t canvas_cap, thumb_cap, rs_tmp_cap;
    size_t scratch_bytes;

    struct lfm2_vision_timings timings;
};

/* preprocess.c: the pixels of chunk i of `plan` as (ptr, stride) — a view into the
 * context's canvas or thumbnail buffer, valid until the next call. Prepares the canvas
 * (resize, letterbox) when i == 0 or the canvas is stale. */
int lfm2_vision_prepare_chunk(lfm2_vision *v, const struct lfm2_vision_image *img,
                              const struct lfm2_vision_plan *plan, int i,
                              const uint8_t **pix, size_t *stride);

/* Grows *buf to at least n bytes (64-byte aligned). Returns 0 or -1. */
int lfm2_vision_grow(void **buf, size_t *cap, size_t n, size_t *total);

#endif
