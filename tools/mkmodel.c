/* mkmodel.c — `lfm2 mkmodel`: random-weight LFM2 / LFM2-MoE / LFM2-VL GGUF files in the exact
 * layout of llama.cpp's converter (tensor names, shapes, order, metadata and tokenizer keys),
 * for tests and benchmarks without downloading a model. The weights are RANDOM: the files
 * exercise the arithmetic and the speed, their output text is gibberish by design.
 *
 * Determinism: every row of every tensor draws from its own PRNG stream, seeded from
 * (--seed, tensor index, row), so the bytes depend only on the seed and the config, never on
 * the thread count.
 *
 * Tokenizer: a byte-level BPE vocabulary carrying the LFM2 special tokens — ids 0..19 the
 * control tokens of the fixtures, 20..275 the 256 bytes in GPT-2's byte-to-unicode spelling,
 * then the merges a small BPE trainer learns from the built-in text below, then `<unusedN>`
 * padding. VL backbones also get `<|img_row_R_col_C|>` and `<|image_split|>` (see
 * docs/models.md for where they go). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "lfm2-gguf.h"
#include "lfm2-ops.h"
#include "lfm2-stage.h"
#include "lfm2.h"
#include "mkmodel-audio.h"
#include "mkmodel.h"

#define CMD "mkmodel"

/* ---- configurations ----------------------------------------------------------------------- */


static const config k_configs[] = {
    { .name = "tiny", .arch = "lfm2", .size_label = "TINY", .n_embd = 128, .n_layer = 6, .n_head = 4,
      .n_head_kv = 2, .n_ff = 256, .n_vocab = 512, .attn = { 2, 5 }, .n_attn = 2, .n_new_tokens = 236 },
    { .name = "small", .arch = "lfm2", .size_label = "SMALL", .n_embd = 256, .n_layer = 3, .n_head = 4,
      .n_head_kv = 2, .n_ff = 256, .n_vocab = 1024, .attn = { 0, 2 }, .n_attn = 2, .n_new_tokens = 552,
      .rich_corpus = 1 },
    { .name = "moe-tiny", .arch = "lfm2moe", .size_label = "TINY-MOE", .n_embd = 128, .n_layer = 4, .n_head = 4,
      .n_head_kv = 2, .n_ff = 256, .n_vocab = 512, .attn = { 1, 3 }, .n_attn = 2, .n_expert = 8,
      .n_expert_used = 2, .n_ff_exp = 64, .n_dense_lead = 2, .n_new_tokens = 236 },
    { .name = "350m", .arch = "lfm2", .size_label = "350M", .n_embd = 1024, .n_layer = 16, .n_head = 16,
      .n_head_kv = 8, .n_ff = 4608, .n_vocab = 65536, .attn = { 2, 5, 8, 10, 12, 14 }, .n_attn = 6,
      .rich_corpus = 1 },
    { .name = "700m", .arch = "lfm2", .size_label = "700M", .n_embd = 1536, .n_layer = 16, .n_head = 24,
      .n_head_kv = 8, .n_ff = 6912, .n_vocab = 65536, .attn = { 2, 5, 8, 10, 12, 14 }, .n_attn = 6,
      .rich_corpus = 1 },
    { .name = "1.2b", .arch = "lfm2", .size_label = "1.2B", .n_embd = 2048, .n_layer = 16, .n_head = 32,
      .n_head_kv = 8, .n_ff = 8192, .n_vocab = 65536, .attn = { 2, 5, 8, 10, 12, 14 }, .n_attn = 6,
      .rich_corpus = 1 },
    /* 22 conv + 8 attention layers; the published indices were not available, these are a
     * plausible spread (documented in docs/models.md) */
    { .name = "2.6b", .arch = "lfm2", .size_label = "2.6B", .n_embd = 2048, .n_layer = 30, .n_head = 32,
      .n_head_kv = 8, .n_ff = 10752, .n_vocab = 65536, .attn = { 2, 6, 10, 14, 18, 21, 24, 27 }, .n_attn = 8,
      .rich_corpus = 1 },
    { .name = "8b-a1b", .arch = "lfm2moe", .size_label = "8B-A1B", .n_embd = 2048, .n_layer = 24, .n_head = 32,
      .n_head_kv = 8, .n_ff = 7168, .n_vocab = 65536, .attn = { 2, 6, 10, 14, 18, 21 }, .n_attn = 6,
      .n_expert = 32, .n_expert_used = 4, .n_ff_exp = 1792, .n_dense_lead = 2, .rich_corpus = 1 },
    /* LFM2-Audio backbones (audio tokens, text-mode shaping; the lfm2a mmproj from
     * mkmodel-audio.c, vocoder and tokenizer files from mkmodel-tts.c): tiny (128 wide, the
     * width of the shared ASR fixture's adapter) and the published LFM2.5-Audio-1.5B backbone
     * (LFM2.5-1.2B) */
    { .name = "audio-tiny", .arch = "lfm2", .size_label = "TINY", .n_embd = 128, .n_layer = 6, .n_head = 4,
      .n_head_kv = 2, .n_ff = 256, .n_vocab = 640, .attn = { 2, 5 }, .n_attn = 2, .n_new_tokens = 236,
      .audio = 1 },
    { .name = "audio-1.5b", .arch = "lfm2", .size_label = "1.5B", .n_embd = 2048, .n_layer = 16, .n_head = 32,
      .n_head_kv = 8, .n_ff = 8192, .n_vocab = 65536, .attn = { 2, 5, 8, 10, 12, 14 }, .n_attn = 6,
      .rich_corpus = 1, .audio = 1 },
    { .name = "vl-tiny", .arch = "lfm2", .size_label = "TINY", .n_embd = 128, .n_layer = 6, .n_head = 4,
      .n_head_kv = 2, .n_ff = 256, .n_vocab = 613, .attn = { 2, 5 }, .n_attn = 2, .n_new_tokens = 236,
      .vl = 1, .vl_marker_base = 512, .v_embd = 64, .v_blocks = 2, .v_heads = 2, .v_ff = 128, .v_proj = 128 },
    { .name = "vl-450m", .arch = "lfm2", .size_label = "450M", .n_embd = 1024, .n_layer = 16, .n_head = 16,
      .n_head_kv = 8, .n_ff = 4608, .n_vocab = 65536, .attn = { 2, 5, 8, 10, 12, 14 }, .n_attn = 6,
      .rich_corpus = 1, .vl = 1, .vl_marker_base = 397, .v_embd = 768, .v_blocks = 12, .v_heads = 12,
      .v_ff = 3072, .v_proj = 2560 },
};
#define N_CONFIGS ((int)(sizeof k_configs / sizeof k_configs[0]))

