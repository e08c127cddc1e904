/* gstlfm2tensors.c — NNStreamer `other/tensors` caps, flexible headers, and the embeddings
 * contract between encoder and decoder elements. See gstlfm2tensors.h and docs/tensor-caps.md. */
#include "gstlfm2tensors.h"

#include <string.h>

static const struct {
  const gchar *name;
  gsize size;
} tensor_types[] = {
  [GST_LFM2_TENSOR_INT32] = {"int32", 4},
  [GST_LFM2_TENSOR_UINT32] = {"uint32", 4},
  [GST_LFM2_TENSOR_INT16] = {"int16", 2},
  [GST_LFM2_TENSOR_UINT16] = {"uint16", 2},
  [GST_LFM2_TENSOR_INT8] = {"int8", 1},
  [GST_LFM2_TENSOR_UINT8] = {"uint8", 1},
  [GST_LFM2_TENSOR_FLOAT64] = {"float64", 8},
  [GST_LFM2_TENSOR_FLOAT32] = {"float32", 4},
  [GST_LFM2_TENSOR_INT64] = {"int64", 8},
  [GST_LFM2_TENSOR_UINT64] = {"uint64", 8},
  [GST_LFM2_TENSOR_FLOAT16] = {"float16", 2},
};

const gchar *
gst_lfm2_tensor_type_to_string (GstLfm2TensorType type)
{
  if ((guint) type >= G_N_ELEMENTS (tensor_types))
    return NULL;
  return tensor_types[type].name;
}

GstLfm2TensorType
gst_lfm2_tensor_type_from_string (const gchar * name)
{
  if (name == NULL)
    return GST_LFM2_TENSOR_TYPE_INVALID;
  for (guint i = 0; i < G_N_ELEMENTS (tensor_types); i++)
    if (g_ascii_strcasecmp (name, tensor_types[i].name) == 0)
      return (GstLfm2TensorType) i;
  return GST_LFM2_TENSOR_TYPE_INVALID;
}

gsize
gst_lfm2_tensor_type_size (GstLfm2TensorType type)
{
  if ((guint) type >= G_N_ELEMENTS (tensor_types))
    return 0;
  return tensor_types[type].size;
}

void
gst_lfm2_tensor_info_set (GstLfm2TensorInfo * info, GstLfm2TensorType type,
    guint rank, const guint32 * dims)
{
  memset (info, 0, sizeof (*info));
  info->type = type;
  info->rank = MIN (rank, GST_LFM2_TENSOR_RANK_LIMIT);
  for (guint i = 0; i < info->rank; i++)
    info->dims[i] = dims[i];
}

guint64
gst_lfm2_tensor_info_n_elements (const GstLfm2TensorInfo * info)
{
  guint64 n = 1;

  if (info->rank == 0 || info->rank > GST_LFM2_TENSOR_RANK_LIMIT)
    return 0;
  for (guint i = 0; i < info->rank; i++) {
    if (info->dims[i] == 0 || __builtin_mul_overflow (n, (guint64) info->dims[i], &n))
      return 0;
  }
  return n;
}

gsize
gst_lfm2_tensor_info_size (const GstLfm2TensorInfo * info)
{
  guint64 n = gst_lfm2_tensor_info_n_elements (info), bytes;
  gsize esize = gst_lfm2_tensor_type_size (info->type);

  if (n == 0 || esize == 0 || __builtin_mul_overflow (n, (guint64) esize, &bytes)
      || bytes > G_MAXSIZE)
    return 0;
  return (gsize) bytes;
}

/* Rank without trailing 1s (NNStreamer treats "3:4" and "3:4:1:1" as the same shape). */
static guint
effective_rank (const GstLfm2TensorInfo * info)
{
  guint r = info->rank;
  while (r > 1 && info->dims[r - 1] == 1)
    r--;
  return r;
}

gboolean
gst_lfm2_tensor_info_is_equal (const GstLfm2TensorInfo * a, const GstLfm2TensorInfo * b)
{
  guint ra = effective_rank (a), rb = effective_rank (b);

  if (a->type != b->type || ra != rb)
    return FALSE;
  for (guint i = 0; i < ra; i++)
    if (a->dims[i] != b->dims[i])
      return FALSE;
  return TRUE;
}

