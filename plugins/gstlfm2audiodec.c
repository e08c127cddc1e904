/* gstlfm2audiodec.c — lfm2audiodec: LFM2.5-Audio codes to 24 kHz audio. */

/**
 * SECTION:element-lfm2audiodec
 * @title: lfm2audiodec
 * @short_description: LFM2.5-Audio codes to speech (detokenizer + ISTFT)
 *
 * Frames of audio codes in, as NNStreamer tensors (`other/tensors`, one int32 tensor `8:N`:
 * N frames of 8 codebooks; `format=static` or `flexible`), 24 kHz mono audio out (`S16LE` or
 * `F32LE`). It is the vocoding half of lfm2tts, so generation and vocoding can run as two
 * elements (`lfm2tts ! lfm2audiodec`, or codes recorded and decoded later); the samples and
 * timestamps are those lfm2tts would have pushed itself.
 *
 * Codes are 0 … 2047. A frame whose first code is 2048 (the end-of-audio frame the model
 * emits, every code 2048) ends an utterance: the last 480 samples go out and the next frame
 * starts a new utterance at its PTS. EOS, a GAP and a flush end it too. Any other code
 * outside 0 … 2047 is a STREAM DECODE error naming the frame and the codebook; nothing of
 * that buffer is decoded.
 *
 * Timestamps: an utterance starts at the PTS of its first frame (or right after the previous
 * one without a PTS); sample n of it is at start + n / 24000 s. A frame later than the
 * utterance's time by more than half a frame moves the rest of the utterance to it (as
 * lfm2tts does for late audio). The first frame gives 1440 samples (the ISTFT's "same"
 * padding), the following ones 1920, the end 480: N frames are exactly 1920·N samples.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 appsrc ! lfm2tts model=m.gguf vocoder=voc.gguf ! \
 *     lfm2audiodec vocoder=voc.gguf tokenizer=tok.gguf ! audioconvert ! autoaudiosink
 * ]|
 */
#include "gstlfm2audiodec.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_audiodec_debug);
#define GST_CAT_DEFAULT gst_lfm2_audiodec_debug

enum {
  PROP_0,
  PROP_VOCODER,
  PROP_TOKENIZER,
  PROP_N_THREADS,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_LFM2_TENSORS_CAPS_STATIC "; " GST_LFM2_TENSORS_CAPS_FLEXIBLE));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_SPEECH_AUDIO_CAPS));

G_DEFINE_TYPE (GstLfm2AudioDec, gst_lfm2_audiodec, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2audiodec, "lfm2audiodec", GST_RANK_NONE,
    GST_TYPE_LFM2_AUDIODEC,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_audiodec_debug, "lfm2audiodec", 0,
        "LFM2.5-Audio codes to audio"));

static void gst_lfm2_audiodec_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_audiodec_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_audiodec_finalize (GObject * object);
static GstStateChangeReturn gst_lfm2_audiodec_change_state (GstElement * element,
    GstStateChange transition);
static GstFlowReturn gst_lfm2_audiodec_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buf);
static gboolean gst_lfm2_audiodec_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static gboolean gst_lfm2_audiodec_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query);

