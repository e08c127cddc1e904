/* gstlfm2audio.h — the audio helpers the speech-input elements share (lfm2asr, lfm2audioenc,
 * lfm2s2s):
 *
 *   - the `frontend` enum (GstLfm2AudioFrontend, official | llamacpp) and the properties the
 *     elements expose: mmproj, frontend, vad-threshold, min-silence, max-segment,
 *   - the raw audio caps they accept (any rate 1 kHz … 768 kHz, 1 … 64 channels, U8 / S16 /
 *     S32 / F32 / F64 interleaved; converted to 16 kHz mono by the audio library),
 *   - lfm2a mmproj files through the model registry, and the encoder's embedding buffer,
 *   - GstLfm2AudioIn: buffers → 16 kHz mono → voice-activity detection → utterances with the
 *     timestamps of the audio they cover, across caps changes, discontinuities and segments,
 *     in memory bounded by the open utterance; the sink pad's chain and CAPS, SEGMENT and GAP
 *     events on it.
 */
#ifndef GST_LFM2_AUDIO_H
#define GST_LFM2_AUDIO_H

#include <gst/gst.h>
#include <gst/audio/audio.h>

#include "gstlfm2model.h"
#include "lfm2-audio.h"

G_BEGIN_DECLS

typedef enum {
  GST_LFM2_AUDIO_FRONTEND_OFFICIAL = LFM2_AUDIO_FRONTEND_OFFICIAL,
  GST_LFM2_AUDIO_FRONTEND_LLAMACPP = LFM2_AUDIO_FRONTEND_LLAMACPP,
} GstLfm2AudioFrontend;

#define GST_TYPE_LFM2_AUDIO_FRONTEND (gst_lfm2_audio_frontend_get_type ())
GType gst_lfm2_audio_frontend_get_type (void);

/* What the converter takes, in native byte order. */
#define GST_LFM2_AUDIO_CAPS \
  "audio/x-raw, format = (string) { " GST_AUDIO_NE (F32) ", " GST_AUDIO_NE (S16) ", " \
  GST_AUDIO_NE (S32) ", " GST_AUDIO_NE (F64) ", U8 }, rate = (int) [ 1000, 768000 ], " \
  "channels = (int) [ 1, 64 ], layout = (string) interleaved"

/* ---- settings and properties -------------------------------------------------------- */

typedef struct {
  gchar *mmproj;
  GstLfm2AudioFrontend frontend;
  gfloat vad_threshold;
  gint min_silence_ms;
  gint max_segment_ms;
} GstLfm2AudioSettings;

#define GST_LFM2_AUDIO_DEFAULT_FRONTEND GST_LFM2_AUDIO_FRONTEND_OFFICIAL
#define GST_LFM2_AUDIO_DEFAULT_VAD_THRESHOLD 0.5f
#define GST_LFM2_AUDIO_DEFAULT_MIN_SILENCE_MS 500
#define GST_LFM2_AUDIO_DEFAULT_MAX_SEGMENT_MS 30000

/* Number of properties gst_lfm2_audio_install_properties() installs. */
#define GST_LFM2_AUDIO_N_PROPS 5

void gst_lfm2_audio_settings_init (GstLfm2AudioSettings * s);
void gst_lfm2_audio_settings_clear (GstLfm2AudioSettings * s);
/* Installs mmproj, frontend, vad-threshold, min-silence, max-segment (ids first … first + 4,
 * settable in READY). */
void gst_lfm2_audio_install_properties (GObjectClass * gobject_class, guint first);
/* FALSE when prop_id is not one of them. Call under the object lock. */
gboolean gst_lfm2_audio_settings_set_property (GstLfm2AudioSettings * s, guint prop_id,
    guint first, const GValue * value);
gboolean gst_lfm2_audio_settings_get_property (const GstLfm2AudioSettings * s,
    guint prop_id, guint first, GValue * value);
/* The VAD parameters of the settings (the library's defaults for the rest). */
struct lfm2_vad_params gst_lfm2_audio_settings_vad_params (const GstLfm2AudioSettings * s);

/* ---- the encoder: an lfm2a mmproj from the registry --------------------------------- */

