/* x86-impl.h — intrinsics code shared by the AVX2 and AVX-512 paths, written once and
 * compiled per path: included by avx2.c (VPMADDUBSW + VPMADDWD) and avx512.c (VPDPBUSD on ymm
 * registers) after their activation quantizers. The including file first defines
 *
 *   INLINE                          static inline, always inlined
 *   __m256i dot_i8(__m256i w, __m256i x)   Σ over each 4-byte group of signed w · signed x,
 *                                           as 8 int32 lanes
 *   __m256i dot_u8(__m256i u, __m256i x)   the same for unsigned u ≤ 31 · signed x
 *   __m256i q5_high(const uint8_t *qh)     32 bytes of 0x10 where bit j of the 32-bit qh is set
 *   GEMV_PREFETCH                   1: GEMV_TILE prefetches rows ~8 KiB ahead into L2
 *   q8_block(x, block_q8_0 *y, lfm2_fp16 *s)   one Q8_0 block (quants.h rules), and the Q8_1
 *                                           sum s when s is not NULL
 *   act_q8_K, act_f16                the other activation quantizers (X86_ACTS lists them
 *                                    with simd-impl.h's act_bf16)
 *
 * and gets act_q8_0/act_q8_1, and the 256-bit GEMV tiles of the weights read as stored: each
 * dot_<type>_n computes NR weight rows (stride nb1) against one activation row, one ggml block
 * at a time: the block's exact int32 sum, then acc = fma(float(sum), d_w·d_x, acc) in 8 float
 * lanes, as ggml_vec_dot_* scales per block. NR is a compile-time constant (1 or 4) so the
 * accumulators stay in registers. Integer sums cannot overflow for any block bits (|w| ≤ 128,
 * |x| ≤ 127, 32 products).
 */

/* ---- activation rows of Q8_0 and Q8_1 blocks ---- */

static void act_q8_0(const float *x, void *vy, int64_t k)
{
    block_q8_0 *y = vy;
    for (int64_t b = 0; b < k / QK8_0; b++, x += QK8_0)
        q8_block(x, &y[b], NULL);
}

static void act_q8_1(const float *x, void *vy, int64_t k)
{
    block_q8_1 *y = vy;
    for (int64_t b = 0; b < k / QK8_1; b++, x += QK8_1) {
        block_q8_0 q;
        q8_block(x, &q, &y[b].s);
        y[b].d = q.d;
        memcpy(y[b].qs, q.qs, QK8_1);
    }
}

#define X86_ACTS                                                                                 \
    {                                                                                            \
        [LFM2_ACT_Q8_0] = act_q8_0, [LFM2_ACT_Q8_1] = act_q8_1, [LFM2_ACT_Q8_K] = act_q8_K,      \
        [LFM2_ACT_F16] = act_f16, [LFM2_ACT_BF16] = SFX(act_bf16),                               \
    }

/* ---- GEMV tiles ---- */

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

INLINE float h2f_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h2f(h);
}

/* Q4_0, Q4_1, Q5_0, Q5_1 (Q5: the fifth bits from qh; M: a min m, with Q8_1 activations):
 * unsigned quants · x, then − offset·Σx for Q4_0/Q5_0 (8 or 16; computed once per block for
 * all rows), or + m_w·s_x per block for Q4_1/Q5_1. Block layout: d, [m], [qh], nibbles. */
