/* lfm2-asrcheck — the live check of lfm2asr: a live source that speaks and pauses in turn
 * for N seconds, the element transcribing all the while; measures whether the audio kept
 * flowing and how soon after each utterance its text came.
 *
 *   lfm2-asrcheck [--seconds N] [--clip FILE] [--pause S] [--buffer-ms B]
 *                 [--max-gap-buffers K] [--max-behind-ms M] LFM2ASR-PROPERTY…
 *
 * The pipeline is
 *
 *   appsrc is-live=true (16 kHz S16 mono, B ms buffers) ! lfm2asr name=asr PROPERTIES !
 *       queue ! fakesink sync=true
 *
 * A thread plays the part of a capture device: FILE (any audio GStreamer decodes; default the
 * bundled espeak clip) then S seconds of silence (default 3), over and over, one buffer every
 * B ms (default 20) pushed when its last sample has been "captured" by the pipeline clock,
 * with that capture time as its PTS. A probe on lfm2asr's sink pad records, for every buffer,
 * the wall-clock time it arrived and how far behind the clock it is (now − PTS − duration):
 * if the element held its streaming thread, the next buffers arrive late. The bus gives the
 * `lfm2asr/transcript` messages; each final is matched with the utterance it covers, and its
 * delay is measured from the end of that utterance's speech (the last sample of the clip above
 * -40 dBFS) to the moment the message was posted. --noise DBFS adds white noise at that RMS
 * level to everything (a microphone's floor; by default the pauses are digital silence, which
 * the detector leaves out of utterances). --verbose prints a line per final. After N seconds
 * (default 600) the source ends, the element drains, and the results are printed as key=value
 * lines:
 *
 *   buffers, expected-buffers, buffer-ms, max-gap-ms, max-gap-buffers, max-behind-ms,
 *   gaps-over-limit, buffers-over-max-behind, max-chain-ms (the longest lfm2asr held its
 *   streaming thread for one buffer, from its stats),
 *   utterances, finals, partials, skipped-partials, dropped-finals, final-delay-ms-mean,
 *   final-delay-ms-median, final-delay-ms-p90, final-delay-ms-max, inference-ms-mean,
 *   inference-ms-max, max-delay-ms (the element's: behind the padded end of the utterance)
 *
 * Exit status 0 when the audio kept flowing — every buffer came, none more than K buffer
 * durations (default 3) after the previous one, none more than M ms (default 100) behind the
 * clock — and every utterance got its final (none dropped); 1 otherwise, 2 on an error. Not
 * a test (it runs for minutes and measures wall-clock time): pipelines/check-no-stall-audio.sh
 * runs it; figures in docs/elements/lfm2asr.md and docs/benchmarks.md.
 */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 16000

typedef struct {
  GstClockTime speech_start, speech_end;        /* running time */
} Spoken;

typedef struct {
  GMutex lock;
  GstElement *pipe, *src, *asr;
  /* the source */
  gint16 *clip;
  gint64 n_clip, speech_first, speech_last;     /* samples */
  gdouble seconds, pause_s, buffer_ms;
  GArray *spoken;               /* Spoken, as the source plays them */
  GstClockTime t0;              /* running time of the first sample */
  /* buffers into lfm2asr */
  guint64 buffers;
  gint64 first_us, last_us, max_gap_us;
  GstClockTimeDiff max_behind;
  gint64 gap_limit_us;          /* K buffer durations */
  guint n_long_gaps, n_late;    /* gaps over the limit, buffers over max-behind */
  gdouble max_behind_ms;
  /* finals */
  guint finals, partials;
  GArray *delays;               /* gdouble ms, final after the end of its speech */
  gdouble inference_sum, inference_max;
  gboolean verbose;             /* one line per final on stderr */
  GRand *rng;
  gdouble noise_db;             /* white noise added throughout (dBFS RMS), or 0: none */
  GMainLoop *loop;
  gboolean error;
} Check;

/* Running time now of the pipeline. */
static GstClockTime
running_time (Check * c)
{
  GstClock *clock = gst_element_get_clock (c->pipe);
  GstClockTime now;

  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  now = gst_clock_get_time (clock) - gst_element_get_base_time (c->pipe);
  gst_object_unref (clock);
  return now;
}

