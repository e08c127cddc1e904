/* gstlfm2gen.c — prompt rendering, cached system turn, prefill with spliced embeddings, and
 * the sampling loop shared by the decoder elements (see gstlfm2gen.h). */
#include "gstlfm2gen.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (lfm2_gen_debug);
#define GST_CAT_DEFAULT lfm2_gen_debug

struct _GstLfm2Gen {
  const lfm2_model *model;
  lfm2_context *ctx;
  lfm2_sampler *sampler;
  struct lfm2_sampler_params sampling;
  gint max_tokens;
  gboolean chat;
  gint n_ctx, n_embd;

  gchar *system;                /* current system prompt, NULL = none */
  gboolean prefix_valid;        /* tokens[0..n_cached) are in the caches */
  gint n_cached;

  lfm2_token *tokens;           /* n_ctx: the prefix, then the request's tokens */
  GString *user;                /* scratch: user text with the media markers added */
  GString *text;                /* scratch: rendered prompt */
  GString *prefix_text;         /* rendered system turn */
  gchar *piece;                 /* detokenizer output */
  gint piece_cap;
  gfloat *prefix_logits;        /* logits after the cached prefix (n_vocab) */
  gboolean aborted;             /* the engine's abort callback stopped a decode of this
                                 * request (the next request's rewind restores the state) */
};

/* The elements built on this generate text only: an LFM2-Audio backbone's <|audio_start|>
 * (which would switch it to audio frames no one here reads) is never picked. */
static lfm2_sampler *
text_sampler_new (const lfm2_model * model, const struct lfm2_sampler_params *p)
{
  lfm2_sampler *s = lfm2_sampler_new (model, *p);
  const lfm2_token audio_start = lfm2_token_lookup (model, "<|audio_start|>");

  if (s != NULL && audio_start >= 0)
    lfm2_sampler_set_logit_bias (s, audio_start, -INFINITY);
  return s;
}

static void
ensure_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (lfm2_gen_debug, "lfm2gen", 0, "LFM2 text generation");
    g_once_init_leave (&once, 1);
  }
}

void
gst_lfm2_gen_params_init (GstLfm2GenParams * p)
{
  memset (p, 0, sizeof (*p));
  p->n_ctx = 0;
  p->n_threads = 0;
  p->max_tokens = 256;
  p->chat = TRUE;
  p->sampling = lfm2_sampler_default_params ();
}

const gchar *
gst_lfm2_gen_stop_to_string (GstLfm2GenStop stop)
{
  switch (stop) {
    case GST_LFM2_GEN_STOP_EOG:
      return "eog";
    case GST_LFM2_GEN_STOP_MAX_TOKENS:
      return "max-tokens";
    case GST_LFM2_GEN_STOP_CONTEXT:
      return "context";
    case GST_LFM2_GEN_STOP_CANCELLED:
      return "cancelled";
  }
  return "unknown";
}

static gboolean
engine_error (GError ** error, const gchar * what)
{
  g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_FAILED, "%s: %s", what,
      lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
  return FALSE;
}

GstLfm2Gen *
gst_lfm2_gen_new (const lfm2_model * model, const GstLfm2GenParams * params, GError ** error)
{
  struct lfm2_context_params cp = lfm2_context_default_params ();
  GstLfm2Gen *gen;

  g_return_val_if_fail (model != NULL && params != NULL, NULL);
  ensure_debug ();

  gen = g_new0 (GstLfm2Gen, 1);
  gen->model = model;
  gen->sampling = params->sampling;
  gen->max_tokens = params->max_tokens;
  gen->chat = params->chat;
  cp.n_ctx = params->n_ctx;
  cp.n_threads = params->n_threads;
  lfm2_clear_error ();
  gen->ctx = lfm2_context_new (model, cp);
  if (gen->ctx == NULL) {
    engine_error (error, "Could not create an LFM2 context");
    goto fail;
  }
  gen->sampler = text_sampler_new (model, &gen->sampling);
  if (gen->sampler == NULL) {
    engine_error (error, "Could not create an LFM2 sampler");
    goto fail;
  }
  gen->n_ctx = lfm2_n_ctx (gen->ctx);
  gen->n_embd = lfm2_model_get_hparams (model)->n_embd;
  gen->tokens = g_new (lfm2_token, gen->n_ctx);
  gen->user = g_string_sized_new (1024);
  gen->text = g_string_sized_new (4096);
  gen->prefix_text = g_string_sized_new (1024);
  gen->piece_cap = 256;
  gen->piece = g_malloc (gen->piece_cap);
  gen->prefix_logits = g_new0 (gfloat, lfm2_model_n_vocab (model));
  GST_DEBUG ("context of %d positions, %d threads", gen->n_ctx, lfm2_n_threads (gen->ctx));
  return gen;

fail:
  gst_lfm2_gen_free (gen);
  return NULL;
}

