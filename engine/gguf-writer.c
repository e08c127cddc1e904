/* gguf-writer.c — writes GGUF v3 files the way llama.cpp's converter lays them out:
 * header, key/value pairs and tensor infos in insertion order, zero padding to 32 bytes,
 * then each tensor's data padded to 32 bytes. Used by the model generator and the tests.
 *
 * The set_* calls cannot fail visibly (they return void), so the first problem (out of
 * memory, a bad tensor) is remembered and reported by lfm2_gguf_writer_write(). Setting a
 * key that already exists replaces its value in place, as ggml's gguf_set_* do. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lfm2-gguf.h"

#define WRITER_ALIGNMENT 32

typedef struct {
    char *key;
    uint8_t *val;       /* serialized: u32 type, then the value */
    size_t len;
} wkv;

typedef struct {
    char *name;
    enum lfm2_type type;
    int n_dims;
    int64_t ne[LFM2_MAX_DIMS];
    size_t nbytes;
    uint8_t *data;                                   /* copied data, or NULL with fill */
    int (*fill)(void *ctx, void *dst, size_t nbytes);
    void *ctx;
} wtensor;

struct lfm2_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    char err[512];      /* first error, reported by write() */
};

static void werr(lfm2_gguf_writer *w, const char *fmt, ...) LFM2_PRINTF(2, 3);

static void werr(lfm2_gguf_writer *w, const char *fmt, ...)
{
    if (w->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

lfm2_gguf_writer *lfm2_gguf_writer_new(void)
{
    lfm2_gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        lfm2_set_error("out of memory");
    return w;
}

void lfm2_gguf_writer_free(lfm2_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- value serialization -------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, x, 4);
}

static void put_u64(bytes *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static void put_f32(bytes *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

/* Stores a serialized value under key, replacing an existing one. Takes ownership of v. */
static void set_kv(lfm2_gguf_writer *w, const char *key, bytes *v)
{
    if (v->oom || !key) {
        free(v->p);
        werr(w, "out of memory setting key '%s'", key ? key : "(null)");
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].val = v->p;
            w->kv[i].len = v->len;
            return;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = realloc(w->kv, cap * sizeof *p);
        if (!p) {
            free(v->p);
            werr(w, "out of memory setting key '%s'", key);
            return;
        }
        w->kv = p;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v->p);
        werr(w, "out of memory setting key '%s'", key);
        return;
    }
    w->kv[w->n_kv++] = (wkv){ k, v->p, v->len };
}

void lfm2_gguf_set_u32(lfm2_gguf_writer *w, const char *key, uint32_t v)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_U32);
    put_u32(&b, v);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_i32(lfm2_gguf_writer *w, const char *key, int32_t v)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_I32);
    put_u32(&b, (uint32_t)v);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_u64(lfm2_gguf_writer *w, const char *key, uint64_t v)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_U64);
    put_u64(&b, v);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_f32(lfm2_gguf_writer *w, const char *key, float v)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_F32);
    put_f32(&b, v);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_bool(lfm2_gguf_writer *w, const char *key, bool v)
{
    bytes b = { 0 };
    uint8_t x = v ? 1 : 0;
    put_u32(&b, LFM2_GGUF_BOOL);
    put(&b, &x, 1);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_str(lfm2_gguf_writer *w, const char *key, const char *v)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_STRING);
    put_str(&b, v ? v : "");
    set_kv(w, key, &b);
}

void lfm2_gguf_set_arr_i32(lfm2_gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_ARRAY);
    put_u32(&b, LFM2_GGUF_I32);
    put_u64(&b, n);
    for (size_t i = 0; i < n; i++)
        put_u32(&b, (uint32_t)v[i]);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_arr_f32(lfm2_gguf_writer *w, const char *key, const float *v, size_t n)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_ARRAY);
    put_u32(&b, LFM2_GGUF_F32);
    put_u64(&b, n);
    for (size_t i = 0; i < n; i++)
        put_f32(&b, v[i]);
    set_kv(w, key, &b);
}

void lfm2_gguf_set_arr_str(lfm2_gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    bytes b = { 0 };
    put_u32(&b, LFM2_GGUF_ARRAY);
    put_u32(&b, LFM2_GGUF_STRING);
    put_u64(&b, n);
    for (size_t i = 0; i < n; i++)
        put_str(&b, v[i] ? v[i] : "");
    set_kv(w, key, &b);
}

/* ---- tensors ------------------------------------------------------------------------------ */

