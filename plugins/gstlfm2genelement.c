/* gstlfm2genelement.c — the base class of the generating elements: shared properties, model
 * and generator from READY→PAUSED to PAUSED→READY, settings handed over between requests
 * (see gstlfm2genelement.h). */
#include "gstlfm2genelement.h"

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_gen_element_debug);
#define GST_CAT_DEFAULT gst_lfm2_gen_element_debug

/* The base properties, GST_LFM2_GEN_PROP_FIRST + these. */
enum {
  PROP_MODEL,
  PROP_SYSTEM_PROMPT,
  PROP_MAX_TOKENS,
  PROP_TEMPERATURE,
  PROP_TOP_K,
  PROP_TOP_P,
  PROP_MIN_P,
  PROP_REPEAT_PENALTY,
  PROP_SEED,
  PROP_N_THREADS,
  PROP_CONTEXT_LENGTH,
  N_PROPS
};

/* What changed since the generating thread last looked. */
enum {
  DIRTY_SYSTEM = 1 << 0,
  DIRTY_SAMPLING = 1 << 1,
  DIRTY_MAX_TOKENS = 1 << 2,
};

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (GstLfm2GenElement, gst_lfm2_gen_element, GST_TYPE_ELEMENT,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_gen_element_debug, "lfm2genelement", 0,
        "LFM2 generating elements (base class)"));

static void gst_lfm2_gen_element_constructed (GObject * object);
static void gst_lfm2_gen_element_finalize (GObject * object);
static GstStateChangeReturn gst_lfm2_gen_element_change_state (GstElement * element,
    GstStateChange transition);

static void
gst_lfm2_gen_element_class_init (GstLfm2GenElementClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->constructed = gst_lfm2_gen_element_constructed;
  gobject_class->finalize = gst_lfm2_gen_element_finalize;
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_lfm2_gen_element_change_state);
}

static void
gst_lfm2_gen_element_init (GstLfm2GenElement * self)
{
}

/* The settings start at the subclass's defaults: its class is known only once every
 * instance_init has run. */
static void
gst_lfm2_gen_element_constructed (GObject * object)
{
  GstLfm2GenElement *self = GST_LFM2_GEN_ELEMENT (object);
  const GstLfm2GenElementDefaults *d = &GST_LFM2_GEN_ELEMENT_GET_CLASS (self)->defaults;
  GstLfm2GenSettings *s = &self->settings;

  s->system_prompt = g_strdup (d->system_prompt);
  s->max_tokens = d->max_tokens;
  s->sampling = lfm2_sampler_default_params ();
  s->sampling.temperature = d->temperature;
  s->sampling.top_k = d->top_k;
  s->sampling.top_p = 1.0f;
  s->sampling.min_p = 0.15f;
  s->sampling.repeat_penalty = 1.05f;
  s->sampling.seed = 0;
  self->dirty = DIRTY_SYSTEM | DIRTY_SAMPLING | DIRTY_MAX_TOKENS;

  G_OBJECT_CLASS (gst_lfm2_gen_element_parent_class)->constructed (object);
}

static void
gst_lfm2_gen_element_finalize (GObject * object)
{
  GstLfm2GenElement *self = GST_LFM2_GEN_ELEMENT (object);

  /* PAUSED→READY released these; an element disposed in PAUSED did not. */
  gst_lfm2_gen_free (self->gen);
  gst_lfm2_shared_release (self->shared);
  g_free (self->model_id);
  g_free (self->settings.model);
  g_free (self->settings.system_prompt);

  G_OBJECT_CLASS (gst_lfm2_gen_element_parent_class)->finalize (object);
}

/* ---- properties ------------------------------------------------------------------- */

