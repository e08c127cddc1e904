/* gstlfm2vision.c — the vision helpers lfm2vl and lfm2vlenc share (see gstlfm2vision.h):
 * the preprocess enum and image properties, the accepted video caps, mmproj files in the model
 * registry, and the frame → RGB → plan → embeddings encoder. */
#include "gstlfm2vision.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (lfm2_vision_debug);
#define GST_CAT_DEFAULT lfm2_vision_debug

static void
ensure_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (lfm2_vision_debug, "lfm2vision", 0, "LFM2-VL image encoding");
    g_once_init_leave (&once, 1);
  }
}

/* ---- the preprocess enum ----------------------------------------------------------- */

GType
gst_lfm2_preprocess_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_PREPROCESS_OFFICIAL,
        "The Hugging Face LFM2-VL processor the models were trained with (area-based tiling, "
          "stretched tiles, antialiased resize)", "official"},
    {GST_LFM2_PREPROCESS_LLAMACPP,
        "What llama.cpp's mtmd computes (per-side tiling, letterboxed tiles, thumbnail always)",
        "llamacpp"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2Preprocess", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_lfm2_resample_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LFM2_RESAMPLE_AUTO,
        "The mmproj's resize algorithm (clip.vision.image_resize_algo), else bilinear", "auto"},
    {GST_LFM2_RESAMPLE_BILINEAR, "Pillow's antialiased bilinear (resample 2)", "bilinear"},
    {GST_LFM2_RESAMPLE_BICUBIC, "Pillow's antialiased bicubic (resample 3)", "bicubic"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLfm2Resample", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- the image properties -------------------------------------------------------- */

void
gst_lfm2_vision_settings_init (GstLfm2VisionSettings * s)
{
  s->n_threads = GST_LFM2_VISION_DEFAULT_N_THREADS;
  s->min_image_tokens = GST_LFM2_VISION_DEFAULT_MIN_IMAGE_TOKENS;
  s->max_image_tokens = GST_LFM2_VISION_DEFAULT_MAX_IMAGE_TOKENS;
  s->do_tiling = GST_LFM2_VISION_DEFAULT_DO_TILING;
  s->preprocess = GST_LFM2_VISION_DEFAULT_PREPROCESS;
  s->min_tiles = GST_LFM2_VISION_DEFAULT_MIN_TILES;
  s->max_tiles = GST_LFM2_VISION_DEFAULT_MAX_TILES;
  s->max_pixels_tolerance = GST_LFM2_VISION_DEFAULT_MAX_PIXELS_TOLERANCE;
  s->use_thumbnail = GST_LFM2_VISION_DEFAULT_USE_THUMBNAIL;
  s->resample = GST_LFM2_VISION_DEFAULT_RESAMPLE;
  s->preprocessor_config = NULL;
  s->explicit_set = 0;
}

void
gst_lfm2_vision_settings_copy (GstLfm2VisionSettings * dst,
    const GstLfm2VisionSettings * src)
{
  *dst = *src;
  dst->preprocessor_config = g_strdup (src->preprocessor_config);
}

void
gst_lfm2_vision_settings_clear (GstLfm2VisionSettings * s)
{
  g_clear_pointer (&s->preprocessor_config, g_free);
}

gboolean
gst_lfm2_vision_settings_resolve (const GstLfm2VisionSettings * s,
    struct lfm2_vision_params *p, struct lfm2_vision_config *cfg, GError ** error)
{
  const guint x = s->explicit_set;

  *p = lfm2_vision_default_params ();
  memset (cfg, 0, sizeof (*cfg));
  p->preprocess = (enum lfm2_vision_preprocess) s->preprocess;
  p->n_threads = s->n_threads;
  if (s->preprocessor_config && s->preprocessor_config[0]) {
    lfm2_clear_error ();
    if (lfm2_vision_read_config (s->preprocessor_config, p, cfg) != 0) {
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
          "Invalid preprocessor-config: %s", lfm2_last_error ());
      return FALSE;
    }
  }
  /* properties the application set go over the file; the others keep the file's value
   * (or the default) */
  if (x & LFM2_VISION_CFG_MIN_IMAGE_TOKENS)
    p->min_image_tokens = s->min_image_tokens;
  if (x & LFM2_VISION_CFG_MAX_IMAGE_TOKENS)
    p->max_image_tokens = s->max_image_tokens;
  if (x & LFM2_VISION_CFG_DO_TILING)
    p->do_tiling = s->do_tiling;
  if (x & LFM2_VISION_CFG_MIN_TILES)
    p->min_tiles = s->min_tiles;
  if (x & LFM2_VISION_CFG_MAX_TILES)
    p->max_tiles = s->max_tiles;
  if (x & LFM2_VISION_CFG_TOLERANCE)
    p->max_pixels_tolerance = s->max_pixels_tolerance;
  if (x & LFM2_VISION_CFG_USE_THUMBNAIL)
    p->use_thumbnail = s->use_thumbnail;
  if (x & LFM2_VISION_CFG_RESAMPLE)
    p->resample = (enum lfm2_vision_resample) s->resample;
  return TRUE;
}

