/* gstlfm2audioenc.c — lfm2audioenc: LFM2-Audio embeddings of the utterances in an audio
 * stream. */

/**
 * SECTION:element-lfm2audioenc
 * @title: lfm2audioenc
 * @short_description: LFM2-Audio utterance embeddings as NNStreamer tensors
 *
 * Raw audio in (any rate, sample format and channel count; converted to 16 kHz mono
 * internally), cut into utterances by the same voice-activity detector as lfm2asr
 * (#GstLfm2AudioEnc:vad-threshold, #GstLfm2AudioEnc:min-silence, #GstLfm2AudioEnc:max-segment).
 * Every utterance goes through the log-mel front-end, the FastConformer encoder and the
 * adapter of an `lfm2a` mmproj GGUF, and comes out as one buffer of NNStreamer
 * `other/tensors` (docs/tensor-caps.md):
 *
 *   tensor 0  float32  n_embd:n_rows   one row per 80 ms of audio
 *
 * with the PTS and duration of the utterance. The row count depends on the utterance, so
 * the output is `format=flexible` (a 128-byte header per tensor). LFM2-Audio puts no marker
 * tokens around its audio rows (llama.cpp's mtmd neither), so there is no layout tensor: a
 * decoder splices the rows alone into the user turn. Between utterances `src` carries GAP
 * events.
 *
 * `lfm2audioenc ! lfm2text system-prompt="Perform ASR." temperature=0` transcribes: it gives
 * the final text lfm2asr gives for the same utterances. Encoding runs in the streaming
 * thread and an utterance leaves once it has closed; for live input put a queue in front, or
 * use lfm2asr.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=talk.wav ! decodebin ! audioconvert ! \
 *     lfm2audioenc mmproj=mmproj-LFM2-Audio-1.5B-F16.gguf model=LFM2-Audio-1.5B-Q8_0.gguf ! \
 *     lfm2text model=LFM2-Audio-1.5B-Q8_0.gguf system-prompt="Perform ASR." temperature=0 ! \
 *     fdsink fd=1
 * ]|
 */
#include "gstlfm2audioenc.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_audioenc_debug);
#define GST_CAT_DEFAULT gst_lfm2_audioenc_debug

#define DEFAULT_N_THREADS 0
/* GAPs go out when the settled position has moved this far. */
#define GAP_STEP (100 * GST_MSECOND)

enum {
  PROP_0,
  PROP_MODEL,
  PROP_N_THREADS,
  PROP_AUDIO_FIRST,             /* mmproj, frontend, vad-threshold, min-silence, max-segment */
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_AUDIO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_TENSORS_CAPS_FLEXIBLE));

G_DEFINE_TYPE (GstLfm2AudioEnc, gst_lfm2_audioenc, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2audioenc, "lfm2audioenc", GST_RANK_NONE,
    GST_TYPE_LFM2_AUDIOENC,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_audioenc_debug, "lfm2audioenc", 0,
        "LFM2-Audio encoder"));

static void gst_lfm2_audioenc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_audioenc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_audioenc_finalize (GObject * object);
static GstStateChangeReturn gst_lfm2_audioenc_change_state (GstElement * element,
    GstStateChange transition);
static GstFlowReturn gst_lfm2_audioenc_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buf);
static gboolean gst_lfm2_audioenc_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static gboolean gst_lfm2_audioenc_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query);

static void
gst_lfm2_audioenc_class_init (GstLfm2AudioEncClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_lfm2_audioenc_set_property;
  gobject_class->get_property = gst_lfm2_audioenc_get_property;
  gobject_class->finalize = gst_lfm2_audioenc_finalize;

  /**
   * GstLfm2AudioEnc:model:
   *
   * Path of the LFM2-Audio backbone the embeddings are for (optional). With it the output
   * caps carry its model-id, and READY→PAUSED checks that the adapter's width matches.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Text model",
          "Path of the LFM2-Audio backbone GGUF the embeddings are for: adds its model-id to "
          "the output caps and checks the embedding width (NULL = rows only)", NULL, rw));
  /**
   * GstLfm2AudioEnc:n-threads:
   *
   * Worker threads of the audio encoder; 0 uses one per core.
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Worker threads of the audio encoder (0 = one per core)", 0, 1024,
          DEFAULT_N_THREADS, rw));
  gst_lfm2_audio_install_properties (gobject_class, PROP_AUDIO_FIRST);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2-Audio encoder", "Filter/Converter/Audio",
      "Cuts audio into utterances by voice activity and turns each into LFM2-Audio "
      "embeddings (NNStreamer other/tensors)", "lfm2-gst developers");
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_lfm2_audioenc_change_state);
}

static void
gst_lfm2_audioenc_init (GstLfm2AudioEnc * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_audioenc_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_audioenc_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_lfm2_audioenc_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  gst_lfm2_audio_settings_init (&self->audio);
  self->n_threads = DEFAULT_N_THREADS;
  gst_lfm2_audio_in_init (&self->in);
  self->gap_sent = self->out_pos = GST_CLOCK_TIME_NONE;
}

static void
release (GstLfm2AudioEnc * self)
{
  gst_lfm2_audio_enc_stop (&self->enc);
  gst_lfm2_audio_in_stop (&self->in);
  gst_lfm2_shared_release (self->text_shared);
  self->text_shared = NULL;
  GST_OBJECT_LOCK (self);
  g_clear_pointer (&self->model_id, g_free);
  self->n_embd = 0;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lfm2_audioenc_finalize (GObject * object)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (object);

  /* PAUSED→READY released these; an element disposed in PAUSED did not. */
  release (self);
  gst_lfm2_audio_settings_clear (&self->audio);
  g_free (self->model);
  G_OBJECT_CLASS (gst_lfm2_audioenc_parent_class)->finalize (object);
}

