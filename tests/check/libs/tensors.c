/* tests/check/libs/tensors.c — other/tensors caps and the flexible header, byte for byte.
 *
 * The expected layouts are written out here from NNStreamer's definitions
 * (tensor_typedef.h: GstTensorMetaInfo; nnstreamer_plugin_api_util_impl.c: magic 0xfeedcced,
 * version 0xDE000000 | major << 12 | minor, 128-byte v1 header), independently of the code. */
#include <gst/check/gstcheck.h>
#include <string.h>

#include "gstlfm2tensors.h"

static guint32
word (const guint8 * h, guint i)
{
  guint32 w;
  memcpy (&w, h + 4 * i, 4);
  return w;
}

GST_START_TEST (test_type_names_and_numbers)
{
  /* NNStreamer's tensor_type enum, in order; the numbers travel in flexible headers. */
  static const gchar *names[] = { "int32", "uint32", "int16", "uint16", "int8", "uint8",
    "float64", "float32", "int64", "uint64", "float16"
  };
  static const gsize sizes[] = { 4, 4, 2, 2, 1, 1, 8, 4, 8, 8, 2 };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    fail_unless_equals_string (gst_lfm2_tensor_type_to_string (i), names[i]);
    fail_unless_equals_int (gst_lfm2_tensor_type_from_string (names[i]), i);
    fail_unless_equals_int (gst_lfm2_tensor_type_size (i), sizes[i]);
  }
  fail_unless_equals_int (GST_LFM2_TENSOR_FLOAT32, 7);
  fail_unless_equals_int (GST_LFM2_TENSOR_INT32, 0);
  fail_unless_equals_int (gst_lfm2_tensor_type_from_string ("float128"),
      GST_LFM2_TENSOR_TYPE_INVALID);
  fail_unless (gst_lfm2_tensor_type_to_string (GST_LFM2_TENSOR_TYPE_INVALID) == NULL);
}

GST_END_TEST;

GST_START_TEST (test_dimension_order)
{
  GstLfm2TensorInfo info;
  GError *err = NULL;
  gchar *s;

  /* A C array float[224][224][3] (an RGB picture) is "3:224:224" — innermost first. */
  fail_unless (gst_lfm2_tensor_dims_parse ("3:224:224:1", &info, &err));
  fail_unless_equals_int (info.rank, 4);
  fail_unless_equals_int (info.dims[0], 3);
  fail_unless_equals_int (info.dims[1], 224);
  fail_unless_equals_int (info.dims[2], 224);
  fail_unless_equals_int (info.dims[3], 1);
  fail_unless_equals_int (info.dims[4], 0);
  info.type = GST_LFM2_TENSOR_UINT8;
  fail_unless_equals_uint64 (gst_lfm2_tensor_info_n_elements (&info), 3 * 224 * 224);
  fail_unless_equals_uint64 (gst_lfm2_tensor_info_size (&info), 3 * 224 * 224);
  s = gst_lfm2_tensor_dims_to_string (&info);
  fail_unless_equals_string (s, "3:224:224:1");
  g_free (s);

  /* Trailing 1s do not change the shape; order does. */
  {
    GstLfm2TensorInfo a, b;
    fail_unless (gst_lfm2_tensor_dims_parse ("3:224:224", &a, NULL));
    a.type = GST_LFM2_TENSOR_UINT8;
    fail_unless (gst_lfm2_tensor_info_is_equal (&a, &info));
    fail_unless (gst_lfm2_tensor_dims_parse ("224:224:3", &b, NULL));
    b.type = GST_LFM2_TENSOR_UINT8;
    fail_if (gst_lfm2_tensor_info_is_equal (&b, &info));
    b = a;
    b.type = GST_LFM2_TENSOR_FLOAT32;
    fail_if (gst_lfm2_tensor_info_is_equal (&b, &a));
  }

  /* Embeddings: 70 rows of 128 floats (C float[70][128]) are "128:70", 4 × 128 × 70 bytes. */
  {
    guint32 d[2] = { 128, 70 };
    gst_lfm2_tensor_info_set (&info, GST_LFM2_TENSOR_FLOAT32, 2, d);
    s = gst_lfm2_tensor_dims_to_string (&info);
    fail_unless_equals_string (s, "128:70");
    g_free (s);
    fail_unless_equals_uint64 (gst_lfm2_tensor_info_size (&info), 4 * 128 * 70);
  }

  /* Spaces are tolerated, junk is not. */
  fail_unless (gst_lfm2_tensor_dims_parse (" 5 : 6 ", &info, NULL));
  fail_unless_equals_int (info.rank, 2);
  fail_unless_equals_int (info.dims[1], 6);
  fail_if (gst_lfm2_tensor_dims_parse ("", &info, &err));
  g_clear_error (&err);
  fail_if (gst_lfm2_tensor_dims_parse ("3:0:4", &info, &err));
  fail_unless (err && strstr (err->message, "3:0:4"));
  g_clear_error (&err);
  fail_if (gst_lfm2_tensor_dims_parse ("3:x", &info, &err));
  g_clear_error (&err);
  fail_if (gst_lfm2_tensor_dims_parse ("3::4", &info, &err));
  g_clear_error (&err);
  fail_if (gst_lfm2_tensor_dims_parse ("1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1", &info, &err));
  g_clear_error (&err);
  fail_unless (gst_lfm2_tensor_dims_parse ("1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:2", &info, NULL));
  fail_unless_equals_int (info.rank, 16);
  fail_if (gst_lfm2_tensor_dims_parse ("4294967296", &info, &err));
  g_clear_error (&err);
  /* Overflowing products give size 0 rather than a wrapped number. */
  fail_unless (gst_lfm2_tensor_dims_parse ("4294967295:4294967295:4294967295", &info, NULL));
  info.type = GST_LFM2_TENSOR_FLOAT64;
  fail_unless_equals_uint64 (gst_lfm2_tensor_info_size (&info), 0);
}

