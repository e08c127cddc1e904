/* gguf.c — a checked GGUF v3 (and v2) reader.
 *
 * Everything a later accessor may touch is validated at open time: every count, string
 * length, array size and tensor range is checked against the bytes that remain in the file
 * (so a huge count fails before anything is allocated for it), and every size computation
 * is overflow-checked. After a successful open the accessors never read outside the file.
 *
 * Layout (all little endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 * n_kv × (string key, u32 type, value), n_tensors × (string name, u32 n_dims,
 * u64 ne[n_dims], u32 type, u64 offset), zero padding to `general.alignment`, tensor data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "lfm2-gguf.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 8   /* nested arrays deeper than this are refused (array bombs) */
#define GGUF_MAX_ENTRIES (1u << 30)

/* Tensor types: the type table in quants.c (lfm2_type_supported, lfm2_type_name, block sizes). */

/* ---- KV value types ------------------------------------------------------------------------- */

const char *lfm2_gguf_type_name(enum lfm2_gguf_type t)
{
    static const char *const names[] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
    };
    if ((unsigned)t < sizeof names / sizeof names[0])
        return names[t];
    return "invalid";
}

/* Size of a fixed-size value, 0 for string/array/invalid. */
static size_t gtype_size(uint32_t t)
{
    switch (t) {
    case LFM2_GGUF_U8: case LFM2_GGUF_I8: case LFM2_GGUF_BOOL: return 1;
    case LFM2_GGUF_U16: case LFM2_GGUF_I16: return 2;
    case LFM2_GGUF_U32: case LFM2_GGUF_I32: case LFM2_GGUF_F32: return 4;
    case LFM2_GGUF_U64: case LFM2_GGUF_I64: case LFM2_GGUF_F64: return 8;
    default: return 0;
    }
}

static bool gtype_is_int(uint32_t t)
{
    switch (t) {
    case LFM2_GGUF_U8: case LFM2_GGUF_I8: case LFM2_GGUF_U16: case LFM2_GGUF_I16:
    case LFM2_GGUF_U32: case LFM2_GGUF_I32: case LFM2_GGUF_U64: case LFM2_GGUF_I64:
    case LFM2_GGUF_BOOL:
        return true;
    default:
        return false;
    }
}

/* ---- little-endian loads (the file may put any value at any byte offset) ------------------ */

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ld64(const uint8_t *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* ---- the reader state ------------------------------------------------------------------------ */

typedef struct {
    char *key;                  /* NUL-terminated copy */
    uint32_t type;
    size_t off;                 /* value: scalar bytes, or string length field, or array header */
    /* arrays */
    uint32_t elem_type;
    uint64_t n;
    size_t data_off;            /* first element */
    size_t *str_off;            /* string arrays: offset of each element's length field */
} gguf_kv;

typedef struct {
    uint32_t *slots;            /* index + 1, 0 = empty */
    uint32_t mask;
} name_map;

struct lfm2_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    void *map;                  /* mmap()ed region, or NULL */
    void *owned;                /* read() buffer, or NULL */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gguf_kv *kv;
    name_map kv_map;
    int64_t n_tensors;
    lfm2_tensor *tensors;
    size_t *tensor_off;         /* offsets relative to data_offset, as stored */
    name_map tensor_map;
};

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int map_init(name_map *m, uint64_t n)
{
    uint32_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    return m->slots ? 0 : -1;
}

/* Finds `name` (or the empty slot where it belongs); names[i] gives entry i's string. */
static uint32_t *map_slot(const name_map *m, const char *name, size_t len,
                          const char *(*get)(const void *, uint32_t), const void *ctx)
{
    uint32_t i = hash_bytes(name, len) & m->mask;
    for (;;) {
        uint32_t *s = &m->slots[i];
        if (*s == 0)
            return s;
        const char *other = get(ctx, *s - 1);
        if (strlen(other) == len && memcmp(other, name, len) == 0)
            return s;
        i = (i + 1) & m->mask;
    }
}

static const char *kv_name_at(const void *ctx, uint32_t i) { return ((const gguf_kv *)ctx)[i].key; }
static const char *tensor_name_at(const void *ctx, uint32_t i) { return ((const lfm2_tensor *)ctx)[i].name; }

/* Cursor over the file with a description of what is being read, for error messages. */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *file;
    char what[200];
    int64_t elem;               /* >= 0 while inside an array */
} reader;

static int fail_truncated(reader *r)
{
    if (r->elem >= 0)
        return lfm2_set_error("%s: truncated at byte %zu while reading element %" PRId64 " of %s",
                              r->file, r->size, r->elem, r->what);
    return lfm2_set_error("%s: truncated at byte %zu while reading %s", r->file, r->size, r->what);
}

static inline int need(reader *r, size_t n)
{
    if (n > r->size - r->pos)
        return fail_truncated(r);
    return 0;
}

static int rd_u32(reader *r, uint32_t *v)
{
    if (need(r, 4))
        return -1;
    *v = ld32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v)
{
    if (need(r, 8))
        return -1;
    *v = ld64(r->p + r->pos);
    r->pos += 8;
    return 0;
}

