/* kernels.h — the per-ISA kernel tables behind lfm2-ops.h (internal to the engine).
 *
 * Each dispatch path has one `struct lfm2_kernels`, a static initializer in its own file
 * (scalar.c, avx2.c, avx512.c); dispatch.c picks one at run time and ops read it at the start
 * of each call. A table is complete: an entry is NULL only where the comment says what NULL
 * means. The scalar table is the oracle the SIMD tables are tested against.
 *
 * Which kernel runs for a product (matmul.c: the weight type's gemm when the path has one —
 * then for every batch size —, else its tile over token tiles of 64; "4 rows" = four weight
 * rows share each activation load):
 *
 *   weight type    scalar              AVX2                              AVX-512
 *   F32            tile                tile, 4 rows                      tile, 4 rows, masked tail
 *   F16            tile                tile, 4 rows                      gemm, rows in place: 1 token
 *                                                                          streamed, batches 3×4
 *   BF16           tile                gemm, rows in place: 1 token      gemm, rows in place: 1 token
 *                                        streamed, batches 2×2             streamed, batches 3×4
 *                                                                          (VDPBF16PS) or 2×4 (widen)
 *   Q8_0           tile                tile, 4 rows (VPMADDUBSW)         tile, 2 blocks per zmm (VBMI)
 *   Q4_0           tile                tile, 4 rows                      tile, 3 blocks per zmm
 *   Q4_1 Q5_0 Q5_1 tile                tile, 4 rows                      tile, 4 rows (256-bit VNNI)
 *   Q4_K Q5_K Q6_K tile                tile, 4 rows                      tile, 4 rows (512-bit)
 *   *_X16          gemm (scalar)       gemm: one 16-row group ×          gemm: 4 groups × 1 token,
 *   (prepared)                           1–4 tokens (floats: 1–6)          2 × 2–4, 1 × 5–8 (K: 1–4)
 *
 * A tile and a gemm give each (row, token) output the same operations whatever the batch, so
 * prefill and decode agree bit for bit on every path. Encoder attention (no mask) runs the
 * biatt_* register tiles where the path has them (AVX2, AVX-512), else attn_block; GELU
 * through ggml's fp16 table runs gelu_lut (a gather on AVX2 / AVX-512).
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

struct lfm2_kernels;

/* Converts one row of k floats to an activation format (quants.h). */
typedef void (*lfm2_act_fn)(const float *x, void *y, int64_t k);

/* Matrix tile: for t < nt and r < nr,
 *     y[t·ldy + r] = Σ_i w_r[i] · x_t[i]
 * with weight row r at w + r·nb1 (type-specific blocks) and activation row t at x + t·xs
 * (in the weight type's activation format). k = elements per row. */
typedef void (*lfm2_tile_fn)(int64_t k, const void *w, size_t nb1, int64_t nr,
                             const void *x, size_t xs, int64_t nt, float *y, int64_t ldy);

/* Batched products: the activations of all n tokens are packed once per call, token_bytes(k)
 * apart, in a layout the kernel chooses, with the path's activation quantizers (kt->act);
 * then each thread multiplies a range of weight rows by every token. Weight types whose gemm
 * shares `pack` share the packed input. Rounding is that of the type's activation format, so
 * a gemm and a tile differ only by float summation order. */
struct lfm2_gemm {
    size_t (*token_bytes)(int64_t k);
    /* packs tokens [t0, t1) — t0 a multiple of 16 — of the rows of x */
    void (*pack)(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                 int64_t t0, int64_t t1, void *dst);
    /* y[t][r] for r in [r0, r1), t < n */
    void (*run)(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                const void *packed, int64_t n, float *y, int64_t ldy);
};

/* A gemm entry point (name) that calls a layout family's runner fn with the layout as its
 * first, constant argument. */
#define LFM2_GEMM_ENTRY(name, fn, arg)                                                           \
    static void name(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,               \
                     const void *packed, int64_t n, float *y, int64_t ldy)                       \
    {                                                                                            \
        fn(arg, k, w, nb1, r0, r1, packed, n, y, ldy);                                           \
    }

