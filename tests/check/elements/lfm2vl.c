/* tests/check/elements/lfm2vl.c — the lfm2vl element from the plugin module
 * (build/plugins/libgstlfm2.so) through GstHarness with a live test clock: metadata, caps
 * (every format, odd sizes, refused caps), captions and their timestamps, the interval,
 * skipping under load, EOS draining the pending caption, flushing, GAP events, latency,
 * errors at READY→PAUSED, state cycling, prompts, and lfm2vlenc ! lfm2text giving the same
 * caption.
 *
 * Expected captions come from ref_caption(), which runs the vision API (lfm2_vision_encode,
 * lfm2_vision_tokenize on the chat layout written out literally, lfm2_vision_decode) and the
 * engine's sampler directly — no plugin code. The tiny models have random weights, so the
 * captions are gibberish, but every frame gets its own gibberish. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lfm2-vision.h"

#define N_THREADS 2
#define MAX_TOKENS 12
#define SEED 1234
#define FRAME_DUR (GST_SECOND / 30)
#define PROMPT "Describe this image in one sentence."

static gchar *model_path, *mmproj_path, *data_dir;
static lfm2_model *model;       /* for the reference captions */
static lfm2_vision *vision_ctx;

/* Loaded on first use, in the test's own process: check forks a child per test, and the
 * encoder's thread pool must not be created before the fork (its threads would not exist in
 * the child). */
static lfm2_vision *
get_vision (void)
{
  if (vision_ctx == NULL) {
    struct lfm2_vision_params vp = lfm2_vision_default_params ();
    vp.n_threads = N_THREADS;
    vision_ctx = lfm2_vision_load (mmproj_path, vp);
    if (vision_ctx == NULL)
      g_error ("%s: %s", mmproj_path, lfm2_last_error ());
  }
  return vision_ctx;
}


/* ---- references ---------------------------------------------------------------------- */

static struct lfm2_sampler_params
sampling (void)
{
  struct lfm2_sampler_params p = lfm2_sampler_default_params ();
  p.temperature = 0.8f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  p.repeat_penalty = 1.1f;
  p.seed = SEED;
  return p;
}

/* lfm2vl's caption rule: white space runs become one space, none at the ends. */
static gchar *
one_line (const gchar * s)
{
  GString *o = g_string_new (NULL);
  gboolean space = TRUE;

  for (; *s; s++) {
    if (g_ascii_isspace (*s)) {
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
  return g_string_free (o, FALSE);
}

/* Tokenizes and decodes text as one batch (no BOS); appends the ids to seq. */
static void
decode_text (lfm2_context * ctx, const gchar * text, gboolean bos, GArray * seq)
{
  gint32 n = lfm2_tokenize (model, text, (gint32) strlen (text), NULL, 0, bos, TRUE);
  lfm2_token *ids;

  fail_unless (n != G_MININT32, "%s", lfm2_last_error ());
  n = n < 0 ? -n : n;
  if (n == 0)
    return;
  ids = g_new (lfm2_token, n);
  fail_unless_equals_int (lfm2_tokenize (model, text, (gint32) strlen (text), ids, n, bos,
          TRUE), n);
  fail_unless (lfm2_decode (ctx, lfm2_batch_tokens (ids, n)) == 0, "%s", lfm2_last_error ());
  g_array_append_vals (seq, ids, n);
  g_free (ids);
}

/* The caption of an RGB picture straight from the vision API and the engine.
 *
 * The reference feeds the model in the batches lfm2vl uses — BOS + system turn (the cached
 * prefix), the user turn up to the image, the image's token runs and embedding rows, the rest
 * — so the comparison does not rest on the engine being batch-invariant (it was not when this
 * was written: a row computed in a batch and alone could differ in the last bits, and
 * sampling then parted ways). The token sequence itself is checked against
 * lfm2_vision_tokenize (llama.cpp's mtmd layout). */
static gchar *
ref_caption_full (const guint8 * rgb, gint w, gint h, gsize stride, const gchar * system,
    const gchar * prompt, gint max_tokens)
{
  struct lfm2_vision_image img = { w, h, stride, rgb };
  struct lfm2_vision_plan plan;
  struct lfm2_context_params cp = lfm2_context_default_params ();
  const gint E = lfm2_vision_n_embd_out (get_vision ());
  const gchar *marker = strstr (prompt, LFM2_VISION_MARKER);
  GString *chat = g_string_new (NULL), *out = g_string_new (NULL);
  GArray *seq = g_array_new (FALSE, FALSE, sizeof (lfm2_token));
  lfm2_context *ctx;
  lfm2_sampler *smp;
  struct lfm2_detok dt;
  lfm2_token *ids, *layout;
  gfloat *embd;
  gint32 n, n_layout;
  gint gen = 0, row = 0;
  gchar piece[512], *res, *text;

  fail_unless (lfm2_vision_plan_image (get_vision (), w, h, &plan) == 0, "%s", lfm2_last_error ());
  embd = g_new (gfloat, (gsize) plan.n_tokens * E);
  fail_unless (lfm2_vision_encode (get_vision (), &img, &plan, embd, (gsize) plan.n_tokens * E)
      == plan.n_tokens, "%s", lfm2_last_error ());
  n_layout = lfm2_vision_layout (model, &plan, NULL, 0);
  n_layout = n_layout < 0 ? -n_layout : n_layout;
  layout = g_new (lfm2_token, n_layout);
  fail_unless_equals_int (lfm2_vision_layout (model, &plan, layout, n_layout), n_layout);

  cp.n_threads = N_THREADS;
  ctx = lfm2_context_new (model, cp);
  smp = lfm2_sampler_new (model, sampling ());
  fail_unless (ctx && smp);

  /* BOS + the system turn */
  text = system ? g_strdup_printf ("<|im_start|>system\n%s<|im_end|>\n", system) : g_strdup ("");
  decode_text (ctx, text, TRUE, seq);
  g_free (text);
  /* the user turn up to the image (the image goes first without a marker) */
  text = g_strdup_printf ("<|im_start|>user\n%.*s", marker ? (int) (marker - prompt) : 0,
      prompt);
  decode_text (ctx, text, FALSE, seq);
  g_free (text);
  /* the image: runs of marker tokens and runs of embedding rows */
  for (gint32 i = 0; i < n_layout;) {
    gint32 j = i;
    while (j < n_layout && (layout[j] < 0) == (layout[i] < 0))
      j++;
    if (layout[i] < 0) {
      fail_unless (lfm2_decode (ctx, lfm2_batch_embd (embd + (gsize) row * E, j - i)) == 0);
      row += j - i;
    } else {
      fail_unless (lfm2_decode (ctx, lfm2_batch_tokens (layout + i, j - i)) == 0);
    }
    g_array_append_vals (seq, layout + i, j - i);
    i = j;
  }
  fail_unless_equals_int (row, plan.n_tokens);
  /* the rest of the turn and the assistant prompt */
  text = g_strdup_printf ("%s<|im_end|>\n<|im_start|>assistant\n",
      marker ? marker + strlen (LFM2_VISION_MARKER) : prompt);
  decode_text (ctx, text, FALSE, seq);
  g_free (text);

  /* the same sequence as llama.cpp's mtmd layout of the written-out chat */
  if (system)
    g_string_append_printf (chat, "<|im_start|>system\n%s<|im_end|>\n", system);
  g_string_append (chat, "<|im_start|>user\n");
  if (!marker)
    g_string_append (chat, LFM2_VISION_MARKER);
  g_string_append_printf (chat, "%s<|im_end|>\n<|im_start|>assistant\n", prompt);
  n = lfm2_vision_tokenize (model, chat->str, &plan, 1, NULL, 0);
  fail_unless (n != G_MININT32, "%s", lfm2_last_error ());
  n = n < 0 ? -n : n;
  ids = g_new (lfm2_token, n);
  fail_unless_equals_int (lfm2_vision_tokenize (model, chat->str, &plan, 1, ids, n), n);
  fail_unless_equals_int (seq->len, n);
  for (gint32 i = 0; i < n; i++)
    fail_unless ((ids[i] < 0 && g_array_index (seq, lfm2_token, i) < 0)
        || ids[i] == g_array_index (seq, lfm2_token, i), "token %d differs", i);

  /* the prompt's ids count for the repetition penalty (embedding rows have none) */
  for (guint i = 0; i < seq->len; i++)
    if (g_array_index (seq, lfm2_token, i) >= 0)
      lfm2_sampler_accept (smp, g_array_index (seq, lfm2_token, i));

  lfm2_detok_init (&dt, FALSE);
  while (gen < max_tokens) {
    lfm2_token t = lfm2_sampler_sample (smp, lfm2_get_logits (ctx, -1));
    gint32 k;

    if (lfm2_token_is_eog (model, t))
      break;
    lfm2_sampler_accept (smp, t);
    gen++;
    k = lfm2_detok_push (model, &dt, t, piece, sizeof (piece));
    fail_unless (k >= 0);
    for (gint32 i = 0; i < k; i++)
      if (piece[i])
        g_string_append_c (out, piece[i]);
    if (gen == max_tokens)
      break;
    fail_unless (lfm2_decode (ctx, lfm2_batch_tokens (&t, 1)) == 0);
  }
  n = lfm2_detok_flush (&dt, piece, sizeof (piece));
  for (gint32 i = 0; i < n; i++)
    if (piece[i])
      g_string_append_c (out, piece[i]);

  res = one_line (out->str);
  lfm2_sampler_free (smp);
  lfm2_context_free (ctx);
  g_array_unref (seq);
  g_free (ids);
  g_free (layout);
  g_free (embd);
  g_string_free (chat, TRUE);
  g_string_free (out, TRUE);
  return res;
}

/* ---- frames ----------------------------------------------------------------------------- */

/* A w×h picture of pseudo-random blocks (each seed a different picture), in `format`. The RGB
 * original is returned in *rgb (stride 3w) for the reference. */
static GstBuffer *
make_frame (GstVideoFormat format, gint w, gint h, guint32 seed, guint8 ** rgb)
{
  GstVideoInfo ri, fi;
  GstBuffer *rb, *fb;
  GstVideoFrame rf, ff;
  guint32 x = seed * 2654435761u + 1;
  guint8 *pix = g_malloc ((gsize) w * h * 3);

  for (gint y = 0; y < h; y++)
    for (gint i = 0; i < w; i++)
      for (gint c = 0; c < 3; c++) {
        /* 8×8 blocks of a seeded colour plus a little noise */
        guint32 b = (guint32) ((y / 8) * 131 + (i / 8) * 17 + c * 7) ^ x;
        b = b * 2246822519u;
        b ^= b >> 13;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pix[((gsize) y * w + i) * 3 + c] = (guint8) ((b >> 8) & 0xe0) | (x & 0x1f);
      }

  gst_video_info_set_format (&ri, GST_VIDEO_FORMAT_RGB, w, h);
  rb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&ri), NULL);
  fail_unless (gst_video_frame_map (&rf, &ri, rb, GST_MAP_WRITE));
  for (gint y = 0; y < h; y++)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&rf, 0) + y * GST_VIDEO_FRAME_PLANE_STRIDE
        (&rf, 0), pix + (gsize) y * w * 3, (gsize) w * 3);
  gst_video_frame_unmap (&rf);
  if (format == GST_VIDEO_FORMAT_RGB) {
    fb = rb;
  } else {
    GstVideoConverter *conv;

    gst_video_info_set_format (&fi, format, w, h);
    conv = gst_video_converter_new (&ri, &fi, NULL);
    fail_unless (conv != NULL);
    fb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&fi), NULL);
    /* padding the format leaves unused is read by some unpackers: make it defined */
    gst_buffer_memset (fb, 0, 0, GST_VIDEO_INFO_SIZE (&fi));
    fail_unless (gst_video_frame_map (&rf, &ri, rb, GST_MAP_READ));
    fail_unless (gst_video_frame_map (&ff, &fi, fb, GST_MAP_WRITE));
    gst_video_converter_frame (conv, &rf, &ff);
    gst_video_frame_unmap (&ff);
    gst_video_frame_unmap (&rf);
    gst_video_converter_free (conv);
    gst_buffer_unref (rb);
  }
  if (rgb)
    *rgb = pix;
  else
    g_free (pix);
  return fb;
}