static const config *find_config(const char *name)
{
    for (int i = 0; i < N_CONFIGS; i++)
        if (strcmp(k_configs[i].name, name) == 0)
            return &k_configs[i];
    return NULL;
}

static bool is_attn_layer(const config *c, int l)
{
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn[i] == l)
            return true;
    return false;
}

/* ---- file types (--type) ------------------------------------------------------------------ */


static const file_type k_types[] = {
    { "f32", LFM2_TYPE_F32, 0, false },   { "f16", LFM2_TYPE_F16, 1, false },
    { "bf16", LFM2_TYPE_BF16, 32, false }, { "q8_0", LFM2_TYPE_Q8_0, 7, false },
    { "q4_0", LFM2_TYPE_Q4_0, 2, false },  { "q4_1", LFM2_TYPE_Q4_1, 3, false },
    { "q5_0", LFM2_TYPE_Q5_0, 8, false },  { "q5_1", LFM2_TYPE_Q5_1, 9, false },
    { "q4_k", LFM2_TYPE_Q4_K, 14, false }, { "q5_k", LFM2_TYPE_Q5_K, 16, false },
    { "q6_k", LFM2_TYPE_Q6_K, 18, false }, { "q4_k_m", LFM2_TYPE_Q4_K, 15, true },
};

const file_type *find_file_type(const char *name)
{
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (strcmp(k_types[i].name, name) == 0)
            return &k_types[i];
    return NULL;
}

/* llama-quantize's fallback when a row is not a multiple of 256 (llama-quant.cpp). */
static enum lfm2_type fit_type(enum lfm2_type t, int64_t ne0)
{
    if (ne0 % lfm2_type_block_elems(t) == 0)
        return t;
    switch (t) {
    case LFM2_TYPE_Q4_K: return LFM2_TYPE_Q5_0;
    case LFM2_TYPE_Q5_K: return LFM2_TYPE_Q5_1;
    case LFM2_TYPE_Q6_K: return LFM2_TYPE_Q8_0;
    default: return LFM2_TYPE_F32;
    }
}

/* llama.cpp's use_more_bits(): which attn_v / ffn_down tensors Q4_K_M raises to Q6_K. */
static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* ---- the training text (written for this generator) ------------------------------------------ */

static const char k_text_base[] =
    "The quick brown fox jumps over the lazy dog. A small model reads the text one token at a time, "
    "and every token moves the state of the network a little further along.\n"
    "When the evening came, the old lighthouse keeper climbed the stairs and lit the lamp. He had done "
    "it every night for forty years, and the ships that passed in the dark never knew his name.\n"
    "How many legs do three foxes have? Each fox has four legs, so three foxes have twelve legs in all. "
    "The children counted them twice to be sure, and then they counted the ducks in the pond.\n"
    "Weather report: in the morning the wind will turn to the west and the temperature will drop to "
    "eleven degrees. In the afternoon there will be rain in the hills and sunshine near the coast.\n"
    "She opened the letter, read the first line, and smiled. It's been a long time, it said, and I'll "
    "be there on Sunday. We'd better clean the house, she thought, they're bringing the whole family.\n"
    "Machine learning models are trained on large amounts of data. They learn patterns that help them "
    "predict the next word, recognize an image or translate a sentence from one language to another.\n"
    "The river runs through the valley and the town is built on both of its banks. There are seven "
    "bridges, three churches, one market square and a small station where the train stops twice a day.\n"
    "I think that the best way to learn something is to try it yourself, make mistakes, and try again. "
    "You don't need to be perfect; you need to be patient and to keep going when things are difficult.\n"
    "In the garden there were roses, tulips and a tall apple tree. The gardener said that the apples "
    "would be ready in September, and that the birds would eat half of them before anyone else could.\n";

static const char k_text_rich[] =
    "Le petit déjeuner est servi à huit heures. Où est la gare ? Nous étions très fatigués après le voyage, "
    "mais l'hôtel était près de la mer et la vue était magnifique.\n"
    "Die Straße war nass, und die Kinder spielten trotzdem draußen. Größere Häuser stehen am Ufer; "
    "über der Brücke fährt ein Zug nach München.\n"
    "El niño comió una manzana y después salió a jugar con sus amigos. ¿Dónde está la biblioteca? "
    "Mañana iremos al mercado.\n"
    "Москва — столица России. Сегодня хорошая погода, и мы пойдём гулять в парк. Привет, как дела?\n"
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Καλημέρα, τι κάνεις σήμερα;\n"
    "東京は日本の首都です。今日はとても良い天気ですね。私は毎朝コーヒーを飲みます。\n"
    "北京是中国的首都。我们明天去图书馆看书，然后一起吃晚饭。\n"
    "서울은 한국의 수도입니다. 오늘 날씨가 정말 좋네요. 감사합니다!\n"
    "Emoji: 😀 🎉 👍 🚀 ❤️ 🌍 — numbers: 1234567, 3.14159, 2024-06-01, 42%, $19.99, 0x7f.\n"
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i * i)\n"
    "int main(void) {\n    printf(\"hello, world\\n\");\n    return 0;\n}\n"
    "{\"name\": \"lfm2\", \"layers\": 16, \"heads\": [16, 8], \"ok\": true}\n"
    "   Indented   text\twith\ttabs and  double  spaces.\r\nWindows line endings, too.\r\n";

/* ---- byte-level BPE ------------------------------------------------------------------------- */

/* GPT-2's reversible byte → code point map (printable bytes map to themselves). */
static uint32_t byte_to_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    uint32_t n = 0;
    for (uint32_t x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174))
            n++;
    return 256 + n;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 63)); return 2; }
    out[0] = (char)(0xe0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 63));
    out[2] = (char)(0x80 | (cp & 63));
    return 3;
}

/* Decodes one UTF-8 code point (invalid bytes count as one code point each). */
static uint32_t get_utf8(const char *s, size_t n, size_t *len)
{
    const uint8_t *u = (const uint8_t *)s;
    int k = u[0] < 0x80 ? 1 : (u[0] >> 5) == 6 ? 2 : (u[0] >> 4) == 14 ? 3 : (u[0] >> 3) == 30 ? 4 : 1;
    if ((size_t)k > n)
        k = 1;
    uint32_t cp = k == 1 ? u[0] : k == 2 ? u[0] & 31u : k == 3 ? u[0] & 15u : u[0] & 7u;
    for (int i = 1; i < k; i++)
        cp = cp << 6 | (u[i] & 63u);
    *len = (size_t)k;
    return cp;
}

