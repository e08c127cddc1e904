/* lfm2-gguf.h — GGUF v3 files: a checked reader over an mmapped file, a writer (for the
 * model generator), and the ggml tensor types the engine understands.
 *
 * The reader validates every count, string length, offset and size against the file size
 * (and against overflow) at open time; after a successful open every accessor is safe.
 */
#ifndef LFM2_GGUF_H
#define LFM2_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lfm2_gguf lfm2_gguf;

/* ---- tensor types (ggml ids) -------------------------------------------------------- */

enum lfm2_type {
    LFM2_TYPE_F32 = 0,
    LFM2_TYPE_F16 = 1,
    LFM2_TYPE_Q4_0 = 2,
    LFM2_TYPE_Q4_1 = 3,
    LFM2_TYPE_Q5_0 = 6,
    LFM2_TYPE_Q5_1 = 7,
    LFM2_TYPE_Q8_0 = 8,
    LFM2_TYPE_Q8_1 = 9,   /* not a weight type; activation format only */
    LFM2_TYPE_Q4_K = 12,
    LFM2_TYPE_Q5_K = 13,
    LFM2_TYPE_Q6_K = 14,
    LFM2_TYPE_Q8_K = 15,  /* not a weight type; activation format only */
    LFM2_TYPE_BF16 = 30,
    LFM2_TYPE_COUNT = 40,
};

/* True for the weight types a file may use (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K). */
LFM2_API bool lfm2_type_supported(uint32_t type);
/* ggml's name ("Q4_K", "F16"…); for ids ggml knows but we do not, still its name
 * (e.g. "IQ2_XXS", "MXFP4"); "type 77" otherwise. Never NULL. */
LFM2_API const char *lfm2_type_name(uint32_t type);
LFM2_API int lfm2_type_block_elems(enum lfm2_type type);   /* 1, 32 or 256 */
LFM2_API int lfm2_type_block_bytes(enum lfm2_type type);
/* Bytes of a row of n elements (n must be a multiple of the block size). */
LFM2_API size_t lfm2_row_bytes(enum lfm2_type type, int64_t n);
/* Reference quantization, bit-exact with ggml's quantize_row_*_ref (no importance matrix):
 * n_rows rows of n_per_row floats (a multiple of the type's block size) become
 * n_rows × lfm2_row_bytes(type, n_per_row) bytes at dst, as ggml_quantize_chunk writes them.
 * F32 is copied, F16 and BF16 rounded to nearest even. For writing GGUF files (lfm2 mkmodel)
 * and building test weights. Returns the bytes written, or 0 with an error when the type is
 * not a weight type (lfm2_type_supported) or the shape is not positive and block-aligned. */
LFM2_API size_t lfm2_quantize(enum lfm2_type type, const float *src, void *dst, int64_t n_rows,
                              int64_t n_per_row);

/* ---- tensors -------------------------------------------------------------------------- */

#define LFM2_MAX_DIMS 4

typedef struct lfm2_tensor {
    const char *name;
    enum lfm2_type type;
    int n_dims;
    int64_t ne[LFM2_MAX_DIMS];   /* ne[0] fastest; unused dims are 1 */
    size_t nb1;                  /* bytes per row (along ne[1]) */
    const void *data;            /* inside the mapping */
    size_t nbytes;
} lfm2_tensor;

