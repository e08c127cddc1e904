/* test-gguf.c — the GGUF reader and writer.
 *
 * Files are built byte by byte here (independently of the engine's writer), so every value
 * type, nested arrays and every corruption can be produced exactly:
 *   - round trip of every KV type through the reader (memory, mmap and read() paths);
 *   - writer → reader round trip of everything the writer API can set, and its layout;
 *   - the fixture models open and list the expected tensors, types and metadata;
 *   - corrupted files (truncation at every header byte and across the data, bad magic and
 *     version, huge counts and lengths, array bombs, bad offsets, overlaps, bad shapes,
 *     unsupported types, bad alignment, duplicates) fail with a specific message, no crash.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "lfm2-gguf.h"
#include "lfm2.h"
#include "quants.h"

#include "lfm2-test.h"

/* ---- byte builder ------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u16(buf *b, uint16_t v) { u8(b, (uint8_t)v); u8(b, (uint8_t)(v >> 8)); }
static void u32(buf *b, uint32_t v) { u16(b, (uint16_t)v); u16(b, (uint16_t)(v >> 16)); }
static void u64(buf *b, uint64_t v) { u32(b, (uint32_t)v); u32(b, (uint32_t)(v >> 32)); }
static void f32(buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); u32(b, u); }
static void f64(buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); u64(b, u); }
static void strn(buf *b, const char *s, size_t n) { u64(b, n); put(b, s, n); }
static void str(buf *b, const char *s) { strn(b, s, strlen(s)); }
static void set32(buf *b, size_t off, uint32_t v) { for (int i = 0; i < 4; i++) b->p[off + i] = (uint8_t)(v >> (8 * i)); }
static void set64(buf *b, size_t off, uint64_t v) { for (int i = 0; i < 8; i++) b->p[off + i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const buf *b, size_t off)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b->p[off + i] << (8 * i);
    return v;
}

/* ---- the reference file ---------------------------------------------------------------------- */

enum { MAX_T = 8, MAX_KV = 32 };

typedef struct {
    int dup_key, dup_tensor, nul_key;
    int nest_depth;             /* > 0: add a key with arrays nested this deep */
    uint32_t alignment;         /* 0: no general.alignment key (32) */
    int alignment_as_str;
    int no_tensors;
} opts;

typedef struct {
    size_t off_version, off_n_tensors, off_n_kv;
    int n_kv;
    size_t kv_key[MAX_KV];      /* offset of the key's length field */
    size_t kv_type[MAX_KV];     /* offset of the value type field */
    int n_t;
    size_t t_name[MAX_T], t_ndims[MAX_T], t_ne[MAX_T], t_type[MAX_T], t_off[MAX_T];
    size_t t_rel[MAX_T], t_bytes[MAX_T];
    size_t header_end, data_start, data_end;
    size_t align;
} layout;

typedef struct {
    const char *name;
    enum lfm2_type type;
    int n_dims;
    int64_t ne[4];
} tdesc;

static const tdesc k_tensors[] = {
    { "t.f32", LFM2_TYPE_F32, 2, { 8, 3 } },
    { "t.q8", LFM2_TYPE_Q8_0, 2, { 64, 2 } },
    { "t.q4k", LFM2_TYPE_Q4_K, 2, { 256, 1 } },
    { "t.f16", LFM2_TYPE_F16, 1, { 4 } },
    { "t.bf16", LFM2_TYPE_BF16, 3, { 2, 2, 2 } },
    { "t.q6k", LFM2_TYPE_Q6_K, 4, { 256, 1, 1, 2 } },
};
#define N_TENSORS ((int)(sizeof k_tensors / sizeof k_tensors[0]))

static const char *const k_strs[] = { "alpha", "", "ünïcödé ✓", "x y" };

static void kv_begin(buf *b, layout *L, const char *key, uint32_t type)
{
    L->kv_key[L->n_kv] = b->len;
    str(b, key);
    L->kv_type[L->n_kv] = b->len;
    L->n_kv++;
    u32(b, type);
}

static void nested(buf *b, int depth)
{
    /* an array of 2 arrays of … of 2 u16 */
    if (depth == 0) {
        u32(b, LFM2_GGUF_U16);
        u64(b, 2);
        u16(b, 7);
        u16(b, 9);
        return;
    }
    u32(b, LFM2_GGUF_ARRAY);
    u64(b, 2);
    nested(b, depth - 1);
    nested(b, depth - 1);
}

