/* cli.c — helpers shared by the `lfm2` programs: error reporting and the table-driven option
 * parser (see cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
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

static int parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || *s == '-')
        return cli_fail(cmd, "%s: '%s' is not an unsigned integer", opt, s);
    *out = v;
    return 0;
}

/* ---- the table-driven parser ---------------------------------------------------------- */

static bool takes_value(const struct cli_opt *o)
{
    return o->kind != CLI_KIND_FLAG && o->kind != CLI_KIND_FLAG_OFF;
}

/* The entry spelled `a` (up to len characters), or NULL. */
static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *a, size_t len)
{
    for (const struct cli_opt *o = opts; o->name; o++)
        if ((strlen(o->name) == len && !strncmp(o->name, a, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, a, len)))
            return o;
    return NULL;
}

/* Stores `value` (NULL for flags) as option `o` spelled `opt`; 0, or 1 after reporting. */
static int store(const char *cmd, const struct cli_opt *o, const char *opt, const char *value)
{
    switch (o->kind) {
    case CLI_KIND_FLAG:
        *(bool *)o->dest = true;
        return 0;
    case CLI_KIND_FLAG_OFF:
        *(bool *)o->dest = false;
        return 0;
    case CLI_KIND_STR:
        *(const char **)o->dest = value;
        return 0;
    case CLI_KIND_INT:
        return cli_parse_int(cmd, opt, value, o->lo, o->hi, (int *)o->dest);
    case CLI_KIND_FLOAT:
        return cli_parse_float(cmd, opt, value, (float *)o->dest);
    case CLI_KIND_U64:
        return parse_u64(cmd, opt, value, (uint64_t *)o->dest);
    case CLI_KIND_FUNC:
        return o->parse(cmd, opt, value, o->dest);
    }
    return cli_fail(cmd, "%s: unknown option kind", opt);
}

/* One option at argv[*i] (its value consumed too): 1 done, 0 not in the table, -1 error. */
static int parse_one(const char *cmd, const struct cli_opt *opts, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *eq = NULL, *value = NULL;
    if (a[0] == '-' && a[1] == '-')
        eq = strchr(a, '=');
    const size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const struct cli_opt *o = find_opt(opts, a, len);
    if (!o)
        return 0;
    if (takes_value(o)) {
        if (eq)
            value = eq + 1;
        else if (!(value = cli_need_arg(cmd, argc, argv, i)))
            return -1;
    } else if (eq) {
        cli_fail(cmd, "option %.*s takes no value", (int)len, a);
        return -1;
    }
    char opt[64];
    snprintf(opt, sizeof opt, "%.*s", (int)len, a);
    return store(cmd, o, opt, value) ? -1 : 1;
}

int cli_parse(const struct cli_command *cmd, const struct cli_opt *opts, int argc, char **argv,
              const char **pos, int *n_pos)
{
    const int cap = pos && n_pos ? *n_pos : 0;
    bool options_done = false;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1] != '\0') {
            if (!strcmp(a, "--")) {
                options_done = true;
                continue;
            }
            const int r = parse_one(cmd->name, opts, argc, argv, &i);
            if (r < 0)
                return 1;
            if (r > 0)
                continue;
            if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                cli_usage(stdout, cmd, opts);
                return 0;
            }
            cli_fail(cmd->name, "unknown option '%s' (see lfm2 %s --help)", a, cmd->name);
            return 1;
        }
        if (!pos) {
            cli_fail(cmd->name, "unexpected argument '%s' (see lfm2 %s --help)", a, cmd->name);
            return 1;
        }
        if (n == cap) {
            cli_fail(cmd->name, "too many arguments (at most %d)", cap);
            return 1;
        }
        pos[n++] = a;
    }
    if (n_pos)
        *n_pos = n;
    return CLI_CONTINUE;
}

void cli_usage(FILE *f, const struct cli_command *cmd, const struct cli_opt *opts)
{
    /* one line per synopsis form */
    const char *s = cmd->synopsis ? cmd->synopsis : "[options]";
    for (bool first = true; *s; first = false) {
        const char *nl = strchr(s, '\n');
        const int len = nl ? (int)(nl - s) : (int)strlen(s);
        fprintf(f, "%s lfm2 %s %.*s\n", first ? "usage:" : "      ", cmd->name, len, s);
        s += len + (nl != NULL);
    }
    for (const struct cli_opt *o = opts; o->name; o++) {
        if (!o->help)
            continue;
        /* GNU style, short spelling first: "-m, --model FILE", "    --chat", "-p N" */
        const char *shrt = NULL, *lng = NULL;
        const char *const spellings[2] = { o->name, o->alias };
        for (int k = 0; k < 2; k++)
            if (spellings[k] && spellings[k][1] == '-')
                lng = lng ? lng : spellings[k];
            else if (spellings[k])
                shrt = shrt ? shrt : spellings[k];
        char spell[96];
        if (shrt && lng)
            snprintf(spell, sizeof spell, "%s, %s", shrt, lng);
        else if (shrt)
            snprintf(spell, sizeof spell, "%s", shrt);
        else
            snprintf(spell, sizeof spell, "    %s", lng);
        if (o->arg)
            snprintf(spell + strlen(spell), sizeof spell - strlen(spell), " %s", o->arg);
        fprintf(f, "  %-26s %s\n", spell, o->help);
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "this help");
    if (cmd->notes)
        fputs(cmd->notes, f);
}

int cli_sampling_opt(const char *cmd, int argc, char **argv, int *i,
                     struct lfm2_sampler_params *sp)
{
    const struct cli_opt opts[] = { CLI_SAMPLING_OPTS(sp), CLI_END };
    return parse_one(cmd, opts, argc, argv, i);
}
