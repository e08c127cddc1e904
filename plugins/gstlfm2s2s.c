/* gstlfm2s2s.c — lfm2s2s: speech to speech with LFM2.5-Audio in one element. */

/**
 * SECTION:element-lfm2s2s
 * @title: lfm2s2s
 * @short_description: speech to speech with LFM2.5-Audio (interleaved text + audio)
 *
 * Raw audio in (any rate, sample format and channel count: converted to 16 kHz mono inside),
 * 24 kHz mono speech out (`S16LE` or `F32LE`). The streaming thread only converts the audio
 * and runs the voice-activity detector (#GstLfm2S2s:vad-threshold, #GstLfm2S2s:min-silence,
 * #GstLfm2S2s:max-segment) that cuts it into utterances. A worker thread (a GstTask on `src`)
 * answers each utterance with LFM2.5-Audio's interleaved mode on one model: the utterance
 * through the speech encoder of the mmproj (FastConformer + adapter), its embedding rows as
 * the user turn after the system turn "Respond with interleaved text and audio."
 * (#GstLfm2GenElement:system-prompt) — after #GstLfm2S2s:prompt when that is set, e.g.
 * "Translate to French:" — then 6 text tokens and 12 audio frames at a time until the model
 * has said its text, then audio until its end. Every frame is vocoded at once and pushed, so
 * the reply starts playing while it is being generated.
 *
 * A reply starts where its utterance ends (the PTS + duration of the utterance's audio), or
 * right after the previous reply when that is later. After it the element posts
 * `lfm2s2s/reply` {text, start, duration, first-audio-ms, queued-ms, rtf, frames, text-tokens,
 * stop-reason, utterance-start, utterance-duration}: first-audio-ms counts from when the
 * worker took the utterance (encoder, prefill, first frame), queued-ms how long it had waited
 * for the worker since the detector closed it, rtf is the reply's processing time (without
 * the transcript) over its duration; with #GstLfm2S2s:transcribe (default)
 * the same model also transcribes the utterance ("Perform ASR.", greedy, on a second context
 * sharing the model's weights and the encoder's rows), posted first as `lfm2s2s/transcript`
 * {text, start, duration, inference-ms}: the text of both sides.
 *
 * Latency: a reply cannot start before its utterance has closed (min-silence after the
 * speech) and the encoder, prefill and first frame have run. `src` answers LATENCY queries
 * with upstream + #GstLfm2S2s:latency when upstream is live; audio later than that is moved
 * forward (a warning says to raise latency). A live source is never blocked (utterances
 * queue up; beyond ten minutes of queued speech the oldest are dropped with a warning); a
 * non-live one waits while two utterances are queued. Between replies `src` carries GAP
 * events up to where no speech can begin any more.
 *
 * EOS closes the open utterance: its reply goes out before EOS. A flush drops what is pending
 * and stops the reply being generated. The vocoder and tokenizer (speech out) and the mmproj
 * (speech in) must belong to the model: READY→PAUSED fails naming the files otherwise.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 autoaudiosrc ! lfm2s2s model=LFM2.5-Audio-1.5B-Q8_0.gguf \
 *     mmproj=mmproj-LFM2.5-Audio-1.5B-Q8_0.gguf vocoder=vocoder-LFM2.5-Audio-1.5B-Q8_0.gguf \
 *     tokenizer=tokenizer-LFM2.5-Audio-1.5B-Q8_0.gguf ! audioconvert ! autoaudiosink
 * ]|
 */
#include "gstlfm2s2s.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_s2s_debug);
#define GST_CAT_DEFAULT gst_lfm2_s2s_debug

#define INPUT_RATE 16000        /* what the input stage hands out */
#define DEFAULT_TRANSCRIBE TRUE
#define DEFAULT_LATENCY_MS 2000
/* Non-live input waits while this many utterances are queued. */
#define MAX_QUEUED 2
/* Live input: utterances queued beyond this much speech drop the oldest (10 min). */
#define MAX_QUEUED_SAMPLES ((gint64) 600 * INPUT_RATE)
/* GAPs go out when the settled input has moved this far. */
#define GAP_STEP (100 * GST_MSECOND)
/* The transcript of an utterance: the model card's ASR turn, greedy, at most this long. */
#define ASR_SYSTEM "Perform ASR."
#define ASR_MAX_TOKENS 256

/* llama.cpp's runner for the interleaved mode: audio T 0.8, top-k 4. */
static const GstLfm2GenElementDefaults gen_defaults = {
  .system_prompt = NULL,        /* "Respond with interleaved text and audio." */
  .max_tokens = 0,
  .temperature = 0.8f,
  .top_k = 4,
  .speech = TRUE,
};

