/* tests/check/elements/lfm2tts.c — the lfm2tts element from the plugin module, on a generated
 * LFM2-Audio set (random weights): its audio and codes equal the library's own run of the same
 * turn (tests/check/lfm2-speech.c), pushed frame by frame before the utterance ends;
 * timestamps (first buffer at the text's PTS, continuity, no PTS, the overflow modes), GAPs,
 * the LATENCY and POSITION queries, late audio in a live pipeline, EOS and flushing in the
 * middle of an utterance, empty / 10,000-character / non-Latin / broken text, max-tokens,
 * voices, seeded sampling, codes output, and files refused at READY→PAUSED naming the file
 * and the tensor. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <string.h>

#include "lfm2-speech.h"

#define F32_CAPS "audio/x-raw, format=(string)F32LE, rate=(int)24000, channels=(int)1, " \
  "layout=(string)interleaved"
#define S16_CAPS "audio/x-raw, format=(string)S16LE, rate=(int)24000, channels=(int)1, " \
  "layout=(string)interleaved"
#define CODES_CAPS "other/tensors, format=(string)static"

/* An lfm2tts on the generated set, greedy audio, 2 threads; more properties as pairs. */
#define make_tts(...) speech_element_new ("lfm2tts", "temperature", 0.0, __VA_ARGS__)
#define TEXT_CAPS "text/x-raw, format=(string)utf8"

static GstHarness *
tts_harness (GstElement * e, const gchar * caps, GstBus ** bus)
{
  return speech_harness (e, TEXT_CAPS, caps, bus);
}

#define harness_done speech_harness_done

static GstBuffer *
text_buffer (const gchar * s, GstClockTime pts, GstClockTime dur)
{
  GstBuffer *b = gst_buffer_new_memdup (s, strlen (s));

  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = dur;
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

/* The utterance message's fields. */
static void
check_utterance (GstBus * bus, const gchar * text, GstClockTime start, GstClockTime duration,
    gint frames, const gchar * stop)
{
  GstMessage *m = speech_pop_message (bus, "lfm2tts/utterance");
  const GstStructure *s;
  guint64 u;
  gdouble first_ms, rtf;
  gint f;

  fail_unless (m != NULL, "no lfm2tts/utterance message");
  s = gst_message_get_structure (m);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), text);
  fail_unless (gst_structure_get_uint64 (s, "start", &u));
  fail_unless_equals_uint64 (u, start);
  fail_unless (gst_structure_get_uint64 (s, "duration", &u));
  fail_unless_equals_uint64 (u, duration);
  fail_unless (gst_structure_get_int (s, "frames", &f));
  if (frames >= 0)
    fail_unless_equals_int (f, frames);
  fail_unless (gst_structure_get_double (s, "first-audio-ms", &first_ms));
  fail_unless (gst_structure_get_double (s, "rtf", &rtf));
  if (duration > 0)
    fail_unless (first_ms >= 0.0 && rtf > 0.0, "first-audio-ms %f, rtf %f", first_ms, rtf);
  if (stop)
    fail_unless_equals_string (gst_structure_get_string (s, "stop-reason"), stop);
  gst_message_unref (m);
}

static GstClockTime
samples_time (gint64 n)
{
  return gst_util_uint64_scale_int ((guint64) n, GST_SECOND, 24000);
}

