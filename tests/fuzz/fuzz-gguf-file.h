/* fuzz-gguf-file.h — the input convention of the harnesses that load whole model files
 * (fuzz-model, fuzz-mmproj) and the seed writer: a file's beginning, then its full length as a
 * 4-byte little-endian trailer; the file is zero-filled from the end of the beginning to that
 * length. Seeds are then a few kilobytes (the metadata and tensor table) instead of the whole
 * model, and the weights are zeros unless the fuzzer extends the beginning into them. */
#ifndef LFM2_FUZZ_GGUF_FILE_H
#define LFM2_FUZZ_GGUF_FILE_H

#include "fuzz-common.h"

#define FUZZ_GGUF_FILE_MAX (64u << 20)

/* Makes the file in memory (fuzz_memfile), extended with zeros by ftruncate (no pages are
 * written). Returns the descriptor; *path is the name to open. */
static inline int fuzz_gguf_file(const uint8_t *data, size_t size, char *path, size_t cap)
{
    size_t head = size, total = size;
    if (size >= 4) {
        head = size - 4;
        total = (size_t)data[head] | (size_t)data[head + 1] << 8 | (size_t)data[head + 2] << 16 |
                (size_t)data[head + 3] << 24;
        if (total > FUZZ_GGUF_FILE_MAX)
            total = FUZZ_GGUF_FILE_MAX;
        if (total < head)
            total = head;
    }
    int fd = fuzz_memfile(data, head, path, cap);
    if (ftruncate(fd, (off_t)total) != 0) {
        perror("ftruncate");
        abort();
    }
    return fd;
}

#endif /* LFM2_FUZZ_GGUF_FILE_H */
