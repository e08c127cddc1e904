/* istft.c — the inverse STFT of the LFM2.5-Audio detokenizer, streaming.
 *
 * Whole utterance ("same" padding, as torch.istft / Vocos): for spectra X_0 … X_{T−1}
 *     x_t = irfft_1280(X_t) · w          w[n] = 0.5 − 0.5·cos(2πn/1280)   (periodic Hann)
 *     y   = Σ_t x_t shifted by 320·t     env = Σ_t w² shifted likewise
 *     out = (y / env)[480 : 480 + 320·T]
 * Streaming: an accumulator of n_fft samples holds the overlap; after each spectrum its first
 * hop samples have every frame that overlaps them, so they are final: emit ov/ws there and
 * shift by hop. The first 480 samples are dropped once; flush emits the 480 after the last
 * hop, which completes the whole-utterance output (1920 per code frame). */
#include <libavutil/tx.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tts-impl.h"

#define N_FFT LFM2_AUDIO_N_FFT
#define HOP LFM2_AUDIO_HOP
#define N_BINS (N_FFT / 2 + 1)

struct lfm2_istft {
    AVTXContext *tx;
    av_tx_fn fn;
    AVComplexFloat *X;   /* [N_BINS] */
    float *x;            /* [N_FFT] one inverse transform */
    float *w, *w2;       /* window and its square */
    float *ov, *ws;      /* [N_FFT] overlap-add of x·w and of w² */
    int drop;            /* samples still to drop at the start */
    bool pushed;
};

lfm2_istft *lfm2_istft_new(void)
{
    lfm2_istft *s = calloc(1, sizeof *s);
    if (!s) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    const float scale = 1.0f / N_FFT;   /* irfft's 1/N */
    if (av_tx_init(&s->tx, &s->fn, AV_TX_FLOAT_RDFT, 1, N_FFT, &scale, 0) < 0) {
        lfm2_set_error("ISTFT: libavutil has no inverse real FFT of %d points", N_FFT);
        goto fail;
    }
    if (!(s->X = lfm2_alloc_aligned(N_BINS * sizeof *s->X)) ||
        !(s->x = lfm2_alloc_aligned(N_FFT * sizeof(float))) ||
        !(s->w = lfm2_alloc_aligned(N_FFT * sizeof(float))) ||
        !(s->w2 = lfm2_alloc_aligned(N_FFT * sizeof(float))) ||
        !(s->ov = lfm2_alloc_aligned(N_FFT * sizeof(float))) ||
        !(s->ws = lfm2_alloc_aligned(N_FFT * sizeof(float))))
        goto fail;
    for (int n = 0; n < N_FFT; n++) {
        const double w = 0.5 - 0.5 * cos(2.0 * M_PI * n / N_FFT);
        s->w[n] = (float)w;
        s->w2[n] = (float)(w * w);
    }
    lfm2_istft_reset(s);
    return s;
fail:
    lfm2_istft_free(s);
    return NULL;
}

void lfm2_istft_free(lfm2_istft *s)
{
    if (!s)
        return;
    av_tx_uninit(&s->tx);
    void *p[] = { s->X, s->x, s->w, s->w2, s->ov, s->ws };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        lfm2_free_aligned(p[i]);
    free(s);
}

void lfm2_istft_reset(lfm2_istft *s)
{
    memset(s->ov, 0, N_FFT * sizeof(float));
    memset(s->ws, 0, N_FFT * sizeof(float));
    s->drop = LFM2_AUDIO_TRIM;
    s->pushed = false;
}

/* Writes samples [0, n) of the accumulator (ov/ws; plain ov where the envelope vanishes),
 * skipping what is still to be dropped. */
static int emit(lfm2_istft *s, int n, float *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (s->drop > 0) {
            s->drop--;
            continue;
        }
        out[m++] = s->ws[i] > 1e-8f ? s->ov[i] / s->ws[i] : s->ov[i];
    }
    return m;
}

int lfm2_istft_push(lfm2_istft *s, const float *log_mag, const float *phase, float *out)
{
    /* X = exp(log|X|)·e^{iφ}; the imaginary parts at DC and Nyquist do not exist in a real
     * signal's spectrum (irfft ignores them) */
    for (int b = 0; b < N_BINS; b++) {
        const float m = expf(log_mag[b]);
        s->X[b].re = m * cosf(phase[b]);
        s->X[b].im = m * sinf(phase[b]);
    }
    s->X[0].im = 0.0f;
    s->X[N_BINS - 1].im = 0.0f;
    s->fn(s->tx, s->x, s->X, sizeof(float));

    for (int n = 0; n < N_FFT; n++) {
        s->ov[n] += s->x[n] * s->w[n];
        s->ws[n] += s->w2[n];
    }
    const int m = emit(s, HOP, out);
    memmove(s->ov, s->ov + HOP, (N_FFT - HOP) * sizeof(float));
    memmove(s->ws, s->ws + HOP, (N_FFT - HOP) * sizeof(float));
    memset(s->ov + N_FFT - HOP, 0, HOP * sizeof(float));
    memset(s->ws + N_FFT - HOP, 0, HOP * sizeof(float));
    s->pushed = true;
    return m;
}

int lfm2_istft_flush(lfm2_istft *s, float *out)
{
    const int m = s->pushed ? emit(s, LFM2_AUDIO_TRIM, out) : 0;
    lfm2_istft_reset(s);
    return m;
}
