/* gstlfm2text.c — lfm2text: runs an LFM2 text model on every input. */

/**
 * SECTION:element-lfm2text
 * @title: lfm2text
 * @short_description: LFM2 text generation on text or encoder embeddings
 *
 * Text in (`text/x-raw, format=utf8`), generated text out, one output buffer per input with
 * the input's timestamps. The input goes into the user turn of the LFM2 chat layout through
 * #GstLfm2Text:prompt-template ("{text}" is replaced by the input). The system turn
 * (#GstLfm2GenElement:system-prompt) is prefilled once and reused for every input. After each
 * input the element posts an element message `lfm2text/result` {text, prompt-tokens,
 * cached-tokens, media-rows, generated-tokens, inference-ms, prefill-ms, stop-reason,
 * timestamp}.
 *
 * With #GstLfm2Text:input-mode=lines every input line (across buffers) is one prompt and
 * gives exactly one output line: the answer with its newlines turned into spaces, or an
 * empty line with a WARNING message naming the line number when the line cannot be answered
 * (longer than 1 MiB, or too long for the context); nothing of a dropped line reaches the
 * next one. In `buffer` mode an empty or white-space-only buffer runs no generation: it
 * becomes a GAP event.
 *
 * The sink pad also accepts `other/tensors` from an encoder element (lfm2vlenc, an audio
 * encoder): embedding rows and their token layout are spliced into the user turn (where the
 * template has `<__media__>`, else first) — see docs/tensor-caps.md.
 *
 * Generation runs in the streaming thread; put a queue in front when upstream must not wait.
 * The shared properties (model, system-prompt, max-tokens, sampling, n-threads,
 * context-length) come from the #GstLfm2GenElement base class.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=in.txt ! text/x-raw,format=utf8 ! \
 *     lfm2text model=lfm2.gguf input-mode=lines prompt-template="Translate to French: {text}" ! \
 *     filesink location=out.txt
 * ]|
 */
#include "gstlfm2text.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_text_debug);
#define GST_CAT_DEFAULT gst_lfm2_text_debug

#define DEFAULT_PROMPT_TEMPLATE "{text}"
#define DEFAULT_CHAT TRUE
#define DEFAULT_INPUT_MODE GST_LFM2_TEXT_INPUT_BUFFER

/* The shared properties' defaults: LFM2's recommended generation settings (Liquid AI model
 * cards). */
static const GstLfm2GenElementDefaults gen_defaults = {
  .system_prompt = NULL,
  .max_tokens = 256,
  .temperature = 0.3f,
};

#define TEXT_PLACEHOLDER "{text}"
/* Line mode: a line longer than this is dropped (no prompt could be that long anyway). */
#define MAX_LINE_BYTES (1 << 20)

enum {
  PROP_0,
  PROP_PROMPT_TEMPLATE,
  PROP_CHAT,
  PROP_INPUT_MODE,
};

/* What changed since the streaming thread last looked (settings applied between inputs). */
enum {
  DIRTY_TEMPLATE = 1 << 0,
  DIRTY_CHAT = 1 << 1,
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

G_DEFINE_TYPE (GstLfm2Text, gst_lfm2_text, GST_TYPE_LFM2_GEN_ELEMENT);
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
static gboolean gst_lfm2_text_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params);
static void gst_lfm2_text_stop (GstLfm2GenElement * base);
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
  GstLfm2GenElementClass *gen_class = GST_LFM2_GEN_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_text_set_property;
  gobject_class->get_property = gst_lfm2_text_get_property;
  gobject_class->finalize = gst_lfm2_text_finalize;

  gst_lfm2_gen_element_class_install_properties (gen_class, &gen_defaults);
  /**
   * GstLfm2Text:prompt-template:
   *
   * The user turn. "{text}" is replaced by the input (the input is appended on a new line
   * when the template has no "{text}"); "<__media__>" marks where encoder embeddings go on
   * `other/tensors` input.
   */
  g_object_class_install_property (gobject_class, PROP_PROMPT_TEMPLATE,
      g_param_spec_string ("prompt-template", "Prompt template",
          "User turn; \"{text}\" is replaced by the input (appended on a new line if absent), "
          "\"<__media__>\" marks where encoder embeddings go",
          DEFAULT_PROMPT_TEMPLATE, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Text:chat:
   *
   * Wraps the system prompt and the input in the LFM2 chat layout. FALSE completes the raw
   * text system-prompt + input.
   */
  g_object_class_install_property (gobject_class, PROP_CHAT,
      g_param_spec_boolean ("chat", "Chat",
          "Wrap system prompt and input in the LFM2 chat layout (FALSE: raw text "
          "completion of system-prompt + input)", DEFAULT_CHAT,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Text:input-mode:
   *
   * What makes one prompt: an input buffer, or a line (across buffers). In `lines` mode
   * every input line gives exactly one output line.
   */
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
  gen_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_text_start);
  gen_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_text_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_TEXT_INPUT_MODE, 0);
}

static void
gst_lfm2_text_init (GstLfm2Text * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_sink_event));
  gst_pad_set_query_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_text_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->prompt_template = g_strdup (DEFAULT_PROMPT_TEMPLATE);
  self->chat = DEFAULT_CHAT;
  self->input_mode = DEFAULT_INPUT_MODE;

  self->pending = g_string_sized_new (256);
  self->user = g_string_sized_new (1024);
  self->result = g_string_sized_new (1024);
  self->pending_pts = GST_CLOCK_TIME_NONE;
}

