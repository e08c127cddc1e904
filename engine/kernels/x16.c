/* x16.c — weight layouts with 16 rows interleaved (made once by lfm2_weights_prepare), their
 * row access, the activation packs and the portable kernels.
 *
 * Why: with 16 rows in the 16 lanes of a vector, one load brings the same columns of 16 rows,
 * each lane's block sum is exact without horizontal reductions, and the same kernel serves one
 * token and many — so batched and one-token products agree bit for bit, decode streams the
 * weights linearly, and prefill reuses each weight tile across many tokens from L1.
 *
 * Layouts (per group of 16 rows, groups consecutive, the last one padded with zero rows):
 *   Q8_0_X16  nb blocks × [8 steps × 16 lanes × 4 bytes]  (step j, lane r: w[r][32b+4j..+3])
 *             then nb × 16 fp16 scales
 *   Q4_0_X16  nb blocks × [4 chunks × 16 lanes × 4 bytes]  (chunk m, lane r: bytes 4m..4m+3 of
 *             row r's nibbles: low nibble = k 4m+i, high nibble = k 16+4m+i)
 *             then nb × 16 fp16 scales
 *   F16_X16   k × [16 lanes fp16]           F32_X16   k × [16 lanes f32]
 *   Q4_K_X16  per super-block (2368 bytes): nibbles [4 pairs][8 chunks][16 lanes × 4 bytes]
 *             (pair j chunk c: bytes 32j+4c.. of the row's qs; low nibbles = k 64j+4c+i of
 *             sub-block 2j, high = k 64j+32+4c+i of sub-block 2j+1), the 8 six-bit scales
 *             [8][16 lanes] and mins [8][16] as bytes, then 16 fp16 d and 16 fp16 dmin
 *   Q5_K_X16  per super-block (2880 bytes): the Q4_K_X16 layout of the low four bits, then qh
 *             [8 chunks][16 lanes × 4 bytes] (chunk c, lane r: qh bytes 4c..4c+3 of row r; bit
 *             2j of qh[l] is the fifth bit of k 64j+l, bit 2j+1 that of k 64j+32+l)
 *   Q6_K_X16  per super-block (3392 bytes): ql [2 halves][16 chunks][16 × 4], qh [2][8 chunks]
 *             [16 × 4] (the original bytes, chunked), scales [16][16 lanes] int8, 16 fp16 d,
 *             32 bytes of padding
 * Group sizes are multiples of 64 bytes; nb1 = group bytes / 16, so row offsets at multiples
 * of 16 (and slabs of a 3-D tensor with ne[1] % 16 == 0) work as for the original types.
 * The layout table (k_layouts) holds each layout's source type, bytes per source block and
 * its pack and row functions; every other fact comes from the source type's entry in the type
 * table (quants.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "kernels.h"

/* ---- repacking: one row into lane r of a zeroed group ---- */

/* Q8_0 / Q4_0: block b's quants as `steps` 4-byte steps (8 of int8, or 4 of nibble pairs)
 * at [b][step][lane], after all blocks the fp16 scales [b][lane] */
static void pack_q32(uint8_t *dst, int r, const uint8_t *row, int64_t k, size_t bsz, int steps)
{
    const int64_t nb = k / 32;
    uint8_t *d = dst + (size_t)nb * steps * 64;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * bsz;   /* d, then the quants */
        for (int j = 0; j < steps; j++)
            memcpy(dst + ((size_t)b * steps + j) * 64 + r * 4, blk + 2 + 4 * j, 4);
        memcpy(d + (b * 16 + r) * 2, blk, 2);
    }
}

static void pack_q8_0(uint8_t *dst, int r, const uint8_t *row, int64_t k) { pack_q32(dst, r, row, k, sizeof(block_q8_0), 8); }
static void pack_q4_0(uint8_t *dst, int r, const uint8_t *row, int64_t k) { pack_q32(dst, r, row, k, sizeof(block_q4_0), 4); }

