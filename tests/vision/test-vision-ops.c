/* test-vision-ops.c — the engine ops the vision encoder leans on, at encoder shapes, on every
 * CPU path this machine runs (scalar, AVX2, AVX-512), against independent computations:
 *   - bidirectional attention (the encoders' fast path: key padding, head_dim not a multiple of
 *     64, grouped kv heads, strided rows) against a float64 softmax; 1 and 2 threads give
 *     bit-identical results; the output row padding is not written;
 *   - ggml's fp16-table GELU bit for bit against a lookup built here (own fp16 rounding,
 *     tanh GELU in float as ggml), for every fp16 value, the rounding midpoints between them
 *     and the ±10 / ±inf / NaN edges;
 *   - tanh and erf GELU and layernorm against float64 formulas;
 *   - lfm2_thread_set_nice: a pool made by a normal thread gives its workers the nice value
 *     of a thread that lowered its priority and runs jobs on it (lfm2vl's inference threads). */
#include <math.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lfm2-ops.h"
#include "vtest.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rng_uniform(void)   /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 16777216.0f;
}

static float rng_normal(void)
{
    const float u = rng_uniform() + 1e-7f, v = rng_uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* ---- fp16, written here (round to nearest even; only finite normal/subnormal/inf needed) -- */

static float h2f(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}

/* the fp16 nearest to f (ties to even), by search over the ordered positive values */
static uint16_t f2h(float f)
{
    if (isnan(f))
        return 0x7e00;
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    const double a = fabs((double)f);
    if (a >= 65520.0)   /* max half 65504; halfway to the next binade rounds to inf */
        return sign | 0x7c00;
    unsigned lo = 0, hi = 0x7bff;   /* largest finite */
    while (lo < hi) {               /* first h with value >= a */
        const unsigned mid = (lo + hi) / 2;
        if ((double)h2f((uint16_t)mid) < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    unsigned h = lo;
    if (h > 0) {
        const double up = h2f((uint16_t)h), dn = h2f((uint16_t)(h - 1));
        if (a - dn < up - a || (a - dn == up - a && ((h - 1) & 1) == 0))
            h--;
    }
    return (uint16_t)(sign | h);
}

static float gelu_tanh_f(float x)   /* ggml's float formula */
{
    return 0.5f * x * (1.0f + tanhf(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x)));
}

static uint16_t table[65536];

static float gelu_ggml_ref(float x)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    return h2f(table[f2h(x)]);
}

static void test_gelu_ggml(const char *path)
{
    enum { N = 65536 * 2 + 4000 + 8 };
    static float x[N], y[N];
    int n = 0;
    for (int h = 0; h < 65536; h++) {
        x[n++] = h2f((uint16_t)h);
        /* the midpoint to the next value up (a rounding tie) */
        const float a = h2f((uint16_t)h), b = h2f((uint16_t)(h + 1));
        x[n++] = (h & 0x7c00) != 0x7c00 && (h & 0x7fff) != 0x7bff ? (float)(((double)a + b) / 2) : a;
    }
    for (int i = 0; i < 4000; i++)
        x[n++] = 24.0f * rng_uniform() - 12.0f;
    const float edge[8] = { -10.0f, 10.0f, nextafterf(-10.0f, 0), nextafterf(10.0f, 0),
                            INFINITY, -INFINITY, NAN, 1e-8f };
    for (int i = 0; i < 8; i++)
        x[n++] = edge[i];
    memcpy(y, x, sizeof(float) * (size_t)n);
    lfm2_gelu_tanh_ggml(y, n);
    int bad = 0;
    for (int i = 0; i < n && bad < 5; i++) {
        const float r = gelu_ggml_ref(x[i]);
        const bool same = (isnan(r) && isnan(y[i])) || memcmp(&r, &y[i], sizeof r) == 0;
        if (!same) {
            CHECK(0, "%s: gelu_tanh_ggml(%a) = %a, table says %a", path, x[i], y[i], r);
            bad++;
        }
    }
}

static void test_gelu_norm(const char *path)
{
    enum { N = 3000 };
    float x[N], y[N], w[N], b[N];
    for (int i = 0; i < N; i++) {
        x[i] = i < 200 ? -12.0f + 0.12f * (float)i : 4.0f * rng_normal();
        w[i] = 1.0f + 0.1f * rng_normal();
        b[i] = rng_normal();
    }
    /* tanh GELU: float64 formula; a few float ulps (relative, the result can be tiny) */
    memcpy(y, x, sizeof x);
    lfm2_gelu_tanh(y, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        /* 0.5·v·(1 + tanh u) written as v / (1 + e^(−2u)): in float64 1 + tanh u cancels to 0
         * for u < −19, where the float result is still a normal number */
        const double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
        const double r = v / (1 + exp(-2 * u));
        const double e = fabs(y[i] - r) / (fabs(r) + 1e-30);
        if (e > worst)
            worst = e;
        /* a few ulps, times the condition number of e^(−2u) in the tail (u is a float sum) */
        CHECK(e <= 6e-7 * (2 + fabs(2 * u)) || fabs(y[i] - r) < 1e-37,
              "%s: gelu_tanh(%g) = %.9g, float64 %.9g", path,
              (double)x[i], (double)y[i], r);
    }
    printf("  %-7s gelu_tanh max rel |Δ| %.2e\n", path, worst);

    memcpy(y, x, sizeof x);
    lfm2_gelu_erf(y, N);
    for (int i = 0; i < N; i++) {
        const double v = x[i], r = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        CHECK(fabs(y[i] - r) <= 1e-6 * fabs(r) + 1e-7, "%s: gelu_erf(%g) = %.9g, float64 %.9g",
              path, (double)x[i], (double)y[i], r);
    }

    for (int n = 1; n <= N; n = n * 3 + 1) {
        double mean = 0, var = 0;
        for (int i = 0; i < n; i++)
            mean += x[i];
        mean /= n;
        for (int i = 0; i < n; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= n;
        lfm2_layernorm(y, x, w, b, n, 1e-6f);
        for (int i = 0; i < n; i++) {
            const double r = (x[i] - mean) / sqrt(var + 1e-6) * w[i] + b[i];
            /* float x − mean loses |mean|/σ ulps of x when the row sits far from 0 */
            const double cond = 1 + fabs(mean) / sqrt(var + 1e-6);
            CHECK(fabs(y[i] - r) <= 2e-6 * (fabs(r) + 1) * cond, "%s: layernorm n=%d [%d] = %.9g, float64 %.9g",
                  path, n, i, (double)y[i], r);
        }
    }
}

/* ---- bidirectional attention ---- */

static void naive(const struct lfm2_attn_args *a, double *out)
{
    const int hd = a->head_dim, grp = a->n_head / a->n_head_kv;
    double *s = malloc(sizeof(double) * (size_t)a->n_kv);
    for (int i = 0; i < a->n_q; i++)
        for (int h = 0; h < a->n_head; h++) {
            const int g = h / grp;
            double mx = -INFINITY, l = 0;
            for (int j = 0; j < a->n_kv; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += (double)a->q[(int64_t)i * a->ldq + h * hd + c] * a->k[(int64_t)j * a->ldk + g * hd + c];
                s[j] = d * a->scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < a->n_kv; j++)
                l += (s[j] = exp(s[j] - mx));
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < a->n_kv; j++)
                    acc += s[j] * a->v[(int64_t)j * a->ldv + g * hd + c];
                out[((int64_t)i * a->n_head + h) * hd + c] = acc / l;
            }
        }
    free(s);
}

