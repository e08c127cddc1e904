/* gstlfm2vision.h — the vision helpers lfm2vl and lfm2vlenc share:
 *
 *   - the `preprocess` and `resample` enums and the image properties both elements expose
 *     (n-threads, min/max-image-tokens, do-tiling, preprocess, min/max-tiles,
 *     max-pixels-tolerance, use-thumbnail, resample, preprocessor-config),
 *   - the video caps both elements accept (every raw format, 1×1 … 8192×8192),
 *   - mmproj files through the model registry,
 *   - GstLfm2VisionEnc: any raw frame → RGB24 → plan → embeddings (+ the token layout), with
 *     all scratch allocated per negotiated size, never per frame.
 */
#ifndef GST_LFM2_VISION_H
#define GST_LFM2_VISION_H

#include <gst/gst.h>
#include <gst/video/video.h>

#include "gstlfm2model.h"
#include "lfm2-vision.h"

G_BEGIN_DECLS

typedef enum {
  GST_LFM2_PREPROCESS_OFFICIAL = LFM2_VISION_PREPROCESS_OFFICIAL,
  GST_LFM2_PREPROCESS_LLAMACPP = LFM2_VISION_PREPROCESS_LLAMACPP,
} GstLfm2Preprocess;

#define GST_TYPE_LFM2_PREPROCESS (gst_lfm2_preprocess_get_type ())
GType gst_lfm2_preprocess_get_type (void);

typedef enum {
  GST_LFM2_RESAMPLE_AUTO = LFM2_VISION_RESAMPLE_AUTO,
  GST_LFM2_RESAMPLE_BILINEAR = LFM2_VISION_RESAMPLE_BILINEAR,
  GST_LFM2_RESAMPLE_BICUBIC = LFM2_VISION_RESAMPLE_BICUBIC,
} GstLfm2Resample;

#define GST_TYPE_LFM2_RESAMPLE (gst_lfm2_resample_get_type ())
GType gst_lfm2_resample_get_type (void);

/* Largest accepted picture side. The RGB copy of a frame is W×H×3 bytes (8192² → 192 MiB);
 * the encoder itself works on at most max_tiles 512² tiles whatever the input size. */
#define GST_LFM2_VISION_MAX_SIDE 8192

/* The video caps both elements accept: every raw format (GstVideoConverter turns each into
 * RGB), 1×1 … 8192×8192, any frame rate. The cheap 8-bit formats come first (4:2:0, 4:2:2,
 * then RGB), so a peer that could produce anything (videotestsrc) picks one of them. Returns a
 * new reference. */
GstCaps *gst_lfm2_vision_video_caps (void);

/* The answer to a CAPS query on a video sink pad: these caps, restricted to what the peer of
 * `downstream` accepts (the pass-through src pad; NULL for none), then to `filter`, in that
 * order of preference. The default handler puts the filter's order first, and upstream's
 * filter is its own format list: a source that can produce anything would pick its own
 * first format instead of a cheap one. Returns a new reference. */
GstCaps *gst_lfm2_vision_query_caps (GstPad * downstream, GstCaps * filter);

/* Registry kind of mmproj files. The loaded object depends on the preprocessing mode and the
 * encoder's thread count, so both are part of the kind ("lfm2-mmproj/official/t2"). */
#define GST_LFM2_KIND_MMPROJ "lfm2-mmproj"

/* A loaded mmproj. lfm2_vision keeps scratch buffers, so one encode at a time: take `lock`. */
typedef struct {
  lfm2_vision *vision;
  GMutex lock;
} GstLfm2Mmproj;

/* gst_lfm2_shared_acquire() for an mmproj file. Errors name the file and the reason. */
GstLfm2Shared *gst_lfm2_mmproj_acquire (const gchar * path, GstLfm2Preprocess mode,
    gint n_threads, GError ** error);

static inline GstLfm2Mmproj *
gst_lfm2_shared_mmproj (GstLfm2Shared * shared)
{
  return (GstLfm2Mmproj *) gst_lfm2_shared_get (shared);
}

/* Planning settings of an element as the application set them. The image settings in
 * force are: the defaults, the mmproj's resample, the preprocessor-config file, then the
 * properties the application set explicitly (`explicit_set`). */
typedef struct {
  gint n_threads;
  gint min_image_tokens;
  gint max_image_tokens;
  gboolean do_tiling;
  GstLfm2Preprocess preprocess;
  gint min_tiles;
  gint max_tiles;
  gfloat max_pixels_tolerance;
  gboolean use_thumbnail;
  GstLfm2Resample resample;
  gchar *preprocessor_config;
  guint explicit_set;           /* LFM2_VISION_CFG_* of the properties set */
} GstLfm2VisionSettings;

#define GST_LFM2_VISION_DEFAULT_N_THREADS 0
#define GST_LFM2_VISION_DEFAULT_MIN_IMAGE_TOKENS 64
#define GST_LFM2_VISION_DEFAULT_MAX_IMAGE_TOKENS 256
#define GST_LFM2_VISION_DEFAULT_DO_TILING TRUE
#define GST_LFM2_VISION_DEFAULT_PREPROCESS GST_LFM2_PREPROCESS_OFFICIAL
#define GST_LFM2_VISION_DEFAULT_MIN_TILES 2
#define GST_LFM2_VISION_DEFAULT_MAX_TILES 10
#define GST_LFM2_VISION_DEFAULT_MAX_PIXELS_TOLERANCE 2.0f
#define GST_LFM2_VISION_DEFAULT_USE_THUMBNAIL TRUE
#define GST_LFM2_VISION_DEFAULT_RESAMPLE GST_LFM2_RESAMPLE_AUTO

