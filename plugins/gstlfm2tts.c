/* gstlfm2tts.c — lfm2tts: text to speech with LFM2.5-Audio. */

/**
 * SECTION:element-lfm2tts
 * @title: lfm2tts
 * @short_description: text to speech with LFM2.5-Audio
 *
 * Text in (`text/x-raw, format=utf8`), 24 kHz mono speech out (`S16LE` or `F32LE`), pushed
 * frame by frame (80 ms of audio each) as the model generates it — the first audio leaves the
 * element long before the utterance is finished. Every input buffer is one utterance (a cue):
 * its speech starts at the buffer's PTS, or right after the previous utterance when that has
 * not ended yet (#GstLfm2Tts:overflow, as gst-plugins-rs's speech synthesizers). A buffer
 * without a PTS is spoken right after the previous one.
 *
 * The model runs the sequential TTS loop of LFM2.5-Audio: the system prompt
 * "Perform TTS. Use the US female voice." (#GstLfm2Tts:voice, or
 * #GstLfm2GenElement:system-prompt), the text as the user turn, then `<|audio_start|>` and
 * audio frames until the end-of-audio code. Each frame (8 codes from the depth transformer on
 * the backbone's hidden state) is vocoded at once (detokenizer + ISTFT). Texts longer than
 * 400 bytes are spoken in several turns cut at sentence ends (then spaces), one after the
 * other without a gap, so a text of any length fits the context.
 *
 * After each utterance the element posts an element message `lfm2tts/utterance`
 * {text, start, duration, first-audio-ms, rtf, frames, turns, stop-reason}: first-audio-ms is
 * the time from the text's arrival to its first audio buffer, rtf the processing time over
 * the audio duration.
 *
 * Empty (or white-space-only) text gives no audio and no error: a GAP event. Input GAP events
 * pass on as GAPs.
 *
 * Codes instead of audio: when downstream accepts `other/tensors` and not raw audio (e.g.
 * `lfm2tts ! lfm2audiodec`), or when no #GstLfm2Tts:tokenizer is set, the element pushes the
 * frames of codes (one int32 tensor `8:1` per buffer, 12.5 frames/s), each audio segment
 * ending with an end-of-audio frame (every code 2048) — see docs/tensor-caps.md.
 *
 * Latency: in live pipelines the src pad answers LATENCY queries with upstream's + `latency`
 * (ms); audio that would still miss its deadline is moved forward by its lateness (a WARNING
 * says to raise `latency`).
 *
 * Generation runs in the streaming thread (put a queue in front when the text source must not
 * wait); flushing or PAUSED→READY stops it within one frame. EOS is pushed after the speech of
 * the last text. The shared properties (model, system-prompt, max-tokens, temperature, top-k,
 * seed, n-threads, context-length) come from the #GstLfm2GenElement base class; temperature,
 * top-k and seed sample the audio codes (text tokens are greedy, as in every reference).
 *
 * ## Example launch line
 * |[
 * echo "Hello there." | gst-launch-1.0 fdsrc ! text/x-raw,format=utf8 ! lfm2tts \
 *     model=LFM2.5-Audio-1.5B-Q8_0.gguf vocoder=vocoder-LFM2.5-Audio-1.5B-Q8_0.gguf \
 *     tokenizer=tokenizer-LFM2.5-Audio-1.5B-Q8_0.gguf voice=uk-female ! audioconvert ! \
 *     autoaudiosink
 * ]|
 */
#include "gstlfm2tts.h"

#include <string.h>

#include "gstlfm2tensors.h"

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_tts_debug);
#define GST_CAT_DEFAULT gst_lfm2_tts_debug

#define DEFAULT_VOICE GST_LFM2_VOICE_US_FEMALE
#define DEFAULT_OVERFLOW GST_LFM2_OVERFLOW_SHIFT
#define DEFAULT_LATENCY_MS 1000
/* A longer text is spoken in several turns (cut at sentence ends): every turn fits the
 * context, and the first audio does not wait for the prefill of a whole book. */
#define MAX_TURN_BYTES 400

/* The shared properties' defaults: llama.cpp's runner for TTS (audio T 0.8, top-k 64). */
static const GstLfm2GenElementDefaults gen_defaults = {
  .system_prompt = NULL,        /* the voice's "Perform TTS. Use the … voice." */
  .max_tokens = 0,
  .temperature = 0.8f,
  .top_k = 64,
  .speech = TRUE,
};

