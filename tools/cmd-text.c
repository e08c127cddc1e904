/* cmd-text.c — `lfm2 generate`, `lfm2 tokenize`, `lfm2 logits`, `lfm2 info`. */
#include <ctype.h>
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

struct generate_args {
    const char *model_path, *prompt, *prompt_file, *system;
    int n_predict, n_threads, n_ctx;
    bool chat, special;
    struct lfm2_sampler_params sp;
};

/* The prompt: -p, or the text of the -f file (it wins when both are given). A NUL byte would
 * cut the text short unseen, so a file with one is refused; so is a prompt that is empty or
 * only white space — checked on the text, since BOS and the chat layout always give tokens.
 * Returns the prompt (*file_text holds the file's text, to free), or NULL after reporting. */
static const char *read_prompt(const char *C, const struct generate_args *a, char **file_text)
{
    const char *prompt = a->prompt;
    if (a->prompt_file) {
        size_t len = 0;
        if (!(*file_text = read_file(C, a->prompt_file, &len)))
            return NULL;
        const char *nul = memchr(*file_text, '\0', len);
        if (nul) {
            cli_fail(C, "%s: NUL byte at offset %zu: the prompt file must be text", a->prompt_file,
                     (size_t)(nul - *file_text));
            return NULL;
        }
        prompt = *file_text;
    }
    for (const char *p = prompt; *p; p++)
        if (!isspace((unsigned char)*p))
            return prompt;
    cli_fail(C, "%s%sthe prompt is empty%s", a->prompt_file ? a->prompt_file : "",
             a->prompt_file ? ": " : "", *prompt ? " (only white space)" : "");
    return NULL;
}

/* The text to tokenize: the prompt itself, or with --chat the LFM2 chat layout around it
 * (*rendered holds it, to free). NULL after reporting. */
static const char *render_prompt(const char *C, const struct generate_args *a, const char *prompt,
                                 char **rendered)
{
    if (!a->chat)
        return prompt;
    struct lfm2_chat_message msgs[2];
    size_t n = 0;
    if (a->system)
        msgs[n++] = (struct lfm2_chat_message){ "system", a->system };
    msgs[n++] = (struct lfm2_chat_message){ "user", prompt };
    const int32_t need = lfm2_chat_apply(msgs, n, NULL, true, NULL, 0);   /* -(capacity) */
    if (need == INT32_MIN || !(*rendered = malloc((size_t)-need))) {
        cli_fail(C, "cannot render the chat prompt");
        return NULL;
    }
    lfm2_chat_apply(msgs, n, NULL, true, *rendered, -need);
    return *rendered;
}

/* Samples up to n_predict tokens (-1 = until the end of the turn), streaming the text to
 * stdout. Returns the number generated, or -1 after reporting. */
static int stream_tokens(const char *C, const lfm2_model *m, lfm2_context *ctx, lfm2_sampler *smp,
                         int n_predict)
{
    struct lfm2_detok dt;
    char piece[256];
    int n_gen = 0;
    lfm2_detok_init(&dt, false);
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
            return -1;
        }
    }
    int32_t w = lfm2_detok_flush(&dt, piece, sizeof piece);
    if (w > 0)
        fwrite(piece, 1, (size_t)w, stdout);
    fputc('\n', stdout);
    return n_gen;
}

