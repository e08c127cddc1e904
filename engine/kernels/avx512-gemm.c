/* avx512-gemm.c — prefill GEMM for Q8_0 and Q4_0 weights with AVX-512 VNNI.
 *
 * Layout: tokens live in the vector lanes. The activations of 16 tokens are quantized once per
 * call (ggml's Q8_0 rounding, same bits as the decode path) and stored as unsigned bytes
 * (q + 128), 4 consecutive k per lane, so one zmm holds k..k+3 of all 16 tokens. A weight's
 * 4 bytes for the same k are broadcast to every lane, and VPDPBUSD adds 16 dot products of
 * length 4 at once — the weights stay signed and are read in place from the mapping (Q8_0) or
 * from a small per-thread unpack buffer (Q4_0 nibbles → q − 8).
 *
 * The +128 offset is removed by starting each block's integer sum at −128·Σw (precomputed per
 * weight block). Each block's int32 sum is then converted and scaled by d_w·d_x in float and
 * accumulated, exactly the per-block arithmetic of ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0.
 *
 * Micro-kernel: 4 weight rows × 3 token groups (48 tokens) = 12 integer + 12 float zmm
 * accumulators. Threads own disjoint row ranges; tokens are processed in chunks whose packed
 * activations fit in L2, each weight row tile staying in L1 across the chunk.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))
#define TG 16        /* tokens per group (zmm lanes) */
#define MR 4         /* weight rows per micro-kernel */

/* ---- packed activations: per group, K·16 bytes of (q+128), then nb·16 float scales ---- */

static size_t group_bytes(int64_t k) { return (size_t)k * TG + (size_t)(k / 32) * TG * sizeof(float); }

static size_t q8t_packed_size(int64_t k, int64_t n) { return group_bytes(k) * (size_t)((n + TG - 1) / TG); }

static void q8t_pack(const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1,
                     void *dst)
{
    const int64_t nb = k / 32;
    const size_t gb = group_bytes(k);
    const __m256i dword_idx = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    for (int64_t g = t0 / TG; g * TG < t1; g++) {
        uint8_t *base = (uint8_t *)dst + (size_t)g * gb;
        float *dx = (float *)(base + (size_t)k * TG);
        for (int lane = 0; lane < TG; lane++) {
            const int64_t t = g * TG + lane;
            int32_t *col = (int32_t *)base + lane;   /* dword (b·8 + j)·16 + lane */
            if (t >= n) {   /* padding lane: q = 0 (stored 128), scale 0 */
                for (int64_t i = 0; i < nb * 8; i++)
                    col[i * TG] = (int32_t)0x80808080u;
                for (int64_t b = 0; b < nb; b++)
                    dx[b * TG + lane] = 0.0f;
                continue;
            }
            const float *xt = x + t * ldx;
            for (int64_t b = 0; b < nb; b++, xt += 32) {
                const __m512 v0 = _mm512_loadu_ps(xt), v1 = _mm512_loadu_ps(xt + 16);
                const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
                const float id = amax != 0.0f ? 127.f / amax : 0.0f;
                dx[b * TG + lane] = _cvtsh_ss(_cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT));
                const __m512 m = _mm512_set1_ps(id);
                const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi32_epi8(i0)),
                                                    _mm512_cvtsepi32_epi8(i1), 1);
                q = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
                _mm256_i32scatter_epi32(col + b * 8 * TG, dword_idx, q, 4);
            }
        }
    }
}

/* ---- blocking ----
 * For each token chunk (TC_GROUPS groups) and row chunk (RC rows) the K axis is walked in
 * slices of KC_BLOCKS blocks. Within a slice, the activations of 3 groups (48 tokens × 256 k
 * = 12 KiB) stay in L1 while every 4-row tile of the chunk passes over them; the float partial
 * sums live in a per-thread C buffer (L2) between slices. */
#define KC_BLOCKS 8     /* k-slice: 8 blocks = 256 k */
#define RC 64           /* rows per chunk: its weight slice (64 × 272 B) stays in L1 */
#define TC_GROUPS 12    /* token groups per chunk (192 tokens) */

/* per-thread scratch: weight slice of the row chunk (Q4_0 unpacked), −128·Σw and d_w per
 * (row, block) of the slice, and C[row tile][group][4][16] */
