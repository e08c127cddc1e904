/* lfm2.h — the lfm2-gst engine: LFM2 / LFM2-MoE inference on CPUs from GGUF files.
 *
 * A flat C API in the style of whisper.cpp / llama.cpp:
 *   - an immutable, thread-safe model (weights mmapped from the GGUF file),
 *   - any number of contexts per model, each with its own caches and thread pool,
 *   - parameter structs obtained from *_default_params() and then edited.
 *
 * Names: lfm2_model_* read a loaded model (lfm2_model_n_vocab, lfm2_model_get_hparams),
 * lfm2_token_* one vocabulary entry; functions of a context have no object prefix
 * (lfm2_decode, lfm2_n_ctx), as llama.cpp's do. Stage libraries prefix theirs the same way
 * (lfm2_vision_*).
 *
 * Errors: functions that fail return NULL or a negative value and leave a message
 * in lfm2_last_error() (per thread), naming the file, the key or tensor, and the reason.
 *
 * Output buffers (lfm2_tokenize, lfm2_token_to_piece, lfm2_detok_push, lfm2_detok_flush,
 * lfm2_chat_apply, and the stage libraries' functions that fill arrays): the caller passes the
 * array and its capacity; the return value is the number of elements written (tokens, or bytes
 * not counting the terminating NUL where there is one). When the array is too small the return
 * value is -(capacity needed), the size to pass for the call to succeed, NUL included — grow to
 * -n and call again, as with llama_tokenize and llama_token_to_piece. The array then holds no
 * usable result and a detokenizer's state is unchanged. INT32_MIN is an error (lfm2_last_error).
 *
 * No GStreamer and no FFmpeg dependency. Building blocks for other stages (vision and
 * audio encoders, small transformers) are in lfm2-ops.h and lfm2-gguf.h, and the stage API
 * (errors, aligned memory, half precision, the backbone) in lfm2-stage.h and backbone.h.
 */
#ifndef LFM2_H
#define LFM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what liblfm2 exports. The library is built with -fvisibility=hidden, so a function
 * without it stays inside the library (a test checks `nm -D liblfm2.so` against the
 * LFM2_API declarations of the headers in engine/include/). */
#if defined(__GNUC__)
#define LFM2_API __attribute__((visibility("default")))
#else
#define LFM2_API
#endif

typedef int32_t lfm2_token;

typedef struct lfm2_model lfm2_model;
typedef struct lfm2_context lfm2_context;
typedef struct lfm2_sampler lfm2_sampler;
typedef struct lfm2_gguf lfm2_gguf;

/* ---- errors and logging ------------------------------------------------------------- */

/* The last error of the calling thread ("" if none). */
LFM2_API const char *lfm2_last_error(void);
LFM2_API void lfm2_clear_error(void);

/* Engine version string, e.g. "0.1.0". */
LFM2_API const char *lfm2_version(void);

/* ---- model ---------------------------------------------------------------------------- */

struct lfm2_model_params {
    bool use_mmap;   /* map the file (default true); false reads it into memory */
    bool verbose;    /* print load information to stderr */
};

LFM2_API struct lfm2_model_params lfm2_model_default_params(void);

/* Load an `lfm2` or `lfm2moe` GGUF. Every size and offset is checked against the file. */
LFM2_API lfm2_model *lfm2_model_load(const char *path, struct lfm2_model_params params);
LFM2_API void lfm2_model_free(lfm2_model *model);

enum lfm2_layer_kind { LFM2_LAYER_CONV = 0, LFM2_LAYER_ATTENTION = 1 };

/* Hyperparameters, all read from the file. */
struct lfm2_hparams {
    char arch[16];            /* "lfm2" or "lfm2moe" */
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv_max;        /* largest per-layer head_count_kv */
    int head_dim;
    int n_rot;                /* rotated dims per head (rope.dimension_count, default head_dim) */
    int n_ff;                 /* dense FFN width */
    int n_conv_cache;         /* shortconv.l_cache (kernel width, 3) */
    int n_swa;                /* sliding window (0 = none) */
    float rope_freq_base;
    float norm_eps;
    /* MoE (0 for dense models) */
    int n_expert;
    int n_expert_used;
    int n_ff_exp;
    int n_dense_lead;
    float expert_weights_scale;
};

