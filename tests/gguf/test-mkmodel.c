/* test-mkmodel.c — the random-model generator (tools/mkmodel.c, linked in).
 *
 * - Every fixture model (written by the fixtures' own generator, then loaded by llama.cpp) is
 *   regenerated with `lfm2 mkmodel` for the same config and type: the key set, key order,
 *   value types and values (except the name and the learned merges), the tensor names,
 *   order, shapes and types must be identical; the projector file too.
 * - Same seed → same bytes, whatever the thread count; another seed → other weights.
 * - Weights follow the documented distributions; the tokenizer is a valid byte-level BPE.
 * - The big configs have the published parameter counts (LFM2-350M … 2.6B).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lfm2-gguf.h"
#include "lfm2.h"
#include "quants.h"

int64_t mkmodel_param_count(const char *config_name);   /* tools/mkmodel.c */

#include "lfm2-test.h"

static char g_tmp[256];

static const char *tmp(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_tmp, name);
    return p[k];
}

/* Runs `lfm2 mkmodel` with the given arguments (NULL-terminated). */
static int mkmodel(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"mkmodel";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return cmd_mkmodel(argc, argv);
}

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)len + 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* ---- layout comparison against a fixture ---------------------------------------------------- */

static void compare_layout(const char *gen_path, const char *ref_path, const char *what)
{
    lfm2_gguf *a = lfm2_gguf_open(gen_path, true), *b = lfm2_gguf_open(ref_path, true);
    CHECK(a != NULL, "%s: generated file does not load: %s", what, lfm2_last_error());
    CHECK(b != NULL, "%s: fixture does not load: %s", what, lfm2_last_error());
    if (!a || !b) {
        lfm2_gguf_close(a);
        lfm2_gguf_close(b);
        return;
    }
    CHECK(lfm2_gguf_n_kv(a) == lfm2_gguf_n_kv(b), "%s: %" PRId64 " keys, fixture has %" PRId64, what,
          lfm2_gguf_n_kv(a), lfm2_gguf_n_kv(b));
    static char fa[1 << 16], fb[1 << 16];
    for (int64_t i = 0; i < lfm2_gguf_n_kv(a) && i < lfm2_gguf_n_kv(b); i++) {
        const char *k = lfm2_gguf_kv_key(b, i);
        CHECK(strcmp(lfm2_gguf_kv_key(a, i), k) == 0, "%s: key %" PRId64 " is '%s', fixture has '%s'", what, i,
              lfm2_gguf_kv_key(a, i), k);
        CHECK(lfm2_gguf_kv_type(a, i) == lfm2_gguf_kv_type(b, i), "%s: key '%s' has type %s, fixture %s", what, k,
              lfm2_gguf_type_name(lfm2_gguf_kv_type(a, i)), lfm2_gguf_type_name(lfm2_gguf_kv_type(b, i)));
        enum lfm2_gguf_type ea, eb;
        uint64_t na, nb;
        if (lfm2_gguf_kv_type(b, i) == LFM2_GGUF_ARRAY && lfm2_gguf_get_arr(a, k, &ea, &na) == 1 &&
            lfm2_gguf_get_arr(b, k, &eb, &nb) == 1) {
            CHECK(ea == eb, "%s: array '%s' of %s, fixture of %s", what, k, lfm2_gguf_type_name(ea),
                  lfm2_gguf_type_name(eb));
            CHECK(na == nb, "%s: array '%s' has %" PRIu64 " elements, fixture %" PRIu64, what, k, na, nb);
        }
        if (strcmp(k, "general.name") == 0 || strcmp(k, "tokenizer.ggml.merges") == 0)
            continue;   /* the name and the learned merges are ours */
        if (strcmp(k, "tokenizer.ggml.tokens") == 0) {
            /* control tokens, bytes and VL markers identical; merge tokens are ours */
            uint64_t n = 0;
            lfm2_gguf_get_arr(b, k, NULL, &n);
            int bad = 0;
            for (uint64_t t = 0; t < n; t++) {
                size_t la, lb;
                const char *sa = lfm2_gguf_arr_str(a, k, t, &la), *sb = lfm2_gguf_arr_str(b, k, t, &lb);
                bool fixed = t < 276 || (lb > 2 && sb[0] == '<' && sb[1] == '|');
                if (fixed && (!sa || la != lb || memcmp(sa, sb, la) != 0))
                    bad++;
            }
            CHECK(bad == 0, "%s: %d special/byte tokens differ from the fixture", what, bad);
            continue;
        }
        lfm2_gguf_kv_format(a, i, fa, sizeof fa, sizeof fa);
        lfm2_gguf_kv_format(b, i, fb, sizeof fb, sizeof fb);
        CHECK(strcmp(fa, fb) == 0, "%s: key '%s' = %.200s, fixture %.200s", what, k, fa, fb);
    }
    CHECK(lfm2_gguf_n_tensors(a) == lfm2_gguf_n_tensors(b), "%s: %" PRId64 " tensors, fixture %" PRId64, what,
          lfm2_gguf_n_tensors(a), lfm2_gguf_n_tensors(b));
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(a) && i < lfm2_gguf_n_tensors(b); i++) {
        const lfm2_tensor *ta = lfm2_gguf_tensor(a, i), *tb = lfm2_gguf_tensor(b, i);
        CHECK(strcmp(ta->name, tb->name) == 0 && ta->type == tb->type && ta->n_dims == tb->n_dims &&
              memcmp(ta->ne, tb->ne, sizeof ta->ne) == 0,
              "%s: tensor %" PRId64 " is %s %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "], fixture %s %s [%" PRId64
              ", %" PRId64 ", %" PRId64 ", %" PRId64 "]",
              what, i, ta->name, lfm2_type_name(ta->type), ta->ne[0], ta->ne[1], ta->ne[2], ta->ne[3], tb->name,
              lfm2_type_name(tb->type), tb->ne[0], tb->ne[1], tb->ne[2], tb->ne[3]);
    }
    lfm2_gguf_close(a);
    lfm2_gguf_close(b);
}

