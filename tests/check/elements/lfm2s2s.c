/* tests/check/elements/lfm2s2s.c — the lfm2s2s element from the plugin module, on a generated
 * LFM2-Audio set (random weights: backbone, mmproj, vocoder, tokenizer): every reply equals the
 * library's own interleaved turn on the utterance's encoder rows (the library's VAD and
 * encoder, lfm2_tts straight), starting where its utterance ends or after the previous reply;
 * the transcript equals the engine's greedy "Perform ASR." on the same rows; the prompt
 * property; two utterances; silence (no reply, GAPs); another rate and channel count; EOS in
 * the middle of speech; a flush in the middle of a reply; LATENCY; files refused at
 * READY→PAUSED. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <string.h>

#include "lfm2-ref.h"
#include "lfm2-speech.h"

#define F32_OUT "audio/x-raw, format=(string)F32LE, rate=(int)24000, channels=(int)1, " \
  "layout=(string)interleaved"
#define F32_IN "audio/x-raw, format=(string)F32LE, rate=(int)16000, channels=(int)1, " \
  "layout=(string)interleaved"

static gfloat *speech4;         /* speech_4s.wav at 16 kHz */
static gint64 n_speech4;

#define make_s2s(...) speech_element_new ("lfm2s2s", __VA_ARGS__)
#define harness_done speech_harness_done

static GstHarness *
s2s_harness (GstElement * e, const gchar * in_caps, GstBus ** bus)
{
  return speech_harness (e, in_caps, F32_OUT, bus);
}

/* Pushes 16 kHz mono float samples in 100 ms buffers from `t0`. */
static void
push_pcm (GstHarness * h, const gfloat * x, gint64 n, GstClockTime t0)
{
  for (gint64 i = 0; i < n; i += 1600) {
    const gint64 k = MIN (1600, n - i);
    GstBuffer *b = gst_buffer_new_memdup (x + i, (gsize) k * sizeof (gfloat));

    GST_BUFFER_PTS (b) = t0 + gst_util_uint64_scale_int (i, GST_SECOND, 16000);
    GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (k, GST_SECOND, 16000);
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
}

/* Waits for EOS on the harness's sink and counts the GAPs before it. */
static gint
wait_eos (GstHarness * h)
{
  gint gaps = 0;

  for (;;) {
    GstEvent *ev = gst_harness_pull_event (h);

    fail_unless (ev != NULL, "no EOS");
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP)
      gaps++;
    if (GST_EVENT_TYPE (ev) == GST_EVENT_EOS) {
      gst_event_unref (ev);
      return gaps;
    }
    gst_event_unref (ev);
  }
}

/* The library's reply to an utterance (interleaved, the element's sampling defaults). */
static void
ref_reply (SpeechRef * r, const SpeechUtterance * u, const gchar * prompt)
{
  SpeechRefParams p = speech_ref_params (NULL);

  p.mode = LFM2_TTS_INTERLEAVED;
  p.temperature = 0.8f;
  p.top_k = 4;
  p.embd = u->embd;
  p.n_rows = u->n_rows;
  p.prompt = prompt;
  speech_ref_run (r, &p);
}

/* The engine's transcript of the rows: greedy after "Perform ASR.". */
static gchar *
ref_transcript (const SpeechUtterance * u)
{
  RefParams rp = { 2, 256, lfm2_sampler_default_params () };
  RefPart parts[3] = {
    {"<|im_start|>system\nPerform ASR.<|im_end|>\n<|im_start|>user\n", NULL, 0},
    {NULL, u->embd, u->n_rows},
    {"<|im_end|>\n<|im_start|>assistant\n", NULL, 0},
  };

  rp.sampling.temperature = 0.0f;
  rp.sampling.repeat_penalty = 1.0f;
  return ref_generate (speech.m, parts, 3, &rp, NULL, NULL);
}

static void
check_samples_equal (const gfloat * got, gint64 n_got, const gfloat * x, gint64 n)
{
  fail_unless_equals_int64 (n_got, n);
  for (gint64 i = 0; i < n; i++)
    if (got[i] != x[i])
      fail ("sample %" G_GINT64_FORMAT ": %.9g, the library gives %.9g", i, got[i], x[i]);
}

