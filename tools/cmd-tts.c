/* cmd-tts.c — LFM2.5-Audio speech output on the command line (program lfm2-audio, run by
 * `lfm2 audio-codes|audio-embed|vocode|speak|s2s`):
 *   audio-codes  backbone hidden states → greedy (or sampled) frames of codes
 *   audio-embed  frames of codes → the embedding fed back to the backbone
 *   vocode       frames of codes → 24 kHz samples (float32 and a PCM16 WAV)
 *   speak        text → speech with the sequential TTS loop (or the interleaved one)
 *   s2s          speech → speech: the input's utterances through the speech encoder into the
 *                interleaved loop */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone.h"
#include "cli.h"
/* lfm2-audio.h (speech input, 16 kHz) and lfm2-tts.h (speech output, 24 kHz) both define
 * LFM2_AUDIO_SAMPLE_RATE, _N_FFT and _HOP; here they are the output side's. */
#include "lfm2-audio.h"
#undef LFM2_AUDIO_SAMPLE_RATE
#undef LFM2_AUDIO_N_FFT
#undef LFM2_AUDIO_HOP
#include "lfm2-tts.h"
#include "lfm2.h"

#define INPUT_RATE 16000   /* lfm2_audio_load_file, the VAD and the encoder */

/* Reads a whole stream (one byte more is allocated for a NUL); NULL after reporting. */
static void *read_stream(const char *C, FILE *f, const char *name, size_t *size)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *p = cap < SIZE_MAX / 2 ? realloc(buf, cap *= 2) : NULL;
        if (!p)
            free(buf);
        buf = p;
    }
    if (!buf || ferror(f)) {
        cli_fail(C, "%s: %s", name, buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *size = n;
    return buf;
}

static void *read_file(const char *C, const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_fail(C, "%s: %s", path, strerror(errno));
        return NULL;
    }
    void *buf = read_stream(C, f, path, size);
    fclose(f);
    return buf;
}

static int write_file(const char *C, const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
        int e = errno;
        if (f)
            fclose(f);
        return cli_fail(C, "%s: %s", path, strerror(e));
    }
    return 0;
}

/* Frames of K int32 codes from a file [n][K]. */
static int32_t *read_codes(const char *C, const char *path, int K, int *n_frames)
{
    size_t size = 0;
    int32_t *codes = read_file(C, path, &size);
    if (!codes)
        return NULL;
    const size_t row = (size_t)K * sizeof(int32_t);
    if (size == 0 || size % row || size / row > INT_MAX) {
        cli_fail(C, "%s: %zu bytes is not a whole number of frames of %d int32 codes", path, size, K);
        free(codes);
        return NULL;
    }
    *n_frames = (int)(size / row);
    return codes;
}

/* The options of a command: a table of its own (strings, integers, flags) after the shared
 * ones; one parser reads them all. */
struct opt {
    const char *name, *alias;
    const char **str;          /* a string value */
    int *num;                  /* an integer value in [lo, hi] */
    long lo, hi;
    bool *flag;                /* no value */
};

struct common {
    const char *usage;
    const char *vocoder, *tokenizer, *out;
    int n_threads;
    bool ggml_rounding, verbose;
    bool sampling;                  /* the command samples codes: --temp, --top-k, --seed */
    struct lfm2_sampler_params sp;
    const char *positional;         /* the one non-option argument, if the command takes it */
    bool takes_positional;
};

static struct common common_init(const char *usage, bool sampling, float temperature, int top_k)
{
    struct common c = { .usage = usage, .sampling = sampling, .sp = lfm2_sampler_default_params() };
    c.sp.temperature = temperature;
    c.sp.top_k = top_k;
    c.sp.top_p = 1.0f;
    c.sp.min_p = 0.0f;
    c.sp.repeat_penalty = 1.0f;
    c.sp.seed = 0;
    return c;
}

