/* gstlfm2speech.h — what the speech-output elements share (lfm2tts, lfm2audiodec, lfm2s2s):
 *
 *   - vocoder-*.gguf and tokenizer-*.gguf files (LFM2.5-Audio) through the model registry,
 *   - the `voice` and `overflow` enums,
 *   - the output caps: 24 kHz mono S16/F32 audio, or frames of audio codes as NNStreamer
 *     tensors (int32 K:1 per buffer, K = 8 codebooks; docs/tensor-caps.md),
 *   - GstLfm2SpeechOut, the output stage: negotiation, one buffer per generated frame,
 *     utterance timing (an utterance starts at its cue's PTS or right after the previous one:
 *     overflow clip | overlap | shift, as gst-plugins-rs speech synthesizers do), late audio
 *     in live pipelines shifted forward, GAPs, the position.
 *
 * The output stage is used by one thread at a time (the one that generates); the position is
 * also read by queries from other threads (object lock of the element).
 */
#ifndef GST_LFM2_SPEECH_H
#define GST_LFM2_SPEECH_H

#include <gst/gst.h>
#include <gst/audio/audio.h>

#include "gstlfm2model.h"
#include "lfm2-tts.h"

G_BEGIN_DECLS

/* ---- files ------------------------------------------------------------------------- */

#define GST_LFM2_KIND_VOCODER "lfm2-vocoder"
#define GST_LFM2_KIND_AUDIO_TOKENIZER "lfm2-audio-tokenizer"

/* The vocoder and — when `tokenizer` is set, or `need_tokenizer` — the tokenizer from the
 * registry (loaded once per process). FALSE with *error (GST_RESOURCE_ERROR: the file named,
 * and for a bad file the tensor or key) and *debug (which property named which file; g_free)
 * set; nothing held then. */
gboolean gst_lfm2_speech_files_acquire (const gchar * vocoder, const gchar * tokenizer,
    gboolean need_tokenizer, GstLfm2Shared ** voc, GstLfm2Shared ** tok, GError ** error,
    gchar ** debug);

/* Installs the properties "vocoder" and "tokenizer" (ids first, first + 1; settable in
 * READY). codes_only: the element can do without a tokenizer (its blurb says so). */
void gst_lfm2_speech_install_file_properties (GObjectClass * oc, guint first,
    gboolean codes_only);

static inline const lfm2_vocoder *
gst_lfm2_shared_vocoder (GstLfm2Shared * shared)
{
  return (const lfm2_vocoder *) gst_lfm2_shared_get (shared);
}

static inline const lfm2_audio_tokenizer *
gst_lfm2_shared_audio_tokenizer (GstLfm2Shared * shared)
{
  return (const lfm2_audio_tokenizer *) gst_lfm2_shared_get (shared);
}

/* ---- enums ------------------------------------------------------------------------- */

typedef enum {
  GST_LFM2_VOICE_US_MALE = LFM2_TTS_VOICE_US_MALE,
  GST_LFM2_VOICE_US_FEMALE = LFM2_TTS_VOICE_US_FEMALE,
  GST_LFM2_VOICE_UK_MALE = LFM2_TTS_VOICE_UK_MALE,
  GST_LFM2_VOICE_UK_FEMALE = LFM2_TTS_VOICE_UK_FEMALE,
} GstLfm2Voice;

#define GST_TYPE_LFM2_VOICE (gst_lfm2_voice_get_type ())
GType gst_lfm2_voice_get_type (void);

/* What happens to speech that runs past the end of its cue (the text buffer's PTS +
 * duration) or into the next one; the names and meanings of gst-plugins-rs's synthesizers. */
typedef enum {
  GST_LFM2_OVERFLOW_CLIP,       /* cut at the end of the cue */
  GST_LFM2_OVERFLOW_OVERLAP,    /* every utterance starts at its PTS; they may overlap */
  GST_LFM2_OVERFLOW_SHIFT,      /* an utterance starts after the previous one has ended */
} GstLfm2Overflow;

#define GST_TYPE_LFM2_OVERFLOW (gst_lfm2_overflow_get_type ())
GType gst_lfm2_overflow_get_type (void);

/* ---- caps -------------------------------------------------------------------------- */

#define GST_LFM2_SPEECH_RATE LFM2_AUDIO_SAMPLE_RATE       /* 24000 */
#define GST_LFM2_SPEECH_FRAME_SAMPLES LFM2_AUDIO_FRAME_SAMPLES  /* 1920 = 80 ms */
#define GST_LFM2_SPEECH_FRAME_DURATION (80 * GST_MSECOND)

#define GST_LFM2_SPEECH_AUDIO_CAPS \
  "audio/x-raw, format = (string) { " GST_AUDIO_NE (S16) ", " GST_AUDIO_NE (F32) " }, " \
  "rate = (int) 24000, channels = (int) 1, layout = (string) interleaved"

/* Fixed caps of a stream of code frames: one int32 tensor K:1 per buffer at 12.5 frames/s. */
GstCaps *gst_lfm2_codes_caps_new (gint n_codebooks);

typedef enum {
  GST_LFM2_SPEECH_NONE,         /* not negotiated */
  GST_LFM2_SPEECH_S16,
  GST_LFM2_SPEECH_F32,
  GST_LFM2_SPEECH_CODES,
} GstLfm2SpeechFormat;

/* ---- the output stage -------------------------------------------------------------- */