static void
gst_lfm2_audiodec_class_init (GstLfm2AudioDecClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_lfm2_audiodec_set_property;
  gobject_class->get_property = gst_lfm2_audiodec_get_property;
  gobject_class->finalize = gst_lfm2_audiodec_finalize;

  gst_lfm2_speech_install_file_properties (gobject_class, PROP_VOCODER, FALSE);
  /**
   * GstLfm2AudioDec:n-threads:
   *
   * Worker threads of the detokenizer; 0 uses one per core.
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Worker threads of the detokenizer (0 = one per core)", 0, 1024, 0, rw));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2.5-Audio codes to audio", "Codec/Decoder/Audio",
      "Turns frames of LFM2.5-Audio codes (NNStreamer tensors) into 24 kHz speech with the "
      "detokenizer and ISTFT", "lfm2-gst developers");
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_lfm2_audiodec_change_state);
}

static void
gst_lfm2_audiodec_init (GstLfm2AudioDec * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_audiodec_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_audiodec_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_lfm2_audiodec_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  gst_lfm2_speech_out_init (&self->out, GST_ELEMENT (self), self->sinkpad, self->srcpad);
}

static void
stop (GstLfm2AudioDec * self)
{
  g_clear_pointer (&self->dec, lfm2_audio_decoder_free);
  gst_lfm2_shared_release (self->tokenizer);
  gst_lfm2_shared_release (self->vocoder);
  self->tokenizer = self->vocoder = NULL;
  g_clear_pointer (&self->samples, g_free);
  self->samples_cap = 0;
}

static void
gst_lfm2_audiodec_finalize (GObject * object)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (object);

  stop (self);
  g_free (self->vocoder_path);
  g_free (self->tokenizer_path);
  G_OBJECT_CLASS (gst_lfm2_audiodec_parent_class)->finalize (object);
}

static void
gst_lfm2_audiodec_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_free (self->vocoder_path);
      self->vocoder_path = g_value_dup_string (value);
      break;
    case PROP_TOKENIZER:
      g_free (self->tokenizer_path);
      self->tokenizer_path = g_value_dup_string (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lfm2_audiodec_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_value_set_string (value, self->vocoder_path);
      break;
    case PROP_TOKENIZER:
      g_value_set_string (value, self->tokenizer_path);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- READY↔PAUSED ------------------------------------------------------------------ */

/* The vocoder and tokenizer (checked against each other), and the streaming decoder.
 * Errors are posted naming the files. */
static gboolean
start (GstLfm2AudioDec * self)
{
  struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params ();
  gchar *voc_path, *tok_path, *dbg = NULL;
  const struct lfm2_vocoder_hparams *hp;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  voc_path = g_strdup (self->vocoder_path);
  tok_path = g_strdup (self->tokenizer_path);
  dp.n_threads = self->n_threads;
  GST_OBJECT_UNLOCK (self);

  if (!gst_lfm2_speech_files_acquire (voc_path, tok_path, TRUE, &self->vocoder,
          &self->tokenizer, &err, &dbg))
    goto fail;
  lfm2_clear_error ();
  self->dec = lfm2_audio_decoder_new (gst_lfm2_shared_vocoder (self->vocoder),
      gst_lfm2_shared_audio_tokenizer (self->tokenizer), dp);
  if (self->dec == NULL) {
    /* the library's message names both files */
    g_set_error (&err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "%s",
        lfm2_last_error ());
    dbg = g_strdup_printf ("vocoder: %s, tokenizer: %s", voc_path, tok_path);
    goto fail;
  }
  hp = lfm2_vocoder_get_hparams (gst_lfm2_shared_vocoder (self->vocoder));
  self->n_codebooks = hp->n_codebooks;
  self->eoa = hp->eoa;
  self->open = FALSE;
  gst_lfm2_speech_out_reset (&self->out);
  self->out.format = GST_LFM2_SPEECH_NONE;
  g_free (voc_path);
  g_free (tok_path);
  return TRUE;

fail:
  GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
  g_clear_error (&err);
  g_free (dbg);
  g_free (voc_path);
  g_free (tok_path);
  stop (self);
  return FALSE;
}

static GstStateChangeReturn
gst_lfm2_audiodec_change_state (GstElement * element, GstStateChange transition)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start (self))
    return GST_STATE_CHANGE_FAILURE;
  ret = GST_ELEMENT_CLASS (gst_lfm2_audiodec_parent_class)->change_state (element,
      transition);
  if (ret == GST_STATE_CHANGE_FAILURE && transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    stop (self);
  /* the pads are inactive: no thread decodes any more */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    stop (self);
  return ret;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* Room for the samples of n frames (per buffer size, not per buffer). */
static gboolean
ensure_samples (GstLfm2AudioDec * self, gint64 n_frames)
{
  const gsize need = (gsize) (n_frames + 1) * GST_LFM2_SPEECH_FRAME_SAMPLES;

  if (need <= self->samples_cap)
    return TRUE;
  g_free (self->samples);
  self->samples = g_try_new (gfloat, need);
  self->samples_cap = self->samples ? need : 0;
  if (self->samples == NULL)
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Cannot allocate the samples of %" G_GINT64_FORMAT " frames", n_frames), (NULL));
  return self->samples != NULL;
}

/* The end of the utterance: the decoder's last 480 samples. */
static GstFlowReturn
finish_utterance (GstLfm2AudioDec * self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gint n;

  if (!self->open)
    return GST_FLOW_OK;
  self->open = FALSE;
  if (!ensure_samples (self, 0))
    return GST_FLOW_ERROR;
  n = lfm2_audio_decoder_flush (self->dec, self->samples, self->samples_cap);
  if (n > 0)
    ret = gst_lfm2_speech_out_samples (&self->out, self->samples, n);
  gst_lfm2_speech_out_end (&self->out);
  return ret;
}

/* n frames of codes (0 … eoa−1), the first at pts (NONE: unknown). */
static GstFlowReturn
decode_run (GstLfm2AudioDec * self, const gint32 * codes, gint n, GstClockTime pts)
{
  gint got;

  if (!self->open) {
    gst_lfm2_speech_out_begin (&self->out, pts, GST_CLOCK_TIME_NONE,
        GST_LFM2_OVERFLOW_OVERLAP, 0);
    self->open = TRUE;
    self->frames = 0;
  } else if (GST_CLOCK_TIME_IS_VALID (pts)) {
    /* frames later than their place in the utterance: the rest of it moves with them */
    const GstClockTime due = self->out.u_start + self->frames * GST_LFM2_SPEECH_FRAME_DURATION;
    if (pts > due + GST_LFM2_SPEECH_FRAME_DURATION / 2) {
      GST_DEBUG_OBJECT (self, "frames %" GST_TIME_FORMAT " late", GST_TIME_ARGS (pts - due));
      self->out.u_start += pts - due;
      self->out.discont = TRUE;
    }
  }
  if (!ensure_samples (self, n))
    return GST_FLOW_ERROR;
  lfm2_clear_error ();
  got = lfm2_audio_decoder_push (self->dec, codes, n, self->samples, self->samples_cap);
  if (got < 0) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Decoding audio codes failed: %s",
            lfm2_last_error ()), (NULL));
    return GST_FLOW_ERROR;
  }
  self->frames += n;
  return gst_lfm2_speech_out_samples (&self->out, self->samples, got);
}

