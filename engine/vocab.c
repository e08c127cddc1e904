/* vocab.c — LFM2's byte-level BPE tokenizer and detokenizer, behaving like llama.cpp's
 * llama_vocab for `gpt2` vocabularies with the LLAMA3 pre-tokenizer.
 *
 * Tokenizing a text (lfm2_vocab_tokenize) is, as in llama.cpp:
 *   1. cut the text at special tokens (CONTROL and UNKNOWN only when parse_special; USER_DEFINED
 *      always), longest token text first;
 *   2. split every remaining span with the LLAMA3 pre-tokenizer (unicode.c);
 *   3. spell each piece in GPT-2's byte-level alphabet;
 *   4. a piece that is itself a vocabulary entry is emitted as is (ignore_merges); otherwise its
 *      characters are merged pairwise, lowest merge rank first (leftmost on ties), with a heap.
 * Detokenizing maps the byte-level spelling back to bytes; the streaming detokenizer only ever
 * emits complete, valid UTF-8.
 */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "lfm2-gguf.h"
#include "unicode.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_ADD_BOS "tokenizer.ggml.add_bos_token"
#define KEY_ADD_EOS "tokenizer.ggml.add_eos_token"

/* GGUF token types (llama_token_type). */
enum {
    TYPE_UNDEFINED = 0, TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3,
    TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5, TYPE_BYTE = 6,
};

/* A byte trie over the texts of the special tokens, to find in one pass which of them occur. */
struct trie_node {
    int32_t child, sibling;   /* -1 = none */
    int32_t token;            /* token whose text ends here, -1 = none */
    uint8_t byte;
};

struct lfm2_vocab {
    char *path;
    int n_tokens;
    int max_token_len;

    /* entry texts, NUL-terminated, in one block */
    char *text;
    uint32_t *text_off, *text_len;
    uint8_t *attr;

    /* the bytes each token decodes to (llama_token_to_piece with special = true) */
    char *piece;
    uint32_t *piece_off, *piece_len;

    /* text -> id, open addressing; a repeated text maps to its last id (as llama.cpp's map) */
    int32_t *tok_table;
    uint32_t tok_mask;

    /* merges: rank r is "first second" split at merge_split[r]; (first, second) -> rank */
    int n_merges;        /* distinct pairs */
    int n_merge_entries; /* entries in the file */
    char *merge_text;
    uint32_t *merge_off, *merge_len, *merge_split;
    int32_t *merge_table;
    uint32_t merge_mask;

    lfm2_token bos, eos, eot, eom, unk, pad, nl;
    lfm2_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, ignore_merges;

    uint8_t *eog;   /* per token */
    int n_eog;

    /* CONTROL / USER_DEFINED / UNKNOWN tokens, longest text first (ties: lower id first) */
    int32_t *special;
    int n_special;
    struct trie_node *trie;
    int n_trie;
    uint8_t first_byte[256];
};

/* ---- hashing ------------------------------------------------------------------------------ */

/* FNV-1a with a final avalanche: short strings, streaming over several parts. */
#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint32_t hash_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint32_t table_size_for(size_t n)
{
    uint32_t s = 16;
    while (s < 2 * n)
        s <<= 1;
    return s;
}

static lfm2_token lookup(const struct lfm2_vocab *v, const char *s, size_t n)
{
    uint32_t i = hash_final(fnv(FNV_INIT, s, n)) & v->tok_mask;
    for (;; i = (i + 1) & v->tok_mask) {
        const int32_t id = v->tok_table[i];
        if (id < 0)
            return -1;
        if (v->text_len[id] == n && memcmp(v->text + v->text_off[id], s, n) == 0)
            return id;
    }
}

/* Rank of the merge (left, right), -1 if none. */
static int merge_rank(const struct lfm2_vocab *v, const char *l, size_t nl, const char *r, size_t nr)
{
    uint64_t h = fnv(FNV_INIT, l, nl);
    h = fnv(h, " ", 1);
    h = fnv(h, r, nr);
    uint32_t i = hash_final(h) & v->merge_mask;
    for (;; i = (i + 1) & v->merge_mask) {
        const int32_t m = v->merge_table[i];
        if (m < 0)
            return -1;
        const char *t = v->merge_text + v->merge_off[m];
        const uint32_t sp = v->merge_split[m];
        if (sp == nl && v->merge_len[m] == nl + 1 + nr && memcmp(t, l, nl) == 0 &&
            memcmp(t + nl + 1, r, nr) == 0)
            return m;
    }
}

/* ---- libstdc++ std::unordered_map<std::string, int> iteration order ------------------------ */

/* llama.cpp finds its end-of-turn token (and a few others) by scanning token texts in the
 * iteration order of its std::unordered_map, and keeps the first match. The LFM2 vocabulary has
 * two candidates (<|im_end|> and <|endoftext|>), so which one becomes "eot" depends on that order.
 * We reproduce it: std::hash<std::string> (libstdc++'s _Hash_bytes, seed 0xc70f6907), its prime
 * bucket counts (growth when the element count would exceed the bucket count), and its node
 * list, where a node goes first in its bucket and an empty bucket's node goes to the list head. */

static uint64_t std_hash_bytes(const char *s, size_t len)
{
    const uint64_t mul = 0xc6a4a7935bd1e995ull;
    const uint64_t seed = 0xc70f6907ull;
    uint64_t h = seed ^ (len * mul);
    const size_t aligned = len & ~(size_t)7;
    for (size_t i = 0; i < aligned; i += 8) {
        uint64_t d;
        memcpy(&d, s + i, 8);   /* little-endian load */
        d *= mul;
        d ^= d >> 47;
        d *= mul;
        h ^= d;
        h *= mul;
    }
    if (len & 7) {
        uint64_t d = 0;
        for (size_t k = len & 7; k-- > 0;)
            d = (d << 8) | (uint8_t)s[aligned + k];
        h ^= d;
        h *= mul;
    }
    h ^= h >> 47;
    h *= mul;
    h ^= h >> 47;
    return h;
}

/* Bucket counts libstdc++'s _Prime_rehash_policy goes through when elements are inserted one
 * by one (max load factor 1: it grows when the count would exceed the bucket count). Enough
 * for the 2^24 tokens we accept. */
static const uint32_t std_bucket_counts[] = {
    13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061,
    712697, 1447153, 2938679, 5967347, 12117689, 24607243,
};

#define STD_EMPTY (-1)
#define STD_BEFORE_BEGIN (-2)

/* Fills order[] with the token ids in map iteration order (each distinct text once, with the
 * id the map holds: the last one of that text). Returns the count, or -1 on allocation failure. */
