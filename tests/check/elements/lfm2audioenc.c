/* tests/check/elements/lfm2audioenc.c — the lfm2audioenc element from the plugin module:
 * output caps (flexible tensors of the adapter's width, the model-id with a text model), one
 * buffer per utterance with its timestamps and the bytes of the audio library's embeddings
 * for the same samples (both front-ends), GAPs over silence, EOS, errors at READY→PAUSED, and
 * lfm2audioenc ! lfm2text giving the same text as lfm2asr on the same utterances (greedy). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "gstlfm2tensors.h"
#include "audio-check.h"
#include "lfm2-audio.h"

#define N_THREADS 2
#define RATE AUDIO_CHECK_RATE
#define S16_CAPS AUDIO_CHECK_S16_CAPS

static gchar *model_path, *mmproj_path, *data_dir;
static lfm2_model *model;
static gfloat *speech, *speech_long;
static gint64 n_speech, n_speech_long;

/* A fresh encoder in the test's own process (after check's fork: its thread pool must not
 * exist before it). */
static lfm2_audio *
load_audio (enum lfm2_audio_frontend mode)
{
  struct lfm2_audio_params ap = lfm2_audio_default_params ();
  lfm2_audio *a;

  ap.n_threads = N_THREADS;
  ap.frontend = mode;
  a = lfm2_audio_load (mmproj_path, ap);
  if (a == NULL)
    g_error ("%s: %s", mmproj_path, lfm2_last_error ());
  return a;
}

/* silence 1 s, speech_4s, silence 1.5 s, 6 s of the long clip (from 12 s), silence 1 s */
static gfloat *
make_stream (gint64 * n_out)
{
  const gint64 n = RATE + n_speech + 3 * RATE / 2 + 6 * RATE + RATE;
  gfloat *x = g_new0 (gfloat, n);

  memcpy (x + RATE, speech, sizeof (gfloat) * n_speech);
  memcpy (x + RATE + n_speech + 3 * RATE / 2, speech_long + 12 * RATE,
      sizeof (gfloat) * 6 * RATE);
  *n_out = n;
  return x;
}


static GstHarness *
harness (const gchar * first, ...)
{
  GstElement *e = gst_element_factory_make ("lfm2audioenc", NULL);
  GstHarness *h;
  va_list args;

  fail_unless (e != NULL, "lfm2audioenc not found");
  g_object_set (e, "mmproj", mmproj_path, "n-threads", N_THREADS, NULL);
  if (first) {
    va_start (args, first);
    g_object_set_valist (G_OBJECT (e), first, args);
    va_end (args);
  }
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, S16_CAPS);
  return h;
}

GST_START_TEST (test_metadata)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2audioenc");
  const gchar *props[] = { "mmproj", "model", "n-threads", "frontend", "vad-threshold",
    "min-silence", "max-segment"
  };
  GstElement *e;

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Filter/Converter/Audio");
  e = gst_element_factory_create (f, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (props); i++) {
    GParamSpec *p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), props[i]);
    fail_unless (p != NULL, "no property %s", props[i]);
    fail_unless (p->flags & GST_PARAM_MUTABLE_READY);
  }
  gst_object_unref (e);
  gst_object_unref (f);
}

GST_END_TEST;

/* What src pushes, in order: buffers (kept) and GAP events. */
typedef struct {
  GMutex lock;
  GPtrArray *items;             /* GstBuffer, or GstEvent (GAP) */
} Log;

static GstPadProbeReturn
log_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Log *l = data;
  GstMiniObject *o = NULL;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER)
    o = GST_MINI_OBJECT (gst_buffer_ref (GST_PAD_PROBE_INFO_BUFFER (info)));
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_GAP)
    o = GST_MINI_OBJECT (gst_event_ref (GST_PAD_PROBE_INFO_EVENT (info)));
  if (o) {
    g_mutex_lock (&l->lock);
    g_ptr_array_add (l->items, o);
    g_mutex_unlock (&l->lock);
  }
  return GST_PAD_PROBE_OK;
}

