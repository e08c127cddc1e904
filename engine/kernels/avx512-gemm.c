/* avx512-gemm.c — AVX-512 batched kernels: the prepared layouts (x16.c: 16 rows interleaved)
 * and, at the end, F16 and BF16 read as stored.
 *
 * Rows live in the 16 vector lanes, so one kernel covers decode and prefill:
 *   quantized (Q8_0_X16, Q4_0_X16): per block, VPDPBUSD adds 4 weights × 4 activations for 16
 *     rows at once (weights unsigned in the register — Q4_0 nibbles as stored, Q8_0 + 128 —,
 *     the token's 4 quants broadcast, the offset removed by starting the sum at −c·Σx), so each
 *     lane ends the block with its exact int32 sum; then acc = fma(float(sum), d_w·d_x, acc).
 *   float (F16_X16, F32_X16): acc = fma(w[k] of 16 rows, x[k] broadcast, acc) over k in order.
 * Each (row, token) output is therefore the same sequence of operations whatever the batch:
 * prefill and decode agree bit for bit. The kernel is instantiated for RG groups of 16 rows ×
 * T tokens: 4 × 1 for decode (four streams in flight, prefetched), 1 × 8 for prefill (the
 * group's weights stay in L1 while the tokens pass; 80% of the VPDPBUSD peak in theory: two
 * float ops per 8 VPDPBUSD).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* into L2: the L1 prefetchers take it from there, and the L1 miss buffers stay free for the
 * loads (measured: T1 beats T0 and NTA for decode) */
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif

/* Decode streams the weights once: while a call works on its RG groups, it prefetches the
 * next RG groups (the next call's data), a 1/n share per iteration, so the stream stays one
 * chunk ahead without duplicate requests. */
INLINE void prefetch_share(const uint8_t *next, size_t bytes, int64_t i, int64_t n)
{
    const size_t a = (size_t)((bytes * (uint64_t)i / (uint64_t)n) & ~(uint64_t)63);
    const size_t e = (size_t)(bytes * (uint64_t)(i + 1) / (uint64_t)n);
    for (size_t o = a; o < e; o += 64)
        _mm_prefetch((const char *)next + o, PF_HINT);
}

/* K-quant decode instead treats each of its RG groups as its own linear stream and prefetches
 * share i of n of it PF_AHEAD bytes ahead; past the group's end that is the same offset in the
 * group RG further on, which the next call reads. Per-token A/B in one process (decode tokens
 * alternating between the two schemes): Q4_K +9–10 % on one thread (350M and 1.2B), Q6_K
 * +5 %, level on two; Q8_0 and Q4_0 lost 2–14 % with it and keep prefetch_share. The offsets
 * assume groups stored whole, one after another. */
#define PF_AHEAD 8192
INLINE void prefetch_ahead(const uint8_t *grp, size_t gb, size_t skip, int64_t i, int64_t n)
{
    const size_t a = (size_t)(gb * (uint64_t)i / (uint64_t)n), e = (size_t)(gb * (uint64_t)(i + 1) / (uint64_t)n);
    for (size_t o = (a + PF_AHEAD) & ~(size_t)63; o < e + PF_AHEAD; o += 64)
        _mm_prefetch((const char *)(grp + o + (o >= gb ? skip : 0)), PF_HINT);
}

INLINE void store_rows(float *y, __m512 v, int valid)
{
    if (valid >= 16)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, (__mmask16)((1u << valid) - 1), v);
}

/* ---- quantized ---- */

