/* gstlfm2vlenc.c — lfm2vlenc: LFM2-VL image embeddings from video frames, and the vision
 * helpers lfm2vl shares (see gstlfm2vlenc.h).
 *
 * SECTION:element-lfm2vlenc
 *
 * Every video frame (any raw format, 1×1 … 8192×8192; converted to RGB internally) goes
 * through the LFM2-VL preprocessor, the SigLIP2 encoder and the projector of an mmproj GGUF.
 * The output buffer carries the embedding rows and the token layout that places them in an
 * LFM2 prompt, as NNStreamer `other/tensors` (docs/tensor-caps.md):
 *
 *   tensor 0  float32  n_embd:n_rows   the rows (tiles row-major, then the thumbnail)
 *   tensor 1  int32    n_layout        <|image_start|> … <|image_end|> with -1 per row
 *                                      (only when `model` names the text model)
 *
 * The token count depends only on the picture size, so for negotiated video caps the shape is
 * fixed and the element offers `format=static` with the exact dimensions first, then
 * `format=flexible` (128-byte header per tensor) for peers that want it. The PTS, DTS and
 * duration are the frame's.
 *
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=1 ! \
 *     lfm2vlenc mmproj=mmproj.gguf model=LFM2-VL.gguf ! \
 *     lfm2text model=LFM2-VL.gguf prompt-template="Describe this image." ! fakesink dump=true
 * ]|
 */
#include "gstlfm2vlenc.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_lfm2_vlenc_debug);
#define GST_CAT_DEFAULT gst_lfm2_vlenc_debug

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

void
gst_lfm2_vision_settings_init (GstLfm2VisionSettings * s)
{
  s->n_threads = GST_LFM2_VISION_DEFAULT_N_THREADS;
  s->min_image_tokens = GST_LFM2_VISION_DEFAULT_MIN_IMAGE_TOKENS;
  s->max_image_tokens = GST_LFM2_VISION_DEFAULT_MAX_IMAGE_TOKENS;
  s->do_tiling = GST_LFM2_VISION_DEFAULT_DO_TILING;
  s->preprocess = GST_LFM2_VISION_DEFAULT_PREPROCESS;
}

GstCaps *
gst_lfm2_vision_video_caps (void)
{
  static GstCaps *caps;

  if (g_once_init_enter (&caps)) {
    static const GstVideoFormat first[] = {
      GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx,
      GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_RGBA,
      GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR,
      GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_YV12,
      GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_NV21, GST_VIDEO_FORMAT_Y42B,
      GST_VIDEO_FORMAT_Y444, GST_VIDEO_FORMAT_YUY2, GST_VIDEO_FORMAT_UYVY,
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
  g_clear_pointer (&enc->layout, g_free);
  enc->n_layout = 0;
  enc->configured = FALSE;
}

gboolean
gst_lfm2_vision_enc_start (GstLfm2VisionEnc * enc, const gchar * mmproj_path,
    const lfm2_model * text, const GstLfm2VisionSettings * s, GError ** error)
{
  const lfm2_vision *v;
  const struct lfm2_vision_hparams *hp;
  struct lfm2_vision_plan probe;

  memset (enc, 0, sizeof (*enc));
  if (mmproj_path == NULL || mmproj_path[0] == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "No mmproj file given (set the mmproj property)");
    return FALSE;
  }
  enc->mmproj = gst_lfm2_mmproj_acquire (mmproj_path, s->preprocess, s->n_threads, error);
  if (enc->mmproj == NULL)
    return FALSE;
  v = gst_lfm2_shared_mmproj (enc->mmproj)->vision;
  hp = lfm2_vision_get_hparams (v);
  enc->n_embd = lfm2_vision_n_embd_out (v);

  enc->params = lfm2_vision_default_params ();
  enc->params.preprocess = (enum lfm2_vision_preprocess) s->preprocess;
  enc->params.min_image_tokens = s->min_image_tokens;
  enc->params.max_image_tokens = s->max_image_tokens;
  enc->params.do_tiling = s->do_tiling;
  lfm2_clear_error ();
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
  const lfm2_vision *v = gst_lfm2_shared_mmproj (enc->mmproj)->vision;
  const struct lfm2_vision_hparams *hp = lfm2_vision_get_hparams (v);
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);

  if (enc->configured && gst_video_info_is_equal (info, &enc->in_info))
    return TRUE;
  enc_clear_format (enc);
  enc->in_info = *info;

  lfm2_clear_error ();
  if (lfm2_vision_make_plan (&enc->params, hp->patch_size, hp->merge, w, h, &enc->plan) != 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "Cannot plan a %d×%d picture: %s", w, h, lfm2_last_error ());
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

  if (enc->text) {
    gint32 n = lfm2_vision_layout (enc->text, &enc->plan, NULL, 0);

    if (n < 0 && n != G_MININT32)
      n = -n;
    if (n > 0) {
      enc->layout = g_new (gint32, n);
      n = lfm2_vision_layout (enc->text, &enc->plan, enc->layout, n);
    }
    if (n <= 0) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "Cannot lay out the image tokens of a %d×%d picture: %s", w, h,
          lfm2_last_error ());
      enc_clear_format (enc);
      return FALSE;
    }
    enc->n_layout = n;
  }
  enc->configured = TRUE;
  GST_DEBUG ("%s %d×%d: %d image tokens (%s, %d×%d tiles%s), layout of %d",
      gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)), w, h, enc->plan.n_tokens,
      lfm2_vision_preprocess_name (enc->plan.mode), enc->plan.n_cols, enc->plan.n_rows,
      enc->plan.has_thumb ? " + thumbnail" : "", enc->n_layout);
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

