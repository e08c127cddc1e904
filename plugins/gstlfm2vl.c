/* gstlfm2vl.c — lfm2vl: live video captioning with LFM2-VL. */

/**
 * SECTION:element-lfm2vl
 * @title: lfm2vl
 * @short_description: live video captioning with LFM2-VL
 *
 * Video comes in on `sink` and goes out on `src` untouched (the same buffers, no copy, in the
 * streaming thread, never waiting for the model). A worker thread (a GstTask on `text_src`)
 * captions the newest frame: the sink side keeps a one-slot box with the latest eligible
 * frame; a frame arriving while the box is full replaces it and is counted as skipped. The
 * worker converts the frame to RGB, runs the LFM2-VL image encoder, splices the embeddings into
 * the user turn of the chat layout (`prompt`, image first unless the prompt has
 * `<__media__>`), generates, and pushes the caption on `text_src` as `text/x-raw,format=utf8`
 * with the PTS of the frame it describes and a duration reaching to where the next caption
 * can start. Between captions `text_src` carries GAP events, so text consumers (textoverlay,
 * srtenc) always know how far the text stream has got.
 *
 * After every caption the element posts an element message `lfm2vl/caption`
 * {text, pts, duration, running-time, inference-ms, encode-ms, image-tokens,
 * generated-tokens, skipped-frames, stop-reason}.
 *
 * Latency: the video pad adds none. A caption leaves up to one inference after its frame, so
 * `text_src` answers LATENCY queries with upstream + `latency` (ms); set it to at least the
 * caption time of your model and CPU (the `stats` property shows the largest delay seen, and
 * the element warns once when a caption is later than `latency`).
 *
 * EOS: the video EOS goes out at once; the frame waiting in the box is still captioned, then
 * EOS goes out on `text_src`. Flushing and PAUSED→READY cancel the running caption.
 *
 * The model must be the LFM2-VL backbone the mmproj belongs to: READY→PAUSED fails, naming
 * both files, for a projector of another width or a backbone without LFM2-VL's image marker
 * tokens (a text-only LFM2 model). The shared properties (model, system-prompt, max-tokens,
 * sampling, n-threads, context-length) come from the #GstLfm2GenElement base class.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! lfm2vl name=vl model=LFM2-VL-450M-Q8_0.gguf \
 *     mmproj=mmproj-LFM2-VL-450M-Q8_0.gguf ! queue max-size-time=0 max-size-buffers=0 \
 *     max-size-bytes=0 ! textoverlay name=ov ! videoconvert ! autovideosink \
 *     vl.text_src ! queue ! ov.text_sink
 * ]|
 */
#include "gstlfm2vl.h"
#include "gstlfm2threads.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_vl_debug);
#define GST_CAT_DEFAULT gst_lfm2_vl_debug

#define DEFAULT_PROMPT "Describe this image in one sentence."
#define DEFAULT_INTERVAL 0
#define DEFAULT_LATENCY_MS 4000
/* A live caption should describe a frame at most about two seconds old (issue 15). */
#define DEFAULT_CAPTION_BUDGET_MS 2000
#define DEFAULT_INFERENCE_NICE GST_LFM2_DEFAULT_INFERENCE_NICE

/* The shared properties' defaults: short captions, the LFM2-VL model card's temperature. */
static const GstLfm2GenElementDefaults gen_defaults = {
  .system_prompt = NULL,
  .max_tokens = 64,
  .temperature = 0.1f,
};

enum {
  PROP_0,
  PROP_MMPROJ,
  PROP_PROMPT,
  PROP_INTERVAL,
  PROP_LATENCY,
  PROP_STATS,
  PROP_CAPTION_BUDGET,
  PROP_INFERENCE_NICE,
  PROP_VISION_FIRST,            /* (n-threads) min-image-tokens … preprocessor-config */
};

/* caption() failed and has posted the error message itself. */
#define FLOW_POSTED_ERROR GST_FLOW_CUSTOM_ERROR

static GstStaticPadTemplate text_src_template = GST_STATIC_PAD_TEMPLATE ("text_src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_LFM2_TEXT_CAPS));

G_DEFINE_TYPE (GstLfm2Vl, gst_lfm2_vl, GST_TYPE_LFM2_GEN_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2vl, "lfm2vl", GST_RANK_NONE, GST_TYPE_LFM2_VL,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_vl_debug, "lfm2vl", 0, "LFM2-VL video captioning"));

static void gst_lfm2_vl_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_vl_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_vl_finalize (GObject * object);
static GstStateChangeReturn gst_lfm2_vl_change_state (GstElement * element,
    GstStateChange transition);
static gboolean gst_lfm2_vl_post_message (GstElement * element, GstMessage * message);
static gboolean gst_lfm2_vl_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params);
static void gst_lfm2_vl_stop (GstLfm2GenElement * base);
static GstFlowReturn gst_lfm2_vl_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);
static gboolean gst_lfm2_vl_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_lfm2_vl_sink_query (GstPad * pad, GstObject * parent, GstQuery * query);
static gboolean gst_lfm2_vl_text_query (GstPad * pad, GstObject * parent, GstQuery * query);
static gboolean gst_lfm2_vl_text_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_lfm2_vl_text_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active);
static GstIterator *gst_lfm2_vl_iterate_internal_links (GstPad * pad, GstObject * parent);
static void gst_lfm2_vl_worker (gpointer data);
static void frame_free (gpointer data);
static gboolean has_work_locked (gpointer data);
static void clear_pending_locked (gpointer data);

