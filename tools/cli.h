/* cli.h — subcommands of the `lfm2` command-line program. Each returns the exit status. */
#ifndef LFM2_CLI_H
#define LFM2_CLI_H

int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_embed_image(int argc, char **argv);   /* vision (only when built with vision) */
int cmd_caption(int argc, char **argv);
int cmd_audio_codes(int argc, char **argv);   /* speech output (lfm2-audio, with FFmpeg) */
int cmd_audio_embed(int argc, char **argv);
int cmd_vocode(int argc, char **argv);
int cmd_speak(int argc, char **argv);

/* Prints "lfm2 <cmd>: <message>" to stderr and returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value of option argv[*i] (advancing *i), or NULL after reporting a missing value. */
const char *cli_need_arg(const char *cmd, int argc, char **argv, int *i);
/* Parse a whole string as an integer in [lo, hi] / a float; 0 on success, else 1 (reported). */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
int cli_parse_float(const char *cmd, const char *opt, const char *s, float *out);

struct lfm2_sampler_params;
/* Sampling options shared by every generating command: --temp, --top-k, --top-p, --min-p,
 * --repeat-penalty, --repeat-last-n, --seed. Returns 1 if argv[*i] was one (value consumed),
 * 0 if not, -1 on a bad value (reported). */
int cli_sampling_opt(const char *cmd, int argc, char **argv, int *i,
                     struct lfm2_sampler_params *sp);

#endif
