/* lfm2-audio.h — the LFM2-Audio input side: PCM conversion (any rate, sample format and
 * channel count to 16 kHz mono float), the log-mel front-end, a voice-activity detector that
 * cuts a stream into utterances, the FastConformer encoder and audio adapter of an `lfm2a`
 * mmproj GGUF, and the ASR prompt around the audio embeddings in the LFM2 chat layout.
 *
 * Flat C API in the style of whisper.cpp / lfm2.h:
 *
 *   One file (what `lfm2 embed-audio` / `lfm2 transcribe` do):
 *     struct lfm2_audio_params p = lfm2_audio_default_params();        edit, then
 *     lfm2_audio *a = lfm2_audio_load("mmproj.gguf", p);               matrices prepared once
 *     float *pcm; int64_t n;
 *     lfm2_audio_load_file("talk.ogg", &pcm, &n, NULL);                16 kHz mono
 *     int64_t n_tok = lfm2_audio_n_tokens(n);
 *     lfm2_audio_encode(a, pcm, n, embd, n_tok * lfm2_audio_n_embd_out(a));   [n_tok][n_embd]
 *     then the prompt: lfm2_audio_prompt_prefix() ids, lfm2_batch_embd(embd, n_tok),
 *     lfm2_audio_prompt_suffix() ids through lfm2_decode(), and sample until EOG.
 *
 *   A stream (what the lfm2asr / lfm2audioenc elements do):
 *     lfm2_audio_converter *cv = lfm2_audio_converter_new(rate, channels, LFM2_SAMPLE_S16);
 *     lfm2_vad *vad = lfm2_vad_new(&vp);                               vp from lfm2_vad_default_params()
 *     per buffer:  m = lfm2_audio_convert(cv, data, frames, buf, cap);  lfm2_vad_push(vad, buf, m);
 *                  while (lfm2_vad_pop(vad, &seg)) encode seg.pcm → final text of an utterance;
 *                  lfm2_vad_current(vad, &seg) → the open utterance so far, for partial results.
 *     at EOS:      lfm2_audio_convert_flush(), lfm2_vad_flush(), pop the rest.
 *   All positions are sample counts at 16 kHz since the VAD's creation (or last reset).
 *
 * Two front-end modes (the network is the same; only the log-mel and a few roundings differ):
 *   OFFICIAL (default): NeMo's AudioToMelSpectrogramPreprocessor in eval mode, as the models were
 *     trained — pre-emphasis 0.97, symmetric Hann(400) in a 512-point FFT, hop 160, power,
 *     128 Slaney mel filters, ln(mel + 2^-24), per-bin normalization (x − μ)/(σ + 1e-5) over
 *     the first L/160 frames (σ unbiased), last frame zero. Computed in double precision.
 *   LLAMACPP: what llama.cpp's mtmd (commit 22dc605) computes — periodic Hann, ln(max(mel,
 *     2^-24)), (x − μ)/sqrt(σ² + 1e-5); and in the encoder its roundings: the first
 *     subsampling convolution in F16 (mel and kernel rounded), a.position_embd required with
 *     at least n_frames/2 rows. The parity tests against mtmd's embeddings use this mode.
 * Neither mode chunks: a clip (an utterance) is encoded as one sequence; its length is
 * bounded by the caller (the VAD's max_segment_ms).
 *
 * Errors: functions return NULL or a negative value and leave a message in lfm2_last_error()
 * naming the file, the key or tensor and the reason. A lfm2_audio, lfm2_mel, converter or VAD
 * is used by one thread at a time (each owns scratch buffers); any number may exist.
 */
#ifndef LFM2_AUDIO_H
#define LFM2_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2-ops.h"
#include "lfm2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what liblfm2-audio exports (built with -fvisibility=hidden, like liblfm2). */
#ifndef LFM2_AUDIO_API
#if defined(__GNUC__)
#define LFM2_AUDIO_API __attribute__((visibility("default")))
#else
#define LFM2_AUDIO_API
#endif
#endif

/* ---- fixed front-end geometry (LFM2-Audio's preprocessor config) ---------------------------- */

#define LFM2_AUDIO_SAMPLE_RATE 16000   /* every function below takes 16 kHz mono float PCM */
#define LFM2_AUDIO_N_FFT 512
#define LFM2_AUDIO_WINDOW 400          /* 25 ms */
#define LFM2_AUDIO_HOP 160             /* 10 ms: one mel frame */
#define LFM2_AUDIO_N_MEL 128
#define LFM2_AUDIO_SUBSAMPLING 8       /* one embedding per 8 frames = 80 ms */

