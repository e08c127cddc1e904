/* test-frontend.c — the OFFICIAL log-mel front-end (NeMo AudioToMelSpectrogramPreprocessor in
 * eval mode) against an independent float64 computation written here from NeMo's and
 * librosa's formulas: a direct DFT (no FFT), librosa's Slaney filterbank in its own "ramps"
 * form, pre-emphasis 0.97, symmetric Hann(400) centred in 512, centre zero padding, power,
 * ln(mel + 2^-24), per-bin (x − μ)/(σ + 1e-5) with the unbiased σ over the first L/160 frames,
 * the last frame zero. Every fixture clip plus edge lengths and quiet input, to 1e-4 abs.
 * Also: the filterbank itself, the frame counts, and that the two modes differ as documented. */
#include "atest.h"
#include "lfm2-audio.h"

#define NFFT 512
#define NB 257
#define NMEL 128

static double fb_ref[NMEL][NB];

/* librosa.filters.mel(sr=16000, n_fft=512, n_mels=128, norm="slaney"), float64 */
static void ref_filterbank(void)
{
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    const double max_mel = min_log_mel + log(8000.0 / min_log_hz) / logstep;
    double mel_f[NMEL + 2], fdiff[NMEL + 1];
    for (int i = 0; i < NMEL + 2; i++) {
        const double m = max_mel * i / (NMEL + 1);
        mel_f[i] = m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
    }
    for (int i = 0; i < NMEL + 1; i++)
        fdiff[i] = mel_f[i + 1] - mel_f[i];
    for (int i = 0; i < NMEL; i++)
        for (int k = 0; k < NB; k++) {
            const double fft_f = 8000.0 * k / (NB - 1);
            const double lower = -(mel_f[i] - fft_f) / fdiff[i];
            const double upper = (mel_f[i + 2] - fft_f) / fdiff[i + 1];
            double w = lower < upper ? lower : upper;
            w = w > 0 ? w : 0;
            fb_ref[i][k] = (float)(w * 2.0 / (mel_f[i + 2] - mel_f[i]));   /* stored float32 */
        }
}

/* The float64 reference: [NMEL][T] into out. */
static int64_t ref_mel(const float *x, int64_t L, double *out)
{
    static double cs[NFFT], sn[NFFT], win[NFFT];
    static int init;
    if (!init) {
        for (int i = 0; i < NFFT; i++) {
            cs[i] = cos(2.0 * M_PI * i / NFFT);
            sn[i] = sin(2.0 * M_PI * i / NFFT);
            win[i] = 0.0;
        }
        for (int i = 0; i < 400; i++)
            win[56 + i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / 399.0);
        init = 1;
    }
    const int64_t T = L / 160 + 1, N = L / 160;
    double *s = calloc((size_t)(L + NFFT), sizeof *s);
    for (int64_t i = 0; i < L; i++)
        s[256 + i] = i ? (double)x[i] - 0.97 * (double)x[i - 1] : (double)x[0];
    double fr[NFFT], pw[NB];
    for (int64_t t = 0; t < T; t++) {
        for (int j = 0; j < NFFT; j++)
            fr[j] = s[t * 160 + j] * win[j];
        for (int k = 0; k < NB; k++) {
            double re = 0, im = 0;
            for (int j = 0; j < NFFT; j++) {
                const int idx = (int)(((int64_t)k * j) % NFFT);
                re += fr[j] * cs[idx];
                im -= fr[j] * sn[idx];
            }
            const double mag = sqrt(re * re + im * im);
            pw[k] = mag * mag;
        }
        for (int m = 0; m < NMEL; m++) {
            double acc = 0;
            for (int k = 0; k < NB; k++)
                acc += fb_ref[m][k] * pw[k];
            out[m * T + t] = log(acc + pow(2.0, -24));
        }
    }
    for (int m = 0; m < NMEL; m++) {
        double *r = out + m * T;
        if (N < 2) {   /* NeMo: σ = NaN → 0, so (x − μ)/1e-5 = 0 for the one frame; masked after */
            for (int64_t t = 0; t < T; t++)
                r[t] = 0.0;
            continue;
        }
        double mu = 0, var = 0;
        for (int64_t t = 0; t < N; t++)
            mu += r[t];
        mu /= N;
        for (int64_t t = 0; t < N; t++)
            var += (r[t] - mu) * (r[t] - mu);
        const double sd = sqrt(var / (N - 1));
        for (int64_t t = 0; t < T; t++)
            r[t] = t < N ? (r[t] - mu) / (sd + 1e-5) : 0.0;
    }
    free(s);
    return T;
}

static void check_signal(lfm2_mel *m, const char *what, const float *x, int64_t L)
{
    const int64_t T = lfm2_audio_n_frames(L);
    CHECK_INT(T, L / 160 + 1, "frames");
    double *ref = malloc(sizeof(double) * (size_t)(NMEL * T));
    float *got = malloc(sizeof(float) * (size_t)(NMEL * (T + 3)));
    float *reff = malloc(sizeof(float) * (size_t)(NMEL * T));
    ref_mel(x, L, ref);
    for (int64_t i = 0; i < NMEL * T; i++)
        reff[i] = (float)ref[i];
    CHECK(lfm2_mel_compute(m, x, L, got, T + 3) == T, "%s: %s", what, lfm2_last_error());
    char label[96];
    snprintf(label, sizeof label, "official vs float64: %s", what);
    at_compare(label, got, T + 3, reff, T, NMEL, T, 1e-4);
    free(ref);
    free(got);
    free(reff);
}