LFM2_API const struct lfm2_hparams *lfm2_model_get_hparams(const lfm2_model *model);
LFM2_API enum lfm2_layer_kind lfm2_model_layer_kind(const lfm2_model *model, int il);
LFM2_API int lfm2_model_n_head_kv(const lfm2_model *model, int il);
LFM2_API const char *lfm2_model_path(const lfm2_model *model);
/* A short identifier of the model (general.name or the file name, plus arch and n_embd). */
LFM2_API const char *lfm2_model_id(const lfm2_model *model);
/* Human description, e.g. "lfm2 16L 1024d Q8_0 (354.5M params)". */
LFM2_API const char *lfm2_model_desc(const lfm2_model *model);
LFM2_API uint64_t lfm2_model_n_params(const lfm2_model *model);
LFM2_API uint64_t lfm2_model_size_bytes(const lfm2_model *model); /* bytes of tensor data */
/* The underlying GGUF (for metadata queries); valid while the model lives. */
LFM2_API const lfm2_gguf *lfm2_model_gguf(const lfm2_model *model);
/* tokenizer.chat_template or NULL. */
LFM2_API const char *lfm2_model_chat_template(const lfm2_model *model);

/* ---- vocabulary and tokenizer ----------------------------------------------------------- */

LFM2_API int lfm2_model_n_vocab(const lfm2_model *model);
LFM2_API lfm2_token lfm2_token_bos(const lfm2_model *model);
LFM2_API lfm2_token lfm2_token_eos(const lfm2_model *model);
LFM2_API lfm2_token lfm2_token_eot(const lfm2_model *model);   /* end of turn (-1 if none) */
LFM2_API lfm2_token lfm2_token_pad(const lfm2_model *model);
LFM2_API bool lfm2_add_bos(const lfm2_model *model);
/* End of generation: eos, eot and the other end-of-turn control tokens. */
LFM2_API bool lfm2_token_is_eog(const lfm2_model *model, lfm2_token token);
LFM2_API bool lfm2_token_is_control(const lfm2_model *model, lfm2_token token);
/* The vocabulary entry text (byte-level spelling), or NULL for an invalid id. */
LFM2_API const char *lfm2_token_text(const lfm2_model *model, lfm2_token token);
/* Id of the vocabulary entry whose text is exactly `text` (e.g. "<|image_start|>"), or -1. */
LFM2_API lfm2_token lfm2_token_lookup(const lfm2_model *model, const char *text);

/* Byte-level BPE with the file's pre-tokenizer (as llama_tokenize). text_len < 0: the text is
 * NUL-terminated. add_bos works like llama.cpp's add_special: BOS is added only when the
 * vocabulary's add_bos is set (and EOS when its add_eos is set). parse_special: text of control
 * tokens becomes their ids. Returns the number of ids (output buffers: see the top). */
LFM2_API int32_t lfm2_tokenize(const lfm2_model *model, const char *text, int32_t text_len,
                               lfm2_token *tokens, int32_t n_max, bool add_bos, bool parse_special);

/* The bytes of one token (raw, may be a partial UTF-8 sequence). Control tokens give their
 * text when `special` is true, else nothing. Not NUL-terminated. Returns the length (0 for an
 * invalid id; output buffers: see the top). */
LFM2_API int32_t lfm2_token_to_piece(const lfm2_model *model, lfm2_token token, char *buf,
                                     int32_t len, bool special);

/* Streaming detokenizer: feeds tokens, emits only complete UTF-8 characters. */
struct lfm2_detok {
    char pending[8];
    int n_pending;
    bool special;       /* render control tokens as text */
};
LFM2_API void lfm2_detok_init(struct lfm2_detok *d, bool special);
/* Writes the text completed by `token` to out, NUL-terminated, and returns its length (output
 * buffers: see the top). Invalid byte sequences are replaced by U+FFFD. */
LFM2_API int32_t lfm2_detok_push(const lfm2_model *model, struct lfm2_detok *d, lfm2_token token,
                                 char *out, int32_t cap);
/* Writes whatever is pending at the end of a stream (U+FFFD if incomplete), as detok_push. */
LFM2_API int32_t lfm2_detok_flush(struct lfm2_detok *d, char *out, int32_t cap);

