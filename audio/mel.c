/* mel.c — the log-mel front-end of LFM2-Audio on libavutil's real FFT (av_tx), in double
 * precision, in two modes (see lfm2-audio.h):
 *
 *   y[0] = x[0], y[n] = x[n] − 0.97·x[n−1]                     pre-emphasis (real samples only)
 *   s = 256 zeros ‖ y ‖ 256 zeros                               centre padding
 *   frame t = s[160t, 160t+512) · w,  w = Hann(400) centred in 512 (56 zeros each side)
 *       OFFICIAL: symmetric  w[n] = 0.5 − 0.5·cos(2πn/399)     (torch hann_window periodic=False)
 *       LLAMACPP: periodic   w[n] = 0.5 − 0.5·cos(2πn/400)
 *   P_t[k] = |FFT_512(frame t)[k]|²,  k = 0…256
 *   M_t[m] = Σ_k fb[m][k]·P_t[k]          128 Slaney filters, area-normalized (librosa, float32)
 *   OFFICIAL: L = ln(M + 2^-24)      LLAMACPP: L = ln(max(M, 2^-24)), rounded to float32
 *   per bin m over the first N = n/160 frames: μ = mean, σ² = Σ(L − μ)²/(N − 1)
 *   OFFICIAL: (L − μ)/(σ + 1e-5)     LLAMACPP: (L − μ)/sqrt(σ² + 1e-5)
 *   frames t >= N (the last one) are 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/tx.h>

#include "audio-impl.h"

#define N_BINS (LFM2_AUDIO_N_FFT / 2 + 1)
#define LOG_GUARD 5.9604644775390625e-08   /* 2^-24 */

struct lfm2_mel {
    enum lfm2_audio_frontend mode;
    AVTXContext *tx;
    av_tx_fn fft;
    double window[LFM2_AUDIO_N_FFT];      /* zero-padded to the FFT length */
    float fb[LFM2_AUDIO_N_MEL * N_BINS];  /* filterbank [mel][bin] */
    int lo[LFM2_AUDIO_N_MEL], hi[LFM2_AUDIO_N_MEL];   /* non-zero bins [lo, hi) of each filter */
    double *in;                           /* FFT input (512) */
    AVComplexDouble *spec;                /* FFT output (257) */
    double *logmel;                       /* [mel][T] log values, grown on demand */
    size_t logmel_cap;
    double *sig;                          /* padded pre-emphasized signal */
    size_t sig_cap;
};

int64_t lfm2_audio_n_frames(int64_t n_samples)
{
    return n_samples <= 0 ? 0 : n_samples / LFM2_AUDIO_HOP + 1;
}

int64_t lfm2_audio_n_tokens_for_frames(int64_t n_frames)
{
    int64_t t = n_frames;
    for (int i = 0; i < 3; i++)   /* three stride-2 stages, each ceil(n/2) */
        t = (t + 1) / 2;
    return t;
}

int64_t lfm2_audio_n_tokens(int64_t n_samples)
{
    return lfm2_audio_n_tokens_for_frames(lfm2_audio_n_frames(n_samples));
}

int lfm2_audio_frontend_from_name(const char *name)
{
    if (name && !strcmp(name, "official"))
        return LFM2_AUDIO_FRONTEND_OFFICIAL;
    if (name && !strcmp(name, "llamacpp"))
        return LFM2_AUDIO_FRONTEND_LLAMACPP;
    return -1;
}

const char *lfm2_audio_frontend_name(enum lfm2_audio_frontend mode)
{
    return mode == LFM2_AUDIO_FRONTEND_LLAMACPP ? "llamacpp" : "official";
}

/* librosa's Slaney mel scale (htk=False): linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double f)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}

static double mel_to_hz(double m)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
}

/* librosa.filters.mel(sr=16000, n_fft=512, n_mels=128, fmin=0, fmax=8000, norm="slaney"):
 * triangles between consecutive points of 130 mel-spaced frequencies, scaled by
 * 2/(f[m+2] − f[m]) so each has unit area; computed in double, stored float32. */
static void make_filterbank(lfm2_mel *m)
{
    double f[LFM2_AUDIO_N_MEL + 2];
    const double mel_max = hz_to_mel(LFM2_AUDIO_SAMPLE_RATE / 2.0);
    for (int i = 0; i < LFM2_AUDIO_N_MEL + 2; i++)
        f[i] = mel_to_hz(mel_max * i / (LFM2_AUDIO_N_MEL + 1));
    for (int i = 0; i < LFM2_AUDIO_N_MEL; i++) {
        const double enorm = 2.0 / (f[i + 2] - f[i]);
        m->lo[i] = N_BINS;
        m->hi[i] = 0;
        for (int k = 0; k < N_BINS; k++) {
            const double fk = (double)k * LFM2_AUDIO_SAMPLE_RATE / LFM2_AUDIO_N_FFT;
            const double lower = (fk - f[i]) / (f[i + 1] - f[i]);
            const double upper = (f[i + 2] - fk) / (f[i + 2] - f[i + 1]);
            double w = lower < upper ? lower : upper;
            w = w > 0.0 ? w * enorm : 0.0;
            m->fb[i * N_BINS + k] = (float)w;
            if (w > 0.0) {
                if (k < m->lo[i])
                    m->lo[i] = k;
                m->hi[i] = k + 1;
            }
        }
        if (m->hi[i] < m->lo[i])
            m->lo[i] = m->hi[i] = 0;
    }
}

