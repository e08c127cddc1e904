/* backbone.h — the LFM2 hybrid backbone (gated short convolutions + GQA attention, dense
 * SwiGLU or MoE feed-forward) as a reusable unit: the text model wraps one, and other LFM2-style
 * stacks (the LFM2-Audio detokenizer: embeddings in, sliding-window attention, a dense_2 head)
 * load one from their own key/tensor prefixes and run it with their own caches. Part of the
 * stage API (see lfm2-stage.h): stage libraries include it; the structs are laid out here so
 * they can own caches and scratch themselves. */
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
    int n_swa;                  /* attention: sliding window (keys at p − j >= n_swa masked), 0 = none */
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

/* Memory a loaded stack owns: float copies of vectors, prepared weights and their views. */
struct lfm2_owned {
    void **p;
    int n, cap;
};

/* Takes ownership of p (freed with free() by lfm2_owned_free); -1 (p freed) when out of memory. */
LFM2_API int lfm2_owned_add(struct lfm2_owned *o, void *p);
LFM2_API void lfm2_owned_free(struct lfm2_owned *o);
/* A 1-D (or small) tensor of any type as floats, copied into owned memory (so nothing reads
 * the file mapping after loading). NULL when t is NULL or out of memory (error set). */
LFM2_API const float *lfm2_owned_vec_f32(struct lfm2_owned *o, const lfm2_tensor *t);
/* Replaces *slot by the layout the kernels read fastest (lfm2_weights_prepare), owned by o.
 * widen_float: F16 and BF16 matrices become F32 first, so their products take float32
 * activations instead of rounding them to half precision as ggml does (twice the memory).
 * drop_source: the file pages copied may be dropped from memory (mmapped files). */
LFM2_API int lfm2_prepare_weight(struct lfm2_owned *o, const lfm2_tensor **slot, bool drop_source,
                                 bool widen_float);

struct lfm2_backbone {
    struct lfm2_hparams hp;
    struct lfm2_layer *layers;
    int n_attn_layers, n_conv_layers;
    const lfm2_tensor *tok_embd;
    const float *output_norm;     /* final norm (token_embd_norm) */
    const lfm2_tensor *output;    /* LM head: output.weight or tied token_embd */
    /* embedding models ("<arch>.embedding_length_out", e.g. the LFM2-Audio detokenizer):
     * out = dense_2 · RMSNorm(x) + dense_2.bias after the final norm, n_out per row */
    const lfm2_tensor *dense_out;
    const float *dense_out_b;
    int n_out;                    /* 0 = no dense_2 head */
    struct lfm2_owned owned;      /* freed with the backbone */
};

/* Reads hyperparameters under "<arch>." and tensors named "<tprefix>blk.N.…" etc. */
LFM2_API int lfm2_backbone_load(struct lfm2_backbone *bb, const lfm2_gguf *g, const char *arch,
                                const char *tprefix);
LFM2_API void lfm2_backbone_free(struct lfm2_backbone *bb);
/* Prepares every matrix once (lfm2_prepare_weight); the text model does this at load. */
LFM2_API int lfm2_backbone_prepare(struct lfm2_backbone *bb, bool drop_source, bool widen_float);

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
    int32_t base;      /* position held in K/V row 0 (advanced by lfm2_cache_make_room) */
    float **k, **v;    /* [n_attn][n_ctx × n_head_kv·head_dim], row = position − base */
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
    /* asked between layers by lfm2_backbone_forward (lfm2_set_abort_callback); NULL = never */
    bool (*abort_cb)(void *data);
    void *abort_data;
};

LFM2_API int lfm2_scratch_init(struct lfm2_scratch *s, const struct lfm2_backbone *bb, int n_batch);
LFM2_API void lfm2_scratch_free(struct lfm2_scratch *s);

/* Snapshot / restore of the convolution state (see struct lfm2_cache). */
LFM2_API int lfm2_cache_checkpoint(struct lfm2_cache *c, int32_t pos);
/* Sets the convolution state for position pos: zero for 0, else a checkpoint's. Checkpoints
 * past pos are dropped. -1 (error set) if no checkpoint is at pos. */
LFM2_API int lfm2_cache_restore(struct lfm2_cache *c, int32_t pos);

/* Makes the K/V rows of positions pos0 … pos0+n-1 fit the cache. A stack whose attention
 * layers all have a sliding window needs only the n_swa − 1 positions before pos0, so those
 * rows move to the front (by a multiple of 64 rows, which keeps results independent of how
 * the positions were batched) and base advances: such a stack streams forever in a fixed
 * cache of at least n_swa + 63 + n rows. 0, or -1 (error set) when the rows cannot fit.
 * Checkpoints and restores assume base 0 (the text context never slides). */
LFM2_API int lfm2_cache_make_room(struct lfm2_cache *c, const struct lfm2_backbone *bb, int32_t pos0,
                                  int n);

/* Runs n rows (n <= scratch n_batch) at positions pos0 … pos0+n-1, continuing from the conv
 * state of position pos0 (rows pos0 − base … must fit the cache: lfm2_cache_make_room). Input
 * rows are in s->x (embedded tokens, or embeddings injected by an encoder or given directly as
 * the stack's input); on return s->x holds the last hidden state (before the final norm) of
 * every row. Returns false when s->abort_cb stopped it before a layer (s->x and the conv state
 * then hold a partial update). */
LFM2_API bool lfm2_backbone_forward(const struct lfm2_backbone *bb, struct lfm2_cache *cache,
                                    struct lfm2_scratch *s, lfm2_pool *pool, int n, int32_t pos0);

/* Final norm and an output head for rows first … first+n-1 of s->x:
 *   u_t = RMSNorm(x_t) · output_norm          (into s->u rows 0 … n-1: the hidden state)
 *   out_t = head · u_t (+ bias)               (head = bb->output for logits, bb->dense_out and
 *                                              bb->dense_out_b for an embedding model)
 * head may be NULL (only u). out rows have stride ldo floats. */
LFM2_API void lfm2_backbone_output(const struct lfm2_backbone *bb, struct lfm2_scratch *s, lfm2_pool *pool,
                                   int first, int n, const lfm2_tensor *head, const float *bias, float *out,
                                   int64_t ldo);

/* Logits on (default) or off for the next lfm2_decode calls: off, the output rows get only
 * their final-norm hidden state (lfm2_get_embeddings; params.embeddings) and the LM head's
 * product is skipped — an audio frame's step needs the hidden state, not 65536 logits. */
LFM2_API void lfm2_set_logits(lfm2_context *ctx, bool on);

/* The thread pool of a context (for stages that run between its decode calls, e.g. the
 * LFM2-Audio depth transformer, so that one set of threads does all the work). */
LFM2_API lfm2_pool *lfm2_context_pool(lfm2_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_BACKBONE_H */