enum {
  PROP_0,
  PROP_VOCODER,
  PROP_TOKENIZER,
  PROP_PROMPT,
  PROP_TRANSCRIBE,
  PROP_LATENCY,
  PROP_AUDIO_FIRST,             /* mmproj, frontend, vad-threshold, min-silence, max-segment */
};

/* reply() failed and has posted the error itself. */
#define FLOW_POSTED_ERROR GST_FLOW_CUSTOM_ERROR

typedef enum {
  ITEM_UTTERANCE,
  ITEM_EVENT,
  ITEM_GAP,
} ItemType;

typedef struct {
  ItemType type;
  GstLfm2S2sJob job;            /* UTTERANCE */
  GstEvent *event;              /* EVENT */
  GstClockTime gap_end;         /* GAP: no speech before this */
} Item;

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_AUDIO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_SPEECH_AUDIO_CAPS));

G_DEFINE_TYPE (GstLfm2S2s, gst_lfm2_s2s, GST_TYPE_LFM2_GEN_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2s2s, "lfm2s2s", GST_RANK_NONE, GST_TYPE_LFM2_S2S,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_s2s_debug, "lfm2s2s", 0,
        "LFM2.5-Audio speech to speech"));

static void gst_lfm2_s2s_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_s2s_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_s2s_finalize (GObject * object);
static gboolean gst_lfm2_s2s_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params);
static void gst_lfm2_s2s_stop (GstLfm2GenElement * base);
static GstFlowReturn gst_lfm2_s2s_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);
static gboolean gst_lfm2_s2s_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_lfm2_s2s_src_query (GstPad * pad, GstObject * parent, GstQuery * query);
static gboolean gst_lfm2_s2s_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active);
static void gst_lfm2_s2s_worker (gpointer data);

static void
gst_lfm2_s2s_class_init (GstLfm2S2sClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstLfm2GenElementClass *gen_class = GST_LFM2_GEN_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_s2s_set_property;
  gobject_class->get_property = gst_lfm2_s2s_get_property;
  gobject_class->finalize = gst_lfm2_s2s_finalize;

  gst_lfm2_gen_element_class_install_properties (gen_class, &gen_defaults);
  gst_lfm2_speech_install_file_properties (gobject_class, PROP_VOCODER, FALSE);
  /**
   * GstLfm2S2s:prompt:
   *
   * Text put in the user turn before the speech (e.g. "Translate to French:"); NULL = the
   * speech alone.
   */
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text in the user turn before the speech (e.g. \"Translate to French:\"; NULL = the "
          "speech alone)", NULL, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2S2s:transcribe:
   *
   * Also transcribe every utterance with the same model ("Perform ASR.") for the
   * `lfm2s2s/transcript` message.
   */
  g_object_class_install_property (gobject_class, PROP_TRANSCRIBE,
      g_param_spec_boolean ("transcribe", "Transcribe",
          "Also transcribe every utterance with the same model (lfm2s2s/transcript message)",
          DEFAULT_TRANSCRIBE, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLfm2S2s:latency:
   *
   * How late a reply may be behind the end of its utterance, in milliseconds: added to the
   * upstream latency in LATENCY queries of live pipelines. At least min-silence − 200 ms
   * plus the time to the first audio.
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "How late a reply may be behind the end of its utterance in ms (added to the "
          "upstream latency in live pipelines)", 0, G_MAXUINT / 2, DEFAULT_LATENCY_MS,
          rw | GST_PARAM_MUTABLE_PLAYING));
  gst_lfm2_audio_install_properties (gobject_class, PROP_AUDIO_FIRST);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2.5-Audio speech to speech", "Filter/Audio",
      "Answers every utterance of the input with Liquid AI LFM2.5-Audio's interleaved text "
      "and audio mode: 24 kHz speech pushed as it is generated, the text of both sides as "
      "messages", "lfm2-gst developers");
  gen_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_s2s_start);
  gen_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_s2s_stop);
}

static void
gst_lfm2_s2s_init (GstLfm2S2s * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_s2s_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_s2s_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_lfm2_s2s_src_query));
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_s2s_src_activate_mode));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  gst_lfm2_audio_settings_init (&self->audio);
  self->transcribe = DEFAULT_TRANSCRIBE;
  self->latency_ms = DEFAULT_LATENCY_MS;
  gst_lfm2_audio_in_init (&self->in);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  gst_lfm2_speech_out_init (&self->out, GST_ELEMENT (self), self->sinkpad, self->srcpad);
  self->reply = g_string_sized_new (256);
  self->heard = g_string_sized_new (256);
  self->gap_queued = GST_CLOCK_TIME_NONE;
}

static void
item_free (Item * item)
{
  if (item->event)
    gst_event_unref (item->event);
  g_free (item->job.pcm);
  g_free (item);
}

