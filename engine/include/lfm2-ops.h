/* lfm2-ops.h — the engine's building blocks, shared by the LFM2 backbone, the vision and
 * audio encoders and any other small transformer (TTS depth transformer, detokenizer):
 * one persistent thread pool, quantized matrix products with runtime-dispatched SIMD, norms,
 * RoPE, attention and activations. Everything works on plain float rows; weights are
 * lfm2_tensor views into the mmapped GGUF (see lfm2-gguf.h).
 *
 * Threading: every function taking an lfm2_pool runs on all of its threads and returns when
 * the work is done. A pool runs one call at a time (it is owned by one context/encoder).
 */
#ifndef LFM2_OPS_H
#define LFM2_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2-gguf.h"
#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- thread pool ------------------------------------------------------------------------ */

typedef struct lfm2_pool lfm2_pool;

/* n_threads includes the calling thread (0 = number of online cores). Workers are created
 * once and wait (spin briefly, then sleep) between jobs. */
LFM2_API lfm2_pool *lfm2_pool_new(int n_threads);
LFM2_API void lfm2_pool_free(lfm2_pool *pool);
LFM2_API int lfm2_pool_n_threads(const lfm2_pool *pool);

typedef void (*lfm2_task_fn)(void *arg, int ith, int nth);
/* Runs fn(arg, ith, nth) on every thread (ith = 0 is the caller) and waits for all. */
LFM2_API void lfm2_pool_run(lfm2_pool *pool, lfm2_task_fn fn, void *arg);

/* Gives the calling thread the nice value `nice` (Linux; an unprivileged thread may only
 * raise it, so call it on a thread you own) and makes every pool this thread runs jobs on
 * from then on give its workers the same value — so an application's inference yields the
 * CPU to its real-time threads (video, audio) without renicing the whole process. Returns 0,
 * or -1 with the error (the thread's own setpriority failed). */
LFM2_API int lfm2_thread_set_nice(int nice);

/* Per-pool scratch memory, reused across calls (grows, never shrinks; 64-byte aligned).
 * Valid until the next lfm2_pool_scratch call on the same pool with a larger size. Meant for
 * ops' internal use (activation quantization), not for callers' long-lived buffers. */
LFM2_API void *lfm2_pool_scratch(lfm2_pool *pool, size_t size);

/* ---- matrix products ------------------------------------------------------------------ */

/* y[t][o] = Σ_i w[o][i] · x[t][i]   for t < n, o < w->ne[1], i < w->ne[0].
 * w: 2-D weight (GGUF {n_in, n_out}) of any supported type; x: n rows of n_in floats with
 * row stride ldx; y: n rows with stride ldy (floats). Activations are rounded as ggml does
 * for the weight type (Q8_0 blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K for K-quants, fp16 for
 * F16, bf16 for BF16, none for F32), so results match llama.cpp to float rounding. */
LFM2_API void lfm2_matmul(lfm2_pool *pool, const lfm2_tensor *w, const float *x, int64_t ldx,
                          float *y, int64_t ldy, int64_t n);

/* Same, adding a bias (b[o], may be NULL): y = w·x + b. */
LFM2_API void lfm2_matmul_bias(lfm2_pool *pool, const lfm2_tensor *w, const float *b,
                               const float *x, int64_t ldx, float *y, int64_t ldy, int64_t n);

/* Several products sharing the same input x (e.g. Q, K, V or gate/up): the input is
 * quantized once when the weight types allow it. w[j] all have the same ne[0]. */
LFM2_API void lfm2_matmul_multi(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                                const float *x, int64_t ldx, float *const *y, const int64_t *ldy,
                                int64_t n);

/* Same, each product adding its bias b[j] (b, or any b[j], may be NULL): y[j] = w[j]·x + b[j].
 * For encoders whose Q, K and V projections carry biases. */
LFM2_API void lfm2_matmul_multi_bias(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                                     const float *const *b, const float *x, int64_t ldx,
                                     float *const *y, const int64_t *ldy, int64_t n);

/* Weight preparation (at model load). Rearranges a weight into the layout the kernels read
 * fastest — 16 rows interleaved for Q8_0, Q4_0, F16 and F32 — where batched and one-token
 * products give identical results and decode streams memory linearly. *out becomes a view of
 * the new layout (an internal type: use it only through the functions of this header) in the
 * returned allocation, which the caller frees with lfm2_weights_free() after the last use.
 * Same size as the original up to padding of the last 16 rows. Returns NULL and sets *out = *w
 * when the tensor is used as it is (other types, 3-D with ne[1] % 16 != 0) or on allocation
 * failure (lfm2_last_error set). drop_source: w's bytes are a read-only file mapping whose
 * pages may be dropped from memory (madvise DONTNEED) once copied, so RSS does not double. */
