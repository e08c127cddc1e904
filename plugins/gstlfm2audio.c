/* gstlfm2audio.c — the audio helpers lfm2asr and lfm2audioenc share (see gstlfm2audio.h):
 * the frontend enum and audio properties, lfm2a mmproj files in the model registry, the
 * encoder, and the input stage (conversion, voice activity, utterance timestamps). */
#include "gstlfm2audio.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (lfm2_audio_debug);
#define GST_CAT_DEFAULT lfm2_audio_debug

#define RATE LFM2_AUDIO_SAMPLE_RATE

static void
ensure_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (lfm2_audio_debug, "lfm2audio", 0, "LFM2-Audio input stage");
    g_once_init_leave (&once, 1);
  }
}

/* ---- the frontend enum ------------------------------------------------------------- */

GType
gst_lfm2_audio_frontend_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_AUDIO_FRONTEND_OFFICIAL,
        "NeMo's log-mel preprocessor the models were trained with", "official"},
    {GST_LFM2_AUDIO_FRONTEND_LLAMACPP,
        "What llama.cpp's mtmd computes (number for number; utterances limited by "
          "a.position_embd)", "llamacpp"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2AudioFrontend", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- settings and properties ------------------------------------------------------- */

void
gst_lfm2_audio_settings_init (GstLfm2AudioSettings * s)
{
  s->mmproj = NULL;
  s->frontend = GST_LFM2_AUDIO_DEFAULT_FRONTEND;
  s->vad_threshold = GST_LFM2_AUDIO_DEFAULT_VAD_THRESHOLD;
  s->min_silence_ms = GST_LFM2_AUDIO_DEFAULT_MIN_SILENCE_MS;
  s->max_segment_ms = GST_LFM2_AUDIO_DEFAULT_MAX_SEGMENT_MS;
}

void
gst_lfm2_audio_settings_clear (GstLfm2AudioSettings * s)
{
  g_clear_pointer (&s->mmproj, g_free);
}

/* The doc comments name lfm2asr; lfm2audioenc has the same properties. */
void
gst_lfm2_audio_install_properties (GObjectClass * gobject_class, guint first)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  /**
   * GstLfm2Asr:mmproj:
   *
   * Path of the LFM2-Audio mmproj GGUF (projector type `lfm2a`: the FastConformer audio
   * encoder and the adapter) that belongs to the model.
   */
  g_object_class_install_property (gobject_class, first,
      g_param_spec_string ("mmproj", "mmproj",
          "Path of the LFM2-Audio mmproj GGUF (lfm2a: audio encoder + adapter; loaded on "
          "READY→PAUSED, shared with other elements naming the same file)", NULL, rw));
  /**
   * GstLfm2Asr:frontend:
   *
   * The log-mel front-end: `official`, NeMo's preprocessor the models were trained with, or
   * `llamacpp`, what llama.cpp's mtmd computes (number for number with it).
   */
  g_object_class_install_property (gobject_class, first + 1,
      g_param_spec_enum ("frontend", "Front-end",
          "Log-mel front-end: NeMo's, as the models were trained (official), or llama.cpp's "
          "mtmd (llamacpp)", GST_TYPE_LFM2_AUDIO_FRONTEND, GST_LFM2_AUDIO_DEFAULT_FRONTEND,
          rw));
  /**
   * GstLfm2Asr:vad-threshold:
   *
   * Speech score (0 … 1) a 10 ms frame needs to count as speech in the voice-activity
   * detector; higher is stricter.
   */
  g_object_class_install_property (gobject_class, first + 2,
      g_param_spec_float ("vad-threshold", "VAD threshold",
          "Speech score a 10 ms frame needs to count as speech (0 … 1; higher is stricter)",
          0.0f, 1.0f, GST_LFM2_AUDIO_DEFAULT_VAD_THRESHOLD, rw));
  /**
   * GstLfm2Asr:min-silence:
   *
   * Silence that ends an utterance, in milliseconds.
   */
  g_object_class_install_property (gobject_class, first + 3,
      g_param_spec_int ("min-silence", "Minimum silence",
          "Silence that ends an utterance, in milliseconds", 10, 60000,
          GST_LFM2_AUDIO_DEFAULT_MIN_SILENCE_MS, rw));
  /**
   * GstLfm2Asr:max-segment:
   *
   * Longest utterance, in milliseconds: longer speech is cut at the quietest frame of its
   * last 3 seconds and goes on in the next utterance.
   */
  g_object_class_install_property (gobject_class, first + 4,
      g_param_spec_int ("max-segment", "Maximum segment",
          "Longest utterance in milliseconds (longer speech is cut at its quietest frame of "
          "the last 3 s)", 1000, 3600000, GST_LFM2_AUDIO_DEFAULT_MAX_SEGMENT_MS, rw));
  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_AUDIO_FRONTEND, 0);
}

