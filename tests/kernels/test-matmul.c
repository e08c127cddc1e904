/* test-matmul.c — every weight type through lfm2_matmul on one dispatch path (argv[1]):
 *
 *  1. activation formats: the path's quantizers give the same bytes as the reference
 *     (quants.c) on random rows, zero blocks and exact rounding ties;
 *  2. products against an independent double-precision reference built from the reference
 *     dequantizer and the same activation rounding (tight: float accumulation error only),
 *     and against plain float math on the unrounded input (loose: a proven bound on the
 *     activation rounding error);
 *  3. n = 1, 2, 7, 16, 33, 512 rows, odd output counts, strides with canaries, bias, multi,
 *     1–3 threads (bit-identical across thread counts);
 *  4. get_rows / tensor_to_f32 / tensor_slab against the reference dequantizer;
 *  5. the same for weights rearranged by lfm2_weights_prepare (16 rows interleaved);
 *  6. batch invariance: each token's output is bit-identical whether it is computed alone or
 *     in a batch of any size (prefill and decode must agree exactly);
 *  7. rows of NaN, infinities, huge, denormal and random-bit values: the activation formats
 *     match the reference bytes; a non-finite weight or input makes its outputs non-finite
 *     on every path; weights of random bytes run through every kernel (the sanitizer build
 *     checks that no input bits cause undefined behaviour).
 */
#include <float.h>
#include <stddef.h>

#include "test-common.h"

#include "kernels/kernels.h"
#include "lfm2-ops.h"
#include "quants.h"

static const enum lfm2_type k_types[] = {
    LFM2_TYPE_F32, LFM2_TYPE_F16, LFM2_TYPE_BF16, LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_0,
    LFM2_TYPE_Q4_1, LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1, LFM2_TYPE_Q4_K, LFM2_TYPE_Q5_K,
    LFM2_TYPE_Q6_K,
};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

struct weight {
    lfm2_tensor t;
    enum lfm2_type otype;   /* the original type (t.type may be a prepared layout) */
    void *data;
    float *deq;   /* reference dequantization, ne1 × ne0 */
};

static void make_weight(struct weight *w, enum lfm2_type type, int64_t k, int64_t n_out)
{
    float *src = malloc((size_t)(k * n_out) * sizeof(float));
    for (int64_t i = 0; i < k * n_out; i++) {
        src[i] = 0.02f * rng_normal();
        if (rng_u64() % 97 == 0)
            src[i] *= 8;   /* outliers stretch the block scales */
    }
    const size_t rb = lfm2_row_bytes(type, k);
    w->data = malloc(rb * (size_t)n_out);
    for (int64_t r = 0; r < n_out; r++)
        lfm2_quantize_row(type, src + r * k, (uint8_t *)w->data + r * rb, k);
    w->deq = malloc((size_t)(k * n_out) * sizeof(float));
    for (int64_t r = 0; r < n_out; r++)
        lfm2_dequantize_row(type, (uint8_t *)w->data + r * rb, w->deq + r * k, k);
    memset(&w->t, 0, sizeof w->t);
    w->otype = type;
    w->t.name = lfm2_type_name(type);
    w->t.type = type;
    w->t.n_dims = 2;
    w->t.ne[0] = k;
    w->t.ne[1] = n_out;
    w->t.ne[2] = w->t.ne[3] = 1;
    w->t.nb1 = rb;
    w->t.data = w->data;
    w->t.nbytes = rb * (size_t)n_out;
    free(src);
}

static void free_weight(struct weight *w)
{
    free(w->data);
    free(w->deq);
}

/* Activations: normal rows with a few spikes, one all-zero block, one row of exact ties. */
static void make_x(float *x, int64_t n, int64_t k, int64_t ldx)
{
    for (int64_t t = 0; t < n; t++) {
        for (int64_t i = 0; i < ldx; i++)
            x[t * ldx + i] = i < k ? rng_normal() : NAN;   /* padding must never be read */
        if (rng_u64() % 5 == 0)
            x[t * ldx + rng_u64() % k] *= 20;
        if (t % 3 == 1)
            for (int i = 0; i < 32; i++)
                x[t * ldx + 32 + i] = 0.0f;
    }
    if (n > 2)   /* amax 127 → scale 1: every x.5 is a tie (rounds to even) */
        for (int64_t i = 0; i < k; i++)
            x[2 * ldx + i] = (i % 32 == 0) ? 127.0f : (float)((int)(i % 17) - 8) + 0.5f;
}

/* How ggml rounds one activation row for `type`, as doubles; plus the Q8_1 block sums
 * s_b = fp16(d_b·Σq) that Q4_1/Q5_1 use in place of d·Σq. Independent of the kernels. */
