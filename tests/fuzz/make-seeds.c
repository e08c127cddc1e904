/* make-seeds — writes the seed corpora of the fuzz harnesses from tests/data at build time,
 * in each harness's input format (described at the top of each fuzz-*.c):
 *
 *   make-seeds DATA_DIR OUT_DIR      (DATA_DIR = tests/data, TOKENIZER_DIR = next to it)
 *
 *   OUT_DIR/gguf/         small complete GGUF files written with lfm2_gguf_writer (metadata of
 *                         every type, one tensor of every supported type) and the metadata +
 *                         tensor table of every model in tests/data, cut before the weights
 *   OUT_DIR/model/        those tables with the files' real lengths (fuzz-gguf-file.h)
 *   OUT_DIR/mmproj/       the same for the mmproj
 *   OUT_DIR/tokenizer/    the tokenizer test strings (tests/data/text/tokenize/strings.bin,
 *                         tests/tokenizer/data/extra.bin), with several flag bytes
 *   OUT_DIR/chat/         conversations made of those strings
 *   OUT_DIR/tensors/      the caps and buffers lfm2vlenc sends (static and flexible)
 *   OUT_DIR/vision-plan/  the sizes of the test pictures under both preprocessing modes
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lfm2-gguf.h"

static const char *out_dir;
static int n_written;

/* ---- a growing byte buffer in the harnesses' encodings (fuzz-common.h) -------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        if (!(b->p = realloc(b->p, b->cap))) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u8(bytes *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put_u16(bytes *b, unsigned v)
{
    put_u8(b, v & 0xff);
    put_u8(b, (v >> 8) & 0xff);
}

static void put_u32(bytes *b, uint32_t v)
{
    put_u16(b, v & 0xffff);
    put_u16(b, v >> 16);
}

/* fuzz_range(lo, hi) reading back v */
static void put_range(bytes *b, int64_t lo, int64_t hi, int64_t v)
{
    const uint64_t span = (uint64_t)(hi - lo) + 1, x = (uint64_t)(v - lo);
    if (span <= 256)
        put_u8(b, (unsigned)x);
    else if (span <= 65536)
        put_u16(b, (unsigned)x);
    else
        put_u32(b, (uint32_t)x);
}

/* fuzz_str(max) reading back s */
static void put_str(bytes *b, size_t max, const char *s, size_t n)
{
    if (n > max)
        n = max;
    put_range(b, 0, (int64_t)max, (int64_t)n);
    put(b, s, n);
}

static void write_file(const char *sub, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, sub);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    n_written++;
}

static void write_bytes(const char *sub, bytes *b, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    write_file(sub, name, b->p, b->n);
    b->n = 0;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    p[len] = 0;
    *n = (size_t)len;
    return p;
}

/* NUL-separated strings of a file, each passed to fn. */
static void each_string(const char *path, void (*fn)(const char *s, size_t n, int i))
{
    size_t n;
    unsigned char *p = read_all(path, &n);
    int i = 0;
    for (size_t a = 0; a < n;) {
        size_t e = a;
        while (e < n && p[e])
            e++;
        fn((const char *)p + a, e - a, i++);
        a = e + 1;
    }
    free(p);
}

/* ---- GGUF ---------------------------------------------------------------------------------- */

static void gguf_tables(const char *data_dir, const char *rel, const char *kind)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, rel);
    lfm2_gguf *g = lfm2_gguf_open(path, true);
    if (!g) {
        fprintf(stderr, "make-seeds: %s\n", lfm2_last_error());
        exit(1);
    }
    size_t n;
    unsigned char *all = read_all(path, &n);
    const size_t head = lfm2_gguf_data_offset(g);
    const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    bytes b = { 0 };
    put(&b, all, head);
    write_bytes("gguf", &b, "table-%s", base);       /* refused: weights missing */
    put(&b, all, head);
    put_u32(&b, (uint32_t)n);
    write_bytes(kind, &b, "%s", base);
    free(b.p);
    free(all);
    lfm2_gguf_close(g);
}

static int write_gguf(lfm2_gguf_writer *w, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/gguf", out_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/gguf/%s", out_dir, name);
    if (lfm2_gguf_writer_write(w, path)) {
        fprintf(stderr, "make-seeds: %s\n", lfm2_last_error());
        exit(1);
    }
    lfm2_gguf_writer_free(w);
    n_written++;
    return 0;
}

