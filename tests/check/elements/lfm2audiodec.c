/* tests/check/elements/lfm2audiodec.c — the lfm2audiodec element from the plugin module, on a
 * generated LFM2-Audio set (random weights): codes → samples equal to the library's own run
 * for any batching (static 8:N, one frame per buffer, flexible buffers), timestamps from the
 * first frame's PTS, the end-of-audio frame, EOS and GAP ending an utterance, late frames,
 * codes out of range (an error naming the frame and codebook; nothing decoded), bad tensors,
 * files refused at READY→PAUSED, and `lfm2tts ! lfm2audiodec` giving exactly the audio
 * lfm2tts gives itself (seeded sampling). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <string.h>

#include "gstlfm2tensors.h"
#include "lfm2-speech.h"

#define F32_CAPS "audio/x-raw, format=(string)F32LE, rate=(int)24000, channels=(int)1, " \
  "layout=(string)interleaved"
#define K 8

static SpeechRef ref;           /* greedy "Hello there.": frames and samples */

#define make_dec(...) speech_element_new ("lfm2audiodec", __VA_ARGS__)
#define harness_done speech_harness_done

static GstHarness *
dec_harness (const gchar * in_caps, GstBus ** bus)
{
  return speech_harness (make_dec (NULL), in_caps, F32_CAPS, bus);
}

/* n frames of codes in one buffer (flexible: with the 128-byte header). */
static GstBuffer *
codes_buffer (const gint32 * codes, gint n, gboolean flexible, GstClockTime pts)
{
  GstLfm2TensorInfo info;
  guint32 dims[2] = { K, (guint32) n };
  const gsize hsize = flexible ? GST_LFM2_TENSOR_HEADER_SIZE : 0;
  GstBuffer *b = gst_buffer_new_allocate (NULL, hsize + (gsize) n * K * 4, NULL);
  GstMapInfo map;

  gst_lfm2_tensor_info_set (&info, GST_LFM2_TENSOR_INT32, 2, dims);
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  if (flexible)
    gst_lfm2_tensor_header_write (&info, GST_LFM2_TENSOR_FORMAT_FLEXIBLE,
        GST_LFM2_TENSOR_MEDIA_TENSOR, map.data);
  memcpy (map.data + hsize, codes, (gsize) n * K * 4);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = n * 80 * GST_MSECOND;
  return b;
}

static void
check_samples_equal (const SpeechCapture * c, const gfloat * x, gint64 n)
{
  fail_unless_equals_int64 ((gint64) c->x->len, n);
  for (gint64 i = 0; i < n; i++)
    if (g_array_index (c->x, gfloat, i) != x[i])
      fail ("sample %" G_GINT64_FORMAT ": %.9g, the library gives %.9g", i,
          g_array_index (c->x, gfloat, i), x[i]);
}

static const gint32 eoa_frame[K] = { 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048 };

GST_START_TEST (test_metadata)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2audiodec");

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Codec/Decoder/Audio");
  fail_unless_equals_int (gst_element_factory_get_num_pad_templates (f), 2);
  gst_object_unref (f);
}

GST_END_TEST;

/* The reference frames pushed `per` at a time, then the end frame. */
static void
decode_batched (const gchar * caps, gint per, gboolean flexible)
{
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;
  gint f = 0;

  h = dec_harness (caps, &bus);
  while (f < ref.n_frames) {
    gint n = MIN (per, ref.n_frames - f);
    fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes + f * K, n,
                flexible, GST_SECOND + f * 80 * GST_MSECOND)), GST_FLOW_OK);
    f += n;
  }
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (eoa_frame, 1, flexible,
              GST_SECOND + f * 80 * GST_MSECOND)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal (&c, ref.x, ref.n);
  speech_capture_check_continuous (&c, GST_SECOND, FALSE);
  fail_unless_equals_int (c.n_discont, 1);
  speech_capture_clear (&c);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  harness_done (h, bus);
}

GST_START_TEST (test_decode_equals_library)
{
  /* one frame per buffer (what lfm2tts pushes), flexible buffers of 7 frames: the same
   * samples (the whole utterance in one buffer: test_decode_whole_buffer_and_eos) */
  decode_batched ("other/tensors, format=(string)static, num_tensors=(int)1, "
      "types=(string)int32, dimensions=(string)8:1, framerate=(fraction)25/2", 1, FALSE);
  decode_batched ("other/tensors, format=(string)flexible, framerate=(fraction)0/1", 7, TRUE);
}

GST_END_TEST;

