/* image.c — decoding image files to RGB24 with libavformat/libavcodec.
 *
 * Conversions are exact where a picture already holds RGB or grey samples (alpha dropped,
 * grey replicated, 16-bit samples keep their high byte, palettes looked up) — the same
 * values stb_image gives llama.cpp for PNG/PPM. Only YUV and other formats go through
 * libswscale (full-range aware, accurate rounding).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "vision-impl.h"

#define MAX_DECODE_SIDE 16384   /* a decoded picture larger than this is refused */

static const char *averr(int e, char *buf, size_t n)
{
    av_strerror(e, buf, n);
    return buf;
}

/* RGB or grey formats whose samples can be read exactly, component by component. */
static bool direct_format(const AVPixFmtDescriptor *d)
{
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM |
                           AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_FLOAT)))
        return false;
    if (d->log2_chroma_w || d->log2_chroma_h)
        return false;
    const bool rgb = (d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3;
    const bool grey = !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components <= 2;
    if (!rgb && !grey)
        return false;
    for (int c = 0; c < (rgb ? 3 : 1); c++)
        if (d->comp[c].depth != 8 && d->comp[c].depth != 16)
            return false;
    return true;
}

static int convert_frame(const AVFrame *f, uint8_t *rgb, const char *path)
{
    const int w = f->width, h = f->height;
    const size_t stride = (size_t)w * 3;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    if (f->format == AV_PIX_FMT_RGB24) {
        for (int y = 0; y < h; y++)
            memcpy(rgb + y * stride, f->data[0] + (size_t)y * f->linesize[0], stride);
        return 0;
    }
    if (f->format == AV_PIX_FMT_PAL8) {
        const uint32_t *pal = (const uint32_t *)f->data[1];   /* native-endian 0xAARRGGBB */
        for (int y = 0; y < h; y++) {
            const uint8_t *s = f->data[0] + (size_t)y * f->linesize[0];
            uint8_t *o = rgb + y * stride;
            for (int x = 0; x < w; x++) {
                const uint32_t c = pal[s[x]];
                o[3 * x] = (uint8_t)(c >> 16);
                o[3 * x + 1] = (uint8_t)(c >> 8);
                o[3 * x + 2] = (uint8_t)c;
            }
        }
        return 0;
    }
    if (direct_format(d)) {
        const bool rgbfmt = d->flags & AV_PIX_FMT_FLAG_RGB;
        uint16_t *line = malloc(sizeof *line * (size_t)w);
        if (!line)
            return lfm2_set_error("%s: out of memory", path);
        const uint8_t *planes[4] = { f->data[0], f->data[1], f->data[2], f->data[3] };
        for (int y = 0; y < h; y++) {
            uint8_t *o = rgb + y * stride;
            for (int c = 0; c < (rgbfmt ? 3 : 1); c++) {
                av_read_image_line2(line, planes, f->linesize, d, 0, y, c, w, 0, 2);
                const int shift = d->comp[c].depth - 8;
                for (int x = 0; x < w; x++) {
                    const uint8_t v = (uint8_t)(line[x] >> shift);
                    if (rgbfmt) {
                        o[3 * x + c] = v;
                    } else {
                        o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = v;
                    }
                }
            }
        }
        free(line);
        return 0;
    }
    /* YUV and the rest: libswscale, honouring the frame's range and matrix */
    struct SwsContext *sws = sws_getContext(w, h, (enum AVPixelFormat)f->format, w, h,
                                            AV_PIX_FMT_RGB24,
                                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT |
                                                SWS_FULL_CHR_H_INP,
                                            NULL, NULL, NULL);
    if (!sws)
        return lfm2_set_error("%s: cannot convert pixel format %s to RGB", path,
                              d ? d->name : "?");
    int full_range = f->color_range == AVCOL_RANGE_JPEG;
    if (f->format == AV_PIX_FMT_YUVJ420P || f->format == AV_PIX_FMT_YUVJ422P ||
        f->format == AV_PIX_FMT_YUVJ444P || f->format == AV_PIX_FMT_YUVJ440P ||
        f->format == AV_PIX_FMT_YUVJ411P)
        full_range = 1;
    int cs = f->colorspace;
    if (cs == AVCOL_SPC_UNSPECIFIED || cs == AVCOL_SPC_RGB || cs >= AVCOL_SPC_NB)
        cs = SWS_CS_ITU601;
    sws_setColorspaceDetails(sws, sws_getCoefficients(cs), full_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    uint8_t *dst[4] = { rgb, NULL, NULL, NULL };
    int dst_ls[4] = { (int)stride, 0, 0, 0 };
    const int r = sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, h, dst, dst_ls);
    sws_freeContext(sws);
    if (r != h)
        return lfm2_set_error("%s: pixel conversion from %s failed", path, d ? d->name : "?");
    return 0;
}

