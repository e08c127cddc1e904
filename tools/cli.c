/* cli.c — helpers shared by the `lfm2` programs: error reporting and option parsing. */
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
