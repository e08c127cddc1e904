/* tests/check/elements/lfm2vlenc.c — the lfm2vlenc element from the plugin module: output
 * caps (static with the exact shape, flexible on request, no layout without a text model),
 * the bytes of the embeddings and the layout against the vision API for the same picture in
 * several formats and sizes, timestamps, llama.cpp parity in preprocess=llamacpp mode against
 * the mtmd fixtures, and errors at READY→PAUSED. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <math.h>
#include <unistd.h>
#include <string.h>

#include "gstlfm2tensors.h"
#include "lfm2-vision.h"

#define N_THREADS 2

static gchar *model_path, *mmproj_path, *data_dir;
static lfm2_model *model;
static lfm2_vision *vision_ctx;

/* Loaded on first use, in the test's own process: check forks a child per test, and the
 * encoder's thread pool must not be created before the fork (its threads would not exist in
 * the child). OFFICIAL preprocessing, as the element's default. */
static lfm2_vision *
get_vision (void)
{
  if (vision_ctx == NULL) {
    struct lfm2_vision_params vp = lfm2_vision_default_params ();
    vp.n_threads = N_THREADS;
    vision_ctx = lfm2_vision_load (mmproj_path, vp);
    if (vision_ctx == NULL)
      g_error ("%s: %s", mmproj_path, lfm2_last_error ());
  }
  return vision_ctx;
}

/* A w×h picture of seeded noise in RGB (stride 3w); converted to `format` in *buf. */
static guint8 *
make_picture (GstVideoFormat format, gint w, gint h, guint32 seed, GstBuffer ** buf)
{
  GstVideoInfo ri, fi;
  GstBuffer *rb;
  GstVideoFrame rf, ff;
  guint32 x = seed * 2654435761u + 1;
  guint8 *pix = g_malloc ((gsize) w * h * 3);

  for (gsize i = 0; i < (gsize) w * h * 3; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pix[i] = (guint8) (x >> 24);
  }
  gst_video_info_set_format (&ri, GST_VIDEO_FORMAT_RGB, w, h);
  rb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&ri), NULL);
  fail_unless (gst_video_frame_map (&rf, &ri, rb, GST_MAP_WRITE));
  for (gint y = 0; y < h; y++)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&rf, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&rf, 0), pix + (gsize) y * w * 3,
        (gsize) w * 3);
  gst_video_frame_unmap (&rf);
  if (format == GST_VIDEO_FORMAT_RGB) {
    *buf = rb;
    return pix;
  }
  {
    GstVideoConverter *conv;
    gst_video_info_set_format (&fi, format, w, h);
    conv = gst_video_converter_new (&ri, &fi, NULL);
    *buf = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&fi), NULL);
    /* padding the formats leave unused is read by some unpackers: make it defined */
    gst_buffer_memset (*buf, 0, 0, GST_VIDEO_INFO_SIZE (&fi));
    fail_unless (gst_video_frame_map (&rf, &ri, rb, GST_MAP_READ));
    fail_unless (gst_video_frame_map (&ff, &fi, *buf, GST_MAP_WRITE));
    gst_video_converter_frame (conv, &rf, &ff);
    gst_video_frame_unmap (&ff);
    gst_video_frame_unmap (&rf);
    gst_video_converter_free (conv);
    gst_buffer_unref (rb);
  }
  /* the element sees the converted frame: the reference takes its RGB the same way */
  {
    GstVideoConverter *conv;
    GstBuffer *back;

    gst_video_info_set_format (&fi, format, w, h);
    conv = gst_video_converter_new (&fi, &ri, NULL);
    back = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&ri), NULL);
    fail_unless (gst_video_frame_map (&ff, &fi, *buf, GST_MAP_READ));
    fail_unless (gst_video_frame_map (&rf, &ri, back, GST_MAP_WRITE));
    gst_video_converter_frame (conv, &ff, &rf);
    for (gint y = 0; y < h; y++)
      memcpy (pix + (gsize) y * w * 3, (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&rf, 0)
          + y * GST_VIDEO_FRAME_PLANE_STRIDE (&rf, 0), (gsize) w * 3);
    gst_video_frame_unmap (&rf);
    gst_video_frame_unmap (&ff);
    gst_video_converter_free (conv);
    gst_buffer_unref (back);
  }
  return pix;
}

