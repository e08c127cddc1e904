/* test-istft — the ISTFT against computations written here in float64:
 *   perfect reconstruction: a known signal's "same"-padded STFT (direct DFT) gives the signal
 *     back, streamed spectrum by spectrum, with the counts of the stream;
 *   one spectrum: the flushed samples are the direct inverse DFT divided by the window (the
 *     imaginary parts at DC and Nyquist ignored, the 1/N scaling);
 *   and PCM16 conversion (truncation, clamping, NaN). */
#include "ttest.h"

#define N 1280
#define HOP 320
#define BINS 641

static double hann(int n)
{
    return 0.5 - 0.5 * cos(2.0 * M_PI * n / N);
}

static double g_cos[N], g_sin[N];

static uint32_t g_rng = 12345;
static double uniform(void)   /* [−1, 1) */
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (g_rng >> 8) * (2.0 / 16777216.0) - 1.0;
}

static void test_reconstruction(int T)
{
    const int len = HOP * T, padded = len + 2 * 480;
    double *x = calloc((size_t)padded, sizeof *x);
    float *mag = malloc(BINS * sizeof *mag), *ph = malloc(BINS * sizeof *ph);
    float *y = calloc((size_t)len + N, sizeof *y);
    for (int i = 0; i < len; i++)
        x[480 + i] = 0.5 * uniform() + 0.3 * sin(0.01 * i);
    lfm2_istft *s = lfm2_istft_new();
    CHECK(s, "istft: %s", lfm2_last_error());
    int m = 0;
    for (int t = 0; t < T && s; t++) {
        /* X_t[b] = Σ_n x[320t + n]·w[n]·e^{−2πi·b·n/N} */
        for (int b = 0; b < BINS; b++) {
            double re = 0, im = 0;
            for (int n = 0; n < N; n++) {
                const double v = x[HOP * t + n] * hann(n);
                const int a = (int)((long)b * n % N);   /* angle 2π·a/N */
                re += v * g_cos[a];
                im -= v * g_sin[a];
            }
            mag[b] = (float)log(hypot(re, im));
            ph[b] = (float)atan2(im, re);
        }
        const int k = lfm2_istft_push(s, mag, ph, y + m);
        const int expect = t == 0 ? 0 : t == 1 ? 160 : 320;   /* the first 480 are dropped */
        CHECK_INT(k, expect, "samples after one spectrum");
        m += k;
    }
    m += s ? lfm2_istft_flush(s, y + m) : 0;
    CHECK_INT(m, len, "samples of the reconstruction");
    double d = 0;
    for (int i = 0; i < len && i < m; i++)
        d = fmax(d, fabs(y[i] - x[480 + i]));
    printf("perfect reconstruction of %d samples from %d spectra: max |d| %.3g\n", len, T, d);
    CHECK(d < 2e-5, "reconstruction max |d| %.3g", d);
    lfm2_istft_free(s);
    free(x);
    free(mag);
    free(ph);
    free(y);
}

/* One spectrum alone: the flush gives samples 320 … 799 of irfft(X)·w / w². */
static void test_one_spectrum(void)
{
    float mag[BINS], ph[BINS], y[N];
    for (int b = 0; b < BINS; b++) {
        mag[b] = (float)(1.0 + 0.5 * uniform());
        ph[b] = (float)(3.0 * uniform());   /* also at DC and Nyquist, which must be ignored */
    }
    lfm2_istft *s = lfm2_istft_new();
    CHECK(s && lfm2_istft_push(s, mag, ph, y) == 0, "one push emits nothing (dropped)");
    const int k = s ? lfm2_istft_flush(s, y) : 0;
    CHECK_INT(k, 320, "flush after one spectrum (800 − 480)");
    double d = 0, peak = 0;
    for (int i = 0; i < k; i++) {
        const int n = 480 + i;   /* output sample i is stream position 480 + i */
        /* irfft: x[n] = (1/N)(X_0 + (−1)^n X_{N/2} + 2 Σ_{b=1}^{N/2−1} Re(X_b e^{2πibn/N})) */
        double v = exp(mag[0]) * cos(ph[0]) + exp(mag[BINS - 1]) * cos(ph[BINS - 1]) * (n & 1 ? -1 : 1);
        for (int b = 1; b < BINS - 1; b++)
            v += 2.0 * exp(mag[b]) * cos(ph[b] + 2.0 * M_PI * b * n / N);
        v /= N;
        const double expect = v * hann(n) / (hann(n) * hann(n));
        d = fmax(d, fabs(y[i] - expect));
        peak = fmax(peak, fabs(expect));
    }
    printf("one spectrum: max |d| %.3g (peak %.3g)\n", d, peak);
    CHECK(d < 1e-5 * fmax(1.0, peak), "direct inverse DFT max |d| %.3g", d);
    lfm2_istft_free(s);
}

static void test_pcm(void)
{
    const float x[] = { 0.0f, 1.0f, -1.0f, 1.5f, -7.0f, 0.5f, -0.5f, 1e-5f, NAN, INFINITY, -INFINITY, 0.99999f };
    const int16_t expect[] = { 0, 32767, -32767, 32767, -32767, 16383, -16383, 0, 0, 32767, -32767, 32766 };
    int16_t y[12];
    lfm2_audio_to_s16(x, y, 12);
    for (int i = 0; i < 12; i++)
        CHECK(y[i] == expect[i], "pcm[%d] = %d, expected %d", i, y[i], expect[i]);
}

int main(void)
{
    for (int i = 0; i < N; i++) {
        g_cos[i] = cos(2.0 * M_PI * i / N);
        g_sin[i] = sin(2.0 * M_PI * i / N);
    }
    test_reconstruction(2);
    test_reconstruction(24);
    test_one_spectrum();
    test_pcm();
    return lfm2_test_status();
}