/* 0 to go on, 1 after printing the usage (-h), -1 after reporting an error. */
static int parse_opts(const char *C, int argc, char **argv, struct common *c, const struct opt *own, int n_own)
{
    const struct opt shared[] = {
        { "--vocoder", "-mv", .str = &c->vocoder },
        { "--tokenizer", "--tts-speaker-file", .str = &c->tokenizer },
        { "-o", "--output", .str = &c->out },
        { "-t", "--threads", .num = &c->n_threads, .lo = 0, .hi = 1024 },
        { "--ggml-rounding", NULL, .flag = &c->ggml_rounding },
        { "-v", "--verbose", .flag = &c->verbose },
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(c->usage, stdout);
            return 1;
        }
        if (c->sampling) {
            const int r = cli_sampling_opt(C, argc, argv, &i, &c->sp);
            if (r < 0)
                return -1;
            if (r > 0 && (c->sp.top_p != 1.0f || c->sp.min_p != 0.0f || c->sp.repeat_penalty != 1.0f))
                return cli_fail(C, "only --temp, --top-k and --seed apply to audio codes"), -1;
            if (r > 0)
                continue;
        }
        const struct opt *o = NULL;
        for (int k = 0; !o && k < (int)(sizeof shared / sizeof shared[0]) + n_own; k++) {
            const struct opt *q = k < (int)(sizeof shared / sizeof shared[0]) ? &shared[k] : &own[k - (int)(sizeof shared / sizeof shared[0])];
            if (!strcmp(a, q->name) || (q->alias && !strcmp(a, q->alias)))
                o = q;
        }
        if (o && o->flag) {
            *o->flag = true;
        } else if (o) {
            if (!(v = cli_need_arg(C, argc, argv, &i)) || (o->num && cli_parse_int(C, a, v, o->lo, o->hi, o->num)))
                return -1;
            if (o->str)
                *o->str = v;
        } else if (c->takes_positional && (a[0] != '-' || !a[1]) && !c->positional) {
            c->positional = a;
        } else {
            fputs(c->usage, stderr);
            return cli_fail(C, a[0] == '-' && a[1] ? "unknown option '%s'" : "unexpected argument '%s' (quote the text)", a), -1;
        }
    }
    return 0;
}

static lfm2_vocoder *load_vocoder(const char *C, const struct common *c)
{
    struct lfm2_vocoder_params vp = lfm2_vocoder_default_params();
    vp.ggml_rounding = c->ggml_rounding;
    vp.verbose = c->verbose;
    lfm2_vocoder *v = lfm2_vocoder_load(c->vocoder, vp);
    if (!v)
        cli_fail(C, "%s", lfm2_last_error());
    return v;
}

static lfm2_audio_tokenizer *load_tokenizer(const char *C, const struct common *c)
{
    struct lfm2_audio_tokenizer_params tp = lfm2_audio_tokenizer_default_params();
    tp.ggml_rounding = c->ggml_rounding;
    tp.verbose = c->verbose;
    lfm2_audio_tokenizer *t = lfm2_audio_tokenizer_load(c->tokenizer, tp);
    if (!t)
        cli_fail(C, "%s", lfm2_last_error());
    return t;
}

/* What `speak` and `s2s` run on: the backbone, the vocoder, the tokenizer and the loop. */
struct tts_set {
    lfm2_model *m;
    lfm2_vocoder *voc;
    lfm2_audio_tokenizer *tok;
    lfm2_tts *tts;
};

static int load_tts_set(const char *C, const struct common *c, const char *model_path, struct lfm2_tts_params tp,
                        struct tts_set *s)
{
    struct lfm2_model_params mp = lfm2_model_default_params();
    mp.verbose = c->verbose;
    if (!(s->m = lfm2_model_load(model_path, mp)) || !(s->voc = load_vocoder(C, c)) ||
        !(s->tok = load_tokenizer(C, c)) || !(s->tts = lfm2_tts_new(s->m, s->voc, s->tok, tp))) {
        if (!s->m || s->tok)   /* the loaders report their own */
            cli_fail(C, "%s", lfm2_last_error());
        return -1;
    }
    return 0;
}

static void free_tts_set(struct tts_set *s)
{
    lfm2_tts_free(s->tts);
    lfm2_audio_tokenizer_free(s->tok);
    lfm2_vocoder_free(s->voc);
    lfm2_model_free(s->m);
}

/* ---- audio-codes ------------------------------------------------------------------------------ */

static const char codes_usage[] =
    "usage: lfm2 audio-codes --vocoder VOC --hidden H.f32 -o CODES.i32 [options]\n"
    "  reads float32 [n][n_embd] backbone hidden states (after the final norm), writes int32\n"
    "  [n][8] codes: the raw samples of each frame (the depth transformer's cache reset per row)\n"
    "  --temp X  --top-k N  --seed S   sample instead of greedy (default --temp 0)\n"
    "  --logits OUT.f32                also write the logits [n][8][2049] along the path\n"
    "  --ggml-rounding                 F16 matrices as stored, half-precision activations\n"
    "  -t N                            threads (0 = all cores)\n";