static void ref_round(enum lfm2_type type, const float *x, int64_t k, double *xr, double *s)
{
    switch (type) {
    case LFM2_TYPE_F32:
        for (int64_t i = 0; i < k; i++) xr[i] = x[i];
        break;
    case LFM2_TYPE_F16:
        for (int64_t i = 0; i < k; i++) xr[i] = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(x[i]));
        break;
    case LFM2_TYPE_BF16:
        for (int64_t i = 0; i < k; i++) xr[i] = lfm2_bf16_to_fp32(lfm2_fp32_to_bf16(x[i]));
        break;
    case LFM2_TYPE_Q4_K: case LFM2_TYPE_Q5_K: case LFM2_TYPE_Q6_K: {
        block_q8_K *b = malloc((size_t)(k / QK_K) * sizeof *b);
        lfm2_quantize_row_q8_K(x, b, k);
        for (int64_t i = 0; i < k; i++) xr[i] = (double)b[i / QK_K].d * b[i / QK_K].qs[i % QK_K];
        free(b);
        break;
    }
    default: {   /* Q8_0 blocks */
        block_q8_0 *b = malloc((size_t)(k / 32) * sizeof *b);
        lfm2_quantize_row_q8_0(x, b, k);
        for (int64_t i = 0; i < k; i++)
            xr[i] = (double)lfm2_fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
        for (int64_t j = 0; j < k / 32; j++) {
            float amax = 0;
            int sum = 0;
            for (int i = 0; i < 32; i++) {
                amax = fmaxf(amax, fabsf(x[j * 32 + i]));
                sum += b[j].qs[i];
            }
            s[j] = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(amax / 127.f * (float)sum));
        }
        free(b);
    }
    }
}

/* Per-element bound on |rounded − x| (for the loose check against float math). */
static void round_bound(enum lfm2_type type, const float *x, int64_t k, double *eb)
{
    const int blk = (type == LFM2_TYPE_Q4_K || type == LFM2_TYPE_Q5_K || type == LFM2_TYPE_Q6_K) ? 256 : 32;
    for (int64_t i = 0; i < k; i++) {
        switch (type) {
        case LFM2_TYPE_F32: eb[i] = 0; break;
        case LFM2_TYPE_F16: eb[i] = fabs(x[i]) * (1.0 / 2048) + 6e-8; break;
        case LFM2_TYPE_BF16: eb[i] = fabs(x[i]) * (1.0 / 256) + 1e-38; break;
        default: {
            const int64_t b0 = i / blk * blk;
            float amax = 0;
            for (int j = 0; j < blk; j++) amax = fmaxf(amax, fabsf(x[b0 + j]));
            /* half a step, plus the fp16 rounding of the stored scale (|q| ≤ 127) */
            eb[i] = amax / 254.0 * 1.0001 + (blk == 32 ? 127 * amax / 127.0 / 2048 : 0);
        }
        }
    }
}

/* y_ref[t][o] for weight w (tight reference) and plain-math reference + bound. */
static void reference(const struct weight *w, const float *x, int64_t ldx, int64_t n,
                      double *tight, double *tight_mag, double *plain, double *bound)
{
    const int64_t k = w->t.ne[0], no = w->t.ne[1];
    double *xr = malloc((size_t)k * sizeof(double));
    double *s = malloc((size_t)(k / 32 + 1) * sizeof(double));
    double *eb = malloc((size_t)k * sizeof(double));
    const bool has_m = w->otype == LFM2_TYPE_Q4_1 || w->otype == LFM2_TYPE_Q5_1;
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * ldx;
        ref_round(w->otype, xt, k, xr, s);
        round_bound(w->otype, xt, k, eb);
        for (int64_t o = 0; o < no; o++) {
            const float *wr = w->deq + o * k;
            double acc = 0, mag = 0, pl = 0, bd = 0;
            for (int64_t i = 0; i < k; i++) {
                acc += (double)wr[i] * xr[i];
                mag += fabs((double)wr[i] * xr[i]);
                pl += (double)wr[i] * xt[i];
                bd += fabs((double)wr[i]) * eb[i];
            }
            if (has_m) {   /* replace m·d_x·Σq by m·s (ggml's Q8_1 block sum) */
                const size_t bsz = w->otype == LFM2_TYPE_Q4_1 ? sizeof(block_q4_1) : sizeof(block_q5_1);
                for (int64_t b = 0; b < k / 32; b++) {
                    const uint8_t *blk = (const uint8_t *)w->data + o * w->t.nb1 + b * bsz;
                    lfm2_fp16 mh;
                    memcpy(&mh, blk + 2, 2);
                    const double m = lfm2_fp16_to_fp32(mh);
                    double sx = 0;
                    for (int i = 0; i < 32; i++) sx += xr[b * 32 + i];
                    acc += m * (s[b] - sx);
                    bd += fabs(m * (s[b] - sx));   /* the plain sum has no s rounding */
                }
            }
            tight[t * no + o] = acc;
            tight_mag[t * no + o] = mag;
            plain[t * no + o] = pl;
            bound[t * no + o] = bd;
        }
    }
    free(xr);
    free(s);
    free(eb);
}

/* ---- 1. activation formats ---- */

/* The path's quantizers (and the scalar path's) against the references in quants.c, byte for
 * byte, for every format. */