static const char *const clips[] = { "sine440_1s", "chirp_2.5s", "noise_3s", "silence_0.5s",
                                     "speech_4s", "speech_long_35s" };

int main(void)
{
    ref_filterbank();
    lfm2_mel *off = lfm2_mel_new(LFM2_AUDIO_FRONTEND_OFFICIAL);
    lfm2_mel *ggml = lfm2_mel_new(LFM2_AUDIO_FRONTEND_LLAMACPP);
    CHECK(off && ggml, "%s", lfm2_last_error());
    if (!off || !ggml)
        return lfm2_test_status();

    /* the filterbank (both modes use librosa's) */
    const float *fb = lfm2_mel_filterbank(off);
    double fb_max = 0;
    for (int m = 0; m < NMEL; m++)
        for (int k = 0; k < NB; k++)
            fb_max = fmax(fb_max, fabs(fb[m * NB + k] - fb_ref[m][k]) / 0.05);
    CHECK(fb_max < 1e-6, "filterbank differs from librosa's by %.3g (relative to 0.05)", fb_max);
    CHECK(memcmp(fb, lfm2_mel_filterbank(ggml), sizeof(float) * NMEL * NB) == 0, "modes' filterbanks differ");

    /* counts */
    CHECK_INT(lfm2_audio_n_frames(64000), 401, "4 s frames");
    CHECK_INT(lfm2_audio_n_tokens(64000), 51, "4 s tokens");
    CHECK_INT(lfm2_audio_n_tokens(560101), 438, "35 s tokens");
    CHECK_INT(lfm2_audio_n_tokens(1), 1, "1 sample");
    CHECK_INT(lfm2_audio_n_tokens(0), 0, "0 samples");
    CHECK_INT(lfm2_audio_n_tokens_for_frames(9), 2, "9 frames");

    for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) {
        float *pcm;
        int64_t n;
        CHECK(lfm2_audio_load_file(at_data("wav/%s.wav", clips[i]), &pcm, &n, NULL) == 0, "%s", lfm2_last_error());
        check_signal(off, clips[i], pcm, n);
        if (!strcmp(clips[i], "speech_4s")) {
            /* the modes differ by what the README's NeMo column says (~0.3 on speech) */
            struct npy mtmd;
            float *g = malloc(sizeof(float) * NMEL * 401);
            CHECK(npy_load(at_data("ref/speech_4s/mel.npy"), &mtmd), "mel.npy");
            lfm2_mel_compute(off, pcm, n, g, 401);
            double d = 0;
            for (int64_t j = 0; j < mtmd.n; j++)
                d = fmax(d, fabs(g[j] - mtmd.data[j]));
            printf("  official vs llama.cpp's mel on speech_4s: max |Δ| %.3f (README: 0.314)\n", d);
            CHECK(d > 0.1 && d < 1.0, "official mode should differ from llama.cpp's by ~0.3, got %.3g", d);
            free(g);
            free(mtmd.data);
        }
        free(pcm);
    }

    /* edge lengths, quiet input, a ragged length, non-finite samples */
    float *x = malloc(sizeof(float) * 20000);
    uint64_t st = 12345;
    for (int i = 0; i < 20000; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = 1e-4f * ((float)(st >> 40) / (float)(1 << 24) - 0.5f);   /* quiet noise, -86 dBFS */
    }
    check_signal(off, "quiet noise 1e-4", x, 16001);
    check_signal(off, "319 samples (one stats frame: zeros)", x, 319);
    check_signal(off, "320 samples (two stats frames)", x, 320);
    check_signal(off, "100 samples (no stats frame)", x, 100);
    check_signal(off, "1 sample", x, 1);
    for (int i = 0; i < 3200; i++)
        x[i] = 0.9f * sinf(0.05f * i) + (i % 7 == 0 ? 0.1f : 0.0f);
    check_signal(off, "tone + pulses", x, 3200);
    float *y = malloc(sizeof(float) * 3200), *o1 = malloc(sizeof(float) * NMEL * 21), *o2 = malloc(sizeof(float) * NMEL * 21);
    memcpy(y, x, sizeof(float) * 3200);
    y[100] = NAN;
    y[2000] = INFINITY;
    x[100] = 0.0f;
    x[2000] = 0.0f;
    CHECK(lfm2_mel_compute(off, y, 3200, o1, 21) == 21 && lfm2_mel_compute(off, x, 3200, o2, 21) == 21,
          "%s", lfm2_last_error());
    CHECK(memcmp(o1, o2, sizeof(float) * NMEL * 21) == 0, "NaN/Inf samples are not read as 0");
    CHECK(lfm2_mel_compute(off, x, 0, o1, 21) < 0 && strstr(lfm2_last_error(), "no audio"),
          "0 samples: %s", lfm2_last_error());
    CHECK(lfm2_mel_compute(off, x, 3200, o1, 20) < 0, "too small a row stride accepted");
    free(x);
    free(y);
    free(o1);
    free(o2);
    lfm2_mel_free(off);
    lfm2_mel_free(ggml);
    return lfm2_test_status();
}
