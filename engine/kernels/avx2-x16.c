/* avx2-x16.c — AVX2 kernels for the prepared layouts (x16.c: 16 rows interleaved).
 *
 * A group of 16 rows is two ymm halves of 8 rows. Without VNNI, 4-byte dot products per row go
 * through VPMADDUBSW (unsigned weights × signed activations into int16 pairs, which cannot
 * overflow: |w| ≤ 128 with the sign moved onto x for Q8_0, ≤ 15 or ≤ 63 for the others) and
 * VPMADDWD with ones. Per (row, token) the sequence of operations is the same for any batch,
 * so batched and one-token products agree bit for bit, as on the other paths.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE __m256i dot4_u8(__m256i u, __m256i xs)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, xs), _mm256_set1_epi16(1));
}

/* signed w · signed x, 4 bytes per lane */
INLINE __m256i dot4_i8(__m256i w, __m256i xb)
{
    return dot4_u8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xb, w));
}

INLINE void store8(float *y, __m256 v, int valid)
{
    if (valid >= 8) {
        _mm256_storeu_ps(y, v);
    } else if (valid > 0) {
        float t[8];
        _mm256_storeu_ps(t, v);
        memcpy(y, t, (size_t)valid * sizeof(float));
    }
}

INLINE void store_group(float *y, const __m256 v[2], int valid)
{
    store8(y, v[0], valid);
    store8(y + 8, v[1], valid - 8);
}

/* ---- Q8_0 / Q4_0 ---- */

INLINE void xq_kernel(const int IS_Q4, const int T, int64_t nb, const uint8_t *g, const uint8_t *xp,
                      size_t ts, int64_t k, float *y, int64_t ldy, int valid)
{
    const size_t qbytes = IS_Q4 ? 256 : 512;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 facc[4][2];
    for (int t = 0; t < T; t++)
        facc[t][0] = facc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i acc[4][2];
        for (int t = 0; t < T; t++) {
            /* Q4_0 nibbles carry +8: start at −8·Σx (from the pack); Q8_0 needs no offset */
            const __m256i c = IS_Q4 ? _mm256_set1_epi32(((const int32_t *)(xp + (size_t)t * ts + k))[b])
                                    : _mm256_setzero_si256();
            acc[t][0] = acc[t][1] = c;
        }
        const uint8_t *qb = g + (size_t)b * qbytes;
        if (T == 1)   /* the quants' stream, 4 KiB ahead (see prefetch_stream) */
            for (size_t o = 0; o < qbytes; o += 64)
                _mm_prefetch((const char *)qb + 4096 + o, _MM_HINT_T0);
        if (IS_Q4) {
            for (int m = 0; m < 4; m++) {
                __m256i lo[2], hi[2];
                for (int h = 0; h < 2; h++) {
                    const __m256i l = _mm256_load_si256((const __m256i *)(qb + m * 64 + h * 32));
                    lo[h] = _mm256_and_si256(l, m4);
                    hi[h] = _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                }
                for (int t = 0; t < T; t++) {
                    const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * 32;
                    int32_t a0, a1;
                    memcpy(&a0, xq + 4 * m, 4);
                    memcpy(&a1, xq + 16 + 4 * m, 4);
                    const __m256i x0 = _mm256_set1_epi32(a0), x1 = _mm256_set1_epi32(a1);
                    for (int h = 0; h < 2; h++) {
                        acc[t][h] = _mm256_add_epi32(acc[t][h], dot4_u8(lo[h], x0));
                        acc[t][h] = _mm256_add_epi32(acc[t][h], dot4_u8(hi[h], x1));
                    }
                }
            }
        } else {
            for (int j = 0; j < 8; j++) {
                __m256i wv[2];
                for (int h = 0; h < 2; h++)
                    wv[h] = _mm256_load_si256((const __m256i *)(qb + j * 64 + h * 32));
                for (int t = 0; t < T; t++) {
                    int32_t a;
                    memcpy(&a, (const int8_t *)(xp + (size_t)t * ts) + b * 32 + 4 * j, 4);
                    const __m256i xv = _mm256_set1_epi32(a);
                    for (int h = 0; h < 2; h++)
                        acc[t][h] = _mm256_add_epi32(acc[t][h], dot4_i8(wv[h], xv));
                }
            }
        }
        const uint8_t *dp = g + (size_t)nb * qbytes + (size_t)b * 32;
        const __m256 dw[2] = { _mm256_cvtph_ps(_mm_load_si128((const __m128i *)dp)),
                               _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(dp + 16))) };
        for (int t = 0; t < T; t++) {
            const float *dx = (const float *)(xp + (size_t)t * ts + k + nb * 4);
            const __m256 dxv = _mm256_set1_ps(dx[b]);
            for (int h = 0; h < 2; h++)
                facc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t][h]), _mm256_mul_ps(dw[h], dxv), facc[t][h]);
        }
    }
    for (int t = 0; t < T; t++)
        store_group(y + t * ldy, facc[t], valid);
}