void
gst_lfm2_gen_free (GstLfm2Gen * gen)
{
  if (gen == NULL)
    return;
  if (gen->sampler)
    lfm2_sampler_free (gen->sampler);
  if (gen->ctx)
    lfm2_context_free (gen->ctx);
  g_free (gen->system);
  g_free (gen->tokens);
  if (gen->user)
    g_string_free (gen->user, TRUE);
  if (gen->text)
    g_string_free (gen->text, TRUE);
  if (gen->prefix_text)
    g_string_free (gen->prefix_text, TRUE);
  g_free (gen->piece);
  g_free (gen->prefix_logits);
  g_free (gen);
}

const lfm2_model *
gst_lfm2_gen_model (GstLfm2Gen * gen)
{
  return gen->model;
}

lfm2_context *
gst_lfm2_gen_context (GstLfm2Gen * gen)
{
  return gen->ctx;
}

gint
gst_lfm2_gen_n_cached (GstLfm2Gen * gen)
{
  return gen->prefix_valid ? gen->n_cached : 0;
}

void
gst_lfm2_gen_set_sampling (GstLfm2Gen * gen, const struct lfm2_sampler_params *sampling)
{
  lfm2_sampler *s = text_sampler_new (gen->model, sampling);

  if (s == NULL) {
    GST_WARNING ("sampler parameters rejected (%s); keeping the previous ones",
        lfm2_last_error ());
    return;
  }
  lfm2_sampler_free (gen->sampler);
  gen->sampler = s;
  gen->sampling = *sampling;
}

void
gst_lfm2_gen_set_max_tokens (GstLfm2Gen * gen, gint max_tokens)
{
  gen->max_tokens = max_tokens;
}

void
gst_lfm2_gen_set_chat (GstLfm2Gen * gen, gboolean chat)
{
  if (gen->chat != chat)
    gen->prefix_valid = FALSE;
  gen->chat = chat;
}

/* lfm2_chat_apply into a GString, growing it only when the text is longer than ever before. */
static gboolean
render_chat (GString * out, const struct lfm2_chat_message *msgs, gsize n_msgs,
    gboolean add_generation_prompt, GError ** error)
{
  for (;;) {
    gint32 cap = (gint32) MIN (out->allocated_len, (gsize) G_MAXINT32);
    gint32 n = lfm2_chat_apply (msgs, n_msgs, NULL, add_generation_prompt, out->str, cap);

    if (n == G_MININT32)
      return engine_error (error, "Could not render the chat prompt");
    if (n >= 0) {
      out->len = (gsize) n;
      return TRUE;
    }
    g_string_set_size (out, (gsize) - n);       /* -n bytes with the NUL: allocated_len >= -n */
  }
}

/* Tokenizes text into tokens[*n_tok …] without BOS. */
static gboolean
tokenize_into (GstLfm2Gen * gen, const gchar * text, gsize len, gboolean add_bos, gint * n_tok,
    GError ** error)
{
  gint32 room = gen->n_ctx - *n_tok, n;

  if (len == 0 && !add_bos)
    return TRUE;
  if (len > (gsize) G_MAXINT32) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
        "Prompt text of %" G_GSIZE_FORMAT " bytes is too long", len);
    return FALSE;
  }
  n = lfm2_tokenize (gen->model, text, (gint32) len, gen->tokens + *n_tok, room, add_bos,
      TRUE);
  if (n == G_MININT32)
    return engine_error (error, "Could not tokenize the prompt");
  if (n < 0) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
        "Prompt needs at least %d positions, the context has %d", *n_tok - n, gen->n_ctx);
    return FALSE;
  }
  *n_tok += n;
  return TRUE;
}

/* FALSE on an error; TRUE with gen->aborted set when the request's stop condition ended it
 * (lfm2_set_abort_callback, see gst_lfm2_gen_run) — then the rest of the request decodes
 * nothing (the callers see gen->aborted at their next check). */
