/* vad.c — an energy/spectral voice-activity detector that cuts a 16 kHz stream into utterances.
 *
 * Per 10 ms frame (the last 512 samples, Hann window, av_tx float FFT), over the speech band
 * 200–4000 Hz (bins 7…128):
 *   level  = 10·log10(P_band) + 3.01 dB,  P_band = 2·Σ|X_k|² / (512·Σw²)   (band power;
 *            a full-scale sine in the band reads 0 dB)
 *   floor  = min(level) over the last 1.5 s                              (minimum statistics:
 *            speech pauses between syllables, steady noise does not; after 250 ms of digital
 *            silence the estimate starts again)
 *   flat   = exp(mean ln|X_k|²) / mean |X_k|²                            (~0.56 for white noise,
 *            0.05–0.3 for voiced speech)
 *   score  = σ((level − floor − 6)/1.5) · σ((level − min_level)/1.5) · σ((0.5 − flat)/0.06)
 * A frame is speech when score >= threshold. Utterances: see lfm2-audio.h. Samples are kept
 * only for the open utterance plus a pre-roll of pad + min_speech, so memory stays flat over
 * any length of silence.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/tx.h>

#include "audio-impl.h"

#define FRAME LFM2_AUDIO_HOP            /* 160 samples = 10 ms */
#define WIN 512
#define BIN_LO 7                        /* 218.75 Hz */
#define BIN_HI 129                      /* … 4000 Hz inclusive */
#define FLOOR_FRAMES 150                /* 1.5 s of minimum statistics */
#define CUT_SEARCH_FRAMES 300           /* forced cuts look at the last 3 s */
#define DIGITAL_SILENCE (1.0f / 65536)  /* below half a 16-bit step: nothing was recorded */
#define RESET_FRAMES 25                 /* 250 ms of it restarts the noise estimate */

struct segment {
    int64_t start, end;
    bool forced;
    float *pcm;
};

struct lfm2_vad {
    struct lfm2_vad_params p;
    AVTXContext *tx;
    av_tx_fn fft;
    float win[WIN], win_pow;
    float *fft_in;
    AVComplexFloat *fft_out;

    /* samples [buf_start, pos) */
    float *buf;
    int64_t buf_start, buf_len, buf_cap;
    int64_t pos;
    int64_t n_frames;                   /* frames analysed (frame f ends at (f+1)·FRAME) */

    float floor_hist[FLOOR_FRAMES];     /* ring of the last n_hist measured levels */
    int hist_pos, n_hist;
    int silent_run;                     /* consecutive frames whose window is digital silence */
    float last_score, last_level, last_floor;

    /* state */
    bool speech;                        /* an utterance is open */
    int run;                            /* consecutive speech frames (while idle) */
    int silence;                        /* consecutive non-speech frames (while open) */
    int64_t start;                      /* open utterance: first sample */
    int64_t last_speech_end;            /* end of its last speech frame */
    int64_t min_start;                  /* the next utterance may not start before this */
    float *levels;                      /* frame levels of the open utterance */
    int64_t n_levels, levels_cap;
    int64_t levels_frame0;              /* frame index of levels[0] */

    struct segment *q;                  /* completed, not popped */
    int n_q, cap_q;
    float *popped;                      /* samples of the last popped segment */
};

struct lfm2_vad_params lfm2_vad_default_params(void)
{
    struct lfm2_vad_params p;
    memset(&p, 0, sizeof p);
    p.threshold = 0.5f;
    p.min_level_db = -50.0f;
    p.min_speech_ms = 60;
    p.min_silence_ms = 500;
    p.pad_ms = 200;
    p.max_segment_ms = 30000;
    return p;
}

static int64_t ms_to_samples(int ms)
{
    return (int64_t)ms * LFM2_AUDIO_SAMPLE_RATE / 1000;
}

/* Samples before the current position that must stay available: the analysis window, and
 * the pre-roll an utterance starts with. */
static int64_t keep_samples(const lfm2_vad *v)
{
    const int64_t k = ms_to_samples(v->p.pad_ms) + ms_to_samples(v->p.min_speech_ms) + 2 * FRAME;
    return k > WIN ? k : WIN;
}