/* Drops what waits for the worker. Call with self->lock. */
static void
clear_pending_locked (GstLfm2S2s * self)
{
  Item *item;

  while ((item = g_queue_pop_head (&self->queue)) != NULL)
    item_free (item);
  self->n_jobs = 0;
  self->queued_samples = 0;
}

static void
gst_lfm2_s2s_finalize (GObject * object)
{
  GstLfm2S2s *self = GST_LFM2_S2S (object);

  clear_pending_locked (self);
  gst_lfm2_s2s_stop (GST_LFM2_GEN_ELEMENT (self));
  gst_lfm2_audio_settings_clear (&self->audio);
  g_free (self->vocoder);
  g_free (self->tokenizer);
  g_free (self->prompt);
  g_string_free (self->reply, TRUE);
  g_string_free (self->heard, TRUE);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (gst_lfm2_s2s_parent_class)->finalize (object);
}

static void
gst_lfm2_s2s_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2S2s *self = GST_LFM2_S2S (object);
  gboolean latency_changed = FALSE;

  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_free (self->vocoder);
      self->vocoder = g_value_dup_string (value);
      break;
    case PROP_TOKENIZER:
      g_free (self->tokenizer);
      self->tokenizer = g_value_dup_string (value);
      break;
    case PROP_PROMPT:
      g_free (self->prompt);
      self->prompt = g_value_dup_string (value);
      break;
    case PROP_TRANSCRIBE:
      self->transcribe = g_value_get_boolean (value);
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
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_lfm2_s2s_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2S2s *self = GST_LFM2_S2S (object);

  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_value_set_string (value, self->vocoder);
      break;
    case PROP_TOKENIZER:
      g_value_set_string (value, self->tokenizer);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_TRANSCRIBE:
      g_value_set_boolean (value, self->transcribe);
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

/* The transcriber: "Perform ASR." on its own context of the model, greedy, sized for the
 * longest utterance. */
static GstLfm2Gen *
new_transcriber (const lfm2_model * model, gint max_segment_ms, gint n_threads,
    GError ** error)
{
  const struct lfm2_vad_params vp = lfm2_vad_default_params ();
  const gint64 rows = lfm2_audio_n_tokens (((gint64) max_segment_ms + 2 * vp.pad_ms + 1000)
      * (INPUT_RATE / 1000));
  GstLfm2GenParams gp;
  GstLfm2Gen *gen;

  gst_lfm2_gen_params_init (&gp);
  gp.n_ctx = (gint) rows + 64 + ASR_MAX_TOKENS;
  gp.n_threads = n_threads;
  gp.max_tokens = ASR_MAX_TOKENS;
  gp.chat = TRUE;
  gp.sampling.temperature = 0.0f;
  gp.sampling.repeat_penalty = 1.0f;
  gen = gst_lfm2_gen_new (model, &gp, error);
  if (gen && !gst_lfm2_gen_set_system_prompt (gen, ASR_SYSTEM, error)) {
    gst_lfm2_gen_free (gen);
    gen = NULL;
  }
  return gen;
}

/* The base class has loaded the model: the mmproj (speech in), the vocoder and tokenizer
 * (speech out), each checked against it, the interleaved loop, the transcriber and the
 * voice-activity detector. Errors name the files. */
static gboolean
gst_lfm2_s2s_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params)
{
  GstLfm2S2s *self = GST_LFM2_S2S (base);
  struct lfm2_tts_params tp = lfm2_tts_default_params ();
  GstLfm2AudioSettings as;
  struct lfm2_vad_params vp;
  gchar *voc, *tok, *dbg = NULL;
  gboolean transcribe;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  as = self->audio;
  as.mmproj = g_strdup (self->audio.mmproj);
  voc = g_strdup (self->vocoder);
  tok = g_strdup (self->tokenizer);
  transcribe = self->transcribe;
  GST_OBJECT_UNLOCK (self);
  vp = gst_lfm2_audio_settings_vad_params (&as);

  if (!gst_lfm2_audio_enc_start (&self->enc, &as, params->n_threads, model, &err)) {
    dbg = g_strdup_printf ("mmproj property: %s, model property: %s",
        as.mmproj ? as.mmproj : "(null)", lfm2_model_path (model));
    goto fail;
  }
  if (!gst_lfm2_audio_in_start (&self->in, &vp, &err))
    goto fail;
  if (!gst_lfm2_speech_files_acquire (voc, tok, TRUE, &self->vocoder_shared,
          &self->tokenizer_shared, &err, &dbg))
    goto fail;
  /* the interleaved loop: the vocoder's width against the model, the tokenizer against
   * the vocoder */
  tp.mode = LFM2_TTS_INTERLEAVED;
  tp.n_ctx = params->n_ctx;
  tp.n_threads = params->n_threads;
  lfm2_clear_error ();
  self->tts = lfm2_tts_new (model, gst_lfm2_shared_vocoder (self->vocoder_shared),
      gst_lfm2_shared_audio_tokenizer (self->tokenizer_shared), tp);
  if (self->tts == NULL) {
    g_set_error (&err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "%s",
        lfm2_last_error ());
    dbg = g_strdup_printf ("model: %s, vocoder: %s, tokenizer: %s", lfm2_model_path (model),
        voc, tok);
    goto fail;
  }
  if (transcribe
      && !(self->asr = new_transcriber (model, as.max_segment_ms, params->n_threads, &err)))
    goto fail;
  self->applied_valid = FALSE;
  GST_INFO_OBJECT (self, "%s; %s; %s", lfm2_audio_desc (((GstLfm2AudioMmproj *)
              gst_lfm2_shared_get (self->enc.mmproj))->audio),
      lfm2_vocoder_desc (gst_lfm2_shared_vocoder (self->vocoder_shared)),
      lfm2_audio_tokenizer_desc (gst_lfm2_shared_audio_tokenizer (self->tokenizer_shared)));
  gst_lfm2_audio_settings_clear (&as);
  g_free (voc);
  g_free (tok);
  return TRUE;

fail:
  GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
  g_clear_error (&err);
  g_free (dbg);
  gst_lfm2_audio_settings_clear (&as);
  g_free (voc);
  g_free (tok);
  return FALSE;                 /* the base class calls stop() */
}