static GstClockTime
at16k (gint64 s)
{
  return gst_util_uint64_scale_int ((guint64) s, GST_SECOND, 16000);
}

static GstClockTime
at24k (gint64 s)
{
  return gst_util_uint64_scale_int ((guint64) s, GST_SECOND, 24000);
}

GST_START_TEST (test_metadata_and_properties)
{
  GstElement *e = gst_element_factory_make ("lfm2s2s", NULL);
  GObjectClass *oc;
  const gchar *props[] = { "model", "mmproj", "vocoder", "tokenizer", "prompt", "transcribe",
    "latency", "frontend", "vad-threshold", "min-silence", "max-segment", "system-prompt",
    "max-tokens", "temperature", "top-k", "seed", "n-threads", "context-length"
  };

  fail_unless (e != NULL);
  oc = G_OBJECT_GET_CLASS (e);
  for (guint i = 0; i < G_N_ELEMENTS (props); i++)
    fail_unless (g_object_class_find_property (oc, props[i]) != NULL, "no %s", props[i]);
  fail_unless (g_object_class_find_property (oc, "min-p") == NULL);
  /* llama.cpp's interleaved sampling */
  fail_unless (G_PARAM_SPEC_FLOAT (g_object_class_find_property (oc,
              "temperature"))->default_value == 0.8f);
  fail_unless_equals_int (G_PARAM_SPEC_INT (g_object_class_find_property (oc,
              "top-k"))->default_value, 4);
  fail_unless (G_PARAM_SPEC_BOOLEAN (g_object_class_find_property (oc,
              "transcribe"))->default_value);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_reply_equals_library)
{
  SpeechUtterance *utts;
  gint n_utts = speech_utterances (speech4, n_speech4, 500, &utts);
  GstHarness *h;
  GstBus *bus;
  SpeechCapture c;
  SpeechRef ref;
  GstMessage *m;
  gchar *heard;
  guint64 u64;

  fail_unless_equals_int (n_utts, 1);
  ref_reply (&ref, &utts[0], NULL);
  heard = ref_transcript (&utts[0]);
  fail_unless (ref.n_frames > 0 && ref.n == (gint64) ref.n_frames * 1920);

  h = s2s_harness (make_s2s (NULL), F32_IN, &bus);
  push_pcm (h, speech4, n_speech4, 0);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  /* the library's samples, from the end of the utterance, continuous */
  check_samples_equal ((gfloat *) c.x->data, c.x->len, ref.x, ref.n);
  speech_capture_check_continuous (&c, at16k (utts[0].end), FALSE);
  fail_unless (c.n_buffers > 2, "the reply came in one piece");

  /* the user's text, then the reply's */
  m = speech_pop_message (bus, "lfm2s2s/transcript");
  fail_unless (m != NULL, "no transcript");
  fail_unless_equals_string (gst_structure_get_string (gst_message_get_structure (m), "text"),
      heard);
  gst_structure_get_uint64 (gst_message_get_structure (m), "start", &u64);
  fail_unless_equals_uint64 (u64, at16k (utts[0].start));
  gst_message_unref (m);
  m = speech_pop_message (bus, "lfm2s2s/reply");
  fail_unless (m != NULL, "no reply message");
  {
    const GstStructure *s = gst_message_get_structure (m);
    gint frames;
    gdouble first_ms;

    fail_unless_equals_string (gst_structure_get_string (s, "text"), ref.text->str);
    gst_structure_get_uint64 (s, "start", &u64);
    fail_unless_equals_uint64 (u64, at16k (utts[0].end));
    gst_structure_get_uint64 (s, "duration", &u64);
    fail_unless_equals_uint64 (u64, at24k (ref.n));
    gst_structure_get_int (s, "frames", &frames);
    fail_unless_equals_int (frames, ref.n_frames);
    gst_structure_get_double (s, "first-audio-ms", &first_ms);
    fail_unless (first_ms > 0.0);
  }
  gst_message_unref (m);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  g_free (heard);
  g_free (utts[0].embd);
  g_free (utts);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_two_utterances_and_prompt)
{
  /* speech, 1.5 s of silence, speech, 0.5 s of silence; "Translate to French:" before it */
  const gint64 gap = 24000, n = 2 * n_speech4 + gap + 8000;
  gfloat *x = g_new0 (gfloat, n);
  SpeechUtterance *utts;
  gint n_utts;
  SpeechRef ref[2];
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;
  GstClockTime second_at;
  gint64 n0;

  memcpy (x, speech4, n_speech4 * sizeof (gfloat));
  memcpy (x + n_speech4 + gap, speech4, n_speech4 * sizeof (gfloat));
  n_utts = speech_utterances (x, n, 500, &utts);
  fail_unless_equals_int (n_utts, 2);
  for (gint i = 0; i < 2; i++)
    ref_reply (&ref[i], &utts[i], "Translate to French:");

  h = s2s_harness (make_s2s ("prompt", "Translate to French:", "transcribe", FALSE, NULL),
      F32_IN, &bus);
  push_pcm (h, x, n, 0);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  fail_unless_equals_int64 ((gint64) c.x->len, ref[0].n + ref[1].n);
  check_samples_equal ((gfloat *) c.x->data, ref[0].n, ref[0].x, ref[0].n);
  check_samples_equal ((gfloat *) c.x->data + ref[0].n, ref[1].n, ref[1].x, ref[1].n);
  /* the second reply at the end of its utterance, or after the first reply */
  second_at = MAX (at16k (utts[0].end) + at24k (ref[0].n), at16k (utts[1].end));
  n0 = 0;
  for (guint i = 0; i < c.n_buffers; i++) {
    if (n0 == ref[0].n) {
      fail_unless_equals_uint64 (g_array_index (c.pts, GstClockTime, i), second_at);
      break;
    }
    n0 += g_array_index (c.n, gint64, i);
  }
  fail_unless_equals_int64 (n0, ref[0].n);
  /* no transcript without `transcribe` */
  fail_unless (speech_pop_message (bus, "lfm2s2s/transcript") == NULL);
  speech_capture_clear (&c);
  for (gint i = 0; i < 2; i++) {
    speech_ref_clear (&ref[i]);
    g_free (utts[i].embd);
  }
  g_free (utts);
  g_free (x);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_silence_and_other_formats)
{
  GstHarness *h;
  GstBus *bus;
  SpeechCapture c;
  gint gaps;

  /* 3 s of silence: no reply, no error, GAPs up to the end */
  {
    gfloat *zeros = g_new0 (gfloat, 48000);
    h = s2s_harness (make_s2s (NULL), F32_IN, &bus);
    push_pcm (h, zeros, 48000, 0);
    fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
    gaps = wait_eos (h);
    fail_unless (gaps > 0);
    fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
    fail_unless (speech_pop_message (bus, "lfm2s2s/reply") == NULL);
    fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
    harness_done (h, bus);
    g_free (zeros);
  }
  /* 44.1 kHz stereo S16: converted inside, answered */
  {
    const gint64 n = n_speech4 * 44100 / 16000;
    gint16 *s = g_new (gint16, 2 * n);

    for (gint64 i = 0; i < n; i++)
      s[2 * i] = s[2 * i + 1] = (gint16) (32767.0f * speech4[i * 16000 / 44100]);
    h = s2s_harness (make_s2s ("transcribe", FALSE, NULL), "audio/x-raw, "
        "format=(string)S16LE, rate=(int)44100, channels=(int)2, layout=(string)interleaved",
        &bus);
    for (gint64 i = 0; i < n; i += 4410) {
      const gint64 k = MIN (4410, n - i);
      GstBuffer *b = gst_buffer_new_memdup (s + 2 * i, (gsize) k * 4);
      GST_BUFFER_PTS (b) = gst_util_uint64_scale_int (i, GST_SECOND, 44100);
      fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
    }
    fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
    wait_eos (h);
    speech_capture_init (&c);
    speech_capture_pull (h, &c);
    fail_unless (c.x->len > 0 && c.x->len % 1920 == 0, "%u samples", c.x->len);
    /* it starts about where the speech ends (4 s) */
    fail_unless (g_array_index (c.pts, GstClockTime, 0) > 3 * GST_SECOND
        && g_array_index (c.pts, GstClockTime, 0) < 5 * GST_SECOND);
    speech_capture_clear (&c);
    fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
    harness_done (h, bus);
    g_free (s);
  }
}