static void test_fixture_layouts(const char *dir)
{
    static const struct { const char *config, *type, *fixture; } cases[] = {
        { "tiny", "f32", "text/tiny-f32/lfm2-tiny-f32.gguf" },
        { "tiny", "f16", "text/tiny-f16/lfm2-tiny-f16.gguf" },
        { "tiny", "q8_0", "text/tiny-q8_0/lfm2-tiny-q8_0.gguf" },
        { "tiny", "q4_0", "text/tiny-q4_0/lfm2-tiny-q4_0.gguf" },
        { "small", "f32", "text/small-f32/lfm2-small-f32.gguf" },
        { "small", "q8_0", "text/small-q8_0/lfm2-small-q8_0.gguf" },
        { "small", "q4_k_m", "text/small-q4_k_m/lfm2-small-q4_k_m.gguf" },
        { "moe-tiny", "q8_0", "text/moe/tiny-moe-q8_0/lfm2moe-tiny-q8_0.gguf" },
    };
    char ref[1024], what[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = tmp("gen.gguf");
        snprintf(what, sizeof what, "%s %s", cases[i].config, cases[i].type);
        int rc = mkmodel("--config", cases[i].config, "--type", cases[i].type, "-o", out, NULL);
        CHECK(rc == 0, "%s: mkmodel failed", what);
        if (rc != 0)
            continue;
        snprintf(ref, sizeof ref, "%s/%s", dir, cases[i].fixture);
        compare_layout(out, ref, what);
        unlink(out);
    }
    /* the LFM2-VL pair */
    const char *out = tmp("vl.gguf"), *mm = tmp("mmproj.gguf");
    int rc = mkmodel("--config", "vl-tiny", "--type", "q4_0", "-o", out, "--mmproj-out", mm, NULL);
    CHECK(rc == 0, "vl-tiny: mkmodel failed");
    if (rc == 0) {
        snprintf(ref, sizeof ref, "%s/vision/lfm2-vl-tiny-text-q4_0.gguf", dir);
        compare_layout(out, ref, "vl-tiny backbone");
        snprintf(ref, sizeof ref, "%s/vision/lfm2-vl-tiny-mmproj-f32.gguf", dir);
        compare_layout(mm, ref, "vl-tiny mmproj");
    }
    unlink(out);
    unlink(mm);
}

