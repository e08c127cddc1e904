/* test-nonfinite — model files whose tensor data holds NaN, infinities or garbage (issue 15):
 * lfm2_decode must fail with an error naming the file, at the same step and with the same
 * message on every kernel path this CPU runs, where it used to return garbage (all-zero logits
 * on the scalar and AVX2 paths, NaN on AVX-512). The untouched files decode without error.
 *
 * Corruptions, on copies of the fixture models written to a temporary directory:
 *   nan      a NaN in one weight of blk.1.ffn_down (a block scale, or an element of a float
 *            type): it reaches every later activation;
 *   inf      the same with +inf;
 *   garbage  the whole of blk.1.ffn_down replaced by random bytes;
 *   shifted  1 KiB inserted in the middle of the tensor data, so every later tensor is read
 *            1 KiB off (the case the issue found: a Q4_K_M file that loaded and wrote garbage).
 * The first three must fail; a shifted file must fail for the quantized fixtures, whose block
 * scales then come from quant bytes (shifted float data stays finite, and then decodes on
 * every path). Input embeddings holding a NaN are refused too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lfm2-gguf.h"
#include "lfm2-stage.h"
#include "lfm2.h"

#include "lfm2-test.h"

static const char *const k_models[] = {
    "tiny-f32/lfm2-tiny-f32.gguf",       "tiny-f16/lfm2-tiny-f16.gguf",
    "tiny-bf16/lfm2-tiny-bf16.gguf",     "tiny-q8_0/lfm2-tiny-q8_0.gguf",
    "tiny-q4_0/lfm2-tiny-q4_0.gguf",     "small-q4_k_m/lfm2-small-q4_k_m.gguf",
};
enum { CASE_NAN, CASE_INF, CASE_GARBAGE, CASE_SHIFTED, N_CASES };
static const char *const k_case_names[N_CASES] = { "nan", "inf", "garbage", "shifted" };

static const enum lfm2_cpu_path k_paths[] = { LFM2_CPU_SCALAR, LFM2_CPU_AVX2, LFM2_CPU_AVX512 };
#define N_PATHS (int)(sizeof k_paths / sizeof k_paths[0])

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*size + 1024);
    if (fread(b, 1, *size, f) != *size) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n, "cannot write %s", path);
    if (f)
        fclose(f);
}

/* the bytes of one fp16 / bf16 / f32 value v */
static void put_value(uint8_t *p, enum lfm2_type type, float v)
{
    if (type == LFM2_TYPE_F32) {
        memcpy(p, &v, 4);
    } else if (type == LFM2_TYPE_BF16) {
        const uint16_t h = lfm2_fp32_to_bf16(v);
        memcpy(p, &h, 2);
    } else {   /* F16 elements and every block scale */
        const lfm2_fp16 h = lfm2_fp32_to_fp16(v);
        memcpy(p, &h, 2);
    }
}

/* Writes the corrupted copy of the model in buf (size bytes) to path. */
static void corrupt(const uint8_t *buf, size_t size, int c, const char *path)
{
    lfm2_gguf *g = lfm2_gguf_open_memory(buf, size, "fixture");
    CHECK(g != NULL, "open: %s", lfm2_last_error());
    if (!g)
        return;
    const lfm2_tensor *t = lfm2_gguf_find_tensor(g, "blk.1.ffn_down.weight");
    CHECK(t != NULL, "blk.1.ffn_down.weight missing");
    uint8_t *out = malloc(size + 1024);
    memcpy(out, buf, size);
    size_t n = size;
    const size_t off = t ? (size_t)((const uint8_t *)t->data - buf) : 0;
    switch (c) {
    case CASE_NAN:
    case CASE_INF: {
        /* element 5 of a float row, else the scale of block 1 (Q6_K keeps d at the end) */
        const int bb = lfm2_type_block_bytes(t->type);
        size_t at = off;
        if (t->type == LFM2_TYPE_F32 || t->type == LFM2_TYPE_F16 || t->type == LFM2_TYPE_BF16)
            at += 5 * (size_t)bb;
        else
            at += (size_t)bb + (t->type == LFM2_TYPE_Q6_K ? (size_t)bb - 2 : 0);
        put_value(out + at, t->type, c == CASE_NAN ? NAN : INFINITY);
        break;
    }
    case CASE_GARBAGE: {
        uint64_t s = 0x243F6A8885A308D3ull;
        for (size_t i = 0; i < t->nbytes; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            out[off + i] = (uint8_t)(s >> 32);
        }
        break;
    }
    case CASE_SHIFTED: {
        const size_t d0 = lfm2_gguf_data_offset(g), at = d0 + (size - d0) / 2;
        memmove(out + at + 1024, out + at, size - at);
        for (size_t i = 0; i < 1024; i++)
            out[at + i] = (uint8_t)(i * 37 + 11);
        n += 1024;
        break;
    }
    }
    write_file(path, out, n);
    free(out);
    lfm2_gguf_close(g);
}

/* Decodes a 4-token prompt then 3 single tokens. Returns the index of the first failing call
 * (−1: none) and its message in err. */
