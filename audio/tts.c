/* tts.c — the generation loops of LFM2.5-Audio (spec lfm2-audio-out §7), one step at a time.
 *
 * Prompt (ChatML, BOS once):
 *   <|startoftext|><|im_start|>system\n{SYS}<|im_end|>\n<|im_start|>user\n{text | embeddings}
 *   <|im_end|>\n<|im_start|>assistant\n
 * Each step feeds the previous output to the backbone (a text token's embedding, or a frame's
 * Σ_k audio_embedding rows) and reads the last position: logits for a text token (greedy), or
 * the hidden state after the final norm for an audio frame (lfm2_audio_head_sample).
 *
 * Sequential (TTS):
 *   TEXT:  t = greedy; end of generation → stop (never fed); feed t; t = <|audio_start|> → AUDIO
 *   AUDIO: frame; c_0 = end-of-audio → the frame becomes all end codes, is fed (not heard) → TEXT
 * Interleaved (speech-to-speech), runs of 6 text tokens and 12 frames:
 *   TEXT:  t = greedy; EOG → stop; feed t; t = <|text_end|> → text_done
 *          left −= 1; left == 0 or text_done → AUDIO, left = 12
 *   AUDIO: frame; left −= 1; left == 0 and not text_done → TEXT, left = 6
 *          end-of-audio → TEXT (left unchanged)
 * A step emits its output before the next decode, so audio reaches the caller as soon as the
 * frame is vocoded. The decoder keeps its state across the text runs of a turn; an audio
 * segment ends at the end-of-audio frame (or when the turn stops inside audio), where the
 * decoder's last 480 samples are flushed, so a segment's samples are exactly the whole-utterance
 * vocoding of its frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tts-impl.h"

/* ---- the turn state machine ---------------------------------------------------------------- */

void lfm2_tts_machine_init(struct lfm2_tts_machine *m, enum lfm2_tts_mode mode, int n_text,
                           int n_audio)
{
    m->mode = mode;
    m->state = LFM2_TTS_MS_TEXT;
    m->n_text = n_text;
    m->n_audio = n_audio;
    m->left = n_text;
    m->text_done = false;
}

void lfm2_tts_machine_text(struct lfm2_tts_machine *m, lfm2_token t)
{
    if (m->mode == LFM2_TTS_SEQUENTIAL) {
        if (t == LFM2_TOKEN_AUDIO_START)
            m->state = LFM2_TTS_MS_AUDIO;
        return;
    }
    if (t == LFM2_TOKEN_TEXT_END)
        m->text_done = true;
    if (--m->left <= 0 || m->text_done) {
        m->state = LFM2_TTS_MS_AUDIO;
        m->left = m->n_audio;
    }
}

void lfm2_tts_machine_audio(struct lfm2_tts_machine *m, bool end)
{
    if (m->mode == LFM2_TTS_SEQUENTIAL) {
        if (end)
            m->state = LFM2_TTS_MS_TEXT;
        return;
    }
    if (--m->left <= 0 && !m->text_done) {
        m->state = LFM2_TTS_MS_TEXT;
        m->left = m->n_text;
    }
    if (end)
        m->state = LFM2_TTS_MS_TEXT;
}

/* ---- prompts and voices --------------------------------------------------------------------- */

static const char *const k_voice_names[4] = { "us-male", "us-female", "uk-male", "uk-female" };
static const char *const k_tts_prompts[4] = {
    "Perform TTS. Use the US male voice.",
    "Perform TTS. Use the US female voice.",
    "Perform TTS. Use the UK male voice.",
    "Perform TTS. Use the UK female voice.",
};

int lfm2_tts_voice_from_name(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, k_voice_names[i]))
            return i;
    return -1;
}

const char *lfm2_tts_voice_name(enum lfm2_tts_voice voice)
{
    return (unsigned)voice < 4 ? k_voice_names[voice] : "?";
}

const char *lfm2_tts_system_prompt(enum lfm2_tts_mode mode, enum lfm2_tts_voice voice)
{
    if (mode == LFM2_TTS_INTERLEAVED)
        return "Respond with interleaved text and audio.";
    return (unsigned)voice < 4 ? k_tts_prompts[voice] : k_tts_prompts[0];
}

/* ---- the context ---------------------------------------------------------------------------- */

struct lfm2_tts_params lfm2_tts_default_params(void)
{
    struct lfm2_tts_params p = {
        .mode = LFM2_TTS_SEQUENTIAL,
        .voice = LFM2_TTS_VOICE_US_FEMALE,
        .system_prompt = NULL,
        .audio_temperature = -1.0f,
        .audio_top_k = -1,
        .seed = 0,
        .n_predict = -1,
        .n_text = 6,
        .n_audio = 12,
        .vocode = true,
        .n_ctx = 0,
        .n_threads = 0,
    };
    return p;
}

