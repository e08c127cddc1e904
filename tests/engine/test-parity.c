/* test-parity — logits of every fixture model against llama.cpp's (tests/data/text).
 *
 * For each model: the prompt in one batched call (every row), the forced decode tokens one
 * at a time, the forced greedy continuation, and the prompt again one token per call. Each
 * array must be within the tolerance its logits.json states, with the same argmax on the
 * rows it lists. The engine's own paths must also agree with each other (prefill vs
 * sequential, chunked prefill, embeddings injected instead of ids, rewind, state restore).
 *
 * usage: test-parity [scalar|avx2|avx512|avx512-nobf16|auto]   (exit 77 = path not available here) */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-ops.h"
#include "lfm2.h"

#include "lfm2-test.h"

struct array {
    float *data;
    int rows, cols;
    double tol;
    bool *argmax_row;   /* rows where the argmax must match */
};

struct fixture {
    char dir[1024];
    char model[2048];
    int n_vocab;
    int32_t *prompt, *decode, *greedy;
    int n_prompt, n_decode, n_greedy;
    struct array prefill, decoded, greedy_a, sequential;
};

static int32_t *int_list(JsonObject *o, const char *key, int *n)
{
    JsonArray *a = json_object_get_array_member(o, key);
    *n = (int)json_array_get_length(a);
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++)
        v[i] = (int32_t)json_array_get_int_element(a, (guint)i);
    return v;
}

static float *read_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *d = malloc(n * sizeof(float));
    size_t got = fread(d, sizeof(float), n, f);
    fclose(f);
    if (got != n) {
        free(d);
        return NULL;
    }
    return d;
}

static void load_array(struct fixture *fx, JsonObject *root, const char *name, struct array *a)
{
    JsonObject *files = json_object_get_object_member(root, "files");
    JsonObject *fo = json_object_get_object_member(files, name);
    JsonArray *shape = json_object_get_array_member(fo, "shape");
    a->rows = (int)json_array_get_int_element(shape, 0);
    a->cols = (int)json_array_get_int_element(shape, 1);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", fx->dir, json_object_get_string_member(fo, "file"));
    a->data = read_f32(path, (size_t)a->rows * a->cols);
    if (!a->data) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    JsonObject *st = json_object_get_object_member(json_object_get_object_member(root, "stats"), name);
    a->tol = json_object_get_double_member(st, "recommended_tolerance");
    a->argmax_row = calloc((size_t)a->rows, sizeof(bool));
    JsonArray *rows = json_object_get_array_member(st, "argmax_check_rows");
    for (guint i = 0; i < json_array_get_length(rows); i++) {
        gint64 r = json_array_get_int_element(rows, i);
        if (r >= 0 && r < a->rows)
            a->argmax_row[r] = true;
    }
}

static void load_fixture(struct fixture *fx, const char *dir)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "%s", dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/logits.json", dir);
    JsonParser *p = json_parser_new();
    GError *err = NULL;
    if (!json_parser_load_from_file(p, path, &err)) {
        fprintf(stderr, "%s: %s\n", path, err->message);
        exit(1);
    }
    JsonObject *root = json_node_get_object(json_parser_get_root(p));
    snprintf(fx->model, sizeof fx->model, "%s/%s", dir, json_object_get_string_member(root, "model"));
    fx->n_vocab = (int)json_object_get_int_member(root, "n_vocab");
    fx->prompt = int_list(root, "prompt_ids", &fx->n_prompt);
    fx->decode = int_list(root, "decode_ids", &fx->n_decode);
    fx->greedy = int_list(root, "greedy_ids", &fx->n_greedy);
    load_array(fx, root, "prefill", &fx->prefill);
    load_array(fx, root, "decode", &fx->decoded);
    load_array(fx, root, "greedy", &fx->greedy_a);
    load_array(fx, root, "sequential", &fx->sequential);
    g_object_unref(p);
}

static void free_fixture(struct fixture *fx)
{
    struct array *arrays[] = { &fx->prefill, &fx->decoded, &fx->greedy_a, &fx->sequential };
    for (int i = 0; i < 4; i++) {
        free(arrays[i]->data);
        free(arrays[i]->argmax_row);
    }
    free(fx->prompt);
    free(fx->decode);
    free(fx->greedy);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* Compares one row against the reference; returns max |Δ|. */
static double compare_row(const char *what, const char *model, const struct array *ref, int row,
                          const float *got, int V)
{
    const float *want = ref->data + (size_t)row * V;
    double md = 0;
    for (int i = 0; i < V; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md))
            md = isnan(d) ? INFINITY : d;
    }
    CHECK(md <= ref->tol, "%s: %s row %d: max |dlogit| %.3g > tolerance %.3g", model, what, row, md,
          ref->tol);
    const int a_ref = argmax(want, V), a_got = argmax(got, V);
    if (ref->argmax_row[row])
        CHECK(a_ref == a_got, "%s: %s row %d: argmax %d, llama.cpp %d", model, what, row, a_got, a_ref);
    else /* near-tie rows: llama.cpp's choice must still be within tolerance of our best */
        CHECK(got[a_got] - got[a_ref] <= ref->tol, "%s: %s row %d: llama.cpp's argmax %d is %.3g below ours",
              model, what, row, a_ref, got[a_got] - got[a_ref]);
    return md;
}