/* ---- the element ------------------------------------------------------------------- */

enum {
  PROP_0,
  PROP_MMPROJ,
  PROP_MODEL,
  PROP_N_THREADS,               /* … the five vision properties, in install order */
  PROP_MIN_IMAGE_TOKENS,
  PROP_MAX_IMAGE_TOKENS,
  PROP_DO_TILING,
  PROP_PREPROCESS,
};

#define SRC_CAPS GST_LFM2_TENSORS_CAPS_STATIC "; " GST_LFM2_TENSORS_CAPS_FLEXIBLE

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

G_DEFINE_TYPE (GstLfm2VlEnc, gst_lfm2_vlenc, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (lfm2vlenc, "lfm2vlenc", GST_RANK_NONE,
    GST_TYPE_LFM2_VLENC,
    GST_DEBUG_CATEGORY_INIT (gst_lfm2_vlenc_debug, "lfm2vlenc", 0, "LFM2-VL image encoder"));

static void gst_lfm2_vlenc_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lfm2_vlenc_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lfm2_vlenc_finalize (GObject * object);
static gboolean gst_lfm2_vlenc_start (GstBaseTransform * trans);
static gboolean gst_lfm2_vlenc_stop (GstBaseTransform * trans);
static GstCaps *gst_lfm2_vlenc_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter);
static gboolean gst_lfm2_vlenc_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps);
static gboolean gst_lfm2_vlenc_decide_allocation (GstBaseTransform * trans,
    GstQuery * query);
static gboolean gst_lfm2_vlenc_transform_meta (GstBaseTransform * trans,
    GstBuffer * outbuf, GstMeta * meta, GstBuffer * inbuf);
static GstFlowReturn gst_lfm2_vlenc_prepare_output_buffer (GstBaseTransform * trans,
    GstBuffer * input, GstBuffer ** outbuf);
static GstFlowReturn gst_lfm2_vlenc_transform (GstBaseTransform * trans, GstBuffer * inbuf,
    GstBuffer * outbuf);

void
gst_lfm2_vision_install_properties (GObjectClass * gobject_class, guint first)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  g_object_class_install_property (gobject_class, first,
      g_param_spec_int ("n-threads", "Threads",
          "Worker threads of the image encoder (0 = one per core)", 0, 1024,
          GST_LFM2_VISION_DEFAULT_N_THREADS, rw));
  g_object_class_install_property (gobject_class, first + 1,
      g_param_spec_int ("min-image-tokens", "Min image tokens",
          "Smallest token budget of a single image or thumbnail (small pictures are scaled up "
          "to it)", 1, 16384, GST_LFM2_VISION_DEFAULT_MIN_IMAGE_TOKENS, rw));
  g_object_class_install_property (gobject_class, first + 2,
      g_param_spec_int ("max-image-tokens", "Max image tokens",
          "Largest token budget of a single image or thumbnail (larger pictures are scaled "
          "down, or tiled when do-tiling is set)", 1, 16384,
          GST_LFM2_VISION_DEFAULT_MAX_IMAGE_TOKENS, rw));
  g_object_class_install_property (gobject_class, first + 3,
      g_param_spec_boolean ("do-tiling", "Tiling",
          "Split large pictures into 512×512 tiles (+ a thumbnail) instead of scaling them "
          "down to one image", GST_LFM2_VISION_DEFAULT_DO_TILING, rw));
  g_object_class_install_property (gobject_class, first + 4,
      g_param_spec_enum ("preprocess", "Preprocessing",
          "Image preprocessing: the official processor the models were trained with, or "
          "llama.cpp's mtmd (bit-comparable with llama.cpp)", GST_TYPE_LFM2_PREPROCESS,
          GST_LFM2_VISION_DEFAULT_PREPROCESS, rw));
}