static void
gst_lfm2_text_finalize (GObject * object)
{
  GstLfm2Text *self = GST_LFM2_TEXT (object);

  g_free (self->prompt_template);
  g_free (self->template_copy);
  g_string_free (self->pending, TRUE);
  g_string_free (self->user, TRUE);
  g_string_free (self->result, TRUE);

  G_OBJECT_CLASS (gst_lfm2_text_parent_class)->finalize (object);
}

static void
gst_lfm2_text_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Text *self = GST_LFM2_TEXT (object);

  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_PROMPT_TEMPLATE:
      g_free (self->prompt_template);
      self->prompt_template = g_value_dup_string (value);
      self->dirty |= DIRTY_TEMPLATE;
      break;
    case PROP_CHAT:
      self->chat = g_value_get_boolean (value);
      self->dirty |= DIRTY_CHAT;
      break;
    case PROP_INPUT_MODE:
      self->input_mode = g_value_get_enum (value);
      break;
    default:
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

  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_PROMPT_TEMPLATE:
      g_value_set_string (value, self->prompt_template);
      break;
    case PROP_CHAT:
      g_value_set_boolean (value, self->chat);
      break;
    case PROP_INPUT_MODE:
      g_value_set_enum (value, self->input_mode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* Line counting restarts with the stream (READY→PAUSED, a flush). */
static void
reset_lines (GstLfm2Text * self)
{
  g_string_truncate (self->pending, 0);
  self->pending_pts = GST_CLOCK_TIME_NONE;
  self->line_no = 1;
  self->line_open = FALSE;
  self->discarding = FALSE;
}

/* READY→PAUSED, the model loaded: this element's settings for the streaming thread. */
static gboolean
gst_lfm2_text_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params)
{
  GstLfm2Text *self = GST_LFM2_TEXT (base);

  GST_OBJECT_LOCK (self);
  params->chat = self->chat;
  self->line_mode = self->input_mode == GST_LFM2_TEXT_INPUT_LINES;
  g_free (self->template_copy);
  self->template_copy = g_strdup (self->prompt_template);
  self->dirty = 0;
  GST_OBJECT_UNLOCK (self);
  reset_lines (self);
  return TRUE;
}

static void
gst_lfm2_text_stop (GstLfm2GenElement * base)
{
  GstLfm2Text *self = GST_LFM2_TEXT (base);

  reset_lines (self);
  self->tensor_input = FALSE;
}

/* Applies settings changed while playing (between inputs; allocation only on a change). */
static gboolean
apply_settings (GstLfm2Text * self)
{
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);
  guint dirty;
  gboolean chat;

  if (!gst_lfm2_gen_element_apply_settings (base))
    return FALSE;
  GST_OBJECT_LOCK (self);
  dirty = self->dirty;
  self->dirty = 0;
  if (dirty & DIRTY_TEMPLATE) {
    g_free (self->template_copy);
    self->template_copy = g_strdup (self->prompt_template);
  }
  chat = self->chat;
  GST_OBJECT_UNLOCK (self);
  if (dirty & DIRTY_CHAT)
    gst_lfm2_gen_set_chat (base->gen, chat);
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

/* Text is a sparse stream: where an input gives no text, downstream still learns how far the
 * stream has got. */
