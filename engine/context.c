/* context.c — inference contexts: caches, batched decode, logits, rewind and state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backbone.h"
#include "internal.h"

const struct lfm2_backbone *lfm2_model_backbone(const lfm2_model *m);

struct lfm2_context {
    const lfm2_model *model;
    const struct lfm2_backbone *bb;
    struct lfm2_context_params params;
    lfm2_pool *pool;
    struct lfm2_cache cache;
    struct lfm2_scratch scratch;
    int32_t n_past;
    float *logits;      /* [n_outputs][n_vocab] */
    float *embd;        /* [n_outputs][n_embd] when params.embeddings */
    int32_t out_cap;    /* rows the two buffers hold */
    int32_t n_outputs;
    bool logits_off;    /* lfm2_set_logits(false): output rows get the hidden state only */
    bool have_logits;   /* the last decode computed logits */
    bool aborted;       /* a decode stopped mid-step: the conv state is half-updated until a
                         * rewind restores it */
    double last_ms;
};

struct lfm2_context_params lfm2_context_default_params(void)
{
    struct lfm2_context_params p = {
        .n_ctx = 0,
        .n_batch = 512,
        .n_threads = 0,
        .embeddings = false,
    };
    return p;
}

struct lfm2_batch lfm2_batch_tokens(const lfm2_token *tokens, int32_t n)
{
    struct lfm2_batch b = { .n_tokens = n, .token = tokens, .embd = NULL, .logits_all = false };
    return b;
}

struct lfm2_batch lfm2_batch_embd(const float *embd, int32_t n)
{
    struct lfm2_batch b = { .n_tokens = n, .token = NULL, .embd = embd, .logits_all = false };
    return b;
}

lfm2_context *lfm2_context_new(const lfm2_model *model, struct lfm2_context_params params)
{
    if (!model) {
        lfm2_set_error("lfm2_context_new: no model");
        return NULL;
    }
    const struct lfm2_backbone *bb = lfm2_model_backbone(model);
    if (params.n_ctx <= 0)
        params.n_ctx = bb->hp.n_ctx_train < 4096 ? bb->hp.n_ctx_train : 4096;
    if (params.n_ctx > bb->hp.n_ctx_train) {
        lfm2_set_error("%s: context length %d exceeds the model's trained context %d",
                       lfm2_model_path(model), params.n_ctx, bb->hp.n_ctx_train);
        return NULL;
    }
    if (params.n_batch <= 0)
        params.n_batch = 512;
    if (params.n_batch > params.n_ctx)
        params.n_batch = params.n_ctx;

    lfm2_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        lfm2_set_error("out of memory");
        return NULL;
    }
    ctx->model = model;
    ctx->bb = bb;
    ctx->params = params;
    if (!(ctx->pool = lfm2_pool_new(params.n_threads)) ||
        lfm2_cache_init(&ctx->cache, bb, params.n_ctx) ||
        lfm2_scratch_init(&ctx->scratch, bb, params.n_batch)) {
        lfm2_context_free(ctx);
        return NULL;
    }
    ctx->params.n_threads = lfm2_pool_n_threads(ctx->pool);
    return ctx;
}

void lfm2_context_free(lfm2_context *ctx)
{
    if (!ctx)
        return;
    lfm2_scratch_free(&ctx->scratch);
    lfm2_cache_free(&ctx->cache);
    if (ctx->pool)
        lfm2_pool_free(ctx->pool);
    lfm2_free_aligned(ctx->logits);
    lfm2_free_aligned(ctx->embd);
    free(ctx);
}

const lfm2_model *lfm2_context_model(const lfm2_context *ctx)
{
    return ctx->model;
}

int lfm2_n_ctx(const lfm2_context *ctx)
{
    return ctx->params.n_ctx;
}

lfm2_pool *lfm2_context_pool(lfm2_context *ctx)
{
    return ctx->pool;
}

int lfm2_n_threads(const lfm2_context *ctx)
{
    return ctx->params.n_threads;
}

int32_t lfm2_n_past(const lfm2_context *ctx)
{
    return ctx->n_past;
}

int32_t lfm2_n_outputs(const lfm2_context *ctx)
{
    return ctx->n_outputs;
}

double lfm2_last_decode_ms(const lfm2_context *ctx)
{
    return ctx->last_ms;
}

