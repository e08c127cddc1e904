/* gstlfm2audiodec.h — lfm2audiodec: frames of LFM2.5-Audio codes (other/tensors) → 24 kHz
 * audio, the vocoding half of lfm2tts as its own element. */
#ifndef GST_LFM2_AUDIODEC_H
#define GST_LFM2_AUDIODEC_H

#include <gst/gst.h>

#include "gstlfm2speech.h"
#include "gstlfm2tensors.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_AUDIODEC (gst_lfm2_audiodec_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2AudioDec, gst_lfm2_audiodec, GST, LFM2_AUDIODEC, GstElement)

struct _GstLfm2AudioDec {
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  /* settings (object lock) */
  gchar *vocoder_path, *tokenizer_path;
  gint n_threads;

  /* READY→PAUSED … PAUSED→READY */
  GstLfm2Shared *vocoder, *tokenizer;
  lfm2_audio_decoder *dec;
  gint n_codebooks, eoa;

  /* streaming thread */
  GstLfm2TensorsConfig config;  /* of the sink caps */
  GstLfm2SpeechOut out;
  gboolean open;                /* an utterance is being decoded */
  gint64 frames;                /* frames of it so far */
  gfloat *samples;              /* decoder output, grown to the largest buffer */
  gsize samples_cap;
};

GST_ELEMENT_REGISTER_DECLARE (lfm2audiodec);

G_END_DECLS

#endif /* GST_LFM2_AUDIODEC_H */
