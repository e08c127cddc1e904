/* tests/check/libs/registry.c — the shared model registry: one load per file, refcounts,
 * errors naming the path, concurrent acquisition, and real LFM2 files. */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gstlfm2model.h"

static gint n_load_calls, n_free_calls;
static gint load_delay_us;
static gboolean load_fails;

static gpointer
fake_load (const gchar * path, GError ** error)
{
  g_atomic_int_inc (&n_load_calls);
  if (load_delay_us)
    g_usleep (load_delay_us);
  if (load_fails) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "fake loader refuses \"%s\"", path);
    return NULL;
  }
  return g_strdup (path);
}

static void
fake_free (gpointer obj)
{
  g_atomic_int_inc (&n_free_calls);
  g_free (obj);
}

static gchar *tmpdir;

static gchar *
make_file (const gchar * name, const gchar * content)
{
  gchar *path = g_build_filename (tmpdir, name, NULL);
  fail_unless (g_file_set_contents (path, content, -1, NULL));
  return path;
}

static void
setup (void)
{
  tmpdir = g_dir_make_tmp ("lfm2registry-XXXXXX", NULL);
  fail_unless (tmpdir != NULL);
  n_load_calls = n_free_calls = 0;
  load_delay_us = 0;
  load_fails = FALSE;
}

static void
teardown (void)
{
  GDir *d = g_dir_open (tmpdir, 0, NULL);
  const gchar *n;

  while ((n = g_dir_read_name (d)) != NULL) {
    gchar *p = g_build_filename (tmpdir, n, NULL);
    g_unlink (p);
    g_free (p);
  }
  g_dir_close (d);
  g_rmdir (tmpdir);
  g_free (tmpdir);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
}

GST_START_TEST (test_share_and_release)
{
  gchar *a = make_file ("a.bin", "A"), *b = make_file ("b.bin", "B");
  gchar *link = g_build_filename (tmpdir, "link.bin", NULL);
  GstLfm2Shared *s1, *s2, *s3, *s4;

  fail_unless (symlink (a, link) == 0);
  s1 = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, NULL);
  s2 = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, NULL);
  /* the same file through a symlink and a non-canonical path */
  s3 = gst_lfm2_shared_acquire ("fake", link, fake_load, fake_free, NULL);
  {
    gchar *dotted = g_build_filename (tmpdir, ".", "a.bin", NULL);
    s4 = gst_lfm2_shared_acquire ("fake", dotted, fake_load, fake_free, NULL);
    g_free (dotted);
  }
  fail_unless (s1 != NULL && s1 == s2 && s2 == s3 && s3 == s4);
  fail_unless_equals_int (n_load_calls, 1);
  fail_unless_equals_int (gst_lfm2_shared_n_users (s1), 4);
  fail_unless_equals_int (gst_lfm2_registry_n_users ("fake", link), 4);
  fail_unless_equals_string (gst_lfm2_shared_get (s1), gst_lfm2_shared_path (s1));

  /* another file, and the same file under another kind, are separate entries */
  {
    GstLfm2Shared *sb = gst_lfm2_shared_acquire ("fake", b, fake_load, fake_free, NULL);
    GstLfm2Shared *sk = gst_lfm2_shared_acquire ("other", a, fake_load, fake_free, NULL);
    fail_unless (sb != s1 && sk != s1 && sk != sb);
    fail_unless_equals_int (gst_lfm2_registry_n_entries (), 3);
    fail_unless_equals_int (n_load_calls, 3);
    gst_lfm2_shared_release (sb);
    gst_lfm2_shared_release (sk);
  }
  fail_unless_equals_int (n_free_calls, 2);
  gst_lfm2_shared_release (s4);
  gst_lfm2_shared_release (s3);
  gst_lfm2_shared_release (s2);
  fail_unless_equals_int (n_free_calls, 2);
  fail_unless_equals_int (gst_lfm2_registry_n_users ("fake", a), 1);
  gst_lfm2_shared_release (s1);
  fail_unless_equals_int (n_free_calls, 3);
  fail_unless_equals_int (gst_lfm2_registry_n_users ("fake", a), 0);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);

  /* after the last release a new acquire loads again */
  s1 = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, NULL);
  fail_unless_equals_int (n_load_calls, 4);
  gst_lfm2_shared_release (s1);
  g_free (a);
  g_free (b);
  g_free (link);
}