enum {
  PROP_0,
  PROP_VOCODER,
  PROP_TOKENIZER,
  PROP_VOICE,
  PROP_OVERFLOW,
  PROP_LATENCY,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_LFM2_SPEECH_AUDIO_CAPS "; " GST_LFM2_TENSORS_CAPS_STATIC));

G_DEFINE_TYPE (GstLfm2Tts, gst_lfm2_tts, GST_TYPE_LFM2_GEN_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2tts, "lfm2tts", GST_RANK_NONE, GST_TYPE_LFM2_TTS,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_tts_debug, "lfm2tts", 0, "LFM2.5-Audio text to speech"));

static void gst_lfm2_tts_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_tts_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_tts_finalize (GObject * object);
static gboolean gst_lfm2_tts_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params);
static void gst_lfm2_tts_stop (GstLfm2GenElement * base);
static GstFlowReturn gst_lfm2_tts_chain (GstPad * pad, GstObject * parent, GstBuffer * buf);
static gboolean gst_lfm2_tts_sink_event (GstPad * pad, GstObject * parent, GstEvent * event);
static gboolean gst_lfm2_tts_src_query (GstPad * pad, GstObject * parent, GstQuery * query);

static void
gst_lfm2_tts_class_init (GstLfm2TtsClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstLfm2GenElementClass *gen_class = GST_LFM2_GEN_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_lfm2_tts_set_property;
  gobject_class->get_property = gst_lfm2_tts_get_property;
  gobject_class->finalize = gst_lfm2_tts_finalize;

  gst_lfm2_gen_element_class_install_properties (gen_class, &gen_defaults);
  gst_lfm2_speech_install_file_properties (gobject_class, PROP_VOCODER, TRUE);
  /**
   * GstLfm2Tts:voice:
   *
   * The voice, by the system prompt of LFM2.5-Audio's TTS mode ("Perform TTS. Use the US
   * female voice." …). A system-prompt property that is set takes precedence.
   */
  g_object_class_install_property (gobject_class, PROP_VOICE,
      g_param_spec_enum ("voice", "Voice",
          "Voice (the TTS system prompt; a set system-prompt takes precedence)",
          GST_TYPE_LFM2_VOICE, DEFAULT_VOICE, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Tts:overflow:
   *
   * Speech longer than its cue (the text buffer's duration), or still running when the next
   * text's PTS comes: `clip` cuts it at the end of its cue, `overlap` starts every utterance
   * at its PTS regardless, `shift` starts an utterance after the previous one has ended.
   */
  g_object_class_install_property (gobject_class, PROP_OVERFLOW,
      g_param_spec_enum ("overflow", "Overflow",
          "Speech longer than its cue: cut at the cue's end (clip), start every utterance at "
          "its PTS (overlap), or after the previous one has ended (shift)",
          GST_TYPE_LFM2_OVERFLOW, DEFAULT_OVERFLOW, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLfm2Tts:latency:
   *
   * How late speech may be behind its text, in milliseconds: added to the upstream latency
   * in LATENCY queries of live pipelines. Set it to at least the time to the first audio.
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "How late speech may be behind its text in ms (added to the upstream latency in "
          "live pipelines; at least the time to the first audio)", 0, G_MAXUINT / 2,
          DEFAULT_LATENCY_MS, rw | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2.5-Audio text to speech", "Converter/Text/Audio",
      "Speaks text with Liquid AI LFM2.5-Audio: 24 kHz audio pushed frame by frame as it is "
      "generated, at the text's timestamps (or frames of audio codes as tensors)",
      "lfm2-gst developers");
  gen_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_tts_start);
  gen_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_tts_stop);

  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_VOICE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_OVERFLOW, 0);
}

static void
gst_lfm2_tts_init (GstLfm2Tts * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_tts_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (gst_lfm2_tts_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_pad_set_query_function (self->srcpad, GST_DEBUG_FUNCPTR (gst_lfm2_tts_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->settings.voice = DEFAULT_VOICE;
  self->settings.overflow = DEFAULT_OVERFLOW;
  self->settings.latency_ms = DEFAULT_LATENCY_MS;
  gst_lfm2_speech_out_init (&self->out, GST_ELEMENT (self), self->sinkpad, self->srcpad);
  self->text = g_string_sized_new (1024);
  self->turn = g_malloc (MAX_TURN_BYTES + 1);
}

static void
gst_lfm2_tts_finalize (GObject * object)
{
  GstLfm2Tts *self = GST_LFM2_TTS (object);

  /* PAUSED→READY released these; an element disposed in PAUSED did not. */
  gst_lfm2_tts_stop (GST_LFM2_GEN_ELEMENT (self));
  g_free (self->settings.vocoder);
  g_free (self->settings.tokenizer);
  g_string_free (self->text, TRUE);
  g_free (self->turn);
  G_OBJECT_CLASS (gst_lfm2_tts_parent_class)->finalize (object);
}

static void
gst_lfm2_tts_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Tts *self = GST_LFM2_TTS (object);
  GstLfm2TtsSettings *s = &self->settings;
  gboolean latency_changed = FALSE;

  if (gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_free (s->vocoder);
      s->vocoder = g_value_dup_string (value);
      break;
    case PROP_TOKENIZER:
      g_free (s->tokenizer);
      s->tokenizer = g_value_dup_string (value);
      break;
    case PROP_VOICE:
      s->voice = g_value_get_enum (value);
      break;
    case PROP_OVERFLOW:
      s->overflow = g_value_get_enum (value);
      break;
    case PROP_LATENCY:
      latency_changed = s->latency_ms != g_value_get_uint (value);
      s->latency_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
  /* the pipeline asks for the latency again */
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_lfm2_tts_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2Tts *self = GST_LFM2_TTS (object);
  GstLfm2TtsSettings *s = &self->settings;

  if (gst_lfm2_gen_element_get_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
    return;
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_VOCODER:
      g_value_set_string (value, s->vocoder);
      break;
    case PROP_TOKENIZER:
      g_value_set_string (value, s->tokenizer);
      break;
    case PROP_VOICE:
      g_value_set_enum (value, s->voice);
      break;
    case PROP_OVERFLOW:
      g_value_set_enum (value, s->overflow);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, s->latency_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- READY↔PAUSED ------------------------------------------------------------------ */

/* The generator: sequential TTS on the element's model, vocoder and (vocode) tokenizer. Its
 * sampling and prompt are applied before the next utterance. */
static gboolean
make_tts (GstLfm2Tts * self, gboolean vocode, GError ** error)
{
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);
  struct lfm2_tts_params p = lfm2_tts_default_params ();

  if (self->tts)
    lfm2_tts_free (self->tts);
  p.mode = LFM2_TTS_SEQUENTIAL;
  p.vocode = vocode;
  p.n_ctx = self->n_ctx;
  p.n_threads = self->n_threads;
  lfm2_clear_error ();
  self->tts = lfm2_tts_new (gst_lfm2_shared_model (base->shared),
      gst_lfm2_shared_vocoder (self->vocoder),
      vocode ? gst_lfm2_shared_audio_tokenizer (self->tokenizer) : NULL, p);
  self->tts_vocodes = vocode;
  self->applied_valid = FALSE;
  if (self->tts == NULL) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "%s",
        lfm2_last_error ()[0] ? lfm2_last_error () : "cannot create the TTS context");
    return FALSE;
  }
  return TRUE;
}

/* The base class has loaded the backbone: the vocoder and tokenizer, checked against it and
 * each other. Errors name the files and the tensor or key. */
static gboolean
gst_lfm2_tts_start (GstLfm2GenElement * base, const lfm2_model * model,
    GstLfm2GenParams * params)
{
  GstLfm2Tts *self = GST_LFM2_TTS (base);
  gchar *voc_path, *tok_path, *dbg = NULL;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  voc_path = g_strdup (self->settings.vocoder);
  tok_path = g_strdup (self->settings.tokenizer);
  GST_OBJECT_UNLOCK (self);
  self->n_ctx = params->n_ctx;
  self->n_threads = params->n_threads;

  if (!gst_lfm2_speech_files_acquire (voc_path, tok_path, FALSE, &self->vocoder,
          &self->tokenizer, &err, &dbg))
    goto fail;
  /* the backbone's width against the vocoder's, the vocoder against the tokenizer */
  if (!make_tts (self, self->tokenizer != NULL, &err)) {
    dbg = g_strdup_printf ("model: %s, vocoder: %s, tokenizer: %s", lfm2_model_path (model),
        voc_path, tok_path ? tok_path : "(none)");
    goto fail;
  }
  GST_INFO_OBJECT (self, "%s; %s", lfm2_vocoder_desc (gst_lfm2_shared_vocoder (self->vocoder)),
      self->tokenizer ? lfm2_audio_tokenizer_desc (gst_lfm2_shared_audio_tokenizer
          (self->tokenizer)) : "no tokenizer: codes only");
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
  return FALSE;                 /* the base class calls stop() */
}

static void
gst_lfm2_tts_stop (GstLfm2GenElement * base)
{
  GstLfm2Tts *self = GST_LFM2_TTS (base);

  g_clear_pointer (&self->tts, lfm2_tts_free);
  gst_lfm2_shared_release (self->tokenizer);
  gst_lfm2_shared_release (self->vocoder);
  self->tokenizer = self->vocoder = NULL;
  g_clear_pointer (&self->applied.system_prompt, g_free);
  self->applied_valid = FALSE;
}

/* ---- settings between utterances --------------------------------------------------- */

typedef struct {
  GstLfm2Overflow overflow;
  GstClockTime latency;
  gint max_tokens;
} Request;

/* Hands the properties changed since the last utterance to the generator. */
static gboolean
sync_settings (GstLfm2Tts * self, Request * rq)
{
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);
  GstLfm2TtsApplied want, *have = &self->applied;
  gboolean ok = TRUE;

  GST_OBJECT_LOCK (self);
  want.system_prompt = g_strdup (base->settings.system_prompt);
  want.voice = self->settings.voice;
  want.temperature = base->settings.sampling.temperature;
  want.top_k = base->settings.sampling.top_k;
  want.seed = base->settings.sampling.seed;
  rq->overflow = self->settings.overflow;
  rq->latency = self->settings.latency_ms * GST_MSECOND;
  rq->max_tokens = base->settings.max_tokens;
  GST_OBJECT_UNLOCK (self);

  lfm2_clear_error ();
  if (!self->applied_valid || want.voice != have->voice)
    ok &= lfm2_tts_set_voice (self->tts, (enum lfm2_tts_voice) want.voice) == 0;
  if (!self->applied_valid || g_strcmp0 (want.system_prompt, have->system_prompt) != 0)
    ok &= lfm2_tts_set_system_prompt (self->tts, want.system_prompt) == 0;
  /* 4294967295: a new seed for every utterance, as llama.cpp */
  if (!self->applied_valid || want.temperature != have->temperature
      || want.top_k != have->top_k || want.seed != have->seed || want.seed == G_MAXUINT32)
    ok &= lfm2_audio_head_set_sampling (lfm2_tts_head (self->tts), want.temperature,
        want.top_k, want.seed == G_MAXUINT32 ? g_random_int () : want.seed) == 0;
  g_free (have->system_prompt);
  *have = want;
  self->applied_valid = ok;
  if (!ok)
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Cannot apply the settings: %s",
            lfm2_last_error ()), (NULL));
  return ok;
}