/* The doc comments name lfm2vlenc; lfm2vl has the same properties (its n-threads is the
 * base class's, for encoder and decoder). */
void
gst_lfm2_vision_install_properties (GObjectClass * gobject_class, guint first,
    gboolean with_n_threads)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  /**
   * GstLfm2VlEnc:n-threads:
   *
   * Worker threads of the image encoder; 0 uses one per core.
   */
  if (with_n_threads)
    g_object_class_install_property (gobject_class, first,
        g_param_spec_int ("n-threads", "Threads",
            "Worker threads of the image encoder (0 = one per core)", 0, 1024,
            GST_LFM2_VISION_DEFAULT_N_THREADS, rw));
  /**
   * GstLfm2VlEnc:min-image-tokens:
   *
   * Smallest token budget of a single image or thumbnail: smaller pictures are scaled up to
   * it.
   */
  g_object_class_install_property (gobject_class, first + 1,
      g_param_spec_int ("min-image-tokens", "Min image tokens",
          "Smallest token budget of a single image or thumbnail (small pictures are scaled up "
          "to it)", 1, 16384, GST_LFM2_VISION_DEFAULT_MIN_IMAGE_TOKENS, rw));
  /**
   * GstLfm2VlEnc:max-image-tokens:
   *
   * Largest token budget of a single image or thumbnail: larger pictures are scaled down,
   * or tiled when #GstLfm2VlEnc:do-tiling is set.
   */
  g_object_class_install_property (gobject_class, first + 2,
      g_param_spec_int ("max-image-tokens", "Max image tokens",
          "Largest token budget of a single image or thumbnail (larger pictures are scaled "
          "down, or tiled when do-tiling is set)", 1, 16384,
          GST_LFM2_VISION_DEFAULT_MAX_IMAGE_TOKENS, rw));
  /**
   * GstLfm2VlEnc:do-tiling:
   *
   * Splits large pictures into 512×512 tiles plus a thumbnail instead of scaling them down
   * to one image (more image tokens, more detail, slower).
   */
  g_object_class_install_property (gobject_class, first + 3,
      g_param_spec_boolean ("do-tiling", "Tiling",
          "Split large pictures into 512×512 tiles (+ a thumbnail) instead of scaling them "
          "down to one image", GST_LFM2_VISION_DEFAULT_DO_TILING, rw));
  /**
   * GstLfm2VlEnc:preprocess:
   *
   * Image preprocessing: `official`, the Hugging Face processor the models were trained
   * with, or `llamacpp`, what llama.cpp's mtmd computes (bit-comparable with it).
   */
  g_object_class_install_property (gobject_class, first + 4,
      g_param_spec_enum ("preprocess", "Preprocessing",
          "Image preprocessing: the official processor the models were trained with, or "
          "llama.cpp's mtmd (bit-comparable with llama.cpp)", GST_TYPE_LFM2_PREPROCESS,
          GST_LFM2_VISION_DEFAULT_PREPROCESS, rw));
  /**
   * GstLfm2VlEnc:min-tiles:
   *
   * Fewest tiles of a grid for a large picture (the processor config's `min_tiles`). With 1,
   * transformers stretches some nearly square pictures into one 512×512 tile while its text
   * counts another size: those frame sizes are refused with an error naming the settings.
   */
  g_object_class_install_property (gobject_class, first + 5,
      g_param_spec_int ("min-tiles", "Min tiles",
          "Fewest tiles of a grid for a large picture (processor config min_tiles)", 1, 100,
          GST_LFM2_VISION_DEFAULT_MIN_TILES, rw));
  /**
   * GstLfm2VlEnc:max-tiles:
   *
   * Most tiles of a grid for a large picture (the processor config's `max_tiles`); every
   * tile is 256 image tokens.
   */
  g_object_class_install_property (gobject_class, first + 6,
      g_param_spec_int ("max-tiles", "Max tiles",
          "Most tiles of a grid for a large picture, 256 image tokens each (processor config "
          "max_tiles)", 1, 100, GST_LFM2_VISION_DEFAULT_MAX_TILES, rw));
  /**
   * GstLfm2VlEnc:max-pixels-tolerance:
   *
   * A picture is tiled when its area (sides rounded to 32) exceeds max-image-tokens·32²
   * times this (the processor config's `max_pixels_tolerance`; LFM2-VL-1.6B uses 1.5).
   */
  g_object_class_install_property (gobject_class, first + 7,
      g_param_spec_float ("max-pixels-tolerance", "Max pixels tolerance",
          "Tile a picture when its rounded area exceeds max-image-tokens·32² times this "
          "(processor config max_pixels_tolerance)", 0.01f, 1000.0f,
          GST_LFM2_VISION_DEFAULT_MAX_PIXELS_TOLERANCE, rw));
  /**
   * GstLfm2VlEnc:use-thumbnail:
   *
   * Adds a thumbnail of the whole picture after the tiles (the processor config's
   * `use_thumbnail`; the first LFM2-VL-450M config says false). The llamacpp mode always
   * adds it.
   */
  g_object_class_install_property (gobject_class, first + 8,
      g_param_spec_boolean ("use-thumbnail", "Thumbnail",
          "Add a thumbnail of the whole picture after the tiles (processor config "
          "use_thumbnail; llamacpp mode always does)", GST_LFM2_VISION_DEFAULT_USE_THUMBNAIL,
          rw));
  /**
   * GstLfm2VlEnc:resample:
   *
   * Resampling filter of the official mode, both Pillow's antialiased ones (the processor
   * config's `resample`: 2 bilinear, 3 bicubic); `auto` takes the mmproj's
   * clip.vision.image_resize_algo, else bilinear.
   */
  g_object_class_install_property (gobject_class, first + 9,
      g_param_spec_enum ("resample", "Resampling filter",
          "Resampling filter of the official mode (Pillow's antialiased bilinear or bicubic; "
          "auto = the mmproj's, else bilinear)", GST_TYPE_LFM2_RESAMPLE,
          GST_LFM2_VISION_DEFAULT_RESAMPLE, rw));
  /**
   * GstLfm2VlEnc:preprocessor-config:
   *
   * The model's Hugging Face preprocessor_config.json or processor_config.json (fields at
   * the top level or under "image_processor"), or the model directory holding them. Its
   * image settings replace the defaults; properties set explicitly override it. Read at
   * READY→PAUSED; a bad value fails the state change with an error naming the file and the
   * field.
   */
  g_object_class_install_property (gobject_class, first + 10,
      g_param_spec_string ("preprocessor-config", "Preprocessor config",
          "Hugging Face preprocessor_config.json / processor_config.json of the model (or its "
          "directory): its image settings, under the properties set explicitly", NULL, rw));
}

