/* gstlfm2genelement.h — GstLfm2GenElement: the abstract base class of the elements that
 * generate text with an LFM2 backbone (lfm2text, lfm2vl, and lfm2asr next), as
 * GstAudioDecoder or GstVideoEncoder are for their families in gst-plugins-base.
 *
 * What a subclass gets:
 *
 *   - The shared properties, with the same names, ranges, blurbs and mutability in every
 *     element: model, system-prompt, max-tokens, context-length, n-threads and the sampling
 *     properties temperature, top-k, top-p, min-p, repeat-penalty, seed. They are installed
 *     on the subclass by gst_lfm2_gen_element_class_install_properties() with the subclass's
 *     defaults (the LFM2, LFM2-VL and LFM2-Audio model cards recommend different ones), and
 *     stored in `settings` under the object lock.
 *   - READY→PAUSED: the model from the registry, then the subclass's start() (its own files,
 *     checks against the model), then the generator (context + sampler) with the system turn
 *     prefilled; any failure posts an ERROR naming the file and fails the state change.
 *     PAUSED→READY sets `cancel`, then releases it all (the subclass's stop() first).
 *   - gst_lfm2_gen_element_apply_settings(): property changes made while playing, handed to
 *     the generator between requests by the thread that generates.
 *   - gst_lfm2_gen_element_generate(): one request with the element's cancel flag; engine
 *     errors are posted, an input that does not fit the context is reported back so the
 *     element can say which input it dropped and keep its output aligned.
 *
 * A new element (here lfm2asr, audio in, text out) needs:
 *
 *   G_DECLARE_FINAL_TYPE (GstLfm2Asr, gst_lfm2_asr, GST, LFM2_ASR, GstLfm2GenElement)
 *   struct _GstLfm2Asr { GstLfm2GenElement parent; ...its own fields... };
 *   G_DEFINE_TYPE (GstLfm2Asr, gst_lfm2_asr, GST_TYPE_LFM2_GEN_ELEMENT);
 *
 *   enum { PROP_0, PROP_MMPROJ, ... };     // its own ids stay below GST_LFM2_GEN_PROP_FIRST
 *
 *   class_init:
 *     static const GstLfm2GenElementDefaults defaults = {
 *       .system_prompt = "Perform ASR.", .max_tokens = 256, .temperature = 0.0f,
 *     };
 *     gst_lfm2_gen_element_class_install_properties (GST_LFM2_GEN_ELEMENT_CLASS (klass),
 *         &defaults);
 *     GST_LFM2_GEN_ELEMENT_CLASS (klass)->start = gst_lfm2_asr_start;   // optional
 *     GST_LFM2_GEN_ELEMENT_CLASS (klass)->stop = gst_lfm2_asr_stop;     // optional
 *
 *   set_property / get_property, in the default branch:
 *     if (!gst_lfm2_gen_element_set_property (GST_LFM2_GEN_ELEMENT (object), prop_id, value))
 *       G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
 *
 *   per request, in the thread that generates:
 *     if (!gst_lfm2_gen_element_apply_settings (base))
 *       return GST_FLOW_ERROR;                                  // posted
 *     ret = gst_lfm2_gen_element_generate (base, text, &media, 1, out, &stats, &err);
 *     if (ret == GST_LFM2_GEN_FLOW_DROPPED) { warn naming the input (err), push a GAP; }
 *
 * start() receives the loaded model and the generator parameters (it may change them, e.g.
 * chat = FALSE); it posts its own error and returns FALSE to fail READY→PAUSED.
 */
#ifndef GST_LFM2_GEN_ELEMENT_H
#define GST_LFM2_GEN_ELEMENT_H

#include <gst/gst.h>

#include "gstlfm2gen.h"
#include "gstlfm2model.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_GEN_ELEMENT (gst_lfm2_gen_element_get_type ())
#define GST_LFM2_GEN_ELEMENT(obj) \
  (G_TYPE_CHECK_INSTANCE_CAST ((obj), GST_TYPE_LFM2_GEN_ELEMENT, GstLfm2GenElement))
#define GST_LFM2_GEN_ELEMENT_CLASS(klass) \
  (G_TYPE_CHECK_CLASS_CAST ((klass), GST_TYPE_LFM2_GEN_ELEMENT, GstLfm2GenElementClass))
