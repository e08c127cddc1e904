/* fuzz-gguf — the GGUF reader over a buffer (lfm2_gguf_open_memory): header, metadata of
 * every type (nested arrays included), tensor infos, alignment, data offsets.
 *
 * Promises checked on every input the reader accepts ("after a successful open every accessor
 * is safe", lfm2-gguf.h): each accessor on each key and tensor stays inside the buffer (ASan
 * sees the exact buffer libFuzzer passes), each tensor's data lies in the data section, names
 * find their own entries, and the typed getters agree with the key's type. A refused input
 * must have an error naming the file. */
#include "fuzz-common.h"
#include "lfm2-gguf.h"

#include <inttypes.h>

#define NAME "fuzz.gguf"

static volatile uint8_t sink;

static void touch(const void *p, size_t n)
{
    if (n) {
        sink ^= ((const uint8_t *)p)[0];
        sink ^= ((const uint8_t *)p)[n - 1];
    }
}

static void walk_kv(const lfm2_gguf *g, int64_t i, const uint8_t *base, size_t size)
{
    const char *key = lfm2_gguf_kv_key(g, i);
    FUZZ_ASSERT(key != NULL, "key %" PRId64 " is NULL", i);
    FUZZ_ASSERT(lfm2_gguf_find_key(g, key) == i, "key '%s' does not find itself", key);
    const enum lfm2_gguf_type t = lfm2_gguf_kv_type(g, i);

    char buf[160];
    lfm2_gguf_kv_format(g, i, buf, sizeof buf, 24);
    FUZZ_ASSERT(memchr(buf, '\0', sizeof buf) != NULL, "kv_format is not terminated");
    lfm2_gguf_kv_format(g, i, buf, 8, 2);   /* a short buffer cuts, never overruns */

    int64_t iv;
    float fv;
    bool bv;
    size_t len = 0;
    const int ri = lfm2_gguf_get_int(g, key, &iv);
    const int rf = lfm2_gguf_get_f32(g, key, &fv);
    const int rb = lfm2_gguf_get_bool(g, key, &bv);
    FUZZ_ASSERT(ri != 0 && rf != 0 && rb != 0, "a getter says the present key '%s' is absent", key);
    FUZZ_ASSERT((rf == 1) == (t == LFM2_GGUF_F32 || t == LFM2_GGUF_F64),
                "get_f32 on '%s' of type %d returned %d", key, t, rf);
    const char *s = lfm2_gguf_get_str(g, key, &len);
    FUZZ_ASSERT((s != NULL) == (t == LFM2_GGUF_STRING), "get_str on '%s' of type %d", key, t);
    if (s) {
        FUZZ_ASSERT((const uint8_t *)s >= base && (const uint8_t *)s + len <= base + size,
                    "string '%s' lies outside the buffer", key);
        touch(s, len);
        char small[4];
        const int r = lfm2_gguf_get_str_buf(g, key, small, sizeof small);
        FUZZ_ASSERT(r == (len < sizeof small ? 1 : -1), "get_str_buf of %zu bytes: %d", len, r);
        FUZZ_ASSERT(r != 1 || small[len] == '\0', "get_str_buf not terminated");
    }

    enum lfm2_gguf_type et;
    uint64_t n = 0;
    const int ra = lfm2_gguf_get_arr(g, key, &et, &n);
    FUZZ_ASSERT((ra == 1) == (t == LFM2_GGUF_ARRAY), "get_arr on '%s' of type %d", key, t);
    if (ra != 1)
        return;
    const void *d = lfm2_gguf_arr_data(g, key);
    if (d && n) {
        FUZZ_ASSERT((const uint8_t *)d >= base && (const uint8_t *)d < base + size,
                    "array '%s' data lies outside the buffer", key);
        touch(d, 1);
    }
    if (et == LFM2_GGUF_STRING) {
        const uint64_t idx[3] = { 0, n / 2, n ? n - 1 : 0 };
        for (int k = 0; k < 3 && n; k++) {
            const char *e = lfm2_gguf_arr_str(g, key, idx[k], &len);
            FUZZ_ASSERT(e != NULL, "'%s'[%" PRIu64 "] missing", key, idx[k]);
            FUZZ_ASSERT((const uint8_t *)e >= base && (const uint8_t *)e + len <= base + size,
                        "'%s'[%" PRIu64 "] lies outside the buffer", key, idx[k]);
            touch(e, len);
        }
        FUZZ_ASSERT(lfm2_gguf_arr_str(g, key, n, &len) == NULL, "'%s'[n] exists", key);
    }
    if (n <= 4096) {
        int64_t *iv_arr = malloc((n ? n : 1) * sizeof *iv_arr);
        float *fv_arr = malloc((n ? n : 1) * sizeof *fv_arr);
        if (!iv_arr || !fv_arr)
            abort();
        lfm2_gguf_get_int_arr(g, key, iv_arr, (size_t)n);
        lfm2_gguf_get_f32_arr(g, key, fv_arr, (size_t)n);
        /* a wrong count is refused, not read past */
        FUZZ_ASSERT(lfm2_gguf_get_int_arr(g, key, iv_arr, n ? (size_t)n - 1 : 0) != 1 || n == 0,
                    "get_int_arr accepted a short count for '%s'", key);
        free(iv_arr);
        free(fv_arr);
    }
}