void gst_lfm2_vision_settings_init (GstLfm2VisionSettings * s);
/* A copy that owns its strings (for use without the object lock); clear it after. */
void gst_lfm2_vision_settings_copy (GstLfm2VisionSettings * dst,
    const GstLfm2VisionSettings * src);
void gst_lfm2_vision_settings_clear (GstLfm2VisionSettings * s);

/* The number of image properties gst_lfm2_vision_install_properties installs. */
#define GST_LFM2_VISION_N_PROPS 11

/* Both elements expose the same image properties with property ids first … first + 10:
 * n-threads, min-image-tokens, max-image-tokens, do-tiling, preprocess, min-tiles,
 * max-tiles, max-pixels-tolerance, use-thumbnail, resample, preprocessor-config (settable in
 * READY). lfm2vl leaves n-threads out (with_n_threads FALSE): its base class has one for
 * encoder and decoder. */
void gst_lfm2_vision_install_properties (GObjectClass * gobject_class, guint first_prop,
    gboolean with_n_threads);
/* FALSE if prop_id is not one of them. Call with the object lock held. */
gboolean gst_lfm2_vision_settings_set_property (GstLfm2VisionSettings * s, guint prop_id,
    guint first_prop, const GValue * value);
gboolean gst_lfm2_vision_settings_get_property (const GstLfm2VisionSettings * s,
    guint prop_id, guint first_prop, GValue * value);

/* Most plans an encoder keeps for one frame size (the settings' plan and the cheaper ones a
 * caption budget may fall back to). */
#define GST_LFM2_VISION_MAX_RUNGS 8

/* The image encoder of one element, used by one thread at a time. */
typedef struct {
  GstLfm2Shared *mmproj;              /* registry entry (start … stop) */
  const lfm2_model *text;             /* for the token layout; NULL = rows only */
  struct lfm2_vision_params params;   /* planning parameters */
  gint n_embd;                        /* projector output width */

  /* per negotiated video info (gst_lfm2_vision_enc_set_info) */
  gboolean configured;
  GstVideoInfo in_info;
  GstVideoConverter *conv;            /* NULL when the frames are RGB already */
  GstVideoInfo rgb_info;
  GstBuffer *rgb_buf;                 /* conversion target, reused for every frame */
  struct lfm2_vision_plan plan;       /* the plan in use: rungs[rung] */
  gint32 *layout;                     /* plan's token layout (NULL without a text model) */
  gint n_layout;

  /* The plans for this frame size, most image tokens first: rung 0 is the settings' plan;
   * with `ladder` set (before set_info) the untiled plans at max-image-tokens, then half
   * that … down to min-image-tokens follow, each with fewer tokens than the one before. */
  gboolean ladder;
  gint n_rungs, rung;
  struct lfm2_vision_plan rungs[GST_LFM2_VISION_MAX_RUNGS];
  gint32 *rung_layouts[GST_LFM2_VISION_MAX_RUNGS];
  gint rung_n_layouts[GST_LFM2_VISION_MAX_RUNGS];

  gdouble last_encode_ms;             /* conversion + preprocessing + encoder, last frame */
} GstLfm2VisionEnc;

/* Reads the preprocessor-config file and applies the explicit properties over it: the
 * lfm2_vision_params of these settings (resample AUTO still to be resolved with the mmproj).
 * *cfg gets what the file held. Errors (GST_RESOURCE_ERROR) name the file and the field. */
gboolean gst_lfm2_vision_settings_resolve (const GstLfm2VisionSettings * s,
    struct lfm2_vision_params *params, struct lfm2_vision_config *cfg, GError ** error);

/* Takes the mmproj from the registry and checks the planning settings (and, with a text
 * model, that the projector feeds it). Errors in the GST_RESOURCE_ERROR domain. */
gboolean gst_lfm2_vision_enc_start (GstLfm2VisionEnc * enc, const gchar * mmproj_path,
    const lfm2_model * text, const GstLfm2VisionSettings * settings, GError ** error);
void gst_lfm2_vision_enc_stop (GstLfm2VisionEnc * enc);

/* Prepares for frames of this format and size: converter, RGB scratch, plan and layout. */
gboolean gst_lfm2_vision_enc_set_info (GstLfm2VisionEnc * enc, const GstVideoInfo * info,
    GError ** error);

/* Makes rung i (0 … n_rungs − 1) the plan in use. */
void gst_lfm2_vision_enc_select (GstLfm2VisionEnc * enc, gint i);

/* Rows of one frame: plan.n_tokens × n_embd floats. */
static inline gsize
gst_lfm2_vision_enc_n_floats (const GstLfm2VisionEnc * enc)
{
  return (gsize) enc->plan.n_tokens * (gsize) enc->n_embd;
}

/* Converts `frame` (of the configured info) to RGB and encodes it into `out` (cap floats,
 * at least gst_lfm2_vision_enc_n_floats()). Errors in the GST_STREAM_ERROR domain. */
gboolean gst_lfm2_vision_enc_encode (GstLfm2VisionEnc * enc, GstBuffer * frame,
    gfloat * out, gsize cap, GError ** error);

G_END_DECLS

#endif /* GST_LFM2_VISION_H */