/* Rough Unicode classes, enough for splitting the training text like LFM2's pre-tokenizer. */
static bool cp_space(uint32_t c) { return c == ' ' || (c >= 9 && c <= 13) || c == 0xa0 || c == 0x3000; }
static bool cp_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static bool cp_letter(uint32_t c)
{
    if (c < 0x80)
        return (c | 32) >= 'a' && (c | 32) <= 'z';
    if (c < 0xc0)
        return c == 0xaa || c == 0xb5 || c == 0xba;
    if (c == 0xd7 || c == 0xf7)
        return false;
    if ((c >= 0x2000 && c <= 0x2bff) || (c >= 0x3000 && c <= 0x303f) || (c >= 0xfe00 && c <= 0xfe0f) ||
        (c >= 0xff00 && c <= 0xff20) || c >= 0x1f000)
        return false;
    return true;
}
static bool cp_other(uint32_t c) { return !cp_space(c) && !cp_letter(c) && !cp_digit(c); }

/* Length in bytes of the next pre-token at s (the LLAMA3 split rules, in order). */
static size_t next_piece(const char *s, size_t n)
{
    size_t l0, l1, i;
    uint32_t c = get_utf8(s, n, &l0);
    uint32_t c1 = l0 < n ? get_utf8(s + l0, n - l0, &l1) : 0;
    if (c == '\'' && l0 < n) {   /* contractions */
        static const char *const cs[] = { "s", "t", "re", "ve", "m", "ll", "d" };
        for (int k = 0; k < 7; k++) {
            size_t m = strlen(cs[k]);
            if (l0 + m <= n && strncasecmp(s + l0, cs[k], m) == 0)
                return l0 + m;
        }
    }
    if (cp_letter(c) || (c != '\r' && c != '\n' && !cp_letter(c) && !cp_digit(c) && l0 < n && cp_letter(c1))) {
        i = cp_letter(c) ? 0 : l0;
        while (i < n) {
            size_t l;
            if (!cp_letter(get_utf8(s + i, n - i, &l)))
                break;
            i += l;
        }
        return i;
    }
    if (cp_digit(c)) {
        i = 0;
        for (int k = 0; k < 3 && i < n && cp_digit((uint8_t)s[i]); k++)
            i++;
        return i;
    }
    if (cp_other(c) || (c == ' ' && l0 < n && cp_other(c1))) {
        i = c == ' ' ? l0 : 0;
        while (i < n) {
            size_t l;
            if (!cp_other(get_utf8(s + i, n - i, &l)))
                break;
            i += l;
        }
        while (i < n && (s[i] == '\r' || s[i] == '\n'))
            i++;
        return i;
    }
    /* whitespace run */
    size_t end = 0, last_nl = 0;
    while (end < n) {
        size_t l;
        uint32_t w = get_utf8(s + end, n - end, &l);
        if (!cp_space(w))
            break;
        end += l;
        if (w == '\r' || w == '\n')
            last_nl = end;
    }
    if (last_nl)
        return last_nl;        /* \s*[\r\n]+ */
    if (end == n || end <= l0)
        return end;            /* \s+ at the end, or a single space before a word */
    size_t back = end;         /* \s+(?!\S): leave the last space for the next word */
    while (back > 0 && (s[back - 1] & 0xc0) == 0x80)
        back--;
    return back > 0 ? back : end;
}

struct vocab {
    char **tok;          /* token strings (UTF-8, GPT-2 byte spelling for text tokens) */
    int32_t *type;       /* 1 normal, 3 control */
    int n_vocab;
    char **merges;
    int n_merges;
};

static void vocab_free(vocab *v)
{
    if (v->tok)
        for (int i = 0; i < v->n_vocab; i++)
            free(v->tok[i]);
    if (v->merges)
        for (int i = 0; i < v->n_merges; i++)
            free(v->merges[i]);
    free(v->tok);
    free(v->type);
    free(v->merges);
}

static const char *const k_control[20] = {
    "<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>",
    "<|im_start|>", "<|im_end|>", "<|tool_list_start|>", "<|tool_list_end|>", "<|tool_call_start|>",
    "<|tool_call_end|>", "<|tool_response_start|>", "<|tool_response_end|>", "<|reserved_4|>",
    "<|reserved_5|>", "<image>", "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>",
};

typedef struct {
    int *sym;     /* token ids */
    int n;
    int count;    /* occurrences in the text */
    char *bytes;  /* the piece, for dedup */
    size_t len;
} word;

static int find_token(const vocab *v, const char *s)
{
    for (int i = 0; i < v->n_vocab; i++)
        if (v->tok[i] && strcmp(v->tok[i], s) == 0)
            return i;
    return -1;
}

