/* test-stages.c — every intermediate tensor of the encoder against llama.cpp's own graph
 * tensors for the clip speech_4s (F32 mmproj, LLAMACPP mode, fed mtmd's mel): the subsampling
 * convolutions, layer 0 step by step (norms, FFN, relative-position projection, attention
 * scores, convolution module), both layer outputs, the adapter. A mismatch here says which
 * step broke when test-parity fails. Tolerance: 1e-5 × max(1, max |ref|) per tensor, the
 * README's encoder tolerance scaled to the tensor (the pre-ReLU convolution maps reach ~20). */
#include "atest.h"
#include "lfm2-audio.h"

/* Gathers the stages of one encode into whole row-major tensors. */
#define MAX_STAGES 64
struct capture {
    char name[MAX_STAGES][64];
    float *data[MAX_STAGES];
    int64_t rows[MAX_STAGES], cols[MAX_STAGES];
    int n;
    int64_t max_rows;
};

static void on_stage(void *user, const struct lfm2_audio_stage *s)
{
    struct capture *c = user;
    char key[64];
    if (s->head >= 0)
        snprintf(key, sizeof key, "layer%d_%s.h%d", s->layer, s->name, s->head);
    else if (s->layer >= 0)
        snprintf(key, sizeof key, "layer%d_%s", s->layer, s->name);
    else
        snprintf(key, sizeof key, "%s", s->name);
    int i = 0;
    while (i < c->n && strcmp(c->name[i], key))
        i++;
    if (i == c->n) {
        if (c->n == MAX_STAGES)
            return;
        snprintf(c->name[i], sizeof c->name[i], "%s", key);
        c->data[i] = calloc((size_t)(c->max_rows * s->n_cols), sizeof(float));
        c->cols[i] = s->n_cols;
        c->rows[i] = 0;
        c->n++;
    }
    CHECK(s->n_cols == c->cols[i] && s->row0 + s->n_rows <= c->max_rows, "%s: stage shape", key);
    for (int64_t r = 0; r < s->n_rows; r++)
        memcpy(c->data[i] + (s->row0 + r) * s->n_cols, s->data + r * s->ld, sizeof(float) * (size_t)s->n_cols);
    if (s->row0 + s->n_rows > c->rows[i])
        c->rows[i] = s->row0 + s->n_rows;
}

static const float *get(struct capture *c, const char *key, int64_t *rows, int64_t *cols)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], key)) {
            *rows = c->rows[i];
            *cols = c->cols[i];
            return c->data[i];
        }
    CHECK(0, "stage %s never reported", key);
    return NULL;
}

static double tol_for(const struct npy *r)
{
    double m = 1.0;
    for (int64_t i = 0; i < r->n; i++)
        m = fabs(r->data[i]) > m ? fabs(r->data[i]) : m;
    return 1e-5 * m;
}

/* A row-major stage compared with a fixture of the same 2-D shape. */
static void cmp2(struct capture *c, const char *key, const char *file)
{
    struct npy r;
    int64_t rows = 0, cols = 0;
    const float *got = get(c, key, &rows, &cols);
    if (!got || !npy_load(at_data("ref/speech_4s/intermediates/%s.npy", file), &r)) {
        CHECK(0, "%s: missing", file);
        return;
    }
    CHECK(r.n_dims == 2 && r.shape[0] == rows && r.shape[1] == cols, "%s: shape %lldx%lld vs %lldx%lld",
          file, (long long)r.shape[0], (long long)r.shape[1], (long long)rows, (long long)cols);
    if (r.n == rows * cols)
        at_compare(file, got, cols, r.data, cols, rows, cols, tol_for(&r));
    free(r.data);
}

/* A convolution map: ours [t][f][c], llama.cpp's (c, t, f). */
static void cmp_conv(struct capture *c, const char *key)
{
    struct npy r;
    int64_t rows = 0, cols = 0;
    const float *got = get(c, key, &rows, &cols);
    if (!got || !npy_load(at_data("ref/speech_4s/intermediates/%s.npy", key), &r) || r.n_dims != 3) {
        CHECK(0, "%s: missing", key);
        return;
    }
    const int64_t C = r.shape[0], T = r.shape[1], F = r.shape[2];
    CHECK(T == rows && F * C == cols, "%s: shape", key);
    float *t = malloc(sizeof(float) * (size_t)r.n);
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t ti = 0; ti < T; ti++)
            for (int64_t f = 0; f < F; f++)
                t[(ti * F + f) * C + ch] = r.data[(ch * T + ti) * F + f];
    if (T == rows && F * C == cols)
        at_compare(key, got, cols, t, cols, rows, cols, tol_for(&r));
    free(t);
    free(r.data);
}

