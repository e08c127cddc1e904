/* gemv-impl.h — the 256-bit GEMV tiles for weights read as stored (ggml block layouts),
 * written once and compiled per path: included by avx2.c (VPMADDUBSW + VPMADDWD) and
 * avx512.c (VPDPBUSD on ymm registers), which first define
 *
 *   INLINE                          static inline, always inlined
 *   __m256i dot_i8(__m256i w, __m256i x)   Σ over each 4-byte group of signed w · signed x,
 *                                           as 8 int32 lanes
 *   __m256i dot_u8(__m256i u, __m256i x)   the same for unsigned u ≤ 31 · signed x
 *   __m256i q5_high(const uint8_t *qh)     32 bytes of 0x10 where bit j of the 32-bit qh is set
 *   GEMV_PREFETCH                   1: GEMV_TILE prefetches rows ~8 KiB ahead into L2
 *
 * Each dot_<type>_n computes NR weight rows (stride nb1) against one activation row, one
 * ggml block at a time: the block's exact int32 sum, then acc = fma(float(sum), d_w·d_x, acc)
 * in 8 float lanes, as ggml_vec_dot_* scales per block. NR is a compile-time constant (1 or
 * 4) so the accumulators stay in registers. Integer sums cannot overflow for any block bits
 * (|w| ≤ 128, |x| ≤ 127, 32 products).
 */

#define ROWS_LOOP(NR) for (int r = 0; r < (NR); r++)

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 16 bytes of nibble pairs → 32 bytes: the low nibbles, then the high ones */
INLINE __m256i unpack_nib32(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

INLINE void dot_q8_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q8_0 *wb = (const block_q8_0 *)(w + r * nb1) + b;
            const __m256i p = dot_i8(_mm256_loadu_si256((const __m256i *)wb->qs), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

/* Q4_0 / Q5_0: unsigned quants · x − offset·Σx, the latter computed once per block for all
 * rows (offset 8 for Q4_0 nibbles, 16 for Q5_0's five bits) */
INLINE void dot_q4_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx8 = dot_u8(eight, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q4_0 *wb = (const block_q4_0 *)(w + r * nb1) + b;
            const __m256i p = _mm256_sub_epi32(dot_u8(unpack_nib32(wb->qs), xq), sx8);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

INLINE void dot_q5_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_0 *x, float *out)
{
    __m256 acc[4];
    ROWS_LOOP(NR) acc[r] = _mm256_setzero_ps();
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i sx16 = dot_u8(sixteen, xq);
        const float dx = h2f(x[b].d);
        ROWS_LOOP(NR) {
            const block_q5_0 *wb = (const block_q5_0 *)(w + r * nb1) + b;
            const __m256i q = _mm256_or_si256(unpack_nib32(wb->qs), q5_high(wb->qh));
            const __m256i p = _mm256_sub_epi32(dot_u8(q, xq), sx16);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]);
}

/* Q4_1 / Q5_1: unsigned quants · x, plus m_w · s_x per block (s = the Q8_1 block sum) */
INLINE void dot_q4_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_1 *x, float *out)
{
    __m256 acc[4];
    float summs[4];
    ROWS_LOOP(NR) { acc[r] = _mm256_setzero_ps(); summs[r] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d), sx = h2f(x[b].s);
        ROWS_LOOP(NR) {
            const block_q4_1 *wb = (const block_q4_1 *)(w + r * nb1) + b;
            const __m256i p = dot_u8(unpack_nib32(wb->qs), xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

INLINE void dot_q5_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const block_q8_1 *x, float *out)
{
    __m256 acc[4];
    float summs[4];
    ROWS_LOOP(NR) { acc[r] = _mm256_setzero_ps(); summs[r] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const float dx = h2f(x[b].d), sx = h2f(x[b].s);
        ROWS_LOOP(NR) {
            const block_q5_1 *wb = (const block_q5_1 *)(w + r * nb1) + b;
            const __m256i q = _mm256_or_si256(unpack_nib32(wb->qs), q5_high(wb->qh));
            const __m256i p = dot_u8(q, xq);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f(wb->d) * dx), acc[r]);
            summs[r] += h2f(wb->m) * sx;
        }
    }
    ROWS_LOOP(NR) out[r] = hsum8(acc[r]) + summs[r];
}

/* K-quant 6-bit scales and mins: bytes 0..7 of sc and mn (as lfm2_get_scale_min_k4) */
INLINE void k4_scales(const uint8_t *q, uint32_t sc[2], uint32_t mn[2])
{
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    sc[0] = u0 & 0x3f3f3f3fu;
    mn[0] = u1 & 0x3f3f3f3fu;
    sc[1] = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    mn[1] = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
}

/* Σ_j m_j · (bsum_2j + bsum_2j+1): the min correction of Q4_K/Q5_K */
INLINE int k4_min_dot(const uint8_t *mn8, const int16_t *bsums)
{
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn8));
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i p = _mm_madd_epi16(m16, pairs);
    __m128i s = _mm_add_epi32(p, _mm_unpackhi_epi64(p, p));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* prefetch distance for a row stream, in rows (a multiple of 4, about 8 KiB ahead); into L2:
 * the L1 prefetchers take it from there, and the L1 miss buffers stay free for the loads */
INLINE int64_t pf_rows(size_t nb1)
{
    const int64_t r = (int64_t)((8192 + nb1 - 1) / nb1);
    return (r + 3) & ~(int64_t)3;
}

INLINE void prefetch_rows(const uint8_t *w, size_t nb1, int64_t r, int64_t nr)
{
    const uint8_t *p = w + (size_t)r * nb1, *end = p + (size_t)nr * nb1;
    for (; p < end; p += 64)
        _mm_prefetch((const char *)p, _MM_HINT_T1);
}

/* Tile = groups of 4 rows (then single rows) × every token. `KDIV` turns k into the
 * kernel's length argument (blocks or elements). */
#define GEMV_TILE(name, dotfn, XT, KDIV)                                                         \
    static void name(int64_t k, const void *w, size_t nb1, int64_t nr, const void *x, size_t xs, \
                     int64_t nt, float *y, int64_t ldy)                                          \
    {                                                                                            \
        const int64_t kk = k / (KDIV);                                                           \
        const int64_t pf = pf_rows(nb1);                                                         \
        int64_t r = 0;                                                                           \
        for (; r + 4 <= nr; r += 4) {                                                            \
            const uint8_t *wr = (const uint8_t *)w + r * nb1;                                    \
            if (GEMV_PREFETCH && r + pf + 4 <= nr)                                               \
                prefetch_rows(w, nb1, r + pf, 4);                                                \
            for (int64_t t = 0; t < nt; t++) {                                                   \
                float o[4];                                                                      \
                dotfn(4, kk, wr, nb1, (const XT *)((const uint8_t *)x + t * xs), o);             \
                memcpy(y + t * ldy + r, o, sizeof o);                                            \
            }                                                                                    \
        }                                                                                        \
        for (; r < nr; r++) {                                                                    \
            const uint8_t *wr = (const uint8_t *)w + r * nb1;                                    \
            for (int64_t t = 0; t < nt; t++)                                                     \
                dotfn(1, kk, wr, nb1, (const XT *)((const uint8_t *)x + t * xs), y + t * ldy + r); \
        }                                                                                        \
    }

GEMV_TILE(tile_q4_1, dot_q4_1_n, block_q8_1, QK4_1)
GEMV_TILE(tile_q5_0, dot_q5_0_n, block_q8_0, QK5_0)
GEMV_TILE(tile_q5_1, dot_q5_1_n, block_q8_1, QK5_1)
