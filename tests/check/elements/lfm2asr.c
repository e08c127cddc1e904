/* tests/check/elements/lfm2asr.c — the lfm2asr element from the plugin module
 * (build/plugins/libgstlfm2.so) through GstHarness with a live test clock: metadata and caps,
 * final text with the timestamps of its speech, partials before their final, GAP events over
 * silence, the LATENCY query, EOS flushing the last words, flushing, a live source never
 * blocked (finals kept, partials skipped) and a non-live one held back, silence and quiet
 * noise giving no text, clipped / NaN / Inf samples, a rate change mid-stream, 0-length
 * buffers, two hours of silence in bounded memory, errors at READY→PAUSED, state cycling.
 *
 * Expected texts come from ref_transcript(): the audio library's voice-activity detector and
 * encoder (lfm2_vad, lfm2_audio_encode) on the same samples and the engine's sampler through
 * tests/check/lfm2-ref.c, with the ASR prompt written out literally (and checked against
 * lfm2_audio_prompt_prefix/suffix, llama.cpp's layout) — no plugin code. The tiny models have
 * random weights: greedy decoding with a strong repetition penalty gives gibberish, but
 * different gibberish for different audio. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsrc.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/resource.h>

#include "audio-check.h"
#include "lfm2-audio.h"
#include "lfm2-ref.h"

#define N_THREADS 2
#define MAX_TOKENS 12
#define REPEAT_PENALTY 2.0f
#define RATE AUDIO_CHECK_RATE
#define BUF_MS 20
#define S16_CAPS AUDIO_CHECK_S16_CAPS
#define T0 (10 * GST_SECOND)    /* PTS of the first sample */

static gchar *model_path, *mmproj_path, *data_dir;
static lfm2_model *model;
static lfm2_audio *audio_ctx;
static gfloat *speech, *speech_long, *noise;    /* 16 kHz mono clips */
static gint64 n_speech, n_speech_long, n_noise;

/* Loaded on first use, in the test's own process: check forks a child per test, and the
 * encoder's thread pool must not exist before the fork. */
static lfm2_audio *
get_audio (void)
{
  if (audio_ctx == NULL) {
    struct lfm2_audio_params ap = lfm2_audio_default_params ();
    ap.n_threads = N_THREADS;
    audio_ctx = lfm2_audio_load (mmproj_path, ap);
    if (audio_ctx == NULL)
      g_error ("%s: %s", mmproj_path, lfm2_last_error ());
  }
  return audio_ctx;
}

/* ---- references ---------------------------------------------------------------------- */

static struct lfm2_sampler_params
sampling (void)
{
  struct lfm2_sampler_params p = lfm2_sampler_default_params ();
  p.temperature = 0.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.15f;
  p.repeat_penalty = REPEAT_PENALTY;
  p.seed = 0;
  return p;
}

/* lfm2asr's text rule: invalid UTF-8 becomes U+FFFD, control bytes and white space runs one
 * space, none at the ends. */
static gchar *
one_line (const gchar * raw)
{
  GString *o = g_string_new (NULL);
  gboolean space = TRUE;
  gchar *valid = g_utf8_make_valid (raw, -1);
  const gchar *s;

  for (s = valid; *s; s++) {
    if ((guchar) * s <= ' ' || *s == 0x7f) {
      if (!space)
        g_string_append_c (o, ' ');
      space = TRUE;
    } else {
      g_string_append_c (o, *s);
      space = FALSE;
    }
  }
  if (o->len > 0 && o->str[o->len - 1] == ' ')
    g_string_truncate (o, o->len - 1);
  g_free (valid);
  return g_string_free (o, FALSE);
}

static gint32
tokenize (const gchar * text, gboolean bos, lfm2_token * out, gint32 n_max)
{
  return lfm2_tokenize (model, text, (gint32) strlen (text), out, n_max, bos, TRUE);
}

/* The transcript of n samples: encoder, then BOS + system turn, "<|im_start|>user\n", the
 * rows, the rest of the turn and the assistant prompt (the batches lfm2asr uses, so the
 * comparison does not rest on the engine being batch-invariant), greedy. */
static gchar *
ref_transcript (const gfloat * pcm, gint64 n)
{
  const gint E = lfm2_audio_n_embd_out (get_audio ());
  const gint64 n_tok = lfm2_audio_n_tokens (n);
  const gchar *system = "<|im_start|>system\nPerform ASR.<|im_end|>\n";
  const gchar *user = "<|im_start|>user\n";
  const gchar *suffix = "<|im_end|>\n<|im_start|>assistant\n";
  gfloat *embd = g_new (gfloat, n_tok * E);
  RefParams rp = { N_THREADS, MAX_TOKENS, sampling () };
  RefPart parts[4] = { {system, NULL, 0}, {user, NULL, 0}, {NULL, embd, (gint) n_tok},
  {suffix, NULL, 0}
  };
  lfm2_token a[64], b[64];
  gint32 na, nb;
  gchar *raw, *text;

  fail_unless (lfm2_audio_encode (get_audio (), pcm, n, embd, (gsize) n_tok * E) == n_tok,
      "%s", lfm2_last_error ());
  /* the written-out layout is llama.cpp's (lfm2_audio_prompt_prefix/suffix) */
  na = lfm2_audio_prompt_prefix (model, NULL, a, 64);
  nb = tokenize (system, TRUE, b, 64);
  nb += tokenize (user, FALSE, b + nb, 64 - nb);
  fail_unless (na > 0 && na == nb);
  fail_unless (memcmp (a, b, sizeof (lfm2_token) * na) == 0);
  na = lfm2_audio_prompt_suffix (model, a, 64);
  nb = tokenize (suffix, FALSE, b, 64);
  fail_unless (na > 0 && na == nb && memcmp (a, b, sizeof (lfm2_token) * na) == 0);

  raw = ref_generate (model, parts, 4, &rp, NULL, NULL);
  text = one_line (raw);
  g_free (raw);
  g_free (embd);
  return text;
}

/* The utterances the library's detector finds in a stream (flushed at its end if `eos`). */
typedef struct {
  gint64 start, end;
  gchar *text;
} RefUtt;

static GArray *
ref_utterances (const gfloat * x, gint64 n, gboolean eos)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (RefUtt));
  lfm2_vad *vad = lfm2_vad_new (NULL);
  struct lfm2_vad_segment seg;

  fail_unless (vad != NULL);
  for (gint64 i = 0; i < n + RATE; i += RATE) {
    if (i < n)
      fail_unless (lfm2_vad_push (vad, x + i, MIN (RATE, n - i)) >= 0);
    else if (eos)
      lfm2_vad_flush (vad);
    while (lfm2_vad_pop (vad, &seg)) {
      RefUtt u = { seg.start, seg.end, ref_transcript (seg.pcm, seg.n) };
      g_array_append_val (a, u);
    }
  }
  lfm2_vad_free (vad);
  return a;
}

static void
ref_utterances_free (GArray * a)
{
  for (guint i = 0; i < a->len; i++)
    g_free (g_array_index (a, RefUtt, i).text);
  g_array_unref (a);
}

