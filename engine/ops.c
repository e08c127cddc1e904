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

void lfm2_layernorm(float *y, const float *x, const float *w, const float *b, int64_t n,
                    float eps)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)x[i];
    const float mean = (float)(sum / (double)n);
    double sum2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i] - mean;
        y[i] = v;
        sum2 += (double)(v * v);
    }
    const float var = (float)(sum2 / (double)n);
    const float scale = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = y[i] * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
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

void lfm2_gelu_tanh(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = gelu_tanh1(x[i]);
}

static uint16_t g_gelu_table[1 << 16];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++)
        g_gelu_table[i] = lfm2_fp32_to_fp16(gelu_tanh1(lfm2_fp16_to_fp32((lfm2_fp16)i)));
}

void lfm2_gelu_tanh_ggml(float *x, int64_t n)
{
    pthread_once(&g_gelu_once, gelu_table_init);
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v <= -10.0f)
            x[i] = 0.0f;
        else if (v >= 10.0f)
            x[i] = v;
        else
            x[i] = lfm2_fp16_to_fp32(g_gelu_table[lfm2_fp32_to_fp16(v)]);
    }
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
    struct att_job job;
    job.a = a;
    job.kt = lfm2_kernels_get();
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
    if (LFM2_UNLIKELY(lfm2_prof_on)) {
        if (lfm2_prof_on < 0)
            lfm2_prof_init();
        if (lfm2_prof_on) {
            const double t0 = lfm2_time_ms();
            lfm2_pool_run(pool, att_task, &job);
            lfm2_prof_add(LFM2_PROF_ATTENTION, lfm2_time_ms() - t0, 0);
            return;
        }
    }
    lfm2_pool_run(pool, att_task, &job);
}