gboolean
gst_lfm2_vision_settings_set_property (GstLfm2VisionSettings * s, guint prop_id,
    guint first, const GValue * value)
{
  if (prop_id < first)
    return FALSE;
  switch (prop_id - first) {
    case 0:
      s->n_threads = g_value_get_int (value);
      return TRUE;
    case 1:
      s->min_image_tokens = g_value_get_int (value);
      return TRUE;
    case 2:
      s->max_image_tokens = g_value_get_int (value);
      return TRUE;
    case 3:
      s->do_tiling = g_value_get_boolean (value);
      return TRUE;
    case 4:
      s->preprocess = g_value_get_enum (value);
      return TRUE;
  }
  return FALSE;
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
  }
  return FALSE;
}

static void
gst_lfm2_vlenc_class_init (GstLfm2VlEncClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_lfm2_vlenc_set_property;
  gobject_class->get_property = gst_lfm2_vlenc_get_property;
  gobject_class->finalize = gst_lfm2_vlenc_finalize;

  g_object_class_install_property (gobject_class, PROP_MMPROJ,
      g_param_spec_string ("mmproj", "mmproj",
          "Path of the LFM2-VL mmproj GGUF (image encoder + projector; loaded on "
          "READY→PAUSED, shared with other elements naming the same file)", NULL, rw));
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Text model",
          "Path of the LFM2-VL text GGUF the embeddings are for: adds the token layout "
          "(tensor 1) and model-id to the output and checks the embedding width "
          "(NULL = rows only)", NULL, rw));
  gst_lfm2_vision_install_properties (gobject_class, PROP_N_THREADS);

  {
    GstCaps *video = gst_lfm2_vision_video_caps ();
    gst_element_class_add_pad_template (element_class,
        gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, video));
    gst_caps_unref (video);
  }
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "LFM2-VL image encoder", "Filter/Converter/Video",
      "Turns video frames into LFM2-VL image embeddings and their token layout "
      "(NNStreamer other/tensors)", "lfm2-gst developers");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_stop);
  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_transform_caps);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_set_caps);
  trans_class->decide_allocation = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_decide_allocation);
  trans_class->transform_meta = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_transform_meta);
  trans_class->prepare_output_buffer =
      GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_prepare_output_buffer);
  trans_class->transform = GST_DEBUG_FUNCPTR (gst_lfm2_vlenc_transform);
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_PREPROCESS, 0);
}

static void
gst_lfm2_vlenc_init (GstLfm2VlEnc * self)
{
  gst_lfm2_vision_settings_init (&self->vsettings);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), FALSE);
}

static void
gst_lfm2_vlenc_finalize (GObject * object)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (object);

  /* stop() released these; an element disposed in PAUSED did not. */
  gst_lfm2_vision_enc_stop (&self->enc);
  gst_lfm2_shared_release (self->text_shared);
  g_free (self->model_id);
  g_free (self->mmproj);
  g_free (self->model);
  G_OBJECT_CLASS (gst_lfm2_vlenc_parent_class)->finalize (object);
}