gchar *
gst_lfm2_tensor_dims_to_string (const GstLfm2TensorInfo * info)
{
  GString *s = g_string_sized_new (32);

  for (guint i = 0; i < info->rank && i < GST_LFM2_TENSOR_RANK_LIMIT; i++)
    g_string_append_printf (s, i ? ":%u" : "%u", info->dims[i]);
  return g_string_free (s, FALSE);
}

gboolean
gst_lfm2_tensor_dims_parse (const gchar * str, GstLfm2TensorInfo * info, GError ** error)
{
  const gchar *p = str;
  guint rank = 0;

  memset (info->dims, 0, sizeof (info->dims));
  info->rank = 0;
  if (str == NULL) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT, "missing dimension");
    return FALSE;
  }
  for (;;) {
    gchar *end;
    guint64 v;

    while (g_ascii_isspace (*p))
      p++;
    if (!g_ascii_isdigit (*p)) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "dimension \"%s\": expected a positive number at offset %d", str, (int) (p - str));
      return FALSE;
    }
    v = g_ascii_strtoull (p, &end, 10);
    if (v == 0 || v > G_MAXUINT32) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "dimension \"%s\": %" G_GUINT64_FORMAT " is not in [1, 4294967295]", str, v);
      return FALSE;
    }
    if (rank == GST_LFM2_TENSOR_RANK_LIMIT) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "dimension \"%s\": more than %d dimensions", str, GST_LFM2_TENSOR_RANK_LIMIT);
      return FALSE;
    }
    info->dims[rank++] = (guint32) v;
    p = end;
    while (g_ascii_isspace (*p))
      p++;
    if (*p == '\0')
      break;
    if (*p != ':') {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "dimension \"%s\": unexpected '%c'", str, *p);
      return FALSE;
    }
    p++;
  }
  info->rank = rank;
  return TRUE;
}

void
gst_lfm2_tensors_config_init (GstLfm2TensorsConfig * config, GstLfm2TensorFormat format)
{
  memset (config, 0, sizeof (*config));
  config->format = format;
  config->rate_n = 0;
  config->rate_d = 1;
}

GstCaps *
gst_lfm2_tensors_caps_from_config (const GstLfm2TensorsConfig * config)
{
  GstStructure *s;

  g_return_val_if_fail (config != NULL, NULL);

  if (config->format == GST_LFM2_TENSOR_FORMAT_STATIC) {
    GString *types = g_string_new (NULL), *dims = g_string_new (NULL);

    g_return_val_if_fail (config->num_tensors >= 1
        && config->num_tensors <= GST_LFM2_TENSORS_MAX, NULL);
    for (guint i = 0; i < config->num_tensors; i++) {
      gchar *d = gst_lfm2_tensor_dims_to_string (&config->info[i]);
      g_string_append_printf (types, "%s%s", i ? "," : "",
          gst_lfm2_tensor_type_to_string (config->info[i].type));
      g_string_append_printf (dims, "%s%s", i ? "," : "", d);
      g_free (d);
    }
    s = gst_structure_new (GST_LFM2_TENSORS_MEDIA_TYPE,
        "format", G_TYPE_STRING, "static",
        "num_tensors", G_TYPE_INT, (gint) config->num_tensors,
        "types", G_TYPE_STRING, types->str,
        "dimensions", G_TYPE_STRING, dims->str,
        "framerate", GST_TYPE_FRACTION, config->rate_n, config->rate_d, NULL);
    g_string_free (types, TRUE);
    g_string_free (dims, TRUE);
  } else {
    s = gst_structure_new (GST_LFM2_TENSORS_MEDIA_TYPE,
        "format", G_TYPE_STRING,
        config->format == GST_LFM2_TENSOR_FORMAT_SPARSE ? "sparse" : "flexible",
        "framerate", GST_TYPE_FRACTION, config->rate_n, config->rate_d, NULL);
  }
  if (config->embedding_length > 0)
    gst_structure_set (s, "embedding-length", G_TYPE_INT, config->embedding_length, NULL);
  if (config->model_id[0])
    gst_structure_set (s, "model-id", G_TYPE_STRING, config->model_id, NULL);
  return gst_caps_new_full (s, NULL);
}

