/* lfm2-ref.c — reference generation through the engine API (see lfm2-ref.h). */
#include "lfm2-ref.h"

#include <math.h>
#include <string.h>

gchar *
ref_chat_text (const gchar * system, const gchar * user)
{
  GString *s = g_string_new (NULL);

  if (system && system[0])
    g_string_append_printf (s, "<|im_start|>system\n%s<|im_end|>\n", system);
  g_string_append_printf (s, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
  return g_string_free (s, FALSE);
}

void
ref_fill_random (gfloat * dst, gsize n, guint32 seed, gfloat scale)
{
  guint32 x = seed ? seed : 0x9e3779b9u;

  for (gsize i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    dst[i] = scale * (2.0f * (gfloat) (x >> 8) / (gfloat) (1u << 24) - 1.0f);
  }
}

/* The plugin drops U+0000 from generated text (it ends C strings); so does the reference. */
static void
append_text (GString * out, const char *s, gint32 n)
{
  for (gint32 i = 0; i < n; i++)
    if (s[i] != '\0')
      g_string_append_c (out, s[i]);
}

gchar *
ref_generate (const lfm2_model * model, const RefPart * parts, gint n_parts,
    const RefParams * params, gint * n_prompt, gint * n_generated)
{
  struct lfm2_context_params cp = lfm2_context_default_params ();
  lfm2_context *ctx;
  lfm2_sampler *smp;
  lfm2_token audio_start;
  GString *out = g_string_new (NULL);
  struct lfm2_detok dt;
  gint n_ctx, gen = 0;
  lfm2_token *toks;
  gboolean first = TRUE;
  char piece[512];

  cp.n_threads = params->n_threads;
  ctx = lfm2_context_new (model, cp);
  if (ctx == NULL)
    g_error ("lfm2_context_new: %s", lfm2_last_error ());
  smp = lfm2_sampler_new (model, params->sampling);
  if (smp == NULL)
    g_error ("lfm2_sampler_new: %s", lfm2_last_error ());
  /* the elements generate text only: an LFM2-Audio backbone's <|audio_start|> is never picked */
  audio_start = lfm2_token_lookup (model, "<|audio_start|>");
  if (audio_start >= 0)
    lfm2_sampler_set_logit_bias (smp, audio_start, -INFINITY);
  n_ctx = lfm2_n_ctx (ctx);
  toks = g_new (lfm2_token, n_ctx);

  for (gint i = 0; i < n_parts; i++) {
    if (parts[i].text) {
      gboolean bos = first && lfm2_add_bos (model);
      gint32 n = lfm2_tokenize (model, parts[i].text, (gint32) strlen (parts[i].text), toks,
          n_ctx, bos, TRUE);
      if (n < 0)
        g_error ("lfm2_tokenize: %d %s", n, lfm2_last_error ());
      if (n > 0 && lfm2_decode (ctx, lfm2_batch_tokens (toks, n)) != 0)
        g_error ("lfm2_decode: %s", lfm2_last_error ());
      for (gint32 k = 0; k < n; k++)    /* prompt ids count for the repetition penalty */
        lfm2_sampler_accept (smp, toks[k]);
    } else {
      if (first && lfm2_add_bos (model)) {
        lfm2_token bos = lfm2_token_bos (model);
        if (lfm2_decode (ctx, lfm2_batch_tokens (&bos, 1)) != 0)
          g_error ("lfm2_decode: %s", lfm2_last_error ());
        lfm2_sampler_accept (smp, bos);
      }
      if (lfm2_decode (ctx, lfm2_batch_embd (parts[i].embd, parts[i].n_rows)) != 0)
        g_error ("lfm2_decode (embd): %s", lfm2_last_error ());
    }
    first = FALSE;
  }
  if (n_prompt)
    *n_prompt = lfm2_n_past (ctx);

  lfm2_detok_init (&dt, FALSE);
  while (params->max_tokens <= 0 || gen < params->max_tokens) {
    lfm2_token t = lfm2_sampler_sample (smp, lfm2_get_logits (ctx, -1));
    gint32 n;

    if (lfm2_token_is_eog (model, t))
      break;
    lfm2_sampler_accept (smp, t);
    gen++;
    n = lfm2_detok_push (model, &dt, t, piece, sizeof (piece));
    g_assert (n >= 0);
    append_text (out, piece, n);
    if (params->max_tokens > 0 && gen == params->max_tokens)
      break;
    if (lfm2_n_past (ctx) >= n_ctx)
      break;
    if (lfm2_decode (ctx, lfm2_batch_tokens (&t, 1)) != 0)
      g_error ("lfm2_decode: %s", lfm2_last_error ());
  }
  {
    gint32 n = lfm2_detok_flush (&dt, piece, sizeof (piece));
    append_text (out, piece, n);
  }
  if (n_generated)
    *n_generated = gen;

  g_free (toks);
  lfm2_sampler_free (smp);
  lfm2_context_free (ctx);
  return g_string_free (out, FALSE);
}
