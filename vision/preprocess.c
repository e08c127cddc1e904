/* preprocess.c — LFM2-VL image preprocessing: smart resize, tiling decision, grid choice,
 * resampling (two filters), letterbox, thumbnail.
 *
 * Two rule sets live side by side (see lfm2-vision.h):
 *   OFFICIAL  = transformers' Lfm2VlImageProcessorFast (Python floats, banker's rounding,
 *               area-based tiling test, stretched tiles, antialiased bilinear);
 *   LLAMACPP  = llama.cpp mtmd (float32 math, half-away rounding, per-side tiling test,
 *               letterboxed tiles, corner-aligned truncating bilinear).
 *
 * Why the resamplers are our own and not libswscale: neither filter is one swscale has.
 * mtmd's bilinear maps destination x to x·(src_w−1)/(dst_w−1) (corner-aligned, measured on
 * the fixtures) with float32 lerps and truncation to uint8; swscale's SWS_BILINEAR is
 * centre-aligned, widens its filter when shrinking and rounds 14-bit fixed-point
 * coefficients, so its pixels differ by several levels and the embeddings move by more
 * than the parity tolerance. The official path is PIL's / torchvision's antialiased
 * triangle filter (support scaled by the shrink factor, weights renormalized at the
 * borders, 22-bit fixed point, horizontal pass first); swscale's bilinear is close but
 * neither centred nor normalized the same way at the edges. libswscale is used where it is
 * exact: converting decoded frames of other pixel formats to RGB24 (image.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vision-impl.h"

int lfm2_vision_preprocess_from_name(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "official") || !strcmp(name, "hf") || !strcmp(name, "transformers"))
        return LFM2_VISION_PREPROCESS_OFFICIAL;
    if (!strcmp(name, "llamacpp") || !strcmp(name, "llama.cpp") || !strcmp(name, "mtmd"))
        return LFM2_VISION_PREPROCESS_LLAMACPP;
    return -1;
}

const char *lfm2_vision_preprocess_name(enum lfm2_vision_preprocess mode)
{
    return mode == LFM2_VISION_PREPROCESS_LLAMACPP ? "llamacpp" : "official";
}

int lfm2_vision_resample_from_name(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "auto"))
        return LFM2_VISION_RESAMPLE_AUTO;
    if (!strcmp(name, "bilinear"))
        return LFM2_VISION_RESAMPLE_BILINEAR;
    if (!strcmp(name, "bicubic"))
        return LFM2_VISION_RESAMPLE_BICUBIC;
    return -1;
}

const char *lfm2_vision_resample_name(enum lfm2_vision_resample r)
{
    return r == LFM2_VISION_RESAMPLE_BICUBIC ? "bicubic"
           : r == LFM2_VISION_RESAMPLE_BILINEAR ? "bilinear" : "auto";
}

/* ---- smart resize ---------------------------------------------------------------------- */

void lfm2_vision_smart_resize(enum lfm2_vision_preprocess mode, int width, int height,
                              int align, int64_t min_px, int64_t max_px, int *out_w,
                              int *out_h)
{
    int hb, wb;
    const int64_t area = (int64_t)width * height;
    if (mode == LFM2_VISION_PREPROCESS_LLAMACPP) {
        /* mtmd calc_size_preserved_ratio: every step in float32, std::round = half away
         * from zero (80 px → 96, where Python gives 64). */
        const float fa = (float)align;
        hb = (int)roundf((float)height / fa) * align;
        wb = (int)roundf((float)width / fa) * align;
        if (hb < align)
            hb = align;
        if (wb < align)
            wb = align;
        if ((int64_t)hb * wb > max_px) {
            const float beta = sqrtf((float)area / (float)max_px);
            hb = (int)floorf(((float)height / beta) / fa) * align;
            wb = (int)floorf(((float)width / beta) / fa) * align;
            if (hb < align)
                hb = align;
            if (wb < align)
                wb = align;
        } else if ((int64_t)hb * wb < min_px) {
            const float beta = sqrtf((float)min_px / (float)area);
            hb = (int)ceilf(((float)height * beta) / fa) * align;
            wb = (int)ceilf(((float)width * beta) / fa) * align;
        }
    } else {
        /* transformers smart_resize: Python floats (double), round() is half-to-even —
         * rint() in the default rounding mode. */
        const double da = align;
        hb = (int)rint(height / da) * align;
        wb = (int)rint(width / da) * align;
        if (hb < align)
            hb = align;
        if (wb < align)
            wb = align;
        if ((int64_t)hb * wb > max_px) {
            const double beta = sqrt((double)area / (double)max_px);
            hb = (int)floor(height / beta / da) * align;
            wb = (int)floor(width / beta / da) * align;
            if (hb < align)
                hb = align;
            if (wb < align)
                wb = align;
        } else if ((int64_t)hb * wb < min_px) {
            const double beta = sqrt((double)min_px / (double)area);
            hb = (int)ceil(height * beta / da) * align;
            wb = (int)ceil(width * beta / da) * align;
        }
    }
    *out_w = wb;
    *out_h = hb;
}