/* A gguf-string: u64 length + bytes. Returns the bytes in place. */
static int rd_str(reader *r, const char **s, size_t *len)
{
    uint64_t n;
    if (rd_u64(r, &n))
        return -1;
    if (n > r->size - r->pos) {
        if (n >= r->size) {
            if (r->elem >= 0)
                return lfm2_set_error("%s: string length %" PRIu64 " in element %" PRId64
                                      " of %s exceeds the file size (%zu bytes)",
                                      r->file, n, r->elem, r->what, r->size);
            return lfm2_set_error("%s: string length %" PRIu64 " in %s exceeds the file size (%zu bytes)",
                                  r->file, n, r->what, r->size);
        }
        return fail_truncated(r);
    }
    *s = (const char *)r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return 0;
}

static size_t min_elem_size(uint32_t t)
{
    if (t == LFM2_GGUF_STRING)
        return 8;
    if (t == LFM2_GGUF_ARRAY)
        return 12;
    return gtype_size(t);
}

/* Checks an array header's element type and count against the bytes left. */
static int check_array_header(reader *r, uint32_t et, uint64_t n, const char *key, int depth)
{
    if (et > LFM2_GGUF_F64)
        return lfm2_set_error("%s: key '%s': array element type %" PRIu32 " is not a GGUF value type",
                              r->file, key, et);
    if (et == LFM2_GGUF_ARRAY && depth + 1 >= GGUF_MAX_ARRAY_DEPTH)
        return lfm2_set_error("%s: key '%s': arrays nested more than %d deep", r->file, key,
                              GGUF_MAX_ARRAY_DEPTH);
    size_t left = r->size - r->pos;
    if (n > left / min_elem_size(et) && n <= r->size / min_elem_size(et))
        return fail_truncated(r);   /* plausible count, the file just ends early */
    if (n > left / min_elem_size(et))
        return lfm2_set_error("%s: key '%s': array of %" PRIu64 " %s elements exceeds the file size "
                              "(%zu bytes left at byte %zu)",
                              r->file, key, n, lfm2_gguf_type_name((enum lfm2_gguf_type)et), left, r->pos);
    return 0;
}

/* Skips (validating) the elements of an array whose header has been read. */
static int skip_array(reader *r, uint32_t et, uint64_t n, const char *key, int depth)
{
    size_t es = gtype_size(et);
    if (es) {   /* count already checked against the bytes left */
        r->pos += (size_t)n * es;
        return 0;
    }
    int64_t saved = r->elem;
    for (uint64_t i = 0; i < n; i++) {
        if (depth == 0)
            r->elem = (int64_t)i;
        if (et == LFM2_GGUF_STRING) {
            const char *s;
            size_t len;
            if (rd_str(r, &s, &len))
                return -1;
        } else {
            uint32_t et2;
            uint64_t n2;
            if (rd_u32(r, &et2) || rd_u64(r, &n2) || check_array_header(r, et2, n2, key, depth + 1) ||
                skip_array(r, et2, n2, key, depth + 1))
                return -1;
        }
    }
    r->elem = saved;
    return 0;
}

static int read_kv(lfm2_gguf *g, reader *r, int64_t idx)
{
    gguf_kv *kv = &g->kv[idx];
    const char *key;
    size_t klen;
    snprintf(r->what, sizeof r->what, "the key of metadata entry %" PRId64, idx);
    if (rd_str(r, &key, &klen))
        return -1;
    if (memchr(key, 0, klen))
        return lfm2_set_error("%s: the key of metadata entry %" PRId64 " contains a NUL byte", r->file, idx);
    kv->key = malloc(klen + 1);
    if (!kv->key)
        return lfm2_set_error("%s: out of memory", r->file);
    memcpy(kv->key, key, klen);
    kv->key[klen] = '\0';

    snprintf(r->what, sizeof r->what, "the value type of key '%.120s'", kv->key);
    if (rd_u32(r, &kv->type))
        return -1;
    if (kv->type > LFM2_GGUF_F64)
        return lfm2_set_error("%s: key '%s' has value type %" PRIu32 ", which is not a GGUF value type",
                              r->file, kv->key, kv->type);
    kv->off = r->pos;
    snprintf(r->what, sizeof r->what, "the value of key '%.120s'", kv->key);
    if (kv->type == LFM2_GGUF_STRING) {
        const char *s;
        size_t len;
        return rd_str(r, &s, &len);
    }
    if (kv->type != LFM2_GGUF_ARRAY) {
        if (need(r, gtype_size(kv->type)))
            return -1;
        r->pos += gtype_size(kv->type);
        return 0;
    }
    snprintf(r->what, sizeof r->what, "the array header of key '%.120s'", kv->key);
    if (rd_u32(r, &kv->elem_type) || rd_u64(r, &kv->n))
        return -1;
    snprintf(r->what, sizeof r->what, "key '%.120s'", kv->key);
    if (check_array_header(r, kv->elem_type, kv->n, kv->key, 0))
        return -1;
    kv->data_off = r->pos;
    if (kv->elem_type == LFM2_GGUF_STRING) {
        /* index every string once, so arr_str() is O(1) (token lists have 65536 entries) */
        kv->str_off = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->str_off);
        if (!kv->str_off)
            return lfm2_set_error("%s: out of memory indexing key '%s'", r->file, kv->key);
        for (uint64_t i = 0; i < kv->n; i++) {
            const char *s;
            size_t len;
            r->elem = (int64_t)i;
            kv->str_off[i] = r->pos;
            if (rd_str(r, &s, &len))
                return -1;
        }
        r->elem = -1;
        return 0;
    }
    int rc = skip_array(r, kv->elem_type, kv->n, kv->key, 0);
    r->elem = -1;
    return rc;
}