static void
gst_lfm2_vlenc_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MMPROJ:
      g_free (self->mmproj);
      self->mmproj = g_value_dup_string (value);
      break;
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      break;
    default:
      if (!gst_lfm2_vision_settings_set_property (&self->vsettings, prop_id, PROP_N_THREADS,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lfm2_vlenc_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MMPROJ:
      g_value_set_string (value, self->mmproj);
      break;
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    default:
      if (!gst_lfm2_vision_settings_get_property (&self->vsettings, prop_id, PROP_N_THREADS,
              value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
post_gerror (GstElement * element, const GError * err, const gchar * debug)
{
  gst_element_message_full (element, GST_MESSAGE_ERROR, err->domain, err->code,
      g_strdup (err->message), g_strdup (debug), __FILE__, GST_FUNCTION, __LINE__);
}

/* READY→PAUSED: the text model (optional) and the mmproj from the registry. */
static gboolean
gst_lfm2_vlenc_start (GstBaseTransform * trans)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  GstLfm2VisionSettings vs;
  gchar *mmproj, *model;
  const lfm2_model *text = NULL;
  GstLfm2VisionEnc enc;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  mmproj = g_strdup (self->mmproj);
  model = g_strdup (self->model);
  vs = self->vsettings;
  GST_OBJECT_UNLOCK (self);

  if (model && model[0]) {
    self->text_shared = gst_lfm2_model_acquire (model, &err);
    if (self->text_shared == NULL) {
      gchar *dbg = g_strdup_printf ("model property: %s", model);
      post_gerror (GST_ELEMENT (self), err, dbg);
      g_free (dbg);
      goto fail;
    }
    text = gst_lfm2_shared_model (self->text_shared);
  }
  if (!gst_lfm2_vision_enc_start (&enc, mmproj, text, &vs, &err)) {
    gchar *dbg = g_strdup_printf ("mmproj property: %s", mmproj ? mmproj : "(null)");
    post_gerror (GST_ELEMENT (self), err, dbg);
    g_free (dbg);
    goto fail;
  }
  GST_INFO_OBJECT (self, "mmproj %s (%s), %d-wide rows%s%s",
      gst_lfm2_shared_path (enc.mmproj), lfm2_vision_desc (gst_lfm2_shared_mmproj
          (enc.mmproj)->vision), enc.n_embd, text ? ", text model " : "",
      text ? lfm2_model_desc (text) : "");

  /* transform_caps reads these from other threads */
  GST_OBJECT_LOCK (self);
  self->enc = enc;
  g_free (self->model_id);
  self->model_id = text ? g_strdup (lfm2_model_id (text)) : NULL;
  GST_OBJECT_UNLOCK (self);
  g_free (mmproj);
  g_free (model);
  return TRUE;

fail:
  g_clear_error (&err);
  gst_lfm2_shared_release (self->text_shared);
  self->text_shared = NULL;
  g_free (mmproj);
  g_free (model);
  return FALSE;
}

static gboolean
gst_lfm2_vlenc_stop (GstBaseTransform * trans)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  GstLfm2VisionEnc enc;

  GST_OBJECT_LOCK (self);
  enc = self->enc;
  memset (&self->enc, 0, sizeof (self->enc));
  g_clear_pointer (&self->model_id, g_free);
  GST_OBJECT_UNLOCK (self);
  gst_lfm2_vision_enc_stop (&enc);
  gst_lfm2_shared_release (self->text_shared);
  self->text_shared = NULL;
  return TRUE;
}

/* The exact output shape for a fixed picture size, under the object lock. */
static gboolean
shape_for_size_locked (GstLfm2VlEnc * self, gint w, gint h, gint * n_rows, gint * n_layout)
{
  GstLfm2VisionEnc *enc = &self->enc;
  const struct lfm2_vision_hparams *hp;
  struct lfm2_vision_plan plan;

  if (enc->mmproj == NULL)
    return FALSE;
  hp = lfm2_vision_get_hparams (gst_lfm2_shared_mmproj (enc->mmproj)->vision);
  if (lfm2_vision_make_plan (&enc->params, hp->patch_size, hp->merge, w, h, &plan) != 0)
    return FALSE;
  *n_rows = plan.n_tokens;
  *n_layout = 0;
  if (enc->text) {
    gint32 n = lfm2_vision_layout (enc->text, &plan, NULL, 0);
    if (n == G_MININT32)
      return FALSE;
    *n_layout = n < 0 ? -n : n;
  }
  return TRUE;
}

static GstCaps *
gst_lfm2_vlenc_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  GstCaps *result;

  if (direction == GST_PAD_SRC) {
    /* Embeddings can come from any picture: offer every video format and size. */
    result = gst_lfm2_vision_video_caps ();
  } else {
    result = gst_caps_new_empty ();
    for (guint i = 0; i < gst_caps_get_size (caps); i++) {
      const GstStructure *vs = gst_caps_get_structure (caps, i);
      const GValue *fps = gst_structure_get_value (vs, "framerate");
      gint w, h, n_rows = 0, n_layout = 0, n_embd;
      gboolean exact = FALSE;
      gchar *model_id;
      GstCaps *st, *fl;

      GST_OBJECT_LOCK (self);
      n_embd = self->enc.mmproj ? self->enc.n_embd : 0;
      model_id = g_strdup (self->model_id);
      if (gst_structure_get_int (vs, "width", &w) && gst_structure_get_int (vs, "height", &h))
        exact = shape_for_size_locked (self, w, h, &n_rows, &n_layout);
      GST_OBJECT_UNLOCK (self);

      if (exact) {
        st = gst_lfm2_embd_caps_new (FALSE, n_embd, n_rows, n_layout, model_id, 0, 1);
        fl = gst_lfm2_embd_caps_new (TRUE, n_embd, 0, 0, model_id, 0, 1);
      } else {
        /* Size unknown (or no mmproj yet): any shape. */
        st = gst_caps_from_string (GST_LFM2_TENSORS_CAPS_STATIC);
        fl = gst_caps_from_string (GST_LFM2_TENSORS_CAPS_FLEXIBLE);
        if (n_embd > 0) {
          gst_caps_set_simple (st, "embedding-length", G_TYPE_INT, n_embd, NULL);
          gst_caps_set_simple (fl, "embedding-length", G_TYPE_INT, n_embd, NULL);
        }
        if (model_id) {
          gst_caps_set_simple (st, "model-id", G_TYPE_STRING, model_id, NULL);
          gst_caps_set_simple (fl, "model-id", G_TYPE_STRING, model_id, NULL);
        }
      }
      if (fps) {
        gst_caps_set_value (st, "framerate", fps);
        gst_caps_set_value (fl, "framerate", fps);
      }
      g_free (model_id);
      /* static first: the shape is fixed by the picture size */
      result = gst_caps_merge (result, st);
      result = gst_caps_merge (result, fl);
    }
  }
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, result, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (result);
    result = tmp;
  }
  GST_DEBUG_OBJECT (self, "%s %" GST_PTR_FORMAT " → %" GST_PTR_FORMAT,
      direction == GST_PAD_SINK ? "sink" : "src", caps, result);
  return result;
}

