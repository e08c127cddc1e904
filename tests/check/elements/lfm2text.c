/* tests/check/elements/lfm2text.c — the lfm2text element from the plugin module
 * (build/plugins/libgstlfm2.so): metadata, caps, timestamps, the result message, the cached
 * system turn, line mode, EOS, flushing, errors at READY→PAUSED, state cycling, embeddings
 * input, and concurrent pipelines. Expected texts come from tests/check/lfm2-ref.c, which runs
 * the engine API directly. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <glib/gstdio.h>
#include <string.h>

#include "gstlfm2tensors.h"
#include "lfm2-ref.h"

#define N_THREADS 2
#define MAX_TOKENS 16
#define SEED 1234

static gchar *model_path;
static lfm2_model *model;       /* for the reference texts */

static struct lfm2_sampler_params
sampling (void)
{
  struct lfm2_sampler_params p = lfm2_sampler_default_params ();
  p.temperature = 0.8f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.1f;
  p.seed = SEED;
  return p;
}

static gchar *
ref_parts (const RefPart * parts, gint n, gint * n_prompt, gint * n_gen)
{
  RefParams rp = { N_THREADS, MAX_TOKENS, sampling () };
  return ref_generate (model, parts, n, &rp, n_prompt, n_gen);
}

static gchar *
ref_chat (const gchar * system, const gchar * user, gint * n_prompt, gint * n_gen)
{
  gchar *text = ref_chat_text (system, user), *out;
  RefPart part = { text, NULL, 0 };
  out = ref_parts (&part, 1, n_prompt, n_gen);
  g_free (text);
  return out;
}

/* An lfm2text with the test's sampling settings; more properties as name/value pairs. */
static GstElement *
make_lfm2text (const gchar * first, ...)
{
  GstElement *e = gst_element_factory_make ("lfm2text", NULL);
  va_list args;

  fail_unless (e != NULL, "lfm2text not found (GST_PLUGIN_PATH_1_0=%s)",
      g_getenv ("GST_PLUGIN_PATH_1_0"));
  g_object_set (e, "model", model_path, "n-threads", N_THREADS, "max-tokens", MAX_TOKENS,
      "temperature", 0.8f, "min-p", 0.05f, "repeat-penalty", 1.1f, "top-k", 0,
      "top-p", 1.0f, "seed", (guint64) SEED, NULL);
  if (first) {
    va_start (args, first);
    g_object_set_valist (G_OBJECT (e), first, args);
    va_end (args);
  }
  return e;
}

static GstHarness *
text_harness (GstElement * e)
{
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  return h;
}

static GstBuffer *
text_buffer (const gchar * s, GstClockTime pts, GstClockTime dur)
{
  GstBuffer *b = gst_buffer_new_memdup (s, strlen (s));
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = dur;
  return b;
}

static gchar *
buffer_text (GstBuffer * b)
{
  GstMapInfo map;
  gchar *s;

  fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
  s = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (b, &map);
  return s;
}

/* Pushes one text and returns the output text. */
static gchar *
push_pull (GstHarness * h, const gchar * s)
{
  GstBuffer *out;
  gchar *t;

  fail_unless_equals_int (gst_harness_push (h, text_buffer (s, 0, GST_SECOND)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL);
  t = buffer_text (out);
  gst_buffer_unref (out);
  return t;
}

static GstMessage *
pop_element_message (GstBus * bus, const gchar * name)
{
  GstMessage *m;

  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    if (gst_structure_has_name (gst_message_get_structure (m), name))
      return m;
    gst_message_unref (m);
  }
  return NULL;
}