static GstClockTime
sample_time (gint64 s)
{
  return gst_util_uint64_scale_int (s, GST_SECOND, RATE);
}

/* ---- streams -------------------------------------------------------------------------- */

/* A stream of clips and silences: parts given as (samples, n) with NULL samples = silence. */
static gfloat *
concat (gint64 * n_out, ...)
{
  va_list ap;
  gint64 n = 0;
  const gfloat *p;
  gfloat *x = NULL;

  va_start (ap, n_out);
  while ((p = va_arg (ap, const gfloat *)) != (const gfloat *) 1) {
    gint64 k = va_arg (ap, gint64);
    x = g_renew (gfloat, x, n + k);
    if (p)
      memcpy (x + n, p, sizeof (gfloat) * k);
    else
      memset (x + n, 0, sizeof (gfloat) * k);
    n += k;
  }
  va_end (ap);
  *n_out = n;
  return x;
}

#define END ((const gfloat *) 1)


/* ---- the element through a harness ----------------------------------------------------- */

typedef struct {
  GstElement *e;
  GstHarness *h;
  GstBus *bus;
  /* what src pushed and the element posted, in order: "B<pts>+<dur>:<text>" buffers,
   * "G<start>+<dur>" gaps, "F<start>:<text>" / "P<start>:<text>" transcript messages,
   * event names */
  GMutex lock;
  GCond cond;
  GPtrArray *log;
  GPtrArray *messages;          /* the lfm2asr/transcript structures */
  gboolean blocked;
  gulong log_probe, block_probe;
} Asr;

static GstElement *
make_asr (const gchar * first, ...)
{
  GstElement *e = gst_element_factory_make ("lfm2asr", NULL);
  va_list args;

  fail_unless (e != NULL, "lfm2asr not found (GST_PLUGIN_PATH_1_0=%s)",
      g_getenv ("GST_PLUGIN_PATH_1_0"));
  g_object_set (e, "model", model_path, "mmproj", mmproj_path, "n-threads", N_THREADS,
      "max-tokens", MAX_TOKENS, "repeat-penalty", REPEAT_PENALTY, NULL);
  if (first) {
    va_start (args, first);
    g_object_set_valist (G_OBJECT (e), first, args);
    va_end (args);
  }
  return e;
}

static void
log_add (Asr * a, gchar * entry)
{
  g_mutex_lock (&a->lock);
  g_ptr_array_add (a->log, entry);
  g_cond_broadcast (&a->cond);
  g_mutex_unlock (&a->lock);
}

static GstPadProbeReturn
log_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Asr *a = data;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
    GstMapInfo map;

    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    log_add (a, g_strdup_printf ("B%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT ":%.*s",
            (guint64) GST_BUFFER_PTS (b), (guint64) GST_BUFFER_DURATION (b),
            (int) map.size, (const gchar *) map.data));
    gst_buffer_unmap (b, &map);
  } else {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime ts, dur;
      gst_event_parse_gap (ev, &ts, &dur);
      log_add (a, g_strdup_printf ("G%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT,
              (guint64) ts, (guint64) dur));
    } else {
      log_add (a, g_strdup (GST_EVENT_TYPE_NAME (ev)));
    }
  }
  return GST_PAD_PROBE_OK;
}

static GstBusSyncReply
on_message (GstBus * bus, GstMessage * m, gpointer data)
{
  Asr *a = data;
  const GstStructure *s = gst_message_get_structure (m);

  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT
      && gst_structure_has_name (s, "lfm2asr/transcript")) {
    gboolean final;
    guint64 start;

    fail_unless (gst_structure_get_boolean (s, "is-final", &final));
    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    g_mutex_lock (&a->lock);
    g_ptr_array_add (a->messages, gst_structure_copy (s));
    g_mutex_unlock (&a->lock);
    log_add (a, g_strdup_printf ("%c%" G_GUINT64_FORMAT ":%s", final ? 'F' : 'P', start,
            gst_structure_get_string (s, "text")));
    gst_message_unref (m);      /* a sync handler that drops a message frees it */
    return GST_BUS_DROP;
  }
  return GST_BUS_PASS;          /* errors and warnings stay for the test to pop */
}

static GstPadProbeReturn
block_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Asr *a = data;

  g_mutex_lock (&a->lock);
  a->blocked = TRUE;
  g_cond_broadcast (&a->cond);
  g_mutex_unlock (&a->lock);
  return GST_PAD_PROBE_OK;      /* stays blocked until the probe is removed */
}

static void
asr_open (Asr * a, GstElement * e, const gchar * caps, gboolean live)
{
  GstPad *src;

  memset (a, 0, sizeof (*a));
  g_mutex_init (&a->lock);
  g_cond_init (&a->cond);
  a->log = g_ptr_array_new_with_free_func (g_free);
  a->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_structure_free);
  a->e = e;
  a->bus = gst_bus_new ();
  gst_bus_set_sync_handler (a->bus, on_message, a, NULL);
  gst_element_set_bus (e, a->bus);
  src = gst_element_get_static_pad (e, "src");
  a->log_probe = gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH, log_probe, a,
      NULL);
  gst_object_unref (src);
  a->h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);         /* the harness holds it */
  gst_harness_use_testclock (a->h);
  gst_harness_set_live (a->h, live);
  if (caps)
    gst_harness_set_src_caps_str (a->h, caps);
}

/* Holds the worker in its next text push. */
static void
asr_block (Asr * a)
{
  GstPad *src = gst_element_get_static_pad (a->e, "src");

  a->blocked = FALSE;
  a->block_probe = gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_BLOCK, block_probe, a, NULL);
  gst_object_unref (src);
}

static void
asr_wait_blocked (Asr * a)
{
  g_mutex_lock (&a->lock);
  while (!a->blocked)
    g_cond_wait (&a->cond, &a->lock);
  g_mutex_unlock (&a->lock);
}

static void
asr_unblock (Asr * a)
{
  GstPad *src = gst_element_get_static_pad (a->e, "src");

  gst_pad_remove_probe (src, a->block_probe);
  a->block_probe = 0;
  gst_object_unref (src);
}

static guint
count_prefix_locked (Asr * a, const gchar * prefix)
{
  guint k = 0;

  for (guint i = 0; i < a->log->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (a->log, i), prefix))
      k++;
  return k;
}

/* Waits for the log to have at least n entries starting with `prefix` ("B", "F", "eos"). */
static void
asr_wait_log (Asr * a, const gchar * prefix, guint n)
{
  g_mutex_lock (&a->lock);
  while (count_prefix_locked (a, prefix) < n)
    g_cond_wait (&a->cond, &a->lock);
  g_mutex_unlock (&a->lock);
}

static guint
asr_count (Asr * a, const gchar * prefix)
{
  guint k;

  g_mutex_lock (&a->lock);
  k = count_prefix_locked (a, prefix);
  g_mutex_unlock (&a->lock);
  return k;
}

/* The log entries starting with one of the characters of `kinds` ('e' for "eos"; stream-start,
 * caps and segment are never asked for), as an array of strings. */
