/* lfm2-tts.h — LFM2.5-Audio speech output: the audio head (depth transformer emitting codec
 * frames from the backbone's hidden state), the detokenizer (codes → 24 kHz waveform: code
 * embedding, ×6 upsampling, an LFM2 stack with sliding-window attention, a 1282-wide spectral
 * head and an ISTFT), and the generation loops (sequential TTS, interleaved text + audio).
 *
 * The published LFM2.5-Audio-1.5B-GGUF set has four files; speech output needs three:
 *   LFM2.5-Audio-1.5B-*.gguf   the backbone (an lfm2 model: lfm2_model_load)
 *   vocoder-*.gguf             audio head, frame embedding, the detokenizer's code embedding
 *   tokenizer-*.gguf           the detokenizer's LFM2 stack and spectral head
 * (mmproj-*.gguf is the speech-input encoder, see the ASR library.)
 *
 * Flat C API in the style of whisper.cpp / lfm2.h:
 *   lfm2_vocoder *voc = lfm2_vocoder_load("vocoder.gguf", lfm2_vocoder_default_params());
 *   lfm2_audio_tokenizer *tok = lfm2_audio_tokenizer_load("tokenizer.gguf", ...default_params());
 *   struct lfm2_tts_params p = lfm2_tts_default_params();        edit (voice, mode, sampling)
 *   lfm2_tts *tts = lfm2_tts_new(model, voc, tok, p);
 *   lfm2_tts_begin_text(tts, "Hello.");                          prefill the prompt
 *   struct lfm2_tts_event ev;
 *   while (lfm2_tts_step(tts, &ev) > 0)                         one backbone step each
 *       if (ev.n_samples) play(ev.samples, ev.n_samples);        24 kHz mono float
 * Lower layers, for elements that split the work (tensor caps): lfm2_audio_head (hidden state →
 * one frame of codes), lfm2_audio_decoder (codes → samples, streaming), lfm2_istft.
 *
 * Models and contexts: lfm2_vocoder and lfm2_audio_tokenizer are immutable after loading and
 * may be shared by any number of heads/decoders on any threads. lfm2_audio_head,
 * lfm2_audio_decoder, lfm2_istft and lfm2_tts are used by one thread at a time.
 *
 * Numbers: every product runs on the engine's kernels with float32 activations (F16/BF16
 * matrices are widened to F32 at load unless params.ggml_rounding is set; quantized matrices
 * take Q8_0-rounded activations, as in llama.cpp), so the fixtures' float32 tier applies.
 *
 * Errors: functions return NULL or a negative value and leave a message in lfm2_last_error()
 * naming the file, the key or tensor and the reason.
 */
#ifndef LFM2_TTS_H
#define LFM2_TTS_H

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

#define LFM2_AUDIO_SAMPLE_RATE 24000
#define LFM2_AUDIO_FRAME_SAMPLES 1920   /* 80 ms: one frame of codes = 6 spectra × hop 320 */
#define LFM2_AUDIO_N_FFT 1280
#define LFM2_AUDIO_HOP 320
#define LFM2_AUDIO_UPSAMPLE 6           /* detokenizer rows per code frame */
#define LFM2_AUDIO_TRIM 480             /* "same" padding: (n_fft − hop) / 2 */
#define LFM2_AUDIO_MAX_CODEBOOKS 32

typedef struct lfm2_vocoder lfm2_vocoder;
typedef struct lfm2_audio_tokenizer lfm2_audio_tokenizer;
typedef struct lfm2_audio_head lfm2_audio_head;
typedef struct lfm2_audio_decoder lfm2_audio_decoder;
typedef struct lfm2_istft lfm2_istft;
typedef struct lfm2_tts lfm2_tts;

/* ---- vocoder file ------------------------------------------------------------------------- */

struct lfm2_vocoder_params {
    bool use_mmap;        /* true */
    bool ggml_rounding;   /* false: F16/BF16 matrices widened to F32 (float32 activations);
                             true: used as stored, activations rounded to half precision as
                             llama.cpp's CPU backend does (half the memory and bandwidth) */
    bool verbose;         /* print load information to stderr */
};

LFM2_AUDIO_API struct lfm2_vocoder_params lfm2_vocoder_default_params(void);