static void check_act_row(const float *x, int64_t k, const char *what, int rep)
{
    const struct lfm2_kernels *kt = lfm2_kernels_get();
    const struct lfm2_kernels *ks = lfm2_kernels_for(LFM2_CPU_SCALAR);
    uint8_t *a = malloc(2 * (size_t)k + 64), *b = malloc(2 * (size_t)k + 64);
    for (int f = LFM2_ACT_F16; f < LFM2_ACT_COUNT; f++) {
        const size_t rb = lfm2_act_row_bytes(f, k);
        memset(a, 0xAB, rb);
        memset(b, 0xCD, rb);
        kt->act[f](x, a, k);
        switch (f) {
        case LFM2_ACT_Q8_0: lfm2_quantize_row_q8_0(x, b, k); break;
        case LFM2_ACT_Q8_1: lfm2_quantize_row_q8_1(x, b, k); break;
        case LFM2_ACT_Q8_K: lfm2_quantize_row_q8_K(x, b, k); break;
        case LFM2_ACT_F16:
            for (int64_t i = 0; i < k; i++) ((uint16_t *)b)[i] = lfm2_fp32_to_fp16(x[i]);
            break;
        case LFM2_ACT_BF16:
            for (int64_t i = 0; i < k; i++) ((uint16_t *)b)[i] = lfm2_fp32_to_bf16(x[i]);
            break;
        }
        CHECK(memcmp(a, b, rb) == 0, "activation format %d differs from the reference (%s %d)", f, what, rep);
        if (kt != ks) {
            ks->act[f](x, b, k);
            CHECK(memcmp(a, b, rb) == 0, "activation format %d differs from scalar (%s %d)", f, what, rep);
        }
    }
    free(a);
    free(b);
}

static void test_act_formats(void)
{
    const int64_t k = 1024;
    float *x = malloc(k * sizeof(float));
    for (int rep = 0; rep < 40; rep++) {
        for (int64_t i = 0; i < k; i++) x[i] = rng_normal() * (rep % 4 == 0 ? 1e-3f : 3.0f);
        if (rep % 3 == 0) for (int i = 0; i < 256; i++) x[256 + i] = 0;      /* zero blocks */
        if (rep % 5 == 0) for (int i = 0; i < 32; i++) x[i] = (i == 0 ? -127.0f : (float)(i % 9) - 3.5f);
        if (rep == 7) { x[3] = 1e4f; x[5] = -1e4f; }     /* ± equal magnitudes (Q8_K takes the first) */
        check_act_row(x, k, "rep", rep);
    }
    free(x);
}

/* Rows the model never should produce but a corrupt file can: NaN, infinities, values near
 * FLT_MAX, denormals, magnitudes around 127/FLT_MAX (where the Q8 multiplier overflows) and
 * random bit patterns, each filling a whole 256-element block (so Q8_K sees it too) in every
 * arrangement. Every path must give the reference bytes (quants.h: a non-finite block gets a
 * NaN scale, an overflowing multiplier a zero block), with no conversion or sum overflowing on
 * the way (the sanitizer build runs this). */