static void
gst_lfm2_vl_class_init (GstLfm2VlClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstLfm2GenElementClass *gen_class = GST_LFM2_GEN_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_vl_set_property;
  gobject_class->get_property = gst_lfm2_vl_get_property;
  gobject_class->finalize = gst_lfm2_vl_finalize;

  gst_lfm2_gen_element_class_install_properties (gen_class, &gen_defaults);
  /**
   * GstLfm2Vl:mmproj:
   *
   * Path of the LFM2-VL mmproj GGUF (image encoder + projector) that belongs to the model.
   * READY→PAUSED fails, naming both files, when it does not: a projector of another width,
   * or a model without the image marker tokens the layout needs (a text-only LFM2 model).
   */
  g_object_class_install_property (gobject_class, PROP_MMPROJ,
      g_param_spec_string ("mmproj", "mmproj",
          "Path of the LFM2-VL mmproj GGUF (image encoder + projector) that belongs to the "
          "model", NULL, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLfm2Vl:prompt:
   *
   * The user turn sent with every captioned frame. The image goes first, or where the
   * prompt has "<__media__>".
   */
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "User turn sent with every captioned frame; the image goes first, or where the "
          "prompt has \"<__media__>\"", DEFAULT_PROMPT, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Vl:interval:
   *
   * Minimum running time between captioned frames, in nanoseconds; 0 captions back to
   * back, as fast as the model goes. Frames in between pass through and get GAP events on
   * `text_src`.
   */
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint64 ("interval", "Interval",
          "Minimum running time between captioned frames, in nanoseconds (0 = caption back "
          "to back, as fast as the model goes)", 0, G_MAXUINT64, DEFAULT_INTERVAL,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Vl:latency:
   *
   * How late captions may be behind their frame, in milliseconds. `text_src` adds it to
   * the upstream latency in LATENCY queries; set it to at least one caption time (the
   * element warns once when a caption is later).
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "How late captions may be behind their frame, in milliseconds: added to the "
          "upstream latency in LATENCY queries on text_src (set it to at least one caption "
          "time)", 0, G_MAXUINT / 2, DEFAULT_LATENCY_MS, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Vl:stats:
   *
   * An `lfm2vl/stats` structure: frames seen, captions made, frames skipped while the
   * model was busy, and the largest delay of a caption behind its frame (live pipelines).
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "lfm2vl/stats {frames, captions, skipped-frames, max-delay (ns, caption behind its "
          "frame in running time, live pipelines only)}", GST_TYPE_STRUCTURE,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstLfm2Vl:caption-budget:
   *
   * Target time for one caption, in milliseconds. Before each caption the element picks the
   * largest image plan whose predicted time fits: the image settings as set (tiles and
   * thumbnail), else the picture untiled at max-image-tokens, then at half as many tokens …
   * down to min-image-tokens. Predictions use the measured cost per image token of the
   * encoder and of the prefill and the last generation times; the first caption of a
   * stream uses the smallest plan from a live source, the largest untiled one otherwise.
   * 0 always uses the image settings as set.
   */
  g_object_class_install_property (gobject_class, PROP_CAPTION_BUDGET,
      g_param_spec_uint ("caption-budget", "Caption budget",
          "Target time for one caption in ms: the largest image plan (tiles, untiled, fewer "
          "tokens) whose measured cost fits; 0 = the image settings as set", 0,
          G_MAXUINT / 2, DEFAULT_CAPTION_BUDGET_MS, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Vl:inference-nice:
   *
   * Nice value of the inference threads (the worker and the engine's thread pools) relative
   * to the media threads: 0 runs them as the rest of the process, higher values make them
   * yield the CPU to the video when cores are short. Applied when the worker starts.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_NICE,
      gst_lfm2_inference_nice_param_spec ("video"));
  /* min-image-tokens … preprocessor-config; n-threads is the base class's (encoder and
   * decoder) */
  gst_lfm2_vision_install_properties (gobject_class, PROP_VISION_FIRST, FALSE);

  {
    GstCaps *video = gst_lfm2_vision_video_caps ();
    gst_element_class_add_pad_template (element_class,
        gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, video));
    gst_element_class_add_pad_template (element_class,
        gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, video));
    gst_caps_unref (video);
  }
  gst_element_class_add_static_pad_template (element_class, &text_src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2-VL video captioning", "Filter/Analyzer/Video",
      "Captions the newest video frame with Liquid AI LFM2-VL in a worker thread; the video "
      "passes through untouched, captions come out on text_src with the frame's timestamp",
      "lfm2-gst developers");
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_lfm2_vl_change_state);
  element_class->post_message = GST_DEBUG_FUNCPTR (gst_lfm2_vl_post_message);
  gen_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_vl_start);
  gen_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_vl_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_PREPROCESS, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_RESAMPLE, 0);
}

