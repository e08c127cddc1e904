/* test-tokenizer-edge — what the llama.cpp fixtures do not pin down:
 *   - the BPE merge loop against a naive reference (lowest rank, leftmost first) on a long
 *     random text, for both fixture vocabularies;
 *   - small synthetic vocabularies written with the GGUF writer: merge order, merge results
 *     that are not tokens, ignore_merges, duplicate and empty entries, USER_DEFINED tokens,
 *     longest-special-first partition, special ids and end-of-generation by text;
 *   - bad vocabularies: each refused with an error naming the file and the key;
 *   - the streaming detokenizer at every byte boundary, on invalid sequences and control
 *     tokens; input bytes llama.cpp cannot handle (code points past U+10FFFF);
 *   - the chat layout with tools, tool turns and truncation;
 *   - the lfm2.h wrappers through a loaded model.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-gguf.h"
#include "lfm2.h"
#include "unicode.h"
#include "vocab.h"

#include "lfm2-test.h"

static const char *g_data;
static char *g_tmpdir;

/* ---- helpers ------------------------------------------------------------------------------- */

/* GPT-2 bytes_to_unicode, written out independently of the engine. */
static void byte_spelling(unsigned b, char out[3])
{
    unsigned cp;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) {
        cp = b;
    } else {
        unsigned n = 0;   /* rank of b among the non-printable bytes */
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static GString *spell(const char *s, size_t n)
{
    GString *g = g_string_new(NULL);
    for (size_t i = 0; i < n; i++) {
        char b[3];
        byte_spelling((unsigned char)s[i], b);
        g_string_append(g, b);
    }
    return g;
}

static char *fmt_ids(const lfm2_token *t, int n)
{
    GString *s = g_string_new("[");
    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "%s%d", i ? ", " : "", t[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

static int tok(const struct lfm2_vocab *v, const char *text, size_t len, bool add_special,
               bool parse_special, lfm2_token **out)
{
    int32_t n = lfm2_vocab_tokenize(v, text, (int32_t)len, NULL, 0, add_special, parse_special);
    CHECK(n <= 0 && n != INT32_MIN, "count-only tokenize: %d (%s)", (int)n, lfm2_last_error());
    const int32_t need = n < 0 ? -n : 0;
    *out = malloc(((size_t)need + 1) * sizeof **out);
    n = lfm2_vocab_tokenize(v, text, (int32_t)len, *out, need, add_special, parse_special);
    CHECK(n == need, "tokenize with the size asked for: %d vs %d", (int)n, (int)need);
    return n < 0 ? 0 : n;
}

static void expect_ids(const struct lfm2_vocab *v, const char *text, bool parse_special,
                       const lfm2_token *exp, int n_exp, const char *what)
{
    lfm2_token *got;
    const int n = tok(v, text, strlen(text), false, parse_special, &got);
    const bool ok = n == n_exp && memcmp(got, exp, (size_t)n * sizeof *got) == 0;
    if (!ok) {
        char *a = fmt_ids(exp, n_exp), *b = fmt_ids(got, n);
        CHECK(ok, "%s: expected %s, got %s", what, a, b);
        g_free(a);
        g_free(b);
    }
    free(got);
}

static lfm2_token id_of(const struct lfm2_vocab *v, const char *text)
{
    const lfm2_token t = lfm2_vocab_lookup(v, text, strlen(text));
    CHECK(t >= 0, "no token '%s'", text);
    return t;
}

/* byte-level token of one raw byte */
static lfm2_token byte_tok(const struct lfm2_vocab *v, unsigned char b)
{
    char s[3];
    byte_spelling(b, s);
    return id_of(v, s);
}

static struct lfm2_vocab *open_fixture(const char *rel, lfm2_gguf **g)
{
    char *path = g_build_filename(g_data, rel, NULL);
    *g = lfm2_gguf_open(path, true);
    g_free(path);
    CHECK(*g, "open %s: %s", rel, lfm2_last_error());
    struct lfm2_vocab *v = *g ? lfm2_vocab_load(*g) : NULL;
    CHECK(v || !*g, "vocab %s: %s", rel, lfm2_last_error());
    return v;
}

/* ---- naive BPE reference over a fixture vocabulary ----------------------------------------- */

struct ref {
    GHashTable *tok;     /* text -> id + 1 (last id wins) */
    GHashTable *rank;    /* "left right" -> rank + 1 (first rank wins) */
};

static void ref_init(struct ref *r, const lfm2_gguf *g)
{
    r->tok = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    r->rank = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    enum lfm2_gguf_type et;
    uint64_t n;
    lfm2_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = lfm2_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        g_hash_table_insert(r->tok, g_strndup(s, len), GINT_TO_POINTER((int)i + 1));
    }
    lfm2_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = lfm2_gguf_arr_str(g, "tokenizer.ggml.merges", i, &len);
        char *k = g_strndup(s, len);
        if (!g_hash_table_contains(r->rank, k))
            g_hash_table_insert(r->rank, k, GINT_TO_POINTER((int)i + 1));
        else
            g_free(k);
    }
}

static void ref_free(struct ref *r)
{
    g_hash_table_destroy(r->tok);
    g_hash_table_destroy(r->rank);
}

static int ref_id(const struct ref *r, const char *s)
{
    return GPOINTER_TO_INT(g_hash_table_lookup(r->tok, s)) - 1;
}

/* One pre-token (raw bytes): whole-word lookup, else repeatedly merge the adjacent pair with
 * the lowest rank (leftmost on ties) — quadratic and obviously right. */
static void ref_word(const struct ref *r, const char *raw, size_t n, GArray *out)
{
    GString *w = spell(raw, n);
    int id = ref_id(r, w->str);
    if (id >= 0) {
        g_array_append_val(out, id);
        g_string_free(w, TRUE);
        return;
    }
    GPtrArray *sym = g_ptr_array_new_with_free_func(g_free);
    for (const char *p = w->str; *p;) {
        const char *q = g_utf8_next_char(p);
        g_ptr_array_add(sym, g_strndup(p, (gsize)(q - p)));
        p = q;
    }
    for (;;) {
        int best = -1, best_rank = 0;
        for (guint i = 0; i + 1 < sym->len; i++) {
            char *k = g_strconcat(sym->pdata[i], " ", sym->pdata[i + 1], NULL);
            const int rk = GPOINTER_TO_INT(g_hash_table_lookup(r->rank, k));
            g_free(k);
            if (rk > 0 && (best < 0 || rk < best_rank)) {
                best = (int)i;
                best_rank = rk;
            }
        }
        if (best < 0)
            break;
        char *m = g_strconcat(sym->pdata[best], sym->pdata[best + 1], NULL);
        g_free(sym->pdata[best]);
        sym->pdata[best] = m;
        g_ptr_array_remove_index(sym, (guint)best + 1);
    }
    for (guint i = 0; i < sym->len; i++) {
        id = ref_id(r, sym->pdata[i]);
        CHECK(id >= 0, "reference: symbol '%s' is not a token", (char *)sym->pdata[i]);
        g_array_append_val(out, id);
    }
    g_ptr_array_free(sym, TRUE);
    g_string_free(w, TRUE);
}

/* Random valid UTF-8 text without special-token texts: words, numbers, spaces, newlines,
 * punctuation and multi-byte characters of several scripts. */
static GString *random_text(GRand *rng, size_t bytes)
{
    static const char *const pool[] = {
        "the", " the", " quick", " brown", " fox", "jumps", " over", " lazy", " dog", "Hello",
        ",", ".", "!", "?", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "'s", "'re", "'LL",
        "0", "12", "345", "6789", "3.14", "-42", "café", " naïve", " über", "Доброе", " утро",
        "Καλημέρα", "中文", "日本語", "한국어", "😀", "🚀", "€", "→", "∑", "(", ")", "{", "}",
        "[", "]", "\"", ":", ";", "=", "+", "_", "x", "y", "z", "aaaa", "MiXeD", "ALLCAPS",
        "\u00a0", "\u3000", "e\u0301", "ß", "Ç", "…",
    };
    GString *s = g_string_new(NULL);
    while (s->len < bytes)
        g_string_append(s, pool[g_rand_int_range(rng, 0, G_N_ELEMENTS(pool))]);
    return s;
}

static void check_long_text(const char *rel)
{
    lfm2_gguf *g;
    struct lfm2_vocab *v = open_fixture(rel, &g);
    if (!v) {
        lfm2_gguf_close(g);
        return;
    }
    struct ref r;
    ref_init(&r, g);
    GRand *rng = g_rand_new_with_seed(7);
    GString *text = random_text(rng, 120 * 1024);

    /* ours */
    lfm2_token *ids;
    const int n = tok(v, text->str, text->len, false, false, &ids);

    /* reference: the engine's pre-tokenizer (checked against llama.cpp by test-tokenizer), then
     * the naive merge loop on each piece */
    GArray *exp = g_array_new(FALSE, FALSE, sizeof(lfm2_token));
    uint32_t *cp = malloc(text->len * sizeof *cp), *lens = malloc(text->len * sizeof *lens);
    uint8_t *cls = malloc(text->len);
    size_t ncp = 0;
    for (size_t p = 0; p < text->len;) {
        cp[ncp] = lfm2_utf8_next((const uint8_t *)text->str, text->len, &p);
        cls[ncp] = (uint8_t)lfm2_cpt_class(cp[ncp]);
        ncp++;
    }
    const size_t nw = lfm2_pretok_llama3(cp, cls, ncp, lens);
    const char *p = text->str;
    for (size_t k = 0; k < nw; k++) {
        const char *q = p;
        for (uint32_t c = 0; c < lens[k]; c++)
            q = g_utf8_next_char(q);
        ref_word(&r, p, (size_t)(q - p), exp);
        p = q;
    }
    CHECK(p == text->str + text->len, "%s: pre-tokens cover the text", rel);
    bool same = (int)exp->len == n && memcmp(exp->data, ids, (size_t)n * sizeof *ids) == 0;
    if (!same) {
        int first = 0;
        while (first < n && first < (int)exp->len && ids[first] == g_array_index(exp, lfm2_token, first))
            first++;
        CHECK(same, "%s: long text: %d tokens vs reference %u, first difference at %d", rel, n,
              exp->len, first);
    }

    /* the same text with <|im_end|> between chunks, parsed: chunks' tokens + the special id */
    const lfm2_token im_end = id_of(v, "<|im_end|>");
    GString *joined = g_string_new(NULL);
    GArray *exp2 = g_array_new(FALSE, FALSE, sizeof(lfm2_token));
    for (int c = 0; c < 200; c++) {
        GString *chunk = random_text(rng, (size_t)g_rand_int_range(rng, 1, 600));
        lfm2_token *ci;
        const int nc = tok(v, chunk->str, chunk->len, false, true, &ci);
        g_array_append_vals(exp2, ci, (guint)nc);
        g_array_append_val(exp2, im_end);
        g_string_append_len(joined, chunk->str, (gssize)chunk->len);
        g_string_append(joined, "<|im_end|>");
        free(ci);
        g_string_free(chunk, TRUE);
    }
    lfm2_token *ids2;
    const int n2 = tok(v, joined->str, joined->len, false, true, &ids2);
    CHECK(n2 == (int)exp2->len && memcmp(ids2, exp2->data, (size_t)n2 * sizeof *ids2) == 0,
          "%s: chunks separated by <|im_end|>", rel);

    /* streaming round trip of the long text */
    struct lfm2_detok d;
    lfm2_detok_init(&d, false);
    GString *back = g_string_new(NULL);
    char buf[256];
    for (int i = 0; i < n; i++) {
        const int32_t w = lfm2_vocab_detok_push(v, &d, ids[i], buf, sizeof buf);
        CHECK(w >= 0, "detok push");
        g_string_append_len(back, buf, w > 0 ? w : 0);
    }
    CHECK(lfm2_detok_flush(&d, buf, sizeof buf) == 0, "nothing pending at the end");
    CHECK(back->len == text->len && memcmp(back->str, text->str, text->len) == 0,
          "%s: long text round trip", rel);

    /* degenerate inputs: one 200 000-letter pre-token, 100 000 special tokens, many '<' */
    GString *as = g_string_new(NULL);
    for (int i = 0; i < 200000; i++)
        g_string_append_c(as, 'a');
    lfm2_token *ia;
    const int na = tok(v, as->str, as->len, false, false, &ia);
    GString *ab = g_string_new(NULL);
    for (int i = 0; i < na; i++) {
        char pc[64];
        const int32_t w = lfm2_vocab_token_to_piece(v, ia[i], pc, sizeof pc, false);
        g_string_append_len(ab, pc, w > 0 ? w : 0);
    }
    CHECK(na > 0 && g_string_equal(as, ab), "%s: 200000 'a' round trip (%d tokens)", rel, na);
    GString *sp = g_string_new(NULL);
    for (int i = 0; i < 100000; i++)
        g_string_append(sp, "<|im_start|>");
    lfm2_token *is;
    const int ns = tok(v, sp->str, sp->len, false, true, &is);
    const lfm2_token im_start = id_of(v, "<|im_start|>");
    bool all = ns == 100000;
    for (int i = 0; all && i < ns; i++)
        all = is[i] == im_start;
    CHECK(all, "%s: 100000 <|im_start|> give %d tokens", rel, ns);
    GString *lt = g_string_new(NULL);
    for (int i = 0; i < 50000; i++)
        g_string_append(lt, i % 7 ? "<|" : "<");
    lfm2_token *il;
    const int nl = tok(v, lt->str, lt->len, false, true, &il);
    CHECK(nl > 0, "%s: '<' runs", rel);

    free(ids);
    free(ids2);
    free(ia);
    free(is);
    free(il);
    free(cp);
    free(lens);
    free(cls);
    g_string_free(as, TRUE);
    g_string_free(ab, TRUE);
    g_string_free(sp, TRUE);
    g_string_free(lt, TRUE);
    g_string_free(back, TRUE);
    g_string_free(joined, TRUE);
    g_array_free(exp, TRUE);
    g_array_free(exp2, TRUE);
    g_string_free(text, TRUE);
    g_rand_free(rng);
    ref_free(&r);
    lfm2_vocab_free(v);
    lfm2_gguf_close(g);
}

/* ---- the streaming detokenizer --------------------------------------------------------------- */

/* Bytes fed one byte-token at a time: after each, the output is the longest prefix of complete
 * characters. */
static void check_detok_boundaries(const struct lfm2_vocab *v)
{
    const char *text = "aé中😀€\u0301 Ωж\xf0\x9f\x87\xab\xf0\x9f\x87\xb7z";
    const size_t n = strlen(text);
    struct lfm2_detok d;
    lfm2_detok_init(&d, false);
    GString *out = g_string_new(NULL);
    for (size_t k = 0; k < n; k++) {
        char buf[32];
        const int32_t w = lfm2_vocab_detok_push(v, &d, byte_tok(v, (unsigned char)text[k]), buf, sizeof buf);
        CHECK(w >= 0, "push");
        g_string_append_len(out, buf, w > 0 ? w : 0);
        /* expected: text[0..e) with e the end of the last character complete within k+1 bytes */
        size_t e = 0;
        for (const char *p = text; p < text + k + 1;) {
            const char *q = g_utf8_next_char(p);
            if (q > text + k + 1)
                break;
            e = (size_t)(q - text);
            p = q;
        }
        CHECK(out->len == e && memcmp(out->str, text, e) == 0, "after byte %zu: %zu bytes out, expected %zu",
              k, out->len, e);
        CHECK((size_t)d.n_pending == k + 1 - e, "pending after byte %zu", k);
    }
    g_string_free(out, TRUE);

    /* invalid sequences: one U+FFFD per maximal subpart (Unicode 3.9, "best practice") */
    static const struct { const char *in; const char *out; } cases[] = {
        {"\xc3" "a", "\xef\xbf\xbd" "a"},
        {"\xe2\x82", "\xef\xbf\xbd"},                       /* truncated at the end (flush) */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},   /* surrogate */
        {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},           /* overlong */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf0\x9f\x98" "x", "\xef\xbf\xbd" "x"},
        {"\x80\xbf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xff" "ok", "\xef\xbf\xbd" "ok"},
        {"\xe2\x82\xac", "\xe2\x82\xac"},
    };
    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        lfm2_detok_init(&d, false);
        GString *o = g_string_new(NULL);
        char buf[32];
        for (const char *p = cases[c].in; *p; p++) {
            const int32_t w = lfm2_vocab_detok_push(v, &d, byte_tok(v, (unsigned char)*p), buf, sizeof buf);
            g_string_append_len(o, buf, w > 0 ? w : 0);
        }
        const int32_t w = lfm2_detok_flush(&d, buf, sizeof buf);
        g_string_append_len(o, buf, w > 0 ? w : 0);
        CHECK(strcmp(o->str, cases[c].out) == 0, "invalid case %zu", c);
        g_string_free(o, TRUE);
    }

    /* control tokens: skipped unless special; a too-small buffer keeps the state */
    const lfm2_token im_end = id_of(v, "<|im_end|>");
    char buf[64];
    lfm2_detok_init(&d, false);
    CHECK(lfm2_vocab_detok_push(v, &d, im_end, buf, sizeof buf) == 0 && buf[0] == 0, "control hidden");
    lfm2_detok_init(&d, true);
    CHECK(lfm2_vocab_detok_push(v, &d, byte_tok(v, 0xE2), buf, sizeof buf) == 0, "lead byte held");
    CHECK(lfm2_vocab_detok_push(v, &d, im_end, buf, 4) == -(3 + 10 + 1), "size asked for");
    CHECK(d.n_pending == 1, "state kept");
    const int32_t w = lfm2_vocab_detok_push(v, &d, im_end, buf, sizeof buf);
    CHECK(w == 13 && memcmp(buf, "\xef\xbf\xbd<|im_end|>", 14) == 0, "control shown");
    CHECK(lfm2_vocab_detok_push(v, &d, -1, buf, sizeof buf) == 0, "invalid id gives nothing");
    CHECK(lfm2_vocab_detok_push(v, &d, lfm2_vocab_n_tokens(v), buf, sizeof buf) == 0, "id past the end");
    lfm2_clear_error();
    CHECK(lfm2_vocab_detok_push(v, NULL, im_end, buf, sizeof buf) == INT32_MIN && *lfm2_last_error(),
          "no state: an error");
    CHECK(lfm2_detok_flush(NULL, buf, sizeof buf) == INT32_MIN, "flush without state: an error");
    lfm2_clear_error();

    /* token_to_piece: control text only with special */
    CHECK(lfm2_vocab_token_to_piece(v, im_end, buf, sizeof buf, false) == 0, "piece hidden");
    CHECK(lfm2_vocab_token_to_piece(v, im_end, buf, sizeof buf, true) == 10, "piece shown");
    CHECK(lfm2_vocab_token_to_piece(v, im_end, buf, 3, true) == -10, "piece too long");
    CHECK(lfm2_vocab_token_to_piece(v, 100000, buf, sizeof buf, true) == 0, "invalid id piece");
}