gboolean
gst_lfm2_tensors_config_from_caps (const GstCaps * caps, GstLfm2TensorsConfig * config,
    GError ** error)
{
  const GstStructure *s;
  const gchar *format, *types, *dims, *model_id;
  gint num = 0, dim_int = 0;
  gchar dim_buf[16];

  gst_lfm2_tensors_config_init (config, GST_LFM2_TENSOR_FORMAT_STATIC);
  if (caps == NULL || gst_caps_get_size (caps) != 1 || !gst_caps_is_fixed (caps)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor caps must be fixed and have one structure");
    return FALSE;
  }
  s = gst_caps_get_structure (caps, 0);
  if (!gst_structure_has_name (s, GST_LFM2_TENSORS_MEDIA_TYPE)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "media type is %s, not " GST_LFM2_TENSORS_MEDIA_TYPE, gst_structure_get_name (s));
    return FALSE;
  }
  /* NNStreamer: a missing format means static. */
  format = gst_structure_get_string (s, "format");
  if (format == NULL || g_str_equal (format, "static"))
    config->format = GST_LFM2_TENSOR_FORMAT_STATIC;
  else if (g_str_equal (format, "flexible"))
    config->format = GST_LFM2_TENSOR_FORMAT_FLEXIBLE;
  else if (g_str_equal (format, "sparse"))
    config->format = GST_LFM2_TENSOR_FORMAT_SPARSE;
  else {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "format \"%s\" is not static, flexible or sparse", format);
    return FALSE;
  }

  if (gst_structure_has_field (s, "framerate")
      && !gst_structure_get_fraction (s, "framerate", &config->rate_n, &config->rate_d)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "framerate is not a fraction");
    return FALSE;
  }
  if (gst_structure_has_field (s, "embedding-length")
      && (!gst_structure_get_int (s, "embedding-length", &config->embedding_length)
          || config->embedding_length <= 0)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "embedding-length must be a positive int");
    return FALSE;
  }
  model_id = gst_structure_get_string (s, "model-id");
  if (model_id && strlen (model_id) >= sizeof (config->model_id)) {
    /* cut, it would no longer match the model (and could end inside a UTF-8 character) */
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "model-id is longer than %d bytes", (int) sizeof (config->model_id) - 1);
    return FALSE;
  }
  if (model_id)
    g_strlcpy (config->model_id, model_id, sizeof (config->model_id));

  if (config->format != GST_LFM2_TENSOR_FORMAT_STATIC)
    return TRUE;

  if (!gst_structure_get_int (s, "num_tensors", &num) || num < 1
      || num > GST_LFM2_TENSORS_MAX) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "static tensors need num_tensors in [1, %d]", GST_LFM2_TENSORS_MAX);
    return FALSE;
  }
  config->num_tensors = (guint) num;
  types = gst_structure_get_string (s, "types");
  dims = gst_structure_get_string (s, "dimensions");
  /* A one-dimensional single tensor written unquoted in a caps string parses as an int. */
  if (dims == NULL && num == 1
      && gst_structure_get_int (s, "dimensions", &dim_int) && dim_int > 0) {
    g_snprintf (dim_buf, sizeof (dim_buf), "%d", dim_int);
    dims = dim_buf;
  }
  if (types == NULL || dims == NULL) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "static tensors need the fields types and dimensions");
    return FALSE;
  }
  {
    gchar **tv = g_strsplit (types, ",", -1), **dv = g_strsplit (dims, ",", -1);
    gboolean ok = TRUE;

    if (g_strv_length (tv) != (guint) num || g_strv_length (dv) != (guint) num) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "num_tensors=%d but types=\"%s\" and dimensions=\"%s\"", num, types, dims);
      ok = FALSE;
    }
    for (gint i = 0; ok && i < num; i++) {
      GstLfm2TensorInfo *info = &config->info[i];
      gchar *t = g_strstrip (tv[i]);

      info->type = gst_lfm2_tensor_type_from_string (t);
      if (info->type == GST_LFM2_TENSOR_TYPE_INVALID) {
        g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
            "tensor %d: unknown type \"%s\"", i, t);
        ok = FALSE;
      } else if (!gst_lfm2_tensor_dims_parse (dv[i], info, error)) {
        g_prefix_error (error, "tensor %d: ", i);
        ok = FALSE;
      } else if (gst_lfm2_tensor_info_size (info) == 0) {
        g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
            "tensor %d: size of %s overflows", i, dv[i]);
        ok = FALSE;
      }
    }
    g_strfreev (tv);
    g_strfreev (dv);
    return ok;
  }
}