enum pending { PEND_NONE, PEND_TOKEN, PEND_FRAME };

struct lfm2_tts {
    const lfm2_model *model;
    const lfm2_vocoder *v;
    struct lfm2_tts_params p;
    char *sys;
    bool custom_sys;             /* sys came from the caller, not from mode and voice */
    lfm2_context *ctx;
    lfm2_sampler *text_sampler;  /* greedy */
    lfm2_audio_head *head;
    lfm2_audio_decoder *dec;
    int32_t sys_pos;             /* end of the prefilled system part (checkpointed), -1 */

    /* the turn */
    bool active;
    enum lfm2_tts_stop stop;     /* set when the turn stopped; DONE follows */
    struct lfm2_tts_machine m;
    enum pending pending;
    lfm2_token pend_token;
    float *pend_embd;            /* [n_embd] a frame to feed */
    bool segment;                /* audio samples pushed since the last flush */
    int32_t codes[LFM2_AUDIO_MAX_CODEBOOKS];
    int n_steps, frame;
    int64_t sample_pos;
    float *samples;              /* [1920] */
    struct lfm2_detok detok;
    char text[64];
    double t_begin;
    struct lfm2_tts_stats st;
    double head_ms0, dec_ms0;
};

lfm2_tts *lfm2_tts_new(const lfm2_model *model, const lfm2_vocoder *v,
                       const lfm2_audio_tokenizer *t, struct lfm2_tts_params p)
{
    if (!model || !v || (p.vocode && !t)) {
        lfm2_set_error("lfm2_tts_new: a model, a vocoder%s are needed",
                       p.vocode ? " and a tokenizer (detokenizer)" : "");
        return NULL;
    }
    if (lfm2_vocoder_check_model(v, model))
        return NULL;
    if (p.n_text < 1 || p.n_audio < 1) {
        lfm2_set_error("lfm2_tts_new: interleaved run lengths %d/%d must be positive", p.n_text,
                       p.n_audio);
        return NULL;
    }
    lfm2_tts *tts = calloc(1, sizeof *tts);
    if (!tts) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    tts->model = model;
    tts->v = v;
    tts->p = p;
    tts->sys_pos = -1;
    tts->p.system_prompt = NULL;
    if (lfm2_tts_set_system_prompt(tts, p.system_prompt))
        goto fail;
    /* audio sampling defaults: llama.cpp's runner (see lfm2-tts.h) */
    const bool inter = p.mode == LFM2_TTS_INTERLEAVED;
    if (tts->p.audio_temperature < 0.0f)
        tts->p.audio_temperature = 0.8f;
    if (tts->p.audio_top_k < 0)
        tts->p.audio_top_k = inter ? 4 : 64;

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = p.n_ctx;
    cp.n_threads = p.n_threads;
    cp.embeddings = true;
    if (!(tts->ctx = lfm2_context_new(model, cp)))
        goto fail;
    lfm2_pool *pool = lfm2_context_pool(tts->ctx);

    struct lfm2_sampler_params sp = lfm2_sampler_default_params();
    sp.temperature = 0.0f;
    sp.repeat_penalty = 1.0f;
    if (!(tts->text_sampler = lfm2_sampler_new(model, sp)))
        goto fail;
    struct lfm2_audio_head_params hp = lfm2_audio_head_default_params();
    hp.temperature = tts->p.audio_temperature;
    hp.top_k = tts->p.audio_top_k;
    hp.seed = p.seed;
    hp.pool = pool;
    if (!(tts->head = lfm2_audio_head_new(v, hp)))
        goto fail;
    if (p.vocode) {
        struct lfm2_audio_decoder_params dp = lfm2_audio_decoder_default_params();
        dp.max_frames = 1;
        dp.pool = pool;
        if (!(tts->dec = lfm2_audio_decoder_new(v, t, dp)))
            goto fail;
    }
    if (!(tts->pend_embd = lfm2_alloc_aligned((size_t)v->hp.n_embd * sizeof(float))) ||
        !(tts->samples = lfm2_alloc_aligned(LFM2_AUDIO_FRAME_SAMPLES * sizeof(float))))
        goto fail;
    return tts;
fail:
    lfm2_tts_free(tts);
    return NULL;
}