/* Bytes llama.cpp's tokenizer aborts on (F4 90.. = past U+10FFFF): each byte is a U+FFFD. */
static void check_invalid_input(const struct lfm2_vocab *v)
{
    lfm2_token *a, *b;
    const int na = tok(v, "\xf4\x90\x80\x80z\xf7\xbf\xbf\xbf", 9, false, false, &a);
    const char *fffd8 = "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "z"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
    const int nb = tok(v, fffd8, strlen(fffd8), false, false, &b);
    CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0, "bytes past U+10FFFF");
    free(a);
    free(b);
    /* a NUL byte inside the text is text; the empty text gives nothing (or just BOS) */
    const int nz = tok(v, "a\0b", 3, false, false, &a);
    CHECK(nz == 3 && a[1] == byte_tok(v, 0), "NUL inside the text");
    free(a);
    CHECK(lfm2_vocab_tokenize(v, "", 0, NULL, 0, false, true) == 0, "empty");
    lfm2_token one;
    CHECK(lfm2_vocab_tokenize(v, "", 0, &one, 1, true, true) == 1 && one == lfm2_vocab_bos(v), "empty + BOS");
    CHECK(lfm2_vocab_tokenize(v, NULL, 5, &one, 1, true, true) == INT32_MIN, "NULL text");
    CHECK(lfm2_vocab_tokenize(v, "x", 1, NULL, 4, true, true) == INT32_MIN, "NULL output");
    CHECK(lfm2_vocab_tokenize(v, "x", -1, &one, 1, false, true) == 1, "NUL-terminated text");
}