static int64_t std_map_order(const struct lfm2_vocab *v, const uint8_t *is_dup, int32_t *order)
{
    const int n = v->n_tokens;
    uint64_t *hash = malloc((size_t)n * sizeof *hash);
    int32_t *next = malloc((size_t)n * sizeof *next);
    int32_t *buckets = NULL;
    int64_t count = -1;
    if (!hash || !next)
        goto out;

    int32_t head = -1;
    size_t nb = 0, n_elt = 0;
    int growth = 0;
    for (int i = 0; i < n; i++) {
        if (is_dup[i])
            continue;
        hash[i] = std_hash_bytes(v->text + v->text_off[i], v->text_len[i]);
        if (n_elt + 1 > nb) {   /* rehash into the next prime bucket count */
            if (growth >= (int)(sizeof std_bucket_counts / sizeof std_bucket_counts[0]))
                goto out;
            const size_t nb2 = std_bucket_counts[growth++];
            int32_t *nbk = malloc(nb2 * sizeof *nbk);
            if (!nbk)
                goto out;
            for (size_t b = 0; b < nb2; b++)
                nbk[b] = STD_EMPTY;
            int32_t p = head;
            head = -1;
            size_t bbegin_bkt = 0;
            while (p >= 0) {
                const int32_t pn = next[p];
                const size_t b = hash[p] % nb2;
                if (nbk[b] == STD_EMPTY) {
                    next[p] = head;
                    head = p;
                    nbk[b] = STD_BEFORE_BEGIN;
                    if (next[p] >= 0)
                        nbk[bbegin_bkt] = p;
                    bbegin_bkt = b;
                } else {   /* after the bucket's before-node (the list head's bucket: before begin) */
                    const int32_t prev = nbk[b];
                    if (prev == STD_BEFORE_BEGIN) {
                        next[p] = head;
                        head = p;
                    } else {
                        next[p] = next[prev];
                        next[prev] = p;
                    }
                }
                p = pn;
            }
            free(buckets);
            buckets = nbk;
            nb = nb2;
        }
        const size_t b = hash[i] % nb;
        if (buckets[b] != STD_EMPTY) {
            const int32_t prev = buckets[b];
            if (prev == STD_BEFORE_BEGIN) {
                next[i] = head;
                head = i;
            } else {
                next[i] = next[prev];
                next[prev] = i;
            }
        } else {
            next[i] = head;
            head = i;
            if (next[i] >= 0)
                buckets[hash[next[i]] % nb] = i;
            buckets[b] = STD_BEFORE_BEGIN;
        }
        n_elt++;
    }
    count = 0;
    for (int32_t p = head; p >= 0; p = next[p])
        order[count++] = lookup(v, v->text + v->text_off[p], v->text_len[p]);
out:
    free(hash);
    free(next);
    free(buckets);
    return count;
}

/* ---- loading ------------------------------------------------------------------------------- */

static bool str_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Reads an optional token-id key. Returns 0 (absent or ignored), 1 (set), -1 (error). */
static int read_id(const lfm2_gguf *g, const struct lfm2_vocab *v, const char *key, lfm2_token *id)
{
    int64_t x;
    const int r = lfm2_gguf_get_int(g, key, &x);
    if (r <= 0)
        return r;
    /* llama.cpp warns and keeps its default for ids outside the vocabulary. */
    if (x < 0 || x >= v->n_tokens)
        return 0;
    *id = (lfm2_token)x;
    return 1;
}

/* Candidate texts of the tokens llama.cpp detects by text (llama-vocab.cpp, load()). */
static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
    "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
    "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
    "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL};
static const char *const FIM_REP_TEXTS[] = {
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", NULL};

static bool text_in(const struct lfm2_vocab *v, lfm2_token id, const char *const *list)
{
    /* every candidate starts with '<', '_' or U+2581 */
    const char c0 = v->text[v->text_off[id]];
    if (c0 != '<' && c0 != '_' && c0 != '\xe2')
        return false;
    for (; *list; list++)
        if (str_eq(v->text + v->text_off[id], v->text_len[id], *list))
            return true;
    return false;
}

/* Order of llama.cpp's special-token cache: longer texts first. llama.cpp's std::sort leaves
 * equal lengths in an unspecified order; we take lower ids first (equal-length texts can only
 * compete when they overlap in the input, which the LFM2 <|...|> markers never do). */
static bool special_before(const struct lfm2_vocab *v, int32_t x, int32_t y)
{
    if (v->text_len[x] != v->text_len[y])
        return v->text_len[x] > v->text_len[y];
    return x < y;
}

/* A stable merge sort (qsort has no context argument in C11). */
static void sort_specials(const struct lfm2_vocab *v, int32_t *ids, int32_t *tmp, int n)
{
    if (n < 2)
        return;
    const int h = n / 2;
    sort_specials(v, ids, tmp, h);
    sort_specials(v, ids + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = special_before(v, ids[j], ids[i]) ? ids[j++] : ids[i++];
    while (i < h)
        tmp[k++] = ids[i++];
    while (j < n)
        tmp[k++] = ids[j++];
    memcpy(ids, tmp, (size_t)n * sizeof *ids);
}

static int build_trie(struct lfm2_vocab *v)
{
    size_t total = 1;
    for (int i = 0; i < v->n_special; i++)
        total += v->text_len[v->special[i]];
    v->trie = malloc(total * sizeof *v->trie);
    if (!v->trie)
        return lfm2_set_error("%s: out of memory (special-token trie)", v->path);
    v->trie[0] = (struct trie_node){-1, -1, -1, 0};
    v->n_trie = 1;
    for (int i = 0; i < v->n_special; i++) {
        const int32_t id = v->special[i];
        const uint8_t *s = (const uint8_t *)v->text + v->text_off[id];
        int32_t node = 0;
        for (uint32_t k = 0; k < v->text_len[id]; k++) {
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != s[k])
                c = v->trie[c].sibling;
            if (c < 0) {
                c = v->n_trie++;
                v->trie[c] = (struct trie_node){-1, v->trie[node].child, -1, s[k]};
                v->trie[node].child = c;
            }
            node = c;
        }
        if (v->trie[node].token < 0)
            v->trie[node].token = id;
        v->first_byte[s[0]] = 1;
    }
    return 0;
}

/* llama_decode_text: each code point of the entry back to its byte; a code point outside the
 * byte alphabet is spelled "[UNK_BYTE_0x<hex>" + whole text + "]" as llama.cpp does. */
static size_t decode_text(const char *t, size_t n, char *out)
{
    size_t o = 0, p = 0;
    while (p < n) {
        const uint32_t cp = lfm2_utf8_next((const uint8_t *)t, n, &p);
        const int b = lfm2_cpt_to_byte(cp);
        if (b >= 0) {
            if (out)
                out[o] = (char)b;
            o++;
            continue;
        }
        char enc[4];
        const int ne = lfm2_utf8_encode(cp, enc);
        static const char hex[] = "0123456789abcdef";
        if (out)
            memcpy(out + o, "[UNK_BYTE_0x", 12);
        o += 12;
        for (int k = 0; k < ne; k++) {
            if (out) {
                out[o] = hex[(uint8_t)enc[k] >> 4];
                out[o + 1] = hex[(uint8_t)enc[k] & 15];
            }
            o += 2;
        }
        if (out) {
            memcpy(out + o, t, n);
            out[o + n] = ']';
        }
        o += n + 1;
    }
    return o;
}

static int build_pieces(struct lfm2_vocab *v)
{
    const int n = v->n_tokens;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t a = v->attr[i];
        const char *t = v->text + v->text_off[i];
        if (a & (LFM2_ATTR_UNKNOWN | LFM2_ATTR_CONTROL | LFM2_ATTR_USER_DEFINED))
            total += v->text_len[i];
        else if (a & LFM2_ATTR_NORMAL)
            total += decode_text(t, v->text_len[i], NULL);
        if (total > UINT32_MAX)
            return lfm2_set_error("%s: decoded vocabulary too large", v->path);
    }
    v->piece = malloc(total ? total : 1);
    v->piece_off = malloc((size_t)n * sizeof *v->piece_off);
    v->piece_len = malloc((size_t)n * sizeof *v->piece_len);
    if (!v->piece || !v->piece_off || !v->piece_len)
        return lfm2_set_error("%s: out of memory (token pieces)", v->path);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t a = v->attr[i];
        const char *t = v->text + v->text_off[i];
        size_t len = 0;
        if (a & (LFM2_ATTR_UNKNOWN | LFM2_ATTR_CONTROL | LFM2_ATTR_USER_DEFINED)) {
            len = v->text_len[i];
            memcpy(v->piece + o, t, len);
        } else if (a & LFM2_ATTR_NORMAL) {
            len = decode_text(t, v->text_len[i], v->piece + o);
        }   /* BYTE, UNUSED, UNDEFINED: nothing (llama.cpp's BPE branch) */
        v->piece_off[i] = (uint32_t)o;
        v->piece_len[i] = (uint32_t)len;
        o += len;
    }
    return 0;
}

