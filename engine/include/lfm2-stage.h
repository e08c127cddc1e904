/* lfm2-stage.h — the stage API: what a library built on the engine (vision/, audio/, and
 * tools that write model files) needs beyond an application's view of it.
 *
 * A stage (an image or audio encoder, a speech decoder) reads its own GGUF, runs its own
 * network on the engine's kernels and hands embedding rows to a text context. It uses:
 *   lfm2.h        models, contexts, lfm2_decode of embedding batches, tokenizer, chat layout
 *   lfm2-gguf.h   the checked GGUF reader (its tensors and metadata), writer, lfm2_quantize
 *   lfm2-ops.h    the thread pool, quantized matrix products (weights prepared at load),
 *                 norms, RoPE, attention, activations — the kernels, dispatched per CPU
 *   backbone.h    an LFM2 hybrid stack from any key/tensor prefix, with its own caches
 *   this header   errors in the engine's per-thread slot (so lfm2_last_error() reports a
 *                 stage's failures like the engine's), 64-byte aligned allocation,
 *                 overflow-checked sizes and the half-precision conversions (round to
 *                 nearest even, like F16C and ggml)
 *
 * These five headers in engine/include/ are the engine's whole boundary: everything else in
 * liblfm2 is hidden (tests/boundary checks its exports), and engine/internal.h, quants.h,
 * vocab.h, unicode.h and kernels/kernels.h are not on a stage's include path. When a stage
 * needs something more, it becomes an LFM2_API function in one of these headers.
 */
#ifndef LFM2_STAGE_H
#define LFM2_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LFM2_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LFM2_LIKELY(x) __builtin_expect(!!(x), 1)
#define LFM2_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LFM2_PRINTF(a, b)
#define LFM2_LIKELY(x) (x)
#define LFM2_UNLIKELY(x) (x)
#endif

/* ---- errors: the message lfm2_last_error() returns ----------------------------------- */

/* Sets the calling thread's error message (printf-style). Always returns -1 so callers can
 * write `return lfm2_set_error(...)`. */
LFM2_API int lfm2_set_error(const char *fmt, ...) LFM2_PRINTF(1, 2);
/* Prepends "prefix: " to the current error message (e.g. the file name). */
LFM2_API void lfm2_prefix_error(const char *fmt, ...) LFM2_PRINTF(1, 2);

/* ---- memory ---------------------------------------------------------------------------- */

/* 64-byte aligned allocation (NULL on failure, with an error set); free with
 * lfm2_free_aligned. */
LFM2_API void *lfm2_alloc_aligned(size_t size);
LFM2_API void lfm2_free_aligned(void *p);

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int lfm2_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int lfm2_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* ---- half precision -------------------------------------------------------------------- */

typedef uint16_t lfm2_fp16;

LFM2_API float lfm2_fp16_to_fp32(lfm2_fp16 h);
LFM2_API lfm2_fp16 lfm2_fp32_to_fp16(float f);   /* round to nearest even */
LFM2_API float lfm2_bf16_to_fp32(uint16_t h);
LFM2_API uint16_t lfm2_fp32_to_bf16(float f);   /* ggml's rounding (RNE, NaN kept quiet) */

#ifdef __cplusplus
}
#endif

#endif /* LFM2_STAGE_H */
