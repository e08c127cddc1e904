/* kernels.h — the per-ISA kernel table behind lfm2-ops.h (internal to the engine).
 *
 * Each dispatch path (scalar, AVX2, AVX-512) fills one `struct lfm2_kernels`. The scalar table
 * is complete and is the oracle the SIMD tables are tested against; a SIMD table may leave an
 * entry NULL, in which case lfm2_kernels_get() fills it from the scalar table.
 *
 * Activation formats (what x is rounded to before a product with a weight type):
 *   F32  → plain floats                         F16  → fp16 (round to nearest even)
 *   BF16 → bf16 (ggml rounding)                 Q4_0, Q5_0, Q8_0 → Q8_0 blocks of 32
 *   Q4_1, Q5_1 → Q8_1 blocks (s = fp16(d·Σq))   Q4_K, Q5_K, Q6_K → Q8_K blocks of 256
 */
#ifndef LFM2_KERNELS_H
#define LFM2_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2-ops.h"
#include "quants.h"

/* Internal weight layouts made by lfm2_weights_prepare (never found in files; see x16.c):
 * 16 rows interleaved so they fill the vector lanes. */
enum {
    LFM2_TYPE_Q8_0_X16 = LFM2_TYPE_COUNT,
    LFM2_TYPE_Q4_0_X16,
    LFM2_TYPE_F16_X16,
    LFM2_TYPE_F32_X16,
    LFM2_TYPE_Q4_K_X16,
    LFM2_TYPE_Q6_K_X16,
    LFM2_TYPE_Q5_K_X16,
    LFM2_KTYPE_COUNT,
};

enum lfm2_act {
    LFM2_ACT_F32 = 0,
    LFM2_ACT_F16,
    LFM2_ACT_BF16,
    LFM2_ACT_Q8_0,
    LFM2_ACT_Q8_1,
    LFM2_ACT_Q8_K,
    LFM2_ACT_COUNT,
};

/* The activation format for a weight type; -1 for types that are not weight types. */
int lfm2_act_for_type(enum lfm2_type type);
/* Bytes of one activation row of k elements (k a multiple of the format's block). */
size_t lfm2_act_row_bytes(enum lfm2_act act, int64_t k);

/* Converts one row of k floats to an activation format. */
typedef void (*lfm2_act_fn)(const float *x, void *y, int64_t k);

/* Matrix tile: for t < nt and r < nr,
 *     y[t·ldy + r] = Σ_i w_r[i] · x_t[i]
 * with weight row r at w + r·nb1 (type-specific blocks) and activation row t at x + t·xs
 * (in the weight type's activation format). k = elements per row. */
typedef void (*lfm2_tile_fn)(int64_t k, const void *w, size_t nb1, int64_t nr,
                             const void *x, size_t xs, int64_t nt, float *y, int64_t ldy);

/* Batched products (prefill): the activations of all n tokens are packed once per call in a
 * layout the kernel chooses (e.g. 16 tokens per vector), then each thread multiplies a range
 * of weight rows by every token. Weight types whose gemm shares `pack` share the packed input.
 * Rounding is the same as the tile path (same activation format, same per-block float
 * scaling), so the two paths differ only by float summation order. */
struct lfm2_gemm {
    size_t (*packed_size)(int64_t k, int64_t n);
    /* packs tokens [t0, t1) — t0 a multiple of 16 — of the n rows of x */
    void (*pack)(const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1,
                 void *dst);
    /* bytes of per-thread scratch `run` needs */
    size_t (*tmp_size)(int64_t k);
    /* y[t][r] for r in [r0, r1), t < n */
    void (*run)(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                const void *packed, int64_t n, float *y, int64_t ldy, void *tmp);
    int min_n;   /* used from this many tokens on (x16 layouts: always) */
};

struct lfm2_kernels {
    enum lfm2_cpu_path path;
    lfm2_act_fn act[LFM2_ACT_COUNT];          /* act[LFM2_ACT_F32] unused (x is used in place) */
    lfm2_tile_fn tile[LFM2_TYPE_COUNT];       /* by weight type */
    const struct lfm2_gemm *gemm[LFM2_KTYPE_COUNT];  /* optional; required for x16 types */

    /* float helpers for attention and the elementwise ops */
    void (*silu_mul)(float *out, const float *g, const float *u, int64_t n);   /* u may be NULL */
    double (*sumsq)(const float *x, int64_t n);   /* Σ fl(x·x) in double */
    double (*exp_sub_sum)(float *y, const float *x, float sub, int64_t n);     /* y = e^(x−sub) */
    /* attention for the query heads of kv head g, query rows [i0, i1) (≤ 16), with
     * attn_scratch(hd, n_head / n_head_kv) floats */
    void (*attn_block)(const struct lfm2_attn_args *a, int g, int i0, int i1, float *scratch);
    size_t (*attn_scratch)(int hd, int grp);
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);   /* y += a·x */
    void (*scale_f32)(float *y, float s, int64_t n);                  /* y *= s */
};