static void
gst_lfm2_audioenc_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    default:
      if (!gst_lfm2_audio_settings_set_property (&self->audio, prop_id, PROP_AUDIO_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lfm2_audioenc_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    default:
      if (!gst_lfm2_audio_settings_get_property (&self->audio, prop_id, PROP_AUDIO_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* READY→PAUSED: the text model (optional), the mmproj, the detector. Errors name the files. */
static gboolean
start (GstLfm2AudioEnc * self)
{
  GstLfm2AudioSettings as;
  struct lfm2_vad_params vp;
  const lfm2_model *text = NULL;
  gchar *model;
  gint n_threads;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  as = self->audio;
  as.mmproj = g_strdup (self->audio.mmproj);
  model = g_strdup (self->model);
  n_threads = self->n_threads;
  GST_OBJECT_UNLOCK (self);
  vp = gst_lfm2_audio_settings_vad_params (&as);

  if (!gst_lfm2_model_acquire_optional (GST_ELEMENT (self), model, &self->text_shared))
    goto fail;
  if (self->text_shared)
    text = gst_lfm2_shared_model (self->text_shared);
  if (!gst_lfm2_audio_enc_start (&self->enc, &as, n_threads, text, &err)) {
    gchar *dbg = g_strdup_printf ("mmproj property: %s", as.mmproj ? as.mmproj : "(null)");
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
    g_free (dbg);
    goto fail;
  }
  if (!gst_lfm2_audio_in_start (&self->in, &vp, &err)) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    goto fail;
  }
  /* the src caps query reads these from other threads */
  GST_OBJECT_LOCK (self);
  self->n_embd = self->enc.n_embd;
  g_free (self->model_id);
  self->model_id = text ? g_strdup (lfm2_model_id (text)) : NULL;
  GST_OBJECT_UNLOCK (self);
  self->last_ret = GST_FLOW_OK;
  self->gap_sent = self->out_pos = GST_CLOCK_TIME_NONE;
  gst_lfm2_audio_settings_clear (&as);
  g_free (model);
  return TRUE;

fail:
  g_clear_error (&err);
  release (self);
  gst_lfm2_audio_settings_clear (&as);
  g_free (model);
  return FALSE;
}

static GstStateChangeReturn
gst_lfm2_audioenc_change_state (GstElement * element, GstStateChange transition)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start (self))
    return GST_STATE_CHANGE_FAILURE;
  ret = GST_ELEMENT_CLASS (gst_lfm2_audioenc_parent_class)->change_state (element,
      transition);
  /* the pads are inactive now (or never became active): nothing streams any more */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    release (self);
  return ret;
}

/* ---- the stream ---------------------------------------------------------------------- */

/* The output caps: flexible tensors of the adapter's width (and the text model's id). */
static GstCaps *
src_caps (GstLfm2AudioEnc * self)
{
  GstCaps *caps;

  GST_OBJECT_LOCK (self);
  caps = self->n_embd > 0 ? gst_lfm2_embd_caps_new (TRUE, self->n_embd, 0, 0,
      self->model_id, 0, 1) : NULL;
  GST_OBJECT_UNLOCK (self);
  return caps;
}

/* Tells downstream that nothing comes before `end`. */
static void
push_gap (GstLfm2AudioEnc * self, GstClockTime end)
{
  GstClockTime start = self->out_pos;

  if (!GST_CLOCK_TIME_IS_VALID (start))
    start = self->in.segment.start;
  if (!GST_CLOCK_TIME_IS_VALID (end) || end <= start)
    return;
  gst_pad_push_event (self->srcpad, gst_event_new_gap (start, end - start));
  self->out_pos = self->gap_sent = end;
}

/* A closed utterance: its embeddings, straight into the output buffer. */
static void
on_utterance (const GstLfm2Utterance * u, gpointer user_data)
{
  GstLfm2AudioEnc *self = user_data;
  const gint rows = gst_lfm2_audio_enc_n_rows (u->n);
  GError *err = NULL;
  GstBuffer *buf;
  gfloat *embd;
  GstFlowReturn ret;

  if (self->last_ret != GST_FLOW_OK)
    return;
  buf = gst_lfm2_embd_buffer_new (TRUE, self->enc.n_embd, rows, 0, &embd, NULL);
  if (buf == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Cannot allocate %d audio embedding rows", rows), (NULL));
    self->last_ret = GST_FLOW_ERROR;
    return;
  }
  if (gst_lfm2_audio_enc_encode (&self->enc, u->pcm, u->n, embd,
          (gsize) rows * self->enc.n_embd, &err) < 0) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    gst_buffer_unref (buf);
    self->last_ret = GST_FLOW_ERROR;
    return;
  }
  GST_BUFFER_PTS (buf) = u->pts;
  GST_BUFFER_DURATION (buf) = u->duration;
  GST_DEBUG_OBJECT (self, "utterance %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT ": %d rows "
      "in %.1f ms", GST_TIME_ARGS (u->pts), GST_TIME_ARGS (u->duration), rows,
      self->enc.last_encode_ms);
  self->out_pos = u->pts + u->duration;
  ret = gst_pad_push (self->srcpad, buf);
  if (ret != GST_FLOW_OK)
    self->last_ret = ret;
}