static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Check *c = data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  const gint64 now = g_get_monotonic_time ();
  const GstClockTime rt = running_time (c);

  g_mutex_lock (&c->lock);
  if (c->buffers == 0)
    c->first_us = now;
  else {
    if (now - c->last_us > c->max_gap_us)
      c->max_gap_us = now - c->last_us;
    if (now - c->last_us > c->gap_limit_us)
      c->n_long_gaps++;
  }
  c->last_us = now;
  c->buffers++;
  /* the source pushes a buffer as soon as its last sample is captured */
  if (GST_CLOCK_TIME_IS_VALID (rt)) {
    GstClockTimeDiff behind = GST_CLOCK_DIFF (GST_BUFFER_PTS (buf)
        + GST_BUFFER_DURATION (buf), rt);
    if (behind > c->max_behind)
      c->max_behind = behind;
    if (behind / 1e6 > c->max_behind_ms)
      c->n_late++;
  }
  g_mutex_unlock (&c->lock);
  return GST_PAD_PROBE_OK;
}

/* Posted from the element's worker: the delay is taken here, not when the main loop looks. */
static GstBusSyncReply
on_sync_message (GstBus * bus, GstMessage * m, gpointer data)
{
  Check *c = data;
  const GstStructure *s = gst_message_get_structure (m);
  gboolean final;
  guint64 start, end;
  gdouble ms;

  if (GST_MESSAGE_TYPE (m) != GST_MESSAGE_ELEMENT
      || !gst_structure_has_name (s, "lfm2asr/transcript")
      || !gst_structure_get_boolean (s, "is-final", &final)
      || !gst_structure_get_uint64 (s, "start", &start)
      || !gst_structure_get_uint64 (s, "end", &end))
    return GST_BUS_PASS;
  g_mutex_lock (&c->lock);
  if (!final) {
    c->partials++;
  } else {
    const GstClockTime now = running_time (c);
    guint64 best = 0;
    gint which = -1;

    c->finals++;
    if (gst_structure_get_double (s, "inference-ms", &ms)) {
      c->inference_sum += ms;
      c->inference_max = MAX (c->inference_max, ms);
    }
    /* the spoken utterance this final covers most of */
    for (guint i = 0; i < c->spoken->len; i++) {
      const Spoken *u = &g_array_index (c->spoken, Spoken, i);
      const guint64 a = MAX (u->speech_start, start), b = MIN (u->speech_end, end);
      if (b > a && b - a > best) {
        best = b - a;
        which = (gint) i;
      }
    }
    if (which >= 0 && GST_CLOCK_TIME_IS_VALID (now)) {
      const Spoken *u = &g_array_index (c->spoken, Spoken, which);
      /* a cut utterance: only its last piece ends with the speech */
      if (end + 100 * GST_MSECOND >= u->speech_end) {
        gdouble d = GST_CLOCK_DIFF (u->speech_end, now) / 1e6;
        g_array_append_val (c->delays, d);
        if (c->verbose) {
          gdouble enc = 0, audio = 0;
          gint tokens = 0;

          gst_structure_get_double (s, "encode-ms", &enc);
          gst_structure_get_double (s, "audio-ms", &audio);
          gst_structure_get_int (s, "generated-tokens", &tokens);
          g_printerr ("final %u: %.0f ms after its speech; inference %.0f ms (encoder %.0f), "
              "%.0f ms of audio, %d tokens; utterance ends %.0f ms after the speech\n",
              c->finals, d, ms, enc, audio, tokens,
              GST_CLOCK_DIFF (u->speech_end, end) / 1e6);
        }
      }
    }
  }
  g_mutex_unlock (&c->lock);
  return GST_BUS_PASS;
}

