/* lfm2-flowcheck — runs a gst-launch pipeline description and measures whether the video
 * kept flowing through an lfm2vl element while it captioned.
 *
 *   lfm2-flowcheck [--seconds N] [--element NAME] [--max-gap-frames K] [--max-behind-ms M]
 *                  PIPELINE-DESCRIPTION…
 *
 * The description is what gst-launch-1.0 takes (one string or several arguments). A probe on
 * NAME's `src` pad (default "vl") records, for every video buffer, the wall-clock time it left
 * the element and how far that is behind the pipeline clock (running time of its PTS); the
 * bus gives the `lfm2vl/caption` messages. After N seconds (default 60) the pipeline gets EOS
 * and the run ends when EOS reaches the bus. Printed as key=value lines:
 *
 *   frames, expected-frames, fps, max-gap-ms, max-gap-frames, max-behind-ms, captions,
 *   skipped-frames, caption-ms-mean, caption-ms-max, caption-image-tokens (min–max),
 *   max-caption-delay-ms, element-us-mean / element-us-max (how long each frame took from
 *   NAME's sink pad to its src pad: the element's own work in the streaming thread)
 *
 * With LFM2_FLOWCHECK_TRACE=FILE set, FILE gets a line per frame ("frame T_MS BEHIND_MS": wall
 * time since the first frame, how far behind the clock it left) and per caption ("caption
 * T_MS INFERENCE_MS IMAGE_TOKENS"), to see when a run fell behind.
 *
 * Exit status 0 when the video kept its rate: at least 95 % of the frames the source rate
 * promises came through, no gap between two frames longer than K frame durations (default
 * 3), no frame left more than M ms behind the clock (when --max-behind-ms is given), and at
 * least one caption; 1 otherwise, 2 on a pipeline error.
 */
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GMutex lock;
  guint64 frames;
  gint64 first_us, last_us, max_gap_us;
  gint64 enter_us, in_sum_us, in_max_us;   /* sink → src time per frame */
  guint64 in_frames;
  GstClockTimeDiff max_behind;
  GstSegment segment;
  gint fps_n, fps_d;
  guint captions;
  gdouble caption_ms_sum, caption_ms_max;
  gint tokens_min, tokens_max;
  GMainLoop *loop;
  gboolean error;
  FILE *trace;
} Flow;

static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Flow *f = data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  const gint64 now = g_get_monotonic_time ();
  GstElement *parent = GST_ELEMENT (gst_pad_get_parent (pad));
  GstClock *clock = parent ? gst_element_get_clock (parent) : NULL;

  g_mutex_lock (&f->lock);
  if (f->enter_us) {
    const gint64 d = now - f->enter_us;
    f->in_sum_us += d;
    f->in_max_us = MAX (f->in_max_us, d);
    f->in_frames++;
    f->enter_us = 0;
  }
  if (f->frames == 0)
    f->first_us = now;
  else if (now - f->last_us > f->max_gap_us)
    f->max_gap_us = now - f->last_us;
  f->last_us = now;
  f->frames++;
  /* how late the frame leaves lfm2vl compared with when it should be shown (no latency) */
  if (clock && GST_BUFFER_PTS_IS_VALID (buf)) {
    GstClockTime rt = gst_segment_to_running_time (&f->segment, GST_FORMAT_TIME,
        GST_BUFFER_PTS (buf));
    GstClockTime base = gst_element_get_base_time (parent);
    if (GST_CLOCK_TIME_IS_VALID (rt)) {
      GstClockTimeDiff behind = GST_CLOCK_DIFF (base + rt, gst_clock_get_time (clock));
      if (behind > f->max_behind)
        f->max_behind = behind;
      if (f->trace)
        fprintf (f->trace, "frame %.1f %.1f\n", (now - f->first_us) / 1000.0, behind / 1e6);
    }
  }
  g_mutex_unlock (&f->lock);
  if (clock)
    gst_object_unref (clock);
  if (parent)
    gst_object_unref (parent);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_sink_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Flow *f = data;

  g_mutex_lock (&f->lock);
  f->enter_us = g_get_monotonic_time ();
  g_mutex_unlock (&f->lock);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_event (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Flow *f = data;
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);

  g_mutex_lock (&f->lock);
  if (GST_EVENT_TYPE (ev) == GST_EVENT_SEGMENT) {
    const GstSegment *s;
    gst_event_parse_segment (ev, &s);
    gst_segment_copy_into (s, &f->segment);
  } else if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
    GstCaps *caps;
    gst_event_parse_caps (ev, &caps);
    gst_structure_get_fraction (gst_caps_get_structure (caps, 0), "framerate", &f->fps_n,
        &f->fps_d);
  }
  g_mutex_unlock (&f->lock);
  return GST_PAD_PROBE_OK;
}

