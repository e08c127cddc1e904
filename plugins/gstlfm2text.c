/* gstlfm2text.c — lfm2text: runs an LFM2 text model on every input.
 *
 * SECTION:element-lfm2text
 *
 * Text in (`text/x-raw, format=utf8`), generated text out, one output buffer per input with
 * the input's timestamps. The input goes into the user turn of the LFM2 chat layout through
 * `prompt-template` ("{text}" is replaced by the input). The system turn (`system-prompt`) is
 * prefilled once and reused for every input. After each input the element posts an element
 * message `lfm2text/result` {text, prompt-tokens, cached-tokens, generated-tokens,
 * inference-ms, prefill-ms, stop-reason, timestamp}.
 *
 * The sink pad also accepts `other/tensors` from an encoder element (lfm2vlenc, an audio
 * encoder): embedding rows and their token layout are spliced into the user turn (where the
 * template has `<__media__>`, else first) — see docs/tensor-caps.md.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.txt ! text/x-raw,format=utf8 ! \
 *     lfm2text model=lfm2.gguf input-mode=lines prompt-template="Translate to French: {text}" ! \
 *     filesink location=out.txt
 * ]|
 *
 * Generation runs in the streaming thread; put a queue in front when upstream must not wait.
 */
#include "gstlfm2text.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_text_debug);
#define GST_CAT_DEFAULT gst_lfm2_text_debug

#define DEFAULT_MODEL NULL
#define DEFAULT_SYSTEM_PROMPT NULL
#define DEFAULT_PROMPT_TEMPLATE "{text}"
#define DEFAULT_MAX_TOKENS 256
/* LFM2's recommended generation settings (Liquid AI model cards). */
#define DEFAULT_TEMPERATURE 0.3f
#define DEFAULT_N_THREADS 0
#define DEFAULT_CONTEXT_LENGTH 0
#define DEFAULT_CHAT TRUE
#define DEFAULT_INPUT_MODE GST_LFM2_TEXT_INPUT_BUFFER

/* The sampler defaults of this element: the model card's (temperature above). */
static struct lfm2_sampler_params
default_sampling (void)
{
  return gst_lfm2_sampling_defaults (DEFAULT_TEMPERATURE);
}

#define TEXT_PLACEHOLDER "{text}"
/* Line mode: a "line" this long without a newline is dropped. */
#define MAX_LINE_BYTES (1 << 20)

enum {
  PROP_0,
  PROP_MODEL,
  PROP_SYSTEM_PROMPT,
  PROP_PROMPT_TEMPLATE,
  PROP_MAX_TOKENS,
  PROP_SAMPLING_FIRST,          /* temperature … seed (gst_lfm2_sampling_install_properties) */
  PROP_SAMPLING_LAST = PROP_SAMPLING_FIRST + GST_LFM2_SAMPLING_N_PROPS - 1,
  PROP_N_THREADS,
  PROP_CONTEXT_LENGTH,
  PROP_CHAT,
  PROP_INPUT_MODE,
};

/* What changed since the streaming thread last looked (settings applied between inputs). */
enum {
  DIRTY_SYSTEM = 1 << 0,
  DIRTY_TEMPLATE = 1 << 1,
  DIRTY_SAMPLING = 1 << 2,
  DIRTY_MAX_TOKENS = 1 << 3,
  DIRTY_CHAT = 1 << 4,
  DIRTY_ALL = 0x1f,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("text/x-raw, format = (string) utf8; "
        GST_LFM2_TENSORS_CAPS_STATIC "; " GST_LFM2_TENSORS_CAPS_FLEXIBLE));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

G_DEFINE_TYPE (GstLfm2Text, gst_lfm2_text, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2text, "lfm2text", GST_RANK_NONE,
    GST_TYPE_LFM2_TEXT,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_text_debug, "lfm2text", 0, "LFM2 text generation"));

GType
gst_lfm2_text_input_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_TEXT_INPUT_BUFFER, "Every input buffer is one prompt", "buffer"},
    {GST_LFM2_TEXT_INPUT_LINES,
        "Every line is one prompt (split across buffers); one output line per input line",
        "lines"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2TextInputMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static void gst_lfm2_text_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_text_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_text_finalize (GObject * object);
static GstStateChangeReturn gst_lfm2_text_change_state (GstElement * element,
    GstStateChange transition);
static GstFlowReturn gst_lfm2_text_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buf);
static gboolean gst_lfm2_text_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static gboolean gst_lfm2_text_sink_query (GstPad * pad, GstObject * parent,
    GstQuery * query);