static void
gst_lfm2_s2s_stop (GstLfm2GenElement * base)
{
  GstLfm2S2s *self = GST_LFM2_S2S (base);

  gst_lfm2_gen_free (self->asr);
  self->asr = NULL;
  g_clear_pointer (&self->tts, lfm2_tts_free);
  gst_lfm2_shared_release (self->tokenizer_shared);
  gst_lfm2_shared_release (self->vocoder_shared);
  self->tokenizer_shared = self->vocoder_shared = NULL;
  gst_lfm2_audio_enc_stop (&self->enc);
  gst_lfm2_audio_in_stop (&self->in);
  g_clear_pointer (&self->embd, g_free);
  self->embd_cap = 0;
  g_clear_pointer (&self->applied_system, g_free);
  self->applied_valid = FALSE;
}

/* ---- the streaming thread ------------------------------------------------------------ */

static gboolean
upstream_is_live (GstLfm2S2s * self)
{
  if (!self->live_known) {
    GstQuery *q = gst_query_new_latency ();

    self->live = FALSE;
    if (gst_pad_peer_query (self->sinkpad, q))
      gst_query_parse_latency (q, &self->live, NULL, NULL);
    gst_query_unref (q);
    self->live_known = TRUE;
  }
  return self->live;
}

/* Appends an item for the worker (dropped while flushing). */
static void
queue_item (GstLfm2S2s * self, Item * item)
{
  g_mutex_lock (&self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    item_free (item);
    return;
  }
  g_queue_push_tail (&self->queue, item);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

/* Live input that outpaces the model: the oldest queued utterances go. Call with the lock;
 * returns how many. */
static guint
bound_queue_locked (GstLfm2S2s * self, GstClockTime * first)
{
  GList *l = self->queue.head;
  guint n = 0;

  while (l && self->queued_samples > MAX_QUEUED_SAMPLES) {
    GList *next = l->next;
    Item *item = l->data;

    if (item->type == ITEM_UTTERANCE) {
      if (n++ == 0)
        *first = item->job.pts;
      self->queued_samples -= item->job.n;
      self->n_jobs--;
      g_queue_delete_link (&self->queue, l);
      item_free (item);
    }
    l = next;
  }
  return n;
}

/* A closed utterance: a reply to make, in stream order. */
static void
on_utterance (const GstLfm2Utterance * u, gpointer user_data)
{
  GstLfm2S2s *self = user_data;
  Item *item = g_new0 (Item, 1);
  GstClockTime first = GST_CLOCK_TIME_NONE;
  guint dropped = 0;

  item->type = ITEM_UTTERANCE;
  item->job.pcm = g_try_new (gfloat, MAX (u->n, 1));
  if (item->job.pcm == NULL) {
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
        ("Out of memory for an utterance of %" G_GINT64_FORMAT " samples; dropped", u->n),
        (NULL));
    g_free (item);
    return;
  }
  memcpy (item->job.pcm, u->pcm, (gsize) u->n * sizeof (gfloat));
  item->job.n = u->n;
  item->job.pts = u->pts;
  item->job.duration = u->duration;
  item->job.closed_us = g_get_monotonic_time ();
  g_mutex_lock (&self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    item_free (item);
    return;
  }
  self->n_jobs++;
  self->queued_samples += u->n;
  g_queue_push_tail (&self->queue, item);
  g_cond_broadcast (&self->cond);
  if (self->live)
    dropped = bound_queue_locked (self, &first);
  g_mutex_unlock (&self->lock);
  if (dropped)
    GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY,
        ("Replies are more than %d s of speech behind the live input: %u utterance(s) from "
            "%" GST_TIME_FORMAT " dropped", (int) (MAX_QUEUED_SAMPLES / INPUT_RATE), dropped,
            GST_TIME_ARGS (first)), ("use a smaller model, more threads, or lower max-tokens"));
}