/* ---- synthetic vocabularies ----------------------------------------------------------------- */

struct synth {
    GPtrArray *tokens;   /* char * */
    GArray *types;       /* int32 */
    GPtrArray *merges;
};

static void synth_init(struct synth *s)
{
    s->tokens = g_ptr_array_new_with_free_func(g_free);
    s->types = g_array_new(FALSE, FALSE, sizeof(int32_t));
    s->merges = g_ptr_array_new_with_free_func(g_free);
}

static void synth_free(struct synth *s)
{
    g_ptr_array_free(s->tokens, TRUE);
    g_array_free(s->types, TRUE);
    g_ptr_array_free(s->merges, TRUE);
}

static int synth_add(struct synth *s, const char *text, int32_t type)
{
    g_ptr_array_add(s->tokens, g_strdup(text));
    g_array_append_val(s->types, type);
    return (int)s->tokens->len - 1;
}

/* 4 control tokens, then the 256 bytes in byte-level spelling */
static void synth_base(struct synth *s)
{
    synth_add(s, "<|pad|>", 3);
    synth_add(s, "<|startoftext|>", 3);
    synth_add(s, "<|endoftext|>", 3);
    synth_add(s, "<|im_end|>", 3);
    for (unsigned b = 0; b < 256; b++) {
        char sp[3];
        byte_spelling(b, sp);
        synth_add(s, sp, 1);
    }
}

