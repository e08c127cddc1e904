/* fuzz-tokenizer — the BPE tokenizer (pre-tokenizer regexes, merges, special-token parsing)
 * and the streaming detokenizer, on the two vocabularies of tests/data (tiny: English merges,
 * small: multilingual).
 *
 * Input: byte 0 flags (bit 0 add_bos, bit 1 parse_special, bit 2 the small vocabulary,
 * bit 3 render control tokens in the detokenizer), byte 1 the detokenizer's output capacity
 * (1..256: too-small buffers must be refused, not overrun), then the text.
 *
 * Checked: ids are in the vocabulary; the size protocol (-(needed) when the buffer is short,
 * the same ids when it is not); tokenize → detokenize gives the text back for valid UTF-8
 * (without BOS, control tokens rendered exactly when they were parsed); the streaming output
 * is valid UTF-8 for ANY id sequence (the text's bytes read as 16-bit ids, invalid ids
 * included), and token_to_piece never writes past its buffer. */
#include "fuzz-common.h"

static lfm2_model *models[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    models[0] = fuzz_load_model("text/tiny-q4_0/lfm2-tiny-q4_0.gguf");
    models[1] = fuzz_load_model("text/small-q4_k_m/lfm2-small-q4_k_m.gguf");
    return 0;
}

/* Length of the valid UTF-8 prefix (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += len;
    }
    return n;
}

/* Streams ids through a detokenizer with an output buffer of `cap` bytes, growing a copy
 * when it is refused, and returns everything it wrote (malloc'd, *n_out bytes). */
static char *detokenize(const lfm2_model *m, const lfm2_token *ids, int32_t n, bool special,
                        int32_t cap, size_t *n_out)
{
    struct lfm2_detok d;
    size_t len = 0, alloc = 64;
    char *all = malloc(alloc), *out = malloc((size_t)cap);
    if (!all || !out)
        abort();
    lfm2_detok_init(&d, special);
    for (int32_t i = 0; i <= n; i++) {
        char *buf = out;
        int32_t c = cap;
        struct lfm2_detok before = d;
        int32_t r = i < n ? lfm2_detok_push(m, &d, ids[i], buf, c) : lfm2_detok_flush(&d, buf, c);
        if (r < 0) {
            FUZZ_ASSERT(r != INT32_MIN, "detok failed: %s", lfm2_last_error());
            FUZZ_ASSERT(-r > c, "refused a capacity of %d asking for %d", c, -r);
            FUZZ_ASSERT(before.n_pending == d.n_pending &&
                            !memcmp(before.pending, d.pending, (size_t)d.n_pending),
                        "a refused call changed the state");
            c = -r;
            buf = malloc((size_t)c);
            if (!buf)
                abort();
            r = i < n ? lfm2_detok_push(m, &d, ids[i], buf, c) : lfm2_detok_flush(&d, buf, c);
            FUZZ_ASSERT(r >= 0 && r + 1 == c, "asked for %d, then wrote %d", c, r);
        }
        FUZZ_ASSERT(buf[r] == '\0', "output not terminated");
        FUZZ_ASSERT(d.n_pending >= 0 && d.n_pending <= 3, "pending %d", d.n_pending);
        if (len + (size_t)r > alloc) {
            alloc = 2 * (len + (size_t)r);
            if (!(all = realloc(all, alloc)))
                abort();
        }
        memcpy(all + len, buf, (size_t)r);
        len += (size_t)r;
        if (buf != out)
            free(buf);
    }
    free(out);
    *n_out = len;
    return all;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    const uint8_t flags = fuzz_u8(&in);
    const int32_t cap = (int32_t)fuzz_range(&in, 1, 256);
    const bool add_bos = flags & 1, parse_special = flags & 2, special = flags & 8;
    const lfm2_model *m = models[(flags >> 2) & 1];
    const int n_vocab = lfm2_model_n_vocab(m);
    const char *text = (const char *)in.p;
    const int32_t text_len = (int32_t)in.n;

    /* size query, then the real call */
    int32_t need = lfm2_tokenize(m, text, text_len, NULL, 0, add_bos, parse_special);
    FUZZ_ASSERT(need != INT32_MIN, "tokenize failed: %s", lfm2_last_error());
    need = need < 0 ? -need : need;
    lfm2_token *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (!ids)
        abort();
    int32_t n = lfm2_tokenize(m, text, text_len, ids, need, add_bos, parse_special);
    FUZZ_ASSERT(n == need, "tokenize wrote %d of the %d ids it asked room for", n, need);
    if (n > 0) {
        /* one short: refused with the same count */
        int32_t r = lfm2_tokenize(m, text, text_len, ids, n - 1, add_bos, parse_special);
        FUZZ_ASSERT(r == -n, "capacity %d: got %d, expected %d", n - 1, r, -n);
    }
    for (int32_t i = 0; i < n; i++)
        FUZZ_ASSERT(ids[i] >= 0 && ids[i] < n_vocab, "id %d out of the vocabulary", ids[i]);

    /* round trip */
    size_t len;
    char *back = detokenize(m, ids, n, parse_special, cap, &len);
    FUZZ_ASSERT(utf8_valid_prefix((const uint8_t *)back, len) == len, "detok output not UTF-8");
    if (!add_bos && special == parse_special &&
        utf8_valid_prefix((const uint8_t *)text, (size_t)text_len) == (size_t)text_len)
        FUZZ_ASSERT(len == (size_t)text_len && !memcmp(back, text, len),
                    "round trip: %d bytes in, %zu out", text_len, len);
    free(back);
    free(ids);

    /* any id sequence, valid or not */
    const int32_t n_raw = text_len / 2;
    lfm2_token *raw = malloc(((size_t)n_raw + 1) * sizeof *raw);
    if (!raw)
        abort();
    for (int32_t i = 0; i < n_raw; i++) {
        const int v = (int16_t)(data[size - in.n + 2 * i] | data[size - in.n + 2 * i + 1] << 8);
        raw[i] = v % (n_vocab + 8);   /* mostly valid, some past the end, some negative */
    }
    back = detokenize(m, raw, n_raw, special, cap, &len);
    FUZZ_ASSERT(utf8_valid_prefix((const uint8_t *)back, len) == len, "detok output not UTF-8");
    free(back);
    for (int32_t i = 0; i < n_raw && i < 64; i++) {
        char piece[8];
        memset(piece, 0x55, sizeof piece);
        int32_t r = lfm2_token_to_piece(m, raw[i], piece, 4, special);
        FUZZ_ASSERT(r != INT32_MIN && r <= 4, "token_to_piece(%d) = %d", raw[i], r);
        FUZZ_ASSERT(piece[4] == 0x55, "token_to_piece wrote past its buffer");
        lfm2_token_text(m, raw[i]);
        lfm2_token_is_control(m, raw[i]);
    }
    free(raw);
    return 0;
}