static gboolean
gst_lfm2_vlenc_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  GstLfm2TensorsConfig cfg;
  GstVideoInfo info;
  GError *err = NULL;

  if (!gst_video_info_from_caps (&info, incaps)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable video caps"),
        ("%" GST_PTR_FORMAT, incaps));
    return FALSE;
  }
  if (!gst_lfm2_tensors_config_from_caps (outcaps, &cfg, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable tensor caps: %s", err->message),
        ("%" GST_PTR_FORMAT, outcaps));
    g_clear_error (&err);
    return FALSE;
  }
  if (!gst_lfm2_vision_enc_set_info (&self->enc, &info, &err)) {
    post_gerror (GST_ELEMENT (self), err, NULL);
    g_clear_error (&err);
    return FALSE;
  }
  self->flexible = cfg.format == GST_LFM2_TENSOR_FORMAT_FLEXIBLE;
  if (!self->flexible) {
    /* Static caps must describe exactly what we write. */
    guint32 d0[2] = { (guint32) self->enc.n_embd, (guint32) self->enc.plan.n_tokens };
    guint32 d1[1] = { (guint32) self->enc.n_layout };
    GstLfm2TensorInfo want0, want1;

    gst_lfm2_tensor_info_set (&want0, GST_LFM2_TENSOR_FLOAT32, 2, d0);
    gst_lfm2_tensor_info_set (&want1, GST_LFM2_TENSOR_INT32, 1, d1);
    if (cfg.num_tensors != (self->enc.n_layout > 0 ? 2u : 1u)
        || !gst_lfm2_tensor_info_is_equal (&cfg.info[0], &want0)
        || (self->enc.n_layout > 0 && !gst_lfm2_tensor_info_is_equal (&cfg.info[1], &want1))) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
          ("Static tensor caps do not match the %d×%d picture (%d rows of %d, layout of %d)",
              GST_VIDEO_INFO_WIDTH (&info), GST_VIDEO_INFO_HEIGHT (&info),
              self->enc.plan.n_tokens, self->enc.n_embd, self->enc.n_layout),
          ("%" GST_PTR_FORMAT, outcaps));
      return FALSE;
    }
  }
  GST_INFO_OBJECT (self, "%s %d×%d → %s, %d rows of %d, layout of %d",
      GST_VIDEO_INFO_NAME (&info), GST_VIDEO_INFO_WIDTH (&info),
      GST_VIDEO_INFO_HEIGHT (&info), self->flexible ? "flexible" : "static",
      self->enc.plan.n_tokens, self->enc.n_embd, self->enc.n_layout);
  return TRUE;
}