/* Which keys to write (bits), to build bad files. */
enum {
    K_MODEL = 1, K_PRE = 2, K_TOKENS = 4, K_TYPES = 8, K_MERGES = 16, K_IDS = 32, ALL = 63,
};

static char *synth_write(const struct synth *s, unsigned keys, const char *model, const char *pre,
                         void (*extra)(lfm2_gguf_writer *))
{
    static int counter;
    char name[64];
    snprintf(name, sizeof name, "synth-%d.gguf", counter++);
    char *path = g_build_filename(g_tmpdir, name, NULL);
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    lfm2_gguf_set_str(w, "general.architecture", "lfm2");
    if (keys & K_MODEL)
        lfm2_gguf_set_str(w, "tokenizer.ggml.model", model);
    if (keys & K_PRE)
        lfm2_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    if (keys & K_TOKENS)
        lfm2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)s->tokens->pdata,
                              s->tokens->len);
    if (keys & K_TYPES)
        lfm2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", (const int32_t *)s->types->data,
                              s->types->len);
    if (keys & K_MERGES)
        lfm2_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)s->merges->pdata,
                              s->merges->len);
    if (keys & K_IDS) {
        lfm2_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        lfm2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 3);
        lfm2_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    }
    if (extra)
        extra(w);
    CHECK(lfm2_gguf_writer_write(w, path) == 0, "write %s: %s", path, lfm2_last_error());
    lfm2_gguf_writer_free(w);
    return path;
}

