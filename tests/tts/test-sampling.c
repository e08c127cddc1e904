/* test-sampling — the audio head's code selection and the loops' state machine:
 *   greedy = the first maximum of each codebook's logits (codebooks 1…7 without the end code);
 *   seeded sampling is deterministic (same seed → same frames, reset → the same again,
 *     another seed → other frames), top-k keeps to the k largest logits, top-k 1 is greedy;
 *   the turn state machine against the spec's pseudo-code, transcribed here, on random
 *     sequences of outputs. */
#include "tts-impl.h"
#include "ttest.h"

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static lfm2_audio_head *head(const lfm2_vocoder *v, float temp, int top_k, uint64_t seed)
{
    struct lfm2_audio_head_params p = lfm2_audio_head_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.seed = seed;
    p.n_threads = 1;
    lfm2_audio_head *h = lfm2_audio_head_new(v, p);
    if (!h) {
        fprintf(stderr, "%s\n", lfm2_last_error());
        exit(1);
    }
    return h;
}

/* frames of n rows (cycled) of the fixture's hidden states */
static void frames(lfm2_audio_head *h, const float *hidden, int n, int32_t *codes)
{
    for (int f = 0; f < n; f++)
        CHECK(lfm2_audio_head_sample(h, hidden + (size_t)(f % 24) * 64, codes + f * 8) == 0, "sample");
}

static void test_heads(void)
{
    size_t nh;
    float *hidden = tt_floats("hidden.f32", &nh);
    lfm2_vocoder *v = tt_vocoder(false);
    enum { F = 48 };
    static int32_t a[F * 8], b[F * 8], c[F * 8];

    /* greedy */
    lfm2_audio_head *g = head(v, 0.0f, 64, 0);
    for (int f = 0; f < 24; f++) {
        int32_t codes[8];
        lfm2_audio_head_sample(g, hidden + (size_t)f * 64, codes);
        for (int k = 0; k < 8; k++)
            CHECK_INT(codes[k], argmax(lfm2_audio_head_logits(g, k), k ? 2048 : 2049), "greedy code");
    }
    frames(g, hidden, F, c);

    /* seeded sampling (the TTS defaults) */
    lfm2_audio_head *h1 = head(v, 0.8f, 64, 7), *h2 = head(v, 0.8f, 64, 7), *h3 = head(v, 0.8f, 64, 8);
    frames(h1, hidden, F, a);
    frames(h2, hidden, F, b);
    CHECK(!memcmp(a, b, sizeof a), "same seed, same frames");
    frames(h3, hidden, F, b);
    CHECK(memcmp(a, b, sizeof a), "another seed, other frames");
    CHECK(memcmp(a, c, sizeof a), "sampled frames equal the greedy ones");
    lfm2_audio_head_reset(h1);
    frames(h1, hidden, F, b);
    CHECK(!memcmp(a, b, sizeof a), "reset replays the stream");
    int eoa_late = 0;
    for (int f = 0; f < F; f++)
        for (int k = 1; k < 8; k++)
            eoa_late += a[f * 8 + k] == 2048;
    CHECK_INT(eoa_late, 0, "end codes in codebooks 1…7");

    /* top-k 1 is greedy; top-k 4 keeps to the four largest logits */
    CHECK(lfm2_audio_head_set_sampling(h1, 0.8f, 1, 3) == 0, "set_sampling");
    frames(h1, hidden, F, b);
    CHECK(!memcmp(b, c, sizeof b), "top-k 1 equals greedy");
    CHECK(lfm2_audio_head_set_sampling(h1, 1.0f, 4, 3) == 0, "set_sampling");
    for (int f = 0; f < F; f++) {
        int32_t codes[8];
        lfm2_audio_head_sample(h1, hidden + (size_t)(f % 24) * 64, codes);
        const float *lg = lfm2_audio_head_logits(h1, 0);
        int above = 0;
        for (int i = 0; i < 2049; i++)
            above += lg[i] > lg[codes[0]];
        CHECK(above < 4, "frame %d: code %d has %d larger logits (top-k 4)", f, codes[0], above);
    }
    CHECK(lfm2_audio_head_logits(h1, 8) == NULL, "logits of a codebook that does not exist");

    lfm2_audio_head_free(g);
    lfm2_audio_head_free(h1);
    lfm2_audio_head_free(h2);
    lfm2_audio_head_free(h3);
    lfm2_vocoder_free(v);
    free(hidden);
}

/* ---- the state machine ------------------------------------------------------------------------ */

/* The spec's pseudo-code (lfm2-audio-out §7), one output at a time. */
struct ref {
    int mode;   /* 0 text, 1 audio */
    int left;
    bool text_done;
};

static void ref_step(struct ref *r, bool interleaved, bool is_text, int token, bool eoa)
{
    if (!interleaved) {
        if (is_text && token == 128)
            r->mode = 1;
        if (!is_text && eoa)
            r->mode = 0;
        return;
    }
    if (is_text) {
        if (token == 130)
            r->text_done = true;
        r->left -= 1;
        if (r->left == 0 || r->text_done) {
            r->mode = 1;
            r->left = 12;
        }
    } else {
        r->left -= 1;
        if (r->left == 0 && !r->text_done) {
            r->mode = 0;
            r->left = 6;
        }
        if (eoa)
            r->mode = 0;
    }
}

static void test_machine(void)
{
    uint32_t rng = 5;
    for (int trial = 0; trial < 400; trial++) {
        const bool inter = trial % 2;
        struct lfm2_tts_machine m;
        lfm2_tts_machine_init(&m, inter ? LFM2_TTS_INTERLEAVED : LFM2_TTS_SEQUENTIAL, 6, 12);
        struct ref r = { 0, 6, false };
        for (int step = 0; step < 200; step++) {
            rng = rng * 1664525u + 1013904223u;
            const int u = (int)(rng >> 16) % 100;
            if (m.state == LFM2_TTS_MS_TEXT) {
                const int token = u < 8 ? 128 : u < 12 ? 130 : 300 + u;
                lfm2_tts_machine_text(&m, token);
                ref_step(&r, inter, true, token, false);
            } else {
                const bool eoa = u < 6;
                lfm2_tts_machine_audio(&m, eoa);
                ref_step(&r, inter, false, 0, eoa);
            }
            CHECK((int)m.state == r.mode, "trial %d step %d: state %d, the spec says %d", trial, step,
                  m.state, r.mode);
            if (inter)
                CHECK(m.text_done == r.text_done, "trial %d step %d: text_done", trial, step);
        }
    }
    /* the interleaved rhythm without special tokens: 6 text, 12 audio, 6 text … */
    struct lfm2_tts_machine m;
    lfm2_tts_machine_init(&m, LFM2_TTS_INTERLEAVED, 6, 12);
    char seq[41] = { 0 };
    for (int i = 0; i < 40; i++) {
        seq[i] = m.state == LFM2_TTS_MS_TEXT ? 'T' : 'A';
        if (m.state == LFM2_TTS_MS_TEXT)
            lfm2_tts_machine_text(&m, 400);
        else
            lfm2_tts_machine_audio(&m, false);
    }
    CHECK(!strcmp(seq, "TTTTTTAAAAAAAAAAAATTTTTTAAAAAAAAAAAATTTT"), "interleaved rhythm %s", seq);
}

int main(void)
{
    test_heads();
    test_machine();
    return lfm2_test_status();
}
