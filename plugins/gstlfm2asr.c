/* gstlfm2asr.c — lfm2asr: streaming speech recognition with LFM2-Audio. */

/**
 * SECTION:element-lfm2asr
 * @title: lfm2asr
 * @short_description: real-time transcription with LFM2-Audio
 *
 * Raw audio in (any rate, sample format and channel count: the element converts it to 16 kHz
 * mono itself), text out (`text/x-raw, format=utf8`), one buffer per utterance.
 *
 * The streaming thread only converts the audio and runs the voice-activity detector
 * (#GstLfm2Asr:vad-threshold): an utterance opens on speech and closes after
 * #GstLfm2Asr:min-silence of silence, or is cut at #GstLfm2Asr:max-segment. A worker thread
 * (a GstTask on `src`) transcribes: the utterance's audio through the log-mel front-end, the
 * FastConformer encoder and the adapter of the mmproj, its embedding rows into the user turn
 * of the LFM2 chat layout after the system turn (#GstLfm2GenElement:system-prompt, "Perform
 * ASR."), then generation (greedy by default) until the model ends its turn.
 *
 * Every closed utterance gives a final result: a buffer on `src` with the PTS and duration of
 * the audio it covers (or a GAP event over it when the model said nothing) and an element
 * message `lfm2asr/transcript` with is-final=TRUE. While an utterance is open, every
 * #GstLfm2Asr:step milliseconds of its audio give a partial result: the same message with
 * is-final=FALSE and the text of the utterance so far (messages only; the text buffers carry
 * finals). Message fields: text, is-final, start and end (running time of the audio covered),
 * audio-ms, inference-ms, encode-ms, generated-tokens, stop-reason, forced (cut at
 * max-segment).
 *
 * Between utterances `src` carries GAP events up to where no speech can begin any more, so
 * text consumers (textoverlay, srtenc, subtitle muxers) always know how far the text has got.
 *
 * Live sources are never blocked: the worker takes finals before partials, a partial that is
 * running when a final arrives is abandoned, and a newer partial replaces one not started yet
 * (the #GstLfm2Asr:stats property counts them). With a non-live source (a file) the element
 * holds the streaming thread instead while two finals wait, so memory stays bounded and no
 * final is lost however slow the model. A live source that outpaces the model for more than
 * ten minutes of queued speech loses its oldest finals (counted, with a warning).
 *
 * Latency: a final leaves min-silence after the end of its speech plus the inference time, so
 * the text of an utterance is late by about its length plus that. `src` answers LATENCY
 * queries with upstream + #GstLfm2Asr:latency; set it to at least your longest utterance plus
 * a second or two when the text is synchronized with the audio (the element warns once when a
 * final is later).
 *
 * EOS closes the open utterance: its final text goes out before EOS. Flushing seeks drop
 * what is pending and cancel the running inference. A caps change (e.g. another sample rate)
 * mid-stream keeps the open utterance and its timing.
 *
 * The shared properties (model, system-prompt, max-tokens, sampling, n-threads,
 * context-length) come from the #GstLfm2GenElement base class; the model must be the
 * LFM2-Audio backbone the mmproj belongs to.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 autoaudiosrc ! lfm2asr model=LFM2-Audio-1.5B-Q8_0.gguf \
 *     mmproj=mmproj-LFM2-Audio-1.5B-F16.gguf ! fdsink fd=1
 * ]|
 */
#include "gstlfm2asr.h"
#include "gstlfm2threads.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_asr_debug);
#define GST_CAT_DEFAULT gst_lfm2_asr_debug

#define DEFAULT_STEP_MS 1000
#define DEFAULT_LATENCY_MS 5000

/* Non-live input waits while this many finals are queued. */
#define MAX_QUEUED_FINALS 2
/* Live input: finals queued beyond this much audio drop the oldest (10 min, 38 MB). */
#define MAX_PENDING_SAMPLES ((gint64) 600 * LFM2_AUDIO_SAMPLE_RATE)
/* GAPs go out when the settled position has moved this far. */
#define GAP_STEP (100 * GST_MSECOND)

/* LFM2-Audio's ASR setup: the system turn its model card gives, greedy decoding. */
static const GstLfm2GenElementDefaults gen_defaults = {
  .system_prompt = LFM2_AUDIO_ASR_SYSTEM,
  .max_tokens = 256,
  .temperature = 0.0f,
};

enum {
  PROP_0,
  PROP_STEP,
  PROP_LATENCY,
  PROP_STATS,
  PROP_INFERENCE_NICE,
  PROP_AUDIO_FIRST,             /* mmproj, frontend, vad-threshold, min-silence, max-segment */
};

/* transcribe() failed and has posted the error message itself. */
#define FLOW_POSTED_ERROR GST_FLOW_CUSTOM_ERROR

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_AUDIO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_TEXT_CAPS));

G_DEFINE_TYPE (GstLfm2Asr, gst_lfm2_asr, GST_TYPE_LFM2_GEN_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2asr, "lfm2asr", GST_RANK_NONE, GST_TYPE_LFM2_ASR,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_asr_debug, "lfm2asr", 0,
        "LFM2-Audio speech recognition"));