static struct lfm2_vocab *synth_load(const char *path, lfm2_gguf **g)
{
    *g = lfm2_gguf_open(path, true);
    CHECK(*g, "open %s: %s", path, lfm2_last_error());
    return *g ? lfm2_vocab_load(*g) : NULL;
}

/* Loading must fail with a message naming the file and `needle`. */
static void expect_refused(const struct synth *s, unsigned keys, const char *model, const char *pre,
                           void (*extra)(lfm2_gguf_writer *), const char *needle)
{
    char *path = synth_write(s, keys, model, pre, extra);
    lfm2_gguf *g;
    lfm2_clear_error();
    struct lfm2_vocab *v = synth_load(path, &g);
    const char *e = lfm2_last_error();
    CHECK(!v, "loading should fail (%s)", needle);
    CHECK(strstr(e, path) && strstr(e, needle), "error '%s' should name the file and '%s'", e, needle);
    lfm2_vocab_free(v);
    lfm2_gguf_close(g);
    g_remove(path);
    g_free(path);
}

static void extra_bad_types(lfm2_gguf_writer *w)
{
    const int32_t t[3] = {1, 1, 1};
    lfm2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", t, 3);
}

static void extra_tokens_not_strings(lfm2_gguf_writer *w)
{
    const int32_t t[3] = {1, 2, 3};
    lfm2_gguf_set_arr_i32(w, "tokenizer.ggml.tokens", t, 3);
}

static void extra_add_eos_no_eos(lfm2_gguf_writer *w)
{
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", true);
    lfm2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 100000);   /* out of range: ignored */
}

static void extra_bos_string(lfm2_gguf_writer *w)
{
    lfm2_gguf_set_str(w, "tokenizer.ggml.bos_token_id", "one");
}

static void extra_eot_key(lfm2_gguf_writer *w)
{
    lfm2_gguf_set_u32(w, "tokenizer.ggml.eot_token_id", 2);
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", true);
}