void
gst_lfm2_tensor_header_write (const GstLfm2TensorInfo * info, GstLfm2TensorFormat format,
    GstLfm2TensorMedia media, guint8 header[GST_LFM2_TENSOR_HEADER_SIZE])
{
  guint32 w[GST_LFM2_TENSOR_HEADER_SIZE / 4];

  memset (w, 0, sizeof (w));
  w[0] = GST_LFM2_TENSOR_META_MAGIC;
  w[1] = GST_LFM2_TENSOR_META_VERSION;
  w[2] = (guint32) info->type;
  for (guint i = 0; i < info->rank && i < GST_LFM2_TENSOR_RANK_LIMIT; i++)
    w[3 + i] = info->dims[i];
  w[19] = (guint32) format;
  w[20] = (guint32) (gint32) media;
  /* word 21: sparse nnz, 0 for dense tensors */
  memcpy (header, w, sizeof (w));
}

gboolean
gst_lfm2_tensor_header_parse (const guint8 * data, gsize size, GstLfm2TensorInfo * info,
    gsize * payload_size, GError ** error)
{
  guint32 w[GST_LFM2_TENSOR_HEADER_SIZE / 4];
  gsize need;

  memset (info, 0, sizeof (*info));
  if (size < GST_LFM2_TENSOR_HEADER_SIZE) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "flexible tensor memory of %" G_GSIZE_FORMAT " bytes is shorter than the %d-byte header",
        size, GST_LFM2_TENSOR_HEADER_SIZE);
    return FALSE;
  }
  memcpy (w, data, sizeof (w));         /* data need not be 4-byte aligned */
  if (w[0] != GST_LFM2_TENSOR_META_MAGIC) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor header magic is 0x%08x, not 0x%08x", w[0], GST_LFM2_TENSOR_META_MAGIC);
    return FALSE;
  }
  if ((w[1] & 0xFF000000u) != 0xDE000000u || ((w[1] >> 12) & 0xFFFu) != 1) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor header version 0x%08x is not v1", w[1]);
    return FALSE;
  }
  if (w[2] >= GST_LFM2_TENSOR_TYPE_INVALID) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor header type %u is unknown", w[2]);
    return FALSE;
  }
  if (w[19] == GST_LFM2_TENSOR_FORMAT_SPARSE) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "sparse tensors are not supported");
    return FALSE;
  }
  if (w[19] > GST_LFM2_TENSOR_FORMAT_SPARSE) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor header format %u is unknown", w[19]);
    return FALSE;
  }
  info->type = (GstLfm2TensorType) w[2];
  for (guint i = 0; i < GST_LFM2_TENSOR_RANK_LIMIT && w[3 + i] != 0; i++) {
    info->dims[i] = w[3 + i];
    info->rank = i + 1;
  }
  if (info->rank == 0) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor header has no dimension");
    return FALSE;
  }
  need = gst_lfm2_tensor_info_size (info);
  if (need == 0 || need > size - GST_LFM2_TENSOR_HEADER_SIZE) {
    gchar *d = gst_lfm2_tensor_dims_to_string (info);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor %s %s needs %" G_GSIZE_FORMAT " payload bytes, memory holds %" G_GSIZE_FORMAT,
        gst_lfm2_tensor_type_to_string (info->type), d, need,
        size - GST_LFM2_TENSOR_HEADER_SIZE);
    g_free (d);
    return FALSE;
  }
  if (payload_size)
    *payload_size = need;
  return TRUE;
}

/* ---- embeddings contract ------------------------------------------------------------- */

static void
embd_infos (gint n_embd, gint n_rows, gint n_layout, GstLfm2TensorInfo * embd,
    GstLfm2TensorInfo * layout)
{
  guint32 d[2] = { (guint32) n_embd, (guint32) n_rows };
  guint32 l[1] = { (guint32) n_layout };

  gst_lfm2_tensor_info_set (embd, GST_LFM2_TENSOR_FLOAT32, 2, d);
  gst_lfm2_tensor_info_set (layout, GST_LFM2_TENSOR_INT32, 1, l);
}