static float extreme_value(int pattern, int i)
{
    const float sign = (rng_u64() & 1) ? -1.0f : 1.0f;
    switch (pattern) {
    case 0: return rng_normal();
    case 1: return i == 17 ? NAN : rng_normal();
    case 2: return i == 200 ? INFINITY : rng_normal();
    case 3: return i == 3 ? -INFINITY : i == 4 ? NAN : rng_normal() * 1e30f;
    case 4: return sign * ldexpf(1.0f + (float)rng_unif(), 100 + (int)(rng_u64() % 28));   /* up to FLT_MAX */
    case 5: return sign * ldexpf((float)rng_unif(), -130 - (int)(rng_u64() % 19));         /* denormal */
    case 6: {   /* largest |x| at 127/FLT_MAX · (0.98 … 1.02): some blocks quantize, some are zero */
        const float t = 127.0f / FLT_MAX * (0.98f + 0.04f * (float)(rng_u64() % 9) / 8.0f);
        return i == 9 ? sign * t : sign * t * (float)rng_unif();
    }
    case 7: {   /* garbage bits */
        const uint32_t u = (uint32_t)rng_u64();
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: return (rng_u64() & 1) ? -0.0f : 0.0f;
    }
}

static void test_act_extremes(void)
{
    enum { NPAT = 9, NSB = 8 };
    const int64_t k = NSB * 256;
    float *x = malloc(k * sizeof(float));
    for (int rep = 0; rep < 3 * NPAT; rep++) {
        for (int sb = 0; sb < NSB; sb++)
            for (int i = 0; i < 256; i++)
                x[sb * 256 + i] = extreme_value((sb + rep) % NPAT, i);
        check_act_row(x, k, "extreme rep", rep);
    }
    free(x);
}

/* ---- 2/3. products ---- */

static void check_product(const struct weight *w, const float *x, int64_t ldx, const float *y,
                          int64_t ldy, int64_t n, const char *what)
{
    const int64_t no = w->t.ne[1];
    double *tight = malloc((size_t)(n * no) * sizeof(double));
    double *mag = malloc((size_t)(n * no) * sizeof(double));
    double *plain = malloc((size_t)(n * no) * sizeof(double));
    double *bound = malloc((size_t)(n * no) * sizeof(double));
    reference(w, x, ldx, n, tight, mag, plain, bound);
    int bad = 0;
    double worst = 0;
    for (int64_t t = 0; t < n && bad < 3; t++) {
        for (int64_t o = 0; o < no && bad < 3; o++) {
            const double got = y[t * ldy + o], ref = tight[t * no + o];
            /* float accumulation over ≤ k/16 partial sums; K-quant/Q4_1 dequant rounding */
            const double tol = 4e-6 * mag[t * no + o] + 1e-30;
            const double err = fabs(got - ref);
            if (err / (mag[t * no + o] + 1e-30) > worst) worst = err / (mag[t * no + o] + 1e-30);
            if (!(err <= tol)) {
                CHECK(0, "%s %s n=%lld: y[%lld][%lld] = %.9g, reference %.9g (|Δ| %.3g > %.3g)",
                      lfm2_type_name(w->otype), what, (long long)n, (long long)t, (long long)o,
                      got, ref, err, tol);
                bad++;
            }
            const double perr = fabs(got - plain[t * no + o]);
            const double ptol = bound[t * no + o] + 1e-5 * mag[t * no + o] + 1e-30;
            if (!(perr <= ptol)) {
                CHECK(0, "%s %s n=%lld: y[%lld][%lld] = %.9g, float math %.9g (|Δ| %.3g > bound %.3g)",
                      lfm2_type_name(w->otype), what, (long long)n, (long long)t, (long long)o,
                      got, plain[t * no + o], perr, ptol);
                bad++;
            }
        }
    }
    free(tight);
    free(mag);
    free(plain);
    free(bound);
}

/* prepare=1: run on the layout made by lfm2_weights_prepare (when the type has one).
 * Shapes: 67 outputs (four whole groups of 16 and a partial one: the decode kernels' sets of
 * four groups, then one left) and 167 (ten whole groups and a partial one, split between the
 * threads). */
static void test_products_shape(lfm2_pool *pool, int prepare, int64_t k, int64_t no)
{
    static const int64_t ns[] = { 1, 2, 7, 16, 33, 512 };
    for (int ti = 0; ti < N_TYPES; ti++) {
        const enum lfm2_type type = k_types[ti];
        if (k % lfm2_type_block_elems(type) != 0)
            continue;
        struct weight w;
        make_weight(&w, type, k, no);
        void *mem = NULL;
        if (prepare) {
            lfm2_tensor p;
            mem = lfm2_weights_prepare(&w.t, &p, false);
            if (!mem) {
                free_weight(&w);
                continue;
            }
            CHECK(p.ne[0] == k && p.ne[1] == no, "%s: prepared shape", lfm2_type_name(type));
            w.t = p;
        }
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            const int64_t n = ns[ni];
            const int64_t ldx = k + 13, ldy = no + 5;
            float *x = malloc((size_t)(n * ldx) * sizeof(float));
            float *y = malloc((size_t)(n * ldy) * sizeof(float));
            make_x(x, n, k, ldx);
            for (int64_t i = 0; i < n * ldy; i++) y[i] = 12345.0f;
            lfm2_matmul(pool, &w.t, x, ldx, y, ldy, n);
            check_product(&w, x, ldx, y, ldy, n, prepare ? "prepared" : "matmul");
            for (int64_t t = 0; t < n; t++)
                for (int64_t o = no; o < ldy; o++)
                    CHECK(y[t * ldy + o] == 12345.0f, "%s: stride padding y[%lld][%lld] overwritten",
                          lfm2_type_name(type), (long long)t, (long long)o);
            free(x);
            free(y);
        }
        /* batch invariance: tokens one at a time vs batches of every size */
        {
            const int64_t n = 40, ldx = k + 3;
            float *x = malloc((size_t)(n * ldx) * sizeof(float));
            float *y1 = malloc((size_t)(n * no) * sizeof(float));
            float *yb = malloc((size_t)(n * no) * sizeof(float));
            make_x(x, n, k, ldx);
            for (int64_t t = 0; t < n; t++)
                lfm2_matmul(pool, &w.t, x + t * ldx, ldx, y1 + t * no, no, 1);
            static const int64_t bs[] = { 2, 3, 7, 16, 17, 40 };
            for (size_t bi = 0; bi < sizeof bs / sizeof bs[0]; bi++) {
                for (int64_t t0 = 0; t0 < n; t0 += bs[bi]) {
                    const int64_t m = n - t0 < bs[bi] ? n - t0 : bs[bi];
                    lfm2_matmul(pool, &w.t, x + t0 * ldx, ldx, yb + t0 * no, no, m);
                }
                CHECK(memcmp(y1, yb, (size_t)(n * no) * sizeof(float)) == 0,
                      "%s%s: batches of %lld differ from one token at a time", lfm2_type_name(type),
                      prepare ? " (prepared)" : "", (long long)bs[bi]);
            }
            free(x);
            free(y1);
            free(yb);
        }
        if (mem) {
            /* row access on the prepared layout */
            float *all = malloc((size_t)(k * no) * sizeof(float));
            lfm2_tensor_to_f32(&w.t, all);
            CHECK(memcmp(all, w.deq, (size_t)(k * no) * sizeof(float)) == 0, "%s (prepared): tensor_to_f32",
                  lfm2_type_name(type));
            const int32_t ids[3] = { (int32_t)no - 1, 0, 17 };
            float *out = malloc(3 * (size_t)k * sizeof(float));
            lfm2_get_rows(&w.t, ids, 3, out);
            for (int i = 0; i < 3; i++)
                CHECK(memcmp(out + i * k, w.deq + ids[i] * k, (size_t)k * sizeof(float)) == 0,
                      "%s (prepared): get_rows %d", lfm2_type_name(type), ids[i]);
            free(out);
            free(all);
            lfm2_weights_free(mem);
        }
        free_weight(&w);
    }
}

