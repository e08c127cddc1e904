/* gstlfm2queue.c — the ordered work queue and worker task of the live elements. */
#include "gstlfm2queue.h"

#include "gstlfm2genelement.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_queue_debug);
#define GST_CAT_DEFAULT gst_lfm2_queue_debug

static void
ensure_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_queue_debug, "lfm2queue", 0,
        "LFM2 elements' work queue");
    g_once_init_leave (&once, 1);
  }
}

void
gst_lfm2_queue_init (GstLfm2Queue * q, GstPad * pad, GstTaskFunction worker,
    gpointer element, gint * cancel, GDestroyNotify job_free, GstLfm2QueueHasWork has_work,
    GstLfm2QueueClear clear)
{
  ensure_debug ();
  memset (q, 0, sizeof (*q));
  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  g_queue_init (&q->items);
  q->worker_ret = GST_FLOW_OK;
  q->gap_queued = GST_CLOCK_TIME_NONE;
  q->pad = pad;
  q->worker = worker;
  q->element = element;
  q->cancel = cancel;
  q->job_free = job_free;
  q->has_work = has_work;
  q->clear = clear;
}

void
gst_lfm2_queue_item_free (GstLfm2Queue * q, GstLfm2Item * item)
{
  if (item->event)
    gst_event_unref (item->event);
  if (item->job)
    q->job_free (item->job);
  g_free (item);
}

/* Drops everything waiting for the worker. Call with the lock. */
static void
clear_locked (GstLfm2Queue * q)
{
  GstLfm2Item *item;

  while ((item = g_queue_pop_head (&q->items)) != NULL)
    gst_lfm2_queue_item_free (q, item);
  g_atomic_int_set (&q->n_jobs, 0);
  q->weight = 0;
  if (q->clear)
    q->clear (q->element);
  g_cond_broadcast (&q->cond);
}

void
gst_lfm2_queue_finalize (GstLfm2Queue * q)
{
  clear_locked (q);
  g_mutex_clear (&q->lock);
  g_cond_clear (&q->cond);
}

/* ---- the streaming thread ------------------------------------------------------------ */

gboolean
gst_lfm2_queue_upstream_is_live (GstLfm2Queue * q, GstPad * sinkpad)
{
  if (!q->live_known) {
    GstQuery *query = gst_query_new_latency ();

    q->live = FALSE;
    if (gst_pad_peer_query (sinkpad, query))
      gst_query_parse_latency (query, &q->live, NULL, NULL);
    gst_query_unref (query);
    q->live_known = TRUE;
    GST_DEBUG_OBJECT (q->element, "upstream is %slive", q->live ? "" : "not ");
  }
  return q->live;
}

gboolean
gst_lfm2_queue_lock_open (GstLfm2Queue * q)
{
  g_mutex_lock (&q->lock);
  if (q->flushing) {
    g_mutex_unlock (&q->lock);
    return FALSE;
  }
  return TRUE;
}

gboolean
gst_lfm2_queue_is_flushing (GstLfm2Queue * q)
{
  gboolean flushing;

  g_mutex_lock (&q->lock);
  flushing = q->flushing;
  g_mutex_unlock (&q->lock);
  return flushing;
}

void
gst_lfm2_queue_push_locked (GstLfm2Queue * q, GstLfm2Item * item)
{
  g_queue_push_tail (&q->items, item);
  g_cond_broadcast (&q->cond);
}

guint
gst_lfm2_queue_push_job_locked (GstLfm2Queue * q, gpointer job, gint64 weight,
    GstClockTime pts, gint64 max_weight, GstClockTime * first)
{
  GstLfm2Item *item = g_new0 (GstLfm2Item, 1);
  GList *l;
  guint n = 0;

  item->type = GST_LFM2_ITEM_JOB;
  item->job = job;
  item->weight = weight;
  item->pts = pts;
  q->weight += weight;
  g_atomic_int_inc (&q->n_jobs);
  gst_lfm2_queue_push_locked (q, item);

  for (l = q->items.head; max_weight > 0 && l && q->weight > max_weight;) {
    GList *next = l->next;

    item = l->data;
    if (item->type == GST_LFM2_ITEM_JOB) {
      if (n++ == 0)
        *first = item->pts;
      q->weight -= item->weight;
      g_atomic_int_add (&q->n_jobs, -1);
      g_queue_delete_link (&q->items, l);
      gst_lfm2_queue_item_free (q, item);
    }
    l = next;
  }
  return n;
}

void
gst_lfm2_queue_push_event_locked (GstLfm2Queue * q, GstEvent * event)
{
  GstLfm2Item *item = g_new0 (GstLfm2Item, 1);

  item->type = GST_LFM2_ITEM_EVENT;
  item->event = event;
  gst_lfm2_queue_push_locked (q, item);
}

void
gst_lfm2_queue_push_event (GstLfm2Queue * q, GstEvent * event)
{
  if (!gst_lfm2_queue_lock_open (q)) {
    gst_event_unref (event);
    return;
  }
  gst_lfm2_queue_push_event_locked (q, event);
  g_mutex_unlock (&q->lock);
}