/* ---- grid choice (identical algorithm in both; float32 in mtmd, double in Python) ------ */

struct grid { int w, h; };

/* Candidate grids: n = min..max tiles, w, h = 1..n with min ≤ w·h ≤ max, de-duplicated,
 * sorted by area keeping insertion order inside an area (Python's sorted is stable;
 * mtmd's std::sort is not, but two grids of equal area never tie for the best aspect
 * difference unless a squarer grid beats both — so the order inside an area is moot). */
static int target_grids(int min_tiles, int max_tiles, struct grid *out, int cap)
{
    int n_out = 0;
    for (int n = min_tiles; n <= max_tiles; n++)
        for (int w = 1; w <= n; w++)
            for (int h = 1; h <= n; h++) {
                if (w * h < min_tiles || w * h > max_tiles)
                    continue;
                bool seen = false;
                for (int i = 0; i < n_out && !seen; i++)
                    seen = out[i].w == w && out[i].h == h;
                if (!seen && n_out < cap)
                    out[n_out++] = (struct grid){ w, h };
            }
    /* stable insertion sort by area */
    for (int i = 1; i < n_out; i++) {
        struct grid g = out[i];
        int j = i - 1;
        while (j >= 0 && out[j].w * out[j].h > g.w * g.h) {
            out[j + 1] = out[j];
            j--;
        }
        out[j + 1] = g;
    }
    return n_out;
}

static struct grid choose_grid(enum lfm2_vision_preprocess mode, int width, int height,
                               int min_tiles, int max_tiles)
{
    struct grid cand[512];
    const int n = target_grids(min_tiles, max_tiles, cand, 512);
    struct grid best = { 1, 1 };
    const int64_t t2 = (int64_t)LFM2_VISION_TILE_SIZE * LFM2_VISION_TILE_SIZE;
    if (mode == LFM2_VISION_PREPROCESS_LLAMACPP) {
        const float aspect = (float)width / (float)height;
        const float area = (float)((int64_t)width * height);
        float best_diff = 3.402823466e+38f;
        for (int i = 0; i < n; i++) {
            const float diff = fabsf(aspect - (float)cand[i].w / (float)cand[i].h);
            if (diff < best_diff) {
                best_diff = diff;
                best = cand[i];
            } else if (diff == best_diff) {
                /* equally close: the larger grid wins when the picture fills half of it */
                if (area > 0.5f * (float)(t2 * cand[i].w * cand[i].h))
                    best = cand[i];
            }
        }
    } else {
        const double aspect = (double)width / (double)height;
        const double area = (double)width * (double)height;
        double best_diff = INFINITY;
        for (int i = 0; i < n; i++) {
            const double diff = fabs(aspect - (double)cand[i].w / (double)cand[i].h);
            if (diff < best_diff) {
                best_diff = diff;
                best = cand[i];
            } else if (diff == best_diff) {
                if (area > 0.5 * (double)(t2 * cand[i].w * cand[i].h))
                    best = cand[i];
            }
        }
    }
    return best;
}

