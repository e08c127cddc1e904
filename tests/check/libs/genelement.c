/* tests/check/libs/genelement.c — the base class of the generating elements
 * (plugins/gstlfm2genelement.c) through a minimal subclass written the way gstlfm2genelement.h
 * tells a new element to be written (an lfm2asr stand-in: "Perform ASR." as its system
 * prompt, greedy): per-class defaults, model loading and release, the start/stop vfuncs,
 * generation against the engine-only reference, settings changed between requests, inputs
 * that do not fit the context, and errors naming the file. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include "gstlfm2elements.h"
#include "gstlfm2genelement.h"
#include "lfm2-ref.h"

#define N_THREADS 2

/* ---- the subclass: text in, one generated text per buffer out ----------------------- */

typedef struct {
  GstLfm2GenElement parent;
  GstPad *sinkpad, *srcpad;
  gboolean fail_start;          /* the start vfunc refuses (property "fail-start") */
  guint n_start, n_stop;
  gint start_n_threads;         /* what start() saw in the generator parameters */
  GString *out;
} TestGen;

typedef struct {
  GstLfm2GenElementClass parent_class;
} TestGenClass;

GType test_gen_get_type (void);
G_DEFINE_TYPE (TestGen, test_gen, GST_TYPE_LFM2_GEN_ELEMENT);
#define TEST_GEN(obj) ((TestGen *) (obj))

enum {
  PROP_0,
  PROP_FAIL_START,
};

static const GstLfm2GenElementDefaults test_defaults = {
  .system_prompt = "Perform ASR.",
  .max_tokens = 12,
  .temperature = 0.0f,
};

static GstStaticPadTemplate sink_tpl = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));
static GstStaticPadTemplate src_tpl = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

static void
test_gen_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  if (prop_id == PROP_FAIL_START)
    TEST_GEN (object)->fail_start = g_value_get_boolean (value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
test_gen_get_property (GObject * object, guint prop_id, GValue * value, GParamSpec * pspec)
{
  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  if (prop_id == PROP_FAIL_START)
    g_value_set_boolean (value, TEST_GEN (object)->fail_start);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static gboolean
test_gen_start (GstLfm2GenElement * base, const lfm2_model * model, GstLfm2GenParams * params)
{
  TestGen *self = TEST_GEN (base);

  self->n_start++;
  self->start_n_threads = params->n_threads;
  if (self->fail_start) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("start refused"), (NULL));
    return FALSE;
  }
  return TRUE;
}

static void
test_gen_stop (GstLfm2GenElement * base)
{
  TEST_GEN (base)->n_stop++;
}

static GstFlowReturn
test_gen_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  TestGen *self = TEST_GEN (parent);
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (parent);
  GstMapInfo map;
  GstLfm2GenStats stats;
  GError *err = NULL;
  GstFlowReturn ret;
  gchar *text;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  text = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);

  if (!gst_lfm2_gen_element_apply_settings (base)) {
    g_free (text);
    return GST_FLOW_ERROR;
  }
  g_string_truncate (self->out, 0);
  ret = gst_lfm2_gen_element_generate (base, text, NULL, 0, self->out, &stats, &err);
  g_free (text);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT, ("Input dropped: %s", err->message),
        (NULL));
    g_clear_error (&err);
    return GST_FLOW_OK;
  }
  if (ret != GST_FLOW_OK)
    return ret;
  return gst_pad_push (self->srcpad, gst_buffer_new_memdup (self->out->str, self->out->len));
}

static void
test_gen_finalize (GObject * object)
{
  g_string_free (TEST_GEN (object)->out, TRUE);
  G_OBJECT_CLASS (test_gen_parent_class)->finalize (object);
}