static void
gst_lfm2_vl_init (GstLfm2Vl * self)
{
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);
  GstLfm2VlSettings *s = &self->settings;

  self->sinkpad = gst_pad_new_from_template (gst_element_class_get_pad_template (klass,
          "sink"), "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_vl_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_vl_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_vl_sink_query));
  gst_pad_set_iterate_internal_links_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_vl_iterate_internal_links));
  /* Caps, accept-caps and allocation queries go to the video peer: zero-copy passthrough
   * (caps in our order of preference where downstream has none). */
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_template (gst_element_class_get_pad_template (klass,
          "src"), "src");
  gst_pad_set_iterate_internal_links_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_vl_iterate_internal_links));
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->textpad = gst_pad_new_from_static_template (&text_src_template, "text_src");
  gst_pad_use_fixed_caps (self->textpad);
  gst_pad_set_query_function (self->textpad, GST_DEBUG_FUNCPTR (gst_lfm2_vl_text_query));
  gst_pad_set_event_function (self->textpad, GST_DEBUG_FUNCPTR (gst_lfm2_vl_text_event));
  gst_pad_set_activatemode_function (self->textpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_vl_text_activate_mode));
  gst_pad_set_iterate_internal_links_function (self->textpad,
      GST_DEBUG_FUNCPTR (gst_lfm2_vl_iterate_internal_links));
  gst_element_add_pad (GST_ELEMENT (self), self->textpad);
  gst_lfm2_text_pad_init (&self->text, self->textpad);

  s->prompt = g_strdup (DEFAULT_PROMPT);
  s->interval = DEFAULT_INTERVAL;
  s->latency_ms = DEFAULT_LATENCY_MS;
  s->caption_budget_ms = DEFAULT_CAPTION_BUDGET_MS;
  s->inference_nice = DEFAULT_INFERENCE_NICE;
  gst_lfm2_vision_settings_init (&s->vision);
  self->threads = gst_lfm2_inference_threads_new (DEFAULT_INFERENCE_NICE);

  /* the ordered queue's jobs: frames that must be captioned before the event behind them */
  gst_lfm2_queue_init (&self->q, self->textpad, gst_lfm2_vl_worker, self,
      &GST_LFM2_GEN_ELEMENT (self)->cancel, frame_free, has_work_locked, clear_pending_locked);
  gst_segment_init (&self->segment, GST_FORMAT_TIME);
  self->gap_start = self->gap_end = GST_CLOCK_TIME_NONE;
  self->last_taken_rt = self->last_video_pts = GST_CLOCK_TIME_NONE;
  self->max_delay = GST_CLOCK_TIME_NONE;
  self->result = g_string_sized_new (1024);
}

static void
frame_clear (GstLfm2VlFrame * f)
{
  gst_clear_buffer (&f->buffer);
  gst_clear_caps (&f->caps);
  f->skipped = 0;
  f->running_time = GST_CLOCK_TIME_NONE;
}

static void
frame_free (gpointer data)
{
  frame_clear (data);
  g_free (data);
}

/* The worker's own work besides the queue: the newest frame, or soft gaps past what the
 * text has covered. Call with q.lock. */
static gboolean
has_work_locked (gpointer data)
{
  GstLfm2Vl *self = data;

  return self->slot.buffer || (GST_CLOCK_TIME_IS_VALID (self->gap_end)
      && (!GST_CLOCK_TIME_IS_VALID (self->text.pos) || self->gap_end > self->text.pos));
}

/* Drops the frame and soft gaps waiting for the worker (the queue drops the rest), and the
 * stream's position. Call with q.lock. */
static void
clear_pending_locked (gpointer data)
{
  GstLfm2Vl *self = data;

  frame_clear (&self->slot);
  self->gap_start = self->gap_end = GST_CLOCK_TIME_NONE;
  self->last_taken_rt = self->last_video_pts = GST_CLOCK_TIME_NONE;
}

static void
gst_lfm2_vl_finalize (GObject * object)
{
  GstLfm2Vl *self = GST_LFM2_VL (object);
  GstLfm2VlSettings *s = &self->settings;

  /* PAUSED→READY released these; an element disposed in PAUSED did not. */
  gst_lfm2_vision_enc_stop (&self->enc);
  gst_clear_caps (&self->enc_caps);
  gst_clear_caps (&self->caps);
  g_free (self->embd);
  g_free (self->prompt_copy);
  g_string_free (self->result, TRUE);
  g_free (s->mmproj);
  g_free (s->prompt);
  gst_lfm2_vision_settings_clear (&s->vision);
  gst_object_unref (self->threads);
  gst_lfm2_queue_finalize (&self->q);
  G_OBJECT_CLASS (gst_lfm2_vl_parent_class)->finalize (object);
}