/* Every utterance the library's detector finds is one buffer: its PTS and duration, a
 * flexible header of float32 n_embd × rows, and exactly the rows lfm2_audio_encode gives for
 * its samples; silence before each goes out as GAPs, the last utterance at EOS. */
static void
check_embeddings (enum lfm2_audio_frontend mode, const gchar * with_model)
{
  gint64 n;
  gfloat *x = make_stream (&n);
  lfm2_audio *a = load_audio (mode);
  const gint E = lfm2_audio_n_embd_out (a);
  GstHarness *h = harness ("frontend", (gint) mode, "model", with_model, NULL);
  lfm2_vad *vad = lfm2_vad_new (NULL);
  struct lfm2_vad_segment seg;
  GstCaps *caps;
  GstLfm2TensorsConfig cfg;
  guint n_utt = 0, n_gap = 0, k = 0;
  GstClockTime pos = 0;
  Log log;
  GstPad *src = gst_element_get_static_pad (h->element, "src");

  g_mutex_init (&log.lock);
  log.items = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_mini_object_unref);
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      log_probe, &log, NULL);
  gst_object_unref (src);

  /* the whole stream then EOS; the reference segments from the same samples */
  for (gint64 i = 0; i < n; i += 320)
    fail_unless_equals_int (gst_harness_push (h, audio_check_s16_buffer (x, i, MIN (320, n - i), 0)),
        GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (caps != NULL);
  fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
  fail_unless_equals_int (cfg.format, GST_LFM2_TENSOR_FORMAT_FLEXIBLE);
  fail_unless_equals_int (cfg.embedding_length, E);
  fail_unless_equals_string (cfg.model_id, with_model ? lfm2_model_id (model) : "");
  gst_caps_unref (caps);

  fail_unless (lfm2_vad_push (vad, x, n) >= 0);
  lfm2_vad_flush (vad);
  while (lfm2_vad_pop (vad, &seg)) {
    const gint64 rows = lfm2_audio_n_tokens (seg.n);
    gfloat *want = g_new (gfloat, rows * E);
    GstBuffer *b;
    GstMemory *mem;
    GstMapInfo map;
    GstLfm2TensorInfo info;
    gsize payload;

    fail_unless (lfm2_audio_encode (a, seg.pcm, seg.n, want, rows * E) == rows);
    /* GAPs before it, from where the stream had got up to at most its start */
    for (; k < log.items->len && GST_IS_EVENT (g_ptr_array_index (log.items, k)); k++) {
      GstClockTime ts, dur;
      gst_event_parse_gap (g_ptr_array_index (log.items, k), &ts, &dur);
      fail_unless_equals_uint64 (ts, pos);
      pos = ts + dur;
      n_gap++;
    }
    fail_unless (pos <= gst_util_uint64_scale_int (seg.start, GST_SECOND, RATE));
    fail_unless (k < log.items->len);
    b = g_ptr_array_index (log.items, k++);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b),
        gst_util_uint64_scale_int (seg.start, GST_SECOND, RATE));
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b),
        gst_util_uint64_scale_int (seg.end, GST_SECOND, RATE));
    fail_unless_equals_int (gst_buffer_n_memory (b), 1);
    mem = gst_buffer_peek_memory (b, 0);
    fail_unless (gst_memory_map (mem, &map, GST_MAP_READ));
    fail_unless (gst_lfm2_tensor_header_parse (map.data, map.size, &info, &payload, NULL));
    fail_unless_equals_int (info.type, GST_LFM2_TENSOR_FLOAT32);
    fail_unless_equals_int (info.rank, 2);
    fail_unless_equals_int (info.dims[0], E);
    fail_unless_equals_int (info.dims[1], rows);
    fail_unless (memcmp (map.data + GST_LFM2_TENSOR_HEADER_SIZE, want,
            sizeof (gfloat) * rows * E) == 0, "utterance %u: embeddings differ", n_utt);
    gst_memory_unmap (mem, &map);
    g_free (want);
    pos = GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b);
    n_utt++;
  }
  fail_unless_equals_int (n_utt, 2);
  fail_unless (n_gap >= 2);
  /* after the last utterance: GAPs to the end of the input */
  fail_unless (k < log.items->len);
  for (; k < log.items->len; k++) {
    GstClockTime ts, dur;
    fail_unless (GST_IS_EVENT (g_ptr_array_index (log.items, k)));
    gst_event_parse_gap (g_ptr_array_index (log.items, k), &ts, &dur);
    fail_unless_equals_uint64 (ts, pos);
    pos = ts + dur;
  }
  fail_unless_equals_uint64 (pos, gst_util_uint64_scale_int (n, GST_SECOND, RATE));
  gst_harness_teardown (h);
  g_ptr_array_unref (log.items);
  g_mutex_clear (&log.lock);
  lfm2_vad_free (vad);
  lfm2_audio_free (a);
  g_free (x);
}