GST_END_TEST;

GST_START_TEST (test_static_caps_roundtrip)
{
  GstLfm2TensorsConfig c, back;
  GstCaps *caps, *expected;
  GError *err = NULL;
  guint32 d0[2] = { 128, 70 }, d1[1] = { 73 };

  gst_lfm2_tensors_config_init (&c, GST_LFM2_TENSOR_FORMAT_STATIC);
  c.num_tensors = 2;
  gst_lfm2_tensor_info_set (&c.info[0], GST_LFM2_TENSOR_FLOAT32, 2, d0);
  gst_lfm2_tensor_info_set (&c.info[1], GST_LFM2_TENSOR_INT32, 1, d1);
  c.rate_n = 30;
  c.rate_d = 1;
  c.embedding_length = 128;
  g_strlcpy (c.model_id, "tiny", sizeof (c.model_id));
  caps = gst_lfm2_tensors_caps_from_config (&c);

  expected = gst_caps_from_string ("other/tensors, format=(string)static, num_tensors=(int)2, "
      "types=(string)\"float32,int32\", dimensions=(string)\"128:70,73\", "
      "framerate=(fraction)30/1, embedding-length=(int)128, model-id=(string)tiny");
  fail_unless (gst_caps_is_equal (caps, expected), "got %" GST_PTR_FORMAT, caps);

  /* NNStreamer's template accepts it (our fields are extra). */
  {
    GstCaps *tpl = gst_caps_from_string (GST_LFM2_TENSORS_CAPS_STATIC);
    fail_unless (gst_caps_is_subset (caps, tpl));
    gst_caps_unref (tpl);
  }

  fail_unless (gst_lfm2_tensors_config_from_caps (caps, &back, &err));
  fail_unless_equals_int (back.format, GST_LFM2_TENSOR_FORMAT_STATIC);
  fail_unless_equals_int (back.num_tensors, 2);
  fail_unless (gst_lfm2_tensor_info_is_equal (&back.info[0], &c.info[0]));
  fail_unless (gst_lfm2_tensor_info_is_equal (&back.info[1], &c.info[1]));
  fail_unless_equals_int (back.rate_n, 30);
  fail_unless_equals_int (back.rate_d, 1);
  fail_unless_equals_int (back.embedding_length, 128);
  fail_unless_equals_string (back.model_id, "tiny");
  gst_caps_unref (caps);
  gst_caps_unref (expected);
}

GST_END_TEST;

static gboolean
parse_caps_str (const gchar * str, GstLfm2TensorsConfig * c, GError ** err)
{
  GstCaps *caps = gst_caps_from_string (str);
  gboolean ok;

  fail_unless (caps != NULL, "%s", str);
  ok = gst_lfm2_tensors_config_from_caps (caps, c, err);
  gst_caps_unref (caps);
  return ok;
}