static int read_tensor_info(lfm2_gguf *g, reader *r, int64_t idx)
{
    lfm2_tensor *t = &g->tensors[idx];
    const char *name;
    size_t nlen;
    snprintf(r->what, sizeof r->what, "the name of tensor %" PRId64, idx);
    if (rd_str(r, &name, &nlen))
        return -1;
    if (memchr(name, 0, nlen))
        return lfm2_set_error("%s: the name of tensor %" PRId64 " contains a NUL byte", r->file, idx);
    char *copy = malloc(nlen + 1);
    if (!copy)
        return lfm2_set_error("%s: out of memory", r->file);
    memcpy(copy, name, nlen);
    copy[nlen] = '\0';
    t->name = copy;

    snprintf(r->what, sizeof r->what, "the dimensions of tensor '%.120s'", t->name);
    uint32_t n_dims;
    if (rd_u32(r, &n_dims))
        return -1;
    if (n_dims < 1 || n_dims > LFM2_MAX_DIMS)
        return lfm2_set_error("%s: tensor '%s' has %" PRIu32 " dimensions (must be 1 to %d)",
                              r->file, t->name, n_dims, LFM2_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < LFM2_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if (rd_u64(r, &ne))
            return -1;
        if (ne == 0)
            return lfm2_set_error("%s: tensor '%s' has size 0 in dimension %" PRIu32,
                                  r->file, t->name, d);
        if (ne > (uint64_t)INT64_MAX)
            return lfm2_set_error("%s: tensor '%s' has size %" PRIu64 " in dimension %" PRIu32
                                  ", which is too large", r->file, t->name, ne, d);
        t->ne[d] = (int64_t)ne;
    }

    snprintf(r->what, sizeof r->what, "the type of tensor '%.120s'", t->name);
    uint32_t type;
    if (rd_u32(r, &type))
        return -1;
    if (!lfm2_type_supported(type)) {
        const char *nm = lfm2_type_name(type);
        char what[48];
        if (strncmp(nm, "type ", 5) == 0)
            snprintf(what, sizeof what, "unknown type id %" PRIu32, type);
        else
            snprintf(what, sizeof what, "type %s (%" PRIu32 ")", nm, type);
        return lfm2_set_error("%s: tensor '%s' has %s, which lfm2 does not support "
                              "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)",
                              r->file, t->name, what);
    }
    t->type = (enum lfm2_type)type;

    snprintf(r->what, sizeof r->what, "the data offset of tensor '%.120s'", t->name);
    uint64_t off;
    if (rd_u64(r, &off))
        return -1;
    if (off > (uint64_t)SIZE_MAX)
        return lfm2_set_error("%s: tensor '%s' has data offset %" PRIu64 ", past the end of the file",
                              r->file, t->name, off);
    g->tensor_off[idx] = (size_t)off;

    /* shape → bytes, every product overflow-checked */
    int be = lfm2_type_block_elems(t->type);
    if (t->ne[0] % be != 0)
        return lfm2_set_error("%s: tensor '%s' has %" PRId64 " elements per row, not a multiple of "
                              "the %s block size %d", r->file, t->name, t->ne[0], lfm2_type_name(type), be);
    int64_t nel = t->ne[0];
    for (int d = 1; d < LFM2_MAX_DIMS; d++)
        if (__builtin_mul_overflow(nel, t->ne[d], &nel))
            return lfm2_set_error("%s: tensor '%s' has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                                  "] whose element count overflows", r->file, t->name,
                                  t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    size_t bytes = lfm2_row_bytes(t->type, t->ne[0]);
    t->nb1 = bytes;
    for (int d = 1; d < LFM2_MAX_DIMS; d++)
        if (!lfm2_mul_ok(bytes, (size_t)t->ne[d], &bytes))
            return lfm2_set_error("%s: tensor '%s': its size in bytes overflows", r->file, t->name);
    t->nbytes = bytes;
    return 0;
}