GST_START_TEST (test_embeddings)
{
  check_embeddings (LFM2_AUDIO_FRONTEND_OFFICIAL, NULL);
  check_embeddings (LFM2_AUDIO_FRONTEND_LLAMACPP, model_path);
}

GST_END_TEST;

/* With the mmproj loaded, the src pad answers CAPS queries with the width: a decoder of
 * another width refuses before any data flows. */
GST_START_TEST (test_caps_query)
{
  GstHarness *h = harness ("model", model_path, NULL);
  GstCaps *caps = gst_pad_peer_query_caps (h->sinkpad, NULL);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  gint w;

  fail_unless (gst_structure_has_name (s, "other/tensors"));
  fail_unless_equals_string (gst_structure_get_string (s, "format"), "flexible");
  fail_unless (gst_structure_get_int (s, "embedding-length", &w));
  fail_unless_equals_int (w, 128);
  fail_unless_equals_string (gst_structure_get_string (s, "model-id"),
      lfm2_model_id (model));
  gst_caps_unref (caps);
  gst_harness_teardown (h);
}

GST_END_TEST;

static void
check_start_error (const gchar * mmproj, const gchar * text, const gchar * name)
{
  GstElement *e = gst_element_factory_make ("lfm2audioenc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  g_object_set (e, "mmproj", mmproj, "model", text, NULL);
  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error for %s", name);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (err->domain == GST_RESOURCE_ERROR);
  fail_unless (strstr (err->message, name) != NULL, "\"%s\" does not name %s", err->message,
      name);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_START_TEST (test_errors)
{
  gchar *wide = g_build_filename (data_dir, "..", "text", "small-f32", "lfm2-small-f32.gguf",
      NULL);
  gchar *tmpdir = g_dir_make_tmp ("lfm2audioenc-XXXXXX", NULL);
  gchar *cut = g_build_filename (tmpdir, "cut-mmproj.gguf", NULL);
  gchar *contents;
  gsize len;

  check_start_error (NULL, NULL, "mmproj");
  check_start_error (mmproj_path, wide, "lfm2-small-f32");
  check_start_error (model_path, NULL, "lfm2-tiny-f32");
  fail_unless (g_file_get_contents (mmproj_path, &contents, &len, NULL));
  fail_unless (g_file_set_contents (cut, contents, len - 100, NULL));
  check_start_error (cut, NULL, "cut-mmproj");
  g_unlink (cut);
  g_rmdir (tmpdir);
  g_free (contents);
  g_free (cut);
  g_free (tmpdir);
  g_free (wide);
}

GST_END_TEST;

/* The text a pipeline writes, one entry "<pts>+<dur>:<text>" per buffer, after EOS. */
static GPtrArray *
run_pipeline (const gchar * middle, const gfloat * x, gint64 n)
{
  gchar *desc = g_strdup_printf ("appsrc name=src format=time caps=\"" S16_CAPS "\" ! %s ! "
      "appsink name=out sync=false", middle);
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  GstElement *out = gst_bin_get_by_name (GST_BIN (pipe), "out");
  GPtrArray *texts = g_ptr_array_new_with_free_func (g_free);
  GstSample *sample;

  fail_unless (pipe != NULL, "%s", desc);
  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  for (gint64 i = 0; i < n; i += 1600)
    fail_unless_equals_int (gst_app_src_push_buffer (GST_APP_SRC (src), audio_check_s16_buffer (x, i,
                MIN (1600, n - i), 0)), GST_FLOW_OK);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (out))) != NULL) {
    GstBuffer *b = gst_sample_get_buffer (sample);
    GstMapInfo map;
    GString *t = g_string_new (NULL);
    gboolean space = TRUE;
    gchar *valid;

    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    valid = g_utf8_make_valid ((const gchar *) map.data, map.size);
    /* valid UTF-8 on one line, as lfm2asr writes it */
    for (const guchar * c = (const guchar *) valid; *c; c++) {
      if (*c <= ' ' || *c == 0x7f) {
        if (!space)
          g_string_append_c (t, ' ');
        space = TRUE;
      } else {
        g_string_append_c (t, *c);
        space = FALSE;
      }
    }
    g_free (valid);
    if (t->len && t->str[t->len - 1] == ' ')
      g_string_truncate (t, t->len - 1);
    g_ptr_array_add (texts, g_strdup_printf ("%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT ":%s",
            (guint64) GST_BUFFER_PTS (b), (guint64) GST_BUFFER_DURATION (b), t->str));
    g_string_free (t, TRUE);
    gst_buffer_unmap (b, &map);
    gst_sample_unref (sample);
  }
  fail_unless (gst_app_sink_is_eos (GST_APP_SINK (out)));
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (out);
  gst_object_unref (pipe);
  g_free (desc);
  return texts;
}