GST_START_TEST (test_caps_parse_errors)
{
  GstLfm2TensorsConfig c;
  GError *err = NULL;

  fail_unless (parse_caps_str ("other/tensors, format=flexible, framerate=0/1", &c, NULL));
  fail_unless_equals_int (c.format, GST_LFM2_TENSOR_FORMAT_FLEXIBLE);
  fail_unless_equals_int (c.num_tensors, 0);
  fail_unless_equals_int (c.embedding_length, 0);

  /* A missing format means static (NNStreamer's rule). */
  fail_unless (parse_caps_str ("other/tensors, num_tensors=1, types=uint8, "
          "dimensions=\"3:4:5\"", &c, NULL));
  fail_unless_equals_int (c.format, GST_LFM2_TENSOR_FORMAT_STATIC);
  fail_unless_equals_int (c.info[0].dims[2], 5);

  fail_if (parse_caps_str ("other/tensors, format=static, num_tensors=2, types=\"uint8\", "
          "dimensions=\"3,4\"", &c, &err));
  fail_unless (strstr (err->message, "num_tensors=2") != NULL, "%s", err->message);
  g_clear_error (&err);
  fail_if (parse_caps_str ("other/tensors, format=static, num_tensors=1, types=bfloat16, "
          "dimensions=3", &c, &err));
  fail_unless (strstr (err->message, "bfloat16") != NULL, "%s", err->message);
  g_clear_error (&err);
  fail_if (parse_caps_str ("other/tensors, format=static, num_tensors=1, types=uint8", &c,
          &err));
  fail_unless (strstr (err->message, "dimensions") != NULL, "%s", err->message);
  g_clear_error (&err);
  fail_if (parse_caps_str ("other/tensors, format=weird", &c, &err));
  g_clear_error (&err);
  fail_if (parse_caps_str ("other/tensors, format=flexible, embedding-length=0", &c, &err));
  g_clear_error (&err);
  fail_if (parse_caps_str ("video/x-raw, format=RGB", &c, &err));
  g_clear_error (&err);
  fail_if (parse_caps_str ("other/tensors, format=static, num_tensors=17, types=uint8, "
          "dimensions=1", &c, &err));
  g_clear_error (&err);
}

GST_END_TEST;

GST_START_TEST (test_flexible_header_bytes)
{
  GstLfm2TensorInfo info, back;
  guint8 h[GST_LFM2_TENSOR_HEADER_SIZE + 4 * 128 * 3];
  guint32 d[2] = { 128, 3 };
  GError *err = NULL;
  gsize payload = 0;

  memset (h, 0xAB, sizeof (h));
  gst_lfm2_tensor_info_set (&info, GST_LFM2_TENSOR_FLOAT32, 2, d);
  gst_lfm2_tensor_header_write (&info, GST_LFM2_TENSOR_FORMAT_FLEXIBLE,
      GST_LFM2_TENSOR_MEDIA_TENSOR, h);

  fail_unless_equals_int (GST_LFM2_TENSOR_HEADER_SIZE, 128);
  fail_unless_equals_int (word (h, 0), 0xfeedcced);
  fail_unless_equals_int (word (h, 1), 0xDE001000);   /* v1.0 */
  fail_unless_equals_int (word (h, 2), 7);    /* float32 */
  fail_unless_equals_int (word (h, 3), 128);  /* dimension[0]: innermost */
  fail_unless_equals_int (word (h, 4), 3);
  for (guint i = 5; i < 19; i++)
    fail_unless_equals_int (word (h, i), 0);  /* rank 2: the rest is 0 */
  fail_unless_equals_int (word (h, 19), 1);   /* flexible */
  fail_unless_equals_int (word (h, 20), 4);   /* media: tensor */
  for (guint i = 21; i < 32; i++)
    fail_unless_equals_int (word (h, i), 0);  /* nnz and padding */
  /* Host byte order (x86: little endian): the magic's first byte is 0xed. */
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN) {
    fail_unless_equals_int (h[0], 0xed);
    fail_unless_equals_int (h[3], 0xfe);
  }
  /* Nothing is written past the header. */
  fail_unless_equals_int (h[GST_LFM2_TENSOR_HEADER_SIZE], 0xAB);

  fail_unless (gst_lfm2_tensor_header_parse (h, sizeof (h), &back, &payload, &err));
  fail_unless (gst_lfm2_tensor_info_is_equal (&back, &info));
  fail_unless_equals_int (back.rank, 2);
  fail_unless_equals_uint64 (payload, 4 * 128 * 3);

  /* An unaligned copy parses the same. */
  {
    guint8 *u = g_malloc (sizeof (h) + 1);
    memcpy (u + 1, h, sizeof (h));
    fail_unless (gst_lfm2_tensor_header_parse (u + 1, sizeof (h), &back, NULL, NULL));
    fail_unless (gst_lfm2_tensor_info_is_equal (&back, &info));
    g_free (u);
  }
}