/* The RGB pixels of a frame as GstVideoConverter (default options, as videoconvert) gives
 * them — what the element must caption. Stride 3w. */
static guint8 *
to_rgb (GstBuffer * buf, GstVideoFormat format, gint w, gint h)
{
  GstVideoInfo fi, ri;
  GstVideoFrame ff, rf;
  GstBuffer *rb;
  GstVideoConverter *conv;
  guint8 *pix = g_malloc ((gsize) w * h * 3);

  gst_video_info_set_format (&fi, format, w, h);
  gst_video_info_set_format (&ri, GST_VIDEO_FORMAT_RGB, w, h);
  rb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&ri), NULL);
  conv = gst_video_converter_new (&fi, &ri, NULL);
  fail_unless (conv != NULL);
  fail_unless (gst_video_frame_map (&ff, &fi, buf, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&rf, &ri, rb, GST_MAP_WRITE));
  gst_video_converter_frame (conv, &ff, &rf);
  for (gint y = 0; y < h; y++)
    memcpy (pix + (gsize) y * w * 3, (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&rf, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&rf, 0), (gsize) w * 3);
  gst_video_frame_unmap (&rf);
  gst_video_frame_unmap (&ff);
  gst_video_converter_free (conv);
  gst_buffer_unref (rb);
  return pix;
}

static gchar *
ref_caption (const guint8 * rgb, gint w, gint h)
{
  return ref_caption_full (rgb, w, h, (gsize) w * 3, NULL, PROMPT, MAX_TOKENS);
}

static gchar *
caps_str (GstVideoFormat format, gint w, gint h)
{
  return g_strdup_printf ("video/x-raw, format=%s, width=%d, height=%d, framerate=30/1",
      gst_video_format_to_string (format), w, h);
}

/* ---- the element through two harnesses (video and text) ------------------------------- */

typedef struct {
  GstElement *e;
  GstHarness *h;                /* sink → src (video) */
  GstHarness *ht;               /* text_src */
  GstBus *bus;
  /* what text_src pushed, in order: "B<pts>" buffers, "G<start>+<dur>" gaps, event names */
  GMutex lock;
  GCond cond;
  GPtrArray *log;
  gboolean block;               /* hold the worker in its next text push */
  gboolean blocked;
  gulong log_probe, block_probe;
} Vl;

static GstElement *
make_vl (const gchar * first, ...)
{
  GstElement *e = gst_element_factory_make ("lfm2vl", NULL);
  va_list args;

  fail_unless (e != NULL, "lfm2vl not found (GST_PLUGIN_PATH_1_0=%s)",
      g_getenv ("GST_PLUGIN_PATH_1_0"));
  g_object_set (e, "model", model_path, "mmproj", mmproj_path, "n-threads", N_THREADS,
      "max-tokens", MAX_TOKENS, "temperature", 0.8f, "min-p", 0.05f, "repeat-penalty", 1.1f,
      "top-k", 0, "top-p", 1.0f, "seed", (guint64) SEED, NULL);
  if (first) {
    va_start (args, first);
    g_object_set_valist (G_OBJECT (e), first, args);
    va_end (args);
  }
  return e;
}

static GstPadProbeReturn
log_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Vl *v = data;
  gchar *entry;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    entry = g_strdup_printf ("B%" G_GUINT64_FORMAT,
        (guint64) GST_BUFFER_PTS (GST_PAD_PROBE_INFO_BUFFER (info)));
  } else {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime ts, dur;
      gst_event_parse_gap (ev, &ts, &dur);
      entry = g_strdup_printf ("G%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, (guint64) ts,
          (guint64) dur);
    } else {
      entry = g_strdup (GST_EVENT_TYPE_NAME (ev));
    }
  }
  g_mutex_lock (&v->lock);
  g_ptr_array_add (v->log, entry);
  g_cond_broadcast (&v->cond);
  g_mutex_unlock (&v->lock);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