static buf build(const opts *o, layout *L)
{
    buf b = { 0 };
    memset(L, 0, sizeof *L);
    size_t align = o->alignment ? o->alignment : 32;
    L->align = align;
    put(&b, "GGUF", 4);
    L->off_version = b.len;
    u32(&b, 3);
    L->off_n_tensors = b.len;
    u64(&b, 0);
    L->off_n_kv = b.len;
    u64(&b, 0);

    kv_begin(&b, L, "general.architecture", LFM2_GGUF_STRING); str(&b, "lfm2");
    kv_begin(&b, L, "v.u8", LFM2_GGUF_U8); u8(&b, 200);
    kv_begin(&b, L, "v.i8", LFM2_GGUF_I8); u8(&b, (uint8_t)-5);
    kv_begin(&b, L, "v.u16", LFM2_GGUF_U16); u16(&b, 60000);
    kv_begin(&b, L, "v.i16", LFM2_GGUF_I16); u16(&b, (uint16_t)-30000);
    kv_begin(&b, L, "v.u32", LFM2_GGUF_U32); u32(&b, 4000000000u);
    kv_begin(&b, L, "v.i32", LFM2_GGUF_I32); u32(&b, (uint32_t)-123456);
    kv_begin(&b, L, "v.f32", LFM2_GGUF_F32); f32(&b, 1e-5f);
    kv_begin(&b, L, "v.bool", LFM2_GGUF_BOOL); u8(&b, 1);
    kv_begin(&b, L, "v.u64", LFM2_GGUF_U64); u64(&b, 1ull << 40);
    kv_begin(&b, L, "v.u64big", LFM2_GGUF_U64); u64(&b, UINT64_MAX);
    kv_begin(&b, L, "v.i64", LFM2_GGUF_I64); u64(&b, (uint64_t)-(1ll << 50));
    kv_begin(&b, L, "v.f64", LFM2_GGUF_F64); f64(&b, 0.125);
    kv_begin(&b, L, "v.str", LFM2_GGUF_STRING); str(&b, "line1\nline2 \"q\"");
    kv_begin(&b, L, "a.i32", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_I32); u64(&b, 4);
    for (int i = 0; i < 4; i++) u32(&b, (uint32_t)(i == 2 ? -7 : i * 10));
    kv_begin(&b, L, "a.u8", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_U8); u64(&b, 3);
    u8(&b, 1); u8(&b, 2); u8(&b, 255);
    kv_begin(&b, L, "a.f32", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_F32); u64(&b, 3);
    f32(&b, 0.5f); f32(&b, -2.f); f32(&b, 3.25f);
    kv_begin(&b, L, "a.f64", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_F64); u64(&b, 2);
    f64(&b, 1.5); f64(&b, -0.25);
    kv_begin(&b, L, "a.bool", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_BOOL); u64(&b, 2);
    u8(&b, 0); u8(&b, 1);
    kv_begin(&b, L, "a.str", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_STRING); u64(&b, 4);
    for (int i = 0; i < 4; i++) str(&b, k_strs[i]);
    kv_begin(&b, L, "a.empty", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_I32); u64(&b, 0);
    kv_begin(&b, L, "a.nested", LFM2_GGUF_ARRAY); nested(&b, 1);
    kv_begin(&b, L, "a.strs.nested", LFM2_GGUF_ARRAY); u32(&b, LFM2_GGUF_ARRAY); u64(&b, 2);
    u32(&b, LFM2_GGUF_STRING); u64(&b, 1); str(&b, "in");
    u32(&b, LFM2_GGUF_STRING); u64(&b, 0);
    if (o->nest_depth) {
        kv_begin(&b, L, "a.deep", LFM2_GGUF_ARRAY);
        for (int d = 0; d < o->nest_depth; d++) {
            u32(&b, LFM2_GGUF_ARRAY);
            u64(&b, 1);
        }
        u32(&b, LFM2_GGUF_U8);
        u64(&b, 0);
    }
    if (o->alignment) {
        if (o->alignment_as_str) {
            kv_begin(&b, L, "general.alignment", LFM2_GGUF_STRING); str(&b, "32");
        } else {
            kv_begin(&b, L, "general.alignment", LFM2_GGUF_U32); u32(&b, o->alignment);
        }
    }
    if (o->dup_key) {
        kv_begin(&b, L, "v.u8", LFM2_GGUF_U8); u8(&b, 1);
    }
    if (o->nul_key) {
        L->kv_key[L->n_kv] = b.len;
        strn(&b, "bad\0key", 7);
        L->kv_type[L->n_kv++] = b.len;
        u32(&b, LFM2_GGUF_U8);
        u8(&b, 0);
    }

    size_t rel = 0;
    int nt = o->no_tensors ? 0 : N_TENSORS + (o->dup_tensor ? 1 : 0);
    for (int i = 0; i < nt; i++) {
        const tdesc *t = &k_tensors[i < N_TENSORS ? i : 0];
        L->t_name[i] = b.len;
        str(&b, t->name);
        L->t_ndims[i] = b.len;
        u32(&b, (uint32_t)t->n_dims);
        L->t_ne[i] = b.len;
        for (int d = 0; d < t->n_dims; d++)
            u64(&b, (uint64_t)t->ne[d]);
        L->t_type[i] = b.len;
        u32(&b, t->type);
        L->t_off[i] = b.len;
        u64(&b, rel);
        size_t nb = lfm2_row_bytes(t->type, t->ne[0]);
        for (int d = 1; d < t->n_dims; d++)
            nb *= (size_t)t->ne[d];
        L->t_rel[i] = rel;
        L->t_bytes[i] = nb;
        rel += (nb + align - 1) / align * align;
    }
    L->n_t = nt;
    L->header_end = b.len;
    while (b.len % align)
        u8(&b, 0);
    L->data_start = b.len;
    for (int i = 0; i < nt; i++) {
        while (b.len < L->data_start + L->t_rel[i])
            u8(&b, 0);
        const tdesc *t = &k_tensors[i < N_TENSORS ? i : 0];
        if (t->type == LFM2_TYPE_F32) {
            for (size_t k = 0; k < L->t_bytes[i] / 4; k++)
                f32(&b, (float)k * 0.5f - 3.f);
        } else {
            for (size_t k = 0; k < L->t_bytes[i]; k++)
                u8(&b, (uint8_t)(k * 7 + i));
        }
    }
    L->data_end = b.len;
    /* the last tensor is not padded: the file ends with its data, so every cut fails */
    set64(&b, L->off_n_kv, (uint64_t)L->n_kv);
    set64(&b, L->off_n_tensors, (uint64_t)nt);
    return b;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static char g_tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* Expects opening (memory, and — when via_file — a real file both ways) to fail with a
 * message containing `want` and the file's name. */
static void expect_fail(const char *what, const buf *b, size_t size, const char *want, int via_file)
{
    lfm2_gguf *g = lfm2_gguf_open_memory(b->p, size, "corrupt.gguf");
    CHECK(g == NULL, "%s: open succeeded on a corrupted file", what);
    if (g) {
        lfm2_gguf_close(g);
        return;
    }
    const char *e = lfm2_last_error();
    CHECK(strstr(e, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, e, want);
    CHECK(strncmp(e, "corrupt.gguf: ", 14) == 0, "%s: message \"%s\" does not start with the file name", what, e);
    if (via_file) {
        const char *p = tmp_path("corrupt.gguf");
        write_file(p, b->p, size);
        for (int m = 0; m < 2; m++) {
            g = lfm2_gguf_open(p, m == 0);
            CHECK(g == NULL, "%s: file open (mmap=%d) succeeded", what, m == 0);
            lfm2_gguf_close(g);
            if (!g) {
                CHECK(strstr(lfm2_last_error(), want) != NULL, "%s (file): \"%s\" lacks \"%s\"", what,
                      lfm2_last_error(), want);
                CHECK(strstr(lfm2_last_error(), p) != NULL, "%s (file): \"%s\" lacks the path", what,
                      lfm2_last_error());
            }
        }
        unlink(p);
    }
}

/* ---- reading every value type ----------------------------------------------------------------- */

static void check_reference(lfm2_gguf *g, const layout *L, const uint8_t *base, const char *how)
{
    int64_t v;
    float f;
    bool bo;
    CHECK(lfm2_gguf_version(g) == 3, "%s: version", how);
    CHECK(lfm2_gguf_n_kv(g) == L->n_kv, "%s: n_kv %" PRId64, how, lfm2_gguf_n_kv(g));
    CHECK(lfm2_gguf_n_tensors(g) == L->n_t, "%s: n_tensors", how);
    CHECK(lfm2_gguf_alignment(g) == 32 && lfm2_gguf_data_offset(g) == L->data_start, "%s: data offset %zu",
          how, lfm2_gguf_data_offset(g));
    CHECK(lfm2_gguf_get_int(g, "v.u8", &v) == 1 && v == 200, "%s: u8", how);
    CHECK(lfm2_gguf_get_int(g, "v.i8", &v) == 1 && v == -5, "%s: i8", how);
    CHECK(lfm2_gguf_get_int(g, "v.u16", &v) == 1 && v == 60000, "%s: u16", how);
    CHECK(lfm2_gguf_get_int(g, "v.i16", &v) == 1 && v == -30000, "%s: i16", how);
    CHECK(lfm2_gguf_get_int(g, "v.u32", &v) == 1 && v == 4000000000ll, "%s: u32", how);
    CHECK(lfm2_gguf_get_int(g, "v.i32", &v) == 1 && v == -123456, "%s: i32", how);
    CHECK(lfm2_gguf_get_int(g, "v.u64", &v) == 1 && v == 1ll << 40, "%s: u64", how);
    CHECK(lfm2_gguf_get_int(g, "v.i64", &v) == 1 && v == -(1ll << 50), "%s: i64", how);
    CHECK(lfm2_gguf_get_int(g, "v.bool", &v) == 1 && v == 1, "%s: bool as int", how);
    CHECK(lfm2_gguf_get_int(g, "v.u64big", &v) == -1 && strstr(lfm2_last_error(), "v.u64big"),
          "%s: u64 beyond int64 must be refused", how);
    CHECK(lfm2_gguf_get_int(g, "v.str", &v) == -1 && strstr(lfm2_last_error(), "'v.str' has type string"),
          "%s: string as int: %s", how, lfm2_last_error());
    CHECK(lfm2_gguf_get_int(g, "absent", &v) == 0, "%s: absent key", how);
    /* lfm2_gguf_get_int_range: in range, out of range, absent (optional / required), bad type */
    CHECK(lfm2_gguf_get_int_range(g, "v.i32", -200000, 0, true, &v) == 1 && v == -123456, "%s: range", how);
    v = 7;
    CHECK(lfm2_gguf_get_int_range(g, "v.u8", 0, 100, false, &v) == -1 && v == 7 &&
          strstr(lfm2_last_error(), "'v.u8' = 200 is outside 0..100"), "%s: out of range: %s", how,
          lfm2_last_error());
    CHECK(lfm2_gguf_get_int_range(g, "absent", 0, 1, false, &v) == 0 && v == 7, "%s: optional absent", how);
    CHECK(lfm2_gguf_get_int_range(g, "absent", 0, 1, true, &v) == -1 && v == 7 &&
          strstr(lfm2_last_error(), "required key 'absent' is missing"), "%s: required absent: %s", how,
          lfm2_last_error());
    CHECK(lfm2_gguf_get_int_range(g, "v.str", 0, 1, false, &v) == -1, "%s: range on a string", how);
    CHECK(lfm2_gguf_get_f32(g, "v.f32", &f) == 1 && f == 1e-5f, "%s: f32", how);
    CHECK(lfm2_gguf_get_f32(g, "v.f64", &f) == 1 && f == 0.125f, "%s: f64", how);
    CHECK(lfm2_gguf_get_f32(g, "v.u8", &f) == -1, "%s: u8 as f32", how);
    CHECK(lfm2_gguf_get_bool(g, "v.bool", &bo) == 1 && bo, "%s: bool", how);
    CHECK(lfm2_gguf_get_bool(g, "v.u8", &bo) == -1, "%s: u8 as bool", how);
    size_t len = 0;
    const char *s = lfm2_gguf_get_str(g, "v.str", &len);
    CHECK(s && len == 15 && memcmp(s, "line1\nline2 \"q\"", 15) == 0, "%s: string", how);
    CHECK(lfm2_gguf_get_str(g, "v.u8", &len) == NULL, "%s: get_str on u8", how);
    char sb[64], small[4];
    CHECK(lfm2_gguf_get_str_buf(g, "general.architecture", sb, sizeof sb) == 1 && strcmp(sb, "lfm2") == 0,
          "%s: str_buf", how);
    CHECK(lfm2_gguf_get_str_buf(g, "general.architecture", small, sizeof small) == -1, "%s: str_buf too small", how);

    enum lfm2_gguf_type et;
    uint64_t n;
    CHECK(lfm2_gguf_get_arr(g, "a.i32", &et, &n) == 1 && et == LFM2_GGUF_I32 && n == 4, "%s: arr header", how);
    CHECK(lfm2_gguf_get_arr(g, "v.u8", &et, &n) == -1, "%s: get_arr on scalar", how);
    int64_t iv[4];
    CHECK(lfm2_gguf_get_int_arr(g, "a.i32", iv, 4) == 1 && iv[0] == 0 && iv[1] == 10 && iv[2] == -7 && iv[3] == 30,
          "%s: int array", how);
    CHECK(lfm2_gguf_get_int_arr(g, "a.i32", iv, 3) == -1 && strstr(lfm2_last_error(), "has 4 elements, expected 3"),
          "%s: int array length mismatch: %s", how, lfm2_last_error());
    CHECK(lfm2_gguf_get_int_arr(g, "a.u8", iv, 3) == 1 && iv[2] == 255, "%s: u8 array", how);
    CHECK(lfm2_gguf_get_int_arr(g, "v.u16", iv, 4) == 1 && iv[0] == 60000 && iv[3] == 60000,
          "%s: scalar repeated per layer", how);
    CHECK(lfm2_gguf_get_int_arr(g, "a.f32", iv, 3) == -1, "%s: f32 array as ints", how);
    float fv[3];
    CHECK(lfm2_gguf_get_f32_arr(g, "a.f32", fv, 3) == 1 && fv[0] == 0.5f && fv[1] == -2.f && fv[2] == 3.25f,
          "%s: f32 array", how);
    CHECK(lfm2_gguf_get_f32_arr(g, "a.f64", fv, 2) == 1 && fv[0] == 1.5f && fv[1] == -0.25f, "%s: f64 array", how);
    CHECK(lfm2_gguf_get_f32_arr(g, "v.f32", fv, 3) == 1 && fv[2] == 1e-5f, "%s: scalar f32 repeated", how);
    const uint8_t *raw = lfm2_gguf_arr_data(g, "a.u8");
    CHECK(raw && raw[0] == 1 && raw[2] == 255, "%s: arr_data", how);
    CHECK(lfm2_gguf_arr_data(g, "a.str") == NULL && lfm2_gguf_arr_data(g, "a.nested") == NULL,
          "%s: arr_data of strings/arrays must be NULL", how);
    for (int i = 0; i < 4; i++) {
        s = lfm2_gguf_arr_str(g, "a.str", (uint64_t)i, &len);
        CHECK(s && len == strlen(k_strs[i]) && memcmp(s, k_strs[i], len) == 0, "%s: string element %d", how, i);
    }
    CHECK(lfm2_gguf_arr_str(g, "a.str", 4, &len) == NULL, "%s: string element out of range", how);
    CHECK(lfm2_gguf_get_arr(g, "a.empty", &et, &n) == 1 && n == 0, "%s: empty array", how);
    CHECK(lfm2_gguf_get_arr(g, "a.nested", &et, &n) == 1 && et == LFM2_GGUF_ARRAY && n == 2, "%s: nested", how);
    CHECK(lfm2_gguf_get_arr(g, "a.strs.nested", &et, &n) == 1 && et == LFM2_GGUF_ARRAY && n == 2,
          "%s: nested strings", how);

    /* keys in file order, types, lookups */
    for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++)
        CHECK(lfm2_gguf_find_key(g, lfm2_gguf_kv_key(g, i)) == i, "%s: find_key(%s)", how, lfm2_gguf_kv_key(g, i));
    CHECK(strcmp(lfm2_gguf_kv_key(g, 0), "general.architecture") == 0 && lfm2_gguf_kv_type(g, 0) == LFM2_GGUF_STRING,
          "%s: first key", how);
    CHECK(lfm2_gguf_kv_key(g, -1) == NULL && lfm2_gguf_kv_key(g, lfm2_gguf_n_kv(g)) == NULL, "%s: key range", how);

    /* formatting */
    char fb[256];
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "v.str"), fb, sizeof fb, 100);
    CHECK(strcmp(fb, "\"line1\\nline2 \\\"q\\\"\"") == 0, "%s: format string: %s", how, fb);
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "a.i32"), fb, sizeof fb, 100);
    CHECK(strcmp(fb, "[i32; 4] 0, 10, -7, 30") == 0, "%s: format array: %s", how, fb);
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "v.i8"), fb, sizeof fb, 100);
    CHECK(strcmp(fb, "-5") == 0, "%s: format i8: %s", how, fb);
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "v.bool"), fb, sizeof fb, 100);
    CHECK(strcmp(fb, "true") == 0, "%s: format bool: %s", how, fb);
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "v.str"), fb, sizeof fb, 3);
    CHECK(strncmp(fb, "\"lin\"…", strlen("\"lin\"…")) == 0, "%s: format cut: %s", how, fb);
    lfm2_gguf_kv_format(g, lfm2_gguf_find_key(g, "a.str"), fb, 12, 100);
    CHECK(strlen(fb) == 11, "%s: format respects the buffer size: %s", how, fb);

    /* tensors */
    for (int i = 0; i < L->n_t; i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        const tdesc *d = &k_tensors[i];
        CHECK(t && strcmp(t->name, d->name) == 0 && t->type == d->type && t->n_dims == d->n_dims,
              "%s: tensor %d", how, i);
        if (!t)
            continue;
        for (int k = 0; k < 4; k++)
            CHECK(t->ne[k] == (k < d->n_dims ? d->ne[k] : 1), "%s: %s ne[%d]", how, t->name, k);
        CHECK(t->nbytes == L->t_bytes[i] && t->nb1 == lfm2_row_bytes(d->type, d->ne[0]), "%s: %s sizes", how, t->name);
        CHECK((const uint8_t *)t->data == base + L->data_start + L->t_rel[i], "%s: %s data pointer", how, t->name);
        CHECK(lfm2_gguf_find_tensor(g, d->name) == t, "%s: find_tensor(%s)", how, d->name);
    }
    CHECK(lfm2_gguf_find_tensor(g, "nope") == NULL && lfm2_gguf_tensor(g, L->n_t) == NULL, "%s: absent tensor", how);
    const lfm2_tensor *t0 = lfm2_gguf_tensor(g, 0);
    CHECK(t0 && ((const float *)t0->data)[5] == -0.5f, "%s: F32 data", how);

    /* require_tensor */
    int64_t ne_ok[2] = { 64, 2 }, ne_any[2] = { 0, 2 }, ne_bad[2] = { 64, 3 };
    CHECK(lfm2_gguf_require_tensor(g, "t.q8", 2, ne_ok, 1u << LFM2_TYPE_Q8_0) != NULL, "%s: require ok", how);
    CHECK(lfm2_gguf_require_tensor(g, "t.q8", 2, ne_any, 0) != NULL, "%s: require wildcard", how);
    CHECK(lfm2_gguf_require_tensor(g, "t.q8", 2, NULL, 0) != NULL, "%s: require any shape", how);
    CHECK(lfm2_gguf_require_tensor(g, "t.q8", 2, ne_bad, 0) == NULL &&
          strstr(lfm2_last_error(), "tensor 't.q8' has shape [64, 2], expected [64, 3]"),
          "%s: require shape: %s", how, lfm2_last_error());
    CHECK(lfm2_gguf_require_tensor(g, "t.q8", 2, ne_ok, 1u << LFM2_TYPE_F32 | 1u << LFM2_TYPE_F16) == NULL &&
          strstr(lfm2_last_error(), "tensor 't.q8' has type Q8_0, expected F32 or F16"),
          "%s: require type: %s", how, lfm2_last_error());
    CHECK(lfm2_gguf_require_tensor(g, "missing.weight", 2, ne_ok, 0) == NULL &&
          strstr(lfm2_last_error(), "tensor 'missing.weight' is missing"), "%s: require missing", how);
    int64_t ne3[3] = { 2, 2, 2 }, ne2[2] = { 2, 2 };
    CHECK(lfm2_gguf_require_tensor(g, "t.bf16", 3, ne3, 0) != NULL, "%s: 3-D require", how);
    CHECK(lfm2_gguf_require_tensor(g, "t.bf16", 2, ne2, 0) == NULL, "%s: dropped dimension must not match", how);
}