GST_END_TEST;

GST_START_TEST (test_flexible_header_rejects)
{
  GstLfm2TensorInfo info, back;
  guint8 h[GST_LFM2_TENSOR_HEADER_SIZE + 16], bad[sizeof (h)];
  guint32 d[1] = { 4 }, w;
  GError *err = NULL;

  gst_lfm2_tensor_info_set (&info, GST_LFM2_TENSOR_INT32, 1, d);
  gst_lfm2_tensor_header_write (&info, GST_LFM2_TENSOR_FORMAT_FLEXIBLE,
      GST_LFM2_TENSOR_MEDIA_TENSOR, h);
  fail_unless (gst_lfm2_tensor_header_parse (h, sizeof (h), &back, NULL, NULL));

  /* payload too short by one byte */
  fail_if (gst_lfm2_tensor_header_parse (h, sizeof (h) - 1, &back, NULL, &err));
  fail_unless (strstr (err->message, "16") != NULL, "%s", err->message);
  g_clear_error (&err);
  /* shorter than the header */
  fail_if (gst_lfm2_tensor_header_parse (h, 100, &back, NULL, &err));
  g_clear_error (&err);

#define CORRUPT(wordi, value) do { \
    memcpy (bad, h, sizeof (h)); w = (value); memcpy (bad + 4 * (wordi), &w, 4); \
    fail_if (gst_lfm2_tensor_header_parse (bad, sizeof (bad), &back, NULL, &err)); \
    g_clear_error (&err); } while (0)
  CORRUPT (0, 0xfeedccee);      /* magic */
  CORRUPT (1, 0x00001000);      /* version tag */
  CORRUPT (1, 0xDE002000);      /* v2 */
  CORRUPT (2, 11);              /* type */
  CORRUPT (3, 0);               /* no rank */
  CORRUPT (19, 2);              /* sparse */
  CORRUPT (19, 3);              /* format */
#undef CORRUPT
}

GST_END_TEST;