static void small_ggufs(void)
{
    /* metadata of every writer type */
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    const int32_t ints[4] = { -1, 0, 7, 1 << 30 };
    const float floats[3] = { 0.5f, -1e30f, 3.0f };
    const char *strs[3] = { "a", "", "<|im_start|>" };
    lfm2_gguf_set_str(w, "general.architecture", "lfm2");
    lfm2_gguf_set_u32(w, "general.alignment", 64);
    lfm2_gguf_set_i32(w, "lfm2.block_count", 2);
    lfm2_gguf_set_u64(w, "lfm2.context_length", 128);
    lfm2_gguf_set_f32(w, "lfm2.attention.layer_norm_rms_epsilon", 1e-5f);
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    lfm2_gguf_set_arr_i32(w, "lfm2.attention.head_count_kv", ints, 4);
    lfm2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", floats, 3);
    lfm2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, 3);
    write_gguf(w, "kv-types.gguf");

    /* one small tensor of every supported weight type */
    w = lfm2_gguf_writer_new();
    static const enum lfm2_type types[] = {
        LFM2_TYPE_F32, LFM2_TYPE_F16, LFM2_TYPE_BF16, LFM2_TYPE_Q8_0, LFM2_TYPE_Q4_0,
        LFM2_TYPE_Q4_1, LFM2_TYPE_Q5_0, LFM2_TYPE_Q5_1, LFM2_TYPE_Q4_K, LFM2_TYPE_Q5_K,
        LFM2_TYPE_Q6_K,
    };
    static float src[2 * 256];
    for (int i = 0; i < 2 * 256; i++)
        src[i] = (float)((i * 37) % 19) - 9.0f;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int64_t ne[2] = { lfm2_type_block_elems(types[t]) == 256 ? 256 : 32, 2 };
        void *q = malloc(lfm2_row_bytes(types[t], ne[0]) * 2);
        if (!q || !lfm2_quantize(types[t], src, q, 2, ne[0])) {
            fprintf(stderr, "make-seeds: %s\n", lfm2_last_error());
            exit(1);
        }
        char name[32];
        snprintf(name, sizeof name, "t.%s", lfm2_type_name(types[t]));
        lfm2_gguf_add_tensor(w, name, types[t], 2, ne, q);
        free(q);
    }
    write_gguf(w, "tensor-types.gguf");
}

/* ---- tokenizer and chat ------------------------------------------------------------------- */

static void tokenizer_seed(const char *s, size_t n, int i)
{
    static const unsigned flags[4] = { 0, 3, 6, 10 };   /* plain; bos+special; small; render */
    bytes b = { 0 };
    put_u8(&b, flags[i % 4]);
    put_range(&b, 1, 256, 1 + (i * 13) % 64);   /* small output buffers: the -n protocol */
    put(&b, s, n);
    write_bytes("tokenizer", &b, "string-%03d", i);
    free(b.p);
}

static void extra_tokenizer_seed(const char *s, size_t n, int i)
{
    tokenizer_seed(s, n, 100 + i);
}

static void chat_seed(const char *s, size_t n, int i)
{
    static const char *const tools = "[{\"name\": \"get_weather\", \"parameters\": {}}]";
    bytes b = { 0 };
    const unsigned n_msgs = 1 + i % 4;
    put_u8(&b, n_msgs | 8 | (i % 3 == 0 ? 16 : 0));
    for (unsigned k = 0; k < n_msgs; k++) {
        put_u8(&b, k == 0 && n_msgs > 1 ? 0 : (k % 2 ? 2 : 1));   /* system, user, assistant */
        put_str(&b, 200, s, n);
    }
    if (i % 3 == 0)
        put_str(&b, 200, tools, strlen(tools));
    put_u8(&b, 5);   /* a short buffer */
    write_bytes("chat", &b, "chat-%03d", i);
    free(b.p);
}

/* ---- other/tensors ----------------------------------------------------------------------- */

static void header(bytes *b, uint32_t type, const uint32_t *dims, int rank)
{
    uint32_t w[32] = { 0 };
    w[0] = 0xfeedccedu;
    w[1] = 0xDE001000u;   /* v1.0 */
    w[2] = type;
    for (int i = 0; i < rank; i++)
        w[3 + i] = dims[i];
    w[19] = 1;   /* flexible */
    w[20] = 4;   /* media: tensor */
    for (int i = 0; i < 32; i++)
        put_u32(b, w[i]);
}