void lfm2_vocab_free(struct lfm2_vocab *v)
{
    if (!v)
        return;
    free(v->path);
    free(v->text);
    free(v->text_off);
    free(v->text_len);
    free(v->attr);
    free(v->piece);
    free(v->piece_off);
    free(v->piece_len);
    free(v->tok_table);
    free(v->merge_text);
    free(v->merge_off);
    free(v->merge_len);
    free(v->merge_split);
    free(v->merge_table);
    free(v->eog);
    free(v->special);
    free(v->trie);
    free(v);
}

static int load_tokens(struct lfm2_vocab *v, const lfm2_gguf *g, uint8_t **is_dup_out)
{
    enum lfm2_gguf_type et;
    uint64_t n;
    int r = lfm2_gguf_get_arr(g, KEY_TOKENS, &et, &n);
    if (r == 0)
        return lfm2_set_error("%s: key '%s' is missing (no vocabulary in the file)", v->path, KEY_TOKENS);
    if (r < 0 || et != LFM2_GGUF_STRING)
        return lfm2_set_error("%s: key '%s' is not an array of strings", v->path, KEY_TOKENS);
    if (n == 0 || n > (1u << 24))
        return lfm2_set_error("%s: key '%s' has %llu entries (expected 1 … 16777216)", v->path,
                              KEY_TOKENS, (unsigned long long)n);
    v->n_tokens = (int)n;

    /* texts: empty entries become "[EMPTY_<id>]" like llama.cpp. The entries are located once
     * (the GGUF accessor looks the key up on every call). */
    const char **src = malloc(n * sizeof *src);
    size_t *src_len = malloc(n * sizeof *src_len);
    if (!src || !src_len) {
        free(src);
        free(src_len);
        return lfm2_set_error("%s: out of memory (vocabulary of %llu tokens)", v->path,
                              (unsigned long long)n);
    }
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!(src[i] = lfm2_gguf_arr_str(g, KEY_TOKENS, i, &src_len[i]))) {
            free(src);
            free(src_len);
            return lfm2_set_error("%s: key '%s': cannot read entry %llu", v->path, KEY_TOKENS,
                                  (unsigned long long)i);
        }
        total += (src_len[i] ? src_len[i] : 20) + 1;
    }
    if (total > UINT32_MAX) {
        free(src);
        free(src_len);
        return lfm2_set_error("%s: key '%s': vocabulary text too large", v->path, KEY_TOKENS);
    }
    v->text = malloc(total);
    v->text_off = malloc(n * sizeof *v->text_off);
    v->text_len = malloc(n * sizeof *v->text_len);
    v->attr = malloc(n);
    v->eog = calloc(n, 1);
    uint8_t *is_dup = calloc(n, 1);
    *is_dup_out = is_dup;
    if (!v->text || !v->text_off || !v->text_len || !v->attr || !v->eog || !is_dup) {
        free(src);
        free(src_len);
        return lfm2_set_error("%s: out of memory (vocabulary of %llu tokens)", v->path,
                              (unsigned long long)n);
    }
    size_t o = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = src_len[i];
        const char *s = src[i];
        char *d = v->text + o;
        if (len == 0) {
            len = (size_t)snprintf(d, 21, "[EMPTY_%llu]", (unsigned long long)i);
        } else {
            memcpy(d, s, len);
        }
        d[len] = 0;
        v->text_off[i] = (uint32_t)o;
        v->text_len[i] = (uint32_t)len;
        if ((int)len > v->max_token_len)
            v->max_token_len = (int)len;
        o += len + 1;
        v->attr[i] = LFM2_ATTR_NORMAL;
    }
    free(src);
    free(src_len);

    /* token types (optional: without them every token is NORMAL) */
    r = lfm2_gguf_get_arr(g, KEY_TYPES, &et, &n);
    if (r < 0)
        return lfm2_set_error("%s: key '%s' is not an array", v->path, KEY_TYPES);
    if (r > 0) {
        int64_t *types = malloc((size_t)v->n_tokens * sizeof *types);
        if (!types)
            return lfm2_set_error("%s: out of memory", v->path);
        if (n != (uint64_t)v->n_tokens) {
            free(types);
            return lfm2_set_error("%s: key '%s' has %llu entries but '%s' has %d", v->path, KEY_TYPES,
                                  (unsigned long long)n, KEY_TOKENS, v->n_tokens);
        }
        if (lfm2_gguf_get_int_arr(g, KEY_TYPES, types, (size_t)v->n_tokens) != 1) {
            free(types);
            lfm2_prefix_error("%s: token types", v->path);
            return -1;
        }
        for (int i = 0; i < v->n_tokens; i++) {
            switch (types[i]) {
            case TYPE_NORMAL: v->attr[i] = LFM2_ATTR_NORMAL; break;
            case TYPE_UNKNOWN: v->attr[i] = LFM2_ATTR_UNKNOWN; break;
            case TYPE_CONTROL: v->attr[i] = LFM2_ATTR_CONTROL; break;
            case TYPE_USER_DEFINED: v->attr[i] = LFM2_ATTR_USER_DEFINED; break;
            case TYPE_UNUSED: v->attr[i] = LFM2_ATTR_UNUSED; break;
            case TYPE_BYTE: v->attr[i] = LFM2_ATTR_BYTE; break;
            default: v->attr[i] = LFM2_ATTR_UNDEFINED; break;
            }
        }
        free(types);
    }

    /* text -> id */
    v->tok_mask = table_size_for((size_t)v->n_tokens) - 1;
    v->tok_table = malloc(((size_t)v->tok_mask + 1) * sizeof *v->tok_table);
    if (!v->tok_table)
        return lfm2_set_error("%s: out of memory", v->path);
    memset(v->tok_table, 0xFF, ((size_t)v->tok_mask + 1) * sizeof *v->tok_table);
    for (int id = 0; id < v->n_tokens; id++) {
        const char *s = v->text + v->text_off[id];
        const uint32_t len = v->text_len[id];
        uint32_t i = hash_final(fnv(FNV_INIT, s, len)) & v->tok_mask;
        for (;; i = (i + 1) & v->tok_mask) {
            const int32_t other = v->tok_table[i];
            if (other < 0) {
                v->tok_table[i] = id;
                break;
            }
            if (v->text_len[other] == len && memcmp(v->text + v->text_off[other], s, len) == 0) {
                v->tok_table[i] = id;   /* the later id wins, the map node stays where it was */
                is_dup[id] = 1;
                break;
            }
        }
    }
    return 0;
}