lfm2_vad *lfm2_vad_new(const struct lfm2_vad_params *params)
{
    struct lfm2_vad_params p = params ? *params : lfm2_vad_default_params();
    if (!(p.threshold >= 0.0f && p.threshold <= 1.0f))
        return lfm2_set_error("VAD: threshold %g is outside 0…1", (double)p.threshold), NULL;
    if (p.min_speech_ms < 10 || p.min_speech_ms > 10000 || p.min_silence_ms < 10 ||
        p.min_silence_ms > 60000 || p.pad_ms < 0 || p.pad_ms > 5000)
        return lfm2_set_error("VAD: min_speech_ms %d (10…10000), min_silence_ms %d (10…60000), "
                              "pad_ms %d (0…5000) out of range", p.min_speech_ms,
                              p.min_silence_ms, p.pad_ms), NULL;
    if (p.max_segment_ms < 1000 || p.max_segment_ms > 3600000)
        return lfm2_set_error("VAD: max_segment_ms %d is outside 1000…3600000", p.max_segment_ms), NULL;
    if (!isfinite(p.min_level_db))
        return lfm2_set_error("VAD: min_level_db is not a number"), NULL;
    lfm2_vad *v = calloc(1, sizeof *v);
    if (!v)
        return lfm2_set_error("out of memory"), NULL;
    v->p = p;
    const float scale = 1.0f;
    const int r = av_tx_init(&v->tx, &v->fft, AV_TX_FLOAT_RDFT, 0, WIN, &scale, 0);
    v->fft_in = lfm2_alloc_aligned(sizeof(float) * (WIN + 16));
    v->fft_out = lfm2_alloc_aligned(sizeof(AVComplexFloat) * (WIN / 2 + 16));
    if (r < 0 || !v->fft_in || !v->fft_out) {
        lfm2_vad_free(v);
        return lfm2_set_error("VAD: cannot set up the FFT"), NULL;
    }
    double s2 = 0.0;
    for (int i = 0; i < WIN; i++) {
        v->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / WIN));
        s2 += (double)v->win[i] * v->win[i];
    }
    v->win_pow = (float)s2;
    lfm2_vad_reset(v);
    return v;
}

static void drop_queue(lfm2_vad *v)
{
    for (int i = 0; i < v->n_q; i++)
        free(v->q[i].pcm);
    v->n_q = 0;
    free(v->popped);
    v->popped = NULL;
}

void lfm2_vad_free(lfm2_vad *v)
{
    if (!v)
        return;
    drop_queue(v);
    free(v->q);
    free(v->buf);
    free(v->levels);
    lfm2_free_aligned(v->fft_in);
    lfm2_free_aligned(v->fft_out);
    av_tx_uninit(&v->tx);
    free(v);
}

void lfm2_vad_reset(lfm2_vad *v)
{
    drop_queue(v);
    v->buf_start = v->buf_len = 0;
    v->pos = v->n_frames = 0;
    v->speech = false;
    v->run = v->silence = 0;
    v->start = v->last_speech_end = v->min_start = 0;
    v->n_levels = 0;
    memset(v->floor_hist, 0, sizeof v->floor_hist);
    v->hist_pos = v->n_hist = v->silent_run = 0;
    v->last_score = 0.0f;
    v->last_level = v->last_floor = -200.0f;
}