#define GST_LFM2_GEN_ELEMENT_GET_CLASS(obj) \
  (G_TYPE_INSTANCE_GET_CLASS ((obj), GST_TYPE_LFM2_GEN_ELEMENT, GstLfm2GenElementClass))
#define GST_IS_LFM2_GEN_ELEMENT(obj) (G_TYPE_CHECK_INSTANCE_TYPE ((obj), GST_TYPE_LFM2_GEN_ELEMENT))

/* Declared by hand (not G_DECLARE_DERIVABLE_TYPE) so subclasses reach the protected fields,
 * as in gst-plugins-base's base classes. */
typedef struct _GstLfm2GenElement GstLfm2GenElement;
typedef struct _GstLfm2GenElementClass GstLfm2GenElementClass;

GType gst_lfm2_gen_element_get_type (void);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstLfm2GenElement, gst_object_unref)

/* Property ids from here on belong to the base class; a subclass numbers its own below. */
#define GST_LFM2_GEN_PROP_FIRST 0x100

/* gst_lfm2_gen_element_generate(): the input does not fit the context (nothing generated). */
#define GST_LFM2_GEN_FLOW_DROPPED GST_FLOW_CUSTOM_SUCCESS

/* The shared properties as the application set them (object lock). */
typedef struct {
  gchar *model;
  gchar *system_prompt;
  gint max_tokens;
  gint context_length;
  gint n_threads;
  struct lfm2_sampler_params sampling;   /* temperature … seed */
} GstLfm2GenSettings;

/* A subclass's defaults. The other sampling defaults are the LFM2 model cards' (top-p 1,
 * min-p 0.15, repeat-penalty 1.05, seed 0); context-length 0 and n-threads 0 (automatic)
 * everywhere. */
typedef struct {
  const gchar *system_prompt;   /* NULL = none */
  gint max_tokens;
  gfloat temperature;
  gint top_k;                   /* 0 = off */
  /* Speech output (lfm2tts, lfm2s2s): the subclass generates with lfm2_tts, which makes its
   * own context, so READY→PAUSED makes no GstLfm2Gen (gen stays NULL; do not call
   * apply_settings or generate), and the sampling properties are those of the audio head:
   * temperature, top-k and seed (no top-p, min-p, repeat-penalty; text tokens are greedy
   * in every reference). The subclass reads `settings` under the object lock itself. */
  gboolean speech;
} GstLfm2GenElementDefaults;

struct _GstLfm2GenElementClass {
  GstElementClass parent_class;

  /* READY→PAUSED with the model loaded, before the generator is made. Posts its own error
   * and returns FALSE to fail the state change. */
  gboolean (*start) (GstLfm2GenElement * self, const lfm2_model * model,
      GstLfm2GenParams * params);
  /* Undoes start(): at PAUSED→READY, or when READY→PAUSED fails after start() ran — also
   * when start() itself failed, so it must cope with a partial start. The model is still
   * held. */
  void (*stop) (GstLfm2GenElement * self);

  /*< private >*/
  GstLfm2GenElementDefaults defaults;
};

struct _GstLfm2GenElement {
  GstElement parent;

  /*< protected >*/
  GstLfm2GenSettings settings;  /* object lock */

  /* READY→PAUSED … PAUSED→READY; used by the one thread that generates */
  GstLfm2Shared *shared;        /* the model */
  GstLfm2Gen *gen;
  gint cancel;                  /* atomic: non-zero stops the running request */

  /*< private >*/
  gboolean started;             /* the subclass's start() ran: its stop() is due */
  guint dirty;                  /* object lock: settings not yet handed to gen */
  gint n_embd, n_vocab;         /* object lock: of the loaded model, 0 without one */
  gchar *model_id;              /* object lock */
};

void gst_lfm2_gen_element_class_install_properties (GstLfm2GenElementClass * klass,
    const GstLfm2GenElementDefaults * defaults);

/* For the subclass's set/get_property: FALSE when prop_id is not a base property. */
gboolean gst_lfm2_gen_element_set_property (GstLfm2GenElement * self, guint prop_id,
    const GValue * value);
gboolean gst_lfm2_gen_element_get_property (GstLfm2GenElement * self, guint prop_id,
    GValue * value);

/* Hands settings changed since the last call to the generator. FALSE after posting an
 * ERROR (a system prompt that does not fit the context). */
gboolean gst_lfm2_gen_element_apply_settings (GstLfm2GenElement * self);