static int run(lfm2_model *m, char *err, size_t cap)
{
    err[0] = '\0';
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    lfm2_context *ctx = lfm2_context_new(m, cp);
    CHECK(ctx != NULL, "context: %s", lfm2_last_error());
    if (!ctx)
        return -2;
    static const lfm2_token toks[7] = { 1, 17, 42, 99, 5, 300, 7 };
    int failed = -1;
    for (int step = 0; step < 4 && failed < 0; step++) {
        const struct lfm2_batch b = step == 0 ? lfm2_batch_tokens(toks, 4) : lfm2_batch_tokens(toks + 3 + step, 1);
        if (lfm2_decode(ctx, b) != 0) {
            failed = step;
            snprintf(err, cap, "%s", lfm2_last_error());
            CHECK(lfm2_get_logits(ctx, -1) == NULL, "logits readable after a failed decode");
        }
    }
    lfm2_context_free(ctx);
    return failed;
}

static void test_model(const char *dir, const char *tmp, const char *rel)
{
    char src[2048], path[2048];
    snprintf(src, sizeof src, "%s/text/%s", dir, rel);
    size_t size = 0;
    uint8_t *buf = read_file(src, &size);
    CHECK(buf != NULL, "cannot read %s", src);
    if (!buf)
        return;
    const bool quantized = !strstr(rel, "-f32") && !strstr(rel, "-f16") && !strstr(rel, "-bf16");
    for (int c = -1; c < N_CASES; c++) {
        if (c < 0) {
            snprintf(path, sizeof path, "%s", src);
        } else {
            snprintf(path, sizeof path, "%s/%s-%s", tmp, k_case_names[c], strrchr(rel, '/') + 1);
            corrupt(buf, size, c, path);
        }
        lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
        CHECK(m != NULL, "%s: load: %s", path, lfm2_last_error());
        if (!m)
            continue;
        int first = -3;
        char err0[1024] = "";
        const char *path0 = "";
        for (int pi = 0; pi < N_PATHS; pi++) {
            if (!lfm2_set_cpu_path(k_paths[pi]))
                continue;
            char err[1024];
            const int failed = run(m, err, sizeof err);
            const char *pn = lfm2_cpu_path_name(k_paths[pi]);
            if (first == -3) {
                first = failed;
                snprintf(err0, sizeof err0, "%s", err);
                path0 = pn;
            }
            CHECK(failed == first && strcmp(err, err0) == 0,
                  "%s: the %s path %s at step %d (\"%s\"), the %s path at step %d (\"%s\")", path, pn,
                  failed >= 0 ? "fails" : "does not fail", failed, err, path0, first, err0);
            if (c < 0 || (c == CASE_SHIFTED && !quantized)) {
                CHECK(c >= 0 || failed < 0, "%s on the %s path: %s", path, pn, err);
            } else {
                CHECK(failed >= 0, "%s (%s) on the %s path: decoded without an error", rel, k_case_names[c], pn);
                CHECK(failed < 0 || (strstr(err, path) && strstr(err, "not finite")),
                      "%s on the %s path: the error does not name the file: %s", path, pn, err);
            }
        }
        printf("  %-40s %-8s %s\n", rel, c < 0 ? "clean" : k_case_names[c], first < 0 ? "decodes" : err0);
        lfm2_model_free(m);
        if (c >= 0)
            unlink(path);
    }
    free(buf);
}

/* Embedding rows injected by an encoder are checked before the forward pass. */
static void test_embd(const char *dir)
{
    char src[2048];
    snprintf(src, sizeof src, "%s/text/tiny-q8_0/lfm2-tiny-q8_0.gguf", dir);
    lfm2_model *m = lfm2_model_load(src, lfm2_model_default_params());
    lfm2_gguf *g = lfm2_gguf_open(src, true);
    int64_t E = 0;
    CHECK(m && g && lfm2_gguf_get_int(g, "lfm2.embedding_length", &E) == 1 && E > 0, "load: %s",
          lfm2_last_error());
    lfm2_gguf_close(g);
    if (!m || E <= 0) {
        lfm2_model_free(m);
        return;
    }
    lfm2_context *ctx = lfm2_context_new(m, lfm2_context_default_params());
    float *e = calloc(3 * (size_t)E, sizeof(float));
    e[2 * E + 5] = NAN;
    CHECK(lfm2_decode(ctx, lfm2_batch_embd(e, 3)) != 0 && strstr(lfm2_last_error(), "row 2"),
          "NaN in embedding row 2 accepted (%s)", lfm2_last_error());
    CHECK(lfm2_n_past(ctx) == 0, "a refused batch moved the position");
    e[2 * E + 5] = 0.5f;
    CHECK(lfm2_decode(ctx, lfm2_batch_embd(e, 3)) == 0, "finite embeddings refused: %s", lfm2_last_error());
    free(e);
    lfm2_context_free(ctx);
    lfm2_model_free(m);
}

int main(void)
{
    const char *dir = lfm2_test_data_dir();
    char tmp[1024];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/lfm2-nonfinite-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof k_models / sizeof k_models[0]; i++)
        test_model(dir, tmp, k_models[i]);
    test_embd(dir);
    rmdir(tmp);
    lfm2_set_cpu_path(LFM2_CPU_AUTO);
    return lfm2_test_status();
}