/* ---- the plan ---------------------------------------------------------------------------- */

int lfm2_vision_make_plan(const struct lfm2_vision_params *p, int patch, int merge, int width,
                          int height, struct lfm2_vision_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (width < 1 || height < 1 || width > LFM2_VISION_MAX_SIDE || height > LFM2_VISION_MAX_SIDE)
        return lfm2_set_error("image size %d×%d is outside 1×1 … %d×%d", width, height,
                              LFM2_VISION_MAX_SIDE, LFM2_VISION_MAX_SIDE);
    if (patch < 1 || merge < 1 || LFM2_VISION_TILE_SIZE % (patch * merge) != 0)
        return lfm2_set_error("patch size %d × merge %d does not divide the %d-pixel tile",
                              patch, merge, LFM2_VISION_TILE_SIZE);
    if (p->min_image_tokens < 1 || p->max_image_tokens < p->min_image_tokens ||
        p->max_image_tokens > 16384)
        return lfm2_set_error("image token limits %d..%d are invalid (need 1 <= min <= max <= 16384)",
                              p->min_image_tokens, p->max_image_tokens);
    if (p->do_tiling && (p->min_tiles < 1 || p->max_tiles < p->min_tiles || p->max_tiles > 100))
        return lfm2_set_error("tile limits %d..%d are invalid (need 1 <= min <= max <= 100)",
                              p->min_tiles, p->max_tiles);
    if (!(p->max_pixels_tolerance > 0.0f) || !(p->max_pixels_tolerance < 1e6f))
        return lfm2_set_error("max_pixels_tolerance %g must be a positive number",
                              (double)p->max_pixels_tolerance);
    if (p->resample != LFM2_VISION_RESAMPLE_AUTO && p->resample != LFM2_VISION_RESAMPLE_BILINEAR &&
        p->resample != LFM2_VISION_RESAMPLE_BICUBIC)
        return lfm2_set_error("resample %d is not supported (2 = bilinear, 3 = bicubic)",
                              (int)p->resample);

    const enum lfm2_vision_preprocess mode = p->preprocess == LFM2_VISION_PREPROCESS_LLAMACPP
                                                 ? LFM2_VISION_PREPROCESS_LLAMACPP
                                                 : LFM2_VISION_PREPROCESS_OFFICIAL;
    const int align = patch * merge;
    const int64_t min_px = (int64_t)p->min_image_tokens * align * align;
    const int64_t max_px = (int64_t)p->max_image_tokens * align * align;
    const int T = LFM2_VISION_TILE_SIZE;

    plan->mode = mode;
    plan->src_w = width;
    plan->src_h = height;
    plan->patch_size = patch;
    plan->merge = merge;
    plan->resample = mode == LFM2_VISION_PREPROCESS_OFFICIAL &&
                             p->resample == LFM2_VISION_RESAMPLE_BICUBIC
                         ? LFM2_VISION_RESAMPLE_BICUBIC
                         : LFM2_VISION_RESAMPLE_BILINEAR;
    lfm2_vision_smart_resize(mode, width, height, align, min_px, max_px, &plan->thumb_w,
                             &plan->thumb_h);

    bool tiled = false;
    if (p->do_tiling) {
        if (mode == LFM2_VISION_PREPROCESS_LLAMACPP) {
            /* mtmd: a side longer than tile·tolerance (1024 px: exactly 1024 stays whole) */
            const float lim = (float)T * p->max_pixels_tolerance;
            tiled = (float)width > lim || (float)height > lim;
        } else if (!(p->min_tiles == 1 && p->max_tiles == 1)) {
            /* transformers _is_image_too_large: rounded area against the token budget ×
             * tolerance; note the floor is the patch size here, not the alignment */
            int hb = (int)rint(height / (double)align) * align;
            int wb = (int)rint(width / (double)align) * align;
            if (hb < patch)
                hb = patch;
            if (wb < patch)
                wb = patch;
            tiled = (double)hb * wb > (double)max_px * p->max_pixels_tolerance;
        }
    }

    plan->tile_tokens = (T / align) * (T / align);
    struct grid g = { 0, 0 };
    if (tiled)
        g = choose_grid(mode, width, height, p->min_tiles, p->max_tiles);
    if (tiled && mode == LFM2_VISION_PREPROCESS_OFFICIAL && g.w * g.h == 1) {
        /* min_tiles 1 and the 1×1 grid won: transformers stretches the picture into one
         * 512² tile (tile_tokens features) but its text counts the smart-resize size as a
         * single image. Equal counts: that single image at 512×512. Else its model refuses. */
        const int text_tokens = (plan->thumb_w / align) * (plan->thumb_h / align);
        if (text_tokens != plan->tile_tokens)
            return lfm2_set_error(
                "%d×%d with min_tiles %d, max_pixels_tolerance %g: transformers' processor "
                "stretches this picture into one %d×%d tile (%d image features) but gives its "
                "text %d image tokens (the %d×%d single-image size), and its model refuses the "
                "mismatch; use min_tiles 2 (or more), no tiling, or another tolerance",
                width, height, p->min_tiles, (double)p->max_pixels_tolerance, T, T,
                plan->tile_tokens, text_tokens, plan->thumb_w, plan->thumb_h);
        tiled = false;
        plan->thumb_w = plan->thumb_h = T;
    }
    if (tiled) {
        plan->tiled = true;
        plan->n_cols = g.w;
        plan->n_rows = g.h;
        plan->refined_w = T * g.w;
        plan->refined_h = T * g.h;
        if (mode == LFM2_VISION_PREPROCESS_LLAMACPP) {
            /* mtmd resizes into the canvas keeping the aspect, centred on black */
            const float sw = (float)plan->refined_w / (float)width;
            const float sh = (float)plan->refined_h / (float)height;
            const float s = sw < sh ? sw : sh;
            int nw = (int)ceilf((float)width * s), nh = (int)ceilf((float)height * s);
            if (nw > plan->refined_w)
                nw = plan->refined_w;
            if (nh > plan->refined_h)
                nh = plan->refined_h;
            if (nw < 1)
                nw = 1;
            if (nh < 1)
                nh = 1;
            plan->content_w = nw;
            plan->content_h = nh;
            plan->content_x = (plan->refined_w - nw) / 2;
            plan->content_y = (plan->refined_h - nh) / 2;
            plan->has_thumb = true;
        } else {
            plan->content_w = plan->refined_w;
            plan->content_h = plan->refined_h;
            plan->has_thumb = p->use_thumbnail && g.w * g.h != 1;
        }
    } else {
        plan->has_thumb = true;   /* the single image */
    }

    const int n_tiles = plan->n_cols * plan->n_rows;
    plan->thumb_tokens = plan->has_thumb ? (plan->thumb_w / align) * (plan->thumb_h / align) : 0;
    plan->n_chunks = n_tiles + (plan->has_thumb ? 1 : 0);
    plan->n_tokens = n_tiles * plan->tile_tokens + plan->thumb_tokens;
    /* <|image_start|> … <|image_end|>, one marker per tile, <|img_thumbnail|> before the
     * thumbnail (and, in mtmd, before a single untiled image too) */
    int n_markers = 2 + n_tiles;
    if (plan->has_thumb && (tiled || mode == LFM2_VISION_PREPROCESS_LLAMACPP))
        n_markers += 1;
    plan->n_layout = plan->n_tokens + n_markers;
    return 0;
}

