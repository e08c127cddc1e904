/* gstlfm2vlenc.c — lfm2vlenc: LFM2-VL image embeddings from video frames. */

/**
 * SECTION:element-lfm2vlenc
 * @title: lfm2vlenc
 * @short_description: LFM2-VL image embeddings as NNStreamer tensors
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
 * ## Example launch line
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

enum {
  PROP_0,
  PROP_MMPROJ,
  PROP_MODEL,
  PROP_N_THREADS,               /* … the GST_LFM2_VISION_N_PROPS vision properties, in
                                   install order (min-image-tokens … preprocessor-config) */
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

  /**
   * GstLfm2VlEnc:mmproj:
   *
   * Path of the LFM2-VL mmproj GGUF (image encoder and projector). It is loaded on
   * READY→PAUSED and shared with the other elements naming the same file.
   */
  g_object_class_install_property (gobject_class, PROP_MMPROJ,
      g_param_spec_string ("mmproj", "mmproj",
          "Path of the LFM2-VL mmproj GGUF (image encoder + projector; loaded on "
          "READY→PAUSED, shared with other elements naming the same file)", NULL, rw));
  /**
   * GstLfm2VlEnc:model:
   *
   * Path of the LFM2-VL backbone the embeddings are for (optional). With it the output
   * carries the token layout (tensor 1) and the model-id, and READY→PAUSED checks that the
   * projector's width and the backbone's image marker tokens match.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Text model",
          "Path of the LFM2-VL text GGUF the embeddings are for: adds the token layout "
          "(tensor 1) and model-id to the output and checks the embedding width "
          "(NULL = rows only)", NULL, rw));
  gst_lfm2_vision_install_properties (gobject_class, PROP_N_THREADS, TRUE);

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
  gst_type_mark_as_plugin_api (GST_TYPE_LFM2_RESAMPLE, 0);
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
  gst_lfm2_vision_settings_clear (&self->vsettings);
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
  gst_lfm2_vision_settings_copy (&vs, &self->vsettings);
  GST_OBJECT_UNLOCK (self);

  if (!gst_lfm2_model_acquire_optional (GST_ELEMENT (self), model, &self->text_shared))
    goto fail;
  if (self->text_shared)
    text = gst_lfm2_shared_model (self->text_shared);
  if (!gst_lfm2_vision_enc_start (&enc, mmproj, text, &vs, &err)) {
    gchar *dbg = g_strdup_printf ("mmproj property: %s", mmproj ? mmproj : "(null)");
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, dbg);
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
  gst_lfm2_vision_settings_clear (&vs);
  g_free (mmproj);
  g_free (model);
  return TRUE;

fail:
  g_clear_error (&err);
  gst_lfm2_shared_release (self->text_shared);
  self->text_shared = NULL;
  gst_lfm2_vision_settings_clear (&vs);
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
    /* ours first: our format order (gstlfm2vision.h) is the preference upstream fixates */
    GstCaps *tmp = gst_caps_intersect_full (result, filter, GST_CAPS_INTERSECT_FIRST);
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
  /* the picture first: a size the settings refuse is the error to report, not the
   * shapeless tensor caps transform_caps could only offer for it */
  if (!gst_lfm2_vision_enc_set_info (&self->enc, &info, &err)) {
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
    g_clear_error (&err);
    return FALSE;
  }
  if (!gst_lfm2_tensors_config_from_caps (outcaps, &cfg, &err)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Unusable tensor caps: %s", err->message),
        ("%" GST_PTR_FORMAT, outcaps));
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
    GST_LFM2_POST_GERROR (self, GST_MESSAGE_ERROR, err, NULL);
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
