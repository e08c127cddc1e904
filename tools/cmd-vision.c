/* cmd-vision.c — `lfm2 embed-image` and `lfm2 caption` (LFM2-VL). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2-ops.h"
#include "lfm2-vision.h"
#include "lfm2.h"

/* What both commands take: the projector, the picture and the planning parameters. The
 * image settings given on the command line are kept apart (-1 / NAN = not given) so that they
 * go over a --preprocessor-config file, which goes over the defaults and the mmproj's. */
struct vision_args {
    const char *mmproj, *image, *config;
    struct lfm2_vision_params vp;
    struct lfm2_vision_config cfg;
    bool tiling_on, tiling_off, thumb_on, thumb_off;
    int min_tiles, max_tiles, min_tokens, max_tokens, resample;
    float tolerance;
};

#define VISION_ARGS_INIT                                                                       \
    { .vp = lfm2_vision_default_params(), .min_tiles = -1, .max_tiles = -1, .min_tokens = -1,   \
      .max_tokens = -1, .resample = -1, .tolerance = NAN }

static int parse_preprocess(const char *C, const char *opt, const char *value, void *dest)
{
    const int m = lfm2_vision_preprocess_from_name(value);
    if (m < 0)
        return cli_fail(C, "%s: '%s' is neither 'official' nor 'llamacpp'", opt, value);
    *(enum lfm2_vision_preprocess *)dest = (enum lfm2_vision_preprocess)m;
    return 0;
}

static int parse_resample(const char *C, const char *opt, const char *value, void *dest)
{
    const int r = lfm2_vision_resample_from_name(value);
    if (r < 0)
        return cli_fail(C, "%s: '%s' is not 'bilinear', 'bicubic' or 'auto'", opt, value);
    *(int *)dest = r;
    return 0;
}

#define VISION_OPTS(a)                                                                         \
    CLI_STR("--mmproj", NULL, &(a)->mmproj, "FILE", "LFM2-VL mmproj GGUF (encoder + projector)"), \
    CLI_STR("--image", NULL, &(a)->image, "FILE", "the picture (PNG, JPEG, PPM, ...)"),       \
    CLI_FUNC("--preprocess", NULL, &(a)->vp.preprocess, parse_preprocess, "MODE",             \
             "official (transformers, default) | llamacpp (mtmd exactly)"),                   \
    CLI_STR("--preprocessor-config", NULL, &(a)->config, "FILE",                              \
            "the model's preprocessor_config.json / processor_config.json (or its directory)"), \
    CLI_INT("--min-image-tokens", NULL, &(a)->min_tokens, 1, 16384, "N",                     \
            "smallest image / thumbnail budget (64)"),                                         \
    CLI_INT("--max-image-tokens", NULL, &(a)->max_tokens, 1, 16384, "N",                     \
            "largest image / thumbnail budget (256)"),                                         \
    CLI_FLAG("--do-tiling", NULL, &(a)->tiling_on, "split large pictures into 512×512 tiles (default)"), \
    CLI_FLAG("--no-tiling", NULL, &(a)->tiling_off, "never split into tiles (do_image_splitting false)"), \
    CLI_INT("--min-tiles", NULL, &(a)->min_tiles, 1, 100, "N", "fewest tiles of a grid (2)"),   \
    CLI_INT("--max-tiles", NULL, &(a)->max_tiles, 1, 100, "N", "most tiles of a grid (10)"),    \
    CLI_FLOAT("--max-pixels-tolerance", NULL, &(a)->tolerance, "X",                           \
              "tile when the area exceeds X × the token budget (2.0)"),                       \
    CLI_FLAG("--use-thumbnail", NULL, &(a)->thumb_on, "official mode: thumbnail after the tiles (default)"), \
    CLI_FLAG("--no-thumbnail", NULL, &(a)->thumb_off, "official mode: no thumbnail after the tiles"), \
    CLI_FUNC("--resample", NULL, &(a)->resample, parse_resample, "FILTER",                   \
             "bilinear | bicubic (Pillow's; default: the mmproj's, else bilinear)"),          \
    CLI_INT("--threads", "-t", &(a)->vp.n_threads, 0, 1024, "N", "threads (0 = all cores)"),  \
    CLI_FLAG("--verbose", "-v", &(a)->vp.verbose, "verbose")