static void
push_gap (GstLfm2Text * self, GstClockTime pts, GstClockTime dur)
{
  if (GST_CLOCK_TIME_IS_VALID (pts))
    gst_pad_push_event (self->srcpad, gst_event_new_gap (pts, dur));
}

/* Line mode: the output line of an input line that gets no answer. */
static GstFlowReturn
push_empty_line (GstLfm2Text * self, GstClockTime pts)
{
  GstBuffer *out = gst_buffer_new_memdup ("\n", 1);

  GST_BUFFER_PTS (out) = pts;
  return gst_pad_push (self->srcpad, out);
}

static void
post_result (GstLfm2Text * self, const GstLfm2GenStats * stats, GstClockTime pts)
{
  GstStructure *s = gst_structure_new ("lfm2text/result",
      "text", G_TYPE_STRING, self->result->str,
      "prompt-tokens", G_TYPE_INT, stats->prompt_tokens,
      "cached-tokens", G_TYPE_INT, stats->cached_tokens,
      "media-rows", G_TYPE_INT, stats->media_rows,
      "generated-tokens", G_TYPE_INT, stats->generated_tokens,
      "inference-ms", G_TYPE_DOUBLE, stats->total_ms,
      "prefill-ms", G_TYPE_DOUBLE, stats->prefill_ms,
      "stop-reason", G_TYPE_STRING, gst_lfm2_gen_stop_to_string (stats->stop),
      "timestamp", G_TYPE_UINT64, (guint64) pts, NULL);

  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* Runs one request on self->user and pushes its output with the timestamps of `timing`
 * (buffer mode) or `pts` (line mode). */
static GstFlowReturn
generate_and_push (GstLfm2Text * self, const GstLfm2GenMedia * media, guint n_media,
    GstBuffer * timing, GstClockTime pts)
{
  const GstClockTime dur = timing ? GST_BUFFER_DURATION (timing) : GST_CLOCK_TIME_NONE;
  GstLfm2GenStats stats;
  GError *err = NULL;
  GstFlowReturn ret;
  GstBuffer *out;

  g_string_truncate (self->result, 0);
  ret = gst_lfm2_gen_element_generate (GST_LFM2_GEN_ELEMENT (self), self->user->str, media,
      n_media, self->result, &stats, &err);
  if (ret == GST_LFM2_GEN_FLOW_DROPPED) {
    /* One input too long for the context should not end the stream, nor shift the lines. */
    if (self->line_mode) {
      GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
          ("Line %" G_GUINT64_FORMAT " dropped: %s", self->line_no, err->message),
          ("raise context-length"));
      g_clear_error (&err);
      return push_empty_line (self, pts);
    }
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT, ("Input dropped: %s", err->message),
        ("raise context-length"));
    g_clear_error (&err);
    push_gap (self, pts, dur);
    return GST_FLOW_OK;
  }
  if (ret != GST_FLOW_OK)
    return ret;
  post_result (self, &stats, pts);

  if (self->line_mode) {
    /* One line out per line in: newlines inside the answer become spaces. */
    for (gsize i = 0; i < self->result->len; i++)
      if (self->result->str[i] == '\n' || self->result->str[i] == '\r')
        self->result->str[i] = ' ';
    g_string_append_c (self->result, '\n');
  }
  if (self->result->len == 0) {
    /* The model said nothing. */
    push_gap (self, pts, dur);
    return GST_FLOW_OK;
  }

  out = gst_buffer_new_memdup (self->result->str, self->result->len);
  if (timing)
    gst_buffer_copy_into (out, timing, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  else
    GST_BUFFER_PTS (out) = pts;
  return gst_pad_push (self->srcpad, out);
}

/* One prompt from text (a buffer, or a line without its '\n'). */
static GstFlowReturn
process_text (GstLfm2Text * self, const gchar * text, gsize len, GstBuffer * timing,
    GstClockTime pts)
{
  const gchar *end;

  /* Drop trailing white space (a line's "\r", a file's final newline). */
  while (len > 0 && g_ascii_isspace (text[len - 1]))
    len--;
  if (len == 0) {
    /* Nothing to answer: an empty line stays an empty line; an empty buffer runs no
     * generation on an empty user turn. */
    if (self->line_mode)
      return push_empty_line (self, pts);
    push_gap (self, pts, timing ? GST_BUFFER_DURATION (timing) : GST_CLOCK_TIME_NONE);
    return GST_FLOW_OK;
  }
  if (!g_utf8_validate (text, len, &end)) {
    /* The caps promise UTF-8; repair rather than feed the tokenizer broken text. */
    gchar *valid = g_utf8_make_valid (text, len);

    GST_WARNING_OBJECT (self, "input is not valid UTF-8 at byte %d; replacing",
        (int) (end - text));
    build_user_text (self, valid, strlen (valid));
    g_free (valid);
  } else {
    build_user_text (self, text, len);
  }
  return generate_and_push (self, NULL, 0, timing, pts);
}