GST_START_TEST (test_metadata_and_properties)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2text");
  GstElement *e;
  GParamSpec **props;
  guint n;
  struct {
    const gchar *name;
    GParamFlags mutable_flag;
  } expected[] = {
    {"model", GST_PARAM_MUTABLE_READY},
    {"system-prompt", GST_PARAM_MUTABLE_PLAYING},
    {"prompt-template", GST_PARAM_MUTABLE_PLAYING},
    {"max-tokens", GST_PARAM_MUTABLE_PLAYING},
    {"temperature", GST_PARAM_MUTABLE_PLAYING},
    {"top-k", GST_PARAM_MUTABLE_PLAYING},
    {"top-p", GST_PARAM_MUTABLE_PLAYING},
    {"min-p", GST_PARAM_MUTABLE_PLAYING},
    {"repeat-penalty", GST_PARAM_MUTABLE_PLAYING},
    {"seed", GST_PARAM_MUTABLE_PLAYING},
    {"n-threads", GST_PARAM_MUTABLE_READY},
    {"context-length", GST_PARAM_MUTABLE_READY},
    {"chat", GST_PARAM_MUTABLE_PLAYING},
    {"input-mode", GST_PARAM_MUTABLE_READY},
  };

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_plugin_feature_get_plugin_name (GST_PLUGIN_FEATURE (f)),
      "lfm2");
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_LONGNAME), "LFM2 text generation");
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Filter/Converter/Text");
  fail_unless (strlen (gst_element_factory_get_metadata (f,
              GST_ELEMENT_METADATA_DESCRIPTION)) > 20);
  fail_unless_equals_int (gst_element_factory_get_num_pad_templates (f), 2);

  e = gst_element_factory_create (f, NULL);
  props = g_object_class_list_properties (G_OBJECT_GET_CLASS (e), &n);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    GParamSpec *p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), expected[i].name);
    fail_unless (p != NULL, "no property %s", expected[i].name);
    fail_unless (p->flags & expected[i].mutable_flag, "%s mutability", expected[i].name);
    fail_unless (g_param_spec_get_blurb (p) && strlen (g_param_spec_get_blurb (p)) > 10);
  }
  g_free (props);

  /* documented defaults and ranges */
  {
    GParamSpecInt *mt = G_PARAM_SPEC_INT (g_object_class_find_property
        (G_OBJECT_GET_CLASS (e), "max-tokens"));
    GParamSpecFloat *t = G_PARAM_SPEC_FLOAT (g_object_class_find_property
        (G_OBJECT_GET_CLASS (e), "temperature"));
    gchar *tpl;
    fail_unless_equals_int (mt->default_value, 256);
    fail_unless_equals_int (mt->minimum, 0);
    fail_unless (t->default_value == 0.3f && t->minimum == 0.0f);
    g_object_get (e, "prompt-template", &tpl, NULL);
    fail_unless_equals_string (tpl, "{text}");
    g_free (tpl);
  }
  gst_object_unref (e);
  gst_object_unref (f);
}

GST_END_TEST;

static gboolean
accepts (GstHarness * h, const gchar * caps_str)
{
  GstCaps *caps = gst_caps_from_string (caps_str);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  gboolean ok = gst_pad_query_accept_caps (sink, caps);

  gst_object_unref (sink);
  gst_caps_unref (caps);
  return ok;
}

