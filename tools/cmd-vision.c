/* cmd-vision.c — `lfm2 embed-image` and `lfm2 caption` (LFM2-VL). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2-ops.h"
#include "lfm2-vision.h"
#include "lfm2.h"

/* Options shared by both commands. Returns 1 if argv[*i] was one of them, -1 on a bad
 * value, 0 if not ours. */
static int vision_opt(const char *C, int argc, char **argv, int *i, struct lfm2_vision_params *vp,
                      const char **mmproj, const char **image)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--mmproj")) {
        return (*mmproj = cli_need_arg(C, argc, argv, i)) ? 1 : -1;
    } else if (!strcmp(a, "--image")) {
        return (*image = cli_need_arg(C, argc, argv, i)) ? 1 : -1;
    } else if (!strcmp(a, "--preprocess")) {
        if (!(v = cli_need_arg(C, argc, argv, i)))
            return -1;
        int m = lfm2_vision_preprocess_from_name(v);
        if (m < 0)
            return cli_fail(C, "--preprocess: '%s' is neither 'official' nor 'llamacpp'", v), -1;
        vp->preprocess = (enum lfm2_vision_preprocess)m;
        return 1;
    } else if (!strcmp(a, "--min-image-tokens")) {
        return (v = cli_need_arg(C, argc, argv, i)) && !cli_parse_int(C, a, v, 1, 16384, &vp->min_image_tokens) ? 1 : -1;
    } else if (!strcmp(a, "--max-image-tokens")) {
        return (v = cli_need_arg(C, argc, argv, i)) && !cli_parse_int(C, a, v, 1, 16384, &vp->max_image_tokens) ? 1 : -1;
    } else if (!strcmp(a, "--no-tiling")) {
        vp->do_tiling = false;
        return 1;
    } else if (!strcmp(a, "--no-thumbnail")) {
        vp->use_thumbnail = false;
        return 1;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        return (v = cli_need_arg(C, argc, argv, i)) && !cli_parse_int(C, a, v, 0, 1024, &vp->n_threads) ? 1 : -1;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        vp->verbose = true;
        return 1;
    }
    return 0;
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
    fprintf(f, " = %d image tokens\n", p->n_tokens);
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

static const char embed_usage[] =
    "usage: lfm2 embed-image --mmproj MMPROJ --image FILE -o OUT [options]\n"
    "       lfm2 embed-image --mmproj MMPROJ --bench [-r N] [--json]\n"
    "  writes float32 [n_image_tokens][n_embd] (tiles row-major, then the thumbnail)\n"
    "  -m TEXT_MODEL           check the projector against this text model; print the layout\n"
    "  --preprocess MODE       official (transformers, default) | llamacpp (mtmd exactly)\n"
    "  --min-image-tokens N    (64)   --max-image-tokens N (256)\n"
    "  --no-tiling             never split into 512×512 tiles\n"
    "  --no-thumbnail          official mode: no thumbnail after the tiles\n"
    "  -t N                    threads (0 = all cores)\n"
    "  --bench [-r N] [--json] encoder time per 512×512 tile (and per --image if given)\n"
    "  -v                      verbose\n";