static gboolean
on_message (GstBus * bus, GstMessage * m, gpointer data)
{
  Flow *f = data;

  switch (GST_MESSAGE_TYPE (m)) {
    case GST_MESSAGE_ELEMENT:{
      const GstStructure *s = gst_message_get_structure (m);
      gdouble ms;
      gint n;
      if (gst_structure_has_name (s, "lfm2vl/caption")) {
        f->captions++;
        if (gst_structure_get_double (s, "inference-ms", &ms)) {
          f->caption_ms_sum += ms;
          f->caption_ms_max = MAX (f->caption_ms_max, ms);
        }
        if (gst_structure_get_int (s, "image-tokens", &n)) {
          f->tokens_min = f->captions == 1 ? n : MIN (f->tokens_min, n);
          f->tokens_max = MAX (f->tokens_max, n);
        }
        if (f->trace) {
          g_mutex_lock (&f->lock);
          fprintf (f->trace, "caption %.1f %.1f %d\n",
              f->frames ? (g_get_monotonic_time () - f->first_us) / 1000.0 : 0.0,
              gst_structure_get_double (s, "inference-ms", &ms) ? ms : -1.0,
              gst_structure_get_int (s, "image-tokens", &n) ? n : -1);
          g_mutex_unlock (&f->lock);
        }
      }
      break;
    }
    case GST_MESSAGE_ERROR:{
      GError *err;
      gchar *dbg;
      gst_message_parse_error (m, &err, &dbg);
      g_printerr ("lfm2-flowcheck: error from %s: %s\n%s\n", GST_OBJECT_NAME (m->src),
          err->message, dbg ? dbg : "");
      g_error_free (err);
      g_free (dbg);
      f->error = TRUE;
      g_main_loop_quit (f->loop);
      break;
    }
    case GST_MESSAGE_WARNING:{
      GError *err;
      gst_message_parse_warning (m, &err, NULL);
      g_printerr ("lfm2-flowcheck: warning from %s: %s\n", GST_OBJECT_NAME (m->src),
          err->message);
      g_error_free (err);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (f->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

static gboolean
send_eos (gpointer pipeline)
{
  gst_element_send_event (GST_ELEMENT (pipeline), gst_event_new_eos ());
  return G_SOURCE_REMOVE;
}

static gboolean
give_up (gpointer loop)
{
  g_printerr ("lfm2-flowcheck: EOS did not arrive within 60 s of sending it\n");
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  gdouble seconds = 60, max_gap_frames = 3, max_behind_ms = 0;
  const gchar *name = "vl";
  GString *desc = g_string_new (NULL);
  GstElement *pipe, *vl;
  GstPad *pad;
  GstBus *bus;
  GError *err = NULL;
  Flow f;
  int i, rc;

  gst_init (&argc, &argv);
  for (i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--seconds") && i + 1 < argc)
      seconds = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--element") && i + 1 < argc)
      name = argv[++i];
    else if (!strcmp (argv[i], "--max-gap-frames") && i + 1 < argc)
      max_gap_frames = g_ascii_strtod (argv[++i], NULL);
    else if (!strcmp (argv[i], "--max-behind-ms") && i + 1 < argc)
      max_behind_ms = g_ascii_strtod (argv[++i], NULL);
    else
      g_string_append_printf (desc, "%s ", argv[i]);
  }
  if (desc->len == 0 || seconds <= 0) {
    g_printerr ("usage: lfm2-flowcheck [--seconds N] [--element NAME] [--max-gap-frames K] "
        "[--max-behind-ms M] PIPELINE-DESCRIPTION...\n");
    return 2;
  }

  pipe = gst_parse_launch (desc->str, &err);
  if (pipe == NULL) {
    g_printerr ("lfm2-flowcheck: %s\n", err->message);
    return 2;
  }
  vl = gst_bin_get_by_name (GST_BIN (pipe), name);
  if (vl == NULL || (pad = gst_element_get_static_pad (vl, "src")) == NULL) {
    g_printerr ("lfm2-flowcheck: no element \"%s\" with a src pad in the pipeline\n", name);
    return 2;
  }

  memset (&f, 0, sizeof (f));
  g_mutex_init (&f.lock);
  gst_segment_init (&f.segment, GST_FORMAT_TIME);
  if (g_getenv ("LFM2_FLOWCHECK_TRACE") != NULL
      && (f.trace = fopen (g_getenv ("LFM2_FLOWCHECK_TRACE"), "w")) == NULL)
    g_printerr ("lfm2-flowcheck: cannot write %s\n", g_getenv ("LFM2_FLOWCHECK_TRACE"));
  f.loop = g_main_loop_new (NULL, FALSE);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &f, NULL);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_event, &f, NULL);
  {
    GstPad *sink = gst_element_get_static_pad (vl, "sink");
    if (sink) {
      gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER, on_sink_buffer, &f, NULL);
      gst_object_unref (sink);
    }
  }
  bus = gst_element_get_bus (pipe);
  gst_bus_add_watch (bus, on_message, &f);

  if (gst_element_set_state (pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("lfm2-flowcheck: the pipeline does not start\n");
    while (TRUE) {
      GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
      if (m == NULL)
        break;
      on_message (bus, m, &f);
      gst_message_unref (m);
    }
    return 2;
  }
  g_timeout_add ((guint) (seconds * 1000), send_eos, pipe);
  g_timeout_add ((guint) (seconds * 1000) + 60000, give_up, f.loop);
  g_main_loop_run (f.loop);

  {
    GstStructure *stats = NULL;
    guint64 skipped = 0, max_delay = GST_CLOCK_TIME_NONE;
    const gdouble frame_ms = f.fps_n > 0 ? 1000.0 * f.fps_d / f.fps_n : 0;
    const gdouble span_s = (f.last_us - f.first_us) / 1e6;
    const gdouble expected = f.fps_n > 0 ? span_s * f.fps_n / f.fps_d + 1 : 0;

    if (g_object_class_find_property (G_OBJECT_GET_CLASS (vl), "stats")) {
      g_object_get (vl, "stats", &stats, NULL);
      gst_structure_get_uint64 (stats, "skipped-frames", &skipped);
      gst_structure_get_uint64 (stats, "max-delay", &max_delay);
      gst_structure_free (stats);
    }
    printf ("frames=%" G_GUINT64_FORMAT "\n", f.frames);
    printf ("expected-frames=%.0f\n", expected);
    printf ("seconds=%.2f\n", span_s);
    printf ("fps=%.2f\n", span_s > 0 ? (f.frames - 1) / span_s : 0.0);
    printf ("frame-ms=%.2f\n", frame_ms);
    printf ("max-gap-ms=%.1f\n", f.max_gap_us / 1000.0);
    printf ("max-gap-frames=%.2f\n", frame_ms > 0 ? f.max_gap_us / 1000.0 / frame_ms : 0.0);
    printf ("max-behind-ms=%.1f\n", f.max_behind / 1e6);
    printf ("captions=%u\n", f.captions);
    printf ("skipped-frames=%" G_GUINT64_FORMAT "\n", skipped);
    printf ("caption-ms-mean=%.1f\n", f.captions ? f.caption_ms_sum / f.captions : 0.0);
    printf ("caption-ms-max=%.1f\n", f.caption_ms_max);
    printf ("caption-image-tokens=%d-%d\n", f.tokens_min, f.tokens_max);
    if (GST_CLOCK_TIME_IS_VALID (max_delay))
      printf ("max-caption-delay-ms=%.1f\n", max_delay / 1e6);
    printf ("element-us-mean=%.0f\n", f.in_frames ? (gdouble) f.in_sum_us / f.in_frames : 0.0);
    printf ("element-us-max=%" G_GINT64_FORMAT "\n", f.in_max_us);

    if (f.error)
      rc = 2;
    else if (frame_ms <= 0 || f.frames < 0.95 * expected
        || f.max_gap_us / 1000.0 > max_gap_frames * frame_ms || f.captions == 0
        || (max_behind_ms > 0 && f.max_behind / 1e6 > max_behind_ms))
      rc = 1;
    else
      rc = 0;
    printf ("result=%s\n", rc == 0 ? "ok" : "FAILED");
  }

  gst_element_set_state (pipe, GST_STATE_NULL);
  if (f.trace)
    fclose (f.trace);
  gst_object_unref (pad);
  gst_object_unref (vl);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  gst_object_unref (pipe);
  g_main_loop_unref (f.loop);
  g_string_free (desc, TRUE);
  return rc;
}