static void check_synthetic(void)
{
    struct synth s;
    synth_init(&s);
    synth_base(&s);
    /* merges: "a b" (0), "b c" (1), "ab c" (2); "x y" whose result is not a token; "a a" (4) */
    const int t_ab = synth_add(&s, "ab", 1);
    const int t_abc = synth_add(&s, "abc", 1);
    const int t_aa = synth_add(&s, "aa", 1);
    const int t_hello = synth_add(&s, "hello", 1);   /* reachable only through ignore_merges */
    const int t_think = synth_add(&s, "<think>", 4);  /* USER_DEFINED */
    const int t_dup1 = synth_add(&s, "dup", 1);
    const int t_dup2 = synth_add(&s, "dup", 1);
    const int t_empty = synth_add(&s, "", 1);
    const int t_ctl_ab = synth_add(&s, "<AB>", 3);
    const int t_ctl_abcd = synth_add(&s, "<AB><CD>", 3);
    const int t_ov1 = synth_add(&s, "[xy", 3);       /* overlapping specials: the longer wins */
    const int t_ov2 = synth_add(&s, "y]]]", 3);
    const int t_eotid = synth_add(&s, "<|eot_id|>", 1);   /* NORMAL, made CONTROL + EOG */
    const int t_fimpad = synth_add(&s, "<|fim_pad|>", 1);
    for (int i = 0; i < 20; i++) {
        char u[32];
        snprintf(u, sizeof u, "<unused%d>", i);
        synth_add(&s, u, 5);   /* UNUSED */
    }
    g_ptr_array_add(s.merges, g_strdup("a b"));
    g_ptr_array_add(s.merges, g_strdup("b c"));
    g_ptr_array_add(s.merges, g_strdup("ab c"));
    g_ptr_array_add(s.merges, g_strdup("x y"));
    g_ptr_array_add(s.merges, g_strdup("a a"));
    g_ptr_array_add(s.merges, g_strdup("a b"));     /* repeated: keeps rank 0 */
    g_ptr_array_add(s.merges, g_strdup("nospace"));

    char *path = synth_write(&s, ALL, "gpt2", "lfm2", NULL);
    lfm2_gguf *g;
    struct lfm2_vocab *v = synth_load(path, &g);
    CHECK(v, "synthetic vocabulary: %s", lfm2_last_error());
    if (v) {
        const lfm2_token A = byte_tok(v, 'a'), B = byte_tok(v, 'b'), C = byte_tok(v, 'c'),
                         X = byte_tok(v, 'x'), Y = byte_tok(v, 'y'), SP = byte_tok(v, ' ');
        expect_ids(v, "abc", false, (lfm2_token[]){t_abc}, 1, "a b, then ab c");
        expect_ids(v, "abcb", false, (lfm2_token[]){t_abc, B}, 2, "abcb");
        expect_ids(v, "bc", false, (lfm2_token[]){B, C}, 2, "b c has no token: its bytes");
        expect_ids(v, "aaa", false, (lfm2_token[]){t_aa, A}, 2, "leftmost pair first");
        expect_ids(v, "aaaa", false, (lfm2_token[]){t_aa, t_aa}, 2, "aaaa");
        expect_ids(v, "aab", false, (lfm2_token[]){A, t_ab}, 2, "lower rank wins over leftmost");
        expect_ids(v, "xy", false, (lfm2_token[]){X, Y}, 2, "merge result not a token");
        expect_ids(v, "hello", false, (lfm2_token[]){t_hello}, 1, "ignore_merges");
        const lfm2_token H = byte_tok(v, 'h'), E = byte_tok(v, 'e'), L = byte_tok(v, 'l'),
                         O = byte_tok(v, 'o');
        expect_ids(v, " hello", false, (lfm2_token[]){SP, H, E, L, L, O}, 6, "Ġhello is no token");
        expect_ids(v, "a<think>b", false, (lfm2_token[]){A, t_think, B}, 3, "user-defined, plain");
        expect_ids(v, "<AB><CD>", true, (lfm2_token[]){t_ctl_abcd}, 1, "longest special first");
        expect_ids(v, "<AB><AB><CD>", true, (lfm2_token[]){t_ctl_ab, t_ctl_abcd}, 2, "specials");
        expect_ids(v, "[xy]]]", true, (lfm2_token[]){byte_tok(v, '['), X, t_ov2}, 3,
                   "overlapping specials: the longer one is cut first");
        (void)t_ov1;
        CHECK(lfm2_vocab_lookup(v, "dup", 3) == t_dup2 && t_dup1 != t_dup2, "repeated text: last id");
        char ename[32];
        snprintf(ename, sizeof ename, "[EMPTY_%d]", t_empty);
        CHECK(lfm2_vocab_lookup(v, ename, strlen(ename)) == t_empty, "empty entry renamed");
        CHECK(lfm2_vocab_n_merges(v) == 6, "distinct merges: %d", lfm2_vocab_n_merges(v));
        CHECK(lfm2_vocab_bos(v) == 1 && lfm2_vocab_eos(v) == 3 && lfm2_vocab_pad(v) == 0, "ids");
        CHECK(lfm2_vocab_nl(v) == byte_tok(v, '\n'), "nl");
        /* eot by text: <|im_end|>, <|endoftext|> and <|eot_id|> are candidates; it must be one
         * of them; EOG has all of them plus fim_pad */
        const lfm2_token eot = lfm2_vocab_eot(v);
        CHECK(eot == 2 || eot == 3 || eot == t_eotid, "eot %d", eot);
        lfm2_token eog[16];
        const int ne = lfm2_vocab_eog_ids(v, eog, 16);
        CHECK(ne == 4 && eog[0] == 2 && eog[1] == 3 && eog[2] == t_eotid && eog[3] == t_fimpad,
              "eog set (%d)", ne);
        CHECK(lfm2_vocab_is_control(v, t_eotid) && lfm2_vocab_is_control(v, t_fimpad),
              "detected tokens become control");
        expect_ids(v, "<|eot_id|>", true, (lfm2_token[]){t_eotid}, 1, "detected token is special");
        CHECK(!lfm2_vocab_is_control(v, t_think), "user-defined is not control");
        char pc[16];
        CHECK(lfm2_vocab_token_to_piece(v, t_think, pc, sizeof pc, false) == 7, "user-defined shown");
        CHECK(lfm2_vocab_token_to_piece(v, t_fimpad + 1, pc, sizeof pc, true) == 0, "unused: empty piece");
        lfm2_token *ids;
        const int n = tok(v, "ab", 2, true, true, &ids);
        CHECK(n == 2 && ids[0] == 1 && ids[1] == t_ab, "BOS added by add_special");
        free(ids);
    }
    lfm2_vocab_free(v);
    lfm2_gguf_close(g);
    g_remove(path);
    g_free(path);

    /* explicit eot key, add_bos off, add_eos on */
    path = synth_write(&s, ALL, "gpt2", "llama-bpe", extra_eot_key);
    v = synth_load(path, &g);
    CHECK(v, "synthetic (eot key): %s", lfm2_last_error());
    if (v) {
        CHECK(lfm2_vocab_eot(v) == 2, "eot from its key");
        lfm2_token *ids;
        const int n = tok(v, "ab", 2, true, true, &ids);
        CHECK(n == 2 && ids[0] == t_ab && ids[1] == 3, "no BOS, EOS added");
        free(ids);
    }
    lfm2_vocab_free(v);
    lfm2_gguf_close(g);
    g_remove(path);
    g_free(path);

    /* refused files */
    expect_refused(&s, ALL & ~K_MODEL, "gpt2", "lfm2", NULL, "tokenizer.ggml.model");
    expect_refused(&s, ALL, "llama", "lfm2", NULL, "'llama'");
    expect_refused(&s, ALL & ~K_PRE, "gpt2", "lfm2", NULL, "tokenizer.ggml.pre");
    expect_refused(&s, ALL, "gpt2", "qwen2", NULL, "'qwen2'");
    expect_refused(&s, ALL & ~K_TOKENS, "gpt2", "lfm2", NULL, "tokenizer.ggml.tokens");
    expect_refused(&s, ALL & ~K_TOKENS, "gpt2", "lfm2", extra_tokens_not_strings, "tokenizer.ggml.tokens");
    expect_refused(&s, ALL & ~K_MERGES, "gpt2", "lfm2", NULL, "tokenizer.ggml.merges");
    expect_refused(&s, ALL & ~K_TYPES, "gpt2", "lfm2", extra_bad_types, "tokenizer.ggml.token_type");
    expect_refused(&s, ALL, "gpt2", "lfm2", extra_bos_string, "tokenizer.ggml.bos_token_id");
    {
        /* add_eos with no valid eos: a vocabulary too small for the default id 11 */
        struct synth t;
        synth_init(&t);
        for (int i = 0; i < 8; i++) {
            char b[2] = {(char)('a' + i), 0};
            synth_add(&t, b, 1);
        }
        expect_refused(&t, ALL & ~K_IDS, "gpt2", "lfm2", extra_add_eos_no_eos, "add_bos");
        synth_free(&t);
    }
    synth_free(&s);
}