/* Index of the first NaN or infinity of x[0..n) (all exponent bits set), or -1. The scan is
 * branch-free per block so it vectorizes: a few microseconds for a row of logits. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    enum { BLK = 256 };
    for (int64_t i0 = 0; i0 < n; i0 += BLK) {
        const int64_t m = n - i0 < BLK ? n - i0 : BLK;
        uint32_t bad = 0;
        for (int64_t i = 0; i < m; i++) {
            uint32_t u;
            memcpy(&u, x + i0 + i, 4);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
        if (bad)
            for (int64_t i = i0; i < i0 + m; i++)
                if (!isfinite(x[i]))
                    return i;
    }
    return -1;
}

/* Output buffers grow to the largest request seen, never per call otherwise. */
static int reserve_outputs(lfm2_context *ctx, int32_t n_out)
{
    if (n_out <= ctx->out_cap)
        return 0;
    const struct lfm2_hparams *hp = &ctx->bb->hp;
    float *lg = lfm2_alloc_aligned((size_t)n_out * hp->n_vocab * sizeof(float));
    float *em = ctx->params.embeddings ? lfm2_alloc_aligned((size_t)n_out * hp->n_embd * sizeof(float))
                                       : NULL;
    if (!lg || (ctx->params.embeddings && !em)) {
        lfm2_free_aligned(lg);
        lfm2_free_aligned(em);
        return lfm2_set_error("out of memory for %d rows of logits", n_out);
    }
    lfm2_free_aligned(ctx->logits);
    lfm2_free_aligned(ctx->embd);
    ctx->logits = lg;
    ctx->embd = em;
    ctx->out_cap = n_out;
    return 0;
}

int lfm2_decode(lfm2_context *ctx, struct lfm2_batch b)
{
    const struct lfm2_backbone *bb = ctx->bb;
    const struct lfm2_hparams *hp = &bb->hp;
    const int E = hp->n_embd, V = hp->n_vocab;
    struct lfm2_scratch *s = &ctx->scratch;

    if (ctx->aborted)
        return lfm2_set_error("lfm2_decode: the last decode was aborted mid-step: "
                              "lfm2_rewind to a checkpointed position (or 0) first");
    if (b.n_tokens <= 0)
        return lfm2_set_error("lfm2_decode: empty batch");
    if ((b.token == NULL) == (b.embd == NULL))
        return lfm2_set_error("lfm2_decode: a batch needs either token ids or embeddings");
    if (b.n_tokens > ctx->params.n_ctx - ctx->n_past)
        return lfm2_set_error("context full: %d positions used, %d more requested, context "
                              "length %d",
                              ctx->n_past, b.n_tokens, ctx->params.n_ctx);
    if (b.token)
        for (int32_t i = 0; i < b.n_tokens; i++)
            if (b.token[i] < 0 || b.token[i] >= V)
                return lfm2_set_error("lfm2_decode: token %d at index %d is outside the "
                                      "vocabulary (0..%d)",
                                      b.token[i], i, V - 1);
    if (b.embd) {
        const int64_t i = first_nonfinite(b.embd, (int64_t)b.n_tokens * E);
        if (i >= 0)
            return lfm2_set_error("lfm2_decode: input embedding row %lld holds a NaN or an infinity",
                                  (long long)(i / E));
    }
    const int32_t n_out = b.logits_all ? b.n_tokens : 1;
    if (reserve_outputs(ctx, n_out))
        return -1;
    ctx->n_outputs = 0;

    const double t0 = lfm2_time_ms();
    for (int32_t start = 0; start < b.n_tokens; start += s->n_batch) {
        const int m = b.n_tokens - start < s->n_batch ? b.n_tokens - start : s->n_batch;

        if (b.token)
            lfm2_get_rows(bb->tok_embd, b.token + start, m, s->x);
        else
            memcpy(s->x, b.embd + (size_t)start * E, (size_t)m * E * sizeof(float));

        if (!lfm2_backbone_forward(bb, &ctx->cache, s, ctx->pool, m, ctx->n_past)) {
            ctx->n_outputs = 0;
            ctx->have_logits = false;
            ctx->aborted = true;
            ctx->last_ms = lfm2_time_ms() - t0;
            return LFM2_DECODE_ABORTED;
        }
        ctx->n_past += m;

        /* Final norm and LM head only for the rows the caller wants. */
        int first, n_rows, out0;
        if (b.logits_all) {
            first = 0, n_rows = m, out0 = start;
        } else if (start + m == b.n_tokens) {
            first = m - 1, n_rows = 1, out0 = 0;
        } else {
            continue;
        }
        lfm2_backbone_output(bb, s, ctx->pool, first, n_rows, ctx->logits_off ? NULL : bb->output,
                             NULL, ctx->logits + (size_t)out0 * V, V);
        /* Non-finite values anywhere upstream (weights with NaN/Inf or garbage bits, an
         * overflow) reach the output on every kernel path: the activation quantizers turn a
         * non-finite block into a NaN scale instead of dropping it (quants.h). Checked here,
         * once per output row — on the logits, or on the final-norm hidden state when the LM
         * head is off — rather than handed to a sampler or a head. The rows stay consumed
         * (n_past advanced); there are no outputs. */
        const int64_t W = ctx->logits_off ? E : V;
        const float *o = ctx->logits_off ? s->u : ctx->logits + (size_t)out0 * V;
        const int64_t bad = first_nonfinite(o, (int64_t)n_rows * W);
        if (bad >= 0) {
            ctx->last_ms = lfm2_time_ms() - t0;
            return lfm2_set_error("%s: the %s of position %lld are not finite (NaN or infinity): "
                                  "the model's tensor data is corrupt or out of range",
                                  lfm2_model_path(ctx->model),
                                  ctx->logits_off ? "hidden states" : "logits",
                                  (long long)(ctx->n_past - m + first + bad / W));
        }
        if (ctx->embd)
            memcpy(ctx->embd + (size_t)out0 * E, s->u, (size_t)n_rows * E * sizeof(float));
    }
    ctx->n_outputs = n_out;
    ctx->have_logits = !ctx->logits_off;
    ctx->last_ms = lfm2_time_ms() - t0;
    return 0;
}