static wtensor *new_tensor(lfm2_gguf_writer *w, const char *name, enum lfm2_type type, int n_dims,
                           const int64_t *ne)
{
    if (!name || !*name) {
        werr(w, "tensor %zu has no name", w->n_t);
        return NULL;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            werr(w, "duplicate tensor name '%s'", name);
            return NULL;
        }
    if (!lfm2_type_supported(type)) {
        werr(w, "tensor '%s': type %s cannot be written", name, lfm2_type_name(type));
        return NULL;
    }
    if (n_dims < 1 || n_dims > LFM2_MAX_DIMS) {
        werr(w, "tensor '%s': %d dimensions (must be 1 to %d)", name, n_dims, LFM2_MAX_DIMS);
        return NULL;
    }
    wtensor t = { .type = type, .n_dims = n_dims, .ne = { 1, 1, 1, 1 } };
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1) {
            werr(w, "tensor '%s': size %" PRId64 " in dimension %d", name, ne[d], d);
            return NULL;
        }
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % lfm2_type_block_elems(type) != 0) {
        werr(w, "tensor '%s': %" PRId64 " elements per row is not a multiple of the %s block size %d",
             name, t.ne[0], lfm2_type_name(type), lfm2_type_block_elems(type));
        return NULL;
    }
    size_t nb = lfm2_row_bytes(type, t.ne[0]);
    for (int d = 1; d < LFM2_MAX_DIMS; d++)
        if (!lfm2_mul_ok(nb, (size_t)t.ne[d], &nb)) {
            werr(w, "tensor '%s': size overflows", name);
            return NULL;
        }
    t.nbytes = nb;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) {
            werr(w, "out of memory adding tensor '%s'", name);
            return NULL;
        }
        w->t = p;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        werr(w, "out of memory adding tensor '%s'", name);
        return NULL;
    }
    w->t[w->n_t] = t;
    return &w->t[w->n_t++];
}

void lfm2_gguf_add_tensor(lfm2_gguf_writer *w, const char *name, enum lfm2_type type,
                          int n_dims, const int64_t *ne, const void *data)
{
    wtensor *t = new_tensor(w, name, type, n_dims, ne);
    if (!t)
        return;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        werr(w, "out of memory copying tensor '%s' (%zu bytes)", name, t->nbytes);
        return;
    }
    if (data)
        memcpy(t->data, data, t->nbytes);
    else
        memset(t->data, 0, t->nbytes);
}

void lfm2_gguf_add_tensor_fill(lfm2_gguf_writer *w, const char *name, enum lfm2_type type,
                               int n_dims, const int64_t *ne,
                               int (*fill)(void *ctx, void *dst, size_t nbytes), void *ctx)
{
    wtensor *t = new_tensor(w, name, type, n_dims, ne);
    if (!t)
        return;
    t->fill = fill;
    t->ctx = ctx;
}

/* ---- output --------------------------------------------------------------------------------- */

static size_t pad_to(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

int lfm2_gguf_writer_write(lfm2_gguf_writer *w, const char *path)
{
    if (w->err[0])
        return lfm2_set_error("%s: %s", path, w->err);

    /* header + metadata + tensor infos in one buffer */
    bytes h = { 0 };
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key);
        put(&h, w->kv[i].val, w->kv[i].len);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name);
        put_u32(&h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, off);
        off += pad_to(t->nbytes, WRITER_ALIGNMENT);
    }
    static const uint8_t zeros[WRITER_ALIGNMENT];
    put(&h, zeros, pad_to(h.len, WRITER_ALIGNMENT) - h.len);
    if (h.oom) {
        free(h.p);
        return lfm2_set_error("%s: out of memory building the GGUF header", path);
    }

    /* write to a temporary name and rename, so a failed run never leaves a half file */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) {
        free(h.p);
        return lfm2_set_error("%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = lfm2_set_error("%s: cannot create: %s", tmp, strerror(errno));
        free(h.p);
        free(tmp);
        return rc;
    }
    int rc = 0;
    if (fwrite(h.p, 1, h.len, f) != h.len)
        rc = lfm2_set_error("%s: write failed: %s", path, strerror(errno));
    free(h.p);
    for (size_t i = 0; i < w->n_t && rc == 0; i++) {
        wtensor *t = &w->t[i];
        const uint8_t *data = t->data;
        uint8_t *buf = NULL;
        if (t->fill) {
            buf = lfm2_alloc_aligned(t->nbytes);
            if (!buf) {
                rc = lfm2_set_error("%s: out of memory for tensor '%s' (%zu bytes)", path, t->name, t->nbytes);
                break;
            }
            memset(buf, 0, t->nbytes);
            if (t->fill(t->ctx, buf, t->nbytes) != 0) {
                lfm2_prefix_error("%s: tensor '%s'", path, t->name);
                lfm2_free_aligned(buf);
                rc = -1;
                break;
            }
            data = buf;
        }
        size_t padn = pad_to(t->nbytes, WRITER_ALIGNMENT) - t->nbytes;
        if (fwrite(data, 1, t->nbytes, f) != t->nbytes || fwrite(zeros, 1, padn, f) != padn)
            rc = lfm2_set_error("%s: write failed in tensor '%s': %s", path, t->name, strerror(errno));
        lfm2_free_aligned(buf);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = lfm2_set_error("%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = lfm2_set_error("%s: cannot rename %s: %s", path, tmp, strerror(errno));
    if (rc != 0)
        remove(tmp);
    free(tmp);
    return rc;
}
