/* vtest.h — small helpers shared by the vision tests. */
#ifndef VTEST_H
#define VTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-test.h"

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
    if (lfm2_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, lfm2_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