void
gst_lfm2_gen_element_class_install_properties (GstLfm2GenElementClass * klass,
    const GstLfm2GenElementDefaults * d)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  const guint first = GST_LFM2_GEN_PROP_FIRST;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags ready = rw | GST_PARAM_MUTABLE_READY;
  const GParamFlags playing = rw | GST_PARAM_MUTABLE_PLAYING;

  klass->defaults = *d;

  /**
   * GstLfm2GenElement:model:
   *
   * Path of the LFM2 GGUF backbone. It is loaded on READY→PAUSED, and shared with the other
   * elements of the process that name the same file.
   */
  g_object_class_install_property (oc, first + PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the LFM2 GGUF backbone (loaded on READY→PAUSED, shared with other "
          "elements naming the same file)", NULL, ready));
  /**
   * GstLfm2GenElement:system-prompt:
   *
   * The system turn. It is prefilled once and its caches are reused for every request;
   * changing it while playing prefills the new one before the next request.
   */
  g_object_class_install_property (oc, first + PROP_SYSTEM_PROMPT,
      g_param_spec_string ("system-prompt", "System prompt", d->speech ?
          "System turn, prefilled once and reused for every request (NULL = the mode's, "
          "for TTS the voice's)" :
          "System turn, prefilled once and reused for every request (NULL = none)",
          d->system_prompt, playing));
  /**
   * GstLfm2GenElement:max-tokens:
   *
   * The most tokens generated per request; 0 generates until the model ends its turn or
   * the context is full.
   */
  g_object_class_install_property (oc, first + PROP_MAX_TOKENS,
      g_param_spec_int ("max-tokens", "Max tokens", d->speech ?
          "Most text tokens + audio frames (80 ms each) generated per turn (0 = until the "
          "model ends its turn or the context is full)" :
          "Most tokens generated per request (0 = until the model ends its turn or the "
          "context is full)", 0, G_MAXINT, d->max_tokens, playing));
  /**
   * GstLfm2GenElement:temperature:
   *
   * Sampling temperature; 0 picks the most likely token (greedy).
   */
  g_object_class_install_property (oc, first + PROP_TEMPERATURE,
      g_param_spec_float ("temperature", "Temperature", "Sampling temperature (0 = greedy)",
          0.0f, 100.0f, d->temperature, playing));
  /**
   * GstLfm2GenElement:top-k:
   *
   * Sample among the k most likely tokens only; 0 turns the filter off.
   */
  g_object_class_install_property (oc, first + PROP_TOP_K,
      g_param_spec_int ("top-k", "Top-k", "Keep the k most likely tokens (0 = off)", 0,
          G_MAXINT, d->top_k, playing));
  /**
   * GstLfm2GenElement:seed:
   *
   * The sampler restarts from this seed for every request, so equal inputs give equal
   * outputs; 4294967295 draws a new random seed for every request, as llama.cpp does.
   */
  g_object_class_install_property (oc, first + PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed",
          "Sampler seed; the sampler restarts from it for every request, so equal inputs "
          "give equal outputs (4294967295 = a new random seed every request, as llama.cpp)",
          0, G_MAXUINT64, 0, playing));
  /* The audio head of speech output samples with temperature and top-k only. */
  if (!d->speech) {
    /**
     * GstLfm2GenElement:top-p:
     *
     * Nucleus sampling: the most likely tokens whose probabilities add up to top-p.
     */
    g_object_class_install_property (oc, first + PROP_TOP_P,
        g_param_spec_float ("top-p", "Top-p", "Nucleus sampling mass (1 = off)", 0.0f, 1.0f,
            1.0f, playing));
    /**
     * GstLfm2GenElement:min-p:
     *
     * Drops the tokens less likely than min-p times the most likely one.
     */
    g_object_class_install_property (oc, first + PROP_MIN_P,
        g_param_spec_float ("min-p", "Min-p",
            "Drop tokens less likely than min-p × the most likely one (0 = off)", 0.0f, 1.0f,
            0.15f, playing));
    /**
     * GstLfm2GenElement:repeat-penalty:
     *
     * Penalty on the tokens of the prompt and the text generated so far, over the last 64
     * tokens, as llama.cpp applies it.
     */
    g_object_class_install_property (oc, first + PROP_REPEAT_PENALTY,
        g_param_spec_float ("repeat-penalty", "Repeat penalty",
            "Penalty on tokens seen in the prompt and the text generated so far, over the last "
            "64 tokens (1 = off)", 0.0f, 10.0f, 1.05f, playing));
  }
  /**
   * GstLfm2GenElement:n-threads:
   *
   * Worker threads of this element's inference (its context, and its encoder if it has
   * one); 0 uses one per core.
   */
  g_object_class_install_property (oc, first + PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Worker threads of this element's inference (0 = one per core)", 0, 1024, 0,
          ready));
  /**
   * GstLfm2GenElement:context-length:
   *
   * Positions of this element's context: the system turn, the prompt (with any media rows)
   * and the generated text. 0 uses the smaller of the training context and 4096.
   */
  g_object_class_install_property (oc, first + PROP_CONTEXT_LENGTH,
      g_param_spec_int ("context-length", "Context length",
          "Positions of the context: system turn + prompt (with media rows) + generated "
          "text (0 = min(training context, 4096))", 0, G_MAXINT, 0, ready));
}