static int check_overlaps(lfm2_gguf *g)
{
    if (g->n_tensors < 2)
        return 0;
    int64_t *order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order)
        return lfm2_set_error("%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++)
        order[i] = i;
    /* bottom-up merge sort of tensor indices by offset (qsort has no context pointer) */
    int64_t *tmp = malloc((size_t)g->n_tensors * sizeof *tmp);
    if (!tmp) {
        free(order);
        return lfm2_set_error("%s: out of memory", g->path);
    }
    int64_t n = g->n_tensors;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = g->tensor_off[order[b]] < g->tensor_off[order[a]] ? order[b++] : order[a++];
            while (a < mid)
                tmp[k++] = order[a++];
            while (b < hi)
                tmp[k++] = order[b++];
        }
        int64_t *sw = order;
        order = tmp;
        tmp = sw;
    }
    int rc = 0;
    for (int64_t i = 1; i < n; i++) {
        const lfm2_tensor *p = &g->tensors[order[i - 1]], *q = &g->tensors[order[i]];
        size_t pe = g->tensor_off[order[i - 1]] + p->nbytes;   /* in range: checked before */
        if (pe > g->tensor_off[order[i]]) {
            rc = lfm2_set_error("%s: tensor '%s' data [%zu, %zu) overlaps tensor '%s' data [%zu, %zu)",
                                g->path, q->name, g->data_offset + g->tensor_off[order[i]],
                                g->data_offset + g->tensor_off[order[i]] + q->nbytes, p->name,
                                g->data_offset + g->tensor_off[order[i - 1]], g->data_offset + pe);
            break;
        }
    }
    free(order);
    free(tmp);
    return rc;
}

static int parse(lfm2_gguf *g)
{
    reader r = { .p = g->base, .size = g->size, .pos = 0, .file = g->path, .elem = -1 };

    snprintf(r.what, sizeof r.what, "the magic number");
    if (need(&r, 4))
        return -1;
    if (memcmp(g->base, "GGUF", 4) != 0)
        return lfm2_set_error("%s: not a GGUF file (bad magic %02x %02x %02x %02x, expected \"GGUF\")",
                              g->path, g->base[0], g->base[1], g->base[2], g->base[3]);
    r.pos = 4;
    snprintf(r.what, sizeof r.what, "the version");
    if (rd_u32(&r, &g->version))
        return -1;
    if (g->version != 2 && g->version != 3) {
        if (g->version > 0xffff && (g->version & 0xffff) == 0)
            return lfm2_set_error("%s: GGUF version %" PRIu32 " looks byte-swapped (a big-endian file?); "
                                  "only little-endian v2/v3 files are supported", g->path, g->version);
        return lfm2_set_error("%s: unsupported GGUF version %" PRIu32 " (supported: 2, 3)", g->path, g->version);
    }
    uint64_t n_tensors, n_kv;
    snprintf(r.what, sizeof r.what, "the tensor count");
    if (rd_u64(&r, &n_tensors))
        return -1;
    snprintf(r.what, sizeof r.what, "the metadata count");
    if (rd_u64(&r, &n_kv))
        return -1;
    /* each entry takes at least 13 (KV) or 32 (tensor info) bytes: bound the counts by the
     * file size before allocating anything for them (a merely truncated file gets to the read
     * that runs out, whose message says where) */
    if (n_kv > r.size / 13 || n_kv > GGUF_MAX_ENTRIES)
        return lfm2_set_error("%s: metadata count %" PRIu64 " is impossible for a file of %zu bytes (truncated or corrupt)",
                              g->path, n_kv, g->size);
    if (n_tensors > r.size / 32 || n_tensors > GGUF_MAX_ENTRIES)
        return lfm2_set_error("%s: tensor count %" PRIu64 " is impossible for a file of %zu bytes (truncated or corrupt)",
                              g->path, n_tensors, g->size);

    g->n_kv = (int64_t)n_kv;
    g->kv = calloc((size_t)n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    if (!g->kv || map_init(&g->kv_map, n_kv))
        return lfm2_set_error("%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_kv; i++) {
        if (read_kv(g, &r, i))
            return -1;
        uint32_t *slot = map_slot(&g->kv_map, g->kv[i].key, strlen(g->kv[i].key), kv_name_at, g->kv);
        if (*slot)
            return lfm2_set_error("%s: duplicate key '%s' (metadata entries %" PRIu32 " and %" PRId64 ")",
                                  g->path, g->kv[i].key, *slot - 1, i);
        *slot = (uint32_t)i + 1;
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (lfm2_gguf_find_key(g, "general.alignment") >= 0) {
        int64_t a;
        if (lfm2_gguf_get_int(g, "general.alignment", &a) != 1)
            return -1;
        if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 30))
            return lfm2_set_error("%s: general.alignment is %" PRId64 "; it must be a power of two "
                                  "(and at most 2^30)", g->path, a);
        g->alignment = (size_t)a;
    }

    g->n_tensors = (int64_t)n_tensors;
    g->tensors = calloc((size_t)n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->tensor_off = calloc((size_t)n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensor_off);
    if (!g->tensors || !g->tensor_off || map_init(&g->tensor_map, n_tensors))
        return lfm2_set_error("%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        if (read_tensor_info(g, &r, i))
            return -1;
        const char *nm = g->tensors[i].name;
        uint32_t *slot = map_slot(&g->tensor_map, nm, strlen(nm), tensor_name_at, g->tensors);
        if (*slot)
            return lfm2_set_error("%s: duplicate tensor name '%s' (tensors %" PRIu32 " and %" PRId64 ")",
                                  g->path, nm, *slot - 1, i);
        *slot = (uint32_t)i + 1;
    }

    /* the data section starts at the next multiple of the alignment after the header */
    size_t ds = r.pos;
    if (!lfm2_add_ok(ds, g->alignment - 1, &ds))
        return lfm2_set_error("%s: data section offset overflows", g->path);
    ds &= ~(g->alignment - 1);
    g->data_offset = ds;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lfm2_tensor *t = &g->tensors[i];
        size_t off = g->tensor_off[i];
        if (off % g->alignment != 0)
            return lfm2_set_error("%s: tensor '%s' has data offset %zu, not a multiple of the alignment %zu",
                                  g->path, t->name, off, g->alignment);
        size_t start, end;
        if (!lfm2_add_ok(ds, off, &start) || !lfm2_add_ok(start, t->nbytes, &end) || end > g->size) {
            if (!lfm2_add_ok(ds, off, &start))
                return lfm2_set_error("%s: tensor '%s': data offset %zu lies past the end of the file "
                                      "(%zu bytes)", g->path, t->name, off, g->size);
            return lfm2_set_error("%s: tensor '%s': data [%zu, %zu) lies past the end of the file (%zu bytes)",
                                  g->path, t->name, start, start + (t->nbytes > SIZE_MAX - start ? 0 : t->nbytes),
                                  g->size);
        }
        t->data = g->base + start;
    }
    return check_overlaps(g);
}