static gboolean
decode (GstLfm2Gen * gen, struct lfm2_batch batch, GError ** error)
{
  gint r;

  if (gen->aborted)
    return TRUE;

  if (lfm2_n_past (gen->ctx) + batch.n_tokens > gen->n_ctx) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
        "Prompt needs more than the %d positions of the context", gen->n_ctx);
    return FALSE;
  }
  r = lfm2_decode (gen->ctx, batch);
  if (r == LFM2_DECODE_ABORTED)
    gen->aborted = TRUE;
  else if (r < 0)
    return engine_error (error, "Decoding failed");
  return TRUE;
}

/* Generated text goes into C strings and text/x-raw buffers: drop U+0000 (a random-weight or
 * confused model can produce the byte-level token for 0x00). */
static gint32
drop_nul (gchar * s, gint32 n)
{
  gint32 j = 0;

  if (n <= 0)
    return n;
  for (gint32 i = 0; i < n; i++)
    if (s[i] != '\0')
      s[j++] = s[i];
  s[j] = '\0';
  return j;
}

static gboolean
is_cancelled (const gint * cancel)
{
  return cancel != NULL && g_atomic_int_get (cancel) != 0;
}

/* What may stop a request: the cancel flag, and the piece callback asked with piece NULL
 * (gstlfm2gen.h). */
typedef struct {
  const gint *cancel;
  GstLfm2GenPieceFunc on_piece;
  gpointer user_data;
} PrefillStop;

static gboolean
stop_asked (const PrefillStop * stop)
{
  return is_cancelled (stop->cancel)
      || (stop->on_piece != NULL && !stop->on_piece (NULL, 0, stop->user_data));
}

/* The engine asks this between the layers of every forward step of the request: a request
 * nobody wants any more (a partial a final waits behind, a flush) gives the threads back
 * within one layer's work instead of after its prefill. */
static bool
abort_request (void *data)
{
  return stop_asked (data);
}

static gboolean
prefill_stopped (GstLfm2Gen * gen, const PrefillStop * stop)
{
  return gen->aborted || stop_asked (stop);
}

/* Renders and prefills BOS + the system turn; leaves tokens[0..n_cached) and the caches. */
static gboolean
prefill_prefix (GstLfm2Gen * gen, GError ** error)
{
  gint n = 0;

  g_string_truncate (gen->prefix_text, 0);
  if (gen->system && gen->system[0]) {
    if (gen->chat) {
      struct lfm2_chat_message m = { "system", gen->system };
      if (!render_chat (gen->prefix_text, &m, 1, FALSE, error))
        return FALSE;
    } else {
      g_string_assign (gen->prefix_text, gen->system);
    }
  }
  lfm2_rewind (gen->ctx, 0);
  if (!tokenize_into (gen, gen->prefix_text->str, gen->prefix_text->len,
          lfm2_add_bos (gen->model), &n, error))
    return FALSE;
  if (n > 0 && !decode (gen, lfm2_batch_tokens (gen->tokens, n), error))
    return FALSE;
  /* Every request rewinds to here: the engine snapshots the convolution state, and the logits
   * are kept for a request that adds nothing to the prefix. */
  if (n > 0) {
    if (lfm2_checkpoint (gen->ctx) < 0)
      return engine_error (error, "Could not keep the system turn");
    memcpy (gen->prefix_logits, lfm2_get_logits (gen->ctx, -1),
        sizeof (gfloat) * lfm2_model_n_vocab (gen->model));
  }
  gen->n_cached = n;
  gen->prefix_valid = TRUE;
  GST_DEBUG ("cached prefix of %d positions", n);
  return TRUE;
}

gboolean
gst_lfm2_gen_set_system_prompt (GstLfm2Gen * gen, const gchar * system_prompt,
    GError ** error)
{
  g_free (gen->system);
  gen->system = system_prompt && system_prompt[0] ? g_strdup (system_prompt) : NULL;
  gen->prefix_valid = FALSE;
  return prefill_prefix (gen, error);
}

/* Rows [row0, row0 + n) of a segment, in one call (the abort callback stops it within a
 * layer when the request is no longer wanted). */
static gboolean
prefill_rows (GstLfm2Gen * gen, const GstLfm2GenMedia * m, gint row0, gint n, GError ** error)
{
  return decode (gen, lfm2_batch_embd (m->embd + (gsize) row0 * gen->n_embd, n), error);
}