static void gst_lfm2_asr_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_asr_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_asr_finalize (GObject * object);
static gboolean gst_lfm2_asr_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params);
static void gst_lfm2_asr_stop (GstLfm2GenElement * base);
static GstFlowReturn gst_lfm2_asr_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);
static gboolean gst_lfm2_asr_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_lfm2_asr_src_query (GstPad * pad, GstObject * parent, GstQuery * query);
static gboolean gst_lfm2_asr_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active);
static void gst_lfm2_asr_worker (gpointer data);
static gboolean gst_lfm2_asr_post_message (GstElement * element, GstMessage * message);
static void job_free (gpointer data);
static gboolean has_work_locked (gpointer data);
static void clear_pending_locked (gpointer data);

static void
gst_lfm2_asr_class_init (GstLfm2AsrClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstLfm2GenElementClass *gen_class = GST_LFM2_GEN_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_asr_set_property;
  gobject_class->get_property = gst_lfm2_asr_get_property;
  gobject_class->finalize = gst_lfm2_asr_finalize;

  gst_lfm2_gen_element_class_install_properties (gen_class, &gen_defaults);
  /* mmproj, frontend, vad-threshold, min-silence, max-segment */
  gst_lfm2_audio_install_properties (gobject_class, PROP_AUDIO_FIRST);
  /**
   * GstLfm2Asr:step:
   *
   * Audio time between partial results of an open utterance, in milliseconds; 0 turns
   * partial results off.
   */
  g_object_class_install_property (gobject_class, PROP_STEP,
      g_param_spec_uint ("step", "Step",
          "Audio between partial results of an open utterance, in milliseconds (0 = no "
          "partial results)", 0, 3600000, DEFAULT_STEP_MS, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Asr:latency:
   *
   * How late text may be behind the start of the speech it covers, in milliseconds: added to
   * the upstream latency in LATENCY queries on `src`.
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "How late text may be behind the start of its speech, in milliseconds: added to the "
          "upstream latency in LATENCY queries (set it to the longest utterance plus a second "
          "or two)", 0, G_MAXUINT / 2, DEFAULT_LATENCY_MS, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Asr:inference-nice:
   *
   * Nice value of the inference threads (the worker, the encoder and the engine's thread
   * pools) relative to the media threads: 0 runs them as the rest of the process, higher
   * values make them yield the CPU to the audio source when cores are short, so a live
   * source never waits. Applied when the worker starts.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_NICE,
      gst_lfm2_inference_nice_param_spec ("audio"));
  /**
   * GstLfm2Asr:stats:
   *
   * An `lfm2asr/stats` structure: input buffers and audio, finals and partials made,
   * partials skipped and finals dropped while the model was busy, what is queued, what the
   * detector holds, and the largest delay of a final behind the end of its audio (live).
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "lfm2asr/stats {buffers, audio-ms, finals, partials, skipped-partials, "
          "dropped-finals, late-finals, early-finals, queued-finals, queued-samples, "
          "vad-samples, discontinuities, max-chain-us, nonfinite-samples, clipped-samples, "
          "max-delay (ns)}",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2-Audio speech recognition", "Converter/Audio/Text",
      "Transcribes speech with Liquid AI LFM2-Audio in a worker thread: utterances found by "
      "voice-activity detection, final text with the audio's timestamps, partial results as "
      "messages", "lfm2-gst developers");
  element_class->post_message = GST_DEBUG_FUNCPTR (gst_lfm2_asr_post_message);
  gen_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_asr_start);
  gen_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_asr_stop);
}

static void
gst_lfm2_asr_init (GstLfm2Asr * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_asr_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_asr_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_lfm2_asr_src_query));
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_asr_src_activate_mode));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
  gst_lfm2_text_pad_init (&self->text, self->srcpad);

  gst_lfm2_audio_settings_init (&self->audio);
  self->step_ms = DEFAULT_STEP_MS;
  self->latency_ms = DEFAULT_LATENCY_MS;
  self->inference_nice = GST_LFM2_DEFAULT_INFERENCE_NICE;
  self->threads = gst_lfm2_inference_threads_new (self->inference_nice);

  gst_lfm2_audio_in_init (&self->in);
  gst_lfm2_queue_init (&self->q, self->srcpad, gst_lfm2_asr_worker, self,
      &GST_LFM2_GEN_ELEMENT (self)->cancel, job_free, has_work_locked, clear_pending_locked);
  self->max_delay = GST_CLOCK_TIME_NONE;
  self->partial_pts = GST_CLOCK_TIME_NONE;
  self->early_pts = GST_CLOCK_TIME_NONE;
  self->result = g_string_sized_new (1024);
  self->done_text = g_string_sized_new (1024);
}

static void
job_clear (GstLfm2AsrJob * job)
{
  g_clear_pointer (&job->pcm, g_free);
  job->n = job->cap = 0;
}

/* Copies an utterance into a job, reusing its storage when it is large enough. */
static gboolean
job_set (GstLfm2AsrJob * job, const GstLfm2Utterance * u)
{
  if (u->n > job->cap) {
    g_free (job->pcm);
    job->pcm = g_try_new (gfloat, u->n);
    job->cap = job->pcm ? u->n : 0;
    if (job->pcm == NULL) {
      job->n = 0;
      return FALSE;
    }
  }
  memcpy (job->pcm, u->pcm, sizeof (gfloat) * u->n);
  job->n = u->n;
  job->forced = u->forced;
  job->pts = u->pts;
  job->duration = u->duration;
  job->start = u->start;
  job->end = u->end;
  return TRUE;
}

/* A queued final. */
static void
job_free (gpointer data)
{
  job_clear (data);
  g_free (data);
}

/* The worker's own work besides the queue: an early final, a partial. Call with q.lock. */
static gboolean
has_work_locked (gpointer data)
{
  GstLfm2Asr *self = data;

  return self->partial_full || g_atomic_int_get (&self->early_waiting);
}

/* Drops the partial and early final waiting for the worker (the queue drops the rest).
 * Call with q.lock. */
static void
clear_pending_locked (gpointer data)
{
  GstLfm2Asr *self = data;

  self->partial_full = FALSE;
  self->partial.n = 0;
  self->early.n = 0;
  g_atomic_int_set (&self->early_waiting, 0);
}

static void
gst_lfm2_asr_finalize (GObject * object)
{
  GstLfm2Asr *self = GST_LFM2_ASR (object);

  /* PAUSED→READY released these; an element disposed in PAUSED did not. */
  gst_lfm2_asr_stop (GST_LFM2_GEN_ELEMENT (self));
  gst_object_unref (self->threads);
  g_string_free (self->result, TRUE);
  g_string_free (self->done_text, TRUE);
  gst_lfm2_audio_settings_clear (&self->audio);
  gst_lfm2_queue_finalize (&self->q);
  G_OBJECT_CLASS (gst_lfm2_asr_parent_class)->finalize (object);
}

static void
gst_lfm2_asr_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Asr *self = GST_LFM2_ASR (object);
  gboolean latency_changed = FALSE;

  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEP:
      self->step_ms = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_NICE:
      self->inference_nice = g_value_get_int (value);
      gst_lfm2_inference_threads_set_nice (self->threads, self->inference_nice);
      break;
    case PROP_LATENCY:
      latency_changed = self->latency_ms != g_value_get_uint (value);
      self->latency_ms = g_value_get_uint (value);
      break;
    default:
      if (!gst_lfm2_audio_settings_set_property (&self->audio, prop_id, PROP_AUDIO_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* The pipeline recomputes its latency (src answers with the new value). */
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

/* The input stage's counters for the stats property, and how long this buffer held the
 * streaming thread (since t0, µs; 0 = not measured). Streaming thread. */
static void
copy_input_stats (GstLfm2Asr * self, gint64 t0)
{
  struct lfm2_audio_convert_stats cs = gst_lfm2_audio_in_convert_stats (&self->in);
  const gint64 vad = gst_lfm2_audio_in_buffered (&self->in);
  const gint64 held = t0 ? g_get_monotonic_time () - t0 : 0;

  g_mutex_lock (&self->q.lock);
  self->max_chain_us = MAX (self->max_chain_us, held);
  self->in_buffers = self->in.n_buffers;
  self->in_samples = self->in.n_samples;
  self->in_discont = self->in.n_discont;
  self->in_vad = vad;
  self->in_conv = cs;
  g_mutex_unlock (&self->q.lock);
}

static GstStructure *
stats_new (GstLfm2Asr * self)
{
  GstStructure *st;

  g_mutex_lock (&self->q.lock);
  st = gst_structure_new ("lfm2asr/stats",
      "buffers", G_TYPE_UINT64, self->in_buffers,
      "audio-ms", G_TYPE_DOUBLE, self->in_samples * 1000.0 / LFM2_AUDIO_SAMPLE_RATE,
      "finals", G_TYPE_UINT64, self->n_finals,
      "partials", G_TYPE_UINT64, self->n_partials,
      "skipped-partials", G_TYPE_UINT64, self->n_skipped_partials,
      "dropped-finals", G_TYPE_UINT64, self->n_dropped_finals,
      "late-finals", G_TYPE_UINT64, self->n_late_finals,
      "early-finals", G_TYPE_UINT64, self->n_early_finals,
      "queued-finals", G_TYPE_INT, g_atomic_int_get (&self->q.n_jobs),
      "queued-samples", G_TYPE_INT64, self->q.weight
      + (self->partial_full ? self->partial.n : 0),
      "vad-samples", G_TYPE_INT64, self->in_vad,
      "discontinuities", G_TYPE_UINT64, self->in_discont,
      "max-chain-us", G_TYPE_UINT64, (guint64) self->max_chain_us,
      "nonfinite-samples", G_TYPE_UINT64, (guint64) self->in_conv.n_nonfinite,
      "clipped-samples", G_TYPE_UINT64, (guint64) self->in_conv.n_clipped,
      "max-delay", G_TYPE_UINT64, (guint64) self->max_delay, NULL);
  g_mutex_unlock (&self->q.lock);
  return st;
}

static void
gst_lfm2_asr_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Asr *self = GST_LFM2_ASR (object);

  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, stats_new (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_STEP:
      g_value_set_uint (value, self->step_ms);
      break;
    case PROP_INFERENCE_NICE:
      g_value_set_int (value, self->inference_nice);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, self->latency_ms);
      break;
    default:
      if (!gst_lfm2_audio_settings_get_property (&self->audio, prop_id, PROP_AUDIO_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- models (READY↔PAUSED) ---------------------------------------------------------- */

/* Positions one utterance needs: the prompt around its longest audio and the answer. */
static gint
context_for (const lfm2_model * model, const gchar * system, gint max_segment_ms,
    gint max_tokens)
{
  const struct lfm2_vad_params vp = lfm2_vad_default_params ();
  /* an utterance is at most max-segment plus its padding (and a second of slack for the
   * detector's forced cut) */
  const gint64 rows = lfm2_audio_n_tokens (((gint64) max_segment_ms + 2 * vp.pad_ms + 1000)
      * (LFM2_AUDIO_SAMPLE_RATE / 1000));
  gint32 np = lfm2_audio_prompt_prefix (model, system, NULL, 0);
  gint32 ns = lfm2_audio_prompt_suffix (model, NULL, 0);

  if (np == G_MININT32 || ns == G_MININT32 || max_tokens <= 0)
    return 0;                   /* the engine's default */
  return (gint) (ABS (np) + rows + ABS (ns) + max_tokens + 1);
}

/* The base class has loaded the text model: the mmproj, checked against it, and the voice
 * activity detector. Errors name the files and the reason. */
static gboolean
gst_lfm2_asr_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params)
{
  GstLfm2Asr *self = GST_LFM2_ASR (base);
  GstLfm2AudioSettings as;
  struct lfm2_vad_params vp;
  GError *err = NULL;
  gchar *system;

  GST_OBJECT_LOCK (self);
  as = self->audio;
  as.mmproj = g_strdup (self->audio.mmproj);
  system = g_strdup (base->settings.system_prompt);
  GST_OBJECT_UNLOCK (self);
  params->chat = TRUE;
  vp = gst_lfm2_audio_settings_vad_params (&as);

  if (!gst_lfm2_audio_enc_start (&self->enc, &as, params->n_threads, model, &err)) {
    gchar *dbg = g_strdup_printf ("mmproj property: %s, model property: %s",
        as.mmproj ? as.mmproj : "(null)", lfm2_model_path (model));
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
    g_free (dbg);
    goto fail;
  }
  if (!gst_lfm2_audio_in_start (&self->in, &vp, &err)) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    goto fail;
  }
  /* context-length 0: exactly what the longest utterance needs */
  if (params->n_ctx == 0)
    params->n_ctx = context_for (model, system, as.max_segment_ms, params->max_tokens);

  g_mutex_lock (&self->q.lock);
  self->n_finals = self->n_partials = self->n_skipped_partials = 0;
  self->n_dropped_finals = self->n_late_finals = self->n_early_finals = 0;
  self->max_chain_us = 0;
  self->max_delay = GST_CLOCK_TIME_NONE;
  g_mutex_unlock (&self->q.lock);
  self->warned_late = FALSE;
  gst_lfm2_audio_settings_clear (&as);
  g_free (system);
  return TRUE;

fail:
  g_clear_error (&err);
  gst_lfm2_audio_settings_clear (&as);
  g_free (system);
  return FALSE;
}

static void
gst_lfm2_asr_stop (GstLfm2GenElement * base)
{
  GstLfm2Asr *self = GST_LFM2_ASR (base);

  gst_lfm2_audio_enc_stop (&self->enc);
  gst_lfm2_audio_in_stop (&self->in);
  job_clear (&self->partial);
  job_clear (&self->work);
  job_clear (&self->early);
  job_clear (&self->early_work);
  self->done_valid = FALSE;
}

/* ---- the streaming thread ------------------------------------------------------------ */

/* A closed utterance (from the input stage): its final, queued in stream order. */
static void
on_utterance (const GstLfm2Utterance * u, gpointer user_data)
{
  GstLfm2Asr *self = user_data;
  GstLfm2AsrJob *job = g_new0 (GstLfm2AsrJob, 1);
  GstClockTime first = GST_CLOCK_TIME_NONE;
  guint dropped;

  if (!job_set (job, u)) {
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for an utterance of %" G_GINT64_FORMAT " samples; dropped", u->n),
        (NULL));
    g_free (job);
    return;
  }
  if (!gst_lfm2_queue_lock_open (&self->q)) {
    job_free (job);
    return;
  }
  /* its partial is moot now, and an early final not started yet too (the final is here) */
  if (self->partial_full) {
    self->partial_full = FALSE;
    self->n_skipped_partials++;
  }
  self->early.n = 0;
  g_atomic_int_set (&self->early_waiting, 0);
  /* live input that outpaces the model: the oldest queued finals go */
  dropped = gst_lfm2_queue_push_job_locked (&self->q, job, u->n, u->pts,
      self->q.live ? MAX_PENDING_SAMPLES : 0, &first);
  self->n_dropped_finals += dropped;
  g_mutex_unlock (&self->q.lock);
  if (dropped)
    GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY,
        ("Transcription is more than %d s of speech behind the live input: %u utterance(s) "
            "from %" GST_TIME_FORMAT " dropped", (int) (MAX_PENDING_SAMPLES /
                LFM2_AUDIO_SAMPLE_RATE), dropped, GST_TIME_ARGS (first)),
        ("use a smaller model, more threads, or lower max-tokens"));
  self->partial_pts = GST_CLOCK_TIME_NONE;
  self->partial_n = 0;
}

/* The open utterance for a partial result, every `step` of its audio. */
static void
maybe_queue_partial (GstLfm2Asr * self)
{
  GstLfm2Utterance u;
  guint step_ms;

  GST_OBJECT_LOCK (self);
  step_ms = self->step_ms;
  GST_OBJECT_UNLOCK (self);
  /* in the silence after the speech the text would not change: the early final comes next */
  if (step_ms == 0 || gst_lfm2_audio_in_pending (&self->in, &u)
      || !gst_lfm2_audio_in_current (&self->in, &u))
    return;
  if (u.pts != self->partial_pts) {     /* a new utterance */
    self->partial_pts = u.pts;
    self->partial_n = 0;
  }
  if (u.n - self->partial_n < (gint64) step_ms * (LFM2_AUDIO_SAMPLE_RATE / 1000))
    return;
  self->partial_n = u.n;

  if (gst_lfm2_queue_lock_open (&self->q)) {
    if (self->partial_full)
      self->n_skipped_partials++;       /* replaced before the worker took it */
    self->partial_full = job_set (&self->partial, &u);
    g_cond_broadcast (&self->q.cond);
    g_mutex_unlock (&self->q.lock);
  }
}

/* The open utterance's final, early: once the silence after its speech has reached the
 * padding, the utterance is known as it will close (unless speech resumes), so the worker can
 * start on it while the detector waits out min-silence. */
static void
maybe_queue_early (GstLfm2Asr * self)
{
  GstLfm2Utterance u;

  if (!gst_lfm2_audio_in_pending (&self->in, &u)
      || (u.pts == self->early_pts && u.n == self->early_n))
    return;
  self->early_pts = u.pts;
  self->early_n = u.n;
  if (gst_lfm2_queue_lock_open (&self->q)) {
    if (job_set (&self->early, &u)) {
      g_atomic_int_set (&self->early_waiting, 1);
      g_cond_broadcast (&self->q.cond);
    }
    g_mutex_unlock (&self->q.lock);
  }
}

static GstFlowReturn
gst_lfm2_asr_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2Asr *self = GST_LFM2_ASR (parent);
  const gint64 t0 = g_get_monotonic_time ();
  GstFlowReturn ret;
  gboolean live;

  if (GST_LFM2_GEN_ELEMENT (self)->gen == NULL) {
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  live = gst_lfm2_queue_upstream_is_live (&self->q, self->sinkpad);
  ret = gst_lfm2_audio_in_chain (&self->in, GST_ELEMENT (self), buf, on_utterance, self);
  if (ret != GST_FLOW_OK)
    return ret;
  maybe_queue_early (self);
  maybe_queue_partial (self);
  gst_lfm2_queue_push_gap (&self->q, gst_lfm2_audio_in_settled (&self->in), FALSE,
      GAP_STEP);
  copy_input_stats (self, t0);

  if (gst_lfm2_queue_is_flushing (&self->q))
    return GST_FLOW_FLUSHING;
  /* non-live input waits while the worker is behind on finals */
  return live ? GST_FLOW_OK : gst_lfm2_queue_wait (&self->q, MAX_QUEUED_FINALS);
}

static gboolean
gst_lfm2_asr_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2Asr *self = GST_LFM2_ASR (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      gst_lfm2_queue_flush_start (&self->q, event);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      gst_lfm2_queue_flush_stop (&self->q);
      /* the worker is paused and the streaming thread is here: both sides are ours */
      gst_lfm2_audio_in_reset (&self->in);
      self->partial_pts = self->early_pts = GST_CLOCK_TIME_NONE;
      self->partial_n = self->early_n = 0;
      self->done_valid = FALSE;
      gst_lfm2_text_pad_reset (&self->text);
      return gst_lfm2_queue_restart (&self->q, event);
    case GST_EVENT_STREAM_START:{
      const gchar *id;
      guint group;
      GstEvent *ev;

      gst_event_parse_stream_start (event, &id);
      ev = gst_event_new_stream_start (id ? id : "lfm2asr");
      gst_event_set_stream_flags (ev, GST_STREAM_FLAG_SPARSE);
      if (gst_event_parse_group_id (event, &group))
        gst_event_set_group_id (ev, group);
      gst_event_unref (event);
      gst_lfm2_queue_push_event (&self->q, ev);
      return TRUE;
    }
    case GST_EVENT_CAPS:
      return gst_lfm2_audio_in_caps_event (&self->in, GST_ELEMENT (self), event, on_utterance,
          self);
    case GST_EVENT_SEGMENT:
      event = gst_lfm2_audio_in_segment_event (&self->in, event, on_utterance, self);
      self->partial_pts = self->q.gap_queued = GST_CLOCK_TIME_NONE;
      gst_lfm2_queue_push_event (&self->q, event);
      return TRUE;
    case GST_EVENT_GAP:
      gst_lfm2_queue_push_gap (&self->q, gst_lfm2_audio_in_gap_event (&self->in, event,
              on_utterance, self), TRUE, GAP_STEP);
      return TRUE;
    case GST_EVENT_EOS:{
      GstClockTime end;

      /* the last words: the open utterance closes, its final goes out before EOS */
      gst_lfm2_audio_in_drain (&self->in, on_utterance, self);
      end = gst_lfm2_audio_in_end (&self->in);
      gst_lfm2_queue_push_gap (&self->q, end, TRUE, GAP_STEP);
      copy_input_stats (self, 0);
      gst_lfm2_queue_push_event (&self->q, event);
      return TRUE;
    }
    default:
      /* serialized ones go out on src in stream order */
      return gst_lfm2_queue_sink_event_default (&self->q, pad, parent, event);
  }
}

static gboolean
gst_lfm2_asr_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2Asr *self = GST_LFM2_ASR (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    guint latency_ms;

    /* text leaves up to `latency` after its speech began */
    GST_OBJECT_LOCK (self);
    latency_ms = self->latency_ms;
    GST_OBJECT_UNLOCK (self);
    return gst_lfm2_text_pad_query_latency (parent, self->sinkpad, query, latency_ms);
  }
  return gst_pad_query_default (pad, parent, query);
}