static void
gst_lfm2_vl_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Vl *self = GST_LFM2_VL (object);
  GstLfm2VlSettings *s = &self->settings;
  gboolean latency_changed = FALSE;

  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MMPROJ:
      g_free (s->mmproj);
      s->mmproj = g_value_dup_string (value);
      break;
    case PROP_PROMPT:
      g_free (s->prompt);
      s->prompt = g_value_dup_string (value);
      self->prompt_dirty = TRUE;
      break;
    case PROP_INTERVAL:
      s->interval = g_value_get_uint64 (value);
      break;
    case PROP_LATENCY:
      latency_changed = s->latency_ms != g_value_get_uint (value);
      s->latency_ms = g_value_get_uint (value);
      break;
    case PROP_CAPTION_BUDGET:
      s->caption_budget_ms = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_NICE:
      s->inference_nice = g_value_get_int (value);
      gst_lfm2_inference_threads_set_nice (self->threads, s->inference_nice);
      break;
    default:
      if (!gst_lfm2_vision_settings_set_property (&s->vision, prop_id, PROP_VISION_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* The pipeline recomputes its latency (text_src answers with the new value). */
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

static GstStructure *
stats_new (GstLfm2Vl * self)
{
  GstStructure *st;

  g_mutex_lock (&self->q.lock);
  st = gst_structure_new ("lfm2vl/stats",
      "frames", G_TYPE_UINT64, self->n_frames,
      "captions", G_TYPE_UINT64, self->n_captions,
      "skipped-frames", G_TYPE_UINT64, self->n_skipped,
      "max-delay", G_TYPE_UINT64, (guint64) self->max_delay, NULL);
  g_mutex_unlock (&self->q.lock);
  return st;
}

static void
gst_lfm2_vl_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Vl *self = GST_LFM2_VL (object);
  GstLfm2VlSettings *s = &self->settings;

  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, stats_new (self));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MMPROJ:
      g_value_set_string (value, s->mmproj);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, s->prompt);
      break;
    case PROP_INTERVAL:
      g_value_set_uint64 (value, s->interval);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, s->latency_ms);
      break;
    case PROP_CAPTION_BUDGET:
      g_value_set_uint (value, s->caption_budget_ms);
      break;
    case PROP_INFERENCE_NICE:
      g_value_set_int (value, s->inference_nice);
      break;
    default:
      if (!gst_lfm2_vision_settings_get_property (&s->vision, prop_id, PROP_VISION_FIRST,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- models (READY↔PAUSED) ---------------------------------------------------------- */

/* The base class has loaded the text model: the mmproj, checked against it. Errors name
 * both files and the reason. */
static gboolean
gst_lfm2_vl_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params)
{
  GstLfm2Vl *self = GST_LFM2_VL (base);
  GstLfm2VisionSettings vs;
  GError *err = NULL;
  gchar *mmproj_path;

  GST_OBJECT_LOCK (self);
  mmproj_path = g_strdup (self->settings.mmproj);
  gst_lfm2_vision_settings_copy (&vs, &self->settings.vision);
  vs.n_threads = params->n_threads;
  g_free (self->prompt_copy);
  self->prompt_copy = g_strdup (self->settings.prompt);
  self->prompt_dirty = FALSE;
  GST_OBJECT_UNLOCK (self);
  params->chat = TRUE;

  if (!gst_lfm2_vision_enc_start (&self->enc, mmproj_path, model, &vs, &err)) {
    gchar *dbg = g_strdup_printf ("mmproj property: %s, model property: %s",
        mmproj_path ? mmproj_path : "(null)", lfm2_model_path (model));
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
    g_free (dbg);
    g_clear_error (&err);
    g_free (mmproj_path);
    gst_lfm2_vision_settings_clear (&vs);
    return FALSE;
  }
  gst_lfm2_vision_settings_clear (&vs);
  self->enc.ladder = TRUE;      /* the caption budget chooses between plans */
  self->cost_known = FALSE;
  GST_INFO_OBJECT (self, "mmproj %s (%s)", gst_lfm2_shared_path (self->enc.mmproj),
      lfm2_vision_desc (gst_lfm2_shared_mmproj (self->enc.mmproj)->vision));

  g_mutex_lock (&self->q.lock);
  self->n_frames = self->n_captions = self->n_skipped = 0;
  self->max_delay = GST_CLOCK_TIME_NONE;
  g_mutex_unlock (&self->q.lock);
  self->warned_late = FALSE;
  g_free (mmproj_path);
  return TRUE;
}

static void
gst_lfm2_vl_stop (GstLfm2GenElement * base)
{
  GstLfm2Vl *self = GST_LFM2_VL (base);

  gst_lfm2_vision_enc_stop (&self->enc);
  gst_clear_caps (&self->enc_caps);
  g_clear_pointer (&self->embd, g_free);
  self->embd_cap = 0;
  g_clear_pointer (&self->prompt_copy, g_free);
  gst_clear_caps (&self->caps);
}

static GstStateChangeReturn
gst_lfm2_vl_change_state (GstElement * element, GstStateChange transition)
{
  GstLfm2Vl *self = GST_LFM2_VL (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    gst_segment_init (&self->segment, GST_FORMAT_TIME);
  /* the base class loads the files (start) and releases them once the worker has stopped */
  return GST_ELEMENT_CLASS (gst_lfm2_vl_parent_class)->change_state (element, transition);
}

/* The text_src task is created (gst_pad_start_task posts STREAM_STATUS CREATE from the
 * calling thread before starting it): give it the dedicated threads. An application's sync
 * handler sees the message after this and may still choose another pool. */
static gboolean
gst_lfm2_vl_post_message (GstElement * element, GstMessage * message)
{
  GstLfm2Vl *self = GST_LFM2_VL (element);

  gst_lfm2_inference_threads_claim (self->threads, self->textpad, message);
  return GST_ELEMENT_CLASS (gst_lfm2_vl_parent_class)->post_message (element, message);
}

/* ---- pads -------------------------------------------------------------------------- */

static GstIterator *
gst_lfm2_vl_iterate_internal_links (GstPad * pad, GstObject * parent)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);
  GstPad *other = pad == self->sinkpad ? self->srcpad : self->sinkpad;
  GValue v = G_VALUE_INIT;
  GstIterator *it;

  /* Video sink ↔ video src only: text_src never joins caps/allocation negotiation, and
   * upstream queries from text_src (position, duration) are answered by the video side. */
  g_value_init (&v, GST_TYPE_PAD);
  g_value_set_object (&v, other);
  it = gst_iterator_new_single (GST_TYPE_PAD, &v);
  g_value_unset (&v);
  return it;
}

static gboolean
gst_lfm2_vl_text_activate_mode (GstPad * pad, GstObject * parent, GstPadMode mode,
    gboolean active)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);

  /* last_taken_rt and last_video_pts were reset with the queue (init, deactivation) */
  if (active)
    gst_lfm2_text_pad_reset (&self->text);
  return gst_lfm2_queue_activate (&self->q, mode, active);
}

/* Puts the frame in the box (and pending soft gaps) into the ordered queue, so the event
 * queued next goes out after its caption. Call with q.lock. */
