/* matmul.c — quantized matrix products on the thread pool.
 *
 * y[t][o] = Σ_i w[o][i]·x[t][i]. The activations are first rounded to the format ggml pairs
 * with the weight type (the type table, quants.h), or packed for the type's gemm, once per
 * call even when several weights share the input (lfm2_matmul_multi); then the output rows,
 * weighted by their bytes, are cut into CHUNKS_PER_THREAD chunks per thread (whole blocks of
 * ROW_BLOCK rows) that the threads take from a shared counter, each running the path's kernel
 * for the type (kernels/kernels.h says which) over the chunk's rows and every token.
 * Taking chunks rather than fixed slices: a thread the scheduler preempts (a video source
 * painting at a higher priority, another process) then does less of the product instead of
 * holding every other thread at the end of it. A row block is computed by the same kernel
 * call whichever thread takes it, so the results do not depend on the split.
 * Weights are read in place from the mapping or from their prepared copy.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "lfm2-ops.h"
#include "quants.h"

#define MAX_MULTI 16
#define ROW_BLOCK 16   /* rows per work unit: a multiple of every tile kernel's row step */
#define TOK_TILE 64    /* tokens per tile call: their activations stay in L2 */
#define CHUNKS_PER_THREAD 4   /* few enough that each chunk still streams a long run of rows */

struct mm_job {
    const struct lfm2_kernels *kt;
    lfm2_pool *pool;
    int n_w;
    const lfm2_tensor *w[MAX_MULTI];
    const float *bias[MAX_MULTI];
    float *y[MAX_MULTI];
    int64_t ldy[MAX_MULTI];
    int fmt_of[MAX_MULTI];             /* activation format of weight j (enum lfm2_act) */
    const struct lfm2_gemm *gemm[MAX_MULTI];   /* batched kernel of weight j, or NULL */
    int pack_of[MAX_MULTI];            /* index into packs[] */
    int64_t cost0[MAX_MULTI + 1];      /* cumulative cost (row-block bytes) before weight j */
    int64_t n_chunks;                  /* equal-cost chunks of [0, cost0[n_w]) */
    _Atomic int64_t next_chunk;        /* the next chunk a thread takes */

    const float *x;
    int64_t ldx, n, k;

    /* activation buffers by format (F32 uses x in place) */
    bool need[LFM2_ACT_COUNT];
    uint8_t *buf[LFM2_ACT_COUNT];
    size_t stride[LFM2_ACT_COUNT];
    bool quant_in_task;

    /* packed activations for the gemm kernels, one per distinct pack function */
    int n_packs;
    const struct lfm2_gemm *packs[MAX_MULTI];
    uint8_t *packed[MAX_MULTI];
};

static void quantize_rows(const struct mm_job *job, int64_t t0, int64_t t1)
{
    for (int f = LFM2_ACT_F16; f < LFM2_ACT_COUNT; f++) {
        if (!job->need[f])
            continue;
        for (int64_t t = t0; t < t1; t++)
            job->kt->act[f](job->x + t * job->ldx, job->buf[f] + (size_t)t * job->stride[f], job->k);
    }
}

