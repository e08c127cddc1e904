/* gstlfm2tensors.h — NNStreamer-compatible `other/tensors` caps and buffers.
 *
 * Caps, exactly as NNStreamer (nnstreamer/nnstreamer, gst/nnstreamer/include/tensor_typedef.h)
 * defines them:
 *
 *   other/tensors, format=static, num_tensors=2, types="float32,int32",
 *                  dimensions="128:64,70", framerate=0/1
 *   other/tensors, format=flexible, framerate=0/1
 *
 * Dimensions are written innermost first ("128:64" is a C array float[64][128]). One GstMemory
 * holds one tensor. In the flexible format every memory starts with NNStreamer's 128-byte
 * GstTensorMetaInfo v1 header (u32 words in host byte order, zero padded):
 *
 *   word 0      magic 0xfeedcced
 *   word 1      version 0xDE000000 | major << 12 | minor   (v1.0 = 0xDE001000)
 *   word 2      element type (enum GstLfm2TensorType, same numbers as NNStreamer's tensor_type)
 *   words 3-18  dimension[16], innermost first, 0 ends the rank
 *   word 19     format (0 static, 1 flexible, 2 sparse)
 *   word 20     media type (-1 invalid, 0 video, 1 audio, 2 text, 3 octet, 4 tensor)
 *   word 21     sparse nnz (sparse only; 0 otherwise)
 *
 * Our own caps fields (ignored by NNStreamer elements, checked by ours):
 *   embedding-length (int)    width of the embedding rows (the text model's n_embd)
 *   model-id         (string) the text model the rows were made for (lfm2_model_id())
 *
 * The encoder → decoder contract built on top (see docs/tensor-caps.md):
 *   tensor 0  float32  n_embd:n_rows   embedding rows, row-major
 *   tensor 1  int32    n_layout        (optional) token layout of the media segment: ids >= 0 are
 *                                      text tokens, a negative id (-1) stands for "the next
 *                                      embedding row"; exactly n_rows negative entries.
 */
#ifndef GST_LFM2_TENSORS_H
#define GST_LFM2_TENSORS_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_LFM2_TENSORS_MEDIA_TYPE "other/tensors"
#define GST_LFM2_TENSOR_RANK_LIMIT 16
/* NNStreamer allows 256 tensors with 17..256 packed in the last memory; we carry at most one
 * tensor per memory, so the GstBuffer limit applies. */
#define GST_LFM2_TENSORS_MAX 16
#define GST_LFM2_TENSOR_HEADER_SIZE 128
#define GST_LFM2_TENSOR_META_MAGIC 0xfeedccedu
#define GST_LFM2_TENSOR_META_MAKE_VERSION(major, minor) \
  (0xDE000000u | ((guint32) (major) << 12) | (guint32) (minor))
#define GST_LFM2_TENSOR_META_VERSION GST_LFM2_TENSOR_META_MAKE_VERSION (1, 0)

/* Template caps for both formats (the static one leaves types/dimensions open). */
#define GST_LFM2_TENSORS_CAPS_STATIC \
  "other/tensors, format = (string) static, num_tensors = (int) [ 1, 16 ], " \
  "framerate = (fraction) [ 0/1, max ]"
#define GST_LFM2_TENSORS_CAPS_FLEXIBLE \
  "other/tensors, format = (string) flexible, framerate = (fraction) [ 0/1, max ]"

/* Element types; the numbers are NNStreamer's (they appear in flexible headers). */
typedef enum {
  GST_LFM2_TENSOR_INT32 = 0,
  GST_LFM2_TENSOR_UINT32 = 1,
  GST_LFM2_TENSOR_INT16 = 2,
  GST_LFM2_TENSOR_UINT16 = 3,
  GST_LFM2_TENSOR_INT8 = 4,
  GST_LFM2_TENSOR_UINT8 = 5,
  GST_LFM2_TENSOR_FLOAT64 = 6,
  GST_LFM2_TENSOR_FLOAT32 = 7,
  GST_LFM2_TENSOR_INT64 = 8,
  GST_LFM2_TENSOR_UINT64 = 9,
  GST_LFM2_TENSOR_FLOAT16 = 10,
  GST_LFM2_TENSOR_TYPE_INVALID = 11,
} GstLfm2TensorType;

typedef enum {
  GST_LFM2_TENSOR_FORMAT_STATIC = 0,
  GST_LFM2_TENSOR_FORMAT_FLEXIBLE = 1,
  GST_LFM2_TENSOR_FORMAT_SPARSE = 2,
} GstLfm2TensorFormat;

typedef enum {
  GST_LFM2_TENSOR_MEDIA_INVALID = -1,
  GST_LFM2_TENSOR_MEDIA_VIDEO = 0,
  GST_LFM2_TENSOR_MEDIA_AUDIO = 1,
  GST_LFM2_TENSOR_MEDIA_TEXT = 2,
  GST_LFM2_TENSOR_MEDIA_OCTET = 3,
  GST_LFM2_TENSOR_MEDIA_TENSOR = 4,
} GstLfm2TensorMedia;

/* Shape of one tensor. dims[0] is the innermost dimension; dims[rank..] are 0. */
typedef struct {
  GstLfm2TensorType type;
  guint rank;
  guint32 dims[GST_LFM2_TENSOR_RANK_LIMIT];
} GstLfm2TensorInfo;

/* What a caps structure says. For the flexible format num_tensors is 0 and info[] unused:
 * the shapes travel in the per-memory headers. */