static void
freeze_pending_locked (GstLfm2Vl * self)
{
  if (self->slot.buffer) {
    GstLfm2VlFrame *frame = g_new (GstLfm2VlFrame, 1);

    *frame = self->slot;
    memset (&self->slot, 0, sizeof (self->slot));
    gst_lfm2_queue_push_job_locked (&self->q, frame, 0, GST_BUFFER_PTS (frame->buffer), 0,
        NULL);
  }
  if (GST_CLOCK_TIME_IS_VALID (self->gap_end)) {
    gst_lfm2_queue_push_event_locked (&self->q, gst_event_new_gap (self->gap_start,
            self->gap_end - self->gap_start));
    self->gap_start = self->gap_end = GST_CLOCK_TIME_NONE;
  }
}

/* Hands a serialized event to the worker, to go out on text_src in stream order. */
static void
queue_text_event (GstLfm2Vl * self, GstEvent * event)
{
  if (!gst_lfm2_queue_lock_open (&self->q)) {
    gst_event_unref (event);
    return;
  }
  freeze_pending_locked (self);
  gst_lfm2_queue_push_event_locked (&self->q, event);
  g_mutex_unlock (&self->q.lock);
}

/* Stream time [start, end) will get no caption (no frame there is due). */
static void
add_soft_gap_locked (GstLfm2Vl * self, GstClockTime start, GstClockTime end)
{
  if (!GST_CLOCK_TIME_IS_VALID (start) || !GST_CLOCK_TIME_IS_VALID (end) || end < start)
    return;
  if (!GST_CLOCK_TIME_IS_VALID (self->gap_start))
    self->gap_start = start;
  if (!GST_CLOCK_TIME_IS_VALID (self->gap_end) || end > self->gap_end)
    self->gap_end = end;
  g_cond_signal (&self->q.cond);
}

static GstFlowReturn
gst_lfm2_vl_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);
  const GstClockTime pts = GST_BUFFER_PTS (buf), dur = GST_BUFFER_DURATION (buf);
  GstClockTime rt = GST_CLOCK_TIME_NONE, end = GST_CLOCK_TIME_NONE;
  guint64 interval;
  gboolean due;
  GstFlowReturn ret;

  if (self->caps == NULL) {
    gst_buffer_unref (buf);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    rt = gst_segment_to_running_time (&self->segment, GST_FORMAT_TIME, pts);
    end = GST_CLOCK_TIME_IS_VALID (dur) ? pts + dur : pts;
  }
  GST_OBJECT_LOCK (self);
  interval = self->settings.interval;
  GST_OBJECT_UNLOCK (self);

  if (!gst_lfm2_queue_lock_open (&self->q)) {
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  self->n_frames++;
  if (GST_CLOCK_TIME_IS_VALID (pts) && (!GST_CLOCK_TIME_IS_VALID (self->last_video_pts)
          || pts > self->last_video_pts))
    self->last_video_pts = pts;
  due = interval == 0 || !GST_CLOCK_TIME_IS_VALID (rt)
      || !GST_CLOCK_TIME_IS_VALID (self->last_taken_rt)
      || rt >= self->last_taken_rt + interval;
  if (due) {
    /* The newest frame replaces the one still waiting: the worker always gets the latest. */
    guint skipped = 0;
    if (self->slot.buffer) {
      skipped = self->slot.skipped + 1;
      self->n_skipped++;
      frame_clear (&self->slot);
    }
    self->slot.buffer = gst_buffer_ref (buf);
    self->slot.caps = gst_caps_ref (self->caps);
    self->slot.running_time = rt;
    self->slot.skipped = skipped;
    g_cond_signal (&self->q.cond);
  } else {
    /* Not due yet: nothing will describe this frame's time. */
    add_soft_gap_locked (self, pts, end);
  }
  g_mutex_unlock (&self->q.lock);

  ret = gst_pad_push (self->srcpad, buf);
  /* Captioning alone (only text_src linked) is a valid use. */
  if (ret == GST_FLOW_NOT_LINKED && gst_pad_is_linked (self->textpad))
    ret = GST_FLOW_OK;
  return ret;
}

/* A frame size the image settings refuse (min-tiles 1 where transformers is inconsistent)
 * is an error when the caps come, not at the first caption. The plan is cheap; the settings
 * and the mmproj are fixed between READY→PAUSED and PAUSED→READY. */