/* ---- speaking ---------------------------------------------------------------------- */

static gboolean
is_sentence_end (gunichar c)
{
  switch (c) {
    case '.': case '!': case '?': case ';': case 0x2026:        /* … */
    case 0x3002: case 0xFF01: case 0xFF1F: case 0xFF1B:          /* 。！？； */
    case 0x0964: case 0x061F: case 0x06D4:                       /* । ؟ ۔ */
      return TRUE;
    default:
      return FALSE;
  }
}

/* Bytes of the next turn of a long (valid UTF-8) text: all of it when it fits in max;
 * else up to the last sentence end (followed by white space or the end, or a CJK full stop)
 * or line break, else the last white space, else the last whole character. */
static gsize
next_turn (const gchar * s, gsize len, gsize max)
{
  gsize sentence = 0, space = 0, whole = 0;
  const gchar *p = s;

  if (len <= max)
    return len;
  while (p < s + len) {
    const gchar *next = g_utf8_next_char (p);
    const gsize after = (gsize) (next - s);
    gunichar c = g_utf8_get_char (p);

    if (after > max)
      break;
    whole = after;
    if (c == '\n' || (is_sentence_end (c) && (c >= 0x3000 || after == len
                || g_unichar_isspace (g_utf8_get_char (next)))))
      sentence = after;
    else if (g_unichar_isspace (c))
      space = after;
    p = next;
  }
  return sentence ? sentence : space ? space : whole;
}

