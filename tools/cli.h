/* cli.h — the `lfm2` command-line programs: the subcommands, error reporting and the one
 * option parser every command uses. Each subcommand returns the process exit status. */
#ifndef LFM2_CLI_H
#define LFM2_CLI_H

#include <stdint.h>
#include <stdio.h>

int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_embed_image(int argc, char **argv);   /* vision (only when built with vision) */
int cmd_caption(int argc, char **argv);
int cmd_embed_audio(int argc, char **argv);   /* audio (only when built with audio) */
int cmd_transcribe(int argc, char **argv);
int cmd_audio_codes(int argc, char **argv);   /* speech output (lfm2-audio, with FFmpeg) */
int cmd_audio_embed(int argc, char **argv);
int cmd_vocode(int argc, char **argv);
int cmd_speak(int argc, char **argv);
int cmd_s2s(int argc, char **argv);

/* Prints "lfm2 <cmd>: <message>" to stderr and returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options -------------------------------------------------------------------------------
 *
 * A command lists its options in ONE table; cli_parse() reads argv with it and --help prints
 * the usage from the same table, so parsing and help never disagree. Example:
 *
 *   int cmd_transcribe(int argc, char **argv)
 *   {
 *       const char *model = NULL, *mmproj = NULL, *format = "text";
 *       int n_threads = 0;
 *       bool timestamps = false;
 *       struct lfm2_sampler_params sp = lfm2_sampler_default_params();
 *       const struct cli_opt opts[] = {
 *           CLI_STR("--model", "-m", &model, "FILE", "LFM2-Audio backbone GGUF"),
 *           CLI_STR("--mmproj", NULL, &mmproj, "FILE", "its audio encoder (mmproj) GGUF"),
 *           CLI_STR("--format", NULL, &format, "FMT", "text | srt | vtt | json (text)"),
 *           CLI_INT("--threads", "-t", &n_threads, 0, 1024, "N", "threads (0 = all cores)"),
 *           CLI_FLAG("--timestamps", NULL, &timestamps, "print segment times"),
 *           CLI_SAMPLING_OPTS(&sp),
 *           CLI_END
 *       };
 *       static const struct cli_command cmd = {
 *           "transcribe", "-m MODEL --mmproj MMPROJ [options] FILE...",
 *           "  prints the transcript of each FILE (anything libav decodes)\n",
 *       };
 *       const char *files[64];
 *       int n_files = 64;
 *       int rc = cli_parse(&cmd, opts, argc, argv, files, &n_files);
 *       if (rc != CLI_CONTINUE)
 *           return rc;           // 0 after --help, 1 after an error (already reported)
 *       ...
 *   }
 *
 * Rules: options come in any order, mixed with positional arguments (collected in order
 * when the command takes them, an error otherwise); "--" ends the options; a value is the
 * next argument (even if it starts with '-', so "-n -1" works) or follows "=" in
 * "--name=value"; a repeated option keeps the last value; -h and --help print the usage to
 * stdout. Bad values are refused with a message naming the option and the accepted range.
 * Entries with help == NULL are accepted but not listed (old spellings). */

enum cli_kind {
    CLI_KIND_FLAG,       /* bool *: set to true */
    CLI_KIND_FLAG_OFF,   /* bool *: set to false (e.g. --no-tiling) */
    CLI_KIND_STR,        /* const char **: the argument itself (not copied) */
    CLI_KIND_INT,        /* int *: a whole decimal integer in [lo, hi] */
    CLI_KIND_FLOAT,      /* float * */
    CLI_KIND_U64,        /* uint64_t *: an unsigned decimal integer */
    CLI_KIND_FUNC,       /* parse(cmd, option, value, dest): 0, or 1 after reporting */
};

struct cli_opt {
    const char *name;          /* "--model" (or a short name when there is no long one) */
    const char *alias;         /* "-m", or NULL */
    enum cli_kind kind;
    void *dest;
    const char *arg;           /* the value's name in the help ("FILE"); NULL for flags */
    const char *help;          /* one line; NULL = not listed */
    long lo, hi;               /* CLI_KIND_INT range */
    int (*parse)(const char *cmd, const char *opt, const char *value, void *dest);
};

