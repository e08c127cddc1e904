/* gstlfm2speech.c — the speech-output elements' shared parts: vocoder and tokenizer files in
 * the registry, the voice and overflow enums, and the output stage (see gstlfm2speech.h). */
#include "gstlfm2speech.h"

#include <string.h>

#include "gstlfm2tensors.h"

GST_DEBUG_CATEGORY_STATIC (lfm2_speech_debug);
#define GST_CAT_DEFAULT lfm2_speech_debug

static void
ensure_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (lfm2_speech_debug, "lfm2speech", 0, "LFM2.5-Audio speech output");
    g_once_init_leave (&once, 1);
  }
}

/* ---- files ------------------------------------------------------------------------- */

static gpointer
load_vocoder (const gchar * path, GError ** error)
{
  lfm2_vocoder *v;

  lfm2_clear_error ();
  v = lfm2_vocoder_load (path, lfm2_vocoder_default_params ());
  if (v == NULL)
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load LFM2.5-Audio vocoder \"%s\": %s", path,
        lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
  return v;
}

static void
free_vocoder (gpointer v)
{
  lfm2_vocoder_free (v);
}

static gpointer
load_tokenizer (const gchar * path, GError ** error)
{
  lfm2_audio_tokenizer *t;

  lfm2_clear_error ();
  t = lfm2_audio_tokenizer_load (path, lfm2_audio_tokenizer_default_params ());
  if (t == NULL)
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load LFM2.5-Audio tokenizer (detokenizer) \"%s\": %s", path,
        lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
  return t;
}

static void
free_tokenizer (gpointer t)
{
  lfm2_audio_tokenizer_free (t);
}

static GstLfm2Shared *
acquire (const gchar * kind, const gchar * what, const gchar * path, const gchar * property,
    GstLfm2LoadFunc load, GstLfm2FreeFunc free_func, GError ** error)
{
  ensure_debug ();
  if (path == NULL || path[0] == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "No %s file given (set the %s property)", what, property);
    return NULL;
  }
  return gst_lfm2_shared_acquire (kind, path, load, free_func, error);
}

gboolean
gst_lfm2_speech_files_acquire (const gchar * vocoder, const gchar * tokenizer,
    gboolean need_tokenizer, GstLfm2Shared ** voc, GstLfm2Shared ** tok, GError ** error,
    gchar ** debug)
{
  *tok = NULL;
  *voc = acquire (GST_LFM2_KIND_VOCODER, "vocoder", vocoder, "vocoder", load_vocoder,
      free_vocoder, error);
  if (*voc == NULL) {
    *debug = g_strdup_printf ("vocoder property: %s", vocoder ? vocoder : "(null)");
    return FALSE;
  }
  if (tokenizer == NULL && !need_tokenizer)
    return TRUE;
  *tok = acquire (GST_LFM2_KIND_AUDIO_TOKENIZER, "tokenizer", tokenizer, "tokenizer",
      load_tokenizer, free_tokenizer, error);
  if (*tok == NULL) {
    *debug = g_strdup_printf ("tokenizer property: %s", tokenizer ? tokenizer : "(null)");
    gst_lfm2_shared_release (*voc);
    *voc = NULL;
    return FALSE;
  }
  return TRUE;
}

/* The doc comments name lfm2tts; lfm2audiodec and lfm2s2s have the same properties. */
void
gst_lfm2_speech_install_file_properties (GObjectClass * oc, guint first, gboolean codes_only)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  /**
   * GstLfm2Tts:vocoder:
   *
   * Path of the LFM2.5-Audio vocoder GGUF (`vocoder-*.gguf`: the audio head that turns the
   * backbone's hidden state into frames of codes, and the detokenizer's code embedding).
   */
  g_object_class_install_property (oc, first,
      g_param_spec_string ("vocoder", "Vocoder",
          "Path of the LFM2.5-Audio vocoder GGUF (audio head and code embedding; loaded on "
          "READY→PAUSED, shared with other elements naming the same file)", NULL, rw));
  /**
   * GstLfm2Tts:tokenizer:
   *
   * Path of the LFM2.5-Audio tokenizer GGUF (`tokenizer-*.gguf`: the detokenizer that turns
   * codes into a waveform). Without it lfm2tts can only output codes.
   */
  g_object_class_install_property (oc, first + 1,
      g_param_spec_string ("tokenizer", "Tokenizer", codes_only ?
          "Path of the LFM2.5-Audio tokenizer GGUF (detokenizer: codes to waveform; without "
          "it only codes come out)" :
          "Path of the LFM2.5-Audio tokenizer GGUF (detokenizer: codes to waveform)", NULL,
          rw));
}