int lfm2_vision_plan_chunk(const struct lfm2_vision_plan *plan, int i, int *w, int *h,
                           int *n_tokens, int *row, int *col)
{
    const int n_tiles = plan->n_cols * plan->n_rows;
    if (i < 0 || i >= plan->n_chunks)
        return -1;
    if (i < n_tiles) {
        if (w)
            *w = LFM2_VISION_TILE_SIZE;
        if (h)
            *h = LFM2_VISION_TILE_SIZE;
        if (n_tokens)
            *n_tokens = plan->tile_tokens;
        if (row)
            *row = i / plan->n_cols + 1;
        if (col)
            *col = i % plan->n_cols + 1;
    } else {
        if (w)
            *w = plan->thumb_w;
        if (h)
            *h = plan->thumb_h;
        if (n_tokens)
            *n_tokens = plan->thumb_tokens;
        if (row)
            *row = 0;
        if (col)
            *col = 0;
    }
    return 0;
}

/* ---- resamplers ------------------------------------------------------------------------- */

static void copy_rows(const uint8_t *src, size_t src_stride, uint8_t *dst, size_t dst_stride,
                      int w, int h)
{
    for (int y = 0; y < h; y++)
        memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)w * 3);
}

int lfm2_vision_resize_bilinear_mtmd(const uint8_t *src, int sw, int sh, size_t sstride,
                                     uint8_t *dst, int dw, int dh, size_t dstride)
{
    if (sw == dw && sh == dh) {
        copy_rows(src, sstride, dst, dstride, dw, dh);
        return 0;
    }
    /* Corner-aligned: the first and last destination pixels sit on the first and last
     * source pixels. A 1-pixel side (mtmd asserts ≥ 2) is replicated instead. */
    const float xr = dw > 1 ? (float)(sw - 1) / (float)(dw - 1) : 0.0f;
    const float yr = dh > 1 ? (float)(sh - 1) / (float)(dh - 1) : 0.0f;
    const int xmax0 = sw >= 2 ? sw - 2 : 0, ymax0 = sh >= 2 ? sh - 2 : 0;
    for (int y = 0; y < dh; y++) {
        const float py = yr * (float)y;
        int y0 = (int)py;
        if (y0 > ymax0)
            y0 = ymax0;
        const int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        const float fy = py - (float)y0;
        const uint8_t *r0 = src + (size_t)y0 * sstride, *r1 = src + (size_t)y1 * sstride;
        uint8_t *out = dst + (size_t)y * dstride;
        for (int x = 0; x < dw; x++) {
            const float px = xr * (float)x;
            int x0 = (int)px;
            if (x0 > xmax0)
                x0 = xmax0;
            const int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            const float fx = px - (float)x0;
            for (int c = 0; c < 3; c++) {
                const float a = r0[3 * x0 + c], b = r0[3 * x1 + c];
                const float d = r1[3 * x0 + c], e = r1[3 * x1 + c];
                const float top = a + (b - a) * fx;
                const float bot = d + (e - d) * fx;
                float v = top + (bot - top) * fy;
                /* truncation like mtmd's static_cast<uint8_t>; the clamp only catches
                 * a last-ulp excursion past the ends */
                if (v < 0.0f)
                    v = 0.0f;
                if (v > 255.0f)
                    v = 255.0f;
                out[3 * x + c] = (uint8_t)v;
            }
        }
    }
    return 0;
}