/* The input as speakable text in self->text: no NUL bytes, valid UTF-8 (repaired with a
 * warning), no white space at the ends. */
static void
clean_text (GstLfm2Tts * self, const gchar * data, gsize size)
{
  GString *t = self->text;
  const gchar *end;
  gsize a = 0, b;

  g_string_truncate (t, 0);
  for (gsize i = 0; i < size; i++)
    if (data[i] != '\0')
      g_string_append_c (t, data[i]);
  if (!g_utf8_validate_len (t->str, t->len, &end)) {
    gchar *valid = g_utf8_make_valid (t->str, (gssize) t->len);

    GST_WARNING_OBJECT (self, "input is not valid UTF-8 at byte %d; replacing",
        (int) (end - t->str));
    g_string_assign (t, valid);
    g_free (valid);
  }
  b = t->len;
  while (b > 0 && g_ascii_isspace (t->str[b - 1]))
    b--;
  while (a < b && g_ascii_isspace (t->str[a]))
    a++;
  g_string_truncate (t, b);
  g_string_erase (t, 0, (gssize) a);
}

/* One turn of the utterance: the text through the TTS loop, every frame pushed as it comes. */
static GstFlowReturn
speak_turn (GstLfm2Tts * self, const gchar * text, const Request * rq, GstLfm2SpeechTurn * u,
    gint * turns)
{
  lfm2_clear_error ();
  if (lfm2_tts_begin_text (self->tts, text) != 0) {
    /* A turn that does not fit the context (a tiny context-length): skip it, say so. */
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
        ("Text not spoken (%" G_GSIZE_FORMAT " bytes): %s", strlen (text),
            lfm2_last_error ()), ("raise context-length"));
    u->stop = "context";
    return GST_FLOW_OK;
  }
  (*turns)++;
  return gst_lfm2_speech_out_turn (&self->out, self->tts, rq->max_tokens,
      &GST_LFM2_GEN_ELEMENT (self)->cancel, NULL, u);
}