GST_START_TEST (test_decode_whole_buffer_and_eos)
{
  gchar *caps = g_strdup_printf ("other/tensors, format=(string)static, num_tensors=(int)1, "
      "types=(string)int32, dimensions=(string)8:%d, framerate=(fraction)0/1",
      ref.n_frames);
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;

  /* all frames in one buffer, no end frame: EOS ends the utterance (its last 480 samples) */
  h = dec_harness (caps, &bus);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, ref.n_frames, FALSE,
              0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal (&c, ref.x, ref.n);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, c.n_buffers - 1), 480);
  speech_capture_check_continuous (&c, 0, FALSE);
  speech_capture_clear (&c);
  harness_done (h, bus);
  g_free (caps);
}

GST_END_TEST;

GST_START_TEST (test_utterances_and_gaps)
{
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;
  GstEvent *ev;
  gint gaps = 0;

  h = dec_harness ("other/tensors, format=(string)flexible, framerate=(fraction)0/1", &bus);
  /* utterance 1 at 0 s (4 frames, end frame), a GAP, utterance 2 at 5 s ended by EOS */
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, 4, TRUE, 0)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (eoa_frame, 1, TRUE,
              320 * GST_MSECOND)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_gap (GST_SECOND, GST_SECOND)));
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, 3, TRUE,
              5 * GST_SECOND)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  /* one buffer per push: 4 frames (1440 + 3·1920), the end (480); 3 frames (1440 + 2·1920)
   * starting again at their PTS, the end at EOS (480) */
  fail_unless_equals_int (c.n_buffers, 4);
  fail_unless_equals_int64 ((gint64) c.x->len, 7 * 1920);
  fail_unless_equals_uint64 (g_array_index (c.pts, GstClockTime, 0), 0);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 0), 1440 + 3 * 1920);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 1), 480);
  fail_unless_equals_uint64 (g_array_index (c.pts, GstClockTime, 2), 5 * GST_SECOND);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 2), 1440 + 2 * 1920);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 3), 480);
  fail_unless_equals_int (c.n_discont, 2);
  speech_capture_clear (&c);
  while ((ev = gst_harness_try_pull_event (h)) != NULL) {
    gaps += GST_EVENT_TYPE (ev) == GST_EVENT_GAP;
    gst_event_unref (ev);
  }
  fail_unless_equals_int (gaps, 1);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_late_frames_shift)
{
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;

  /* frames 0–1 on time, frames 2–3 arrive 300 ms later than their place: the rest of the
   * utterance moves with them (the samples stay the library's) */
  h = dec_harness ("other/tensors, format=(string)flexible, framerate=(fraction)0/1", &bus);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, 2, TRUE, 0)),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes + 2 * K, 2, TRUE,
              460 * GST_MSECOND)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  fail_unless_equals_int (c.n_buffers, 2);
  fail_unless_equals_uint64 (g_array_index (c.pts, GstClockTime, 0), 0);
  /* samples 3360 … (after 1440 + 1920) of the utterance now start 300 ms later */
  fail_unless_equals_uint64 (g_array_index (c.pts, GstClockTime, 1),
      300 * GST_MSECOND + 3360 * GST_SECOND / 24000);
  fail_unless_equals_int (c.n_discont, 2);
  speech_capture_clear (&c);
  harness_done (h, bus);
}

GST_END_TEST;

/* A buffer with one bad code is refused whole: an error naming frame and codebook. */
static void
check_bad_code (gint frame, gint k, gint32 value)
{
  gint32 *codes = g_memdup2 (ref.codes, 4 * K * sizeof (gint32));
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;
  GstMessage *m;
  GError *err;
  gchar *want = g_strdup_printf ("frame %d of the buffer", frame);
  gchar *want_k = g_strdup_printf ("codebook %d is %d", k, value);

  codes[frame * K + k] = value;
  h = dec_harness ("other/tensors, format=(string)flexible, framerate=(fraction)0/1", &bus);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (codes, 4, TRUE, 0)),
      GST_FLOW_ERROR);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (g_error_matches (err, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE));
  fail_unless (strstr (err->message, want) && strstr (err->message, want_k), "%s",
      err->message);
  g_error_free (err);
  gst_message_unref (m);
  /* nothing of it was decoded: the good codes after it give the library's samples */
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, ref.n_frames, TRUE,
              0)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, codes_buffer (eoa_frame, 1, TRUE, 0)),
      GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal (&c, ref.x, ref.n);
  speech_capture_clear (&c);
  harness_done (h, bus);
  g_free (codes);
  g_free (want);
  g_free (want_k);
}