/* Line mode: the current line has ended (its '\n', or EOS): its one output line. */
static GstFlowReturn
finish_line (GstLfm2Text * self)
{
  GstFlowReturn ret;

  if (self->discarding)         /* the warning went out when it passed the limit */
    ret = push_empty_line (self, self->pending_pts);
  else
    ret = process_text (self, self->pending->str, self->pending->len, NULL,
        self->pending_pts);
  g_string_truncate (self->pending, 0);
  self->discarding = FALSE;
  self->line_open = FALSE;
  self->line_no++;
  return ret;
}

/* Line mode: input bytes, split at '\n'. A line collects in `pending` until it ends (a UTF-8
 * character split across buffers completes there); one longer than MAX_LINE_BYTES is dropped
 * whole — its bytes are skipped up to its '\n', none is kept or copied — and still gives its
 * (empty) output line. A line takes the PTS of the buffer it started in. */
static GstFlowReturn
push_line_data (GstLfm2Text * self, const gchar * data, gsize size, GstClockTime pts)
{
  GstFlowReturn ret = GST_FLOW_OK;

  while (size > 0 && ret == GST_FLOW_OK) {
    const gchar *nl = memchr (data, '\n', size);
    const gsize n = nl ? (gsize) (nl - data) : size;

    if (!self->line_open) {
      self->line_open = TRUE;
      self->pending_pts = pts;
    }
    if (!self->discarding && self->pending->len + n > MAX_LINE_BYTES) {
      GST_ELEMENT_WARNING (self, STREAM, FORMAT,
          ("Line %" G_GUINT64_FORMAT " dropped: longer than %d bytes", self->line_no,
              MAX_LINE_BYTES), ("no prompt can be that long (binary input?)"));
      g_string_truncate (self->pending, 0);
      self->discarding = TRUE;
    }
    if (!self->discarding)
      g_string_append_len (self->pending, data, n);
    if (nl == NULL)
      break;
    ret = finish_line (self);
    data += n + 1;
    size -= n + 1;
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
  if (self->line_mode)
    ret = push_line_data (self, (const gchar *) map.data, map.size, GST_BUFFER_PTS (buf));
  else
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
  gint n_embd, n_vocab;

  gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (self), &n_embd, &n_vocab, NULL);
  if (!gst_lfm2_embd_view_map (&view, buf, &self->tensors, n_vocab, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Invalid embeddings buffer: %s", err->message),
        (NULL));
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  if (view.n_embd != n_embd) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Embedding rows are %d wide, the model's n_embd is %d", view.n_embd, n_embd),
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

  if (GST_LFM2_GEN_ELEMENT (self)->gen == NULL) {
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
    gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (self), &n_embd, NULL,
        &model_id);
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
      g_atomic_int_set (&GST_LFM2_GEN_ELEMENT (self)->cancel, 1);
      break;
    case GST_EVENT_FLUSH_STOP:
      reset_lines (self);
      g_atomic_int_set (&GST_LFM2_GEN_ELEMENT (self)->cancel, 0);
      break;
    case GST_EVENT_EOS:
      /* The last line, when the input does not end with a newline. */
      if (self->line_mode && GST_LFM2_GEN_ELEMENT (self)->gen && self->line_open) {
        GstFlowReturn r = finish_line (self);
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
    gchar *model_id;
    gint w, n_embd;

    gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (self), &n_embd, NULL,
        &model_id);
    if (gst_structure_get_int (s, "embedding-length", &w) && n_embd > 0 && w != n_embd)
      ok = FALSE;
    if (id && model_id && !g_str_equal (id, model_id))
      ok = FALSE;
    g_free (model_id);
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
    gst_lfm2_gen_element_get_model_info (GST_LFM2_GEN_ELEMENT (self), &n_embd, NULL, NULL);
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