/* ---- open / close ---------------------------------------------------------------------------- */

static lfm2_gguf *new_gguf(const char *name)
{
    lfm2_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    g->path = strdup(name ? name : "<memory>");
    if (!g->path) {
        free(g);
        lfm2_set_error("out of memory");
        return NULL;
    }
    return g;
}

lfm2_gguf *lfm2_gguf_open_memory(const void *data, size_t size, const char *name)
{
    lfm2_gguf *g = new_gguf(name);
    if (!g)
        return NULL;
    static const uint8_t empty[1];
    g->base = data ? data : empty;
    g->size = data ? size : 0;
    if (parse(g)) {
        lfm2_gguf_close(g);
        return NULL;
    }
    return g;
}

lfm2_gguf *lfm2_gguf_open(const char *path, bool use_mmap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lfm2_set_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        lfm2_set_error("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    lfm2_gguf *g = new_gguf(path);
    if (!g) {
        close(fd);
        return NULL;
    }
    g->size = (size_t)st.st_size;
    if (g->size == 0) {
        lfm2_set_error("%s: empty file (0 bytes)", path);
        goto fail;
    }
    if (use_mmap) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            lfm2_set_error("%s: mmap failed: %s", path, strerror(errno));
            goto fail;
        }
        g->map = m;
        g->base = m;
    } else {
        /* aligned so tensor data (aligned within the file) is aligned in memory too */
        uint8_t *buf = lfm2_alloc_aligned(g->size);
        if (!buf) {
            lfm2_prefix_error("%s", path);
            goto fail;
        }
        g->owned = buf;
        g->base = buf;
        size_t got = 0;
        while (got < g->size) {
            ssize_t k = pread(fd, buf + got, g->size - got, (off_t)got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                lfm2_set_error("%s: read failed at byte %zu: %s", path, got, k < 0 ? strerror(errno) : "unexpected end");
                goto fail;
            }
            got += (size_t)k;
        }
    }
    close(fd);
    fd = -1;
    if (parse(g))
        goto fail;
    return g;
fail:
    if (fd >= 0)
        close(fd);
    lfm2_gguf_close(g);
    return NULL;
}

void lfm2_gguf_close(lfm2_gguf *g)
{
    if (!g)
        return;
    if (g->kv) {
        for (int64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].str_off);
        }
        free(g->kv);
    }
    if (g->tensors) {
        for (int64_t i = 0; i < g->n_tensors; i++)
            free((char *)g->tensors[i].name);
        free(g->tensors);
    }
    free(g->tensor_off);
    free(g->kv_map.slots);
    free(g->tensor_map.slots);
    if (g->map)
        munmap(g->map, g->size);
    lfm2_free_aligned(g->owned);
    free(g->path);
    free(g);
}

/* ---- accessors ---------------------------------------------------------------------------- */

const char *lfm2_gguf_path(const lfm2_gguf *g) { return g->path; }
uint32_t lfm2_gguf_version(const lfm2_gguf *g) { return g->version; }
size_t lfm2_gguf_file_size(const lfm2_gguf *g) { return g->size; }
size_t lfm2_gguf_alignment(const lfm2_gguf *g) { return g->alignment; }
size_t lfm2_gguf_data_offset(const lfm2_gguf *g) { return g->data_offset; }
int64_t lfm2_gguf_n_kv(const lfm2_gguf *g) { return g->n_kv; }
int64_t lfm2_gguf_n_tensors(const lfm2_gguf *g) { return g->n_tensors; }