static void pack_f16(uint8_t *dst, int r, const uint8_t *row, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        memcpy(dst + (size_t)i * 32 + r * 2, row + i * 2, 2);
}

static void pack_f32(uint8_t *dst, int r, const uint8_t *row, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        memcpy(dst + (size_t)i * 64 + r * 4, row + i * 4, 4);
}

/* Lane r of a Q4_K_X16 super-block (also the first 2368 bytes of a Q5_K_X16 one): nibbles
 * [4 pairs][8 chunks][16 lanes × 4 bytes], scales and mins as bytes, d and dmin. */
static void pack_q4k_lane(uint8_t *sb, int r, const uint8_t *qs, const uint8_t *scales, lfm2_fp16 d,
                          lfm2_fp16 dmin)
{
    for (int j = 0; j < 4; j++)
        for (int c = 0; c < 8; c++)
            memcpy(sb + (j * 8 + c) * 64 + r * 4, qs + 32 * j + 4 * c, 4);
    for (int sub = 0; sub < 8; sub++) {
        uint8_t sc, mn;
        lfm2_get_scale_min_k4(sub, scales, &sc, &mn);
        sb[2048 + sub * 16 + r] = sc;
        sb[2176 + sub * 16 + r] = mn;
    }
    memcpy(sb + 2304 + r * 2, &d, 2);
    memcpy(sb + 2336 + r * 2, &dmin, 2);
}

static void pack_q4_K(uint8_t *dst, int r, const uint8_t *row, int64_t k)
{
    const block_q4_K *blk = (const block_q4_K *)row;
    for (int64_t b = 0; b < k / QK_K; b++)
        pack_q4k_lane(dst + (size_t)b * X16_Q4K_SB, r, blk[b].qs, blk[b].scales, blk[b].d, blk[b].dmin);
}

/* the Q4_K layout of the low bits, then the fifth bits */
static void pack_q5_K(uint8_t *dst, int r, const uint8_t *row, int64_t k)
{
    const block_q5_K *blk = (const block_q5_K *)row;
    for (int64_t b = 0; b < k / QK_K; b++) {
        uint8_t *sb = dst + (size_t)b * X16_Q5K_SB;
        pack_q4k_lane(sb, r, blk[b].qs, blk[b].scales, blk[b].d, blk[b].dmin);
        for (int c = 0; c < 8; c++)
            memcpy(sb + X16_Q5K_QH + c * 64 + r * 4, blk[b].qh + 4 * c, 4);
    }
}

static void pack_q6_K(uint8_t *dst, int r, const uint8_t *row, int64_t k)
{
    const block_q6_K *blk = (const block_q6_K *)row;
    for (int64_t b = 0; b < k / QK_K; b++) {
        uint8_t *sb = dst + (size_t)b * X16_Q6K_SB;
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 16; c++)
                memcpy(sb + (h * 16 + c) * 64 + r * 4, blk[b].ql + 64 * h + 4 * c, 4);
            for (int c = 0; c < 8; c++)
                memcpy(sb + 2048 + (h * 8 + c) * 64 + r * 4, blk[b].qh + 32 * h + 4 * c, 4);
        }
        for (int sub = 0; sub < 16; sub++)
            sb[3072 + sub * 16 + r] = (uint8_t)blk[b].scales[sub];
        memcpy(sb + 3328 + r * 2, &blk[b].d, 2);
    }
}

/* The 6-bit value of element e (0..255) of lane `lane` in a Q6_K_X16 super-block. */
static inline int q6_value(const uint8_t *sb, int lane, int e)
{
    const int h = e / 128, w = e % 128, part = w / 32, l = w % 32;
    const int qlbyte = (part & 1) ? 32 + l : l;   /* parts 1 and 3 read ql[l + 32] */
    const uint8_t ql = sb[(h * 16 + qlbyte / 4) * 64 + lane * 4 + qlbyte % 4];
    const uint8_t qh = sb[2048 + (h * 8 + l / 4) * 64 + lane * 4 + l % 4];
    const int lo = part < 2 ? (ql & 0xF) : (ql >> 4);
    return lo | (((qh >> (2 * part)) & 3) << 4);
}