#define GST_LFM2_KIND_AUDIO_MMPROJ "lfm2a-mmproj"

/* lfm2_audio keeps scratch buffers: one encode at a time per loaded file (`lock`). */
typedef struct {
  lfm2_audio *audio;
  GMutex lock;
} GstLfm2AudioMmproj;

typedef struct {
  GstLfm2Shared *mmproj;        /* NULL until started */
  gint n_embd;                  /* adapter output width */
  gdouble last_encode_ms;
  gfloat *embd;                 /* gst_lfm2_audio_enc_encode_rows(): grown to the longest
                                   utterance, then kept until stop */
  gsize embd_cap;               /* floats */
  lfm2_abort_callback abort_cb; /* NULL, or asked between encoder layers: TRUE stops it */
  gpointer abort_data;
} GstLfm2AudioEncoder;

/* Loads (or shares) the mmproj with the settings' front-end and n_threads; with `text`, checks
 * the adapter feeds it; checks an utterance of max-segment fits the front-end. Errors name the
 * file and the reason. */
gboolean gst_lfm2_audio_enc_start (GstLfm2AudioEncoder * enc, const GstLfm2AudioSettings * s,
    gint n_threads, const lfm2_model * text, GError ** error);
void gst_lfm2_audio_enc_stop (GstLfm2AudioEncoder * enc);
/* Rows for n 16 kHz samples (lfm2_audio_n_tokens). */
gint gst_lfm2_audio_enc_n_rows (gint64 n_samples);
/* Encodes into out (cap floats, >= n_rows × n_embd): the number of rows, -1 with *error on
 * failure, or LFM2_AUDIO_ENCODE_ABORTED (no error) when enc->abort_cb stopped it. */
gint64 gst_lfm2_audio_enc_encode (GstLfm2AudioEncoder * enc, const gfloat * pcm, gint64 n,
    gfloat * out, gsize cap, GError ** error);
/* Encodes into enc->embd (grown as needed): the number of rows, -1 after posting an ERROR
 * on `element`, or LFM2_AUDIO_ENCODE_ABORTED when enc->abort_cb stopped it. */
gint gst_lfm2_audio_enc_encode_rows (GstLfm2AudioEncoder * enc, GstElement * element,
    const gfloat * pcm, gint64 n);

/* ---- the input stage ---------------------------------------------------------------- */

/* An utterance (or the open part of one), with the timestamps of the audio it covers. */
typedef struct {
  const gfloat *pcm;            /* 16 kHz mono; valid only during the callback / until the
                                   next call on the GstLfm2AudioIn */
  gint64 n;
  gboolean forced;              /* cut at max-segment: the speech goes on in the next one */
  GstClockTime pts, duration;   /* in the input segment */
  GstClockTime start, end;      /* running time */
} GstLfm2Utterance;

/* Receives every completed utterance, in stream order. */
typedef void (*GstLfm2UtteranceFunc) (const GstLfm2Utterance * u, gpointer user_data);

typedef struct {
  /* set up by start() */
  lfm2_vad *vad;
  lfm2_audio_converter *cv;     /* NULL until caps */
  GstAudioInfo info;
  GstSegment segment;
  gfloat *buf;                  /* converter output, grown to the largest input buffer */
  gint64 buf_cap;

  /* timestamps: VAD sample base_sample is at base_pts; in_frames input frames since */
  GstClockTime base_pts;
  gint64 base_sample;
  guint64 in_frames;

  /* statistics (input stage) */
  guint64 n_buffers, n_samples, n_discont;
  struct lfm2_audio_convert_stats conv;   /* of the converters already replaced */
} GstLfm2AudioIn;

/* Largest timestamp jump absorbed as jitter, and largest forward one filled with silence
 * (longer jumps and backward ones end the open utterance and restart the detector). */
#define GST_LFM2_AUDIO_DISCONT_TOLERANCE (40 * GST_MSECOND)
#define GST_LFM2_AUDIO_MAX_FILL GST_SECOND

void gst_lfm2_audio_in_init (GstLfm2AudioIn * in);
gboolean gst_lfm2_audio_in_start (GstLfm2AudioIn * in, const struct lfm2_vad_params *vp,
    GError ** error);
