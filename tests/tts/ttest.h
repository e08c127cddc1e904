/* ttest.h — helpers shared by the speech-output tests (tests/data/tts: the shared TTS fixture). */
#ifndef TTEST_H
#define TTEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-test.h"
#include "lfm2-tts.h"

/* $LFM2_TEST_DATA/tts/<name> */
static inline const char *tt_data(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/tts/%s", lfm2_test_data_dir(), name);
    return b;
}

/* A whole file (exits when it cannot be read: the data is part of the tree). */
static inline void *tt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)(n > 0 ? n : 1));
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static inline float *tt_floats(const char *name, size_t *n)
{
    size_t len;
    float *f = tt_read(tt_data(name), &len);
    *n = len / sizeof(float);
    return f;
}

static inline int32_t *tt_ints(const char *name, size_t *n)
{
    size_t len;
    int32_t *p = tt_read(tt_data(name), &len);
    *n = len / sizeof(int32_t);
    return p;
}

static inline double tt_maxdiff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d;   /* NaN propagates */
    }
    return m;
}

/* The loaded pair of the fixture, float32 activations unless ggml_rounding. */
static inline lfm2_vocoder *tt_vocoder(bool ggml_rounding)
{
    struct lfm2_vocoder_params p = lfm2_vocoder_default_params();
    p.ggml_rounding = ggml_rounding;
    lfm2_vocoder *v = lfm2_vocoder_load(tt_data("vocoder-tiny-dev.gguf"), p);
    if (!v) {
        fprintf(stderr, "vocoder: %s\n", lfm2_last_error());
        exit(1);
    }
    return v;
}

static inline lfm2_audio_tokenizer *tt_tokenizer(bool ggml_rounding)
{
    struct lfm2_audio_tokenizer_params p = lfm2_audio_tokenizer_default_params();
    p.ggml_rounding = ggml_rounding;
    lfm2_audio_tokenizer *t = lfm2_audio_tokenizer_load(tt_data("tokenizer-tiny-dev.gguf"), p);
    if (!t) {
        fprintf(stderr, "tokenizer: %s\n", lfm2_last_error());
        exit(1);
    }
    return t;
}

#endif