static void test_reference_file(void)
{
    opts o = { 0 };
    layout L;
    buf b = build(&o, &L);
    lfm2_gguf *g = lfm2_gguf_open_memory(b.p, b.len, "ref.gguf");
    CHECK(g != NULL, "reference file: %s", lfm2_last_error());
    if (g) {
        CHECK(strcmp(lfm2_gguf_path(g), "ref.gguf") == 0 && lfm2_gguf_file_size(g) == b.len, "path/size");
        check_reference(g, &L, b.p, "memory");
        lfm2_gguf_close(g);
    }
    const char *p = tmp_path("ref.gguf");
    write_file(p, b.p, b.len);
    for (int m = 0; m < 2; m++) {
        g = lfm2_gguf_open(p, m == 0);
        CHECK(g != NULL, "reference file (mmap=%d): %s", m == 0, lfm2_last_error());
        if (g) {
            const lfm2_tensor *t = lfm2_gguf_tensor(g, 0);
            const uint8_t *base = (const uint8_t *)t->data - L.data_start - L.t_rel[0];
            check_reference(g, &L, base, m == 0 ? "mmap" : "read");
            CHECK(((uintptr_t)t->data & 31) == 0, "tensor data must be 32-byte aligned in memory");
            lfm2_gguf_close(g);
        }
    }
    unlink(p);

    /* version 2 has the same layout */
    set32(&b, L.off_version, 2);
    g = lfm2_gguf_open_memory(b.p, b.len, "v2.gguf");
    CHECK(g && lfm2_gguf_version(g) == 2, "version 2 must be accepted: %s", lfm2_last_error());
    lfm2_gguf_close(g);
    free(b.p);

    /* deep (but legal) nesting, alignment 64, no tensors */
    o = (opts){ .nest_depth = 5, .alignment = 64 };
    b = build(&o, &L);
    g = lfm2_gguf_open_memory(b.p, b.len, "a64.gguf");
    CHECK(g && lfm2_gguf_alignment(g) == 64 && lfm2_gguf_data_offset(g) % 64 == 0 &&
          lfm2_gguf_data_offset(g) == L.data_start, "alignment 64: %s", g ? "" : lfm2_last_error());
    lfm2_gguf_close(g);
    free(b.p);
    o = (opts){ .no_tensors = 1 };
    b = build(&o, &L);
    g = lfm2_gguf_open_memory(b.p, b.len, "notensors.gguf");
    CHECK(g && lfm2_gguf_n_tensors(g) == 0, "no tensors: %s", g ? "" : lfm2_last_error());
    lfm2_gguf_close(g);
    free(b.p);
}