void lfm2_tts_free(lfm2_tts *tts)
{
    if (!tts)
        return;
    lfm2_audio_decoder_free(tts->dec);
    lfm2_audio_head_free(tts->head);
    lfm2_sampler_free(tts->text_sampler);
    lfm2_context_free(tts->ctx);
    lfm2_free_aligned(tts->pend_embd);
    lfm2_free_aligned(tts->samples);
    free(tts->sys);
    free(tts);
}

int lfm2_tts_set_system_prompt(lfm2_tts *tts, const char *system_prompt)
{
    const char *sys = system_prompt ? system_prompt : lfm2_tts_system_prompt(tts->p.mode, tts->p.voice);
    char *copy = strdup(sys);
    if (!copy)
        return lfm2_set_error("out of memory");
    free(tts->sys);
    tts->sys = copy;
    tts->sys_pos = -1;   /* prefill it again at the next turn */
    tts->custom_sys = system_prompt != NULL;
    return 0;
}

int lfm2_tts_set_voice(lfm2_tts *tts, enum lfm2_tts_voice voice)
{
    if ((unsigned)voice > LFM2_TTS_VOICE_UK_FEMALE)
        return lfm2_set_error("lfm2_tts_set_voice: no voice %d", (int)voice);
    tts->p.voice = voice;
    return tts->custom_sys ? 0 : lfm2_tts_set_system_prompt(tts, NULL);
}

lfm2_context *lfm2_tts_context(lfm2_tts *tts)
{
    return tts->ctx;
}

lfm2_audio_head *lfm2_tts_head(lfm2_tts *tts)
{
    return tts->head;
}

lfm2_audio_decoder *lfm2_tts_decoder(lfm2_tts *tts)
{
    return tts->dec;
}

/* ---- prompt --------------------------------------------------------------------------------- */

/* A growing token buffer for the runs of tokens between embedding parts. */
struct toks {
    lfm2_token *id;
    int32_t n, cap;
};

static int toks_add_text(struct toks *b, const lfm2_model *model, const char *text, bool bos,
                         bool special)
{
    for (;;) {
        int32_t n = lfm2_tokenize(model, text, -1, b->id + b->n, b->cap - b->n, bos, special);
        if (n == INT32_MIN)
            return -1;
        if (n >= 0) {
            b->n += n;
            return 0;
        }
        int32_t cap = b->n - n + 256;
        lfm2_token *p = realloc(b->id, (size_t)cap * sizeof *p);
        if (!p)
            return lfm2_set_error("out of memory tokenizing the prompt");
        b->id = p;
        b->cap = cap;
    }
}

static int toks_add_ids(struct toks *b, const lfm2_token *ids, int32_t n)
{
    if (b->n + (int64_t)n > b->cap) {
        int32_t cap = b->n + n + 256;
        lfm2_token *p = realloc(b->id, (size_t)cap * sizeof *p);
        if (!p)
            return lfm2_set_error("out of memory");
        b->id = p;
        b->cap = cap;
    }
    memcpy(b->id + b->n, ids, (size_t)n * sizeof *ids);
    b->n += n;
    return 0;
}

static int decode_checked(lfm2_tts *tts, struct lfm2_batch b, const char *what)
{
    const int32_t room = lfm2_n_ctx(tts->ctx) - lfm2_n_past(tts->ctx);
    if (b.n_tokens > room)
        return lfm2_set_error("the prompt's %s (%d positions) does not fit the context: %d of %d "
                              "positions left",
                              what, b.n_tokens, room, lfm2_n_ctx(tts->ctx));
    return lfm2_decode(tts->ctx, b);
}

static int flush_tokens(lfm2_tts *tts, struct toks *b)
{
    if (b->n == 0)
        return 0;
    int r = decode_checked(tts, lfm2_batch_tokens(b->id, b->n), "text");
    b->n = 0;
    return r;
}