static int load_merges(struct lfm2_vocab *v, const lfm2_gguf *g)
{
    enum lfm2_gguf_type et;
    uint64_t n;
    const int r = lfm2_gguf_get_arr(g, KEY_MERGES, &et, &n);
    if (r == 0)
        return lfm2_set_error("%s: key '%s' is missing (a gpt2 vocabulary needs its BPE merges)",
                              v->path, KEY_MERGES);
    if (r < 0 || (et != LFM2_GGUF_STRING && n > 0))
        return lfm2_set_error("%s: key '%s' is not an array of strings", v->path, KEY_MERGES);
    if (n > (1u << 24))
        return lfm2_set_error("%s: key '%s' has too many entries (%llu)", v->path, KEY_MERGES,
                              (unsigned long long)n);
    /* merge_off / merge_len first hold the entries' addresses in the file (found once) */
    const char **src = malloc((n ? n : 1) * sizeof *src);
    v->merge_len = malloc((n ? n : 1) * sizeof *v->merge_len);
    if (!src || !v->merge_len) {
        free(src);
        return lfm2_set_error("%s: out of memory (%llu merges)", v->path, (unsigned long long)n);
    }
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        if (!(src[i] = lfm2_gguf_arr_str(g, KEY_MERGES, i, &len)) || len > UINT32_MAX) {
            free(src);
            return lfm2_set_error("%s: key '%s': cannot read entry %llu", v->path, KEY_MERGES,
                                  (unsigned long long)i);
        }
        v->merge_len[i] = (uint32_t)len;
        total += len;
    }
    if (total > UINT32_MAX) {
        free(src);
        return lfm2_set_error("%s: key '%s': merges too large", v->path, KEY_MERGES);
    }
    v->n_merge_entries = (int)n;
    v->merge_text = malloc(total ? total : 1);
    v->merge_off = malloc((n ? n : 1) * sizeof *v->merge_off);
    v->merge_split = malloc((n ? n : 1) * sizeof *v->merge_split);
    v->merge_mask = table_size_for(n) - 1;
    v->merge_table = malloc(((size_t)v->merge_mask + 1) * sizeof *v->merge_table);
    if (!v->merge_text || !v->merge_off || !v->merge_split || !v->merge_table) {
        free(src);
        return lfm2_set_error("%s: out of memory (%llu merges)", v->path, (unsigned long long)n);
    }
    memset(v->merge_table, 0xFF, ((size_t)v->merge_mask + 1) * sizeof *v->merge_table);

    size_t o = 0;
    bool have_unsplit = false;
    for (uint64_t m = 0; m < n; m++) {
        const size_t len = v->merge_len[m];
        memcpy(v->merge_text + o, src[m], len);
        const char *s = v->merge_text + o;
        v->merge_off[m] = (uint32_t)o;
        o += len;
        /* "first second", split at the first space after the first byte (llama.cpp). An entry
         * without one becomes the pair ("", ""), which can never match. */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) {
            v->merge_split[m] = UINT32_MAX;
            if (!have_unsplit)
                v->n_merges++;
            have_unsplit = true;
            continue;
        }
        const uint32_t split = (uint32_t)(sp - s);
        v->merge_split[m] = split;
        uint64_t h = fnv(FNV_INIT, s, len);   /* the whole "first second" text */
        uint32_t i = hash_final(h) & v->merge_mask;
        for (;; i = (i + 1) & v->merge_mask) {
            const int32_t other = v->merge_table[i];
            if (other < 0) {
                v->merge_table[i] = (int32_t)m;
                v->n_merges++;
                break;
            }
            if (v->merge_split[other] == split && v->merge_len[other] == len &&
                memcmp(v->merge_text + v->merge_off[other], s, len) == 0)
                break;   /* a repeated pair keeps its first rank */
        }
    }
    free(src);
    return 0;
}

/* Special tokens by text, end-of-generation set (llama_vocab::impl::load). */
static int detect_specials(struct lfm2_vocab *v, const uint8_t *is_dup)
{
    struct {
        lfm2_token *id;
        const char *const *texts;
    } autodetect[] = {
        {&v->eot, EOT_TEXTS}, {&v->eom, EOM_TEXTS}, {&v->fim_pre, FIM_PRE_TEXTS},
        {&v->fim_suf, FIM_SUF_TEXTS}, {&v->fim_mid, FIM_MID_TEXTS}, {&v->fim_pad, FIM_PAD_TEXTS},
        {&v->fim_rep, FIM_REP_TEXTS}, {&v->fim_sep, FIM_SEP_TEXTS},
    };
    const int n_auto = (int)(sizeof autodetect / sizeof autodetect[0]);

    int32_t *order = malloc((size_t)v->n_tokens * sizeof *order);
    if (!order)
        return lfm2_set_error("%s: out of memory", v->path);
    const int64_t n_order = std_map_order(v, is_dup, order);
    if (n_order < 0) {
        free(order);
        return lfm2_set_error("%s: out of memory", v->path);
    }

    for (int64_t k = 0; k < n_order; k++) {
        const lfm2_token id = order[k];
        for (int a = 0; a < n_auto; a++) {
            if (*autodetect[a].id < 0 && text_in(v, id, autodetect[a].texts)) {
                *autodetect[a].id = id;
                v->attr[id] = LFM2_ATTR_CONTROL;   /* llama.cpp overrides non-control types */
            }
        }
    }
    if (v->fim_pad >= 0)
        v->eog[v->fim_pad] = 1;
    if (v->fim_rep >= 0)
        v->eog[v->fim_rep] = 1;
    if (v->fim_sep >= 0)
        v->eog[v->fim_sep] = 1;
    for (int64_t k = 0; k < n_order; k++) {
        const lfm2_token id = order[k];
        if (text_in(v, id, EOG_TEXTS)) {
            v->eog[id] = 1;
            v->attr[id] = LFM2_ATTR_CONTROL;
        }
    }
    free(order);
    if (v->eos >= 0)
        v->eog[v->eos] = 1;
    if (v->eot >= 0)
        v->eog[v->eot] = 1;
    if (v->eom >= 0)
        v->eog[v->eom] = 1;
    for (int i = 0; i < v->n_tokens; i++)
        v->n_eog += v->eog[i];
    return 0;
}

