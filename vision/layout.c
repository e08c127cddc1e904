/* layout.c — where image embeddings go in the LFM2 token sequence, prompts with images,
 * and feeding such a sequence to the text model.
 *
 * Per picture (transformers' Lfm2VlProcessor._build_image_tokens = mtmd's LFM2 case):
 *   <|image_start|> [<|img_row_R_col_C|> tile rows]… [<|img_thumbnail|> thumbnail rows] <|image_end|>
 * mtmd also puts <|img_thumbnail|> before a single untiled picture; transformers does not.
 * Marker tokens are found by their text in the vocabulary (ids differ between vocabularies).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vision-impl.h"

/* Counting writer: keeps counting past the capacity so callers learn the size needed. */
struct writer {
    lfm2_token *out;
    int32_t n, cap;
};

static void put(struct writer *w, lfm2_token t)
{
    if (w->n < w->cap)
        w->out[w->n] = t;
    w->n++;
}

static void put_run(struct writer *w, lfm2_token t, int32_t count)
{
    for (int32_t i = 0; i < count; i++)
        put(w, t);
}

/* A marker: its vocabulary entry, or (as mtmd does, which tokenizes the marker text with
 * special parsing) its tokenization when the vocabulary has no such entry. */
static int put_marker(struct writer *w, const lfm2_model *m, const char *text)
{
    const lfm2_token id = lfm2_token_lookup(m, text);
    if (id >= 0) {
        put(w, id);
        return 0;
    }
    lfm2_token tmp[64];
    const int32_t n = lfm2_tokenize(m, text, (int32_t)strlen(text), tmp, 64, false, true);
    if (n == INT32_MIN || n < 0)
        return lfm2_set_error("cannot tokenize image marker '%s'", text);
    for (int32_t i = 0; i < n; i++)
        put(w, tmp[i]);
    return 0;
}

static int write_layout(struct writer *w, const lfm2_model *m, const struct lfm2_vision_plan *plan)
{
    if (put_marker(w, m, "<|image_start|>"))
        return -1;
    const int n_tiles = plan->n_cols * plan->n_rows;
    for (int i = 0; i < n_tiles; i++) {
        char name[48];
        snprintf(name, sizeof name, "<|img_row_%d_col_%d|>", i / plan->n_cols + 1,
                 i % plan->n_cols + 1);
        if (put_marker(w, m, name))
            return -1;
        put_run(w, LFM2_VISION_EMBD, plan->tile_tokens);
    }
    if (plan->has_thumb) {
        if ((plan->tiled || plan->mode == LFM2_VISION_PREPROCESS_LLAMACPP) &&
            put_marker(w, m, "<|img_thumbnail|>"))
            return -1;
        put_run(w, LFM2_VISION_EMBD, plan->thumb_tokens);
    }
    return put_marker(w, m, "<|image_end|>");
}

static int32_t finish(const struct writer *w)
{
    return w->n <= w->cap ? w->n : -w->n;
}

int32_t lfm2_vision_layout(const lfm2_model *text, const struct lfm2_vision_plan *plan,
                           lfm2_token *out, int32_t n_max)
{
    struct writer w = { out, 0, n_max < 0 ? 0 : n_max };
    if (!text || !plan)
        return lfm2_set_error("lfm2_vision_layout: NULL argument"), INT32_MIN;
    if (write_layout(&w, text, plan))
        return INT32_MIN;
    return finish(&w);
}

static int put_text(struct writer *w, const lfm2_model *m, const char *s, size_t len, bool bos)
{
    if (len > INT32_MAX / 2)
        return lfm2_set_error("prompt too long");
    lfm2_token stack[256];
    lfm2_token *buf = stack;
    int32_t cap = 256;
    int32_t n = lfm2_tokenize(m, s, (int32_t)len, buf, cap, bos, true);
    if (n == INT32_MIN)
        return -1;
    if (n < 0) {
        cap = -n;
        buf = malloc(sizeof *buf * (size_t)cap);
        if (!buf)
            return lfm2_set_error("out of memory");
        n = lfm2_tokenize(m, s, (int32_t)len, buf, cap, bos, true);
        if (n < 0) {
            free(buf);
            return n == INT32_MIN ? -1 : lfm2_set_error("tokenizer size changed between calls");
        }
    }
    for (int32_t i = 0; i < n; i++)
        put(w, buf[i]);
    if (buf != stack)
        free(buf);
    return 0;
}