/* Builds the vocabulary; returns 0 or -1 (out of memory). */
static int build_vocab(const config *c, vocab *v)
{
    memset(v, 0, sizeof *v);
    v->n_vocab = c->n_vocab;
    v->tok = calloc((size_t)c->n_vocab, sizeof *v->tok);
    v->type = calloc((size_t)c->n_vocab, sizeof *v->type);
    if (!v->tok || !v->type)
        return -1;
    for (int i = 0; i < 20; i++) {
        v->tok[i] = strdup(k_control[i]);
        v->type[i] = 3;
    }
    /* LFM2-Audio: the real vocabulary's controls up to 133 (<|audio_start|> 128 …), bytes after */
    const int byte0 = c->audio ? 134 : 20;
    for (int i = 20; i < byte0; i++) {
        static const char *const audio[6] = { "<|audio_start|>", "<|text_start|>", "<|text_end|>",
                                              "<|mixed_start|>", "<|mixed_end|>", "<|reserved_123|>" };
        char s[32];
        snprintf(s, sizeof s, "<|reserved_%d|>", i - 10);
        v->tok[i] = strdup(i >= 128 ? audio[i - 128] : s);
        v->type[i] = 3;
    }
    for (int b = 0; b < 256; b++) {
        char s[4] = { 0 };
        put_utf8(s, byte_to_cp((uint8_t)b));
        v->tok[byte0 + b] = strdup(s);
        v->type[byte0 + b] = 1;
    }
    if (c->vl) {
        /* image-tile markers; in the 65536 vocab also the slots the real LFM2-VL vocabulary
         * gives <image>, <|img_thumbnail|>, <|image_start|>, <|image_end|> (396, 497..499),
         * which here hold reserved controls because those texts already live at 16..19 */
        int base = c->vl_marker_base;
        for (int r = 1; r <= 10; r++)
            for (int col = 1; col <= 10; col++) {
                char s[48];
                snprintf(s, sizeof s, "<|img_row_%d_col_%d|>", r, col);
                v->tok[base + 10 * (r - 1) + (col - 1)] = strdup(s);
                v->type[base + 10 * (r - 1) + (col - 1)] = 3;
            }
        int split = base == 397 ? 500 : base + 100;
        v->tok[split] = strdup("<|image_split|>");
        v->type[split] = 3;
        if (base == 397) {
            static const int ids[4] = { 396, 497, 498, 499 };
            for (int k = 0; k < 4; k++) {
                char s[32];
                snprintf(s, sizeof s, "<|reserved_vl_%d|>", ids[k]);
                v->tok[ids[k]] = strdup(s);
                v->type[ids[k]] = 3;
            }
        }
    }
    for (int i = 0; i < byte0 + 256; i++)
        if (!v->tok[i])
            return -1;

    int *pc_a = NULL, *pc_b = NULL, *pc_n = NULL;   /* pair counts */
    word *w = NULL;
    int nw = 0, capw = 0;
    /* split the text into pieces, count identical pieces */
    size_t nb = strlen(k_text_base), nr = c->rich_corpus ? strlen(k_text_rich) : 0;
    char *text = malloc(nb + nr + 1);
    if (!text)
        return -1;
    memcpy(text, k_text_base, nb);
    memcpy(text + nb, k_text_rich, nr);
    size_t n = nb + nr;
    for (size_t i = 0; i < n;) {
        size_t len = next_piece(text + i, n - i);
        if (len == 0)
            len = 1;
        int k;
        for (k = 0; k < nw; k++)
            if (w[k].len == len && memcmp(w[k].bytes, text + i, len) == 0)
                break;
        if (k < nw) {
            w[k].count++;
        } else {
            if (nw == capw) {
                capw = capw ? 2 * capw : 256;
                word *p = realloc(w, (size_t)capw * sizeof *w);
                if (!p)
                    goto oom;
                w = p;
            }
            w[nw] = (word){ .sym = malloc(len * sizeof(int)), .n = (int)len, .count = 1,
                            .bytes = text + i, .len = len };
            if (!w[nw].sym)
                goto oom;
            for (size_t j = 0; j < len; j++)
                w[nw].sym[j] = byte0 + (uint8_t)text[i + j];
            nw++;
        }
        i += len;
    }

    /* merges: repeatedly join the most frequent adjacent pair (ties: lowest ids) into a new
     * token placed in the next free id, until the budget or the text runs out */
    int budget = 0;
    for (int i = 0; i < c->n_vocab; i++)
        budget += v->tok[i] == NULL;
    if (c->n_new_tokens && c->n_new_tokens < budget)
        budget = c->n_new_tokens;
    int next_free = byte0 + 256, cap_m = 0;
    int n_pc = 0, cap_pc = 0;
    for (int made = 0; made < budget;) {
        /* count pairs (a small open-addressed table keyed by the pair) */
        int hsize = 1;
        int total = 0;
        for (int k = 0; k < nw; k++)
            total += w[k].n;
        while (hsize < 2 * total + 16)
            hsize <<= 1;
        if (hsize > cap_pc) {
            free(pc_a); free(pc_b); free(pc_n);
            pc_a = malloc((size_t)hsize * sizeof(int));
            pc_b = malloc((size_t)hsize * sizeof(int));
            pc_n = malloc((size_t)hsize * sizeof(int));
            cap_pc = hsize;
            if (!pc_a || !pc_b || !pc_n)
                goto oom;
        }
        memset(pc_n, 0, (size_t)hsize * sizeof(int));
        n_pc = 0;
        int best = -1;
        for (int k = 0; k < nw; k++)
            for (int j = 0; j + 1 < w[k].n; j++) {
                int a = w[k].sym[j], b = w[k].sym[j + 1];
                uint32_t h = ((uint32_t)a * 2654435761u ^ (uint32_t)b * 40503u) & (uint32_t)(hsize - 1);
                while (pc_n[h] && (pc_a[h] != a || pc_b[h] != b))
                    h = (h + 1) & (uint32_t)(hsize - 1);
                if (!pc_n[h]) {
                    pc_a[h] = a;
                    pc_b[h] = b;
                    n_pc++;
                }
                pc_n[h] += w[k].count;
                int cur = (int)h;
                if (best < 0 || pc_n[cur] > pc_n[best] ||
                    (pc_n[cur] == pc_n[best] && (pc_a[cur] < pc_a[best] ||
                                                 (pc_a[cur] == pc_a[best] && pc_b[cur] < pc_b[best]))))
                    best = cur;
            }
        if (best < 0)
            break;   /* every piece is a single token */
        int a = pc_a[best], b = pc_b[best];
        size_t la = strlen(v->tok[a]), lb = strlen(v->tok[b]);
        char *joined = malloc(la + lb + 1), *rule = malloc(la + lb + 2);
        if (!joined || !rule) {
            free(joined);
            free(rule);
            goto oom;
        }
        memcpy(joined, v->tok[a], la);
        memcpy(joined + la, v->tok[b], lb + 1);
        memcpy(rule, v->tok[a], la);
        rule[la] = ' ';
        memcpy(rule + la + 1, v->tok[b], lb + 1);
        int id = find_token(v, joined);
        if (id < 0) {
            while (next_free < c->n_vocab && v->tok[next_free])
                next_free++;
            id = next_free;
            v->tok[id] = joined;
            v->type[id] = 1;
            made++;
        } else {
            free(joined);
        }
        if (v->n_merges == cap_m) {
            cap_m = cap_m ? 2 * cap_m : 512;
            char **p = realloc(v->merges, (size_t)cap_m * sizeof *p);
            if (!p) {
                free(rule);
                goto oom;
            }
            v->merges = p;
        }
        v->merges[v->n_merges++] = rule;
        for (int k = 0; k < nw; k++) {   /* apply the merge */
            int o = 0;
            for (int j = 0; j < w[k].n; j++) {
                if (j + 1 < w[k].n && w[k].sym[j] == a && w[k].sym[j + 1] == b) {
                    w[k].sym[o++] = id;
                    j++;
                } else {
                    w[k].sym[o++] = w[k].sym[j];
                }
            }
            w[k].n = o;
        }
    }
    free(pc_a); free(pc_b); free(pc_n);
    pc_a = pc_b = pc_n = NULL;
    for (int k = 0; k < nw; k++)
        free(w[k].sym);
    free(w);
    free(text);

    int unused = 0;
    for (int i = 0; i < c->n_vocab; i++)
        if (!v->tok[i]) {
            char s[32];
            snprintf(s, sizeof s, "<unused%d>", unused++);
            v->tok[i] = strdup(s);
            v->type[i] = 1;
            if (!v->tok[i])
                return -1;
        }
    return 0;
oom:
    free(pc_a); free(pc_b); free(pc_n);
    for (int k = 0; k < nw; k++)
        free(w[k].sym);
    free(w);
    free(text);
    return -1;
}