GST_START_TEST (test_metadata_and_properties)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2tts");
  GObjectClass *oc;
  GstElement *e;
  const gchar *absent[] = { "top-p", "min-p", "repeat-penalty" };
  const gchar *present[] = { "model", "vocoder", "tokenizer", "voice", "overflow", "latency",
    "system-prompt", "max-tokens", "temperature", "top-k", "seed", "n-threads",
    "context-length"
  };

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Converter/Text/Audio");
  fail_unless_equals_int (gst_element_factory_get_num_pad_templates (f), 2);
  e = gst_element_factory_create (f, NULL);
  oc = G_OBJECT_GET_CLASS (e);
  for (guint i = 0; i < G_N_ELEMENTS (present); i++)
    fail_unless (g_object_class_find_property (oc, present[i]) != NULL, "no %s", present[i]);
  /* the audio head samples with temperature and top-k only */
  for (guint i = 0; i < G_N_ELEMENTS (absent); i++)
    fail_unless (g_object_class_find_property (oc, absent[i]) == NULL, "%s", absent[i]);
  /* llama.cpp's TTS sampling, voice us-female, overflow shift */
  fail_unless (G_PARAM_SPEC_FLOAT (g_object_class_find_property (oc,
              "temperature"))->default_value == 0.8f);
  fail_unless_equals_int (G_PARAM_SPEC_INT (g_object_class_find_property (oc,
              "top-k"))->default_value, 64);
  {
    gint voice, overflow;
    guint latency;
    gchar *sys;
    g_object_get (e, "voice", &voice, "overflow", &overflow, "latency", &latency,
        "system-prompt", &sys, NULL);
    fail_unless_equals_int (voice, LFM2_TTS_VOICE_US_FEMALE);
    fail_unless_equals_int (overflow, 2);
    fail_unless_equals_int (latency, 1000);
    fail_unless (sys == NULL);
    gst_util_set_object_arg (G_OBJECT (e), "voice", "uk-male");
    gst_util_set_object_arg (G_OBJECT (e), "overflow", "clip");
    g_object_get (e, "voice", &voice, "overflow", &overflow, NULL);
    fail_unless_equals_int (voice, LFM2_TTS_VOICE_UK_MALE);
    fail_unless_equals_int (overflow, 0);
  }
  gst_object_unref (e);
  gst_object_unref (f);
}

GST_END_TEST;

/* Records, on the element's src pad, whether the utterance message had been posted when the
 * first buffer left (it must not: audio goes out as it is generated). */
typedef struct {
  GstBus *bus;
  gint n_buffers;
  gboolean message_before_first;
} StreamProbe;

static GstPadProbeReturn
stream_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  StreamProbe *p = data;

  if (p->n_buffers++ == 0) {
    GstMessage *m = speech_pop_message (p->bus, "lfm2tts/utterance");
    p->message_before_first = m != NULL;
    if (m)
      gst_message_unref (m);
  }
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_audio_equals_library)
{
  const gchar *text = "Hello there.";
  SpeechRefParams rp = speech_ref_params (text);
  StreamProbe probe = { 0 };
  SpeechCapture c;
  SpeechRef ref;
  GstHarness *h;
  GstBus *bus;
  GstPad *src;

  speech_ref_run (&ref, &rp);
  fail_unless (ref.n_frames > 2 && ref.n == (gint64) ref.n_frames * 1920);

  h = tts_harness (make_tts (NULL), F32_CAPS, &bus);
  probe.bus = bus;
  src = gst_element_get_static_pad (h->element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, stream_probe, &probe, NULL);
  gst_object_unref (src);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);

  /* one buffer per frame (1440 samples first, 1920 after, the 480 of the end), pushed
   * before the utterance was over */
  fail_unless_equals_int (c.n_buffers, ref.n_frames + 1);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 0), 1440);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, 1), 1920);
  fail_unless_equals_int64 (g_array_index (c.n, gint64, c.n_buffers - 1), 480);
  fail_if (probe.message_before_first, "the first audio waited for the utterance's end");
  fail_unless_equals_int (c.n_discont, 1);
  /* the samples are the library's, the first at the text's PTS, continuous */
  check_samples_equal (&c, ref.x, ref.n);
  speech_capture_check_continuous (&c, GST_SECOND, FALSE);
  check_utterance (bus, text, GST_SECOND, samples_time (ref.n), ref.n_frames, "eog");

  /* the same text again: the same audio (the sampler restarts), right after (shift) */
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_clear (&c);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal (&c, ref.x, ref.n);
  speech_capture_check_continuous (&c, GST_SECOND + samples_time (ref.n), FALSE);
  fail_unless_equals_int (c.n_discont, 0);

  /* POSITION: the end of what went out */
  {
    gint64 pos;
    fail_unless (gst_element_query_position (h->element, GST_FORMAT_TIME, &pos));
    fail_unless_equals_int64 (pos, GST_SECOND + 2 * samples_time (ref.n));
  }
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_s16_voice_and_prompt)
{
  const gchar *text = "Good morning.";
  SpeechRefParams rp = speech_ref_params (text);
  SpeechRef ref, other;
  SpeechCapture c;
  GstHarness *h;
  GstBus *bus;

  /* voice uk-male: the library's uk-male run, as PCM16 by truncation (sampled from the whole
   * distribution: the greedy codes of the random-weight model are the same for every voice) */
  rp.voice = LFM2_TTS_VOICE_UK_MALE;
  rp.n_predict = 12;
  rp.temperature = 1.0f;
  rp.top_k = 0;
  rp.seed = 3;
  speech_ref_run (&ref, &rp);
  rp.voice = LFM2_TTS_VOICE_US_FEMALE;
  speech_ref_run (&other, &rp);
  h = tts_harness (make_tts ("voice", LFM2_TTS_VOICE_UK_MALE, "max-tokens", 12,
          "temperature", 1.0f, "top-k", 0, "seed", (guint64) 3, NULL), S16_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, 0, GST_SECOND)),
      GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  {
    gint16 *s16 = g_new (gint16, ref.n);
    gfloat *f = g_new (gfloat, ref.n);
    gboolean differs = ref.n != other.n;

    lfm2_audio_to_s16 (ref.x, s16, (size_t) ref.n);
    for (gint64 i = 0; i < ref.n; i++)
      f[i] = s16[i];
    check_samples_equal (&c, f, ref.n);
    for (gint64 i = 0; !differs && i < ref.n; i++)
      differs = ref.x[i] != other.x[i];
    fail_unless (differs, "the voices gave the same audio: the test proves nothing");
    g_free (s16);
    g_free (f);
  }
  check_utterance (bus, text, 0, samples_time (ref.n), ref.n_frames, "max-tokens");

  /* a system prompt replaces the voice's */
  g_object_set (h->element, "system-prompt", "Perform TTS. Use the US female voice.", NULL);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, 10 * GST_SECOND,
              GST_SECOND)), GST_FLOW_OK);
  speech_capture_clear (&c);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  {
    gint16 *s16 = g_new (gint16, other.n);
    gfloat *f = g_new (gfloat, other.n);
    lfm2_audio_to_s16 (other.x, s16, (size_t) other.n);
    for (gint64 i = 0; i < other.n; i++)
      f[i] = s16[i];
    check_samples_equal (&c, f, other.n);
    g_free (s16);
    g_free (f);
  }
  speech_capture_check_continuous (&c, 10 * GST_SECOND, FALSE);
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  speech_ref_clear (&other);
  harness_done (h, bus);
}