gboolean
gst_lfm2_audio_settings_set_property (GstLfm2AudioSettings * s, guint prop_id, guint first,
    const GValue * value)
{
  if (prop_id < first || prop_id >= first + GST_LFM2_AUDIO_N_PROPS)
    return FALSE;
  switch (prop_id - first) {
    case 0:
      g_free (s->mmproj);
      s->mmproj = g_value_dup_string (value);
      break;
    case 1:
      s->frontend = g_value_get_enum (value);
      break;
    case 2:
      s->vad_threshold = g_value_get_float (value);
      break;
    case 3:
      s->min_silence_ms = g_value_get_int (value);
      break;
    case 4:
      s->max_segment_ms = g_value_get_int (value);
      break;
  }
  return TRUE;
}

gboolean
gst_lfm2_audio_settings_get_property (const GstLfm2AudioSettings * s, guint prop_id,
    guint first, GValue * value)
{
  if (prop_id < first || prop_id >= first + GST_LFM2_AUDIO_N_PROPS)
    return FALSE;
  switch (prop_id - first) {
    case 0:
      g_value_set_string (value, s->mmproj);
      break;
    case 1:
      g_value_set_enum (value, s->frontend);
      break;
    case 2:
      g_value_set_float (value, s->vad_threshold);
      break;
    case 3:
      g_value_set_int (value, s->min_silence_ms);
      break;
    case 4:
      g_value_set_int (value, s->max_segment_ms);
      break;
  }
  return TRUE;
}

struct lfm2_vad_params
gst_lfm2_audio_settings_vad_params (const GstLfm2AudioSettings * s)
{
  struct lfm2_vad_params vp = lfm2_vad_default_params ();

  vp.threshold = s->vad_threshold;
  vp.min_silence_ms = s->min_silence_ms;
  vp.max_segment_ms = s->max_segment_ms;
  return vp;
}

/* ---- mmproj files in the registry -------------------------------------------------- */

/* The registry's load function takes only a path; the parameters of the acquiring thread's
 * request travel here (the load runs synchronously in that thread). */
static _Thread_local const struct lfm2_audio_params *mmproj_load_params;

static gpointer
load_mmproj (const gchar * path, GError ** error)
{
  GstLfm2AudioMmproj *m;
  lfm2_audio *a;

  lfm2_clear_error ();
  a = lfm2_audio_load (path, *mmproj_load_params);
  if (a == NULL) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load LFM2-Audio mmproj \"%s\": %s", path,
        lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
    return NULL;
  }
  m = g_new0 (GstLfm2AudioMmproj, 1);
  m->audio = a;
  g_mutex_init (&m->lock);
  return m;
}

static void
free_mmproj (gpointer object)
{
  GstLfm2AudioMmproj *m = object;

  lfm2_audio_free (m->audio);
  g_mutex_clear (&m->lock);
  g_free (m);
}

static GstLfm2AudioMmproj *
enc_mmproj (GstLfm2AudioEncoder * enc)
{
  return gst_lfm2_shared_get (enc->mmproj);
}