int32_t lfm2_vision_tokenize(const lfm2_model *text, const char *prompt,
                             const struct lfm2_vision_plan *plans, int n_plans, lfm2_token *out,
                             int32_t n_max)
{
    if (!text || !prompt || (n_plans > 0 && !plans))
        return lfm2_set_error("lfm2_vision_tokenize: NULL argument"), INT32_MIN;
    const size_t ml = strlen(LFM2_VISION_MARKER);
    int n_markers = 0;
    for (const char *p = strstr(prompt, LFM2_VISION_MARKER); p; p = strstr(p + ml, LFM2_VISION_MARKER))
        n_markers++;
    if (n_markers != n_plans)
        return lfm2_set_error("the prompt has %d %s marker%s but %d image%s given", n_markers,
                              LFM2_VISION_MARKER, n_markers == 1 ? "" : "s", n_plans,
                              n_plans == 1 ? " is" : "s are"),
               INT32_MIN;

    /* like mtmd: the text around the markers is tokenized piece by piece, BOS (when the
     * model adds one) on the first piece only */
    struct writer w = { out, 0, n_max < 0 ? 0 : n_max };
    const char *s = prompt;
    for (int k = 0; k <= n_plans; k++) {
        const char *e = k < n_plans ? strstr(s, LFM2_VISION_MARKER) : s + strlen(s);
        const bool bos = k == 0 && lfm2_add_bos(text);
        if ((e > s || bos) && put_text(&w, text, s, (size_t)(e - s), bos))
            return INT32_MIN;
        if (k < n_plans) {
            if (write_layout(&w, text, &plans[k]))
                return INT32_MIN;
            s = e + ml;
        }
    }
    return finish(&w);
}

int32_t lfm2_vision_chat_prompt(const lfm2_model *text, const char *system,
                                const char *user_text, const struct lfm2_vision_plan *plan,
                                lfm2_token *out, int32_t n_max)
{
    if (!text || !plan)
        return lfm2_set_error("lfm2_vision_chat_prompt: NULL argument"), INT32_MIN;
    if (!user_text)
        user_text = "";
    if ((system && strstr(system, LFM2_VISION_MARKER)) || strstr(user_text, LFM2_VISION_MARKER))
        return lfm2_set_error("the prompt text contains the image marker %s", LFM2_VISION_MARKER),
               INT32_MIN;
    /* the image comes first in the user turn, as in the LFM2-VL chat template */
    const size_t ul = strlen(user_text), ml = strlen(LFM2_VISION_MARKER);
    char *content = malloc(ul + ml + 1);
    if (!content)
        return lfm2_set_error("out of memory"), INT32_MIN;
    memcpy(content, LFM2_VISION_MARKER, ml);
    memcpy(content + ml, user_text, ul + 1);

    struct lfm2_chat_message msgs[2];
    size_t n_msgs = 0;
    if (system)
        msgs[n_msgs++] = (struct lfm2_chat_message){ "system", system };
    msgs[n_msgs++] = (struct lfm2_chat_message){ "user", content };
    const int32_t need = lfm2_chat_apply(msgs, n_msgs, NULL, true, NULL, 0);   /* -(capacity) */
    char *buf = need != INT32_MIN ? malloc((size_t)-need) : NULL;
    if (!buf) {
        free(content);
        if (need != INT32_MIN)
            lfm2_set_error("out of memory");
        return INT32_MIN;
    }
    lfm2_chat_apply(msgs, n_msgs, NULL, true, buf, -need);
    free(content);
    const int32_t r = lfm2_vision_tokenize(text, buf, plan, 1, out, n_max);
    free(buf);
    return r;
}

int lfm2_vision_decode(lfm2_context *ctx, const lfm2_token *seq, int32_t n, const float *embd,
                       int32_t n_rows)
{
    const lfm2_model *m = lfm2_context_model(ctx);
    const int n_embd = lfm2_model_get_hparams(m)->n_embd;
    int32_t need = 0;
    for (int32_t i = 0; i < n; i++)
        need += seq[i] == LFM2_VISION_EMBD;
    if (need != n_rows || (need > 0 && !embd))
        return lfm2_set_error("the sequence has %d image embedding positions but %d rows were "
                              "given", need, n_rows);
    int32_t row = 0;
    for (int32_t i = 0; i < n;) {
        const bool is_embd = seq[i] == LFM2_VISION_EMBD;
        int32_t j = i + 1;
        while (j < n && (seq[j] == LFM2_VISION_EMBD) == is_embd)
            j++;
        struct lfm2_batch b = is_embd ? lfm2_batch_embd(embd + (size_t)row * n_embd, j - i)
                                      : lfm2_batch_tokens(seq + i, j - i);
        if (lfm2_decode(ctx, b) != 0) {
            lfm2_prefix_error("decoding %s at position %d", is_embd ? "image embeddings" : "tokens",
                              lfm2_n_past(ctx));
            return -1;
        }
        if (is_embd)
            row += j - i;
        i = j;
    }
    return 0;
}
