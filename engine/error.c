/* error.c — per-thread error messages, version, aligned allocation, clock. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "lfm2-ops.h"

static _Thread_local char g_error[1024];

const char *lfm2_last_error(void)
{
    return g_error;
}

void lfm2_clear_error(void)
{
    g_error[0] = '\0';
}

int lfm2_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return -1;
}

void lfm2_prefix_error(const char *fmt, ...)
{
    char prefix[512], old[sizeof g_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_error, sizeof old);
    /* prefix + ": " + old message, cut to the buffer (truncation is fine here) */
    size_t np = strlen(prefix), no = strlen(old), cap = sizeof g_error - 1;
    if (np > cap)
        np = cap;
    memcpy(g_error, prefix, np);
    size_t n = np;
    if (n + 2 <= cap) {
        memcpy(g_error + n, ": ", 2);
        n += 2;
    }
    if (no > cap - n)
        no = cap - n;
    memcpy(g_error + n, old, no);
    g_error[n + no] = '\0';
}

const char *lfm2_version(void)
{
    return LFM2_VERSION;
}

void *lfm2_alloc_aligned(size_t size)
{
    void *p = NULL;
    if (size == 0)
        size = 64;
    size = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, size) != 0) {
        lfm2_set_error("out of memory allocating %zu bytes", size);
        return NULL;
    }
    return p;
}

void lfm2_free_aligned(void *p)
{
    free(p);
}

double lfm2_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