INLINE void xq_kernel(const int IS_Q4, const int RG, const int T, int64_t nb, const uint8_t *g0, size_t gb,
                      const uint8_t *xp, size_t ts, int64_t k, float *y, int64_t ldy, int valid_last,
                      int pf)
{
    const size_t qbytes = IS_Q4 ? 256 : 512;   /* quant bytes per block per group */
    const __m512i m4 = _mm512_set1_epi8(0x0F), bias = _mm512_set1_epi8((char)0x80);
    __m512 facc[4][8];
    for (int g = 0; g < RG; g++)
        for (int t = 0; t < T; t++)
            facc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (pf)
            prefetch_share(g0 + (size_t)RG * gb, (size_t)RG * gb, b, nb);
        __m512i acc[4][8];
        for (int t = 0; t < T; t++) {
            const int32_t *corr = (const int32_t *)(xp + (size_t)t * ts + k);
            const __m512i c = _mm512_set1_epi32(corr[b]);
            for (int g = 0; g < RG; g++)
                acc[g][t] = c;
        }
        if (IS_Q4) {
            for (int m = 0; m < 4; m++) {
                __m512i lo[4], hi[4];
                for (int g = 0; g < RG; g++) {
                    const __m512i l = _mm512_load_si512(g0 + (size_t)g * gb + (size_t)b * 256 + m * 64);
                    lo[g] = _mm512_and_si512(l, m4);
                    hi[g] = _mm512_and_si512(_mm512_srli_epi16(l, 4), m4);
                }
                for (int t = 0; t < T; t++) {
                    const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * 32;
                    int32_t a0, a1;
                    memcpy(&a0, xq + 4 * m, 4);
                    memcpy(&a1, xq + 16 + 4 * m, 4);
                    const __m512i x0 = _mm512_set1_epi32(a0), x1 = _mm512_set1_epi32(a1);
                    for (int g = 0; g < RG; g++) {
                        acc[g][t] = _mm512_dpbusd_epi32(acc[g][t], lo[g], x0);
                        acc[g][t] = _mm512_dpbusd_epi32(acc[g][t], hi[g], x1);
                    }
                }
            }
        } else {
            for (int j = 0; j < 8; j++) {
                __m512i wv[4];
                for (int g = 0; g < RG; g++)
                    wv[g] = _mm512_xor_si512(_mm512_load_si512(g0 + (size_t)g * gb + (size_t)b * 512 + j * 64), bias);
                for (int t = 0; t < T; t++) {
                    int32_t a;
                    memcpy(&a, (const int8_t *)(xp + (size_t)t * ts) + b * 32 + 4 * j, 4);
                    const __m512i xv = _mm512_set1_epi32(a);
                    for (int g = 0; g < RG; g++)
                        acc[g][t] = _mm512_dpbusd_epi32(acc[g][t], wv[g], xv);
                }
            }
        }
        __m512 dw[4];
        for (int g = 0; g < RG; g++)
            dw[g] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(g0 + (size_t)g * gb + (size_t)nb * qbytes + (size_t)b * 32)));
        for (int t = 0; t < T; t++) {
            const float *dx = (const float *)(xp + (size_t)t * ts + k + nb * 4);
            const __m512 dxv = _mm512_set1_ps(dx[b]);
            for (int g = 0; g < RG; g++)
                facc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[g][t]), _mm512_mul_ps(dw[g], dxv), facc[g][t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int g = 0; g < RG; g++)
            store_rows(y + t * ldy + 16 * g, facc[g][t], g == RG - 1 ? valid_last : 16);
}

/* ---- float ---- */

/* g0: the first group; groups gb bytes apart, each a run of 64-byte chunks (a chunk holds 2 k
 * of F16 or 1 k of F32). */
INLINE void xf_kernel(const int IS_F16, const int RG, const int T, int64_t k, const uint8_t *g0, size_t gb,
                      const uint8_t *xp, size_t ts, float *y, int64_t ldy, int valid_last, int pf)
{
    __m512 facc[4][8];
    for (int g = 0; g < RG; g++)
        for (int t = 0; t < T; t++)
            facc[g][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i++) {
        if (pf && (i & 15) == 0)
            prefetch_share(g0 + (size_t)RG * gb, (size_t)RG * gb, i / 16, (k + 15) / 16);
        __m512 wv[4];
        for (int g = 0; g < RG; g++) {
            const uint8_t *p = IS_F16 ? g0 + (size_t)g * gb + (size_t)(i >> 1) * 64 + (size_t)(i & 1) * 32
                                      : g0 + (size_t)g * gb + (size_t)i * 64;
            wv[g] = IS_F16 ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p)) : _mm512_load_ps((const float *)p);
        }
        for (int t = 0; t < T; t++) {
            const __m512 xv = _mm512_set1_ps(((const float *)(xp + (size_t)t * ts))[i]);
            for (int g = 0; g < RG; g++)
                facc[g][t] = _mm512_fmadd_ps(wv[g], xv, facc[g][t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int g = 0; g < RG; g++)
            store_rows(y + t * ldy + 16 * g, facc[g][t], g == RG - 1 ? valid_last : 16);
}

/* F16_X16 decode: the same operations per lane as xf_kernel, on 256-bit halves. Zen 4
 * converts fp16 at half rate in 512-bit registers (measured from L1: 58 GB/s of weights with
 * 512-bit VCVTPH2PS + FMA, 85 GB/s with 256-bit), and decode needs the headroom to keep up
 * with memory; each lane still sums fma(w, x, acc) over k in order, so results do not change
 * (prefill keeps xf_kernel: with 8 tokens per weight load the conversion is not the limit). */
INLINE void xh_kernel(const int RG, int64_t k, const uint8_t *g0, size_t gb, const float *x,
                      float *y, int valid_last)
{
    __m256 lo[4], hi[4];
    for (int g = 0; g < RG; g++)
        lo[g] = hi[g] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; i++) {
        const __m256 xv = _mm256_set1_ps(x[i]);
        for (int g = 0; g < RG; g++) {
            const uint8_t *p = g0 + (size_t)g * gb + (size_t)(i >> 1) * 64 + (size_t)(i & 1) * 32;
            lo[g] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_load_si128((const __m128i *)p)), xv, lo[g]);
            hi[g] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_load_si128((const __m128i *)(p + 16))), xv, hi[g]);
        }
    }
    for (int g = 0; g < RG; g++)
        store_rows(y + 16 * g, _mm512_insertf32x8(_mm512_castps256_ps512(lo[g]), hi[g], 1),
                   g == RG - 1 ? valid_last : 16);
}

/* ---- K-quants (Q4_K_X16, Q5_K_X16, Q6_K_X16) ----
 * Per super-block and lane: each sub-block's exact int32 dot (VPDPBUSD, unsigned 4/6-bit
 * weights), times its scale (VPMULLD), summed into isum; Q4_K mins and the Q6_K −32 offset go
 * through VPDPWSSD against the token's int16-paired block sums. Then
 *   acc = fma(isum, d·d_x, acc)  [Q4_K: acc = fnmadd(msum, dmin·d_x, acc)]. */