struct gemm_tmp {
    int8_t *unpacked;   /* RC × KC_BLOCKS·32 */
    int32_t *corr;      /* RC × KC_BLOCKS */
    float *dw;          /* RC × KC_BLOCKS */
    float *c;           /* RC/4 × TC_GROUPS × 4 × 16 */
};

static size_t q8t_tmp_size(int64_t k)
{
    (void)k;
    return (size_t)RC * KC_BLOCKS * 32 + (size_t)RC * KC_BLOCKS * 8 +
           (size_t)RC * TC_GROUPS * TG * sizeof(float) + 4 * 64;
}

static void tmp_layout(void *mem, struct gemm_tmp *t)
{
    uint8_t *p = (uint8_t *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    t->c = (float *)p;
    p += (size_t)RC * TC_GROUPS * TG * sizeof(float);
    t->unpacked = (int8_t *)p;
    p += (size_t)RC * KC_BLOCKS * 32;
    t->corr = (int32_t *)p;
    p += (size_t)RC * KC_BLOCKS * sizeof(int32_t);
    t->dw = (float *)p;
}

INLINE int32_t sum_i8_32(const int8_t *q)
{
    /* Σ(q + 128) with SAD against zero, minus 32·128 */
    const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), _mm256_set1_epi8((char)0x80));
    const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
}

/* Corrections and scales for rows [0, nrows) of the chunk, blocks [b0, b0 + kcb); Q4_0 also
 * unpacks the nibbles to q − 8. */
static void prep_slice(int is_q4, const uint8_t *w, size_t nb1, int64_t nrows, int64_t b0, int kcb,
                       struct gemm_tmp *t)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    /* a partial last tile repeats the last row (its results are never stored) */
    const int64_t npad = (nrows + MR - 1) / MR * MR;
    for (int64_t r = 0; r < npad; r++) {
        const uint8_t *row = w + (size_t)(r < nrows ? r : nrows - 1) * nb1;
        int32_t *corr = t->corr + r * KC_BLOCKS;
        float *dw = t->dw + r * KC_BLOCKS;
        if (is_q4) {
            const block_q4_0 *blk = (const block_q4_0 *)row + b0;
            int8_t *u = t->unpacked + (size_t)r * KC_BLOCKS * 32;
            for (int b = 0; b < kcb; b++) {
                const __m128i v = _mm_loadu_si128((const __m128i *)blk[b].qs);
                __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
                q = _mm256_sub_epi8(_mm256_and_si256(q, m4), eight);
                _mm256_store_si256((__m256i *)(u + b * 32), q);
                corr[b] = -128 * sum_i8_32(u + b * 32);
                dw[b] = _cvtsh_ss(blk[b].d);
            }
        } else {
            const block_q8_0 *blk = (const block_q8_0 *)row + b0;
            for (int b = 0; b < kcb; b++) {
                corr[b] = -128 * sum_i8_32(blk[b].qs);
                dw[b] = _cvtsh_ss(blk[b].d);
            }
        }
    }
}

/* ---- micro-kernel: 4 rows × G token groups over kcb blocks, accumulating into C ---- */

INLINE void ukernel(const int G, const int WS, int kcb, const int8_t *const wr[MR],
                    const int32_t *corr, const float *dw, const uint8_t *act, size_t gb,
                    const float *dxp, float *c, int first)
{
    __m512 facc[MR][3];
    for (int r = 0; r < MR; r++)
        for (int g = 0; g < G; g++)
            facc[r][g] = first ? _mm512_setzero_ps() : _mm512_load_ps(c + (g * MR + r) * TG);
    for (int b = 0; b < kcb; b++) {
        __m512i acc[MR][3];
        for (int r = 0; r < MR; r++) {
            const __m512i cv = _mm512_set1_epi32(corr[r * KC_BLOCKS + b]);
            for (int g = 0; g < G; g++)
                acc[r][g] = cv;
        }
        const uint8_t *ab = act + (size_t)b * 8 * 64;
        for (int j = 0; j < 8; j++) {
            __m512i av[3];
            for (int g = 0; g < G; g++)
                av[g] = _mm512_load_si512(ab + g * gb + j * 64);
            for (int r = 0; r < MR; r++) {
                int32_t wq;
                memcpy(&wq, wr[r] + b * WS + 4 * j, 4);
                const __m512i wv = _mm512_set1_epi32(wq);
                for (int g = 0; g < G; g++)
                    acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], av[g], wv);
            }
        }
        __m512 dxv[3];
        for (int g = 0; g < G; g++)
            dxv[g] = _mm512_load_ps((const float *)((const uint8_t *)dxp + g * gb) + b * TG);
        for (int r = 0; r < MR; r++) {
            const __m512 dwv = _mm512_set1_ps(dw[r * KC_BLOCKS + b]);
            for (int g = 0; g < G; g++)
                facc[r][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][g]), _mm512_mul_ps(dxv[g], dwv), facc[r][g]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int g = 0; g < G; g++)
            _mm512_store_ps(c + (g * MR + r) * TG, facc[r][g]);
}