static GPtrArray *
asr_entries (Asr * a, const gchar * kinds)
{
  GPtrArray *r = g_ptr_array_new_with_free_func (g_free);

  g_mutex_lock (&a->lock);
  for (guint i = 0; i < a->log->len; i++) {
    const gchar *e = g_ptr_array_index (a->log, i);
    if (strchr (kinds, e[0]))
      g_ptr_array_add (r, g_strdup (e));
  }
  g_mutex_unlock (&a->lock);
  return r;
}

static GstStructure *
asr_stats (Asr * a)
{
  GstStructure *st;

  g_object_get (a->e, "stats", &st, NULL);
  return st;
}

static guint64
stat_u64 (GstStructure * st, const gchar * name)
{
  guint64 v;

  fail_unless (gst_structure_get_uint64 (st, name, &v), "no %s", name);
  return v;
}

static gint64
stat_i64 (GstStructure * st, const gchar * name)
{
  gint64 v;

  fail_unless (gst_structure_get_int64 (st, name, &v), "no %s", name);
  return v;
}

static void
asr_close (Asr * a)
{
  GstPad *src = gst_element_get_static_pad (a->e, "src");

  if (a->block_probe)
    gst_pad_remove_probe (src, a->block_probe);
  gst_pad_remove_probe (src, a->log_probe);
  gst_object_unref (src);
  gst_harness_teardown (a->h);
  gst_bus_set_flushing (a->bus, TRUE);
  gst_object_unref (a->bus);
  g_ptr_array_unref (a->log);
  g_ptr_array_unref (a->messages);
  g_mutex_clear (&a->lock);
  g_cond_clear (&a->cond);
}

/* Pushes samples [from, to) of x in BUF_MS buffers. */
static void
push_range (Asr * a, const gfloat * x, gint64 from, gint64 to)
{
  const gint64 step = RATE * BUF_MS / 1000;

  for (gint64 i = from; i < to; i += step)
    fail_unless_equals_int (gst_harness_push (a->h, audio_check_s16_buffer (x, i, MIN (step, to - i), T0)),
        GST_FLOW_OK);
}

/* The buffer entry a final utterance [start, end) must give. */
static gchar *
buffer_entry (const RefUtt * u)
{
  return g_strdup_printf ("B%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT ":%s",
      (guint64) (T0 + sample_time (u->start)),
      (guint64) (sample_time (u->end) - sample_time (u->start)), u->text);
}

/* ---- tests ---------------------------------------------------------------------------- */

GST_START_TEST (test_metadata_and_properties)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2asr");
  GstElement *e;
  struct {
    const gchar *name;
    GParamFlags flag;
  } expected[] = {
    {"model", GST_PARAM_MUTABLE_READY}, {"mmproj", GST_PARAM_MUTABLE_READY},
    {"frontend", GST_PARAM_MUTABLE_READY}, {"vad-threshold", GST_PARAM_MUTABLE_READY},
    {"min-silence", GST_PARAM_MUTABLE_READY}, {"max-segment", GST_PARAM_MUTABLE_READY},
    {"step", GST_PARAM_MUTABLE_PLAYING}, {"latency", GST_PARAM_MUTABLE_PLAYING},
    {"inference-nice", GST_PARAM_MUTABLE_READY},
    {"system-prompt", GST_PARAM_MUTABLE_PLAYING}, {"max-tokens", GST_PARAM_MUTABLE_PLAYING},
    {"temperature", GST_PARAM_MUTABLE_PLAYING}, {"top-k", GST_PARAM_MUTABLE_PLAYING},
    {"top-p", GST_PARAM_MUTABLE_PLAYING}, {"min-p", GST_PARAM_MUTABLE_PLAYING},
    {"repeat-penalty", GST_PARAM_MUTABLE_PLAYING}, {"seed", GST_PARAM_MUTABLE_PLAYING},
    {"n-threads", GST_PARAM_MUTABLE_READY}, {"context-length", GST_PARAM_MUTABLE_READY},
  };
  GParamSpec *p;
  gchar *system;
  gfloat temp, thr;
  guint step, latency;
  gint max_segment, min_silence;
  GstStructure *st;

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_plugin_feature_get_plugin_name (GST_PLUGIN_FEATURE (f)),
      "lfm2");
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Converter/Audio/Text");
  fail_unless_equals_int (gst_element_factory_get_num_pad_templates (f), 2);
  e = gst_element_factory_create (f, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), expected[i].name);
    fail_unless (p != NULL, "no property %s", expected[i].name);
    fail_unless (p->flags & expected[i].flag, "%s mutability", expected[i].name);
    fail_unless (strlen (g_param_spec_get_blurb (p)) > 10);
  }
  p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "frontend");
  fail_unless_equals_string (g_enum_get_value (G_PARAM_SPEC_ENUM (p)->enum_class,
          G_PARAM_SPEC_ENUM (p)->default_value)->value_nick, "official");
  fail_unless (g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (p)->enum_class,
          "llamacpp") != NULL);
  /* LFM2-Audio's ASR setup by default: "Perform ASR.", greedy */
  g_object_get (e, "system-prompt", &system, "temperature", &temp, "step", &step,
      "latency", &latency, "vad-threshold", &thr, "max-segment", &max_segment,
      "min-silence", &min_silence, NULL);
  fail_unless_equals_string (system, "Perform ASR.");
  fail_unless_equals_float (temp, 0.0f);
  fail_unless_equals_int (step, 1000);
  fail_unless_equals_int (latency, 5000);
  fail_unless_equals_float (thr, 0.5f);
  fail_unless_equals_int (max_segment, 30000);
  fail_unless_equals_int (min_silence, 500);
  g_free (system);
  g_object_get (e, "stats", &st, NULL);
  fail_unless (gst_structure_has_name (st, "lfm2asr/stats"));
  fail_unless_equals_uint64 (stat_u64 (st, "finals"), 0);
  fail_unless_equals_uint64 (stat_u64 (st, "skipped-partials"), 0);
  fail_unless_equals_uint64 (stat_u64 (st, "dropped-finals"), 0);
  gst_structure_free (st);
  p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "stats");
  fail_unless (p != NULL && !(p->flags & G_PARAM_WRITABLE));
  gst_object_unref (e);
  gst_object_unref (f);
}

GST_END_TEST;

static gboolean
accepts (GstHarness * h, const gchar * str)
{
  GstCaps *caps = gst_caps_from_string (str);
  GstPad *sink = gst_element_get_static_pad (h->element, "sink");
  gboolean ok;

  fail_unless (caps != NULL, "bad caps string %s", str);
  ok = gst_pad_query_accept_caps (sink, caps);
  gst_caps_unref (caps);
  gst_object_unref (sink);
  return ok;
}