const char *lfm2_gguf_kv_key(const lfm2_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? g->kv[i].key : NULL;
}

enum lfm2_gguf_type lfm2_gguf_kv_type(const lfm2_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? (enum lfm2_gguf_type)g->kv[i].type : LFM2_GGUF_U8;
}

int64_t lfm2_gguf_find_key(const lfm2_gguf *g, const char *key)
{
    if (!g->kv_map.slots || !key)
        return -1;
    uint32_t *s = map_slot(&g->kv_map, key, strlen(key), kv_name_at, g->kv);
    return *s ? (int64_t)*s - 1 : -1;
}

const lfm2_tensor *lfm2_gguf_tensor(const lfm2_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const lfm2_tensor *lfm2_gguf_find_tensor(const lfm2_gguf *g, const char *name)
{
    if (!g->tensor_map.slots || !name)
        return NULL;
    uint32_t *s = map_slot(&g->tensor_map, name, strlen(name), tensor_name_at, g->tensors);
    return *s ? &g->tensors[*s - 1] : NULL;
}

/* Reads one fixed-size integer value of type t at p. Returns 0, or -1 if a u64 is > INT64_MAX. */
static int load_int(uint32_t t, const uint8_t *p, int64_t *out)
{
    switch (t) {
    case LFM2_GGUF_U8: *out = p[0]; return 0;
    case LFM2_GGUF_I8: *out = (int8_t)p[0]; return 0;
    case LFM2_GGUF_BOOL: *out = p[0] != 0; return 0;
    case LFM2_GGUF_U16: *out = ld16(p); return 0;
    case LFM2_GGUF_I16: *out = (int16_t)ld16(p); return 0;
    case LFM2_GGUF_U32: *out = ld32(p); return 0;
    case LFM2_GGUF_I32: *out = (int32_t)ld32(p); return 0;
    case LFM2_GGUF_I64: *out = (int64_t)ld64(p); return 0;
    case LFM2_GGUF_U64: {
        uint64_t v = ld64(p);
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    default:
        return -1;
    }
}

static double load_float(uint32_t t, const uint8_t *p)
{
    if (t == LFM2_GGUF_F32) {
        uint32_t u = ld32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = ld64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static const gguf_kv *find_kv(const lfm2_gguf *g, const char *key)
{
    int64_t i = lfm2_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

int lfm2_gguf_get_int(const lfm2_gguf *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (!gtype_is_int(kv->type))
        return lfm2_set_error("%s: key '%s' has type %s, expected an integer", g->path, key,
                              lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type));
    if (load_int(kv->type, g->base + kv->off, out))
        return lfm2_set_error("%s: key '%s': value %" PRIu64 " is out of range", g->path, key,
                              ld64(g->base + kv->off));
    return 1;
}

int lfm2_gguf_get_int_range(const lfm2_gguf *g, const char *key, int64_t lo, int64_t hi,
                            bool required, int64_t *out)
{
    int64_t v;
    const int r = lfm2_gguf_get_int(g, key, &v);
    if (r < 0)
        return -1;
    if (r == 0)
        return required ? lfm2_set_error("%s: required key '%s' is missing", g->path, key) : 0;
    if (v < lo || v > hi)
        return lfm2_set_error("%s: key '%s' = %lld is outside %lld..%lld", g->path, key,
                              (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return 1;
}

int lfm2_gguf_get_f32(const lfm2_gguf *g, const char *key, float *out)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != LFM2_GGUF_F32 && kv->type != LFM2_GGUF_F64)
        return lfm2_set_error("%s: key '%s' has type %s, expected f32", g->path, key,
                              lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type));
    *out = (float)load_float(kv->type, g->base + kv->off);
    return 1;
}

int lfm2_gguf_get_bool(const lfm2_gguf *g, const char *key, bool *out)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != LFM2_GGUF_BOOL)
        return lfm2_set_error("%s: key '%s' has type %s, expected bool", g->path, key,
                              lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type));
    *out = g->base[kv->off] != 0;
    return 1;
}

const char *lfm2_gguf_get_str(const lfm2_gguf *g, const char *key, size_t *len)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != LFM2_GGUF_STRING)
        return NULL;
    if (len)
        *len = (size_t)ld64(g->base + kv->off);
    return (const char *)g->base + kv->off + 8;
}

int lfm2_gguf_get_str_buf(const lfm2_gguf *g, const char *key, char *buf, size_t cap)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != LFM2_GGUF_STRING)
        return lfm2_set_error("%s: key '%s' has type %s, expected string", g->path, key,
                              lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type));
    size_t len;
    const char *s = lfm2_gguf_get_str(g, key, &len);
    if (len >= cap)
        return lfm2_set_error("%s: key '%s': string of %zu bytes does not fit a %zu-byte buffer",
                              g->path, key, len, cap);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 1;
}