block_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  Vl *v = data;

  g_mutex_lock (&v->lock);
  v->blocked = TRUE;
  g_cond_broadcast (&v->cond);
  g_mutex_unlock (&v->lock);
  return GST_PAD_PROBE_OK;      /* stays blocked until the probe is removed */
}

static void
vl_open (Vl * v, GstElement * e, const gchar * caps)
{
  GstPad *tp;

  memset (v, 0, sizeof (*v));
  g_mutex_init (&v->lock);
  g_cond_init (&v->cond);
  v->log = g_ptr_array_new_with_free_func (g_free);
  v->e = e;
  v->bus = gst_bus_new ();
  gst_element_set_bus (e, v->bus);
  v->h = gst_harness_new_with_element (e, "sink", "src");
  v->ht = gst_harness_new_with_element (e, NULL, "text_src");
  gst_object_unref (e);         /* the harnesses hold it */
  gst_harness_use_testclock (v->h);
  gst_harness_set_live (v->h, TRUE);
  tp = gst_element_get_static_pad (e, "text_src");
  v->log_probe = gst_pad_add_probe (tp, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH, log_probe, v,
      NULL);
  gst_object_unref (tp);
  if (caps)
    gst_harness_set_src_caps_str (v->h, caps);
}

static void
vl_block (Vl * v)
{
  GstPad *tp = gst_element_get_static_pad (v->e, "text_src");

  v->blocked = FALSE;
  v->block_probe = gst_pad_add_probe (tp, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_BLOCK, block_probe, v, NULL);
  gst_object_unref (tp);
}

/* Waits until the worker sits blocked in a text push. */
static void
vl_wait_blocked (Vl * v)
{
  g_mutex_lock (&v->lock);
  while (!v->blocked)
    g_cond_wait (&v->cond, &v->lock);
  g_mutex_unlock (&v->lock);
}

static void
vl_unblock (Vl * v)
{
  GstPad *tp = gst_element_get_static_pad (v->e, "text_src");

  gst_pad_remove_probe (tp, v->block_probe);
  v->block_probe = 0;
  gst_object_unref (tp);
}

/* Waits for the log to have at least n entries matching `prefix` (e.g. "B", "eos"). */
static void
vl_wait_log (Vl * v, const gchar * prefix, guint n)
{
  g_mutex_lock (&v->lock);
  for (;;) {
    guint k = 0;
    for (guint i = 0; i < v->log->len; i++)
      if (g_str_has_prefix (g_ptr_array_index (v->log, i), prefix))
        k++;
    if (k >= n)
      break;
    g_cond_wait (&v->cond, &v->lock);
  }
  g_mutex_unlock (&v->lock);
}

/* The log as one string: "stream-start caps segment B0 …". */
static gchar *
vl_log (Vl * v)
{
  GString *s = g_string_new (NULL);

  g_mutex_lock (&v->lock);
  for (guint i = 0; i < v->log->len; i++)
    g_string_append_printf (s, "%s%s", i ? " " : "", (gchar *) g_ptr_array_index (v->log, i));
  g_mutex_unlock (&v->lock);
  return g_string_free (s, FALSE);
}

static void
vl_close (Vl * v)
{
  GstPad *tp = gst_element_get_static_pad (v->e, "text_src");

  if (v->block_probe)
    gst_pad_remove_probe (tp, v->block_probe);
  gst_pad_remove_probe (tp, v->log_probe);
  gst_object_unref (tp);
  gst_harness_teardown (v->ht);
  gst_harness_teardown (v->h);
  gst_bus_set_flushing (v->bus, TRUE);
  gst_object_unref (v->bus);
  g_ptr_array_unref (v->log);
  g_mutex_clear (&v->lock);
  g_cond_clear (&v->cond);
}

static gchar *
buffer_text (GstBuffer * b)
{
  GstMapInfo map;
  gchar *s;

  fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
  s = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (b, &map);
  return s;
}

/* Pushes a frame (taking the reference) and checks the very same buffer came out on src at
 * once. */
static void
push_frame (Vl * v, GstBuffer * b, GstClockTime pts)
{
  GstBuffer *out;

  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = FRAME_DUR;
  gst_buffer_ref (b);
  fail_unless_equals_int (gst_harness_push (v->h, b), GST_FLOW_OK);
  out = gst_harness_try_pull (v->h);
  fail_unless (out != NULL, "the video frame did not come out at once");
  fail_unless (out == b, "the video frame was copied");
  gst_buffer_unref (out);
  gst_buffer_unref (b);
}

/* The next caption on text_src: its text, PTS and duration. */
static gchar *
pull_caption (Vl * v, GstClockTime * pts, GstClockTime * dur)
{
  GstBuffer *b = gst_harness_pull (v->ht);
  gchar *t;

  fail_unless (b != NULL, "no caption");
  if (pts)
    *pts = GST_BUFFER_PTS (b);
  if (dur)
    *dur = GST_BUFFER_DURATION (b);
  t = buffer_text (b);
  gst_buffer_unref (b);
  return t;
}

static GstStructure *
pop_caption_message (GstBus * bus)
{
  GstMessage *m;

  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    const GstStructure *s = gst_message_get_structure (m);
    if (gst_structure_has_name (s, "lfm2vl/caption")) {
      GstStructure *c = gst_structure_copy (s);
      gst_message_unref (m);
      return c;
    }
    gst_message_unref (m);
  }
  return NULL;
}

static guint64
stat_u64 (GstElement * e, const gchar * field)
{
  GstStructure *st;
  guint64 v = 0;

  g_object_get (e, "stats", &st, NULL);
  fail_unless (gst_structure_get_uint64 (st, field, &v));
  gst_structure_free (st);
  return v;
}

/* ---- tests ---------------------------------------------------------------------------- */

GST_START_TEST (test_metadata_and_properties)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2vl");
  GstElement *e;
  struct {
    const gchar *name;
    GParamFlags flag;
  } expected[] = {
    {"model", GST_PARAM_MUTABLE_READY}, {"mmproj", GST_PARAM_MUTABLE_READY},
    {"prompt", GST_PARAM_MUTABLE_PLAYING}, {"system-prompt", GST_PARAM_MUTABLE_PLAYING},
    {"interval", GST_PARAM_MUTABLE_PLAYING}, {"max-tokens", GST_PARAM_MUTABLE_PLAYING},
    {"temperature", GST_PARAM_MUTABLE_PLAYING}, {"top-k", GST_PARAM_MUTABLE_PLAYING},
    {"top-p", GST_PARAM_MUTABLE_PLAYING}, {"min-p", GST_PARAM_MUTABLE_PLAYING},
    {"repeat-penalty", GST_PARAM_MUTABLE_PLAYING}, {"seed", GST_PARAM_MUTABLE_PLAYING},
    {"n-threads", GST_PARAM_MUTABLE_READY}, {"min-image-tokens", GST_PARAM_MUTABLE_READY},
    {"max-image-tokens", GST_PARAM_MUTABLE_READY}, {"do-tiling", GST_PARAM_MUTABLE_READY},
    {"preprocess", GST_PARAM_MUTABLE_READY}, {"context-length", GST_PARAM_MUTABLE_READY},
    {"latency", GST_PARAM_MUTABLE_PLAYING}, {"min-tiles", GST_PARAM_MUTABLE_READY},
    {"max-tiles", GST_PARAM_MUTABLE_READY}, {"max-pixels-tolerance", GST_PARAM_MUTABLE_READY},
    {"use-thumbnail", GST_PARAM_MUTABLE_READY}, {"resample", GST_PARAM_MUTABLE_READY},
    {"preprocessor-config", GST_PARAM_MUTABLE_READY},
    {"caption-budget", GST_PARAM_MUTABLE_PLAYING}, {"inference-nice", GST_PARAM_MUTABLE_READY},
  };
  GParamSpec *p;
  gchar *prompt;

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_plugin_feature_get_plugin_name (GST_PLUGIN_FEATURE (f)),
      "lfm2");
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Filter/Analyzer/Video");
  fail_unless_equals_int (gst_element_factory_get_num_pad_templates (f), 3);
  e = gst_element_factory_create (f, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), expected[i].name);
    fail_unless (p != NULL, "no property %s", expected[i].name);
    fail_unless (p->flags & expected[i].flag, "%s mutability", expected[i].name);
    fail_unless (strlen (g_param_spec_get_blurb (p)) > 10);
  }
  p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "preprocess");
  fail_unless_equals_string (g_enum_get_value (G_PARAM_SPEC_ENUM (p)->enum_class,
          G_PARAM_SPEC_ENUM (p)->default_value)->value_nick, "official");
  fail_unless (g_enum_get_value_by_nick (G_PARAM_SPEC_ENUM (p)->enum_class,
          "llamacpp") != NULL);
  p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "stats");
  fail_unless (p != NULL && !(p->flags & G_PARAM_WRITABLE));
  g_object_get (e, "prompt", &prompt, NULL);
  fail_unless_equals_string (prompt, PROMPT);
  g_free (prompt);
  {
    GstPad *pads[3] = { gst_element_get_static_pad (e, "sink"),
      gst_element_get_static_pad (e, "src"), gst_element_get_static_pad (e, "text_src")
    };
    for (int i = 0; i < 3; i++) {
      fail_unless (pads[i] != NULL);
      gst_object_unref (pads[i]);
    }
  }
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

