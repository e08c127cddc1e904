/* lfm2-speech.h — what the speech-output element tests share (lfm2tts, lfm2audiodec,
 * lfm2s2s):
 *   - a generated LFM2-Audio set (`lfm2 mkmodel --config audio-tiny`: random weights shaped so
 *     that text → <|audio_start|> → frames → end of audio, docs/tts.md), written once per test
 *     program into the build tree;
 *   - the library's own run of a turn (lfm2_tts straight, no GStreamer): what an element's
 *     samples and codes must equal;
 *   - copies of the vocoder with a tensor missing or misshapen;
 *   - the audio and code frames a harness received, with their timestamps. */
#ifndef LFM2_CHECK_SPEECH_H
#define LFM2_CHECK_SPEECH_H

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "lfm2-tts.h"

typedef struct {
  gchar *dir, *model, *mmproj, *vocoder, *tokenizer;
  lfm2_model *m;
  lfm2_vocoder *v;
  lfm2_audio_tokenizer *t;
} SpeechModels;

extern SpeechModels speech;

/* Writes the set into $LFM2_BUILD_ROOT/tests/check/<name>-models and loads it. */
void speech_models_setup (const gchar * name);

/* A turn run by the library: the samples of its audio (1920 per frame), its frames of codes
 * (as the model emitted them, end-of-audio frames excluded) and its text. */
typedef struct {
  gfloat *x;
  gint64 n;
  gint32 *codes;
  gint n_frames;
  GString *text;
} SpeechRef;

typedef struct {
  enum lfm2_tts_mode mode;
  enum lfm2_tts_voice voice;
  const gchar *system_prompt;   /* NULL: the mode's / voice's */
  gfloat temperature;           /* audio */
  gint top_k;
  guint64 seed;
  gint n_predict;               /* -1: no limit */
  gboolean vocode;
  const gchar *text;            /* the user turn: text, or */
  const gfloat *embd;           /* embedding rows (after `prompt` when that is set) */
  gint n_rows;
  const gchar *prompt;
} SpeechRefParams;

SpeechRefParams speech_ref_params (const gchar * text);
void speech_ref_run (SpeechRef * r, const SpeechRefParams * p);
void speech_ref_clear (SpeechRef * r);

/* The utterances of a 16 kHz mono clip as lfm2s2s sees them: the library's voice-activity
 * detector (default parameters but min-silence) over the clip (EOS closes the last one), and
 * each one's embedding rows from the mmproj (official front-end). */
typedef struct {
  gint64 start, end;            /* 16 kHz samples */
  gfloat *embd;                 /* n_rows × n_embd */
  gint n_rows;
} SpeechUtterance;

/* Returns the number of utterances in *out (g_free each embd, then the array). */
gint speech_utterances (const gfloat * pcm, gint64 n, gint min_silence_ms,
    SpeechUtterance ** out);
/* A 16 kHz mono clip of tests/data/audio/wav (float; g_free). */
gfloat *speech_load_clip (const gchar * name, gint64 * n);

/* A copy of the vocoder without tensor `drop`, or with tensor `reshape` of ne1 rows of ne0
 * (0: as it was) zeros. */
gchar *speech_vocoder_variant (const gchar * file, const gchar * drop, const gchar * reshape,
    gint64 ne0, gint64 ne1);

/* Buffers pulled from a harness. Audio is converted to float (S16 / F32 by the caps). */
typedef struct {
  GArray *x;                    /* gfloat */
  GArray *codes;                /* gint32, K per frame (codes output) */
  GArray *pts, *dur, *n;        /* GstClockTime, GstClockTime, gint64 per buffer */
  guint n_buffers;
  guint n_discont;
} SpeechCapture;

void speech_capture_init (SpeechCapture * c);
void speech_capture_clear (SpeechCapture * c);
/* Takes every buffer the harness holds. */
void speech_capture_pull (GstHarness * h, SpeechCapture * c);
/* Timestamps are continuous: each buffer starts where the previous ended and lasts its
 * samples (audio) / 80 ms (codes) from `start`. */
void speech_capture_check_continuous (const SpeechCapture * c, GstClockTime start,
    gboolean codes);

/* The first element message with this structure name on the bus (or NULL). */
GstMessage *speech_pop_message (GstBus * bus, const gchar * name);

/* An element of the plugin with the generated files set (model, mmproj, vocoder, tokenizer:
 * those it has) and 2 threads, then more properties as name/value pairs (NULL-terminated). */
GstElement *speech_element_new (const gchar * factory, const gchar * first, ...);
/* A harness around e (its reference is taken), `in` caps pushed, `out` caps accepted; the
 * element's messages go to *bus. */
GstHarness *speech_harness (GstElement * e, const gchar * in, const gchar * out,
    GstBus ** bus);
void speech_harness_done (GstHarness * h, GstBus * bus);
/* READY→PAUSED of e (taken) fails with a RESOURCE error of this code whose message contains
 * n1 and n2 (either may be NULL). */
void speech_check_start_error (GstElement * e, gint code, const gchar * n1, const gchar * n2);
/* One buffer into a capture, read by the caps structure s. */
void speech_capture_append (SpeechCapture * c, GstBuffer * b, const GstStructure * s);

#endif