/* ---- corruption ----------------------------------------------------------------------------- */

static void test_corruption(void)
{
    opts o = { 0 };
    layout L;
    buf ref = build(&o, &L);
    buf b = { 0 };
#define FRESH() (free(b.p), b = (buf){ 0 }, put(&b, ref.p, ref.len))

    /* truncation at every byte of the header and a sample across the data */
    char want[128];
    int n_cut = 0;
    for (size_t cut = 0; cut < ref.len; cut += cut < L.data_start ? 1 : 13) {
        lfm2_gguf *g = lfm2_gguf_open_memory(ref.p, cut, "cut.gguf");
        n_cut++;
        CHECK(g == NULL, "cut at %zu of %zu opened", cut, ref.len);
        if (g) {
            lfm2_gguf_close(g);
            continue;
        }
        if (cut < L.header_end) {
            /* either the read that ran out, or a count that cannot fit what is left */
            char want2[128];
            snprintf(want, sizeof want, "cut.gguf: truncated at byte %zu while reading ", cut);
            snprintf(want2, sizeof want2, "is impossible for a file of %zu bytes (truncated or corrupt)", cut);
            CHECK(strstr(lfm2_last_error(), want) || strstr(lfm2_last_error(), want2), "cut at %zu: \"%s\"", cut,
                  lfm2_last_error());
        } else {
            CHECK(strstr(lfm2_last_error(), "lies past the end of the file") != NULL, "cut at %zu: \"%s\"", cut,
                  lfm2_last_error());
        }
    }
    CHECK(n_cut > 1000, "only %d truncations tried", n_cut);
    /* the message names what was being read */
    lfm2_gguf *g = lfm2_gguf_open_memory(ref.p, L.t_name[3] + 10, "cut.gguf");
    CHECK(!g && strstr(lfm2_last_error(), "while reading the name of tensor 3"), "%s", lfm2_last_error());
    g = lfm2_gguf_open_memory(ref.p, L.kv_type[13] + 15, "cut.gguf");
    CHECK(!g && strstr(lfm2_last_error(), "while reading the value of key 'v.str'"), "%s", lfm2_last_error());
    g = lfm2_gguf_open_memory(ref.p, L.kv_key[19] + 65, "cut.gguf");
    CHECK(!g && strstr(lfm2_last_error(), "while reading element 2 of key 'a.str'"), "%s", lfm2_last_error());
    g = lfm2_gguf_open_memory(ref.p, 0, "cut.gguf");
    CHECK(!g && strstr(lfm2_last_error(), "truncated at byte 0 while reading the magic"), "%s", lfm2_last_error());
    expect_fail("truncated file", &ref, L.header_end - 3, "truncated at byte", 1);

    FRESH(); memcpy(b.p, "GGUX", 4);
    expect_fail("bad magic", &b, b.len, "not a GGUF file (bad magic 47 47 55 58", 1);
    FRESH(); set32(&b, L.off_version, 1);
    expect_fail("version 1", &b, b.len, "unsupported GGUF version 1", 0);
    FRESH(); set32(&b, L.off_version, 4);
    expect_fail("version 4", &b, b.len, "unsupported GGUF version 4", 0);
    FRESH(); set32(&b, L.off_version, 3u << 24);
    expect_fail("big endian", &b, b.len, "big-endian", 0);

    FRESH(); set64(&b, L.off_n_tensors, 1ull << 60);
    expect_fail("huge tensor count", &b, b.len, "tensor count 1152921504606846976 is impossible", 1);
    FRESH(); set64(&b, L.off_n_kv, 1ull << 60);
    expect_fail("huge kv count", &b, b.len, "metadata count 1152921504606846976 is impossible", 1);
    FRESH(); set64(&b, L.off_n_kv, UINT64_MAX);
    expect_fail("kv count 2^64-1", &b, b.len, "metadata count", 0);
    FRESH(); set64(&b, L.off_n_kv, (uint64_t)L.n_kv + 1);
    expect_fail("one kv too many", &b, b.len, "", 0);
    FRESH(); set64(&b, L.off_n_tensors, (uint64_t)L.n_t + 1);
    expect_fail("one tensor too many", &b, b.len, "", 0);

    FRESH(); set64(&b, L.kv_key[3], 1ull << 62);
    expect_fail("huge key length", &b, b.len, "string length 4611686018427387904 in the key of metadata entry 3 exceeds the file size", 1);
    FRESH(); set64(&b, L.kv_type[13] + 4, UINT64_MAX);
    expect_fail("huge string value length", &b, b.len, "in the value of key 'v.str' exceeds the file size", 0);
    FRESH(); set64(&b, L.kv_type[14] + 8, 1ull << 61);
    expect_fail("huge array count", &b, b.len, "key 'a.i32': array of 2305843009213693952 i32 elements exceeds the file size", 1);
    FRESH(); set64(&b, L.kv_type[19] + 8, 1ull << 40);
    expect_fail("huge string array count", &b, b.len, "key 'a.str': array of 1099511627776 string elements exceeds", 0);
    FRESH(); set64(&b, L.kv_type[21] + 8, 1ull << 40);
    expect_fail("huge nested array count", &b, b.len, "key 'a.nested': array of 1099511627776 array elements exceeds", 0);
    /* a string element whose length runs past the end */
    FRESH(); set64(&b, L.kv_type[19] + 12, 1ull << 50);
    expect_fail("huge string element", &b, b.len, "in element 0 of key 'a.str' exceeds the file size", 0);

    FRESH(); set32(&b, L.kv_type[2], 13);
    expect_fail("bad value type", &b, b.len, "key 'v.i8' has value type 13, which is not a GGUF value type", 1);
    FRESH(); set32(&b, L.kv_type[14] + 4, 77);
    expect_fail("bad array element type", &b, b.len, "key 'a.i32': array element type 77", 0);

    /* array bomb: nesting far deeper than any real file */
    free(b.p);
    o = (opts){ .nest_depth = 10000 };
    layout L2;
    b = build(&o, &L2);
    expect_fail("array bomb", &b, b.len, "key 'a.deep': arrays nested more than 8 deep", 1);

    /* tensor infos */
    FRESH(); set32(&b, L.t_ndims[1], 5);
    expect_fail("n_dims 5", &b, b.len, "tensor 't.q8' has 5 dimensions (must be 1 to 4)", 1);
    FRESH(); set32(&b, L.t_ndims[1], 0);
    expect_fail("n_dims 0", &b, b.len, "tensor 't.q8' has 0 dimensions", 0);
    FRESH(); set64(&b, L.t_ne[1], 48);
    expect_fail("ne0 not a block multiple", &b, b.len,
                "tensor 't.q8' has 48 elements per row, not a multiple of the Q8_0 block size 32", 1);
    FRESH(); set64(&b, L.t_ne[2], 128);
    expect_fail("ne0 not a K block multiple", &b, b.len, "not a multiple of the Q4_K block size 256", 0);
    FRESH(); set64(&b, L.t_ne[1] + 8, 0);
    expect_fail("ne 0", &b, b.len, "tensor 't.q8' has size 0 in dimension 1", 0);
    FRESH(); set64(&b, L.t_ne[1] + 8, UINT64_MAX);
    expect_fail("ne beyond int64", &b, b.len, "which is too large", 0);
    FRESH(); set64(&b, L.t_ne[0], 1ull << 40); set64(&b, L.t_ne[0] + 8, 1ull << 40);
    expect_fail("element count overflow", &b, b.len, "tensor 't.f32' has shape [1099511627776, 1099511627776, 1, 1] whose element count overflows", 1);
    FRESH(); set64(&b, L.t_ne[0], 1ull << 30); set64(&b, L.t_ne[0] + 8, 1ull << 30);
    expect_fail("huge but countable tensor", &b, b.len, "past the end of the file", 0);
    FRESH(); set64(&b, L.t_ne[5] + 24, 1ull << 60);
    expect_fail("4-D byte size overflow", &b, b.len, "overflows", 0);

    static const struct { uint32_t id; const char *msg; } bad_types[] = {
        { 16, "tensor 't.q8' has type IQ2_XXS (16), which lfm2 does not support (supported: F32, F16, BF16, Q8_0" },
        { 34, "has type TQ1_0 (34), which lfm2 does not support" },
        { 39, "has type MXFP4 (39), which lfm2 does not support" },
        { 9, "has type Q8_1 (9), which lfm2 does not support" },
        { 15, "has type Q8_K (15), which lfm2 does not support" },
        { 10, "has type Q2_K (10)" },
        { 4, "has type Q4_2 (4)" },
        { 77, "has unknown type id 77, which lfm2 does not support" },
    };
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        FRESH(); set32(&b, L.t_type[1], bad_types[i].id);
        expect_fail("unsupported type", &b, b.len, bad_types[i].msg, i == 0);
    }
    CHECK(strcmp(lfm2_type_name(16), "IQ2_XXS") == 0 && strcmp(lfm2_type_name(39), "MXFP4") == 0 &&
          strcmp(lfm2_type_name(30), "BF16") == 0 && strcmp(lfm2_type_name(1000), "type 1000") == 0, "type names");

    size_t last = (size_t)L.n_t - 1;
    FRESH(); set64(&b, L.t_off[last], 1ull << 40);
    expect_fail("offset past the end", &b, b.len, "tensor 't.q6k': data [", 1);
    FRESH(); set64(&b, L.t_off[last], UINT64_MAX - 31);
    expect_fail("offset overflowing", &b, b.len, "tensor 't.q6k': data offset", 0);
    FRESH(); set64(&b, L.t_off[last], get64(&b, L.t_off[last]) + 32);
    expect_fail("data one block too far", &b, b.len, "lies past the end of the file", 0);
    FRESH(); set64(&b, L.t_off[2], get64(&b, L.t_off[2]) + 4);
    expect_fail("misaligned offset", &b, b.len, "tensor 't.q4k' has data offset", 1);
    CHECK(strstr(lfm2_last_error(), "not a multiple of the alignment 32") != NULL, "%s", lfm2_last_error());
    FRESH(); set64(&b, L.t_off[1], get64(&b, L.t_off[0]));
    expect_fail("overlapping tensors", &b, b.len, "overlaps tensor", 1);
    FRESH(); set64(&b, L.t_off[3], get64(&b, L.t_off[2]) + 128);
    expect_fail("partly overlapping tensors", &b, b.len, "overlaps tensor 't.q4k'", 0);

    /* alignment */
    static const struct { uint32_t a; const char *msg; } aligns[] = {
        { 48, "general.alignment is 48; it must be a power of two" },
        { 0x80000000u, "general.alignment is 2147483648" },
    };
    for (size_t i = 0; i < 2; i++) {
        free(b.p);
        o = (opts){ .alignment = 64 };
        b = build(&o, &L2);
        set32(&b, L2.kv_type[L2.n_kv - 1] + 4, aligns[i].a);
        expect_fail("bad alignment", &b, b.len, aligns[i].msg, i == 0);
    }
    free(b.p);
    o = (opts){ .alignment = 64 };
    b = build(&o, &L2);
    set32(&b, L2.kv_type[L2.n_kv - 1] + 4, 0);
    expect_fail("alignment 0", &b, b.len, "general.alignment is 0", 1);
    free(b.p);
    o = (opts){ .alignment = 32, .alignment_as_str = 1 };
    b = build(&o, &L2);
    expect_fail("alignment as a string", &b, b.len, "key 'general.alignment' has type string, expected an integer", 0);
    /* a file written with alignment 32 but claiming 64: offsets no longer line up */
    free(b.p);
    o = (opts){ .alignment = 32 };
    b = build(&o, &L2);
    set32(&b, L2.kv_type[L2.n_kv - 1] + 4, 64);
    expect_fail("alignment changed", &b, b.len, "not a multiple of the alignment 64", 0);

    /* duplicates */
    free(b.p);
    o = (opts){ .dup_key = 1 };
    b = build(&o, &L2);
    expect_fail("duplicate key", &b, b.len, "duplicate key 'v.u8' (metadata entries 1 and", 1);
    free(b.p);
    o = (opts){ .dup_tensor = 1 };
    b = build(&o, &L2);
    expect_fail("duplicate tensor", &b, b.len, "duplicate tensor name 't.f32' (tensors 0 and 6)", 1);
    free(b.p);
    o = (opts){ .nul_key = 1 };
    b = build(&o, &L2);
    expect_fail("NUL in key", &b, b.len, "contains a NUL byte", 0);

    /* random byte flips in the header: any outcome but a crash (ASan/UBSan watch this) */
    uint64_t seed = 12345;
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        FRESH();
        for (int k = 0; k < 3; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(seed >> 33) % L.header_end;
            b.p[pos] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        g = lfm2_gguf_open_memory(b.p, b.len, "flip.gguf");
        if (g) {
            opened++;
            char fb[128];
            for (int64_t i = 0; i < lfm2_gguf_n_kv(g); i++)
                lfm2_gguf_kv_format(g, i, fb, sizeof fb, 40);
            for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
                const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
                volatile uint8_t sink = ((const uint8_t *)t->data)[t->nbytes - 1];
                (void)sink;
            }
            lfm2_gguf_close(g);
        }
    }
    CHECK(opened < 3000, "random flips: every file opened?");

    /* files that are not there or are empty */
    g = lfm2_gguf_open(tmp_path("does-not-exist.gguf"), true);
    CHECK(!g && strstr(lfm2_last_error(), "does-not-exist.gguf: cannot open"), "%s", lfm2_last_error());
    write_file(tmp_path("empty.gguf"), "", 0);
    g = lfm2_gguf_open(tmp_path("empty.gguf"), true);
    CHECK(!g && strstr(lfm2_last_error(), "empty.gguf: empty file"), "%s", lfm2_last_error());
    unlink(tmp_path("empty.gguf"));
    g = lfm2_gguf_open(g_tmpdir, true);
    CHECK(!g && strstr(lfm2_last_error(), "not a regular file"), "%s", lfm2_last_error());

    free(b.p);
    free(ref.p);
