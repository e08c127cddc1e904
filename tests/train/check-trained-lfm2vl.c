/* tests/train/check-trained-lfm2vl.c — the trained tiny LFM2-VL (tests/data/trained) through
 * the lfm2vl element: every picture of a held-out set (tools/train/heldout.py, rendered at test
 * time into $LFM2_TRAINED_SET: PPM files and truth.tsv) is pushed as an RGB frame into a fresh
 * lfm2vl with its default prompt and sampling; the caption that comes out on text_src must be
 * the picture's true caption for at least 90 % of the set.
 *
 * The truth comes from the generator (videotestsrc pattern names, the scene's shapes), not from
 * an earlier output of ours. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#define MIN_ACCURACY 0.9

static gchar *model_path, *mmproj_path, *set_dir;

/* A binary PPM (P6, maxval 255) as tightly packed RGB. */
static guint8 *
read_ppm (const gchar * path, gint * w, gint * h)
{
  gchar *data;
  gsize len, pos = 0;
  gint vals[3], n = 0;
  guint8 *pix;

  fail_unless (g_file_get_contents (path, &data, &len, NULL), "cannot read %s", path);
  fail_unless (len > 2 && data[0] == 'P' && data[1] == '6', "%s: not a binary PPM", path);
  pos = 2;
  while (n < 3) {
    while (pos < len && g_ascii_isspace (data[pos]))
      pos++;
    fail_unless (pos < len && g_ascii_isdigit (data[pos]), "%s: bad header", path);
    vals[n] = 0;
    while (pos < len && g_ascii_isdigit (data[pos]))
      vals[n] = vals[n] * 10 + (data[pos++] - '0');
    n++;
  }
  pos++;                        /* the single white space after maxval */
  *w = vals[0];
  *h = vals[1];
  fail_unless (vals[2] == 255 && *w > 0 && *h > 0 && len - pos >= (gsize) * w * *h * 3,
      "%s: unexpected PPM", path);
  pix = g_memdup2 (data + pos, (gsize) * w * *h * 3);
  g_free (data);
  return pix;
}

/* The caption lfm2vl writes for one RGB picture (a fresh element per picture). */
static gchar *
caption (const guint8 * rgb, gint w, gint h)
{
  GstElement *e = gst_element_factory_make ("lfm2vl", NULL);
  GstHarness *hv, *ht;
  GstBuffer *b, *out;
  GstMapInfo map;
  gsize stride = GST_ROUND_UP_4 ((gsize) w * 3);    /* GStreamer's RGB row layout */
  gchar *caps, *text;

  fail_unless (e != NULL, "no lfm2vl element (is build/plugins on GST_PLUGIN_PATH_1_0?)");
  g_object_set (e, "model", model_path, "mmproj", mmproj_path, "n-threads", 2, NULL);
  hv = gst_harness_new_with_element (e, "sink", "src");
  ht = gst_harness_new_with_element (e, NULL, "text_src");
  gst_object_unref (e);
  caps = g_strdup_printf ("video/x-raw, format=RGB, width=%d, height=%d, framerate=30/1", w, h);
  gst_harness_set_src_caps_str (hv, caps);
  g_free (caps);

  b = gst_buffer_new_allocate (NULL, stride * h, NULL);
  fail_unless (gst_buffer_map (b, &map, GST_MAP_WRITE));
  for (gint y = 0; y < h; y++)
    memcpy (map.data + stride * y, rgb + (gsize) y * w * 3, (gsize) w * 3);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = 0;
  GST_BUFFER_DURATION (b) = GST_SECOND / 30;
  fail_unless_equals_int (gst_harness_push (hv, b), GST_FLOW_OK);

  out = gst_harness_pull (ht);
  fail_unless (out != NULL, "no caption");
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 0);
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  text = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (ht);
  gst_harness_teardown (hv);
  return text;
}

GST_START_TEST (test_heldout_captions)
{
  gchar *truth_path = g_build_filename (set_dir, "truth.tsv", NULL), *truth;
  gchar **lines;
  guint n = 0, right = 0, n_kind[2] = { 0, 0 }, right_kind[2] = { 0, 0 };

  fail_unless (g_file_get_contents (truth_path, &truth, NULL, NULL), "cannot read %s", truth_path);
  lines = g_strsplit (truth, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    gchar **f = g_strsplit (lines[i], "\t", -1);
    if (g_strv_length (f) == 5) {
      gchar *path = g_build_filename (set_dir, f[0], NULL), *got;
      gint w, h;
      guint8 *rgb = read_ppm (path, &w, &h);
      const gint kind = strcmp (f[3], "scene") == 0;

      got = caption (rgb, w, h);
      n++;
      n_kind[kind]++;
      if (strcmp (got, f[4]) == 0) {
        right++;
        right_kind[kind]++;
      } else {
        g_print ("miss %s (%dx%d): '%s', expected '%s'\n", f[0], w, h, got, f[4]);
      }
      g_free (got);
      g_free (rgb);
      g_free (path);
    }
    g_strfreev (f);
  }
  g_print ("lfm2vl: %u/%u captions right (%.1f %%): patterns %u/%u, scenes %u/%u\n", right, n,
      n ? 100.0 * right / n : 0.0, right_kind[0], n_kind[0], right_kind[1], n_kind[1]);
  fail_unless (n >= 20, "the held-out set has only %u pictures", n);
  fail_unless (right >= MIN_ACCURACY * n, "accuracy %.1f %% is below %.0f %%", 100.0 * right / n,
      100 * MIN_ACCURACY);
  g_strfreev (lines);
  g_free (truth);
  g_free (truth_path);
}

GST_END_TEST;

static Suite *
trained_suite (void)
{
  Suite *s = suite_create ("trained-lfm2vl");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);
  set_dir = g_strdup (g_getenv ("LFM2_TRAINED_SET"));
  g_assert (set_dir != NULL);   /* set by test-trained-lfm2vl.sh */
  model_path = g_build_filename (root, "trained", "lfm2-vl-synthetic-text.gguf", NULL);
  mmproj_path = g_build_filename (root, "trained", "lfm2-vl-synthetic-mmproj.gguf", NULL);
  tcase_set_timeout (tc, 600);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_heldout_captions);
  return s;
}

GST_CHECK_MAIN (trained);