INLINE __m512i pairs16(const uint8_t *a, const uint8_t *b, int is_signed)
{
    /* lanes: a[r] in the low 16 bits, b[r] in the high 16 bits */
    const __m128i va = _mm_loadu_si128((const __m128i *)a), vb = _mm_loadu_si128((const __m128i *)b);
    const __m512i lo = is_signed ? _mm512_cvtepi8_epi32(va) : _mm512_cvtepu8_epi32(va);
    const __m512i hi = is_signed ? _mm512_cvtepi8_epi32(vb) : _mm512_cvtepu8_epi32(vb);
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
}

/* g0, gb as for xf_kernel; a group is a run of super-blocks of cs bytes */
/* Q5: Q5_K_X16, the Q4_K layout plus the fifth bits (VPTESTMB picks the lanes whose bit is
 * set, a masked byte add puts 16 there) */
INLINE void xk4_kernel(const int Q5, const int RG, const int T, int64_t nb, const uint8_t *g0, size_t gb,
                       const uint8_t *xp, size_t ts, int64_t k, float *y, int64_t ldy, int valid_last, int pf)
{
    const size_t cs = Q5 ? X16_Q5K_SB : X16_Q4K_SB;
    const __m512i m4 = _mm512_set1_epi8(0x0F), v16 = _mm512_set1_epi8(16);
    __m512 facc[4][4];
    for (int g = 0; g < RG; g++)
        for (int t = 0; t < T; t++)
            facc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i isum[4][4];
        for (int g = 0; g < RG; g++)
            for (int t = 0; t < T; t++)
                isum[g][t] = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            if (pf)   /* in quarters of a super-block */
                for (int g = 0; g < RG; g++)
                    prefetch_ahead(g0 + (size_t)g * gb, gb, (size_t)(RG - 1) * gb, b * 4 + j, nb * 4);
            __m512i alo[4][4], ahi[4][4];
            for (int g = 0; g < RG; g++)
                for (int t = 0; t < T; t++)
                    alo[g][t] = ahi[g][t] = _mm512_setzero_si512();
            const __m512i blo = _mm512_set1_epi8((char)(1 << (2 * j))), bhi = _mm512_set1_epi8((char)(2 << (2 * j)));
            for (int c = 0; c < 8; c++) {
                __m512i lo[4], hi[4];
                for (int g = 0; g < RG; g++) {
                    const uint8_t *sb = g0 + (size_t)g * gb + (size_t)b * cs;
                    const __m512i l = _mm512_load_si512(sb + (j * 8 + c) * 64);
                    lo[g] = _mm512_and_si512(l, m4);
                    hi[g] = _mm512_and_si512(_mm512_srli_epi16(l, 4), m4);
                    if (Q5) {
                        const __m512i h = _mm512_load_si512(sb + X16_Q5K_QH + c * 64);
                        lo[g] = _mm512_mask_add_epi8(lo[g], _mm512_test_epi8_mask(h, blo), lo[g], v16);
                        hi[g] = _mm512_mask_add_epi8(hi[g], _mm512_test_epi8_mask(h, bhi), hi[g], v16);
                    }
                }
                for (int t = 0; t < T; t++) {
                    const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * QK_K + 64 * j + 4 * c;
                    int32_t a0, a1;
                    memcpy(&a0, xq, 4);
                    memcpy(&a1, xq + 32, 4);
                    const __m512i x0 = _mm512_set1_epi32(a0), x1 = _mm512_set1_epi32(a1);
                    for (int g = 0; g < RG; g++) {
                        alo[g][t] = _mm512_dpbusd_epi32(alo[g][t], lo[g], x0);
                        ahi[g][t] = _mm512_dpbusd_epi32(ahi[g][t], hi[g], x1);
                    }
                }
            }
            for (int g = 0; g < RG; g++) {
                const uint8_t *sc = g0 + (size_t)g * gb + (size_t)b * cs + 2048;
                const __m512i s0 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(sc + (2 * j) * 16)));
                const __m512i s1 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(sc + (2 * j + 1) * 16)));
                for (int t = 0; t < T; t++)
                    isum[g][t] = _mm512_add_epi32(isum[g][t], _mm512_add_epi32(_mm512_mullo_epi32(alo[g][t], s0),
                                                                               _mm512_mullo_epi32(ahi[g][t], s1)));
            }
        }
        for (int g = 0; g < RG; g++) {
            const uint8_t *sb = g0 + (size_t)g * gb + (size_t)b * cs;
            const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sb + 2304)));
            const __m512 mv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sb + 2336)));
            __m512i mp[4];
            for (int i = 0; i < 4; i++)
                mp[i] = pairs16(sb + 2176 + (2 * i) * 16, sb + 2176 + (2 * i + 1) * 16, 0);
            for (int t = 0; t < T; t++) {
                const int32_t *aux = (const int32_t *)(xp + (size_t)t * ts + k) + b * 16;
                __m512i msum = _mm512_setzero_si512();
                for (int i = 0; i < 4; i++)
                    msum = _mm512_dpwssd_epi32(msum, mp[i], _mm512_set1_epi32(aux[1 + i]));
                float dx;
                memcpy(&dx, aux, 4);
                const __m512 dxv = _mm512_set1_ps(dx);
                facc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[g][t]), _mm512_mul_ps(dv, dxv), facc[g][t]);
                facc[g][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(mv, dxv), facc[g][t]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        for (int g = 0; g < RG; g++)
            store_rows(y + t * ldy + 16 * g, facc[g][t], g == RG - 1 ? valid_last : 16);
}