/* Writes the MR × 16 results of one group (tokens t0..t0+15) to y[t][r0 + i]. */
static void store_group(const float *cg, float *y, int64_t ldy, int64_t r0, int nr, int64_t t0,
                        int64_t n)
{
    if (nr == MR && t0 + TG <= n) {
        /* 4×16 transpose: each 128-bit lane of u_i holds rows 0..3 of token 4L + i */
        const __m512 f0 = _mm512_load_ps(cg), f1 = _mm512_load_ps(cg + TG);
        const __m512 f2 = _mm512_load_ps(cg + 2 * TG), f3 = _mm512_load_ps(cg + 3 * TG);
        const __m512 a0 = _mm512_unpacklo_ps(f0, f1), a1 = _mm512_unpackhi_ps(f0, f1);
        const __m512 a2 = _mm512_unpacklo_ps(f2, f3), a3 = _mm512_unpackhi_ps(f2, f3);
        const __m512 u[4] = {
            _mm512_shuffle_ps(a0, a2, 0x44), _mm512_shuffle_ps(a0, a2, 0xEE),
            _mm512_shuffle_ps(a1, a3, 0x44), _mm512_shuffle_ps(a1, a3, 0xEE),
        };
        float *yb = y + t0 * ldy + r0;
        for (int i = 0; i < 4; i++) {
            _mm_storeu_ps(yb + (0 + i) * ldy, _mm512_extractf32x4_ps(u[i], 0));
            _mm_storeu_ps(yb + (4 + i) * ldy, _mm512_extractf32x4_ps(u[i], 1));
            _mm_storeu_ps(yb + (8 + i) * ldy, _mm512_extractf32x4_ps(u[i], 2));
            _mm_storeu_ps(yb + (12 + i) * ldy, _mm512_extractf32x4_ps(u[i], 3));
        }
        return;
    }
    for (int t = 0; t < TG && t0 + t < n; t++)
        for (int i = 0; i < nr; i++)
            y[(t0 + t) * ldy + r0 + i] = cg[i * TG + t];
}

