/* gstlfm2text.h — lfm2text: LFM2 text generation on text/x-raw (and on encoder embeddings). */
#ifndef GST_LFM2_TEXT_H
#define GST_LFM2_TEXT_H

#include <gst/gst.h>

#include "gstlfm2gen.h"
#include "gstlfm2model.h"
#include "gstlfm2tensors.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_TEXT (gst_lfm2_text_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Text, gst_lfm2_text, GST, LFM2_TEXT, GstElement)

typedef enum {
  GST_LFM2_TEXT_INPUT_BUFFER,   /* every input buffer is one prompt */
  GST_LFM2_TEXT_INPUT_LINES,    /* every line (across buffers) is one prompt, one line out */
} GstLfm2TextInputMode;

#define GST_TYPE_LFM2_TEXT_INPUT_MODE (gst_lfm2_text_input_mode_get_type ())
GType gst_lfm2_text_input_mode_get_type (void);

/* Settings as the application sets them (under the object lock). */
typedef struct {
  gchar *model;
  gchar *system_prompt;
  gchar *prompt_template;
  gint max_tokens;
  struct lfm2_sampler_params sampling;   /* temperature … seed */
  gint n_threads;
  gint context_length;
  gboolean chat;
  GstLfm2TextInputMode input_mode;
} GstLfm2TextSettings;

struct _GstLfm2Text {
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  GstLfm2TextSettings settings; /* object lock */
  guint dirty;                  /* object lock: DIRTY_* bits changed since the last buffer */

  /* streaming thread only */
  GstLfm2Shared *shared;        /* the model from the registry (READY→PAUSED) */
  GstLfm2Gen *gen;
  gchar *template_copy;         /* prompt-template as used by the streaming thread */
  gboolean line_mode;
  gboolean tensor_input;
  GstLfm2TensorsConfig tensors;
  GString *pending;             /* line mode: text not yet ended by '\n' */
  GstClockTime pending_pts;
  GString *user;                /* scratch: the user text */
  GString *result;              /* scratch: generated text */

  gint flushing;                /* atomic: abort the running generation */
  gint n_embd, n_vocab;         /* of the loaded model (object lock; for caps queries) */
  gchar *model_id;              /* object lock */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2text);

G_END_DECLS

#endif /* GST_LFM2_TEXT_H */