INLINE void xk6_kernel(const int RG, const int T, int64_t nb, const uint8_t *g0, size_t gb,
                       const uint8_t *xp, size_t ts, int64_t k, float *y, int64_t ldy, int valid_last, int pf)
{
    const size_t cs = X16_Q6K_SB;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
    __m512 facc[4][4];
    for (int g = 0; g < RG; g++)
        for (int t = 0; t < T; t++)
            facc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i isum[4][4];
        for (int g = 0; g < RG; g++)
            for (int t = 0; t < T; t++)
                isum[g][t] = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            for (int q = 0; q < 2; q++) {   /* chunks c = 4q..4q+3: sub-blocks 8h + 2·part + q */
                if (pf)
                    for (int g = 0; g < RG; g++)
                        prefetch_ahead(g0 + (size_t)g * gb, gb, (size_t)(RG - 1) * gb, b * 4 + h * 2 + q, nb * 4);
                __m512i acc[4][4][4];   /* [g][t][part] */
                for (int g = 0; g < RG; g++)
                    for (int t = 0; t < T; t++)
                        for (int part = 0; part < 4; part++)
                            acc[g][t][part] = _mm512_setzero_si512();
                for (int cc = 0; cc < 4; cc++) {
                    const int c = 4 * q + cc;
                    __m512i e[4][4];   /* [g][part] */
                    for (int g = 0; g < RG; g++) {
                        const uint8_t *sb = g0 + (size_t)g * gb + (size_t)b * cs;
                        const __m512i A = _mm512_load_si512(sb + (h * 16 + c) * 64);
                        const __m512i B = _mm512_load_si512(sb + (h * 16 + 8 + c) * 64);
                        const __m512i Q = _mm512_load_si512(sb + 2048 + (h * 8 + c) * 64);
                        e[g][0] = _mm512_or_si512(_mm512_and_si512(A, m4), _mm512_slli_epi16(_mm512_and_si512(Q, m3), 4));
                        e[g][1] = _mm512_or_si512(_mm512_and_si512(B, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(Q, 2), m3), 4));
                        e[g][2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(Q, 4), m3), 4));
                        e[g][3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(B, 4), m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(Q, 6), m3), 4));
                    }
                    for (int t = 0; t < T; t++) {
                        const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * QK_K + 128 * h + 4 * c;
                        for (int part = 0; part < 4; part++) {
                            int32_t a;
                            memcpy(&a, xq + 32 * part, 4);
                            const __m512i xv = _mm512_set1_epi32(a);
                            for (int g = 0; g < RG; g++)
                                acc[g][t][part] = _mm512_dpbusd_epi32(acc[g][t][part], e[g][part], xv);
                        }
                    }
                }
                for (int g = 0; g < RG; g++) {
                    const uint8_t *sc = g0 + (size_t)g * gb + (size_t)b * cs + 3072;
                    for (int part = 0; part < 4; part++) {
                        const int sub = 8 * h + 2 * part + q;
                        const __m512i sv = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(sc + sub * 16)));
                        for (int t = 0; t < T; t++)
                            isum[g][t] = _mm512_add_epi32(isum[g][t], _mm512_mullo_epi32(acc[g][t][part], sv));
                    }
                }
            }
        }
        for (int g = 0; g < RG; g++) {
            const uint8_t *sb = g0 + (size_t)g * gb + (size_t)b * cs;
            const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(sb + 3328)));
            __m512i sp[8];
            for (int i = 0; i < 8; i++)
                sp[i] = pairs16(sb + 3072 + (2 * i) * 16, sb + 3072 + (2 * i + 1) * 16, 1);
            for (int t = 0; t < T; t++) {
                const int32_t *aux = (const int32_t *)(xp + (size_t)t * ts + k) + b * 16;
                __m512i corr = _mm512_setzero_si512();   /* Σ sc·(16-element sum) */
                for (int i = 0; i < 8; i++)
                    corr = _mm512_dpwssd_epi32(corr, sp[i], _mm512_set1_epi32(aux[5 + i]));
                const __m512i is = _mm512_sub_epi32(isum[g][t], _mm512_slli_epi32(corr, 5));
                float dx;
                memcpy(&dx, aux, 4);
                facc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(dv, _mm512_set1_ps(dx)), facc[g][t]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        for (int g = 0; g < RG; g++)
            store_rows(y + t * ldy + 16 * g, facc[g][t], g == RG - 1 ? valid_last : 16);
}

/* Dispatch over groups of 16 rows and tiles of tokens. RG and T are compile-time constants in
 * each instantiation; the per-output arithmetic does not depend on them. */
