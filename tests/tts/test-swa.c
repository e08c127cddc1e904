/* test-swa — the engine's backbone extensions that the detokenizer uses (engine/backbone.h),
 * on the fixture's tokenizer file (8 layers, 3 attention layers with window 30):
 *   a window at least as long as the sequence equals no window, bit for bit; a longer sequence
 *     differs;
 *   lfm2_attention with a window against a direct float64 computation;
 *   the sliding cache (lfm2_cache_make_room) gives the numbers of a cache that never slides;
 *   the dense_2 head against a float64 computation over the file's own tensors;
 *   a cache that cannot make room says so. */
#include "backbone.h"
#include "lfm2-stage.h"
#include "ttest.h"

static uint32_t g_rng = 99;
static float uniform(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) * (2.0 / 16777216.0) - 1.0);
}

struct stack {
    lfm2_gguf *g;
    struct lfm2_backbone bb;
};

static int load(struct stack *s)
{
    s->g = lfm2_gguf_open(tt_data("tokenizer-tiny-dev.gguf"), true);
    if (!s->g || lfm2_backbone_load(&s->bb, s->g, "lfm2", "") || lfm2_backbone_prepare(&s->bb, false, true)) {
        fprintf(stderr, "%s\n", lfm2_last_error());
        return -1;
    }
    return 0;
}

static void unload(struct stack *s)
{
    lfm2_backbone_free(&s->bb);
    lfm2_gguf_close(s->g);
}

/* The same stack with full attention (its layers array is the caller's to free). */
static struct lfm2_backbone without_window(const struct lfm2_backbone *bb)
{
    struct lfm2_backbone full = *bb;
    struct lfm2_layer *layers = malloc((size_t)bb->hp.n_layer * sizeof *layers);
    memcpy(layers, bb->layers, (size_t)bb->hp.n_layer * sizeof *layers);
    for (int il = 0; il < bb->hp.n_layer; il++)
        layers[il].n_swa = 0;
    full.layers = layers;
    return full;
}

/* Runs n input rows in chunks of `chunk` through a fresh cache of n_ctx rows; out: last hidden
 * states (n × E). Returns the cache base at the end, or -1. */
static int run(const struct lfm2_backbone *bb, lfm2_pool *pool, const float *in, int n, int chunk,
               int n_ctx, float *out)
{
    const int E = bb->hp.n_embd;
    struct lfm2_cache c;
    struct lfm2_scratch s;
    if (lfm2_cache_init(&c, bb, n_ctx) || lfm2_scratch_init(&s, bb, chunk))
        return -1;
    int base = -1;
    for (int p = 0; p < n; p += chunk) {
        const int m = n - p < chunk ? n - p : chunk;
        if (lfm2_cache_make_room(&c, bb, p, m))
            goto out;
        memcpy(s.x, in + (size_t)p * E, (size_t)m * E * sizeof(float));
        lfm2_backbone_forward(bb, &c, &s, pool, m, p);
        memcpy(out + (size_t)p * E, s.x, (size_t)m * E * sizeof(float));
    }
    base = c.base;
out:
    lfm2_scratch_free(&s);
    lfm2_cache_free(&c);
    return base;
}