/* The gemm entries of the prepared layouts in a gemm array, from the including file's
 * run_q8, run_q4, run_f16, run_f32, run_q4k, run_q5k, run_q6k and the F16 pack it uses. */
#define LFM2_X16_GEMMS(F16_PACK)                                                                  \
    [LFM2_TYPE_Q8_0_X16] = &(const struct lfm2_gemm){ lfm2_x16q_token_bytes, lfm2_x16_pack_q8, run_q8 }, \
    [LFM2_TYPE_Q4_0_X16] = &(const struct lfm2_gemm){ lfm2_x16q_token_bytes, lfm2_x16_pack_q4, run_q4 }, \
    [LFM2_TYPE_F16_X16] = &(const struct lfm2_gemm){ lfm2_x16f_token_bytes, F16_PACK, run_f16 },        \
    [LFM2_TYPE_F32_X16] = &(const struct lfm2_gemm){ lfm2_x16f_token_bytes, lfm2_x16_pack_f32, run_f32 }, \
    [LFM2_TYPE_Q4_K_X16] = &(const struct lfm2_gemm){ lfm2_x16k_token_bytes, lfm2_x16_pack_k, run_q4k }, \
    [LFM2_TYPE_Q5_K_X16] = &(const struct lfm2_gemm){ lfm2_x16k_token_bytes, lfm2_x16_pack_k, run_q5k }, \
    [LFM2_TYPE_Q6_K_X16] = &(const struct lfm2_gemm){ lfm2_x16k_token_bytes, lfm2_x16_pack_k, run_q6k }

/* Keys per transposed block of encoder attention (ops.c packs them, biatt_* read them). */
#define LFM2_BIATT_KB 64

struct lfm2_kernels {
    enum lfm2_cpu_path path;
    lfm2_act_fn act[LFM2_ACT_COUNT];           /* act[LFM2_ACT_F32] unused (x is used in place) */
    lfm2_tile_fn tile[LFM2_TYPE_COUNT];        /* by weight type; NULL where gemm serves it */
    const struct lfm2_gemm *const *gemm;       /* [LFM2_KTYPE_COUNT], by weight type; NULL
                                                  entries: the tile (x16 layouts: never NULL) */

    /* float helpers for attention and the elementwise ops */
    void (*silu_mul)(float *out, const float *g, const float *u, int64_t n);   /* u may be NULL */
    double (*sumsq)(const float *x, int64_t n);   /* Σ fl(x·x) in double */
    double (*exp_sub_sum)(float *y, const float *x, float sub, int64_t n);     /* y = e^(x−sub) */
    void (*scale_f32)(float *y, float s, int64_t n);                            /* y *= s */
    /* x = ggml's fp16-table GELU of x: 0 below −10, x above 10, else
     * fp16→f32(table[f32→fp16(x)]) (lfm2_gelu_lut1) */
    void (*gelu_lut)(const uint16_t *table, float *x, int64_t n);

    /* attention for the query heads of kv head g, query rows [i0, i1) (≤ 16), with
     * attn_scratch(hd, n_head / n_head_kv) floats; causal, windowed or not */
    void (*attn_block)(const struct lfm2_attn_args *a, int g, int i0, int i1, float *scratch);
    size_t (*attn_scratch)(int hd, int grp);

    /* Encoder attention register tiles (NULL: the path has none, ops.c uses attn_block).
     * kt: one kv head's keys as nkb blocks [hd][LFM2_BIATT_KB]; v: its values as rows of hdp
     * floats (hdp a multiple of 16), nkb·LFM2_BIATT_KB of them.
     *   scores: s[r][j] = scale · q_r·k_j, 4 query rows, every key
     *   pv:     o[r] += Σ_j p[r][j]·v_j, 4 rows, every key
     *   row_max: max of n floats (n a multiple of 16) */
    void (*biatt_scores)(const float *kt, int nkb, int hd, float scale, const float *const q[4],
                         float *const s[4]);
    void (*biatt_pv)(const float *v, int nkb, int hdp, float *const p[4], float *const o[4]);
    float (*biatt_row_max)(const float *s, int n);
};