/* The row blocks whose start cost lies in [c0, c1), over every weight and token. */
static void run_rows(const struct mm_job *job, int64_t c0, int64_t c1)
{
    for (int j = 0; j < job->n_w; j++) {
        const lfm2_tensor *w = job->w[j];
        const int64_t nrows = w->ne[1];
        const int64_t rb = ROW_BLOCK;
        const int64_t nblk = (nrows + rb - 1) / rb;
        const int64_t bc = (job->cost0[j + 1] - job->cost0[j]) / nblk;   /* cost per block */
        /* blocks whose start cost lies in [c0, c1) */
        int64_t b0 = c0 <= job->cost0[j] ? 0 : (c0 - job->cost0[j] + bc - 1) / bc;
        int64_t b1 = c1 <= job->cost0[j] ? 0 : (c1 - job->cost0[j] + bc - 1) / bc;
        if (b1 > nblk) b1 = nblk;
        if (b0 >= b1)
            continue;
        const int64_t r0 = b0 * rb, r1 = b1 * rb < nrows ? b1 * rb : nrows;
        float *y = job->y[j];
        const int64_t ldy = job->ldy[j];

        if (job->gemm[j]) {
            job->gemm[j]->run(job->k, w->data, w->nb1, r0, r1, job->packed[job->pack_of[j]],
                              job->n, y, ldy);
            goto bias;
        }

        const int f = job->fmt_of[j];
        const uint8_t *act = f == LFM2_ACT_F32 ? (const uint8_t *)job->x : job->buf[f];
        const size_t xs = f == LFM2_ACT_F32 ? (size_t)job->ldx * sizeof(float) : job->stride[f];
        const lfm2_tile_fn tile = job->kt->tile[w->type];

        /* One call per token tile over the chunk's whole row range, so a kernel can stream
         * (and prefetch) the rows in order. */
        for (int64_t t0 = 0; t0 < job->n; t0 += TOK_TILE) {
            const int64_t nt = job->n - t0 < TOK_TILE ? job->n - t0 : TOK_TILE;
            tile(job->k, (const uint8_t *)w->data + (size_t)r0 * w->nb1, w->nb1, r1 - r0,
                 act + (size_t)t0 * xs, xs, nt, y + t0 * ldy + r0, ldy);
        }
    bias:
        if (job->bias[j]) {
            const float *b = job->bias[j];
            for (int64_t t = 0; t < job->n; t++)
                for (int64_t r = r0; r < r1; r++)
                    y[t * ldy + r] += b[r];
        }
    }
}

static void mm_task(void *arg, int ith, int nth)
{
    struct mm_job *job = arg;
    if (job->quant_in_task) {
        const int64_t per = (job->n + nth - 1) / nth;
        const int64_t t0 = ith * per, t1 = t0 + per < job->n ? t0 + per : job->n;
        if (t0 < t1)
            quantize_rows(job, t0, t1);
        /* packs: split by groups of 16 tokens */
        const int64_t ng = (job->n + 15) / 16;
        const int64_t g0 = ng * ith / nth, g1 = ng * (ith + 1) / nth;
        for (int p = 0; p < job->n_packs && g0 < g1; p++)
            job->packs[p]->pack(job->kt, job->x, job->ldx, job->k, g0 * 16,
                                g1 * 16 < job->n ? g1 * 16 : job->n, job->packed[p]);
        lfm2_pool_barrier(job->pool);
    }

    const int64_t total = job->cost0[job->n_w];
    for (;;) {
        const int64_t i = atomic_fetch_add_explicit(&job->next_chunk, 1, memory_order_relaxed);
        if (i >= job->n_chunks)
            break;
        run_rows(job, total * i / job->n_chunks, total * (i + 1) / job->n_chunks);
    }
}

static bool check_weight(const struct lfm2_kernels *kt, const lfm2_tensor *w, int64_t k)
{
    const bool x16 = lfm2_type_is_x16(w->type);
    const struct lfm2_type_traits *tt = lfm2_type_traits(x16 ? (uint32_t)lfm2_x16_source(w->type) : w->type);
    const bool product = x16 ? kt->gemm[w->type] != NULL
                             : tt->weight && tt->act >= 0 && (kt->gemm[w->type] || kt->tile[w->type]);
    if (!product) {
        lfm2_set_error("matmul: tensor '%s' has type %s, which has no matrix product",
                       w->name ? w->name : "?", lfm2_type_name(w->type));
        return false;
    }
    if (w->ne[0] != k || k % tt->blck != 0 || w->ne[1] <= 0) {
        lfm2_set_error("matmul: %stensor '%s' {%lld, %lld} does not fit an input of %lld columns",
                       x16 ? "prepared " : "", w->name ? w->name : "?", (long long)w->ne[0],
                       (long long)w->ne[1], (long long)k);
        return false;
    }
    return true;
}

/* Bad arguments are programming errors caught at model load; answer with NaN (and an error
 * message) rather than reading out of bounds. */
static void fill_nan(float *y, int64_t ldy, int64_t rows, int64_t n)
{
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++)
            y[t * ldy + r] = NAN;
}

static void matmul_run_(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                        const float *const *bias, const float *x, int64_t ldx, float *const *y,
                        const int64_t *ldy, int64_t n);

