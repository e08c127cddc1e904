/* cmd-bench.c — `lfm2 bench`: prompt-processing and generation speed, llama-bench style.
 *
 *   lfm2 bench -m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]
 *     pp: one batch of -p random tokens on an empty context (logits of the last row only);
 *     tg: -n single-token decodes from an empty context;
 *     each the median of -r repeats after one warm-up round.
 *
 *   lfm2 bench --matmul TYPE [-k 1024] [-o 4608] [-p 512] [-t 2] [-r 5] [--prepared] [--blas] [--json]
 *     one matrix product (random weights of TYPE, {k, o}) on -p tokens, for kernel work:
 *     reports GMAC/s and, for -p 1, the weight bytes streamed per second. --blas times
 *     OpenBLAS's sgemm on the same product instead (F32 weights, or F16 widened to F32), so
 *     the kernels can be compared with it on the machine at hand (docs/benchmarks.md).
 *
 *   lfm2 bench --bandwidth [-t 2] [--mib 1024] [-r 3] [--json]
 *     streaming read speed of a buffer larger than the caches: decode's memory roofline.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "lfm2-gguf.h"
#include "lfm2-ops.h"
#include "lfm2-stage.h"
#include "lfm2.h"

#ifdef LFM2_HAVE_OPENBLAS
#include <cblas.h>
#include <dlfcn.h>
#endif

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;   /* Linux reports kilobytes */
}

/* The weight type holding most parameters among the matrices (norms and conv kernels are F32
 * in every file), e.g. "Q8_0"; "Q4_K/Q6_K"-style mixes report the majority type. */