static void test_products(lfm2_pool *pool, int prepare)
{
    test_products_shape(pool, prepare, 512, 67);
    test_products_shape(pool, prepare, 256, 167);
    /* k not a multiple of 16: the float kernels' tails (types with larger blocks skip it);
     * an even (205) and an odd (213, 208) number of whole 16-element chunks, with and without
     * a tail: the in-place F16 kernels alternate two partial sums by chunk; the same for
     * the in-place BF16 kernels' 32-element chunks: 101 (3 chunks and a tail), 224 (7, none),
     * 205 (6 and a tail) */
    test_products_shape(pool, prepare, 205, 37);
    test_products_shape(pool, prepare, 213, 37);
    test_products_shape(pool, prepare, 208, 37);
    test_products_shape(pool, prepare, 101, 37);
    test_products_shape(pool, prepare, 224, 37);
}

/* F16 activation rounding, exactly: with one-hot F16 rows (row r = 1.0 at column r) each output
 * is one input rounded to fp16 and back (plus exact zeros), so it must equal the reference
 * conversion exactly — ties to even, subnormals — on this path's original and prepared layouts.
 * k = 70 leaves a tail after the vector loops. */
static void test_f16_rounding(lfm2_pool *pool)
{
    enum { K = 70, N = 3 };
    uint16_t *wd = calloc((size_t)K * K, sizeof *wd);
    for (int r = 0; r < K; r++)
        wd[r * K + r] = lfm2_fp32_to_fp16(1.0f);
    lfm2_tensor w = { .name = "onehot", .type = LFM2_TYPE_F16, .n_dims = 2, .ne = { K, K, 1, 1 },
                      .nb1 = K * 2, .data = wd, .nbytes = (size_t)K * K * 2 };
    float x[N * K], y[N * K];
    for (int t = 0; t < N; t++)
        for (int i = 0; i < K; i++) {
            const int j = t * K + i;
            switch (i % 7) {
            case 0: x[j] = 1.0f + (float)(2 * (j % 5) + 1) * 0x1p-11f; break;   /* ties */
            case 1: x[j] = ldexpf(1.0f + (float)(j % 3) * 0.25f, -15 - j % 11); break;   /* subnormal */
            case 2: x[j] = (float)(j % 2 ? 0x1p-25 : 0x1.8p-24); break;   /* ties at the bottom */
            case 3: x[j] = -0.0f; break;
            case 4: x[j] = 65504.0f - (float)(j % 9) * 3.0f; break;
            default: x[j] = (float)rng_normal() * 10.0f; break;
            }
        }
    for (int prepare = 0; prepare < 2; prepare++) {
        lfm2_tensor p = w;
        void *mem = prepare ? lfm2_weights_prepare(&w, &p, false) : NULL;
        if (prepare && !mem)
            continue;
        for (int n = 1; n <= N; n += N - 1) {
            lfm2_matmul(pool, &p, x, K, y, K, n);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < K; r++) {
                    const float want = lfm2_fp16_to_fp32(lfm2_fp32_to_fp16(x[t * K + r]));
                    CHECK(y[t * K + r] == want,   /* == : the +0 terms of the sum make −0 +0 */
                          "F16 %s n=%d: x = %a rounds to %a, want %a", prepare ? "prepared" : "as stored",
                          n, (double)x[t * K + r], (double)y[t * K + r], (double)want);
                }
        }
        lfm2_weights_free(mem);
    }
    free(wd);
}

/* 3-D (expert) tensors: prepared slabs multiply like the original slabs (80 rows: five groups
 * per slab), and their rows read back. */