/* ---- F16 / F32 ---- */

/* cs: bytes between the group's 64-byte chunks (2 k of F16, 1 k of F32) */
INLINE void xf_kernel(const int IS_F16, const int T, int64_t k, const uint8_t *g, size_t cs,
                      const uint8_t *xp, size_t ts, float *y, int64_t ldy, int valid)
{
    __m256 facc[6][2];   /* up to 6 tokens: 12 accumulators, 2 weights, 1 broadcast */
    for (int t = 0; t < T; t++)
        facc[t][0] = facc[t][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; i++) {
        const uint8_t *p = IS_F16 ? g + (size_t)(i >> 1) * cs + (size_t)(i & 1) * 32 : g + (size_t)i * cs;
        if (T == 1 && (IS_F16 ? (i & 1) == 0 : 1))   /* one line per 64 bytes, 4 KiB ahead */
            _mm_prefetch((const char *)p + 4096, _MM_HINT_T0);
        __m256 wv[2];
        if (IS_F16) {
            wv[0] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)p));
            wv[1] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(p + 16)));
        } else {
            wv[0] = _mm256_load_ps((const float *)p);
            wv[1] = _mm256_load_ps((const float *)(p + 32));
        }
        for (int t = 0; t < T; t++) {
            const __m256 xv = _mm256_set1_ps(((const float *)(xp + (size_t)t * ts))[i]);
            facc[t][0] = _mm256_fmadd_ps(wv[0], xv, facc[t][0]);
            facc[t][1] = _mm256_fmadd_ps(wv[1], xv, facc[t][1]);
        }
    }
    for (int t = 0; t < T; t++)
        store_group(y + t * ldy, facc[t], valid);
}

/* ---- K-quants ---- */

INLINE __m256i pairs16(const uint8_t *a, const uint8_t *b, int is_signed)
{
    const __m128i va = _mm_loadl_epi64((const __m128i *)a), vb = _mm_loadl_epi64((const __m128i *)b);
    const __m256i lo = is_signed ? _mm256_cvtepi8_epi32(va) : _mm256_cvtepu8_epi32(va);
    const __m256i hi = is_signed ? _mm256_cvtepi8_epi32(vb) : _mm256_cvtepu8_epi32(vb);
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(hi, 16));
}

/* Decode reads a group's super-blocks (or blocks) as one stream, group after group: while it
 * works on quarter q of the chunk at p (cs bytes), the same quarter two chunks ahead goes into
 * L1. Spread out like this the prefetches keep ahead of the loads; a whole group requested at
 * once (~75 KiB) held Q4_K and Q5_K decode to a third of this speed. */
INLINE void prefetch_stream(const uint8_t *p, size_t cs, int q)
{
    const uint8_t *a = p + 2 * cs + (size_t)q * (cs / 4);
    for (size_t o = 0; o < cs / 4; o += 64)
        _mm_prefetch((const char *)a + o, _MM_HINT_T0);
}

