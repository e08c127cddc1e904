/* atest.h — helpers shared by the audio tests: test-data paths, .npy reading (float32
 * little-endian, C order, as the fixtures are written), comparisons. */
#ifndef ATEST_H
#define ATEST_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-test.h"

/* $LFM2_TEST_DATA/audio/<rel> (a small ring of static buffers). */
static inline const char *at_data(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *at_data(const char *fmt, ...)
{
    static char buf[8][1024];
    static int k;
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/audio/%s", lfm2_test_data_dir(), rel);
    return b;
}

/* A file in the test's temporary directory (tmpdir, set by the test's main). */
static char *tmpdir;
static inline const char *tmp(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 1024, "%s/%s", tmpdir, name);
    return b;
}

static inline void *at_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)(n > 0 ? n : 1));
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* A float32 .npy: returns the data (malloc'd) and its shape (up to 4 dims), or NULL. */
struct npy {
    float *data;
    int n_dims;
    int64_t shape[4];
    int64_t n;
};

static inline bool npy_load(const char *path, struct npy *out)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    uint8_t *b = at_read(path, &len);
    if (!b || len < 12 || memcmp(b, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        free(b);
        return false;
    }
    const size_t hl = b[6] == 1 ? (size_t)(b[8] | b[9] << 8) : (size_t)(b[8] | b[9] << 8 | b[10] << 16 | b[11] << 24);
    const size_t off = b[6] == 1 ? 10 : 12;
    char hdr[1024];
    const size_t hn = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, b + off, hn);
    hdr[hn] = '\0';
    if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True")) {
        fprintf(stderr, "%s: not little-endian float32 in C order: %s\n", path, hdr);
        free(b);
        return false;
    }
    const char *sp = strstr(hdr, "'shape': (");
    if (!sp) {
        free(b);
        return false;
    }
    sp += 10;
    out->n = 1;
    while (*sp && *sp != ')' && out->n_dims < 4) {
        char *end;
        const long long v = strtoll(sp, &end, 10);
        if (end == sp)
            break;
        out->shape[out->n_dims++] = v;
        out->n *= v;
        sp = end;
        while (*sp == ',' || *sp == ' ')
            sp++;
    }
    const size_t data_off = off + hl;
    if (len < data_off + (size_t)out->n * 4) {
        fprintf(stderr, "%s: truncated\n", path);
        free(b);
        return false;
    }
    out->data = malloc((size_t)out->n * 4 + 4);
    memcpy(out->data, b + data_off, (size_t)out->n * 4);
    free(b);
    return true;
}

/* max |got − ref| over n values (non-finite got counts as infinite); prints a line. */
static inline double at_compare(const char *what, const float *got, int64_t ldg, const float *ref,
                                int64_t ldr, int64_t rows, int64_t cols, double tol)
{
    double maxd = 0.0, sum = 0.0;
    int64_t at_r = 0, at_c = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const double g = got[r * ldg + c], e = ref[r * ldr + c];
            const double d = isfinite(g) ? fabs(g - e) : INFINITY;
            sum += d;
            if (d > maxd || (d != d)) {
                maxd = d;
                at_r = r;
                at_c = c;
            }
        }
    printf("  %-44s max |Δ| %.3g (at [%lld][%lld]: %.6f vs %.6f), mean %.3g  (tol %.3g)\n", what,
           maxd, (long long)at_r, (long long)at_c, got[at_r * ldg + at_c], ref[at_r * ldr + at_c],
           sum / (double)(rows * cols > 0 ? rows * cols : 1), tol);
    CHECK(maxd <= tol, "%s: max |Δ| %.3g > %.3g", what, maxd, tol);
    return maxd;
}

#endif