typedef struct {
  GstLfm2TensorFormat format;
  guint num_tensors;
  GstLfm2TensorInfo info[GST_LFM2_TENSORS_MAX];
  gint rate_n, rate_d;              /* framerate; 0/1 if absent */
  gint embedding_length;            /* 0 if absent */
  gchar model_id[256];              /* "" if absent; lfm2_model_id() fits */
} GstLfm2TensorsConfig;

const gchar *gst_lfm2_tensor_type_to_string (GstLfm2TensorType type);
/* GST_LFM2_TENSOR_TYPE_INVALID for an unknown name. */
GstLfm2TensorType gst_lfm2_tensor_type_from_string (const gchar * name);
/* Bytes per element (0 for an invalid type). */
gsize gst_lfm2_tensor_type_size (GstLfm2TensorType type);

/* Fills info from a shape; dims_innermost_first[0] is the innermost dimension. */
void gst_lfm2_tensor_info_set (GstLfm2TensorInfo * info, GstLfm2TensorType type,
    guint rank, const guint32 * dims_innermost_first);
/* Number of elements (0 if the rank is 0, a dimension is 0, or the product overflows). */
guint64 gst_lfm2_tensor_info_n_elements (const GstLfm2TensorInfo * info);
/* Payload bytes (0 on overflow or invalid info). */
gsize gst_lfm2_tensor_info_size (const GstLfm2TensorInfo * info);
/* Same type and shape; trailing dimensions of 1 are insignificant ("3:4" equals "3:4:1"). */
gboolean gst_lfm2_tensor_info_is_equal (const GstLfm2TensorInfo * a,
    const GstLfm2TensorInfo * b);

/* "d1:d2:…" (innermost first). Free with g_free. */
gchar *gst_lfm2_tensor_dims_to_string (const GstLfm2TensorInfo * info);
/* Parses "d1:d2:…" into info->dims/rank (type untouched). FALSE (with error) for an empty
 * string, a non-number, a zero, more than 16 dimensions. */
gboolean gst_lfm2_tensor_dims_parse (const gchar * str, GstLfm2TensorInfo * info,
    GError ** error);

void gst_lfm2_tensors_config_init (GstLfm2TensorsConfig * config,
    GstLfm2TensorFormat format);
/* Fixed caps for a config (static: num_tensors, types, dimensions; both: framerate and our
 * fields when set). */
GstCaps *gst_lfm2_tensors_caps_from_config (const GstLfm2TensorsConfig * config);
/* Parses fixed `other/tensors` caps. FALSE with a message naming the field otherwise. */
gboolean gst_lfm2_tensors_config_from_caps (const GstCaps * caps,
    GstLfm2TensorsConfig * config, GError ** error);

/* Writes the 128-byte flexible header for a tensor. */
void gst_lfm2_tensor_header_write (const GstLfm2TensorInfo * info,
    GstLfm2TensorFormat format, GstLfm2TensorMedia media,
    guint8 header[GST_LFM2_TENSOR_HEADER_SIZE]);
/* Parses a memory that starts with a header: checks magic, version (v1), type, rank and that
 * the payload fits in `size`. On success info is filled and *payload_size (if not NULL) is the
 * payload size implied by the header. */
gboolean gst_lfm2_tensor_header_parse (const guint8 * data, gsize size,
    GstLfm2TensorInfo * info, gsize * payload_size, GError ** error);

/* ---- the encoder → decoder embeddings contract ------------------------------------- */

/* Caps an encoder offers for one segment: static (fixed n_rows/n_layout, so all buffers must
 * have the same shape) or flexible (per-buffer headers). n_layout = 0 omits the layout tensor.
 * model_id may be NULL. */
GstCaps *gst_lfm2_embd_caps_new (gboolean flexible, gint n_embd, gint n_rows,
    gint n_layout, const gchar * model_id, gint rate_n, gint rate_d);

/* A buffer for one segment with writable storage: fills *embd (n_rows × n_embd floats) and
 * *layout (n_layout ids, NULL if n_layout is 0) with pointers the caller writes before
 * pushing the buffer. Flexible buffers get their headers here. */
GstBuffer *gst_lfm2_embd_buffer_new (gboolean flexible, gint n_embd, gint n_rows,
    gint n_layout, gfloat ** embd, gint32 ** layout);

/* Read-only view of a received segment (zero copy: the memories stay mapped until unmap). */
typedef struct {
  gint n_embd;
  gint n_rows;
  const gfloat *embd;
  gint n_layout;                /* 0 if the buffer carried no layout tensor */
  const gint32 *layout;

  /*< private >*/
  GstBuffer *buffer;
  GstMemory *mem[2];
  GstMapInfo map[2];
  guint n_mapped;
} GstLfm2EmbdView;

/* Maps a buffer received with `config` (from gst_lfm2_tensors_config_from_caps) and checks it
 * against the contract: float32 rows of config->embedding_length (if set) or any width, an
 * optional int32 layout with exactly n_rows negative entries and ids < n_vocab (n_vocab 0 =
 * unchecked). */
gboolean gst_lfm2_embd_view_map (GstLfm2EmbdView * view, GstBuffer * buffer,
    const GstLfm2TensorsConfig * config, gint n_vocab, GError ** error);
void gst_lfm2_embd_view_unmap (GstLfm2EmbdView * view);

/* Checks a layout: ids in [0, n_vocab) (n_vocab 0: any id >= 0), negatives count == n_rows. */
gboolean gst_lfm2_embd_layout_check (const gint32 * layout, gint n_layout, gint n_rows,
    gint n_vocab, GError ** error);

G_END_DECLS

#endif /* GST_LFM2_TENSORS_H */