void
gst_lfm2_queue_push_gap (GstLfm2Queue * q, GstClockTime end, gboolean force,
    GstClockTime step)
{
  GstLfm2Item *tail;

  if (!GST_CLOCK_TIME_IS_VALID (end))
    return;
  if (GST_CLOCK_TIME_IS_VALID (q->gap_queued) && (end <= q->gap_queued
          || (!force && end < q->gap_queued + step)))
    return;
  if (gst_lfm2_queue_lock_open (q)) {
    tail = g_queue_peek_tail (&q->items);
    if (tail && tail->type == GST_LFM2_ITEM_GAP) {
      tail->gap_end = end;
      g_cond_broadcast (&q->cond);
    } else {
      GstLfm2Item *item = g_new0 (GstLfm2Item, 1);

      item->type = GST_LFM2_ITEM_GAP;
      item->gap_end = end;
      gst_lfm2_queue_push_locked (q, item);
    }
    g_mutex_unlock (&q->lock);
  }
  q->gap_queued = end;
}

gboolean
gst_lfm2_queue_sink_event_default (GstLfm2Queue * q, GstPad * pad, GstObject * parent,
    GstEvent * event)
{
  if (!GST_EVENT_IS_SERIALIZED (event))
    return gst_pad_event_default (pad, parent, event);
  gst_lfm2_queue_push_event (q, event);
  return TRUE;
}

GstFlowReturn
gst_lfm2_queue_wait (GstLfm2Queue * q, gint max_jobs)
{
  GstFlowReturn ret;

  g_mutex_lock (&q->lock);
  while (max_jobs > 0 && !q->flushing && q->worker_ret == GST_FLOW_OK
      && g_atomic_int_get (&q->n_jobs) >= max_jobs)
    g_cond_wait (&q->cond, &q->lock);
  ret = q->flushing ? GST_FLOW_FLUSHING : q->worker_ret;
  g_mutex_unlock (&q->lock);
  return ret;
}

void
gst_lfm2_queue_set_flushing (GstLfm2Queue * q)
{
  g_mutex_lock (&q->lock);
  q->flushing = TRUE;
  g_atomic_int_set (q->cancel, 1);
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
}

gboolean
gst_lfm2_queue_flush_start (GstLfm2Queue * q, GstEvent * event)
{
  gboolean ok;

  gst_lfm2_queue_set_flushing (q);
  /* downstream first, so a worker blocked in a push returns; then wait for it */
  ok = gst_pad_push_event (q->pad, event);
  gst_pad_pause_task (q->pad);
  return ok;
}

void
gst_lfm2_queue_flush_stop (GstLfm2Queue * q)
{
  g_mutex_lock (&q->lock);
  clear_locked (q);
  q->flushing = FALSE;
  q->worker_ret = GST_FLOW_OK;
  g_atomic_int_set (q->cancel, 0);
  g_mutex_unlock (&q->lock);
  q->gap_queued = GST_CLOCK_TIME_NONE;
}

gboolean
gst_lfm2_queue_restart (GstLfm2Queue * q, GstEvent * event)
{
  gboolean ok = gst_pad_push_event (q->pad, event);

  if (gst_pad_is_active (q->pad))
    gst_pad_start_task (q->pad, q->worker, q->element, NULL);
  return ok;
}

gboolean
gst_lfm2_queue_activate (GstLfm2Queue * q, GstPadMode mode, gboolean active)
{
  gboolean ret;

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active) {
    g_mutex_lock (&q->lock);
    q->flushing = FALSE;
    q->worker_ret = GST_FLOW_OK;
    g_atomic_int_set (q->cancel, 0);
    g_mutex_unlock (&q->lock);
    q->gap_queued = GST_CLOCK_TIME_NONE;
    q->live_known = FALSE;
    return gst_pad_start_task (q->pad, q->worker, q->element, NULL);
  }
  /* also wakes a streaming thread waiting for the worker (non-live input) */
  gst_lfm2_queue_set_flushing (q);
  ret = gst_pad_stop_task (q->pad);
  g_mutex_lock (&q->lock);
  clear_locked (q);
  g_mutex_unlock (&q->lock);
  return ret;
}

/* ---- the worker ---------------------------------------------------------------------- */

gboolean
gst_lfm2_queue_next (GstLfm2Queue * q, GstLfm2Item ** item)
{
  g_mutex_lock (&q->lock);
  while (!q->flushing && g_queue_is_empty (&q->items)
      && !(q->has_work && q->has_work (q->element)))
    g_cond_wait (&q->cond, &q->lock);
  if (q->flushing) {
    g_mutex_unlock (&q->lock);
    GST_DEBUG_OBJECT (q->element, "worker pausing");
    gst_pad_pause_task (q->pad);
    return FALSE;
  }
  *item = g_queue_pop_head (&q->items);
  if (*item && (*item)->type == GST_LFM2_ITEM_JOB) {
    q->weight -= (*item)->weight;
    g_atomic_int_add (&q->n_jobs, -1);
    g_cond_broadcast (&q->cond);        /* a non-live streaming thread may go on */
  }
  return TRUE;
}

void
gst_lfm2_queue_pause (GstLfm2Queue * q, GstFlowReturn ret)
{
  /* a streaming thread waiting for this worker must not wait forever */
  g_mutex_lock (&q->lock);
  q->worker_ret = ret;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
  gst_pad_pause_task (q->pad);
}

void
gst_lfm2_queue_done (GstLfm2Queue * q, GstFlowReturn ret, GstFlowReturn posted)
{
  if (gst_lfm2_gen_element_worker_flow (GST_LFM2_GEN_ELEMENT (q->element), ret, posted))
    return;
  gst_lfm2_queue_pause (q, ret == posted ? GST_FLOW_ERROR : ret);
}