/* We allocate our own tensor memories (one per tensor, 64-byte aligned); no pool. */
static gboolean
gst_lfm2_vlenc_decide_allocation (GstBaseTransform * trans, GstQuery * query)
{
  return TRUE;
}

/* Video metas (crop, overlay, regions) say nothing about embeddings. */
static gboolean
gst_lfm2_vlenc_transform_meta (GstBaseTransform * trans, GstBuffer * outbuf, GstMeta * meta,
    GstBuffer * inbuf)
{
  return FALSE;
}

static GstFlowReturn
gst_lfm2_vlenc_prepare_output_buffer (GstBaseTransform * trans, GstBuffer * input,
    GstBuffer ** outbuf)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  gfloat *rows;
  gint32 *layout;

  if (!self->enc.configured)
    return GST_FLOW_NOT_NEGOTIATED;
  *outbuf = gst_lfm2_embd_buffer_new (self->flexible, self->enc.n_embd,
      self->enc.plan.n_tokens, self->enc.n_layout, &rows, &layout);
  if (*outbuf == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Cannot allocate %d embedding rows", self->enc.plan.n_tokens), (NULL));
    return GST_FLOW_ERROR;
  }
  gst_buffer_copy_into (*outbuf, input, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  return GST_FLOW_OK;
}

/* Payload of tensor i (after the flexible header), mapped for writing. */
static gpointer
map_tensor (GstBuffer * buf, guint i, gboolean flexible, GstMapInfo * map)
{
  GstMemory *mem = gst_buffer_peek_memory (buf, i);

  if (mem == NULL || !gst_memory_map (mem, map, GST_MAP_WRITE))
    return NULL;
  return map->data + (flexible ? GST_LFM2_TENSOR_HEADER_SIZE : 0);
}

static GstFlowReturn
gst_lfm2_vlenc_transform (GstBaseTransform * trans, GstBuffer * inbuf, GstBuffer * outbuf)
{
  GstLfm2VlEnc *self = GST_LFM2_VLENC (trans);
  GstLfm2VisionEnc *enc = &self->enc;
  GstMapInfo m0, m1;
  gfloat *rows;
  GError *err = NULL;
  gboolean ok;

  rows = map_tensor (outbuf, 0, self->flexible, &m0);
  if (rows == NULL) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map the output buffer"), (NULL));
    return GST_FLOW_ERROR;
  }
  ok = gst_lfm2_vision_enc_encode (enc, inbuf, rows, gst_lfm2_vision_enc_n_floats (enc), &err);
  gst_memory_unmap (gst_buffer_peek_memory (outbuf, 0), &m0);
  if (!ok) {
    post_gerror (GST_ELEMENT (self), err, NULL);
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
  if (enc->n_layout > 0) {
    gint32 *layout = map_tensor (outbuf, 1, self->flexible, &m1);
    if (layout == NULL) {
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map the output buffer"), (NULL));
      return GST_FLOW_ERROR;
    }
    memcpy (layout, enc->layout, sizeof (gint32) * enc->n_layout);
    gst_memory_unmap (gst_buffer_peek_memory (outbuf, 1), &m1);
  }
  GST_LOG_OBJECT (self, "frame %" GST_TIME_FORMAT ": %d rows in %.1f ms",
      GST_TIME_ARGS (GST_BUFFER_PTS (inbuf)), enc->plan.n_tokens, enc->last_encode_ms);
  return GST_FLOW_OK;
}