static void test_prepared_slabs(lfm2_pool *pool)
{
    const enum lfm2_type types[3] = { LFM2_TYPE_Q4_0, LFM2_TYPE_F16, LFM2_TYPE_Q6_K };
    for (int ti = 0; ti < 3; ti++) {
        const int64_t k = 256, rows = 80, ns = 3;
        struct weight w;
        make_weight(&w, types[ti], k, rows * ns);
        lfm2_tensor t3 = w.t, p;
        t3.n_dims = 3;
        t3.ne[1] = rows;
        t3.ne[2] = ns;
        void *mem = lfm2_weights_prepare(&t3, &p, false);
        CHECK(mem != NULL, "%s: 3-D prepare", lfm2_type_name(types[ti]));
        if (!mem) {
            free_weight(&w);
            continue;
        }
        float x[5 * 256], y0[5 * 80], y1[5 * 80];
        make_x(x, 5, k, k);
        for (int64_t s = 0; s < ns; s++) {
            lfm2_tensor a = lfm2_tensor_slab(&t3, s), b = lfm2_tensor_slab(&p, s);
            lfm2_matmul(pool, &a, x, k, y0, rows, 5);
            lfm2_matmul(pool, &b, x, k, y1, rows, 5);
            for (int t = 0; t < 5; t++)
                for (int o = 0; o < rows; o++) {
                    double mag = 0;   /* Σ|w·x|: the scale of float summation error */
                    for (int64_t i = 0; i < k; i++)
                        mag += fabs((double)w.deq[(s * rows + o) * k + i] * x[t * k + i]);
                    const int i = t * (int)rows + o;
                    CHECK(fabs(y0[i] - y1[i]) <= 4e-6 * mag, "%s: slab %lld output %d: %g vs %g",
                          lfm2_type_name(types[ti]), (long long)s, i, y0[i], y1[i]);
                }
        }
        const int32_t ids[4] = { 0, (int32_t)rows + 70, 2 * (int32_t)rows + 63, (int32_t)rows * 3 - 1 };
        float got[4 * 256];
        lfm2_get_rows(&p, ids, 4, got);
        for (int i = 0; i < 4; i++)
            CHECK(memcmp(got + i * k, w.deq + ids[i] * k, (size_t)k * sizeof(float)) == 0,
                  "%s: prepared 3-D get_rows %d", lfm2_type_name(types[ti]), ids[i]);
        /* a 3-D tensor whose slabs are not 16-row aligned is left as it is */
        lfm2_tensor t4 = w.t;
        t4.n_dims = 3;
        t4.ne[1] = 24;
        t4.ne[2] = 4;
        CHECK(lfm2_weights_prepare(&t4, &p, false) == NULL && p.data == t4.data, "unaligned slabs prepared");
        lfm2_weights_free(mem);
        free_weight(&w);
    }
}

/* Bias, multi, and thread-count invariance. */
static void test_multi_bias(void)
{
    const int64_t k = 256, n = 19;
    const enum lfm2_type mt[3] = { LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_K, LFM2_TYPE_F16 };
    const int64_t nos[3] = { 40, 24, 9 };
    struct weight w[3];
    for (int j = 0; j < 3; j++) make_weight(&w[j], mt[j], k, nos[j]);
    float *x = malloc((size_t)(n * k) * sizeof(float));
    make_x(x, n, k, k);
    float *ref[3], *got[3];
    lfm2_pool *p1 = lfm2_pool_new(1), *p2 = lfm2_pool_new(2), *p3 = lfm2_pool_new(3);
    for (int j = 0; j < 3; j++) {
        ref[j] = malloc((size_t)(n * nos[j]) * sizeof(float));
        got[j] = malloc((size_t)(n * nos[j]) * sizeof(float));
        lfm2_matmul(p1, &w[j].t, x, k, ref[j], nos[j], n);
    }
    lfm2_pool *pools[3] = { p1, p2, p3 };
    for (int pi = 0; pi < 3; pi++) {
        const lfm2_tensor *ws[3] = { &w[0].t, &w[1].t, &w[2].t };
        const int64_t ldys[3] = { nos[0], nos[1], nos[2] };
        lfm2_matmul_multi(pools[pi], 3, ws, x, k, got, ldys, n);
        for (int j = 0; j < 3; j++)
            CHECK(memcmp(got[j], ref[j], (size_t)(n * nos[j]) * sizeof(float)) == 0,
                  "multi with %d threads: weight %d differs from a single 1-thread matmul", pi + 1, j);
        for (int j = 0; j < 3; j++) {
            lfm2_matmul(pools[pi], &w[j].t, x, k, got[j], nos[j], n);
            CHECK(memcmp(got[j], ref[j], (size_t)(n * nos[j]) * sizeof(float)) == 0,
                  "matmul with %d threads differs from 1 thread (weight %d)", pi + 1, j);
        }
        float *b = malloc((size_t)nos[0] * sizeof(float));
        for (int64_t o = 0; o < nos[0]; o++) b[o] = rng_normal();
        lfm2_matmul_bias(pools[pi], &w[0].t, b, x, k, got[0], nos[0], n);
        for (int64_t t = 0; t < n; t++)
            for (int64_t o = 0; o < nos[0]; o++)
                CHECK(got[0][t * nos[0] + o] == ref[0][t * nos[0] + o] + b[o],
                      "bias: y[%lld][%lld]", (long long)t, (long long)o);
        /* multi with biases: weight 0 and 2 biased, weight 1 not */
        float *b2 = malloc((size_t)nos[2] * sizeof(float));
        for (int64_t o = 0; o < nos[2]; o++) b2[o] = rng_normal();
        const float *bs[3] = { b, NULL, b2 };
        lfm2_matmul_multi_bias(pools[pi], 3, ws, bs, x, k, got, ldys, n);
        for (int j = 0; j < 3; j++)
            for (int64_t t = 0; t < n; t++)
                for (int64_t o = 0; o < nos[j]; o++)
                    CHECK(got[j][t * nos[j] + o] == ref[j][t * nos[j] + o] + (bs[j] ? bs[j][o] : 0.0f),
                          "multi_bias with %d threads: weight %d y[%lld][%lld]", pi + 1, j, (long long)t,
                          (long long)o);
        free(b2);
        free(b);
    }
    lfm2_pool_free(p1);
    lfm2_pool_free(p2);
    lfm2_pool_free(p3);
    for (int j = 0; j < 3; j++) {
        free(ref[j]);
        free(got[j]);
        free_weight(&w[j]);
    }
    free(x);
}

/* ---- 4. row access ---- */