/* Rows and layout the vision API gives for an RGB picture. */
static gfloat *
ref_rows (lfm2_vision * v, const guint8 * rgb, gint w, gint h, gsize stride,
    struct lfm2_vision_plan *plan, gint32 ** layout, gint * n_layout)
{
  struct lfm2_vision_image img = { w, h, stride, rgb };
  const gint E = lfm2_vision_n_embd_out (v);
  gfloat *rows;

  fail_unless (lfm2_vision_plan_image (v, w, h, plan) == 0, "%s", lfm2_last_error ());
  rows = g_new (gfloat, (gsize) plan->n_tokens * E);
  fail_unless_equals_int (lfm2_vision_encode (v, &img, plan, rows,
          (gsize) plan->n_tokens * E), plan->n_tokens);
  if (layout) {
    gint32 n = lfm2_vision_layout (model, plan, NULL, 0);
    n = n < 0 ? -n : n;
    *layout = g_new (gint32, n);
    fail_unless_equals_int (lfm2_vision_layout (model, plan, *layout, n), n);
    *n_layout = n;
  }
  return rows;
}

static GstHarness *
enc_harness (const gchar * props, const gchar * in_caps, const gchar * out_caps)
{
  gchar *desc = g_strdup_printf ("lfm2vlenc mmproj=\"%s\" n-threads=%d %s", mmproj_path,
      N_THREADS, props ? props : "");
  GstHarness *h = gst_harness_new_parse (desc);

  g_free (desc);
  if (out_caps)
    gst_harness_set_sink_caps_str (h, out_caps);
  gst_harness_set_src_caps_str (h, in_caps);
  return h;
}

static gchar *
model_prop (void)
{
  return g_strdup_printf ("model=\"%s\"", model_path);
}

static GstCaps *
out_caps (GstHarness * h)
{
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  GstCaps *c = gst_pad_get_current_caps (src);

  gst_object_unref (src);
  return c;
}

GST_START_TEST (test_metadata)
{
  GstElementFactory *f = gst_element_factory_find ("lfm2vlenc");
  GstElement *e;
  const gchar *props[] = { "mmproj", "model", "n-threads", "min-image-tokens",
    "max-image-tokens", "do-tiling", "preprocess", "min-tiles", "max-tiles",
    "max-pixels-tolerance", "use-thumbnail", "resample", "preprocessor-config"
  };

  fail_unless (f != NULL);
  fail_unless_equals_string (gst_element_factory_get_metadata (f,
          GST_ELEMENT_METADATA_KLASS), "Filter/Converter/Video");
  e = gst_element_factory_create (f, NULL);
  fail_unless (GST_IS_BASE_TRANSFORM (e));
  for (guint i = 0; i < G_N_ELEMENTS (props); i++) {
    GParamSpec *p = g_object_class_find_property (G_OBJECT_GET_CLASS (e), props[i]);
    fail_unless (p != NULL, "no property %s", props[i]);
    fail_unless (p->flags & GST_PARAM_MUTABLE_READY);
  }
  gst_object_unref (e);
  gst_object_unref (f);
}

GST_END_TEST;

/* Static caps carry the exact shape of the picture size; tensors match the vision API. */
/* A source that can paint anything gets our order: cheap 8-bit 4:2:0 first, not its own
 * first formats (videotestsrc lists 8-byte ones first). */
