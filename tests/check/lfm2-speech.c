/* lfm2-speech.c — shared parts of the speech-output element tests (see lfm2-speech.h). */
#include "lfm2-speech.h"

#include <string.h>

#include "cli.h"
#include "lfm2-gguf.h"
/* the input side's header after the output side's: its rate is the one meant below */
#undef LFM2_AUDIO_SAMPLE_RATE
#undef LFM2_AUDIO_N_FFT
#undef LFM2_AUDIO_HOP
#include "lfm2-audio.h"

SpeechModels speech;

void
speech_models_setup (const gchar * name)
{
  const gchar *root = g_getenv ("LFM2_BUILD_ROOT");
  gchar *dir;

  g_assert (root != NULL);      /* set by tests/check/meson.build */
  dir = g_strdup_printf ("%s/tests/check/%s-models", root, name);
  g_mkdir_with_parents (dir, 0755);
  speech.dir = dir;
  speech.model = g_build_filename (dir, "audio-tiny-q8_0.gguf", NULL);
  speech.mmproj = g_build_filename (dir, "mmproj-audio-tiny-f16.gguf", NULL);
  speech.vocoder = g_build_filename (dir, "vocoder-audio-tiny.gguf", NULL);
  speech.tokenizer = g_build_filename (dir, "tokenizer-audio-tiny.gguf", NULL);
  {
    gchar *args[] = { "mkmodel", "--config", "audio-tiny", "--type", "q8_0", "-o", speech.model,
      "--mmproj-out", speech.mmproj, "--mmproj-type", "f16", "--vocoder-out", speech.vocoder,
      "--tokenizer-out", speech.tokenizer, "--threads", "2"
    };
    if (cmd_mkmodel (G_N_ELEMENTS (args), args) != 0)
      g_error ("lfm2 mkmodel failed: %s", lfm2_last_error ());
  }
  speech.m = lfm2_model_load (speech.model, lfm2_model_default_params ());
  speech.v = lfm2_vocoder_load (speech.vocoder, lfm2_vocoder_default_params ());
  speech.t = lfm2_audio_tokenizer_load (speech.tokenizer, lfm2_audio_tokenizer_default_params ());
  if (speech.m == NULL || speech.v == NULL || speech.t == NULL)
    g_error ("loading the generated set: %s", lfm2_last_error ());
}

/* ---- the library's run ------------------------------------------------------------- */

SpeechRefParams
speech_ref_params (const gchar * text)
{
  SpeechRefParams p = {
    .mode = LFM2_TTS_SEQUENTIAL, .voice = LFM2_TTS_VOICE_US_FEMALE, .system_prompt = NULL,
    .temperature = 0.0f, .top_k = 64, .seed = 0, .n_predict = -1, .vocode = TRUE,
    .text = text,
  };
  return p;
}

void
speech_ref_run (SpeechRef * r, const SpeechRefParams * p)
{
  struct lfm2_tts_params tp = lfm2_tts_default_params ();
  struct lfm2_tts_part parts[2] = { {0}, {0} };
  struct lfm2_tts_event ev;
  gint n_parts = 0;
  GArray *x = g_array_new (FALSE, FALSE, sizeof (gfloat));
  GArray *codes = g_array_new (FALSE, FALSE, sizeof (gint32));
  lfm2_tts *tts;
  gint rc;

  tp.mode = p->mode;
  tp.voice = p->voice;
  tp.system_prompt = p->system_prompt;
  tp.audio_temperature = p->temperature;
  tp.audio_top_k = p->top_k;
  tp.seed = p->seed;
  tp.n_predict = p->n_predict;
  tp.vocode = p->vocode;
  tp.n_threads = 2;
  tts = lfm2_tts_new (speech.m, speech.v, p->vocode ? speech.t : NULL, tp);
  if (tts == NULL)
    g_error ("lfm2_tts_new: %s", lfm2_last_error ());
  if (p->text) {
    parts[n_parts++].text = p->text;
  } else {
    if (p->prompt)
      parts[n_parts++].text = p->prompt;
    parts[n_parts].embd = p->embd;
    parts[n_parts++].n_embd_rows = p->n_rows;
  }
  if (lfm2_tts_begin (tts, parts, n_parts) != 0)
    g_error ("lfm2_tts_begin: %s", lfm2_last_error ());
  memset (r, 0, sizeof (*r));
  r->text = g_string_new (NULL);
  while ((rc = lfm2_tts_step (tts, &ev)) > 0) {
    if (ev.kind == LFM2_TTS_EVENT_TEXT)
      g_string_append (r->text, ev.text);
    if (ev.kind == LFM2_TTS_EVENT_AUDIO) {
      g_array_append_vals (codes, ev.codes, lfm2_vocoder_get_hparams (speech.v)->n_codebooks);
      r->n_frames++;
    }
    if (ev.n_samples > 0)
      g_array_append_vals (x, ev.samples, ev.n_samples);
  }
  if (rc < 0)
    g_error ("lfm2_tts_step: %s", lfm2_last_error ());
  lfm2_tts_free (tts);
  r->n = x->len;
  r->x = (gfloat *) g_array_free (x, FALSE);
  r->codes = (gint32 *) g_array_free (codes, FALSE);
}