static const char *model_type(const lfm2_model *model)
{
    const lfm2_gguf *g = lfm2_model_gguf(model);
    uint64_t count[LFM2_TYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        if (t->n_dims >= 2 && t->ne[0] > 8 && (unsigned)t->type < LFM2_TYPE_COUNT)
            count[t->type] += (uint64_t)lfm2_tensor_nelements(t);
    }
    int best = 0;
    for (int i = 1; i < LFM2_TYPE_COUNT; i++)
        if (count[i] > count[best])
            best = i;
    return lfm2_type_name((uint32_t)best);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* ---- whole model ---- */

static int bench_model(const char *path, int n_prompt, int n_gen, int n_threads, int reps, bool json)
{
    struct lfm2_model_params mp = lfm2_model_default_params();
    lfm2_model *model = lfm2_model_load(path, mp);
    if (!model)
        return cli_fail("bench", "%s", lfm2_last_error());
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = n_prompt + n_gen;
    if (cp.n_ctx < 1)
        cp.n_ctx = 1;
    cp.n_batch = n_prompt > 0 ? n_prompt : 1;
    cp.n_threads = n_threads;
    lfm2_context *ctx = lfm2_context_new(model, cp);
    if (!ctx) {
        lfm2_model_free(model);
        return cli_fail("bench", "%s", lfm2_last_error());
    }
    const int n_vocab = lfm2_model_n_vocab(model);
    lfm2_token *tokens = malloc(sizeof *tokens * (size_t)(n_prompt > 0 ? n_prompt : 1));
    uint64_t rng = 0x853c49e6748fea9bull;
    for (int i = 0; i < n_prompt; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (lfm2_token)((rng >> 33) % (uint64_t)n_vocab);
    }
    double *pp = calloc((size_t)reps + 1, sizeof *pp), *tg = calloc((size_t)reps + 1, sizeof *tg);
    int rc = 0;
    for (int r = 0; r <= reps && rc == 0; r++) {   /* r == 0 is the warm-up */
        if (n_prompt > 0) {
            lfm2_rewind(ctx, 0);
            const double t0 = lfm2_time_ms();
            if (lfm2_decode(ctx, lfm2_batch_tokens(tokens, n_prompt)) != 0)
                rc = cli_fail("bench", "prompt decode failed: %s", lfm2_last_error());
            pp[r] = n_prompt / ((lfm2_time_ms() - t0) * 1e-3);
        }
        if (n_gen > 0 && rc == 0) {
            lfm2_rewind(ctx, 0);
            lfm2_token tok = 1;
            const double t0 = lfm2_time_ms();
            for (int i = 0; i < n_gen && rc == 0; i++) {
                if (lfm2_decode(ctx, lfm2_batch_tokens(&tok, 1)) != 0)
                    rc = cli_fail("bench", "decode failed: %s", lfm2_last_error());
                tok = (lfm2_token)((tok * 7919 + 13) % n_vocab);
            }
            tg[r] = n_gen / ((lfm2_time_ms() - t0) * 1e-3);
        }
    }
    if (rc == 0) {
        const double pp_med = n_prompt > 0 ? median(pp + 1, reps) : 0;
        const double tg_med = n_gen > 0 ? median(tg + 1, reps) : 0;
        const char *type = model_type(model);
        const char *cpu_path = lfm2_cpu_path_name(lfm2_get_cpu_path());
        const int nt = lfm2_n_threads(ctx);
        if (json) {
            printf("{\"model\": ");
            json_str(path);
            printf(", \"model_desc\": ");
            json_str(lfm2_model_desc(model));
            printf(", \"model_type\": \"%s\", \"model_size_bytes\": %llu, \"n_params\": %llu", type,
                   (unsigned long long)lfm2_model_size_bytes(model),
                   (unsigned long long)lfm2_model_n_params(model));
            printf(", \"threads\": %d, \"cpu_path\": \"%s\", \"cpu_features\": ", nt, cpu_path);
            json_str(lfm2_cpu_features());
            printf(", \"repeats\": %d, \"n_prompt\": %d, \"n_gen\": %d", reps, n_prompt, n_gen);
            printf(", \"prompt_tokens_per_s\": %.2f, \"gen_tokens_per_s\": %.2f", pp_med, tg_med);
            printf(", \"prompt_runs\": [");
            for (int r = 1; r <= reps; r++) printf("%s%.2f", r > 1 ? ", " : "", pp[r]);
            printf("], \"gen_runs\": [");
            for (int r = 1; r <= reps; r++) printf("%s%.2f", r > 1 ? ", " : "", tg[r]);
            printf("], \"peak_rss_bytes\": %llu, \"version\": \"%s\"}\n",
                   (unsigned long long)peak_rss_bytes(), lfm2_version());
        } else {
            printf("| %-34s | %-6s | %7s | %-6s | %7s | %14s |\n", "model", "type", "threads",
                   "path", "test", "t/s");
            printf("| %-34s | %-6s | %7s | %-6s | %7s | %14s |\n", "---", "---", "---", "---", "---", "---");
            char test[32];
            if (n_prompt > 0) {
                snprintf(test, sizeof test, "pp%d", n_prompt);
                printf("| %-34.34s | %-6s | %7d | %-6s | %7s | %14.2f |\n", lfm2_model_desc(model),
                       type, nt, cpu_path, test, pp_med);
            }
            if (n_gen > 0) {
                snprintf(test, sizeof test, "tg%d", n_gen);
                printf("| %-34.34s | %-6s | %7d | %-6s | %7s | %14.2f |\n", lfm2_model_desc(model),
                       type, nt, cpu_path, test, tg_med);
            }
            printf("\nmedian of %d runs after a warm-up; peak RSS %.1f MiB; CPU %s\n", reps,
                   peak_rss_bytes() / 1048576.0, lfm2_cpu_features());
        }
    }
    free(pp);
    free(tg);
    free(tokens);
    lfm2_context_free(ctx);
    lfm2_model_free(model);
    return rc;
}

/* ---- one matrix product ---- */

static int parse_type(const char *s, enum lfm2_type *out)
{
    static const enum lfm2_type types[] = {
        LFM2_TYPE_F32, LFM2_TYPE_F16, LFM2_TYPE_BF16, LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_0, LFM2_TYPE_Q4_1,
        LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1, LFM2_TYPE_Q4_K, LFM2_TYPE_Q5_K, LFM2_TYPE_Q6_K,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(s, lfm2_type_name(types[i]))) {
            *out = types[i];
            return 0;
        }
    return cli_fail("bench", "--matmul: unknown weight type '%s'", s);
}

/* One timed product: ours (lfm2_matmul) or, with --blas, OpenBLAS's sgemm on the same data. */
struct mm_run {
    lfm2_pool *pool;
    const lfm2_tensor *w;
    const float *x, *wf32;  /* wf32: the weights as F32 rows, for sgemm */
    const float *xb;        /* sgemm's input: x, or x rounded to F16 as our F16 kernels take it */
    float *y;
    int k, n_out, n_tok, n_threads;
};

static void run_ours(const struct mm_run *r)
{
    lfm2_matmul(r->pool, r->w, r->x, r->k, r->y, r->n_out, r->n_tok);
}

#ifdef LFM2_HAVE_OPENBLAS
/* OpenBLAS is opened only for --blas: linked in, it would start its thread pool in every
 * `lfm2` process and add to the peak RSS the model benchmark reports. */
static __typeof__(cblas_sgemm) *p_sgemm;
static __typeof__(openblas_set_num_threads) *p_set_threads;

static int open_blas(void)
{
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        p_sgemm = (__typeof__(p_sgemm))dlsym(h, "cblas_sgemm");
        p_set_threads = (__typeof__(p_set_threads))dlsym(h, "openblas_set_num_threads");
    }
    if (!p_sgemm || !p_set_threads)
        return cli_fail("bench", "--blas: cannot load OpenBLAS (libopenblas.so.0): %s",
                        h ? "cblas_sgemm or openblas_set_num_threads missing" : dlerror());
    return 0;
}