int lfm2_vision_image_load(const char *path, struct lfm2_vision_image *out)
{
    char eb[128];
    memset(out, 0, sizeof *out);
    if (!path)
        return lfm2_set_error("lfm2_vision_image_load: no path");
    AVFormatContext *fmt = NULL;
    AVCodecContext *cc = NULL;
    AVPacket *pkt = NULL;
    AVFrame *frame = NULL;
    uint8_t *rgb = NULL;
    int ret = -1, e;

    if ((e = avformat_open_input(&fmt, path, NULL, NULL)) < 0) {
        lfm2_set_error("%s: cannot open image: %s", path, averr(e, eb, sizeof eb));
        goto done;
    }
    if ((e = avformat_find_stream_info(fmt, NULL)) < 0) {
        lfm2_set_error("%s: not a readable image: %s", path, averr(e, eb, sizeof eb));
        goto done;
    }
    const AVCodec *codec = NULL;
    const int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (si < 0 || !codec) {
        lfm2_set_error("%s: no picture found in the file (%s)", path,
                       si < 0 ? averr(si, eb, sizeof eb) : "no decoder");
        goto done;
    }
    cc = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!cc || !pkt || !frame) {
        lfm2_set_error("%s: out of memory", path);
        goto done;
    }
    if ((e = avcodec_parameters_to_context(cc, fmt->streams[si]->codecpar)) < 0 ||
        (e = avcodec_open2(cc, codec, NULL)) < 0) {
        lfm2_set_error("%s: cannot open the %s decoder: %s", path, codec->name,
                       averr(e, eb, sizeof eb));
        goto done;
    }
    /* decode the first picture */
    bool got = false, flushed = false;
    while (!got) {
        e = avcodec_receive_frame(cc, frame);
        if (e == 0) {
            got = true;
            break;
        }
        if (e != AVERROR(EAGAIN) || flushed) {
            lfm2_set_error("%s: cannot decode the picture: %s", path,
                           e == AVERROR_EOF ? "no complete picture in the file"
                                            : averr(e, eb, sizeof eb));
            goto done;
        }
        e = av_read_frame(fmt, pkt);
        if (e < 0) {
            avcodec_send_packet(cc, NULL);   /* end of file: drain the decoder */
            flushed = true;
            continue;
        }
        if (pkt->stream_index == si && (e = avcodec_send_packet(cc, pkt)) < 0 &&
            e != AVERROR(EAGAIN)) {
            av_packet_unref(pkt);
            lfm2_set_error("%s: cannot decode the picture: %s", path, averr(e, eb, sizeof eb));
            goto done;
        }
        av_packet_unref(pkt);
    }
    if (frame->width < 1 || frame->height < 1 || frame->width > MAX_DECODE_SIDE ||
        frame->height > MAX_DECODE_SIDE) {
        lfm2_set_error("%s: picture size %d×%d is outside 1×1 … %d×%d", path, frame->width,
                       frame->height, MAX_DECODE_SIDE, MAX_DECODE_SIDE);
        goto done;
    }
    rgb = malloc((size_t)frame->width * frame->height * 3);
    if (!rgb) {
        lfm2_set_error("%s: out of memory for a %d×%d picture", path, frame->width, frame->height);
        goto done;
    }
    if (convert_frame(frame, rgb, path))
        goto done;
    out->width = frame->width;
    out->height = frame->height;
    out->stride = (size_t)frame->width * 3;
    out->data = rgb;
    rgb = NULL;
    ret = 0;
done:
    free(rgb);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&cc);
    avformat_close_input(&fmt);
    return ret;
}

void lfm2_vision_image_free(struct lfm2_vision_image *img)
{
    if (!img)
        return;
    free((void *)img->data);
    memset(img, 0, sizeof *img);
}

void lfm2_vision_quiet_ffmpeg_log(void)
{
    av_log_set_level(AV_LOG_QUIET);
}