/* The image settings in force: defaults, then the config file, then the options given. 0, or
 * 1 after reporting. */
static int vision_settings(const char *C, struct vision_args *a)
{
    if (a->tiling_on && a->tiling_off)
        return cli_fail(C, "--do-tiling and --no-tiling together");
    if (a->thumb_on && a->thumb_off)
        return cli_fail(C, "--use-thumbnail and --no-thumbnail together");
    if (a->config && lfm2_vision_read_config(a->config, &a->vp, &a->cfg))
        return cli_fail(C, "%s", lfm2_last_error());
    struct lfm2_vision_params *p = &a->vp;
    if (a->tiling_on || a->tiling_off)
        p->do_tiling = a->tiling_on;
    if (a->thumb_on || a->thumb_off)
        p->use_thumbnail = a->thumb_on;
    if (a->min_tiles > 0)
        p->min_tiles = a->min_tiles;
    if (a->max_tiles > 0)
        p->max_tiles = a->max_tiles;
    if (a->min_tokens > 0)
        p->min_image_tokens = a->min_tokens;
    if (a->max_tokens > 0)
        p->max_image_tokens = a->max_tokens;
    if (a->resample >= 0)
        p->resample = (enum lfm2_vision_resample)a->resample;
    if (!isnan(a->tolerance)) {
        if (!(a->tolerance > 0.0f))
            return cli_fail(C, "--max-pixels-tolerance: %g is not a positive number",
                            (double)a->tolerance);
        p->max_pixels_tolerance = a->tolerance;
    }
    return 0;
}

/* Loads the mmproj with the settings in force and checks the config against it. NULL after
 * reporting. */
static lfm2_vision *vision_load(const char *C, const struct vision_args *a)
{
    lfm2_vision *v = lfm2_vision_load(a->mmproj, a->vp);
    if (!v || (a->config && lfm2_vision_check_config(v, a->config, &a->cfg))) {
        cli_fail(C, "%s", lfm2_last_error());
        lfm2_vision_free(v);
        return NULL;
    }
    return v;
}

static void describe_plan(FILE *f, const struct lfm2_vision_plan *p)
{
    fprintf(f, "%d×%d (%s): ", p->src_w, p->src_h, lfm2_vision_preprocess_name(p->mode));
    if (p->tiled) {
        fprintf(f, "%d×%d tiles of %d tokens (refined %d×%d", p->n_cols, p->n_rows, p->tile_tokens,
                p->refined_w, p->refined_h);
        if (p->content_w != p->refined_w || p->content_h != p->refined_h)
            fprintf(f, ", picture %d×%d at +%d+%d", p->content_w, p->content_h, p->content_x,
                    p->content_y);
        fprintf(f, ")");
        if (p->has_thumb)
            fprintf(f, " + thumbnail %d×%d (%d tokens)", p->thumb_w, p->thumb_h, p->thumb_tokens);
    } else {
        fprintf(f, "single image %d×%d", p->thumb_w, p->thumb_h);
    }
    fprintf(f, " = %d image tokens", p->n_tokens);
    if (p->mode == LFM2_VISION_PREPROCESS_OFFICIAL)
        fprintf(f, ", %s", lfm2_vision_resample_name(p->resample));
    fputc('\n', f);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Encoder speed: ms per 512×512 tile-sized image (256 output tokens), median of reps. */
static int bench_tile(const char *C, lfm2_vision *v, int reps, bool json, const char *mmproj)
{
    const int S = LFM2_VISION_TILE_SIZE;
    uint8_t *pix = malloc((size_t)S * S * 3);
    double *ms = malloc(sizeof *ms * (size_t)(reps > 0 ? reps : 1));
    float *out = NULL;
    int rc = 1;
    if (!pix || !ms)
        goto done;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            uint8_t *p = pix + ((size_t)y * S + x) * 3;
            p[0] = (uint8_t)(x / 2);
            p[1] = (uint8_t)(y / 2);
            p[2] = (uint8_t)(((x / 16 + y / 16) & 1) * 255);
        }
    const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams(v);
    const int rows = (S / (hp->patch_size * hp->merge)) * (S / (hp->patch_size * hp->merge));
    out = malloc(sizeof *out * (size_t)rows * hp->n_embd_out);
    if (!out)
        goto done;
    if (lfm2_vision_encode_chunk(v, pix, S, S, (size_t)S * 3, out, (size_t)rows * hp->n_embd_out) < 0) {
        cli_fail(C, "%s", lfm2_last_error());
        goto done;
    }
    for (int r = 0; r < reps; r++) {
        const double t0 = lfm2_time_ms();
        lfm2_vision_encode_chunk(v, pix, S, S, (size_t)S * 3, out, (size_t)rows * hp->n_embd_out);
        ms[r] = lfm2_time_ms() - t0;
    }
    const struct lfm2_vision_timings tm = lfm2_vision_last_timings(v);   /* the last run */
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    const double med = ms[reps / 2];
    if (json) {
        printf("{\"mmproj\": \"%s\", \"desc\": \"%s\", \"threads\": %d, \"tile\": %d, "
               "\"tokens_per_tile\": %d, \"reps\": %d, \"tile_ms_median\": %.2f, \"tile_ms_min\": %.2f, "
               "\"tile_ms_max\": %.2f, \"last_matmul_ms\": %.2f, \"last_attention_ms\": %.2f}\n",
               mmproj, lfm2_vision_desc(v), lfm2_pool_n_threads(lfm2_vision_pool(v)), S, rows, reps,
               med, ms[0], ms[reps - 1], tm.matmul_ms, tm.attention_ms);
    } else {
        printf("encoder: %s\n", lfm2_vision_desc(v));
        printf("threads %d, %d×%d tile (%d tokens): median %.1f ms (min %.1f, max %.1f) over %d runs\n",
               lfm2_pool_n_threads(lfm2_vision_pool(v)), S, S, rows, med, ms[0], ms[reps - 1], reps);
        printf("last run: matrix products %.1f ms, attention %.1f ms, rest %.1f ms\n", tm.matmul_ms,
               tm.attention_ms, tm.encode_ms - tm.matmul_ms - tm.attention_ms);
    }
    rc = 0;
done:
    free(pix);
    free(ms);
    free(out);
    return rc;
}