#define CLI_FLAG(name, alias, dest, help) \
    { (name), (alias), CLI_KIND_FLAG, (dest), NULL, (help), 0, 0, NULL }
#define CLI_FLAG_OFF(name, alias, dest, help) \
    { (name), (alias), CLI_KIND_FLAG_OFF, (dest), NULL, (help), 0, 0, NULL }
#define CLI_STR(name, alias, dest, arg, help) \
    { (name), (alias), CLI_KIND_STR, (dest), (arg), (help), 0, 0, NULL }
#define CLI_INT(name, alias, dest, lo, hi, arg, help) \
    { (name), (alias), CLI_KIND_INT, (dest), (arg), (help), (lo), (hi), NULL }
#define CLI_FLOAT(name, alias, dest, arg, help) \
    { (name), (alias), CLI_KIND_FLOAT, (dest), (arg), (help), 0, 0, NULL }
#define CLI_U64(name, alias, dest, arg, help) \
    { (name), (alias), CLI_KIND_U64, (dest), (arg), (help), 0, 0, NULL }
#define CLI_FUNC(name, alias, dest, parse, arg, help) \
    { (name), (alias), CLI_KIND_FUNC, (dest), (arg), (help), 0, 0, (parse) }
#define CLI_END { NULL, NULL, CLI_KIND_FLAG, NULL, NULL, NULL, 0, 0, NULL }

/* The sampling options of every generating command, into a struct lfm2_sampler_params *:
 * --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed. */
#define CLI_SAMPLING_OPTS(sp)                                                                  \
    CLI_FLOAT("--temp", NULL, &(sp)->temperature, "X", "temperature (0 = greedy)"),            \
    CLI_INT("--top-k", NULL, &(sp)->top_k, 0, 1 << 30, "N", "keep the N most likely tokens (0 = off)"), \
    CLI_FLOAT("--top-p", NULL, &(sp)->top_p, "X", "nucleus sampling mass (1 = off)"),          \
    CLI_FLOAT("--min-p", NULL, &(sp)->min_p, "X",                                             \
              "drop tokens below X × the most likely one (0 = off)"),                         \
    CLI_FLOAT("--repeat-penalty", NULL, &(sp)->repeat_penalty, "X", "repetition penalty (1 = off)"), \
    CLI_INT("--repeat-last-n", NULL, &(sp)->repeat_last_n, -1, 1 << 30, "N",                  \
            "tokens the penalty looks back over (64; -1 = all)"),                         \
    CLI_U64("--seed", NULL, &(sp)->seed, "S", "sampler seed")

struct cli_command {
    const char *name;          /* "generate" */
    const char *synopsis;      /* after "usage: lfm2 generate "; '\n' starts another form */
    const char *notes;         /* printed after the options (lines indented by two), or NULL */
};

#define CLI_CONTINUE (-1)

/* Parses argv[1 ..] (argv[0] is the command name). Positional arguments go to pos[] (at most
 * *n_pos of them; *n_pos becomes their count); pos == NULL refuses them. Returns CLI_CONTINUE
 * to go on, or the exit status to return now: 0 after --help, 1 after an error (reported). */
int cli_parse(const struct cli_command *cmd, const struct cli_opt *opts, int argc, char **argv,
              const char **pos, int *n_pos);
/* The usage text built from the table (what --help prints). */
void cli_usage(FILE *f, const struct cli_command *cmd, const struct cli_opt *opts);

/* ---- for commands not yet on cli_parse() (one option at a time) -------------------------- */

/* The value of option argv[*i] (advancing *i), or NULL after reporting a missing value. */
const char *cli_need_arg(const char *cmd, int argc, char **argv, int *i);
/* Parse a whole string as an integer in [lo, hi] / a float; 0 on success, else 1 (reported). */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, float *out);

struct lfm2_sampler_params;
/* The sampling options above, one at a time: 1 if argv[*i] was one (value consumed), 0 if
 * not, -1 on a bad value (reported). */
int cli_sampling_opt(const char *cmd, int argc, char **argv, int *i,
                     struct lfm2_sampler_params *sp);

#endif