/* The table of the active path (lfm2_set_cpu_path / LFM2_CPU_PATH / best available). */
const struct lfm2_kernels *lfm2_kernels_get(void);
/* The table of a given path, NULL if not compiled in or not supported by this CPU. */
const struct lfm2_kernels *lfm2_kernels_for(enum lfm2_cpu_path path);

/* The per-ISA tables (only use a SIMD one when the CPU supports the ISA). The AVX-512 path
 * has two: with VDPBF16PS (AVX512_BF16) and without (Ice Lake); they differ in the BF16 gemm. */
extern const struct lfm2_kernels lfm2_kernels_scalar;
extern const struct lfm2_kernels lfm2_kernels_avx2;
extern const struct lfm2_kernels lfm2_kernels_avx512;
extern const struct lfm2_kernels lfm2_kernels_avx512_bf16;
/* their gemm arrays ([LFM2_KTYPE_COUNT]; x16.c, avx2-x16.c, avx512-gemm.c) */
extern const struct lfm2_gemm *const lfm2_gemm_scalar[LFM2_KTYPE_COUNT];
extern const struct lfm2_gemm *const lfm2_gemm_avx2[LFM2_KTYPE_COUNT];
extern const struct lfm2_gemm *const lfm2_gemm_avx512[LFM2_KTYPE_COUNT];
extern const struct lfm2_gemm *const lfm2_gemm_avx512_bf16[LFM2_KTYPE_COUNT];

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
/* the file type an x16 layout is made from; -1 for other types */
int lfm2_x16_source(int type);
size_t lfm2_x16_group_bytes(int type, int64_t k);            /* bytes per 16 rows */

/* Groups are stored whole, one after another; Q4_K, Q5_K and Q6_K groups are made of
 * super-block chunks (X16_Q4K_SB / X16_Q5K_SB / X16_Q6K_SB bytes). */
void lfm2_x16_row_f32(const lfm2_tensor *w, int64_t r, float *out);
/* Activation packs: per token, Q8_0 quants + per block −c·Σq and d_x (lfm2_x16q_*), Q8_K
 * quants + per super-block 16 int32: d_x (float), the four 32-element sums as int16 pairs,
 * the sixteen 16-element sums as int16 pairs, padding (lfm2_x16k_*), or the rounded floats
 * (lfm2_x16f_*). The pack functions serve every path's gemm (with the path's quantizers). */
size_t lfm2_x16q_token_bytes(int64_t k);
size_t lfm2_x16k_token_bytes(int64_t k);
size_t lfm2_x16f_token_bytes(int64_t k);
void lfm2_x16_pack_q8(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst);   /* c = 128: Q8_0 weights + 128 */
void lfm2_x16_pack_q4(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst);   /* c = 8: Q4_0 nibbles */
void lfm2_x16_pack_k(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                     int64_t t0, int64_t t1, void *dst);
void lfm2_x16_pack_f32(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                       int64_t t0, int64_t t1, void *dst);
/* rounded through fp16 with F16C (avx2-x16.c; the AVX2 and AVX-512 gemms) */
void lfm2_x16_pack_f16_f16c(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                            int64_t t0, int64_t t1, void *dst);
/* per 16-row group and super-block: Q4_K 2368 bytes, Q6_K 3392 bytes, Q5_K 2880 bytes (the
 * Q4_K layout, then the fifth bits at X16_Q5K_QH; see x16.c) */
#define X16_Q4K_SB 2368
#define X16_Q6K_SB 3392
#define X16_Q5K_SB 2880
#define X16_Q5K_QH 2368

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

/* One element of ggml's table GELU (gelu_lut's tail on every path). */
static inline float lfm2_gelu_lut1(const uint16_t *table, float v)
{
    if (v <= -10.0f)
        return 0.0f;
    if (v >= 10.0f)
        return v;
    return lfm2_fp16_to_fp32(table[lfm2_fp32_to_fp16(v)]);
}

#endif /* LFM2_KERNELS_H */
