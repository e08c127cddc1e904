/* test-tokenizer — the tokenizer, detokenizer and special tokens against llama.cpp's own output
 * on every model of tests/data (and the extra strings of tests/tokenizer/data).
 *
 * For each model: special ids, end-of-generation set and control tokens as llama.cpp reports
 * them (metadata.json); the prompt and decode ids of logits.json; the chat renderings; the 29
 * fixture strings (text/tokenize) four ways with their pieces; the extra strings (invalid
 * UTF-8, every whitespace kind, contractions, digits…) the same way; detokenization round trips.
 */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2-gguf.h"
#include "lfm2.h"
#include "vocab.h"

#include "lfm2-test.h"

static const char *g_data;       /* tests/data */
static const char *g_tok_data;   /* tests/tokenizer/data (argv[1]) */

static JsonNode *load_json(const char *rel)
{
    char *path = g_build_filename(g_data, rel, NULL);
    GError *err = NULL;
    JsonParser *p = json_parser_new();
    JsonNode *root = NULL;
    if (!json_parser_load_from_file(p, path, &err)) {
        fprintf(stderr, "cannot parse %s: %s\n", path, err->message);
        g_error_free(err);
        lfm2_test_failures++;
    } else {
        root = json_node_copy(json_parser_get_root(p));
    }
    g_object_unref(p);
    g_free(path);
    return root;
}

/* ids of a JSON array into a malloc'ed array */
static lfm2_token *json_ids(JsonArray *a, int *n)
{
    *n = (int)json_array_get_length(a);
    lfm2_token *t = malloc(((size_t)*n + 1) * sizeof *t);
    for (int i = 0; i < *n; i++)
        t[i] = (lfm2_token)json_array_get_int_element(a, (guint)i);
    return t;
}