/* The 4-bit value of element e of lane `lane` in a Q4_K_X16 super-block. */
static inline int q4k_value(const uint8_t *sb, int lane, int e)
{
    const int j = e / 64, w = e % 64, hi = w >= 32, l = w % 32;
    const uint8_t q = sb[(j * 8 + l / 4) * 64 + lane * 4 + l % 4];
    return hi ? q >> 4 : q & 0xF;
}

/* The 5-bit value of element e of lane `lane` in a Q5_K_X16 super-block. */
static inline int q5k_value(const uint8_t *sb, int lane, int e)
{
    const int j = e / 64, w = e % 64, hi = w >= 32, l = w % 32;
    const uint8_t h = sb[X16_Q5K_QH + (l / 4) * 64 + lane * 4 + l % 4];
    return q4k_value(sb, lane, e) | (((h >> (2 * j + hi)) & 1) << 4);
}

/* ---- row access: lane `lane` of group g as floats (the reference dequantization of the
 * original row) ---- */

static void row_q8_0(const uint8_t *g, int lane, int64_t k, float *out)
{
    const int64_t nb = k / 32;
    const uint16_t *d = (const uint16_t *)(g + (size_t)nb * 512);
    for (int64_t b = 0; b < nb; b++) {
        const float s = lfm2_fp16_to_fp32(d[b * 16 + lane]);
        for (int j = 0; j < 8; j++)
            for (int i = 0; i < 4; i++)
                out[b * 32 + 4 * j + i] = s * (float)(int8_t)g[(size_t)b * 512 + j * 64 + lane * 4 + i];
    }
}

static void row_q4_0(const uint8_t *g, int lane, int64_t k, float *out)
{
    const int64_t nb = k / 32;
    const uint16_t *d = (const uint16_t *)(g + (size_t)nb * 256);
    for (int64_t b = 0; b < nb; b++) {
        const float s = lfm2_fp16_to_fp32(d[b * 16 + lane]);
        for (int m = 0; m < 4; m++)
            for (int i = 0; i < 4; i++) {
                const uint8_t q = g[(size_t)b * 256 + m * 64 + lane * 4 + i];
                out[b * 32 + 4 * m + i] = s * (float)((q & 0xF) - 8);
                out[b * 32 + 16 + 4 * m + i] = s * (float)((q >> 4) - 8);
            }
    }
}

static void row_f16(const uint8_t *g, int lane, int64_t k, float *out)
{
    for (int64_t i = 0; i < k; i++) {
        uint16_t h;
        memcpy(&h, g + (size_t)i * 32 + lane * 2, 2);
        out[i] = lfm2_fp16_to_fp32(h);
    }
}

static void row_f32(const uint8_t *g, int lane, int64_t k, float *out)
{
    for (int64_t i = 0; i < k; i++)
        memcpy(out + i, g + (size_t)i * 64 + lane * 4, 4);
}

/* as dq_q4_K / dq_q5_K: (d·sc)·q − dmin·m */
static void row_q45_K(bool q5, const uint8_t *g, int lane, int64_t k, float *out)
{
    for (int64_t b = 0; b < k / QK_K; b++) {
        const uint8_t *sb = g + (size_t)b * (q5 ? X16_Q5K_SB : X16_Q4K_SB);
        uint16_t dh, mh;
        memcpy(&dh, sb + 2304 + lane * 2, 2);
        memcpy(&mh, sb + 2336 + lane * 2, 2);
        const float d = lfm2_fp16_to_fp32(dh), dmin = lfm2_fp16_to_fp32(mh);
        for (int e = 0; e < QK_K; e++) {
            const int sub = e / 32;
            const float d1 = d * sb[2048 + sub * 16 + lane], m1 = dmin * sb[2176 + sub * 16 + lane];
            out[b * QK_K + e] = d1 * (float)(q5 ? q5k_value(sb, lane, e) : q4k_value(sb, lane, e)) - m1;
        }
    }
}