static void test_rows(void)
{
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int64_t k = 256, no = 10;
        struct weight w;
        make_weight(&w, k_types[ti], k, no);
        float *all = malloc((size_t)(k * no) * sizeof(float));
        lfm2_tensor_to_f32(&w.t, all);
        CHECK(memcmp(all, w.deq, (size_t)(k * no) * sizeof(float)) == 0, "%s: tensor_to_f32",
              lfm2_type_name(k_types[ti]));
        const int32_t ids[4] = { 9, 0, 3, 3 };
        float out[4 * 256];
        lfm2_get_rows(&w.t, ids, 4, out);
        for (int i = 0; i < 4; i++)
            CHECK(memcmp(out + i * k, w.deq + ids[i] * k, k * sizeof(float)) == 0,
                  "%s: get_rows row %d", lfm2_type_name(k_types[ti]), ids[i]);
        /* a 3-D view: 10 rows as 5 slabs of 2 */
        lfm2_tensor t3 = w.t;
        t3.n_dims = 3;
        t3.ne[1] = 2;
        t3.ne[2] = 5;
        lfm2_tensor s = lfm2_tensor_slab(&t3, 3);
        CHECK(s.ne[1] == 2 && s.ne[2] == 1 && s.n_dims == 2 && s.nbytes == 2 * w.t.nb1,
              "slab shape");
        float sl[2 * 256];
        lfm2_tensor_to_f32(&s, sl);
        CHECK(memcmp(sl, w.deq + 6 * k, 2 * k * sizeof(float)) == 0, "%s: slab 3 content",
              lfm2_type_name(k_types[ti]));
        free(all);
        free_weight(&w);
    }
}

/* Batches walk the prepared rows in L2-sized panels while the token tiles pass; here each of
 * the two threads gets several panels (F16 at k = 1024 holds 8 groups of 16 rows per panel,
 * Q8_0 15), so every output of a batch must still equal the one-token product exactly and
 * the reference within the bound. The second shape: k of 40 blocks, an odd number of groups
 * and a last group of 11 rows, 22 tokens (a tail after the tiles). */
static void test_panels(lfm2_pool *pool)
{
    static const enum lfm2_type types[] = { LFM2_TYPE_F16, LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_K };
    static const int64_t shapes[][3] = { { 1024, 600, 21 }, { 1280, 587, 22 } };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int64_t k = shapes[si][0], no = shapes[si][1], n = shapes[si][2];
        struct weight w;
        make_weight(&w, types[ti], k, no);
        lfm2_tensor p;
        void *mem = lfm2_weights_prepare(&w.t, &p, false);
        CHECK(mem != NULL, "%s: prepared", lfm2_type_name(types[ti]));
        if (!mem) {
            free_weight(&w);
            continue;
        }
        w.t = p;
        float *x = malloc((size_t)(n * k) * sizeof(float));
        float *y1 = malloc((size_t)(n * no) * sizeof(float));
        float *yb = malloc((size_t)(n * no) * sizeof(float));
        make_x(x, n, k, k);
        for (int64_t i = 0; i < n * no; i++) {
            y1[i] = NAN;
            yb[i] = 12345.0f;
        }
        for (int64_t t = 0; t < n; t++)
            lfm2_matmul(pool, &w.t, x + t * k, k, y1 + t * no, no, 1);
        lfm2_matmul(pool, &w.t, x, k, yb, no, n);
        CHECK(memcmp(y1, yb, (size_t)(n * no) * sizeof(float)) == 0,
              "%s (prepared): a batch of %lld across row panels differs from one token at a time",
              lfm2_type_name(types[ti]), (long long)n);
        check_product(&w, x, k, yb, no, n, "panels");
        free(x);
        free(y1);
        free(yb);
        lfm2_weights_free(mem);
        free_weight(&w);
    }
}

/* ---- 7. non-finite weights and inputs ----
 * A NaN or an infinity in a weight (a block scale, or an element of a float type) or in an
 * activation makes every output it enters non-finite, on every path, stored or prepared, for
 * one token or a batch: the model's non-finite check (lfm2_decode) relies on it. Outputs it
 * does not enter stay finite. Finite values whose sums pass FLT_MAX may overflow in one
 * summation order and not another, so huge finite inputs are only run (for the sanitizers). */

/* Puts v (NaN or ±inf) into weight row r: the scale of its first block, or its element 3. */
static void poison_row(struct weight *w, int64_t r, float v)
{
    uint8_t *row = (uint8_t *)w->data + (size_t)r * w->t.nb1;
    const lfm2_fp16 h = lfm2_fp32_to_fp16(v);
    switch (w->otype) {
    case LFM2_TYPE_F32: memcpy(row + 12, &v, 4); break;
    case LFM2_TYPE_F16: memcpy(row + 6, &h, 2); break;
    case LFM2_TYPE_BF16: {
        const uint16_t b = lfm2_fp32_to_bf16(v);
        memcpy(row + 6, &b, 2);
        break;
    }
    case LFM2_TYPE_Q6_K: memcpy(row + offsetof(block_q6_K, d), &h, 2); break;
    default: memcpy(row, &h, 2); break;   /* d leads every other block */
    }
}

static bool row_finite(const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return false;
    return true;
}