/* Pillow's ImagingResample, for its BILINEAR and BICUBIC filters. Per axis (in → out),
 * scale = in/out and the filter support is widened by max(scale, 1); output pixel i is
 * centred on (i + ½)·scale and takes inputs [xmin, xmin + xcnt) with weights
 * f((x − centre + ½) / max(scale, 1)), normalized to sum 1 and rounded to 22-bit fixed point.
 * The horizontal pass writes 8-bit rows (rounded, clamped), the vertical pass reads them. */
#define AA_PRECISION 22

struct pil_filter {
    double support;
    double (*f)(double x);
};

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = −0.5 (Pillow's bicubic_filter) */
static double keys_cubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

static struct pil_filter pil_filter(enum lfm2_vision_resample r)
{
    if (r == LFM2_VISION_RESAMPLE_BICUBIC)
        return (struct pil_filter){ 2.0, keys_cubic };
    return (struct pil_filter){ 1.0, triangle };
}

static int aa_ksize(struct pil_filter flt, int in, int out)
{
    const double scale = (double)in / out;
    return (int)ceil(flt.support * (scale > 1.0 ? scale : 1.0)) * 2 + 1;
}

static void aa_coeffs(struct pil_filter flt, int in, int out, int ksize, int32_t *bounds,
                      int32_t *kk)
{
    const double scale = (double)in / out;
    const double filterscale = scale > 1.0 ? scale : 1.0;
    const double support = flt.support * filterscale;
    const double ss = 1.0 / filterscale;
    double w[1024];
    for (int xx = 0; xx < out; xx++) {
        const double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in)
            xmax = in;
        int xcnt = xmax - xmin;
        if (xcnt > ksize)
            xcnt = ksize;
        double ww = 0.0;
        for (int x = 0; x < xcnt; x++) {
            const double f = flt.f((x + xmin - center + 0.5) * ss);
            if (x < 1024)
                w[x] = f;
            ww += f;
        }
        int32_t *k = kk + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double f = 0.0;
            if (x < xcnt) {
                f = x < 1024 ? w[x] : flt.f((x + xmin - center + 0.5) * ss);
                if (ww != 0.0)
                    f /= ww;
            }
            k[x] = f < 0 ? (int32_t)(-0.5 + f * (1 << AA_PRECISION))
                         : (int32_t)(0.5 + f * (1 << AA_PRECISION));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xcnt;
    }
}

