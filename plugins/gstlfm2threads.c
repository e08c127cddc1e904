/* gstlfm2threads.c — dedicated inference threads (see gstlfm2threads.h). */
#include "gstlfm2threads.h"

#include "lfm2-ops.h"

#ifdef __linux__
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

GST_DEBUG_CATEGORY_STATIC (lfm2_threads_debug);
#define GST_CAT_DEFAULT lfm2_threads_debug

#define GST_TYPE_LFM2_INFERENCE_THREADS (gst_lfm2_inference_threads_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2InferenceThreads, gst_lfm2_inference_threads, GST,
    LFM2_INFERENCE_THREADS, GstTaskPool);

struct _GstLfm2InferenceThreads {
  GstTaskPool parent;
  gint nice;                    /* atomic: applied by the next thread */
};

G_DEFINE_TYPE_WITH_CODE (GstLfm2InferenceThreads, gst_lfm2_inference_threads,
    GST_TYPE_TASK_POOL, GST_DEBUG_CATEGORY_INIT (lfm2_threads_debug, "lfm2threads", 0,
        "LFM2 inference threads"));

typedef struct {
  GstTaskPoolFunction func;
  gpointer data;
  gint nice;
} ThreadStart;

static gpointer
inference_thread (gpointer p)
{
  ThreadStart start = *(ThreadStart *) p;

  g_free (p);
  if (start.nice > 0) {
    /* relative to the media threads: a process already at nice 5 gets 15, not 10 */
    gint base = 0;
#ifdef __linux__
    errno = 0;
    base = getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid));
    if (base == -1 && errno != 0)
      base = 0;
#endif
    if (lfm2_thread_set_nice (MIN (19, base + start.nice)) != 0)
      GST_WARNING ("inference threads keep their priority: %s", lfm2_last_error ());
  }
  start.func (start.data);
  return NULL;
}

static void
threads_prepare (GstTaskPool * pool, GError ** error)
{
  /* nothing to set up: threads are made per push */
}

static void
threads_cleanup (GstTaskPool * pool)
{
}

static gpointer
threads_push (GstTaskPool * pool, GstTaskPoolFunction func, gpointer data, GError ** error)
{
  ThreadStart *start = g_new (ThreadStart, 1);
  GThread *t;

  start->func = func;
  start->data = data;
  start->nice = g_atomic_int_get (&GST_LFM2_INFERENCE_THREADS (pool)->nice);
  t = g_thread_try_new ("lfm2-infer", inference_thread, start, error);
  if (t == NULL)
    g_free (start);
  return t;
}

static void
threads_join (GstTaskPool * pool, gpointer id)
{
  if (id)
    g_thread_join (id);
}

static void
gst_lfm2_inference_threads_class_init (GstLfm2InferenceThreadsClass * klass)
{
  GstTaskPoolClass *tp = GST_TASK_POOL_CLASS (klass);

  tp->prepare = threads_prepare;
  tp->cleanup = threads_cleanup;
  tp->push = threads_push;
  tp->join = threads_join;
}

static void
gst_lfm2_inference_threads_init (GstLfm2InferenceThreads * self)
{
}

GstTaskPool *
gst_lfm2_inference_threads_new (gint nice)
{
  GstLfm2InferenceThreads *pool = g_object_new (GST_TYPE_LFM2_INFERENCE_THREADS, NULL);

  pool->nice = nice;
  return GST_TASK_POOL (gst_object_ref_sink (pool));
}

void
gst_lfm2_inference_threads_set_nice (GstTaskPool * pool, gint nice)
{
  g_atomic_int_set (&GST_LFM2_INFERENCE_THREADS (pool)->nice, nice);
}

void
gst_lfm2_inference_threads_claim (GstTaskPool * pool, GstPad * pad, GstMessage * message)
{
  GstStreamStatusType type;
  GstElement *owner;
  const GValue *v;

  if (GST_MESSAGE_TYPE (message) != GST_MESSAGE_STREAM_STATUS
      || GST_MESSAGE_SRC (message) != GST_OBJECT_CAST (pad))
    return;
  gst_message_parse_stream_status (message, &type, &owner);
  v = gst_message_get_stream_status_object (message);
  if (type == GST_STREAM_STATUS_TYPE_CREATE && v && G_VALUE_HOLDS (v, GST_TYPE_TASK))
    gst_task_set_pool (GST_TASK (g_value_get_object (v)), pool);
}

GParamSpec *
gst_lfm2_inference_nice_param_spec (const gchar * media)
{
  gchar *blurb = g_strdup_printf ("Nice value of the inference threads (0 = as the process; "
      "higher yields the CPU to the %s threads)", media);
  GParamSpec *p = g_param_spec_int ("inference-nice", "Inference nice value", blurb, 0, 19,
      GST_LFM2_DEFAULT_INFERENCE_NICE, G_PARAM_READWRITE | G_PARAM_STATIC_NAME
      | G_PARAM_STATIC_NICK | GST_PARAM_MUTABLE_READY);

  g_free (blurb);
  return p;
}