void gst_lfm2_audio_in_stop (GstLfm2AudioIn * in);
/* New caps: the old converter's tail goes through the detector first (cb may run). FALSE
 * with *error for caps the converter cannot take. */
gboolean gst_lfm2_audio_in_set_caps (GstLfm2AudioIn * in, GstCaps * caps,
    GstLfm2UtteranceFunc cb, gpointer user_data, GError ** error);
/* A new segment: what is open is finished under the old one first, and the detector and
 * the timestamps start again (nothing happens for a segment equal to the current one). */
void gst_lfm2_audio_in_set_segment (GstLfm2AudioIn * in, const GstSegment * segment,
    GstLfm2UtteranceFunc cb, gpointer user_data);
/* One buffer (any size, 0 included). FALSE with *error when nothing can be done with it. */
gboolean gst_lfm2_audio_in_push (GstLfm2AudioIn * in, GstBuffer * buf,
    GstLfm2UtteranceFunc cb, gpointer user_data, GError ** error);
/* A GAP event on the input: silence up to ts + duration. */
void gst_lfm2_audio_in_gap (GstLfm2AudioIn * in, GstClockTime ts, GstClockTime duration,
    GstLfm2UtteranceFunc cb, gpointer user_data);
/* EOS: the converter's tail and the open utterance. */
void gst_lfm2_audio_in_drain (GstLfm2AudioIn * in, GstLfm2UtteranceFunc cb,
    gpointer user_data);
/* The sink pad's side of an element on the input stage, errors posted on `element`:
 * chain: one buffer (taken); GST_FLOW_NOT_NEGOTIATED before caps, GST_FLOW_ERROR (posted)
 * when nothing can be done with it. */
GstFlowReturn gst_lfm2_audio_in_chain (GstLfm2AudioIn * in, GstElement * element,
    GstBuffer * buf, GstLfm2UtteranceFunc cb, gpointer user_data);
/* CAPS: set_caps, FALSE after posting a STREAM FORMAT error. Takes the event. */
gboolean gst_lfm2_audio_in_caps_event (GstLfm2AudioIn * in, GstElement * element,
    GstEvent * event, GstLfm2UtteranceFunc cb, gpointer user_data);
/* SEGMENT: set_segment; returns the segment event for the output (the input's time). Takes
 * the event. */
GstEvent *gst_lfm2_audio_in_segment_event (GstLfm2AudioIn * in, GstEvent * event,
    GstLfm2UtteranceFunc cb, gpointer user_data);
/* GAP: silence for the detector; returns how far the input has settled (see
 * gst_lfm2_audio_in_settled). Takes the event. */
GstClockTime gst_lfm2_audio_in_gap_event (GstLfm2AudioIn * in, GstEvent * event,
    GstLfm2UtteranceFunc cb, gpointer user_data);

/* Flushing: everything dropped, timestamps start again from the next buffer. */
void gst_lfm2_audio_in_reset (GstLfm2AudioIn * in);

/* The open utterance so far (TRUE), for partial results. */
gboolean gst_lfm2_audio_in_current (GstLfm2AudioIn * in, GstLfm2Utterance * u);
/* The open utterance as it will close if no more speech comes (lfm2_vad_pending), once its
 * trailing padding is in: TRUE. Its final is this one unless speech resumes. */
gboolean gst_lfm2_audio_in_pending (GstLfm2AudioIn * in, GstLfm2Utterance * u);
/* The input time (PTS) before which no utterance can begin any more: everything earlier is
 * either in an utterance already handed out or silence. NONE before the first buffer. */
GstClockTime gst_lfm2_audio_in_settled (GstLfm2AudioIn * in);
/* The input time (PTS) where the input pushed so far ends, or NONE. */
GstClockTime gst_lfm2_audio_in_end (GstLfm2AudioIn * in);
/* 16 kHz samples the detector holds (open utterance + pre-roll). */
gint64 gst_lfm2_audio_in_buffered (GstLfm2AudioIn * in);
/* Converter statistics over the whole stream. */
struct lfm2_audio_convert_stats gst_lfm2_audio_in_convert_stats (GstLfm2AudioIn * in);

G_END_DECLS

#endif /* GST_LFM2_AUDIO_H */
