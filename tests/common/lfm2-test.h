/* lfm2-test.h — what the plain C tests share: CHECK (counts failures and goes on) and the
 * path of the test data. A test's main() ends with `return lfm2_test_status();`. */
#ifndef LFM2_TEST_H
#define LFM2_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int lfm2_test_failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            if (++lfm2_test_failures > 100) {                                                  \
                fprintf(stderr, "too many failures, stopping\n");                             \
                exit(1);                                                                       \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define CHECK_INT(a, b, what)                                                                  \
    do {                                                                                       \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                  \
        CHECK(va_ == vb_, "%s: got %lld, expected %lld", what, va_, vb_);                      \
    } while (0)

/* $LFM2_TEST_DATA (tests/data, set by meson test); exits when unset. */
static inline const char *lfm2_test_data_dir(void)
{
    const char *d = getenv("LFM2_TEST_DATA");
    if (!d) {
        fprintf(stderr, "LFM2_TEST_DATA is not set (run through meson test)\n");
        exit(1);
    }
    return d;
}

static inline int lfm2_test_status(void)
{
    if (lfm2_test_failures)
        fprintf(stderr, "%d check(s) failed\n", lfm2_test_failures);
    return lfm2_test_failures ? 1 : 0;
}

#endif /* LFM2_TEST_H */