gboolean
gst_lfm2_vision_settings_set_property (GstLfm2VisionSettings * s, guint prop_id,
    guint first, const GValue * value)
{
  guint bit = 0;

  if (prop_id < first)
    return FALSE;
  switch (prop_id - first) {
    case 0:
      s->n_threads = g_value_get_int (value);
      return TRUE;
    case 1:
      s->min_image_tokens = g_value_get_int (value);
      bit = LFM2_VISION_CFG_MIN_IMAGE_TOKENS;
      break;
    case 2:
      s->max_image_tokens = g_value_get_int (value);
      bit = LFM2_VISION_CFG_MAX_IMAGE_TOKENS;
      break;
    case 3:
      s->do_tiling = g_value_get_boolean (value);
      bit = LFM2_VISION_CFG_DO_TILING;
      break;
    case 4:
      s->preprocess = g_value_get_enum (value);
      return TRUE;
    case 5:
      s->min_tiles = g_value_get_int (value);
      bit = LFM2_VISION_CFG_MIN_TILES;
      break;
    case 6:
      s->max_tiles = g_value_get_int (value);
      bit = LFM2_VISION_CFG_MAX_TILES;
      break;
    case 7:
      s->max_pixels_tolerance = g_value_get_float (value);
      bit = LFM2_VISION_CFG_TOLERANCE;
      break;
    case 8:
      s->use_thumbnail = g_value_get_boolean (value);
      bit = LFM2_VISION_CFG_USE_THUMBNAIL;
      break;
    case 9:
      s->resample = g_value_get_enum (value);
      bit = LFM2_VISION_CFG_RESAMPLE;
      break;
    case 10:
      g_free (s->preprocessor_config);
      s->preprocessor_config = g_value_dup_string (value);
      return TRUE;
    default:
      return FALSE;
  }
  s->explicit_set |= bit;
  return TRUE;
}