/* ---- chat layout ------------------------------------------------------------------------------ */

static void check_chat(const struct lfm2_vocab *v)
{
    const struct lfm2_chat_message conv[] = {
        {"system", "You are helpful."},
        {"user", "What's the weather in Paris?"},
        {"assistant", "<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>"},
        {"tool", "{\"temp\": 21}"},
        {"assistant", "It is 21 degrees."},
    };
    const char *tools = "  [{\"name\": \"get_weather\", \"parameters\": {\"city\": \"string\"}}]\n";
    const char *exp =
        "<|im_start|>system\nYou are helpful.\nList of tools: <|tool_list_start|>"
        "[{\"name\": \"get_weather\", \"parameters\": {\"city\": \"string\"}}]<|tool_list_end|><|im_end|>\n"
        "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|><|im_end|>\n"
        "<|im_start|>tool\n<|tool_response_start|>{\"temp\": 21}<|tool_response_end|><|im_end|>\n"
        "<|im_start|>assistant\nIt is 21 degrees.<|im_end|>\n"
        "<|im_start|>assistant\n";
    char buf[2048];
    int32_t n = lfm2_chat_apply(conv, 5, tools, true, buf, sizeof buf);
    CHECK(n == (int32_t)strlen(exp) && strcmp(buf, exp) == 0, "tools layout:\n%s", buf);

    /* the markers are single control tokens when parsed */
    lfm2_token *ids;
    const int ni = tok(v, buf, (size_t)n, true, true, &ids);
    const char *markers[] = {"<|tool_list_start|>", "<|tool_list_end|>", "<|tool_call_start|>",
                             "<|tool_call_end|>", "<|tool_response_start|>", "<|tool_response_end|>"};
    for (size_t k = 0; k < G_N_ELEMENTS(markers); k++) {
        const lfm2_token t = id_of(v, markers[k]);
        int count = 0;
        for (int i = 0; i < ni; i++)
            count += ids[i] == t;
        CHECK(count == 1 && lfm2_vocab_is_control(v, t), "%s once in the ids", markers[k]);
    }
    free(ids);

    /* tools without a system message: a system turn with the list only; empty list: none */
    const char *exp2 = "<|im_start|>system\nList of tools: <|tool_list_start|>[1]<|tool_list_end|><|im_end|>\n"
                       "<|im_start|>user\nhi<|im_end|>\n";
    n = lfm2_chat_apply(conv + 1, 1, "[1]", false, buf, sizeof buf);
    CHECK(strcmp(buf, "<|im_start|>system\nList of tools: <|tool_list_start|>[1]<|tool_list_end|><|im_end|>\n"
                      "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n") == 0, "no system");
    const struct lfm2_chat_message hi[] = {{"system", ""}, {"user", "hi"}};
    n = lfm2_chat_apply(hi, 2, "[1]", false, buf, sizeof buf);
    CHECK(strcmp(buf, exp2) == 0, "empty system + tools:\n%s", buf);
    n = lfm2_chat_apply(hi, 2, " [ ] ", false, buf, sizeof buf);
    CHECK(strcmp(buf, "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n") == 0,
          "empty tool list = ChatML:\n%s", buf);
    CHECK(lfm2_chat_apply(hi, 2, "{\"a\": 1}", false, buf, sizeof buf) == INT32_MIN,
          "tools must be an array");
    const struct lfm2_chat_message norole[] = {{NULL, "x"}};
    CHECK(lfm2_chat_apply(norole, 1, NULL, false, buf, sizeof buf) == INT32_MIN, "role required");
    const struct lfm2_chat_message nocontent[] = {{"user", NULL}};
    n = lfm2_chat_apply(nocontent, 1, NULL, true, buf, sizeof buf);
    CHECK(strcmp(buf, "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n") == 0, "NULL content");
    CHECK(lfm2_chat_apply(NULL, 0, NULL, true, buf, sizeof buf) == 22 &&
          strcmp(buf, "<|im_start|>assistant\n") == 0, "no messages");

    /* too small: -(capacity needed, NUL included), as lfm2_tokenize and lfm2_detok_push */
    const int32_t need = lfm2_chat_apply(conv, 5, tools, true, NULL, 0);
    CHECK(need == -(int32_t)(strlen(exp) + 1), "size only: %d", (int)need);
    char small[20];
    n = lfm2_chat_apply(conv, 5, tools, true, small, sizeof small);
    CHECK(n == need && strlen(small) < sizeof small, "too small: %d", (int)n);
    char *exact = malloc((size_t)-need);
    n = lfm2_chat_apply(conv, 5, tools, true, exact, -need - 1);
    CHECK(n == need, "no room for the NUL: %d", (int)n);
    n = lfm2_chat_apply(conv, 5, tools, true, exact, -need);
    CHECK(n == (int32_t)strlen(exp) && strcmp(exact, exp) == 0, "the capacity asked for: %d", (int)n);
    free(exact);
}