gboolean
gst_lfm2_audio_enc_start (GstLfm2AudioEncoder * enc, const GstLfm2AudioSettings * s,
    gint n_threads, const lfm2_model * text, GError ** error)
{
  struct lfm2_audio_params p = lfm2_audio_default_params ();
  lfm2_audio *a;
  gchar *kind;
  gint64 longest;

  ensure_debug ();
  memset (enc, 0, sizeof (*enc));
  if (s->mmproj == NULL || s->mmproj[0] == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "No mmproj file given (set the mmproj property)");
    return FALSE;
  }
  p.frontend = (enum lfm2_audio_frontend) s->frontend;
  p.n_threads = n_threads;
  /* the loaded object depends on the front-end and the thread count */
  kind = g_strdup_printf ("%s/%s/t%d", GST_LFM2_KIND_AUDIO_MMPROJ,
      lfm2_audio_frontend_name (p.frontend), n_threads);
  mmproj_load_params = &p;
  enc->mmproj = gst_lfm2_shared_acquire (kind, s->mmproj, load_mmproj, free_mmproj, error);
  mmproj_load_params = NULL;
  g_free (kind);
  if (enc->mmproj == NULL)
    return FALSE;
  a = enc_mmproj (enc)->audio;
  enc->n_embd = lfm2_audio_n_embd_out (a);

  if (text != NULL) {
    lfm2_clear_error ();
    if (lfm2_audio_check_text_model (a, text) != 0) {
      /* the library's message names both files and both widths */
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "%s",
          lfm2_last_error ());
      goto fail;
    }
  }
  /* an utterance is at most max-segment plus its padding on both sides */
  longest = ((gint64) s->max_segment_ms + 2 * lfm2_vad_default_params ().pad_ms) * (RATE / 1000);
  if (longest > lfm2_audio_max_samples (a)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "%s: with the %s front-end an utterance can be at most %.1f s (a.position_embd); "
        "lower max-segment (%d ms) or use frontend=official", lfm2_audio_path (a),
        lfm2_audio_frontend_name (p.frontend), lfm2_audio_max_samples (a) / (gdouble) RATE,
        s->max_segment_ms);
    goto fail;
  }
  GST_INFO ("mmproj %s (%s), %d-wide rows, %s front-end", lfm2_audio_path (a),
      lfm2_audio_desc (a), enc->n_embd, lfm2_audio_frontend_name (p.frontend));
  return TRUE;

fail:
  gst_lfm2_audio_enc_stop (enc);
  return FALSE;
}

void
gst_lfm2_audio_enc_stop (GstLfm2AudioEncoder * enc)
{
  g_free (enc->embd);
  gst_lfm2_shared_release (enc->mmproj);
  memset (enc, 0, sizeof (*enc));
}

gint
gst_lfm2_audio_enc_n_rows (gint64 n_samples)
{
  return (gint) lfm2_audio_n_tokens (n_samples);
}

gint64
gst_lfm2_audio_enc_encode (GstLfm2AudioEncoder * enc, const gfloat * pcm, gint64 n, gfloat * out,
    gsize cap, GError ** error)
{
  GstLfm2AudioMmproj *m = enc_mmproj (enc);
  const gint64 t0 = g_get_monotonic_time ();
  gint64 rows;

  g_mutex_lock (&m->lock);
  lfm2_clear_error ();
  /* the context may be shared: the callback is this call's */
  lfm2_audio_set_abort_callback (m->audio, enc->abort_cb, enc->abort_data);
  rows = lfm2_audio_encode (m->audio, pcm, n, out, cap);
  lfm2_audio_set_abort_callback (m->audio, NULL, NULL);
  if (rows < 0 && rows != LFM2_AUDIO_ENCODE_ABORTED)
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_FAILED,
        "Audio encoder failed on %" G_GINT64_FORMAT " samples: %s", n, lfm2_last_error ());
  g_mutex_unlock (&m->lock);
  enc->last_encode_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return rows < 0 && rows != LFM2_AUDIO_ENCODE_ABORTED ? -1 : rows;
}

