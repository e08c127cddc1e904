/* gstlfm2queue.h — the ordered work queue between a live element's streaming thread and its
 * worker (a GstTask on one of its src pads), shared by lfm2asr, lfm2s2s and lfm2vl.
 *
 * The streaming thread hands over jobs (an utterance, a frame), serialized events and GAPs
 * in stream order; the worker takes them one at a time, so what goes out on the pad keeps
 * that order while the streaming thread never waits for inference (a non-live one may
 * choose to, gst_lfm2_queue_wait()). The element may have work outside the queue too (a
 * partial result, the newest frame): its `has_work` callback wakes the worker for it and
 * its `clear` callback drops it with the queue.
 *
 * One lock (`lock`) guards the queue; the element may guard its own shared fields with it.
 *
 *   init:            gst_lfm2_queue_init (&self->q, self->srcpad, worker, self, &base->cancel,
 *                        job_free, has_work, clear);
 *   activate_mode:   return gst_lfm2_queue_activate (&self->q, mode, active);
 *   FLUSH_START:     return gst_lfm2_queue_flush_start (&self->q, event);
 *   FLUSH_STOP:      gst_lfm2_queue_flush_stop (&self->q); ...reset...;
 *                    return gst_lfm2_queue_restart (&self->q, event);
 *   worker:          if (!gst_lfm2_queue_next (&self->q, &item)) return;
 *                    ...item (or own work), unlock, run...; gst_lfm2_queue_done (...);
 */
#ifndef GST_LFM2_QUEUE_H
#define GST_LFM2_QUEUE_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum {
  GST_LFM2_ITEM_JOB,            /* the element's unit of work */
  GST_LFM2_ITEM_EVENT,          /* a serialized event for the pad */
  GST_LFM2_ITEM_GAP,            /* nothing comes before gap_end */
} GstLfm2ItemType;

typedef struct {
  GstLfm2ItemType type;
  gpointer job;                 /* JOB: the element's, freed with the queue's job_free */
  gint64 weight;                /* JOB: what it counts for in `weight` (samples) */
  GstClockTime pts;             /* JOB: where it is in the stream (for warnings) */
  GstEvent *event;              /* EVENT */
  GstClockTime gap_end;         /* GAP */
} GstLfm2Item;

/* Called with the lock: whether the element has work of its own for the worker. */
typedef gboolean (*GstLfm2QueueHasWork) (gpointer element);
/* Called with the lock: drops the element's own pending work (flushes, deactivation). */
typedef void (*GstLfm2QueueClear) (gpointer element);

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean flushing;            /* lock: the worker stops, nothing is queued */
  GQueue items;                 /* lock: GstLfm2Item, in stream order */
  gint n_jobs;                  /* atomic (lock to change): JOB items queued */
  gint64 weight;                /* lock: their weight */
  GstFlowReturn worker_ret;     /* lock: why the worker stopped (a waiting streaming thread
                                   returns it) */
  GstClockTime gap_queued;      /* streaming thread: end of the last GAP handed over */
  gboolean live, live_known;    /* streaming thread: upstream is live (asked once per
                                   activation) */

  /*< private >*/
  GstPad *pad;
  GstTaskFunction worker;
  gpointer element;
  gint *cancel;                 /* the generator's cancel flag (atomic) */
  GDestroyNotify job_free;
  GstLfm2QueueHasWork has_work;
  GstLfm2QueueClear clear;
} GstLfm2Queue;

/* `pad` runs `worker` (with `element`); has_work and clear may be NULL. */
void gst_lfm2_queue_init (GstLfm2Queue * q, GstPad * pad, GstTaskFunction worker,
    gpointer element, gint * cancel, GDestroyNotify job_free, GstLfm2QueueHasWork has_work,
    GstLfm2QueueClear clear);
/* Finalize: drops what is queued, frees the lock. */
void gst_lfm2_queue_finalize (GstLfm2Queue * q);

/* ---- the streaming thread ---- */

/* Whether upstream of sinkpad is live (asked once after activation); live input is never
 * blocked: the element bounds its queue instead. */