void
speech_ref_clear (SpeechRef * r)
{
  g_free (r->x);
  g_free (r->codes);
  if (r->text)
    g_string_free (r->text, TRUE);
  memset (r, 0, sizeof (*r));
}

/* ---- speech in --------------------------------------------------------------------- */

gfloat *
speech_load_clip (const gchar * name, gint64 * n)
{
  gchar *path = g_build_filename (g_getenv ("LFM2_TEST_DATA"), "audio", "wav", name, NULL);
  float *pcm = NULL;
  gfloat *copy;

  if (lfm2_audio_load_file (path, &pcm, n, NULL) != 0)
    g_error ("%s", lfm2_last_error ());
  copy = g_memdup2 (pcm, (gsize) * n * sizeof (gfloat));
  free (pcm);
  g_free (path);
  return copy;
}

gint
speech_utterances (const gfloat * pcm, gint64 n, gint min_silence_ms, SpeechUtterance ** out)
{
  struct lfm2_vad_params vp = lfm2_vad_default_params ();
  struct lfm2_audio_params ap = lfm2_audio_default_params ();
  GArray *utts = g_array_new (FALSE, FALSE, sizeof (SpeechUtterance));
  struct lfm2_vad_segment seg;
  lfm2_audio *enc;
  lfm2_vad *vad;

  vp.min_silence_ms = min_silence_ms;
  ap.n_threads = 2;
  vad = lfm2_vad_new (&vp);
  enc = lfm2_audio_load (speech.mmproj, ap);
  g_assert (vad != NULL && enc != NULL);
  for (gint64 i = 0; i <= n; i += 1600) {
    if (i < n)
      lfm2_vad_push (vad, pcm + i, MIN (1600, n - i));
    else
      lfm2_vad_flush (vad);
    while (lfm2_vad_pop (vad, &seg)) {
      SpeechUtterance u = { seg.start, seg.end, NULL, (gint) lfm2_audio_n_tokens (seg.n) };
      const gsize cap = (gsize) u.n_rows * lfm2_audio_n_embd_out (enc);

      u.embd = g_new (gfloat, cap);
      g_assert (lfm2_audio_encode (enc, seg.pcm, seg.n, u.embd, cap) == u.n_rows);
      g_array_append_val (utts, u);
    }
  }
  lfm2_vad_free (vad);
  lfm2_audio_free (enc);
  {
    const gint count = (gint) utts->len;
    *out = (SpeechUtterance *) g_array_free (utts, FALSE);
    return count;
  }
}

/* ---- bad vocoders ------------------------------------------------------------------ */

gchar *
speech_vocoder_variant (const gchar * file, const gchar * drop, const gchar * reshape,
    gint64 ne0, gint64 ne1)
{
  lfm2_gguf *g = lfm2_gguf_open (speech.vocoder, TRUE);
  lfm2_gguf_writer *w = lfm2_gguf_writer_new ();
  gchar *path = g_build_filename (speech.dir, file, NULL), arch[256];
  gint64 v;

  g_assert (g != NULL);
  /* the vocoder's three keys */
  g_assert (lfm2_gguf_get_str_buf (g, "general.architecture", arch, sizeof (arch)) > 0);
  lfm2_gguf_set_str (w, "general.architecture", arch);
  g_assert (lfm2_gguf_get_int (g, "depthformer_n_layer", &v) > 0);
  lfm2_gguf_set_u32 (w, "depthformer_n_layer", (guint32) v);
  g_assert (lfm2_gguf_get_int (g, "depthformer_n_embd", &v) > 0);
  lfm2_gguf_set_u32 (w, "depthformer_n_embd", (guint32) v);
  for (gint64 i = 0; i < lfm2_gguf_n_tensors (g); i++) {
    const lfm2_tensor *t = lfm2_gguf_tensor (g, i);

    if (drop && g_str_equal (t->name, drop))
      continue;
    if (reshape && g_str_equal (t->name, reshape)) {
      int64_t ne[4] = { ne0 ? ne0 : t->ne[0], ne1, 1, 1 };
      guint8 *data = g_malloc0 (lfm2_row_bytes (t->type, ne[0]) * (gsize) ne1);

      lfm2_gguf_add_tensor (w, t->name, t->type, 2, ne, data);
      g_free (data);
      continue;
    }
    lfm2_gguf_add_tensor (w, t->name, t->type, t->n_dims, t->ne, t->data);
  }
  if (lfm2_gguf_writer_write (w, path) != 0)
    g_error ("%s", lfm2_last_error ());
  lfm2_gguf_writer_free (w);
  lfm2_gguf_close (g);
  return path;
}

/* ---- what a harness received ------------------------------------------------------- */