GST_START_TEST (test_codes_out_of_range)
{
  check_bad_code (2, 3, 2048);  /* the end code, but not in codebook 0 */
  check_bad_code (0, 0, -1);
  check_bad_code (3, 7, 5000);
  check_bad_code (1, 5, G_MININT32);
}

GST_END_TEST;

GST_START_TEST (test_bad_tensors)
{
  const gchar *refused[] = {
    "other/tensors, format=(string)static, num_tensors=(int)1, types=(string)float32, "
        "dimensions=(string)8:1",
    "other/tensors, format=(string)static, num_tensors=(int)1, types=(string)int32, "
        "dimensions=(string)4:1",
    "other/tensors, format=(string)static, num_tensors=(int)2, types=(string)\"int32,int32\", "
        "dimensions=(string)\"8:1,8:1\"",
  };
  GstHarness *h;
  GstBus *bus;
  GstMessage *m;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++) {
    h = dec_harness (refused[i], &bus);
    fail_unless_equals_int (gst_harness_push (h, codes_buffer (ref.codes, 1, FALSE, 0)),
        GST_FLOW_NOT_NEGOTIATED);
    harness_done (h, bus);
  }
  /* flexible buffers: a float tensor, 4 codebooks, a broken header, a short memory */
  h = dec_harness ("other/tensors, format=(string)flexible, framerate=(fraction)0/1", &bus);
  {
    GstBuffer *b = codes_buffer (ref.codes, 2, TRUE, 0);
    GstMapInfo map;

    gst_buffer_map (b, &map, GST_MAP_WRITE);
    ((guint32 *) map.data)[0] = 0x12345678;     /* magic */
    gst_buffer_unmap (b, &map);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_ERROR);
    b = codes_buffer (ref.codes, 2, TRUE, 0);
    gst_buffer_map (b, &map, GST_MAP_WRITE);
    ((guint32 *) map.data)[3] = 4;      /* 4:2 */
    gst_buffer_unmap (b, &map);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_ERROR);
    b = codes_buffer (ref.codes, 2, TRUE, 0);
    gst_buffer_map (b, &map, GST_MAP_WRITE);
    ((guint32 *) map.data)[4] = 3000;   /* more frames than the memory holds */
    gst_buffer_unmap (b, &map);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_ERROR);
  }
  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) != NULL) {
    GError *err;
    gst_message_parse_error (m, &err, NULL);
    fail_unless (g_error_matches (err, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT), "%s",
        err->message);
    g_error_free (err);
    gst_message_unref (m);
  }
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  harness_done (h, bus);
}

GST_END_TEST;

static void
check_start_error (const gchar * prop, const gchar * value, gint code, const gchar * n1,
    const gchar * n2)
{
  speech_check_start_error (make_dec (prop, value, NULL), code, n1, n2);
}

GST_START_TEST (test_file_errors)
{
  const gchar *emb = "emb.emb.weight";
  gchar *no_emb = speech_vocoder_variant ("no-emb.gguf", emb, NULL, 0, 0);
  gchar *bad_emb = speech_vocoder_variant ("bad-emb.gguf", NULL, emb, 0, 100);
  gchar *narrow = speech_vocoder_variant ("emb-16.gguf", NULL, emb, 16, 16384);

  check_start_error ("vocoder", no_emb, GST_RESOURCE_ERROR_OPEN_READ, "/no-emb.gguf", emb);
  check_start_error ("vocoder", bad_emb, GST_RESOURCE_ERROR_OPEN_READ, "/bad-emb.gguf", emb);
  check_start_error ("tokenizer", NULL, GST_RESOURCE_ERROR_NOT_FOUND, "tokenizer property",
      NULL);
  /* a 16-wide code embedding for the 32-wide detokenizer: both files named */
  check_start_error ("vocoder", narrow, GST_RESOURCE_ERROR_SETTINGS, "/emb-16.gguf",
      "/tokenizer-audio-tiny.gguf");
  g_free (no_emb);
  g_free (bad_emb);
  g_free (narrow);
}

GST_END_TEST;

/* ---- lfm2tts ! lfm2audiodec = lfm2tts --------------------------------------------------- */

/* Runs `appsrc ! lfm2tts … [! lfm2audiodec] ! appsink` on two texts; returns the samples and
 * buffer timestamps. */