INLINE __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
INLINE __m256i i8x8(const uint8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

/* Bit `bit` (0..7) of every byte moved to bit 4 and the rest cleared: 16-bit shifts by at most
 * 4 keep each byte's bits inside the byte at the position kept. */
INLINE __m256i bit_to_16(__m256i h, int bit)
{
    const __m256i v = bit <= 4 ? _mm256_slli_epi16(h, 4 - bit) : _mm256_srli_epi16(h, bit - 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

/* cs: bytes between the group's super-blocks; Q5: Q5_K_X16 (the Q4_K layout plus the fifth
 * bits, added as 16 to the nibbles; maddubs pairs stay below 2 · 31 · 128) */
INLINE void xk4_kernel(const int Q5, const int T, int64_t nb, const uint8_t *g, size_t cs, const uint8_t *xp, size_t ts,
                       int64_t k, float *y, int64_t ldy, int valid)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 facc[4][2];
    for (int t = 0; t < T; t++)
        facc[t][0] = facc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = g + (size_t)b * cs;
        __m256i isum[4][2];
        for (int t = 0; t < T; t++)
            isum[t][0] = isum[t][1] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            if (T == 1)
                prefetch_stream(sb, cs, j);
            __m256i alo[4][2], ahi[4][2];
            for (int t = 0; t < T; t++)
                alo[t][0] = alo[t][1] = ahi[t][0] = ahi[t][1] = _mm256_setzero_si256();
            for (int c = 0; c < 8; c++) {
                __m256i lo[2], hi[2];
                for (int h = 0; h < 2; h++) {
                    const __m256i l = _mm256_load_si256((const __m256i *)(sb + (j * 8 + c) * 64 + h * 32));
                    lo[h] = _mm256_and_si256(l, m4);
                    hi[h] = _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                    if (Q5) {
                        const __m256i q = _mm256_load_si256((const __m256i *)(sb + X16_Q5K_QH + c * 64 + h * 32));
                        lo[h] = _mm256_or_si256(lo[h], bit_to_16(q, 2 * j));
                        hi[h] = _mm256_or_si256(hi[h], bit_to_16(q, 2 * j + 1));
                    }
                }
                for (int t = 0; t < T; t++) {
                    const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * QK_K + 64 * j + 4 * c;
                    int32_t a0, a1;
                    memcpy(&a0, xq, 4);
                    memcpy(&a1, xq + 32, 4);
                    const __m256i x0 = _mm256_set1_epi32(a0), x1 = _mm256_set1_epi32(a1);
                    for (int h = 0; h < 2; h++) {
                        alo[t][h] = _mm256_add_epi32(alo[t][h], dot4_u8(lo[h], x0));
                        ahi[t][h] = _mm256_add_epi32(ahi[t][h], dot4_u8(hi[h], x1));
                    }
                }
            }
            for (int h = 0; h < 2; h++) {
                const __m256i s0 = u8x8(sb + 2048 + (2 * j) * 16 + h * 8);
                const __m256i s1 = u8x8(sb + 2048 + (2 * j + 1) * 16 + h * 8);
                for (int t = 0; t < T; t++)
                    isum[t][h] = _mm256_add_epi32(isum[t][h], _mm256_add_epi32(_mm256_mullo_epi32(alo[t][h], s0),
                                                                               _mm256_mullo_epi32(ahi[t][h], s1)));
            }
        }
        for (int h = 0; h < 2; h++) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 2304 + h * 16)));
            const __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 2336 + h * 16)));
            __m256i mp[4];
            for (int i = 0; i < 4; i++)
                mp[i] = pairs16(sb + 2176 + (2 * i) * 16 + h * 8, sb + 2176 + (2 * i + 1) * 16 + h * 8, 0);
            for (int t = 0; t < T; t++) {
                const int32_t *aux = (const int32_t *)(xp + (size_t)t * ts + k) + b * 16;
                __m256i msum = _mm256_setzero_si256();
                for (int i = 0; i < 4; i++)
                    msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mp[i], _mm256_set1_epi32(aux[1 + i])));
                float dx;
                memcpy(&dx, aux, 4);
                const __m256 dxv = _mm256_set1_ps(dx);
                facc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][h]), _mm256_mul_ps(dv, dxv), facc[t][h]);
                facc[t][h] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(mv, dxv), facc[t][h]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        store_group(y + t * ldy, facc[t], valid);
}