INLINE void q8t_run(const int is_q4, int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                    const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    const int64_t nb = k / 32;
    const size_t gb = group_bytes(k);
    const int64_t ngroups = (n + TG - 1) / TG;
    const uint8_t *act0 = packed;
    struct gemm_tmp t;
    tmp_layout(tmp, &t);

    for (int64_t g0 = 0; g0 < ngroups; g0 += TC_GROUPS) {
        const int64_t g1 = g0 + TC_GROUPS < ngroups ? g0 + TC_GROUPS : ngroups;
        for (int64_t rc0 = r0; rc0 < r1; rc0 += RC) {
            const int64_t rc1 = rc0 + RC < r1 ? rc0 + RC : r1;
            const int64_t nrows = rc1 - rc0;
            const uint8_t *wc = (const uint8_t *)w + (size_t)rc0 * nb1;
            for (int64_t b0 = 0; b0 < nb; b0 += KC_BLOCKS) {
                const int kcb = nb - b0 < KC_BLOCKS ? (int)(nb - b0) : KC_BLOCKS;
                const int first = b0 == 0;
                prep_slice(is_q4, wc, nb1, nrows, b0, kcb, &t);
                for (int64_t g = g0; g < g1; g += 3) {
                    const int G = g1 - g < 3 ? (int)(g1 - g) : 3;
                    const uint8_t *act = act0 + (size_t)g * gb + (size_t)b0 * 8 * 64;
                    const float *dxp = (const float *)(act0 + (size_t)g * gb + (size_t)k * TG) + b0 * TG;
                    for (int64_t rt = 0; rt < nrows; rt += MR) {
                        /* The next tile's weight rows, scales and partial sums are in L2 by
                         * now; fetch them while this tile computes (the broadcasts stall
                         * otherwise: ~25% of the time). */
                        if (rt + MR < nrows) {
                            for (int i = 0; i < MR; i++) {
                                const int64_t rn = rt + MR + i < nrows ? rt + MR + i : nrows - 1;
                                const uint8_t *pw = is_q4 ? (const uint8_t *)(t.unpacked + (size_t)(rt + MR + i) * KC_BLOCKS * 32)
                                                          : (const uint8_t *)((const block_q8_0 *)(wc + (size_t)rn * nb1) + b0);
                                const int bytes = is_q4 ? kcb * 32 : kcb * 34;
                                for (int o = 0; o < bytes + 63; o += 64)
                                    _mm_prefetch((const char *)pw + o, _MM_HINT_T0);
                            }
                            _mm_prefetch((const char *)(t.corr + (rt + MR) * KC_BLOCKS), _MM_HINT_T0);
                            _mm_prefetch((const char *)(t.corr + (rt + MR) * KC_BLOCKS) + 64, _MM_HINT_T0);
                            _mm_prefetch((const char *)(t.dw + (rt + MR) * KC_BLOCKS), _MM_HINT_T0);
                            _mm_prefetch((const char *)(t.dw + (rt + MR) * KC_BLOCKS) + 64, _MM_HINT_T0);
                            const float *cn = t.c + ((size_t)((rt + MR) / MR) * TC_GROUPS + (size_t)(g - g0)) * MR * TG;
                            for (int o = 0; o < G * MR * TG * 4; o += 64)
                                _mm_prefetch((const char *)cn + o, _MM_HINT_T0);
                        }
                        const int8_t *wr[MR];
                        for (int i = 0; i < MR; i++) {
                            const int64_t rr = rt + i < nrows ? rt + i : nrows - 1;
                            wr[i] = is_q4 ? t.unpacked + (size_t)(rt + i) * KC_BLOCKS * 32
                                          : ((const block_q8_0 *)(wc + (size_t)rr * nb1) + b0)->qs;
                        }
                        const int32_t *corr = t.corr + rt * KC_BLOCKS;
                        const float *dw = t.dw + rt * KC_BLOCKS;
                        float *c = t.c + ((size_t)(rt / MR) * TC_GROUPS + (size_t)(g - g0)) * MR * TG;
                        if (G == 3) {
                            if (is_q4) ukernel(3, 32, kcb, wr, corr, dw, act, gb, dxp, c, first);
                            else ukernel(3, 34, kcb, wr, corr, dw, act, gb, dxp, c, first);
                        } else if (G == 2) {
                            if (is_q4) ukernel(2, 32, kcb, wr, corr, dw, act, gb, dxp, c, first);
                            else ukernel(2, 34, kcb, wr, corr, dw, act, gb, dxp, c, first);
                        } else {
                            if (is_q4) ukernel(1, 32, kcb, wr, corr, dw, act, gb, dxp, c, first);
                            else ukernel(1, 34, kcb, wr, corr, dw, act, gb, dxp, c, first);
                        }
                    }
                }
            }
            /* the chunk's sums are complete: transpose into y */
            for (int64_t rt = 0; rt < nrows; rt += MR) {
                const int nr = nrows - rt < MR ? (int)(nrows - rt) : MR;
                for (int64_t g = g0; g < g1; g++)
                    store_group(t.c + ((size_t)(rt / MR) * TC_GROUPS + (size_t)(g - g0)) * MR * TG, y,
                                ldy, rc0 + rt, nr, g * TG, n);
            }
        }
    }
}

static void run_q8_0(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                     const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    q8t_run(0, k, w, nb1, r0, r1, packed, n, y, ldy, tmp);
}

static void run_q4_0(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                     const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    q8t_run(1, k, w, nb1, r0, r1, packed, n, y, ldy, tmp);
}

/* ================= float weights (F32, F16, BF16): FMA GEMM, same blocking ================= */

/* Packed activations per group of 16 tokens: xt[k][16] floats, already rounded the way ggml
 * rounds them for the weight type (fp16 / bf16 / none). */
#define FKC 128          /* k-slice (floats) */
#define FG 4             /* token groups per micro-kernel (64 tokens) */

static size_t ft_group_bytes(int64_t k) { return (size_t)k * TG * sizeof(float); }
static size_t ft_packed_size(int64_t k, int64_t n) { return ft_group_bytes(k) * (size_t)((n + TG - 1) / TG); }

