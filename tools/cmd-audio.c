/* cmd-audio.c — `lfm2 embed-audio` and `lfm2 transcribe` (LFM2-Audio speech input). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lfm2-audio.h"
#include "lfm2-ops.h"
#include "lfm2-stage.h"
#include "lfm2.h"

static int write_f32(const char *C, const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof *x, n, f) != n) {
        if (f)
            fclose(f);
        return cli_fail(C, "%s: %s", path, strerror(errno));
    }
    if (fclose(f))
        return cli_fail(C, "%s: %s", path, strerror(errno));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- options both commands take ---------------------------------------------------------- */

static int parse_frontend(const char *C, const char *opt, const char *value, void *dest)
{
    const int m = lfm2_audio_frontend_from_name(value);
    if (m < 0)
        return cli_fail(C, "%s: '%s' is neither 'official' nor 'llamacpp'", opt, value);
    *(enum lfm2_audio_frontend *)dest = (enum lfm2_audio_frontend)m;
    return 0;
}

#define FRONTEND_OPT(ap)                                                                       \
    CLI_FUNC("--frontend", NULL, &(ap)->frontend, parse_frontend, "MODE",                      \
             "official (NeMo, as trained; default) | llamacpp (mtmd exactly)")

/* ---- embed-audio ---------------------------------------------------------------------------- */

