/* tests/check/libs/gen.c — the generation helper (plugins/gstlfm2gen.c) against a reference
 * written straight on the engine API (tests/check/lfm2-ref.c): same text for the same prompt,
 * with the system turn cached and rewound to, with embedding segments spliced in, in raw mode;
 * plus cancellation and prompts that do not fit. */
#include <gst/check/gstcheck.h>
#include <string.h>

#include "gstlfm2gen.h"
#include "lfm2-ref.h"

#define N_THREADS 2
#define MAX_TOKENS 24

static lfm2_model *model;

static void
setup (void)
{
  const gchar *root = g_getenv ("LFM2_TEST_DATA");
  gchar *path;

  fail_unless (root != NULL, "LFM2_TEST_DATA is not set");
  path = g_build_filename (root, "text/tiny-q8_0/lfm2-tiny-q8_0.gguf", NULL);
  model = lfm2_model_load (path, lfm2_model_default_params ());
  fail_unless (model != NULL, "%s: %s", path, lfm2_last_error ());
  g_free (path);
}

static void
teardown (void)
{
  lfm2_model_free (model);
  model = NULL;
}

static struct lfm2_sampler_params
sampling (void)
{
  struct lfm2_sampler_params p = lfm2_sampler_default_params ();

  /* the whole chain: penalty, min-p, temperature, seeded draw */
  p.temperature = 0.8f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.1f;
  p.seed = 1234;
  return p;
}

static GstLfm2Gen *
new_gen (gint n_ctx, gboolean chat)
{
  GstLfm2GenParams p;
  GError *err = NULL;
  GstLfm2Gen *gen;

  gst_lfm2_gen_params_init (&p);
  p.n_ctx = n_ctx;
  p.n_threads = N_THREADS;
  p.max_tokens = MAX_TOKENS;
  p.chat = chat;
  p.sampling = sampling ();
  gen = gst_lfm2_gen_new (model, &p, &err);
  fail_unless (gen != NULL, "%s", err ? err->message : "");
  return gen;
}

static gchar *
run (GstLfm2Gen * gen, const gchar * user, const GstLfm2GenMedia * media, guint n_media,
    GstLfm2GenStats * stats)
{
  GString *out = g_string_new (NULL);
  GError *err = NULL;
  GstLfm2GenStats st;

  fail_unless (gst_lfm2_gen_run (gen, user, media, n_media, NULL, NULL, NULL, out,
          stats ? stats : &st, &err), "%s", err ? err->message : "");
  return g_string_free (out, FALSE);
}

static gchar *
ref_text (const RefPart * parts, gint n, gint * n_prompt, gint * n_gen)
{
  RefParams rp = { N_THREADS, MAX_TOKENS, sampling () };
  return ref_generate (model, parts, n, &rp, n_prompt, n_gen);
}

static gchar *
ref_chat (const gchar * system, const gchar * user, gint * n_prompt, gint * n_gen)
{
  gchar *text = ref_chat_text (system, user), *out;
  RefPart part = { text, NULL, 0 };

  out = ref_text (&part, 1, n_prompt, n_gen);
  g_free (text);
  return out;
}