/* ---- chat layout ------------------------------------------------------------------------ */

struct lfm2_chat_message {
    const char *role;      /* "system", "user", "assistant", "tool" */
    const char *content;
};

/* Render the LFM2 ChatML layout (the same text llama_chat_apply_template produces, without
 * BOS — tokenize with add_bos). `tools_json` (a JSON array or NULL) is appended to the system
 * turn as "List of tools: <|tool_list_start|>…<|tool_list_end|>"; "tool" turns are wrapped in
 * <|tool_response_start|>…<|tool_response_end|>. Writes the text NUL-terminated and returns its
 * length (output buffers: see the top; buf may be NULL with len 0 to ask for the size). */
LFM2_API int32_t lfm2_chat_apply(const struct lfm2_chat_message *msgs, size_t n_msgs,
                                 const char *tools_json, bool add_generation_prompt, char *buf,
                                 int32_t len);

/* ---- context ---------------------------------------------------------------------------- */

struct lfm2_context_params {
    int n_ctx;        /* maximum positions (0 = min(n_ctx_train, 4096)) */
    int n_batch;      /* maximum rows per internal forward step (default 512) */
    int n_threads;    /* worker threads including the caller (0 = number of cores) */
    bool embeddings;  /* keep the final-norm hidden state of every output row */
};

LFM2_API struct lfm2_context_params lfm2_context_default_params(void);

LFM2_API lfm2_context *lfm2_context_new(const lfm2_model *model, struct lfm2_context_params params);
LFM2_API void lfm2_context_free(lfm2_context *ctx);
LFM2_API const lfm2_model *lfm2_context_model(const lfm2_context *ctx);
LFM2_API int lfm2_n_ctx(const lfm2_context *ctx);
LFM2_API int lfm2_n_threads(const lfm2_context *ctx);

/* One step of input: token ids, or embedding rows injected by an encoder (image or audio
 * embeddings in the text model's n_embd). Rows are appended at position lfm2_n_past(). */
struct lfm2_batch {
    int32_t n_tokens;
    const lfm2_token *token;  /* n_tokens ids, or NULL when embd is given */
    const float *embd;        /* n_tokens × n_embd floats, row-major */
    bool logits_all;          /* logits (and embeddings) for every row; else the last row only */
};

LFM2_API struct lfm2_batch lfm2_batch_tokens(const lfm2_token *tokens, int32_t n);
LFM2_API struct lfm2_batch lfm2_batch_embd(const float *embd, int32_t n);

/* Runs the backbone over the batch (prefill if n_tokens > 1). Returns 0, or a negative
 * value if the batch does not fit the context or is invalid, or LFM2_DECODE_ABORTED (as
 * llama_decode's 2) when the abort callback stopped it. */
LFM2_API int lfm2_decode(lfm2_context *ctx, struct lfm2_batch batch);

/* Asked between the layers of every forward step of lfm2_decode (as llama.cpp's
 * llama_set_abort_callback): returning true stops the call within one layer's work, so a
 * request nobody needs any more (a superseded partial transcript, a flush) frees the threads
 * at once instead of after its whole prefill. The call then returns LFM2_DECODE_ABORTED with
 * no outputs; positions up to lfm2_n_past() are kept, but the short-convolution state is
 * left mid-update, so lfm2_decode and lfm2_checkpoint refuse until lfm2_rewind() to a
 * checkpointed position (the current one included) or 0 restores it.
 * NULL (the default) never stops. */
typedef bool (*lfm2_abort_callback)(void *data);
LFM2_API void lfm2_set_abort_callback(lfm2_context *ctx, lfm2_abort_callback callback, void *data);
#define LFM2_DECODE_ABORTED 2

/* Logits of output row i (i = 0 … n_outputs-1; -1 = the last one), n_vocab floats. */
LFM2_API float *lfm2_get_logits(lfm2_context *ctx, int32_t i);
/* Final-norm hidden state of output row i (n_embd floats); needs params.embeddings. */
LFM2_API float *lfm2_get_embeddings(lfm2_context *ctx, int32_t i);
/* Number of output rows of the last lfm2_decode. */
LFM2_API int32_t lfm2_n_outputs(const lfm2_context *ctx);