/* The format a source fixates when it offers `offer` (its own order, as videotestsrc lists
 * 16-bit formats first) to the element's sink pad. */
static gchar *
fixated_format (GstElement * e, const gchar * offer)
{
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  GstCaps *filter = gst_caps_from_string (offer);
  GstCaps *caps = gst_pad_query_caps (sink, filter);
  gchar *format;

  fail_if (gst_caps_is_empty (caps), "nothing in common with %s", offer);
  caps = gst_caps_fixate (caps);
  format = g_strdup (gst_structure_get_string (gst_caps_get_structure (caps, 0), "format"));
  gst_caps_unref (caps);
  gst_caps_unref (filter);
  gst_object_unref (sink);
  return format;
}

#define SOURCE_OFFER "video/x-raw, format={ ABGR64_LE, ARGB64, RGBA, RGB, YUY2, NV12, I420 }, " \
    "width=1920, height=1080, framerate=30/1"

/* A source that can paint anything gets our order (cheap 8-bit 4:2:0 first, not its 8-byte
 * formats); a downstream peer with its own formats still decides (pass-through). */
GST_START_TEST (test_format_preference)
{
  Vl v;
  gchar *f;

  vl_open (&v, make_vl (NULL), NULL);
  f = fixated_format (v.e, SOURCE_OFFER);
  fail_unless_equals_string (f, "I420");
  g_free (f);
  gst_harness_set_sink_caps_str (v.h, "video/x-raw, format={ RGB, NV12 }");
  f = fixated_format (v.e, SOURCE_OFFER);
  fail_unless_equals_string (f, "RGB");
  g_free (f);
  vl_close (&v);
}

GST_END_TEST;

GST_START_TEST (test_caps)
{
  Vl v;
  const gchar *good[] = {
    "video/x-raw, format=RGB, width=1, height=1, framerate=30/1",
    "video/x-raw, format=I420, width=37, height=21, framerate=30/1",
    "video/x-raw, format=NV12, width=3, height=5, framerate=0/1",
    "video/x-raw, format=v210, width=7, height=3, framerate=25/1",
    "video/x-raw, format=RGB8P, width=16, height=9, framerate=25/1",
    "video/x-raw, format=GRAY16_BE, width=8192, height=8192, framerate=60/1",
    "video/x-raw, format=BGRA, width=7680, height=4320, framerate=60000/1001",
  };
  const gchar *bad[] = {
    "video/x-raw, format=RGB, width=8193, height=16, framerate=30/1",
    "video/x-raw(memory:GLMemory), format=RGBA, width=64, height=64, framerate=30/1",
    "image/jpeg, width=64, height=64, framerate=30/1",
    "text/x-raw, format=utf8",
  };

  vl_open (&v, make_vl (NULL), NULL);
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    fail_unless (accepts (v.h, good[i]), "refused %s", good[i]);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    fail_if (accepts (v.h, bad[i]), "accepted %s", bad[i]);
  /* the text pad's caps are fixed */
  {
    GstPad *tp = gst_element_get_static_pad (v.e, "text_src");
    GstCaps *c = gst_pad_query_caps (tp, NULL), *want =
        gst_caps_from_string ("text/x-raw, format=utf8");
    fail_unless (gst_caps_is_equal (c, want));
    gst_caps_unref (c);
    gst_caps_unref (want);
    gst_object_unref (tp);
  }
  vl_close (&v);

  /* captions of pictures in other formats and odd sizes: the element converts to RGB */
  {
    struct {
      GstVideoFormat format;
      gint w, h;
    } cases[] = {
      {GST_VIDEO_FORMAT_RGB, 1, 1},
      {GST_VIDEO_FORMAT_RGB, 37, 21},   /* row stride 112, not 3·37 */
      {GST_VIDEO_FORMAT_I420, 37, 21},
      {GST_VIDEO_FORMAT_NV12, 64, 48},
      {GST_VIDEO_FORMAT_BGRx, 33, 17},
      {GST_VIDEO_FORMAT_YUY2, 20, 300},
      {GST_VIDEO_FORMAT_GRAY8, 5, 3},
      {GST_VIDEO_FORMAT_v210, 50, 10},
    };
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
      gchar *cs = caps_str (cases[i].format, cases[i].w, cases[i].h), *got, *want;
      GstBuffer *b = make_frame (cases[i].format, cases[i].w, cases[i].h, 100 + i, NULL);
      guint8 *rgb = to_rgb (b, cases[i].format, cases[i].w, cases[i].h);

      want = ref_caption (rgb, cases[i].w, cases[i].h);
      vl_open (&v, make_vl (NULL), cs);
      push_frame (&v, b, 0);
      got = pull_caption (&v, NULL, NULL);
      vl_close (&v);
      fail_unless (g_str_equal (got, want), "%s %d×%d: \"%s\" != \"%s\"",
          gst_video_format_to_string (cases[i].format), cases[i].w, cases[i].h, got, want);
      g_free (got);
      g_free (want);
      g_free (rgb);
      g_free (cs);
    }
  }
}

GST_END_TEST;