INLINE void xk6_kernel(const int T, int64_t nb, const uint8_t *g, size_t cs, const uint8_t *xp, size_t ts,
                       int64_t k, float *y, int64_t ldy, int valid)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    __m256 facc[4][2];
    for (int t = 0; t < T; t++)
        facc[t][0] = facc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sb = g + (size_t)b * cs;
        __m256i isum[4][2];
        for (int t = 0; t < T; t++)
            isum[t][0] = isum[t][1] = _mm256_setzero_si256();
        for (int hf = 0; hf < 2; hf++) {
            for (int q = 0; q < 2; q++) {
                if (T == 1)
                    prefetch_stream(sb, cs, hf * 2 + q);
                __m256i acc[4][4][2];   /* [t][part][half] */
                for (int t = 0; t < T; t++)
                    for (int part = 0; part < 4; part++)
                        acc[t][part][0] = acc[t][part][1] = _mm256_setzero_si256();
                for (int cc = 0; cc < 4; cc++) {
                    const int c = 4 * q + cc;
                    __m256i e[4][2];
                    for (int h = 0; h < 2; h++) {
                        const __m256i A = _mm256_load_si256((const __m256i *)(sb + (hf * 16 + c) * 64 + h * 32));
                        const __m256i B = _mm256_load_si256((const __m256i *)(sb + (hf * 16 + 8 + c) * 64 + h * 32));
                        const __m256i Q = _mm256_load_si256((const __m256i *)(sb + 2048 + (hf * 8 + c) * 64 + h * 32));
                        e[0][h] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_slli_epi16(_mm256_and_si256(Q, m3), 4));
                        e[1][h] = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(Q, 2), m3), 4));
                        e[2][h] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(Q, 4), m3), 4));
                        e[3][h] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(Q, 6), m3), 4));
                    }
                    for (int t = 0; t < T; t++) {
                        const int8_t *xq = (const int8_t *)(xp + (size_t)t * ts) + b * QK_K + 128 * hf + 4 * c;
                        for (int part = 0; part < 4; part++) {
                            int32_t a;
                            memcpy(&a, xq + 32 * part, 4);
                            const __m256i xv = _mm256_set1_epi32(a);
                            for (int h = 0; h < 2; h++)
                                acc[t][part][h] = _mm256_add_epi32(acc[t][part][h], dot4_u8(e[part][h], xv));
                        }
                    }
                }
                for (int part = 0; part < 4; part++) {
                    const int sub = 8 * hf + 2 * part + q;
                    for (int h = 0; h < 2; h++) {
                        const __m256i sv = i8x8(sb + 3072 + sub * 16 + h * 8);
                        for (int t = 0; t < T; t++)
                            isum[t][h] = _mm256_add_epi32(isum[t][h], _mm256_mullo_epi32(acc[t][part][h], sv));
                    }
                }
            }
        }
        for (int h = 0; h < 2; h++) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sb + 3328 + h * 16)));
            __m256i sp[8];
            for (int i = 0; i < 8; i++)
                sp[i] = pairs16(sb + 3072 + (2 * i) * 16 + h * 8, sb + 3072 + (2 * i + 1) * 16 + h * 8, 1);
            for (int t = 0; t < T; t++) {
                const int32_t *aux = (const int32_t *)(xp + (size_t)t * ts + k) + b * 16;
                __m256i corr = _mm256_setzero_si256();
                for (int i = 0; i < 8; i++)
                    corr = _mm256_add_epi32(corr, _mm256_madd_epi16(sp[i], _mm256_set1_epi32(aux[5 + i])));
                const __m256i is = _mm256_sub_epi32(isum[t][h], _mm256_slli_epi32(corr, 5));
                float dx;
                memcpy(&dx, aux, 4);
                facc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(dv, _mm256_set1_ps(dx)), facc[t][h]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        store_group(y + t * ldy, facc[t], valid);
}