/* Prefills one media segment: runs of ids as token batches, runs of negatives as rows. */
static gboolean
prefill_media (GstLfm2Gen * gen, const GstLfm2GenMedia * m, const PrefillStop * stop,
    GError ** error)
{
  gint row = 0, i = 0;

  if (m->layout == NULL || m->n_layout == 0)
    return prefill_rows (gen, m, 0, m->n_rows, error);

  while (i < m->n_layout) {
    gint j = i;

    if (prefill_stopped (gen, stop))
      return TRUE;
    if (m->layout[i] >= 0) {
      while (j < m->n_layout && m->layout[j] >= 0)
        j++;
      /* ids are int32 like lfm2_token; the layout is read in place */
      if (!decode (gen, lfm2_batch_tokens ((const lfm2_token *) m->layout + i, j - i), error))
        return FALSE;
      for (gint k = i; k < j; k++)      /* marker ids count for the repetition penalty */
        lfm2_sampler_accept (gen->sampler, m->layout[k]);
    } else {
      while (j < m->n_layout && m->layout[j] < 0)
        j++;
      if (row + (j - i) > m->n_rows) {
        g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
            "Media layout asks for more than its %d embedding rows", m->n_rows);
        return FALSE;
      }
      if (!prefill_rows (gen, m, row, j - i, error))
        return FALSE;
      row += j - i;
    }
    i = j;
  }
  if (row != m->n_rows) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Media layout uses %d of its %d embedding rows", row, m->n_rows);
    return FALSE;
  }
  return TRUE;
}

static gint
count_markers (const gchar * s)
{
  gint n = 0;

  while ((s = strstr (s, GST_LFM2_MEDIA_MARKER)) != NULL) {
    n++;
    s += strlen (GST_LFM2_MEDIA_MARKER);
  }
  return n;
}

/* run, step 1: the user text with one marker per media segment (missing ones go first, like
 * mtmd) into gen->user, and the media checked. */
static gboolean
prepare_user_text (GstLfm2Gen * gen, const gchar * user_text, const GstLfm2GenMedia * media,
    guint n_media, GstLfm2GenStats * st, GError ** error)
{
  const gint n_markers = count_markers (user_text);

  if ((guint) n_markers > n_media) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Prompt has %d " GST_LFM2_MEDIA_MARKER " markers but %u media segments", n_markers,
        n_media);
    return FALSE;
  }
  g_string_truncate (gen->user, 0);
  for (guint k = n_markers; k < n_media; k++)
    g_string_append (gen->user, GST_LFM2_MEDIA_MARKER);
  g_string_append (gen->user, user_text);

  for (guint k = 0; k < n_media; k++) {
    if (media[k].n_rows <= 0 || media[k].embd == NULL) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "Media segment %u has no embedding rows", k);
      return FALSE;
    }
    st->media_rows += media[k].n_rows;
  }
  return TRUE;
}

/* run, step 2: the whole prompt rendered into gen->text; *suffix = the part after the cached
 * system turn, which is what gets prefilled. */
static gboolean
render_request (GstLfm2Gen * gen, const gchar ** suffix, GstLfm2GenStats * st,
    GError ** error)
{
  if (!gen->prefix_valid && !prefill_prefix (gen, error))
    return FALSE;
  st->cached_tokens = gen->n_cached;

  if (gen->chat) {
    struct lfm2_chat_message msgs[2] = { {"system", gen->system}, {"user", gen->user->str} };
    gboolean has_sys = gen->system != NULL;

    if (!render_chat (gen->text, has_sys ? msgs : msgs + 1, has_sys ? 2 : 1, TRUE, error))
      return FALSE;
  } else {
    g_string_assign (gen->text, gen->user->str);
  }
  *suffix = gen->text->str;
  if (!gen->chat || gen->prefix_text->len == 0)
    return TRUE;
  if (strncmp (gen->text->str, gen->prefix_text->str, gen->prefix_text->len) == 0) {
    *suffix += gen->prefix_text->len;
    return TRUE;
  }
  /* Should not happen with the LFM2 layout; stay correct by not reusing the cache. */
  GST_WARNING ("system turn is not a prefix of the rendered prompt; not reusing it");
  gen->prefix_valid = FALSE;
  lfm2_rewind (gen->ctx, 0);
  gen->n_cached = 0;
  st->cached_tokens = 0;
  if (lfm2_add_bos (gen->model)) {
    gint n = 0;
    if (!tokenize_into (gen, "", 0, TRUE, &n, error)
        || !decode (gen, lfm2_batch_tokens (gen->tokens, n), error))
      return FALSE;
  }
  return TRUE;
}