/* The src task (the worker) runs on the dedicated inference threads. */
static gboolean
gst_lfm2_asr_post_message (GstElement * element, GstMessage * message)
{
  GstLfm2Asr *self = GST_LFM2_ASR (element);

  gst_lfm2_inference_threads_claim (self->threads, self->srcpad, message);
  return GST_ELEMENT_CLASS (gst_lfm2_asr_parent_class)->post_message (element, message);
}

static gboolean
gst_lfm2_asr_src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode,
    gboolean active)
{
  GstLfm2Asr *self = GST_LFM2_ASR (parent);

  if (active) {
    /* the worker is not running yet, nor the streaming thread */
    self->partial_pts = self->early_pts = GST_CLOCK_TIME_NONE;
    self->partial_n = self->early_n = 0;
    self->done_valid = FALSE;
    gst_lfm2_text_pad_reset (&self->text);
  }
  return gst_lfm2_queue_activate (&self->q, mode, active);
}

/* ---- the worker ------------------------------------------------------------------- */

/* A running partial gives up as soon as a final waits (finals are never late for a partial). */
static gboolean
partial_piece (const gchar * piece, gsize len, gpointer user_data)
{
  GstLfm2Asr *self = user_data;

  return g_atomic_int_get (&self->q.n_jobs) == 0
      && g_atomic_int_get (&self->early_waiting) == 0;
}