int lfm2_gguf_get_arr(const lfm2_gguf *g, const char *key, enum lfm2_gguf_type *elem_type, uint64_t *n)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != LFM2_GGUF_ARRAY)
        return lfm2_set_error("%s: key '%s' has type %s, expected an array", g->path, key,
                              lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type));
    if (elem_type)
        *elem_type = (enum lfm2_gguf_type)kv->elem_type;
    if (n)
        *n = kv->n;
    return 1;
}

const void *lfm2_gguf_arr_data(const lfm2_gguf *g, const char *key)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != LFM2_GGUF_ARRAY || !gtype_size(kv->elem_type))
        return NULL;
    return g->base + kv->data_off;
}

const char *lfm2_gguf_arr_str(const lfm2_gguf *g, const char *key, uint64_t i, size_t *len)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != LFM2_GGUF_ARRAY || kv->elem_type != LFM2_GGUF_STRING || i >= kv->n)
        return NULL;
    size_t off = kv->str_off[i];
    if (len)
        *len = (size_t)ld64(g->base + off);
    return (const char *)g->base + off + 8;
}

int lfm2_gguf_get_int_arr(const lfm2_gguf *g, const char *key, int64_t *out, size_t n)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (gtype_is_int(kv->type)) {   /* scalar: one value for every layer */
        int64_t v;
        if (lfm2_gguf_get_int(g, key, &v) != 1)
            return -1;
        for (size_t i = 0; i < n; i++)
            out[i] = v;
        return 1;
    }
    if (kv->type != LFM2_GGUF_ARRAY || !gtype_is_int(kv->elem_type))
        return lfm2_set_error("%s: key '%s' has type %s%s%s, expected an integer or an integer array",
                              g->path, key, lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type),
                              kv->type == LFM2_GGUF_ARRAY ? " of " : "",
                              kv->type == LFM2_GGUF_ARRAY ? lfm2_gguf_type_name((enum lfm2_gguf_type)kv->elem_type) : "");
    if (kv->n != n)
        return lfm2_set_error("%s: key '%s' has %" PRIu64 " elements, expected %zu", g->path, key, kv->n, n);
    size_t es = gtype_size(kv->elem_type);
    for (size_t i = 0; i < n; i++)
        if (load_int(kv->elem_type, g->base + kv->data_off + i * es, &out[i]))
            return lfm2_set_error("%s: key '%s': element %zu is out of range", g->path, key, i);
    return 1;
}

int lfm2_gguf_get_f32_arr(const lfm2_gguf *g, const char *key, float *out, size_t n)
{
    const gguf_kv *kv = find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type == LFM2_GGUF_F32 || kv->type == LFM2_GGUF_F64) {
        float v = (float)load_float(kv->type, g->base + kv->off);
        for (size_t i = 0; i < n; i++)
            out[i] = v;
        return 1;
    }
    if (kv->type != LFM2_GGUF_ARRAY || (kv->elem_type != LFM2_GGUF_F32 && kv->elem_type != LFM2_GGUF_F64))
        return lfm2_set_error("%s: key '%s' has type %s%s%s, expected f32 or an f32 array",
                              g->path, key, lfm2_gguf_type_name((enum lfm2_gguf_type)kv->type),
                              kv->type == LFM2_GGUF_ARRAY ? " of " : "",
                              kv->type == LFM2_GGUF_ARRAY ? lfm2_gguf_type_name((enum lfm2_gguf_type)kv->elem_type) : "");
    if (kv->n != n)
        return lfm2_set_error("%s: key '%s' has %" PRIu64 " elements, expected %zu", g->path, key, kv->n, n);
    size_t es = gtype_size(kv->elem_type);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)load_float(kv->elem_type, g->base + kv->data_off + i * es);
    return 1;
}

/* ---- formatting for `lfm2 info` ---------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, len;
} strbuf;

static void sb_put(strbuf *sb, const char *s, size_t n)
{
    if (sb->cap == 0)
        return;
    size_t room = sb->cap - 1 - sb->len;
    if (n > room)
        n = room;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void sb_printf(strbuf *sb, const char *fmt, ...) LFM2_PRINTF(2, 3);
static void sb_printf(strbuf *sb, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(sb, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A quoted string with control characters escaped, cut after max_chars bytes. */
static void sb_quoted(strbuf *sb, const char *s, size_t len, size_t max_chars)
{
    sb_put(sb, "\"", 1);
    size_t n = len < max_chars ? len : max_chars;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') sb_put(sb, "\\n", 2);
        else if (c == '\t') sb_put(sb, "\\t", 2);
        else if (c == '\r') sb_put(sb, "\\r", 2);
        else if (c == '"' || c == '\\') { sb_put(sb, "\\", 1); sb_put(sb, (const char *)&c, 1); }
        else if (c < 0x20 || c == 0x7f) sb_printf(sb, "\\x%02x", c);
        else sb_put(sb, (const char *)&c, 1);
    }
    sb_put(sb, "\"", 1);
    if (len > n)
        sb_printf(sb, "… (%zu bytes)", len);
}