gint
gst_lfm2_audio_enc_encode_rows (GstLfm2AudioEncoder * enc, GstElement * element,
    const gfloat * pcm, gint64 n)
{
  const gint rows = gst_lfm2_audio_enc_n_rows (n);
  const gsize need = (gsize) rows * enc->n_embd;
  GError *err = NULL;
  gint64 r;

  if (need > enc->embd_cap) {
    /* per utterance length, not per utterance */
    g_free (enc->embd);
    enc->embd = g_try_new (gfloat, need);
    enc->embd_cap = enc->embd ? need : 0;
    if (enc->embd == NULL) {
      GST_ELEMENT_ERROR (element, RESOURCE, NO_SPACE_LEFT,
          ("Cannot allocate %d audio embedding rows", rows), (NULL));
      return -1;
    }
  }
  r = gst_lfm2_audio_enc_encode (enc, pcm, n, enc->embd, enc->embd_cap, &err);
  if (r == LFM2_AUDIO_ENCODE_ABORTED)
    return LFM2_AUDIO_ENCODE_ABORTED;
  if (r < 0) {
    GST_LFM2_POST_GERROR (element, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return -1;
  }
  return rows;
}

/* ---- the input stage --------------------------------------------------------------- */

void
gst_lfm2_audio_in_init (GstLfm2AudioIn * in)
{
  memset (in, 0, sizeof (*in));
  gst_audio_info_init (&in->info);
  gst_segment_init (&in->segment, GST_FORMAT_TIME);
  in->base_pts = GST_CLOCK_TIME_NONE;
}

gboolean
gst_lfm2_audio_in_start (GstLfm2AudioIn * in, const struct lfm2_vad_params *vp,
    GError ** error)
{
  ensure_debug ();
  gst_lfm2_audio_in_stop (in);
  lfm2_clear_error ();
  in->vad = lfm2_vad_new (vp);
  if (in->vad == NULL) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "Invalid voice-activity settings: %s", lfm2_last_error ());
    return FALSE;
  }
  return TRUE;
}

static void
drop_converter (GstLfm2AudioIn * in)
{
  if (in->cv) {
    struct lfm2_audio_convert_stats st = lfm2_audio_converter_stats (in->cv);
    in->conv.n_in += st.n_in;
    in->conv.n_out += st.n_out;
    in->conv.n_nonfinite += st.n_nonfinite;
    in->conv.n_clipped += st.n_clipped;
    lfm2_audio_converter_free (in->cv);
    in->cv = NULL;
  }
}

void
gst_lfm2_audio_in_stop (GstLfm2AudioIn * in)
{
  drop_converter (in);
  lfm2_vad_free (in->vad);
  g_free (in->buf);
  gst_lfm2_audio_in_init (in);
}

/* Sample s of the detector as a PTS of the input (0 at the earliest). */
static GstClockTime
sample_pts (GstLfm2AudioIn * in, gint64 s)
{
  const GstClockTime base = GST_CLOCK_TIME_IS_VALID (in->base_pts) ? in->base_pts : 0;
  const gint64 d = s - in->base_sample;
  const GstClockTime off = gst_util_uint64_scale_int (d >= 0 ? d : -d, GST_SECOND, RATE);

  if (d >= 0)
    return base + off;
  return off < base ? base - off : 0;
}

static void
fill_utterance (GstLfm2AudioIn * in, gint64 start, gint64 end, GstLfm2Utterance * u)
{
  u->pts = sample_pts (in, start);
  u->duration = sample_pts (in, end) - u->pts;
  u->start = gst_segment_to_running_time (&in->segment, GST_FORMAT_TIME, u->pts);
  u->end = gst_segment_to_running_time (&in->segment, GST_FORMAT_TIME, u->pts + u->duration);
}