int cmd_audio_codes(int argc, char **argv)
{
    const char *C = "audio-codes", *hidden = NULL, *logits_out = NULL;
    struct common c = common_init(codes_usage, true, 0.0f, 64);
    const struct opt own[] = { { "--hidden", NULL, .str = &hidden }, { "--logits", NULL, .str = &logits_out } };
    const int pr = parse_opts(C, argc, argv, &c, own, 2);
    if (pr)
        return pr > 0 ? 0 : 1;
    if (!c.vocoder || !hidden || !c.out) {
        fputs(codes_usage, stderr);
        return cli_fail(C, "need --vocoder VOC, --hidden H.f32 and -o CODES.i32");
    }
    int rc = 1;
    float *h = NULL, *lg = NULL;
    int32_t *codes = NULL;
    lfm2_audio_head *head = NULL;
    lfm2_vocoder *voc = load_vocoder(C, &c);
    if (!voc)
        goto out;
    const struct lfm2_vocoder_hparams *vh = lfm2_vocoder_get_hparams(voc);
    size_t size = 0;
    if (!(h = read_file(C, hidden, &size)))
        goto out;
    const size_t row = (size_t)vh->n_embd * sizeof(float);
    if (size == 0 || size % row) {
        cli_fail(C, "%s: %zu bytes is not a whole number of rows of %d floats (the vocoder's "
                 "n_embd)", hidden, size, vh->n_embd);
        goto out;
    }
    const size_t n = size / row, K = (size_t)vh->n_codebooks, V = (size_t)vh->n_codes;
    struct lfm2_audio_head_params hp = lfm2_audio_head_default_params();
    hp.temperature = c.sp.temperature;
    hp.top_k = c.sp.top_k;
    hp.seed = c.sp.seed;
    hp.n_threads = c.n_threads;
    if (!(head = lfm2_audio_head_new(voc, hp))) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (!(codes = malloc(n * K * sizeof *codes)) || (logits_out && !(lg = malloc(n * K * V * sizeof *lg)))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    const double t0 = lfm2_time_ms();
    for (size_t r = 0; r < n; r++) {
        if (lfm2_audio_head_sample(head, h + r * vh->n_embd, codes + r * K)) {
            cli_fail(C, "%s: row %zu: %s", hidden, r, lfm2_last_error());
            goto out;
        }
        for (size_t k = 0; lg && k < K; k++)
            memcpy(lg + (r * K + k) * V, lfm2_audio_head_logits(head, (int)k), V * sizeof *lg);
    }
    const double ms = lfm2_time_ms() - t0;
    if (write_file(C, c.out, codes, n * K * sizeof *codes) ||
        (lg && write_file(C, logits_out, lg, n * K * V * sizeof *lg)))
        goto out;
    int n_end = 0;
    for (size_t r = 0; r < n; r++)
        n_end += codes[r * K] == vh->eoa;
    fprintf(stderr, "%s\n%zu frames in %.1f ms (%.2f ms per frame), %d end-of-audio\n",
            lfm2_vocoder_desc(voc), n, ms, ms / (double)n, n_end);
    rc = 0;
out:
    free(h);
    free(lg);
    free(codes);
    lfm2_audio_head_free(head);
    lfm2_vocoder_free(voc);
    return rc;
}

/* ---- audio-embed ------------------------------------------------------------------------------ */

static const char embed_usage[] =
    "usage: lfm2 audio-embed --vocoder VOC --codes C.i32 -o E.f32\n"
    "  reads int32 [n][8] codes (0..2048, the end-of-audio frame included), writes float32\n"
    "  [n][n_embd]: Σ_k audio_embedding[k·2049 + c_k], the backbone input that feeds a frame back\n";

int cmd_audio_embed(int argc, char **argv)
{
    const char *C = "audio-embed", *codes_path = NULL;
    struct common c = common_init(embed_usage, false, 0.0f, 0);
    const struct opt own[] = { { "--codes", NULL, .str = &codes_path } };
    const int pr = parse_opts(C, argc, argv, &c, own, 1);
    if (pr)
        return pr > 0 ? 0 : 1;
    if (!c.vocoder || !codes_path || !c.out) {
        fputs(embed_usage, stderr);
        return cli_fail(C, "need --vocoder VOC, --codes C.i32 and -o E.f32");
    }
    int rc = 1, n = 0;
    int32_t *codes = NULL;
    float *e = NULL;
    lfm2_audio_head *head = NULL;
    lfm2_vocoder *voc = load_vocoder(C, &c);
    if (!voc)
        goto out;
    const struct lfm2_vocoder_hparams *vh = lfm2_vocoder_get_hparams(voc);
    struct lfm2_audio_head_params hp = lfm2_audio_head_default_params();
    hp.n_threads = 1;
    if (!(codes = read_codes(C, codes_path, vh->n_codebooks, &n)))
        goto out;
    if (!(head = lfm2_audio_head_new(voc, hp)) || !(e = malloc((size_t)n * vh->n_embd * sizeof *e))) {
        cli_fail(C, "%s", head ? "out of memory" : lfm2_last_error());
        goto out;
    }
    for (int f = 0; f < n; f++)
        if (lfm2_audio_head_embed(head, codes + (size_t)f * vh->n_codebooks, e + (size_t)f * vh->n_embd)) {
            cli_fail(C, "%s: frame %d: %s", codes_path, f, lfm2_last_error());
            goto out;
        }
    if (write_file(C, c.out, e, (size_t)n * vh->n_embd * sizeof *e))
        goto out;
    rc = 0;
out:
    free(codes);
    free(e);
    lfm2_audio_head_free(head);
    lfm2_vocoder_free(voc);
    return rc;
}

/* ---- vocode ----------------------------------------------------------------------------------- */

static const char vocode_usage[] =
    "usage: lfm2 vocode --vocoder VOC --tokenizer TOK --codes C.i32 -o OUT.wav [options]\n"
    "  reads int32 [n][8] codes (0..2047), writes 1920·n samples at 24 kHz as a PCM16 WAV\n"
    "  --raw OUT.f32         also the float32 samples\n"
    "  --chunk N             frames per decoder push (1 = frame by frame as a stream; default 1)\n"
    "  --ggml-rounding       F16 matrices as stored, half-precision activations\n"
    "  -t N                  threads (0 = all cores)\n";

int cmd_vocode(int argc, char **argv)
{
    const char *C = "vocode", *codes_path = NULL, *raw = NULL;
    struct common c = common_init(vocode_usage, false, 0.0f, 0);
    int chunk = 1;
    const struct opt own[] = {
        { "--codes", NULL, .str = &codes_path },
        { "--raw", NULL, .str = &raw },
        { "--chunk", NULL, .num = &chunk, .lo = 1, .hi = 1 << 20 },
    };
    const int pr = parse_opts(C, argc, argv, &c, own, 3);
    if (pr)
        return pr > 0 ? 0 : 1;
    if (!c.vocoder || !c.tokenizer || !codes_path || !c.out) {
        fputs(vocode_usage, stderr);
        return cli_fail(C, "need --vocoder VOC, --tokenizer TOK, --codes C.i32 and -o OUT.wav");
    }
    int rc = 1, n = 0;
    int32_t *codes = NULL;
    float *y = NULL;
    lfm2_audio_decoder *dec = NULL;
    lfm2_audio_tokenizer *tok = NULL;
    lfm2_vocoder *voc = load_vocoder(C, &c);
    if (!voc || !(tok = load_tokenizer(C, &c)))
        goto out;
    const int K = lfm2_vocoder_get_hparams(voc)->n_codebooks;
    if (!(codes = read_codes(C, codes_path, K, &n)))
        goto out;
    struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
    dp.n_threads = c.n_threads;
    dp.max_frames = chunk < 64 ? chunk : 64;
    const size_t total = (size_t)n * LFM2_AUDIO_FRAME_SAMPLES;
    if (!(dec = lfm2_audio_decoder_new(voc, tok, dp)) || !(y = malloc(total * sizeof *y))) {
        cli_fail(C, "%s", dec ? "out of memory" : lfm2_last_error());
        goto out;
    }
    const double t0 = lfm2_time_ms();
    size_t m = 0;
    for (int f = 0; f < n; f += chunk) {
        const int nf = n - f < chunk ? n - f : chunk;
        const int got = lfm2_audio_decoder_push(dec, codes + (size_t)f * K, nf, y + m, total - m);
        if (got < 0) {
            cli_fail(C, "%s: frames %d…%d: %s", codes_path, f, f + nf - 1, lfm2_last_error());
            goto out;
        }
        m += (size_t)got;
    }
    const int tail = lfm2_audio_decoder_flush(dec, y + m, total - m);
    if (tail < 0) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    m += (size_t)tail;
    const double ms = lfm2_time_ms() - t0;
    double istft_ms = 0;
    lfm2_audio_decoder_ms(dec, &istft_ms, NULL);
    if (lfm2_audio_write_wav(c.out, y, m)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (raw && write_file(C, raw, y, m * sizeof *y))
        goto out;
    fprintf(stderr, "%s\n%s\n%d frames -> %zu samples (%.2f s) in %.1f ms (ISTFT %.1f ms): %.1f ms per "
            "second of audio\n",
            lfm2_vocoder_desc(voc), lfm2_audio_tokenizer_desc(tok), n, m, m / (double)LFM2_AUDIO_SAMPLE_RATE,
            ms, istft_ms, ms / (m / (double)LFM2_AUDIO_SAMPLE_RATE));
    rc = 0;
out:
    free(codes);
    free(y);
    lfm2_audio_decoder_free(dec);
    lfm2_audio_tokenizer_free(tok);
    lfm2_vocoder_free(voc);
    return rc;
}

/* ---- speak ------------------------------------------------------------------------------------ */

static const char speak_usage[] =
    "usage: lfm2 speak -m MODEL --vocoder VOC --tokenizer TOK [options] TEXT\n"
    "  TEXT, or -f FILE (\"-\" = stdin): what to say; prints time to first audio and the\n"
    "  real-time factor (generation time / audio duration) on stderr\n"
    "  -o OUT.wav              write the speech (PCM16, 24 kHz mono)\n"
    "  --raw OUT.f32           also the float32 samples\n"
    "  --codes OUT.i32         also the generated frames [n][8]\n"
    "  --voice V               us-male | us-female (default) | uk-male | uk-female\n"
    "  --interleaved           the interleaved text + audio mode (\"Respond with interleaved text\n"
    "                          and audio.\"): the reply's text goes to stdout\n"
    "  -s TEXT                 another system prompt\n"
    "  --temp X  --top-k N     audio sampling (TTS 0.8 / 64, interleaved 0.8 / 4; --temp 0 greedy)\n"
    "  --seed S                sampling seed (0)\n"
    "  -n N                    most text tokens + frames (default: until the model ends its turn)\n"
    "  -c N                    context size (4096)\n"
    "  -r N                    speak the text N times (turns after the first reuse the cached\n"
    "                          system prompt; timings per turn; the files get the last)\n"
    "  -t N                    threads (0 = all cores)\n"
    "  --ggml-rounding         F16 matrices as stored, half-precision activations\n"
    "  -v                      verbose\n";

int cmd_speak(int argc, char **argv)
{
    const char *C = "speak", *model_path = NULL, *text = NULL, *file = NULL, *raw = NULL;
    const char *codes_out = NULL, *voice = NULL;
    struct common c = common_init(speak_usage, true, -1.0f, -1);   /* -1: the mode's defaults */
    c.takes_positional = true;
    struct lfm2_tts_params tp = lfm2_tts_default_params();
    int repeat = 1;
    bool interleaved = false;
    const struct opt own[] = {
        { "-m", "--model", .str = &model_path },
        { "-f", "--file", .str = &file },
        { "--raw", NULL, .str = &raw },
        { "--codes", NULL, .str = &codes_out },
        { "--voice", NULL, .str = &voice },
        { "--interleaved", NULL, .flag = &interleaved },
        { "-s", "--system", .str = &tp.system_prompt },
        { "-n", "--n-predict", .num = &tp.n_predict, .lo = -1, .hi = INT_MAX },
        { "-c", "--ctx-size", .num = &tp.n_ctx, .lo = 0, .hi = INT_MAX },
        { "-r", "--repeat", .num = &repeat, .lo = 1, .hi = 1000 },
    };
    const int pr = parse_opts(C, argc, argv, &c, own, (int)(sizeof own / sizeof own[0]));
    if (pr)
        return pr > 0 ? 0 : 1;
    text = c.positional;
    if (voice) {
        const int vo = lfm2_tts_voice_from_name(voice);
        if (vo < 0)
            return cli_fail(C, "--voice: '%s' is not one of us-male, us-female, uk-male, uk-female", voice);
        tp.voice = (enum lfm2_tts_voice)vo;
    }
    if (interleaved)
        tp.mode = LFM2_TTS_INTERLEAVED;
    if (!model_path || !c.vocoder || !c.tokenizer || (!text && !file) || (text && file)) {
        fputs(speak_usage, stderr);
        return cli_fail(C, "need -m MODEL, --vocoder VOC, --tokenizer TOK and TEXT (or -f FILE)");
    }
    tp.n_threads = c.n_threads;
    tp.audio_temperature = c.sp.temperature == -1.0f ? -1.0f : c.sp.temperature < 0 ? 0.0f : c.sp.temperature;
    tp.audio_top_k = c.sp.top_k;
    tp.seed = c.sp.seed;

    int rc = 1;
    char *owned_text = NULL;
    float *y = NULL;
    int32_t *codes = NULL;
    size_t n_y = 0, cap_y = 0, n_codes = 0, cap_codes = 0;
    struct tts_set set = { 0 };
    if (file) {
        size_t size = 0;
        if (!(owned_text = strcmp(file, "-") ? read_file(C, file, &size) : read_stream(C, stdin, "stdin", &size)))
            goto out;
        text = owned_text;
    }
    bool blank = true;
    for (const char *p = text; *p && blank; p++)
        blank = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';

    const double t_start = lfm2_time_ms();
    if (load_tts_set(C, &c, model_path, tp, &set))
        goto out;
    lfm2_tts *tts = set.tts;
    const double t_loaded = lfm2_time_ms();
    struct lfm2_tts_stats st = { .first_audio_ms = -1 };
    if (blank) /* nothing to say: no audio, no error */
        fprintf(stderr, "lfm2 speak: the text is empty: no audio\n");
    for (int rep = 0; !blank && rep < repeat; rep++) {
        n_y = n_codes = 0;   /* the files get the last turn */
        if (lfm2_tts_begin_text(tts, text)) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        struct lfm2_tts_event ev;
        int r;
        while ((r = lfm2_tts_step(tts, &ev)) > 0) {
            if (ev.kind == LFM2_TTS_EVENT_TEXT && tp.mode == LFM2_TTS_INTERLEAVED && rep == 0) {
                fputs(ev.text, stdout);
                fflush(stdout);
            }
            if (ev.n_samples > 0) {
                if (n_y + (size_t)ev.n_samples > cap_y) {
                    cap_y = 2 * cap_y + LFM2_AUDIO_FRAME_SAMPLES * 16;
                    float *p = realloc(y, cap_y * sizeof *y);
                    if (!p) {
                        cli_fail(C, "out of memory");
                        goto out;
                    }
                    y = p;
                }
                memcpy(y + n_y, ev.samples, (size_t)ev.n_samples * sizeof *y);
                n_y += (size_t)ev.n_samples;
            }
            if (ev.kind == LFM2_TTS_EVENT_AUDIO && codes_out) {
                const size_t K = (size_t)lfm2_vocoder_get_hparams(set.voc)->n_codebooks;
                if (n_codes + K > cap_codes) {
                    cap_codes = 2 * cap_codes + K * 64;
                    int32_t *p = realloc(codes, cap_codes * sizeof *codes);
                    if (!p) {
                        cli_fail(C, "out of memory");
                        goto out;
                    }
                    codes = p;
                }
                memcpy(codes + n_codes, ev.codes, K * sizeof *codes);
                n_codes += K;
            }
            if (ev.kind == LFM2_TTS_EVENT_DONE && ev.stop == LFM2_TTS_STOP_CONTEXT)
                fprintf(stderr, "lfm2 speak: the context is full (-c %d): stopped\n",
                        lfm2_n_ctx(lfm2_tts_context(tts)));
        }
        if (r < 0) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        if (tp.mode == LFM2_TTS_INTERLEAVED && rep == 0)
            fputc('\n', stdout);
        lfm2_tts_get_stats(tts, &st);
        const double audio_ms = n_y * 1000.0 / LFM2_AUDIO_SAMPLE_RATE;
        fprintf(stderr, "lfm2 speak: %sprefill %.1f ms | first audio %.1f ms | %d text tokens, %d frames = "
                "%.2f s of audio in %.1f ms | real-time factor %.3f\n",
                repeat > 1 ? (rep ? "turn (system prompt cached): " : "turn 1: ") : "", st.prefill_ms,
                st.first_audio_ms, st.n_text, st.n_frames, audio_ms / 1000.0, st.total_ms,
                audio_ms > 0 ? st.total_ms / audio_ms : 0.0);
        if (st.n_frames > 0)
            fprintf(stderr, "lfm2 speak: per frame: backbone %.1f ms, depth transformer %.1f ms, "
                    "detokenizer + ISTFT %.1f ms\n",
                    (st.backbone_ms - st.prefill_ms) / (st.n_frames + st.n_text), st.head_ms / st.n_frames,
                    st.decoder_ms / st.n_frames);
    }
    if (c.out && lfm2_audio_write_wav(c.out, y, n_y)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if ((raw && write_file(C, raw, y, n_y * sizeof *y)) ||
        (codes_out && write_file(C, codes_out, codes, n_codes * sizeof *codes)))
        goto out;
    fprintf(stderr, "lfm2 speak: load %.0f ms (%s; %s; %s), %d threads\n", t_loaded - t_start,
            lfm2_model_desc(set.m), lfm2_vocoder_desc(set.voc), lfm2_audio_tokenizer_desc(set.tok),
            lfm2_n_threads(lfm2_tts_context(tts)));
    rc = 0;
out:
    free(owned_text);
    free(y);
    free(codes);
    free_tts_set(&set);
    return rc;
}

/* ---- s2s -------------------------------------------------------------------------------------- */

static const char s2s_usage[] =
    "usage: lfm2 s2s -m MODEL --mmproj MMPROJ --vocoder VOC --tokenizer TOK IN -o OUT.wav [options]\n"
    "  speech to speech: every utterance of IN (any file FFmpeg reads, cut by the voice-activity\n"
    "  detector) goes through the speech encoder (MMPROJ) into the user turn of the interleaved\n"
    "  mode (\"Respond with interleaved text and audio.\"); the replies' speech goes to OUT.wav one\n"
    "  after the other, their text to stdout (a line per reply). Prints, per reply, the time to\n"
    "  first audio (from the end of the utterance: encoder, prefill, first frame) and the\n"
    "  real-time factor (reply time / reply duration) on stderr.\n"
    "  --text OUT.txt          also write the replies' text, a line per reply\n"
    "  --raw OUT.f32           also the float32 samples\n"
    "  --whole                 the whole file is one utterance (no voice-activity detection)\n"
    "  -p, --prompt TEXT       text in the user turn before the speech (e.g. \"Translate to French:\")\n"
    "  -s TEXT                 another system prompt\n"
    "  --temp X  --top-k N     audio sampling (interleaved: 0.8 / 4; --temp 0 greedy)\n"
    "  --seed S                sampling seed (0)\n"
    "  -n N                    most text tokens + frames per reply (default: until the model ends)\n"
    "  -c N                    context size (4096)\n"
    "  -t N                    threads (0 = all cores)\n"
    "  --ggml-rounding         F16 matrices as stored, half-precision activations\n"
    "  -v                      verbose\n";

/* What the replies add up to. */
struct s2s_out {
    float *y;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
};

static int append(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = 2 * *cap + 4096;
    while (c < need)
        c *= 2;
    void *p = realloc(*buf, c * elem);
    if (!p)
        return -1;
    *buf = p;
    *cap = c;
    return 0;
}

/* One utterance → one reply: encoder rows as the user turn, the interleaved loop, the reply's
 * text to stdout and its samples to out. */
static int s2s_turn(const char *C, lfm2_audio *enc, lfm2_tts *tts, const char *prompt, const float *pcm, int64_t n,
                    double t_utt, struct s2s_out *out, int index)
{
    const double t0 = lfm2_time_ms();
    const int64_t rows = lfm2_audio_n_tokens(n);
    const int n_embd = lfm2_audio_n_embd_out(enc);
    float *embd = malloc((size_t)rows * n_embd * sizeof *embd);
    if (!embd)
        return cli_fail(C, "out of memory");
    if (lfm2_audio_encode(enc, pcm, n, embd, (size_t)rows * n_embd) != rows) {
        free(embd);
        return cli_fail(C, "%s", lfm2_last_error());
    }
    const double encode_ms = lfm2_time_ms() - t0;
    struct lfm2_tts_part parts[2] = { { .text = prompt }, { .embd = embd, .n_embd_rows = (int32_t)rows } };
    const int r0 = prompt ? lfm2_tts_begin(tts, parts, 2) : lfm2_tts_begin(tts, parts + 1, 1);
    free(embd);
    if (r0)
        return cli_fail(C, "%s", lfm2_last_error());
    const size_t n0 = out->n;
    double first_ms = -1.0;
    struct lfm2_tts_event ev;
    int r;
    while ((r = lfm2_tts_step(tts, &ev)) > 0) {
        if (ev.kind == LFM2_TTS_EVENT_TEXT) {
            const size_t len = strlen(ev.text);
            if (append((void **)&out->text, &out->text_cap, out->text_len + len + 2, 1))
                return cli_fail(C, "out of memory");
            memcpy(out->text + out->text_len, ev.text, len + 1);
            out->text_len += len;
            fputs(ev.text, stdout);
            fflush(stdout);
        }
        if (ev.n_samples > 0) {
            if (first_ms < 0)
                first_ms = lfm2_time_ms() - t0;
            if (append((void **)&out->y, &out->cap, out->n + (size_t)ev.n_samples, sizeof *out->y))
                return cli_fail(C, "out of memory");
            memcpy(out->y + out->n, ev.samples, (size_t)ev.n_samples * sizeof *out->y);
            out->n += (size_t)ev.n_samples;
        }
        if (ev.kind == LFM2_TTS_EVENT_DONE && ev.stop == LFM2_TTS_STOP_CONTEXT)
            fprintf(stderr, "lfm2 s2s: the context is full (-c %d): reply %d stopped\n",
                    lfm2_n_ctx(lfm2_tts_context(tts)), index);
    }
    if (r < 0)
        return cli_fail(C, "%s", lfm2_last_error());
    if (append((void **)&out->text, &out->text_cap, out->text_len + 2, 1))
        return cli_fail(C, "out of memory");
    out->text[out->text_len++] = '\n';
    out->text[out->text_len] = '\0';
    fputc('\n', stdout);
    struct lfm2_tts_stats st;
    lfm2_tts_get_stats(tts, &st);
    const double total_ms = lfm2_time_ms() - t0, audio_ms = (out->n - n0) * 1000.0 / LFM2_AUDIO_SAMPLE_RATE;
    fprintf(stderr, "lfm2 s2s: reply %d to %.2f s of speech at %.2f s: encoder %.1f ms (%lld rows), prefill "
            "%.1f ms | first audio %.1f ms | %d text tokens, %d frames = %.2f s of audio in %.1f ms | "
            "real-time factor %.3f\n",
            index, n / (double)INPUT_RATE, t_utt, encode_ms, (long long)rows, st.prefill_ms, first_ms,
            st.n_text, st.n_frames, audio_ms / 1000.0, total_ms, audio_ms > 0 ? total_ms / audio_ms : 0.0);
    return 0;
}

int cmd_s2s(int argc, char **argv)
{
    const char *C = "s2s", *model_path = NULL, *mmproj = NULL, *text_out = NULL, *raw = NULL, *prompt = NULL;
    struct common c = common_init(s2s_usage, true, -1.0f, -1);   /* -1: the mode's defaults */
    c.takes_positional = true;
    struct lfm2_tts_params tp = lfm2_tts_default_params();
    bool whole = false;
    const struct opt own[] = {
        { "-m", "--model", .str = &model_path },
        { "--mmproj", "-mm", .str = &mmproj },
        { "--text", NULL, .str = &text_out },
        { "--raw", NULL, .str = &raw },
        { "--whole", NULL, .flag = &whole },
        { "-p", "--prompt", .str = &prompt },
        { "-s", "--system", .str = &tp.system_prompt },
        { "-n", "--n-predict", .num = &tp.n_predict, .lo = -1, .hi = INT_MAX },
        { "-c", "--ctx-size", .num = &tp.n_ctx, .lo = 0, .hi = INT_MAX },
    };
    const int pr = parse_opts(C, argc, argv, &c, own, (int)(sizeof own / sizeof own[0]));
    if (pr)
        return pr > 0 ? 0 : 1;
    const char *in = c.positional;
    if (!model_path || !mmproj || !c.vocoder || !c.tokenizer || !in || !c.out) {
        fputs(s2s_usage, stderr);
        return cli_fail(C, "need -m MODEL, --mmproj MMPROJ, --vocoder VOC, --tokenizer TOK, IN and -o OUT.wav");
    }
    tp.mode = LFM2_TTS_INTERLEAVED;
    tp.n_threads = c.n_threads;
    tp.audio_temperature = c.sp.temperature == -1.0f ? -1.0f : c.sp.temperature < 0 ? 0.0f : c.sp.temperature;
    tp.audio_top_k = c.sp.top_k;
    tp.seed = c.sp.seed;
    if (!c.verbose)
        lfm2_audio_quiet_ffmpeg_log();

    int rc = 1, n_utt = 0;
    float *pcm = NULL;
    int64_t n = 0;
    struct s2s_out out = { 0 };
    struct tts_set set = { 0 };
    lfm2_audio *enc = NULL;
    lfm2_vad *vad = NULL;
    struct lfm2_audio_file_info info;

    const double t_start = lfm2_time_ms();
    if (load_tts_set(C, &c, model_path, tp, &set))
        goto out;
    lfm2_tts *tts = set.tts;
    /* the encoder works on the generation's thread pool: they never run at once */
    struct lfm2_audio_params ap = lfm2_audio_default_params();
    ap.pool = lfm2_context_pool(lfm2_tts_context(tts));
    ap.verbose = c.verbose;
    if (!(enc = lfm2_audio_load(mmproj, ap)) || lfm2_audio_check_text_model(enc, set.m)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    const double t_loaded = lfm2_time_ms();
    if (lfm2_audio_load_file(in, &pcm, &n, &info)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if (!(out.text = malloc(1))) {
        cli_fail(C, "out of memory");
        goto out;
    }
    out.text[0] = '\0';
    out.text_cap = 1;
    const double t_work = lfm2_time_ms();
    if (whole) {
        if (n > 0 && s2s_turn(C, enc, tts, prompt, pcm, n, 0.0, &out, ++n_utt))
            goto out;
    } else {
        /* utterances as the voice-activity detector closes them, 1 s of input at a time */
        if (!(vad = lfm2_vad_new(NULL))) {
            cli_fail(C, "%s", lfm2_last_error());
            goto out;
        }
        for (int64_t i = 0; i < n + INPUT_RATE; i += INPUT_RATE) {
            const int w = i < n ? lfm2_vad_push(vad, pcm + i, n - i < INPUT_RATE ? n - i : INPUT_RATE)
                                : lfm2_vad_flush(vad);
            struct lfm2_vad_segment seg;
            if (w < 0) {
                cli_fail(C, "%s: %s", in, lfm2_last_error());
                goto out;
            }
            while (lfm2_vad_pop(vad, &seg))
                if (s2s_turn(C, enc, tts, prompt, seg.pcm, seg.n, seg.start / (double)INPUT_RATE, &out, ++n_utt))
                    goto out;
        }
    }
    const double work_ms = lfm2_time_ms() - t_work;
    if (n_utt == 0)
        fprintf(stderr, "lfm2 s2s: %s: no speech found (%.2f s of audio): no reply\n", in, n / (double)INPUT_RATE);
    if (lfm2_audio_write_wav(c.out, out.y, out.n)) {
        cli_fail(C, "%s", lfm2_last_error());
        goto out;
    }
    if ((raw && write_file(C, raw, out.y, out.n * sizeof *out.y)) ||
        (text_out && write_file(C, text_out, out.text, out.text_len)))
        goto out;
    fprintf(stderr, "lfm2 s2s: %s: %.2f s of input (%s, %d Hz, %d ch), %d utterance%s, %.2f s of replies in "
            "%.1f ms (real-time factor %.3f of the input)\n",
            in, n / (double)INPUT_RATE, info.codec, info.rate, info.channels, n_utt, n_utt == 1 ? "" : "s",
            out.n / (double)LFM2_AUDIO_SAMPLE_RATE, work_ms, n > 0 ? work_ms / (n * 1000.0 / INPUT_RATE) : 0.0);
    fprintf(stderr, "lfm2 s2s: load %.0f ms (%s; %s; %s; %s), %d threads\n", t_loaded - t_start,
            lfm2_model_desc(set.m), lfm2_audio_desc(enc), lfm2_vocoder_desc(set.voc), lfm2_audio_tokenizer_desc(set.tok),
            lfm2_n_threads(lfm2_tts_context(tts)));
    rc = 0;
out:
    free(pcm);
    free(out.y);
    free(out.text);
    lfm2_vad_free(vad);
    lfm2_audio_free(enc);
    free_tts_set(&set);
    return rc;
}