GST_START_TEST (test_audioenc_lfm2text_equals_lfm2asr)
{
  gint64 n;
  gfloat *x = make_stream (&n);
  const gchar *gen = "n-threads=2 max-tokens=12 repeat-penalty=2.0";
  gchar *enc_desc = g_strdup_printf ("lfm2audioenc mmproj=\"%s\" model=\"%s\" n-threads=2 ! "
      "lfm2text model=\"%s\" system-prompt=\"Perform ASR.\" temperature=0 %s", mmproj_path,
      model_path, model_path, gen);
  gchar *asr_desc = g_strdup_printf ("lfm2asr mmproj=\"%s\" model=\"%s\" step=0 %s",
      mmproj_path, model_path, gen);
  GPtrArray *a = run_pipeline (enc_desc, x, n), *b = run_pipeline (asr_desc, x, n);

  fail_unless_equals_int (a->len, 2);
  fail_unless_equals_int (b->len, 2);
  for (guint i = 0; i < a->len; i++) {
    const gchar *t = strchr (g_ptr_array_index (a, i), ':');
    fail_unless (t != NULL && t[1] != '\0', "empty transcript");
    fail_unless_equals_string (g_ptr_array_index (a, i), g_ptr_array_index (b, i));
  }
  fail_if (g_str_equal (strchr (g_ptr_array_index (a, 0), ':'),
          strchr (g_ptr_array_index (a, 1), ':')), "the audio made no difference");
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
  g_free (enc_desc);
  g_free (asr_desc);
  g_free (x);
}

GST_END_TEST;


static Suite *
lfm2audioenc_suite (void)
{
  Suite *s = suite_create ("lfm2audioenc");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);
  data_dir = g_build_filename (root, "audio", NULL);
  model_path = g_build_filename (root, "text", "tiny-f32", "lfm2-tiny-f32.gguf", NULL);
  mmproj_path = g_build_filename (data_dir, "lfm2a-tiny-mmproj-f32.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());
  lfm2_audio_quiet_ffmpeg_log ();
  speech = audio_check_load_clip ("speech_4s.wav", &n_speech);
  speech_long = audio_check_load_clip ("speech_long_35s.wav", &n_speech_long);
  audio_check_load_plugins ();

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata);
  tcase_add_test (tc, test_embeddings);
  tcase_add_test (tc, test_caps_query);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_audioenc_lfm2text_equals_lfm2asr);
  return s;
}

GST_CHECK_MAIN (lfm2audioenc);