/* Tells the worker how far the output may move on with silence (coalesced with a GAP queued
 * last). */
static void
queue_gap (GstLfm2S2s * self, GstClockTime end, gboolean force)
{
  Item *tail;

  if (!GST_CLOCK_TIME_IS_VALID (end))
    return;
  if (GST_CLOCK_TIME_IS_VALID (self->gap_queued) && (end <= self->gap_queued
          || (!force && end < self->gap_queued + GAP_STEP)))
    return;
  g_mutex_lock (&self->lock);
  if (!self->flushing) {
    tail = g_queue_peek_tail (&self->queue);
    if (tail && tail->type == ITEM_GAP) {
      tail->gap_end = end;
    } else {
      Item *item = g_new0 (Item, 1);
      item->type = ITEM_GAP;
      item->gap_end = end;
      g_queue_push_tail (&self->queue, item);
    }
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  self->gap_queued = end;
}

/* Non-live input waits here while the worker is behind (live input never waits); the
 * worker's state is the streaming thread's return. */
static GstFlowReturn
wait_for_worker (GstLfm2S2s * self, gboolean live)
{
  GstFlowReturn ret;

  g_mutex_lock (&self->lock);
  while (!live && !self->flushing && self->worker_ret == GST_FLOW_OK
      && self->n_jobs >= MAX_QUEUED)
    g_cond_wait (&self->cond, &self->lock);
  ret = self->flushing ? GST_FLOW_FLUSHING : self->worker_ret;
  g_mutex_unlock (&self->lock);
  return ret;
}

static GstFlowReturn
gst_lfm2_s2s_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2S2s *self = GST_LFM2_S2S (parent);
  GError *err = NULL;
  gboolean ok, live;

  if (self->tts == NULL) {
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  live = upstream_is_live (self);
  ok = gst_lfm2_audio_in_push (&self->in, buf, on_utterance, self, &err);
  gst_buffer_unref (buf);
  if (!ok) {
    if (g_error_matches (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION)) {
      g_clear_error (&err);
      return GST_FLOW_NOT_NEGOTIATED;
    }
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  queue_gap (self, gst_lfm2_audio_in_settled (&self->in), FALSE);
  return wait_for_worker (self, live);
}

/* Hands a serialized event to the worker, to go out on src in stream order. */
static void
queue_event (GstLfm2S2s * self, GstEvent * event)
{
  Item *item = g_new0 (Item, 1);

  item->type = ITEM_EVENT;
  item->event = event;
  queue_item (self, item);
}

static gboolean
gst_lfm2_s2s_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2S2s *self = GST_LFM2_S2S (parent);
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      g_mutex_lock (&self->lock);
      self->flushing = TRUE;
      g_atomic_int_set (&base->cancel, 1);
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      /* downstream first, so a worker blocked in a push returns; then wait for it */
      gst_pad_push_event (self->srcpad, event);
      gst_pad_pause_task (self->srcpad);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:{
      gboolean ok;

      g_mutex_lock (&self->lock);
      clear_pending_locked (self);
      self->flushing = FALSE;
      self->worker_ret = GST_FLOW_OK;
      g_atomic_int_set (&base->cancel, 0);
      g_mutex_unlock (&self->lock);
      /* the worker is paused and the streaming thread is here: both sides are ours */
      gst_lfm2_audio_in_reset (&self->in);
      gst_lfm2_speech_out_reset (&self->out);
      self->gap_queued = GST_CLOCK_TIME_NONE;
      ok = gst_pad_push_event (self->srcpad, event);
      if (gst_pad_is_active (self->srcpad))
        gst_pad_start_task (self->srcpad, gst_lfm2_s2s_worker, self, NULL);
      return ok;
    }
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GError *err = NULL;
      gboolean ok;

      /* the input's format: the converter's; the output's are ours (the worker's) */
      gst_event_parse_caps (event, &caps);
      ok = gst_lfm2_audio_in_set_caps (&self->in, caps, on_utterance, self, &err);
      if (!ok) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s", err->message),
            ("%" GST_PTR_FORMAT, caps));
        g_clear_error (&err);
      }
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;

      gst_event_parse_segment (event, &seg);
      /* what is open ends under the old segment */
      gst_lfm2_audio_in_set_segment (&self->in, seg, on_utterance, self);
      self->gap_queued = GST_CLOCK_TIME_NONE;
      queue_event (self, gst_event_new_segment (&self->in.segment));
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;

      gst_event_parse_gap (event, &ts, &dur);
      gst_lfm2_audio_in_gap (&self->in, ts, dur, on_utterance, self);
      queue_gap (self, gst_lfm2_audio_in_settled (&self->in), TRUE);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_EOS:
      /* the last words: the open utterance closes, its reply goes out before EOS */
      gst_lfm2_audio_in_drain (&self->in, on_utterance, self);
      queue_gap (self, gst_lfm2_audio_in_end (&self->in), TRUE);
      queue_event (self, event);
      return TRUE;
    default:
      if (GST_EVENT_IS_SERIALIZED (event)) {
        queue_event (self, event);
        return TRUE;
      }
      return gst_pad_event_default (pad, parent, event);
  }
}