static void run_blas(const struct mm_run *r)
{
    /* y[t][o] = sum_i x[t][i] * w[o][i]: x row-major times the weight rows transposed */
    p_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r->n_tok, r->n_out, r->k, 1.0f, r->xb, r->k,
            r->wf32, r->k, 0.0f, r->y, r->n_out);
}
#endif

/* Median wall time of -r samples (each enough repetitions for ~50 ms, after a warm-up) and the
 * calling thread's best CPU time per product. */
static void time_product(void (*fn)(const struct mm_run *), const struct mm_run *r, int reps,
                         double *med_ms, double *cpu_min_ms)
{
    double *ms = calloc((size_t)reps, sizeof *ms), *cpu = calloc((size_t)reps, sizeof *cpu);
    fn(r);
    double t0 = lfm2_time_ms();
    fn(r);
    const double one = lfm2_time_ms() - t0;
    int inner = one > 0 ? (int)(50.0 / one) : 1000;
    if (inner < 1) inner = 1;
    if (inner > 100000) inner = 100000;
    for (int i = 0; i < reps; i++) {
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        t0 = lfm2_time_ms();
        for (int j = 0; j < inner; j++)
            fn(r);
        ms[i] = (lfm2_time_ms() - t0) / inner;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        cpu[i] = ((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6) / inner;
    }
    /* With one thread the caller's CPU time excludes time the machine gave to other
     * processes: a steadier figure for kernel work on a shared machine. */
    double best = cpu[0];
    for (int i = 1; i < reps; i++)
        if (cpu[i] < best) best = cpu[i];
    *cpu_min_ms = best;
    *med_ms = median(ms, reps);
    free(ms);
    free(cpu);
}

static int bench_matmul(enum lfm2_type type, int k, int n_out, int n_tok, int n_threads, int reps,
                        bool json, bool prepared, bool blas)
{
#ifndef LFM2_HAVE_OPENBLAS
    if (blas)
        return cli_fail("bench", "--blas: this build has no OpenBLAS (install libopenblas-dev and "
                        "reconfigure with -Dopenblas=enabled)");
#endif
    if (blas && type != LFM2_TYPE_F32 && type != LFM2_TYPE_F16)
        return cli_fail("bench", "--blas times OpenBLAS's sgemm, which takes F32 weights: use "
                        "--matmul f32 (or f16, converted to an F32 copy first)");
#ifdef LFM2_HAVE_OPENBLAS
    if (blas && open_blas())
        return 1;
#endif
    const int blk = lfm2_type_block_elems(type);
    if (k % blk)
        return cli_fail("bench", "-k %d is not a multiple of %s's block size %d", k, lfm2_type_name(type), blk);
    const size_t rb = lfm2_row_bytes(type, k);
    void *wmem = NULL;
    if (posix_memalign(&wmem, 64, rb * (size_t)n_out) != 0)
        wmem = NULL;
    uint8_t *wdata = wmem;
    float *row = malloc(sizeof(float) * (size_t)k);
    float *x = malloc(sizeof(float) * (size_t)k * (size_t)n_tok);
    float *y = malloc(sizeof(float) * (size_t)n_out * (size_t)n_tok);
    float *wf32 = blas ? malloc(sizeof(float) * (size_t)k * (size_t)n_out) : NULL;
    float *y_ours = blas ? malloc(sizeof(float) * (size_t)n_out * (size_t)n_tok) : NULL;
    float *xh = blas && type == LFM2_TYPE_F16 ? malloc(sizeof(float) * (size_t)k * (size_t)n_tok) : NULL;
    if (!wdata || !row || !x || !y || (blas && (!wf32 || !y_ours)) ||
        (blas && type == LFM2_TYPE_F16 && !xh))
        return cli_fail("bench", "out of memory");
    uint64_t s = 88172645463325252ull;
    for (int o = 0; o < n_out; o++) {
        for (int i = 0; i < k; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            row[i] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05;
        }
        lfm2_quantize(type, row, wdata + (size_t)o * rb, 1, k);
    }
    for (size_t i = 0; i < (size_t)k * n_tok; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    lfm2_tensor w = { .name = "bench", .type = type, .n_dims = 2, .ne = { k, n_out, 1, 1 },
                      .nb1 = rb, .data = wdata, .nbytes = rb * (size_t)n_out };
    if (blas) {   /* the values our kernels multiply: F16 weights widen exactly, and F16
                   * products take their input rounded to F16 (as llama.cpp's do) */
        lfm2_tensor_to_f32(&w, wf32);
        if (xh)
            for (size_t i = 0; i < (size_t)k * n_tok; i++)
                xh[i] = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(x[i]));
    }
    void *prep = NULL;
    if (prepared) {
        lfm2_tensor p;
        prep = lfm2_weights_prepare(&w, &p, false);
        if (prep)
            w = p;
        else
            fprintf(stderr, "lfm2 bench: %s has no prepared layout; timing it as stored\n", lfm2_type_name(type));
    }
    lfm2_pool *pool = lfm2_pool_new(n_threads);
    struct mm_run run = { .pool = pool, .w = &w, .x = x, .wf32 = wf32, .xb = xh ? xh : x, .y = y, .k = k,
                          .n_out = n_out, .n_tok = n_tok, .n_threads = lfm2_pool_n_threads(pool) };
    double med, cpu_min, diff = 0;
    int rc = 0;
    if (!blas)
        time_product(run_ours, &run, reps, &med, &cpu_min);
#ifdef LFM2_HAVE_OPENBLAS
    else {
        /* Our pool sleeps while sgemm runs on OpenBLAS's own threads, as many as ours. */
        p_set_threads(run.n_threads);
        run.y = y_ours;
        run_ours(&run);
        run.y = y;
        time_product(run_blas, &run, reps, &med, &cpu_min);
        /* Both sum the same F32 products in different orders: they must agree closely, or
         * the comparison is timing different work. */
        double ymax = 0;
        for (size_t i = 0; i < (size_t)n_out * n_tok; i++) {
            const double d = fabs((double)y[i] - y_ours[i]);
            if (d > diff) diff = d;
            if (fabs(y_ours[i]) > ymax) ymax = fabs(y_ours[i]);
        }
        diff = ymax > 0 ? diff / ymax : diff;
        if (!(diff <= 1e-4)) {
            fprintf(stderr, "lfm2 bench: OpenBLAS's result differs from lfm2_matmul's by %.3g "
                    "(relative to the largest output)\n", diff);
            rc = 1;
        }
    }
#endif
    const char *path = blas ? "openblas" : lfm2_cpu_path_name(lfm2_get_cpu_path());
    const double gmacs = (double)k * n_out * n_tok / (med * 1e-3) / 1e9;
    const double gbs = (double)rb * n_out / (med * 1e-3) / 1e9;
    if (json) {
        printf("{\"type\": \"%s\", \"k\": %d, \"n_out\": %d, \"n_tokens\": %d, \"threads\": %d, "
               "\"cpu_path\": \"%s\", \"ms\": %.4f, \"gmac_per_s\": %.2f, \"weight_gb_per_s\": %.2f",
               lfm2_type_name(type), k, n_out, n_tok, run.n_threads, path, med, gmacs, gbs);
        if (blas)
            printf(", \"max_rel_diff_vs_lfm2\": %.3g", diff);
        printf("}\n");
    } else {
        printf("matmul %s%s {%d, %d} × %d tokens, %d threads, %s: %.4f ms  %.1f GMAC/s  weights %.2f GB/s",
               lfm2_type_name(type), blas ? " (as F32 rows)" : prep ? " (prepared)" : "", k, n_out,
               n_tok, run.n_threads, path, med, gmacs, gbs);
        if (run.n_threads == 1)
            printf("  (best thread CPU time: %.4f ms, %.1f GMAC/s)", cpu_min,
                   (double)k * n_out * n_tok / (cpu_min * 1e-3) / 1e9);
        if (blas)
            printf("  max rel. diff vs lfm2_matmul %.2g", diff);
        printf("\n");
    }
    lfm2_pool_free(pool);
    lfm2_weights_free(prep);
    free(row);
    free(x);
    free(y);
    free(y_ours);
    free(xh);
    free(wf32);
    free(wdata);
    return rc;
}

/* ---- memory read bandwidth (the decode roofline) ---- */

struct bw_job {
    const uint64_t *buf;
    size_t words;
    uint64_t sink[64];
};

static void bw_task(void *arg, int ith, int nth)
{
    struct bw_job *j = arg;
    const size_t per = j->words / (size_t)nth;
    const uint64_t *p = j->buf + per * (size_t)ith;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= per; i += 4) {
        a ^= p[i];
        b ^= p[i + 1];
        c ^= p[i + 2];
        d ^= p[i + 3];
    }
    j->sink[ith & 63] = a ^ b ^ c ^ d;
}