GST_START_TEST (test_embd_buffers)
{
  const gint n_embd = 8, n_rows = 3, n_layout = 6;
  const gint32 layout[6] = { 17, 19, -1, -1, -1, 18 };
  gboolean flex;

  for (flex = FALSE; flex <= TRUE; flex++) {
    GstLfm2TensorsConfig cfg;
    GstLfm2EmbdView view;
    GstCaps *caps;
    gfloat *e;
    gint32 *l;
    GstBuffer *buf;
    GError *err = NULL;

    caps = gst_lfm2_embd_caps_new (flex, n_embd, n_rows, n_layout, "m", 0, 1);
    fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
    fail_unless_equals_int (cfg.embedding_length, n_embd);
    if (!flex) {
      const GstStructure *s = gst_caps_get_structure (caps, 0);
      fail_unless_equals_string (gst_structure_get_string (s, "dimensions"), "8:3,6");
      fail_unless_equals_string (gst_structure_get_string (s, "types"), "float32,int32");
    }
    gst_caps_unref (caps);

    buf = gst_lfm2_embd_buffer_new (flex, n_embd, n_rows, n_layout, &e, &l);
    fail_unless (buf != NULL);
    fail_unless_equals_int (gst_buffer_n_memory (buf), 2);
    for (gint i = 0; i < n_embd * n_rows; i++)
      e[i] = (gfloat) i * 0.5f;
    memcpy (l, layout, sizeof (layout));

    /* Memory sizes: payload, plus 128 bytes of header each when flexible. */
    fail_unless_equals_int (gst_memory_get_sizes (gst_buffer_peek_memory (buf, 0), NULL,
            NULL), (flex ? 128 : 0) + 4 * n_embd * n_rows);
    fail_unless_equals_int (gst_memory_get_sizes (gst_buffer_peek_memory (buf, 1), NULL,
            NULL), (flex ? 128 : 0) + 4 * n_layout);
    if (flex) {
      GstMapInfo map;
      gst_buffer_map_range (buf, 0, 1, &map, GST_MAP_READ);
      fail_unless_equals_int (word (map.data, 2), 7);
      fail_unless_equals_int (word (map.data, 3), 8);
      fail_unless_equals_int (word (map.data, 4), 3);
      gst_buffer_unmap (buf, &map);
    }

    fail_unless (gst_lfm2_embd_view_map (&view, buf, &cfg, 512, &err), "%s",
        err ? err->message : "");
    fail_unless_equals_int (view.n_embd, n_embd);
    fail_unless_equals_int (view.n_rows, n_rows);
    fail_unless_equals_int (view.n_layout, n_layout);
    fail_unless (view.embd[5] == 2.5f);
    fail_unless_equals_int (view.layout[5], 18);
    gst_lfm2_embd_view_unmap (&view);

    /* The vocabulary check and the row count check. */
    fail_if (gst_lfm2_embd_view_map (&view, buf, &cfg, 18, &err));
    fail_unless (strstr (err->message, "vocabulary") != NULL, "%s", err->message);
    g_clear_error (&err);
    l[2] = 5;
    fail_if (gst_lfm2_embd_view_map (&view, buf, &cfg, 512, &err));
    fail_unless (strstr (err->message, "2 embedding slots") != NULL, "%s", err->message);
    g_clear_error (&err);

    /* Width mismatch against caps. */
    l[2] = -1;
    cfg.embedding_length = 16;
    fail_if (gst_lfm2_embd_view_map (&view, buf, &cfg, 512, &err));
    fail_unless (strstr (err->message, "embedding-length=16") != NULL, "%s", err->message);
    g_clear_error (&err);
    gst_buffer_unref (buf);
  }
}

GST_END_TEST;

GST_START_TEST (test_embd_rows_only)
{
  GstLfm2TensorsConfig cfg;
  GstLfm2EmbdView view;
  GstCaps *caps = gst_lfm2_embd_caps_new (FALSE, 4, 2, 0, NULL, 0, 1);
  GstBuffer *buf;
  gfloat *e;
  gint32 *l = (gint32 *) 0x1;

  fail_unless_equals_string (gst_structure_get_string (gst_caps_get_structure (caps, 0),
          "dimensions"), "4:2");
  fail_unless (gst_lfm2_tensors_config_from_caps (caps, &cfg, NULL));
  fail_unless_equals_int (cfg.num_tensors, 1);
  buf = gst_lfm2_embd_buffer_new (FALSE, 4, 2, 0, &e, &l);
  fail_unless (l == NULL);
  fail_unless_equals_int (gst_buffer_n_memory (buf), 1);
  memset (e, 0, 4 * 2 * sizeof (gfloat));
  fail_unless (gst_lfm2_embd_view_map (&view, buf, &cfg, 0, NULL));
  fail_unless_equals_int (view.n_layout, 0);
  fail_unless (view.layout == NULL);
  fail_unless_equals_int (view.n_rows, 2);
  gst_lfm2_embd_view_unmap (&view);

  /* Static caps promise a size: a short memory is refused. */
  gst_buffer_resize (buf, 0, 4 * 4);
  fail_if (gst_lfm2_embd_view_map (&view, buf, &cfg, 0, NULL));
  gst_buffer_unref (buf);
  gst_caps_unref (caps);
}

GST_END_TEST;

static Suite *
tensors_suite (void)
{
  Suite *s = suite_create ("lfm2tensors");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_type_names_and_numbers);
  tcase_add_test (tc, test_dimension_order);
  tcase_add_test (tc, test_static_caps_roundtrip);
  tcase_add_test (tc, test_caps_parse_errors);
  tcase_add_test (tc, test_flexible_header_bytes);
  tcase_add_test (tc, test_flexible_header_rejects);
  tcase_add_test (tc, test_embd_buffers);
  tcase_add_test (tc, test_embd_rows_only);
  return s;
}

GST_CHECK_MAIN (tensors);