gboolean
gst_lfm2_vision_settings_get_property (const GstLfm2VisionSettings * s, guint prop_id,
    guint first, GValue * value)
{
  if (prop_id < first)
    return FALSE;
  switch (prop_id - first) {
    case 0:
      g_value_set_int (value, s->n_threads);
      return TRUE;
    case 1:
      g_value_set_int (value, s->min_image_tokens);
      return TRUE;
    case 2:
      g_value_set_int (value, s->max_image_tokens);
      return TRUE;
    case 3:
      g_value_set_boolean (value, s->do_tiling);
      return TRUE;
    case 4:
      g_value_set_enum (value, s->preprocess);
      return TRUE;
    case 5:
      g_value_set_int (value, s->min_tiles);
      return TRUE;
    case 6:
      g_value_set_int (value, s->max_tiles);
      return TRUE;
    case 7:
      g_value_set_float (value, s->max_pixels_tolerance);
      return TRUE;
    case 8:
      g_value_set_boolean (value, s->use_thumbnail);
      return TRUE;
    case 9:
      g_value_set_enum (value, s->resample);
      return TRUE;
    case 10:
      g_value_set_string (value, s->preprocessor_config);
      return TRUE;
  }
  return FALSE;
}


/* ---- the video caps ---------------------------------------------------------------- */

