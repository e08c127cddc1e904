/* vtest.h — small helpers shared by the vision tests. */
#ifndef VTEST_H
#define VTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vt_failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond);                  \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            vt_failures++;                                                                     \
        }                                                                                      \
    } while (0)

#define CHECK_INT(a, b, what)                                                                  \
    do {                                                                                       \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                  \
        CHECK(va_ == vb_, "%s: got %lld, expected %lld", what, va_, vb_);                      \
    } while (0)

/* $LFM2_TEST_DATA/<rel> (a static buffer per call site is enough for the tests). */
static inline const char *vt_data(const char *rel)
{
    static char buf[8][1024];
    static int k;
    const char *root = getenv("LFM2_TEST_DATA");
    if (!root) {
        fprintf(stderr, "LFM2_TEST_DATA is not set (run through meson test)\n");
        exit(1);
    }
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/%s", root, rel);
    return b;
}

static inline void *vt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
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

static inline int vt_finish(const char *name)
{
    if (vt_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, vt_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