GST_START_TEST (test_format_preference)
{
  GstElement *e = gst_element_factory_make ("lfm2vlenc", NULL);
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  GstCaps *filter = gst_caps_from_string ("video/x-raw, format={ ABGR64_LE, ARGB64, RGBA, "
      "RGB, YUY2, NV12, I420 }, width=1920, height=1080, framerate=30/1");
  GstCaps *caps = gst_pad_query_caps (sink, filter);

  fail_if (gst_caps_is_empty (caps));
  caps = gst_caps_fixate (caps);
  fail_unless_equals_string (gst_structure_get_string (gst_caps_get_structure (caps, 0),
          "format"), "I420");
  gst_caps_unref (caps);
  gst_caps_unref (filter);
  gst_object_unref (sink);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_static_output)
{
  struct {
    GstVideoFormat format;
    gint w, h;
  } cases[] = {
    {GST_VIDEO_FORMAT_RGB, 1100, 500},  /* 2×1 tiles + thumbnail */
    {GST_VIDEO_FORMAT_RGB, 1, 1},
    {GST_VIDEO_FORMAT_I420, 37, 21},
    {GST_VIDEO_FORMAT_NV12, 64, 48},
    {GST_VIDEO_FORMAT_BGRA, 33, 17},
    {GST_VIDEO_FORMAT_YUY2, 20, 300},
    {GST_VIDEO_FORMAT_GRAY8, 5, 3},
    {GST_VIDEO_FORMAT_v210, 50, 10},
    {GST_VIDEO_FORMAT_I420_10LE, 30, 20},
  };
  gchar *mp = model_prop ();
  const gint E = lfm2_vision_n_embd_out (get_vision ());

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    const gint w = cases[c].w, h = cases[c].h;
    gchar *in = g_strdup_printf ("video/x-raw, format=%s, width=%d, height=%d, "
        "framerate=25/1", gst_video_format_to_string (cases[c].format), w, h);
    GstHarness *hh = enc_harness (mp, in, NULL);
    GstBuffer *frame, *out;
    struct lfm2_vision_plan plan;
    gint32 *layout;
    gint n_layout;
    guint8 *rgb = make_picture (cases[c].format, w, h, 10 + c, &frame);
    gfloat *want = ref_rows (get_vision (), rgb, w, h, (gsize) w * 3, &plan, &layout, &n_layout);
    GstLfm2TensorsConfig cfg;
    GstCaps *caps;
    GstMapInfo m0, m1;
    gchar *dims;

    GST_BUFFER_PTS (frame) = 3 * GST_SECOND;
    GST_BUFFER_DTS (frame) = 2 * GST_SECOND;
    GST_BUFFER_DURATION (frame) = GST_SECOND / 25;
    out = gst_harness_push_and_pull (hh, frame);
    fail_unless (out != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * GST_SECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DTS (out), 2 * GST_SECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), GST_SECOND / 25);

    caps = out_caps (hh);
    fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
    fail_unless_equals_int (cfg.format, GST_LFM2_TENSOR_FORMAT_STATIC);
    fail_unless_equals_int (cfg.num_tensors, 2);
    fail_unless_equals_int (cfg.embedding_length, E);
    fail_unless_equals_string (cfg.model_id, lfm2_model_id (model));
    fail_unless (cfg.rate_n == 25 && cfg.rate_d == 1);
    dims = g_strdup_printf ("%d:%d", E, plan.n_tokens);
    {
      gchar *d0 = gst_lfm2_tensor_dims_to_string (&cfg.info[0]);
      fail_unless_equals_string (d0, dims);
      g_free (d0);
    }
    fail_unless_equals_int (cfg.info[0].type, GST_LFM2_TENSOR_FLOAT32);
    fail_unless_equals_int (cfg.info[1].type, GST_LFM2_TENSOR_INT32);
    fail_unless_equals_int (cfg.info[1].dims[0], n_layout);

    fail_unless_equals_int (gst_buffer_n_memory (out), 2);
    fail_unless (gst_memory_map (gst_buffer_peek_memory (out, 0), &m0, GST_MAP_READ));
    fail_unless (gst_memory_map (gst_buffer_peek_memory (out, 1), &m1, GST_MAP_READ));
    fail_unless_equals_uint64 (m0.size, (gsize) plan.n_tokens * E * sizeof (gfloat));
    fail_unless_equals_uint64 (m1.size, (gsize) n_layout * sizeof (gint32));
    /* same code, same threads: the same floats */
    fail_unless (memcmp (m0.data, want, m0.size) == 0, "%s %d×%d: rows differ",
        gst_video_format_to_string (cases[c].format), w, h);
    fail_unless (memcmp (m1.data, layout, m1.size) == 0, "layout differs");
    gst_memory_unmap (gst_buffer_peek_memory (out, 0), &m0);
    gst_memory_unmap (gst_buffer_peek_memory (out, 1), &m1);

    gst_buffer_unref (out);
    gst_caps_unref (caps);
    gst_harness_teardown (hh);
    g_free (dims);
    g_free (want);
    g_free (layout);
    g_free (rgb);
    g_free (in);
  }
  g_free (mp);
}

GST_END_TEST;

