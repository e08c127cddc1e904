/* internal.h — helpers shared by the engine's source files (not installed). */
#ifndef LFM2_INTERNAL_H
#define LFM2_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lfm2.h"

#if defined(__GNUC__)
#define LFM2_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LFM2_LIKELY(x) __builtin_expect(!!(x), 1)
#define LFM2_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LFM2_PRINTF(a, b)
#define LFM2_LIKELY(x) (x)
#define LFM2_UNLIKELY(x) (x)
#endif

/* Sets the calling thread's error message (printf-style). Always returns -1 so callers can
 * write `return lfm2_set_error(...)`. */
int lfm2_set_error(const char *fmt, ...) LFM2_PRINTF(1, 2);
/* Prepends "prefix: " to the current error message. */
void lfm2_prefix_error(const char *fmt, ...) LFM2_PRINTF(1, 2);

/* 64-byte aligned allocation (NULL on failure, with an error set); free with lfm2_free_aligned. */
void *lfm2_alloc_aligned(size_t size);
void lfm2_free_aligned(void *p);

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int lfm2_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int lfm2_add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#endif /* LFM2_INTERNAL_H */