GstCaps *
gst_lfm2_vision_video_caps (void)
{
  static GstCaps *caps;

  if (g_once_init_enter (&caps)) {
    /* Every frame passes through to downstream and one in many is converted for the
     * encoder, so the formats that are cheapest to produce, move and hold come first:
     * 8-bit 4:2:0 (1.5 bytes a pixel), then 4:2:2, then RGB. A source that can produce
     * anything (videotestsrc lists 16-bit-per-channel formats first) would otherwise pick
     * 8 bytes a pixel: at 1080p, 16 MB a frame for the pipeline to paint and buffer. */
    static const GstVideoFormat first[] = {
      GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_YV12,
      GST_VIDEO_FORMAT_NV21, GST_VIDEO_FORMAT_YUY2, GST_VIDEO_FORMAT_UYVY,
      GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBx,
      GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR,
      GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_ARGB,
      GST_VIDEO_FORMAT_ABGR, GST_VIDEO_FORMAT_Y42B, GST_VIDEO_FORMAT_Y444,
      GST_VIDEO_FORMAT_GRAY8,
    };
    GValue list = G_VALUE_INIT, v = G_VALUE_INIT;
    const GstVideoFormat *all;
    guint n_all;
    GstCaps *c;

    g_value_init (&list, GST_TYPE_LIST);
    g_value_init (&v, G_TYPE_STRING);
    for (guint i = 0; i < G_N_ELEMENTS (first); i++) {
      g_value_set_static_string (&v, gst_video_format_to_string (first[i]));
      gst_value_list_append_value (&list, &v);
    }
    all = gst_video_formats_raw (&n_all);
    for (guint i = 0; i < n_all; i++) {
      gboolean seen = FALSE;
      for (guint j = 0; j < G_N_ELEMENTS (first) && !seen; j++)
        seen = all[i] == first[j];
      if (!seen) {
        g_value_set_static_string (&v, gst_video_format_to_string (all[i]));
        gst_value_list_append_value (&list, &v);
      }
    }
    c = gst_caps_new_simple ("video/x-raw",
        "width", GST_TYPE_INT_RANGE, 1, GST_LFM2_VISION_MAX_SIDE,
        "height", GST_TYPE_INT_RANGE, 1, GST_LFM2_VISION_MAX_SIDE,
        "framerate", GST_TYPE_FRACTION_RANGE, 0, 1, G_MAXINT, 1, NULL);
    gst_caps_set_value (c, "format", &list);
    g_value_unset (&v);
    g_value_unset (&list);
    /* lives as long as the process, like a static pad template's caps */
    GST_MINI_OBJECT_FLAG_SET (c, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);
    g_once_init_leave (&caps, c);
  }
  return gst_caps_ref (caps);
}