static void tensors_seeds(void)
{
    /* flexible: rows 128×5 and a layout of 7 (lfm2vlenc's shape for the tiny model) */
    for (int with_layout = 0; with_layout <= 1; with_layout++) {
        bytes b = { 0 };
        put_u8(&b, 2 | 128);                        /* flexible, framerate */
        put_u8(&b, 2 | 4 | ((1 + with_layout) << 4));   /* embedding-length, model-id */
        put_u32(&b, 30);
        put_u32(&b, 1);
        put_u32(&b, 128);
        put_str(&b, 200, "tiny/lfm2-128", 13);
        put_u16(&b, 512);                           /* n_vocab */
        const uint32_t rows[2] = { 128, 5 }, lay[1] = { 7 };
        put_range(&b, 0, 4096, 128 + 128 * 5 * 4);
        header(&b, 7, rows, 2);
        for (int i = 0; i < 128 * 5; i++)
            put_u32(&b, 0x3f800000u);   /* 1.0f */
        if (with_layout) {
            put_range(&b, 0, 4096, 128 + 7 * 4);
            header(&b, 0, lay, 1);
            const int32_t l[7] = { 1, -1, -1, -1, -1, -1, 2 };
            for (int i = 0; i < 7; i++)
                put_u32(&b, (uint32_t)l[i]);
        }
        write_bytes("tensors", &b, "flexible-%d", with_layout);
        free(b.p);
    }
    /* static: num_tensors=2, types, dimensions as strings */
    bytes b = { 0 };
    put_u8(&b, 1 | 8 | 16 | 32 | 128);
    put_u8(&b, 2 | (2 << 4));
    put_range(&b, -2, 20, 2);
    put_str(&b, 64, "float32,int32", 13);
    put_str(&b, 96, "16:2,4", 6);
    put_u32(&b, 0);
    put_u32(&b, 1);
    put_u32(&b, 16);
    put_u16(&b, 100);
    put_range(&b, 0, 4096, 16 * 2 * 4);
    for (int i = 0; i < 32; i++)
        put_u32(&b, 0);
    put_range(&b, 0, 4096, 16);
    const int32_t l[4] = { 3, -1, -1, 4 };
    for (int i = 0; i < 4; i++)
        put_u32(&b, (uint32_t)l[i]);
    write_bytes("tensors", &b, "static-2");
    free(b.p);
}

/* ---- vision plans -------------------------------------------------------------------------- */

static void plan_seeds(void)
{
    static const int sizes[][2] = { { 64, 48 }, { 37, 300 }, { 256, 256 }, { 320, 224 },
                                    { 1100, 500 }, { 1920, 1080 }, { 1, 65535 } };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (unsigned mode = 0; mode < 2; mode++) {
            bytes b = { 0 };
            put_u8(&b, mode | 4 | 8 | 16 | 128);    /* tiling, thumbnail, tolerance 2.0 */
            put_range(&b, -2, 17000, 64);
            put_range(&b, -2, 17000, 256);
            put_range(&b, -1, 110, 2);
            put_range(&b, -1, 110, 10);
            put_u32(&b, 200);
            put_range(&b, -1, 70000, sizes[s][0]);
            put_range(&b, -1, 70000, sizes[s][1]);
            put_str(&b, 64, "<__media__>Describe this image.", 31);
            put_range(&b, 1, 200, 40 + (int)s * 20);
            put_range(&b, 1, 200, 24 + (int)s * 10);
            put_u8(&b, (unsigned)s);
            for (int i = 0; i < 16; i++)
                put_u8(&b, (unsigned)(i * 29 + s));
            write_bytes("vision-plan", &b, "plan-%zu-%u", s, mode);
            free(b.p);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make-seeds DATA_DIR TOKENIZER_DATA_DIR OUT_DIR\n");
        return 2;
    }
    const char *data = argv[1], *tok = argv[2];
    out_dir = argv[3];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    static const char *const models[] = {
        "text/tiny-q4_0/lfm2-tiny-q4_0.gguf",      "text/tiny-q8_0/lfm2-tiny-q8_0.gguf",
        "text/tiny-f16/lfm2-tiny-f16.gguf",        "text/tiny-bf16/lfm2-tiny-bf16.gguf",
        "text/small-q4_k_m/lfm2-small-q4_k_m.gguf", "text/moe/tiny-moe-q8_0/lfm2moe-tiny-q8_0.gguf",
        "vision/lfm2-vl-tiny-text-q4_0.gguf",
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        gguf_tables(data, models[i], "model");
    gguf_tables(data, "vision/lfm2-vl-tiny-mmproj-f32.gguf", "mmproj");
    small_ggufs();

    char path[4096];
    snprintf(path, sizeof path, "%s/text/tokenize/strings.bin", data);
    each_string(path, tokenizer_seed);
    each_string(path, chat_seed);
    snprintf(path, sizeof path, "%s/extra.bin", tok);
    each_string(path, extra_tokenizer_seed);
    tensors_seeds();
    plan_seeds();
    printf("make-seeds: %d seeds in %s\n", n_written, out_dir);
    return 0;
}