GST_END_TEST;

GST_START_TEST (test_flush_mid_reply)
{
  SpeechUtterance *utts;
  gint n_utts = speech_utterances (speech4, n_speech4, 500, &utts);
  GstHarness *h;
  GstBus *bus;
  GstBuffer *b;
  SpeechCapture c;
  SpeechRef ref;
  GstSegment seg;

  fail_unless_equals_int (n_utts, 1);
  ref_reply (&ref, &utts[0], NULL);
  /* a reply that would be long: the flush stops it */
  h = s2s_harness (make_s2s ("transcribe", FALSE, NULL), F32_IN, &bus);
  push_pcm (h, speech4, n_speech4, 0);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  b = gst_harness_pull (h);     /* the reply has started */
  fail_unless (b != NULL);
  gst_buffer_unref (b);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  while ((b = gst_harness_try_pull (h)) != NULL)
    gst_buffer_unref (b);
  /* the stream starts again: the same reply, at the new segment's times */
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  push_pcm (h, speech4, n_speech4, 10 * GST_SECOND);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  wait_eos (h);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal ((gfloat *) c.x->data, c.x->len, ref.x, ref.n);
  speech_capture_check_continuous (&c, 10 * GST_SECOND + at16k (utts[0].end), FALSE);
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  g_free (utts[0].embd);
  g_free (utts);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h;
  GstBus *bus;

  h = s2s_harness (make_s2s ("latency", 1500, NULL), F32_IN, &bus);
  gst_harness_set_upstream_latency (h, 20 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 1520 * GST_MSECOND);
  harness_done (h, bus);
}