gboolean
gst_lfm2_gen_element_set_property (GstLfm2GenElement * self, guint prop_id,
    const GValue * value)
{
  GstLfm2GenSettings *s = &self->settings;

  if (prop_id < GST_LFM2_GEN_PROP_FIRST || prop_id >= GST_LFM2_GEN_PROP_FIRST + N_PROPS)
    return FALSE;
  GST_OBJECT_LOCK (self);
  switch (prop_id - GST_LFM2_GEN_PROP_FIRST) {
    case PROP_MODEL:
      g_free (s->model);
      s->model = g_value_dup_string (value);
      break;
    case PROP_SYSTEM_PROMPT:
      g_free (s->system_prompt);
      s->system_prompt = g_value_dup_string (value);
      self->dirty |= DIRTY_SYSTEM;
      break;
    case PROP_MAX_TOKENS:
      s->max_tokens = g_value_get_int (value);
      self->dirty |= DIRTY_MAX_TOKENS;
      break;
    case PROP_TEMPERATURE:
      s->sampling.temperature = g_value_get_float (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_TOP_K:
      s->sampling.top_k = g_value_get_int (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_TOP_P:
      s->sampling.top_p = g_value_get_float (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_MIN_P:
      s->sampling.min_p = g_value_get_float (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_REPEAT_PENALTY:
      s->sampling.repeat_penalty = g_value_get_float (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_SEED:
      s->sampling.seed = g_value_get_uint64 (value);
      self->dirty |= DIRTY_SAMPLING;
      break;
    case PROP_N_THREADS:
      s->n_threads = g_value_get_int (value);
      break;
    case PROP_CONTEXT_LENGTH:
      s->context_length = g_value_get_int (value);
      break;
  }
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

gboolean
gst_lfm2_gen_element_get_property (GstLfm2GenElement * self, guint prop_id, GValue * value)
{
  const GstLfm2GenSettings *s = &self->settings;

  if (prop_id < GST_LFM2_GEN_PROP_FIRST || prop_id >= GST_LFM2_GEN_PROP_FIRST + N_PROPS)
    return FALSE;
  GST_OBJECT_LOCK (self);
  switch (prop_id - GST_LFM2_GEN_PROP_FIRST) {
    case PROP_MODEL:
      g_value_set_string (value, s->model);
      break;
    case PROP_SYSTEM_PROMPT:
      g_value_set_string (value, s->system_prompt);
      break;
    case PROP_MAX_TOKENS:
      g_value_set_int (value, s->max_tokens);
      break;
    case PROP_TEMPERATURE:
      g_value_set_float (value, s->sampling.temperature);
      break;
    case PROP_TOP_K:
      g_value_set_int (value, s->sampling.top_k);
      break;
    case PROP_TOP_P:
      g_value_set_float (value, s->sampling.top_p);
      break;
    case PROP_MIN_P:
      g_value_set_float (value, s->sampling.min_p);
      break;
    case PROP_REPEAT_PENALTY:
      g_value_set_float (value, s->sampling.repeat_penalty);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, s->sampling.seed);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, s->n_threads);
      break;
    case PROP_CONTEXT_LENGTH:
      g_value_set_int (value, s->context_length);
      break;
  }
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

void
gst_lfm2_gen_element_get_model_info (GstLfm2GenElement * self, gint * n_embd, gint * n_vocab,
    gchar ** model_id)
{
  GST_OBJECT_LOCK (self);
  if (n_embd)
    *n_embd = self->n_embd;
  if (n_vocab)
    *n_vocab = self->n_vocab;
  if (model_id)
    *model_id = g_strdup (self->model_id);
  GST_OBJECT_UNLOCK (self);
}

/* ---- READY↔PAUSED ----------------------------------------------------------------- */

static void
gst_lfm2_gen_element_stop (GstLfm2GenElement * self)
{
  GstLfm2GenElementClass *klass = GST_LFM2_GEN_ELEMENT_GET_CLASS (self);

  if (self->started && klass->stop)
    klass->stop (self);
  self->started = FALSE;
  gst_lfm2_gen_free (self->gen);
  self->gen = NULL;
  gst_lfm2_shared_release (self->shared);
  self->shared = NULL;
  GST_OBJECT_LOCK (self);
  self->n_embd = self->n_vocab = 0;
  g_clear_pointer (&self->model_id, g_free);
  GST_OBJECT_UNLOCK (self);
}

/* The model from the registry, the subclass's start(), this element's generator with the
 * system turn prefilled. Errors are posted naming the file. */
static gboolean
gst_lfm2_gen_element_start (GstLfm2GenElement * self)
{
  GstLfm2GenElementClass *klass = GST_LFM2_GEN_ELEMENT_GET_CLASS (self);
  GstLfm2GenParams params;
  GError *err = NULL;
  gchar *path, *system;
  const lfm2_model *model;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->settings.model);
  system = g_strdup (self->settings.system_prompt);
  gst_lfm2_gen_params_init (&params);
  params.n_ctx = self->settings.context_length;
  params.n_threads = self->settings.n_threads;
  params.max_tokens = self->settings.max_tokens;
  params.sampling = self->settings.sampling;
  self->dirty = 0;
  GST_OBJECT_UNLOCK (self);

  self->shared = gst_lfm2_model_acquire (path, &err);
  if (self->shared == NULL) {
    gchar *dbg = g_strdup_printf ("model property: %s", path ? path : "(null)");
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
    g_free (dbg);
    goto fail;
  }
  model = gst_lfm2_shared_model (self->shared);
  GST_INFO_OBJECT (self, "model %s (%s), %u users", gst_lfm2_shared_path (self->shared),
      lfm2_model_desc (model), gst_lfm2_shared_n_users (self->shared));

  self->started = TRUE;
  if (klass->start && !klass->start (self, model, &params))
    goto fail;

  /* speech output: lfm2_tts has its own context (made by start()) */
  if (!klass->defaults.speech) {
    self->gen = gst_lfm2_gen_new (model, &params, &err);
    if (self->gen == NULL || !gst_lfm2_gen_set_system_prompt (self->gen, system, &err)) {
      GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, path);
      goto fail;
    }
  }

  GST_OBJECT_LOCK (self);
  self->n_embd = lfm2_model_get_hparams (model)->n_embd;
  self->n_vocab = lfm2_model_n_vocab (model);
  g_free (self->model_id);
  self->model_id = g_strdup (lfm2_model_id (model));
  GST_OBJECT_UNLOCK (self);
  g_free (path);
  g_free (system);
  return TRUE;

fail:
  g_clear_error (&err);
  gst_lfm2_gen_element_stop (self);
  g_free (path);
  g_free (system);
  return FALSE;
}

static GstStateChangeReturn
gst_lfm2_gen_element_change_state (GstElement * element, GstStateChange transition)
{
  GstLfm2GenElement *self = GST_LFM2_GEN_ELEMENT (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      g_atomic_int_set (&self->cancel, 0);
      if (!gst_lfm2_gen_element_start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Stop a running request so pad deactivation gets the stream lock quickly. */
      g_atomic_int_set (&self->cancel, 1);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (gst_lfm2_gen_element_parent_class)->change_state (element,
      transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
      gst_lfm2_gen_element_stop (self);
    return ret;
  }
  /* The pads are inactive now: no thread generates any more. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    gst_lfm2_gen_element_stop (self);
  return ret;
}

/* ---- requests --------------------------------------------------------------------- */

gboolean
gst_lfm2_gen_element_apply_settings (GstLfm2GenElement * self)
{
  guint dirty;
  gchar *system = NULL;
  struct lfm2_sampler_params sp;
  gint max_tokens;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  dirty = self->dirty;
  self->dirty = 0;
  if (dirty & DIRTY_SYSTEM)
    system = g_strdup (self->settings.system_prompt);
  sp = self->settings.sampling;
  max_tokens = self->settings.max_tokens;
  GST_OBJECT_UNLOCK (self);

  if (dirty == 0)
    return TRUE;
  if (dirty & DIRTY_SAMPLING)
    gst_lfm2_gen_set_sampling (self->gen, &sp);
  if (dirty & DIRTY_MAX_TOKENS)
    gst_lfm2_gen_set_max_tokens (self->gen, max_tokens);
  if (dirty & DIRTY_SYSTEM) {
    gboolean ok = gst_lfm2_gen_set_system_prompt (self->gen, system, &err);

    g_free (system);
    if (!ok) {
      GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, "system-prompt");
      g_clear_error (&err);
      return FALSE;
    }
  }
  return TRUE;
}

GstFlowReturn
gst_lfm2_gen_element_generate (GstLfm2GenElement * self, const gchar * user_text,
    const GstLfm2GenMedia * media, guint n_media, GString * out, GstLfm2GenStats * stats,
    GError ** dropped)
{
  return gst_lfm2_gen_element_generate_full (self, user_text, media, n_media, NULL, NULL, out,
      stats, dropped);
}

GstFlowReturn
gst_lfm2_gen_element_generate_full (GstLfm2GenElement * self, const gchar * user_text,
    const GstLfm2GenMedia * media, guint n_media, GstLfm2GenPieceFunc on_piece,
    gpointer user_data, GString * out, GstLfm2GenStats * stats, GError ** dropped)
{
  GstLfm2GenStats st = { 0 };
  GError *err = NULL;

  if (!gst_lfm2_gen_run (self->gen, user_text, media, n_media, on_piece, user_data,
          &self->cancel, out, &st, &err)) {
    if (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT)) {
      /* One input too long for the context should not end the stream. */
      g_propagate_error (dropped, err);
      return GST_LFM2_GEN_FLOW_DROPPED;
    }
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  if (stats)
    *stats = st;
  /* cancelled by the element's flag (flushing, PAUSED→READY), not by on_piece */
  if (st.stop == GST_LFM2_GEN_STOP_CANCELLED && g_atomic_int_get (&self->cancel))
    return GST_FLOW_FLUSHING;
  return GST_FLOW_OK;
}

/* ---- text output ------------------------------------------------------------------ */

void
gst_lfm2_gen_element_one_line (GString * s)
{
  gsize j = 0;
  gboolean space = TRUE;        /* drops leading white space */

  for (gsize i = 0; i < s->len; i++) {
    gchar c = s->str[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      if (!space)
        s->str[j++] = ' ';
      space = TRUE;
    } else {
      s->str[j++] = c;
      space = FALSE;
    }
  }
  if (j > 0 && s->str[j - 1] == ' ')
    j--;
  g_string_truncate (s, j);
}

/* ---- the text pad of a live generating element ------------------------------------- */

void
gst_lfm2_text_pad_init (GstLfm2TextPad * t, GstPad * pad)
{
  t->pad = pad;
  gst_lfm2_text_pad_reset (t);
}

void
gst_lfm2_text_pad_reset (GstLfm2TextPad * t)
{
  t->pos = GST_CLOCK_TIME_NONE;
  t->segment_sent = FALSE;
}

void
gst_lfm2_text_pad_ensure_events (GstLfm2TextPad * t, GstElement * element)
{
  if (!gst_pad_has_current_caps (t->pad)) {
    GstCaps *caps = gst_pad_get_pad_template_caps (t->pad);
    GstEvent *ss = gst_pad_get_sticky_event (t->pad, GST_EVENT_STREAM_START, 0);

    if (ss == NULL) {
      gchar *id = gst_pad_create_stream_id (t->pad, element, "text");
      gst_pad_push_event (t->pad, gst_event_new_stream_start (id));
      g_free (id);
    } else {
      gst_event_unref (ss);
    }
    gst_pad_push_event (t->pad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
  }
  if (!t->segment_sent) {
    GstSegment seg;

    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (t->pad, gst_event_new_segment (&seg));
    t->segment_sent = TRUE;
  }
}

void
gst_lfm2_text_pad_push_gap (GstLfm2TextPad * t, GstElement * element, GstClockTime start,
    GstClockTime end)
{
  if (!GST_CLOCK_TIME_IS_VALID (start)
      || (GST_CLOCK_TIME_IS_VALID (t->pos) && start < t->pos))
    start = t->pos;
  if (!GST_CLOCK_TIME_IS_VALID (start))
    start = 0;
  if (!GST_CLOCK_TIME_IS_VALID (end) || end <= start)
    return;
  gst_lfm2_text_pad_ensure_events (t, element);
  GST_LOG_OBJECT (element, "gap %" GST_TIME_FORMAT " – %" GST_TIME_FORMAT,
      GST_TIME_ARGS (start), GST_TIME_ARGS (end));
  gst_pad_push_event (t->pad, gst_event_new_gap (start, end - start));
  t->pos = end;
}

gboolean
gst_lfm2_text_pad_push_event (GstLfm2TextPad * t, GstElement * element, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:{
      GstCaps *caps = gst_pad_get_pad_template_caps (t->pad);
      gboolean ok = gst_pad_push_event (t->pad, event);

      gst_pad_push_event (t->pad, gst_event_new_caps (caps));
      gst_caps_unref (caps);
      gst_lfm2_text_pad_reset (t);
      return ok;
    }
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;

      gst_event_parse_segment (event, &seg);
      t->segment_sent = TRUE;   /* this one is the segment */
      gst_lfm2_text_pad_ensure_events (t, element);
      t->pos = seg->format == GST_FORMAT_TIME ? seg->start : GST_CLOCK_TIME_NONE;
      return gst_pad_push_event (t->pad, event);
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;

      gst_event_parse_gap (event, &ts, &dur);
      gst_lfm2_text_pad_push_gap (t, element, ts, GST_CLOCK_TIME_IS_VALID (dur) ? ts + dur : ts);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_EOS:
      gst_lfm2_text_pad_ensure_events (t, element);
      GST_DEBUG_OBJECT (element, "text EOS");
      return gst_pad_push_event (t->pad, event);
    default:
      return gst_pad_push_event (t->pad, event);
  }
}

GstFlowReturn
gst_lfm2_text_pad_push_text (GstLfm2TextPad * t, GstElement * element, const gchar * text,
    gsize len, GstClockTime pts, GstClockTime duration)
{
  GstBuffer *out;

  gst_lfm2_text_pad_ensure_events (t, element);
  if (len == 0) {
    /* the model said nothing: the text stream still moves on */
    if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration))
      gst_lfm2_text_pad_push_gap (t, element, pts, pts + duration);
    return GST_FLOW_OK;
  }
  out = gst_buffer_new_memdup (text, len);
  GST_BUFFER_PTS (out) = pts;
  GST_BUFFER_DURATION (out) = duration;
  if (GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration))
    t->pos = pts + duration;
  return gst_pad_push (t->pad, out);
}

gboolean
gst_lfm2_text_pad_query_latency (GstObject * element, GstPad * sinkpad, GstQuery * query,
    guint latency_ms)
{
  gboolean live;
  GstClockTime min, max;

  if (!gst_pad_peer_query (sinkpad, query))
    return FALSE;
  gst_query_parse_latency (query, &live, &min, &max);
  min += (GstClockTime) latency_ms * GST_MSECOND;
  gst_query_set_latency (query, live, min, GST_CLOCK_TIME_NONE);
  GST_DEBUG_OBJECT (element, "text latency: live %d, min %" GST_TIME_FORMAT, live,
      GST_TIME_ARGS (min));
  return TRUE;
}

GstClockTime
gst_lfm2_gen_element_behind_clock (GstLfm2GenElement * self, GstClockTime rt)
{
  GstClock *clock;
  GstClockTime now, base, delay = GST_CLOCK_TIME_NONE;

  if (!GST_CLOCK_TIME_IS_VALID (rt) || GST_STATE (self) != GST_STATE_PLAYING)
    return GST_CLOCK_TIME_NONE;
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  now = gst_clock_get_time (clock);
  base = gst_element_get_base_time (GST_ELEMENT (self));
  gst_object_unref (clock);
  if (now >= base && now - base >= rt)
    delay = now - base - rt;
  return delay;
}

gboolean
gst_lfm2_gen_element_worker_flow (GstLfm2GenElement * self, GstFlowReturn ret,
    GstFlowReturn posted)
{
  switch (ret) {
    case GST_FLOW_OK:
    case GST_FLOW_NOT_LINKED:
    case GST_FLOW_EOS:
      return TRUE;
    case GST_FLOW_FLUSHING:
      GST_DEBUG_OBJECT (self, "flushing");
      return FALSE;
    default:
      if (ret == posted)
        GST_DEBUG_OBJECT (self, "stopped by an error");
      else if (ret <= GST_FLOW_NOT_NEGOTIATED)
        GST_ELEMENT_FLOW_ERROR (self, ret);
      return FALSE;
  }
}