GST_START_TEST (test_text_matches_engine)
{
  GstLfm2Gen *gen = new_gen (0, TRUE);
  GstLfm2GenStats st;
  gchar *got, *want, *other;
  gint n_prompt, n_gen;

  got = run (gen, "How many legs do 3 foxes have?", NULL, 0, &st);
  want = ref_chat (NULL, "How many legs do 3 foxes have?", &n_prompt, &n_gen);
  fail_unless_equals_string (got, want);
  fail_unless_equals_int (st.prompt_tokens, n_prompt);
  fail_unless_equals_int (st.generated_tokens, n_gen);
  fail_unless_equals_int (st.cached_tokens, 1);       /* BOS */
  fail_unless (st.generated_tokens > 0);
  fail_unless (st.stop == GST_LFM2_GEN_STOP_EOG || st.stop == GST_LFM2_GEN_STOP_MAX_TOKENS);

  /* a different prompt gives a different text (else this test could not see anything) */
  other = run (gen, "The quick brown fox.", NULL, 0, NULL);
  fail_if (g_str_equal (other, got), "two prompts gave the same text: %s", got);
  g_free (got);
  g_free (want);
  g_free (other);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

GST_START_TEST (test_cached_system_turn)
{
  const gchar *sys = "You are helpful.";
  const gchar *users[3] = { "Hello!", "What is 2+2?", "Hello!" };
  GstLfm2Gen *gen = new_gen (0, TRUE);
  gchar *got[3];
  GError *err = NULL;

  fail_unless (gst_lfm2_gen_set_system_prompt (gen, sys, &err));
  fail_unless (gst_lfm2_gen_n_cached (gen) > 5);
  for (guint i = 0; i < 3; i++) {
    GstLfm2GenStats st;
    gint n_prompt, n_gen;
    gchar *want = ref_chat (sys, users[i], &n_prompt, &n_gen);

    got[i] = run (gen, users[i], NULL, 0, &st);
    fail_unless_equals_string (got[i], want);
    fail_unless_equals_int (st.prompt_tokens, n_prompt);
    fail_unless_equals_int (st.cached_tokens, gst_lfm2_gen_n_cached (gen));
    g_free (want);
  }
  /* rewinding to the system turn forgets the previous request entirely */
  fail_unless_equals_string (got[0], got[2]);
  fail_if (g_str_equal (got[0], got[1]));

  /* a new system prompt takes effect */
  fail_unless (gst_lfm2_gen_set_system_prompt (gen, "Answer in French.", &err));
  {
    gchar *a = run (gen, "Hello!", NULL, 0, NULL);
    gchar *want = ref_chat ("Answer in French.", "Hello!", NULL, NULL);
    fail_unless_equals_string (a, want);
    g_free (a);
    g_free (want);
  }
  /* and none */
  fail_unless (gst_lfm2_gen_set_system_prompt (gen, NULL, &err));
  fail_unless_equals_int (gst_lfm2_gen_n_cached (gen), 1);
  {
    gchar *a = run (gen, "Hello!", NULL, 0, NULL);
    gchar *want = ref_chat (NULL, "Hello!", NULL, NULL);
    fail_unless_equals_string (a, want);
    g_free (a);
    g_free (want);
  }
  for (guint i = 0; i < 3; i++)
    g_free (got[i]);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

GST_START_TEST (test_media_segments)
{
  const gint n_embd = lfm2_model_get_hparams (model)->n_embd, rows = 5;
  lfm2_token img_start = lfm2_token_lookup (model, "<|image_start|>");
  lfm2_token img_end = lfm2_token_lookup (model, "<|image_end|>");
  gfloat *embd = g_new (gfloat, (gsize) rows * n_embd);
  gint32 layout[7];
  GstLfm2GenMedia media;
  GstLfm2Gen *gen = new_gen (0, TRUE);
  GstLfm2GenStats st;
  gchar *got, *want, *text_only, *again;
  gint n_prompt;

  fail_unless (img_start >= 0 && img_end >= 0);
  ref_fill_random (embd, (gsize) rows * n_embd, 42, 1.0f);
  layout[0] = img_start;
  for (gint i = 1; i <= rows; i++)
    layout[i] = -1;
  layout[rows + 1] = img_end;
  media.embd = embd;
  media.n_rows = rows;
  media.layout = layout;
  media.n_layout = rows + 2;

  /* marker in the middle of the user text */
  got = run (gen, "Look: " GST_LFM2_MEDIA_MARKER " What is it?", &media, 1, &st);
  {
    RefPart parts[3] = {
      {"<|im_start|>user\nLook: <|image_start|>", NULL, 0},
      {NULL, embd, rows},
      {"<|image_end|> What is it?<|im_end|>\n<|im_start|>assistant\n", NULL, 0},
    };
    want = ref_text (parts, 3, &n_prompt, NULL);
  }
  fail_unless_equals_string (got, want);
  fail_unless_equals_int (st.prompt_tokens, n_prompt);
  fail_unless_equals_int (st.media_rows, rows);
  g_free (want);

  /* deterministic, and the rows matter */
  again = run (gen, "Look: " GST_LFM2_MEDIA_MARKER " What is it?", &media, 1, NULL);
  fail_unless_equals_string (again, got);
  text_only = run (gen, "Look:  What is it?", NULL, 0, NULL);
  fail_if (g_str_equal (text_only, got), "embeddings changed nothing: %s", got);
  g_free (again);
  g_free (text_only);
  g_free (got);

  /* no marker: the media go first in the user turn (as mtmd does) */
  got = run (gen, "What is it?", &media, 1, NULL);
  {
    RefPart parts[3] = {
      {"<|im_start|>user\n<|image_start|>", NULL, 0},
      {NULL, embd, rows},
      {"<|image_end|>What is it?<|im_end|>\n<|im_start|>assistant\n", NULL, 0},
    };
    want = ref_text (parts, 3, NULL, NULL);
  }
  fail_unless_equals_string (got, want);
  g_free (want);
  g_free (got);

  /* rows alone (no layout) */
  media.layout = NULL;
  media.n_layout = 0;
  got = run (gen, "", &media, 1, NULL);
  {
    RefPart parts[3] = {
      {"<|im_start|>user\n", NULL, 0},
      {NULL, embd, rows},
      {"<|im_end|>\n<|im_start|>assistant\n", NULL, 0},
    };
    want = ref_text (parts, 3, NULL, NULL);
  }
  fail_unless_equals_string (got, want);
  g_free (want);
  g_free (got);

  /* more markers than media is an error */
  {
    GError *err = NULL;
    GString *out = g_string_new (NULL);
    fail_if (gst_lfm2_gen_run (gen, GST_LFM2_MEDIA_MARKER GST_LFM2_MEDIA_MARKER, &media, 1,
            NULL, NULL, NULL, out, &st, &err));
    fail_unless (err != NULL && strstr (err->message, "2 " GST_LFM2_MEDIA_MARKER));
    g_clear_error (&err);
    g_string_free (out, TRUE);
  }
  g_free (embd);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

GST_START_TEST (test_raw_mode)
{
  GstLfm2Gen *gen = new_gen (0, FALSE);
  GError *err = NULL;
  gchar *got, *want;
  RefPart parts[2] = { {"Once upon a time,", NULL, 0}, {" there was a fox", NULL, 0} };

  fail_unless (gst_lfm2_gen_set_system_prompt (gen, "Once upon a time,", &err));
  got = run (gen, " there was a fox", NULL, 0, NULL);
  want = ref_text (parts, 2, NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  /* switching to chat re-renders the cached turn */
  gst_lfm2_gen_set_chat (gen, TRUE);
  got = run (gen, "Hello!", NULL, 0, NULL);
  want = ref_chat ("Once upon a time,", "Hello!", NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

static gboolean
cancel_after_first (const gchar * piece, gsize len, gpointer data)
{
  gint *cancel = data;

  if (piece == NULL)            /* asked during the prefill */
    return TRUE;
  g_atomic_int_set (cancel, 1);
  return TRUE;
}

static gboolean
stop_now (const gchar * piece, gsize len, gpointer data)
{
  return FALSE;
}

/* lfm2asr's partials: "may I go on?" asked with piece NULL — by the engine between the
 * layers of every forward step (lfm2_set_abort_callback) and around the text */
typedef struct {
  gint asked, allow;
} PrefillProbe;

static gboolean
probe_prefill (const gchar * piece, gsize len, gpointer data)
{
  PrefillProbe *p = data;

  if (piece != NULL)
    return TRUE;
  return ++p->asked <= p->allow;
}

GST_START_TEST (test_prefill_interruptible)
{
  const gint n_embd = lfm2_model_get_hparams (model)->n_embd, rows = 40;
  const gint n_layer = lfm2_model_get_hparams (model)->n_layer;
  gfloat *embd = g_new (gfloat, (gsize) rows * n_embd);
  GstLfm2GenMedia media = { embd, rows, NULL, 0 };
  GstLfm2Gen *gen = new_gen (0, TRUE);
  GString *out = g_string_new (NULL);
  PrefillProbe probe = { 0, G_MAXINT };
  GstLfm2GenStats st, full_st;
  gchar *full;
  gint n_asked;

  ref_fill_random (embd, (gsize) rows * n_embd, 7, 1.0f);
  full = run (gen, "", &media, 1, &full_st);
  fail_unless (full_st.generated_tokens > 0);

  /* asked inside the engine, at least once per layer of each decode: same prompt, same text */
  fail_unless (gst_lfm2_gen_run (gen, "", &media, 1, probe_prefill, &probe, NULL, out, &st,
          NULL));
  fail_unless_equals_string (out->str, full);
  fail_unless_equals_int (st.prompt_tokens, full_st.prompt_tokens);
  n_asked = probe.asked;
  fail_unless (n_asked >= 3 * n_layer, "asked %d times for %d layers", n_asked, n_layer);

  /* "no" at every point up to the whole request: inside the text before the rows, inside the
   * rows, between them, during generation. Each stop is clean (cancelled, no text past the
   * stop), and the next request starts from the cached prefix again: rewound over the
   * half-updated state the engine leaves. */
  for (gint allow = 0; allow < n_asked; allow += allow < 2 * n_layer ? 1 : 7) {
    gchar *again;

    probe.asked = 0;
    probe.allow = allow;
    g_string_truncate (out, 0);
    fail_unless (gst_lfm2_gen_run (gen, "", &media, 1, probe_prefill, &probe, NULL, out, &st,
            NULL), "allow %d", allow);
    fail_unless_equals_int (st.stop, GST_LFM2_GEN_STOP_CANCELLED);
    fail_unless (g_str_has_prefix (full, out->str), "allow %d: \"%s\"", allow, out->str);
    if (st.generated_tokens == 0)
      fail_unless (st.prompt_tokens <= full_st.prompt_tokens, "allow %d", allow);
    again = run (gen, "", &media, 1, &st);
    fail_unless_equals_string (again, full);
    g_free (again);
  }

  g_string_free (out, TRUE);
  g_free (full);
  g_free (embd);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

GST_START_TEST (test_cancel)
{
  GstLfm2Gen *gen = new_gen (0, TRUE);
  GstLfm2GenStats st;
  GString *out = g_string_new (NULL);
  gint cancel = 0;
  gchar *full;

  /* the whole answer first, then the same request cancelled after its first piece */
  gst_lfm2_gen_set_max_tokens (gen, 40);
  full = run (gen, "Tell me a story.", NULL, 0, &st);
  fail_unless (strlen (full) > 0 && st.generated_tokens > 1);
  fail_unless (gst_lfm2_gen_run (gen, "Tell me a story.", NULL, 0, cancel_after_first,
          &cancel, &cancel, out, &st, NULL));
  /* the flag is seen before the next token: a non-empty prefix of the full answer */
  fail_unless (out->len > 0 && out->len < strlen (full), "%s | %s", out->str, full);
  fail_unless (strncmp (out->str, full, out->len) == 0);
  fail_unless_equals_int (st.stop, GST_LFM2_GEN_STOP_CANCELLED);
  g_free (full);

  /* already cancelled: nothing is generated */
  g_string_truncate (out, 0);
  fail_unless (gst_lfm2_gen_run (gen, "Tell me a story.", NULL, 0, NULL, NULL, &cancel, out,
          &st, NULL));
  fail_unless_equals_int (st.stop, GST_LFM2_GEN_STOP_CANCELLED);
  fail_unless_equals_int (st.generated_tokens, 0);
  fail_unless_equals_int (out->len, 0);

  /* the callback can stop it too */
  g_string_truncate (out, 0);
  fail_unless (gst_lfm2_gen_run (gen, "Tell me a story.", NULL, 0, stop_now, NULL, NULL, out,
          &st, NULL));
  fail_unless_equals_int (st.stop, GST_LFM2_GEN_STOP_CANCELLED);

  /* and the next request is unaffected */
  gst_lfm2_gen_set_max_tokens (gen, MAX_TOKENS);
  full = run (gen, "Tell me a story.", NULL, 0, NULL);
  {
    gchar *want = ref_chat (NULL, "Tell me a story.", NULL, NULL);
    fail_unless_equals_string (full, want);
    g_free (want);
  }
  g_free (full);
  g_string_free (out, TRUE);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

GST_START_TEST (test_context_limits)
{
  GstLfm2Gen *gen = new_gen (64, TRUE);
  GString *long_text = g_string_new (NULL), *out = g_string_new (NULL);
  GstLfm2GenStats st;
  GError *err = NULL;
  gchar *got, *want;

  for (int i = 0; i < 40; i++)
    g_string_append (long_text, "many words here ");
  fail_if (gst_lfm2_gen_run (gen, long_text->str, NULL, 0, NULL, NULL, NULL, out, &st, &err));
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT),
      "%s", err ? err->message : "");
  fail_unless (strstr (err->message, "64") != NULL, "%s", err->message);
  g_clear_error (&err);

  /* generation stops at the end of the context */
  gst_lfm2_gen_set_max_tokens (gen, 0);
  g_string_truncate (out, 0);
  fail_unless (gst_lfm2_gen_run (gen, "Hi", NULL, 0, NULL, NULL, NULL, out, &st, &err));
  fail_unless (st.stop == GST_LFM2_GEN_STOP_CONTEXT || st.stop == GST_LFM2_GEN_STOP_EOG);
  if (st.stop == GST_LFM2_GEN_STOP_CONTEXT)
    fail_unless_equals_int (st.prompt_tokens + st.generated_tokens, 64 + 1);

  /* a short request afterwards is exact again */
  gst_lfm2_gen_set_max_tokens (gen, 8);
  got = run (gen, "Hi", NULL, 0, NULL);
  {
    RefParams rp = { N_THREADS, 8, sampling () };
    gchar *text = ref_chat_text (NULL, "Hi");
    RefPart part = { text, NULL, 0 };
    want = ref_generate (model, &part, 1, &rp, NULL, NULL);
    g_free (text);
  }
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);
  g_string_free (long_text, TRUE);
  g_string_free (out, TRUE);
  gst_lfm2_gen_free (gen);
}

GST_END_TEST;

static Suite *
gen_suite (void)
{
  Suite *s = suite_create ("lfm2gen");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_text_matches_engine);
  tcase_add_test (tc, test_cached_system_turn);
  tcase_add_test (tc, test_media_segments);
  tcase_add_test (tc, test_raw_mode);
  tcase_add_test (tc, test_cancel);
  tcase_add_test (tc, test_prefill_interruptible);
  tcase_add_test (tc, test_context_limits);
  return s;
}

GST_CHECK_MAIN (gen);