/* Pillow's clip8: the sum (with its ½ rounding term) shifted down, clamped to 0..255 */
static inline uint8_t clip8(int32_t s)
{
    s >>= AA_PRECISION;
    return s < 0 ? 0 : s > 255 ? 255 : (uint8_t)s;
}

static void aa_row_h(const uint8_t *in, uint8_t *out, int dw, int ksize, const int32_t *bounds,
                     const int32_t *kk)
{
    for (int xx = 0; xx < dw; xx++) {
        const int xmin = bounds[2 * xx], xcnt = bounds[2 * xx + 1];
        const int32_t *k = kk + (size_t)xx * ksize;
        int32_t s0 = 1 << (AA_PRECISION - 1), s1 = s0, s2 = s0;
        const uint8_t *p = in + 3 * xmin;
        for (int x = 0; x < xcnt; x++) {
            s0 += p[3 * x] * k[x];
            s1 += p[3 * x + 1] * k[x];
            s2 += p[3 * x + 2] * k[x];
        }
        out[3 * xx] = clip8(s0);
        out[3 * xx + 1] = clip8(s1);
        out[3 * xx + 2] = clip8(s2);
    }
}

size_t lfm2_vision_resize_pil_tmp_size(enum lfm2_vision_resample r, int sw, int sh, int dw,
                                       int dh)
{
    const struct pil_filter flt = pil_filter(r);
    const size_t kh = (size_t)aa_ksize(flt, sw, dw), kv = (size_t)aa_ksize(flt, sh, dh);
    size_t n = 0;
    n += (size_t)dw * 2 * sizeof(int32_t) + (size_t)dw * kh * sizeof(int32_t);
    n += (size_t)dh * 2 * sizeof(int32_t) + (size_t)dh * kv * sizeof(int32_t);
    n += kv * sizeof(const uint8_t *);   /* row pointers of one output row's window */
    n += kv * (size_t)dw * 3;            /* ring of horizontally resampled rows */
    return n + 64;
}