int cmd_generate(int argc, char **argv)
{
    const char *C = "generate";
    struct generate_args a = { .n_predict = 128, .special = true,
                               .sp = lfm2_sampler_default_params() };
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &a.model_path, "FILE", "LFM2 GGUF file"),
        CLI_STR("--prompt", "-p", &a.prompt, "TEXT", "prompt (or -f FILE)"),
        CLI_STR("--file", "-f", &a.prompt_file, "FILE", "read the prompt from a text file"),
        CLI_INT("--n-predict", "-n", &a.n_predict, -1, INT_MAX, "N",
                "tokens to generate (default 128, -1 = until end of turn)"),
        CLI_INT("--threads", "-t", &a.n_threads, 0, 1024, "N", "threads (default: all cores)"),
        CLI_INT("--ctx-size", "-c", &a.n_ctx, 0, INT_MAX, "N",
                "context length (default min(trained, 4096))"),
        CLI_FLAG("--chat", NULL, &a.chat, "wrap the prompt as a user turn in the LFM2 chat layout"),
        CLI_STR("--system", "-s", &a.system, "TEXT", "system message (with --chat)"),
        CLI_SAMPLING_OPTS(&a.sp),
        CLI_FLAG_OFF("--no-special", NULL, &a.special,
                     "do not parse control-token text in the prompt"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "generate", "-m MODEL -p TEXT [options]",
        "  sampling defaults: --temp 0.3 --min-p 0.15 --repeat-penalty 1.05 --repeat-last-n 64;\n"
        "  --seed 4294967295 (the default) draws a random seed\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!a.prompt && !a.prompt_file) {
        cli_usage(stderr, &cmd, opts);
        return cli_fail(C, "no prompt given (-p TEXT or -f FILE)");
    }

    rc = 1;
    char *file_text = NULL, *rendered = NULL;
    lfm2_model *m = NULL;
    lfm2_context *ctx = NULL;
    lfm2_sampler *smp = NULL;
    lfm2_token *toks = NULL;
    const char *prompt = read_prompt(C, &a, &file_text), *text;
    if (!prompt || !(m = load_model(C, a.model_path)) ||
        !(text = render_prompt(C, &a, prompt, &rendered)))
        goto out;
    int32_t n_prompt = 0;
    if (!(toks = tokenize_all(C, m, text, strlen(text), lfm2_add_bos(m), a.special, &n_prompt)))
        goto out;

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = a.n_ctx;
    cp.n_threads = a.n_threads;
    if (!(ctx = lfm2_context_new(m, cp)) || !(smp = lfm2_sampler_new(m, a.sp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (n_prompt >= lfm2_n_ctx(ctx)) {
        cli_fail(C, "the prompt has %d tokens but the context holds %d", n_prompt, lfm2_n_ctx(ctx));
        goto out;
    }
    for (int32_t i = 0; i < n_prompt; i++)
        lfm2_sampler_accept(smp, toks[i]);

    if (!a.chat)
        fputs(text, stdout); /* like llama.cpp: echo the raw prompt, then the continuation */
    fflush(stdout);

    const double t0 = lfm2_time_ms();
    if (lfm2_decode(ctx, lfm2_batch_tokens(toks, n_prompt))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double t_prompt = lfm2_time_ms() - t0, t1 = lfm2_time_ms();
    const int n_gen = stream_tokens(C, m, ctx, smp, a.n_predict);
    if (n_gen < 0)
        goto out;
    const double t_gen = lfm2_time_ms() - t1;

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
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model_path, "FILE", "LFM2 GGUF file"),
        CLI_STR("--file", "-f", &file, "FILE", "the UTF-8 text to tokenize"),
        CLI_STR("--prompt", "-p", &prompt, "TEXT", "tokenize TEXT instead of a file"),
        CLI_FLAG("--bos", NULL, &bos, "add BOS first"),
        CLI_FLAG_OFF("--no-special", NULL, &special,
                     "control-token text (e.g. <|im_start|>) stays text, not its id"),
        CLI_FLAG_OFF("--no-parse-special", NULL, &special, NULL),
        CLI_END
    };
    static const struct cli_command cmd = {
        "tokenize", "-m MODEL -f FILE [--bos] [--no-special]",
        "  prints the token ids, one per line\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
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
    rc = 1;
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
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model_path, "FILE", "LFM2 GGUF file"),
        CLI_STR("--tokens", NULL, &tokens, "IDS", "comma-separated token ids"),
        CLI_STR("--output", "-o", &out_path, "FILE", "where the logits go"),
        CLI_FLAG("--decode", NULL, &decode, "one token per call instead of one batched prefill"),
        CLI_INT("--threads", "-t", &n_threads, 0, 1024, "N", "threads (default: all cores)"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "logits", "-m MODEL --tokens 1,2,3 -o OUT [--decode] [-t THREADS]",
        "  writes little-endian float32 logits [n_tokens][n_vocab] for every position\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!tokens)
        return cli_fail(C, "no tokens given (--tokens 1,2,3)");
    if (!out_path)
        return cli_fail(C, "no output file given (-o OUT)");
    lfm2_token *t = NULL;
    int32_t n = 0;
    if (parse_token_list(C, tokens, &t, &n))
        return 1;

    rc = 1;
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
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model_path, "FILE", "LFM2 GGUF file"),
        CLI_FLAG("--kv", NULL, &all_kv, "also every metadata key and every tensor"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "info", "-m MODEL [--kv]",
        "  architecture, sizes, layer kinds, tensor types and tokenizer\n",
    };
    const int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
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