/* Sizes, all derived from the file's tensors (the key depthformer_n_layer gives L). */
struct lfm2_vocoder_hparams {
    int n_embd;           /* H: backbone width (depth_linear input) */
    int n_depth_embd;     /* D: depth transformer width */
    int n_layer;          /* L */
    int n_head, n_head_kv, head_dim;
    int n_ff;
    int n_codebooks;      /* K (8) */
    int n_codes;          /* V: entries per codebook including end-of-audio (2049) */
    int eoa;              /* end-of-audio code V − 1 (2048) */
    int n_code_embd;      /* d: detokenizer code embedding width (emb.emb) */
    float rope_freq_base; /* 1e6 (not in the file; every reference uses it) */
    float norm_eps;       /* 1e-5 */
};

/* Loads vocoder-*.gguf. Every offset and size is checked; tensors not used are ignored. */
LFM2_AUDIO_API lfm2_vocoder *lfm2_vocoder_load(const char *path, struct lfm2_vocoder_params params);
LFM2_AUDIO_API void lfm2_vocoder_free(lfm2_vocoder *v);
LFM2_AUDIO_API const struct lfm2_vocoder_hparams *lfm2_vocoder_get_hparams(const lfm2_vocoder *v);
LFM2_AUDIO_API const char *lfm2_vocoder_path(const lfm2_vocoder *v);
/* e.g. "vocoder: depthformer 6L 1024d 32/8 heads ff 2816, 8×2049 codes, H 2048, d 512 (Q8_0)" */
LFM2_AUDIO_API const char *lfm2_vocoder_desc(const lfm2_vocoder *v);
/* Checks that the backbone's width is the vocoder's H (error names both files). */
LFM2_AUDIO_API int lfm2_vocoder_check_model(const lfm2_vocoder *v, const lfm2_model *backbone);

/* ---- audio head: backbone hidden state → one frame of codes ---------------------------------- */

struct lfm2_audio_head_params {
    float temperature;    /* 0.8 (TTS); <= 0 greedy (first maximum) */
    int top_k;            /* 64 (TTS); 0 = all */
    uint64_t seed;        /* 0; the stream continues across frames and restarts on reset */
    int n_threads;        /* 0 = number of cores; ignored when pool is set */
    lfm2_pool *pool;      /* borrow this pool (e.g. lfm2_tts shares the backbone's) */
};

LFM2_AUDIO_API struct lfm2_audio_head_params lfm2_audio_head_default_params(void);
LFM2_AUDIO_API lfm2_audio_head *lfm2_audio_head_new(const lfm2_vocoder *v, struct lfm2_audio_head_params p);
LFM2_AUDIO_API void lfm2_audio_head_free(lfm2_audio_head *h);
/* Changes the sampling of later frames (the interleaved loop and the TTS loop differ). */
LFM2_AUDIO_API int lfm2_audio_head_set_sampling(lfm2_audio_head *h, float temperature, int top_k, uint64_t seed);
/* Restarts the sampler's random stream from its seed. */
LFM2_AUDIO_API void lfm2_audio_head_reset(lfm2_audio_head *h);

/* One frame from hidden (n_embd floats: the backbone state after its final norm, before the
 * LM head): the depth transformer's cache is cleared, then K steps each sample one code.
 * codes[0…K-1] are the raw samples: a frame with codes[0] == eoa ends the audio (the loops
 * rewrite it to all eoa, lfm2_audio_frame_end). Returns 0 or -1. */
LFM2_AUDIO_API int lfm2_audio_head_sample(lfm2_audio_head *h, const float *hidden, int32_t *codes);
/* The logits codebook k had in the last lfm2_audio_head_sample (n_codes floats). */
LFM2_AUDIO_API const float *lfm2_audio_head_logits(const lfm2_audio_head *h, int k);
/* The backbone input that feeds a frame back: Σ_k audio_embedding[k·V + codes[k]]
 * (n_embd floats; codes 0 … V−1, the end-of-audio frame included). Returns 0 or -1. */
LFM2_AUDIO_API int lfm2_audio_head_embed(lfm2_audio_head *h, const int32_t *codes, float *out);
/* The end-of-audio rule: true when codes[0] is the end code, and then every code is set to it. */
LFM2_AUDIO_API bool lfm2_audio_frame_end(const lfm2_vocoder *v, int32_t *codes);
/* Time spent in lfm2_audio_head_sample since creation (ms) and frames sampled. */
LFM2_AUDIO_API double lfm2_audio_head_ms(const lfm2_audio_head *h, int64_t *n_frames);