static void attention_case(lfm2_pool *p1, lfm2_pool *p2, const char *path, int n_q, int n_kv,
                           int n_head, int n_head_kv, int hd)
{
    struct lfm2_attn_args a;
    memset(&a, 0, sizeof a);
    a.ldq = n_head * hd + 3;
    a.ldk = n_head_kv * hd + 5;
    a.ldv = n_head_kv * hd + 1;
    a.ldo = n_head * hd + 7;
    float *q = malloc(sizeof(float) * (size_t)(n_q * a.ldq));
    float *k = malloc(sizeof(float) * (size_t)(n_kv * a.ldk));
    float *v = malloc(sizeof(float) * (size_t)(n_kv * a.ldv));
    float *o1 = malloc(sizeof(float) * (size_t)(n_q * a.ldo));
    float *o2 = malloc(sizeof(float) * (size_t)(n_q * a.ldo));
    double *ref = malloc(sizeof(double) * (size_t)n_q * n_head * hd);
    for (int64_t i = 0; i < (int64_t)n_q * a.ldq; i++)
        q[i] = rng_normal();
    for (int64_t i = 0; i < (int64_t)n_kv * a.ldk; i++)
        k[i] = rng_normal();
    for (int64_t i = 0; i < (int64_t)n_kv * a.ldv; i++)
        v[i] = rng_normal();
    for (int64_t i = 0; i < (int64_t)n_q * a.ldo; i++)
        o1[i] = o2[i] = -777.0f;
    a.q = q; a.k = k; a.v = v;
    a.n_q = n_q; a.n_kv = n_kv; a.n_head = n_head; a.n_head_kv = n_head_kv; a.head_dim = hd;
    a.scale = 2.0f / sqrtf((float)hd);   /* sharper than 1/√d: large score spreads */
    a.causal = false;
    naive(&a, ref);
    a.out = o1;
    lfm2_attention(p1, &a);
    a.out = o2;
    lfm2_attention(p2, &a);
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < n_q && bad < 3; i++)
        for (int c = 0; c < a.ldo; c++) {
            const float got = o1[(int64_t)i * a.ldo + c];
            if (c >= n_head * hd) {
                CHECK(got == -777.0f, "%s attention %dx%d: output padding written", path, n_q, n_kv);
                continue;
            }
            const double r = ref[(int64_t)i * n_head * hd + c], e = fabs(got - r);
            worst = e > worst ? e : worst;
            if (!(e <= 2e-5 + 2e-5 * fabs(r))) {
                CHECK(0, "%s attention q%d kv%d h%d/%d hd%d: out[%d][%d] = %.8g, float64 %.8g", path,
                      n_q, n_kv, n_head, n_head_kv, hd, i, c, got, r);
                bad++;
                break;
            }
        }
    CHECK(memcmp(o1, o2, sizeof(float) * (size_t)(n_q * a.ldo)) == 0,
          "%s attention q%d kv%d: 1 and 2 threads differ", path, n_q, n_kv);
    printf("  %-7s attention q%-4d kv%-4d heads %2d/%-2d hd %-3d max |Δ| %.2e\n", path, n_q, n_kv,
           n_head, n_head_kv, hd, worst);
    free(q); free(k); free(v); free(o1); free(o2); free(ref);
}