/* ---- determinism ------------------------------------------------------------------------------ */

static void test_determinism(void)
{
    const char *a = tmp("a.gguf"), *b = tmp("b.gguf"), *c = tmp("c.gguf");
    CHECK(mkmodel("--config", "small", "--type", "q4_k_m", "--seed", "5", "--threads", "1", "-o", a, NULL) == 0, "a");
    CHECK(mkmodel("--config", "small", "--type", "q4_k_m", "--seed", "5", "--threads", "3", "-o", b, NULL) == 0, "b");
    CHECK(mkmodel("--config", "small", "--type", "q4_k_m", "--seed", "6", "-o", c, NULL) == 0, "c");
    size_t na = 0, nb = 0, nc = 0;
    uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb), *pc = slurp(c, &nc);
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na) == 0, "same seed, different thread count: files differ");
    lfm2_gguf *ga = lfm2_gguf_open(a, true), *gc = lfm2_gguf_open(c, true);
    CHECK(ga && gc, "open: %s", lfm2_last_error());
    if (ga && gc) {
        int same = 0;
        for (int64_t i = 0; i < lfm2_gguf_n_tensors(ga); i++) {
            const lfm2_tensor *x = lfm2_gguf_tensor(ga, i), *y = lfm2_gguf_tensor(gc, i);
            same += x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0;
        }
        CHECK(same == 0, "another seed: %d tensors are identical", same);
        /* different tensors draw different numbers too */
        const lfm2_tensor *q = lfm2_gguf_find_tensor(ga, "blk.0.ffn_gate.weight");
        const lfm2_tensor *u = lfm2_gguf_find_tensor(ga, "blk.0.ffn_up.weight");
        CHECK(q && u && memcmp(q->data, u->data, q->nbytes) != 0, "ffn_gate and ffn_up are identical");
    }
    lfm2_gguf_close(ga);
    lfm2_gguf_close(gc);
    free(pa);
    free(pb);
    free(pc);
    unlink(a);
    unlink(b);
    unlink(c);
}

/* ---- weight statistics ------------------------------------------------------------------------ */

static void stats(const lfm2_tensor *t, double *mean, double *std, double *in1)
{
    int64_t n = lfm2_tensor_nelements(t);
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t r = 0; r < n / t->ne[0]; r++)
        lfm2_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * t->nb1, x + r * t->ne[0], t->ne[0]);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        s2 += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrt(s2 / (double)n);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += fabs(x[i] - *mean) < *std;
    *in1 = (double)k / (double)n;
    free(x);
}

static void test_distributions(void)
{
    const char *p = tmp("dist.gguf");
    CHECK(mkmodel("--config", "moe-tiny", "--type", "f32", "--seed", "11", "-o", p, NULL) == 0, "moe-tiny f32");
    lfm2_gguf *g = lfm2_gguf_open(p, true);
    CHECK(g != NULL, "%s", lfm2_last_error());
    if (!g)
        return;
    static const struct { const char *suffix; double mean, std; } kinds[] = {
        { "token_embd.weight", 0, 0.02 }, { "shortconv.in_proj.weight", 0, 0.02 },
        { "ffn_down_exps.weight", 0, 0.02 }, { "attn_q.weight", 0, 0.02 },
        { "attn_norm.weight", 1, 0.1 }, { "attn_k_norm.weight", 1, 0.1 }, { "token_embd_norm.weight", 1, 0.1 },
        { "shortconv.conv.weight", 0, 0.3 }, { "ffn_gate_inp.weight", 0, 0.1 }, { "exp_probs_b.bias", 0, 0.05 },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        /* pool every tensor of this kind */
        double sm = 0, ss = 0, si = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
            const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
            size_t ls = strlen(t->name), lk = strlen(kinds[k].suffix);
            if (ls < lk || strcmp(t->name + ls - lk, kinds[k].suffix) != 0 ||
                (ls > lk && t->name[ls - lk - 1] != '.'))
                continue;
            double m, s, in1;
            stats(t, &m, &s, &in1);
            int64_t ne = lfm2_tensor_nelements(t);
            sm += m * (double)ne;
            ss += s * (double)ne;
            si += in1 * (double)ne;
            n += ne;
        }
        CHECK(n > 0, "no tensor ends in %s", kinds[k].suffix);
        if (!n)
            continue;
        double m = sm / (double)n, s = ss / (double)n, in1 = si / (double)n;
        double se = kinds[k].std / sqrt((double)n);   /* standard error of the mean */
        CHECK(fabs(m - kinds[k].mean) < 5 * se + 1e-9, "%s: mean %.5f, expected %.5f (n=%" PRId64 ")",
              kinds[k].suffix, m, kinds[k].mean, n);
        CHECK(fabs(s / kinds[k].std - 1) < (n > 1000 ? 0.03 : 0.25), "%s: std %.5f, expected %.5f (n=%" PRId64 ")",
              kinds[k].suffix, s, kinds[k].std, n);
        if (n > 10000)   /* a normal puts 68.3 % within one sigma */
            CHECK(fabs(in1 - 0.6827) < 0.01, "%s: %.4f within one sigma", kinds[k].suffix, in1);
    }
    lfm2_gguf_close(g);
    unlink(p);
}