/* Hands out every completed utterance. */
static void
pop_all (GstLfm2AudioIn * in, GstLfm2UtteranceFunc cb, gpointer user_data)
{
  struct lfm2_vad_segment seg;

  while (lfm2_vad_pop (in->vad, &seg)) {
    GstLfm2Utterance u;

    u.pcm = seg.pcm;
    u.n = seg.n;
    u.forced = seg.forced;
    fill_utterance (in, seg.start, seg.end, &u);
    GST_DEBUG ("utterance %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT "%s",
        GST_TIME_ARGS (u.pts), GST_TIME_ARGS (u.duration), u.forced ? " (cut)" : "");
    cb (&u, user_data);
  }
}

static void
vad_push (GstLfm2AudioIn * in, const gfloat * pcm, gint64 n, GstLfm2UtteranceFunc cb,
    gpointer user_data)
{
  /* only a NULL detector or no memory can fail here; both leave it consistent */
  if (n > 0 && lfm2_vad_push (in->vad, pcm, n) < 0)
    GST_WARNING ("voice-activity detector: %s", lfm2_last_error ());
  pop_all (in, cb, user_data);
}

/* The converter's held-back samples into the detector; the converter is gone afterwards. */
static void
flush_converter (GstLfm2AudioIn * in, GstLfm2UtteranceFunc cb, gpointer user_data)
{
  if (in->cv) {
    gint64 n = lfm2_audio_convert_flush (in->cv, in->buf, in->buf_cap);
    if (n > 0)
      vad_push (in, in->buf, n, cb, user_data);
    drop_converter (in);
  }
}

/* Makes sure the output buffer takes what n_in input frames can give. */
static gboolean
ensure_buf (GstLfm2AudioIn * in, gint64 n_in)
{
  const gint64 need = MAX (lfm2_audio_converter_max_out (in->cv, n_in), 4096);

  if (need <= in->buf_cap)
    return TRUE;
  g_free (in->buf);
  in->buf = g_try_new (gfloat, need);
  in->buf_cap = in->buf ? need : 0;
  return in->buf != NULL;
}

static enum lfm2_sample_format
sample_format (const GstAudioInfo * info)
{
  switch (GST_AUDIO_INFO_FORMAT (info)) {
    case GST_AUDIO_FORMAT_U8:
      return LFM2_SAMPLE_U8;
    case GST_AUDIO_FORMAT_S16:
      return LFM2_SAMPLE_S16;
    case GST_AUDIO_FORMAT_S32:
      return LFM2_SAMPLE_S32;
    case GST_AUDIO_FORMAT_F32:
      return LFM2_SAMPLE_F32;
    case GST_AUDIO_FORMAT_F64:
      return LFM2_SAMPLE_F64;
    default:
      return (enum lfm2_sample_format) - 1;
  }
}

static gboolean
new_converter (GstLfm2AudioIn * in, GError ** error)
{
  const enum lfm2_sample_format fmt = sample_format (&in->info);

  if ((gint) fmt < 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Unsupported sample format %s", GST_AUDIO_INFO_NAME (&in->info));
    return FALSE;
  }
  lfm2_clear_error ();
  in->cv = lfm2_audio_converter_new (GST_AUDIO_INFO_RATE (&in->info),
      GST_AUDIO_INFO_CHANNELS (&in->info), fmt);
  if (in->cv == NULL || !ensure_buf (in, 0)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Cannot convert %d Hz %d-channel %s audio: %s", GST_AUDIO_INFO_RATE (&in->info),
        GST_AUDIO_INFO_CHANNELS (&in->info), GST_AUDIO_INFO_NAME (&in->info),
        in->cv ? "out of memory" : lfm2_last_error ());
    drop_converter (in);
    return FALSE;
  }
  return TRUE;
}

/* Timestamps go on from where the input is now: VAD sample `sample` is at `pts`. */
static void
rebase (GstLfm2AudioIn * in, GstClockTime pts, gint64 sample)
{
  in->base_pts = pts;
  in->base_sample = sample;
  in->in_frames = 0;
}

/* The PTS the next input frame should have, or NONE. */
static GstClockTime
expected_pts (GstLfm2AudioIn * in)
{
  if (!GST_CLOCK_TIME_IS_VALID (in->base_pts) || GST_AUDIO_INFO_RATE (&in->info) <= 0)
    return GST_CLOCK_TIME_NONE;
  return in->base_pts + gst_util_uint64_scale_int (in->in_frames, GST_SECOND,
      GST_AUDIO_INFO_RATE (&in->info));
}