GST_START_TEST (test_caps_negotiation)
{
  GstHarness *h = gst_harness_new_with_element (make_lfm2text (NULL), "sink", "src");
  GstCaps *caps, *cur;
  GstPad *sink;

  gst_object_unref (h->element);        /* the harness holds its own reference */
  fail_unless (accepts (h, "text/x-raw, format=utf8"));
  fail_if (accepts (h, "text/x-raw, format=pango-markup"));
  fail_if (accepts (h, "text/x-raw"));
  fail_if (accepts (h, "video/x-raw, format=RGB, width=4, height=4, framerate=0/1"));
  fail_if (accepts (h, "audio/x-raw"));
  fail_unless (accepts (h, "other/tensors, format=flexible, framerate=0/1"));
  fail_unless (accepts (h,
          "other/tensors, format=flexible, framerate=0/1, embedding-length=128"));
  /* the model is 128 wide: other widths are refused before any data */
  fail_if (accepts (h, "other/tensors, format=flexible, framerate=0/1, embedding-length=64"));
  fail_unless (accepts (h, "other/tensors, format=static, num_tensors=2, "
          "types=\"float32,int32\", dimensions=\"128:5,7\", framerate=0/1"));
  fail_if (accepts (h, "other/tensors, format=sparse, framerate=0/1"));

  /* the sink caps query tells encoders the width */
  sink = gst_element_get_static_pad (h->element, "sink");
  caps = gst_pad_query_caps (sink, NULL);
  {
    gboolean seen = FALSE;
    for (guint i = 0; i < gst_caps_get_size (caps); i++) {
      const GstStructure *s = gst_caps_get_structure (caps, i);
      gint w;
      if (gst_structure_has_name (s, "other/tensors")) {
        fail_unless (gst_structure_get_int (s, "embedding-length", &w) && w == 128);
        seen = TRUE;
      }
    }
    fail_unless (seen);
  }
  gst_caps_unref (caps);

  /* embeddings made for another model are refused at the caps event */
  gst_harness_set_src_caps_str (h,
      "other/tensors, format=flexible, framerate=0/1, model-id=some-other-model");
  fail_if (gst_pad_has_current_caps (sink));
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new ()), GST_FLOW_NOT_NEGOTIATED);

  /* text in → fixed text caps out */
  gst_harness_set_src_caps_str (h, "text/x-raw, format=utf8");
  cur = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (cur != NULL);
  caps = gst_caps_from_string ("text/x-raw, format=utf8");
  fail_unless (gst_caps_is_equal (cur, caps));
  gst_caps_unref (caps);
  gst_caps_unref (cur);
  gst_object_unref (sink);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_timestamps_and_result)
{
  GstHarness *h = text_harness (make_lfm2text (NULL));
  GstBus *bus = gst_bus_new ();
  GstBuffer *out;
  GstMessage *m;
  const GstStructure *s;
  gchar *want, *got;
  gint n_prompt, n_gen, v;
  gdouble ms;

  gst_element_set_bus (h->element, bus);
  want = ref_chat (NULL, "How many legs do 3 foxes have?", &n_prompt, &n_gen);

  fail_unless_equals_int (gst_harness_push (h, text_buffer ("How many legs do 3 foxes have?",
              3 * GST_SECOND, 2 * GST_SECOND)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 2 * GST_SECOND);
  got = buffer_text (out);
  fail_unless_equals_string (got, want);
  fail_unless (g_utf8_validate (got, -1, NULL));
  gst_buffer_unref (out);

  m = pop_element_message (bus, "lfm2text/result");
  fail_unless (m != NULL, "no lfm2text/result message");
  fail_unless (GST_MESSAGE_SRC (m) == GST_OBJECT (h->element));
  s = gst_message_get_structure (m);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), want);
  fail_unless (gst_structure_get_int (s, "prompt-tokens", &v) && v == n_prompt);
  fail_unless (gst_structure_get_int (s, "generated-tokens", &v) && v == n_gen);
  fail_unless (gst_structure_get_int (s, "cached-tokens", &v) && v == 1);
  fail_unless (gst_structure_get_double (s, "inference-ms", &ms) && ms > 0.0);
  fail_unless (gst_structure_get_string (s, "stop-reason") != NULL);
  {
    guint64 ts;
    fail_unless (gst_structure_get_uint64 (s, "timestamp", &ts) && ts == 3 * GST_SECOND);
  }
  gst_message_unref (m);
  g_free (got);

  /* a buffer without timestamps stays without */
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("Hello!", GST_CLOCK_TIME_NONE,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_if (GST_BUFFER_PTS_IS_VALID (out));
  fail_if (GST_BUFFER_DURATION_IS_VALID (out));
  gst_buffer_unref (out);

  /* the same input again gives the same text (the sampler restarts from its seed) */
  got = push_pull (h, "How many legs do 3 foxes have?");
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_system_prompt_and_template)
{
  GstHarness *h = text_harness (make_lfm2text ("system-prompt", "You are helpful.",
          "prompt-template", "Translate to French: {text}", NULL));
  GstBus *bus = gst_bus_new ();
  gchar *got, *want;
  gint cached[2];

  gst_element_set_bus (h->element, bus);
  for (int i = 0; i < 2; i++) {
    const gchar *in = i ? "Good night" : "Hello";
    gchar *user = g_strdup_printf ("Translate to French: %s", in);
    GstMessage *m;

    got = push_pull (h, in);
    want = ref_chat ("You are helpful.", user, NULL, NULL);
    fail_unless_equals_string (got, want);
    m = pop_element_message (bus, "lfm2text/result");
    fail_unless (gst_structure_get_int (gst_message_get_structure (m), "cached-tokens",
            &cached[i]));
    gst_message_unref (m);
    g_free (got);
    g_free (want);
    g_free (user);
  }
  /* the system turn (BOS + 11 tokens here) is reused, not recomputed per input */
  fail_unless (cached[0] > 5);
  fail_unless_equals_int (cached[0], cached[1]);

  /* changed while playing: applies to the next input */
  g_object_set (h->element, "system-prompt", NULL, "prompt-template", "Summarize:",
      NULL);
  got = push_pull (h, "A fox.");
  want = ref_chat (NULL, "Summarize:\nA fox.", NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

static gchar *
ref_line (const gchar * text)
{
  gchar *t = ref_chat (NULL, text, NULL, NULL), *line;

  for (gchar * p = t; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  line = g_strconcat (t, "\n", NULL);
  g_free (t);
  return line;
}

GST_START_TEST (test_lines_and_eos)
{
  GstHarness *h = text_harness (make_lfm2text ("input-mode", 1, NULL));
  const gchar *lines[4] = { "first line", "second line", "", "last line" };
  GstEvent *ev;

  /* lines split across buffers, an empty line, a last line without newline */
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("first line\nsecond",
              GST_SECOND, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (" line\r\n\nlast line",
              2 * GST_SECOND, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 3);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 4);

  for (int i = 0; i < 4; i++) {
    GstBuffer *b = gst_harness_pull (h);
    gchar *got = buffer_text (b), *want = lines[i][0] ? ref_line (lines[i]) : g_strdup ("\n");

    fail_unless_equals_string (got, want);
    /* a line takes the timestamp of the buffer it started in */
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), i == 0 || i == 1 ? GST_SECOND :
        2 * GST_SECOND);
    g_free (got);
    g_free (want);
    gst_buffer_unref (b);
  }
  /* EOS comes after the last line */
  while ((ev = gst_harness_try_pull_event (h)) != NULL) {
    GstEventType t = GST_EVENT_TYPE (ev);
    gst_event_unref (ev);
    if (t == GST_EVENT_EOS)
      break;
  }
  fail_unless (ev != NULL, "no EOS downstream");
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_bad_input)
{
  GstHarness *h = text_harness (make_lfm2text ("context-length", 64, NULL));
  GstBus *bus = gst_bus_new ();
  GString *long_text = g_string_new (NULL);
  GstMessage *m;
  GError *err;
  gchar *got, *want, *dbg;

  gst_element_set_bus (h->element, bus);

  /* invalid UTF-8 is repaired (U+FFFD), not passed on */
  got = push_pull (h, "Hello \xff!");
  want = ref_chat (NULL, "Hello \xef\xbf\xbd!", NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  /* a prompt longer than the context: a warning naming the limit, the input is dropped */
  for (int i = 0; i < 40; i++)
    g_string_append (long_text, "many words here ");
  fail_unless_equals_int (gst_harness_push (h, text_buffer (long_text->str, 0, GST_SECOND)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (m != NULL, "no warning");
  gst_message_parse_warning (m, &err, &dbg);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT));
  fail_unless (strstr (err->message, "64") != NULL, "%s", err->message);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (m);

  /* and the stream goes on */
  got = push_pull (h, "Hi");
  want = ref_chat (NULL, "Hi", NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  g_string_free (long_text, TRUE);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The messages on the bus, in order, as one string: "R" per lfm2text/result, "W(text)" per
 * warning, "E(text)" per error; other messages are left out. */
static gchar *
message_sequence (GstBus * bus)
{
  GString *seq = g_string_new (NULL);
  GstMessage *m;

  while ((m = gst_bus_pop (bus)) != NULL) {
    GError *err = NULL;

    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (gst_message_get_structure (m), "lfm2text/result")) {
      g_string_append (seq, "R ");
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING) {
      gst_message_parse_warning (m, &err, NULL);
      g_string_append_printf (seq, "W(%s) ", err->message);
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (m, &err, NULL);
      g_string_append_printf (seq, "E(%s) ", err->message);
    }
    g_clear_error (&err);
    gst_message_unref (m);
  }
  return g_string_free (seq, FALSE);
}

/* input-mode=lines: every input line gives exactly one output line, also when a line cannot
 * be answered — longer than the 1 MiB line limit (here 10 MB across buffers), or too long
 * for the context — and nothing of a dropped line reaches the next one. */
GST_START_TEST (test_lines_one_output_per_line)
{
  GstHarness *h = text_harness (make_lfm2text ("input-mode", 1, "context-length", 64, NULL));
  GstBus *bus = gst_bus_new ();
  GString *too_long_for_ctx = g_string_new (NULL);
  const gsize chunk = 1 << 20;
  gchar *blob = g_malloc (chunk), *seq, *ctx_warning;
  const gchar *want_lines[5] = { "first", NULL, "Hi", NULL, "last" };
  const GstClockTime want_pts[5] = { 0, GST_CLOCK_TIME_NONE, GST_SECOND, 2 * GST_SECOND,
    2 * GST_SECOND
  };

  gst_element_set_bus (h->element, bus);
  for (int i = 0; i < 40; i++)
    g_string_append (too_long_for_ctx, "many words here ");
  g_string_append (too_long_for_ctx, "\nlast");
  memset (blob, 'x', chunk);

  /* line 1 */
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("first\n", 0,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  /* line 2: 10 MB without a newline, in 1 MiB buffers (no timestamps) */
  for (int i = 0; i < 10; i++)
    fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (blob, chunk)),
        GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  /* its end and line 3 (short); line 4 (does not fit 64 positions) and line 5, which ends
   * at EOS */
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("xxxx\nHi\n", GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (too_long_for_ctx->str,
              2 * GST_SECOND, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  /* five lines in, five lines out, in order, each with the PTS of the buffer it started in */
  fail_unless_equals_int (gst_harness_buffers_received (h), 5);
  for (int i = 0; i < 5; i++) {
    GstBuffer *b = gst_harness_pull (h);
    gchar *got = buffer_text (b);
    gchar *want = want_lines[i] ? ref_line (want_lines[i]) : g_strdup ("\n");

    fail_unless_equals_string (got, want);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), want_pts[i]);
    g_free (got);
    g_free (want);
    gst_buffer_unref (b);
  }
  /* answered lines post a result; each dropped one a warning naming its number and why */
  seq = message_sequence (bus);
  ctx_warning = g_strdup_printf ("R W(Line 2 dropped: longer than %d bytes) R W(Line 4 "
      "dropped: ", 1 << 20);
  fail_unless (g_str_has_prefix (seq, ctx_warning), "%s", seq);
  fail_unless (strstr (seq, "the context has 64) R ") != NULL, "%s", seq);
  fail_unless (g_str_has_suffix (seq, ") R "), "%s", seq);

  g_free (ctx_warning);
  g_free (seq);
  g_free (blob);
  g_string_free (too_long_for_ctx, TRUE);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* input-mode=buffer: an empty or white-space-only buffer runs no generation; a GAP event with
 * its timestamps goes downstream instead. */
GST_START_TEST (test_empty_buffer_is_gap)
{
  GstHarness *h = text_harness (make_lfm2text (NULL));
  GstBus *bus = gst_bus_new ();
  GstClockTime gaps[2][2];
  guint n_gaps = 0;
  GstEvent *ev;
  gchar *got, *want;

  gst_element_set_bus (h->element, bus);
  {
    GstBuffer *empty = gst_buffer_new ();

    GST_BUFFER_PTS (empty) = GST_SECOND;
    GST_BUFFER_DURATION (empty) = GST_SECOND;
    fail_unless_equals_int (gst_harness_push (h, empty), GST_FLOW_OK);
  }
  fail_unless_equals_int (gst_harness_push (h, text_buffer (" \n\t \r\n", 2 * GST_SECOND,
              GST_SECOND)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  fail_unless (pop_element_message (bus, "lfm2text/result") == NULL,
      "a generation ran on empty input");
  while ((ev = gst_harness_try_pull_event (h)) != NULL) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      fail_unless (n_gaps < 2, "too many gaps");
      gst_event_parse_gap (ev, &gaps[n_gaps][0], &gaps[n_gaps][1]);
      n_gaps++;
    }
    gst_event_unref (ev);
  }
  fail_unless_equals_int (n_gaps, 2);
  fail_unless_equals_uint64 (gaps[0][0], GST_SECOND);
  fail_unless_equals_uint64 (gaps[0][1], GST_SECOND);
  fail_unless_equals_uint64 (gaps[1][0], 2 * GST_SECOND);
  fail_unless_equals_uint64 (gaps[1][1], GST_SECOND);

  /* the next real input is answered as if the empty ones had not been there */
  got = push_pull (h, "Hi");
  want = ref_chat (NULL, "Hi", NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Flush test: the first output blocks in a probe until the test has sent FLUSH_START. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean reached, go;
} Gate;

static GstPadProbeReturn
gate_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Gate *g = data;

  g_mutex_lock (&g->lock);
  if (g->reached) {             /* only the first buffer waits */
    g_mutex_unlock (&g->lock);
    return GST_PAD_PROBE_OK;
  }
  g->reached = TRUE;
  g_cond_broadcast (&g->cond);
  while (!g->go)
    g_cond_wait (&g->cond, &g->lock);
  g_mutex_unlock (&g->lock);
  return GST_PAD_PROBE_DROP;    /* lost in the flush */
}

typedef struct {
  GstHarness *h;
  GstFlowReturn ret;
} Pusher;

static gpointer
push_thread (gpointer data)
{
  Pusher *p = data;
  p->ret = gst_harness_push (p->h, text_buffer ("alpha\nbeta\nunfinished", 0,
          GST_CLOCK_TIME_NONE));
  return NULL;
}

GST_START_TEST (test_flush)
{
  GstHarness *h = text_harness (make_lfm2text ("input-mode", 1, NULL));
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  Gate gate = { 0 };
  Pusher pusher = { h, GST_FLOW_OK };
  GThread *t;
  gchar *got, *want;

  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, gate_probe, &gate, NULL);

  t = g_thread_new ("push", push_thread, &pusher);
  g_mutex_lock (&gate.lock);
  while (!gate.reached)
    g_cond_wait (&gate.cond, &gate.lock);
  g_mutex_unlock (&gate.lock);

  /* "alpha" is done and held; flush before "beta" is generated */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_mutex_lock (&gate.lock);
  gate.go = TRUE;
  g_cond_broadcast (&gate.cond);
  g_mutex_unlock (&gate.lock);
  g_thread_join (t);
  fail_unless_equals_int (pusher.ret, GST_FLOW_FLUSHING);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);

  /* after the flush: a new segment, and "unfinished" was dropped with the flush */
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("gamma\n", 0,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (h), 1);
  {
    GstBuffer *b = gst_harness_pull (h);
    got = buffer_text (b);
    gst_buffer_unref (b);
  }
  want = ref_line ("gamma");
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  gst_object_unref (src);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  gst_harness_teardown (h);
}

GST_END_TEST;

static GstMessage *
state_change_error (GstElement * e)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *m;

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error message");
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  return m;
}

GST_START_TEST (test_model_errors)
{
  gchar *dir = g_dir_make_tmp ("lfm2text-XXXXXX", NULL);
  gchar *missing = g_build_filename (dir, "missing-model.gguf", NULL);
  gchar *bad = g_build_filename (dir, "corrupt-model.gguf", NULL);
  GstElement *e;
  GstMessage *m;
  GError *err;
  gchar *dbg;

  /* missing file */
  e = make_lfm2text ("model", missing, NULL);
  m = state_change_error (e);
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND),
      "%s", err->message);
  fail_unless (strstr (err->message, missing) != NULL, "%s", err->message);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (m);
  gst_object_unref (e);

  /* a file that is not a GGUF: the path and the engine's reason */
  fail_unless (g_file_set_contents (bad, "this is not a model", -1, NULL));
  e = make_lfm2text ("model", bad, NULL);
  m = state_change_error (e);
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (err->domain == GST_RESOURCE_ERROR, "%s", err->message);
  fail_unless (strstr (err->message, "corrupt-model.gguf") != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "\": ") != NULL, "no reason: %s", err->message);
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (m);
  gst_object_unref (e);

  /* no model at all */
  e = gst_element_factory_make ("lfm2text", NULL);
  m = state_change_error (e);
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  g_clear_error (&err);
  g_free (dbg);
  gst_message_unref (m);
  gst_object_unref (e);

  g_unlink (bad);
  g_rmdir (dir);
  g_free (dir);
  g_free (missing);
  g_free (bad);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  GstElement *e = make_lfm2text (NULL);

  for (int i = 0; i < 100; i++) {
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PLAYING),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  /* and it still works, with the same result as a fresh element */
  {
    GstHarness *h = text_harness (e);
    gchar *got = push_pull (h, "Hello!"), *want = ref_chat (NULL, "Hello!", NULL, NULL);
    fail_unless_equals_string (got, want);
    g_free (got);
    g_free (want);
    /* cycle through the harness too (buffers processed in between) */
    for (int i = 0; i < 10; i++) {
      gst_element_set_state (h->element, GST_STATE_NULL);
      gst_harness_play (h);
      /* the element forgot the stream: start it again */
      fail_unless (gst_harness_push_event (h, gst_event_new_stream_start ("again")));
      gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
      got = push_pull (h, "Hello!");
      fail_unless_equals_string (got, want = ref_chat (NULL, "Hello!", NULL, NULL));
      g_free (got);
      g_free (want);
    }
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* A hand-made encoder buffer: <|image_start|>, 5 rows, <|image_end|>. */
#define N_ROWS 5
static gfloat rows[N_ROWS * 128];

static GstBuffer *
embd_buffer (gboolean flexible, gint n_embd, gint corrupt)
{
  gfloat *e;
  gint32 *l;
  GstBuffer *b = gst_lfm2_embd_buffer_new (flexible, n_embd, N_ROWS, N_ROWS + 2, &e, &l);

  ref_fill_random (rows, G_N_ELEMENTS (rows), 7, 1.0f);
  memcpy (e, rows, sizeof (gfloat) * MIN (n_embd, 128) * N_ROWS);
  l[0] = lfm2_token_lookup (model, "<|image_start|>");
  for (int i = 1; i <= N_ROWS; i++)
    l[i] = -1;
  l[N_ROWS + 1] = lfm2_token_lookup (model, "<|image_end|>");
  if (corrupt)
    l[2] = 100;                 /* one slot short */
  GST_BUFFER_PTS (b) = 5 * GST_SECOND;
  GST_BUFFER_DURATION (b) = GST_SECOND / 30;
  return b;
}

GST_START_TEST (test_embeddings_input)
{
  const gchar *question = "What is in the image?";
  gchar *want, *text_only;
  RefPart parts[3] = {
    {"<|im_start|>user\n<|image_start|>", NULL, 0},
    {NULL, rows, N_ROWS},
    {"<|image_end|>What is in the image?<|im_end|>\n<|im_start|>assistant\n", NULL, 0},
  };

  ref_fill_random (rows, G_N_ELEMENTS (rows), 7, 1.0f);
  want = ref_parts (parts, 3, NULL, NULL);
  text_only = ref_chat (NULL, question, NULL, NULL);
  fail_if (g_str_equal (want, text_only), "the embeddings made no difference");

  for (int flexible = 0; flexible <= 1; flexible++) {
    GstHarness *h = gst_harness_new_with_element (make_lfm2text ("prompt-template", question,
            NULL), "sink", "src");
    GstCaps *caps = gst_lfm2_embd_caps_new (flexible, 128, N_ROWS, N_ROWS + 2, NULL, 30, 1);

    gst_object_unref (h->element);
    gst_harness_set_src_caps (h, caps);
    for (int rep = 0; rep < 2; rep++) {
      GstBuffer *out;
      gchar *got;

      fail_unless_equals_int (gst_harness_push (h, embd_buffer (flexible, 128, 0)),
          GST_FLOW_OK);
      out = gst_harness_pull (h);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 5 * GST_SECOND);
      got = buffer_text (out);
      fail_unless_equals_string (got, want);
      g_free (got);
      gst_buffer_unref (out);
    }
    /* a layout that does not match the rows is a stream error */
    fail_unless_equals_int (gst_harness_push (h, embd_buffer (flexible, 128, 1)),
        GST_FLOW_ERROR);
    gst_harness_teardown (h);
  }

  /* flexible: a buffer whose rows are the wrong width is refused */
  {
    GstHarness *h = gst_harness_new_with_element (make_lfm2text (NULL), "sink", "src");
    gst_object_unref (h->element);
    gst_harness_set_src_caps_str (h, "other/tensors, format=flexible, framerate=0/1");
    fail_unless_equals_int (gst_harness_push (h, embd_buffer (TRUE, 64, 0)), GST_FLOW_ERROR);
    gst_harness_teardown (h);
  }
  g_free (want);
  g_free (text_only);
}

