/* types-api.c — public entry points over the block formats of quants.c (lfm2-gguf.h), for code
 * outside the engine that writes tensors: argument checks here, the arithmetic in quants.c. */
#include "lfm2-gguf.h"
#include "lfm2-stage.h"
#include "quants.h"

size_t lfm2_quantize(enum lfm2_type type, const float *src, void *dst, int64_t n_rows,
                     int64_t n_per_row)
{
    if (!lfm2_type_supported(type)) {
        lfm2_set_error("lfm2_quantize: %s is not a weight type", lfm2_type_name(type));
        return 0;
    }
    const int64_t blk = lfm2_type_block_elems(type);
    if (n_rows <= 0 || n_per_row <= 0 || n_per_row % blk != 0 || !src || !dst) {
        lfm2_set_error("lfm2_quantize: %lld rows of %lld values: rows and row length must be "
                       "positive, the row length a multiple of %s's block (%lld)",
                       (long long)n_rows, (long long)n_per_row, lfm2_type_name(type),
                       (long long)blk);
        return 0;
    }
    const size_t row_bytes = lfm2_row_bytes(type, n_per_row);
    size_t total;
    if (!lfm2_mul_ok(row_bytes, (size_t)n_rows, &total)) {
        lfm2_set_error("lfm2_quantize: %lld rows of %zu bytes overflow", (long long)n_rows, row_bytes);
        return 0;
    }
    uint8_t *d = dst;
    for (int64_t r = 0; r < n_rows; r++)
        lfm2_quantize_row(type, src + r * n_per_row, d + (size_t)r * row_bytes, n_per_row);
    return total;
}