/* Flexible when downstream wants it; no layout tensor without a text model. */
GST_START_TEST (test_flexible_and_no_model)
{
  const gchar *in = "video/x-raw, format=RGB, width=64, height=48, framerate=30/1";
  gchar *mp = model_prop ();
  const gint E = lfm2_vision_n_embd_out (get_vision ());
  struct lfm2_vision_plan plan;
  GstBuffer *frame, *out;
  gint32 *layout;
  gint n_layout;
  guint8 *rgb = make_picture (GST_VIDEO_FORMAT_RGB, 64, 48, 5, &frame);
  gfloat *want = ref_rows (get_vision (), rgb, 64, 48, 64 * 3, &plan, &layout, &n_layout);

  {
    GstHarness *h = enc_harness (mp, in, "other/tensors, format=flexible");
    GstLfm2TensorsConfig cfg;
    GstCaps *caps;
    GstLfm2EmbdView view;

    out = gst_harness_push_and_pull (h, gst_buffer_ref (frame));
    caps = out_caps (h);
    fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
    fail_unless_equals_int (cfg.format, GST_LFM2_TENSOR_FORMAT_FLEXIBLE);
    fail_unless_equals_int (cfg.embedding_length, E);
    /* 128-byte NNStreamer headers in front of each tensor */
    fail_unless (gst_lfm2_embd_view_map (&view, out, &cfg, lfm2_model_n_vocab (model), NULL));
    fail_unless_equals_int (view.n_rows, plan.n_tokens);
    fail_unless_equals_int (view.n_embd, E);
    fail_unless_equals_int (view.n_layout, n_layout);
    fail_unless (memcmp (view.embd, want, sizeof (gfloat) * plan.n_tokens * E) == 0);
    fail_unless (memcmp (view.layout, layout, sizeof (gint32) * n_layout) == 0);
    {
      GstMapInfo m;
      GstLfm2TensorInfo ti;
      gsize payload;
      fail_unless (gst_memory_map (gst_buffer_peek_memory (out, 0), &m, GST_MAP_READ));
      fail_unless (gst_lfm2_tensor_header_parse (m.data, m.size, &ti, &payload, NULL));
      fail_unless_equals_int (ti.dims[0], E);
      fail_unless_equals_int (ti.dims[1], plan.n_tokens);
      fail_unless_equals_uint64 (payload + GST_LFM2_TENSOR_HEADER_SIZE, m.size);
      gst_memory_unmap (gst_buffer_peek_memory (out, 0), &m);
    }
    gst_lfm2_embd_view_unmap (&view);
    gst_buffer_unref (out);
    gst_caps_unref (caps);
    gst_harness_teardown (h);
  }
  {
    GstHarness *h = enc_harness (NULL, in, NULL);
    GstLfm2TensorsConfig cfg;
    GstCaps *caps;
    GstMapInfo m;

    out = gst_harness_push_and_pull (h, gst_buffer_ref (frame));
    caps = out_caps (h);
    fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
    fail_unless_equals_int (cfg.format, GST_LFM2_TENSOR_FORMAT_STATIC);
    fail_unless_equals_int (cfg.num_tensors, 1);
    fail_unless_equals_string (cfg.model_id, "");
    fail_unless_equals_int (gst_buffer_n_memory (out), 1);
    fail_unless (gst_memory_map (gst_buffer_peek_memory (out, 0), &m, GST_MAP_READ));
    fail_unless (m.size == sizeof (gfloat) * plan.n_tokens * E
        && memcmp (m.data, want, m.size) == 0);
    gst_memory_unmap (gst_buffer_peek_memory (out, 0), &m);
    gst_buffer_unref (out);
    gst_caps_unref (caps);
    gst_harness_teardown (h);
  }
  /* downstream asking for another width gets nothing */
  {
    GstHarness *h = enc_harness (mp, in,
        "other/tensors, format=static, embedding-length=256");
    GstCaps *c = out_caps (h);

    fail_unless (c == NULL, "negotiated a width the mmproj does not produce");
    gst_harness_teardown (h);
  }

  gst_buffer_unref (frame);
  g_free (want);
  g_free (layout);
  g_free (rgb);
  g_free (mp);
}

GST_END_TEST;