static char *fmt_ids(const lfm2_token *t, int n)
{
    GString *s = g_string_new("[");
    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "%s%d", i ? ", " : "", t[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

/* Tokenizes and compares with the expected ids; also checks the "too small buffer" contract. */
static void check_tokens(const struct lfm2_vocab *v, const char *what, const char *text, size_t len,
                         bool add_special, bool parse_special, const lfm2_token *exp, int n_exp)
{
    lfm2_token *got = malloc((len * 3 + 8) * sizeof *got);
    const int32_t n = lfm2_vocab_tokenize(v, text, (int32_t)len, got, (int32_t)(len * 3 + 8),
                                          add_special, parse_special);
    bool ok = n == n_exp && memcmp(got, exp, (size_t)n_exp * sizeof *exp) == 0;
    if (!ok) {
        char *a = fmt_ids(exp, n_exp), *b = fmt_ids(got, n < 0 ? 0 : n);
        CHECK(ok, "%s: expected %s, got %s (n=%d)", what, a, b, (int)n);
        g_free(a);
        g_free(b);
    }
    if (n_exp > 0) {
        /* a buffer one short gives -(count) and leaves room for retry */
        const int32_t m = lfm2_vocab_tokenize(v, text, (int32_t)len, got, n_exp - 1, add_special,
                                              parse_special);
        CHECK(m == -n_exp, "%s: with n_max %d expected %d, got %d", what, n_exp - 1, -n_exp, (int)m);
    }
    free(got);
}

static int hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}

/* Streams ids through the detokenizer, returns the concatenated output (NUL-terminated). */
static char *detok_all(const struct lfm2_vocab *v, const lfm2_token *ids, int n, bool special,
                       size_t *out_len)
{
    GString *s = g_string_new(NULL);
    struct lfm2_detok d;
    lfm2_detok_init(&d, special);
    char small[8];
    for (int i = 0; i < n; i++) {
        int32_t w = lfm2_vocab_detok_push(v, &d, ids[i], small, sizeof small);
        if (w < 0) {
            /* too small: the state must be kept, a retry with the size asked for succeeds */
            char *big = malloc((size_t)-w);
            const int32_t w2 = lfm2_vocab_detok_push(v, &d, ids[i], big, -w);
            CHECK(w2 == -w - 1, "detok retry wrote %d, expected %d", (int)w2, (int)(-w - 1));
            g_string_append_len(s, big, w2 > 0 ? w2 : 0);
            free(big);
        } else {
            CHECK(small[w] == 0, "detok output is NUL-terminated");
            g_string_append_len(s, small, w);
        }
    }
    char tail[16];
    const int32_t w = lfm2_detok_flush(&d, tail, sizeof tail);
    CHECK(w >= 0 && d.n_pending == 0, "flush");
    if (w > 0)
        g_string_append_len(s, tail, w);
    *out_len = s->len;
    return g_string_free(s, FALSE);
}

/* Valid UTF-8 (strict: no overlongs, surrogates, code points past U+10FFFF; NUL allowed),
 * written here from the table of the Unicode standard (3.9, table 3-7). */
static bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        const unsigned c = s[i];
        unsigned lo = 0x80, hi = 0xBF;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return false;
        }
        if (i + k > n || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* One case of a tokenize fixture (text given separately, as the strings may be invalid UTF-8). */
static void check_case(const struct lfm2_vocab *v, const char *label, JsonObject *c, const char *text,
                       size_t len)
{
    static const struct { const char *key; bool add_special, parse_special; } variants[] = {
        {"ids_special", true, true},
        {"ids_nobos", false, true},
        {"ids_plain", false, false},
        {"ids_bos_plain", true, false},
    };
    char what[256];
    for (size_t k = 0; k < 4; k++) {
        int n;
        lfm2_token *exp = json_ids(json_object_get_array_member(c, variants[k].key), &n);
        snprintf(what, sizeof what, "%s %s", label, variants[k].key);
        check_tokens(v, what, text, len, variants[k].add_special, variants[k].parse_special, exp, n);
        free(exp);
    }

    /* pieces of ids_plain (llama_token_to_piece, special = true) and the round trip */
    int n;
    lfm2_token *ids = json_ids(json_object_get_array_member(c, "ids_plain"), &n);
    JsonArray *hex = json_object_get_array_member(c, "pieces_hex");
    CHECK((int)json_array_get_length(hex) == n, "%s: pieces_hex length", label);
    GString *joined = g_string_new(NULL);
    for (int i = 0; i < n && i < (int)json_array_get_length(hex); i++) {
        const char *h = json_array_get_string_element(hex, (guint)i);
        char exp[512], got[512];
        const size_t ne = strlen(h) / 2;
        for (size_t b = 0; b < ne && b < sizeof exp; b++)
            exp[b] = (char)(hexval(h[2 * b]) << 4 | hexval(h[2 * b + 1]));
        const int32_t ng = lfm2_vocab_token_to_piece(v, ids[i], got, sizeof got, true);
        CHECK(ng == (int32_t)ne && memcmp(got, exp, ne) == 0, "%s: piece %d (token %d) differs from %s",
              label, i, ids[i], h);
        if (ne > 0) {
            const int32_t small = lfm2_vocab_token_to_piece(v, ids[i], got, (int32_t)ne - 1, true);
            CHECK(small == -(int32_t)ne, "%s: piece %d with a short buffer: %d", label, i, (int)small);
        }
        g_string_append_len(joined, got, ng > 0 ? ng : 0);
    }
    /* llama_detokenize also "cleans" spaces before punctuation (clean_spaces), so it can fail
     * to round-trip where the plain pieces do; the other way round is a bug. */
    const bool roundtrip = json_object_get_boolean_member(c, "roundtrip_ok");
    const bool same = joined->len == len && memcmp(joined->str, text, len) == 0;
    CHECK(same || !roundtrip, "%s: the pieces joined do not give the text back", label);
    CHECK(same || !utf8_valid(text, len), "%s: valid UTF-8 that does not round trip", label);

    /* the streaming detokenizer gives the text back for valid UTF-8, and valid UTF-8 always */
    size_t dl;
    char *d = detok_all(v, ids, n, true, &dl);
    CHECK(utf8_valid(d, dl), "%s: streaming output is not valid UTF-8", label);
    if (utf8_valid(text, len))
        CHECK(dl == len && memcmp(d, text, len) == 0, "%s: streaming detokenizer round trip", label);
    g_free(d);
    g_string_free(joined, TRUE);
    free(ids);
}

/* The strings file: NUL-separated. Returns the i-th string (pointer into buf). */
static char *read_file(const char *path, size_t *len)
{
    gchar *buf = NULL;
    gsize n = 0;
    GError *err = NULL;
    if (!g_file_get_contents(path, &buf, &n, &err)) {
        fprintf(stderr, "cannot read %s: %s\n", path, err->message);
        g_error_free(err);
        lfm2_test_failures++;
        return NULL;
    }
    *len = n;
    return buf;
}

static int split_strings(char *buf, size_t n, const char **s, size_t *l, int cap)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && k < cap; i++) {
        if (i == n || buf[i] == 0) {
            s[k] = buf + start;
            l[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

static void check_tokenize_fixture(const struct lfm2_vocab *v, const char *vocab_name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "text/tokenize/%s.json", vocab_name);
    JsonNode *root = load_json(rel);
    if (!root)
        return;
    char *spath = g_build_filename(g_data, "text/tokenize/strings.bin", NULL);
    size_t blen = 0;
    char *buf = read_file(spath, &blen);
    g_free(spath);
    const char *strs[64];
    size_t lens[64];
    const int ns = buf ? split_strings(buf, blen, strs, lens, 64) : 0;
    JsonArray *cases = json_object_get_array_member(json_node_get_object(root), "cases");
    CHECK((int)json_array_get_length(cases) == ns, "%s: %d cases, %d strings", vocab_name,
          (int)json_array_get_length(cases), ns);
    for (guint i = 0; i < json_array_get_length(cases) && (int)i < ns; i++) {
        JsonObject *c = json_array_get_object_element(cases, i);
        char label[64];
        snprintf(label, sizeof label, "%s string %u", vocab_name, i);
        check_case(v, label, c, strs[i], lens[i]);
    }
    g_free(buf);
    json_node_unref(root);
}

/* tests/tokenizer/data/extra-<vocab>.jsonl (llama_ref output, one JSON object per line). */
static void check_extra(const struct lfm2_vocab *v, const char *vocab_name)
{
    const char *src = g_tok_data;
    char *spath = g_build_filename(src, "extra.bin", NULL);
    char name[64];
    snprintf(name, sizeof name, "extra-%s.jsonl", vocab_name);
    char *jpath = g_build_filename(src, name, NULL);
    size_t blen = 0, jlen = 0;
    char *buf = read_file(spath, &blen), *lines = read_file(jpath, &jlen);
    if (buf && lines) {
        static const char *strs[512];
        static size_t lens[512];
        const int ns = split_strings(buf, blen, strs, lens, 512);
        gchar **ln = g_strsplit(lines, "\n", -1);
        int n_cases = 0;
        for (int i = 0; ln[i]; i++) {
            if (!*ln[i])
                continue;
            JsonParser *p = json_parser_new();
            GError *err = NULL;
            if (!json_parser_load_from_data(p, ln[i], -1, &err)) {
                CHECK(0, "%s line %d: %s", name, i + 1, err->message);
                g_error_free(err);
                g_object_unref(p);
                continue;
            }
            JsonObject *c = json_node_get_object(json_parser_get_root(p));
            const int k = (int)json_object_get_int_member(c, "i");
            char label[64];
            snprintf(label, sizeof label, "%s extra %d", vocab_name, k);
            if (k >= 0 && k < ns) {
                check_case(v, label, c, strs[k], lens[k]);
                n_cases++;
            }
            g_object_unref(p);
        }
        CHECK(n_cases == ns, "%s: %d cases for %d strings", name, n_cases, ns);
        g_strfreev(ln);
    }
    g_free(buf);
    g_free(lines);
    g_free(spath);
    g_free(jpath);
}

/* metadata.json: what llama.cpp reports after loading the file. */
static void check_metadata(const struct lfm2_vocab *v, const char *rel_dir, const char *meta_name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", rel_dir, meta_name);
    JsonNode *root = load_json(rel);
    if (!root)
        return;
    JsonObject *lc = json_object_get_object_member(json_node_get_object(root), "llama_cpp");
    CHECK(lfm2_vocab_n_tokens(v) == json_object_get_int_member(lc, "n_vocab"), "%s: n_vocab", rel);
    CHECK(lfm2_vocab_bos(v) == json_object_get_int_member(lc, "bos"), "%s: bos %d", rel, lfm2_vocab_bos(v));
    CHECK(lfm2_vocab_eos(v) == json_object_get_int_member(lc, "eos"), "%s: eos %d", rel, lfm2_vocab_eos(v));
    CHECK(lfm2_vocab_eot(v) == json_object_get_int_member(lc, "eot"), "%s: eot %d, llama.cpp %d", rel,
          lfm2_vocab_eot(v), (int)json_object_get_int_member(lc, "eot"));
    CHECK(lfm2_vocab_pad(v) == json_object_get_int_member(lc, "pad"), "%s: pad %d", rel, lfm2_vocab_pad(v));
    CHECK(lfm2_vocab_nl(v) == json_object_get_int_member(lc, "nl"), "%s: nl %d", rel, lfm2_vocab_nl(v));
    CHECK(lfm2_vocab_add_bos(v) == json_object_get_boolean_member(lc, "add_bos"), "%s: add_bos", rel);
    CHECK(lfm2_vocab_add_eos(v) == json_object_get_boolean_member(lc, "add_eos"), "%s: add_eos", rel);

    int n_exp;
    lfm2_token *eog = json_ids(json_object_get_array_member(lc, "eog_ids"), &n_exp);
    lfm2_token got[64];
    const int n = lfm2_vocab_eog_ids(v, got, 64);
    CHECK(n == n_exp && memcmp(got, eog, (size_t)n * sizeof *got) == 0, "%s: eog ids", rel);
    for (int t = -2; t < lfm2_vocab_n_tokens(v) + 2; t++) {
        bool in = false;
        for (int k = 0; k < n_exp; k++)
            in |= eog[k] == t;
        CHECK(lfm2_vocab_is_eog(v, t) == in, "%s: is_eog(%d)", rel, t);
    }
    free(eog);

    /* every CONTROL / USER_DEFINED token with its text, and no other */
    JsonObject *sp = json_object_get_object_member(lc, "special_tokens");
    int n_special = 0;
    for (int t = 0; t < lfm2_vocab_n_tokens(v); t++) {
        char key[16];
        snprintf(key, sizeof key, "%d", t);
        const bool want = json_object_has_member(sp, key);
        const bool is = (lfm2_vocab_attr(v, t) & (LFM2_ATTR_CONTROL | LFM2_ATTR_USER_DEFINED)) != 0;
        CHECK(want == is, "%s: token %d special? llama.cpp %d, we %d", rel, t, want, is);
        if (want) {
            n_special++;
            const char *exp = json_object_get_string_member(sp, key);
            CHECK(strcmp(lfm2_vocab_text(v, t, NULL), exp) == 0, "%s: text of %d", rel, t);
            CHECK(lfm2_vocab_lookup(v, exp, strlen(exp)) == t, "%s: lookup '%s'", rel, exp);
        }
    }
    CHECK(n_special == (int)json_object_get_size(sp), "%s: special count", rel);

    JsonObject *pi = json_object_get_object_member(lc, "print_info");
    if (pi && json_object_has_member(pi, "n_merges"))
        CHECK(lfm2_vocab_n_merges(v) == atoi(json_object_get_string_member(pi, "n_merges")),
              "%s: n_merges %d", rel, lfm2_vocab_n_merges(v));
    if (pi && json_object_has_member(pi, "max token length"))
        CHECK(strtol(json_object_get_string_member(pi, "max token length"), NULL, 10) > 0, "max len");

    /* the four chat renderings, text and ids */
    JsonArray *chats = json_object_get_array_member(lc, "chat");
    for (guint i = 0; chats && i < json_array_get_length(chats); i++) {
        JsonObject *c = json_array_get_object_element(chats, i);
        JsonArray *msgs = json_object_get_array_member(c, "messages");
        struct lfm2_chat_message m[16];
        const size_t nm = json_array_get_length(msgs);
        for (guint k = 0; k < nm && k < 16; k++) {
            JsonObject *mo = json_array_get_object_element(msgs, k);
            m[k].role = json_object_get_string_member(mo, "role");
            m[k].content = json_object_get_string_member(mo, "content");
        }
        const bool gen = json_object_get_boolean_member(c, "add_generation_prompt");
        const char *exp = json_object_get_string_member(c, "text");
        char buf[4096];
        const int32_t len = lfm2_chat_apply(m, nm, NULL, gen, buf, sizeof buf);
        CHECK(len == (int32_t)strlen(exp) && strcmp(buf, exp) == 0, "%s: chat %u text:\n%s\nexpected:\n%s",
              rel, i, buf, exp);
        int ni;
        lfm2_token *ids = json_ids(json_object_get_array_member(c, "ids_bos_special"), &ni);
        char what[600];
        snprintf(what, sizeof what, "%s chat %u ids", rel, i);
        check_tokens(v, what, exp, strlen(exp), true, true, ids, ni);
        free(ids);
    }
    json_node_unref(root);
}

/* logits.json: the prompt (BOS + specials) and the decode text (no BOS). */
static void check_logits_case(const struct lfm2_vocab *v, const char *rel_dir)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/logits.json", rel_dir);
    JsonNode *root = load_json(rel);
    if (!root)
        return;
    JsonObject *o = json_node_get_object(root);
    const char *pt = json_object_get_string_member(o, "prompt_text");
    const char *dt = json_object_get_string_member(o, "decode_text");
    int n;
    lfm2_token *ids = json_ids(json_object_get_array_member(o, "prompt_ids"), &n);
    check_tokens(v, "logits.json prompt", pt, strlen(pt), true, true, ids, n);
    free(ids);
    ids = json_ids(json_object_get_array_member(o, "decode_ids"), &n);
    check_tokens(v, "logits.json decode", dt, strlen(dt), false, true, ids, n);
    free(ids);
    json_node_unref(root);
}

/* The VL backbone: mtmd.json has the text chunks around the image, ids and pieces. */
static void check_vl_chunks(const struct lfm2_vocab *v)
{
    JsonNode *root = load_json("vision/test-64x48/mtmd.json");
    if (!root)
        return;
    JsonArray *seq = json_object_get_array_member(json_node_get_object(root), "sequence");
    bool first = true;
    for (guint i = 0; i < json_array_get_length(seq); i++) {
        JsonObject *c = json_array_get_object_element(seq, i);
        if (strcmp(json_object_get_string_member(c, "type"), "text") != 0)
            continue;
        int n;
        lfm2_token *ids = json_ids(json_object_get_array_member(c, "ids"), &n);
        JsonArray *pieces = json_object_get_array_member(c, "pieces");
        GString *text = g_string_new(NULL);
        for (int k = 0; k < n; k++) {
            const char *p = json_array_get_string_element(pieces, (guint)k);
            char got[256];
            const int32_t ng = lfm2_vocab_token_to_piece(v, ids[k], got, sizeof got, true);
            CHECK(ng == (int32_t)strlen(p) && memcmp(got, p, (size_t)ng) == 0, "VL piece of %d", ids[k]);
            if (!(first && k == 0))   /* the BOS comes from add_special */
                g_string_append(text, p);
        }
        check_tokens(v, "VL text chunk", text->str, text->len, first, true, ids, n);
        g_string_free(text, TRUE);
        free(ids);
        first = false;
    }
    json_node_unref(root);
}

static struct lfm2_vocab *open_vocab(const char *rel, lfm2_gguf **g)
{
    char *path = g_build_filename(g_data, rel, NULL);
    *g = lfm2_gguf_open(path, true);
    g_free(path);
    if (!*g) {
        CHECK(0, "open %s: %s", rel, lfm2_last_error());
        return NULL;
    }
    struct lfm2_vocab *v = lfm2_vocab_load(*g);
    CHECK(v, "vocab of %s: %s", rel, lfm2_last_error());
    return v;
}

int main(int argc, char **argv)
{
    g_data = getenv("LFM2_TEST_DATA");
    if (!g_data || argc < 2) {
        fprintf(stderr, "usage: LFM2_TEST_DATA=tests/data %s tests/tokenizer/data\n", argv[0]);
        return 1;
    }
    g_tok_data = argv[1];
    JsonNode *index = load_json("text/index.json");
    if (!index)
        return 1;
    JsonObject *models = json_object_get_object_member(json_node_get_object(index), "models");
    GList *names = json_object_get_members(models);
    bool extra_done[2] = {false, false};
    for (GList *l = names; l; l = l->next) {
        JsonObject *mo = json_object_get_object_member(models, l->data);
        const char *dir = json_object_get_string_member(mo, "dir");
        const char *file = json_object_get_string_member(mo, "file");
        const char *vocab = json_object_get_string_member(mo, "vocab");
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", dir, file);
        lfm2_gguf *g;
        struct lfm2_vocab *v = open_vocab(rel, &g);
        if (v) {
            fprintf(stderr, "%s (%s vocabulary)\n", rel, vocab);
            check_metadata(v, dir, "metadata.json");
            check_logits_case(v, dir);
            check_tokenize_fixture(v, vocab);
            /* the extra strings once per vocabulary (every file of a vocabulary is identical) */
            const int k = strcmp(vocab, "small") == 0;
            if (!extra_done[k]) {
                check_extra(v, vocab);
                extra_done[k] = true;
            }
        }
        lfm2_vocab_free(v);
        lfm2_gguf_close(g);
    }
    g_list_free(names);
    json_node_unref(index);

    /* the LFM2-VL backbone (tiny vocabulary + image markers) */
    lfm2_gguf *g;
    struct lfm2_vocab *v = open_vocab("vision/lfm2-vl-tiny-text-q4_0.gguf", &g);
    if (v) {
        check_metadata(v, "vision", "backbone-metadata.json");
        check_vl_chunks(v);
        lfm2_vocab_free(v);
    }
    lfm2_gguf_close(g);

    if (lfm2_test_failures)
        fprintf(stderr, "%d check(s) failed\n", lfm2_test_failures);
    else
        fprintf(stderr, "all tokenizer checks passed\n");
    return lfm2_test_failures ? 1 : 0;
}