GstCaps *
gst_lfm2_embd_caps_new (gboolean flexible, gint n_embd, gint n_rows, gint n_layout,
    const gchar * model_id, gint rate_n, gint rate_d)
{
  GstLfm2TensorsConfig c;

  g_return_val_if_fail (n_embd > 0, NULL);
  gst_lfm2_tensors_config_init (&c, flexible ? GST_LFM2_TENSOR_FORMAT_FLEXIBLE
      : GST_LFM2_TENSOR_FORMAT_STATIC);
  if (!flexible) {
    g_return_val_if_fail (n_rows > 0 && n_layout >= 0, NULL);
    embd_infos (n_embd, n_rows, n_layout, &c.info[0], &c.info[1]);
    c.num_tensors = n_layout > 0 ? 2 : 1;
  }
  c.rate_n = rate_n;
  c.rate_d = rate_d > 0 ? rate_d : 1;
  c.embedding_length = n_embd;
  if (model_id)
    g_strlcpy (c.model_id, model_id, sizeof (c.model_id));
  return gst_lfm2_tensors_caps_from_config (&c);
}

static GstMemory *
tensor_memory_new (const GstLfm2TensorInfo * info, gboolean flexible, gpointer * payload)
{
  gsize hsize = flexible ? GST_LFM2_TENSOR_HEADER_SIZE : 0;
  gsize size = hsize + gst_lfm2_tensor_info_size (info);
  /* 64-byte alignment suits the SIMD kernels that read the rows. */
  GstAllocationParams params = { 0, 63, 0, 0, };
  GstMemory *mem = gst_allocator_alloc (NULL, size, &params);
  GstMapInfo map;

  if (mem == NULL || !gst_memory_map (mem, &map, GST_MAP_WRITE)) {
    if (mem)
      gst_memory_unref (mem);
    return NULL;
  }
  if (flexible)
    gst_lfm2_tensor_header_write (info, GST_LFM2_TENSOR_FORMAT_FLEXIBLE,
        GST_LFM2_TENSOR_MEDIA_TENSOR, map.data);
  /* System memory keeps its address after unmap, so the writer may fill it afterwards. */
  *payload = map.data + hsize;
  gst_memory_unmap (mem, &map);
  return mem;
}

GstBuffer *
gst_lfm2_embd_buffer_new (gboolean flexible, gint n_embd, gint n_rows, gint n_layout,
    gfloat ** embd, gint32 ** layout)
{
  GstLfm2TensorInfo ie, il;
  GstBuffer *buf;
  GstMemory *m;
  gpointer p;

  g_return_val_if_fail (n_embd > 0 && n_rows > 0 && n_layout >= 0 && embd != NULL, NULL);
  embd_infos (n_embd, n_rows, n_layout, &ie, &il);
  if (gst_lfm2_tensor_info_size (&ie) == 0)
    return NULL;
  buf = gst_buffer_new ();
  m = tensor_memory_new (&ie, flexible, &p);
  if (m == NULL)
    goto fail;
  gst_buffer_append_memory (buf, m);
  *embd = p;
  if (layout)
    *layout = NULL;
  if (n_layout > 0) {
    g_return_val_if_fail (layout != NULL, NULL);
    m = tensor_memory_new (&il, flexible, &p);
    if (m == NULL)
      goto fail;
    gst_buffer_append_memory (buf, m);
    *layout = p;
  }
  return buf;
fail:
  gst_buffer_unref (buf);
  return NULL;
}

gboolean
gst_lfm2_embd_layout_check (const gint32 * layout, gint n_layout, gint n_rows, gint n_vocab,
    GError ** error)
{
  gint n_neg = 0;

  for (gint i = 0; i < n_layout; i++) {
    if (layout[i] < 0)
      n_neg++;
    else if (n_vocab > 0 && layout[i] >= n_vocab) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "layout entry %d is token id %d, outside the vocabulary of %d", i, layout[i],
          n_vocab);
      return FALSE;
    }
  }
  if (n_neg != n_rows) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "layout has %d embedding slots (negative ids) for %d embedding rows", n_neg, n_rows);
    return FALSE;
  }
  return TRUE;
}

void
gst_lfm2_embd_view_unmap (GstLfm2EmbdView * view)
{
  for (guint i = 0; i < view->n_mapped; i++) {
    gst_memory_unmap (view->mem[i], &view->map[i]);
    gst_memory_unref (view->mem[i]);
  }
  view->n_mapped = 0;
  view->embd = NULL;
  view->layout = NULL;
  view->buffer = NULL;
}