/* One request (see gst_lfm2_gen_run): GST_FLOW_OK with the text appended to `out`;
 * GST_LFM2_GEN_FLOW_DROPPED with *dropped set (not posted) when the input does not fit the
 * context; GST_FLOW_FLUSHING when cancelled; GST_FLOW_ERROR after posting an ERROR. */
GstFlowReturn gst_lfm2_gen_element_generate (GstLfm2GenElement * self,
    const gchar * user_text, const GstLfm2GenMedia * media, guint n_media, GString * out,
    GstLfm2GenStats * stats, GError ** dropped);
/* The same, with the text handed to `on_piece` as it comes (see gst_lfm2_gen_run); when
 * on_piece returns FALSE the request stops: GST_FLOW_OK with stats->stop = CANCELLED. */
GstFlowReturn gst_lfm2_gen_element_generate_full (GstLfm2GenElement * self,
    const gchar * user_text, const GstLfm2GenMedia * media, guint n_media,
    GstLfm2GenPieceFunc on_piece, gpointer user_data, GString * out, GstLfm2GenStats * stats,
    GError ** dropped);

/* Generated text as one line: white space runs become one space, none at the ends (SRT
 * cues end at a blank line; overlays wrap by themselves). */
void gst_lfm2_gen_element_one_line (GString * s);

/* The loaded model's width, vocabulary size and id (0, 0, NULL before READY→PAUSED), for
 * caps queries from any thread. model_id may be NULL; free it. */
void gst_lfm2_gen_element_get_model_info (GstLfm2GenElement * self, gint * n_embd,
    gint * n_vocab, gchar ** model_id);

/* ---- the text pad of a live generating element --------------------------------------
 *
 * lfm2vl's text_src and lfm2asr's src: a sparse text stream pushed from the element's worker
 * thread, with stream-start, caps and a segment before any data, text buffers, and GAP events
 * over the times that get no text, so text consumers always know how far it has got. */

#define GST_LFM2_TEXT_CAPS "text/x-raw, format = (string) utf8"

typedef struct {
  GstPad *pad;                  /* its template caps are the caps pushed */
  GstClockTime pos;             /* end of what it has covered (buffers and GAPs), or NONE */
  gboolean segment_sent;
} GstLfm2TextPad;

void gst_lfm2_text_pad_init (GstLfm2TextPad * t, GstPad * pad);
/* A new stream, a flush: stream-start (if none yet), caps and a segment go out again first. */
void gst_lfm2_text_pad_reset (GstLfm2TextPad * t);
void gst_lfm2_text_pad_ensure_events (GstLfm2TextPad * t, GstElement * element);
/* Nothing comes before `end`: a GAP from max(start, pos) (start NONE: from pos). */
void gst_lfm2_text_pad_push_gap (GstLfm2TextPad * t, GstElement * element,
    GstClockTime start, GstClockTime end);
/* A serialized event in stream order (stream-start gets the caps after it; a GAP event
 * becomes push_gap). Takes the event. */
gboolean gst_lfm2_text_pad_push_event (GstLfm2TextPad * t, GstElement * element,
    GstEvent * event);
/* Text for [pts, pts + duration): a buffer, or a GAP when len is 0. */
GstFlowReturn gst_lfm2_text_pad_push_text (GstLfm2TextPad * t, GstElement * element,
    const gchar * text, gsize len, GstClockTime pts, GstClockTime duration);

/* A LATENCY query on the text pad: upstream's (asked through sinkpad) + latency_ms as the
 * minimum, no maximum (text needs no buffering, as the gst-plugins-rs transcribers report). */
gboolean gst_lfm2_text_pad_query_latency (GstObject * element, GstPad * sinkpad,
    GstQuery * query, guint latency_ms);

/* How far behind the clock running time `rt` is now, in a live pipeline in PLAYING; NONE
 * otherwise. */
GstClockTime gst_lfm2_gen_element_behind_clock (GstLfm2GenElement * self, GstClockTime rt);

/* After one run of a worker task: TRUE when the task goes on (also for NOT_LINKED and EOS:
 * nobody reads the text, the messages still go out); FALSE when it must pause, after posting
 * the flow error unless `ret` is `posted` (an error the element has posted itself). */
gboolean gst_lfm2_gen_element_worker_flow (GstLfm2GenElement * self, GstFlowReturn ret,
    GstFlowReturn posted);

G_END_DECLS

#endif /* GST_LFM2_GEN_ELEMENT_H */