/* The codes tensor of a buffer: int32 K:N (static from the caps, flexible from its header). */
static gboolean
map_codes (GstLfm2AudioDec * self, GstBuffer * buf, GstMemory ** mem, GstMapInfo * map,
    const gint32 ** codes, gint64 * n_frames, GError ** error)
{
  GstLfm2TensorInfo info;
  const guint8 *payload;
  gsize size;

  if (gst_buffer_n_memory (buf) != 1) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "a buffer of codes has %u tensors, not 1", gst_buffer_n_memory (buf));
    return FALSE;
  }
  *mem = gst_buffer_get_memory (buf, 0);
  if (!gst_memory_map (*mem, map, GST_MAP_READ)) {
    gst_memory_unref (*mem);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, "cannot map the tensor");
    return FALSE;
  }
  if (self->config.format == GST_LFM2_TENSOR_FORMAT_FLEXIBLE) {
    if (!gst_lfm2_tensor_header_parse (map->data, map->size, &info, &size, error))
      goto fail;
    payload = map->data + GST_LFM2_TENSOR_HEADER_SIZE;
  } else {
    info = self->config.info[0];
    size = gst_lfm2_tensor_info_size (&info);
    if (map->size < size) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "tensor of %" G_GSIZE_FORMAT " bytes, the caps need %" G_GSIZE_FORMAT, map->size,
          size);
      goto fail;
    }
    payload = map->data;
  }
  if (info.type != GST_LFM2_TENSOR_INT32 || info.dims[0] != (guint32) self->n_codebooks
      || (info.rank > 2 && gst_lfm2_tensor_info_n_elements (&info) != (guint64) info.dims[0]
          * info.dims[1])) {
    gchar *d = gst_lfm2_tensor_dims_to_string (&info);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor is %s %s; codes are int32 %d:N (N frames of %d codebooks)",
        gst_lfm2_tensor_type_to_string (info.type), d, self->n_codebooks, self->n_codebooks);
    g_free (d);
    goto fail;
  }
  if (((guintptr) payload & 3) != 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "the tensor's payload is not 4-byte aligned");
    goto fail;
  }
  *n_frames = info.rank > 1 ? info.dims[1] : 1;
  *codes = (const gint32 *) payload;
  return TRUE;

fail:
  gst_memory_unmap (*mem, map);
  gst_memory_unref (*mem);
  return FALSE;
}