static gboolean
on_message (GstBus * bus, GstMessage * m, gpointer data)
{
  Check *c = data;

  switch (GST_MESSAGE_TYPE (m)) {
    case GST_MESSAGE_ERROR:{
      GError *err;
      gchar *dbg;
      gst_message_parse_error (m, &err, &dbg);
      g_printerr ("lfm2-asrcheck: error from %s: %s\n%s\n", GST_OBJECT_NAME (m->src),
          err->message, dbg ? dbg : "");
      g_error_free (err);
      g_free (dbg);
      c->error = TRUE;
      g_main_loop_quit (c->loop);
      break;
    }
    case GST_MESSAGE_WARNING:{
      GError *err;
      gst_message_parse_warning (m, &err, NULL);
      g_printerr ("lfm2-asrcheck: warning from %s: %s\n", GST_OBJECT_NAME (m->src),
          err->message);
      g_error_free (err);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (c->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

/* The capture device: clip, pause, clip, … for `seconds`, in real time. */
static gpointer
feed (gpointer data)
{
  Check *c = data;
  const gint64 per = (gint64) llround (c->buffer_ms * RATE / 1000.0);
  const gint64 pause = (gint64) llround (c->pause_s * RATE);
  const gint64 cycle = c->n_clip + pause;
  const gint64 total = (gint64) llround (c->seconds * RATE);
  GstClock *clock = gst_element_get_clock (c->pipe);
  const GstClockTime base = gst_element_get_base_time (c->pipe);

  c->t0 = gst_clock_get_time (clock) - base;
  for (gint64 i = 0; i < total; i += per) {
    const gint64 k = MIN (per, total - i);
    GstBuffer *b = gst_buffer_new_allocate (NULL, k * 2, NULL);
    GstMapInfo map;
    gint16 *d;
    GstClockID id;

    gst_buffer_map (b, &map, GST_MAP_WRITE);
    d = (gint16 *) map.data;
    for (gint64 j = 0; j < k; j++) {
      const gint64 p = (i + j) % cycle;
      gdouble v = p < c->n_clip ? c->clip[p] : 0;
      if (c->noise_db < 0) {    /* a microphone's floor: the pauses are not digital silence */
        gdouble u = 0;
        for (gint r = 0; r < 12; r++)   /* Irwin–Hall: about N(0, 1) */
          u += g_rand_double (c->rng);
        v += (u - 6.0) * 32768.0 * pow (10.0, c->noise_db / 20.0);
      }
      d[j] = (gint16) CLAMP (lrint (v), -32768, 32767);
      if (p == 0) {             /* an utterance begins */
        Spoken u = {
          c->t0 + gst_util_uint64_scale_int (i + j + c->speech_first, GST_SECOND, RATE),
          c->t0 + gst_util_uint64_scale_int (i + j + c->speech_last + 1, GST_SECOND, RATE)
        };
        g_mutex_lock (&c->lock);
        g_array_append_val (c->spoken, u);
        g_mutex_unlock (&c->lock);
      }
    }
    gst_buffer_unmap (b, &map);
    GST_BUFFER_PTS (b) = c->t0 + gst_util_uint64_scale_int (i, GST_SECOND, RATE);
    GST_BUFFER_DURATION (b) = c->t0 + gst_util_uint64_scale_int (i + k, GST_SECOND, RATE)
        - GST_BUFFER_PTS (b);
    /* pushed once its last sample is "captured" */
    id = gst_clock_new_single_shot_id (clock, base + GST_BUFFER_PTS (b)
        + GST_BUFFER_DURATION (b));
    gst_clock_id_wait (id, NULL);
    gst_clock_id_unref (id);
    if (gst_app_src_push_buffer (GST_APP_SRC (c->src), b) != GST_FLOW_OK)
      break;
  }
  gst_app_src_end_of_stream (GST_APP_SRC (c->src));
  gst_object_unref (clock);
  return NULL;
}

/* Decodes FILE to 16 kHz S16 mono. */
static gboolean
load_clip (Check * c, const gchar * path)
{
  gchar *esc = g_strescape (path, NULL);
  gchar *desc = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! audioconvert ! "
      "audioresample ! audio/x-raw,format=S16LE,rate=%d,channels=1 ! appsink name=s "
      "sync=false", esc, RATE);
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  GstElement *s;
  GstSample *sample;
  GByteArray *bytes = g_byte_array_new ();
  const gint16 thr = 328;       /* -40 dBFS */

  g_free (esc);
  g_free (desc);
  if (p == NULL) {
    g_printerr ("lfm2-asrcheck: %s\n", err->message);
    return FALSE;
  }
  s = gst_bin_get_by_name (GST_BIN (p), "s");
  gst_element_set_state (p, GST_STATE_PLAYING);
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (s))) != NULL) {
    GstMapInfo map;
    gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ);
    g_byte_array_append (bytes, map.data, map.size);
    gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
    gst_sample_unref (sample);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (s);
  gst_object_unref (p);
  c->n_clip = bytes->len / 2;
  c->clip = (gint16 *) g_byte_array_free (bytes, FALSE);
  c->speech_first = -1;
  for (gint64 i = 0; i < c->n_clip; i++)
    if (ABS (c->clip[i]) > thr) {
      if (c->speech_first < 0)
        c->speech_first = i;
      c->speech_last = i;
    }
  if (c->speech_first < 0) {
    g_printerr ("lfm2-asrcheck: %s: no speech (nothing above -40 dBFS)\n", path);
    return FALSE;
  }
  return TRUE;
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  const gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  Check c;
  const gchar *clip = NULL;
  gdouble max_gap_buffers = 3, max_behind_ms = 100;
  GPtrArray *args = g_ptr_array_new ();
  GError *err = NULL;
  gchar *desc, *caps;
  GstPad *pad;
  GstBus *bus;
  GThread *feeder;
  int rc;

  memset (&c, 0, sizeof (c));
  caps = g_strdup_printf ("caps=audio/x-raw,format=S16LE,rate=%d,channels=1,"
      "layout=interleaved", RATE);
  {
    const gchar *head[] = { "appsrc", "name=src", "is-live=true", "format=time", caps, "!",
      "lfm2asr", "name=asr"
    };
    for (guint i = 0; i < G_N_ELEMENTS (head); i++)
      g_ptr_array_add (args, (gpointer) head[i]);
  }
  c.seconds = 600;
  c.pause_s = 3;
  c.buffer_ms = 20;
  gst_init (&argc, &argv);
  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--seconds") && i + 1 < argc)
      c.seconds = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--clip") && i + 1 < argc)
      clip = argv[++i];
    else if (!strcmp (argv[i], "--pause") && i + 1 < argc)
      c.pause_s = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--buffer-ms") && i + 1 < argc)
      c.buffer_ms = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--max-gap-buffers") && i + 1 < argc)
      max_gap_buffers = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--max-behind-ms") && i + 1 < argc)
      max_behind_ms = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--verbose"))
      c.verbose = TRUE;
    else if (!strcmp (argv[i], "--noise") && i + 1 < argc)
      c.noise_db = g_ascii_strtod (argv[++i], NULL);
    else
      g_ptr_array_add (args, argv[i]);
  }
  {
    const gchar *tail[] = { "!", "queue", "!", "fakesink", "sync=true", NULL };
    for (guint i = 0; i < G_N_ELEMENTS (tail); i++)
      g_ptr_array_add (args, (gpointer) tail[i]);
  }
  if (clip == NULL || c.seconds <= 0 || c.buffer_ms < 1 || c.pause_s < 0) {
    g_printerr ("usage: lfm2-asrcheck --clip FILE [--seconds N] [--pause S] [--buffer-ms B] "
        "[--max-gap-buffers K] [--max-behind-ms M] [--noise DBFS] [--verbose] "
        "LFM2ASR-PROPERTY...\n");
    return 2;
  }
  if (!load_clip (&c, clip))
    return 2;
  c.gap_limit_us = (gint64) (max_gap_buffers * c.buffer_ms * 1000);
  c.max_behind_ms = max_behind_ms;

  desc = g_strjoinv (" ", (gchar **) args->pdata);
  c.pipe = gst_parse_launchv ((const gchar **) args->pdata, &err);
  if (c.pipe == NULL) {
    g_printerr ("lfm2-asrcheck: %s\n", err->message);
    return 2;
  }
  g_mutex_init (&c.lock);
  c.spoken = g_array_new (FALSE, FALSE, sizeof (Spoken));
  c.delays = g_array_new (FALSE, FALSE, sizeof (gdouble));
  c.rng = g_rand_new_with_seed (1);
  c.loop = g_main_loop_new (NULL, FALSE);
  c.src = gst_bin_get_by_name (GST_BIN (c.pipe), "src");
  c.asr = gst_bin_get_by_name (GST_BIN (c.pipe), "asr");
  pad = gst_element_get_static_pad (c.asr, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &c, NULL);
  bus = gst_element_get_bus (c.pipe);
  gst_bus_set_sync_handler (bus, on_sync_message, &c, NULL);
  gst_bus_add_watch (bus, on_message, &c);
  g_printerr ("lfm2-asrcheck: %.0f s of %s + %.1f s pauses in %.0f ms buffers through: %s\n",
      c.seconds, clip, c.pause_s, c.buffer_ms, desc);

  if (gst_element_set_state (c.pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE
      || gst_element_get_state (c.pipe, NULL, NULL, 60 * GST_SECOND)
      == GST_STATE_CHANGE_FAILURE) {
    GstMessage *m;
    g_printerr ("lfm2-asrcheck: the pipeline does not start\n");
    while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) != NULL) {
      on_message (bus, m, &c);
      gst_message_unref (m);
    }
    return 2;
  }
  feeder = g_thread_new ("source", feed, &c);
  g_main_loop_run (c.loop);
  g_thread_join (feeder);

  {
    GstStructure *st = NULL;
    guint64 skipped = 0, dropped = 0, max_delay = GST_CLOCK_TIME_NONE, chain_us = 0;
    const gdouble span_s = (c.last_us - c.first_us) / 1e6;
    const gdouble expected = c.seconds * 1000.0 / c.buffer_ms;
    gdouble mean = 0, med = 0, p90 = 0, max = 0;
    /* utterances whose speech ended before the source stopped */
    guint n_spoken = 0;

    for (guint i = 0; i < c.spoken->len; i++)
      if (g_array_index (c.spoken, Spoken, i).speech_end <= c.t0
          + (GstClockTime) (c.seconds * GST_SECOND))
        n_spoken++;
    g_object_get (c.asr, "stats", &st, NULL);
    gst_structure_get_uint64 (st, "skipped-partials", &skipped);
    gst_structure_get_uint64 (st, "dropped-finals", &dropped);
    gst_structure_get_uint64 (st, "max-delay", &max_delay);
    gst_structure_get_uint64 (st, "max-chain-us", &chain_us);
    gst_structure_free (st);
    if (c.delays->len) {
      g_array_sort (c.delays, cmp_double);
      for (guint i = 0; i < c.delays->len; i++)
        mean += g_array_index (c.delays, gdouble, i) / c.delays->len;
      med = g_array_index (c.delays, gdouble, c.delays->len / 2);
      p90 = g_array_index (c.delays, gdouble, (c.delays->len * 9) / 10);
      max = g_array_index (c.delays, gdouble, c.delays->len - 1);
    }
    printf ("seconds=%.2f\n", span_s);
    printf ("buffers=%" G_GUINT64_FORMAT "\n", c.buffers);
    printf ("expected-buffers=%.0f\n", ceil (expected));
    printf ("buffer-ms=%.1f\n", c.buffer_ms);
    printf ("max-gap-ms=%.1f\n", c.max_gap_us / 1000.0);
    printf ("max-gap-buffers=%.2f\n", c.max_gap_us / 1000.0 / c.buffer_ms);
    printf ("max-behind-ms=%.1f\n", c.max_behind / 1e6);
    printf ("gaps-over-limit=%u\n", c.n_long_gaps);
    printf ("buffers-over-max-behind=%u\n", c.n_late);
    printf ("max-chain-ms=%.2f\n", chain_us / 1000.0);
    printf ("utterances=%u\n", n_spoken);
    printf ("finals=%u\n", c.finals);
    printf ("partials=%u\n", c.partials);
    printf ("skipped-partials=%" G_GUINT64_FORMAT "\n", skipped);
    printf ("dropped-finals=%" G_GUINT64_FORMAT "\n", dropped);
    printf ("final-delay-ms-mean=%.0f\n", mean);
    printf ("final-delay-ms-median=%.0f\n", med);
    printf ("final-delay-ms-p90=%.0f\n", p90);
    printf ("final-delay-ms-max=%.0f\n", max);
    printf ("inference-ms-mean=%.0f\n", c.finals ? c.inference_sum / c.finals : 0.0);
    printf ("inference-ms-max=%.0f\n", c.inference_max);
    if (GST_CLOCK_TIME_IS_VALID (max_delay))
      printf ("max-delay-ms=%.0f\n", max_delay / 1e6);

    if (c.error)
      rc = 2;
    else if (c.buffers < ceil (expected) || c.max_gap_us / 1000.0 > max_gap_buffers * c.buffer_ms
        || c.max_behind / 1e6 > max_behind_ms || dropped > 0 || c.delays->len < n_spoken)
      rc = 1;
    else
      rc = 0;
    printf ("result=%s\n", rc == 0 ? "ok" : "FAILED");
  }

  gst_element_set_state (c.pipe, GST_STATE_NULL);
  gst_object_unref (pad);
  gst_object_unref (c.asr);
  gst_object_unref (c.src);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  gst_object_unref (c.pipe);
  g_main_loop_unref (c.loop);
  g_rand_free (c.rng);
  g_array_unref (c.spoken);
  g_array_unref (c.delays);
  g_free (c.clip);
  g_free (desc);
  g_free (caps);
  g_ptr_array_unref (args);
  return rc;
}
