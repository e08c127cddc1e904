/* fuzz-common.h — what the libFuzzer harnesses share: reading typed values off the input,
 * the test-data path, a file made from bytes (for loaders that take a path), and the rule
 * every harness enforces: a refused input leaves an error message.
 *
 * A harness aborts (a libFuzzer finding) on a memory or UB error (ASan/UBSan), and on a broken
 * promise of the API under test: FUZZ_ASSERT. */
#ifndef LFM2_FUZZ_COMMON_H
#define LFM2_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lfm2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond, ...)                                                                 \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FUZZ_ASSERT %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* A failure must say why (lfm2_last_error), and name `name` when given. */
static inline void fuzz_check_error(const char *what, const char *name)
{
    const char *e = lfm2_last_error();
    FUZZ_ASSERT(e && *e, "%s failed without an error message", what);
    if (name && !strstr(e, "out of memory"))
        FUZZ_ASSERT(strstr(e, name) != NULL, "%s: the error does not name %s: %s", what, name, e);
}

/* ---- consuming the input ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_input;

static inline uint8_t fuzz_u8(fuzz_input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_input *in)
{
    uint16_t v = fuzz_u8(in);
    return (uint16_t)(v | fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(fuzz_input *in)
{
    uint32_t v = fuzz_u16(in);
    return v | (uint32_t)fuzz_u16(in) << 16;
}

/* An integer in [lo, hi] (hi - lo < 2^32). */
static inline int64_t fuzz_range(fuzz_input *in, int64_t lo, int64_t hi)
{
    const uint64_t span = (uint64_t)(hi - lo) + 1;
    const uint64_t v = span <= 256 ? fuzz_u8(in) : span <= 65536 ? fuzz_u16(in) : fuzz_u32(in);
    return lo + (int64_t)(v % span);
}

/* The next `len` bytes (fewer at the end) as a malloc'd NUL-terminated string; *n_out gets
 * the length. Embedded NULs stay (callers that need C strings see a prefix). */
static inline char *fuzz_bytes_str(fuzz_input *in, size_t len, size_t *n_out)
{
    if (len > in->n)
        len = in->n;
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, in->p, len);
    s[len] = '\0';
    in->p += len;
    in->n -= len;
    if (n_out)
        *n_out = len;
    return s;
}

/* A string of up to `max` bytes: its length comes from the input first. */
static inline char *fuzz_str(fuzz_input *in, size_t max, size_t *n_out)
{
    return fuzz_bytes_str(in, (size_t)fuzz_range(in, 0, (int64_t)max), n_out);
}

/* ---- files ------------------------------------------------------------------------------ */

/* tests/data of the source tree (compiled in by tests/fuzz/meson.build; LFM2_TEST_DATA wins). */
static inline const char *fuzz_data_dir(void)
{
    const char *d = getenv("LFM2_TEST_DATA");
    return d && *d ? d : LFM2_FUZZ_DATA_DIR;
}

static inline char *fuzz_data_path(const char *rel)
{
    const char *dir = fuzz_data_dir();
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* An in-memory file holding the bytes, for loaders that open a path (the model and mmproj
 * loaders mmap it exactly as a file on disk). *path receives "/proc/self/fd/N" (cap ≥ 32).
 * Returns the descriptor to close afterwards. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("lfm2-fuzz", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            perror("write");
            abort();
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Loads a model from tests/data once (harnesses that need a vocabulary). */
static inline lfm2_model *fuzz_load_model(const char *rel)
{
    char *path = fuzz_data_path(rel);
    lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
    if (!m) {
        fprintf(stderr, "%s: %s\n", path, lfm2_last_error());
        abort();
    }
    free(path);
    return m;
}

#endif /* LFM2_FUZZ_COMMON_H */
