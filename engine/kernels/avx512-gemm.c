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
#define ACT_L2 (384 * 1024)   /* packed-activation bytes per token chunk */

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

/* ---- weight row tiles: int8 pointers, −128·Σw per block, float d_w per block ---- */

struct rowtile {
    const int8_t *w[MR];   /* qs of block 0; block b at w + b·stride */
    int32_t *corr;         /* [MR][nb] */
    float *dw;             /* [MR][nb] */
};

INLINE int32_t sum_i8_32(const int8_t *q)
{
    /* Σ(q + 128) with SAD against zero, minus 32·128 */
    const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), _mm256_set1_epi8((char)0x80));
    const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
    const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
}

static void prep_q8_0(const uint8_t *w, size_t nb1, int64_t r, int nr, int64_t nb, struct rowtile *rt)
{
    for (int i = 0; i < MR; i++) {
        const block_q8_0 *row = (const block_q8_0 *)(w + (size_t)(r + (i < nr ? i : nr - 1)) * nb1);
        rt->w[i] = row->qs;
        for (int64_t b = 0; b < nb; b++) {
            rt->corr[i * nb + b] = -128 * sum_i8_32(row[b].qs);
            rt->dw[i * nb + b] = _cvtsh_ss(row[b].d);
        }
    }
}

static void prep_q4_0(const uint8_t *w, size_t nb1, int64_t r, int nr, int64_t nb, struct rowtile *rt,
                      int8_t *unpacked)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (int i = 0; i < MR; i++) {
        const block_q4_0 *row = (const block_q4_0 *)(w + (size_t)(r + (i < nr ? i : nr - 1)) * nb1);
        int8_t *u = unpacked + (size_t)i * nb * 32;
        rt->w[i] = u;
        for (int64_t b = 0; b < nb; b++) {
            const __m128i t = _mm_loadu_si128((const __m128i *)row[b].qs);
            __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
            q = _mm256_sub_epi8(_mm256_and_si256(q, m4), eight);
            _mm256_storeu_si256((__m256i *)(u + b * 32), q);
            rt->corr[i * nb + b] = -128 * sum_i8_32(u + b * 32);
            rt->dw[i * nb + b] = _cvtsh_ss(row[b].d);
        }
    }
}

/* ---- micro-kernel: MR rows × G token groups over all nb blocks ---- */

INLINE void ukernel(const int G, const int WS, int64_t nb, const struct rowtile *rt,
                    const uint8_t *act, size_t gb, int64_t k, __m512 facc[MR][3])
{
    for (int r = 0; r < MR; r++)
        for (int g = 0; g < G; g++)
            facc[r][g] = _mm512_setzero_ps();
    const float *dxp = (const float *)(act + (size_t)k * TG);
    for (int64_t b = 0; b < nb; b++) {
        __m512i acc[MR][3];
        for (int r = 0; r < MR; r++) {
            const __m512i c = _mm512_set1_epi32(rt->corr[r * nb + b]);
            for (int g = 0; g < G; g++)
                acc[r][g] = c;
        }
        const uint8_t *ab = act + (size_t)b * 8 * 64;
        for (int j = 0; j < 8; j++) {
            __m512i av[3];
            for (int g = 0; g < G; g++)
                av[g] = _mm512_load_si512(ab + g * gb + j * 64);
            for (int r = 0; r < MR; r++) {
                int32_t wq;
                memcpy(&wq, rt->w[r] + b * WS + 4 * j, 4);
                const __m512i wv = _mm512_set1_epi32(wq);
                for (int g = 0; g < G; g++)
                    acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], av[g], wv);
            }
        }
        __m512 dxv[3];
        for (int g = 0; g < G; g++)
            dxv[g] = _mm512_load_ps((const float *)((const uint8_t *)dxp + g * gb) + b * TG);
        for (int r = 0; r < MR; r++) {
            const __m512 dwv = _mm512_set1_ps(rt->dw[r * nb + b]);
            for (int g = 0; g < G; g++)
                facc[r][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][g]), _mm512_mul_ps(dxv[g], dwv), facc[r][g]);
        }
    }
}