/* ---- detokenizer: codes → 24 kHz samples ---------------------------------------------------- */

struct lfm2_audio_tokenizer_params {
    bool use_mmap;        /* true */
    bool ggml_rounding;   /* as in lfm2_vocoder_params */
    bool verbose;
};

LFM2_AUDIO_API struct lfm2_audio_tokenizer_params lfm2_audio_tokenizer_default_params(void);
/* Loads tokenizer-*.gguf: arch lfm2 with attention.sliding_window and embedding_length_out
 * 1282, run through the engine's LFM2 backbone (embeddings in, dense_2 head out). */
LFM2_AUDIO_API lfm2_audio_tokenizer *lfm2_audio_tokenizer_load(const char *path,
                                                               struct lfm2_audio_tokenizer_params params);
LFM2_AUDIO_API void lfm2_audio_tokenizer_free(lfm2_audio_tokenizer *t);
LFM2_AUDIO_API const char *lfm2_audio_tokenizer_path(const lfm2_audio_tokenizer *t);
/* e.g. "tokenizer: lfm2 8L 512d (3 attention, window 30) → 1282 (F16)" */
LFM2_AUDIO_API const char *lfm2_audio_tokenizer_desc(const lfm2_audio_tokenizer *t);

struct lfm2_audio_decoder_params {
    int max_frames;       /* frames per internal batch (default 16); longer pushes are split */
    int n_threads;        /* 0 = number of cores; ignored when pool is set */
    lfm2_pool *pool;      /* borrow this pool */
};

LFM2_AUDIO_API struct lfm2_audio_decoder_params lfm2_audio_decoder_default_params(void);
/* A streaming decoder over a vocoder (code embedding) and a tokenizer (the rest); checks that
 * the two files fit each other (error names both). */
LFM2_AUDIO_API lfm2_audio_decoder *lfm2_audio_decoder_new(const lfm2_vocoder *v, const lfm2_audio_tokenizer *t,
                                                          struct lfm2_audio_decoder_params p);
LFM2_AUDIO_API void lfm2_audio_decoder_free(lfm2_audio_decoder *d);
/* Decodes n frames of K codes (each 0 … eoa−1; -1 with an error naming the frame and codebook
 * otherwise, nothing decoded) and writes the samples they complete to out (cap floats, at
 * least 1920·n): 1920 per frame, except that the first 480 samples of an utterance are
 * dropped once ("same" padding). Returns the number of samples, or -1. */
LFM2_AUDIO_API int lfm2_audio_decoder_push(lfm2_audio_decoder *d, const int32_t *codes, int n_frames,
                                           float *out, size_t cap);
/* Ends the utterance: writes the last 480 samples (0 if nothing was pushed) and resets. So the
 * samples of push… + flush equal the whole-utterance ISTFT of every frame, 1920·N in all. */
LFM2_AUDIO_API int lfm2_audio_decoder_flush(lfm2_audio_decoder *d, float *out, size_t cap);
/* Forgets the utterance (detokenizer caches and ISTFT overlap). */
LFM2_AUDIO_API void lfm2_audio_decoder_reset(lfm2_audio_decoder *d);
/* Stage outputs without the ISTFT (advances the detokenizer state as push does): in_rows
 * (NULL or 6n × d floats) the upsampled code embeddings, spec (NULL or 6n × 1282 floats) the
 * spectra: 641 log|X| then 641 phases per row. Returns 0 or -1. */
LFM2_AUDIO_API int lfm2_audio_decoder_spectra(lfm2_audio_decoder *d, const int32_t *codes, int n_frames,
                                              float *in_rows, float *spec);
/* Time spent decoding since creation (ms): detokenizer stack, ISTFT; samples produced. */
LFM2_AUDIO_API double lfm2_audio_decoder_ms(const lfm2_audio_decoder *d, double *istft_ms, int64_t *n_samples);

/* ---- ISTFT ("same" padding, periodic Hann, overlap-add; libavutil's real FFT) ---------------- */

LFM2_AUDIO_API lfm2_istft *lfm2_istft_new(void);   /* n_fft 1280, hop 320 */
LFM2_AUDIO_API void lfm2_istft_free(lfm2_istft *s);
/* One spectrum (n_fft/2+1 log-magnitudes, then as many phases; the imaginary parts of bins 0
 * and n_fft/2 are ignored): x = irfft(exp(log|X|)·e^{iφ}) · w is added at the running offset
 * and the hop samples now complete are written to out (320; fewer while the first 480 samples
 * are dropped). Returns the count. */
