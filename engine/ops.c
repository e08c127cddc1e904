/* ops.c — norms, RoPE, activations, softmax and attention.
 *
 * Rounding follows ggml's CPU ops where it matters for parity: sums of squares in double,
 * x·(1/√(mean+eps)) before the weight, RoPE angles by repeated float multiplication, the
 * fp16-table GELU. Attention is an online softmax over key blocks (never an n_q × n_kv matrix),
 * threaded over (head, query block) with a shared work counter because causal rows differ
 * in cost.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "lfm2-ops.h"
#include "quants.h"

/* ---- norms ---- */

void lfm2_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    const double sum = lfm2_kernels_get()->sumsq(x, n);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; i++)
            y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * scale;
    }
}

/* Sums in double as ggml does; eight partial sums (then a fixed tree) instead of one chain, and
 * Σ fl(v·v) by the path's vectorized sumsq: the vision encoder normalizes 25 × 1024 rows of 768
 * per tile. The order of double additions changes nothing visible in float. */
void lfm2_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n,
                    float eps)
{
    double part[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            part[l] += (double)x[i + l];
    for (; i < n; i++)
        part[0] += (double)x[i];
    const double sum = ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]));
    const float mean = (float)(sum / (double)n);
    for (i = 0; i < n; i++)
        y[i] = x[i] - mean;
    const float var = (float)(lfm2_kernels_get()->sumsq(y, n) / (double)n);
    const float scale = 1.0f / sqrtf(var + eps);
    if (w && b) {
        for (i = 0; i < n; i++)
            y[i] = y[i] * scale * w[i] + b[i];
    } else {
        for (i = 0; i < n; i++) {
            float v = y[i] * scale;
            if (w) v *= w[i];
            if (b) v += b[i];
            y[i] = v;
        }
    }
}

/* ---- RoPE ---- */

void lfm2_rope_neox(float *x, int n_head, int head_dim, int n_rot, int32_t pos, float freq_base)
{
    enum { MAX_PAIRS = 512 };
    float cs[MAX_PAIRS], sn[MAX_PAIRS];
    const int half = n_rot / 2;
    /* ggml: theta_i = pos · base^(-2i/n_rot), computed as a running float product */
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        if (i < MAX_PAIRS) {
            cs[i] = cosf(theta);
            sn[i] = sinf(theta);
        }
        theta *= theta_scale;
    }
    for (int h = 0; h < n_head; h++) {
        float *v = x + (int64_t)h * head_dim;
        float th = (float)pos;
        for (int i = 0; i < half; i++) {
            float c, s;
            if (i < MAX_PAIRS) {
                c = cs[i];
                s = sn[i];
            } else {   /* n_rot > 1024: recompute (never for real models) */
                th = (float)pos * powf(theta_scale, (float)i);
                c = cosf(th);
                s = sinf(th);
            }
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
        }
    }
}

/* ---- activations ---- */

void lfm2_silu(float *x, int64_t n)
{
    lfm2_kernels_get()->silu_mul(x, x, NULL, n);
}

void lfm2_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    lfm2_kernels_get()->silu_mul(out, gate, up, n);
}

#define GELU_COEF_A 0.044715f
#define SQRT_2_OVER_PI 0.79788456080286535587989211986876f
#define SQRT_2_INV 0.70710678118654752440084436210484f

static inline float gelu_tanh1(float x)
{
    return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x * x)));
}

/* 0.5·x·(1 + tanh u) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³): one exponential,
 * taken by the active path's vectorized exp over chunks (tanhf per element was ~0.3 s of a
 * 512×512 tile in the vision encoder). No cancellation near 0 or in the negative tail; e^(−2u)
 * saturates near 2^127 for very negative x (the result is then ~0, as it should be). Within a
 * few float ulps of gelu_tanh1. */
void lfm2_gelu_tanh(float *x, int64_t n)
{
    enum { CHUNK = 256 };
    float t[CHUNK];
    const struct lfm2_kernels *kt = lfm2_kernels_get();
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        const int m = n - i0 < CHUNK ? (int)(n - i0) : CHUNK;
        float *xc = x + i0;
        for (int i = 0; i < m; i++)
            t[i] = -2.0f * SQRT_2_OVER_PI * xc[i] * (1.0f + GELU_COEF_A * xc[i] * xc[i]);
        kt->exp_sub_sum(t, t, 0.0f, m);
        for (int i = 0; i < m; i++)
            xc[i] = xc[i] / (1.0f + t[i]);
    }
}