static GstFlowReturn
decode_buffer (GstLfm2AudioDec * self, const gint32 * codes, gint64 n_frames,
    GstClockTime pts)
{
  const gint K = self->n_codebooks;
  GstFlowReturn ret = GST_FLOW_OK;
  gint64 f = 0;

  /* Every code checked first: a bad one decodes nothing of the buffer. */
  for (gint64 i = 0; i < n_frames; i++) {
    if (codes[i * K] == self->eoa)
      continue;                 /* end of audio */
    for (gint k = 0; k < K; k++) {
      const gint32 c = codes[i * K + k];
      if (c < 0 || c >= self->eoa) {
        GST_ELEMENT_ERROR (self, STREAM, DECODE, ("Audio code out of range: frame %"
                G_GINT64_FORMAT " of the buffer at %" GST_TIME_FORMAT ", codebook %d is %d "
                "(codes are 0 … %d; %d, the end of audio, only in codebook 0)", i,
                GST_TIME_ARGS (pts), k, c, self->eoa - 1, self->eoa), (NULL));
        return GST_FLOW_ERROR;
      }
    }
  }
  while (f < n_frames && ret == GST_FLOW_OK) {
    gint64 n = 0;
    const GstClockTime t = GST_CLOCK_TIME_IS_VALID (pts) ?
        pts + f * GST_LFM2_SPEECH_FRAME_DURATION : GST_CLOCK_TIME_NONE;

    while (f + n < n_frames && codes[(f + n) * K] != self->eoa && n < G_MAXINT / 2)
      n++;
    if (n > 0) {
      ret = decode_run (self, codes + f * K, (gint) n, t);
      f += n;
    } else {
      ret = finish_utterance (self);      /* the end-of-audio frame */
      f++;
    }
  }
  return ret;
}

static GstFlowReturn
gst_lfm2_audiodec_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (parent);
  GError *err = NULL;
  GstFlowReturn ret;
  const gint32 *codes;
  GstMemory *mem;
  GstMapInfo map;
  gint64 n_frames;

  if (self->out.format == GST_LFM2_SPEECH_NONE) {
    gst_buffer_unref (buf);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!map_codes (self, buf, &mem, &map, &codes, &n_frames, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Invalid buffer of audio codes: %s",
            err->message), (NULL));
    g_clear_error (&err);
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  ret = decode_buffer (self, codes, n_frames, GST_BUFFER_PTS (buf));
  gst_memory_unmap (mem, &map);
  gst_memory_unref (mem);
  gst_buffer_unref (buf);
  return ret;
}

/* ---- events and queries ------------------------------------------------------------ */

static gboolean
set_sink_caps (GstLfm2AudioDec * self, GstCaps * caps)
{
  GError *err = NULL;
  const GstLfm2TensorInfo *info = &self->config.info[0];

  if (!gst_lfm2_tensors_config_from_caps (caps, &self->config, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable tensor caps: %s", err->message),
        ("%" GST_PTR_FORMAT, caps));
    g_clear_error (&err);
    return FALSE;
  }
  if (self->config.format == GST_LFM2_TENSOR_FORMAT_SPARSE
      || (self->config.format == GST_LFM2_TENSOR_FORMAT_STATIC
          && (self->config.num_tensors != 1 || info->type != GST_LFM2_TENSOR_INT32
              || info->dims[0] != (guint32) self->n_codebooks))) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Tensor caps are not audio codes: one int32 tensor %d:N is needed",
            self->n_codebooks), ("%" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  return gst_lfm2_speech_out_negotiate (&self->out, TRUE, FALSE, self->n_codebooks, self->eoa);
}

static gboolean
gst_lfm2_audiodec_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      ok = self->dec != NULL && set_sink_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;
      gboolean ok;

      finish_utterance (self);
      gst_event_parse_segment (event, &seg);
      ok = gst_lfm2_speech_out_set_segment (&self->out, seg, gst_event_get_seqnum (event));
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;

      finish_utterance (self);
      gst_event_parse_gap (event, &ts, &dur);
      gst_lfm2_speech_out_gap (&self->out, ts, dur, GST_LFM2_OVERFLOW_OVERLAP);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_EOS:
      /* the rest of the utterance before EOS */
      if (self->dec && self->out.format != GST_LFM2_SPEECH_NONE)
        finish_utterance (self);
      break;
    case GST_EVENT_FLUSH_STOP:
      if (self->dec)
        lfm2_audio_decoder_reset (self->dec);
      self->open = FALSE;
      gst_lfm2_speech_out_reset (&self->out);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_lfm2_audiodec_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2AudioDec *self = GST_LFM2_AUDIODEC (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_POSITION) {
    GstFormat format;
    GstClockTime pos;

    gst_query_parse_position (query, &format, NULL);
    pos = gst_lfm2_speech_out_position (&self->out);
    if (format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (pos)) {
      gst_query_set_position (query, GST_FORMAT_TIME, (gint64) pos);
      return TRUE;
    }
  }
  return gst_pad_query_default (pad, parent, query);
}