GstCaps *
gst_lfm2_vision_query_caps (GstPad * downstream, GstCaps * filter)
{
  GstCaps *ours = gst_lfm2_vision_video_caps (), *result;

  if (downstream) {
    /* ANY downstream (fakesink, appsink) leaves our order; a sink with preferences keeps
     * its own (no filter: a peer would put the filter's order first) */
    GstCaps *peer = gst_pad_peer_query_caps (downstream, NULL);
    result = gst_caps_intersect_full (peer, ours, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (peer);
    gst_caps_unref (ours);
  } else {
    result = ours;
  }
  if (filter) {
    /* ours first: GST_CAPS_INTERSECT_FIRST keeps the first argument's order */
    GstCaps *tmp = gst_caps_intersect_full (result, filter, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (result);
    result = tmp;
  }
  return result;
}

/* ---- mmproj files in the registry -------------------------------------------------- */

/* The registry's load function takes only a path; the parameters of the acquiring thread's
 * request travel here (the load runs synchronously in that thread). */
static _Thread_local const struct lfm2_vision_params *mmproj_load_params;

static gpointer
load_mmproj (const gchar * path, GError ** error)
{
  GstLfm2Mmproj *m;
  lfm2_vision *v;

  lfm2_clear_error ();
  v = lfm2_vision_load (path, *mmproj_load_params);
  if (v == NULL) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load LFM2-VL mmproj \"%s\": %s", path,
        lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
    return NULL;
  }
  m = g_new0 (GstLfm2Mmproj, 1);
  m->vision = v;
  g_mutex_init (&m->lock);
  return m;
}

static void
free_mmproj (gpointer object)
{
  GstLfm2Mmproj *m = object;

  lfm2_vision_free (m->vision);
  g_mutex_clear (&m->lock);
  g_free (m);
}

GstLfm2Shared *
gst_lfm2_mmproj_acquire (const gchar * path, GstLfm2Preprocess mode, gint n_threads,
    GError ** error)
{
  struct lfm2_vision_params p = lfm2_vision_default_params ();
  GstLfm2Shared *s;
  gchar *kind;

  p.preprocess = (enum lfm2_vision_preprocess) mode;
  p.n_threads = n_threads;
  kind = g_strdup_printf ("%s/%s/t%d", GST_LFM2_KIND_MMPROJ,
      lfm2_vision_preprocess_name (p.preprocess), n_threads);
  mmproj_load_params = &p;
  s = gst_lfm2_shared_acquire (kind, path, load_mmproj, free_mmproj, error);
  mmproj_load_params = NULL;
  g_free (kind);
  return s;
}

/* ---- the encoder ------------------------------------------------------------------ */

static void
enc_clear_format (GstLfm2VisionEnc * enc)
{
  g_clear_pointer (&enc->conv, gst_video_converter_free);
  gst_clear_buffer (&enc->rgb_buf);
  for (gint i = 0; i < enc->n_rungs; i++)
    g_clear_pointer (&enc->rung_layouts[i], g_free);
  enc->n_rungs = enc->rung = 0;
  enc->layout = NULL;
  enc->n_layout = 0;
  enc->configured = FALSE;
}

void
gst_lfm2_vision_enc_select (GstLfm2VisionEnc * enc, gint i)
{
  g_return_if_fail (i >= 0 && i < enc->n_rungs);
  enc->rung = i;
  enc->plan = enc->rungs[i];
  enc->layout = enc->rung_layouts[i];
  enc->n_layout = enc->rung_n_layouts[i];
}

/* The plans of a w×h frame (see GstLfm2VisionEnc.rungs) and their layouts. */
static gboolean
enc_make_rungs (GstLfm2VisionEnc * enc, gint w, gint h, GError ** error)
{
  const lfm2_vision *v = gst_lfm2_shared_mmproj (enc->mmproj)->vision;
  const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams (v);
  struct lfm2_vision_params p = enc->params;

  lfm2_clear_error ();
  if (lfm2_vision_make_plan (&p, hp->patch_size, hp->merge, w, h, &enc->rungs[0]) != 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Cannot plan a %d×%d picture: %s", w, h, lfm2_last_error ());
    return FALSE;
  }
  enc->n_rungs = 1;
  p.do_tiling = FALSE;
  for (gint m = enc->params.max_image_tokens; enc->ladder
      && enc->n_rungs < GST_LFM2_VISION_MAX_RUNGS; m /= 2) {
    struct lfm2_vision_plan *r = &enc->rungs[enc->n_rungs];

    p.max_image_tokens = MAX (m, enc->params.min_image_tokens);
    if (lfm2_vision_make_plan (&p, hp->patch_size, hp->merge, w, h, r) == 0
        && r->n_tokens < enc->rungs[enc->n_rungs - 1].n_tokens)
      enc->n_rungs++;
    if (p.max_image_tokens == enc->params.min_image_tokens)
      break;
  }
  for (gint i = 0; i < enc->n_rungs && enc->text; i++) {
    gint32 n = lfm2_vision_layout (enc->text, &enc->rungs[i], NULL, 0);

    if (n < 0 && n != G_MININT32)
      n = -n;
    if (n > 0) {
      enc->rung_layouts[i] = g_new (gint32, n);
      n = lfm2_vision_layout (enc->text, &enc->rungs[i], enc->rung_layouts[i], n);
    }
    if (n <= 0) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "Cannot lay out the image tokens of a %d×%d picture: %s", w, h,
          lfm2_last_error ());
      return FALSE;
    }
    enc->rung_n_layouts[i] = n;
  }
  gst_lfm2_vision_enc_select (enc, 0);
  return TRUE;
}

/* A text-only LFM2 model of the projector's width passes the width check, and even has
 * <|image_start|>, <|image_end|> and <|img_thumbnail|> (the LFM2 vocabulary reserves them),
 * but not the tile markers LFM2-VL adds: its captions would be noise, or nothing. So the
 * backbone must have, as single vocabulary entries, every marker the LFM2-VL layout uses for
 * the grids the planner may choose, whatever this element's tiling setting. */
static gboolean
check_image_tokens (const lfm2_model * text, const struct lfm2_vision_params *p,
    const gchar * mmproj_path, GError ** error)
{
  static const gchar *const fixed[] = {
    "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>"
  };
  gchar name[48];

  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (lfm2_token_lookup (text, fixed[i]) < 0) {
      g_strlcpy (name, fixed[i], sizeof (name));
      goto missing;
    }
  for (gint r = 1; r <= p->max_tiles; r++)
    for (gint c = 1; r * c <= p->max_tiles; c++) {
      g_snprintf (name, sizeof (name), "<|img_row_%d_col_%d|>", r, c);
      if (r * c >= p->min_tiles && lfm2_token_lookup (text, name) < 0)
        goto missing;
    }
  return TRUE;

missing:
  g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "The model \"%s\" has no %s token: it is not the LFM2-VL backbone the mmproj \"%s\" "
      "belongs to (a text-only LFM2 model?)", lfm2_model_path (text), name, mmproj_path);
  return FALSE;
}

