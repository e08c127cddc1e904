/* audio-check.h — what the audio element tests (elements/lfm2asr.c, elements/lfm2audioenc.c)
 * share: the bundled clips as 16 kHz mono float, buffers of them as the elements receive
 * them, and the system plugins their pipelines use. */
#ifndef LFM2_AUDIO_CHECK_H
#define LFM2_AUDIO_CHECK_H

#include <gst/check/gstcheck.h>
#include <math.h>

#include "lfm2-audio.h"

#define AUDIO_CHECK_RATE 16000
#define AUDIO_CHECK_S16_CAPS \
  "audio/x-raw, format=S16LE, rate=16000, channels=1, layout=interleaved"

/* $LFM2_TEST_DATA/audio/wav/NAME, decoded by the audio library (16-bit 16 kHz WAVs come out
 * as q/32768 exactly). */
static inline gfloat *
audio_check_load_clip (const gchar * name, gint64 * n)
{
  gchar *path = g_build_filename (g_getenv ("LFM2_TEST_DATA"), "audio", "wav", name, NULL);
  gfloat *pcm;

  if (lfm2_audio_load_file (path, &pcm, n, NULL) != 0)
    g_error ("%s: %s", path, lfm2_last_error ());
  g_free (path);
  return pcm;
}

/* Samples [i, i+k) of x as an S16 buffer, PTS t0 + i/16000 (the clips are 16-bit, so x·32768
 * is exact). */
static inline GstBuffer *
audio_check_s16_buffer (const gfloat * x, gint64 i, gint64 k, GstClockTime t0)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, k * 2, NULL);
  GstMapInfo map;
  gint16 *d;

  fail_unless (gst_buffer_map (b, &map, GST_MAP_WRITE));
  d = (gint16 *) map.data;
  for (gint64 j = 0; j < k; j++)
    d[j] = (gint16) CLAMP (lrintf (x[i + j] * 32768.0f), -32768, 32767);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = t0 + gst_util_uint64_scale_int (i, GST_SECOND, AUDIO_CHECK_RATE);
  GST_BUFFER_DURATION (b) = t0 + gst_util_uint64_scale_int (i + k, GST_SECOND,
      AUDIO_CHECK_RATE) - GST_BUFFER_PTS (b);
  return b;
}

/* coreelements and app, loaded by file (the tests have no system plugin path). */
static inline void
audio_check_load_plugins (void)
{
  const gchar *plugins[] = { "libgstcoreelements.so", "libgstapp.so" };
  GError *err = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (plugins); i++) {
    gchar *file = g_build_filename (GST_SYSTEM_PLUGINS_DIR, plugins[i], NULL);
    GstPlugin *p = gst_plugin_load_file (file, &err);

    if (p == NULL)
      g_error ("%s: %s", file, err->message);
    gst_object_unref (p);
    g_free (file);
  }
}

#endif