#undef FRESH
}

/* ---- writer ----------------------------------------------------------------------------------- */

static void test_writer(void)
{
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    lfm2_gguf_set_str(w, "general.architecture", "lfm2");
    lfm2_gguf_set_u32(w, "w.u32", 123456789u);
    lfm2_gguf_set_i32(w, "w.i32", -42);
    lfm2_gguf_set_u64(w, "w.u64", 1ull << 50);
    lfm2_gguf_set_f32(w, "w.f32", 1e6f);
    lfm2_gguf_set_bool(w, "w.bool", false);
    lfm2_gguf_set_str(w, "w.str", "héllo\nworld");
    int32_t ai[5] = { 0, 0, 2, 0, -2 };
    lfm2_gguf_set_arr_i32(w, "w.ai32", ai, 5);
    float af[2] = { 0.25f, -1e-7f };
    lfm2_gguf_set_arr_f32(w, "w.af32", af, 2);
    const char *as[3] = { "<|pad|>", "", "Ġthe" };
    lfm2_gguf_set_arr_str(w, "w.astr", as, 3);
    lfm2_gguf_set_u32(w, "w.u32", 7);   /* replaces, keeps its position */

    /* one tensor of every writable type, with known bytes */
    static const struct { const char *name; enum lfm2_type t; int nd; int64_t ne[4]; } ts[] = {
        { "x.f32", LFM2_TYPE_F32, 2, { 3, 5 } }, { "x.f16", LFM2_TYPE_F16, 1, { 7 } },
        { "x.bf16", LFM2_TYPE_BF16, 2, { 2, 9 } }, { "x.q8_0", LFM2_TYPE_Q8_0, 2, { 64, 3 } },
        { "x.q4_0", LFM2_TYPE_Q4_0, 2, { 32, 3 } }, { "x.q4_1", LFM2_TYPE_Q4_1, 1, { 96 } },
        { "x.q5_0", LFM2_TYPE_Q5_0, 2, { 32, 1 } }, { "x.q5_1", LFM2_TYPE_Q5_1, 2, { 32, 2 } },
        { "x.q4_k", LFM2_TYPE_Q4_K, 2, { 256, 2 } }, { "x.q5_k", LFM2_TYPE_Q5_K, 3, { 256, 1, 2 } },
        { "x.q6_k", LFM2_TYPE_Q6_K, 4, { 256, 1, 1, 1 } },
    };
    enum { NT = sizeof ts / sizeof ts[0] };
    uint8_t *data[NT];
    size_t nbytes[NT];
    for (int i = 0; i < NT; i++) {
        nbytes[i] = lfm2_row_bytes(ts[i].t, ts[i].ne[0]);
        for (int d = 1; d < ts[i].nd; d++)
            nbytes[i] *= (size_t)ts[i].ne[d];
        data[i] = malloc(nbytes[i]);
        for (size_t k = 0; k < nbytes[i]; k++)
            data[i][k] = (uint8_t)(k * 31 + i * 7 + 1);
        lfm2_gguf_add_tensor(w, ts[i].name, ts[i].t, ts[i].nd, ts[i].ne, data[i]);
    }
    const char *p = tmp_path("writer.gguf");
    CHECK(lfm2_gguf_writer_write(w, p) == 0, "writer: %s", lfm2_last_error());
    lfm2_gguf_writer_free(w);

    for (int m = 0; m < 2; m++) {
        lfm2_gguf *g = lfm2_gguf_open(p, m == 0);
        CHECK(g != NULL, "reading the written file: %s", lfm2_last_error());
        if (!g)
            continue;
        int64_t v;
        float f;
        bool bo;
        size_t len;
        CHECK(lfm2_gguf_n_kv(g) == 10, "writer n_kv %" PRId64, lfm2_gguf_n_kv(g));
        static const char *const keys[] = { "general.architecture", "w.u32", "w.i32", "w.u64", "w.f32",
                                            "w.bool", "w.str", "w.ai32", "w.af32", "w.astr" };
        static const enum lfm2_gguf_type types[] = { LFM2_GGUF_STRING, LFM2_GGUF_U32, LFM2_GGUF_I32,
                                                     LFM2_GGUF_U64, LFM2_GGUF_F32, LFM2_GGUF_BOOL, LFM2_GGUF_STRING,
                                                     LFM2_GGUF_ARRAY, LFM2_GGUF_ARRAY, LFM2_GGUF_ARRAY };
        for (int i = 0; i < 10 && i < lfm2_gguf_n_kv(g); i++)
            CHECK(strcmp(lfm2_gguf_kv_key(g, i), keys[i]) == 0 && lfm2_gguf_kv_type(g, i) == types[i],
                  "writer key %d: %s", i, lfm2_gguf_kv_key(g, i));
        CHECK(lfm2_gguf_get_int(g, "w.u32", &v) == 1 && v == 7, "w.u32");
        CHECK(lfm2_gguf_get_int(g, "w.i32", &v) == 1 && v == -42, "w.i32");
        CHECK(lfm2_gguf_get_int(g, "w.u64", &v) == 1 && v == 1ll << 50, "w.u64");
        CHECK(lfm2_gguf_get_f32(g, "w.f32", &f) == 1 && f == 1e6f, "w.f32");
        CHECK(lfm2_gguf_get_bool(g, "w.bool", &bo) == 1 && !bo, "w.bool");
        const char *s = lfm2_gguf_get_str(g, "w.str", &len);
        CHECK(s && len == strlen("héllo\nworld") && memcmp(s, "héllo\nworld", len) == 0, "w.str");
        int64_t iv[5];
        CHECK(lfm2_gguf_get_int_arr(g, "w.ai32", iv, 5) == 1 && iv[2] == 2 && iv[4] == -2, "w.ai32");
        enum lfm2_gguf_type et;
        uint64_t n;
        CHECK(lfm2_gguf_get_arr(g, "w.ai32", &et, &n) == 1 && et == LFM2_GGUF_I32 && n == 5, "w.ai32 is i32");
        float fv[2];
        CHECK(lfm2_gguf_get_f32_arr(g, "w.af32", fv, 2) == 1 && fv[0] == 0.25f && fv[1] == -1e-7f, "w.af32");
        for (int i = 0; i < 3; i++) {
            s = lfm2_gguf_arr_str(g, "w.astr", (uint64_t)i, &len);
            CHECK(s && len == strlen(as[i]) && memcmp(s, as[i], len) == 0, "w.astr[%d]", i);
        }
        CHECK(lfm2_gguf_n_tensors(g) == NT && lfm2_gguf_data_offset(g) % 32 == 0, "writer tensors");
        size_t expect_size = lfm2_gguf_data_offset(g);
        for (int i = 0; i < NT && i < lfm2_gguf_n_tensors(g); i++) {
            const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
            CHECK(strcmp(t->name, ts[i].name) == 0 && t->type == ts[i].t && t->n_dims == ts[i].nd,
                  "writer tensor %d: %s", i, t->name);
            for (int d = 0; d < 4; d++)
                CHECK(t->ne[d] == (d < ts[i].nd ? ts[i].ne[d] : 1), "writer tensor %s ne[%d]", t->name, d);
            CHECK(t->nbytes == nbytes[i] && memcmp(t->data, data[i], nbytes[i]) == 0, "writer tensor %s data", t->name);
            /* converter layout: tensors back to back in insertion order, each padded to 32 */
            CHECK((size_t)((const uint8_t *)t->data - (const uint8_t *)lfm2_gguf_tensor(g, 0)->data) ==
                  expect_size - lfm2_gguf_data_offset(g), "writer tensor %s offset", t->name);
            expect_size += (nbytes[i] + 31) / 32 * 32;
        }
        CHECK(lfm2_gguf_file_size(g) == expect_size, "writer file size %zu, expected %zu", lfm2_gguf_file_size(g),
              expect_size);
        lfm2_gguf_close(g);
    }
    unlink(p);
    for (int i = 0; i < NT; i++)
        free(data[i]);

    /* writer errors surface at write time, and no file is left behind */
    w = lfm2_gguf_writer_new();
    int64_t ne[2] = { 32, 1 }, bad[2] = { 100, 1 };
    float z[32] = { 0 };
    lfm2_gguf_add_tensor(w, "a", LFM2_TYPE_F32, 2, ne, z);
    lfm2_gguf_add_tensor(w, "a", LFM2_TYPE_F32, 2, ne, z);
    CHECK(lfm2_gguf_writer_write(w, p) == -1 && strstr(lfm2_last_error(), "duplicate tensor name 'a'"),
          "writer duplicate: %s", lfm2_last_error());
    CHECK(access(p, F_OK) != 0, "a failed write left a file");
    lfm2_gguf_writer_free(w);
    w = lfm2_gguf_writer_new();
    lfm2_gguf_add_tensor(w, "k", LFM2_TYPE_Q4_K, 2, bad, NULL);
    CHECK(lfm2_gguf_writer_write(w, p) == -1 && strstr(lfm2_last_error(), "not a multiple of the Q4_K block size"),
          "writer block size: %s", lfm2_last_error());
    lfm2_gguf_writer_free(w);
    w = lfm2_gguf_writer_new();
    lfm2_gguf_add_tensor(w, "k", (enum lfm2_type)16, 2, ne, NULL);
    CHECK(lfm2_gguf_writer_write(w, p) == -1 && strstr(lfm2_last_error(), "IQ2_XXS"), "writer type: %s",
          lfm2_last_error());
    lfm2_gguf_writer_free(w);
    w = lfm2_gguf_writer_new();
    CHECK(lfm2_gguf_writer_write(w, "/nonexistent-dir/x.gguf") == -1 && strstr(lfm2_last_error(), "cannot create"),
          "unwritable path: %s", lfm2_last_error());
    lfm2_gguf_writer_free(w);
}