GST_START_TEST (test_caps)
{
  Asr a;
  const gchar *good[] = {
    S16_CAPS,
    "audio/x-raw, format=F32LE, rate=44100, channels=2, layout=interleaved",
    "audio/x-raw, format=U8, rate=8000, channels=1, layout=interleaved",
    "audio/x-raw, format=S32LE, rate=96000, channels=6, layout=interleaved",
    "audio/x-raw, format=F64LE, rate=1000, channels=64, layout=interleaved",
  };
  const gchar *bad[] = {
    "audio/x-raw, format=S16LE, rate=16000, channels=2, layout=non-interleaved",
    "audio/x-raw, format=S24LE, rate=16000, channels=1, layout=interleaved",
    "audio/x-raw, format=S16LE, rate=800, channels=1, layout=interleaved",
    "audio/x-raw, format=S16LE, rate=16000, channels=65, layout=interleaved",
    "audio/mpeg, mpegversion=1, layer=3",
  };

  asr_open (&a, make_asr (NULL), NULL, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    fail_unless (accepts (a.h, good[i]), "refused %s", good[i]);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    fail_if (accepts (a.h, bad[i]), "accepted %s", bad[i]);
  {
    GstPad *src = gst_element_get_static_pad (a.e, "src");
    GstCaps *c = gst_pad_query_caps (src, NULL), *want =
        gst_caps_from_string ("text/x-raw, format=utf8");
    fail_unless (gst_caps_is_equal (c, want));
    gst_caps_unref (c);
    gst_caps_unref (want);
    gst_object_unref (src);
  }
  asr_close (&a);
}

GST_END_TEST;

/* Silence, speech, silence, the long speech clip, silence: two closed utterances (the long
 * clip cut at 30 s makes a third). Finals carry the timestamps of their speech, GAPs cover
 * the silence before them, the message fields match, and the texts are the reference's. */
GST_START_TEST (test_transcripts_and_timestamps)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) 2 * RATE,
      speech_long, n_speech_long, NULL, (gint64) 2 * RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  GPtrArray *out;
  GstStructure *st;

  fail_unless_equals_int (ref->len, 3);
  fail_if (g_str_equal (g_array_index (ref, RefUtt, 0).text,
          g_array_index (ref, RefUtt, 1).text), "the audio made no difference");
  for (guint i = 0; i < ref->len; i++)
    fail_if (g_array_index (ref, RefUtt, i).text[0] == '\0');

  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  push_range (&a, x, 0, n);
  asr_wait_log (&a, "B", ref->len);

  /* the buffers, in order, with their speech's PTS and duration and the reference text */
  out = asr_entries (&a, "B");
  fail_unless_equals_int (out->len, ref->len);
  for (guint i = 0; i < ref->len; i++) {
    gchar *want = buffer_entry (&g_array_index (ref, RefUtt, i));
    fail_unless_equals_string (g_ptr_array_index (out, i), want);
    g_free (want);
  }
  g_ptr_array_unref (out);

  /* silence before the first utterance went out as GAPs, before its text */
  out = asr_entries (&a, "GB");
  fail_unless (g_str_has_prefix (g_ptr_array_index (out, 0), "G"));
  {
    guint64 ts, dur;
    fail_unless (sscanf (g_ptr_array_index (out, 0), "G%" G_GUINT64_FORMAT "+%"
            G_GUINT64_FORMAT, &ts, &dur) == 2);
    fail_unless_equals_uint64 (ts, 0);   /* from the segment start */
  }
  g_ptr_array_unref (out);

  /* the messages: final, running time of the speech (segment from 0: = PTS), audio-ms */
  g_mutex_lock (&a.lock);
  fail_unless_equals_int (a.messages->len, ref->len);
  for (guint i = 0; i < ref->len; i++) {
    const RefUtt *u = &g_array_index (ref, RefUtt, i);
    GstStructure *s = g_ptr_array_index (a.messages, i);
    gboolean final;
    guint64 start, end;
    gdouble audio_ms, inference_ms;

    fail_unless (gst_structure_get_boolean (s, "is-final", &final) && final);
    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    fail_unless (gst_structure_get_uint64 (s, "end", &end));
    fail_unless (gst_structure_get_double (s, "audio-ms", &audio_ms));
    fail_unless (gst_structure_get_double (s, "inference-ms", &inference_ms));
    fail_unless_equals_uint64 (start, T0 + sample_time (u->start));
    fail_unless_equals_uint64 (end, T0 + sample_time (u->end));
    fail_unless (fabs (audio_ms - (u->end - u->start) / 16.0) < 1e-6);
    fail_unless (inference_ms > 0);
    fail_unless (g_utf8_validate (gst_structure_get_string (s, "text"), -1, NULL));
    fail_unless_equals_string (gst_structure_get_string (s, "text"), u->text);
  }
  g_mutex_unlock (&a.lock);

  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "finals"), ref->len);
  fail_unless_equals_uint64 (stat_u64 (st, "partials"), 0);
  fail_unless_equals_uint64 (stat_u64 (st, "buffers"), (n + 319) / 320);
  fail_unless_equals_uint64 (stat_u64 (st, "discontinuities"), 0);
  gst_structure_free (st);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* Partial results of an open utterance come as messages (is-final=FALSE) with the text of
 * the audio so far, all before the final of that utterance. */