static void matmul_run(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                       const float *const *bias, const float *x, int64_t ldx, float *const *y,
                       const int64_t *ldy, int64_t n)
{
    if (LFM2_UNLIKELY(lfm2_prof_on)) {
        if (lfm2_prof_on < 0)
            lfm2_prof_init();
        if (lfm2_prof_on) {
            const double t0 = lfm2_time_ms();
            matmul_run_(pool, n_w, w, bias, x, ldx, y, ldy, n);
            const double ms = lfm2_time_ms() - t0;
            double macs = 0, bytes = 0;
            long long rows = 0;
            for (int j = 0; j < n_w; j++) {
                macs += (double)w[j]->ne[0] * (double)w[j]->ne[1] * (double)n;
                bytes += (double)w[j]->nb1 * (double)w[j]->ne[1];
                rows += w[j]->ne[1];
            }
            lfm2_prof_add(n == 1 ? LFM2_PROF_MATMUL_1 : LFM2_PROF_MATMUL_N, ms, macs);
            lfm2_prof_shape((int)w[0]->type, n_w, (long long)w[0]->ne[0], rows,
                            n == 1 ? 1 : n < 64 ? 2 : 64, bytes, ms);
            return;
        }
    }
    matmul_run_(pool, n_w, w, bias, x, ldx, y, ldy, n);
}

static void matmul_run_(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                        const float *const *bias, const float *x, int64_t ldx, float *const *y,
                        const int64_t *ldy, int64_t n)
{
    if (n <= 0 || n_w <= 0)
        return;
    const int64_t k = w[0]->ne[0];
    struct mm_job job;
    memset(&job, 0, sizeof job);
    job.kt = lfm2_kernels_get();
    job.pool = pool;
    job.x = x;
    job.ldx = ldx;
    job.n = n;
    job.k = k;
    int64_t n_blocks = 0;

    for (int j = 0; j < n_w; j++) {
        if (!check_weight(job.kt, w[j], k)) {
            for (int i = 0; i < n_w; i++)
                fill_nan(y[i], ldy[i], w[i]->ne[1], n);
            return;
        }
        job.w[j] = w[j];
        job.bias[j] = bias ? bias[j] : NULL;
        job.y[j] = y[j];
        job.ldy[j] = ldy[j];
        job.fmt_of[j] = lfm2_type_traits(w[j]->type)->act;   /* x16 layouts: -1, they pack */
        const struct lfm2_gemm *gm = job.kt->gemm[w[j]->type];
        if (gm) {
            job.gemm[j] = gm;
            int p = 0;
            while (p < job.n_packs && job.packs[p]->pack != gm->pack)
                p++;
            if (p == job.n_packs)
                job.packs[job.n_packs++] = gm;
            job.pack_of[j] = p;
        } else {
            job.need[job.fmt_of[j]] = true;
        }
        const int64_t nblk = (w[j]->ne[1] + ROW_BLOCK - 1) / ROW_BLOCK;
        job.cost0[j + 1] = job.cost0[j] + nblk * (int64_t)w[j]->nb1 * ROW_BLOCK;
        n_blocks += nblk;
    }
    job.n_w = n_w;

    size_t total = 0;
    for (int f = LFM2_ACT_F16; f < LFM2_ACT_COUNT; f++) {
        if (!job.need[f])
            continue;
        job.stride[f] = (lfm2_act_row_bytes(f, k) + 63) & ~(size_t)63;
        total += job.stride[f] * (size_t)n;
    }
    size_t packed_bytes[MAX_MULTI];
    for (int p = 0; p < job.n_packs; p++) {
        packed_bytes[p] = (job.packs[p]->token_bytes(k) * (size_t)n + 63) & ~(size_t)63;
        total += packed_bytes[p];
    }
    if (total) {
        uint8_t *scratch = lfm2_pool_scratch(pool, total);
        if (!scratch) {
            for (int i = 0; i < n_w; i++)
                fill_nan(y[i], ldy[i], w[i]->ne[1], n);
            return;
        }
        for (int f = LFM2_ACT_F16; f < LFM2_ACT_COUNT; f++) {
            if (!job.need[f])
                continue;
            job.buf[f] = scratch;
            scratch += job.stride[f] * (size_t)n;
        }
        for (int p = 0; p < job.n_packs; p++) {
            job.packed[p] = scratch;
            scratch += packed_bytes[p];
        }
    }
    /* One row is quantized faster than a barrier; more rows are split across the threads. */
    job.quant_in_task = n > 1 && lfm2_pool_n_threads(pool) > 1;
    if (!job.quant_in_task) {
        quantize_rows(&job, 0, n);
        for (int p = 0; p < job.n_packs; p++)
            job.packs[p]->pack(job.kt, x, ldx, k, 0, n, job.packed[p]);
    }
    const int64_t nth = lfm2_pool_n_threads(pool);
    job.n_chunks = nth > 1 ? nth * CHUNKS_PER_THREAD : 1;
    if (job.n_chunks > n_blocks)
        job.n_chunks = n_blocks;
    atomic_init(&job.next_chunk, 0);
    lfm2_pool_run(pool, mm_task, &job);
}