static void test_nonfinite(lfm2_pool *pool)
{
    const int64_t k = 256, no = 37, n = 4;
    const int64_t bad_rows[2] = { 5, 20 };   /* NaN, +inf */
    float *x = malloc((size_t)(n * k) * sizeof(float));
    float *y = malloc((size_t)(n * no) * sizeof(float));
    float *y1 = malloc((size_t)no * sizeof(float));
    for (int ti = 0; ti < N_TYPES; ti++) {
        for (int prepare = 0; prepare < 2; prepare++) {
            const enum lfm2_type type = k_types[ti];
            struct weight w;
            make_weight(&w, type, k, no);
            poison_row(&w, bad_rows[0], NAN);
            poison_row(&w, bad_rows[1], INFINITY);
            void *mem = NULL;
            if (prepare) {
                lfm2_tensor p;
                if (!(mem = lfm2_weights_prepare(&w.t, &p, false))) {
                    free_weight(&w);
                    continue;
                }
                w.t = p;
            }
            /* tokens: clean, one NaN, one −inf, huge but finite */
            for (int64_t i = 0; i < n * k; i++)
                x[i] = rng_normal();
            x[1 * k + 7] = NAN;
            x[2 * k + 100] = -INFINITY;
            for (int64_t i = 0; i < k; i++)
                x[3 * k + i] *= 1e30f;
            const char *how = prepare ? "prepared" : "as stored";
            lfm2_matmul(pool, &w.t, x, k, y, no, n);
            for (int64_t t = 0; t < n; t++) {
                lfm2_matmul(pool, &w.t, x + t * k, k, y1, no, 1);   /* one token (decode) */
                for (int64_t o = 0; o < no; o++) {
                    const bool bad_w = o == bad_rows[0] || o == bad_rows[1];
                    const bool fin = isfinite(y[t * no + o]), fin1 = isfinite(y1[o]);
                    if (t == 1 || t == 2 || bad_w)
                        CHECK(!fin && !fin1, "%s %s: output [%lld][%lld] is finite (%g, one token %g) with a "
                              "non-finite %s", lfm2_type_name(type), how, (long long)t, (long long)o,
                              y[t * no + o], y1[o], bad_w ? "weight" : "input");
                    else if (t == 0)
                        CHECK(fin && fin1, "%s %s: clean output [0][%lld] is not finite", lfm2_type_name(type),
                              how, (long long)o);
                }
            }
            lfm2_weights_free(mem);
            free_weight(&w);
        }
    }
    free(x);
    free(y);
    free(y1);
}

/* Weights of random bytes (a corrupt or shifted file) through every kernel: whatever the bits,
 * no undefined behaviour (the sanitizer build runs this) and a row whose reference
 * dequantization holds a NaN or an infinity gives non-finite outputs. */
static void test_garbage_weights(lfm2_pool *pool)
{
    const int64_t k = 512, no = 37, n = 3;
    float *x = malloc((size_t)(n * k) * sizeof(float));
    float *y = malloc((size_t)(n * no) * sizeof(float));
    float *deq = malloc((size_t)k * sizeof(float));
    for (int64_t i = 0; i < n * k; i++)
        x[i] = rng_normal();
    for (int ti = 0; ti < N_TYPES; ti++) {
        const enum lfm2_type type = k_types[ti];
        const size_t rb = lfm2_row_bytes(type, k);
        uint8_t *data = malloc(rb * (size_t)no);
        for (size_t i = 0; i < rb * (size_t)no; i++)
            data[i] = (uint8_t)rng_u64();
        lfm2_tensor t = { .name = "garbage", .type = type, .n_dims = 2, .ne = { k, no, 1, 1 },
                          .nb1 = rb, .data = data, .nbytes = rb * (size_t)no };
        for (int prepare = 0; prepare < 2; prepare++) {
            lfm2_tensor p = t;
            void *mem = prepare ? lfm2_weights_prepare(&t, &p, false) : NULL;
            if (prepare && !mem)
                continue;
            lfm2_matmul(pool, &p, x, k, y, no, n);
            for (int64_t o = 0; o < no; o++) {
                lfm2_dequantize_row(type, data + (size_t)o * rb, deq, k);
                if (row_finite(deq, k))
                    continue;
                for (int64_t tk = 0; tk < n; tk++)
                    CHECK(!isfinite(y[tk * no + o]), "%s%s garbage row %lld has a non-finite weight but output "
                          "[%lld] = %g", lfm2_type_name(type), prepare ? " (prepared)" : "", (long long)o,
                          (long long)tk, y[tk * no + o]);
            }
            lfm2_weights_free(mem);
        }
        free(data);
    }
    free(x);
    free(y);
    free(deq);
}

int main(int argc, char **argv)
{
    select_path(argc, argv);
    lfm2_pool *pool = lfm2_pool_new(2);
    test_act_formats();
    test_act_extremes();
    test_products(pool, 0);
    test_products(pool, 1);
    test_prepared_slabs(pool);
    test_panels(pool);
    test_f16_rounding(pool);
    test_multi_bias();
    test_rows();
    test_nonfinite(pool);
    test_garbage_weights(pool);
    lfm2_pool_free(pool);
    return test_result("test-matmul");
}