static gboolean
check_frame_size (GstLfm2Vl * self, const GstVideoInfo * info)
{
  const struct lfm2_vision_hparams *hp;
  struct lfm2_vision_plan plan;

  if (self->enc.mmproj == NULL)
    return TRUE;
  hp = lfm2_vision_get_hparams (gst_lfm2_shared_mmproj (self->enc.mmproj)->vision);
  lfm2_clear_error ();
  if (lfm2_vision_make_plan (&self->enc.params, hp->patch_size, hp->merge,
          GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info), &plan) != 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Cannot caption %d×%d frames: %s",
            GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info), lfm2_last_error ()),
        ("image settings refuse this frame size"));
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_lfm2_vl_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:{
      gboolean ok;

      /* Downstream first, so a worker blocked in a push returns; then wait for it. The
       * video pad's answer is the element's (text_src may well be unlinked). */
      gst_lfm2_queue_set_flushing (&self->q);
      ok = gst_pad_push_event (self->srcpad, gst_event_ref (event));
      gst_lfm2_queue_flush_start (&self->q, event);
      return ok;
    }
    case GST_EVENT_FLUSH_STOP:{
      gboolean ok;

      gst_lfm2_queue_flush_stop (&self->q);
      gst_segment_init (&self->segment, GST_FORMAT_TIME);
      /* the worker is paused: its state is ours to reset */
      gst_lfm2_text_pad_reset (&self->text);
      ok = gst_pad_push_event (self->srcpad, gst_event_ref (event));
      gst_lfm2_queue_restart (&self->q, event);
      return ok;
    }
    case GST_EVENT_STREAM_START:{
      const gchar *id;
      guint group;
      gchar *text_id;
      GstEvent *ev;

      gst_event_parse_stream_start (event, &id);
      text_id = g_strdup_printf ("%s/lfm2vl-text", id ? id : "");
      ev = gst_event_new_stream_start (text_id);
      g_free (text_id);
      gst_event_set_stream_flags (ev, GST_STREAM_FLAG_SPARSE);
      if (gst_event_parse_group_id (event, &group))
        gst_event_set_group_id (ev, group);
      queue_text_event (self, ev);
      return gst_pad_push_event (self->srcpad, event);
    }
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstVideoInfo info;

      gst_event_parse_caps (event, &caps);
      if (!gst_video_info_from_caps (&info, caps)) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable video caps"),
            ("%" GST_PTR_FORMAT, caps));
        gst_event_unref (event);
        return FALSE;
      }
      if (!check_frame_size (self, &info)) {
        gst_event_unref (event);
        return FALSE;
      }
      gst_caps_replace (&self->caps, caps);
      {
        GstQuery *q = gst_query_new_latency ();
        gboolean live = FALSE;

        if (gst_pad_peer_query (self->sinkpad, q))
          gst_query_parse_latency (q, &live, NULL, NULL);
        gst_query_unref (q);
        g_atomic_int_set (&self->upstream_live, live);
      }
      return gst_pad_push_event (self->srcpad, event);
    }
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;

      gst_event_parse_segment (event, &seg);
      if (seg->format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Video segment is not in TIME format"),
            ("%" GST_SEGMENT_FORMAT, seg));
        gst_event_unref (event);
        return FALSE;
      }
      gst_segment_copy_into (seg, &self->segment);
      queue_text_event (self, gst_event_new_segment (seg));
      return gst_pad_push_event (self->srcpad, event);
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;

      gst_event_parse_gap (event, &ts, &dur);
      g_mutex_lock (&self->q.lock);
      if (GST_CLOCK_TIME_IS_VALID (ts))
        add_soft_gap_locked (self, ts, GST_CLOCK_TIME_IS_VALID (dur) ? ts + dur : ts);
      g_mutex_unlock (&self->q.lock);
      return gst_pad_push_event (self->srcpad, event);
    }
    case GST_EVENT_EOS:
      /* Video EOS now; text EOS after the pending caption (the worker drains the queue). */
      queue_text_event (self, gst_event_ref (event));
      return gst_pad_push_event (self->srcpad, event);
    default:
      /* Other serialized events (tags, …) describe the video; the rest go both ways. */
      if (GST_EVENT_IS_SERIALIZED (event))
        return gst_pad_push_event (self->srcpad, event);
      return gst_pad_event_default (pad, parent, event);
  }
}