static void test_window_vs_full(struct stack *st, lfm2_pool *pool)
{
    const struct lfm2_backbone *bb = &st->bb;
    CHECK_INT(bb->hp.n_swa, 30, "sliding_window");
    CHECK_INT(bb->n_out, 1282, "embedding_length_out");
    for (int il = 0; il < bb->hp.n_layer; il++)
        CHECK_INT(bb->layers[il].n_swa, bb->layers[il].kind == LFM2_LAYER_ATTENTION ? 30 : 0, "layer window");
    struct lfm2_backbone full = without_window(bb);

    const int E = bb->hp.n_embd, n = 90;
    float *in = malloc((size_t)n * E * sizeof *in), *a = malloc((size_t)n * E * sizeof *a);
    float *b = malloc((size_t)n * E * sizeof *b);
    for (int i = 0; i < n * E; i++)
        in[i] = uniform();
    /* 30 positions: every query sees all earlier keys either way */
    CHECK(run(bb, pool, in, 30, 30, 128, a) == 0 && run(&full, pool, in, 30, 30, 128, b) == 0, "runs");
    CHECK(tt_maxdiff(a, b, (size_t)30 * E) == 0.0, "window 30 over 30 positions vs no window: %.3g",
          tt_maxdiff(a, b, (size_t)30 * E));
    /* 90 positions: the window must matter from position 30 on, and not before */
    CHECK(run(bb, pool, in, n, n, 128, a) == 0 && run(&full, pool, in, n, n, 128, b) == 0, "runs");
    CHECK(tt_maxdiff(a, b, (size_t)30 * E) == 0.0, "rows before the window fills");
    const double late = tt_maxdiff(a + (size_t)60 * E, b + (size_t)60 * E, (size_t)30 * E);
    printf("window 30 vs none over 90 positions: rows 60…89 differ by %.3g\n", late);
    CHECK(late > 1e-3, "the window changes nothing (%.3g)", late);
    free(full.layers);
    free(in);
    free(a);
    free(b);
}

/* lfm2_attention(window w) against softmax over keys p − w < j ≤ p in float64. */
static void test_attention(lfm2_pool *pool)
{
    enum { NQ = 40, H = 4, HKV = 2, D = 8, W = 7 };
    static float q[NQ * H * D], k[NQ * HKV * D], v[NQ * HKV * D], o[NQ * H * D];
    for (int i = 0; i < NQ * H * D; i++)
        q[i] = uniform();
    for (int i = 0; i < NQ * HKV * D; i++) {
        k[i] = uniform();
        v[i] = uniform();
    }
    struct lfm2_attn_args a = {
        .q = q, .ldq = H * D, .k = k, .ldk = HKV * D, .v = v, .ldv = HKV * D, .out = o, .ldo = H * D,
        .n_q = NQ, .n_kv = NQ, .n_head = H, .n_head_kv = HKV, .head_dim = D, .scale = 0.35f,
        .causal = true, .q_pos0 = 0, .window = W,
    };
    lfm2_attention(pool, &a);
    double worst = 0;
    for (int p = 0; p < NQ; p++)
        for (int h = 0; h < H; h++) {
            const int g = h / (H / HKV);
            double s[NQ], mx = -1e300, z = 0;
            for (int j = 0; j < NQ; j++) {
                s[j] = -INFINITY;
                if (j > p || p - j >= W)
                    continue;
                double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += (double)q[(p * H + h) * D + d] * k[(j * HKV + g) * D + d];
                s[j] = 0.35 * dot;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < NQ; j++)
                z += isinf(s[j]) ? 0 : exp(s[j] - mx);
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int j = 0; j < NQ; j++)
                    if (!isinf(s[j]))
                        acc += exp(s[j] - mx) / z * v[(j * HKV + g) * D + d];
                worst = fmax(worst, fabs(acc - o[(p * H + h) * D + d]));
            }
        }
    printf("windowed attention vs float64: max |d| %.3g\n", worst);
    CHECK(worst < 1e-5, "windowed attention max |d| %.3g", worst);
}