static void
test_gen_class_init (TestGenClass * klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  GstLfm2GenElementClass *gc = GST_LFM2_GEN_ELEMENT_CLASS (klass);

  oc->set_property = test_gen_set_property;
  oc->get_property = test_gen_get_property;
  oc->finalize = test_gen_finalize;
  gst_lfm2_gen_element_class_install_properties (gc, &test_defaults);
  g_object_class_install_property (oc, PROP_FAIL_START,
      g_param_spec_boolean ("fail-start", "Fail start", "Make start() refuse", FALSE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  gc->start = test_gen_start;
  gc->stop = test_gen_stop;
  gst_element_class_add_static_pad_template (ec, &sink_tpl);
  gst_element_class_add_static_pad_template (ec, &src_tpl);
  gst_element_class_set_static_metadata (ec, "test", "Filter/Text", "test", "test");
}

static void
test_gen_init (TestGen * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_tpl, "sink");
  gst_pad_set_chain_function (self->sinkpad, test_gen_chain);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_tpl, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
  self->out = g_string_new (NULL);
}

/* ---- helpers ------------------------------------------------------------------------- */

static gchar *model_path;
static lfm2_model *model;

static GstElement *
make_test_gen (void)
{
  GstElement *e = gst_element_factory_make ("lfm2testgen", NULL);

  fail_unless (e != NULL);
  g_object_set (e, "model", model_path, "n-threads", N_THREADS, NULL);
  return e;
}

static GstHarness *
harness (GstElement * e)
{
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");

  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  return h;
}

static gchar *
push_pull (GstHarness * h, const gchar * s)
{
  GstBuffer *out;
  GstMapInfo map;
  gchar *t;

  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (s, strlen (s))),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL);
  gst_buffer_map (out, &map, GST_MAP_READ);
  t = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  return t;
}

/* Greedy reference through the engine API alone. */
static gchar *
ref_greedy (const gchar * system, const gchar * user, gint max_tokens)
{
  gchar *text = ref_chat_text (system, user), *out;
  RefPart part = { text, NULL, 0 };
  RefParams rp = { N_THREADS, max_tokens, lfm2_sampler_default_params () };

  rp.sampling.temperature = 0.0f;
  rp.sampling.min_p = 0.15f;
  rp.sampling.repeat_penalty = 1.05f;
  rp.sampling.seed = 0;
  out = ref_generate (model, &part, 1, &rp, NULL, NULL);
  g_free (text);
  return out;
}

/* ---- tests --------------------------------------------------------------------------- */

GST_START_TEST (test_defaults_per_class)
{
  GstElement *e = gst_element_factory_make ("lfm2testgen", NULL);
  GstElement *t = gst_element_factory_make ("lfm2text", NULL);
  const gchar *shared[] = { "model", "system-prompt", "max-tokens", "temperature", "top-k",
    "top-p", "min-p", "repeat-penalty", "seed", "n-threads", "context-length"
  };
  gchar *sys;
  gfloat temp, min_p;
  gint max_tokens;

  fail_unless (e != NULL && t != NULL);
  /* the same properties, with the same ranges and mutability, on both classes */
  for (guint i = 0; i < G_N_ELEMENTS (shared); i++) {
    GParamSpec *a = g_object_class_find_property (G_OBJECT_GET_CLASS (e), shared[i]);
    GParamSpec *b = g_object_class_find_property (G_OBJECT_GET_CLASS (t), shared[i]);

    fail_unless (a != NULL && b != NULL, "%s missing", shared[i]);
    fail_unless_equals_int (a->flags, b->flags);
    fail_unless_equals_string (g_param_spec_get_blurb (a), g_param_spec_get_blurb (b));
  }
  /* each class's own defaults, in the pspecs and in a new instance */
  g_object_get (e, "system-prompt", &sys, "temperature", &temp, "max-tokens", &max_tokens,
      "min-p", &min_p, NULL);
  fail_unless_equals_string (sys, "Perform ASR.");
  fail_unless (temp == 0.0f && min_p == 0.15f);
  fail_unless_equals_int (max_tokens, 12);
  g_free (sys);
  fail_unless_equals_string (G_PARAM_SPEC_STRING (g_object_class_find_property
          (G_OBJECT_GET_CLASS (e), "system-prompt"))->default_value, "Perform ASR.");
  g_object_get (t, "system-prompt", &sys, "temperature", &temp, "max-tokens", &max_tokens,
      NULL);
  fail_unless (sys == NULL && temp == 0.3f && max_tokens == 256);
  fail_unless (G_PARAM_SPEC_FLOAT (g_object_class_find_property (G_OBJECT_GET_CLASS (t),
              "temperature"))->default_value == 0.3f);
  gst_object_unref (e);
  gst_object_unref (t);
}

GST_END_TEST;