GST_END_TEST;

typedef struct {
  const gchar *inputs[3];
  gchar *outputs[3];
  gint n_out;
} Job;

static gpointer
run_pipeline (gpointer data)
{
  Job *job = data;
  gchar *desc = g_strdup_printf ("appsrc name=src format=time "
      "caps=\"text/x-raw,format=utf8\" ! lfm2text model=\"%s\" n-threads=%d max-tokens=%d "
      "temperature=0.8 min-p=0.05 repeat-penalty=1.1 top-k=0 top-p=1.0 seed=%d ! "
      "appsink name=sink sync=false", model_path, N_THREADS, MAX_TOKENS, SEED);
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  GstMessage *m;
  GstBus *bus;

  fail_unless (pipe != NULL);
  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  for (int i = 0; i < 3; i++)
    gst_app_src_push_buffer (GST_APP_SRC (src), text_buffer (job->inputs[i],
            i * GST_SECOND, GST_SECOND));
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  for (;;) {
    GstSample *s = gst_app_sink_pull_sample (GST_APP_SINK (sink));
    if (s == NULL)
      break;
    fail_unless (job->n_out < 3);
    job->outputs[job->n_out++] = buffer_text (gst_sample_get_buffer (s));
    gst_sample_unref (s);
  }
  bus = gst_element_get_bus (pipe);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m == NULL, "pipeline error");
  gst_object_unref (bus);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipe);
  g_free (desc);
  return NULL;
}