GST_START_TEST (test_timestamps_and_message)
{
  Vl v;
  GstSegment seg;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_RGB, 64, 48);
  gchar *want[3], *texts = NULL;
  GstBuffer *frames[3];
  guint8 *rgb[3];

  for (int i = 0; i < 3; i++) {
    frames[i] = make_frame (GST_VIDEO_FORMAT_RGB, 64, 48, i + 1, &rgb[i]);
    want[i] = ref_caption (rgb[i], 64, 48);
  }
  fail_if (g_str_equal (want[0], want[1]) && g_str_equal (want[1], want[2]),
      "the pictures made no difference");

  vl_open (&v, make_vl (NULL), cs);
  /* a segment starting at 10 s: running time = PTS − 10 s */
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.start = seg.time = 10 * GST_SECOND;
  fail_unless (gst_harness_push_event (v.h, gst_event_new_segment (&seg)));

  for (int i = 0; i < 3; i++) {
    const GstClockTime pts = 10 * GST_SECOND + i * 7 * FRAME_DUR;
    GstClockTime got_pts, got_dur;
    GstStructure *m;
    guint64 u;
    gint n;
    guint skipped;
    const gchar *mt;
    gchar *got;

    push_frame (&v, gst_buffer_ref (frames[i]), pts);
    got = pull_caption (&v, &got_pts, &got_dur);
    fail_unless_equals_string (got, want[i]);
    fail_unless_equals_uint64 (got_pts, pts);
    /* nothing newer came while it was captioned: it stands for its frame's duration */
    fail_unless_equals_uint64 (got_dur, FRAME_DUR);

    m = pop_caption_message (v.bus);
    fail_unless (m != NULL);
    mt = gst_structure_get_string (m, "text");
    fail_unless_equals_string (mt, want[i]);
    fail_unless (gst_structure_get_uint64 (m, "pts", &u) && u == pts);
    fail_unless (gst_structure_get_uint64 (m, "running-time", &u)
        && u == (guint64) i * 7 * FRAME_DUR);
    fail_unless (gst_structure_get_uint64 (m, "duration", &u) && u == FRAME_DUR);
    fail_unless (gst_structure_get_int (m, "image-tokens", &n));
    {
      struct lfm2_vision_plan plan;
      fail_unless (lfm2_vision_plan_image (get_vision (), 64, 48, &plan) == 0);
      fail_unless_equals_int (n, plan.n_tokens);
    }
    fail_unless (gst_structure_get_int (m, "generated-tokens", &n) && n > 0
        && n <= MAX_TOKENS);
    fail_unless (gst_structure_get_uint (m, "skipped-frames", &skipped) && skipped == 0);
    {
      gdouble ms, ems;
      fail_unless (gst_structure_get_double (m, "inference-ms", &ms) && ms > 0);
      fail_unless (gst_structure_get_double (m, "encode-ms", &ems) && ems > 0 && ems <= ms);
    }
    fail_unless (gst_structure_get_string (m, "stop-reason") != NULL);
    gst_structure_free (m);
    g_free (got);
  }
  fail_unless_equals_uint64 (stat_u64 (v.e, "frames"), 3);
  fail_unless_equals_uint64 (stat_u64 (v.e, "captions"), 3);
  fail_unless_equals_uint64 (stat_u64 (v.e, "skipped-frames"), 0);

  /* the text stream: sticky events first (segment = the video's), then the captions */
  texts = vl_log (&v);
  /* (the harness sent a segment with the caps, then ours) */
  fail_unless (g_str_has_prefix (texts, "stream-start caps segment segment B10000000000 "
          "B10233333331 B10466666662"), "%s", texts);
  {
    GstPad *tp = gst_element_get_static_pad (v.e, "text_src");
    GstEvent *se = gst_pad_get_sticky_event (tp, GST_EVENT_SEGMENT, 0);
    GstEvent *ss = gst_pad_get_sticky_event (tp, GST_EVENT_STREAM_START, 0);
    const GstSegment *ts;
    GstStreamFlags flags;

    gst_event_parse_segment (se, &ts);
    fail_unless_equals_uint64 (ts->start, 10 * GST_SECOND);
    gst_event_parse_stream_flags (ss, &flags);
    fail_unless (flags & GST_STREAM_FLAG_SPARSE);
    gst_event_unref (se);
    gst_event_unref (ss);
    gst_object_unref (tp);
  }
  /* the element never waited on the (test) clock */
  {
    GstTestClock *clock = gst_harness_get_testclock (v.h);
    fail_if (gst_test_clock_peek_next_pending_id (clock, NULL));
    gst_object_unref (clock);
  }
  vl_close (&v);

  for (int i = 0; i < 3; i++) {
    g_free (want[i]);
    g_free (rgb[i]);
    gst_buffer_unref (frames[i]);
  }
  g_free (texts);
  g_free (cs);
}

GST_END_TEST;

GST_START_TEST (test_interval_and_gaps)
{
  Vl v;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_RGB, 32, 32), *log;
  const GstClockTime interval = 100 * GST_MSECOND, fd = 25 * GST_MSECOND;
  GstClockTime pts, dur;
  gchar *got, *want;
  guint8 *rgb;

  vl_open (&v, make_vl ("interval", (guint64) interval, NULL), cs);
  /* frame 0 is due; 1..3 fall inside the interval; 4 (100 ms) is due again */
  for (int i = 0; i <= 4; i++) {
    GstBuffer *b = make_frame (GST_VIDEO_FORMAT_RGB, 32, 32, 50 + i, i == 4 ? &rgb : NULL);
    GST_BUFFER_PTS (b) = i * fd;
    GST_BUFFER_DURATION (b) = fd;
    fail_unless_equals_int (gst_harness_push (v.h, b), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (v.h));
    if (i == 0) {
      /* the worker takes frame 0 before the next ones arrive */
      g_free (pull_caption (&v, &pts, &dur));
      fail_unless_equals_uint64 (pts, 0);
      fail_unless_equals_uint64 (dur, interval);        /* it stands for the interval */
    }
  }
  want = ref_caption (rgb, 32, 32);
  got = pull_caption (&v, &pts, &dur);
  fail_unless_equals_uint64 (pts, 4 * fd);
  fail_unless_equals_string (got, want);
  fail_unless_equals_uint64 (stat_u64 (v.e, "captions"), 2);
  fail_unless_equals_uint64 (stat_u64 (v.e, "skipped-frames"), 0);

  /* a GAP in the video becomes a GAP on text_src, in order with the captions */
  fail_unless (gst_harness_push_event (v.h, gst_event_new_gap (GST_SECOND,
              GST_SECOND / 2)));
  vl_wait_log (&v, "G", 1);
  push_frame (&v, make_frame (GST_VIDEO_FORMAT_RGB, 32, 32, 99, NULL), 3 * GST_SECOND / 2);
  g_free (pull_caption (&v, &pts, &dur));
  fail_unless_equals_uint64 (pts, 3 * GST_SECOND / 2);
  log = vl_log (&v);
  /* (the gap may start earlier: frames 1..3 had nothing to say either) */
  {
    gchar **e = g_strsplit (log, " ", -1);
    guint n = g_strv_length (e);
    guint64 gs, gd;

    fail_unless (n >= 4 && g_str_equal (e[n - 1], "B1500000000") && g_str_equal (e[n - 3],
            "B100000000") && g_str_equal (e[n - 4], "B0"), "%s", log);
    fail_unless (sscanf (e[n - 2], "G%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, &gs,
            &gd) == 2, "%s", log);
    /* up to the end of the video gap, from no earlier than where caption 2 ends (100 ms +
     * the interval) and no later than where the video gap starts */
    fail_unless (gs >= 200 * GST_MSECOND && gs <= GST_SECOND, "%s", log);
    fail_unless_equals_uint64 (gs + gd, 3 * GST_SECOND / 2);
    g_strfreev (e);
  }
  g_free (log);

  vl_close (&v);
  g_free (got);
  g_free (want);
  g_free (rgb);
  g_free (cs);
}

GST_END_TEST;

GST_START_TEST (test_skipping_under_load)
{
  Vl v;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_I420, 48, 32), *want0, *want_last, *got;
  GstBuffer *frames[30];
  guint8 *rgb0, *rgb_last;
  GstStructure *m;
  GstClockTime pts;
  guint skipped;

  for (int i = 0; i < 30; i++)
    frames[i] = make_frame (GST_VIDEO_FORMAT_I420, 48, 32, 100 + i, NULL);
  rgb0 = to_rgb (frames[0], GST_VIDEO_FORMAT_I420, 48, 32);
  rgb_last = to_rgb (frames[29], GST_VIDEO_FORMAT_I420, 48, 32);
  want0 = ref_caption (rgb0, 48, 32);
  want_last = ref_caption (rgb_last, 48, 32);
  /* The worker is held by blocking caption *buffers*; an empty caption goes out as a GAP
   * instead, so these frames must give non-empty (random-model) captions. */
  fail_unless (want0[0] && want_last[0], "pick frames whose captions are not empty");

  vl_open (&v, make_vl (NULL), cs);
  vl_block (&v);
  push_frame (&v, gst_buffer_ref (frames[0]), 0);
  /* the worker captioned frame 0 and is stuck pushing it: the video must not notice */
  vl_wait_blocked (&v);
  for (int i = 1; i < 30; i++)
    push_frame (&v, gst_buffer_ref (frames[i]), i * FRAME_DUR);
  fail_unless_equals_uint64 (stat_u64 (v.e, "frames"), 30);
  fail_unless_equals_uint64 (stat_u64 (v.e, "captions"), 1);
  /* frames 1..28 were replaced in the box by newer ones */
  fail_unless_equals_uint64 (stat_u64 (v.e, "skipped-frames"), 28);
  vl_unblock (&v);

  got = pull_caption (&v, &pts, NULL);
  fail_unless_equals_uint64 (pts, 0);
  fail_unless_equals_string (got, want0);
  g_free (got);
  /* the next caption describes the newest frame */
  got = pull_caption (&v, &pts, NULL);
  fail_unless_equals_uint64 (pts, 29 * FRAME_DUR);
  fail_unless_equals_string (got, want_last);
  g_free (got);
  fail_unless_equals_uint64 (stat_u64 (v.e, "captions"), 2);

  m = pop_caption_message (v.bus);
  fail_unless (gst_structure_get_uint (m, "skipped-frames", &skipped) && skipped == 0);
  gst_structure_free (m);
  m = pop_caption_message (v.bus);
  fail_unless (gst_structure_get_uint (m, "skipped-frames", &skipped));
  fail_unless_equals_int (skipped, 28);
  gst_structure_free (m);
  {
    GstTestClock *clock = gst_harness_get_testclock (v.h);
    fail_if (gst_test_clock_peek_next_pending_id (clock, NULL));
    gst_object_unref (clock);
  }
  vl_close (&v);

  for (int i = 0; i < 30; i++)
    gst_buffer_unref (frames[i]);
  g_free (rgb0);
  g_free (rgb_last);
  g_free (want0);
  g_free (want_last);
  g_free (cs);
}

