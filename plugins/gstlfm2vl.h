/* gstlfm2vl.h — lfm2vl: live video captioning with LFM2-VL. Video passes through untouched;
 * a worker thread captions the newest frame and pushes the text on `text_src`. */
#ifndef GST_LFM2_VL_H
#define GST_LFM2_VL_H

#include <gst/gst.h>
#include <gst/video/video.h>

#include "gstlfm2gen.h"
#include "gstlfm2model.h"
#include "gstlfm2vision.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_VL (gst_lfm2_vl_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Vl, gst_lfm2_vl, GST, LFM2_VL, GstElement)

/* Settings as the application sets them (object lock). */
typedef struct {
  gchar *model;
  gchar *mmproj;
  gchar *prompt;
  gchar *system_prompt;
  guint64 interval;             /* ns between captioned frames (running time) */
  gint max_tokens;
  struct lfm2_sampler_params sampling;   /* temperature … seed */
  gint context_length;
  guint latency_ms;
  GstLfm2VisionSettings vision;
} GstLfm2VlSettings;

/* A frame waiting for the worker. */
typedef struct {
  GstBuffer *buffer;            /* NULL = empty */
  GstCaps *caps;                /* its video caps */
  GstClockTime running_time;
  guint skipped;                /* frames it replaced since the previous caption was taken */
} GstLfm2VlFrame;

struct _GstLfm2Vl {
  GstElement parent;

  GstPad *sinkpad, *srcpad, *textpad;

  GstLfm2VlSettings settings;   /* object lock */
  guint dirty;                  /* object lock: settings the worker has not applied yet */

  /* streaming thread (sink pad) */
  GstSegment segment;           /* video segment */
  GstCaps *caps;                /* current video caps */

  /* between the streaming thread and the worker */
  GMutex lock;
  GCond cond;
  gboolean flushing;            /* worker: stop; chain: drop frames */
  GstLfm2VlFrame slot;          /* the newest eligible frame, not yet taken */
  GQueue queue;                 /* serialized events (and the frames before them) in order */
  GstClockTime gap_start, gap_end;   /* stream time with nothing to caption (interval) */
  GstClockTime last_taken_rt;   /* running time of the last frame the worker took */
  GstClockTime last_video_pts;  /* PTS of the newest frame seen */
  guint64 n_frames, n_captions, n_skipped;
  GstClockTime max_delay;       /* largest caption delay behind its frame (running time) */

  gint cancel;                  /* atomic: abort the running generation */

  /* worker only */
  GstLfm2Shared *text_shared;
  GstLfm2Gen *gen;
  GstLfm2VisionEnc enc;
  GstCaps *enc_caps;            /* caps enc is configured for */
  gfloat *embd;                 /* rows of the frame being captioned */
  gsize embd_cap;               /* floats */
  gchar *prompt_copy;
  GString *result;
  GstClockTime text_pos;        /* end of what text_src has covered (buffers + gaps) */
  gboolean text_segment_sent;
  gboolean warned_late;
};

GST_ELEMENT_REGISTER_DECLARE (lfm2vl);

G_END_DECLS

#endif /* GST_LFM2_VL_H */