int lfm2_tts_begin(lfm2_tts *tts, const struct lfm2_tts_part *parts, int n_parts)
{
    const double t0 = lfm2_time_ms();
    struct toks b = { 0 };
    int r = -1;
    tts->active = false;
    lfm2_set_logits(tts->ctx, true);   /* the prompt's last row gives the first text token */

    /* the system part once; later turns rewind to its end */
    if (tts->sys_pos < 0 || lfm2_rewind(tts->ctx, tts->sys_pos)) {
        lfm2_clear_error();
        size_t len = strlen(tts->sys) + 64;
        char *s = malloc(len);
        if (!s) {
            lfm2_set_error("out of memory");
            goto out;
        }
        snprintf(s, len, "<|im_start|>system\n%s<|im_end|>\n", tts->sys);
        tts->sys_pos = -1;
        r = lfm2_rewind(tts->ctx, 0) || toks_add_text(&b, tts->model, s, true, true) ||
            flush_tokens(tts, &b) || lfm2_checkpoint(tts->ctx);
        free(s);
        if (r)
            goto out;
        r = -1;
        tts->sys_pos = lfm2_n_past(tts->ctx);
    }
    /* user turn: text is spoken literally (no control tokens parsed from it); the "\n" after
     * "user" joins the first text part as in the rendered template */
    if (toks_add_text(&b, tts->model, "<|im_start|>user", false, true))
        goto out;
    bool nl = true;
    for (int i = 0; i < n_parts; i++) {
        const struct lfm2_tts_part *pt = &parts[i];
        if (!!pt->text + !!pt->tokens + !!pt->embd != 1) {
            lfm2_set_error("lfm2_tts_begin: part %d must have exactly one of text, tokens, embd", i);
            goto out;
        }
        if (pt->text) {
            size_t len = strlen(pt->text);
            char *s = malloc(len + 2);
            if (!s) {
                lfm2_set_error("out of memory");
                goto out;
            }
            snprintf(s, len + 2, "%s%s", nl ? "\n" : "", pt->text);
            int e = toks_add_text(&b, tts->model, s, false, false);
            free(s);
            if (e)
                goto out;
            nl = false;
            continue;
        }
        if (nl && toks_add_text(&b, tts->model, "\n", false, false))
            goto out;
        nl = false;
        if (pt->tokens) {
            if (pt->n_tokens < 0 || toks_add_ids(&b, pt->tokens, pt->n_tokens))
                goto out;
        } else if (pt->n_embd_rows > 0) {
            if (flush_tokens(tts, &b) ||
                decode_checked(tts, lfm2_batch_embd(pt->embd, pt->n_embd_rows), "embeddings"))
                goto out;
        }
    }
    if ((nl && toks_add_text(&b, tts->model, "\n", false, false)) ||
        toks_add_text(&b, tts->model, "<|im_end|>\n<|im_start|>assistant\n", false, true) ||
        flush_tokens(tts, &b))
        goto out;

    /* a new turn */
    lfm2_tts_machine_init(&tts->m, tts->p.mode, tts->p.n_text, tts->p.n_audio);
    lfm2_audio_head_reset(tts->head);
    if (tts->dec)
        lfm2_audio_decoder_reset(tts->dec);
    lfm2_detok_init(&tts->detok, false);
    tts->pending = PEND_NONE;
    tts->segment = false;
    tts->stop = LFM2_TTS_STOP_NONE;
    tts->n_steps = tts->frame = 0;
    tts->sample_pos = 0;
    memset(&tts->st, 0, sizeof tts->st);
    tts->t_begin = t0;
    tts->st.prefill_ms = lfm2_time_ms() - t0;
    tts->st.backbone_ms = tts->st.prefill_ms;
    tts->st.first_audio_ms = -1.0;
    tts->head_ms0 = lfm2_audio_head_ms(tts->head, NULL);
    tts->dec_ms0 = tts->dec ? lfm2_audio_decoder_ms(tts->dec, NULL, NULL) : 0.0;
    tts->active = true;
    r = 0;
out:
    free(b.id);
    return r;
}

int lfm2_tts_begin_text(lfm2_tts *tts, const char *text)
{
    struct lfm2_tts_part part = { .text = text ? text : "" };
    return lfm2_tts_begin(tts, &part, 1);
}

/* ---- steps ---------------------------------------------------------------------------------- */

static void update_stats(lfm2_tts *tts)
{
    tts->st.total_ms = lfm2_time_ms() - tts->t_begin;
    tts->st.head_ms = lfm2_audio_head_ms(tts->head, NULL) - tts->head_ms0;
    tts->st.decoder_ms = tts->dec ? lfm2_audio_decoder_ms(tts->dec, NULL, NULL) - tts->dec_ms0 : 0.0;
}

/* The end of an audio segment: the decoder's last samples. */
static void end_segment(lfm2_tts *tts, struct lfm2_tts_event *ev)
{
    ev->kind = LFM2_TTS_EVENT_AUDIO_END;
    ev->samples = tts->samples;
    ev->n_samples = 0;
    ev->sample_pos = tts->sample_pos;
    if (tts->dec && tts->segment)
        ev->n_samples = lfm2_audio_decoder_flush(tts->dec, tts->samples, LFM2_AUDIO_FRAME_SAMPLES);
    if (ev->n_samples < 0)
        ev->n_samples = 0;
    tts->segment = false;
    tts->sample_pos += ev->n_samples;
    tts->st.n_samples += ev->n_samples;
}