void
speech_capture_init (SpeechCapture * c)
{
  c->x = g_array_new (FALSE, FALSE, sizeof (gfloat));
  c->codes = g_array_new (FALSE, FALSE, sizeof (gint32));
  c->pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  c->dur = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  c->n = g_array_new (FALSE, FALSE, sizeof (gint64));
  c->n_buffers = c->n_discont = 0;
}

void
speech_capture_clear (SpeechCapture * c)
{
  g_array_unref (c->x);
  g_array_unref (c->codes);
  g_array_unref (c->pts);
  g_array_unref (c->dur);
  g_array_unref (c->n);
}

void
speech_capture_append (SpeechCapture * c, GstBuffer * b, const GstStructure * s)
{
  const gchar *format = gst_structure_get_string (s, "format");
  GstClockTime pts = GST_BUFFER_PTS (b), dur = GST_BUFFER_DURATION (b);
  GstMapInfo map;
  gint64 n;

  fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
  if (gst_structure_has_name (s, "other/tensors")) {
    n = (gint64) (map.size / sizeof (gint32));
    g_array_append_vals (c->codes, map.data, (guint) n);
  } else if (g_str_equal (format, "S16LE")) {
    n = (gint64) (map.size / 2);
    for (gint64 i = 0; i < n; i++) {
      gfloat v = ((const gint16 *) map.data)[i];
      g_array_append_val (c->x, v);
    }
  } else {
    n = (gint64) (map.size / 4);
    g_array_append_vals (c->x, map.data, (guint) n);
  }
  gst_buffer_unmap (b, &map);
  g_array_append_val (c->pts, pts);
  g_array_append_val (c->dur, dur);
  g_array_append_val (c->n, n);
  c->n_buffers++;
  c->n_discont += GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT);
}

void
speech_capture_pull (GstHarness * h, SpeechCapture * c)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  GstBuffer *b;

  fail_unless (caps != NULL, "no caps on the harness");
  while ((b = gst_harness_try_pull (h)) != NULL) {
    speech_capture_append (c, b, gst_caps_get_structure (caps, 0));
    gst_buffer_unref (b);
  }
  gst_caps_unref (caps);
}

void
speech_capture_check_continuous (const SpeechCapture * c, GstClockTime start, gboolean codes)
{
  guint64 done = 0;             /* samples, or frames × 1920 */

  for (guint i = 0; i < c->n_buffers; i++) {
    const GstClockTime pts = g_array_index (c->pts, GstClockTime, i);
    const GstClockTime dur = g_array_index (c->dur, GstClockTime, i);
    const gint64 n = g_array_index (c->n, gint64, i);
    const guint64 len = codes ? (dur == 0 ? 0 : 1920) : (guint64) n;
    const GstClockTime want = start + gst_util_uint64_scale_int (done, GST_SECOND, 24000);
    const GstClockTime want_end = start + gst_util_uint64_scale_int (done + len, GST_SECOND,
        24000);

    fail_unless_equals_uint64 (pts, want);
    fail_unless_equals_uint64 (pts + dur, want_end);
    done += len;
  }
}

GstMessage *
speech_pop_message (GstBus * bus, const gchar * name)
{
  GstMessage *m;

  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    if (gst_structure_has_name (gst_message_get_structure (m), name))
      return m;
    gst_message_unref (m);
  }
  return NULL;
}

/* ---- elements and harnesses -------------------------------------------------------- */

GstElement *
speech_element_new (const gchar * factory, const gchar * first, ...)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  const gchar *files[4][2] = {
    {"model", speech.model}, {"mmproj", speech.mmproj}, {"vocoder", speech.vocoder},
    {"tokenizer", speech.tokenizer},
  };
  va_list args;

  fail_unless (e != NULL, "%s not found (GST_PLUGIN_PATH_1_0=%s)", factory,
      g_getenv ("GST_PLUGIN_PATH_1_0"));
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (e), files[i][0]))
      g_object_set (e, files[i][0], files[i][1], NULL);
  g_object_set (e, "n-threads", 2, NULL);
  if (first) {
    va_start (args, first);
    g_object_set_valist (G_OBJECT (e), first, args);
    va_end (args);
  }
  return e;
}

GstHarness *
speech_harness (GstElement * e, const gchar * in, const gchar * out, GstBus ** bus)
{
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");

  *bus = gst_bus_new ();
  gst_element_set_bus (h->element, *bus);
  gst_object_unref (e);
  gst_harness_set_sink_caps_str (h, out);
  gst_harness_set_src_caps_str (h, in);
  return h;
}

void
speech_harness_done (GstHarness * h, GstBus * bus)
{
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

void
speech_check_start_error (GstElement * e, gint code, const gchar * n1, const gchar * n2)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err;
  gchar *dbg;

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error");
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, code), "%s (%d)", err->message,
      err->code);
  fail_unless (n1 == NULL || strstr (err->message, n1), "'%s' lacks '%s'", err->message, n1);
  fail_unless (n2 == NULL || strstr (err->message, n2), "'%s' lacks '%s'", err->message, n2);
  GST_INFO ("%s (%s)", err->message, dbg);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}