/* Per-head score matrices: ours one tensor per head, llama.cpp's (head, i, j). */
static void cmp_heads(struct capture *c, const char *stage, const char *file, int n_head)
{
    struct npy r;
    if (!npy_load(at_data("ref/speech_4s/intermediates/%s.npy", file), &r) || r.n_dims != 3 ||
        r.shape[0] != n_head) {
        CHECK(0, "%s: missing", file);
        return;
    }
    const int64_t T = r.shape[1];
    for (int h = 0; h < n_head; h++) {
        char key[64], what[96];
        snprintf(key, sizeof key, "layer0_%s.h%d", stage, h);
        snprintf(what, sizeof what, "%s head %d", file, h);
        int64_t rows = 0, cols = 0;
        const float *got = get(c, key, &rows, &cols);
        CHECK(got && rows == T && cols == T, "%s: shape", what);
        if (got && rows == T && cols == T)
            at_compare(what, got, T, r.data + h * T * T, T, T, T, tol_for(&r));
    }
    free(r.data);
}

int main(void)
{
    static struct capture cap;
    cap.max_rows = 4096;
    struct lfm2_audio_params p = lfm2_audio_default_params();
    p.frontend = LFM2_AUDIO_FRONTEND_LLAMACPP;
    p.n_threads = 2;
    p.stage_cb = on_stage;
    p.stage_user = &cap;
    lfm2_audio *a = lfm2_audio_load(at_data("lfm2a-tiny-mmproj-f32.gguf"), p);
    CHECK(a != NULL, "%s", lfm2_last_error());
    struct npy mel, embd;
    if (!a || !npy_load(at_data("ref/speech_4s/mel.npy"), &mel))
        return lfm2_test_status();
    CHECK(npy_load(at_data("ref/speech_4s/audio_embd.npy"), &embd), "audio_embd.npy");
    const int64_t T = mel.shape[1], Tq = lfm2_audio_n_tokens_for_frames(T);
    const int E = lfm2_audio_n_embd_out(a);
    float *out = malloc(sizeof(float) * (size_t)(Tq * E));
    CHECK(lfm2_audio_encode_mel(a, mel.data, T, T, out, (size_t)(Tq * E)) == Tq, "%s", lfm2_last_error());
    const int n_head = lfm2_audio_get_hparams(a)->n_head;

    cmp_conv(&cap, "subsample_conv0");
    cmp_conv(&cap, "subsample_conv2");
    cmp_conv(&cap, "subsample_conv3");
    cmp_conv(&cap, "subsample_conv5");
    cmp_conv(&cap, "subsample_conv6");
    cmp2(&cap, "pre_encode_out", "pre_encode_out");
    cmp2(&cap, "layer0_norm_ff1", "layer0_norm_ff1");
    cmp2(&cap, "layer0_ff1_out", "layer0_ff1_out");
    cmp2(&cap, "layer0_norm_att", "layer0_norm_att");
    cmp2(&cap, "layer0_pos_proj", "layer0_pos_proj");
    cmp_heads(&cap, "att_ac", "layer0_att_ac", n_head);
    cmp_heads(&cap, "att_scores", "layer0_att_scores", n_head);
    cmp2(&cap, "layer0_att_out", "layer0_att_out");
    cmp2(&cap, "layer0_norm_conv", "layer0_norm_conv");
    cmp2(&cap, "layer0_conv_pw1", "layer0_conv_pw1");
    cmp2(&cap, "layer0_ff2_out", "layer0_ff2_out");
    cmp2(&cap, "layer0_resid_before_norm_out", "layer0_resid_before_norm_out");
    cmp2(&cap, "layer0_out", "layer0_out");
    cmp2(&cap, "layer1_out", "layer1_out");
    cmp2(&cap, "adapter_ln", "adapter_ln");
    cmp2(&cap, "projected", "projected");
    at_compare("output = projected stage", out, E, embd.data, E, Tq, E, 1e-5);

    for (int i = 0; i < cap.n; i++)
        free(cap.data[i]);
    free(out);
    free(mel.data);
    free(embd.data);
    lfm2_audio_free(a);
    return lfm2_test_status();
}