/* ---- dispatch: one group × a tile of tokens per call ---- */

/* Groups one at a time (decode prefetches inside the kernels, along the stream). Batches go
 * through the rows in panels of about 256 KiB that stay in L2 while every token tile passes
 * (else a matrix larger than L2 is read from memory once per tile). CB: chunk (super-block)
 * bytes of the K-quant layouts. TILE: tokens per call, 4 (the integer kernels) or 6 (float:
 * 12 accumulators keep both FMA pipes busy through their latency; 8 left them short). */
#define RUN_GROUPS(TOKEN_BYTES, CB, TILE, CALL)                                                  \
    const size_t gb = nb1 * 16, ts = TOKEN_BYTES, cs = CB;                                       \
    (void)cs;                                                                                    \
    const int64_t g_end = (r1 + 15) / 16;                                                        \
    int64_t pgn = n == 1 ? g_end : (int64_t)((256 * 1024) / gb);                                 \
    if (pgn < 1) pgn = 1;                                                                        \
    for (int64_t p0 = r0 / 16; p0 < g_end; p0 += pgn)                                            \
    for (int64_t t = 0; t < n; t += TILE) {                                                      \
        const int T = n - t >= TILE ? TILE : (int)(n - t);                                       \
        const uint8_t *xt = (const uint8_t *)packed + (size_t)t * ts;                            \
        for (int64_t g = p0; g < p0 + pgn && g < g_end; g++) {                                   \
            const int valid = r1 - g * 16 >= 16 ? 16 : (int)(r1 - g * 16);                       \
            const uint8_t *gp = (const uint8_t *)w + (size_t)g * gb;                             \
            float *yo = y + t * ldy + g * 16;                                                    \
            switch (T) {                                                                         \
            case 1: CALL(1); break;                                                              \
            case 2: CALL(2); break;                                                              \
            case 3: CALL(3); break;                                                              \
            case 4: CALL(4); break;                                                              \
            case 5: if (TILE > 4) { CALL(5); } break;                                            \
            default: if (TILE > 5) { CALL(6); } break;                                           \
            }                                                                                    \
        }                                                                                        \
    }

/* One gemm entry point per layout, each with its kernel call as a constant. */
#define RUN_FN(name, TOKEN_BYTES, CB, TILE, BLOCK, CALL)                                         \
    static void name(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,               \
                     const void *packed, int64_t n, float *y, int64_t ldy)                       \
    {                                                                                            \
        const int64_t nb = k / (BLOCK);                                                          \
        (void)nb;                                                                                \
        RUN_GROUPS(TOKEN_BYTES, CB, TILE, CALL)                                                  \
    }