static gboolean
gst_lfm2_vl_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS) {
    GstCaps *filter, *caps;

    gst_query_parse_caps (query, &filter);
    caps = gst_lfm2_vision_query_caps (self->srcpad, filter);
    gst_query_set_caps_result (query, caps);
    gst_caps_unref (caps);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_lfm2_vl_text_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    guint latency_ms;

    /* a caption leaves up to `latency` after its frame */
    GST_OBJECT_LOCK (self);
    latency_ms = self->settings.latency_ms;
    GST_OBJECT_UNLOCK (self);
    return gst_lfm2_text_pad_query_latency (parent, self->sinkpad, query, latency_ms);
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_lfm2_vl_text_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2Vl *self = GST_LFM2_VL (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEEK:
      /* Mixers such as textoverlay seek on video and text; the video side does it. */
      if (gst_pad_is_linked (self->srcpad)) {
        gst_event_unref (event);
        return TRUE;
      }
      return gst_pad_push_event (self->sinkpad, event);
    case GST_EVENT_QOS:
    case GST_EVENT_RECONFIGURE:
      /* Lateness of text says nothing about the video source. */
      gst_event_unref (event);
      return TRUE;
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

/* ---- the worker ------------------------------------------------------------------- */

/* Applies settings changed while playing (between captions). */
static gboolean
apply_settings (GstLfm2Vl * self)
{
  if (!gst_lfm2_gen_element_apply_settings (GST_LFM2_GEN_ELEMENT (self)))
    return FALSE;
  GST_OBJECT_LOCK (self);
  if (self->prompt_dirty) {
    g_free (self->prompt_copy);
    self->prompt_copy = g_strdup (self->settings.prompt);
    self->prompt_dirty = FALSE;
  }
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* The caption budget: the plan (rung) whose predicted caption time fits, most image tokens
 * first. Prediction = image rows × (encoder cost + prefill cost per position) + the other
 * new prompt positions × prefill cost + the generation time, all measured on this stream's
 * previous captions. Without measurements yet: from a live source the smallest plan (a first
 * caption soon, and no long first inference competing with the source for the CPU and the
 * memory bus; the budget grows the plan from there), else the largest untiled one. Moving
 * to a larger plan than the current one needs 10 % to spare, so the choice does not flip
 * between two plans on noise. */
static void
choose_plan (GstLfm2Vl * self)
{
  GstLfm2VisionEnc *enc = &self->enc;
  guint budget;
  gint pick = enc->n_rungs - 1;

  GST_OBJECT_LOCK (self);
  budget = self->settings.caption_budget_ms;
  GST_OBJECT_UNLOCK (self);
  if (budget == 0 || enc->n_rungs == 1) {
    pick = 0;
  } else if (!self->cost_known) {
    pick = g_atomic_int_get (&self->upstream_live) ? enc->n_rungs - 1 : 1;
  } else {
    for (gint i = 0; i < enc->n_rungs; i++) {
      const gdouble rows = enc->rungs[i].n_tokens;
      const gdouble t = rows * (self->ms_per_image_token + self->ms_per_prefill_token)
          + self->text_positions * self->ms_per_prefill_token + self->generate_ms;

      if (t <= (i < enc->rung ? 0.9 : 1.0) * budget) {
        pick = i;
        break;
      }
    }
  }
  if (pick != enc->rung)
    GST_DEBUG_OBJECT (self, "caption budget %u ms: %d image tokens (plan %d of %d)", budget,
        enc->rungs[pick].n_tokens, pick + 1, enc->n_rungs);
  gst_lfm2_vision_enc_select (enc, pick);
}

/* Folds a caption's measured times into the costs choose_plan() predicts with (running
 * means over the last few captions: the machine's load changes). */
static void
update_costs (GstLfm2Vl * self, const GstLfm2GenStats * st)
{
  const gdouble rows = self->enc.plan.n_tokens;
  const gint fresh = st->prompt_tokens - st->cached_tokens;
  const gdouble a = self->cost_known ? 0.5 : 1.0;

  if (rows <= 0 || fresh <= 0)
    return;
  self->ms_per_image_token += a * (self->enc.last_encode_ms / rows - self->ms_per_image_token);
  self->ms_per_prefill_token += a * (st->prefill_ms / fresh - self->ms_per_prefill_token);
  self->text_positions += a * (MAX (0.0, fresh - rows) - self->text_positions);
  self->generate_ms += a * (st->generate_ms - self->generate_ms);
  self->cost_known = TRUE;
}

/* caption(), step 1: the frame through the image encoder into self->embd (converter, plans
 * and row buffer are redone only when the caps change; the plan is chosen per caption). */
static GstFlowReturn
encode_frame (GstLfm2Vl * self, GstLfm2VlFrame * frame)
{
  GError *err = NULL;
  gsize need;

  if (self->enc_caps == NULL || !gst_caps_is_equal (self->enc_caps, frame->caps)) {
    GstVideoInfo info;

    if (!gst_video_info_from_caps (&info, frame->caps)) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable video caps"),
          ("%" GST_PTR_FORMAT, frame->caps));
      return FLOW_POSTED_ERROR;
    }
    if (!gst_lfm2_vision_enc_set_info (&self->enc, &info, &err))
      goto error;
    gst_caps_replace (&self->enc_caps, frame->caps);
  }
  choose_plan (self);
  need = gst_lfm2_vision_enc_n_floats (&self->enc);
  if (need > self->embd_cap) {
    /* per picture size, not per frame */
    g_free (self->embd);
    self->embd = g_try_new (gfloat, need);
    self->embd_cap = self->embd ? need : 0;
    if (self->embd == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
          ("Cannot allocate %d image embedding rows", self->enc.plan.n_tokens), (NULL));
      return FLOW_POSTED_ERROR;
    }
  }
  if (!gst_lfm2_vision_enc_encode (&self->enc, frame->buffer, self->embd, self->embd_cap,
          &err))
    goto error;
  return GST_FLOW_OK;

error:
  GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
  g_clear_error (&err);
  return FLOW_POSTED_ERROR;
}

/* caption(), step 2: the rows and the prompt through the decoder into self->result. */
static GstFlowReturn
generate_caption (GstLfm2Vl * self, GstLfm2GenStats * stats)
{
  GstLfm2GenMedia media = { self->embd, self->enc.plan.n_tokens, self->enc.layout,
    self->enc.n_layout
  };
  GError *err = NULL;
  GstFlowReturn ret;

  g_string_truncate (self->result, 0);
  ret = gst_lfm2_gen_element_generate (GST_LFM2_GEN_ELEMENT (self), self->prompt_copy, &media,
      1, self->result, stats, &err);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
    /* The picture does not fit the context: warn, skip it, keep the stream going. */
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_WARNING, err,
        "frame not captioned; raise context-length or lower max-image-tokens");
    g_clear_error (&err);
  } else if (ret == GST_FLOW_ERROR) {
    ret = FLOW_POSTED_ERROR;
  }
  if (ret == GST_FLOW_OK)
    gst_lfm2_gen_element_one_line (self->result);
  return ret;
}

/* caption(), step 3: how long the caption of a frame at `pts` stands, and the statistics.
 * It stands until the next one can start: at least the interval and the frame's own
 * duration, and up to the newest frame that came while we were busy (the next caption
 * describes it). */