/* ---- the fixture models ----------------------------------------------------------------------- */

static JsonNode *load_json(const char *path)
{
    JsonParser *p = json_parser_new();
    JsonNode *root = NULL;
    if (json_parser_load_from_file(p, path, NULL))
        root = json_node_copy(json_parser_get_root(p));
    g_object_unref(p);
    return root;
}

static void test_fixture(const char *dir, const char *sub, const char *file, int n_layer, const char *kinds)
{
    char path[1024], mpath[1024];
    snprintf(path, sizeof path, "%s/text/%s/%s", dir, sub, file);
    snprintf(mpath, sizeof mpath, "%s/text/%s/metadata.json", dir, sub);
    lfm2_gguf *g = lfm2_gguf_open(path, true);
    CHECK(g != NULL, "fixture %s: %s", file, lfm2_last_error());
    JsonNode *meta = load_json(mpath);
    CHECK(meta != NULL, "cannot read %s", mpath);
    if (!g || !meta) {
        lfm2_gguf_close(g);
        if (meta) json_node_unref(meta);
        return;
    }
    JsonObject *root = json_node_get_object(meta);
    JsonObject *sum = json_object_get_object_member(json_object_get_object_member(root, "generator"), "summary");
    JsonObject *types = json_object_get_object_member(sum, "tensor_types");
    JsonObject *lc = json_object_get_object_member(root, "llama_cpp");

    CHECK(lfm2_gguf_file_size(g) == (size_t)json_object_get_int_member(root, "bytes"), "%s: size", file);
    /* per-type tensor counts as the generator recorded them (a list names the Q6_K tensors) */
    int64_t counts[64] = { 0 };
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++)
        counts[lfm2_gguf_tensor(g, i)->type]++;
    GList *members = json_object_get_members(types);
    int64_t total = 0;
    for (GList *l = members; l; l = l->next) {
        const char *tn = l->data;
        JsonNode *node = json_object_get_member(types, tn);
        char up[16];
        size_t k = 0;
        for (; tn[k] && k < sizeof up - 1; k++)
            up[k] = (char)(tn[k] >= 'a' && tn[k] <= 'z' ? tn[k] - 32 : tn[k]);
        up[k] = 0;
        int id = -1;
        for (int t = 0; t < 40; t++)
            if (strcmp(lfm2_type_name((uint32_t)t), up) == 0)
                id = t;
        CHECK(id >= 0, "%s: unknown type %s", file, tn);
        if (id < 0)
            continue;
        int64_t want;
        if (JSON_NODE_HOLDS_ARRAY(node)) {
            JsonArray *names = json_node_get_array(node);
            want = json_array_get_length(names);
            for (guint i = 0; i < json_array_get_length(names); i++) {
                const lfm2_tensor *t = lfm2_gguf_find_tensor(g, json_array_get_string_element(names, i));
                CHECK(t && (int)t->type == id, "%s: %s should be %s", file, json_array_get_string_element(names, i), up);
            }
        } else {
            want = json_node_get_int(node);
        }
        CHECK(counts[id] == want, "%s: %" PRId64 " %s tensors, expected %" PRId64, file, counts[id], up, want);
        total += want;
    }
    g_list_free(members);
    CHECK(total == lfm2_gguf_n_tensors(g), "%s: %" PRId64 " tensors, expected %" PRId64, file, lfm2_gguf_n_tensors(g), total);

    /* metadata */
    int64_t v;
    char arch[32];
    CHECK(lfm2_gguf_get_str_buf(g, "general.architecture", arch, sizeof arch) == 1, "%s: arch", file);
    char key[96];
    snprintf(key, sizeof key, "%s.block_count", arch);
    CHECK(lfm2_gguf_get_int(g, key, &v) == 1 && v == n_layer, "%s: block_count", file);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    CHECK(lfm2_gguf_get_int(g, key, &v) == 1 && v == json_object_get_int_member(lc, "n_embd"), "%s: n_embd", file);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    int64_t hkv[16];
    CHECK(lfm2_gguf_get_int_arr(g, key, hkv, (size_t)n_layer) == 1, "%s: head_count_kv", file);
    for (int l = 0; l < n_layer; l++)
        CHECK((hkv[l] == 0) == (kinds[l] == 'c'), "%s: layer %d kind", file, l);
    uint64_t nt;
    enum lfm2_gguf_type et;
    CHECK(lfm2_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nt) == 1 && et == LFM2_GGUF_STRING &&
          (int64_t)nt == json_object_get_int_member(lc, "n_vocab"), "%s: vocab", file);
    size_t len;
    const char *s = lfm2_gguf_arr_str(g, "tokenizer.ggml.tokens", 7, &len);
    CHECK(s && len == 10 && memcmp(s, "<|im_end|>", 10) == 0, "%s: token 7", file);
    s = lfm2_gguf_arr_str(g, "tokenizer.ggml.tokens", 20 + 'A', &len);
    CHECK(s && len == 1 && s[0] == 'A', "%s: byte token 'A'", file);
    s = lfm2_gguf_get_str(g, "tokenizer.chat_template", &len);
    const char *tpl = json_object_get_string_member(lc, "chat_template");
    CHECK(s && tpl && len == strlen(tpl) && memcmp(s, tpl, len) == 0, "%s: chat template", file);

    /* tensor order: token_embd first, the final norm last, layers in between in order */
    CHECK(strcmp(lfm2_gguf_tensor(g, 0)->name, "token_embd.weight") == 0, "%s: first tensor", file);
    CHECK(strcmp(lfm2_gguf_tensor(g, lfm2_gguf_n_tensors(g) - 1)->name, "token_embd_norm.weight") == 0,
          "%s: last tensor", file);
    int prev = -1;
    for (int64_t i = 1; i + 1 < lfm2_gguf_n_tensors(g); i++) {
        int l = -1;
        sscanf(lfm2_gguf_tensor(g, i)->name, "blk.%d.", &l);
        CHECK(l >= prev && l < n_layer, "%s: tensor %s out of layer order", file, lfm2_gguf_tensor(g, i)->name);
        prev = l;
    }
    /* every tensor's data is readable and dequantizes to finite values */
    int nonfinite = 0;
    for (int64_t i = 0; i < lfm2_gguf_n_tensors(g); i++) {
        const lfm2_tensor *t = lfm2_gguf_tensor(g, i);
        float *row = malloc((size_t)t->ne[0] * sizeof *row);
        for (int64_t r = 0; r < t->ne[1] * t->ne[2] * t->ne[3]; r++) {
            lfm2_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * t->nb1, row, t->ne[0]);
            for (int64_t k = 0; k < t->ne[0]; k++)
                nonfinite += !isfinite(row[k]);
        }
        free(row);
    }
    CHECK(nonfinite == 0, "%s: %d non-finite weights", file, nonfinite);
    json_node_unref(meta);
    lfm2_gguf_close(g);
}