/* ---- random weights ------------------------------------------------------------------------- */


static void init_params(enum init_kind k, float *mean, float *std)
{
    static const float m[] = { 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0 };
    static const float s[] = { 0.02f, 0.1f, 0.3f, 0.1f, 0.05f, 0.05f, 0.02f, 0.1f, 0.1f, 0, 0, 1 };
    *mean = m[k];
    *std = s[k];
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s[4]; } rng;   /* xoshiro256+ */

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s, res = s[0] + s[3], t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* n standard normals (Box–Muller, two per draw). */
static void normals(rng *r, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t x = rng_next(r);
        float u1 = ((float)(x >> 40) + 1.0f) * 0x1p-24f;      /* (0, 1] */
        float u2 = (float)((x >> 16) & 0xffffff) * 0x1p-24f;  /* [0, 1) */
        float rad = sqrtf(-2.0f * logf(u1)), th = 6.2831853f * u2;
        out[i] = rad * cosf(th);
        if (i + 1 < n)
            out[i + 1] = rad * sinf(th);
    }
}


typedef struct {
    const gen_tensor *t;
    uint8_t *dst;
    int64_t row0, row1;
} gen_job;

static void *gen_rows(void *arg)
{
    gen_job *j = arg;
    const gen_tensor *t = j->t;
    int64_t n = t->ne[0];
    size_t rb = lfm2_row_bytes(t->type, n);
    float *row = malloc((size_t)(n + 1) * sizeof *row);
    if (!row)
        return (void *)1;
    const float mean = t->mean, std = t->std;
    for (int64_t r = j->row0; r < j->row1; r++) {
        rng g;
        rng_seed(&g, t->seed ^ (uint64_t)r * 0xd1342543de82ef95ull);
        normals(&g, row, n);
        for (int64_t k = 0; k < n; k++)
            row[k] = mean + std * row[k];
        if (t->shape)
            t->shape(t, r, row, n);
        lfm2_quantize(t->type, row, j->dst + (size_t)r * rb, 1, n);
    }
    free(row);
    return NULL;
}

static int fill_tensor(void *ctx, void *dst, size_t nbytes)
{
    const gen_tensor *t = ctx;
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    int nt = t->n_threads;
    if (rows < 64 || nt < 1)
        nt = 1;
    if (nt > 64)
        nt = 64;
    pthread_t th[64];
    gen_job jobs[64];
    bool started[64] = { false };
    int rc = 0;
    for (int i = 0; i < nt; i++) {
        jobs[i] = (gen_job){ t, dst, rows * i / nt, rows * (i + 1) / nt };
        if (i == nt - 1 || pthread_create(&th[i], NULL, gen_rows, &jobs[i]) != 0) {
            if (gen_rows(&jobs[i]))   /* last slice (or a failed spawn) on this thread */
                rc = -1;
        } else {
            started[i] = true;
        }
    }
    for (int i = 0; i < nt - 1; i++) {
        void *ret = NULL;
        if (started[i]) {
            pthread_join(th[i], &ret);
            if (ret)
                rc = -1;
        }
    }
    (void)nbytes;
    if (rc)
        lfm2_set_error("out of memory generating weights");
    return rc;
}

/* ---- the tensor plan ----------------------------------------------------------------------- */


int plan_add(plan *p, const char *name, enum init_kind kind, enum lfm2_type type, int n_dims,
                    int64_t ne0, int64_t ne1, int64_t ne2)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 128;
        plan_tensor *q = realloc(p->t, (size_t)cap * sizeof *q);
        if (!q)
            return -1;
        p->t = q;
        p->cap = cap;
    }
    plan_tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->g.kind = kind;
    init_params(kind, &t->g.mean, &t->g.std);
    t->g.type = fit_type(type, ne0);
    t->g.ne[0] = ne0;
    t->g.ne[1] = ne1;
    t->g.ne[2] = ne2;
    t->g.ne[3] = 1;
    p->n_params += ne0 * ne1 * ne2;
    p->n_bytes += lfm2_row_bytes(t->g.type, ne0) * (size_t)(ne1 * ne2);
    return 0;
}

/* The backbone's tensors in converter order. */
int plan_backbone(const config *c, const file_type *ft, plan *p)
{
    const int64_t d = c->n_embd, hd = c->n_embd / c->n_head;
    const bool moe = strcmp(c->arch, "lfm2moe") == 0;
    const enum lfm2_type mt = ft->type;
    const enum lfm2_type F = LFM2_TYPE_F32;
    int i_attn_v = 0, i_ffn_down = 0;
    char nm[64];
    int rc = plan_add(p, "token_embd.weight", INIT_MATRIX, ft->k_mix ? LFM2_TYPE_Q6_K : mt, 2, d, c->n_vocab, 1);
    if (rc == 0 && c->audio)
        p->t[p->n - 1].g.shape = mkmodel_tts_shape_token_embd;
    for (int l = 0; l < c->n_layer && rc == 0; l++) {
#define ADD(suffix, kind, type, nd, a, b, e)                                          \
    do {                                                                              \
        snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix);                              \
        rc |= plan_add(p, nm, kind, type, nd, a, b, e);                               \
    } while (0)
        if (is_attn_layer(c, l)) {
            enum lfm2_type vt = mt;
            if (ft->k_mix && use_more_bits(i_attn_v, c->n_attn))
                vt = LFM2_TYPE_Q6_K;
            i_attn_v++;
            ADD("attn_q.weight", INIT_MATRIX, mt, 2, d, c->n_head * hd, 1);
            ADD("attn_k.weight", INIT_MATRIX, mt, 2, d, c->n_head_kv * hd, 1);
            ADD("attn_v.weight", INIT_MATRIX, vt, 2, d, c->n_head_kv * hd, 1);
            ADD("attn_output.weight", INIT_MATRIX, mt, 2, c->n_head * hd, d, 1);
            ADD("attn_q_norm.weight", INIT_NORM, F, 1, hd, 1, 1);
            ADD("attn_k_norm.weight", INIT_NORM, F, 1, hd, 1, 1);
        } else {
            ADD("shortconv.conv.weight", INIT_CONV, F, 2, 3, d, 1);
            ADD("shortconv.in_proj.weight", INIT_MATRIX, mt, 2, d, 3 * d, 1);
            ADD("shortconv.out_proj.weight", INIT_MATRIX, mt, 2, d, d, 1);
        }
        ADD("attn_norm.weight", INIT_NORM, F, 1, d, 1, 1);
        enum lfm2_type dt = mt;
        if (ft->k_mix && use_more_bits(i_ffn_down, c->n_layer))
            dt = LFM2_TYPE_Q6_K;
        i_ffn_down++;
        if (moe && l >= c->n_dense_lead) {
            ADD("ffn_gate_inp.weight", INIT_ROUTER, F, 2, d, c->n_expert, 1);
            ADD("ffn_gate_exps.weight", INIT_MATRIX, mt, 3, d, c->n_ff_exp, c->n_expert);
            ADD("ffn_up_exps.weight", INIT_MATRIX, mt, 3, d, c->n_ff_exp, c->n_expert);
            ADD("ffn_down_exps.weight", INIT_MATRIX, dt, 3, c->n_ff_exp, d, c->n_expert);
            ADD("exp_probs_b.bias", INIT_BIAS, F, 1, c->n_expert, 1, 1);
        } else {
            ADD("ffn_gate.weight", INIT_MATRIX, mt, 2, d, c->n_ff, 1);
            ADD("ffn_up.weight", INIT_MATRIX, mt, 2, d, c->n_ff, 1);
            ADD("ffn_down.weight", INIT_MATRIX, dt, 2, c->n_ff, d, 1);
        }
        ADD("ffn_norm.weight", INIT_NORM, F, 1, d, 1, 1);
#undef ADD
    }
    rc |= plan_add(p, "token_embd_norm.weight", INIT_NORM, F, 1, d, 1, 1);
    return rc;
}

