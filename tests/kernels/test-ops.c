/* test-ops.c — the thread pool, attention, norms, RoPE and activations on one dispatch path
 * (argv[1]), each against an independent double-precision computation. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "test-common.h"

#include "kernels/kernels.h"
#include "lfm2-ops.h"
#include "quants.h"

/* ---- pool ---- */

struct pool_job {
    lfm2_pool *pool;
    _Atomic int calls[8];
    int phase1[8];
    int sums[8];
    int nth_seen;
};

static void pool_task(void *arg, int ith, int nth)
{
    struct pool_job *j = arg;
    atomic_fetch_add(&j->calls[ith], 1);
    j->nth_seen = nth;
    j->phase1[ith] = (ith + 1) * 10;
    lfm2_pool_barrier(j->pool);
    /* after the barrier every thread sees every phase-1 write */
    int s = 0;
    for (int i = 0; i < nth; i++) s += j->phase1[i];
    j->sums[ith] = s;
    lfm2_pool_barrier(j->pool);
    j->phase1[ith] = 0;   /* reset for the next run; safe only because of the second barrier */
}

static void test_pool(void)
{
    for (int n = 1; n <= 4; n++) {
        lfm2_pool *pool = lfm2_pool_new(n);
        CHECK(pool != NULL, "pool_new(%d): %s", n, lfm2_last_error());
        CHECK(lfm2_pool_n_threads(pool) == n, "pool_n_threads");
        struct pool_job job;
        memset(&job, 0, sizeof job);
        job.pool = pool;
        const int runs = 3000;
        int expect = 0;
        for (int i = 0; i < n; i++) expect += (i + 1) * 10;
        for (int r = 0; r < runs; r++) {
            lfm2_pool_run(pool, pool_task, &job);
            for (int i = 0; i < n; i++)
                if (job.sums[i] != expect) {
                    CHECK(0, "pool %d threads run %d: thread %d saw sum %d, want %d", n, r, i,
                          job.sums[i], expect);
                    r = runs;
                    break;
                }
            if (r == 1000 || r == 2000) {
                /* let the workers fall asleep, then wake them with the next job */
                struct timespec ts = { 0, 5 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
        }
        for (int i = 0; i < n; i++)
            CHECK(atomic_load(&job.calls[i]) == runs, "pool %d threads: thread %d ran %d times, want %d",
                  n, i, atomic_load(&job.calls[i]), runs);
        CHECK(job.nth_seen == n, "nth");
        /* scratch: grows, keeps alignment, keeps content when not grown */
        char *s1 = lfm2_pool_scratch(pool, 100);
        CHECK(s1 && ((uintptr_t)s1 & 63) == 0, "scratch alignment");
        s1[99] = 42;
        char *s2 = lfm2_pool_scratch(pool, 50);
        CHECK(s2 == s1 && s2[99] == 42, "scratch reuse");
        char *s3 = lfm2_pool_scratch(pool, 1 << 20);
        CHECK(s3 && ((uintptr_t)s3 & 63) == 0, "scratch growth");
        s3[(1 << 20) - 1] = 1;
        lfm2_pool_free(pool);
    }
    /* create/destroy repeatedly (workers must exit cleanly) */
    for (int i = 0; i < 20; i++)
        lfm2_pool_free(lfm2_pool_new(3));
}

/* ---- attention ---- */

static void naive_attention(const struct lfm2_attn_args *a, double *out)
{
    const int hd = a->head_dim, gq = a->n_head / a->n_head_kv;
    double *s = malloc((size_t)a->n_kv * sizeof(double));
    for (int i = 0; i < a->n_q; i++) {
        const long pos = (long)a->q_pos0 + i;
        for (int h = 0; h < a->n_head; h++) {
            const int g = h / gq;
            double mx = -INFINITY;
            for (int j = 0; j < a->n_kv; j++) {
                bool ok = !a->causal || j <= pos;
                if (a->window > 0 && pos - j >= a->window) ok = false;
                if (!ok) { s[j] = -INFINITY; continue; }
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += (double)a->q[(long)i * a->ldq + h * hd + c] * a->k[(long)j * a->ldk + g * hd + c];
                s[j] = d * a->scale;
                if (s[j] > mx) mx = s[j];
            }
            double l = 0;
            for (int j = 0; j < a->n_kv; j++) {
                s[j] = s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                l += s[j];
            }
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < a->n_kv; j++)
                    if (s[j] != 0) acc += s[j] * a->v[(long)j * a->ldv + g * hd + c];
                out[((long)i * a->n_head + h) * hd + c] = l > 0 ? acc / l : 0;
            }
        }
    }
    free(s);
}