int lfm2_vision_resize_pil(enum lfm2_vision_resample r, const uint8_t *src, int sw, int sh,
                           size_t sstride, uint8_t *dst, int dw, int dh, size_t dstride,
                           void *tmp)
{
    if (sw == dw && sh == dh) {
        copy_rows(src, sstride, dst, dstride, dw, dh);
        return 0;
    }
    void *owned = NULL;
    if (!tmp) {
        owned = malloc(lfm2_vision_resize_pil_tmp_size(r, sw, sh, dw, dh));
        if (!owned)
            return lfm2_set_error("out of memory resizing %d×%d to %d×%d", sw, sh, dw, dh);
        tmp = owned;
    }
    const struct pil_filter flt = pil_filter(r);
    const bool need_h = sw != dw, need_v = sh != dh;
    const int kh = aa_ksize(flt, sw, dw), kv = aa_ksize(flt, sh, dh);
    /* tmp layout: row pointers (pointer-aligned first), int32 coefficients, ring */
    const uint8_t **rp = tmp;
    int32_t *bh = (int32_t *)(rp + kv);
    int32_t *kkh = bh + 2 * (size_t)dw;
    int32_t *bv = kkh + (size_t)dw * kh;
    int32_t *kkv = bv + 2 * (size_t)dh;
    uint8_t *ring = (uint8_t *)(kkv + (size_t)dh * kv);
    if (need_h)
        aa_coeffs(flt, sw, dw, kh, bh, kkh);
    if (need_v)
        aa_coeffs(flt, sh, dh, kv, bv, kkv);

    if (!need_v) {
        for (int y = 0; y < dh; y++)
            aa_row_h(src + (size_t)y * sstride, dst + (size_t)y * dstride, dw, kh, bh, kkh);
        free(owned);
        return 0;
    }
    /* Vertical pass over horizontally resampled rows. PIL resamples every needed source
     * row horizontally into an intermediate uint8 image first; a ring of kv rows gives the
     * same values with memory bounded by the output width (source rows are consumed in
     * order because the windows only move down). */
    int next = 0;   /* next source row not yet in the ring */
    for (int yy = 0; yy < dh; yy++) {
        const int ymin = bv[2 * yy], ycnt = bv[2 * yy + 1];
        if (need_h) {
            if (next < ymin)
                next = ymin;
            for (; next < ymin + ycnt; next++)
                aa_row_h(src + (size_t)next * sstride, ring + (size_t)(next % kv) * dw * 3, dw,
                         kh, bh, kkh);
            for (int y = 0; y < ycnt; y++)
                rp[y] = ring + (size_t)((ymin + y) % kv) * dw * 3;
        } else {
            for (int y = 0; y < ycnt; y++)
                rp[y] = src + (size_t)(ymin + y) * sstride;
        }
        const int32_t *k = kkv + (size_t)yy * kv;
        uint8_t *out = dst + (size_t)yy * dstride;
        for (int xx = 0; xx < dw * 3; xx++) {
            int32_t s = 1 << (AA_PRECISION - 1);
            for (int y = 0; y < ycnt; y++)
                s += rp[y][xx] * k[y];
            out[xx] = clip8(s);
        }
    }
    free(owned);
    return 0;
}

/* ---- chunk pixels ------------------------------------------------------------------------ */

int lfm2_vision_grow(void **buf, size_t *cap, size_t n, size_t *total)
{
    if (*cap >= n)
        return 0;
    void *p = lfm2_alloc_aligned(n);
    if (!p)
        return -1;
    lfm2_free_aligned(*buf);
    if (total)
        *total += n - *cap;
    *buf = p;
    *cap = n;
    return 0;
}

static int resize_into(lfm2_vision *v, const struct lfm2_vision_plan *plan,
                       const struct lfm2_vision_image *img, uint8_t *dst, int dw, int dh,
                       size_t dstride)
{
    if (plan->mode == LFM2_VISION_PREPROCESS_LLAMACPP)
        return lfm2_vision_resize_bilinear_mtmd(img->data, img->width, img->height, img->stride,
                                                dst, dw, dh, dstride);
    size_t need = lfm2_vision_resize_pil_tmp_size(plan->resample, img->width, img->height, dw, dh);
    if (lfm2_vision_grow((void **)&v->rs_tmp, &v->rs_tmp_cap, need, &v->scratch_bytes))
        return -1;
    return lfm2_vision_resize_pil(plan->resample, img->data, img->width, img->height,
                                  img->stride, dst, dw, dh, dstride, v->rs_tmp);
}

static bool plan_matches(const lfm2_vision *v, const struct lfm2_vision_image *img,
                         const struct lfm2_vision_plan *plan)
{
    return plan->src_w == img->width && plan->src_h == img->height &&
           plan->mode == v->params.preprocess && plan->patch_size == v->hp.patch_size &&
           plan->merge == v->hp.merge;
}

/* Fills the tile canvas (i == 0) or the thumbnail (last chunk) and returns a view. Tiles
 * and thumbnails that are the source at its own size are views of the source itself. */
