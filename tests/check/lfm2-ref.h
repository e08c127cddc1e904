/* lfm2-ref.h — reference generation straight through the engine API, for the tests.
 *
 * Deliberately independent of plugins/gstlfm2gen.c: the prompt is written out literally (the
 * LFM2 ChatML layout, not lfm2_chat_apply), tokenized in one piece per text part, and decoded
 * from an empty context, with no cached prefix and no rewind. */
#ifndef LFM2_CHECK_REF_H
#define LFM2_CHECK_REF_H

#include <glib.h>

#include "lfm2.h"

typedef struct {
  const gchar *text;            /* text to tokenize (parse_special), or NULL: */
  const gfloat *embd;           /* n_rows embedding rows */
  gint n_rows;
} RefPart;

typedef struct {
  gint n_threads;
  gint max_tokens;
  struct lfm2_sampler_params sampling;
} RefParams;

/* BOS (if the model adds one), the parts in order, then sampling until an end-of-generation
 * token or max_tokens. Returns the text (g_free) or NULL on an engine error (g_error). */
gchar *ref_generate (const lfm2_model * model, const RefPart * parts, gint n_parts,
    const RefParams * params, gint * n_prompt, gint * n_generated);

/* The LFM2 chat layout written out: "<|im_start|>system\n…<|im_end|>\n" (if system) +
 * "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n". */
gchar *ref_chat_text (const gchar * system, const gchar * user);

/* Deterministic pseudo-random floats in [-scale, scale] (xorshift). */
void ref_fill_random (gfloat * dst, gsize n, guint32 seed, gfloat scale);

#endif