GST_START_TEST (test_partials_then_final)
{
  Asr a;
  gint64 n, half;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  const RefUtt *u;
  GPtrArray *out;
  guint n_partial = 0;

  fail_unless_equals_int (ref->len, 1);
  u = &g_array_index (ref, RefUtt, 0);
  asr_open (&a, make_asr ("step", 500, NULL), S16_CAPS, TRUE);
  /* half the speech, then wait for a partial before the rest */
  half = RATE + n_speech / 2;
  push_range (&a, x, 0, half);
  asr_wait_log (&a, "P", 1);
  push_range (&a, x, half, n);
  asr_wait_log (&a, "B", 1);

  out = asr_entries (&a, "PFB");
  for (guint i = 0; i < out->len; i++) {
    const gchar *e = g_ptr_array_index (out, i);
    if (e[0] == 'P') {
      fail_unless_equals_int (i, n_partial);    /* partials first */
      n_partial++;
    }
  }
  fail_unless (n_partial >= 1);
  fail_unless_equals_int (out->len, n_partial + 2);
  fail_unless (g_str_has_prefix (g_ptr_array_index (out, n_partial), "F"));
  fail_unless (g_str_has_prefix (g_ptr_array_index (out, n_partial + 1), "B"));
  g_ptr_array_unref (out);

  /* every partial: the utterance's start, the audio so far, the reference text of it */
  g_mutex_lock (&a.lock);
  for (guint i = 0; i < n_partial; i++) {
    GstStructure *s = g_ptr_array_index (a.messages, i);
    guint64 start, end;
    gdouble audio_ms;
    gint64 k;
    gchar *want;

    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    fail_unless (gst_structure_get_uint64 (s, "end", &end));
    fail_unless (gst_structure_get_double (s, "audio-ms", &audio_ms));
    fail_unless_equals_uint64 (start, T0 + sample_time (u->start));
    k = (gint64) llround (audio_ms * 16.0);
    fail_unless (k >= RATE / 2 && u->start + k < u->end, "partial of %" G_GINT64_FORMAT, k);
    fail_unless_equals_uint64 (end, T0 + sample_time (u->start + k));
    want = ref_transcript (x + u->start, k);
    fail_unless_equals_string (gst_structure_get_string (s, "text"), want);
    g_free (want);
  }
  g_mutex_unlock (&a.lock);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* The final's text is computed as soon as the utterance's trailing padding is in (the
 * library's lfm2_vad_pending), before min-silence confirms the end: the final then goes out
 * at once when the detector closes the utterance, with the same text and timestamps. */
GST_START_TEST (test_early_final)
{
  Asr a;
  gint64 n, at;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  const RefUtt *u;
  lfm2_vad *vad = lfm2_vad_new (NULL);
  struct lfm2_vad_segment seg;
  GPtrArray *out;
  GstStructure *st;
  gchar *want;

  fail_unless_equals_int (ref->len, 1);
  u = &g_array_index (ref, RefUtt, 0);
  /* the library: pending from the end of the padding on, equal to what closes later. The
   * utterance ends at most pad-ms (200) after its last speech frame, less the digital silence
   * after it; it closes min-silence (500) after that frame. */
  at = u->end + RATE / 4;
  fail_unless (lfm2_vad_push (vad, x, u->end - 160) >= 0);
  fail_if (lfm2_vad_pending (vad, &seg));
  fail_unless (lfm2_vad_push (vad, x + u->end - 160, at - (u->end - 160)) == 0);
  fail_unless (lfm2_vad_pending (vad, &seg));
  fail_unless_equals_int64 (seg.start, u->start);
  fail_unless_equals_int64 (seg.end, u->end);
  lfm2_vad_free (vad);

  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  push_range (&a, x, 0, at);
  g_usleep (G_USEC_PER_SEC);    /* the worker transcribes the early final meanwhile */
  fail_unless_equals_int (asr_count (&a, "F"), 0);
  push_range (&a, x, at, n);
  asr_wait_log (&a, "B", 1);
  out = asr_entries (&a, "B");
  want = buffer_entry (u);
  fail_unless_equals_string (g_ptr_array_index (out, 0), want);
  g_free (want);
  g_ptr_array_unref (out);
  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "finals"), 1);
  fail_unless_equals_uint64 (stat_u64 (st, "early-finals"), 1);
  gst_structure_free (st);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  Asr a;
  GstMessage *m;

  asr_open (&a, make_asr (NULL), S16_CAPS, TRUE);
  gst_harness_set_upstream_latency (a.h, 20 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (a.h), 5020 * GST_MSECOND);
  g_object_set (a.e, "latency", 1500, NULL);
  m = gst_bus_pop_filtered (a.bus, GST_MESSAGE_LATENCY);
  fail_unless (m != NULL, "no LATENCY message after a change");
  gst_message_unref (m);
  fail_unless_equals_uint64 (gst_harness_query_latency (a.h), 1520 * GST_MSECOND);
  asr_close (&a);
}

GST_END_TEST;

/* Speech up to the end: EOS closes the utterance; its text goes out before EOS. */
GST_START_TEST (test_eos_flushes_last_words)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE / 2, speech, n_speech, END);
  GArray *ref = ref_utterances (x, n, TRUE);
  GPtrArray *out;
  gchar *want;

  fail_unless_equals_int (ref->len, 1);
  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  push_range (&a, x, 0, n);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_eos ()));
  asr_wait_log (&a, "eos", 1);
  out = asr_entries (&a, "BGe");
  want = buffer_entry (&g_array_index (ref, RefUtt, 0));
  fail_unless (out->len >= 2);
  fail_unless_equals_string (g_ptr_array_index (out, out->len - 2), want);
  fail_unless_equals_string (g_ptr_array_index (out, out->len - 1), "eos");
  g_free (want);
  g_ptr_array_unref (out);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* The worker pushes from a thread of its own at inference-nice (default 10), so a live
 * source is never starved by the model; 0 keeps the process's priority; the application's
 * thread is never touched. */
static GstPadProbeReturn
nice_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  g_atomic_int_set ((gint *) data, getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid)));
  return GST_PAD_PROBE_OK;
}

static gint
worker_nice (gint nice)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE / 2, speech, n_speech, END);
  gint seen = G_MININT;
  GstPad *src;
  GstElement *e = nice < 0 ? make_asr ("step", 0, NULL)
      : make_asr ("step", 0, "inference-nice", nice, NULL);

  src = gst_element_get_static_pad (e, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, nice_probe, &seen, NULL);
  gst_object_unref (src);
  asr_open (&a, e, S16_CAPS, TRUE);
  push_range (&a, x, 0, n);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_eos ()));
  asr_wait_log (&a, "eos", 1);
  asr_close (&a);
  g_free (x);
  fail_if (g_atomic_int_get (&seen) == G_MININT, "no text pushed");
  return g_atomic_int_get (&seen);
}

GST_START_TEST (test_inference_priority)
{
  const gint base = getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid));

  if (base + 10 <= 19)
    fail_unless_equals_int (worker_nice (-1), base + 10);
  fail_unless_equals_int (worker_nice (0), base);
  fail_unless_equals_int (getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid)), base);
}

GST_END_TEST;

/* White noise at -30 dBFS, -45 dBFS hum and digital silence: no utterance, no message, no
 * text; the text stream still moves on with GAPs to the end. */
GST_START_TEST (test_silence_and_noise_give_no_text)
{
  Asr a;
  const gint64 n = 20 * RATE;
  gfloat *x = g_new0 (gfloat, n);
  guint32 r = 12345;
  GPtrArray *gaps;
  guint64 ts, dur;
  GstStructure *st;

  for (gint64 i = 0; i < n; i++) {
    r ^= r << 13;
    r ^= r >> 17;
    r ^= r << 5;
    if (i < 8 * RATE)           /* white noise */
      x[i] = 0.0316f * (2.0f * (r >> 8) / (gfloat) (1 << 24) - 1.0f) * 1.7f;
    else if (i < 14 * RATE)     /* the bundled noise clip, quieter */
      x[i] = 0.1f * noise[i % n_noise];
    else if (i < 17 * RATE)     /* 50 Hz hum */
      x[i] = 0.0056f * sinf (2.0f * G_PI * 50.0f * i / RATE);
  }
  {
    GArray *u = ref_utterances (x, n, TRUE);
    fail_unless_equals_int (u->len, 0);
    ref_utterances_free (u);
  }
  asr_open (&a, make_asr (NULL), S16_CAPS, TRUE);
  push_range (&a, x, 0, n);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_eos ()));
  asr_wait_log (&a, "eos", 1);
  fail_unless_equals_int (asr_count (&a, "B"), 0);
  fail_unless_equals_int (a.messages->len, 0);
  gaps = asr_entries (&a, "G");
  fail_unless (gaps->len >= 10);
  fail_unless (sscanf (g_ptr_array_index (gaps, gaps->len - 1),
          "G%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, &ts, &dur) == 2);
  fail_unless_equals_uint64 (ts + dur, T0 + sample_time (n));
  g_ptr_array_unref (gaps);
  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "finals"), 0);
  gst_structure_free (st);
  asr_close (&a);
  g_free (x);
}

GST_END_TEST;

