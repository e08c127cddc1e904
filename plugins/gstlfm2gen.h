/* gstlfm2gen.h — the decoder half shared by lfm2text, lfm2vl and lfm2asr.
 *
 * One GstLfm2Gen = one lfm2_context + sampler + scratch buffers, used by one thread at a time
 * (an element's streaming or worker thread). Per request it renders the LFM2 chat layout
 *
 *   <|startoftext|><|im_start|>system\n{system}<|im_end|>\n          ← prefilled once, cached
 *   <|im_start|>user\n{user text with media segments}<|im_end|>\n
 *   <|im_start|>assistant\n                                          ← generation starts here
 *
 * keeps the system turn in the caches (lfm2_rewind() back to its end before each request),
 * prefills the rest — text tokens and embedding rows spliced where the user text has the marker
 * "<__media__>" (missing markers: the media go first, as llama.cpp's mtmd does) — and samples
 * until an end-of-generation token, max_tokens, the end of the context, or cancellation.
 *
 * Nothing is allocated per token; per request only when a prompt is larger than any before.
 */
#ifndef GST_LFM2_GEN_H
#define GST_LFM2_GEN_H

#include <gst/gst.h>

#include "lfm2.h"

G_BEGIN_DECLS

/* Where a media segment goes in the user text (the marker llama.cpp's mtmd uses). */
#define GST_LFM2_MEDIA_MARKER "<__media__>"

typedef struct _GstLfm2Gen GstLfm2Gen;

typedef struct {
  gint n_ctx;                   /* context positions (0 = min(n_ctx_train, 4096)) */
  gint n_threads;               /* 0 = all cores */
  gint max_tokens;              /* per request; <= 0 = until end of generation or context */
  gboolean chat;                /* render the chat layout; FALSE = raw text prompt */
  struct lfm2_sampler_params sampling;
} GstLfm2GenParams;

void gst_lfm2_gen_params_init (GstLfm2GenParams * params);

/* A media segment: n_rows embedding rows of the model's n_embd floats, and the token layout
 * around them (ids >= 0 are tokens, a negative entry takes the next row; exactly n_rows
 * negatives). layout NULL = the rows alone. */
typedef struct {
  const gfloat *embd;
  gint n_rows;
  const gint32 *layout;
  gint n_layout;
} GstLfm2GenMedia;

typedef enum {
  GST_LFM2_GEN_STOP_EOG,        /* the model ended its turn */
  GST_LFM2_GEN_STOP_MAX_TOKENS,
  GST_LFM2_GEN_STOP_CONTEXT,    /* context full */
  GST_LFM2_GEN_STOP_CANCELLED,
} GstLfm2GenStop;

typedef struct {
  gint prompt_tokens;           /* positions of the whole prompt, cached system turn included */
  gint cached_tokens;           /* of which reused from the cached system turn */
  gint media_rows;              /* embedding rows spliced in */
  gint generated_tokens;
  gdouble prefill_ms;           /* rendering, tokenizing and prefilling this request */
  gdouble generate_ms;          /* sampling and decoding */
  gdouble total_ms;
  GstLfm2GenStop stop;
} GstLfm2GenStats;

/* Called with each piece of text as it completes (whole UTF-8 characters, NUL-terminated).
 * Return FALSE to stop generating (stop = CANCELLED). Also called with piece NULL (len 0)
 * from the engine between the layers of every forward step (lfm2_set_abort_callback; from
 * the thread that generates, so it must be cheap): FALSE there abandons the request within
 * one layer's work (stop = CANCELLED, no further text). The cancel flag is asked there too. */
typedef gboolean (*GstLfm2GenPieceFunc) (const gchar * piece, gsize len, gpointer user_data);

/* Creates the context and sampler. Errors in the GST_LIBRARY_ERROR domain with the engine's
 * reason. */
GstLfm2Gen *gst_lfm2_gen_new (const lfm2_model * model, const GstLfm2GenParams * params,
    GError ** error);
void gst_lfm2_gen_free (GstLfm2Gen * gen);

const lfm2_model *gst_lfm2_gen_model (GstLfm2Gen * gen);
lfm2_context *gst_lfm2_gen_context (GstLfm2Gen * gen);

/* Sets the system prompt (NULL or "" = none) and prefills it now; later requests reuse it. */
gboolean gst_lfm2_gen_set_system_prompt (GstLfm2Gen * gen, const gchar * system_prompt,
    GError ** error);
/* Number of positions of the cached prefix (BOS + system turn). */
gint gst_lfm2_gen_n_cached (GstLfm2Gen * gen);

/* Changes sampling / max_tokens / chat between requests (cheap; no context reallocation).
 * Changing chat re-prefills the system turn on the next request. */
void gst_lfm2_gen_set_sampling (GstLfm2Gen * gen, const struct lfm2_sampler_params *sampling);
void gst_lfm2_gen_set_max_tokens (GstLfm2Gen * gen, gint max_tokens);
void gst_lfm2_gen_set_chat (GstLfm2Gen * gen, gboolean chat);

/* Runs one request. `user_text` may contain GST_LFM2_MEDIA_MARKER once per media segment.
 * The generated text goes to `out` (appended) and, piece by piece, to `on_piece` (may be NULL).
 * `cancel` (may be NULL) is read atomically before every step: non-zero stops the request.
 * The sampler restarts from its seed for every request, so equal requests give equal text.
 * Returns FALSE with *error on a prompt that does not fit or an engine failure; a cancelled
 * request returns TRUE with stats->stop = CANCELLED. */
gboolean gst_lfm2_gen_run (GstLfm2Gen * gen, const gchar * user_text,
    const GstLfm2GenMedia * media, guint n_media, GstLfm2GenPieceFunc on_piece,
    gpointer user_data, const gint * cancel, GString * out, GstLfm2GenStats * stats,
    GError ** error);

const gchar *gst_lfm2_gen_stop_to_string (GstLfm2GenStop stop);

G_END_DECLS

#endif /* GST_LFM2_GEN_H */
