/* quants.h — ggml block formats: layouts, fp16/bf16 conversion, reference (scalar)
 * dequantization and quantization. Bit-exact with ggml's reference code; the SIMD kernels
 * in kernels/ are tested against these. Internal to the engine (vision/audio use lfm2-ops.h). */
#ifndef LFM2_QUANTS_H
#define LFM2_QUANTS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lfm2-gguf.h"
#include "lfm2-stage.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { lfm2_fp16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;                    /* 18 B */
typedef struct { lfm2_fp16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;                /* 20 B */
typedef struct { lfm2_fp16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;     /* 22 B */
typedef struct { lfm2_fp16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1; /* 24 B */
typedef struct { lfm2_fp16 d; int8_t qs[QK8_0]; } block_q8_0;                         /* 34 B */
typedef struct { lfm2_fp16 d, s; int8_t qs[QK8_1]; } block_q8_1;                     /* 36 B: s = d * sum(qs) */
typedef struct { lfm2_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;            /* 144 B */
typedef struct { lfm2_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K; /* 176 B */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; lfm2_fp16 d; } block_q6_K; /* 210 B */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;   /* 292 B */

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

/* half precision: lfm2-stage.h */

/* ---- reference dequantization: n elements (multiple of the block size) ---- */
void lfm2_dequantize_row(enum lfm2_type type, const void *src, float *dst, int64_t n);

/* ---- reference quantization of weights (ggml's quantize_row_*_ref); returns bytes written.
 * Q4_K/Q5_K/Q6_K use ggml's reference quantizers (make_qkx2_quants / make_qx_quants). ---- */
size_t lfm2_quantize_row(enum lfm2_type type, const float *src, void *dst, int64_t n);

/* ---- activation quantization exactly as ggml's x86 CPU backend does before a dot product:
 * Q8_0: per 32, d = amax/127 (stored fp16), q = round-half-even(x * 127/amax).
 * Q8_K: per 256, m = signed value of largest magnitude, iscale = -127/m, q = min(127,
 *       round-half-even(x*iscale)), d = 1/iscale, bsums = sums of 16. ---- */
void lfm2_quantize_row_q8_0(const float *x, block_q8_0 *y, int64_t n);
void lfm2_quantize_row_q8_K(const float *x, block_q8_K *y, int64_t n);

/* 6-bit scale/min unpack for Q4_K / Q5_K sub-block j (0..7). */
static inline void lfm2_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

#endif /* LFM2_QUANTS_H */