/* Writes the MR × 16 results of group g (tokens t0..t0+15) to y[t][r0 + i]. */
static void store_group(const __m512 f[MR], float *y, int64_t ldy, int64_t r0, int nr, int64_t t0,
                        int64_t n)
{
    if (nr == MR && t0 + TG <= n) {
        /* 4×16 transpose: each 128-bit lane of u_i holds rows 0..3 of token 4L + i */
        const __m512 a0 = _mm512_unpacklo_ps(f[0], f[1]), a1 = _mm512_unpackhi_ps(f[0], f[1]);
        const __m512 a2 = _mm512_unpacklo_ps(f[2], f[3]), a3 = _mm512_unpackhi_ps(f[2], f[3]);
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
    float tmp[MR][TG];
    for (int i = 0; i < MR; i++)
        _mm512_storeu_ps(tmp[i], f[i]);
    for (int t = 0; t < TG && t0 + t < n; t++)
        for (int i = 0; i < nr; i++)
            y[(t0 + t) * ldy + r0 + i] = tmp[i][t];
}

static size_t q8t_tmp_size(int64_t k)
{
    const int64_t nb = k / 32;
    return (size_t)MR * nb * (sizeof(int32_t) + sizeof(float)) + (size_t)MR * k + 64;
}

INLINE void q8t_run(const int is_q4, int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                    const void *packed, int64_t n, float *y, int64_t ldy, void *tmp)
{
    const int64_t nb = k / 32;
    const size_t gb = group_bytes(k);
    const int64_t ngroups = (n + TG - 1) / TG;
    int64_t gc = (int64_t)(ACT_L2 / gb) / 3 * 3;
    if (gc < 3) gc = 3;

    struct rowtile rt;
    rt.corr = tmp;
    rt.dw = (float *)(rt.corr + MR * nb);
    int8_t *unpacked = (int8_t *)(rt.dw + MR * nb);

    for (int64_t g0 = 0; g0 < ngroups; g0 += gc) {
        const int64_t g1 = g0 + gc < ngroups ? g0 + gc : ngroups;
        for (int64_t r = r0; r < r1; r += MR) {
            const int nr = r1 - r < MR ? (int)(r1 - r) : MR;
            if (is_q4)
                prep_q4_0(w, nb1, r, nr, nb, &rt, unpacked);
            else
                prep_q8_0(w, nb1, r, nr, nb, &rt);
            int64_t g = g0;
            __m512 f[MR][3];
            for (; g + 3 <= g1; g += 3) {
                if (is_q4)
                    ukernel(3, 32, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                else
                    ukernel(3, 34, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                for (int i = 0; i < 3; i++) {
                    const __m512 col[MR] = { f[0][i], f[1][i], f[2][i], f[3][i] };
                    store_group(col, y, ldy, r, nr, (g + i) * TG, n);
                }
            }
            const int rem = (int)(g1 - g);
            if (rem > 0) {
                if (rem == 2) {
                    if (is_q4) ukernel(2, 32, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                    else ukernel(2, 34, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                } else {
                    if (is_q4) ukernel(1, 32, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                    else ukernel(1, 34, nb, &rt, (const uint8_t *)packed + g * gb, gb, k, f);
                }
                for (int i = 0; i < rem; i++) {
                    const __m512 col[MR] = { f[0][i], f[1][i], f[2][i], f[3][i] };
                    store_group(col, y, ldy, r, nr, (g + i) * TG, n);
                }
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

static const struct lfm2_gemm gemm_q8_0 = { q8t_packed_size, q8t_pack, q8t_tmp_size, run_q8_0 };
static const struct lfm2_gemm gemm_q4_0 = { q8t_packed_size, q8t_pack, q8t_tmp_size, run_q4_0 };

void lfm2_avx512_gemm_init(struct lfm2_kernels *k)
{
    k->gemm[LFM2_TYPE_Q8_0] = &gemm_q8_0;
    k->gemm[LFM2_TYPE_Q4_0] = &gemm_q4_0;
    k->gemm_min_n = 16;
}