static gboolean
gst_lfm2_s2s_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2S2s *self = GST_LFM2_S2S (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:{
      GstClockTime latency;

      GST_OBJECT_LOCK (self);
      latency = self->latency_ms * GST_MSECOND;
      GST_OBJECT_UNLOCK (self);
      return gst_lfm2_speech_out_query_latency (&self->out, query, latency);
    }
    case GST_QUERY_POSITION:{
      GstFormat format;
      GstClockTime pos;

      gst_query_parse_position (query, &format, NULL);
      pos = gst_lfm2_speech_out_position (&self->out);
      if (format != GST_FORMAT_TIME || !GST_CLOCK_TIME_IS_VALID (pos))
        break;
      gst_query_set_position (query, GST_FORMAT_TIME, (gint64) pos);
      return TRUE;
    }
    default:
      break;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_lfm2_s2s_src_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode,
    gboolean active)
{
  GstLfm2S2s *self = GST_LFM2_S2S (parent);
  gboolean ret;

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    g_mutex_lock (&self->lock);
    self->flushing = FALSE;
    self->worker_ret = GST_FLOW_OK;
    g_atomic_int_set (&GST_LFM2_GEN_ELEMENT (self)->cancel, 0);
    g_mutex_unlock (&self->lock);
    self->gap_queued = GST_CLOCK_TIME_NONE;
    self->live_known = FALSE;
    self->negotiated = FALSE;
    gst_lfm2_speech_out_reset (&self->out);
    return gst_pad_start_task (pad, gst_lfm2_s2s_worker, self, NULL);
  }
  /* also wakes a streaming thread waiting for the worker (non-live input) */
  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  g_atomic_int_set (&GST_LFM2_GEN_ELEMENT (self)->cancel, 1);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  ret = gst_pad_stop_task (pad);
  g_mutex_lock (&self->lock);
  clear_pending_locked (self);
  g_mutex_unlock (&self->lock);
  return ret;
}

/* ---- the worker ---------------------------------------------------------------------- */

/* The output caps, before anything else goes out on src after the stream start. */
static gboolean
ensure_negotiated (GstLfm2S2s * self)
{
  const struct lfm2_vocoder_hparams *hp =
      lfm2_vocoder_get_hparams (gst_lfm2_shared_vocoder (self->vocoder_shared));

  if (!self->negotiated)
    self->negotiated = gst_lfm2_speech_out_negotiate (&self->out, TRUE, FALSE,
        hp->n_codebooks, hp->eoa);
  return self->negotiated;
}

static GstFlowReturn
handle_event (GstLfm2S2s * self, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      gst_pad_push_event (self->srcpad, event);
      self->negotiated = FALSE;
      return ensure_negotiated (self) ? GST_FLOW_OK : GST_FLOW_NOT_NEGOTIATED;
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;

      if (!ensure_negotiated (self)) {
        gst_event_unref (event);
        return GST_FLOW_NOT_NEGOTIATED;
      }
      gst_event_parse_segment (event, &seg);
      gst_lfm2_speech_out_set_segment (&self->out, seg, gst_event_get_seqnum (event));
      gst_event_unref (event);
      return GST_FLOW_OK;
    }
    case GST_EVENT_EOS:
      GST_DEBUG_OBJECT (self, "EOS after the last reply");
      gst_pad_push_event (self->srcpad, event);
      return GST_FLOW_EOS;
    default:
      gst_pad_push_event (self->srcpad, event);
      return GST_FLOW_OK;
  }
}

typedef struct {
  gchar *prompt;
  gint max_tokens;
  GstClockTime latency;
} Request;