typedef struct {
  GstElement *element;
  GstPad *sinkpad, *srcpad;
  gint n_codebooks, eoa;

  /* streaming (the generating thread) */
  GstLfm2SpeechFormat format;
  GstSegment segment;           /* of the output, TIME */
  gboolean discont;             /* next buffer is DISCONT */

  /* the utterance being pushed */
  GstClockTime u_start;         /* PTS of its first sample (after any shift) */
  GstClockTime u_limit;         /* clip: where its cue ends, NONE = no limit */
  guint64 u_samples;            /* samples pushed (codes: 1920 per frame) */
  gboolean u_open;              /* codes: a segment of frames is open (needs an end marker) */
  gboolean clipped;
  GstClockTime latency;         /* ours, for the live deadline */
  gboolean live;
  GstClockTime upstream_min;

  /* object lock: for queries from other threads */
  GstClockTime position;        /* end of what was pushed (buffers and gaps), NONE */
  GstClockTime max_late;        /* largest shift of late audio so far */
  gboolean warned_late;

  gfloat tail[GST_LFM2_SPEECH_FRAME_SAMPLES];   /* the decoder's last samples (max-tokens) */
} GstLfm2SpeechOut;

void gst_lfm2_speech_out_init (GstLfm2SpeechOut * out, GstElement * element,
    GstPad * sinkpad, GstPad * srcpad);
/* Forgets the stream (READY→PAUSED, flush): position, utterance, segment. */
void gst_lfm2_speech_out_reset (GstLfm2SpeechOut * out);

/* Chooses the output format from what downstream accepts, in the order of the src pad
 * template (S16, F32, then codes), among the ones the element can produce, and pushes the
 * caps. FALSE after posting a NOT_NEGOTIATED error. */
gboolean gst_lfm2_speech_out_negotiate (GstLfm2SpeechOut * out, gboolean can_audio,
    gboolean can_codes, gint n_codebooks, gint eoa);

/* The output segment (a non-TIME input segment gives a TIME one from 0); pushes it. */
gboolean gst_lfm2_speech_out_set_segment (GstLfm2SpeechOut * out, const GstSegment * in,
    guint32 seqnum);

/* Starts an utterance for a cue at pts (NONE: right after the previous one) lasting dur
 * (NONE: open-ended). Returns its start. Queries the upstream latency (live pipelines). */
GstClockTime gst_lfm2_speech_out_begin (GstLfm2SpeechOut * out, GstClockTime pts,
    GstClockTime dur, GstLfm2Overflow overflow, GstClockTime latency);
/* Pushes n samples of the utterance (S16/F32 formats), cut at the cue's end with
 * overflow=clip (then out->clipped is set: stop generating). */
GstFlowReturn gst_lfm2_speech_out_samples (GstLfm2SpeechOut * out, const gfloat * x, gint n);
/* Pushes one frame of K codes (CODES format); end = the end of an audio segment (the frame
 * pushed is then the end-of-audio marker, codes may be NULL). */
GstFlowReturn gst_lfm2_speech_out_frame (GstLfm2SpeechOut * out, const gint32 * codes,
    gboolean end);
/* Ends the utterance (codes: the end marker of a segment still open); returns its duration
 * and moves the position to its end. */
GstClockTime gst_lfm2_speech_out_end (GstLfm2SpeechOut * out);

/* What a turn of generation gave. */
typedef struct {
  gint64 t0;                    /* µs (monotonic) that first_audio_ms counts from */
  gdouble first_audio_ms;       /* −1 until the first audio */
  gint frames, text_tokens;
  const gchar *stop;            /* "eog", "max-tokens", "context" (full), "clipped" */
} GstLfm2SpeechTurn;

/* Runs the turn begun on tts (lfm2_tts_begin) to its end, pushing every frame as it comes:
 * its samples (S16/F32), or its codes and an end-of-audio frame where an audio segment ends
 * (CODES). Text tokens are appended to `text` (may be NULL). max_tokens > 0 bounds the text
 * tokens + frames; a turn stopped inside audio still gets the decoder's last samples (or
 * its end frame). Returns GST_FLOW_FLUSHING when *cancel is set (checked every step), the
 * push's return, GST_FLOW_ERROR after posting an engine error; turn->stop says why it ended
 * (and "clipped": out->clipped). turn->t0 is the caller's. */
GstFlowReturn gst_lfm2_speech_out_turn (GstLfm2SpeechOut * out, lfm2_tts * tts,
    gint max_tokens, const gint * cancel, GString * text, GstLfm2SpeechTurn * turn);

/* A stretch with no speech (an empty cue, an input GAP): a GAP event from pts (or from the
 * position when overflow is not clip and the previous speech ran past pts). */
void gst_lfm2_speech_out_gap (GstLfm2SpeechOut * out, GstClockTime pts, GstClockTime dur,
    GstLfm2Overflow overflow);

/* For POSITION queries (any thread): the end of what was pushed, in stream time; NONE. */
GstClockTime gst_lfm2_speech_out_position (GstLfm2SpeechOut * out);
/* Answers a LATENCY query on the src pad: upstream's, plus `latency` when live. */
gboolean gst_lfm2_speech_out_query_latency (GstLfm2SpeechOut * out, GstQuery * query,
    GstClockTime latency);

/* Timestamp of sample n after start (rounded down, like every element of this stage). */
static inline GstClockTime
gst_lfm2_speech_sample_time (GstClockTime start, guint64 n)
{
  return start + gst_util_uint64_scale_int (n, GST_SECOND, GST_LFM2_SPEECH_RATE);
}

G_END_DECLS

#endif /* GST_LFM2_SPEECH_H */