gboolean gst_lfm2_queue_upstream_is_live (GstLfm2Queue * q, GstPad * sinkpad);
/* Takes the lock; FALSE (not locked) while flushing. */
gboolean gst_lfm2_queue_lock_open (GstLfm2Queue * q);
gboolean gst_lfm2_queue_is_flushing (GstLfm2Queue * q);
/* Appends an item and wakes the worker. Call with the lock. */
void gst_lfm2_queue_push_locked (GstLfm2Queue * q, GstLfm2Item * item);
/* Appends a job; then, when max_weight > 0, drops the oldest jobs while the queued ones
 * weigh more (live input that outpaces the model). Returns how many were dropped, the PTS of
 * the first in *first. Call with the lock (open). */
guint gst_lfm2_queue_push_job_locked (GstLfm2Queue * q, gpointer job, gint64 weight,
    GstClockTime pts, gint64 max_weight, GstClockTime * first);
/* A serialized event for the pad, in stream order (dropped while flushing). Takes it. */
void gst_lfm2_queue_push_event (GstLfm2Queue * q, GstEvent * event);
/* The same with the lock (open) held. */
void gst_lfm2_queue_push_event_locked (GstLfm2Queue * q, GstEvent * event);
/* Nothing comes before `end`: a GAP item (merged into a GAP queued last). Skipped when not
 * past the last one by `step` unless `force`. */
void gst_lfm2_queue_push_gap (GstLfm2Queue * q, GstClockTime end, gboolean force,
    GstClockTime step);
/* A sink event the element does not handle itself: a serialized one queued for the pad,
 * the rest gst_pad_event_default(). */
gboolean gst_lfm2_queue_sink_event_default (GstLfm2Queue * q, GstPad * pad,
    GstObject * parent, GstEvent * event);
/* Non-live input: waits while max_jobs or more jobs are queued (max_jobs 0: never).
 * FLUSHING while flushing, else the worker's state. */
GstFlowReturn gst_lfm2_queue_wait (GstLfm2Queue * q, gint max_jobs);

/* Flushing: the worker stops, the running request is cancelled, a streaming thread
 * waiting for the worker wakes. */
void gst_lfm2_queue_set_flushing (GstLfm2Queue * q);
/* FLUSH_START: flushing, the running request cancelled, the event pushed on the pad, the
 * worker paused. Takes the event; returns the push's result. */
gboolean gst_lfm2_queue_flush_start (GstLfm2Queue * q, GstEvent * event);
/* FLUSH_STOP, first half: the queue (and the element's pending work) dropped, flushing
 * off. The worker is paused: the element resets its state, then calls restart. */
void gst_lfm2_queue_flush_stop (GstLfm2Queue * q);
/* FLUSH_STOP, second half: the event pushed on the pad, the worker started again if the
 * pad is active. Takes the event; returns the push's result. */
gboolean gst_lfm2_queue_restart (GstLfm2Queue * q, GstEvent * event);

/* The pad's activate-mode function: push mode only; starts the worker, or stops it (also
 * waking a streaming thread waiting for it) and drops what is pending. */
gboolean gst_lfm2_queue_activate (GstLfm2Queue * q, GstPadMode mode, gboolean active);

/* ---- the worker ---- */

/* Waits for an item or the element's own work. FALSE when flushing: the task is paused.
 * Else TRUE with the lock held and *item the head item, taken (NULL: the element's own
 * work is due); a job taken wakes a waiting streaming thread. */
gboolean gst_lfm2_queue_next (GstLfm2Queue * q, GstLfm2Item ** item);
void gst_lfm2_queue_item_free (GstLfm2Queue * q, GstLfm2Item * item);
/* After one run: the task goes on (see gst_lfm2_gen_element_worker_flow), or it pauses with
 * `ret` for a waiting streaming thread (GST_FLOW_ERROR for `posted`). */
void gst_lfm2_queue_done (GstLfm2Queue * q, GstFlowReturn ret, GstFlowReturn posted);
/* Pauses the task, a waiting streaming thread returning `ret`. */
void gst_lfm2_queue_pause (GstLfm2Queue * q, GstFlowReturn ret);

G_END_DECLS

#endif /* GST_LFM2_QUEUE_H */