/* ---- enums ------------------------------------------------------------------------- */

GType
gst_lfm2_voice_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_VOICE_US_MALE, "Perform TTS. Use the US male voice.", "us-male"},
    {GST_LFM2_VOICE_US_FEMALE, "Perform TTS. Use the US female voice.", "us-female"},
    {GST_LFM2_VOICE_UK_MALE, "Perform TTS. Use the UK male voice.", "uk-male"},
    {GST_LFM2_VOICE_UK_FEMALE, "Perform TTS. Use the UK female voice.", "uk-female"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2Voice", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_lfm2_overflow_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_OVERFLOW_CLIP, "Cut the speech at the end of its cue (PTS + duration)", "clip"},
    {GST_LFM2_OVERFLOW_OVERLAP,
        "Start every utterance at its cue's PTS, even when the previous one still runs",
        "overlap"},
    {GST_LFM2_OVERFLOW_SHIFT,
        "Start an utterance after the previous one has ended when that is later than its PTS",
        "shift"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2Overflow", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- caps -------------------------------------------------------------------------- */

GstCaps *
gst_lfm2_codes_caps_new (gint n_codebooks)
{
  GstLfm2TensorsConfig c;
  guint32 dims[2] = { (guint32) n_codebooks, 1 };

  gst_lfm2_tensors_config_init (&c, GST_LFM2_TENSOR_FORMAT_STATIC);
  c.num_tensors = 1;
  gst_lfm2_tensor_info_set (&c.info[0], GST_LFM2_TENSOR_INT32, 2, dims);
  c.rate_n = 25;                /* 12.5 frames per second */
  c.rate_d = 2;
  return gst_lfm2_tensors_caps_from_config (&c);
}

/* ---- the output stage -------------------------------------------------------------- */

void
gst_lfm2_speech_out_init (GstLfm2SpeechOut * out, GstElement * element, GstPad * sinkpad,
    GstPad * srcpad)
{
  ensure_debug ();
  memset (out, 0, sizeof (*out));
  out->element = element;
  out->sinkpad = sinkpad;
  out->srcpad = srcpad;
  gst_lfm2_speech_out_reset (out);
}

void
gst_lfm2_speech_out_reset (GstLfm2SpeechOut * out)
{
  out->discont = TRUE;
  out->u_start = out->u_limit = GST_CLOCK_TIME_NONE;
  out->u_samples = 0;
  out->u_open = out->clipped = FALSE;
  GST_OBJECT_LOCK (out->element);
  gst_segment_init (&out->segment, GST_FORMAT_TIME);
  out->position = GST_CLOCK_TIME_NONE;
  GST_OBJECT_UNLOCK (out->element);
}

static void
set_position (GstLfm2SpeechOut * out, GstClockTime pos)
{
  GST_OBJECT_LOCK (out->element);
  if (!GST_CLOCK_TIME_IS_VALID (out->position) || pos > out->position)
    out->position = pos;
  GST_OBJECT_UNLOCK (out->element);
}

static GstClockTime
get_position (GstLfm2SpeechOut * out)
{
  GstClockTime p;

  GST_OBJECT_LOCK (out->element);
  p = out->position;
  GST_OBJECT_UNLOCK (out->element);
  return p;
}

gboolean
gst_lfm2_speech_out_negotiate (GstLfm2SpeechOut * out, gboolean can_audio,
    gboolean can_codes, gint n_codebooks, gint eoa)
{
  GstCaps *tpl = gst_pad_get_pad_template_caps (out->srcpad);
  GstCaps *peer = gst_pad_peer_query_caps (out->srcpad, tpl);
  GstCaps *caps = NULL;
  gboolean ok;

  out->n_codebooks = n_codebooks;
  out->eoa = eoa;
  /* The first structure downstream prefers that we can produce. */
  for (guint i = 0; caps == NULL && i < gst_caps_get_size (peer); i++) {
    GstStructure *s = gst_caps_get_structure (peer, i);

    if (can_audio && gst_structure_has_name (s, "audio/x-raw")) {
      caps = gst_caps_new_full (gst_structure_copy (s), NULL);
      caps = gst_caps_fixate (caps);
      out->format = g_str_equal (gst_structure_get_string (gst_caps_get_structure (caps, 0),
              "format"), GST_AUDIO_NE (S16)) ? GST_LFM2_SPEECH_S16 : GST_LFM2_SPEECH_F32;
    } else if (can_codes && gst_structure_has_name (s, GST_LFM2_TENSORS_MEDIA_TYPE)) {
      GstCaps *codes = gst_lfm2_codes_caps_new (n_codebooks);

      if (gst_pad_peer_query_accept_caps (out->srcpad, codes)) {
        caps = codes;
        out->format = GST_LFM2_SPEECH_CODES;
      } else {
        gst_caps_unref (codes);
      }
    }
  }
  gst_caps_unref (peer);
  gst_caps_unref (tpl);
  if (caps == NULL) {
    out->format = GST_LFM2_SPEECH_NONE;
    GST_ELEMENT_ERROR (out->element, CORE, NEGOTIATION,
        ("Downstream accepts neither %s", can_audio && can_codes ?
            "24 kHz mono audio nor audio-code tensors" : can_audio ? "24 kHz mono audio" :
            "audio-code tensors (set the tokenizer property for audio)"), (NULL));
    return FALSE;
  }
  GST_DEBUG_OBJECT (out->element, "output %" GST_PTR_FORMAT, caps);
  ok = gst_pad_push_event (out->srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  return ok;
}

gboolean
gst_lfm2_speech_out_set_segment (GstLfm2SpeechOut * out, const GstSegment * in,
    guint32 seqnum)
{
  GstEvent *ev;

  GST_OBJECT_LOCK (out->element);
  if (in && in->format == GST_FORMAT_TIME)
    gst_segment_copy_into (in, &out->segment);
  else
    gst_segment_init (&out->segment, GST_FORMAT_TIME);
  ev = gst_event_new_segment (&out->segment);
  GST_OBJECT_UNLOCK (out->element);
  if (seqnum)
    gst_event_set_seqnum (ev, seqnum);
  return gst_pad_push_event (out->srcpad, ev);
}

GstClockTime
gst_lfm2_speech_out_begin (GstLfm2SpeechOut * out, GstClockTime pts, GstClockTime dur,
    GstLfm2Overflow overflow, GstClockTime latency)
{
  const GstClockTime pos = get_position (out);
  GstQuery *q;

  out->u_samples = 0;
  out->u_open = out->clipped = FALSE;
  out->latency = latency;
  out->u_limit = GST_CLOCK_TIME_NONE;
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    out->u_start = GST_CLOCK_TIME_IS_VALID (pos) ? pos : out->segment.start;
  else if (overflow == GST_LFM2_OVERFLOW_SHIFT && GST_CLOCK_TIME_IS_VALID (pos) && pos > pts)
    out->u_start = pos;
  else
    out->u_start = pts;
  if (overflow == GST_LFM2_OVERFLOW_CLIP && GST_CLOCK_TIME_IS_VALID (pts)
      && GST_CLOCK_TIME_IS_VALID (dur))
    out->u_limit = pts + dur;
  if (GST_CLOCK_TIME_IS_VALID (pos) && out->u_start != pos)
    out->discont = TRUE;

  /* Upstream's latency, for the deadline of live audio. */
  out->live = FALSE;
  out->upstream_min = 0;
  q = gst_query_new_latency ();
  if (gst_pad_peer_query (out->sinkpad, q))
    gst_query_parse_latency (q, &out->live, &out->upstream_min, NULL);
  gst_query_unref (q);
  GST_LOG_OBJECT (out->element, "utterance at %" GST_TIME_FORMAT " (cue %" GST_TIME_FORMAT
      " + %" GST_TIME_FORMAT ")", GST_TIME_ARGS (out->u_start), GST_TIME_ARGS (pts),
      GST_TIME_ARGS (dur));
  return out->u_start;
}

/* Live pipelines: audio for running time rt must be out before rt + upstream latency + ours,
 * or the sink drops it. Late audio is moved forward by its lateness (the rest of the
 * utterance with it), with a warning the first time. */
static void
check_deadline (GstLfm2SpeechOut * out, GstClockTime pts)
{
  GstClock *clock;
  GstClockTime rt, now, deadline, base;

  if (!out->live || GST_STATE (out->element) != GST_STATE_PLAYING)
    return;
  rt = gst_segment_to_running_time (&out->segment, GST_FORMAT_TIME, pts);
  clock = gst_element_get_clock (out->element);
  if (clock == NULL || !GST_CLOCK_TIME_IS_VALID (rt)) {
    gst_clear_object (&clock);
    return;
  }
  now = gst_clock_get_time (clock);
  base = gst_element_get_base_time (out->element);
  gst_object_unref (clock);
  deadline = base + rt + out->upstream_min + out->latency;
  if (now <= deadline)
    return;
  out->u_start += now - deadline;
  out->discont = TRUE;
  GST_OBJECT_LOCK (out->element);
  if (now - deadline > out->max_late)
    out->max_late = now - deadline;
  if (out->warned_late) {
    GST_OBJECT_UNLOCK (out->element);
    return;
  }
  out->warned_late = TRUE;
  GST_OBJECT_UNLOCK (out->element);
  GST_ELEMENT_WARNING (out->element, CORE, CLOCK,
      ("Speech is %" G_GUINT64_FORMAT " ms late for its cue: raise the latency property "
          "(now %" G_GUINT64_FORMAT " ms)", (now - deadline) / GST_MSECOND,
          out->latency / GST_MSECOND), ("late audio is shifted forward"));
}

static GstFlowReturn
push (GstLfm2SpeechOut * out, GstBuffer * buf, GstClockTime pts, GstClockTime end)
{
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = end - pts;
  if (out->discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    out->discont = FALSE;
  }
  set_position (out, end);
  return gst_pad_push (out->srcpad, buf);
}

GstFlowReturn
gst_lfm2_speech_out_samples (GstLfm2SpeechOut * out, const gfloat * x, gint n)
{
  const gsize bps = out->format == GST_LFM2_SPEECH_S16 ? 2 : 4;
  GstClockTime pts, end;
  GstBuffer *buf;
  GstMapInfo map;

  g_return_val_if_fail (out->format == GST_LFM2_SPEECH_S16
      || out->format == GST_LFM2_SPEECH_F32, GST_FLOW_NOT_NEGOTIATED);
  if (n <= 0 || out->clipped)
    return GST_FLOW_OK;
  pts = gst_lfm2_speech_sample_time (out->u_start, out->u_samples);
  if (GST_CLOCK_TIME_IS_VALID (out->u_limit)) {
    /* clip: samples whose time is before the cue's end */
    guint64 limit = out->u_limit > out->u_start ? gst_util_uint64_scale_int_ceil (out->u_limit
        - out->u_start, GST_LFM2_SPEECH_RATE, GST_SECOND) : 0;
    if (out->u_samples + (guint64) n >= limit) {
      out->clipped = TRUE;
      n = (gint) (limit > out->u_samples ? limit - out->u_samples : 0);
      GST_DEBUG_OBJECT (out->element, "clipped at the cue's end %" GST_TIME_FORMAT,
          GST_TIME_ARGS (out->u_limit));
      if (n == 0)
        return GST_FLOW_OK;
    }
  }
  check_deadline (out, pts);
  pts = gst_lfm2_speech_sample_time (out->u_start, out->u_samples);
  end = gst_lfm2_speech_sample_time (out->u_start, out->u_samples + n);
  buf = gst_buffer_new_allocate (NULL, (gsize) n * bps, NULL);
  if (buf == NULL || !gst_buffer_map (buf, &map, GST_MAP_WRITE)) {
    gst_clear_buffer (&buf);
    GST_ELEMENT_ERROR (out->element, RESOURCE, NO_SPACE_LEFT,
        ("Cannot allocate %d samples", n), (NULL));
    return GST_FLOW_ERROR;
  }
  if (out->format == GST_LFM2_SPEECH_S16)
    lfm2_audio_to_s16 (x, (int16_t *) map.data, (size_t) n);
  else
    memcpy (map.data, x, (gsize) n * sizeof (gfloat));
  gst_buffer_unmap (buf, &map);
  out->u_samples += (guint64) n;
  return push (out, buf, pts, end);
}

GstFlowReturn
gst_lfm2_speech_out_frame (GstLfm2SpeechOut * out, const gint32 * codes, gboolean end)
{
  const gsize size = (gsize) out->n_codebooks * sizeof (gint32);
  GstClockTime pts;
  GstBuffer *buf;
  GstMapInfo map;

  g_return_val_if_fail (out->format == GST_LFM2_SPEECH_CODES, GST_FLOW_NOT_NEGOTIATED);
  if (out->clipped || (end && !out->u_open))
    return GST_FLOW_OK;
  pts = gst_lfm2_speech_sample_time (out->u_start, out->u_samples);
  if (!end && GST_CLOCK_TIME_IS_VALID (out->u_limit) && pts >= out->u_limit) {
    /* clip: frames that start before the cue's end; the segment still gets its end */
    GstFlowReturn ret = gst_lfm2_speech_out_frame (out, NULL, TRUE);
    out->clipped = TRUE;
    return ret;
  }
  if (!end)
    check_deadline (out, pts);
  pts = gst_lfm2_speech_sample_time (out->u_start, out->u_samples);
  buf = gst_buffer_new_allocate (NULL, size, NULL);
  if (buf == NULL || !gst_buffer_map (buf, &map, GST_MAP_WRITE)) {
    gst_clear_buffer (&buf);
    GST_ELEMENT_ERROR (out->element, RESOURCE, NO_SPACE_LEFT, ("Cannot allocate a frame"),
        (NULL));
    return GST_FLOW_ERROR;
  }
  if (end) {
    /* the end-of-audio frame, as the model emits it: every codebook at the end code */
    for (gint k = 0; k < out->n_codebooks; k++)
      ((gint32 *) map.data)[k] = out->eoa;
  } else {
    memcpy (map.data, codes, size);
  }
  gst_buffer_unmap (buf, &map);
  out->u_open = !end;
  if (end)
    return push (out, buf, pts, pts);
  out->u_samples += GST_LFM2_SPEECH_FRAME_SAMPLES;
  return push (out, buf, pts, gst_lfm2_speech_sample_time (out->u_start, out->u_samples));
}

GstClockTime
gst_lfm2_speech_out_end (GstLfm2SpeechOut * out)
{
  GstClockTime end;

  if (out->format == GST_LFM2_SPEECH_CODES && out->u_open && !out->clipped)
    gst_lfm2_speech_out_frame (out, NULL, TRUE);
  end = gst_lfm2_speech_sample_time (out->u_start, out->u_samples);
  if (GST_CLOCK_TIME_IS_VALID (out->u_start))
    set_position (out, end);
  return end - out->u_start;
}

/* What an event carries: samples, or the frame of codes. */
static GstFlowReturn
push_event (GstLfm2SpeechOut * out, const struct lfm2_tts_event *ev, GstLfm2SpeechTurn * turn)
{
  const gboolean codes = out->format == GST_LFM2_SPEECH_CODES;
  GstFlowReturn ret = GST_FLOW_OK;

  if (ev->kind == LFM2_TTS_EVENT_AUDIO) {
    turn->frames++;
    ret = codes ? gst_lfm2_speech_out_frame (out, ev->codes, FALSE)
        : gst_lfm2_speech_out_samples (out, ev->samples, ev->n_samples);
    if (turn->first_audio_ms < 0 && (codes || ev->n_samples > 0))
      turn->first_audio_ms = (g_get_monotonic_time () - turn->t0) / 1000.0;
  } else if (ev->kind == LFM2_TTS_EVENT_AUDIO_END) {
    ret = codes ? gst_lfm2_speech_out_frame (out, NULL, TRUE)
        : gst_lfm2_speech_out_samples (out, ev->samples, ev->n_samples);
  }
  return ret;
}

GstFlowReturn
gst_lfm2_speech_out_turn (GstLfm2SpeechOut * out, lfm2_tts * tts, gint max_tokens,
    const gint * cancel, GString * text, GstLfm2SpeechTurn * turn)
{
  struct lfm2_tts_event ev;
  gboolean in_audio = FALSE;
  gint steps = 0, r;

  for (;;) {
    GstFlowReturn ret;

    if (cancel && g_atomic_int_get (cancel))
      return GST_FLOW_FLUSHING;
    if (max_tokens > 0 && steps >= max_tokens) {
      /* stopped inside audio: the decoder's last samples, or the segment's end frame */
      ret = GST_FLOW_OK;
      if (in_audio && out->format == GST_LFM2_SPEECH_CODES) {
        ret = gst_lfm2_speech_out_frame (out, NULL, TRUE);
      } else if (in_audio) {
        gint n = lfm2_audio_decoder_flush (lfm2_tts_decoder (tts), out->tail,
            GST_LFM2_SPEECH_FRAME_SAMPLES);
        ret = gst_lfm2_speech_out_samples (out, out->tail, MAX (n, 0));
      }
      turn->stop = "max-tokens";
      return ret;
    }
    lfm2_clear_error ();
    r = lfm2_tts_step (tts, &ev);
    if (r < 0) {
      GST_ELEMENT_ERROR (out->element, LIBRARY, FAILED, ("Speech generation failed: %s",
              lfm2_last_error ()), (NULL));
      return GST_FLOW_ERROR;
    }
    if (r == 0)
      return GST_FLOW_OK;
    switch (ev.kind) {
      case LFM2_TTS_EVENT_TEXT:
        steps++;
        turn->text_tokens++;
        if (text)
          g_string_append (text, ev.text);
        break;
      case LFM2_TTS_EVENT_AUDIO:
        steps++;
        in_audio = TRUE;
        break;
      case LFM2_TTS_EVENT_AUDIO_END:
        steps += ev.codes != NULL;      /* the end-of-audio frame */
        in_audio = FALSE;
        break;
      case LFM2_TTS_EVENT_DONE:
        turn->stop = ev.stop == LFM2_TTS_STOP_CONTEXT ? "context" : "eog";
        break;
    }
    if ((ret = push_event (out, &ev, turn)) != GST_FLOW_OK)
      return ret;
    if (out->clipped) {
      turn->stop = "clipped";
      return GST_FLOW_OK;
    }
  }
}

void
gst_lfm2_speech_out_gap (GstLfm2SpeechOut * out, GstClockTime pts, GstClockTime dur,
    GstLfm2Overflow overflow)
{
  const GstClockTime pos = get_position (out);
  GstClockTime end;

  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return;
  end = GST_CLOCK_TIME_IS_VALID (dur) ? pts + dur : pts;
  /* After speech that ran past pts (overlap, shift), the silence starts where it ended. */
  if (overflow != GST_LFM2_OVERFLOW_CLIP && GST_CLOCK_TIME_IS_VALID (pos) && pos > pts) {
    if (pos >= end && GST_CLOCK_TIME_IS_VALID (dur))
      return;
    pts = pos;
    if (!GST_CLOCK_TIME_IS_VALID (dur))
      end = pos;
  }
  GST_LOG_OBJECT (out->element, "gap %" GST_TIME_FORMAT " – %" GST_TIME_FORMAT,
      GST_TIME_ARGS (pts), GST_TIME_ARGS (end));
  gst_pad_push_event (out->srcpad, gst_event_new_gap (pts,
          GST_CLOCK_TIME_IS_VALID (dur) ? end - pts : GST_CLOCK_TIME_NONE));
  set_position (out, end);
}

GstClockTime
gst_lfm2_speech_out_position (GstLfm2SpeechOut * out)
{
  GstClockTime p;

  GST_OBJECT_LOCK (out->element);
  p = out->position;
  if (GST_CLOCK_TIME_IS_VALID (p))
    p = gst_segment_to_stream_time (&out->segment, GST_FORMAT_TIME, p);
  GST_OBJECT_UNLOCK (out->element);
  return p;
}

gboolean
gst_lfm2_speech_out_query_latency (GstLfm2SpeechOut * out, GstQuery * query,
    GstClockTime latency)
{
  GstClockTime min, max;
  gboolean live;

  if (!gst_pad_peer_query (out->sinkpad, query))
    return FALSE;
  gst_query_parse_latency (query, &live, &min, &max);
  if (live) {
    min += latency;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += latency;
    gst_query_set_latency (query, live, min, max);
  }
  GST_DEBUG_OBJECT (out->element, "latency: live %d, min %" GST_TIME_FORMAT ", max %"
      GST_TIME_FORMAT, live, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
  return TRUE;
}