void lfm2_set_abort_callback(lfm2_context *ctx, lfm2_abort_callback callback, void *data)
{
    ctx->scratch.abort_cb = callback;
    ctx->scratch.abort_data = callback ? data : NULL;
}

void lfm2_set_logits(lfm2_context *ctx, bool on)
{
    ctx->logits_off = !on;
}

float *lfm2_get_logits(lfm2_context *ctx, int32_t i)
{
    if (i < 0)
        i = ctx->n_outputs - 1;
    if (i < 0 || i >= ctx->n_outputs) {
        lfm2_set_error("lfm2_get_logits: row %d of %d", i, ctx->n_outputs);
        return NULL;
    }
    if (!ctx->have_logits) {
        lfm2_set_error("lfm2_get_logits: the last decode ran with logits off (lfm2_set_logits)");
        return NULL;
    }
    return ctx->logits + (size_t)i * ctx->bb->hp.n_vocab;
}

float *lfm2_get_embeddings(lfm2_context *ctx, int32_t i)
{
    if (!ctx->embd) {
        lfm2_set_error("lfm2_get_embeddings: the context was created without embeddings");
        return NULL;
    }
    if (i < 0)
        i = ctx->n_outputs - 1;
    if (i < 0 || i >= ctx->n_outputs) {
        lfm2_set_error("lfm2_get_embeddings: row %d of %d", i, ctx->n_outputs);
        return NULL;
    }
    return ctx->embd + (size_t)i * ctx->bb->hp.n_embd;
}

int lfm2_checkpoint(lfm2_context *ctx)
{
    if (ctx->aborted)
        return lfm2_set_error("lfm2_checkpoint: the last decode was aborted mid-step");
    return lfm2_cache_checkpoint(&ctx->cache, ctx->n_past);
}

int lfm2_rewind(lfm2_context *ctx, int32_t n_past)
{
    if (n_past < 0 || n_past > ctx->n_past)
        return lfm2_set_error("lfm2_rewind: position %d is outside 0..%d", n_past, ctx->n_past);
    /* K/V rows past n_past are simply overwritten by the next decode; the convolution state of
     * n_past comes from a checkpoint (or is zero at 0). */
    if ((n_past != ctx->n_past || ctx->aborted) && lfm2_cache_restore(&ctx->cache, n_past))
        return -1;
    ctx->aborted = false;
    ctx->n_past = n_past;
    ctx->n_outputs = 0;
    return 0;
}

/* ---- state serialization ----------------------------------------------------------------------- */

#define STATE_MAGIC 0x5453324d464cull /* "LFM2ST" */

