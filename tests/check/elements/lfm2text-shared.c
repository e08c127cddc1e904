/* tests/check/elements/lfm2text-shared.c — elements naming the same model share one load.
 *
 * This test links the element code and registers lfm2text statically (no plugin path), so it
 * can look inside the model registry the elements use. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>
#include <unistd.h>

#include "gstlfm2elements.h"
#include "gstlfm2model.h"

static gchar *q8_path, *f32_path;

static GstElement *
make (const gchar * path)
{
  GstElement *e = gst_element_factory_make ("lfm2text", NULL);

  fail_unless (e != NULL);
  g_object_set (e, "model", path, "n-threads", 1, "max-tokens", 4, NULL);
  return gst_object_ref_sink (e);
}

static gchar *
run_one (GstElement * e, const gchar * text)
{
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  GstBuffer *out;
  GstMapInfo map;
  gchar *s;

  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new_memdup (text, strlen (text))),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  gst_buffer_map (out, &map, GST_MAP_READ);
  s = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  return s;
}

GST_START_TEST (test_two_elements_one_model)
{
  GstElement *a = make (q8_path), *b = make (q8_path), *c = make (f32_path);
  guint loads0 = gst_lfm2_registry_n_loads ();

  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  /* READY does not load */
  fail_unless_equals_int (gst_element_set_state (a, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);

  fail_unless_equals_int (gst_element_set_state (a, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (b, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8_path), 2);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 1);
  fail_unless_equals_int (gst_lfm2_registry_n_loads () - loads0, 1);

  /* another file is another entry */
  fail_unless_equals_int (gst_element_set_state (c, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 2);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, f32_path), 1);

  /* the model stays while one element holds it */
  gst_element_set_state (a, GST_STATE_NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8_path), 1);
  gst_element_set_state (b, GST_STATE_NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8_path), 0);
  gst_element_set_state (c, GST_STATE_NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);

  gst_object_unref (a);
  gst_object_unref (b);
  gst_object_unref (c);
}

GST_END_TEST;

GST_START_TEST (test_shared_model_separate_contexts)
{
  GstElement *a = make (q8_path), *b = make (q8_path);
  gchar *alone, *with_a, *with_b;

  /* the output of one element does not depend on another using the same model */
  alone = run_one (b, "Hello!");
  g_object_set (a, "system-prompt", "You are a pirate.", NULL);
  fail_unless_equals_int (gst_element_set_state (a, GST_STATE_PLAYING),
      GST_STATE_CHANGE_SUCCESS);
  with_b = run_one (b, "Hello!");
  fail_unless_equals_string (with_b, alone);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0 + 1);  /* a keeps it */
  with_a = run_one (a, "Hello!");
  fail_if (g_str_equal (with_a, alone), "system prompt of a ignored");
  gst_element_set_state (a, GST_STATE_NULL);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  g_free (alone);
  g_free (with_a);
  g_free (with_b);
  gst_object_unref (a);
  gst_object_unref (b);
}

GST_END_TEST;

typedef struct {
  GstElement *e;
  GstStateChangeReturn ret;
} Starter;

static gpointer
start_thread (gpointer data)
{
  Starter *s = data;
  s->ret = gst_element_set_state (s->e, GST_STATE_PAUSED);
  return NULL;
}

GST_START_TEST (test_concurrent_start_loads_once)
{
  Starter s[4];
  GThread *t[4];
  guint loads0 = gst_lfm2_registry_n_loads ();

  for (int i = 0; i < 4; i++) {
    s[i].e = make (q8_path);
    t[i] = g_thread_new ("start", start_thread, &s[i]);
  }
  for (int i = 0; i < 4; i++)
    g_thread_join (t[i]);
  for (int i = 0; i < 4; i++)
    fail_unless_equals_int (s[i].ret, GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_lfm2_registry_n_loads () - loads0, 1);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8_path), 4);
  for (int i = 0; i < 4; i++) {
    gst_element_set_state (s[i].e, GST_STATE_NULL);
    gst_object_unref (s[i].e);
  }
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
}

GST_END_TEST;

GST_START_TEST (test_cycling_releases)
{
  GstElement *e = make (q8_path);
  guint loads0 = gst_lfm2_registry_n_loads ();

  for (int i = 0; i < 100; i++) {
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PLAYING),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8_path),
        1);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  }
  fail_unless_equals_int (gst_lfm2_registry_n_loads () - loads0, 100);

  /* PAUSED holds it too, READY not */
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 1);
  gst_element_set_state (e, GST_STATE_READY);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
}

GST_END_TEST;

static Suite *
shared_suite (void)
{
  Suite *s = suite_create ("lfm2text-shared");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);     /* set by tests/check/meson.build */
  q8_path = g_build_filename (root, "text/tiny-q8_0/lfm2-tiny-q8_0.gguf", NULL);
  f32_path = g_build_filename (root, "text/tiny-f32/lfm2-tiny-f32.gguf", NULL);
  g_assert (GST_ELEMENT_REGISTER (lfm2text, NULL));

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_two_elements_one_model);
  tcase_add_test (tc, test_shared_model_separate_contexts);
  tcase_add_test (tc, test_concurrent_start_loads_once);
  tcase_add_test (tc, test_cycling_releases);
  return s;
}

GST_CHECK_MAIN (shared);