static inline int64_t lfm2_tensor_nelements(const lfm2_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

/* ---- reader ----------------------------------------------------------------------------- */

enum lfm2_gguf_type {
    LFM2_GGUF_U8 = 0, LFM2_GGUF_I8 = 1, LFM2_GGUF_U16 = 2, LFM2_GGUF_I16 = 3,
    LFM2_GGUF_U32 = 4, LFM2_GGUF_I32 = 5, LFM2_GGUF_F32 = 6, LFM2_GGUF_BOOL = 7,
    LFM2_GGUF_STRING = 8, LFM2_GGUF_ARRAY = 9, LFM2_GGUF_U64 = 10, LFM2_GGUF_I64 = 11,
    LFM2_GGUF_F64 = 12,
};
LFM2_API const char *lfm2_gguf_type_name(enum lfm2_gguf_type t);

/* Opens and validates a GGUF v3 (v2 accepted) file. use_mmap=false reads it into memory.
 * On error returns NULL with lfm2_last_error() like
 *   "model.gguf: tensor 'blk.3.attn_q.weight': data [1234, 5678) lies past the end of the file (4000 bytes)". */
LFM2_API lfm2_gguf *lfm2_gguf_open(const char *path, bool use_mmap);
/* The same over a caller-owned buffer (tests, fuzzing); `name` is used in messages. */
LFM2_API lfm2_gguf *lfm2_gguf_open_memory(const void *data, size_t size, const char *name);
LFM2_API void lfm2_gguf_close(lfm2_gguf *g);

LFM2_API const char *lfm2_gguf_path(const lfm2_gguf *g);
LFM2_API uint32_t lfm2_gguf_version(const lfm2_gguf *g);
LFM2_API size_t lfm2_gguf_file_size(const lfm2_gguf *g);
LFM2_API size_t lfm2_gguf_alignment(const lfm2_gguf *g);
LFM2_API size_t lfm2_gguf_data_offset(const lfm2_gguf *g);

/* key/value pairs */
LFM2_API int64_t lfm2_gguf_n_kv(const lfm2_gguf *g);
LFM2_API const char *lfm2_gguf_kv_key(const lfm2_gguf *g, int64_t i);
LFM2_API enum lfm2_gguf_type lfm2_gguf_kv_type(const lfm2_gguf *g, int64_t i);
LFM2_API int64_t lfm2_gguf_find_key(const lfm2_gguf *g, const char *key);   /* -1 if absent */

/* Typed getters by key. Return 1 when found and converted, 0 when the key is absent, -1 when
 * present with an unusable type or value (lfm2_last_error names the file and key).
 * get_int accepts every integer type (and bool); get_f32 accepts f32 and f64. */
LFM2_API int lfm2_gguf_get_int(const lfm2_gguf *g, const char *key, int64_t *out);
LFM2_API int lfm2_gguf_get_f32(const lfm2_gguf *g, const char *key, float *out);
LFM2_API int lfm2_gguf_get_bool(const lfm2_gguf *g, const char *key, bool *out);
/* Integer key that must lie in [lo, hi]: 1 with *out set, 0 when absent and optional (*out
 * unchanged), -1 when absent and required or out of range (the error names file and key). */
LFM2_API int lfm2_gguf_get_int_range(const lfm2_gguf *g, const char *key, int64_t lo, int64_t hi,
                                     bool required, int64_t *out);
/* String value (not NUL-terminated in the file: use *len); NULL if absent or not a string. */
LFM2_API const char *lfm2_gguf_get_str(const lfm2_gguf *g, const char *key, size_t *len);
/* Copies a string value into buf as a NUL-terminated string; same returns as get_int. */
LFM2_API int lfm2_gguf_get_str_buf(const lfm2_gguf *g, const char *key, char *buf, size_t cap);

/* Arrays. get_arr: 1 found (element type and count set), 0 absent, -1 not an array. */
LFM2_API int lfm2_gguf_get_arr(const lfm2_gguf *g, const char *key, enum lfm2_gguf_type *elem_type,
                               uint64_t *n);
/* Raw little-endian element data of a fixed-size element array (NULL for strings/arrays). */
LFM2_API const void *lfm2_gguf_arr_data(const lfm2_gguf *g, const char *key);
/* Element i of a string array (not NUL-terminated; *len set). NULL if out of range. */
LFM2_API const char *lfm2_gguf_arr_str(const lfm2_gguf *g, const char *key, uint64_t i,
                                       size_t *len);
/* Integer array → int64 (any integer element type). Also accepts a scalar integer, which is
 * repeated n times (llama.cpp's get_key_or_arr for per-layer keys). Returns 1/0/-1 as above;
 * -1 also when the array length differs from n. */
LFM2_API int lfm2_gguf_get_int_arr(const lfm2_gguf *g, const char *key, int64_t *out, size_t n);
LFM2_API int lfm2_gguf_get_f32_arr(const lfm2_gguf *g, const char *key, float *out, size_t n);

/* Writes a one-line rendering of value i (numbers, strings quoted and cut at max_chars,
 * arrays as "[type; n] first, elements, …") for `lfm2 info`. */
LFM2_API void lfm2_gguf_kv_format(const lfm2_gguf *g, int64_t i, char *buf, size_t cap,
                                  size_t max_chars);

/* tensors */
LFM2_API int64_t lfm2_gguf_n_tensors(const lfm2_gguf *g);
LFM2_API const lfm2_tensor *lfm2_gguf_tensor(const lfm2_gguf *g, int64_t i);
LFM2_API const lfm2_tensor *lfm2_gguf_find_tensor(const lfm2_gguf *g, const char *name);   /* NULL if absent */

/* Looks up a tensor that must exist with the given type class and shape (ne, n_dims entries;
 * 0 = any). NULL with an error naming the file, the tensor and what differs. `types` is a
 * bitmask of accepted types (1u << type) or 0 for any supported weight type. */
LFM2_API const lfm2_tensor *lfm2_gguf_require_tensor(const lfm2_gguf *g, const char *name,
                                                     int n_dims, const int64_t *ne, uint64_t types);

/* ---- writer ------------------------------------------------------------------------------- */

typedef struct lfm2_gguf_writer lfm2_gguf_writer;

LFM2_API lfm2_gguf_writer *lfm2_gguf_writer_new(void);
LFM2_API void lfm2_gguf_writer_free(lfm2_gguf_writer *w);
LFM2_API void lfm2_gguf_set_u32(lfm2_gguf_writer *w, const char *key, uint32_t v);
LFM2_API void lfm2_gguf_set_i32(lfm2_gguf_writer *w, const char *key, int32_t v);
LFM2_API void lfm2_gguf_set_u64(lfm2_gguf_writer *w, const char *key, uint64_t v);
LFM2_API void lfm2_gguf_set_f32(lfm2_gguf_writer *w, const char *key, float v);
LFM2_API void lfm2_gguf_set_bool(lfm2_gguf_writer *w, const char *key, bool v);
LFM2_API void lfm2_gguf_set_str(lfm2_gguf_writer *w, const char *key, const char *v);
LFM2_API void lfm2_gguf_set_arr_i32(lfm2_gguf_writer *w, const char *key, const int32_t *v,
                                    size_t n);
LFM2_API void lfm2_gguf_set_arr_f32(lfm2_gguf_writer *w, const char *key, const float *v, size_t n);
LFM2_API void lfm2_gguf_set_arr_str(lfm2_gguf_writer *w, const char *key, const char *const *v,
                                    size_t n);
/* Adds a tensor; `data` (lfm2_row_bytes(type, ne0) × ne1 × … bytes) is copied. */
LFM2_API void lfm2_gguf_add_tensor(lfm2_gguf_writer *w, const char *name, enum lfm2_type type,
                                   int n_dims, const int64_t *ne, const void *data);
/* Adds a tensor whose bytes `fill` produces at write time, into a zeroed buffer of the
 * tensor's size (return 0, or -1 with an error set): big generated models are never held in
 * memory whole. `ctx` must stay valid until lfm2_gguf_writer_write returns. */
LFM2_API void lfm2_gguf_add_tensor_fill(lfm2_gguf_writer *w, const char *name, enum lfm2_type type,
                                        int n_dims, const int64_t *ne,
                                        int (*fill)(void *ctx, void *dst, size_t nbytes),
                                        void *ctx);
/* Writes the file (alignment 32, tensors in insertion order). Returns 0 or -1 with error. */
LFM2_API int lfm2_gguf_writer_write(lfm2_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_GGUF_H */