/* rg groups from g on (RG, or one at the end of the panel) */
#define GROUP_SET(RG)                                                                            \
    const int rg = p1 - g >= (RG) ? (RG) : 1;                                                    \
    const uint8_t *gp = (const uint8_t *)w + (size_t)g * gb;                                     \
    const int64_t rlast = (g + rg) * 16 < r1 ? 16 : r1 - (g + rg - 1) * 16;

/* Batches go through the rows in panels of about X16_PANEL_BYTES that stay in L2 while every
 * token tile passes (without them a matrix larger than L2 was read from memory once per tile
 * of 8 tokens); decode takes the whole range as one panel. */
#define X16_PANEL_BYTES (256 * 1024)
#define PANEL_BEGIN                                                                              \
    const int64_t g_begin = r0 / 16, g_end = (r1 + 15) / 16;                                     \
    int64_t pgn = n == 1 ? g_end - g_begin : (int64_t)(X16_PANEL_BYTES / gb);                    \
    if (pgn < 4) pgn = 4;                                                                        \
    for (int64_t p0 = g_begin; p0 < g_end; p0 += pgn) {                                         \
        const int64_t p1 = p0 + pgn < g_end ? p0 + pgn : g_end;

/* Tiles of at most TMAX tokens, RG (an expression of T) groups per kernel call. */
#define XRUN_BODY(TMAX, RG_OF_T, KERNEL_CALL)                                                    \
    const size_t gb = nb1 * 16;                                                                  \
    PANEL_BEGIN                                                                                  \
    int64_t t = 0;                                                                               \
    while (t < n) {                                                                              \
        const int64_t left = n - t;                                                              \
        const int T = left >= (TMAX) ? (TMAX) : (int)left;                                       \
        const int RG = (RG_OF_T);                                                                \
        const uint8_t *xt = (const uint8_t *)packed + (size_t)t * ts;                            \
        for (int64_t g = p0; g < p1; ) {                                                         \
            GROUP_SET(RG)                                                                        \
            float *yo = y + t * ldy + g * 16;                                                    \
            const int pf = T == 1 && g + rg < g_end;                                             \
            KERNEL_CALL;                                                                         \
            g += rg;                                                                             \
        }                                                                                        \
        t += T;                                                                                  \
    }                                                                                            \
    }

#define CASES(K)                                                                                 \
    switch (rg * 16 + T) {                                                                       \
    case 4 * 16 + 1: K(4, 1); break;                                                             \
    case 2 * 16 + 2: K(2, 2); break;                                                             \
    case 2 * 16 + 3: K(2, 3); break;                                                             \
    case 2 * 16 + 4: K(2, 4); break;                                                             \
    case 1 * 16 + 1: K(1, 1); break;                                                             \
    case 1 * 16 + 2: K(1, 2); break;                                                             \
    case 1 * 16 + 3: K(1, 3); break;                                                             \
    case 1 * 16 + 4: K(1, 4); break;                                                             \
    case 1 * 16 + 5: K(1, 5); break;                                                             \
    case 1 * 16 + 6: K(1, 6); break;                                                             \
    case 1 * 16 + 7: K(1, 7); break;                                                             \
    default: K(1, 8); break;                                                                     \
    }

static void run_xq(int is_q4, int64_t k, const void *w, size_t nb1, int64_t r0,
                   int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const int64_t nb = k / 32;
    const size_t ts = lfm2_x16q_token_bytes(k);
#define KQ(RG_, T_)                                                                              \
    do {                                                                                         \
        if (is_q4) xq_kernel(1, RG_, T_, nb, gp, gb, xt, ts, k, yo, ldy, (int)rlast, pf);        \
        else xq_kernel(0, RG_, T_, nb, gp, gb, xt, ts, k, yo, ldy, (int)rlast, pf);              \
    } while (0)
    XRUN_BODY(8, T == 1 ? 4 : T <= 4 ? 2 : 1, CASES(KQ))
#undef KQ
}

static void run_xf(int is_f16, int64_t k, const void *w, size_t nb1, int64_t r0,
                   int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const size_t ts = lfm2_x16f_token_bytes(k);
    /* No software prefetch here: measured level or slower than the hardware prefetcher alone
     * (350M F16 decode at 2 threads). The K-quant kernels spend more time per byte and gain
     * from it. */
#define KF(RG_, T_)                                                                              \
    do {                                                                                         \
        (void)pf;                                                                                \
        if (is_f16 && T_ == 1) xh_kernel(RG_, k, gp, gb, (const float *)xt, yo, (int)rlast);    \
        else if (is_f16) xf_kernel(1, RG_, T_, k, gp, gb, xt, ts, yo, ldy, (int)rlast, 0);       \
        else xf_kernel(0, RG_, T_, k, gp, gb, xt, ts, yo, ldy,                                   \
                       (int)rlast, 0);                                                           \
    } while (0)
    XRUN_BODY(8, T == 1 ? 4 : T <= 4 ? 2 : 1, CASES(KF))
#undef KF
}

/* K-quants keep more accumulators per token: tiles of at most 4 tokens */
#define CASES_K(K)                                                                               \
    switch (rg * 16 + T) {                                                                       \
    case 4 * 16 + 1: K(4, 1); break;                                                             \
    case 2 * 16 + 2: K(2, 2); break;                                                             \
    case 1 * 16 + 1: K(1, 1); break;                                                             \
    case 1 * 16 + 2: K(1, 2); break;                                                             \
    case 1 * 16 + 3: K(1, 3); break;                                                             \
    default: K(1, 4); break;                                                                     \
    }