/* Sample at stream position i (0 before the stream started). */
static inline float sample_at(const lfm2_vad *v, int64_t i)
{
    return i < v->buf_start ? 0.0f : v->buf[i - v->buf_start];
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Measures the frame ending at `end`; returns its speech score and level. */
static float analyse(lfm2_vad *v, int64_t end, float *level_db)
{
    int silent = 0;
    for (int j = 0; j < WIN; j++) {
        const float x = sample_at(v, end - WIN + j);
        silent += fabsf(x) < DIGITAL_SILENCE;
        v->fft_in[j] = x * v->win[j];
    }
    v->fft(v->tx, v->fft_out, v->fft_in, sizeof(float));
    double sum = 0.0, sum_log = 0.0;
    for (int k = BIN_LO; k < BIN_HI; k++) {
        const double p = (double)v->fft_out[k].re * v->fft_out[k].re +
                         (double)v->fft_out[k].im * v->fft_out[k].im + 1e-20;
        sum += p;
        sum_log += log(p);
    }
    const int nb = BIN_HI - BIN_LO;
    const double p_band = 2.0 * sum / ((double)WIN * v->win_pow);
    const float level = (float)(10.0 * log10(p_band + 1e-20) + 3.0103);
    const float flat = (float)(exp(sum_log / nb) / (sum / nb));

    v->last_level = level;
    *level_db = level;
    v->silent_run = silent > WIN / 8 ? v->silent_run + 1 : 0;
    if (end < WIN || (v->silent_run >= RESET_FRAMES && !v->speech)) {
        /* The window reaches before the stream, or digital silence has lasted RESET_FRAMES
         * with no utterance open (a muted source, a gap between joined files; not a pause
         * between words): its level is not the recording's noise. Kept in the floor it would
         * make any noise after it look like speech for FLOOR_FRAMES, so the estimate starts
         * again after it, as at the start of the stream. */
        v->n_hist = 0;
        v->last_score = 0.0f;
        return 0.0f;
    }
    /* minimum statistics over the last FLOOR_FRAMES measured frames, this one included */
    v->floor_hist[v->hist_pos] = level;
    v->hist_pos = (v->hist_pos + 1) % FLOOR_FRAMES;
    if (v->n_hist < FLOOR_FRAMES)
        v->n_hist++;
    float fl = level;
    for (int i = 1; i <= v->n_hist; i++) {
        const float h = v->floor_hist[(v->hist_pos - i + FLOOR_FRAMES) % FLOOR_FRAMES];
        fl = h < fl ? h : fl;
    }

    const float score = sigmoid((level - fl - 6.0f) / 1.5f) *
                        sigmoid((level - v->p.min_level_db) / 1.5f) *
                        sigmoid((0.5f - flat) / 0.06f);
    v->last_score = score;
    v->last_floor = fl;
    return score;
}

/* Queues [start, end) of the buffer as a completed utterance. */
static int emit(lfm2_vad *v, int64_t start, int64_t end, bool forced)
{
    if (start < v->buf_start)
        start = v->buf_start;
    if (end <= start)
        return 0;
    if (v->n_q == v->cap_q) {
        const int cap = v->cap_q ? 2 * v->cap_q : 8;
        struct segment *q = realloc(v->q, sizeof *q * (size_t)cap);
        if (!q)
            return lfm2_set_error("out of memory");
        v->q = q;
        v->cap_q = cap;
    }
    float *pcm = malloc(sizeof(float) * (size_t)(end - start));
    if (!pcm)
        return lfm2_set_error("out of memory");
    memcpy(pcm, v->buf + (start - v->buf_start), sizeof(float) * (size_t)(end - start));
    v->q[v->n_q++] = (struct segment){ start, end, forced, pcm };
    v->min_start = end;
    return 0;
}

static int push_level(lfm2_vad *v, float level)
{
    if (v->n_levels == v->levels_cap) {
        const int64_t cap = v->levels_cap ? 2 * v->levels_cap : 1024;
        float *l = realloc(v->levels, sizeof *l * (size_t)cap);
        if (!l)
            return lfm2_set_error("out of memory");
        v->levels = l;
        v->levels_cap = cap;
    }
    v->levels[v->n_levels++] = level;
    return 0;
}

/* Utterance edges never include digital silence (exact zeros: a muted source, a gap between
 * joined files). The front-end normalizes each mel bin by its mean and deviation over the
 * utterance, and the log of a zero frame is the guard's −16.6, far below any recorded noise:
 * a 200 ms pad of zeros shifts every frame's features, not only its own. */
static int64_t skip_leading_silence(const lfm2_vad *v, int64_t s, int64_t limit)
{
    while (s < limit && fabsf(v->buf[s - v->buf_start]) < DIGITAL_SILENCE)
        s++;
    return s;
}

/* Where the open utterance closes: pad_ms after its last speech frame (at most `limit`),
 * without the digital silence at its end (which may reach into the last speech frame: a frame
 * is measured over the 32 ms window before its end). */
static int64_t close_end(const lfm2_vad *v, int64_t limit)
{
    int64_t e = v->last_speech_end + ms_to_samples(v->p.pad_ms);
    if (e > limit)
        e = limit;
    while (e > v->start && e > v->buf_start &&
           fabsf(v->buf[e - 1 - v->buf_start]) < DIGITAL_SILENCE)
        e--;
    return e;
}

/* Runs the state machine for frame f (samples [f·FRAME, (f+1)·FRAME)). */
static int step(lfm2_vad *v, int64_t f)
{
    const int64_t end = (f + 1) * FRAME;
    float level;
    const bool is_speech = analyse(v, end, &level) >= v->p.threshold;
    const int min_speech = (v->p.min_speech_ms + 9) / 10, min_sil = (v->p.min_silence_ms + 9) / 10;
    const int64_t pad = ms_to_samples(v->p.pad_ms);

    if (!v->speech) {
        v->run = is_speech ? v->run + 1 : 0;
        if (v->run < min_speech)
            return 0;
        /* open: from the run's first frame, minus the pre-roll */
        int64_t s = (f + 1 - v->run) * FRAME - pad;
        if (s < v->min_start)
            s = v->min_start;
        if (s < v->buf_start)
            s = v->buf_start;
        s = skip_leading_silence(v, s, (f + 1 - v->run) * FRAME);
        v->speech = true;
        v->start = s;
        v->last_speech_end = end;
        v->silence = 0;
        v->n_levels = 0;
        v->levels_frame0 = s / FRAME;
        for (int64_t g = v->levels_frame0; g <= f; g++)   /* levels of the pre-roll are unknown: */
            if (push_level(v, g == f ? level : 0.0f))      /* never a cut point before speech */
                return -1;
        return 0;
    }

    if (push_level(v, level))
        return -1;
    if (is_speech) {
        v->last_speech_end = end;
        v->silence = 0;
    } else if (++v->silence >= min_sil) {
        const int64_t e = close_end(v, end);
        v->speech = false;
        v->run = 0;
        return emit(v, v->start, e, false);
    }

    if (end - v->start >= ms_to_samples(v->p.max_segment_ms)) {
        /* too long: cut at the quietest frame of the last 3 s and go on from there */
        int64_t best = v->n_levels - 1;
        const int64_t lo = v->n_levels > CUT_SEARCH_FRAMES ? v->n_levels - CUT_SEARCH_FRAMES : 1;
        for (int64_t i = v->n_levels - 1; i >= lo; i--)
            if (v->levels[i] < v->levels[best])
                best = i;
        int64_t cut = (v->levels_frame0 + best) * FRAME;
        if (cut <= v->start)
            cut = end;
        if (emit(v, v->start, cut, true))
            return -1;
        /* the rest continues as a new utterance (speech goes on) */
        const int64_t drop = cut / FRAME - v->levels_frame0;
        memmove(v->levels, v->levels + drop, sizeof(float) * (size_t)(v->n_levels - drop));
        v->n_levels -= drop;
        v->levels_frame0 += drop;
        v->start = cut;
    }
    return 0;
}

/* Drops buffered samples nothing can need any more. */
static void trim(lfm2_vad *v)
{
    int64_t keep_from = v->pos - keep_samples(v);
    if (v->speech && v->start < keep_from)
        keep_from = v->start;
    if (keep_from <= v->buf_start)
        return;
    const int64_t drop = keep_from - v->buf_start;
    memmove(v->buf, v->buf + drop, sizeof(float) * (size_t)(v->buf_len - drop));
    v->buf_len -= drop;
    v->buf_start = keep_from;
}

int lfm2_vad_push(lfm2_vad *v, const float *pcm, int64_t n)
{
    if (!v || n < 0 || (n > 0 && !pcm))
        return lfm2_set_error("VAD: bad arguments");
    free(v->popped);
    v->popped = NULL;
    int64_t done = 0;
    while (done < n) {
        /* at most up to the next frame boundary, so trimming keeps the buffer small */
        const int64_t to_frame = (v->n_frames + 1) * FRAME - v->pos;
        const int64_t m = n - done < to_frame ? n - done : to_frame;
        if (v->buf_len + m > v->buf_cap) {
            int64_t cap = v->buf_cap ? v->buf_cap : 16384;
            while (cap < v->buf_len + m)
                cap *= 2;
            float *b = realloc(v->buf, sizeof *b * (size_t)cap);
            if (!b)
                return lfm2_set_error("out of memory");
            v->buf = b;
            v->buf_cap = cap;
        }
        for (int64_t i = 0; i < m; i++) {
            const float x = pcm[done + i];
            v->buf[v->buf_len + i] = isfinite(x) ? (x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x) : 0.0f;
        }
        v->buf_len += m;
        v->pos += m;
        done += m;
        if (v->pos == (v->n_frames + 1) * FRAME) {
            if (step(v, v->n_frames))
                return -1;
            v->n_frames++;
            trim(v);
        }
    }
    return v->n_q;
}

int lfm2_vad_flush(lfm2_vad *v)
{
    if (!v)
        return lfm2_set_error("VAD: NULL");
    if (v->speech) {
        const int64_t e = close_end(v, v->pos);
        v->speech = false;
        v->run = 0;
        if (emit(v, v->start, e, false))
            return -1;
    }
    return v->n_q;
}

int lfm2_vad_pop(lfm2_vad *v, struct lfm2_vad_segment *seg)
{
    free(v->popped);
    v->popped = NULL;
    if (v->n_q == 0)
        return 0;
    const struct segment s = v->q[0];
    memmove(v->q, v->q + 1, sizeof *v->q * (size_t)(v->n_q - 1));
    v->n_q--;
    v->popped = s.pcm;
    seg->start = s.start;
    seg->end = s.end;
    seg->pcm = s.pcm;
    seg->n = s.end - s.start;
    seg->forced = s.forced;
    return 1;
}

int lfm2_vad_current(lfm2_vad *v, struct lfm2_vad_segment *seg)
{
    if (!v->speech)
        return 0;
    const int64_t s = v->start < v->buf_start ? v->buf_start : v->start;
    seg->start = s;
    seg->end = v->pos;
    seg->pcm = v->buf + (s - v->buf_start);
    seg->n = v->pos - s;
    seg->forced = false;
    return 1;
}

int lfm2_vad_pending(lfm2_vad *v, struct lfm2_vad_segment *seg)
{
    /* what step() and lfm2_vad_flush() will emit when the silence goes on */
    if (!v->speech || v->silence == 0 || v->last_speech_end + ms_to_samples(v->p.pad_ms) > v->pos)
        return 0;
    const int64_t e = close_end(v, v->pos);
    const int64_t s = v->start < v->buf_start ? v->buf_start : v->start;
    if (e <= s)
        return 0;
    seg->start = s;
    seg->end = e;
    seg->pcm = v->buf + (s - v->buf_start);
    seg->n = e - s;
    seg->forced = false;
    return 1;
}

int64_t lfm2_vad_buffered(const lfm2_vad *v)
{
    int64_t n = v->buf_len;
    for (int i = 0; i < v->n_q; i++)
        n += v->q[i].end - v->q[i].start;
    return n;
}

bool lfm2_vad_in_speech(const lfm2_vad *v)
{
    return v->speech;
}

int64_t lfm2_vad_position(const lfm2_vad *v)
{
    return v->pos;
}

void lfm2_vad_last_frame(const lfm2_vad *v, float *score, float *level_db, float *floor_db)
{
    if (score)
        *score = v->last_score;
    if (level_db)
        *level_db = v->last_level;
    if (floor_db)
        *floor_db = v->last_floor;
}