/* F32 input with clipped samples (beyond ±1), NaN and ±Inf inside speech: counted, read as
 * the converter defines them (NaN → 0, beyond ±1 → ±1), and the speech still transcribed. */
GST_START_TEST (test_clipped_and_nonfinite_samples)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE, END);
  gfloat *bad = g_memdup2 (x, sizeof (gfloat) * n), *clean = g_memdup2 (x, sizeof (gfloat) * n);
  GArray *ref;
  GstStructure *st;
  GPtrArray *out;
  gchar *want;
  guint n_nan = 0, n_clip = 0;

  for (gint64 i = RATE; i < RATE + n_speech; i += 97) {
    if (i % 3 == 0) {
      bad[i] = (i % 2) ? NAN : INFINITY;
      clean[i] = isnan (bad[i]) ? 0.0f : 1.0f;
      n_nan++;
    } else {
      bad[i] = x[i] * 40.0f + (x[i] >= 0 ? 1.5f : -1.5f);  /* well beyond full scale */
      clean[i] = bad[i] > 1.0f ? 1.0f : -1.0f;
      n_clip++;
    }
  }
  ref = ref_utterances (clean, n, FALSE);
  /* a random-weight model may say nothing for an utterance: no buffer then */
  for (guint i = ref->len; i-- > 0;)
    if (g_array_index (ref, RefUtt, i).text[0] == '\0') {
      g_free (g_array_index (ref, RefUtt, i).text);
      g_array_remove_index (ref, i);
    }
  fail_unless (ref->len >= 1);

  asr_open (&a, make_asr ("step", 0, NULL),
      "audio/x-raw, format=F32LE, rate=16000, channels=1, layout=interleaved", TRUE);
  for (gint64 i = 0; i < n; i += 320) {
    const gint64 k = MIN (320, n - i);
    GstBuffer *b = gst_buffer_new_memdup (bad + i, sizeof (gfloat) * k);
    GST_BUFFER_PTS (b) = T0 + sample_time (i);
    fail_unless_equals_int (gst_harness_push (a.h, b), GST_FLOW_OK);
  }
  asr_wait_log (&a, "B", ref->len);
  out = asr_entries (&a, "B");
  fail_unless_equals_int (out->len, ref->len);
  for (guint i = 0; i < ref->len; i++) {
    want = buffer_entry (&g_array_index (ref, RefUtt, i));
    fail_unless_equals_string (g_ptr_array_index (out, i), want);
    g_free (want);
  }
  g_ptr_array_unref (out);
  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "nonfinite-samples"), n_nan);
  fail_unless_equals_uint64 (stat_u64 (st, "clipped-samples"), n_clip);
  gst_structure_free (st);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
  g_free (bad);
  g_free (clean);
}

GST_END_TEST;

/* The first half of an utterance at 16 kHz S16 mono, the second at 48 kHz F32 stereo: one
 * utterance, timestamps continuous across the caps change, no discontinuity. */
GST_START_TEST (test_rate_change_mid_stream)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE, END);
  const gint64 cut = RATE + n_speech / 2;
  GArray *ref = ref_utterances (x, n, TRUE);
  GPtrArray *out;
  GstStructure *st;
  guint64 pts, dur;

  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  push_range (&a, x, 0, cut);
  gst_harness_set_src_caps_str (a.h,
      "audio/x-raw, format=F32LE, rate=48000, channels=2, layout=interleaved");
  for (gint64 i = cut; i < n; i += 320) {
    const gint64 k = MIN (320, n - i);
    gfloat *d = g_new (gfloat, k * 3 * 2);
    GstBuffer *b;

    for (gint64 j = 0; j < k * 3; j++)    /* each sample three times, both channels */
      d[2 * j] = d[2 * j + 1] = x[i + j / 3];
    b = gst_buffer_new_wrapped (d, sizeof (gfloat) * k * 6);
    GST_BUFFER_PTS (b) = T0 + sample_time (i);
    GST_BUFFER_DURATION (b) = sample_time (k);
    fail_unless_equals_int (gst_harness_push (a.h, b), GST_FLOW_OK);
  }
  fail_unless (gst_harness_push_event (a.h, gst_event_new_eos ()));
  asr_wait_log (&a, "eos", 1);
  out = asr_entries (&a, "B");
  fail_unless_equals_int (out->len, 1);
  fail_unless (sscanf (g_ptr_array_index (out, 0), "B%" G_GUINT64_FORMAT "+%"
          G_GUINT64_FORMAT, &pts, &dur) == 2);
  /* one utterance around the speech: it starts in the 16 kHz part where the detector finds
   * it in the 16 kHz-only stream, and ends in the 48 kHz part about where it ends there (the
   * resampled audio is not bit for bit the same) */
  fail_unless_equals_int (ref->len, 1);
  fail_unless_equals_uint64 (pts, T0 + sample_time (g_array_index (ref, RefUtt, 0).start));
  fail_unless (ABS ((gint64) (pts + dur) - (gint64) (T0 + sample_time (g_array_index (ref,
                      RefUtt, 0).end))) <= 50 * GST_MSECOND, "ends at %" GST_TIME_FORMAT,
      GST_TIME_ARGS (pts + dur));
  fail_unless (strchr (g_ptr_array_index (out, 0), ':')[1] != '\0', "no text");
  g_ptr_array_unref (out);
  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "discontinuities"), 0);
  gst_structure_free (st);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* 0-length buffers among the audio change nothing; a buffer with a ragged tail is cut to
 * whole frames. */
GST_START_TEST (test_zero_length_buffers)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  GPtrArray *out;
  gchar *want;

  fail_unless_equals_int (ref->len, 1);
  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  for (gint64 i = 0; i < n; i += 320) {
    GstBuffer *e = gst_buffer_new ();
    GST_BUFFER_PTS (e) = T0 + sample_time (i);
    fail_unless_equals_int (gst_harness_push (a.h, e), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_push (a.h, audio_check_s16_buffer (x, i, MIN (320, n - i), T0)),
        GST_FLOW_OK);
  }
  {
    /* 3 bytes: one frame and a stray byte */
    GstBuffer *b = gst_buffer_new_allocate (NULL, 3, NULL);
    gst_buffer_memset (b, 0, 0, 3);
    GST_BUFFER_PTS (b) = T0 + sample_time (n);
    fail_unless_equals_int (gst_harness_push (a.h, b), GST_FLOW_OK);
  }
  asr_wait_log (&a, "B", 1);
  out = asr_entries (&a, "B");
  want = buffer_entry (&g_array_index (ref, RefUtt, 0));
  fail_unless_equals_string (g_ptr_array_index (out, 0), want);
  g_free (want);
  g_ptr_array_unref (out);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* Two hours of silence pushed as fast as the element takes it: the detector holds a
 * constant pre-roll, nothing is queued, the text stream follows with GAPs. */
