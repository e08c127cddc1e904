/* gstlfm2audioenc.h — lfm2audioenc: the LFM2-Audio encoder as an element (audio/x-raw in,
 * one `other/tensors` buffer of audio embeddings per utterance out). The audio helpers it
 * shares with lfm2asr are in gstlfm2audio.h. */
#ifndef GST_LFM2_AUDIOENC_H
#define GST_LFM2_AUDIOENC_H

#include <gst/gst.h>

#include "gstlfm2audio.h"
#include "gstlfm2tensors.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_AUDIOENC (gst_lfm2_audioenc_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2AudioEnc, gst_lfm2_audioenc, GST, LFM2_AUDIOENC, GstElement)

struct _GstLfm2AudioEnc {
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  /* settings (object lock) */
  GstLfm2AudioSettings audio;
  gchar *model;
  gint n_threads;

  /* READY→PAUSED … PAUSED→READY */
  GstLfm2Shared *text_shared;   /* the text model (optional) */
  GstLfm2AudioEncoder enc;
  gchar *model_id;              /* object lock: lfm2_model_id of the text model, or NULL */
  gint n_embd;                  /* object lock: 0 before READY→PAUSED */

  /* streaming thread */
  GstLfm2AudioIn in;
  GstFlowReturn last_ret;       /* of the pushes made from the input stage's callback */
  GstClockTime gap_sent;        /* end of the last GAP pushed */
  GstClockTime out_pos;         /* end of what src has covered */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2audioenc);

G_END_DECLS

#endif /* GST_LFM2_AUDIOENC_H */