/* mkmodel-audio.c's tensors (any of 4 dims, their own value spread) into a plan. */
static int audio_add(void *ctx, const char *name, float mean, float std, enum lfm2_type type,
                     int n_dims, const int64_t ne[4])
{
    plan *p = ctx;
    if (plan_add(p, name, INIT_MATRIX, type, n_dims, ne[0], ne[1], ne[2]))
        return -1;
    gen_tensor *g = &p->t[p->n - 1].g;
    g->mean = mean;
    g->std = std;
    g->ne[3] = ne[3];
    p->n_params += ne[0] * ne[1] * ne[2] * (ne[3] - 1);
    p->n_bytes += lfm2_row_bytes(g->type, ne[0]) * (size_t)(ne[1] * ne[2] * (ne[3] - 1));
    return 0;
}

/* The LFM2-VL projector file (SigLIP2 tower + LFM2 projector), in the converter's order. */
static int plan_mmproj(const config *c, bool f16, plan *p)
{
    const int64_t D = c->v_embd, Fv = c->v_ff, P = c->v_proj, E = c->n_embd;
    const enum lfm2_type mt = f16 ? LFM2_TYPE_F16 : LFM2_TYPE_F32, F = LFM2_TYPE_F32;
    char nm[64];
    int rc = 0;
    /* the patch kernel {16, 16, 3, D} is stored as 4-D; plan_add handles 3 dims, so fold */
    rc |= plan_add(p, "v.patch_embd.weight", INIT_V_MATRIX, mt, 4, 16, 16, 3 * D);
    rc |= plan_add(p, "v.patch_embd.bias", INIT_V_BIAS, F, 1, D, 1, 1);
    rc |= plan_add(p, "v.position_embd.weight", INIT_V_POS, F, 2, D, 256, 1);
    for (int b = 0; b < c->v_blocks; b++) {
        static const char *const att[4] = { "attn_q", "attn_k", "attn_v", "attn_out" };
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", b, att[k]);
            rc |= plan_add(p, nm, INIT_V_MATRIX, mt, 2, D, D, 1);
            snprintf(nm, sizeof nm, "v.blk.%d.%s.bias", b, att[k]);
            rc |= plan_add(p, nm, INIT_V_BIAS, F, 1, D, 1, 1);
        }
        snprintf(nm, sizeof nm, "v.blk.%d.ln1.weight", b);
        rc |= plan_add(p, nm, INIT_V_NORM, F, 1, D, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ln1.bias", b);
        rc |= plan_add(p, nm, INIT_V_BIAS, F, 1, D, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", b);
        rc |= plan_add(p, nm, INIT_V_MATRIX, mt, 2, D, Fv, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.bias", b);
        rc |= plan_add(p, nm, INIT_V_BIAS, F, 1, Fv, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", b);
        rc |= plan_add(p, nm, INIT_V_MATRIX, mt, 2, Fv, D, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.bias", b);
        rc |= plan_add(p, nm, INIT_V_BIAS, F, 1, D, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ln2.weight", b);
        rc |= plan_add(p, nm, INIT_V_NORM, F, 1, D, 1, 1);
        snprintf(nm, sizeof nm, "v.blk.%d.ln2.bias", b);
        rc |= plan_add(p, nm, INIT_V_BIAS, F, 1, D, 1, 1);
    }
    rc |= plan_add(p, "v.post_ln.weight", INIT_V_NORM, F, 1, D, 1, 1);
    rc |= plan_add(p, "v.post_ln.bias", INIT_V_BIAS, F, 1, D, 1, 1);
    rc |= plan_add(p, "mm.input_norm.weight", INIT_V_NORM, F, 1, 4 * D, 1, 1);
    rc |= plan_add(p, "mm.input_norm.bias", INIT_V_BIAS, F, 1, 4 * D, 1, 1);
    rc |= plan_add(p, "mm.1.weight", INIT_V_MATRIX, mt, 2, 4 * D, P, 1);
    rc |= plan_add(p, "mm.1.bias", INIT_V_BIAS, F, 1, P, 1, 1);
    rc |= plan_add(p, "mm.2.weight", INIT_V_MATRIX, mt, 2, P, E, 1);
    rc |= plan_add(p, "mm.2.bias", INIT_V_BIAS, F, 1, E, 1, 1);
    return rc;
}

/* Number of weights in a config's backbone (for tests and `--dry-run`). */
int64_t mkmodel_param_count(const char *config_name);
int64_t mkmodel_param_count(const char *config_name)
{
    const config *c = find_config(config_name);
    if (!c)
        return -1;
    plan p = { 0 };
    int64_t n = plan_backbone(c, &k_types[0], &p) == 0 ? p.n_params : -1;
    free(p.t);
    return n;
}

/* Adds the plan's tensors to a writer (data generated at write time). */
void plan_to_writer(plan *p, lfm2_gguf_writer *w, uint64_t seed, uint64_t domain, int n_threads)
{
    for (int i = 0; i < p->n; i++) {
        plan_tensor *t = &p->t[i];
        uint64_t s = seed ^ domain ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;   /* per tensor */
        t->g.seed = splitmix(&s);
        t->g.n_threads = n_threads;
        int64_t ne[4] = { t->g.ne[0], t->g.ne[1], t->g.ne[2], t->g.ne[3] };
        if (strcmp(t->name, "v.patch_embd.weight") == 0) {   /* unfold {16, 16, 3·D} → {16, 16, 3, D} */
            ne[3] = t->g.ne[2] / 3;
            ne[2] = 3;
        }
        lfm2_gguf_add_tensor_fill(w, t->name, t->g.type, t->n_dims, ne, fill_tensor, &t->g);
    }
}

/* ---- metadata --------------------------------------------------------------------------------- */

static const char k_chat_template[] =
    "{{- bos_token -}}{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' -}}{%- endfor -%}{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\n' -}}{%- endif -%}";

void set_backbone_keys(lfm2_gguf_writer *w, const config *c, const file_type *ft, uint64_t seed,
                       const vocab *v)
{
    const char *A = c->arch;
    char key[128], name[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", A, suffix), key)
    lfm2_gguf_set_str(w, "general.architecture", A);
    lfm2_gguf_set_str(w, "general.type", "model");
    snprintf(name, sizeof name, "LFM2 %s random seed%" PRIu64, c->name, seed);
    lfm2_gguf_set_str(w, "general.name", name);
    lfm2_gguf_set_str(w, "general.size_label", c->size_label);
    lfm2_gguf_set_u32(w, "general.file_type", ft->ftype);
    lfm2_gguf_set_u32(w, "general.quantization_version", 2);
    lfm2_gguf_set_u32(w, K("block_count"), (uint32_t)c->n_layer);
    lfm2_gguf_set_u32(w, K("context_length"), 128000);
    lfm2_gguf_set_u32(w, K("embedding_length"), (uint32_t)c->n_embd);
    lfm2_gguf_set_u32(w, K("feed_forward_length"), (uint32_t)c->n_ff);
    lfm2_gguf_set_u32(w, K("attention.head_count"), (uint32_t)c->n_head);
    int32_t kv[64];
    for (int l = 0; l < c->n_layer; l++)
        kv[l] = is_attn_layer(c, l) ? c->n_head_kv : 0;
    lfm2_gguf_set_arr_i32(w, K("attention.head_count_kv"), kv, (size_t)c->n_layer);
    lfm2_gguf_set_f32(w, K("rope.freq_base"), 1000000.0f);
    lfm2_gguf_set_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f);
    lfm2_gguf_set_u32(w, K("vocab_size"), (uint32_t)c->n_vocab);
    lfm2_gguf_set_u32(w, K("shortconv.l_cache"), 3);
    if (c->n_swa)
        lfm2_gguf_set_u32(w, K("attention.sliding_window"), (uint32_t)c->n_swa);
    if (c->n_out)
        lfm2_gguf_set_u32(w, K("embedding_length_out"), (uint32_t)c->n_out);
    if (strcmp(A, "lfm2moe") == 0) {
        lfm2_gguf_set_u32(w, K("expert_count"), (uint32_t)c->n_expert);
        lfm2_gguf_set_u32(w, K("expert_used_count"), (uint32_t)c->n_expert_used);
        lfm2_gguf_set_u32(w, K("expert_feed_forward_length"), (uint32_t)c->n_ff_exp);
        lfm2_gguf_set_u32(w, K("leading_dense_block_count"), (uint32_t)c->n_dense_lead);
        lfm2_gguf_set_u32(w, K("expert_gating_func"), 2);   /* sigmoid */
    }
#undef K
    if (!v) { /* an embedding model without a vocabulary */
        lfm2_gguf_set_str(w, "tokenizer.ggml.model", "none");
        return;
    }
    lfm2_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    lfm2_gguf_set_str(w, "tokenizer.ggml.pre", "lfm2");
    lfm2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, (size_t)v->n_vocab);
    lfm2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", v->type, (size_t)v->n_vocab);
    lfm2_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (size_t)v->n_merges);
    lfm2_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    lfm2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 7);
    lfm2_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    lfm2_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    lfm2_gguf_set_str(w, "tokenizer.chat_template", k_chat_template);
}

static void set_mmproj_keys(lfm2_gguf_writer *w, const config *c, bool f16, uint64_t seed)
{
    char name[128];
    lfm2_gguf_set_str(w, "general.architecture", "clip");
    lfm2_gguf_set_str(w, "general.type", "mmproj");
    snprintf(name, sizeof name, "LFM2-VL %s random mmproj seed%" PRIu64, c->name + 3, seed);
    lfm2_gguf_set_str(w, "general.name", name);
    lfm2_gguf_set_u32(w, "general.file_type", f16 ? 1 : 0);
    lfm2_gguf_set_bool(w, "clip.has_vision_encoder", true);
    lfm2_gguf_set_str(w, "clip.projector_type", "lfm2");
    lfm2_gguf_set_bool(w, "clip.use_gelu", true);
    lfm2_gguf_set_u32(w, "clip.vision.image_size", 256);
    lfm2_gguf_set_u32(w, "clip.vision.patch_size", 16);
    lfm2_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)c->v_embd);
    lfm2_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)c->v_ff);
    lfm2_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)c->v_blocks);
    lfm2_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)c->n_embd);
    lfm2_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)c->v_heads);
    lfm2_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
    const float half[3] = { 0.5f, 0.5f, 0.5f };
    lfm2_gguf_set_arr_f32(w, "clip.vision.image_mean", half, 3);
    lfm2_gguf_set_arr_f32(w, "clip.vision.image_std", half, 3);
    lfm2_gguf_set_u32(w, "clip.vision.projector.scale_factor", 2);
}