static void row_q4_K(const uint8_t *g, int lane, int64_t k, float *out) { row_q45_K(false, g, lane, k, out); }
static void row_q5_K(const uint8_t *g, int lane, int64_t k, float *out) { row_q45_K(true, g, lane, k, out); }

/* as dq_q6_K: d·sc·(q − 32) */
static void row_q6_K(const uint8_t *g, int lane, int64_t k, float *out)
{
    for (int64_t b = 0; b < k / QK_K; b++) {
        const uint8_t *sb = g + (size_t)b * X16_Q6K_SB;
        uint16_t dh;
        memcpy(&dh, sb + 3328 + lane * 2, 2);
        const float d = lfm2_fp16_to_fp32(dh);
        for (int e = 0; e < QK_K; e++)
            out[b * QK_K + e] = d * (float)(int8_t)sb[3072 + (e / 16) * 16 + lane] * (float)(q6_value(sb, lane, e) - 32);
    }
}

/* ---- the layout table ---- */

struct x16_layout {
    enum lfm2_type src;   /* the file type it is made from */
    int block_bytes;      /* bytes of one source block (its blck elements) for 16 rows */
    void (*pack_lane)(uint8_t *group, int lane, const uint8_t *row, int64_t k);
    void (*row_f32)(const uint8_t *group, int lane, int64_t k, float *out);
};

#define LAYOUT(T) [LFM2_TYPE_##T##_X16 - LFM2_TYPE_COUNT]
static const struct x16_layout k_layouts[LFM2_KTYPE_COUNT - LFM2_TYPE_COUNT] = {
    LAYOUT(Q8_0) = { LFM2_TYPE_Q8_0, 512 + 32, pack_q8_0, row_q8_0 },
    LAYOUT(Q4_0) = { LFM2_TYPE_Q4_0, 256 + 32, pack_q4_0, row_q4_0 },
    LAYOUT(F16) = { LFM2_TYPE_F16, 32, pack_f16, row_f16 },
    LAYOUT(F32) = { LFM2_TYPE_F32, 64, pack_f32, row_f32 },
    LAYOUT(Q4_K) = { LFM2_TYPE_Q4_K, X16_Q4K_SB, pack_q4_K, row_q4_K },
    LAYOUT(Q6_K) = { LFM2_TYPE_Q6_K, X16_Q6K_SB, pack_q6_K, row_q6_K },
    LAYOUT(Q5_K) = { LFM2_TYPE_Q5_K, X16_Q5K_SB, pack_q5_K, row_q5_K },
};

bool lfm2_type_is_x16(int type)
{
    return type >= LFM2_TYPE_COUNT && type < LFM2_KTYPE_COUNT;
}

int lfm2_x16_source(int type)
{
    return lfm2_type_is_x16(type) ? (int)k_layouts[type - LFM2_TYPE_COUNT].src : -1;
}

size_t lfm2_x16_group_bytes(int type, int64_t k)
{
    if (!lfm2_type_is_x16(type))
        return 0;
    const struct x16_layout *l = &k_layouts[type - LFM2_TYPE_COUNT];
    const size_t b = (size_t)(k / lfm2_type_block_elems(l->src)) * (size_t)l->block_bytes;
    return (b + 63) & ~(size_t)63;
}

/* the layout made from a file type; -1 if none */
static int x16_of(enum lfm2_type t)
{
    for (int i = 0; i < LFM2_KTYPE_COUNT - LFM2_TYPE_COUNT; i++)
        if (k_layouts[i].src == t)
            return LFM2_TYPE_COUNT + i;
    return -1;
}