GST_END_TEST;

GST_START_TEST (test_replaced_file_is_reloaded)
{
  gchar *a = make_file ("a.bin", "first");
  GstLfm2Shared *old, *new;
  struct timespec ts[2] = { {0, 0}, {1000000, 0} };

  old = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, NULL);
  /* same path, new content and mtime: a different file for the registry */
  g_unlink (a);
  g_free (make_file ("a.bin", "second version"));
  fail_unless (utimensat (AT_FDCWD, a, ts, 0) == 0);
  new = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, NULL);
  fail_unless (new != NULL && new != old);
  fail_unless_equals_int (n_load_calls, 2);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 2);
  gst_lfm2_shared_release (old);
  gst_lfm2_shared_release (new);
  fail_unless_equals_int (n_free_calls, 2);
  g_free (a);
}

GST_END_TEST;

GST_START_TEST (test_errors_name_the_path)
{
  GError *err = NULL;
  gchar *missing = g_build_filename (tmpdir, "no-such-model.gguf", NULL);
  gchar *a = make_file ("a.bin", "A");

  fail_if (gst_lfm2_shared_acquire ("fake", missing, fake_load, fake_free, &err));
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  fail_unless (strstr (err->message, missing) != NULL, "%s", err->message);
  g_clear_error (&err);

  fail_if (gst_lfm2_shared_acquire ("fake", NULL, fake_load, fake_free, &err));
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  g_clear_error (&err);

  fail_if (gst_lfm2_shared_acquire ("fake", tmpdir, fake_load, fake_free, &err));
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ));
  fail_unless (strstr (err->message, tmpdir) != NULL, "%s", err->message);
  g_clear_error (&err);
  fail_unless_equals_int (n_load_calls, 0);

  /* a failed load leaves nothing behind and is retried next time */
  load_fails = TRUE;
  fail_if (gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, &err));
  fail_unless (strstr (err->message, "fake loader refuses") != NULL);
  g_clear_error (&err);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  load_fails = FALSE;
  {
    GstLfm2Shared *s = gst_lfm2_shared_acquire ("fake", a, fake_load, fake_free, &err);
    fail_unless (s != NULL);
    fail_unless_equals_int (n_load_calls, 2);
    gst_lfm2_shared_release (s);
  }
  g_free (missing);
  g_free (a);
}

GST_END_TEST;

typedef struct {
  const gchar *path;
  GstLfm2Shared *got;
  GError *err;
} Racer;

static gpointer
race (gpointer data)
{
  Racer *r = data;
  r->got = gst_lfm2_shared_acquire ("fake", r->path, fake_load, fake_free, &r->err);
  return NULL;
}

static void
run_race (const gchar * path, Racer * r, GThread ** th, guint n)
{
  for (guint i = 0; i < n; i++) {
    r[i].path = path;
    r[i].got = NULL;
    r[i].err = NULL;
    th[i] = g_thread_new ("racer", race, &r[i]);
  }
  for (guint i = 0; i < n; i++)
    g_thread_join (th[i]);
}