/* preprocess=llamacpp reproduces llama.cpp's mtmd embeddings (fixture tolerance). */
GST_START_TEST (test_llamacpp_parity)
{
  const gchar *names[] = { "test-64x48", "test-37x300", "test-1100x500" };
  gchar *props = g_strdup_printf ("model=\"%s\" preprocess=llamacpp", model_path);

  for (guint k = 0; k < G_N_ELEMENTS (names); k++) {
    gchar *ppm = g_strdup_printf ("%s/images/%s.ppm", data_dir, names[k]);
    gchar *ref = g_strdup_printf ("%s/%s/embd.f32", data_dir, names[k]);
    struct lfm2_vision_image img;
    gchar *in, *fixture;
    gsize flen;
    GstHarness *h;
    GstBuffer *frame, *out;
    GstVideoInfo vi;
    GstVideoFrame vf;
    GstMapInfo m;
    gdouble max_d = 0, sum_d = 0;

    fail_unless (lfm2_vision_image_load (ppm, &img) == 0, "%s", lfm2_last_error ());
    fail_unless (g_file_get_contents (ref, &fixture, &flen, NULL));
    gst_video_info_set_format (&vi, GST_VIDEO_FORMAT_RGB, img.width, img.height);
    frame = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&vi), NULL);
    fail_unless (gst_video_frame_map (&vf, &vi, frame, GST_MAP_WRITE));
    for (gint y = 0; y < img.height; y++)
      memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0)
          + y * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0), img.data + y * img.stride,
          (gsize) img.width * 3);
    gst_video_frame_unmap (&vf);
    in = g_strdup_printf ("video/x-raw, format=RGB, width=%d, height=%d, framerate=1/1",
        img.width, img.height);
    h = enc_harness (props, in, NULL);
    out = gst_harness_push_and_pull (h, frame);
    fail_unless (gst_memory_map (gst_buffer_peek_memory (out, 0), &m, GST_MAP_READ));
    fail_unless_equals_uint64 (m.size, flen);
    for (gsize i = 0; i < flen / 4; i++) {
      gfloat a, b;
      memcpy (&a, m.data + 4 * i, 4);
      memcpy (&b, fixture + 4 * i, 4);
      max_d = MAX (max_d, fabs (a - b));
      sum_d += fabs (a - b);
    }
    /* tolerance of the fixture README (as tests/vision/test-embed.c) */
    fail_unless (max_d <= 2e-3 && sum_d / (flen / 4) <= 2e-4, "%s: max |Δ| %g, mean %g",
        names[k], max_d, sum_d / (flen / 4));
    gst_memory_unmap (gst_buffer_peek_memory (out, 0), &m);
    gst_buffer_unref (out);
    gst_harness_teardown (h);
    lfm2_vision_image_free (&img);
    g_free (fixture);
    g_free (in);
    g_free (ppm);
    g_free (ref);
  }
  g_free (props);
}

GST_END_TEST;

/* The image settings change the shape exactly as they change the vision API's plan. */
GST_START_TEST (test_settings_shape)
{
  gchar *props = g_strdup_printf ("model=\"%s\" do-tiling=false max-image-tokens=100 "
      "min-image-tokens=16", model_path);
  const gchar *in = "video/x-raw, format=RGB, width=1100, height=500, framerate=1/1";
  GstHarness *h = enc_harness (props, in, NULL);
  struct lfm2_vision_params p = lfm2_vision_default_params ();
  struct lfm2_vision_plan plan;
  GstLfm2TensorsConfig cfg;
  GstBuffer *frame;
  GstCaps *caps;
  guint8 *rgb = make_picture (GST_VIDEO_FORMAT_RGB, 1100, 500, 3, &frame);

  p.do_tiling = FALSE;
  p.max_image_tokens = 100;
  p.min_image_tokens = 16;
  fail_unless (lfm2_vision_make_plan (&p, 16, 2, 1100, 500, &plan) == 0);
  gst_buffer_unref (gst_harness_push_and_pull (h, frame));
  caps = out_caps (h);
  fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
  fail_unless_equals_int (cfg.info[0].dims[1], plan.n_tokens);
  fail_unless (plan.n_tokens <= 100 && !plan.tiled);
  gst_caps_unref (caps);
  gst_harness_teardown (h);
  g_free (rgb);
  g_free (props);
}

GST_END_TEST;