static GstClockTime
caption_duration (GstLfm2Vl * self, GstLfm2VlFrame * frame, GstClockTime * delay_out)
{
  const GstClockTime pts = GST_BUFFER_PTS (frame->buffer);
  const GstClockTime fdur = GST_BUFFER_DURATION (frame->buffer);
  GstClockTime dur = GST_CLOCK_TIME_NONE, newest, delay;
  guint64 interval;
  guint latency_ms;

  GST_OBJECT_LOCK (self);
  interval = self->settings.interval;
  latency_ms = self->settings.latency_ms;
  GST_OBJECT_UNLOCK (self);
  delay = gst_lfm2_gen_element_behind_clock (GST_LFM2_GEN_ELEMENT (self),
      frame->running_time);
  g_mutex_lock (&self->q.lock);
  newest = self->last_video_pts;
  self->n_captions++;
  if (GST_CLOCK_TIME_IS_VALID (delay) && (!GST_CLOCK_TIME_IS_VALID (self->max_delay)
          || delay > self->max_delay))
    self->max_delay = delay;
  g_mutex_unlock (&self->q.lock);

  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    dur = interval;
    if (GST_CLOCK_TIME_IS_VALID (fdur) && fdur > dur)
      dur = fdur;
    if (GST_CLOCK_TIME_IS_VALID (newest) && newest > pts && newest - pts > dur)
      dur = newest - pts;
    if (dur == 0)
      dur = 1;                  /* a zero-length cue would be dropped by text consumers */
  }

  if (GST_CLOCK_TIME_IS_VALID (delay) && delay > latency_ms * GST_MSECOND
      && !self->warned_late) {
    self->warned_late = TRUE;
    GST_ELEMENT_WARNING (self, CORE, CLOCK,
        ("Captions are %" G_GUINT64_FORMAT " ms behind their frames, more than the "
            "latency of %u ms: raise the latency property", delay / GST_MSECOND, latency_ms),
        ("caption of %" GST_TIME_FORMAT, GST_TIME_ARGS (pts)));
  }
  *delay_out = delay;
  return dur;
}

/* caption(), step 4: the lfm2vl/caption message and the text on text_src (a GAP when the
 * model said nothing: the text stream still moves on). */
static GstFlowReturn
push_caption (GstLfm2Vl * self, GstLfm2VlFrame * frame, GstClockTime dur,
    const GstLfm2GenStats * stats, gdouble total_ms)
{
  const GstClockTime pts = GST_BUFFER_PTS (frame->buffer);
  GstStructure *s = gst_structure_new ("lfm2vl/caption",
      "text", G_TYPE_STRING, self->result->str,
      "pts", G_TYPE_UINT64, (guint64) pts,
      "duration", G_TYPE_UINT64, (guint64) dur,
      "running-time", G_TYPE_UINT64, (guint64) frame->running_time,
      "inference-ms", G_TYPE_DOUBLE, total_ms,
      "encode-ms", G_TYPE_DOUBLE, self->enc.last_encode_ms,
      "image-tokens", G_TYPE_INT, self->enc.plan.n_tokens,
      "generated-tokens", G_TYPE_INT, stats->generated_tokens,
      "skipped-frames", G_TYPE_UINT, frame->skipped,
      "stop-reason", G_TYPE_STRING, gst_lfm2_gen_stop_to_string (stats->stop), NULL);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
  return gst_lfm2_text_pad_push_text (&self->text, GST_ELEMENT (self), self->result->str,
      self->result->len, pts, dur);
}

/* Captions one frame: encode, generate, time, push. */
static GstFlowReturn
caption (GstLfm2Vl * self, GstLfm2VlFrame * frame)
{
  const gint64 t0 = g_get_monotonic_time ();
  GstLfm2GenStats stats;
  GstClockTime dur, delay;
  GstFlowReturn ret;
  gdouble total_ms;

  if (!apply_settings (self))
    return FLOW_POSTED_ERROR;
  if ((ret = encode_frame (self, frame)) != GST_FLOW_OK)
    return ret;
  if (g_atomic_int_get (&GST_LFM2_GEN_ELEMENT (self)->cancel))
    return GST_FLOW_FLUSHING;
  ret = generate_caption (self, &stats);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED)
    return GST_FLOW_OK;
  if (ret != GST_FLOW_OK)
    return ret;
  update_costs (self, &stats);

  dur = caption_duration (self, frame, &delay);
  total_ms = (g_get_monotonic_time () - t0) / 1000.0;
  GST_DEBUG_OBJECT (self, "caption of %" GST_TIME_FORMAT " (%d tokens, %.0f ms, %u skipped, "
      "%" GST_STIME_FORMAT " behind the clock): %s",
      GST_TIME_ARGS (GST_BUFFER_PTS (frame->buffer)), stats.generated_tokens, total_ms,
      frame->skipped,
      GST_STIME_ARGS (GST_CLOCK_TIME_IS_VALID (delay) ? (GstClockTimeDiff) delay : -1),
      self->result->str);
  return push_caption (self, frame, dur, &stats, total_ms);
}

static void
gst_lfm2_vl_worker (gpointer data)
{
  GstLfm2Vl *self = GST_LFM2_VL (data);
  GstFlowReturn ret = GST_FLOW_OK;
  GstLfm2Item *item;

  if (!gst_lfm2_queue_next (&self->q, &item))
    return;
  if (item != NULL) {
    if (item->type == GST_LFM2_ITEM_JOB)
      self->last_taken_rt = ((GstLfm2VlFrame *) item->job)->running_time;
    g_mutex_unlock (&self->q.lock);
    if (item->type == GST_LFM2_ITEM_EVENT) {
      gst_lfm2_text_pad_push_event (&self->text, GST_ELEMENT (self), item->event);
      item->event = NULL;
    } else {
      ret = caption (self, item->job);
    }
    gst_lfm2_queue_item_free (&self->q, item);
  } else if (self->slot.buffer) {
    GstLfm2VlFrame frame = self->slot;

    memset (&self->slot, 0, sizeof (self->slot));
    self->last_taken_rt = frame.running_time;
    g_mutex_unlock (&self->q.lock);
    ret = caption (self, &frame);
    frame_clear (&frame);
  } else {
    GstClockTime start = self->gap_start, end = self->gap_end;

    self->gap_start = self->gap_end = GST_CLOCK_TIME_NONE;
    g_mutex_unlock (&self->q.lock);
    gst_lfm2_text_pad_push_gap (&self->text, GST_ELEMENT (self), start, end);
  }
  gst_lfm2_queue_done (&self->q, ret, FLOW_POSTED_ERROR);
}
