/* gstlfm2elements.h — every element of the lfm2 plugin (one GST_ELEMENT_REGISTER_DECLARE each).
 * Adding an element: declare it here and add one GST_ELEMENT_REGISTER line in gstlfm2plugin.c
 * (plus its source file in plugins/meson.build). */
#ifndef GST_LFM2_ELEMENTS_H
#define GST_LFM2_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE (lfm2text);

#ifdef GST_LFM2_HAVE_VISION
GST_ELEMENT_REGISTER_DECLARE (lfm2vl);
GST_ELEMENT_REGISTER_DECLARE (lfm2vlenc);
#endif

#ifdef GST_LFM2_HAVE_AUDIO
GST_ELEMENT_REGISTER_DECLARE (lfm2asr);
GST_ELEMENT_REGISTER_DECLARE (lfm2audioenc);
GST_ELEMENT_REGISTER_DECLARE (lfm2tts);
GST_ELEMENT_REGISTER_DECLARE (lfm2audiodec);
GST_ELEMENT_REGISTER_DECLARE (lfm2s2s);
#endif

G_END_DECLS

#endif /* GST_LFM2_ELEMENTS_H */