gboolean
gst_lfm2_vision_enc_start (GstLfm2VisionEnc * enc, const gchar * mmproj_path,
    const lfm2_model * text, const GstLfm2VisionSettings * s, GError ** error)
{
  const lfm2_vision *v;
  const struct lfm2_vision_hparams *hp;
  struct lfm2_vision_plan probe;
  struct lfm2_vision_config cfg;

  ensure_debug ();
  memset (enc, 0, sizeof (*enc));
  if (mmproj_path == NULL || mmproj_path[0] == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "No mmproj file given (set the mmproj property)");
    return FALSE;
  }
  /* the config first: a bad file fails before a large mmproj is loaded */
  if (!gst_lfm2_vision_settings_resolve (s, &enc->params, &cfg, error))
    return FALSE;
  enc->mmproj = gst_lfm2_mmproj_acquire (mmproj_path, s->preprocess, s->n_threads, error);
  if (enc->mmproj == NULL)
    return FALSE;
  v = gst_lfm2_shared_mmproj (enc->mmproj)->vision;
  hp = lfm2_vision_get_hparams (v);
  enc->n_embd = lfm2_vision_n_embd_out (v);
  if (enc->params.resample == LFM2_VISION_RESAMPLE_AUTO)
    enc->params.resample = hp->resample;        /* the file's filter, or bilinear */

  lfm2_clear_error ();
  if (s->preprocessor_config && lfm2_vision_check_config (v, s->preprocessor_config, &cfg)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "Invalid preprocessor-config: %s", lfm2_last_error ());
    goto fail;
  }
  if (lfm2_vision_make_plan (&enc->params, hp->patch_size, hp->merge, 1, 1, &probe) != 0) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "Invalid image settings for \"%s\": %s", mmproj_path, lfm2_last_error ());
    goto fail;
  }
  if (text != NULL) {
    lfm2_clear_error ();
    if (lfm2_vision_check_text_model (v, text) != 0) {
      /* the engine's message names both files and both widths */
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "%s",
          lfm2_last_error ());
      goto fail;
    }
    if (!check_image_tokens (text, &enc->params, mmproj_path, error))
      goto fail;
    enc->text = text;
  }
  return TRUE;

fail:
  gst_lfm2_shared_release (enc->mmproj);
  enc->mmproj = NULL;
  return FALSE;
}

void
gst_lfm2_vision_enc_stop (GstLfm2VisionEnc * enc)
{
  enc_clear_format (enc);
  gst_lfm2_shared_release (enc->mmproj);
  enc->mmproj = NULL;
  enc->text = NULL;
}