/* A processor config in a temporary file (freed by the caller, removed by g_unlink). */
static gchar *
write_config (const gchar * text)
{
  GError *err = NULL;
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("lfm2vlenc-XXXXXX.json", &path, &err);

  fail_unless (fd >= 0, "%s", err ? err->message : "");
  close (fd);
  fail_unless (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* The rows of a w×h frame through the element with `props`, against the vision API with
 * params `p`: same count, same bytes. */
static void
check_rows (const gchar * props, struct lfm2_vision_params p, gint w, gint h,
    gint expect_tokens)
{
  gchar *in = g_strdup_printf ("video/x-raw, format=RGB, width=%d, height=%d, framerate=1/1",
      w, h);
  GstHarness *hs = enc_harness (props, in, NULL);
  GstBuffer *frame, *out;
  guint8 *rgb = make_picture (GST_VIDEO_FORMAT_RGB, w, h, 17, &frame);
  struct lfm2_vision_plan plan;
  lfm2_vision *v;
  gfloat *want;
  GstMapInfo map;

  p.n_threads = N_THREADS;
  v = lfm2_vision_load (mmproj_path, p);
  fail_unless (v != NULL, "%s", lfm2_last_error ());
  want = ref_rows (v, rgb, w, h, (gsize) w * 3, &plan, NULL, NULL);
  fail_unless_equals_int (plan.n_tokens, expect_tokens);
  out = gst_harness_push_and_pull (hs, frame);
  fail_unless (out != NULL);
  fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
  fail_unless_equals_int (map.size, (gsize) plan.n_tokens * lfm2_vision_n_embd_out (v) * 4);
  fail_unless (memcmp (map.data, want, map.size) == 0, "%s: rows differ from the API", props);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (hs);
  lfm2_vision_free (v);
  g_free (want);
  g_free (rgb);
  g_free (in);
}

/* preprocessor-config: the file's settings (nested layout), properties set explicitly over
 * it, resample bicubic making other pixels than bilinear, the mmproj's filter as `auto`. */
GST_START_TEST (test_preprocessor_config)
{
  gchar *cfg = write_config ("{\"processor_class\": \"Lfm2VlProcessor\", \"image_processor\": "
      "{\"use_thumbnail\": false, \"max_pixels_tolerance\": 1.5, \"resample\": 3, "
      "\"unknown_field\": [1, {\"x\": null}]}}");
  gchar *props;
  struct lfm2_vision_params p = lfm2_vision_default_params ();

  /* 640×640 at tolerance 1.5: 2×2 tiles, no thumbnail: 1024 rows, bicubic */
  p.use_thumbnail = FALSE;
  p.max_pixels_tolerance = 1.5f;
  p.resample = LFM2_VISION_RESAMPLE_BICUBIC;
  props = g_strdup_printf ("preprocessor-config=\"%s\"", cfg);
  check_rows (props, p, 640, 640, 1024);
  g_free (props);
  /* properties set explicitly win over the file */
  p.use_thumbnail = TRUE;
  p.resample = LFM2_VISION_RESAMPLE_BILINEAR;
  props = g_strdup_printf ("preprocessor-config=\"%s\" use-thumbnail=true resample=bilinear",
      cfg);
  check_rows (props, p, 640, 640, 1280);
  g_free (props);
  /* a property set to its default value still counts as set */
  p = lfm2_vision_default_params ();
  props = g_strdup_printf ("preprocessor-config=\"%s\" max-pixels-tolerance=2.0 "
      "use-thumbnail=true resample=bilinear", cfg);
  check_rows (props, p, 640, 640, 256);
  g_free (props);
  /* min-tiles / max-tiles as properties: 1080p with max-tiles 4 is 2×1 + thumbnail */
  p = lfm2_vision_default_params ();
  p.max_tiles = 4;
  p.min_tiles = 1;
  check_rows ("min-tiles=1 max-tiles=4", p, 1920, 1080, 764);
  g_unlink (cfg);
  g_free (cfg);
}

GST_END_TEST;

/* min-tiles 1 with a frame size where transformers' text and features disagree: refused
 * when the caps arrive, naming the settings. */
GST_START_TEST (test_inconsistent_size)
{
  gchar *desc = g_strdup_printf ("lfm2vlenc mmproj=\"%s\" n-threads=%d min-tiles=1",
      mmproj_path, N_THREADS);
  GstHarness *h = gst_harness_new_parse (desc);
  GstBuffer *frame;
  guint8 *rgb = make_picture (GST_VIDEO_FORMAT_RGB, 725, 723, 5, &frame);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h,
      "video/x-raw, format=RGB, width=725, height=723, framerate=1/1");
  fail_unless (gst_harness_push (h, frame) != GST_FLOW_OK);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "725×723") && strstr (err->message, "min_tiles 1") &&
      strstr (err->message, "transformers"), "%s", err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_harness_teardown (h);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  g_free (rgb);
  g_free (desc);
}

