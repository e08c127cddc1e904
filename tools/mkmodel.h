/* mkmodel.h — what the model generators share (tools/mkmodel.c writes LFM2 backbones and the
 * LFM2-VL projector; mkmodel-tts.c the LFM2.5-Audio vocoder and tokenizer): configurations,
 * file types, and the tensor plan whose random rows are generated at write time. */
#ifndef LFM2_MKMODEL_H
#define LFM2_MKMODEL_H

#include <stdint.h>

#include "lfm2-gguf.h"

typedef struct {
    const char *name, *arch, *size_label;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    int attn[16], n_attn;                 /* attention layer indices; the rest are short-conv */
    int n_expert, n_expert_used, n_ff_exp, n_dense_lead;   /* lfm2moe only */
    int n_new_tokens;                     /* merge tokens to learn; 0 = as many as fit/exist */
    int rich_corpus;                      /* multilingual training text (else English only) */
    /* LFM2-VL: marker tokens in the backbone vocabulary, and the mmproj shapes */
    int vl, vl_marker_base;               /* first <|img_row_1_col_1|> id */
    int v_embd, v_blocks, v_heads, v_ff, v_proj;
    /* LFM2-Audio: audio marker tokens at 128…133 (bytes from 134) and the text-mode shaping of
     * mkmodel-tts.c; embedding models (the detokenizer): sliding window and dense_2 width */
    int audio;
    int n_swa, n_out;
} config;

typedef struct {
    const char *name;
    enum lfm2_type type;    /* type of the weight matrices */
    uint32_t ftype;         /* llama_ftype for general.file_type */
    bool k_mix;             /* Q4_K_M: Q6_K for token_embd and some attn_v/ffn_down */
} file_type;

enum init_kind { INIT_MATRIX, INIT_NORM, INIT_CONV, INIT_ROUTER, INIT_BIAS,
                 INIT_V_MATRIX, INIT_V_BIAS, INIT_V_NORM, INIT_V_POS,
                 INIT_ONE, INIT_ZERO, INIT_UNIT };   /* 1, 0, N(0, 1) */

typedef struct gen_tensor gen_tensor;
struct gen_tensor {
    enum init_kind kind;
    enum lfm2_type type;
    int64_t ne[4];
    uint64_t seed;       /* per tensor */
    int n_threads;
    /* optional: adjusts row r (n floats) after the random draw, before quantization */
    void (*shape)(const gen_tensor *t, int64_t r, float *row, int64_t n);
    float scale;         /* a parameter of shape */
    float mean, std;     /* of the values: init_params(kind), or set by mkmodel-audio.c's plan */
};

typedef struct {
    char name[64];
    int n_dims;
    gen_tensor g;
} plan_tensor;

typedef struct {
    plan_tensor *t;
    int n, cap;
    int64_t n_params;
    size_t n_bytes;
} plan;

typedef struct vocab vocab;

/* --type NAME → file type, NULL if unknown. */
const file_type *find_file_type(const char *name);

/* A tensor "name" of the given kind, type (fitted to the row length) and shape; 0 or -1. */
int plan_add(plan *p, const char *name, enum init_kind kind, enum lfm2_type type, int n_dims,
             int64_t ne0, int64_t ne1, int64_t ne2);
/* The backbone's tensors in converter order (token_embd, blk.N.*, token_embd_norm). */
int plan_backbone(const config *c, const file_type *ft, plan *p);
/* Adds the plan's tensors to a writer; rows are drawn from (seed, domain, tensor, row). */
void plan_to_writer(plan *p, lfm2_gguf_writer *w, uint64_t seed, uint64_t domain, int n_threads);
/* The LFM2 metadata of a backbone; v = NULL: no vocabulary (tokenizer.ggml.model "none"). */
void set_backbone_keys(lfm2_gguf_writer *w, const config *c, const file_type *ft, uint64_t seed,
                       const vocab *v);

/* mkmodel-tts.c */
/* The text-mode shaping of an LFM2-Audio backbone's token embedding (see docs/tts.md). */
void mkmodel_tts_shape_token_embd(const gen_tensor *t, int64_t r, float *row, int64_t n);
/* Writes the vocoder and/or tokenizer files that go with audio config c (NULL: skip one). */
int mkmodel_tts_write(const config *c, const char *vocoder_out, const char *vocoder_type,
                      const char *tokenizer_out, const char *tokenizer_type, uint64_t seed,
                      int n_threads);

#endif /* LFM2_MKMODEL_H */