/* The input jumps to `pts`. Small forward jumps (lost buffers) become silence, so an
 * utterance spanning them keeps its timing; anything else ends what is open and restarts the
 * detector at `pts`. */
static void
discont (GstLfm2AudioIn * in, GstClockTime pts, GstLfm2UtteranceFunc cb, gpointer user_data)
{
  const GstClockTime expected = expected_pts (in);
  GError *err = NULL;

  in->n_discont++;
  flush_converter (in, cb, user_data);
  if (GST_CLOCK_TIME_IS_VALID (expected) && pts > expected
      && pts - expected <= GST_LFM2_AUDIO_MAX_FILL) {
    static const gfloat zeros[1024];
    gint64 n = gst_util_uint64_scale (pts - expected, RATE, GST_SECOND);

    GST_DEBUG ("%" GST_TIME_FORMAT " of missing input filled with silence",
        GST_TIME_ARGS (pts - expected));
    while (n > 0) {
      const gint64 k = MIN (n, (gint64) G_N_ELEMENTS (zeros));
      vad_push (in, zeros, k, cb, user_data);
      n -= k;
    }
    rebase (in, pts, lfm2_vad_position (in->vad));
  } else {
    GST_DEBUG ("input jumps from %" GST_TIME_FORMAT " to %" GST_TIME_FORMAT
        ": detector restarted", GST_TIME_ARGS (expected), GST_TIME_ARGS (pts));
    if (lfm2_vad_flush (in->vad) >= 0)
      pop_all (in, cb, user_data);
    lfm2_vad_reset (in->vad);
    rebase (in, pts, 0);
  }
  if (GST_AUDIO_INFO_RATE (&in->info) > 0 && !new_converter (in, &err)) {
    /* it worked with these caps a moment ago */
    GST_WARNING ("%s", err->message);
    g_clear_error (&err);
  }
}

gboolean
gst_lfm2_audio_in_set_caps (GstLfm2AudioIn * in, GstCaps * caps, GstLfm2UtteranceFunc cb,
    gpointer user_data, GError ** error)
{
  GstAudioInfo info;
  const GstClockTime next = expected_pts (in);
  const gint64 pos = in->vad ? lfm2_vad_position (in->vad) : 0;

  if (!gst_audio_info_from_caps (&info, caps)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT, "Unusable audio caps");
    return FALSE;
  }
  if (in->cv && gst_audio_info_is_equal (&info, &in->info))
    return TRUE;
  /* the old format's tail first; timestamps go on from where it ended */
  flush_converter (in, cb, user_data);
  if (GST_CLOCK_TIME_IS_VALID (next))
    rebase (in, next, lfm2_vad_position (in->vad));
  GST_DEBUG ("caps %" GST_PTR_FORMAT " at sample %" G_GINT64_FORMAT, caps, pos);
  in->info = info;
  return new_converter (in, error);
}

void
gst_lfm2_audio_in_set_segment (GstLfm2AudioIn * in, const GstSegment * segment,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  /* the same segment again (sent along with new caps, say) changes nothing */
  if (gst_segment_is_equal (segment, &in->segment))
    return;
  gst_lfm2_audio_in_drain (in, cb, user_data);
  lfm2_vad_reset (in->vad);
  in->base_pts = GST_CLOCK_TIME_NONE;
  in->base_sample = 0;
  in->in_frames = 0;
  if (segment->format == GST_FORMAT_TIME)
    gst_segment_copy_into (segment, &in->segment);
  else
    gst_segment_init (&in->segment, GST_FORMAT_TIME);
}