/* Memory for a prepared tensor. Decode streams gigabytes of weights per second through the
 * TLB: on 4 KiB pages every 4 KiB costs a page walk (two-dimensional under a hypervisor), and
 * on this machine that held decode at ~30 GB/s where the same kernel reads 2 MiB pages at
 * ~45 GB/s. So tensors of 2 MiB and more start on a 2 MiB boundary and ask for transparent
 * huge pages (honoured when THP is "madvise" or "always"; the tail past the last whole 2 MiB
 * stays on small pages, so nothing is rounded up). The block stays free()-able, as callers
 * (and lfm2_weights_free) expect. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *alloc_prepared(size_t total)
{
    if (total < HUGE_PAGE)
        return lfm2_alloc_aligned(total);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, total) != 0) {
        lfm2_set_error("out of memory allocating %zu bytes", total);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, total & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);   /* advisory: failure is harmless */
#endif
    return p;
}

void *lfm2_weights_prepare(const lfm2_tensor *w, lfm2_tensor *out, bool drop_source)
{
    *out = *w;
    const int xt = x16_of(w->type);
    const int64_t k = w->ne[0], rows = w->ne[1], slabs = w->ne[2] * w->ne[3];
    if (xt < 0 || k <= 0 || rows <= 0 || k % lfm2_type_block_elems(w->type) != 0)
        return NULL;
    /* slabs (MoE experts) must stay 16-row aligned to be addressed by nb1 */
    if (slabs > 1 && rows % 16 != 0)
        return NULL;
    const struct x16_layout *layout = &k_layouts[xt - LFM2_TYPE_COUNT];
    const size_t gb = lfm2_x16_group_bytes(xt, k);
    const int64_t groups_per_slab = (rows + 15) / 16;
    const size_t total = gb * (size_t)(groups_per_slab * slabs);
    uint8_t *mem = alloc_prepared(total);
    if (!mem) {
        lfm2_prefix_error("preparing tensor '%s'", w->name ? w->name : "?");
        return NULL;
    }
    /* Source pages are dropped as the packing moves past them (whole pages inside the
     * tensor only: a neighbour may share the first or last page), so a file-mapped model's
     * resident size grows by about a megabyte while it is prepared, not by a tensor. */
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t src0 = (uintptr_t)w->data, src_end = src0 + w->nbytes;
    uintptr_t dropped = (src0 + ps - 1) & ~(ps - 1);
    for (int64_t s = 0; s < slabs; s++) {
        const uint8_t *src = (const uint8_t *)w->data + (size_t)(s * rows) * w->nb1;
        for (int64_t g = 0; g < groups_per_slab; g++) {
            const int nr = rows - g * 16 < 16 ? (int)(rows - g * 16) : 16;
            uint8_t *dst = mem + (size_t)(s * groups_per_slab + g) * gb;
            memset(dst, 0, gb);   /* rows past nr stay zero */
            for (int r = 0; r < nr; r++)
                layout->pack_lane(dst, r, src + (size_t)(g * 16 + r) * w->nb1, k);
            if (drop_source) {
                uintptr_t done = (uintptr_t)(src + (size_t)(g * 16 + nr) * w->nb1);
                if (done > src_end) done = src_end;
                done &= ~(ps - 1);
                if (done >= dropped + (1u << 20) || (s == slabs - 1 && g == groups_per_slab - 1 && done > dropped)) {
                    madvise((void *)dropped, done - dropped, MADV_DONTNEED);
                    dropped = done;
                }
            }
        }
    }
    out->type = (enum lfm2_type)xt;
    out->data = mem;
    out->nb1 = gb / 16;
    out->nbytes = total;
    return mem;
}

void lfm2_weights_free(void *mem)
{
    lfm2_free_aligned(mem);
}