GST_END_TEST;

static void
check_start_error (const gchar * prop, const gchar * value, gint code, const gchar * n1,
    const gchar * n2)
{
  speech_check_start_error (make_s2s (prop, value, NULL), code, n1, n2);
}

GST_START_TEST (test_file_errors)
{
  const gchar *w1 = "depthformer.layers.0.feed_forward.w1.weight";
  gchar *missing = speech_vocoder_variant ("no-w1.gguf", w1, NULL, 0, 0);
  gchar *fixture = g_build_filename (g_getenv ("LFM2_TEST_DATA"), "tts",
      "vocoder-tiny-dev.gguf", NULL);

  check_start_error ("mmproj", NULL, GST_RESOURCE_ERROR_NOT_FOUND, "mmproj", NULL);
  check_start_error ("tokenizer", NULL, GST_RESOURCE_ERROR_NOT_FOUND, "tokenizer property",
      NULL);
  check_start_error ("vocoder", missing, GST_RESOURCE_ERROR_OPEN_READ, "/no-w1.gguf", w1);
  /* the fixture's 64-wide vocoder for the 128-wide backbone: both files named */
  check_start_error ("vocoder", fixture, GST_RESOURCE_ERROR_SETTINGS,
      "/vocoder-tiny-dev.gguf", "/audio-tiny-q8_0.gguf");
  /* the vocoder given as the mmproj */
  check_start_error ("mmproj", speech.vocoder, GST_RESOURCE_ERROR_OPEN_READ,
      "/vocoder-audio-tiny.gguf", NULL);
  g_free (missing);
  g_free (fixture);
}

GST_END_TEST;

static Suite *
lfm2s2s_suite (void)
{
  Suite *s = suite_create ("lfm2s2s");
  TCase *tc = tcase_create ("general");

  speech_models_setup ("lfm2s2s");
  speech4 = speech_load_clip ("speech_4s.wav", &n_speech4);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata_and_properties);
  tcase_add_test (tc, test_reply_equals_library);
  tcase_add_test (tc, test_two_utterances_and_prompt);
  tcase_add_test (tc, test_silence_and_other_formats);
  tcase_add_test (tc, test_flush_mid_reply);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_file_errors);
  return s;
}

GST_CHECK_MAIN (lfm2s2s);