GST_END_TEST;

GST_START_TEST (test_eos_drains_pending_caption)
{
  Vl v;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_RGB, 40, 30), *log, *want[2], *got;
  GstBuffer *fa, *fb;
  guint8 *ra, *rb;
  GstEvent *ev;
  gboolean video_eos = FALSE;

  fa = make_frame (GST_VIDEO_FORMAT_RGB, 40, 30, 7, &ra);
  fb = make_frame (GST_VIDEO_FORMAT_RGB, 40, 30, 8, &rb);
  want[0] = ref_caption (ra, 40, 30);
  want[1] = ref_caption (rb, 40, 30);

  vl_open (&v, make_vl (NULL), cs);
  vl_block (&v);
  push_frame (&v, gst_buffer_ref (fa), 0);
  vl_wait_blocked (&v);
  push_frame (&v, gst_buffer_ref (fb), FRAME_DUR);      /* waits in the box */
  fail_unless (gst_harness_push_event (v.h, gst_event_new_eos ()));
  /* EOS went out on the video pad at once */
  while ((ev = gst_harness_try_pull_event (v.h)) != NULL) {
    video_eos |= GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (video_eos);
  log = vl_log (&v);
  fail_if (strstr (log, "eos") != NULL, "text EOS before the captions: %s", log);
  g_free (log);

  vl_unblock (&v);
  vl_wait_log (&v, "eos", 1);
  log = vl_log (&v);
  fail_unless (g_str_has_suffix (log, "B0 B33333333 eos"), "%s", log);
  g_free (log);
  for (int i = 0; i < 2; i++) {
    got = pull_caption (&v, NULL, NULL);
    fail_unless_equals_string (got, want[i]);
    g_free (got);
  }
  vl_close (&v);

  gst_buffer_unref (fa);
  gst_buffer_unref (fb);
  g_free (ra);
  g_free (rb);
  g_free (want[0]);
  g_free (want[1]);
  g_free (cs);
}

GST_END_TEST;

GST_START_TEST (test_flush)
{
  Vl v;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_RGB, 40, 30), *log, *want, *got;
  GstBuffer *fa, *fb, *fc;
  guint8 *rc;
  GstSegment seg;
  GstClockTime pts;

  fa = make_frame (GST_VIDEO_FORMAT_RGB, 40, 30, 11, NULL);
  fb = make_frame (GST_VIDEO_FORMAT_RGB, 40, 30, 12, NULL);
  fc = make_frame (GST_VIDEO_FORMAT_RGB, 40, 30, 13, &rc);
  want = ref_caption (rc, 40, 30);

  vl_open (&v, make_vl (NULL), cs);
  vl_block (&v);
  push_frame (&v, gst_buffer_ref (fa), 0);
  vl_wait_blocked (&v);
  push_frame (&v, gst_buffer_ref (fb), FRAME_DUR);
  /* a flushing seek: the caption being pushed and the frame in the box are dropped */
  fail_unless (gst_harness_push_event (v.h, gst_event_new_flush_start ()));
  vl_unblock (&v);
  fail_unless (gst_harness_push_event (v.h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (v.h, gst_event_new_segment (&seg)));
  push_frame (&v, gst_buffer_ref (fc), 5 * GST_SECOND);
  vl_wait_log (&v, "B", 1);
  log = vl_log (&v);
  fail_unless (strstr (log, "flush-start flush-stop") != NULL, "%s", log);
  fail_unless (g_str_has_suffix (log, "segment B5000000000"), "%s", log);
  g_free (log);
  while (TRUE) {
    got = pull_caption (&v, &pts, NULL);
    if (pts == 5 * GST_SECOND)
      break;
    g_free (got);               /* the harness may have queued frame 0's before the flush */
  }
  fail_unless_equals_string (got, want);
  vl_close (&v);

  g_free (got);
  g_free (want);
  g_free (rc);
  gst_buffer_unref (fa);
  gst_buffer_unref (fb);
  gst_buffer_unref (fc);
  g_free (cs);
}

GST_END_TEST;

GST_START_TEST (test_latency)
{
  Vl v;
  GstMessage *m;

  vl_open (&v, make_vl ("latency", 750, NULL), "video/x-raw, format=RGB, width=16, "
      "height=16, framerate=30/1");
  gst_harness_set_upstream_latency (v.h, 20 * GST_MSECOND);
  /* video adds nothing; text is late by up to `latency` */
  fail_unless_equals_uint64 (gst_harness_query_latency (v.h), 20 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (v.ht), 770 * GST_MSECOND);
  {
    GstQuery *q = gst_query_new_latency ();
    GstPad *tp = gst_element_get_static_pad (v.e, "text_src");
    gboolean live;
    GstClockTime min, max;

    fail_unless (gst_pad_query (tp, q));
    gst_query_parse_latency (q, &live, &min, &max);
    fail_unless (live);
    fail_unless_equals_uint64 (min, 770 * GST_MSECOND);
    fail_if (GST_CLOCK_TIME_IS_VALID (max));
    gst_query_unref (q);
    gst_object_unref (tp);
  }
  /* changing it asks the pipeline to recompute */
  while ((m = gst_bus_pop (v.bus)) != NULL)
    gst_message_unref (m);
  g_object_set (v.e, "latency", 2000, NULL);
  m = gst_bus_pop_filtered (v.bus, GST_MESSAGE_LATENCY);
  fail_unless (m != NULL);
  gst_message_unref (m);
  fail_unless_equals_uint64 (gst_harness_query_latency (v.ht), 2020 * GST_MSECOND);
  vl_close (&v);
}

GST_END_TEST;

/* READY→PAUSED with these files must fail with a RESOURCE error naming `name`. */
/* Records, from the thread that pushes captions (the worker), its nice value. */
typedef struct {
  gint nice, seen;
} WorkerThread;

static GstPadProbeReturn
worker_thread_probe (GstPad * pad, GstPadProbeInfo * info, gpointer data)
{
  WorkerThread *w = data;

  g_atomic_int_set (&w->nice, getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid)));
  g_atomic_int_set (&w->seen, 1);
  return GST_PAD_PROBE_OK;
}

/* The image tokens of the next caption (waits for its message). */
static gint
next_caption_tokens (GstBus * bus)
{
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND, GST_MESSAGE_ELEMENT);
    const GstStructure *s;
    gint n = -1;

    fail_unless (m != NULL, "no caption message");
    s = gst_message_get_structure (m);
    if (gst_structure_has_name (s, "lfm2vl/caption"))
      fail_unless (gst_structure_get_int (s, "image-tokens", &n));
    gst_message_unref (m);
    if (n >= 0)
      return n;
  }
}

/* Runs captions of two 1100×500 frames with `budget` and returns their image tokens; the
 * plans for that size are 742 (2×1 tiles + thumbnail), then untiled 230, 112 and 55. */