int cmd_embed_image(int argc, char **argv)
{
    const char *C = "embed-image";
    const char *mmproj = NULL, *image = NULL, *outp = NULL, *text_path = NULL;
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    bool bench = false, json = false;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = vision_opt(C, argc, argv, &i, &vp, &mmproj, &image);
        if (r < 0)
            return 1;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(embed_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(outp = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(text_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "--bench")) {
            bench = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 1, 1000, &reps))
                return 1;
        } else {
            fputs(embed_usage, stderr);
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    if (!mmproj) {
        fputs(embed_usage, stderr);
        return cli_fail(C, "no --mmproj given");
    }
    if (!bench && (!image || !outp)) {
        fputs(embed_usage, stderr);
        return cli_fail(C, "need --image FILE and -o OUT");
    }
    if (!vp.verbose)
        lfm2_vision_quiet_ffmpeg_log();

    int rc = 1;
    lfm2_vision *v = NULL;
    lfm2_model *text = NULL;
    struct lfm2_vision_image img = { 0 };
    float *embd = NULL;
    lfm2_token *layout = NULL;
    FILE *f = NULL;

    if (!(v = lfm2_vision_load(mmproj, vp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (text_path) {
        struct lfm2_model_params mp = lfm2_model_default_params();
        if (!(text = lfm2_model_load(text_path, mp)) || lfm2_vision_check_text_model(v, text)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
    }
    if (bench && bench_tile(C, v, reps, json, mmproj))
        goto out;
    if (!image) {
        rc = 0;
        goto out;
    }
    if (lfm2_vision_image_load(image, &img)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    struct lfm2_vision_plan plan;
    if (lfm2_vision_plan_image(v, img.width, img.height, &plan)) {
        cli_fail(C, "%s: %s", image, lfm2_last_error());
        goto out;
    }
    const int E = lfm2_vision_n_embd_out(v);
    const size_t n_floats = (size_t)plan.n_tokens * E;
    if (!(embd = malloc(sizeof *embd * n_floats))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    int reps_img = bench ? reps : 1;
    double best = 1e30;
    for (int r = 0; r < reps_img; r++) {
        const double t0 = lfm2_time_ms();
        if (lfm2_vision_encode(v, &img, &plan, embd, n_floats) < 0) {
            cli_fail(C, "%s: %s", image, lfm2_last_error());
            goto out;
        }
        const double dt = lfm2_time_ms() - t0;
        best = dt < best ? dt : best;
    }
    const struct lfm2_vision_timings tm = lfm2_vision_last_timings(v);
    if (outp) {
        if (!(f = fopen(outp, "wb")) || fwrite(embd, sizeof *embd, n_floats, f) != n_floats) {
            cli_fail(C, "%s: %s", outp, strerror(errno));
            goto out;
        }
        if (fclose(f)) {
            f = NULL;
            cli_fail(C, "%s: %s", outp, strerror(errno));
            goto out;
        }
        f = NULL;
    }
    describe_plan(stderr, &plan);
    fprintf(stderr, "encoded in %.1f ms (preprocess %.1f ms, encoder %.1f ms, %d chunk%s)%s\n", best,
            tm.preprocess_ms, tm.encode_ms, tm.n_chunks, tm.n_chunks == 1 ? "" : "s",
            bench ? " [best of --reps]" : "");
    printf("%d\n", plan.n_tokens);
    if (text) {
        const int32_t n = lfm2_vision_layout(text, &plan, NULL, 0);
        if (n == INT32_MIN || !(layout = malloc(sizeof *layout * (size_t)(-n > 0 ? -n : 1)))) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        const int32_t m = lfm2_vision_layout(text, &plan, layout, -n);
        fprintf(stderr, "layout (%d entries):", m);
        for (int32_t i = 0; i < m;) {
            if (layout[i] == LFM2_VISION_EMBD) {
                int32_t j = i;
                while (j < m && layout[j] == LFM2_VISION_EMBD)
                    j++;
                fprintf(stderr, " [%d rows]", j - i);
                i = j;
            } else {
                const char *t = lfm2_token_text(text, layout[i]);
                fprintf(stderr, " %s", t ? t : "?");
                i++;
            }
        }
        fputc('\n', stderr);
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    free(layout);
    free(embd);
    lfm2_vision_image_free(&img);
    lfm2_model_free(text);
    lfm2_vision_free(v);
    return rc;
}

static const char caption_usage[] =
    "usage: lfm2 caption -m MODEL --mmproj MMPROJ --image FILE [options]\n"
    "  -p TEXT                 the request (\"Describe this image.\")\n"
    "  -s TEXT                 system prompt\n"
    "  -n N                    most tokens to generate (128)\n"
    "  --temp X (0.1)  --min-p X (0.15)  --top-k N  --top-p X  --repeat-penalty X (1.05)  --seed S\n"
    "  --preprocess MODE       official (default) | llamacpp\n"
    "  --min-image-tokens N  --max-image-tokens N  --no-tiling  --no-thumbnail\n"
    "  -c N                    context size (0 = what the prompt needs + N)\n"
    "  -t N                    threads (0 = all cores)\n"
    "  -v                      verbose\n";

int cmd_caption(int argc, char **argv)
{
    const char *C = "caption";
    const char *mmproj = NULL, *image = NULL, *model_path = NULL, *system = NULL;
    const char *prompt = "Describe this image.";
    int n_predict = 128, n_ctx = 0;
    struct lfm2_vision_params vp = lfm2_vision_default_params();
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    /* LFM2-VL model card recommendations */
    sp.temperature = 0.1f;
    sp.min_p = 0.15f;
    sp.repeat_penalty = 1.05f;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = vision_opt(C, argc, argv, &i, &vp, &mmproj, &image);
        if (r == 0)
            r = cli_sampling_opt(C, argc, argv, &i, &sp);
        if (r < 0)
            return 1;
        if (r > 0)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(caption_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-s") || !strcmp(a, "--system")) {
            if (!(system = cli_need_arg(C, argc, argv, &i)))
                return 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 0, 1 << 20, &n_predict))
                return 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || cli_parse_int(C, a, v, 0, INT_MAX, &n_ctx))
                return 1;
        } else {
            fputs(caption_usage, stderr);
            return cli_fail(C, "unknown option '%s'", a);
        }
    }
    if (!model_path || !mmproj || !image) {
        fputs(caption_usage, stderr);
        return cli_fail(C, "need -m MODEL, --mmproj MMPROJ and --image FILE");
    }
    if (!vp.verbose)
        lfm2_vision_quiet_ffmpeg_log();

    int rc = 1;
    lfm2_model *m = NULL;
    lfm2_vision *v = NULL;
    lfm2_context *ctx = NULL;
    lfm2_sampler *smp = NULL;
    struct lfm2_vision_image img = { 0 };
    float *embd = NULL;
    lfm2_token *seq = NULL;
    const double t_start = lfm2_time_ms();

    struct lfm2_model_params mp = lfm2_model_default_params();
    mp.verbose = vp.verbose;
    if (!(m = lfm2_model_load(model_path, mp)) || !(v = lfm2_vision_load(mmproj, vp)) ||
        lfm2_vision_check_text_model(v, m)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (lfm2_vision_image_load(image, &img)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double t_loaded = lfm2_time_ms();
    struct lfm2_vision_plan plan;
    if (lfm2_vision_plan_image(v, img.width, img.height, &plan)) {
        cli_fail(C, "%s: %s", image, lfm2_last_error());
        goto out;
    }
    const int E = lfm2_vision_n_embd_out(v);
    const size_t n_floats = (size_t)plan.n_tokens * E;
    if (!(embd = malloc(sizeof *embd * n_floats))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    if (lfm2_vision_encode(v, &img, &plan, embd, n_floats) < 0) {
        cli_fail(C, "%s: %s", image, lfm2_last_error());
        goto out;
    }
    const double t_encoded = lfm2_time_ms();

    int32_t n_seq = lfm2_vision_chat_prompt(m, system, prompt, &plan, NULL, 0);
    if (n_seq == INT32_MIN) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    n_seq = n_seq < 0 ? -n_seq : n_seq;
    if (!(seq = malloc(sizeof *seq * (size_t)(n_seq > 0 ? n_seq : 1))) ||
        lfm2_vision_chat_prompt(m, system, prompt, &plan, seq, n_seq) != n_seq) {
        cli_fail(C, "%s", seq ? lfm2_last_error() : "out of memory");
        goto out;
    }

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = n_ctx > 0 ? n_ctx : n_seq + n_predict + 1;
    cp.n_threads = vp.n_threads;
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

    struct lfm2_detok dt;
    lfm2_detok_init(&dt, false);
    char piece[256];
    int n_gen = 0;
    double t_first = 0;
    while (n_gen < n_predict && lfm2_n_past(ctx) < lfm2_n_ctx(ctx)) {
        const lfm2_token t = lfm2_sampler_sample(smp, lfm2_get_logits(ctx, -1));
        lfm2_sampler_accept(smp, t);
        n_gen++;
        if (n_gen == 1)
            t_first = lfm2_time_ms();
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
            goto out;
        }
    }
    const int32_t w = lfm2_detok_flush(&dt, piece, sizeof piece);
    if (w > 0)
        fwrite(piece, 1, (size_t)w, stdout);
    fputc('\n', stdout);
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
    lfm2_vision_image_free(&img);
    lfm2_sampler_free(smp);
    lfm2_context_free(ctx);
    lfm2_vision_free(v);
    lfm2_model_free(m);
    return rc;
}