int cmd_embed_audio(int argc, char **argv)
{
    const char *C = "embed-audio";
    const char *mmproj = NULL, *audio = NULL, *outp = NULL, *melp = NULL, *text_path = NULL;
    struct lfm2_audio_params ap = lfm2_audio_default_params();
    bool bench = false, json = false;
    int reps = 5;
    const struct cli_opt opts[] = {
        CLI_STR("--mmproj", NULL, &mmproj, "FILE", "LFM2-Audio mmproj GGUF (lfm2a: encoder + adapter)"),
        CLI_STR("--audio", NULL, &audio, "FILE", "anything FFmpeg decodes (converted to 16 kHz mono)"),
        CLI_STR("--output", "-o", &outp, "FILE", "where the embeddings go"),
        CLI_STR("--mel", NULL, &melp, "FILE", "also write the log-mel, float32 [128][n_frames] mel-major"),
        FRONTEND_OPT(&ap),
        CLI_STR("--model", "-m", &text_path, "FILE", "check the adapter width against this text model"),
        CLI_INT("--threads", "-t", &ap.n_threads, 0, 1024, "N", "threads (0 = all cores)"),
        CLI_FLAG("--bench", NULL, &bench, "time the encoder over the file (median of N runs)"),
        CLI_INT("--reps", "-r", &reps, 1, 1000, "N", "--bench: runs (5)"),
        CLI_FLAG("--json", NULL, &json, "--bench: one JSON object"),
        CLI_FLAG("--verbose", "-v", &ap.verbose, "verbose"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "embed-audio", "--mmproj MMPROJ --audio FILE -o OUT [options]\n"
        "--mmproj MMPROJ --audio FILE --bench [-r N] [--json]",
        "  writes float32 [n_tokens][n_embd], the audio adapter's output (one row per 80 ms)\n",
    };
    int rc = cli_parse(&cmd, opts, argc, argv, NULL, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    if (!mmproj || !audio || (!outp && !bench)) {
        cli_usage(stderr, &cmd, opts);
        return cli_fail(C, "need --mmproj MMPROJ, --audio FILE and -o OUT");
    }
    if (!ap.verbose)
        lfm2_audio_quiet_ffmpeg_log();

    rc = 1;
    lfm2_audio *a = NULL;
    lfm2_model *text = NULL;
    float *pcm = NULL, *mel = NULL, *embd = NULL;
    double *ms = NULL;
    int64_t n = 0;
    struct lfm2_audio_file_info info;

    if (!(a = lfm2_audio_load(mmproj, ap))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (text_path) {
        if (!(text = lfm2_model_load(text_path, lfm2_model_default_params())) ||
            lfm2_audio_check_text_model(a, text)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
    }
    const double t_dec = lfm2_time_ms();
    if (lfm2_audio_load_file(audio, &pcm, &n, &info)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double dec_ms = lfm2_time_ms() - t_dec;
    if (n > lfm2_audio_max_samples(a)) {
        cli_fail(C, "%s: %.2f s is longer than the %s front-end takes in one piece (%.2f s, from "
                 "a.position_embd); use --frontend official", audio, n / 16000.0,
                 lfm2_audio_frontend_name(ap.frontend), lfm2_audio_max_samples(a) / 16000.0);
        goto out;
    }
    const int64_t T = lfm2_audio_n_frames(n), n_tok = lfm2_audio_n_tokens(n);
    const int E = lfm2_audio_n_embd_out(a);
    const size_t n_floats = (size_t)n_tok * (size_t)E;
    if (!(embd = malloc(sizeof *embd * n_floats)) || !(mel = malloc(sizeof *mel * (size_t)T * LFM2_AUDIO_N_MEL)) ||
        !(ms = malloc(sizeof *ms * (size_t)reps))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    /* the mel once (it is what --mel writes), then the encoder from it; --bench times the whole
     * encode (front-end included) */
    if (lfm2_audio_mel(a, pcm, n, mel, T) < 0 || lfm2_audio_encode_mel(a, mel, T, T, embd, n_floats) != n_tok) {
        cli_fail(C, "%s: %s", audio, lfm2_last_error());
        goto out;
    }
    if ((outp && write_f32(C, outp, embd, n_floats)) ||
        (melp && write_f32(C, melp, mel, (size_t)T * LFM2_AUDIO_N_MEL)))
        goto out;
    const double sec = n / 16000.0;
    fprintf(stderr, "%s\n%s: %.2f s (%s, %d Hz, %d ch; decoded in %.1f ms) → %lld frames → %lld tokens × %d (%s front-end)\n",
            lfm2_audio_desc(a), audio, sec, info.codec, info.rate, info.channels, dec_ms,
            (long long)T, (long long)n_tok, E, lfm2_audio_frontend_name(ap.frontend));
    if (info.stats.n_nonfinite || info.stats.n_clipped)
        fprintf(stderr, "%s: %lld NaN/Inf samples read as 0, %lld samples beyond ±1 clipped\n", audio,
                (long long)info.stats.n_nonfinite, (long long)info.stats.n_clipped);
    if (bench) {
        lfm2_audio_encode(a, pcm, n, embd, n_floats);   /* warm-up */
        for (int r = 0; r < reps; r++) {
            const double t0 = lfm2_time_ms();
            if (lfm2_audio_encode(a, pcm, n, embd, n_floats) != n_tok) {
                cli_fail(C, "%s", lfm2_last_error());
                goto out;
            }
            ms[r] = lfm2_time_ms() - t0;
        }
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        const struct lfm2_audio_timings tm = lfm2_audio_last_timings(a);
        const double med = ms[reps / 2];
        if (json)
            printf("{\"mmproj\": \"%s\", \"desc\": \"%s\", \"audio\": \"%s\", \"seconds\": %.3f, "
                   "\"frontend\": \"%s\", \"threads\": %d, \"tokens\": %lld, \"reps\": %d, "
                   "\"encode_ms_median\": %.2f, \"encode_ms_min\": %.2f, \"encode_ms_max\": %.2f, "
                   "\"ms_per_audio_second\": %.3f, \"last_mel_ms\": %.2f, \"last_subsample_ms\": %.2f, "
                   "\"last_matmul_ms\": %.2f, \"last_attention_ms\": %.2f}\n",
                   mmproj, lfm2_audio_desc(a), audio, sec, lfm2_audio_frontend_name(ap.frontend),
                   lfm2_pool_n_threads(lfm2_audio_pool(a)), (long long)n_tok, reps, med, ms[0],
                   ms[reps - 1], med / sec, tm.mel_ms, tm.subsample_ms, tm.matmul_ms, tm.attention_ms);
        else
            printf("threads %d, %.2f s of audio (%lld tokens): median %.1f ms (min %.1f, max %.1f) over %d "
                   "runs = %.2f ms per second of audio\nlast run: front-end %.1f ms, subsampling %.1f ms, "
                   "matrix products %.1f ms, attention %.1f ms\n",
                   lfm2_pool_n_threads(lfm2_audio_pool(a)), sec, (long long)n_tok, med, ms[0],
                   ms[reps - 1], reps, med / sec, tm.mel_ms, tm.subsample_ms, tm.matmul_ms,
                   tm.attention_ms);
    } else {
        printf("%lld\n", (long long)n_tok);
    }
    rc = 0;
out:
    free(ms);
    free(embd);
    free(mel);
    free(pcm);
    lfm2_model_free(text);
    lfm2_audio_free(a);
    return rc;
}

/* ---- transcribe ------------------------------------------------------------------------------- */

enum fmt { FMT_TEXT, FMT_SRT, FMT_VTT, FMT_JSON };

struct transcriber {
    const char *C;
    lfm2_model *model;
    lfm2_audio *audio;
    lfm2_context *ctx;
    lfm2_sampler *smp;
    lfm2_token *suffix;
    int32_t n_prefix, n_suffix;
    int n_predict;
    float *embd;
    size_t embd_cap;
    char *text;                 /* the current segment's transcript */
    size_t text_len, text_cap;
    /* totals of one file */
    double encode_ms, prefill_ms, gen_ms;
    int n_gen;
};

static int append_text(struct transcriber *tr, const char *s, int32_t n)
{
    if (tr->text_len + (size_t)n + 1 > tr->text_cap) {
        size_t cap = tr->text_cap ? tr->text_cap * 2 : 1024;
        while (cap < tr->text_len + (size_t)n + 1)
            cap *= 2;
        char *t = realloc(tr->text, cap);
        if (!t)
            return -1;
        tr->text = t;
        tr->text_cap = cap;
    }
    memcpy(tr->text + tr->text_len, s, (size_t)n);
    tr->text_len += (size_t)n;
    tr->text[tr->text_len] = '\0';
    return 0;
}

/* Transcribes one utterance into tr->text (whitespace trimmed). */
static int transcribe_segment(struct transcriber *tr, const struct lfm2_vad_segment *seg)
{
    const int E = lfm2_audio_n_embd_out(tr->audio);
    const int64_t n_tok = lfm2_audio_n_tokens(seg->n);
    if ((size_t)(n_tok * E) > tr->embd_cap) {
        float *e = realloc(tr->embd, sizeof *e * (size_t)(n_tok * E));
        if (!e)
            return lfm2_set_error("out of memory");
        tr->embd = e;
        tr->embd_cap = (size_t)(n_tok * E);
    }
    double t0 = lfm2_time_ms();
    if (lfm2_audio_encode(tr->audio, seg->pcm, seg->n, tr->embd, tr->embd_cap) != n_tok)
        return -1;
    double t1 = lfm2_time_ms();
    tr->encode_ms += t1 - t0;
    /* back to the end of the system turn, then the audio rows and the assistant prompt */
    if (lfm2_rewind(tr->ctx, tr->n_prefix) ||
        lfm2_decode(tr->ctx, lfm2_batch_embd(tr->embd, (int32_t)n_tok)) ||
        lfm2_decode(tr->ctx, lfm2_batch_tokens(tr->suffix, tr->n_suffix)))
        return -1;
    t0 = lfm2_time_ms();
    tr->prefill_ms += t0 - t1;
    lfm2_sampler_reset(tr->smp);
    tr->text_len = 0;
    if (append_text(tr, "", 0))
        return lfm2_set_error("out of memory");
    struct lfm2_detok dt;
    lfm2_detok_init(&dt, false);
    char piece[256];
    for (int i = 0; i < tr->n_predict && lfm2_n_past(tr->ctx) < lfm2_n_ctx(tr->ctx); i++) {
        const lfm2_token t = lfm2_sampler_sample(tr->smp, lfm2_get_logits(tr->ctx, -1));
        lfm2_sampler_accept(tr->smp, t);
        tr->n_gen++;
        if (lfm2_token_is_eog(tr->model, t))
            break;
        const int32_t w = lfm2_detok_push(tr->model, &dt, t, piece, sizeof piece);
        if (w > 0 && append_text(tr, piece, w))
            return lfm2_set_error("out of memory");
        if (i + 1 < tr->n_predict && lfm2_decode(tr->ctx, lfm2_batch_tokens(&t, 1)))
            return -1;
    }
    const int32_t w = lfm2_detok_flush(&dt, piece, sizeof piece);
    if (w > 0 && append_text(tr, piece, w))
        return lfm2_set_error("out of memory");
    tr->gen_ms += lfm2_time_ms() - t0;
    /* control bytes (a random model emits NULs) would cut or break the output formats */
    for (size_t i = 0; i < tr->text_len; i++)
        if (((unsigned char)tr->text[i] < 0x20 && tr->text[i] != '\n') || tr->text[i] == 0x7f)
            tr->text[i] = ' ';
    /* trim */
    size_t a = 0, b = tr->text_len;
    while (a < b && (tr->text[a] == ' ' || tr->text[a] == '\n' || tr->text[a] == '\t' || tr->text[a] == '\r'))
        a++;
    while (b > a && (tr->text[b - 1] == ' ' || tr->text[b - 1] == '\n' || tr->text[b - 1] == '\t' || tr->text[b - 1] == '\r'))
        b--;
    memmove(tr->text, tr->text + a, b - a);
    tr->text_len = b - a;
    tr->text[tr->text_len] = '\0';
    return 0;
}

static void print_time(FILE *f, double s, char sep)
{
    long long ms = (long long)(s * 1000.0 + 0.5);
    fprintf(f, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep, ms % 1000);
}

static void print_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* In SRT/VTT a blank line ends a cue: the text's own line breaks become spaces. */
static void print_cue_text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    fputc('\n', f);
}

static int parse_format(const char *C, const char *opt, const char *value, void *dest)
{
    static const char *const names[] = { [FMT_TEXT] = "text", [FMT_SRT] = "srt", [FMT_VTT] = "vtt",
                                         [FMT_JSON] = "json" };
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(value, names[i])) {
            *(enum fmt *)dest = (enum fmt)i;
            return 0;
        }
    return cli_fail(C, "%s: '%s' is not one of text, srt, vtt, json", opt, value);
}

int cmd_transcribe(int argc, char **argv)
{
    const char *C = "transcribe";
    const char *model_path = NULL, *mmproj = NULL, *system = NULL;
    int n_predict = 256, n_threads = 0, n_files = argc;
    enum fmt fmt = FMT_TEXT;
    float max_segment = 30.0f;
    bool verbose = false;
    struct lfm2_audio_params ap = lfm2_audio_default_params();
    struct lfm2_vad_params vp = lfm2_vad_default_params();
    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    sp.temperature = 0.0f;   /* greedy, as the reference ASR decoding */
    const struct cli_opt opts[] = {
        CLI_STR("--model", "-m", &model_path, "FILE", "LFM2-Audio backbone GGUF"),
        CLI_STR("--mmproj", NULL, &mmproj, "FILE", "its audio encoder (lfm2a mmproj) GGUF"),
        CLI_FUNC("--format", NULL, &fmt, parse_format, "F",
                 "text (default) | srt | vtt | json (one JSON object per file and line)"),
        FRONTEND_OPT(&ap),
        CLI_STR("--system", "-s", &system, "TEXT", "system prompt (\"Perform ASR.\")"),
        CLI_INT("--n-predict", "-n", &n_predict, 1, 1 << 16, "N", "most tokens per utterance (256)"),
        CLI_FLOAT("--vad-threshold", NULL, &vp.threshold, "X",
                  "speech score a 10 ms frame needs, 0..1 (0.5)"),
        CLI_INT("--min-silence", NULL, &vp.min_silence_ms, 10, 60000, "MS",
                "silence that ends an utterance (500)"),
        CLI_FLOAT("--max-segment", NULL, &max_segment, "S", "longest utterance in seconds (30)"),
        CLI_SAMPLING_OPTS(&sp),
        CLI_INT("--threads", "-t", &n_threads, 0, 1024, "N", "threads (0 = all cores)"),
        CLI_FLAG("--verbose", "-v", &verbose, "verbose"),
        CLI_END
    };
    static const struct cli_command cmd = {
        "transcribe", "-m MODEL --mmproj MMPROJ [options] FILE...",
        "  prints the transcript of each FILE (anything FFmpeg decodes), cut into utterances by\n"
        "  voice-activity detection; greedy unless --temp is given; the real-time factor goes to\n"
        "  stderr\n",
    };
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files)
        return cli_fail(C, "out of memory");
    int rc = cli_parse(&cmd, opts, argc, argv, files, &n_files);
    if (rc != CLI_CONTINUE) {
        free(files);
        return rc;
    }
    if (!model_path || !mmproj || n_files == 0) {
        cli_usage(stderr, &cmd, opts);
        free(files);
        return cli_fail(C, "need -m MODEL, --mmproj MMPROJ and at least one FILE");
    }
    if (!(max_segment >= 1.0f && max_segment <= 3600.0f)) {
        free(files);
        return cli_fail(C, "--max-segment: %g s is outside 1..3600", (double)max_segment);
    }
    vp.max_segment_ms = (int)(max_segment * 1000.0f);
    ap.verbose = verbose;
    rc = 1;
    if (!ap.verbose)
        lfm2_audio_quiet_ffmpeg_log();
    ap.n_threads = n_threads;

    struct transcriber tr;
    memset(&tr, 0, sizeof tr);
    tr.C = C;
    tr.n_predict = n_predict;
    lfm2_vad *vad = NULL;
    lfm2_token *prefix = NULL;
    float *pcm = NULL;
    const double t_start = lfm2_time_ms();
    struct lfm2_model_params mp = lfm2_model_default_params();
    mp.verbose = ap.verbose;
    if (!(tr.model = lfm2_model_load(model_path, mp)) || !(tr.audio = lfm2_audio_load(mmproj, ap)) ||
        lfm2_audio_check_text_model(tr.audio, tr.model) || !(vad = lfm2_vad_new(&vp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (((int64_t)vp.max_segment_ms + 2 * vp.pad_ms) * 16 > lfm2_audio_max_samples(tr.audio)) {
        cli_fail(C, "%s: with the %s front-end an utterance can be at most %.1f s (a.position_embd); "
                 "lower --max-segment", mmproj, lfm2_audio_frontend_name(ap.frontend),
                 lfm2_audio_max_samples(tr.audio) / 16000.0 - 2 * vp.pad_ms / 1000.0);
        goto out;
    }
    /* the prompt pieces: the prefix is decoded once and kept (lfm2_checkpoint) */
    int32_t np = lfm2_audio_prompt_prefix(tr.model, system, NULL, 0);
    int32_t ns = lfm2_audio_prompt_suffix(tr.model, NULL, 0);
    if (np == INT32_MIN || ns == INT32_MIN) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    np = np < 0 ? -np : np;
    ns = ns < 0 ? -ns : ns;
    if (!(prefix = malloc(sizeof *prefix * (size_t)(np + 1))) || !(tr.suffix = malloc(sizeof *tr.suffix * (size_t)(ns + 1)))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    tr.n_prefix = lfm2_audio_prompt_prefix(tr.model, system, prefix, np);
    tr.n_suffix = lfm2_audio_prompt_suffix(tr.model, tr.suffix, ns);
    /* an utterance is at most max_segment plus its padding: its tokens, the prompt and the
     * answer must fit */
    const int64_t max_tok = lfm2_audio_n_tokens((int64_t)vp.max_segment_ms * 16 + 2 * vp.pad_ms * 16 + 16000);
    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = (int)(tr.n_prefix + max_tok + tr.n_suffix + n_predict + 1);
    cp.n_threads = n_threads;
    if (!(tr.ctx = lfm2_context_new(tr.model, cp)) || !(tr.smp = lfm2_sampler_new(tr.model, sp)) ||
        lfm2_decode(tr.ctx, lfm2_batch_tokens(prefix, tr.n_prefix)) || lfm2_checkpoint(tr.ctx)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    /* a transcript is text: <|audio_start|> (speech output) is never picked */
    const lfm2_token audio_start = lfm2_token_lookup(tr.model, "<|audio_start|>");
    if (audio_start >= 0)
        lfm2_sampler_set_logit_bias(tr.smp, audio_start, -INFINITY);
    const double t_loaded = lfm2_time_ms();
    if (ap.verbose)
        fprintf(stderr, "lfm2 transcribe: %s + %s loaded in %.0f ms; context %d\n", lfm2_model_desc(tr.model),
                lfm2_audio_desc(tr.audio), t_loaded - t_start, lfm2_n_ctx(tr.ctx));

    for (int fi = 0; fi < n_files; fi++) {
        const char *path = files[fi];
        const double t0 = lfm2_time_ms();
        int64_t n = 0;
        free(pcm);
        pcm = NULL;
        if (lfm2_audio_load_file(path, &pcm, &n, NULL)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        const double t_decoded = lfm2_time_ms();
        tr.encode_ms = tr.prefill_ms = tr.gen_ms = 0.0;
        tr.n_gen = 0;
        if (n_files > 1 && fmt != FMT_JSON)
            printf("%s==> %s <==\n", fi ? "\n" : "", path);
        if (fmt == FMT_VTT)
            printf("WEBVTT\n\n");
        if (fmt == FMT_JSON) {
            printf("{\"file\": ");
            print_json_string(stdout, path);
            printf(", \"duration\": %.3f, \"segments\": [", n / 16000.0);
        }
        /* the VAD over the whole file, utterances transcribed as they close */
        lfm2_vad_reset(vad);
        int n_seg = 0, n_cue = 0;
        double vad_ms = 0.0;
        char *all = NULL;
        size_t all_len = 0;
        for (int64_t i = 0; i < n + 16000; i += 16000) {   /* 1 s at a time, then the flush */
            const double tv = lfm2_time_ms();
            int w;
            if (i < n)
                w = lfm2_vad_push(vad, pcm + i, n - i < 16000 ? n - i : 16000);
            else
                w = lfm2_vad_flush(vad);
            vad_ms += lfm2_time_ms() - tv;
            if (w < 0) {
                cli_fail(C, "%s: %s", path, lfm2_last_error());
                free(all);
                goto out;
            }
            struct lfm2_vad_segment seg;
            while (lfm2_vad_pop(vad, &seg)) {
                if (transcribe_segment(&tr, &seg)) {
                    cli_fail(C, "%s: %s", path, lfm2_last_error());
                    free(all);
                    goto out;
                }
                const double s0 = seg.start / 16000.0, s1 = seg.end / 16000.0;
                switch (fmt) {
                case FMT_TEXT:
                    if (tr.text_len)
                        printf("%s\n", tr.text);
                    break;
                case FMT_SRT:
                case FMT_VTT:
                    if (!tr.text_len)
                        break;
                    if (fmt == FMT_SRT)
                        printf("%d\n", ++n_cue);
                    print_time(stdout, s0, fmt == FMT_SRT ? ',' : '.');
                    printf(" --> ");
                    print_time(stdout, s1, fmt == FMT_SRT ? ',' : '.');
                    printf("\n");
                    print_cue_text(stdout, tr.text);
                    printf("\n");
                    break;
                case FMT_JSON:
                    printf("%s{\"start\": %.3f, \"end\": %.3f, \"text\": ", n_seg ? ", " : "", s0, s1);
                    print_json_string(stdout, tr.text);
                    printf("}");
                    break;
                }
                fflush(stdout);
                if (tr.text_len) {
                    char *na = realloc(all, all_len + tr.text_len + 2);
                    if (!na) {
                        free(all);
                        cli_fail(C, "out of memory");
                        goto out;
                    }
                    all = na;
                    if (all_len)
                        all[all_len++] = ' ';
                    memcpy(all + all_len, tr.text, tr.text_len);
                    all_len += tr.text_len;
                    all[all_len] = '\0';
                }
                n_seg++;
            }
        }
        const double t_end = lfm2_time_ms(), sec = n / 16000.0;
        if (fmt == FMT_JSON) {
            printf("], \"text\": ");
            print_json_string(stdout, all ? all : "");
            printf(", \"rtf\": %.4f}\n", sec > 0 ? (t_end - t0) / 1000.0 / sec : 0.0);
        }
        fflush(stdout);
        free(all);
        fprintf(stderr,
                "%s: %.2f s of audio, %d utterance%s, %d tokens generated in %.2f s: RTF %.3f (decode %.0f ms, "
                "VAD %.0f ms, encoder %.0f ms, prefill %.0f ms, generation %.0f ms%s)\n",
                path, sec, n_seg, n_seg == 1 ? "" : "s", tr.n_gen, (t_end - t0) / 1000.0,
                sec > 0 ? (t_end - t0) / 1000.0 / sec : 0.0, t_decoded - t0, vad_ms, tr.encode_ms,
                tr.prefill_ms, tr.gen_ms, fi == 0 ? "; model load not counted" : "");
    }
    rc = 0;
out:
    free(pcm);
    free(prefix);
    free(tr.suffix);
    free(tr.embd);
    free(tr.text);
    lfm2_vad_free(vad);
    lfm2_sampler_free(tr.smp);
    lfm2_context_free(tr.ctx);
    lfm2_audio_free(tr.audio);
    lfm2_model_free(tr.model);
    free(files);
    return rc;
}
