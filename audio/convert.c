/* convert.c — any PCM to 16 kHz mono float with libswresample (channels averaged by an explicit
 * 1/C matrix, so the level does not depend on FFmpeg's downmix rules), and audio files decoded
 * with libavformat/libavcodec into the same.
 *
 * Float input is sanitized before the resampler (NaN → 0, beyond ±1 → ±1): a single NaN would
 * otherwise spread over the resampling filter's length. The output is clipped to ±1 as well
 * (resampling a full-scale square wave overshoots). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "audio-impl.h"

#define MAX_CHANNELS 64   /* libswresample's SWR_CH_MAX */

struct lfm2_audio_converter {
    SwrContext *swr;
    int rate, channels;
    enum AVSampleFormat fmt;
    void *tmp;                 /* sanitized copy of float input */
    size_t tmp_cap;
    struct lfm2_audio_convert_stats st;
};

static enum AVSampleFormat av_format(enum lfm2_sample_format f)
{
    switch (f) {
    case LFM2_SAMPLE_U8: return AV_SAMPLE_FMT_U8;
    case LFM2_SAMPLE_S16: return AV_SAMPLE_FMT_S16;
    case LFM2_SAMPLE_S32: return AV_SAMPLE_FMT_S32;
    case LFM2_SAMPLE_F32: return AV_SAMPLE_FMT_FLT;
    case LFM2_SAMPLE_F64: return AV_SAMPLE_FMT_DBL;
    }
    return AV_SAMPLE_FMT_NONE;
}

static void conv_free(lfm2_audio_converter *cv)
{
    swr_free(&cv->swr);
    free(cv->tmp);
    cv->tmp = NULL;
    cv->tmp_cap = 0;
}

/* Sets up cv for `channels` channels of `fmt` (packed or planar) at `rate`. */
static int conv_init(lfm2_audio_converter *cv, int rate, int channels, enum AVSampleFormat fmt)
{
    memset(cv, 0, sizeof *cv);
    if (rate < 1000 || rate > 768000)
        return lfm2_set_error("sample rate %d Hz is outside 1000…768000", rate);
    if (channels < 1 || channels > MAX_CHANNELS)
        return lfm2_set_error("%d channels: 1…%d supported", channels, MAX_CHANNELS);
    if (fmt == AV_SAMPLE_FMT_NONE || av_sample_fmt_is_planar(fmt) < 0)
        return lfm2_set_error("unknown sample format");
    cv->rate = rate;
    cv->channels = channels;
    cv->fmt = fmt;
    AVChannelLayout in_l, out_l = AV_CHANNEL_LAYOUT_MONO;
    av_channel_layout_default(&in_l, channels);
    int r = swr_alloc_set_opts2(&cv->swr, &out_l, AV_SAMPLE_FMT_FLT, LFM2_AUDIO_SAMPLE_RATE, &in_l,
                                fmt, rate, 0, NULL);
    av_channel_layout_uninit(&in_l);
    if (r < 0 || !cv->swr)
        return lfm2_set_error("libswresample: cannot convert %d Hz %d-channel %s (%d)", rate,
                              channels, av_get_sample_fmt_name(fmt), r);
    double matrix[MAX_CHANNELS];
    for (int c = 0; c < channels; c++)
        matrix[c] = 1.0 / channels;
    if (swr_set_matrix(cv->swr, matrix, channels) < 0 || (r = swr_init(cv->swr)) < 0) {
        swr_free(&cv->swr);
        return lfm2_set_error("libswresample: cannot set up %d Hz %d-channel %s → 16 kHz mono",
                              rate, channels, av_get_sample_fmt_name(fmt));
    }
    return 0;
}

static inline float clip1(float x, struct lfm2_audio_convert_stats *st)
{
    if (!isfinite(x)) {
        st->n_nonfinite++;
        return isnan(x) ? 0.0f : (x > 0 ? 1.0f : -1.0f);
    }
    if (x > 1.0f || x < -1.0f) {
        st->n_clipped++;
        return x > 0 ? 1.0f : -1.0f;
    }
    return x;
}