int lfm2_vision_prepare_chunk(lfm2_vision *v, const struct lfm2_vision_image *img,
                              const struct lfm2_vision_plan *plan, int i, const uint8_t **pix,
                              size_t *stride)
{
    if (!img || !img->data || img->width < 1 || img->height < 1 ||
        img->stride < (size_t)img->width * 3)
        return lfm2_set_error("invalid image (%d×%d, stride %zu)", img ? img->width : 0,
                              img ? img->height : 0, img ? img->stride : 0);
    if (!plan_matches(v, img, plan))
        return lfm2_set_error("the plan was made for a %d×%d picture in %s mode, not this %d×%d "
                              "one with this model", plan->src_w, plan->src_h,
                              lfm2_vision_preprocess_name(plan->mode), img->width, img->height);
    const int n_tiles = plan->n_cols * plan->n_rows;
    if (i < 0 || i >= plan->n_chunks)
        return lfm2_set_error("chunk %d out of range (%d chunks)", i, plan->n_chunks);
    if (i < n_tiles) {
        const bool direct = plan->content_x == 0 && plan->content_y == 0 &&
                            plan->content_w == plan->refined_w &&
                            plan->content_h == plan->refined_h &&
                            img->width == plan->refined_w && img->height == plan->refined_h;
        const uint8_t *base;
        size_t bstride;
        if (direct) {
            base = img->data;
            bstride = img->stride;
        } else {
            bstride = (size_t)plan->refined_w * 3;
            if (i == 0) {
                size_t need = bstride * plan->refined_h;
                if (lfm2_vision_grow((void **)&v->canvas, &v->canvas_cap, need, &v->scratch_bytes))
                    return -1;
                if (plan->content_w != plan->refined_w || plan->content_h != plan->refined_h)
                    memset(v->canvas, 0, need);   /* letterbox bands: RGB (0,0,0) */
                uint8_t *dst = v->canvas + (size_t)plan->content_y * bstride +
                               (size_t)plan->content_x * 3;
                if (resize_into(v, plan, img, dst, plan->content_w, plan->content_h, bstride))
                    return -1;
            }
            base = v->canvas;
        }
        const int r = i / plan->n_cols, c = i % plan->n_cols;
        *pix = base + (size_t)r * LFM2_VISION_TILE_SIZE * bstride +
               (size_t)c * LFM2_VISION_TILE_SIZE * 3;
        *stride = bstride;
        return 0;
    }
    if (img->width == plan->thumb_w && img->height == plan->thumb_h) {
        *pix = img->data;
        *stride = img->stride;
        return 0;
    }
    const size_t tstride = (size_t)plan->thumb_w * 3;
    if (lfm2_vision_grow((void **)&v->thumb, &v->thumb_cap, tstride * plan->thumb_h,
                         &v->scratch_bytes))
        return -1;
    if (resize_into(v, plan, img, v->thumb, plan->thumb_w, plan->thumb_h, tstride))
        return -1;
    *pix = v->thumb;
    *stride = tstride;
    return 0;
}

int lfm2_vision_chunk_pixels(lfm2_vision *v, const struct lfm2_vision_image *img,
                             const struct lfm2_vision_plan *plan, int i, uint8_t *out)
{
    int w, h;
    if (lfm2_vision_plan_chunk(plan, i, &w, &h, NULL, NULL, NULL))
        return lfm2_set_error("chunk %d out of range (%d chunks)", i, plan->n_chunks);
    const int n_tiles = plan->n_cols * plan->n_rows;
    const uint8_t *pix;
    size_t stride;
    /* tiles other than the first need the canvas that chunk 0 prepares */
    if (i > 0 && i < n_tiles && lfm2_vision_prepare_chunk(v, img, plan, 0, &pix, &stride))
        return -1;
    if (lfm2_vision_prepare_chunk(v, img, plan, i, &pix, &stride))
        return -1;
    copy_rows(pix, stride, out, (size_t)w * 3, w, h);
    return 0;
}
