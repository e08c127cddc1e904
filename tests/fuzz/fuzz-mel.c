/* fuzz-mel — any PCM through what lfm2asr does before the encoder: the libswresample
 * converter (any rate, channel count and sample format, streamed in pieces, then flushed),
 * the voice-activity detector and the log-mel front-end in both modes.
 *
 * Input: byte 0 mode (bit 0: official / llamacpp), byte 1 sample format (% 5), byte 2
 * channels (1 + % 8), bytes 3–4 rate (one of the common rates, or 1000 + u16 % 191001),
 * byte 5 piece length in frames (1 + u8 · 16), then the interleaved samples as they would
 * come in a buffer (at most 8 s after conversion).
 *
 * Checked: the converter's output is finite and within ±1, its counts add up, the detector's
 * utterances lie inside the stream, in order, and the mel of every utterance (and of the
 * whole) has lfm2_audio_n_frames(n) finite frames. */
#include <math.h>

#include "fuzz-common.h"
#include "lfm2-audio.h"

#define MAX_OUT (8 * 16000)
/* room for the resampler's slack on top of MAX_OUT (its per-call bounds are generous) */
#define CAP (2 * MAX_OUT + 131072)

static lfm2_mel *mel[2];
static float *mel_out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    lfm2_audio_quiet_ffmpeg_log();
    for (int i = 0; i < 2; i++)
        if (!(mel[i] = lfm2_mel_new(i ? LFM2_AUDIO_FRONTEND_LLAMACPP : LFM2_AUDIO_FRONTEND_OFFICIAL)))
            abort();
    mel_out = malloc((size_t)LFM2_AUDIO_N_MEL * (size_t)lfm2_audio_n_frames(CAP) * sizeof(float));
    if (!mel_out)
        abort();
    return 0;
}

static void check_mel(lfm2_mel *m, const float *pcm, int64_t n)
{
    if (n < 1)
        return;
    const int64_t T = lfm2_audio_n_frames(n);
    const int64_t got = lfm2_mel_compute(m, pcm, n, mel_out, T);
    FUZZ_ASSERT(got == T, "mel of %lld samples: %lld frames, expected %lld", (long long)n,
                (long long)got, (long long)T);
    for (int64_t i = 0; i < (int64_t)LFM2_AUDIO_N_MEL * T; i++)
        FUZZ_ASSERT(isfinite(mel_out[i]), "mel value %lld is %g", (long long)i, mel_out[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int rates[] = { 8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000 };
    static const int bytes_per[] = { 1, 2, 4, 4, 8 };
    fuzz_input in = { data, size };
    const int mode = fuzz_u8(&in) & 1;
    const enum lfm2_sample_format fmt = (enum lfm2_sample_format)(fuzz_u8(&in) % 5);
    const int channels = 1 + fuzz_u8(&in) % 8;
    const uint16_t r = fuzz_u16(&in);
    const int rate = r < 9 * 256 ? rates[r % 9] : 1000 + r % 191001;
    const int64_t piece = 1 + (int64_t)fuzz_u8(&in) * 16;
    const size_t frame_bytes = (size_t)bytes_per[fmt] * (size_t)channels;
    int64_t n_frames = (int64_t)(in.n / frame_bytes);
    /* at most 8 s of output */
    if (n_frames > (int64_t)rate * 8)
        n_frames = (int64_t)rate * 8;
    /* the samples as a buffer would hold them: aligned, native order */
    void *samples = malloc(n_frames * frame_bytes + 1);
    if (!samples)
        abort();
    memcpy(samples, in.p, n_frames * frame_bytes);

    lfm2_audio_converter *cv = lfm2_audio_converter_new(rate, channels, fmt);
    if (!cv) {
        fuzz_check_error("lfm2_audio_converter_new", NULL);
        free(samples);
        return 0;
    }
    float *pcm = malloc(CAP * sizeof(float));
    if (!pcm)
        abort();
    int64_t n = 0;
    for (int64_t off = 0; off < n_frames;) {
        const int64_t k = off + piece <= n_frames ? piece : n_frames - off;
        const int64_t cap = lfm2_audio_converter_max_out(cv, k);
        FUZZ_ASSERT(cap >= 0 && n + cap <= CAP, "max_out %lld", (long long)cap);
        const int64_t w = lfm2_audio_convert(cv, (const uint8_t *)samples + off * frame_bytes, k,
                                             pcm + n, cap);
        FUZZ_ASSERT(w >= 0 && w <= cap, "convert wrote %lld of %lld", (long long)w, (long long)cap);
        n += w;
        off += k;
    }
    const int64_t w = lfm2_audio_convert_flush(cv, pcm + n, CAP - n);
    FUZZ_ASSERT(w >= 0, "flush failed: %s", lfm2_last_error());
    n += w;
    const struct lfm2_audio_convert_stats st = lfm2_audio_converter_stats(cv);
    FUZZ_ASSERT(st.n_in == n_frames && st.n_out == n, "stats %lld in / %lld out, pushed %lld / got %lld",
                (long long)st.n_in, (long long)st.n_out, (long long)n_frames, (long long)n);
    for (int64_t i = 0; i < n; i++)
        FUZZ_ASSERT(isfinite(pcm[i]) && fabsf(pcm[i]) <= 1.0f, "sample %lld is %g", (long long)i, pcm[i]);
    lfm2_audio_converter_free(cv);
    free(samples);

    /* the detector over the stream in the same pieces, then the mel of each utterance */
    lfm2_vad *vad = lfm2_vad_new(NULL);
    if (!vad)
        abort();
    int64_t last_end = 0;
    for (int64_t off = 0;; off += piece) {
        const bool end = off >= n;
        const int waiting = end ? lfm2_vad_flush(vad)
                                : lfm2_vad_push(vad, pcm + off, off + piece <= n ? piece : n - off);
        FUZZ_ASSERT(waiting >= 0, "vad: %s", lfm2_last_error());
        struct lfm2_vad_segment seg;
        while (lfm2_vad_pop(vad, &seg) == 1) {
            FUZZ_ASSERT(seg.start >= last_end && seg.start < seg.end && seg.end <= n &&
                            seg.n == seg.end - seg.start,
                        "utterance [%lld, %lld) n %lld after %lld, stream %lld", (long long)seg.start,
                        (long long)seg.end, (long long)seg.n, (long long)last_end, (long long)n);
            last_end = seg.end;
            check_mel(mel[mode], seg.pcm, seg.n);
        }
        if (end)
            break;
    }
    lfm2_vad_free(vad);
    check_mel(mel[mode], pcm, n);
    free(pcm);
    return 0;
}