/* Mel frames of n samples: n/160 + 1 (0 for n <= 0). */
LFM2_AUDIO_API int64_t lfm2_audio_n_frames(int64_t n_samples);
/* Embedding rows of n samples: ceil(ceil(ceil(T/2)/2)/2) with T = lfm2_audio_n_frames(n). */
LFM2_AUDIO_API int64_t lfm2_audio_n_tokens(int64_t n_samples);
LFM2_AUDIO_API int64_t lfm2_audio_n_tokens_for_frames(int64_t n_frames);

enum lfm2_audio_frontend {
    LFM2_AUDIO_FRONTEND_OFFICIAL = 0,
    LFM2_AUDIO_FRONTEND_LLAMACPP = 1,
};

/* "official" / "llamacpp" → mode; -1 for anything else. */
LFM2_AUDIO_API int lfm2_audio_frontend_from_name(const char *name);
LFM2_AUDIO_API const char *lfm2_audio_frontend_name(enum lfm2_audio_frontend mode);

/* ---- log-mel front-end (no model needed) ------------------------------------------------------ */

typedef struct lfm2_mel lfm2_mel;

LFM2_AUDIO_API lfm2_mel *lfm2_mel_new(enum lfm2_audio_frontend mode);
LFM2_AUDIO_API void lfm2_mel_free(lfm2_mel *m);

/* Normalized log-mel of n samples (n >= 1): writes LFM2_AUDIO_N_MEL rows of T =
 * lfm2_audio_n_frames(n) floats, mel-major (out[bin·ld + frame], ld >= T) — the layout of
 * mtmd's mel and of the fixtures' mel.npy. NaN/Inf samples are read as 0. Clips shorter than
 * 320 samples have no variance to normalize by and come out all zero (llama.cpp aborts on
 * them). Returns T, or -1. */
LFM2_AUDIO_API int64_t lfm2_mel_compute(lfm2_mel *m, const float *pcm, int64_t n, float *out, int64_t ld);

/* The 128 × 257 Slaney filterbank in use (row-major), for tests. */
LFM2_AUDIO_API const float *lfm2_mel_filterbank(const lfm2_mel *m);

/* ---- the encoder: mmproj loading ---------------------------------------------------------------- */

typedef struct lfm2_audio lfm2_audio;

/* Debug hook: called with every intermediate tensor of an encode (tests compare them with
 * llama.cpp's graph tensors). A stage is n_rows rows of n_cols floats (row stride ld), rows
 * row0 … row0+n_rows-1 of the whole tensor; a stage may arrive in several calls.
 *   subsample_conv0|2|3|5|6   rows = time steps, cols = freq × channel ([f][c]), before ReLU
 *   pre_encode_out, adapter_ln          [T'][d_model]
 *   norm_ff1 ff1_out norm_att att_out norm_conv ff2_out resid_before_norm_out out
 *                                       [T'][d_model] of layer `layer` (ff*_out before ×0.5)
 *   pos_proj                            [2T'−1][d_model]: linear_pos(P), row m ↔ offset T'−1−m
 *   conv_pw1                            [T'][2·d_model] before the GLU
 *   att_ac, att_scores                  [T' queries][T' keys] of head `head`: (q+u)·k, and
 *                                       ((q+u)·k + rel-shifted (q+v)·p)/sqrt(d_head)
 *   projected                           [T'][n_embd_out]: the output */
struct lfm2_audio_stage {
    const char *name;
    int layer;            /* conformer layer, or -1 */
    int head;             /* attention head, or -1 */
    int64_t row0, n_rows, n_cols, ld;
    const float *data;
};
typedef void (*lfm2_audio_stage_fn)(void *user, const struct lfm2_audio_stage *stage);

struct lfm2_audio_params {
    enum lfm2_audio_frontend frontend;   /* default OFFICIAL */
    int n_threads;                       /* 0 = number of cores; ignored when pool is set */
    lfm2_pool *pool;                     /* borrow this thread pool (not freed; must outlive the
                                            context and not be used concurrently) */
    bool use_mmap;                       /* true */
    bool verbose;                        /* print load information to stderr */
    lfm2_audio_stage_fn stage_cb;        /* NULL; see above */
    void *stage_user;
};

LFM2_AUDIO_API struct lfm2_audio_params lfm2_audio_default_params(void);