static int bench_bandwidth(int n_threads, int mib, int reps, bool json)
{
    const size_t bytes = (size_t)mib << 20;
    void *mem = NULL;
    if (posix_memalign(&mem, 4096, bytes) != 0)
        return cli_fail("bench", "cannot allocate %d MiB", mib);
    memset(mem, 1, bytes);   /* fault every page in before timing */
    lfm2_pool *pool = lfm2_pool_new(n_threads);
    struct bw_job job = { .buf = mem, .words = bytes / 8 };
    double *gbs = calloc((size_t)reps, sizeof *gbs);
    lfm2_pool_run(pool, bw_task, &job);   /* warm-up */
    for (int r = 0; r < reps; r++) {
        const double t0 = lfm2_time_ms();
        lfm2_pool_run(pool, bw_task, &job);
        gbs[r] = bytes / ((lfm2_time_ms() - t0) * 1e-3) / 1e9;
    }
    const double med = median(gbs, reps);
    if (json)
        printf("{\"read_gb_per_s\": %.2f, \"threads\": %d, \"mib\": %d, \"repeats\": %d}\n", med,
               lfm2_pool_n_threads(pool), mib, reps);
    else
        printf("memory read bandwidth: %.2f GB/s (%d threads, %d MiB buffer, median of %d)\n", med,
               lfm2_pool_n_threads(pool), mib, reps);
    lfm2_pool_free(pool);
    free(gbs);
    free(mem);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *mm_type = NULL;
    int n_prompt = 512, n_gen = 128, n_threads = 2, reps = 3, k = 1024, n_out = 4608;
    bool json = false, prepared = false, bandwidth = false, blas = false;
    int mib = 1024;
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model, "FILE", "LFM2 GGUF file"),
        CLI_INT("-p", NULL, &n_prompt, 0, 1 << 20, "N", "prompt tokens (512; --matmul: tokens)"),
        CLI_INT("-n", NULL, &n_gen, 0, 1 << 20, "N", "generated tokens (128)"),
        CLI_INT("-t", NULL, &n_threads, 0, 1024, "N", "threads (2; 0 = all cores)"),
        CLI_INT("-r", NULL, &reps, 1, 1000, "N", "repeats after a warm-up (3)"),
        CLI_STR("--matmul", NULL, &mm_type, "TYPE", "one matrix product of TYPE weights instead"),
        CLI_INT("-k", NULL, &k, 1, 1 << 20, "N", "--matmul: input width (1024)"),
        CLI_INT("-o", NULL, &n_out, 1, 1 << 24, "N", "--matmul: output rows (4608)"),
        CLI_FLAG("--prepared", NULL, &prepared, "--matmul: the prepared (repacked) layout"),
        CLI_FLAG("--blas", NULL, &blas, "--matmul: OpenBLAS's sgemm on the same product"),
        CLI_FLAG("--bandwidth", NULL, &bandwidth, "memory read speed instead"),
        CLI_INT("--mib", NULL, &mib, 16, 1 << 16, "N", "--bandwidth: buffer size (1024)"),
        CLI_FLAG("--json", NULL, &json, "one JSON object"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "bench", "-m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]\n"
        "--matmul TYPE [-k 1024] [-o 4608] [-p 512] [-t 2] [-r 3] [--prepared] [--blas] [--json]\n"
        "--bandwidth [-t 2] [--mib 1024] [-r 3] [--json]",
        "  pp = one batch of -p tokens on an empty context; tg = -n single-token decodes;\n"
        "  each the median of -r runs after a warm-up. LFM2_CPU_PATH=scalar|avx2|avx512\n"
        "  forces a kernel path.\n",
    };
    const int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    if (bandwidth)
        return bench_bandwidth(n_threads, mib, reps, json);
    if (mm_type) {
        enum lfm2_type t = LFM2_TYPE_F32;
        if (parse_type(mm_type, &t))
            return 1;
        return bench_matmul(t, k, n_out, n_prompt > 0 ? n_prompt : 1, n_threads, reps, json,
                            prepared, blas);
    }
    if (!model)
        return cli_fail("bench", "-m MODEL is required (or --matmul TYPE)");
    if (n_prompt == 0 && n_gen == 0)
        return cli_fail("bench", "nothing to do: -p 0 and -n 0");
    return bench_model(model, n_prompt, n_gen, n_threads, reps, json);
}