static void
gst_lfm2_text_class_init (GstLfm2TextClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_text_set_property;
  gobject_class->get_property = gst_lfm2_text_get_property;
  gobject_class->finalize = gst_lfm2_text_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the LFM2 GGUF model (loaded on READY→PAUSED, shared with other elements "
          "naming the same file)", DEFAULT_MODEL, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SYSTEM_PROMPT,
      g_param_spec_string ("system-prompt", "System prompt",
          "System turn, prefilled once and reused for every input (NULL = none)",
          DEFAULT_SYSTEM_PROMPT, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PROMPT_TEMPLATE,
      g_param_spec_string ("prompt-template", "Prompt template",
          "User turn; \"{text}\" is replaced by the input (appended on a new line if absent), "
          "\"<__media__>\" marks where encoder embeddings go",
          DEFAULT_PROMPT_TEMPLATE, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_TOKENS,
      g_param_spec_int ("max-tokens", "Max tokens",
          "Most tokens generated per input (0 = until the model ends its turn or the "
          "context is full)", 0, G_MAXINT, DEFAULT_MAX_TOKENS,
          rw | GST_PARAM_MUTABLE_PLAYING));
  {
    const struct lfm2_sampler_params d = default_sampling ();
    gst_lfm2_sampling_install_properties (gobject_class, PROP_SAMPLING_FIRST, &d);
  }
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "Worker threads of this element's context (0 = one per core)", 0, 1024,
          DEFAULT_N_THREADS, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CONTEXT_LENGTH,
      g_param_spec_int ("context-length", "Context length",
          "Positions of the context: system turn + prompt + generated text "
          "(0 = min(training context, 4096))", 0, G_MAXINT, DEFAULT_CONTEXT_LENGTH,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CHAT,
      g_param_spec_boolean ("chat", "Chat",
          "Wrap system prompt and input in the LFM2 chat layout (FALSE: raw text "
          "completion of system-prompt + input)", DEFAULT_CHAT,
          rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_INPUT_MODE,
      g_param_spec_enum ("input-mode", "Input mode",
          "What makes one prompt: a buffer, or a line (output lines then match input lines)",
          GST_TYPE_LFM2_TEXT_INPUT_MODE, DEFAULT_INPUT_MODE,
          rw | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2 text generation", "Filter/Converter/Text",
      "Generates text with a Liquid AI LFM2 model from text prompts or encoder embeddings",
      "lfm2-gst developers");
  element_class->change_state = GST_DEBUG_FUNCPTR (gst_lfm2_text_change_state);

  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_TEXT_INPUT_MODE, 0);
}

static void
gst_lfm2_text_init (GstLfm2Text * self)
{
  GstLfm2TextSettings *s = &self->settings;

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  s->model = g_strdup (DEFAULT_MODEL);
  s->system_prompt = g_strdup (DEFAULT_SYSTEM_PROMPT);
  s->prompt_template = g_strdup (DEFAULT_PROMPT_TEMPLATE);
  s->max_tokens = DEFAULT_MAX_TOKENS;
  s->sampling = default_sampling ();
  s->n_threads = DEFAULT_N_THREADS;
  s->context_length = DEFAULT_CONTEXT_LENGTH;
  s->chat = DEFAULT_CHAT;
  s->input_mode = DEFAULT_INPUT_MODE;
  self->dirty = DIRTY_ALL;

  self->pending = g_string_sized_new (256);
  self->user = g_string_sized_new (1024);
  self->result = g_string_sized_new (1024);
  self->pending_pts = GST_CLOCK_TIME_NONE;
}

static void
gst_lfm2_text_finalize (GObject * object)
{
  GstLfm2Text *self = GST_LFM2_TEXT (object);

  g_free (self->settings.model);
  g_free (self->settings.system_prompt);
  g_free (self->settings.prompt_template);
  g_free (self->template_copy);
  g_free (self->model_id);
  g_string_free (self->pending, TRUE);
  g_string_free (self->user, TRUE);
  g_string_free (self->result, TRUE);
  /* READY→NULL already released these; an element disposed in PAUSED did not. */
  gst_lfm2_gen_free (self->gen);
  gst_lfm2_shared_release (self->shared);

  G_OBJECT_CLASS (gst_lfm2_text_parent_class)->finalize (object);
}

static void
gst_lfm2_text_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Text *self = GST_LFM2_TEXT (object);
  GstLfm2TextSettings *s = &self->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (s->model);
      s->model = g_value_dup_string (value);
      break;
    case PROP_SYSTEM_PROMPT:
      g_free (s->system_prompt);
      s->system_prompt = g_value_dup_string (value);
      self->dirty |= DIRTY_SYSTEM;
      break;
    case PROP_PROMPT_TEMPLATE:
      g_free (s->prompt_template);
      s->prompt_template = g_value_dup_string (value);
      self->dirty |= DIRTY_TEMPLATE;
      break;
    case PROP_MAX_TOKENS:
      s->max_tokens = g_value_get_int (value);
      self->dirty |= DIRTY_MAX_TOKENS;
      break;
    case PROP_N_THREADS:
      s->n_threads = g_value_get_int (value);
      break;
    case PROP_CONTEXT_LENGTH:
      s->context_length = g_value_get_int (value);
      break;
    case PROP_CHAT:
      s->chat = g_value_get_boolean (value);
      self->dirty |= DIRTY_CHAT;
      break;
    case PROP_INPUT_MODE:
      s->input_mode = g_value_get_enum (value);
      break;
    default:
      if (gst_lfm2_sampling_set_property (&s->sampling, PROP_SAMPLING_FIRST, prop_id, value))
        self->dirty |= DIRTY_SAMPLING;
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lfm2_text_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Text *self = GST_LFM2_TEXT (object);
  GstLfm2TextSettings *s = &self->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, s->model);
      break;
    case PROP_SYSTEM_PROMPT:
      g_value_set_string (value, s->system_prompt);
      break;
    case PROP_PROMPT_TEMPLATE:
      g_value_set_string (value, s->prompt_template);
      break;
    case PROP_MAX_TOKENS:
      g_value_set_int (value, s->max_tokens);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, s->n_threads);
      break;
    case PROP_CONTEXT_LENGTH:
      g_value_set_int (value, s->context_length);
      break;
    case PROP_CHAT:
      g_value_set_boolean (value, s->chat);
      break;
    case PROP_INPUT_MODE:
      g_value_set_enum (value, s->input_mode);
      break;
    default:
      if (!gst_lfm2_sampling_get_property (&s->sampling, PROP_SAMPLING_FIRST, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* Call with the object lock held. */
static struct lfm2_sampler_params
sampler_params_locked (GstLfm2Text * self)
{
  return self->settings.sampling;
}

/* Posts an error from a GError (keeps its domain and code). */
static void
post_gerror (GstLfm2Text * self, GstMessageType type, const GError * err,
    const gchar * debug)
{
  gst_element_message_full (GST_ELEMENT (self), type, err->domain, err->code,
      g_strdup (err->message), g_strdup (debug), __FILE__, GST_FUNCTION, __LINE__);
}

/* READY→PAUSED: take the model from the registry, make this element's context, prefill the
 * system turn. */
static gboolean
gst_lfm2_text_start (GstLfm2Text * self)
{
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
  params.chat = self->settings.chat;
  params.sampling = sampler_params_locked (self);
  self->line_mode = self->settings.input_mode == GST_LFM2_TEXT_INPUT_LINES;
  g_free (self->template_copy);
  self->template_copy = g_strdup (self->settings.prompt_template);
  self->dirty = 0;
  GST_OBJECT_UNLOCK (self);

  self->shared = gst_lfm2_model_acquire (path, &err);
  if (self->shared == NULL) {
    gchar *dbg = g_strdup_printf ("model property: %s", path ? path : "(null)");
    post_gerror (self, GST_MESSAGE_ERROR, err, dbg);
    g_free (dbg);
    goto fail;
  }
  model = gst_lfm2_shared_model (self->shared);
  GST_INFO_OBJECT (self, "model %s (%s), %u users", gst_lfm2_shared_path (self->shared),
      lfm2_model_desc (model), gst_lfm2_shared_n_users (self->shared));

  self->gen = gst_lfm2_gen_new (model, &params, &err);
  if (self->gen == NULL || !gst_lfm2_gen_set_system_prompt (self->gen, system, &err)) {
    post_gerror (self, GST_MESSAGE_ERROR, err, path);
    goto fail;
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
  gst_lfm2_gen_free (self->gen);
  self->gen = NULL;
  gst_lfm2_shared_release (self->shared);
  self->shared = NULL;
  g_free (path);
  g_free (system);
  return FALSE;
}

static void
gst_lfm2_text_stop (GstLfm2Text * self)
{
  gst_lfm2_gen_free (self->gen);
  self->gen = NULL;
  gst_lfm2_shared_release (self->shared);
  self->shared = NULL;
  GST_OBJECT_LOCK (self);
  self->n_embd = self->n_vocab = 0;
  g_clear_pointer (&self->model_id, g_free);
  GST_OBJECT_UNLOCK (self);
  g_string_truncate (self->pending, 0);
  self->tensor_input = FALSE;
}

static GstStateChangeReturn
gst_lfm2_text_change_state (GstElement * element, GstStateChange transition)
{
  GstLfm2Text *self = GST_LFM2_TEXT (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      g_atomic_int_set (&self->flushing, 0);
      if (!gst_lfm2_text_start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Stop a running generation so pad deactivation gets the stream lock quickly. */
      g_atomic_int_set (&self->flushing, 1);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (gst_lfm2_text_parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
      gst_lfm2_text_stop (self);
    return ret;
  }

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    gst_lfm2_text_stop (self);
  return ret;
}

/* Applies settings changed while playing (between inputs; allocation only on a change). */
static gboolean
apply_settings (GstLfm2Text * self)
{
  guint dirty;
  gchar *system = NULL;
  struct lfm2_sampler_params sp;
  gint max_tokens;
  gboolean chat;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  dirty = self->dirty;
  self->dirty = 0;
  if (dirty == 0) {
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  if (dirty & DIRTY_TEMPLATE) {
    g_free (self->template_copy);
    self->template_copy = g_strdup (self->settings.prompt_template);
  }
  if (dirty & DIRTY_SYSTEM)
    system = g_strdup (self->settings.system_prompt);
  sp = sampler_params_locked (self);
  max_tokens = self->settings.max_tokens;
  chat = self->settings.chat;
  GST_OBJECT_UNLOCK (self);

  if (dirty & DIRTY_SAMPLING)
    gst_lfm2_gen_set_sampling (self->gen, &sp);
  if (dirty & DIRTY_MAX_TOKENS)
    gst_lfm2_gen_set_max_tokens (self->gen, max_tokens);
  if (dirty & DIRTY_CHAT)
    gst_lfm2_gen_set_chat (self->gen, chat);
  if (dirty & DIRTY_SYSTEM) {
    gboolean ok = gst_lfm2_gen_set_system_prompt (self->gen, system, &err);
    g_free (system);
    if (!ok) {
      post_gerror (self, GST_MESSAGE_ERROR, err, "system-prompt");
      g_clear_error (&err);
      return FALSE;
    }
  }
  return TRUE;
}

/* The user turn: the template with {text} replaced (input appended if there is no {text}). */
static void
build_user_text (GstLfm2Text * self, const gchar * text, gsize len)
{
  const gchar *tpl = self->template_copy ? self->template_copy : "";
  const gchar *p = tpl, *q;
  gboolean placed = FALSE;

  g_string_truncate (self->user, 0);
  while ((q = strstr (p, TEXT_PLACEHOLDER)) != NULL) {
    g_string_append_len (self->user, p, q - p);
    g_string_append_len (self->user, text, len);
    p = q + strlen (TEXT_PLACEHOLDER);
    placed = TRUE;
  }
  g_string_append (self->user, p);
  if (!placed && len > 0) {
    if (self->user->len > 0)
      g_string_append_c (self->user, '\n');
    g_string_append_len (self->user, text, len);
  }
}

/* Runs one request and pushes its output with the given timestamps. */
static GstFlowReturn
generate_and_push (GstLfm2Text * self, const GstLfm2GenMedia * media, guint n_media,
    GstBuffer * timing, GstClockTime pts)
{
  GstLfm2GenStats stats;
  GError *err = NULL;
  GstBuffer *out;
  GstStructure *s;

  g_string_truncate (self->result, 0);
  if (!gst_lfm2_gen_run (self->gen, self->user->str, media, n_media, NULL, NULL,
          &self->flushing, self->result, &stats, &err)) {
    if (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT)) {
      /* One overlong input should not end the stream: warn and drop it. */
      post_gerror (self, GST_MESSAGE_WARNING, err, "input dropped; raise context-length");
      g_clear_error (&err);
      return GST_FLOW_OK;
    }
    post_gerror (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  if (stats.stop == GST_LFM2_GEN_STOP_CANCELLED)
    return GST_FLOW_FLUSHING;

  s = gst_structure_new ("lfm2text/result",
      "text", G_TYPE_STRING, self->result->str,
      "prompt-tokens", G_TYPE_INT, stats.prompt_tokens,
      "cached-tokens", G_TYPE_INT, stats.cached_tokens,
      "media-rows", G_TYPE_INT, stats.media_rows,
      "generated-tokens", G_TYPE_INT, stats.generated_tokens,
      "inference-ms", G_TYPE_DOUBLE, stats.total_ms,
      "prefill-ms", G_TYPE_DOUBLE, stats.prefill_ms,
      "stop-reason", G_TYPE_STRING, gst_lfm2_gen_stop_to_string (stats.stop),
      "timestamp", G_TYPE_UINT64, (guint64) pts, NULL);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));

  if (self->line_mode) {
    /* One line out per line in: newlines inside the answer become spaces. */
    for (gsize i = 0; i < self->result->len; i++)
      if (self->result->str[i] == '\n' || self->result->str[i] == '\r')
        self->result->str[i] = ' ';
    g_string_append_c (self->result, '\n');
  }

  if (self->result->len == 0) {
    /* Nothing to say: keep downstream's clock moving (text is a sparse stream). */
    GstClockTime dur = timing ? GST_BUFFER_DURATION (timing) : GST_CLOCK_TIME_NONE;
    if (GST_CLOCK_TIME_IS_VALID (pts))
      gst_pad_push_event (self->srcpad, gst_event_new_gap (pts, dur));
    return GST_FLOW_OK;
  }

  out = gst_buffer_new_memdup (self->result->str, self->result->len);
  if (timing)
    gst_buffer_copy_into (out, timing, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  else
    GST_BUFFER_PTS (out) = pts;
  return gst_pad_push (self->srcpad, out);
}

static GstFlowReturn
process_text (GstLfm2Text * self, const gchar * text, gsize len, GstBuffer * timing,
    GstClockTime pts)
{
  const gchar *end;

  /* Drop trailing whitespace (a line's "\r", a file's final newline). */
  while (len > 0 && g_ascii_isspace (text[len - 1]))
    len--;
  if (len == 0 && self->line_mode) {
    /* An empty line stays an empty line. */
    GstBuffer *out = gst_buffer_new_memdup ("\n", 1);
    GST_BUFFER_PTS (out) = pts;
    return gst_pad_push (self->srcpad, out);
  }
  if (!g_utf8_validate (text, len, &end)) {
    /* The caps promise UTF-8; repair rather than feed the tokenizer broken text. */
    gchar *valid = g_utf8_make_valid (text, len);
    GstFlowReturn ret;

    GST_WARNING_OBJECT (self, "input is not valid UTF-8 at byte %d; replacing",
        (int) (end - text));
    build_user_text (self, valid, strlen (valid));
    g_free (valid);
    ret = generate_and_push (self, NULL, 0, timing, pts);
    return ret;
  }
  build_user_text (self, text, len);
  return generate_and_push (self, NULL, 0, timing, pts);
}

static GstFlowReturn
process_lines (GstLfm2Text * self, GstBuffer * buf, gboolean drain)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gchar *nl;

  while (ret == GST_FLOW_OK && (nl = memchr (self->pending->str, '\n',
              self->pending->len)) != NULL) {
    gsize n = nl - self->pending->str;
    ret = process_text (self, self->pending->str, n, NULL, self->pending_pts);
    g_string_erase (self->pending, 0, n + 1);
    /* The rest started in the current buffer. */
    self->pending_pts = buf ? GST_BUFFER_PTS (buf) : GST_CLOCK_TIME_NONE;
  }
  if (ret == GST_FLOW_OK && drain && self->pending->len > 0) {
    ret = process_text (self, self->pending->str, self->pending->len, NULL,
        self->pending_pts);
    g_string_truncate (self->pending, 0);
  }
  return ret;
}

static GstFlowReturn
chain_text (GstLfm2Text * self, GstBuffer * buf)
{
  GstMapInfo map;
  GstFlowReturn ret;

  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("Could not map the input buffer"));
    return GST_FLOW_ERROR;
  }

  if (self->line_mode) {
    if (self->pending->len == 0)
      self->pending_pts = GST_BUFFER_PTS (buf);
    g_string_append_len (self->pending, (const gchar *) map.data, map.size);
    gst_buffer_unmap (buf, &map);
    /* A UTF-8 character split across buffers completes later; only whole lines are checked. */
    ret = process_lines (self, buf, FALSE);
    if (ret == GST_FLOW_OK && self->pending->len > MAX_LINE_BYTES) {
      /* No newline in sight (binary input?): no prompt could be that long anyway. */
      GST_ELEMENT_WARNING (self, STREAM, FORMAT,
          ("Dropping a line longer than %d bytes", MAX_LINE_BYTES), (NULL));
      g_string_truncate (self->pending, 0);
    }
    return ret;
  }

  ret = process_text (self, (const gchar *) map.data, map.size, buf, GST_BUFFER_PTS (buf));
  gst_buffer_unmap (buf, &map);
  return ret;
}

static GstFlowReturn
chain_tensors (GstLfm2Text * self, GstBuffer * buf)
{
  GstLfm2EmbdView view;
  GstLfm2GenMedia media;
  GError *err = NULL;
  GstFlowReturn ret;

  if (!gst_lfm2_embd_view_map (&view, buf, &self->tensors, self->n_vocab, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Invalid embeddings buffer: %s", err->message),
        (NULL));
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  if (view.n_embd != self->n_embd) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Embedding rows are %d wide, the model's n_embd is %d", view.n_embd, self->n_embd),
        (NULL));
    gst_lfm2_embd_view_unmap (&view);
    return GST_FLOW_ERROR;
  }
  media.embd = view.embd;
  media.n_rows = view.n_rows;
  media.layout = view.layout;
  media.n_layout = view.n_layout;
  build_user_text (self, "", 0);
  ret = generate_and_push (self, &media, 1, buf, GST_BUFFER_PTS (buf));
  gst_lfm2_embd_view_unmap (&view);
  return ret;
}

static GstFlowReturn
gst_lfm2_text_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2Text *self = GST_LFM2_TEXT (parent);
  GstFlowReturn ret;

  if (self->gen == NULL) {
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  if (!apply_settings (self)) {
    gst_buffer_unref (buf);
    return GST_FLOW_ERROR;
  }
  ret = self->tensor_input ? chain_tensors (self, buf) : chain_text (self, buf);
  gst_buffer_unref (buf);
  return ret;
}

static gboolean
set_sink_caps (GstLfm2Text * self, GstCaps * caps)
{
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  GstCaps *src_caps;
  gboolean ret;

  if (gst_structure_has_name (s, GST_LFM2_TENSORS_MEDIA_TYPE)) {
    GError *err = NULL;
    gchar *model_id;
    gint n_embd;

    if (!gst_lfm2_tensors_config_from_caps (caps, &self->tensors, &err)) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable tensor caps: %s", err->message),
          ("%" GST_PTR_FORMAT, caps));
      g_clear_error (&err);
      return FALSE;
    }
    GST_OBJECT_LOCK (self);
    n_embd = self->n_embd;
    model_id = g_strdup (self->model_id);
    GST_OBJECT_UNLOCK (self);
    if (self->tensors.embedding_length > 0 && self->tensors.embedding_length != n_embd) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT,
          ("Embeddings are %d wide but the model's n_embd is %d",
              self->tensors.embedding_length, n_embd), ("%" GST_PTR_FORMAT, caps));
      g_free (model_id);
      return FALSE;
    }
    if (self->tensors.model_id[0] && g_strcmp0 (self->tensors.model_id, model_id) != 0) {
      GST_ELEMENT_ERROR (self, STREAM, FORMAT,
          ("Embeddings were made for model \"%s\", this element runs \"%s\"",
              self->tensors.model_id, model_id), ("%" GST_PTR_FORMAT, caps));
      g_free (model_id);
      return FALSE;
    }
    g_free (model_id);
    self->tensor_input = TRUE;
  } else {
    self->tensor_input = FALSE;
  }

  src_caps = gst_static_pad_template_get_caps (&src_template);
  ret = gst_pad_set_caps (self->srcpad, src_caps);
  gst_caps_unref (src_caps);
  return ret;
}