/* Hyperparameters read from the mmproj file. */
struct lfm2_audio_hparams {
    char projector[16];   /* "lfm2a" */
    int n_mel;            /* clip.audio.num_mel_bins (128) */
    int n_embd;           /* conformer width d_model (512) */
    int n_layer;          /* 17 */
    int n_head;           /* 8 */
    int head_dim;         /* n_embd / n_head */
    int n_ff;             /* FFN width (2048), from ffn_up's shape */
    int n_sub;            /* subsampling channels (256) */
    int n_sub_freq;       /* frequency bins after subsampling (16) */
    int conv_kernel;      /* depthwise kernel of the convolution module (9) */
    int n_pos_in;         /* relative-position table width = linear_pos input (512) */
    int n_adapter;        /* adapter hidden width (2048) */
    int n_embd_out;       /* adapter output = text n_embd (2048) */
    int n_pos_rows;       /* a.position_embd rows (16392), 0 if absent */
    int n_pos_embd;       /* a.position_embd width, 0 if absent */
    float eps;            /* LayerNorm epsilon (1e-5) */
};

LFM2_AUDIO_API lfm2_audio *lfm2_audio_load(const char *mmproj_path, struct lfm2_audio_params params);
LFM2_AUDIO_API void lfm2_audio_free(lfm2_audio *a);

LFM2_AUDIO_API const struct lfm2_audio_hparams *lfm2_audio_get_hparams(const lfm2_audio *a);
LFM2_AUDIO_API const struct lfm2_audio_params *lfm2_audio_get_params(const lfm2_audio *a);
LFM2_AUDIO_API int lfm2_audio_n_embd_out(const lfm2_audio *a);
LFM2_AUDIO_API const char *lfm2_audio_path(const lfm2_audio *a);
/* e.g. "lfm2a mmproj: FastConformer 17L 512d 8h ffn 2048, subsampling ×8 (256 ch), adapter
 * 512→2048→2048 (F16)" */
LFM2_AUDIO_API const char *lfm2_audio_desc(const lfm2_audio *a);
LFM2_AUDIO_API lfm2_pool *lfm2_audio_pool(lfm2_audio *a);

/* Checks that the adapter output feeds this text model (n_embd equal; in LLAMACPP mode also
 * a.position_embd's width, which mtmd takes as the projector width). */
LFM2_AUDIO_API int lfm2_audio_check_text_model(const lfm2_audio *a, const lfm2_model *text);

/* Longest input one encode takes, in samples (LLAMACPP: mtmd's limit of 2·rows+1 frames from
 * a.position_embd; OFFICIAL: INT64_MAX — bound segments by memory and latency instead). */
LFM2_AUDIO_API int64_t lfm2_audio_max_samples(const lfm2_audio *a);

/* ---- encoding ---------------------------------------------------------------------------------- */

/* Encodes one clip of n 16 kHz mono samples (n >= 1): mel front-end, subsampling, conformer,
 * adapter. Writes lfm2_audio_n_tokens(n) rows of lfm2_audio_n_embd_out floats to out
 * (cap = floats available). Returns the number of rows, or -1. */
LFM2_AUDIO_API int64_t lfm2_audio_encode(lfm2_audio *a, const float *pcm, int64_t n, float *out, size_t cap);

/* Asked after the front-end and before each encoder layer of lfm2_audio_encode[_mel] (as
 * lfm2_set_abort_callback for the backbone): returning true stops the encode, which then
 * returns LFM2_AUDIO_ENCODE_ABORTED with `out` undefined; the context stays usable. NULL (the
 * default) never stops. A context shared by several users: set it for the call, under the
 * lock that serializes the calls. */
LFM2_AUDIO_API void lfm2_audio_set_abort_callback(lfm2_audio *a, lfm2_abort_callback callback, void *data);
#define LFM2_AUDIO_ENCODE_ABORTED (-2)

/* The front-end alone, in this context's mode (same as lfm2_mel_compute). */
LFM2_AUDIO_API int64_t lfm2_audio_mel(lfm2_audio *a, const float *pcm, int64_t n, float *out, int64_t ld);

/* Encodes an already computed normalized log-mel ([n_mel][ld] mel-major, n_frames columns).
 * Returns lfm2_audio_n_tokens_for_frames(n_frames) rows, or -1. */
LFM2_AUDIO_API int64_t lfm2_audio_encode_mel(lfm2_audio *a, const float *mel, int64_t n_frames, int64_t ld,
                              float *out, size_t cap);