gboolean
gst_lfm2_embd_view_map (GstLfm2EmbdView * view, GstBuffer * buffer,
    const GstLfm2TensorsConfig * config, gint n_vocab, GError ** error)
{
  GstLfm2TensorInfo info[2];
  const guint8 *payload[2];
  guint n_mem = gst_buffer_n_memory (buffer);
  gboolean flexible = config->format == GST_LFM2_TENSOR_FORMAT_FLEXIBLE;

  memset (view, 0, sizeof (*view));
  if (config->format == GST_LFM2_TENSOR_FORMAT_SPARSE) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "sparse tensors are not embeddings");
    return FALSE;
  }
  if (n_mem < 1 || n_mem > 2 || (!flexible && n_mem != config->num_tensors)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "embeddings buffer has %u memories; expected 1 (rows) or 2 (rows, layout)%s", n_mem,
        flexible ? "" : " matching num_tensors");
    return FALSE;
  }
  view->buffer = buffer;
  for (guint i = 0; i < n_mem; i++) {
    GstMemory *mem = gst_buffer_get_memory (buffer, i);
    gsize psize;

    if (!gst_memory_map (mem, &view->map[i], GST_MAP_READ)) {
      gst_memory_unref (mem);
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
          "cannot map tensor memory %u", i);
      goto fail;
    }
    view->mem[i] = mem;
    view->n_mapped = i + 1;
    if (flexible) {
      if (!gst_lfm2_tensor_header_parse (view->map[i].data, view->map[i].size, &info[i],
              &psize, error)) {
        g_prefix_error (error, "tensor %u: ", i);
        goto fail;
      }
      payload[i] = view->map[i].data + GST_LFM2_TENSOR_HEADER_SIZE;
    } else {
      info[i] = config->info[i];
      psize = gst_lfm2_tensor_info_size (&info[i]);
      if (view->map[i].size < psize) {
        g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
            "tensor %u: memory of %" G_GSIZE_FORMAT " bytes, caps need %" G_GSIZE_FORMAT, i,
            view->map[i].size, psize);
        goto fail;
      }
      payload[i] = view->map[i].data;
    }
    /* The rows go straight to the engine as float*: no copy, so they must be aligned. */
    if (((guintptr) payload[i] & 3) != 0) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "tensor %u: payload is not 4-byte aligned", i);
      goto fail;
    }
  }

  /* tensor 0: float32 n_embd:n_rows (a rank-1 tensor is a single row) */
  if (info[0].type != GST_LFM2_TENSOR_FLOAT32 || effective_rank (&info[0]) > 2) {
    gchar *d = gst_lfm2_tensor_dims_to_string (&info[0]);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "tensor 0 is %s %s; embeddings must be float32 n_embd:n_rows",
        gst_lfm2_tensor_type_to_string (info[0].type), d);
    g_free (d);
    goto fail;
  }
  view->n_embd = (gint) info[0].dims[0];
  view->n_rows = info[0].rank > 1 ? (gint) info[0].dims[1] : 1;
  if (info[0].dims[0] > G_MAXINT32 || (info[0].rank > 1 && info[0].dims[1] > G_MAXINT32)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT, "tensor 0 is too large");
    goto fail;
  }
  if (config->embedding_length > 0 && view->n_embd != config->embedding_length) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "embedding rows are %d wide but caps say embedding-length=%d", view->n_embd,
        config->embedding_length);
    goto fail;
  }
  view->embd = (const gfloat *) payload[0];

  if (n_mem == 2) {
    if (info[1].type != GST_LFM2_TENSOR_INT32 || effective_rank (&info[1]) != 1
        || info[1].dims[0] > G_MAXINT32) {
      gchar *d = gst_lfm2_tensor_dims_to_string (&info[1]);
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "tensor 1 is %s %s; the layout must be int32 n_layout",
          gst_lfm2_tensor_type_to_string (info[1].type), d);
      g_free (d);
      goto fail;
    }
    view->n_layout = (gint) info[1].dims[0];
    view->layout = (const gint32 *) payload[1];
    if (!gst_lfm2_embd_layout_check (view->layout, view->n_layout, view->n_rows, n_vocab,
            error))
      goto fail;
  }
  return TRUE;

fail:
  gst_lfm2_embd_view_unmap (view);
  return FALSE;
}