INLINE void ft_pack(int mode, const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1, void *dst)
{
    const size_t gb = ft_group_bytes(k);
    for (int64_t g = t0 / TG; g * TG < t1; g++) {
        float *xt = (float *)((uint8_t *)dst + (size_t)g * gb);
        for (int lane = 0; lane < TG; lane++) {
            const int64_t t = g * TG + lane;
            if (t >= n) {
                for (int64_t i = 0; i < k; i++)
                    xt[i * TG + lane] = 0.0f;
                continue;
            }
            const float *xr = x + t * ldx;
            int64_t i = 0;
            if (mode == 1) {   /* fp16 rounding */
                for (; i + 16 <= k; i += 16) {
                    float v[16];
                    _mm512_storeu_ps(v, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(xr + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                    for (int j = 0; j < 16; j++)
                        xt[(i + j) * TG + lane] = v[j];
                }
                for (; i < k; i++)
                    xt[i * TG + lane] = _cvtsh_ss(_cvtss_sh(xr[i], _MM_FROUND_TO_NEAREST_INT));
            } else if (mode == 2) {   /* bf16 rounding, as lfm2_fp32_to_bf16 */
                for (; i < k; i++)
                    xt[i * TG + lane] = lfm2_bf16_to_fp32(lfm2_fp32_to_bf16(xr[i]));
            } else {
                for (; i < k; i++)
                    xt[i * TG + lane] = xr[i];
            }
        }
    }
}

static void ft_pack_f32(const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1, void *dst)
{
    ft_pack(0, x, ldx, k, n, t0, t1, dst);
}
static void ft_pack_f16(const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1, void *dst)
{
    ft_pack(1, x, ldx, k, n, t0, t1, dst);
}
static void ft_pack_bf16(const float *x, int64_t ldx, int64_t k, int64_t n, int64_t t0, int64_t t1, void *dst)
{
    ft_pack(2, x, ldx, k, n, t0, t1, dst);
}

static size_t ft_tmp_size(int64_t k)
{
    (void)k;
    return (size_t)RC * FKC * sizeof(float) + (size_t)RC * TC_GROUPS * TG * sizeof(float) + 2 * 64;
}

/* Weight slice [c0, c0 + kc) of rows [0, nrows) of the chunk as floats, kc padded to FKC with 0;
 * rows up to a multiple of MR repeat the last row. */
static void ft_prep(int type, const uint8_t *w, size_t nb1, int64_t nrows, int64_t c0, int kc, float *buf)
{
    const int64_t npad = (nrows + MR - 1) / MR * MR;
    for (int64_t r = 0; r < npad; r++) {
        const uint8_t *row = w + (size_t)(r < nrows ? r : nrows - 1) * nb1;
        float *o = buf + r * FKC;
        int i = 0;
        if (type == LFM2_TYPE_F16) {
            const uint16_t *h = (const uint16_t *)row + c0;
            for (; i + 16 <= kc; i += 16)
                _mm512_store_ps(o + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
            for (; i < kc; i++)
                o[i] = _cvtsh_ss(h[i]);
        } else if (type == LFM2_TYPE_BF16) {
            const uint16_t *h = (const uint16_t *)row + c0;
            for (; i + 16 <= kc; i += 16)
                _mm512_store_ps(o + i, _mm512_castsi512_ps(_mm512_slli_epi32(
                                           _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i))), 16)));
            for (; i < kc; i++)
                o[i] = lfm2_bf16_to_fp32(h[i]);
        } else {
            memcpy(o, (const float *)row + c0, (size_t)kc * sizeof(float));
            i = kc;
        }
        for (; i < FKC; i++)
            o[i] = 0.0f;
    }
}