LFM2_AUDIO_API int lfm2_istft_push(lfm2_istft *s, const float *log_mag, const float *phase, float *out);
/* The 480 samples after the last complete hop (0 if nothing was pushed); then resets. */
LFM2_AUDIO_API int lfm2_istft_flush(lfm2_istft *s, float *out);
LFM2_AUDIO_API void lfm2_istft_reset(lfm2_istft *s);

/* ---- PCM ------------------------------------------------------------------------------------ */

/* int16 = trunc(clamp(x, −1, 1) · 32767) (llama.cpp's conversion); NaN gives 0. */
LFM2_AUDIO_API void lfm2_audio_to_s16(const float *x, int16_t *y, size_t n);
/* Writes a 16-bit PCM mono WAV at 24 kHz (error names the file). */
LFM2_AUDIO_API int lfm2_audio_write_wav(const char *path, const float *x, size_t n);

/* ---- generation loops ----------------------------------------------------------------------- */

enum lfm2_tts_mode {
    LFM2_TTS_SEQUENTIAL = 0,    /* TTS: text, <|audio_start|> switches to audio until its end */
    LFM2_TTS_INTERLEAVED = 1,   /* speech-to-speech: 6 text tokens / 12 frames until <|text_end|> */
};

enum lfm2_tts_voice {
    LFM2_TTS_VOICE_US_MALE = 0,
    LFM2_TTS_VOICE_US_FEMALE,
    LFM2_TTS_VOICE_UK_MALE,
    LFM2_TTS_VOICE_UK_FEMALE,
};

/* "us-male" … "uk-female" ↔ voice; -1 for an unknown name. */
LFM2_AUDIO_API int lfm2_tts_voice_from_name(const char *name);
LFM2_AUDIO_API const char *lfm2_tts_voice_name(enum lfm2_tts_voice voice);
/* The exact system prompt of a mode (and voice): "Perform TTS. Use the US male voice." …,
 * "Respond with interleaved text and audio." */
LFM2_AUDIO_API const char *lfm2_tts_system_prompt(enum lfm2_tts_mode mode, enum lfm2_tts_voice voice);

/* Special tokens of the LFM2-Audio backbone vocabulary. */
#define LFM2_TOKEN_AUDIO_START 128      /* <|audio_start|> */
#define LFM2_TOKEN_TEXT_START 129       /* <|text_start|> */
#define LFM2_TOKEN_TEXT_END 130         /* <|text_end|> */

struct lfm2_tts_params {
    enum lfm2_tts_mode mode;          /* SEQUENTIAL */
    enum lfm2_tts_voice voice;        /* US_FEMALE */
    const char *system_prompt;        /* NULL = lfm2_tts_system_prompt(mode, voice); copied */
    /* audio sampling; < 0 = the mode's default: sequential T 0.8 top_k 64, interleaved T 0.8
     * top_k 4 (llama.cpp's runner, which the GGUF set ships; liquid-audio uses T 1.0 there).
     * Text tokens are always greedy, as in every reference. */
    float audio_temperature;
    int audio_top_k;
    uint64_t seed;                    /* 0 */
    int n_predict;                    /* text tokens + frames per turn; -1 = until the end of
                                         the turn or a full context */
    int n_text, n_audio;              /* interleaved run lengths (6, 12) */
    bool vocode;                      /* true: frames become samples (needs a tokenizer) */
    int n_ctx;                        /* backbone context (0 = 4096) */
    int n_threads;                    /* 0 = number of cores */
};

LFM2_AUDIO_API struct lfm2_tts_params lfm2_tts_default_params(void);

/* A generation context over a backbone (lfm2), a vocoder and (when params.vocode) a tokenizer.
 * Creates its own backbone context (embeddings on) and thread pool, shared by all stages. */
LFM2_AUDIO_API lfm2_tts *lfm2_tts_new(const lfm2_model *model, const lfm2_vocoder *v,
                                      const lfm2_audio_tokenizer *t, struct lfm2_tts_params params);