/* Loads, plans and encodes the picture: *embd gets plan->n_tokens rows (free it). Encodes
 * `reps` times and gives the best time in *best_ms. 0, or 1 after reporting. */
static int encode_image(const char *C, lfm2_vision *v, const char *path, int reps,
                        struct lfm2_vision_plan *plan, float **embd, double *best_ms)
{
    struct lfm2_vision_image img = { 0 };
    int rc = 1;
    if (lfm2_vision_image_load(path, &img)) {
        cli_fail(C, "%s", lfm2_last_error());
        return 1;
    }
    if (lfm2_vision_plan_image(v, img.width, img.height, plan)) {
        cli_fail(C, "%s: %s", path, lfm2_last_error());
        goto out;
    }
    const size_t n_floats = (size_t)plan->n_tokens * lfm2_vision_n_embd_out(v);
    if (!(*embd = malloc(sizeof **embd * n_floats))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    *best_ms = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = lfm2_time_ms();
        if (lfm2_vision_encode(v, &img, plan, *embd, n_floats) < 0) {
            cli_fail(C, "%s: %s", path, lfm2_last_error());
            goto out;
        }
        const double dt = lfm2_time_ms() - t0;
        *best_ms = dt < *best_ms ? dt : *best_ms;
    }
    rc = 0;
out:
    lfm2_vision_image_free(&img);
    return rc;
}

