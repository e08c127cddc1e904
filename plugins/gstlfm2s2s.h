/* gstlfm2s2s.h — lfm2s2s: speech to speech with LFM2.5-Audio in one element. Audio in (any
 * raw format), voice-activity detection into utterances, a worker thread that answers each
 * with the interleaved text + audio mode on one shared model; 24 kHz speech out, the text of
 * both sides as bus messages. */
#ifndef GST_LFM2_S2S_H
#define GST_LFM2_S2S_H

#include <gst/gst.h>

#include "gstlfm2audio.h"
/* lfm2-audio.h (speech input, 16 kHz) and lfm2-tts.h (speech output, 24 kHz) both define
 * these; past this point they are the output side's (the input side is reached through
 * gstlfm2audio.h's functions, whose rate is fixed at 16 kHz). */
#undef LFM2_AUDIO_SAMPLE_RATE
#undef LFM2_AUDIO_N_FFT
#undef LFM2_AUDIO_HOP
#include "gstlfm2gen.h"
#include "gstlfm2genelement.h"
#include "gstlfm2speech.h"

G_BEGIN_DECLS

#define GST_TYPE_LFM2_S2S (gst_lfm2_s2s_get_type ())
G_DECLARE_FINAL_TYPE (GstLfm2S2s, gst_lfm2_s2s, GST, LFM2_S2S, GstLfm2GenElement)

/* One utterance for the worker: its 16 kHz samples and where it lies in the input. */
typedef struct {
  gfloat *pcm;
  gint64 n;
  GstClockTime pts, duration;
  gint64 closed_us;             /* monotonic time the detector closed it (queued-ms) */
} GstLfm2S2sJob;

struct _GstLfm2S2s {
  GstLfm2GenElement parent;

  GstPad *sinkpad, *srcpad;

  /* object lock: the settings as the application set them (the shared ones are in the base
   * class) */
  GstLfm2AudioSettings audio;   /* mmproj, frontend, vad-threshold, min-silence, max-segment */
  gchar *vocoder, *tokenizer, *prompt;
  gboolean transcribe;
  guint latency_ms;

  /* streaming thread */
  GstLfm2AudioIn in;
  gboolean live, live_known;
  GstClockTime gap_queued;      /* end of the last GAP handed to the worker */

  /* between the streaming thread and the worker (lock) */
  GMutex lock;
  GCond cond;
  gboolean flushing;
  GQueue queue;                 /* utterances, serialized events and GAPs, in stream order */
  gint n_jobs;                  /* utterances in the queue */
  gint64 queued_samples;        /* their audio */
  GstFlowReturn worker_ret;     /* why the worker stopped */

  /* READY→PAUSED … PAUSED→READY (the model is the base class's) */
  GstLfm2AudioEncoder enc;
  GstLfm2Shared *vocoder_shared, *tokenizer_shared;
  gint n_ctx, n_threads;

  /* worker */
  lfm2_tts *tts;                /* the interleaved loop on its own context */
  GstLfm2Gen *asr;              /* "Perform ASR." on another context of the same model */
  gchar *applied_system;        /* the system prompt the loop runs with (NULL: the mode's) */
  gboolean applied_valid;
  gfloat applied_temperature;
  gint applied_top_k;
  guint64 applied_seed;
  GstLfm2SpeechOut out;
  gboolean negotiated;
  gfloat *embd;
  gsize embd_cap;
  GString *reply, *heard;
  gfloat *tail;                 /* decoder tail when a reply stops inside audio (1920) */
};

GST_ELEMENT_REGISTER_DECLARE (lfm2s2s);

G_END_DECLS

#endif /* GST_LFM2_S2S_H */
