/* gstlfm2asr.h — lfm2asr: streaming speech recognition with LFM2-Audio. Audio in (any raw
 * format), voice-activity detection into utterances, a worker thread that transcribes them;
 * final text out on `src`, partial results as bus messages. */
#ifndef GST_LFM2_ASR_H
#define GST_LFM2_ASR_H

#include <gst/gst.h>

#include "gstlfm2audio.h"
#include "gstlfm2genelement.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_ASR (gst_lfm2_asr_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2Asr, gst_lfm2_asr, GST, LFM2_ASR, GstLfm2GenElement)

/* Audio of one transcription request: an utterance (final) or the open one so far
 * (partial). `pcm` keeps its capacity when the job is reused. */
typedef struct {
  gfloat *pcm;
  gint64 n, cap;
  gboolean forced;
  GstClockTime pts, duration;   /* input segment */
  GstClockTime start, end;      /* running time */
} GstLfm2AsrJob;

struct _GstLfm2Asr {
  GstLfm2GenElement parent;

  GstPad *sinkpad, *srcpad;

  /* object lock: the settings as the application set them (the shared ones are in the base
   * class) */
  GstLfm2AudioSettings audio;
  guint step_ms;
  guint latency_ms;

  /* streaming thread */
  GstLfm2AudioIn in;
  gboolean live;                /* upstream is live: never block, bound the queue instead */
  gboolean live_known;
  GstClockTime partial_pts;     /* utterance the last partial was taken from (its PTS) */
  gint64 partial_n;             /* and how many samples it had */
  GstClockTime gap_queued;      /* end of the last GAP handed to the worker */
  GstClockTime early_pts;       /* the last early final handed to the worker: PTS, samples */
  gint64 early_n;

  /* between the streaming thread and the worker (lock) */
  GMutex lock;
  GCond cond;
  gboolean flushing;
  GQueue queue;                 /* finals, serialized events and GAPs, in stream order */
  GstLfm2AsrJob partial;        /* the newest partial request (pcm NULL or n 0: none) */
  gboolean partial_full;
  GstLfm2AsrJob early;          /* an utterance's final, started as soon as its trailing
                                   padding is in, before the detector closes it */
  gint early_waiting;           /* atomic: `early` is full (a running partial stops) */
  gint finals_waiting;          /* atomic: finals in the queue (a running partial stops) */
  gint64 pending_samples;       /* audio of the queued finals */
  guint64 n_finals, n_partials, n_skipped_partials, n_dropped_finals, n_late_finals;
  guint64 n_early_finals;       /* finals whose text was ready when the utterance closed */
  GstClockTime max_delay;       /* final text behind the end of its utterance (live) */
  GstFlowReturn worker_ret;     /* why the worker stopped (a waiting streaming thread returns it) */
  /* the input stage's counters, copied after every buffer (stats never wait for the
   * streaming thread) */
  guint64 in_buffers, in_samples, in_discont;
  gint64 max_chain_us;          /* the longest the chain held the streaming thread */
  gint64 in_vad;
  struct lfm2_audio_convert_stats in_conv;

  /* worker only (the generator is the base class's) */
  GstLfm2AudioEncoder enc;
  GstLfm2AsrJob work;           /* the partial being transcribed */
  GstLfm2AsrJob early_work;     /* the early final being transcribed */
  /* the result of the last early final, for the final that matches it */
  gboolean done_valid;
  GstClockTime done_pts;
  gint64 done_n;
  GString *done_text;
  GstLfm2GenStats done_stats;
  gdouble done_ms, done_encode_ms;
  gfloat *embd;
  gsize embd_cap;
  GString *result;
  GstLfm2TextPad text;          /* src */
  gboolean warned_late;
};

GST_ELEMENT_REGISTER_DECLARE (lfm2asr);

G_END_DECLS

#endif /* GST_LFM2_ASR_H */