GST_START_TEST (test_start_stop)
{
  GstElement *e = make_test_gen ();
  TestGen *tg = TEST_GEN (e);
  gint n_embd = 0, n_vocab = 0;
  gchar *id = NULL;

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (tg->n_start, 1);
  fail_unless_equals_int (tg->start_n_threads, N_THREADS);
  fail_unless (GST_LFM2_GEN_ELEMENT (e)->gen != NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, model_path), 1);
  gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (e), &n_embd, &n_vocab, &id);
  fail_unless_equals_int (n_embd, lfm2_model_get_hparams (model)->n_embd);
  fail_unless_equals_int (n_vocab, lfm2_model_n_vocab (model));
  fail_unless_equals_string (id, lfm2_model_id (model));
  g_free (id);

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (tg->n_stop, 1);
  fail_unless (GST_LFM2_GEN_ELEMENT (e)->gen == NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, model_path), 0);
  gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (e), &n_embd, NULL, &id);
  fail_unless (n_embd == 0 && id == NULL);
  gst_object_unref (e);
}

GST_END_TEST;

/* READY→PAUSED must fail with `code` and a message naming `name`; nothing stays loaded. */
static void
expect_start_error (GstElement * e, gint code, const gchar * name)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (err->domain == GST_RESOURCE_ERROR && err->code == code, "%s", err->message);
  fail_unless (strstr (err->message, name) != NULL, "\"%s\" does not name %s", err->message,
      name);
  g_error_free (err);
  gst_message_unref (m);
  fail_unless (GST_LFM2_GEN_ELEMENT (e)->gen == NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
}

GST_START_TEST (test_start_errors)
{
  GstElement *e = make_test_gen ();
  GString *sys = g_string_new (NULL);

  /* no model, a missing one */
  g_object_set (e, "model", NULL, NULL);
  expect_start_error (e, GST_RESOURCE_ERROR_NOT_FOUND, "model");
  g_object_set (e, "model", "/nonexistent/dir/m.gguf", NULL);
  expect_start_error (e, GST_RESOURCE_ERROR_NOT_FOUND, "m.gguf");
  /* the subclass's start refuses: its error, and the model is released */
  g_object_set (e, "model", model_path, "fail-start", TRUE, NULL);
  expect_start_error (e, GST_RESOURCE_ERROR_SETTINGS, "start refused");
  fail_unless_equals_int (TEST_GEN (e)->n_stop, 1);
  /* a system prompt longer than the context */
  for (gint i = 0; i < 60; i++)
    g_string_append (sys, "words words ");
  g_object_set (e, "fail-start", FALSE, "context-length", 32, "system-prompt", sys->str, NULL);
  expect_start_error (e, GST_RESOURCE_ERROR_NO_SPACE_LEFT, "32");
  g_string_free (sys, TRUE);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_generation_and_settings)
{
  GstElement *e = make_test_gen ();
  GstHarness *h = harness (e);
  GstBus *bus = gst_bus_new ();
  GString *long_text = g_string_new (NULL);
  GstMessage *m;
  gchar *got, *want;

  /* the class defaults: "Perform ASR." as the system turn, greedy, 12 tokens */
  got = push_pull (h, "Hello there");
  want = ref_greedy ("Perform ASR.", "Hello there", 12);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  /* changed while playing: applied before the next request */
  g_object_set (e, "system-prompt", "Be brief.", "max-tokens", 5, NULL);
  got = push_pull (h, "Hello there");
  want = ref_greedy ("Be brief.", "Hello there", 5);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  /* an input that does not fit the context is dropped, reported, and the stream goes on */
  gst_element_set_bus (e, bus);
  for (gint i = 0; i < 2000; i++)
    g_string_append (long_text, "many words ");
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (long_text->str,
              long_text->len)), GST_FLOW_OK);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (m != NULL, "no warning for the dropped input");
  gst_message_unref (m);
  got = push_pull (h, "Hi");
  want = ref_greedy ("Be brief.", "Hi", 5);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  g_string_free (long_text, TRUE);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_object_unref (e);         /* the harness took its own reference */
}

GST_END_TEST;

static Suite *
genelement_suite (void)
{
  Suite *s = suite_create ("lfm2genelement");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);
  model_path = g_build_filename (root, "text", "tiny-q8_0", "lfm2-tiny-q8_0.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());
  GST_ELEMENT_REGISTER (lfm2text, NULL);
  gst_element_register (NULL, "lfm2testgen", GST_RANK_NONE, test_gen_get_type ());

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_defaults_per_class);
  tcase_add_test (tc, test_start_stop);
  tcase_add_test (tc, test_start_errors);
  tcase_add_test (tc, test_generation_and_settings);
  return s;
}

GST_CHECK_MAIN (genelement);