/* Row r of an x16 tensor as floats (the reference dequantization of the original row). */
void lfm2_x16_row_f32(const lfm2_tensor *w, int64_t r, float *out)
{
    const int64_t rows = w->ne[1];
    const size_t gb = w->nb1 * 16;
    const uint8_t *slab = (const uint8_t *)w->data + (size_t)(r / rows) * (size_t)rows * w->nb1;
    const uint8_t *g = slab + (size_t)((r % rows) / 16) * gb;
    k_layouts[w->type - LFM2_TYPE_COUNT].row_f32(g, (int)(r % rows % 16), w->ne[0], out);
}

/* ---- activation packs ----
 * Quantized x16 kernels read, per token: the Q8_0 quants (k bytes), then per block the
 * offset correction −c·Σq (c = 128 for Q8_0 weights made unsigned, 8 for Q4_0 nibbles) and
 * d_x as a float. Float kernels read the token row rounded as ggml rounds it for the type. */

size_t lfm2_x16q_token_bytes(int64_t k)
{
    return ((size_t)k + (size_t)(k / 32) * 8 + 63) & ~(size_t)63;
}

static void pack_q(lfm2_act_fn quant, int c, const float *x, int64_t ldx, int64_t k, int64_t t0,
                   int64_t t1, void *dst)
{
    const int64_t nb = k / 32;
    const size_t ts = lfm2_x16q_token_bytes(k);
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *p = (uint8_t *)dst + (size_t)t * ts;
        int32_t *corr = (int32_t *)(p + k);
        float *dx = (float *)(corr + nb);
        for (int64_t b = 0; b < nb; b++) {
            block_q8_0 blk;
            quant(x + t * ldx + b * 32, &blk, 32);
            memcpy(p + b * 32, blk.qs, 32);
            int s = 0;
            for (int i = 0; i < 32; i++)
                s += blk.qs[i];
            corr[b] = -c * s;
            dx[b] = lfm2_fp16_to_fp32(blk.d);
        }
    }
}

void lfm2_x16_pack_q8(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst)
{
    pack_q(kt->act[LFM2_ACT_Q8_0], 128, x, ldx, k, t0, t1, dst);
}

void lfm2_x16_pack_q4(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                      int64_t t0, int64_t t1, void *dst)
{
    pack_q(kt->act[LFM2_ACT_Q8_0], 8, x, ldx, k, t0, t1, dst);
}

size_t lfm2_x16k_token_bytes(int64_t k)
{
    return ((size_t)k + (size_t)(k / QK_K) * 64 + 63) & ~(size_t)63;
}

void lfm2_x16_pack_k(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                     int64_t t0, int64_t t1, void *dst)
{
    const lfm2_act_fn quant = kt->act[LFM2_ACT_Q8_K];
    const int64_t nb = k / QK_K;
    const size_t ts = lfm2_x16k_token_bytes(k);
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *p = (uint8_t *)dst + (size_t)t * ts;
        int32_t *aux = (int32_t *)(p + k);
        for (int64_t b = 0; b < nb; b++) {
            block_q8_K blk;
            quant(x + t * ldx + b * QK_K, &blk, QK_K);
            memcpy(p + b * QK_K, blk.qs, QK_K);
            int32_t *a = aux + b * 16;
            memcpy(&a[0], &blk.d, 4);
            for (int i = 0; i < 4; i++) {   /* 32-element sums of sub-blocks 2i, 2i+1 */
                const int s0 = blk.bsums[4 * i] + blk.bsums[4 * i + 1];
                const int s1 = blk.bsums[4 * i + 2] + blk.bsums[4 * i + 3];
                a[1 + i] = (int32_t)((uint32_t)(uint16_t)s0 | ((uint32_t)(uint16_t)s1 << 16));
            }
            for (int i = 0; i < 8; i++)
                a[5 + i] = (int32_t)((uint32_t)(uint16_t)blk.bsums[2 * i] | ((uint32_t)(uint16_t)blk.bsums[2 * i + 1] << 16));
            a[13] = a[14] = a[15] = 0;
        }
    }
}