LFM2_AUDIO_API void lfm2_tts_free(lfm2_tts *tts);
/* Another system prompt for later turns (e.g. a voice property changed; NULL = the mode's and
 * voice's own): the cached system part is prefilled again at the next turn. */
LFM2_AUDIO_API int lfm2_tts_set_system_prompt(lfm2_tts *tts, const char *system_prompt);
/* Changes the voice of later turns (and with it the default TTS prompt). */
LFM2_AUDIO_API int lfm2_tts_set_voice(lfm2_tts *tts, enum lfm2_tts_voice voice);
LFM2_AUDIO_API lfm2_context *lfm2_tts_context(lfm2_tts *tts);
LFM2_AUDIO_API lfm2_audio_head *lfm2_tts_head(lfm2_tts *tts);
LFM2_AUDIO_API lfm2_audio_decoder *lfm2_tts_decoder(lfm2_tts *tts);   /* NULL without vocode */

/* One piece of the user turn, in order: UTF-8 text (spoken literally: control-token text is
 * not parsed), token ids, or embedding rows in the backbone's width (e.g. the ASR encoder's
 * output for speech input). Exactly one of text / tokens / embd is set. */
struct lfm2_tts_part {
    const char *text;
    const lfm2_token *tokens;
    int32_t n_tokens;
    const float *embd;
    int32_t n_embd_rows;
};

/* Starts a turn: the prompt is
 *   <|startoftext|><|im_start|>system\n{SYS}<|im_end|>\n<|im_start|>user\n{parts}<|im_end|>\n
 *   <|im_start|>assistant\n
 * prefilled in one batch per piece (the system part is kept and reused by later turns with the
 * same prompt). Earlier turns are forgotten. Returns 0 or -1. */
LFM2_AUDIO_API int lfm2_tts_begin(lfm2_tts *tts, const struct lfm2_tts_part *parts, int n_parts);
LFM2_AUDIO_API int lfm2_tts_begin_text(lfm2_tts *tts, const char *text);

enum lfm2_tts_event_kind {
    LFM2_TTS_EVENT_TEXT = 1,    /* a text token (fed back) */
    LFM2_TTS_EVENT_AUDIO,       /* a frame of codes and (vocode) its samples */
    LFM2_TTS_EVENT_AUDIO_END,   /* the audio segment ended: the end-of-audio frame (codes all
                                   eoa), or the turn stopped inside audio (codes NULL); samples
                                   are the decoder's last 480 */
    LFM2_TTS_EVENT_DONE,        /* the turn is over (stop says why) */
};

enum lfm2_tts_stop {
    LFM2_TTS_STOP_NONE = 0,
    LFM2_TTS_STOP_EOG,          /* the model ended its turn (<|im_end|> …; never fed) */
    LFM2_TTS_STOP_LIMIT,        /* n_predict reached */
    LFM2_TTS_STOP_CONTEXT,      /* the backbone context is full */
};

struct lfm2_tts_event {
    enum lfm2_tts_event_kind kind;
    lfm2_token token;           /* TEXT */
    const char *text;           /* TEXT: the UTF-8 the token completes ("" for control tokens) */
    const int32_t *codes;       /* AUDIO, AUDIO_END: K codes */
    int frame;                  /* AUDIO: index of the frame in the turn */
    const float *samples;       /* AUDIO, AUDIO_END: 24 kHz mono, valid until the next step */
    int n_samples;
    int64_t sample_pos;         /* samples emitted in this turn before these (timestamps) */
    enum lfm2_tts_stop stop;    /* DONE */
};

/* Runs one step of the turn (one backbone decode for the previous output, then one text
 * token or one audio frame, vocoded at once) and describes it in *ev. Returns 1 with an
 * event, 0 when the turn is over (after its DONE event), -1 on error. */
LFM2_AUDIO_API int lfm2_tts_step(lfm2_tts *tts, struct lfm2_tts_event *ev);

/* Per-turn timings (ms since lfm2_tts_begin) and counts. */
struct lfm2_tts_stats {
    double prefill_ms;          /* prompt */
    double first_audio_ms;      /* begin → first samples (or first frame without vocode); -1 */
    double total_ms;            /* begin → last step */
    double backbone_ms, head_ms, decoder_ms;
    int n_text, n_frames;
    int64_t n_samples;
};
LFM2_AUDIO_API void lfm2_tts_get_stats(const lfm2_tts *tts, struct lfm2_tts_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* LFM2_TTS_H */