static int32_t tokenize_impl(const struct lfm2_vocab *v, const char *text, size_t len,
                             lfm2_token *tokens, int32_t n_max, bool add_special,
                             bool parse_special);

struct lfm2_vocab *lfm2_vocab_load(const lfm2_gguf *g)
{
    if (!g) {
        lfm2_set_error("lfm2_vocab_load: no GGUF");
        return NULL;
    }
    struct lfm2_vocab *v = calloc(1, sizeof *v);
    uint8_t *is_dup = NULL;
    if (!v || !(v->path = strdup(lfm2_gguf_path(g) ? lfm2_gguf_path(g) : "(gguf)"))) {
        free(v);
        lfm2_set_error("lfm2_vocab_load: out of memory");
        return NULL;
    }
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = v->nl = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;

    /* tokenizer model and pre-tokenizer */
    char model[64], pre[64];
    int r = lfm2_gguf_get_str_buf(g, KEY_MODEL, model, sizeof model);
    if (r == 0) {
        lfm2_set_error("%s: key '%s' is missing (no tokenizer in the file)", v->path, KEY_MODEL);
        goto fail;
    }
    if (r < 0 || strcmp(model, "gpt2") != 0) {
        lfm2_set_error("%s: key '%s' is '%s': only 'gpt2' (byte-level BPE) vocabularies are supported",
                       v->path, KEY_MODEL, r < 0 ? "?" : model);
        goto fail;
    }
    r = lfm2_gguf_get_str_buf(g, KEY_PRE, pre, sizeof pre);
    if (r == 0) {
        lfm2_set_error("%s: key '%s' is missing: the pre-tokenizer is unknown", v->path, KEY_PRE);
        goto fail;
    }
    /* The names llama.cpp maps to its LLAMA3 pre-tokenizer (same regex, ignore_merges, BOS). */
    static const char *const llama3_pres[] = {
        "lfm2", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", NULL};
    bool pre_ok = false;
    for (int i = 0; r > 0 && llama3_pres[i]; i++)
        pre_ok |= strcmp(pre, llama3_pres[i]) == 0;
    if (!pre_ok) {
        lfm2_set_error("%s: key '%s' is '%s': unsupported pre-tokenizer (supported: lfm2 and the "
                       "llama3 family)", v->path, KEY_PRE, r < 0 ? "?" : pre);
        goto fail;
    }
    v->ignore_merges = true;
    v->add_bos = true;
    v->add_eos = false;

    if (load_merges(v, g) < 0 || load_tokens(v, g, &is_dup) < 0)
        goto fail;

    /* special ids (gpt2 defaults: bos = eos = 11) */
    v->bos = v->eos = 11 < v->n_tokens ? 11 : -1;
    static const struct { const char *key; size_t off; } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(struct lfm2_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(struct lfm2_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(struct lfm2_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(struct lfm2_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(struct lfm2_vocab, unk)},
        {"tokenizer.ggml.padding_token_id", offsetof(struct lfm2_vocab, pad)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(struct lfm2_vocab, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(struct lfm2_vocab, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(struct lfm2_vocab, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(struct lfm2_vocab, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(struct lfm2_vocab, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(struct lfm2_vocab, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(struct lfm2_vocab, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(struct lfm2_vocab, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(struct lfm2_vocab, fim_mid)},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        if (read_id(g, v, ids[i].key, (lfm2_token *)((char *)v + ids[i].off)) < 0) {
            lfm2_prefix_error("%s: special token id", v->path);
            goto fail;
        }
    }
    bool b;
    if ((r = lfm2_gguf_get_bool(g, KEY_ADD_BOS, &b)) > 0)
        v->add_bos = b;
    if (r >= 0 && (r = lfm2_gguf_get_bool(g, KEY_ADD_EOS, &b)) > 0)
        v->add_eos = b;
    if (r < 0)
        goto fail;
    if (v->add_bos && v->bos < 0) {
        lfm2_set_error("%s: %s is true, but there is no valid bos_token_id", v->path, KEY_ADD_BOS);
        goto fail;
    }
    if (v->add_eos && v->eos < 0) {
        lfm2_set_error("%s: %s is true, but there is no valid eos_token_id", v->path, KEY_ADD_EOS);
        goto fail;
    }

    /* llama.cpp finds the newline token before it has a special-token cache */
    {
        lfm2_token nl[4];
        const int32_t n_nl = tokenize_impl(v, "\n", 1, nl, 4, false, false);
        if (n_nl == INT32_MIN)
            goto fail;
        v->nl = n_nl != 0 ? nl[0] : v->pad;
    }

    if (detect_specials(v, is_dup) < 0)
        goto fail;

    /* special-token cache and its trie (after the attribute changes of detect_specials) */
    v->special = malloc((size_t)v->n_tokens * sizeof *v->special);
    int32_t *tmp = malloc((size_t)v->n_tokens * sizeof *tmp);
    if (!v->special || !tmp) {
        free(tmp);
        lfm2_set_error("%s: out of memory", v->path);
        goto fail;
    }
    for (int i = 0; i < v->n_tokens; i++)
        if (v->attr[i] & (LFM2_ATTR_CONTROL | LFM2_ATTR_USER_DEFINED | LFM2_ATTR_UNKNOWN))
            v->special[v->n_special++] = i;
    sort_specials(v, v->special, tmp, v->n_special);
    free(tmp);
    if (build_trie(v) < 0 || build_pieces(v) < 0)
        goto fail;

    free(is_dup);
    return v;
fail:
    free(is_dup);
    lfm2_vocab_free(v);
    return NULL;
}

/* ---- accessors ------------------------------------------------------------------------------- */

int lfm2_vocab_n_tokens(const struct lfm2_vocab *v) { return v ? v->n_tokens : 0; }
int lfm2_vocab_n_merges(const struct lfm2_vocab *v) { return v ? v->n_merges : 0; }
lfm2_token lfm2_vocab_bos(const struct lfm2_vocab *v) { return v ? v->bos : -1; }
lfm2_token lfm2_vocab_eos(const struct lfm2_vocab *v) { return v ? v->eos : -1; }
lfm2_token lfm2_vocab_eot(const struct lfm2_vocab *v) { return v ? v->eot : -1; }
lfm2_token lfm2_vocab_pad(const struct lfm2_vocab *v) { return v ? v->pad : -1; }
lfm2_token lfm2_vocab_nl(const struct lfm2_vocab *v) { return v ? v->nl : -1; }
bool lfm2_vocab_add_bos(const struct lfm2_vocab *v) { return v && v->add_bos; }
bool lfm2_vocab_add_eos(const struct lfm2_vocab *v) { return v && v->add_eos; }

static bool valid_id(const struct lfm2_vocab *v, lfm2_token t)
{
    return v && t >= 0 && t < v->n_tokens;
}

int lfm2_vocab_eog_ids(const struct lfm2_vocab *v, lfm2_token *ids, int cap)
{
    if (!v)
        return 0;
    int k = 0;
    for (int i = 0; i < v->n_tokens; i++)
        if (v->eog[i]) {
            if (ids && k < cap)
                ids[k] = i;
            k++;
        }
    return k;
}

bool lfm2_vocab_is_eog(const struct lfm2_vocab *v, lfm2_token t)
{
    return valid_id(v, t) && v->eog[t];
}

bool lfm2_vocab_is_control(const struct lfm2_vocab *v, lfm2_token t)
{
    return valid_id(v, t) && (v->attr[t] & LFM2_ATTR_CONTROL);
}

uint32_t lfm2_vocab_attr(const struct lfm2_vocab *v, lfm2_token t)
{
    return valid_id(v, t) ? v->attr[t] : 0;
}

const char *lfm2_vocab_text(const struct lfm2_vocab *v, lfm2_token t, size_t *len)
{
    if (!valid_id(v, t))
        return NULL;
    if (len)
        *len = v->text_len[t];
    return v->text + v->text_off[t];
}

lfm2_token lfm2_vocab_lookup(const struct lfm2_vocab *v, const char *text, size_t len)
{
    if (!v || !text)
        return -1;
    return lookup(v, text, len);
}

const char *lfm2_vocab_piece(const struct lfm2_vocab *v, lfm2_token t, size_t *len)
{
    if (!valid_id(v, t)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->piece_len[t];
    return v->piece + v->piece_off[t];
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

struct sym {
    uint32_t off, n;   /* bytes of the word; n = 0 once merged into its left neighbour */
    int32_t prev, next;
};

struct bigram {
    int32_t rank, left, right;
    uint32_t size;
};

struct frag {
    size_t off, len;
    lfm2_token token;   /* >= 0: a special token; -1: raw text [off, off+len) */
};

/* Per-call scratch, grown on demand. */
struct work {
    uint32_t *cpts, *lens;
    uint8_t *cls;
    size_t cap_cp;
    char *utf8, *word;
    size_t cap_word;
    struct sym *syms;
    struct bigram *heap;
    size_t cap_sym, n_heap, cap_heap;
    struct frag *frags, *frags2;
    size_t n_frags, cap_frags;
    /* output */
    lfm2_token *out;
    int32_t n_max;
    int64_t count;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return lfm2_set_error("lfm2_tokenize: out of memory");
    *p = q;
    *cap = c;
    return 0;
}

static void emit(struct work *w, lfm2_token t)
{
    if (w->count < w->n_max)
        w->out[w->count] = t;
    w->count++;
}

static bool bigram_less(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(struct work *w, struct bigram b)
{
    if (grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap) < 0)
        return -1;
    size_t i = w->n_heap++;
    while (i > 0) {
        const size_t p = (i - 1) / 2;
        if (!bigram_less(&b, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return 0;
}

static struct bigram heap_pop(struct work *w)
{
    const struct bigram top = w->heap[0];
    const struct bigram last = w->heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_heap)
            break;
        if (c + 1 < w->n_heap && bigram_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!bigram_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->n_heap)
        w->heap[i] = last;
    return top;
}

static int add_bigram(const struct lfm2_vocab *v, struct work *w, const char *word, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    const struct sym *a = &w->syms[l], *b = &w->syms[r];
    const int rank = merge_rank(v, word + a->off, a->n, word + b->off, b->n);
    if (rank < 0)
        return 0;
    return heap_push(w, (struct bigram){rank, l, r, a->n + b->n});
}

/* One pre-token, already in byte-level spelling. */
static int bpe_word(const struct lfm2_vocab *v, struct work *w, const char *word, size_t n)
{
    if (v->ignore_merges) {
        const lfm2_token id = lookup(v, word, n);
        if (id >= 0) {
            emit(w, id);
            return 0;
        }
    }
    /* one symbol per UTF-8 character (llama.cpp's unicode_len_utf8 on the lead byte) */
    static const uint8_t len_of[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    if (grow((void **)&w->syms, &w->cap_sym, n, sizeof *w->syms) < 0)
        return -1;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = len_of[(uint8_t)word[off] >> 4];
        if (cl > n - off)
            cl = n - off;
        w->syms[ns] = (struct sym){(uint32_t)off, (uint32_t)cl, ns - 1, ns + 1};
        ns++;
        off += cl;
    }
    if (ns == 0)
        return 0;
    w->syms[ns - 1].next = -1;

    w->n_heap = 0;
    for (int32_t i = 1; i < ns; i++)
        if (add_bigram(v, w, word, i - 1, i) < 0)
            return -1;
    while (w->n_heap > 0) {
        const struct bigram bg = heap_pop(w);
        struct sym *a = &w->syms[bg.left], *b = &w->syms[bg.right];
        /* stale entry: one side was merged since (their lengths no longer add up) */
        if (a->n == 0 || b->n == 0 || a->n + b->n != bg.size)
            continue;
        a->n += b->n;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0)
            w->syms[b->next].prev = bg.left;
        if (add_bigram(v, w, word, a->prev, bg.left) < 0 ||
            add_bigram(v, w, word, bg.left, w->syms[bg.left].next) < 0)
            return -1;
    }
    for (int32_t i = 0; i >= 0; i = w->syms[i].next) {
        const struct sym *s = &w->syms[i];
        const lfm2_token id = lookup(v, word + s->off, s->n);
        if (id >= 0) {
            emit(w, id);
        } else {
            /* not a vocabulary entry: llama.cpp falls back to its single bytes, if any exist */
            for (uint32_t k = 0; k < s->n; k++) {
                const lfm2_token b = lookup(v, word + s->off + k, 1);
                if (b >= 0)
                    emit(w, b);
            }
        }
    }
    return 0;
}

/* Raw text (no special tokens inside): pre-tokenize, spell in bytes, BPE. */
static int tokenize_raw(const struct lfm2_vocab *v, struct work *w, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    if (len > w->cap_cp) {   /* code points, their classes and the piece lengths */
        size_t c = w->cap_cp ? w->cap_cp : 256;
        while (c < len)
            c *= 2;
        uint32_t *a = realloc(w->cpts, c * sizeof *a);
        if (a)
            w->cpts = a;
        uint32_t *b = a ? realloc(w->lens, c * sizeof *b) : NULL;
        if (b)
            w->lens = b;
        uint8_t *cl = b ? realloc(w->cls, c) : NULL;
        if (!cl)
            return lfm2_set_error("lfm2_tokenize: out of memory");
        w->cls = cl;
        w->cap_cp = c;
    }
    const uint8_t *s = (const uint8_t *)text;
    size_t n = 0;
    for (size_t p = 0; p < len;) {
        const uint32_t c = lfm2_utf8_next(s, len, &p);
        w->cpts[n] = c;
        w->cls[n] = (uint8_t)lfm2_cpt_class(c);
        n++;
    }
    const size_t n_words = lfm2_pretok_llama3(w->cpts, w->cls, n, w->lens);

    size_t start = 0;
    for (size_t k = 0; k < n_words; k++) {
        const size_t wl = w->lens[k];
        /* re-encode the code points (invalid input became U+FFFD), then byte-level spelling */
        if (grow((void **)&w->utf8, &w->cap_word, 12 * wl, 1) < 0)
            return -1;
        size_t nb = 0;
        for (size_t i = start; i < start + wl; i++)
            nb += (size_t)lfm2_utf8_encode(w->cpts[i], w->utf8 + nb);
        /* word shares cap_word: utf8 uses [0, 4 wl), the spelling goes after it */
        char *word = w->utf8 + 4 * wl;
        const size_t nw = lfm2_byte_encode((const uint8_t *)w->utf8, nb, word);
        if (bpe_word(v, w, word, nw) < 0)
            return -1;
        start += wl;
    }
    return 0;
}

static int push_frag(struct frag **arr, size_t *n, size_t *cap, struct frag f)
{
    if (grow((void **)arr, cap, *n + 1, sizeof **arr) < 0)
        return -1;
    (*arr)[(*n)++] = f;
    return 0;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (nn == 0 || nn > hn)
        return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end;) {
        p = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, nd, nn) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* llama.cpp's tokenizer_st_partition: for each special token (longest first), split every
 * raw fragment at each of its occurrences. Only tokens that occur in the text at all (found in
 * one pass with the trie) are tried. */
static int partition(const struct lfm2_vocab *v, struct work *w, const char *text, size_t len,
                     bool parse_special)
{
    const uint32_t skip = parse_special ? 0 : (LFM2_ATTR_CONTROL | LFM2_ATTR_UNKNOWN);
    w->n_frags = 0;
    size_t cap2 = 0;
    if (push_frag(&w->frags, &w->n_frags, &w->cap_frags, (struct frag){0, len, -1}) < 0)
        return -1;
    if (v->n_special == 0)
        return 0;

    /* which special tokens occur anywhere (bit per token id) */
    uint8_t *seen = NULL;
    bool any = false;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len; i++) {
        if (!v->first_byte[s[i]])
            continue;
        int32_t node = 0;
        for (size_t k = i; k < len; k++) {
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != s[k])
                c = v->trie[c].sibling;
            if (c < 0)
                break;
            node = c;
            const int32_t t = v->trie[node].token;
            if (t >= 0 && !(v->attr[t] & skip)) {
                if (!seen && !(seen = calloc(((size_t)v->n_tokens + 7) / 8, 1)))
                    return lfm2_set_error("lfm2_tokenize: out of memory");
                seen[t >> 3] |= (uint8_t)(1u << (t & 7));
                any = true;
            }
        }
    }
    if (!any)
        return 0;

    int rc = 0;
    for (int k = 0; k < v->n_special && rc == 0; k++) {
        const lfm2_token t = v->special[k];
        if (!(seen[t >> 3] & (1u << (t & 7))))
            continue;
        const char *st = v->text + v->text_off[t];
        const size_t sl = v->text_len[t];
        size_t n2 = 0;
        for (size_t f = 0; f < w->n_frags && rc == 0; f++) {
            struct frag fr = w->frags[f];
            if (fr.token >= 0) {
                rc = push_frag(&w->frags2, &n2, &cap2, fr);
                continue;
            }
            size_t off = fr.off, rem = fr.len;
            while (rem > 0 && rc == 0) {
                const char *m = find_bytes(text + off, rem, st, sl);
                if (!m) {
                    rc = push_frag(&w->frags2, &n2, &cap2, (struct frag){off, rem, -1});
                    break;
                }
                const size_t mo = (size_t)(m - text);
                if (mo > off)
                    rc = push_frag(&w->frags2, &n2, &cap2, (struct frag){off, mo - off, -1});
                if (rc == 0)
                    rc = push_frag(&w->frags2, &n2, &cap2, (struct frag){mo, sl, t});
                rem -= (mo - off) + sl;
                off = mo + sl;
            }
        }
        /* swap the buffers */
        struct frag *tf = w->frags;
        w->frags = w->frags2;
        w->frags2 = tf;
        size_t tc = w->cap_frags;
        w->cap_frags = cap2;
        cap2 = tc;
        w->n_frags = n2;
    }
    free(seen);
    return rc;
}

static void work_free(struct work *w)
{
    free(w->cpts);
    free(w->lens);
    free(w->cls);
    free(w->utf8);
    free(w->syms);
    free(w->heap);
    free(w->frags);
    free(w->frags2);
}

static int32_t tokenize_impl(const struct lfm2_vocab *v, const char *text, size_t len,
                             lfm2_token *tokens, int32_t n_max, bool add_special,
                             bool parse_special)
{
    struct work w = {0};
    w.out = tokens;
    w.n_max = n_max;
    int rc = 0;
    if (add_special && v->add_bos)
        emit(&w, v->bos);
    if (len > 0)
        rc = partition(v, &w, text, len, parse_special);
    for (size_t f = 0; rc == 0 && f < w.n_frags; f++) {
        const struct frag *fr = &w.frags[f];
        if (fr->token >= 0)
            emit(&w, fr->token);
        else
            rc = tokenize_raw(v, &w, text + fr->off, fr->len);
    }
    if (rc == 0 && add_special && v->add_eos)
        emit(&w, v->eos);
    work_free(&w);
    if (rc < 0)
        return INT32_MIN;
    if (w.count > INT32_MAX - 1) {
        lfm2_set_error("lfm2_tokenize: the text gives more than 2^31 tokens");
        return INT32_MIN;
    }
    return w.count > n_max ? -(int32_t)w.count : (int32_t)w.count;
}

int32_t lfm2_vocab_tokenize(const struct lfm2_vocab *v, const char *text, int32_t text_len,
                            lfm2_token *tokens, int32_t n_max, bool add_special,
                            bool parse_special)
{
    if (!v) {
        lfm2_set_error("lfm2_tokenize: no vocabulary");
        return INT32_MIN;
    }
    if (!text && text_len != 0) {
        lfm2_set_error("lfm2_tokenize: text is NULL");
        return INT32_MIN;
    }
    if (n_max < 0 || (n_max > 0 && !tokens)) {
        lfm2_set_error("lfm2_tokenize: invalid output buffer (n_max %d)", (int)n_max);
        return INT32_MIN;
    }
    const size_t len = text_len < 0 ? strlen(text) : (size_t)text_len;
    return tokenize_impl(v, text, len, tokens, n_max, add_special, parse_special);
}

/* ---- detokenizer -------------------------------------------------------------------------- */

int32_t lfm2_vocab_token_to_piece(const struct lfm2_vocab *v, lfm2_token t, char *buf,
                                  int32_t len, bool special)
{
    if (!valid_id(v, t))
        return 0;
    if (!special && (v->attr[t] & (LFM2_ATTR_UNKNOWN | LFM2_ATTR_CONTROL)))
        return 0;
    const uint32_t n = v->piece_len[t];
    if (len < 0 || (uint32_t)len < n)
        return -(int32_t)n;
    if (n)
        memcpy(buf, v->piece + v->piece_off[t], n);
    return (int32_t)n;
}

/* Length of the valid UTF-8 sequence starting at s[0] (n bytes available): > 0 complete and
 * valid; 0 valid so far but incomplete; -k invalid, the first k bytes are its maximal subpart
 * (one U+FFFD). Strict: no overlongs, surrogates or code points past U+10FFFF. */
static int utf8_check(const uint8_t *s, size_t n)
{
    const uint8_t b = s[0];
    if (b < 0x80)
        return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;   /* range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else
        return -1;
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n)
            return 0;
        const uint8_t c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80)
            return -k;
    }
    return need;
}

/* Sanitizes pending + piece into out (NULL: count only). Returns the output length and sets
 * *tail to the number of trailing bytes of an incomplete sequence (kept when !final). */
static size_t detok_run(const uint8_t *buf, size_t n, char *out, bool final, size_t *tail)
{
    size_t o = 0, i = 0;
    *tail = 0;
    while (i < n) {
        const int r = utf8_check(buf + i, n - i);
        if (r > 0) {
            if (out)
                memcpy(out + o, buf + i, (size_t)r);
            o += (size_t)r;
            i += (size_t)r;
        } else if (r == 0 && !final) {
            *tail = n - i;
            break;
        } else {
            if (out)
                memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += r == 0 ? n - i : (size_t)-r;
        }
    }
    return o;
}

int32_t lfm2_vocab_detok_push(const struct lfm2_vocab *v, struct lfm2_detok *d, lfm2_token t,
                              char *out, int32_t cap)
{
    if (!d || d->n_pending < 0 || d->n_pending > 3)
        return lfm2_set_error("lfm2_detok_push: no or corrupt detokenizer state"), INT32_MIN;
    size_t np = 0;
    const char *p = NULL;
    if (valid_id(v, t) && (d->special || !(v->attr[t] & (LFM2_ATTR_UNKNOWN | LFM2_ATTR_CONTROL)))) {
        p = v->piece + v->piece_off[t];
        np = v->piece_len[t];
    }
    /* pending bytes + piece in one buffer (small pieces on the stack) */
    uint8_t stack[256];
    uint8_t *buf = stack;
    const size_t n = (size_t)d->n_pending + np;
    if (n > sizeof stack && !(buf = malloc(n)))
        return lfm2_set_error("lfm2_detok_push: out of memory (%zu bytes)", n), INT32_MIN;
    memcpy(buf, d->pending, (size_t)d->n_pending);
    if (np)
        memcpy(buf + d->n_pending, p, np);
    size_t tail;
    const size_t need = detok_run(buf, n, NULL, false, &tail);
    int32_t ret;
    if (need + 1 > INT32_MAX) {
        lfm2_set_error("lfm2_detok_push: a piece longer than 2 GiB");
        ret = INT32_MIN;
    } else if (need + 1 > (size_t)(cap < 0 ? 0 : cap) || !out) {
        ret = -(int32_t)(need + 1);
    } else {
        detok_run(buf, n, out, false, &tail);
        out[need] = 0;
        memcpy(d->pending, buf + n - tail, tail);
        d->n_pending = (int)tail;
        ret = (int32_t)need;
    }
    if (buf != stack)
        free(buf);
    return ret;
}

/* ---- lfm2.h wrappers ------------------------------------------------------------------------ */

#define VOCAB(m) lfm2_model_vocab(m)

int lfm2_model_n_vocab(const lfm2_model *m) { return m ? lfm2_vocab_n_tokens(VOCAB(m)) : 0; }
lfm2_token lfm2_token_bos(const lfm2_model *m) { return m ? lfm2_vocab_bos(VOCAB(m)) : -1; }
lfm2_token lfm2_token_eos(const lfm2_model *m) { return m ? lfm2_vocab_eos(VOCAB(m)) : -1; }
lfm2_token lfm2_token_eot(const lfm2_model *m) { return m ? lfm2_vocab_eot(VOCAB(m)) : -1; }
lfm2_token lfm2_token_pad(const lfm2_model *m) { return m ? lfm2_vocab_pad(VOCAB(m)) : -1; }
bool lfm2_add_bos(const lfm2_model *m) { return m && lfm2_vocab_add_bos(VOCAB(m)); }

bool lfm2_token_is_eog(const lfm2_model *m, lfm2_token t)
{
    return m && lfm2_vocab_is_eog(VOCAB(m), t);
}

bool lfm2_token_is_control(const lfm2_model *m, lfm2_token t)
{
    return m && lfm2_vocab_is_control(VOCAB(m), t);
}

const char *lfm2_token_text(const lfm2_model *m, lfm2_token t)
{
    return m ? lfm2_vocab_text(VOCAB(m), t, NULL) : NULL;
}

lfm2_token lfm2_token_lookup(const lfm2_model *m, const char *text)
{
    return m && text ? lfm2_vocab_lookup(VOCAB(m), text, strlen(text)) : -1;
}

int32_t lfm2_tokenize(const lfm2_model *m, const char *text, int32_t text_len,
                      lfm2_token *tokens, int32_t n_max, bool add_bos, bool parse_special)
{
    if (!m) {
        lfm2_set_error("lfm2_tokenize: no model");
        return INT32_MIN;
    }
    return lfm2_vocab_tokenize(VOCAB(m), text, text_len, tokens, n_max, add_bos, parse_special);
}

int32_t lfm2_token_to_piece(const lfm2_model *m, lfm2_token t, char *buf, int32_t len, bool special)
{
    return m ? lfm2_vocab_token_to_piece(VOCAB(m), t, buf, len, special) : 0;
}

void lfm2_detok_init(struct lfm2_detok *d, bool special)
{
    if (!d)
        return;
    memset(d, 0, sizeof *d);
    d->special = special;
}

int32_t lfm2_detok_push(const lfm2_model *m, struct lfm2_detok *d, lfm2_token t, char *out, int32_t cap)
{
    return lfm2_vocab_detok_push(m ? VOCAB(m) : NULL, d, t, out, cap);
}

int32_t lfm2_detok_flush(struct lfm2_detok *d, char *out, int32_t cap)
{
    if (!d || d->n_pending < 0 || d->n_pending > 3)
        return lfm2_set_error("lfm2_detok_flush: no or corrupt detokenizer state"), INT32_MIN;
    size_t tail;
    const size_t need = detok_run((const uint8_t *)d->pending, (size_t)d->n_pending, NULL, true, &tail);
    if (!out || need + 1 > (size_t)(cap < 0 ? 0 : cap))
        return -(int32_t)(need + 1);
    detok_run((const uint8_t *)d->pending, (size_t)d->n_pending, out, true, &tail);
    out[need] = 0;
    d->n_pending = 0;
    return (int32_t)need;
}