GST_START_TEST (test_two_hours_of_silence)
{
  Asr a;
  const gint64 per = RATE;      /* 1 s buffers */
  GstBuffer *b = gst_buffer_new_allocate (NULL, per * 2, NULL);
  gint64 max_vad = 0, first_vad = -1;
  GstStructure *st;

  gst_buffer_memset (b, 0, 0, per * 2);
  asr_open (&a, make_asr (NULL), S16_CAPS, TRUE);
  for (gint64 s = 0; s < 2 * 3600; s++) {
    GstBuffer *c = gst_buffer_copy (b);
    GST_BUFFER_PTS (c) = T0 + s * GST_SECOND;
    GST_BUFFER_DURATION (c) = GST_SECOND;
    fail_unless_equals_int (gst_harness_push (a.h, c), GST_FLOW_OK);
    if (s % 600 == 599) {       /* every 10 minutes */
      st = asr_stats (&a);
      fail_unless_equals_int64 (stat_i64 (st, "queued-samples"), 0);
      max_vad = MAX (max_vad, stat_i64 (st, "vad-samples"));
      if (first_vad < 0)
        first_vad = stat_i64 (st, "vad-samples");
      fail_unless_equals_int64 (stat_i64 (st, "vad-samples"), first_vad);
      gst_structure_free (st);
    }
  }
  /* the pre-roll of an utterance that might start: well under a second */
  fail_unless (max_vad > 0 && max_vad < RATE / 2, "%" G_GINT64_FORMAT, max_vad);
  /* the text stream has followed to within a second of the input */
  {
    GPtrArray *gaps;
    guint64 ts, dur;

    asr_wait_log (&a, "G", 1);
    g_usleep (100000);
    gaps = asr_entries (&a, "G");
    fail_unless (sscanf (g_ptr_array_index (gaps, gaps->len - 1),
            "G%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, &ts, &dur) == 2);
    fail_unless (ts + dur > T0 + 7199 * GST_SECOND, "text at %" GST_TIME_FORMAT,
        GST_TIME_ARGS (ts + dur));
    g_ptr_array_unref (gaps);
  }
  st = asr_stats (&a);
  fail_unless_equals_uint64 (stat_u64 (st, "finals"), 0);
  fail_unless (fabs (g_value_get_double (gst_structure_get_value (st, "audio-ms"))
          - 7200e3) < 1.0);
  gst_structure_free (st);
  gst_buffer_unref (b);
  asr_close (&a);
}

GST_END_TEST;

/* A live source is never blocked: with the worker held in a text push, three more
 * utterances go in without waiting; their finals are all kept and come out in order once the
 * worker moves again; partials of the open utterances were skipped, not queued. */
GST_START_TEST (test_live_never_blocks)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE / 2, speech, n_speech, NULL, (gint64) RATE,
      speech, n_speech, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE,
      speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  GPtrArray *out;
  GstStructure *st;
  gint64 t0, cut;

  fail_unless_equals_int (ref->len, 4);
  asr_open (&a, make_asr ("step", 300, NULL), S16_CAPS, TRUE);
  asr_block (&a);
  /* the first utterance (it closes min-silence, 500 ms, after its last speech frame, which
   * is at most pad-ms before its end): the worker blocks pushing its text */
  cut = g_array_index (ref, RefUtt, 0).end + 600 * RATE / 1000;
  fail_unless (cut < g_array_index (ref, RefUtt, 1).start);
  push_range (&a, x, 0, cut);
  asr_wait_blocked (&a);
  t0 = g_get_monotonic_time ();
  push_range (&a, x, cut, n);
  /* 14 s of audio went in while the worker could not move: no push waited for it */
  fail_unless (g_get_monotonic_time () - t0 < 5 * G_USEC_PER_SEC);
  st = asr_stats (&a);
  fail_unless_equals_int (g_value_get_int (gst_structure_get_value (st, "queued-finals")), 3);
  fail_unless (stat_u64 (st, "skipped-partials") > 0);
  fail_unless_equals_uint64 (stat_u64 (st, "dropped-finals"), 0);
  gst_structure_free (st);
  asr_unblock (&a);
  asr_wait_log (&a, "B", 4);
  out = asr_entries (&a, "B");
  fail_unless_equals_int (out->len, 4);
  for (guint i = 0; i < 4; i++) {
    gchar *want = buffer_entry (&g_array_index (ref, RefUtt, i));
    fail_unless_equals_string (g_ptr_array_index (out, i), want);
    g_free (want);
  }
  g_ptr_array_unref (out);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

typedef struct {
  Asr *a;
  const gfloat *x;
  gint64 from, to;
  gint done;
} PushJob;

static gpointer
push_thread (gpointer data)
{
  PushJob *j = data;

  push_range (j->a, j->x, j->from, j->to);
  g_atomic_int_set (&j->done, 1);
  return NULL;
}

/* A non-live source (a file) is held back while two finals wait, so memory stays bounded
 * and no final is lost. */
GST_START_TEST (test_non_live_is_held_back)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE / 2, speech, n_speech, NULL, (gint64) RATE,
      speech, n_speech, NULL, (gint64) RATE, speech, n_speech, NULL, (gint64) RATE,
      speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  PushJob job;
  GThread *t;
  GstStructure *st;

  fail_unless_equals_int (ref->len, 4);
  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, FALSE);
  asr_block (&a);
  job.a = &a;
  job.x = x;
  job.from = 0;
  job.to = n;
  job.done = 0;
  t = g_thread_new ("push", push_thread, &job);
  asr_wait_blocked (&a);
  g_usleep (G_USEC_PER_SEC);
  /* the first final is in the blocked push, two wait: the third holds the input */
  fail_if (g_atomic_int_get (&job.done));
  st = asr_stats (&a);
  fail_unless_equals_int (g_value_get_int (gst_structure_get_value (st, "queued-finals")), 2);
  gst_structure_free (st);
  asr_unblock (&a);
  g_thread_join (t);
  asr_wait_log (&a, "B", 4);
  fail_unless_equals_int (asr_count (&a, "B"), 4);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* A flushing seek while the worker is busy: what was pending is dropped, the running
 * transcription cancelled; after it, new audio gives text with its own timestamps. */
GST_START_TEST (test_flush)
{
  Asr a;
  gint64 n;
  gfloat *x = concat (&n, NULL, (gint64) RATE / 2, speech, n_speech, NULL, (gint64) RATE,
      speech, n_speech, NULL, (gint64) RATE, END);
  GArray *ref = ref_utterances (x, n, FALSE);
  GstSegment seg;
  GPtrArray *out;
  gchar *want;

  fail_unless_equals_int (ref->len, 2);
  asr_open (&a, make_asr ("step", 0, NULL), S16_CAPS, TRUE);
  asr_block (&a);
  push_range (&a, x, 0, n);
  asr_wait_blocked (&a);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_flush_start ()));
  asr_unblock (&a);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_segment (&seg)));
  /* the same audio again from T0 */
  g_mutex_lock (&a.lock);
  g_ptr_array_set_size (a.log, 0);
  g_mutex_unlock (&a.lock);
  push_range (&a, x, 0, n);
  asr_wait_log (&a, "B", 2);
  out = asr_entries (&a, "B");
  fail_unless_equals_int (out->len, 2);
  want = buffer_entry (&g_array_index (ref, RefUtt, 1));
  fail_unless_equals_string (g_ptr_array_index (out, 1), want);
  g_free (want);
  g_ptr_array_unref (out);
  asr_close (&a);
  ref_utterances_free (ref);
  g_free (x);
}