/* Hands the properties changed since the last reply to the loop. */
static gboolean
sync_settings (GstLfm2S2s * self, Request * rq)
{
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);
  gchar *system;
  gfloat temperature;
  gint top_k;
  guint64 seed;
  gboolean ok = TRUE;

  GST_OBJECT_LOCK (self);
  system = g_strdup (base->settings.system_prompt);
  temperature = base->settings.sampling.temperature;
  top_k = base->settings.sampling.top_k;
  seed = base->settings.sampling.seed;
  rq->prompt = self->prompt && self->prompt[0] ? g_strdup (self->prompt) : NULL;
  rq->max_tokens = base->settings.max_tokens;
  rq->latency = self->latency_ms * GST_MSECOND;
  GST_OBJECT_UNLOCK (self);

  lfm2_clear_error ();
  if (!self->applied_valid || g_strcmp0 (system, self->applied_system) != 0)
    ok &= lfm2_tts_set_system_prompt (self->tts, system) == 0;
  /* 4294967295: a new seed for every reply, as llama.cpp */
  if (!self->applied_valid || temperature != self->applied_temperature
      || top_k != self->applied_top_k || seed != self->applied_seed || seed == G_MAXUINT32)
    ok &= lfm2_audio_head_set_sampling (lfm2_tts_head (self->tts), temperature, top_k,
        seed == G_MAXUINT32 ? g_random_int () : seed) == 0;
  g_free (self->applied_system);
  self->applied_system = system;
  self->applied_temperature = temperature;
  self->applied_top_k = top_k;
  self->applied_seed = seed;
  self->applied_valid = ok;
  if (!ok)
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Cannot apply the settings: %s",
            lfm2_last_error ()), (NULL));
  return ok;
}

/* The utterance's embedding rows in self->embd; their count, or -1 after posting. */
static gint
encode (GstLfm2S2s * self, const GstLfm2S2sJob * job)
{
  const gint rows = gst_lfm2_audio_enc_n_rows (job->n);
  const gsize need = (gsize) rows * self->enc.n_embd;
  GError *err = NULL;

  if (need > self->embd_cap) {
    /* per utterance length, not per utterance */
    g_free (self->embd);
    self->embd = g_try_new (gfloat, need);
    self->embd_cap = self->embd ? need : 0;
    if (self->embd == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
          ("Cannot allocate %d audio embedding rows", rows), (NULL));
      return -1;
    }
  }
  if (!gst_lfm2_audio_enc_encode (&self->enc, job->pcm, job->n, self->embd, self->embd_cap,
          &err)) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return -1;
  }
  return rows;
}

/* The user's side: "Perform ASR." on the rows, greedy, posted as lfm2s2s/transcript. */
static GstFlowReturn
transcribe (GstLfm2S2s * self, const GstLfm2S2sJob * job, gint rows)
{
  const GstLfm2GenMedia media = { self->embd, rows, NULL, 0 };
  GstLfm2GenStats st = { 0 };
  GError *err = NULL;
  GstStructure *s;

  g_string_truncate (self->heard, 0);
  if (!gst_lfm2_gen_run (self->asr, "", &media, 1, NULL, NULL,
          &GST_LFM2_GEN_ELEMENT (self)->cancel, self->heard, &st, &err)) {
    /* an utterance longer than the transcriber's context cannot happen (sized for the
     * longest one); anything else is the engine's */
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, "transcribing the utterance");
    g_clear_error (&err);
    return FLOW_POSTED_ERROR;
  }
  if (st.stop == GST_LFM2_GEN_STOP_CANCELLED)
    return GST_FLOW_FLUSHING;
  s = gst_structure_new ("lfm2s2s/transcript",
      "text", G_TYPE_STRING, self->heard->str,
      "start", G_TYPE_UINT64, (guint64) job->pts,
      "duration", G_TYPE_UINT64, (guint64) job->duration,
      "inference-ms", G_TYPE_DOUBLE, st.total_ms, NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
  return GST_FLOW_OK;
}

/* One utterance: its rows into the interleaved loop, every frame pushed as it comes; then
 * its transcript; then the reply's message. */