static void
post_utterance (GstLfm2Tts * self, const GstLfm2SpeechTurn * u, gint turns,
    GstClockTime start, GstClockTime duration)
{
  const gdouble total_ms = (g_get_monotonic_time () - u->t0) / 1000.0;
  const gdouble audio_ms = duration / (gdouble) GST_MSECOND;
  GstStructure *s = gst_structure_new ("lfm2tts/utterance",
      "text", G_TYPE_STRING, self->text->str,
      "start", G_TYPE_UINT64, (guint64) start,
      "duration", G_TYPE_UINT64, (guint64) duration,
      "first-audio-ms", G_TYPE_DOUBLE, u->first_audio_ms,
      "rtf", G_TYPE_DOUBLE, audio_ms > 0 ? total_ms / audio_ms : 0.0,
      "frames", G_TYPE_INT, u->frames,
      "turns", G_TYPE_INT, turns,
      "stop-reason", G_TYPE_STRING, u->stop, NULL);

  GST_DEBUG_OBJECT (self, "%d frames (%" GST_TIME_FORMAT " at %" GST_TIME_FORMAT
      "), first audio %.1f ms, %.1f ms in all, %s: %s", u->frames, GST_TIME_ARGS (duration),
      GST_TIME_ARGS (start), u->first_audio_ms, total_ms, u->stop, self->text->str);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* One utterance: its text in turns of at most MAX_TURN_BYTES, back to back. */
static GstFlowReturn
speak (GstLfm2Tts * self, GstClockTime pts, GstClockTime dur, const Request * rq,
    gint64 t0)
{
  GstLfm2SpeechTurn u = { t0, -1.0, 0, 0, "eog" };
  GstFlowReturn ret = GST_FLOW_OK;
  gint turns = 0;
  GstClockTime start, duration;
  const gchar *text = self->text->str;
  gsize len = self->text->len, off = 0;

  start = gst_lfm2_speech_out_begin (&self->out, pts, dur, rq->overflow, rq->latency);
  while (off < len && ret == GST_FLOW_OK && !self->out.clipped) {
    gsize n = next_turn (text + off, len - off, MAX_TURN_BYTES), a = 0;

    while (a < n && g_ascii_isspace (text[off + a]))
      a++;
    if (a < n) {
      memcpy (self->turn, text + off + a, n - a);
      self->turn[n - a] = '\0';
      ret = speak_turn (self, self->turn, rq, &u, &turns);
    }
    off += n;
  }
  if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED)
    return ret;
  duration = gst_lfm2_speech_out_end (&self->out);
  post_utterance (self, &u, turns, start, duration);
  return ret;
}