gboolean
gst_lfm2_audio_in_push (GstLfm2AudioIn * in, GstBuffer * buf, GstLfm2UtteranceFunc cb,
    gpointer user_data, GError ** error)
{
  const GstClockTime pts = GST_BUFFER_PTS (buf);
  const gint bpf = GST_AUDIO_INFO_BPF (&in->info);
  GstMapInfo map;
  gint64 n_in, n_out;

  if (in->cv == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION, "No caps before data");
    return FALSE;
  }
  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    const GstClockTime expected = expected_pts (in);

    if (!GST_CLOCK_TIME_IS_VALID (expected))
      rebase (in, pts, lfm2_vad_position (in->vad));
    else if (pts > expected + GST_LFM2_AUDIO_DISCONT_TOLERANCE
        || pts + GST_LFM2_AUDIO_DISCONT_TOLERANCE < expected)
      discont (in, pts, cb, user_data);
  } else if (!GST_CLOCK_TIME_IS_VALID (in->base_pts)) {
    /* no timestamps at all: the samples count from the segment start */
    rebase (in, in->segment.start, lfm2_vad_position (in->vad));
  }

  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, "Cannot map a buffer");
    return FALSE;
  }
  n_in = map.size / bpf;
  if ((gsize) n_in * bpf != map.size)
    GST_WARNING ("buffer of %" G_GSIZE_FORMAT " bytes is not a whole number of %d-byte "
        "frames; the rest is ignored", map.size, bpf);
  if (!ensure_buf (in, n_in)) {
    gst_buffer_unmap (buf, &map);
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
        "Out of memory for %" G_GINT64_FORMAT " frames", n_in);
    return FALSE;
  }
  lfm2_clear_error ();
  n_out = lfm2_audio_convert (in->cv, map.data, n_in, in->buf, in->buf_cap);
  gst_buffer_unmap (buf, &map);
  if (n_out < 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE,
        "Audio conversion failed: %s", lfm2_last_error ());
    return FALSE;
  }
  in->in_frames += n_in;
  in->n_buffers++;
  in->n_samples += n_out;
  vad_push (in, in->buf, n_out, cb, user_data);
  return TRUE;
}

void
gst_lfm2_audio_in_gap (GstLfm2AudioIn * in, GstClockTime ts, GstClockTime duration,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  const GstClockTime end = GST_CLOCK_TIME_IS_VALID (duration) ? ts + duration : ts;
  const GstClockTime expected = expected_pts (in);

  if (!GST_CLOCK_TIME_IS_VALID (ts) || in->vad == NULL)
    return;
  if (!GST_CLOCK_TIME_IS_VALID (expected)) {
    rebase (in, end, lfm2_vad_position (in->vad));
    return;
  }
  if (end > expected + GST_LFM2_AUDIO_DISCONT_TOLERANCE)
    discont (in, end, cb, user_data);
}

void
gst_lfm2_audio_in_drain (GstLfm2AudioIn * in, GstLfm2UtteranceFunc cb, gpointer user_data)
{
  GError *err = NULL;

  if (in->vad == NULL)
    return;
  if (in->cv) {
    flush_converter (in, cb, user_data);
    if (!new_converter (in, &err)) {
      GST_WARNING ("%s", err->message);
      g_clear_error (&err);
    }
  }
  if (lfm2_vad_flush (in->vad) >= 0)
    pop_all (in, cb, user_data);
}

