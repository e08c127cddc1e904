/* gstlfm2vl.h — lfm2vl: live video captioning with LFM2-VL. Video passes through untouched;
 * a worker thread captions the newest frame and pushes the text on `text_src`. */
#ifndef GST_LFM2_VL_H
#define GST_LFM2_VL_H

#include <gst/gst.h>
#include <gst/video/video.h>

#include "gstlfm2genelement.h"
#include "gstlfm2queue.h"
#include "gstlfm2vision.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_VL (gst_lfm2_vl_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Vl, gst_lfm2_vl, GST, LFM2_VL, GstLfm2GenElement)

/* Settings of this element as the application sets them (object lock; the shared ones are
 * in the base class). */
typedef struct {
  gchar *mmproj;
  gchar *prompt;
  guint64 interval;             /* ns between captioned frames (running time) */
  guint latency_ms;
  guint caption_budget_ms;      /* target caption time; 0 = the image settings as set */
  gint inference_nice;          /* nice value of the inference threads */
  GstLfm2VisionSettings vision; /* n_threads unused: the base class's n-threads */
} GstLfm2VlSettings;

/* A frame waiting for the worker. */
typedef struct {
  GstBuffer *buffer;            /* NULL = empty */
  GstCaps *caps;                /* its video caps */
  GstClockTime running_time;
  guint skipped;                /* frames it replaced since the previous caption was taken */
} GstLfm2VlFrame;

struct _GstLfm2Vl {
  GstLfm2GenElement parent;

  GstPad *sinkpad, *srcpad, *textpad;

  GstLfm2VlSettings settings;   /* object lock */
  gboolean prompt_dirty;        /* object lock: `prompt` changed since the worker took it */

  /* streaming thread (sink pad) */
  GstSegment segment;           /* video segment */
  GstCaps *caps;                /* current video caps */

  /* between the streaming thread and the worker (q.lock): serialized events (and the frames
   * before them, as jobs) in order; while flushing the worker stops and chain drops frames */
  GstLfm2Queue q;
  GstLfm2VlFrame slot;          /* the newest eligible frame, not yet taken */
  GstClockTime gap_start, gap_end;   /* stream time with nothing to caption (interval) */
  GstClockTime last_taken_rt;   /* running time of the last frame the worker took */
  GstClockTime last_video_pts;  /* PTS of the newest frame seen */
  guint64 n_frames, n_captions, n_skipped;
  GstClockTime max_delay;       /* largest caption delay behind its frame (running time) */

  GstTaskPool *threads;         /* dedicated threads for the text_src task (lowered priority) */

  /* worker only (the generator is the base class's) */
  GstLfm2VisionEnc enc;
  /* measured costs for the caption budget (running means; valid once cost_known) */
  gboolean cost_known;
  gint upstream_live;           /* atomic: the source is live (asked at each caps event) */
  gdouble ms_per_image_token;   /* conversion + preprocessing + encoder, per image row */
  gdouble ms_per_prefill_token; /* prefill, per new prompt position */
  gdouble text_positions;       /* new prompt positions besides the image rows */
  gdouble generate_ms;          /* sampling and decoding one caption */
  GstCaps *enc_caps;            /* caps enc is configured for */
  gfloat *embd;                 /* rows of the frame being captioned */
  gsize embd_cap;               /* floats */
  gchar *prompt_copy;
  GString *result;
  GstLfm2TextPad text;          /* text_src */
  gboolean warned_late;
};

GST_ELEMENT_REGISTER_DECLARE (lfm2vl);

G_END_DECLS

#endif /* GST_LFM2_VL_H */