/* kind: 4 (Q4_K_X16), 5 (Q5_K_X16), 6 (Q6_K_X16) */
static void run_xk(int kind, int64_t k, const void *w, size_t nb1, int64_t r0,
                   int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const int64_t nb = k / QK_K;
    const size_t ts = lfm2_x16k_token_bytes(k);
#define KK(RG_, T_)                                                                              \
    do {                                                                                         \
        if (kind == 6) xk6_kernel(RG_, T_, nb, gp, gb, xt, ts, k, yo, ldy,                       \
                                  (int)rlast, pf);                                               \
        else if (kind == 5) xk4_kernel(1, RG_, T_, nb, gp, gb, xt, ts, k, yo, ldy,               \
                                       (int)rlast, pf);                                          \
        else xk4_kernel(0, RG_, T_, nb, gp, gb, xt, ts, k, yo, ldy,                              \
                        (int)rlast, pf);                                                         \
    } while (0)
    XRUN_BODY(4, T == 1 ? 4 : T == 2 ? 2 : 1, CASES_K(KK))
#undef KK
}

/* ---- F16 as stored (rows read in place from the file mapping) ----
 * Per (row, token): the row's 16-element chunk c goes to partial sum c % 2 (16 lanes each; the
 * k % 16 tail is a zero-filled chunk), and the result is _mm512_reduce_add_ps(p0 + p1).
 * Decode (one token) streams the rows in order in 256-bit halves (Zen 4 converts fp16 at full
 * rate only in 256-bit registers); batches take 3 rows × 4 tokens per pass in 512-bit
 * registers. Both do the same operations per lane: batch invariant. Two partial sums (not
 * four) leave registers for 12 (row, token) pairs per pass: prefill at ~93 % of the prepared
 * layout's speed, decode still well above memory speed (53 GB/s from L2). The model loader
 * still prepares F16 (docs/benchmarks.md, 2026-11-26): decode from a model's page cache was
 * 10-20 % slower, and with k > 4096 the row's activations (over 16 KiB of floats) leave L1
 * to the weight stream and decode runs at half speed. */
INLINE __m512 join8(__m256 lo, __m256 hi) { return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1); }

/* one token: rows read one after another, one stream per thread (two rows in flight at once,
 * 2 KiB apart, halved the read speed from a file mapping); each partial sum in two 256-bit
 * halves */
static void rows_f16_1(int64_t k, const uint16_t *w, size_t nb1, int64_t nr, const float *x, float *y)
{
    const int64_t nc = k / 16, tail = k % 16;
    const __mmask16 tm = (__mmask16)((1u << tail) - 1);
    for (int64_t r = 0; r < nr; r++, w = (const uint16_t *)((const uint8_t *)w + nb1)) {
        __m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
        int64_t c = 0;
        for (; c + 2 <= nc; c += 2) {
            const uint16_t *p = w + 16 * c;
            const float *xp = x + 16 * c;
            lo0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), _mm256_loadu_ps(xp), lo0);
            hi0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8))), _mm256_loadu_ps(xp + 8), hi0);
            lo1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16))), _mm256_loadu_ps(xp + 16), lo1);
            hi1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 24))), _mm256_loadu_ps(xp + 24), hi1);
        }
        __m512 a0 = join8(lo0, hi0), a1 = join8(lo1, hi1);
        if (c < nc)   /* an odd number of chunks: the last full one is partial sum 0's */
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 16 * c))),
                                 _mm512_loadu_ps(x + 16 * c), a0);
        if (tail) {
            const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tm, w + 16 * nc));
            const __m512 xv = _mm512_maskz_loadu_ps(tm, x + 16 * nc);
            if (nc & 1) a1 = _mm512_fmadd_ps(wv, xv, a1);
            else a0 = _mm512_fmadd_ps(wv, xv, a0);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* R rows × T tokens (xs floats apart) */
