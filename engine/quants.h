/* quants.h — ggml block formats: layouts, fp16/bf16 conversion, reference (scalar)
 * dequantization and quantization. Bit-exact with ggml's reference code; the SIMD kernels
 * in kernels/ are tested against these. Internal to the engine (vision/audio use lfm2-ops.h). */
#ifndef LFM2_QUANTS_H
#define LFM2_QUANTS_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
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

/* ---- activation formats ----
 * What the input of a product is rounded to for a weight type, as ggml's x86 CPU backend
 * does (ggml's vec_dot_type):
 *   F32  → plain floats                         F16  → fp16 (round to nearest even)
 *   BF16 → bf16 (ggml rounding)                 Q4_0, Q5_0, Q8_0 → Q8_0 blocks of 32
 *   Q4_1, Q5_1 → Q8_1 blocks (s = fp16(d·Σq))   Q4_K, Q5_K, Q6_K → Q8_K blocks of 256 */
enum lfm2_act {
    LFM2_ACT_F32 = 0,
    LFM2_ACT_F16,
    LFM2_ACT_BF16,
    LFM2_ACT_Q8_0,
    LFM2_ACT_Q8_1,
    LFM2_ACT_Q8_K,
    LFM2_ACT_COUNT,
};

/* ---- the type table ----
 * One entry per ggml type id holds every fact the engine uses about a block format: the
 * GGUF reader (supported, block size, row bytes), the matrix products (activation format)
 * and the reference conversions the kernels are tested against. Ids ggml defines that the
 * engine cannot read have only a name (blck 0). The prepared layouts made from some of these
 * types (16 rows interleaved) have their own table in kernels/x16.c. */
struct lfm2_type_traits {
    const char *name;   /* ggml's name ("Q4_K"); NULL for ids ggml does not define */
    int blck;           /* elements per block; 0: not a format the engine reads */
    int bytes;          /* bytes per block */
    bool weight;        /* files may store weights in it (else an activation format only) */
    int act;            /* enum lfm2_act of products with it; -1: no product */
    /* reference dequantization / quantization of n elements (a multiple of blck); NULL when
     * the engine has none */
    void (*to_float)(const void *src, float *dst, int64_t n);
    void (*from_float)(const float *src, void *dst, int64_t n);
};

/* The entry of a type id; never NULL (unknown ids get an empty entry). */
const struct lfm2_type_traits *lfm2_type_traits(uint32_t type);
/* Bytes of one activation row of k elements (k a multiple of the format's block), and the
 * block size of the format. */
size_t lfm2_act_row_bytes(enum lfm2_act act, int64_t k);
int lfm2_act_block(enum lfm2_act act);

/* ---- reference dequantization: n elements (multiple of the block size); zeros for a type
 * with no conversion ---- */
void lfm2_dequantize_row(enum lfm2_type type, const void *src, float *dst, int64_t n);

/* ---- reference quantization of weights (ggml's quantize_row_*_ref); returns bytes written.
 * Q4_K/Q5_K/Q6_K use ggml's reference quantizers (make_qkx2_quants / make_qx_quants). ---- */
size_t lfm2_quantize_row(enum lfm2_type type, const float *src, void *dst, int64_t n);

/* ---- activation quantization exactly as ggml's x86 CPU backend does before a dot product:
 * Q8_0: per 32, d = amax/127 (stored fp16), q = round-half-even(x * 127/amax).
 * Q8_1: the Q8_0 rounding plus s = fp16(d·Σq) with d unrounded.
 * Q8_K: per 256, m = signed value of largest magnitude, iscale = -127/m, q = min(127,
 *       round-half-even(x*iscale)), d = 1/iscale, bsums = sums of 16.
 * Every SIMD quantizer gives the same bytes as these, for any input bits:
 *   - a block holding a NaN or an infinity gets d = NaN (Q8_1: s = NaN too) and zero quants,
 *     so every product with it is NaN and the caller sees it (ggml drops NaN silently, or
 *     not, depending on the CPU);
 *   - a block whose multiplier 127/amax overflows (amax below 127/FLT_MAX, all zero included)
 *     is all zeros. ---- */
void lfm2_quantize_row_q8_0(const float *x, void *y, int64_t n);
void lfm2_quantize_row_q8_1(const float *x, void *y, int64_t n);
void lfm2_quantize_row_q8_K(const float *x, void *y, int64_t n);

/* Which of the rules above a block follows, from its largest |x| (NaN when the block holds a
 * NaN or an infinity); every quantizer decides through this. */
enum lfm2_q8_case { LFM2_Q8_QUANT, LFM2_Q8_ZERO, LFM2_Q8_NAN };
static inline enum lfm2_q8_case lfm2_q8_case(float amax)
{
    if (amax != amax)
        return LFM2_Q8_NAN;
    return amax == 0.0f || 127.f / amax > FLT_MAX ? LFM2_Q8_ZERO : LFM2_Q8_QUANT;
}

/* The largest |x| of a block from the integer maximum of the |x| bit patterns (how the SIMD
 * quantizers find it: for non-negative floats the integer order is the numeric order, with
 * the infinities and NaNs above every finite value); NaN for a non-finite block. */
static inline float lfm2_amax_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return bits >= 0x7f800000u ? NAN : f;
}

#define LFM2_FP16_NAN 0x7e00   /* the quiet NaN fp32→fp16 makes of NAN */

/* The blocks of the cases that are not quantized (LFM2_Q8_NAN, LFM2_Q8_ZERO). */
static inline void lfm2_q8_0_unquantized(enum lfm2_q8_case c, block_q8_0 *y)
{
    memset(y, 0, sizeof *y);
    if (c == LFM2_Q8_NAN)
        y->d = LFM2_FP16_NAN;
}

/* For a SIMD quantizer: fills y (and the Q8_1 sum s when not NULL) when the block with
 * largest |x| amax is not to be quantized, and says whether it did. */
static inline bool lfm2_q8_0_special(float amax, block_q8_0 *y, lfm2_fp16 *s)
{
    const enum lfm2_q8_case c = lfm2_q8_case(amax);
    if (c == LFM2_Q8_QUANT)
        return false;
    lfm2_q8_0_unquantized(c, y);
    if (s)
        *s = y->d;
    return true;
}

static inline void lfm2_q8_K_unquantized(enum lfm2_q8_case c, block_q8_K *y)
{
    memset(y, 0, sizeof *y);
    if (c == LFM2_Q8_NAN)
        y->d = NAN;
}

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