static void attention_case(lfm2_pool *pool, const char *name, int n_q, int n_kv, int n_head,
                           int n_head_kv, int hd, bool causal, int q_pos0, int window)
{
    const int pad = 7;
    struct lfm2_attn_args a;
    memset(&a, 0, sizeof a);
    a.ldq = n_head * hd + pad;
    a.ldk = n_head_kv * hd + pad;
    a.ldv = n_head_kv * hd + 2 * pad;
    a.ldo = n_head * hd + pad;
    float *q = malloc((size_t)n_q * a.ldq * sizeof(float));
    float *k = malloc((size_t)n_kv * a.ldk * sizeof(float));
    float *v = malloc((size_t)n_kv * a.ldv * sizeof(float));
    float *o = malloc((size_t)n_q * a.ldo * sizeof(float));
    for (long i = 0; i < (long)n_q * a.ldq; i++) q[i] = rng_normal();
    for (long i = 0; i < (long)n_kv * a.ldk; i++) k[i] = rng_normal();
    for (long i = 0; i < (long)n_kv * a.ldv; i++) v[i] = rng_normal();
    for (long i = 0; i < (long)n_q * a.ldo; i++) o[i] = -777.0f;
    a.q = q; a.k = k; a.v = v; a.out = o;
    a.n_q = n_q; a.n_kv = n_kv; a.n_head = n_head; a.n_head_kv = n_head_kv; a.head_dim = hd;
    a.scale = 1.0f / sqrtf((float)hd) * 2.5f;   /* sharper than usual: exercises the max rescale */
    a.causal = causal; a.q_pos0 = q_pos0; a.window = window;
    double *ref = malloc((size_t)n_q * n_head * hd * sizeof(double));
    naive_attention(&a, ref);
    lfm2_attention(pool, &a);
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < n_q && bad < 3; i++) {
        for (int c = 0; c < a.ldo; c++) {
            const float got = o[(long)i * a.ldo + c];
            if (c >= n_head * hd) {
                CHECK(got == -777.0f, "%s: output padding overwritten", name);
                continue;
            }
            const double r = ref[(long)i * n_head * hd + c];
            const double err = fabs(got - r);
            if (err > worst) worst = err;
            if (!(err <= 2e-5 + 2e-5 * fabs(r))) {
                CHECK(0, "%s: out[%d][%d] = %.8g, reference %.8g", name, i, c, got, r);
                bad++;
                break;
            }
        }
    }
    printf("  attention %-28s max |Δ| %.2e\n", name, worst);
    free(q); free(k); free(v); free(o); free(ref);
}

static void test_attention(void)
{
    lfm2_pool *pools[2] = { lfm2_pool_new(1), lfm2_pool_new(2) };
    for (int p = 0; p < 2; p++) {
        lfm2_pool *pool = pools[p];
        attention_case(pool, "prefill causal", 45, 45, 4, 2, 32, true, 0, 0);
        attention_case(pool, "prefill causal MHA hd64", 37, 37, 3, 3, 64, true, 0, 0);
        attention_case(pool, "chunk after cache", 20, 300, 4, 1, 64, true, 280, 0);
        attention_case(pool, "decode long kv", 1, 1000, 8, 2, 64, true, 999, 0);
        attention_case(pool, "decode window", 1, 700, 4, 2, 32, true, 699, 128);
        attention_case(pool, "prefill window", 150, 150, 4, 2, 16, true, 0, 40);
        attention_case(pool, "bidirectional (encoder)", 70, 70, 2, 2, 72, false, 0, 0);
        attention_case(pool, "GQA 16/8 hd 64", 33, 33, 16, 8, 64, true, 0, 0);
        attention_case(pool, "hd 256", 5, 9, 2, 1, 256, true, 4, 0);
    }
    lfm2_pool_free(pools[0]);
    lfm2_pool_free(pools[1]);
}