/* Converts n_in frames given as plane pointers (one for packed formats). */
static int64_t conv_run(lfm2_audio_converter *cv, const uint8_t *const *planes, int64_t n_in,
                        float *out, int64_t cap)
{
    if (n_in < 0 || n_in > INT32_MAX || (n_in > 0 && !planes) || !out || cap < 0)
        return lfm2_set_error("convert: bad arguments (%lld frames)", (long long)n_in);
    if (planes && n_in == 0)
        return 0;   /* an empty buffer; only planes == NULL flushes */
    const int planar = av_sample_fmt_is_planar(cv->fmt);
    const int np = planar ? cv->channels : 1;
    const enum AVSampleFormat packed = av_get_packed_sample_fmt(cv->fmt);
    const uint8_t *src[MAX_CHANNELS] = { 0 };
    for (int p = 0; p < np && n_in > 0; p++)
        src[p] = planes[p];
    if (n_in > 0 && (packed == AV_SAMPLE_FMT_FLT || packed == AV_SAMPLE_FMT_DBL)) {
        const size_t per = (size_t)n_in * (planar ? 1 : (size_t)cv->channels);
        const size_t bps = packed == AV_SAMPLE_FMT_FLT ? 4 : 8;
        if (lfm2_audio_grow(&cv->tmp, &cv->tmp_cap, per * bps * (size_t)np, NULL))
            return -1;
        for (int p = 0; p < np; p++) {
            uint8_t *dst = (uint8_t *)cv->tmp + (size_t)p * per * bps;
            if (bps == 4) {
                const float *a = (const float *)src[p];
                float *d = (float *)dst;
                for (size_t i = 0; i < per; i++)
                    d[i] = clip1(a[i], &cv->st);
            } else {
                const double *a = (const double *)src[p];
                double *d = (double *)dst;
                for (size_t i = 0; i < per; i++)
                    d[i] = fabs(a[i]) <= 1.0 ? a[i] : (double)clip1((float)a[i], &cv->st);
            }
            src[p] = dst;
        }
    }
    const int got = swr_convert(cv->swr, (uint8_t **)&out, (int)(cap > INT32_MAX ? INT32_MAX : cap),
                                n_in > 0 ? src : NULL, (int)n_in);
    if (got < 0)
        return lfm2_set_error("libswresample: conversion failed (%d)", got);
    for (int i = 0; i < got; i++)
        out[i] = out[i] > 1.0f ? 1.0f : out[i] < -1.0f ? -1.0f : out[i];
    cv->st.n_in += n_in;
    cv->st.n_out += got;
    return got;
}

lfm2_audio_converter *lfm2_audio_converter_new(int rate, int channels, enum lfm2_sample_format fmt)
{
    lfm2_audio_converter *cv = calloc(1, sizeof *cv);
    if (!cv)
        return lfm2_set_error("out of memory"), NULL;
    if (conv_init(cv, rate, channels, av_format(fmt))) {
        conv_free(cv);
        free(cv);
        return NULL;
    }
    return cv;
}

void lfm2_audio_converter_free(lfm2_audio_converter *cv)
{
    if (!cv)
        return;
    conv_free(cv);
    free(cv);
}

int64_t lfm2_audio_converter_max_out(const lfm2_audio_converter *cv, int64_t n_in)
{
    if (n_in > INT32_MAX)
        n_in = INT32_MAX;
    const int r = swr_get_out_samples(cv->swr, (int)n_in);
    return r < 0 ? 0 : r;
}

int64_t lfm2_audio_convert(lfm2_audio_converter *cv, const void *in, int64_t n_in, float *out,
                           int64_t cap)
{
    if (!cv || (n_in > 0 && !in))
        return lfm2_set_error("convert: NULL %s", cv ? "input" : "converter");
    const uint8_t *plane = in;
    return conv_run(cv, &plane, n_in, out, cap);
}

int64_t lfm2_audio_convert_flush(lfm2_audio_converter *cv, float *out, int64_t cap)
{
    if (!cv)
        return lfm2_set_error("convert: NULL converter");
    return conv_run(cv, NULL, 0, out, cap);
}

struct lfm2_audio_convert_stats lfm2_audio_converter_stats(const lfm2_audio_converter *cv)
{
    return cv->st;
}

/* ---- files ------------------------------------------------------------------------------------ */

static void quiet_log(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    (void)level;
    (void)fmt;
    (void)vl;
}

void lfm2_audio_quiet_ffmpeg_log(void)
{
    av_log_set_callback(quiet_log);
}

/* Appends the conversion of n_in frames (or the flush when planes is NULL) to *pcm. */
static int append(lfm2_audio_converter *cv, const uint8_t *const *planes, int64_t n_in,
                  float **pcm, int64_t *n, size_t *cap)
{
    const int64_t room = swr_get_out_samples(cv->swr, (int)n_in) + 16;
    size_t need;
    if (!lfm2_add_ok((size_t)*n, (size_t)room, &need) || need > SIZE_MAX / sizeof(float))
        return lfm2_set_error("audio too long");
    if (need > *cap) {
        size_t nc = *cap ? *cap : 1 << 16;
        while (nc < need)
            nc *= 2;
        float *p = realloc(*pcm, nc * sizeof *p);
        if (!p)
            return lfm2_set_error("out of memory (%zu samples)", nc);
        *pcm = p;
        *cap = nc;
    }
    const int64_t got = conv_run(cv, planes, n_in, *pcm + *n, room);
    if (got < 0)
        return -1;
    *n += got;
    return 0;
}

