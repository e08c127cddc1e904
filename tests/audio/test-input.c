/* test-input.c — getting PCM in: the streaming converter (formats, channel averaging,
 * resampling, chunking, NaN/Inf/clipping, 0-length), file decoding (WAV written here in
 * several layouts, truncated, empty, garbage), and the voice-activity segmenter (silence,
 * steady and quiet noise give nothing; speech between silences gives one utterance each at the
 * right place; chunk sizes do not matter; forced cuts; flat memory over 10 minutes of silence). */
#include <glib.h>
#include <glib/gstdio.h>

#include "atest.h"
#include "lfm2-audio.h"


/* A canonical RIFF/WAVE file: format 1 (PCM) or 3 (IEEE float). data_bytes may differ from
 * the bytes actually written (a truncated file). */
static void write_wav(const char *path, int format, int channels, int rate, int bits,
                      const void *data, uint32_t bytes, uint32_t header_bytes)
{
    FILE *f = fopen(path, "wb");
    uint8_t h[44];
    const uint32_t block = (uint32_t)(channels * bits / 8);
#define LE32(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8), (p)[2] = (uint8_t)((v) >> 16), (p)[3] = (uint8_t)((v) >> 24))
#define LE16(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8))
    memcpy(h, "RIFF", 4);
    LE32(h + 4, 36 + header_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    LE32(h + 16, 16);
    LE16(h + 20, format);
    LE16(h + 22, channels);
    LE32(h + 24, (uint32_t)rate);
    LE32(h + 28, (uint32_t)rate * block);
    LE16(h + 32, block);
    LE16(h + 34, bits);
    memcpy(h + 36, "data", 4);
    LE32(h + 40, header_bytes);
    fwrite(h, 1, 44, f);
    if (bytes)
        fwrite(data, 1, bytes, f);
    fclose(f);
}

static float *load_clip(const char *clip, int64_t *n)
{
    float *pcm = NULL;
    CHECK(lfm2_audio_load_file(at_data("wav/%s.wav", clip), &pcm, n, NULL) == 0, "%s", lfm2_last_error());
    return pcm;
}

/* Dominant frequency of x by correlation with sines around f0 (1 Hz steps). */
static double peak_hz(const float *x, int64_t n, double rate, double f0)
{
    double best = 0, best_f = 0;
    for (double f = f0 - 20; f <= f0 + 20; f += 1) {
        double re = 0, im = 0;
        for (int64_t i = 0; i < n; i++) {
            re += x[i] * cos(2 * M_PI * f * i / rate);
            im += x[i] * sin(2 * M_PI * f * i / rate);
        }
        if (re * re + im * im > best) {
            best = re * re + im * im;
            best_f = f;
        }
    }
    return best_f;
}

/* Converts all of `in` in chunks of `chunk` frames (0 = one call), flushes; returns samples. */
static int64_t convert_all(int rate, int ch, enum lfm2_sample_format fmt, const void *in,
                           int64_t n, size_t frame_bytes, int64_t chunk, float *out, int64_t cap,
                           struct lfm2_audio_convert_stats *st)
{
    lfm2_audio_converter *cv = lfm2_audio_converter_new(rate, ch, fmt);
    CHECK(cv != NULL, "%s", lfm2_last_error());
    if (!cv)
        return -1;
    int64_t got = 0;
    for (int64_t i = 0; i < n;) {
        const int64_t m = chunk && n - i > chunk ? chunk : n - i;
        CHECK(lfm2_audio_converter_max_out(cv, m) <= cap - got, "room");
        const int64_t r = lfm2_audio_convert(cv, (const uint8_t *)in + (size_t)i * frame_bytes, m,
                                             out + got, cap - got);
        CHECK(r >= 0 && r <= lfm2_audio_converter_max_out(cv, m) + 64, "convert: %lld", (long long)r);
        if (r < 0)
            break;
        got += r;
        i += m;
    }
    CHECK(lfm2_audio_convert(cv, NULL, 0, out + got, cap - got) == 0, "0 frames give 0 samples");
    const int64_t r = lfm2_audio_convert_flush(cv, out + got, cap - got);
    CHECK(r >= 0, "flush: %s", lfm2_last_error());
    got += r > 0 ? r : 0;
    if (st)
        *st = lfm2_audio_converter_stats(cv);
    lfm2_audio_converter_free(cv);
    return got;
}

static void test_converter(void)
{
    printf("converter\n");
    int64_t n;
    float *speech = load_clip("speech_4s", &n);
    float *out = malloc(sizeof(float) * 400000), *out2 = malloc(sizeof(float) * 400000);

    /* S16 16 kHz mono: exactly q/32768 */
    int16_t *s16 = malloc(sizeof(int16_t) * (size_t)n * 2);
    for (int64_t i = 0; i < n; i++)
        s16[i] = (int16_t)lrintf(speech[i] * 32768.0f);
    int64_t m = convert_all(16000, 1, LFM2_SAMPLE_S16, s16, n, 2, 777, out, 400000, NULL);
    CHECK(m == n && memcmp(out, speech, sizeof(float) * (size_t)n) == 0, "S16 16 kHz mono is not q/32768 (%lld)", (long long)m);

    /* stereo: channels averaged (L = R = x → x; L = x, R = −x → 0) */
    for (int64_t i = 0; i < n; i++)
        s16[2 * i] = s16[2 * i + 1] = (int16_t)lrintf(speech[i] * 32768.0f);
    m = convert_all(16000, 2, LFM2_SAMPLE_S16, s16, n, 4, 0, out, 400000, NULL);
    CHECK(m == n && memcmp(out, speech, sizeof(float) * (size_t)n) == 0, "stereo L = R is not the mono signal");
    for (int64_t i = 0; i < n; i++)
        s16[2 * i + 1] = (int16_t)-s16[2 * i];
    m = convert_all(16000, 2, LFM2_SAMPLE_S16, s16, n, 4, 0, out, 400000, NULL);
    double mx = 0;
    for (int64_t i = 0; i < m; i++)
        mx = fmax(mx, fabs(out[i]));
    CHECK(m == n && mx < 1e-4, "L = −R averages to %.3g", mx);
    free(s16);

    /* 44.1 kHz F32 stereo 1 kHz sine → 16 kHz: length, frequency and level kept */
    const int64_t n44 = 44100;
    float *f44 = malloc(sizeof(float) * (size_t)n44 * 2);
    for (int64_t i = 0; i < n44; i++)
        f44[2 * i] = f44[2 * i + 1] = 0.5f * sinf((float)(2 * M_PI * 1000.0 * i / 44100.0));
    m = convert_all(44100, 2, LFM2_SAMPLE_F32, f44, n44, 8, 0, out, 400000, NULL);
    CHECK(m >= 15990 && m <= 16010, "1 s at 44.1 kHz gave %lld samples at 16 kHz", (long long)m);
    const double hz = peak_hz(out + 1000, 8000, 16000.0, 1000.0);
    double rms = 0;
    for (int64_t i = 1000; i < 15000; i++)
        rms += out[i] * out[i];
    rms = sqrt(rms / 14000);
    printf("  44.1 kHz → 16 kHz: %lld samples, peak %.0f Hz, rms %.4f (0.3536 expected)\n", (long long)m, hz, rms);
    CHECK(fabs(hz - 1000.0) <= 1.0 && fabs(rms - 0.35355) < 0.01, "resampled sine: %.0f Hz, rms %.4f", hz, rms);
    /* chunking does not change the result */
    const int64_t m2 = convert_all(44100, 2, LFM2_SAMPLE_F32, f44, n44, 8, 441, out2, 400000, NULL);
    CHECK(m2 == m && memcmp(out, out2, sizeof(float) * (size_t)m) == 0, "chunked resampling differs (%lld vs %lld)", (long long)m2, (long long)m);
    const int64_t m3 = convert_all(44100, 2, LFM2_SAMPLE_F32, f44, n44, 8, 1, out2, 400000, NULL);
    CHECK(m3 == m && memcmp(out, out2, sizeof(float) * (size_t)m) == 0, "1-frame chunks differ");

    /* 8 kHz U8 and 48 kHz S32 and F64 6-channel: sane lengths */
    uint8_t *u8 = malloc(8000);
    for (int i = 0; i < 8000; i++)
        u8[i] = (uint8_t)(128 + 100 * sin(2 * M_PI * 300.0 * i / 8000.0));
    m = convert_all(8000, 1, LFM2_SAMPLE_U8, u8, 8000, 1, 100, out, 400000, NULL);
    CHECK(m >= 15990 && m <= 16010 && fabs(peak_hz(out + 1000, 8000, 16000.0, 300.0) - 300.0) <= 1.0,
          "U8 8 kHz: %lld samples", (long long)m);
    free(u8);
    int32_t *s32 = calloc(48000, sizeof *s32);
    m = convert_all(48000, 1, LFM2_SAMPLE_S32, s32, 48000, 4, 0, out, 400000, NULL);
    CHECK(m >= 15990 && m <= 16010, "S32 48 kHz: %lld samples", (long long)m);
    free(s32);
    double *f64 = calloc(6 * 22050, sizeof *f64);
    for (int i = 0; i < 22050; i++)
        for (int c = 0; c < 6; c++)
            f64[6 * i + c] = 0.25;
    m = convert_all(22050, 6, LFM2_SAMPLE_F64, f64, 22050, 48, 0, out, 400000, NULL);
    CHECK(m >= 15990 && m <= 16010 && fabs(out[8000] - 0.25f) < 1e-3, "F64 5.1: %lld samples, %g", (long long)m, out[8000]);
    free(f64);

    /* NaN, ±Inf and overs in float input: replaced/clipped before the resampler */
    for (int64_t i = 0; i < n44; i++) {
        f44[2 * i] *= 3.0f;                     /* overs: clipped */
        if (i % 1000 == 7)
            f44[2 * i + 1] = NAN;
        if (i % 1000 == 500)
            f44[2 * i + 1] = -INFINITY;
    }
    struct lfm2_audio_convert_stats st;
    m = convert_all(44100, 2, LFM2_SAMPLE_F32, f44, n44, 8, 1000, out, 400000, &st);
    bool finite = m > 15000;
    for (int64_t i = 0; i < m; i++)
        finite &= isfinite(out[i]) && fabsf(out[i]) <= 1.0f;
    printf("  NaN/Inf/overs: %lld non-finite, %lld clipped\n", (long long)st.n_nonfinite, (long long)st.n_clipped);
    CHECK(finite, "output not finite in ±1 after NaN/Inf input");
    CHECK(st.n_nonfinite == 2 * 45 - 1 && st.n_clipped > 10000, "stats: %lld non-finite, %lld clipped",
          (long long)st.n_nonfinite, (long long)st.n_clipped);
    free(f44);

    /* bad parameters */
    CHECK(!lfm2_audio_converter_new(0, 1, LFM2_SAMPLE_S16) && strstr(lfm2_last_error(), "rate"), "rate 0 accepted");
    CHECK(!lfm2_audio_converter_new(16000, 0, LFM2_SAMPLE_S16) && strstr(lfm2_last_error(), "channels"), "0 channels accepted");
    CHECK(!lfm2_audio_converter_new(16000, 1, (enum lfm2_sample_format)42), "bad format accepted");
    free(speech);
    free(out);
    free(out2);
}

static void test_files(void)
{
    printf("files\n");
    int64_t n;
    float *speech = load_clip("speech_4s", &n);
    /* stereo 22.05 kHz S16 */
    const int64_t n22 = 22050 * 2;
    int16_t *st = malloc(sizeof(int16_t) * (size_t)n22 * 2);
    for (int64_t i = 0; i < n22; i++)
        st[2 * i] = st[2 * i + 1] = (int16_t)(8000 * sin(2 * M_PI * 440.0 * i / 22050.0));
    write_wav(tmp("st.wav"), 1, 2, 22050, 16, st, (uint32_t)(n22 * 4), (uint32_t)(n22 * 4));
    float *pcm = NULL;
    int64_t m;
    struct lfm2_audio_file_info info;
    CHECK(lfm2_audio_load_file(tmp("st.wav"), &pcm, &m, &info) == 0, "%s", lfm2_last_error());
    CHECK(info.rate == 22050 && info.channels == 2 && info.n_source == n22 && m >= 31980 && m <= 32020,
          "stereo 22.05 kHz: %d Hz %d ch, %lld → %lld", info.rate, info.channels, (long long)info.n_source, (long long)m);
    free(pcm);

    /* float WAV with NaN/Inf/overs: finite, counted */
    float *fl = malloc(sizeof(float) * 16000);
    for (int i = 0; i < 16000; i++)
        fl[i] = i % 100 == 0 ? NAN : i % 100 == 1 ? INFINITY : 1.7f * sinf(0.1f * i);
    write_wav(tmp("nan.wav"), 3, 1, 16000, 32, fl, 64000, 64000);
    CHECK(lfm2_audio_load_file(tmp("nan.wav"), &pcm, &m, &info) == 0, "%s", lfm2_last_error());
    bool ok = m == 16000;
    for (int64_t i = 0; ok && i < m; i++)
        ok = isfinite(pcm[i]) && fabsf(pcm[i]) <= 1.0f;
    CHECK(ok && info.stats.n_nonfinite == 320 && info.stats.n_clipped > 1000,
          "float WAV with NaN: %lld samples, %lld non-finite", (long long)m, (long long)info.stats.n_nonfinite);
    free(pcm);
    free(fl);

    /* truncated: the header promises 4 s, 1 s is there → what is there */
    int16_t *q = malloc(sizeof(int16_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        q[i] = (int16_t)lrintf(speech[i] * 32768.0f);
    write_wav(tmp("trunc.wav"), 1, 1, 16000, 16, q, 32000, (uint32_t)(n * 2));
    CHECK(lfm2_audio_load_file(tmp("trunc.wav"), &pcm, &m, NULL) == 0 && m == 16000 &&
              memcmp(pcm, speech, sizeof(float) * 16000) == 0,
          "truncated WAV: %lld samples (%s)", (long long)m, lfm2_last_error());
    free(pcm);
    free(q);

    /* empty, garbage, missing: errors that name the file */
    write_wav(tmp("empty.wav"), 1, 1, 16000, 16, NULL, 0, 0);
    CHECK(lfm2_audio_load_file(tmp("empty.wav"), &pcm, &m, NULL) < 0 && strstr(lfm2_last_error(), "empty.wav") &&
              strstr(lfm2_last_error(), "no audio"), "empty WAV: %s", lfm2_last_error());
    g_file_set_contents(tmp("junk.wav"), "this is not audio at all, just text\n", -1, NULL);
    CHECK(lfm2_audio_load_file(tmp("junk.wav"), &pcm, &m, NULL) < 0 && strstr(lfm2_last_error(), "junk.wav"),
          "garbage: %s", lfm2_last_error());
    CHECK(lfm2_audio_load_file(tmp("missing.wav"), &pcm, &m, NULL) < 0 && strstr(lfm2_last_error(), "missing.wav"),
          "missing file: %s", lfm2_last_error());
    CHECK(pcm == NULL && m == 0, "outputs not cleared on error");
    free(st);
    free(speech);
}

/* Pops every waiting utterance into segs (samples copied: the VAD's are valid until its next
 * call). Returns the number stored (at most max). */
static int pop_all(lfm2_vad *v, struct lfm2_vad_segment *segs, int max, float **copies)
{
    int k = 0;
    struct lfm2_vad_segment s;
    while (lfm2_vad_pop(v, &s))
        if (k < max) {
            segs[k] = s;
            copies[k] = malloc(sizeof(float) * (size_t)s.n);
            memcpy(copies[k], s.pcm, sizeof(float) * (size_t)s.n);
            segs[k].pcm = copies[k];
            k++;
        }
    return k;
}

/* Segments of pcm pushed in chunks of `chunk` (0 = random sizes). */
static int run_vad(const struct lfm2_vad_params *p, const float *pcm, int64_t n, int64_t chunk,
                   struct lfm2_vad_segment *segs, int max, float **copies)
{
    lfm2_vad *v = lfm2_vad_new(p);
    CHECK(v != NULL, "%s", lfm2_last_error());
    if (!v)
        return 0;
    int k = 0;
    uint32_t r = 99;
    for (int64_t i = 0; i < n;) {
        r = r * 1103515245u + 12345u;
        int64_t m = chunk ? chunk : (int64_t)(r >> 16) % 3000;
        m = m < n - i ? m : n - i;
        CHECK(lfm2_vad_push(v, pcm + i, m) >= 0, "%s", lfm2_last_error());
        i += m;
        if (lfm2_vad_in_speech(v)) {
            struct lfm2_vad_segment cur;
            CHECK(lfm2_vad_current(v, &cur) == 1 && cur.end == i && cur.n == cur.end - cur.start,
                  "current utterance");
        }
        k += pop_all(v, segs + k, max - k, copies + k);
    }
    CHECK(lfm2_vad_flush(v) >= 0, "flush");
    k += pop_all(v, segs + k, max - k, copies + k);
    CHECK(lfm2_vad_position(v) == n, "position %lld", (long long)lfm2_vad_position(v));
    lfm2_vad_free(v);
    return k;
}

static void free_copies(float **c, int n)
{
    for (int i = 0; i < n; i++)
        free(c[i]);
}

static void test_vad(void)
{
    printf("VAD\n");
    const struct lfm2_vad_params dp = lfm2_vad_default_params();
    struct lfm2_vad_segment seg[64];
    float *cp[64];
    int64_t ns, nn, nsil;
    float *speech = load_clip("speech_4s", &ns);
    float *noise = load_clip("noise_3s", &nn);
    float *sil = load_clip("silence_0.5s", &nsil);

    /* nothing in silence, loud white noise, quiet noise, quiet speech */
    int k = run_vad(&dp, sil, nsil, 160, seg, 64, cp);
    CHECK(k == 0, "silence gave %d utterances", k);
    k = run_vad(&dp, noise, nn, 0, seg, 64, cp);
    CHECK(k == 0, "white noise at -20 dBFS gave %d utterances", k);
    free_copies(cp, k);
    float *q = malloc(sizeof(float) * (size_t)(ns > nn ? ns : nn));
    for (int64_t i = 0; i < nn; i++)
        q[i] = noise[i] * 0.03f;
    k = run_vad(&dp, q, nn, 0, seg, 64, cp);
    CHECK(k == 0, "quiet noise gave %d utterances", k);
    free_copies(cp, k);
    for (int64_t i = 0; i < ns; i++)
        q[i] = speech[i] * 0.002f;   /* about −65 dBFS: below min_level_db */
    k = run_vad(&dp, q, ns, 0, seg, 64, cp);
    CHECK(k == 0, "speech at −65 dBFS gave %d utterances", k);
    free_copies(cp, k);

    /* 2 s silence, speech, 3 s silence, speech, 1 s silence: two utterances where the speech is */
    const int64_t S = 16000, total = 2 * S + ns + 3 * S + ns + S;
    float *mix = calloc((size_t)total, sizeof *mix);
    memcpy(mix + 2 * S, speech, sizeof(float) * (size_t)ns);
    memcpy(mix + 5 * S + ns, speech, sizeof(float) * (size_t)ns);
    k = run_vad(&dp, mix, total, 0, seg, 64, cp);
    for (int i = 0; i < k; i++)
        printf("  utterance %.3f – %.3f s\n", seg[i].start / 16000.0, seg[i].end / 16000.0);
    CHECK(k == 2, "speech between silences gave %d utterances, not 2", k);
    if (k == 2) {
        const int64_t pad = dp.pad_ms * 16 + 512;   /* + the 32 ms analysis window's reach */
        CHECK(seg[0].start >= 2 * S - pad && seg[0].start <= 2 * S + 800, "first start %lld", (long long)seg[0].start);
        CHECK(seg[0].end >= 2 * S + ns - 1600 && seg[0].end <= 2 * S + ns + pad, "first end %lld", (long long)seg[0].end);
        CHECK(seg[1].start >= 5 * S + ns - pad && seg[1].start <= 5 * S + ns + 800, "second start");
        CHECK(seg[1].end >= 5 * S + 2 * ns - 1600 && seg[1].end <= 5 * S + 2 * ns + pad, "second end");
        CHECK(memcmp(seg[1].pcm, mix + seg[1].start, sizeof(float) * (size_t)seg[1].n) == 0,
              "utterance samples are not the stream's");
        CHECK(!seg[0].forced && !seg[1].forced, "cut marked forced");
        /* no digital silence at the edges: the pads stop at the clip's first and last sample */
        int64_t first = 0, last = ns - 1;
        while (fabsf(speech[first]) < 1.0f / 65536)
            first++;
        while (fabsf(speech[last]) < 1.0f / 65536)
            last--;
        CHECK(seg[0].start == 2 * S + first && seg[1].start == 5 * S + ns + first,
              "utterances start at %lld, %lld, not at the speech's first sample %lld, %lld",
              (long long)seg[0].start, (long long)seg[1].start, (long long)(2 * S + first),
              (long long)(5 * S + ns + first));
        CHECK(seg[0].end <= 2 * S + last + 1 && seg[1].end <= 5 * S + ns + last + 1,
              "utterances end in the digital silence after the speech");
    }
    /* steady brown noise (not flat: it passes the flatness gate) after 2 s of digital silence
     * is no speech: the noise estimate starts again after the silence (kept, the silence's
     * −200 dB floor made the first 1.5 s of any noise an utterance) */
    {
        const int64_t nb = 2 * S + 3 * S;
        float *brown = calloc((size_t)nb, sizeof *brown);
        double acc = 0.0;
        uint32_t r = 7;
        for (int64_t i = 2 * S; i < nb; i++) {
            r = r * 1664525u + 1013904223u;
            acc = 0.995 * acc + ((double)(r >> 8) / 16777216.0 - 0.5);
            brown[i] = (float)(acc * 0.01);
        }
        struct lfm2_vad_segment sb[64];
        float *cpb[64];
        const int kb = run_vad(&dp, brown, nb, 0, sb, 64, cpb);
        CHECK(kb == 0, "brown noise after digital silence gave %d utterances", kb);
        free_copies(cpb, kb);
        free(brown);
    }
    /* the same speech over quiet recorded noise (about −75 dBFS) keeps its pads */
    {
        float *noisy = malloc(sizeof(float) * (size_t)total);
        for (int64_t i = 0; i < total; i++)
            noisy[i] = mix[i] + noise[i % nn] * 0.002f;
        struct lfm2_vad_segment sn[64];
        float *cpn[64];
        const int kn = run_vad(&dp, noisy, total, 0, sn, 64, cpn);
        CHECK(kn == 2, "speech over quiet noise gave %d utterances, not 2", kn);
        if (kn == 2 && k == 2)
            CHECK(sn[0].start <= seg[0].start - dp.pad_ms * 16 + 800 && sn[0].start < 2 * S,
                  "over noise the utterance starts at %lld: no pre-roll", (long long)sn[0].start);
        free_copies(cpn, kn);
        free(noisy);
    }
    /* chunk sizes do not matter */
    struct lfm2_vad_segment seg2[64];
    float *cp2[64];
    const int64_t chunks[] = { 1, 160, 4096 };
    for (size_t c = 0; c < 3; c++) {
        const int k2 = run_vad(&dp, mix, total, chunks[c], seg2, 64, cp2);
        bool same = k2 == k;
        for (int i = 0; same && i < k; i++)
            same = seg2[i].start == seg[i].start && seg2[i].end == seg[i].end;
        CHECK(same, "chunks of %lld change the utterances", (long long)chunks[c]);
        free_copies(cp2, k2);
    }
    free_copies(cp, k);

    /* clipped speech (×8, hard clipped) and NaN samples are still speech */
    for (int64_t i = 0; i < ns; i++) {
        const float x = speech[i] * 8.0f;
        q[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
        if (i % 5000 == 0)
            q[i] = NAN;
    }
    memcpy(mix + 2 * S, q, sizeof(float) * (size_t)ns);
    k = run_vad(&dp, mix, 2 * S + ns + 3 * S, 0, seg, 64, cp);
    CHECK(k == 1, "clipped speech with NaN gave %d utterances", k);
    bool finite = true;
    for (int i = 0; i < k; i++)
        for (int64_t j = 0; j < seg[i].n; j++)
            finite &= isfinite(seg[i].pcm[j]);
    CHECK(finite, "utterance samples not finite");
    free_copies(cp, k);

    /* long speech is cut at max_segment_ms, cuts are contiguous */
    int64_t nl;
    float *lng = load_clip("speech_long_35s", &nl);
    struct lfm2_vad_params p5 = dp;
    p5.max_segment_ms = 5000;
    k = run_vad(&p5, lng, nl, 0, seg, 64, cp);
    int forced = 0;
    bool order = k > 0;
    for (int i = 0; i < k; i++) {
        forced += seg[i].forced;
        order &= seg[i].end - seg[i].start <= 5000 * 16 && seg[i].end > seg[i].start &&
                 (i == 0 || seg[i].start >= seg[i - 1].end);
        if (i > 0 && seg[i - 1].forced)
            order &= seg[i].start == seg[i - 1].end;
    }
    printf("  35 s of speech, max 5 s: %d utterances, %d forced cuts\n", k, forced);
    CHECK(order && k >= 7 && forced >= 6, "forced cuts: %d utterances, %d forced", k, forced);
    CHECK(seg[0].start == 0 && seg[k - 1].end >= nl - 16000, "the speech is covered");
    free_copies(cp, k);
    free(lng);

    /* 10 minutes of silence: no utterance, memory flat */
    lfm2_vad *v = lfm2_vad_new(NULL);
    float *z = calloc(1600, sizeof *z);
    int64_t held_1s = 0, held_max = 0;
    for (int i = 0; i < 6000; i++) {
        CHECK(lfm2_vad_push(v, z, 1600) == 0, "utterance in silence");
        if (i == 10)
            held_1s = lfm2_vad_buffered(v);
        if (i > 10 && lfm2_vad_buffered(v) > held_max)
            held_max = lfm2_vad_buffered(v);
    }
    printf("  10 min of silence: %lld samples held after 1 s, at most %lld after\n", (long long)held_1s, (long long)held_max);
    CHECK(held_max <= held_1s && held_1s < 16000, "memory grows over silence: %lld → %lld", (long long)held_1s, (long long)held_max);
    CHECK(lfm2_vad_position(v) == 6000 * 1600, "position");
    lfm2_vad_reset(v);
    CHECK(lfm2_vad_position(v) == 0 && lfm2_vad_buffered(v) == 0, "reset");
    CHECK(lfm2_vad_push(v, z, 0) == 0, "0-length push");
    CHECK(lfm2_vad_push(v, NULL, 5) < 0, "NULL samples accepted");
    lfm2_vad_free(v);
    free(z);

    /* parameters */
    struct lfm2_vad_params bad = dp;
    bad.threshold = 1.5f;
    CHECK(!lfm2_vad_new(&bad) && strstr(lfm2_last_error(), "threshold"), "threshold 1.5 accepted");
    bad = dp;
    bad.max_segment_ms = 10;
    CHECK(!lfm2_vad_new(&bad) && strstr(lfm2_last_error(), "max_segment_ms"), "max_segment 10 ms accepted");

    free(q);
    free(mix);
    free(speech);
    free(noise);
    free(sil);
}

int main(void)
{
    tmpdir = g_dir_make_tmp("lfm2-audio-XXXXXX", NULL);
    lfm2_audio_quiet_ffmpeg_log();
    test_converter();
    test_files();
    test_vad();
    const char *names[] = { "st.wav", "nan.wav", "trunc.wav", "empty.wav", "junk.wav" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        g_unlink(tmp(names[i]));
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return lfm2_test_status();
}