size_t lfm2_x16f_token_bytes(int64_t k)
{
    return ((size_t)k * sizeof(float) + 63) & ~(size_t)63;
}

void lfm2_x16_pack_f32(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                       int64_t t0, int64_t t1, void *dst)
{
    (void)kt;
    const size_t ts = lfm2_x16f_token_bytes(k);
    for (int64_t t = t0; t < t1; t++)
        memcpy((uint8_t *)dst + (size_t)t * ts, x + t * ldx, (size_t)k * sizeof(float));
}

/* F16 weights: the rows rounded through fp16 (the SIMD paths convert in hardware, same bits) */
static void pack_f16_ref(const struct lfm2_kernels *kt, const float *x, int64_t ldx, int64_t k,
                         int64_t t0, int64_t t1, void *dst)
{
    (void)kt;
    const size_t ts = lfm2_x16f_token_bytes(k);
    for (int64_t t = t0; t < t1; t++) {
        float *p = (float *)((uint8_t *)dst + (size_t)t * ts);
        for (int64_t i = 0; i < k; i++)
            p[i] = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(x[t * ldx + i]));
    }
}

/* ---- portable kernels (the scalar path) ----
 * Per output: acc = Σ_b (float)isum_b·(d_w·d_x) over the blocks in order, or Σ_i w_i·x_i over
 * k in order — the same for any number of tokens. */

static void scalar_run_q(int xt, int64_t k, const void *w, size_t nb1, int64_t r0,
                         int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const int64_t nb = k / 32;
    const size_t gb = nb1 * 16, ts = lfm2_x16q_token_bytes(k);
    const size_t qstride = xt == LFM2_TYPE_Q8_0_X16 ? 512 : 256;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(r / 16) * gb;
        const int lane = (int)(r % 16);
        const uint16_t *d = (const uint16_t *)(g + (size_t)nb * qstride);
        for (int64_t t = 0; t < n; t++) {
            const int8_t *xq = (const int8_t *)((const uint8_t *)packed + (size_t)t * ts);
            const float *dx = (const float *)(xq + k + nb * 4);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int isum = 0;
                if (xt == LFM2_TYPE_Q8_0_X16) {
                    for (int j = 0; j < 8; j++)
                        for (int i = 0; i < 4; i++)
                            isum += (int8_t)g[(size_t)b * 512 + j * 64 + lane * 4 + i] * xq[b * 32 + 4 * j + i];
                } else {
                    for (int m = 0; m < 4; m++)
                        for (int i = 0; i < 4; i++) {
                            const uint8_t q = g[(size_t)b * 256 + m * 64 + lane * 4 + i];
                            isum += ((q & 0xF) - 8) * xq[b * 32 + 4 * m + i] +
                                    ((q >> 4) - 8) * xq[b * 32 + 16 + 4 * m + i];
                        }
                }
                acc += (float)isum * (lfm2_fp16_to_fp32(d[b * 16 + lane]) * dx[b]);
            }
            y[t * ldy + r] = acc;
        }
    }
}