/* Positions filled so far. */
LFM2_API int32_t lfm2_n_past(const lfm2_context *ctx);
/* Remembers the current position so lfm2_rewind() can return to it, e.g. the end of a system
 * prompt that every request reuses. Attention layers keep every position anyway; the
 * short-convolution layers keep only their state (the last 2 gated inputs), which this
 * snapshots (n_conv_layers × 2 × n_embd floats, 80 KB for LFM2-350M). Up to 8 positions are
 * kept (the oldest is forgotten). Returns 0, or -1 when out of memory. */
LFM2_API int lfm2_checkpoint(lfm2_context *ctx);
/* Forgets everything after position n_past: allowed for the current position, 0 (clears) and
 * checkpointed positions; anything else fails with an error. Checkpoints past n_past are
 * dropped. */
LFM2_API int lfm2_rewind(lfm2_context *ctx, int32_t n_past);

/* Serialize the cache state (K/V of positions 0 … n_past-1 and the convolution state) to
 * restore it later in this or another context of the same model. Loading clears checkpoints. */
LFM2_API size_t lfm2_state_size(const lfm2_context *ctx);
LFM2_API size_t lfm2_state_save(const lfm2_context *ctx, void *dst, size_t size);
LFM2_API int lfm2_state_load(lfm2_context *ctx, const void *src, size_t size);

/* Per-call timings of the last lfm2_decode, milliseconds. */
LFM2_API double lfm2_last_decode_ms(const lfm2_context *ctx);

/* ---- sampling ----------------------------------------------------------------------------- */

struct lfm2_sampler_params {
    float temperature;     /* 0 = greedy (argmax) */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off; keep p >= min_p * p_max */
    float repeat_penalty;  /* 1 = off; HF style: logit/penalty if > 0 else logit*penalty */
    int repeat_last_n;     /* window of previous tokens the penalty looks at (-1 = all) */
    uint64_t seed;
};

LFM2_API struct lfm2_sampler_params lfm2_sampler_default_params(void);
LFM2_API lfm2_sampler *lfm2_sampler_new(const lfm2_model *model, struct lfm2_sampler_params params);
/* The same over n_vocab candidates that are not a model's tokens (e.g. audio codebooks). */
LFM2_API lfm2_sampler *lfm2_sampler_new_n(int n_vocab, struct lfm2_sampler_params params);
LFM2_API void lfm2_sampler_free(lfm2_sampler *s);
/* Picks the next token from n_vocab logits (not modified). */
LFM2_API lfm2_token lfm2_sampler_sample(lfm2_sampler *s, const float *logits);
/* Records a token in the history used by the repetition penalty. */
LFM2_API void lfm2_sampler_accept(lfm2_sampler *s, lfm2_token token);
/* Adds bias to a token's logit before every pick, as llama.cpp's --logit-bias; -INFINITY
 * never picks it (e.g. <|audio_start|> in a text-only transcriber). Kept across reset.
 * 0 on success, -1 for a token outside the candidates. */
LFM2_API int lfm2_sampler_set_logit_bias(lfm2_sampler *s, lfm2_token token, float bias);
LFM2_API void lfm2_sampler_reset(lfm2_sampler *s);

/* ---- CPU kernels ------------------------------------------------------------------------- */

enum lfm2_cpu_path {
    LFM2_CPU_AUTO = 0,
    LFM2_CPU_SCALAR,
    LFM2_CPU_AVX2,
    LFM2_CPU_AVX512,       /* AVX-512F/BW/VL (+ VNNI/BF16 where the CPU has them) */
};

/* Force a kernel path (tests cover every path). Also set by the environment variable
 * LFM2_CPU_PATH=scalar|avx2|avx512. Returns false if the CPU cannot run it. */
LFM2_API bool lfm2_set_cpu_path(enum lfm2_cpu_path path);
LFM2_API enum lfm2_cpu_path lfm2_get_cpu_path(void);
LFM2_API const char *lfm2_cpu_path_name(enum lfm2_cpu_path path);
/* e.g. "AVX512 (VNNI, BF16) | AVX2 | FMA | F16C" */
LFM2_API const char *lfm2_cpu_features(void);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_H */