/* Asked between the audio encoder's layers: a flush stops any encode, a waiting final a
 * partial's (a 4-s utterance's encoder takes ~0.1 s on two AVX2 cores with the 1.5B's). */
static bool
encoder_stop_final (void *data)
{
  return g_atomic_int_get (&GST_LFM2_GEN_ELEMENT (data)->cancel) != 0;
}

static bool
encoder_stop_partial (void *data)
{
  return encoder_stop_final (data) || !partial_piece (NULL, 0, data);
}

/* The caps promise UTF-8 and a subtitle line: invalid sequences (a random-weight model
 * emits stray bytes) become U+FFFD, control bytes and white space runs one space. */
static void
clean_text (GString * s)
{
  if (!g_utf8_validate_len (s->str, s->len, NULL)) {
    gchar *valid = g_utf8_make_valid (s->str, s->len);

    g_string_assign (s, valid);
    g_free (valid);
  }
  for (gsize i = 0; i < s->len; i++)
    if ((guchar) s->str[i] < 0x20 || s->str[i] == 0x7f)
      s->str[i] = ' ';
  gst_lfm2_gen_element_one_line (s);
}

/* The job's audio through the encoder and the decoder into self->result (one line).
 * GST_LFM2_GEN_FLOW_DROPPED: a partial abandoned for a final, or an utterance too long for
 * the context (warned). */