gboolean
gst_lfm2_vision_enc_set_info (GstLfm2VisionEnc * enc, const GstVideoInfo * info,
    GError ** error)
{
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);

  if (enc->configured && gst_video_info_is_equal (info, &enc->in_info))
    return TRUE;
  enc_clear_format (enc);
  enc->in_info = *info;

  if (!enc_make_rungs (enc, w, h, error)) {
    enc_clear_format (enc);
    return FALSE;
  }

  /* RGB frames go to the encoder in place; everything else through one converter. */
  if (GST_VIDEO_INFO_FORMAT (info) != GST_VIDEO_FORMAT_RGB) {
    /* same geometry and timing: the converter only changes the pixel format */
    gst_video_info_set_interlaced_format (&enc->rgb_info, GST_VIDEO_FORMAT_RGB,
        GST_VIDEO_INFO_INTERLACE_MODE (info), w, h);
    GST_VIDEO_INFO_FPS_N (&enc->rgb_info) = GST_VIDEO_INFO_FPS_N (info);
    GST_VIDEO_INFO_FPS_D (&enc->rgb_info) = GST_VIDEO_INFO_FPS_D (info);
    GST_VIDEO_INFO_PAR_N (&enc->rgb_info) = GST_VIDEO_INFO_PAR_N (info);
    GST_VIDEO_INFO_PAR_D (&enc->rgb_info) = GST_VIDEO_INFO_PAR_D (info);
    /* Default options, the same as the videoconvert element's. */
    enc->conv = gst_video_converter_new ((GstVideoInfo *) info, &enc->rgb_info, NULL);
    if (enc->conv == NULL) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "Cannot convert %s %d×%d to RGB", gst_video_format_to_string
          (GST_VIDEO_INFO_FORMAT (info)), w, h);
      return FALSE;
    }
    enc->rgb_buf = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&enc->rgb_info), NULL);
    if (enc->rgb_buf == NULL) {
      g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NO_SPACE_LEFT,
          "Cannot allocate %" G_GSIZE_FORMAT " bytes for the RGB copy of a %d×%d picture",
          GST_VIDEO_INFO_SIZE (&enc->rgb_info), w, h);
      enc_clear_format (enc);
      return FALSE;
    }
  }

  enc->configured = TRUE;
  GST_DEBUG ("%s %d×%d: %d image tokens (%s, %d×%d tiles%s, %s), layout of %d; %d plan%s "
      "down to %d tokens", gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)), w, h,
      enc->plan.n_tokens, lfm2_vision_preprocess_name (enc->plan.mode), enc->plan.n_cols,
      enc->plan.n_rows, enc->plan.has_thumb ? " + thumbnail" : "",
      lfm2_vision_resample_name (enc->plan.resample), enc->n_layout, enc->n_rungs,
      enc->n_rungs == 1 ? "" : "s", enc->rungs[enc->n_rungs - 1].n_tokens);
  return TRUE;
}

gboolean
gst_lfm2_vision_enc_encode (GstLfm2VisionEnc * enc, GstBuffer * frame, gfloat * out,
    gsize cap, GError ** error)
{
  GstLfm2Mmproj *m = gst_lfm2_shared_mmproj (enc->mmproj);
  GstVideoFrame in, rgb;
  struct lfm2_vision_image img;
  const gint64 t0 = g_get_monotonic_time ();
  gint rows;

  g_return_val_if_fail (enc->configured, FALSE);
  if (!gst_video_frame_map (&in, &enc->in_info, frame, GST_MAP_READ)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Cannot map a %s %d×%d frame (buffer of %" G_GSIZE_FORMAT " bytes)",
        gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (&enc->in_info)),
        GST_VIDEO_INFO_WIDTH (&enc->in_info), GST_VIDEO_INFO_HEIGHT (&enc->in_info),
        gst_buffer_get_size (frame));
    return FALSE;
  }
  img.width = GST_VIDEO_INFO_WIDTH (&enc->in_info);
  img.height = GST_VIDEO_INFO_HEIGHT (&enc->in_info);
  if (enc->conv) {
    if (!gst_video_frame_map (&rgb, &enc->rgb_info, enc->rgb_buf, GST_MAP_WRITE)) {
      gst_video_frame_unmap (&in);
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
          "Cannot map the RGB scratch frame");
      return FALSE;
    }
    gst_video_converter_frame (enc->conv, &in, &rgb);
    gst_video_frame_unmap (&in);
    img.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&rgb, 0);
    img.data = GST_VIDEO_FRAME_PLANE_DATA (&rgb, 0);
  } else {
    img.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&in, 0);
    img.data = GST_VIDEO_FRAME_PLANE_DATA (&in, 0);
  }

  g_mutex_lock (&m->lock);
  lfm2_clear_error ();
  rows = lfm2_vision_encode (m->vision, &img, &enc->plan, out, cap);
  if (rows < 0)
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "Image encoder failed on a %d×%d frame: %s", img.width, img.height,
        lfm2_last_error ());
  g_mutex_unlock (&m->lock);

  gst_video_frame_unmap (enc->conv ? &rgb : &in);
  enc->last_encode_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return rows >= 0;
}