static void
budget_run (guint budget, gint nice, gboolean live, gint tokens[2], WorkerThread * w)
{
  Vl v;
  GstPad *tp;

  vl_open (&v, make_vl ("caption-budget", budget, "inference-nice", nice, NULL), NULL);
  gst_harness_set_live (v.h, live);     /* what upstream answers to LATENCY */
  gst_harness_set_src_caps_str (v.h,
      "video/x-raw, format=RGB, width=1100, height=500, framerate=30/1");
  tp = gst_element_get_static_pad (v.e, "text_src");
  gst_pad_add_probe (tp, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      worker_thread_probe, w, NULL);
  gst_object_unref (tp);
  for (gint i = 0; i < 2; i++) {
    push_frame (&v, make_frame (GST_VIDEO_FORMAT_RGB, 1100, 500, 40 + i, NULL),
        i * GST_SECOND);
    tokens[i] = next_caption_tokens (v.bus);
  }
  vl_close (&v);
}

/* caption-budget picks the plan from measured costs; the worker runs on a thread of its
 * own at inference-nice (so lowering its priority touches no other element's thread). */
GST_START_TEST (test_caption_budget_and_priority)
{
  const gint base = getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid));
  WorkerThread w = { 0 };
  gint t[2];

  GstElement *e = gst_element_factory_make ("lfm2vl", NULL);
  guint budget;
  gint nice;

  g_object_get (e, "caption-budget", &budget, "inference-nice", &nice, NULL);
  fail_unless_equals_int (budget, 2000);
  fail_unless_equals_int (nice, 10);
  gst_object_unref (e);
  /* no measurement yet, a live source: the smallest plan; then everything fits a budget of
   * ten minutes (a generous one: this must hold under sanitizers on a loaded machine) */
  budget_run (600000, 10, TRUE, t, &w);
  fail_unless_equals_int (t[0], 55);
  fail_unless_equals_int (t[1], 742);
  fail_unless (g_atomic_int_get (&w.seen));
  if (base + 10 <= 19)
    fail_unless_equals_int (g_atomic_int_get (&w.nice), base + 10);
  /* not live: the largest untiled plan first; then nothing fits 1 ms: the smallest plan */
  budget_run (1, 10, FALSE, t, &w);
  fail_unless_equals_int (t[0], 230);
  fail_unless_equals_int (t[1], 55);
  /* 0: the image settings as set, from the first caption on; nice 0 keeps the priority */
  budget_run (0, 0, TRUE, t, &w);
  fail_unless_equals_int (t[0], 742);
  fail_unless_equals_int (t[1], 742);
  fail_unless_equals_int (g_atomic_int_get (&w.nice), base);
  /* the application's thread kept its priority */
  fail_unless_equals_int (getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid)), base);
}

GST_END_TEST;

/* min-tiles 1 and a frame size where transformers' text and image features disagree: the
 * caps are refused at once, with an error naming the size and the setting. */
GST_START_TEST (test_refused_frame_size)
{
  Vl v;
  GstMessage *m;
  GError *err = NULL;
  GstCaps *caps = gst_caps_from_string ("video/x-raw, format=RGB, width=725, height=723, "
      "framerate=30/1");

  vl_open (&v, make_vl ("min-tiles", 1, NULL), NULL);
  gst_harness_play (v.h);
  fail_unless (gst_harness_push_event (v.h, gst_event_new_stream_start ("refused")));
  /* (a sticky event's push may still report success; the element's answer is the error) */
  gst_harness_push_event (v.h, gst_event_new_caps (caps));
  m = gst_bus_pop_filtered (v.bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (err->domain == GST_STREAM_ERROR && strstr (err->message, "725×723")
      && strstr (err->message, "min_tiles 1"), "%s", err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_caps_unref (caps);
  vl_close (&v);
}

GST_END_TEST;

static void
check_start_error (const gchar * model, const gchar * mmproj, gint code, const gchar * name)
{
  GstElement *e = make_vl ("model", model, "mmproj", mmproj, NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;
  gchar *dbg = NULL;

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
  gchar *other = g_build_filename (data_dir, "..", "text", "small-q8_0",
      "lfm2-small-q8_0.gguf", NULL);
  gchar *text_only = g_build_filename (data_dir, "..", "text", "tiny-q8_0",
      "lfm2-tiny-q8_0.gguf", NULL);
  gchar *tmpdir = g_dir_make_tmp ("lfm2vl-XXXXXX", NULL);
  gchar *cut = g_build_filename (tmpdir, "cut-mmproj.gguf", NULL);
  gchar *contents;
  gsize len;

  /* missing files */
  check_start_error (model_path, missing, GST_RESOURCE_ERROR_NOT_FOUND, "no-such-mmproj");
  check_start_error (missing_model, mmproj_path, GST_RESOURCE_ERROR_NOT_FOUND,
      "no-such-model");
  check_start_error (model_path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, "mmproj");
  /* an mmproj whose projector writes 128-wide rows for a 256-wide model */
  check_start_error (other, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "n_embd 256");
  check_start_error (other, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "lfm2-small-q8_0");
  /* a text-only LFM2 model of the same width (128): it lacks LFM2-VL's tile marker tokens,
   * so every caption would be noise; the error names both files and the missing token */
  check_start_error (text_only, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "lfm2-tiny-q8_0");
  check_start_error (text_only, mmproj_path, GST_RESOURCE_ERROR_SETTINGS,
      "lfm2-vl-tiny-mmproj-f32");
  check_start_error (text_only, mmproj_path, GST_RESOURCE_ERROR_SETTINGS, "<|img_row_1_col_2|>");
  /* a text model given as the mmproj */
  check_start_error (model_path, model_path, GST_RESOURCE_ERROR_OPEN_READ,
      "lfm2-vl-tiny-text");
  /* a truncated mmproj */
  fail_unless (g_file_get_contents (mmproj_path, &contents, &len, NULL));
  fail_unless (g_file_set_contents (cut, contents, len / 2, NULL));
  check_start_error (model_path, cut, GST_RESOURCE_ERROR_OPEN_READ, "cut-mmproj");
  /* bad image settings */
  {
    GstElement *e = make_vl ("min-image-tokens", 300, "max-image-tokens", 200, NULL);
    GstBus *bus = gst_bus_new ();
    GstMessage *m;

    gst_element_set_bus (e, bus);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (m != NULL);
    gst_message_unref (m);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
    gst_object_unref (e);
  }
  /* a processor config with a bad value: the file and the field */
  {
    gchar *cfg = g_build_filename (tmpdir, "processor_config.json", NULL);
    GstElement *e;
    GstBus *bus = gst_bus_new ();
    GstMessage *m;
    GError *err = NULL;

    fail_unless (g_file_set_contents (cfg, "{\"max_pixels_tolerance\": -2}", -1, NULL));
    e = make_vl ("preprocessor-config", cfg, NULL);
    gst_element_set_bus (e, bus);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (m != NULL);
    gst_message_parse_error (m, &err, NULL);
    fail_unless (err->domain == GST_RESOURCE_ERROR
        && err->code == GST_RESOURCE_ERROR_SETTINGS, "%s", err->message);
    fail_unless (strstr (err->message, cfg) && strstr (err->message, "max_pixels_tolerance"),
        "%s", err->message);
    g_error_free (err);
    gst_message_unref (m);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
    gst_object_unref (e);
    g_unlink (cfg);
    g_free (cfg);
  }

  g_unlink (cut);
  g_rmdir (tmpdir);
  g_free (contents);
  g_free (cut);
  g_free (tmpdir);
  g_free (missing);
  g_free (missing_model);
  g_free (other);
  g_free (text_only);
}

GST_END_TEST;

GST_START_TEST (test_prompts)
{
  Vl v;
  gchar *cs = caps_str (GST_VIDEO_FORMAT_RGB, 48, 48), *want, *got;
  GstBuffer *b = make_frame (GST_VIDEO_FORMAT_RGB, 48, 48, 77, NULL);
  guint8 *rgb = to_rgb (b, GST_VIDEO_FORMAT_RGB, 48, 48);
  const gchar *sys = "You caption security camera footage.";
  const gchar *mid = "Look at this: <__media__> What is it?";

  /* a system turn, and the image placed by the marker */
  want = ref_caption_full (rgb, 48, 48, 48 * 3, sys, mid, MAX_TOKENS);
  vl_open (&v, make_vl ("system-prompt", sys, "prompt", mid, NULL), cs);
  push_frame (&v, gst_buffer_ref (b), 0);
  got = pull_caption (&v, NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);

  /* changed while playing: the next caption uses the new prompt and max-tokens */
  want = ref_caption_full (rgb, 48, 48, 48 * 3, sys, "Name one colour.", 5);
  g_object_set (v.e, "prompt", "Name one colour.", "max-tokens", 5, NULL);
  push_frame (&v, gst_buffer_ref (b), GST_SECOND);
  got = pull_caption (&v, NULL, NULL);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);
  vl_close (&v);

  gst_buffer_unref (b);
  g_free (rgb);
  g_free (cs);
}

GST_END_TEST;

/* appsrc frames → pipeline → the texts at the appsink. */
static GPtrArray *
run_pipeline (const gchar * desc, GstBuffer ** frames, guint n, const gchar * caps)
{
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *src, *sink;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GstBus *bus;
  GstMessage *m;
  GstCaps *c = gst_caps_from_string (caps);

  fail_unless (pipe != NULL, "%s", desc);
  src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  g_object_set (src, "caps", c, "format", GST_FORMAT_TIME, NULL);
  gst_caps_unref (c);
  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_buffer_ref (frames[i]);
    GST_BUFFER_PTS (b) = i * GST_SECOND;
    GST_BUFFER_DURATION (b) = GST_SECOND;
    fail_unless_equals_int (gst_app_src_push_buffer (GST_APP_SRC (src), b), GST_FLOW_OK);
    if (strstr (desc, "lfm2vl")) {
      /* one frame at a time, so none is skipped */
      GstSample *s = gst_app_sink_pull_sample (GST_APP_SINK (sink));
      fail_unless (s != NULL);
      g_ptr_array_add (out, buffer_text (gst_sample_get_buffer (s)));
      gst_sample_unref (s);
    }
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  for (;;) {
    GstSample *s = gst_app_sink_pull_sample (GST_APP_SINK (sink));
    if (s == NULL)
      break;
    g_ptr_array_add (out, buffer_text (gst_sample_get_buffer (s)));
    gst_sample_unref (s);
  }
  bus = gst_element_get_bus (pipe);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m == NULL, "pipeline error");
  gst_object_unref (bus);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipe);
  return out;
}