GST_END_TEST;

/* Two cues: A at 0 (lasting 0.5 s), B at 1 s (lasting 0.3 s); A's speech runs 1.52 s (19
 * frames, max-tokens 20). Returns the start of B's speech and the samples of each. */
static void
two_cues (const gchar * overflow, GstClockTime * b_start, gint64 * n_a, gint64 * n_b,
    gint * n_gaps)
{
  GstHarness *h = NULL;
  GstBus *bus;
  SpeechCapture c;
  GstEvent *ev;

  h = tts_harness (make_tts ("max-tokens", 20, NULL), F32_CAPS, &bus);
  gst_util_set_object_arg (G_OBJECT (h->element), "overflow", overflow);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("First cue.", 0,
              GST_SECOND / 2)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  *n_a = c.x->len;
  speech_capture_check_continuous (&c, 0, FALSE);
  speech_capture_clear (&c);
  /* an empty cue between them: a GAP (unless speech already covers it) */
  fail_unless_equals_int (gst_harness_push (h, text_buffer (" \n", GST_SECOND / 2,
              GST_SECOND / 4)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("Second cue.", GST_SECOND,
              GST_SECOND * 3 / 10)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  *n_b = c.x->len;
  *b_start = g_array_index (c.pts, GstClockTime, 0);
  speech_capture_check_continuous (&c, *b_start, FALSE);
  speech_capture_clear (&c);
  *n_gaps = 0;
  while ((ev = gst_harness_try_pull_event (h)) != NULL) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime ts, dur;
      gst_event_parse_gap (ev, &ts, &dur);
      fail_unless_equals_uint64 (ts, GST_SECOND / 2);
      fail_unless_equals_uint64 (dur, GST_SECOND / 4);
      (*n_gaps)++;
    }
    gst_event_unref (ev);
  }
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  harness_done (h, bus);
}