static void test_fixtures(const char *dir)
{
    test_fixture(dir, "tiny-f32", "lfm2-tiny-f32.gguf", 6, "ccacca");
    test_fixture(dir, "tiny-f16", "lfm2-tiny-f16.gguf", 6, "ccacca");
    test_fixture(dir, "tiny-q8_0", "lfm2-tiny-q8_0.gguf", 6, "ccacca");
    test_fixture(dir, "tiny-q4_0", "lfm2-tiny-q4_0.gguf", 6, "ccacca");
    test_fixture(dir, "small-f32", "lfm2-small-f32.gguf", 3, "aca");
    test_fixture(dir, "small-q8_0", "lfm2-small-q8_0.gguf", 3, "aca");
    test_fixture(dir, "small-q4_k_m", "lfm2-small-q4_k_m.gguf", 3, "aca");
    test_fixture(dir, "moe/tiny-moe-q8_0", "lfm2moe-tiny-q8_0.gguf", 4, "caca");

    /* the vision pair: the projector and the VL backbone open; spot-check the projector */
    char path[1024];
    snprintf(path, sizeof path, "%s/vision/lfm2-vl-tiny-mmproj-f32.gguf", dir);
    lfm2_gguf *g = lfm2_gguf_open(path, false);
    CHECK(g != NULL, "mmproj: %s", lfm2_last_error());
    if (g) {
        char s[32];
        CHECK(lfm2_gguf_get_str_buf(g, "general.architecture", s, sizeof s) == 1 && strcmp(s, "clip") == 0, "mmproj arch");
        CHECK(lfm2_gguf_n_tensors(g) == 43, "mmproj tensors %" PRId64, lfm2_gguf_n_tensors(g));
        lfm2_gguf_close(g);
    }
    snprintf(path, sizeof path, "%s/vision/lfm2-vl-tiny-text-q4_0.gguf", dir);
    g = lfm2_gguf_open(path, true);
    CHECK(g != NULL, "VL backbone: %s", lfm2_last_error());
    if (g) {
        uint64_t n;
        CHECK(lfm2_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n) == 1 && n == 613, "VL vocab %" PRIu64, n);
        size_t len;
        const char *t = lfm2_gguf_arr_str(g, "tokenizer.ggml.tokens", 612, &len);
        CHECK(t && len == 15 && memcmp(t, "<|image_split|>", 15) == 0, "VL token 612");
        lfm2_gguf_close(g);
    }
}

int main(void)
{
    const char *dir = getenv("LFM2_TEST_DATA");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/lfm2-test-gguf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_reference_file();
    test_corruption();
    test_writer();
    if (dir)
        test_fixtures(dir);
    else {
        fprintf(stderr, "FAIL: LFM2_TEST_DATA is not set\n");
        lfm2_test_failures++;
    }
    rmdir(g_tmpdir);
    if (lfm2_test_failures) {
        fprintf(stderr, "test-gguf: %d failures\n", lfm2_test_failures);
        return 1;
    }
    printf("test-gguf: all passed\n");
    return 0;
}