GST_START_TEST (test_concurrent_pipelines)
{
  Job jobs[2] = {
    {{"Hello!", "What is 2+2?", "The quick brown fox."}, {NULL}, 0},
    {{"Good night.", "Tell me a story.", "Hello!"}, {NULL}, 0},
  };
  GThread *t[2];

  for (int i = 0; i < 2; i++)
    t[i] = g_thread_new ("pipeline", run_pipeline, &jobs[i]);
  for (int i = 0; i < 2; i++)
    g_thread_join (t[i]);
  for (int i = 0; i < 2; i++) {
    fail_unless_equals_int (jobs[i].n_out, 3);
    for (int j = 0; j < 3; j++) {
      gchar *want = ref_chat (NULL, jobs[i].inputs[j], NULL, NULL);
      fail_unless_equals_string (jobs[i].outputs[j], want);
      g_free (want);
      g_free (jobs[i].outputs[j]);
    }
  }
}

GST_END_TEST;

static Suite *
lfm2text_suite (void)
{
  Suite *s = suite_create ("lfm2text");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");
  GError *err = NULL;

  g_assert (root != NULL);     /* set by tests/check/meson.build */
  model_path = g_build_filename (root, "text/tiny-q8_0/lfm2-tiny-q8_0.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());
  /* the few system elements the pipeline test uses (no system plugin path in tests) */
  for (guint i = 0; i < 2; i++) {
    const gchar *names[2] = { "libgstcoreelements.so", "libgstapp.so" };
    gchar *file = g_build_filename (GST_SYSTEM_PLUGINS_DIR, names[i], NULL);
    GstPlugin *p = gst_plugin_load_file (file, &err);

    if (p == NULL)
      g_error ("%s: %s", file, err->message);
    gst_object_unref (p);       /* the registry keeps its own reference */
    g_free (file);
  }

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata_and_properties);
  tcase_add_test (tc, test_caps_negotiation);
  tcase_add_test (tc, test_timestamps_and_result);
  tcase_add_test (tc, test_system_prompt_and_template);
  tcase_add_test (tc, test_lines_and_eos);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_bad_input);
  tcase_add_test (tc, test_lines_one_output_per_line);
  tcase_add_test (tc, test_empty_buffer_is_gap);
  tcase_add_test (tc, test_model_errors);
  tcase_add_test (tc, test_state_cycling);
  tcase_add_test (tc, test_embeddings_input);
  tcase_add_test (tc, test_concurrent_pipelines);
  return s;
}

GST_CHECK_MAIN (lfm2text);