/* 4 rows × G groups over a k-slice: per k, G activation loads, 4 broadcasts, 4·G FMAs */
INLINE void fkernel(const int G, int kc, const float *wr, const float *act, size_t gstride,
                    float *c, int first)
{
    __m512 acc[MR][FG];
    for (int r = 0; r < MR; r++)
        for (int g = 0; g < G; g++)
            acc[r][g] = first ? _mm512_setzero_ps() : _mm512_load_ps(c + (g * MR + r) * TG);
    for (int i = 0; i < kc; i++) {
        __m512 av[FG];
        for (int g = 0; g < G; g++)
            av[g] = _mm512_load_ps(act + g * gstride + i * TG);
        for (int r = 0; r < MR; r++) {
            const __m512 wv = _mm512_set1_ps(wr[r * FKC + i]);
            for (int g = 0; g < G; g++)
                acc[r][g] = _mm512_fmadd_ps(wv, av[g], acc[r][g]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int g = 0; g < G; g++)
            _mm512_store_ps(c + (g * MR + r) * TG, acc[r][g]);
}

INLINE void ft_run(int type, int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                   const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    const size_t gfl = (size_t)k * TG;   /* floats per group */
    const int64_t ngroups = (n + TG - 1) / TG;
    float *wbuf = (float *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
    float *cbuf = wbuf + (size_t)RC * FKC;
    const float *act0 = packed;

    for (int64_t g0 = 0; g0 < ngroups; g0 += TC_GROUPS) {
        const int64_t g1 = g0 + TC_GROUPS < ngroups ? g0 + TC_GROUPS : ngroups;
        for (int64_t rc0 = r0; rc0 < r1; rc0 += RC) {
            const int64_t rc1 = rc0 + RC < r1 ? rc0 + RC : r1;
            const int64_t nrows = rc1 - rc0;
            const uint8_t *wc = (const uint8_t *)w + (size_t)rc0 * nb1;
            for (int64_t c0 = 0; c0 < k; c0 += FKC) {
                const int kc = k - c0 < FKC ? (int)(k - c0) : FKC;
                const int first = c0 == 0;
                ft_prep(type, wc, nb1, nrows, c0, kc, wbuf);
                for (int64_t g = g0; g < g1; g += FG) {
                    const int G = g1 - g < FG ? (int)(g1 - g) : FG;
                    const float *act = act0 + (size_t)g * gfl + (size_t)c0 * TG;
                    for (int64_t rt = 0; rt < nrows; rt += MR) {
                        float *c = cbuf + ((size_t)(rt / MR) * TC_GROUPS + (size_t)(g - g0)) * MR * TG;
                        const float *wr = wbuf + rt * FKC;
                        switch (G) {
                        case 4: fkernel(4, kc, wr, act, gfl, c, first); break;
                        case 3: fkernel(3, kc, wr, act, gfl, c, first); break;
                        case 2: fkernel(2, kc, wr, act, gfl, c, first); break;
                        default: fkernel(1, kc, wr, act, gfl, c, first); break;
                        }
                    }
                }
            }
            for (int64_t rt = 0; rt < nrows; rt += MR) {
                const int nr = nrows - rt < MR ? (int)(nrows - rt) : MR;
                for (int64_t g = g0; g < g1; g++)
                    store_group(cbuf + ((size_t)(rt / MR) * TC_GROUPS + (size_t)(g - g0)) * MR * TG, y,
                                ldy, rc0 + rt, nr, g * TG, n);
            }
        }
    }
}

static void run_f32(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                    const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    ft_run(LFM2_TYPE_F32, k, w, nb1, r0, r1, packed, n, y, ldy, tmp);
}
static void run_f16(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                    const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    ft_run(LFM2_TYPE_F16, k, w, nb1, r0, r1, packed, n, y, ldy, tmp);
}
static void run_bf16(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                     const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    ft_run(LFM2_TYPE_BF16, k, w, nb1, r0, r1, packed, n, y, ldy, tmp);
}

static const struct lfm2_gemm gemm_f32 = { ft_packed_size, ft_pack_f32, ft_tmp_size, run_f32, 16 };
static const struct lfm2_gemm gemm_f16 = { ft_packed_size, ft_pack_f16, ft_tmp_size, run_f16, 16 };
static const struct lfm2_gemm gemm_bf16 = { ft_packed_size, ft_pack_bf16, ft_tmp_size, run_bf16, 16 };

static const struct lfm2_gemm gemm_q8_0 = { q8t_packed_size, q8t_pack, q8t_tmp_size, run_q8_0, 16 };
static const struct lfm2_gemm gemm_q4_0 = { q8t_packed_size, q8t_pack, q8t_tmp_size, run_q4_0, 16 };

void lfm2_avx512_gemm_init(struct lfm2_kernels *k)
{
    (void)k;
    (void)gemm_q8_0;
    (void)gemm_q4_0;
    (void)gemm_f32;
    (void)gemm_f16;
    (void)gemm_bf16;
}