INLINE void rows_f16_rt(const int R, const int T, int64_t k, const uint8_t *w, size_t nb1,
                        const float *x, size_t xs, float *y, int64_t ldy)
{
    const int64_t nc = k / 16, tail = k % 16;
    __m512 acc[3][4][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c < nc; c += 2)
        for (int j = 0; j < 2 && c + j < nc; j++) {
            __m512 wv[3];
            for (int r = 0; r < R; r++)
                wv[r] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)(w + (size_t)r * nb1) + 16 * (c + j))));
            for (int t = 0; t < T; t++) {
                const __m512 xv = _mm512_loadu_ps(x + t * xs + 16 * (c + j));
                for (int r = 0; r < R; r++)
                    acc[r][t][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][t][j]);
            }
        }
    if (tail) {
        const __mmask16 tm = (__mmask16)((1u << tail) - 1);
        for (int r = 0; r < R; r++) {
            const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tm, (const uint16_t *)(w + (size_t)r * nb1) + 16 * nc));
            for (int t = 0; t < T; t++) {
                const __m512 xv = _mm512_maskz_loadu_ps(tm, x + t * xs + 16 * nc);
                if (nc & 1) acc[r][t][1] = _mm512_fmadd_ps(wv, xv, acc[r][t][1]);
                else acc[r][t][0] = _mm512_fmadd_ps(wv, xv, acc[r][t][0]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
}

#define F16_PANEL_BYTES (256 * 1024)   /* rows kept in L2 while the token blocks pass */

static void run_f16_rows(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                         const void *packed, int64_t n, float *y, int64_t ldy)
{
    const float *x = packed;
    const size_t xs = lfm2_x16f_token_bytes(k) / sizeof(float);
    const uint8_t *wb = w;
    if (n == 1) {
        rows_f16_1(k, (const uint16_t *)(wb + (size_t)r0 * nb1), nb1, r1 - r0, x, y + r0);
        return;
    }
    int64_t panel = (int64_t)(F16_PANEL_BYTES / nb1) / 3 * 3;
    if (panel < 3) panel = 3;
    for (int64_t p0 = r0; p0 < r1; p0 += panel) {
        const int64_t p1 = p0 + panel < r1 ? p0 + panel : r1;
        for (int64_t t = 0; t < n; ) {
            const int T = n - t >= 4 ? 4 : (int)(n - t);
            const float *xt = x + (size_t)t * xs;
            for (int64_t r = p0; r < p1; ) {
                const int R = p1 - r >= 3 ? 3 : (int)(p1 - r);
                const uint8_t *wr = wb + (size_t)r * nb1;
                float *yt = y + t * ldy + r;
                switch (R * 8 + T) {
#define RT(R_, T_) case R_ * 8 + T_: rows_f16_rt(R_, T_, k, wr, nb1, xt, xs, yt, ldy); break;
                RT(3, 4) RT(3, 3) RT(3, 2) RT(3, 1) RT(2, 4) RT(2, 3) RT(2, 2) RT(2, 1)
                RT(1, 4) RT(1, 3) RT(1, 2) RT(1, 1)
#undef RT
                }
                r += R;
            }
            t += T;
        }
    }
}

/* ---- BF16 as stored (rows read in place from the file mapping) ----
 * Activations are rounded to bf16 as ggml does (this path's act_bf16). Per (row, token): the
 * row's 32-element chunk c goes to partial sum c % 2 (the k % 32 tail is a zero-filled chunk)
 * and the result is _mm512_reduce_add_ps(p0 + p1). A chunk is one VDPBF16PS where the CPU has
 * AVX512_BF16 (as ggml's BF16 dot product uses), else its even and odd elements widened to
 * f32 and two FMAs. Decode reads the rows one after another (one linear stream per thread);
 * batches take R rows × 4 tokens per pass while a panel of rows stays in L2. The same
 * operations per (row, token) either way: batch invariant. BF16 has no prepared layout: a
 * bf16 activation row is half an F32 one, so rows up to 8192 long keep theirs in L1. */
INLINE __m512 bf_lo(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
INLINE __m512 bf_hi(__m512i v) { return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u))); }

INLINE __m512 bf16_chunk(const int DP, __m512 acc, __m512i w, __m512i x)
{
    if (DP)
        return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
    acc = _mm512_fmadd_ps(bf_lo(w), bf_lo(x), acc);
    return _mm512_fmadd_ps(bf_hi(w), bf_hi(x), acc);
}

static size_t bf16_token_bytes(int64_t k) { return ((size_t)k * 2 + 63) & ~(size_t)63; }
static void pack_bf16(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst)
{
    const size_t ts = bf16_token_bytes(k);
    for (int64_t t = t0; t < t1; t++)
        kt->act[LFM2_ACT_BF16](x + t * ldx, (uint8_t *)dst + (size_t)t * ts, k);
}