/* run, step 3: back to the end of the cached prefix, then the text pieces between the
 * markers as token batches and the media in between. The repetition penalty sees the
 * prompt's token ids too (as llama.cpp and transformers do). Leaves *cancelled set when the
 * cancel flag or the piece callback stopped it. */
static gboolean
prefill_request (GstLfm2Gen * gen, const gchar * suffix, const GstLfm2GenMedia * media,
    guint n_media, const PrefillStop * stop, gboolean * cancelled, GError ** error)
{
  const gsize marker_len = strlen (GST_LFM2_MEDIA_MARKER);
  const gchar *p = suffix;
  guint mi = 0;
  gint n_tok;

  lfm2_sampler_reset (gen->sampler);
  if (gen->prefix_valid && lfm2_rewind (gen->ctx, gen->n_cached) < 0)
    return engine_error (error, "Could not rewind the context");
  /* the cached prefix tokens are still in tokens[0 .. n_cached) */
  for (gint i = 0; i < lfm2_n_past (gen->ctx); i++)
    lfm2_sampler_accept (gen->sampler, gen->tokens[i]);

  n_tok = lfm2_n_past (gen->ctx);
  for (;;) {
    const gchar *m = mi < n_media ? strstr (p, GST_LFM2_MEDIA_MARKER) : NULL;
    gsize len = m ? (gsize) (m - p) : strlen (p);
    gint start = n_tok;

    if ((*cancelled = prefill_stopped (gen, stop)))
      return TRUE;
    if (!tokenize_into (gen, p, len, FALSE, &n_tok, error))
      return FALSE;
    for (gint i = start; i < n_tok; i++)
      lfm2_sampler_accept (gen->sampler, gen->tokens[i]);
    if (n_tok > start
        && !decode (gen, lfm2_batch_tokens (gen->tokens + start, n_tok - start), error))
      return FALSE;
    if (m == NULL)
      break;
    if (!prefill_media (gen, &media[mi++], stop, error))
      return FALSE;
    n_tok = lfm2_n_past (gen->ctx);     /* tokens[] past here are scratch again */
    p = m + marker_len;
  }
  *cancelled = prefill_stopped (gen, stop);
  return TRUE;
}

/* Hands a completed piece of text to `out` and `on_piece`; FALSE when on_piece says stop. */
static gboolean
emit_piece (GstLfm2Gen * gen, gint32 n, GstLfm2GenPieceFunc on_piece, gpointer user_data,
    GString * out)
{
  n = drop_nul (gen->piece, n);
  if (n <= 0)
    return TRUE;
  if (out)
    g_string_append_len (out, gen->piece, n);
  return on_piece == NULL || on_piece (gen->piece, (gsize) n, user_data);
}

/* run, step 4: sample, stop on end of generation, emit whole characters, decode. Starts from
 * `logits` (those of the last prompt position). */
static gboolean
generate (GstLfm2Gen * gen, const float *logits, GstLfm2GenPieceFunc on_piece,
    gpointer user_data, const gint * cancel, GString * out, GstLfm2GenStats * st,
    GError ** error)
{
  struct lfm2_detok dt;
  gint generated = 0;

  st->stop = GST_LFM2_GEN_STOP_MAX_TOKENS;
  lfm2_detok_init (&dt, FALSE);
  for (;;) {
    lfm2_token tok;
    gint32 n;

    if (gen->max_tokens > 0 && generated >= gen->max_tokens) {
      st->stop = GST_LFM2_GEN_STOP_MAX_TOKENS;
      break;
    }
    if (is_cancelled (cancel)) {
      st->stop = GST_LFM2_GEN_STOP_CANCELLED;
      break;
    }
    if (logits == NULL)
      return engine_error (error, "No logits");
    tok = lfm2_sampler_sample (gen->sampler, logits);
    if (tok < 0)
      return engine_error (error, "Sampling failed");
    if (lfm2_token_is_eog (gen->model, tok)) {
      st->stop = GST_LFM2_GEN_STOP_EOG;
      break;
    }
    lfm2_sampler_accept (gen->sampler, tok);
    generated++;

    n = lfm2_detok_push (gen->model, &dt, tok, gen->piece, gen->piece_cap);
    if (n < 0 && n != G_MININT32) {
      /* A longer token than any before: grow once, the detokenizer kept its state. */
      gen->piece_cap = -n + 64;
      gen->piece = g_realloc (gen->piece, gen->piece_cap);
      n = lfm2_detok_push (gen->model, &dt, tok, gen->piece, gen->piece_cap);
    }
    if (n == G_MININT32)
      return engine_error (error, "Could not detokenize");
    if (!emit_piece (gen, n, on_piece, user_data, out)) {
      st->stop = GST_LFM2_GEN_STOP_CANCELLED;
      break;
    }

    if (gen->max_tokens > 0 && generated >= gen->max_tokens)
      continue;                 /* no need to decode a token nobody will sample after */
    if (lfm2_n_past (gen->ctx) >= gen->n_ctx) {
      st->stop = GST_LFM2_GEN_STOP_CONTEXT;
      break;
    }
    if (!decode (gen, lfm2_batch_tokens (&tok, 1), error))
      return FALSE;
    if (gen->aborted) {
      st->stop = GST_LFM2_GEN_STOP_CANCELLED;
      break;
    }
    logits = lfm2_get_logits (gen->ctx, -1);
  }
  emit_piece (gen, lfm2_detok_flush (&dt, gen->piece, gen->piece_cap), on_piece, user_data,
      out);
  st->generated_tokens = generated;
  return TRUE;
}