GST_START_TEST (test_vlenc_lfm2text_equals_lfm2vl)
{
  const gchar *caps = "video/x-raw, format=I420, width=96, height=80, framerate=1/1";
  const gchar *sys = "Be brief.";
  gchar *common = g_strdup_printf ("n-threads=%d max-tokens=%d temperature=0.8 min-p=0.05 "
      "repeat-penalty=1.1 top-k=0 top-p=1.0 seed=%d system-prompt=\"%s\"", N_THREADS,
      MAX_TOKENS, SEED, sys);
  gchar *enc_desc = g_strdup_printf ("appsrc name=src ! lfm2vlenc mmproj=\"%s\" "
      "model=\"%s\" n-threads=%d ! lfm2text model=\"%s\" prompt-template=\"%s\" %s ! "
      "appsink name=sink sync=false", mmproj_path, model_path, N_THREADS, model_path,
      PROMPT, common);
  gchar *vl_desc = g_strdup_printf ("appsrc name=src ! lfm2vl name=vl model=\"%s\" "
      "mmproj=\"%s\" prompt=\"%s\" %s ! fakesink sync=false  vl.text_src ! "
      "appsink name=sink sync=false", model_path, mmproj_path, PROMPT, common);
  GstBuffer *frames[3];
  GPtrArray *a, *b;

  for (int i = 0; i < 3; i++)
    frames[i] = make_frame (GST_VIDEO_FORMAT_I420, 96, 80, 300 + i, NULL);
  a = run_pipeline (enc_desc, frames, 3, caps);
  b = run_pipeline (vl_desc, frames, 3, caps);
  fail_unless_equals_int (a->len, 3);
  fail_unless_equals_int (b->len, 3);
  for (int i = 0; i < 3; i++) {
    guint8 *rgb = to_rgb (frames[i], GST_VIDEO_FORMAT_I420, 96, 80);
    gchar *want = ref_caption_full (rgb, 96, 80, 96 * 3, sys, PROMPT, MAX_TOKENS);
    gchar *enc_text = one_line (g_ptr_array_index (a, i));

    fail_unless_equals_string (g_ptr_array_index (b, i), want);
    fail_unless_equals_string (enc_text, want);
    g_free (enc_text);
    g_free (want);
    g_free (rgb);
    gst_buffer_unref (frames[i]);
  }
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
  g_free (common);
  g_free (enc_desc);
  g_free (vl_desc);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  gchar *desc = g_strdup_printf ("appsrc name=src format=time is-live=true "
      "caps=\"video/x-raw,format=NV12,width=64,height=48,framerate=30/1\" ! "
      "lfm2vl name=vl model=\"%s\" mmproj=\"%s\" n-threads=%d max-tokens=4 ! "
      "fakesink sync=false async=false  vl.text_src ! fakesink sync=false async=false",
      model_path, mmproj_path, N_THREADS);
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_NV12, 64, 48, 5, NULL);

  fail_unless (pipe != NULL);
  for (int round = 0; round < 6; round++) {
    /* stop at every stage, with frames in flight */
    GstState target = round % 3 == 0 ? GST_STATE_READY : round % 3 == 1 ?
        GST_STATE_PAUSED : GST_STATE_NULL;

    fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING)
        != GST_STATE_CHANGE_FAILURE);
    for (int i = 0; i < 10; i++) {
      GstBuffer *b = gst_buffer_copy (frame);
      GST_BUFFER_PTS (b) = i * FRAME_DUR;
      GST_BUFFER_DURATION (b) = FRAME_DUR;
      gst_app_src_push_buffer (GST_APP_SRC (src), b);
    }
    if (round & 1)
      g_usleep (20000);         /* sometimes mid-caption, sometimes before */
    fail_unless (gst_element_set_state (pipe, target) != GST_STATE_CHANGE_FAILURE);
    fail_unless (gst_element_get_state (pipe, NULL, NULL, GST_CLOCK_TIME_NONE)
        != GST_STATE_CHANGE_FAILURE);
  }
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_buffer_unref (frame);
  gst_object_unref (src);
  gst_object_unref (pipe);
  g_free (desc);
}

GST_END_TEST;


static Suite *
lfm2vl_suite (void)
{
  Suite *s = suite_create ("lfm2vl");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");
  const gchar *plugins[] = { "libgstcoreelements.so", "libgstapp.so" };
  GError *err = NULL;

  g_assert (root != NULL);     /* set by tests/check/meson.build */
  data_dir = g_build_filename (root, "vision", NULL);
  model_path = g_build_filename (data_dir, "lfm2-vl-tiny-text-q4_0.gguf", NULL);
  mmproj_path = g_build_filename (data_dir, "lfm2-vl-tiny-mmproj-f32.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());
  /* the system elements the pipeline tests use (no system plugin path in tests) */
  for (guint i = 0; i < G_N_ELEMENTS (plugins); i++) {
    gchar *file = g_build_filename (GST_SYSTEM_PLUGINS_DIR, plugins[i], NULL);
    GstPlugin *p = gst_plugin_load_file (file, &err);

    if (p == NULL)
      g_error ("%s: %s", file, err->message);
    gst_object_unref (p);
    g_free (file);
  }

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata_and_properties);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_format_preference);
  tcase_add_test (tc, test_timestamps_and_message);
  tcase_add_test (tc, test_interval_and_gaps);
  tcase_add_test (tc, test_skipping_under_load);
  tcase_add_test (tc, test_eos_drains_pending_caption);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_prompts);
  tcase_add_test (tc, test_vlenc_lfm2text_equals_lfm2vl);
  tcase_add_test (tc, test_state_cycling);
  tcase_add_test (tc, test_caption_budget_and_priority);
  tcase_add_test (tc, test_refused_frame_size);
  return s;
}

GST_CHECK_MAIN (lfm2vl);