GST_END_TEST;

static void
expect_start_error (const gchar * props, gint code, const gchar * name)
{
  gchar *desc = g_strdup_printf ("lfm2vlenc %s", props);
  GstElement *e = gst_parse_launch (desc, NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  fail_unless (e != NULL);
  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (err->domain == GST_RESOURCE_ERROR && err->code == code, "%s", err->message);
  fail_unless (strstr (err->message, name) != NULL, "\"%s\" does not name %s",
      err->message, name);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (e);
  g_free (desc);
}

GST_START_TEST (test_errors)
{
  gchar *p;

  p = g_strdup_printf ("mmproj=\"%s/nothing-here.gguf\"", data_dir);
  expect_start_error (p, GST_RESOURCE_ERROR_NOT_FOUND, "nothing-here.gguf");
  g_free (p);
  expect_start_error ("", GST_RESOURCE_ERROR_NOT_FOUND, "mmproj");
  p = g_strdup_printf ("mmproj=\"%s\" model=\"%s/../text/small-q8_0/lfm2-small-q8_0.gguf\"",
      mmproj_path, data_dir);
  expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, "lfm2-small-q8_0.gguf");
  g_free (p);
  p = g_strdup_printf ("mmproj=\"%s\"", model_path);
  expect_start_error (p, GST_RESOURCE_ERROR_OPEN_READ, "lfm2-vl-tiny-text-q4_0.gguf");
  g_free (p);
  /* a text-only LFM2 model of the projector's width: no LFM2-VL tile marker tokens to lay
   * the rows out with; the error names both files and the missing token */
  p = g_strdup_printf ("mmproj=\"%s\" model=\"%s/../text/tiny-q8_0/lfm2-tiny-q8_0.gguf\"",
      mmproj_path, data_dir);
  expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, "lfm2-tiny-q8_0.gguf");
  expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, "lfm2-vl-tiny-mmproj-f32.gguf");
  expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, "<|img_row_1_col_2|>");
  g_free (p);
  /* bad processor configs: the file and the field (or the line); a missing file */
  {
    const gchar *bad[][2] = {
      {"{\"image_processor\": {\"min_tiles\": 0}}", "min_tiles is 0"},
      {"{\"resample\": 1}", "resample"},
      {"{\"encoder_patch_size\": 14}", "encoder_patch_size"},
      {"{\"min_tiles\": 2,", "invalid JSON"},
      {NULL, "preprocessor-config"},
    };
    gchar *cfg = write_config ("{}");

    p = g_strdup_printf ("mmproj=\"%s\" preprocessor-config=\"%s\"", mmproj_path, cfg);
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
      if (bad[i][0])
        fail_unless (g_file_set_contents (cfg, bad[i][0], -1, NULL));
      else
        g_unlink (cfg);
      expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, cfg);
      expect_start_error (p, GST_RESOURCE_ERROR_SETTINGS, bad[i][1]);
    }
    g_free (p);
    g_free (cfg);
  }
}

GST_END_TEST;

static Suite *
lfm2vlenc_suite (void)
{
  Suite *s = suite_create ("lfm2vlenc");
  TCase *tc = tcase_create ("general");
  const gchar *root = g_getenv ("LFM2_TEST_DATA");

  g_assert (root != NULL);
  data_dir = g_build_filename (root, "vision", NULL);
  model_path = g_build_filename (data_dir, "lfm2-vl-tiny-text-q4_0.gguf", NULL);
  mmproj_path = g_build_filename (data_dir, "lfm2-vl-tiny-mmproj-f32.gguf", NULL);
  model = lfm2_model_load (model_path, lfm2_model_default_params ());
  if (model == NULL)
    g_error ("%s: %s", model_path, lfm2_last_error ());

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_metadata);
  tcase_add_test (tc, test_format_preference);
  tcase_add_test (tc, test_static_output);
  tcase_add_test (tc, test_flexible_and_no_model);
  tcase_add_test (tc, test_llamacpp_parity);
  tcase_add_test (tc, test_settings_shape);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_preprocessor_config);
  tcase_add_test (tc, test_inconsistent_size);
  return s;
}

GST_CHECK_MAIN (lfm2vlenc);
