/* backbone.h — the LFM2 hybrid backbone (gated short convolutions + GQA attention, dense
 * SwiGLU or MoE feed-forward) as a reusable unit: the text model wraps one, and other LFM2-style
 * stacks (the LFM2-Audio detokenizer) can load one from their own key/tensor prefixes and run
 * it with their own caches. Part of the stage API (see lfm2-stage.h): stage libraries include
 * it; the structs are laid out here so they can own caches and scratch themselves. */
#ifndef LFM2_BACKBONE_H
#define LFM2_BACKBONE_H

#include <stdbool.h>
#include <stdint.h>

#include "lfm2-gguf.h"
#include "lfm2-ops.h"
#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

struct lfm2_layer {
    enum lfm2_layer_kind kind;
    int n_head_kv;
    const float *attn_norm;     /* [n_embd] operator norm */
    const float *ffn_norm;      /* [n_embd] */
    /* short convolution */
    const lfm2_tensor *conv_in;   /* {n_embd, 3 n_embd}: rows B, C, X */
    const float *conv_w;          /* [n_embd][l_cache] taps, oldest first */
    const lfm2_tensor *conv_out;  /* {n_embd, n_embd} */
    /* attention */
    const lfm2_tensor *wq, *wk, *wv, *wo;
    const float *q_norm, *k_norm; /* [head_dim] */
    /* dense FFN */
    const lfm2_tensor *ffn_gate, *ffn_up, *ffn_down;
    /* MoE FFN */
    const lfm2_tensor *gate_inp;  /* {n_embd, n_expert} F32 router */
    const lfm2_tensor *gate_exps, *up_exps, *down_exps;
    const float *exp_probs_b;     /* [n_expert] selection bias (may be NULL) */
    bool moe;
    int cache_index;              /* index among layers of its kind (cache slot) */
};

struct lfm2_backbone {
    struct lfm2_hparams hp;
    struct lfm2_layer *layers;
    int n_attn_layers, n_conv_layers;
    const lfm2_tensor *tok_embd;
    const float *output_norm;     /* final norm (token_embd_norm) */
    const lfm2_tensor *output;    /* LM head: output.weight or tied token_embd */
    float **owned;                /* float copies of non-F32 vectors, freed with the backbone */
    int n_owned;
};

/* Reads hyperparameters under "<arch>." and tensors named "<tprefix>blk.N.…" etc. */
LFM2_API int lfm2_backbone_load(struct lfm2_backbone *bb, const lfm2_gguf *g, const char *arch,
                                const char *tprefix);
LFM2_API void lfm2_backbone_free(struct lfm2_backbone *bb);

/* Caches. Attention layers keep K and V for every position (one anonymous mapping: only the
 * positions used become resident). Short-convolution layers keep only their gated inputs
 * s = B ⊙ X of the last L-1 positions — the convolution state; to return to an earlier
 * position later, lfm2_checkpoint() snapshots that state (a few hundred KB, not a row per
 * position: the conv history would cost more memory than the KV cache). */
#define LFM2_MAX_CHECKPOINTS 8

struct lfm2_checkpoint {
    int32_t pos;
    float *conv;       /* n_conv × (L-1) × n_embd */
};

struct lfm2_cache {
    int n_ctx;
    float **k, **v;    /* [n_attn][n_ctx × n_head_kv·head_dim] */
    float *conv;       /* [n_conv][(L-1) × n_embd], oldest position first */
    size_t conv_floats;
    struct lfm2_checkpoint ckpt[LFM2_MAX_CHECKPOINTS];
    int n_ckpt;
    void *map;
    size_t map_size;
};

LFM2_API int lfm2_cache_init(struct lfm2_cache *c, const struct lfm2_backbone *bb, int n_ctx);
LFM2_API void lfm2_cache_free(struct lfm2_cache *c);

/* Scratch for one forward step of up to n_batch rows (allocated once per context). Only the
 * residual stream x, its normalized copy u and the block output o live across a layer; the
 * operator and FFN intermediates share one work area (they are never alive together). */
struct lfm2_scratch {
    int n_batch;
    float *x, *u, *o;
    float *work;          /* n_batch × max(4 n_embd, 2 q_dim, 2 n_ff) */
    /* MoE */
    float *router;        /* [n_batch][n_expert] */
    int32_t *sel;         /* [n_batch][n_expert_used] */
    float *selw;          /* [n_batch][n_expert_used] */
    int32_t *rows;        /* [n_batch × n_expert_used] token rows grouped by expert */
    int32_t *ecount;      /* [2 (n_expert + 1)] counting-sort offsets */
    float *xe, *ge, *he, *oe;  /* per-expert gathered rows */
};

LFM2_API int lfm2_scratch_init(struct lfm2_scratch *s, const struct lfm2_backbone *bb, int n_batch);
LFM2_API void lfm2_scratch_free(struct lfm2_scratch *s);

/* Snapshot / restore of the convolution state (see struct lfm2_cache). */
LFM2_API int lfm2_cache_checkpoint(struct lfm2_cache *c, int32_t pos);
/* Sets the convolution state for position pos: zero for 0, else a checkpoint's. Checkpoints
 * past pos are dropped. -1 (error set) if no checkpoint is at pos. */
LFM2_API int lfm2_cache_restore(struct lfm2_cache *c, int32_t pos);

/* Runs n rows (n <= scratch n_batch) at positions pos0 … pos0+n-1, continuing from the conv
 * state of position pos0. Input rows are in s->x (embedded tokens or injected embeddings); on
 * return s->x holds the last hidden state (before the final norm) of every row. */
LFM2_API void lfm2_backbone_forward(const struct lfm2_backbone *bb, struct lfm2_cache *cache,
                                    struct lfm2_scratch *s, lfm2_pool *pool, int n, int32_t pos0);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_BACKBONE_H */