/* each thread of the job records its own nice value */
static void record_nice(void *arg, int ith, int nth)
{
    (void)nth;
    errno = 0;
    ((int *)arg)[ith] = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

struct nice_job {
    lfm2_pool *pool;
    int seen[4];
    int rc;
};

static void *lowered_thread(void *p)
{
    struct nice_job *j = p;
    j->rc = lfm2_thread_set_nice(getpriority(PRIO_PROCESS, 0) + 7);
    lfm2_pool_run(j->pool, record_nice, j->seen);
    return NULL;
}

static void test_pool_follows_nice(void)
{
    const int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (base + 7 > 19) {
        printf("  pool nice: this process already runs at nice %d, skipped\n", base);
        return;
    }
    lfm2_pool *pool = lfm2_pool_new(3);   /* made here, at the base priority */
    struct nice_job j = { pool, { 0 }, 0 };
    lfm2_pool_run(pool, record_nice, j.seen);
    CHECK(j.seen[1] == base && j.seen[2] == base, "workers start at nice %d: %d %d", base,
          j.seen[1], j.seen[2]);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, lowered_thread, &j) == 0, "thread");
    pthread_join(t, NULL);
    CHECK(j.rc == 0, "lfm2_thread_set_nice: %s", lfm2_last_error());
    CHECK(j.seen[0] == base + 7 && j.seen[1] == base + 7 && j.seen[2] == base + 7,
          "after the lowered thread's job: caller %d, workers %d %d (want %d)", j.seen[0],
          j.seen[1], j.seen[2], base + 7);
    /* this thread never asked for a value: its jobs leave the workers as they are */
    lfm2_pool_run(pool, record_nice, j.seen);
    CHECK(j.seen[0] == base && j.seen[1] == base + 7, "main thread job: %d %d", j.seen[0],
          j.seen[1]);
    lfm2_pool_free(pool);
}

int main(void)
{
    test_pool_follows_nice();
    for (int h = 0; h < 65536; h++) {
        const float x = h2f((uint16_t)h);
        table[h] = f2h(gelu_tanh_f(x));
    }
    lfm2_pool *p1 = lfm2_pool_new(1), *p2 = lfm2_pool_new(2);
    CHECK(p1 && p2, "pools");
    const enum lfm2_cpu_path paths[] = { LFM2_CPU_SCALAR, LFM2_CPU_AVX2, LFM2_CPU_AVX512 };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!lfm2_set_cpu_path(paths[i])) {
            printf("  %s: not supported here, skipped\n", lfm2_cpu_path_name(paths[i]));
            continue;
        }
        const char *name = lfm2_cpu_path_name(paths[i]);
        test_gelu_ggml(name);
        test_gelu_norm(name);
        attention_case(p1, p2, name, 333, 333, 4, 4, 64);    /* padded keys, ragged query block */
        attention_case(p1, p2, name, 70, 200, 6, 2, 80);     /* GQA, head_dim 64 + 16 */
        attention_case(p1, p2, name, 21, 64, 2, 1, 24);      /* one key block, head_dim 16 + 8 */
        attention_case(p1, p2, name, 5, 1000, 2, 2, 64);     /* long keys, few queries */
        attention_case(p1, p2, name, 3, 40, 2, 2, 32);       /* fewer queries than a tile */
    }
    lfm2_pool_free(p1);
    lfm2_pool_free(p2);
    return lfm2_test_status();
}
