/* lfm2 — command-line front end of the lfm2-gst engine. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2.h"

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lfm2 %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

const char *cli_need_arg(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_fail(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return cli_fail(cmd, "%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s)
        return cli_fail(cmd, "%s: '%s' is not a number", opt, s);
    *out = v;
    return 0;
}

int cli_sampling_opt(const char *cmd, int argc, char **argv, int *i,
                     struct lfm2_sampler_params *sp)
{
    const char *a = argv[*i], *v;
    if (strcmp(a, "--temp") && strcmp(a, "--top-k") && strcmp(a, "--top-p") && strcmp(a, "--min-p") &&
        strcmp(a, "--repeat-penalty") && strcmp(a, "--repeat-last-n") && strcmp(a, "--seed"))
        return 0;
    if (!(v = cli_need_arg(cmd, argc, argv, i)))
        return -1;
    int bad;
    if (!strcmp(a, "--temp"))
        bad = cli_parse_float(cmd, a, v, &sp->temperature);
    else if (!strcmp(a, "--top-k"))
        bad = cli_parse_int(cmd, a, v, 0, 1 << 30, &sp->top_k);
    else if (!strcmp(a, "--top-p"))
        bad = cli_parse_float(cmd, a, v, &sp->top_p);
    else if (!strcmp(a, "--min-p"))
        bad = cli_parse_float(cmd, a, v, &sp->min_p);
    else if (!strcmp(a, "--repeat-penalty"))
        bad = cli_parse_float(cmd, a, v, &sp->repeat_penalty);
    else if (!strcmp(a, "--repeat-last-n"))
        bad = cli_parse_int(cmd, a, v, -1, 1 << 30, &sp->repeat_last_n);
    else { /* --seed */
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        bad = errno || *end || end == v || *v == '-';
        if (bad)
            cli_fail(cmd, "--seed: '%s' is not an unsigned integer", v);
        else
            sp->seed = s;
    }
    return bad ? -1 : 1;
}

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
};

static const struct command commands[] = {
    { "generate", cmd_generate, "-m MODEL -p TEXT [-n N] [-t THREADS] [--chat] [--temp X] [--seed S]  stream generated text" },
    { "tokenize", cmd_tokenize, "-m MODEL -f FILE [--bos] [--no-special]  print token ids, one per line" },
    { "logits", cmd_logits, "-m MODEL --tokens 1,2,3 -o OUT [--decode] [-t THREADS]  write float32 logits [n][n_vocab]" },
    { "info", cmd_info, "-m MODEL  architecture, sizes, tensor types, tokenizer" },
    { "bench", cmd_bench, "-m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]  prompt/generation speed" },
    { "mkmodel", cmd_mkmodel, "--config tiny|350m|700m|1.2b|2.6b|moe-tiny|vl-tiny|... --type q8_0 -o OUT  write a random-weight GGUF" },
#ifdef LFM2_WITH_VISION
    { "embed-image", cmd_embed_image, "--mmproj MMPROJ --image FILE -o OUT  image embeddings [n][n_embd]" },
    { "caption", cmd_caption, "-m MODEL --mmproj MMPROJ --image FILE [-p PROMPT]  describe an image" },
#endif
};

static void usage(FILE *f)
{
    fprintf(f, "usage: lfm2 COMMAND [options]   (lfm2 %s, CPU: %s)\n\ncommands:\n", lfm2_version(),
            lfm2_cpu_features());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nenvironment: LFM2_CPU_PATH=scalar|avx2|avx512 forces a kernel path\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("lfm2 %s\n", lfm2_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lfm2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 1;
}