GST_START_TEST (test_concurrent_acquire)
{
  gchar *a = make_file ("a.bin", "A");
  Racer r[8];
  GThread *th[8];

  /* a slow load: all eight callers wait for the one load */
  load_delay_us = 100 * 1000;
  run_race (a, r, th, 8);
  fail_unless_equals_int (n_load_calls, 1);
  for (guint i = 0; i < 8; i++) {
    fail_unless (r[i].got != NULL && r[i].got == r[0].got);
    fail_unless (r[i].err == NULL);
  }
  fail_unless_equals_int (gst_lfm2_shared_n_users (r[0].got), 8);
  for (guint i = 0; i < 8; i++)
    gst_lfm2_shared_release (r[i].got);
  fail_unless_equals_int (n_free_calls, 1);

  /* a slow failure: everybody gets the error, nothing stays */
  load_fails = TRUE;
  run_race (a, r, th, 8);
  for (guint i = 0; i < 8; i++) {
    fail_unless (r[i].got == NULL);
    fail_unless (r[i].err != NULL && strstr (r[i].err->message, "fake loader refuses"));
    g_clear_error (&r[i].err);
  }
  /* waiters that arrived during the load share its failure; late ones load again */
  fail_unless (n_load_calls >= 2 && n_load_calls <= 9);
  fail_unless_equals_int (gst_lfm2_registry_n_entries (), 0);
  g_free (a);
}

GST_END_TEST;

static gchar *
test_data (const gchar * rel)
{
  const gchar *root = g_getenv ("LFM2_TEST_DATA");
  fail_unless (root != NULL, "LFM2_TEST_DATA is not set");
  return g_build_filename (root, rel, NULL);
}

GST_START_TEST (test_real_models)
{
  gchar *q8 = test_data ("text/tiny-q8_0/lfm2-tiny-q8_0.gguf");
  gchar *f32 = test_data ("text/tiny-f32/lfm2-tiny-f32.gguf");
  gchar *bad = make_file ("bad.gguf", "GGUF but not really a GGUF file");
  gchar *empty = make_file ("empty.gguf", "");
  GstLfm2Shared *m1, *m2, *m3;
  GError *err = NULL;

  m1 = gst_lfm2_model_acquire (q8, &err);
  fail_unless (m1 != NULL, "%s", err ? err->message : "");
  m2 = gst_lfm2_model_acquire (q8, NULL);
  m3 = gst_lfm2_model_acquire (f32, NULL);
  fail_unless (m1 == m2 && m3 != m1);
  fail_unless_equals_int (lfm2_model_n_vocab (gst_lfm2_shared_model (m1)), 512);
  fail_unless_equals_int (lfm2_model_get_hparams (gst_lfm2_shared_model (m3))->n_embd, 128);
  fail_unless_equals_int (gst_lfm2_registry_n_users (GST_LFM2_KIND_TEXT_MODEL, q8), 2);
  gst_lfm2_shared_release (m1);
  gst_lfm2_shared_release (m2);
  gst_lfm2_shared_release (m3);

  /* files the engine rejects: the error names the path and carries the engine's reason */
  fail_if (gst_lfm2_model_acquire (bad, &err));
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ));
  fail_unless (strstr (err->message, "bad.gguf") != NULL, "%s", err->message);
  fail_unless (strlen (err->message) > strlen (bad) + 30, "no reason in: %s", err->message);
  g_clear_error (&err);
  fail_if (gst_lfm2_model_acquire (empty, &err));
  fail_unless (strstr (err->message, "empty.gguf") != NULL, "%s", err->message);
  g_clear_error (&err);
  /* the vision projector is a GGUF but not an LFM2 text model */
  {
    gchar *mmproj = test_data ("vision/lfm2-vl-tiny-mmproj-f32.gguf");
    fail_if (gst_lfm2_model_acquire (mmproj, &err));
    fail_unless (strstr (err->message, "mmproj") != NULL, "%s", err->message);
    g_clear_error (&err);
    g_free (mmproj);
  }
  g_free (q8);
  g_free (f32);
  g_free (bad);
  g_free (empty);
}

GST_END_TEST;

static Suite *
registry_suite (void)
{
  Suite *s = suite_create ("lfm2registry");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_share_and_release);
  tcase_add_test (tc, test_replaced_file_is_reloaded);
  tcase_add_test (tc, test_errors_name_the_path);
  tcase_add_test (tc, test_concurrent_acquire);
  tcase_add_test (tc, test_real_models);
  return s;
}

GST_CHECK_MAIN (registry);