GST_END_TEST;

/* READY→PAUSED with these files must fail with a RESOURCE error whose message names
 * `name`. */
static void
check_start_error (const gchar * model_file, const gchar * mmproj, gint code,
    const gchar * name, const gchar * prop, ...)
{
  GstElement *e = make_asr ("model", model_file, "mmproj", mmproj, NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;
  gchar *dbg = NULL;
  va_list args;

  if (prop) {
    va_start (args, prop);
    g_object_set_valist (G_OBJECT (e), prop, args);
    va_end (args);
  }
  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL, "no error message for %s", name);
  gst_message_parse_error (m, &err, &dbg);
  fail_unless (err->domain == GST_RESOURCE_ERROR, "%s", err->message);
  fail_unless_equals_int (err->code, code);
  fail_unless (strstr (err->message, name) != NULL, "\"%s\" does not name %s",
      err->message, name);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_START_TEST (test_errors)
{
  gchar *missing = g_build_filename (data_dir, "no-such-mmproj.gguf", NULL);
  gchar *missing_model = g_build_filename (data_dir, "no-such-model.gguf", NULL);
  gchar *wide = g_build_filename (data_dir, "..", "text", "small-f32", "lfm2-small-f32.gguf",
      NULL);
  gchar *vision = g_build_filename (data_dir, "..", "vision", "lfm2-vl-tiny-mmproj-f32.gguf",
      NULL);
  gchar *tmpdir = g_dir_make_tmp ("lfm2asr-XXXXXX", NULL);
  gchar *cut = g_build_filename (tmpdir, "cut-mmproj.gguf", NULL);
  gchar *flipped = g_build_filename (tmpdir, "flipped-mmproj.gguf", NULL);
  gchar *contents;
  gsize len;

  /* missing files and properties */
  check_start_error (model_path, missing, GST_RESOURCE_ERROR_NOT_FOUND, "no-such-mmproj",
      NULL);
  check_start_error (missing_model, mmproj_path, GST_RESOURCE_ERROR_NOT_FOUND,
      "no-such-model", NULL);
  check_start_error (model_path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, "mmproj", NULL);
  check_start_error (NULL, mmproj_path, GST_RESOURCE_ERROR_NOT_FOUND, "model", NULL);
  /* an adapter writing 128-wide rows for a 256-wide model: both files named */
  check_start_error (wide, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "lfm2-small-f32", NULL);
  check_start_error (wide, mmproj_path, GST_RESOURCE_ERROR_SETTINGS,
      "lfm2a-tiny-mmproj-f32", NULL);
  /* a text model, or a vision projector, as the mmproj */
  check_start_error (model_path, model_path, GST_RESOURCE_ERROR_OPEN_READ, "lfm2-tiny-f32",
      NULL);
  check_start_error (model_path, vision, GST_RESOURCE_ERROR_OPEN_READ,
      "lfm2-vl-tiny-mmproj", NULL);
  /* a truncated mmproj, and one with a corrupt header */
  fail_unless (g_file_get_contents (mmproj_path, &contents, &len, NULL));
  fail_unless (g_file_set_contents (cut, contents, len / 2, NULL));
  check_start_error (model_path, cut, GST_RESOURCE_ERROR_OPEN_READ, "cut-mmproj", NULL);
  for (gsize i = 8; i < 64; i++)
    contents[i] ^= 0x5a;
  fail_unless (g_file_set_contents (flipped, contents, len, NULL));
  check_start_error (model_path, flipped, GST_RESOURCE_ERROR_OPEN_READ, "flipped-mmproj",
      NULL);
  /* llama.cpp's front-end cannot take utterances longer than a.position_embd allows */
  check_start_error (model_path, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "max-segment",
      "frontend", 1, "max-segment", 3600000, NULL);

  g_unlink (cut);
  g_unlink (flipped);
  g_rmdir (tmpdir);
  g_free (contents);
  g_free (cut);
  g_free (flipped);
  g_free (tmpdir);
  g_free (missing);
  g_free (missing_model);
  g_free (wide);
  g_free (vision);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  gchar *desc = g_strdup_printf ("appsrc name=src format=time is-live=true caps=\"%s\" ! "
      "lfm2asr name=asr model=\"%s\" mmproj=\"%s\" n-threads=%d max-tokens=4 step=200 ! "
      "fakesink sync=false async=false", S16_CAPS, model_path, mmproj_path, N_THREADS);
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");

  fail_unless (pipe != NULL);
  for (int round = 0; round < 6; round++) {
    /* stop at every stage, with speech in flight */
    GstState target = round % 3 == 0 ? GST_STATE_READY : round % 3 == 1 ?
        GST_STATE_PAUSED : GST_STATE_NULL;

    fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING)
        != GST_STATE_CHANGE_FAILURE);
    for (gint64 i = 0; i < n_speech; i += 1600)
      gst_app_src_push_buffer (GST_APP_SRC (src), audio_check_s16_buffer (speech, i,
              MIN (1600, n_speech - i), T0));
    if (round & 1)
      g_usleep (50000);         /* sometimes mid-transcription, sometimes before */
    fail_unless (gst_element_set_state (pipe, target) != GST_STATE_CHANGE_FAILURE);
    fail_unless (gst_element_get_state (pipe, NULL, NULL, GST_CLOCK_TIME_NONE)
        != GST_STATE_CHANGE_FAILURE);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (pipe);
  g_free (desc);
}

GST_END_TEST;


static Suite *
lfm2asr_suite (void)
{
  Suite *s = suite_create ("lfm2asr");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);     /* set by tests/check/meson.build */
  data_dir = g_build_filename (root, "audio", NULL);
  model_path = g_build_filename (root, "text", "tiny-f32", "lfm2-tiny-f32.gguf", NULL);
  mmproj_path = g_build_filename (data_dir, "lfm2a-tiny-mmproj-f32.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());
  lfm2_audio_quiet_ffmpeg_log ();
  speech = audio_check_load_clip ("speech_4s.wav", &n_speech);
  speech_long = audio_check_load_clip ("speech_long_35s.wav", &n_speech_long);
  noise = audio_check_load_clip ("noise_3s.wav", &n_noise);
  audio_check_load_plugins ();

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata_and_properties);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_transcripts_and_timestamps);
  tcase_add_test (tc, test_partials_then_final);
  tcase_add_test (tc, test_early_final);
  tcase_add_test (tc, test_inference_priority);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_eos_flushes_last_words);
  tcase_add_test (tc, test_silence_and_noise_give_no_text);
  tcase_add_test (tc, test_clipped_and_nonfinite_samples);
  tcase_add_test (tc, test_rate_change_mid_stream);
  tcase_add_test (tc, test_zero_length_buffers);
  tcase_add_test (tc, test_two_hours_of_silence);
  tcase_add_test (tc, test_live_never_blocks);
  tcase_add_test (tc, test_non_live_is_held_back);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_state_cycling);
  return s;
}

GST_CHECK_MAIN (lfm2asr);
