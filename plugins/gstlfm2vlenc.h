/* gstlfm2vlenc.h — lfm2vlenc: the LFM2-VL image encoder as an element (video/x-raw in,
 * `other/tensors` image embeddings + token layout out). The vision helpers it shares with
 * lfm2vl are in gstlfm2vision.h. */
#ifndef GST_LFM2_VLENC_H
#define GST_LFM2_VLENC_H

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

#include "gstlfm2tensors.h"
#include "gstlfm2vision.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_VLENC (gst_lfm2_vlenc_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2VlEnc, gst_lfm2_vlenc, GST, LFM2_VLENC, GstBaseTransform)

struct _GstLfm2VlEnc {
  GstBaseTransform parent;

  /* settings (object lock) */
  gchar *mmproj;
  gchar *model;
  GstLfm2VisionSettings vsettings;

  /* streaming */
  GstLfm2Shared *text_shared;         /* the text model (optional) */
  GstLfm2VisionEnc enc;
  gboolean flexible;                  /* negotiated output format */
  gchar *model_id;                    /* lfm2_model_id of the text model, or NULL */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2vlenc);

G_END_DECLS

#endif /* GST_LFM2_VLENC_H */
