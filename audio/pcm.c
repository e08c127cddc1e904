/* pcm.c — float samples to 16-bit PCM and WAV files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tts-impl.h"

void lfm2_audio_to_s16(const float *x, int16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        v = isnan(v) ? 0.0f : v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
        y[i] = (int16_t)(v * 32767.0f);   /* truncation toward 0, as llama.cpp */
    }
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

int lfm2_audio_write_wav(const char *path, const float *x, size_t n)
{
    if (n > (0xffffffffu - 36) / 2)
        return lfm2_set_error("%s: %zu samples do not fit a WAV file", path, n);
    FILE *f = fopen(path, "wb");
    if (!f)
        return lfm2_set_error("%s: cannot create: %s", path, strerror(errno));
    uint8_t h[44];
    const uint32_t data = (uint32_t)(n * 2);
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);                              /* fmt chunk size */
    put16(h + 20, 1);                               /* PCM */
    put16(h + 22, 1);                               /* mono */
    put32(h + 24, LFM2_AUDIO_SAMPLE_RATE);
    put32(h + 28, LFM2_AUDIO_SAMPLE_RATE * 2);      /* bytes per second */
    put16(h + 32, 2);                               /* block align */
    put16(h + 34, 16);                              /* bits per sample */
    memcpy(h + 36, "data", 4);
    put32(h + 40, data);
    bool ok = fwrite(h, 1, sizeof h, f) == sizeof h;
    int16_t s[1024];
    uint8_t b[2048];
    for (size_t i = 0; ok && i < n; i += 1024) {
        const size_t m = n - i < 1024 ? n - i : 1024;
        lfm2_audio_to_s16(x + i, s, m);
        for (size_t j = 0; j < m; j++)
            put16(b + 2 * j, (uint16_t)s[j]);
        ok = fwrite(b, 2, m, f) == m;
    }
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        return lfm2_set_error("%s: write failed: %s", path, strerror(errno));
    return 0;
}