static GstFlowReturn
transcribe (GstLfm2Asr * self, const GstLfm2AsrJob * job, gboolean final,
    GstLfm2GenStats * stats)
{
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);
  GstLfm2GenMedia media;
  GError *err = NULL;
  GstFlowReturn ret;
  gint rows;

  g_string_truncate (self->result, 0);
  memset (stats, 0, sizeof (*stats));
  if (!gst_lfm2_gen_element_apply_settings (base))
    return FLOW_POSTED_ERROR;
  self->enc.abort_cb = final ? encoder_stop_final : encoder_stop_partial;
  self->enc.abort_data = self;
  rows = gst_lfm2_audio_enc_encode_rows (&self->enc, GST_ELEMENT (self), job->pcm, job->n);
  if (rows == LFM2_AUDIO_ENCODE_ABORTED)       /* a final's only on a flush */
    return final || g_atomic_int_get (&base->cancel) ? GST_FLOW_FLUSHING :
        GST_LFM2_GEN_FLOW_DROPPED;
  if (rows < 0)
    return FLOW_POSTED_ERROR;
  if (g_atomic_int_get (&base->cancel))
    return GST_FLOW_FLUSHING;
  if (!final && !partial_piece (NULL, 0, self))
    return GST_LFM2_GEN_FLOW_DROPPED;

  media.embd = self->enc.embd;
  media.n_rows = rows;
  media.layout = NULL;          /* lfm2a: the rows alone, no marker tokens (as mtmd) */
  media.n_layout = 0;
  ret = gst_lfm2_gen_element_generate_full (base, "", &media, 1,
      final ? NULL : partial_piece, self, self->result, stats, &err);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
    if (final)
      GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
          ("Utterance at %" GST_TIME_FORMAT " (%.1f s) not transcribed: %s",
              GST_TIME_ARGS (job->pts), job->n / (gdouble) LFM2_AUDIO_SAMPLE_RATE,
              err->message), ("raise context-length or lower max-segment"));
    g_clear_error (&err);
    return GST_LFM2_GEN_FLOW_DROPPED;
  }
  if (ret == GST_FLOW_ERROR)
    return FLOW_POSTED_ERROR;
  if (ret == GST_FLOW_OK && !final && stats->stop == GST_LFM2_GEN_STOP_CANCELLED)
    return GST_LFM2_GEN_FLOW_DROPPED;
  if (ret == GST_FLOW_OK)
    clean_text (self->result);
  return ret;
}