static void walk_tensor(const lfm2_gguf *g, int64_t i, const uint8_t *base, size_t size)
{
    const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
    FUZZ_ASSERT(t && t->name, "tensor %" PRId64 " missing", i);
    FUZZ_ASSERT(lfm2_gguf_find_tensor(g, t->name) == t, "tensor '%s' does not find itself",
                t->name);
    FUZZ_ASSERT(t->n_dims >= 1 && t->n_dims <= LFM2_MAX_DIMS, "'%s': n_dims %d", t->name,
                t->n_dims);
    const uint8_t *d = t->data;
    FUZZ_ASSERT(d >= base + lfm2_gguf_data_offset(g) && d <= base + size &&
                    t->nbytes <= (size_t)(base + size - d),
                "'%s': data [%td, +%zu) is outside the data section of %zu bytes", t->name,
                d - base, t->nbytes, size);
    touch(d, t->nbytes);
    if (lfm2_type_supported(t->type)) {
        int64_t n = lfm2_tensor_nelements(t);
        FUZZ_ASSERT(n > 0 && t->ne[0] % lfm2_type_block_elems(t->type) == 0,
                    "'%s': %" PRId64 " elements of %s", t->name, n, lfm2_type_name(t->type));
        FUZZ_ASSERT(t->nb1 == lfm2_row_bytes(t->type, t->ne[0]), "'%s': row bytes", t->name);
        FUZZ_ASSERT(t->nbytes == t->nb1 * (size_t)(n / t->ne[0]), "'%s': nbytes", t->name);
    }
    lfm2_clear_error();
    const lfm2_tensor *r = lfm2_gguf_require_tensor(g, t->name, t->n_dims, t->ne, 0);
    if (!r)
        fuzz_check_error("require_tensor", NAME);
    const int64_t wrong[LFM2_MAX_DIMS] = { t->ne[0] == 1 ? 2 : t->ne[0] - 1, 0, 0, 0 };
    lfm2_clear_error();
    FUZZ_ASSERT(lfm2_gguf_require_tensor(g, t->name, t->n_dims, wrong, 0) == NULL,
                "require_tensor accepted a wrong shape for '%s'", t->name);
    fuzz_check_error("require_tensor", NAME);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lfm2_clear_error();
    lfm2_gguf *g = lfm2_gguf_open_memory(data, size, NAME);
    if (!g) {
        fuzz_check_error("lfm2_gguf_open_memory", NAME);
        return 0;
    }
    FUZZ_ASSERT(lfm2_gguf_file_size(g) == size, "file size");
    FUZZ_ASSERT(lfm2_gguf_data_offset(g) <= size || lfm2_gguf_n_tensors(g) == 0,
                "data offset %zu past %zu bytes", lfm2_gguf_data_offset(g), size);
    const size_t a = lfm2_gguf_alignment(g);
    FUZZ_ASSERT(a && (a & (a - 1)) == 0, "alignment %zu", a);
    for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++)
        walk_kv(g, i, data, size);
    FUZZ_ASSERT(lfm2_gguf_kv_key(g, lfm2_gguf_n_kv(g)) == NULL, "key past the end");
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++)
        walk_tensor(g, i, data, size);
    FUZZ_ASSERT(lfm2_gguf_tensor(g, lfm2_gguf_n_tensors(g)) == NULL, "tensor past the end");
    /* a key that is not there is not found (the fuzzer may well add this one) */
    const char *probe = "no such key, ever";
    bool present = false;
    for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++)
        present |= !strcmp(lfm2_gguf_kv_key(g, i), probe);
    FUZZ_ASSERT((lfm2_gguf_find_key(g, probe) >= 0) == present, "find_key('%s')", probe);
    lfm2_gguf_close(g);
    return 0;
}
