/* gstlfm2plugin.c — the lfm2 plugin: Liquid AI LFM2 models on CPUs, from GGUF files. */
#include "gstlfm2elements.h"

#include "lfm2.h"

#ifndef PACKAGE
#define PACKAGE "lfm2-gst"
#endif
#ifndef GST_LFM2_VERSION
#define GST_LFM2_VERSION "0.1.0"
#endif

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (lfm2text, plugin);
#ifdef GST_LFM2_HAVE_VISION
  ret |= GST_ELEMENT_REGISTER (lfm2vl, plugin);
  ret |= GST_ELEMENT_REGISTER (lfm2vlenc, plugin);
#endif
#ifdef GST_LFM2_HAVE_AUDIO
  ret |= GST_ELEMENT_REGISTER (lfm2asr, plugin);
  ret |= GST_ELEMENT_REGISTER (lfm2audioenc, plugin);
  ret |= GST_ELEMENT_REGISTER (lfm2tts, plugin);
  ret |= GST_ELEMENT_REGISTER (lfm2audiodec, plugin);
  ret |= GST_ELEMENT_REGISTER (lfm2s2s, plugin);
#endif
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, lfm2,
    "Liquid AI LFM2 models (text, vision, audio) on CPUs from GGUF files",
    plugin_init, GST_LFM2_VERSION, "MIT", PACKAGE, "lfm2-gst")