/* ---- tokenizer --------------------------------------------------------------------------------- */

static void test_vocab(void)
{
    const char *p = tmp("vocab.gguf");
    CHECK(mkmodel("--config", "small", "--type", "q8_0", "-o", p, NULL) == 0, "small");
    lfm2_gguf *g = lfm2_gguf_open(p, true);
    CHECK(g != NULL, "%s", lfm2_last_error());
    if (!g)
        return;
    uint64_t n = 0, nm = 0;
    lfm2_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n);
    lfm2_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &nm);
    int64_t *types = malloc(n * sizeof *types);
    CHECK(lfm2_gguf_get_int_arr(g, "tokenizer.ggml.token_type", types, n) == 1, "token types");
    /* unique token strings (sort copies, compare neighbours) */
    char **s = malloc(n * sizeof *s);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *t = lfm2_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        s[i] = strndup(t, len);
    }
    int dup = 0, bad_type = 0;
    for (uint64_t i = 0; i < n; i++) {
        bad_type += (i < 20) != (types[i] == 3);
        for (uint64_t j = i + 1; j < n; j++)
            dup += strcmp(s[i], s[j]) == 0;
    }
    CHECK(dup == 0, "%d duplicate token strings", dup);
    CHECK(bad_type == 0, "%d tokens with the wrong type", bad_type);
    CHECK(strcmp(s[0], "<|pad|>") == 0 && strcmp(s[1], "<|startoftext|>") == 0 && strcmp(s[7], "<|im_end|>") == 0 &&
          strcmp(s[16], "<image>") == 0, "control tokens");
    CHECK(strcmp(s[20 + ' '], "Ġ") == 0 && strcmp(s[20 + '\n'], "Ċ") == 0 && strcmp(s[20 + 'a'], "a") == 0 &&
          strcmp(s[20 + 0xff], "ÿ") == 0 && strcmp(s[20 + 0xad], "Ń") == 0, "GPT-2 byte spelling");
    /* every merge joins two tokens into a third; a few merges join partial UTF-8 sequences */
    int bad_merge = 0;
    for (uint64_t m = 0; m < nm; m++) {
        size_t len;
        const char *r = lfm2_gguf_arr_str(g, "tokenizer.ggml.merges", m, &len);
        const char *sp = memchr(r, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - r))) {
            bad_merge++;
            continue;
        }
        char *l = strndup(r, (size_t)(sp - r)), *rt = strndup(sp + 1, len - (size_t)(sp - r) - 1);
        char *j = malloc(len + 1);
        snprintf(j, len + 1, "%s%s", l, rt);
        int found = 0;
        for (uint64_t i = 0; i < n; i++)
            found += (strcmp(s[i], l) == 0) + (strcmp(s[i], rt) == 0) * 2 + (strcmp(s[i], j) == 0) * 4;
        bad_merge += found != 7;
        free(l);
        free(rt);
        free(j);
    }
    CHECK(bad_merge == 0, "%d merges whose parts or result are not tokens", bad_merge);
    CHECK(nm >= 552, "only %" PRIu64 " merges", nm);
    int unused = 0;
    for (uint64_t i = 0; i < n; i++)
        unused += strncmp(s[i], "<unused", 7) == 0;
    CHECK(unused == (int)(n - 276 - 552), "%d <unused> tokens", unused);
    for (uint64_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
    free(types);
    lfm2_gguf_close(g);
    unlink(p);
}