/* Time spent in the last encode, milliseconds. */
struct lfm2_audio_timings {
    double mel_ms;         /* front-end */
    double encode_ms;      /* subsampling + conformer + adapter */
    double subsample_ms;   /*   of which the subsampling convolutions */
    double matmul_ms;      /*   of which matrix products (weights) */
    double attention_ms;   /*   of which relative-position attention */
    int64_t n_samples, n_frames, n_tokens;
};
LFM2_AUDIO_API struct lfm2_audio_timings lfm2_audio_last_timings(const lfm2_audio *a);

/* Bytes of scratch memory the context holds (grows to the longest clip seen; the
 * subsampling runs in blocks of time, so it is proportional to the clip, not quadratic). */
LFM2_AUDIO_API size_t lfm2_audio_scratch_bytes(const lfm2_audio *a);

/* ---- ASR prompt (LFM2 ChatML, no audio marker tokens) ------------------------------------------- */

#define LFM2_AUDIO_ASR_SYSTEM "Perform ASR."

/* The ids before the audio rows: BOS (when the vocabulary adds one), then
 * "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n" (system NULL = "Perform ASR.",
 * "" = no system turn). Special tokens parsed. Same returns as lfm2_tokenize. */
LFM2_AUDIO_API int32_t lfm2_audio_prompt_prefix(const lfm2_model *text, const char *system, lfm2_token *out,
                                 int32_t n_max);
/* The ids after them: "<|im_end|>\n<|im_start|>assistant\n". */
LFM2_AUDIO_API int32_t lfm2_audio_prompt_suffix(const lfm2_model *text, lfm2_token *out, int32_t n_max);

/* ---- PCM conversion ------------------------------------------------------------------------------ */

/* Interleaved samples in native byte order. */
enum lfm2_sample_format {
    LFM2_SAMPLE_U8 = 0,
    LFM2_SAMPLE_S16 = 1,
    LFM2_SAMPLE_S32 = 2,
    LFM2_SAMPLE_F32 = 3,
    LFM2_SAMPLE_F64 = 4,
};

typedef struct lfm2_audio_converter lfm2_audio_converter;

/* Streaming conversion to 16 kHz mono float with libswresample: channels averaged, resampled
 * when rate != 16000. Float input is sanitized first — NaN becomes 0, values beyond ±1 (and
 * ±Inf) are clipped to ±1 — so one bad sample cannot poison the resampling filter; the output
 * is clipped to ±1 too. A change of input format means a new converter (flush the old). */
LFM2_AUDIO_API lfm2_audio_converter *lfm2_audio_converter_new(int rate, int channels, enum lfm2_sample_format fmt);
LFM2_AUDIO_API void lfm2_audio_converter_free(lfm2_audio_converter *cv);
/* Most output samples the next lfm2_audio_convert of n_in frames can produce. */
LFM2_AUDIO_API int64_t lfm2_audio_converter_max_out(const lfm2_audio_converter *cv, int64_t n_in);
/* Converts n_in frames (n_in = 0 is allowed); writes at most cap samples (cap must be at least
 * lfm2_audio_converter_max_out(n_in)). Returns the count written, or -1. */
LFM2_AUDIO_API int64_t lfm2_audio_convert(lfm2_audio_converter *cv, const void *in, int64_t n_in, float *out,
                           int64_t cap);
/* End of stream: the samples the resampler still holds. */
LFM2_AUDIO_API int64_t lfm2_audio_convert_flush(lfm2_audio_converter *cv, float *out, int64_t cap);

struct lfm2_audio_convert_stats {
    int64_t n_in;          /* input frames */
    int64_t n_out;         /* 16 kHz samples produced */
    int64_t n_nonfinite;   /* NaN / Inf input values replaced */
    int64_t n_clipped;     /* finite input values beyond ±1 clipped */
};
LFM2_AUDIO_API struct lfm2_audio_convert_stats lfm2_audio_converter_stats(const lfm2_audio_converter *cv);

/* Decodes the first audio stream of any file libavformat/libavcodec read (WAV, FLAC, MP3,
 * Ogg/Opus, AAC in MP4, a video's soundtrack …) to 16 kHz mono float (*pcm, malloc'd; free()
 * it). 16-bit PCM becomes q/32768 exactly at 16 kHz mono. info may be NULL. */
struct lfm2_audio_file_info {
    int rate, channels;          /* of the source */
    char codec[32];
    int64_t n_source;            /* source frames decoded */
    struct lfm2_audio_convert_stats stats;
};
LFM2_AUDIO_API int lfm2_audio_load_file(const char *path, float **pcm, int64_t *n,
                         struct lfm2_audio_file_info *info);