/* ---- the command ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lfm2 mkmodel --config NAME --type TYPE [--seed N] [--threads N] -o OUT.gguf\n"
            "                    [--mmproj-out MMPROJ.gguf [--mmproj-type f32|f16|q8_0]] [--dry-run]\n"
            "                    [--vocoder-out VOC.gguf [--vocoder-type f16|q8_0|q4_0|f32|bf16]]\n"
            "                    [--tokenizer-out TOK.gguf [--tokenizer-type f16|q8_0|q4_0|f32|bf16]]\n"
            "Writes a GGUF with RANDOM weights in the layout of llama.cpp's LFM2 converter.\n"
            "configs:");
    for (int i = 0; i < N_CONFIGS; i++)
        fprintf(f, " %s", k_configs[i].name);
    fprintf(f, "\ntypes:  ");
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        fprintf(f, " %s", k_types[i].name);
    fprintf(f, "\n--dry-run prints the tensor list and sizes without writing anything.\n"
               "audio-* configs also write the LFM2.5-Audio vocoder and detokenizer (tokenizer) files.\n");
}

int cmd_mkmodel(int argc, char **argv)
{
    const char *cfg_name = NULL, *type_name = NULL, *out = NULL, *mm_out = NULL, *mm_type = "f32";
    const char *voc_out = NULL, *voc_type = "f16", *tok_out = NULL, *tok_type = "f16";
    uint64_t seed = 0;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    bool dry = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = true;
            continue;
        }
        if (!val)
            return cli_fail(CMD, "option %s needs a value (see --help)", a);
        if (strcmp(a, "--config") == 0) cfg_name = val;
        else if (strcmp(a, "--type") == 0) type_name = val;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) out = val;
        else if (strcmp(a, "--mmproj-out") == 0) mm_out = val;
        else if (strcmp(a, "--mmproj-type") == 0) mm_type = val;
        else if (strcmp(a, "--vocoder-out") == 0) voc_out = val;
        else if (strcmp(a, "--vocoder-type") == 0) voc_type = val;
        else if (strcmp(a, "--tokenizer-out") == 0) tok_out = val;
        else if (strcmp(a, "--tokenizer-type") == 0) tok_type = val;
        else if (strcmp(a, "--seed") == 0 || strcmp(a, "--threads") == 0) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || *end || !*val || val[0] == '-')
                return cli_fail(CMD, "%s: '%s' is not a non-negative integer", a, val);
            if (a[2] == 's')
                seed = v;
            else
                threads = (long)(v > 64 ? 64 : v);
        } else {
            return cli_fail(CMD, "unknown option '%s' (see --help)", a);
        }
        i++;
    }
    if (!cfg_name || !type_name || (!out && !dry))
        return cli_fail(CMD, "--config, --type and -o are required (see --help)");
    const config *c = find_config(cfg_name);
    if (!c)
        return cli_fail(CMD, "unknown config '%s' (see --help for the list)", cfg_name);
    const file_type *ft = find_file_type(type_name);
    if (!ft)
        return cli_fail(CMD, "unknown type '%s' (see --help for the list)", type_name);
    if (mm_out && !c->vl && !c->audio)
        return cli_fail(CMD, "--mmproj-out needs a vl-* or audio-* config ('%s' has no encoder)", cfg_name);
    if ((voc_out || tok_out) && !c->audio)
        return cli_fail(CMD, "--vocoder-out/--tokenizer-out need an audio-* config ('%s' is not one)", cfg_name);
    /* audio-* mmproj: the lfm2a encoder of mkmodel-audio.c (F32, F16 or Q8_0 matrices) */
    const int audio_mt = mkmodel_audio_mmproj_type(mm_type);
    if (c->audio && audio_mt < 0)
        return cli_fail(CMD, "--mmproj-type must be f32, f16 or q8_0, not '%s'", mm_type);
    if (!c->audio && strcmp(mm_type, "f32") != 0 && strcmp(mm_type, "f16") != 0)
        return cli_fail(CMD, "--mmproj-type must be f32 or f16, not '%s'", mm_type);
    if (threads < 1)
        threads = 1;

    plan p = { 0 }, pm = { 0 };
    const struct mkmodel_sink sink = { &pm, audio_add };
    if (plan_backbone(c, ft, &p) != 0 ||
        (mm_out && (c->audio ? mkmodel_audio_plan(c->name, (enum lfm2_type)audio_mt, &sink)
                             : plan_mmproj(c, strcmp(mm_type, "f16") == 0, &pm)) != 0)) {
        free(p.t);
        free(pm.t);
        return cli_fail(CMD, "out of memory");
    }
    if (dry) {
        for (int i = 0; i < p.n; i++)
            printf("%-36s %-5s [%" PRId64 ", %" PRId64 ", %" PRId64 "]\n", p.t[i].name,
                   lfm2_type_name(p.t[i].g.type), p.t[i].g.ne[0], p.t[i].g.ne[1], p.t[i].g.ne[2]);
        printf("%s %s: %d tensors, %" PRId64 " parameters, %zu bytes of tensor data\n", c->name, ft->name, p.n,
               p.n_params, p.n_bytes);
        free(p.t);
        free(pm.t);
        return 0;
    }

    double t0 = lfm2_time_ms();
    vocab v;
    if (build_vocab(c, &v) != 0) {
        vocab_free(&v);
        free(p.t);
        free(pm.t);
        return cli_fail(CMD, "out of memory building the vocabulary");
    }
    lfm2_gguf_writer *w = lfm2_gguf_writer_new();
    int rc = w ? 0 : -1;
    if (w) {
        set_backbone_keys(w, c, ft, seed, &v);
        plan_to_writer(&p, w, seed, 0, (int)threads);
        rc = lfm2_gguf_writer_write(w, out);
        lfm2_gguf_writer_free(w);
    }
    vocab_free(&v);
    if (rc == 0 && mm_out) {
        w = lfm2_gguf_writer_new();
        rc = w ? 0 : -1;
        if (w) {
            if (c->audio)
                mkmodel_audio_keys(w, c->name, (enum lfm2_type)audio_mt, seed);
            else
                set_mmproj_keys(w, c, strcmp(mm_type, "f16") == 0, seed);
            plan_to_writer(&pm, w, seed, 0x6d6d70726f6aull /* "mmproj" */, (int)threads);
            rc = lfm2_gguf_writer_write(w, mm_out);
            lfm2_gguf_writer_free(w);
        }
    }
    free(p.t);
    free(pm.t);
    if (rc == 0 && (voc_out || tok_out))
        rc = mkmodel_tts_write(c, voc_out, voc_type, tok_out, tok_type, seed, (int)threads);
    if (rc != 0)
        return cli_fail(CMD, "%s", lfm2_last_error());
    fprintf(stderr, "lfm2 mkmodel: wrote %s (%s, %s, %" PRId64 " parameters, RANDOM weights) in %.1f s\n", out,
            c->name, ft->name, p.n_params, (lfm2_time_ms() - t0) / 1000.0);
    return 0;
}
