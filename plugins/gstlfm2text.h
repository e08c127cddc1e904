/* gstlfm2text.h — lfm2text: LFM2 text generation on text/x-raw (and on encoder embeddings). */
#ifndef GST_LFM2_TEXT_H
#define GST_LFM2_TEXT_H

#include <gst/gst.h>

#include "gstlfm2genelement.h"
#include "gstlfm2tensors.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_TEXT (gst_lfm2_text_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Text, gst_lfm2_text, GST, LFM2_TEXT, GstLfm2GenElement)

typedef enum {
  GST_LFM2_TEXT_INPUT_BUFFER,   /* every input buffer is one prompt */
  GST_LFM2_TEXT_INPUT_LINES,    /* every line (across buffers) is one prompt, one line out */
} GstLfm2TextInputMode;

#define GST_TYPE_LFM2_TEXT_INPUT_MODE (gst_lfm2_text_input_mode_get_type ())
GType gst_lfm2_text_input_mode_get_type (void);

struct _GstLfm2Text {
  GstLfm2GenElement parent;

  GstPad *sinkpad, *srcpad;

  /* settings of this element (object lock; the shared ones are in the base) */
  gchar *prompt_template;
  gboolean chat;
  GstLfm2TextInputMode input_mode;
  guint dirty;                  /* object lock: DIRTY_* bits changed since the last input */

  /* streaming thread only */
  gchar *template_copy;         /* prompt-template as used by the streaming thread */
  gboolean line_mode;
  gboolean tensor_input;
  GstLfm2TensorsConfig tensors;
  GString *pending;             /* line mode: text of the current line not yet ended */
  GstClockTime pending_pts;     /* PTS of the buffer the current line started in */
  guint64 line_no;              /* line mode: number of the current line (from 1) */
  gboolean line_open;           /* line mode: a line has started and not ended */
  gboolean discarding;          /* the current line is over the limit: skip to its end */
  GString *user;                /* scratch: the user text */
  GString *result;              /* scratch: generated text */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2text);

G_END_DECLS

#endif /* GST_LFM2_TEXT_H */