static void scalar_run_f(int xt, int64_t k, const void *w, size_t nb1, int64_t r0,
                         int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const size_t gb = nb1 * 16, ts = lfm2_x16f_token_bytes(k);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(r / 16) * gb;
        const int lane = (int)(r % 16);
        for (int64_t t = 0; t < n; t++) {
            const float *xr = (const float *)((const uint8_t *)packed + (size_t)t * ts);
            float acc = 0.0f;
            for (int64_t i = 0; i < k; i++) {
                float wv;
                if (xt == LFM2_TYPE_F16_X16) {
                    uint16_t h;
                    memcpy(&h, g + (size_t)i * 32 + lane * 2, 2);
                    wv = lfm2_fp16_to_fp32(h);
                } else {
                    memcpy(&wv, g + (size_t)i * 64 + lane * 4, 4);
                }
                acc += wv * xr[i];
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* K-quants: per super-block isum = Σ_sub sc·Σ q·x (Q6_K: q − 32 via the 16-element sums),
 * Q4_K msum = Σ_sub m·Σ x; acc += isum·(d_w·d_x), acc −= msum·(dmin_w·d_x). */
static void scalar_run_k(int xt, int64_t k, const void *w, size_t nb1, int64_t r0,
                         int64_t r1, const void *packed, int64_t n, float *y, int64_t ldy)
{
    const int64_t nb = k / QK_K;
    const size_t gb = nb1 * 16, ts = lfm2_x16k_token_bytes(k);
    const size_t cb = xt == LFM2_TYPE_Q4_K_X16 ? X16_Q4K_SB : xt == LFM2_TYPE_Q5_K_X16 ? X16_Q5K_SB : X16_Q6K_SB;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(r / 16) * gb;
        const int lane = (int)(r % 16);
        for (int64_t t = 0; t < n; t++) {
            const int8_t *xq = (const int8_t *)((const uint8_t *)packed + (size_t)t * ts);
            const int32_t *aux = (const int32_t *)(xq + k);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *sb = g + (size_t)b * cb;
                const int8_t *x = xq + b * QK_K;
                float dx;
                memcpy(&dx, &aux[b * 16], 4);
                int isum = 0, msum = 0;
                if (xt == LFM2_TYPE_Q4_K_X16 || xt == LFM2_TYPE_Q5_K_X16) {
                    for (int sub = 0; sub < 8; sub++) {
                        int dot = 0, xs = 0;
                        for (int e = 32 * sub; e < 32 * sub + 32; e++) {
                            const int q = xt == LFM2_TYPE_Q5_K_X16 ? q5k_value(sb, lane, e) : q4k_value(sb, lane, e);
                            dot += q * x[e];
                            xs += x[e];
                        }
                        isum += sb[2048 + sub * 16 + lane] * dot;
                        msum += sb[2176 + sub * 16 + lane] * xs;
                    }
                    uint16_t dh, mh;
                    memcpy(&dh, sb + 2304 + lane * 2, 2);
                    memcpy(&mh, sb + 2336 + lane * 2, 2);
                    acc += (float)isum * (lfm2_fp16_to_fp32(dh) * dx);
                    acc -= (float)msum * (lfm2_fp16_to_fp32(mh) * dx);
                } else {
                    for (int sub = 0; sub < 16; sub++) {
                        int dot = 0;
                        for (int e = 16 * sub; e < 16 * sub + 16; e++)
                            dot += (q6_value(sb, lane, e) - 32) * x[e];
                        isum += (int8_t)sb[3072 + sub * 16 + lane] * dot;
                    }
                    uint16_t dh;
                    memcpy(&dh, sb + 3328 + lane * 2, 2);
                    acc += (float)isum * (lfm2_fp16_to_fp32(dh) * dx);
                }
            }
            y[t * ldy + r] = acc;
        }
    }
}

LFM2_GEMM_ENTRY(run_q8, scalar_run_q, LFM2_TYPE_Q8_0_X16)
LFM2_GEMM_ENTRY(run_q4, scalar_run_q, LFM2_TYPE_Q4_0_X16)
LFM2_GEMM_ENTRY(run_f16, scalar_run_f, LFM2_TYPE_F16_X16)
LFM2_GEMM_ENTRY(run_f32, scalar_run_f, LFM2_TYPE_F32_X16)
LFM2_GEMM_ENTRY(run_q4k, scalar_run_k, LFM2_TYPE_Q4_K_X16)
LFM2_GEMM_ENTRY(run_q6k, scalar_run_k, LFM2_TYPE_Q6_K_X16)
LFM2_GEMM_ENTRY(run_q5k, scalar_run_k, LFM2_TYPE_Q5_K_X16)

const struct lfm2_gemm *const lfm2_gemm_scalar[LFM2_KTYPE_COUNT] = {
    LFM2_X16_GEMMS(pack_f16_ref),
};