static void
run_pipeline (gboolean split, SpeechCapture * c)
{
  GstElement *pipe, *src, *sink;
  GstSample *s;
  gchar *full;

  if (split)
    full = g_strdup_printf ("appsrc name=src format=time caps=\"text/x-raw,format=utf8\" ! "
        "lfm2tts model=\"%s\" vocoder=\"%s\" n-threads=2 temperature=0.8 seed=5 "
        "max-tokens=14 ! queue ! lfm2audiodec vocoder=\"%s\" tokenizer=\"%s\" n-threads=2 ! "
        "appsink name=sink sync=false caps=\"" F32_CAPS "\"", speech.model, speech.vocoder,
        speech.vocoder, speech.tokenizer);
  else
    full = g_strdup_printf ("appsrc name=src format=time caps=\"text/x-raw,format=utf8\" ! "
        "lfm2tts model=\"%s\" vocoder=\"%s\" tokenizer=\"%s\" n-threads=2 temperature=0.8 "
        "seed=5 max-tokens=14 ! appsink name=sink sync=false caps=\"" F32_CAPS "\"",
        speech.model, speech.vocoder, speech.tokenizer);
  pipe = gst_parse_launch (full, NULL);
  fail_unless (pipe != NULL, "%s", full);
  src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  for (gint i = 0; i < 2; i++) {
    GstBuffer *b = gst_buffer_new_memdup (i ? "Second one." : "First one.", i ? 11 : 10);
    GST_BUFFER_PTS (b) = i * 3 * GST_SECOND;
    gst_app_src_push_buffer (GST_APP_SRC (src), b);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  speech_capture_init (c);
  while ((s = gst_app_sink_pull_sample (GST_APP_SINK (sink))) != NULL) {
    speech_capture_append (c, gst_sample_get_buffer (s),
        gst_caps_get_structure (gst_sample_get_caps (s), 0));
    gst_sample_unref (s);
  }
  {
    GstBus *bus = gst_element_get_bus (pipe);
    fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL, "pipeline error");
    gst_object_unref (bus);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipe);
  g_free (full);
}

GST_START_TEST (test_tts_codes_then_decoder_equals_tts)
{
  SpeechCapture one, two;

  run_pipeline (FALSE, &one);
  run_pipeline (TRUE, &two);
  fail_unless (one.x->len > 2 * 1920);
  fail_unless_equals_int (one.x->len, two.x->len);
  fail_unless (memcmp (one.x->data, two.x->data, one.x->len * sizeof (gfloat)) == 0,
      "the decoder's samples differ from lfm2tts's");
  fail_unless_equals_int (one.n_buffers, two.n_buffers);
  for (guint i = 0; i < one.n_buffers; i++) {
    fail_unless_equals_uint64 (g_array_index (one.pts, GstClockTime, i),
        g_array_index (two.pts, GstClockTime, i));
    fail_unless_equals_uint64 (g_array_index (one.dur, GstClockTime, i),
        g_array_index (two.dur, GstClockTime, i));
  }
  speech_capture_clear (&one);
  speech_capture_clear (&two);
}

GST_END_TEST;

static Suite *
lfm2audiodec_suite (void)
{
  Suite *s = suite_create ("lfm2audiodec");
  TCase *tc = tcase_create ("general");
  SpeechRefParams rp;
  GError *err = NULL;

  speech_models_setup ("lfm2audiodec");
  rp = speech_ref_params ("Hello there.");
  speech_ref_run (&ref, &rp);
  g_assert (ref.n_frames > 8 && ref.n == (gint64) ref.n_frames * 1920);
  for (guint i = 0; i < 2; i++) {
    const gchar *names[2] = { "libgstcoreelements.so", "libgstapp.so" };
    gchar *file = g_build_filename (GST_SYSTEM_PLUGINS_DIR, names[i], NULL);
    GstPlugin *p = gst_plugin_load_file (file, &err);

    if (p == NULL)
      g_error ("%s: %s", file, err->message);
    gst_object_unref (p);
    g_free (file);
  }
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata);
  tcase_add_test (tc, test_decode_equals_library);
  tcase_add_test (tc, test_decode_whole_buffer_and_eos);
  tcase_add_test (tc, test_utterances_and_gaps);
  tcase_add_test (tc, test_late_frames_shift);
  tcase_add_test (tc, test_codes_out_of_range);
  tcase_add_test (tc, test_bad_tensors);
  tcase_add_test (tc, test_file_errors);
  tcase_add_test (tc, test_tts_codes_then_decoder_equals_tts);
  return s;
}

GST_CHECK_MAIN (lfm2audiodec);