static GstFlowReturn
reply (GstLfm2S2s * self, const GstLfm2S2sJob * job)
{
  const gint64 t0 = g_get_monotonic_time ();
  GstLfm2SpeechTurn turn = { t0, -1.0, 0, 0, "eog" };
  struct lfm2_tts_part parts[2];
  GstClockTime start, duration, at;
  GstFlowReturn ret;
  GstStructure *s;
  Request rq;
  gint rows, n_parts = 0;
  gdouble total_ms, audio_ms;

  if (!sync_settings (self, &rq))
    return FLOW_POSTED_ERROR;
  if ((rows = encode (self, job)) < 0) {
    g_free (rq.prompt);
    return FLOW_POSTED_ERROR;
  }
  memset (parts, 0, sizeof (parts));
  if (rq.prompt)
    parts[n_parts++].text = rq.prompt;
  parts[n_parts].embd = self->embd;
  parts[n_parts++].n_embd_rows = rows;
  lfm2_clear_error ();
  if (lfm2_tts_begin (self->tts, parts, n_parts) != 0) {
    /* a context too small for the utterance (context-length): skip it, say so */
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
        ("Utterance at %" GST_TIME_FORMAT " not answered: %s", GST_TIME_ARGS (job->pts),
            lfm2_last_error ()), ("raise context-length or lower max-segment"));
    g_free (rq.prompt);
    return GST_FLOW_OK;
  }
  g_free (rq.prompt);
  /* the reply follows the question: from the utterance's end, or after the last reply */
  at = GST_CLOCK_TIME_IS_VALID (job->pts) ? job->pts + job->duration : GST_CLOCK_TIME_NONE;
  start = gst_lfm2_speech_out_begin (&self->out, at, GST_CLOCK_TIME_NONE,
      GST_LFM2_OVERFLOW_SHIFT, rq.latency);
  g_string_truncate (self->reply, 0);
  ret = gst_lfm2_speech_out_turn (&self->out, self->tts, rq.max_tokens,
      &GST_LFM2_GEN_ELEMENT (self)->cancel, self->reply, &turn);
  if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED)
    return ret == GST_FLOW_ERROR ? FLOW_POSTED_ERROR : ret;
  duration = gst_lfm2_speech_out_end (&self->out);
  total_ms = (g_get_monotonic_time () - t0) / 1000.0;
  if (self->asr && (ret = transcribe (self, job, rows)) != GST_FLOW_OK)
    return ret;
  audio_ms = duration / (gdouble) GST_MSECOND;
  s = gst_structure_new ("lfm2s2s/reply",
      "text", G_TYPE_STRING, self->reply->str,
      "start", G_TYPE_UINT64, (guint64) start,
      "duration", G_TYPE_UINT64, (guint64) duration,
      "first-audio-ms", G_TYPE_DOUBLE, turn.first_audio_ms,
      "queued-ms", G_TYPE_DOUBLE, (t0 - job->closed_us) / 1000.0,
      "rtf", G_TYPE_DOUBLE, audio_ms > 0 ? total_ms / audio_ms : 0.0,
      "frames", G_TYPE_INT, turn.frames,
      "text-tokens", G_TYPE_INT, turn.text_tokens,
      "stop-reason", G_TYPE_STRING, turn.stop,
      "utterance-start", G_TYPE_UINT64, (guint64) job->pts,
      "utterance-duration", G_TYPE_UINT64, (guint64) job->duration, NULL);
  GST_DEBUG_OBJECT (self, "reply at %" GST_TIME_FORMAT " (%d frames, first audio %.1f ms): %s",
      GST_TIME_ARGS (start), turn.frames, turn.first_audio_ms, self->reply->str);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
  return GST_FLOW_OK;
}

static void
gst_lfm2_s2s_worker (gpointer data)
{
  GstLfm2S2s *self = GST_LFM2_S2S (data);
  GstFlowReturn ret = GST_FLOW_OK;
  Item *item;

  g_mutex_lock (&self->lock);
  while (!self->flushing && g_queue_is_empty (&self->queue))
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_pad_pause_task (self->srcpad);
    return;
  }
  item = g_queue_pop_head (&self->queue);
  if (item->type == ITEM_UTTERANCE) {
    self->n_jobs--;
    self->queued_samples -= item->job.n;
    g_cond_broadcast (&self->cond);     /* a non-live streaming thread may go on */
  }
  g_mutex_unlock (&self->lock);

  switch (item->type) {
    case ITEM_EVENT:
      ret = handle_event (self, item->event);
      item->event = NULL;
      break;
    case ITEM_GAP:
      if (ensure_negotiated (self)) {
        const GstClockTime pos = gst_lfm2_speech_out_position (&self->out);
        const GstClockTime from = GST_CLOCK_TIME_IS_VALID (pos) ? pos : self->out.segment.start;
        if (item->gap_end > from)
          gst_lfm2_speech_out_gap (&self->out, from, item->gap_end - from,
              GST_LFM2_OVERFLOW_SHIFT);
      }
      break;
    case ITEM_UTTERANCE:
      ret = ensure_negotiated (self) ? reply (self, &item->job) : GST_FLOW_NOT_NEGOTIATED;
      break;
  }
  item_free (item);

  switch (ret) {
    case GST_FLOW_OK:
    case GST_FLOW_NOT_LINKED:  /* nobody listens: the messages still go out */
      return;
    case GST_FLOW_FLUSHING:
      GST_DEBUG_OBJECT (self, "flushing");
      break;
    case GST_FLOW_EOS:
      GST_DEBUG_OBJECT (self, "EOS");
      break;
    case FLOW_POSTED_ERROR:
      ret = GST_FLOW_ERROR;
      break;
    default:
      if (ret <= GST_FLOW_NOT_NEGOTIATED)
        GST_ELEMENT_FLOW_ERROR (self, ret);
      break;
  }
  g_mutex_lock (&self->lock);
  self->worker_ret = ret;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  gst_pad_pause_task (self->srcpad);
}