static gboolean
gst_lfm2_text_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2Text *self = GST_LFM2_TEXT (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      ok = set_sink_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_FLUSH_START:
      /* Serialized events wait for the stream lock; this one interrupts the generation. */
      g_atomic_int_set (&self->flushing, 1);
      break;
    case GST_EVENT_FLUSH_STOP:
      g_string_truncate (self->pending, 0);
      g_atomic_int_set (&self->flushing, 0);
      break;
    case GST_EVENT_EOS:
      if (self->line_mode && self->gen && self->pending->len > 0) {
        GstFlowReturn r = process_lines (self, NULL, TRUE);
        if (r != GST_FLOW_OK && r != GST_FLOW_FLUSHING)
          GST_DEBUG_OBJECT (self, "last line: %s", gst_flow_get_name (r));
      }
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* Template check, then (with a model loaded) the embeddings' width and model. Our CAPS query
 * answer carries embedding-length, so the default subset test would refuse encoders that do
 * not set it. */
static gboolean
accept_sink_caps (GstLfm2Text * self, GstPad * pad, GstCaps * caps)
{
  GstCaps *tpl = gst_pad_get_pad_template_caps (pad);
  gboolean ok = gst_caps_is_fixed (caps) && gst_caps_is_subset (caps, tpl);

  gst_caps_unref (tpl);
  if (ok) {
    const GstStructure *s = gst_caps_get_structure (caps, 0);
    const gchar *id = gst_structure_get_string (s, "model-id");
    gint w;

    GST_OBJECT_LOCK (self);
    if (gst_structure_get_int (s, "embedding-length", &w) && self->n_embd > 0
        && w != self->n_embd)
      ok = FALSE;
    if (id && self->model_id && !g_str_equal (id, self->model_id))
      ok = FALSE;
    GST_OBJECT_UNLOCK (self);
  }
  GST_DEBUG_OBJECT (self, "%s %" GST_PTR_FORMAT, ok ? "accept" : "refuse", caps);
  return ok;
}

static gboolean
gst_lfm2_text_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2Text *self = GST_LFM2_TEXT (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_ACCEPT_CAPS) {
    GstCaps *caps;

    gst_query_parse_accept_caps (query, &caps);
    gst_query_set_accept_caps_result (query, accept_sink_caps (self, pad, caps));
    return TRUE;
  }
  if (GST_QUERY_TYPE (query) == GST_QUERY_CAPS) {
    GstCaps *filter, *caps;
    gint n_embd;

    gst_query_parse_caps (query, &filter);
    caps = gst_pad_get_pad_template_caps (pad);
    GST_OBJECT_LOCK (self);
    n_embd = self->n_embd;
    GST_OBJECT_UNLOCK (self);
    /* With a model loaded, tell encoders the row width we need. */
    if (n_embd > 0) {
      caps = gst_caps_make_writable (caps);
      for (guint i = 0; i < gst_caps_get_size (caps); i++) {
        GstStructure *s = gst_caps_get_structure (caps, i);
        if (gst_structure_has_name (s, GST_LFM2_TENSORS_MEDIA_TYPE))
          gst_structure_set (s, "embedding-length", G_TYPE_INT, n_embd, NULL);
      }
    }
    if (filter) {
      GstCaps *tmp = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
      gst_caps_unref (caps);
      caps = tmp;
    }
    gst_query_set_caps_result (query, caps);
    gst_caps_unref (caps);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}
