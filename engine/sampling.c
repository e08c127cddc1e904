/* sampling.c — next-token selection: repetition penalty, top-k, top-p, min-p, temperature,
 * seeded random draw (llama.cpp's chain order); temperature 0 is greedy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct cand {
    float logit;
    int32_t id;
};

struct lfm2_sampler {
    struct lfm2_sampler_params p;
    int n_vocab;
    struct cand *cand;     /* n_vocab work entries, allocated once */
    int32_t *hist;         /* ring of recent tokens for the penalty */
    int hist_cap, hist_len, hist_pos;
    uint64_t rng[4];
    struct { int32_t id; float bias; } *bias; /* lfm2_sampler_set_logit_bias, usually none */
    int n_bias;
};

#define DEFAULT_SEED 0xFFFFFFFFu /* as llama.cpp: "pick a random seed" */

struct lfm2_sampler_params lfm2_sampler_default_params(void)
{
    /* LFM2 model cards' recommendation (temperature 0.3, min_p 0.15, repetition penalty 1.05). */
    struct lfm2_sampler_params p = {
        .temperature = 0.3f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.15f,
        .repeat_penalty = 1.05f,
        .repeat_last_n = 64,
        .seed = DEFAULT_SEED,
    };
    return p;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(uint64_t s[4])
{
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4])
{
    return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void seed_rng(lfm2_sampler *s)
{
    uint64_t x = s->p.seed;
    if (x == DEFAULT_SEED) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)s;
    }
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

lfm2_sampler *lfm2_sampler_new(const lfm2_model *model, struct lfm2_sampler_params params)
{
    return lfm2_sampler_new_n(lfm2_model_get_hparams(model)->n_vocab, params);
}

lfm2_sampler *lfm2_sampler_new_n(int n_vocab, struct lfm2_sampler_params params)
{
    if (n_vocab <= 0) {
        lfm2_set_error("lfm2_sampler_new_n: %d candidates", n_vocab);
        return NULL;
    }
    lfm2_sampler *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->p = params;
    s->n_vocab = n_vocab;
    s->hist_cap = params.repeat_last_n < 0 ? 4096 : params.repeat_last_n;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->hist = malloc((size_t)(s->hist_cap + 1) * sizeof *s->hist);
    if (!s->cand || !s->hist)
        goto oom;
    seed_rng(s);
    return s;
oom:
    lfm2_sampler_free(s);
    lfm2_set_error("out of memory");
    return NULL;
}

void lfm2_sampler_free(lfm2_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->hist);
    free(s->bias);
    free(s);
}

void lfm2_sampler_reset(lfm2_sampler *s)
{
    s->hist_len = s->hist_pos = 0;
    seed_rng(s);
}

int lfm2_sampler_set_logit_bias(lfm2_sampler *s, lfm2_token token, float bias)
{
    if (!s || token < 0 || token >= s->n_vocab || isnan(bias)) {
        lfm2_set_error("logit bias: token %d is not in the sampler's %d candidates (or the bias is NaN)",
                       (int)token, s ? s->n_vocab : 0);
        return -1;
    }
    for (int i = 0; i < s->n_bias; i++)
        if (s->bias[i].id == token) {
            s->bias[i].bias = bias;
            return 0;
        }
    void *b = realloc(s->bias, (size_t)(s->n_bias + 1) * sizeof *s->bias);
    if (!b) {
        lfm2_set_error("out of memory");
        return -1;
    }
    s->bias = b;
    s->bias[s->n_bias].id = token;
    s->bias[s->n_bias++].bias = bias;
    return 0;
}

void lfm2_sampler_accept(lfm2_sampler *s, lfm2_token token)
{
    if (s->hist_cap == 0)
        return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_len < s->hist_cap)
        s->hist_len++;
}

static int cmp_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;
}

/* Moves the k largest entries to the front, sorted descending; the rest keep the remaining
 * entries (so a later, wider call still sees every candidate). Insertion for small k. */
static void top_k_sorted(struct cand *c, int n, int k)
{
    if (k >= n || k > 256) {
        qsort(c, (size_t)n, sizeof *c, cmp_desc);
        return;
    }
    for (int i = 0; i < n; i++) {
        int j;
        if (i < k) {
            j = i;
        } else if (cmp_desc(&c[i], &c[k - 1]) < 0) {
            struct cand t = c[i];
            c[i] = c[k - 1];
            c[k - 1] = t;
            j = k - 1;
        } else {
            continue;
        }
        struct cand v = c[j];
        while (j > 0 && cmp_desc(&c[j - 1], &v) > 0) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = v;
    }
}

lfm2_token lfm2_sampler_sample(lfm2_sampler *s, const float *logits)
{
    const int V = s->n_vocab;
    struct cand *c = s->cand;
    for (int i = 0; i < V; i++)
        c[i] = (struct cand){ logits[i], i };
    for (int i = 0; i < s->n_bias; i++)
        c[s->bias[i].id].logit += s->bias[i].bias;

    /* Repetition penalty over the recent window (each distinct token once). */
    if (s->p.repeat_penalty != 1.0f && s->p.repeat_penalty > 0.0f) {
        for (int i = 0; i < s->hist_len; i++) {
            const int32_t t = s->hist[i];
            if (t < 0 || t >= V || c[t].id < 0)
                continue;
            float *l = &c[t].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
            c[t].id = -1 - t; /* mark as done */
        }
        for (int i = 0; i < s->hist_len; i++) {
            const int32_t t = s->hist[i];
            if (t >= 0 && t < V && c[t].id < 0)
                c[t].id = t;
        }
    }

    if (s->p.temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (c[i].logit > c[best].logit)
                best = i;
        return c[best].id;
    }

    /* min-p first as a cheap linear prefilter (same set as after sorting), then top-k. */
    int n = V;
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = c[i].logit > mx ? c[i].logit : mx;
    if (s->p.min_p > 0.0f && s->p.min_p <= 1.0f) {
        const float cut = mx + logf(s->p.min_p);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (c[i].logit >= cut)
                c[m++] = c[i];
        /* all NaN (a broken model): nothing compares >= the cut; keep every candidate
         * rather than draw from none */
        if (m > 0)
            n = m;
    }
    int k = s->p.top_k > 0 && s->p.top_k < n ? s->p.top_k : n;
    if (s->p.top_p < 1.0f && k > 256)
        k = 256; /* try the head first; widened below if it does not reach top_p */
    top_k_sorted(c, n, k);

    /* top-p on the probabilities at temperature 1 */
    if (s->p.top_p < 1.0f) {
        for (;;) {
            double z = 0.0, acc = 0.0;
            for (int i = 0; i < n; i++)
                z += exp((double)c[i].logit - mx);
            int keep = k;
            for (int i = 0; i < k; i++) {
                acc += exp((double)c[i].logit - mx) / z;
                if (acc >= s->p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            if (acc >= s->p.top_p || k == n || (s->p.top_k > 0 && k == s->p.top_k)) {
                k = keep;
                break;
            }
            k = s->p.top_k > 0 && s->p.top_k < n ? s->p.top_k : n; /* widen and retry */
            top_k_sorted(c, n, k);
        }
    }

    /* temperature, softmax, draw */
    double z = 0.0;
    for (int i = 0; i < k; i++)
        z += exp(((double)c[i].logit - mx) / s->p.temperature);
    double r = rng_uniform(s->rng) * z, acc = 0.0;
    for (int i = 0; i < k; i++) {
        acc += exp(((double)c[i].logit - mx) / s->p.temperature);
        if (r < acc)
            return c[i].id;
    }
    return c[k - 1].id;
}