/* Silences FFmpeg's own log process-wide (for command-line tools: the error comes back in
 * lfm2_last_error). Programs that use FFmpeg themselves should leave its log alone. */
LFM2_AUDIO_API void lfm2_audio_quiet_ffmpeg_log(void);

/* ---- voice activity detection and utterance segmentation ----------------------------------------- */

/* Every 10 ms frame gets a speech score in [0, 1] from its 200–4000 Hz band level above an
 * adaptive noise floor (minimum over the last 1.5 s), an absolute level gate and the band's
 * spectral flatness (noise is flat, voiced speech is not). An utterance opens after
 * min_speech_ms of frames scoring >= threshold and closes after min_silence_ms below it, or
 * at max_segment_ms (cut at the quietest frame of its last 3 s). Utterances carry pad_ms of
 * audio before and after, less any digital silence (samples below half a 16-bit step) at their
 * edges. Silence and steady noise produce no utterance. */
struct lfm2_vad_params {
    float threshold;       /* 0.5 (the elements' vad-threshold); higher = stricter */
    float min_level_db;    /* -50: band level (dBFS, full-scale sine = 0) below which nothing
                              counts as speech */
    int min_speech_ms;     /* 60 */
    int min_silence_ms;    /* 500 */
    int pad_ms;            /* 200 */
    int max_segment_ms;    /* 30000 */
};
LFM2_AUDIO_API struct lfm2_vad_params lfm2_vad_default_params(void);

typedef struct lfm2_vad lfm2_vad;

/* One utterance: samples [start, end) of the stream, 16 kHz. pcm/n are the samples (owned
 * by the VAD, valid until its next push, pop, flush or reset). */
struct lfm2_vad_segment {
    int64_t start, end;
    const float *pcm;
    int64_t n;
    bool forced;           /* cut at max_segment_ms, speech continues in the next one */
};

LFM2_AUDIO_API lfm2_vad *lfm2_vad_new(const struct lfm2_vad_params *params);   /* NULL = defaults */
LFM2_AUDIO_API void lfm2_vad_free(lfm2_vad *v);
/* Feeds n samples. Returns the number of utterances completed and waiting to be popped, or -1
 * on a bad argument / out of memory. Memory stays bounded by the open utterance (at most
 * max_segment_ms + 2·pad_ms) plus the completed ones not popped yet. */
LFM2_AUDIO_API int lfm2_vad_push(lfm2_vad *v, const float *pcm, int64_t n);
/* End of stream: closes the open utterance (if it has speech). Returns the number waiting. */
LFM2_AUDIO_API int lfm2_vad_flush(lfm2_vad *v);
/* Takes the oldest completed utterance: 1, or 0 when none waits. */
LFM2_AUDIO_API int lfm2_vad_pop(lfm2_vad *v, struct lfm2_vad_segment *seg);
/* The open utterance so far (from its padded start to the last sample pushed), for partial
 * results: 1, or 0 when no utterance is open. */
LFM2_AUDIO_API int lfm2_vad_current(lfm2_vad *v, struct lfm2_vad_segment *seg);
/* The open utterance as it will close if no more speech comes — from its start to the last
 * speech frame + pad_ms — once all of it has been pushed (pad_ms of silence after the speech),
 * so a transcription can start before min_silence_ms confirms the end: 1, or 0 (no utterance
 * open, or speech within the last pad_ms). The utterance lfm2_vad_pop later returns is this
 * one, sample for sample, unless speech resumes or max_segment_ms cuts it first (compare
 * start and end). pcm as for lfm2_vad_current. */
LFM2_AUDIO_API int lfm2_vad_pending(lfm2_vad *v, struct lfm2_vad_segment *seg);
LFM2_AUDIO_API bool lfm2_vad_in_speech(const lfm2_vad *v);
/* Samples held: the open utterance, the pre-roll and the completed utterances not popped. */
LFM2_AUDIO_API int64_t lfm2_vad_buffered(const lfm2_vad *v);
LFM2_AUDIO_API int64_t lfm2_vad_position(const lfm2_vad *v);   /* samples pushed since creation/reset */
/* The last frame's measurements: speech score, band level (dBFS) and noise floor (dB). */
LFM2_AUDIO_API void lfm2_vad_last_frame(const lfm2_vad *v, float *score, float *level_db, float *floor_db);
/* Drops everything (open and waiting utterances, the noise estimate) and restarts at 0. */
LFM2_AUDIO_API void lfm2_vad_reset(lfm2_vad *v);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_AUDIO_H */
