/* audio-impl.h — shared between the audio/ sources (not installed). */
#ifndef LFM2_AUDIO_IMPL_H
#define LFM2_AUDIO_IMPL_H

#include "lfm2-audio.h"
#include "lfm2-ops.h"
#include "lfm2-stage.h"

/* One conformer layer. Matrices point to prepared views (or the mapping); vectors into the
 * mapping (F32) or owned dequantized copies. */
struct lfm2_audio_layer {
    const lfm2_tensor *ff1_up, *ff1_down, *wq, *wk, *wv, *wo, *wpos, *pw1, *pw2, *ff2_up,
        *ff2_down;
    const float *ff1_norm_w, *ff1_norm_b, *ff1_up_b, *ff1_down_b;
    const float *att_norm_w, *att_norm_b, *bq, *bk, *bv, *bo;
    const float *pos_u, *pos_v;            /* [n_head][head_dim] */
    const float *conv_norm_w, *conv_norm_b, *pw1_b, *pw2_b;
    float *dw_w;                           /* depthwise kernel transposed to [k][d_model] (owned) */
    const float *dw_b, *bn_w, *bn_b;       /* folded batch norm: y·bn_w + bn_b */
    const float *ff2_norm_w, *ff2_norm_b, *ff2_up_b, *ff2_down_b;
    const float *out_norm_w, *out_norm_b;
};

/* A depthwise 3×3 stride-2 convolution of the subsampling stack: kernel transposed to
 * [ky·3+kx][channel] (owned) and bias. */
struct lfm2_audio_dwconv {
    float *w;
    const float *b;
};

struct lfm2_audio {
    lfm2_gguf *gguf;
    char *path;
    char desc[224];
    struct lfm2_audio_params params;
    struct lfm2_audio_hparams hp;

    lfm2_mel *mel;
    lfm2_abort_callback abort_cb;      /* asked before each encoder layer */
    void *abort_data;

    /* subsampling: conv.0 as a matrix [9] → C (an fp16 copy in LLAMACPP mode, where mtmd runs
     * it as an F16 im2col product), dw conv.2/.5, pointwise conv.3/.6 as matrices C → C, and the
     * output Linear [C·F3] → d_model */
    lfm2_tensor conv0_w, conv3_w, conv6_w;
    void *conv0_owned;
    const float *conv0_b, *conv3_b, *conv6_b;
    struct lfm2_audio_dwconv dw2, dw5;
    const lfm2_tensor *pre_out;
    const float *pre_out_b;

    struct lfm2_audio_layer *layer;

    const float *ad_norm_w, *ad_norm_b;
    const lfm2_tensor *ad1, *ad3;
    const float *ad1_b, *ad3_b;

    float **owned;            /* dequantized vectors and transposed kernels */
    int n_owned;

    lfm2_tensor *prep_view;   /* matrices rearranged by lfm2_weights_prepare, and their memory */
    void **prep_mem;
    int n_prep;

    lfm2_pool *pool;
    bool own_pool;

    /* scratch, grown on demand (encoder.c) */
    float *melbuf, *patches, *s1, *s2, *s2b, *s3, *s3b, *flat, *x, *a, *b, *ff, *q, *k, *v,
        *qu, *qv, *vt, *ptab, *pproj, *ac, *bd, *att;
    size_t cap_melbuf, cap_patches, cap_s1, cap_s2, cap_s2b, cap_s3, cap_s3b, cap_flat, cap_x,
        cap_a, cap_b, cap_ff, cap_q, cap_k, cap_v, cap_qu, cap_qv, cap_vt, cap_ptab, cap_pproj,
        cap_ac, cap_bd, cap_att;
    int64_t ptab_tokens;      /* T' the relative-position table in ptab was built for */
    size_t scratch_bytes;

    struct lfm2_audio_timings timings;
};

/* encoder.c */
int64_t lfm2_audio_encode_frames(lfm2_audio *a, const float *mel, int64_t n_frames, int64_t ld,
                                 float *out, size_t cap);

/* Grows *buf to at least n bytes (64-byte aligned, contents lost). Returns 0 or -1. */
int lfm2_audio_grow(void **buf, size_t *cap, size_t n, size_t *total);

#endif