/* run, steps 3 and 4, with the abort callback set */
static gboolean
run_request (GstLfm2Gen * gen, const gchar * suffix, const GstLfm2GenMedia * media,
    guint n_media, const PrefillStop * stop, gint64 t0, GstLfm2GenStats * stats,
    GString * out, GError ** error)
{
  GstLfm2GenStats st = *stats;
  const float *logits;
  gboolean cancelled;
  gint64 t1;

  if (!prefill_request (gen, suffix, media, n_media, stop, &cancelled, error))
    return FALSE;
  if (cancelled) {
    st.prompt_tokens = lfm2_n_past (gen->ctx);
    st.stop = GST_LFM2_GEN_STOP_CANCELLED;
    st.total_ms = st.prefill_ms = (g_get_monotonic_time () - t0) / 1000.0;
    *stats = st;
    return TRUE;
  }
  if (lfm2_n_past (gen->ctx) == st.cached_tokens) {
    /* Nothing new (raw mode, empty text): sample from the logits of the cached prefix. */
    if (st.cached_tokens == 0) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT, "Empty prompt");
      return FALSE;
    }
    logits = gen->prefix_logits;
  } else {
    logits = lfm2_get_logits (gen->ctx, -1);
  }
  st.prompt_tokens = lfm2_n_past (gen->ctx);
  t1 = g_get_monotonic_time ();
  st.prefill_ms = (t1 - t0) / 1000.0;

  if (!generate (gen, logits, stop->on_piece, stop->user_data, stop->cancel, out, &st, error))
    return FALSE;
  st.generate_ms = (g_get_monotonic_time () - t1) / 1000.0;
  st.total_ms = (g_get_monotonic_time () - t0) / 1000.0;
  *stats = st;
  return TRUE;
}

gboolean
gst_lfm2_gen_run (GstLfm2Gen * gen, const gchar * user_text, const GstLfm2GenMedia * media,
    guint n_media, GstLfm2GenPieceFunc on_piece, gpointer user_data, const gint * cancel,
    GString * out, GstLfm2GenStats * stats, GError ** error)
{
  const gint64 t0 = g_get_monotonic_time ();
  const PrefillStop stop = { cancel, on_piece, user_data };
  GstLfm2GenStats st = { 0 };
  const gchar *suffix;
  gboolean ok;

  if (!prepare_user_text (gen, user_text ? user_text : "", media, n_media, &st, error)
      || !render_request (gen, &suffix, &st, error))
    return FALSE;
  /* from here the request can be stopped inside the engine (prefill and generation) */
  gen->aborted = FALSE;
  lfm2_set_abort_callback (gen->ctx, abort_request, (gpointer) & stop);
  ok = run_request (gen, suffix, media, n_media, &stop, t0, &st, out, error);
  lfm2_set_abort_callback (gen->ctx, NULL, NULL);
  if (ok && stats)
    *stats = st;
  if (ok)
    GST_DEBUG ("prompt %d (%d cached, %d media rows), generated %d, stop %s, %.1f ms",
        st.prompt_tokens, st.cached_tokens, st.media_rows, st.generated_tokens,
        gst_lfm2_gen_stop_to_string (st.stop), st.total_ms);
  return ok;
}