lfm2_mel *lfm2_mel_new(enum lfm2_audio_frontend mode)
{
    lfm2_mel *m = calloc(1, sizeof *m);
    if (!m)
        return lfm2_set_error("out of memory"), NULL;
    m->mode = mode == LFM2_AUDIO_FRONTEND_LLAMACPP ? mode : LFM2_AUDIO_FRONTEND_OFFICIAL;
    const double scale = 1.0;
    int r = av_tx_init(&m->tx, &m->fft, AV_TX_DOUBLE_RDFT, 0, LFM2_AUDIO_N_FFT, &scale, 0);
    m->in = lfm2_alloc_aligned(sizeof(double) * (LFM2_AUDIO_N_FFT + 16));
    m->spec = lfm2_alloc_aligned(sizeof(AVComplexDouble) * (N_BINS + 16));
    if (r < 0 || !m->in || !m->spec) {
        lfm2_mel_free(m);
        lfm2_set_error("cannot set up the %d-point FFT (av_tx_init: %d)", LFM2_AUDIO_N_FFT, r);
        return NULL;
    }
    /* window of 400 centred in the 512-point frame */
    const int W = LFM2_AUDIO_WINDOW, off = (LFM2_AUDIO_N_FFT - W) / 2;
    const double den = m->mode == LFM2_AUDIO_FRONTEND_LLAMACPP ? W : W - 1;
    for (int i = 0; i < W; i++)
        m->window[off + i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / den);
    make_filterbank(m);
    return m;
}

void lfm2_mel_free(lfm2_mel *m)
{
    if (!m)
        return;
    av_tx_uninit(&m->tx);
    lfm2_free_aligned(m->in);
    lfm2_free_aligned(m->spec);
    free(m->logmel);
    free(m->sig);
    free(m);
}

const float *lfm2_mel_filterbank(const lfm2_mel *m)
{
    return m->fb;
}

static int grow_d(double **buf, size_t *cap, size_t n)
{
    if (*cap >= n)
        return 0;
    double *p = realloc(*buf, n * sizeof *p);
    if (!p)
        return lfm2_set_error("out of memory (log-mel of %zu values)", n);
    *buf = p;
    *cap = n;
    return 0;
}

int64_t lfm2_mel_compute(lfm2_mel *m, const float *pcm, int64_t n, float *out, int64_t ld)
{
    if (!m || !pcm || !out || n <= 0)
        return lfm2_set_error("log-mel: %s", n <= 0 ? "no audio samples" : "NULL argument");
    const int64_t T = lfm2_audio_n_frames(n), N = n / LFM2_AUDIO_HOP;
    if (ld < T)
        return lfm2_set_error("log-mel: row stride %lld < %lld frames", (long long)ld, (long long)T);
    const int64_t pad = LFM2_AUDIO_N_FFT / 2, len = n + 2 * pad;
    size_t n_log;
    if (!lfm2_mul_ok((size_t)T, LFM2_AUDIO_N_MEL, &n_log) || grow_d(&m->sig, &m->sig_cap, (size_t)len) ||
        grow_d(&m->logmel, &m->logmel_cap, n_log))
        return -1;

    /* pre-emphasis on the real samples, zeros around them */
    double *s = m->sig;
    memset(s, 0, sizeof(double) * (size_t)pad);
    memset(s + pad + n, 0, sizeof(double) * (size_t)pad);
    double prev = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double x = isfinite(pcm[i]) ? pcm[i] : 0.0;   /* NaN/Inf would poison the stats */
        s[pad + i] = i ? x - 0.97 * prev : x;
        prev = x;
    }

    const bool ggml = m->mode == LFM2_AUDIO_FRONTEND_LLAMACPP;
    for (int64_t t = 0; t < T; t++) {
        const double *fr = s + t * LFM2_AUDIO_HOP;
        for (int j = 0; j < LFM2_AUDIO_N_FFT; j++)
            m->in[j] = fr[j] * m->window[j];
        m->fft(m->tx, m->spec, m->in, sizeof(double));
        double pw[N_BINS];
        for (int k = 0; k < N_BINS; k++)
            pw[k] = m->spec[k].re * m->spec[k].re + m->spec[k].im * m->spec[k].im;
        for (int b = 0; b < LFM2_AUDIO_N_MEL; b++) {
            double sum = 0.0;
            const float *f = m->fb + b * N_BINS;
            for (int k = m->lo[b]; k < m->hi[b]; k++)
                sum += (double)f[k] * pw[k];
            double v;
            if (ggml)
                v = (double)(float)log(sum > LOG_GUARD ? sum : LOG_GUARD);
            else
                v = log(sum + LOG_GUARD);
            m->logmel[b * T + t] = v;
        }
    }

    /* per-bin normalization over the first N frames; with fewer than 2 there is no variance
     * (NeMo: σ NaN → 0, every frame 0; llama.cpp asserts), so the output is all zero */
    for (int b = 0; b < LFM2_AUDIO_N_MEL; b++) {
        const double *L = m->logmel + b * T;
        float *o = out + b * ld;
        if (N < 2) {
            memset(o, 0, sizeof(float) * (size_t)T);
            continue;
        }
        double mean = 0.0;
        for (int64_t t = 0; t < N; t++)
            mean += L[t];
        mean /= (double)N;
        double var = 0.0;
        for (int64_t t = 0; t < N; t++)
            var += (L[t] - mean) * (L[t] - mean);
        var /= (double)(N - 1);
        const double den = ggml ? sqrt(var + 1e-5) : sqrt(var) + 1e-5;
        for (int64_t t = 0; t < N; t++)
            o[t] = (float)((L[t] - mean) / den);
        for (int64_t t = N; t < T; t++)
            o[t] = 0.0f;
    }
    return T;
}