INLINE void dot_legacy_n(int NR, const int Q5, const int M, int64_t nb, const uint8_t *w, size_t nb1,
                         const void *xv, float *out)
{
    const size_t bsz = 2 + (M ? 2 : 0) + (Q5 ? 4 : 0) + 16;
    const size_t xsz = M ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const __m256i off = _mm256_set1_epi8(Q5 ? 16 : 8);
    __m256 acc[4];
    float summs[4];
    ROWS_LOOP(NR) { acc[r] = _mm256_setzero_ps(); summs[r] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = (const uint8_t *)xv + (size_t)b * xsz;   /* d, [s], qs */
        const __m256i xq = _mm256_loadu_si256((const __m256i *)(xb + (M ? 4 : 2)));
        const __m256i sx = M ? _mm256_setzero_si256() : dot_u8(off, xq);
        const float dx = h2f_at(xb), s = M ? h2f_at(xb + 2) : 0.0f;
        ROWS_LOOP(NR) {
            const uint8_t *wb = w + r * nb1 + (size_t)b * bsz;
            __m256i q = unpack_nib32(wb + bsz - 16);
            if (Q5)
                q = _mm256_or_si256(q, q5_high(wb + (M ? 4 : 2)));
            const __m256i p = M ? dot_u8(q, xq) : _mm256_sub_epi32(dot_u8(q, xq), sx);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(h2f_at(wb) * dx), acc[r]);
            if (M)
                summs[r] += h2f_at(wb + 2) * s;
        }
    }
    ROWS_LOOP(NR) out[r] = M ? hsum8(acc[r]) + summs[r] : hsum8(acc[r]);
}

INLINE void dot_q4_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const void *x, float *out)
{
    dot_legacy_n(NR, 0, 0, nb, w, nb1, x, out);
}

INLINE void dot_q4_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const void *x, float *out)
{
    dot_legacy_n(NR, 0, 1, nb, w, nb1, x, out);
}

INLINE void dot_q5_0_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const void *x, float *out)
{
    dot_legacy_n(NR, 1, 0, nb, w, nb1, x, out);
}

INLINE void dot_q5_1_n(int NR, int64_t nb, const uint8_t *w, size_t nb1, const void *x, float *out)
{
    dot_legacy_n(NR, 1, 1, nb, w, nb1, x, out);
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

/* one Q4_K/Q5_K super-block's share: d_x·d_w·isum − d_x·dmin_w·Σ_j m_j·(bsum_2j + bsum_2j+1)
 * (w: the block, d and dmin first) */
INLINE float k4_block_sum(const block_q8_K *x, const uint8_t *w, int isum, const uint32_t mn[2])
{
    const int msum = k4_min_dot((const uint8_t *)mn, x->bsums);
    const float d = x->d * h2f_at(w), dmin = x->d * h2f_at(w + 2);
    return d * (float)isum - dmin * (float)msum;
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

GEMV_TILE(tile_q8_0_gemv, dot_q8_0_n, block_q8_0, QK8_0)
GEMV_TILE(tile_q4_0_gemv, dot_q4_0_n, block_q8_0, QK4_0)
GEMV_TILE(tile_q4_1, dot_q4_1_n, void, QK4_1)
GEMV_TILE(tile_q5_0, dot_q5_0_n, void, QK5_0)
GEMV_TILE(tile_q5_1, dot_q5_1_n, void, QK5_1)

/* The K-quant and F32 tiles are built the same way from the including file's kernels
 * dot_q45_K_n(NR, Q5, …), dot_q6_K_n and dot_f32_n: it expands X86_GEMV_TILES once they are
 * defined. */
#define dot_q4_K_n(NR, ...) dot_q45_K_n(NR, 0, __VA_ARGS__)
#define dot_q5_K_n(NR, ...) dot_q45_K_n(NR, 1, __VA_ARGS__)
#define X86_GEMV_TILES                                                                           \
    GEMV_TILE(tile_q4_K, dot_q4_K_n, block_q8_K, QK_K)                                           \
    GEMV_TILE(tile_q5_K, dot_q5_K_n, block_q8_K, QK_K)                                           \
    GEMV_TILE(tile_q6_K, dot_q6_K_n, block_q8_K, QK_K)                                           \
    GEMV_TILE(tile_f32, dot_f32_n, float, 1)

/* the table entries of these tiles (Q8_0 and Q4_0: each path picks) */
#define X86_TILES                                                                                \
    [LFM2_TYPE_Q4_1] = tile_q4_1, [LFM2_TYPE_Q5_0] = tile_q5_0, [LFM2_TYPE_Q5_1] = tile_q5_1,    \
    [LFM2_TYPE_Q4_K] = tile_q4_K, [LFM2_TYPE_Q5_K] = tile_q5_K, [LFM2_TYPE_Q6_K] = tile_q6_K,    \
    [LFM2_TYPE_F32] = tile_f32