static lfm2_context *new_ctx(const lfm2_model *m, int n_batch, bool embeddings)
{
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    cp.embeddings = embeddings;
    lfm2_context *ctx = lfm2_context_new(m, cp);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lfm2_last_error());
        exit(1);
    }
    return ctx;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md))
            md = isnan(d) ? INFINITY : d;
    }
    return md;
}

/* An abort callback that says stop at call number `stop_at` (-1: never). */
struct abort_at {
    int calls, stop_at;
};

static bool abort_at_call(void *data)
{
    struct abort_at *a = data;
    return ++a->calls == a->stop_at;
}

static void run_fixture(const char *dir)
{
    struct fixture fx;
    load_fixture(&fx, dir);
    const char *name = strrchr(fx.model, '/') + 1;
    lfm2_model *m = lfm2_model_load(fx.model, lfm2_model_default_params());
    if (!m) {
        CHECK(0, "%s: load failed: %s", name, lfm2_last_error());
        free_fixture(&fx);
        return;
    }
    const int V = lfm2_model_n_vocab(m);
    CHECK(V == fx.n_vocab, "%s: n_vocab %d, fixture %d", name, V, fx.n_vocab);
    const int NP = fx.n_prompt, ND = fx.n_decode, NG = fx.n_greedy;
    double worst[4] = { 0 };

    /* 1. prefill (one call, every row), then decode and greedy rows one token at a time */
    lfm2_context *ctx = new_ctx(m, 512, false);
    struct lfm2_batch b = lfm2_batch_tokens(fx.prompt, NP);
    b.logits_all = true;
    CHECK(lfm2_decode(ctx, b) == 0, "%s: prefill: %s", name, lfm2_last_error());
    CHECK(lfm2_checkpoint(ctx) == 0, "%s: checkpoint", name);
    float *prefill = malloc((size_t)NP * V * sizeof(float));
    for (int r = 0; r < NP; r++) {
        memcpy(prefill + (size_t)r * V, lfm2_get_logits(ctx, r), (size_t)V * sizeof(float));
        worst[0] = fmax(worst[0], compare_row("prefill", name, &fx.prefill, r, lfm2_get_logits(ctx, r), V));
    }
    /* state after the prompt, for the rewind and restore checks below */
    size_t st_size = lfm2_state_size(ctx);
    void *state = malloc(st_size);
    CHECK(lfm2_state_save(ctx, state, st_size) == st_size, "%s: state save", name);

    float *decoded = malloc((size_t)(ND + NG) * V * sizeof(float));
    for (int j = 0; j < ND; j++) {
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(&fx.decode[j], 1)) == 0, "%s: decode", name);
        memcpy(decoded + (size_t)j * V, lfm2_get_logits(ctx, -1), (size_t)V * sizeof(float));
        worst[1] = fmax(worst[1], compare_row("decode", name, &fx.decoded, j, lfm2_get_logits(ctx, -1), V));
    }
    for (int j = 0; j < NG; j++) {
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(&fx.greedy[j], 1)) == 0, "%s: greedy", name);
        memcpy(decoded + (size_t)(ND + j) * V, lfm2_get_logits(ctx, -1), (size_t)V * sizeof(float));
        worst[2] = fmax(worst[2], compare_row("greedy", name, &fx.greedy_a, j, lfm2_get_logits(ctx, -1), V));
    }

    /* 2. rewind to the checkpoint at the end of the prompt and decode again: identical
     * logits; a position without a checkpoint is refused */
    CHECK(lfm2_rewind(ctx, NP + 1) < 0 && strstr(lfm2_last_error(), "checkpoint"),
          "%s: rewind to a position without checkpoint accepted", name);
    CHECK(lfm2_rewind(ctx, NP) == 0, "%s: rewind: %s", name, lfm2_last_error());
    for (int j = 0; j < ND; j++) {
        lfm2_decode(ctx, lfm2_batch_tokens(&fx.decode[j], 1));
        CHECK(max_diff(lfm2_get_logits(ctx, -1), decoded + (size_t)j * V, (size_t)V) == 0,
              "%s: decode row %d after rewind differs", name, j);
        if (j == 1)
            CHECK(lfm2_checkpoint(ctx) == 0, "%s: second checkpoint", name);
    }
    /* back to the second checkpoint (after decode token 1), then to the first, then to 0 */
    CHECK(lfm2_rewind(ctx, NP + 2) == 0, "%s: rewind to checkpoint 2: %s", name, lfm2_last_error());
    lfm2_decode(ctx, lfm2_batch_tokens(&fx.decode[2], 1));
    CHECK(max_diff(lfm2_get_logits(ctx, -1), decoded + (size_t)2 * V, (size_t)V) == 0,
          "%s: decode row 2 after rewind to checkpoint 2 differs", name);
    CHECK(lfm2_rewind(ctx, NP) == 0, "%s: rewind to checkpoint 1", name);
    CHECK(lfm2_rewind(ctx, NP + 2) < 0, "%s: checkpoint past the rewind position kept", name);
    CHECK(lfm2_rewind(ctx, 0) == 0 && lfm2_n_past(ctx) == 0, "%s: rewind to 0", name);
    lfm2_decode(ctx, lfm2_batch_tokens(&fx.prompt[0], 1));
    CHECK(max_diff(lfm2_get_logits(ctx, -1), prefill, (size_t)V) == 0,
          "%s: first row after rewind to 0 differs", name);
    lfm2_context_free(ctx);

    /* 2b. the abort callback: stopping at its third question ends lfm2_decode with
     * LFM2_DECODE_ABORTED, no outputs and n_past where it was; after a rewind to the
     * checkpoint the same tokens decode exactly as before. A callback that never stops is
     * asked once per layer of each forward step. */
    {
        const int n_layer = lfm2_model_get_hparams(m)->n_layer;
        struct abort_at ab = { 0, 3 };
        ctx = new_ctx(m, 512, false);
        CHECK(lfm2_decode(ctx, b) == 0 && lfm2_checkpoint(ctx) == 0, "%s: abort setup", name);
        lfm2_set_abort_callback(ctx, abort_at_call, &ab);
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(fx.decode, ND)) == LFM2_DECODE_ABORTED,
              "%s: decode not aborted", name);
        CHECK(ab.calls == 3 && lfm2_n_past(ctx) == NP && lfm2_n_outputs(ctx) == 0,
              "%s: after abort: %d calls, n_past %d, %d outputs", name, ab.calls,
              lfm2_n_past(ctx), lfm2_n_outputs(ctx));
        lfm2_set_abort_callback(ctx, NULL, NULL);
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(fx.decode, 1)) < 0
              && strstr(lfm2_last_error(), "rewind"), "%s: decode after abort accepted", name);
        CHECK(lfm2_rewind(ctx, NP) == 0, "%s: rewind after abort: %s", name, lfm2_last_error());
        for (int j = 0; j < ND; j++) {
            CHECK(lfm2_decode(ctx, lfm2_batch_tokens(&fx.decode[j], 1)) == 0, "%s: decode", name);
            CHECK(max_diff(lfm2_get_logits(ctx, -1), decoded + (size_t)j * V, (size_t)V) == 0,
                  "%s: decode row %d after an aborted decode differs", name, j);
        }
        ab = (struct abort_at){ 0, -1 };
        lfm2_set_abort_callback(ctx, abort_at_call, &ab);
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(fx.decode, 1)) == 0 && ab.calls == n_layer,
              "%s: never-stopping callback: asked %d times for %d layers", name, ab.calls,
              n_layer);
        lfm2_context_free(ctx);
    }

    /* 3. state restored into a fresh context continues identically */
    ctx = new_ctx(m, 512, false);
    CHECK(lfm2_state_load(ctx, state, st_size) == 0, "%s: state load: %s", name, lfm2_last_error());
    CHECK(lfm2_n_past(ctx) == NP, "%s: n_past after state load", name);
    CHECK(lfm2_state_load(ctx, state, st_size - 1) < 0, "%s: truncated state accepted", name);
    for (int j = 0; j < ND; j++) {
        lfm2_decode(ctx, lfm2_batch_tokens(&fx.decode[j], 1));
        CHECK(max_diff(lfm2_get_logits(ctx, -1), decoded + (size_t)j * V, (size_t)V) == 0,
              "%s: decode row %d after state load differs", name, j);
    }
    lfm2_context_free(ctx);
    free(state);

    /* 4. the prompt one token per call (the one-token path) */
    ctx = new_ctx(m, 512, false);
    double seq_vs_prefill = 0;
    for (int r = 0; r < NP; r++) {
        CHECK(lfm2_decode(ctx, lfm2_batch_tokens(&fx.prompt[r], 1)) == 0, "%s: sequential", name);
        const float *lg = lfm2_get_logits(ctx, -1);
        worst[3] = fmax(worst[3], compare_row("sequential", name, &fx.sequential, r, lg, V));
        seq_vs_prefill = fmax(seq_vs_prefill, max_diff(lg, prefill + (size_t)r * V, (size_t)V));
    }
    lfm2_context_free(ctx);
    /* our two paths must agree at least as well as llama.cpp's tolerance */
    CHECK(seq_vs_prefill <= fx.prefill.tol / 4, "%s: prefill vs sequential differ by %.3g", name,
          seq_vs_prefill);

    /* 5. chunked prefill (n_batch 7) equals the one-call prefill */
    ctx = new_ctx(m, 7, false);
    CHECK(lfm2_decode(ctx, b) == 0, "%s: chunked prefill: %s", name, lfm2_last_error());
    double chunked = 0;
    for (int r = 0; r < NP; r++)
        chunked = fmax(chunked, max_diff(lfm2_get_logits(ctx, r), prefill + (size_t)r * V, (size_t)V));
    CHECK(chunked <= fx.prefill.tol / 4, "%s: chunked prefill differs by %.3g", name, chunked);
    lfm2_context_free(ctx);

    /* 6. the same rows injected as embeddings (what an image/audio encoder does) */
    {
        const struct lfm2_hparams *hp = lfm2_model_get_hparams(m);
        const lfm2_gguf *g = lfm2_model_gguf(m);
        const lfm2_tensor *te = lfm2_gguf_find_tensor(g, "token_embd.weight");
        float *emb = malloc((size_t)NP * hp->n_embd * sizeof(float));
        lfm2_get_rows(te, fx.prompt, NP, emb);
        ctx = new_ctx(m, 512, true);
        struct lfm2_batch eb = lfm2_batch_embd(emb, NP);
        eb.logits_all = true;
        CHECK(lfm2_decode(ctx, eb) == 0, "%s: embd batch: %s", name, lfm2_last_error());
        double de = 0;
        for (int r = 0; r < NP; r++)
            de = fmax(de, max_diff(lfm2_get_logits(ctx, r), prefill + (size_t)r * V, (size_t)V));
        CHECK(de == 0, "%s: embeddings batch differs from token batch by %.3g", name, de);
        CHECK(lfm2_get_embeddings(ctx, -1) != NULL, "%s: no hidden state", name);
        lfm2_context_free(ctx);
        free(emb);
    }

    printf("%-28s max |dlogit| prefill %.2e decode %.2e greedy %.2e sequential %.2e (tol %.1e) "
           "| prefill vs sequential %.1e\n",
           name, worst[0], worst[1], worst[2], worst[3], fx.prefill.tol, seq_vs_prefill);
    free(prefill);
    free(decoded);
    lfm2_model_free(m);
    free_fixture(&fx);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "auto";
    enum lfm2_cpu_path p = LFM2_CPU_AUTO;
    if (!strcmp(path, "scalar"))
        p = LFM2_CPU_SCALAR;
    else if (!strcmp(path, "avx2"))
        p = LFM2_CPU_AVX2;
    else if (!strcmp(path, "avx512"))
        p = LFM2_CPU_AVX512;
    else if (!strcmp(path, "avx512-nobf16")) {   /* as on a CPU without AVX512_BF16 */
        p = LFM2_CPU_AVX512;
        setenv("LFM2_CPU_NO_BF16", "1", 1);
    }
    if (!lfm2_set_cpu_path(p)) {
        printf("SKIP: this CPU cannot run the %s path\n", path);
        return 77;
    }
    const char *data = getenv("LFM2_TEST_DATA");
    if (!data) {
        fprintf(stderr, "LFM2_TEST_DATA is not set\n");
        return 1;
    }
    static const char *models[] = { "tiny-f32", "tiny-f16", "tiny-bf16", "tiny-q8_0", "tiny-q4_0",
                                    "small-f32", "small-q8_0", "small-q4_k_m", "moe/tiny-moe-q8_0" };
    printf("kernel path: %s\n", lfm2_cpu_path_name(lfm2_get_cpu_path()));
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/text/%s", data, models[i]);
        run_fixture(dir);
    }
    if (lfm2_test_failures)
        fprintf(stderr, "%d check(s) failed\n", lfm2_test_failures);
    return lfm2_test_failures ? 1 : 0;
}