static void
post_transcript (GstLfm2Asr * self, const GstLfm2AsrJob * job, gboolean final,
    const GstLfm2GenStats * stats, gdouble inference_ms, gdouble encode_ms)
{
  GstStructure *s = gst_structure_new ("lfm2asr/transcript",
      "text", G_TYPE_STRING, self->result->str,
      "is-final", G_TYPE_BOOLEAN, final,
      "start", G_TYPE_UINT64, (guint64) job->start,
      "end", G_TYPE_UINT64, (guint64) job->end,
      "pts", G_TYPE_UINT64, (guint64) job->pts,
      "duration", G_TYPE_UINT64, (guint64) job->duration,
      "audio-ms", G_TYPE_DOUBLE, job->n * 1000.0 / LFM2_AUDIO_SAMPLE_RATE,
      "inference-ms", G_TYPE_DOUBLE, inference_ms,
      "encode-ms", G_TYPE_DOUBLE, encode_ms,
      "generated-tokens", G_TYPE_INT, stats->generated_tokens,
      "stop-reason", G_TYPE_STRING, gst_lfm2_gen_stop_to_string (stats->stop),
      "forced", G_TYPE_BOOLEAN, job->forced, NULL);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* A final: transcribe, time, message, text (or a GAP when the model said nothing). */
static GstFlowReturn
do_final (GstLfm2Asr * self, const GstLfm2AsrJob * job)
{
  const gint64 t0 = g_get_monotonic_time ();
  GstLfm2GenStats stats;
  GstClockTime delay, late;
  GstFlowReturn ret;
  guint latency_ms;
  gdouble inference_ms, encode_ms;
  gboolean early = self->done_valid && self->done_pts == job->pts && self->done_n == job->n;

  self->done_valid = FALSE;
  if (early) {
    /* the same samples were transcribed while the detector waited for the silence */
    g_string_assign (self->result, self->done_text->str);
    stats = self->done_stats;
    inference_ms = self->done_ms;
    encode_ms = self->done_encode_ms;
  } else {
    ret = transcribe (self, job, TRUE, &stats);
    if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
      gst_lfm2_text_pad_push_gap (&self->text, GST_ELEMENT (self), job->pts,
          job->pts + job->duration);
      return GST_FLOW_OK;
    }
    if (ret != GST_FLOW_OK)
      return ret;
    inference_ms = (g_get_monotonic_time () - t0) / 1000.0;
    encode_ms = self->enc.last_encode_ms;
  }

  GST_OBJECT_LOCK (self);
  latency_ms = self->latency_ms;
  GST_OBJECT_UNLOCK (self);
  delay = gst_lfm2_gen_element_behind_clock (GST_LFM2_GEN_ELEMENT (self), job->end);
  late = gst_lfm2_gen_element_behind_clock (GST_LFM2_GEN_ELEMENT (self), job->start);
  g_mutex_lock (&self->q.lock);
  self->n_finals++;
  if (early)
    self->n_early_finals++;
  if (GST_CLOCK_TIME_IS_VALID (delay) && (!GST_CLOCK_TIME_IS_VALID (self->max_delay)
          || delay > self->max_delay))
    self->max_delay = delay;
  if (GST_CLOCK_TIME_IS_VALID (late) && late > latency_ms * GST_MSECOND)
    self->n_late_finals++;
  g_mutex_unlock (&self->q.lock);
  if (GST_CLOCK_TIME_IS_VALID (late) && late > latency_ms * GST_MSECOND && !self->warned_late) {
    self->warned_late = TRUE;
    GST_ELEMENT_WARNING (self, CORE, CLOCK,
        ("Text is %" G_GUINT64_FORMAT " ms behind the start of its speech, more than the "
            "latency of %u ms: raise the latency property or lower max-segment",
            late / GST_MSECOND, latency_ms),
        ("utterance %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT, GST_TIME_ARGS (job->pts),
            GST_TIME_ARGS (job->duration)));
  }

  GST_DEBUG_OBJECT (self, "final %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT " (%d tokens, "
      "%.0f ms%s, %" GST_STIME_FORMAT " after its end): %s", GST_TIME_ARGS (job->pts),
      GST_TIME_ARGS (job->duration), stats.generated_tokens, inference_ms,
      early ? ", early" : "",
      GST_STIME_ARGS (GST_CLOCK_TIME_IS_VALID (delay) ? (GstClockTimeDiff) delay : -1),
      self->result->str);
  post_transcript (self, job, TRUE, &stats, inference_ms, encode_ms);
  /* the text, or a GAP over the utterance when the model said nothing; a 0-length cue would
   * be dropped by text consumers */
  return gst_lfm2_text_pad_push_text (&self->text, GST_ELEMENT (self), self->result->str,
      self->result->len, job->pts, MAX (job->duration, 1));
}

/* A partial: a message only. Abandoned (and counted) when a final comes first. */
static GstFlowReturn
do_partial (GstLfm2Asr * self, const GstLfm2AsrJob * job)
{
  const gint64 t0 = g_get_monotonic_time ();
  GstLfm2GenStats stats;
  GstFlowReturn ret;

  ret = transcribe (self, job, FALSE, &stats);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
    g_mutex_lock (&self->q.lock);
    self->n_skipped_partials++;
    g_mutex_unlock (&self->q.lock);
    return GST_FLOW_OK;
  }
  if (ret != GST_FLOW_OK)
    return ret;
  g_mutex_lock (&self->q.lock);
  self->n_partials++;
  g_mutex_unlock (&self->q.lock);
  GST_LOG_OBJECT (self, "partial %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT ": %s",
      GST_TIME_ARGS (job->pts), GST_TIME_ARGS (job->duration), self->result->str);
  post_transcript (self, job, FALSE, &stats, (g_get_monotonic_time () - t0) / 1000.0,
      self->enc.last_encode_ms);
  return GST_FLOW_OK;
}

