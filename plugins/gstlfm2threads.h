/* gstlfm2threads.h — dedicated inference threads for the live elements' worker tasks. */
#ifndef GST_LFM2_THREADS_H
#define GST_LFM2_THREADS_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* CFS weight 110 against 1024 for the media threads at nice 0 */
#define GST_LFM2_DEFAULT_INFERENCE_NICE 10

/* A GstTaskPool giving each task a thread of its own that first raises its nice value
 * (lfm2_thread_set_nice, passed on by the engine's thread pools to their workers), so the
 * pipeline's media threads get the CPU first. A thread can only raise its nice value, never
 * lower it back: a task on GStreamer's shared default pool must not do this. */
GstTaskPool *gst_lfm2_inference_threads_new (gint nice);
/* Applied by the next task started (the worker starts at READY→PAUSED or on reactivation). */
void gst_lfm2_inference_threads_set_nice (GstTaskPool * pool, gint nice);

/* Call from an element's post_message: when `message` is the STREAM_STATUS CREATE of `pad`'s
 * task (posted from the calling thread before the task starts), gives the task `pool`. An
 * application's sync handler sees the message after this and may still choose another. */
void gst_lfm2_inference_threads_claim (GstTaskPool * pool, GstPad * pad, GstMessage * message);

/* The `inference-nice` property, documented once for every element that has it. */
GParamSpec *gst_lfm2_inference_nice_param_spec (const gchar * media);

G_END_DECLS

#endif