static int finish(lfm2_tts *tts, enum lfm2_tts_stop stop, struct lfm2_tts_event *ev)
{
    tts->stop = stop;
    if (tts->segment) { /* stopped inside audio: flush first, DONE on the next call */
        end_segment(tts, ev);
        ev->codes = NULL;
        return 1;
    }
    ev->kind = LFM2_TTS_EVENT_DONE;
    ev->stop = stop;
    ev->sample_pos = tts->sample_pos;
    tts->active = false;
    update_stats(tts);
    return 1;
}

int lfm2_tts_step(lfm2_tts *tts, struct lfm2_tts_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!tts->active)
        return 0;
    if (tts->stop != LFM2_TTS_STOP_NONE)
        return finish(tts, tts->stop, ev);

    /* 1. feed the previous output */
    if (tts->pending != PEND_NONE) {
        if (lfm2_n_past(tts->ctx) >= lfm2_n_ctx(tts->ctx))
            return finish(tts, LFM2_TTS_STOP_CONTEXT, ev);
        /* the LM head only when the next output is a text token */
        lfm2_set_logits(tts->ctx, tts->m.state == LFM2_TTS_MS_TEXT);
        const double t0 = lfm2_time_ms();
        const int r = tts->pending == PEND_TOKEN ? lfm2_decode(tts->ctx, lfm2_batch_tokens(&tts->pend_token, 1))
                                                 : lfm2_decode(tts->ctx, lfm2_batch_embd(tts->pend_embd, 1));
        tts->st.backbone_ms += lfm2_time_ms() - t0;
        tts->pending = PEND_NONE;
        if (r) {
            tts->active = false;
            return -1;
        }
    }
    if (tts->p.n_predict >= 0 && tts->n_steps >= tts->p.n_predict)
        return finish(tts, LFM2_TTS_STOP_LIMIT, ev);

    /* 2. the next output */
    if (tts->m.state == LFM2_TTS_MS_TEXT) {
        const float *logits = lfm2_get_logits(tts->ctx, -1);
        if (!logits) {
            tts->active = false;
            return -1;
        }
        const lfm2_token t = lfm2_sampler_sample(tts->text_sampler, logits);
        if (lfm2_token_is_eog(tts->model, t))
            return finish(tts, LFM2_TTS_STOP_EOG, ev);
        const int32_t n = lfm2_detok_push(tts->model, &tts->detok, t, tts->text, sizeof tts->text);
        ev->kind = LFM2_TTS_EVENT_TEXT;
        ev->token = t;
        ev->text = n >= 0 ? tts->text : "";
        ev->sample_pos = tts->sample_pos;
        tts->pending = PEND_TOKEN;
        tts->pend_token = t;
        tts->st.n_text++;
        lfm2_tts_machine_text(&tts->m, t);
    } else {
        const float *h = lfm2_get_embeddings(tts->ctx, -1);
        if (!h || lfm2_audio_head_sample(tts->head, h, tts->codes)) {
            tts->active = false;
            return -1;
        }
        const bool end = lfm2_audio_frame_end(tts->v, tts->codes);
        if (lfm2_audio_head_embed(tts->head, tts->codes, tts->pend_embd)) {
            tts->active = false;
            return -1;
        }
        tts->pending = PEND_FRAME;
        if (end) {
            end_segment(tts, ev);
        } else {
            ev->kind = LFM2_TTS_EVENT_AUDIO;
            ev->frame = tts->frame++;
            ev->samples = tts->samples;
            ev->sample_pos = tts->sample_pos;
            if (tts->dec) {
                ev->n_samples = lfm2_audio_decoder_push(tts->dec, tts->codes, 1, tts->samples,
                                                        LFM2_AUDIO_FRAME_SAMPLES);
                if (ev->n_samples < 0) {
                    tts->active = false;
                    return -1;
                }
                tts->segment = true;
            }
            tts->sample_pos += ev->n_samples;
            tts->st.n_samples += ev->n_samples;
            tts->st.n_frames++;
            if (tts->st.first_audio_ms < 0 && (ev->n_samples > 0 || !tts->dec))
                tts->st.first_audio_ms = lfm2_time_ms() - tts->t_begin;
        }
        ev->codes = tts->codes;
        lfm2_tts_machine_audio(&tts->m, end);
    }
    tts->n_steps++;
    update_stats(tts);
    return 1;
}

void lfm2_tts_get_stats(const lfm2_tts *tts, struct lfm2_tts_stats *st)
{
    *st = tts->st;
}