/* ---- big configs, options ----------------------------------------------------------------------- */

static void test_configs(void)
{
    /* published parameter counts of the real models (model cards / HF configs) */
    CHECK(mkmodel_param_count("350m") == 354483968, "350m: %" PRId64, mkmodel_param_count("350m"));
    CHECK(mkmodel_param_count("700m") == 742489344, "700m: %" PRId64, mkmodel_param_count("700m"));
    CHECK(mkmodel_param_count("1.2b") == 1170340608, "1.2b: %" PRId64, mkmodel_param_count("1.2b"));
    CHECK(mkmodel_param_count("2.6b") == 2569272320, "2.6b: %" PRId64, mkmodel_param_count("2.6b"));
    int64_t n8 = mkmodel_param_count("8b-a1b");
    CHECK(n8 > 8250000000ll && n8 < 8350000000ll, "8b-a1b: %" PRId64 " (published: 8.3B)", n8);
    CHECK(mkmodel_param_count("vl-450m") == 354483968, "vl-450m backbone");
    CHECK(mkmodel_param_count("nope") == -1, "unknown config");

    const char *p = tmp("x.gguf");
    CHECK(mkmodel("--config", "nope", "--type", "q8_0", "-o", p, NULL) != 0, "unknown config accepted");
    CHECK(mkmodel("--config", "tiny", "--type", "q3_k", "-o", p, NULL) != 0, "unknown type accepted");
    CHECK(mkmodel("--config", "tiny", "--type", "q8_0", NULL) != 0, "missing -o accepted");
    CHECK(mkmodel("--config", "tiny", "--type", "q8_0", "-o", p, "--mmproj-out", tmp("m.gguf"), NULL) != 0,
          "--mmproj-out on a text config accepted");
    CHECK(mkmodel("--config", "tiny", "--type", "q8_0", "--seed", "-1", "-o", p, NULL) != 0, "negative seed");
    CHECK(access(p, F_OK) != 0, "a failed run left a file");

    /* every type writes a loadable tiny model; K types fall back where rows are 128 wide */
    static const char *const types[] = { "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                         "q4_k", "q5_k", "q6_k", "q4_k_m" };
    static const enum lfm2_type embd[] = { LFM2_TYPE_F32, LFM2_TYPE_F16, LFM2_TYPE_BF16, LFM2_TYPE_Q8_0,
                                           LFM2_TYPE_Q4_0, LFM2_TYPE_Q4_1, LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1,
                                           LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1, LFM2_TYPE_Q8_0, LFM2_TYPE_Q8_0 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        CHECK(mkmodel("--config", "tiny", "--type", types[i], "-o", p, NULL) == 0, "tiny %s", types[i]);
        lfm2_gguf *g = lfm2_gguf_open(p, true);
        CHECK(g != NULL, "tiny %s: %s", types[i], lfm2_last_error());
        if (!g)
            continue;
        const lfm2_tensor *t = lfm2_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t && t->type == embd[i], "tiny %s: token_embd is %s", types[i], t ? lfm2_type_name(t->type) : "?");
        t = lfm2_gguf_find_tensor(g, "blk.0.shortconv.conv.weight");
        CHECK(t && t->type == LFM2_TYPE_F32, "tiny %s: conv must stay F32", types[i]);
        lfm2_gguf_close(g);
    }
    unlink(p);
}

int main(void)
{
    const char *dir = getenv("LFM2_TEST_DATA");
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/lfm2-test-mkmodel-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    if (dir)
        test_fixture_layouts(dir);
    else {
        fprintf(stderr, "FAIL: LFM2_TEST_DATA is not set\n");
        lfm2_test_failures++;
    }
    test_determinism();
    test_distributions();
    test_vocab();
    test_configs();
    rmdir(g_tmp);
    if (lfm2_test_failures) {
        fprintf(stderr, "test-mkmodel: %d failures\n", lfm2_test_failures);
        return 1;
    }
    printf("test-mkmodel: all passed\n");
    return 0;
}