static void
maybe_push_gap (GstLfm2AudioEnc * self, GstClockTime end, gboolean force)
{
  if (GST_CLOCK_TIME_IS_VALID (end) && (force || !GST_CLOCK_TIME_IS_VALID (self->gap_sent)
          || end >= self->gap_sent + GAP_STEP))
    push_gap (self, end);
}

static GstFlowReturn
gst_lfm2_audioenc_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (parent);
  GstFlowReturn ret;

  ret = gst_lfm2_audio_in_chain (&self->in, GST_ELEMENT (self), buf, on_utterance, self);
  if (ret != GST_FLOW_OK)
    return ret;
  if (self->last_ret == GST_FLOW_OK)
    maybe_push_gap (self, gst_lfm2_audio_in_settled (&self->in), FALSE);
  return self->last_ret;
}

static gboolean
set_caps (GstLfm2AudioEnc * self, GstEvent * event)
{
  GstCaps *out;
  gboolean ok;

  if (!gst_lfm2_audio_in_caps_event (&self->in, GST_ELEMENT (self), event, on_utterance,
          self))
    return FALSE;
  if (gst_pad_has_current_caps (self->srcpad))
    return TRUE;                /* the output does not depend on the input format */
  out = src_caps (self);
  if (out == NULL)
    return FALSE;
  ok = gst_pad_set_caps (self->srcpad, out);
  if (!ok)
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("downstream refuses %" GST_PTR_FORMAT, out));
  gst_caps_unref (out);
  return ok;
}

static gboolean
gst_lfm2_audioenc_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:
      return set_caps (self, event);
    case GST_EVENT_SEGMENT:
      event = gst_lfm2_audio_in_segment_event (&self->in, event, on_utterance, self);
      self->out_pos = self->gap_sent = GST_CLOCK_TIME_NONE;
      return gst_pad_push_event (self->srcpad, event);
    case GST_EVENT_GAP:
      maybe_push_gap (self, gst_lfm2_audio_in_gap_event (&self->in, event, on_utterance, self),
          TRUE);
      return TRUE;
    case GST_EVENT_EOS:
      /* the open utterance closes and goes out before EOS */
      gst_lfm2_audio_in_drain (&self->in, on_utterance, self);
      maybe_push_gap (self, gst_lfm2_audio_in_end (&self->in), TRUE);
      return gst_pad_push_event (self->srcpad, event);
    case GST_EVENT_FLUSH_STOP:
      gst_lfm2_audio_in_reset (&self->in);
      self->last_ret = GST_FLOW_OK;
      self->out_pos = self->gap_sent = GST_CLOCK_TIME_NONE;
      return gst_pad_push_event (self->srcpad, event);
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static gboolean
gst_lfm2_audioenc_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2AudioEnc *self = GST_LFM2_AUDIOENC (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS) {
    GstCaps *caps = gst_pad_get_current_caps (pad);

    /* with the mmproj loaded the width is known before any data */
    if (caps == NULL)
      caps = src_caps (self);
    if (caps == NULL)
      caps = gst_pad_get_pad_template_caps (pad);
    return gst_lfm2_query_set_caps (query, caps);
  }
  return gst_pad_query_default (pad, parent, query);
}