/* The table of the active path (lfm2_set_cpu_path / LFM2_CPU_PATH / best available). */
const struct lfm2_kernels *lfm2_kernels_get(void);
/* The table of a given path, NULL if not compiled in or not supported by this CPU. */
const struct lfm2_kernels *lfm2_kernels_for(enum lfm2_cpu_path path);

/* Raw per-ISA tables (entries may be NULL; only call when the CPU supports the ISA). */
void lfm2_kernels_init_scalar(struct lfm2_kernels *k);
void lfm2_kernels_init_avx2(struct lfm2_kernels *k);
void lfm2_kernels_init_avx512(struct lfm2_kernels *k);

/* CPU feature bits (cpuid + OS support of the register state). */
enum {
    LFM2_CPU_HAS_AVX2 = 1 << 0,
    LFM2_CPU_HAS_FMA = 1 << 1,
    LFM2_CPU_HAS_F16C = 1 << 2,
    LFM2_CPU_HAS_AVX512F = 1 << 3,
    LFM2_CPU_HAS_AVX512BW = 1 << 4,
    LFM2_CPU_HAS_AVX512VL = 1 << 5,
    LFM2_CPU_HAS_AVX512DQ = 1 << 6,
    LFM2_CPU_HAS_AVX512VNNI = 1 << 7,
    LFM2_CPU_HAS_AVX512BF16 = 1 << 8,
    LFM2_CPU_HAS_AVX512VBMI = 1 << 9,
};
unsigned lfm2_cpu_flags(void);

/* ---- x16 layouts (x16.c) ---- */
bool lfm2_type_is_x16(int type);
size_t lfm2_x16_group_bytes(int type, int64_t k);            /* bytes per 16 rows */

/* Groups are stored whole, one after another; Q4_K and Q6_K groups are made of super-block
 * chunks (X16_Q4K_SB / X16_Q6K_SB bytes). A chunk-interleaved layout of four groups ("quads",
 * one linear decode stream instead of four) was measured and dropped: ~25 % slower F16
 * prefill and ~8 % slower one-thread Q4_K decode (docs/benchmarks.md). */
void lfm2_x16_row_f32(const lfm2_tensor *w, int64_t r, float *out);
/* activation packs: per token, Q8_0 quants + per block −c·Σq and d_x (quantized types) or the
 * rounded floats (float types) */
size_t lfm2_x16q_token_bytes(int64_t k);
void lfm2_x16q_pack(lfm2_act_fn quant, int c, const float *x, int64_t ldx, int64_t k, int64_t t0,
                    int64_t t1, void *dst);
size_t lfm2_x16f_token_bytes(int64_t k);
/* K-quants: Q8_K quants (k bytes), then per super-block 16 int32: d_x (float), the four
 * 32-element sums as int16 pairs, the sixteen 16-element sums as int16 pairs, padding */
size_t lfm2_x16k_token_bytes(int64_t k);
void lfm2_x16k_pack(lfm2_act_fn quant, const float *x, int64_t ldx, int64_t k, int64_t t0, int64_t t1,
                    void *dst);
/* per 16-row group and super-block: Q4_K 2368 bytes, Q6_K 3392 bytes, Q5_K 2880 bytes (the
 * Q4_K layout, then the fifth bits at X16_Q5K_QH; see x16.c) */
#define X16_Q4K_SB 2368
#define X16_Q6K_SB 3392
#define X16_Q5K_SB 2880
#define X16_Q5K_QH 2368
void lfm2_x16f_pack(int rounding, const float *x, int64_t ldx, int64_t k, int64_t t0, int64_t t1,
                    void *dst);
void lfm2_x16_init_scalar(struct lfm2_kernels *k);
void lfm2_x16_init_avx2(struct lfm2_kernels *k);
void lfm2_x16_init_avx512(struct lfm2_kernels *k);

/* ---- opt-in profile (LFM2_PROFILE=1): wall time per op class, printed at exit ---- */
enum { LFM2_PROF_MATMUL_1, LFM2_PROF_MATMUL_N, LFM2_PROF_ATTENTION, LFM2_PROF_COUNT };
extern int lfm2_prof_on;   /* -1 until the environment was read */
void lfm2_prof_init(void);
void lfm2_prof_add(int what, double ms, double macs);
/* LFM2_PROFILE=2: one product's time by shape (bytes = weight bytes read) */
void lfm2_prof_shape(int type, int n_w, long long k, long long rows, long long n, double bytes, double ms);

/* ---- pool internals shared with matmul.c / ops.c ---- */

/* Waits until every thread of the pool running the current task reaches the barrier. Only
 * valid inside a task started by lfm2_pool_run (all nth threads must call it). */
void lfm2_pool_barrier(lfm2_pool *pool);

/* ---- scalar helpers (also used by the SIMD files for tails) ---- */

static inline float lfm2_h2f(lfm2_fp16 h) { return lfm2_fp16_to_fp32(h); }

#endif /* LFM2_KERNELS_H */