/* ggml's table: fp16 result for every fp16 input, computed with tanhf as ggml does. One spare
 * entry so the SIMD kernels' 32-bit gathers may read table[i] and table[i + 1] for i = 65535. */
static uint16_t g_gelu_table[(1 << 16) + 2];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++)
        g_gelu_table[i] = lfm2_fp32_to_fp16(gelu_tanh1(lfm2_fp16_to_fp32((lfm2_fp16)i)));
}

void lfm2_gelu_tanh_ggml(float *x, int64_t n)
{
    pthread_once(&g_gelu_once, gelu_table_init);
    lfm2_kernels_get()->gelu_lut(g_gelu_table, x, n);
}

void lfm2_gelu_erf(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SQRT_2_INV));
}

void lfm2_softmax(float *x, int64_t n)
{
    if (n <= 0)
        return;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = fmaxf(mx, x[i]);
    const double sum = lfm2_kernels_get()->exp_sub_sum(x, x, mx, n);
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void lfm2_vec_add(float *y, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void lfm2_vec_mul(float *y, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void lfm2_vec_scale(float *y, float s, int64_t n)
{
    lfm2_kernels_get()->scale_f32(y, s, n);
}

/* ---- attention ---- */

/* ---- bidirectional attention (encoders): the path's biatt_* register tiles ----
 * Vision and audio encoders attend over ~1000 keys with no mask, and nothing needs their
 * results to match a token-by-token run, so they get a GEMM-shaped path: per call, K of each
 * kv head is transposed once into key blocks of 64 ([block][d][64 keys], contiguous so a
 * block sits in L1 without set conflicts) and V is copied with rows padded to 16 floats; then
 * each work item (head, 16 queries) runs two passes over the full key range:
 *   S = scale · Q·Kᵀ      4 queries × 64 keys per register tile (AVX-512; 16 on AVX2)
 *   P = e^(S − max_row)   exact row maxima (no online rescaling), sums in double
 *   O = P·V / Σ P         4 queries × 64 dims per register tile (16 on AVX2)
 * The score rows of one item (16 × n_kv floats) are the only O(n_kv) buffer; nothing is
 * n_q × n_kv. Causal and windowed calls (the text backbone), and paths without the tiles
 * (scalar), use the kernels' attn_block, whose results do not depend on the batch. */

#define BIATT_QB 16        /* queries per work item */
#define BIATT_KB LFM2_BIATT_KB   /* keys per block */
#define BIATT_MAX_KV 16384 /* score rows stay ≤ 1 MiB per thread */

struct biatt_job {
    const struct lfm2_attn_args *a;
    const struct lfm2_kernels *kt;
    int hdp, nkb, n_kvp;      /* head_dim padded to 16, key blocks, keys padded to 64 */
    float *kt_pack;           /* [n_head_kv][nkb][hd][64] */
    float *v_pack;            /* [n_head_kv][n_kvp][hdp] */
    float *work;              /* per thread: S [QB][n_kvp], O [QB][hdp] */
    size_t work_floats;
    int n_qblk, n_items;
    _Atomic int next;
};

/* Pass 0: transposed K blocks and padded V rows, split by (kv head, key block). */
static void biatt_pack_task(void *arg, int ith, int nth)
{
    struct biatt_job *job = arg;
    const struct lfm2_attn_args *a = job->a;
    const int hd = a->head_dim, hdp = job->hdp, n_items = a->n_head_kv * job->nkb;
    for (int it = ith; it < n_items; it += nth) {
        const int g = it / job->nkb, b = it % job->nkb;
        float *kt = job->kt_pack + ((size_t)g * job->nkb + b) * (size_t)hd * BIATT_KB;
        float *vp = job->v_pack + ((size_t)g * job->n_kvp + (size_t)b * BIATT_KB) * hdp;
        for (int jj = 0; jj < BIATT_KB; jj++) {
            const int j = b * BIATT_KB + jj;
            float *vr = vp + (size_t)jj * hdp;
            if (j < a->n_kv) {
                const float *kr = a->k + (int64_t)j * a->ldk + (int64_t)g * hd;
                for (int d = 0; d < hd; d++)
                    kt[(size_t)d * BIATT_KB + jj] = kr[d];
                memcpy(vr, a->v + (int64_t)j * a->ldv + (int64_t)g * hd, (size_t)hd * sizeof(float));
                memset(vr + hd, 0, (size_t)(hdp - hd) * sizeof(float));
            } else {   /* padding keys: zero scores (masked below) and zero values */
                for (int d = 0; d < hd; d++)
                    kt[(size_t)d * BIATT_KB + jj] = 0.0f;
                memset(vr, 0, (size_t)hdp * sizeof(float));
            }
        }
    }
}

static void biatt_task(void *arg, int ith, int nth)
{
    (void)nth;
    struct biatt_job *job = arg;
    const struct lfm2_attn_args *a = job->a;
    const int hd = a->head_dim, hdp = job->hdp, grp = a->n_head / a->n_head_kv;
    float *S = job->work + (size_t)ith * job->work_floats;
    float *O = S + (size_t)BIATT_QB * job->n_kvp;
    double l[BIATT_QB];
    for (;;) {
        const int it = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (it >= job->n_items)
            break;
        /* head-major: consecutive items reuse the same packed K/V from L2 */
        const int h = it / job->n_qblk, g = h / grp;
        const int i0 = (it % job->n_qblk) * BIATT_QB;
        const int nq = a->n_q - i0 < BIATT_QB ? a->n_q - i0 : BIATT_QB;
        const int nq4 = (nq + 3) & ~3;   /* rows past nq repeat the last query, then are dropped */
        for (int r0 = 0; r0 < nq4; r0 += 4) {
            const float *q[4];
            float *srow[4];
            for (int r = 0; r < 4; r++) {
                const int i = i0 + (r0 + r < nq ? r0 + r : nq - 1);
                q[r] = a->q + (int64_t)i * a->ldq + (int64_t)h * hd;
                srow[r] = S + (size_t)(r0 + r) * job->n_kvp;
            }
            job->kt->biatt_scores(job->kt_pack + (size_t)g * job->nkb * hd * BIATT_KB, job->nkb, hd,
                                  a->scale, q, srow);
        }
        for (int r = 0; r < nq4; r++) {
            float *s = S + (size_t)r * job->n_kvp;
            for (int j = a->n_kv; j < job->n_kvp; j++)
                s[j] = -INFINITY;
            const float mx = job->kt->biatt_row_max(s, job->n_kvp);
            l[r] = job->kt->exp_sub_sum(s, s, mx, job->n_kvp);   /* e^−inf = 0 for the padding */
        }
        memset(O, 0, (size_t)nq4 * hdp * sizeof(float));
        for (int r0 = 0; r0 < nq4; r0 += 4) {
            float *prow[4], *orow[4];
            for (int r = 0; r < 4; r++) {
                prow[r] = S + (size_t)(r0 + r) * job->n_kvp;
                orow[r] = O + (size_t)(r0 + r) * hdp;
            }
            job->kt->biatt_pv(job->v_pack + (size_t)g * job->n_kvp * hdp, job->nkb, hdp, prow, orow);
        }
        for (int r = 0; r < nq; r++) {
            float *out = a->out + (int64_t)(i0 + r) * a->ldo + (int64_t)h * hd;
            const float inv = (float)(1.0 / l[r]);
            for (int d = 0; d < hd; d++)
                out[d] = O[(size_t)r * hdp + d] * inv;
        }
    }
}

/* Returns false (nothing done) when the fast path does not apply. */
static bool attention_bidir(lfm2_pool *pool, const struct lfm2_attn_args *a,
                            const struct lfm2_kernels *kt)
{
    if (a->causal || a->window > 0 || a->n_kv <= 0 || a->n_kv > BIATT_MAX_KV || a->n_q < 4)
        return false;
    if (!kt->biatt_scores)
        return false;   /* the path has no register tiles (scalar): attn_block */
    struct biatt_job job;
    job.a = a;
    job.kt = kt;
    job.hdp = (a->head_dim + 15) & ~15;
    job.nkb = (a->n_kv + BIATT_KB - 1) / BIATT_KB;
    job.n_kvp = job.nkb * BIATT_KB;
    const int nth = lfm2_pool_n_threads(pool);
    const size_t kt_floats = (size_t)a->n_head_kv * job.n_kvp * a->head_dim;
    const size_t vp_floats = (size_t)a->n_head_kv * job.n_kvp * job.hdp;
    job.work_floats = ((size_t)BIATT_QB * (job.n_kvp + job.hdp) + 15) & ~(size_t)15;
    float *mem = lfm2_pool_scratch(pool, sizeof(float) * (((kt_floats + 15) & ~(size_t)15) +
                                                          ((vp_floats + 15) & ~(size_t)15) +
                                                          job.work_floats * (size_t)nth));
    if (!mem)
        return false;   /* the kernels' path needs far less memory */
    job.kt_pack = mem;
    job.v_pack = job.kt_pack + ((kt_floats + 15) & ~(size_t)15);
    job.work = job.v_pack + ((vp_floats + 15) & ~(size_t)15);
    job.n_qblk = (a->n_q + BIATT_QB - 1) / BIATT_QB;
    job.n_items = job.n_qblk * a->n_head;
    atomic_init(&job.next, 0);
    lfm2_pool_run(pool, biatt_pack_task, &job);
    lfm2_pool_run(pool, biatt_task, &job);
    return true;
}

#define ATT_QBLOCK 16     /* query rows per work item (the kernels' ATT_QB) */
#define ATT_MAX_HD 512

struct att_job {
    const struct lfm2_attn_args *a;
    const struct lfm2_kernels *kt;
    float *scratch;               /* per thread: scratch_floats each */
    size_t scratch_floats;
    int n_qblk;
    int n_items;
    _Atomic int next;
};

static void att_task(void *arg, int ith, int nth)
{
    (void)nth;
    struct att_job *job = arg;
    float *scratch = job->scratch + (size_t)ith * job->scratch_floats;
    for (;;) {
        const int it = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (it >= job->n_items)
            break;
        const int g = it % job->a->n_head_kv;
        /* last query blocks first: under a causal mask they see the most keys */
        const int qb = job->n_qblk - 1 - it / job->a->n_head_kv;
        const int i0 = qb * ATT_QBLOCK;
        const int i1 = i0 + ATT_QBLOCK < job->a->n_q ? i0 + ATT_QBLOCK : job->a->n_q;
        job->kt->attn_block(job->a, g, i0, i1, scratch);
    }
}

void lfm2_attention(lfm2_pool *pool, const struct lfm2_attn_args *a)
{
    if (a->n_q <= 0)
        return;
    if (a->head_dim <= 0 || a->head_dim > ATT_MAX_HD || a->n_head_kv <= 0 ||
        a->n_head % a->n_head_kv != 0) {
        lfm2_set_error("attention: unsupported shape (n_head %d, n_head_kv %d, head_dim %d; "
                       "head_dim must be 1..%d and n_head a multiple of n_head_kv)",
                       a->n_head, a->n_head_kv, a->head_dim, ATT_MAX_HD);
        for (int i = 0; i < a->n_q; i++)
            for (int c = 0; c < a->n_head * a->head_dim; c++)
                a->out[(int64_t)i * a->ldo + c] = NAN;
        return;
    }
    const struct lfm2_kernels *kt = lfm2_kernels_get();
    if (LFM2_UNLIKELY(lfm2_prof_on < 0))
        lfm2_prof_init();
    const bool prof = lfm2_prof_on > 0;
    const double t0 = prof ? lfm2_time_ms() : 0.0;
    if (attention_bidir(pool, a, kt)) {
        if (prof)
            lfm2_prof_add(LFM2_PROF_ATTENTION, lfm2_time_ms() - t0, 0);
        return;
    }
    struct att_job job;
    job.a = a;
    job.kt = kt;
    job.n_qblk = (a->n_q + ATT_QBLOCK - 1) / ATT_QBLOCK;
    job.n_items = job.n_qblk * a->n_head_kv;
    job.scratch_floats = (job.kt->attn_scratch(a->head_dim, a->n_head / a->n_head_kv) + 15) & ~(size_t)15;
    job.scratch = lfm2_pool_scratch(pool, job.scratch_floats * sizeof(float) *
                                              (size_t)lfm2_pool_n_threads(pool));
    if (!job.scratch) {
        for (int i = 0; i < a->n_q; i++)
            for (int c = 0; c < a->n_head * a->head_dim; c++)
                a->out[(int64_t)i * a->ldo + c] = NAN;
        return;
    }
    atomic_init(&job.next, 0);
    lfm2_pool_run(pool, att_task, &job);
    if (prof)
        lfm2_prof_add(LFM2_PROF_ATTENTION, lfm2_time_ms() - t0, 0);
}