static void sb_scalar(strbuf *sb, uint32_t t, const uint8_t *p)
{
    switch (t) {
    case LFM2_GGUF_BOOL: sb_put(sb, p[0] ? "true" : "false", p[0] ? 4 : 5); break;
    case LFM2_GGUF_F32: case LFM2_GGUF_F64: sb_printf(sb, "%.9g", load_float(t, p)); break;
    case LFM2_GGUF_U64: sb_printf(sb, "%" PRIu64, ld64(p)); break;
    default: {
        int64_t v = 0;
        load_int(t, p, &v);
        sb_printf(sb, "%" PRId64, v);
    }
    }
}

void lfm2_gguf_kv_format(const lfm2_gguf *g, int64_t i, char *buf, size_t cap, size_t max_chars)
{
    strbuf sb = { buf, cap, 0 };
    if (cap)
        buf[0] = '\0';
    if (i < 0 || i >= g->n_kv)
        return;
    const gguf_kv *kv = &g->kv[i];
    const uint8_t *p = g->base + kv->off;
    if (kv->type == LFM2_GGUF_STRING) {
        sb_quoted(&sb, (const char *)p + 8, (size_t)ld64(p), max_chars);
        return;
    }
    if (kv->type != LFM2_GGUF_ARRAY) {
        sb_scalar(&sb, kv->type, p);
        return;
    }
    sb_printf(&sb, "[%s; %" PRIu64 "]", lfm2_gguf_type_name((enum lfm2_gguf_type)kv->elem_type), kv->n);
    size_t es = gtype_size(kv->elem_type);
    size_t start = sb.len;
    for (uint64_t k = 0; k < kv->n; k++) {
        if (sb.len - start >= max_chars) {
            sb_put(&sb, ", …", strlen(", …"));
            break;
        }
        sb_put(&sb, k ? ", " : " ", k ? 2 : 1);
        if (es) {
            sb_scalar(&sb, kv->elem_type, g->base + kv->data_off + k * es);
        } else if (kv->elem_type == LFM2_GGUF_STRING) {
            size_t len = 0;
            const char *s = lfm2_gguf_arr_str(g, kv->key, k, &len);
            sb_quoted(&sb, s ? s : "", len, max_chars);
        } else {
            sb_put(&sb, "[…]", strlen("[…]"));   /* nested arrays are not rendered */
            if (kv->n > 1)
                sb_put(&sb, ", …", strlen(", …"));
            break;
        }
    }
}

/* ---- require_tensor ------------------------------------------------------------------------- */

static void shape_str(char *buf, size_t cap, int n_dims, const int64_t *ne)
{
    strbuf sb = { buf, cap, 0 };
    buf[0] = '\0';
    sb_put(&sb, "[", 1);
    for (int d = 0; d < n_dims; d++) {
        if (d)
            sb_put(&sb, ", ", 2);
        if (ne[d] == 0)
            sb_put(&sb, "*", 1);
        else
            sb_printf(&sb, "%" PRId64, ne[d]);
    }
    sb_put(&sb, "]", 1);
}

const lfm2_tensor *lfm2_gguf_require_tensor(const lfm2_gguf *g, const char *name, int n_dims,
                                            const int64_t *ne, uint64_t types)
{
    const lfm2_tensor *t = lfm2_gguf_find_tensor(g, name);
    if (!t) {
        lfm2_set_error("%s: tensor '%s' is missing", g->path, name);
        return NULL;
    }
    if (types ? !(t->type < 64 && (types >> t->type) & 1) : !lfm2_type_supported(t->type)) {
        char want[256];
        strbuf sb = { want, sizeof want, 0 };
        want[0] = '\0';
        for (uint32_t k = 0; k < 64; k++)
            if ((types >> k) & 1) {
                if (sb.len)
                    sb_put(&sb, " or ", 4);
                const char *nm = lfm2_type_name(k);
                sb_put(&sb, nm, strlen(nm));
            }
        lfm2_set_error("%s: tensor '%s' has type %s, expected %s", g->path, name,
                       lfm2_type_name(t->type), types ? want : "a supported weight type");
        return NULL;
    }
    if (ne) {
        if (n_dims < 0 || n_dims > LFM2_MAX_DIMS)
            n_dims = LFM2_MAX_DIMS;
        bool ok = true;
        for (int d = 0; d < LFM2_MAX_DIMS; d++) {
            int64_t want = d < n_dims ? ne[d] : 1;   /* trailing dims must be 1 */
            if (want != 0 && t->ne[d] != want)
                ok = false;
        }
        if (!ok) {
            char have[128], want[128];
            shape_str(have, sizeof have, t->n_dims > n_dims ? t->n_dims : n_dims, t->ne);
            int64_t w[LFM2_MAX_DIMS] = { 1, 1, 1, 1 };
            for (int d = 0; d < n_dims; d++)
                w[d] = ne[d];
            shape_str(want, sizeof want, n_dims, w);
            lfm2_set_error("%s: tensor '%s' has shape %s, expected %s", g->path, name, have, want);
            return NULL;
        }
    }
    return t;
}