/* 300 positions, 6 at a time, in 100 cache rows (slides) vs 300 rows (never slides). */
static void test_sliding_cache(struct stack *st, lfm2_pool *pool)
{
    const struct lfm2_backbone *bb = &st->bb;
    const int E = bb->hp.n_embd, n = 300;
    float *in = malloc((size_t)n * E * sizeof *in), *a = malloc((size_t)n * E * sizeof *a);
    float *b = malloc((size_t)n * E * sizeof *b);
    for (int i = 0; i < n * E; i++)
        in[i] = uniform();
    const int base_a = run(bb, pool, in, n, 6, 30 + 64 + 6, a);
    const int base_b = run(bb, pool, in, n, 6, n, b);
    CHECK(base_a > 0 && base_b == 0, "cache bases %d and %d", base_a, base_b);
    CHECK(tt_maxdiff(a, b, (size_t)n * E) == 0.0, "sliding cache vs full cache: %.3g",
          tt_maxdiff(a, b, (size_t)n * E));
    /* and one batch of 300 is the same again */
    CHECK(run(bb, pool, in, n, n, n, b) == 0, "one batch");
    CHECK(tt_maxdiff(a, b, (size_t)n * E) == 0.0, "frame by frame vs one batch: %.3g",
          tt_maxdiff(a, b, (size_t)n * E));

    /* a cache that cannot make room */
    struct lfm2_cache c;
    CHECK(lfm2_cache_init(&c, bb, 40) == 0, "cache");
    lfm2_clear_error();
    CHECK(lfm2_cache_make_room(&c, bb, 0, 41) < 0 && strstr(lfm2_last_error(), "cache full"),
          "a batch larger than the cache: '%s'", lfm2_last_error());
    CHECK(lfm2_cache_make_room(&c, bb, 100, 6) < 0, "window + alignment + batch > rows");
    lfm2_cache_free(&c);
    struct lfm2_backbone full = without_window(bb);
    CHECK(lfm2_cache_init(&c, &full, 200) == 0, "cache");
    CHECK(lfm2_cache_make_room(&c, &full, 198, 6) < 0, "no window: a full cache cannot slide");
    lfm2_cache_free(&c);
    free(full.layers);
    free(in);
    free(a);
    free(b);
}

/* dense_2 · (RMSNorm(x)·g) + b in float64 over the file's tensors (as stored). */
static void test_dense_head(struct stack *st, lfm2_pool *pool)
{
    const struct lfm2_backbone *bb = &st->bb;
    const int E = bb->hp.n_embd, n = 5, W = bb->n_out;
    struct lfm2_scratch s;
    CHECK(lfm2_scratch_init(&s, bb, n) == 0, "scratch");
    for (int i = 0; i < n * E; i++)
        s.x[i] = 3.0f * uniform();
    float *x = malloc((size_t)n * E * sizeof *x), *out = malloc((size_t)n * W * sizeof *out);
    memcpy(x, s.x, (size_t)n * E * sizeof *x);
    lfm2_backbone_output(bb, &s, pool, 0, n, bb->dense_out, bb->dense_out_b, out, W);
    const lfm2_tensor *wt = lfm2_gguf_find_tensor(st->g, "dense_2.weight");
    const lfm2_tensor *bt = lfm2_gguf_find_tensor(st->g, "dense_2.bias");
    const lfm2_tensor *gt = lfm2_gguf_find_tensor(st->g, "token_embd_norm.weight");
    float *w = malloc((size_t)E * W * sizeof *w), *b = malloc((size_t)W * sizeof *b), *g = malloc((size_t)E * sizeof *g);
    lfm2_tensor_to_f32(wt, w);
    lfm2_tensor_to_f32(bt, b);
    lfm2_tensor_to_f32(gt, g);
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double ss = 0;
        for (int i = 0; i < E; i++)
            ss += (double)x[t * E + i] * x[t * E + i];
        const double r = 1.0 / sqrt(ss / E + bb->hp.norm_eps);
        for (int o = 0; o < W; o++) {
            double acc = b[o];
            for (int i = 0; i < E; i++)
                acc += (double)w[(size_t)o * E + i] * x[t * E + i] * r * g[i];
            worst = fmax(worst, fabs(acc - out[(size_t)t * W + o]));
        }
    }
    printf("dense_2 head vs float64: max |d| %.3g\n", worst);
    CHECK(worst < 1e-5, "dense_2 head max |d| %.3g", worst);
    free(w);
    free(b);
    free(g);
    free(x);
    free(out);
    lfm2_scratch_free(&s);
}

int main(void)
{
    struct stack st;
    lfm2_pool *pool = lfm2_pool_new(2);
    if (!pool || load(&st))
        return 1;
    test_window_vs_full(&st, pool);
    test_attention(pool);
    test_sliding_cache(&st, pool);
    test_dense_head(&st, pool);
    unload(&st);
    lfm2_pool_free(pool);
    return lfm2_test_status();
}