struct state_header {
    uint64_t magic;
    uint32_t version;
    uint32_t n_layer, n_embd, n_vocab, head_dim;
    int32_t n_past;
};

/* Bytes of K/V rows per position, over all attention layers. */
static size_t kv_bytes_per_pos(const struct lfm2_backbone *bb)
{
    size_t b = 0;
    for (int il = 0; il < bb->hp.n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind == LFM2_LAYER_ATTENTION)
            b += 2 * (size_t)ly->n_head_kv * bb->hp.head_dim;
    }
    return b * sizeof(float);
}

size_t lfm2_state_size(const lfm2_context *ctx)
{
    return sizeof(struct state_header) + ctx->cache.conv_floats * sizeof(float) +
           kv_bytes_per_pos(ctx->bb) * (size_t)ctx->n_past;
}

size_t lfm2_state_save(const lfm2_context *ctx, void *dst, size_t size)
{
    const struct lfm2_backbone *bb = ctx->bb;
    const size_t need = lfm2_state_size(ctx);
    if (size < need) {
        lfm2_set_error("lfm2_state_save: buffer of %zu bytes, %zu needed", size, need);
        return 0;
    }
    struct state_header h = { STATE_MAGIC, 2, (uint32_t)bb->hp.n_layer, (uint32_t)bb->hp.n_embd,
                              (uint32_t)bb->hp.n_vocab, (uint32_t)bb->hp.head_dim, ctx->n_past };
    char *p = dst;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, ctx->cache.conv, ctx->cache.conv_floats * sizeof(float));
    p += ctx->cache.conv_floats * sizeof(float);
    for (int il = 0; il < bb->hp.n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind != LFM2_LAYER_ATTENTION)
            continue;
        size_t n = (size_t)ctx->n_past * ly->n_head_kv * bb->hp.head_dim * sizeof(float);
        memcpy(p, ctx->cache.k[ly->cache_index], n);
        memcpy(p + n, ctx->cache.v[ly->cache_index], n);
        p += 2 * n;
    }
    return need;
}

int lfm2_state_load(lfm2_context *ctx, const void *src, size_t size)
{
    const struct lfm2_backbone *bb = ctx->bb;
    struct state_header h;
    if (size < sizeof h)
        return lfm2_set_error("lfm2_state_load: %zu bytes is too small for a state", size);
    memcpy(&h, src, sizeof h);
    if (h.magic != STATE_MAGIC || h.version != 2)
        return lfm2_set_error("lfm2_state_load: not an lfm2 state (bad magic or version)");
    if (h.n_layer != (uint32_t)bb->hp.n_layer || h.n_embd != (uint32_t)bb->hp.n_embd ||
        h.n_vocab != (uint32_t)bb->hp.n_vocab || h.head_dim != (uint32_t)bb->hp.head_dim)
        return lfm2_set_error("lfm2_state_load: the state belongs to a different model");
    if (h.n_past < 0 || h.n_past > ctx->params.n_ctx)
        return lfm2_set_error("lfm2_state_load: %d positions do not fit a context of %d",
                              h.n_past, ctx->params.n_ctx);
    const size_t conv_bytes = ctx->cache.conv_floats * sizeof(float);
    if (size != sizeof h + conv_bytes + kv_bytes_per_pos(bb) * (size_t)h.n_past)
        return lfm2_set_error("lfm2_state_load: size %zu does not match %d positions", size,
                              h.n_past);
    const char *p = (const char *)src + sizeof h;
    /* forget checkpoints: they describe the sequence being replaced */
    lfm2_cache_restore(&ctx->cache, 0);
    memcpy(ctx->cache.conv, p, conv_bytes);
    p += conv_bytes;
    for (int il = 0; il < bb->hp.n_layer; il++) {
        const struct lfm2_layer *ly = &bb->layers[il];
        if (ly->kind != LFM2_LAYER_ATTENTION)
            continue;
        size_t n = (size_t)h.n_past * ly->n_head_kv * bb->hp.head_dim * sizeof(float);
        memcpy(ctx->cache.k[ly->cache_index], p, n);
        memcpy(ctx->cache.v[ly->cache_index], p + n, n);
        p += 2 * n;
    }
    ctx->n_past = h.n_past;
    ctx->aborted = false;
    ctx->n_outputs = 0;
    return 0;
}
