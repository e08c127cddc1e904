/* gstlfm2tts.h — lfm2tts: text to speech with LFM2.5-Audio (or to frames of audio codes). */
#ifndef GST_LFM2_TTS_H
#define GST_LFM2_TTS_H

#include <gst/gst.h>

#include "gstlfm2genelement.h"
#include "gstlfm2speech.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_TTS (gst_lfm2_tts_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Tts, gst_lfm2_tts, GST, LFM2_TTS, GstLfm2GenElement)

/* Settings of this element as the application sets them (object lock; the shared ones are
 * in the base class). */
typedef struct {
  gchar *vocoder;
  gchar *tokenizer;
  GstLfm2Voice voice;
  GstLfm2Overflow overflow;
  guint latency_ms;
} GstLfm2TtsSettings;

/* What the generator runs with now (streaming thread), to see what changed. */
typedef struct {
  gchar *system_prompt;         /* NULL = the voice's */
  GstLfm2Voice voice;
  gfloat temperature;
  gint top_k;
  guint64 seed;
} GstLfm2TtsApplied;

struct _GstLfm2Tts {
  GstLfm2GenElement parent;

  GstPad *sinkpad, *srcpad;
  GstLfm2TtsSettings settings;  /* object lock */

  /* READY→PAUSED … PAUSED→READY (the model is the base class's) */
  GstLfm2Shared *vocoder, *tokenizer;   /* tokenizer NULL: codes only */
  gint n_ctx, n_threads;

  /* streaming thread */
  lfm2_tts *tts;
  gboolean tts_vocodes;
  GstLfm2TtsApplied applied;
  gboolean applied_valid;
  GstLfm2SpeechOut out;
  GString *text;                /* the input, cleaned */
  gchar *turn;                  /* one turn's text */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2tts);

G_END_DECLS

#endif /* GST_LFM2_TTS_H */