void lfm2_matmul(lfm2_pool *pool, const lfm2_tensor *w, const float *x, int64_t ldx, float *y,
                 int64_t ldy, int64_t n)
{
    matmul_run(pool, 1, &w, NULL, x, ldx, &y, &ldy, n);
}

void lfm2_matmul_bias(lfm2_pool *pool, const lfm2_tensor *w, const float *b, const float *x,
                      int64_t ldx, float *y, int64_t ldy, int64_t n)
{
    matmul_run(pool, 1, &w, &b, x, ldx, &y, &ldy, n);
}

void lfm2_matmul_multi(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w, const float *x,
                       int64_t ldx, float *const *y, const int64_t *ldy, int64_t n)
{
    lfm2_matmul_multi_bias(pool, n_w, w, NULL, x, ldx, y, ldy, n);
}

void lfm2_matmul_multi_bias(lfm2_pool *pool, int n_w, const lfm2_tensor *const *w,
                            const float *const *b, const float *x, int64_t ldx, float *const *y,
                            const int64_t *ldy, int64_t n)
{
    for (int j0 = 0; j0 < n_w; j0 += MAX_MULTI) {
        const int m = n_w - j0 < MAX_MULTI ? n_w - j0 : MAX_MULTI;
        matmul_run(pool, m, w + j0, b ? b + j0 : NULL, x, ldx, y + j0, ldy + j0, n);
    }
}

/* ---- views and dequantization ---- */

lfm2_tensor lfm2_tensor_slab(const lfm2_tensor *t, int64_t i2)
{
    lfm2_tensor s = *t;
    const size_t slab = (size_t)t->ne[1] * t->nb1;
    if (i2 < 0 || i2 >= t->ne[2]) {
        lfm2_set_error("tensor '%s': slab %lld out of range (ne[2] = %lld)",
                       t->name ? t->name : "?", (long long)i2, (long long)t->ne[2]);
        s.data = NULL;
        s.nbytes = 0;
        s.ne[1] = 0;
        return s;
    }
    s.data = (const uint8_t *)t->data + (size_t)i2 * slab;
    s.n_dims = 2;
    s.ne[2] = 1;
    s.ne[3] = 1;
    s.nbytes = slab;
    return s;
}

/* Row r (counting over all slabs) of any tensor, original or prepared. */
static void tensor_row(const lfm2_tensor *w, int64_t r, float *out)
{
    if (lfm2_type_is_x16(w->type))
        lfm2_x16_row_f32(w, r, out);
    else
        lfm2_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->nb1, out, w->ne[0]);
}

void lfm2_get_rows(const lfm2_tensor *w, const int32_t *ids, int64_t n, float *out)
{
    const int64_t ne0 = w->ne[0];
    const int64_t nrows = w->ne[1] * w->ne[2] * w->ne[3];
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= nrows) {
            lfm2_set_error("tensor '%s': row %d out of range (%lld rows)",
                           w->name ? w->name : "?", ids[i], (long long)nrows);
            memset(out + i * ne0, 0, (size_t)ne0 * sizeof(float));
            continue;
        }
        tensor_row(w, ids[i], out + i * ne0);
    }
}

void lfm2_tensor_to_f32(const lfm2_tensor *w, float *out)
{
    const int64_t ne0 = w->ne[0];
    const int64_t nrows = w->ne[1] * w->ne[2] * w->ne[3];
    for (int64_t r = 0; r < nrows; r++)
        tensor_row(w, r, out + r * ne0);
}
