/* test-cli-parse — the `lfm2` programs' option parser (tools/cli.c): every option kind, both
 * spellings and --name=value, positional arguments and "--", every error, the help text built
 * from the table, and the one-option-at-a-time sampling helper. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"
#include "lfm2-test.h"
#include "lfm2.h"

static int argc_of(char **argv)
{
    int n = 0;
    while (argv[n])
        n++;
    return n;
}

struct vals {
    const char *model;
    int n;
    float temp;
    uint64_t seed;
    bool chat, tiling;
    int mode;
};

static int parse_mode(const char *cmd, const char *opt, const char *value, void *dest)
{
    if (strcmp(value, "a") && strcmp(value, "b"))
        return cli_fail(cmd, "%s: '%s' is neither 'a' nor 'b'", opt, value);
    *(int *)dest = value[0] == 'a' ? 1 : 2;
    return 0;
}

/* Parses argv against the test table into *v (positionals into pos when n_pos != NULL). */
static int run(char **argv, struct vals *v, const char **pos, int *n_pos)
{
    memset(v, 0, sizeof *v);
    v->tiling = true;
    v->n = 128;
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &v->model, "FILE", "model file"),
        CLI_INT("--n-predict", "-n", &v->n, -1, 1000, "N", "tokens"),
        CLI_FLOAT("--temp", NULL, &v->temp, "X", "temperature"),
        CLI_U64("--seed", NULL, &v->seed, "S", "seed"),
        CLI_FLAG("--chat", NULL, &v->chat, "chat layout"),
        CLI_FLAG_OFF("--no-tiling", NULL, &v->tiling, "no tiles"),
        CLI_FLAG_OFF("--no-tile", NULL, &v->tiling, NULL),
        CLI_FUNC("--mode", NULL, &v->mode, parse_mode, "M", "a | b"),
        CLI_END
    };
    static const struct cli_command cmd = { "test", "-m FILE [options]", "  a note\n" };
    return cli_parse(&cmd, opts, argc_of(argv), argv, pos, n_pos);
}

static void test_kinds(void)
{
    struct vals v;
    char *a1[] = { "test", "-m", "x.gguf", "--n-predict", "-1", "--temp=0.5", "--seed",
                   "18446744073709551615", "--chat", "--no-tile", "--mode", "b", NULL };
    CHECK_INT(run(a1, &v, NULL, NULL), CLI_CONTINUE, "all kinds");
    CHECK(v.model && !strcmp(v.model, "x.gguf"), "model");
    CHECK_INT(v.n, -1, "-n -1 (a value may start with '-')");
    CHECK(v.temp == 0.5f, "--temp=0.5");
    CHECK(v.seed == UINT64_MAX, "u64");
    CHECK(v.chat && !v.tiling, "flags");
    CHECK_INT(v.mode, 2, "parse callback");

    /* defaults stay when not given; the last of a repeated option wins */
    char *a2[] = { "test", "-n", "5", "--n-predict=7", NULL };
    CHECK_INT(run(a2, &v, NULL, NULL), CLI_CONTINUE, "repeated");
    CHECK_INT(v.n, 7, "last value wins");
    CHECK(v.model == NULL && v.tiling && !v.chat, "defaults untouched");
}

static void test_positionals(void)
{
    struct vals v;
    const char *pos[4];
    int n_pos = 4;
    char *a1[] = { "test", "a.wav", "-m", "m.gguf", "b.wav", "--", "-c.wav", "--chat", NULL };
    CHECK_INT(run(a1, &v, pos, &n_pos), CLI_CONTINUE, "positionals");
    CHECK_INT(n_pos, 4, "count");
    CHECK(n_pos == 4 && !strcmp(pos[0], "a.wav") && !strcmp(pos[1], "b.wav") &&
              !strcmp(pos[2], "-c.wav") && !strcmp(pos[3], "--chat"),
          "in order, and after \"--\" as they are");
    CHECK(!v.chat, "--chat after \"--\" is an argument");

    n_pos = 1;
    char *a2[] = { "test", "a", "b", NULL };
    CHECK_INT(run(a2, &v, pos, &n_pos), 1, "more positionals than room");
    CHECK_INT(run(a2, &v, NULL, NULL), 1, "a command without positionals refuses them");
    char *a3[] = { "test", "-", NULL };   /* "-" (stdin, by convention) is an argument */
    n_pos = 4;
    CHECK_INT(run(a3, &v, pos, &n_pos), CLI_CONTINUE, "-");
    CHECK_INT(n_pos, 1, "- is positional");
}