GstFlowReturn
gst_lfm2_audio_in_chain (GstLfm2AudioIn * in, GstElement * element, GstBuffer * buf,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  GError *err = NULL;
  gboolean ok = gst_lfm2_audio_in_push (in, buf, cb, user_data, &err);

  gst_buffer_unref (buf);
  if (ok)
    return GST_FLOW_OK;
  if (g_error_matches (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION)) {
    g_clear_error (&err);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GST_LFM2_POST_GERROR (element, GST_MESSAGE_ERROR, err, NULL);
  g_clear_error (&err);
  return GST_FLOW_ERROR;
}

gboolean
gst_lfm2_audio_in_caps_event (GstLfm2AudioIn * in, GstElement * element, GstEvent * event,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  GstCaps *caps;
  GError *err = NULL;
  gboolean ok;

  gst_event_parse_caps (event, &caps);
  ok = gst_lfm2_audio_in_set_caps (in, caps, cb, user_data, &err);
  if (!ok) {
    GST_ELEMENT_ERROR (element, STREAM, FORMAT, ("%s", err->message),
        ("%" GST_PTR_FORMAT, caps));
    g_clear_error (&err);
  }
  gst_event_unref (event);
  return ok;
}

GstEvent *
gst_lfm2_audio_in_segment_event (GstLfm2AudioIn * in, GstEvent * event,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  const GstSegment *seg;

  gst_event_parse_segment (event, &seg);
  /* what is open ends under the old segment */
  gst_lfm2_audio_in_set_segment (in, seg, cb, user_data);
  gst_event_unref (event);
  return gst_event_new_segment (&in->segment);
}

GstClockTime
gst_lfm2_audio_in_gap_event (GstLfm2AudioIn * in, GstEvent * event,
    GstLfm2UtteranceFunc cb, gpointer user_data)
{
  GstClockTime ts, dur;

  gst_event_parse_gap (event, &ts, &dur);
  gst_lfm2_audio_in_gap (in, ts, dur, cb, user_data);
  gst_event_unref (event);
  return gst_lfm2_audio_in_settled (in);
}

void
gst_lfm2_audio_in_reset (GstLfm2AudioIn * in)
{
  GError *err = NULL;

  if (in->vad)
    lfm2_vad_reset (in->vad);
  if (in->cv) {
    drop_converter (in);
    if (!new_converter (in, &err)) {
      GST_WARNING ("%s", err->message);
      g_clear_error (&err);
    }
  }
  in->base_pts = GST_CLOCK_TIME_NONE;
  in->base_sample = 0;
  in->in_frames = 0;
  gst_segment_init (&in->segment, GST_FORMAT_TIME);
}

/* An open utterance from `get` (lfm2_vad_current or lfm2_vad_pending). */
static gboolean
open_utterance (GstLfm2AudioIn * in, int (*get) (lfm2_vad *, struct lfm2_vad_segment *),
    GstLfm2Utterance * u)
{
  struct lfm2_vad_segment seg;

  if (in->vad == NULL || !get (in->vad, &seg) || seg.n <= 0)
    return FALSE;
  u->pcm = seg.pcm;
  u->n = seg.n;
  u->forced = FALSE;
  fill_utterance (in, seg.start, seg.end, u);
  return TRUE;
}

gboolean
gst_lfm2_audio_in_current (GstLfm2AudioIn * in, GstLfm2Utterance * u)
{
  return open_utterance (in, lfm2_vad_current, u);
}

gboolean
gst_lfm2_audio_in_pending (GstLfm2AudioIn * in, GstLfm2Utterance * u)
{
  return open_utterance (in, lfm2_vad_pending, u);
}

GstClockTime
gst_lfm2_audio_in_settled (GstLfm2AudioIn * in)
{
  if (in->vad == NULL || !GST_CLOCK_TIME_IS_VALID (in->base_pts))
    return GST_CLOCK_TIME_NONE;
  return sample_pts (in, lfm2_vad_position (in->vad) - lfm2_vad_buffered (in->vad));
}

GstClockTime
gst_lfm2_audio_in_end (GstLfm2AudioIn * in)
{
  return expected_pts (in);
}

gint64
gst_lfm2_audio_in_buffered (GstLfm2AudioIn * in)
{
  return in->vad ? lfm2_vad_buffered (in->vad) : 0;
}

struct lfm2_audio_convert_stats
gst_lfm2_audio_in_convert_stats (GstLfm2AudioIn * in)
{
  struct lfm2_audio_convert_stats st = in->conv;

  if (in->cv) {
    struct lfm2_audio_convert_stats c = lfm2_audio_converter_stats (in->cv);
    st.n_in += c.n_in;
    st.n_out += c.n_out;
    st.n_nonfinite += c.n_nonfinite;
    st.n_clipped += c.n_clipped;
  }
  return st;
}