/* ---- elementwise ---- */

static void test_norms_rope_act(void)
{
    enum { N = 1000 };
    float x[N], w[N], b[N], y[N];
    for (int i = 0; i < N; i++) { x[i] = rng_normal() * 3; w[i] = 1 + 0.1f * rng_normal(); b[i] = rng_normal(); }

    /* rmsnorm (also in place) */
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i];
    const double sc = 1 / sqrt(ss / N + 1e-5);
    lfm2_rmsnorm(y, x, w, N, 1e-5f);
    for (int i = 0; i < N; i++)
        CHECK(fabs(y[i] - x[i] * sc * w[i]) <= 1e-5 * fabs(x[i] * sc * w[i]) + 1e-6, "rmsnorm[%d]", i);
    float z[N];
    memcpy(z, x, sizeof z);
    lfm2_rmsnorm(z, z, w, N, 1e-5f);
    CHECK(memcmp(z, y, sizeof z) == 0, "rmsnorm in place");
    lfm2_rmsnorm(y, x, NULL, N, 1e-5f);
    for (int i = 0; i < N; i++)
        CHECK(fabs(y[i] - x[i] * sc) <= 1e-5 * fabs(x[i] * sc) + 1e-6, "rmsnorm no weight [%d]", i);

    /* layernorm */
    double mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= N;
    lfm2_layernorm(y, x, w, b, N, 1e-6f);
    for (int i = 0; i < N; i++) {
        const double r = (x[i] - mean) / sqrt(var + 1e-6) * w[i] + b[i];
        CHECK(fabs(y[i] - r) <= 1e-5 * fabs(r) + 1e-5, "layernorm[%d] %g vs %g", i, y[i], r);
    }

    /* RoPE neox: rotation of pairs (i, i + n_rot/2) by pos·base^(-2i/n_rot); positions kept
     * small enough that the float angle recurrence is within 1e-5 of the exact angle. */
    const int nh = 3, hd = 64;
    for (int pos = 0; pos < 50; pos += 7) {
        float r[3 * 64], r0[3 * 64];
        for (int i = 0; i < nh * hd; i++) r0[i] = r[i] = rng_normal();
        lfm2_rope_neox(r, nh, hd, hd, pos, 1e6f);
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < hd / 2; i++) {
                const double th = pos * pow(1e6, -2.0 * i / hd);
                const double a0 = r0[h * hd + i], a1 = r0[h * hd + i + hd / 2];
                const double e0 = a0 * cos(th) - a1 * sin(th), e1 = a0 * sin(th) + a1 * cos(th);
                CHECK(fabs(r[h * hd + i] - e0) < 1e-4 && fabs(r[h * hd + i + hd / 2] - e1) < 1e-4,
                      "rope pos %d head %d pair %d", pos, h, i);
            }
    }
    /* partial rotation leaves the tail alone */
    {
        float r[64], r0[64];
        for (int i = 0; i < 64; i++) r0[i] = r[i] = rng_normal();
        lfm2_rope_neox(r, 1, 64, 32, 5, 10000.f);
        for (int i = 32; i < 64; i++) CHECK(r[i] == r0[i], "rope n_rot < head_dim touched %d", i);
    }

    /* activations */
    float a[N], g[N], u[N];
    for (int i = 0; i < N; i++) { g[i] = rng_normal() * 4; u[i] = rng_normal(); }
    g[0] = -12; g[1] = 12; g[2] = 0; g[3] = -9.99f; g[4] = 9.99f;
    memcpy(a, g, sizeof a);
    lfm2_silu(a, N);
    for (int i = 0; i < N; i++) {
        const double r = g[i] / (1 + exp(-(double)g[i]));
        CHECK(fabs(a[i] - r) <= 2e-6 * fabs(r) + 1e-7, "silu(%g) = %g, want %g", g[i], a[i], r);
    }
    lfm2_swiglu(a, g, u, N);
    for (int i = 0; i < N; i++) {
        const double r = g[i] / (1 + exp(-(double)g[i])) * u[i];
        CHECK(fabs(a[i] - r) <= 2e-6 * fabs(r) + 1e-7, "swiglu[%d]", i);
    }
    memcpy(a, g, sizeof a);
    lfm2_gelu_tanh(a, N);
    for (int i = 0; i < N; i++) {
        const double xv = g[i];
        const double r = 0.5 * xv * (1 + tanh(sqrt(2 / M_PI) * (xv + 0.044715 * xv * xv * xv)));
        CHECK(fabs(a[i] - r) <= 2e-6 * fabs(r) + 1e-6, "gelu_tanh(%g) = %g, want %g", g[i], a[i], r);
    }
    memcpy(a, g, sizeof a);
    lfm2_gelu_tanh_ggml(a, N);
    for (int i = 0; i < N; i++) {
        double r;
        if (g[i] <= -10) r = 0;
        else if (g[i] >= 10) r = g[i];
        else {   /* fp16 in, gelu, fp16 out: allow one fp16 step for the float-vs-double gelu */
            const double xv = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(g[i]));
            r = 0.5 * xv * (1 + tanh(sqrt(2 / M_PI) * (xv + 0.044715 * xv * xv * xv)));
        }
        CHECK(fabs(a[i] - r) <= fabs(r) / 1024 + 1e-7, "gelu_tanh_ggml(%g) = %g, want %g", g[i], a[i], r);
        if (g[i] > -10 && g[i] < 10)
            CHECK(lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(a[i])) == a[i], "gelu_tanh_ggml output is not an fp16 value");
    }
    memcpy(a, g, sizeof a);
    lfm2_gelu_erf(a, N);
    for (int i = 0; i < N; i++) {
        const double r = 0.5 * g[i] * (1 + erf(g[i] / sqrt(2.0)));
        CHECK(fabs(a[i] - r) <= 2e-6 * fabs(r) + 1e-6, "gelu_erf[%d]", i);
    }
    memcpy(a, g, sizeof a);
    lfm2_softmax(a, N);
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < N; i++) mx = fmax(mx, g[i]);
    for (int i = 0; i < N; i++) sum += exp(g[i] - mx);
    for (int i = 0; i < N; i++) {
        const double r = exp(g[i] - mx) / sum;
        CHECK(fabs(a[i] - r) <= 2e-6 * r + 1e-12, "softmax[%d]", i);
    }
    lfm2_vec_add(a, g, u, N);
    for (int i = 0; i < N; i++) CHECK(a[i] == g[i] + u[i], "vec_add");
    lfm2_vec_mul(a, g, u, N);
    for (int i = 0; i < N; i++) CHECK(a[i] == g[i] * u[i], "vec_mul");
    memcpy(a, g, sizeof a);
    lfm2_vec_scale(a, 0.37f, N);
    for (int i = 0; i < N; i++) CHECK(a[i] == g[i] * 0.37f, "vec_scale");
}

/* The path's float helpers: scale_f32 is one rounding per element, exact on every path. */
static void test_float_helpers(void)
{
    const struct lfm2_kernels *kt = lfm2_kernels_get();
    static const float factors[3] = { 0.75f, -1.5f, 1e-3f };
    for (int n = 0; n < 300; n += 13) {
        float v[3][300], y[300];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++)
                v[j][i] = rng_normal();
        for (int j = 0; j < 3; j++) {
            memcpy(y, v[j], (size_t)n * sizeof(float));
            kt->scale_f32(y, factors[j], n);
            for (int i = 0; i < n; i++)
                CHECK(y[i] == v[j][i] * factors[j], "scale_f32 n=%d by %g", n, factors[j]);
        }
    }
}

int main(int argc, char **argv)
{
    select_path(argc, argv);
    test_pool();
    test_float_helpers();
    test_attention();
    test_norms_rope_act();
    return test_result("test-ops");
}