static void test_errors(void)
{
    struct vals v;
    char *unknown[] = { "test", "--bogus", NULL };
    char *missing[] = { "test", "-m", NULL };
    char *range[] = { "test", "-n", "1001", NULL };
    char *not_int[] = { "test", "-n", "12abc", NULL };
    char *not_float[] = { "test", "--temp", "warm", NULL };
    char *neg_u64[] = { "test", "--seed", "-1", NULL };
    char *flag_value[] = { "test", "--chat=yes", NULL };
    char *bad_func[] = { "test", "--mode", "c", NULL };
    char *help[] = { "test", "-m", "x", "--help", NULL };
    CHECK_INT(run(unknown, &v, NULL, NULL), 1, "unknown option");
    CHECK_INT(run(missing, &v, NULL, NULL), 1, "missing value");
    CHECK_INT(run(range, &v, NULL, NULL), 1, "out of range");
    CHECK_INT(run(not_int, &v, NULL, NULL), 1, "not an integer");
    CHECK_INT(run(not_float, &v, NULL, NULL), 1, "not a number");
    CHECK_INT(run(neg_u64, &v, NULL, NULL), 1, "negative seed");
    CHECK_INT(run(flag_value, &v, NULL, NULL), 1, "a flag given a value");
    CHECK_INT(run(bad_func, &v, NULL, NULL), 1, "callback refuses");
    CHECK_INT(run(help, &v, NULL, NULL), 0, "--help: exit status 0");
}

static void test_usage(void)
{
    int n = 0;
    bool on = true;
    const char *s = NULL;
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &s, "FILE", "model file"),
        CLI_INT("-p", NULL, &n, 0, 9, "N", "short only"),
        CLI_FLAG_OFF("--no-x", NULL, &on, "long only"),
        CLI_FLAG_OFF("--old-x", NULL, &on, NULL),
        CLI_END
    };
    static const struct cli_command cmd = { "demo", "-m FILE\n--other FORM", "  notes here\n" };
    FILE *f = tmpfile();
    char buf[2048] = { 0 };
    CHECK(f != NULL, "tmpfile");
    if (!f)
        return;
    cli_usage(f, &cmd, opts);
    rewind(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    CHECK(strstr(buf, "usage: lfm2 demo -m FILE\n       lfm2 demo --other FORM\n") != NULL,
          "synopsis forms:\n%s", buf);
    CHECK(strstr(buf, "  -m, --model FILE ") != NULL, "short and long spelling:\n%s", buf);
    CHECK(strstr(buf, "  -p N ") != NULL && strstr(buf, "      --no-x ") != NULL,
          "short-only and long-only:\n%s", buf);
    CHECK(strstr(buf, "--old-x") == NULL, "entries without help are not listed:\n%s", buf);
    CHECK(strstr(buf, "-h, --help") != NULL && strstr(buf, "  notes here\n") != NULL,
          "help line and notes:\n%s", buf);
}

static void test_sampling_opt(void)
{
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    char *argv[] = { "test", "--top-k", "40", "--seed", "7", "--other", "--repeat-last-n", "x",
                     NULL };
    int i = 1;
    CHECK_INT(cli_sampling_opt("test", 8, argv, &i, &sp), 1, "--top-k");
    CHECK_INT(i, 2, "value consumed");
    CHECK_INT(sp.top_k, 40, "top-k");
    i = 3;
    CHECK_INT(cli_sampling_opt("test", 8, argv, &i, &sp), 1, "--seed");
    CHECK(sp.seed == 7, "seed");
    i = 5;
    CHECK_INT(cli_sampling_opt("test", 8, argv, &i, &sp), 0, "not a sampling option");
    i = 6;
    CHECK_INT(cli_sampling_opt("test", 8, argv, &i, &sp), -1, "bad value");
}

int main(void)
{
    test_kinds();
    test_positionals();
    test_errors();
    test_usage();
    test_sampling_opt();
    return lfm2_test_status();
}