static GstFlowReturn
gst_lfm2_tts_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLfm2Tts *self = GST_LFM2_TTS (parent);
  const gint64 t0 = g_get_monotonic_time ();
  const GstClockTime pts = GST_BUFFER_PTS (buf), dur = GST_BUFFER_DURATION (buf);
  GstFlowReturn ret;
  GstMapInfo map;
  Request rq;

  if (self->tts == NULL) {
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  if (self->out.format == GST_LFM2_SPEECH_NONE) {
    gst_buffer_unref (buf);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("Could not map the input buffer"));
    return GST_FLOW_ERROR;
  }
  clean_text (self, (const gchar *) map.data, map.size);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);

  if (!sync_settings (self, &rq))
    return GST_FLOW_ERROR;
  if (self->text->len == 0) {
    /* nothing to say: the audio stream still moves on */
    gst_lfm2_speech_out_gap (&self->out, pts, dur, rq.overflow);
    return GST_FLOW_OK;
  }
  ret = speak (self, pts, dur, &rq, t0);
  GST_LOG_OBJECT (self, "utterance: %s", gst_flow_get_name (ret));
  return ret;
}

/* ---- events and queries ------------------------------------------------------------ */

/* The output format from what downstream accepts: audio needs the tokenizer; codes need a
 * generator that does not vocode. */
static gboolean
negotiate (GstLfm2Tts * self)
{
  const struct lfm2_vocoder_hparams *hp;
  GError *err = NULL;

  if (self->vocoder == NULL)
    return FALSE;
  hp = lfm2_vocoder_get_hparams (gst_lfm2_shared_vocoder (self->vocoder));
  if (!gst_lfm2_speech_out_negotiate (&self->out, self->tokenizer != NULL, TRUE,
          hp->n_codebooks, hp->eoa))
    return FALSE;
  if (self->out.format == GST_LFM2_SPEECH_CODES && self->tts_vocodes
      && !make_tts (self, FALSE, &err)) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return FALSE;
  }
  return TRUE;
}

static gboolean
gst_lfm2_tts_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstLfm2Tts *self = GST_LFM2_TTS (parent);
  GstLfm2GenElement *base = GST_LFM2_GEN_ELEMENT (self);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:
      /* text caps in, our own out */
      gst_event_unref (event);
      return negotiate (self);
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;
      gboolean ok;

      /* The speech keeps the text's time base (a non-TIME segment, e.g. a file's bytes,
       * gives a TIME one from 0). */
      gst_event_parse_segment (event, &seg);
      ok = gst_lfm2_speech_out_set_segment (&self->out, seg, gst_event_get_seqnum (event));
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;
      GstLfm2Overflow overflow;

      gst_event_parse_gap (event, &ts, &dur);
      GST_OBJECT_LOCK (self);
      overflow = self->settings.overflow;
      GST_OBJECT_UNLOCK (self);
      gst_lfm2_speech_out_gap (&self->out, ts, dur, overflow);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_FLUSH_START:
      /* out of band: stops the utterance being generated within one frame */
      g_atomic_int_set (&base->cancel, 1);
      break;
    case GST_EVENT_FLUSH_STOP:
      gst_lfm2_speech_out_reset (&self->out);
      g_atomic_int_set (&base->cancel, 0);
      break;
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_lfm2_tts_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstLfm2Tts *self = GST_LFM2_TTS (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:{
      GstClockTime latency;

      GST_OBJECT_LOCK (self);
      latency = self->settings.latency_ms * GST_MSECOND;
      GST_OBJECT_UNLOCK (self);
      return gst_lfm2_speech_out_query_latency (&self->out, query, latency);
    }
    case GST_QUERY_POSITION:{
      GstFormat format;
      GstClockTime pos;

      gst_query_parse_position (query, &format, NULL);
      if (format != GST_FORMAT_TIME)
        break;
      pos = gst_lfm2_speech_out_position (&self->out);
      if (!GST_CLOCK_TIME_IS_VALID (pos))
        break;
      gst_query_set_position (query, GST_FORMAT_TIME, (gint64) pos);
      return TRUE;
    }
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps = gst_pad_get_pad_template_caps (pad);
      gboolean audio;

      /* no tokenizer: codes only */
      GST_OBJECT_LOCK (self);
      audio = self->settings.tokenizer != NULL;
      GST_OBJECT_UNLOCK (self);
      if (!audio) {
        GstCaps *codes = gst_caps_from_string (GST_LFM2_TENSORS_CAPS_STATIC);
        gst_caps_unref (caps);
        caps = codes;
      }
      gst_query_parse_caps (query, &filter);
      if (filter) {
        GstCaps *tmp = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref (caps);
        caps = tmp;
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    default:
      break;
  }
  return gst_pad_query_default (pad, parent, query);
}