GST_START_TEST (test_overflow_modes)
{
  GstClockTime b;
  gint64 na, nb;
  gint gaps;

  /* shift: B after A's end; the empty cue lies under A's speech: no GAP */
  two_cues ("shift", &b, &na, &nb, &gaps);
  fail_unless_equals_int64 (na, 19 * 1920);
  fail_unless_equals_uint64 (b, samples_time (na));
  fail_unless_equals_int64 (nb, 19 * 1920);
  fail_unless_equals_int (gaps, 0);
  /* overlap: B at its PTS although A still runs */
  two_cues ("overlap", &b, &na, &nb, &gaps);
  fail_unless_equals_int64 (na, 19 * 1920);
  fail_unless_equals_uint64 (b, GST_SECOND);
  fail_unless_equals_int (gaps, 0);
  /* clip: A cut at 0.5 s, B at 1 s cut at 1.3 s; the empty cue is a GAP */
  two_cues ("clip", &b, &na, &nb, &gaps);
  fail_unless_equals_int64 (na, 12000);
  fail_unless_equals_uint64 (b, GST_SECOND);
  fail_unless_equals_int64 (nb, 7200);
  fail_unless_equals_int (gaps, 1);
}

GST_END_TEST;

GST_START_TEST (test_clip_equals_prefix_and_message)
{
  SpeechRefParams rp = speech_ref_params ("Clipped.");
  SpeechCapture c;
  SpeechRef ref;
  GstHarness *h;
  GstBus *bus;

  rp.n_predict = 30;
  speech_ref_run (&ref, &rp);
  h = tts_harness (make_tts ("overflow", 0, "max-tokens", 30, NULL), F32_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("Clipped.", 2 * GST_SECOND,
              GST_SECOND / 3)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  /* ⌈24000/3⌉ samples: the first ones of the full utterance */
  fail_unless_equals_int64 ((gint64) c.x->len, 8000);
  check_samples_equal (&c, ref.x, 8000);
  speech_capture_check_continuous (&c, 2 * GST_SECOND, FALSE);
  check_utterance (bus, "Clipped.", 2 * GST_SECOND, samples_time (8000), -1, "clipped");
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_no_timestamps)
{
  GstHarness *h;
  GstBus *bus;
  SpeechCapture c;
  gint64 n1;

  /* without PTS: from the segment start, back to back */
  h = tts_harness (make_tts ("max-tokens", 4, NULL), F32_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("One.", GST_CLOCK_TIME_NONE,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  n1 = c.x->len;
  fail_unless_equals_int64 (n1, 3 * 1920);
  speech_capture_check_continuous (&c, 0, FALSE);
  speech_capture_clear (&c);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("Two.", GST_CLOCK_TIME_NONE,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  speech_capture_check_continuous (&c, samples_time (n1), FALSE);
  speech_capture_clear (&c);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h;
  GstBus *bus;
  GstMessage *m;

  h = tts_harness (make_tts ("latency", 700, NULL), F32_CAPS, &bus);
  /* the harness's upstream is live */
  gst_harness_set_upstream_latency (h, 40 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 740 * GST_MSECOND);
  /* a change is announced and answered */
  g_object_set (h->element, "latency", 250, NULL);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_LATENCY);
  fail_unless (m != NULL, "no LATENCY message");
  gst_message_unref (m);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 290 * GST_MSECOND);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_late_audio_live)
{
  GstHarness *h;
  GstBus *bus;
  SpeechCapture c;
  GstMessage *m;

  /* Live: the clock reads 5 s when text for 0 s arrives; latency 1 s → 4 s late: the speech
   * is moved to 4 s, with one warning. */
  h = tts_harness (make_tts ("max-tokens", 3, "latency", 1000, NULL), F32_CAPS, &bus);
  gst_harness_use_testclock (h);
  gst_harness_set_time (h, 5 * GST_SECOND);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("Late.", 0, GST_SECOND)),
      GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  fail_unless (c.n_buffers > 0);
  speech_capture_check_continuous (&c, 4 * GST_SECOND, FALSE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (m != NULL, "no warning about late audio");
  {
    GError *err;
    gst_message_parse_warning (m, &err, NULL);
    fail_unless (strstr (err->message, "latency") != NULL, "%s", err->message);
    g_error_free (err);
  }
  gst_message_unref (m);
  speech_capture_clear (&c);
  harness_done (h, bus);
}

GST_END_TEST;

/* ---- EOS and flushing in the middle of an utterance --------------------------------- */

typedef struct {
  GstHarness *h;
  const gchar *text;
  GstClockTime pts;
  GstFlowReturn ret;
} PushJob;

static gpointer
push_thread (gpointer data)
{
  PushJob *j = data;

  j->ret = gst_harness_push (j->h, text_buffer (j->text, j->pts, GST_CLOCK_TIME_NONE));
  return NULL;
}

/* Order of buffers ('B') and EOS ('E') on the element's src pad. */
static GstPadProbeReturn
order_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  GString *s = data;

  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    g_string_append_c (s, 'B');
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS)
    g_string_append_c (s, 'E');
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_eos_mid_utterance)
{
  const gchar *text = "End of stream comes now.";
  SpeechRefParams rp = speech_ref_params (text);
  PushJob job;
  SpeechCapture c;
  SpeechRef ref;
  GString *order = g_string_new (NULL);
  GstBuffer *head;
  GstHarness *h;
  GThread *t;
  GstBus *bus;
  GstPad *src;

  speech_ref_run (&ref, &rp);
  h = tts_harness (make_tts (NULL), F32_CAPS, &bus);
  src = gst_element_get_static_pad (h->element, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      order_probe, order, NULL);
  gst_object_unref (src);
  job = (PushJob) { h, text, 0, GST_FLOW_ERROR };
  t = g_thread_new ("push", push_thread, &job);
  /* EOS while the utterance is being spoken: it goes out after the rest of the speech */
  head = gst_harness_pull (h);
  fail_unless (head != NULL);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  g_thread_join (t);
  fail_unless_equals_int (job.ret, GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  fail_unless_equals_int64 ((gint64) c.x->len + (gint64) gst_buffer_get_size (head) / 4,
      ref.n);
  fail_unless_equals_int (c.n_buffers + 1, ref.n_frames + 1);
  fail_unless (g_str_has_suffix (order->str, "BE"), "order %s", order->str);
  fail_unless_equals_int ((gint) strlen (order->str), ref.n_frames + 2);
  gst_buffer_unref (head);
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  g_string_free (order, TRUE);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_flush_mid_utterance)
{
  const gchar *text = "A long sentence that will be interrupted by a seek.";
  SpeechRefParams rp = speech_ref_params ("After the seek.");
  PushJob job;
  SpeechCapture c;
  SpeechRef ref, full;
  GstBuffer *head;
  GstHarness *h;
  GThread *t;
  GstBus *bus;
  GstSegment seg;
  guint before;

  rp.n_predict = 6;
  speech_ref_run (&ref, &rp);
  rp = speech_ref_params (text);
  speech_ref_run (&full, &rp);
  h = tts_harness (make_tts (NULL), F32_CAPS, &bus);
  job = (PushJob) { h, text, 0, GST_FLOW_OK };
  t = g_thread_new ("push", push_thread, &job);
  head = gst_harness_pull (h);
  fail_unless (head != NULL);
  gst_buffer_unref (head);
  /* a flushing seek: the utterance stops within a frame */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  g_thread_join (t);
  fail_unless_equals_int (job.ret, GST_FLOW_FLUSHING);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  before = c.n_buffers;
  fail_unless (before + 1 < (guint) full.n_frames, "%u buffers of %d went out", before,
      full.n_frames);
  speech_capture_clear (&c);
  /* nothing of it is left: the next text's speech starts at its PTS in the new segment */
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = seg.time = 10 * GST_SECOND;
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  g_object_set (h->element, "max-tokens", 6, NULL);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("After the seek.",
              10 * GST_SECOND, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  check_samples_equal (&c, ref.x, ref.n);
  speech_capture_check_continuous (&c, 10 * GST_SECOND, FALSE);
  fail_unless_equals_int (c.n_discont, 1);
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  speech_ref_clear (&full);
  harness_done (h, bus);
}

GST_END_TEST;

/* ---- texts ------------------------------------------------------------------------- */

GST_START_TEST (test_empty_text)
{
  const gchar *empty[] = { "", " ", "\n\t \r\n", "\0\0" };
  GstHarness *h;
  GstBus *bus;
  GstEvent *ev;
  gint gaps = 0;

  h = tts_harness (make_tts (NULL), F32_CAPS, &bus);
  for (guint i = 0; i < G_N_ELEMENTS (empty); i++) {
    const gsize len = i == 3 ? 2 : strlen (empty[i]);
    GstBuffer *b = len ? gst_buffer_new_memdup (empty[i], len) : gst_buffer_new ();
    GST_BUFFER_PTS (b) = i * GST_SECOND;
    GST_BUFFER_DURATION (b) = GST_SECOND;
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  while ((ev = gst_harness_try_pull_event (h)) != NULL) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime ts, dur;
      gst_event_parse_gap (ev, &ts, &dur);
      fail_unless_equals_uint64 (ts, gaps * GST_SECOND);
      fail_unless_equals_uint64 (dur, GST_SECOND);
      gaps++;
    }
    gst_event_unref (ev);
  }
  fail_unless_equals_int (gaps, 4);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);
  fail_unless (speech_pop_message (bus, "lfm2tts/utterance") == NULL);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_long_text)
{
  GString *s = g_string_new (NULL);
  SpeechCapture c;
  GstMessage *m;
  GstHarness *h;
  GstBus *bus;
  gint turns = 0, frames = 0;

  /* 10,000 characters: spoken in turns of at most 400 bytes at sentence ends, back to back */
  while (s->len < 10000)
    g_string_append (s, "The quick brown fox jumps over the lazy dog. ");
  g_string_truncate (s, 10000);
  h = tts_harness (make_tts ("max-tokens", 2, NULL), F32_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (s->str, GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  speech_capture_check_continuous (&c, GST_SECOND, FALSE);
  m = speech_pop_message (bus, "lfm2tts/utterance");
  fail_unless (m != NULL);
  gst_structure_get_int (gst_message_get_structure (m), "turns", &turns);
  gst_structure_get_int (gst_message_get_structure (m), "frames", &frames);
  gst_message_unref (m);
  /* 45-byte sentences: 8 a turn */
  fail_unless (turns >= 10000 / 400 && turns <= 10000 / 360 + 1, "%d turns", turns);
  /* each turn: <|audio_start|>, one frame, then its 480 tail samples */
  fail_unless_equals_int (frames, turns);
  fail_unless_equals_int64 ((gint64) c.x->len, (gint64) turns * 1920);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  speech_capture_clear (&c);
  g_string_free (s, TRUE);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_non_latin_text)
{
  const gchar *texts[] = {
    "こんにちは、世界。今日はいい天気ですね。",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم. كيف حالك؟",
    "नमस्ते दुनिया। 🙂🎉",
  };
  /* a CJK text with no space longer than a turn: cut at its full stops */
  GString *cjk = g_string_new (NULL);
  GstHarness *h;
  GstBus *bus;

  h = tts_harness (make_tts ("max-tokens", 3, NULL), F32_CAPS, &bus);
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++) {
    SpeechRefParams rp = speech_ref_params (texts[i]);
    SpeechCapture c;
    SpeechRef ref;

    rp.n_predict = 3;
    speech_ref_run (&ref, &rp);
    fail_unless_equals_int (gst_harness_push (h, text_buffer (texts[i], i * 10 * GST_SECOND,
                GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
    speech_capture_init (&c);
    speech_capture_pull (h, &c);
    check_samples_equal (&c, ref.x, ref.n);
    check_utterance (bus, texts[i], i * 10 * GST_SECOND, samples_time (ref.n), ref.n_frames,
        "max-tokens");
    speech_capture_clear (&c);
    speech_ref_clear (&ref);
  }
  while (cjk->len < 1500)
    g_string_append (cjk, "日本語の文章です。");
  fail_unless_equals_int (gst_harness_push (h, text_buffer (cjk->str, 100 * GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  {
    GstMessage *m = speech_pop_message (bus, "lfm2tts/utterance");
    gint turns;
    fail_unless (m != NULL);
    gst_structure_get_int (gst_message_get_structure (m), "turns", &turns);
    /* 56 sentences of 27 bytes, 14 a turn (378 of at most 400 bytes) */
    fail_unless_equals_int (turns, 4);
    gst_message_unref (m);
  }
  /* broken UTF-8 is repaired, not fed to the tokenizer */
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("caf\xc3 \xff\xfe ok.",
              200 * GST_SECOND, GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  {
    GstMessage *m = speech_pop_message (bus, "lfm2tts/utterance");
    fail_unless (m != NULL);
    fail_unless (g_utf8_validate (gst_structure_get_string (gst_message_get_structure (m),
                "text"), -1, NULL));
    gst_message_unref (m);
  }
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);
  g_string_free (cjk, TRUE);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_seeded_sampling)
{
  const gchar *text = "Sampled speech.";
  SpeechRefParams rp = speech_ref_params (text);
  SpeechRef a, b;
  SpeechCapture c1, c2;
  GstHarness *h;
  GstBus *bus;

  /* temperature 0.8, top-k 64, seed 7: the library's run, twice the same */
  rp.temperature = 0.8f;
  rp.seed = 7;
  rp.n_predict = 16;
  speech_ref_run (&a, &rp);
  rp.seed = 8;
  speech_ref_run (&b, &rp);
  fail_if (a.n_frames == b.n_frames && memcmp (a.codes, b.codes, a.n_frames * 32) == 0,
      "seeds 7 and 8 gave the same codes");
  h = tts_harness (make_tts ("temperature", 0.8f, "seed", (guint64) 7, "max-tokens", 16,
          NULL), F32_CAPS, &bus);
  speech_capture_init (&c1);
  speech_capture_init (&c2);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, 0, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  speech_capture_pull (h, &c1);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, 0, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  speech_capture_pull (h, &c2);
  check_samples_equal (&c1, a.x, a.n);
  check_samples_equal (&c2, a.x, a.n);
  /* a new seed while playing */
  g_object_set (h->element, "seed", (guint64) 8, NULL);
  speech_capture_clear (&c2);
  speech_capture_init (&c2);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, 0, GST_CLOCK_TIME_NONE)),
      GST_FLOW_OK);
  speech_capture_pull (h, &c2);
  check_samples_equal (&c2, b.x, b.n);
  speech_capture_clear (&c1);
  speech_capture_clear (&c2);
  speech_ref_clear (&a);
  speech_ref_clear (&b);
  harness_done (h, bus);
}

GST_END_TEST;

/* ---- codes out ---------------------------------------------------------------------- */

GST_START_TEST (test_codes_output)
{
  const gchar *text = "Codes please.";
  SpeechRefParams rp = speech_ref_params (text);
  SpeechCapture c;
  SpeechRef ref;
  GstHarness *h;
  GstBus *bus;
  GstCaps *caps, *want;

  rp.vocode = FALSE;
  speech_ref_run (&ref, &rp);
  /* without a tokenizer only codes can come out */
  h = tts_harness (make_tts ("tokenizer", NULL, NULL), CODES_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (text, GST_SECOND,
              GST_CLOCK_TIME_NONE)), GST_FLOW_OK);
  caps = gst_pad_get_current_caps (h->sinkpad);
  want = gst_caps_from_string ("other/tensors, format=(string)static, num_tensors=(int)1, "
      "types=(string)int32, dimensions=(string)8:1, framerate=(fraction)25/2");
  fail_unless (gst_caps_is_equal (caps, want), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (caps);
  gst_caps_unref (want);
  speech_capture_init (&c);
  speech_capture_pull (h, &c);
  /* every frame, then the end-of-audio frame (all 2048, no duration), 80 ms apart */
  fail_unless_equals_int (c.n_buffers, ref.n_frames + 1);
  fail_unless_equals_int ((gint) c.codes->len, (ref.n_frames + 1) * 8);
  fail_unless (memcmp (c.codes->data, ref.codes, ref.n_frames * 8 * sizeof (gint32)) == 0);
  for (gint k = 0; k < 8; k++)
    fail_unless_equals_int (g_array_index (c.codes, gint32, ref.n_frames * 8 + k), 2048);
  speech_capture_check_continuous (&c, GST_SECOND, TRUE);
  fail_unless_equals_uint64 (g_array_index (c.dur, GstClockTime, c.n_buffers - 1), 0);
  check_utterance (bus, text, GST_SECOND, ref.n_frames * 80 * GST_MSECOND, ref.n_frames,
      "eog");
  speech_capture_clear (&c);
  speech_ref_clear (&ref);
  harness_done (h, bus);
}

GST_END_TEST;

GST_START_TEST (test_audio_without_tokenizer_refused)
{
  GstHarness *h;
  GstBus *bus;
  GstMessage *m;
  GError *err;

  /* downstream wants audio, no tokenizer: a negotiation error saying what is missing */
  h = tts_harness (make_tts ("tokenizer", NULL, NULL), F32_CAPS, &bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("x", 0, GST_SECOND)),
      GST_FLOW_NOT_NEGOTIATED);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "tokenizer") != NULL, "%s", err->message);
  g_error_free (err);
  gst_message_unref (m);
  harness_done (h, bus);
}

GST_END_TEST;

/* ---- files refused at READY→PAUSED -------------------------------------------------- */

static void
check_start_error (const gchar * prop, const gchar * value, gint code, const gchar * n1,
    const gchar * n2)
{
  speech_check_start_error (make_tts (prop, value, NULL), code, n1, n2);
}

GST_START_TEST (test_file_errors)
{
  const gchar *w2 = "depthformer.layers.1.feed_forward.w2.weight";
  const gchar *logits = "depth_embeddings.3.to_logits.weight";
  gchar *missing = speech_vocoder_variant ("no-w2.gguf", w2, NULL, 0, 0);
  gchar *misshapen = speech_vocoder_variant ("bad-logits.gguf", NULL, logits, 0, 100);
  gchar *nofile = g_build_filename (speech.dir, "no-such-vocoder.gguf", NULL);
  gchar *fixture = g_build_filename (g_getenv ("LFM2_TEST_DATA"), "tts",
      "vocoder-tiny-dev.gguf", NULL);

  /* errors name the file (the registry's canonical path ends in its name) and the tensor */
  check_start_error ("vocoder", missing, GST_RESOURCE_ERROR_OPEN_READ,
      "/no-w2.gguf", w2);
  check_start_error ("vocoder", misshapen, GST_RESOURCE_ERROR_OPEN_READ,
      "/bad-logits.gguf", logits);
  check_start_error ("vocoder", nofile, GST_RESOURCE_ERROR_NOT_FOUND,
      "no-such-vocoder.gguf", NULL);
  check_start_error ("vocoder", NULL, GST_RESOURCE_ERROR_NOT_FOUND,
      "vocoder property", NULL);
  /* the tokenizer file as the vocoder, a vocoder as the tokenizer */
  check_start_error ("vocoder", speech.tokenizer, GST_RESOURCE_ERROR_OPEN_READ,
      "/tokenizer-audio-tiny.gguf", NULL);
  check_start_error ("tokenizer", speech.vocoder, GST_RESOURCE_ERROR_OPEN_READ,
      "/vocoder-audio-tiny.gguf", NULL);
  /* the fixture's 64-wide vocoder on the 128-wide backbone: both files named */
  check_start_error ("vocoder", fixture, GST_RESOURCE_ERROR_SETTINGS,
      "/vocoder-tiny-dev.gguf", "/audio-tiny-q8_0.gguf");
  g_free (missing);
  g_free (misshapen);
  g_free (nofile);
  g_free (fixture);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  GstElement *e = make_tts (NULL);

  for (gint i = 0; i < 3; i++) {
    fail_unless (gst_element_set_state (e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
    fail_unless (gst_element_set_state (e, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
lfm2tts_suite (void)
{
  Suite *s = suite_create ("lfm2tts");
  TCase *tc = tcase_create ("general");

  speech_models_setup ("lfm2tts");
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata_and_properties);
  tcase_add_test (tc, test_audio_equals_library);
  tcase_add_test (tc, test_s16_voice_and_prompt);
  tcase_add_test (tc, test_overflow_modes);
  tcase_add_test (tc, test_clip_equals_prefix_and_message);
  tcase_add_test (tc, test_no_timestamps);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_late_audio_live);
  tcase_add_test (tc, test_eos_mid_utterance);
  tcase_add_test (tc, test_flush_mid_utterance);
  tcase_add_test (tc, test_empty_text);
  tcase_add_test (tc, test_long_text);
  tcase_add_test (tc, test_non_latin_text);
  tcase_add_test (tc, test_seeded_sampling);
  tcase_add_test (tc, test_codes_output);
  tcase_add_test (tc, test_audio_without_tokenizer_refused);
  tcase_add_test (tc, test_file_errors);
  tcase_add_test (tc, test_state_cycling);
  return s;
}

GST_CHECK_MAIN (lfm2tts);