int lfm2_audio_load_file(const char *path, float **pcm_out, int64_t *n_out,
                         struct lfm2_audio_file_info *info)
{
    if (!path || !pcm_out || !n_out)
        return lfm2_set_error("lfm2_audio_load_file: NULL argument");
    *pcm_out = NULL;
    *n_out = 0;
    AVFormatContext *fc = NULL;
    AVCodecContext *dc = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    lfm2_audio_converter cv;
    memset(&cv, 0, sizeof cv);
    bool cv_ready = false;
    float *pcm = NULL;
    int64_t n = 0, n_source = 0;
    size_t cap = 0;
    char err[AV_ERROR_MAX_STRING_SIZE];
    int rc = -1, r;

    if ((r = avformat_open_input(&fc, path, NULL, NULL)) < 0) {
        lfm2_set_error("%s: cannot open: %s", path, av_make_error_string(err, sizeof err, r));
        goto out;
    }
    if ((r = avformat_find_stream_info(fc, NULL)) < 0) {
        lfm2_set_error("%s: cannot read the stream info: %s", path, av_make_error_string(err, sizeof err, r));
        goto out;
    }
    const AVCodec *codec = NULL;
    const int si = av_find_best_stream(fc, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (si < 0 || !codec) {
        lfm2_set_error("%s: %s", path, si == AVERROR_DECODER_NOT_FOUND ? "no decoder for its audio stream"
                                                                     : "no audio stream");
        goto out;
    }
    if (!(dc = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(dc, fc->streams[si]->codecpar) < 0 ||
        (r = avcodec_open2(dc, codec, NULL)) < 0) {
        lfm2_set_error("%s: cannot open the %s decoder", path, codec->name);
        goto out;
    }
    if (!(pkt = av_packet_alloc()) || !(fr = av_frame_alloc())) {
        lfm2_set_error("out of memory");
        goto out;
    }
    bool eof = false;
    while (!eof) {
        r = av_read_frame(fc, pkt);
        if (r == AVERROR_EOF || r < 0) {   /* a read error ends the file like EOF: keep what decoded */
            eof = true;
            avcodec_send_packet(dc, NULL);
        } else {
            if (pkt->stream_index == si && avcodec_send_packet(dc, pkt) < 0) {
                /* a corrupt packet: skip it, as players do */
            }
            av_packet_unref(pkt);
        }
        while ((r = avcodec_receive_frame(dc, fr)) >= 0) {
            const int ch = fr->ch_layout.nb_channels;
            if (cv_ready && (fr->sample_rate != cv.rate || ch != cv.channels || fr->format != cv.fmt)) {
                /* the stream changed format: drain the old converter, start a new one */
                if (append(&cv, NULL, 0, &pcm, &n, &cap))
                    goto out;
                conv_free(&cv);
                cv_ready = false;
            }
            if (!cv_ready) {
                const struct lfm2_audio_convert_stats st = cv.st;   /* kept across formats */
                if (conv_init(&cv, fr->sample_rate, ch, fr->format)) {
                    lfm2_prefix_error("%s", path);
                    goto out;
                }
                cv.st = st;
                cv_ready = true;
                if (info) {
                    info->rate = fr->sample_rate;
                    info->channels = ch;
                }
            }
            if (append(&cv, (const uint8_t *const *)fr->extended_data, fr->nb_samples, &pcm, &n, &cap))
                goto out;
            n_source += fr->nb_samples;
            av_frame_unref(fr);
        }
        if (r != AVERROR(EAGAIN) && r != AVERROR_EOF) {
            lfm2_set_error("%s: decoding failed: %s", path, av_make_error_string(err, sizeof err, r));
            goto out;
        }
    }
    if (cv_ready && append(&cv, NULL, 0, &pcm, &n, &cap))
        goto out;
    if (n == 0) {
        lfm2_set_error("%s: no audio samples", path);
        goto out;
    }
    if (info) {
        snprintf(info->codec, sizeof info->codec, "%s", codec->name);
        info->n_source = n_source;
        info->stats = cv.st;
        info->stats.n_in = n_source;
        info->stats.n_out = n;
    }
    *pcm_out = pcm;
    *n_out = n;
    pcm = NULL;
    rc = 0;
out:
    conv_free(&cv);
    free(pcm);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dc);
    avformat_close_input(&fc);
    return rc;
}
