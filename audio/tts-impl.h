/* tts-impl.h — what the speech-output sources of audio/ share (not installed). */
#ifndef LFM2_TTS_IMPL_H
#define LFM2_TTS_IMPL_H

#include "backbone.h"
#include "lfm2-gguf.h"
#include "lfm2-stage.h"
#include "lfm2-tts.h"

struct lfm2_depth_layer {
    const float *attn_norm, *ffn_norm;   /* [D] */
    const float *q_norm, *k_norm;        /* [head_dim] */
    const lfm2_tensor *qkv;              /* {D, D + 2·kv}: rows q, k, v */
    const lfm2_tensor *out;              /* {D, D} */
    const lfm2_tensor *w1, *w3, *w2;     /* gate, up {D, ff}; down {ff, D} */
};

struct lfm2_vocoder {
    char *path;
    lfm2_gguf *g;
    struct lfm2_vocoder_hparams hp;
    struct lfm2_owned owned;
    const lfm2_tensor *depth_linear;     /* {H, K·D} */
    const float *depth_linear_b;         /* [K·D] */
    struct lfm2_depth_layer *layers;     /* [L] */
    const lfm2_tensor **cb_embd;         /* [K] depth_embeddings.k.embedding {D, V} (lookup) */
    const float **cb_norm;               /* [K] depth_embeddings.k.embedding_norm [D] */
    const lfm2_tensor **cb_logits;       /* [K] depth_embeddings.k.to_logits {D, V} */
    const lfm2_tensor *audio_embd;       /* audio_embedding.embedding {H, K·V} (lookup) */
    const lfm2_tensor *code_embd;        /* emb.emb.weight {d, K·(V−1)} (lookup) */
    float *rope_cos, *rope_sin;          /* [K][head_dim/2]: positions 0 … K−1 */
    char desc[256];
};

struct lfm2_audio_tokenizer {
    char *path;
    lfm2_gguf *g;
    struct lfm2_backbone bb;
    char desc[256];
};

/* Row i of the detokenizer input for code frame c: (1/K) Σ_k emb.emb[k·(V−1) + c_k] (d floats).
 * Codes must already be checked (0 … V−2). */
void lfm2_vocoder_code_mean(const lfm2_vocoder *v, const int32_t *codes, float *out, float *tmp);
/* -1 with an error naming frame f and codebook k when a code is outside [0, hi]. */
int lfm2_audio_check_codes(const int32_t *codes, int n_frames, int n_codebooks, int hi);

/* The turn state machine of the loops (spec lfm2-audio-out §7), separate from the model so
 * that tests can drive it with scripted outputs. */
enum lfm2_tts_mode_state { LFM2_TTS_MS_TEXT = 0, LFM2_TTS_MS_AUDIO = 1 };

struct lfm2_tts_machine {
    enum lfm2_tts_mode mode;
    enum lfm2_tts_mode_state state;
    int left;            /* interleaved: outputs left in this run */
    bool text_done;      /* interleaved: <|text_end|> seen */
    int n_text, n_audio; /* run lengths */
};

void lfm2_tts_machine_init(struct lfm2_tts_machine *m, enum lfm2_tts_mode mode, int n_text,
                           int n_audio);
/* After a text token t (not end-of-generation): switches to audio as the mode says. */
void lfm2_tts_machine_text(struct lfm2_tts_machine *m, lfm2_token t);
/* After a frame; end: it was the end-of-audio frame. */
void lfm2_tts_machine_audio(struct lfm2_tts_machine *m, bool end);

#endif /* LFM2_TTS_IMPL_H */