/* An early final: transcribed now, kept for the final of the same samples. */
static GstFlowReturn
do_early (GstLfm2Asr * self, const GstLfm2AsrJob * job)
{
  const gint64 t0 = g_get_monotonic_time ();
  GstFlowReturn ret;

  self->done_valid = FALSE;
  ret = transcribe (self, job, TRUE, &self->done_stats);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED)
    return GST_FLOW_OK;         /* the final will say why */
  if (ret != GST_FLOW_OK)
    return ret;
  g_string_assign (self->done_text, self->result->str);
  self->done_pts = job->pts;
  self->done_n = job->n;
  self->done_ms = (g_get_monotonic_time () - t0) / 1000.0;
  self->done_encode_ms = self->enc.last_encode_ms;
  self->done_valid = TRUE;
  GST_LOG_OBJECT (self, "early final %" GST_TIME_FORMAT " + %" GST_TIME_FORMAT " ready",
      GST_TIME_ARGS (job->pts), GST_TIME_ARGS (job->duration));
  return GST_FLOW_OK;
}

static void
gst_lfm2_asr_worker (gpointer data)
{
  GstLfm2Asr *self = GST_LFM2_ASR (data);
  GstFlowReturn ret = GST_FLOW_OK;
  GstLfm2Item *item;

  /* finals, events and gaps first, in stream order; then an early final; a partial only
   * when nothing else waits */
  if (!gst_lfm2_queue_next (&self->q, &item))
    return;
  if (item != NULL) {
    g_mutex_unlock (&self->q.lock);
    switch (item->type) {
      case GST_LFM2_ITEM_JOB:
        ret = do_final (self, item->job);
        break;
      case GST_LFM2_ITEM_EVENT:
        gst_lfm2_text_pad_push_event (&self->text, GST_ELEMENT (self), item->event);
        item->event = NULL;
        break;
      case GST_LFM2_ITEM_GAP:
        gst_lfm2_text_pad_push_gap (&self->text, GST_ELEMENT (self), GST_CLOCK_TIME_NONE,
            item->gap_end);
        break;
    }
    gst_lfm2_queue_item_free (&self->q, item);
  } else if (g_atomic_int_get (&self->early_waiting)) {
    GstLfm2AsrJob job = self->early;

    self->early = self->early_work;
    self->early.n = 0;
    self->early_work = job;
    g_atomic_int_set (&self->early_waiting, 0);
    g_mutex_unlock (&self->q.lock);
    ret = do_early (self, &self->early_work);
  } else {
    /* take the partial, leaving the slot our previous storage to reuse */
    GstLfm2AsrJob job = self->partial;

    self->partial = self->work;
    self->partial.n = 0;
    self->work = job;
    self->partial_full = FALSE;
    g_mutex_unlock (&self->q.lock);
    ret = do_partial (self, &self->work);
  }
  gst_lfm2_queue_done (&self->q, ret, FLOW_POSTED_ERROR);
}