/* ---- lfm2.h through a model ---------------------------------------------------------------------- */

static void check_model_api(void)
{
    char *path = g_build_filename(g_data, "text/tiny-f32/lfm2-tiny-f32.gguf", NULL);
    lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
    g_free(path);
    CHECK(m, "model: %s", lfm2_last_error());
    if (!m)
        return;
    const struct lfm2_vocab *v = lfm2_model_vocab(m);
    CHECK(v && lfm2_model_n_vocab(m) == lfm2_vocab_n_tokens(v), "n_vocab");
    CHECK(lfm2_token_bos(m) == lfm2_vocab_bos(v) && lfm2_token_eos(m) == lfm2_vocab_eos(v) &&
          lfm2_token_eot(m) == lfm2_vocab_eot(v) && lfm2_token_pad(m) == lfm2_vocab_pad(v) &&
          lfm2_add_bos(m) == lfm2_vocab_add_bos(v), "special ids");
    const lfm2_token im_end = lfm2_token_lookup(m, "<|im_end|>");
    CHECK(im_end >= 0 && strcmp(lfm2_token_text(m, im_end), "<|im_end|>") == 0, "lookup / text");
    CHECK(lfm2_token_is_eog(m, im_end) && lfm2_token_is_control(m, im_end), "eog / control");
    CHECK(lfm2_token_text(m, -1) == NULL && lfm2_token_text(m, lfm2_model_n_vocab(m)) == NULL,
          "bad ids");
    CHECK(lfm2_token_lookup(m, "no such token") == -1, "lookup miss");
    const char *text = "<|im_start|>user\nHello, wörld!<|im_end|>\n";
    lfm2_token a[64], b[64];
    const int32_t na = lfm2_tokenize(m, text, -1, a, 64, true, true);
    const int32_t nb = lfm2_vocab_tokenize(v, text, -1, b, 64, true, true);
    CHECK(na > 0 && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0, "tokenize");
    struct lfm2_detok d;
    lfm2_detok_init(&d, true);
    GString *out = g_string_new(NULL);
    for (int i = 1; i < na; i++) {
        char buf[64];
        const int32_t w = lfm2_detok_push(m, &d, a[i], buf, sizeof buf);
        g_string_append_len(out, buf, w > 0 ? w : 0);
        char pc[64];
        const int32_t np = lfm2_token_to_piece(m, a[i], pc, sizeof pc, true);
        CHECK(np >= 0, "piece");
    }
    CHECK(strcmp(out->str, text) == 0, "detok through the model: %s", out->str);
    g_string_free(out, TRUE);
    lfm2_model_free(m);
}

int main(void)
{
    g_data = getenv("LFM2_TEST_DATA");
    if (!g_data) {
        fprintf(stderr, "LFM2_TEST_DATA is not set\n");
        return 1;
    }
    GError *err = NULL;
    g_tmpdir = g_dir_make_tmp("lfm2-tok-XXXXXX", &err);
    if (!g_tmpdir) {
        fprintf(stderr, "tmpdir: %s\n", err->message);
        return 1;
    }

    check_long_text("text/tiny-f32/lfm2-tiny-f32.gguf");
    check_long_text("text/small-f32/lfm2-small-f32.gguf");

    lfm2_gguf *g;
    struct lfm2_vocab *v = open_fixture("text/small-f32/lfm2-small-f32.gguf", &g);
    if (v) {
        check_detok_boundaries(v);
        check_invalid_input(v);
        check_chat(v);
    }
    lfm2_vocab_free(v);
    lfm2_gguf_close(g);

    check_synthetic();
    check_model_api();

    g_rmdir(g_tmpdir);
    g_free(g_tmpdir);
    if (lfm2_test_failures)
        fprintf(stderr, "%d check(s) failed\n", lfm2_test_failures);
    else
        fprintf(stderr, "all checks passed\n");
    return lfm2_test_failures ? 1 : 0;
}