/* one token: rows one after another */
INLINE void rows_bf16_1(const int DP, int64_t k, const uint8_t *w, size_t nb1, int64_t nr,
                        const uint16_t *x, float *y)
{
    const int64_t nc = k / 32, tail = k % 32;
    const __mmask32 tm = (__mmask32)((1ull << tail) - 1);
    for (int64_t r = 0; r < nr; r++, w += nb1) {
        const uint16_t *p = (const uint16_t *)w;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int64_t c = 0;
        for (; c + 2 <= nc; c += 2) {
            a0 = bf16_chunk(DP, a0, _mm512_loadu_si512(p + 32 * c), _mm512_loadu_si512(x + 32 * c));
            a1 = bf16_chunk(DP, a1, _mm512_loadu_si512(p + 32 * c + 32), _mm512_loadu_si512(x + 32 * c + 32));
        }
        if (c < nc)   /* an odd number of chunks: the last full one is partial sum 0's */
            a0 = bf16_chunk(DP, a0, _mm512_loadu_si512(p + 32 * c), _mm512_loadu_si512(x + 32 * c));
        if (tail) {
            const __m512i wv = _mm512_maskz_loadu_epi16(tm, p + 32 * nc);
            const __m512i xv = _mm512_maskz_loadu_epi16(tm, x + 32 * nc);
            if (nc & 1) a1 = bf16_chunk(DP, a1, wv, xv);
            else a0 = bf16_chunk(DP, a0, wv, xv);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/* R rows × T tokens (xs elements apart) */
INLINE void rows_bf16_rt(const int DP, const int R, const int T, int64_t k, const uint8_t *w,
                         size_t nb1, const uint16_t *x, size_t xs, float *y, int64_t ldy)
{
    const int64_t nc = k / 32, tail = k % 32;
    __m512 acc[3][4][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < nc; c += 2)   /* by twos: constant accumulator indices */
        for (int j = 0; j < 2 && c + j < nc; j++) {
            __m512i wv[3];
            for (int r = 0; r < R; r++)
                wv[r] = _mm512_loadu_si512((const uint16_t *)(w + (size_t)r * nb1) + 32 * (c + j));
            for (int t = 0; t < T; t++) {
                const __m512i xv = _mm512_loadu_si512(x + t * xs + 32 * (c + j));
                for (int r = 0; r < R; r++)
                    acc[r][t][j] = bf16_chunk(DP, acc[r][t][j], wv[r], xv);
            }
        }
    if (tail) {
        const __mmask32 tm = (__mmask32)((1ull << tail) - 1);
        for (int r = 0; r < R; r++) {
            const __m512i wv = _mm512_maskz_loadu_epi16(tm, (const uint16_t *)(w + (size_t)r * nb1) + 32 * nc);
            for (int t = 0; t < T; t++) {
                const __m512i xv = _mm512_maskz_loadu_epi16(tm, x + t * xs + 32 * nc);
                if (nc & 1) acc[r][t][1] = bf16_chunk(DP, acc[r][t][1], wv, xv);
                else acc[r][t][0] = bf16_chunk(DP, acc[r][t][0], wv, xv);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
}

/* RMAX rows per pass: 3 with VDPBF16PS (24 accumulators); 2 when widening (each weight and
 * input chunk takes two registers) */
INLINE void run_bf16_rows_(const int DP, int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                           const void *packed, int64_t n, float *y, int64_t ldy)
{
    const uint16_t *x = packed;
    const size_t xs = bf16_token_bytes(k) / 2;
    const uint8_t *wb = w;
    if (n == 1) {
        rows_bf16_1(DP, k, wb + (size_t)r0 * nb1, nb1, r1 - r0, x, y + r0);
        return;
    }
    const int RMAX = DP ? 3 : 2;
    int64_t panel = (int64_t)(F16_PANEL_BYTES / nb1) / RMAX * RMAX;
    if (panel < RMAX) panel = RMAX;
    for (int64_t p0 = r0; p0 < r1; p0 += panel) {
        const int64_t p1 = p0 + panel < r1 ? p0 + panel : r1;
        for (int64_t t = 0; t < n; ) {
            const int T = n - t >= 4 ? 4 : (int)(n - t);
            const uint16_t *xt = x + (size_t)t * xs;
            for (int64_t r = p0; r < p1; ) {
                const int R = p1 - r >= RMAX ? RMAX : (int)(p1 - r);
                const uint8_t *wr = wb + (size_t)r * nb1;
                float *yt = y + t * ldy + r;
                switch (R * 8 + T) {
#define RT(R_, T_) case R_ * 8 + T_: rows_bf16_rt(DP, R_, T_, k, wr, nb1, xt, xs, yt, ldy); break;
                RT(3, 4) RT(3, 3) RT(3, 2) RT(3, 1) RT(2, 4) RT(2, 3) RT(2, 2) RT(2, 1)
                RT(1, 4) RT(1, 3) RT(1, 2) RT(1, 1)
#undef RT
                }
                r += R;
            }
            t += T;
        }
    }
}

LFM2_GEMM_ENTRY(run_q4k, run_xk, 4)
LFM2_GEMM_ENTRY(run_q5k, run_xk, 5)
LFM2_GEMM_ENTRY(run_q6k, run_xk, 6)
LFM2_GEMM_ENTRY(run_q8, run_xq, 0)
LFM2_GEMM_ENTRY(run_q4, run_xq, 1)
LFM2_GEMM_ENTRY(run_f16, run_xf, 1)
LFM2_GEMM_ENTRY(run_f32, run_xf, 0)
LFM2_GEMM_ENTRY(run_bf16dp_rows, run_bf16_rows_, 1)
LFM2_GEMM_ENTRY(run_bf16_rows, run_bf16_rows_, 0)

/* with and without VDPBF16PS (AVX512_BF16): the tables of avx512.c */
#define AVX512_GEMMS(BF16_RUN)                                                                   \
    {                                                                                            \
        LFM2_X16_GEMMS(lfm2_x16_pack_f16_f16c),                                                  \
        [LFM2_TYPE_F16] = &(const struct lfm2_gemm){ lfm2_x16f_token_bytes, lfm2_x16_pack_f16_f16c, \
                                                     run_f16_rows },                             \
        [LFM2_TYPE_BF16] = &(const struct lfm2_gemm){ bf16_token_bytes, pack_bf16, BF16_RUN },   \
    }
const struct lfm2_gemm *const lfm2_gemm_avx512[LFM2_KTYPE_COUNT] = AVX512_GEMMS(run_bf16_rows);
const struct lfm2_gemm *const lfm2_gemm_avx512_bf16[LFM2_KTYPE_COUNT] = AVX512_GEMMS(run_bf16dp_rows);