#define C_Q8(T_) xq_kernel(0, T_, nb, gp, xt, ts, k, yo, ldy, valid)
#define C_Q4(T_) xq_kernel(1, T_, nb, gp, xt, ts, k, yo, ldy, valid)
#define C_F16(T_) xf_kernel(1, T_, k, gp, 64, xt, ts, yo, ldy, valid)
#define C_F32(T_) xf_kernel(0, T_, k, gp, 64, xt, ts, yo, ldy, valid)
#define C_Q4K(T_) xk4_kernel(0, T_, nb, gp, cs, xt, ts, k, yo, ldy, valid)
#define C_Q5K(T_) xk4_kernel(1, T_, nb, gp, cs, xt, ts, k, yo, ldy, valid)
#define C_Q6K(T_) xk6_kernel(T_, nb, gp, cs, xt, ts, k, yo, ldy, valid)
RUN_FN(run_q8, lfm2_x16q_token_bytes(k), 0, 4, 32, C_Q8)
RUN_FN(run_q4, lfm2_x16q_token_bytes(k), 0, 4, 32, C_Q4)
RUN_FN(run_f16, lfm2_x16f_token_bytes(k), 0, 6, 1, C_F16)
RUN_FN(run_f32, lfm2_x16f_token_bytes(k), 0, 6, 1, C_F32)
RUN_FN(run_q4k, lfm2_x16k_token_bytes(k), X16_Q4K_SB, 4, QK_K, C_Q4K)
RUN_FN(run_q5k, lfm2_x16k_token_bytes(k), X16_Q5K_SB, 4, QK_K, C_Q5K)
RUN_FN(run_q6k, lfm2_x16k_token_bytes(k), X16_Q6K_SB, 4, QK_K, C_Q6K)

/* ---- BF16 as stored (rows read in place from the file mapping) ----
 * As on the AVX-512 path, without VDPBF16PS: activations rounded to bf16 as ggml does; per
 * (row, token) the row's 16-element chunk c goes to partial sum c % 2 as two FMAs, even then
 * odd elements widened to f32 (the k % 16 tail is a zero-filled chunk); the result is the
 * horizontal sum of p0 + p1. Decode reads the rows one after another; batches take 2 rows × 2
 * tokens per pass over L2 panels of rows. The same operations either way: batch invariant. */
INLINE __m256 bf_lo(__m256i v) { return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); }
INLINE __m256 bf_hi(__m256i v) { return _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u))); }
INLINE float bf16_result(__m256 a0, __m256 a1)
{
    const __m256 v = _mm256_add_ps(a0, a1);
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}
/* chunk c of a row (c == nc: the zero-filled tail) */
INLINE __m256i bf16_load(const uint16_t *p, int64_t c, int64_t nc, int64_t tail)
{
    if (c < nc)
        return _mm256_loadu_si256((const __m256i *)(p + 16 * c));
    uint16_t t[16] = { 0 };
    memcpy(t, p + 16 * c, (size_t)tail * 2);
    return _mm256_loadu_si256((const __m256i *)t);
}

/* The packed input is already widened: per 16-element chunk, its even elements then its odd
 * ones as floats (rounded through bf16; the tail chunk zero-filled), so the kernels widen only
 * the weights. */
static size_t bf16_token_bytes(int64_t k) { return (size_t)((k + 15) / 16) * 64; }
static void pack_bf16(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst)
{
    for (int64_t t = t0; t < t1; t++) {
        float *o = (float *)((uint8_t *)dst + (size_t)t * bf16_token_bytes(k));
        for (int64_t c = 0; c < k; c += 16, o += 16) {
            uint16_t h[16] = { 0 };
            kt->act[LFM2_ACT_BF16](x + t * ldx + c, h, k - c < 16 ? k - c : 16);
            const __m256i v = _mm256_loadu_si256((const __m256i *)h);
            _mm256_storeu_ps(o, bf_lo(v));
            _mm256_storeu_ps(o + 8, bf_hi(v));
        }
    }
}