/* The embeddings as raw little-endian float32. 0, or 1 after reporting. */
static int write_floats(const char *C, const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof *x, n, f) != n) {
        cli_fail(C, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    if (fclose(f))
        return cli_fail(C, "%s: %s", path, strerror(errno));
    return 0;
}

/* The token layout of the picture for this text model, marker tokens by name, rows counted:
 * "<|image_start|> [256 rows] ... <|image_end|>". 0, or 1 after reporting. */
static int print_layout(const char *C, FILE *f, const lfm2_model *text,
                        const struct lfm2_vision_plan *plan)
{
    const int32_t n = lfm2_vision_layout(text, plan, NULL, 0);
    lfm2_token *layout;
    if (n == INT32_MIN || !(layout = malloc(sizeof *layout * (size_t)(-n > 0 ? -n : 1))))
        return cli_fail(C, "%s", lfm2_last_error());
    const int32_t m = lfm2_vision_layout(text, plan, layout, -n);
    for (int32_t i = 0; i < m;) {
        if (layout[i] == LFM2_VISION_EMBD) {
            int32_t j = i;
            while (j < m && layout[j] == LFM2_VISION_EMBD)
                j++;
            fprintf(f, " [%d rows]", j - i);
            i = j;
        } else {
            const char *t = lfm2_token_text(text, layout[i]);
            fprintf(f, " %s", t ? t : "?");
            i++;
        }
    }
    fputc('\n', f);
    free(layout);
    return 0;
}

/* --plan: one line per WxH argument, "WxH TOKENS LAYOUT…" (the layout needs -m), or
 * "WxH refused: REASON". Returns 0, or 1 when a size was refused or malformed. */
static int print_plans(const char *C, const lfm2_vision *v, const lfm2_model *text,
                       const char **sizes, int n_sizes)
{
    int rc = 0;
    for (int i = 0; i < n_sizes; i++) {
        int w, h, end = 0;
        if (sscanf(sizes[i], "%dx%d%n", &w, &h, &end) != 2 || sizes[i][end] != '\0') {
            rc = cli_fail(C, "'%s' is not a size WxH", sizes[i]);
            continue;
        }
        struct lfm2_vision_plan plan;
        if (lfm2_vision_plan_image(v, w, h, &plan)) {
            printf("%dx%d refused: %s\n", w, h, lfm2_last_error());
            rc = 1;
            continue;
        }
        printf("%dx%d %d", w, h, plan.n_tokens);
        if (text) {
            if (print_layout(C, stdout, text, &plan))
                return 1;
        } else {
            putchar('\n');
        }
    }
    return rc;
}

int cmd_embed_image(int argc, char **argv)
{
    const char *C = "embed-image";
    struct vision_args va = VISION_ARGS_INIT;
    const char *outp = NULL, *text_path = NULL;
    const char *sizes[4096];
    int n_sizes = 4096;
    bool bench = false, json = false, plan_only = false;
    int reps = 5;
    const struct cli_opt opts[] = {
        VISION_OPTS(&va),
        CLI_STR("--output", "-o", &outp, "FILE", "where the embeddings go"),
        CLI_STR("--model", "-m", &text_path, "FILE",
                "check the projector against this text model; print the layout"),
        CLI_FLAG("--bench", NULL, &bench,
                 "encoder time per 512×512 tile (and per --image if given)"),
        CLI_INT("--reps", "-r", &reps, 1, 1000, "N", "--bench: runs (5)"),
        CLI_FLAG("--json", NULL, &json, "--bench: one JSON object"),
        CLI_FLAG("--plan", NULL, &plan_only,
                 "print the plan of each SIZE (WxH): image tokens and, with -m, the layout"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "embed-image", "--mmproj MMPROJ --image FILE -o OUT [options]\n"
        "--mmproj MMPROJ --bench [-r N] [--json]\n"
        "--mmproj MMPROJ [-m MODEL] --plan [options] WxH...",
        "  writes float32 [n_image_tokens][n_embd] (tiles row-major, then the thumbnail)\n"
        "  image settings: defaults, then the mmproj's resample, then --preprocessor-config,\n"
        "  then the options given\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, sizes, &n_sizes);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!va.mmproj) {
        cli_usage(stderr, &cmd, opts);
        return cli_fail(C, "no --mmproj given");
    }
    if (n_sizes > 0 && !plan_only)
        return cli_fail(C, "unexpected argument '%s' (sizes go with --plan)", sizes[0]);
    if (!bench && !plan_only && (!va.image || !outp)) {
        cli_usage(stderr, &cmd, opts);
        return cli_fail(C, "need --image FILE and -o OUT");
    }
    if (vision_settings(C, &va))
        return 1;
    if (!va.vp.verbose)
        lfm2_vision_quiet_ffmpeg_log();

    rc = 1;
    lfm2_model *text = NULL;
    float *embd = NULL;
    lfm2_vision *v = vision_load(C, &va);
    if (!v)
        goto out;
    if (text_path) {
        struct lfm2_model_params mp = lfm2_model_default_params();
        if (!(text = lfm2_model_load(text_path, mp)) || lfm2_vision_check_text_model(v, text)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
    }
    if (plan_only) {
        rc = print_plans(C, v, text, sizes, n_sizes);
        goto out;
    }
    if (bench && bench_tile(C, v, reps, json, va.mmproj))
        goto out;
    if (!va.image) {
        rc = 0;
        goto out;
    }
    struct lfm2_vision_plan plan;
    double best;
    if (encode_image(C, v, va.image, bench ? reps : 1, &plan, &embd, &best) ||
        (outp && write_floats(C, outp, embd, (size_t)plan.n_tokens * lfm2_vision_n_embd_out(v))))
        goto out;
    const struct lfm2_vision_timings tm = lfm2_vision_last_timings(v);
    describe_plan(stderr, &plan);
    fprintf(stderr, "encoded in %.1f ms (preprocess %.1f ms, encoder %.1f ms, %d chunk%s)%s\n", best,
            tm.preprocess_ms, tm.encode_ms, tm.n_chunks, tm.n_chunks == 1 ? "" : "s",
            bench ? " [best of --reps]" : "");
    printf("%d\n", plan.n_tokens);
    if (text) {
        fprintf(stderr, "layout:");
        if (print_layout(C, stderr, text, &plan))
            goto out;
    }
    rc = 0;
out:
    free(embd);
    lfm2_model_free(text);
    lfm2_vision_free(v);
    return rc;
}

/* caption: the prompt (system turn, user turn with the picture's layout, assistant prompt) as
 * token ids with LFM2_VISION_EMBD where the rows go; *n gets its length. NULL after
 * reporting. */
static lfm2_token *caption_prompt(const char *C, const lfm2_model *m, const char *system,
                                  const char *prompt, const struct lfm2_vision_plan *plan,
                                  int32_t *n)
{
    int32_t n_seq = lfm2_vision_chat_prompt(m, system, prompt, plan, NULL, 0);
    lfm2_token *seq;
    if (n_seq == INT32_MIN) {
        cli_fail(C, "%s", lfm2_last_error());
        return NULL;
    }
    n_seq = n_seq < 0 ? -n_seq : n_seq;
    if (!(seq = malloc(sizeof *seq * (size_t)(n_seq > 0 ? n_seq : 1))) ||
        lfm2_vision_chat_prompt(m, system, prompt, plan, seq, n_seq) != n_seq) {
        cli_fail(C, "%s", seq ? lfm2_last_error() : "out of memory");
        free(seq);
        return NULL;
    }
    *n = n_seq;
    return seq;
}

/* caption: samples up to n_predict tokens, streaming the text to stdout; *t_first gets the
 * time of the first token. Returns the number generated, or -1 after reporting. */
static int stream_caption(const char *C, const lfm2_model *m, lfm2_context *ctx,
                          lfm2_sampler *smp, int n_predict, double *t_first)
{
    struct lfm2_detok dt;
    char piece[256];
    int n_gen = 0;
    lfm2_detok_init(&dt, false);
    while (n_gen < n_predict && lfm2_n_past(ctx) < lfm2_n_ctx(ctx)) {
        const lfm2_token t = lfm2_sampler_sample(smp, lfm2_get_logits(ctx, -1));
        lfm2_sampler_accept(smp, t);
        n_gen++;
        if (n_gen == 1)
            *t_first = lfm2_time_ms();
        if (lfm2_token_is_eog(m, t))
            break;
        const int32_t w = lfm2_detok_push(m, &dt, t, piece, sizeof piece);
        if (w > 0)
            fwrite(piece, 1, (size_t)w, stdout);
        fflush(stdout);
        if (n_gen >= n_predict)
            break;
        if (lfm2_decode(ctx, lfm2_batch_tokens(&t, 1))) {
            cli_fail(C, "%s", lfm2_last_error());
            return -1;
        }
    }
    const int32_t w = lfm2_detok_flush(&dt, piece, sizeof piece);
    if (w > 0)
        fwrite(piece, 1, (size_t)w, stdout);
    fputc('\n', stdout);
    return n_gen;
}

int cmd_caption(int argc, char **argv)
{
    const char *C = "caption";
    struct vision_args va = VISION_ARGS_INIT;
    const char *model_path = NULL, *system = NULL, *prompt = "Describe this image.";
    int n_predict = 128, n_ctx = 0;
    /* LFM2-VL model card recommendations */
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    sp.temperature = 0.1f;
    sp.min_p = 0.15f;
    sp.repeat_penalty = 1.05f;
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model_path, "FILE", "LFM2-VL backbone GGUF"),
        VISION_OPTS(&va),
        CLI_STR("--prompt", "-p", &prompt, "TEXT", "the request (\"Describe this image.\")"),
        CLI_STR("--system", "-s", &system, "TEXT", "system prompt"),
        CLI_INT("--n-predict", "-n", &n_predict, 0, 1 << 20, "N", "most tokens to generate (128)"),
        CLI_INT("--ctx-size", "-c", &n_ctx, 0, INT_MAX, "N",
                "context size (0 = what the prompt needs + N)"),
        CLI_SAMPLING_OPTS(&sp),
        CLI_END
    };
    static const struct cli_command cmd = {
        "caption", "-m MODEL --mmproj MMPROJ --image FILE [options]",
        "  sampling defaults (LFM2-VL model card): --temp 0.1 --min-p 0.15 --repeat-penalty 1.05\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!model_path || !va.mmproj || !va.image) {
        cli_usage(stderr, &cmd, opts);
        return cli_fail(C, "need -m MODEL, --mmproj MMPROJ and --image FILE");
    }
    if (vision_settings(C, &va))
        return 1;
    if (!va.vp.verbose)
        lfm2_vision_quiet_ffmpeg_log();

    rc = 1;
    lfm2_model *m = NULL;
    lfm2_vision *v = NULL;
    lfm2_context *ctx = NULL;
    lfm2_sampler *smp = NULL;
    float *embd = NULL;
    lfm2_token *seq = NULL;
    const double t_start = lfm2_time_ms();

    struct lfm2_model_params mp = lfm2_model_default_params();
    mp.verbose = va.vp.verbose;
    if (!(m = lfm2_model_load(model_path, mp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (!(v = vision_load(C, &va)))
        goto out;
    if (lfm2_vision_check_text_model(v, m)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double t_loaded = lfm2_time_ms();
    struct lfm2_vision_plan plan;
    double encode_ms;
    if (encode_image(C, v, va.image, 1, &plan, &embd, &encode_ms))
        goto out;
    const double t_encoded = lfm2_time_ms();

    /* prefill: the prompt's ids (for the repetition penalty too) with the rows spliced in */
    int32_t n_seq = 0;
    if (!(seq = caption_prompt(C, m, system, prompt, &plan, &n_seq)))
        goto out;
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = n_ctx > 0 ? n_ctx : n_seq + n_predict + 1;
    cp.n_threads = va.vp.n_threads;
    if (!(ctx = lfm2_context_new(m, cp)) || !(smp = lfm2_sampler_new(m, sp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (n_seq >= lfm2_n_ctx(ctx)) {
        cli_fail(C, "the prompt has %d positions but the context holds %d", n_seq, lfm2_n_ctx(ctx));
        goto out;
    }
    for (int32_t i = 0; i < n_seq; i++)
        if (seq[i] != LFM2_VISION_EMBD)
            lfm2_sampler_accept(smp, seq[i]);
    if (lfm2_vision_decode(ctx, seq, n_seq, embd, plan.n_tokens)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double t_prefill = lfm2_time_ms();

    double t_first = 0;
    const int n_gen = stream_caption(C, m, ctx, smp, n_predict, &t_first);
    if (n_gen < 0)
        goto out;
    const double t_end = lfm2_time_ms();

    const struct lfm2_vision_timings tm = lfm2_vision_last_timings(v);
    describe_plan(stderr, &plan);
    fprintf(stderr,
            "timings: load %.0f ms | image %.1f ms (preprocess %.1f, encoder %.1f) | prefill %d "
            "positions %.1f ms | first token %.1f ms after the image was given | %d tokens, %.1f "
            "tok/s\n",
            t_loaded - t_start, t_encoded - t_loaded, tm.preprocess_ms, tm.encode_ms, n_seq,
            t_prefill - t_encoded, (n_gen ? t_first : t_end) - t_loaded, n_gen,
            n_gen > 1 ? (n_gen - 1) * 1e3 / (t_end - t_first) : 0.0);
    rc = 0;
out:
    free(seq);
    free(embd);
    lfm2_sampler_free(smp);
    lfm2_context_free(ctx);
    lfm2_vision_free(v);
    lfm2_model_free(m);
    return rc;
}
