/* cmd-text.c — `lfm2 generate`, `lfm2 tokenize`, `lfm2 logits`, `lfm2 info`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2-gguf.h"
#include "lfm2-ops.h"
#include "lfm2.h"

/* ---- small helpers ------------------------------------------------------------------- */

static char *read_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_fail(cmd, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fclose(f);
            cli_fail(cmd, "out of memory reading %s", path);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        cli_fail(cmd, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static lfm2_model *load_model(const char *cmd, const char *path)
{
    if (!path) {
        cli_fail(cmd, "no model given (-m MODEL.gguf)");
        return NULL;
    }
    lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
    if (!m)
        cli_fail(cmd, "%s", lfm2_last_error());
    return m;
}

/* Tokenizes into a growing array (returns NULL on error). */
static lfm2_token *tokenize_all(const char *cmd, const lfm2_model *m, const char *text, size_t len,
                                bool bos, bool special, int32_t *n_out)
{
    if (len > INT32_MAX) {
        cli_fail(cmd, "input of %zu bytes is too long", len);
        return NULL;
    }
    int32_t cap = (int32_t)(len < 1000 ? 1024 : len / 2 + 16);
    lfm2_token *t = malloc((size_t)cap * sizeof *t);
    if (!t) {
        cli_fail(cmd, "out of memory");
        return NULL;
    }
    int32_t n = lfm2_tokenize(m, text, (int32_t)len, t, cap, bos, special);
    if (n < 0 && n != INT32_MIN) {
        cap = -n;
        lfm2_token *nt = realloc(t, (size_t)cap * sizeof *t);
        if (!nt) {
            free(t);
            cli_fail(cmd, "out of memory");
            return NULL;
        }
        t = nt;
        n = lfm2_tokenize(m, text, (int32_t)len, t, cap, bos, special);
    }
    if (n < 0) {
        free(t);
        cli_fail(cmd, "tokenization failed: %s", lfm2_last_error());
        return NULL;
    }
    *n_out = n;
    return t;
}

/* ---- generate -------------------------------------------------------------------------- */

static const char *generate_usage =
    "usage: lfm2 generate -m MODEL -p TEXT [options]\n"
    "  -m, --model FILE        LFM2 GGUF file\n"
    "  -p, --prompt TEXT       prompt (or -f FILE)\n"
    "  -f, --file FILE         read the prompt from a file\n"
    "  -n, --n-predict N       tokens to generate (default 128, -1 = until end of turn)\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "  -c, --ctx-size N        context length (default min(trained, 4096))\n"
    "      --chat              wrap the prompt as a user turn in the LFM2 chat layout\n"
    "  -s, --system TEXT       system message (with --chat)\n"
    "      --temp X            temperature (default 0.3; 0 = greedy)\n"
    "      --top-k N  --top-p X  --min-p X  --repeat-penalty X  --repeat-last-n N\n"
    "      --seed S            random seed (default: random)\n"
    "      --no-special        do not parse control-token text in the prompt\n";

int cmd_generate(int argc, char **argv)
{
    const char *C = "generate";
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *system = NULL;
    int n_predict = 128, n_threads = 0, n_ctx = 0;
    bool chat = false, special = true;
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_sampling_opt(C, argc, argv, &i, &sp);
        if (r < 0)
            return 1;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(generate_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(prompt_file = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--system")) {
            if (!(system = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, -1, INT_MAX, &n_predict))
                return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 0, 1024, &n_threads))
                return 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 0, INT_MAX, &n_ctx))
                return 1;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else if (!strcmp(a, "--no-special")) {
            special = false;
        } else {
            fputs(generate_usage, stderr);
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    if (!prompt && !prompt_file) {
        fputs(generate_usage, stderr);
        return cli_fail(C, "no prompt given (-p TEXT or -f FILE)");
    }
    char *file_text = NULL;
    size_t file_len = 0;
    if (prompt_file) {
        if (!(file_text = read_file(C, prompt_file, &file_len)))
            return 1;
        prompt = file_text;
    }

    int rc = 1;
    lfm2_model *m = load_model(C, model_path);
    lfm2_context *ctx = NULL;
    lfm2_sampler *smp = NULL;
    lfm2_token *toks = NULL;
    char *rendered = NULL;
    if (!m)
        goto out;

    const char *text = prompt;
    if (chat) {
        struct lfm2_chat_message msgs[2];
        size_t n = 0;
        if (system)
            msgs[n++] = (struct lfm2_chat_message){ "system", system };
        msgs[n++] = (struct lfm2_chat_message){ "user", prompt };
        const int32_t need = lfm2_chat_apply(msgs, n, NULL, true, NULL, 0);   /* -(capacity) */
        if (need == INT32_MIN || !(rendered = malloc((size_t)-need))) {
            cli_fail(C, "cannot render the chat prompt");
            goto out;
        }
        lfm2_chat_apply(msgs, n, NULL, true, rendered, -need);
        text = rendered;
    }
    int32_t n_prompt = 0;
    if (!(toks = tokenize_all(C, m, text, strlen(text), lfm2_add_bos(m), special, &n_prompt)))
        goto out;
    if (n_prompt == 0) {
        cli_fail(C, "the prompt is empty");
        goto out;
    }

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    if (!(ctx = lfm2_context_new(m, cp)) || !(smp = lfm2_sampler_new(m, sp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (n_prompt >= lfm2_n_ctx(ctx)) {
        cli_fail(C, "the prompt has %d tokens but the context holds %d", n_prompt, lfm2_n_ctx(ctx));
        goto out;
    }
    for (int32_t i = 0; i < n_prompt; i++)
        lfm2_sampler_accept(smp, toks[i]);

    if (!chat)
        fputs(text, stdout); /* like llama.cpp: echo the raw prompt, then the continuation */
    fflush(stdout);

    double t0 = lfm2_time_ms();
    if (lfm2_decode(ctx, lfm2_batch_tokens(toks, n_prompt))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    double t_prompt = lfm2_time_ms() - t0;

    struct lfm2_detok dt;
    lfm2_detok_init(&dt, false);
    char piece[256];
    int n_gen = 0;
    double t1 = lfm2_time_ms();
    while (n_predict < 0 || n_gen < n_predict) {
        lfm2_token t = lfm2_sampler_sample(smp, lfm2_get_logits(ctx, -1));
        lfm2_sampler_accept(smp, t);
        n_gen++;
        if (lfm2_token_is_eog(m, t))
            break;
        int32_t w = lfm2_detok_push(m, &dt, t, piece, sizeof piece);
        if (w > 0) {
            fwrite(piece, 1, (size_t)w, stdout);
            fflush(stdout);
        }
        if (lfm2_n_past(ctx) >= lfm2_n_ctx(ctx)) {
            fprintf(stderr, "\nlfm2 generate: context full (%d tokens)\n", lfm2_n_ctx(ctx));
            break;
        }
        if (lfm2_decode(ctx, lfm2_batch_tokens(&t, 1))) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
    }
    int32_t w = lfm2_detok_flush(&dt, piece, sizeof piece);
    if (w > 0)
        fwrite(piece, 1, (size_t)w, stdout);
    fputc('\n', stdout);
    double t_gen = lfm2_time_ms() - t1;

    fprintf(stderr,
            "\nlfm2 generate: %s, %d threads, %s\n"
            "  prompt: %6d tokens in %8.2f ms (%8.2f tokens/s)\n"
            "  gen:    %6d tokens in %8.2f ms (%8.2f tokens/s)\n",
            lfm2_model_desc(m), lfm2_n_threads(ctx), lfm2_cpu_path_name(lfm2_get_cpu_path()),
            n_prompt, t_prompt, n_prompt * 1e3 / (t_prompt > 0 ? t_prompt : 1), n_gen, t_gen,
            n_gen * 1e3 / (t_gen > 0 ? t_gen : 1));
    rc = 0;
out:
    free(rendered);
    free(toks);
    free(file_text);
    lfm2_sampler_free(smp);
    lfm2_context_free(ctx);
    lfm2_model_free(m);
    return rc;
}

/* ---- tokenize ---------------------------------------------------------------------------- */

int cmd_tokenize(int argc, char **argv)
{
    const char *C = "tokenize";
    const char *model_path = NULL, *file = NULL, *prompt = NULL;
    bool bos = false, special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "--bos")) {
            bos = true;
        } else if (!strcmp(a, "--no-special") || !strcmp(a, "--no-parse-special")) {
            special = false;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts("usage: lfm2 tokenize -m MODEL -f FILE [--bos] [--no-special]\n"
                 "  prints the token ids of the file's UTF-8 text, one per line;\n"
                 "  control-token text (e.g. <|im_start|>) becomes its id unless --no-special;\n"
                 "  -p TEXT tokenizes TEXT instead of a file");
            return 0;
        } else {
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    if (!file && !prompt)
        return cli_fail(C, "no input given (-f FILE)");
    size_t len = 0;
    char *text = NULL;
    if (file) {
        if (!(text = read_file(C, file, &len)))
            return 1;
    } else {
        len = strlen(prompt);
    }
    int rc = 1;
    lfm2_model *m = load_model(C, model_path);
    int32_t n = 0;
    lfm2_token *t = m ? tokenize_all(C, m, text ? text : prompt, len, bos, special, &n) : NULL;
    if (t) {
        for (int32_t i = 0; i < n; i++)
            printf("%d\n", t[i]);
        rc = fflush(stdout) ? cli_fail(C, "write error") : 0;
    }
    free(t);
    free(text);
    lfm2_model_free(m);
    return rc;
}

/* ---- logits -------------------------------------------------------------------------------- */

static int parse_token_list(const char *C, const char *s, lfm2_token **out, int32_t *n)
{
    size_t cap = 16, k = 0;
    lfm2_token *t = malloc(cap * sizeof *t);
    const char *p = s;
    while (t && *p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(t);
            return cli_fail(C, "--tokens: '%s' is not a comma-separated list of ids", s);
        }
        if (k == cap) {
            lfm2_token *nt = realloc(t, (cap *= 2) * sizeof *t);
            if (!nt)
                free(t);
            t = nt;
            if (!t)
                break;
        }
        t[k++] = (lfm2_token)v;
        p = *end ? end + 1 : end;
    }
    if (!t)
        return cli_fail(C, "out of memory");
    if (k == 0) {
        free(t);
        return cli_fail(C, "--tokens: empty list");
    }
    *out = t;
    *n = (int32_t)k;
    return 0;
}

int cmd_logits(int argc, char **argv)
{
    const char *C = "logits";
    const char *model_path = NULL, *tokens = NULL, *out_path = NULL;
    bool decode = false;
    int n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "--tokens")) {
            if (!(tokens = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "--decode")) {
            decode = true;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 0, 1024, &n_threads))
                return 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts("usage: lfm2 logits -m MODEL --tokens 1,2,3 -o OUT [--decode] [-t THREADS]\n"
                 "  writes little-endian float32 logits [n_tokens][n_vocab] for every position:\n"
                 "  by default from one batched prefill, with --decode one token at a time");
            return 0;
        } else {
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    if (!tokens)
        return cli_fail(C, "no tokens given (--tokens 1,2,3)");
    if (!out_path)
        return cli_fail(C, "no output file given (-o OUT)");
    lfm2_token *t = NULL;
    int32_t n = 0;
    if (parse_token_list(C, tokens, &t, &n))
        return 1;

    int rc = 1;
    FILE *f = NULL;
    lfm2_context *ctx = NULL;
    lfm2_model *m = load_model(C, model_path);
    if (!m)
        goto out;
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_threads = n_threads;
    cp.n_ctx = n > 512 ? n : 512;
    if (cp.n_ctx > lfm2_model_get_hparams(m)->n_ctx_train)
        cp.n_ctx = lfm2_model_get_hparams(m)->n_ctx_train;
    if (!(ctx = lfm2_context_new(m, cp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const int V = lfm2_model_n_vocab(m);
    if (!(f = fopen(out_path, "wb"))) {
        cli_fail(C, "%s: %s", out_path, strerror(errno));
        goto out;
    }
    if (!decode) {
        struct lfm2_batch b = lfm2_batch_tokens(t, n);
        b.logits_all = true;
        if (lfm2_decode(ctx, b)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        for (int32_t i = 0; i < n; i++)
            if (fwrite(lfm2_get_logits(ctx, i), sizeof(float), (size_t)V, f) != (size_t)V) {
                cli_fail(C, "%s: write error", out_path);
                goto out;
            }
    } else {
        for (int32_t i = 0; i < n; i++) {
            if (lfm2_decode(ctx, lfm2_batch_tokens(t + i, 1))) {
                cli_fail(C, "%s", lfm2_last_error());
                goto out;
            }
            if (fwrite(lfm2_get_logits(ctx, -1), sizeof(float), (size_t)V, f) != (size_t)V) {
                cli_fail(C, "%s: write error", out_path);
                goto out;
            }
        }
    }
    if (fclose(f)) {
        f = NULL;
        cli_fail(C, "%s: write error", out_path);
        goto out;
    }
    f = NULL;
    fprintf(stderr, "lfm2 logits: wrote %d rows of %d logits to %s\n", n, V, out_path);
    rc = 0;
out:
    if (f)
        fclose(f);
    free(t);
    lfm2_context_free(ctx);
    lfm2_model_free(m);
    return rc;
}

/* ---- info ---------------------------------------------------------------------------------- */

int cmd_info(int argc, char **argv)
{
    const char *C = "info";
    const char *model_path = NULL;
    bool all_kv = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "--kv")) {
            all_kv = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts("usage: lfm2 info -m MODEL [--kv]\n"
                 "  architecture, sizes, layer kinds, tensor types and tokenizer;\n"
                 "  --kv also lists every metadata key");
            return 0;
        } else {
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    lfm2_model *m = load_model(C, model_path);
    if (!m)
        return 1;
    const struct lfm2_hparams *hp = lfm2_model_get_hparams(m);
    const lfm2_gguf *g = lfm2_model_gguf(m);

    printf("file:           %s (%zu bytes, GGUF v%u, alignment %zu)\n", lfm2_model_path(m),
           lfm2_gguf_file_size(g), lfm2_gguf_version(g), lfm2_gguf_alignment(g));
    printf("model:          %s\n", lfm2_model_desc(m));
    printf("id:             %s\n", lfm2_model_id(m));
    printf("architecture:   %s\n", hp->arch);
    printf("parameters:     %llu (%.2f MiB of tensor data)\n",
           (unsigned long long)lfm2_model_n_params(m), lfm2_model_size_bytes(m) / 1048576.0);
    printf("context:        %d (trained)\n", hp->n_ctx_train);
    printf("embedding:      %d\n", hp->n_embd);
    printf("layers:         %d\n", hp->n_layer);
    printf("layer kinds:    ");
    int n_attn = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        bool att = lfm2_model_layer_kind(m, il) == LFM2_LAYER_ATTENTION;
        n_attn += att;
        printf("%s%s", il ? " " : "", att ? "attn" : "conv");
    }
    printf("  (%d conv, %d attention)\n", hp->n_layer - n_attn, n_attn);
    printf("heads:          %d query, %d kv (head dim %d, rope dims %d, freq base %g)\n", hp->n_head,
           hp->n_head_kv_max, hp->head_dim, hp->n_rot, hp->rope_freq_base);
    printf("feed-forward:   %d\n", hp->n_ff);
    printf("conv cache:     %d\n", hp->n_conv_cache);
    printf("rms eps:        %g\n", hp->norm_eps);
    if (hp->n_swa)
        printf("sliding window: %d\n", hp->n_swa);
    if (hp->n_expert)
        printf("experts:        %d (%d used, width %d, %d leading dense layers, weight scale %g)\n",
               hp->n_expert, hp->n_expert_used, hp->n_ff_exp, hp->n_dense_lead,
               hp->expert_weights_scale);

    /* tensor types */
    int64_t counts[256] = { 0 };
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++)
        counts[lfm2_gguf_tensor(g, i)->type & 255]++;
    printf("tensors:        %lld:", (long long)lfm2_gguf_n_tensors(g));
    for (int t = 0; t < 256; t++)
        if (counts[t])
            printf(" %lld %s", (long long)counts[t], lfm2_type_name((uint32_t)t));
    printf("\n");

    char buf[256];
    printf("vocabulary:     %d tokens", lfm2_model_n_vocab(m));
    if (lfm2_gguf_get_str_buf(g, "tokenizer.ggml.model", buf, sizeof buf) > 0)
        printf(", model %s", buf);
    if (lfm2_gguf_get_str_buf(g, "tokenizer.ggml.pre", buf, sizeof buf) > 0)
        printf(", pre-tokenizer %s", buf);
    printf("\n");
    printf("special:        bos %d, eos %d, eot %d, pad %d, add_bos %s\n", lfm2_token_bos(m),
           lfm2_token_eos(m), lfm2_token_eot(m), lfm2_token_pad(m), lfm2_add_bos(m) ? "yes" : "no");
    printf("end of gen:    ");
    for (int t = 0; t < lfm2_model_n_vocab(m); t++)
        if (lfm2_token_is_eog(m, t))
            printf(" %d %s", t, lfm2_token_text(m, t));
    printf("\n");
    printf("chat template:  %s\n", lfm2_model_chat_template(m) ? "yes" : "no");
    printf("cpu:            %s (kernels: %s)\n", lfm2_cpu_features(),
           lfm2_cpu_path_name(lfm2_get_cpu_path()));

    if (all_kv) {
        printf("\nmetadata (%lld keys):\n", (long long)lfm2_gguf_n_kv(g));
        for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++) {
            char line[512];
            lfm2_gguf_kv_format(g, i, line, sizeof line, 80);
            printf("  %-45s %s\n", lfm2_gguf_kv_key(g, i), line);
        }
        printf("\ntensors:\n");
        for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
            const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
            printf("  %-40s %-6s {", t->name, lfm2_type_name(t->type));
            for (int d = 0; d < t->n_dims; d++)
                printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
            printf("}\n");
        }
    }
    lfm2_model_free(m);
    return fflush(stdout) ? cli_fail(C, "write error") : 0;
}