/* R rows × T tokens (xs elements apart); chunks in order, c % 2 picks the partial sum */
INLINE void rows_bf16_rt(const int R, const int T, int64_t k, const uint8_t *w, size_t nb1,
                         const float *x, size_t xs, float *y, int64_t ldy)
{
    const int64_t nc = k / 16, tail = k % 16, nall = nc + (tail != 0);
    __m256 acc[2][2][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < nall; c += 2)
        for (int j = 0; j < 2 && c + j < nall; j++) {
            __m256i wv[2];
            for (int r = 0; r < R; r++) {
                const uint16_t *p = (const uint16_t *)(w + (size_t)r * nb1);
                if (T == 1 && R == 1 && j == 0)   /* decode: the row stream, 4 KiB ahead */
                    _mm_prefetch((const char *)(p + 16 * c) + 4096, _MM_HINT_T0);
                wv[r] = bf16_load(p, c + j, nc, tail);
            }
            __m256 wl[2], wh[2];
            for (int r = 0; r < R; r++) {
                wl[r] = bf_lo(wv[r]);
                wh[r] = bf_hi(wv[r]);
            }
            for (int t = 0; t < T; t++) {
                const float *xc = x + t * xs + 16 * (c + j);
                const __m256 xl = _mm256_loadu_ps(xc), xh = _mm256_loadu_ps(xc + 8);
                for (int r = 0; r < R; r++)
                    acc[r][t][j] = _mm256_fmadd_ps(wh[r], xh, _mm256_fmadd_ps(wl[r], xl, acc[r][t][j]));
            }
        }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = bf16_result(acc[r][t][0], acc[r][t][1]);
}

static void run_bf16_rows(int64_t k, const void *w, size_t nb1, int64_t r0, int64_t r1,
                          const void *packed, int64_t n, float *y, int64_t ldy)
{
    const float *x = packed;
    const size_t xs = bf16_token_bytes(k) / 4;
    const uint8_t *wb = w;
    if (n == 1) {
        for (int64_t r = r0; r < r1; r++)
            rows_bf16_rt(1, 1, k, wb + (size_t)r * nb1, nb1, x, xs, y + r, ldy);
        return;
    }
    int64_t panel = (int64_t)((256 * 1024) / nb1) / 2 * 2;
    if (panel < 2) panel = 2;
    for (int64_t p0 = r0; p0 < r1; p0 += panel) {
        const int64_t p1 = p0 + panel < r1 ? p0 + panel : r1;
        for (int64_t t = 0; t < n; t += 2) {
            const int T = n - t >= 2 ? 2 : 1;
            for (int64_t r = p0; r < p1; r += 2) {
                const int R = p1 - r >= 2 ? 2 : 1;
                const uint8_t *wr = wb + (size_t)r * nb1;
                const float *xt = x + (size_t)t * xs;
                float *yt = y + t * ldy + r;
                if (R == 2 && T == 2) rows_bf16_rt(2, 2, k, wr, nb1, xt, xs, yt, ldy);
                else if (R == 2) rows_bf16_rt(2, 1, k, wr, nb1, xt, xs, yt, ldy);
                else if (T == 2) rows_bf16_rt(1, 2, k, wr, nb1, xt, xs, yt, ldy);
                else rows_bf16_rt(1, 1, k, wr, nb1, xt, xs, yt, ldy);
            }
        }
    }
}

/* Activations rounded through fp16 with F16C (round to nearest even, as ggml does); the
 * scalar tail goes through the reference conversion. The AVX-512 gemms use it too. */
void lfm2_x16_pack_f16_f16c(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                            int64_t t0, int64_t t1, void *dst)
{
    (void)kt;
    const size_t ts = lfm2_x16f_token_bytes(k);
    for (int64_t t = t0; t < t1; t++) {
        float *p = (float *)((uint8_t *)dst + (size_t)t * ts);
        const float *xr = x + t * ldx;
        int64_t i = 0;
        for (; i + 8 <= k; i += 8) {
            const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(xr + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_ps(p + i, _mm256_cvtph_ps(h));
        }
        for (; i < k; i++)
            p[i] = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(xr[i]));
    }
}

const struct lfm2_gemm *const lfm2_gemm_avx2[LFM2_KTYPE_COUNT] = {
    LFM2_X16_GEMMS(lfm2_x16_pack_f16_f16c),
    [LFM2_TYPE_BF16] = &(const struct lfm2_gemm){ bf16_token_bytes, pack_bf16, run_bf16_rows },
};