LFM2_API void *lfm2_weights_prepare(const lfm2_tensor *w, lfm2_tensor *out, bool drop_source);
LFM2_API void lfm2_weights_free(void *mem);

/* View of slab i2 of a 3-D tensor (an expert of {n_in, n_out, n_expert}) as a 2-D tensor. */
LFM2_API lfm2_tensor lfm2_tensor_slab(const lfm2_tensor *t, int64_t i2);

/* Dequantizes rows ids[0..n) of a 2-D tensor into out (n × ne[0] floats): embedding lookup. */
LFM2_API void lfm2_get_rows(const lfm2_tensor *w, const int32_t *ids, int64_t n, float *out);

/* Dequantizes a whole tensor (any supported type) to floats; n = number of elements. */
LFM2_API void lfm2_tensor_to_f32(const lfm2_tensor *w, float *out);

/* ---- elementwise and row ops (single-threaded; cheap next to the products) ------------- */

/* y = w ⊙ x / sqrt(mean(x²) + eps); y may alias x. w may be NULL (no scale). */
LFM2_API void lfm2_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* y = (x − mean)/sqrt(var + eps) ⊙ w + b (biased variance); w, b may be NULL. */
LFM2_API void lfm2_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n,
                             float eps);
/* NeoX ("rotate half") RoPE on n_head heads of head_dim floats at position pos. */
LFM2_API void lfm2_rope_neox(float *x, int n_head, int head_dim, int n_rot, int32_t pos,
                             float freq_base);
LFM2_API void lfm2_silu(float *x, int64_t n);
/* out[i] = silu(gate[i]) * up[i] */
LFM2_API void lfm2_swiglu(float *out, const float *gate, const float *up, int64_t n);
/* tanh-approximation GELU (HF gelu_pytorch_tanh) in float. */
LFM2_API void lfm2_gelu_tanh(float *x, int64_t n);
/* The same as ggml's CPU GELU: input rounded to fp16, looked up in an fp16 table
 * (x <= -10 → 0, x >= 10 → x) — for bit-level parity with llama.cpp's encoders. */
LFM2_API void lfm2_gelu_tanh_ggml(float *x, int64_t n);
/* exact erf GELU */
LFM2_API void lfm2_gelu_erf(float *x, int64_t n);
LFM2_API void lfm2_softmax(float *x, int64_t n);
LFM2_API void lfm2_vec_add(float *y, const float *a, const float *b, int64_t n);   /* y = a + b */
LFM2_API void lfm2_vec_mul(float *y, const float *a, const float *b, int64_t n);   /* y = a ⊙ b */
LFM2_API void lfm2_vec_scale(float *y, float s, int64_t n);   /* y *= s */

/* ---- attention ------------------------------------------------------------------------------ */

struct lfm2_attn_args {
    const float *q;  int64_t ldq;   /* n_q rows of n_head × head_dim */
    const float *k;  int64_t ldk;   /* n_kv rows of n_head_kv × head_dim (cache rows 0…n_kv-1) */
    const float *v;  int64_t ldv;
    float *out;      int64_t ldo;   /* n_q rows of n_head × head_dim */
    int n_q, n_kv;
    int n_head, n_head_kv, head_dim;
    float scale;                    /* usually 1/sqrt(head_dim) */
    bool causal;                    /* query row i sits at kv position q_pos0 + i */
    int32_t q_pos0;
    int32_t window;                 /* sliding window (keys with pos_q − pos_k >= window are
                                       masked); 0 = none */
};

/* Softmax attention over all heads, threaded over (head, query block); never materializes
 * an n_q × n_kv matrix (online softmax over key blocks). Head h reads kv head
 * h / (n_head / n_head_kv). */
LFM2_API void lfm2_attention(lfm2_pool *pool, const struct lfm2_attn_args *a);

/* ---- timing ------------------------------------------------------------------------------------ */

LFM2_API double lfm2_time_ms(void);   /* monotonic clock */

#ifdef __cplusplus
}
#endif

#endif /* LFM2_OPS_H */
